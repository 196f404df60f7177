import Foundation
import XCTest
import SlicerData
import SlicerEngine
@testable import SlicerInfo

/// The whole analysis (calibration, batches on two threads, fused binning,
/// per-image store, summary) against `NaiveAnalysis`, which recomputes SPEC §3
/// from activations recorded by a plain executor.
extension XCTestCase {
    /// The analyser and the recording run in the same batches (dataset order,
    /// `batchSize` each), so both see bit-identical activations.
    /// - Parameters:
    ///   - network: a model other than the fixture `model` (the many-class tests).
    ///   - layout: nil lets the analysis choose (kept for these small models).
    ///   - tolerance: for the entropies; the on-demand layout sums them in another order.
    @discardableResult
    func checkAgainstNaive(model: String, network given: Network? = nil, settings: AnalysisSettings, count: Int = 40, batchSize: Int = 7,
               labels: @escaping (Int) -> Int = { $0 % 10 }, seed: UInt64 = 1, layout: ClassChannelLayout? = nil,
               tolerance: Double = 1e-9,
               file: StaticString = #filePath, line: UInt = #line) throws -> AnalysisSummary {
        let network = try given ?? InfoFixtures.network(model)
        let images = try makeImages(shape: network.inputShape, count: count, seed: seed, classes: network.classCount, labels: labels)
        let input = try ModelInput(network: network, images: images)
        let analyzer = try Analyzer(input: input, settings: settings, batchSize: batchSize, threads: 2, layout: layout)
        let result = try analyzer.analyze()
        if let layout { XCTAssertEqual(result.histograms.layout, layout, file: file, line: line) }
        let summary = result.summary(network: network)

        let recorded = try RecordedActivations.record(network: network, images: images, batchSize: batchSize)
        let naive = NaiveAnalysis(network: network, recorded: recorded, labels: images.labels, settings: settings)
        let k = network.classCount, n = count
        let context = "\(model) \(settings)"

        XCTAssertEqual(result.images.sorted(), Array(0..<n), file: file, line: line)
        if result.histograms.layout == .kept { XCTAssertEqual(result.images, Array(0..<n), file: file, line: line) }
        XCTAssertEqual(summary.images, n, file: file, line: line)
        XCTAssertEqual(summary.bins, settings.bins, file: file, line: line)
        XCTAssertEqual(summary.classCounts, (0..<k).map { y in images.labels.filter { $0 == y }.count }, file: file, line: line)
        XCTAssertEqual(result.histograms.imageCounts[k], images.labels.filter { $0 < 0 }.count, "unlabelled slot", file: file, line: line)
        XCTAssertEqual(summary.taps.count, network.taps.count, file: file, line: line)

        for info in network.taps {
            let t = info.index, tap = naive.taps[t], s = summary.taps[t], h = result.histograms.taps[t]
            let where_ = "\(context) tap \(t) \(info.name)"
            // Ranges and the raw histograms, exactly.
            XCTAssertEqual(result.ranges[t].lo, tap.lo, where_, file: file, line: line)
            XCTAssertEqual(result.ranges[t].hi, tap.hi, where_, file: file, line: line)
            XCTAssertEqual(s.range.lo, tap.lo.min()!, where_, file: file, line: line)
            XCTAssertEqual(s.range.hi, tap.hi.max()!, where_, file: file, line: line)
            for slot in 0...k {
                let members = images.labels.indices.filter { (images.labels[$0] < 0 ? k : images.labels[$0]) == slot }
                // Tap-level histograms of every class, in every layout.
                XCTAssertEqual(h.histogram(channel: nil, classes: [slot]).map { Int($0) },
                               naive.ensembleHistogram(tap: t, channel: nil, images: members),
                               "\(where_) slot \(slot)", file: file, line: line)
                guard h.openIndex(of: slot) != nil else { continue }
                for c in 0..<info.channels {
                    XCTAssertEqual(h.histogram(channel: c, classes: [slot]).map { Int($0) },
                                   naive.ensembleHistogram(tap: t, channel: c, images: members),
                                   "\(where_) slot \(slot) channel \(c)", file: file, line: line)
                }
            }
            if result.histograms.layout == .onDemand {
                // What is left open: the unlabelled images; every class is complete and reduced.
                XCTAssertEqual(h.openSlots, images.labels.contains { $0 < 0 } ? [k] : [], where_, file: file, line: line)
                let labelled = naive.labelledImages
                for c in 0..<info.channels {
                    XCTAssertEqual(h.closedCounts[(c * settings.bins)..<((c + 1) * settings.bins)].map { Int($0) },
                                   naive.ensembleHistogram(tap: t, channel: c, images: labelled),
                                   "\(where_) closed counts of channel \(c)", file: file, line: line)
                }
            }
            XCTAssertEqual(s.nonFiniteValues, 0, file: file, line: line)
            XCTAssertEqual(s.name, info.name); XCTAssertEqual(s.op, info.opType); XCTAssertEqual(s.shape, info.shape)
            // Ceilings (SPEC §3): a channel's histogram has H·W values, the tap's
            // layer histogram C·H·W; Miller–Madow adds its term at min(B, n) bins.
            func ceiling(_ values: Int) -> Double {
                let m = min(settings.bins, values)
                return log2(Double(m)) + (settings.millerMadow ? Double(m - 1) / (2 * Double(values) * log(2)) : 0)
            }
            assertClose(s.channelInstanceCeiling, ceiling(info.valuesPerChannel), 1e-12, where_, file: file, line: line)
            assertClose(s.instanceCeiling, ceiling(info.channels * info.valuesPerChannel), 1e-12, where_, file: file, line: line)
            // No entropy above its own ceiling: per image and per set, layer and channel.
            let slack = 1e-9
            XCTAssertLessThanOrEqual(tap.layerInstance.max() ?? 0, s.instanceCeiling + slack, where_, file: file, line: line)
            XCTAssertLessThanOrEqual(tap.instance.flatMap { $0 }.max() ?? 0, s.channelInstanceCeiling + slack, where_, file: file, line: line)
            XCTAssertLessThanOrEqual(s.instanceEntropy, s.instanceCeiling + slack, where_, file: file, line: line)
            XCTAssertLessThanOrEqual(s.channelInstanceEntropy.max() ?? 0, s.channelInstanceCeiling + slack, where_, file: file, line: line)
            for v in s.classInstanceEntropy.compactMap({ $0 }) {
                XCTAssertLessThanOrEqual(v, s.instanceCeiling + slack, where_, file: file, line: line)
            }

            // Set-level numbers.
            let all = Array(0..<n)
            let meanInstance = naive.mean(tap.layerInstance)
            assertClose(s.instanceEntropy, meanInstance, tolerance, "instance " + where_, file: file, line: line)
            let variance = tap.layerInstance.map { ($0 - meanInstance) * ($0 - meanInstance) }.reduce(0, +) / Double(n - 1)
            assertClose(s.instanceEntropySpread, variance.squareRoot(), 1e-6, "spread " + where_, file: file, line: line)
            assertClose(s.ensembleEntropy, naive.ensemble(tap: t, channel: nil, images: all), tolerance, "ensemble " + where_, file: file, line: line)
            assertClose(s.labelInformation, naive.labelInformation(tap: t, channel: nil), tolerance, "information " + where_, file: file, line: line)
            XCTAssertGreaterThanOrEqual(s.labelInformation, 0, file: file, line: line)
            for y in 0..<k {
                let members = naive.images(ofClass: y)
                if members.isEmpty {
                    XCTAssertNil(s.classInstanceEntropy[y], file: file, line: line)
                    XCTAssertNil(s.classEnsembleEntropy[y], file: file, line: line)
                    continue
                }
                assertClose(s.classInstanceEntropy[y] ?? .nan, naive.mean(members.map { tap.layerInstance[$0] }), tolerance,
                            "class \(y) instance " + where_, file: file, line: line)
                assertClose(s.classEnsembleEntropy[y] ?? .nan, naive.ensemble(tap: t, channel: nil, images: members), tolerance,
                            "class \(y) ensemble " + where_, file: file, line: line)
            }
            XCTAssertEqual(s.channelInstanceEntropy.count, info.channels, file: file, line: line)
            for c in 0..<info.channels {
                assertClose(s.channelInstanceEntropy[c], naive.mean(all.map { tap.instance[$0][c] }), tolerance,
                            "channel \(c) instance " + where_, file: file, line: line)
                assertClose(s.channelEnsembleEntropy[c], naive.ensemble(tap: t, channel: c, images: all), tolerance,
                            "channel \(c) ensemble " + where_, file: file, line: line)
                assertClose(s.channelLabelInformation[c], naive.labelInformation(tap: t, channel: c), tolerance,
                            "channel \(c) information " + where_, file: file, line: line)
                XCTAssertGreaterThanOrEqual(s.channelLabelInformation[c], 0, file: file, line: line)
            }

            // Per-image results (float32).
            let store = try XCTUnwrap(result.store)
            for i in 0..<n {
                let entropies = store.channelEntropies(image: i, tap: t)
                XCTAssertEqual(entropies.count, info.channels, file: file, line: line)
                for c in 0..<info.channels {
                    assertClose(Double(entropies[c]), tap.instance[i][c], 1e-6, "image \(i) channel \(c) " + where_, file: file, line: line)
                }
                assertClose(Double(store.layerEntropy(image: i, tap: t)), tap.layerInstance[i], 1e-6, "image \(i) " + where_, file: file, line: line)
            }
        }

        // Predictions and probabilities.
        let store = try XCTUnwrap(result.store)
        XCTAssertEqual(store.completeCount, n, file: file, line: line)
        for i in 0..<n {
            let logits = Array(recorded.logits[(i * k)..<((i + 1) * k)])
            let argmax = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) }!
            XCTAssertEqual(store.prediction(image: i), argmax, "image \(i)", file: file, line: line)
            let p = Array(store.probabilities(image: i))
            XCTAssertEqual(p.count, k)
            assertClose(p.reduce(0) { $0 + Double($1) }, 1, 1e-5, "probabilities of image \(i)", file: file, line: line)
            let m = logits.max()!, z = logits.reduce(0.0) { $0 + exp(Double($1 - m)) }
            for y in 0..<k {
                XCTAssert(p[y] >= 0 && p[y] <= 1, file: file, line: line)
                assertClose(Double(p[y]), exp(Double(logits[y] - m)) / z, 1e-6, file: file, line: line)
            }
            XCTAssertEqual(p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }, argmax, file: file, line: line)
        }
        return summary
    }

}

