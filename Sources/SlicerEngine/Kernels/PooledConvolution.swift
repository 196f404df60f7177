// A shallow first convolution (3×3, stride 1, a few input channels) with its
// activation and the 2×2 max pool after it, for the inference plan
// (Fusion.swift).
//
// Why: MNIST's first layer (1 → 32 filters on 28×28) has only nine taps per
// output. Through the packed product (PackedGemm.swift) each tile of 8 × 48
// outputs is stored after nine multiply-adds, the epilogue then reads and
// writes the 28×28×32 output again, and the pool reads it a third time to
// keep a quarter of it: the layer and its pool took 2.6× ONNX Runtime's time
// (one thread, Zen 4), with the arithmetic a small part of it.
//
// Here the pooled output is computed directly. Pixels lie along the vector
// lanes, split by column parity: lane k of the "even" vector is conv column
// 2k, of the "odd" one column 2k + 1, so the pool's horizontal max is a max
// of two vectors, lane by lane, and its vertical max one of two conv rows.
// With the image padded and split into column phases once per image
// (V_d[k] = padded column 2k + d, d = 0…3), output column 2k + p, tap
// column j reads V_{p+j}: every tap is a plain vector, no shuffles in the
// loop. Each pooled row costs four accumulators (two conv rows × two
// parities) of nine fused multiply-adds per channel; the 28×28 conv output
// is never stored.
//
// Values: each conv output is the chain of fused multiply-adds of the packed
// product — from zero, over j = (channel, kernel row, kernel column) in order,
// zero padding included — then + bias, clamp, as OutputEpilogue does; the pool
// takes its maxima in maxPool2x2's order (vertical pair first, then the
// neighbouring columns, with the same selects). Bit for bit the values of the
// unfused steps (PooledConvTests). Each image is computed on its own.

private typealias Vector = SIMD16<Float>

struct PooledConvKernel: Kernel {
    /// The pool's output: [N, M, pooledH, pooledW].
    let outputShape: [Int]
    let channels: Int, height: Int, width: Int, outChannels: Int
    let padTop: Int, padLeft: Int
    let pooledH: Int, pooledW: Int
    /// Groups of 16 pooled columns per row.
    let chunks: Int
    /// [M][C][3][3] as the convolution holds them (after any BatchNormalization fold).
    let weights: WeightBuffer
    let bias: WeightBuffer?
    let epilogue: OutputEpilogue

    /// Input channels up to which a convolution counts as shallow: the loop
    /// reloads the 16 phase vectors of every channel for each filter, which
    /// only pays while the taps per output are few.
    static let maximumChannels = 4

    /// Padded rows the pooled rows read: two conv rows per pooled row, plus the kernel's two.
    private var paddedRows: Int { 2 * pooledH + 2 }
    /// Floats of the phase split of one image: channels × padded rows × chunks × 4 vectors.
    private var phaseCount: Int { channels * paddedRows * chunks * 4 * 16 }
    /// One padded input row: 32 columns per chunk, the 3 more that the last
    /// chunk's shifted phases read, rounded up to a whole vector.
    private var rowCount: Int { 32 * chunks + 16 }
    /// Then one pooled row's sums (64 floats per filter) and a vector for a short row's store.
    var scratchCount: Int { phaseCount + rowCount + outChannels * 64 + 16 }

    /// Whether the inference plan may run `conv` followed by `pool` here:
    /// a dense 3×3 stride-1 convolution over at most `maximumChannels`
    /// channels without a residual, and a plain 2×2 stride-2 max pool
    /// (no padding, no dilation) inside its output.
    static func accepts(_ conv: ConvKernel, pool: PoolKernel) -> Bool {
        let w = conv.window
        return conv.depthwise == nil && conv.groups == 1 && !conv.epilogue.addsResidual
            && conv.channels <= maximumChannels
            && w.kernelH == 3 && w.kernelW == 3 && w.strideH == 1 && w.strideW == 1
            && w.dilationH == 1 && w.dilationW == 1
            && pool.isPlainMax2x2(over: w.outH, w.outW)
            && pool.outputShape[1] == conv.outChannels
    }

