import Foundation
import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

// The operators ImageNet classifiers add to the small models' set (HardSigmoid,
// HardSwish, PRelu, LogSoftmax, Sum, ReduceMean/Max/Min/Sum, LRN, Pad,
// Transpose, Slice, Split, Gather and Squeeze/Unsqueeze on data) and the folding
// of shape arithmetic on constants, each against a reference written here from
// the ONNX operator definition (plain loops over explicit indices, in Double),
// using the helpers of KernelTests.swift.

/// The value of `x` (any rank) at the index given by `source(outputIndex)`.
private func refGather(_ x: Tensor, outputShape: [Int], source: ([Int]) -> [Int]?, fill: Double = 0) -> Tensor {
    var y = Tensor(zeros: outputShape)
    for index in indices(outputShape) {
        y.data[y.offset(index)] = source(index).map { x.data[x.offset($0)] } ?? fill
    }
    return y
}

final class ImageNetOperatorTests: XCTestCase {

    // MARK: Activations

    func testHardSigmoidAndHardSwish() throws {
        let cases: [(op: String, attrs: [String: ONNXAttribute], opset: Int, f: (Double) -> Double)] = [
            ("HardSigmoid", [:], 13, { min(1, max(0, 0.2 * $0 + 0.5)) }),
            ("HardSigmoid", ["alpha": .float(1.0 / 6), "beta": .float(0.5)], 13, { min(1, max(0, $0 / 6 + 0.5)) }),
            ("HardSwish", [:], 14, { $0 * min(1, max(0, $0 / 6 + 0.5)) }),
        ]
        for (op, attrs, opset, f) in cases {
            let m = flattened([node(op, "act", ["x"], attrs)], input: [3, 4, 5], tapped: "act", opset: opset)
            for plan in [(count: 2, capacity: 2), (count: 3, capacity: 5)] {
                // ±5 reaches both clamps of x/6 + 1/2 and of 0.2x + 0.5.
                let out = try execute(m, count: plan.count, capacity: plan.capacity, range: -5...5)
                assertClose(out.tap("act"), Tensor([plan.count, 3, 4, 5], floats: out.input).map(f), "\(op) \(attrs)")
            }
        }
        // NaN stays NaN, like every other activation here.
        let m = flattened([node("HardSwish", "act", ["x"])], input: [17], tapped: "act", opset: 14)
        var input = [Float](repeating: 1, count: 17)
        input[3] = .nan
        let out = try execute(m, count: 1, input: input)
        XCTAssertTrue(out.tap("act")[3].isNaN)
        XCTAssertEqual(out.tap("act")[4], 1 * (1.0 / 6 + 0.5), accuracy: 1e-6)
    }

