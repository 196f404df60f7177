/// MaxPool and AveragePool over NCHW planes.
struct PoolKernel: Kernel {
    enum Mode: Sendable { case max, average(countIncludePad: Bool) }
    let mode: Mode
    let outputShape: [Int]
    let height: Int, width: Int
    let window: Window2D

    func run(_ io: KernelIO) {
        let planes = io.batch * outputShape[1]
        let w = window
        let outPlane = w.outH * w.outW, inPlane = height * width
        for plane in 0..<planes {
            let x = io.inputs[0] + plane * inPlane
            let y = io.output + plane * outPlane
            for r in 0..<w.outH {
                let h0 = r * w.strideH - w.padTop
                for col in 0..<w.outW {
                    let w0 = col * w.strideW - w.padLeft
                    switch mode {
                    case .max:
                        var best = -Float.infinity
                        var sawNaN = false
                        for ki in 0..<w.kernelH {
                            let ih = h0 + ki * w.dilationH
                            if ih < 0 || ih >= height { continue }
                            for kj in 0..<w.kernelW {
                                let iw = w0 + kj * w.dilationW
                                if iw < 0 || iw >= width { continue }
                                let v = x[ih * width + iw]
                                if v > best { best = v } else if v.isNaN { sawNaN = true }
                            }
                        }
                        y[r * w.outW + col] = sawNaN ? .nan : best
                    case let .average(includePad):
                        var sum: Float = 0
                        var count = 0
                        for ki in 0..<w.kernelH {
                            let ih = h0 + ki * w.dilationH
                            if ih < 0 || ih >= height { continue }
                            for kj in 0..<w.kernelW {
                                let iw = w0 + kj * w.dilationW
                                if iw < 0 || iw >= width { continue }
                                sum += x[ih * width + iw]
                                count += 1
                            }
                        }
                        if includePad {
                            // Padding counts, but a ceil_mode window hanging past the
                            // padded border does not (as PyTorch and ONNX Runtime do).
                            let hEnd = min(h0 + (w.kernelH - 1) * w.dilationH + 1, height + w.padBottom)
                            let wEnd = min(w0 + (w.kernelW - 1) * w.dilationW + 1, width + w.padRight)
                            let rows = (hEnd - h0 + w.dilationH - 1) / w.dilationH
                            let cols = (wEnd - w0 + w.dilationW - 1) / w.dilationW
                            count = rows * cols
                        }
                        y[r * w.outW + col] = count > 0 ? sum / Float(count) : 0
                    }
                }
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        guard shape.count == 4 else { throw c.unsupported("only 2-D pooling on NCHW data (input rank \(shape.count))") }
        if c.node.outputs.count > 1 && !c.node.outputs[1].isEmpty {
            throw c.unsupported("the Indices output of MaxPool")
        }
        let ceil = try c.int("ceil_mode", default: 0) != 0
        let window = try Window2D.from(c, inH: shape[2], inW: shape[3], kernel: nil, ceilMode: ceil)
        let mode: Mode = c.node.opType == "MaxPool"
            ? .max : .average(countIncludePad: try c.int("count_include_pad", default: 0) != 0)
        if case .average = mode, window.dilationH != 1 || window.dilationW != 1, c.opset < 19 {
            throw c.failure("AveragePool has no dilations before opset 19")
        }
        let kernel = PoolKernel(mode: mode, outputShape: [shape[0], shape[1], window.outH, window.outW],
                                height: shape[2], width: shape[3], window: window)
        return .kernel(kernel, runtimeInputs: [0])
    }
}

/// GlobalAveragePool / GlobalMaxPool: one value per plane, spatial dims kept as 1.
struct GlobalPoolKernel: Kernel {
    let isMax: Bool
    let outputShape: [Int]
    let planeSize: Int

    func run(_ io: KernelIO) {
        let planes = io.batch * outputShape[1]
        for plane in 0..<planes {
            let x = io.inputs[0] + plane * planeSize
            if isMax {
                var best = -Float.infinity
                for i in 0..<planeSize {
                    let v = x[i]
                    if v.isNaN { best = .nan; break }
                    if v > best { best = v }
                }
                io.output[plane] = best
            } else {
                var sum: Float = 0
                for i in 0..<planeSize { sum += x[i] }
                io.output[plane] = sum / Float(planeSize)
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        guard shape.count >= 3 else { throw c.failure("input rank \(shape.count) has no spatial axes") }
        let out = [shape[0], shape[1]] + Array(repeating: 1, count: shape.count - 2)
        return .kernel(GlobalPoolKernel(isMax: c.node.opType == "GlobalMaxPool", outputShape: out,
                                        planeSize: product(shape[2...])), runtimeInputs: [0])
    }
}
