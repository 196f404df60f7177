import Foundation
import SlicerData
import SlicerEngine
import Synchronization

// Filter importance by classification accuracy reduction (SPEC §4):
//   CAR(l,c)   = acc(S) − acc(S with c ablated)
//   CAR_y(l,c) = acc(S_y) − acc(S_y with c ablated)
// accuracy being top-1 of the argmax of the logits, ties to the lowest index,
// over the labelled images S; greedy pruning and its baselines on top.
//
// Everything is counted in whole correct predictions per class, so that
// Σ_y |S_y|·CAR_y = |S|·CAR holds exactly and results never depend on the
// order in which workers finish.

/// How ablations are computed. All three give the same predictions.
public enum CARStrategy: String, Sendable, CaseIterable {
    /// The network up to the tap once per chunk; the linear shortcut after the
    /// tap where the graph allows it (`TapAblationPlan`), near-ties redone exactly.
    case fast
    /// The network up to the tap once per chunk, every step after it recomputed:
    /// logits bit for bit those of a full run.
    case suffix
    /// The whole network, from the images, for every ablation (the reference).
    case naive
}

public struct CARProgress: Sendable, Equatable {
    /// What is running: "CAR", "greedy 3/16", "baselines", "entropy".
    public var stage: String
    /// Image evaluations (one image under one mask) done and planned for the whole request.
    public var done: Int
    public var total: Int
    public var seconds: Double

    public var fraction: Double { total > 0 ? min(1, Double(done) / Double(total)) : 1 }
    public var secondsLeft: Double? {
        done > 0 && done < total ? seconds * Double(total - done) / Double(done) : nil
    }
}

/// CAR of every channel of one tap: correct predictions per class, without and with each ablation.
public struct CARScores: Sendable, Equatable, Codable {
    /// Labelled images per class, |S_y|.
    public let classCounts: [Int]
    /// Correct predictions per class under the base mask.
    public let baseCorrect: [Int]
    /// [channel][class]: correct predictions with that channel ablated as well.
    public let ablatedCorrect: [[Int]]

    public var images: Int { classCounts.reduce(0, +) }
    public var channels: Int { ablatedCorrect.count }
    public var accuracy: Double { Double(baseCorrect.reduce(0, +)) / Double(max(images, 1)) }
    /// nil for a class without images.
    public var classAccuracy: [Double?] {
        zip(baseCorrect, classCounts).map { $1 > 0 ? Double($0) / Double($1) : nil }
    }
    public func accuracy(ablating channel: Int) -> Double {
        Double(ablatedCorrect[channel].reduce(0, +)) / Double(max(images, 1))
    }
    /// CAR per channel.
    public var car: [Double] {
        let base = baseCorrect.reduce(0, +)
        return ablatedCorrect.map { Double(base - $0.reduce(0, +)) / Double(max(images, 1)) }
    }
    /// [channel][class] CAR_y; nil for a class without images.
    public var classCar: [[Double?]] {
        ablatedCorrect.map { row in
            (0..<classCounts.count).map { y in
                classCounts[y] > 0 ? Double(baseCorrect[y] - row[y]) / Double(classCounts[y]) : nil
            }
        }
    }
    /// The classes whose accuracy the channel's ablation lowers most and least
    /// (ties to the lowest class index); nil when no class has images.
    public func extremeClasses(channel: Int) -> (most: Int, least: Int)? {
        let values = classCar[channel].enumerated().compactMap { y, v in v.map { (y, $0) } }
        guard let first = values.first else { return nil }
        var most = first, least = first
        for v in values.dropFirst() {
            if v.1 > most.1 { most = v }
            if v.1 < least.1 { least = v }
        }
        return (most.0, least.0)
    }
}

/// Channels in the order removed, with the accuracy after each removal.
public struct CARCurve: Sendable, Equatable, Codable {
    public let order: [Int]
    public let accuracy: [Double]
}

public struct CARBaselines: Sendable, Equatable, Codable {
    /// Smallest L1 norm of the producing convolution's filter first; nil when
    /// no convolution produces the tap's channels (`l1Unavailable` says why).
    public let l1: CARCurve?
    public let l1Convolution: String?
    public let l1Norms: [Double]?
    public let l1Unavailable: String?
    public let random: CARCurve
    public let seed: UInt64
    /// Lowest channel ensemble entropy (SPEC §3, default analysis settings) first.
    public let entropy: CARCurve
    public let entropies: [Double]
}

public struct CARStats: Sendable, Equatable, Codable {
    /// Image evaluations under one mask each.
    public var evaluations = 0
    /// Chunk ablations computed through the linear shortcut, and those redone
    /// exactly (a near-tie, a non-finite value, or no shortcut).
    public var shortcutRuns = 0
    public var exactRuns = 0
    /// Image ablations the bounded second stage made certain without the float
    /// convolution, and those it recomputed in floats (BoundedStage.swift).
    public var boundedImages = 0
    public var recomputedImages = 0
    public var seconds = 0.0
}

