import ArgumentParser
import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo

extension Split: ExpressibleByArgument {}
extension ResizeMode: ExpressibleByArgument {}

/// `--resize`: a number (the shorter side, torchvision's `Resize(N)`), or, as in
/// earlier versions, an interpolation (nearest, bilinear, antialias) for stretching
/// images to the model's size.
enum ResizeArgument: ExpressibleByArgument, Equatable {
    case shorterSide(Int)
    case interpolation(ResizeMode)

    init?(argument: String) {
        if let mode = ResizeMode(rawValue: argument.lowercased()) { self = .interpolation(mode); return }
        guard let n = Int(argument), n > 0, n <= 16384 else { return nil }
        self = .shorterSide(n)
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// `--normalize`: a named mean/std.
enum NormalizePreset: String, ExpressibleByArgument, CaseIterable {
    /// torchvision's ImageNet statistics.
    case imagenet
    /// u/255 as is (mean 0, std 1).
    case none

    var values: (mean: [Float], std: [Float]) {
        switch self {
        case .imagenet: return ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        case .none: return ([0], [1])
        }
    }
}

/// How image files become the model's input; shared by the commands that read data and the app.
struct ImageOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "N: resize the shorter side of image files to N, then centre-crop to the model's size (torchvision's Resize(N) + CenterCrop). nearest|bilinear|antialias: the interpolation for stretching images to the model's size (also lets IDX/CIFAR data of another size be resized).",
        valueName: "N|nearest|bilinear|antialias"))
    var resize: ResizeArgument?

    @Option(name: .long, help: ArgumentHelp("Centre crop of image files, N or WxH (after --resize N; default the model's input size).", valueName: "N|WxH"))
    var crop: String?

    @Option(name: .long, help: "Interpolation: nearest, bilinear (no antialiasing) or antialias (PIL's and torchvision's bilinear). Default antialias with --resize N or --crop, else bilinear.")
    var interpolation: ResizeMode?

    @Option(name: .customLong("class-index"), help: ArgumentHelp(
        "For image folders: a class-index file naming the model's classes (torchvision's imagenet_class_index.json, or one class per line); default imagenet_class_index.json in the data folder.",
        valueName: "file"))
    var classIndex: String?

    @Option(name: .long, help: "Mean and std by name: imagenet or none (--mean/--std override).")
    var normalize: NormalizePreset?

    func validate() throws {
        if case .interpolation(let mode)? = resize, let interpolation, interpolation != mode {
            throw ValidationError("--resize \(mode.rawValue) and --interpolation \(interpolation.rawValue) disagree; give --interpolation alone")
        }
        _ = try geometry()
    }

    /// What allows resizing data and how (nil: data must have the model's size).
    var interpolationMode: ResizeMode? {
        if case .interpolation(let mode)? = resize { return mode }
        return interpolation ?? (geometryRequested ? .antialias : nil)
    }

    private var geometryRequested: Bool {
        if case .shorterSide? = resize { return true }
        return crop != nil
    }

    /// Shorter-side resize and centre crop, when asked for.
    func geometry() throws -> ImageGeometry? {
        guard geometryRequested else { return nil }
        var cropSize: ImageSize?
        if let crop {
            let parts = crop.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
            guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ ($0 ?? 0) > 0 && ($0 ?? 0) <= 16384 }) else {
                throw ValidationError("--crop expects N or WxH with positive sizes, got '\(crop)'")
            }
            let w = parts[0] ?? 0
            cropSize = ImageSize(width: w, height: parts.count == 2 ? (parts[1] ?? 0) : w)
        }
        var side: Int?
        if case .shorterSide(let n)? = resize { side = n }
        return ImageGeometry(shorterSide: side, crop: cropSize, interpolation: interpolation ?? .antialias)
    }

    /// Mean and std: --mean/--std, else --normalize, else nil (the model's metadata).
    func normalization(mean: String?, std: String?) throws -> (mean: [Float]?, std: [Float]?) {
        let preset = normalize?.values
        return (try DataOptions.parseFloats(mean, flag: "--mean") ?? preset?.mean,
                try DataOptions.parseFloats(std, flag: "--std") ?? preset?.std)
    }
}

struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "ONNX model file.")
    var model: String?

    func loadNetwork() throws -> Network {
        try Network(contentsOf: model ?? ShippedDefault.modelPath())
    }
}

struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "Images: IDX pair, CIFAR-10 folder (binary or python), image folder, image file, or mnist / fashion-mnist / cifar10.")
    var data: String?

    @Option(name: .long, help: "Dataset split for IDX and CIFAR data: test or train.")
    var split: Split = .test

    @Option(name: .long, help: "Use only the first N images in dataset order.")
    var limit: Int?

    @Option(name: .long, help: "Per-channel means, comma-separated (default: the model's cnnslicer.mean, else 0).")
    var mean: String?

    @Option(name: .long, help: "Per-channel standard deviations, comma-separated (default: the model's cnnslicer.std, else 1).")
    var std: String?

    @Option(name: .long, help: "Class names, comma-separated (default: the model's cnnslicer.labels, else the dataset's).")
    var labels: String?

    @OptionGroup var images: ImageOptions

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
    }
}

extension DataOptions {
    /// The model's input with these data options applied.
    func input(for model: ModelOptions) throws -> ModelInput {
        let network = try model.loadNetwork()
        guard let source = data ?? (model.model == nil ? ShippedDefault.announcedDataSource() : nil) else {
            throw ValidationError("--data is required with --model")
        }
        return try load(network: network, data: source)
    }

    /// `network`'s input from `source` with these options.
    func load(network: Network, data source: String) throws -> ModelInput {
        let (mean, std) = try images.normalization(mean: mean, std: std)
        return try ModelInput.load(
            network: network, data: source, split: split, limit: limit, mean: mean, std: std,
            labels: labels.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } },
            resize: images.interpolationMode, geometry: try images.geometry(), classIndex: images.classIndex)
    }

    static func parseFloats(_ text: String?, flag: String) throws -> [Float]? {
        guard let text else { return nil }
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap(Float.init)
        guard values.count == parts.count, !values.isEmpty else { throw ValidationError("\(flag) expects comma-separated numbers, got '\(text)'") }
        return values
    }
}

/// Refuses `out` before any work is done when writing it would replace
/// something that is not a regular file or one of the command's inputs
/// (`OutputFile.check`); "-" (standard output) and nil pass.
///
/// - Parameters:
///   - models: the model files read.
///   - data: the `--data` argument (a path or a dataset name).
///   - files: other files read (an input array, partials).
func checkOutput(_ out: String?, models: [String], data: String?, files: [String] = []) throws {
    guard let out, out != "-" else { return }
    try OutputFile.check(out, inputs: models + (data.map { DatasetLoader.inputPaths($0) } ?? []) + files)
}

/// The accepted `--batch` and `--threads`.
///
/// Zero is refused (it used to be taken silently, or to fail deep inside), and
/// so are values no machine can serve: every worker allocates its activation
/// buffers for a whole batch, so `--batch 1000000000` asked for terabytes and
/// aborted. Within the limits a batch larger than the images is cut to their
/// number (`batch(for:)`), so a small set never allocates for an empty batch.
enum RunLimits {
    static let batch = 1...4096
    static let threads = 1...256

    static func validate(batch: Int?, threads: Int? = nil) throws {
        if let batch, !self.batch.contains(batch) {
            throw ValidationError("--batch must be between \(self.batch.lowerBound) and \(self.batch.upperBound), got \(batch)")
        }
        if let threads, !self.threads.contains(threads) {
            throw ValidationError("--threads must be between \(self.threads.lowerBound) and \(self.threads.upperBound), got \(threads)")
        }
    }

    /// The batch actually run for `images` images.
    static func batch(_ batch: Int, for images: Int) -> Int { max(1, min(batch, images)) }
}

/// Where `cnnslicer` looks for what it ships: the default model and the
/// bundled data subset.
enum ShippedDefault {
    static let dataName = "fashion-mnist"
    static let modelFile = "models/fashion_mnist_cnn.onnx"

