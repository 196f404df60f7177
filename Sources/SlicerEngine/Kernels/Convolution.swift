
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

/// 2-D convolution as a matrix product of the packed filters (PackedGemm.swift)
/// with the image, one image at a time.
///
/// Stride-1 convolutions (any padding and dilation) multiply straight from a
/// zero-padded copy of the image: with the output laid out at the padded row
/// width, output pixel q of filter tap (c, i, j) reads padded pixel
/// `q + offset(c, i, j)`, so each filter tap is one row of B at a fixed offset
/// and no column matrix is built (the `paddedWidth − outW` extra columns per row
/// are computed and dropped). Strided convolutions build the im2col matrix
/// first and multiply from it.
struct ConvKernel: Kernel {
    let outputShape: [Int]
    let channels: Int, height: Int, width: Int
    let outChannels: Int, groups: Int
    let window: Window2D
    // Variables only so that the inference plan can fold a BatchNormalization
    // into a copy of the kernel (Fusion.swift); a built kernel never changes.
    var weights: WeightBuffer   // [M, C/G, kh, kw]
    var bias: WeightBuffer?     // [M]
    /// Each group's filters, packed for the micro-kernel.
    var packedFilters: [PackedRows]
    /// What the output values go through after the sum and bias: empty in the
    /// plan the analysis observes; the inference plan fuses the activation and
    /// the residual Add after the convolution into it (Fusion.swift). With a
    /// residual, runtime input 1 holds it.
    var epilogue = OutputEpilogue()
    /// True: multiply from the padded image (stride 1); false: from im2col columns.
    let readsPaddedInput: Bool
    /// "Same" stride-1 convolutions on small planes (CIFAR's 32×32, 16×16,
    /// 8×8): instead of one padded copy, whose `padLeft + padRight` extra
    /// columns per row the product computes and drops (a 3×3 on 8×8 computes
    /// 80 columns for 64 pixels, on 16×16 288 for 256), the image is copied
    /// once per kernel column kj into a plane as wide as the image, rows
    /// above and below zero, and with the columns that a shift by
    /// kj − padLeft would wrap into the neighbouring row zeroed. Tap (c, i, j)
    /// then reads copy j at a fixed offset, and output pixel q = r·W + x is
    /// column q: no column is wasted and the product lands in the output
    /// directly. Each B value is the padded path's (an input pixel or a zero),
    /// summed in the same order, so the results are bit for bit the same.
    var readsShiftedCopies = false
    /// Floats of each shifted copy (`readsShiftedCopies`): lead slack, the
    /// channels' planes, trailing slack for the product's last columns.
    var shiftedCopyCount = 0
    /// Zero floats before each shifted copy's first plane (reads of shift < 0 at pixel 0).
    static let shiftedLead = 16
    /// Unpadded stride-1 1×1 convolutions on planes of whole vectors (56×56,
    /// 28×28 in ImageNet networks): row j of B is input channel j itself, so
    /// the product reads the image where it lies — no padded copy — and, with
    /// whole panels of filters, writes the output directly. About half of a
    /// ResNet-50's and most of a MobileNet-V2's products are such 1×1s, and
    /// the two copies cost them as much as a tenth of their time.
    var readsInputInPlace = false
    /// Output rows per column matrix on the im2col path (outH: the whole
    /// image at once). A 7×7 stride-2 stem's column matrix is 147 × 12,544
    /// floats (7.4 MB), a stride-2 3×3's over 128 channels 3.6 MB: built
    /// whole, it is written to and read back from L3 or memory. Built a few
    /// output rows at a time and multiplied at once, it stays in L2. Each
    /// column is the same sum as before: the values do not change.
    var im2colChunkRows = Int.max
    /// The product lands straight in the output (im2col path, whole panels of
    /// filters, whole vectors of pixels), with no staging copy.
    let writesOutputDirectly: Bool
    /// Padded plane size (direct path).
    let paddedHeight: Int, paddedWidth: Int
    /// Columns of each product: output rows × their stored width, rounded up to 16.
    let productWidth: Int
    /// Floats of the padded copy of one group's channels, with slack for the last
    /// product columns (direct path).
    let paddedCount: Int
    /// Where row j of B starts, relative to the group's padded input or the column matrix.
    let rowOffsets: [Int]
    /// Set for depthwise convolutions (one input channel per group), which run
    /// directly instead of through the product (DepthwiseConvolution.swift).
    /// The rest of the kernel stays as for any Conv: CAR's ablation reads its
    /// filters and packed panels.
    var depthwise: DepthwiseConvKernel?
    /// Images side by side in one product (1: one image at a time). Small
    /// output planes (7×7 in ImageNet networks' last stage) fill the
    /// micro-kernel's 48-column tiles badly — 49 pixels take a tile of 48 and
    /// one of 16, at about half the speed — so such convolutions build the
    /// column matrix of several images, each image's pixels after the
    /// previous one's, and multiply once. Every column is still its own sum
    /// over the same j in the same order: an image's values do not depend on
    /// the images beside it.
    var imagesPerProduct = 1
    /// A convolution with several images per product wants them all at once
    /// (the executor otherwise hands image-wise kernels one cache-sized chunk,
    /// a single image on ImageNet sizes).
    var wantsWholeBatch: Bool { imagesPerProduct > 1 }

