import Foundation
import SlicerData
import SlicerEngine
import Synchronization

public struct AnalysisProgress: Sendable, Equatable {
    public var imagesDone: Int
    public var imagesTotal: Int
    public var seconds: Double

    public init(imagesDone: Int, imagesTotal: Int, seconds: Double) {
        self.imagesDone = imagesDone
        self.imagesTotal = imagesTotal
        self.seconds = seconds
    }

    public var imagesPerSecond: Double { seconds > 0 ? Double(imagesDone) / seconds : 0 }
    public var fraction: Double { imagesTotal > 0 ? Double(imagesDone) / Double(imagesTotal) : 1 }
    public var secondsLeft: Double? {
        imagesDone > 0 && imagesDone < imagesTotal ? Double(imagesTotal - imagesDone) / imagesPerSecond : nil
    }
}

/// A finished (or partial) analysis: ranges, histograms and per-image results.
public struct AnalysisResult: Sendable {
    public let settings: AnalysisSettings
    public let ranges: [TapRange]
    public let histograms: HistogramSet
    /// Per-image results, when kept.
    public let store: PerImageStore?
    /// The images analysed, in processing order.
    public let images: [Int]

    public func summary(network: Network) -> AnalysisSummary {
        AnalysisSummary(network: network, histograms: histograms, ranges: ranges, settings: settings)
    }
}

/// Runs analyses: calibration, then every image through the network with the
/// binning fused into the tap observer (no copies of activations).
public struct Analyzer: Sendable {
    public let input: ModelInput
    public let settings: AnalysisSettings
    public let batchSize: Int
    public let threads: Int
    /// Channels zeroed while analysing (ablation masks from CAR).
    public let mask: AblationMask
    private let runner: BatchRunner

    public init(input: ModelInput, settings: AnalysisSettings = AnalysisSettings(), batchSize: Int = 64,
                threads: Int = defaultThreadCount(), mask: AblationMask = AblationMask()) throws {
        guard (2...4096).contains(settings.bins) else {
            throw InfoError.invalid("bins must be between 2 and 4096, got \(settings.bins)")
        }
        self.input = input
        self.settings = settings
        self.batchSize = max(1, batchSize)
        self.threads = max(1, threads)
        self.mask = mask
        runner = BatchRunner(network: input.network, batchSize: self.batchSize, threads: self.threads)
    }

    public var network: Network { input.network }

    /// The binning ranges: min/max over the first min(N, 256) images in dataset order.
    public func calibrate(isCancelled: @Sendable () -> Bool = { false }) throws -> [TapRange] {
        if case .fixed = settings.range {
            return Calibration.ranges(Calibration.Extremes(network: network), mode: settings.range)
        }
        let count = min(input.images.count, AnalysisSettings.calibrationImageCount)
        let workers = (0..<threads).map { _ in UncheckedBox(Calibration.Extremes(network: network)) }
        let mask = self.mask
        try runner.run(total: count, isCancelled: isCancelled, fill: { range, buffer in
            try input.fill(range, into: buffer)
        }, process: { worker, range, executor in
            executor.run(count: range.count, mask: mask, observer: workers[worker].value.observe)
        })
        if isCancelled() { throw InfoError.cancelled }
        for w in workers.dropFirst() { workers[0].value.merge(w.value) }
        return Calibration.ranges(workers[0].value, mode: settings.range)
    }