    init(_ conv: ConvKernel, pool: PoolKernel) {
        precondition(Self.accepts(conv, pool: pool), "not a shallow 3×3 convolution followed by a 2×2 max pool")
        outputShape = pool.outputShape
        channels = conv.channels
        height = conv.height
        width = conv.width
        outChannels = conv.outChannels
        padTop = conv.window.padTop
        padLeft = conv.window.padLeft
        pooledH = pool.window.outH
        pooledW = pool.window.outW
        chunks = (pooledW + 15) / 16
        weights = conv.weights
        bias = conv.bias
        epilogue = conv.epilogue
    }

    func run(_ io: KernelIO) {
        let phases = io.scratch, row = io.scratch + phaseCount
        let sums = row + rowCount, tail = sums + outChannels * 64
        let inImage = channels * height * width, outImage = outChannels * pooledH * pooledW
        let rowStride = chunks * 64
        let w = UnsafePointer(weights.pointer)
        for n in 0..<io.batch {
            split(io.inputs[0] + n * inImage, into: phases, row: row)
            let out = io.output + n * outImage
            for r in 0..<pooledH {
                for k in 0..<chunks {
                    let count = min(16, pooledW - 16 * k)
                    for m in 0..<outChannels {
                        var topEven = Vector(), topOdd = Vector(), bottomEven = Vector(), bottomOdd = Vector()
                        for c in 0..<channels {
                            // Padded rows 2r … 2r + 3 of channel c, each as its four phases.
                            let p = UnsafePointer(phases) + ((c * paddedRows + 2 * r) * chunks + k) * 64
                            let r0 = Phases(p), r1 = Phases(p + rowStride), r2 = Phases(p + 2 * rowStride), r3 = Phases(p + 3 * rowStride)
                            let f = w + (m * channels + c) * 9
                            // Kernel row i: conv row 2r reads padded row 2r + i, conv row 2r + 1 the next.
                            kernelRow(r0, r1, f, &topEven, &topOdd, &bottomEven, &bottomOdd)
                            kernelRow(r1, r2, f + 3, &topEven, &topOdd, &bottomEven, &bottomOdd)
                            kernelRow(r2, r3, f + 6, &topEven, &topOdd, &bottomEven, &bottomOdd)
                        }
                        // The four sums go to scratch; `finish` takes the epilogue and the pool
                        // for the whole row of filters (see there for why not here).
                        let sum = sums + m * 64
                        storeVector(topEven, sum); storeVector(topOdd, sum + 16)
                        storeVector(bottomEven, sum + 32); storeVector(bottomOdd, sum + 48)
                    }
                    finish(sums, into: out + r * pooledW + 16 * k, count: count,
                           spills: count < 16 && (pooledH - 1 - r) * pooledW < 16 - count, tail: tail)
                }
            }
        }
    }

