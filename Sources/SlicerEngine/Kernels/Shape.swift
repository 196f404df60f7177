/// Ops that only move values. On data they become aliases of their input's
/// memory with a new shape (Flatten, Reshape, Identity, Dropout, Squeeze,
/// Unsqueeze, Cast between float types) or a copy (Gather); Shape and Constant
/// give constants. On constants every one of them is evaluated while planning
/// (ConstantFolder), as PyTorch's exports use them to compute Reshape targets.
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
        let shape = try c.runtimeShape(0)
        let allowZero = try c.int("allowzero", default: 0) != 0
        let out: [Int]
        // A file with a fixed batch of B images (torch.onnx.export without dynamic axes
        // gives B = 1) has its Reshape targets folded to constants starting with B. Planned
        // for another batch, such a target still keeps each image's values in its own row:
        // reshape as the file would for B images, then put our batch back.
        if let fixed = c.fixedBatch, fixed > 0, target.first == fixed, shape.first != fixed {
            let asFiled = try resolve(target, from: [fixed] + shape.dropFirst(), allowZero: allowZero, c)
            out = [shape[0]] + asFiled.dropFirst()
        } else {
            out = try resolve(target, from: shape, allowZero: allowZero, c)
        }
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
        .alias(inputIndex: 0, shape: try c.runtimeShape(0))
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

    /// Gather of data along a non-batch axis (GoogLeNet's `x[:, 0]`); on constants it folds.
    static func gather(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let indices = try c.constant(1, "indices")
        let axis = try normalizedAxis(try c.int("axis", default: 0), rank: shape.count, c)
        guard axis > 0 else { throw c.unsupported("Gather along the batch axis") }
        let n = shape[axis]
        let picked = try indices.intValues.map { i -> Int in
            let j = i < 0 ? i + n : i
            guard j >= 0 && j < n else { throw c.failure("index \(i) out of range \(n)") }
            return j
        }
        let out = Array(shape[..<axis]) + indices.dims + Array(shape[(axis + 1)...])
        return .kernel(GatherKernel(outputShape: out, outer: product(shape[1..<axis]), axisLength: n,
                                    inner: product(shape[(axis + 1)...]), indices: picked), runtimeInputs: [0])
    }

    /// The axes of Squeeze/Unsqueeze: an attribute before opset 13, an optional input after.
    static func axes(_ c: NodeContext, _ input: ONNXTensor?) throws -> [Int]? {
        c.opset >= 13 ? input?.intValues : try c.ints("axes")
    }

    static func unsqueezed(_ dims: [Int], axes: [Int], _ c: NodeContext) throws -> [Int] {
        let rank = dims.count + axes.count
        let normalized = Set(try axes.map { try normalizedAxis($0, rank: rank, c) })
        guard normalized.count == axes.count else { throw c.failure("repeated axes \(axes)") }
        var source = dims.makeIterator()
        return (0..<rank).map { normalized.contains($0) ? 1 : (source.next() ?? 1) }
    }

    static func squeezed(_ dims: [Int], axes: [Int]?, _ c: NodeContext) throws -> [Int] {
        let drop = Set(try (axes ?? dims.indices.filter { dims[$0] == 1 }).map { try normalizedAxis($0, rank: dims.count, c) })
        for a in drop where dims[a] != 1 { throw c.failure("cannot squeeze axis \(a) of size \(dims[a])") }
        return dims.indices.filter { !drop.contains($0) }.map { dims[$0] }
    }

    static func unsqueeze(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let axes = try Self.axes(c, try c.optionalConstant(1, "axes")) ?? []
        // Checked here, not by the planner: at a batch of 1 the shape alone cannot tell.
        guard try !axes.contains(where: { try normalizedAxis($0, rank: shape.count + axes.count, c) == 0 }) else {
            throw c.unsupported("Unsqueeze before the batch axis")
        }
        let out = try unsqueezed(shape, axes: axes, c)
        return .alias(inputIndex: 0, shape: out)
    }

    static func squeeze(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        var axes = try Self.axes(c, try c.optionalConstant(1, "axes"))
        // Without axes every axis of size 1 goes, except the batch: data keeps it.
        if axes == nil { axes = shape.indices.dropFirst().filter { shape[$0] == 1 } }
        guard try !(axes ?? []).contains(where: { try normalizedAxis($0, rank: shape.count, c) == 0 }) else {
            throw c.unsupported("Squeeze of the batch axis")
        }
        return .alias(inputIndex: 0, shape: try squeezed(shape, axes: axes, c))
    }

    /// Cast of data: float to float moves nothing; to an integer type it would change the values.
    static func cast(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        let to = try c.int("to", default: 1)
        guard let type = ONNXDataType(rawValue: to), type.isFloatingPoint else {
            throw c.unsupported("Cast of data to type \(to) (only float types; integers only in shape computations)")
        }
        return .alias(inputIndex: 0, shape: shape)
    }
}
