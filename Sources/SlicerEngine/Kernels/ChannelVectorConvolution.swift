// Convolutions on small planes with the output channels along the vector
// lanes, for the inference plan (Fusion.swift).
//
// Why: the packed product (PackedGemm.swift) puts pixels along the vector
// lanes, 16 at a time, and on the stride-1 path computes every padded column:
// a 14×14 output at padded row width 16 is 224 columns for 196 pixels, 12.5 %
// of the arithmetic thrown away (MNIST's 32 → 64 3×3 layer, two thirds of its
// inference; an 8×8 plane at width 10 throws away 20 %). Here 64 filters are
// the four vectors of a tile and pixels are broadcast one at a time, so any
// set of pixels can form a tile: six valid pixels per tile, only the last
// tile of a plane short (its missing pixels repeat the last one and are not
// stored). The price is the layout: the tile holds pixel-major values and the
// output is channel-major, so each block of 64 channels is transposed once,
// with the bias and the fused epilogue, when all its pixels are done.
//
// Values: each output is the same chain of fused multiply-adds as in the
// packed product — from zero, over j = (channel, kernel row, kernel column)
// in order — then + bias, + residual, clamp, in the order of ConvKernel: bit
// for bit the values of the ConvKernel it replaces (ChannelVectorConvTests).
// Each image is computed on its own, so its result does not depend on the batch.

private typealias Vector = SIMD16<Float>

struct ChannelVectorConvKernel: Kernel {
    let outputShape: [Int]
    let channels: Int, height: Int, width: Int, outChannels: Int
    let window: Window2D
    /// The zero-padded copy of an image: channels × paddedHeight × paddedWidth.
    let paddedHeight: Int, paddedWidth: Int
    /// Filters per block of 64, tap-major: block b, tap j holds filters
    /// 64b ..< 64b + 64 at `filters + (b · depth + j) · 64`.
    let filters: WeightBuffer
    let bias: WeightBuffer?
    let epilogue: OutputEpilogue
    /// Where tap j reads, relative to a pixel's window corner in the padded image.
    let tapOffsets: [Int]
    /// Each output pixel's window corner in the padded image (row-major pixels).
    let pixelOffsets: [Int]
    /// Set when the inference plan merged the 2×2 stride-2 max pool after
    /// the convolution (Fusion.swift): the pool's output rows and columns.
    /// Each filter's plane then goes through maxPool2x2 from the transposed
    /// block, while it is in L1, instead of being stored at full size and
    /// read back by the pool step: the same function on the same values.
    let pooledH: Int, pooledW: Int
    var pools: Bool { pooledH > 0 }

    static let blockWidth = 64
    static let pixelsPerTile = 6
    /// Output planes below this many pixels (14×14 and smaller): on larger
    /// planes the padded columns are a small share and the transposition not free.
    static let largestPlane = 256

    var depth: Int { channels * window.kernelH * window.kernelW }
    var outPixels: Int { window.outH * window.outW }
    private var paddedCount: Int { channels * paddedHeight * paddedWidth }

    /// Whether the inference plan runs `conv` here: a dense (one group)
    /// convolution with a multiple of 64 filters, kernels wider than 1×1,
    /// stride 1 (the packed product's padded-column path) on a plane under
    /// `largestPlane` pixels, one image per product. Measured on the shipped
    /// models (BENCHMARKS.md, "Output channels along the lanes").
    static func accepts(_ conv: ConvKernel) -> Bool {
        let w = conv.window
        return conv.depthwise == nil && conv.groups == 1 && conv.outChannels % blockWidth == 0
            && conv.readsPaddedInput && !conv.readsInputInPlace && conv.imagesPerProduct == 1
            && w.kernelH * w.kernelW > 1 && w.strideH == 1 && w.strideW == 1
            && w.outH * w.outW < largestPlane && w.outW % 16 != 0
    }

