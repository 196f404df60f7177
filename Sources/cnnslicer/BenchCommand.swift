import ArgumentParser
import Foundation
import SlicerData
import SlicerEngine

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure inference throughput (images/s) and print JSON.",
        discussion: "Feeds synthetic input of the model's shape unless --data is given. Reports the median of --repeats timed runs after one warm-up run.")

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
        guard batch > 0, images > 0, threads > 0, repeats > 0 else {
            throw ValidationError("--batch, --images, --threads and --repeats must be positive")
        }
    }

    func run() throws {
        try reportingErrors {
            let network = try model.loadNetwork()
            let perImage = network.inputShape.reduce(1, *)
            // The input is prepared before timing: the benchmark measures the network, not the decoder.
            var input: [Float]
            if let data {
                var options = try DataOptions.parse(["--data", data, "--limit", String(images)])
                options.resize = .bilinear
                let workload = try Workload(model: ModelOptions(model: network.path), data: options)
                input = [Float](repeating: 0, count: workload.images.count * perImage)
                try input.withUnsafeMutableBufferPointer { try workload.fill(0..<workload.images.count, into: $0.baseAddress!) }
            } else {
                var state: UInt64 = 0x9E3779B97F4A7C15
                input = (0..<(min(images, 256) * perImage)).map { _ in
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    return Float(Int(state >> 33) % 2001) / 1000 - 1
                }
            }
            let pool = input.count / perImage
            let shared = UncheckedBox(input)
            let runner = BatchRunner(network: network, batchSize: batch, threads: threads)
            func timedRun() throws -> Double {
                let start = DispatchTime.now().uptimeNanoseconds
                try runner.run(total: images, fill: { range, buffer in
                    shared.value.withUnsafeBufferPointer { src in
                        for (j, i) in range.enumerated() {
                            (buffer + j * perImage).update(from: src.baseAddress! + (i % pool) * perImage, count: perImage)
                        }
                    }
                }, process: { _, range, executor in
                    executor.run(count: range.count)
                })
                return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
            _ = try timedRun()
            if profile { try printProfile(network, input: shared.value, pool: pool) }
            let times = try (0..<repeats).map { _ in try timedRun() }.sorted()
            let median = times[times.count / 2]
            print("""
            {"model": \(jsonString(network.path)), "batch": \(batch), "threads": \(threads), "images": \(images), \
            "repeats": \(repeats), "infer_images_per_s": \(String(format: "%.1f", Double(images) / median))}
            """)
        }
    }
}

extension BenchCommand {
    /// Runs the images once on one executor with kernel timing and sums by operator.
    func printProfile(_ network: Network, input: [Float], pool: Int) throws {
        let executor = try network.makeExecutor(capacity: batch)
        executor.isProfiling = true
        let perImage = network.inputShape.reduce(1, *)
        var done = 0
        while done < images {
            let n = min(batch, images - done)
            for j in 0..<n {
                let i = (done + j) % pool
                input.withUnsafeBufferPointer { (executor.inputBuffer + j * perImage).update(from: $0.baseAddress! + i * perImage, count: perImage) }
            }
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

extension ModelOptions {
    init(model: String) {
        self.init()
        self.model = model
    }
}
