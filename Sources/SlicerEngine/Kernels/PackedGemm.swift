// Single-precision matrix products for convolution: a register-blocked
// micro-kernel written with SIMD16 vectors (one AVX-512 register each when the
// build targets such a CPU, two AVX2 or four SSE registers otherwise).
//
// Why not only `cblas_sgemm`: a convolution through BLAS first writes the
// im2col matrix, then BLAS copies ("packs") it again before multiplying, and
// every call pays BLAS's own set-up — for the small products of a CNN on
// 28×28 or 32×32 images that overhead is as large as the arithmetic. Here the
// filters are packed once when the model loads, and the other operand is read
// where it lies: row j of B is `b + offsets[j]`, which covers an im2col matrix
// (offsets j·stride) and, for stride-1 convolutions, the zero-padded input
// itself (offsets of channel, kernel row and kernel column) — the
// "implicit GEMM" form of a convolution, with no column matrix at all.
//
// Every output value is one sum over j in the same order whatever the batch
// size, so an image's result does not depend on the images beside it.

import CPrefetch

private typealias Vector = SIMD16<Float>

// Vector loads and stores: `loadVector` / `storeVector` (Vectorized.swift).

/// An accumulator's first value: zero, or the partial sum an earlier depth block left in C.
@inline(__always)
private func start(_ p: UnsafeMutablePointer<Float>, _ accumulate: Bool) -> Vector {
    accumulate ? loadVector(p) : Vector()
}
/// Requests the tile's C lines (8 rows of `vectors` vectors) for writing as
/// the tile starts, so that the misses overlap its multiply-adds instead of
/// stalling the stores that end it. Products that write a whole large
/// output straight into place (a 256-filter 56×56 1×1: 3.2 MB per image,
/// ResNet-50's first-stage expansions and downsample; its 7×7 stem) miss on
/// every line of C; without the hint each of a tile's 24 stores waited for
/// its line; so did Winograd's products on ImageNet planes, whose 16 M_ξ
/// and V_ξ (over 1 MiB per block) evict each other (BENCHMARKS.md, branch
/// `r50`). Once per tile, before the first depth block only (later blocks
/// load C anyway). The caller says when (`writeHints`).
/// Products shallower than this skip the hint: their tiles are a few
/// hundred multiply-adds, against which the 24 hints weigh.
private let prefetchDepth = 64
/// Outputs of at least this many floats per image (1 MiB, an L2) that a
/// convolution's product writes in place get the hints (`writeHints`);
/// smaller ones stay in cache, where the hints only cost issue slots (one
/// round measured the CIFAR VGG 17 % slower with hints on every product;
/// not reproduced on this noisy machine, but nothing there gains from them).
let writeHintFloats = 1 << 18

@inline(__always)
private func prefetchForWrite(_ c: UnsafeMutablePointer<Float>, _ ldc: Int, vectors: Int) {
    for r in 0..<8 {
        for v in 0..<vectors { cnns_prefetch_for_write(c + r * ldc + 16 * v) }
    }
}

@inline(__always)
private func store(_ p: UnsafeMutablePointer<Float>, _ v0: Vector) { storeVector(v0, p) }

@inline(__always)
private func store(_ p: UnsafeMutablePointer<Float>, _ v0: Vector, _ v1: Vector) {
    store(p, v0); store(p + 16, v1)
}

@inline(__always)
private func store(_ p: UnsafeMutablePointer<Float>, _ v0: Vector, _ v1: Vector, _ v2: Vector) {
    store(p, v0); store(p + 16, v1); store(p + 32, v2)
}

/// A weight matrix (rows × depth) rearranged for the micro-kernel: panels of
/// 8 rows, each stored depth-major (`[panel][j][8]`), rows past the end zero.
struct PackedRows: @unchecked Sendable {
    // Immutable after init; the buffer is shared read-only by every worker.
    static let panelHeight = 8
    let rows: Int
    let depth: Int
    let panels: Int
    let storage: WeightBuffer

