import Foundation
import Synchronization
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerInfo

final class CARTests: XCTestCase {
    static let fixtures = ["plain_cnn", "bn_cnn", "residual_cnn"]

    // MARK: - CAR against the naive reference

    /// Every tap of every fixture, every strategy: the same correct counts as
    /// whole-network recomputation, per class and channel.
    func testCAREqualsNaiveRecomputationOnEveryFixtureTap() throws {
        for name in Self.fixtures {
            let network = try CARFixtures.fixture(name)
            let input = try syntheticInput(network, count: 45, seed: 7, unlabelled: [4, 30])
            for tap in network.taps {
                let reference = try Reference.scores(input, tap: tap.index)
                for strategy in CARStrategy.allCases {
                    let engine = try CAREngine(input: input, tap: tap.index, batchSize: 8, threads: 2, strategy: strategy)
                    let scores = try engine.scores()
                    let what = "\(name) tap \(tap.name) (\(strategy))"
                    XCTAssertEqual(scores.images, 43, what)
                    XCTAssertEqual(scores.baseCorrect, reference.base, what)
                    XCTAssertEqual(scores.ablatedCorrect, reference.ablated, what)
                }
            }
        }
    }

    /// The shortcut is taken where the graph allows it and refused where a value is read twice.
    func testShortcutWhereTheGraphAllowsIt() throws {
        let expected: [(String, String, String?)] = [
            ("plain_cnn", "/conv1/Conv", "Relu → MaxPool → Conv '/conv2/Conv'"),
            ("plain_cnn", "/relu1/Relu", "MaxPool → Conv '/conv2/Conv'"),
            ("plain_cnn", "/pool2/AveragePool", "Gemm '/fc1/Gemm'"),
            ("plain_cnn", "/act/LeakyRelu", "Gemm '/fc2/Gemm'"),
            ("plain_cnn", "/fc2/Gemm", nil),
            ("plain_cnn", "input", "Conv '/conv1/Conv'"),
            ("bn_cnn", "/conv1/Conv", "BatchNormalization → Relu → MaxPool → Conv '/conv2/Conv'"),
            ("residual_cnn", "/stem/stem.2/Relu", nil),
            ("residual_cnn", "/block/relu/Relu", "Conv '/block/conv2/Conv'"),
            ("residual_cnn", "/relu/Relu", nil),
            ("residual_cnn", "/Concat", "Conv '/mix/Conv'"),
        ]
        for (name, tapName, shortcut) in expected {
            let network = try CARFixtures.fixture(name)
            let tap = try XCTUnwrap(network.tap(named: tapName), tapName)
            let plan = try TapAblationPlan(network: network, tap: tap.index)
            XCTAssertEqual(plan.shortcutDescription, shortcut, "\(name) \(tapName)")
            if shortcut == nil { XCTAssertNotNil(plan.noShortcutReason) }
        }
        let residual = try TapAblationPlan(network: try CARFixtures.fixture("residual_cnn"), tap: 3)
        XCTAssertTrue(residual.noShortcutReason?.contains("read by 2 inputs") ?? false, residual.noShortcutReason ?? "")
    }