    /// Whether `pool` after `conv` (which `accepts`) can merge: a plain 2×2
    /// stride-2 max pool without padding, as maxPool2x2 computes it, and no
    /// residual (its values would be needed at full size).
    static func accepts(_ conv: ConvKernel, pool: PoolKernel) -> Bool {
        accepts(conv) && !conv.epilogue.addsResidual && pool.isPlainMax2x2(over: conv.window.outH, conv.window.outW)
    }

    /// The same convolution (weights, bias and epilogue as `conv` holds them,
    /// after any BatchNormalization fold).
    init(_ conv: ConvKernel, pool: PoolKernel? = nil) {
        precondition(conv.groups == 1 && conv.outChannels % Self.blockWidth == 0 && conv.depthwise == nil,
                     "not a dense convolution of whole blocks of 64 filters")
        precondition(pool.map { Self.accepts(conv, pool: $0) } ?? true, "not a 2×2 max pool this kernel can merge")
        let w = conv.window
        outputShape = pool?.outputShape ?? conv.outputShape
        pooledH = pool?.window.outH ?? 0
        pooledW = pool?.window.outW ?? 0
        channels = conv.channels
        height = conv.height
        width = conv.width
        outChannels = conv.outChannels
        window = w
        paddedHeight = conv.height + w.padTop + w.padBottom
        paddedWidth = conv.width + w.padLeft + w.padRight
        bias = conv.bias
        epilogue = conv.epilogue
        let kh = w.kernelH, kw = w.kernelW, hp = paddedHeight, wp = paddedWidth
        let depth = channels * kh * kw, bw = Self.blockWidth
        var taps = [Int](repeating: 0, count: depth)
        for c in 0..<channels {
            for i in 0..<kh {
                for j in 0..<kw { taps[(c * kh + i) * kw + j] = c * hp * wp + i * w.dilationH * wp + j * w.dilationW }
            }
        }
        tapOffsets = taps
        var pixels: [Int] = []
        for r in 0..<w.outH {
            for c in 0..<w.outW { pixels.append(r * w.strideH * wp + c * w.strideW) }
        }
        pixelOffsets = pixels
        // Weights are [M][depth] (filter-major, taps in the same order as j).
        var packed = [Float](repeating: 0, count: outChannels * depth)
        let g = conv.weights.pointer
        for m in 0..<outChannels {
            let block = m / bw, lane = m % bw
            for j in 0..<depth { packed[(block * depth + j) * bw + lane] = g[m * depth + j] }
        }
        filters = WeightBuffer(packed)
    }

    /// Floats of one block's products: 64 per pixel, pixels rounded up to whole groups of 16.
    private var blockCount: Int { (outPixels + 15) / 16 * 16 * Self.blockWidth }
    /// The padded image, then one block's products pixel-major and
    /// filter-major, then (pooling) maxPool2x2's vertical maxima of one plane.
    var scratchCount: Int { paddedCount + 2 * blockCount + (pools ? outPixels : 0) }

    func run(_ io: KernelIO) {
        let x = io.inputs[0], y = io.output
        let residual: UnsafePointer<Float>? = epilogue.addsResidual ? UnsafePointer(io.inputs[1]) : nil
        let padded = io.scratch, products = io.scratch + paddedCount
        let columns = products + blockCount, pairs = columns + blockCount
        let p = outPixels, inImage = channels * height * width
        let plane = pools ? pooledH * pooledW : p, outImage = outChannels * plane
        let depth = self.depth, bw = Self.blockWidth, tile = Self.pixelsPerTile
        tapOffsets.withUnsafeBufferPointer { taps in
            pixelOffsets.withUnsafeBufferPointer { pixels in
                guard let taps = taps.baseAddress, let pixels = pixels.baseAddress else { return }
                for n in 0..<io.batch {
                    pad(x + n * inImage, into: padded)
                    for block in 0..<outChannels / bw {
                        let w = UnsafePointer(filters.pointer) + block * depth * bw
                        var first = 0
                        while first < p {
                            // A short last tile repeats its last pixel; only `count` are stored.
                            let count = min(tile, p - first)
                            @inline(__always) func corner(_ i: Int) -> Int { pixels[first + min(i, count - 1)] }
                            tile6x64(depth, w, UnsafePointer(padded), taps,
                                     (corner(0), corner(1), corner(2), corner(3), corner(4), corner(5)),
                                     products + first * bw, count)
                            first += count
                        }
                        let out = y + n * outImage + block * bw * plane
                        transpose(products, columns: columns, pairs: pairs, into: out, firstFilter: block * bw,
                                  residual: residual.map { $0 + n * outImage + block * bw * p })
                    }
                }
            }
        }
    }