    /// For each filter m: bias, clamp and the 2×2 max of its four sums
    /// (`sums + 64m`: top even, top odd, bottom even, bottom odd), stored at
    /// `out + m · pooledH · pooledW` (`count` lanes; `spills` when a whole
    /// vector there would pass the plane's end). maxPool2x2's selects
    /// in its order: the vertical pair, then left and right.
    ///
    /// Its own function over plain loads and stores: written in the loop
    /// over the taps, the compiler kept OutputEpilogue's clamp out of line
    /// (each vector passed as four 128-bit pieces) and built the selects
    /// from 128-bit pieces, which cost as much as the sums.
    @inline(never)
    private func finish(_ sums: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int,
                        spills: Bool, tail: UnsafeMutablePointer<Float>) {
        let plane = pooledH * pooledW
        let hasBias = bias != nil, clamps = epilogue.clamps
        let low = Vector(repeating: epilogue.low), high = Vector(repeating: epilogue.high)
        for m in 0..<outChannels {
            let b = Vector(repeating: bias?.pointer[m] ?? 0)
            var te = loadVector(sums + m * 64), to = loadVector(sums + m * 64 + 16)
            var be = loadVector(sums + m * 64 + 32), bo = loadVector(sums + m * 64 + 48)
            if hasBias { te += b; to += b; be += b; bo += b }
            if clamps {
                te = te.replacing(with: low, where: te .< low).replacing(with: high, where: te .> high)
                to = to.replacing(with: low, where: to .< low).replacing(with: high, where: to .> high)
                be = be.replacing(with: low, where: be .< low).replacing(with: high, where: be .> high)
                bo = bo.replacing(with: low, where: bo .< low).replacing(with: high, where: bo .> high)
            }
            let left = poolMax(te, be), right = poolMax(to, bo)
            let pooled = poolMax(left, right)
            let dst = out + m * plane
            if !spills {
                storeVector(pooled, dst)
            } else {
                // A whole vector would run past the plane's end into the next
                // plane, written already. (Short of that, it runs into the
                // plane's later rows, written after this one.)
                storeVector(pooled, tail)
                copyFloats(tail, dst, count: count)
            }
        }
    }

    /// Writes each channel's padded rows 0 ..< paddedRows as column phases:
    /// for chunk k, phase d (0…3) holds padded columns 32k + d, 32k + d + 2, …
    /// (16 of them), padded column j being input column j − padLeft, zero
    /// outside the image. Scratch is shared: every value is written.
    private func split(_ x: UnsafePointer<Float>, into phases: UnsafeMutablePointer<Float>, row: UnsafeMutablePointer<Float>) {
        let used = 32 * chunks + 3
        for c in 0..<channels {
            for i in 0..<paddedRows {
                let source = i - padTop
                zeroFloats(row, count: rowCount)
                if source >= 0 && source < height {
                    // Input columns that land inside the padded row's used part.
                    let first = max(0, -padLeft), last = min(width, used - padLeft)
                    if last > first { copyFloats(x + (c * height + source) * width + first, row + first + padLeft, count: last - first) }
                }
                let dst = phases + (c * paddedRows + i) * chunks * 64
                for k in 0..<chunks {
                    for d in 0..<4 {
                        let at = row + 32 * k + d
                        storeVector(evenLanes(loadVector(at), loadVector(at + 16)), dst + (k * 4 + d) * 16)
                    }
                }
            }
        }
    }
}

/// The four column phases of one padded row (see PooledConvKernel.split).
private struct Phases {
    let v0: Vector, v1: Vector, v2: Vector, v3: Vector
    @inline(__always)
    init(_ p: UnsafePointer<Float>) {
        v0 = loadVector(p); v1 = loadVector(p + 16); v2 = loadVector(p + 32); v3 = loadVector(p + 48)
    }
}

/// One kernel row's three taps w[0…2] for both conv rows (`top` reads padded
/// row `a`, `bottom` row `b`) and both column parities: tap j of an even
/// column reads phase j, of an odd column phase j + 1. In tap order, so that
/// each accumulator's chain is the packed product's.
@inline(__always)
private func kernelRow(_ a: Phases, _ b: Phases, _ w: UnsafePointer<Float>,
                       _ topEven: inout Vector, _ topOdd: inout Vector, _ bottomEven: inout Vector, _ bottomOdd: inout Vector) {
    let w0 = Vector(repeating: w[0]), w1 = Vector(repeating: w[1]), w2 = Vector(repeating: w[2])
    topEven.addProduct(a.v0, w0); topOdd.addProduct(a.v1, w0); bottomEven.addProduct(b.v0, w0); bottomOdd.addProduct(b.v1, w0)
    topEven.addProduct(a.v1, w1); topOdd.addProduct(a.v2, w1); bottomEven.addProduct(b.v1, w1); bottomOdd.addProduct(b.v2, w1)
    topEven.addProduct(a.v2, w2); topOdd.addProduct(a.v3, w2); bottomEven.addProduct(b.v2, w2); bottomOdd.addProduct(b.v3, w2)
}
