import Foundation

/// Elementwise activations; all may run in place.
struct ActivationKernel: Kernel {
    enum Function: Sendable {
        case relu
        case leakyRelu(alpha: Float)
        case sigmoid
        case tanh
        case clip(min: Float, max: Float)
        /// max(0, min(1, alpha·x + beta)).
        case hardSigmoid(alpha: Float, beta: Float)
        /// x · max(0, min(1, x/6 + 1/2)) (ONNX HardSwish, opset 14; PyTorch's hardswish).
        case hardSwish
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
        case let .hardSigmoid(alpha, beta):
            mapElements(x, y, count: count, vector: { Self.hardSigmoid($0, alpha, beta) },
                        scalar: { Self.hardSigmoid($0, alpha, beta) })
        case .hardSwish:
            mapElements(x, y, count: count, vector: { $0 * Self.hardSigmoid($0, 1 / 6, 0.5) },
                        scalar: { $0 * Self.hardSigmoid($0, 1 / 6, 0.5) })
        }
    }

    /// alpha·x + beta clamped to [0, 1]; NaN stays NaN (comparisons with NaN are false).
    @inline(__always)
    static func hardSigmoid(_ x: SIMD16<Float>, _ alpha: Float, _ beta: Float) -> SIMD16<Float> {
        let v = x * alpha + beta
        return v.replacing(with: 0, where: v .< 0).replacing(with: 1, where: v .> 1)
    }

    @inline(__always)
    static func hardSigmoid(_ x: Float, _ alpha: Float, _ beta: Float) -> Float {
        let v = x * alpha + beta
        return v < 0 ? 0 : (v > 1 ? 1 : v)
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let function: Function
        switch c.node.opType {
        case "Relu": function = .relu
        case "LeakyRelu": function = .leakyRelu(alpha: try c.float("alpha", default: 0.01))
        case "Sigmoid": function = .sigmoid
        case "Tanh": function = .tanh
        case "HardSigmoid": function = .hardSigmoid(alpha: try c.float("alpha", default: 0.2), beta: try c.float("beta", default: 0.5))
        case "HardSwish": function = .hardSwish
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

/// Softmax or LogSoftmax along one axis (opset ≥ 13) or over the flattened trailing
/// axes (opset < 13).
struct SoftmaxKernel: Kernel {
    /// LogSoftmax: x − max − log Σ exp(x − max), which stays finite where log(softmax) would not.
    let isLog: Bool
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
                if isLog {
                    for k in 0..<groupLength { sum += Foundation.exp(x[base + inner + k * innerStride] - m) }
                    let shift = m + Foundation.log(sum)
                    for k in 0..<groupLength { y[base + inner + k * innerStride] = x[base + inner + k * innerStride] - shift }
                    continue
                }
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
        let isLog = c.node.opType == "LogSoftmax"
        if c.opset >= 13 {
            kernel = SoftmaxKernel(isLog: isLog, outputShape: shape, groupLength: shape[axis], innerStride: product(shape[(axis + 1)...]))
        } else {
            kernel = SoftmaxKernel(isLog: isLog, outputShape: shape, groupLength: product(shape[axis...]), innerStride: 1)
        }
        return .kernel(kernel, runtimeInputs: [0])
    }
}

/// PRelu: x where x ≥ 0, slope·x where x < 0, the slope broadcast to x (unidirectionally:
/// PyTorch exports one slope per channel as [C, 1, 1], or a single one).
struct PReluKernel: Kernel {
    let outputShape: [Int]
    let slope: [Float]
    let layout: BinaryKernel.Layout
    var inPlaceInput: Int? { 0 }

    func run(_ io: KernelIO) {
        let total = io.batch * product(outputShape.dropFirst())
        let x = io.inputs[0], y = io.output
        slope.withUnsafeBufferPointer { a in
            switch layout {
            case let .perBlock(block, count):
                var i = 0, k = 0
                while i < total {
                    let s = a[k]
                    mapElements(x + i, y + i, count: block, vector: { $0.replacing(with: $0 * s, where: $0 .< 0) },
                                scalar: { $0 < 0 ? $0 * s : $0 })
                    i += block
                    k += 1
                    if k == count { k = 0 }
                }
            case let .repeatEvery(period):
                var i = 0
                while i < total {
                    let span = min(period, total - i)
                    for j in 0..<span { let v = x[i + j]; y[i + j] = v < 0 ? v * a[j] : v }
                    i += period
                }
            case .same, .general:
                // The factory builds only the two layouts above (a slope spans no batch).
                for i in 0..<total { let v = x[i]; y[i] = v < 0 ? v * a[i % a.count] : v }
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let slope = try c.constant(1, "slope")
        guard slope.dims.count <= shape.count else { throw c.failure("slope \(slope.dims) has a higher rank than \(shape)") }
        let padded = Array(repeating: 1, count: shape.count - slope.dims.count) + slope.dims
        guard padded[0] == 1, zip(padded, shape).allSatisfy({ $0 == $1 || $0 == 1 }) else {
            throw c.failure("slope \(slope.dims) does not broadcast to \(shape) without spanning the batch")
        }
        var values = slope.floatValues
        if values.isEmpty { values = [0] }
        let layout: BinaryKernel.Layout
        if values.count == 1 {
            layout = .perBlock(block: product(shape.dropFirst()), count: 1)
        } else if let fast = BinaryKernel.layout(big: shape, small: padded, output: shape), !(fast.isGeneralOrSame) {
            layout = fast
        } else {
            // Any other broadcast: expand the slope to one image's shape.
            let map = ConstantFolder.broadcastSources(Array(padded.dropFirst()), to: Array(shape.dropFirst()))
            values = map.map { values[$0] }
            layout = .repeatEvery(period: values.count)
        }
        return .kernel(PReluKernel(outputShape: shape, slope: values, layout: layout), runtimeInputs: [0])
    }
}