final class EndToEndTests: XCTestCase {
    func testPlainCNNLayerRange() throws {
        _ = try checkAgainstNaive(model: "plain_cnn", settings: AnalysisSettings())
    }

    /// The on-demand layout (classes reduced as they complete) on the fixtures:
    /// the same numbers to 1e-12, with unlabelled images and a missing class.
    func testOnDemandLayoutMatchesNaive() throws {
        try checkAgainstNaive(model: "plain_cnn", settings: AnalysisSettings(), layout: .onDemand, tolerance: 1e-12)
        try checkAgainstNaive(model: "residual_cnn", settings: AnalysisSettings(bins: 16, range: .channel, millerMadow: true),
                              count: 45, labels: { $0 % 6 == 5 ? -1 : $0 % 9 }, seed: 2, layout: .onDemand, tolerance: 1e-12)
        try checkAgainstNaive(model: "residual_cnn", settings: AnalysisSettings(bins: 256, range: .channel), batchSize: 5,
                              seed: 3, layout: .onDemand, tolerance: 1e-12)
    }

    /// The portable Swift binning path, which processors without AVX-512 take,
    /// against the same naive analysis (on this machine the fused kernel may
    /// be the one the other tests exercise).
    func testPortableBinningPathMatchesNaive() throws {
        let allowed = ChannelBinner.vectorKernelAllowed
        ChannelBinner.vectorKernelAllowed = false
        defer { ChannelBinner.vectorKernelAllowed = allowed }
        _ = try checkAgainstNaive(model: "plain_cnn", settings: AnalysisSettings())
        _ = try checkAgainstNaive(model: "residual_cnn", settings: AnalysisSettings(bins: 16, range: .channel), batchSize: 5)
    }

