import Foundation

/// Evaluates nodes whose inputs are all constants while the plan is built.
///
/// Exporters compute shapes inside the graph: PyTorch traces `x.size(1) // 2`
/// as Shape → Gather → Div → Cast → Unsqueeze → Concat feeding a Reshape, or
/// a Slice's bounds as Add/Div/Mul of shape values (ShuffleNet's channel split
/// and shuffle). Every input of such a node is known once the data's shape is
/// (Shape folds to a constant at planning time), so the node becomes a
/// constant here and never runs. Integers are computed as integers (Div
/// truncates toward zero, as ONNX Runtime's integer Div does), floats as
/// float32.
enum ConstantFolder {
    typealias Rule = @Sendable (NodeContext, [ONNXTensor?]) throws -> [ONNXTensor]

    /// Most elements a folded constant may have: shapes and indices are tiny, and a
    /// damaged file must not make us allocate gigabytes (ConstantOfShape, Expand, Range).
    static let maxElements = 1 << 24

    /// The folded value of the node, or nil when an input is data (or there is none)
    /// or the operator has no rule here (its factory then decides).
    static func fold(_ c: NodeContext) throws -> BuiltNode? {
        guard let rule = rules[c.node.opType] else { return nil }
        let present = c.inputs.compactMap { $0 }
        guard !present.isEmpty, present.allSatisfy({ $0.constant != nil }) else { return nil }
        let outputs: [ONNXTensor]
        do {
            outputs = try rule(c, c.inputs.map { $0?.constant })
        } catch FoldError.missingInput {
            throw c.failure("missing input")
        }
        for t in outputs where checkedProduct(t.dims, limit: maxElements) == nil {
            throw c.unsupported("a constant of shape \(t.dims) is implausibly large")
        }
        return outputs.count == 1 ? .constant(outputs[0]) : .multiple(outputs.map { .constant($0) })
    }

    /// Operators that only ever run on constants here (shape computations); with data
    /// they are refused by name.
    static let constantOnlyOperators: [String] = [
        "ConstantOfShape", "Range", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Where",
        "Not", "And", "Or", "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Reciprocal", "Mod", "Pow", "Min", "Max",
        "Expand", "Size",
    ]

    /// The factory of a constant-only operator: reached only when an input is data.
    static func refuseData(_ c: NodeContext) throws -> BuiltNode {
        throw c.unsupported("\(c.node.opType) on data (supported only on constants, e.g. shape computations)")
    }

