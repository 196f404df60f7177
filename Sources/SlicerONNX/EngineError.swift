/// Errors raised while loading, checking or running a model.
///
/// Every case renders as one line that names the file (or node) and the
/// problem, because that line is what the command line prints and what the
/// app shows in its message box.
public enum EngineError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be read at all.
    case unreadable(file: String, reason: String)
    /// The bytes are not a well-formed ONNX protobuf.
    case corrupt(file: String, reason: String)
    /// The model is well-formed but uses something we refuse to run.
    case unsupported(file: String, reason: String)
    /// The graph is inconsistent (missing inputs, cycles, bad shapes).
    case invalidGraph(file: String, reason: String)
    /// Input data does not fit the model.
    case shapeMismatch(file: String, reason: String)
    /// A request that makes no sense for this model (unknown tap, bad index).
    case invalidRequest(String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .corrupt(file, reason): return "\(file): corrupt ONNX file: \(reason)"
        case let .unsupported(file, reason): return "\(file): unsupported: \(reason)"
        case let .invalidGraph(file, reason): return "\(file): invalid graph: \(reason)"
        case let .shapeMismatch(file, reason): return "\(file): shape mismatch: \(reason)"
        case let .invalidRequest(reason): return reason
        }
    }
}
