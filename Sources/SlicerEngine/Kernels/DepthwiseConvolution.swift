/// Depthwise convolution (one input channel per group: MobileNet, EfficientNet,
/// MnasNet) computed directly, vectorised along the output.
///
/// Through the matrix product each group is a product of 1 filter (padded to a
/// panel of 8) by 9 rows of B: seven eighths of the arithmetic is padding and
/// the rest is dominated by per-call set-up — 4–20 GFLOPS where the dense
/// layers beside it run at 200. Here each output vector of 16 pixels is
/// kh·kw fused multiply-adds of a broadcast weight with 16 neighbouring input
/// pixels, read from the channel's zero-padded phase planes (PhasePlanes.swift).
///
/// Each output is Σ over (ki, kj) in row-major order, from zero, then plus the
/// bias — the order and rounding of the matrix-product path, so the values
/// match that path's; one image's values never depend on the batch. Padding
/// taps are added as products with zero like any other tap.
struct DepthwiseConvKernel: Kernel {
    let outputShape: [Int]
    let channels: Int, height: Int, width: Int
    /// Output channels per input channel (the depth multiplier).
    let multiplier: Int
    let window: Window2D
    // Variables for the inference plan's BatchNormalization fold (Fusion.swift).
    var weights: WeightBuffer   // [channels · multiplier, 1, kh, kw]
    var bias: WeightBuffer?
    /// A fused activation (inference plan only; never a residual here).
    var epilogue = OutputEpilogue()
    let planes: PhasePlanes

    var scratchCount: Int { planes.scratchCount }

    func run(_ io: KernelIO) {
        let plane = height * width, outPlane = window.outH * window.outW
        let padded = io.scratch
        planes.withPlanes(padded, padding: 0) { offsets, copy in
            for n in 0..<io.batch {
                for c in 0..<channels {
                    planes.copyChannel(io.inputs[0] + (n * channels + c) * plane, into: padded, copy)
                    for k in 0..<multiplier {
                        let m = c * multiplier + k
                        computeChannel(m, padded, offsets, into: io.output + (n * channels * multiplier + m) * outPlane,
                                       rows: 0..<window.outH)
                    }
                }
            }
        }
    }

    /// Output rows `rows` of output channel `m` into its plane at `out`, from
    /// its input channel in the phase planes at `padded` (scratch, set up by
    /// `planes.withPlanes`; the flat run's staging area follows the planes).
    /// A flat plane (`planes.isFlat`) is always computed whole.
    @inline(__always)
    func computeChannel(_ m: Int, _ padded: UnsafeMutablePointer<Float>, _ offsets: UnsafePointer<Int>,
                        into out: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let taps = window.kernelH * window.kernelW
        let flat = padded + planes.phaseCount * planes.phaseStride
        let clamps = epilogue.clamps
        let low = SIMD16<Float>(repeating: epilogue.low), high = SIMD16<Float>(repeating: epilogue.high)
        // OutputEpilogue.clamp written out with the bounds in registers: called
        // here it was not inlined (a call per 16 outputs). Same comparisons, same values.
        @inline(__always) func clamp(_ v: SIMD16<Float>) -> SIMD16<Float> {
            v.replacing(with: low, where: v .< low).replacing(with: high, where: v .> high)
        }
        let filter = weights.pointer + m * taps
        let b = bias?.pointer[m]
        let whole = planes.isFlat || rows == 0..<window.outH
        // Each call below with its own closure literal: a closure value shared
        // by two calls is not inlined, and an indirect call per 16 outputs made
        // the depthwise layers half again as slow.
        if taps == 9 {
            // 3×3 (9 taps): the weights and tap offsets in registers (through
            // pointers the compiler reloads them after every store, as `out`
            // might alias them).
            if planes.isFlat && rowVectors {
                // Narrow planes (14×14, 7×7), stride 1: one vector per output row.
                if window.outW > 8 {
                    rowVectors3x3(SIMD16<Float>.self, filter, b, padded, flat, out)
                } else {
                    rowVectors3x3(SIMD8<Float>.self, filter, b, padded, flat, out)
                }
                return
            }
            let nine = Taps9(filter, offsets)
            if whole {
                planes.computePlane(padded, flat, out) { src, _ in
                    var acc = nine.vector(src, bias: b)
                    if clamps { acc = clamp(acc) }
                    return acc
                }
            } else {
                planes.computeRows(rows, padded, out) { src, _ in
                    var acc = nine.vector(src, bias: b)
                    if clamps { acc = clamp(acc) }
                    return acc
                }
            }
        } else {
            @inline(__always) func vector(_ src: UnsafePointer<Float>) -> SIMD16<Float> {
                var acc = SIMD16<Float>()
                for t in 0..<taps {
                    acc.addProduct(SIMD16(repeating: filter[t]), loadVector(src + offsets[t]))
                }
                if let b { acc += SIMD16(repeating: b) }
                if clamps { acc = clamp(acc) }
                return acc
            }
            if whole {
                planes.computePlane(padded, flat, out) { src, _ in vector(src) }
            } else {
                planes.computeRows(rows, padded, out) { src, _ in vector(src) }
            }
        }
    }

