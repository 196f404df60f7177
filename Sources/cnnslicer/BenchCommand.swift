import ArgumentParser
import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure inference throughput (images/s) and print JSON.",
        discussion: "Feeds synthetic input of the model's shape unless --data is given. Reports the median of --repeats timed runs after one warm-up run; inference and analysis alternate run by run, and analyze_over_infer is the median of the per-round ratios (wall time, and processor time of all threads).")

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "Real images instead of synthetic input (same forms as for eval).")
    var data: String?

    @Option(name: .long, help: "Images per batch.")
    var batch: Int = 64

    @Option(name: .long, help: "Images per timed run.")
    var images: Int = 2048

    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int = defaultThreadCount()

    @Option(name: .long, help: "Timed runs; the median is reported.")
    var repeats: Int = 3

    @Flag(name: .long, help: "Also print the time spent per operator type (one thread) to stderr.")
    var profile = false

    func validate() throws {
        try RunLimits.validate(batch: batch, threads: threads)
        guard (1...10_000_000).contains(images) else { throw ValidationError("--images must be between 1 and 10000000, got \(images)") }
        guard (1...100).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 100, got \(repeats)") }
    }

    @Flag(name: .long, help: "Skip the analysis benchmark (inference only).")
    var inferOnly = false

    func run() throws {
        try reportingErrors {
            let network = try model.loadNetwork()
            let input = try benchInput(network)
            let pool = input.images.count
            // Image i of the run is image i mod pool of the input: the benchmark
            // measures the network and the analysis, not the decoder.
            let order = (0..<images).map { $0 % pool }
            let batch = RunLimits.batch(self.batch, for: images)
            // Inference wants only logits: the fused plan, as ONNX Runtime fuses too.
            let runner = BatchRunner(network: network, batchSize: batch, threads: threads, fusesUnobservedRuns: true)
            /// Wall and processor seconds (all threads) of one timed run.
            func timed(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
                let cpu0 = processorSeconds(), start = DispatchTime.now().uptimeNanoseconds
                try body()
                return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, processorSeconds() - cpu0)
            }
            func timeInference() throws -> (wall: Double, cpu: Double) {
                try timed {
                    try runner.run(total: images, fill: { range, buffer in
                        try input.fill(order[range], into: buffer)
                    }, process: { _, range, executor in
                        executor.run(count: range.count)
                    })
                }
            }
            _ = try timeInference()
            if profile { try printProfile(network, input: input, order: order) }
            var fields = [
                "\"model\": \(JSONText.string(network.path))", "\"batch\": \(batch)", "\"threads\": \(threads)", "\"blas_kernels\": \(JSONText.string(BLASKernels.coreName))",
                "\"images\": \(images)", "\"repeats\": \(repeats)",
            ]
            guard !inferOnly else {
                let runs = try (0..<repeats).map { _ in try timeInference() }
                let inferSeconds = median(runs.map(\.wall))
                fields.append("\"infer_images_per_s\": \(String(format: "%.1f", Double(images) / inferSeconds))")
                // Processor time of all threads: on a machine shared with other
                // work, images per processor-second varies less than per wall-second.
                fields.append("\"infer_cpu_s\": \(String(format: "%.3f", median(runs.map(\.cpu))))")
                print("{" + fields.joined(separator: ", ") + "}")
                return
            }
            // All taps, all channels, per-class histograms and per-image entropies.
            let analyzer = try Analyzer(input: input, batchSize: batch, threads: threads)
            let ranges = try analyzer.calibrate()
            func timeAnalysis() throws -> (wall: Double, cpu: Double) {
                try timed { _ = try analyzer.run(images: order, ranges: ranges, keepPerImage: true) }
            }
            _ = try timeAnalysis()
            // Inference and analysis alternate, round by round, so that both
            // see the same load on a shared machine; the ratio is taken per round.
            var rounds: [(infer: (wall: Double, cpu: Double), analyze: (wall: Double, cpu: Double))] = []
            for _ in 0..<repeats { rounds.append((try timeInference(), try timeAnalysis())) }
            let rate = { (seconds: Double) in String(format: "%.1f", Double(images) / seconds) }
            fields += [
                "\"infer_images_per_s\": \(rate(median(rounds.map(\.infer.wall))))",
                "\"analyze_images_per_s\": \(rate(median(rounds.map(\.analyze.wall))))",
                "\"class_channel_histograms\": \(JSONText.string(analyzer.layout.rawValue))",
                "\"rounds\": [" + rounds.map { r in
                    "{\"infer_images_per_s\": \(rate(r.infer.wall)), \"analyze_images_per_s\": \(rate(r.analyze.wall)), "
                        + "\"infer_cpu_s\": \(String(format: "%.2f", r.infer.cpu)), \"analyze_cpu_s\": \(String(format: "%.2f", r.analyze.cpu))}"
                }.joined(separator: ", ") + "]",
                "\"analyze_over_infer\": \(String(format: "%.3f", median(rounds.map { $0.infer.wall / $0.analyze.wall })))",
                "\"analyze_over_infer_cpu\": \(String(format: "%.3f", median(rounds.map { $0.infer.cpu / $0.analyze.cpu })))",
            ]
            print("{" + fields.joined(separator: ", ") + "}")
        }
    }

    /// Processor time of this process so far, all threads, user and system.
    func processorSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// `--data` images, or up to 256 synthetic ones of the model's shape with cycling labels.
    func benchInput(_ network: Network) throws -> ModelInput {
        if let data {
            return try ModelInput.load(network: network, data: data, limit: min(images, 1024), resize: .bilinear)
        }
        let shape = network.inputShape
        guard shape.count == 3 else {
            throw EngineError.unsupported(file: network.path, reason: "input shape \(shape) is not C×H×W images")
        }
        let count = min(images, 256)
        var state: UInt64 = 0x9E3779B97F4A7C15
        let pixels: [UInt8] = (0..<(count * shape.reduce(1, *))).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let images = try LabeledImages(channels: shape[0], height: shape[1], width: shape[2], pixels: pixels,
                                       labels: (0..<count).map { $0 % network.classCount },
                                       classNames: (0..<network.classCount).map { "class \($0)" }, source: "synthetic")
        return try ModelInput(network: network, images: images, mean: [0.5], std: [0.25])
    }
}

extension BenchCommand {
    /// Runs the images once on one executor with kernel timing and sums by operator.
    func printProfile(_ network: Network, input: ModelInput, order: [Int]) throws {
        // The plan the inference benchmark runs: a fused step's time counts for its Conv.
        let executor = try network.makeExecutor(capacity: RunLimits.batch(batch, for: images), fusesUnobservedRuns: true)
        executor.isProfiling = true
        var done = 0
        while done < images {
            let n = min(executor.capacity, images - done)
            try input.fill(order[done..<(done + n)], into: executor.inputBuffer)
            executor.run(count: n)
            done += n
        }
        for (node, seconds) in executor.nodeSeconds.sorted(by: { $0.key < $1.key }) {
            FileHandle.standardError.write(Data("  \(network.orderedNodes[node].displayName)  \(String(format: "%.4f", seconds)) s\n".utf8))
        }
        var byOp: [String: Double] = [:]
        for (node, seconds) in executor.nodeSeconds { byOp[network.orderedNodes[node].opType, default: 0] += seconds }
        let total = byOp.values.reduce(0, +)
        for (op, seconds) in byOp.sorted(by: { $0.value > $1.value }) {
            FileHandle.standardError.write(Data(String(format: "%-20@ %8.3f s  %5.1f%%\n", op as NSString, seconds, 100 * seconds / total).utf8))
        }
    }
}
