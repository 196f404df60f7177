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

    /// Everything exactly, the sums of instance entropies included: they are
    /// exact sums (`ExactSum`), the same in any order of addition. `exactSums:
    /// false` for a v2 partial, whose sums were written as rounded doubles.
    private func assertSameHistograms(_ a: HistogramSet, _ b: HistogramSet, exactSums: Bool = true,
                                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.imageCounts, b.imageCounts, file: file, line: line)
        XCTAssertEqual(a.bins, b.bins); XCTAssertEqual(a.classCount, b.classCount)
        XCTAssertEqual(a.taps.count, b.taps.count, file: file, line: line)
        for (x, y) in zip(a.taps, b.taps) {
            XCTAssert(x.counts == y.counts, "ensemble counts differ", file: file, line: line)
            XCTAssertEqual(x.nonFinite, y.nonFinite, file: file, line: line)
            if exactSums {
                XCTAssertEqual(x.layerInstanceSum, y.layerInstanceSum, file: file, line: line)
                XCTAssertEqual(x.layerInstanceSquares, y.layerInstanceSquares, file: file, line: line)
                XCTAssertEqual(x.channelInstanceSum, y.channelInstanceSum, file: file, line: line)
                XCTAssertEqual(x.closedConditional, y.closedConditional, file: file, line: line)
            }
            for (u, v) in zip(x.layerInstanceSum + x.layerInstanceSquares + x.channelInstanceSum,
                              y.layerInstanceSum + y.layerInstanceSquares + y.channelInstanceSum) {
                XCTAssertEqual(u.value, v.value, accuracy: 1e-9 * max(1, abs(u.value)), file: file, line: line)
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

    private func partial(_ s: Setup, shard: Int, of count: Int, images: Range<Int>, histograms: HistogramSet,
                         settings: AnalysisSettings? = nil, ranges: [TapRange]? = nil,
                         modelDigest: String = "m", dataDigest: String = "d") -> AnalysisPartial {
        AnalysisPartial(model: "plain_cnn.onnx", data: "test", modelDigest: modelDigest, dataDigest: dataDigest,
                        totalImages: 40, shardIndex: shard, shardCount: count, images: images,
                        settings: settings ?? s.analyzer.settings,
                        classNames: (0..<10).map { "c\($0)" }, ranges: ranges ?? s.ranges, histograms: histograms)
    }

    private func assertRefused(_ partials: [AnalysisPartial], mentioning words: String...,
                               file: StaticString = #filePath, line: UInt = #line) {
        let named = partials.enumerated().map { (path: "part\($0.offset).json", partial: $0.element) }
        XCTAssertThrowsError(try AnalysisPartial.merge(named), file: file, line: line) { error in
            let text = "\(error)"
            for w in words { XCTAssert(text.contains(w), "\(text) should mention \(w)", file: file, line: line) }
        }
    }

    private let shardImages = [0..<15, 15..<30, 30..<40]

    private func shardPartials(_ s: Setup) throws -> (shards: [HistogramSet], partials: [AnalysisPartial]) {
        let shards = try shardImages.map { try s.analyzer.run(images: Array($0), ranges: s.ranges, keepPerImage: false).histograms }
        let partials = shards.enumerated().map {
            partial(s, shard: $0.offset + 1, of: 3, images: shardImages[$0.offset], histograms: $0.element)
        }
        return (shards, partials)
    }

    func testPartialMerge() throws {
        let s = try setup()
        let full = try s.analyzer.run(ranges: s.ranges, keepPerImage: false).histograms
        let (shards, p) = try shardPartials(s)
        for order in [[0, 1, 2], [2, 0, 1]] {
            let merged = try AnalysisPartial.merge(order.map { (path: "p\($0)", partial: p[$0]) })
            XCTAssertEqual(merged.shardIndex, 1); XCTAssertEqual(merged.shardCount, 1)
            XCTAssertEqual(merged.ranges, s.ranges)
            XCTAssertEqual(merged.settings, s.analyzer.settings)
            assertSameHistograms(merged.histograms, full)
        }
        // Round trip through the file format.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try p[1].write(to: dir + "/p2.json")
        let read = try AnalysisPartial.read(from: dir + "/p2.json")
        XCTAssertEqual(read.histograms, p[1].histograms)
        XCTAssertEqual(read.ranges, p[1].ranges)
        XCTAssertEqual(read.imageRange, 15..<30)

        assertRefused([], mentioning: "no partials")
        // Errors name the file(s) concerned, not only the shard numbers.
        assertRefused([p[0], p[1], p[1], p[2]], mentioning: "part2.json", "2/3", "twice", "part1.json")
        assertRefused([p[0], p[2]], mentioning: "missing", "2/3", "part0.json", "part1.json")
        assertRefused([p[0]], mentioning: "missing", "2/3", "3/3", "part0.json")
        let otherBins = partial(s, shard: 2, of: 3, images: 15..<30, histograms: shards[1], settings: AnalysisSettings(bins: 32))
        assertRefused([p[0], otherBins, p[2]], mentioning: "settings", "part1.json")
        let otherRange = partial(s, shard: 2, of: 3, images: 15..<30, histograms: shards[1], settings: AnalysisSettings(range: .channel))
        assertRefused([p[0], otherRange, p[2]], mentioning: "settings")
        let otherMM = partial(s, shard: 3, of: 3, images: 30..<40, histograms: shards[2], settings: AnalysisSettings(millerMadow: true))
        assertRefused([p[0], p[1], otherMM], mentioning: "settings")
        var ranges = s.ranges; ranges[3].hi[0] += 1
        // The calibration mismatch names the partial that differs, not the model.
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 3, images: 30..<40, histograms: shards[2], ranges: ranges)],
                      mentioning: "calibration", "part2.json")
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 3, images: 30..<40, histograms: shards[2], modelDigest: "x")], mentioning: "model")
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 3, images: 30..<40, histograms: shards[2], dataDigest: "x")], mentioning: "data")
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 4, images: 30..<40, histograms: shards[2])], mentioning: "shard count")
        // Shards that do not tile the images: a gap, and an end short of the data.
        assertRefused([p[0], partial(s, shard: 2, of: 3, images: 16..<30, histograms: shards[1]), p[2]],
                      mentioning: "part1.json", "16..<30", "start at 15")
        assertRefused([p[0], p[1], partial(s, shard: 3, of: 3, images: 30..<39, histograms: shards[2])],
                      mentioning: "part2.json", "end at image 39")
    }

    private func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("SlicerInfoTests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes `p` changed by `edit` — as a faulty writer would, with a digest
    /// that matches — and asserts that reading it fails with one line naming
    /// the file and `words`.
    private func assertReadRefused(_ p: AnalysisPartial, mentioning words: String...,
                                   edit: (inout PartialFields) throws -> Void,
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var fields = PartialFields(p)
        try edit(&fields)
        let path = dir + "/shard.partial"
        try fields.partial.write(to: path)
        assertReadFails(path, words, file: file, line: line)
    }

    private func assertReadFails(_ path: String, _ words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try AnalysisPartial.read(from: path), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssert(text.hasPrefix(path + ": "), "\(text) should start with the file", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            for w in words { XCTAssert(text.contains(w), "\(text) should mention \(w)", file: file, line: line) }
        }
    }

    /// A partial's fields, to be changed one at a time.
    struct PartialFields {
        var shardIndex: Int, images: [Int], classNames: [String], ranges: [TapRange], histograms: HistogramSet, format: String?
        let base: AnalysisPartial
        init(_ p: AnalysisPartial) {
            base = p
            shardIndex = p.shardIndex; images = p.images; classNames = p.classNames; ranges = p.ranges; histograms = p.histograms
            format = nil
        }
        var partial: AnalysisPartial {
            AnalysisPartial(model: base.model, data: base.data, modelDigest: base.modelDigest, dataDigest: base.dataDigest,
                            totalImages: base.totalImages, shardIndex: shardIndex, shardCount: base.shardCount, images: images,
                            bins: base.bins, range: base.range, millerMadow: base.millerMadow, classNames: classNames,
                            ranges: ranges, histograms: histograms)
        }
    }

    /// Issue 12, item 1: lengths and values that lie are refused with the file
    /// and the field, before anything indexes them (they used to corrupt the
    /// heap in `TapHistograms.add` or give garbage entropies with exit status 0).
    /// Every partial below carries a digest that matches its (lying) contents.
    func testPartialWithLyingFieldsIsRefused() throws {
        let s = try setup()
        let p = try shardPartials(s).partials[1]
        try assertReadRefused(p, mentioning: "histograms.taps[0].slots") { f in
            let t = f.histograms.taps[0]
            f.histograms.taps[0] = TapHistograms(channels: t.channels, valuesPerChannel: t.valuesPerChannel, slots: 12, bins: t.bins, layout: .kept)
        }
        try assertReadRefused(p, mentioning: "histograms.taps[1].layerCounts", "non-finite") { f in
            f.histograms.taps[1].nonFinite[0] = 281036332065510
        }
        try assertReadRefused(p, mentioning: "histograms.taps[1].counts") { f in f.histograms.taps[1].counts[0] += 1 }
        try assertReadRefused(p, mentioning: "histograms.taps[2].layerCounts") { f in f.histograms.taps[2].layerCounts[3] += 5 }
        try assertReadRefused(p, mentioning: "histograms.taps[0].layerInstanceSum[0]") { f in f.histograms.taps[0].layerInstanceSum[0] = -1 }
        try assertReadRefused(p, mentioning: "histograms.taps[3].channelInstanceSum") { f in f.histograms.taps[3].channelInstanceSum[4] = 1e6 }
        try assertReadRefused(p, mentioning: "histograms.imageCounts") { f in f.histograms.imageCounts[0] = -9_223_372_036_854_775_781 }
        // One image more in class 0 than its values: the tap-level histograms no longer add up.
        try assertReadRefused(p, mentioning: "histograms.taps[0].layerCounts", "class slot 0") { f in f.histograms.imageCounts[0] += 1 }
        try assertReadRefused(p, mentioning: "ranges[2]") { f in f.ranges[2].lo[0] = 1e30 }
        try assertReadRefused(p, mentioning: "shardIndex") { f in f.shardIndex = 4 }
        try assertReadRefused(p, mentioning: "images") { f in f.images = [15, 41] }
        try assertReadRefused(p, mentioning: "classNames") { f in f.classNames = ["a"] }
        // A changed count that keeps every length and sum consistent: only the digest sees it.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try p.write(to: dir + "/good.partial")
        let good = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/good.partial"))
        var flipped = good
        flipped[good.count - 200] ^= 0x01
        try flipped.write(to: URL(fileURLWithPath: dir + "/flipped.partial"))
        assertReadFails(dir + "/flipped.partial", ["digest"])
        // Another version's header, and a header whose format is not text one can print.
        for (name, format, words) in [("older", "cnnslicer.analysis-partial.v3", ["re-run the shards"]),
                                      ("odd", "x\ny\u{0}", ["not a \(AnalysisPartial.format) file", "\\n"])] {
            // Only the header changes; the bytes after it are those of `good`.
            var bytes = Data(good.prefix(AnalysisPartial.magic.count))
            let headerLength = Int(good[AnalysisPartial.magic.count..<(AnalysisPartial.magic.count + 8)].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let headerStart = AnalysisPartial.magic.count + 8
            var header = String(decoding: good[headerStart..<(headerStart + headerLength)], as: UTF8.self)
            let replaced = header.replacingOccurrences(of: "\"format\":\"\(AnalysisPartial.format)\"",
                                                       with: "\"format\":" + String(decoding: try JSONEncoder().encode(format), as: UTF8.self))
            XCTAssertNotEqual(replaced, header)
            header = replaced
            withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: Array(header.utf8))
            bytes.append(good[(headerStart + headerLength)...])
            try bytes.write(to: URL(fileURLWithPath: dir + "/\(name).partial"))
            assertReadFails(dir + "/\(name).partial", words)
        }
        // Truncated: the file ends in the middle.
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.partial"))
        assertReadFails(dir + "/cut.partial", [])
        // A JSON partial of another version, as robust's interim v3 wrote.
        try Data("{\"format\": \"cnnslicer.analysis-partial.v3\"}".utf8).write(to: URL(fileURLWithPath: dir + "/v3.json"))
        assertReadFails(dir + "/v3.json", ["re-run the shards"])
    }

    /// A partial that is consistent in itself but made for another model is
    /// refused against the model, naming the field.
    func testPartialAgainstAnotherModel() throws {
        let s = try setup()
        let p = try shardPartials(s).partials[0]
        XCTAssertNoThrow(try p.validate(against: s.network))
        let other = try InfoFixtures.network("residual_cnn")
        XCTAssertThrowsError(try p.validate(against: other)) { error in
            XCTAssert("\(error)".contains("histograms."), "\(error)")
        }
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
                    counts: counts(t, tap.counts), nonFinite: tap.nonFinite, layerInstanceSum: tap.layerInstanceSum.map(\.value),
                    layerInstanceSquares: tap.layerInstanceSquares.map(\.value), channelInstanceSum: tap.channelInstanceSum.map(\.value))
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
        // v2 wrote its sums as doubles: they come back as the exact sums of those doubles.
        var expected = parts[0]
        for t in expected.taps.indices {
            expected.taps[t].layerInstanceSum = expected.taps[t].layerInstanceSum.map { ExactSum($0.value) }
            expected.taps[t].layerInstanceSquares = expected.taps[t].layerInstanceSquares.map { ExactSum($0.value) }
            expected.taps[t].channelInstanceSum = expected.taps[t].channelInstanceSum.map { ExactSum($0.value) }
        }
        XCTAssertEqual(read[0].histograms, expected, "tap-level histograms rebuilt from the channel counts")
        let merged = try AnalysisPartial.merge(read.enumerated().map { (path: "v2-\($0.offset).json", partial: $0.element) })
        let full = try analyzer.run(ranges: ranges, keepPerImage: false).histograms
        XCTAssertEqual(merged.histograms.taps.map(\.counts), full.taps.map(\.counts))
        XCTAssertEqual(merged.histograms.taps.map(\.layerCounts), full.taps.map(\.layerCounts))
        // Mixed with a current (v5) partial of the other shard (v2 partials do not say which images
        // they hold: then the shards' image counts must add up to the data's).
        let current = AnalysisPartial(model: "plain_cnn.onnx", data: "test", modelDigest: "m", dataDigest: "d", totalImages: 30,
                                 shardIndex: 2, shardCount: 2, images: 10..<30, settings: AnalysisSettings(),
                                 classNames: (0..<10).map { "c\($0)" }, ranges: ranges, histograms: parts[1])
        try current.write(to: dir + "/v5-1.partial")
        let mixed = try AnalysisPartial.merge([(path: "v2-0.json", partial: read[0]),
                                               (path: "v5-1.partial", partial: try AnalysisPartial.read(from: dir + "/v5-1.partial"))])
        // The v2 shard's sums as its doubles, the current shard's exact.
        var expectedMixed = read[0].histograms
        expectedMixed.add(parts[1])
        XCTAssertEqual(mixed.histograms, expectedMixed)
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
        refused(dir + "/short.json", "taps[3]", "counts")
        try JSONEncoder().encode(V2(parts[0], shard: 1, ranges: ranges) { t, c in t == 2 ? c.map { $0 * 2 } : c })
            .write(to: URL(fileURLWithPath: dir + "/double.json"))
        refused(dir + "/double.json", "taps[2]")
        // The current version: a flipped byte anywhere after the first line, a truncation, a lying header.
        let p = AnalysisPartial(model: "plain_cnn.onnx", data: "test", modelDigest: "m", dataDigest: "d", totalImages: 30,
                                shardIndex: 1, shardCount: 2, images: 0..<10, settings: AnalysisSettings(),
                                classNames: (0..<10).map { "c\($0)" }, ranges: ranges, histograms: parts[0])
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
