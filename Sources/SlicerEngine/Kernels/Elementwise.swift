/// Add, Sub, Mul, Div with numpy broadcasting; either operand may be a constant.
struct BinaryKernel: Kernel {
    enum Op: Sendable { case add, sub, mul, div }
    /// How operand `b` (after broadcasting) lines up with operand `a`.
    enum Layout: Sendable {
        /// Same shape.
        case same
        /// The smaller operand repeats every `period` elements (e.g. a bias over the last axis).
        case repeatEvery(period: Int)
        /// The smaller operand holds one value per block of `block` elements, cycling
        /// through `count` values (e.g. a [C,1,1] per-channel constant).
        case perBlock(block: Int, count: Int)
        /// Anything else: strides per output axis (0 where broadcast).
        case general(aStrides: [Int], bStrides: [Int])

        var isGeneralOrSame: Bool {
            switch self {
            case .same, .general: return true
            case .repeatEvery, .perBlock: return false
            }
        }
    }

    let op: Op
    let outputShape: [Int]
    let layout: Layout
    /// Runtime input indices are [0] or [0, 1]; `constant` stands in for the missing one.
    let constant: [Float]?
    /// True when the constant is the left operand (matters for Sub and Div).
    let constantOnLeft: Bool
    /// Whether the large (output-shaped) operand is the left one.
    let bigIsLeft: Bool
    var inPlaceInput: Int? {
        if case .general = layout { return nil }
        return constant == nil ? (bigIsLeft ? 0 : 1) : 0
    }

    @inline(__always)
    private func apply(_ x: Float, _ y: Float) -> Float {
        switch op {
        case .add: return x + y
        case .sub: return x - y
        case .mul: return x * y
        case .div: return x / y
        }
    }

    @inline(__always)
    private func apply(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
        switch op {
        case .add: return x + y
        case .sub: return x - y
        case .mul: return x * y
        case .div: return x / y
        }
    }

    func run(_ io: KernelIO) {
        let total = io.batch * product(outputShape.dropFirst())
        if let constant {
            constant.withUnsafeBufferPointer { cst in
                let c = UnsafeMutablePointer(mutating: cst.baseAddress!)
                if constantOnLeft { combine(c, io.inputs[0], io.output, total: total, bigIsLeft: false) }
                else { combine(io.inputs[0], c, io.output, total: total, bigIsLeft: true) }
            }
        } else {
            combine(io.inputs[0], io.inputs[1], io.output, total: total, bigIsLeft: bigIsLeft)
        }
    }