    /// Exact logits are bit for bit those of a whole-network run, under masks at
    /// the tap and elsewhere; fast logits agree to rounding.
    func testRunnerLogitsAgainstExecutor() throws {
        var worst: Float = 0
        for name in Self.fixtures {
            let network = try CARFixtures.fixture(name)
            let input = try syntheticInput(network, count: 11, seed: 3)
            let executor = try network.makeExecutor(capacity: 8)
            let reference = try network.makeExecutor(capacity: 8)
            for tap in network.taps {
                let plan = try TapAblationPlan(network: network, tap: tap.index)
                let runner = try TapAblationRunner(plan: plan, capacity: 8)
                let c = tap.channels
                let other = (tap.index + 1) % network.taps.count
                let bases = [AblationMask(), AblationMask([tap.index: [c - 1]]), AblationMask([other: [0]])]
                for base in bases {
                    for range in [0..<8, 8..<11] {
                        try input.fill(range, into: executor.inputBuffer)
                        runner.prepare(executor, count: range.count, mask: base)
                        for extra in [[], [0], [c / 2, 0]] {
                            var mask = base
                            for e in extra { mask = mask.adding(tap: tap.index, channel: e) }
                            try input.fill(range, into: reference.inputBuffer)
                            let expected = Array(reference.run(count: range.count, mask: mask))
                            // One image alone gives its row of the chunk, bit for bit: first
                            // from its input (no tap snapshot yet after `prepare`), then, once
                            // the whole chunk has run exactly, from the tap snapshot. Bits, not a
                            // tolerance: both runs go through the same kernels, and every kernel
                            // computes each image's values as the same sum in the same order
                            // whatever the batch (MatMul used to call OpenBLAS, whose Haswell/Zen
                            // SGEMM rounds one row alone differently from a row of eight; it now
                            // uses the engine's micro-kernel, as Gemm does).
                            let k = network.classCount
                            for i in [0, range.count - 1] {
                                let row = Array(runner.exactLogits(ablating: extra, image: i))
                                XCTAssertTrue(sameBits(row, Array(expected[(i * k)..<((i + 1) * k)])),
                                              "\(name) \(tap.name) \(base) + \(extra), image \(i) alone")
                            }
                            let exact = Array(runner.exactLogits(ablating: extra))
                            XCTAssertTrue(sameBits(exact, expected), "\(name) \(tap.name) \(base) + \(extra)")
                            let last = range.count - 1
                            XCTAssertTrue(sameBits(Array(runner.exactLogits(ablating: extra, image: last)),
                                                   Array(expected[(last * k)..<((last + 1) * k)])),
                                          "\(name) \(tap.name) \(base) + \(extra), image \(last) from the snapshot")
                            if let fast = runner.fastLogits(ablating: extra).map(Array.init) {
                                worst = max(worst, deviation(fast, expected, classes: network.classCount))
                            }
                        }
                        let baseLogits = Array(runner.baseLogits())
                        try input.fill(range, into: reference.inputBuffer)
                        XCTAssertTrue(sameBits(baseLogits, Array(reference.run(count: range.count, mask: base))), "\(name) \(tap.name)")
                    }
                }
            }
        }
        XCTAssertLessThan(worst, 1e-5, "fast logits deviate by \(worst) of max(1, |logit|)")
        print("fixtures: largest fast/exact logit difference \(worst) of max(1, |logit|)")
    }

    /// On the shipped (trained) models the shortcut's rounding stays far below
    /// `CAREngine.nearTieMargin`, and CAR still equals the naive computation.
    func testShippedModelsShortcut() throws {
        var worst: Float = 0
        for (model, tapName) in [("mnist_cnn", "/2/Relu"), ("mnist_cnn", "/6/Relu"), ("cifar10_vgg", "/2/Relu"),
                                 ("cifar10_vgg", "/5/Relu")] {
            let network = try CARFixtures.shipped(model)
            let tap = try XCTUnwrap(network.tap(named: tapName))
            let plan = try TapAblationPlan(network: network, tap: tap.index)
            XCTAssertNotNil(plan.shortcutDescription, "\(model) \(tapName)")
            let input = try syntheticInput(network, count: 16, seed: 11)
            let executor = try network.makeExecutor(capacity: 16)
            let reference = try network.makeExecutor(capacity: 16)
            let runner = try TapAblationRunner(plan: plan, capacity: 16)
            try input.fill(0..<16, into: executor.inputBuffer)
            runner.prepare(executor, count: 16, mask: AblationMask())
            for c in 0..<tap.channels {
                try input.fill(0..<16, into: reference.inputBuffer)
                let expected = Array(reference.run(count: 16, mask: AblationMask([tap.index: [c]])))
                let fast = try XCTUnwrap(runner.fastLogits(ablating: [c]).map(Array.init))
                worst = max(worst, deviation(fast, expected, classes: network.classCount))
            }
        }
        XCTAssertLessThan(worst, CAREngine.nearTieMargin / 100)
        print("shipped models: largest fast/exact logit difference \(worst) of max(1, |logit|)")

        let mnist = try CARFixtures.shipped("mnist_cnn")
        let input = try syntheticInput(mnist, count: 40, seed: 5)
        let tap = try XCTUnwrap(mnist.tap(named: "/2/Relu")).index
        let reference = try Reference.scores(input, tap: tap)
        let scores = try CAREngine(input: input, tap: tap, batchSize: 16, threads: 2).scores()
        XCTAssertEqual(scores.baseCorrect, reference.base)
        XCTAssertEqual(scores.ablatedCorrect, reference.ablated)
    }

