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
    /// Whether every class's channel histograms are kept (see `ClassChannelLayout`).
    public let layout: ClassChannelLayout
    private let runner: BatchRunner

    /// - Parameter layout: nil chooses by `MemoryPlan.automaticLayout`: kept
    ///   while every class's channel histograms are small, else on demand.
    public init(input: ModelInput, settings: AnalysisSettings = AnalysisSettings(), batchSize: Int = 64,
                threads: Int = defaultThreadCount(), mask: AblationMask = AblationMask(),
                layout: ClassChannelLayout? = nil) throws {
        guard (2...4096).contains(settings.bins) else {
            throw InfoError.invalid("bins must be between 2 and 4096, got \(settings.bins)")
        }
        self.input = input
        self.settings = settings
        self.batchSize = max(1, batchSize)
        self.threads = max(1, threads)
        self.mask = mask
        self.layout = layout ?? MemoryPlan.automaticLayout(network: input.network, bins: settings.bins, threads: self.threads)
        runner = BatchRunner(network: input.network, batchSize: self.batchSize, threads: self.threads)
    }

    public var network: Network { input.network }

    /// The class slot of each image: its label, or K for unlabelled images.
    public var slots: [Int] {
        let k = network.classCount
        return input.images.labels.map { $0 >= 0 && $0 < k ? $0 : k }
    }

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

    /// The order and batches a run takes. Kept layout: `images` as given, in
    /// batches. On demand: `classUnits`, so that each class is run by one
    /// worker, whose running histograms for it are reduced as soon as it is
    /// complete.
    func schedule(_ images: [Int]) -> (order: [Int], units: [[Range<Int>]]) {
        guard layout == .onDemand else {
            let units = stride(from: 0, to: images.count, by: batchSize).map { [$0..<min(images.count, $0 + batchSize)] }
            return (images, units)
        }
        return Analyzer.classUnits(images, slots: slots, batchSize: batchSize)
    }

    /// `images` grouped by class slot — classes in the order they first
    /// appear, each class's images in their order — in units of whole
    /// classes: several small classes to a batch, a large class in batches of
    /// its own, each unit for one worker to run in sequence.
    public static func classUnits(_ images: [Int], slots: [Int], batchSize batch: Int) -> (order: [Int], units: [[Range<Int>]]) {
        var rank = [Int: Int]()
        for i in images where rank[slots[i]] == nil { rank[slots[i]] = rank.count }
        let order = images.enumerated().sorted { a, b in
            let x = rank[slots[a.element]] ?? 0, y = rank[slots[b.element]] ?? 0
            return x != y ? x < y : a.offset < b.offset
        }.map(\.element)
        var units: [[Range<Int>]] = []
        var start = 0
        var current: Range<Int>?
        while start < order.count {
            var end = start + 1
            while end < order.count && slots[order[end]] == slots[order[start]] { end += 1 }
            if let c = current, c.count + (end - start) <= batch {
                current = c.lowerBound..<end
            } else {
                if let c = current { units.append([c]) }
                if end - start <= batch {
                    current = start..<end
                } else {
                    units.append(stride(from: start, to: end, by: batch).map { $0..<min(end, $0 + batch) })
                    current = nil
                }
            }
            start = end
        }
        if let c = current { units.append([c]) }
        return (order, units)
    }

    /// Analyses `images` (indices into the data set; default all, in dataset order).
    ///
    /// - Parameters:
    ///   - keepPerImage: keep per-image entropies, predictions and probabilities.
    ///   - classTotals: images per class slot in the whole set the run is part
    ///     of (a shard's run); default the run's own. On demand, a class whose
    ///     images are not all in this run stays open in the result.
    ///   - progress: called from worker threads after each batch.
    ///   - partial: called from worker threads after each batch with the
    ///     histograms merged so far, at most every `partialInterval` seconds
    ///     (and no more than a twentieth of the time in snapshots, which for
    ///     large networks cost tens of milliseconds); 0: after every batch.
    public func run(images: [Int]? = nil, ranges: [TapRange], keepPerImage: Bool = true,
                    store existingStore: PerImageStore? = nil, classTotals: [Int]? = nil,
                    isCancelled: @Sendable () -> Bool = { false },
                    progress: (@Sendable (AnalysisProgress) -> Void)? = nil,
                    partialInterval: Double = 0.25,
                    partial: (@Sendable (HistogramSet, AnalysisProgress) -> Void)? = nil) throws -> AnalysisResult {
        let (order, units) = schedule(images ?? Array(0..<input.images.count))
        let k = network.classCount
        guard ranges.count == network.taps.count else { throw InfoError.invalid("ranges for \(ranges.count) taps, the model has \(network.taps.count)") }
        let store: PerImageStore? = keepPerImage
            ? try (existingStore ?? PerImageStore(imageCount: input.images.count, tapChannels: network.taps.map(\.channels), classCount: k))
            : nil
        let slots = self.slots
        var runTotals = [Int](repeating: 0, count: k + 1)
        for i in order { runTotals[slots[i]] += 1 }
        if let classTotals, classTotals.count != k + 1 || zip(classTotals, runTotals).contains(where: { $0 < $1 }) {
            throw InfoError.invalid("class totals \(classTotals.count) for \(k + 1) class slots, or fewer than the run holds")
        }
        let binning = TapBinning(network: network, ranges: ranges, bins: settings.bins)
        let workers = (0..<threads).map { _ in
            WorkerSlot(TapAccumulator(network: network, settings: settings, ranges: ranges, classCount: k, store: store,
                                      layout: layout, runTotals: runTotals, setTotals: classTotals ?? runTotals,
                                      binning: binning))
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let counter = Mutex<(done: Int, lastPartial: UInt64, snapshotCost: UInt64)>((0, started, 0))
        let mask = self.mask
        let total = order.count
        try runner.run(units: units, isCancelled: isCancelled, fill: { range, buffer in
            try input.fill(order[range], into: buffer)
        }, process: { worker, range, executor in
            let slot = workers[worker]
            let batch = Array(order[range])
            slot.lock.withLock {
                let acc = slot.accumulator
                acc.begin(images: batch, slots: batch.map { slots[$0] })
                let logits = executor.run(count: range.count, mask: mask, observer: acc.observe)
                acc.finish(logits: logits)
            }
            store?.markComplete(batch)
            store?.releaseResident(batch)
            let now = DispatchTime.now().uptimeNanoseconds
            let (done, wantPartial) = counter.withLock { c -> (Int, Bool) in
                c.done += range.count
                // 0 asks for every batch (tests); otherwise the snapshots' own cost sets a floor.
                let interval = partialInterval <= 0 ? 0 : max(partialInterval, 20 * Double(c.snapshotCost) / 1e9)
                let due = partial != nil && Double(now - c.lastPartial) / 1e9 >= interval && c.done < total
                if due { c.lastPartial = now }
                return (c.done, due)
            }
            let p = AnalysisProgress(imagesDone: done, imagesTotal: total, seconds: Double(now - started) / 1e9)
            progress?(p)
            if wantPartial, let partial {
                partial(WorkerSlot.merged(workers), p)
                let cost = DispatchTime.now().uptimeNanoseconds - now
                counter.withLock { $0.snapshotCost = cost }
            }
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

/// Images class by class, each class's images in dataset order, the classes
/// in an order whose every prefix is spread over all of them (class k ranked
/// by the fractional part of k·φ): for an analysis that runs whole classes at
/// a time (on demand), early partial results then cover the label space
/// evenly instead of its first classes. Unlabelled images (label < 0) last.
public func spreadByClass(labels: [Int], indices: [Int]? = nil) -> [Int] {
    let all = indices ?? Array(labels.indices)
    func rank(_ y: Int) -> Double {
        guard y >= 0 else { return 2 }
        let x = Double(y) * 0.618_033_988_749_894_8
        return x - x.rounded(.down)
    }
    return all.enumerated().sorted { a, b in
        let x = rank(labels[a.element]), y = rank(labels[b.element])
        return x != y ? x < y : a.offset < b.offset
    }.map(\.element)
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
