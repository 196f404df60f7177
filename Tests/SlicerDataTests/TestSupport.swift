import CSDL2
import Foundation
import XCTest
@testable import SlicerData

/// A fresh directory per test, removed afterwards; tests never touch shared data.
class TemporaryDirectoryTestCase: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("SlicerDataTests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func path(_ name: String) -> String { directory + "/" + name }

    @discardableResult
    func write(_ bytes: [UInt8], to name: String) throws -> String {
        let target = path(name)
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    /// Asserts that `body` throws a `DataError` whose message names `path`,
    /// and returns the error for further checks.
    @discardableResult
    func assertDataError<T>(_ body: @autoclosure () throws -> T, mentioning path: String,
                            file: StaticString = #filePath, line: UInt = #line) -> DataError? {
        do {
            _ = try body()
            XCTFail("expected a DataError mentioning \(path)", file: file, line: line)
            return nil
        } catch let error as DataError {
            XCTAssertTrue(error.description.contains(path), "\(error.description) does not name \(path)", file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), "error is not one line: \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected a DataError, got \(error)", file: file, line: line)
            return nil
        }
    }
}

// MARK: IDX

enum IDXBytes {
    static func bigEndian(_ value: Int) -> [UInt8] {
        [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func images(count: Int, rows: Int, columns: Int, pixels: [UInt8]) -> [UInt8] {
        [0, 0, 8, 3] + bigEndian(count) + bigEndian(rows) + bigEndian(columns) + pixels
    }

    static func labels(_ labels: [UInt8]) -> [UInt8] {
        [0, 0, 8, 1] + bigEndian(labels.count) + labels
    }
}

/// Deterministic pseudo-random bytes, so failures are reproducible.
func patternBytes(_ count: Int, seed: UInt32 = 1) -> [UInt8] {
    var state = seed &* 2_654_435_761 | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 17
        state ^= state << 5
        return UInt8(truncatingIfNeeded: state >> 7)
    }
}

// MARK: Pickle

/// Writes pickle opcodes by hand, so the tests can produce exactly the byte
/// streams Python 2's cPickle (protocol 2) writes for CIFAR batches.
struct PickleWriter {
    var bytes: [UInt8] = [0x80, 2]

