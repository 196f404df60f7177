import Foundation
import XCTest
import SlicerData
import Synchronization
@testable import SlicerEngine
@testable import SlicerInfo

/// The background engine (snapshots, cancellation, priority work) and the cache.
final class EngineAndCacheTests: XCTestCase {
    func makeInput(count: Int = 60) throws -> ModelInput {
        let network = try InfoFixtures.network("plain_cnn")
        let images = try makeImages(shape: network.inputShape, count: count, seed: 7) { $0 % 10 }
        return try ModelInput(network: network, images: images)
    }

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "cnnslicer-cache-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func testEngineMatchesADirectRunAndPublishesMonotonicSnapshots() throws {
        let input = try makeInput()
        let engine = AnalysisEngine(input: input, batchSize: 4, threads: 2, cache: nil)
        // A reader hammers the snapshot while the engine works: every snapshot
        // must be internally consistent and progress must never go backwards.
        let stop = Mutex<Bool>(false)
        let problems = Mutex<[String]>([])
        let reader = Thread {
            var last = -1
            while !stop.withLock({ $0 }) {
                guard let s = engine.snapshot else { continue }
                if s.progress.imagesDone < last { problems.withLock { $0.append("progress went back") } }
                last = s.progress.imagesDone
                if let h = s.histograms, h.imageCount > s.progress.imagesTotal {
                    problems.withLock { $0.append("more images in histograms than in the set") }
                }
                if let store = s.store, store.completeCount > s.progress.imagesTotal {
                    problems.withLock { $0.append("store overfull") }
                }
            }
        }
        reader.start()
        let generation = engine.start()
        let snapshot = try XCTUnwrap(engine.wait(for: generation, timeout: 60))
        stop.withLock { $0 = true }
        XCTAssertEqual(problems.withLock { $0 }, [])
        XCTAssertTrue(snapshot.isComplete)
        XCTAssertNil(snapshot.error)
        XCTAssertEqual(snapshot.store?.completeCount, 60)