    private func sameBits(_ a: [Float], _ b: [Float]) -> Bool { a.map(\.bitPattern) == b.map(\.bitPattern) }

    /// Largest |a − b| over each row's max(1, max |b|).
    private func deviation(_ a: [Float], _ b: [Float], classes k: Int) -> Float {
        var worst: Float = 0
        for row in 0..<(b.count / k) {
            let r = (row * k)..<((row + 1) * k)
            let scale = max(1, b[r].map(abs).max()!)
            for i in r { worst = max(worst, abs(a[i] - b[i]) / scale) }
        }
        return worst
    }

    // MARK: - Class-wise CAR

    func testClassWiseCARSumsToOverall() throws {
        let network = try CARFixtures.fixture("bn_cnn")
        let input = try syntheticInput(network, count: 60, seed: 21, unlabelled: [0, 1, 2])
        let tap = try XCTUnwrap(network.tap(named: "/relu1/Relu")).index
        let scores = try CAREngine(input: input, tap: tap, batchSize: 16).scores()
        XCTAssertEqual(scores.images, 57)
        XCTAssertEqual(scores.classCounts.reduce(0, +), 57)
        let car = scores.car, classCar = scores.classCar
        XCTAssertTrue(car.contains { $0 != 0 }, "a fixture where ablations change something")
        for c in 0..<scores.channels {
            var sum = 0.0
            for y in 0..<network.classCount {
                if scores.classCounts[y] == 0 { XCTAssertNil(classCar[c][y]); continue }
                sum += Double(scores.classCounts[y]) * classCar[c][y]!
            }
            XCTAssertEqual(sum, Double(scores.images) * car[c], accuracy: 1e-9, "channel \(c)")
            XCTAssertEqual(car[c], scores.accuracy - scores.accuracy(ablating: c), accuracy: 1e-12)
        }
        let accuracy = zip(scores.classAccuracy, scores.classCounts).reduce(0.0) { $0 + ($1.0 ?? 0) * Double($1.1) }
        XCTAssertEqual(accuracy / Double(scores.images), scores.accuracy, accuracy: 1e-12)
        if let extremes = scores.extremeClasses(channel: 0) {
            XCTAssertGreaterThanOrEqual(classCar[0][extremes.most]!, classCar[0][extremes.least]!)
        }
    }

    // MARK: - Greedy

