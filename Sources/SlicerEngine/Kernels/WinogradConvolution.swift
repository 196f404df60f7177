// Winograd minimal filtering F(2×2, 3×3) for the inference plan's 3×3
// stride-1 convolutions (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2015).
//
// Why: the packed product already runs at ~97 % of the cores' FMA peak, and
// 3×3 stride-1 convolutions are nearly all of a VGG's or ResNet-18's time, so
// the only way to go faster is to do fewer multiplications. A 2×2 block of
// outputs of one filter over one channel needs 36 multiplications directly;
// through the transforms it needs 16 (2.25× fewer), the rest being additions:
//
//   Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
//
// over 4×4 input tiles d (stride 2). Summed over the input channels, each of
// the 16 positions ξ of the 4×4 transformed tile is one matrix product
// M_ξ (K × tiles) = U_ξ (K × C) · V_ξ (C × tiles), done by the packed
// micro-kernel (PackedGemm.swift) with U_ξ packed once when the plan is built.
//
// Only the inference plan uses it (Fusion.swift), and only for layers where
// it measured faster (`accepts`): the transforms round differently from the
// direct sum (ResNet-18's logits 3e-6 relative from ONNX Runtime's, VGG-11's
// 2e-6), and the analysis and CAR must see the same values in every run.
//
// Determinism: every tile is a column of the 16 products, each column its own
// chain of fused multiply-adds over the channels in order, and the transforms
// are per tile: an image's result does not depend on the images or tiles
// processed beside it (blocks may hold tiles of several images).

private typealias Vector = SIMD16<Float>
private typealias Pair = SIMD32<Float>

@inline(__always)
private func loadPair(_ p: UnsafePointer<Float>) -> Pair {
    UnsafeRawPointer(p).loadUnaligned(as: Pair.self)
}

/// One F(2×2, 3×3) convolution: 3×3 kernel, stride 1, dilation 1, one group,
/// any zero padding, with the bias and the fused epilogue applied as the
/// outputs are stored.
struct WinogradConvKernel: Kernel {
    let outputShape: [Int]
    let channels: Int, height: Int, width: Int, outChannels: Int
    let padTop: Int, padLeft: Int
    let outH: Int, outW: Int
    /// Output tiles (2×2) per column and row of the output plane.
    let tilesH: Int, tilesW: Int
    /// The padded copy of a channel: rows and columns 2·tiles + 2 (every
    /// tile's 4×4 input lies inside), plus slack after the last plane for
    /// the 32-float loads of the input transform.
    let paddedH: Int, paddedW: Int
    let paddedImage: Int
    /// U_ξ = (G g Gᵀ)_ξ for ξ = 0..<16, each a K × C matrix packed for the micro-kernel.
    let filters: [PackedRows]
    let bias: WeightBuffer?
    let epilogue: OutputEpilogue
    /// Blocks of tiles: `rowsPerBlock` consecutive tile rows of the batch
    /// (image n's rows after image n − 1's), a whole number of vectors of
    /// tiles, so that only the batch's last block has a partial vector.
    let rowsPerBlock: Int
    /// Padded images kept at once: as many as a block's rows can touch
    /// (image n in slot n mod paddedSlots, padded when a block first needs it).
    let paddedSlots: Int
    /// Floats between rows of V_ξ and M_ξ: the block's columns rounded up to
    /// whole vectors, plus one vector for the transforms' overhanging stores.
    let columnStride: Int
    /// Row c of V_ξ starts at c · columnStride.
    let rowOffsets: [Int]

    /// Planes of 32, 16 or 8 output columns (`runsWholeImages`: CIFAR's) run
    /// whole images per block, their tiles numbered across tile rows, so
    /// that a vector of 16 tiles spans several tile rows instead of leaving
    /// 12 of 16 lanes idle on an 8×8 plane (`runImages`). Each image is
    /// first split into its columns' even and odd phases (`splitPhases`),
    /// so the input transform reads plain vectors: taken as even and odd
    /// lanes of 32 values, the compiler built them from gathers, which
    /// cost more than the products on the CIFAR ResNet's layers. The sums
    /// and transforms are the same expressions in the same order: bit for
    /// bit the row-by-row path's results.
    let wholeImages: Bool
    /// Tiles of one image (tilesH · tilesW), numbered ty · tilesW + tx.
    let tilesPerImage: Int
    /// Images per block (`wholeImages`).
    let imagesPerBlock: Int
    /// One phase array: tilesH + 1 rows of tilesW values (see `splitPhases`).
    let phaseArray: Int
    /// Floats of one image's phase arrays (8 per channel) and slack.
    let phaseImage: Int
    /// Set when the inference plan merged the 2×2 stride-2 max pool after
    /// the convolution (Fusion.swift, `accepts(_:pool:)`): the pool's output
    /// rows and columns, tilesH and tilesW. Each 2×2 output tile is then
    /// exactly one pool window, and tile L = ty · tilesW + tx is pooled
    /// value L of the plane: the output transform keeps only the largest of
    /// its four values (after the bias and clamp), stored in tile order.
    /// Such planes (MNIST's 14×14: 7 tiles a row, 49 an image) run whole
    /// images per block whatever their width, so that vectors of 16 tiles
    /// run across tile rows and images instead of half-empty rows.
    let pooledH: Int, pooledW: Int
    var pools: Bool { pooledH > 0 }