    static let rules: [String: Rule] = {
        var r: [String: Rule] = [:]
        r["Identity"] = { _, t in [try first(t)] }
        r["Dropout"] = { _, t in [try first(t)] }
        for (op, f, i) in arithmetic { r[op] = { c, t in [try elementwise(c, t.prefix(2).map { $0 }, float: f, int: i)] } }
        for (op, f, g) in comparisons {
            r[op] = { c, t in
                var out = try elementwise(c, t.prefix(2).map { $0 }, float: { f($0[0], $0[1]) ? 1 : 0 },
                                          int: { g($0[0], $0[1]) ? 1 : 0 })
                out.dataType = .bool
                return [out]
            }
        }
        for (op, f, i) in unary { r[op] = { c, t in [try elementwise(c, [try first(t)], float: { f($0[0]) }, int: i.map { g in { try g($0[0]) } })] } }
        r["Mod"] = { c, t in
            // fmod = 0: the sign of the divisor (integers only, as Python's %); 1: of the dividend (C's fmod).
            let cFmod = try c.int("fmod", default: 0) != 0
            return [try elementwise(c, t.prefix(2).map { $0 }, float: { Float(Foundation.fmod(Double($0[0]), Double($0[1]))) }, int: { v in
                guard v[1] != 0 else { throw FoldError.divisionByZero }
                let r = v[0].remainderReportingOverflow(dividingBy: v[1]).partialValue
                return !cFmod && r != 0 && (r < 0) != (v[1] < 0) ? r + v[1] : r
            })]
        }
        r["Not"] = { c, t in
            var out = try elementwise(c, [try first(t)], float: { $0[0] == 0 ? 1 : 0 }, int: { $0[0] == 0 ? 1 : 0 })
            out.dataType = .bool
            return [out]
        }
        r["And"] = { c, t in
            var out = try elementwise(c, t.map { $0 }, float: { $0[0] != 0 && $0[1] != 0 ? 1 : 0 }, int: { $0[0] != 0 && $0[1] != 0 ? 1 : 0 })
            out.dataType = .bool
            return [out]
        }
        r["Or"] = { c, t in
            var out = try elementwise(c, t.map { $0 }, float: { $0[0] != 0 || $0[1] != 0 ? 1 : 0 }, int: { $0[0] != 0 || $0[1] != 0 ? 1 : 0 })
            out.dataType = .bool
            return [out]
        }
        r["Where"] = { c, t in
            guard t.count == 3, let cond = t[0], let x = t[1], let y = t[2] else { throw c.failure("Where needs three inputs") }
            // The condition is read as numbers 0/1; x and y decide the result's type.
            let mask = ONNXTensor(dims: cond.dims, floats: cond.floatValues)
            if x.isFloatingPoint || y.isFloatingPoint {
                let xf = ONNXTensor(dims: x.dims, floats: x.floatValues), yf = ONNXTensor(dims: y.dims, floats: y.floatValues)
                return [try elementwise(c, [mask, xf, yf], float: { $0[0] != 0 ? $0[1] : $0[2] }, int: nil)]
            }
            let maskInts = ONNXTensor(dims: cond.dims, ints: cond.intValues.map { Int64($0) })
            return [try elementwise(c, [maskInts, x, y], float: { $0[0] != 0 ? $0[1] : $0[2] }, int: { $0[0] != 0 ? $0[1] : $0[2] })]
        }
        for op in ["Sum", "Min", "Max"] {
            r[op] = { c, t in
                let operands = t.compactMap { $0 }
                guard var acc = operands.first else { throw c.failure("no inputs") }
                for next in operands.dropFirst() {
                    acc = try elementwise(c, [acc, next],
                                          float: op == "Sum" ? { $0[0] + $0[1] } : op == "Min" ? { Swift.min($0[0], $0[1]) } : { Swift.max($0[0], $0[1]) },
                                          int: op == "Sum" ? { $0[0] &+ $0[1] } : op == "Min" ? { Swift.min($0[0], $0[1]) } : { Swift.max($0[0], $0[1]) })
                }
                return [acc]
            }
        }
        r["Cast"] = { c, t in [try cast(c, try first(t))] }
        r["Reshape"] = { c, t in
            let data = try first(t)
            let target: [Int]
            if c.opset < 5 {
                guard let s = try c.ints("shape") else { throw c.failure("missing attribute 'shape'") }
                target = s
            } else {
                guard t.count > 1, let s = t[1] else { throw c.failure("missing target shape") }
                target = s.intValues
            }
            var out = data
            out.dims = try ShapeOps.resolve(target, from: data.dims, allowZero: try c.int("allowzero", default: 0) != 0, c)
            return [out]
        }
        r["Flatten"] = { c, t in
            var out = try first(t)
            let rank = out.dims.count
            let axis = try c.int("axis", default: 1)
            let a = axis < 0 ? axis + rank : axis
            guard a >= 0 && a <= rank else { throw c.failure("axis \(axis) out of range for rank \(rank)") }
            out.dims = [product(out.dims[..<a]), product(out.dims[a...])]
            return [out]
        }
        r["Unsqueeze"] = { c, t in
            var out = try first(t)
            out.dims = try ShapeOps.unsqueezed(out.dims, axes: try ShapeOps.axes(c, t.count > 1 ? t[1] : nil) ?? [], c)
            return [out]
        }
        r["Squeeze"] = { c, t in
            var out = try first(t)
            out.dims = try ShapeOps.squeezed(out.dims, axes: try ShapeOps.axes(c, t.count > 1 ? t[1] : nil), c)
            return [out]
        }
        r["Concat"] = { c, t in [try concat(c, t.compactMap { $0 })] }
        r["Gather"] = { c, t in
            guard t.count >= 2, let data = t[0], let indices = t[1] else { throw c.failure("Gather needs data and indices") }
            return [try gather(c, data, indices)]
        }
        r["Slice"] = { c, t in
            let data = try first(t)
            let ranges = try SliceKernel.ranges(c, shape: data.dims, inputs: t)
            var offsets = [0]
            var dims: [Int] = []
            let strides = rowMajorStrides(data.dims)
            for (axis, range) in ranges.enumerated() {
                dims.append(range.count)
                offsets = offsets.flatMap { base in (0..<range.count).map { base + (range.start + $0 * range.step) * strides[axis] } }
            }
            return [pick(data, offsets, dims: dims)]
        }
        r["Transpose"] = { c, t in
            let data = try first(t)
            let perm = try TransposeKernel.permutation(c, rank: data.dims.count)
            let strides = rowMajorStrides(data.dims)
            var offsets = [0]
            for axis in perm {
                offsets = offsets.flatMap { base in (0..<data.dims[axis]).map { base + $0 * strides[axis] } }
            }
            return [pick(data, offsets, dims: perm.map { data.dims[$0] })]
        }
        r["Expand"] = { c, t in
            guard t.count == 2, let data = t[0], let shape = t[1] else { throw c.failure("Expand needs data and a shape") }
            let zeros = ONNXTensor(dims: shape.intValues, ints: [])
            let out = try broadcastShape([data.dims, zeros.dims], c)
            let map = broadcastSources(data.dims, to: out)
            return [pick(data, map, dims: out)]
        }
        r["ConstantOfShape"] = { c, t in
            let dims = try first(t).intValues
            guard let count = checkedProduct(dims, limit: maxElements) else {
                throw c.unsupported("ConstantOfShape of shape \(dims) is implausibly large")
            }
            if case let .tensor(v)? = c.node.attributes["value"], v.elementCount == 1 {
                var out = v
                out.dims = dims
                if v.isFloatingPoint { out.floats = Array(repeating: v.floats[0], count: count) } else { out.ints = Array(repeating: v.ints[0], count: count) }
                return [out]
            }
            return [ONNXTensor(dims: dims, floats: Array(repeating: 0, count: count))]
        }
        r["Range"] = { c, t in
            guard t.count == 3, let start = t[0], let limit = t[1], let delta = t[2] else { throw c.failure("Range needs start, limit and delta") }
            if start.isFloatingPoint {
                let s = start.floatValues.first ?? 0, l = limit.floatValues.first ?? 0, d = delta.floatValues.first ?? 0
                guard d != 0, d.isFinite, s.isFinite, l.isFinite else { throw c.failure("Range with delta \(d)") }
                let n = Swift.max(0, Int(((l - s) / d).rounded(.up)))
                guard n <= maxElements else { throw c.unsupported("Range of \(n) values is implausibly large") }
                return [ONNXTensor(dims: [n], floats: (0..<n).map { s + Float($0) * d })]
            }
            let s = start.ints.first ?? 0, l = limit.ints.first ?? 0, d = delta.ints.first ?? 0
            guard d != 0 else { throw c.failure("Range with delta 0") }
            let span = Double(l) - Double(s)
            let n = Swift.max(0, Int((span / Double(d)).rounded(.up)))
            guard n <= maxElements else { throw c.unsupported("Range of \(n) values is implausibly large") }
            return [ONNXTensor(dims: [n], ints: (0..<n).map { s + Int64($0) * d })]
        }
        r["Size"] = { _, t in [ONNXTensor(dims: [], ints: [Int64(try first(t).elementCount)])] }
        return r
    }()

