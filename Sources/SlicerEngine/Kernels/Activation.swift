import Foundation

/// Elementwise activations; all may run in place.
struct ActivationKernel: Kernel {
    enum Function: Sendable {
        case relu
        case leakyRelu(alpha: Float)
        case sigmoid
        case tanh
        case clip(min: Float, max: Float)
    }

    let function: Function
    let outputShape: [Int]
    var inPlaceInput: Int? { 0 }

    func run(_ io: KernelIO) {
        let count = io.batch * product(outputShape.dropFirst())
        let x = io.inputs[0], y = io.output
        switch function {
        case .relu:
            // v < 0 is false for NaN, which passes through as in ONNX Runtime.
            mapElements(x, y, count: count, vector: { $0.replacing(with: 0, where: $0 .< 0) },
                        scalar: { $0 < 0 ? 0 : $0 })
        case let .leakyRelu(alpha):
            mapElements(x, y, count: count, vector: { $0.replacing(with: $0 * alpha, where: $0 .< 0) },
                        scalar: { $0 < 0 ? $0 * alpha : $0 })
        case .sigmoid:
            for i in 0..<count { y[i] = 1 / (1 + Foundation.exp(-x[i])) }
        case .tanh:
            for i in 0..<count { y[i] = Foundation.tanh(x[i]) }
        case let .clip(lo, hi):
            // NaN stays NaN, as in ONNX Runtime: min/max would silently replace it.
            mapElements(x, y, count: count,
                        vector: { $0.replacing(with: lo, where: $0 .< lo).replacing(with: hi, where: $0 .> hi) },
                        scalar: { $0 < lo ? lo : ($0 > hi ? hi : $0) })
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let function: Function
        switch c.node.opType {
        case "Relu": function = .relu
        case "LeakyRelu": function = .leakyRelu(alpha: try c.float("alpha", default: 0.01))
        case "Sigmoid": function = .sigmoid
        case "Tanh": function = .tanh
        case "Clip":
            if c.opset < 11 {
                function = .clip(min: try c.float("min", default: -Float.greatestFiniteMagnitude),
                                 max: try c.float("max", default: Float.greatestFiniteMagnitude))
            } else {
                let lo = try c.optionalConstant(1, "Clip min")?.floatValues
                let hi = try c.optionalConstant(2, "Clip max")?.floatValues
                guard (lo?.count ?? 1) == 1, (hi?.count ?? 1) == 1 else { throw c.failure("min and max must be scalars") }
                function = .clip(min: lo?.first ?? -Float.infinity, max: hi?.first ?? Float.infinity)
            }
        default: throw c.unsupported("not an activation")
        }
        return .kernel(ActivationKernel(function: function, outputShape: shape), runtimeInputs: [0])
    }
}

/// Softmax along one axis (opset ≥ 13) or over the flattened trailing axes (opset < 13).
struct SoftmaxKernel: Kernel {
    let outputShape: [Int]
    /// Elements per softmax group and the stride between a group's elements.
    let groupLength: Int
    let innerStride: Int
    var inPlaceInput: Int? { 0 }

    func run(_ io: KernelIO) {
        let total = io.batch * product(outputShape.dropFirst())
        let x = io.inputs[0], y = io.output
        let block = groupLength * innerStride
        var base = 0
        while base < total {
            for inner in 0..<innerStride {
                var m = -Float.infinity
                for k in 0..<groupLength { m = max(m, x[base + inner + k * innerStride]) }
                var sum: Float = 0
                for k in 0..<groupLength {
                    let e = Foundation.exp(x[base + inner + k * innerStride] - m)
                    y[base + inner + k * innerStride] = e
                    sum += e
                }
                let scale = 1 / sum
                for k in 0..<groupLength { y[base + inner + k * innerStride] *= scale }
            }
            base += block
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let rank = shape.count
        let axis = try normalizedAxis(try c.int("axis", default: c.opset >= 13 ? -1 : 1), rank: rank, c)
        guard axis > 0 else { throw c.unsupported("softmax across the batch axis") }
        let kernel: SoftmaxKernel
        if c.opset >= 13 {
            kernel = SoftmaxKernel(outputShape: shape, groupLength: shape[axis], innerStride: product(shape[(axis + 1)...]))
        } else {
            kernel = SoftmaxKernel(outputShape: shape, groupLength: product(shape[axis...]), innerStride: 1)
        }
        return .kernel(kernel, runtimeInputs: [0])
    }
}