public struct CARResult: Sendable {
    public let tap: TapInfo
    public let scores: CARScores
    /// Present when a greedy target was given.
    public let greedy: CARCurve?
    public let keep: Int?
    public let baselines: CARBaselines?
    public let stats: CARStats
    /// The linear shortcut used, or why there is none.
    public let shortcut: String
}

/// What a running request has finished so far, for views that show results as
/// they come: CAR of every channel over the chunks of images done (exact for
/// those images, converging to the final scores), then the greedy curve step
/// by step.
public struct CARPartial: Sendable {
    /// CAR over the first `imagesDone` images evaluated (the final scores once the CAR stage is over).
    public let scores: CARScores
    public let imagesDone: Int
    public let imagesTotal: Int
    /// Greedy steps finished so far (nil before greedy starts or without it).
    public let greedy: CARCurve?
}

/// Runs CAR, greedy pruning and the baselines for one tap of one model on one image set.
public final class CAREngine: Sendable {
    public let input: ModelInput
    public let plan: TapAblationPlan
    /// The labelled images analysed (indices into the data set, in the given order).
    public let images: [Int]
    /// Ablations already applied (at any tap); CAR is measured on top of them.
    public let baseMask: AblationMask
    public let batchSize: Int
    public let threads: Int
    public let strategy: CARStrategy
    /// A fast prediction whose top-two logits are within this fraction of
    /// max(1, largest |logit|) is recomputed exactly, so that rounding in the
    /// shortcut can never change a prediction. Observed differences between
    /// fast and exact logits are below 1e-6 of that scale on the fixtures and
    /// the shipped models (SlicerCARTests); the margin leaves a factor of 1000.
    public static let nearTieMargin: Float = 1e-3

    private let runner: BatchRunner
    private let statistics = Mutex(CARStats())

    public var tap: TapInfo { plan.tap }
    public var network: Network { input.network }
    public var stats: CARStats { statistics.withLock { $0 } }

    /// Channels of the tap that may be ablated: those not already in `baseMask`.
    public var availableChannels: [Int] {
        let masked = baseMask.channels[tap.index] ?? []
        return (0..<tap.channels).filter { !masked.contains($0) }
    }

    /// - Parameters:
    ///   - images: indices into `input.images` (default: all); unlabelled ones are left out.
    public init(input: ModelInput, tap: Int, images: [Int]? = nil, baseMask: AblationMask = AblationMask(),
                batchSize: Int = 64, threads: Int = defaultThreadCount(), strategy: CARStrategy = .fast) throws {
        let network = input.network
        guard tap >= 0 && tap < network.taps.count else {
            throw EngineError.invalidRequest("\(network.path): no tap \(tap)")
        }
        let labels = input.images.labels
        let chosen = (images ?? Array(0..<input.images.count)).filter { $0 >= 0 && $0 < labels.count && labels[$0] >= 0 }
        guard !chosen.isEmpty else {
            throw DataError.emptySet(path: input.images.source, detail: "no labelled images: CAR needs true classes")
        }
        self.input = input
        self.plan = try TapAblationPlan(network: network, tap: tap)
        self.images = chosen
        self.baseMask = baseMask
        self.batchSize = max(1, batchSize)
        self.threads = max(1, threads)
        self.strategy = strategy
        runner = BatchRunner(network: network, batchSize: self.batchSize, threads: self.threads)
    }

    /// The shortcut this engine uses, or why it recomputes everything after the tap.
    public var shortcutDescription: String {
        switch strategy {
        case .naive: return "none (naive: the whole network per ablation)"
        case .suffix: return "none (suffix: every step after the tap per ablation)"
        case .fast:
            if let s = plan.shortcutDescription, let b = plan.boundedStageDescription { return "\(s) → \(b)" }
            if let s = plan.shortcutDescription { return s }
            return "none (\(plan.noShortcutReason ?? "no linear consumer")): every step after the tap per ablation"
        }
    }

    // MARK: - The three computations

    /// CAR and class-wise CAR of every channel of the tap.
    public func scores(isCancelled: @Sendable () -> Bool = { false },
                       progress: (@Sendable (CARProgress) -> Void)? = nil) throws -> CARScores {
        let tracker = Tracker(total: images.count * (availableChannels.count + 1), progress: progress)
        return try scores(tracker: tracker, isCancelled: isCancelled)
    }

