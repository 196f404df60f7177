import CBinning
import Foundation
import SlicerData
import SlicerEngine

/// What an analysis will hold in memory, estimated before it starts from the
/// network's tap shapes, the data set and the settings — so that a run that
/// cannot fit is refused (or adapted) with a clear message instead of being
/// killed by the kernel's out-of-memory killer hours in.
///
/// Every part is computed from the sizes of the arrays the analysis allocates
/// (the tests hold each formula to the allocator's own count).
public struct MemoryPlan: Sendable, Equatable {
    /// One part of the total, in bytes.
    public struct Part: Sendable, Equatable {
        public let name: String
        public let bytes: Int
    }

    public let layout: ClassChannelLayout
    public let parts: [Part]
    /// What the machine (or `--memory-limit`) allows.
    public let budgetBytes: Int

    public var totalBytes: Int { parts.reduce(0) { $0 + $1.bytes } }
    public var fits: Bool { totalBytes <= budgetBytes }

    public func bytes(of name: String) -> Int { parts.first { $0.name == name }?.bytes ?? 0 }

    /// Kept class × channel histograms up to this size (all copies): they make
    /// every class's channel values instant, and the shipped 10-class models
    /// need a few MB. Beyond it the on-demand layout, whose size does not grow
    /// with the number of classes.
    public static let keptLimit = 512 << 20

    /// - Parameters:
    ///   - layout: nil: kept when it stays under `keptLimit` and the budget, else on demand.
    ///   - keepPerImage: the per-image store (entropies, predictions) is kept.
    ///   - snapshots: partial results are published while the analysis runs (the app).
    ///   - budget: bytes allowed; default what the machine has available.
    public init(input: ModelInput, settings: AnalysisSettings, batchSize: Int, threads: Int,
                layout: ClassChannelLayout? = nil, keepPerImage: Bool = true, snapshots: Bool = false,
                budget: Int? = nil) throws {
        let network = input.network
        let budget = budget ?? MemoryPlan.availableBytes()
        func parts(_ layout: ClassChannelLayout) throws -> [Part] {
            try MemoryPlan.parts(network: network, images: input.images, bins: settings.bins, range: settings.range,
                                 batchSize: batchSize, threads: threads, layout: layout, keepPerImage: keepPerImage,
                                 snapshots: snapshots)
        }
        var chosen = layout ?? MemoryPlan.automaticLayout(network: network, bins: settings.bins, threads: threads)
        var p = try parts(chosen)
        if layout == nil && chosen == .kept && p.reduce(0, { $0 + $1.bytes }) > budget {
            chosen = .onDemand
            p = try parts(chosen)
        }
        self.layout = chosen
        self.parts = p
        budgetBytes = budget
    }

    /// Activation buffers a worker may take by default: a batch is cut down
    /// (halved, to no fewer than 8 images) until its buffers fit. Large maps
    /// run a few images at a time anyway (the executor's L2-sized chunks), so
    /// a ResNet-50 at 224×224 loses nothing at 16 images a batch and saves
    /// about 650 MB per worker against 64.
    public static let executorLimit = 256 << 20

    /// The default batch size for analysing with `network`: 64, or fewer for
    /// networks whose activations would not fit `executorLimit`.
    public static func automaticBatchSize(network: Network) -> Int {
        var batch = 64
        while batch > 8 && network.estimatedExecutorByteCount(capacity: batch) > executorLimit { batch /= 2 }
        return batch
    }

    /// Kept while every class's channel histograms (the result, and each
    /// worker's 32-bit counts) stay under `keptLimit`; else on demand.
    public static func automaticLayout(network: Network, bins: Int, threads: Int) -> ClassChannelLayout {
        let slots = network.classCount + 1
        let channels = network.taps.reduce(0) { $0 + $1.channels }
        let (perCount, o1) = channels.multipliedReportingOverflow(by: slots * bins)
        let (bytes, o2) = perCount.multipliedReportingOverflow(by: 8 + 4 * max(1, threads))
        return !o1 && !o2 && bytes <= keptLimit ? .kept : .onDemand
    }

    static func parts(network: Network, images: LabeledImages, bins: Int, range: RangeMode, batchSize: Int,
                      threads: Int, layout: ClassChannelLayout, keepPerImage: Bool, snapshots: Bool) throws -> [Part] {
        let taps = network.taps
        let k = network.classCount
        let workers = max(1, min(threads, (images.count + batchSize - 1) / max(1, batchSize)))
        let batch = min(batchSize, max(1, images.count))
        let unlabelled = images.labels.contains { $0 < 0 || $0 >= k }
        // A worker's set holds at most one running class open, plus the unlabelled slot.
        let open = layout == .kept ? k + 1 : 1 + (unlabelled ? 1 : 0)
        let set = histogramSetBytes(taps: taps, classCount: k, bins: bins, layout: layout, openSlots: open)
        let merged = histogramSetBytes(taps: taps, classCount: k, bins: bins, layout: layout,
                                       openSlots: layout == .kept ? k + 1 : workers + (unlabelled ? 1 : 0))
        let worker = accumulatorBytes(taps: taps, classCount: k, bins: bins, layout: layout) + set
        // The merged result; with snapshots, the one being built beside the
        // last one published (merging copies: nothing is shared with the workers).
        let results = merged * (snapshots ? 2 : 1)
        let summary = taps.reduce(0) { $0 + $1.channels * 3 * 8 + k * 2 * 8 } * (snapshots ? 2 : 1)
        var p = [
            Part(name: "model", bytes: modelBytes(network)),
            Part(name: "images", bytes: images.pixels.count + images.labels.count * 8),
            Part(name: "executors", bytes: try network.executorByteCount(capacity: batch) * workers
                    + (snapshots ? try network.executorByteCount(capacity: 1) : 0)),
            Part(name: "binning", bytes: binningBytes(taps: taps, bins: bins, perChannel: range == .channel)),
            Part(name: "workers", bytes: worker * workers),
            Part(name: "results", bytes: results + summary),
        ]
        if keepPerImage {
            p.append(Part(name: "per-image", bytes: PerImageStore.residentByteCount(
                imageCount: images.count, channels: taps.reduce(0) { $0 + $1.channels }, taps: taps.count, classCount: k)))
        }
        return p
    }

