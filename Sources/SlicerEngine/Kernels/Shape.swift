/// Ops that only move values: they become aliases of their input's memory with a
/// new shape (Flatten, Reshape, Identity, Dropout) or are evaluated while
/// planning when their inputs are known (Constant, Shape, Gather, Unsqueeze,
/// Squeeze, Cast), as PyTorch's exports use them to compute Reshape targets.
enum ShapeOps {
    static func flatten(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let axis = try c.int("axis", default: 1)
        let a = axis < 0 ? axis + shape.count : axis
        guard a >= 0 && a <= shape.count else { throw c.failure("axis \(axis) out of range") }
        guard a >= 1 else { throw c.unsupported("Flatten with axis 0 merges the batch") }
        return .alias(inputIndex: 0, shape: [product(shape[..<a]), product(shape[a...])])
    }

    static func reshape(_ c: NodeContext) throws -> BuiltNode {
        let target: [Int]
        if c.opset < 5 {
            guard let s = try c.ints("shape") else { throw c.failure("missing attribute 'shape'") }
            target = s
        } else {
            target = try c.constant(1, "target shape").intValues
        }
        if let data = c.input(0)?.constant {
            let shape = try resolve(target, from: data.dims, allowZero: try c.int("allowzero", default: 0) != 0, c)
            var copy = data
            copy.dims = shape
            return .constant(copy)
        }
        let shape = try c.runtimeShape(0)
        let out = try resolve(target, from: shape, allowZero: try c.int("allowzero", default: 0) != 0, c)
        guard out.first == shape.first else {
            throw c.unsupported("Reshape from \(shape) to \(out) moves the batch axis")
        }
        return .alias(inputIndex: 0, shape: out)
    }

    /// ONNX Reshape rules: 0 copies the input dimension (unless allowzero), −1 is inferred.
    static func resolve(_ target: [Int], from input: [Int], allowZero: Bool, _ c: NodeContext) throws -> [Int] {
        var out = target
        var inferred: Int?
        for (i, d) in target.enumerated() {
            if d == 0 && !allowZero {
                guard i < input.count else { throw c.failure("shape \(target) copies a missing dimension") }
                out[i] = input[i]
            } else if d == -1 {
                guard inferred == nil else { throw c.failure("shape \(target) has two -1") }
                inferred = i
            } else if d < 0 {
                throw c.failure("shape \(target) has a negative dimension")
            }
        }
        let total = product(input)
        if let i = inferred {
            // Checked: target dimensions come from the file and may be absurd (overflow traps).
            guard let known = checkedProduct(out.enumerated().filter { $0.offset != i }.map(\.element), limit: .max),
                  known > 0, total % known == 0 else { throw c.failure("cannot reshape \(input) to \(target)") }
            out[i] = total / known
        }
        guard checkedProduct(out, limit: .max) == total else { throw c.failure("cannot reshape \(input) (\(total) values) to \(target)") }
        return out
    }

    static func identity(_ c: NodeContext) throws -> BuiltNode {
        if let constant = c.input(0)?.constant { return .constant(constant) }
        return .alias(inputIndex: 0, shape: try c.runtimeShape(0))
    }

    static func dropout(_ c: NodeContext) throws -> BuiltNode {
        // Inference: Dropout is the identity. Its mask output, if asked for, is not supported.
        if c.node.outputs.count > 1 && !c.node.outputs[1].isEmpty {
            throw c.unsupported("the mask output of Dropout")
        }
        if c.opset >= 12, let mode = c.input(2)?.constant, mode.intValues.first == 1 {
            throw c.unsupported("Dropout in training mode")
        }
        return try identity(c)
    }

    static func constant(_ c: NodeContext) throws -> BuiltNode {
        let attrs = c.node.attributes
        if case let .tensor(t)? = attrs["value"] { return .constant(t) }
        if case let .float(f)? = attrs["value_float"] { return .constant(ONNXTensor(dims: [], floats: [f])) }
        if case let .floats(f)? = attrs["value_floats"] { return .constant(ONNXTensor(dims: [f.count], floats: f)) }
        if case let .int(i)? = attrs["value_int"] { return .constant(ONNXTensor(dims: [], ints: [Int64(i)])) }
        if case let .ints(i)? = attrs["value_ints"] { return .constant(ONNXTensor(dims: [i.count], ints: i.map { Int64($0) })) }
        throw c.unsupported("Constant without a tensor, float or int value")
    }

    static func shape(_ c: NodeContext) throws -> BuiltNode {
        guard let value = c.input(0) else { throw c.failure("missing input") }
        var dims = value.runtimeShape ?? value.constant?.dims ?? []
        // opset 15 start/end slice the shape.
        let start = try c.int("start", default: 0), end = try c.int("end", default: dims.count)
        let s = max(0, min(dims.count, start < 0 ? start + dims.count : start))
        let e = max(s, min(dims.count, end < 0 ? end + dims.count : end))
        dims = Array(dims[s..<e])
        return .constant(ONNXTensor(dims: [dims.count], ints: dims.map { Int64($0) }))
    }

    static func gather(_ c: NodeContext) throws -> BuiltNode {
        let data = try c.constant(0, "data (Gather runs only on constants and shapes)")
        let indices = try c.constant(1, "indices")
        let axis = try normalizedAxis(try c.int("axis", default: 0), rank: max(data.dims.count, 1), c)
        guard data.dims.count == 1, axis == 0 else { throw c.unsupported("Gather on constants above rank 1") }
        let n = data.dims[0]
        let picked = try indices.intValues.map { i -> Int in
            let j = i < 0 ? i + n : i
            guard j >= 0 && j < n else { throw c.failure("index \(i) out of range \(n)") }
            return j
        }
        var out = data
        out.dims = indices.dims
        if data.isFloatingPoint { out.floats = picked.map { data.floats[$0] } } else { out.ints = picked.map { data.ints[$0] } }
        return .constant(out)
    }

    static func unsqueeze(_ c: NodeContext) throws -> BuiltNode {
        let data = try c.constant(0, "data (Unsqueeze runs only on constants and shapes)")
        let axes = c.opset >= 13 ? try c.constant(1, "axes").intValues : (try c.ints("axes") ?? [])
        let rank = data.dims.count + axes.count
        let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        var dims: [Int] = []
        var source = data.dims.makeIterator()
        for i in 0..<rank { dims.append(normalized.contains(i) ? 1 : (source.next() ?? 1)) }
        var out = data
        out.dims = dims
        return .constant(out)
    }

    static func squeeze(_ c: NodeContext) throws -> BuiltNode {
        let data = try c.constant(0, "data (Squeeze runs only on constants and shapes)")
        let axes: [Int]? = c.opset >= 13 ? try c.optionalConstant(1, "axes")?.intValues : try c.ints("axes")
        let rank = data.dims.count
        let drop = Set((axes ?? data.dims.indices.filter { data.dims[$0] == 1 }).map { $0 < 0 ? $0 + rank : $0 })
        var out = data
        out.dims = data.dims.indices.filter { !drop.contains($0) }.map { data.dims[$0] }
        return .constant(out)
    }

    static func cast(_ c: NodeContext) throws -> BuiltNode {
        let data = try c.constant(0, "data (Cast runs only on constants and shapes)")
        let to = try c.int("to", default: 1)
        guard let type = ONNXDataType(rawValue: to) else { throw c.unsupported("Cast to type \(to)") }
        if type.isFloatingPoint { return .constant(ONNXTensor(name: data.name, dims: data.dims, floats: data.floatValues)) }
        return .constant(ONNXTensor(name: data.name, dims: data.dims, ints: data.intValues.map { Int64($0) }))
    }
}