    /// Whether a flat plane is computed a row per vector (`rowVectors3x3`):
    /// 3×3, stride 1, no dilation, rows of at most 16 outputs, and the last
    /// row's furthest read (a whole vector) inside the scratch.
    var rowVectors: Bool {
        let w = window
        return planes.isFlat && w.kernelH == 3 && w.kernelW == 3 && w.strideH == 1 && w.strideW == 1
            && w.dilationH == 1 && w.dilationW == 1 && w.outW <= 16 && w.outH >= 1
            && (w.outH + 1) * planes.phaseWidth + 2 + 16 <= planes.scratchCount
    }

    /// One flat plane, 3×3 stride 1, each output row one vector `V` (16 lanes
    /// for rows of 9–16 outputs, 8 for 7×7) starting at the row's first output;
    /// the lanes past the row's end are computed and dropped.
    ///
    /// Why: the flat run reloaded all 9 taps per vector (the store between
    /// vectors may alias them) and then compacted its rows — on 14×14 and 7×7
    /// planes the loads and copies, not the multiply-adds, set the pace. Here
    /// each padded row's three shifted vectors are loaded once and kept in
    /// registers for the three output rows that read them, and the rows are
    /// stored straight into the output: row r's dropped lanes land on the
    /// start of the rows after it, which are stored after it; the last rows
    /// (a vector reaching past the plane) go through the staging area.
    ///
    /// Each output is the same sum as `Taps9.vector`: taps in row-major order
    /// from zero (one fused multiply-add each), then the bias, then the clamp —
    /// the same values bit for bit.
    @inline(__always)
    private func rowVectors3x3(_: SIMD16<Float>.Type, _ filter: UnsafePointer<Float>, _ bias: Float?,
                                       _ padded: UnsafePointer<Float>, _ flat: UnsafeMutablePointer<Float>,
                                       _ out: UnsafeMutablePointer<Float>) {
        let pw = planes.phaseWidth, oh = window.outH, ow = window.outW
        let (w0, w1, w2) = (SIMD16<Float>(repeating: filter[0]), SIMD16<Float>(repeating: filter[1]), SIMD16<Float>(repeating: filter[2]))
        let (w3, w4, w5) = (SIMD16<Float>(repeating: filter[3]), SIMD16<Float>(repeating: filter[4]), SIMD16<Float>(repeating: filter[5]))
        let (w6, w7, w8) = (SIMD16<Float>(repeating: filter[6]), SIMD16<Float>(repeating: filter[7]), SIMD16<Float>(repeating: filter[8]))
        let clamps = epilogue.clamps
        let low = SIMD16<Float>(repeating: epilogue.low), high = SIMD16<Float>(repeating: epilogue.high)
        let b = SIMD16<Float>(repeating: bias ?? 0), hasBias = bias != nil
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
            UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
        }
        // The three shifted vectors of padded rows r, r + 1, r + 2.
        var a0 = load(padded), a1 = load(padded + 1), a2 = load(padded + 2)
        var b0 = load(padded + pw), b1 = load(padded + pw + 1), b2 = load(padded + pw + 2)
        for r in 0..<oh {
            let next = padded + (r + 2) * pw
            let c0 = load(next), c1 = load(next + 1), c2 = load(next + 2)
            var acc = SIMD16<Float>()
            acc.addProduct(w0, a0)
            acc.addProduct(w1, a1)
            acc.addProduct(w2, a2)
            acc.addProduct(w3, b0)
            acc.addProduct(w4, b1)
            acc.addProduct(w5, b2)
            acc.addProduct(w6, c0)
            acc.addProduct(w7, c1)
            acc.addProduct(w8, c2)
            if hasBias { acc += b }
            if clamps { acc = acc.replacing(with: low, where: acc .< low).replacing(with: high, where: acc .> high) }
            if r * ow + 16 <= oh * ow {
                UnsafeMutableRawPointer(out + r * ow).storeBytes(of: acc, as: SIMD16<Float>.self)
            } else {
                UnsafeMutableRawPointer(flat).storeBytes(of: acc, as: SIMD16<Float>.self)
                copyRow(flat, out + r * ow, count: ow)
            }
            (a0, a1, a2) = (b0, b1, b2)
            (b0, b1, b2) = (c0, c1, c2)
        }
    }

    // Written out for SIMD16 and SIMD8 rather than generic over SIMD: the
    // generic version was not specialised and ran ten times slower.
    @inline(__always)
    private func rowVectors3x3(_: SIMD8<Float>.Type, _ filter: UnsafePointer<Float>, _ bias: Float?,
                                       _ padded: UnsafePointer<Float>, _ flat: UnsafeMutablePointer<Float>,
                                       _ out: UnsafeMutablePointer<Float>) {
        let pw = planes.phaseWidth, oh = window.outH, ow = window.outW
        let (w0, w1, w2) = (SIMD8<Float>(repeating: filter[0]), SIMD8<Float>(repeating: filter[1]), SIMD8<Float>(repeating: filter[2]))
        let (w3, w4, w5) = (SIMD8<Float>(repeating: filter[3]), SIMD8<Float>(repeating: filter[4]), SIMD8<Float>(repeating: filter[5]))
        let (w6, w7, w8) = (SIMD8<Float>(repeating: filter[6]), SIMD8<Float>(repeating: filter[7]), SIMD8<Float>(repeating: filter[8]))
        let clamps = epilogue.clamps
        let low = SIMD8<Float>(repeating: epilogue.low), high = SIMD8<Float>(repeating: epilogue.high)
        let b = SIMD8<Float>(repeating: bias ?? 0), hasBias = bias != nil
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
            UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
        }
        // The three shifted vectors of padded rows r, r + 1, r + 2.
        var a0 = load(padded), a1 = load(padded + 1), a2 = load(padded + 2)
        var b0 = load(padded + pw), b1 = load(padded + pw + 1), b2 = load(padded + pw + 2)
        for r in 0..<oh {
            let next = padded + (r + 2) * pw
            let c0 = load(next), c1 = load(next + 1), c2 = load(next + 2)
            var acc = SIMD8<Float>()
            acc.addProduct(w0, a0)
            acc.addProduct(w1, a1)
            acc.addProduct(w2, a2)
            acc.addProduct(w3, b0)
            acc.addProduct(w4, b1)
            acc.addProduct(w5, b2)
            acc.addProduct(w6, c0)
            acc.addProduct(w7, c1)
            acc.addProduct(w8, c2)
            if hasBias { acc += b }
            if clamps { acc = acc.replacing(with: low, where: acc .< low).replacing(with: high, where: acc .> high) }
            if r * ow + 8 <= oh * ow {
                UnsafeMutableRawPointer(out + r * ow).storeBytes(of: acc, as: SIMD8<Float>.self)
            } else {
                UnsafeMutableRawPointer(flat).storeBytes(of: acc, as: SIMD8<Float>.self)
                copyRow(flat, out + r * ow, count: ow)
            }
            (a0, a1, a2) = (b0, b1, b2)
            (b0, b1, b2) = (c0, c1, c2)
        }
    }

    /// A depthwise kernel for a Conv whose groups each read one input channel.
    static func make(outputShape: [Int], channels: Int, height: Int, width: Int, outChannels: Int,
                     window: Window2D, weights: WeightBuffer, bias: WeightBuffer?,
                     _ c: NodeContext) throws -> DepthwiseConvKernel {
        guard let planes = PhasePlanes(window: window, height: height, width: width) else {
            throw c.unsupported("depthwise convolution of \(height)×\(width) would need an implausibly large scratch buffer")
        }
        return DepthwiseConvKernel(
            outputShape: outputShape, channels: channels, height: height, width: width,
            multiplier: outChannels / channels, window: window, weights: weights, bias: bias, planes: planes)
    }
}