    private func combine(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
                         _ y: UnsafeMutablePointer<Float>, total: Int, bigIsLeft: Bool) {
        switch layout {
        case .same:
            switch op {
            case .add: zipElements(a, b, y, count: total, vector: +, scalar: +)
            case .sub: zipElements(a, b, y, count: total, vector: -, scalar: -)
            case .mul: zipElements(a, b, y, count: total, vector: *, scalar: *)
            case .div: zipElements(a, b, y, count: total, vector: /, scalar: /)
            }
        case let .repeatEvery(period):
            var i = 0
            while i < total {
                let span = min(period, total - i)
                let (left, right) = bigIsLeft ? (a + i, b) : (a, b + i)
                zipElements(left, right, y + i, count: span, vector: { apply($0, $1) }, scalar: { apply($0, $1) })
                i += period
            }
        case let .perBlock(block, count):
            var i = 0, k = 0
            while i < total {
                if bigIsLeft {
                    let v = b[k], vv = SIMD16<Float>(repeating: v)
                    mapElements(a + i, y + i, count: block, vector: { apply($0, vv) }, scalar: { apply($0, v) })
                } else {
                    let v = a[k], vv = SIMD16<Float>(repeating: v)
                    mapElements(b + i, y + i, count: block, vector: { apply(vv, $0) }, scalar: { apply(v, $0) })
                }
                i += block
                k += 1
                if k == count { k = 0 }
            }
        case let .general(aStrides, bStrides):
            // Odometer over the output index; the batch axis is the only one that shrinks.
            let rank = outputShape.count
            var index = [Int](repeating: 0, count: rank)
            var ao = 0, bo = 0
            for i in 0..<total {
                y[i] = apply(a[ao], b[bo])
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    ao += aStrides[axis]; bo += bStrides[axis]
                    if index[axis] < outputShape[axis] || axis == 0 { break }
                    ao -= aStrides[axis] * index[axis]; bo -= bStrides[axis] * index[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
    }

    static func broadcast(_ a: [Int], _ b: [Int], _ c: NodeContext) throws -> [Int] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        return try (0..<rank).map { i in
            if pa[i] == pb[i] || pb[i] == 1 { return pa[i] }
            if pa[i] == 1 { return pb[i] }
            throw c.failure("shapes \(a) and \(b) do not broadcast")
        }
    }

    static func strides(of shape: [Int], in output: [Int]) -> [Int] {
        let padded = Array(repeating: 1, count: output.count - shape.count) + shape
        var strides = [Int](repeating: 0, count: output.count)
        var s = 1
        for i in stride(from: output.count - 1, through: 0, by: -1) {
            strides[i] = padded[i] == 1 ? 0 : s
            s *= padded[i]
        }
        return strides
    }

    /// Picks a fast layout that is exact for these shapes, or nil when only the general one is.
    static func layout(big: [Int], small: [Int], output: [Int]) -> Layout? {
        if big == small { return .same }
        let padded = Array(repeating: 1, count: output.count - small.count) + small
        // Trailing block of the output that `small` covers fully.
        var k = output.count
        while k > 0 && padded[k - 1] == output[k - 1] { k -= 1 }
        if padded[..<k].allSatisfy({ $0 == 1 }) {
            return .repeatEvery(period: product(output[k...]))
        }
        // small = [..., C, 1, 1]: one value per block of the trailing axes.
        var t = output.count
        while t > 0 && padded[t - 1] == 1 { t -= 1 }
        var s = t
        while s > 0 && padded[s - 1] == output[s - 1] { s -= 1 }
        if padded[..<s].allSatisfy({ $0 == 1 }) && s < t {
            return .perBlock(block: product(output[t...]), count: product(output[s..<t]))
        }
        return nil
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let op: Op
        switch c.node.opType {
        case "Add": op = .add
        case "Sub": op = .sub
        case "Mul": op = .mul
        case "Div": op = .div
        default: throw c.unsupported("not a binary op")
        }
        guard let left = c.input(0), let right = c.input(1) else { throw c.failure("needs two inputs") }
        switch (left, right) {
        case let (.runtime(a), .runtime(b)):
            let out = try broadcast(a, b, c)
            guard a.count == out.count, b.count == out.count, out[0] == a[0], out[0] == b[0] else {
                throw c.unsupported("broadcasting data \(a) with \(b) across the batch axis")
            }
            let general = Layout.general(aStrides: strides(of: a, in: out), bStrides: strides(of: b, in: out))
            var layout = general
            var bigIsLeft = true
            // The cheap layouts need one operand of the output's shape and the
            // other constant over the batch (its batch extent 1).
            if a == b {
                layout = .same
            } else if a == out && b[0] == 1 {
                layout = Self.layout(big: a, small: b, output: out) ?? general
            } else if b == out && a[0] == 1 {
                bigIsLeft = false
                layout = Self.layout(big: b, small: a, output: out) ?? general
            }
            if case .general = layout { bigIsLeft = true }
            return .kernel(BinaryKernel(op: op, outputShape: out, layout: layout, constant: nil,
                                        constantOnLeft: false, bigIsLeft: bigIsLeft), runtimeInputs: [0, 1])
        case let (.runtime(a), .constant(t)), let (.constant(t), .runtime(a)):
            let constantOnLeft = left.constant != nil
            let out = try broadcast(a, t.dims, c)
            guard out == a else {
                throw c.unsupported("a constant of shape \(t.dims) that enlarges data of shape \(a)")
            }
            var values = t.floatValues
            var small = t.dims
            // A constant with a leading batch axis of 1 is fine; one with the full batch is not.
            if small.count == out.count && small[0] != 1 {
                throw c.unsupported("a constant that spans the batch axis")
            }
            if values.isEmpty { values = [0]; small = [] }
            guard let layout = Self.layout(big: out, small: small, output: out) else {
                throw c.unsupported("broadcasting a constant of shape \(t.dims) over \(a)")
            }
            return .kernel(BinaryKernel(op: op, outputShape: out, layout: layout, constant: values,
                                        constantOnLeft: constantOnLeft, bigIsLeft: !constantOnLeft), runtimeInputs: [constantOnLeft ? 1 : 0])
        case (.constant, .constant):
            throw c.unsupported("arithmetic on two constants")
        }
    }
}

/// Concat of data along a non-batch axis.
struct ConcatKernel: Kernel {
    let outputShape: [Int]
    /// Elements each input contributes per outer step.
    let chunks: [Int]

    func run(_ io: KernelIO) {
        let outer = io.batch * product(outputShape[1..<axisIndex])
        let step = chunks.reduce(0, +)
        for o in 0..<outer {
            var offset = o * step
            for (i, chunk) in chunks.enumerated() {
                (io.output + offset).update(from: io.inputs[i] + o * chunk, count: chunk)
                offset += chunk
            }
        }
    }

    let axisIndex: Int

    static func make(_ c: NodeContext) throws -> BuiltNode {
        guard let axisValue = c.node.attributes["axis"], case let .int(rawAxis) = axisValue else {
            throw c.failure("missing attribute 'axis'")
        }
        let inputs = c.node.inputs.indices.filter { !c.node.inputs[$0].isEmpty }
        // Constants alone fold while planning (ConstantFolder); with data, every input is data.
        let shapes = try inputs.map { try c.runtimeShape($0) }
        let rank = shapes[0].count
        let axis = try normalizedAxis(rawAxis, rank: rank, c)
        guard axis > 0 else { throw c.unsupported("Concat along the batch axis") }
        for s in shapes where s.count != rank || (0..<rank).contains(where: { $0 != axis && s[$0] != shapes[0][$0] }) {
            throw c.failure("inputs \(shapes) differ outside axis \(axis)")
        }
        var out = shapes[0]
        out[axis] = shapes.reduce(0) { $0 + $1[axis] }
        let chunks = shapes.map { product($0[axis...]) }
        return .kernel(ConcatKernel(outputShape: out, chunks: chunks, axisIndex: axis), runtimeInputs: inputs)
    }
}

/// Sum of any number of operands with NumPy broadcasting, added left to right.
struct SumKernel: Kernel {
    struct Operand: Sendable {
        /// Index into the runtime inputs, or nil for a constant.
        let runtime: Int?
        let constant: WeightBuffer?
        /// Strides in the output's index space, 0 along broadcast axes.
        let strides: [Int]
    }

    let outputShape: [Int]
    let operands: [Operand]
    /// Every operand is data of the output's shape: vectorised pairwise adds.
    let allSame: Bool
    var inPlaceInput: Int? { allSame ? 0 : nil }

    func run(_ io: KernelIO) {
        let total = io.batch * product(outputShape.dropFirst())
        if allSame {
            zipElements(io.inputs[0], io.inputs[1], io.output, count: total, vector: +, scalar: +)
            for k in 2..<operands.count {
                zipElements(io.output, io.inputs[k], io.output, count: total, vector: +, scalar: +)
            }
            return
        }
        let rank = outputShape.count
        var index = [Int](repeating: 0, count: rank)
        var offsets = [Int](repeating: 0, count: operands.count)
        let sources: [UnsafePointer<Float>] = operands.map { op in
            UnsafePointer(op.runtime.map { io.inputs[$0] } ?? op.constant?.pointer ?? io.output)
        }
        for i in 0..<total {
            var acc = sources[0][offsets[0]]
            for k in 1..<operands.count { acc += sources[k][offsets[k]] }
            io.output[i] = acc
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                for k in operands.indices { offsets[k] += operands[k].strides[axis] }
                if index[axis] < outputShape[axis] || axis == 0 { break }
                for k in operands.indices { offsets[k] -= operands[k].strides[axis] * index[axis] }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let present = c.inputs.indices.filter { c.inputs[$0] != nil }
        guard !present.isEmpty else { throw c.failure("no inputs") }
        let shapes: [[Int]] = present.map { i in
            switch c.inputs[i] {
            case let .runtime(shape)?: return shape
            case let .constant(t)?: return t.dims
            case nil: return []
            }
        }
        let out = try ConstantFolder.broadcastShape(shapes, c)
        let runtime = present.filter { c.inputs[$0]?.runtimeShape != nil }
        guard let firstData = runtime.first, let batch = c.inputs[firstData]?.runtimeShape?.first, out.first == batch else {
            throw c.unsupported("Sum whose operands do not keep the batch axis first")
        }
        if present.count == 1 { return .alias(inputIndex: present[0], shape: out) }
        var operands: [Operand] = []
        for (k, i) in present.enumerated() {
            let shape = shapes[k]
            if shape.count == out.count, shape[0] != 1, shape[0] != batch {
                throw c.failure("operand \(i) of shape \(shape) spans the batch axis")
            }
            if let r = runtime.firstIndex(of: i) {
                guard shape.count == out.count, shape[0] == batch else {
                    throw c.unsupported("data of shape \(shape) broadcast across the batch axis")
                }
                operands.append(Operand(runtime: r, constant: nil, strides: BinaryKernel.strides(of: shape, in: out)))
            } else {
                if shape.count == out.count && shape[0] != 1 { throw c.unsupported("a constant that spans the batch axis") }
                let values = c.inputs[i]?.constant?.floatValues ?? []
                operands.append(Operand(runtime: nil, constant: WeightBuffer(values.isEmpty ? [0] : values),
                                        strides: values.isEmpty ? out.map { _ in 0 } : BinaryKernel.strides(of: shape, in: out)))
            }
        }
        let allSame = runtime.count == present.count && shapes.allSatisfy { $0 == out }
        return .kernel(SumKernel(outputShape: out, operands: operands, allSame: allSame), runtimeInputs: runtime)
    }
}
