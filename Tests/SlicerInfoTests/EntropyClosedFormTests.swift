import Foundation
import XCTest
@testable import SlicerEngine
@testable import SlicerInfo

/// Closed forms of SPEC §3, through `Entropy.bits`, through the binning and
/// counting of the analysis path, and through the tap accumulator itself.
final class EntropyClosedFormTests: XCTestCase {
    // MARK: Entropy.bits

    func testEntropyBitsClosedForms() {
        XCTAssertEqual(Entropy.bits([0, 0, 0] as [Int]), 0, "an empty histogram has no entropy")
        XCTAssertEqual(Entropy.bits([17] as [Int]), 0)
        XCTAssertEqual(Entropy.bits([0, 0, 250, 0] as [UInt64]), 0, "constant → 0 bits")
        for b in [2, 7, 64, 256] {
            assertClose(Entropy.bits([Int](repeating: 1, count: b)), log2(Double(b)), 1e-12, "uniform over \(b) bins")
            assertClose(Entropy.bits([Int](repeating: 5, count: b) + [0, 0]), log2(Double(b)), 1e-12,
                        "empty bins do not count")
        }
        for (a, n) in [(1, 2), (1, 4), (3, 10), (1, 1000), (999, 1000), (7, 64)] {
            let p = Double(a) / Double(n)
            assertClose(Entropy.bits([a, 0, n - a]), Naive.twoPoint(p), 1e-12, "two-point p = \(p)")
            assertClose(Entropy.bits([UInt64(n - a), UInt64(a)]), Naive.twoPoint(p), 1e-12)
        }
        // Miller–Madow adds (m − 1)/(2 n ln 2).
        XCTAssertEqual(Entropy.bits([9, 0] as [Int], millerMadow: true), 0, "m = 1 adds nothing")
        let counts = [3, 0, 1, 4, 0]   // m = 3, n = 8
        assertClose(Entropy.bits(counts, millerMadow: true) - Entropy.bits(counts), 2 / (2 * 8 * log(2.0)), 1e-12)
        assertClose(Entropy.bits([1, 3], millerMadow: true), Naive.twoPoint(0.25) + 1 / (2 * 4 * log(2.0)), 1e-12)
    }

