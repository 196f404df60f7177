import Foundation
import SlicerData
import SlicerEngine
import Synchronization

/// What the engine is asked to compute.
public struct AnalysisRequest: Sendable, Hashable {
    public var settings: AnalysisSettings
    /// Channels ablated while analysing (CAR's "apply mask").
    public var mask: AblationMask
    /// Class × channel histograms kept or on demand; nil: chosen by size.
    public var layout: ClassChannelLayout?

    public init(settings: AnalysisSettings = AnalysisSettings(), mask: AblationMask = AblationMask(),
                layout: ClassChannelLayout? = nil) {
        self.settings = settings
        self.mask = mask
        self.layout = layout
    }
}

/// An immutable picture of an analysis as far as it has got. The app reads
/// the newest one every frame without waiting for the workers.
public struct AnalysisSnapshot: Sendable {
    /// Increases with every new request; a snapshot of an older request is stale.
    public let generation: Int
    public let request: AnalysisRequest
    public let ranges: [TapRange]?
    public let histograms: HistogramSet?
    public let summary: AnalysisSummary?
    /// Per-image results; `store.isComplete(i)` tells which images are in.
    public let store: PerImageStore?
    public let progress: AnalysisProgress
    public let isComplete: Bool
    /// True when the result came from the on-disk cache.
    public let fromCache: Bool
    /// One line naming the problem, when the analysis failed.
    public let error: String?
    /// The memory the analysis was estimated to need, and the layout it chose.
    public var memory: MemoryPlan? = nil

    /// Whether every class's channel histograms are in `histograms` (else a
    /// class × channel table needs `AnalysisEngine.classChannelTable`).
    public var keepsClassChannels: Bool { histograms?.layout == .kept }
}

/// Every tap's values for one image (the feature-map viewer's data).
public struct FeatureMaps: Sendable {
    public let taps: [TapInfo]
    /// Per tap, the image's values (C·H·W floats).
    public let values: [[Float]]
    public let logits: [Float]
    public let probabilities: [Float]
    public var prediction: Int { probabilities.indices.max { probabilities[$0] < probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 > $1) } ?? 0 }
}

/// The incremental background analysis of one model on one data set.
///
/// Work runs on its own thread (and the batch runner's workers), in an order
/// interleaved by class so early snapshots are representative; a new request
/// cancels the running one; priority work (one image's feature maps, an
/// arbitrary subset's analysis) goes before the next batch of the main job.
public final class AnalysisEngine: Sendable {
    public let input: ModelInput
    public let batchSize: Int
    public let threads: Int
    private let cache: AnalysisCache?
    private let state = Mutex<EngineState>(EngineState())
    private let latest = Mutex<AnalysisSnapshot?>(nil)
    /// Called (on a worker thread) whenever a new snapshot is published, e.g. to wake the UI.
    private let listener = Mutex<(@Sendable () -> Void)?>(nil)
    /// Serialises priority work with the main job's batches.
    private let priorityGate = NSLock()
    private let featureExecutor: Mutex<UncheckedBox<Executor>?>
    /// Bytes the analysis may use (nil: what the machine has available).
    private let memoryBudget: Int?

    struct EngineState {
        var generation = 0
        var cancelled: Set<Int> = []
    }

    /// - Parameters:
    ///   - batchSize: nil: `MemoryPlan.automaticBatchSize` (64, fewer for large activations).
    ///   - memoryBudget: bytes the analysis may use; nil: what the machine has available.
    public init(input: ModelInput, batchSize: Int? = nil, threads: Int = defaultThreadCount(),
                cache: AnalysisCache? = AnalysisCache.standard(), memoryBudget: Int? = nil) {
        self.input = input
        self.batchSize = batchSize ?? MemoryPlan.automaticBatchSize(network: input.network)
        self.threads = threads
        self.cache = cache
        self.memoryBudget = memoryBudget
        featureExecutor = Mutex((try? input.network.makeExecutor(capacity: 1)).map(UncheckedBox.init))
    }

    public func setListener(_ callback: (@Sendable () -> Void)?) { listener.withLock { $0 = callback } }

    /// The newest snapshot, without waiting.
    public var snapshot: AnalysisSnapshot? { latest.withLock { $0 } }

    /// Starts analysing under `request`, cancelling whatever ran before.
    @discardableResult
    public func start(_ request: AnalysisRequest = AnalysisRequest()) -> Int {
        let generation = state.withLock { s -> Int in
            s.cancelled.insert(s.generation)
            s.generation += 1
            return s.generation
        }
        let thread = Thread { [self] in self.runMain(generation: generation, request: request) }
        thread.name = "cnnslicer.analysis"
        thread.start()
        return generation
    }

