/// Buffers handed to a kernel for one run.
///
/// Shapes were fixed when the plan was built for a batch capacity; `batch`
/// is the number of images actually present (≤ capacity), always the first
/// dimension of every runtime input and of the output.
public struct KernelIO {
    public let inputs: [UnsafeMutablePointer<Float>]
    public let output: UnsafeMutablePointer<Float>
    public let scratch: UnsafeMutablePointer<Float>
    public let batch: Int
}

/// One operator instance, built for known shapes, runnable many times.
///
/// Modelled on ONNX Runtime's kernel registry: each op is one small type
/// whose factory checks attributes and infers the output shape beside it.
public protocol Kernel: Sendable {
    /// Output shape at the plan's batch capacity.
    var outputShape: [Int] { get }
    /// Floats of scratch memory needed at the plan's batch capacity.
    var scratchCount: Int { get }
    /// The runtime input whose buffer the output may overwrite (elementwise ops).
    var inPlaceInput: Int? { get }
    /// True for kernels that are faster on many images per call (a matrix
    /// product with the batch as its rows); every other kernel treats each
    /// image on its own, and the executor may call it on a few at a time.
    var wantsWholeBatch: Bool { get }
    func run(_ io: KernelIO)
}

public extension Kernel {
    var scratchCount: Int { 0 }
    var inPlaceInput: Int? { nil }
    var wantsWholeBatch: Bool { false }
}

/// What a node's inputs are while the plan is built.
public enum PlanValue: Sendable {
    /// Known before any data arrives (initializers, Constant nodes, folded shapes).
    case constant(ONNXTensor)
    /// Computed per batch; the shape includes the batch dimension.
    case runtime(shape: [Int])

    var constant: ONNXTensor? { if case let .constant(t) = self { return t } else { return nil } }
    var runtimeShape: [Int]? { if case let .runtime(s) = self { return s } else { return nil } }
}

/// What a node factory returns.
public enum BuiltNode {
    /// A kernel reading the listed node inputs (indices into `node.inputs`) at run time.
    case kernel(Kernel, runtimeInputs: [Int])
    /// A value computed while planning.
    case constant(ONNXTensor)
    /// The output is input `index` with another shape and the same memory (Flatten, Reshape, Identity).
    case alias(inputIndex: Int, shape: [Int])
    /// One of the above per output, for operators with several outputs (Split).
    indirect case multiple([BuiltNode])
}

/// Everything a factory may ask about the node it builds.
public struct NodeContext {
    public let node: ONNXNode
    public let opset: Int
    public let file: String
    /// Aligned with `node.inputs`; nil where an optional input is omitted.
    public let inputs: [PlanValue?]
    /// The batch size the file declares for the graph input, when it fixes one.
    public var fixedBatch: Int? = nil

    public func failure(_ reason: String) -> EngineError {
        .invalidGraph(file: file, reason: "node '\(node.displayName)' (\(node.opType)): \(reason)")
    }

    public func unsupported(_ reason: String) -> EngineError {
        .unsupported(file: file, reason: "node '\(node.displayName)' (\(node.opType)): \(reason)")
    }

    public func input(_ index: Int) -> PlanValue? {
        index < inputs.count ? inputs[index] : nil
    }

    public func runtimeShape(_ index: Int) throws -> [Int] {
        guard let value = input(index) else { throw failure("missing input \(index)") }
        guard let shape = value.runtimeShape else {
            throw unsupported("input \(index) is a constant where data was expected")
        }
        return shape
    }

    public func constant(_ index: Int, _ what: String) throws -> ONNXTensor {
        guard let value = input(index) else { throw failure("missing \(what)") }
        guard let tensor = value.constant else {
            throw unsupported("\(what) must be a constant (initializer), not computed from data")
        }
        return tensor
    }

    public func optionalConstant(_ index: Int, _ what: String) throws -> ONNXTensor? {
        guard input(index) != nil else { return nil }
        return try constant(index, what)
    }

    public func int(_ name: String, default value: Int) throws -> Int {
        switch node.attributes[name] {
        case nil: return value
        case let .int(v)?: return v
        default: throw failure("attribute '\(name)' should be an int")
        }
    }

    public func float(_ name: String, default value: Float) throws -> Float {
        switch node.attributes[name] {
        case nil: return value
        case let .float(v)?: return v
        case let .int(v)?: return Float(v)
        default: throw failure("attribute '\(name)' should be a float")
        }
    }

    public func ints(_ name: String) throws -> [Int]? {
        switch node.attributes[name] {
        case nil: return nil
        case let .ints(v)?: return v
        case let .int(v)?: return [v]
        default: throw failure("attribute '\(name)' should be a list of ints")
        }
    }

    public func string(_ name: String, default value: String) throws -> String {
        switch node.attributes[name] {
        case nil: return value
        case let .string(v)?: return v
        default: throw failure("attribute '\(name)' should be a string")
        }
    }
}

/// Owns weights shared by every plan built from one model, so planning for
/// another batch size does not copy them.
public final class WeightBuffer: @unchecked Sendable {
    // Immutable after init; read concurrently by every worker.
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(_ values: [Float]) {
        count = values.count
        pointer = .allocate(capacity: max(count, 1))
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.initialize(from: base, count: count) }
        }
    }

    deinit { pointer.deallocate() }
}

@inline(__always) func product(_ dims: ArraySlice<Int>) -> Int { dims.reduce(1, *) }
@inline(__always) func product(_ dims: [Int]) -> Int { dims.reduce(1, *) }

/// Most values one image may have in any tensor (2^28 floats, 1 GiB): far above any
/// image classifier. Shapes from a damaged or hostile file are checked against it so
/// that size arithmetic cannot overflow (a trap in debug, undefined with -Ounchecked)
/// and no plan asks for terabytes.
let maxValuesPerImage = 1 << 28

/// The product of `dims`, or nil when a factor is negative, it overflows or exceeds `limit`.
func checkedProduct<C: Collection>(_ dims: C, limit: Int = maxValuesPerImage) -> Int? where C.Element == Int {
    var p = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (q, overflow) = p.multipliedReportingOverflow(by: d)
        guard !overflow, q <= limit else { return nil }
        p = q
    }
    return p
}

/// Normalises a possibly negative axis against a rank.
func normalizedAxis(_ axis: Int, rank: Int, _ context: NodeContext) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < rank else { throw context.failure("axis \(axis) out of range for rank \(rank)") }
    return a
}