    static let tileCount = 16

    /// Fewest tiles per block (see init).
    static let minimumColumns = 96

    /// Input channels below which a 3×3 convolution keeps the direct product,
    /// and below which a small plane (at most `smallPlane` outputs) does.
    /// Measured (one thread, processor time, Zen 5): with few channels the
    /// products are short (depth C instead of 9·C: the micro-kernel's
    /// accumulator loads and stores weigh more) and the transforms, whose cost
    /// grows with C + K, not C · K, weigh as much as the multiplications
    /// saved. MNIST's 32 → 64 at 14×14 ran no faster, the CIFAR ResNet's
    /// 16- and 32-channel layers 1.3× slower, its 64-channel 8×8 layers ~7 %
    /// slower; VGG/ResNet layers of 64 channels at 56×56 up to 512 at 7×7,
    /// and the CIFAR VGG's 128 and 256 at 8×8, run faster.
    static let minimumChannels = 64
    static let smallPlane = 64
    /// Input channels from which a plane that runs whole images per block
    /// (`runsWholeImages`) takes Winograd: measured (one thread, processor
    /// time, Zen 4) on the CIFAR ResNet, its 16-channel 32×32 layers ~10 %,
    /// 32-channel 16×16 ~25 %, 64-channel 8×8 ~30 % faster than the direct
    /// product once the transforms ran on whole vectors.
    static let minimumChannelsWholeImages = 16

    /// Planes whose tiles run whole images per block (`wholeImages`): 32, 16
    /// or 8 columns and an even number of rows, so that 16 tiles are 1, 2 or
    /// 4 whole tile rows, and whole vectors of tiles per image (CIFAR's
    /// planes; ImageNet's 28, 14 and 7 keep the row-by-row path).
    static func runsWholeImages(outH: Int, outW: Int) -> Bool {
        (outW == 32 || outW == 16 || outW == 8) && outH % 2 == 0 && (outH / 2) * (outW / 2) % 16 == 0
    }

    /// Whether `conv` is a 3×3 stride-1 dense convolution F(2×2, 3×3) computes.
    static func isDense3x3(_ conv: ConvKernel) -> Bool {
        let w = conv.window
        return conv.depthwise == nil && conv.groups == 1
            && w.kernelH == 3 && w.kernelW == 3 && w.strideH == 1 && w.strideW == 1
            && w.dilationH == 1 && w.dilationW == 1 && w.outH >= 2 && w.outW >= 2
    }

    /// Input channels from which a convolution with its pool merged
    /// (`accepts(_:pool:)`) takes Winograd.
    static let minimumChannelsPooled = 16
    /// Widest output plane whose tile rows fit one vector (the phase split's limit).
    static let widestPooledPlane = 32

    /// Whether `conv` and the 2×2 stride-2 max pool after it run here as one
    /// kernel: even output rows and columns (the pool windows are the tiles),
    /// a plain 2×2 max pool without padding covering the whole plane, no
    /// residual (its full-size values would be needed).
    static func accepts(_ conv: ConvKernel, pool: PoolKernel) -> Bool {
        let w = conv.window, p = pool.window
        guard isDense3x3(conv), !conv.epilogue.addsResidual, conv.channels >= minimumChannelsPooled else { return false }
        return w.outH % 2 == 0 && w.outW % 2 == 0 && w.outW <= widestPooledPlane
            && pool.isPlainMax2x2(over: w.outH, w.outW)
            && 2 * p.outH == w.outH && 2 * p.outW == w.outW
    }

    /// Whether `conv` is a convolution this kernel computes (and is worth it).
    static func accepts(_ conv: ConvKernel) -> Bool {
        let w = conv.window
        return isDense3x3(conv)
            && (conv.channels >= minimumChannels
                    && (w.outH * w.outW > smallPlane || conv.channels >= 2 * minimumChannels)
                || conv.channels >= minimumChannelsWholeImages && runsWholeImages(outH: w.outH, outW: w.outW))
    }

