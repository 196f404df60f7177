import CInt8
import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerInfo

/// The bounded second stage (BoundedStage.swift): every prediction it gives must be
/// the whole network's, whichever path the 8-bit product takes.
final class BoundedStageTests: XCTestCase {
    static let fashionSubset = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("assets/data/fashion-mnist-subset").path

    /// The stage is found behind the first convolution of the shipped CNNs and nowhere else.
    func testBoundedStageWhereTheGraphAllowsIt() throws {
        let mnist = try CARFixtures.shipped("mnist_cnn")
        let plan = try TapAblationPlan(network: mnist, tap: try XCTUnwrap(mnist.tap(named: "/2/Relu")).index)
        XCTAssertEqual(plan.boundedStageDescription,
                       "BatchNormalization → Relu → MaxPool → Conv '/8/Conv' (8-bit bound) → BatchNormalization → Relu → MaxPool → Gemm '/14/Gemm'")
        // The first convolution's output itself: its consumer is a BatchNormalization, not linear.
        XCTAssertNil(try TapAblationPlan(network: mnist, tap: try XCTUnwrap(mnist.tap(named: "/6/Relu")).index).boundedStageDescription)
        for name in CARTests.fixtures {
            let network = try CARFixtures.fixture(name)
            for tap in network.taps {
                XCTAssertNil(try TapAblationPlan(network: network, tap: tap.index).boundedStageDescription, "\(name) \(tap.name)")
            }
        }
        let stage = try XCTUnwrap(plan.boundedStage)
        // MaxPool 2×2/2 on 7×7 reads rows and columns 0…5 only.
        XCTAssertEqual(stage.usedPositions, (0..<6).flatMap { r in (0..<6).map { r * 7 + $0 } })
    }