    /// Channels zeroed before the tap (masked at the conv, then ReLU(0) = 0) cannot
    /// change anything: their CAR is exactly 0, the least possible when every
    /// label is the base prediction, so the first step is a tie that the lowest
    /// index must win.
    func testGreedyOrderWithTies() throws {
        let network = try CARFixtures.fixture("plain_cnn")
        let conv = try XCTUnwrap(network.tap(named: "/conv1/Conv")).index
        let tap = try XCTUnwrap(network.tap(named: "/relu1/Relu")).index
        let base = AblationMask([conv: [3, 6]])
        let input = try syntheticInput(network, count: 30, seed: 2, allPredicted: true, mask: base)
        let reference = try Reference.greedy(input, tap: tap, keep: 2, base: base)
        XCTAssertTrue(reference.hadTie)
        for strategy in [CARStrategy.fast, .suffix] {
            let engine = try CAREngine(input: input, tap: tap, baseMask: base, batchSize: 8, threads: 2, strategy: strategy)
            let scores = try engine.scores()
            XCTAssertEqual(scores.accuracy, 1)
            XCTAssertEqual(scores.car[3], 0)
            XCTAssertEqual(scores.car[6], 0)
            XCTAssertTrue(scores.car.allSatisfy { $0 >= 0 })
            let lowestZero = scores.car.firstIndex(of: 0)!
            let curve = try engine.greedy(keep: 2, initial: scores)
            XCTAssertEqual(curve.order.first, lowestZero)
            XCTAssertEqual(curve.order, reference.order, "\(strategy)")
            XCTAssertEqual(curve.accuracy, reference.accuracy, "\(strategy)")
            XCTAssertEqual(curve.order.count, 6)
            // Without the initial scores the first step is computed, with the same result.
            XCTAssertEqual(try engine.greedy(keep: 2), curve)
        }
    }

    /// The bound that drops greedy candidates: below the reference's count, or equal with
    /// a higher channel (which loses the tie), and never a candidate that can still win.
    func testCandidatePruningBound() {
        let pruning = CandidatePruning(threshold: 90, reference: 5, channels: [2, 7, 9], images: 100)
        // Channel 2: 8 wrong of 10 evaluated so far, at most 92 → alive.
        pruning.record(0, correct: 2, images: 10)
        // Channel 7: 10 wrong → at most 90, the threshold, and 7 > 5 loses the tie → dropped.
        pruning.record(1, correct: 0, images: 10)
        // Channel 9: 11 wrong → at most 89 → dropped.
        pruning.record(2, correct: 9, images: 20)
        XCTAssertEqual(pruning.alive, [true, false, false])
        XCTAssertEqual(pruning.upperBound(0), 92)
        // Channel 2 at exactly the threshold keeps the tie (2 < 5).
        pruning.record(0, correct: 88, images: 90)
        XCTAssertEqual(pruning.upperBound(0), 90)
        XCTAssertEqual(pruning.alive, [true, false, false])
    }

    /// Greedy steps that drop candidates early give the naive order and curve on the
    /// shipped MNIST network, several steps deep.
    func testPrunedGreedyMatchesNaiveOnMNIST() throws {
        let network = try CARFixtures.shipped("mnist_cnn")
        let tap = try XCTUnwrap(network.tap(named: "/2/Relu")).index
        let input = try syntheticInput(network, count: 48, seed: 21)
        let naive = try CAREngine(input: input, tap: tap, batchSize: 16, threads: 2, strategy: .naive)
            .greedy(keep: 28)
        for strategy in [CARStrategy.fast, .suffix] {
            let engine = try CAREngine(input: input, tap: tap, batchSize: 16, threads: 2, strategy: strategy)
            XCTAssertEqual(try engine.greedy(keep: 28), naive, "\(strategy)")
            XCTAssertEqual(try engine.greedy(keep: 28, initial: try engine.scores()), naive, "\(strategy), from the scores")
        }
    }

