/// Operators that move data values without computing new ones: Transpose,
/// Slice, Split, Gather and Pad. None of them is a tap (SPEC §2: they only
/// move values; KernelRegistry.valueMovingOperators): a channel shuffle's
/// Transpose of a rank-5 view or a Split's halves hold exactly the values of
/// the tap they come from. Their batch axis stays the first and untouched, so
/// they treat each image on its own like every image-wise kernel.

/// A multi-index over `shape` in row-major order and the offset `Σ index_k·strides[k]`,
/// kept in step as the index advances (an odometer).
struct StridedCursor {
    let shape: [Int]
    let strides: [Int]
    private(set) var index: [Int]
    private(set) var offset = 0

    init(shape: [Int], strides: [Int]) {
        self.shape = shape
        self.strides = strides
        index = [Int](repeating: 0, count: shape.count)
    }

    /// The next index; after the last one it wraps to all zeros.
    @inline(__always)
    mutating func advance() {
        var axis = shape.count - 1
        while axis >= 0 {
            index[axis] += 1
            offset += strides[axis]
            if index[axis] < shape[axis] { return }
            offset -= strides[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}

/// Copies a strided view of each image: output element (i₁, …, i_r) of an image is
/// input element `base + Σ i_k·strides[k]` of the same image. Transpose, Slice and
/// each output of Split are such views.
struct StridedCopyKernel: Kernel {
    let outputShape: [Int]
    let inputValuesPerImage: Int
    let base: Int
    /// Output axes after the batch (merged where contiguous) and their input strides.
    let dims: [Int]
    let strides: [Int]

    init(outputShape: [Int], inputValuesPerImage: Int, base: Int, dims: [Int], strides: [Int]) {
        self.outputShape = outputShape
        self.inputValuesPerImage = inputValuesPerImage
        self.base = base
        // Drop axes of length 1, merge an axis into the next when they are contiguous in
        // the input too (a channel shuffle's H×W planes copy as one run).
        var d: [Int] = [], s: [Int] = []
        for (n, st) in zip(dims, strides) where n != 1 {
            if let last = d.last, let lastStride = s.last, lastStride == st * n {
                d[d.count - 1] = last * n
                s[s.count - 1] = st
            } else {
                d.append(n)
                s.append(st)
            }
        }
        if d.isEmpty { d = [1]; s = [1] }
        self.dims = d
        self.strides = s
    }

    func run(_ io: KernelIO) {
        let outPerImage = product(outputShape.dropFirst())
        guard outPerImage > 0 else { return }
        let inner = dims[dims.count - 1], innerStride = strides[strides.count - 1]
        let rows = outPerImage / inner
        for n in 0..<io.batch {
            let x = io.inputs[0] + n * inputValuesPerImage + base
            var y = io.output + n * outPerImage
            // Rows of the last axis, walking the outer axes.
            var row = StridedCursor(shape: Array(dims.dropLast()), strides: Array(strides.dropLast()))
            for _ in 0..<rows {
                let src = x + row.offset
                if innerStride == 1 {
                    copyFloats(src, y, count: inner)
                } else {
                    for k in 0..<inner { y[k] = src[k * innerStride] }
                }
                y += inner
                row.advance()
            }
        }
    }
}

enum TransposeKernel {
    /// `perm`, checked; its default reverses the axes.
    static func permutation(_ c: NodeContext, rank: Int) throws -> [Int] {
        let perm = try c.ints("perm") ?? Array((0..<rank).reversed())
        guard perm.count == rank, Set(perm) == Set(0..<rank) else {
            throw c.failure("perm \(perm) is not a permutation of \(rank) axes")
        }
        return perm
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let perm = try permutation(c, rank: shape.count)
        guard perm.first == 0 else { throw c.unsupported("Transpose that moves the batch axis (perm \(perm))") }
        let strides = rowMajorStrides(shape)
        let out = perm.map { shape[$0] }
        return .kernel(StridedCopyKernel(outputShape: out, inputValuesPerImage: product(shape.dropFirst()), base: 0,
                                         dims: Array(out.dropFirst()), strides: perm.dropFirst().map { strides[$0] }),
                       runtimeInputs: [0])
    }
}

enum SliceKernel {
    typealias Range = (start: Int, step: Int, count: Int)

    /// Start, step and length of the slice along every axis of `shape` (ONNX Slice,
    /// opset 1–9 attributes, 10+ inputs starts/ends/axes/steps, all constant).
    static func ranges(_ c: NodeContext, shape: [Int], inputs: [ONNXTensor?]) throws -> [Range] {
        let starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if c.opset < 10 {
            guard let s = try c.ints("starts"), let e = try c.ints("ends") else { throw c.failure("missing starts or ends") }
            starts = s; ends = e; axes = try c.ints("axes"); steps = nil
        } else {
            guard inputs.count >= 3, let s = inputs[1], let e = inputs[2] else { throw c.failure("missing starts or ends") }
            starts = s.intValues; ends = e.intValues
            axes = inputs.count > 3 ? inputs[3]?.intValues : nil
            steps = inputs.count > 4 ? inputs[4]?.intValues : nil
        }
        let rank = shape.count
        let axisList = try (axes ?? Array(0..<starts.count)).map { try normalizedAxis($0, rank: rank, c) }
        let stepList = steps ?? Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, axisList.count == starts.count, stepList.count == starts.count else {
            throw c.failure("starts \(starts), ends \(ends), axes \(axes ?? []) and steps \(steps ?? []) differ in length")
        }
        guard Set(axisList).count == axisList.count else { throw c.failure("repeated axes \(axisList)") }
        var result: [Range] = shape.map { (0, 1, $0) }
        for (k, axis) in axisList.enumerated() {
            let dim = shape[axis], step = stepList[k]
            guard step != 0 else { throw c.failure("step 0 on axis \(axis)") }
            // Bounds may be ±2⁶³−1 ("to the end"): clamp before any arithmetic.
            var start = starts[k] < 0 ? max(starts[k], -dim) + dim : starts[k]
            var end = ends[k] < 0 ? max(ends[k], -dim - 1) + dim : ends[k]
            let count: Int
            if step > 0 {
                start = min(max(start, 0), dim)
                end = min(max(end, 0), dim)
                count = end > start ? (end - start + step - 1) / step : 0
            } else {
                start = min(max(start, 0), dim - 1)
                end = min(max(end, -1), dim - 1)
                count = start > end ? (start - end - step - 1) / -step : 0
            }
            result[axis] = (start, step, count)
        }
        return result
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        var constants: [ONNXTensor?] = [nil]
        for i in 1..<max(c.inputs.count, 1) {
            constants.append(c.input(i) == nil ? nil : try c.constant(i, "Slice bound"))
        }
        let ranges = try Self.ranges(c, shape: shape, inputs: constants)
        guard ranges[0].start == 0, ranges[0].step == 1, ranges[0].count == shape[0] else {
            throw c.unsupported("Slice of the batch axis")
        }
        let strides = rowMajorStrides(shape)
        let base = ranges.indices.dropFirst().reduce(0) { $0 + ranges[$1].start * strides[$1] }
        return .kernel(StridedCopyKernel(outputShape: ranges.map(\.count), inputValuesPerImage: product(shape.dropFirst()),
                                         base: base, dims: ranges.dropFirst().map(\.count),
                                         strides: ranges.indices.dropFirst().map { ranges[$0].step * strides[$0] }),
                       runtimeInputs: [0])
    }
}

enum SplitKernel {
    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let axis = try normalizedAxis(try c.int("axis", default: 0), rank: shape.count, c)
        guard axis > 0 else { throw c.unsupported("Split of the batch axis") }
        let outputs = c.node.outputs.count
        guard outputs > 0 else { throw c.failure("no outputs") }
        let length = shape[axis]
        var sizes: [Int]
        if c.opset >= 13, let given = try c.optionalConstant(1, "split") {
            sizes = given.intValues
        } else if c.opset < 13, let given = try c.ints("split") {
            sizes = given
        } else {
            let parts = c.opset >= 18 ? try c.int("num_outputs", default: outputs) : outputs
            // Opset 18: the last part may be smaller; before, the parts must be equal.
            let each = c.opset >= 18 ? (length + parts - 1) / max(parts, 1) : length / max(parts, 1)
            guard c.opset >= 18 || each * parts == length else {
                throw c.failure("axis \(axis) of length \(length) does not split into \(parts) equal parts")
            }
            sizes = (0..<parts).map { min(each, max(0, length - $0 * each)) }
        }
        guard sizes.count == outputs, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == length else {
            throw c.failure("split \(sizes) into \(outputs) outputs does not cover axis \(axis) of length \(length)")
        }
        let strides = rowMajorStrides(shape)
        var start = 0
        let parts: [BuiltNode] = sizes.map { size in
            var out = shape
            out[axis] = size
            let kernel = StridedCopyKernel(outputShape: out, inputValuesPerImage: product(shape.dropFirst()),
                                           base: start * strides[axis], dims: Array(out.dropFirst()),
                                           strides: Array(strides.dropFirst()))
            start += size
            return .kernel(kernel, runtimeInputs: [0])
        }
        return .multiple(parts)
    }
}

/// Gather of data along a non-batch axis with constant indices (GoogLeNet's `x[:, 0]`).
struct GatherKernel: Kernel {
    let outputShape: [Int]
    /// Per image: blocks before the axis, the axis's length, values after it.
    let outer: Int, axisLength: Int, inner: Int
    let indices: [Int]

    func run(_ io: KernelIO) {
        let inPerImage = outer * axisLength * inner, outPerImage = outer * indices.count * inner
        for n in 0..<io.batch {
            let x = io.inputs[0] + n * inPerImage
            var y = io.output + n * outPerImage
            for o in 0..<outer {
                for j in indices {
                    copyFloats(x + (o * axisLength + j) * inner, y, count: inner)
                    y += inner
                }
            }
        }
    }
}

/// Pad (constant, reflect, edge), opset 2–10 with attributes and 11+ with inputs.
///
/// Along each axis, output position o reads input position o − begin; outside the
/// input it reads the constant, the mirror image without repeating the edge
/// (reflect), or the nearest edge. Negative pads crop. Equivalent to ONNX Runtime,
/// which also refuses a reflect pad longer than the axis minus one.
struct PadKernel: Kernel {
    enum Mode: String, Sendable { case constant, reflect, edge }

    let outputShape: [Int]
    let inputShape: [Int]
    let value: Float
    /// Per non-batch axis: for each output position, the input position, or -1 for the constant.
    let sources: [[Int]]

    func run(_ io: KernelIO) {
        let inPerImage = product(inputShape.dropFirst()), outPerImage = product(outputShape.dropFirst())
        guard outPerImage > 0 else { return }
        let rank = sources.count
        let inStrides = Array(rowMajorStrides(Array(inputShape.dropFirst())))
        let last = sources[rank - 1]
        let inner = last.count
        // The longest run of the last axis read straight from the input.
        var runStart = 0, runLength = 0
        var i = 0
        while i < inner {
            var j = i
            while j < inner && last[j] >= 0 && last[j] - last[i] == j - i { j += 1 }
            if j - i > runLength { runStart = i; runLength = j - i }
            i = max(j, i + 1)
        }
        let rows = outPerImage / max(inner, 1)
        var index = [Int](repeating: 0, count: rank - 1)
        for n in 0..<io.batch {
            let x = io.inputs[0] + n * inPerImage
            var y = io.output + n * outPerImage
            for k in index.indices { index[k] = 0 }
            for _ in 0..<rows {
                var row = 0, outside = false
                for k in 0..<(rank - 1) {
                    let s = sources[k][index[k]]
                    if s < 0 { outside = true; break }
                    row += s * inStrides[k]
                }
                if outside {
                    y.update(repeating: value, count: inner)
                } else {
                    let src = x + row
                    for k in 0..<runStart { y[k] = last[k] < 0 ? value : src[last[k]] }
                    if runLength > 0 { copyFloats(src + last[runStart], y + runStart, count: runLength) }
                    for k in (runStart + runLength)..<inner { y[k] = last[k] < 0 ? value : src[last[k]] }
                }
                y += inner
                var axis = rank - 2
                while axis >= 0 {
                    index[axis] += 1
                    if index[axis] < sources[axis].count { break }
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let rank = shape.count
        let modeName = try c.string("mode", default: "constant")
        guard let mode = Mode(rawValue: modeName) else { throw c.unsupported("Pad mode '\(modeName)'") }
        var pads: [Int]
        var value: Float = 0
        if c.opset < 11 {
            guard let p = try c.ints(c.opset < 2 ? "paddings" : "pads") else { throw c.failure("missing attribute 'pads'") }
            pads = p
            value = try c.float("value", default: 0)
        } else {
            pads = try c.constant(1, "pads").intValues
            if let v = try c.optionalConstant(2, "constant_value") {
                guard v.elementCount == 1 else { throw c.failure("constant_value must be a scalar") }
                value = v.floatValues[0]
            }
            if let axesTensor = try c.optionalConstant(3, "axes") {
                // Opset 18: pads name only these axes.
                let axes = try axesTensor.intValues.map { try normalizedAxis($0, rank: rank, c) }
                guard pads.count == 2 * axes.count else { throw c.failure("pads \(pads) for axes \(axes)") }
                var full = [Int](repeating: 0, count: 2 * rank)
                for (k, a) in axes.enumerated() { full[a] = pads[k]; full[rank + a] = pads[axes.count + k] }
                pads = full
            }
        }
        guard pads.count == 2 * rank else { throw c.failure("pads \(pads) for an input of rank \(rank)") }
        guard pads[0] == 0, pads[rank] == 0 else { throw c.unsupported("Pad of the batch axis") }
        // All-zero pads (PyTorch's AvgPool export emits them) still copy: the node's
        // output is a tap (SPEC §2), with the values of its input.
        var out = shape
        var sources: [[Int]] = []
        for axis in 1..<rank {
            let d = shape[axis], begin = pads[axis], end = pads[rank + axis]
            let length = d + begin + end
            guard length >= 0, length <= maxValuesPerImage else { throw c.failure("pads \(pads) give axis \(axis) length \(length)") }
            if mode == .reflect && (begin > d - 1 || end > d - 1) && (begin > 0 || end > 0) {
                throw c.unsupported("reflect pads \(begin), \(end) longer than axis \(axis) of length \(d) minus one")
            }
            if mode == .edge && d == 0 && length > 0 { throw c.failure("edge padding of an empty axis") }
            out[axis] = length
            sources.append((0..<length).map { o in
                let i = o - begin
                if i >= 0 && i < d { return i }
                switch mode {
                case .constant: return -1
                case .edge: return i < 0 ? 0 : d - 1
                case .reflect: return i < 0 ? -i : 2 * (d - 1) - i
                }
            })
        }
        guard checkedProduct(out.dropFirst()) != nil else { throw c.unsupported("output shape \(out) is implausibly large") }
        return .kernel(PadKernel(outputShape: out, inputShape: shape, value: value, sources: sources), runtimeInputs: [0])
    }
}
