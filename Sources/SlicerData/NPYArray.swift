/// A numpy `.npy` array of float32 or uint8, little-endian, C order.
///
/// Reads format versions 1.0, 2.0 (and 3.0, which differs only in header
/// encoding); writes 1.0, atomically (temporary file, then rename), so a
/// crash never leaves a half-written results file behind.
public struct NPYArray: Sendable, Equatable {
    public enum Storage: Sendable, Equatable {
        case float32([Float])
        case uint8([UInt8])
    }

    public var shape: [Int]
    public var storage: Storage

    public init(shape: [Int], storage: Storage) {
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], float32 values: [Float]) {
        self.init(shape: shape, storage: .float32(values))
    }

    public init(shape: [Int], uint8 values: [UInt8]) {
        self.init(shape: shape, storage: .uint8(values))
    }

    /// Number of elements; the product of `shape` (1 for a 0-d array).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The values if the array is float32.
    public var floatValues: [Float]? {
        if case .float32(let values) = storage { return values }
        return nil
    }

    /// The values if the array is uint8.
    public var byteValues: [UInt8]? {
        if case .uint8(let values) = storage { return values }
        return nil
    }

    var descriptor: String {
        switch storage {
        case .float32: return "<f4"
        case .uint8: return "|u1"
        }
    }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // "\x93NUMPY"

    // MARK: Reading

    /// Reads a `.npy` file holding float32 or uint8 data.
    public static func read(path: String) throws -> NPYArray {
        try decode(try FileIO.readAll(path), path: path)
    }

    /// Reads a float32 `.npy` file and checks its shape.
    /// - Parameter expectedShape: the required shape; nil accepts any shape.
    public static func readFloat32(path: String, expectedShape: [Int]? = nil) throws -> [Float] {
        let array = try read(path: path)
        guard let values = array.floatValues else {
            throw DataError.unsupportedFormat(path: path, detail: "dtype '\(array.descriptor)', expected float32 '<f4'")
        }
        if let expectedShape, expectedShape != array.shape {
            throw DataError.shapeMismatch(path: path, detail: "shape \(shapeText(array.shape)), expected \(shapeText(expectedShape))")
        }
        return values
    }

    static func shapeText(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    /// Parses the bytes of a `.npy` file; `path` names the file in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> NPYArray {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            if bytes.count < 10 && magic.starts(with: bytes) {
                throw DataError.truncated(path: path, detail: "\(bytes.count) bytes is too short for a .npy header")
            }
            throw DataError.unsupportedFormat(path: path, detail: "not a .npy file (\(leadingBytesDescription(bytes[...])))")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else {
                throw DataError.truncated(path: path, detail: "\(bytes.count) bytes is too short for a .npy v\(major) header")
            }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw DataError.unsupportedFormat(path: path, detail: ".npy format version \(major).\(bytes[7]) (supported: 1.0, 2.0, 3.0)")
        }
        guard bytes.count >= headerStart + headerLength else {
            throw DataError.truncated(path: path, detail: "file ends inside the \(headerLength)-byte .npy header")
        }
        let headerText = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let header = try NPYHeader(parsing: headerText, path: path)
        let dataStart = headerStart + headerLength
        guard !header.fortranOrder else {
            throw DataError.unsupportedFormat(path: path, detail: "fortran_order is True; only C-order arrays are supported")
        }
        let itemSize: Int
        switch header.descriptor {
        case "<f4": itemSize = 4
        case "|u1", "<u1", ">u1", "u1": itemSize = 1 // byte order is meaningless for one byte
        default:
            throw DataError.unsupportedFormat(
                path: path, detail: "dtype '\(header.descriptor)' is not supported (expected little-endian float32 '<f4' or uint8 '|u1')")
        }
        guard header.shape.allSatisfy({ $0 >= 0 }) else {
            throw DataError.corrupt(path: path, detail: "negative extent in shape \(shapeText(header.shape))")
        }
        var (count, overflow) = (1, false)
        for extent in header.shape {
            let (product, flag) = count.multipliedReportingOverflow(by: extent)
            count = product
            overflow = overflow || flag
        }
        let (dataBytes, overflow2) = count.multipliedReportingOverflow(by: itemSize)
        guard !overflow && !overflow2 else {
            throw DataError.corrupt(path: path, detail: "shape \(shapeText(header.shape)) is impossibly large")
        }
        let available = bytes.count - dataStart
        if available < dataBytes {
            throw DataError.truncated(
                path: path, detail: "\(available) data bytes, shape \(shapeText(header.shape)) of '\(header.descriptor)' needs \(dataBytes)")
        }
        if available > dataBytes {
            throw DataError.corrupt(
                path: path, detail: "\(available - dataBytes) unexpected bytes after the data of shape \(shapeText(header.shape))")
        }
        if itemSize == 1 {
            return NPYArray(shape: header.shape, uint8: Array(bytes[dataStart...]))
        }
        // The data offset need not be 4-aligned in the buffer, so copy bytes
        // into the float array rather than reinterpreting the pointer.
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { destination in
            bytes.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[dataStart...]))
            }
        }
        #if _endian(big)
        values = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
        #endif
        return NPYArray(shape: header.shape, float32: values)
    }

    // MARK: Writing

    /// The complete `.npy` v1.0 file image.
    public func encoded() throws -> [UInt8] {
        var bytes = try headerBytes(path: "<memory>")
        appendData(to: &bytes)
        return bytes
    }

    /// Writes the array as `.npy` v1.0, atomically.
    public func write(to path: String) throws {
        let header = try headerBytes(path: path)
        try FileIO.writeAtomically(to: path) { write in
            try header.withUnsafeBytes { try write($0) }
            switch storage {
            case .float32(let values):
                #if _endian(big)
                let little = values.map { $0.bitPattern.littleEndian }
                try little.withUnsafeBytes { try write($0) }
                #else
                try values.withUnsafeBytes { try write($0) }
                #endif
            case .uint8(let values):
                try values.withUnsafeBytes { try write($0) }
            }
        }
    }

    func appendData(to bytes: inout [UInt8]) {
        switch storage {
        case .float32(let values):
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .uint8(let values):
            bytes.append(contentsOf: values)
        }
    }

    func headerBytes(path: String) throws -> [UInt8] {
        let storedCount: Int
        switch storage {
        case .float32(let values): storedCount = values.count
        case .uint8(let values): storedCount = values.count
        }
        guard shape.allSatisfy({ $0 >= 0 }), storedCount == elementCount else {
            throw DataError.shapeMismatch(path: path, detail: "\(storedCount) values do not fill shape \(Self.shapeText(shape))")
        }
        var dictionary = "{'descr': '\(descriptor)', 'fortran_order': False, 'shape': \(Self.shapeText(shape)), }"
        // numpy pads with spaces so the data starts at a multiple of 64 bytes,
        // and ends the header with a newline.
        let unpadded = Self.magic.count + 2 + 2 + dictionary.utf8.count + 1
        dictionary += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = dictionary.utf8.count
        guard length <= Int(UInt16.max) else {
            throw DataError.unsupportedFormat(path: path, detail: "shape too long for a .npy v1.0 header")
        }
        return Self.magic + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(dictionary.utf8)
    }
}