    /// Packs `rows` rows of `depth` values, row r starting at `source + r * rowStride`.
    init(_ source: UnsafePointer<Float>, rows: Int, depth: Int, rowStride: Int) {
        self.rows = rows
        self.depth = depth
        panels = Self.panelCount(rows: rows)
        var packed = [Float](repeating: 0, count: max(1, panels * Self.panelHeight * depth))
        packed.withUnsafeMutableBufferPointer { p in
            Self.pack(source, rows: rows, depth: depth, rowStride: rowStride, into: p.baseAddress!)
        }
        storage = WeightBuffer(packed)
    }

    static func panelCount(rows: Int) -> Int { (rows + panelHeight - 1) / panelHeight }

    /// Writes `rows` rows in the packed layout at `packed` (panelCount · 8 · depth
    /// floats), the rows of the last panel past `rows` as zeros.
    static func pack(_ source: UnsafePointer<Float>, rows: Int, depth: Int, rowStride: Int,
                     into packed: UnsafeMutablePointer<Float>) {
        for panel in 0..<panelCount(rows: rows) {
            let base = packed + panel * depth * panelHeight
            for lane in 0..<panelHeight {
                let r = panel * panelHeight + lane
                if r < rows {
                    let row = source + r * rowStride
                    for j in 0..<depth { base[j * panelHeight + lane] = row[j] }
                } else {
                    for j in 0..<depth { base[j * panelHeight + lane] = 0 }
                }
            }
        }
    }

    /// Rows of the output a product writes (whole panels).
    var paddedRows: Int { panels * Self.panelHeight }

    /// c[r][q] = Σ_j A[r][j] · b[offsets[j] + q] for every r < paddedRows and
    /// q < width, where width is a multiple of 16; row r of c starts at c + r·ldc.
    /// Reads b[offsets[j] ..< offsets[j] + width] for every j: the caller keeps that in bounds.
    ///
    /// `writeHints`: request C's lines for writing as each tile starts
    /// (`prefetchForWrite`), for callers whose C is not in cache.
    func multiply(_ b: UnsafePointer<Float>, offsets: UnsafePointer<Int>, width: Int,
                  into c: UnsafeMutablePointer<Float>, ldc: Int, writeHints: Bool = false) {
        Self.multiply(UnsafePointer(storage.pointer), panels: panels, depth: depth,
                      b, offsets: offsets, width: width, into: c, ldc: ldc, writeHints: writeHints)
    }

    /// Depth per pass over a block of columns: a 48-column block of B then
    /// holds 256 × 48 floats (48 KiB, L1/L2-resident) while every panel of
    /// rows passes over it. Without the blocking, a 3×3 convolution over 512
    /// channels (depth 4,608) read an 884 KiB block of B from L3 once per
    /// panel: ~100 GFLOPS instead of ~200 on ResNet-50's 7×7 stage.
    static let depthBlock = 256
    /// Columns per chunk: the chunk's products are finished over the whole
    /// depth before the next chunk starts, so the partial sums of C stay in cache.
    static let columnChunk = 384

    /// As the method, for rows packed elsewhere (`pack(_:rows:depth:rowStride:into:)`).
    ///
    /// Depth blocks continue the same sums: the accumulators of block k start
    /// from C as block k − 1 left it, so each value is still one chain of fused
    /// multiply-adds over j = 0, 1, … in order — bit for bit the unblocked sum.
    ///
    /// Never inlined: one copy of the micro-kernel for every caller. Inlined
    /// into each call site, the copies were scheduled differently and a change
    /// elsewhere in ConvKernel.run made ResNet-18 ~10 % slower, one thread,
    /// processor time (BENCHMARKS.md, "Product kernel"); a call per product costs nothing.
    @inline(never)
    static func multiply(_ a: UnsafePointer<Float>, panels: Int, depth: Int,
                         _ b: UnsafePointer<Float>, offsets: UnsafePointer<Int>, width: Int,
                         into c: UnsafeMutablePointer<Float>, ldc: Int, writeHints: Bool = false) {
        let prefetch = writeHints && depth >= prefetchDepth
        tiles(a, panelStep: depth * panelHeight, rowStep: 1, depthStep: panelHeight, panels: panels, depth: depth,
              b, offsets: offsets, width: width, into: c, ldc: ldc, prefetch: prefetch)
    }

