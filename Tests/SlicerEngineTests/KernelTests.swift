import Foundation
import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

// Unit tests of the engine's operators against naive references written here:
// plain loops over explicit indices, accumulated in Double, following the ONNX
// operator definitions. Each test builds a small ONNX graph in memory, runs it
// through Network/Executor and reads the operator's output through the tap
// observer.

// MARK: - Deterministic data

/// splitmix64, so that every run sees the same inputs and weights.
private struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x1234_5678 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ range: ClosedRange<Float>) -> Float {
        let u = Float(next() >> 40) / Float(1 << 24)
        return range.lowerBound + (range.upperBound - range.lowerBound) * u
    }
}

func randomFloats(_ count: Int, seed: UInt64, in range: ClosedRange<Float> = -1...1) -> [Float] {
    var rng = SplitMix(seed)
    return (0..<count).map { _ in rng.uniform(range) }
}

func randomTensor(_ name: String, _ dims: [Int], seed: UInt64, in range: ClosedRange<Float> = -1...1) -> ONNXTensor {
    ONNXTensor(name: name, dims: dims, floats: randomFloats(dims.reduce(1, *), seed: seed, in: range))
}

// MARK: - Building and running models

extension Executor {
    /// The outputs of `count` images of `x` (`perImage` floats each), run in
    /// batches of at most `capacity`, concatenated; `afterBatch` sees the
    /// executor after each batch (to check which plan ran).
    func outputs(_ x: [Float], count: Int, capacity: Int, perImage: Int,
                 afterBatch: (Executor) -> Void = { _ in }) -> [Float] {
        var out: [Float] = []
        var start = 0
        x.withUnsafeBufferPointer { buffer in
            while start < count {
                let n = min(capacity, count - start)
                out += Array(run(input: UnsafeBufferPointer(rebasing: buffer[(start * perImage)..<((start + n) * perImage)]), count: n))
                afterBatch(self)
                start += n
            }
        }
        return out
    }
}

func node(_ op: String, _ name: String, _ inputs: [String], _ attributes: [String: ONNXAttribute] = [:],
                  outputs: [String]? = nil, domain: String = "") -> ONNXNode {
    ONNXNode(name: name, opType: op, domain: domain, inputs: inputs, outputs: outputs ?? [name], attributes: attributes)
}

let testModelPath = "/tmp/kernel-tests/model.onnx"

/// A model with data input "x" of per-image shape `input` whose output is `output`.
func model(_ nodes: [ONNXNode], _ initializers: [ONNXTensor] = [], input: [Int], output: String,
                   opset: Int = 13) -> ONNXModel {
    var inits: [String: ONNXTensor] = [:]
    for t in initializers { inits[t.name] = t }
    let graph = ONNXGraph(
        name: "kernel-test", nodes: nodes, initializers: inits,
        inputs: [ONNXValueInfo(name: "x", elementType: .float, dims: [.symbolic("N")] + input.map { .value($0) })],
        outputs: [ONNXValueInfo(name: output, elementType: .float, dims: nil)])
    return ONNXModel(path: testModelPath, irVersion: 8, opsetVersion: opset, producerName: "KernelTests",
                     producerVersion: "1", graph: graph, metadata: [])
}

/// As `model`, with a Flatten(axis 1) appended after tensor `tapped` so that the
/// graph ends in the rank-2 output a Network requires.
func flattened(_ nodes: [ONNXNode], _ initializers: [ONNXTensor] = [], input: [Int], tapped: String,
                       opset: Int = 13) -> ONNXModel {
    model(nodes + [node("Flatten", "kt_flatten", [tapped], ["axis": .int(1)], outputs: ["logits"])],
          initializers, input: input, output: "logits", opset: opset)
}

struct Outcome {
    let network: Network
    let input: [Float]
    let logits: [Float]
    /// Values of every tap seen by the observer, by tap name.
    let values: [String: [Float]]
    let shapes: [String: [Int]]

    func tap(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> [Float] {
        guard let v = values[name] else {
            XCTFail("no tap named \(name); taps: \(network.taps.map(\.name))", file: file, line: line)
            return []
        }
        return v
    }
}

/// Runs `count` images (random in `range` unless `input` is given) through an
/// executor of the given capacity and records every tap.
func execute(_ m: ONNXModel, count: Int, capacity: Int? = nil, seed: UInt64 = 7,
                     range: ClosedRange<Float> = -1...1, input: [Float]? = nil,
                     mask: AblationMask = AblationMask()) throws -> Outcome {
    let net = try Network(model: m)
    let perImage = net.inputShape.reduce(1, *)
    let x = input ?? randomFloats(count * perImage, seed: seed, in: range)
    precondition(x.count == count * perImage)
    let executor = try net.makeExecutor(capacity: capacity ?? count)
    let names = net.taps.map(\.name)
    var values: [String: [Float]] = [:], shapes: [String: [Int]] = [:]
    var badBatch = false
    let logits = x.withUnsafeBufferPointer { buffer in
        Array(executor.run(input: buffer, count: count, mask: mask) { a in
            // Large images come a chunk at a time: in order, each starting where the last ended.
            let perImage = a.shape.reduce(1, *), seen = values[names[a.tap], default: []].count
            if a.firstImage * perImage != seen || a.firstImage + a.batch > count || a.values.count != a.batch * perImage {
                badBatch = true
            }
            values[names[a.tap], default: []] += Array(a.values)
            shapes[names[a.tap]] = a.shape
        })
    }
    XCTAssertFalse(badBatch, "observer saw a batch or value count that does not match the run")
    for (name, v) in values where v.count != count * (shapes[name]?.reduce(1, *) ?? 0) {
        XCTFail("tap \(name): the observer saw \(v.count) values")
    }
    XCTAssertEqual(logits.count, count * net.classCount)
    return Outcome(network: net, input: x, logits: logits, values: values, shapes: shapes)
}

/// (count, capacity) pairs: single image, full batch, partial last batch.
let batchPlans: [(count: Int, capacity: Int)] = [(1, 1), (3, 3), (3, 5), (5, 5)]

// MARK: - Reference tensors and operators

/// A dense row-major tensor of Doubles, batch axis included.
struct Tensor {
    var shape: [Int]
    var data: [Double]

    init(_ shape: [Int], _ data: [Double]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) for \(data.count) values")
        self.shape = shape; self.data = data
    }
    init(_ shape: [Int], floats: [Float]) { self.init(shape, floats.map(Double.init)) }
    init(zeros shape: [Int]) { self.init(shape, Array(repeating: 0, count: shape.reduce(1, *))) }
    init(_ t: ONNXTensor) { self.init(t.dims, t.floatValues.map(Double.init)) }

    func offset(_ index: [Int]) -> Int {
        var o = 0
        for (i, d) in zip(index, shape) { o = o * d + i }
        return o
    }
    subscript(_ index: Int...) -> Double {
        get { data[offset(index)] }
        set { data[offset(index)] = newValue }
    }
    func map(_ f: (Double) -> Double) -> Tensor { Tensor(shape, data.map(f)) }
    func reshaped(_ s: [Int]) -> Tensor { Tensor(s, data) }
}

/// Every multi-index of `shape` in row-major order.
func indices(_ shape: [Int]) -> [[Int]] {
    var all: [[Int]] = []
    guard shape.allSatisfy({ $0 > 0 }) else { return all }
    var index = [Int](repeating: 0, count: shape.count)
    while true {
        all.append(index)
        var axis = shape.count - 1
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < shape[axis] { break }
            index[axis] = 0
            axis -= 1
        }
        if axis < 0 { return all }
    }
}

/// max |a − b| / max(1, max |b|) ≤ tolerance; non-finite results count as failures.
func assertClose(_ got: [Float], _ want: Tensor, tolerance: Double = 1e-5, _ message: String,
                         file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.data.count, "\(message): value count", file: file, line: line)
    guard got.count == want.data.count else { return }
    var worst = 0.0, scale = 1.0
    for (g, w) in zip(got, want.data) {
        let d = abs(Double(g) - w)
        worst = (g.isFinite && d.isFinite) ? max(worst, d) : .infinity
        scale = max(scale, abs(w))
    }
    XCTAssertLessThanOrEqual(worst / scale, tolerance, message, file: file, line: line)
}

/// True when the two results differ noticeably (used to show a test can tell cases apart).
func differ(_ a: [Float], _ b: [Float]) -> Bool {
    a.count != b.count || zip(a, b).contains { abs($0 - $1) > 1e-3 }
}

/// ONNX Conv. `pads` = [top, left, bottom, right].
private func refConv(_ x: Tensor, _ w: ONNXTensor, _ b: ONNXTensor?, group: Int = 1, strides: [Int] = [1, 1],
                     pads: [Int] = [0, 0, 0, 0], dilations: [Int] = [1, 1]) -> Tensor {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (m, cg, kh, kw) = (w.dims[0], w.dims[1], w.dims[2], w.dims[3])
    precondition(cg * group == c && m % group == 0)
    let mg = m / group
    let oh = (h + pads[0] + pads[2] - (kh - 1) * dilations[0] - 1) / strides[0] + 1
    let ow = (wd + pads[1] + pads[3] - (kw - 1) * dilations[1] - 1) / strides[1] + 1
    var y = Tensor(zeros: [n, m, oh, ow])
    for i in 0..<n {
        for o in 0..<m {
            let g = o / mg
            for r in 0..<oh {
                for q in 0..<ow {
                    var s = b.map { Double($0.floats[o]) } ?? 0
                    for ci in 0..<cg {
                        for ki in 0..<kh {
                            for kj in 0..<kw {
                                let ih = r * strides[0] - pads[0] + ki * dilations[0]
                                let iw = q * strides[1] - pads[1] + kj * dilations[1]
                                if ih < 0 || ih >= h || iw < 0 || iw >= wd { continue }
                                s += x.data[((i * c + g * cg + ci) * h + ih) * wd + iw]
                                    * Double(w.floats[((o * cg + ci) * kh + ki) * kw + kj])
                            }
                        }
                    }
                    y.data[((i * m + o) * oh + r) * ow + q] = s
                }
            }
        }
    }
    return y
}

/// ONNX auto_pad SAME_*: output ceil(in / stride); the odd pad goes at the end (UPPER) or the start (LOWER).
private func samePads(input: Int, kernel: Int, stride: Int, dilation: Int, upper: Bool) -> (begin: Int, end: Int) {
    let out = (input + stride - 1) / stride
    let total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - input)
    let begin = upper ? total / 2 : (total + 1) / 2
    return (begin, total - begin)
}

/// ONNX pooling output size; with ceil_mode, a last window starting in the right padding is dropped.
private func poolOutput(_ input: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int, ceil: Bool) -> Int {
    let span = input + padBegin + padEnd - ((kernel - 1) * dilation + 1)
    var out = (ceil ? (span + stride - 1) / stride : span / stride) + 1
    if ceil && (out - 1) * stride >= input + padBegin { out -= 1 }
    return out
}

/// MaxPool / AveragePool. With count_include_pad the divisor counts window positions
/// inside the padded extent [−padBegin, input + padEnd) (a ceil_mode window that hangs
/// past it counts only the part inside, as PyTorch and ONNX Runtime do).
private func refPool(_ x: Tensor, isMax: Bool, kernel: [Int], strides: [Int] = [1, 1], pads: [Int] = [0, 0, 0, 0],
                     dilations: [Int] = [1, 1], ceil: Bool = false, includePad: Bool = false) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let oh = poolOutput(h, kernel: kernel[0], stride: strides[0], dilation: dilations[0], padBegin: pads[0], padEnd: pads[2], ceil: ceil)
    let ow = poolOutput(w, kernel: kernel[1], stride: strides[1], dilation: dilations[1], padBegin: pads[1], padEnd: pads[3], ceil: ceil)
    var y = Tensor(zeros: [n, c, oh, ow])
    for i in 0..<n {
        for ch in 0..<c {
            for r in 0..<oh {
                for q in 0..<ow {
                    var best = -Double.infinity, sum = 0.0, valid = 0, padded = 0
                    for ki in 0..<kernel[0] {
                        for kj in 0..<kernel[1] {
                            let ih = r * strides[0] - pads[0] + ki * dilations[0]
                            let iw = q * strides[1] - pads[1] + kj * dilations[1]
                            if ih < h + pads[2] && iw < w + pads[3] { padded += 1 }
                            if ih < 0 || ih >= h || iw < 0 || iw >= w { continue }
                            let v = x[i, ch, ih, iw]
                            best = max(best, v)
                            sum += v
                            valid += 1
                        }
                    }
                    y[i, ch, r, q] = isMax ? best : sum / Double(includePad ? padded : valid)
                }
            }
        }
    }
    return y
}

private func refGlobalPool(_ x: Tensor, isMax: Bool) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    var y = Tensor(zeros: [n, c, 1, 1])
    for i in 0..<n {
        for ch in 0..<c {
            var best = -Double.infinity, sum = 0.0
            for r in 0..<h { for q in 0..<w { best = max(best, x[i, ch, r, q]); sum += x[i, ch, r, q] } }
            y[i, ch, 0, 0] = isMax ? best : sum / Double(h * w)
        }
    }
    return y
}

private func refBatchNorm(_ x: Tensor, scale: ONNXTensor, bias: ONNXTensor, mean: ONNXTensor, variance: ONNXTensor,
                          epsilon: Double) -> Tensor {
    var y = x
    for index in indices(x.shape) {
        let c = index[1]
        let v = (x.data[x.offset(index)] - Double(mean.floats[c])) / (Double(variance.floats[c]) + epsilon).squareRoot()
        y.data[y.offset(index)] = Double(scale.floats[c]) * v + Double(bias.floats[c])
    }
    return y
}