        // Same numbers as a direct run over the same batches. (BLAS may round a
        // row differently in a batch of another size, so batches must match for
        // bit-identical results; the order of images within the set does not matter.)
        let analyzer = try Analyzer(input: input, batchSize: 4, threads: 1)
        let direct = try analyzer.run(images: interleavedByClass(labels: input.images.labels),
                                      ranges: try analyzer.calibrate())
        XCTAssertEqual(snapshot.ranges, direct.ranges)
        XCTAssertEqual(snapshot.histograms?.taps.map(\.counts), direct.histograms.taps.map(\.counts))
        let a = try XCTUnwrap(snapshot.summary), b = direct.summary(network: input.network)
        for (x, y) in zip(a.taps, b.taps) {
            XCTAssertEqual(x.ensembleEntropy, y.ensembleEntropy, accuracy: 1e-12)
            XCTAssertEqual(x.instanceEntropy, y.instanceEntropy, accuracy: 1e-9)
        }
        for i in 0..<60 {
            XCTAssertEqual(Array(snapshot.store!.channelEntropies(image: i, tap: 3)), Array(direct.store!.channelEntropies(image: i, tap: 3)))
        }
    }

    func testANewRequestCancelsTheOldOne() throws {
        let input = try makeInput(count: 400)
        let engine = AnalysisEngine(input: input, batchSize: 2, threads: 1, cache: nil)
        let first = engine.start(AnalysisRequest(settings: AnalysisSettings(bins: 16)))
        let second = engine.start(AnalysisRequest(settings: AnalysisSettings(bins: 32)))
        XCTAssertTrue(engine.isCancelled(first))
        let snapshot = try XCTUnwrap(engine.wait(for: second, timeout: 60))
        XCTAssertEqual(snapshot.generation, second)
        XCTAssertEqual(snapshot.histograms?.bins, 32)
        XCTAssertTrue(snapshot.isComplete)
        // Nothing from the first request may replace the second's result later.
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertEqual(engine.snapshot?.generation, second)
    }

    func testCancelStopsWork() throws {
        let input = try makeInput(count: 2000)
        let engine = AnalysisEngine(input: input, batchSize: 2, threads: 1, cache: nil)
        let generation = engine.start()
        Thread.sleep(forTimeInterval: 0.05)
        engine.cancel()
        Thread.sleep(forTimeInterval: 0.3)
        let done = engine.snapshot?.progress.imagesDone ?? 0
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(engine.snapshot?.progress.imagesDone ?? 0, done, "no progress after cancel")
        XCTAssertFalse(engine.snapshot?.isComplete ?? true)
        XCTAssertTrue(engine.isCancelled(generation))
    }

    func testFeatureMapsMatchAPlainRun() throws {
        let input = try makeInput(count: 10)
        let engine = AnalysisEngine(input: input, cache: nil)
        let maps = try engine.featureMaps(image: 3)
        let recorded = try RecordedActivations.record(network: input.network, images: input.images, batchSize: 5)
        for tap in input.network.taps {
            let per = tap.valuesPerImage
            let expected = Array(recorded.taps[tap.index][(3 * per)..<(4 * per)])
            // A batch of one may round differently from a batch of five in the last bit.
            for (a, b) in zip(maps.values[tap.index], expected) { XCTAssertEqual(a, b, accuracy: 1e-5, "tap \(tap.name)") }
        }
        XCTAssertEqual(maps.probabilities.reduce(0, +), 1, accuracy: 1e-5)
        // Ablating every channel of the first conv makes its maps zero.
        let conv = try XCTUnwrap(input.network.taps.first { $0.opType == "Conv" })
        let masked = try engine.featureMaps(image: 3, mask: AblationMask([conv.index: Set(0..<conv.channels)]))
        XCTAssertTrue(masked.values[conv.index].allSatisfy { $0 == 0 })
    }

    func testSubsetAnalysisEqualsAnAnalysisOfThoseImages() throws {
        let input = try makeInput()
        let engine = AnalysisEngine(input: input, batchSize: 4, threads: 2, cache: nil)
        let analyzer = try Analyzer(input: input, batchSize: 4, threads: 1)
        let ranges = try analyzer.calibrate()
        let subset = [1, 5, 9, 12, 30, 31, 59]
        let summary = try engine.analyzeSubset(subset, ranges: ranges, request: AnalysisRequest())
        let direct = try analyzer.run(images: subset, ranges: ranges, keepPerImage: false).summary(network: input.network)
        XCTAssertEqual(summary.images, subset.count)
        for (x, y) in zip(summary.taps, direct.taps) {
            XCTAssertEqual(x.channelEnsembleEntropy, y.channelEnsembleEntropy)
            XCTAssertEqual(x.instanceEntropy, y.instanceEntropy, accuracy: 1e-9)
        }
    }

    func testCacheRoundTripAndCorruptionIsRebuilt() throws {
        let dir = try temporaryDirectory()
        let cache = AnalysisCache(directory: dir)
        let input = try makeInput(count: 30)
        let request = AnalysisRequest()
        let key = AnalysisCache.key(input: input, request: request)
        XCTAssertNil(cache.load(key: key, input: input, settings: request.settings))
        let result = try Analyzer(input: input, batchSize: 8, threads: 1).analyze()
        try cache.save(result, key: key)
        let loaded = try XCTUnwrap(cache.load(key: key, input: input, settings: request.settings))
        XCTAssertEqual(loaded.histograms, result.histograms)
        XCTAssertEqual(loaded.ranges, result.ranges)
        XCTAssertEqual(Array(loaded.store!.channelEntropies(image: 29, tap: 2)), Array(result.store!.channelEntropies(image: 29, tap: 2)))
        XCTAssertEqual(loaded.store?.prediction(image: 4), result.store?.prediction(image: 4))

        // Other settings, other key.
        XCTAssertNotEqual(AnalysisCache.key(input: input, request: AnalysisRequest(settings: AnalysisSettings(bins: 32))), key)

        // Flip one byte in the payload, then truncate: each is detected and the entry removed.
        let file = cache.path(for: key)
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: file))
        bytes[bytes.count - 10] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: file))
        XCTAssertNil(cache.load(key: key, input: input, settings: request.settings))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file), "a corrupt entry is deleted")
        try cache.save(result, key: key)
        let whole = try XCTUnwrap(FileManager.default.contents(atPath: file))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: file))
        XCTAssertNil(cache.load(key: key, input: input, settings: request.settings))
        // A file of random bytes under the key.
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2654435761) }).write(to: URL(fileURLWithPath: file))
        XCTAssertNil(cache.load(key: key, input: input, settings: request.settings))
        // An entry saved under another key is stale for this one.
        try cache.save(result, key: key)
        try FileManager.default.moveItem(atPath: file, toPath: cache.path(for: "other"))
        XCTAssertNil(cache.load(key: "other", input: input, settings: request.settings))
    }

    /// Issue 12, item 2: the JSON header is covered by the entry's digest too. An
    /// edited digit of an entropy sum or of the image count used to load, and
    /// `analyze` printed different numbers with exit status 0.
    func testEditedCacheHeaderIsRebuilt() throws {
        let dir = try temporaryDirectory()
        let cache = AnalysisCache(directory: dir)
        let input = try makeInput(count: 20)
        let request = AnalysisRequest()
        let key = AnalysisCache.key(input: input, request: request)
        let result = try Analyzer(input: input, batchSize: 8, threads: 1).analyze()
        try cache.save(result, key: key)
        let file = cache.path(for: key)
        let original = try XCTUnwrap(FileManager.default.contents(atPath: file))
        let text = String(decoding: original, as: UTF8.self)
        let headerStart = try XCTUnwrap(text.range(of: "{\"")).lowerBound.utf16Offset(in: text)
        // Each edit keeps the JSON valid and every length right.
        let edits: [(String, (String) -> String)] = [
            // (The histograms are binary after the header; a digit of a binning range stands in.)
            ("a digit of a binning range", { s in
                let r = s.range(of: "\"ranges\":[")!
                let digit = s[r.upperBound...].firstIndex { $0.isNumber && $0 != "0" }!
                return s.replacingCharacters(in: digit...digit, with: s[digit] == "9" ? "8" : "9")
            }),
            ("the image count", { $0.replacingOccurrences(of: "\"imageCount\":20", with: "\"imageCount\":-9223372036854775781") }),
        ]
        for (label, edit) in edits {
            var edited = Data(original.prefix(headerStart))
            edited.append(Data(edit(String(decoding: original[headerStart...], as: UTF8.self)).utf8))
            XCTAssertNotEqual(edited, original, label)
            try edited.write(to: URL(fileURLWithPath: file))
            XCTAssertNil(cache.load(key: key, input: input, settings: request.settings), label)
            XCTAssertFalse(FileManager.default.fileExists(atPath: file), "\(label): the entry is deleted, to be rebuilt")
        }
        // Any single changed byte anywhere in the entry, header included.
        var generator = SplitMix64(seed: 12)
        for _ in 0..<40 {
            var bytes = original
            let i = Int.random(in: 0..<bytes.count, using: &generator)
            bytes[i] ^= UInt8.random(in: 1...255, using: &generator)
            try bytes.write(to: URL(fileURLWithPath: file))
            XCTAssertNil(cache.load(key: key, input: input, settings: request.settings), "byte \(i) of \(bytes.count)")
        }
        try original.write(to: URL(fileURLWithPath: file))
        XCTAssertNotNil(cache.load(key: key, input: input, settings: request.settings), "the unchanged entry loads")
    }

    func testEngineUsesTheCacheOnTheSecondOpen() throws {
        let dir = try temporaryDirectory()
        let input = try makeInput(count: 30)
        let first = AnalysisEngine(input: input, batchSize: 8, threads: 1, cache: AnalysisCache(directory: dir))
        let a = try XCTUnwrap(first.wait(for: first.start(), timeout: 60))
        XCTAssertFalse(a.fromCache)
        let second = AnalysisEngine(input: input, batchSize: 8, threads: 1, cache: AnalysisCache(directory: dir))
        let b = try XCTUnwrap(second.wait(for: second.start(), timeout: 60))
        XCTAssertTrue(b.fromCache)
        XCTAssertEqual(a.histograms, b.histograms)
    }

    func testModelSeriesExpandsGlobsInOrderAndRefusesMixedArchitectures() throws {
        let dir = try temporaryDirectory()
        for name in ["epoch_10.onnx", "epoch_02.onnx", "epoch_01.onnx"] {
            try FileManager.default.copyItem(atPath: InfoFixtures.path("plain_cnn.onnx"), toPath: dir + "/" + name)
        }
        let series = try ModelSeries(patterns: [dir + "/epoch_*.onnx"])
        XCTAssertEqual(series.networks.map { URL(fileURLWithPath: $0.path).lastPathComponent },
                       ["epoch_01.onnx", "epoch_02.onnx", "epoch_10.onnx"])
        XCTAssertThrowsError(try ModelSeries(patterns: [InfoFixtures.path("plain_cnn.onnx"), InfoFixtures.path("bn_cnn.onnx")])) {
            XCTAssertTrue("\($0)".contains("bn_cnn.onnx"))
        }
        XCTAssertThrowsError(try ModelSeries(patterns: [dir + "/nothing_*.onnx"]))
    }
}
