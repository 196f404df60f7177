import Foundation
import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

// Bad files and bad graphs: every case must throw an EngineError that names the
// file and/or the node, and nothing may crash. The ONNX files are written here by
// a small protobuf encoder, so that the tests control the exact wire encoding.

// MARK: - A protobuf encoder

private struct ProtoWriter {
    var data: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { data.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        data.append(UInt8(v))
    }
    mutating func key(_ field: Int, _ wire: Int) { varint(UInt64(field << 3 | wire)) }
    /// A varint field (negative values as ten-byte two's complement, as protobuf does for int64).
    mutating func int(_ field: Int, _ value: Int64) { key(field, 0); varint(UInt64(bitPattern: value)) }
    mutating func fixed32(_ field: Int, _ value: UInt32) {
        key(field, 5)
        for k in 0..<4 { data.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(k)))) }
    }
    mutating func fixed64(_ field: Int, _ value: UInt64) {
        key(field, 1)
        for k in 0..<8 { data.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(k)))) }
    }
    mutating func float(_ field: Int, _ value: Float) { fixed32(field, value.bitPattern) }
    mutating func lengthDelimited(_ field: Int, _ bytes: [UInt8]) {
        key(field, 2); varint(UInt64(bytes.count)); data += bytes
    }
    mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var m = ProtoWriter()
        build(&m)
        lengthDelimited(field, m.data)
    }
    mutating func packedVarints(_ field: Int, _ values: [Int64]) {
        var m = ProtoWriter()
        for v in values { m.varint(UInt64(bitPattern: v)) }
        lengthDelimited(field, m.data)
    }
    mutating func packedFloats(_ field: Int, _ values: [Float]) { lengthDelimited(field, littleEndian(values)) }
    mutating func packedDoubles(_ field: Int, _ values: [Double]) {
        var bytes: [UInt8] = []
        for v in values { for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt64(k)))) } }
        lengthDelimited(field, bytes)
    }
    /// Fields no ONNX message defines, one of each wire type: a decoder must skip them.
    mutating func unknownFields() {
        int(1900, 123_456_789)
        fixed64(1901, 0xDEAD_BEEF_0BAD_F00D)
        string(1902, "ignore me")
        fixed32(1903, 42)
        message(1904) { $0.int(1, -1); $0.string(2, "nested") }
    }
}

private func littleEndian(_ values: [Float]) -> [UInt8] {
    var bytes: [UInt8] = []
    for v in values { for k in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt32(k)))) } }
    return bytes
}

// MARK: - ONNX messages on the wire

private struct WireTensor {
    enum Storage { case raw, packed, unpacked, doubles }
    var name: String
    var dims: [Int64]
    var floats: [Float] = []
    var int64s: [Int64]? = nil
    var storage: Storage = .raw
    var packedDims = true
    var dataType: Int64?
    var dataLocation: Int64?
    var externalData = false
    var rawOverride: [UInt8]?
    var unknown = false

    func encode(_ w: inout ProtoWriter) {
        if packedDims { w.packedVarints(1, dims) } else { for d in dims { w.int(1, d) } }
        let isInt = int64s != nil
        w.int(2, dataType ?? (isInt ? 7 : (storage == .doubles ? 11 : 1)))
        w.string(8, name)
        if unknown { w.unknownFields() }
        if let rawOverride {
            w.lengthDelimited(9, rawOverride)
        } else if let ints = int64s {
            switch storage {
            case .raw:
                var bytes: [UInt8] = []
                for v in ints { for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: v) >> (8 * UInt64(k)))) } }
                w.lengthDelimited(9, bytes)
            case .packed, .doubles: w.packedVarints(7, ints)
            case .unpacked: for v in ints { w.int(7, v) }
            }
        } else if !externalData && dataLocation != 1 {
            switch storage {
            case .raw: w.lengthDelimited(9, littleEndian(floats))
            case .packed: w.packedFloats(4, floats)
            case .unpacked: for v in floats { w.float(4, v) }
            case .doubles: w.packedDoubles(10, floats.map(Double.init))
            }
        }
        if externalData {
            w.message(13) { $0.string(1, "location"); $0.string(2, "weights.bin") }
            w.message(13) { $0.string(1, "offset"); $0.string(2, "0") }
        }
        if let dataLocation { w.int(14, dataLocation) }
    }
}

private enum WireAttribute {
    case int(Int64), ints([Int64], packed: Bool), float(Float), string(String), tensor(WireTensor)
}

private struct WireNode {
    var name: String
    var op: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [(String, WireAttribute)] = []
    var domain: String?
    var unknown = false

    func encode(_ w: inout ProtoWriter) {
        for i in inputs { w.string(1, i) }
        for o in outputs { w.string(2, o) }
        if !name.isEmpty { w.string(3, name) }
        if !op.isEmpty { w.string(4, op) }
        if unknown { w.unknownFields() }
        for (name, value) in attributes {
            w.message(5) { a in
                a.string(1, name)
                switch value {
                case let .int(v): a.int(3, v); a.int(20, 2)
                case let .ints(v, packed):
                    if packed { a.packedVarints(8, v) } else { for x in v { a.int(8, x) } }
                    a.int(20, 7)
                case let .float(v): a.float(2, v); a.int(20, 1)
                case let .string(s): a.string(4, s); a.int(20, 3)
                case let .tensor(t): a.message(5) { t.encode(&$0) }; a.int(20, 4)
                }
                if unknown { a.unknownFields() }
            }
        }
        if let domain { w.string(7, domain) }
    }
}

private enum WireDim { case value(Int64), param(String) }

private struct WireValueInfo {
    var name: String
    var elementType: Int64 = 1
    var dims: [WireDim]?

    func encode(_ w: inout ProtoWriter, unknown: Bool) {
        w.string(1, name)
        w.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, elementType)
                if let dims {
                    tensor.message(2) { shape in
                        for d in dims {
                            shape.message(1) { dim in
                                switch d {
                                case let .value(v): dim.int(1, v)
                                case let .param(p): dim.string(2, p)
                                }
                                if unknown { dim.string(3, "denotation") }
                            }
                        }
                    }
                }
                if unknown { tensor.unknownFields() }
            }
        }
        if unknown { w.string(3, "doc string"); w.unknownFields() }
    }
}