    /// `assets/` beside the executable's package: `$CNNSLICER_ASSETS`, then up
    /// from the executable (`.build/release/cnnslicer` → `./assets`), then the
    /// working directory.
    static func assetsDirectory() -> String? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["CNNSLICER_ASSETS"] { candidates.append(env) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("assets").path)
            candidates.append(dir.appendingPathComponent("share/cnnslicer/assets").path)
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/assets")
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/" + modelFile) }
    }

    static func modelPath() throws -> String {
        guard let assets = assetsDirectory() else {
            throw CLIError("\(modelFile): shipped default model not found (set CNNSLICER_ASSETS to the project's assets folder, or pass --model)")
        }
        return assets + "/" + modelFile
    }

    /// The bundled balanced subset of the Fashion-MNIST test set (1,000 images,
    /// an IDX pair; made by `tools/make_subset.py`).
    static let subsetFolder = "data/fashion-mnist-subset"
    /// Set to 1 to ignore the system-wide install (`/usr/share/datasets/…`) when
    /// choosing the default data, as on a machine without `dataset-fashion-mnist`.
    static let noSystemDataVariable = "CNNSLICER_NO_SYSTEM_DATA"

    /// The default data: `fashion-mnist` where installed (`$CNNSLICER_DATA`,
    /// `$XDG_DATA_HOME/cnnslicer` or Debian's package path, as `DatasetLoader`
    /// looks), else the bundled subset with a note saying so for the user
    /// (stderr, the app's status bar). With neither, `dataName`, so that the
    /// loader's error lists where it looked.
    static func dataSource(environment: [String: String] = ProcessInfo.processInfo.environment,
                           assets: String? = assetsDirectory()) -> (path: String, note: String?) {
        let skipSystem = environment[noSystemDataVariable].map { !$0.isEmpty && $0 != "0" } ?? false
        let installed = DatasetLoader.candidateDirectories(forName: dataName, environment: environment)
            .filter { !(skipSystem && $0.hasPrefix("/usr/")) }
            .contains(where: isDirectory)
        guard !installed, let assets, isDirectory(assets + "/" + subsetFolder) else {
            return (dataName, nil)
        }
        return (assets + "/" + subsetFolder,
                "\(dataName) not installed; using the bundled 1,000-image subset assets/\(subsetFolder)")
    }

    private static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    /// `dataSource()`'s path, after writing its note (if any) to stderr.
    static func announcedDataSource() -> String {
        let (path, note) = dataSource()
        if let note { FileHandle.standardError.write(Data("cnnslicer: \(note)\n".utf8)) }
        return path
    }
}

/// Classification results over a set, per SPEC §4: top-1 of the argmax, ties to the lowest index.
struct Predictions {
    var predicted: [Int]
    var labels: [Int]
    let classCount: Int

    var accuracy: Double {
        let labelled = zip(predicted, labels).filter { $0.1 >= 0 }
        guard !labelled.isEmpty else { return .nan }
        return Double(labelled.filter { $0.0 == $0.1 }.count) / Double(labelled.count)
    }

    /// nil for a class without images.
    var classAccuracy: [Double?] {
        var right = [Int](repeating: 0, count: classCount), total = right
        for (p, y) in zip(predicted, labels) where y >= 0 && y < classCount {
            total[y] += 1
            if p == y { right[y] += 1 }
        }
        return (0..<classCount).map { total[$0] > 0 ? Double(right[$0]) / Double(total[$0]) : nil }
    }

    static func argmax(_ row: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        for i in 1..<max(row.count, 1) where row[i] > row[best] { best = i }
        return best
    }
}

/// Runs the whole workload, returning every image's prediction.
func classify(_ workload: ModelInput, batchSize: Int, threads: Int) throws -> Predictions {
    let network = workload.network
    let k = network.classCount
    let total = workload.images.count
    let results = UncheckedPredictions(count: total)
    // Only the logits are wanted: the fused inference plan.
    let runner = BatchRunner(network: network, batchSize: batchSize, threads: threads, fusesUnobservedRuns: true)
    try runner.run(total: total, fill: { range, buffer in
        try workload.fill(range, into: buffer)
    }, process: { _, range, executor in
        let logits = executor.run(count: range.count)
        for (j, i) in range.enumerated() {
            let row = UnsafeBufferPointer(rebasing: logits[(j * k)..<((j + 1) * k)])
            if row.contains(where: { !$0.isFinite }) {
                throw EngineError.invalidRequest("\(network.path): non-finite logits for image \(i) of \(workload.images.source)")
            }
            results.set(i, Predictions.argmax(row))
        }
    })
    return Predictions(predicted: results.values, labels: workload.images.labels, classCount: k)
}

/// Disjoint per-image slots written by several workers; each index is written once.
final class UncheckedPredictions: @unchecked Sendable {
    private var storage: UnsafeMutableBufferPointer<Int>
    init(count: Int) { storage = .allocate(capacity: count); storage.initialize(repeating: -1) }
    deinit { storage.deallocate() }
    func set(_ i: Int, _ v: Int) { storage[i] = v }
    var values: [Int] { Array(storage) }
}
