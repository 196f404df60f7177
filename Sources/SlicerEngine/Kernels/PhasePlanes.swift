/// The layout shared by the direct depthwise convolution and pooling: one
/// channel copied into `strideH · strideW` phase planes of its padded plane.
///
/// Phase (a, b) holds padded rows a, a + sh, … and columns b, b + sw, …, so
/// that for every tap of the window the pixels read by 16 neighbouring
/// outputs are 16 consecutive floats, and output (r, q) reads each phase at
/// r · phaseWidth + q plus a per-tap offset. The border (the padding's value:
/// 0 for sums, −∞ for maxima) is written once per call, not per channel: the
/// copy overwrites exactly the interior. The stride-2 column split is one
/// permute per 16 values.
///
/// Rows of 16 outputs or more are computed in whole vectors, the last one
/// overlapping the one before (recomputing a few outputs to the same values)
/// instead of a scalar tail. Narrower planes (14×14, 7×7) are computed as one
/// flat run over output rows of `phaseWidth` columns — the few columns past
/// each row's end are computed and dropped — into scratch, then compacted: a
/// 7-wide row no longer costs a 16-lane vector.
struct PhasePlanes: Sendable {
    let window: Window2D
    let height: Int, width: Int
    /// Floats per row of one phase plane.
    let phaseWidth: Int
    /// Floats from one phase plane to the next (with slack for the flat run's last vector).
    let phaseStride: Int

    var phaseCount: Int { window.strideH * window.strideW }
    /// Output rows narrower than a vector: the flat run through a staging area.
    var isFlat: Bool { window.outW < 16 }
    /// Floats of the flat run (output rows of `phaseWidth`, whole vectors).
    var flatCount: Int { (window.outH * phaseWidth + 15) / 16 * 16 }
    /// Scratch floats: the phase planes, then the flat run's staging area.
    var scratchCount: Int { phaseCount * phaseStride + (isFlat ? flatCount : 0) }

    /// nil when the planes would be implausibly large (a damaged file).
    init?(window w: Window2D, height: Int, width: Int) {
        let sh = w.strideH, sw = w.strideW
        let hp = height + w.padTop + w.padBottom
        let wp = width + w.padLeft + w.padRight
        // Every phase holds its share of the padded plane, and at least what the
        // furthest tap reads for the last output (pooling's ceil_mode windows
        // may reach past the padding).
        let rows = max((hp + sh - 1) / sh, w.outH + ((w.kernelH - 1) * w.dilationH) / sh)
        let cols = max((wp + sw - 1) / sw, w.outW + ((w.kernelW - 1) * w.dilationW) / sw)
        // The flat run reads whole vectors from the furthest tap past the last output row.
        let flatReach = (w.outH * cols + 15) / 16 * 16 + ((w.kernelH - 1) * w.dilationH / sh) * cols
            + (w.kernelW - 1) * w.dilationW / sw
        guard let planeCount = checkedProduct([rows, cols]), planeCount <= maxValuesPerImage,
              let all = checkedProduct([sh, sw, max(planeCount, flatReach) + 16]), all <= maxValuesPerImage else {
            return nil
        }
        window = w
        self.height = height
        self.width = width
        phaseWidth = cols
        phaseStride = (max(planeCount, flatReach) + 15) / 16 * 16
    }

    /// Offset of tap (ki, kj), row-major, from output (0, 0)'s position in the phase planes.
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

    /// Where one column phase of an input row goes: input columns x0, x0 + sw, …
    /// (`count` of them, `available` floats readable from x0) to `offset` in the
    /// phase row.
    struct ColumnPhase { let x0: Int, offset: Int, count: Int, available: Int }

    /// Each input row's phase row and the column phases, computed once per
    /// call: integer divisions per row and channel took as long as the copy
    /// itself on 14-wide rows.
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

    /// Runs `body` with the planes' scratch set up for a call: the border filled
    /// with `padding`, tap offsets and copy plan as pointers.
    @inline(__always)
    func withPlanes(_ scratch: UnsafeMutablePointer<Float>, padding: Float,
                    _ body: (_ offsets: UnsafePointer<Int>, _ copy: CopyPlan) -> Void) {
        let count = phaseCount * phaseStride
        if padding == 0 {
            zeroFloats(scratch, count: count)
        } else {
            scratch.update(repeating: padding, count: count)
        }
        let offsets = tapOffsets(), plan = copyPlan()
        offsets.withUnsafeBufferPointer { offsetsBuffer in
            plan.rows.withUnsafeBufferPointer { rows in
                plan.columns.withUnsafeBufferPointer { columns in
                    guard let o = offsetsBuffer.baseAddress, let r = rows.baseAddress else { return }
                    body(o, CopyPlan(rows: r, columns: columns))
                }
            }
        }
    }

