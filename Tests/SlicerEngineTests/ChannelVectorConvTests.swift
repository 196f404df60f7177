import Foundation
import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

/// The inference plan's small-plane convolutions with the filters along the
/// vector lanes (ChannelVectorConvolution.swift): bit for bit the observed
/// plan's ConvKernel values, near a double-precision reference, and only on
/// the layers the rule names.
final class ChannelVectorConvTests: XCTestCase {
    private enum Epilogue { case none, relu, residualRelu }

    private struct Case {
        let c: Int, m: Int, h: Int, w: Int, k: Int, pad: Int, dilation: Int, bias: Bool, epilogue: Epilogue
    }

    private func outSize(_ t: Case) -> (Int, Int) {
        let span = (t.k - 1) * t.dilation + 1
        return (t.h + 2 * t.pad - span + 1, t.w + 2 * t.pad - span + 1)
    }

    /// y = Σ w·x + bias from the ONNX definition, in double, with Σ|terms| per output.
    private func reference(_ x: [Float], n: Int, _ t: Case, weights: [Float], bias: [Float]?) -> (values: [Double], magnitude: [Double]) {
        let (oh, ow) = outSize(t)
        var y = [Double](repeating: 0, count: n * t.m * oh * ow), size = y
        for b in 0..<n {
            for f in 0..<t.m {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var sum = Double(bias?[f] ?? 0), abs = Swift.abs(sum)
                        for ci in 0..<t.c {
                            for ki in 0..<t.k {
                                for kj in 0..<t.k {
                                    let ih = i - t.pad + ki * t.dilation, iw = j - t.pad + kj * t.dilation
                                    guard ih >= 0, ih < t.h, iw >= 0, iw < t.w else { continue }
                                    let term = Double(weights[((f * t.c + ci) * t.k + ki) * t.k + kj])
                                        * Double(x[((b * t.c + ci) * t.h + ih) * t.w + iw])
                                    sum += term
                                    abs += Swift.abs(term)
                                }
                            }
                        }
                        y[((b * t.m + f) * oh + i) * ow + j] = sum
                        size[((b * t.m + f) * oh + i) * ow + j] = abs
                    }
                }
            }
        }
        return (y, size)
    }

    /// Conv (→ Add of the input) (→ Relu), flattened; the Relu's output is the tap.
    private func network(_ t: Case, weights: [Float], bias: [Float]?) throws -> Network {
        var inits = [ONNXTensor(name: "w", dims: [t.m, t.c, t.k, t.k], floats: weights)]
        var inputs = ["x", "w"]
        if let bias { inits.append(ONNXTensor(name: "b", dims: [t.m], floats: bias)); inputs.append("b") }
        var nodes = [node("Conv", "conv", inputs, ["kernel_shape": .ints([t.k, t.k]), "pads": .ints([t.pad, t.pad, t.pad, t.pad]),
                                                     "dilations": .ints([t.dilation, t.dilation])])]
        var last = "conv"
        switch t.epilogue {
        case .none: break
        case .relu:
            nodes.append(node("Relu", "act", [last])); last = "act"
        case .residualRelu:
            nodes.append(node("Add", "add", ["x", last])); nodes.append(node("Relu", "act", ["add"])); last = "act"
        }
        return try Network(model: flattened(nodes, inits, input: [t.c, t.h, t.w], tapped: last))
    }

    private func run(_ net: Network, _ x: [Float], count: Int, capacity: Int, fused: Bool) throws -> [Float] {
        let executor = try net.makeExecutor(capacity: capacity, fusesUnobservedRuns: fused)
        return executor.outputs(x, count: count, capacity: capacity, perImage: net.inputShape.reduce(1, *)) {
            XCTAssertEqual($0.lastRunWasFused, fused)
        }
    }

    private func usesChannelVectors(_ net: Network) throws -> Bool {
        try net.fusedPlan(capacity: 2).steps.contains { $0.kernel is ChannelVectorConvKernel }
    }

    /// Planes from 1×1 to 15×15 (pixel counts off multiples of 6 and 16:
    /// short last tiles and a short last transposition group), 1, 3, 32 and
    /// 33 input channels, 64 and 128 filters (one and two blocks), 3×3, 5×5,
    /// 2×2 and dilated kernels, pads 0–2, with and without bias, each
    /// epilogue, batches of 1 and 3 run at capacity 2.
    ///
    /// Bit for bit the observed plan (the same chain of fused multiply-adds
    /// as the packed product); and |y − y_ref| ≤ 1e-5 · Σ|terms| against
    /// double, which a wrong tap, pixel or filter would miss by the size of a term.
    func testMatchesConvKernelAndReference() throws {
        let cases = [
            Case(c: 32, m: 64, h: 14, w: 14, k: 3, pad: 1, dilation: 1, bias: true, epilogue: .relu),   // MNIST's layer
            Case(c: 1, m: 64, h: 5, w: 7, k: 3, pad: 1, dilation: 1, bias: false, epilogue: .none),
            Case(c: 3, m: 128, h: 9, w: 9, k: 3, pad: 1, dilation: 1, bias: true, epilogue: .none),
            Case(c: 33, m: 64, h: 1, w: 1, k: 3, pad: 1, dilation: 1, bias: true, epilogue: .relu),
            Case(c: 64, m: 64, h: 8, w: 6, k: 3, pad: 1, dilation: 1, bias: true, epilogue: .residualRelu),   // (8×8 runs as whole-image Winograd)
            Case(c: 64, m: 64, h: 7, w: 5, k: 3, pad: 1, dilation: 1, bias: false, epilogue: .residualRelu),
            Case(c: 17, m: 64, h: 15, w: 15, k: 5, pad: 2, dilation: 1, bias: true, epilogue: .relu),
            Case(c: 5, m: 64, h: 11, w: 10, k: 2, pad: 0, dilation: 1, bias: true, epilogue: .none),
            Case(c: 6, m: 64, h: 12, w: 13, k: 3, pad: 2, dilation: 2, bias: false, epilogue: .relu),
            Case(c: 32, m: 64, h: 6, w: 6, k: 3, pad: 0, dilation: 1, bias: true, epilogue: .none),
        ]
        for (index, t) in cases.enumerated() {
            let seed = UInt64(900 + 10 * index)
            let weights = randomFloats(t.m * t.c * t.k * t.k, seed: seed, in: -0.5...0.5)
            let bias = t.bias ? randomFloats(t.m, seed: seed + 1) : nil
            let net = try network(t, weights: weights, bias: bias)
            let label = "C \(t.c) M \(t.m) \(t.h)×\(t.w) k \(t.k) pad \(t.pad) dilation \(t.dilation) \(t.epilogue)"
            // Winograd takes dense 3×3s over 64 channels on planes above 8×8, and from 16
            // channels on CIFAR's whole-image planes; the rest here is ours.
            let (oh, ow) = outSize(t)
            let winograd = t.k == 3 && t.dilation == 1
                && (t.c >= WinogradConvKernel.minimumChannels
                        && (oh * ow > WinogradConvKernel.smallPlane || t.c >= 2 * WinogradConvKernel.minimumChannels)
                    || t.c >= WinogradConvKernel.minimumChannelsWholeImages && WinogradConvKernel.runsWholeImages(outH: oh, outW: ow))
            XCTAssertEqual(try usesChannelVectors(net), !winograd, label)
            for count in [1, 3] {
                let x = randomFloats(count * t.c * t.h * t.w, seed: seed + 2, in: -2...2)
                let got = try run(net, x, count: count, capacity: 2, fused: true)
                let observed = try run(net, x, count: count, capacity: 2, fused: false)
                XCTAssertTrue(got == observed, "\(label), \(count) images: bit for bit the observed plan")
                let ref = reference(x, n: count, t, weights: weights, bias: bias)
                var want = ref.values
                switch t.epilogue {
                case .none: break
                case .relu: want = want.map { max(0, $0) }
                case .residualRelu: want = zip(want, x).map { max(0, $0 + Double($1)) }
                }
                XCTAssertEqual(got.count, want.count, label)
                var worst = 0.0
                for i in want.indices where i < got.count {
                    let allowed = 1e-5 * (ref.magnitude[i] + (t.epilogue == .residualRelu ? Swift.abs(Double(x[i])) : 0))
                    worst = max(worst, Swift.abs(Double(got[i]) - want[i]) / max(allowed, .leastNormalMagnitude))
                }
                XCTAssertLessThanOrEqual(worst, 1, "\(label), \(count) images: error / bound")
            }
        }
    }

    /// Not for filters off whole blocks of 64, 1×1 kernels, strides, groups,
    /// planes of 256 pixels or more, or whole-vector rows; never in the observed plan.
    func testOnlySmallPlanesOfWholeBlocks() throws {
        struct Layer { let label: String, c: Int, m: Int, k: Int, stride: Int, group: Int, h: Int, expected: Bool }
        let layers = [
            Layer(label: "MNIST 32→64 14×14", c: 32, m: 64, k: 3, stride: 1, group: 1, h: 14, expected: true),
            Layer(label: "48 filters", c: 32, m: 48, k: 3, stride: 1, group: 1, h: 14, expected: false),
            Layer(label: "1×1", c: 32, m: 64, k: 1, stride: 1, group: 1, h: 14, expected: false),
            Layer(label: "stride 2", c: 32, m: 64, k: 3, stride: 2, group: 1, h: 14, expected: false),
            Layer(label: "groups", c: 32, m: 64, k: 3, stride: 1, group: 2, h: 14, expected: false),
            Layer(label: "16×16 plane", c: 32, m: 64, k: 3, stride: 1, group: 1, h: 16, expected: false),
            Layer(label: "28×28 plane", c: 32, m: 64, k: 3, stride: 1, group: 1, h: 28, expected: false),
        ]
        for layer in layers {
            let nodes = [node("Conv", "conv", ["x", "w"], ["kernel_shape": .ints([layer.k, layer.k]),
                              "strides": .ints([layer.stride, layer.stride]),
                              "pads": .ints(layer.k == 1 ? [0, 0, 0, 0] : [1, 1, 1, 1]), "group": .int(layer.group)])]
            let inits = [randomTensor("w", [layer.m, layer.c / layer.group, layer.k, layer.k], seed: 5)]
            let net = try Network(model: flattened(nodes, inits, input: [layer.c, layer.h, layer.h], tapped: "conv"))
            XCTAssertEqual(try usesChannelVectors(net), layer.expected, layer.label)
            let observed = try net.makeExecutor(capacity: 2, fusesUnobservedRuns: true)
            XCTAssertFalse(observed.plan.steps.contains { $0.kernel is ChannelVectorConvKernel }, "\(layer.label): observed plan")
        }
    }
}