    /// The blocked loops both products share: A's element (row r of panel p,
    /// depth j) at a + p · panelStep + r · rowStep + j · depthStep — packed
    /// (8 rows interleaved: rowStep 1, depthStep 8) or rows where they lie
    /// (rowStep lda, depthStep 1). Inlined into each, so that the packed
    /// product's strides are constants there, as before.
    @inline(__always)
    private static func tiles(_ a: UnsafePointer<Float>, panelStep: Int, rowStep: Int, depthStep: Int, panels: Int, depth: Int,
                              _ b: UnsafePointer<Float>, offsets: UnsafePointer<Int>, width: Int,
                              into c: UnsafeMutablePointer<Float>, ldc: Int, prefetch: Bool) {
        precondition(width % 16 == 0, "product width \(width) is not a multiple of 16")
        var chunk = 0
        while chunk < width {
            let chunkEnd = min(width, chunk + columnChunk)
            var k0 = 0
            repeat {
                let kc = min(depthBlock, depth - k0)
                let accumulate = k0 > 0
                var q = chunk
                // Column blocks outside, panels inside: the block of b (kc × 48
                // values) stays in cache while every panel of rows passes over it.
                while q < chunkEnd {
                    let left = chunkEnd - q
                    for p in 0..<panels {
                        let ap = a + p * panelStep + k0 * depthStep, cp = c + p * panelHeight * ldc + q
                        if left >= 48 {
                            tile8x48(kc, ap, b + q, offsets + k0, cp, ldc, accumulate, prefetch, rowStep, depthStep)
                        } else if left >= 32 {
                            tile8x32(kc, ap, b + q, offsets + k0, cp, ldc, accumulate, prefetch, rowStep, depthStep)
                        } else {
                            tile8x16(kc, ap, b + q, offsets + k0, cp, ldc, accumulate, prefetch, rowStep, depthStep)
                        }
                    }
                    q += left >= 48 ? 48 : (left >= 32 ? 32 : 16)
                }
                k0 += kc
            } while k0 < depth
            chunk = chunkEnd
        }
    }
}

extension PackedRows {
    /// As `multiply`, for A's rows where they lie (row r at `a + r · lda`,
    /// `panels` · 8 of them, every one readable) instead of packed: a
    /// matrix product by constant columns (ConstantColumns) had to pack its
    /// data rows on every call, 64 × 3,136 floats per batch for MNIST's
    /// first Gemm, only to read each once per 48-column block. Each value is
    /// still one chain of fused multiply-adds over j = 0, 1, … in order (the
    /// depth blocks continue it from C): bit for bit `multiply`'s.
    @inline(never)
    static func multiplyRows(_ a: UnsafePointer<Float>, lda: Int, panels: Int, depth: Int,
                             _ b: UnsafePointer<Float>, offsets: UnsafePointer<Int>, width: Int,
                             into c: UnsafeMutablePointer<Float>, ldc: Int) {
        tiles(a, panelStep: panelHeight * lda, rowStep: lda, depthStep: 1, panels: panels, depth: depth,
              b, offsets: offsets, width: width, into: c, ldc: ldc, prefetch: false)
    }
}

