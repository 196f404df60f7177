import COpenBLAS

/// Spatial geometry shared by Conv and the pooling kernels.
struct Window2D: Sendable, Equatable {
    var kernelH: Int, kernelW: Int
    var strideH = 1, strideW = 1
    var dilationH = 1, dilationW = 1
    var padTop = 0, padLeft = 0, padBottom = 0, padRight = 0
    var outH = 0, outW = 0

    /// Reads kernel_shape/strides/dilations/pads/auto_pad with ONNX defaults and
    /// computes the output size (`ceilMode` as in pooling; Conv always floors).
    static func from(_ c: NodeContext, inH: Int, inW: Int, kernel: (Int, Int)?, ceilMode: Bool = false) throws -> Window2D {
        let ks = try c.ints("kernel_shape")
        guard let kh = ks.map({ $0.count == 2 ? $0[0] : -1 }) ?? kernel?.0,
              let kw = ks.map({ $0.count == 2 ? $0[1] : -1 }) ?? kernel?.1, kh > 0, kw > 0 else {
            throw c.unsupported("only 2-D kernels are supported (kernel_shape \(ks ?? []))")
        }
        var w = Window2D(kernelH: kh, kernelW: kw)
        if let s = try c.ints("strides") {
            guard s.count == 2, s.allSatisfy({ $0 > 0 }) else { throw c.failure("strides \(s) invalid") }
            (w.strideH, w.strideW) = (s[0], s[1])
        }
        if let d = try c.ints("dilations") {
            guard d.count == 2, d.allSatisfy({ $0 > 0 }) else { throw c.failure("dilations \(d) invalid") }
            (w.dilationH, w.dilationW) = (d[0], d[1])
        }
        // Bound the geometry so that the size arithmetic below cannot overflow on a
        // damaged file (e.g. dilations of 2^62); real networks stay far below 2^16.
        let limit = 1 << 16
        guard [kh, kw, w.strideH, w.strideW, w.dilationH, w.dilationW].allSatisfy({ $0 <= limit }) else {
            throw c.unsupported("implausibly large kernel_shape, strides or dilations")
        }
        let effH = (kh - 1) * w.dilationH + 1, effW = (kw - 1) * w.dilationW + 1
        let autoPad = try c.string("auto_pad", default: "NOTSET")
        switch autoPad {
        case "NOTSET":
            if let p = try c.ints("pads") {
                guard p.count == 4, p.allSatisfy({ $0 >= 0 && $0 <= limit }) else { throw c.failure("pads \(p) invalid") }
                (w.padTop, w.padLeft, w.padBottom, w.padRight) = (p[0], p[1], p[2], p[3])
            }
            w.outH = try outputSize(inH, w.padTop + w.padBottom, effH, w.strideH, ceilMode: ceilMode, padBegin: w.padTop, c)
            w.outW = try outputSize(inW, w.padLeft + w.padRight, effW, w.strideW, ceilMode: ceilMode, padBegin: w.padLeft, c)
        case "VALID":
            w.outH = try outputSize(inH, 0, effH, w.strideH, ceilMode: ceilMode, padBegin: 0, c)
            w.outW = try outputSize(inW, 0, effW, w.strideW, ceilMode: ceilMode, padBegin: 0, c)
        case "SAME_UPPER", "SAME_LOWER":
            // Output = ceil(in / stride); the total padding is split, the odd pixel
            // going after (UPPER) or before (LOWER) the data.
            w.outH = (inH + w.strideH - 1) / w.strideH
            w.outW = (inW + w.strideW - 1) / w.strideW
            let totalH = max(0, (w.outH - 1) * w.strideH + effH - inH)
            let totalW = max(0, (w.outW - 1) * w.strideW + effW - inW)
            let upper = autoPad == "SAME_UPPER"
            w.padTop = upper ? totalH / 2 : totalH - totalH / 2
            w.padBottom = totalH - w.padTop
            w.padLeft = upper ? totalW / 2 : totalW - totalW / 2
            w.padRight = totalW - w.padLeft
        default:
            throw c.failure("auto_pad '\(autoPad)' unknown")
        }
        // Kernels precompute per-output tables: refuse absurd planes before they do.
        guard checkedProduct([w.outH, w.outW]) != nil else {
            throw c.unsupported("output of \(w.outH)×\(w.outW) values per channel is implausibly large")
        }
        return w
    }

