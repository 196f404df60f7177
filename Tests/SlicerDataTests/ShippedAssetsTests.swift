import Foundation
import XCTest
import SlicerData
import SlicerEngine

/// Checks of what the project ships in `assets/`: the models, their
/// checkpoint series, the bundled Fashion-MNIST subset, and the figures of the
/// model card (`assets/models/README.md`, `training_summary.json`).
final class ShippedAssetsTests: XCTestCase {
    /// `<package>/assets`, found from this file's path.
    static let assets = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("assets").path
    static let models = assets + "/models"
    static let subset = assets + "/data/fashion-mnist-subset"
    static let defaultModel = models + "/fashion_mnist_cnn.onnx"
    static let seriesFolder = models + "/fashion_mnist_cnn_epochs"

    /// `training_summary.json`'s entry for one model ("fashion", "mnist", "cifar").
    func summary(_ model: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.models + "/training_summary.json"))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let models = try XCTUnwrap(root["models"] as? [String: Any])
        return try XCTUnwrap(models[model] as? [String: Any], "no entry '\(model)' in training_summary.json")
    }

    func seriesFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Self.seriesFolder)
            .filter { $0.hasPrefix("epoch_") && $0.hasSuffix(".onnx") }
            .sorted()
            .map { Self.seriesFolder + "/" + $0 }
    }

    // MARK: The bundled subset

    func testBundledSubsetIsABalancedIDXPairOfOneThousandImages() throws {
        for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: Self.subset + "/" + name), "missing \(name)")
        }
        let images = try DatasetLoader.load(Self.subset)
        XCTAssertEqual(images.count, 1000)
        XCTAssertEqual([images.channels, images.height, images.width], [1, 28, 28])
        XCTAssertEqual(images.classCounts, [Int](repeating: 100, count: 10))
    }

    /// The subset is the first 100 test images of each class, in dataset order
    /// (checked where Debian's dataset-fashion-mnist is installed).
    func testBundledSubsetIsTheFirstHundredTestImagesOfEachClass() throws {
        let debian = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: debian + "/t10k-images-idx3-ubyte.gz") else {
            throw XCTSkip("\(debian) not installed")
        }
        let full = try DatasetLoader.load(debian)
        var chosen: [Int] = []
        var taken = [Int](repeating: 0, count: 10)
        for (i, label) in full.labels.enumerated() where taken[label] < 100 {
            taken[label] += 1
            chosen.append(i)
        }
        let expected = full.subset(chosen)
        let subset = try DatasetLoader.load(Self.subset)
        XCTAssertEqual(subset.labels, expected.labels)
        XCTAssertEqual(subset.pixels, expected.pixels)
    }

    // MARK: The default model on the subset, against the model card

    func testDefaultModelOnBundledSubsetHasTheModelCardsAccuracy() throws {
        let network = try Network(contentsOf: Self.defaultModel)
        let images = try DatasetLoader.load(Self.subset)
        let preprocessing = Preprocessing(mean: try XCTUnwrap(network.metadataMean),
                                          std: try XCTUnwrap(network.metadataStd))
        let shape = network.inputShape
        let k = network.classCount
        let batch = 100
        let executor = try network.makeExecutor(capacity: batch)
        var correct = 0
        for start in stride(from: 0, to: images.count, by: batch) {
            let range = start..<min(images.count, start + batch)
            let input = try preprocessing.tensor(images, indices: range, channels: shape[0], height: shape[1], width: shape[2])
            let logits = input.withUnsafeBufferPointer { executor.run(input: $0, count: range.count) }
            for (j, i) in range.enumerated() {
                // Top-1: the first index of the largest logit.
                var best = 0
                for c in 1..<k where logits[j * k + c] > logits[j * k + best] { best = c }
                XCTAssertTrue((0..<k).allSatisfy { logits[j * k + $0].isFinite }, "non-finite logits for image \(i)")
                if best == images.labels[i] { correct += 1 }
            }
        }
        let accuracy = Double(correct) / Double(images.count)

        // training_summary.json: the exact figure (a count over 1,000 images).
        let fashion = try summary("fashion")
        let recorded = try XCTUnwrap(fashion["bundled_subset_accuracy"] as? Double, "bundled_subset_accuracy missing")
        XCTAssertEqual(fashion["bundled_subset_images"] as? Int, images.count)
        XCTAssertEqual(correct, Int((recorded * Double(images.count)).rounded()),
                       "engine: \(correct) / \(images.count) right; training_summary.json says \(recorded)")

        // The model card states it as "NN.NN % (N / 1,000)" in its table rows
        // for the default model on the subset.
        let card = try String(contentsOfFile: Self.models + "/README.md", encoding: .utf8)
        let figure = String(format: "%.2f %%", accuracy * 100)
        let count = "\(correct) / 1,000"
        let lines = card.split(separator: "\n").filter {
            $0.hasPrefix("|") && $0.contains("fashion-mnist-subset") && $0.contains("fashion_mnist_cnn.onnx")
        }
        XCTAssertFalse(lines.isEmpty, "the model card has no table row with the default model on fashion-mnist-subset")
        for line in lines {
            XCTAssertTrue(line.contains(figure) && line.contains(count), "model card line '\(line)' does not say \(figure) (\(count))")
        }
    }

    // MARK: Models and series

    func testEveryEpochOfTheSeriesHasTheFinalModelsTaps() throws {
        let final = try Network(contentsOf: Self.defaultModel)
        let files = try seriesFiles()
        let epochs = try XCTUnwrap(try summary("fashion")["epochs"] as? Int)
        XCTAssertEqual(files.map { ($0 as NSString).lastPathComponent },
                       (0...epochs).map { String(format: "epoch_%02d.onnx", $0) })
        XCTAssertGreaterThan(final.taps.count, 1)
        for file in files {
            let network = try Network(contentsOf: file)
            XCTAssertEqual(network.taps.map(\.name), final.taps.map(\.name), file)
            XCTAssertEqual(network.taps.map(\.shape), final.taps.map(\.shape), file)
            XCTAssertEqual(network.taps.map(\.opType), final.taps.map(\.opType), file)
            XCTAssertEqual(network.inputShape, final.inputShape, file)
            XCTAssertEqual(network.classCount, final.classCount, file)
        }
    }

    func testEveryShippedModelHasItsThreeMetadataProps() throws {
        let shipped: [(file: String, entry: String, channels: Int)] = [
            ("fashion_mnist_cnn.onnx", "fashion", 1), ("mnist_cnn.onnx", "mnist", 1), ("cifar10_vgg.onnx", "cifar", 3),
        ]
        var checks = shipped.map { (Self.models + "/" + $0.file, $0.entry, $0.channels) }
        checks += try seriesFiles().map { ($0, "fashion", 1) }
        for (path, entry, channels) in checks {
            let network = try Network(contentsOf: path)
            for key in ["cnnslicer.mean", "cnnslicer.std", "cnnslicer.labels"] {
                XCTAssertNotNil(network.model.metadataValue(key), "\(path): no \(key)")
            }
            XCTAssertEqual(network.inputShape.first, channels, path)
            XCTAssertEqual(network.classCount, 10, path)
            let mean = try XCTUnwrap(network.metadataMean, path)
            let std = try XCTUnwrap(network.metadataStd, path)
            let labels = try XCTUnwrap(network.metadataLabels, path)
            XCTAssertEqual(mean.count, channels, path)
            XCTAssertEqual(std.count, channels, path)
            XCTAssertEqual(labels.count, network.classCount, path)
            XCTAssertFalse(labels.contains(""), path)
            // The same values as the model card's source.
            let card = try summary(entry)
            XCTAssertEqual(mean, try XCTUnwrap(card["mean"] as? [Double]).map(Float.init), path)
            XCTAssertEqual(std, try XCTUnwrap(card["std"] as? [Double]).map(Float.init), path)
            XCTAssertEqual(labels, try XCTUnwrap(card["labels"] as? [String]), path)
        }
    }
}