    /// Greedy pruning (SPEC §4) until `keep` channels of the tap remain. `initial`:
    /// scores already computed under the base mask, reused as the first step.
    public func greedy(keep: Int, initial: CARScores? = nil, isCancelled: @Sendable () -> Bool = { false },
                       progress: (@Sendable (CARProgress) -> Void)? = nil) throws -> CARCurve {
        try checkKeep(keep)
        let tracker = Tracker(total: greedyEvaluations(keep: keep, initial: initial != nil), progress: progress)
        return try greedy(keep: keep, initial: initial, tracker: tracker, isCancelled: isCancelled)
    }

    /// Accuracy after each of the first `steps` removals of each order.
    public func curves(orders: [[Int]], steps: Int, isCancelled: @Sendable () -> Bool = { false },
                       progress: (@Sendable (CARProgress) -> Void)? = nil) throws -> [CARCurve] {
        let tracker = Tracker(total: images.count * steps * orders.count, progress: progress)
        return try curves(orders: orders, steps: steps, stage: "baselines", tracker: tracker, isCancelled: isCancelled)
    }

    /// CAR, then (with `keep`) the greedy curve and the three baselines on the same steps.
    /// `initial`: the scores, when already computed by `scores()`.
    /// `partial` is called from worker threads with the results finished so far.
    public func run(keep: Int? = nil, seed: UInt64 = 0, initial: CARScores? = nil,
                    isCancelled: @Sendable () -> Bool = { false },
                    progress: (@Sendable (CARProgress) -> Void)? = nil,
                    partial: (@Sendable (CARPartial) -> Void)? = nil) throws -> CARResult {
        let started = DispatchTime.now().uptimeNanoseconds
        if let keep { try checkKeep(keep) }
        let available = availableChannels
        var total = initial == nil ? images.count * (available.count + 1) : 0
        if let keep {
            let steps = available.count - keep
            total += greedyEvaluations(keep: keep, initial: true) + images.count * (steps * 3 + 1)
        }
        let tracker = Tracker(total: total, progress: progress)
        let scores = try initial ?? scores(tracker: tracker, isCancelled: isCancelled, partial: partial)
        partial?(CARPartial(scores: scores, imagesDone: images.count, imagesTotal: images.count, greedy: nil))
        var greedy: CARCurve?, baselines: CARBaselines?
        if let keep {
            let total = images.count
            var stepDone: ((CARCurve) -> Void)?
            if let partial {
                stepDone = { curve in partial(CARPartial(scores: scores, imagesDone: total, imagesTotal: total, greedy: curve)) }
            }
            greedy = try self.greedy(keep: keep, initial: scores, tracker: tracker, isCancelled: isCancelled, stepDone: stepDone)
            baselines = try self.baselines(steps: available.count - keep, seed: seed, tracker: tracker, isCancelled: isCancelled)
        }
        statistics.withLock { $0.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        return CARResult(tap: tap, scores: scores, greedy: greedy, keep: keep, baselines: baselines, stats: stats,
                         shortcut: shortcutDescription)
    }

    // MARK: - Baseline orders

    /// Available channels by the L1 norm of the producing convolution's filters,
    /// smallest first (ties: lowest index), or why there is no such convolution.
    public func l1Order() -> Result<(order: [Int], convolution: String, norms: [Double]), EngineError> {
        plan.producingConvolution.map { conv in
            (CAREngine.ascending(availableChannels, by: conv.l1), conv.name, conv.l1)
        }
    }

    /// Available channels shuffled by a seeded Fisher–Yates (SplitMix64), the same on every platform.
    public static func randomOrder(_ channels: [Int], seed: UInt64) -> [Int] {
        var order = channels
        var state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var i = order.count - 1
        while i > 0 {
            let j = Int(next() % UInt64(i + 1))
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }

    /// Channel ensemble entropies of the tap (SPEC §3, default analysis settings,
    /// under the base mask, over the same images).
    public func channelEntropies(isCancelled: @Sendable () -> Bool = { false }) throws -> [Double] {
        let analyzer = try Analyzer(input: input, settings: AnalysisSettings(), batchSize: batchSize,
                                    threads: threads, mask: baseMask)
        let result = try analyzer.run(images: images, ranges: try analyzer.calibrate(isCancelled: isCancelled),
                                      keepPerImage: false, isCancelled: isCancelled)
        return result.summary(network: network).taps[tap.index].channelEnsembleEntropy
    }

    /// `channels` sorted by `key`, ascending, ties to the lowest index.
    public static func ascending(_ channels: [Int], by key: [Double]) -> [Int] {
        channels.sorted { key[$0] != key[$1] ? key[$0] < key[$1] : $0 < $1 }
    }

    // MARK: - Internals

    private func checkKeep(_ keep: Int) throws {
        let n = availableChannels.count
        guard keep >= 0 && keep < n else {
            throw EngineError.invalidRequest("tap '\(tap.name)' has \(n) channels to prune: the greedy target must be 0…\(n - 1), got \(keep)")
        }
    }

    private func greedyEvaluations(keep: Int, initial: Bool) -> Int {
        let n = availableChannels.count
        var total = 0
        for removed in (initial ? 1 : 0)..<max(n - keep, 0) { total += n - removed }
        return total * images.count
    }

    private func scores(tracker: Tracker, isCancelled: @Sendable () -> Bool,
                        partial: (@Sendable (CARPartial) -> Void)? = nil) throws -> CARScores {
        tracker.stage = "CAR"
        let available = availableChannels
        let accumulator = partial.map { report in
            PartialScores(channels: tap.channels, available: available, classes: network.classCount,
                          imagesTotal: images.count, report: report)
        }
        var chunkDone: (@Sendable ([Int], [[Int]]) -> Void)?
        if let accumulator { chunkDone = { labels, predictions in accumulator.add(labels: labels, predictions: predictions) } }
        let counts = try correctCounts(removed: [], ablations: available.map { [$0] }, includeBase: true,
                                       chunkDone: chunkDone, tracker: tracker, isCancelled: isCancelled)
        var ablated = [[Int]](repeating: counts.base, count: tap.channels)
        for (i, c) in available.enumerated() { ablated[c] = counts.ablated[i] }
        return CARScores(classCounts: classCounts, baseCorrect: counts.base, ablatedCorrect: ablated)
    }

    private func greedy(keep: Int, initial: CARScores?, tracker: Tracker,
                        isCancelled: @Sendable () -> Bool, stepDone: ((CARCurve) -> Void)? = nil) throws -> CARCurve {
        let available = availableChannels
        let steps = available.count - keep
        var removed: [Int] = [], accuracy: [Double] = []
        // Each step's mask adds one channel to the last: chunks keep the linear
        // consumer's output and update it (TapAblationRunner.prepare), while that
        // takes at most a gigabyte.
        // When the bounded stage's convolution output fits in the same budget,
        // the chunks keep it too, for the second pass of a step (same mask).
        var caches: [ConsumerCache]?
        if strategy == .fast, let perImage = plan.consumerValuesPerImage,
           images.count * perImage * MemoryLayout<Float>.size <= 1 << 30 {
            let both = perImage + (plan.boundedValuesPerImage ?? 0)
            let keepsBase = plan.boundedValuesPerImage != nil && images.count * both * MemoryLayout<Float>.size <= 1 << 30
            caches = (0..<((images.count + batchSize - 1) / batchSize)).map { _ in ConsumerCache(keepsBase: keepsBase) }
        }
        // Only the winner of each step and its count matter (SPEC §4 records the order and
        // the accuracy), so a candidate that provably cannot win stops being evaluated
        // (CandidatePruning). That needs images whose predictions may still change early:
        // the chunks take them wrong first, then by the base's top-two margin.
        let pruned = strategy != .naive && steps > 1
        let order = pruned ? try fragileFirst(isCancelled: isCancelled) : images
        // The last step's counts per channel: exact, or an upper bound for pruned ones.
        var previous: [Int: Int] = [:]
        if let initial { for c in available { previous[c] = initial.ablatedCorrect[c].reduce(0, +) } }
        for step in 0..<steps {
            tracker.stage = "greedy \(step + 1)/\(steps)"
            let candidates = available.filter { !removed.contains($0) }
            // nil: pruned, cannot be the winner.
            var totals: [Int?]
            if step == 0, let initial {
                totals = candidates.map { initial.ablatedCorrect[$0].reduce(0, +) }
            } else if pruned, candidates.count > 2, !previous.isEmpty {
                // The reference: last step's runner-up, counted exactly on every image.
                var reference = candidates[0]
                for c in candidates where (previous[c] ?? -1) > (previous[reference] ?? -1) { reference = c }
                let threshold = try correctCounts(removed: removed, ablations: [[reference]], includeBase: false,
                                                  caches: caches, images: order, tracker: tracker,
                                                  isCancelled: isCancelled).ablated[0].reduce(0, +)
                let others = candidates.filter { $0 != reference }
                let pruning = CandidatePruning(threshold: threshold, reference: reference, channels: others,
                                               images: order.count)
                let counts = try correctCounts(removed: removed, ablations: others.map { [$0] }, includeBase: false,
                                               caches: caches, images: order, pruning: pruning, tracker: tracker,
                                               isCancelled: isCancelled)
                let alive = pruning.alive
                totals = candidates.map { c in
                    if c == reference { return threshold }
                    let i = others.firstIndex(of: c)!
                    return alive[i] ? counts.ablated[i].reduce(0, +) : nil
                }
                previous = [:]
                for (i, c) in others.enumerated() { previous[c] = alive[i] ? totals[candidates.firstIndex(of: c)!] : pruning.upperBound(i) }
                previous[reference] = threshold
            } else {
                let counts = try correctCounts(removed: removed, ablations: candidates.map { [$0] }, includeBase: false,
                                               caches: caches, images: order, tracker: tracker, isCancelled: isCancelled)
                totals = counts.ablated.map { $0.reduce(0, +) }
            }
            if step == 0 || !pruned || candidates.count <= 2 || previous.isEmpty {
                previous = [:]
                for (i, c) in candidates.enumerated() { previous[c] = totals[i] }
            }
            // Smallest CAR = most correct predictions left; ties: lowest channel index (candidates ascend).
            var best: Int?
            for i in candidates.indices {
                guard let t = totals[i] else { continue }
                if best == nil || t > totals[best!]! { best = i }
            }
            guard let best, let count = totals[best] else { throw InfoError.invalid("greedy step \(step + 1): no candidate left") }
            removed.append(candidates[best])
            accuracy.append(Double(count) / Double(images.count))
            stepDone?(CARCurve(order: removed, accuracy: accuracy))
        }
        return CARCurve(order: removed, accuracy: accuracy)
    }

    private func baselines(steps: Int, seed: UInt64, tracker: Tracker,
                           isCancelled: @Sendable () -> Bool) throws -> CARBaselines {
        tracker.stage = "entropy"
        let entropies = try channelEntropies(isCancelled: isCancelled)
        tracker.advance(images.count)
        let available = availableChannels
        let l1 = l1Order()
        var orders = [CAREngine.randomOrder(available, seed: seed), CAREngine.ascending(available, by: entropies)]
        if case let .success(conv) = l1 { orders.append(conv.order) }
        let curves = try curves(orders: orders, steps: steps, stage: "baselines", tracker: tracker, isCancelled: isCancelled)
        if orders.count == 2 { tracker.advance(images.count * steps) }
        var l1Curve: CARCurve?, l1Name: String?, l1Norms: [Double]?, l1Unavailable: String?
        switch l1 {
        case let .success(conv): (l1Curve, l1Name, l1Norms) = (curves[2], conv.convolution, conv.norms)
        case let .failure(error): l1Unavailable = error.description
        }
        return CARBaselines(l1: l1Curve, l1Convolution: l1Name, l1Norms: l1Norms, l1Unavailable: l1Unavailable,
                            random: curves[0], seed: seed, entropy: curves[1], entropies: entropies)
    }

    private func curves(orders: [[Int]], steps: Int, stage: String, tracker: Tracker,
                        isCancelled: @Sendable () -> Bool) throws -> [CARCurve] {
        tracker.stage = stage
        guard steps > 0, !orders.isEmpty else { return orders.map { _ in CARCurve(order: [], accuracy: []) } }
        let ablations = orders.flatMap { order in (1...steps).map { Array(order.prefix($0)) } }
        let counts = try correctCounts(removed: [], ablations: ablations, includeBase: false,
                                       tracker: tracker, isCancelled: isCancelled)
        return orders.enumerated().map { i, order in
            CARCurve(order: Array(order.prefix(steps)),
                     accuracy: (0..<steps).map { Double(counts.ablated[i * steps + $0].reduce(0, +)) / Double(images.count) })
        }
    }

    private var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: network.classCount)
        for i in images { counts[input.images.labels[i]] += 1 }
        return counts
    }

