import XCTest
@testable import SlicerData

final class NPYArrayTests: TemporaryDirectoryTestCase {
    func header(_ dictionary: String, version: UInt8 = 1) -> [UInt8] {
        var text = dictionary
        let prefix = version == 1 ? 10 : 12
        text += String(repeating: " ", count: (64 - (prefix + text.utf8.count + 1) % 64) % 64) + "\n"
        let length = text.utf8.count
        let lengthBytes: [UInt8] = version == 1
            ? [UInt8(length & 0xFF), UInt8(length >> 8)]
            : [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), 0, 0]
        return [0x93] + Array("NUMPY".utf8) + [version, 0] + lengthBytes + Array(text.utf8)
    }

    func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }

    func testFloat32RoundTrip() throws {
        let values: [Float] = [0, -0.0, 1.5, -3.25e-8, .greatestFiniteMagnitude, .infinity, .nan, 7]
        let file = path("a.npy")
        try NPYArray(shape: [2, 4], float32: values).write(to: file)
        let back = try NPYArray.read(path: file)
        XCTAssertEqual(back.shape, [2, 4])
        XCTAssertEqual(back.floatValues?.map(\.bitPattern), values.map(\.bitPattern))
        XCTAssertEqual(try NPYArray.readFloat32(path: file, expectedShape: [2, 4]).count, 8)
        // numpy's layout: 64-byte aligned data and a newline-terminated header.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        XCTAssertEqual(bytes.count, 128 + 32)
        XCTAssertEqual(bytes[127], 0x0A)
        // Only the target is left behind, no temporary file.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["a.npy"])
    }

    func testUInt8RoundTripAndScalarAndEmptyShapes() throws {
        for (shape, values) in [([5], [UInt8]([0, 1, 127, 128, 255])), ([], [42]), ([0, 3], [])] {
            let file = path("u.npy")
            try NPYArray(shape: shape, uint8: values).write(to: file) // overwrites the previous one
            let back = try NPYArray.read(path: file)
            XCTAssertEqual(back, NPYArray(shape: shape, uint8: values))
        }
    }

    func testMatchesNumpyBytes() throws {
        let numpyFile = RealFixtures.decode(RealFixtures.npyFloat32Base64)
        let array = try NPYArray.decode(numpyFile, path: "fixture")
        XCTAssertEqual(array.shape, [2, 3])
        XCTAssertEqual(array.floatValues?.map(\.bitPattern), ([1.5, -2, 0.25, 3e-8, 1e30, -0.0] as [Float]).map(\.bitPattern))
        XCTAssertEqual(try array.encoded(), numpyFile) // what we write is byte-identical to np.save
    }

    func testVersion2Header() throws {
        let file = try write(header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", version: 2)
                                + floatBytes([1, 2, 3]), to: "v2.npy")
        XCTAssertEqual(try NPYArray.readFloat32(path: file, expectedShape: [3]), [1, 2, 3])
    }

    func testKeysInAnyOrderAndPython2Longs() throws {
        let file = try write(header("{'shape': (1L, 2L), 'fortran_order': False, 'descr': '|u1'}") + [9, 8], to: "o.npy")
        XCTAssertEqual(try NPYArray.read(path: file), NPYArray(shape: [1, 2], uint8: [9, 8]))
    }

    func testRejectsWrongDtypes() throws {
        for descr in ["<f8", ">f4", "<i4", "|b1"] {
            let file = try write(header("{'descr': '\(descr)', 'fortran_order': False, 'shape': (2,), }") + [UInt8](repeating: 0, count: 16),
                                 to: "bad.npy")
            let error = assertDataError(try NPYArray.read(path: file), mentioning: file)
            XCTAssertTrue(error?.description.contains(descr) ?? false, "\(String(describing: error))")
        }
    }

    func testRejectsFortranOrder() throws {
        let file = try write(header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }") + floatBytes([1, 2, 3, 4]), to: "f.npy")
        let error = assertDataError(try NPYArray.read(path: file), mentioning: file)
        XCTAssertTrue(error?.description.contains("fortran_order") ?? false)
    }

    func testRejectsWrongShapeAndDtypeInReadFloat32() throws {
        let file = path("s.npy")
        try NPYArray(shape: [2, 3], float32: [1, 2, 3, 4, 5, 6]).write(to: file)
        guard case .shapeMismatch = assertDataError(try NPYArray.readFloat32(path: file, expectedShape: [3, 2]), mentioning: file) else {
            return XCTFail("expected .shapeMismatch")
        }
        try NPYArray(shape: [2], uint8: [1, 2]).write(to: file)
        assertDataError(try NPYArray.readFloat32(path: file, expectedShape: [2]), mentioning: file)
    }

    func testRejectsTruncatedAndOverlongData() throws {
        let dictionary = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
        let short = try write(header(dictionary) + floatBytes([1, 2, 3]), to: "short.npy")
        guard case .truncated = assertDataError(try NPYArray.read(path: short), mentioning: short) else {
            return XCTFail("expected .truncated")
        }
        let long = try write(header(dictionary) + floatBytes([1, 2, 3, 4, 5]), to: "long.npy")
        assertDataError(try NPYArray.read(path: long), mentioning: long)
        let cut = try write(Array(header(dictionary).prefix(30)), to: "cut.npy")
        assertDataError(try NPYArray.read(path: cut), mentioning: cut)
    }

    func testRejectsRandomBytesMalformedHeaderAndMissingFile() throws {
        let random = try write(patternBytes(200, seed: 5), to: "random.npy")
        assertDataError(try NPYArray.read(path: random), mentioning: random)
        let malformed = try write(header("{'descr': '<f4', 'shape': (2,), }") + floatBytes([1, 2]), to: "m.npy")
        assertDataError(try NPYArray.read(path: malformed), mentioning: malformed)
        let missing = path("nope.npy")
        guard case .missingFile = assertDataError(try NPYArray.read(path: missing), mentioning: missing) else {
            return XCTFail("expected .missingFile")
        }
    }

    func testWriteRejectsInconsistentShapeAndUnwritableDirectory() throws {
        let file = path("x.npy")
        assertDataError(try NPYArray(shape: [2, 2], float32: [1, 2, 3]).write(to: file), mentioning: file)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        let nowhere = path("no/such/dir/x.npy")
        guard case .ioFailure = assertDataError(try NPYArray(shape: [1], float32: [1]).write(to: nowhere), mentioning: nowhere) else {
            return XCTFail("expected .ioFailure")
        }
    }
}
