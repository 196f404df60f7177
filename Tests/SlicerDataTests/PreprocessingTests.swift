import XCTest
@testable import SlicerData

final class PreprocessingTests: XCTestCase {
    func images(channels: Int, height: Int, width: Int, pixels: [UInt8]) throws -> LabeledImages {
        let count = pixels.count / (channels * height * width)
        return try LabeledImages(channels: channels, height: height, width: width, pixels: pixels,
                                 labels: [Int](repeating: -1, count: count), classNames: [], source: "test images")
    }

    func run(_ preprocessing: Preprocessing, _ set: LabeledImages, _ indices: [Int],
             channels: Int, height: Int, width: Int) throws -> [Float] {
        try preprocessing.tensor(set, indices: indices, channels: channels, height: height, width: width)
    }

    /// The formula of SPEC §1 written out directly, one value at a time.
    func reference(_ set: LabeledImages, _ indices: [Int], channels: Int, mean: [Float], std: [Float]) -> [Float] {
        var out: [Float] = []
        let plane = set.height * set.width
        for index in indices {
            let image = Array(set.image(at: index))
            for c in 0..<channels {
                let m = mean.count == 1 ? mean[0] : mean[c], s = std.count == 1 ? std[0] : std[c]
                for i in 0..<plane {
                    let x: Float
                    if set.channels == channels {
                        x = Float(image[c * plane + i]) / 255
                    } else if set.channels == 1 {
                        x = Float(image[i]) / 255
                    } else {
                        x = (0.299 * Float(image[i]) + 0.587 * Float(image[plane + i]) + 0.114 * Float(image[2 * plane + i])) / 255
                    }
                    out.append((x - m) / s)
                }
            }
        }
        return out
    }

    func assertClose(_ actual: [Float], _ expected: [Float], accuracy: Float = 1e-6,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for (i, (a, e)) in zip(actual, expected).enumerated() where abs(a - e) > accuracy {
            XCTFail("element \(i): \(a) != \(e)", file: file, line: line)
            return
        }
    }

    func testPerChannelMeanStdMatchesReferenceExactly() throws {
        let set = try images(channels: 3, height: 5, width: 4, pixels: patternBytes(3 * 3 * 5 * 4, seed: 2))
        let mean: [Float] = [0.4914, 0.4822, 0.4465], std: [Float] = [0.2470, 0.2435, 0.2616]
        let p = Preprocessing(mean: mean, std: std)
        let indices = [2, 0, 2] // order kept, repeats allowed
        XCTAssertEqual(try run(p, set, indices, channels: 3, height: 5, width: 4),
                       reference(set, indices, channels: 3, mean: mean, std: std))
    }

    func testDefaultIsUOver255AndRangeIndices() throws {
        let set = try images(channels: 1, height: 1, width: 3, pixels: [0, 51, 255, 1, 2, 3])
        var out = [Float](repeating: -9, count: 4)
        try out.withUnsafeMutableBufferPointer { buffer in
            try Preprocessing().fill(set, indices: 1..<2, channels: 1, height: 1, width: 3, into: buffer.baseAddress!)
        }
        XCTAssertEqual(out, [1 / 255, 2 / 255, 3 / 255, -9]) // writes exactly one image, nothing more
        XCTAssertEqual(try run(Preprocessing(), set, [0], channels: 1, height: 1, width: 3), [0, 0.2, 1])
    }

    func testSingleMeanStdAppliesToAllChannels() throws {
        let set = try images(channels: 3, height: 2, width: 2, pixels: patternBytes(12, seed: 3))
        let p = Preprocessing(mean: [0.5], std: [0.25])
        XCTAssertEqual(try run(p, set, [0], channels: 3, height: 2, width: 2),
                       reference(set, [0], channels: 3, mean: [0.5], std: [0.25]))
    }

    func testGrayIsReplicatedForColourModel() throws {
        let set = try images(channels: 1, height: 2, width: 3, pixels: patternBytes(12, seed: 4))
        let mean: [Float] = [0.1, 0.2, 0.3], std: [Float] = [0.5, 1, 2]
        let out = try run(Preprocessing(mean: mean, std: std), set, [1, 0], channels: 3, height: 2, width: 3)
        XCTAssertEqual(out, reference(set, [1, 0], channels: 3, mean: mean, std: std))
        // Spot check by hand: image 1, channel 2, pixel 0.
        XCTAssertEqual(out[12], (Float(set.pixels[6]) / 255 - 0.3) / 2)
    }