    func testPlainCNNChannelRangeWithMillerMadow() throws {
        // Channel mode: each channel binned with its own range; the layer-level
        // instance histogram is the sum of the channel histograms.
        _ = try checkAgainstNaive(model: "plain_cnn", settings: AnalysisSettings(bins: 16, range: .channel, millerMadow: true))
    }

    func testPlainCNNFixedRangeOddBins() throws {
        _ = try checkAgainstNaive(model: "plain_cnn", settings: AnalysisSettings(bins: 7, range: .fixed(lo: -1, hi: 2.5)), batchSize: 9)
    }

    func testResidualCNNWithUnlabelledImagesAndAMissingClass() throws {
        // Every 6th image unlabelled; class 9 never occurs (labels cycle through 0…8).
        let summary = try checkAgainstNaive(model: "residual_cnn", settings: AnalysisSettings(), count: 45, batchSize: 7,
                                labels: { $0 % 6 == 5 ? -1 : $0 % 9 }, seed: 2)
        XCTAssertEqual(summary.classCounts[9], 0)
    }

    func testResidualCNNChannelRange256Bins() throws {
        // 256 bins > 64 values a channel: the accumulator's sparse path everywhere.
        _ = try checkAgainstNaive(model: "residual_cnn", settings: AnalysisSettings(bins: 256, range: .channel), batchSize: 5, seed: 3)
    }

