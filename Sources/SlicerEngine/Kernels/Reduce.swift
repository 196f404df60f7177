/// ReduceMean, ReduceMax, ReduceMin and ReduceSum over non-batch axes (MnasNet and
/// ShuffleNet end with `x.mean([2, 3])`, exported as ReduceMean). Opsets 1–17 name
/// the axes in an attribute (ReduceSum in an input from 13, all of them from 18).
struct ReduceKernel: Kernel {
    enum Operation: Sendable { case mean, max, min, sum }

    let operation: Operation
    let outputShape: [Int]
    /// Per image: the input's shape without the batch, and which of its axes are reduced.
    let inputShape: [Int]
    let reduced: [Bool]
    /// When the reduced axes are one contiguous block: values before, in and after it.
    let block: (outer: Int, count: Int, inner: Int)?

    func run(_ io: KernelIO) {
        let inPer = product(inputShape), outPer = product(outputShape.dropFirst())
        let count = inPer / max(outPer, 1)
        for n in 0..<io.batch {
            let x = io.inputs[0] + n * inPer, y = io.output + n * outPer
            if let block {
                for o in 0..<block.outer {
                    for i in 0..<block.inner {
                        var acc = start
                        var p = x + o * block.count * block.inner + i
                        for _ in 0..<block.count { acc = combine(acc, p.pointee); p += block.inner }
                        y[o * block.inner + i] = finish(acc, count)
                    }
                }
                continue
            }
            // Any set of axes: walk the input in order, each value to its output slot.
            for j in 0..<outPer { y[j] = start }
            var target = StridedCursor(shape: inputShape, strides: Self.outputStrides(inputShape, reduced))
            for i in 0..<inPer {
                y[target.offset] = combine(y[target.offset], x[i])
                target.advance()
            }
            for j in 0..<outPer { y[j] = finish(y[j], count) }
        }
    }

    private var start: Float {
        switch operation {
        case .mean, .sum: return 0
        case .max: return -.infinity
        case .min: return .infinity
        }
    }

    /// Max and min let NaN through, as ONNX Runtime does.
    @inline(__always)
    private func combine(_ acc: Float, _ v: Float) -> Float {
        switch operation {
        case .mean, .sum: return acc + v
        case .max: return v > acc || v.isNaN ? v : acc
        case .min: return v < acc || v.isNaN ? v : acc
        }
    }

    @inline(__always)
    private func finish(_ acc: Float, _ count: Int) -> Float {
        operation == .mean ? acc / Float(count) : acc
    }

    /// Output strides per input axis, 0 on reduced axes.
    static func outputStrides(_ shape: [Int], _ reduced: [Bool]) -> [Int] {
        var strides = [Int](repeating: 0, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where !reduced[i] {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let operation: Operation
        switch c.node.opType {
        case "ReduceMean": operation = .mean
        case "ReduceMax": operation = .max
        case "ReduceMin": operation = .min
        case "ReduceSum": operation = .sum
        default: throw c.unsupported("not a reduction")
        }
        let axesAsInput = c.opset >= 18 || (operation == .sum && c.opset >= 13)
        let axes: [Int]? = axesAsInput ? try c.optionalConstant(1, "axes")?.intValues : try c.ints("axes")
        let keep = try c.int("keepdims", default: 1) != 0
        var reduced = [Bool](repeating: false, count: shape.count)
        if let axes, !axes.isEmpty {
            for a in axes { reduced[try normalizedAxis(a, rank: shape.count, c)] = true }
        } else if axesAsInput, try c.int("noop_with_empty_axes", default: 0) != 0 {
            return .alias(inputIndex: 0, shape: shape)
        } else {
            reduced = reduced.map { _ in true }
        }
        guard !reduced[0] else { throw c.unsupported("reduction across the batch axis") }
        guard shape.indices.allSatisfy({ !reduced[$0] || shape[$0] > 0 }) else { throw c.failure("reduction of an empty axis") }
        let out = keep ? shape.indices.map { reduced[$0] ? 1 : shape[$0] } : shape.indices.filter { !reduced[$0] }.map { shape[$0] }
        let perImage = Array(shape.dropFirst()), flags = Array(reduced.dropFirst())
        var block: (outer: Int, count: Int, inner: Int)?
        if let first = flags.firstIndex(of: true), let last = flags.lastIndex(of: true), flags[first...last].allSatisfy({ $0 }) {
            block = (product(perImage[..<first]), product(perImage[first...last]), product(perImage[(last + 1)...]))
        }
        return .kernel(ReduceKernel(operation: operation, outputShape: out, inputShape: perImage, reduced: flags, block: block),
                       runtimeInputs: [0])
    }
}
