import XCTest
@testable import SlicerData

final class IDXReaderTests: TemporaryDirectoryTestCase {
    let rows = 4, columns = 3
    lazy var pixels = patternBytes(5 * rows * columns, seed: 7)
    let labels: [UInt8] = [7, 2, 1, 0, 9]

    func writePair(prefix: String = "t10k", gzip: Bool, in subfolder: String = "") throws {
        let images = IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels)
        let labelBytes = IDXBytes.labels(labels)
        let suffix = gzip ? ".gz" : ""
        let folder = subfolder.isEmpty ? "" : subfolder + "/"
        try write(gzip ? Gzip.compress(images) : images, to: "\(folder)\(prefix)-images-idx3-ubyte\(suffix)")
        try write(gzip ? Gzip.compress(labelBytes) : labelBytes, to: "\(folder)\(prefix)-labels-idx1-ubyte\(suffix)")
    }

    func checkContent(_ set: LabeledImages, count: Int = 5) {
        XCTAssertEqual(set.count, count)
        XCTAssertEqual(set.channels, 1)
        XCTAssertEqual(set.height, rows)
        XCTAssertEqual(set.width, columns)
        XCTAssertEqual(set.pixels, Array(pixels.prefix(count * rows * columns)))
        XCTAssertEqual(set.labels, labels.prefix(count).map(Int.init))
        XCTAssertEqual(set.classNames, (0...9).map(String.init))
    }

    func testRawPairFromDirectory() throws {
        try writePair(gzip: false)
        let set = try DatasetLoader.load(directory, split: .test)
        checkContent(set)
        XCTAssertEqual(Array(set.image(at: 1)), Array(pixels[12..<24]))
        XCTAssertEqual(set.classCounts, [1, 1, 1, 0, 0, 0, 0, 1, 0, 1])
    }

    func testGzipPairFromDirectory() throws {
        try writePair(gzip: true)
        checkContent(try DatasetLoader.load(directory))
    }

    func testSplitSelectsTrainFiles() throws {
        try writePair(prefix: "train", gzip: true)
        checkContent(try DatasetLoader.load(directory, split: .train))
        let error = assertDataError(try DatasetLoader.load(self.directory, split: .test), mentioning: directory)
        XCTAssertTrue(error?.description.contains("t10k-images-idx3-ubyte") ?? false)
    }

    func testImagesFileGivenDirectlyFindsLabelsBeside() throws {
        try writePair(gzip: true)
        checkContent(try DatasetLoader.load(path("t10k-images-idx3-ubyte.gz")))
    }

    /// gzip is recognised by its magic, not by the file name.
    func testGzipDetectedByContentNotName() throws {
        try write(Gzip.compress(IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels)),
                  to: "t10k-images-idx3-ubyte")
        try write(IDXBytes.labels(labels), to: "t10k-labels-idx1-ubyte")
        checkContent(try DatasetLoader.load(directory))
    }

    func testLimitKeepsFirstImages() throws {
        try writePair(gzip: false)
        checkContent(try DatasetLoader.load(directory, limit: 3), count: 3)
        checkContent(try DatasetLoader.load(directory, limit: 50), count: 5)
    }

    func testFashionNamesWhenPathSaysFashion() throws {
        try writePair(gzip: false, in: "fashion")
        let set = try DatasetLoader.load(path("fashion"))
        XCTAssertEqual(set.classNames.first, "T-shirt/top")
        XCTAssertEqual(set.classNames.last, "Ankle boot")
    }

    func testBadImagesMagic() throws {
        var images = IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels)
        images.replaceSubrange(0..<4, with: [0, 0, 0, 0])
        let imagesPath = try write(Gzip.compress(images), to: "t10k-images-idx3-ubyte.gz")
        try write(IDXBytes.labels(labels), to: "t10k-labels-idx1-ubyte")
        let error = assertDataError(try IDXReader.load(imagesPath: imagesPath), mentioning: imagesPath)
        XCTAssertEqual(error?.description, "\(imagesPath): bad IDX magic 0x00000000 (expected 0x00000803 for images)")
    }

    func testLabelsMagicInImagesPlace() throws {
        let imagesPath = try write(IDXBytes.labels(labels), to: "t10k-images-idx3-ubyte")
        try write(IDXBytes.labels(labels), to: "t10k-labels-idx1-ubyte")
        let error = assertDataError(try IDXReader.load(imagesPath: imagesPath), mentioning: imagesPath)
        XCTAssertTrue(error?.description.contains("labels file") ?? false)
    }

    func testBadLabelsMagic() throws {
        try write(IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels), to: "t10k-images-idx3-ubyte")
        let labelsPath = try write(IDXBytes.images(count: 5, rows: 1, columns: 1, pixels: labels), to: "t10k-labels-idx1-ubyte")
        assertDataError(try DatasetLoader.load(self.directory), mentioning: labelsPath)
    }

    func testImagesShorterThanHeaderPromises() throws {
        let imagesPath = try write(IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: Array(pixels.dropLast())),
                                   to: "t10k-images-idx3-ubyte")
        try write(IDXBytes.labels(labels), to: "t10k-labels-idx1-ubyte")
        guard case .truncated = assertDataError(try DatasetLoader.load(self.directory), mentioning: imagesPath) else {
            return XCTFail("expected .truncated")
        }
    }

    func testImagesLongerThanHeaderPromises() throws {
        let imagesPath = try write(IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels + [1]),
                                   to: "t10k-images-idx3-ubyte")
        try write(IDXBytes.labels(labels), to: "t10k-labels-idx1-ubyte")
        assertDataError(try DatasetLoader.load(self.directory), mentioning: imagesPath)
    }

    func testLabelCountMustMatchImageCount() throws {
        try write(IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels), to: "t10k-images-idx3-ubyte")
        let labelsPath = try write(IDXBytes.labels(Array(labels.prefix(4))), to: "t10k-labels-idx1-ubyte")
        guard case .shapeMismatch = assertDataError(try DatasetLoader.load(self.directory), mentioning: labelsPath) else {
            return XCTFail("expected .shapeMismatch")
        }
    }

    func testTruncatedGzip() throws {
        let compressed = Gzip.compress(IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels))
        let imagesPath = try write(Array(compressed.prefix(compressed.count / 2)), to: "t10k-images-idx3-ubyte.gz")
        try write(IDXBytes.labels(labels), to: "t10k-labels-idx1-ubyte")
        guard case .truncated = assertDataError(try DatasetLoader.load(self.directory), mentioning: imagesPath) else {
            return XCTFail("expected .truncated")
        }
    }

    func testCorruptGzipChecksum() throws {
        var compressed = Gzip.compress(IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels))
        compressed[compressed.count - 6] ^= 0xFF // inside the CRC-32 trailer
        let imagesPath = try write(compressed, to: "t10k-images-idx3-ubyte.gz")
        try write(IDXBytes.labels(labels), to: "t10k-labels-idx1-ubyte")
        guard case .corrupt = assertDataError(try DatasetLoader.load(self.directory), mentioning: imagesPath) else {
            return XCTFail("expected .corrupt")
        }
    }

    func testMissingLabelsFile() throws {
        let imagesPath = try write(IDXBytes.images(count: 5, rows: rows, columns: columns, pixels: pixels), to: "t10k-images-idx3-ubyte")
        guard case .missingFile = assertDataError(try DatasetLoader.load(imagesPath), mentioning: imagesPath) else {
            return XCTFail("expected .missingFile")
        }
    }

    func testZeroImagesIsAnEmptySet() throws {
        let imagesPath = try write(IDXBytes.images(count: 0, rows: rows, columns: columns, pixels: []), to: "t10k-images-idx3-ubyte")
        try write(IDXBytes.labels([]), to: "t10k-labels-idx1-ubyte")
        guard case .emptySet = assertDataError(try DatasetLoader.load(self.directory), mentioning: imagesPath) else {
            return XCTFail("expected .emptySet")
        }
    }

    func testGzipRoundTripOfLargerBuffer() throws {
        let data = patternBytes(300_000, seed: 3) + [UInt8](repeating: 0, count: 500_000)
        XCTAssertEqual(try Gzip.decompress(Gzip.compress(data), path: "memory"), data)
        // Concatenated members decode to the concatenation.
        let twice = Gzip.compress([1, 2, 3]) + Gzip.compress([4, 5])
        XCTAssertEqual(try Gzip.decompress(twice, path: "memory"), [1, 2, 3, 4, 5])
    }
}