private struct WireModel {
    var irVersion: Int64? = 8
    var opset: Int64? = 13
    var producer = "BadInputTests"
    var nodes: [WireNode] = []
    var initializers: [WireTensor] = []
    var inputs: [WireValueInfo] = []
    var outputs: [WireValueInfo] = []
    var metadata: [(String, String)] = []
    var hasGraph = true
    var unknown = false

    func bytes() -> [UInt8] {
        var w = ProtoWriter()
        if let irVersion { w.int(1, irVersion) }
        w.string(2, producer)
        w.string(3, "0.1")
        if unknown { w.unknownFields() }
        if hasGraph {
            w.message(7) { g in
                for n in nodes { g.message(1) { n.encode(&$0) } }
                g.string(2, "graph")
                for t in initializers { g.message(5) { t.encode(&$0) } }
                if unknown { g.unknownFields() }
                for i in inputs { g.message(11) { i.encode(&$0, unknown: unknown) } }
                for o in outputs { g.message(12) { o.encode(&$0, unknown: unknown) } }
            }
        }
        w.message(8) { $0.string(1, "com.example.ops"); $0.int(2, 1) }
        if let opset { w.message(8) { $0.string(1, ""); $0.int(2, opset); if unknown { $0.unknownFields() } } }
        for (k, v) in metadata { w.message(14) { $0.string(1, k); $0.string(2, v) } }
        return w.data
    }
}

// MARK: - The reference model

private let modelPath = "/tmp/bad-input-tests/model.onnx"

private let convWeights: [Float] = (0..<24).map { Float(($0 * 7) % 11) / 10 - 0.5 }
private let convBias: [Float] = [0.25, -0.5, 0.125]

/// x [N,2,3,3] → Conv (2x2, W as raw_data, B as float_data) → Relu → Mul by a double
/// scalar → Reshape to [N, 12] with an int64 target [0, −1].
private func referenceModel(unknown: Bool = false, packed: Bool = true, rawWeights: Bool = true) -> WireModel {
    var m = WireModel()
    m.unknown = unknown
    m.inputs = [WireValueInfo(name: "x", dims: [.param("N"), .value(2), .value(3), .value(3)])]
    m.outputs = [WireValueInfo(name: "y", dims: [.param("N"), .value(12)])]
    m.initializers = [
        WireTensor(name: "W", dims: [3, 2, 2, 2], floats: convWeights, storage: rawWeights ? .raw : (packed ? .packed : .unpacked),
                   packedDims: !packed, unknown: unknown),
        WireTensor(name: "B", dims: [3], floats: convBias, storage: packed ? .packed : .unpacked, packedDims: packed, unknown: unknown),
        WireTensor(name: "half", dims: [], floats: [0.5], storage: .doubles, unknown: unknown),
        WireTensor(name: "target", dims: [2], int64s: [0, -1], storage: packed ? .packed : .unpacked, packedDims: packed, unknown: unknown),
    ]
    m.nodes = [
        WireNode(name: "conv", op: "Conv", inputs: ["x", "W", "B"], outputs: ["c"],
                 attributes: [("kernel_shape", .ints([2, 2], packed: packed)), ("pads", .ints([0, 0, 0, 0], packed: !packed)),
                              ("strides", .ints([1, 1], packed: packed)), ("group", .int(1))],
                 domain: "", unknown: unknown),
        WireNode(name: "relu", op: "Relu", inputs: ["c"], outputs: ["r"], unknown: unknown),
        WireNode(name: "scale", op: "Mul", inputs: ["r", "half"], outputs: ["s"], unknown: unknown),
        WireNode(name: "reshape", op: "Reshape", inputs: ["s", "target"], outputs: ["y"], unknown: unknown),
    ]
    m.metadata = [("cnnslicer.labels", "a,b"), ("cnnslicer.mean", "0.5")]
    return m
}

/// The reference model's output for one image, computed by hand.
private func referenceOutput(_ x: [Float]) -> [Float] {
    var y: [Float] = []
    for m in 0..<3 {
        for r in 0..<2 {
            for q in 0..<2 {
                var s = Double(convBias[m])
                for c in 0..<2 { for i in 0..<2 { for j in 0..<2 {
                    s += Double(x[(c * 3 + r + i) * 3 + q + j]) * Double(convWeights[((m * 2 + c) * 2 + i) * 2 + j])
                } } }
                y.append(Float(max(s, 0) * 0.5))
            }
        }
    }
    return y
}

// MARK: - Assertions

/// Asserts that `body` throws an EngineError whose description contains every one of `parts`.
private func assertEngineError(_ parts: [String], _ message: String = "", file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("no error thrown; expected one mentioning \(parts). \(message)", file: file, line: line)
    } catch let error as EngineError {
        for p in parts {
            XCTAssertTrue(error.description.contains(p), "'\(error.description)' does not mention '\(p)'. \(message)", file: file, line: line)
        }
    } catch {
        XCTFail("\(error) is not an EngineError. \(message)", file: file, line: line)
    }
}

/// Decodes bytes and builds a Network, as the app does when it opens a file.
private func load(_ bytes: [UInt8], path: String = modelPath) throws -> Network {
    try Network(model: ONNXModel(bytes: bytes, path: path))
}

private struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - In-memory graphs

private func graphNode(_ op: String, _ name: String, _ inputs: [String], _ attributes: [String: ONNXAttribute] = [:],
                       outputs: [String]? = nil, domain: String = "") -> ONNXNode {
    ONNXNode(name: name, opType: op, domain: domain, inputs: inputs, outputs: outputs ?? [name], attributes: attributes)
}

private func graphModel(_ nodes: [ONNXNode], _ initializers: [ONNXTensor] = [], inputs: [ONNXValueInfo]? = nil,
                        output: String, opset: Int = 13) -> ONNXModel {
    var inits: [String: ONNXTensor] = [:]
    for t in initializers { inits[t.name] = t }
    let graph = ONNXGraph(name: "bad", nodes: nodes, initializers: inits,
                          inputs: inputs ?? [ONNXValueInfo(name: "x", elementType: .float,
                                                           dims: [.symbolic("N"), .value(3), .value(6), .value(6)])],
                          outputs: [ONNXValueInfo(name: output, elementType: .float, dims: nil)])
    return ONNXModel(path: modelPath, irVersion: 8, opsetVersion: opset, producerName: "BadInputTests",
                     producerVersion: "1", graph: graph, metadata: [])
}

