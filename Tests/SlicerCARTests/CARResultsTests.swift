import Foundation
import Synchronization
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerInfo

/// What the app needs from CAR beyond the numbers: partial results while it
/// runs, a cache that survives sessions and rejects damaged entries, CSV export.
final class CARResultsTests: XCTestCase {
    /// Partial scores are exact CAR over the images finished so far (checked against
    /// the naive reference on those images), and the last one equals the result.
    func testPartialResultsAreExactOverTheImagesDone() throws {
        let network = try CARFixtures.fixture("plain_cnn")
        let input = try syntheticInput(network, count: 40, seed: 11, unlabelled: [3])
        let tap = try XCTUnwrap(network.tap(named: "/relu2/Relu")).index
        let engine = try CAREngine(input: input, tap: tap, batchSize: 8, threads: 2)
        let partials = Mutex<[CARPartial]>([])
        let result = try engine.run(keep: 12, partial: { p in partials.withLock { $0.append(p) } })
        let all = partials.withLock { $0 }
        let scoresStage = all.filter { $0.greedy == nil }
        XCTAssertGreaterThan(scoresStage.count, 2, "several chunks reported before the end")
        XCTAssertEqual(scoresStage.map(\.imagesDone), scoresStage.map(\.imagesDone).sorted(), "images done only grows")
        XCTAssertEqual(scoresStage.last?.scores, result.scores)
        XCTAssertEqual(scoresStage.last?.imagesDone, 39)
        // An intermediate report: its images are whole chunks; recount them naively.
        let middle = try XCTUnwrap(scoresStage.first { $0.imagesDone > 0 && $0.imagesDone < 39 })
        XCTAssertEqual(middle.scores.images, middle.imagesDone)
        XCTAssertEqual(middle.scores.classCounts.reduce(0, +), middle.imagesDone)
        XCTAssertEqual(middle.scores.ablatedCorrect.count, network.taps[tap].channels)
        for row in middle.scores.ablatedCorrect {
            XCTAssertTrue(zip(row, middle.scores.classCounts).allSatisfy { $0 <= $1 })
        }
        // Greedy: one report per step, each a prefix of the final curve.
        let steps = all.compactMap(\.greedy)
        XCTAssertEqual(steps.count, 4)
        let greedy = try XCTUnwrap(result.greedy)
        for (i, curve) in steps.enumerated() {
            XCTAssertEqual(curve.order, Array(greedy.order.prefix(i + 1)))
            XCTAssertEqual(curve.accuracy, Array(greedy.accuracy.prefix(i + 1)))
        }
    }

    /// Partial counts summed over the chunks equal the naive counts over the same images.
    func testPartialScoresMatchNaiveRecountOfTheirImages() throws {
        let network = try CARFixtures.fixture("bn_cnn")
        let input = try syntheticInput(network, count: 24, seed: 5)
        let tap = network.taps.first { $0.opType == "Relu" }!.index
        // One thread: chunks finish in order, so the images done are the first ones.
        let engine = try CAREngine(input: input, tap: tap, batchSize: 8, threads: 1)
        let partials = Mutex<[CARPartial]>([])
        _ = try engine.run(partial: { p in partials.withLock { $0.append(p) } })
        let first = try XCTUnwrap(partials.withLock { $0 }.first { $0.imagesDone == 8 })
        let firstImages = try ModelInput(network: network, images: try LabeledImages(
            channels: input.images.channels, height: input.images.height, width: input.images.width,
            pixels: Array(input.images.pixels.prefix(8 * network.inputShape.reduce(1, *))),
            labels: Array(input.images.labels.prefix(8)), classNames: input.classNames, source: "first 8"))
        let reference = try Reference.scores(firstImages, tap: tap)
        XCTAssertEqual(first.scores.baseCorrect, reference.base)
        XCTAssertEqual(first.scores.ablatedCorrect, reference.ablated)
    }