    /// Greedy and baseline curves of `run` against whole-network recomputation.
    func testGreedyAndBaselineCurvesMatchReference() throws {
        let network = try CARFixtures.fixture("residual_cnn")
        let tap = try XCTUnwrap(network.tap(named: "/block/relu/Relu")).index
        let input = try syntheticInput(network, count: 40, seed: 17)
        let engine = try CAREngine(input: input, tap: tap, batchSize: 16, threads: 2)
        let result = try engine.run(keep: 3, seed: 42)
        let reference = try Reference.greedy(input, tap: tap, keep: 3)
        XCTAssertEqual(result.greedy?.order, reference.order)
        XCTAssertEqual(result.greedy?.accuracy, reference.accuracy)
        let b = try XCTUnwrap(result.baselines)
        for curve in [b.random, b.entropy, try XCTUnwrap(b.l1)] {
            XCTAssertEqual(curve.order.count, 5)
            XCTAssertEqual(Set(curve.order).count, 5)
            XCTAssertEqual(curve.accuracy, try Reference.curve(input, tap: tap, order: curve.order, steps: 5))
        }
        XCTAssertEqual(b.random.order, Array(CAREngine.randomOrder(Array(0..<8), seed: 42).prefix(5)))
        XCTAssertEqual(b.l1Convolution, "/block/conv1/Conv")
    }

    // MARK: - Baselines

    func testL1OrderFromHandComputedNorms() throws {
        for (name, tapName, convName) in [("plain_cnn", "/relu1/Relu", "/conv1/Conv"),
                                          ("plain_cnn", "/pool1/MaxPool", "/conv1/Conv"),
                                          ("bn_cnn", "/relu1/Relu", "/conv1/Conv"),
                                          ("bn_cnn", "/conv2/Conv", "/conv2/Conv")] {
            let network = try CARFixtures.fixture(name)
            let node = try XCTUnwrap(network.orderedNodes.first { $0.displayName == convName })
            let weights = try XCTUnwrap(network.model.graph.initializers[node.inputs[1]]).floatValues
            let filters = network.tap(named: tapName)!.channels
            let per = weights.count / filters
            var norms = [Double](repeating: 0, count: filters)
            for m in 0..<filters { for i in 0..<per { norms[m] += Double(abs(weights[m * per + i])) } }
            let expected = (0..<filters).sorted { norms[$0] != norms[$1] ? norms[$0] < norms[$1] : $0 < $1 }
            let input = try syntheticInput(network, count: 4, seed: 1)
            let engine = try CAREngine(input: input, tap: network.tap(named: tapName)!.index)
            let l1 = try engine.l1Order().get()
            XCTAssertEqual(l1.convolution, convName)
            XCTAssertEqual(l1.order, expected, "\(name) \(tapName)")
            for (a, b) in zip(l1.norms, norms) { XCTAssertEqual(a, b, accuracy: 1e-9 * max(1, b)) }
        }
        // Ties go to the lowest index.
        XCTAssertEqual(CAREngine.ascending([0, 1, 2, 3], by: [2, 1, 1, 0]), [3, 1, 2, 0])
    }

    func testL1UnavailableSaysWhy() throws {
        let residual = try CARFixtures.fixture("residual_cnn")
        let input = try syntheticInput(residual, count: 4, seed: 1)
        for (tapName, word) in [("/block/Add", "Add"), ("input", "input"), ("/Concat", "Concat")] {
            let engine = try CAREngine(input: input, tap: residual.tap(named: tapName)!.index)
            guard case let .failure(error) = engine.l1Order() else { return XCTFail("\(tapName) has no producing conv") }
            XCTAssertTrue(error.description.contains(word), error.description)
            XCTAssertTrue(error.description.contains(tapName), error.description)
        }
        let result = try CAREngine(input: input, tap: residual.tap(named: "/block/Add")!.index).run(keep: 6)
        XCTAssertNil(result.baselines?.l1)
        XCTAssertNotNil(result.baselines?.l1Unavailable)
    }

    func testRandomOrderIsASeededPermutation() {
        let channels = Array(0..<32)
        let a = CAREngine.randomOrder(channels, seed: 1)
        XCTAssertEqual(a.sorted(), channels)
        XCTAssertEqual(a, CAREngine.randomOrder(channels, seed: 1))
        XCTAssertNotEqual(a, CAREngine.randomOrder(channels, seed: 2))
        XCTAssertNotEqual(a, channels)
        XCTAssertEqual(CAREngine.randomOrder([5], seed: 9), [5])
        XCTAssertEqual(CAREngine.randomOrder([], seed: 9), [])
    }