    mutating func op(_ character: Character) { bytes.append(character.asciiValue!) }
    mutating func le32(_ value: Int) { bytes += (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    mutating func mark() { op("(") }
    mutating func stop() { op(".") }
    mutating func emptyDict() { op("}") }
    mutating func emptyList() { op("]") }
    mutating func setItems() { op("u") }
    mutating func appends() { op("e") }
    mutating func tuple() { op("t") }
    mutating func tuple1() { bytes.append(0x85) }
    mutating func tuple2() { bytes.append(0x86) }
    mutating func tuple3() { bytes.append(0x87) }
    mutating func reduce() { op("R") }
    mutating func build() { op("b") }
    mutating func none() { op("N") }
    mutating func bool(_ value: Bool) { bytes.append(value ? 0x88 : 0x89) }
    mutating func put(_ key: Int) { op("q"); bytes.append(UInt8(key)) }
    mutating func longPut(_ key: Int) { op("r"); le32(key) }
    mutating func get(_ key: Int) { op("h"); bytes.append(UInt8(key)) }

    mutating func int(_ value: Int) {
        switch value {
        case 0..<256: op("K"); bytes.append(UInt8(value))
        case 256..<65536: op("M"); bytes += [UInt8(value & 0xFF), UInt8(value >> 8)]
        default: op("J"); le32(value)
        }
    }

    /// Python 2 `str`: SHORT_BINSTRING below 256 bytes, BINSTRING above.
    mutating func string(_ value: [UInt8]) {
        if value.count < 256 { op("U"); bytes.append(UInt8(value.count)) } else { op("T"); le32(value.count) }
        bytes += value
    }
    mutating func string(_ value: String) { string(Array(value.utf8)) }

    mutating func binBytes(_ value: [UInt8]) { op("B"); le32(value.count); bytes += value }

    /// BINUNICODE holding the latin-1 decoding of `value` (UTF-8 on the wire).
    mutating func latin1Unicode(_ value: [UInt8]) {
        let utf8 = Array(String(String.UnicodeScalarView(value.map { Unicode.Scalar($0) })).utf8)
        op("X"); le32(utf8.count); bytes += utf8
    }

    mutating func global(_ module: String, _ name: String) {
        op("c"); bytes += Array("\(module)\n\(name)\n".utf8)
    }

    enum Payload { case binString, binBytes, latin1Unicode, codecsEncode }

    /// `numpy.core.multiarray._reconstruct(ndarray, (0,), 'b')` + BUILD, as numpy pickles arrays.
    mutating func numpyArray(shape: [Int], dtype: String = "u1", data: [UInt8], payload: Payload = .binString,
                             module: String = "numpy.core.multiarray", fortran: Bool = false) {
        global(module, "_reconstruct")
        global("numpy", "ndarray")
        int(0); tuple1()
        string("b")
        tuple3()
        reduce()
        mark()
        int(1)
        mark(); for extent in shape { int(extent) }; tuple()
        global("numpy", "dtype")
        string(dtype); int(0); int(1); tuple3(); reduce()
        mark(); int(3); string("|"); none(); none(); none(); int(-1); int(-1); int(0); tuple(); build()
        bool(fortran)
        switch payload {
        case .binString: string(data)
        case .binBytes: binBytes(data)
        case .latin1Unicode: latin1Unicode(data)
        case .codecsEncode:
            global("_codecs", "encode"); latin1Unicode(data); latin1Unicode(Array("latin1".utf8)); tuple2(); reduce()
        }
        tuple()
        build()
    }

    /// A CIFAR-10 batch dict the way Python 2 wrote them (keys as str).
    static func cifarBatch(labels: [Int], data: [UInt8], payload: Payload = .binString,
                           module: String = "numpy.core.multiarray", dtype: String = "u1",
                           rows: Int? = nil, labelsKey: String = "labels") -> [UInt8] {
        var writer = PickleWriter()
        writer.emptyDict(); writer.put(1)
        writer.mark()
        writer.string("data"); writer.put(2)
        writer.numpyArray(shape: [rows ?? labels.count, 3072], dtype: dtype, data: data, payload: payload, module: module)
        writer.string(labelsKey)
        writer.emptyList(); writer.put(3)
        writer.mark(); for label in labels { writer.int(label) }; writer.appends()
        writer.string("batch_label"); writer.string("testing batch 1 of 1")
        writer.string("filenames")
        writer.emptyList()
        writer.mark()
        for index in labels.indices { writer.string("img_\(index).png"); writer.longPut(100 + index) }
        writer.appends()
        writer.setItems()
        writer.stop()
        return writer.bytes
    }

    static func meta(_ names: [String]) -> [UInt8] {
        var writer = PickleWriter()
        writer.emptyDict(); writer.put(1); writer.mark()
        writer.string("num_cases_per_batch"); writer.int(10000)
        writer.string("label_names"); writer.emptyList(); writer.put(2)
        writer.mark(); for name in names { writer.string(name) }; writer.appends()
        writer.string("num_vis"); writer.int(3072)
        writer.setItems(); writer.stop()
        return writer.bytes
    }
}

// MARK: PNG/JPEG via SDL2_image

enum ImageWriter {
    enum Format { case png, jpeg }

    /// Writes an RGB image given as interleaved bytes (r, g, b per pixel).
    static func writeRGB(_ interleaved: [UInt8], width: Int, height: Int, to path: String, format: Format = .png) throws {
        guard let surface = SDL_CreateRGBSurfaceWithFormat(0, Int32(width), Int32(height), 24, UInt32(SDL_PIXELFORMAT_RGB24.rawValue)) else {
            throw ImageWriterError(message: String(cString: SDL_GetError()))
        }
        defer { SDL_FreeSurface(surface) }
        let pitch = Int(surface.pointee.pitch)
        let pixels = surface.pointee.pixels.assumingMemoryBound(to: UInt8.self)
        for y in 0..<height {
            for x in 0..<(3 * width) { pixels[y * pitch + x] = interleaved[y * 3 * width + x] }
        }
        try save(surface, path: path, format: format)
    }

    /// Writes an 8-bit grayscale image (indexed with a gray palette, which is what SDL_image writes for 8-bit surfaces).
    static func writeGray(_ values: [UInt8], width: Int, height: Int, to path: String) throws {
        guard let surface = SDL_CreateRGBSurfaceWithFormat(0, Int32(width), Int32(height), 8, UInt32(SDL_PIXELFORMAT_INDEX8.rawValue)) else {
            throw ImageWriterError(message: String(cString: SDL_GetError()))
        }
        defer { SDL_FreeSurface(surface) }
        var colors = (0..<256).map { SDL_Color(r: UInt8($0), g: UInt8($0), b: UInt8($0), a: 255) }
        SDL_SetPaletteColors(surface.pointee.format.pointee.palette, &colors, 0, 256)
        let pitch = Int(surface.pointee.pitch)
        let pixels = surface.pointee.pixels.assumingMemoryBound(to: UInt8.self)
        for y in 0..<height {
            for x in 0..<width { pixels[y * pitch + x] = values[y * width + x] }
        }
        try save(surface, path: path, format: .png)
    }

    static func save(_ surface: UnsafeMutablePointer<SDL_Surface>, path: String, format: Format) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let status = format == .png ? IMG_SavePNG(surface, path) : IMG_SaveJPG(surface, path, 95)
        if status != 0 { throw ImageWriterError(message: String(cString: SDL_GetError())) }
    }

    struct ImageWriterError: Error { var message: String }
}