    /// out[m][q] = epilogue(products[q][m] + bias) for the block's 64 filters
    /// and every pixel q. First the pixel-major products are transposed,
    /// 16 × 16 at a time through registers (`transpose16`), into `columns`
    /// (64 rows of the plane rounded up to 16 pixels; gathering each output
    /// vector lane by lane took as long as a sixth of the products), then each
    /// filter's row goes through OutputEpilogue as on ConvKernel's path. The
    /// last group of pixels reads rows past the plane's (the scratch holds
    /// whole groups of 16), whose lanes are never stored.
    @inline(never)
    private func transpose(_ products: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>, pairs: UnsafeMutablePointer<Float>,
                           into out: UnsafeMutablePointer<Float>, firstFilter: Int, residual: UnsafePointer<Float>?) {
        let p = outPixels, bw = Self.blockWidth, rowLength = (p + 15) / 16 * 16
        var q = 0
        while q < p {
            for m0 in stride(from: 0, to: bw, by: 16) {
                transpose16(products + q * bw + m0, stride: bw, into: columns + m0 * rowLength + q, rowLength)
            }
            q += 16
        }
        if pools {
            // The epilogue in place, then the pool step's function into the output.
            for m in 0..<bw {
                let row = columns + m * rowLength
                epilogue.apply(row, row, count: p, bias: bias?.pointer[firstFilter + m], residual: nil)
                maxPool2x2(row, out + m * pooledH * pooledW, pairs, outH: pooledH, outW: pooledW, width: window.outW)
            }
            return
        }
        for m in 0..<bw {
            epilogue.apply(columns + m * rowLength, out + m * p, count: p, bias: bias?.pointer[firstFilter + m],
                           residual: residual.map { $0 + m * p })
        }
    }

    /// Copies one image into the zero-padded layout (scratch is shared: nothing is assumed zero).
    private func pad(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let hp = paddedHeight, wp = paddedWidth, top = window.padTop, left = window.padLeft
        dst.update(repeating: 0, count: paddedCount)
        for c in 0..<channels {
            let src = x + c * height * width
            let plane = dst + c * hp * wp + top * wp + left
            for r in 0..<height { copyFloats(src + r * width, plane + r * wp, count: width) }
        }
    }
}

