import Foundation

/// Element types of ONNX tensors that the importer can decode.
public enum ONNXDataType: Int, Sendable {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7
    case string = 8, bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13

    public var isFloatingPoint: Bool { self == .float || self == .float16 || self == .double }
}

/// A constant tensor from the file (initializer, Constant node or attribute).
///
/// Floating-point tensors are decoded into `floats`, integer and boolean
/// tensors into `ints`; the other array is empty.
public struct ONNXTensor: Sendable, Equatable {
    public var name: String
    public var dims: [Int]
    public var dataType: ONNXDataType
    public var floats: [Float]
    public var ints: [Int64]

    public init(name: String = "", dims: [Int], floats: [Float]) {
        self.name = name; self.dims = dims; self.dataType = .float; self.floats = floats; self.ints = []
    }

    public init(name: String = "", dims: [Int], ints: [Int64]) {
        self.name = name; self.dims = dims; self.dataType = .int64; self.floats = []; self.ints = ints
    }

    public var elementCount: Int { dims.reduce(1, *) }
    public var isFloatingPoint: Bool { dataType.isFloatingPoint }

    /// The values as floats whatever the stored type (for weights given as ints, rare).
    public var floatValues: [Float] { isFloatingPoint ? floats : ints.map { Float($0) } }
    /// The values as integers whatever the stored type (shapes, axes).
    public var intValues: [Int] { isFloatingPoint ? floats.map { Int($0) } : ints.map { Int($0) } }
}

public enum ONNXAttribute: Sendable, Equatable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(ONNXTensor)
    case floats([Float])
    case ints([Int])
    case strings([String])
    /// Subgraphs and other kinds we never need; kept so that an op using them
    /// is refused by name rather than misread.
    case unsupported(kind: Int)
}

public struct ONNXNode: Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: ONNXAttribute]

    /// The name used in messages: the node's own, else its first output.
    public var displayName: String {
        if !name.isEmpty { return name }
        return outputs.first ?? opType
    }
}

/// One dimension of a declared graph input or output.
public enum ONNXDimension: Sendable, Equatable {
    case value(Int)
    case symbolic(String)
    case unknown
}

public struct ONNXValueInfo: Sendable {
    public var name: String
    public var elementType: ONNXDataType?
    /// nil when the file declares no shape.
    public var dims: [ONNXDimension]?
}

public struct ONNXGraph: Sendable {
    public var name: String
    public var nodes: [ONNXNode]
    public var initializers: [String: ONNXTensor]
    public var inputs: [ONNXValueInfo]
    public var outputs: [ONNXValueInfo]
}

/// A decoded ONNX ModelProto.
public struct ONNXModel: Sendable {
    public var path: String
    public var irVersion: Int
    /// Version of the default ("" / "ai.onnx") operator set.
    public var opsetVersion: Int
    public var producerName: String
    public var producerVersion: String
    public var graph: ONNXGraph
    /// `metadata_props` in file order.
    public var metadata: [(key: String, value: String)]

    public func metadataValue(_ key: String) -> String? {
        metadata.first(where: { $0.key == key })?.value
    }

    /// Graph inputs that are not initializers (old exporters list weights as inputs too).
    public var dataInputs: [ONNXValueInfo] {
        graph.inputs.filter { graph.initializers[$0.name] == nil }
    }

    public init(contentsOf path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw EngineError.unreadable(file: path, reason: "no such file")
        }
        // Say what the path is when it is not a file to read: a FIFO or a
        // device would never end, and "not readable" would send the user
        // looking at permissions.
        var info = stat()
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFDIR: throw EngineError.unreadable(file: path, reason: "is a directory, expected an ONNX file")
            case S_IFIFO: throw EngineError.unreadable(file: path, reason: "is a FIFO, expected a regular file")
            case S_IFCHR, S_IFBLK: throw EngineError.unreadable(file: path, reason: "is a device, expected a regular file")
            default: throw EngineError.unreadable(file: path, reason: "is not a regular file")
            }
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EngineError.unreadable(file: path, reason: "permission denied or not a regular file")
        }
        try self.init(bytes: [UInt8](data), path: path)
    }

    public init(bytes: [UInt8], path: String = "<memory>") throws {
        guard !bytes.isEmpty else { throw EngineError.corrupt(file: path, reason: "empty file") }
        do {
            var decoder = ONNXDecoder(path: path)
            self = try decoder.decodeModel(ProtobufReader(bytes: bytes))
        } catch let error as ProtobufError {
            throw EngineError.corrupt(file: path, reason: error.description)
        }
    }

    init(path: String, irVersion: Int, opsetVersion: Int, producerName: String,
         producerVersion: String, graph: ONNXGraph, metadata: [(key: String, value: String)]) {
        self.path = path; self.irVersion = irVersion; self.opsetVersion = opsetVersion
        self.producerName = producerName; self.producerVersion = producerVersion
        self.graph = graph; self.metadata = metadata
    }
}