    /// Output planes of fewer pixels run several images per product.
    static let sideBySideBelow = 128
    /// Output planes of fewer pixels from kernels wider than 1×1 run two images per product.
    static let pairedBelow = 256

    var columnRows: Int { channels / groups * window.kernelH * window.kernelW }
    var outPixels: Int { window.outH * window.outW }
    /// Output columns per output row in the product (padded width or outW).
    var storedRowWidth: Int { readsPaddedInput ? paddedWidth : window.outW }

    /// Floats of one row of the (chunk's) column matrix on the im2col path.
    var columnStride: Int {
        ConvKernel.columnRowStride(im2colChunkRows >= window.outH ? productWidth : (im2colChunkRows * window.outW + 15) / 16 * 16)
    }

    /// Floats between rows of a column matrix `width` columns wide (a
    /// multiple of 16): an odd number of 64-byte lines. The product reads a
    /// block of 48 columns from every row; at an even number of lines apart
    /// those rows fall into a fraction of L1's 64 sets (256 columns, 16
    /// lines: 12 of them), and a block of 144 rows (a 3×3 over 16 channels)
    /// was evicted before the next panel of filters read it again.
    static func columnRowStride(_ width: Int) -> Int { width / 16 % 2 == 0 ? width + 16 : width }

    var scratchCount: Int {
        let source = readsPaddedInput ? paddedCount : columnRows * columnStride
        let staging = (packedFilters.first?.paddedRows ?? 0) * productWidth
        return max(source + staging, depthwise?.scratchCount ?? 0)
    }

