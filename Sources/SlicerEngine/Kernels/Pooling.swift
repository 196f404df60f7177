/// MaxPool and AveragePool over NCHW planes.
struct PoolKernel: Kernel {
    enum Mode: Sendable { case max, average(countIncludePad: Bool) }
    let mode: Mode
    let outputShape: [Int]
    let height: Int, width: Int
    let window: Window2D

    /// For each output row (column): the first input row (column) of its window and
    /// the range of window taps that fall inside the image, computed once at plan time.
    let rowSpans: [WindowSpan]
    let colSpans: [WindowSpan]
    /// The vectorised path (PhasePlanes.swift) for every pool but the plain 2×2
    /// max (which has its own) and average pools with an empty window.
    var planes: PhasePlanes?
    /// Average pooling's divisor of every output, where the vectorised path
    /// stores it: output rows of `outW`, or of `phaseWidth` in the flat run.
    var divisors: [Float] = []
    /// The 2×2 max pool keeps the vertical maxima of a whole plane.
    var scratchCount: Int { max(height * width, planes?.scratchCount ?? 0) }

    /// Whether this is a plain 2×2 stride-2 max pool (no padding, no
    /// dilation) whose windows tile a `rows` × `columns` plane exactly as
    /// maxPool2x2 reads it, the input being that plane: what a convolution
    /// producing the plane can merge (PooledConvolution.swift,
    /// ChannelVectorConvolution.swift, WinogradConvolution.swift).
    func isPlainMax2x2(over rows: Int, _ columns: Int) -> Bool {
        let p = window
        guard case .max = mode else { return false }
        return p.kernelH == 2 && p.kernelW == 2 && p.strideH == 2 && p.strideW == 2
            && p.dilationH == 1 && p.dilationW == 1
            && p.padTop == 0 && p.padLeft == 0 && p.padBottom == 0 && p.padRight == 0
            && height == rows && width == columns
            && p.outH >= 1 && p.outW >= 1 && 2 * p.outH <= rows && 2 * p.outW <= columns
    }

    func run(_ io: KernelIO) {
        let planes = io.batch * outputShape[1]
        let w = window
        let outPlane = w.outH * w.outW, inPlane = height * width
        let isPlain2x2 = w.kernelH == 2 && w.kernelW == 2 && w.strideH == 2 && w.strideW == 2
            && w.padTop == 0 && w.padLeft == 0 && 2 * w.outH <= height && 2 * w.outW <= width
        let input = io.inputs[0]
        if !isPlain2x2, let vectorised = self.planes {
            runPlanes(io, vectorised, planes: planes)
            return
        }
        for plane in 0..<planes {
            let x = input + plane * inPlane
            let y = io.output + plane * outPlane
            switch mode {
            case .max where isPlain2x2:
                maxPool2x2(x, y, io.scratch, outH: w.outH, outW: w.outW, width: width)
            case .max:
                for r in 0..<w.outH {
                    let rs = rowSpans[r]
                    for c in 0..<w.outW {
                        let cs = colSpans[c]
                        var best = -Float.infinity
                        var ki = rs.first
                        while ki < rs.last {
                            let row = x + (rs.origin + ki * w.dilationH) * width + cs.origin
                            var kj = cs.first
                            while kj < cs.last { best = poolMax(best, row[kj * w.dilationW]); kj += 1 }
                            ki += 1
                        }
                        y[r * w.outW + c] = best
                    }
                }
            case let .average(includePad):
                for r in 0..<w.outH {
                    let rs = rowSpans[r]
                    for c in 0..<w.outW {
                        let cs = colSpans[c]
                        var sum: Float = 0
                        var ki = rs.first
                        while ki < rs.last {
                            let row = x + (rs.origin + ki * w.dilationH) * width + cs.origin
                            var kj = cs.first
                            while kj < cs.last { sum += row[kj * w.dilationW]; kj += 1 }
                            ki += 1
                        }
                        let count = includePad ? rs.paddedCount * cs.paddedCount : (rs.last - rs.first) * (cs.last - cs.first)
                        y[r * w.outW + c] = count > 0 ? sum / Float(count) : 0
                    }
                }
            }
        }
    }

    /// The pool over phase planes padded with −∞ (max) or 0 (average): every
    /// tap is read without bounds checks. A padding tap changes nothing: the
    /// max takes a value only when it is larger, and x + 0 = x for every sum
    /// from +0 (which is never −0), so the values are those of the loops above,
    /// in the same row-major order of taps.
    private func runPlanes(_ io: KernelIO, _ p: PhasePlanes, planes: Int) {
        let inPlane = height * width, outPlane = window.outH * window.outW
        let taps = window.kernelH * window.kernelW
        let padded = io.scratch, flat = padded + p.phaseCount * p.phaseStride
        switch mode {
        case .max:
            p.withPlanes(padded, padding: -.infinity) { offsets, copy in
                for plane in 0..<planes {
                    p.copyChannel(io.inputs[0] + plane * inPlane, into: padded, copy)
                    p.computePlane(padded, flat, io.output + plane * outPlane) { src, _ in
                        var best = SIMD16<Float>(repeating: -.infinity)
                        for t in 0..<taps {
                            let x = loadVector(src + offsets[t])
                            best = best.replacing(with: x, where: x .> best)
                        }
                        return best
                    }
                }
            }
        case .average:
            divisors.withUnsafeBufferPointer { d in
                guard let divisors = d.baseAddress else { return }
                p.withPlanes(padded, padding: 0) { offsets, copy in
                    for plane in 0..<planes {
                        p.copyChannel(io.inputs[0] + plane * inPlane, into: padded, copy)
                        p.computePlane(padded, flat, io.output + plane * outPlane) { src, at in
                            var sum = SIMD16<Float>()
                            for t in 0..<taps { sum += loadVector(src + offsets[t]) }
                            return sum / loadVector(divisors + at)
                        }
                    }
                }
            }
        }
    }