/// c[0..<8][0..<48] = Σ_j a[j][0..<8] ⊗ b_j[0..<48], b_j = b + offsets[j]
/// (a[j][r] at a + r·rs + j·js: rs 1, js 8 packed, rs the row stride, js 1 unpacked). 24 accumulators stay in registers.
@inline(__always)
private func tile8x48(_ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool,
                       _ prefetch: Bool, _ rs: Int, _ js: Int) {
    if prefetch && !accumulate { prefetchForWrite(c, ldc, vectors: 3) }
    var c00 = start(c + 0 * ldc + 0, accumulate), c01 = start(c + 0 * ldc + 16, accumulate), c02 = start(c + 0 * ldc + 32, accumulate)
    var c10 = start(c + 1 * ldc + 0, accumulate), c11 = start(c + 1 * ldc + 16, accumulate), c12 = start(c + 1 * ldc + 32, accumulate)
    var c20 = start(c + 2 * ldc + 0, accumulate), c21 = start(c + 2 * ldc + 16, accumulate), c22 = start(c + 2 * ldc + 32, accumulate)
    var c30 = start(c + 3 * ldc + 0, accumulate), c31 = start(c + 3 * ldc + 16, accumulate), c32 = start(c + 3 * ldc + 32, accumulate)
    var c40 = start(c + 4 * ldc + 0, accumulate), c41 = start(c + 4 * ldc + 16, accumulate), c42 = start(c + 4 * ldc + 32, accumulate)
    var c50 = start(c + 5 * ldc + 0, accumulate), c51 = start(c + 5 * ldc + 16, accumulate), c52 = start(c + 5 * ldc + 32, accumulate)
    var c60 = start(c + 6 * ldc + 0, accumulate), c61 = start(c + 6 * ldc + 16, accumulate), c62 = start(c + 6 * ldc + 32, accumulate)
    var c70 = start(c + 7 * ldc + 0, accumulate), c71 = start(c + 7 * ldc + 16, accumulate), c72 = start(c + 7 * ldc + 32, accumulate)
    var ap = a
    for j in 0..<depth {
        let bp = b + offsets[j]
        let b0 = loadVector(bp + 0), b1 = loadVector(bp + 16), b2 = loadVector(bp + 32)
        let a0 = Vector(repeating: ap[0 * rs]); c00.addProduct(a0, b0); c01.addProduct(a0, b1); c02.addProduct(a0, b2)
        let a1 = Vector(repeating: ap[1 * rs]); c10.addProduct(a1, b0); c11.addProduct(a1, b1); c12.addProduct(a1, b2)
        let a2 = Vector(repeating: ap[2 * rs]); c20.addProduct(a2, b0); c21.addProduct(a2, b1); c22.addProduct(a2, b2)
        let a3 = Vector(repeating: ap[3 * rs]); c30.addProduct(a3, b0); c31.addProduct(a3, b1); c32.addProduct(a3, b2)
        let a4 = Vector(repeating: ap[4 * rs]); c40.addProduct(a4, b0); c41.addProduct(a4, b1); c42.addProduct(a4, b2)
        let a5 = Vector(repeating: ap[5 * rs]); c50.addProduct(a5, b0); c51.addProduct(a5, b1); c52.addProduct(a5, b2)
        let a6 = Vector(repeating: ap[6 * rs]); c60.addProduct(a6, b0); c61.addProduct(a6, b1); c62.addProduct(a6, b2)
        let a7 = Vector(repeating: ap[7 * rs]); c70.addProduct(a7, b0); c71.addProduct(a7, b1); c72.addProduct(a7, b2)
        ap += js
    }
    store(c + 0 * ldc, c00, c01, c02)
    store(c + 1 * ldc, c10, c11, c12)
    store(c + 2 * ldc, c20, c21, c22)
    store(c + 3 * ldc, c30, c31, c32)
    store(c + 4 * ldc, c40, c41, c42)
    store(c + 5 * ldc, c50, c51, c52)
    store(c + 6 * ldc, c60, c61, c62)
    store(c + 7 * ldc, c70, c71, c72)
}

