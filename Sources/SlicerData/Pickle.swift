/// A deliberately small Python pickle interpreter: just enough to read the
/// CIFAR-10 python batches (protocol 2, written by Python 2 with numpy, or
/// re-pickled by Python 3) without running Python.
///
/// It never imports or calls anything: the few callables such pickles use
/// (`numpy.core.multiarray._reconstruct`, `numpy.dtype`, `_codecs.encode`,
/// `builtins.bytes`) are recognised by name and interpreted directly;
/// every other global or opcode is refused with a `DataError`.

/// A value on the pickle machine's stack.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    /// Python 2 `str` or Python 3 `bytes`. A slice of the file buffer where possible, to avoid copying 30 MB payloads.
    case bytes(ArraySlice<UInt8>)
    /// Python `unicode`/`str`, kept as its UTF-8 encoding.
    case text(ArraySlice<UInt8>)
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(module: String, name: String)
    case ndarray(PickleNDArray)
    case dtype(String)

    var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
        case .float: return "a float"
        case .bytes: return "bytes"
        case .text: return "a str"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let module, let name): return "the global \(module).\(name)"
        case .ndarray: return "a numpy array"
        case .dtype: return "a numpy dtype"
        }
    }

    /// Items of a tuple or list.
    var sequenceItems: [PickleValue]? {
        switch self {
        case .tuple(let items): return items
        case .list(let list): return list.items
        default: return nil
        }
    }

    /// Bytes are read as latin-1, which is how Python 3 decodes Python 2 strings.
    var stringValue: String? {
        switch self {
        case .bytes(let bytes): return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        case .text(let utf8): return String(decoding: utf8, as: UTF8.self)
        default: return nil
        }
    }

    /// Python truthiness for the values numpy uses as flags (False/True, 0/1).
    var flagValue: Bool? {
        switch self {
        case .bool(let flag): return flag
        case .int(let value): return value != 0
        default: return nil
        }
    }
}

/// Lists and dicts are reference types because the pickle memo shares them:
/// `EMPTY_LIST; BINPUT; MARK ... APPENDS` fills the object the memo points to.
final class PickleList {
    var items: [PickleValue] = []
}

final class PickleDict {
    var entries: [(key: PickleValue, value: PickleValue)] = []

    /// Looks a key up by its text, so b'labels' and 'labels' both match.
    func value(forKey key: String) -> PickleValue? {
        entries.first { $0.key.stringValue == key }?.value
    }

    var keyList: String {
        entries.map { $0.key.stringValue ?? $0.key.kindName }.joined(separator: ", ")
    }
}

final class PickleNDArray {
    var shape: [Int] = [0]
    var payload: ArraySlice<UInt8>?
}