    func run(_ io: KernelIO) {
        if let depthwise {
            depthwise.run(io)
            return
        }
        if imagesPerProduct > 1 {
            runSideBySide(io)
            return
        }
        let x = io.inputs[0], y = io.output
        let residual: UnsafePointer<Float>? = epilogue.addsResidual ? UnsafePointer(io.inputs[1]) : nil
        let cg = channels / groups, mg = outChannels / groups
        let p = outPixels, plane = height * width
        let inImage = channels * plane, outImage = outChannels * p
        let scratch = io.scratch
        let staging = io.scratch + (readsPaddedInput ? paddedCount : columnRows * columnStride)
        let oh = window.outH, ow = window.outW, rowWidth = storedRowWidth
        let chunked = !readsPaddedInput && im2colChunkRows < oh
        rowOffsets.withUnsafeBufferPointer { offsets in
            guard let offsets = offsets.baseAddress else { return }
            for n in 0..<io.batch {
                for g in 0..<groups {
                    let image = x + n * inImage + g * cg * plane
                    let source = readsInputInPlace ? image : scratch
                    if readsInputInPlace {
                        // Nothing to copy: channel j of the image is row j of B.
                    } else if readsShiftedCopies {
                        copyShifted(image, cg, into: source)
                    } else if readsPaddedInput {
                        pad(image, cg, into: source)
                    } else if chunked {
                        // The whole product, chunk by chunk (the calls below then skip it).
                        multiplyInRowChunks(image, cg, packedFilters[g], offsets,
                                            into: writesOutputDirectly ? y + n * outImage + g * mg * p : staging,
                                            ldc: writesOutputDirectly ? p : productWidth, columns: scratch)
                    } else {
                        im2col(image, cg, into: source, rowStride: columnStride)
                    }
                    let out = y + n * outImage + g * mg * p
                    if writesOutputDirectly {
                        if !chunked {
                            packedFilters[g].multiply(source, offsets: offsets, width: productWidth, into: out, ldc: p,
                                                      writeHints: mg * p >= writeHintFloats)
                        }
                        if bias != nil || !epilogue.isEmpty {
                            // Each filter's row right after the product, while it is in cache.
                            for m in 0..<mg {
                                let row = out + m * p
                                epilogue.apply(row, row, count: p, bias: bias?.pointer[g * mg + m],
                                               residual: residual.map { $0 + n * outImage + (g * mg + m) * p })
                            }
                        }
                        continue
                    }
                    if !chunked { packedFilters[g].multiply(source, offsets: offsets, width: productWidth, into: staging, ldc: productWidth) }
                    // Keep the outH × outW pixels of each filter's row, adding the bias.
                    for m in 0..<mg {
                        let row = staging + m * productWidth, dst = out + m * p
                        // A fused epilogue runs after the copy below, over the filter's whole
                        // plane (contiguous, just written, in L1): per output row, rows
                        // narrower than a vector (14×14 planes) went one value at a time,
                        // and the clamp's mispredicted branches made MobileNet-V2's 14×14
                        // expansions 10× slower than the product.
                        if let bias {
                            let b = bias.pointer[g * mg + m], bv = SIMD16<Float>(repeating: b)
                            for r in 0..<oh {
                                let from = row + r * rowWidth, to = dst + r * ow
                                var c = 0
                                while c + 16 <= ow { storeVector(loadVector(from + c) + bv, to + c); c += 16 }
                                while c < ow { to[c] = from[c] + b; c += 1 }
                            }
                        } else {
                            for r in 0..<oh { copyFloats(row + r * rowWidth, dst + r * ow, count: ow) }
                        }
                        if !epilogue.isEmpty {
                            epilogue.apply(dst, dst, count: p, bias: nil,
                                           residual: residual.map { $0 + n * outImage + (g * mg + m) * p })
                        }
                    }
                }
            }
        }
    }

    /// `imagesPerProduct` images per product: image i's output pixels are
    /// columns i·p ..< (i+1)·p of the column matrix and of the product.
    private func runSideBySide(_ io: KernelIO) {
        let x = io.inputs[0], y = io.output
        let residual: UnsafePointer<Float>? = epilogue.addsResidual ? UnsafePointer(io.inputs[1]) : nil
        let cg = channels / groups, mg = outChannels / groups
        let p = outPixels, plane = height * width
        let inImage = channels * plane, outImage = outChannels * p
        let source = io.scratch
        let staging = io.scratch + columnRows * columnStride
        rowOffsets.withUnsafeBufferPointer { offsets in
            guard let offsets = offsets.baseAddress else { return }
            var first = 0
            while first < io.batch {
                let count = min(imagesPerProduct, io.batch - first)
                // A short last group multiplies only the vectors it fills.
                let width = (count * p + 15) / 16 * 16
                for g in 0..<groups {
                    for i in 0..<count {
                        im2col(x + (first + i) * inImage + g * cg * plane, cg, into: source + i * p, rowStride: columnStride)
                    }
                    if count * p < width {
                        // Columns past the last image: zero, not stale values (which could be NaN).
                        for j in 0..<columnRows { zeroFloats(source + j * columnStride + count * p, count: width - count * p) }
                    }
                    packedFilters[g].multiply(source, offsets: offsets, width: width, into: staging, ldc: productWidth)
                    for i in 0..<count {
                        let out = y + (first + i) * outImage + g * mg * p
                        for m in 0..<mg {
                            let from = staging + m * productWidth + i * p, to = out + m * p
                            if !epilogue.isEmpty {
                                epilogue.apply(from, to, count: p, bias: bias?.pointer[g * mg + m],
                                               residual: residual.map { $0 + (first + i) * outImage + (g * mg + m) * p })
                            } else if let bias {
                                let b = bias.pointer[g * mg + m], bv = SIMD16<Float>(repeating: b)
                                var c = 0
                                while c + 16 <= p { storeVector(loadVector(from + c) + bv, to + c); c += 16 }
                                while c < p { to[c] = from[c] + b; c += 1 }
                            } else {
                                copyFloats(from, to, count: p)
                            }
                        }
                    }
                }
                first += count
            }
        }
    }