    /// Correct predictions per class under baseMask ∪ `removed` (at the tap), and
    /// under that plus each entry of `ablations`.
    /// `images`: the engine's images in the order to chunk them (default: as given);
    /// `pruning`: stops evaluating candidates that cannot win a greedy step (their counts are then partial).
    /// `chunkDone`: called with each finished chunk's labels and predictions per slot (slot 0 the base).
    private func correctCounts(removed: [Int], ablations: [[Int]], includeBase: Bool, caches: [ConsumerCache]? = nil,
                               images order: [Int]? = nil, pruning: CandidatePruning? = nil,
                               chunkDone: (@Sendable ([Int], [[Int]]) -> Void)? = nil,
                               tracker: Tracker, isCancelled: @Sendable () -> Bool) throws -> (base: [Int], ablated: [[Int]]) {
        var mask = baseMask
        for c in removed { mask = mask.adding(tap: tap.index, channel: c) }
        let k = network.classCount
        let slots = ablations.count + 1   // slot 0: the base
        let workers = (0..<threads).map { _ in Tally(slots: slots, classes: k) }
        if strategy == .naive {
            try naiveCounts(mask: mask, ablations: ablations, includeBase: includeBase, workers: workers,
                            tracker: tracker, isCancelled: isCancelled)
        } else {
            try chunkedCounts(mask: mask, ablations: ablations, includeBase: includeBase, caches: caches,
                              images: order ?? images, pruning: pruning, workers: workers, chunkDone: chunkDone,
                              tracker: tracker, isCancelled: isCancelled)
        }
        var total = [[Int]](repeating: [Int](repeating: 0, count: k), count: slots)
        for w in workers {
            for s in 0..<slots { for y in 0..<k { total[s][y] += w.counts[s * k + y] } }
            statistics.withLock { $0.shortcutRuns += w.shortcutRuns; $0.exactRuns += w.exactRuns }
        }
        let skipped = pruning?.skippedEvaluations ?? 0
        statistics.withLock { $0.evaluations += images.count * (ablations.count + (includeBase ? 1 : 0)) - skipped }
        return (total[0], Array(total.dropFirst()))
    }