/// products[i][0..<64] = Σ_j x[corner_i + taps[j]] · w[j][0..<64] for the
/// first `count` of six pixels; 24 accumulators stay in registers, each
/// tap costs four filter vectors and six broadcasts for 24 fused multiply-adds.
@inline(__always)
private func tile6x64(_ depth: Int, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ taps: UnsafePointer<Int>,
                      _ corners: (Int, Int, Int, Int, Int, Int), _ products: UnsafeMutablePointer<Float>, _ count: Int) {
    var c00 = Vector(), c01 = Vector(), c02 = Vector(), c03 = Vector()
    var c10 = Vector(), c11 = Vector(), c12 = Vector(), c13 = Vector()
    var c20 = Vector(), c21 = Vector(), c22 = Vector(), c23 = Vector()
    var c30 = Vector(), c31 = Vector(), c32 = Vector(), c33 = Vector()
    var c40 = Vector(), c41 = Vector(), c42 = Vector(), c43 = Vector()
    var c50 = Vector(), c51 = Vector(), c52 = Vector(), c53 = Vector()
    let x0 = x + corners.0, x1 = x + corners.1, x2 = x + corners.2
    let x3 = x + corners.3, x4 = x + corners.4, x5 = x + corners.5
    var wp = w
    for j in 0..<depth {
        let t = taps[j]
        let w0 = loadVector(wp), w1 = loadVector(wp + 16), w2 = loadVector(wp + 32), w3 = loadVector(wp + 48)
        let a0 = Vector(repeating: x0[t]); c00.addProduct(a0, w0); c01.addProduct(a0, w1); c02.addProduct(a0, w2); c03.addProduct(a0, w3)
        let a1 = Vector(repeating: x1[t]); c10.addProduct(a1, w0); c11.addProduct(a1, w1); c12.addProduct(a1, w2); c13.addProduct(a1, w3)
        let a2 = Vector(repeating: x2[t]); c20.addProduct(a2, w0); c21.addProduct(a2, w1); c22.addProduct(a2, w2); c23.addProduct(a2, w3)
        let a3 = Vector(repeating: x3[t]); c30.addProduct(a3, w0); c31.addProduct(a3, w1); c32.addProduct(a3, w2); c33.addProduct(a3, w3)
        let a4 = Vector(repeating: x4[t]); c40.addProduct(a4, w0); c41.addProduct(a4, w1); c42.addProduct(a4, w2); c43.addProduct(a4, w3)
        let a5 = Vector(repeating: x5[t]); c50.addProduct(a5, w0); c51.addProduct(a5, w1); c52.addProduct(a5, w2); c53.addProduct(a5, w3)
        wp += 64
    }
    @inline(__always) func put(_ i: Int, _ v0: Vector, _ v1: Vector, _ v2: Vector, _ v3: Vector) {
        let o = products + i * 64
        storeVector(v0, o); storeVector(v1, o + 16); storeVector(v2, o + 32); storeVector(v3, o + 48)
    }
    put(0, c00, c01, c02, c03)
    if count > 1 { put(1, c10, c11, c12, c13) }
    if count > 2 { put(2, c20, c21, c22, c23) }
    if count > 3 { put(3, c30, c31, c32, c33) }
    if count > 4 { put(4, c40, c41, c42, c43) }
    if count > 5 { put(5, c50, c51, c52, c53) }
}

/// Sixteen vectors, one per row.
private struct Rows16 {
    var r0 = Vector(), r1 = Vector(), r2 = Vector(), r3 = Vector(), r4 = Vector(), r5 = Vector(), r6 = Vector(), r7 = Vector()
    var r8 = Vector(), r9 = Vector(), r10 = Vector(), r11 = Vector(), r12 = Vector(), r13 = Vector(), r14 = Vector(), r15 = Vector()
}

/// Swaps the off-diagonal s × s blocks of rows (a, b) = (r, r + s): a keeps
/// its lanes l with l & s = 0 and takes b's lanes l − s in the others; b
/// takes a's lanes l + s where l & s = 0 and keeps the others. Spelled out
/// lane by lane for each s so that the compiler makes each result one
/// two-source shuffle (a loop over the lanes compiled to lane inserts).
@inline(__always)
private func exchange(_ a: inout Vector, _ b: inout Vector, _ s: Int) {
    let (x, y): (Vector, Vector)
    switch s {
    case 8:
        x = Vector(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7])
        y = Vector(a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
    case 4:
        x = Vector(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], a[8], a[9], a[10], a[11], b[8], b[9], b[10], b[11])
        y = Vector(a[4], a[5], a[6], a[7], b[4], b[5], b[6], b[7], a[12], a[13], a[14], a[15], b[12], b[13], b[14], b[15])
    case 2:
        x = Vector(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5], a[8], a[9], b[8], b[9], a[12], a[13], b[12], b[13])
        y = Vector(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7], a[10], a[11], b[10], b[11], a[14], a[15], b[14], b[15])
    default:
        x = Vector(a[0], b[0], a[2], b[2], a[4], b[4], a[6], b[6], a[8], b[8], a[10], b[10], a[12], b[12], a[14], b[14])
        y = Vector(a[1], b[1], a[3], b[3], a[5], b[5], a[7], b[7], a[9], b[9], a[11], b[11], a[13], b[13], a[15], b[15])
    }
    a = x
    b = y
}