    struct CopyPlan { let rows: UnsafePointer<Int>, columns: UnsafeBufferPointer<ColumnPhase> }

    /// Writes one channel's pixels into the interior of the phase planes.
    @inline(__always)
    func copyChannel(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, _ plan: CopyPlan) {
        copyRows(0..<height, from: x, into: dst, plan)
    }

    /// Writes input rows `rows` of one channel into the interior of the phase
    /// planes; `x` points at the first of them (row `rows.lowerBound`), the
    /// rest follow `width` apart. The fused expand–depthwise kernel
    /// (ExpandDepthwiseConvolution.swift) copies a band of rows at a time.
    @inline(__always)
    func copyRows(_ rows: Range<Int>, from x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, _ plan: CopyPlan) {
        let sw = window.strideW
        for y in rows {
            let src = x + (y - rows.lowerBound) * width, phaseRow = dst + plan.rows[y]
            if sw == 1 {
                copyRow(src, phaseRow + window.padLeft, count: width)
            } else if sw == 2 {
                for p in plan.columns {
                    copyEvenLanes(src + p.x0, into: phaseRow + p.offset, count: p.count, available: p.available)
                }
            } else {
                for p in plan.columns {
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

    /// One output plane from the phase planes at `padded`. `vector(src, at)` is
    /// the 16 neighbouring outputs whose (0, 0) taps start at `src`, `at` the
    /// index they are stored at (in the flat run or the output plane).
    @inline(__always)
    func computePlane(_ padded: UnsafePointer<Float>, _ flat: UnsafeMutablePointer<Float>,
                      _ out: UnsafeMutablePointer<Float>, _ vector: (UnsafePointer<Float>, Int) -> SIMD16<Float>) {
        let oh = window.outH, ow = window.outW
        if isFlat {
            var i = 0
            let count = flatCount
            while i < count {
                storeVector(vector(padded + i, i), flat + i)
                i += 16
            }
            for r in 0..<oh { copyRow(flat + r * phaseWidth, out + r * ow, count: ow) }
            return
        }
        computeRows(0..<oh, padded, out, vector)
    }

    /// Output rows `rows` of one plane (rows of 16 outputs or more only: the
    /// flat run of narrower planes covers the whole plane at once), each row
    /// computed exactly as `computePlane` computes it.
    @inline(__always)
    func computeRows(_ rows: Range<Int>, _ padded: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                     _ vector: (UnsafePointer<Float>, Int) -> SIMD16<Float>) {
        let ow = window.outW
        for r in rows {
            let src = padded + r * phaseWidth, dst = r * ow
            var q = 0
            while true {
                storeVector(vector(src + q, dst + q), out + dst + q)
                if q + 16 == ow { break }
                // The last vector ends at the row's end, overlapping the one before.
                q = min(q + 16, ow - 16)
            }
        }
    }
}

/// dst[0..<count] = src[0..<count] for buffers that do not overlap, in whole
/// vectors: the last one ends at `count`, overlapping the one before it (the
/// same values written twice) instead of a 4-lane and scalar tail — the
/// tails of 7-, 14- and 28-float rows were a tenth of the depthwise kernel's time.
@inline(__always)
func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    @inline(__always) func copy<V: SIMD>(_: V.Type, _ i: Int) where V.Scalar == Float {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: V.self), as: V.self)
    }
    if count >= 16 {
        var i = 0
        while i + 16 < count { copy(SIMD16<Float>.self, i); i += 16 }
        copy(SIMD16<Float>.self, count - 16)
    } else if count >= 8 {
        copy(SIMD8<Float>.self, 0)
        copy(SIMD8<Float>.self, count - 8)
    } else if count >= 4 {
        copy(SIMD4<Float>.self, 0)
        copy(SIMD4<Float>.self, count - 4)
    } else {
        for i in 0..<count { dst[i] = src[i] }
    }
}