    /// The same convolution (weights, bias, epilogue as `conv` holds them,
    /// i.e. after any BatchNormalization fold) computed by F(2×2, 3×3).
    init(_ conv: ConvKernel, pool: PoolKernel? = nil) {
        precondition(pool.map { Self.accepts(conv, pool: $0) } ?? Self.accepts(conv), "not a 3×3 stride-1 dense convolution")
        let w = conv.window
        outputShape = pool?.outputShape ?? conv.outputShape
        pooledH = pool?.window.outH ?? 0
        pooledW = pool?.window.outW ?? 0
        channels = conv.channels
        height = conv.height
        width = conv.width
        outChannels = conv.outChannels
        padTop = w.padTop
        padLeft = w.padLeft
        outH = w.outH
        outW = w.outW
        tilesH = (outH + 1) / 2
        tilesW = (outW + 1) / 2
        paddedH = 2 * tilesH + 2
        paddedW = 2 * tilesW + 2
        paddedImage = channels * paddedH * paddedW + 64
        bias = conv.bias
        epilogue = conv.epilogue
        filters = Self.transformFilters(conv.weights.pointer, outChannels: outChannels, channels: channels)
        // Tiles per block: V_ξ and M_ξ of all 16 ξ (16 · (C + K) floats per
        // tile) within about 1 MiB, the L2 of one core on current x86 parts,
        // so that the products read V and the output transform reads M from
        // L2; but at least `minimumColumns` (the micro-kernel's 48-column
        // tiles: 2 or 3 of them), where deep layers then spill to L3.
        let panelRows = PackedRows.panelCount(rows: outChannels) * PackedRows.panelHeight
        let target = max(Self.minimumColumns, (1 << 18) / (16 * (channels + panelRows)))
        // Whole vectors of tiles per block: rows a multiple of 16 / gcd(tilesW, 16).
        var g16 = 16, r = tilesW
        while r != 0 { (g16, r) = (r, g16 % r) }
        let step = 16 / g16
        rowsPerBlock = max(step, (target / tilesW + step / 2) / step * step)
        let touched = (rowsPerBlock + tilesH - 2) / tilesH + 1
        paddedSlots = max(1, min(touched, conv.outputShape.first ?? 1))
        tilesPerImage = tilesH * tilesW
        wholeImages = Self.runsWholeImages(outH: outH, outW: outW) || pool != nil
        imagesPerBlock = max(1, min(conv.outputShape.first ?? 1, target / tilesPerImage))
        // 16 floats between arrays: the split stores whole vectors per row.
        phaseArray = (tilesH + 1) * tilesW + 16
        phaseImage = channels * 8 * phaseArray + 64
        let columns = wholeImages ? imagesPerBlock * tilesPerImage : rowsPerBlock * tilesW
        let stride = (columns + 15) / 16 * 16 + 16
        columnStride = stride
        rowOffsets = (0..<channels).map { $0 * stride }
    }

    /// U = G g Gᵀ per filter and channel, in double and rounded once, laid out
    /// as 16 matrices U_ξ[k][c] and packed.
    static func transformFilters(_ g: UnsafePointer<Float>, outChannels: Int, channels: Int) -> [PackedRows] {
        var u = [Float](repeating: 0, count: 16 * outChannels * channels)
        for k in 0..<outChannels {
            for c in 0..<channels {
                let f = g + (k * channels + c) * 9
                // t = G g (4 × 3), G's rows (1, 0, 0), ½(1, 1, 1), ½(1, −1, 1), (0, 0, 1).
                var t = [Double](repeating: 0, count: 12)
                for j in 0..<3 {
                    let g0 = Double(f[j]), g1 = Double(f[3 + j]), g2 = Double(f[6 + j])
                    t[j] = g0
                    t[3 + j] = 0.5 * (g0 + g1 + g2)
                    t[6 + j] = 0.5 * (g0 - g1 + g2)
                    t[9 + j] = g2
                }
                // U = t Gᵀ, row by row.
                for i in 0..<4 {
                    let t0 = t[3 * i], t1 = t[3 * i + 1], t2 = t[3 * i + 2]
                    let row = [t0, 0.5 * (t0 + t1 + t2), 0.5 * (t0 - t1 + t2), t2]
                    for j in 0..<4 { u[((i * 4 + j) * outChannels + k) * channels + c] = Float(row[j]) }
                }
            }
        }
        return u.withUnsafeBufferPointer { all in
            (0..<16).map { xi in
                PackedRows(all.baseAddress! + xi * outChannels * channels, rows: outChannels, depth: channels, rowStride: channels)
            }
        }
    }