    func testPRelu() throws {
        let shape = [3, 4, 5]
        let cases: [(label: String, slope: [Int])] = [
            ("one slope per channel, as PyTorch exports it", [3, 1, 1]),
            ("a single slope", [1]),
            ("a slope per column (trailing axis)", [5]),
            ("a slope per value", [3, 4, 5]),
            ("a slope per row and column", [4, 5]),
            ("channels and columns (neither fast layout)", [3, 1, 5]),
        ]
        for c in cases {
            let slope = randomTensor("slope", c.slope, seed: 5, in: 0.05...0.5)
            let m = flattened([node("PRelu", "prelu", ["x", "slope"])], [slope], input: shape, tapped: "prelu")
            for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
                let out = try execute(m, count: plan.count, capacity: plan.capacity, range: -2...2)
                let ref = refBinary(Tensor([plan.count] + shape, floats: out.input), Tensor(slope)) { $0 < 0 ? $0 * $1 : $0 }
                assertClose(out.tap("prelu"), ref, "PRelu: \(c.label)")
            }
        }
        let batchSlope = randomTensor("slope", [2, 3, 1, 1], seed: 5)
        let bad = flattened([node("PRelu", "prelu_batch", ["x", "slope"])], [batchSlope], input: shape, tapped: "prelu_batch")
        XCTAssertThrowsError(try Network(model: bad)) { XCTAssertTrue("\($0)".contains("prelu_batch"), "\($0)") }
    }

    func testLogSoftmax() throws {
        let shape = [3, 2, 4]
        let cases: [(opset: Int, axis: Int?, axes: Range<Int>)] = [(13, nil, 3..<4), (13, 1, 1..<2), (11, nil, 1..<4), (11, 2, 2..<4)]
        for c in cases {
            let attrs: [String: ONNXAttribute] = c.axis.map { ["axis": .int($0)] } ?? [:]
            let m = flattened([node("LogSoftmax", "lsm", ["x"], attrs)], input: shape, tapped: "lsm", opset: c.opset)
            let out = try execute(m, count: 3, capacity: 4, range: -6...6)
            let ref = refSoftmax(Tensor([3] + shape, floats: out.input), axes: c.axes).map { log($0) }
            assertClose(out.tap("lsm"), ref, "LogSoftmax opset \(c.opset) axis \(c.axis.map(String.init) ?? "default")")
        }
        // Far apart logits: log(softmax) would give −inf, LogSoftmax gives the difference.
        let m = model([node("LogSoftmax", "lsm", ["x"])], input: [3], output: "lsm")
        let out = try execute(m, count: 1, input: [1000, 0, -1000])
        XCTAssertEqual(out.logits[0], 0, accuracy: 1e-6)
        XCTAssertEqual(out.logits[1], -1000, accuracy: 1e-3)
        XCTAssertEqual(out.logits[2], -2000, accuracy: 1e-3)
    }

    // MARK: Sum, reductions, LRN

    func testSum() throws {
        let k = randomTensor("k", [3, 1, 1], seed: 9)
        let shape = [3, 2, 4]
        let nodes = [
            node("Relu", "a", ["x"]),
            node("Sigmoid", "b", ["x"]),
            node("Sum", "sum3", ["x", "a", "b"]),
            node("Sum", "sumk", ["sum3", "k", "a"]),
            node("Sum", "sum1", ["sumk"]),
        ]
        let m = flattened(nodes, [k], input: shape, tapped: "sum1")
        let net = try Network(model: m)
        XCTAssertEqual(net.taps.map(\.name), ["input", "a", "b", "sum3", "sumk"], "a one-operand Sum is an alias")
        for plan in [(count: 1, capacity: 1), (count: 3, capacity: 5)] {
            let out = try execute(m, count: plan.count, capacity: plan.capacity)
            let x = Tensor([plan.count] + shape, floats: out.input)
            let a = x.map { max($0, 0) }, b = x.map { 1 / (1 + exp(-$0)) }
            let sum3 = refBinary(refBinary(x, a, +), b, +)
            assertClose(out.tap("sum3"), sum3, "Sum of three data operands")
            assertClose(out.tap("sumk"), refBinary(refBinary(sum3, Tensor(k), +), a, +), "Sum with a broadcast constant")
        }
    }

    func testReductions() throws {
        let shape = [3, 4, 5]
        func reference(_ x: Tensor, axes: Set<Int>, keep: Bool, _ f: ([Double]) -> Double) -> Tensor {
            let kept = x.shape.indices.map { axes.contains($0) ? 1 : x.shape[$0] }
            var y = Tensor(zeros: kept)
            for o in indices(kept) {
                let members = indices(x.shape).filter { i in i.indices.allSatisfy { axes.contains($0) || i[$0] == o[$0] } }
                y.data[y.offset(o)] = f(members.map { x.data[x.offset($0)] })
            }
            return keep ? y : y.reshaped(kept.indices.filter { !axes.contains($0) }.map { kept[$0] })
        }
        let mean: ([Double]) -> Double = { $0.reduce(0, +) / Double($0.count) }
        let cases: [(op: String, opset: Int, axes: [Int]?, input: Bool, keep: Bool, ref: Set<Int>, f: ([Double]) -> Double)] = [
            ("ReduceMean", 13, [2, 3], false, false, [2, 3], mean),         // MnasNet's x.mean([2, 3])
            ("ReduceMean", 13, [-1, -2], false, true, [2, 3], mean),
            ("ReduceMean", 13, [1], false, true, [1], mean),
            ("ReduceMean", 17, [1, 3], false, false, [1, 3], mean),         // not contiguous: the general path
            ("ReduceMax", 13, [2, 3], false, true, [2, 3], { $0.max()! }),
            ("ReduceMin", 13, [1], false, false, [1], { $0.min()! }),
            ("ReduceSum", 13, [1, 2], true, true, [1, 2], { $0.reduce(0, +) }),
            ("ReduceSum", 11, [3], false, false, [3], { $0.reduce(0, +) }),
            ("ReduceMean", 18, [2, 3], true, true, [2, 3], mean),
        ]
        for c in cases {
            var inputs = ["x"], inits: [ONNXTensor] = []
            var attrs: [String: ONNXAttribute] = ["keepdims": .int(c.keep ? 1 : 0)]
            if let axes = c.axes {
                if c.input { inputs.append("axes"); inits.append(ONNXTensor(name: "axes", dims: [axes.count], ints: axes.map(Int64.init))) }
                else { attrs["axes"] = .ints(axes) }
            }
            let m = flattened([node(c.op, "red", inputs, attrs)], inits, input: shape, tapped: "red", opset: c.opset)
            for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
                let out = try execute(m, count: plan.count, capacity: plan.capacity, range: -3...3)
                let ref = reference(Tensor([plan.count] + shape, floats: out.input), axes: c.ref, keep: c.keep, c.f)
                assertClose(out.tap("red"), ref, "\(c.op) opset \(c.opset) axes \(c.axes ?? [])")
                XCTAssertEqual(out.shapes["red"], Array(ref.shape.dropFirst()), "\(c.op) axes \(c.axes ?? []) keepdims \(c.keep)")
            }
        }
        // Without axes a reduction covers the batch too: refused. With noop_with_empty_axes it is the identity.
        let all = flattened([node("ReduceMean", "mean_all", ["x"])], input: shape, tapped: "mean_all")
        XCTAssertThrowsError(try Network(model: all)) { XCTAssertTrue("\($0)".contains("mean_all") && "\($0)".contains("batch"), "\($0)") }
        let noop = flattened([node("ReduceSum", "noop", ["x"], ["noop_with_empty_axes": .int(1)])], input: shape, tapped: "noop")
        let out = try execute(noop, count: 2)
        XCTAssertEqual(out.logits, out.input)
        // ReduceMax lets NaN through.
        let maxModel = flattened([node("ReduceMax", "max", ["x"], ["axes": .ints([2])])], input: [1, 4], tapped: "max")
        XCTAssertTrue(try execute(maxModel, count: 1, input: [1, .nan, 3, 2]).logits[0].isNaN)
    }

    func testLRN() throws {
        let shape = [7, 3, 4]
        func reference(_ x: Tensor, size: Int, alpha: Double, beta: Double, bias: Double) -> Tensor {
            var y = x
            let channels = x.shape[1]
            for i in indices(x.shape) {
                let c = i[1]
                let lo = max(0, c - (size - 1) / 2), hi = min(channels - 1, c + Int((Double(size - 1) / 2).rounded(.up)))
                var sum = 0.0
                for k in lo...hi { var j = i; j[1] = k; sum += x.data[x.offset(j)] * x.data[x.offset(j)] }
                y.data[y.offset(i)] = x.data[x.offset(i)] / pow(bias + alpha / Double(size) * sum, beta)
            }
            return y
        }
        let cases: [(size: Int, alpha: Double, beta: Double, bias: Double, attrs: [String: ONNXAttribute])] = [
            (5, 1e-4, 0.75, 1, ["size": .int(5)]),                                     // defaults, AlexNet's size
            (5, 2e-2, 0.75, 2, ["size": .int(5), "alpha": .float(2e-2), "bias": .float(2)]),
            (4, 0.5, 0.5, 1, ["size": .int(4), "alpha": .float(0.5), "beta": .float(0.5)]),  // even: window ⌊3/2⌋ below, ⌈3/2⌉ above
            (1, 0.3, 1, 1, ["size": .int(1), "alpha": .float(0.3), "beta": .float(1)]),
        ]
        for c in cases {
            let m = flattened([node("LRN", "lrn", ["x"], c.attrs)], input: shape, tapped: "lrn")
            let out = try execute(m, count: 3, capacity: 4, range: -3...3)
            let ref = reference(Tensor([3] + shape, floats: out.input), size: c.size, alpha: c.alpha, beta: c.beta, bias: c.bias)
            assertClose(out.tap("lrn"), ref, "LRN size \(c.size)")
        }
        let bad = flattened([node("LRN", "lrn_nosize", ["x"])], input: shape, tapped: "lrn_nosize")
        XCTAssertThrowsError(try Network(model: bad)) { XCTAssertTrue("\($0)".contains("size"), "\($0)") }
    }

    // MARK: Pad

    func testPad() throws {
        let shape = [2, 3, 4]
        /// Source index along one axis of length d for output position o with `begin` pad.
        func source(_ o: Int, _ begin: Int, _ d: Int, _ mode: String) -> Int? {
            let i = o - begin
            if i >= 0 && i < d { return i }
            switch mode {
            case "edge": return i < 0 ? 0 : d - 1
            case "reflect": return i < 0 ? -i : 2 * (d - 1) - i
            default: return nil
            }
        }
        let cases: [(mode: String, pads: [Int], value: Float)] = [
            ("constant", [0, 0, 1, 2, 0, 0, 2, 1], 0),
            ("constant", [0, 1, 0, 1, 0, 0, 1, 3], -1.5),
            ("reflect", [0, 0, 2, 3, 0, 0, 1, 3], 0),
            ("edge", [0, 2, 1, 0, 0, 1, 3, 5], 0),
            ("edge", [0, 0, -1, 2, 0, 0, 2, -3], 0),        // negative pads crop
            ("reflect", [0, 0, -1, 2, 0, 0, 0, 0], 0),
            ("constant", [0, -1, 0, 0, 0, 0, 0, -2], 0),
        ]
        for c in cases {
            let rank = 4
            let out = (0..<rank).map { ([1] + shape)[$0] + c.pads[$0] + c.pads[rank + $0] }
            for opset in [2, 11] {
                let m: ONNXModel
                if opset < 11 {
                    m = flattened([node("Pad", "pad", ["x"], ["mode": .string(c.mode), "pads": .ints(c.pads), "value": .float(c.value)])],
                                  input: shape, tapped: "pad", opset: 9)
                } else {
                    let pads = ONNXTensor(name: "pads", dims: [8], ints: c.pads.map(Int64.init))
                    let value = ONNXTensor(name: "value", dims: [], floats: [c.value])
                    m = flattened([node("Pad", "pad", ["x", "pads", "value"], ["mode": .string(c.mode)])], [pads, value],
                                  input: shape, tapped: "pad", opset: 13)
                }
                for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
                    let result = try execute(m, count: plan.count, capacity: plan.capacity)
                    let x = Tensor([plan.count] + shape, floats: result.input)
                    let dims = [plan.count] + Array(out.dropFirst())
                    let ref = refGather(x, outputShape: dims, source: { index in
                        var s = [index[0]]
                        for axis in 1..<rank {
                            guard let i = source(index[axis], c.pads[axis], x.shape[axis], c.mode) else { return nil }
                            s.append(i)
                        }
                        return s
                    }, fill: Double(c.value))
                    XCTAssertEqual(result.logits.count, ref.data.count, "Pad \(c.mode) \(c.pads): output size")
                    assertClose(result.logits, ref, tolerance: 0, "Pad \(c.mode) \(c.pads), opset \(opset)")
                }
            }
        }
        // Opset 18: pads for the named axes only.
        let pads = ONNXTensor(name: "pads", dims: [2], ints: [1, 2])
        let axes = ONNXTensor(name: "axes", dims: [1], ints: [-1])
        let m18 = flattened([node("Pad", "pad", ["x", "pads", "", "axes"], ["mode": .string("edge")])], [pads, axes],
                            input: shape, tapped: "pad", opset: 18)
        let r18 = try execute(m18, count: 1)
        XCTAssertEqual(r18.logits.count, 2 * 3 * 7)
        XCTAssertEqual(Array(r18.logits[0..<7]), [r18.input[0], r18.input[0], r18.input[1], r18.input[2], r18.input[3], r18.input[3], r18.input[3]])
        // Pad is a tap (it is not in SPEC §2's list of value-moving operators), even with
        // all-zero pads (PyTorch's AvgPool export): then its values are its input's.
        let zero = ONNXTensor(name: "zero", dims: [8], ints: Array(repeating: 0, count: 8))
        let noop = flattened([node("Pad", "pad0", ["x", "zero"]), node("Relu", "relu", ["pad0"])], [zero], input: shape, tapped: "relu")
        let net = try Network(model: noop)
        XCTAssertEqual(net.taps.map(\.name), ["input", "pad0", "relu"])
        let copied = try execute(noop, count: 2)
        XCTAssertEqual(copied.tap("pad0"), copied.input, "an all-zero Pad copies its input")
        // Refused: a reflect pad as long as the axis, and padding the batch.
        for (label, p) in [("reflect too long", [0, 0, 3, 0, 0, 0, 0, 0]), ("batch", [1, 0, 0, 0, 0, 0, 0, 0])] {
            let t = ONNXTensor(name: "p", dims: [8], ints: p.map(Int64.init))
            let bad = flattened([node("Pad", "pad_bad", ["x", "p"], ["mode": .string("reflect")])], [t], input: shape, tapped: "pad_bad")
            XCTAssertThrowsError(try Network(model: bad), label) { XCTAssertTrue("\($0)".contains("pad_bad"), "\($0)") }
        }
    }

    // MARK: Transpose, Slice, Split, Gather

    /// ShuffleNet's channel shuffle: Reshape to [N, g, C/g, H, W], swap axes 1 and 2,
    /// Reshape back; channel c of the output is channel (c mod g)·C/g + c / g.
    func testChannelShuffle() throws {
        let c = 6, g = 2, h = 3, w = 2
        let split = ONNXTensor(name: "split5", dims: [5], ints: [0, Int64(g), Int64(c / g), Int64(h), Int64(w)])
        let back = ONNXTensor(name: "back", dims: [4], ints: [0, -1, Int64(h), Int64(w)])
        let nodes = [
            node("Relu", "relu", ["x"]),
            node("Reshape", "r5", ["relu", "split5"]),
            node("Transpose", "shuffle", ["r5"], ["perm": .ints([0, 2, 1, 3, 4])]),
            node("Reshape", "r4", ["shuffle", "back"]),
            node("Sigmoid", "after", ["r4"]),
        ]
        let m = flattened(nodes, [split, back], input: [c, h, w], tapped: "after")
        let net = try Network(model: m)
        XCTAssertEqual(net.taps.map(\.name), ["input", "relu", "shuffle", "after"], "the transpose is a tap (SPEC §2)")
        // Its rank-5 values [C/g, g, H, W] per image: C/g channels of g·H·W values, drawn as (g·H)×W maps.
        let shuffleTap = try XCTUnwrap(net.tap(named: "shuffle"))
        XCTAssertEqual(shuffleTap.channels, c / g)
        XCTAssertEqual(shuffleTap.valuesPerChannel, g * h * w)
        XCTAssertEqual(shuffleTap.mapSize.height * shuffleTap.mapSize.width, shuffleTap.valuesPerChannel)
        for plan in [(count: 1, capacity: 1), (count: 3, capacity: 5)] {
            let out = try execute(m, count: plan.count, capacity: plan.capacity)
            let relu = Tensor([plan.count, c, h, w], floats: out.tap("relu"))
            let ref = refGather(relu, outputShape: relu.shape, source: { i in [i[0], (i[1] % g) * (c / g) + i[1] / g, i[2], i[3]] })
            assertClose(out.tap("after"), ref.map { 1 / (1 + exp(-$0)) }, "channel shuffle")
        }
        // Any permutation that keeps the batch first, against the index formula.
        let perm = [0, 3, 1, 2]
        let t = model([node("Transpose", "t", ["x"], ["perm": .ints(perm)]), node("Flatten", "f", ["t"], outputs: ["logits"])],
                      input: [2, 3, 4], output: "logits")
        let out = try execute(t, count: 2)
        let x = Tensor([2, 2, 3, 4], floats: out.input)
        let ref = refGather(x, outputShape: perm.map { x.shape[$0] }, source: { i in
            var s = [0, 0, 0, 0]
            for (k, p) in perm.enumerated() { s[p] = i[k] }
            return s
        })
        assertClose(out.logits, ref, tolerance: 0, "Transpose \(perm)")
        let bad = flattened([node("Transpose", "t_batch", ["x"], ["perm": .ints([1, 0, 2])])], input: [2, 3], tapped: "t_batch")
        XCTAssertThrowsError(try Network(model: bad)) { XCTAssertTrue("\($0)".contains("batch"), "\($0)") }
    }

    func testSlice() throws {
        let shape = [5, 4, 6]
        let big = Int64.max, small = Int64.min
        let cases: [(label: String, starts: [Int64], ends: [Int64], axes: [Int64]?, steps: [Int64]?)] = [
            ("channels 1..<3", [1], [3], [1], nil),
            ("to the end", [2], [big], [-3], nil),
            ("negative bounds", [-4, -5], [-1, big], [1, 3], nil),
            ("steps", [0, 1], [big, 6], [2, 3], [2, 3]),
            ("reversed", [big, -1], [small, 0], [1, 3], [-1, -2]),
            ("empty", [3], [1], [1], nil),
            ("every axis but the batch, with the batch whole", [0, 1, 1, 0], [big, 4, 3, 5], nil, [1, 2, 1, 2]),
        ]
        func range(_ start: Int64, _ end: Int64, _ step: Int64, _ d: Int) -> [Int] {
            var s = Int(clamping: start), e = Int(clamping: end)
            if s < 0 { s += d }
            if e < 0 { e += d }
            if step > 0 {
                s = min(max(s, 0), d); e = min(max(e, 0), d)
                return Array(stride(from: s, to: e, by: Int(step)))
            }
            s = min(max(s, 0), d - 1); e = min(max(e, -1), d - 1)
            return Array(stride(from: s, to: e, by: Int(step)))
        }
        for c in cases {
            var inputs = ["x", "starts", "ends"]
            var inits = [ONNXTensor(name: "starts", dims: [c.starts.count], ints: c.starts),
                         ONNXTensor(name: "ends", dims: [c.ends.count], ints: c.ends)]
            if let axes = c.axes { inputs.append("axes"); inits.append(ONNXTensor(name: "axes", dims: [axes.count], ints: axes)) }
            if let steps = c.steps {
                if c.axes == nil { inputs.append("") }
                inputs.append("steps"); inits.append(ONNXTensor(name: "steps", dims: [steps.count], ints: steps))
            }
            let m = flattened([node("Slice", "slice", inputs), node("Relu", "relu", ["slice"])], inits, input: shape, tapped: "relu")
            for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
                let out = try execute(m, count: plan.count, capacity: plan.capacity)
                let x = Tensor([plan.count] + shape, floats: out.input)
                var picks = x.shape.map { Array(0..<$0) }
                let axes = c.axes.map { $0.map { Int($0) < 0 ? Int($0) + 4 : Int($0) } } ?? Array(0..<c.starts.count)
                for (k, axis) in axes.enumerated() {
                    picks[axis] = range(c.starts[k], c.ends[k], c.steps?[k] ?? 1, x.shape[axis])
                }
                let ref = refGather(x, outputShape: picks.map(\.count), source: { i in i.indices.map { picks[$0][i[$0]] } })
                assertClose(out.tap("relu"), ref.map { max($0, 0) }, tolerance: 0, "Slice \(c.label)")
            }
        }
        // Opset 9: attributes.
        let m9 = flattened([node("Slice", "s9", ["x"], ["starts": .ints([1]), "ends": .ints([3]), "axes": .ints([2])])],
                           input: shape, tapped: "s9", opset: 9)
        let out = try execute(m9, count: 2)
        let x = Tensor([2] + shape, floats: out.input)
        assertClose(out.logits, refGather(x, outputShape: [2, 5, 2, 6], source: { [$0[0], $0[1], $0[2] + 1, $0[3]] }),
                    tolerance: 0, "Slice opset 9")
        // Slicing the batch is refused.
        let s = ONNXTensor(name: "s", dims: [1], ints: [1]), e = ONNXTensor(name: "e", dims: [1], ints: [2]), a = ONNXTensor(name: "a", dims: [1], ints: [0])
        let bad = flattened([node("Slice", "slice_batch", ["x", "s", "e", "a"])], [s, e, a], input: shape, tapped: "slice_batch")
        XCTAssertThrowsError(try Network(model: bad)) { XCTAssertTrue("\($0)".contains("batch"), "\($0)") }
    }

    func testSplit() throws {
        let shape = [6, 2, 3]
        let cases: [(label: String, opset: Int, node: ONNXNode, inits: [ONNXTensor], axis: Int, sizes: [Int])] = [
            ("equal halves, opset 13", 13, node("Split", "split", ["x"], ["axis": .int(1)], outputs: ["p0", "p1"]), [], 1, [3, 3]),
            ("sizes as an input", 13, node("Split", "split", ["x", "sizes"], ["axis": .int(1)], outputs: ["p0", "p1", "p2"]),
             [ONNXTensor(name: "sizes", dims: [3], ints: [1, 2, 3])], 1, [1, 2, 3]),
            ("sizes as an attribute, opset 11", 11, node("Split", "split", ["x"], ["axis": .int(-1), "split": .ints([2, 1])], outputs: ["p0", "p1"]),
             [], 3, [2, 1]),
            ("opset 18 num_outputs, last part smaller", 18,
             node("Split", "split", ["x"], ["axis": .int(1), "num_outputs": .int(4)], outputs: ["p0", "p1", "p2", "p3"]), [], 1, [2, 2, 2, 0]),
        ]
        for c in cases {
            let outputs = c.node.outputs
            // Each part through its own Relu, then concatenated back: the parts must tile the input.
            let relus = outputs.map { node("Relu", "relu_\($0)", [$0]) }
            let m = flattened([c.node] + relus + [node("Concat", "cat", relus.map(\.name), ["axis": .int(c.axis)])],
                              c.inits, input: shape, tapped: "cat", opset: c.opset)
            let net = try Network(model: m)
            // Each part of a Split is a tap of its own (SPEC §2), named after its tensor past the first.
            XCTAssertEqual(net.taps.filter { $0.opType == "Split" }.count, outputs.count, "\(c.label): Split's parts are taps")
            for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
                let out = try execute(m, count: plan.count, capacity: plan.capacity)
                let x = Tensor([plan.count] + shape, floats: out.input)
                var start = 0
                for (k, size) in c.sizes.enumerated() {
                    var dims = x.shape
                    dims[c.axis] = size
                    let offset = start
                    let ref = refGather(x, outputShape: dims, source: { i in var s = i; s[c.axis] += offset; return s })
                    if size > 0 { assertClose(out.tap("relu_\(outputs[k])"), ref.map { max($0, 0) }, tolerance: 0, "Split \(c.label), part \(k)") }
                    start += size
                }
                assertClose(out.tap("cat"), x.map { max($0, 0) }, tolerance: 0, "Split \(c.label): parts tile the input")
            }
        }
        let uneven = flattened([node("Split", "split_uneven", ["x"], ["axis": .int(1)], outputs: ["a", "b", "c", "d"]),
                                node("Concat", "cat", ["a", "b", "c", "d"], ["axis": .int(1)])], input: shape, tapped: "cat")
        XCTAssertThrowsError(try Network(model: uneven)) { XCTAssertTrue("\($0)".contains("split_uneven"), "\($0)") }
    }

    /// GoogLeNet's input transform: `x[:, c]` (Gather of data, scalar index) → Unsqueeze →
    /// affine → Concat; and a Gather of several channels.
    func testGatherAndUnsqueezeOnData() throws {
        let shape = [3, 2, 4]
        var nodes: [ONNXNode] = []
        var inits: [ONNXTensor] = []
        for c in 0..<3 {
            inits.append(ONNXTensor(name: "i\(c)", dims: [], ints: [Int64(c)]))
            inits.append(ONNXTensor(name: "s\(c)", dims: [], floats: [Float(c + 2)]))
            nodes.append(node("Gather", "g\(c)", ["x", "i\(c)"], ["axis": .int(1)]))
            nodes.append(node("Unsqueeze", "u\(c)", ["g\(c)", "axes"]))
            nodes.append(node("Mul", "m\(c)", ["u\(c)", "s\(c)"]))
        }
        inits.append(ONNXTensor(name: "axes", dims: [1], ints: [1]))
        inits.append(ONNXTensor(name: "pick", dims: [2], ints: [2, -3]))
        nodes.append(node("Concat", "cat", ["m2", "m0", "m1"], ["axis": .int(1)]))
        nodes.append(node("Gather", "pick2", ["cat", "pick"], ["axis": .int(1)]))
        nodes.append(node("Squeeze", "sq", ["pick2"]))   // nothing of size 1 but the batch: unchanged
        let m = flattened(nodes, inits, input: shape, tapped: "sq")
        let net = try Network(model: m)
        XCTAssertEqual(net.taps.map(\.name), ["input", "m0", "m1", "m2", "cat"])
        for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
            let out = try execute(m, count: plan.count, capacity: plan.capacity)
            let x = Tensor([plan.count] + shape, floats: out.input)
            let order = [2, 0, 1]
            let cat = Tensor(x.shape, indices(x.shape).map { i in x[i[0], order[i[1]], i[2], i[3]] * Double(order[i[1]] + 2) })
            assertClose(out.tap("cat"), cat, "Gather/Unsqueeze/Mul/Concat")
            assertClose(out.logits, refGather(cat, outputShape: [plan.count, 2, 2, 4], source: { [$0[0], [2, 0][$0[1]], $0[2], $0[3]] }),
                        "Gather of two channels")
        }
    }

    // MARK: Constant folding

    private func fold(_ op: String, _ inputs: [ONNXTensor?], _ attributes: [String: ONNXAttribute] = [:], opset: Int = 13,
                      outputs: Int = 1) throws -> [ONNXTensor] {
        let n = ONNXNode(name: "n", opType: op, domain: "", inputs: inputs.map { $0 == nil ? "" : "in" },
                         outputs: (0..<outputs).map { "out\($0)" }, attributes: attributes)
        let c = NodeContext(node: n, opset: opset, file: "fold.onnx", inputs: inputs.map { $0.map { .constant($0) } })
        switch try ConstantFolder.fold(c) {
        case let .constant(t)?: return [t]
        case let .multiple(parts)?: return parts.compactMap { if case let .constant(t) = $0 { return t } else { return nil } }
        default: XCTFail("\(op) did not fold"); return []
        }
    }

    private func ints(_ values: [Int64], _ dims: [Int]? = nil) -> ONNXTensor { ONNXTensor(dims: dims ?? [values.count], ints: values) }
    private func floats(_ values: [Float], _ dims: [Int]? = nil) -> ONNXTensor { ONNXTensor(dims: dims ?? [values.count], floats: values) }

    func testConstantFoldingArithmetic() throws {
        // Integer division truncates toward zero (ONNX Runtime); floats divide.
        XCTAssertEqual(try fold("Div", [ints([7, -7, 116]), ints([2])])[0].ints, [3, -3, 58])
        XCTAssertEqual(try fold("Div", [floats([7, -7]), floats([2])])[0].floats, [3.5, -3.5])
        XCTAssertEqual(try fold("Add", [ints([1, 2, 3], [3, 1]), ints([10, 20], [1, 2])])[0].ints, [11, 21, 12, 22, 13, 23])
        XCTAssertEqual(try fold("Add", [ints([1, 2, 3], [3, 1]), ints([10, 20], [1, 2])])[0].dims, [3, 2])
        XCTAssertEqual(try fold("Mul", [ints([116]), ints([2])])[0].ints, [232])
        XCTAssertEqual(try fold("Sub", [ints([5]), ints([7])])[0].ints, [-2])
        XCTAssertEqual(try fold("Neg", [ints([5, -1])])[0].ints, [-5, 1])
        XCTAssertEqual(try fold("Mod", [ints([7, -7, 7, -7]), ints([3, 3, -3, -3])])[0].ints, [1, 2, -2, -1])
        XCTAssertEqual(try fold("Mod", [ints([7, -7, 7, -7]), ints([3, 3, -3, -3])], ["fmod": .int(1)])[0].ints, [1, -1, 1, -1])
        XCTAssertEqual(try fold("Floor", [floats([2.5, -2.5])])[0].floats, [2, -3])
        XCTAssertEqual(try fold("Ceil", [floats([2.5, -2.5])])[0].floats, [3, -2])
        XCTAssertEqual(try fold("Sqrt", [floats([9, 2])])[0].floats, [3, Float(2).squareRoot()])
        XCTAssertEqual(try fold("Pow", [floats([2, 3]), floats([3])])[0].floats, [8, 27])
        XCTAssertEqual(try fold("Max", [ints([1, 9]), ints([5, 2]), ints([3])])[0].ints, [5, 9])
        XCTAssertEqual(try fold("Min", [ints([1, 9]), ints([5, 2])])[0].ints, [1, 2])
        XCTAssertEqual(try fold("Sum", [ints([1, 9]), ints([5, 2]), ints([3])])[0].ints, [9, 14])
        let equal = try fold("Equal", [ints([1, 2, 3]), ints([2])])[0]
        XCTAssertEqual(equal.ints, [0, 1, 0])
        XCTAssertEqual(equal.dataType, .bool)
        XCTAssertEqual(try fold("Where", [equal, ints([-1]), ints([4, 5, 6])])[0].ints, [4, -1, 6])
        XCTAssertEqual(try fold("Not", [equal])[0].ints, [1, 0, 1])
        // Cast: float to int truncates toward zero; to float keeps the value.
        let cast = try fold("Cast", [floats([2.7, -2.7])], ["to": .int(7)])[0]
        XCTAssertEqual(cast.ints, [2, -2])
        XCTAssertFalse(cast.isFloatingPoint)
        XCTAssertEqual(try fold("Cast", [ints([3])], ["to": .int(1)])[0].floats, [3])
        XCTAssertThrowsError(try fold("Div", [ints([1]), ints([0])])) { XCTAssertTrue("\($0)".contains("division by zero"), "\($0)") }
    }

    func testConstantFoldingShapes() throws {
        let matrix = ints([0, 1, 2, 3, 4, 5], [2, 3])
        XCTAssertEqual(try fold("Gather", [matrix, ints([2, 0])], ["axis": .int(1)])[0].ints, [2, 0, 5, 3])
        XCTAssertEqual(try fold("Gather", [matrix, ints([-1], [])], ["axis": .int(0)])[0].dims, [3])
        XCTAssertEqual(try fold("Gather", [matrix, ints([-1], [])], ["axis": .int(0)])[0].ints, [3, 4, 5])
        XCTAssertEqual(try fold("Transpose", [matrix])[0].ints, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(try fold("Concat", [matrix, ints([9, 9], [2, 1])], ["axis": .int(1)])[0].ints, [0, 1, 2, 9, 3, 4, 5, 9])
        XCTAssertEqual(try fold("Concat", [ints([1]), ints([2, 3])], ["axis": .int(0)])[0].ints, [1, 2, 3])
        XCTAssertEqual(try fold("Slice", [ints([0, 1, 2, 3, 4, 5, 6]), ints([-1]), ints([Int64.min]), ints([0]), ints([-3])])[0].ints, [6, 3, 0])
        XCTAssertEqual(try fold("Slice", [matrix, ints([1]), ints([Int64.max]), ints([1])])[0].ints, [1, 2, 4, 5])
        XCTAssertEqual(try fold("Unsqueeze", [ints([7], []), ints([0])])[0].dims, [1])
        XCTAssertEqual(try fold("Unsqueeze", [ints([7], [])], ["axes": .ints([0, 1])], opset: 11)[0].dims, [1, 1])
        XCTAssertEqual(try fold("Squeeze", [ints([7], [1, 1]), ints([1])])[0].dims, [1])
        XCTAssertEqual(try fold("Squeeze", [ints([7], [1, 1])])[0].dims, [])
        XCTAssertEqual(try fold("Reshape", [matrix, ints([3, -1])])[0].dims, [3, 2])
        XCTAssertEqual(try fold("Flatten", [ints([1, 2, 3, 4], [1, 2, 2])], ["axis": .int(2)])[0].dims, [2, 2])
        XCTAssertEqual(try fold("Expand", [ints([1, 2], [2, 1]), ints([2, 3])])[0].ints, [1, 1, 1, 2, 2, 2])
        XCTAssertEqual(try fold("Range", [ints([1], []), ints([10], []), ints([4], [])])[0].ints, [1, 5, 9])
        XCTAssertEqual(try fold("Range", [floats([0], []), floats([1], []), floats([0.25], [])])[0].floats, [0, 0.25, 0.5, 0.75])
        let filled = try fold("ConstantOfShape", [ints([2, 3])], ["value": .tensor(ONNXTensor(dims: [1], ints: [7]))])[0]
        XCTAssertEqual(filled.dims, [2, 3])
        XCTAssertEqual(filled.ints, Array(repeating: 7, count: 6))
        XCTAssertEqual(try fold("ConstantOfShape", [ints([2])])[0].floats, [0, 0])
        XCTAssertEqual(try fold("Size", [matrix])[0].ints, [6])
        // A damaged file must not make us allocate gigabytes.
        XCTAssertThrowsError(try fold("ConstantOfShape", [ints([1 << 20, 1 << 20])])) { XCTAssertTrue("\($0)".contains("implausibly large"), "\($0)") }
        // Every operator accepted only on constants can be folded.
        for op in ConstantFolder.constantOnlyOperators { XCTAssertNotNil(ConstantFolder.rules[op], op) }
        // Data never folds: the operator's kernel (or refusal) decides.
        let n = ONNXNode(name: "n", opType: "Add", domain: "", inputs: ["a", "b"], outputs: ["y"], attributes: [:])
        XCTAssertNil(try ConstantFolder.fold(NodeContext(node: n, opset: 13, file: "f", inputs: [.runtime(shape: [1, 2]), .constant(ints([1]))])))
    }

    /// ShuffleNet's export computes the channel split's bounds and the shuffle's shapes from
    /// the data's shape: Shape → Gather → Div → Cast → Unsqueeze → Concat → Reshape, and
    /// Add/Div/Mul → Slice. All of it folds at load; the result is a plain split and shuffle.
    func testShapeSubgraphsFoldAtLoad() throws {
        let c = 6, h = 2, w = 3
        var inits: [ONNXTensor] = []
        func constant(_ name: String, _ v: [Int64], _ dims: [Int]? = nil) -> String {
            inits.append(ONNXTensor(name: name, dims: dims ?? [v.count], ints: v)); return name
        }
        let nodes: [ONNXNode] = [
            node("Relu", "relu", ["x"]),
            node("Shape", "shape", ["relu"]),
            node("Gather", "channels", ["shape", constant("one", [1], [])], ["axis": .int(0)]),
            node("Gather", "batch", ["shape", constant("zero", [0], [])], ["axis": .int(0)]),
            node("Div", "half", ["channels", constant("two", [2], [])]),
            node("Cast", "half64", ["half"], ["to": .int(7)]),
            node("Unsqueeze", "u0", ["batch", constant("ax", [0])]),
            node("Unsqueeze", "u2", ["half64", "ax"]),
            node("Concat", "target", ["u0", constant("g", [2]), "u2", constant("hw", [Int64(h), Int64(w)])], ["axis": .int(0)]),
            node("Reshape", "r5", ["relu", "target"]),
            node("Transpose", "t", ["r5"], ["perm": .ints([0, 2, 1, 3, 4])]),
            node("Concat", "back", ["u0", constant("m1", [-1]), "hw"], ["axis": .int(0)]),
            node("Reshape", "shuffled", ["t", "back"]),
            // The second half of the shuffled channels: starts (C+1)/2·1, ends (C+1)/2·2.
            node("Shape", "shape2", ["shuffled"]),
            node("Gather", "c2", ["shape2", constant("one1", [1])], ["axis": .int(0)]),
            node("Add", "c2p1", ["c2", constant("one2", [1])]),
            node("Div", "h2", ["c2p1", constant("two1", [2])]),
            node("Mul", "start", ["h2", constant("one3", [1])]),
            node("Mul", "end", ["h2", constant("two2", [2])]),
            node("Slice", "second", ["shuffled", "start", "end", "one1"]),
            node("Sigmoid", "out", ["second"]),
        ]
        let m = flattened(nodes, inits, input: [c, h, w], tapped: "out")
        let net = try Network(model: m)
        XCTAssertEqual(net.taps.map(\.name), ["input", "relu", "t", "second", "out"],
                       "shape arithmetic folds away; Transpose and Slice are taps (SPEC §2)")
        XCTAssertEqual(net.taps.last?.shape, [3, h, w])
        for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
            let out = try execute(m, count: plan.count, capacity: plan.capacity)
            let relu = Tensor([plan.count, c, h, w], floats: out.tap("relu"))
            // Shuffled channel k is channel (k mod 2)·3 + k/2; the slice keeps k = 3, 4, 5.
            let ref = refGather(relu, outputShape: [plan.count, 3, h, w], source: { i in
                let k = i[1] + 3
                return [i[0], (k % 2) * 3 + k / 2, i[2], i[3]]
            })
            assertClose(out.tap("out"), ref.map { 1 / (1 + exp(-$0)) }, "folded split and shuffle")
        }
    }

    /// `torch.onnx.export(model, x, path)` without dynamic axes fixes the batch at 1 and folds
    /// Reshape targets to constants like [1, 2, 3, 2, 3]; planned for more images they still
    /// reshape each image.
    func testFixedBatchReshapeRunsAnyBatch() throws {
        let target = ONNXTensor(name: "t", dims: [5], ints: [1, 2, 3, 2, 3])
        let back = ONNXTensor(name: "b", dims: [2], ints: [1, -1])
        let nodes = [
            node("Reshape", "r5", ["x", "t"]),
            node("Transpose", "tr", ["r5"], ["perm": .ints([0, 2, 1, 3, 4])]),
            node("Reshape", "flat", ["tr", "b"], outputs: ["logits"]),
        ]
        var m = model(nodes, [target, back], input: [6, 2, 3], output: "logits")
        m.graph.inputs[0].dims = [.value(1), .value(6), .value(2), .value(3)]
        for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
            let out = try execute(m, count: plan.count, capacity: plan.capacity)
            let x = Tensor([plan.count, 6, 2, 3], floats: out.input)
            let ref = refGather(x, outputShape: [plan.count, 3, 2, 2, 3], source: { i in [i[0], i[2] * 3 + i[1], i[3], i[4]] })
            assertClose(out.logits, ref, tolerance: 0, "fixed-batch reshape at capacity \(plan.capacity)")
        }
        // With a symbolic batch, the same constant target moves the batch: refused as before.
        let dynamic = model(nodes, [target, back], input: [6, 2, 3], output: "logits")
        let net = try Network(model: dynamic)
        XCTAssertThrowsError(try net.makeExecutor(capacity: 2)) { XCTAssertTrue("\($0)".contains("'r5'"), "\($0)") }
    }

    func testShapeOperatorsOnDataAreRefusedByName() throws {
        let cases: [(ONNXNode, [ONNXTensor])] = [
            (node("Range", "range_data", ["x", "x", "x"]), []),
            (node("Equal", "equal_data", ["x", "x"]), []),
            (node("Cast", "cast_data", ["x"], ["to": .int(7)]), []),
            (node("Squeeze", "squeeze_batch", ["x", "zero"]), [ONNXTensor(name: "zero", dims: [1], ints: [0])]),
            (node("Unsqueeze", "unsqueeze_batch", ["x", "zero"]), [ONNXTensor(name: "zero", dims: [1], ints: [0])]),
        ]
        for (n, inits) in cases {
            let m = flattened([n], inits, input: [2, 3], tapped: n.name)
            XCTAssertThrowsError(try Network(model: m)) { error in
                XCTAssertTrue("\(error)".contains(n.name) && "\(error)".contains(n.opType), "\(error)")
                // Refused when the model loads (planned for one image), not only for larger batches.
            }
        }
    }
}

