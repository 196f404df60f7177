import XCTest
@testable import SlicerData

final class CIFARBinaryTests: TemporaryDirectoryTestCase {
    func records(_ labels: [UInt8], seed: UInt32) -> (file: [UInt8], pixels: [UInt8]) {
        let pixels = patternBytes(labels.count * 3072, seed: seed)
        var file: [UInt8] = []
        for (index, label) in labels.enumerated() {
            file.append(label)
            file += pixels[(index * 3072)..<((index + 1) * 3072)]
        }
        return (file, pixels)
    }

    func testTestSplitReadsBackExactly() throws {
        let batch = records([3, 8, 8, 0], seed: 11)
        try write(batch.file, to: "test_batch.bin")
        try write(Array("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n".utf8), to: "batches.meta.txt")
        let set = try DatasetLoader.load(directory, split: .test)
        XCTAssertEqual(set.count, 4)
        XCTAssertEqual([set.channels, set.height, set.width], [3, 32, 32])
        XCTAssertEqual(set.labels, [3, 8, 8, 0])
        XCTAssertEqual(set.pixels, batch.pixels)
        XCTAssertEqual(set.classNames[3], "cat")
        XCTAssertEqual(set.classCounts, [1, 0, 0, 1, 0, 0, 0, 0, 2, 0])
        // Planes are R, G, B as in the file: the green plane of image 1 starts 1024 bytes in.
        XCTAssertEqual(set.image(at: 1)[3072 + 1024], batch.pixels[3072 + 1024])
    }

    func testTrainSplitConcatenatesExistingBatchesInOrder() throws {
        let first = records([1, 2], seed: 1)
        let third = records([5], seed: 3)
        try write(third.file, to: "data_batch_3.bin")
        try write(first.file, to: "data_batch_1.bin")
        try write(records([9], seed: 9).file, to: "test_batch.bin")
        let set = try DatasetLoader.load(directory, split: .train)
        XCTAssertEqual(set.labels, [1, 2, 5])
        XCTAssertEqual(set.pixels, first.pixels + third.pixels)
        XCTAssertEqual(set.classNames, CIFARReader.defaultClassNames) // no meta file
        let limited = try DatasetLoader.load(directory, split: .train, limit: 2)
        XCTAssertEqual(limited.labels, [1, 2])
    }

    func testSingleBatchFileGivenDirectly() throws {
        let batch = records([4, 6, 7], seed: 5)
        let file = try write(batch.file, to: "some_batch.bin")
        let set = try DatasetLoader.load(file)
        XCTAssertEqual(set.labels, [4, 6, 7])
        XCTAssertEqual(set.pixels, batch.pixels)
    }

    func testFileThatIsNotWholeRecordsIsRejected() throws {
        let file = try write(records([1, 2], seed: 2).file.dropLast(100).map { $0 }, to: "test_batch.bin")
        let error = assertDataError(try DatasetLoader.load(self.directory), mentioning: file)
        XCTAssertTrue(error?.description.contains("whole number of 3073-byte") ?? false, "\(String(describing: error))")
    }

    func testLabelOutOfRangeIsRejected() throws {
        var batch = records([1, 2], seed: 2).file
        batch[3073] = 10
        let file = try write(batch, to: "test_batch.bin")
        guard case .corrupt = assertDataError(try DatasetLoader.load(self.directory), mentioning: file) else {
            return XCTFail("expected .corrupt")
        }
    }

    func testEmptyBatchIsAnEmptySet() throws {
        try write([], to: "test_batch.bin")
        guard case .emptySet = assertDataError(try DatasetLoader.load(self.directory), mentioning: directory) else {
            return XCTFail("expected .emptySet")
        }
    }

    func testMissingSplitFile() throws {
        try write(records([1], seed: 1).file, to: "data_batch_1.bin")
        guard case .missingFile = assertDataError(try DatasetLoader.load(self.directory, split: .test), mentioning: directory) else {
            return XCTFail("expected .missingFile")
        }
    }
}

final class CIFARPythonTests: TemporaryDirectoryTestCase {
    let names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

    func testRealPython3PickleFixture() throws {
        let folder = "cifar-10-batches-py"
        try write(RealFixtures.decode(RealFixtures.cifarBatchBase64), to: "\(folder)/test_batch")
        try write(RealFixtures.decode(RealFixtures.cifarMetaBase64), to: "\(folder)/batches.meta")
        // The wrapper folder is found from its parent, as torchvision lays it out.
        let set = try DatasetLoader.load(directory)
        XCTAssertEqual(set.labels, [3, 1, 4])
        XCTAssertEqual(set.pixels, (0..<(3 * 3072)).map { UInt8(truncatingIfNeeded: $0) })
        XCTAssertEqual(set.classNames, names)
        XCTAssertEqual([set.channels, set.height, set.width], [3, 32, 32])
    }

