import COpenBLAS

/// A constant right operand B (depth × outputs) stored for the packed
/// micro-kernel (PackedGemm.swift) as [depth][width], width = outputs rounded
/// up to whole vectors, columns past `outputs` zero. The data rows are packed
/// per run. Each row of the product is the same sum in the same order whatever
/// the number of rows, unlike BLAS, whose kernels round a row differently with
/// the row count (OpenBLAS's Haswell/Zen SGEMM does for one row against eight):
/// Gemm and MatMul by a constant both go through here so that an image's logits
/// do not depend on the batch (CAR reruns single images and relies on that).
struct ConstantColumns: Sendable {
    let depth: Int
    let outputs: Int
    let width: Int
    let columns: WeightBuffer
    /// Row j of `columns` starts at offsets[j] = j · width.
    let rowOffsets: [Int]

    /// - Parameter value: B[j][o] for j < depth, o < outputs.
    init?(depth: Int, outputs: Int, value: (_ j: Int, _ o: Int) -> Float) {
        let width = max(16, (outputs + 15) / 16 * 16)
        guard let count = checkedProduct([depth, width]) else { return nil }
        var columns = [Float](repeating: 0, count: max(count, 1))
        for j in 0..<depth {
            for o in 0..<outputs { columns[j * width + o] = value(j, o) }
        }
        self.depth = depth
        self.outputs = outputs
        self.width = width
        self.columns = WeightBuffer(columns)
        rowOffsets = (0..<depth).map { $0 * width }
    }

    /// Floats of scratch for products of up to `rows` rows.
    func scratchCount(rows: Int) -> Int {
        PackedRows.panelCount(rows: rows) * PackedRows.panelHeight * (depth + width)
    }

    /// Multiplies `rows` rows of `a` (each `depth` long, contiguous) by B.
    ///
    /// - Parameter capacityRows: the rows `scratch` was sized for (`scratchCount(rows:)`).
    /// - Returns: the product in scratch, row r at `r · width`.
    func multiply(_ a: UnsafePointer<Float>, rows: Int, capacityRows: Int,
                  scratch: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        let packed = scratch
        let staging = scratch + PackedRows.panelCount(rows: capacityRows) * PackedRows.panelHeight * depth
        // Whole panels of 8 rows are read where they lie; only a last, partial
        // panel is packed (its missing rows as zeros, never read past A's end).
        // Both paths sum each row the same way: the values do not depend on
        // how many rows come with it.
        let whole = rows / PackedRows.panelHeight, rest = rows - whole * PackedRows.panelHeight
        rowOffsets.withUnsafeBufferPointer { offsets in
            guard let offsets = offsets.baseAddress else { return }
            if whole > 0 {
                PackedRows.multiplyRows(a, lda: depth, panels: whole, depth: depth,
                                        columns.pointer, offsets: offsets, width: width, into: staging, ldc: width)
            }
            if rest > 0 {
                let first = whole * PackedRows.panelHeight
                PackedRows.pack(a + first * depth, rows: rest, depth: depth, rowStride: depth, into: packed)
                PackedRows.multiply(packed, panels: 1, depth: depth, columns.pointer, offsets: offsets,
                                    width: width, into: staging + first * width, ldc: width)
            }
        }
        return staging
    }
}

/// Gemm: Y = alpha·A'·B' + beta·C with A the data (batch first) and B, C constants.
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
    /// B for the micro-kernel.
    let packedB: ConstantColumns

    var scratchCount: Int { packedB.scratchCount(rows: outputShape[0]) }

    func run(_ io: KernelIO) {
        let m = io.batch, n = outFeatures, width = packedB.width
        let staging = packedB.multiply(io.inputs[0], rows: m, capacityRows: outputShape[0], scratch: io.scratch)
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
        guard let packed = ConstantColumns(depth: k, outputs: n, value: { j, o in transB ? values[o * k + j] : values[j * n + o] }) else {
            throw c.unsupported("B \(b.dims) is implausibly large")
        }
        let kernel = GemmKernel(outputShape: [a[0], n], inFeatures: k, outFeatures: n, transB: transB,
                                alpha: alpha, rowBias: rowBias, fullBias: fullBias, weights: WeightBuffer(values),
                                packedB: packed)
        return .kernel(kernel, runtimeInputs: [0])
    }
}

/// MatMul of data (batch first, rank ≥ 2) by a constant matrix, or of two data
/// tensors with the same leading dimensions.
struct MatMulKernel: Kernel {
    var wantsWholeBatch: Bool { true }
    let outputShape: [Int]
    let rows: Int, inner: Int, cols: Int
    /// Constant right operand as stored in the model (read by CAR's shortcut); nil when both operands are data.
    let weights: WeightBuffer?
    /// The constant right operand for the micro-kernel.
    let packedB: ConstantColumns?
    /// Matrices per image when both operands are data.
    let matricesPerImage: Int

    var scratchCount: Int { packedB?.scratchCount(rows: outputShape[0] * rows) ?? 0 }

    func run(_ io: KernelIO) {
        if let packedB {
            // Every leading axis folds into the row count: one product for the batch,
            // each row the same sum whatever the batch (ConstantColumns).
            let m = io.batch * rows, width = packedB.width
            let staging = packedB.multiply(io.inputs[0], rows: m, capacityRows: outputShape[0] * rows, scratch: io.scratch)
            for r in 0..<m { copyFloats(staging + r * width, io.output + r * cols, count: cols) }
        } else {
            // Both operands data: one BLAS call per matrix, whose shape does not
            // depend on the batch, so neither does the rounding.
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
            let values = b.floatValues, (k, n) = (b.dims[0], b.dims[1])
            guard let columns = ConstantColumns(depth: k, outputs: n, value: { j, o in values[j * n + o] }) else {
                throw c.unsupported("B \(b.dims) is implausibly large")
            }
            let kernel = MatMulKernel(outputShape: out, rows: product(a.dropFirst().dropLast()), inner: k,
                                      cols: n, weights: WeightBuffer(values), packedB: columns, matricesPerImage: 1)
            return .kernel(kernel, runtimeInputs: [0])
        case let .runtime(b):
            guard b.count == a.count, a.count >= 3, Array(a.dropLast(2)) == Array(b.dropLast(2)),
                  a[a.count - 1] == b[b.count - 2] else {
                throw c.unsupported("MatMul of data shapes \(a) and \(b) (only equal leading axes)")
            }
            let out = Array(a.dropLast()) + [b[b.count - 1]]
            let kernel = MatMulKernel(outputShape: out, rows: a[a.count - 2], inner: a[a.count - 1], cols: b[b.count - 1],
                                      weights: nil, packedB: nil, matricesPerImage: product(a.dropFirst().dropLast(2)))
            return .kernel(kernel, runtimeInputs: [0, 1])
        }
    }
}