struct PickleMachine {
    let bytes: [UInt8]
    let path: String
    var position = 0
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]

    /// Runs the pickle in `bytes` and returns the object it builds.
    static func load(_ bytes: [UInt8], path: String) throws -> PickleValue {
        var machine = PickleMachine(bytes: bytes, path: path)
        return try machine.run()
    }

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    // MARK: Errors

    func corrupt(_ detail: String) -> DataError {
        .corrupt(path: path, detail: "pickle: \(detail) (at offset \(position))")
    }

    func unsupported(_ detail: String) -> DataError {
        .unsupportedFormat(path: path, detail: "pickle: \(detail); only CIFAR-10 batch pickles are understood")
    }

    // MARK: Reading operands

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0 else { throw corrupt("negative length \(count)") }
        guard count <= bytes.count - position else {
            throw DataError.truncated(path: path, detail: "pickle ends inside an operand at offset \(position) (needs \(count) more bytes, \(bytes.count - position) left)")
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func littleEndian(_ count: Int) throws -> UInt64 {
        var value: UInt64 = 0
        for (shift, byte) in try take(count).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    mutating func byte() throws -> Int { Int(try littleEndian(1)) }
    mutating func uint32() throws -> Int { Int(try littleEndian(4)) }
    mutating func int32() throws -> Int { Int(Int32(bitPattern: UInt32(try littleEndian(4)))) }

    mutating func length64() throws -> Int {
        let value = try littleEndian(8)
        guard value <= UInt64(Int.max) else { throw corrupt("length \(value) too large") }
        return Int(value)
    }

    /// A newline-terminated operand of the text opcodes (GLOBAL, INT, PUT, GET).
    mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else {
            throw DataError.truncated(path: path, detail: "pickle ends inside a text operand at offset \(position)")
        }
        defer { position = end + 1 }
        var text = bytes[position..<end]
        if text.last == 0x0D { text = text.dropLast() }
        return String(decoding: text, as: UTF8.self)
    }

    // MARK: Stack

    mutating func pop() throws -> PickleValue {
        if let mark = marks.last, stack.count <= mark { throw corrupt("stack underflow (pop across a MARK)") }
        guard let value = stack.popLast() else { throw corrupt("stack underflow") }
        return value
    }

    mutating func top() throws -> PickleValue {
        guard let value = stack.last else { throw corrupt("stack underflow") }
        return value
    }

    /// Pops everything above the most recent MARK, and the mark.
    mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw corrupt("no MARK on the stack") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    mutating func memoGet(_ key: Int) throws -> PickleValue {
        guard let value = memo[key] else { throw corrupt("memo key \(key) used before it was set") }
        return value
    }

    // MARK: Interpreter

    mutating func run() throws -> PickleValue {
        while position < bytes.count {
            let opcodeOffset = position
            let opcode = bytes[position]
            position += 1
            switch opcode {
            case 0x80: // PROTO
                let version = try byte()
                guard version <= 5 else { throw unsupported("protocol \(version)") }
            case 0x95: // FRAME: framing is only a read-ahead hint
                _ = try length64()
            case UInt8(ascii: "."): // STOP
                let result = try pop()
                return result
            case UInt8(ascii: "("): marks.append(stack.count)
            case UInt8(ascii: "0"): _ = try pop()
            case UInt8(ascii: "1"): _ = try popToMark()
            case UInt8(ascii: "2"): stack.append(try top())

            // Scalars
            case UInt8(ascii: "N"): stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case UInt8(ascii: "K"): stack.append(.int(try byte()))
            case UInt8(ascii: "M"): stack.append(.int(Int(try littleEndian(2))))
            case UInt8(ascii: "J"): stack.append(.int(try int32()))
            case 0x8a: // LONG1: little-endian two's complement
                let count = try byte()
                guard count <= 8 else { throw unsupported("integer of \(count) bytes") }
                var value = try littleEndian(count)
                if count > 0 && count < 8 && value & (UInt64(1) << UInt64(8 * count - 1)) != 0 {
                    value |= ~UInt64(0) << UInt64(8 * count)
                }
                stack.append(.int(Int(Int64(bitPattern: value))))
            case UInt8(ascii: "I"), UInt8(ascii: "L"): // INT / LONG as text; I00/I01 are False/True
                var text = try line()
                if text == "00" { stack.append(.bool(false)); continue }
                if text == "01" { stack.append(.bool(true)); continue }
                if text.hasSuffix("L") { text.removeLast() }
                guard let value = Int(text) else { throw corrupt("bad integer literal '\(text)'") }
                stack.append(.int(value))
            case UInt8(ascii: "G"): // BINFLOAT, big-endian
                let raw = try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                stack.append(.float(Double(bitPattern: raw)))

            // Strings
            case UInt8(ascii: "U"), UInt8(ascii: "C"): stack.append(.bytes(try take(try byte())))
            case UInt8(ascii: "T"): stack.append(.bytes(try take(try int32())))
            case UInt8(ascii: "B"): stack.append(.bytes(try take(try uint32())))
            case 0x8e: stack.append(.bytes(try take(try length64())))
            case 0x8c: stack.append(.text(try take(try byte())))
            case UInt8(ascii: "X"): stack.append(.text(try take(try uint32())))
            case 0x8d: stack.append(.text(try take(try length64())))

            // Containers
            case UInt8(ascii: ")"): stack.append(.tuple([]))
            case UInt8(ascii: "]"): stack.append(.list(PickleList()))
            case UInt8(ascii: "}"): stack.append(.dict(PickleDict()))
            case UInt8(ascii: "t"): stack.append(.tuple(try popToMark()))
            case 0x85: let a = try pop(); stack.append(.tuple([a]))
            case 0x86: let b = try pop(); let a = try pop(); stack.append(.tuple([a, b]))
            case 0x87: let c = try pop(); let b = try pop(); let a = try pop(); stack.append(.tuple([a, b, c]))
            case UInt8(ascii: "l"):
                let list = PickleList()
                list.items = try popToMark()
                stack.append(.list(list))
            case UInt8(ascii: "d"):
                let dict = PickleDict()
                try addPairs(try popToMark(), to: dict)
                stack.append(.dict(dict))
            case UInt8(ascii: "a"):
                let item = try pop()
                try appendItems([item])
            case UInt8(ascii: "e"):
                let items = try popToMark()
                try appendItems(items)
            case UInt8(ascii: "s"):
                let value = try pop()
                let key = try pop()
                try setItems([key, value])
            case UInt8(ascii: "u"):
                let items = try popToMark()
                try setItems(items)

            // Memo
            case UInt8(ascii: "q"): memo[try byte()] = try top()
            case UInt8(ascii: "r"): memo[try uint32()] = try top()
            case 0x94: memo[memo.count] = try top() // MEMOIZE
            case UInt8(ascii: "p"):
                guard let key = Int(try line()) else { throw corrupt("bad PUT key") }
                memo[key] = try top()
            case UInt8(ascii: "h"): stack.append(try memoGet(try byte()))
            case UInt8(ascii: "j"): stack.append(try memoGet(try uint32()))
            case UInt8(ascii: "g"):
                guard let key = Int(try line()) else { throw corrupt("bad GET key") }
                stack.append(try memoGet(key))

            // Objects
            case UInt8(ascii: "c"):
                let module = try line()
                let name = try line()
                stack.append(.global(module: module, name: name))
            case 0x93: // STACK_GLOBAL
                let name = try pop()
                let module = try pop()
                guard case .text = module, case .text = name, let m = module.stringValue, let n = name.stringValue else {
                    throw corrupt("STACK_GLOBAL needs two strings")
                }
                stack.append(.global(module: m, name: n))
            case UInt8(ascii: "R"):
                let arguments = try pop()
                let callable = try pop()
                stack.append(try reduce(callable, arguments))
            case UInt8(ascii: "b"):
                let state = try pop()
                try build(try top(), state: state)

            default:
                position = opcodeOffset
                let printable = (0x21...0x7e).contains(opcode) ? " '\(Character(Unicode.Scalar(opcode)))'" : ""
                if opcodeOffset == 0 {
                    throw DataError.unsupportedFormat(
                        path: path, detail: "not a pickle (\(leadingBytesDescription(bytes[...])))")
                }
                throw unsupported("opcode 0x\(String(opcode, radix: 16))\(printable) at offset \(opcodeOffset)")
            }
        }
        throw DataError.truncated(path: path, detail: "pickle ends without STOP after \(bytes.count) bytes")
    }

    mutating func appendItems(_ items: [PickleValue]) throws {
        guard case .list(let list) = try top() else { throw unsupported("APPEND to \(try top().kindName)") }
        list.items.append(contentsOf: items)
    }

    mutating func setItems(_ items: [PickleValue]) throws {
        guard case .dict(let dict) = try top() else { throw unsupported("SETITEM on \(try top().kindName)") }
        try addPairs(items, to: dict)
    }

    func addPairs(_ items: [PickleValue], to dict: PickleDict) throws {
        guard items.count % 2 == 0 else { throw corrupt("odd number of items for a dict") }
        for index in stride(from: 0, to: items.count, by: 2) {
            dict.entries.append((key: items[index], value: items[index + 1]))
        }
    }

    // MARK: The few callables CIFAR pickles use

    static let numpyModules: Set<String> = ["numpy.core.multiarray", "numpy._core.multiarray"]

    func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case .global(let module, let name) = callable else {
            throw unsupported("REDUCE applies \(callable.kindName), not a global")
        }
        guard let args = arguments.sequenceItems else { throw corrupt("REDUCE arguments are \(arguments.kindName)") }
        switch (module, name) {
        case (let m, "_reconstruct") where Self.numpyModules.contains(m):
            // _reconstruct(ndarray, (0,), b'b') makes an empty array that BUILD fills.
            guard let cls = args.first, case .global(_, "ndarray") = cls else {
                throw unsupported("numpy _reconstruct of something other than ndarray")
            }
            return .ndarray(PickleNDArray())
        case ("numpy", "dtype"), ("numpy.core.multiarray", "dtype"), ("numpy._core.multiarray", "dtype"):
            guard let first = args.first, let typeName = first.stringValue else { throw corrupt("numpy.dtype without a type name") }
            return .dtype(typeName)
        case ("_codecs", "encode"):
            // Python 3 writes bytes under protocol 2 as _codecs.encode(<latin-1 text>, 'latin1').
            guard args.count == 2, case .text(let utf8) = args[0], let encoding = args[1].stringValue else {
                throw unsupported("_codecs.encode with unexpected arguments")
            }
            guard ["latin1", "latin-1", "iso-8859-1", "iso8859-1"].contains(encoding.lowercased()) else {
                throw unsupported("_codecs.encode to \(encoding)")
            }
            return .bytes(try latin1Bytes(fromUTF8: utf8))
        case ("__builtin__", "bytes"), ("builtins", "bytes"):
            guard args.isEmpty else { throw unsupported("bytes() with arguments") }
            return .bytes([])
        default:
            throw unsupported("it calls \(module).\(name)")
        }
    }

    func build(_ object: PickleValue, state: PickleValue) throws {
        switch object {
        case .dtype:
            return // (version, byte order, ...) carries nothing we need for uint8
        case .ndarray(let array):
            guard var fields = state.sequenceItems else { throw corrupt("numpy array state is \(state.kindName)") }
            if fields.count == 5 { fields.removeFirst() } // leading pickle-format version
            guard fields.count == 4 else { throw unsupported("numpy array state with \(fields.count) fields") }
            guard let shapeItems = fields[0].sequenceItems else { throw corrupt("numpy array shape is \(fields[0].kindName)") }
            var shape: [Int] = []
            for item in shapeItems {
                guard case .int(let extent) = item, extent >= 0 else { throw corrupt("bad numpy array extent") }
                shape.append(extent)
            }
            guard case .dtype(let typeName) = fields[1] else { throw corrupt("numpy array dtype is \(fields[1].kindName)") }
            guard ["u1", "|u1", "uint8", "B"].contains(typeName) else {
                throw unsupported("numpy array of dtype '\(typeName)' (expected uint8 'u1')")
            }
            guard let fortran = fields[2].flagValue else { throw corrupt("numpy fortran flag is \(fields[2].kindName)") }
            guard !fortran || shape.count < 2 else { throw unsupported("Fortran-ordered numpy array") }
            let payload: ArraySlice<UInt8>
            switch fields[3] {
            case .bytes(let raw): payload = raw
            case .text(let utf8): payload = try latin1Bytes(fromUTF8: utf8) // a 'str' payload read as latin-1
            default: throw unsupported("numpy array data given as \(fields[3].kindName)")
            }
            let (elements, overflow) = shape.reduce((1, false)) { partial, extent in
                let (product, flag) = partial.0.multipliedReportingOverflow(by: extent)
                return (product, partial.1 || flag)
            }
            guard !overflow, elements == payload.count else {
                throw corrupt("numpy array of shape \(shape) has \(payload.count) data bytes")
            }
            array.shape = shape
            array.payload = payload
        default:
            throw unsupported("BUILD on \(object.kindName)")
        }
    }

    /// Encodes UTF-8 text as latin-1: every code point must be below 256.
    /// Done by hand (not via String) because payloads are tens of megabytes.
    func latin1Bytes(fromUTF8 utf8: ArraySlice<UInt8>) throws -> ArraySlice<UInt8> {
        var output = [UInt8]()
        output.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        let end = utf8.endIndex
        while index < end {
            let lead = utf8[index]
            if lead < 0x80 {
                output.append(lead)
                index += 1
            } else if lead == 0xC2 || lead == 0xC3, index + 1 < end, utf8[index + 1] & 0xC0 == 0x80 {
                output.append((lead & 0x1F) << 6 | (utf8[index + 1] & 0x3F))
                index += 2
            } else {
                throw corrupt("text is not latin-1 (byte 0x\(String(lead, radix: 16)) at \(index))")
            }
        }
        return output[...]
    }
}