    func testEntropyOrderFollowsTheAnalysis() throws {
        let network = try CARFixtures.fixture("bn_cnn")
        let input = try syntheticInput(network, count: 24, seed: 4, unlabelled: [5])
        let tap = try XCTUnwrap(network.tap(named: "/relu1/Relu")).index
        let engine = try CAREngine(input: input, tap: tap, batchSize: 8)
        let entropies = try engine.channelEntropies()
        let analyzer = try Analyzer(input: input, batchSize: 8)
        let labelled = (0..<24).filter { $0 != 5 }
        let expected = try analyzer.run(images: labelled, ranges: try analyzer.calibrate(), keepPerImage: false)
            .summary(network: network).taps[tap].channelEnsembleEntropy
        XCTAssertEqual(entropies, expected)
        let result = try engine.run(keep: 4)
        XCTAssertEqual(result.baselines?.entropy.order, Array(CAREngine.ascending(Array(0..<8), by: expected).prefix(4)))
        XCTAssertEqual(result.baselines?.entropies, expected)
    }

    // MARK: - State after a run

    /// Nothing the engine does leaves a trace: the plain network afterwards gives
    /// the original logits, and a second run the same numbers.
    func testMasksRestoredAfterRun() throws {
        let network = try CARFixtures.fixture("plain_cnn")
        let input = try syntheticInput(network, count: 20, seed: 9)
        // Batch capacity changes how the conv kernel groups images into GEMMs, and
        // with it the last bits: compare runs of the same capacity.
        let before = try Reference.logits(input), before8 = try Reference.logits(input, batch: 8)
        let tap = try XCTUnwrap(network.tap(named: "/relu1/Relu")).index
        for strategy in CARStrategy.allCases {
            let engine = try CAREngine(input: input, tap: tap, batchSize: 8, threads: 2, strategy: strategy)
            let first = try engine.run(keep: 5, seed: 3)
            XCTAssertTrue(try sameBits(Reference.logits(input), before), "\(strategy)")
            XCTAssertTrue(try sameBits(Reference.logits(input, batch: 8), before8), "\(strategy)")
            let second = try engine.run(keep: 5, seed: 3)
            XCTAssertEqual(first.scores, second.scores)
            XCTAssertEqual(first.greedy, second.greedy)
            XCTAssertEqual(first.baselines, second.baselines)
            // A plain batched run (threads, pooled executors) gives the original logits too.
            let runner = BatchRunner(network: network, batchSize: 8, threads: 2)
            let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: before.count)
            defer { storage.deallocate() }
            storage.initialize(repeating: .nan)
            let out = UncheckedBox(storage)
            try runner.run(total: 20, fill: { range, buffer in try input.fill(range, into: buffer) },
                           process: { _, range, executor in
                               let logits = executor.run(count: range.count)
                               let k = network.classCount
                               for i in 0..<(range.count * k) { out.value[range.lowerBound * k + i] = logits[i] }
                           })
            XCTAssertTrue(sameBits(Array(storage), before8), "\(strategy)")
        }
    }

    // MARK: - Control

    func testProgressAndCancellation() throws {
        let network = try CARFixtures.fixture("plain_cnn")
        let input = try syntheticInput(network, count: 30, seed: 6)
        let tap = try XCTUnwrap(network.tap(named: "/relu1/Relu")).index
        let engine = try CAREngine(input: input, tap: tap, batchSize: 8, threads: 2)
        let reports = Mutex<[CARProgress]>([])
        _ = try engine.run(keep: 4, progress: { p in reports.withLock { $0.append(p) } })
        let all = reports.withLock { $0 }
        let last = try XCTUnwrap(all.max { $0.done < $1.done })
        XCTAssertEqual(last.done, last.total)
        XCTAssertEqual(Set(all.map(\.stage)).isSuperset(of: ["CAR", "greedy 2/4", "baselines"]), true, "\(Set(all.map(\.stage)))")

        let calls = Mutex(0)
        XCTAssertThrowsError(try engine.run(keep: 4, isCancelled: { calls.withLock { $0 += 1; return $0 > 5 } })) { error in
            XCTAssertEqual(error as? InfoError, .cancelled)
        }
    }

    func testRefusals() throws {
        let network = try CARFixtures.fixture("plain_cnn")
        let unlabelled = try syntheticInput(network, count: 5, seed: 1, unlabelled: Set(0..<5))
        XCTAssertThrowsError(try CAREngine(input: unlabelled, tap: 2)) { error in
            XCTAssertTrue("\(error)".contains("no labelled images"), "\(error)")
        }
        let input = try syntheticInput(network, count: 5, seed: 1)
        XCTAssertThrowsError(try CAREngine(input: input, tap: 99))
        let engine = try CAREngine(input: input, tap: 2)
        XCTAssertThrowsError(try engine.greedy(keep: 8)) { XCTAssertTrue("\($0)".contains("0…7"), "\($0)") }
        XCTAssertThrowsError(try engine.greedy(keep: -1))
        XCTAssertEqual(try engine.greedy(keep: 0).order.sorted(), Array(0..<8))
    }

    // MARK: - Format

    func testJSONFormat() throws {
        let network = try CARFixtures.fixture("residual_cnn")
        let input = try syntheticInput(network, count: 12, seed: 8)
        for (tapName, keep) in [("/block/relu/Relu", 5), ("/block/Add", 6), ("/stem/stem.2/Relu", nil)] as [(String, Int?)] {
            let tap = network.tap(named: tapName)!
            let result = try CAREngine(input: input, tap: tap.index).run(keep: keep, seed: 4)
            let text = CARJSON.render(result: result, modelPath: network.path, dataSource: "synthetic", classNames: input.classNames)
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            XCTAssertEqual(json["format"] as? String, "cnnslicer.car.v1")
            XCTAssertEqual(json["tap"] as? String, tapName)
            XCTAssertEqual(json["images"] as? Int, 12)
            XCTAssertEqual((json["class_accuracy"] as? [Any])?.count, 10)
            XCTAssertEqual((json["car"] as? [Any])?.count, tap.channels)
            let classCar = try XCTUnwrap(json["class_car"] as? [[Any]])
            XCTAssertEqual(classCar.count, tap.channels)
            XCTAssertTrue(classCar.allSatisfy { $0.count == 10 })
            for key in ["model", "data", "accuracy"] { XCTAssertNotNil(json[key], key) }
            guard let keep else {
                XCTAssertNil(json["greedy"]); XCTAssertNil(json["baselines"]); continue
            }
            let greedy = try XCTUnwrap(json["greedy"] as? [String: Any])
            XCTAssertEqual((greedy["order"] as? [Int])?.count, tap.channels - keep)
            XCTAssertEqual((greedy["accuracy"] as? [Double])?.count, tap.channels - keep)
            let baselines = try XCTUnwrap(json["baselines"] as? [String: Any])
            for name in ["random", "entropy"] {
                let b = try XCTUnwrap(baselines[name] as? [String: Any], name)
                XCTAssertEqual((b["order"] as? [Int])?.count, tap.channels - keep)
                XCTAssertEqual((b["accuracy"] as? [Double])?.count, tap.channels - keep)
            }
            if tapName == "/block/Add" {
                XCTAssertTrue(baselines["l1"] is NSNull)
                XCTAssertTrue((baselines["l1_unavailable"] as? String)?.contains("Add") ?? false)
            } else {
                XCTAssertEqual(((baselines["l1"] as? [String: Any])?["order"] as? [Int])?.count, tap.channels - keep)
            }
        }
    }
}