    /// Stops the running analysis.
    public func cancel() {
        state.withLock { s in s.cancelled.insert(s.generation) }
    }

    public func isCancelled(_ generation: Int) -> Bool {
        state.withLock { $0.cancelled.contains(generation) || $0.generation != generation }
    }

    /// Blocks until the analysis of `generation` is complete, failed or cancelled.
    public func wait(for generation: Int, timeout: Double = .infinity) -> AnalysisSnapshot? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = snapshot, s.generation == generation, s.isComplete || s.error != nil { return s }
            if isCancelled(generation) { return snapshot }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return snapshot
    }

    private func publish(_ snapshot: AnalysisSnapshot) {
        let accepted = latest.withLock { current -> Bool in
            // Never let a stale job overwrite the newer request's results.
            if let current, current.generation > snapshot.generation { return false }
            current = snapshot
            return true
        }
        if accepted { listener.withLock { $0 }?() }
    }

    private func runMain(generation: Int, request: AnalysisRequest) {
        let total = input.images.count
        let started = Date()
        func progress(_ done: Int) -> AnalysisProgress {
            AnalysisProgress(imagesDone: done, imagesTotal: total, seconds: Date().timeIntervalSince(started))
        }
        publish(AnalysisSnapshot(generation: generation, request: request, ranges: nil, histograms: nil, summary: nil,
                                 store: nil, progress: progress(0), isComplete: false, fromCache: false, error: nil))
        do {
            // Estimated before anything big is allocated: a run that cannot fit
            // is refused with a message, never killed by the kernel.
            let plan = try MemoryPlan(input: input, settings: request.settings, batchSize: batchSize, threads: threads,
                                      layout: request.layout, snapshots: true, budget: memoryBudget)
            try plan.check(images: total, file: input.network.path)
            let key = cache.map { _ in AnalysisCache.key(input: input, request: request, layout: plan.layout) }
            if let cache, let key, let cached = cache.load(key: key, input: input, settings: request.settings) {
                var snapshot = AnalysisSnapshot(generation: generation, request: request, ranges: cached.ranges,
                                                histograms: cached.histograms, summary: cached.summary(network: input.network),
                                                store: cached.store, progress: progress(total), isComplete: true,
                                                fromCache: true, error: nil)
                snapshot.memory = plan
                publish(snapshot)
                return
            }
            let analyzer = try Analyzer(input: input, settings: request.settings, batchSize: batchSize,
                                        threads: threads, mask: request.mask, layout: plan.layout)
            let cancelled: @Sendable () -> Bool = { [self] in
                // Priority work holds the gate; the main job waits for it between batches.
                priorityGate.lock(); priorityGate.unlock()
                return isCancelled(generation)
            }
            let ranges = try analyzer.calibrate(isCancelled: cancelled)
            let order = plan.layout == .kept ? interleavedByClass(labels: input.images.labels)
                : spreadByClass(labels: input.images.labels)
            let network = input.network
            let store = try PerImageStore(imageCount: total, tapChannels: network.taps.map(\.channels),
                                          classCount: network.classCount)
            let result = try analyzer.run(images: order, ranges: ranges, keepPerImage: true, store: store,
                                          isCancelled: cancelled, partialInterval: 0.2) { [self] histograms, p in
                var snapshot = AnalysisSnapshot(generation: generation, request: request, ranges: ranges, histograms: histograms,
                                                summary: AnalysisSummary(network: network, histograms: histograms, ranges: ranges,
                                                                         settings: request.settings),
                                                store: store, progress: p, isComplete: false, fromCache: false, error: nil)
                snapshot.memory = plan
                publish(snapshot)
            }
            // Saved before the final snapshot, so whoever sees "complete" also finds the cache entry.
            if let cache, let key { try? cache.save(result, key: key) }
            var snapshot = AnalysisSnapshot(generation: generation, request: request, ranges: ranges, histograms: result.histograms,
                                            summary: result.summary(network: network), store: store, progress: progress(total),
                                            isComplete: true, fromCache: false, error: nil)
            snapshot.memory = plan
            publish(snapshot)
        } catch InfoError.cancelled {
            return
        } catch {
            publish(AnalysisSnapshot(generation: generation, request: request, ranges: nil, histograms: nil, summary: nil,
                                     store: nil, progress: progress(0), isComplete: false, fromCache: false,
                                     error: "\(error)"))
        }
    }

    // MARK: Priority work

    /// Every tap's values for image `index` of the data set, ahead of the main job.
    public func featureMaps(image index: Int, mask: AblationMask = AblationMask()) throws -> FeatureMaps {
        try featureMaps(mask: mask) { buffer in try input.fill([index], into: buffer) }
    }

    /// Every tap's values for an image given as pixels (the draw pad, a dropped file):
    /// bytes in the data set's layout (C×H×W, 0–255).
    public func featureMaps(pixels: [UInt8], channels: Int, height: Int, width: Int,
                            mask: AblationMask = AblationMask()) throws -> FeatureMaps {
        let image = try LabeledImages(channels: channels, height: height, width: width, pixels: pixels, labels: [-1],
                                      classNames: input.classNames, source: "drawn image")
        let s = input.network.inputShape
        return try featureMaps(mask: mask) { buffer in
            try input.preprocessing.fill(image, indices: [0], channels: s[0], height: s[1], width: s[2], into: buffer)
        }
    }

    private func featureMaps(mask: AblationMask, fill: (UnsafeMutablePointer<Float>) throws -> Void) throws -> FeatureMaps {
        priorityGate.lock()
        defer { priorityGate.unlock() }
        return try featureExecutor.withLock { box -> FeatureMaps in
            guard let executor = box?.value else { throw InfoError.invalid("\(input.network.path): cannot plan a single-image run") }
            try fill(executor.inputBuffer)
            var values = [[Float]](repeating: [], count: input.network.taps.count)
            let logits = Array(executor.run(count: 1, mask: mask) { values[$0.tap] = Array($0.values) })
            let m = logits.max() ?? 0
            let e = logits.map { expf($0 - m) }
            let sum = e.reduce(0, +)
            return FeatureMaps(taps: input.network.taps, values: values, logits: logits, probabilities: e.map { $0 / sum })
        }
    }

    /// Tap `tap`'s class × channel table for `classes` (the channel matrix's
    /// class columns), exact per SPEC §3 over the whole data set under
    /// `request`, with the main analysis's `ranges`: from `histograms` when
    /// they keep those classes' channel histograms (then instant, and over the
    /// images analysed so far), else by running the network up to the tap for
    /// those classes' images, ahead of the main job's next batch.
    ///
    /// Blocking; call it from a background queue. Throws `InfoError.cancelled`
    /// once `isCancelled` returns true (checked between batches), so a view
    /// can drop a request the user has moved on from.
    public func classChannelTable(tap: Int, classes: [Int], request: AnalysisRequest, ranges: [TapRange],
                                  histograms: HistogramSet? = nil,
                                  isCancelled: @escaping @Sendable () -> Bool = { false },
                                  progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil) throws -> ClassChannelTable {
        if let histograms, let table = histograms.classChannelTable(tap: tap, classes: classes,
                                                                      millerMadow: request.settings.millerMadow) {
            return table
        }
        priorityGate.lock()
        defer { priorityGate.unlock() }
        let analyzer = try Analyzer(input: input, settings: request.settings, batchSize: batchSize, threads: threads,
                                    mask: request.mask, layout: .onDemand)
        return try analyzer.classChannelTable(tap: tap, classes: classes, ranges: ranges, isCancelled: isCancelled,
                                              progress: progress)
    }

    /// Analyses an arbitrary subset (a brushed set) with the main analysis's
    /// ranges, calling `update` with partial results as they grow; returns the final one.
    public func analyzeSubset(_ images: [Int], ranges: [TapRange], request: AnalysisRequest,
                              isCancelled: @escaping @Sendable () -> Bool = { false },
                              update: (@Sendable (AnalysisSummary, AnalysisProgress) -> Void)? = nil) throws -> AnalysisSummary {
        priorityGate.lock()
        defer { priorityGate.unlock() }
        let analyzer = try Analyzer(input: input, settings: request.settings, batchSize: batchSize, threads: threads,
                                    mask: request.mask, layout: request.layout)
        let network = input.network
        let result = try analyzer.run(images: interleavedByClass(labels: input.images.labels, indices: images),
                                      ranges: ranges, keepPerImage: false, isCancelled: isCancelled,
                                      partialInterval: 0.1) { histograms, p in
            update?(AnalysisSummary(network: network, histograms: histograms, ranges: ranges, settings: request.settings), p)
        }
        return result.summary(network: network)
    }
}
