import COpenBLAS

/// Gemm: Y = alpha·A'·B' + beta·C with A the data (batch first) and B, C constants.
///
/// Computed with the packed micro-kernel (PackedGemm.swift): the images' rows
/// are packed per run, B is stored once as [k][outputs] padded to whole
/// vectors. Each image's row is the same sum in the same order whatever the
/// batch, unlike BLAS, whose rounding could change with the number of rows.
struct GemmKernel: Kernel {
    var wantsWholeBatch: Bool { true }
    let outputShape: [Int]
    let inFeatures: Int, outFeatures: Int
    let transB: Bool
    let alpha: Float
    /// beta·C already broadcast to one output row, or nil (also when C varies over rows).
    let rowBias: [Float]?
    /// beta·C broadcast to the full output when C varies over the batch rows.
    let fullBias: [Float]?
    /// B as stored in the model (read by CAR's shortcut, TapAblation.swift).
    let weights: WeightBuffer
    /// B as [inFeatures][productWidth], columns past outFeatures zero.
    let columns: WeightBuffer
    /// outFeatures rounded up to whole vectors.
    let productWidth: Int
    /// Row j of `columns` starts at offsets[j] = j · productWidth.
    let rowOffsets: [Int]

    private var capacityPanels: Int { PackedRows.panelCount(rows: outputShape[0]) }
    var scratchCount: Int { capacityPanels * PackedRows.panelHeight * (inFeatures + productWidth) }