    var panelRows: Int { filters[0].paddedRows }
    private var transformedCount: Int { Self.tileCount * channels * columnStride }
    private var productCount: Int { Self.tileCount * panelRows * columnStride }

    /// Floats before V: the padded images, or (`wholeImages`) one padded
    /// image and its phase arrays.
    private var stagingCount: Int {
        wholeImages ? paddedImage + phaseImage : paddedSlots * paddedImage
    }

    var scratchCount: Int { stagingCount + transformedCount + productCount }

    func run(_ io: KernelIO) {
        if wholeImages {
            runImages(io)
            return
        }
        let padded = io.scratch
        let v = padded + paddedSlots * paddedImage
        let m = v + transformedCount
        let inImage = channels * height * width
        rowOffsets.withUnsafeBufferPointer { offsets in
            guard let offsets = offsets.baseAddress else { return }
            let rows = io.batch * tilesH
            var lastPadded = -1
            var first = 0
            while first < rows {
                let end = min(rows, first + rowsPerBlock)
                while lastPadded < (end - 1) / tilesH {
                    lastPadded += 1
                    pad(io.inputs[0] + lastPadded * inImage, into: padded + lastPadded % paddedSlots * paddedImage)
                }
                runBlock(io, rows: first..<end, padded: padded, v: v, m: m, offsets: offsets)
                first = end
            }
        }
    }

    /// `wholeImages`: blocks of `imagesPerBlock` images; image i of a block
    /// has V and M columns i · tilesPerImage ..< (i + 1) · tilesPerImage.
    private func runImages(_ io: KernelIO) {
        let padded = io.scratch, phases = padded + paddedImage
        let v = io.scratch + stagingCount
        let m = v + transformedCount
        let stride = columnStride, cStride = channels * stride, mStride = panelRows * stride
        let inImage = channels * height * width
        let outPlane = pools ? tilesPerImage : outH * outW, outImage = outChannels * outPlane
        let residualBase: UnsafePointer<Float>? = epilogue.addsResidual ? UnsafePointer(io.inputs[1]) : nil
        let finishes = bias != nil || !epilogue.isEmpty
        // The phase arrays' slack stays zero (scratch is shared with other
        // kernels: nothing is assumed zero).
        zeroFloats(phases + channels * 8 * phaseArray, count: phaseImage - channels * 8 * phaseArray)
        rowOffsets.withUnsafeBufferPointer { offsets in
            guard let offsets = offsets.baseAddress else { return }
            var first = 0
            while first < io.batch {
                let count = min(imagesPerBlock, io.batch - first)
                for i in 0..<count {
                    // Padded whole, then split: split row by row straight after
                    // its copy, each wide load waited for the narrower stores
                    // still in flight to the same row (a failed store-to-load forward).
                    pad(io.inputs[0] + (first + i) * inImage, into: padded)
                    splitPhases(padded, into: phases)
                    transformImage(phases, into: v + i * tilesPerImage, cStride: cStride)
                }
                let columns = count * tilesPerImage, productWidth = (columns + 15) / 16 * 16
                if columns < productWidth {
                    // Columns past the last tile: zero, not stale values (which could be NaN or subnormal).
                    for row in 0..<(Self.tileCount * channels) { zeroFloats(v + row * stride + columns, count: productWidth - columns) }
                }
                for xi in 0..<Self.tileCount {
                    filters[xi].multiply(v + xi * cStride, offsets: offsets, width: productWidth, into: m + xi * mStride, ldc: stride)
                }
                for i in 0..<count {
                    let n = first + i
                    for k in 0..<outChannels {
                        let plane = io.output + n * outImage + k * outPlane
                        if pools {
                            untransformPooled(m + k * stride + i * tilesPerImage, mStride, into: plane, bias: bias?.pointer[k])
                            continue
                        }
                        untransformImage(m + k * stride + i * tilesPerImage, mStride, into: plane)
                        if finishes {
                            epilogue.apply(plane, plane, count: outPlane, bias: bias?.pointer[k],
                                           residual: residualBase.map { $0 + n * outImage + k * outPlane })
                        }
                    }
                }
                first += count
            }
        }
    }