    /// Analyses `images` (indices into the data set; default all, in dataset order).
    ///
    /// - Parameters:
    ///   - keepPerImage: keep per-image entropies, predictions and probabilities.
    ///   - progress: called from worker threads after each batch.
    ///   - partial: called from worker threads after each batch with the
    ///     histograms merged so far, at most every `partialInterval` seconds.
    public func run(images: [Int]? = nil, ranges: [TapRange], keepPerImage: Bool = true,
                    store existingStore: PerImageStore? = nil,
                    isCancelled: @Sendable () -> Bool = { false },
                    progress: (@Sendable (AnalysisProgress) -> Void)? = nil,
                    partialInterval: Double = 0.25,
                    partial: (@Sendable (HistogramSet, AnalysisProgress) -> Void)? = nil) throws -> AnalysisResult {
        let order = images ?? Array(0..<input.images.count)
        let k = network.classCount
        guard ranges.count == network.taps.count else { throw InfoError.invalid("ranges for \(ranges.count) taps, the model has \(network.taps.count)") }
        let store: PerImageStore? = keepPerImage
            ? try (existingStore ?? PerImageStore(imageCount: input.images.count, tapChannels: network.taps.map(\.channels), classCount: k))
            : nil
        let labels = input.images.labels
        let workers = (0..<threads).map { _ in
            WorkerSlot(TapAccumulator(network: network, settings: settings, ranges: ranges, classCount: k, store: store))
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let counter = Mutex<(done: Int, lastPartial: UInt64)>((0, started))
        let mask = self.mask
        let total = order.count
        try runner.run(total: total, isCancelled: isCancelled, fill: { range, buffer in
            try input.fill(order[range], into: buffer)
        }, process: { worker, range, executor in
            let slot = workers[worker]
            let batch = Array(order[range])
            slot.lock.withLock {
                let acc = slot.accumulator
                acc.begin(images: batch, slots: batch.map { labels[$0] >= 0 && labels[$0] < k ? labels[$0] : k })
                let logits = executor.run(count: range.count, mask: mask, observer: acc.observe)
                acc.finish(logits: logits)
            }
            store?.markComplete(batch)
            let now = DispatchTime.now().uptimeNanoseconds
            let (done, wantPartial) = counter.withLock { c -> (Int, Bool) in
                c.done += range.count
                let due = partial != nil && Double(now - c.lastPartial) / 1e9 >= partialInterval && c.done < total
                if due { c.lastPartial = now }
                return (c.done, due)
            }
            let p = AnalysisProgress(imagesDone: done, imagesTotal: total, seconds: Double(now - started) / 1e9)
            progress?(p)
            if wantPartial, let partial { partial(WorkerSlot.merged(workers), p) }
        })
        if isCancelled() { throw InfoError.cancelled }
        return AnalysisResult(settings: settings, ranges: ranges, histograms: WorkerSlot.merged(workers),
                              store: store, images: order)
    }

    /// Calibrates and analyses every image (or `images`).
    public func analyze(images: [Int]? = nil, keepPerImage: Bool = true,
                        progress: (@Sendable (AnalysisProgress) -> Void)? = nil) throws -> AnalysisResult {
        try run(images: images, ranges: try calibrate(), keepPerImage: keepPerImage, progress: progress)
    }
}

/// A worker's accumulator and the lock that lets another thread read it mid-run.
final class WorkerSlot: @unchecked Sendable {
    // `accumulator` is touched only while holding `lock`.
    let lock = NSLock()
    let accumulator: TapAccumulator

    init(_ accumulator: TapAccumulator) { self.accumulator = accumulator }

    static func merged(_ slots: [WorkerSlot]) -> HistogramSet {
        var total = slots[0].lock.withLock { slots[0].accumulator.histograms }
        for s in slots.dropFirst() { total.add(s.lock.withLock { s.accumulator.histograms }) }
        return total
    }
}

/// Images in an order whose every prefix is spread evenly over the classes:
/// class by class in turn, each class in dataset order. Early partial results
/// are then already representative of the whole set.
public func interleavedByClass(labels: [Int], indices: [Int]? = nil) -> [Int] {
    let all = indices ?? Array(labels.indices)
    var queues: [Int: [Int]] = [:]
    var classOrder: [Int] = []
    for i in all {
        let y = labels[i]
        if queues[y] == nil { classOrder.append(y) }
        queues[y, default: []].append(i)
    }
    classOrder.sort()
    var heads = [Int: Int]()
    var out: [Int] = []
    out.reserveCapacity(all.count)
    // Each round takes from every class in proportion to its size, so the
    // prefix's class mix tracks the whole set's even for unbalanced classes.
    let total = Double(all.count)
    var taken = [Int: Int]()
    while out.count < all.count {
        let target = Double(out.count + 1) / total
        var best: Int?
        var bestLag = -Double.infinity
        for y in classOrder {
            let q = queues[y]!, h = heads[y, default: 0]
            guard h < q.count else { continue }
            let lag = target * Double(q.count) - Double(taken[y, default: 0])
            if lag > bestLag { bestLag = lag; best = y }
        }
        guard let y = best else { break }
        out.append(queues[y]![heads[y, default: 0]])
        heads[y, default: 0] += 1
        taken[y, default: 0] += 1
    }
    return out
}
