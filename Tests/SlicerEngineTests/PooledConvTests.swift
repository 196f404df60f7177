import Foundation
import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

/// The inference plan's convolutions that store only their 2×2 max pool
/// (PooledConvolution.swift): bit for bit the unfused steps' values, near a
/// double-precision reference, and only where the rule says.
final class PooledConvTests: XCTestCase {
    private enum Activation { case none, relu, clip }

    private struct Case {
        let c: Int, m: Int, h: Int, w: Int, pad: Int, bias: Bool, activation: Activation
    }

    /// Conv 3×3 (→ Relu/Clip) → MaxPool 2×2 stride 2, flattened.
    private func network(_ t: Case, weights: [Float], bias: [Float]?, batchNorm: Bool = false) throws -> Network {
        var inits = [ONNXTensor(name: "w", dims: [t.m, t.c, 3, 3], floats: weights)]
        var inputs = ["x", "w"]
        if let bias { inits.append(ONNXTensor(name: "b", dims: [t.m], floats: bias)); inputs.append("b") }
        var nodes = [node("Conv", "conv", inputs, ["kernel_shape": .ints([3, 3]), "pads": .ints([t.pad, t.pad, t.pad, t.pad])])]
        var last = "conv"
        if batchNorm {
            nodes.append(node("BatchNormalization", "bn", [last, "g", "be", "mu", "var"]))
            inits += [randomTensor("g", [t.m], seed: 71, in: 0.5...2), randomTensor("be", [t.m], seed: 72),
                      randomTensor("mu", [t.m], seed: 73), randomTensor("var", [t.m], seed: 74, in: 0.25...4)]
            last = "bn"
        }
        switch t.activation {
        case .none: break
        case .relu: nodes.append(node("Relu", "act", [last])); last = "act"
        case .clip:
            nodes.append(node("Clip", "act", [last, "lo", "hi"])); last = "act"
            inits += [ONNXTensor(name: "lo", dims: [], floats: [-0.25]), ONNXTensor(name: "hi", dims: [], floats: [0.75])]
        }
        nodes.append(node("MaxPool", "pool", [last], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]))
        return try Network(model: flattened(nodes, inits, input: [t.c, t.h, t.w], tapped: "pool"))
    }

    /// conv → bias → activation → 2×2 max in double, from the ONNX definitions.
    private func reference(_ x: [Float], n: Int, _ t: Case, weights: [Float], bias: [Float]?) -> [Double] {
        let oh = t.h + 2 * t.pad - 2, ow = t.w + 2 * t.pad - 2, ph = oh / 2, pw = ow / 2
        func conv(_ b: Int, _ f: Int, _ i: Int, _ j: Int) -> Double {
            var sum = Double(bias?[f] ?? 0)
            for ci in 0..<t.c {
                for ki in 0..<3 {
                    for kj in 0..<3 {
                        let ih = i - t.pad + ki, iw = j - t.pad + kj
                        guard ih >= 0, ih < t.h, iw >= 0, iw < t.w else { continue }
                        sum += Double(weights[((f * t.c + ci) * 3 + ki) * 3 + kj]) * Double(x[((b * t.c + ci) * t.h + ih) * t.w + iw])
                    }
                }
            }
            switch t.activation {
            case .none: return sum
            case .relu: return max(0, sum)
            case .clip: return min(0.75, max(-0.25, sum))
            }
        }
        var y: [Double] = []
        for b in 0..<n {
            for f in 0..<t.m {
                for i in 0..<ph {
                    for j in 0..<pw {
                        y.append(max(conv(b, f, 2 * i, 2 * j), conv(b, f, 2 * i, 2 * j + 1),
                                     conv(b, f, 2 * i + 1, 2 * j), conv(b, f, 2 * i + 1, 2 * j + 1)))
                    }
                }
            }
        }
        return y
    }

    private func run(_ executor: Executor, _ net: Network, _ x: [Float], count: Int, capacity: Int) -> [Float] {
        executor.outputs(x, count: count, capacity: capacity, perImage: net.inputShape.reduce(1, *))
    }

    private func usesPooledConv(_ net: Network) throws -> Bool {
        try net.fusedPlan(capacity: 2).steps.contains { $0.kernel is PooledConvKernel }
    }

    /// MNIST's first layer, planes with odd conv outputs (the pool drops the
    /// last row and column), unpadded, narrower than a vector and wider than
    /// one (two groups of 16 pooled columns, the second short), 1–4 input
    /// channels, filter counts off multiples of 8 and 16, with and without
    /// bias, each activation; batches of 1 and 3 run at capacity 2.
    ///
    /// Bit for bit the observed plan (Conv, activation and MaxPool as their
    /// own steps); within 1e-5 of the double reference (values of order 1).
    func testMatchesUnfusedStepsAndReference() throws {
        let cases = [
            Case(c: 1, m: 32, h: 28, w: 28, pad: 1, bias: true, activation: .relu),   // MNIST
            Case(c: 1, m: 5, h: 9, w: 11, pad: 1, bias: false, activation: .none),
            Case(c: 3, m: 17, h: 13, w: 13, pad: 0, bias: true, activation: .relu),
            Case(c: 2, m: 8, h: 7, w: 70, pad: 1, bias: true, activation: .clip),
            Case(c: 4, m: 3, h: 4, w: 35, pad: 1, bias: false, activation: .relu),
            Case(c: 1, m: 1, h: 3, w: 3, pad: 1, bias: true, activation: .none),
        ]
        for (index, t) in cases.enumerated() {
            let seed = UInt64(500 + 10 * index)
            let weights = randomFloats(t.m * t.c * 9, seed: seed, in: -0.5...0.5)
            let bias = t.bias ? randomFloats(t.m, seed: seed + 1) : nil
            let net = try network(t, weights: weights, bias: bias)
            let label = "C \(t.c) M \(t.m) \(t.h)×\(t.w) pad \(t.pad) \(t.activation)"
            XCTAssertTrue(try usesPooledConv(net), label)
            let fused = try net.makeExecutor(capacity: 2, fusesUnobservedRuns: true)
            let observed = try net.makeExecutor(capacity: 2)
            for count in [1, 3] {
                let x = randomFloats(count * t.c * t.h * t.w, seed: seed + 2, in: -2...2)
                let got = run(fused, net, x, count: count, capacity: 2)
                XCTAssertTrue(fused.lastRunWasFused, label)
                let want = run(observed, net, x, count: count, capacity: 2)
                XCTAssertTrue(got == want, "\(label), \(count) images: bit for bit the unfused steps")
                let ref = reference(x, n: count, t, weights: weights, bias: bias)
                XCTAssertEqual(got.count, ref.count, label)
                let worst = zip(got, ref).map { abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(label), \(count) images")
            }
        }
    }

    /// A 14×14 plane of MNIST's second layer's size but 12 channels (filters
    /// along the lanes, ChannelVectorConvolution.swift: from 16 channels
    /// Winograd takes it, WinogradTests) with its pool merged, and odd planes
    /// whose pool drops a row and a column (deeper than PooledConvKernel takes): bit for
    /// bit the unfused steps, within 1e-4 of the double reference (sums of up to 108 terms).
    func testChannelVectorPlanesMatchUnfusedStepsAndReference() throws {
        let cases = [
            Case(c: 12, m: 64, h: 14, w: 14, pad: 1, bias: true, activation: .relu),
            Case(c: 5, m: 64, h: 13, w: 11, pad: 1, bias: false, activation: .clip),
            Case(c: 7, m: 64, h: 9, w: 9, pad: 0, bias: true, activation: .none),
        ]
        for (index, t) in cases.enumerated() {
            let seed = UInt64(800 + 10 * index)
            let weights = randomFloats(t.m * t.c * 9, seed: seed, in: -0.5...0.5)
            let bias = t.bias ? randomFloats(t.m, seed: seed + 1) : nil
            let net = try network(t, weights: weights, bias: bias)
            let label = "C \(t.c) M \(t.m) \(t.h)×\(t.w) pad \(t.pad) \(t.activation)"
            let steps = try net.fusedPlan(capacity: 2).steps
            XCTAssertTrue(steps.contains { ($0.kernel as? ChannelVectorConvKernel)?.pools == true }, label)
            XCTAssertFalse(steps.contains { $0.kernel is PoolKernel }, label)
            let fused = try net.makeExecutor(capacity: 2, fusesUnobservedRuns: true)
            let observed = try net.makeExecutor(capacity: 2)
            for count in [1, 3] {
                let x = randomFloats(count * t.c * t.h * t.w, seed: seed + 2, in: -2...2)
                let got = run(fused, net, x, count: count, capacity: 2)
                XCTAssertTrue(fused.lastRunWasFused, label)
                let want = run(observed, net, x, count: count, capacity: 2)
                XCTAssertTrue(got == want, "\(label), \(count) images: bit for bit the unfused steps")
                let ref = reference(x, n: count, t, weights: weights, bias: bias)
                XCTAssertEqual(got.count, ref.count, label)
                let worst = zip(got, ref).map { abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-4, "\(label), \(count) images")
            }
        }
    }

    /// With a BatchNormalization folded in: the inference plan with the pool
    /// fused, bit for bit the same plan with the pool as its own step.
    func testFusedPoolMatchesInferencePlanWithPoolStep() throws {
        let t = Case(c: 1, m: 32, h: 28, w: 28, pad: 1, bias: false, activation: .relu)
        let net = try network(t, weights: randomFloats(t.m * 9, seed: 61, in: -0.5...0.5), bias: nil, batchNorm: true)
        let withPool = try net.fusedPlan(capacity: 3), keeping = try net.inferencePlan(capacity: 3, fusesPools: false)
        XCTAssertTrue(withPool.steps.contains { $0.kernel is PooledConvKernel })
        XCTAssertFalse(keeping.steps.contains { $0.kernel is PooledConvKernel })
        XCTAssertTrue(keeping.steps.contains { $0.kernel is PoolKernel })
        let x = randomFloats(5 * 28 * 28, seed: 62, in: -2...2)
        let a = run(Executor(network: net, plan: withPool), net, x, count: 5, capacity: 3)
        let b = run(Executor(network: net, plan: keeping), net, x, count: 5, capacity: 3)
        XCTAssertTrue(a == b, "pool fused or not, the same values")
        let deep = Case(c: 12, m: 64, h: 14, w: 14, pad: 1, bias: true, activation: .relu)
        let net2 = try network(deep, weights: randomFloats(64 * 12 * 9, seed: 63, in: -0.5...0.5),
                               bias: randomFloats(64, seed: 64), batchNorm: true)
        let x2 = randomFloats(3 * 12 * 14 * 14, seed: 65, in: -2...2)
        let pooled = try net2.fusedPlan(capacity: 2)
        XCTAssertTrue(pooled.steps.contains { ($0.kernel as? ChannelVectorConvKernel)?.pools == true })
        XCTAssertTrue(run(Executor(network: net2, plan: pooled), net2, x2, count: 3, capacity: 2)
                      == run(Executor(network: net2, plan: try net2.inferencePlan(capacity: 2, fusesPools: false)), net2, x2, count: 3, capacity: 2),
                      "filters along the lanes: pool fused or not, the same values")
    }

    /// Not for deeper inputs, strides, other kernels or pools, or a
    /// convolution whose output something else reads too; never in the observed plan.
    func testOnlyShallowConvolutionsBeforeA2x2MaxPool() throws {
        struct Layer {
            let label: String, c: Int, k: Int, stride: Int, pool: Int, poolStride: Int, average: Bool, expected: Bool
        }
        let layers = [
            Layer(label: "MNIST", c: 1, k: 3, stride: 1, pool: 2, poolStride: 2, average: false, expected: true),
            Layer(label: "5 channels", c: 5, k: 3, stride: 1, pool: 2, poolStride: 2, average: false, expected: false),
            Layer(label: "5×5 kernel", c: 1, k: 5, stride: 1, pool: 2, poolStride: 2, average: false, expected: false),
            Layer(label: "conv stride 2", c: 1, k: 3, stride: 2, pool: 2, poolStride: 2, average: false, expected: false),
            Layer(label: "3×3 pool", c: 1, k: 3, stride: 1, pool: 3, poolStride: 2, average: false, expected: false),
            Layer(label: "pool stride 1", c: 1, k: 3, stride: 1, pool: 2, poolStride: 1, average: false, expected: false),
            Layer(label: "average pool", c: 1, k: 3, stride: 1, pool: 2, poolStride: 2, average: true, expected: false),
        ]
        for layer in layers {
            let pad = layer.k / 2
            let nodes = [
                node("Conv", "conv", ["x", "w"], ["kernel_shape": .ints([layer.k, layer.k]), "strides": .ints([layer.stride, layer.stride]),
                                                 "pads": .ints([pad, pad, pad, pad])]),
                node("Relu", "act", ["conv"]),
                node(layer.average ? "AveragePool" : "MaxPool", "pool", ["act"],
                     ["kernel_shape": .ints([layer.pool, layer.pool]), "strides": .ints([layer.poolStride, layer.poolStride])]),
            ]
            let inits = [randomTensor("w", [8, layer.c, layer.k, layer.k], seed: 5)]
            let net = try Network(model: flattened(nodes, inits, input: [layer.c, 12, 12], tapped: "pool"))
            XCTAssertEqual(try usesPooledConv(net), layer.expected, layer.label)
            XCTAssertFalse(try net.plan(capacity: 2).steps.contains { $0.kernel is PooledConvKernel }, "\(layer.label): observed plan")
        }
        // The activation also read by an Add: the pool is not its only reader.
        let nodes = [
            node("Conv", "conv", ["x", "w"], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]),
            node("Relu", "act", ["conv"]),
            node("MaxPool", "pool", ["act"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            node("MaxPool", "pool2", ["act"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            node("Add", "sum", ["pool", "pool2"]),
        ]
        let net = try Network(model: flattened(nodes, [randomTensor("w", [8, 1, 3, 3], seed: 6)], input: [1, 12, 12], tapped: "sum"))
        XCTAssertFalse(try usesPooledConv(net), "two readers")
    }
}