    /// Splits one image's zero-padded channels into column phases: for
    /// padded row r = 2t + p, array (kind, p) holds at row t, column tx the
    /// value of padded column 2tx (kind 0), 2tx + 1 (1), 2tx + 2 (2) or
    /// 2tx + 3 (3) — the four columns of tile tx. Rows are tilesW apart, so
    /// tile L = ty · tilesW + tx finds row 2ty + i of its 4×4 input at
    /// L + (i / 2) · tilesW of array (kind, i mod 2): one vector load per
    /// kind and row for 16 consecutive tiles, across tile rows.
    private func splitPhases(_ padded: UnsafePointer<Float>, into phases: UnsafeMutablePointer<Float>) {
        let tw = tilesW, array = phaseArray, hw = paddedH * paddedW
        for c in 0..<channels {
            let base = phases + c * 8 * array, plane = padded + c * hw
            for pr in 0..<paddedH {
                // A row's ≤ 16 tiles as whole vectors (even and odd lanes of
                // 32 values, shuffles): lanes past tilesW, read from the
                // next padded rows or the slack, land on the next rows of
                // the array, written after this one, or in the gap after its
                // last row. A loop per value ran lane by lane on 4- and
                // 8-tile rows behind aliasing checks: a quarter of the
                // CIFAR ResNet's time.
                let row = plane + pr * paddedW
                let at = base + (pr & 1) * array + (pr >> 1) * tw
                let a0 = loadVector(row), a1 = loadVector(row + 16)
                let b0 = loadVector(row + 2), b1 = loadVector(row + 18)
                storeVector(evenLanes(a0, a1), at)
                storeVector(oddLanes(a0, a1), at + 2 * array)
                storeVector(evenLanes(b0, b1), at + 4 * array)
                storeVector(oddLanes(b0, b1), at + 6 * array)
            }
        }
    }

    /// V_ξ[c][L] = (Bᵀ d B)_ξ for the tiles L of one image, 16 at a time
    /// (the row-by-row path's expressions: `winogradInput`). The last vector
    /// may run past the image's tiles: those lanes land on columns that the
    /// next image's transform overwrites, or past the block's tiles (zeroed
    /// before the products).
    private func transformImage(_ phases: UnsafePointer<Float>, into v: UnsafeMutablePointer<Float>, cStride: Int) {
        let array = phaseArray, tw = tilesW, stride = columnStride
        for c in 0..<channels {
            let base = phases + c * 8 * array
            var tile = 0
            while tile < tilesPerImage {
                // Row i of the tiles' inputs: kind k at base + (2k + i mod 2) · array + tile + (i / 2) · tw.
                @inline(__always)
                func rowB(_ i: Int) -> (Vector, Vector, Vector, Vector) {
                    let at = base + (i & 1) * array + tile + (i >> 1) * tw
                    let d0 = loadVector(at), d1 = loadVector(at + 2 * array)
                    let d2 = loadVector(at + 4 * array), d3 = loadVector(at + 6 * array)
                    return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
                }
                storeInputTransform(rowB(0), rowB(1), rowB(2), rowB(3), v + c * stride + tile, cStride)
                tile += 16
            }
        }
    }

    /// Y = Aᵀ M A for the tiles of one image and filter (M_ξ at m + ξ · mStride,
    /// tile L at column L), written into its output plane.
    private func untransformImage(_ m: UnsafePointer<Float>, _ mStride: Int, into plane: UnsafeMutablePointer<Float>) {
        // A vector's 16 tiles are 1, 2 or 4 whole tile rows (32, 16 or 8
        // columns), stored from registers: through a buffer, each narrower
        // reload of the wide stores just made waited for them (a failed
        // store-to-load forward).
        let w = outW
        var tile = 0
        while tile < tilesPerImage {
            let (upper, lower) = winogradOutput(m + tile, mStride)
            let top = plane + 2 * (tile / tilesW) * w
            switch w {
            case 32:
                UnsafeMutableRawPointer(top).storeBytes(of: upper, as: Pair.self)
                UnsafeMutableRawPointer(top + w).storeBytes(of: lower, as: Pair.self)
            case 16:
                storeVector(upper.lowHalf, top); storeVector(lower.lowHalf, top + w)
                storeVector(upper.highHalf, top + 2 * w); storeVector(lower.highHalf, top + 3 * w)
            default:
                // Tile row q of the four: floats 8q ..< 8q + 8 of each pair.
                @inline(__always)
                func put8(_ v: SIMD8<Float>, _ row: Int) {
                    UnsafeMutableRawPointer(top + row * w).storeBytes(of: v, as: SIMD8<Float>.self)
                }
                put8(upper.lowHalf.lowHalf, 0); put8(lower.lowHalf.lowHalf, 1)
                put8(upper.lowHalf.highHalf, 2); put8(lower.lowHalf.highHalf, 3)
                put8(upper.highHalf.lowHalf, 4); put8(lower.highHalf.lowHalf, 5)
                put8(upper.highHalf.highHalf, 6); put8(lower.highHalf.highHalf, 7)
            }
            tile += 16
        }
    }