private func weights(_ name: String, _ dims: [Int]) -> ONNXTensor {
    ONNXTensor(name: name, dims: dims, floats: (0..<dims.reduce(1, *)).map { Float($0 % 5) / 5 - 0.4 })
}

// MARK: - Tests

final class BadInputTests: XCTestCase {

    // MARK: The encoder and the decoder agree

    func testHandEncodedModelDecodesAndRuns() throws {
        let x: [Float] = (0..<36).map { Float(($0 * 5) % 13) / 6 - 1 }
        for (unknown, packed, raw) in [(false, true, true), (true, true, true), (false, false, false), (true, false, false),
                                       (false, true, false)] {
            let label = "unknown fields \(unknown), packed \(packed), raw \(raw)"
            let bytes = referenceModel(unknown: unknown, packed: packed, rawWeights: raw).bytes()
            let model = try ONNXModel(bytes: bytes, path: modelPath)
            XCTAssertEqual(model.irVersion, 8, label)
            XCTAssertEqual(model.opsetVersion, 13, "the default-domain opset, not the custom one: \(label)")
            XCTAssertEqual(model.producerName, "BadInputTests", label)
            XCTAssertEqual(model.metadataValue("cnnslicer.labels"), "a,b", label)
            XCTAssertEqual(model.metadata.map(\.key), ["cnnslicer.labels", "cnnslicer.mean"], label)
            let w = try XCTUnwrap(model.graph.initializers["W"], label)
            XCTAssertEqual(w.dims, [3, 2, 2, 2], label)
            XCTAssertEqual(w.dataType, .float, label)
            XCTAssertEqual(w.floats, convWeights, label)
            XCTAssertEqual(model.graph.initializers["B"]?.floats, convBias, label)
            XCTAssertEqual(model.graph.initializers["half"]?.dataType, .double, label)
            XCTAssertEqual(model.graph.initializers["half"]?.dims, [], label)
            XCTAssertEqual(model.graph.initializers["half"]?.floats, [0.5], label)
            XCTAssertEqual(model.graph.initializers["target"]?.ints, [0, -1], label)
            XCTAssertEqual(model.graph.nodes.map(\.name), ["conv", "relu", "scale", "reshape"], label)
            XCTAssertEqual(model.graph.nodes.map(\.opType), ["Conv", "Relu", "Mul", "Reshape"], label)
            let conv = model.graph.nodes[0]
            XCTAssertEqual(conv.inputs, ["x", "W", "B"], label)
            XCTAssertEqual(conv.attributes["kernel_shape"], .ints([2, 2]), label)
            XCTAssertEqual(conv.attributes["pads"], .ints([0, 0, 0, 0]), label)
            XCTAssertEqual(conv.attributes["group"], .int(1), label)
            XCTAssertEqual(model.graph.inputs.first?.dims, [.symbolic("N"), .value(2), .value(3), .value(3)], label)
            XCTAssertEqual(model.graph.inputs.first?.elementType, .float, label)

            let net = try Network(model: model)
            XCTAssertEqual(net.inputShape, [2, 3, 3], label)
            XCTAssertEqual(net.classCount, 12, label)
            XCTAssertEqual(net.metadataLabels, ["a", "b"], label)
            let executor = try net.makeExecutor(capacity: 1)
            let y = x.withUnsafeBufferPointer { Array(executor.run(input: $0, count: 1)) }
            let expected = referenceOutput(x)
            XCTAssertEqual(y.count, expected.count, label)
            for (a, b) in zip(y, expected) { XCTAssertEqual(a, b, accuracy: 1e-5, label) }
        }
    }

    func testAttributesWithoutTypeField() throws {
        // Old exporters omit AttributeProto.type; the value field present decides.
        let m = referenceModel()
        var w = ProtoWriter()
        // A Conv whose attributes carry no type field.
        var node = ProtoWriter()
        for i in ["x", "W", "B"] { node.string(1, i) }
        node.string(2, "c")
        node.string(3, "conv")
        node.string(4, "Conv")
        node.message(5) { $0.string(1, "kernel_shape"); $0.int(8, 2); $0.int(8, 2) }
        node.message(5) { $0.string(1, "group"); $0.int(3, 1) }
        node.message(5) { $0.string(1, "auto_pad"); $0.string(4, "VALID") }
        w.int(1, 7)
        w.message(7) { g in
            g.lengthDelimited(1, node.data)
            for n in m.nodes.dropFirst() { g.message(1) { n.encode(&$0) } }
            for t in m.initializers { g.message(5) { t.encode(&$0) } }
            for i in m.inputs { g.message(11) { i.encode(&$0, unknown: false) } }
            for o in m.outputs { g.message(12) { o.encode(&$0, unknown: false) } }
        }
        w.message(8) { $0.int(2, 11) }   // no domain string: the default domain
        let model = try ONNXModel(bytes: w.data, path: modelPath)
        XCTAssertEqual(model.opsetVersion, 11)
        XCTAssertEqual(model.graph.nodes[0].attributes["kernel_shape"], .ints([2, 2]))
        XCTAssertEqual(model.graph.nodes[0].attributes["group"], .int(1))
        XCTAssertEqual(model.graph.nodes[0].attributes["auto_pad"], .string("VALID"))
        let executor = try Network(model: model).makeExecutor(capacity: 1)
        let x: [Float] = (0..<36).map { Float($0 % 7) / 7 }
        let y = x.withUnsafeBufferPointer { Array(executor.run(input: $0, count: 1)) }
        for (a, b) in zip(y, referenceOutput(x)) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    // MARK: Not ONNX at all

    func testRandomBytesAreRejected() {
        var rng = SplitMix(state: 2024)
        for seed in 0..<60 {
            let length = Int(rng.next() % 3000) + 1
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if seed % 3 == 1 {
                // A plausible start: ir_version 8, then a graph field whose content is noise.
                bytes = [0x08, 0x08, 0x3a, UInt8(min(length, 127))] + bytes
            }
            assertEngineError([modelPath], "random bytes, seed \(seed)") { _ = try load(bytes) }
        }
        // A few printable files that are clearly not ONNX.
        for text in ["hello, world\n", "{\"model\": 1}", "\u{89}PNG\r\n\u{1a}\n", String(repeating: "\u{ff}", count: 40)] {
            assertEngineError([modelPath], text) { _ = try load(Array(text.utf8)) }
        }
    }

    func testEmptyMissingAndUnreadableFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bad-input-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.onnx")
        XCTAssertTrue(FileManager.default.createFile(atPath: empty.path, contents: Data()))
        assertEngineError([empty.path, "empty"]) { _ = try ONNXModel(contentsOf: empty.path) }
        assertEngineError([empty.path]) { _ = try Network(contentsOf: empty.path) }
        let missing = dir.appendingPathComponent("missing.onnx").path
        assertEngineError([missing, "no such file"]) { _ = try Network(contentsOf: missing) }
        assertEngineError([dir.path]) { _ = try Network(contentsOf: dir.path) }   // a directory
        assertEngineError([modelPath, "empty"]) { _ = try ONNXModel(bytes: [], path: modelPath) }
        // A good file on disk loads (so the failures above are about the files).
        let good = dir.appendingPathComponent("good.onnx")
        try Data(referenceModel().bytes()).write(to: good)
        XCTAssertEqual(try Network(contentsOf: good.path).path, good.path)
    }

