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
            let times = try (0..<repeats).map { _ in try timedRun() }.sorted()
            let median = times[times.count / 2]
            print("""
            {"model": \(jsonString(network.path)), "batch": \(batch), "threads": \(threads), "images": \(images), \
            "repeats": \(repeats), "infer_images_per_s": \(String(format: "%.1f", Double(images) / median))}
            """)
        }
    }
}

extension ModelOptions {
    init(model: String) {
        self.init()
        self.model = model
    }
}