    /// Window taps along one axis for every output position.
    static func spans(outputs: Int, input: Int, kernel: Int, stride: Int, dilation: Int,
                      padBegin: Int, padEnd: Int) -> [WindowSpan] {
        (0..<outputs).map { o in
            let origin = o * stride - padBegin
            var first = 0, last = kernel, padded = 0
            while first < kernel && origin + first * dilation < 0 { first += 1 }
            while last > first && origin + (last - 1) * dilation >= input { last -= 1 }
            // Taps inside the padded border count for count_include_pad; a
            // ceil_mode window hanging past it does not (PyTorch, ONNX Runtime).
            for k in 0..<kernel where origin + k * dilation < input + padEnd { padded += 1 }
            return WindowSpan(origin: origin, first: first, last: last, paddedCount: padded)
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
        var kernel = PoolKernel(
            mode: mode, outputShape: [shape[0], shape[1], window.outH, window.outW],
            height: shape[2], width: shape[3], window: window,
            rowSpans: spans(outputs: window.outH, input: shape[2], kernel: window.kernelH, stride: window.strideH,
                            dilation: window.dilationH, padBegin: window.padTop, padEnd: window.padBottom),
            colSpans: spans(outputs: window.outW, input: shape[3], kernel: window.kernelW, stride: window.strideW,
                            dilation: window.dilationW, padBegin: window.padLeft, padEnd: window.padRight))
        kernel.planes = PhasePlanes(window: window, height: shape[2], width: shape[3])
        if case let .average(includePad) = mode, let p = kernel.planes {
            // Divisors where the vectorised path stores each output (1 in the flat
            // run's dropped columns); a window with no tap keeps the loops' 0.
            let rowWidth = p.isFlat ? p.phaseWidth : window.outW
            var d = [Float](repeating: 1, count: p.isFlat ? p.flatCount : window.outH * window.outW)
            for (r, rs) in kernel.rowSpans.enumerated() {
                for (q, cs) in kernel.colSpans.enumerated() {
                    let count = includePad ? rs.paddedCount * cs.paddedCount : (rs.last - rs.first) * (cs.last - cs.first)
                    d[r * rowWidth + q] = Float(count)
                }
            }
            if d.contains(0) { kernel.planes = nil } else { kernel.divisors = d }
        }
        return .kernel(kernel, runtimeInputs: [0])
    }
}

/// The common 2×2/2 pool without padding: a vertical max over two contiguous
/// rows, then the max of each pair. Plain selects (no NaN test) so that the
/// compiler emits branch-free vector max instructions: with a NaN test the
/// loop branches on data and runs several times slower. As in ONNX Runtime's
/// vectorised pooling, a NaN may then be dropped by the max; the tap before
/// the pool still shows it to the analysis.
@inline(never)
func maxPool2x2(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ pairs: UnsafeMutablePointer<Float>,
                outH: Int, outW: Int, width: Int) {
    // Vertical maxima of each pair of rows, the plane's rows side by side…
    let pairWidth = 2 * outW
    for r in 0..<outH {
        let top = x + 2 * r * width, bottom = top + width
        zipElements(top, bottom, pairs + r * pairWidth, count: pairWidth,
                    vector: { a, b in poolMax(a, b) }, scalar: { a, b in poolMax(a, b) })
    }
    // …so that the maxima of neighbouring pairs are one pass over the whole
    // output plane, in full vectors even when a row is narrower than one.
    let count = outH * outW
    var j = 0
    while j + 16 <= count {
        // 32 vertical maxima: the left and right halves of 16 windows.
        let lo = loadVector(pairs + 2 * j), hi = loadVector(pairs + 2 * j + 16)
        let left = SIMD16<Float>(lowHalf: lo.evenHalf, highHalf: hi.evenHalf)
        let right = SIMD16<Float>(lowHalf: lo.oddHalf, highHalf: hi.oddHalf)
        storeVector(poolMax(left, right), y + j)
        j += 16
    }
    while j < count { y[j] = poolMax(pairs[2 * j], pairs[2 * j + 1]); j += 1 }
}

struct WindowSpan: Sendable {
    /// Input coordinate of the window's first tap (negative inside the padding).
    let origin: Int
    /// Taps `first..<last` lie inside the input.
    let first: Int, last: Int
    /// Taps inside the input or its padding.
    let paddedCount: Int
}

/// The max used by all pooling: a plain select, branch-free and vectorisable
/// (see `maxPool2x2` for what that means for NaN).
@inline(__always) func poolMax(_ a: Float, _ b: Float) -> Float {
    b > a ? b : a
}

/// `poolMax` lane by lane.
@inline(__always) func poolMax(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    a.replacing(with: b, where: b .> a)
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
                for i in 0..<planeSize { best = poolMax(best, x[i]) }
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
