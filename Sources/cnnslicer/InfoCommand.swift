import ArgumentParser
import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show a model's graph, taps, shapes and parameter counts.")

    @OptionGroup var model: ModelOptions

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        try reportingErrors {
            let network = try model.loadNetwork()
            let m = network.model
            let params = parameterCounts(network)
            if json {
                var lines: [String] = []
                for tap in network.taps {
                    lines.append("    {\"index\": \(tap.index), \"name\": \(JSONText.string(tap.name)), \"op\": \(JSONText.string(tap.opType)), \"shape\": [\(tap.shape.map(String.init).joined(separator: ", "))], \"parameters\": \(params[tap.name] ?? 0)}")
                }
                print("""
                {
                  "model": \(JSONText.string(network.path)),
                  "producer": \(JSONText.string("\(m.producerName) \(m.producerVersion)")),
                  "opset": \(m.opsetVersion),
                  "input": {"name": \(JSONText.string(network.inputName)), "shape": [\(network.inputShape.map(String.init).joined(separator: ", "))]},
                  "classes": \(network.classCount),
                  "parameters": \(network.parameterCount),
                  "nodes": \(m.graph.nodes.count),
                  "metadata": {\(m.metadata.map { "\(JSONText.string($0.key)): \(JSONText.string($0.value))" }.joined(separator: ", "))},
                  "taps": [
                \(lines.joined(separator: ",\n"))
                  ]
                }
                """)
                return
            }
            print("model:      \(network.path)")
            print("producer:   \(m.producerName) \(m.producerVersion), IR \(m.irVersion), opset \(m.opsetVersion)")
            print("input:      \(network.inputName) (N, \(network.inputShape.map(String.init).joined(separator: ", ")))")
            print("output:     \(network.outputName) (N, \(network.classCount))")
            print("nodes:      \(m.graph.nodes.count), taps: \(network.taps.count)")
            print("parameters: \(network.parameterCount)")
            for (key, value) in m.metadata { print("metadata:   \(key) = \(value)") }
            print("")
            let nameWidth = max(4, network.taps.map(\.name.count).max() ?? 4)
            print("  #  " + "tap".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  op                  shape            params")
            for tap in network.taps {
                let shape = "(" + tap.shape.map(String.init).joined(separator: ", ") + ")"
                print(String(format: "%3d  ", tap.index)
                      + tap.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                      + tap.opType.padding(toLength: 18, withPad: " ", startingAt: 0) + "  "
                      + shape.padding(toLength: 15, withPad: " ", startingAt: 0) + "  "
                      + String(params[tap.name] ?? 0))
            }
        }
    }

    /// Parameters read by each tap's node (weights, biases, BN statistics).
    func parameterCounts(_ network: Network) -> [String: Int] {
        var counts: [String: Int] = [:]
        let initializers = network.model.graph.initializers
        for node in network.orderedNodes {
            let name = node.name.isEmpty ? (node.outputs.first ?? "") : node.name
            let n = node.inputs.compactMap { initializers[$0] }.filter(\.isFloatingPoint).reduce(0) { $0 + $1.elementCount }
            counts[name, default: 0] += n
        }
        return counts
    }
}

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer", abstract: "Run a float32 NCHW batch from .npy; write the logits or one tap's values as .npy.")

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "Input batch, float32 .npy of shape (N, C, H, W).")
    var input: String

    @Option(name: .long, help: "Where to write the result (.npy, float32).")
    var output: String

    @Option(name: .long, help: "Write this tap's values instead of the logits (see `cnnslicer info`).")
    var tap: String?

    @Option(name: .long, help: "Images per batch.")
    var batch: Int = 64

    func validate() throws { try RunLimits.validate(batch: batch) }

    func run() throws {
        try reportingErrors {
            let network = try model.loadNetwork()
            try checkOutput(output, models: [network.path], data: nil, files: [input])
            var tapIndex: Int?
            if let tap {
                guard let info = network.tap(named: tap) else {
                    throw CLIError("\(network.path): no tap named '\(tap)' (taps: \(network.taps.map(\.name).joined(separator: ", ")))")
                }
                tapIndex = info.index
            }
            let array = try NPYArray.read(path: input)
            guard let inputValues = array.floatValues else {
                throw DataError.unsupportedFormat(path: input, detail: "expected float32 values, found uint8")
            }
            guard array.shape.count == network.inputShape.count + 1, Array(array.shape.dropFirst()) == network.inputShape else {
                throw EngineError.shapeMismatch(file: input, reason: "array of shape \(array.shape) but \(network.path) takes (N, \(network.inputShape.map(String.init).joined(separator: ", ")))")
            }
            let n = array.shape[0]
            guard n > 0 else { throw CLIError("\(input): empty batch") }
            let perImage = network.inputShape.reduce(1, *)
            // Logits alone: the fused inference plan; a tap needs the observed plan.
            let executor = try network.makeExecutor(capacity: RunLimits.batch(batch, for: n), fusesUnobservedRuns: tapIndex == nil)
            let outShape = tapIndex.map { network.taps[$0].shape } ?? [network.classCount]
            var result: [Float] = []
            result.reserveCapacity(n * outShape.reduce(1, *))
            try inputValues.withUnsafeBufferPointer { values in
                var start = 0
                while start < n {
                    let count = min(executor.capacity, n - start)
                    let slice = UnsafeBufferPointer(rebasing: values[(start * perImage)..<((start + count) * perImage)])
                    let logits = tapIndex == nil ? executor.run(input: slice, count: count)
                        : executor.run(input: slice, count: count) { activation in
                            if activation.tap == tapIndex { result += activation.values }
                        }
                    if tapIndex == nil { result += logits }
                    if result.contains(where: { $0.isNaN }) {
                        throw CLIError("\(network.path): NaN values computed from \(input) (images \(start)..<\(start + count))")
                    }
                    start += count
                }
            }
            try NPYArray(shape: [n] + outShape, float32: result).write(to: output)
        }
    }
}