    /// The vector and plain 8-bit products are the same integers, and the exact product.
    func testIntegerProductPaths() throws {
        var rng = TestRandom(seed: 9)
        let mp = 128, k = 72, rows = 18
        let a = (0..<(mp * k)).map { _ in Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
        let b = (0..<(rows * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var packed = [Int8](repeating: 0, count: a.count)
        cnns_i8_pack(a, Int32(mp), Int32(k), &packed)
        var plain = [Int32](repeating: 0, count: rows * mp), vector = plain
        cnns_i8_gemm(packed, Int32(mp), Int32(k), b, Int32(rows), &plain, 0)
        for r in 0..<rows {
            for m in 0..<mp {
                let expected = (0..<k).reduce(Int32(0)) { $0 + Int32(a[m * k + $1]) * Int32(b[r * k + $1]) }
                XCTAssertEqual(plain[r * mp + m], expected)
            }
        }
        guard cnns_i8_has_vnni() != 0 else { return }
        cnns_i8_gemm(packed, Int32(mp), Int32(k), b, Int32(rows), &vector, 1)
        XCTAssertEqual(vector, plain)
    }

    /// On real images (the bundled Fashion-MNIST subset, its shipped model) and on
    /// noise for the MNIST model: every certain prediction equals the whole
    /// network's under the same mask, most images are certain, and both product
    /// paths agree.
    func testBoundedPredictionsEqualTheWholeNetwork() throws {
        let fashion = try CARFixtures.shipped("fashion_mnist_cnn")
        let mnist = try CARFixtures.shipped("mnist_cnn")
        let cases: [(ModelInput, String)] = [
            (try ModelInput.load(network: fashion, data: Self.fashionSubset, limit: 48), "fashion"),
            (try syntheticInput(mnist, count: 48, seed: 21), "mnist noise"),
        ]
        var certain = 0, total = 0
        for (input, what) in cases {
            let network = input.network
            let tap = try XCTUnwrap(network.tap(named: "/2/Relu")).index
            let plan = try TapAblationPlan(network: network, tap: tap)
            let runner = try TapAblationRunner(plan: plan, capacity: 16)
            let executor = try network.makeExecutor(capacity: 16)
            let reference = try network.makeExecutor(capacity: 16)
            for base in [AblationMask(), AblationMask([tap: [3, 17]]), AblationMask([1: [0]])] {
                for range in [0..<16, 16..<32, 32..<41] {
                    try input.fill(range, into: executor.inputBuffer)
                    runner.prepare(executor, count: range.count, mask: base)
                    XCTAssertTrue(runner.hasBoundedStage, what)
                    for extra in [[0], [5], [31], [2, 9], [3]] {
                        var mask = base
                        for c in extra { mask = mask.adding(tap: tap, channel: c) }
                        try input.fill(range, into: reference.inputBuffer)
                        let expected = Reference.argmax(reference.run(count: range.count, mask: mask), classes: network.classCount)
                        runner.usesVectorProducts = false
                        let plain = try XCTUnwrap(runner.boundedPredictions(ablating: extra, margin: CAREngine.nearTieMargin))
                        runner.usesVectorProducts = true
                        let vector = try XCTUnwrap(runner.boundedPredictions(ablating: extra, margin: CAREngine.nearTieMargin))
                        XCTAssertEqual(plain, vector, "\(what) \(base) + \(extra)")
                        for (got, want) in zip(vector, expected) {
                            total += 1
                            guard let got else { continue }
                            certain += 1
                            XCTAssertEqual(got, want, "\(what) \(base) + \(extra)")
                        }
                    }
                    // Several at once, nested ones extending the previous first stage.
                    let nested: [[Int]] = [[1], [1, 4], [1, 4, 9], [7], [1, 4, 9, 30], [1, 4, 9, 30, 3]]
                    let all = try XCTUnwrap(runner.boundedPredictions(ablatingEach: nested, margin: CAREngine.nearTieMargin))
                    for (extra, got) in zip(nested, all) {
                        var mask = base
                        for c in extra { mask = mask.adding(tap: tap, channel: c) }
                        try input.fill(range, into: reference.inputBuffer)
                        let expected = Reference.argmax(reference.run(count: range.count, mask: mask), classes: network.classCount)
                        XCTAssertEqual(got, try XCTUnwrap(runner.boundedPredictions(ablating: extra, margin: CAREngine.nearTieMargin)),
                                       "\(what) \(base) + \(extra)")
                        for (g, want) in zip(got, expected) where g != nil { XCTAssertEqual(g, want, "\(what) \(base) + \(extra)") }
                    }
                }
            }
        }
        XCTAssertGreaterThan(Double(certain), 0.9 * Double(total), "certain \(certain) of \(total)")
        let counts = try TapAblationRunner(plan: TapAblationPlan(network: mnist, tap: 3), capacity: 4).boundedImageCounts
        XCTAssertEqual(counts.certified + counts.recomputed, 0)
    }

    /// CAR and the greedy curve through the bounded stage equal whole-network
    /// recomputation on real images.
    func testCARAndGreedyThroughTheBoundedStage() throws {
        let network = try CARFixtures.shipped("fashion_mnist_cnn")
        let input = try ModelInput.load(network: network, data: Self.fashionSubset, limit: 40)
        let tap = try XCTUnwrap(network.tap(named: "/2/Relu")).index
        let engine = try CAREngine(input: input, tap: tap, batchSize: 16, threads: 2)
        let scores = try engine.scores()
        let reference = try Reference.scores(input, tap: tap)
        XCTAssertEqual(scores.baseCorrect, reference.base)
        XCTAssertEqual(scores.ablatedCorrect, reference.ablated)
        XCTAssertGreaterThan(engine.stats.shortcutRuns, 0)
        let greedy = try engine.greedy(keep: 29, initial: scores)
        let expected = try Reference.greedy(input, tap: tap, keep: 29)
        XCTAssertEqual(greedy.order, expected.order)
        XCTAssertEqual(greedy.accuracy, expected.accuracy)
        // Baseline-like curves: prefixes of orders, taken as nested ablations.
        let orders = [CAREngine.randomOrder(Array(0..<32), seed: 3), Array((0..<32).reversed())]
        let curves = try engine.curves(orders: orders, steps: 8)
        for (curve, order) in zip(curves, orders) {
            XCTAssertEqual(curve.accuracy, try Reference.curve(input, tap: tap, order: order, steps: 8))
        }
    }

    /// A chunk's consumer output kept across masks that add channels at the tap
    /// (greedy steps): exact and base logits stay bit for bit the executor's, the
    /// shortcuts' predictions stay the whole network's.
    func testConsumerCacheAcrossGreedySteps() throws {
        let cases: [(Network, String)] = [(try CARFixtures.shipped("mnist_cnn"), "/2/Relu"),
                                          (try CARFixtures.fixture("residual_cnn"), "/block/relu/Relu"),
                                          (try CARFixtures.fixture("bn_cnn"), "/conv1/Conv")]
        for (network, tapName) in cases {
            let tap = try XCTUnwrap(network.tap(named: tapName)).index
            let input = try syntheticInput(network, count: 12, seed: 4)
            let plan = try TapAblationPlan(network: network, tap: tap)
            let runner = try TapAblationRunner(plan: plan, capacity: 12)
            let executor = try network.makeExecutor(capacity: 12)
            let reference = try network.makeExecutor(capacity: 12)
            let cache = ConsumerCache()
            var mask = AblationMask()
            for removed in [[], [1], [1, 0], [1, 0, 2], [1, 0, 2]] {
                mask = AblationMask(removed.isEmpty ? [:] : [tap: Set(removed)])
                try input.fill(0..<12, into: executor.inputBuffer)
                runner.prepare(executor, count: 12, mask: mask, cache: cache)
                try input.fill(0..<12, into: reference.inputBuffer)
                let base = Array(reference.run(count: 12, mask: mask))
                XCTAssertEqual(Array(runner.baseLogits()).map(\.bitPattern), base.map(\.bitPattern), "\(tapName) \(removed)")
                for extra in [[3], [4, 3]] {
                    var full = mask
                    for c in extra { full = full.adding(tap: tap, channel: c) }
                    try input.fill(0..<12, into: reference.inputBuffer)
                    let expected = Array(reference.run(count: 12, mask: full))
                    XCTAssertEqual(Array(runner.exactLogits(ablating: extra)).map(\.bitPattern), expected.map(\.bitPattern),
                                   "\(tapName) \(removed) + \(extra)")
                    let k = network.classCount
                    for i in [0, 5, 11] {
                        XCTAssertEqual(Array(runner.exactLogits(ablating: extra, image: i)).map(\.bitPattern),
                                       expected[(i * k)..<((i + 1) * k)].map(\.bitPattern), "\(tapName) \(removed) + \(extra), image \(i)")
                    }
                    let want = Reference.argmax(expected.withUnsafeBufferPointer { $0 }, classes: network.classCount)
                    if let bounded = runner.boundedPredictions(ablating: extra, margin: CAREngine.nearTieMargin) {
                        for (got, w) in zip(bounded, want) where got != nil { XCTAssertEqual(got, w, "\(tapName) \(removed) + \(extra)") }
                    } else if let fast = runner.fastLogits(ablating: extra).map(Array.init) {
                        let rows = fast.count / network.classCount
                        for r in 0..<rows {
                            let row = Array(fast[(r * network.classCount)..<((r + 1) * network.classCount)])
                            let got = row.withUnsafeBufferPointer { TapAblationRunner.confidentPrediction($0, margin: CAREngine.nearTieMargin) }
                            if let got { XCTAssertEqual(got, want[r], "\(tapName) \(removed) + \(extra)") }
                        }
                    } else {
                        XCTFail("\(tapName): no shortcut")
                    }
                }
            }
            XCTAssertEqual(cache.count, 12)
        }
    }
}
