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

    /// Writes `p`'s JSON edited by `edit`, sealed again unless `reseal` is false, and
    /// asserts that reading it fails with one line naming the file and `words`.
    private func assertReadRefused(_ p: AnalysisPartial, reseal: Bool = true, mentioning words: String...,
                                   edit: (inout [String: Any]) throws -> Void,
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(p)) as? [String: Any])
        try edit(&json)
        var data = try JSONSerialization.data(withJSONObject: json)
        if reseal, var edited = try? JSONDecoder().decode(AnalysisPartial.self, from: data) {
            // A partial as a faulty writer would seal it: the digest matches, the content lies.
            edited.digest = edited.sealDigest()
            data = try JSONEncoder().encode(edited)
        }
        let path = dir + "/shard.json"
        try data.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try AnalysisPartial.read(from: path), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssert(text.hasPrefix(path + ": "), "\(text) should start with the file", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            for w in words { XCTAssert(text.contains(w), "\(text) should mention \(w)", file: file, line: line) }
        }
    }

    /// Issue 12, item 1: lengths and values that lie are refused with the file
    /// and the field, before anything indexes them (they used to corrupt the
    /// heap in `TapHistograms.add` or give garbage entropies with exit status 0).
    func testPartialWithLyingFieldsIsRefused() throws {
        let s = try setup()
        let p = try shardPartials(s).partials[1]
        func tap(_ json: inout [String: Any], _ t: Int, _ change: (inout [String: Any]) -> Void) {
            var h = json["histograms"] as! [String: Any]
            var taps = h["taps"] as! [[String: Any]]
            change(&taps[t])
            h["taps"] = taps
            json["histograms"] = h
        }
        try assertReadRefused(p, mentioning: "histograms.taps[0].slots") { j in tap(&j, 0) { $0["slots"] = 12 } }
        try assertReadRefused(p, mentioning: "histograms.taps[2].counts") { j in
            tap(&j, 2) { $0["counts"] = Array(($0["counts"] as! [Any]).dropLast()) }
        }
        try assertReadRefused(p, mentioning: "histograms.taps[1].counts", "non-finite") { j in
            tap(&j, 1) { t in var n = t["nonFinite"] as! [Any]; n[0] = 281036332065510; t["nonFinite"] = n }
        }
        try assertReadRefused(p, mentioning: "histograms.taps[1].counts") { j in
            tap(&j, 1) { t in var c = t["counts"] as! [Int]; c[0] += 1; t["counts"] = c }
        }
        try assertReadRefused(p, mentioning: "histograms.taps[0].layerInstanceSum[0]") { j in
            tap(&j, 0) { t in var c = t["layerInstanceSum"] as! [Double]; c[0] = -1; t["layerInstanceSum"] = c }
        }
        try assertReadRefused(p, mentioning: "histograms.taps[3].channelInstanceSum") { j in
            tap(&j, 3) { t in var c = t["channelInstanceSum"] as! [Double]; c[4] = 1e6; t["channelInstanceSum"] = c }
        }
        try assertReadRefused(p, mentioning: "histograms.imageCounts") { j in
            var h = j["histograms"] as! [String: Any]; var n = h["imageCounts"] as! [Int]; n[0] = -9_223_372_036_854_775_781
            h["imageCounts"] = n; j["histograms"] = h
        }
        try assertReadRefused(p, mentioning: "ranges[2]") { j in
            var r = j["ranges"] as! [[String: Any]]; var lo = r[2]["lo"] as! [Double]; lo[0] = 1e30; r[2]["lo"] = lo; j["ranges"] = r
        }
        try assertReadRefused(p, mentioning: "shardIndex") { $0["shardIndex"] = 4 }
        try assertReadRefused(p, mentioning: "images") { $0["images"] = [15, 41] }
        try assertReadRefused(p, mentioning: "classNames") { $0["classNames"] = ["a"] }
        try assertReadRefused(p, mentioning: "histograms.taps[0].counts", "missing") { j in tap(&j, 0) { $0["counts"] = nil } }
        try assertReadRefused(p, mentioning: "histograms.bins", "not a") { j in
            var h = j["histograms"] as! [String: Any]; h["bins"] = "64"; j["histograms"] = h
        }
        // A changed count keeps every length and sum consistent: only the digest sees it.
        try assertReadRefused(p, reseal: false, mentioning: "digest") { j in
            tap(&j, 1) { t in var c = t["counts"] as! [Int]; let i = c.firstIndex { $0 > 0 }!; c[i] -= 1; c[i + 1] += 1; t["counts"] = c }
        }
        try assertReadRefused(p, reseal: false, mentioning: "re-run the shards") { $0["format"] = "cnnslicer.analysis-partial.v2" }
        try assertReadRefused(p, reseal: false, mentioning: "not a cnnslicer.analysis-partial.v3 file", "\\n") {
            $0["format"] = "x\ny\u{0}"
        }
        // Truncated: the file ends in the middle of the JSON.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try JSONEncoder().encode(p)
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.json"))
        XCTAssertThrowsError(try AnalysisPartial.read(from: dir + "/cut.json")) { XCTAssert("\($0)".hasPrefix(dir + "/cut.json: "), "\($0)") }
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