/// A 3×3 filter's weights (broadcast) and tap offsets, held in registers.
private struct Taps9 {
    let w0, w1, w2, w3, w4, w5, w6, w7, w8: SIMD16<Float>
    let o0, o1, o2, o3, o4, o5, o6, o7, o8: Int

    @inline(__always)
    init(_ f: UnsafePointer<Float>, _ o: UnsafePointer<Int>) {
        (w0, w1, w2) = (SIMD16(repeating: f[0]), SIMD16(repeating: f[1]), SIMD16(repeating: f[2]))
        (w3, w4, w5) = (SIMD16(repeating: f[3]), SIMD16(repeating: f[4]), SIMD16(repeating: f[5]))
        (w6, w7, w8) = (SIMD16(repeating: f[6]), SIMD16(repeating: f[7]), SIMD16(repeating: f[8]))
        (o0, o1, o2, o3, o4, o5, o6, o7, o8) = (o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8])
    }

    /// Σ taps in row-major order from zero, then the bias (the kernel's order).
    @inline(__always)
    func vector(_ src: UnsafePointer<Float>, bias: Float?) -> SIMD16<Float> {
        var acc = SIMD16<Float>()
        acc.addProduct(w0, loadVector(src + o0))
        acc.addProduct(w1, loadVector(src + o1))
        acc.addProduct(w2, loadVector(src + o2))
        acc.addProduct(w3, loadVector(src + o3))
        acc.addProduct(w4, loadVector(src + o4))
        acc.addProduct(w5, loadVector(src + o5))
        acc.addProduct(w6, loadVector(src + o6))
        acc.addProduct(w7, loadVector(src + o7))
        acc.addProduct(w8, loadVector(src + o8))
        if let bias { acc += SIMD16(repeating: bias) }
        return acc
    }
}
