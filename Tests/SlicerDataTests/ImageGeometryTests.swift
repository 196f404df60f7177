import XCTest
@testable import SlicerData

/// The ImageNet preprocessing of image files: antialiased resizing against a
/// reference written from its definition, torchvision's resize and crop
/// arithmetic, class-index files. (TorchvisionPreprocessingTests compares the
/// whole pipeline with torchvision's own where PyTorch is installed.)
final class ImageGeometryTests: TemporaryDirectoryTestCase {
    /// `ResizeMode.antialias` straight from its definition, in Double, one axis at a time.
    func referenceAntialias(_ plane: [Double], height: Int, width: Int, toHeight: Int, toWidth: Int) -> [Double] {
        func weights(_ d: Int, _ input: Int, _ output: Int) -> [(Int, Double)] {
            let scale = Double(input) / Double(output), f = max(1, scale), c = (Double(d) + 0.5) * scale
            var taps: [(Int, Double)] = []
            for i in 0..<input {
                let t: Double = (Double(i) + 0.5 - c) / f
                let w: Double = 1 - abs(t)
                if w > 0 { taps.append((i, w)) }
            }
            let total = taps.reduce(0.0) { $0 + $1.1 }
            return taps.map { ($0.0, $0.1 / total) }
        }
        var rows = [Double](repeating: 0, count: height * toWidth)
        for y in 0..<height {
            for x in 0..<toWidth { rows[y * toWidth + x] = weights(x, width, toWidth).reduce(0) { $0 + $1.1 * plane[y * width + $1.0] } }
        }
        var out = [Double](repeating: 0, count: toHeight * toWidth)
        for y in 0..<toHeight {
            for x in 0..<toWidth { out[y * toWidth + x] = weights(y, height, toHeight).reduce(0) { $0 + $1.1 * rows[$1.0 * toWidth + x] } }
        }
        return out
    }

    func testAntialiasAgainstReference() {
        let cases = [(23, 37, 11, 17), (20, 20, 7, 7), (9, 5, 19, 13), (16, 16, 8, 8), (10, 31, 10, 4), (1, 8, 1, 3)]
        for (h, w, oh, ow) in cases {
            let plane = patternBytes(h * w, seed: UInt32(h * 100 + w)).map(Float.init)
            var got = [Float](repeating: 0, count: oh * ow)
            plane.withUnsafeBufferPointer { source in
                got.withUnsafeMutableBufferPointer { out in
                    Resampler.resampleFiltered(source.baseAddress!, sourceHeight: h, sourceWidth: w, into: out.baseAddress!,
                                               rows: FilterAxis(source: h, destination: oh), columns: FilterAxis(source: w, destination: ow))
                }
            }
            let want = referenceAntialias(plane.map(Double.init), height: h, width: w, toHeight: oh, toWidth: ow)
            let worst = zip(got, want).map { abs(Double($0) - $1) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-3, "\(h)×\(w) → \(oh)×\(ow)")
        }
    }

    func testAntialiasClosedForms() {
        // A constant stays constant; enlarging is plain bilinear (half-pixel centres, clamped).
        let constant = [UInt8](repeating: 77, count: 3 * 12 * 10)
        XCTAssertEqual(Resampler.resizeBytes(constant, channels: 3, height: 12, width: 10, toHeight: 5, width: 3, mode: .antialias),
                       [UInt8](repeating: 77, count: 3 * 5 * 3))
        let small = patternBytes(4 * 6, seed: 9)
        XCTAssertEqual(Resampler.resizeBytes(small, channels: 1, height: 4, width: 6, toHeight: 9, width: 13, mode: .antialias),
                       Resampler.resizeBytes(small, channels: 1, height: 4, width: 6, toHeight: 9, width: 13, mode: .bilinear))
        // Halving a ramp x ↦ 4x: the symmetric filter keeps it linear inside, 4·(2d + 0.5).
        let ramp = (0..<32).map { UInt8(4 * $0) }
        let halved = Resampler.resizeBytes(ramp, channels: 1, height: 1, width: 32, toHeight: 1, width: 16, mode: .antialias)
        XCTAssertEqual(Array(halved[1..<15]), (1..<15).map { UInt8(4 * (2 * $0) + 2) })
        // Without antialiasing the same halving drops every other stripe of a 1-pixel grating.
        let grating = (0..<32).map { UInt8($0 % 2 == 0 ? 0 : 200) }
        let plain = Resampler.resizeBytes(grating, channels: 1, height: 1, width: 32, toHeight: 1, width: 16, mode: .bilinear)
        let smooth = Resampler.resizeBytes(grating, channels: 1, height: 1, width: 32, toHeight: 1, width: 16, mode: .antialias)
        XCTAssertEqual(Array(plain[1..<15]), [UInt8](repeating: 100, count: 14), "bilinear samples between two pixels")
        XCTAssertEqual(Array(smooth[1..<15]), [UInt8](repeating: 100, count: 14), "the filter averages the grating")
        let third = Resampler.resizeBytes(grating, channels: 1, height: 1, width: 32, toHeight: 1, width: 10, mode: .bilinear)
        let thirdSmooth = Resampler.resizeBytes(grating, channels: 1, height: 1, width: 32, toHeight: 1, width: 10, mode: .antialias)
        XCTAssertGreaterThan(Set(third).count, 1, "aliasing: the plain result flickers")
        XCTAssertLessThanOrEqual((thirdSmooth[1...8].max() ?? 0) - (thirdSmooth[1...8].min() ?? 0), 30, "the antialiased one stays near the mean")
    }

