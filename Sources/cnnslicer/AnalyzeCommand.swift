import ArgumentParser
import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo

extension RangeMode: ExpressibleByArgument {}

/// `--class-channels auto|kept|on-demand`.
enum ClassChannelsOption: String, ExpressibleByArgument, CaseIterable {
    case auto, kept, onDemand = "on-demand"

    var layout: ClassChannelLayout? {
        switch self {
        case .auto: return nil
        case .kept: return .kept
        case .onDemand: return .onDemand
        }
    }
}

/// A byte count with an optional K/M/G/T suffix (powers of 1,024): `3G`, `512M`.
struct ByteSize: ExpressibleByArgument {
    let bytes: Int

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var number = Substring(text.hasSuffix("B") ? String(text.dropLast()) : text)
        var scale = 1
        if let last = number.last, let unit = units[last] { scale = unit; number = number.dropLast() }
        guard let value = Double(number), value > 0, value * Double(scale) < 1e18 else { return nil }
        bytes = Int(value * Double(scale))
    }
}

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Entropy of every tap and channel (SPEC §3) as JSON `cnnslicer.analysis.v1`.",
        discussion: """
            Instance entropy (per image, averaged over the set), ensemble entropy (values pooled over \
            the set) and label information, per tap, class and channel. With --shard k/n only the k-th \
            of n equal parts of the images is analysed and a partial (histograms) is written; \
            `cnnslicer merge` combines the partials into exactly the result of one run.
            """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "Equal-width bins per histogram.")
    var bins: Int = 64

    @Option(name: .long, help: "Binning range: layer (min/max per tap over the first 256 images), channel, or LO,HI.")
    var range: RangeMode = .layer

    @Flag(name: .long, help: "Add the Miller–Madow correction (m − 1)/(2 n ln 2) to every entropy.")
    var millerMadow = false

    @Option(name: .long, help: "Where to write the JSON (atomically); - for standard output.")
    var out: String = "-"

    @Option(name: .long, help: "Also write per-image arrays (.npy) into this directory.")
    var npy: String?

    @Option(name: .long, help: "Analyse part k of n (k from 1) and write a partial for `cnnslicer merge`.")
    var shard: String?

    @Option(name: .customLong("batch"), help: "Images per batch (default 64, fewer for networks with large activations, to save memory).")
    var batchSize: Int?

    /// The batch size in use.
    func batch(for network: Network) -> Int { batchSize ?? MemoryPlan.automaticBatchSize(network: network) }

    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int = defaultThreadCount()

    @Flag(name: .long, help: "No progress bar.")
    var quiet = false

    @Option(name: .long, parsing: .upToNextOption,
            help: "A model series (checkpoints of one architecture): files or globs such as 'epochs/epoch_*.onnx'. Writes `cnnslicer.analysis-series.v1` with one analysis per model.")
    var series: [String] = []

    @Flag(name: .long, help: "Neither read nor write the analysis cache ($XDG_CACHE_HOME/cnnslicer).")
    var noCache = false

    @Option(name: .long, help: "Class × channel histograms: kept for every class (instant per-class channel values; fine for tens of classes), on-demand (memory independent of the number of classes), or auto (kept while they take under 512 MB).")
    var classChannels: ClassChannelsOption = .auto

    @Option(name: .long, help: "Memory the analysis may use, e.g. 3G (default: what the machine has available). The analysis estimates its needs first and refuses to start above it.")
    var memoryLimit: ByteSize?

    func validate() throws { try RunLimits.validate(batch: batchSize, threads: threads) }

    /// The batch size in use: --batch, else 64 or fewer for large activations; never more than the images.
    func batch(for input: ModelInput) -> Int {
        RunLimits.batch(batchSize ?? MemoryPlan.automaticBatchSize(network: input.network), for: input.images.count)
    }

    /// Estimates the memory of the run, says so on the terminal, and refuses a run that cannot fit.
    func plan(_ input: ModelInput, settings: AnalysisSettings, keepPerImage: Bool) throws -> MemoryPlan {
        let plan = try MemoryPlan(input: input, settings: settings, batchSize: batch(for: input), threads: threads,
                                  layout: classChannels.layout, keepPerImage: keepPerImage, budget: memoryLimit?.bytes)
        if !quiet { FileHandle.standardError.write(Data((plan.summaryLine + "\n").utf8)) }
        try plan.check(images: input.images.count, file: input.network.path)
        return plan
    }

    func analyze(_ input: ModelInput, settings: AnalysisSettings, plan: MemoryPlan, bar: ProgressBar) throws -> AnalysisResult {
        let analyzer = try Analyzer(input: input, settings: settings, batchSize: batch(for: input), threads: threads,
                                    layout: plan.layout)
        let cache = noCache ? nil : AnalysisCache.standard()
        let key = AnalysisCache.key(input: input, request: AnalysisRequest(settings: settings), layout: plan.layout)
        if let cache, let cached = cache.load(key: key, input: input, settings: settings) { return cached }
        let result = try analyzer.run(ranges: try analyzer.calibrate(), keepPerImage: true, progress: { bar.update($0) })
        bar.finish()
        if let cache { try? cache.save(result, key: key) }
        return result
    }

    func runSeries(settings: AnalysisSettings) throws {
        let models = try ModelSeries(patterns: series)
        guard let dataSource = data.data else { throw ValidationError("--data is required with --series") }
        try checkOutput(out, models: models.networks.map(\.path), data: dataSource)
        var parts: [String] = []
        for network in models.networks {
            let input = try data.load(network: network, data: dataSource)
            if !quiet { FileHandle.standardError.write(Data("\(network.path)\n".utf8)) }
            let plan = try plan(input, settings: settings, keepPerImage: true)
            let result = try analyze(input, settings: settings, plan: plan, bar: ProgressBar(enabled: !quiet))
            parts.append(AnalysisJSON.render(network: network, modelPath: network.path, dataSource: input.images.source,
                                             classNames: input.classNames, summary: result.summary(network: network),
                                             memory: plan, classMapping: input.classMapping.json))
        }
        try emit("{\"format\": \"cnnslicer.analysis-series.v1\", \"epochs\": [\n" + parts.joined(separator: ",\n") + "\n]}", to: out)
    }

    func run() throws {
        try reportingErrors {
            let settings = AnalysisSettings(bins: bins, range: range, millerMadow: millerMadow)
            if !series.isEmpty {
                guard model.model == nil, shard == nil else { throw ValidationError("--series replaces --model and cannot be sharded") }
                try runSeries(settings: settings)
                return
            }
            let input = try data.input(for: model)
            let dataInputs = data.data ?? input.images.source
            try checkOutput(out, models: [input.network.path], data: dataInputs)
            if let npy, shard == nil, FileManager.default.fileExists(atPath: npy) {
                for name in NPYExport.fileNames(network: input.network) {
                    try checkOutput((npy as NSString).appendingPathComponent(name), models: [input.network.path], data: dataInputs)
                }
            }
            if !quiet, input.classMapping.source != .dataset {
                let lines = input.classMapping.report(classNames: input.classNames, limit: 20)
                FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            }
            let n = input.images.count
            let bar = ProgressBar(enabled: !quiet)
            if let shard {
                let spec = try ShardSpec(parsing: shard)
                guard npy == nil else { throw ValidationError("--npy cannot be combined with --shard") }
                let plan = try plan(input, settings: settings, keepPerImage: false)
                let batch = batch(for: input)
                let analyzer = try Analyzer(input: input, settings: settings, batchSize: batch, threads: threads,
                                            layout: plan.layout)
                // Shards are parts of the images sorted by class, so that a
                // shard splits at most two classes (on demand, a split class
                // stays open in the partial until `merge` has all of it).
                let sorted = Analyzer.classUnits(Array(0..<n), slots: analyzer.slots, batchSize: batch).order
                let positions = spec.range(of: n, batchSize: batch)
                let images = Array(sorted[positions])
                let totals = analyzer.slots.reduce(into: [Int](repeating: 0, count: input.network.classCount + 1)) { $0[$1] += 1 }
                let ranges = try analyzer.calibrate()
                let result = try analyzer.run(images: images, ranges: ranges, keepPerImage: false, classTotals: totals,
                                              progress: { bar.update($0) })
                bar.finish()
                let partial = AnalysisPartial(model: input.network.path, data: input.images.source,
                                              modelDigest: try FileDigest.of(file: input.network.path),
                                              dataDigest: FileDigest.of(images: input.images),
                                              totalImages: n, shardIndex: spec.index,
                                              shardCount: spec.count, images: positions, settings: settings,
                                              classNames: input.classNames, ranges: ranges,
                                              histograms: result.histograms, classMapping: input.classMapping.json)
                try partial.write(to: out)
                return
            }
            let plan = try plan(input, settings: settings, keepPerImage: true)
            let result = try analyze(input, settings: settings, plan: plan, bar: bar)
            let json = AnalysisJSON.render(network: input.network, modelPath: input.network.path,
                                           dataSource: input.images.source, classNames: input.classNames,
                                           summary: result.summary(network: input.network), memory: plan,
                                           classMapping: input.classMapping.json)
            try emit(json, to: out)
            if let npy, let store = result.store {
                try NPYExport.write(store: store, network: input.network, labels: input.images.labels, to: npy)
            }
        }
    }
}

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the partials of `analyze --shard k/n` into one `cnnslicer.analysis.v1`.")

    @Argument(help: "Partial files written by `cnnslicer analyze --shard k/n --out F`.")
    var partials: [String]

    @Option(name: .long, help: "Where to write the JSON; - for standard output.")
    var out: String = "-"

    func run() throws {
        try reportingErrors {
            let files = try partials.map { (path: $0, partial: try AnalysisPartial.read(from: $0)) }
            let merged = try AnalysisPartial.merge(files)
            try checkOutput(out, models: [merged.model], data: nil, files: partials)
            let network = try Network(contentsOf: merged.model)
            guard try FileDigest.of(file: merged.model) == merged.modelDigest else {
                throw CLIError("\(merged.model): the model changed since the partials were written")
            }
            for (path, partial) in files {
                do { try partial.validate(against: network) } catch { throw CLIError("\(path): \(error) (model \(merged.model))") }
            }
            let summary = AnalysisSummary(network: network, histograms: merged.histograms, ranges: merged.ranges,
                                          settings: merged.settings)
            try emit(AnalysisJSON.render(network: network, modelPath: merged.model, dataSource: merged.data,
                                         classNames: merged.classNames, summary: summary, classMapping: merged.classMapping), to: out)
        }
    }
}

