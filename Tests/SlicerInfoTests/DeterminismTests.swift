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
                let sharded = try Analyzer(input: input, settings: settings, batchSize: 5, threads: 2, layout: layout)
                let parts = try [Array(0..<100), Array(100..<137), Array(137..<240)].map {
                    try sharded.run(images: $0, ranges: ranges, keepPerImage: false, classTotals: nil).histograms
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
}
