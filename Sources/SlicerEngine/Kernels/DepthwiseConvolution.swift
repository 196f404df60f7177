/// Depthwise convolution (one input channel per group: MobileNet, EfficientNet,
/// MnasNet) computed directly, vectorised along the output.
///
/// Through the matrix product each group is a product of 1 filter (padded to a
/// panel of 8) by 9 rows of B: seven eighths of the arithmetic is padding and
/// the rest is dominated by per-call set-up — 4–20 GFLOPS where the dense
/// layers beside it run at 200. Here each output vector of 16 pixels is
/// kh·kw fused multiply-adds of a broadcast weight with 16 neighbouring input
/// pixels.
///
/// Layout: each channel is copied once into `strideH · strideW` phase planes
/// of its zero-padded plane (phase (a, b) holds padded rows a, a + sh, … and
/// columns b, b + sw, …), so that for every tap the pixels read by 16
/// neighbouring outputs are 16 consecutive floats, and output (r, q) reads
/// each phase at r · phaseWidth + q plus a per-tap offset. The padding is
/// zeroed once per call, not per channel: the copy overwrites exactly the
/// interior, so the border stays zero for every channel. The stride-2 column
/// split is one permute per 16 values (it was a scalar loop, the larger part
/// of the time of MobileNet's stride-2 layers).
///
/// Rows of 16 outputs or more are computed in whole vectors, the last one
/// overlapping the one before (recomputing a few outputs to the same values)
/// instead of a scalar tail. Narrower planes (14×14, 7×7) are computed as one
/// flat run over output rows of `phaseWidth` columns — the few columns past
/// the row's end are computed and dropped — into scratch, then compacted: a
/// 7-wide row no longer costs a 16-lane vector.
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
    /// Rows and floats per row of one phase plane.
    let phaseRows: Int, phaseWidth: Int
    /// Floats from one phase plane to the next (with slack for the flat run's last vector).
    let phaseStride: Int
    /// Output rows narrower than a vector: the flat run through a staging area.
    var isFlat: Bool { window.outW < 16 }
    /// Floats of the flat run (output rows of `phaseWidth`, whole vectors).
    var flatCount: Int { (window.outH * phaseWidth + 15) / 16 * 16 }
    var phaseCount: Int { window.strideH * window.strideW }

    var scratchCount: Int { phaseCount * phaseStride + (isFlat ? flatCount : 0) }

    /// Offset of tap (ki, kj) from output (0, 0)'s position in the phase planes.
    func tapOffsets() -> [Int] {
        let w = window
        var offsets = [Int]()
        for ki in 0..<w.kernelH {
            for kj in 0..<w.kernelW {
                let row = ki * w.dilationH, col = kj * w.dilationW
                let phase = (row % w.strideH) * w.strideW + col % w.strideW
                offsets.append(phase * phaseStride + (row / w.strideH) * phaseWidth + col / w.strideW)
            }
        }
        return offsets
    }

    func run(_ io: KernelIO) {
        let plane = height * width, outPlane = window.outH * window.outW
        let taps = window.kernelH * window.kernelW
        let padded = io.scratch
        // The border stays zero from here on: `copyChannel` writes only the interior.
        zeroFloats(padded, count: phaseCount * phaseStride)
        let flat = padded + phaseCount * phaseStride
        let offsetArray = tapOffsets(), plan = copyPlan()
        withExtendedLifetime((offsetArray, plan)) {
            offsetArray.withUnsafeBufferPointer { offsetsBuffer in
                plan.rows.withUnsafeBufferPointer { rowsBuffer in
                    plan.columns.withUnsafeBufferPointer { columns in
                        guard let offsets = offsetsBuffer.baseAddress, let rows = rowsBuffer.baseAddress else { return }
                        for n in 0..<io.batch {
                            for c in 0..<channels {
                                copyChannel(io.inputs[0] + (n * channels + c) * plane, into: padded, rows: rows, columns: columns)
                                for k in 0..<multiplier {
                                    let m = c * multiplier + k
                                    let filter = weights.pointer + m * taps
                                    let out = io.output + (n * channels * multiplier + m) * outPlane
                                    let b = bias?.pointer[m]
                                    if taps == 9 {
                                        // 3×3 (9 taps): the weights and tap offsets in registers (through
                                        // pointers the compiler reloads them after every store, as `out`
                                        // might alias them).
                                        let nine = Taps9(filter, offsets)
                                        computePlane(padded, flat, out, b) { nine.vector($0, bias: $1) }
                                    } else {
                                        computePlane(padded, flat, out, b) { src, bias in
                                            var acc = SIMD16<Float>()
                                            for t in 0..<taps {
                                                acc.addProduct(SIMD16(repeating: filter[t]), loadVector(src + offsets[t]))
                                            }
                                            if let bias { acc += SIMD16(repeating: bias) }
                                            return acc
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// One output plane from the phase planes at `padded`; `vector(src, bias)` is
    /// the sum of 16 neighbouring outputs whose (0, 0) taps start at `src`.
    @inline(__always)
    private func computePlane(_ padded: UnsafePointer<Float>, _ flat: UnsafeMutablePointer<Float>,
                              _ out: UnsafeMutablePointer<Float>, _ bias: Float?,
                              _ vector: (UnsafePointer<Float>, Float?) -> SIMD16<Float>) {
        let oh = window.outH, ow = window.outW, clamps = epilogue.clamps, e = epilogue
        if isFlat {
            var i = 0
            let count = flatCount
            while i < count {
                var acc = vector(padded + i, bias)
                if clamps { acc = e.clamp(acc) }
                storeVector(acc, flat + i)
                i += 16
            }
            for r in 0..<oh { copyFloats(flat + r * phaseWidth, out + r * ow, count: ow) }
            return
        }
        for r in 0..<oh {
            let src = padded + r * phaseWidth, dst = out + r * ow
            var q = 0
            while true {
                var acc = vector(src + q, bias)
                if clamps { acc = e.clamp(acc) }
                storeVector(acc, dst + q)
                if q + 16 == ow { break }
                // The last vector ends at the row's end, overlapping the one before.
                q = min(q + 16, ow - 16)
            }
        }
    }

    /// Where one column phase of an input row goes: input columns x0, x0 + sw, …
    /// (`count` of them, `available` floats readable from x0) to `offset` in the
    /// phase row.
    struct ColumnPhase { let x0: Int, offset: Int, count: Int, available: Int }

    /// The column phases of every input row and each row's phase row, computed
    /// once per call: integer divisions per row and channel took as long as
    /// the copy itself on 14-wide rows.
    func copyPlan() -> (rows: [Int], columns: [ColumnPhase]) {
        let w = window, sh = w.strideH, sw = w.strideW
        let rows = (0..<height).map { y in
            let row = y + w.padTop
            return (row % sh) * sw * phaseStride + (row / sh) * phaseWidth
        }
        // Phase b holds padded columns j·sw + b, i.e. input columns x0, x0 + sw, … from index j0.
        let columns = (0..<sw).compactMap { b -> ColumnPhase? in
            let x0 = ((b - w.padLeft) % sw + sw) % sw
            guard x0 < width else { return nil }
            return ColumnPhase(x0: x0, offset: b * phaseStride + (x0 + w.padLeft) / sw,
                               count: (width - x0 + sw - 1) / sw, available: width - x0)
        }
        return (rows, columns)
    }

    /// Writes one channel's pixels into the interior of the phase planes.
    @inline(__always)
    private func copyChannel(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
                             rows: UnsafePointer<Int>, columns: UnsafeBufferPointer<ColumnPhase>) {
        let sw = window.strideW
        for y in 0..<height {
            let src = x + y * width, phaseRow = dst + rows[y]
            if sw == 1 {
                copyFloats(src, phaseRow + window.padLeft, count: width)
            } else if sw == 2 {
                for p in columns { copyEvenLanes(src + p.x0, into: phaseRow + p.offset, count: p.count, available: p.available) }
            } else {
                for p in columns {
                    for k in 0..<p.count { phaseRow[p.offset + k] = src[p.x0 + k * sw] }
                }
            }
        }
    }

    /// dst[k] = src[2k] for k < count; `available` floats are readable at `src`.
    @inline(__always)
    private func copyEvenLanes(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
                               count: Int, available: Int) {
        var k = 0
        // The even lanes of 32 consecutive floats: one permute (vpermt2ps) per 16.
        while 2 * k + 32 <= available {
            let lo = loadVector(src + 2 * k), hi = loadVector(src + 2 * k + 16)
            storeVector(SIMD16(lowHalf: lo.evenHalf, highHalf: hi.evenHalf), dst + k)
            k += 16
        }
        if 2 * k + 16 <= available {
            UnsafeMutableRawPointer(dst + k).storeBytes(of: loadVector(src + 2 * k).evenHalf, as: SIMD8<Float>.self)
            k += 8
        }
        while k < count { dst[k] = src[2 * k]; k += 1 }
    }

    /// A depthwise kernel for a Conv whose groups each read one input channel.
    static func make(outputShape: [Int], channels: Int, height: Int, width: Int, outChannels: Int,
                     window: Window2D, weights: WeightBuffer, bias: WeightBuffer?,
                     _ c: NodeContext) throws -> DepthwiseConvKernel {
        let w = window, sh = w.strideH, sw = w.strideW
        let hp = height + w.padTop + w.padBottom
        let wp = width + w.padLeft + w.padRight
        // Every phase holds its share of the padded plane, and at least what the
        // furthest tap reads for the last output (so that no read leaves it).
        let rows = max((hp + sh - 1) / sh, w.outH + ((w.kernelH - 1) * w.dilationH) / sh)
        let cols = max((wp + sw - 1) / sw, w.outW + ((w.kernelW - 1) * w.dilationW) / sw)
        // The flat run reads whole vectors from the furthest tap past the last output row.
        let flatReach = (w.outH * cols + 15) / 16 * 16 + ((w.kernelH - 1) * w.dilationH / sh) * cols
            + (w.kernelW - 1) * w.dilationW / sw
        guard let planeCount = checkedProduct([rows, cols]), planeCount <= maxValuesPerImage,
              let scratch = checkedProduct([sh, sw, max(planeCount, flatReach) + 16]), scratch <= maxValuesPerImage else {
            throw c.unsupported("depthwise convolution of \(height)×\(width) would need an implausibly large scratch buffer")
        }
        let stride = (max(planeCount, flatReach) + 15) / 16 * 16
        return DepthwiseConvKernel(
            outputShape: outputShape, channels: channels, height: height, width: width,
            multiplier: outChannels / channels, window: window, weights: weights, bias: bias,
            phaseRows: rows, phaseWidth: cols, phaseStride: stride)
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