    /// The prefix once per chunk, then every ablation of the chunk.
    private func chunkedCounts(mask: AblationMask, ablations: [[Int]], includeBase: Bool, caches: [ConsumerCache]?,
                               images: [Int], pruning: CandidatePruning?, workers: [Tally],
                               chunkDone: (@Sendable ([Int], [[Int]]) -> Void)?, tracker: Tracker,
                               isCancelled: @Sendable () -> Bool) throws {
        let plan = self.plan, input = self.input, strategy = self.strategy
        let labels = input.images.labels, k = network.classCount, capacity = batchSize
        let runners = try (0..<threads).map { _ in UncheckedBox(try TapAblationRunner(plan: plan, capacity: capacity)) }
        defer {
            for r in runners {
                let counts = r.value.boundedImageCounts
                statistics.withLock { $0.boundedImages += counts.certified; $0.recomputedImages += counts.recomputed }
            }
        }
        try runner.run(total: images.count, isCancelled: isCancelled, fill: { range, buffer in
            try input.fill(images[range], into: buffer)
        }, process: { worker, range, executor in
            let ablation = runners[worker].value, tally = workers[worker]
            let chunkLabels = range.map { labels[images[$0]] }
            ablation.prepare(executor, count: range.count, mask: mask, cache: caches?[range.lowerBound / capacity])
            // The chunk's predictions per slot, kept only for a listener of partial results.
            var chunkPredictions: [[Int]] = chunkDone == nil ? [] : Array(repeating: [], count: ablations.count + 1)
            if includeBase {
                let base = CAREngine.predictions(ablation.baseLogits(), classes: k)
                tally.add(slot: 0, predictions: base, labels: chunkLabels)
                if chunkDone != nil { chunkPredictions[0] = base }
                tracker.advance(range.count)
            }
            // Candidates still in the race (all without pruning); the others count as done.
            let active = pruning.map { p in p.alive.indices.filter { p.alive[$0] } } ?? Array(ablations.indices)
            if active.count < ablations.count { tracker.advance(range.count * (ablations.count - active.count)) }
            pruning?.skip(images: range.count * (ablations.count - active.count))
            // The bounded stage takes all ablations of the chunk at once (image by image).
            let bounded = strategy == .fast
                ? ablation.boundedPredictions(ablatingEach: active.map { ablations[$0] }, margin: CAREngine.nearTieMargin) : nil
            for (n, i) in active.enumerated() {
                let channels = ablations[i]
                if isCancelled() { throw InfoError.cancelled }
                var predictions: [Int]?
                if let certain = bounded?[n] {
                    // Images left uncertain (near-ties) take their prediction from the exact logits.
                    if certain.allSatisfy({ $0 != nil }) {
                        predictions = certain.compactMap { $0 }
                        tally.shortcutRuns += 1
                    } else {
                        // Only the uncertain images, each alone (the same logits as in a chunk).
                        predictions = certain.enumerated().map { i, p in
                            p ?? CAREngine.predictions(ablation.exactLogits(ablating: channels, image: i), classes: k)[0]
                        }
                        tally.exactRuns += 1
                    }
                } else if strategy == .fast, let fast = ablation.fastLogits(ablating: channels) {
                    predictions = CAREngine.confidentPredictions(fast, classes: k)
                    if predictions != nil { tally.shortcutRuns += 1 }
                }
                if predictions == nil {
                    predictions = CAREngine.predictions(ablation.exactLogits(ablating: channels), classes: k)
                    tally.exactRuns += 1
                }
                tally.add(slot: i + 1, predictions: predictions!, labels: chunkLabels)
                if chunkDone != nil { chunkPredictions[i + 1] = predictions! }
                if let pruning {
                    pruning.record(i, correct: zip(predictions!, chunkLabels).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) },
                                   images: range.count)
                }
                tracker.advance(range.count)
            }
            chunkDone?(chunkLabels, chunkPredictions)
        })
        if isCancelled() { throw InfoError.cancelled }
    }

    /// The engine's images, those the base mask predicts wrongly first, then by the base's
    /// margin between its top two logits, smallest first (ties: the given order): the
    /// images whose predictions an ablation is likeliest to change.
    private func fragileFirst(isCancelled: @Sendable () -> Bool) throws -> [Int] {
        let images = self.images, input = self.input, mask = baseMask, k = network.classCount
        let labels = input.images.labels
        let keys = Mutex([(wrong: Bool, margin: Float)](repeating: (false, 0), count: images.count))
        try runner.run(total: images.count, isCancelled: isCancelled, fill: { range, buffer in
            try input.fill(images[range], into: buffer)
        }, process: { _, range, executor in
            let logits = executor.run(count: range.count, mask: mask)
            var found: [(Bool, Float)] = []
            for n in 0..<range.count {
                var best = 0
                for i in 1..<k where logits[n * k + i] > logits[n * k + best] { best = i }
                var second = -Float.infinity
                for i in 0..<k where i != best { second = max(second, logits[n * k + i]) }
                let margin = logits[n * k + best] - second
                found.append((best != labels[images[range.lowerBound + n]], margin.isNaN ? -.infinity : margin))
            }
            keys.withLock { all in for (n, key) in found.enumerated() { all[range.lowerBound + n] = key } }
        })
        if isCancelled() { throw InfoError.cancelled }
        let key = keys.withLock { $0 }
        let ranked = images.indices.sorted { a, b in
            if key[a].wrong != key[b].wrong { return key[a].wrong }
            if key[a].margin != key[b].margin { return key[a].margin < key[b].margin }
            return a < b
        }
        return ranked.map { images[$0] }
    }

    /// The reference: every ablation runs the whole network on freshly filled images.
    private func naiveCounts(mask: AblationMask, ablations: [[Int]], includeBase: Bool, workers: [Tally],
                             tracker: Tracker, isCancelled: @Sendable () -> Bool) throws {
        let images = self.images, input = self.input, tapIndex = tap.index
        let labels = input.images.labels, k = network.classCount
        let jobs: [(slot: Int, channels: [Int])] = (includeBase ? [(0, [])] : []) + ablations.enumerated().map { ($0 + 1, $1) }
        for job in jobs {
            var m = mask
            for c in job.channels { m = m.adding(tap: tapIndex, channel: c) }
            let full = m
            try runner.run(total: images.count, isCancelled: isCancelled, fill: { range, buffer in
                try input.fill(images[range], into: buffer)
            }, process: { worker, range, executor in
                let logits = executor.run(count: range.count, mask: full)
                workers[worker].add(slot: job.slot, predictions: CAREngine.predictions(logits, classes: k),
                                    labels: range.map { labels[images[$0]] })
                workers[worker].exactRuns += 1
                tracker.advance(range.count)
            })
            if isCancelled() { throw InfoError.cancelled }
        }
    }

    /// Top-1 per row, ties to the lowest index (SPEC §4).
    static func predictions(_ logits: UnsafeBufferPointer<Float>, classes k: Int) -> [Int] {
        (0..<(logits.count / k)).map { n in
            var best = 0
            for i in 1..<k where logits[n * k + i] > logits[n * k + best] { best = i }
            return best
        }
    }

    /// Top-1 per row when every row is finite and its winner leads the runner-up
    /// by more than `nearTieMargin`·max(1, largest |logit|); nil otherwise.
    static func confidentPredictions(_ logits: UnsafeBufferPointer<Float>, classes k: Int) -> [Int]? {
        var out: [Int] = []
        out.reserveCapacity(logits.count / k)
        for n in 0..<(logits.count / k) {
            let row = n * k
            var best = 0, scale: Float = 1
            for i in 0..<k {
                let v = logits[row + i]
                guard v.isFinite else { return nil }
                scale = max(scale, abs(v))
                if v > logits[row + best] { best = i }
            }
            var second = -Float.infinity
            for i in 0..<k where i != best { second = max(second, logits[row + i]) }
            guard k == 1 || logits[row + best] - second > nearTieMargin * scale else { return nil }
            out.append(best)
        }
        return out
    }
}

