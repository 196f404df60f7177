import Foundation

/// BatchNormalization in inference mode, folded into one scale and shift per channel.
struct BatchNormKernel: Kernel {
    let outputShape: [Int]
    let scale: [Float]
    let shift: [Float]
    let planeSize: Int
    var inPlaceInput: Int? { 0 }

    func run(_ io: KernelIO) {
        let channels = scale.count
        scale.withUnsafeBufferPointer { a in
            shift.withUnsafeBufferPointer { b in
                for n in 0..<io.batch {
                    for c in 0..<channels {
                        let offset = (n * channels + c) * planeSize
                        let x = io.inputs[0] + offset, y = io.output + offset
                        let s = a[c], t = b[c]
                        // Multiply, then add (no fused multiply-add): the rounding of the reference formula.
                        let sv = SIMD16<Float>(repeating: s), tv = SIMD16<Float>(repeating: t)
                        var i = 0
                        while i + 16 <= planeSize { storeVector(loadVector(x + i) * sv + tv, y + i); i += 16 }
                        while i < planeSize { y[i] = x[i] * s + t; i += 1 }
                    }
                }
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        guard shape.count >= 2 else { throw c.failure("input rank \(shape.count) has no channel axis") }
        if try c.int("training_mode", default: 0) != 0 {
            throw c.unsupported("BatchNormalization in training mode; export the model after model.eval()")
        }
        if c.node.outputs.dropFirst().contains(where: { !$0.isEmpty }) {
            throw c.unsupported("BatchNormalization with running-statistics outputs (training mode)")
        }
        let channels = shape[1]
        let gamma = try c.constant(1, "scale").floatValues
        let beta = try c.constant(2, "bias").floatValues
        let mean = try c.constant(3, "mean").floatValues
        let variance = try c.constant(4, "var").floatValues
        guard [gamma, beta, mean, variance].allSatisfy({ $0.count == channels }) else {
            throw c.failure("parameters do not have \(channels) values each")
        }
        let epsilon = try c.float("epsilon", default: 1e-5)
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for i in 0..<channels {
            // Computed in double so the folded form matches y = γ(x−μ)/√(σ²+ε)+β to float rounding.
            let s = Double(gamma[i]) / (Double(variance[i]) + Double(epsilon)).squareRoot()
            scale[i] = Float(s)
            shift[i] = Float(Double(beta[i]) - Double(mean[i]) * s)
        }
        return .kernel(BatchNormKernel(outputShape: shape, scale: scale, shift: shift,
                                       planeSize: product(shape[2...])), runtimeInputs: [0])
    }
}

/// Local response normalization across channels (AlexNet, GoogLeNet as the ONNX model
/// zoo has them): y = x / (bias + alpha/size · Σ x²)^beta, the sum over channels
/// max(0, c − ⌊(size−1)/2⌋) … min(C−1, c + ⌈(size−1)/2⌉) at the same position.
struct LRNKernel: Kernel {
    let outputShape: [Int]
    let size: Int
    let alpha: Float, beta: Float, bias: Float
    /// Values per channel.
    let planeSize: Int

    /// One plane of window sums.
    var scratchCount: Int { planeSize }

    func run(_ io: KernelIO) {
        let channels = outputShape[1]
        let below = (size - 1) / 2, above = size - 1 - below
        let scale = alpha / Float(size)
        let sums = io.scratch
        for n in 0..<io.batch {
            let x = io.inputs[0] + n * channels * planeSize, y = io.output + n * channels * planeSize
            for c in 0..<channels {
                zeroFloats(sums, count: planeSize)
                for k in max(0, c - below)...min(channels - 1, c + above) {
                    let plane = x + k * planeSize
                    for i in 0..<planeSize { sums[i] += plane[i] * plane[i] }
                }
                let source = x + c * planeSize, target = y + c * planeSize
                for i in 0..<planeSize { target[i] = source[i] / Foundation.pow(bias + scale * sums[i], beta) }
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        guard shape.count >= 3 else { throw c.failure("input rank \(shape.count): LRN needs (N, C, D1, …)") }
        let size = try c.int("size", default: 0)
        guard size > 0 else { throw c.failure("attribute 'size' must be a positive integer") }
        return .kernel(LRNKernel(outputShape: shape, size: size, alpha: try c.float("alpha", default: 1e-4),
                                 beta: try c.float("beta", default: 0.75), bias: try c.float("bias", default: 1),
                                 planeSize: product(shape[2...])), runtimeInputs: [0])
    }
}
