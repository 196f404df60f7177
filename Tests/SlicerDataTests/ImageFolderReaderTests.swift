import XCTest
@testable import SlicerData

final class ImageFolderReaderTests: TemporaryDirectoryTestCase {
    /// Interleaved RGB bytes → planar R, G, B.
    func planar(_ interleaved: [UInt8]) -> [UInt8] {
        (0..<3).flatMap { c in stride(from: c, to: interleaved.count, by: 3).map { interleaved[$0] } }
    }

    func testColourFolderReadsBackExactly() throws {
        let cat0 = patternBytes(5 * 4 * 3, seed: 1), cat1 = patternBytes(5 * 4 * 3, seed: 2), dog0 = patternBytes(5 * 4 * 3, seed: 3)
        // Written out of order: classes and files must come back sorted by name.
        try ImageWriter.writeRGB(dog0, width: 5, height: 4, to: path("dog/a.png"))
        try ImageWriter.writeRGB(cat1, width: 5, height: 4, to: path("cat/b.PNG"))
        try ImageWriter.writeRGB(cat0, width: 5, height: 4, to: path("cat/a.png"))
        try write(Array("not an image".utf8), to: "cat/notes.txt") // ignored
        let set = try DatasetLoader.load(directory)
        XCTAssertEqual(set.classNames, ["cat", "dog"])
        XCTAssertEqual(set.labels, [0, 0, 1])
        XCTAssertEqual([set.channels, set.height, set.width], [3, 4, 5])
        XCTAssertEqual(set.pixels, planar(cat0) + planar(cat1) + planar(dog0))
        XCTAssertEqual(try DatasetLoader.load(directory, limit: 2).labels, [0, 0])
    }

    func testGrayFolderBecomesOneChannel() throws {
        let a = patternBytes(6 * 2, seed: 5), b = patternBytes(6 * 2, seed: 6)
        try ImageWriter.writeGray(a, width: 6, height: 2, to: path("0/x.png"))
        try ImageWriter.writeGray(b, width: 6, height: 2, to: path("1/y.png"))
        let set = try DatasetLoader.load(directory)
        XCTAssertEqual(set.channels, 1)
        XCTAssertEqual(set.pixels, a + b)
        // The caller can insist on three channels (replicated).
        let colour = try ImageFolderReader.load(directory: directory, channels: 3)
        XCTAssertEqual(colour.pixels, a + a + a + b + b + b)
    }

    func testColourToOneChannelUsesLuminance() throws {
        try ImageWriter.writeRGB([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30], width: 4, height: 1, to: path("k/a.png"))
        let set = try ImageFolderReader.load(directory: directory, channels: 1)
        // round(0.299·255) = 76, round(0.587·255) = 150, round(0.114·255) = 29, round(2.99 + 11.74 + 3.42) = 18
        XCTAssertEqual(set.pixels, [76, 150, 29, 18])
    }

    func testSizeMismatchIsRefusedUnlessResizing() throws {
        try ImageWriter.writeRGB(patternBytes(4 * 4 * 3), width: 4, height: 4, to: path("a/1.png"))
        try ImageWriter.writeRGB(patternBytes(2 * 2 * 3), width: 2, height: 2, to: path("a/2.png"))
        let error = assertDataError(try DatasetLoader.load(self.directory), mentioning: path("a/2.png"))
        guard case .shapeMismatch = error else { return XCTFail("expected .shapeMismatch") }
        let resized = try DatasetLoader.load(directory, imageSize: ImageSize(width: 3, height: 3))
        XCTAssertEqual([resized.count, resized.height, resized.width], [2, 3, 3])
    }

    func testResizingSolidImageKeepsColour() throws {
        let solid = [UInt8](repeating: 0, count: 7 * 5 * 3).enumerated().map { UInt8([200, 100, 50][$0.offset % 3]) }
        try ImageWriter.writeRGB(solid, width: 7, height: 5, to: path("a/1.png"))
        let set = try ImageFolderReader.load(directory: directory, targetSize: ImageSize(width: 3, height: 2))
        XCTAssertEqual(set.pixels, [UInt8](repeating: 200, count: 6) + [UInt8](repeating: 100, count: 6) + [UInt8](repeating: 50, count: 6))
    }

    func testResizeModeForImageFiles() throws {
        let file = path("g.png")
        try ImageWriter.writeGray([0, 255], width: 2, height: 1, to: file)
        let size = ImageSize(width: 4, height: 1)
        XCTAssertEqual(try DatasetLoader.load(file, imageSize: size, imageResize: .nearest).pixels, [0, 0, 255, 255])
        // Bilinear samples 0, 0.25, 0.75, 1 of the way: 63.75 and 191.25 round to 64 and 191.
        XCTAssertEqual(try DatasetLoader.load(file, imageSize: size).pixels, [0, 64, 191, 255])
    }

    func testSingleImageFileIsUnlabelled() throws {
        let rgb = patternBytes(3 * 2 * 3, seed: 8)
        let file = path("one.png")
        try ImageWriter.writeRGB(rgb, width: 3, height: 2, to: file)
        let set = try DatasetLoader.load(file)
        XCTAssertEqual(set.labels, [-1])
        XCTAssertEqual(set.classNames, [])
        XCTAssertEqual(set.classCounts, [])
        XCTAssertEqual(set.pixels, planar(rgb))
    }

    func testJPEGIsDecoded() throws {
        let solid: [UInt8] = (0..<(8 * 8)).flatMap { _ -> [UInt8] in [30, 140, 220] }
        let file = path("c/photo.jpg")
        try ImageWriter.writeRGB(solid, width: 8, height: 8, to: file, format: .jpeg)
        let set = try DatasetLoader.load(directory)
        XCTAssertEqual(set.channels, 3)
        for (plane, expected) in [30, 140, 220].enumerated() {
            for value in set.pixels[(plane * 64)..<((plane + 1) * 64)] {
                XCTAssertLessThanOrEqual(abs(Int(value) - expected), 4) // JPEG is lossy
            }
        }
    }

    func testUndecodableImage() throws {
        let file = try write(patternBytes(100), to: "a/broken.png")
        guard case .corrupt = assertDataError(try DatasetLoader.load(self.directory), mentioning: file) else {
            return XCTFail("expected .corrupt")
        }
    }

    func testFolderWithoutImages() throws {
        try write([1, 2, 3], to: "a/readme.txt")
        assertDataError(try DatasetLoader.load(self.directory), mentioning: directory)
    }
}