/// Resize and Upsample against the ONNX definition, evaluated here per output
/// pixel (in float32, as ONNX Runtime computes the coordinates: in double some
/// coordinates land on the other side of an integer).
final class ResizeTests: XCTestCase {
    func reference(_ x: Tensor, out: [Int], scales: [Float], linear: Bool, transformation: String, rounding: String) -> Tensor {
        func coordinate(_ o: Int, _ input: Int, _ output: Int, _ s: Float) -> Float {
            let d = Float(o)
            switch transformation {
            case "half_pixel": return (d + 0.5) / s - 0.5
            case "pytorch_half_pixel": return output > 1 ? (d + 0.5) / s - 0.5 : 0
            case "align_corners": return output > 1 ? d * Float(input - 1) / Float(output - 1) : 0
            case "tf_half_pixel_for_nn": return (d + 0.5) / s
            default: return d / s
            }
        }
        func nearest(_ v: Float, _ input: Int) -> Int {
            let f = v.rounded(.down)
            let i: Float
            switch rounding {
            case "floor": i = f
            case "ceil": i = v.rounded(.up)
            case "round_prefer_ceil": i = v - f == 0.5 ? f + 1 : v.rounded()
            default: i = v - f == 0.5 ? f : v.rounded()
            }
            return min(max(Int(i), 0), input - 1)
        }
        let h = x.shape[2], w = x.shape[3]
        var y = Tensor(zeros: out)
        for i in indices(out) {
            let cy = coordinate(i[2], h, out[2], scales[2]), cx = coordinate(i[3], w, out[3], scales[3])
            if linear {
                let py = min(max(cy, 0), Float(h - 1)), px = min(max(cx, 0), Float(w - 1))
                let y0 = Int(py.rounded(.down)), x0 = Int(px.rounded(.down))
                let y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
                let wy = Double(py - Float(y0)), wx = Double(px - Float(x0))
                let top = x[i[0], i[1], y0, x0] * (1 - wx) + x[i[0], i[1], y0, x1] * wx
                let bottom = x[i[0], i[1], y1, x0] * (1 - wx) + x[i[0], i[1], y1, x1] * wx
                y.data[y.offset(i)] = top * (1 - wy) + bottom * wy
            } else {
                y.data[y.offset(i)] = x[i[0], i[1], nearest(cy, h), nearest(cx, w)]
            }
        }
        return y
    }