    private static func outputSize(_ input: Int, _ pad: Int, _ effective: Int, _ stride: Int,
                                   ceilMode: Bool, padBegin: Int, _ c: NodeContext) throws -> Int {
        let span = input + pad - effective
        guard span >= 0 else { throw c.failure("window \(effective) larger than padded input \(input + pad)") }
        var out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
        // With ceil_mode the last window must still start inside the input or the
        // leading padding (PyTorch's rule, which its ONNX exports rely on).
        if ceilMode && (out - 1) * stride >= input + padBegin { out -= 1 }
        return out
    }
}

/// 2-D convolution as im2col + SGEMM, with small images batched into one GEMM
/// so that late layers with tiny feature maps still give OpenBLAS wide matrices.
struct ConvKernel: Kernel {
    let outputShape: [Int]
    let channels: Int, height: Int, width: Int
    let outChannels: Int, groups: Int
    let window: Window2D
    let weights: WeightBuffer   // [M, C/G, kh, kw]
    let bias: WeightBuffer?     // [M]
    /// Images per GEMM.
    let imagesPerGemm: Int
    /// A 1×1, stride-1, unpadded conv reads its input directly as the column matrix.
    let isPointwise: Bool

    var columnRows: Int { channels / groups * window.kernelH * window.kernelW }
    var outPixels: Int { window.outH * window.outW }

    var scratchCount: Int {
        let cols = (isPointwise && imagesPerGemm == 1) ? 0 : columnRows * imagesPerGemm * outPixels
        let staging = imagesPerGemm > 1 ? (outChannels / groups) * imagesPerGemm * outPixels : 0
        return cols + staging
    }

    func run(_ io: KernelIO) {
        let x = io.inputs[0], y = io.output
        let cg = channels / groups, mg = outChannels / groups
        let k = columnRows, p = outPixels
        let inImage = channels * height * width, outImage = outChannels * p
        var n0 = 0
        while n0 < io.batch {
            let b = min(imagesPerGemm, io.batch - n0)
            for g in 0..<groups {
                let w = weights.pointer + g * mg * k
                let cols: UnsafeMutablePointer<Float>
                if isPointwise && imagesPerGemm == 1 {
                    cols = x + n0 * inImage + g * cg * height * width
                } else {
                    cols = io.scratch
                    for j in 0..<b {
                        im2col(x + (n0 + j) * inImage + g * cg * height * width, cg, into: cols + j * p, rowStride: b * p)
                    }
                }
                if b == 1 && imagesPerGemm == 1 {
                    let out = y + n0 * outImage + g * mg * p
                    gemm(w, cols, out, m: mg, n: p, k: k, biasOffset: g * mg)
                } else {
                    let staging = io.scratch + k * imagesPerGemm * p
                    gemm(w, cols, staging, m: mg, n: b * p, k: k, biasOffset: g * mg)
                    for j in 0..<b {
                        for m in 0..<mg {
                            (y + (n0 + j) * outImage + (g * mg + m) * p)
                                .update(from: staging + m * b * p + j * p, count: p)
                        }
                    }
                }
            }
            n0 += b
        }
    }

    /// out[m, n] = W[m, :] · cols[:, n] + bias[m]
    @inline(__always)
    private func gemm(_ w: UnsafeMutablePointer<Float>, _ cols: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                      m: Int, n: Int, k: Int, biasOffset: Int) {
        var beta: Float = 0
        if let bias {
            for row in 0..<m { (out + row * n).update(repeating: bias.pointer[biasOffset + row], count: n) }
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, w, Int32(k), cols, Int32(n), beta, out, Int32(n))
    }