    func testColourIsReducedByLuminanceForGrayModel() throws {
        let set = try images(channels: 3, height: 1, width: 2, pixels: [255, 0, 0, 255, 0, 0])
        let out = try run(Preprocessing(mean: [0.5], std: [0.5]), set, [0], channels: 1, height: 1, width: 2)
        assertClose(out, [(0.299 - 0.5) / 0.5, (0.587 - 0.5) / 0.5])
        let random = try images(channels: 3, height: 3, width: 3, pixels: patternBytes(54, seed: 9))
        XCTAssertEqual(try run(Preprocessing(mean: [0.1], std: [0.3]), random, [1, 0], channels: 1, height: 3, width: 3),
                       reference(random, [1, 0], channels: 1, mean: [0.1], std: [0.3]))
    }

    func testBilinearUpsampleHandComputed() throws {
        // u = [[0, 204], [102, 51]] → x = [[0, 0.8], [0.4, 0.2]]. With half-pixel
        // centres, 2→4 samples source positions 0, 0.25, 0.75, 1 (edges clamped).
        let set = try images(channels: 1, height: 2, width: 2, pixels: [0, 204, 102, 51])
        let out = try run(Preprocessing(resize: .bilinear), set, [0], channels: 1, height: 4, width: 4)
        assertClose(out, [
            0.0, 0.2, 0.6, 0.8,
            0.1, 0.2375, 0.5125, 0.65,
            0.3, 0.3125, 0.3375, 0.35,
            0.4, 0.35, 0.25, 0.2,
        ])
    }

    func testBilinearNonUniformAndDownsample() throws {
        // 1×2 → 1×3: source positions max(0, (d + 0.5)·2/3 − 0.5) = 0, 0.5, 1.1667 → clamped to 1.
        let wide = try images(channels: 1, height: 1, width: 2, pixels: [0, 255])
        assertClose(try run(Preprocessing(resize: .bilinear), wide, [0], channels: 1, height: 1, width: 3), [0, 0.5, 1])
        // 1×4 → 1×2: positions 0.5 and 2.5, i.e. the means of pixel pairs.
        let row = try images(channels: 1, height: 1, width: 4, pixels: [0, 51, 102, 255])
        assertClose(try run(Preprocessing(resize: .bilinear), row, [0], channels: 1, height: 1, width: 2), [0.1, 0.7])
    }

    func testNearestHandComputed() throws {
        // 2→4 takes source pixels 0, 0, 1, 1 on each axis.
        let small = try images(channels: 1, height: 2, width: 2, pixels: [0, 51, 102, 255])
        assertClose(try run(Preprocessing(resize: .nearest), small, [0], channels: 1, height: 4, width: 4), [
            0, 0, 0.2, 0.2,
            0, 0, 0.2, 0.2,
            0.4, 0.4, 1, 1,
            0.4, 0.4, 1, 1,
        ])
        // 3→2 takes pixels floor(0.75) = 0 and floor(2.25) = 2.
        let three = try images(channels: 1, height: 3, width: 3, pixels: [0, 10, 20, 30, 40, 50, 60, 70, 80])
        assertClose(try run(Preprocessing(resize: .nearest), three, [0], channels: 1, height: 2, width: 2),
                    [0, 20, 60, 80].map { Float($0) / 255 })
    }

    func testResizeWithNormalisationAndReplication() throws {
        // Resizing a constant image leaves it constant; normalisation still applies per channel.
        let set = try images(channels: 1, height: 3, width: 3, pixels: [UInt8](repeating: 51, count: 9))
        let out = try run(Preprocessing(mean: [0.1, 0.2, 0.3], std: [0.1, 0.2, 0.3], resize: .bilinear), set, [0],
                          channels: 3, height: 5, width: 2)
        assertClose(out, [Float](repeating: 1, count: 10) + [Float](repeating: 0, count: 10)
                        + [Float](repeating: (0.2 - 0.3) / 0.3, count: 10))
    }

    func testInvalidParametersThrow() throws {
        let set = try images(channels: 3, height: 2, width: 2, pixels: patternBytes(12))
        XCTAssertThrowsError(try run(Preprocessing(mean: [0, 0], std: [1]), set, [0], channels: 3, height: 2, width: 2)) {
            XCTAssertTrue("\($0)".contains("mean has 2 values"), "\($0)")
        }
        XCTAssertThrowsError(try run(Preprocessing(mean: [0], std: [1, 0, 1]), set, [0], channels: 3, height: 2, width: 2))
        XCTAssertThrowsError(try run(Preprocessing(), set, [1], channels: 3, height: 2, width: 2)) {
            XCTAssertTrue("\($0)".contains("index 1"), "\($0)")
        }
        let two = try images(channels: 2, height: 2, width: 2, pixels: patternBytes(8))
        XCTAssertThrowsError(try run(Preprocessing(), two, [0], channels: 3, height: 2, width: 2))
    }
}