    func testResizeModes() throws {
        let shape = [2, 5, 6]
        let transformations = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]
        let roundings = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
        let scaleCases: [[Float]] = [[1, 1, 0.6, 1.7], [1, 1, 2, 3], [1, 1, 0.5, 0.34], [1, 1, 1, 0.2]]
        var outputs: Set<[Float]> = []
        for transformation in transformations {
            for (mode, rounding) in roundings.map({ ("nearest", $0) }) + [("linear", "round_prefer_floor")] {
                if mode == "linear" && transformation == "tf_half_pixel_for_nn" { continue }
                for scales in scaleCases {
                    let s = ONNXTensor(name: "scales", dims: [4], floats: scales)
                    let m = flattened([node("Resize", "resize", ["x", "", "scales"], ["mode": .string(mode),
                                            "coordinate_transformation_mode": .string(transformation), "nearest_mode": .string(rounding)])],
                                      [s], input: shape, tapped: "resize", opset: 13)
                    let out = try execute(m, count: 2, capacity: 3)
                    let x = Tensor([2] + shape, floats: out.input)
                    let dims = [2, 2, Int(Double(5) * Double(scales[2])), Int(Double(6) * Double(scales[3]))]
                    let ref = reference(x, out: dims, scales: scales, linear: mode == "linear", transformation: transformation, rounding: rounding)
                    assertClose(out.tap("resize"), ref, tolerance: 1e-6, "Resize \(mode) \(transformation) \(rounding) \(scales)")
                    outputs.insert(out.tap("resize"))
                }
            }
        }
        XCTAssertGreaterThanOrEqual(outputs.count, 30, "the modes give different results (38 distinct of 84)")
        // Sizes instead of scales: the scale is out/in.
        let sizes = ONNXTensor(name: "sizes", dims: [4], ints: [1, 2, 3, 9])
        let m = flattened([node("Resize", "resize", ["x", "", "", "sizes"], ["mode": .string("linear")])], [sizes],
                          input: shape, tapped: "resize", opset: 13)
        let out = try execute(m, count: 1)
        assertClose(out.tap("resize"), reference(Tensor([1] + shape, floats: out.input), out: [1, 2, 3, 9], scales: [1, 1, 0.6, 1.5],
                                                 linear: true, transformation: "half_pixel", rounding: ""), tolerance: 1e-6, "Resize by sizes")
        XCTAssertTrue(out.network.taps.contains { $0.opType == "Resize" }, "Resize computes new values: a tap")
    }

    /// Before opset 11 (Upsample, Resize-10): asymmetric coordinates; nearest takes the floor
    /// when enlarging and the ceiling when shrinking (ONNX Runtime).
    func testUpsampleAndResize10() throws {
        let shape = [1, 4, 6]
        let up7 = flattened([node("Upsample", "up", ["x"], ["mode": .string("nearest"), "scales": .floats([1, 1, 2, 1.5])])],
                            input: shape, tapped: "up", opset: 7)
        let out7 = try execute(up7, count: 2)
        assertClose(out7.tap("up"), reference(Tensor([2] + shape, floats: out7.input), out: [2, 1, 8, 9], scales: [1, 1, 2, 1.5],
                                              linear: false, transformation: "asymmetric", rounding: "floor"), tolerance: 0, "Upsample-7")
        let scales = ONNXTensor(name: "s", dims: [4], floats: [1, 1, 0.5, 0.5])
        let down10 = flattened([node("Resize", "down", ["x", "s"], ["mode": .string("nearest")])], [scales], input: shape, tapped: "down", opset: 10)
        let out10 = try execute(down10, count: 1)
        assertClose(out10.tap("down"), reference(Tensor([1] + shape, floats: out10.input), out: [1, 1, 2, 3], scales: [1, 1, 0.5, 0.5],
                                                 linear: false, transformation: "asymmetric", rounding: "ceil"), tolerance: 0, "Resize-10 shrinking")
        let up9 = flattened([node("Upsample", "up9", ["x", "s2"], ["mode": .string("linear")])],
                            [ONNXTensor(name: "s2", dims: [4], floats: [1, 1, 1.5, 2])], input: shape, tapped: "up9", opset: 9)
        let out9 = try execute(up9, count: 1)
        assertClose(out9.tap("up9"), reference(Tensor([1] + shape, floats: out9.input), out: [1, 1, 6, 12], scales: [1, 1, 1.5, 2],
                                               linear: true, transformation: "asymmetric", rounding: ""), tolerance: 1e-6, "Upsample-9 linear")
    }

    func testResizeRefusals() throws {
        let scales = ONNXTensor(name: "s", dims: [4], floats: [1, 1, 2, 2])
        let channels = ONNXTensor(name: "c", dims: [4], floats: [1, 2, 1, 1])
        let cases: [(String, [String: ONNXAttribute], ONNXTensor)] = [
            ("resize_cubic", ["mode": .string("cubic")], scales),
            ("resize_crop", ["coordinate_transformation_mode": .string("tf_crop_and_resize")], scales),
            ("resize_channels", [:], channels),
        ]
        for (name, attrs, s) in cases {
            let m = flattened([node("Resize", name, ["x", "", "s"], attrs)], [s], input: [2, 3, 3], tapped: name, opset: 13)
            XCTAssertThrowsError(try Network(model: m)) { XCTAssertTrue("\($0)".contains(name), "\($0)") }
        }
    }
}
