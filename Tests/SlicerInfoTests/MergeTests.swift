import Foundation
import XCTest
import SlicerData
import SlicerEngine
@testable import SlicerInfo

/// Histograms merge by addition: order does not matter, shards add up to one run.
final class MergeTests: XCTestCase {
    private struct Setup {
        let network: Network
        let analyzer: Analyzer
        let ranges: [TapRange]
        let labels: [Int]
    }

    /// 40 images of plain_cnn, batches of 5 so that every subset used below is
    /// made of whole batches of the same size as one run over all.
    private func setup(settings: AnalysisSettings = AnalysisSettings()) throws -> Setup {
        let network = try InfoFixtures.network("plain_cnn")
        let images = try makeImages(shape: network.inputShape, count: 40, seed: 5, labels: { ($0 * 7) % 10 })
        let analyzer = try Analyzer(input: try ModelInput(network: network, images: images), settings: settings,
                                    batchSize: 5, threads: 2)
        return Setup(network: network, analyzer: analyzer, ranges: try analyzer.calibrate(), labels: images.labels)
    }

    /// Integer parts exactly; the sums of instance entropies (doubles added in a
    /// different order) to rounding.
    private func assertSameHistograms(_ a: HistogramSet, _ b: HistogramSet, exactSums: Bool = false,
                                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.imageCounts, b.imageCounts, file: file, line: line)
        XCTAssertEqual(a.bins, b.bins); XCTAssertEqual(a.classCount, b.classCount)
        XCTAssertEqual(a.taps.count, b.taps.count, file: file, line: line)
        for (x, y) in zip(a.taps, b.taps) {
            XCTAssert(x.counts == y.counts, "ensemble counts differ", file: file, line: line)
            XCTAssertEqual(x.nonFinite, y.nonFinite, file: file, line: line)
            if exactSums {
                XCTAssertEqual(x.layerInstanceSum, y.layerInstanceSum, file: file, line: line)
                XCTAssertEqual(x.channelInstanceSum, y.channelInstanceSum, file: file, line: line)
            }
            for (u, v) in zip(x.layerInstanceSum + x.layerInstanceSquares + x.channelInstanceSum,
                              y.layerInstanceSum + y.layerInstanceSquares + y.channelInstanceSum) {
                XCTAssertEqual(u, v, accuracy: 1e-9 * max(1, abs(u)), file: file, line: line)
            }
        }
    }

    func testAddIsOrderIndependentAndHalvesMakeTheWhole() throws {
        let s = try setup()
        let full = try s.analyzer.run(ranges: s.ranges, keepPerImage: false).histograms
        let parts = try [Array(0..<10), Array(10..<25), Array(25..<40)].map {
            try s.analyzer.run(images: $0, ranges: s.ranges, keepPerImage: false).histograms
        }
        XCTAssertEqual(parts.map(\.imageCount), [10, 15, 15])
        var sums: [HistogramSet] = []
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]] {
            var total = parts[order[0]]
            total.add(parts[order[1]])
            total.add(parts[order[2]])
            sums.append(total)
            assertSameHistograms(total, full)
        }
        // a + b == b + a exactly (IEEE addition commutes).
        var ab = parts[0]; ab.add(parts[1])
        var ba = parts[1]; ba.add(parts[0])
        XCTAssertEqual(ab, ba)
        // Adding an empty set changes nothing.
        var withEmpty = full
        withEmpty.add(HistogramSet(tapShapes: s.network.taps.map { ($0.channels, $0.valuesPerChannel) }, classCount: 10, bins: 64))
        XCTAssertEqual(withEmpty, full)

        // Two disjoint halves that are not contiguous (images from both ends in each batch).
        let even = Array(stride(from: 0, to: 40, by: 2)), odd = Array(stride(from: 1, to: 40, by: 2))
        var halves = try s.analyzer.run(images: odd, ranges: s.ranges, keepPerImage: false).histograms
        halves.add(try s.analyzer.run(images: even, ranges: s.ranges, keepPerImage: false).histograms)
        assertSameHistograms(halves, full)

        // A run in class-interleaved order is the same set.
        let interleaved = try s.analyzer.run(images: interleavedByClass(labels: s.labels), ranges: s.ranges, keepPerImage: false)
        assertSameHistograms(interleaved.histograms, full)

        // And the summaries agree.
        let a = AnalysisSummary(network: s.network, histograms: halves, ranges: s.ranges, settings: s.analyzer.settings)
        let b = AnalysisSummary(network: s.network, histograms: full, ranges: s.ranges, settings: s.analyzer.settings)
        for (x, y) in zip(a.taps, b.taps) {
            XCTAssertEqual(x.ensembleEntropy, y.ensembleEntropy)
            XCTAssertEqual(x.channelEnsembleEntropy, y.channelEnsembleEntropy)
            XCTAssertEqual(x.labelInformation, y.labelInformation)
            XCTAssertEqual(x.instanceEntropy, y.instanceEntropy, accuracy: 1e-12)
        }
    }

    func testPerImageStoreIsTheSameInAnyOrder() throws {
        let s = try setup(settings: AnalysisSettings(bins: 32, range: .channel))
        let a = try s.analyzer.run(ranges: s.ranges)
        let b = try s.analyzer.run(images: Array((0..<40).reversed()), ranges: s.ranges)
        let sa = try XCTUnwrap(a.store), sb = try XCTUnwrap(b.store)
        for i in 0..<40 {
            XCTAssertEqual(sa.prediction(image: i), sb.prediction(image: i))
            for t in s.network.taps.indices {
                XCTAssertEqual(Array(sa.channelEntropies(image: i, tap: t)), Array(sb.channelEntropies(image: i, tap: t)))
                XCTAssertEqual(sa.layerEntropy(image: i, tap: t), sb.layerEntropy(image: i, tap: t))
            }
        }
    }

    // MARK: Shard partials

    private func partial(_ s: Setup, shard: Int, of count: Int, histograms: HistogramSet,
                         settings: AnalysisSettings? = nil, ranges: [TapRange]? = nil,
                         modelDigest: String = "m", dataDigest: String = "d") -> AnalysisPartial {
        AnalysisPartial(model: "plain_cnn.onnx", data: "test", modelDigest: modelDigest, dataDigest: dataDigest,
                        totalImages: 40, shardIndex: shard, shardCount: count, settings: settings ?? s.analyzer.settings,
                        classNames: (0..<10).map { "c\($0)" }, ranges: ranges ?? s.ranges, histograms: histograms)
    }

    private func assertRefused(_ partials: [AnalysisPartial], mentioning words: String...,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try AnalysisPartial.merge(partials), file: file, line: line) { error in
            let text = "\(error)"
            for w in words { XCTAssert(text.contains(w), "\(text) should mention \(w)", file: file, line: line) }
        }
    }

    func testPartialMerge() throws {
        let s = try setup()
        let full = try s.analyzer.run(ranges: s.ranges, keepPerImage: false).histograms
        let shards = try [Array(0..<15), Array(15..<30), Array(30..<40)].map {
            try s.analyzer.run(images: $0, ranges: s.ranges, keepPerImage: false).histograms
        }
        let p = shards.enumerated().map { partial(s, shard: $0.offset + 1, of: 3, histograms: $0.element) }
        for order in [[0, 1, 2], [2, 0, 1]] {
            let merged = try AnalysisPartial.merge(order.map { p[$0] })
            XCTAssertEqual(merged.shardIndex, 1); XCTAssertEqual(merged.shardCount, 1)
            XCTAssertEqual(merged.ranges, s.ranges)
            XCTAssertEqual(merged.settings, s.analyzer.settings)
            assertSameHistograms(merged.histograms, full)
        }
        // Round trip through the file format.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("SlicerInfoTests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try p[1].write(to: dir + "/p2.json")
        let read = try AnalysisPartial.read(from: dir + "/p2.json")
        XCTAssertEqual(read.histograms, p[1].histograms)
        XCTAssertEqual(read.ranges, p[1].ranges)

        assertRefused([], mentioning: "no partials")
        assertRefused([p[0], p[1], p[1], p[2]], mentioning: "2/3", "twice")
        assertRefused([p[0], p[2]], mentioning: "missing", "2/3")
        assertRefused([p[0]], mentioning: "missing", "2/3", "3/3")
        let otherBins = partial(s, shard: 2, of: 3, histograms: shards[1], settings: AnalysisSettings(bins: 32))
        assertRefused([p[0], otherBins, p[2]], mentioning: "settings")
        let otherRange = partial(s, shard: 2, of: 3, histograms: shards[1], settings: AnalysisSettings(range: .channel))
        assertRefused([p[0], otherRange, p[2]], mentioning: "settings")
        let otherMM = partial(s, shard: 3, of: 3, histograms: shards[2], settings: AnalysisSettings(millerMadow: true))
        assertRefused([p[0], p[1], otherMM], mentioning: "settings")
        var ranges = s.ranges; ranges[3].hi[0] += 1
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 3, histograms: shards[2], ranges: ranges)], mentioning: "calibration")
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 3, histograms: shards[2], modelDigest: "x")], mentioning: "model")
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 3, histograms: shards[2], dataDigest: "x")], mentioning: "data")
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 4, histograms: shards[2])], mentioning: "shard count")
    }
}