/// c[0..<8][0..<32] = Σ_j a[j][0..<8] ⊗ b_j[0..<32], b_j = b + offsets[j]. 16 accumulators stay in registers.
@inline(__always)
private func tile8x32(_ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool,
                       _ prefetch: Bool, _ rs: Int, _ js: Int) {
    if prefetch && !accumulate { prefetchForWrite(c, ldc, vectors: 2) }
    var c00 = start(c + 0 * ldc + 0, accumulate), c01 = start(c + 0 * ldc + 16, accumulate)
    var c10 = start(c + 1 * ldc + 0, accumulate), c11 = start(c + 1 * ldc + 16, accumulate)
    var c20 = start(c + 2 * ldc + 0, accumulate), c21 = start(c + 2 * ldc + 16, accumulate)
    var c30 = start(c + 3 * ldc + 0, accumulate), c31 = start(c + 3 * ldc + 16, accumulate)
    var c40 = start(c + 4 * ldc + 0, accumulate), c41 = start(c + 4 * ldc + 16, accumulate)
    var c50 = start(c + 5 * ldc + 0, accumulate), c51 = start(c + 5 * ldc + 16, accumulate)
    var c60 = start(c + 6 * ldc + 0, accumulate), c61 = start(c + 6 * ldc + 16, accumulate)
    var c70 = start(c + 7 * ldc + 0, accumulate), c71 = start(c + 7 * ldc + 16, accumulate)
    var ap = a
    for j in 0..<depth {
        let bp = b + offsets[j]
        let b0 = loadVector(bp + 0), b1 = loadVector(bp + 16)
        let a0 = Vector(repeating: ap[0 * rs]); c00.addProduct(a0, b0); c01.addProduct(a0, b1)
        let a1 = Vector(repeating: ap[1 * rs]); c10.addProduct(a1, b0); c11.addProduct(a1, b1)
        let a2 = Vector(repeating: ap[2 * rs]); c20.addProduct(a2, b0); c21.addProduct(a2, b1)
        let a3 = Vector(repeating: ap[3 * rs]); c30.addProduct(a3, b0); c31.addProduct(a3, b1)
        let a4 = Vector(repeating: ap[4 * rs]); c40.addProduct(a4, b0); c41.addProduct(a4, b1)
        let a5 = Vector(repeating: ap[5 * rs]); c50.addProduct(a5, b0); c51.addProduct(a5, b1)
        let a6 = Vector(repeating: ap[6 * rs]); c60.addProduct(a6, b0); c61.addProduct(a6, b1)
        let a7 = Vector(repeating: ap[7 * rs]); c70.addProduct(a7, b0); c71.addProduct(a7, b1)
        ap += js
    }
    store(c + 0 * ldc, c00, c01)
    store(c + 1 * ldc, c10, c11)
    store(c + 2 * ldc, c20, c21)
    store(c + 3 * ldc, c30, c31)
    store(c + 4 * ldc, c40, c41)
    store(c + 5 * ldc, c50, c51)
    store(c + 6 * ldc, c60, c61)
    store(c + 7 * ldc, c70, c71)
}

/// c[0..<8][0..<16] = Σ_j a[j][0..<8] ⊗ b_j[0..<16], b_j = b + offsets[j]. 8 accumulators stay in registers.
@inline(__always)
private func tile8x16(_ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool,
                       _ prefetch: Bool, _ rs: Int, _ js: Int) {
    if prefetch && !accumulate { prefetchForWrite(c, ldc, vectors: 1) }
    var c00 = start(c + 0 * ldc + 0, accumulate)
    var c10 = start(c + 1 * ldc + 0, accumulate)
    var c20 = start(c + 2 * ldc + 0, accumulate)
    var c30 = start(c + 3 * ldc + 0, accumulate)
    var c40 = start(c + 4 * ldc + 0, accumulate)
    var c50 = start(c + 5 * ldc + 0, accumulate)
    var c60 = start(c + 6 * ldc + 0, accumulate)
    var c70 = start(c + 7 * ldc + 0, accumulate)
    var ap = a
    for j in 0..<depth {
        let bp = b + offsets[j]
        let b0 = loadVector(bp + 0)
        let a0 = Vector(repeating: ap[0 * rs]); c00.addProduct(a0, b0)
        let a1 = Vector(repeating: ap[1 * rs]); c10.addProduct(a1, b0)
        let a2 = Vector(repeating: ap[2 * rs]); c20.addProduct(a2, b0)
        let a3 = Vector(repeating: ap[3 * rs]); c30.addProduct(a3, b0)
        let a4 = Vector(repeating: ap[4 * rs]); c40.addProduct(a4, b0)
        let a5 = Vector(repeating: ap[5 * rs]); c50.addProduct(a5, b0)
        let a6 = Vector(repeating: ap[6 * rs]); c60.addProduct(a6, b0)
        let a7 = Vector(repeating: ap[7 * rs]); c70.addProduct(a7, b0)
        ap += js
    }
    store(c + 0 * ldc, c00)
    store(c + 1 * ldc, c10)
    store(c + 2 * ldc, c20)
    store(c + 3 * ldc, c30)
    store(c + 4 * ldc, c40)
    store(c + 5 * ldc, c50)
    store(c + 6 * ldc, c60)
    store(c + 7 * ldc, c70)
}