/// Numpy-style broadcasting of a binary operator.
func refBinary(_ a: Tensor, _ b: Tensor, _ f: (Double, Double) -> Double) -> Tensor {
    let rank = max(a.shape.count, b.shape.count)
    let sa = Array(repeating: 1, count: rank - a.shape.count) + a.shape
    let sb = Array(repeating: 1, count: rank - b.shape.count) + b.shape
    let out = (0..<rank).map { max(sa[$0], sb[$0]) }
    let pa = Tensor(sa, a.data), pb = Tensor(sb, b.data)
    var y = Tensor(zeros: out)
    for index in indices(out) {
        let ia = (0..<rank).map { sa[$0] == 1 ? 0 : index[$0] }
        let ib = (0..<rank).map { sb[$0] == 1 ? 0 : index[$0] }
        y.data[y.offset(index)] = f(pa.data[pa.offset(ia)], pb.data[pb.offset(ib)])
    }
    return y
}

/// Softmax over the axes `axes` (a contiguous range) jointly, every other index fixed.
func refSoftmax(_ x: Tensor, axes: Range<Int>) -> Tensor {
    var y = x
    let outer = x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
    let inner = x.shape.enumerated().map { axes.contains($0.offset) ? $0.element : 1 }
    for o in indices(outer) {
        let members = indices(inner).map { i in x.offset(zip(o, i).map { $0 + $1 }) }
        let m = members.map { x.data[$0] }.max()!
        let total = members.reduce(0.0) { $0 + exp(x.data[$1] - m) }
        for k in members { y.data[k] = exp(x.data[k] - m) / total }
    }
    return y
}

private func refConcat(_ parts: [Tensor], axis: Int) -> Tensor {
    var shape = parts[0].shape
    shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
    var y = Tensor(zeros: shape)
    var start = 0
    for p in parts {
        for index in indices(p.shape) {
            var target = index
            target[axis] += start
            y.data[y.offset(target)] = p.data[p.offset(index)]
        }
        start += p.shape[axis]
    }
    return y
}

/// Gemm: alpha·A·op(B) + beta·C, C broadcast to [N, F].
private func refGemm(_ a: Tensor, _ b: ONNXTensor, transB: Bool, alpha: Double, beta: Double, c: ONNXTensor?) -> Tensor {
    let n = a.shape[0], k = a.shape[1]
    let f = transB ? b.dims[0] : b.dims[1]
    var y = Tensor(zeros: [n, f])
    for i in 0..<n {
        for j in 0..<f {
            var s = 0.0
            for t in 0..<k { s += a[i, t] * Double(transB ? b.floats[j * k + t] : b.floats[t * f + j]) }
            var bias = 0.0
            if let c {
                let cd = Array(repeating: 1, count: 2 - c.dims.count) + c.dims
                bias = Double(c.floats[(cd[0] == 1 ? 0 : i) * cd[1] + (cd[1] == 1 ? 0 : j)])
            }
            y[i, j] = alpha * s + beta * bias
        }
    }
    return y
}

/// Data of shape [N, ..., K] times a constant [K, F].
private func refMatMul(_ a: Tensor, _ b: ONNXTensor) -> Tensor {
    let k = b.dims[0], f = b.dims[1]
    let rows = a.data.count / k
    var out = Array(repeating: 0.0, count: rows * f)
    for r in 0..<rows {
        for j in 0..<f {
            var s = 0.0
            for t in 0..<k { s += a.data[r * k + t] * Double(b.floats[t * f + j]) }
            out[r * f + j] = s
        }
    }
    return Tensor(Array(a.shape.dropLast()) + [f], out)
}

private func relu(_ v: Double) -> Double { max(v, 0) }
private func sigmoid(_ v: Double) -> Double { 1 / (1 + exp(-v)) }

// MARK: - Tests

final class KernelTests: XCTestCase {

    // MARK: Conv

    private struct ConvCase {
        var label: String
        var input: [Int]           // C, H, W
        var weight: [Int]          // M, C/G, kh, kw
        var bias = true
        var group = 1
        var strides: [Int]?
        var pads: [Int]?
        var dilations: [Int]?
        var autoPad: String?
    }