    /// The product of one image and group on the im2col path, `im2colChunkRows`
    /// output rows at a time: each chunk's column matrix (rows `columnStride`
    /// apart at `columns`) is built and multiplied into columns r0·outW ..< of
    /// `c` while it is in cache. A chunk's last vector may run past its pixels
    /// into the next chunk's: chunks go left to right, each finished over the
    /// whole depth, so the next one overwrites those columns; the last one's
    /// spill stays within the product's width (`ldc`).
    private func multiplyInRowChunks(_ image: UnsafeMutablePointer<Float>, _ cg: Int, _ filters: PackedRows,
                                     _ offsets: UnsafePointer<Int>, into c: UnsafeMutablePointer<Float>, ldc: Int,
                                     columns: UnsafeMutablePointer<Float>) {
        let oh = window.outH, ow = window.outW, stride = columnStride
        var r0 = 0
        while r0 < oh {
            let r1 = min(oh, r0 + im2colChunkRows)
            let pixels = (r1 - r0) * ow, width = (pixels + 15) / 16 * 16
            im2col(image, cg, into: columns, rowStride: stride, outputRows: r0..<r1)
            if pixels < width {
                // Columns past the chunk's pixels: zero, not stale values (which could be NaN or subnormal).
                for j in 0..<columnRows { zeroFloats(columns + j * stride + pixels, count: width - pixels) }
            }
            filters.multiply(columns, offsets: offsets, width: width, into: c + r0 * ow, ldc: ldc,
                             writeHints: filters.paddedRows * ldc >= writeHintFloats)
            r0 = r1
        }
    }

    /// Copies `cg` channel planes into the zero-padded layout, zeroing the borders
    /// and the slack (scratch is shared with other kernels, so nothing is assumed zero).
    private func pad(_ x: UnsafeMutablePointer<Float>, _ cg: Int, into dst: UnsafeMutablePointer<Float>) {
        let w = window, hp = paddedHeight, wp = paddedWidth
        dst.update(repeating: 0, count: paddedCount)
        for ci in 0..<cg {
            let src = x + ci * height * width
            let plane = dst + ci * hp * wp + w.padTop * wp + w.padLeft
            for r in 0..<height { copyFloats(src + r * width, plane + r * wp, count: width) }
        }
    }

    /// Writes the shifted copies of `cg` channel planes (`readsShiftedCopies`):
    /// copy kj holds each channel's rows between padTop and padBottom zero
    /// rows, with the columns that shift d = kj − padLeft wraps into a
    /// neighbouring row zeroed (the last −d when d < 0, the first d when
    /// d > 0); slack before and after is zeroed (scratch is shared).
    private func copyShifted(_ x: UnsafeMutablePointer<Float>, _ cg: Int, into dst: UnsafeMutablePointer<Float>) {
        let w = window, wd = width, plane = paddedHeight * wd
        let lead = ConvKernel.shiftedLead, used = lead + cg * plane
        for kj in 0..<w.kernelW {
            let copy = dst + kj * shiftedCopyCount
            zeroFloats(copy, count: lead)
            zeroFloats(copy + used, count: shiftedCopyCount - used)
        }
        // Channel by channel, each source plane written to every copy while
        // it is in L1 (copy by copy, it was read from L2 once per copy).
        for ci in 0..<cg {
            let src = x + ci * height * wd
            for kj in 0..<w.kernelW {
                let d = kj - w.padLeft
                // Columns lo ..< hi of every row hold the image; the rest are zero.
                let lo = max(0, d), hi = min(wd, wd + d)
                let base = dst + kj * shiftedCopyCount + lead + ci * plane
                zeroFloats(base, count: w.padTop * wd)
                let rows = base + w.padTop * wd
                // The whole plane in one copy, then the wrapped columns (one
                // per row for a 3×3) zeroed: row by row, the 7-float copies
                // of an 8×8 plane cost a tenth of the product.
                copyFloats(src, rows, count: height * wd)
                if lo > 0 || hi < wd {
                    for r in 0..<height {
                        let row = rows + r * wd
                        for c in 0..<lo { row[c] = 0 }
                        for c in hi..<wd { row[c] = 0 }
                    }
                }
                zeroFloats(rows + height * wd, count: w.padBottom * wd)
            }
        }
    }