/// Greedy pruning's bound within one step. The reference candidate has been counted
/// exactly (`threshold` correct predictions); another candidate evaluated on some
/// images can have at most its correct predictions so far plus one per image not yet
/// evaluated. Once that is below the threshold (or equal, with a higher channel index,
/// which loses the tie) it cannot be the step's winner and is no longer evaluated.
/// The winner is never dropped, so the step's choice and its count are exact.
final class CandidatePruning: Sendable {
    let threshold: Int
    let reference: Int
    let channels: [Int]
    let images: Int
    private struct State {
        var correct: [Int]
        var evaluated: [Int]
        var alive: [Bool]
        var skipped = 0
    }
    private let state: Mutex<State>

    init(threshold: Int, reference: Int, channels: [Int], images: Int) {
        self.threshold = threshold
        self.reference = reference
        self.channels = channels
        self.images = images
        state = Mutex(State(correct: channels.map { _ in 0 }, evaluated: channels.map { _ in 0 },
                            alive: channels.map { _ in true }))
    }

    /// Per candidate (index into `channels`): still possibly the winner.
    var alive: [Bool] { state.withLock { $0.alive } }
    /// Image evaluations not done because their candidate had been dropped.
    var skippedEvaluations: Int { state.withLock { $0.skipped } }

    /// The most correct predictions candidate `i` can end with.
    func upperBound(_ i: Int) -> Int { state.withLock { $0.correct[i] + images - $0.evaluated[i] } }

