import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine

/// The 13 torchvision ImageNet architectures, exported by PyTorch itself
/// (tools/export_torchvision.py --suite: 64×64 input, 1,000 classes, random
/// calibrated weights; BatchNormalization kept and folded, opsets 13 and 17,
/// and one export with a fixed batch of 1), must give ONNX Runtime's logits
/// to 1e-4 of the logits' scale. The exports are cached in .build while the
/// script is unchanged; without PyTorch the test is skipped and says why.
final class TorchvisionTests: XCTestCase {
    struct Manifest: Decodable {
        struct Entry: Decodable {
            let file: String, model: String, size: Int, mode: String, opset: Int, static_batch: Bool, images: Int
        }
        let models: [Entry]
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Debian's Python, which has python3-torch and python3-torchvision (CNNSLICER_TORCH_PYTHON overrides).
    static var python: String { ProcessInfo.processInfo.environment["CNNSLICER_TORCH_PYTHON"] ?? "/usr/bin/python3" }

    /// Runs `arguments` with the Python; returns its exit status and standard error.
    static func runPython(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func exportSuite() throws -> URL {
        guard FileManager.default.isExecutableFile(atPath: Self.python),
              let probe = try? Self.runPython(["-c", "import torch, torchvision, onnx, onnxruntime"]), probe.status == 0 else {
            throw XCTSkip("""
                torchvision export test skipped: \(Self.python) lacks torch, torchvision, onnx or onnxruntime \
                (apt-get install python3-torch python3-torchvision; pip install onnx onnxruntime — `make test` installs them)
                """)
        }
        let out = Self.repositoryRoot.appendingPathComponent(".build/torchvision-suite")
        let script = Self.repositoryRoot.appendingPathComponent("tools/export_torchvision.py").path
        let result = try Self.runPython([script, "--suite", out.path])
        guard result.status == 0 else {
            XCTFail("tools/export_torchvision.py --suite failed (\(result.status)):\n\(result.stderr.suffix(3000))")
            throw XCTSkip("no exports")
        }
        return out
    }

    /// max |a−b| / max(1, max|b|), as the fixture tests measure it.
    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        var worst: Float = 0, scale: Float = 1
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y).isNaN ? .infinity : abs(x - y)); scale = max(scale, abs(y)) }
        return worst / scale
    }

    func testEveryArchitectureMatchesONNXRuntime() throws {
        let dir = try exportSuite()
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: dir.appendingPathComponent("manifest.json")))
        let architectures = Set(manifest.models.map(\.model))
        XCTAssertEqual(architectures.count, 13, "all 13 architectures exported")
        XCTAssertEqual(Set(manifest.models.map(\.opset)), [13, 17])
        XCTAssertEqual(Set(manifest.models.map(\.mode)), ["bn", "default"])
        var report: [String] = []
        for entry in manifest.models {
            let path = dir.appendingPathComponent(entry.file).path
            let network: Network
            do {
                network = try Network(contentsOf: path)
            } catch {
                XCTFail("\(entry.file): \(error)")
                continue
            }
            XCTAssertEqual(network.inputShape, [3, entry.size, entry.size], entry.file)
            XCTAssertEqual(network.classCount, 1000, entry.file)
            XCTAssertEqual(network.metadataLabels?.count, 1000, "\(entry.file): ImageNet labels in the metadata")
            XCTAssertEqual(network.metadataMean, [0.485, 0.456, 0.406], entry.file)
            // Operators that only move values are not taps (SPEC §2, KernelRegistry.valueMovingOperators).
            let moving = network.taps.filter { KernelRegistry.valueMovingOperators.contains($0.opType) }
            XCTAssertEqual(moving.map(\.name), [], "\(entry.file): value-moving taps")
            let input = try NPYArray.readFloat32(path: path + ".input.npy", expectedShape: [entry.images, 3, entry.size, entry.size])
            let expected = try NPYArray.readFloat32(path: path + ".logits.npy", expectedShape: [entry.images, 1000])
            // Capacity 2 for 3 images: a full batch, then a partial one.
            let executor = try network.makeExecutor(capacity: 2)
            // The inference plan (BatchNormalization folded, activations and
            // residual Adds fused: Fusion.swift) must meet the same tolerance.
            let fused = try network.makeExecutor(capacity: 2, fusesUnobservedRuns: true)
            let perImage = 3 * entry.size * entry.size
            func logits(_ executor: Executor) -> [Float] {
                var logits: [Float] = []
                var start = 0
                while start < entry.images {
                    let n = min(2, entry.images - start)
                    input.withUnsafeBufferPointer { buffer in
                        let out = executor.run(input: UnsafeBufferPointer(rebasing: buffer[(start * perImage)..<((start + n) * perImage)]), count: n)
                        logits += Array(out)
                    }
                    start += n
                }
                return logits
            }
            let error = relativeError(logits(executor), expected)
            let fusedLogits = logits(fused)
            let fusedError = relativeError(fusedLogits, expected)
            XCTAssertTrue(fused.lastRunWasFused, entry.file)
            // Every expansion merged with its depthwise convolution, however
            // small (ExpandDepthwiseKernel; at 64×64 the default plan merges
            // none): bit for bit the inference plan without the merge.
            let mergedPlan = try network.inferencePlan(capacity: 2, fusingExpansionsAbove: 0)
            let mergedCount = mergedPlan.steps.filter { $0.kernel is ExpandDepthwiseKernel }.count
            if mergedCount > 0 {
                let merged = Executor(network: network, plan: executor.plan, fusedPlan: mergedPlan)
                XCTAssertTrue(logits(merged) == fusedLogits, "\(entry.file): \(mergedCount) merged expansions change the logits")
                report.append("\(entry.file): \(mergedCount) expansions merged with their depthwise convolution, bit for bit")
            }
            let steps = executor.plan.steps.count, fusedSteps = fused.fusedPlan?.steps.count ?? steps
            report.append("\(entry.file): \(network.taps.count) taps, relative error \(error); fused \(fusedSteps)/\(steps) steps, \(fusedError)")
            XCTAssertLessThanOrEqual(error, 1e-4, "\(entry.file): logits differ from ONNX Runtime's")
            XCTAssertLessThanOrEqual(fusedError, 1e-4, "\(entry.file): fused logits differ from ONNX Runtime's")
            if entry.mode == "bn" {
                XCTAssertLessThan(fusedSteps, steps, "\(entry.file): BatchNormalization kept as nodes, so something fuses")
            }
        }
        print(report.joined(separator: "\n"))
    }

    /// ShuffleNet's channel shuffle (Reshape → Transpose → Reshape) and channel split
    /// (Slice) fold their shape arithmetic at load. The Transpose and the Slices are taps
    /// (SPEC §2 lists the operators that are not); the Reshapes around them are not.
    func testShuffleNetTapsOfTheShuffle() throws {
        let dir = try exportSuite()
        let network = try Network(contentsOf: dir.appendingPathComponent("shufflenet_v2_x1_0-64-bn-op13.onnx").path)
        let ops = Set(network.taps.map(\.opType))
        XCTAssertFalse(ops.contains("Reshape"))
        let transposes = network.taps.filter { $0.opType == "Transpose" }
        XCTAssertEqual(transposes.count, 16, "one shuffle per unit")
        for t in transposes {
            // [C/2, 2, H, W]: C/2 channels of 2·H·W values each.
            XCTAssertEqual(t.shape.count, 4, t.name)
            XCTAssertEqual(t.shape[1], 2, t.name)
            XCTAssertEqual(t.valuesPerChannel, t.shape[1] * t.shape[2] * t.shape[3], t.name)
        }
        XCTAssertTrue(ops.contains("Slice") || ops.contains("Split"), "the channel split is a tap")
        XCTAssertFalse(ops.contains("Div"), "shape arithmetic is folded, not a tap")
        XCTAssertEqual(network.taps.filter { $0.opType == "Concat" }.count, 16)
        XCTAssertEqual(network.taps.last?.shape, [1000])
        XCTAssertEqual(network.taps.first { $0.opType == "ReduceMean" }?.shape, [1024])
    }
}