    // MARK: - Elementwise

    private static let arithmetic: [(String, @Sendable ([Float]) -> Float, (@Sendable ([Int64]) throws -> Int64)?)] = [
        ("Add", { $0[0] + $0[1] }, { $0[0] &+ $0[1] }),
        ("Sub", { $0[0] - $0[1] }, { $0[0] &- $0[1] }),
        ("Mul", { $0[0] * $0[1] }, { $0[0] &* $0[1] }),
        ("Div", { $0[0] / $0[1] }, { v in
            guard v[1] != 0 else { throw FoldError.divisionByZero }
            return v[0].dividedReportingOverflow(by: v[1]).partialValue
        }),
        ("Pow", { Float(Foundation.pow(Double($0[0]), Double($0[1]))) }, nil),
    ]

    private static let comparisons: [(String, @Sendable (Float, Float) -> Bool, @Sendable (Int64, Int64) -> Bool)] = [
        ("Equal", { $0 == $1 }, { $0 == $1 }), ("Less", { $0 < $1 }, { $0 < $1 }), ("Greater", { $0 > $1 }, { $0 > $1 }),
        ("LessOrEqual", { $0 <= $1 }, { $0 <= $1 }), ("GreaterOrEqual", { $0 >= $1 }, { $0 >= $1 }),
    ]