    /// `pools`: Y = Aᵀ M A for the tiles of one image and filter, each
    /// tile's four outputs through the bias and clamp (OutputEpilogue.apply's
    /// steps) and then its largest (maxPool2x2's comparisons: vertical pairs
    /// first, then the two columns), stored at the tile's index: the pooled plane.
    private func untransformPooled(_ m: UnsafePointer<Float>, _ mStride: Int, into plane: UnsafeMutablePointer<Float>,
                                   bias: Float?) {
        let hasBias = bias != nil, bv = Vector(repeating: bias ?? 0)
        let clamps = epilogue.clamps
        @inline(__always)
        func finish(_ v: Vector) -> Vector {
            var v = v
            if hasBias { v += bv }
            if clamps { v = epilogue.clamp(v) }
            return v
        }
        var tile = 0
        while tile < tilesPerImage {
            let (y00, y01, y10, y11) = winogradOutputPhases(m + tile, mStride)
            let pooled = poolMax(poolMax(finish(y00), finish(y10)), poolMax(finish(y01), finish(y11)))
            let left = tilesPerImage - tile
            if left >= 16 {
                storeVector(pooled, plane + tile)
            } else {
                // The plane's last tiles: a whole vector would run into the
                // next plane, or past the output after the batch's last.
                for l in 0..<left { plane[tile + l] = pooled[l] }
            }
            tile += 16
        }
    }

    /// Copies one image into the padded layout (zeros around it; the slack zeroed too).
    private func pad(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let hp = paddedH, wp = paddedW
        if wholeImages {
            // Rows of 10 to 34 floats: each padded row is first cleared with
            // whole zero vectors (running on into the next row, cleared and
            // written after it, or into the slack), then the image's row is
            // copied in. Zeroing the 1-float borders one by one went through
            // a library memset call each: pad and memset were 8 % of the
            // CIFAR ResNet's time. (On ImageNet's wide rows the extra stores
            // of the clearing cost more than the calls: VGG-11 5 % slower.)
            for c in 0..<channels {
                let plane = dst + c * hp * wp, src = x + c * height * width
                for pr in 0..<hp {
                    let row = plane + pr * wp
                    var i = 0
                    while i < wp { storeVector(Vector(), row + i); i += 16 }
                    let ir = pr - padTop
                    if ir >= 0 && ir < height { copyFloats(src + ir * width, row + padLeft, count: width) }
                }
            }
            zeroFloats(dst + channels * hp * wp, count: paddedImage - channels * hp * wp)
            return
        }
        for c in 0..<channels {
            let plane = dst + c * hp * wp, src = x + c * height * width
            zeroFloats(plane, count: padTop * wp)
            for r in 0..<height {
                let row = plane + (padTop + r) * wp
                zeroFloats(row, count: padLeft)
                copyFloats(src + r * width, row + padLeft, count: width)
                zeroFloats(row + padLeft + width, count: wp - padLeft - width)
            }
            let below = padTop + height
            zeroFloats(plane + below * wp, count: (hp - below) * wp)
        }
        zeroFloats(dst + channels * hp * wp, count: paddedImage - channels * hp * wp)
    }