    /// Calibration uses only the first min(N, 256) images in dataset order.
    func testCalibrationUsesTheFirst256Images() throws {
        let network = try InfoFixtures.network("residual_cnn")
        var images = try makeImages(shape: network.inputShape, count: 300, seed: 4, labels: { $0 % 10 })
        // Make the images after the first 256 extreme (all 255 or all 0): they must not widen the range.
        var pixels = images.pixels
        let per = images.pixelsPerImage
        for i in 256..<300 { for j in 0..<per { pixels[i * per + j] = i % 2 == 0 ? 255 : 0 } }
        images = try LabeledImages(channels: images.channels, height: images.height, width: images.width, pixels: pixels,
                                   labels: images.labels, classNames: images.classNames, source: "test")
        let analyzer = try Analyzer(input: try ModelInput(network: network, images: images), batchSize: 32, threads: 2)
        let ranges = try analyzer.calibrate()
        let first = try Analyzer(input: try ModelInput(network: network, images: images.prefix(256)), batchSize: 32, threads: 2)
        XCTAssertEqual(ranges, try first.calibrate())
        XCTAssertNotEqual(ranges, try Analyzer(input: try ModelInput(network: network, images: images.subset(Array(44..<300))),
                                               batchSize: 32, threads: 2).calibrate())
        // The input tap's layer range is exactly the preprocessed byte range of the first 256 images.
        let bytes = images.pixels[0..<(256 * per)]
        XCTAssertEqual(ranges[0].lo, [Float](repeating: Float(bytes.min()!) / 255, count: 3))
        XCTAssertEqual(ranges[0].hi, [Float](repeating: Float(bytes.max()!) / 255, count: 3))
    }

    /// Every class holding the same images: the class tells nothing, I = 0.
    func testLabelInformationIsZeroWhenClassesLookAlike() throws {
        let network = try InfoFixtures.network("plain_cnn")
        let patterns = try makeImages(shape: network.inputShape, count: 3, seed: 9, labels: { _ in 0 })
        let per = patterns.pixelsPerImage
        // Image i is pattern i / 10, label i % 10: each class has the patterns 0, 1, 2.
        var pixels: [UInt8] = []
        for i in 0..<30 { pixels += patterns.image(at: i / 10) }
        let images = try LabeledImages(channels: 1, height: 28, width: 28, pixels: pixels, labels: (0..<30).map { $0 % 10 },
                                       classNames: (0..<10).map { "c\($0)" }, source: "alike")
        XCTAssertEqual(pixels.count, 30 * per)
        for range in [RangeMode.layer, .channel] {
            let settings = AnalysisSettings(bins: 64, range: range)
            let summary = try Analyzer(input: try ModelInput(network: network, images: images), settings: settings,
                                       batchSize: 10, threads: 2).analyze().summary(network: network)
            for tap in summary.taps {
                XCTAssertEqual(tap.labelInformation, 0, accuracy: 1e-12, tap.name)
                for (c, i) in tap.channelLabelInformation.enumerated() { XCTAssertEqual(i, 0, accuracy: 1e-12, "\(tap.name) \(c)") }
                // Each class's ensemble is the whole set's.
                for y in 0..<10 { XCTAssertEqual(tap.classEnsembleEntropy[y]!, tap.ensembleEntropy, accuracy: 1e-12) }
            }
            // And a set where classes differ does carry information somewhere.
            let distinct = try makeImages(shape: network.inputShape, count: 30, seed: 10, labels: { $0 % 10 })
            let other = try Analyzer(input: try ModelInput(network: network, images: distinct), settings: settings,
                                     batchSize: 10, threads: 2).analyze(keepPerImage: false).summary(network: network)
            XCTAssert(other.taps.contains { $0.labelInformation > 0.01 })
            XCTAssert(other.taps.allSatisfy { $0.labelInformation >= 0 && $0.channelLabelInformation.allSatisfy { $0 >= 0 } })
        }
    }
}