    // MARK: Truncated and damaged files

    /// Top-level field boundaries of a ModelProto and the first one after which the
    /// model has its graph, ir_version and opset: a prefix ending at such a boundary
    /// is a complete, valid model (e.g. one that only lost trailing metadata).
    private func completePrefixes(_ bytes: [UInt8]) throws -> Set<Int> {
        var reader = ProtobufReader(bytes: bytes)
        var seen: Set<Int> = []
        var complete: Set<Int> = []
        while let (field, wire) = try reader.readKey() {
            try reader.skip(wire)
            seen.insert(field)
            if seen.isSuperset(of: [1, 7, 8]) { complete.insert(reader.position) }
        }
        return complete
    }

    private func checkPrefixes(of bytes: [UInt8], path: String, offsets: [Int], label: String) throws {
        let complete = try completePrefixes(bytes)
        var threw = 0
        for cut in offsets {
            let prefix = Array(bytes[..<cut])
            do {
                let net = try load(prefix, path: path)
                XCTAssertTrue(complete.contains(cut), "\(label): the first \(cut) of \(bytes.count) bytes decoded as a model")
                XCTAssertGreaterThan(net.classCount, 0)
            } catch let error as EngineError {
                threw += 1
                XCTAssertTrue(error.description.contains(path), "\(label), cut at \(cut): \(error)")
            } catch {
                XCTFail("\(label), cut at \(cut): \(error) is not an EngineError")
            }
        }
        XCTAssertGreaterThanOrEqual(threw, offsets.count * 9 / 10, "\(label): most prefixes must be refused")
    }