    private static let unary: [(String, @Sendable (Float) -> Float, (@Sendable (Int64) throws -> Int64)?)] = [
        ("Neg", { -$0 }, { 0 &- $0 }),
        ("Abs", { Swift.abs($0) }, { $0 == .min ? $0 : Swift.abs($0) }),
        ("Floor", { $0.rounded(.down) }, nil),
        ("Ceil", { $0.rounded(.up) }, nil),
        ("Sqrt", { $0.squareRoot() }, nil),
        ("Reciprocal", { 1 / $0 }, nil),
    ]

    enum FoldError: Error { case divisionByZero, missingInput }

    private static func first(_ t: [ONNXTensor?]) throws -> ONNXTensor {
        guard let value = t.first, let tensor = value else { throw FoldError.missingInput }
        return tensor
    }

    /// `f` applied across broadcast operands: integer arithmetic when every operand is an
    /// integer tensor and an integer form exists, else float32.
    private static func elementwise(_ c: NodeContext, _ operands: [ONNXTensor?], float: ([Float]) -> Float,
                                    int: (([Int64]) throws -> Int64)?) throws -> ONNXTensor {
        let tensors = operands.compactMap { $0 }
        guard tensors.count == operands.count, !tensors.isEmpty else { throw c.failure("missing input") }
        let out = try broadcastShape(tensors.map(\.dims), c)
        guard let count = checkedProduct(out, limit: maxElements) else { throw c.unsupported("a constant of shape \(out) is implausibly large") }
        let maps = tensors.map { broadcastSources($0.dims, to: out) }
        if tensors.allSatisfy({ !$0.isFloatingPoint }), let integer = int {
            var values = [Int64](repeating: 0, count: count)
            var args = [Int64](repeating: 0, count: tensors.count)
            do {
                for i in 0..<count {
                    for (k, t) in tensors.enumerated() { args[k] = t.ints[maps[k][i]] }
                    values[i] = try integer(args)
                }
            } catch FoldError.divisionByZero {
                throw c.failure("integer division by zero in a constant")
            }
            return ONNXTensor(dims: out, ints: values)
        }
        let floats = tensors.map(\.floatValues)
        var values = [Float](repeating: 0, count: count)
        var args = [Float](repeating: 0, count: tensors.count)
        for i in 0..<count {
            for k in floats.indices { args[k] = floats[k][maps[k][i]] }
            values[i] = float(args)
        }
        return ONNXTensor(dims: out, floats: values)
    }