    func testTorchvisionResizeAndCropArithmetic() {
        let geometry = ImageGeometry(shorterSide: 256)
        XCTAssertEqual(geometry.scaledSize(ImageSize(width: 500, height: 375)), ImageSize(width: 341, height: 256))
        XCTAssertEqual(geometry.scaledSize(ImageSize(width: 375, height: 500)), ImageSize(width: 256, height: 341))
        XCTAssertEqual(geometry.scaledSize(ImageSize(width: 300, height: 300)), ImageSize(width: 256, height: 256))
        XCTAssertEqual(ImageGeometry().scaledSize(ImageSize(width: 5, height: 3)), ImageSize(width: 5, height: 3))
        // round((length − crop)/2), ties to even (Python's round), as CenterCrop.
        XCTAssertEqual(ImageGeometry.cropOffset(length: 256, crop: 224), 16)
        XCTAssertEqual(ImageGeometry.cropOffset(length: 341, crop: 224), 58)   // 58.5 → 58
        XCTAssertEqual(ImageGeometry.cropOffset(length: 295, crop: 224), 36)   // 35.5 → 36
        XCTAssertEqual(ImageGeometry.cropOffset(length: 225, crop: 224), 0)    // 0.5 → 0
        XCTAssertEqual(ImageGeometry.cropOffset(length: 227, crop: 224), 2)    // 1.5 → 2
        XCTAssertEqual(ImageGeometry.cropOffset(length: 200, crop: 224), -12)  // padded: 12 zeros before
        XCTAssertEqual(ImageGeometry.cropOffset(length: 201, crop: 224), -11)
    }

    func testCentreCropOfFilesPadsSmallImages() throws {
        // 6×4 image, crop 4×6: columns 1…4, rows padded with one zero row above and below.
        let pixels = (0..<(6 * 4 * 3)).map { UInt8($0) }
        try ImageWriter.writeRGB(pixels, width: 6, height: 4, to: path("a/x.png"))
        let set = try ImageFolderReader.load(directory: directory, channels: 3, targetSize: ImageSize(width: 4, height: 6),
                                             geometry: ImageGeometry(crop: ImageSize(width: 4, height: 6)))
        XCTAssertEqual([set.height, set.width], [6, 4])
        let red = Array(set.pixels[0..<24])
        XCTAssertEqual(Array(red[0..<4]), [0, 0, 0, 0])
        XCTAssertEqual(Array(red[4..<8]), [3, 6, 9, 12])           // row 0, columns 1–4 of the red plane
        XCTAssertEqual(Array(red[20..<24]), [0, 0, 0, 0])
        // Shorter side 8, then the default crop (the target): a 16×8 image keeps its middle 8×8.
        let wide: [UInt8] = (0..<(16 * 8)).flatMap { (i: Int) -> [UInt8] in [UInt8(i % 16 * 10), 0, 0] }
        try ImageWriter.writeRGB(wide, width: 16, height: 8, to: path("b/y.png"))
        let middle = try ImageFolderReader.loadImage(path: path("b/y.png"), channels: 3, targetSize: ImageSize(width: 8, height: 8),
                                                     geometry: ImageGeometry(shorterSide: 8, interpolation: .antialias))
        XCTAssertEqual(Array(middle.pixels[0..<8]), (4..<12).map { UInt8($0 * 10) })
    }

    func testFoldersSayTheirLabelsAreFolderNames() throws {
        try ImageWriter.writeGray(patternBytes(4), width: 2, height: 2, to: path("n02/a.png"))
        try ImageWriter.writeGray(patternBytes(4), width: 2, height: 2, to: path("n01/a.png"))
        let set = try DatasetLoader.load(directory)
        XCTAssertTrue(set.labelsFromFolderNames)
        XCTAssertEqual(set.classNames, ["n01", "n02"])
        XCTAssertTrue(set.prefix(1).labelsFromFolderNames)
        let relabeled = try set.relabeled([7, 3], classNames: (0..<10).map(String.init))
        XCTAssertEqual(relabeled.labels, [7, 3])
        XCTAssertFalse(relabeled.labelsFromFolderNames)
        XCTAssertThrowsError(try set.relabeled([7], classNames: ["x"]))
    }

    func testClassIndexFiles() throws {
        let json = try write(Array(#"{"0": ["n01440764", "tench"], "2": ["n01484850", "great_white_shark"], "1": ["n01443537", "goldfish"]}"#.utf8),
                             to: "imagenet_class_index.json")
        let index = try ClassIndex.read(path: json)
        XCTAssertEqual(index.index(of: "n01484850"), 2)
        XCTAssertEqual(index.index(of: "tench"), 0)
        XCTAssertEqual(index.index(of: "Great White Shark"), 2, "case, _ and spaces do not matter")
        XCTAssertNil(index.index(of: "n99999999"))
        XCTAssertEqual(index.displayName(of: 1), "goldfish")
        let text = try write(Array("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n".utf8), to: "LOC_synset_mapping.txt")
        let lines = try ClassIndex.read(path: text)
        XCTAssertEqual(lines.index(of: "n01443537"), 1)
        XCTAssertEqual(lines.index(of: "tench, Tinca tinca"), 0)
        let names = try write(Array("cat\ndog\n".utf8), to: "names.txt")
        XCTAssertEqual(try ClassIndex.read(path: names).index(of: "dog"), 1)
        for (name, bytes) in [("bad.json", "{\"0\": [\"a\"], \"x\": [\"b\"]}"), ("broken.json", "{\"0\": ["), ("empty.json", ""),
                              ("noname.json", "{\"0\": []}")] {
            let file = try write(Array(bytes.utf8), to: name)
            _ = assertDataError(try ClassIndex.read(path: file), mentioning: file)
        }
    }
}
