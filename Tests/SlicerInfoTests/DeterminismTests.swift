import Foundation
import XCTest
import SlicerData
import SlicerEngine
@testable import SlicerInfo

/// An analysis's numbers do not depend on how its work was split: the thread
/// count, the batch size, the workers' scheduling or the shards. `analyze
/// --threads 2` used to give JSON differing in the last bits between runs
/// (672 values on the shipped CIFAR-10 VGG over 1,000 images): the per-image
/// instance entropies were summed as doubles in the order the workers
/// finished. SPEC: the numbers must be reproducible, so the JSON is compared
/// as text, bit for bit, with no tolerance.
final class DeterminismTests: XCTestCase {
    private func json(_ network: Network, _ input: ModelInput, _ histograms: HistogramSet, _ ranges: [TapRange],
                      _ settings: AnalysisSettings) -> String {
        let summary = AnalysisSummary(network: network, histograms: histograms, ranges: ranges, settings: settings)
        return AnalysisJSON.render(network: network, modelPath: "m.onnx", dataSource: "d", classNames: input.classNames,
                                   summary: summary)
    }

    private func assertIdentical(_ a: String, _ b: String, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        guard a != b else { return }
        // Name the first differing value rather than dumping both documents.
        let x = a.split(separator: ","), y = b.split(separator: ",")
        let differing = zip(x, y).filter { $0 != $1 }
        XCTFail("\(context): \(differing.count) values differ, first \(differing.first.map { "\($0.0) vs \($0.1)" } ?? "(lengths)")",
                file: file, line: line)
    }

    func testAnalysisIsBitIdenticalForAnyThreadsBatchesAndShards() throws {
        let network = try InfoFixtures.network("residual_cnn")
        // Labels spread so that every class has images in every batch and shard.
        let images = try makeImages(shape: network.inputShape, count: 240, seed: 17, labels: { ($0 * 3) % 10 })
        let input = try ModelInput(network: network, images: images)
        for settings in [AnalysisSettings(), AnalysisSettings(bins: 16, range: .channel, millerMadow: true)] {
            for layout in [ClassChannelLayout.kept, .onDemand] {
                let one = try Analyzer(input: input, settings: settings, batchSize: 64, threads: 1, layout: layout)
                // One calibration for all runs: this test is about the sums, not the ranges.
                let ranges = try one.calibrate()
                let reference = json(network, input, try one.run(ranges: ranges, keepPerImage: false).histograms, ranges, settings)
                for (batch, threads) in [(1, 2), (7, 3), (64, 2), (13, 4), (240, 1)] {
                    let analyzer = try Analyzer(input: input, settings: settings, batchSize: batch, threads: threads, layout: layout)
                    let histograms = try analyzer.run(ranges: ranges, keepPerImage: false).histograms
                    assertIdentical(json(network, input, histograms, ranges, settings), reference,
                                    "\(layout) \(settings) batch \(batch) threads \(threads)")
                }
                // Shards of uneven sizes, merged in either order: the same numbers as one run.
                // Each shard is told the whole set's class sizes (as `analyze --shard` does), so that
                // on demand a class split between shards stays open until the merge.
                let sharded = try Analyzer(input: input, settings: settings, batchSize: 5, threads: 2, layout: layout)
                let totals = (0...network.classCount).map { k in images.labels.filter { $0 == k }.count }
                let parts = try [Array(0..<100), Array(100..<137), Array(137..<240)].map {
                    try sharded.run(images: $0, ranges: ranges, keepPerImage: false, classTotals: totals).histograms
                }
                for order in [[0, 1, 2], [2, 0, 1]] {
                    var merged = parts[order[0]]
                    for k in order.dropFirst() { merged.add(parts[k]) }
                    merged.closeOpenClasses()
                    assertIdentical(json(network, input, merged, ranges, settings), reference,
                                    "\(layout) \(settings) shards in order \(order)")
                }
            }
        }
    }

    /// The fixed-point sums against a plain reference: each term exactly as
    /// a double, the total in exact rational arithmetic (integers in units of
    /// 2⁻⁶⁴ here, the terms being multiples of it), rounded once.
    func testExactSumIsTheRoundedExactSum() {
        var rng = SplitMix64(seed: 3)
        var terms: [Double] = []
        for _ in 0..<2_000 {
            // Entropies below 2¹², multiples of 2⁻⁶⁴, and zeros.
            let e = Int(rng.next() % 24) - 11
            terms.append(rng.next() % 7 == 0 ? 0 : Double(rng.next() >> 11) * 0x1p-53 * Double(sign: .plus, exponent: e, significand: 1))
        }
        var forward = ExactSum.zero, backward = ExactSum.zero
        for t in terms { forward += t }
        for t in terms.reversed() { backward += t }
        var halves = ExactSum.zero, other = ExactSum.zero
        for t in terms.prefix(777) { halves += t }
        for t in terms.dropFirst(777) { other += t }
        XCTAssertEqual(forward, backward)
        XCTAssertEqual(forward, halves + other)
        // Reference: each term's significand shifted to units of 2⁻⁶⁴, added as
        // two 64-bit words (terms below 2¹² need at most 76 bits).
        var hi: UInt64 = 0, lo: UInt64 = 0
        for t in terms where t != 0 {
            var shift = Int(t.exponent) - 52 + 64
            var significand = t.significandBitPattern | (1 << 52)
            // Below 2⁻⁶⁴ the significand holds only zero bits (every term is a multiple of it).
            while shift < 0 {
                XCTAssertEqual(significand & 1, 0, "\(t) is a multiple of 2⁻⁶⁴")
                significand >>= 1
                shift += 1
            }
            let (l, h) = shift >= 64 ? (UInt64(0), significand << (shift - 64))
                : (significand << shift, shift == 0 ? 0 : significand >> (64 - shift))
            let (s, carry) = lo.addingReportingOverflow(l)
            lo = s
            hi += h + (carry ? 1 : 0)
        }
        XCTAssertEqual(forward.fixed, Int128(hi) << 64 | Int128(lo))
        let naive = terms.reduce(0, +)
        XCTAssertEqual(forward.value, naive, accuracy: 1e-12 * naive, "close to a plain sum")
        XCTAssertEqual(ExactSum(0.1).value, 0.1)
        XCTAssertEqual(ExactSum(3.0).fixed, 3 << 64)
        XCTAssertEqual(ExactSum(-2.5).fixed, -(5 << 63))
        // Damaged files' values saturate instead of trapping, and stay far too large.
        XCTAssertGreaterThan(ExactSum(.nan).value, 1e18)
        XCTAssertLessThan(ExactSum(-.infinity).value, -1e18)
        XCTAssertGreaterThan(ExactSum(1e300).value, 1e18)
    }
}
