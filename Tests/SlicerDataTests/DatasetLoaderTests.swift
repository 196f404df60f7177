import Foundation
import XCTest
@testable import SlicerData

final class DatasetLoaderTests: TemporaryDirectoryTestCase {
    func testCandidateDirectoriesFollowEnvironmentOrder() {
        let env = ["CNNSLICER_DATA": "/data", "XDG_DATA_HOME": "/xdg", "HOME": "/home/u"]
        XCTAssertEqual(DatasetLoader.candidateDirectories(forName: "fashion-mnist", environment: env),
                       ["/data/fashion-mnist", "/xdg/cnnslicer/fashion-mnist", "/usr/share/datasets/fashion-mnist"])
        XCTAssertEqual(DatasetLoader.candidateDirectories(forName: "mnist", environment: ["HOME": "/home/u"]),
                       ["/home/u/.local/share/cnnslicer/mnist"])
    }

    func testNameResolvesThroughCNNSLICER_DATA() throws {
        let labels: [UInt8] = [1, 2]
        try write(Gzip.compress(IDXBytes.images(count: 2, rows: 2, columns: 2, pixels: patternBytes(8))),
                  to: "fashion-mnist/t10k-images-idx3-ubyte.gz")
        try write(Gzip.compress(IDXBytes.labels(labels)), to: "fashion-mnist/t10k-labels-idx1-ubyte.gz")
        try write(Gzip.compress(IDXBytes.images(count: 2, rows: 2, columns: 2, pixels: patternBytes(8))),
                  to: "mnist/t10k-images-idx3-ubyte.gz")
        try write(Gzip.compress(IDXBytes.labels(labels)), to: "mnist/t10k-labels-idx1-ubyte.gz")
        let previous = ProcessInfo.processInfo.environment["CNNSLICER_DATA"]
        setenv("CNNSLICER_DATA", directory, 1)
        defer { if let previous { setenv("CNNSLICER_DATA", previous, 1) } else { unsetenv("CNNSLICER_DATA") } }
        // (An existing path wins over a name; the test's working directory has no "mnist" entry.)
        let fashion = try DatasetLoader.load("fashion-mnist")
        XCTAssertEqual(fashion.classNames[1], "Trouser")
        XCTAssertEqual(fashion.source, directory + "/fashion-mnist/t10k-images-idx3-ubyte.gz")
        let mnist = try DatasetLoader.load("mnist")
        XCTAssertEqual(mnist.classNames[1], "1")
        XCTAssertEqual(mnist.labels, [1, 2])
    }

    func testUnknownNameAndMissingPath() {
        let missing = path("nothing-here")
        guard case .missingFile = assertDataError(try DatasetLoader.load(missing), mentioning: missing) else {
            return XCTFail("expected .missingFile")
        }
    }

    func testRandomFileIsUnrecognised() throws {
        let file = try write(patternBytes(1000, seed: 42), to: "mystery.dat")
        guard case .unsupportedFormat = assertDataError(try DatasetLoader.load(file), mentioning: file) else {
            return XCTFail("expected .unsupportedFormat")
        }
        let empty = try write([], to: "empty.dat")
        assertDataError(try DatasetLoader.load(empty), mentioning: empty)
    }

    func testEmptyDirectoryIsUnrecognised() {
        assertDataError(try DatasetLoader.load(self.directory), mentioning: directory)
    }

    func testLimitMustBePositive() throws {
        try write(IDXBytes.images(count: 1, rows: 1, columns: 1, pixels: [5]), to: "t10k-images-idx3-ubyte")
        try write(IDXBytes.labels([3]), to: "t10k-labels-idx1-ubyte")
        XCTAssertEqual(try DatasetLoader.load(directory, limit: 1).pixels, [5])
        assertDataError(try DatasetLoader.load(self.directory, limit: 0), mentioning: directory)
    }

    func testImageFolderSplitIntoTrainAndTest() throws {
        try ImageWriter.writeGray([1, 2], width: 2, height: 1, to: path("train/a/x.png"))
        try ImageWriter.writeGray([3, 4], width: 2, height: 1, to: path("test/a/x.png"))
        try ImageWriter.writeGray([5, 6], width: 2, height: 1, to: path("test/b/x.png"))
        XCTAssertEqual(try DatasetLoader.load(directory, split: .test).pixels, [3, 4, 5, 6])
        XCTAssertEqual(try DatasetLoader.load(directory, split: .train).pixels, [1, 2])
    }
}

final class LabeledImagesTests: XCTestCase {
    func makeSet() throws -> LabeledImages {
        try LabeledImages(channels: 1, height: 1, width: 2, pixels: [0, 1, 10, 11, 20, 21, 30, 31],
                          labels: [2, 0, 2, -1], classNames: ["a", "b", "c"], source: "memory")
    }

    func testAccessors() throws {
        let set = try makeSet()
        XCTAssertEqual(set.count, 4)
        XCTAssertEqual(Array(set.image(at: 2)), [20, 21])
        XCTAssertEqual(set.classCounts, [1, 0, 2])
        XCTAssertEqual(set.indices(ofClass: 2), [0, 2])
    }

    func testSubsetAndPrefix() throws {
        let set = try makeSet()
        let subset = set.subset([3, 0, 0])
        XCTAssertEqual(subset.pixels, [30, 31, 0, 1, 0, 1])
        XCTAssertEqual(subset.labels, [-1, 2, 2])
        XCTAssertEqual(subset.classNames, set.classNames)
        XCTAssertEqual(set.prefix(2).pixels, [0, 1, 10, 11])
        XCTAssertEqual(set.prefix(2).labels, [2, 0])
        XCTAssertEqual(set.prefix(99), set)
    }

    func testInitValidates() {
        XCTAssertThrowsError(try LabeledImages(channels: 1, height: 1, width: 2, pixels: [0, 1, 2], labels: [0, 0],
                                               classNames: ["a"], source: "memory"))
        XCTAssertThrowsError(try LabeledImages(channels: 1, height: 1, width: 1, pixels: [0], labels: [1],
                                               classNames: ["a"], source: "memory"))
        XCTAssertThrowsError(try LabeledImages(channels: 0, height: 1, width: 1, pixels: [], labels: [],
                                               classNames: [], source: "memory"))
    }
}
