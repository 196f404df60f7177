/// A minimal reader of the protobuf wire format, enough for ONNX files.
///
/// ONNX models are plain protobuf messages; decoding them needs only varints,
/// fixed 32/64-bit fields and length-delimited fields. Every read is checked
/// against the end of the buffer, so a truncated or corrupt file produces a
/// `ProtobufError` instead of a crash.
struct ProtobufError: Error, CustomStringConvertible {
    let message: String
    let offset: Int
    var description: String { "\(message) at byte \(offset)" }
}

enum WireType: Int {
    case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
}

struct ProtobufReader {
    /// The whole file; messages are windows into it, never copies.
    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int

    init(bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
    }

    private init(bytes: [UInt8], start: Int, end: Int) {
        self.bytes = bytes
        self.position = start
        self.end = end
    }

    var isAtEnd: Bool { position >= end }

    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw ProtobufError(message: "truncated varint", offset: position) }
            let byte = bytes[position]
            position += 1
            if shift == 63 && byte > 1 { throw ProtobufError(message: "varint overflow", offset: position) }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw ProtobufError(message: "varint too long", offset: position) }
        }
    }

    /// Reads a field key; returns nil at the end of the message.
    mutating func readKey() throws -> (field: Int, wire: WireType)? {
        guard !isAtEnd else { return nil }
        let start = position
        let key = try readVarint()
        let field = Int(truncatingIfNeeded: key >> 3)
        guard field > 0, let wire = WireType(rawValue: Int(key & 7)) else {
            throw ProtobufError(message: "invalid field key \(key)", offset: start)
        }
        return (field, wire)
    }

    mutating func readFixed32() throws -> UInt32 {
        guard end - position >= 4 else { throw ProtobufError(message: "truncated fixed32", offset: position) }
        var v: UInt32 = 0
        for k in 0..<4 { v |= UInt32(bytes[position + k]) << (8 * UInt32(k)) }
        position += 4
        return v
    }

    mutating func readFixed64() throws -> UInt64 {
        guard end - position >= 8 else { throw ProtobufError(message: "truncated fixed64", offset: position) }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[position + k]) << (8 * UInt64(k)) }
        position += 8
        return v
    }

    /// Returns the byte range of a length-delimited field and skips over it.
    mutating func readLengthDelimitedRange() throws -> Range<Int> {
        let start = position
        let length = try readVarint()
        guard length <= UInt64(end - position) else {
            throw ProtobufError(message: "length \(length) runs past the end", offset: start)
        }
        let range = position..<(position + Int(length))
        position += Int(length)
        return range
    }

    mutating func readMessage() throws -> ProtobufReader {
        let range = try readLengthDelimitedRange()
        return ProtobufReader(bytes: bytes, start: range.lowerBound, end: range.upperBound)
    }

    mutating func readString() throws -> String {
        let range = try readLengthDelimitedRange()
        return String(decoding: bytes[range], as: UTF8.self)
    }

    mutating func readBytes() throws -> ArraySlice<UInt8> {
        bytes[try readLengthDelimitedRange()]
    }

    mutating func readInt64() throws -> Int64 { Int64(bitPattern: try readVarint()) }

    mutating func readFloat() throws -> Float { Float(bitPattern: try readFixed32()) }

    /// Repeated int64 fields may be packed or not; both encodings are legal.
    mutating func readInt64s(wire: WireType, into values: inout [Int64]) throws {
        if wire == .lengthDelimited {
            var sub = try readMessage()
            while !sub.isAtEnd { values.append(try sub.readInt64()) }
        } else {
            try expect(wire, .varint)
            values.append(try readInt64())
        }
    }

    mutating func readFloats(wire: WireType, into values: inout [Float]) throws {
        if wire == .lengthDelimited {
            var sub = try readMessage()
            guard (sub.end - sub.position) % 4 == 0 else {
                throw ProtobufError(message: "packed floats not a multiple of 4 bytes", offset: sub.position)
            }
            values.reserveCapacity(values.count + (sub.end - sub.position) / 4)
            while !sub.isAtEnd { values.append(try sub.readFloat()) }
        } else {
            try expect(wire, .fixed32)
            values.append(try readFloat())
        }
    }

    mutating func readDoubles(wire: WireType, into values: inout [Double]) throws {
        if wire == .lengthDelimited {
            var sub = try readMessage()
            while !sub.isAtEnd { values.append(Double(bitPattern: try sub.readFixed64())) }
        } else {
            try expect(wire, .fixed64)
            values.append(Double(bitPattern: try readFixed64()))
        }
    }

    func expect(_ wire: WireType, _ wanted: WireType) throws {
        guard wire == wanted else {
            throw ProtobufError(message: "wire type \(wire.rawValue) where \(wanted.rawValue) was expected", offset: position)
        }
    }

    mutating func skip(_ wire: WireType) throws {
        switch wire {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimitedRange()
        case .startGroup, .endGroup:
            throw ProtobufError(message: "groups are not used by ONNX", offset: position)
        }
    }
}
