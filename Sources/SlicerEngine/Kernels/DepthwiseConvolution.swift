/// Depthwise convolution (one input channel per group: MobileNet, EfficientNet,
/// MnasNet) computed directly, vectorised along the output row.
///
/// Through the matrix product each group is a product of 1 filter (padded to a
/// panel of 8) by 9 rows of B: seven eighths of the arithmetic is padding and
/// the rest is dominated by per-call set-up — 4–20 GFLOPS where the dense
/// layers beside it run at 200. Here each output vector of 16 pixels is
/// kh·kw fused multiply-adds of a broadcast weight with 16 neighbouring input
/// pixels, read from a zero-padded copy of the channel.
///
/// Strides: the padded copy is split into `strideW` phases by column (phase p
/// holds padded columns p, p + s, p + 2s, …), so that the pixels a filter tap
/// reads for 16 neighbouring outputs are again 16 consecutive floats.
///
/// Each output is Σ over (ki, kj) in row-major order, from zero, then plus the
/// bias — the order and rounding of the matrix-product path, so the values
/// match that path's; one image's values never depend on the batch.
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
    let paddedHeight: Int
    /// Floats per row of one phase plane: room for whole vectors past the last output.
    let phaseWidth: Int

    var scratchCount: Int { window.strideW * paddedHeight * phaseWidth }

    func run(_ io: KernelIO) {
        let w = window, oh = w.outH, ow = w.outW, sw = w.strideW
        let taps = w.kernelH * w.kernelW
        let plane = height * width, outPlane = oh * ow
        let phasePlane = paddedHeight * phaseWidth
        let padded = io.scratch
        // Where tap (ki, kj) starts for output (0, 0): phase plane and offset in it.
        var tapOffsets = [Int](repeating: 0, count: taps)
        for ki in 0..<w.kernelH {
            for kj in 0..<w.kernelW {
                let col = kj * w.dilationW
                tapOffsets[ki * w.kernelW + kj] = (col % sw) * phasePlane + ki * w.dilationH * phaseWidth + col / sw
            }
        }
        let fullVectors = ow / 16, tail = ow % 16
        tapOffsets.withUnsafeBufferPointer { offsetsBuffer in
            guard let offsets = offsetsBuffer.baseAddress else { return }
            for n in 0..<io.batch {
                for c in 0..<channels {
                    pad(io.inputs[0] + (n * channels + c) * plane, into: padded)
                    for k in 0..<multiplier {
                        let m = c * multiplier + k
                        let filter = weights.pointer + m * taps
                        let b = bias?.pointer[m] ?? 0
                        let bv = SIMD16<Float>(repeating: b)
                        let out = io.output + (n * channels * multiplier + m) * outPlane
                        for r in 0..<oh {
                            let rowBase = padded + r * w.strideH * phaseWidth
                            let dst = out + r * ow
                            var q = 0
                            for _ in 0..<fullVectors {
                                var acc = SIMD16<Float>()
                                for t in 0..<taps {
                                    acc.addProduct(SIMD16(repeating: filter[t]), loadVector(rowBase + offsets[t] + q))
                                }
                                if bias != nil { acc += bv }
                                if epilogue.clamps { acc = epilogue.clamp(acc) }
                                storeVector(acc, dst + q)
                                q += 16
                            }
                            if tail > 0 {
                                // The padded rows have room for a whole vector: compute it, keep `tail` lanes.
                                var acc = SIMD16<Float>()
                                for t in 0..<taps {
                                    acc.addProduct(SIMD16(repeating: filter[t]), loadVector(rowBase + offsets[t] + q))
                                }
                                if bias != nil { acc += bv }
                                if epilogue.clamps { acc = epilogue.clamp(acc) }
                                for i in 0..<tail { dst[q + i] = acc[i] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes one channel, zero-padded, as `strideW` column phases.
    private func pad(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let w = window, sw = w.strideW
        let phasePlane = paddedHeight * phaseWidth
        dst.update(repeating: 0, count: sw * phasePlane)
        for r in 0..<height {
            let src = x + r * width
            let row = (r + w.padTop) * phaseWidth
            if sw == 1 {
                copyFloats(src, dst + row + w.padLeft, count: width)
                continue
            }
            // Phase p, index i holds padded column i·s + p, input column i·s + p − padLeft.
            for p in 0..<sw {
                let phaseRow = dst + p * phasePlane + row
                var i = max(0, (w.padLeft - p + sw - 1) / sw)
                var col = i * sw + p - w.padLeft
                while col < width {
                    phaseRow[i] = src[col]
                    i += 1
                    col += sw
                }
            }
        }
    }

    /// A depthwise kernel for a Conv whose groups each read one input channel.
    static func make(outputShape: [Int], channels: Int, height: Int, width: Int, outChannels: Int,
                     window: Window2D, weights: WeightBuffer, bias: WeightBuffer?,
                     _ c: NodeContext) throws -> DepthwiseConvKernel {
        let hp = height + window.padTop + window.padBottom
        let wp = width + window.padLeft + window.padRight
        let sw = window.strideW
        // Every phase must hold its share of the padded row and, from the
        // furthest tap, whole vectors up to the last output column.
        let furthest = ((window.kernelW - 1) * window.dilationW) / sw
        let phaseWidth = max((wp + sw - 1) / sw, furthest + (window.outW + 15) / 16 * 16)
        guard let scratch = checkedProduct([sw, hp, phaseWidth]), scratch <= maxValuesPerImage else {
            throw c.unsupported("depthwise convolution of \(height)×\(width) would need an implausibly large scratch buffer")
        }
        return DepthwiseConvKernel(
            outputShape: outputShape, channels: channels, height: height, width: width,
            multiplier: outChannels / channels, window: window, weights: weights, bias: bias,
            paddedHeight: hp, phaseWidth: phaseWidth)
    }
}