    /// NumPy broadcasting of several shapes.
    static func broadcastShape(_ shapes: [[Int]], _ c: NodeContext) throws -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: rank)
        for s in shapes {
            let padded = Array(repeating: 1, count: rank - s.count) + s
            for i in 0..<rank where padded[i] != 1 {
                guard out[i] == 1 || out[i] == padded[i] else { throw c.failure("shapes \(shapes) do not broadcast") }
                out[i] = padded[i]
            }
        }
        return out
    }

    /// For every element of `out` (row-major), the index of the element of a tensor of
    /// shape `shape` that broadcasting puts there.
    static func broadcastSources(_ shape: [Int], to out: [Int]) -> [Int] {
        let padded = Array(repeating: 1, count: out.count - shape.count) + shape
        let strides = rowMajorStrides(padded)
        var offsets = [0]
        for axis in out.indices {
            let stride = padded[axis] == 1 ? 0 : strides[axis]
            offsets = offsets.flatMap { base in (0..<out[axis]).map { base + $0 * stride } }
        }
        return offsets
    }

    // MARK: - Movement

    private static func pick(_ data: ONNXTensor, _ offsets: [Int], dims: [Int]) -> ONNXTensor {
        var out = data
        out.dims = dims
        if data.isFloatingPoint { out.floats = offsets.map { data.floats[$0] } } else { out.ints = offsets.map { data.ints[$0] } }
        return out
    }

    private static func concat(_ c: NodeContext, _ tensors: [ONNXTensor]) throws -> ONNXTensor {
        guard let head = tensors.first else { throw c.failure("no inputs") }
        guard case let .int(rawAxis)? = c.node.attributes["axis"] else { throw c.failure("missing attribute 'axis'") }
        let rank = head.dims.count
        let axis = try normalizedAxis(rawAxis, rank: Swift.max(rank, 1), c)
        for t in tensors where t.dims.count != rank || (0..<rank).contains(where: { $0 != axis && t.dims[$0] != head.dims[$0] }) {
            throw c.failure("inputs \(tensors.map(\.dims)) differ outside axis \(axis)")
        }
        var dims = head.dims
        dims[axis] = tensors.reduce(0) { $0 + $1.dims[axis] }
        let outer = product(head.dims[..<axis])
        let floating = tensors.contains { $0.isFloatingPoint }
        var floats: [Float] = [], ints: [Int64] = []
        for o in 0..<outer {
            for t in tensors {
                let chunk = product(t.dims[axis...])
                if floating { floats += t.floatValues[(o * chunk)..<((o + 1) * chunk)] } else { ints += t.ints[(o * chunk)..<((o + 1) * chunk)] }
            }
        }
        return floating ? ONNXTensor(dims: dims, floats: floats) : ONNXTensor(dims: dims, ints: ints)
    }

    private static func gather(_ c: NodeContext, _ data: ONNXTensor, _ indices: ONNXTensor) throws -> ONNXTensor {
        let rank = data.dims.count
        guard rank >= 1 else { throw c.failure("Gather from a scalar") }
        let axis = try normalizedAxis(try c.int("axis", default: 0), rank: rank, c)
        let n = data.dims[axis]
        let picked = try indices.intValues.map { i -> Int in
            let j = i < 0 ? i + n : i
            guard j >= 0 && j < n else { throw c.failure("index \(i) out of range \(n)") }
            return j
        }
        let outer = product(data.dims[..<axis]), inner = product(data.dims[(axis + 1)...])
        var offsets: [Int] = []
        offsets.reserveCapacity(outer * picked.count * inner)
        for o in 0..<outer { for j in picked { for i in 0..<inner { offsets.append((o * n + j) * inner + i) } } }
        return pick(data, offsets, dims: Array(data.dims[..<axis]) + indices.dims + Array(data.dims[(axis + 1)...]))
    }

    private static func cast(_ c: NodeContext, _ data: ONNXTensor) throws -> ONNXTensor {
        let to = try c.int("to", default: 1)
        guard let type = ONNXDataType(rawValue: to), type != .string else { throw c.unsupported("Cast to type \(to)") }
        var out: ONNXTensor
        if type.isFloatingPoint {
            out = ONNXTensor(name: data.name, dims: data.dims, floats: data.floatValues)
        } else if type == .bool {
            out = ONNXTensor(name: data.name, dims: data.dims, ints: data.floatValues.map { $0 != 0 ? 1 : 0 })
        } else if data.isFloatingPoint {
            // Float to integer truncates toward zero; out-of-range values are refused, not wrapped.
            out = ONNXTensor(name: data.name, dims: data.dims, ints: try data.floats.map { v in
                guard v.isFinite, Swift.abs(v) < 9.2e18 else { throw c.failure("Cast of \(v) to an integer") }
                return Int64(v.rounded(.towardZero))
            })
        } else {
            out = ONNXTensor(name: data.name, dims: data.dims, ints: data.ints)
        }
        out.dataType = type
        return out
    }
}

/// Row-major strides of a shape.
func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = s
        s *= shape[i]
    }
    return strides
}