/// Partials on disk: v2 (JSON) partials of earlier versions are still read;
/// damaged or lying files are refused with one line naming the file.
final class PartialFileTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "cnnslicer-partials-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func setup() throws -> (Analyzer, [TapRange], [HistogramSet]) {
        let network = try InfoFixtures.network("plain_cnn")
        let images = try makeImages(shape: network.inputShape, count: 30, seed: 8, labels: { ($0 * 3) % 10 })
        let analyzer = try Analyzer(input: try ModelInput(network: network, images: images), batchSize: 5, threads: 2)
        let ranges = try analyzer.calibrate()
        let parts = try [Array(0..<10), Array(10..<30)].map { try analyzer.run(images: $0, ranges: ranges, keepPerImage: false).histograms }
        return (analyzer, ranges, parts)
    }

    /// The v2 layout, written as version 2 wrote it (Codable field names).
    struct V2: Encodable {
        let format = "cnnslicer.analysis-partial.v2"
        let model = "plain_cnn.onnx", data = "test", modelDigest = "m", dataDigest = "d"
        let totalImages: Int, shardIndex: Int, shardCount = 2, bins = 64
        let range = "layer", millerMadow = false
        let classNames = (0..<10).map { "c\($0)" }
        let ranges: [TapRange]
        let histograms: Set
        struct Set: Encodable { let bins: Int; let classCount: Int; let taps: [Tap]; let imageCounts: [Int] }
        struct Tap: Encodable {
            let channels, valuesPerChannel, slots, bins: Int
            let counts, nonFinite: [UInt64]
            let layerInstanceSum, layerInstanceSquares, channelInstanceSum: [Double]
        }

        init(_ h: HistogramSet, shard: Int, ranges: [TapRange], counts: (Int, [UInt64]) -> [UInt64] = { $1 }) {
            totalImages = 30
            shardIndex = shard
            self.ranges = ranges
            histograms = Set(bins: h.bins, classCount: h.classCount, taps: h.taps.enumerated().map { t, tap in
                Tap(channels: tap.channels, valuesPerChannel: tap.valuesPerChannel, slots: tap.slots, bins: tap.bins,
                    counts: counts(t, tap.counts), nonFinite: tap.nonFinite, layerInstanceSum: tap.layerInstanceSum,
                    layerInstanceSquares: tap.layerInstanceSquares, channelInstanceSum: tap.channelInstanceSum)
            }, imageCounts: h.imageCounts)
        }
    }

    func testVersion2PartialsAreStillRead() throws {
        let (analyzer, ranges, parts) = try setup()
        let dir = try temporaryDirectory()
        for (i, part) in parts.enumerated() {
            try JSONEncoder().encode(V2(part, shard: i + 1, ranges: ranges)).write(to: URL(fileURLWithPath: dir + "/v2-\(i).json"))
        }
        let read = try (0..<2).map { try AnalysisPartial.read(from: dir + "/v2-\($0).json") }
        XCTAssertEqual(read[0].histograms, parts[0], "tap-level histograms rebuilt from the channel counts")
        let merged = try AnalysisPartial.merge(read)
        let full = try analyzer.run(ranges: ranges, keepPerImage: false).histograms
        XCTAssertEqual(merged.histograms.taps.map(\.counts), full.taps.map(\.counts))
        XCTAssertEqual(merged.histograms.taps.map(\.layerCounts), full.taps.map(\.layerCounts))
        // Mixed with a v3 partial of the other shard.
        let v3 = AnalysisPartial(model: "plain_cnn.onnx", data: "test", modelDigest: "m", dataDigest: "d", totalImages: 30,
                                 shardIndex: 2, shardCount: 2, settings: AnalysisSettings(), classNames: (0..<10).map { "c\($0)" },
                                 ranges: ranges, histograms: parts[1])
        try v3.write(to: dir + "/v3-1.partial")
        let mixed = try AnalysisPartial.merge([read[0], try AnalysisPartial.read(from: dir + "/v3-1.partial")])
        XCTAssertEqual(mixed.histograms, merged.histograms)
    }

    func testDamagedAndLyingPartialsAreRefusedNamingTheFile() throws {
        let (_, ranges, parts) = try setup()
        let dir = try temporaryDirectory()
        func refused(_ path: String, _ words: String..., file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try AnalysisPartial.read(from: path), file: file, line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(path) && !text.contains("\n"), text, file: file, line: line)
                for w in words { XCTAssertTrue(text.contains(w), "\(text) should mention \(w)", file: file, line: line) }
            }
        }
        // v2 whose counts lie about their length, or whose counts disagree with the image counts.
        try JSONEncoder().encode(V2(parts[0], shard: 1, ranges: ranges) { t, c in t == 3 ? Array(c.dropLast()) : c })
            .write(to: URL(fileURLWithPath: dir + "/short.json"))
        refused(dir + "/short.json", "tap 3", "counts")
        try JSONEncoder().encode(V2(parts[0], shard: 1, ranges: ranges) { t, c in t == 2 ? c.map { $0 * 2 } : c })
            .write(to: URL(fileURLWithPath: dir + "/double.json"))
        refused(dir + "/double.json", "tap 2")
        // v3: a flipped byte anywhere after the first line, a truncation, a lying header.
        let p = AnalysisPartial(model: "plain_cnn.onnx", data: "test", modelDigest: "m", dataDigest: "d", totalImages: 30,
                                shardIndex: 1, shardCount: 2, settings: AnalysisSettings(), classNames: (0..<10).map { "c\($0)" },
                                ranges: ranges, histograms: parts[0])
        let good = dir + "/good.partial"
        try p.write(to: good)
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: good))
        for offset in [40, bytes.count / 2, bytes.count - 20] {
            var bad = bytes
            bad[offset] ^= 0x04
            try bad.write(to: URL(fileURLWithPath: dir + "/flipped.partial"))
            XCTAssertThrowsError(try AnalysisPartial.read(from: dir + "/flipped.partial")) { error in
                XCTAssertTrue("\(error)".hasPrefix(dir + "/flipped.partial"), "\(error)")
            }
        }
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: dir + "/cut.partial"))
        refused(dir + "/cut.partial")
        let header = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\"shardIndex\":1", with: "\"shardIndex\":7")
        try Data(header.utf8).write(to: URL(fileURLWithPath: dir + "/lying.partial"))
        refused(dir + "/lying.partial")
        XCTAssertNoThrow(try AnalysisPartial.read(from: good))
    }
}