func emit(_ text: String, to path: String) throws {
    if path == "-" { print(text) } else { try AtomicFile.write(text + "\n", to: path) }
}

/// `k/n`: the k-th (1-based) of n contiguous, nearly equal parts of the images.
struct ShardSpec: Equatable {
    let index: Int
    let count: Int

    init(parsing text: String) throws {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, k >= 1, k <= n else {
            throw ValidationError("--shard expects k/n with 1 ≤ k ≤ n, got '\(text)'")
        }
        index = k
        count = n
    }

    /// The positions of this shard's images in the order being split: whole
    /// batches of it.
    func range(of total: Int, batchSize: Int) -> Range<Int> {
        let batches = (total + batchSize - 1) / batchSize
        let first = batches * (index - 1) / count, last = batches * index / count
        return min(total, first * batchSize)..<min(total, last * batchSize)
    }
}

/// A progress bar on standard error, drawn only when it is a terminal.
final class ProgressBar: @unchecked Sendable {
    // Updated from worker threads; the lock keeps lines whole.
    private let lock = NSLock()
    private let enabled: Bool
    private var lastDraw: Double = 0

    init(enabled: Bool) { self.enabled = enabled && isatty(STDERR_FILENO) == 1 }

    func update(_ p: AnalysisProgress) {
        guard enabled else { return }
        lock.withLock {
            guard p.seconds - lastDraw >= 0.1 || p.imagesDone == p.imagesTotal else { return }
            lastDraw = p.seconds
            let width = 30
            let filled = Int(p.fraction * Double(width))
            let eta = p.secondsLeft.map { String(format: "ETA %.0fs", $0) } ?? ""
            let line = "\r[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
                + String(format: "] %d/%d images  %.0f img/s  ", p.imagesDone, p.imagesTotal, p.imagesPerSecond) + eta + "   "
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