    /// Builds, runs and checks one convolution at several batch plans; returns the
    /// output of the last plan and the plan's Conv kernel.
    @discardableResult
    private func checkConv(_ cc: ConvCase, plans: [(count: Int, capacity: Int)] = batchPlans,
                           file: StaticString = #filePath, line: UInt = #line) throws -> (values: [Float], kernel: ConvKernel?) {
        let w = randomTensor("W", cc.weight, seed: 11, in: -0.5...0.5)
        let b = randomTensor("B", [cc.weight[0]], seed: 12)
        var attrs: [String: ONNXAttribute] = ["group": .int(cc.group)]
        if let s = cc.strides { attrs["strides"] = .ints(s) }
        if let p = cc.pads { attrs["pads"] = .ints(p) }
        if let d = cc.dilations { attrs["dilations"] = .ints(d) }
        if let a = cc.autoPad { attrs["auto_pad"] = .string(a) }
        let conv = node("Conv", "conv", cc.bias ? ["x", "W", "B"] : ["x", "W"], attrs)
        let m = flattened([conv], cc.bias ? [w, b] : [w], input: cc.input, tapped: "conv")
        let strides = cc.strides ?? [1, 1], dilations = cc.dilations ?? [1, 1]
        var pads = cc.pads ?? [0, 0, 0, 0]
        if let a = cc.autoPad, a.hasPrefix("SAME") {
            let ph = samePads(input: cc.input[1], kernel: cc.weight[2], stride: strides[0], dilation: dilations[0], upper: a == "SAME_UPPER")
            let pw = samePads(input: cc.input[2], kernel: cc.weight[3], stride: strides[1], dilation: dilations[1], upper: a == "SAME_UPPER")
            pads = [ph.begin, pw.begin, ph.end, pw.end]
        } else if cc.autoPad == "VALID" {
            pads = [0, 0, 0, 0]
        }
        var last: [Float] = []
        var kernel: ConvKernel?
        for plan in plans {
            let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: UInt64(plan.count * 31 + plan.capacity))
            let ref = refConv(Tensor([plan.count] + cc.input, floats: out.input), w, cc.bias ? b : nil,
                              group: cc.group, strides: strides, pads: pads, dilations: dilations)
            XCTAssertEqual(out.shapes["conv"], Array(ref.shape.dropFirst()), "\(cc.label): output shape", file: file, line: line)
            assertClose(out.tap("conv"), ref, "\(cc.label), \(plan.count) images at capacity \(plan.capacity)", file: file, line: line)
            assertClose(out.logits, ref, "\(cc.label): logits (flattened conv)", file: file, line: line)
            last = out.tap("conv")
            let executor = try out.network.makeExecutor(capacity: plan.capacity)
            kernel = executor.plan.steps.first?.kernel as? ConvKernel
        }
        return (last, kernel)
    }

    func testConvStridesPadsDilationsBias() throws {
        let cases = [
            ConvCase(label: "3x3 pad 1 with bias", input: [3, 7, 6], weight: [4, 3, 3, 3], pads: [1, 1, 1, 1]),
            ConvCase(label: "3x3 no pads, no bias", input: [2, 6, 7], weight: [3, 2, 3, 3], bias: false),
            ConvCase(label: "asymmetric pads", input: [2, 6, 5], weight: [3, 2, 3, 2], pads: [0, 2, 1, 0]),
            ConvCase(label: "strides 2x1", input: [2, 9, 8], weight: [3, 2, 3, 3], strides: [2, 1], pads: [1, 0, 1, 2]),
            ConvCase(label: "strides 3 with pads", input: [1, 10, 11], weight: [2, 1, 3, 3], strides: [3, 3], pads: [2, 1, 0, 1]),
            ConvCase(label: "dilations 2x3", input: [2, 11, 12], weight: [3, 2, 3, 3], pads: [2, 3, 1, 0], dilations: [2, 3]),
            ConvCase(label: "dilation and stride", input: [2, 12, 12], weight: [2, 2, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [2, 2]),
            ConvCase(label: "one image per GEMM (17x17)", input: [3, 17, 17], weight: [4, 3, 3, 3], pads: [1, 1, 1, 1]),
            ConvCase(label: "rectangular kernel 1x3", input: [2, 5, 9], weight: [3, 2, 1, 3], pads: [0, 1, 0, 1]),
            // Stride 2 over rows long enough for the vectorised column gather (32 inputs → 16 columns) and its tail.
            ConvCase(label: "stride 2 on 70 columns", input: [3, 9, 70], weight: [5, 3, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
            ConvCase(label: "7x7 stride 2 stem", input: [3, 21, 45], weight: [8, 3, 7, 7], strides: [2, 2], pads: [3, 3, 3, 3]),
            ConvCase(label: "1x1 stride 2 on 67 columns", input: [40, 5, 67], weight: [9, 40, 1, 1], strides: [2, 2]),
        ]
        for cc in cases { try checkConv(cc) }
    }

    func testConvGroups() throws {
        let cases = [
            ConvCase(label: "2 groups", input: [4, 6, 6], weight: [6, 2, 3, 3], group: 2,
                     strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2]),
            ConvCase(label: "depthwise", input: [4, 8, 7], weight: [4, 1, 3, 3], group: 4, strides: [2, 2], pads: [1, 1, 1, 1]),
            ConvCase(label: "depthwise without bias", input: [3, 6, 6], weight: [3, 1, 3, 3], bias: false, group: 3, pads: [1, 1, 1, 1]),
            ConvCase(label: "depth multiplier 2", input: [3, 5, 6], weight: [6, 1, 2, 2], group: 3),
            ConvCase(label: "3 groups large image", input: [6, 16, 17], weight: [3, 2, 3, 3], group: 3, pads: [1, 1, 1, 1]),
        ]
        for cc in cases { try checkConv(cc) }
    }

    func testDepthwiseConvRunsDirectly() throws {
        // One input channel per group runs the direct kernel (DepthwiseConvolution.swift):
        // rows longer than one vector with a tail, strides split into column
        // phases, dilations, asymmetric pads, larger kernels and depth multipliers.
        let cases = [
            ConvCase(label: "depthwise stride 2, 37x35", input: [5, 37, 35], weight: [5, 1, 3, 3], group: 5,
                     strides: [2, 2], pads: [1, 1, 1, 1]),
            ConvCase(label: "depthwise 3x3 on 40x40, no bias", input: [3, 40, 40], weight: [3, 1, 3, 3], bias: false,
                     group: 3, pads: [1, 1, 1, 1]),
            ConvCase(label: "depthwise dilated, strides 1x3", input: [3, 20, 41], weight: [3, 1, 3, 3], group: 3,
                     strides: [1, 3], pads: [2, 0, 1, 2], dilations: [2, 2]),
            ConvCase(label: "depthwise 5x5, multiplier 2", input: [2, 18, 33], weight: [4, 1, 5, 5], group: 2,
                     pads: [2, 2, 2, 2]),
            ConvCase(label: "depthwise 7x7 output", input: [6, 14, 14], weight: [6, 1, 3, 3], group: 6,
                     strides: [2, 2], pads: [1, 1, 1, 1]),
        ]
        for cc in cases {
            let result = try checkConv(cc)
            XCTAssertNotNil(result.kernel?.depthwise, "\(cc.label): the direct depthwise kernel")
        }
        // Grouped convolutions with several channels per group keep the product.
        let grouped = try checkConv(ConvCase(label: "2 channels per group", input: [4, 6, 6], weight: [4, 2, 3, 3], group: 2,
                                             pads: [1, 1, 1, 1]))
        XCTAssertNil(grouped.kernel?.depthwise)
    }

    func testConvPointwise() throws {
        // Stride 1: multiplied straight from the (padded) image, no column matrix.
        let direct = try checkConv(ConvCase(label: "1x1 on 12x12", input: [5, 12, 12], weight: [3, 5, 1, 1]))
        XCTAssertEqual(direct.kernel?.readsPaddedInput, true)
        let small = try checkConv(ConvCase(label: "1x1 on 4x4", input: [5, 4, 4], weight: [3, 5, 1, 1], bias: false))
        XCTAssertEqual(small.kernel?.readsPaddedInput, true)
        try checkConv(ConvCase(label: "1x1 grouped", input: [4, 12, 12], weight: [6, 2, 1, 1], group: 2))
        // Strided: through im2col columns.
        let strided = try checkConv(ConvCase(label: "1x1 stride 2", input: [3, 9, 9], weight: [2, 3, 1, 1], strides: [2, 2]))
        XCTAssertEqual(strided.kernel?.readsPaddedInput, false)
        try checkConv(ConvCase(label: "1x1 padded", input: [3, 4, 5], weight: [2, 3, 1, 1], pads: [1, 0, 0, 1]))
    }

    func testConvShiftedCopies() throws {
        // "Same" stride-1 convolutions on planes up to 32 wide multiply from
        // one copy per kernel column with the wrapped columns zeroed (no
        // padded columns): whole vectors of pixels straight into the output
        // (8×8, 16×16 with 2 groups), tails and 13 filters through the
        // staging rows, one channel, a plane as narrow as the kernel,
        // asymmetric "same" pads (shifts −1…3 of a 5×5, all-left and all-top pads).
        let cases = [
            ConvCase(label: "3x3 on 8x8, 16 filters", input: [16, 8, 8], weight: [16, 16, 3, 3], pads: [1, 1, 1, 1]),
            ConvCase(label: "3x3 on 8x8, 13 filters, no bias", input: [5, 8, 8], weight: [13, 5, 3, 3], bias: false,
                     pads: [1, 1, 1, 1]),
            ConvCase(label: "3x3 on 16x16, 2 groups", input: [4, 16, 16], weight: [16, 2, 3, 3], group: 2, pads: [1, 1, 1, 1]),
            ConvCase(label: "3x3 on 32x32, 1 channel", input: [1, 32, 32], weight: [8, 1, 3, 3], pads: [1, 1, 1, 1]),
            ConvCase(label: "3x3 on 5x7, 1 channel", input: [1, 5, 7], weight: [3, 1, 3, 3], pads: [1, 1, 1, 1]),
            ConvCase(label: "3x3 on 3x3", input: [2, 3, 3], weight: [4, 2, 3, 3], pads: [1, 1, 1, 1]),
            ConvCase(label: "5x5 pads 2,1,2,3 on 9x11", input: [3, 9, 11], weight: [5, 3, 5, 5], pads: [2, 1, 2, 3]),
            ConvCase(label: "3x3 pads 0,2,2,0 on 6x6", input: [2, 6, 6], weight: [3, 2, 3, 3], pads: [0, 2, 2, 0]),
            ConvCase(label: "3x1 pads 1,0,1,0 on 4x20", input: [3, 4, 20], weight: [4, 3, 3, 1], pads: [1, 0, 1, 0]),
            ConvCase(label: "SAME_UPPER 4x4 on 10x10", input: [2, 10, 10], weight: [3, 2, 4, 4], autoPad: "SAME_UPPER"),
        ]
        for cc in cases {
            let result = try checkConv(cc)
            XCTAssertEqual(result.kernel?.readsShiftedCopies, true, "\(cc.label): shifted copies")
        }
        // Wider planes keep the padded copy.
        let wide = try checkConv(ConvCase(label: "3x3 on 6x40", input: [2, 6, 40], weight: [3, 2, 3, 3], pads: [1, 1, 1, 1]))
        XCTAssertEqual(wide.kernel?.readsShiftedCopies, false)
        XCTAssertEqual(wide.kernel?.readsPaddedInput, true)
    }

    func testStrideTwoColumnsFromAPaddedRowBuffer() throws {
        // Column stride 2 with rows of 16 outputs or more: each input row is
        // copied into a zero-padded buffer and every kernel column gathered
        // as even lanes, the last vector overlapping the one before. Edge
        // cases: exactly 16 outputs (the CIFAR ResNet's 32 → 16, a 256-column
        // matrix whose rows are padded to an odd number of cache lines), one
        // past a vector with asymmetric padding, a wide dilated kernel whose
        // taps reach both paddings, a 1×1 (no padding), no padding but a
        // 3×3 window, and row chunks (7×7 stem).
        let cases = [
            ConvCase(label: "3x3 stride 2, 32 -> 16 columns", input: [5, 32, 32], weight: [8, 5, 3, 3],
                     strides: [2, 2], pads: [1, 1, 1, 1]),
            ConvCase(label: "3x3 stride 2, 33 columns, asymmetric pads", input: [3, 7, 33], weight: [4, 3, 3, 3],
                     strides: [2, 2], pads: [0, 2, 1, 1]),
            ConvCase(label: "3x5 strides 1x2, dilation 1x2", input: [2, 9, 40], weight: [3, 2, 3, 5],
                     strides: [1, 2], pads: [1, 2, 1, 2], dilations: [1, 2]),
            ConvCase(label: "1x1 stride 2 to 16 columns", input: [7, 4, 32], weight: [8, 7, 1, 1], bias: false,
                     strides: [2, 2]),
            ConvCase(label: "3x3 stride 2 unpadded to 16 columns", input: [2, 5, 33], weight: [3, 2, 3, 3],
                     strides: [2, 2]),
            ConvCase(label: "7x7 stride 2 stem in row chunks", input: [3, 40, 96], weight: [8, 3, 7, 7],
                     strides: [2, 2], pads: [3, 3, 3, 3]),
        ]
        for cc in cases {
            let result = try checkConv(cc)
            guard let kernel = result.kernel else { return XCTFail("\(cc.label): no conv kernel") }
            XCTAssertFalse(kernel.readsPaddedInput, "\(cc.label): built from a column matrix")
            XCTAssertGreaterThanOrEqual(kernel.window.outW, 16, cc.label)
            XCTAssertEqual(kernel.columnStride / 16 % 2, 1, "\(cc.label): rows an odd number of cache lines apart")
        }
    }

    func testIm2colInRowChunks() throws {
        // Column matrices over 384 KiB are built and multiplied a few output
        // rows at a time: a stem-like 7x7 stride 2 (whole panels: straight into
        // the output; and 13 filters: through the staging rows), and a deep
        // stride-2 3x3 whose 23-pixel rows make chunks of 16 rows and a short
        // last one that spills past its pixels.
        let plans: [(count: Int, capacity: Int)] = [(1, 1), (3, 3), (2, 3)]
        let cases = [
            (ConvCase(label: "7x7 stride 2 to 32x32, 16 filters", input: [3, 64, 64], weight: [16, 3, 7, 7],
                      strides: [2, 2], pads: [3, 3, 3, 3]), true),
            (ConvCase(label: "7x7 stride 2 to 32x32, 13 filters, no bias", input: [3, 64, 64], weight: [13, 3, 7, 7],
                      bias: false, strides: [2, 2], pads: [3, 3, 3, 3]), false),
            (ConvCase(label: "3x3 stride 2 over 64 channels to 25x23", input: [64, 50, 46], weight: [12, 64, 3, 3],
                      strides: [2, 2], pads: [1, 1, 1, 1]), false),
        ]
        for (cc, direct) in cases {
            let result = try checkConv(cc, plans: plans)
            guard let kernel = result.kernel else { return XCTFail("\(cc.label): no conv kernel") }
            XCTAssertLessThan(kernel.im2colChunkRows, kernel.window.outH, "\(cc.label): built in chunks")
            XCTAssertEqual(kernel.writesOutputDirectly, direct, cc.label)
        }
        // Chunked or whole, the values are bit for bit the same (the same sum per column):
        // the 64x64 stem against its 16x64 top quarter, which is one chunk.
        let w = randomTensor("W", [16, 3, 7, 7], seed: 43, in: -0.5...0.5)
        let attrs: [String: ONNXAttribute] = ["strides": .ints([2, 2]), "pads": .ints([3, 3, 0, 3])]
        let whole = try Network(model: flattened([node("Conv", "conv", ["x", "W"], attrs)], [w], input: [3, 64, 64], tapped: "conv"))
        let part = try Network(model: flattened([node("Conv", "conv", ["x", "W"], attrs)], [w], input: [3, 18, 64], tapped: "conv"))
        let image = randomFloats(3 * 64 * 64, seed: 44)
        let a = try whole.makeExecutor(capacity: 1), b = try part.makeExecutor(capacity: 1)
        XCTAssertLessThan((a.plan.steps.first?.kernel as? ConvKernel)?.im2colChunkRows ?? .max, 32)
        XCTAssertEqual((b.plan.steps.first?.kernel as? ConvKernel)?.im2colChunkRows, .max)
        let top = (0..<3).flatMap { c in image[(c * 4096)..<(c * 4096 + 18 * 64)] }
        let fromWhole = Array(image.withUnsafeBufferPointer { a.run(input: $0, count: 1) })
        let fromPart = Array(top.withUnsafeBufferPointer { b.run(input: $0, count: 1) })
        // Output rows 0..<8 read input rows up to 2·7 − 3 + 6 = 17: the same in both.
        var mismatches = 0
        for m in 0..<16 { for r in 0..<8 { for q in 0..<32 {
            if fromWhole[(m * 31 + r) * 32 + q].bitPattern != fromPart[(m * 8 + r) * 32 + q].bitPattern { mismatches += 1 }
        } } }
        XCTAssertEqual(mismatches, 0, "stem outputs differing between chunked and whole column matrices")
    }

    func testPointwiseConvReadsTheImageInPlace() throws {
        // Unpadded 1x1 stride 1 on planes of whole vectors: B is the image itself.
        // With whole panels of filters the product also lands in the output.
        let plans: [(count: Int, capacity: Int)] = [(1, 1), (3, 3), (2, 3)]
        let direct = try checkConv(ConvCase(label: "16 filters 1x1 on 8x8", input: [5, 8, 8], weight: [16, 5, 1, 1]), plans: plans)
        XCTAssertEqual(direct.kernel?.readsInputInPlace, true)
        XCTAssertEqual(direct.kernel?.writesOutputDirectly, true)
        // Filters not a multiple of 8 (a staging copy), no bias, more columns than one chunk (384).
        let staged = try checkConv(ConvCase(label: "13 filters 1x1 on 16x28", input: [9, 16, 28], weight: [13, 9, 1, 1], bias: false),
                                   plans: plans)
        XCTAssertEqual(staged.kernel?.readsInputInPlace, true)
        XCTAssertEqual(staged.kernel?.writesOutputDirectly, false)
        let grouped = try checkConv(ConvCase(label: "1x1 in 2 groups on 4x4", input: [6, 4, 4], weight: [16, 3, 1, 1], group: 2),
                                    plans: plans)
        XCTAssertEqual(grouped.kernel?.readsInputInPlace, true)
        // Planes that are not whole vectors (the last vector would read past the
        // input), padding, or strides keep the copy.
        for cc in [ConvCase(label: "1x1 on 5x5", input: [4, 5, 5], weight: [8, 4, 1, 1]),
                   ConvCase(label: "1x1 padded to 4x4", input: [4, 2, 4], weight: [8, 4, 1, 1], pads: [1, 0, 1, 0]),
                   ConvCase(label: "3x3 on 8x8 unpadded", input: [4, 10, 10], weight: [8, 4, 3, 3])] {
            XCTAssertEqual(try checkConv(cc, plans: plans).kernel?.readsInputInPlace, false, cc.label)
        }
        // In place or copied, an image's values are bit for bit the same: the
        // same chain over the same channels (CAR compares runs of either kind).
        let w = randomTensor("W", [16, 12, 1, 1], seed: 41, in: -0.5...0.5)
        let inPlace = try Network(model: flattened([node("Conv", "conv", ["x", "W"])], [w], input: [12, 8, 8], tapped: "conv"))
        let copied = try Network(model: flattened([node("Conv", "conv", ["x", "W"], ["pads": .ints([1, 1, 1, 1])])], [w],
                                                  input: [12, 6, 6], tapped: "conv"))
        let images = randomFloats(2 * 12 * 64, seed: 42)
        let a = try inPlace.makeExecutor(capacity: 2)
        XCTAssertEqual((a.plan.steps.first?.kernel as? ConvKernel)?.readsInputInPlace, true)
        let fromPlace = Array(images.withUnsafeBufferPointer { a.run(input: $0, count: 2) })
        // The same pixels as the interior 6x6 of the 8x8 images, padded back to 8x8 by the convolution.
        var inner = [Float]()
        for n in 0..<2 { for c in 0..<12 { for r in 1..<7 { for q in 1..<7 { inner.append(images[((n * 12 + c) * 8 + r) * 8 + q]) } } } }
        let b = try copied.makeExecutor(capacity: 2)
        XCTAssertEqual((b.plan.steps.first?.kernel as? ConvKernel)?.readsInputInPlace, false)
        let fromCopy = Array(inner.withUnsafeBufferPointer { b.run(input: $0, count: 2) })
        var mismatches = 0
        for n in 0..<2 { for m in 0..<16 { for r in 1..<7 { for q in 1..<7 {
            if fromPlace[((n * 16 + m) * 8 + r) * 8 + q].bitPattern != fromCopy[((n * 16 + m) * 8 + r) * 8 + q].bitPattern { mismatches += 1 }
        } } } }
        XCTAssertEqual(mismatches, 0, "interior pixels differing between the in-place and the copied product")
    }

    func testConvTinyOutputsAndPartialBatches() throws {
        // Tiny outputs (2x2, 4x4) leave most product columns unused; check full
        // batches and a partial last batch (3 images in a capacity-5 executor).
        let plans: [(count: Int, capacity: Int)] = [(5, 5), (3, 5), (1, 5), (2, 2)]
        try checkConv(ConvCase(label: "2x2 output", input: [3, 4, 4], weight: [4, 3, 3, 3]), plans: plans)
        try checkConv(ConvCase(label: "4x4 output, 3 groups", input: [6, 4, 4], weight: [6, 2, 3, 3],
                               group: 3, pads: [1, 1, 1, 1]), plans: plans)
        try checkConv(ConvCase(label: "strided to 2x2", input: [2, 5, 5], weight: [3, 2, 3, 3],
                               strides: [2, 2], pads: [0, 0, 1, 1]), plans: plans)
        // More filters than one panel of 8 and not a multiple of it; more than 48 output columns.
        try checkConv(ConvCase(label: "19 filters on 9x11", input: [3, 9, 11], weight: [19, 3, 3, 3], pads: [1, 1, 1, 1]), plans: plans)
        try checkConv(ConvCase(label: "19 filters strided", input: [3, 13, 11], weight: [19, 3, 3, 3], strides: [2, 2],
                               pads: [1, 1, 1, 1]), plans: plans)
    }

    func testConvWritingStraightIntoTheOutput() throws {
        // Shallow filters with whole panels (8 filters) and whole vectors of
        // pixels (64): the product lands in the output directly, bias added after.
        let plans: [(count: Int, capacity: Int)] = [(3, 3), (2, 3)]
        // (Planes up to 32 wide: from the shifted copies; wider: from im2col.)
        let shallow = try checkConv(ConvCase(label: "8 filters over 2 channels, 8x8", input: [2, 8, 8], weight: [8, 2, 3, 3],
                                             pads: [1, 1, 1, 1]), plans: plans)
        XCTAssertEqual(shallow.kernel?.writesOutputDirectly, true)
        XCTAssertEqual(shallow.kernel?.readsShiftedCopies, true)
        let shallowWide = try checkConv(ConvCase(label: "8 filters over 2 channels, 8x40", input: [2, 8, 40], weight: [8, 2, 3, 3],
                                                 pads: [1, 1, 1, 1]), plans: plans)
        XCTAssertEqual(shallowWide.kernel?.writesOutputDirectly, true)
        XCTAssertEqual(shallowWide.kernel?.readsPaddedInput, false)
        let strided = try checkConv(ConvCase(label: "16 filters, stride 2 to 8x8", input: [3, 16, 16], weight: [16, 3, 3, 3],
                                             strides: [2, 2], pads: [1, 1, 1, 1]), plans: plans)
        XCTAssertEqual(strided.kernel?.writesOutputDirectly, true)
        let grouped = try checkConv(ConvCase(label: "2 groups of 8 filters, 4x4", input: [4, 4, 4], weight: [16, 2, 3, 3],
                                             bias: false, group: 2, pads: [1, 1, 1, 1]), plans: plans)
        XCTAssertEqual(grouped.kernel?.writesOutputDirectly, true)
        // Deep filters on planes of 128 pixels or more, wider than 32, keep the padded path and its staging copy.
        let deep = try checkConv(ConvCase(label: "8 filters over 8 channels", input: [8, 12, 36], weight: [8, 8, 3, 3],
                                          pads: [1, 1, 1, 1]), plans: plans)
        XCTAssertEqual(deep.kernel?.writesOutputDirectly, false)
        XCTAssertEqual(deep.kernel?.readsPaddedInput, true)
        XCTAssertEqual(deep.kernel?.imagesPerProduct, 1)
    }

    func testSmallPlanesRunSeveralImagesPerProduct() throws {
        // Below 128 output pixels, deep filters (128 or more per group) multiply
        // several images' column matrices side by side (7x7: 7 images of 49
        // columns). Full groups, a short last group, one image, strided and
        // grouped convolutions, bias or none, filters not a multiple of 8.
        let plans: [(count: Int, capacity: Int)] = [(1, 1), (9, 9), (8, 9), (3, 9), (16, 16)]
        let cases = [
            ConvCase(label: "3x3 on 7x7", input: [8, 7, 7], weight: [130, 8, 3, 3], pads: [1, 1, 1, 1]),
            ConvCase(label: "1x1 on 7x7, no bias", input: [40, 7, 7], weight: [128, 40, 1, 1], bias: false),
            ConvCase(label: "3x3 stride 2 to 5x6", input: [6, 10, 12], weight: [136, 6, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
            ConvCase(label: "2 groups on 6x6", input: [12, 6, 6], weight: [256, 6, 3, 3], group: 2, pads: [1, 1, 1, 1]),
        ]
        // Fewer filters keep one image per product.
        let few = try checkConv(ConvCase(label: "64 filters on 7x7", input: [8, 7, 7], weight: [64, 8, 3, 3], pads: [1, 1, 1, 1]),
                                plans: [(9, 9)])
        XCTAssertEqual(few.kernel?.imagesPerProduct, 1)
        for cc in cases {
            let result = try checkConv(cc, plans: plans)
            XCTAssertGreaterThan(result.kernel?.imagesPerProduct ?? 0, 1, "\(cc.label): several images per product")
            XCTAssertEqual(result.kernel?.wantsWholeBatch, true, cc.label)
        }
        // The values of an image are those it gets alone, bit for bit (the
        // executor of capacity 1 multiplies one image from its padded copy).
        let w = randomTensor("W", [128, 24, 3, 3], seed: 31, in: -0.5...0.5)
        let m = flattened([node("Conv", "conv", ["x", "W"], ["pads": .ints([1, 1, 1, 1])])], [w],
                          input: [24, 7, 7], tapped: "conv")
        let network = try Network(model: m)
        let perImage = 24 * 7 * 7, outPerImage = 128 * 7 * 7
        let images = randomFloats(11 * perImage, seed: 32)
        let many = try network.makeExecutor(capacity: 11)
        let all = Array(images.withUnsafeBufferPointer { many.run(input: $0, count: 11) })
        let one = try network.makeExecutor(capacity: 1)
        for i in [0, 6, 7, 10] {
            let single = Array(images[(i * perImage)..<((i + 1) * perImage)].withUnsafeBufferPointer { one.run(input: $0, count: 1) })
            XCTAssertEqual(single, Array(all[(i * outPerImage)..<((i + 1) * outPerImage)]), "image \(i)")
        }
    }

    func testFourteenByFourteenKernelsPairImages() throws {
        // Planes of 128..<256 pixels from kernels wider than 1x1 (ImageNet's 14x14
        // stage) multiply two images per product; an odd batch ends with one.
        // 1x1s there, shallow or few filters keep one image per product.
        let plans: [(count: Int, capacity: Int)] = [(1, 1), (3, 3), (4, 5)]
        let paired = try checkConv(ConvCase(label: "3x3 on 12x12, 128 filters", input: [6, 12, 12], weight: [128, 6, 3, 3],
                                            pads: [1, 1, 1, 1]), plans: plans)
        XCTAssertEqual(paired.kernel?.imagesPerProduct, 2)
        let strided = try checkConv(ConvCase(label: "3x3 stride 2 to 11x13, 136 filters, no bias", input: [5, 22, 26],
                                             weight: [136, 5, 3, 3], bias: false, strides: [2, 2], pads: [1, 1, 1, 1]), plans: plans)
        XCTAssertEqual(strided.kernel?.imagesPerProduct, 2)
        for cc in [ConvCase(label: "1x1 on 12x12", input: [40, 12, 12], weight: [128, 40, 1, 1]),
                   ConvCase(label: "3x3 on 12x12, 64 filters", input: [6, 12, 12], weight: [64, 6, 3, 3], pads: [1, 1, 1, 1]),
                   ConvCase(label: "3x3 on 16x16", input: [6, 16, 16], weight: [128, 6, 3, 3], pads: [1, 1, 1, 1])] {
            XCTAssertEqual(try checkConv(cc, plans: plans).kernel?.imagesPerProduct, 1, cc.label)
        }
    }

    func testConvResultDoesNotDependOnBatch() throws {
        // Each image's output is the same sum in the same order whatever the
        // batch: the same image gives bit-identical values alone and among others.
        let w = randomTensor("W", [24, 5, 3, 3], seed: 21, in: -0.5...0.5)
        let m = flattened([node("Conv", "conv", ["x", "W"], ["pads": .ints([1, 1, 1, 1])])], [w],
                          input: [5, 10, 10], tapped: "conv")
        let network = try Network(model: m)
        let perImage = 5 * 10 * 10, outPerImage = 24 * 10 * 10
        let images = randomFloats(7 * perImage, seed: 22)
        let many = try network.makeExecutor(capacity: 7)
        let all = Array(images.withUnsafeBufferPointer { many.run(input: $0, count: 7) })
        let one = try network.makeExecutor(capacity: 1)
        for i in [0, 3, 6] {
            let single = Array(images[(i * perImage)..<((i + 1) * perImage)].withUnsafeBufferPointer { one.run(input: $0, count: 1) })
            XCTAssertEqual(single, Array(all[(i * outPerImage)..<((i + 1) * outPerImage)]), "image \(i)")
        }
    }

    func testMatrixProductRowsDoNotDependOnBatch() throws {
        // A classifier head as PyTorch exports `x @ W + b` (MatMul by a constant,
        // then Add) and as nn.Linear (Gemm). Each image's row must be the same sum
        // in the same order alone as among seven others: CAR reruns single images
        // and compares them with their row of the chunk bit for bit. Through
        // OpenBLAS the MatMul row of one image rounded differently from the same
        // row among eight (its Haswell/Zen SGEMM has a separate kernel for M = 1).
        for (label, depth, outputs) in [("16 to 10", 16, 10), ("257 to 33", 257, 33), ("64 to 1000", 64, 1000)] {
            let w = randomTensor("W", [depth, outputs], seed: 41, in: -0.5...0.5)
            let wt = randomTensor("Wt", [outputs, depth], seed: 42, in: -0.5...0.5)
            let bias = randomTensor("b", [outputs], seed: 43)
            let nodes = [
                node("MatMul", "mm", ["x", "W"]), node("Add", "logits", ["mm", "b"]),
                node("Gemm", "fc", ["x", "Wt", "b"], ["transB": .int(1)]),
            ]
            for (name, head) in [("MatMul", Array(nodes[0...1])), ("Gemm", [nodes[2]])] {
                let m = model(head, [w, wt, bias], input: [depth], output: head.last?.outputs.first ?? "")
                let network = try Network(model: m)
                let images = randomFloats(8 * depth, seed: 44)
                let many = try network.makeExecutor(capacity: 8)
                let all = Array(images.withUnsafeBufferPointer { many.run(input: $0, count: 8) })
                let one = try network.makeExecutor(capacity: 1)
                for i in [0, 3, 7] {
                    let single = Array(images[(i * depth)..<((i + 1) * depth)].withUnsafeBufferPointer { one.run(input: $0, count: 1) })
                    XCTAssertEqual(single, Array(all[(i * outputs)..<((i + 1) * outputs)]), "\(name) \(label), image \(i)")
                }
            }
        }
    }

    func testBatchTooLargeForMemoryIsRefused() throws {
        // 3×1024×1024 images and 8 maps of that size: about 46 MB of activations an
        // image, so 4096 of them would need ~190 GB per worker. Refused with the
        // numbers (issue 12: `eval --batch 1000000000` trapped allocating 3 TB).
        let m = flattened([node("Conv", "conv", ["x", "W"], ["pads": .ints([1, 1, 1, 1])])],
                          [randomTensor("W", [8, 3, 3, 3], seed: 3)], input: [3, 1024, 1024], tapped: "conv")
        let network = try Network(model: m)
        XCTAssertThrowsError(try network.makeExecutor(capacity: 4096)) { error in
            XCTAssert("\(error)".contains("a batch of 4096 images needs"), "\(error)")
            XCTAssert("\(error)".contains("--batch"), "\(error)")
        }
        XCTAssertNoThrow(try network.makeExecutor(capacity: 1))
    }

    func testLargeImagesRunInChunksWithTheSameResults() throws {
        // 64x64 images make 32 channels of 4096 values (512 KB per image) after
        // the first conv, so the executor runs the convolutional part a few
        // images at a time. Buffers must not be shared in a way that lets one
        // chunk overwrite a later chunk's values (the input, 1 float per pixel,
        // is smaller than the conv's output): every image must come out as when
        // run alone, bit for bit, at every tap.
        let nodes = [
            node("Conv", "c1", ["x", "W1"], ["pads": .ints([1, 1, 1, 1])]),
            node("Relu", "r1", ["c1"]),
            node("MaxPool", "p1", ["r1"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            node("Conv", "c2", ["p1", "W2"], ["pads": .ints([1, 1, 1, 1])]),
            node("Flatten", "f", ["c2"], ["axis": .int(1)]),
            node("Gemm", "g", ["f", "W3"], ["transB": .int(1)]),
        ]
        let inits = [randomTensor("W1", [32, 1, 3, 3], seed: 31), randomTensor("W2", [4, 32, 3, 3], seed: 32, in: -0.1...0.1),
                     randomTensor("W3", [10, 4 * 32 * 32], seed: 33, in: -0.01...0.01)]
        let m = model(nodes, inits, input: [1, 64, 64], output: "g")
        let count = 5
        let input = randomFloats(count * 64 * 64, seed: 34)
        let together = try execute(m, count: count, input: input)
        let plan = try together.network.plan(capacity: count)
        XCTAssertLessThan(plan.imagesPerChunk, count, "the test needs images large enough to be chunked")
        XCTAssertGreaterThan(plan.imagewiseSteps, 0)
        for i in 0..<count {
            let alone = try execute(m, count: 1, input: Array(input[(i * 4096)..<((i + 1) * 4096)]))
            // The Gemm included: every row is the same sum whatever the batch.
            for name in ["c1", "r1", "p1", "c2", "g"] {
                let per = alone.tap(name).count
                XCTAssertEqual(alone.tap(name), Array(together.tap(name)[(i * per)..<((i + 1) * per)]), "image \(i), tap \(name)")
            }
        }
    }

    func testConstantColumnsRowsInPlaceMatchNaiveAndSingleRows() {
        // ConstantColumns reads whole panels of 8 data rows in place and packs
        // only a partial last panel: row counts with and without one, depths
        // below and past one 256-deep block, outputs covering each tile width. Each
        // row is bit for bit its product alone (a packed panel of one row)
        // and near the double-precision sum.
        var generator = SplitMix(9)
        for (rows, depth, outputs) in [(8, 1, 10), (13, 127, 50), (16, 128, 130), (21, 129, 33), (24, 300, 128), (5, 260, 7)] {
            let a = (0..<(rows * depth)).map { _ in generator.uniform(-1...1) }
            let bValues = (0..<(depth * outputs)).map { _ in generator.uniform(-0.5...0.5) }
            guard let columns = ConstantColumns(depth: depth, outputs: outputs, value: { j, o in bValues[j * outputs + o] }) else {
                return XCTFail("ConstantColumns refused \(depth) × \(outputs)")
            }
            let label = "\(rows) rows, depth \(depth), \(outputs) outputs"
            let width = columns.width
            func product(_ first: Int, _ count: Int) -> [Float] {
                var scratch = [Float](repeating: .nan, count: columns.scratchCount(rows: count))
                return a.withUnsafeBufferPointer { ap in scratch.withUnsafeMutableBufferPointer { sp in
                    let c = columns.multiply(ap.baseAddress! + first * depth, rows: count, capacityRows: count, scratch: sp.baseAddress!)
                    return (0..<(count * width)).map { c[$0] }
                }}
            }
            let all = product(0, rows)
            for r in 0..<rows {
                let alone = product(r, 1)
                XCTAssertTrue(Array(all[(r * width)..<(r * width + outputs)]) == Array(alone[0..<outputs]), "\(label): row \(r) alone")
                for o in 0..<outputs {
                    var sum = 0.0, size = 0.0
                    for j in 0..<depth {
                        let t = Double(a[r * depth + j]) * Double(bValues[j * outputs + o])
                        sum += t; size += abs(t)
                    }
                    XCTAssertLessThanOrEqual(abs(Double(all[r * width + o]) - sum), 1e-6 * max(size, 1), "\(label): row \(r), output \(o)")
                }
            }
        }
    }

    func testPackedProductMatchesNaiveProduct() {
        // Rows not a multiple of 8, widths covering the 48-, 32- and 16-column
        // tiles, and B rows at arbitrary offsets.
        var generator = SplitMix(5)
        for (rows, depth, width) in [(1, 1, 16), (8, 3, 48), (13, 7, 80), (21, 30, 112), (64, 9, 16)] {
            let a = (0..<(rows * depth)).map { _ in generator.uniform(-0.5...0.5) }
            let b = (0..<(depth * 37 + width + 5)).map { _ in generator.uniform(-0.5...0.5) }
            let offsets = (0..<depth).map { j in (j * 37 + 3 * j) % (depth * 37 + 5) }
            let packed = a.withUnsafeBufferPointer { PackedRows($0.baseAddress!, rows: rows, depth: depth, rowStride: depth) }
            var c = [Float](repeating: .nan, count: packed.paddedRows * width)
            b.withUnsafeBufferPointer { bp in offsets.withUnsafeBufferPointer { op in c.withUnsafeMutableBufferPointer { cp in
                packed.multiply(bp.baseAddress!, offsets: op.baseAddress!, width: width, into: cp.baseAddress!, ldc: width)
            }}}
            for r in 0..<packed.paddedRows {
                for q in 0..<width {
                    var expected = 0.0
                    if r < rows { for j in 0..<depth { expected += Double(a[r * depth + j]) * Double(b[offsets[j] + q]) } }
                    XCTAssertEqual(Double(c[r * width + q]), expected, accuracy: 1e-5, "\(rows)x\(depth)x\(width) at \(r),\(q)")
                }
            }
        }
    }

    func testPackedProductOverDepthBlocksIsOneOrderedChain() {
        // Depths over several depth blocks (256) with a short last one, widths
        // over a column chunk (384) ending in 32- and 16-column tiles: every
        // value is bit for bit the fused multiply-add chain over j = 0, 1, …
        // from zero — the blocking changes where partial sums wait, not the sum.
        var generator = SplitMix(6)
        for (rows, depth, width) in [(12, 600, 448), (8, 257, 400), (3, 512, 16)] {
            let a = (0..<(rows * depth)).map { _ in generator.uniform(-0.5...0.5) }
            let b = (0..<(depth * 7 + width + 5)).map { _ in generator.uniform(-0.5...0.5) }
            let offsets = (0..<depth).map { j in (j * 11) % (depth * 7 + 5) }
            let packed = a.withUnsafeBufferPointer { PackedRows($0.baseAddress!, rows: rows, depth: depth, rowStride: depth) }
            var c = [Float](repeating: .nan, count: packed.paddedRows * width)
            b.withUnsafeBufferPointer { bp in offsets.withUnsafeBufferPointer { op in c.withUnsafeMutableBufferPointer { cp in
                packed.multiply(bp.baseAddress!, offsets: op.baseAddress!, width: width, into: cp.baseAddress!, ldc: width)
            }}}
            var mismatches = 0
            for r in 0..<rows {
                for q in 0..<width {
                    var chain: Float = 0
                    for j in 0..<depth { chain = chain.addingProduct(a[r * depth + j], b[offsets[j] + q]) }
                    if c[r * width + q].bitPattern != chain.bitPattern { mismatches += 1 }
                }
            }
            XCTAssertEqual(mismatches, 0, "\(rows)x\(depth)x\(width): values differing from the ordered chain")
        }
    }

    func testConvAutoPad() throws {
        // Odd total padding in both axes, so SAME_UPPER and SAME_LOWER differ.
        let upper = try checkConv(ConvCase(label: "SAME_UPPER k4", input: [2, 7, 6], weight: [3, 2, 4, 2], autoPad: "SAME_UPPER"))
        let lower = try checkConv(ConvCase(label: "SAME_LOWER k4", input: [2, 7, 6], weight: [3, 2, 4, 2], autoPad: "SAME_LOWER"))
        XCTAssertTrue(differ(upper.values, lower.values), "SAME_UPPER and SAME_LOWER must pad differently")
        try checkConv(ConvCase(label: "SAME_UPPER stride 2", input: [2, 8, 7], weight: [3, 2, 3, 3], strides: [2, 2], autoPad: "SAME_UPPER"))
        try checkConv(ConvCase(label: "SAME_LOWER stride 2", input: [2, 8, 7], weight: [3, 2, 3, 3], strides: [2, 2], autoPad: "SAME_LOWER"))
        try checkConv(ConvCase(label: "SAME_LOWER dilated", input: [1, 9, 8], weight: [2, 1, 3, 3], dilations: [2, 1], autoPad: "SAME_LOWER"))
        try checkConv(ConvCase(label: "VALID stride 2", input: [2, 8, 9], weight: [3, 2, 3, 3], strides: [2, 2], autoPad: "VALID"))
        // auto_pad VALID ignores nothing else: output 6x7 for an 8x9 input and a 3x3 kernel.
        let valid = flattened([node("Conv", "conv", ["x", "W"], ["auto_pad": .string("VALID")])],
                              [randomTensor("W", [1, 1, 3, 3], seed: 1)], input: [1, 8, 9], tapped: "conv")
        XCTAssertEqual(try Network(model: valid).tap(named: "conv")?.shape, [1, 6, 7])
        // SAME keeps ceil(in / stride).
        let same = flattened([node("Conv", "conv", ["x", "W"], ["auto_pad": .string("SAME_UPPER"), "strides": .ints([2, 3])])],
                             [randomTensor("W", [1, 1, 3, 3], seed: 1)], input: [1, 8, 9], tapped: "conv")
        XCTAssertEqual(try Network(model: same).tap(named: "conv")?.shape, [1, 4, 3])
    }

    // MARK: Pooling

    private struct PoolCase {
        var label: String
        var input: [Int]
        var kernel: [Int]
        var strides: [Int]?
        var pads: [Int]?
        var dilations: [Int]?
        var ceil = false
        var includePad: Bool?
        var expectedHW: [Int]?
    }

    @discardableResult
    private func checkPool(_ op: String, _ pc: PoolCase, opset: Int = 13,
                           file: StaticString = #filePath, line: UInt = #line) throws -> [Float] {
        var attrs: [String: ONNXAttribute] = ["kernel_shape": .ints(pc.kernel)]
        if let s = pc.strides { attrs["strides"] = .ints(s) }
        if let p = pc.pads { attrs["pads"] = .ints(p) }
        if let d = pc.dilations { attrs["dilations"] = .ints(d) }
        if pc.ceil { attrs["ceil_mode"] = .int(1) }
        if let i = pc.includePad { attrs["count_include_pad"] = .int(i ? 1 : 0) }
        let m = flattened([node(op, "pool", ["x"], attrs)], input: pc.input, tapped: "pool", opset: opset)
        var last: [Float] = []
        for plan in [(count: 2, capacity: 2), (count: 1, capacity: 3)] {
            let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: 5)
            let ref = refPool(Tensor([plan.count] + pc.input, floats: out.input), isMax: op == "MaxPool", kernel: pc.kernel,
                              strides: pc.strides ?? [1, 1], pads: pc.pads ?? [0, 0, 0, 0], dilations: pc.dilations ?? [1, 1],
                              ceil: pc.ceil, includePad: pc.includePad ?? false)
            if let hw = pc.expectedHW {
                XCTAssertEqual(out.shapes["pool"], [pc.input[0]] + hw, "\(op) \(pc.label): output shape", file: file, line: line)
            }
            XCTAssertEqual(out.shapes["pool"], Array(ref.shape.dropFirst()), "\(op) \(pc.label): shape", file: file, line: line)
            assertClose(out.tap("pool"), ref, "\(op) \(pc.label)", file: file, line: line)
            last = out.tap("pool")
        }
        return last
    }

    func testMaxPool() throws {
        let cases = [
            PoolCase(label: "2x2 stride 2", input: [3, 8, 6], kernel: [2, 2], strides: [2, 2], expectedHW: [4, 3]),
            PoolCase(label: "3x3 stride 2 pads 1", input: [2, 7, 8], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], expectedHW: [4, 4]),
            PoolCase(label: "asymmetric pads", input: [2, 6, 6], kernel: [3, 2], pads: [0, 1, 2, 0], expectedHW: [6, 6]),
            PoolCase(label: "default strides 1", input: [1, 5, 5], kernel: [2, 3], expectedHW: [4, 3]),
            PoolCase(label: "dilations 2", input: [2, 9, 8], kernel: [2, 2], strides: [1, 2], dilations: [2, 2], expectedHW: [7, 3]),
            // ceil_mode: floor gives 3, ceil 4 (the last window starts inside the input).
            PoolCase(label: "ceil_mode", input: [2, 8, 8], kernel: [3, 3], strides: [2, 2], ceil: true, expectedHW: [4, 4]),
            // in 7, k 2, s 2, pads 1: ceil((7+2−2)/2)+1 = 5, but the 5th window would start at
            // padded index 8 = in + pad_begin, entirely in the right padding: dropped → 4.
            PoolCase(label: "ceil_mode drops a window in the padding", input: [2, 7, 7], kernel: [2, 2], strides: [2, 2],
                     pads: [1, 1, 1, 1], ceil: true, expectedHW: [4, 4]),
            PoolCase(label: "ceil_mode with dilation", input: [1, 10, 9], kernel: [2, 2], strides: [3, 2], dilations: [2, 2],
                     ceil: true, expectedHW: [4, 4]),
        ]
        for pc in cases { try checkPool("MaxPool", pc) }
        // Negative inputs everywhere: padding must not act as a 0 in the maximum.
        let m = flattened([node("MaxPool", "pool", ["x"], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])])],
                          input: [1, 3, 3], tapped: "pool")
        let out = try execute(m, count: 1, range: -3 ... -1)
        XCTAssertTrue(out.tap("pool").allSatisfy { $0 < -0.99 }, "padding leaked into MaxPool: \(out.tap("pool"))")
    }

    func testAveragePool() throws {
        for include in [false, true] {
            let cases = [
                PoolCase(label: "2x2 stride 2", input: [3, 8, 6], kernel: [2, 2], strides: [2, 2], includePad: include, expectedHW: [4, 3]),
                PoolCase(label: "3x3 pads 1", input: [2, 7, 6], kernel: [3, 3], pads: [1, 1, 1, 1], includePad: include, expectedHW: [7, 6]),
                PoolCase(label: "asymmetric pads stride 2", input: [2, 7, 8], kernel: [3, 2], strides: [2, 2], pads: [2, 0, 0, 1],
                         includePad: include, expectedHW: [4, 4]),
                PoolCase(label: "ceil_mode no pads", input: [2, 8, 7], kernel: [3, 3], strides: [2, 2], ceil: true,
                         includePad: include, expectedHW: [4, 3]),
                // The last window (start 5 in input coordinates) covers input 5, padding 6 and
                // index 7 beyond the padded border: divisor 2 with count_include_pad, 1 without.
                PoolCase(label: "ceil_mode window past the padding", input: [2, 6, 6], kernel: [3, 3], strides: [2, 2],
                         pads: [1, 1, 1, 1], ceil: true, includePad: include, expectedHW: [4, 4]),
                PoolCase(label: "ceil_mode drops a window in the padding", input: [1, 7, 7], kernel: [2, 2], strides: [2, 2],
                         pads: [1, 1, 1, 1], ceil: true, includePad: include, expectedHW: [4, 4]),
            ]
            for pc in cases { try checkPool("AveragePool", pc) }
        }
        // count_include_pad is the default-0 attribute and it changes the result.
        let pc = PoolCase(label: "pads", input: [2, 5, 5], kernel: [3, 3], pads: [1, 1, 1, 1])
        var with = pc; with.includePad = true
        XCTAssertTrue(differ(try checkPool("AveragePool", pc), try checkPool("AveragePool", with)))
        // Dilated average pooling exists from opset 19.
        try checkPool("AveragePool", PoolCase(label: "dilated", input: [1, 8, 8], kernel: [2, 2], strides: [2, 2],
                                              pads: [1, 1, 1, 1], dilations: [2, 2], includePad: true), opset: 19)
    }

    func testAveragePoolByHand() throws {
        // 2x2 image [1 2; 3 4], 2x2 windows with stride 2 over a border of 1: each window
        // holds one pixel and three pads.
        for (include, expected) in [(0, [Float](arrayLiteral: 1, 2, 3, 4)), (1, [0.25, 0.5, 0.75, 1])] {
            let m = flattened([node("AveragePool", "pool", ["x"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]),
                                                                    "pads": .ints([1, 1, 1, 1]), "count_include_pad": .int(include)])],
                              input: [1, 2, 2], tapped: "pool")
            let out = try execute(m, count: 1, input: [1, 2, 3, 4])
            XCTAssertEqual(out.tap("pool"), expected, "count_include_pad \(include)")
        }
        // 1x5 row, kernel 1x3, stride 2, one pad on the right, ceil_mode: windows start at 0, 2
        // and 4; the last holds the value 5, the pad and a position past the padded border.
        let m = flattened([node("AveragePool", "pool", ["x"], ["kernel_shape": .ints([1, 3]), "strides": .ints([1, 2]),
                                                                "pads": .ints([0, 0, 0, 1]), "ceil_mode": .int(1)])],
                          input: [1, 1, 5], tapped: "pool")
        let out = try execute(m, count: 1, input: [1, 2, 3, 4, 5])
        XCTAssertEqual(out.tap("pool"), [2, 4, 5])
        let m2 = flattened([node("MaxPool", "pool", ["x"], ["kernel_shape": .ints([1, 2]), "strides": .ints([1, 2]),
                                                             "ceil_mode": .int(1)])],
                           input: [1, 1, 5], tapped: "pool")
        XCTAssertEqual(try execute(m2, count: 1, input: [1, 5, 3, 2, 7]).tap("pool"), [5, 3, 7])
    }

    func testGlobalPools() throws {
        for op in ["GlobalAveragePool", "GlobalMaxPool"] {
            let m = flattened([node(op, "gp", ["x"])], input: [4, 5, 3], tapped: "gp")
            for plan in batchPlans {
                let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: 3)
                XCTAssertEqual(out.shapes["gp"], [4, 1, 1])
                let ref = refGlobalPool(Tensor([plan.count, 4, 5, 3], floats: out.input), isMax: op == "GlobalMaxPool")
                assertClose(out.tap("gp"), ref, op)
                assertClose(out.logits, ref, "\(op) logits")
            }
        }
    }

    // MARK: Normalization and activations

    func testBatchNormalization() throws {
        let c = 4
        let scale = randomTensor("scale", [c], seed: 1, in: 0.5...2)
        let bias = randomTensor("bias", [c], seed: 2)
        let mean = randomTensor("mean", [c], seed: 3, in: -0.3...0.3)
        // Small variances, so that epsilon visibly matters.
        let variance = randomTensor("var", [c], seed: 4, in: 1e-5...4e-5)
        var results: [[Float]] = []
        for epsilon in [nil, Float(1e-3)] {
            var attrs: [String: ONNXAttribute] = [:]
            if let epsilon { attrs["epsilon"] = .float(epsilon) }
            let m = flattened([node("BatchNormalization", "bn", ["x", "scale", "bias", "mean", "var"], attrs)],
                              [scale, bias, mean, variance], input: [c, 3, 5], tapped: "bn")
            for plan in [(count: 1, capacity: 1), (count: 3, capacity: 4)] {
                let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: 9, range: -0.1...0.1)
                let ref = refBatchNorm(Tensor([plan.count, c, 3, 5], floats: out.input), scale: scale, bias: bias, mean: mean,
                                       variance: variance, epsilon: Double(epsilon ?? 1e-5))
                assertClose(out.tap("bn"), ref, "BatchNormalization epsilon \(epsilon.map { "\($0)" } ?? "default")")
                if plan.count == 1 { results.append(out.tap("bn")) }
            }
        }
        XCTAssertTrue(differ(results[0], results[1]), "epsilon 1e-3 must change the result against the default 1e-5")
        // Rank-2 data (BatchNorm1d after a Flatten).
        let m = model([node("BatchNormalization", "bn", ["x", "scale", "bias", "mean", "var"])],
                      [scale, bias, mean, variance], input: [c], output: "bn")
        let out = try execute(m, count: 3, range: -0.1...0.1)
        assertClose(out.tap("bn"), refBatchNorm(Tensor([3, c], floats: out.input), scale: scale, bias: bias, mean: mean,
                                                variance: variance, epsilon: 1e-5), "BatchNormalization on rank 2")
    }

    func testActivations() throws {
        let cases: [(op: String, attrs: [String: ONNXAttribute], f: (Double) -> Double)] = [
            ("Relu", [:], relu),
            ("LeakyRelu", [:], { $0 < 0 ? 0.01 * $0 : $0 }),
            ("LeakyRelu", ["alpha": .float(0.2)], { $0 < 0 ? 0.2 * $0 : $0 }),
            ("Sigmoid", [:], sigmoid),
            ("Tanh", [:], { tanh($0) }),
        ]
        for (op, attrs, f) in cases {
            let m = flattened([node(op, "act", ["x"], attrs)], input: [3, 4, 5], tapped: "act")
            for plan in [(count: 2, capacity: 2), (count: 3, capacity: 5)] {
                let out = try execute(m, count: plan.count, capacity: plan.capacity, range: -4...4)
                let ref = Tensor([plan.count, 3, 4, 5], floats: out.input).map(f)
                assertClose(out.tap("act"), ref, "\(op) \(attrs)")
            }
        }
    }

    func testClip() throws {
        let lo = ONNXTensor(name: "lo", dims: [], floats: [-0.5])
        let hi = ONNXTensor(name: "hi", dims: [], floats: [0.75])
        let zero = ONNXTensor(name: "zero", dims: [], floats: [0])
        let six = ONNXTensor(name: "six", dims: [], floats: [6])
        let cases: [(label: String, node: ONNXNode, inits: [ONNXTensor], opset: Int, lo: Double, hi: Double)] = [
            ("opset 13 min and max", node("Clip", "clip", ["x", "lo", "hi"]), [lo, hi], 13, -0.5, 0.75),
            ("opset 13 only min", node("Clip", "clip", ["x", "lo"]), [lo], 13, -0.5, .infinity),
            ("opset 13 only max", node("Clip", "clip", ["x", "", "hi"]), [hi], 13, -.infinity, 0.75),
            ("opset 11 inputs", node("Clip", "clip", ["x", "lo", "hi"]), [lo, hi], 11, -0.5, 0.75),
            ("Relu6", node("Clip", "clip", ["x", "zero", "six"]), [zero, six], 13, 0, 6),
            ("opset 9 attributes", node("Clip", "clip", ["x"], ["min": .float(-0.25), "max": .float(0.5)]), [], 9, -0.25, 0.5),
            ("opset 9 only min", node("Clip", "clip", ["x"], ["min": .float(-1)]), [], 9, -1, .infinity),
            ("opset 6 Relu6", node("Clip", "clip", ["x"], ["min": .float(0), "max": .float(6)]), [], 7, 0, 6),
        ]
        for c in cases {
            let m = flattened([c.node], c.inits, input: [2, 3, 4], tapped: "clip", opset: c.opset)
            let out = try execute(m, count: 3, capacity: 4, range: -10...10)
            let ref = Tensor([3, 2, 3, 4], floats: out.input).map { min(max($0, c.lo), c.hi) }
            assertClose(out.tap("clip"), ref, "Clip \(c.label)")
        }
    }

    // MARK: Linear

    func testGemm() throws {
        let k = 6, f = 4
        let bPlain = randomTensor("B", [k, f], seed: 21)
        let bTrans = randomTensor("B", [f, k], seed: 22)
        let cShapes: [[Int]?] = [nil, [f], [1, f], [], [1], [1, 1]]
        for transB in [false, true] {
            for (alpha, beta) in [(Float(1), Float(1)), (2, 0.5), (-0.5, 0), (1, 3)] {
                for cShape in cShapes {
                    let b = transB ? bTrans : bPlain
                    let cTensor = cShape.map { randomTensor("C", $0, seed: 23) }
                    var attrs: [String: ONNXAttribute] = ["alpha": .float(alpha), "beta": .float(beta)]
                    if transB { attrs["transB"] = .int(1) }
                    let inputs = cTensor == nil ? ["x", "B"] : ["x", "B", "C"]
                    let m = model([node("Gemm", "fc", inputs, attrs)], [b] + (cTensor.map { [$0] } ?? []), input: [k], output: "fc")
                    for plan in [(count: 1, capacity: 1), (count: 3, capacity: 5), (count: 4, capacity: 4)] {
                        let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: 8)
                        let ref = refGemm(Tensor([plan.count, k], floats: out.input), b, transB: transB,
                                          alpha: Double(alpha), beta: Double(beta), c: cTensor)
                        let label = "Gemm transB \(transB) alpha \(alpha) beta \(beta) C \(cShape.map { "\($0)" } ?? "none")"
                        XCTAssertEqual(out.network.classCount, f, label)
                        assertClose(out.logits, ref, label)
                        assertClose(out.tap("fc"), ref, label + " (tap)")
                    }
                }
            }
        }
        // Sizes past one panel of 8 rows and one tile of 48 columns, with partial ones.
        for (depth, outputs, count) in [(70, 37, 19), (33, 100, 9), (5, 16, 8)] {
            for transB in [false, true] {
                let b = randomTensor("B", transB ? [outputs, depth] : [depth, outputs], seed: 25)
                let cTensor = randomTensor("C", [outputs], seed: 26)
                var attrs: [String: ONNXAttribute] = ["alpha": .float(0.75)]
                if transB { attrs["transB"] = .int(1) }
                let m = model([node("Gemm", "fc", ["x", "B", "C"], attrs)], [b, cTensor], input: [depth], output: "fc")
                let out = try execute(m, count: count, capacity: count + 2, seed: 9)
                let ref = refGemm(Tensor([count, depth], floats: out.input), b, transB: transB, alpha: 0.75, beta: 1, c: cTensor)
                assertClose(out.logits, ref, "Gemm \(count)x\(depth) by \(depth)x\(outputs), transB \(transB)")
            }
        }
        // Defaults: alpha = beta = 1, transB = 0.
        let c = randomTensor("C", [f], seed: 24)
        let m = model([node("Gemm", "fc", ["x", "B", "C"])], [bPlain, c], input: [k], output: "fc")
        let out = try execute(m, count: 2)
        assertClose(out.logits, refGemm(Tensor([2, k], floats: out.input), bPlain, transB: false, alpha: 1, beta: 1, c: c), "Gemm defaults")
    }

    func testGemmWithPerRowBiasOfFixedBatchIsRefused() throws {
        // C of shape [3, 1] only fits a batch of exactly 3; the engine plans for any batch
        // size, so it must refuse the node by name instead of mis-broadcasting.
        let m = model([node("Gemm", "fc_rows", ["x", "B", "C"])],
                      [randomTensor("B", [6, 4], seed: 1), randomTensor("C", [3, 1], seed: 2)], input: [6], output: "fc_rows")
        XCTAssertThrowsError(try Network(model: m)) { error in
            XCTAssertTrue(error is EngineError)
            XCTAssertTrue("\(error)".contains("fc_rows"), "\(error)")
        }
    }

    func testMatMulByConstant() throws {
        let b = randomTensor("B", [6, 4], seed: 31)
        // Rank-2 data [N, 6].
        let m2 = model([node("MatMul", "mm", ["x", "B"])], [b], input: [6], output: "mm")
        for plan in [(count: 1, capacity: 1), (count: 3, capacity: 5)] {
            let out = try execute(m2, count: plan.count, capacity: plan.capacity)
            assertClose(out.logits, refMatMul(Tensor([plan.count, 6], floats: out.input), b), "MatMul rank 2")
        }
        // Rank-3 data [N, 3, 6] → [N, 3, 4].
        let m3 = flattened([node("MatMul", "mm", ["x", "B"])], [b], input: [3, 6], tapped: "mm")
        for plan in [(count: 2, capacity: 2), (count: 3, capacity: 5)] {
            let out = try execute(m3, count: plan.count, capacity: plan.capacity)
            XCTAssertEqual(out.shapes["mm"], [3, 4])
            assertClose(out.tap("mm"), refMatMul(Tensor([plan.count, 3, 6], floats: out.input), b), "MatMul rank 3")
        }
    }

    // MARK: Elementwise

    private let binaryOps: [(op: String, f: (Double, Double) -> Double)] = [
        ("Add", { $0 + $1 }), ("Sub", { $0 - $1 }), ("Mul", { $0 * $1 }), ("Div", { $0 / $1 }),
    ]

    func testBinaryWithConstants() throws {
        let shape = [3, 4, 5]
        let constantShapes: [[Int]] = [[3, 1, 1], [5], [1], [1, 3, 1, 1], [], [4, 5], [4, 1], [3, 4, 5], [1, 1, 5]]
        for (op, f) in binaryOps {
            for cShape in constantShapes {
                // Constants away from zero so that Div is well conditioned either way round.
                let k = randomTensor("k", cShape, seed: UInt64(cShape.count * 7 + cShape.reduce(1, *)), in: 0.5...2)
                for constantLeft in [false, true] {
                    let inputs = constantLeft ? ["k", "x"] : ["x", "k"]
                    let m = flattened([node(op, "bin", inputs)], [k], input: shape, tapped: "bin")
                    for plan in [(count: 1, capacity: 1), (count: 3, capacity: 5)] {
                        let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: 4, range: 0.5...2)
                        let x = Tensor([plan.count] + shape, floats: out.input)
                        let ref = constantLeft ? refBinary(Tensor(k), x, f) : refBinary(x, Tensor(k), f)
                        let label = "\(op) with constant \(cShape) on the \(constantLeft ? "left" : "right")"
                        XCTAssertEqual(out.shapes["bin"], shape, label)
                        assertClose(out.tap("bin"), ref, label)
                    }
                }
            }
        }
    }

    func testBinaryOfTwoDataOperands() throws {
        let shape = [3, 4, 5]
        for (op, f) in binaryOps {
            // A residual: op(Sigmoid(x), x) and op(x, Sigmoid(x)) (Sigmoid keeps Div finite).
            for sigmoidLeft in [true, false] {
                let inputs = sigmoidLeft ? ["s", "x"] : ["x", "s"]
                let m = flattened([node("Sigmoid", "s", ["x"]), node(op, "bin", inputs)], input: shape, tapped: "bin")
                for plan in batchPlans {
                    let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: 6, range: 0.5...2)
                    let x = Tensor([plan.count] + shape, floats: out.input)
                    let s = x.map(sigmoid)
                    assertClose(out.tap("bin"), sigmoidLeft ? refBinary(s, x, f) : refBinary(x, s, f), "\(op)(\(inputs))")
                }
            }
            // [N,C,H,W] with [N,C,1,1]: the general strided path (per-image broadcast), both orders.
            for poolLeft in [false, true] {
                let inputs = poolLeft ? ["gap", "x"] : ["x", "gap"]
                let m = flattened([node("GlobalAveragePool", "gap", ["x"]), node(op, "bin", inputs)], input: shape, tapped: "bin")
                for plan in batchPlans {
                    let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: 2, range: 0.5...2)
                    let x = Tensor([plan.count] + shape, floats: out.input)
                    let gap = refGlobalPool(x, isMax: false)
                    let ref = poolLeft ? refBinary(gap, x, f) : refBinary(x, gap, f)
                    assertClose(out.tap("bin"), ref, "\(op)(\(inputs)), \(plan.count) at capacity \(plan.capacity)")
                }
            }
        }
        // x + x: the same buffer twice.
        let m = flattened([node("Relu", "r", ["x"]), node("Add", "twice", ["r", "r"])], input: shape, tapped: "twice")
        let out = try execute(m, count: 3, capacity: 4)
        assertClose(out.tap("twice"), Tensor([3] + shape, floats: out.input).map { 2 * relu($0) }, "Relu(x) + Relu(x)")
        // Relu(x) + x, the residual pattern of the brief.
        let res = flattened([node("Relu", "r", ["x"]), node("Add", "res", ["r", "x"])], input: shape, tapped: "res")
        let out2 = try execute(res, count: 5, capacity: 5)
        assertClose(out2.tap("res"), Tensor([5] + shape, floats: out2.input).map { relu($0) + $0 }, "Relu(x) + x")
    }

    // MARK: Concat, shapes, no-ops

    func testConcat() throws {
        // Axis 1: Relu(x) [3 channels], a 1x1 conv [2 channels], x itself [3 channels].
        let w = randomTensor("W", [2, 3, 1, 1], seed: 41)
        let m1 = flattened([node("Relu", "r", ["x"]), node("Conv", "c", ["x", "W"]),
                            node("Concat", "cat", ["r", "c", "x"], ["axis": .int(1)])],
                           [w], input: [3, 4, 5], tapped: "cat")
        for plan in batchPlans {
            let out = try execute(m1, count: plan.count, capacity: plan.capacity)
            let x = Tensor([plan.count, 3, 4, 5], floats: out.input)
            let ref = refConcat([x.map(relu), refConv(x, w, nil), x], axis: 1)
            XCTAssertEqual(out.shapes["cat"], [8, 4, 5])
            assertClose(out.tap("cat"), ref, "Concat axis 1")
        }
        // Axis −1: widths 5, 2 (a 1x2 max pool) and 5.
        let m2 = flattened([node("Tanh", "t", ["x"]),
                            node("MaxPool", "p", ["x"], ["kernel_shape": .ints([1, 2]), "strides": .ints([1, 2])]),
                            node("Concat", "cat", ["t", "p", "x"], ["axis": .int(-1)])],
                           input: [3, 4, 5], tapped: "cat")
        for plan in batchPlans {
            let out = try execute(m2, count: plan.count, capacity: plan.capacity)
            let x = Tensor([plan.count, 3, 4, 5], floats: out.input)
            let ref = refConcat([x.map { tanh($0) }, refPool(x, isMax: true, kernel: [1, 2], strides: [1, 2]), x], axis: 3)
            XCTAssertEqual(out.shapes["cat"], [3, 4, 12])
            assertClose(out.tap("cat"), ref, "Concat axis -1")
        }
    }

    func testFlattenAndReshape() throws {
        let shape = [3, 4, 5]
        // Flatten axis 1 (the helper's own): [N, 60].
        let m1 = flattened([node("Relu", "r", ["x"])], input: shape, tapped: "r")
        let o1 = try execute(m1, count: 3, capacity: 4)
        XCTAssertEqual(o1.network.classCount, 60)
        assertClose(o1.logits, Tensor([3, 60], floats: o1.input).map(relu), "Flatten axis 1")
        // Flatten axis 2 of [N, 1, 4, 5] keeps the batch first: [N, 20].
        let m2 = model([node("Relu", "r", ["x"]), node("Flatten", "f", ["r"], ["axis": .int(2)])], input: [1, 4, 5], output: "f")
        let o2 = try execute(m2, count: 3, capacity: 5)
        XCTAssertEqual(o2.network.classCount, 20)
        assertClose(o2.logits, Tensor([3, 20], floats: o2.input).map(relu), "Flatten axis 2")
        // Flatten axis 2 of [N, 4, 3, 1] followed by a Relu ([N·4, 3] would merge the batch): refused.
        let m3 = model([node("Flatten", "f", ["x"], ["axis": .int(2)]), node("Relu", "r", ["f"])], input: [4, 3, 1], output: "r")
        XCTAssertThrowsError(try Network(model: m3))
        // Reshape with 0 (copy) and −1 (infer): [N, 3, 4, 5] → [N, 12, 5] → Relu → [N, 60].
        let t1 = ONNXTensor(name: "t1", dims: [3], ints: [0, 12, -1])
        let t2 = ONNXTensor(name: "t2", dims: [2], ints: [0, -1])
        let m4 = model([node("Reshape", "rs1", ["x", "t1"]), node("Tanh", "th", ["rs1"]), node("Reshape", "rs2", ["th", "t2"])],
                       [t1, t2], input: shape, output: "rs2")
        for plan in batchPlans {
            let o4 = try execute(m4, count: plan.count, capacity: plan.capacity)
            XCTAssertEqual(o4.shapes["th"], [12, 5])
            XCTAssertEqual(o4.network.classCount, 60)
            assertClose(o4.logits, Tensor([plan.count, 60], floats: o4.input).map { tanh($0) }, "Reshape 0/-1")
        }
        // −1 in the batch position: [−1, 60].
        let t3 = ONNXTensor(name: "t3", dims: [2], ints: [-1, 60])
        let m5 = model([node("Sigmoid", "s", ["x"]), node("Reshape", "rs", ["s", "t3"])], [t3], input: shape, output: "rs")
        let o5 = try execute(m5, count: 3, capacity: 5)
        assertClose(o5.logits, Tensor([3, 60], floats: o5.input).map(sigmoid), "Reshape -1 in the batch position")
    }

    func testFlattenThatMergesTheBatchIsRefused() throws {
        // Flatten(axis 2) of [N, 3, 4, 5] is [3N, 20]: the batch is no longer the first axis,
        // so the logits would be read with the wrong layout. It must be refused, not run.
        let m = model([node("Relu", "r", ["x"]), node("Flatten", "flat2", ["r"], ["axis": .int(2)])], input: [3, 4, 5], output: "flat2")
        XCTAssertThrowsError(try Network(model: m)) { error in
            XCTAssertTrue(error is EngineError, "\(error)")
            XCTAssertTrue("\(error)".contains("flat2"), "\(error)")
        }
        // The same for Reshape and Identity-like aliases that end the graph.
        let t = ONNXTensor(name: "t", dims: [2], ints: [-1, 20])
        let m2 = model([node("Relu", "r", ["x"]), node("Reshape", "rs", ["r", "t"])], [t], input: [3, 4, 5], output: "rs")
        XCTAssertThrowsError(try Network(model: m2)) { error in
            XCTAssertTrue("\(error)".contains("rs"), "\(error)")
        }
    }

    /// PyTorch's `x.view(x.size(0), -1)`: Shape → Gather(0) → Unsqueeze → Concat([-1]) → Reshape.
    func testViewPattern() throws {
        for opset in [11, 13] {
            let w = randomTensor("W", [2, 3, 3, 3], seed: 51)
            let fc = randomTensor("FC", [3, 32], seed: 52)
            let fcBias = randomTensor("FCB", [3], seed: 53)
            let zero = ONNXTensor(name: "zero", dims: [], ints: [0])
            let axes = ONNXTensor(name: "axes", dims: [1], ints: [0])
            let minus1 = ONNXTensor(name: "minus1", dims: [1], ints: [-1])
            let unsqueeze = opset >= 13
                ? node("Unsqueeze", "unsq", ["gather", "axes"])
                : node("Unsqueeze", "unsq", ["gather"], ["axes": .ints([0])])
            let nodes = [
                node("Conv", "conv", ["x", "W"], ["pads": .ints([1, 1, 1, 1])]),
                node("Relu", "relu", ["conv"]),
                node("Shape", "shape", ["relu"]),
                node("Gather", "gather", ["shape", "zero"], ["axis": .int(0)]),
                unsqueeze,
                node("Concat", "cat", ["unsq", "minus1"], ["axis": .int(0)]),
                node("Reshape", "view", ["relu", "cat"]),
                node("Gemm", "fc", ["view", "FC", "FCB"], ["transB": .int(1)]),
            ]
            let m = model(nodes, [w, fc, fcBias, zero, axes, minus1], input: [3, 4, 4], output: "fc", opset: opset)
            let net = try Network(model: m)
            XCTAssertEqual(net.taps.map(\.name), ["input", "conv", "relu", "fc"], "opset \(opset)")
            for plan in [(count: 1, capacity: 1), (count: 2, capacity: 4), (count: 4, capacity: 4)] {
                let out = try execute(m, count: plan.count, capacity: plan.capacity)
                let x = Tensor([plan.count, 3, 4, 4], floats: out.input)
                let r = refConv(x, w, nil, pads: [1, 1, 1, 1]).map(relu)
                assertClose(out.tap("relu"), r, "view: relu")
                let ref = refGemm(r.reshaped([plan.count, 32]), fc, transB: true, alpha: 1, beta: 1, c: fcBias)
                assertClose(out.logits, ref, "view pattern, opset \(opset), \(plan.count) at capacity \(plan.capacity)")
            }
        }
    }

    func testNoOpsAndConstantNode() throws {
        let ratio = ONNXTensor(name: "ratio", dims: [], floats: [0.5])
        let k = randomTensor("kv", [3, 1, 1], seed: 61)
        let nodes = [
            node("Identity", "id", ["x"]),
            node("Dropout", "drop", ["id", "ratio"]),
            node("Constant", "const", [], ["value": .tensor(k)]),
            node("Add", "add", ["drop", "const"]),
            node("Identity", "id2", ["add"]),
            node("Dropout", "drop2", ["id2"]),
        ]
        let m = flattened(nodes, [ratio], input: [3, 2, 4], tapped: "drop2")
        let net = try Network(model: m)
        XCTAssertEqual(net.taps.map(\.name), ["input", "add"])
        for plan in [(count: 1, capacity: 1), (count: 3, capacity: 5)] {
            let out = try execute(m, count: plan.count, capacity: plan.capacity)
            let ref = refBinary(Tensor([plan.count, 3, 2, 4], floats: out.input), Tensor(k), +)
            assertClose(out.tap("add"), ref, "Constant feeding Add")
            assertClose(out.logits, ref, "Identity and Dropout are the identity")
        }
        // Opset 11 Dropout with a ratio attribute, and Constant value_float.
        let m11 = flattened([node("Dropout", "drop", ["x"], ["ratio": .float(0.3)]),
                             node("Constant", "c", [], ["value_float": .float(2.5)]),
                             node("Mul", "mul", ["drop", "c"])], input: [2, 3], tapped: "mul", opset: 11)
        let out = try execute(m11, count: 2)
        assertClose(out.logits, Tensor([2, 2, 3], floats: out.input).map { 2.5 * $0 }, "opset 11 Dropout, Constant value_float")
        // Dropout in training mode would not be the identity: refused.
        var training = ONNXTensor(name: "training", dims: [], ints: [1])
        training.dataType = .bool
        let bad = flattened([node("Dropout", "drop_train", ["x", "ratio", "training"])], [ratio, training], input: [2, 3], tapped: "drop_train")
        XCTAssertThrowsError(try Network(model: bad)) { XCTAssertTrue("\($0)".contains("drop_train"), "\($0)") }
    }

    func testSoftmax() throws {
        let shape = [3, 2, 4]
        let cases: [(opset: Int, axis: Int?, axes: Range<Int>)] = [
            (13, nil, 3..<4),   // opset 13: default axis −1, one axis
            (13, -1, 3..<4),
            (13, 1, 1..<2),     // opset 13 axis 1: over the channels only
            (13, 2, 2..<3),
            (11, nil, 1..<4),   // opset 11: default axis 1, flattened C·H·W
            (11, 2, 2..<4),     // opset 11 axis 2: flattened H·W
            (11, -1, 3..<4),
        ]
        var results: [String: [Float]] = [:]
        for c in cases {
            let attrs: [String: ONNXAttribute] = c.axis.map { ["axis": .int($0)] } ?? [:]
            let m = flattened([node("Softmax", "sm", ["x"], attrs)], input: shape, tapped: "sm", opset: c.opset)
            for plan in [(count: 1, capacity: 1), (count: 3, capacity: 5)] {
                let out = try execute(m, count: plan.count, capacity: plan.capacity, range: -3...3)
                let ref = refSoftmax(Tensor([plan.count] + shape, floats: out.input), axes: c.axes)
                assertClose(out.tap("sm"), ref, "Softmax opset \(c.opset) axis \(c.axis.map { "\($0)" } ?? "default")")
                results["\(c.opset)/\(c.axis.map { "\($0)" } ?? "default")"] = out.tap("sm")
            }
        }
        XCTAssertTrue(differ(results["13/default"]!, results["11/default"]!), "opset 11 and 13 defaults must differ")
        // Opset 13 default: each row of 4 along W sums to 1; opset 11 default: each image sums to 1.
        let rows13 = stride(from: 0, to: results["13/default"]!.count, by: 4).map { results["13/default"]![$0..<($0 + 4)].reduce(0, +) }
        XCTAssertTrue(rows13.allSatisfy { abs($0 - 1) < 1e-5 })
        let images11 = stride(from: 0, to: results["11/default"]!.count, by: 24).map { results["11/default"]![$0..<($0 + 24)].reduce(0, +) }
        XCTAssertTrue(images11.allSatisfy { abs($0 - 1) < 1e-5 })
        // Rank-2 logits, the usual final Softmax.
        let m = model([node("Softmax", "prob", ["x"])], input: [7], output: "prob")
        let out = try execute(m, count: 3, range: -5...5)
        assertClose(out.logits, refSoftmax(Tensor([3, 7], floats: out.input), axes: 1..<2), "Softmax on logits")
    }

    // MARK: Taps

    func testTaps() throws {
        let w = randomTensor("W", [3, 2, 3, 3], seed: 71)
        let k = ONNXTensor(name: "k", dims: [1], floats: [0.5])
        let axes = ONNXTensor(name: "axes", dims: [1], ints: [0])
        let minus1 = ONNXTensor(name: "minus1", dims: [1], ints: [-1])
        let zero = ONNXTensor(name: "zero", dims: [], ints: [0])
        let nodes = [
            node("Conv", "conv", ["x", "W"]),
            node("Identity", "id", ["conv"]),
            node("Dropout", "drop", ["id"]),
            node("Relu", "", ["drop"], outputs: ["relu_out"]),          // no name: tap named by its output
            node("Constant", "const", [], ["value": .tensor(k)]),
            node("Cast", "cast", ["const"], ["to": .int(1)]),
            node("Add", "add", ["relu_out", "cast"]),
            node("Shape", "shape", ["add"]),
            node("Gather", "gather", ["shape", "zero"]),
            node("Unsqueeze", "unsq", ["gather", "axes"]),
            node("Concat", "cat", ["unsq", "minus1"], ["axis": .int(0)]),
            node("Squeeze", "sq", ["unsq", "axes"]),
            node("Reshape", "reshape", ["add", "cat"]),
            node("Sigmoid", "add", ["reshape"], outputs: ["sig_out"]),  // a duplicate node name: its output names the tap
        ]
        let m = model(nodes, [w, axes, minus1, zero], input: [2, 5, 5], output: "sig_out")
        let net = try Network(model: m)
        XCTAssertEqual(net.taps.map(\.name), ["input", "conv", "relu_out", "add", "sig_out"])
        XCTAssertEqual(net.taps.map(\.opType), ["Input", "Conv", "Relu", "Add", "Sigmoid"])
        XCTAssertEqual(net.taps.map(\.index), Array(0..<5))
        XCTAssertEqual(net.taps.map(\.shape), [[2, 5, 5], [3, 3, 3], [3, 3, 3], [3, 3, 3], [27]])
        XCTAssertEqual(net.taps[1].channels, 3)
        XCTAssertEqual(net.taps[1].valuesPerChannel, 9)
        XCTAssertEqual(net.taps[4].channels, 27)
        XCTAssertEqual(net.taps[4].valuesPerChannel, 1)
        for moving in ["id", "drop", "const", "cast", "shape", "gather", "unsq", "cat", "sq", "reshape"] {
            XCTAssertNil(net.tap(named: moving), "\(moving) only moves values and is no tap")
        }
        XCTAssertEqual(net.classCount, 27)
        // The observer reports taps in order, once each, input first, with their values.
        let executor = try net.makeExecutor(capacity: 2)
        let x = randomFloats(2 * 50, seed: 3)
        var seen: [Int] = []
        var inputSeen: [Float] = []
        x.withUnsafeBufferPointer { buffer in
            _ = executor.run(input: buffer, count: 2) { a in
                seen.append(a.tap)
                if a.tap == 0 { inputSeen = Array(a.values) }
            }
        }
        XCTAssertEqual(seen, [0, 1, 2, 3, 4])
        XCTAssertEqual(inputSeen, x)
    }

    // MARK: Ablation

    func testAblationZeroesChannelsBeforeDownstreamNodes() throws {
        let w1 = randomTensor("W1", [4, 3, 3, 3], seed: 81)
        let b1 = randomTensor("B1", [4], seed: 82, in: 0.2...0.5)   // positive: Relu outputs are not all zero
        let w2 = randomTensor("W2", [2, 4, 3, 3], seed: 83)
        let m = flattened([node("Conv", "c1", ["x", "W1", "B1"], ["pads": .ints([1, 1, 1, 1])]),
                           node("Relu", "r1", ["c1"]),
                           node("Conv", "c2", ["r1", "W2"])],
                          [w1, b1, w2], input: [3, 6, 6], tapped: "c2")
        let net = try Network(model: m)
        let r1 = try XCTUnwrap(net.tap(named: "r1")).index
        let c1 = try XCTUnwrap(net.tap(named: "c1")).index
        for plan in [(count: 3, capacity: 3), (count: 3, capacity: 5), (count: 1, capacity: 1)] {
            let plain = try execute(m, count: plan.count, capacity: plan.capacity)
            let x = Tensor([plan.count, 3, 6, 6], floats: plain.input)
            let relu1 = refConv(x, w1, b1, pads: [1, 1, 1, 1]).map(relu)
            assertClose(plain.tap("c2"), refConv(relu1, w2, nil), "unablated")

            let masked = try execute(m, count: plan.count, capacity: plan.capacity, input: plain.input,
                                     mask: AblationMask([r1: [2]]))
            var zeroed = relu1
            for n in 0..<plan.count { for h in 0..<6 { for w in 0..<6 { zeroed[n, 2, h, w] = 0 } } }
            assertClose(masked.tap("r1"), zeroed, "the observer sees the zeroed channel")
            XCTAssertTrue(masked.tap("r1").enumerated().filter { ($0.offset / 36) % 4 == 2 }.allSatisfy { $0.element == 0 })
            assertClose(masked.tap("c1"), refConv(x, w1, b1, pads: [1, 1, 1, 1]), "upstream taps are untouched")
            let ref = refConv(zeroed, w2, nil)
            assertClose(masked.tap("c2"), ref, "downstream conv reads the zeroed channel")
            assertClose(masked.logits, ref, "logits under ablation")
            XCTAssertTrue(differ(masked.logits, plain.logits), "ablating a live channel must change the logits")

            // Two channels at two taps: c1 channel 0 (before the Relu) and r1 channel 3.
            let two = try execute(m, count: plan.count, capacity: plan.capacity, input: plain.input,
                                  mask: AblationMask([c1: [0], r1: [3]]))
            var zeroed2 = relu1
            for n in 0..<plan.count { for h in 0..<6 { for w in 0..<6 { zeroed2[n, 0, h, w] = 0; zeroed2[n, 3, h, w] = 0 } } }
            assertClose(two.logits, refConv(zeroed2, w2, nil), "ablation at two taps")

            // An empty mask changes nothing.
            let empty = try execute(m, count: plan.count, capacity: plan.capacity, input: plain.input, mask: AblationMask([r1: []]))
            XCTAssertEqual(empty.logits, plain.logits)
            XCTAssertTrue(AblationMask([r1: []]).isEmpty)
        }
        // Ablating an input channel (tap 0).
        let out = try execute(m, count: 2, mask: AblationMask([0: [1]]))
        var x = Tensor([2, 3, 6, 6], floats: randomFloats(2 * 108, seed: 7))
        for n in 0..<2 { for h in 0..<6 { for w in 0..<6 { x[n, 1, h, w] = 0 } } }
        assertClose(out.logits, refConv(refConv(x, w1, b1, pads: [1, 1, 1, 1]).map(relu), w2, nil), "ablating an input channel")
    }

    // MARK: Buffer reuse

    func testLongChainWithBranchesMatchesReference() throws {
        let wa = randomTensor("Wa", [4, 3, 3, 3], seed: 91, in: -0.4...0.4), ba = randomTensor("Ba", [4], seed: 92)
        let wc = randomTensor("Wc", [4, 4, 3, 3], seed: 93, in: -0.3...0.3)
        let wf = randomTensor("Wf", [4, 2, 3, 3], seed: 94, in: -0.3...0.3), bf = randomTensor("Bf", [4], seed: 95)
        let gamma = randomTensor("bn_g", [4], seed: 96, in: 0.5...1.5), beta = randomTensor("bn_b", [4], seed: 97)
        let mu = randomTensor("bn_mu", [4], seed: 98), sigma2 = randomTensor("bn_s2", [4], seed: 99, in: 0.5...2)
        let wn = randomTensor("Wn", [5, 11, 1, 1], seed: 100, in: -0.5...0.5)
        let wt = randomTensor("Wt", [3, 5], seed: 101), bt = randomTensor("Bt", [3], seed: 102)
        let nodes = [
            node("Conv", "a", ["x", "Wa", "Ba"], ["pads": .ints([1, 1, 1, 1])]),
            node("Relu", "b", ["a"]),
            node("Conv", "c", ["b", "Wc"], ["pads": .ints([1, 1, 1, 1])]),
            node("Add", "d", ["c", "b"]),                       // residual
            node("Relu", "e", ["d"]),
            node("Conv", "f", ["e", "Wf", "Bf"], ["pads": .ints([1, 1, 1, 1]), "group": .int(2)]),
            node("BatchNormalization", "g", ["f", "bn_g", "bn_b", "bn_mu", "bn_s2"], outputs: ["g_out"]),
            node("Add", "h", ["e", "g_out"]),                   // residual, big operand on the left
            node("MaxPool", "i", ["h"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            node("GlobalAveragePool", "j", ["i"]),
            node("Mul", "k", ["i", "j"]),                       // per-image channel scaling
            node("Sigmoid", "l", ["i"]),
            node("AveragePool", "xp", ["x"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            node("Concat", "m", ["k", "l", "xp"], ["axis": .int(1)]),
            node("Conv", "n", ["m", "Wn"]),                     // pointwise
            node("LeakyRelu", "o", ["n"], ["alpha": .float(0.1)]),
            node("Relu", "q", ["n"]),
            node("Sub", "p", ["o", "q"]),
            node("Add", "p2", ["p", "n"]),
            node("GlobalAveragePool", "r", ["p2"]),
            node("Flatten", "s", ["r"]),
            node("Gemm", "t", ["s", "Wt", "Bt"], ["transB": .int(1)]),
        ]
        let m = model(nodes, [wa, ba, wc, wf, bf, gamma, beta, mu, sigma2, wn, wt, bt], input: [3, 8, 8], output: "t")
        // The plan must actually share buffers, or this test would prove nothing.
        let executor = try Network(model: m).makeExecutor(capacity: 4)
        XCTAssertLessThan(executor.plan.bufferSizes.count, executor.plan.steps.count / 2)
        for plan in [(count: 4, capacity: 4), (count: 3, capacity: 5), (count: 1, capacity: 1)] {
            let out = try execute(m, count: plan.count, capacity: plan.capacity, seed: 13)
            let x = Tensor([plan.count, 3, 8, 8], floats: out.input)
            var ref: [String: Tensor] = [:]
            ref["a"] = refConv(x, wa, ba, pads: [1, 1, 1, 1])
            ref["b"] = ref["a"]!.map(relu)
            ref["c"] = refConv(ref["b"]!, wc, nil, pads: [1, 1, 1, 1])
            ref["d"] = refBinary(ref["c"]!, ref["b"]!, +)
            ref["e"] = ref["d"]!.map(relu)
            ref["f"] = refConv(ref["e"]!, wf, bf, group: 2, pads: [1, 1, 1, 1])
            ref["g"] = refBatchNorm(ref["f"]!, scale: gamma, bias: beta, mean: mu, variance: sigma2, epsilon: 1e-5)
            ref["h"] = refBinary(ref["e"]!, ref["g"]!, +)
            ref["i"] = refPool(ref["h"]!, isMax: true, kernel: [2, 2], strides: [2, 2])
            ref["j"] = refGlobalPool(ref["i"]!, isMax: false)
            ref["k"] = refBinary(ref["i"]!, ref["j"]!, *)
            ref["l"] = ref["i"]!.map(sigmoid)
            ref["xp"] = refPool(x, isMax: false, kernel: [2, 2], strides: [2, 2])
            ref["m"] = refConcat([ref["k"]!, ref["l"]!, ref["xp"]!], axis: 1)
            ref["n"] = refConv(ref["m"]!, wn, nil)
            ref["o"] = ref["n"]!.map { $0 < 0 ? 0.1 * $0 : $0 }
            ref["q"] = ref["n"]!.map(relu)
            ref["p"] = refBinary(ref["o"]!, ref["q"]!, -)
            ref["p2"] = refBinary(ref["p"]!, ref["n"]!, +)
            ref["r"] = refGlobalPool(ref["p2"]!, isMax: false)
            ref["t"] = refGemm(ref["r"]!.reshaped([plan.count, 5]), wt, transB: true, alpha: 1, beta: 1, c: bt)
            for key in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "xp", "m", "n", "o", "q", "p", "p2", "r", "t"] {
                assertClose(out.tap(key), ref[key]!, "chain tap \(key), \(plan.count) at capacity \(plan.capacity)")
            }
            assertClose(out.logits, ref["t"]!, "chain logits, \(plan.count) at capacity \(plan.capacity)")
            // A second run on the same executor gives the same logits (no state left behind).
            let executor = try out.network.makeExecutor(capacity: plan.capacity)
            let first = out.input.withUnsafeBufferPointer { Array(executor.run(input: $0, count: plan.count)) }
            let second = out.input.withUnsafeBufferPointer { Array(executor.run(input: $0, count: plan.count)) }
            XCTAssertEqual(first, second)
            assertClose(first, ref["t"]!, "chain logits without observer")
        }
    }
}