    /// Input transform, the 16 products and the output transform for the
    /// tiles of tile rows `rows` of the batch (row g: image g / tilesH, tile
    /// row g mod tilesH). Column of tile tx of row g: (g − first) · tilesW + tx.
    private func runBlock(_ io: KernelIO, rows: Range<Int>,
                          padded: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                          m: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int>) {
        let stride = columnStride, cStride = channels * stride
        let columns = rows.count * tilesW
        let productWidth = (columns + 15) / 16 * 16
        let hw = paddedH * paddedW

        // V_ξ[c][tile] = (Bᵀ d B)_ξ, 16 tiles of a tile row at a time: the
        // 4×4 inputs of tiles tx…tx+15 are the even and odd lanes of 32
        // consecutive values of 4 padded rows, starting at columns 2tx and 2tx + 2.
        // A row with fewer tiles left stores a whole vector anyway: its extra
        // lanes land on columns that the next tile row's stores overwrite, or
        // (last row) past the block's columns.
        for g in rows {
            let image = padded + g / tilesH % paddedSlots * paddedImage, ty = g % tilesH
            let rowColumn = (g - rows.lowerBound) * tilesW
            var tx = 0
            while tx < tilesW {
                var src = image + 2 * ty * paddedW + 2 * tx
                var dst = v + rowColumn + tx
                for _ in 0..<channels {
                    winogradInput(src, paddedW, dst, cStride)
                    src += hw
                    dst += stride
                }
                tx += 16
            }
        }
        if columns < productWidth {
            // Columns past the last tile: zero, not stale values (which could be NaN or subnormal).
            for row in 0..<(Self.tileCount * channels) { zeroFloats(v + row * stride + columns, count: productWidth - columns) }
        }
        let mStride = panelRows * stride
        // With write hints: the block's V and M (over 1 MiB on ImageNet
        // planes) evict each other's lines between blocks (PackedGemm.swift).
        for xi in 0..<Self.tileCount {
            filters[xi].multiply(v + xi * cStride, offsets: offsets, width: productWidth, into: m + xi * mStride, ldc: stride,
                                 writeHints: true)
        }

        // Y = Aᵀ M A per tile, 16 tiles of a tile row at a time, interleaved
        // back into output rows 2ty and 2ty + 1; then the bias and the fused
        // epilogue (OutputEpilogue.apply, the same steps as the direct path's)
        // over each image's rows of the block at once, contiguous and in L1:
        // row by row, the 8- and 16-value rows of CIFAR-sized planes went
        // through apply's lane-by-lane tail and made those layers 2–3× slower.
        let outPlane = outH * outW, outImage = outChannels * outPlane
        let residualBase: UnsafePointer<Float>? = epilogue.addsResidual ? UnsafePointer(io.inputs[1]) : nil
        let finishes = bias != nil || !epilogue.isEmpty
        for k in 0..<outChannels {
            var g = rows.lowerBound
            while g < rows.upperBound {
                // Tile rows ty0 ..< ty1 of image n.
                let n = g / tilesH, ty0 = g % tilesH
                let ty1 = min(tilesH, ty0 + rows.upperBound - g)
                let plane = io.output + n * outImage + k * outPlane
                for ty in ty0..<ty1 {
                    let rowColumn = (g + ty - ty0 - rows.lowerBound) * tilesW
                    let secondRow = 2 * ty + 1 < outH
                    let top = plane + 2 * ty * outW
                    var tx = 0
                    while tx < tilesW {
                        let (upper, lower) = winogradOutput(m + k * stride + rowColumn + tx, mStride)
                        let x0 = 2 * tx, count = min(32, outW - x0)
                        put(upper, top + x0, count: count)
                        if secondRow { put(lower, top + outW + x0, count: count) }
                        tx += 16
                    }
                }
                if finishes {
                    let first = 2 * ty0 * outW, end = min(outH, 2 * ty1) * outW
                    epilogue.apply(plane + first, plane + first, count: end - first, bias: bias?.pointer[k],
                                   residual: residualBase.map { $0 + n * outImage + k * outPlane + first })
                }
                g += ty1 - ty0
            }
        }
    }

    /// Stores the first `count` values of `value` (all 32 or the last tiles of a row).
    @inline(__always)
    private func put(_ value: Pair, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        if count == 32 {
            UnsafeMutableRawPointer(dst).storeBytes(of: value, as: Pair.self)
        } else {
            withUnsafeBytes(of: value) { copyFloats($0.baseAddress!.assumingMemoryBound(to: Float.self), dst, count: count) }
        }
    }
}

/// Four vectors: one row of 16 tiles' 4×4 values, a column each.
private typealias TileRow = (Vector, Vector, Vector, Vector)

/// V = Bᵀ t for the rows t_r = d_r B of 16 tiles (both input transforms end
/// here): rows (t0 − t2, t1 + t2, t2 − t1, t1 − t3); writes ξ = 4a + b at
/// dst + ξ · xiStride.
@inline(__always)
private func storeInputTransform(_ t0: TileRow, _ t1: TileRow, _ t2: TileRow, _ t3: TileRow,
                                 _ dst: UnsafeMutablePointer<Float>, _ xiStride: Int) {
    @inline(__always)
    func store(_ row: Int, _ r: TileRow) {
        storeVector(r.0, dst + (4 * row) * xiStride)
        storeVector(r.1, dst + (4 * row + 1) * xiStride)
        storeVector(r.2, dst + (4 * row + 2) * xiStride)
        storeVector(r.3, dst + (4 * row + 3) * xiStride)
    }
    store(0, (t0.0 - t2.0, t0.1 - t2.1, t0.2 - t2.2, t0.3 - t2.3))
    store(1, (t1.0 + t2.0, t1.1 + t2.1, t1.2 + t2.2, t1.3 + t2.3))
    store(2, (t2.0 - t1.0, t2.1 - t1.1, t2.2 - t1.2, t2.3 - t1.3))
    store(3, (t1.0 - t3.0, t1.1 - t3.1, t1.2 - t3.2, t1.3 - t3.3))
}