    /// The arrays of a `HistogramSet` with `openSlots` class slots open.
    public static func histogramSetBytes(taps: [TapInfo], classCount k: Int, bins: Int, layout: ClassChannelLayout,
                                         openSlots: Int) -> Int {
        let slots = k + 1
        return taps.reduce(0) { total, tap in
            let c = tap.channels
            // Counts are 8 bytes; the instance-entropy sums are exact sums of 16 (`ExactSum`).
            let counts = openSlots * c * bins + slots * bins + slots + (layout == .kept ? 0 : c * bins)
            let sums = slots * 2 + (layout == .kept ? slots : 1) * c + (layout == .kept ? 0 : c)
            return total + counts * 8 + sums * MemoryLayout<ExactSum>.stride
        } + slots * 8
    }

    /// A worker's own arrays beside its `HistogramSet`: the 32-bit counts, the
    /// per-tap bookkeeping and the binning scratch.
    public static func accumulatorBytes(taps: [TapInfo], classCount k: Int, bins: Int, layout: ClassChannelLayout) -> Int {
        let rows = layout == .kept ? k + 1 : 2
        let counts = taps.reduce(0) { $0 + rows * $1.channels * bins } * 4
        let bookkeeping = layout == .kept ? 0 : taps.count * 8 + taps.count * (k + 1) * 4
        let scratch = ((taps.map(\.valuesPerImage).max() ?? 1) + 16) * 4 + 10 * histogramStride(bins: bins) * 4 + (bins + 1) * 8
        return counts + bookkeeping + scratch
    }

    /// The shared binning tables: entropy tables per tap, and a binner per
    /// channel where channels have ranges of their own.
    public static func binningBytes(taps: [TapInfo], bins: Int, perChannel: Bool) -> Int {
        let binner = MemoryLayout<ChannelBinner>.stride
        return taps.reduce(0) { total, tap in
            let tables = (tap.valuesPerChannel + 1) * 8
            let binners = (perChannel ? tap.channels : 1) * (binner + MemoryLayout<cnns_binning>.stride)
            return total + tables + binners
        }
    }

    /// The model's weights as loaded (the initializers) and as packed for the
    /// matrix kernels, once per planned batch size (the load's plan for one
    /// image, and the workers').
    public static func modelBytes(_ network: Network) -> Int {
        let weights = network.model.graph.initializers.values.reduce(0) { $0 + $1.floats.count * 4 + $1.ints.count * 8 }
        return weights * 3
    }

    /// Bytes of memory this process may still use: the smaller of the kernel's
    /// `MemAvailable` and what the cgroup's `memory.max` leaves.
    public static func availableBytes() -> Int {
        var available = Int.max
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kb = Int(line.split(separator: " ").dropFirst().first ?? "") {
            available = kb * 1024
        }
        if let maxText = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
           let limit = Int(maxText.trimmingCharacters(in: .whitespacesAndNewlines)) {
            let used = (try? String(contentsOfFile: "/sys/fs/cgroup/memory.current", encoding: .utf8))
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
            available = min(available, max(0, limit - used))
        }
        return available == .max ? 8 << 30 : available
    }

    /// "1.9 GB".
    public static func format(_ bytes: Int) -> String {
        let b = Double(bytes)
        if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
        if b >= 1e6 { return String(format: "%.0f MB", b / 1e6) }
        return String(format: "%.0f kB", b / 1e3)
    }

    /// One line for the terminal.
    public var summaryLine: String {
        let detail = parts.filter { $0.bytes >= 1 << 20 }.map { "\($0.name) \(MemoryPlan.format($0.bytes))" }.joined(separator: ", ")
        return "memory: about \(MemoryPlan.format(totalBytes)) of \(MemoryPlan.format(budgetBytes)) available "
            + "(\(detail)); class × channel histograms \(layout == .kept ? "kept" : "on demand")"
    }

    /// The JSON object of `analyze`'s output. Only what the run itself
    /// determines: not the budget (the machine's free memory of the moment),
    /// so that the same analysis gives the same file.
    public var json: String {
        let p = parts.map { "\(JSONText.string($0.name)): \($0.bytes)" }.joined(separator: ", ")
        return "{\"estimated_bytes\": \(totalBytes), "
            + "\"class_channel_histograms\": \(JSONText.string(layout.rawValue)), \"parts\": {\(p)}}"
    }

    /// Throws, naming what to change, when the plan does not fit.
    public func check(images: Int, file: String) throws {
        guard !fits else { return }
        let biggest = parts.max { $0.bytes < $1.bytes }?.name ?? ""
        let advice: String
        switch biggest {
        case "images": advice = "analyse fewer images (--limit)"
        case "executors": advice = "use a smaller --batch or fewer --threads"
        case "workers", "results": advice = layout == .kept ? "let the class × channel histograms be computed on demand (--class-channels on-demand), or use fewer --bins" : "use fewer --bins or fewer --threads"
        case "per-image": advice = "analyse fewer images (--limit)"
        default: advice = "use a machine with more memory"
        }
        throw InfoError.invalid("\(file): the analysis needs about \(MemoryPlan.format(totalBytes)) of memory but \(MemoryPlan.format(budgetBytes)) are available (largest part: \(biggest)); \(advice), or raise --memory-limit")
    }
}
