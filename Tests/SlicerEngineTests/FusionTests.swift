import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerONNX

/// The inference plan (Fusion.swift): BatchNormalization folded into the
/// convolution before it, Relu/Clip and residual Add fused into its stores.
/// Checked against references computed here in double from the ONNX operator
/// definitions, against the observed plan, and against PyTorch's fixtures;
/// and that runs with an observer or a mask still take the observed plan.
final class FusionTests: XCTestCase {
    // MARK: - References in double

    /// NCHW convolution, no padding beyond `pad` on every side, `group` groups.
    private func refConv(_ x: [Double], n: Int, c: Int, h: Int, w: Int, weights: [Float], bias: [Float]?,
                         m: Int, k: Int, stride: Int, pad: Int, group: Int) -> (values: [Double], oh: Int, ow: Int) {
        let oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1
        let cg = c / group, mg = m / group
        var y = [Double](repeating: 0, count: n * m * oh * ow)
        for b in 0..<n {
            for f in 0..<m {
                let g = f / mg
                for i in 0..<oh {
                    for j in 0..<ow {
                        var sum = Double(bias?[f] ?? 0)
                        for ci in 0..<cg {
                            for ki in 0..<k {
                                for kj in 0..<k {
                                    let ih = i * stride - pad + ki, iw = j * stride - pad + kj
                                    guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                                    let xv = x[((b * c + g * cg + ci) * h + ih) * w + iw]
                                    sum += Double(weights[((f * cg + ci) * k + ki) * k + kj]) * xv
                                }
                            }
                        }
                        y[((b * m + f) * oh + i) * ow + j] = sum
                    }
                }
            }
        }
        return (y, oh, ow)
    }

    /// γ(x − μ)/√(σ² + ε) + β per channel, straight from the ONNX definition.
    private func refBatchNorm(_ y: inout [Double], channels: Int, plane: Int, _ p: BN) {
        for i in y.indices {
            let ch = (i / plane) % channels
            y[i] = Double(p.gamma[ch]) * (y[i] - Double(p.mean[ch])) / (Double(p.variance[ch]) + Double(p.epsilon)).squareRoot()
                + Double(p.beta[ch])
        }
    }

    private struct BN {
        let gamma: [Float], beta: [Float], mean: [Float], variance: [Float], epsilon: Float
        init(channels: Int, seed: UInt64) {
            gamma = randomFloats(channels, seed: seed, in: 0.5...2)
            beta = randomFloats(channels, seed: seed + 1, in: -1...1)
            mean = randomFloats(channels, seed: seed + 2, in: -0.5...0.5)
            variance = randomFloats(channels, seed: seed + 3, in: 0.25...4)
            epsilon = 1e-3
        }
        func node(_ name: String, input: String) -> ONNXNode {
            SlicerEngineTests.node("BatchNormalization", name, [input, name + "_g", name + "_b", name + "_m", name + "_v"],
                                   ["epsilon": .float(epsilon)])
        }
        func tensors(_ name: String) -> [ONNXTensor] {
            let c = gamma.count
            return [ONNXTensor(name: name + "_g", dims: [c], floats: gamma), ONNXTensor(name: name + "_b", dims: [c], floats: beta),
                    ONNXTensor(name: name + "_m", dims: [c], floats: mean), ONNXTensor(name: name + "_v", dims: [c], floats: variance)]
        }
    }