    func run(_ io: KernelIO) {
        let m = io.batch, n = outFeatures, k = inFeatures, width = productWidth
        let packed = io.scratch
        let staging = io.scratch + capacityPanels * PackedRows.panelHeight * k
        PackedRows.pack(io.inputs[0], rows: m, depth: k, rowStride: k, into: packed)
        rowOffsets.withUnsafeBufferPointer { offsets in
            PackedRows.multiply(packed, panels: PackedRows.panelCount(rows: m), depth: k,
                                columns.pointer, offsets: offsets.baseAddress!, width: width, into: staging, ldc: width)
        }
        let y = io.output, a = alpha
        for r in 0..<m {
            let src = staging + r * width, dst = y + r * n
            if let rowBias {
                for o in 0..<n { dst[o] = a * src[o] + rowBias[o] }
            } else if let fullBias {
                for o in 0..<n { dst[o] = a * src[o] + fullBias[r * n + o] }
            } else {
                for o in 0..<n { dst[o] = a * src[o] }
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let a = try c.runtimeShape(0)
        guard a.count == 2 else { throw c.failure("A must be rank 2, got \(a)") }
        if try c.int("transA", default: 0) != 0 {
            throw c.unsupported("transA=1 on data whose first axis is the batch")
        }
        let transB = try c.int("transB", default: 0) != 0
        let b = try c.constant(1, "B")
        guard b.dims.count == 2 else { throw c.failure("B must be rank 2, got \(b.dims)") }
        let k = a[1]
        let (bk, n) = transB ? (b.dims[1], b.dims[0]) : (b.dims[0], b.dims[1])
        guard bk == k else { throw c.failure("A \(a) and B \(b.dims) (transB=\(transB ? 1 : 0)) do not multiply") }
        let alpha = try c.float("alpha", default: 1)
        let beta = try c.float("beta", default: 1)
        var rowBias: [Float]?, fullBias: [Float]?
        if let cT = try c.optionalConstant(2, "C"), beta != 0 {
            let values = cT.floatValues
            switch cT.dims.count {
            case 0, 1 where cT.elementCount == 1:
                rowBias = Array(repeating: beta * values[0], count: n)
            case 1 where cT.dims[0] == n, 2 where cT.dims[0] == 1 && cT.dims[1] == n:
                rowBias = values.map { beta * $0 }
            case 2 where cT.dims[1] == 1 && (cT.dims[0] == a[0] || cT.dims[0] == 1):
                if cT.dims[0] == 1 {
                    rowBias = Array(repeating: beta * values[0], count: n)
                } else {
                    fullBias = (0..<(a[0] * n)).map { beta * values[$0 / n] }
                }
            case 2 where cT.dims[0] == a[0] && cT.dims[1] == n:
                fullBias = values.map { beta * $0 }
            default:
                throw c.failure("C \(cT.dims) does not broadcast to [\(a[0]), \(n)]")
            }
        }
        let values = b.floatValues
        let width = max(16, (n + 15) / 16 * 16)
        guard let columnCount = checkedProduct([k, width]) else {
            throw c.unsupported("B \(b.dims) is implausibly large")
        }
        var columns = [Float](repeating: 0, count: columnCount)
        for j in 0..<k {
            for o in 0..<n { columns[j * width + o] = transB ? values[o * k + j] : values[j * n + o] }
        }
        let kernel = GemmKernel(outputShape: [a[0], n], inFeatures: k, outFeatures: n, transB: transB,
                                alpha: alpha, rowBias: rowBias, fullBias: fullBias, weights: WeightBuffer(values),
                                columns: WeightBuffer(columns), productWidth: width, rowOffsets: (0..<k).map { $0 * width })
        return .kernel(kernel, runtimeInputs: [0])
    }
}

/// MatMul of data (batch first, rank ≥ 2) by a constant matrix, or of two data
/// tensors with the same leading dimensions.
struct MatMulKernel: Kernel {
    var wantsWholeBatch: Bool { true }
    let outputShape: [Int]
    let rows: Int, inner: Int, cols: Int
    /// Constant right operand; nil when both operands are data.
    let weights: WeightBuffer?
    /// Matrices per image when both operands are data.
    let matricesPerImage: Int

    func run(_ io: KernelIO) {
        if let weights {
            // Every leading axis folds into the row count: one GEMM for the batch.
            let m = io.batch * rows
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(cols), Int32(inner), 1,
                        io.inputs[0], Int32(inner), weights.pointer, Int32(cols), 0, io.output, Int32(cols))
        } else {
            for i in 0..<(io.batch * matricesPerImage) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(cols), Int32(inner), 1,
                            io.inputs[0] + i * rows * inner, Int32(inner), io.inputs[1] + i * inner * cols, Int32(cols),
                            0, io.output + i * rows * cols, Int32(cols))
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let a = try c.runtimeShape(0)
        guard a.count >= 2 else { throw c.unsupported("MatMul with a rank-\(a.count) left operand") }
        guard let right = c.input(1) else { throw c.failure("missing B") }
        switch right {
        case let .constant(b):
            guard b.dims.count == 2 else { throw c.unsupported("MatMul by a constant of rank \(b.dims.count)") }
            guard b.dims[0] == a[a.count - 1] else { throw c.failure("A \(a) and B \(b.dims) do not multiply") }
            let out = Array(a.dropLast()) + [b.dims[1]]
            let kernel = MatMulKernel(outputShape: out, rows: product(a.dropFirst().dropLast()), inner: b.dims[0],
                                      cols: b.dims[1], weights: WeightBuffer(b.floatValues), matricesPerImage: 1)
            return .kernel(kernel, runtimeInputs: [0])
        case let .runtime(b):
            guard b.count == a.count, a.count >= 3, Array(a.dropLast(2)) == Array(b.dropLast(2)),
                  a[a.count - 1] == b[b.count - 2] else {
                throw c.unsupported("MatMul of data shapes \(a) and \(b) (only equal leading axes)")
            }
            let out = Array(a.dropLast()) + [b[b.count - 1]]
            let kernel = MatMulKernel(outputShape: out, rows: a[a.count - 2], inner: a[a.count - 1], cols: b[b.count - 1],
                                      weights: nil, matricesPerImage: product(a.dropFirst().dropLast(2)))
            return .kernel(kernel, runtimeInputs: [0, 1])
        }
    }
}