/// Decodes the ONNX messages we need from the wire format; unknown fields are skipped
/// as protobuf requires, so newer files with extra fields still load.
struct ONNXDecoder {
    let path: String

    mutating func decodeModel(_ reader: ProtobufReader) throws -> ONNXModel {
        var r = reader
        var irVersion = 0
        var opset: Int?
        var producerName = "", producerVersion = ""
        var graph: ONNXGraph?
        var metadata: [(key: String, value: String)] = []
        while let (field, wire) = try r.readKey() {
            switch field {
            case 1: try r.expect(wire, .varint); irVersion = Int(try r.readInt64())
            case 2: try r.expect(wire, .lengthDelimited); producerName = try r.readString()
            case 3: try r.expect(wire, .lengthDelimited); producerVersion = try r.readString()
            case 7: try r.expect(wire, .lengthDelimited); graph = try decodeGraph(try r.readMessage())
            case 8:
                try r.expect(wire, .lengthDelimited)
                var m = try r.readMessage()
                var domain = "", version = 0
                while let (f, w) = try m.readKey() {
                    switch f {
                    case 1: try m.expect(w, .lengthDelimited); domain = try m.readString()
                    case 2: try m.expect(w, .varint); version = Int(try m.readInt64())
                    default: try m.skip(w)
                    }
                }
                if domain.isEmpty || domain == "ai.onnx" { opset = version }
            case 14:
                try r.expect(wire, .lengthDelimited)
                var m = try r.readMessage()
                var key = "", value = ""
                while let (f, w) = try m.readKey() {
                    switch f {
                    case 1: try m.expect(w, .lengthDelimited); key = try m.readString()
                    case 2: try m.expect(w, .lengthDelimited); value = try m.readString()
                    default: try m.skip(w)
                    }
                }
                metadata.append((key, value))
            default: try r.skip(wire)
            }
        }
        guard let graph else { throw EngineError.corrupt(file: path, reason: "no graph in the model") }
        guard irVersion > 0 else { throw EngineError.corrupt(file: path, reason: "missing ir_version") }
        guard let opset else { throw EngineError.corrupt(file: path, reason: "no default-domain opset_import") }
        return ONNXModel(path: path, irVersion: irVersion, opsetVersion: opset, producerName: producerName,
                         producerVersion: producerVersion, graph: graph, metadata: metadata)
    }

