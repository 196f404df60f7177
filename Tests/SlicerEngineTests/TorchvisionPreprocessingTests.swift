import Foundation
import XCTest
@testable import SlicerData

/// Image files as torchvision reads them for ImageNet models: PIL's decode, then
/// Resize(256) (bilinear with antialiasing) and CenterCrop(224). Our decoder
/// (SDL2_image) and ImageGeometry with `.antialias` must give the same bytes
/// within the stated tolerance (PIL rounds a fixed-point intermediate after
/// each resampling pass, we round once). Skipped without PyTorch, as TorchvisionTests.
final class TorchvisionPreprocessingTests: XCTestCase {
    func testDecodeResizeAndCropMatchTorchvision() throws {
        guard FileManager.default.isExecutableFile(atPath: TorchvisionTests.python),
              let probe = try? TorchvisionTests.runPython(["-c", "import torchvision, PIL, numpy"]), probe.status == 0 else {
            throw XCTSkip("torchvision preprocessing test skipped: \(TorchvisionTests.python) lacks torchvision, PIL or numpy")
        }
        let out = TorchvisionTests.repositoryRoot.appendingPathComponent(".build/torchvision-preprocessing")
        let script = TorchvisionTests.repositoryRoot.appendingPathComponent("tools/export_torchvision.py").path
        let result = try TorchvisionTests.runPython([script, "--preprocessing", out.path])
        guard result.status == 0 else { return XCTFail("--preprocessing failed:\n\(result.stderr.suffix(3000))") }

        let folder = out.appendingPathComponent("images").path
        let files = try ImageFolderReader.classFolders(in: folder).flatMap(\.files)
        XCTAssertEqual(files.count, 6)
        for (k, file) in files.enumerated() {
            let reference = try NPYArray.read(path: out.appendingPathComponent("decoded/\(k).npy").path)
            let decoded = try ImageFolderReader.decode(path: file)
            XCTAssertEqual([3, decoded.size.height, decoded.size.width], reference.shape, file)
            let diff = zip(decoded.rgb, reference.byteValues ?? []).map { abs(Int($0) - Int($1)) }
            // Both decode with libjpeg-turbo here and agree bit for bit; another libjpeg
            // build may round its inverse DCT differently by one level.
            XCTAssertLessThanOrEqual(diff.max() ?? 99, file.hasSuffix(".png") ? 0 : 1, "decoding \(file) differs from PIL's")
        }
        let images = try ImageFolderReader.load(directory: folder, channels: 3, targetSize: ImageSize(width: 224, height: 224),
                                                geometry: ImageGeometry(shorterSide: 256, interpolation: .antialias))
        let expected = try NPYArray.read(path: out.appendingPathComponent("transformed.npy").path)
        XCTAssertEqual(expected.shape, [6, 3, 224, 224])
        XCTAssertEqual(images.labels, [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(images.classNames, ["n01440764", "n01443537"])
        XCTAssertTrue(images.labelsFromFolderNames)
        // Measured: at most 1 level apart, 0.18 on average (PIL's fixed-point rounding).
        let diff = zip(images.pixels, expected.byteValues ?? []).map { abs(Int($0) - Int($1)) }
        XCTAssertEqual(diff.count, 6 * 3 * 224 * 224)
        XCTAssertLessThanOrEqual(diff.max() ?? 99, 1, "Resize(256) + CenterCrop(224) differs from torchvision's by more than one level")
        XCTAssertLessThanOrEqual(Double(diff.reduce(0, +)) / Double(max(diff.count, 1)), 0.3)
    }
}