    /// Writes the column matrix of one image (rows = cg·kh·kw, each `outPixels` long,
    /// `rowStride` apart so several images can sit side by side).
    private func im2col(_ x: UnsafeMutablePointer<Float>, _ cg: Int, into cols: UnsafeMutablePointer<Float>, rowStride: Int) {
        let wd = window
        let oh = wd.outH, ow = wd.outW
        var row = 0
        for ci in 0..<cg {
            let plane = x + ci * height * width
            for ki in 0..<wd.kernelH {
                for kj in 0..<wd.kernelW {
                    let dst = cols + row * rowStride
                    let colOffset = kj * wd.dilationW - wd.padLeft
                    // Output columns whose input column lies inside the image.
                    var lo = 0
                    if colOffset < 0 { lo = (-colOffset + wd.strideW - 1) / wd.strideW }
                    var hi = ow
                    let lastValid = width - 1 - colOffset
                    if lastValid < 0 { hi = 0 } else { hi = min(ow, lastValid / wd.strideW + 1) }
                    if hi < lo { hi = lo }
                    for r in 0..<oh {
                        let ih = r * wd.strideH - wd.padTop + ki * wd.dilationH
                        let d = dst + r * ow
                        if ih < 0 || ih >= height {
                            d.update(repeating: 0, count: ow)
                            continue
                        }
                        if lo > 0 { d.update(repeating: 0, count: lo) }
                        let src = plane + ih * width + colOffset
                        if wd.strideW == 1 {
                            if hi > lo { (d + lo).update(from: src + lo, count: hi - lo) }
                        } else {
                            var c = lo
                            while c < hi { d[c] = src[c * wd.strideW]; c += 1 }
                        }
                        if hi < ow { (d + hi).update(repeating: 0, count: ow - hi) }
                    }
                    row += 1
                }
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        guard shape.count == 4 else { throw c.unsupported("only 2-D convolution on NCHW data (input rank \(shape.count))") }
        let w = try c.constant(1, "weight")
        guard w.dims.count == 4 else { throw c.failure("weight must be rank 4, got \(w.dims)") }
        let groups = try c.int("group", default: 1)
        let (n, ch, h, wd) = (shape[0], shape[1], shape[2], shape[3])
        let m = w.dims[0]
        guard groups > 0, ch % groups == 0, m % groups == 0, w.dims[1] == ch / groups else {
            throw c.failure("weight \(w.dims) does not fit \(ch) input channels in \(groups) groups")
        }
        let window = try Window2D.from(c, inH: h, inW: wd, kernel: (w.dims[2], w.dims[3]))
        guard window.kernelH == w.dims[2], window.kernelW == w.dims[3] else {
            throw c.failure("kernel_shape disagrees with weight \(w.dims)")
        }
        var bias: WeightBuffer?
        if let b = try c.optionalConstant(2, "bias") {
            guard b.elementCount == m else { throw c.failure("bias has \(b.elementCount) values for \(m) channels") }
            bias = WeightBuffer(b.floatValues)
        }
        let pixels = window.outH * window.outW
        let pointwise = window.kernelH == 1 && window.kernelW == 1 && window.strideH == 1 && window.strideW == 1
            && window.padTop == 0 && window.padLeft == 0 && window.padBottom == 0 && window.padRight == 0
        let perGemm = max(1, min(n, 256 / max(pixels, 1)))
        let kernel = ConvKernel(
            outputShape: [n, m, window.outH, window.outW], channels: ch, height: h, width: wd,
            outChannels: m, groups: groups, window: window, weights: WeightBuffer(w.floatValues),
            bias: bias, imagesPerGemm: perGemm, isPointwise: pointwise)
        return .kernel(kernel, runtimeInputs: [0])
    }
}