    func decodeGraph(_ reader: ProtobufReader) throws -> ONNXGraph {
        var r = reader
        var graph = ONNXGraph(name: "", nodes: [], initializers: [:], inputs: [], outputs: [])
        while let (field, wire) = try r.readKey() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited); graph.nodes.append(try decodeNode(try r.readMessage()))
            case 2: try r.expect(wire, .lengthDelimited); graph.name = try r.readString()
            case 5:
                try r.expect(wire, .lengthDelimited)
                let tensor = try decodeTensor(try r.readMessage())
                graph.initializers[tensor.name] = tensor
            case 11: try r.expect(wire, .lengthDelimited); graph.inputs.append(try decodeValueInfo(try r.readMessage()))
            case 12: try r.expect(wire, .lengthDelimited); graph.outputs.append(try decodeValueInfo(try r.readMessage()))
            case 15: throw EngineError.unsupported(file: path, reason: "sparse initializers")
            default: try r.skip(wire)
            }
        }
        return graph
    }

    func decodeNode(_ reader: ProtobufReader) throws -> ONNXNode {
        var r = reader
        var node = ONNXNode(name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: [:])
        while let (field, wire) = try r.readKey() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited); node.inputs.append(try r.readString())
            case 2: try r.expect(wire, .lengthDelimited); node.outputs.append(try r.readString())
            case 3: try r.expect(wire, .lengthDelimited); node.name = try r.readString()
            case 4: try r.expect(wire, .lengthDelimited); node.opType = try r.readString()
            case 7: try r.expect(wire, .lengthDelimited); node.domain = try r.readString()
            case 5:
                try r.expect(wire, .lengthDelimited)
                let (name, value) = try decodeAttribute(try r.readMessage())
                node.attributes[name] = value
            default: try r.skip(wire)
            }
        }
        guard !node.opType.isEmpty else { throw EngineError.corrupt(file: path, reason: "node without op_type") }
        return node
    }

    func decodeAttribute(_ reader: ProtobufReader) throws -> (String, ONNXAttribute) {
        var r = reader
        var name = ""
        var type = 0
        var f: Float?, i: Int?, s: String?, t: ONNXTensor?
        var floats: [Float] = [], ints: [Int64] = [], strings: [String] = []
        var other: Int?
        while let (field, wire) = try r.readKey() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited); name = try r.readString()
            case 20: try r.expect(wire, .varint); type = Int(try r.readInt64())
            case 2: try r.expect(wire, .fixed32); f = try r.readFloat()
            case 3: try r.expect(wire, .varint); i = Int(try r.readInt64())
            case 4: try r.expect(wire, .lengthDelimited); s = try r.readString()
            case 5: try r.expect(wire, .lengthDelimited); t = try decodeTensor(try r.readMessage())
            case 7: try r.readFloats(wire: wire, into: &floats)
            case 8: try r.readInt64s(wire: wire, into: &ints)
            case 9: try r.expect(wire, .lengthDelimited); strings.append(try r.readString())
            case 6, 10, 11, 22, 23, 14, 15: other = field; try r.skip(wire)
            default: try r.skip(wire)
            }
        }
        // Old files may omit `type`; then the field that is present decides.
        switch type {
        case 1: return (name, .float(f ?? 0))
        case 2: return (name, .int(i ?? 0))
        case 3: return (name, .string(s ?? ""))
        case 4:
            guard let t else { throw EngineError.corrupt(file: path, reason: "tensor attribute '\(name)' without a tensor") }
            return (name, .tensor(t))
        case 6: return (name, .floats(floats))
        case 7: return (name, .ints(ints.map { Int($0) }))
        case 8: return (name, .strings(strings))
        case 0:
            if let f { return (name, .float(f)) }
            if let i { return (name, .int(i)) }
            if let s { return (name, .string(s)) }
            if let t { return (name, .tensor(t)) }
            if !floats.isEmpty { return (name, .floats(floats)) }
            if !ints.isEmpty { return (name, .ints(ints.map { Int($0) })) }
            if !strings.isEmpty { return (name, .strings(strings)) }
            return (name, .unsupported(kind: other ?? 0))
        default: return (name, .unsupported(kind: type))
        }
    }

    func decodeValueInfo(_ reader: ProtobufReader) throws -> ONNXValueInfo {
        var r = reader
        var info = ONNXValueInfo(name: "", elementType: nil, dims: nil)
        while let (field, wire) = try r.readKey() {
            switch field {
            case 1: try r.expect(wire, .lengthDelimited); info.name = try r.readString()
            case 2:
                try r.expect(wire, .lengthDelimited)
                var typeProto = try r.readMessage()
                while let (f, w) = try typeProto.readKey() {
                    guard f == 1 else { try typeProto.skip(w); continue }
                    try typeProto.expect(w, .lengthDelimited)
                    var tensorType = try typeProto.readMessage()
                    while let (tf, tw) = try tensorType.readKey() {
                        switch tf {
                        case 1:
                            try tensorType.expect(tw, .varint)
                            info.elementType = ONNXDataType(rawValue: Int(try tensorType.readInt64()))
                        case 2:
                            try tensorType.expect(tw, .lengthDelimited)
                            info.dims = try decodeShape(try tensorType.readMessage())
                        default: try tensorType.skip(tw)
                        }
                    }
                }
            default: try r.skip(wire)
            }
        }
        return info
    }

    func decodeShape(_ reader: ProtobufReader) throws -> [ONNXDimension] {
        var r = reader
        var dims: [ONNXDimension] = []
        while let (field, wire) = try r.readKey() {
            guard field == 1 else { try r.skip(wire); continue }
            try r.expect(wire, .lengthDelimited)
            var d = try r.readMessage()
            var dim = ONNXDimension.unknown
            while let (f, w) = try d.readKey() {
                switch f {
                case 1: try d.expect(w, .varint); dim = .value(Int(try d.readInt64()))
                case 2: try d.expect(w, .lengthDelimited); dim = .symbolic(try d.readString())
                default: try d.skip(w)
                }
            }
            dims.append(dim)
        }
        return dims
    }

    func decodeTensor(_ reader: ProtobufReader) throws -> ONNXTensor {
        var r = reader
        var name = ""
        var dims: [Int64] = []
        var typeCode = 0
        var raw: ArraySlice<UInt8>?
        var floatData: [Float] = [], doubleData: [Double] = [], intData: [Int64] = [], int64Data: [Int64] = []
        var external = false
        while let (field, wire) = try r.readKey() {
            switch field {
            case 1: try r.readInt64s(wire: wire, into: &dims)
            case 2: try r.expect(wire, .varint); typeCode = Int(try r.readInt64())
            case 4: try r.readFloats(wire: wire, into: &floatData)
            case 5: try r.readInt64s(wire: wire, into: &intData)  // int32_data is varint-encoded too
            case 7: try r.readInt64s(wire: wire, into: &int64Data)
            case 8: try r.expect(wire, .lengthDelimited); name = try r.readString()
            case 9: try r.expect(wire, .lengthDelimited); raw = try r.readBytes()
            case 10: try r.readDoubles(wire: wire, into: &doubleData)
            case 13: try r.skip(wire); external = true
            case 14: try r.expect(wire, .varint); if try r.readInt64() == 1 { external = true }
            default: try r.skip(wire)
            }
        }
        let label = name.isEmpty ? "a tensor" : "tensor '\(name)'"
        if external {
            throw EngineError.unsupported(file: path, reason: "\(label) keeps its data in an external file; re-export with the weights inside the model")
        }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw EngineError.corrupt(file: path, reason: "\(label) has a negative dimension") }
        guard let type = ONNXDataType(rawValue: typeCode) else {
            throw EngineError.unsupported(file: path, reason: "\(label) has element type \(typeCode)")
        }
        let shape = dims.map { Int($0) }
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p < 1 << 34 else { throw EngineError.corrupt(file: path, reason: "\(label) is impossibly large") }
            count = p
        }
        var tensor = ONNXTensor(name: name, dims: shape, floats: [])
        tensor.dataType = type
        if let raw {
            let size: Int
            switch type {
            case .float, .int32, .uint32: size = 4
            case .double, .int64, .uint64: size = 8
            case .float16, .int16, .uint16: size = 2
            case .uint8, .int8, .bool: size = 1
            case .string: throw EngineError.unsupported(file: path, reason: "\(label) holds strings")
            }
            guard raw.count == count * size else {
                throw EngineError.corrupt(file: path, reason: "\(label) has \(raw.count) bytes of raw data for \(count) elements of \(size) bytes")
            }
            tensor.decodeRaw(raw, elementSize: size)
        } else {
            switch type {
            case .float: tensor.floats = floatData
            case .double: tensor.floats = doubleData.map { Float($0) }
            case .float16: tensor.floats = intData.map { Float(Float16(bitPattern: UInt16(truncatingIfNeeded: $0))) }
            case .int64: tensor.ints = int64Data
            case .int32, .int16, .int8, .uint16, .uint8, .bool: tensor.ints = intData
            case .uint32, .uint64: tensor.ints = int64Data.isEmpty ? intData : int64Data
            case .string: throw EngineError.unsupported(file: path, reason: "\(label) holds strings")
            }
            let stored = type.isFloatingPoint ? tensor.floats.count : tensor.ints.count
            guard stored == count else {
                throw EngineError.corrupt(file: path, reason: "\(label) has \(stored) values for shape \(shape)")
            }
        }
        return tensor
    }
}

extension ONNXTensor {
    /// Decodes little-endian raw bytes (the encoding ONNX mandates for raw_data).
    mutating func decodeRaw(_ raw: ArraySlice<UInt8>, elementSize: Int) {
        raw.withUnsafeBytes { buffer in
            let count = buffer.count / max(elementSize, 1)
            switch dataType {
            case .float:
                floats = (0..<count).map { Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            case .double:
                floats = (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) }
            case .float16:
                floats = (0..<count).map { Float(Float16(bitPattern: UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
            case .int64, .uint64:
                ints = (0..<count).map { Int64(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            case .int32:
                ints = (0..<count).map { Int64(Int32(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
            case .uint32:
                ints = (0..<count).map { Int64(UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            case .int16:
                ints = (0..<count).map { Int64(Int16(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self))) }
            case .uint16:
                ints = (0..<count).map { Int64(UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
            case .int8:
                ints = (0..<count).map { Int64(Int8(bitPattern: buffer[$0])) }
            case .uint8, .bool:
                ints = (0..<count).map { Int64(buffer[$0]) }
            case .string:
                break
            }
        }
    }
}
