import Foundation
import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

/// F(2×2, 3×3) convolutions of the inference plan (WinogradConvolution.swift)
/// against a direct convolution in double, and which layers use them.
final class WinogradTests: XCTestCase {
    /// y = Σ w·x + bias, straight from the ONNX definition (zero padding `pad` on every side).
    private func reference(_ x: [Float], n: Int, c: Int, h: Int, w: Int, weights: [Float], bias: [Float]?,
                           m: Int, pad: Int) -> (values: [Double], magnitude: [Double], oh: Int, ow: Int) {
        let oh = h + 2 * pad - 2, ow = w + 2 * pad - 2
        var y = [Double](repeating: 0, count: n * m * oh * ow), size = y
        for b in 0..<n {
            for f in 0..<m {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var sum = Double(bias?[f] ?? 0), abs = Swift.abs(sum)
                        for ci in 0..<c {
                            for ki in 0..<3 {
                                for kj in 0..<3 {
                                    let ih = i - pad + ki, iw = j - pad + kj
                                    guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                                    let term = Double(weights[((f * c + ci) * 3 + ki) * 3 + kj]) * Double(x[((b * c + ci) * h + ih) * w + iw])
                                    sum += term
                                    abs += Swift.abs(term)
                                }
                            }
                        }
                        y[((b * m + f) * oh + i) * ow + j] = sum
                        size[((b * m + f) * oh + i) * ow + j] = abs
                    }
                }
            }
        }
        return (y, size, oh, ow)
    }

    private enum Epilogue { case none, relu, clip, residualRelu }

    private struct Case {
        let c: Int, m: Int, h: Int, w: Int, pad: Int, bias: Bool, epilogue: Epilogue
    }

    /// Conv (→ Add of the input → ) (→ Relu / Clip 0…6), flattened.
    private func network(_ t: Case, weights: [Float], bias: [Float]?) throws -> Network {
        var inits = [ONNXTensor(name: "w", dims: [t.m, t.c, 3, 3], floats: weights)]
        var inputs = ["x", "w"]
        if let bias { inits.append(ONNXTensor(name: "b", dims: [t.m], floats: bias)); inputs.append("b") }
        var nodes = [node("Conv", "conv", inputs, ["kernel_shape": .ints([3, 3]), "pads": .ints([t.pad, t.pad, t.pad, t.pad])])]
        var last = "conv"
        switch t.epilogue {
        case .none: break
        case .relu:
            nodes.append(node("Relu", "act", [last])); last = "act"
        case .clip:
            inits += [ONNXTensor(name: "lo", dims: [], floats: [0]), ONNXTensor(name: "hi", dims: [], floats: [6])]
            nodes.append(node("Clip", "act", [last, "lo", "hi"])); last = "act"
        case .residualRelu:
            nodes.append(node("Add", "add", ["x", last])); nodes.append(node("Relu", "act", ["add"])); last = "act"
        }
        return try Network(model: flattened(nodes, inits, input: [t.c, t.h, t.w], tapped: last))
    }

    private func fusedRun(_ net: Network, _ x: [Float], count: Int, capacity: Int) throws -> [Float] {
        let executor = try net.makeExecutor(capacity: capacity, fusesUnobservedRuns: true)
        let perImage = net.inputShape.reduce(1, *)
        var out: [Float] = []
        var start = 0
        try x.withUnsafeBufferPointer { buffer in
            while start < count {
                let n = min(capacity, count - start)
                out += Array(executor.run(input: UnsafeBufferPointer(rebasing: buffer[(start * perImage)..<((start + n) * perImage)]), count: n))
                XCTAssertTrue(executor.lastRunWasFused)
                start += n
            }
            _ = try XCTUnwrap(executor.fusedPlan)
        }
        return out
    }

    private func usesWinograd(_ net: Network) throws -> Bool {
        let plan = try net.fusedPlan(capacity: 2)
        return plan.steps.contains { $0.kernel is WinogradConvKernel }
    }

    /// Odd and even planes from 1×1 to 9×9 and wide or tall ones (several
    /// 16-tile groups per tile row; a plane split over several blocks), channel
    /// counts off multiples of 16, pads 0 and 1, with and without bias and
    /// with each epilogue.
    ///
    /// Bound: |y − y_ref| ≤ 1e-5 · Σ|terms| (bias and every w·x), per output.
    /// The direct fp32 sum's error is bounded by about 9·C·ε of that
    /// magnitude (ε = 6e-8), in practice ~√(9C)·ε ≈ 2e-6 for C = 130; Winograd's sum runs
    /// over C terms instead of 9·C but of transformed values: Bᵀ d B adds up to
    /// 4 inputs, G g Gᵀ up to 9 weights/4, Aᵀ M A up to 9 products, so each
    /// intermediate carries a few ε of the magnitude. A wrong transform,
    /// tile or edge would be off by the size of the terms themselves.
    func testMatchesDirectReference() throws {
        var cases: [Case] = []
        let planes = [(1, 1), (2, 2), (2, 3), (3, 3), (4, 5), (5, 5), (6, 7), (7, 7), (8, 9), (9, 9), (9, 4)]
        for (i, (h, w)) in planes.enumerated() {
            let epilogue: [Epilogue] = [.none, .relu, .clip, .residualRelu]
            cases.append(Case(c: i % 2 == 0 ? 129 : 65, m: i % 2 == 0 ? 20 : 9, h: h, w: w, pad: 1, bias: i % 3 != 0,
                              epilogue: epilogue[i % 4] == .residualRelu ? .relu : epilogue[i % 4]))
            if h >= 3 && w >= 3 { cases.append(Case(c: 130, m: 24, h: h, w: w, pad: 0, bias: true, epilogue: .clip)) }
        }
        // Residual: input and output of one shape (C = M, pad 1).
        cases.append(Case(c: 129, m: 129, h: 7, w: 6, pad: 1, bias: true, epilogue: .residualRelu))
        cases.append(Case(c: 65, m: 65, h: 5, w: 40, pad: 1, bias: false, epilogue: .residualRelu))
        // Tile rows of 20 and 35 tiles (two and three groups of 16).
        cases.append(Case(c: 66, m: 10, h: 6, w: 40, pad: 1, bias: true, epilogue: .none))
        cases.append(Case(c: 64, m: 8, h: 3, w: 71, pad: 1, bias: true, epilogue: .relu))
        // 24 × 24 tiles, more than a block holds: blocks end inside an image.
        cases.append(Case(c: 64, m: 20, h: 48, w: 47, pad: 1, bias: true, epilogue: .relu))
        // Whole images per block (CIFAR's planes, from 16 channels): 32, 16
        // and 8 columns, one channel short of or past a vector, filters not
        // filling a panel, no padding (10×10 → 8×8), rows of 32 over 14 rows.
        cases.append(Case(c: 16, m: 16, h: 32, w: 32, pad: 1, bias: true, epilogue: .residualRelu))
        cases.append(Case(c: 33, m: 9, h: 16, w: 16, pad: 1, bias: false, epilogue: .none))
        cases.append(Case(c: 20, m: 13, h: 8, w: 8, pad: 1, bias: true, epilogue: .relu))
        cases.append(Case(c: 64, m: 64, h: 8, w: 8, pad: 1, bias: true, epilogue: .residualRelu))
        cases.append(Case(c: 17, m: 24, h: 10, w: 10, pad: 0, bias: true, epilogue: .clip))
        cases.append(Case(c: 16, m: 8, h: 16, w: 34, pad: 0, bias: true, epilogue: .relu))
        cases.append(Case(c: 31, m: 8, h: 4, w: 16, pad: 1, bias: true, epilogue: .relu))

        var winogradCases = 0
        for (index, t) in cases.enumerated() {
            let seed = UInt64(500 + 10 * index)
            let weights = randomFloats(t.m * t.c * 9, seed: seed, in: -0.5...0.5)
            let bias = t.bias ? randomFloats(t.m, seed: seed + 1) : nil
            let net = try network(t, weights: weights, bias: bias)
            let label = "C \(t.c) M \(t.m) \(t.h)×\(t.w) pad \(t.pad) \(t.epilogue)"
            let oh = t.h + 2 * t.pad - 2, ow = t.w + 2 * t.pad - 2
            let wholeImages = [8, 16, 32].contains(ow) && oh % 2 == 0 && (oh / 2) * (ow / 2) % 16 == 0
            let expected = oh >= 2 && ow >= 2 && (t.c >= WinogradConvKernel.minimumChannels
                && (oh * ow > WinogradConvKernel.smallPlane || t.c >= 2 * WinogradConvKernel.minimumChannels)
                || t.c >= WinogradConvKernel.minimumChannelsWholeImages && wholeImages)
            XCTAssertEqual(try usesWinograd(net), expected, "\(label): Winograd where the rule says so")
            if expected { winogradCases += 1 }
            let count = 3
            let x = randomFloats(count * t.c * t.h * t.w, seed: seed + 2, in: -2...2)
            let got = try fusedRun(net, x, count: count, capacity: 2)
            let ref = reference(x, n: count, c: t.c, h: t.h, w: t.w, weights: weights, bias: bias, m: t.m, pad: t.pad)
            var want = ref.values
            switch t.epilogue {
            case .none: break
            case .relu: want = want.map { max(0, $0) }
            case .clip: want = want.map { min(6, max(0, $0)) }
            case .residualRelu: want = zip(want, x).map { max(0, $0 + Double($1)) }
            }
            XCTAssertEqual(got.count, want.count, label)
            var worst = 0.0
            for i in want.indices where i < got.count {
                let allowed = 1e-5 * (ref.magnitude[i] + (t.epilogue == .residualRelu ? Swift.abs(Double(x[i])) : 0))
                worst = max(worst, Swift.abs(Double(got[i]) - want[i]) / max(allowed, .leastNormalMagnitude))
            }
            XCTAssertLessThanOrEqual(worst, 1, "\(label): error / bound")
        }
        XCTAssertGreaterThanOrEqual(winogradCases, cases.count - 6, "most cases take the Winograd path")
    }

    /// An image's outputs do not depend on the batch it runs in: one at a
    /// time, three at a time and five at a time (blocks of several images on
    /// a small plane), bit for bit.
    func testImageResultIndependentOfBatch() throws {
        for (c, h, w) in [(130, 4, 4), (130, 14, 14), (16, 32, 32), (24, 8, 8)] {
            let t = Case(c: c, m: 40, h: h, w: w, pad: 1, bias: true, epilogue: .relu)
            let weights = randomFloats(t.m * t.c * 9, seed: 71, in: -0.5...0.5)
            let net = try network(t, weights: weights, bias: randomFloats(t.m, seed: 72))
            XCTAssertTrue(try usesWinograd(net))
            let x = randomFloats(5 * t.c * h * w, seed: 73, in: -2...2)
            let one = try fusedRun(net, x, count: 5, capacity: 1)
            XCTAssertTrue(one == (try fusedRun(net, x, count: 5, capacity: 3)), "\(h)×\(w): batches of 3")
            XCTAssertTrue(one == (try fusedRun(net, x, count: 5, capacity: 5)), "\(h)×\(w): one batch of 5")
        }
    }

    /// Conv (→ Relu / Clip 0…6) → MaxPool 2×2 stride 2, flattened.
    private func pooledNetwork(_ t: Case, weights: [Float], bias: [Float]?) throws -> Network {
        var inits = [ONNXTensor(name: "w", dims: [t.m, t.c, 3, 3], floats: weights)]
        var inputs = ["x", "w"]
        if let bias { inits.append(ONNXTensor(name: "b", dims: [t.m], floats: bias)); inputs.append("b") }
        var nodes = [node("Conv", "conv", inputs, ["kernel_shape": .ints([3, 3]), "pads": .ints([t.pad, t.pad, t.pad, t.pad])])]
        var last = "conv"
        switch t.epilogue {
        case .none, .residualRelu: break
        case .relu:
            nodes.append(node("Relu", "act", [last])); last = "act"
        case .clip:
            inits += [ONNXTensor(name: "lo", dims: [], floats: [0]), ONNXTensor(name: "hi", dims: [], floats: [6])]
            nodes.append(node("Clip", "act", [last, "lo", "hi"])); last = "act"
        }
        nodes.append(node("MaxPool", "pool", [last], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]))
        return try Network(model: flattened(nodes, inits, input: [t.c, t.h, t.w], tapped: "pool"))
    }

    private func runPlan(_ net: Network, _ plan: ExecutionPlan, _ x: [Float], count: Int, capacity: Int) -> [Float] {
        let executor = Executor(network: net, plan: plan)
        let perImage = net.inputShape.reduce(1, *)
        var out: [Float] = []
        var start = 0
        x.withUnsafeBufferPointer { buffer in
            while start < count {
                let n = min(capacity, count - start)
                out += Array(executor.run(input: UnsafeBufferPointer(rebasing: buffer[(start * perImage)..<((start + n) * perImage)]), count: n))
                start += n
            }
        }
        return out
    }

    /// Convolutions with their 2×2 max pool merged (`accepts(_:pool:)`): the
    /// pooled values only, tiles numbered across tile rows and images.
    /// MNIST's 32 → 64 at 14×14 (7 tiles a row, 49 an image: vectors that
    /// straddle images), planes of fewer tiles than a vector (5×3, 1×1),
    /// 14 tiles a row unpadded, CIFAR-sized 16×16 and 32×32 planes (which
    /// the unpooled Winograd path takes too), channel and filter counts off
    /// multiples of 16; batches of 1, 3 and 5 at capacities 2 and 3.
    ///
    /// Against the double reference: the bound of `testMatchesDirectReference`
    /// on each of the window's four sums (a maximum moves by at most the
    /// largest error of its operands). Against the plan with the pool as its
    /// own step: bit for bit where that plan runs the convolution by Winograd
    /// too (same sums, bias, clamp and comparisons), else (the direct sum)
    /// within twice the bound, both being within it of the reference. The
    /// observed plan never runs Winograd.
    func testPooledPlanesMatchReferenceAndUnfusedPlan() throws {
        let cases = [
            Case(c: 32, m: 64, h: 14, w: 14, pad: 1, bias: true, epilogue: .relu),   // MNIST
            Case(c: 17, m: 9, h: 6, w: 10, pad: 1, bias: false, epilogue: .clip),
            Case(c: 16, m: 24, h: 16, w: 16, pad: 1, bias: true, epilogue: .relu),
            Case(c: 20, m: 13, h: 12, w: 30, pad: 0, bias: true, epilogue: .none),
            Case(c: 64, m: 16, h: 32, w: 32, pad: 1, bias: true, epilogue: .relu),
            Case(c: 16, m: 8, h: 2, w: 2, pad: 1, bias: true, epilogue: .clip),
        ]
        for (index, t) in cases.enumerated() {
            let seed = UInt64(900 + 10 * index)
            let weights = randomFloats(t.m * t.c * 9, seed: seed, in: -0.5...0.5)
            let bias = t.bias ? randomFloats(t.m, seed: seed + 1) : nil
            let net = try pooledNetwork(t, weights: weights, bias: bias)
            let label = "C \(t.c) M \(t.m) \(t.h)×\(t.w) pad \(t.pad) \(t.epilogue)"
            let fused = try net.fusedPlan(capacity: 3), keeping = try net.inferencePlan(capacity: 3, fusesPools: false)
            XCTAssertTrue(fused.steps.contains { ($0.kernel as? WinogradConvKernel)?.pools == true }, label)
            XCTAssertFalse(fused.steps.contains { $0.kernel is PoolKernel }, "\(label): pool merged")
            XCTAssertTrue(keeping.steps.contains { $0.kernel is PoolKernel }, label)
            let keepsWinograd = keeping.steps.contains { $0.kernel is WinogradConvKernel }
            let observed = try net.makeExecutor(capacity: 3)
            XCTAssertFalse(observed.plan.steps.contains { $0.kernel is WinogradConvKernel }, "\(label): observed plan")
            let oh = t.h + 2 * t.pad - 2, ow = t.w + 2 * t.pad - 2, ph = oh / 2, pw = ow / 2
            for (count, capacity) in [(1, 2), (3, 2), (5, 3)] {
                let x = randomFloats(count * t.c * t.h * t.w, seed: seed + UInt64(2 + count), in: -2...2)
                let got = runPlan(net, fused, x, count: count, capacity: capacity)
                let unfused = runPlan(net, keeping, x, count: count, capacity: capacity)
                let ref = reference(x, n: count, c: t.c, h: t.h, w: t.w, weights: weights, bias: bias, m: t.m, pad: t.pad)
                func activated(_ v: Double) -> Double {
                    switch t.epilogue {
                    case .relu: return max(0, v)
                    case .clip: return min(6, max(0, v))
                    default: return v
                    }
                }
                XCTAssertEqual(got.count, count * t.m * ph * pw, label)
                XCTAssertEqual(unfused.count, got.count, label)
                var worst = 0.0, worstUnfused = 0.0
                for b in 0..<count {
                    for f in 0..<t.m {
                        for i in 0..<ph {
                            for j in 0..<pw {
                                var want = -Double.infinity, allowed = 0.0
                                for (di, dj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                                    let at = ((b * t.m + f) * oh + 2 * i + di) * ow + 2 * j + dj
                                    want = max(want, activated(ref.values[at]))
                                    allowed = max(allowed, 1e-5 * ref.magnitude[at])
                                }
                                let at = ((b * t.m + f) * ph + i) * pw + j
                                guard at < got.count, at < unfused.count else { continue }
                                let scale = max(allowed, .leastNormalMagnitude)
                                worst = max(worst, Swift.abs(Double(got[at]) - want) / scale)
                                worstUnfused = max(worstUnfused, Swift.abs(Double(got[at]) - Double(unfused[at])) / scale)
                            }
                        }
                    }
                }
                XCTAssertLessThanOrEqual(worst, 1, "\(label), \(count) images: error / bound")
                if keepsWinograd {
                    XCTAssertTrue(got == unfused, "\(label), \(count) images: bit for bit the Winograd plan with the pool step")
                } else {
                    XCTAssertLessThanOrEqual(worstUnfused, 2, "\(label), \(count) images: against the plan with the pool step")
                }
            }
        }
    }

    /// Not merged: odd conv outputs (the pool drops a row: the tiles are
    /// not its windows), fewer than 16 channels, a residual Add, planes
    /// wider than 32, a 3×3 pool.
    func testPooledOnlyWhereTilesArePoolWindows() throws {
        struct Layer { let label: String, c: Int, h: Int, w: Int, pool: Int, expected: Bool }
        let layers = [
            Layer(label: "MNIST 14×14", c: 32, h: 14, w: 14, pool: 2, expected: true),
            Layer(label: "odd plane", c: 32, h: 13, w: 14, pool: 2, expected: false),
            Layer(label: "8 channels", c: 8, h: 14, w: 14, pool: 2, expected: false),
            Layer(label: "34 columns", c: 32, h: 6, w: 34, pool: 2, expected: false),
            Layer(label: "3×3 pool", c: 32, h: 14, w: 14, pool: 3, expected: false),
        ]
        for layer in layers {
            let nodes = [node("Conv", "conv", ["x", "w"], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]),
                         node("Relu", "act", ["conv"]),
                         node("MaxPool", "pool", ["act"], ["kernel_shape": .ints([layer.pool, layer.pool]), "strides": .ints([2, 2])])]
            let inits = [randomTensor("w", [64, layer.c, 3, 3], seed: 5)]
            let net = try Network(model: flattened(nodes, inits, input: [layer.c, layer.h, layer.w], tapped: "pool"))
            let steps = try net.fusedPlan(capacity: 2).steps
            XCTAssertEqual(steps.contains { ($0.kernel as? WinogradConvKernel)?.pools == true }, layer.expected, layer.label)
        }
        // A residual: Conv → Add(x) → Relu → MaxPool keeps the full-size values.
        let nodes = [node("Conv", "conv", ["x", "w"], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]),
                     node("Add", "add", ["x", "conv"]), node("Relu", "act", ["add"]),
                     node("MaxPool", "pool", ["act"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])]
        let net = try Network(model: flattened(nodes, [randomTensor("w", [32, 32, 3, 3], seed: 6)], input: [32, 14, 14], tapped: "pool"))
        XCTAssertFalse(try net.fusedPlan(capacity: 2).steps.contains { ($0.kernel as? WinogradConvKernel)?.pools == true }, "residual")
    }

    /// Which convolutions the inference plan runs as Winograd: dense 3×3
    /// stride-1 ones over 64 channels or more (128 on planes of 8×8 outputs
    /// or fewer); never stride 2, groups, 1×1, dilation, or a shallow layer. The observed plan never does.
    func testOnlyDenseThreeByThreeStrideOneLayers() throws {
        struct Layer { let label: String, c: Int, k: Int, stride: Int, group: Int, dilation: Int, h: Int, expected: Bool }
        let layers = [
            Layer(label: "3x3 stride 1", c: 64, k: 3, stride: 1, group: 1, dilation: 1, h: 12, expected: true),
            Layer(label: "3x3 stride 2", c: 64, k: 3, stride: 2, group: 1, dilation: 1, h: 12, expected: false),
            Layer(label: "3x3 groups", c: 64, k: 3, stride: 1, group: 2, dilation: 1, h: 12, expected: false),
            Layer(label: "depthwise", c: 64, k: 3, stride: 1, group: 64, dilation: 1, h: 12, expected: false),
            Layer(label: "1x1", c: 64, k: 1, stride: 1, group: 1, dilation: 1, h: 12, expected: false),
            Layer(label: "dilated", c: 64, k: 3, stride: 1, group: 1, dilation: 2, h: 12, expected: false),
            Layer(label: "RGB first layer", c: 3, k: 3, stride: 1, group: 1, dilation: 1, h: 12, expected: false),
            Layer(label: "32 channels", c: 32, k: 3, stride: 1, group: 1, dilation: 1, h: 12, expected: false),
            Layer(label: "64 channels, 6x6", c: 64, k: 3, stride: 1, group: 1, dilation: 1, h: 6, expected: false),
            Layer(label: "64 channels, 8x8 (whole images)", c: 64, k: 3, stride: 1, group: 1, dilation: 1, h: 8, expected: true),
            Layer(label: "16 channels, 32x32 (whole images)", c: 16, k: 3, stride: 1, group: 1, dilation: 1, h: 32, expected: true),
            Layer(label: "8 channels, 16x16", c: 8, k: 3, stride: 1, group: 1, dilation: 1, h: 16, expected: false),
            Layer(label: "128 channels, 8x8", c: 128, k: 3, stride: 1, group: 1, dilation: 1, h: 8, expected: true),
        ]
        for layer in layers {
            let m = 64
            let nodes = [node("Conv", "conv", ["x", "w"], ["kernel_shape": .ints([layer.k, layer.k]),
                              "strides": .ints([layer.stride, layer.stride]), "dilations": .ints([layer.dilation, layer.dilation]),
                              "pads": .ints([1, 1, 1, 1]), "group": .int(layer.group)])]
            let inits = [randomTensor("w", [m, layer.c / layer.group, layer.k, layer.k], seed: 5)]
            let net = try Network(model: flattened(nodes, inits, input: [layer.c, layer.h, layer.h], tapped: "conv"))
            XCTAssertEqual(try usesWinograd(net), layer.expected, layer.label)
            let observed = try net.makeExecutor(capacity: 2, fusesUnobservedRuns: true)
            XCTAssertFalse(observed.plan.steps.contains { $0.kernel is WinogradConvKernel }, "\(layer.label): observed plan")
        }
    }
}
