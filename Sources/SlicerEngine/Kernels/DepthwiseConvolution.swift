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
        let w = window, oh = w.outH, ow = w.outW
        let taps = w.kernelH * w.kernelW
        let plane = height * width, outPlane = oh * ow
        let padded = io.scratch
        // The border stays zero from here on: `copyChannel` writes only the interior.
        zeroFloats(padded, count: phaseCount * phaseStride)
        let flat = padded + phaseCount * phaseStride
        let offsets = tapOffsets()
        offsets.withUnsafeBufferPointer { offsetsBuffer in
            guard let offsets = offsetsBuffer.baseAddress else { return }
            for n in 0..<io.batch {
                for c in 0..<channels {
                    copyChannel(io.inputs[0] + (n * channels + c) * plane, into: padded)
                    for k in 0..<multiplier {
                        let m = c * multiplier + k
                        let filter = weights.pointer + m * taps
                        let out = io.output + (n * channels * multiplier + m) * outPlane
                        let b = bias?.pointer[m]
                        if isFlat {
                            var i = 0
                            while i < flatCount {
                                storeVector(outputVector(padded + i, filter, offsets, taps, b), flat + i)
                                i += 16
                            }
                            for r in 0..<oh { copyFloats(flat + r * phaseWidth, out + r * ow, count: ow) }
                            continue
                        }
                        for r in 0..<oh {
                            let src = padded + r * phaseWidth, dst = out + r * ow
                            var q = 0
                            while true {
                                storeVector(outputVector(src + q, filter, offsets, taps, b), dst + q)
                                if q + 16 == ow { break }
                                // The last vector ends at the row's end, overlapping the one before.
                                q = min(q + 16, ow - 16)
                            }
                        }
                    }
                }
            }
        }
    }

    /// 16 neighbouring outputs whose (0, 0) taps start at `src`.
    @inline(__always)
    private func outputVector(_ src: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                              _ offsets: UnsafePointer<Int>, _ taps: Int, _ bias: Float?) -> SIMD16<Float> {
        var acc = SIMD16<Float>()
        for t in 0..<taps {
            acc.addProduct(SIMD16(repeating: filter[t]), loadVector(src + offsets[t]))
        }
        if let bias { acc += SIMD16(repeating: bias) }
        if epilogue.clamps { acc = epilogue.clamp(acc) }
        return acc
    }

    /// Writes one channel's pixels into the interior of the phase planes.
    private func copyChannel(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let w = window, sh = w.strideH, sw = w.strideW
        for y in 0..<height {
            let src = x + y * width
            let row = y + w.padTop
            let phaseRow = dst + (row % sh) * sw * phaseStride + (row / sh) * phaseWidth
            if sw == 1 {
                copyFloats(src, phaseRow + w.padLeft, count: width)
                continue
            }
            // Phase b holds padded columns j·sw + b, i.e. input columns x0, x0 + sw, … from index j0.
            for b in 0..<sw {
                let x0 = ((b - w.padLeft) % sw + sw) % sw
                guard x0 < width else { continue }
                let j0 = (x0 + w.padLeft) / sw
                let count = (width - x0 + sw - 1) / sw
                copyStrided(src + x0, sw, into: phaseRow + b * phaseStride + j0, count: count,
                            available: width - x0)
            }
        }
    }

    /// dst[k] = src[k · stride] for k < count; `available` floats are readable at `src`.
    @inline(__always)
    private func copyStrided(_ src: UnsafePointer<Float>, _ stride: Int, into dst: UnsafeMutablePointer<Float>,
                             count: Int, available: Int) {
        var k = 0
        if stride == 2 {
            // The even lanes of 32 consecutive floats: one permute (vpermt2ps) per 16.
            while 2 * k + 32 <= available {
                let lo = loadVector(src + 2 * k), hi = loadVector(src + 2 * k + 16)
                storeVector(SIMD16(lowHalf: lo.evenHalf, highHalf: hi.evenHalf), dst + k)
                k += 16
            }
        }
        while k < count { dst[k] = src[k * stride]; k += 1 }
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