/// Issue 12, item 7: an image folder's classes are the model's classes named by
/// its subfolders, not the subfolders' sorted positions.
final class ClassMappingTests: XCTestCase {
    static var mnistModel: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("assets/models/mnist_cnn.onnx").path
    }

    /// Two 28×28 images per folder, labelled as ImageFolderReader labels them (sorted folder positions).
    func folderSet(_ folders: [String]) throws -> LabeledImages {
        let labels = folders.indices.flatMap { [$0, $0] }
        return try LabeledImages(channels: 1, height: 28, width: 28, pixels: [UInt8](repeating: 9, count: labels.count * 784),
                                 labels: labels, classNames: folders, source: "digits/", labelsFromFolderNames: true)
    }

    func testMNISTFolderWithoutSomeDigitsScoresFolderNineAsNine() throws {
        let network = try Network(contentsOf: Self.mnistModel)
        XCTAssertEqual(network.metadataLabels, (0..<10).map(String.init))
        let folders = ["0", "1", "2", "4", "5", "6", "7", "9"]
        let input = try ModelInput(network: network, images: try folderSet(folders))
        XCTAssertEqual(input.classMapping.source, .modelLabels)
        XCTAssertEqual(input.images.labels, [0, 0, 1, 1, 2, 2, 4, 4, 5, 5, 6, 6, 7, 7, 9, 9])
        XCTAssertEqual(input.classNames, (0..<10).map(String.init))
        XCTAssertEqual(input.images.classCounts, [2, 2, 2, 0, 2, 2, 2, 2, 0, 2])
        XCTAssertTrue(input.classMapping.report(classNames: input.classNames).contains("  9 → 9"))
        // Without the model's names: sorted order, as torchvision's ImageFolder, with a warning.
        let unnamed = try ModelInput(network: network, images: try folderSet(folders), labels: [])
        XCTAssertEqual(unnamed.classMapping.source, .sortedFolders)
        XCTAssertEqual(unnamed.images.labels.last, 7)
        XCTAssertNotNil(unnamed.classMapping.warning)
        XCTAssertTrue(unnamed.classMapping.statusNote.hasPrefix("warning: 8 folders"))
        XCTAssertLessThanOrEqual(unnamed.classMapping.statusNote.count, 110, "fits the app's status bar at 1024 px")
        // Some folders named like classes, some not: refused, naming them.
        XCTAssertThrowsError(try ModelInput(network: network, images: try folderSet(["0", "1", "seven"]))) {
            XCTAssertTrue("\($0)".contains("'seven'"), "\($0)")
        }
    }

    /// The same through real files: a folder of PNGs in subfolders 0, 1, 2, 4, 5, 6, 7, 9,
    /// read by the loader the command line and the app use.
    func testImageFolderOnDiskIsMatchedByName() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let png = root.appendingPathComponent("Tests/SlicerUITests/Reference/demo-dark.png").path
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("class-mapping-\(ProcessInfo.processInfo.processIdentifier)")
        defer { try? FileManager.default.removeItem(at: folder) }
        for digit in ["0", "1", "2", "4", "5", "6", "7", "9"] {
            let sub = folder.appendingPathComponent(digit)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: png, toPath: sub.appendingPathComponent("a.png").path)
        }
        let input = try ModelInput.load(network: try Network(contentsOf: Self.mnistModel), data: folder.path)
        XCTAssertEqual(input.classMapping.source, .modelLabels)
        XCTAssertEqual(input.images.labels, [0, 1, 2, 4, 5, 6, 7, 9])
        XCTAssertEqual([input.images.channels, input.images.height, input.images.width], [1, 28, 28])
    }

    func testClassIndexFileWins() throws {
        let network = try Network(contentsOf: Self.mnistModel)
        let index = ClassIndex(path: "index.json", names: [3: ["n03", "three"], 8: ["n08", "eight"], 1: ["n01", "one"]])
        let input = try ModelInput(network: network, images: try folderSet(["n01", "n03", "n08"]), classIndex: index)
        XCTAssertEqual(input.classMapping.source, .classIndexFile("index.json"))
        XCTAssertEqual(input.images.labels, [1, 1, 3, 3, 8, 8])
        XCTAssertThrowsError(try ModelInput(network: network, images: try folderSet(["n01", "n05"]), classIndex: index)) {
            XCTAssertTrue("\($0)".contains("index.json") && "\($0)".contains("'n05'"), "\($0)")
        }
        // IDX/CIFAR labels are the datasets' own: left alone.
        let idx = try LabeledImages(channels: 1, height: 28, width: 28, pixels: [UInt8](repeating: 0, count: 784), labels: [4],
                                    classNames: (0..<10).map(String.init), source: "idx")
        let plain = try ModelInput(network: network, images: idx)
        XCTAssertEqual(plain.classMapping, .dataset)
        XCTAssertEqual(plain.images.labels, [4])
    }
}