/// Bᵀ d B for 16 tiles side by side; d's rows are `rowStride` apart from
/// `src`, tile l's columns at 2l…2l + 3. Writes ξ = 4a + b at dst + ξ · xiStride.
@inline(__always)
private func winogradInput(_ src: UnsafePointer<Float>, _ rowStride: Int,
                           _ dst: UnsafeMutablePointer<Float>, _ xiStride: Int) {
    // t_r = d_r B, per input row r: (d0 − d2, d1 + d2, d2 − d1, d1 − d3).
    var a = loadPair(src), b = loadPair(src + 2)
    let t00 = a.evenHalf - b.evenHalf, t01 = a.oddHalf + b.evenHalf, t02 = b.evenHalf - a.oddHalf, t03 = a.oddHalf - b.oddHalf
    a = loadPair(src + rowStride); b = loadPair(src + rowStride + 2)
    let t10 = a.evenHalf - b.evenHalf, t11 = a.oddHalf + b.evenHalf, t12 = b.evenHalf - a.oddHalf, t13 = a.oddHalf - b.oddHalf
    a = loadPair(src + 2 * rowStride); b = loadPair(src + 2 * rowStride + 2)
    let t20 = a.evenHalf - b.evenHalf, t21 = a.oddHalf + b.evenHalf, t22 = b.evenHalf - a.oddHalf, t23 = a.oddHalf - b.oddHalf
    a = loadPair(src + 3 * rowStride); b = loadPair(src + 3 * rowStride + 2)
    let t30 = a.evenHalf - b.evenHalf, t31 = a.oddHalf + b.evenHalf, t32 = b.evenHalf - a.oddHalf, t33 = a.oddHalf - b.oddHalf
    storeInputTransform((t00, t01, t02, t03), (t10, t11, t12, t13), (t20, t21, t22, t23), (t30, t31, t32, t33), dst, xiStride)
}

/// Aᵀ m A for 16 tiles side by side (m_ξ at src + ξ · xiStride): the two
/// output rows, each tile's two values interleaved (tile l at lanes 2l, 2l + 1).
@inline(__always)
private func winogradOutput(_ src: UnsafePointer<Float>, _ xiStride: Int) -> (Pair, Pair) {
    let (y00, y01, y10, y11) = winogradOutputPhases(src, xiStride)
    var top = Pair(), bottom = Pair()
    top.evenHalf = y00
    top.oddHalf = y01
    bottom.evenHalf = y10
    bottom.oddHalf = y11
    return (top, bottom)
}

/// Aᵀ m A for 16 tiles side by side, a vector per output position of the
/// tile: (row 0 column 0, row 0 column 1, row 1 column 0, row 1 column 1).
@inline(__always)
private func winogradOutputPhases(_ src: UnsafePointer<Float>, _ xiStride: Int) -> (Vector, Vector, Vector, Vector) {
    // s_r = m_r A: (m0 + m1 + m2, m1 − m2 − m3) per row r of m.
    var p = src
    var m0 = loadVector(p), m1 = loadVector(p + xiStride), m2 = loadVector(p + 2 * xiStride), m3 = loadVector(p + 3 * xiStride)
    let s00 = m0 + m1 + m2, s01 = m1 - m2 - m3
    p += 4 * xiStride
    m0 = loadVector(p); m1 = loadVector(p + xiStride); m2 = loadVector(p + 2 * xiStride); m3 = loadVector(p + 3 * xiStride)
    let s10 = m0 + m1 + m2, s11 = m1 - m2 - m3
    p += 4 * xiStride
    m0 = loadVector(p); m1 = loadVector(p + xiStride); m2 = loadVector(p + 2 * xiStride); m3 = loadVector(p + 3 * xiStride)
    let s20 = m0 + m1 + m2, s21 = m1 - m2 - m3
    p += 4 * xiStride
    m0 = loadVector(p); m1 = loadVector(p + xiStride); m2 = loadVector(p + 2 * xiStride); m3 = loadVector(p + 3 * xiStride)
    let s30 = m0 + m1 + m2, s31 = m1 - m2 - m3
    // Y = Aᵀ s: rows (s0 + s1 + s2, s1 − s2 − s3).
    return (s00 + s10 + s20, s01 + s11 + s21, s10 - s20 - s30, s11 - s21 - s31)
}