    func skip(images n: Int) { state.withLock { $0.skipped += n } }

    /// Candidate `i` got `correct` of `images` more images right.
    func record(_ i: Int, correct: Int, images n: Int) {
        state.withLock { s in
            s.correct[i] += correct
            s.evaluated[i] += n
            let bound = s.correct[i] + images - s.evaluated[i]
            if bound < threshold || (bound == threshold && channels[i] > reference) { s.alive[i] = false }
        }
    }
}

/// CAR over the chunks finished so far, shared by the workers: each adds its
/// chunk's predictions and reports the scores over all images done.
private final class PartialScores: Sendable {
    private struct Counts {
        var classCounts: [Int]
        var base: [Int]
        /// [available channel][class]
        var ablated: [[Int]]
        var images = 0
    }
    private let counts: Mutex<Counts>
    private let channels: Int
    private let available: [Int]
    private let imagesTotal: Int
    private let report: @Sendable (CARPartial) -> Void

    init(channels: Int, available: [Int], classes: Int, imagesTotal: Int, report: @escaping @Sendable (CARPartial) -> Void) {
        self.channels = channels
        self.available = available
        self.imagesTotal = imagesTotal
        self.report = report
        let zero = [Int](repeating: 0, count: classes)
        counts = Mutex(Counts(classCounts: zero, base: zero, ablated: available.map { _ in zero }))
    }

