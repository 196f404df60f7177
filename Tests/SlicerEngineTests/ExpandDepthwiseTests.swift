import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

/// The inference plan's merged expansion and depthwise convolution
/// (ExpandDepthwiseKernel): an inverted residual — 1×1 expansion, BN, ReLU6,
/// depthwise 3×3, BN, ReLU6, 1×1 projection, BN, residual Add — run by the
/// inference plan with the merge (every expansion, whatever its size) must
/// give bit for bit the logits of the inference plan without it (the same
/// sums in the same order), and the observed plan's within the BatchNormalization
/// fold's rounding.
final class ExpandDepthwiseTests: XCTestCase {
    struct Case {
        let label: String
        let c: Int, h: Int, w: Int, expanded: Int, stride: Int
    }

    private func invertedResidual(_ t: Case, seed: UInt64) -> ONNXModel {
        var inits: [ONNXTensor] = []
        var nodes: [ONNXNode] = []
        func bn(_ name: String, _ input: String, _ channels: Int, _ s: UInt64) {
            inits += [randomTensor(name + "_g", [channels], seed: s, in: 0.5...2), randomTensor(name + "_b", [channels], seed: s + 1),
                      randomTensor(name + "_m", [channels], seed: s + 2, in: -0.5...0.5),
                      randomTensor(name + "_v", [channels], seed: s + 3, in: 0.25...4)]
            nodes.append(node("BatchNormalization", name, [input, name + "_g", name + "_b", name + "_m", name + "_v"],
                              ["epsilon": .float(1e-5)]))
        }
        inits += [ONNXTensor(name: "lo", dims: [], floats: [0]), ONNXTensor(name: "hi", dims: [], floats: [6])]
        inits += [randomTensor("we", [t.expanded, t.c, 1, 1], seed: seed, in: -0.6...0.6),
                  randomTensor("be", [t.expanded], seed: seed + 1),
                  randomTensor("wd", [t.expanded, 1, 3, 3], seed: seed + 2, in: -0.6...0.6),
                  randomTensor("wp", [t.c, t.expanded, 1, 1], seed: seed + 3, in: -0.3...0.3)]
        nodes.append(node("Conv", "expand", ["x", "we", "be"], ["kernel_shape": .ints([1, 1])]))
        bn("bn1", "expand", t.expanded, seed + 10)
        nodes.append(node("Clip", "r1", ["bn1", "lo", "hi"]))
        nodes.append(node("Conv", "dw", ["r1", "wd"], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1]),
                                                        "strides": .ints([t.stride, t.stride]), "group": .int(t.expanded)]))
        bn("bn2", "dw", t.expanded, seed + 20)
        nodes.append(node("Clip", "r2", ["bn2", "lo", "hi"]))
        nodes.append(node("Conv", "project", ["r2", "wp"], ["kernel_shape": .ints([1, 1])]))
        bn("bn3", "project", t.c, seed + 30)
        var last = "bn3"
        if t.stride == 1 {
            nodes.append(node("Add", "add", ["x", "bn3"]))
            last = "add"
        }
        return flattened(nodes, inits, input: [t.c, t.h, t.w], tapped: last)
    }

    private func logits(_ executor: Executor, _ x: [Float], count: Int, capacity: Int, perImage: Int) -> [Float] {
        executor.outputs(x, count: count, capacity: capacity, perImage: perImage)
    }

    func testMergedExpansionMatchesSeparateSteps() throws {
        let cases = [
            // Input over the band budget: several bands of rows, halos recomputed;
            // 24 channels in blocks of 8.
            Case(label: "bands, stride 1", c: 16, h: 98, w: 96, expanded: 24, stride: 1),
            Case(label: "bands, stride 2", c: 16, h: 98, w: 96, expanded: 24, stride: 2),
            // Odd widths: 17 (rows of whole vectors plus one), a flat 9-wide stride-2 output;
            // 20 channels: a partial panel of filters.
            Case(label: "odd width, stride 1", c: 6, h: 16, w: 17, expanded: 20, stride: 1),
            Case(label: "odd width, stride 2 (flat)", c: 6, h: 16, w: 17, expanded: 20, stride: 2),
            // Odd height, stride 2: the last output row's window reaches the bottom padding.
            Case(label: "odd height, stride 2", c: 5, h: 17, w: 32, expanded: 16, stride: 2),
        ]
        for (index, t) in cases.enumerated() {
            let net = try Network(model: invertedResidual(t, seed: UInt64(500 + 40 * index)))
            let capacity = 2, count = 3
            let perImage = net.inputShape.reduce(1, *)
            let x = randomFloats(count * perImage, seed: UInt64(900 + index), in: -2...2)
            let plain = try net.plan(capacity: capacity)
            let merged = try net.inferencePlan(capacity: capacity, fusingExpansionsAbove: 0)
            let separate = try net.inferencePlan(capacity: capacity, fusingExpansionsAbove: Int.max)
            let kernels = merged.steps.compactMap { $0.kernel as? ExpandDepthwiseKernel }
            XCTAssertEqual(kernels.count, 1, "\(t.label): expansion and depthwise merged")
            XCTAssertEqual(merged.steps.count + 1, separate.steps.count, t.label)
            XCTAssertFalse(separate.steps.contains { $0.kernel is ExpandDepthwiseKernel }, t.label)
            if t.label.hasPrefix("bands"), let k = kernels.first {
                XCTAssertLessThan(k.bandRows, k.depthwise.window.outH, "\(t.label): several bands")
                XCTAssertLessThan(k.blockChannels, t.expanded, "\(t.label): several blocks")
            }
            let a = logits(Executor(network: net, plan: plain, fusedPlan: merged), x, count: count, capacity: capacity, perImage: perImage)
            let b = logits(Executor(network: net, plan: plain, fusedPlan: separate), x, count: count, capacity: capacity, perImage: perImage)
            let observed = logits(Executor(network: net, plan: plain), x, count: count, capacity: capacity, perImage: perImage)
            XCTAssertEqual(a.count, b.count, t.label)
            XCTAssertTrue(a == b, "\(t.label): merged step bit for bit the separate steps")
            var worst: Float = 0, scale: Float = 1
            for (u, v) in zip(a, observed) { worst = max(worst, abs(u - v)); scale = max(scale, abs(v)) }
            XCTAssertLessThanOrEqual(worst / scale, 1e-5, "\(t.label): against the observed (unfolded) plan")
            // The test can fail: a merged step that dropped the expansion's clamp would differ.
            XCTAssertGreaterThan(Set(a).count, count, "\(t.label): logits vary")
        }
    }

    /// The 256 KiB threshold: MobileNet-V2's 112×112, 56×56 and 28×28 expansions
    /// merge; a small one (where the expanded tensor stays in cache) does not.
    func testOnlyLargeExpansionsMerge() throws {
        let small = try Network(model: invertedResidual(Case(label: "small", c: 8, h: 16, w: 16, expanded: 48, stride: 1), seed: 7))
        XCTAssertFalse(try small.fusedPlan(capacity: 1).steps.contains { $0.kernel is ExpandDepthwiseKernel })
        let large = try Network(model: invertedResidual(Case(label: "large", c: 16, h: 112, w: 112, expanded: 96, stride: 2), seed: 8))
        XCTAssertTrue(try large.fusedPlan(capacity: 1).steps.contains { $0.kernel is ExpandDepthwiseKernel })
    }
}