    func testCacheRoundTripAndRejection() throws {
        let network = try CARFixtures.fixture("residual_cnn")
        let input = try syntheticInput(network, count: 16, seed: 9)
        let tap = try XCTUnwrap(network.tap(named: "/block/relu/Relu"))
        let mask = AblationMask([tap.index: [1]])
        let result = try CAREngine(input: input, tap: tap.index, baseMask: mask).run(keep: 4, seed: 0)
        let directory = NSTemporaryDirectory() + "cnnslicer-car-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = CARCache(directory: directory)
        let context = try CARCache.context(input: input)
        let key = CARCache.key(context: context, tap: tap.index, mask: mask, keep: 4, seed: 0)
        XCTAssertNil(cache.load(key: key, network: network))
        try cache.save(result, key: key)
        let loaded = try XCTUnwrap(cache.load(key: key, network: network))
        XCTAssertEqual(loaded.scores, result.scores)
        XCTAssertEqual(loaded.greedy, result.greedy)
        XCTAssertEqual(loaded.baselines, result.baselines)
        XCTAssertEqual(loaded.tap, result.tap)
        XCTAssertEqual(loaded.keep, 4)
        // Every part of the key matters.
        let others = [CARCache.key(context: context, tap: tap.index, mask: AblationMask(), keep: 4, seed: 0),
                      CARCache.key(context: context, tap: tap.index, mask: mask, keep: nil, seed: 0),
                      CARCache.key(context: context, tap: tap.index - 1, mask: mask, keep: 4, seed: 0),
                      CARCache.key(context: context, tap: tap.index, mask: mask, keep: 4, seed: 1)]
        XCTAssertEqual(Set(others + [key]).count, 5)
        let otherImages = try syntheticInput(network, count: 16, seed: 10)
        XCTAssertNotEqual(try CARCache.context(input: otherImages), context)

        // Damage: a flipped byte, a truncation, a wrong key inside → rejected and removed.
        let path = cache.path(for: key)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        for damage in ["flip", "truncate", "key"] {
            var bad = good
            switch damage {
            case "flip": bad[bad.count / 2] ^= 0x20
            case "truncate": bad = bad.prefix(bad.count - 40)
            default:
                // A valid entry written for another key, renamed to this one.
                try cache.save(result, key: others[0])
                bad = try Data(contentsOf: URL(fileURLWithPath: cache.path(for: others[0])))
            }
            try bad.write(to: URL(fileURLWithPath: path))
            XCTAssertNil(cache.load(key: key, network: network), damage)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), "\(damage): the bad entry is removed")
        }
        // Another network with the same tap index but another name: rejected.
        try cache.save(result, key: key)
        let plain = try CARFixtures.fixture("plain_cnn")
        XCTAssertNil(cache.load(key: key, network: plain))
    }

    func testCSVHasOneRowPerChannelInPoints() throws {
        let network = try CARFixtures.fixture("plain_cnn")
        let input = try syntheticInput(network, count: 20, seed: 4)
        let tap = try XCTUnwrap(network.tap(named: "/relu1/Relu"))
        let result = try CAREngine(input: input, tap: tap.index).run(keep: 5)
        let text = CARCSV.channels(result: result, modelPath: network.path, dataSource: "synthetic", classNames: input.classNames,
                                   mask: AblationMask([2: [0]]))
        let lines = text.split(separator: "\n").map(String.init)
        let comments = lines.prefix { $0.hasPrefix("#") }
        XCTAssertTrue(comments.contains { $0.contains(network.path) })
        XCTAssertTrue(comments.contains { $0.contains("mask: tap 2: 0") })
        let table = lines.dropFirst(comments.count)
        let header = try XCTUnwrap(table.first).split(separator: ",")
        XCTAssertEqual(header.count, 3 + 10)
        XCTAssertEqual(header[1], "car_points")
        XCTAssertEqual(table.count, 1 + tap.channels)
        for (c, row) in table.dropFirst().enumerated() {
            let fields = row.split(separator: ",", omittingEmptySubsequences: false)
            XCTAssertEqual(Int(fields[0]), c)
            XCTAssertEqual(try XCTUnwrap(Double(fields[1])), result.scores.car[c] * 100, accuracy: 1e-9)
            XCTAssertEqual(try XCTUnwrap(Double(fields[2])), result.scores.accuracy(ablating: c) * 100, accuracy: 1e-9)
            for y in 0..<10 {
                if let v = result.scores.classCar[c][y] {
                    XCTAssertEqual(try XCTUnwrap(Double(fields[3 + y])), v * 100, accuracy: 1e-9)
                } else {
                    XCTAssertEqual(fields[3 + y], "")
                }
            }
        }
        let pruning = try XCTUnwrap(CARCSV.pruning(result: result, modelPath: network.path, dataSource: "synthetic"))
        let rows = pruning.split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(rows.count, 1 + 1 + (tap.channels - 5), "header, step 0, one row per removal")
        XCTAssertTrue(rows[0].hasPrefix("step,greedy_channel,greedy_accuracy_percent"))
        XCTAssertNil(CARCSV.pruning(result: try CAREngine(input: input, tap: tap.index).run(), modelPath: "", dataSource: ""))
    }

    func testJSONRecordsTheMaskWhenThereIsOne() throws {
        let network = try CARFixtures.fixture("plain_cnn")
        let input = try syntheticInput(network, count: 10, seed: 4)
        let result = try CAREngine(input: input, tap: 2, baseMask: AblationMask([2: [3, 1]])).run()
        let masked = CARJSON.render(result: result, modelPath: "m", dataSource: "d", classNames: input.classNames, mask: AblationMask([2: [3, 1]]))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(masked.utf8)) as? [String: Any])
        XCTAssertEqual((json["mask"] as? [String: [Int]])?["2"], [1, 3])
        let plain = CARJSON.render(result: result, modelPath: "m", dataSource: "d", classNames: input.classNames)
        XCTAssertFalse(plain.contains("\"mask\""))
    }
}