    func testTruncatedFixtureIsRefusedAtEveryCut() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent("bn_cnn.onnx")
        let bytes = [UInt8](try Data(contentsOf: url))
        XCTAssertGreaterThan(bytes.count, 1000)
        XCTAssertNoThrow(try load(bytes, path: url.path), "the whole file loads")
        let offsets = Set(Array(0..<64) + (0..<200).map { $0 * bytes.count / 200 }).filter { $0 < bytes.count }.sorted()
        XCTAssertGreaterThan(offsets.count, 250)
        try checkPrefixes(of: bytes, path: url.path, offsets: offsets, label: "bn_cnn.onnx")
    }

    func testTruncatedHandEncodedModelIsRefusedAtEveryCut() throws {
        let bytes = referenceModel(unknown: true).bytes()
        XCTAssertNoThrow(try load(bytes))
        try checkPrefixes(of: bytes, path: modelPath, offsets: Array(0..<bytes.count), label: "hand-encoded model")
    }

    func testDamagedFixtureNeverCrashes() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent("bn_cnn.onnx")
        let original = [UInt8](try Data(contentsOf: url))
        var rng = SplitMix(state: 77)
        var refused = 0
        let trials = 300
        for trial in 0..<trials {
            var bytes = original
            for _ in 0..<(1 + trial % 3) {
                let at = Int(rng.next() % UInt64(bytes.count))
                bytes[at] ^= UInt8(1 << (rng.next() % 8))
            }
            do {
                let net = try load(bytes, path: url.path)
                // Whatever still loads must also run (a flipped weight is still a model).
                let perImage = net.inputShape.reduce(1, *)
                let executor = try net.makeExecutor(capacity: 2)
                guard executor.plan.bufferSizes.reduce(0, +) < 50_000_000 else { continue }
                let x = [Float](repeating: 0.5, count: 2 * perImage)
                let y = x.withUnsafeBufferPointer { Array(executor.run(input: $0, count: 2)) }
                XCTAssertEqual(y.count, 2 * net.classCount)
            } catch let error as EngineError {
                refused += 1
                XCTAssertTrue(error.description.contains(url.path), "trial \(trial): \(error)")
            } catch {
                XCTFail("trial \(trial): \(error) is not an EngineError")
            }
        }
        XCTAssertGreaterThan(refused, 0)
    }

    // MARK: Wire-level errors

    func testExternalDataIsRefused() {
        var m = referenceModel()
        m.initializers[0].dataLocation = 1          // data_location = EXTERNAL
        m.initializers[0].externalData = true
        assertEngineError([modelPath, "'W'", "external"]) { _ = try load(m.bytes()) }
        // data_location = 1 alone.
        var m2 = referenceModel()
        m2.initializers[0].dataLocation = 1
        assertEngineError([modelPath, "'W'", "external"]) { _ = try load(m2.bytes()) }
        // external_data entries alone.
        var m3 = referenceModel()
        m3.initializers[0].externalData = true
        assertEngineError([modelPath, "'W'", "external"]) { _ = try load(m3.bytes()) }
        // data_location = 0 (DEFAULT) is fine.
        var m4 = referenceModel()
        m4.initializers[0].dataLocation = 0
        XCTAssertNoThrow(try load(m4.bytes()))
    }

    func testTensorDataErrors() {
        var short = referenceModel()
        short.initializers[0].rawOverride = Array(littleEndian(convWeights).dropLast(4))
        assertEngineError([modelPath, "'W'", "raw data"]) { _ = try load(short.bytes()) }

        var ragged = referenceModel()
        ragged.initializers[0].rawOverride = littleEndian(convWeights) + [0, 1]
        assertEngineError([modelPath, "'W'"]) { _ = try load(ragged.bytes()) }

        var fewFloats = referenceModel()
        fewFloats.initializers[1].floats = [1, 2]
        assertEngineError([modelPath, "'B'", "2 values"]) { _ = try load(fewFloats.bytes()) }

        var badType = referenceModel()
        badType.initializers[1].dataType = 99
        assertEngineError([modelPath, "'B'", "99"]) { _ = try load(badType.bytes()) }

        var strings = referenceModel()
        strings.initializers[1].dataType = 8
        assertEngineError([modelPath, "'B'"]) { _ = try load(strings.bytes()) }

        var negative = referenceModel()
        negative.initializers[1].dims = [-3]
        assertEngineError([modelPath, "'B'", "negative"]) { _ = try load(negative.bytes()) }

        var huge = referenceModel()
        huge.initializers[1].dims = [1 << 40, 1 << 40]
        assertEngineError([modelPath, "'B'"]) { _ = try load(huge.bytes()) }

        var overflow = referenceModel()
        overflow.initializers[1].dims = [Int64.max, Int64.max, 2]
        assertEngineError([modelPath, "'B'"]) { _ = try load(overflow.bytes()) }

        // Packed floats whose length is not a multiple of 4.
        var w = ProtoWriter()
        w.int(1, 8)
        w.message(7) { g in
            g.message(5) { t in t.packedVarints(1, [2]); t.int(2, 1); t.string(8, "odd"); t.lengthDelimited(4, [0, 0, 128, 63, 0, 0]) }
        }
        w.message(8) { $0.int(2, 13) }
        assertEngineError([modelPath]) { _ = try load(w.data) }
    }

    func testMalformedMessagesAreRefused() {
        let good = referenceModel().bytes()
        XCTAssertNoThrow(try load(good))

        // ir_version sent as a length-delimited field.
        var wrongWire = ProtoWriter()
        wrongWire.string(1, "8")
        wrongWire.data += good
        assertEngineError([modelPath, "wire type"]) { _ = try load(wrongWire.data) }

        // A group (wire type 3), which ONNX never uses.
        var group = ProtoWriter()
        group.key(5, 3)
        assertEngineError([modelPath, "group"]) { _ = try load(good + group.data) }

        // Field number 0 and wire types 6 and 7 do not exist.
        assertEngineError([modelPath]) { _ = try load(good + [0x00, 0x01]) }
        assertEngineError([modelPath]) { _ = try load(good + [0x0e]) }
        assertEngineError([modelPath]) { _ = try load(good + [0x0f]) }

        // A varint longer than 10 bytes, and one that overflows 64 bits.
        assertEngineError([modelPath]) { _ = try load([0x08] + Array(repeating: 0xff, count: 11) + [0x01]) }
        assertEngineError([modelPath]) { _ = try load([0x08] + Array(repeating: 0xff, count: 9) + [0x7f]) }

        // A length that runs past the end of the file.
        var long = ProtoWriter()
        long.key(7, 2)
        long.varint(1 << 40)
        assertEngineError([modelPath, "past the end"]) { _ = try load([0x08, 0x08] + long.data + [1, 2, 3]) }

        var noGraph = referenceModel()
        noGraph.hasGraph = false
        assertEngineError([modelPath, "graph"]) { _ = try load(noGraph.bytes()) }

        var noOpset = referenceModel()
        noOpset.opset = nil
        assertEngineError([modelPath, "opset"]) { _ = try load(noOpset.bytes()) }

        var noIR = referenceModel()
        noIR.irVersion = nil
        assertEngineError([modelPath, "ir_version"]) { _ = try load(noIR.bytes()) }

        var oldOpset = referenceModel()
        oldOpset.opset = 5
        assertEngineError([modelPath, "opset 5"]) { _ = try load(oldOpset.bytes()) }

        var noOp = referenceModel()
        noOp.nodes[1].op = ""
        assertEngineError([modelPath, "op_type"]) { _ = try load(noOp.bytes()) }

        // A tensor attribute without its tensor.
        var w = ProtoWriter()
        w.int(1, 8)
        w.message(7) { g in
            g.message(1) { n in
                n.string(2, "k"); n.string(4, "Constant")
                n.message(5) { $0.string(1, "value"); $0.int(20, 4) }
            }
        }
        w.message(8) { $0.int(2, 13) }
        assertEngineError([modelPath, "value"]) { _ = try load(w.data) }

        // Sparse initializers are refused by name.
        var sparse = ProtoWriter()
        sparse.int(1, 8)
        sparse.message(7) { $0.message(15) { $0.int(3, 1) } }
        sparse.message(8) { $0.int(2, 13) }
        assertEngineError([modelPath, "sparse"]) { _ = try load(sparse.data) }
    }

    // MARK: Graph-level errors

    func testUnsupportedOperatorIsNamedWithItsNode() {
        for op in ["LSTM", "Transpose", "Resize"] {
            let m = graphModel([graphNode("Relu", "r", ["x"]), graphNode(op, "layer_\(op.lowercased())_7", ["r"]),
                                graphNode("Flatten", "f", ["layer_\(op.lowercased())_7"])], output: "f")
            assertEngineError([modelPath, op, "layer_\(op.lowercased())_7"]) { _ = try Network(model: m) }
        }
        // Unnamed node: its output names it.
        let m = graphModel([graphNode("LSTM", "", ["x"], outputs: ["lstm_out"]), graphNode("Flatten", "f", ["lstm_out"])], output: "f")
        assertEngineError([modelPath, "LSTM", "lstm_out"]) { _ = try Network(model: m) }
        // Through the wire format as well.
        var wire = referenceModel()
        wire.nodes[1].op = "Transpose"
        wire.nodes[1].name = "tr_1"
        assertEngineError([modelPath, "Transpose", "tr_1"]) { _ = try load(wire.bytes()) }
    }

    func testCustomDomainIsRefused() {
        let m = graphModel([graphNode("Relu", "fused_relu", ["x"], domain: "com.microsoft"), graphNode("Flatten", "f", ["fused_relu"])],
                           output: "f")
        assertEngineError([modelPath, "com.microsoft", "fused_relu"]) { _ = try Network(model: m) }
        var wire = referenceModel()
        wire.nodes[1].domain = "com.example.ops"
        assertEngineError([modelPath, "com.example.ops", "relu"]) { _ = try load(wire.bytes()) }
        // "ai.onnx" is the default domain spelled out: accepted.
        let ok = graphModel([graphNode("Relu", "r", ["x"], domain: "ai.onnx"), graphNode("Flatten", "f", ["r"])], output: "f")
        XCTAssertNoThrow(try Network(model: ok))
    }

    func testMissingInputCycleAndDuplicates() {
        let missing = graphModel([graphNode("Relu", "r", ["x"]), graphNode("Add", "adder", ["r", "ghost"]), graphNode("Flatten", "f", ["adder"])],
                                 output: "f")
        assertEngineError([modelPath, "adder", "ghost"]) { _ = try Network(model: missing) }

        let cycle = graphModel([graphNode("Add", "a", ["x", "b"]), graphNode("Relu", "b", ["a"]), graphNode("Flatten", "f", ["b"])],
                               output: "f")
        assertEngineError([modelPath, "cycle"]) { _ = try Network(model: cycle) }
        let selfLoop = graphModel([graphNode("Add", "loop", ["x", "loop"]), graphNode("Flatten", "f", ["loop"])], output: "f")
        assertEngineError([modelPath, "cycle", "loop"]) { _ = try Network(model: selfLoop) }

        let twice = graphModel([graphNode("Relu", "r", ["x"]), graphNode("Sigmoid", "s", ["x"], outputs: ["r"]), graphNode("Flatten", "f", ["r"])],
                               output: "f")
        assertEngineError([modelPath, "'s'", "'r'"]) { _ = try Network(model: twice) }

        let overInit = graphModel([graphNode("Relu", "W", ["x"]), graphNode("Flatten", "f", ["W"])], [weights("W", [2])], output: "f")
        assertEngineError([modelPath, "'W'"]) { _ = try Network(model: overInit) }

        let noOutput = graphModel([graphNode("Relu", "r", ["x"], outputs: [""]), graphNode("Flatten", "f", ["x"])], output: "f")
        assertEngineError([modelPath, "'r'"]) { _ = try Network(model: noOutput) }
    }

    func testShapeErrorsNameTheNode() {
        let cases: [(label: String, model: ONNXModel, node: String)] = [
            ("Conv weight for 2 input channels on 3",
             graphModel([graphNode("Conv", "conv_bad", ["x", "W"]), graphNode("Flatten", "f", ["conv_bad"])], [weights("W", [4, 2, 3, 3])], output: "f"),
             "conv_bad"),
            ("Conv groups that do not divide the channels",
             graphModel([graphNode("Conv", "conv_groups", ["x", "W"], ["group": .int(2)]), graphNode("Flatten", "f", ["conv_groups"])],
                        [weights("W", [4, 1, 3, 3])], output: "f"), "conv_groups"),
            ("Conv weight of rank 3",
             graphModel([graphNode("Conv", "conv_rank", ["x", "W"]), graphNode("Flatten", "f", ["conv_rank"])], [weights("W", [4, 3, 3])], output: "f"),
             "conv_rank"),
            ("Conv bias of the wrong length",
             graphModel([graphNode("Conv", "conv_bias", ["x", "W", "B"]), graphNode("Flatten", "f", ["conv_bias"])],
                        [weights("W", [4, 3, 3, 3]), weights("B", [3])], output: "f"), "conv_bias"),
            ("Conv kernel larger than the input",
             graphModel([graphNode("Conv", "conv_big", ["x", "W"]), graphNode("Flatten", "f", ["conv_big"])], [weights("W", [4, 3, 7, 7])], output: "f"),
             "conv_big"),
            ("Conv kernel_shape that disagrees with the weight",
             graphModel([graphNode("Conv", "conv_ks", ["x", "W"], ["kernel_shape": .ints([5, 5])]), graphNode("Flatten", "f", ["conv_ks"])],
                        [weights("W", [4, 3, 3, 3])], output: "f"), "conv_ks"),
            ("Conv weight computed from data",
             graphModel([graphNode("Relu", "r", ["x"]), graphNode("Conv", "conv_dyn", ["x", "r"]), graphNode("Flatten", "f", ["conv_dyn"])], output: "f"),
             "conv_dyn"),
            ("Conv with 3-D kernel_shape",
             graphModel([graphNode("Conv", "conv_3d", ["x", "W"], ["kernel_shape": .ints([3, 3, 3])]), graphNode("Flatten", "f", ["conv_3d"])],
                        [weights("W", [4, 3, 3, 3])], output: "f"), "conv_3d"),
            ("strides given as a string",
             graphModel([graphNode("Conv", "conv_attr", ["x", "W"], ["strides": .string("2,2")]), graphNode("Flatten", "f", ["conv_attr"])],
                        [weights("W", [4, 3, 3, 3])], output: "f"), "conv_attr"),
            ("zero strides",
             graphModel([graphNode("MaxPool", "pool_s0", ["x"], ["kernel_shape": .ints([2, 2]), "strides": .ints([0, 1])]),
                         graphNode("Flatten", "f", ["pool_s0"])], output: "f"), "pool_s0"),
            ("negative pads",
             graphModel([graphNode("MaxPool", "pool_neg", ["x"], ["kernel_shape": .ints([2, 2]), "pads": .ints([-1, 0, 0, 0])]),
                         graphNode("Flatten", "f", ["pool_neg"])], output: "f"), "pool_neg"),
            ("unknown auto_pad",
             graphModel([graphNode("MaxPool", "pool_auto", ["x"], ["kernel_shape": .ints([2, 2]), "auto_pad": .string("SAME")]),
                         graphNode("Flatten", "f", ["pool_auto"])], output: "f"), "pool_auto"),
            ("pooling without kernel_shape",
             graphModel([graphNode("AveragePool", "pool_nok", ["x"]), graphNode("Flatten", "f", ["pool_nok"])], output: "f"), "pool_nok"),
            ("MaxPool Indices output",
             graphModel([graphNode("MaxPool", "pool_idx", ["x"], ["kernel_shape": .ints([2, 2])], outputs: ["p", "idx"]),
                         graphNode("Flatten", "f", ["p"])], output: "f"), "pool_idx"),
            ("dilated AveragePool before opset 19",
             graphModel([graphNode("AveragePool", "pool_dil", ["x"], ["kernel_shape": .ints([2, 2]), "dilations": .ints([2, 2])]),
                         graphNode("Flatten", "f", ["pool_dil"])], output: "f"), "pool_dil"),
            ("BatchNormalization in training mode",
             graphModel([graphNode("BatchNormalization", "bn_train", ["x", "s", "b", "m", "v"], ["training_mode": .int(1)]),
                         graphNode("Flatten", "f", ["bn_train"])], [weights("s", [3]), weights("b", [3]), weights("m", [3]), weights("v", [3])],
                        output: "f"), "bn_train"),
            ("BatchNormalization with the wrong channel count",
             graphModel([graphNode("BatchNormalization", "bn_c", ["x", "s", "b", "m", "v"]), graphNode("Flatten", "f", ["bn_c"])],
                        [weights("s", [4]), weights("b", [4]), weights("m", [4]), weights("v", [4])], output: "f"), "bn_c"),
            ("Gemm with transA",
             graphModel([graphNode("Flatten", "f", ["x"]), graphNode("Gemm", "fc_ta", ["f", "B"], ["transA": .int(1)])],
                        [weights("B", [108, 4])], output: "fc_ta"), "fc_ta"),
            ("Gemm whose B does not fit",
             graphModel([graphNode("Flatten", "f", ["x"]), graphNode("Gemm", "fc_k", ["f", "B"])], [weights("B", [100, 4])], output: "fc_k"),
             "fc_k"),
            ("Gemm on rank-4 data",
             graphModel([graphNode("Gemm", "fc_r4", ["x", "B"])], [weights("B", [6, 4])], output: "fc_r4"), "fc_r4"),
            ("MatMul that does not multiply",
             graphModel([graphNode("Flatten", "f", ["x"]), graphNode("MatMul", "mm_k", ["f", "B"])], [weights("B", [10, 4])], output: "mm_k"),
             "mm_k"),
            ("Concat along the batch axis",
             graphModel([graphNode("Concat", "cat0", ["x", "x"], ["axis": .int(0)]), graphNode("Flatten", "f", ["cat0"])], output: "f"), "cat0"),
            ("Concat without axis",
             graphModel([graphNode("Concat", "cat_noaxis", ["x", "x"]), graphNode("Flatten", "f", ["cat_noaxis"])], output: "f"), "cat_noaxis"),
            ("Concat of different spatial sizes",
             graphModel([graphNode("MaxPool", "p", ["x"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
                         graphNode("Concat", "cat_hw", ["x", "p"], ["axis": .int(1)]), graphNode("Flatten", "f", ["cat_hw"])], output: "f"),
             "cat_hw"),
            ("Softmax across the batch",
             graphModel([graphNode("Softmax", "sm0", ["x"], ["axis": .int(0)]), graphNode("Flatten", "f", ["sm0"])], output: "f"), "sm0"),
            ("Softmax axis out of range",
             graphModel([graphNode("Softmax", "sm9", ["x"], ["axis": .int(9)]), graphNode("Flatten", "f", ["sm9"])], output: "f"), "sm9"),
            ("Add of shapes that do not broadcast",
             graphModel([graphNode("Add", "add_bad", ["x", "k"]), graphNode("Flatten", "f", ["add_bad"])], [weights("k", [4, 1, 1])], output: "f"),
             "add_bad"),
            ("Add of a constant spanning the batch",
             graphModel([graphNode("Add", "add_batch", ["x", "k"]), graphNode("Flatten", "f", ["add_batch"])], [weights("k", [2, 3, 6, 6])],
                        output: "f"), "add_batch"),
            ("Add of two constants that do not broadcast (constants fold at load)",
             graphModel([graphNode("Add", "add_consts", ["k", "k3"]), graphNode("Add", "a2", ["x", "add_consts"]), graphNode("Flatten", "f", ["a2"])],
                        [weights("k", [2]), weights("k3", [3])], output: "f"), "add_consts"),
            ("Clip with a vector minimum",
             graphModel([graphNode("Clip", "clip_vec", ["x", "lo"]), graphNode("Flatten", "f", ["clip_vec"])], [weights("lo", [3])], output: "f"),
             "clip_vec"),
            ("Reshape to an impossible size",
             graphModel([graphNode("Reshape", "rs_bad", ["x", "t"]), graphNode("Flatten", "f", ["rs_bad"])],
                        [ONNXTensor(name: "t", dims: [2], ints: [0, 100])], output: "f"), "rs_bad"),
            ("Reshape with two -1",
             graphModel([graphNode("Reshape", "rs_two", ["x", "t"]), graphNode("Flatten", "f", ["rs_two"])],
                        [ONNXTensor(name: "t", dims: [3], ints: [0, -1, -1])], output: "f"), "rs_two"),
            ("Reshape target computed from data",
             graphModel([graphNode("Relu", "r", ["x"]), graphNode("Reshape", "rs_dyn", ["x", "r"]), graphNode("Flatten", "f", ["rs_dyn"])], output: "f"),
             "rs_dyn"),
            ("Flatten along axis 0",
             graphModel([graphNode("Flatten", "flat0", ["x"], ["axis": .int(0)])], output: "flat0"), "flat0"),
            ("Gather on data",
             graphModel([graphNode("Gather", "gather_data", ["x", "i"]), graphNode("Flatten", "f", ["gather_data"])],
                        [ONNXTensor(name: "i", dims: [], ints: [0])], output: "f"), "gather_data"),
            ("Gather index out of range",
             graphModel([graphNode("Shape", "shape", ["x"]), graphNode("Gather", "gather_oob", ["shape", "i"]),
                         graphNode("Unsqueeze", "u", ["gather_oob", "axes"]), graphNode("Concat", "c", ["u", "m1"], ["axis": .int(0)]),
                         graphNode("Reshape", "rs", ["x", "c"])],
                        [ONNXTensor(name: "i", dims: [], ints: [7]), ONNXTensor(name: "axes", dims: [1], ints: [0]),
                         ONNXTensor(name: "m1", dims: [1], ints: [-1])], output: "rs"), "gather_oob"),
        ]
        for c in cases {
            assertEngineError([modelPath, c.node], c.label) { _ = try Network(model: c.model) }
        }
    }

    func testInputAndOutputDeclarations() {
        let flatten = [graphNode("Flatten", "f", ["x"])]
        let shaped = ONNXValueInfo(name: "x", elementType: .float, dims: [.symbolic("N"), .value(3), .value(6), .value(6)])

        let two = graphModel(flatten, inputs: [shaped, ONNXValueInfo(name: "x2", elementType: .float, dims: [.symbolic("N"), .value(4)])],
                             output: "f")
        assertEngineError([modelPath, "2 graph inputs"]) { _ = try Network(model: two) }

        let none = graphModel([graphNode("Flatten", "f", ["k"])], [weights("k", [2, 3])], inputs: [], output: "f")
        assertEngineError([modelPath, "0 graph inputs"]) { _ = try Network(model: none) }

        let unshaped = graphModel(flatten, inputs: [ONNXValueInfo(name: "x", elementType: .float, dims: nil)], output: "f")
        assertEngineError([modelPath, "'x'", "shape"]) { _ = try Network(model: unshaped) }

        let rank1 = graphModel(flatten, inputs: [ONNXValueInfo(name: "x", elementType: .float, dims: [.symbolic("N")])], output: "f")
        assertEngineError([modelPath, "'x'"]) { _ = try Network(model: rank1) }

        let symbolic = graphModel(flatten, inputs: [ONNXValueInfo(name: "x", elementType: .float,
                                                                  dims: [.symbolic("N"), .value(3), .symbolic("H"), .value(6)])], output: "f")
        assertEngineError([modelPath, "'x'", "dimension 2"]) { _ = try Network(model: symbolic) }

        let zero = graphModel(flatten, inputs: [ONNXValueInfo(name: "x", elementType: .float, dims: [.symbolic("N"), .value(0), .value(6)])],
                              output: "f")
        assertEngineError([modelPath, "'x'"]) { _ = try Network(model: zero) }

        let ints = graphModel(flatten, inputs: [ONNXValueInfo(name: "x", elementType: .int64, dims: shaped.dims)], output: "f")
        assertEngineError([modelPath, "'x'", "float32"]) { _ = try Network(model: ints) }

        // Old exporters list the weights among the graph inputs: those do not count.
        let listed = graphModel([graphNode("Conv", "conv", ["x", "W"]), graphNode("Flatten", "f", ["conv"])], [weights("W", [2, 3, 3, 3])],
                                inputs: [shaped, ONNXValueInfo(name: "W", elementType: .float, dims: [.value(2), .value(3), .value(3), .value(3)])],
                                output: "f")
        XCTAssertEqual(try Network(model: listed).inputName, "x")

        let rank4 = graphModel([graphNode("Relu", "r", ["x"])], output: "r")
        assertEngineError([modelPath, "'r'"]) { _ = try Network(model: rank4) }

        let constantOut = graphModel([graphNode("Relu", "r", ["x"])], [weights("k", [1, 2])], output: "k")
        assertEngineError([modelPath, "'k'"]) { _ = try Network(model: constantOut) }

        let undefined = graphModel([graphNode("Relu", "r", ["x"])], output: "nowhere")
        assertEngineError([modelPath, "'nowhere'"]) { _ = try Network(model: undefined) }

        var noOutputs = graphModel(flatten, output: "f")
        noOutputs.graph.outputs = []
        assertEngineError([modelPath, "no output"]) { _ = try Network(model: noOutputs) }

        // Asking for an executor of no images.
        XCTAssertThrowsError(try Network(model: graphModel(flatten, output: "f")).makeExecutor(capacity: 0)) {
            XCTAssertTrue($0 is EngineError)
        }
    }

    func testAbsurdAttributeValuesAreRefusedWithoutOverflow() {
        let big = 1 << 62
        let cases: [(String, [String: ONNXAttribute])] = [
            ("pads", ["kernel_shape": .ints([2, 2]), "pads": .ints([big, big, big, big])]),
            ("dilations", ["kernel_shape": .ints([3, 3]), "dilations": .ints([big, big])]),
            ("kernel", ["kernel_shape": .ints([big, big])]),
            ("same", ["kernel_shape": .ints([3, 3]), "dilations": .ints([big, big]), "auto_pad": .string("SAME_UPPER")]),
            ("huge pads", ["kernel_shape": .ints([1, 1]), "pads": .ints([1 << 31, 1 << 31, 1 << 31, 1 << 31])]),
            // Attribute values within bounds whose output plane would hold 2^32 values.
            ("huge output", ["kernel_shape": .ints([1, 1]), "pads": .ints([1 << 15, 1 << 15, 1 << 15, 1 << 15])]),
        ]
        for (label, attrs) in cases {
            let m = graphModel([graphNode("MaxPool", "pool_\(label)", ["x"], attrs), graphNode("Flatten", "f", ["pool_\(label)"])], output: "f")
            assertEngineError([modelPath, "pool_\(label)"], label) { _ = try Network(model: m).makeExecutor(capacity: 2) }
        }
        let conv = graphModel([graphNode("Conv", "conv_dil", ["x", "W"], ["dilations": .ints([big, 1])]), graphNode("Flatten", "f", ["conv_dil"])],
                              [weights("W", [2, 3, 3, 3])], output: "f")
        assertEngineError([modelPath, "conv_dil"]) { _ = try Network(model: conv) }
        // Each axis plausible, but 4096 channels of 262×262 make 2^28.07 values per image.
        let wide = graphModel([graphNode("Conv", "conv_wide", ["x", "W"], ["pads": .ints([128, 128, 128, 128])]),
                               graphNode("Flatten", "f", ["conv_wide"])], [weights("W", [4096, 3, 1, 1])], output: "f")
        assertEngineError([modelPath, "conv_wide", "implausibly large"]) { _ = try Network(model: wide) }
        let hugeInput = graphModel([graphNode("Flatten", "f", ["x"])],
                                   inputs: [ONNXValueInfo(name: "x", elementType: .float, dims: [.symbolic("N"), .value(1 << 40), .value(1 << 40)])],
                                   output: "f")
        assertEngineError([modelPath, "'x'"]) { _ = try Network(model: hugeInput) }
        let reshape = graphModel([graphNode("Reshape", "rs_huge", ["x", "t"]), graphNode("Flatten", "f", ["rs_huge"])],
                                 [ONNXTensor(name: "t", dims: [3], ints: [0, 1 << 40, 1 << 40])], output: "f")
        assertEngineError([modelPath, "rs_huge"]) { _ = try Network(model: reshape) }
    }
}