    func testPython2StylePickleWithBinString() throws {
        let data = patternBytes(2 * 3072, seed: 21)
        try write(PickleWriter.cifarBatch(labels: [9, 0], data: data), to: "test_batch")
        try write(PickleWriter.meta(names), to: "batches.meta")
        let set = try DatasetLoader.load(directory)
        XCTAssertEqual(set.labels, [9, 0])
        XCTAssertEqual(set.pixels, data)
        XCTAssertEqual(set.classNames, names)
    }

    func testPayloadVariants() throws {
        let data = patternBytes(3072, seed: 4)
        let variants: [(PickleWriter.Payload, String)] = [
            (.binBytes, "numpy.core.multiarray"), (.latin1Unicode, "numpy._core.multiarray"),
            (.codecsEncode, "numpy._core.multiarray"), (.binString, "numpy._core.multiarray"),
        ]
        for (payload, module) in variants {
            let file = try write(PickleWriter.cifarBatch(labels: [6], data: data, payload: payload, module: module),
                                 to: "v/test_batch")
            let set = try CIFARReader.loadPython(files: [file])
            XCTAssertEqual(set.pixels, data, "\(payload) \(module)")
            XCTAssertEqual(set.labels, [6])
            XCTAssertEqual(set.classNames, CIFARReader.defaultClassNames) // no meta file beside it
        }
    }

    func testTrainSplitAndLimit() throws {
        let first = patternBytes(2 * 3072, seed: 1), second = patternBytes(3072, seed: 2)
        try write(PickleWriter.cifarBatch(labels: [1, 2], data: first), to: "data_batch_1")
        try write(PickleWriter.cifarBatch(labels: [3], data: second), to: "data_batch_2")
        let set = try DatasetLoader.load(directory, split: .train)
        XCTAssertEqual(set.labels, [1, 2, 3])
        XCTAssertEqual(set.pixels, first + second)
        XCTAssertEqual(try DatasetLoader.load(directory, split: .train, limit: 1).labels, [1])
    }

    func testPickleFileGivenDirectly() throws {
        let file = try write(RealFixtures.decode(RealFixtures.cifarBatchBase64), to: "batch.pkl")
        XCTAssertEqual(try DatasetLoader.load(file).labels, [3, 1, 4])
    }

    func testForeignGlobalIsRefused() throws {
        var writer = PickleWriter()
        writer.global("os", "system"); writer.string("echo hi"); writer.tuple1(); writer.reduce(); writer.stop()
        let file = try write(writer.bytes, to: "test_batch")
        let error = assertDataError(try DatasetLoader.load(self.directory), mentioning: file)
        XCTAssertTrue(error?.description.contains("os.system") ?? false)
        guard case .unsupportedFormat = error else { return XCTFail("expected .unsupportedFormat") }
    }

    func testWrongDtypeIsRefused() throws {
        let file = try write(PickleWriter.cifarBatch(labels: [1], data: patternBytes(3072), dtype: "<f4"), to: "test_batch")
        let error = assertDataError(try DatasetLoader.load(self.directory), mentioning: file)
        XCTAssertTrue(error?.description.contains("<f4") ?? false)
    }

    func testRowCountMustMatchLabels() throws {
        let file = try write(PickleWriter.cifarBatch(labels: [1, 2], data: patternBytes(2 * 3072), rows: 1), to: "test_batch")
        assertDataError(try DatasetLoader.load(self.directory), mentioning: file)
    }

    func testLabelOutOfRange() throws {
        let file = try write(PickleWriter.cifarBatch(labels: [1, 10], data: patternBytes(2 * 3072)), to: "test_batch")
        guard case .corrupt = assertDataError(try DatasetLoader.load(self.directory), mentioning: file) else {
            return XCTFail("expected .corrupt")
        }
    }

    func testCIFAR100IsRefusedClearly() throws {
        let file = try write(PickleWriter.cifarBatch(labels: [1], data: patternBytes(3072), labelsKey: "fine_labels"), to: "test_batch")
        let error = assertDataError(try DatasetLoader.load(self.directory), mentioning: file)
        XCTAssertTrue(error?.description.contains("CIFAR-100") ?? false)
    }

    func testTruncatedPickle() throws {
        let full = RealFixtures.decode(RealFixtures.cifarBatchBase64)
        let file = try write(Array(full.prefix(5000)), to: "test_batch")
        guard case .truncated = assertDataError(try DatasetLoader.load(self.directory), mentioning: file) else {
            return XCTFail("expected .truncated")
        }
    }

    func testRandomBytesAreNotAPickle() throws {
        let file = try write([0x80, 0x02] + patternBytes(4000, seed: 99), to: "test_batch")
        assertDataError(try DatasetLoader.load(self.directory), mentioning: file)
    }

    func testMetaWithWrongStructure() throws {
        try write(PickleWriter.cifarBatch(labels: [1], data: patternBytes(3072)), to: "test_batch")
        var writer = PickleWriter()
        writer.emptyList(); writer.stop()
        let meta = try write(writer.bytes, to: "batches.meta")
        assertDataError(try DatasetLoader.load(self.directory), mentioning: meta)
    }
}