/// The 16 × 16 block at `p` (row i at p + i·stride) transposed into `d`
/// (row k, at d + k·ld, holds column k). Block swaps at distances 8, 4, 2, 1 (each swaps
/// the off-diagonal blocks of every 2s × 2s block, so that the four steps
/// together move (i, k) to (k, i)).
@inline(__always)
private func transpose16(_ p: UnsafePointer<Float>, stride: Int, into d: UnsafeMutablePointer<Float>, _ ld: Int) {
    var m = Rows16()
    m.r0 = loadVector(p); m.r1 = loadVector(p + stride); m.r2 = loadVector(p + 2 * stride); m.r3 = loadVector(p + 3 * stride)
    m.r4 = loadVector(p + 4 * stride); m.r5 = loadVector(p + 5 * stride); m.r6 = loadVector(p + 6 * stride); m.r7 = loadVector(p + 7 * stride)
    m.r8 = loadVector(p + 8 * stride); m.r9 = loadVector(p + 9 * stride); m.r10 = loadVector(p + 10 * stride); m.r11 = loadVector(p + 11 * stride)
    m.r12 = loadVector(p + 12 * stride); m.r13 = loadVector(p + 13 * stride); m.r14 = loadVector(p + 14 * stride); m.r15 = loadVector(p + 15 * stride)
    exchange(&m.r0, &m.r8, 8); exchange(&m.r1, &m.r9, 8); exchange(&m.r2, &m.r10, 8); exchange(&m.r3, &m.r11, 8)
    exchange(&m.r4, &m.r12, 8); exchange(&m.r5, &m.r13, 8); exchange(&m.r6, &m.r14, 8); exchange(&m.r7, &m.r15, 8)
    exchange(&m.r0, &m.r4, 4); exchange(&m.r1, &m.r5, 4); exchange(&m.r2, &m.r6, 4); exchange(&m.r3, &m.r7, 4)
    exchange(&m.r8, &m.r12, 4); exchange(&m.r9, &m.r13, 4); exchange(&m.r10, &m.r14, 4); exchange(&m.r11, &m.r15, 4)
    exchange(&m.r0, &m.r2, 2); exchange(&m.r1, &m.r3, 2); exchange(&m.r4, &m.r6, 2); exchange(&m.r5, &m.r7, 2)
    exchange(&m.r8, &m.r10, 2); exchange(&m.r9, &m.r11, 2); exchange(&m.r12, &m.r14, 2); exchange(&m.r13, &m.r15, 2)
    exchange(&m.r0, &m.r1, 1); exchange(&m.r2, &m.r3, 1); exchange(&m.r4, &m.r5, 1); exchange(&m.r6, &m.r7, 1)
    exchange(&m.r8, &m.r9, 1); exchange(&m.r10, &m.r11, 1); exchange(&m.r12, &m.r13, 1); exchange(&m.r14, &m.r15, 1)
    storeVector(m.r0, d); storeVector(m.r1, d + ld); storeVector(m.r2, d + 2 * ld); storeVector(m.r3, d + 3 * ld)
    storeVector(m.r4, d + 4 * ld); storeVector(m.r5, d + 5 * ld); storeVector(m.r6, d + 6 * ld); storeVector(m.r7, d + 7 * ld)
    storeVector(m.r8, d + 8 * ld); storeVector(m.r9, d + 9 * ld); storeVector(m.r10, d + 10 * ld); storeVector(m.r11, d + 11 * ld)
    storeVector(m.r12, d + 12 * ld); storeVector(m.r13, d + 13 * ld); storeVector(m.r14, d + 14 * ld); storeVector(m.r15, d + 15 * ld)
}