    func testEntropyTableMatchesDirectFormula() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<200 {
            let bins = [2, 7, 64, 256].randomElement(using: &rng)!
            let counts = (0..<bins).map { _ in Int32(Int.random(in: 0...3, using: &rng) == 0 ? 0 : Int.random(in: 0...50, using: &rng)) }
            let total = counts.reduce(0) { $0 + Int($1) }
            let table = EntropyTable(maxCount: 50)
            for mm in [false, true] {
                let h = counts.withUnsafeBufferPointer { table.bits($0.baseAddress!, bins: bins, total: total, millerMadow: mm) }
                assertClose(h, Naive.entropy(counts, millerMadow: mm), 1e-12)
            }
        }
    }

    // MARK: ChannelBinner + counting (the accumulator's inner loop)

    /// Bins `values` with ChannelBinner, counts with countChannel, returns (entropy by table, entropy by Entropy.bits, non-finite).
    private func binAndCount(_ values: [Float], lo: Float, hi: Float, bins: Int, millerMadow: Bool = false) -> (Double, Double, Int) {
        let binner = ChannelBinner(bins: bins, lo: lo, hi: hi)
        var indices = [Int32](repeating: -1, count: values.count)
        let nonFinite = values.withUnsafeBufferPointer { v in
            indices.withUnsafeMutableBufferPointer { binner.bin(v.baseAddress!, count: values.count, into: $0.baseAddress!) }
        }
        var hist = [Int32](repeating: 0, count: 9 * histogramStride(bins: bins))
        var classRow = [UInt32](repeating: 0, count: bins), layer = [UInt64](repeating: 0, count: bins + 1)
        let table = EntropyTable(maxCount: values.count)
        let viaTable = indices.withUnsafeBufferPointer { i in hist.withUnsafeMutableBufferPointer { h in
            classRow.withUnsafeMutableBufferPointer { c in layer.withUnsafeMutableBufferPointer { l in
                countChannel(i.baseAddress!, count: values.count, bins: bins, hist: h.baseAddress!, table: table,
                             millerMadow: millerMadow, classRow: c.baseAddress!, layer: l.baseAddress!)
            }}
        }}
        // The layer histogram holds this one channel's counts, the non-finite slot included.
        XCTAssertEqual(Int(layer[bins]), nonFinite, "non-finite values land in bin B")
        XCTAssertEqual(layer.reduce(0) { $0 + Int($1) }, values.count)
        XCTAssertEqual(Array(layer[0..<bins]), classRow.map(UInt64.init))
        return (viaTable, Entropy.bits(layer[0..<bins], millerMadow: millerMadow), nonFinite)
    }

    func testCountChannelMatchesADirectCount() {
        // Runs of one bin (as after a ReLU), every bin count from 2 to 300, lengths
        // that are and are not multiples of the eight sub-histograms, non-finite
        // values (slot B); the sub-histograms must be zero again afterwards.
        var state: UInt64 = 12345
        func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) }
        for bins in [2, 15, 16, 64, 65, 300] {
            let stride = histogramStride(bins: bins)
            var hist = [Int32](repeating: 0, count: 9 * stride)
            var classRow = [UInt32](repeating: 7, count: bins), layer = [UInt64](repeating: 3, count: bins + 1)
            for count in [1, 7, 8, 33, 1000] {
                let indices: [Int32] = (0..<count).map { i in
                    let r = next() % 10
                    return Int32(r < 5 ? 0 : (r == 9 ? bins : next() % bins))  // half zeros, a tenth non-finite
                }
                let nonFinite = indices.filter { $0 == Int32(bins) }.count
                var direct = [Int](repeating: 0, count: bins + 1)
                for b in indices { direct[Int(b)] += 1 }
                let classBefore = classRow, layerBefore = layer
                let table = EntropyTable(maxCount: count)
                let h = indices.withUnsafeBufferPointer { ip in hist.withUnsafeMutableBufferPointer { hp in
                    classRow.withUnsafeMutableBufferPointer { cp in layer.withUnsafeMutableBufferPointer { lp in
                        countChannel(ip.baseAddress!, count: count, bins: bins, hist: hp.baseAddress!,
                                     table: table, millerMadow: false, classRow: cp.baseAddress!, layer: lp.baseAddress!)
                    }}
                }}
                XCTAssertEqual(h, Entropy.bits(direct[0..<bins]), accuracy: 1e-12, "bins \(bins), count \(count)")
                XCTAssertEqual(zip(classRow, classBefore).map { Int($0 - $1) }, Array(direct[0..<bins]), "class row")
                XCTAssertEqual(zip(layer, layerBefore).map { Int($0 - $1) }, direct, "layer histogram with the non-finite slot")
                XCTAssertTrue(hist[0..<(8 * stride)].allSatisfy { $0 == 0 }, "sub-histograms left non-zero")
            }
        }
    }

    func testClosedFormsThroughBinnerAndCounting() {
        let lo: Float = -1.5, hi: Float = 2.5
        for bins in [2, 7, 64, 256] {
            let width = (Double(hi) - Double(lo)) / Double(bins)
            func center(_ k: Int) -> Float { Float(Double(lo) + (Double(k) + 0.5) * width) }
            // Constant → 0 bits (also for values outside the range: they clamp into one bin).
            for v: Float in [0.3, lo, hi, -100, 100] {
                let (a, b, nf) = binAndCount([Float](repeating: v, count: 333), lo: lo, hi: hi, bins: bins)
                XCTAssertEqual(a, 0, accuracy: 1e-12); XCTAssertEqual(b, 0); XCTAssertEqual(nf, 0)
            }
            // B values, one per bin → log2 B; and the same with every bin filled 9 times.
            let uniform = (0..<bins).map(center)
            let (u1, u2, _) = binAndCount(uniform, lo: lo, hi: hi, bins: bins)
            assertClose(u1, log2(Double(bins)), 1e-12); assertClose(u2, log2(Double(bins)), 1e-12)
            let (u3, _, _) = binAndCount(Array((0..<9).map { _ in uniform }.joined()), lo: lo, hi: hi, bins: bins)
            assertClose(u3, log2(Double(bins)), 1e-12)
            // Two-point: 30 values in the first bin, 70 in the last → p = 0.3.
            let two = [Float](repeating: lo, count: 30) + [Float](repeating: hi, count: 70)
            let (t1, t2, _) = binAndCount(two, lo: lo, hi: hi, bins: bins)
            assertClose(t1, Naive.twoPoint(0.3), 1e-12); assertClose(t2, Naive.twoPoint(0.3), 1e-12)
            // Miller–Madow: m = 2, n = 100.
            let (m1, m2, _) = binAndCount(two, lo: lo, hi: hi, bins: bins, millerMadow: true)
            assertClose(m1, Naive.twoPoint(0.3) + 1 / (200 * log(2.0)), 1e-12)
            assertClose(m2, Naive.twoPoint(0.3) + 1 / (200 * log(2.0)), 1e-12)
            // Non-finite values are not counted in n.
            let (n1, _, nf) = binAndCount(two + [.nan, .infinity, -.infinity], lo: lo, hi: hi, bins: bins)
            XCTAssertEqual(nf, 3)
            assertClose(n1, Naive.twoPoint(0.3), 1e-12)
        }
    }

    // MARK: Through TapAccumulator (dense and sparse paths)

    /// plain_cnn's taps used here: 0 = input [1, 28, 28] (784 values a channel: the
    /// dense path at 16 bins) and 6 = pool2 [16, 6, 6] (36 values: the sparse path at 64 bins).
    private func accumulator(bins: Int, millerMadow: Bool = false, lo: Float = 0, hi: Float = 1,
                             images: Int = 4) throws -> (TapAccumulator, PerImageStore) {
        let network = try InfoFixtures.network("plain_cnn")
        let settings = AnalysisSettings(bins: bins, range: .fixed(lo: lo, hi: hi), millerMadow: millerMadow)
        let ranges = network.taps.map { TapRange.uniform(lo, hi, channels: $0.channels) }
        let store = try PerImageStore(imageCount: images, tapChannels: network.taps.map(\.channels), classCount: network.classCount)
        let acc = TapAccumulator(network: network, settings: settings, ranges: ranges, classCount: network.classCount, store: store)
        return (acc, store)
    }

    /// Value at the centre of bin k of [0, 1] with B bins.
    private func center(_ k: Int, _ bins: Int) -> Float { Float((Double(k) + 0.5) / Double(bins)) }

    func testClosedFormsThroughAccumulatorDensePath() throws {
        let bins = 16
        for mm in [false, true] {
            let (acc, store) = try accumulator(bins: bins, millerMadow: mm)
            // Image 0: constant; 1: uniform (49 per bin); 2: two-point 196/588; 3: outside the range both sides (two-point 392/392).
            let constant = [Float](repeating: 0.4, count: 784)
            let uniform = (0..<784).map { center($0 % bins, bins) }
            let two = (0..<784).map { $0 < 196 ? center(2, bins) : center(11, bins) }
            let outside = (0..<784).map { $0 % 2 == 0 ? Float(-5) : Float(9) }
            acc.begin(images: [0, 1, 2, 3], slots: [3, 3, 5, 10])
            observe(acc, tap: 0, values: constant + uniform + two + outside)
            let correction: (Int) -> Double = { m in mm ? Double(m - 1) / (2 * 784 * log(2.0)) : 0 }
            let expected = [0, 4 + correction(16), Naive.twoPoint(0.25) + correction(2), 1 + correction(2)]
            for i in 0..<4 {
                assertClose(Double(store.channelEntropies(image: i, tap: 0)[0]), expected[i], 1e-6, "image \(i) mm \(mm)")
                assertClose(Double(store.layerEntropy(image: i, tap: 0)), expected[i], 1e-6, "image \(i)")
            }
            let h = acc.histograms.taps[0]
            XCTAssertEqual(acc.histograms.imageCounts[3], 2)
            XCTAssertEqual(acc.histograms.imageCounts[10], 1, "slot K holds unlabelled images")
            assertClose(h.layerInstanceSum[3].value, expected[0] + expected[1], 1e-12)
            assertClose(h.layerInstanceSquares[3].value, expected[0] * expected[0] + expected[1] * expected[1], 1e-10)
            assertClose(h.channelInstanceSum[5].value, expected[2], 1e-12)
            // Ensemble histogram of class 3: 784 in bin 6 (0.4) plus 49 in every bin.
            var class3 = [UInt64](repeating: 49, count: bins); class3[6] += 784
            XCTAssertEqual(h.histogram(channel: 0, classes: [3]), class3)
            XCTAssertEqual(h.histogram(channel: nil, classes: [10]), [392] + [UInt64](repeating: 0, count: 14) + [392])
            XCTAssertEqual(h.nonFinite, [UInt64](repeating: 0, count: 11))
        }
    }

    func testClosedFormsThroughAccumulatorSparsePath() throws {
        let bins = 64, tap = 6, hw = 36, channels = 16
        for mm in [false, true] {
            let (acc, store) = try accumulator(bins: bins, millerMadow: mm, images: 1)
            // Channel c: 0 constant; 1 uniform over 36 bins; 2 two-point 9/27; others: value c/16 constant.
            var values: [Float] = []
            for c in 0..<channels {
                switch c {
                case 0: values += [Float](repeating: 0.5, count: hw)
                case 1: values += (0..<hw).map { center($0 + 10, bins) }
                case 2: values += (0..<hw).map { $0 < 9 ? center(0, bins) : center(63, bins) }
                default: values += [Float](repeating: Float(c) / 16, count: hw)
                }
            }
            acc.begin(images: [0], slots: [1])
            observe(acc, tap: tap, values: values)
            let correction: (Int) -> Double = { m in mm ? Double(m - 1) / (2 * 36 * log(2.0)) : 0 }
            let entropies = store.channelEntropies(image: 0, tap: tap)
            XCTAssertEqual(entropies.count, channels)
            assertClose(Double(entropies[0]), 0, 1e-6)
            assertClose(Double(entropies[1]), log2(36) + correction(36), 1e-6)
            assertClose(Double(entropies[2]), Naive.twoPoint(0.25) + correction(2), 1e-6)
            for c in 3..<channels { assertClose(Double(entropies[c]), 0, 1e-6) }
            // Layer level: the histogram of all 576 values.
            var layer = [Int](repeating: 0, count: bins)
            for v in values { layer[Naive.bin(v, lo: 0, hi: 1, bins: bins)!] += 1 }
            assertClose(Double(store.layerEntropy(image: 0, tap: tap)), Naive.entropy(layer, millerMadow: mm), 1e-6)
            XCTAssertEqual(acc.histograms.taps[tap].histogram(channel: nil, classes: [1]).map { Int($0) }, layer)
            // The sparse path must leave its scratch histogram clean: a second image gives the same numbers.
            acc.begin(images: [0], slots: [2])
            observe(acc, tap: tap, values: values)
            assertClose(Double(store.channelEntropies(image: 0, tap: tap)[1]), log2(36) + correction(36), 1e-6)
            XCTAssertEqual(acc.histograms.taps[tap].histogram(channel: nil, classes: [2]).map { Int($0) }, layer)
        }
    }

    /// The 32-bit class counts are flushed into the 64-bit totals every
    /// `flushInterval` images; flushing after every image must give the same
    /// histograms as flushing only at the end.
    func testClassCountsFlushedOftenEqualFlushedOnce() throws {
        let network = try InfoFixtures.network("plain_cnn")
        let settings = AnalysisSettings(bins: 64)
        let ranges = network.taps.map { TapRange.uniform(-2, 3, channels: $0.channels) }
        let once = TapAccumulator(network: network, settings: settings, ranges: ranges, classCount: network.classCount, store: nil)
        let often = TapAccumulator(network: network, settings: settings, ranges: ranges, classCount: network.classCount, store: nil)
        XCTAssertGreaterThan(once.flushInterval, 1000)
        often.flushInterval = 1
        var rng = SplitMix64(seed: 5)
        for image in 0..<6 {
            let info = network.taps[0]
            let values = (0..<info.valuesPerImage).map { _ in Float.random(in: -3...4, using: &rng) }
            for acc in [once, often] {
                acc.begin(images: [image], slots: [image % 3])
                observe(acc, tap: 0, values: values)
            }
        }
        XCTAssertEqual(once.histograms, often.histograms)
        XCTAssertEqual(once.histograms.taps[0].counts.reduce(0, +), UInt64(6 * network.taps[0].valuesPerImage))
    }

    // MARK: Non-finite values

    func testNonFiniteValuesAreCountedNotBinned() throws {
        let (acc, store) = try accumulator(bins: 16, images: 2)
        // Image 0 (dense tap 0): 390 + 390 finite values in two bins, 4 non-finite.
        var dense = (0..<780).map { $0 < 390 ? Float(0.01) : Float(0.99) }
        dense += [.nan, .infinity, -.infinity, -.nan]
        dense.swapAt(0, 780); dense.swapAt(400, 782)    // spread them out
        // Image 1: all non-finite.
        let allBad = (0..<784).map { [Float.nan, .infinity, -.infinity][$0 % 3] }
        acc.begin(images: [0, 1], slots: [4, 7])
        observe(acc, tap: 0, values: dense + allBad)
        let h = acc.histograms.taps[0]
        XCTAssertEqual(h.nonFinite[4], 4)
        XCTAssertEqual(h.nonFinite[7], 784)
        XCTAssertEqual(h.histogram(channel: 0, classes: [4]), [390] + [UInt64](repeating: 0, count: 14) + [390])
        XCTAssertEqual(h.histogram(channel: 0, classes: [7]), [UInt64](repeating: 0, count: 16))
        assertClose(Double(store.channelEntropies(image: 0, tap: 0)[0]), 1, 1e-6, "non-finite values ignored")
        assertClose(Double(store.layerEntropy(image: 0, tap: 0)), 1, 1e-6)
        XCTAssertEqual(store.channelEntropies(image: 1, tap: 0)[0], 0)
        XCTAssertEqual(store.layerEntropy(image: 1, tap: 0), 0)

        // The sparse path: tap 6 has 36 values a channel, fewer than 64 bins.
        let (sparseAcc, sparseStore) = try accumulator(bins: 64, millerMadow: true, images: 1)
        var values: [Float] = []
        for c in 0..<16 {
            // 2 NaN + c Inf, the rest alternating between two bins.
            values += (0..<36).map { j in j < 2 ? Float.nan : j < 2 + c ? (j % 2 == 0 ? Float.infinity : -Float.infinity) : (j % 2 == 0 ? 0.2 : 0.7) }
        }
        sparseAcc.begin(images: [0], slots: [0])
        observe(sparseAcc, tap: 6, values: values)
        let hs = sparseAcc.histograms.taps[6]
        XCTAssertEqual(hs.nonFinite[0], UInt64(16 * 2 + (0..<16).reduce(0, +)))
        for c in 0..<16 {
            let finite = (0..<36).filter { $0 >= 2 + c }
            let even = finite.filter { $0 % 2 == 0 }.count
            let expected = Naive.entropy([even, finite.count - even], millerMadow: true)
            assertClose(Double(sparseStore.channelEntropies(image: 0, tap: 6)[c]), expected, 1e-6, "channel \(c)")
            XCTAssertEqual(hs.histogram(channel: c, classes: [0]).reduce(0, +), UInt64(finite.count))
        }
        // The summary reports them.
        let network = try InfoFixtures.network("plain_cnn")
        let summary = AnalysisSummary(network: network, histograms: sparseAcc.histograms,
                                      ranges: network.taps.map { TapRange.uniform(0, 1, channels: $0.channels) },
                                      settings: sparseAcc.settings)
        XCTAssertEqual(summary.taps[6].nonFiniteValues, hs.nonFinite[0])
        XCTAssertEqual(summary.taps[0].nonFiniteValues, 0)
    }

    func testCalibrationIgnoresNonFiniteValues() throws {
        let network = try InfoFixtures.network("plain_cnn")
        let extremes = Calibration.Extremes(network: network)
        var values = (0..<784).map { Float($0 % 50) / 10 - 1 }   // −1 … 3.9
        values[3] = .nan; values[10] = .infinity; values[20] = -.infinity
        values.withUnsafeBufferPointer {
            extremes.observe(TapActivation(tap: 0, batch: 1, shape: [1, 28, 28], values: $0))
        }
        XCTAssertEqual(extremes.lo[0], [-1])
        XCTAssertEqual(extremes.hi[0], [3.9])
        // A channel with only non-finite values gets [0, 0] (its values are all non-finite anyway).
        let bad = [Float](repeating: .nan, count: 16 * 36)
        bad.withUnsafeBufferPointer {
            extremes.observe(TapActivation(tap: 6, batch: 1, shape: [16, 6, 6], values: $0))
        }
        for mode in [RangeMode.layer, .channel] {
            let ranges = Calibration.ranges(extremes, mode: mode)
            XCTAssertEqual(ranges[6].lo, [Float](repeating: 0, count: 16))
            XCTAssertEqual(ranges[6].hi, [Float](repeating: 0, count: 16))
            XCTAssertEqual(ranges[0].lo, [-1]); XCTAssertEqual(ranges[0].hi, [3.9])
        }
    }
}