    /// max |a − b| / max(1, max |b|).
    private func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        XCTAssertEqual(a.count, b.count)
        var worst = 0.0, scale = 1.0
        for (x, y) in zip(a, b) { worst = max(worst, abs(Double(x) - y)); scale = max(scale, abs(y)) }
        return worst / scale
    }

    /// Runs `count` images through a fusing executor without observer (the
    /// inference plan) and returns its logits, after checking that observed
    /// and masked runs on the same executor take the observed plan: their
    /// logits are bit for bit those of an executor made without fusion.
    private func runFused(_ net: Network, _ x: [Float], count: Int, capacity: Int,
                          file: StaticString = #filePath, line: UInt = #line) throws -> (logits: [Float], steps: Int, fusedSteps: Int) {
        let fused = try net.makeExecutor(capacity: capacity, fusesUnobservedRuns: true)
        let plain = try net.makeExecutor(capacity: capacity)
        let perImage = net.inputShape.reduce(1, *)
        func batches(_ executor: Executor, mask: AblationMask = AblationMask(), observe: Bool) -> [Float] {
            var out: [Float] = []
            var start = 0
            x.withUnsafeBufferPointer { buffer in
                while start < count {
                    let n = min(capacity, count - start)
                    let slice = UnsafeBufferPointer(rebasing: buffer[(start * perImage)..<((start + n) * perImage)])
                    out += Array(observe ? executor.run(input: slice, count: n, mask: mask) { _ in }
                                         : executor.run(input: slice, count: n, mask: mask))
                    start += n
                }
            }
            return out
        }
        let observed = batches(fused, observe: true)
        XCTAssertFalse(fused.lastRunWasFused, "a run with an observer takes the observed plan", file: file, line: line)
        XCTAssertTrue(observed == batches(plain, observe: true), "observed run bit for bit as without fusion", file: file, line: line)
        let mask = AblationMask([1: [0]])
        let masked = batches(fused, mask: mask, observe: false)
        XCTAssertFalse(fused.lastRunWasFused, "a masked run takes the observed plan", file: file, line: line)
        XCTAssertTrue(masked == batches(plain, mask: mask, observe: false), "masked run bit for bit as without fusion", file: file, line: line)
        XCTAssertTrue(batches(plain, observe: false) == observed, "an executor without fusion never fuses", file: file, line: line)
        XCTAssertFalse(plain.lastRunWasFused, file: file, line: line)
        let logits = batches(fused, observe: false)
        XCTAssertTrue(fused.lastRunWasFused, "an unobserved, unmasked run takes the inference plan", file: file, line: line)
        return (logits, plain.plan.steps.count, try XCTUnwrap(fused.fusedPlan).steps.count)
    }

    // MARK: - Closed-form checks of each kernel path

    /// Conv → BatchNormalization → activation, against the reference in double,
    /// for the convolution's paths: padded-input (stride 1), im2col with a
    /// staging copy (stride 2, no bias), output written directly (1×1 over 16
    /// channels), depthwise (ReLU6), and several images per product (4×4 planes
    /// of 128 filters).
    func testConvBatchNormActivationFoldMatchesReference() throws {
        struct Case {
            let label: String, c: Int, h: Int, m: Int, k: Int, stride: Int, pad: Int, group: Int, hasBias: Bool
            let activation: String?   // "Relu", "Clip" (0…6) or nil
        }
        let cases = [
            Case(label: "padded stride 1", c: 3, h: 10, m: 8, k: 3, stride: 1, pad: 1, group: 1, hasBias: true, activation: "Relu"),
            Case(label: "im2col stride 2", c: 4, h: 9, m: 12, k: 3, stride: 2, pad: 1, group: 1, hasBias: false, activation: nil),
            Case(label: "direct 1x1", c: 16, h: 8, m: 16, k: 1, stride: 1, pad: 0, group: 1, hasBias: true, activation: "Clip"),
            Case(label: "depthwise", c: 8, h: 7, m: 8, k: 3, stride: 1, pad: 1, group: 8, hasBias: true, activation: "Clip"),
            Case(label: "side by side", c: 40, h: 4, m: 128, k: 3, stride: 1, pad: 1, group: 1, hasBias: true, activation: "Relu"),
        ]
        for (index, t) in cases.enumerated() {
            let seed = UInt64(100 + 10 * index)
            let weights = randomFloats(t.m * t.c / t.group * t.k * t.k, seed: seed, in: -0.5...0.5)
            let bias = t.hasBias ? randomFloats(t.m, seed: seed + 1) : nil
            let bn = BN(channels: t.m, seed: seed + 2)
            var inits = [ONNXTensor(name: "w", dims: [t.m, t.c / t.group, t.k, t.k], floats: weights)] + bn.tensors("bn")
            var convInputs = ["x", "w"]
            if let bias { inits.append(ONNXTensor(name: "b", dims: [t.m], floats: bias)); convInputs.append("b") }
            var nodes = [
                node("Conv", "conv", convInputs, ["kernel_shape": .ints([t.k, t.k]), "strides": .ints([t.stride, t.stride]),
                                                 "pads": .ints([t.pad, t.pad, t.pad, t.pad]), "group": .int(t.group)]),
                bn.node("bn", input: "conv"),
            ]
            var last = "bn"
            if t.activation == "Relu" { nodes.append(node("Relu", "act", ["bn"])); last = "act" }
            if t.activation == "Clip" {
                inits += [ONNXTensor(name: "lo", dims: [], floats: [0]), ONNXTensor(name: "hi", dims: [], floats: [6])]
                nodes.append(node("Clip", "act", ["bn", "lo", "hi"]))
                last = "act"
            }
            let net = try Network(model: flattened(nodes, inits, input: [t.c, t.h, t.h], tapped: last))
            let count = 3
            let x = randomFloats(count * t.c * t.h * t.h, seed: seed + 3, in: -2...2)
            let run = try runFused(net, x, count: count, capacity: 2)
            XCTAssertEqual(run.fusedSteps, 1, "\(t.label): Conv, BatchNormalization and activation in one step")
            XCTAssertEqual(run.steps, t.activation == nil ? 2 : 3, t.label)
            var want = refConv(x.map(Double.init), n: count, c: t.c, h: t.h, w: t.h, weights: weights, bias: bias,
                               m: t.m, k: t.k, stride: t.stride, pad: t.pad, group: t.group)
            refBatchNorm(&want.values, channels: t.m, plane: want.oh * want.ow, bn)
            if t.activation == "Relu" { want.values = want.values.map { max(0, $0) } }
            if t.activation == "Clip" { want.values = want.values.map { min(6, max(0, $0)) } }
            let error = relativeError(run.logits, want.values)
            XCTAssertLessThanOrEqual(error, 1e-5, "\(t.label): fused logits against the reference")
            // The test would notice a fold that dropped the normalisation.
            XCTAssertGreaterThan(relativeError(run.logits, refConv(x.map(Double.init), n: count, c: t.c, h: t.h, w: t.h,
                weights: weights, bias: bias, m: t.m, k: t.k, stride: t.stride, pad: t.pad, group: t.group).values), 1e-3, t.label)
        }
    }

    /// A residual block: relu(bn2(conv2(relu(bn1(conv1(x))))) + x), the shortcut
    /// read by the fused convolution's stores; and without BatchNormalization,
    /// relu(conv(x) + x), which fuses to the same operations in the same order
    /// and so must be bit for bit the observed plan's result.
    func testResidualAddReluFusion() throws {
        for (label, c, h) in [("padded", 8, 6), ("wide rows", 4, 20), ("side by side", 128, 3)] {
            let w1 = randomFloats(c * c * 9, seed: 1, in: -0.2...0.2), w2 = randomFloats(c * c * 9, seed: 2, in: -0.2...0.2)
            let b1 = randomFloats(c, seed: 3), bn1 = BN(channels: c, seed: 4), bn2 = BN(channels: c, seed: 8)
            let attributes: [String: ONNXAttribute] = ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]
            let nodes = [
                node("Conv", "conv1", ["x", "w1", "b1"], attributes), bn1.node("bn1", input: "conv1"), node("Relu", "r1", ["bn1"]),
                node("Conv", "conv2", ["r1", "w2"], attributes), bn2.node("bn2", input: "conv2"),
                node("Add", "add", ["x", "bn2"]), node("Relu", "r2", ["add"]),
            ]
            let inits = [ONNXTensor(name: "w1", dims: [c, c, 3, 3], floats: w1), ONNXTensor(name: "w2", dims: [c, c, 3, 3], floats: w2),
                         ONNXTensor(name: "b1", dims: [c], floats: b1)] + bn1.tensors("bn1") + bn2.tensors("bn2")
            let net = try Network(model: flattened(nodes, inits, input: [c, h, h], tapped: "r2"))
            let count = 5
            let x = randomFloats(count * c * h * h, seed: 9, in: -1...1)
            let run = try runFused(net, x, count: count, capacity: 4)
            XCTAssertEqual(run.steps, 7, label)
            XCTAssertEqual(run.fusedSteps, 2, "\(label): two convolutions, the rest fused")
            let xd = x.map(Double.init)
            var a = refConv(xd, n: count, c: c, h: h, w: h, weights: w1, bias: b1, m: c, k: 3, stride: 1, pad: 1, group: 1)
            refBatchNorm(&a.values, channels: c, plane: h * h, bn1)
            a.values = a.values.map { max(0, $0) }
            var b = refConv(a.values, n: count, c: c, h: h, w: h, weights: w2, bias: nil, m: c, k: 3, stride: 1, pad: 1, group: 1)
            refBatchNorm(&b.values, channels: c, plane: h * h, bn2)
            let want = zip(b.values, xd).map { max(0, $0 + $1) }
            XCTAssertLessThanOrEqual(relativeError(run.logits, want), 1e-5, label)

            // Without BatchNormalization: Conv → Add → Relu, bit for bit.
            let plainNodes = [node("Conv", "conv", ["x", "w1", "b1"], attributes), node("Add", "add", ["conv", "x"]),
                              node("Relu", "r", ["add"])]
            let plainNet = try Network(model: flattened(plainNodes, Array(inits.prefix(3)), input: [c, h, h], tapped: "r"))
            let plainRun = try runFused(plainNet, x, count: count, capacity: 4)
            XCTAssertEqual(plainRun.fusedSteps, 1, label)
            let observed = try plainNet.makeExecutor(capacity: count)
            let expected = x.withUnsafeBufferPointer { Array(observed.run(input: $0, count: count)) }
            if try plainNet.fusedPlan(capacity: 4).steps.contains(where: { $0.kernel is WinogradConvKernel }) {
                // 128 channels: the inference plan takes F(2×2, 3×3) (WinogradTests), other rounding.
                XCTAssertGreaterThanOrEqual(c, WinogradConvKernel.minimumChannels, label)
                let conv = refConv(xd, n: count, c: c, h: h, w: h, weights: w1, bias: b1, m: c, k: 3, stride: 1, pad: 1, group: 1)
                XCTAssertLessThanOrEqual(relativeError(plainRun.logits, zip(conv.values, xd).map { max(0, $0 + $1) }), 1e-5, label)
            } else {
                XCTAssertTrue(plainRun.logits == expected, "\(label): Conv+Add+Relu fused is the same arithmetic")
            }
        }
    }

    /// A convolution whose output another node also reads, or that is the
    /// graph's output, keeps its BatchNormalization and activation as steps.
    func testNoFusionWhenTheOutputHasOtherReaders() throws {
        let c = 4, h = 5
        let bn = BN(channels: c, seed: 20)
        let attributes: [String: ONNXAttribute] = ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]
        let nodes = [
            node("Conv", "conv", ["x", "w"], attributes), bn.node("bn", input: "conv"),
            node("Add", "add", ["conv", "bn"]), node("Relu", "r", ["add"]),
        ]
        let inits = [randomTensor("w", [c, c, 3, 3], seed: 21)] + bn.tensors("bn")
        let net = try Network(model: flattened(nodes, inits, input: [c, h, h], tapped: "r"))
        let x = randomFloats(2 * c * h * h, seed: 22)
        let run = try runFused(net, x, count: 2, capacity: 2)
        // conv (read twice: not fused), bn, add+relu? The Add's inputs are the conv and the BN,
        // neither a lone reader's convolution: only the Relu could merge, and it follows an Add.
        XCTAssertEqual(run.steps, 4)
        XCTAssertEqual(run.fusedSteps, 4)
        let observed = try net.makeExecutor(capacity: 2)
        let expected = x.withUnsafeBufferPointer { Array(observed.run(input: $0, count: 2)) }
        XCTAssertTrue(run.logits == expected, "nothing fused: the same plan")
    }

    // MARK: - Real models

    /// PyTorch's fixtures (a BatchNormalization CNN, a residual CNN): the
    /// inference plan's logits within 1e-4 of PyTorch's, and of the observed plan's.
    func testFixtureModelsFusedMatchPyTorch() throws {
        let dir = FixtureModelTests.fixtureDirectory
        for name in ["bn_cnn", "residual_cnn", "plain_cnn"] {
            let path = dir.appendingPathComponent(name + ".onnx").path
            let net = try Network(contentsOf: path)
            let input = try NPYArray.readFloat32(path: dir.appendingPathComponent(name + "_input.npy").path)
            let expected = try NPYArray.readFloat32(path: dir.appendingPathComponent(name + "_output.npy").path)
            let count = input.count / net.inputShape.reduce(1, *)
            let run = try runFused(net, input, count: count, capacity: 3)
            XCTAssertLessThan(run.fusedSteps, run.steps, "\(name): something fused")
            XCTAssertLessThanOrEqual(relativeError(run.logits, expected.map(Double.init)), 1e-4, "\(name) against PyTorch")
        }
    }

    /// The shipped models: inference plan against the observed plan, 1e-4 relative.
    func testShippedModelsFusedMatchObserved() throws {
        let root = TorchvisionTests.repositoryRoot.appendingPathComponent("assets/models")
        for file in ["mnist_cnn.onnx", "fashion_mnist_cnn.onnx", "cifar10_vgg.onnx"] {
            let net = try Network(contentsOf: root.appendingPathComponent(file).path)
            let count = 5
            let x = randomFloats(count * net.inputShape.reduce(1, *), seed: 31, in: -2...2)
            let run = try runFused(net, x, count: count, capacity: 4)
            let observed = try net.makeExecutor(capacity: count)
            let expected = x.withUnsafeBufferPointer { Array(observed.run(input: $0, count: count)) }
            XCTAssertLessThan(run.fusedSteps, run.steps, "\(file): something fused")
            XCTAssertLessThanOrEqual(relativeError(run.logits, expected.map(Double.init)), 1e-4, file)
        }
    }
}