    /// Writes the column matrix of one image (rows = cg·kh·kw, each `outPixels` long,
    /// `rowStride` apart so several images can sit side by side).
    private func im2col(_ x: UnsafeMutablePointer<Float>, _ cg: Int, into cols: UnsafeMutablePointer<Float>, rowStride: Int,
                        outputRows: Range<Int>? = nil) {
        let wd = window
        let rows = outputRows ?? 0..<wd.outH
        if wd.strideW == 2 && wd.outW >= 16 {
            im2colStride2(x, cg, into: cols, rowStride: rowStride, rows: rows)
            return
        }
        let ow = wd.outW
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
                    for r in rows {
                        let ih = r * wd.strideH - wd.padTop + ki * wd.dilationH
                        let d = dst + (r - rows.lowerBound) * ow
                        if ih < 0 || ih >= height {
                            zeroFloats(d, count: ow)
                            continue
                        }
                        if lo > 0 { zeroFloats(d, count: lo) }
                        let src = plane + ih * width + colOffset
                        if wd.strideW == 1 {
                            if hi > lo { copyFloats(src + lo, d + lo, count: hi - lo) }
                        } else if wd.strideW == 2 {
                            // The even lanes of 32 consecutive inputs, while all 32 lie in the row
                            // (input column colOffset + 2c + 31 < width): the stride-2 stems and
                            // downsampling layers of ImageNet networks spent longer here than in the product.
                            var c = lo
                            while c + 16 <= hi && colOffset + 2 * c + 32 <= width {
                                storeVector(UnsafeRawPointer(src + 2 * c).loadUnaligned(as: SIMD32<Float>.self).evenHalf, d + c)
                                c += 16
                            }
                            while c < hi { d[c] = src[c * 2]; c += 1 }
                        } else {
                            var c = lo
                            while c < hi { d[c] = src[c * wd.strideW]; c += 1 }
                        }
                        if hi < ow { zeroFloats(d + hi, count: ow - hi) }
                    }
                    row += 1
                }
            }
        }
    }

    /// `im2col` for a column stride of 2, the same columns: each input row
    /// is copied once per kernel row into a zero-padded row buffer, and each
    /// kernel column's outputs are the even lanes of 32 consecutive buffer
    /// values, in whole vectors from the row's first output to its last
    /// (the last vector overlapping the one before, rewriting the same
    /// values). Gathered from the image itself, every output whose window
    /// reached into the padding or whose vector would read past the row's
    /// end went one value at a time: two of three kernel columns of the
    /// CIFAR ResNet's stride-2 3×3s (32-wide rows), the ends of each row of
    /// a 7×7 stem; and the even lanes of a 32-float load (`SIMD32.evenHalf`)
    /// compiled to a library call per vector. Rows of at least 16 outputs
    /// (narrower ones, the CIFAR ResNet's 8-wide, measured slower this way:
    /// the buffer copy is then most of the work).
    private func im2colStride2(_ x: UnsafeMutablePointer<Float>, _ cg: Int, into cols: UnsafeMutablePointer<Float>,
                               rowStride: Int, rows: Range<Int>) {
        let wd = window, ow = wd.outW, kw = wd.kernelW, dil = wd.dilationW
        // Buffer column padLeft + i holds input column i, so output c of kernel
        // column kj reads buffer column 2c + kj·dil; a vector for outputs
        // c ..< c + 16 reads 32 floats from there, c ≤ max(0, ow − 16).
        let reach = (kw - 1) * dil + 2 * (ow - 16) + 32
        let length = max(wd.padLeft + width, reach)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: length) { buffer in
            guard let buf = buffer.baseAddress else { return }
            // Only columns padLeft ..< padLeft + width are ever written: the rest stay zero.
            zeroFloats(buf, count: length)
            let inside = buf + wd.padLeft
            for ci in 0..<cg {
                let plane = x + ci * height * width
                for ki in 0..<wd.kernelH {
                    // Column-matrix row of tap (ci, ki, kj) is first + kj, as in `im2col`.
                    let first = (ci * wd.kernelH + ki) * kw
                    for r in rows {
                        let ih = r * wd.strideH - wd.padTop + ki * wd.dilationH
                        let at = (r - rows.lowerBound) * ow
                        if ih < 0 || ih >= height {
                            for kj in 0..<kw { zeroFloats(cols + (first + kj) * rowStride + at, count: ow) }
                            continue
                        }
                        copyFloats(plane + ih * width, inside, count: width)
                        for kj in 0..<kw {
                            let src = buf + kj * dil, d = cols + (first + kj) * rowStride + at
                            var c = 0
                            while c + 16 <= ow {
                                storeVector(evenLanes(loadVector(src + 2 * c), loadVector(src + 2 * c + 16)), d + c)
                                c += 16
                            }
                            if c < ow {
                                c = ow - 16
                                storeVector(evenLanes(loadVector(src + 2 * c), loadVector(src + 2 * c + 16)), d + c)
                            }
                        }
                    }
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
        let cg = ch / groups, mg = m / groups, taps = window.kernelH * window.kernelW
        let depth = cg * taps
        // Stride 1 multiplies from the padded image, except for shallow filters
        // (a first layer over 1–3 colour channels): their column matrix is small,
        // and when it has whole vectors of pixels the product can be written
        // straight into the output, saving the staging pass over the output.
        let pixels = window.outH * window.outW
        // Small planes of deep filters: several images per product (see
        // `imagesPerProduct`), about 384 columns — eight 48-column tiles.
        // Only with 128 filters or more: the column matrix is built for the
        // product's sake, and with fewer filters to reuse it the copy costs
        // more than the tiles gain (the CIFAR ResNet's 64-filter 8×8 stage
        // ran 17 % slower side by side).
        //
        // Planes under 256 pixels (14×14) of kernels wider than 1×1: two images
        // side by side. Their padded layout computes 16 columns for every 14
        // pixels; two images' column matrices make 392 of 400 columns (ResNet-18
        // and ResNet-50 3–4 % faster, one thread). 1×1s there keep their
        // direct product, which pads nothing (side by side, MobileNet-V2's
        // 1×1s lost 2 %, BENCHMARKS.md).
        let sideBySide = pixels < ConvKernel.sideBySideBelow && depth > 32 && mg >= 128 && n > 1
            ? min(n, max(1, 384 / pixels))
            : (taps > 1 && pixels < ConvKernel.pairedBelow && depth > 32 && mg >= 128 && n > 1 ? 2 : 1)
        let fitsOutput = pixels % 16 == 0 && mg % PackedRows.panelHeight == 0 && sideBySide == 1
        // The product reads whole vectors from each row of B: in place only
        // where a channel's plane is whole vectors, so that the last channel's
        // last vector ends at the end of the image (not past the input buffer).
        // Shallow filters too: their column matrix would be the image again.
        let inPlace = window.strideH == 1 && window.strideW == 1 && taps == 1 && pixels % 16 == 0 && sideBySide == 1
            && window.padTop + window.padLeft + window.padBottom + window.padRight == 0
        // Shifted copies (`readsShiftedCopies`): "same" stride-1 convolutions
        // on planes up to 32 wide, where the padded row's extra columns cost
        // 6 % (32×32) to 25 % (8×8) of the product; wider planes keep the one
        // padded copy (1 % at 224). Shallow first layers too: their copies
        // are smaller than the column matrix.
        let shifted = !inPlace && sideBySide == 1
            && window.strideH == 1 && window.strideW == 1 && window.dilationH == 1 && window.dilationW == 1
            && window.outH == h && window.outW == wd && taps > 1 && wd <= 32 && wd >= window.kernelW
            && window.padLeft + window.padRight == window.kernelW - 1
            && window.padTop + window.padBottom == window.kernelH - 1
        let direct = inPlace || shifted
            || (window.strideH == 1 && window.strideW == 1 && !(depth <= 32 && fitsOutput) && sideBySide == 1)
        let hp = h + window.padTop + window.padBottom, wp = shifted ? wd : wd + window.padLeft + window.padRight
        let rowWidth = direct ? wp : window.outW
        let productWidth = max(16, (sideBySide * window.outH * rowWidth + 15) / 16 * 16)
        // im2col chunks (`im2colChunkRows`): whole vectors of pixels per chunk
        // (rows a multiple of 16 / gcd(outW, 16)), at least 192 columns (four
        // 48-column tiles), else as many rows as keep the chunk's column matrix
        // within 384 KiB (of the 1–2 MiB L2 of current x86 cores).
        var chunkRows = Int.max
        if !direct && sideBySide == 1 {
            let ow = window.outW
            var g16 = 16, r = ow
            while r != 0 { (g16, r) = (r, g16 % r) }
            let step = 16 / g16
            let fewest = (192 + ow - 1) / ow
            var rows = max(fewest, (384 * 1024 / 4) / max(1, depth * ow))
            rows = (rows + step - 1) / step * step
            if rows < window.outH { chunkRows = rows }
        }
        let columnStride = ConvKernel.columnRowStride(chunkRows == Int.max ? productWidth : (chunkRows * window.outW + 15) / 16 * 16)
        // A shifted copy: lead slack, cg planes of hp × wd, then room for the
        // last tap's product columns past the last plane (its reads end at
        // lead + (cg − 1)·plane + (kh − 1)·wd + padRight + productWidth).
        let shiftedCopy = ConvKernel.shiftedLead + cg * hp * wd + (productWidth - pixels) + window.padRight + 16
        var offsets = [Int](repeating: 0, count: depth)
        for ci in 0..<cg {
            for ki in 0..<window.kernelH {
                for kj in 0..<window.kernelW {
                    let j = (ci * window.kernelH + ki) * window.kernelW + kj
                    if shifted {
                        offsets[j] = kj * shiftedCopy + ConvKernel.shiftedLead + ci * hp * wd + ki * wd + kj - window.padLeft
                    } else {
                        offsets[j] = direct ? ci * hp * wp + ki * window.dilationH * wp + kj * window.dilationW
                                            : j * columnStride
                    }
                }
            }
        }
        // The last row of B read by a product ends at its offset + productWidth.
        let paddedCount = shifted ? window.kernelW * shiftedCopy : direct ? (offsets.max() ?? 0) + productWidth : 0
        let panelRows = (mg + PackedRows.panelHeight - 1) / PackedRows.panelHeight * PackedRows.panelHeight
        let source = direct ? checkedProduct([paddedCount]) : checkedProduct([depth, columnStride])
        guard let source, let staging = checkedProduct([panelRows, productWidth]),
              source + staging <= maxValuesPerImage else {
            throw c.unsupported("convolution of \(ch)×\(h)×\(wd) with \(w.dims) would need an implausibly large scratch buffer")
        }
        let values = w.floatValues
        let packed = values.withUnsafeBufferPointer { all -> [PackedRows] in
            guard let base = all.baseAddress else { return [] }
            return (0..<groups).map { g in PackedRows(base + g * mg * depth, rows: mg, depth: depth, rowStride: depth) }
        }
        var kernel = ConvKernel(
            outputShape: [n, m, window.outH, window.outW], channels: ch, height: h, width: wd,
            outChannels: m, groups: groups, window: window, weights: WeightBuffer(values),
            bias: bias, packedFilters: packed, readsPaddedInput: direct,
            writesOutputDirectly: (!direct || inPlace || shifted) && fitsOutput,
            paddedHeight: hp, paddedWidth: wp, productWidth: productWidth,
            paddedCount: paddedCount, rowOffsets: offsets)
        kernel.imagesPerProduct = sideBySide
        kernel.readsInputInPlace = inPlace
        kernel.readsShiftedCopies = shifted
        kernel.shiftedCopyCount = shifted ? shiftedCopy : 0
        kernel.im2colChunkRows = chunkRows
        if groups > 1 && cg == 1 {
            kernel.imagesPerProduct = 1
            kernel.depthwise = try DepthwiseConvKernel.make(
                outputShape: kernel.outputShape, channels: ch, height: h, width: wd, outChannels: m,
                window: window, weights: kernel.weights, bias: bias, c)
        }
        return .kernel(kernel, runtimeInputs: [0])
    }
}