    /// `predictions[0]`: the base; `predictions[i + 1]`: with `available[i]` ablated.
    func add(labels: [Int], predictions: [[Int]]) {
        let scores = counts.withLock { c -> (CARScores, Int) in
            for y in labels { c.classCounts[y] += 1 }
            for (p, y) in zip(predictions[0], labels) where p == y { c.base[y] += 1 }
            for i in c.ablated.indices {
                for (p, y) in zip(predictions[i + 1], labels) where p == y { c.ablated[i][y] += 1 }
            }
            c.images += labels.count
            var ablated = [[Int]](repeating: c.base, count: channels)
            for (i, channel) in available.enumerated() { ablated[channel] = c.ablated[i] }
            return (CARScores(classCounts: c.classCounts, baseCorrect: c.base, ablatedCorrect: ablated), c.images)
        }
        report(CARPartial(scores: scores.0, imagesDone: scores.1, imagesTotal: imagesTotal, greedy: nil))
    }
}

/// One worker's correct-prediction counts: [slot][class], flat.
private final class Tally: @unchecked Sendable {
    // Touched only by the worker that owns it, then read after the run.
    var counts: [Int]
    let classes: Int
    var shortcutRuns = 0
    var exactRuns = 0

    init(slots: Int, classes: Int) {
        self.classes = classes
        counts = [Int](repeating: 0, count: slots * classes)
    }

    func add(slot: Int, predictions: [Int], labels: [Int]) {
        for (p, y) in zip(predictions, labels) where p == y { counts[slot * classes + y] += 1 }
    }
}

/// Progress over a whole request, reported from worker threads.
private final class Tracker: @unchecked Sendable {
    // `state` is guarded by `lock`.
    private let lock = NSLock()
    private var done = 0
    private var currentStage = ""
    private let total: Int
    private let started = DispatchTime.now().uptimeNanoseconds
    private let progress: (@Sendable (CARProgress) -> Void)?

    init(total: Int, progress: (@Sendable (CARProgress) -> Void)?) {
        self.total = total
        self.progress = progress
    }

    var stage: String {
        get { lock.withLock { currentStage } }
        set { lock.withLock { currentStage = newValue } }
    }

    func advance(_ n: Int) {
        let report = lock.withLock { () -> CARProgress in
            done += n
            return CARProgress(stage: currentStage, done: done, total: total,
                               seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        }
        progress?(report)
    }
}