/// The header of a `.npy` file: a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
struct NPYHeader {
    var descriptor = ""
    var fortranOrder = false
    var shape: [Int] = []

    init(parsing text: String, path: String) throws {
        var scanner = LiteralScanner(text: Array(text.utf8))
        func bad(_ detail: String) -> DataError {
            .corrupt(path: path, detail: "malformed .npy header (\(detail)): \(text.trimmingTrailingWhitespace)")
        }
        var seen = Set<String>()
        guard scanner.consume("{") else { throw bad("no '{'") }
        while !scanner.consume("}") {
            guard let key = scanner.quotedString() else { throw bad("expected a quoted key") }
            guard scanner.consume(":") else { throw bad("expected ':' after '\(key)'") }
            switch key {
            case "descr":
                guard let value = scanner.quotedString() else { throw bad("descr is not a string") }
                descriptor = value
            case "fortran_order":
                if scanner.consume("True") { fortranOrder = true }
                else if scanner.consume("False") { fortranOrder = false }
                else { throw bad("fortran_order is not True/False") }
            case "shape":
                guard scanner.consume("(") else { throw bad("shape is not a tuple") }
                var extents: [Int] = []
                while !scanner.consume(")") {
                    guard let extent = scanner.integer() else { throw bad("shape holds a non-integer") }
                    extents.append(extent)
                    if !scanner.consume(",") {
                        guard scanner.consume(")") else { throw bad("expected ',' or ')' in shape") }
                        break
                    }
                }
                shape = extents
            default:
                throw bad("unknown key '\(key)'")
            }
            seen.insert(key)
            if !scanner.consume(",") {
                guard scanner.consume("}") else { throw bad("expected ',' or '}'") }
                break
            }
        }
        guard seen == ["descr", "fortran_order", "shape"] else { throw bad("missing keys") }
    }
}

/// Tokenizer for the tiny subset of Python literals `.npy` headers use.
struct LiteralScanner {
    let text: [UInt8]
    var position = 0

    mutating func skipSpace() {
        while position < text.count, [0x20, 0x09, 0x0A, 0x0D].contains(text[position]) { position += 1 }
    }

    mutating func consume(_ token: String) -> Bool {
        skipSpace()
        let bytes = Array(token.utf8)
        guard text.count - position >= bytes.count, Array(text[position..<(position + bytes.count)]) == bytes else { return false }
        position += bytes.count
        return true
    }

    mutating func quotedString() -> String? {
        skipSpace()
        guard position < text.count, text[position] == 0x27 || text[position] == 0x22 else { return nil }
        let quote = text[position]
        guard let end = text[(position + 1)...].firstIndex(of: quote) else { return nil }
        defer { position = end + 1 }
        return String(decoding: text[(position + 1)..<end], as: UTF8.self)
    }

    mutating func integer() -> Int? {
        skipSpace()
        let start = position
        while position < text.count, (0x30...0x39).contains(text[position]) || (position == start && text[position] == 0x2D) {
            position += 1
        }
        // Python 2 wrote longs as "3L".
        let value = Int(String(decoding: text[start..<position], as: UTF8.self))
        if value != nil, position < text.count, text[position] == 0x4C { position += 1 }
        return value
    }
}

extension String {
    var trimmingTrailingWhitespace: String {
        var copy = self
        while let last = copy.last, last.isWhitespace { copy.removeLast() }
        return copy
    }
}
