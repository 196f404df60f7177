import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerONNX
@testable import SlicerInfo

// Helpers shared by the SlicerInfo tests. Everything "naive" here is written
// straight from SPEC §3, independently of the library's code paths.

/// The fixture models of the engine tests, read from the source tree (they are
/// committed; this target has no resources of its own).
enum InfoFixtures {
    static func path(_ name: String) -> String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()        // SlicerInfoTests
            .deletingLastPathComponent()        // Tests
            .appendingPathComponent("SlicerEngineTests/Fixtures/\(name)").path
    }

    /// Networks are immutable and Sendable; load each fixture once per process.
    nonisolated(unsafe) private static var cache: [String: Network] = [:]
    private static let lock = NSLock()

    static func network(_ name: String) throws -> Network {
        lock.lock(); defer { lock.unlock() }
        if let n = cache[name] { return n }
        let n = try Network(contentsOf: path("\(name).onnx"))
        cache[name] = n
        return n
    }
}

/// SplitMix64: deterministic pseudo-random numbers for reproducible tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Naive {
    /// SPEC §3's bin, written out in double precision: clamp(floor((v − lo)/(hi − lo)·B), 0, B−1);
    /// hi == lo → 0; non-finite → nil.
    static func bin(_ v: Float, lo: Float, hi: Float, bins: Int) -> Int? {
        if v.isNaN || v.isInfinite { return nil }
        if hi == lo { return 0 }
        let x = ((Double(v) - Double(lo)) / (Double(hi) - Double(lo)) * Double(bins)).rounded(.down)
        if x < 0 { return 0 }
        if x > Double(bins - 1) { return bins - 1 }
        return Int(x)
    }

    /// H = −Σ p log2 p over the non-empty bins, plus (m − 1)/(2 n ln 2) with Miller–Madow.
    static func entropy<I: BinaryInteger>(_ counts: [I], millerMadow: Bool = false) -> Double {
        var n = 0.0
        for c in counts { n += Double(c) }
        if n == 0 { return 0 }
        var h = 0.0, m = 0
        for c in counts where c > 0 {
            let p = Double(c) / n
            h -= p * log2(p)
            m += 1
        }
        if millerMadow { h += Double(m - 1) / (2 * n * log(2.0)) }
        return h
    }

    static func twoPoint(_ p: Double) -> Double { -p * log2(p) - (1 - p) * log2(1 - p) }
}

/// A labelled image set of pseudo-random bytes in the model's input shape.
func makeImages(shape: [Int], count: Int, seed: UInt64, classes: Int = 10, labels: (Int) -> Int) throws -> LabeledImages {
    var rng = SplitMix64(seed: seed)
    let per = shape.reduce(1, *)
    let pixels = (0..<(count * per)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    return try LabeledImages(channels: shape[0], height: shape[1], width: shape[2], pixels: pixels,
                             labels: (0..<count).map(labels), classNames: (0..<classes).map { "c\($0)" },
                             source: "test images")
}

/// A small CNN with `classes` outputs, built in memory with seeded weights:
/// conv 3→6 (3×3, pad 1) → BatchNormalization → Relu → MaxPool 2 → conv 6→8
/// (3×3) → Relu → GlobalAveragePool → Flatten → Gemm 8→classes, on 3×10×10
/// images. For the many-class tests (the fixtures have 10 classes).
func wideNetwork(classes: Int, seed: UInt64 = 11) throws -> Network {
    var rng = SplitMix64(seed: seed)
    func weights(_ name: String, _ dims: [Int], scale: Float = 0.5, offset: Float = 0) -> ONNXTensor {
        ONNXTensor(name: name, dims: dims, floats: (0..<dims.reduce(1, *)).map { _ in
            offset + scale * (Float(rng.next() % 20_001) / 10_000 - 1)
        })
    }
    func node(_ op: String, _ name: String, _ inputs: [String], _ attributes: [String: ONNXAttribute] = [:]) -> ONNXNode {
        ONNXNode(name: name, opType: op, domain: "", inputs: inputs, outputs: [name], attributes: attributes)
    }
    let initializers = [
        weights("w1", [6, 3, 3, 3]), weights("b1", [6], scale: 0.1),
        weights("gamma", [6], scale: 0.3, offset: 1), weights("beta", [6], scale: 0.2),
        weights("mean", [6], scale: 0.2), weights("var", [6], scale: 0.3, offset: 1),
        weights("w2", [8, 6, 3, 3], scale: 0.3), weights("b2", [8], scale: 0.1),
        weights("w3", [classes, 8], scale: 1), weights("b3", [classes], scale: 0.1),
    ]
    let nodes = [
        node("Conv", "conv1", ["x", "w1", "b1"], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]),
        node("BatchNormalization", "bn1", ["conv1", "gamma", "beta", "mean", "var"], ["epsilon": .float(1e-5)]),
        node("Relu", "relu1", ["bn1"]),
        node("MaxPool", "pool1", ["relu1"], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
        node("Conv", "conv2", ["pool1", "w2", "b2"], ["kernel_shape": .ints([3, 3])]),
        node("Relu", "relu2", ["conv2"]),
        node("GlobalAveragePool", "gap", ["relu2"]),
        node("Flatten", "flat", ["gap"], ["axis": .int(1)]),
        node("Gemm", "fc", ["flat", "w3", "b3"], ["transB": .int(1)]),
    ]
    var inits: [String: ONNXTensor] = [:]
    for t in initializers { inits[t.name] = t }
    let graph = ONNXGraph(name: "wide", nodes: nodes, initializers: inits,
                          inputs: [ONNXValueInfo(name: "x", elementType: .float, dims: [.symbolic("N"), .value(3), .value(10), .value(10)])],
                          outputs: [ONNXValueInfo(name: "fc", elementType: .float, dims: nil)])
    return try Network(model: ONNXModel(path: "wide-\(classes).onnx", irVersion: 8, opsetVersion: 13, producerName: "SlicerInfoTests",
                                        producerVersion: "1", graph: graph, metadata: []))
}

/// Every tap's values for every image, from a plain executor, copied out.
struct RecordedActivations {
    /// [tap] → count × valuesPerImage floats, image-major.
    var taps: [[Float]]
    /// count × classCount.
    var logits: [Float]
    let count: Int

    /// Runs `images` through `network` in batches of `batchSize` (dataset
    /// order), preprocessing the bytes here: x = (u/255 − mean)/std per channel.
    static func record(network: Network, images: LabeledImages, batchSize: Int) throws -> RecordedActivations {
        let mean = network.metadataMean ?? [0], std = network.metadataStd ?? [1]
        let shape = network.inputShape, per = shape.reduce(1, *), plane = shape[1] * shape[2]
        precondition(images.channels == shape[0] && images.height == shape[1] && images.width == shape[2])
        let executor = try network.makeExecutor(capacity: batchSize)
        var taps = network.taps.map { [Float](repeating: .nan, count: images.count * $0.valuesPerImage) }
        var logits = [Float](repeating: .nan, count: images.count * network.classCount)
        var start = 0
        while start < images.count {
            let n = min(batchSize, images.count - start)
            var input = [Float](repeating: 0, count: n * per)
            for j in 0..<n {
                let bytes = Array(images.image(at: start + j))
                for c in 0..<shape[0] {
                    let m = mean.count == 1 ? mean[0] : mean[c], s = std.count == 1 ? std[0] : std[c]
                    for p in 0..<plane { input[j * per + c * plane + p] = (Float(bytes[c * plane + p]) / 255 - m) / s }
                }
            }
            let out = input.withUnsafeBufferPointer { buffer in
                executor.run(input: buffer, count: n) { activation in
                    let size = network.taps[activation.tap].valuesPerImage
                    XCTAssertEqual(activation.values.count, n * size)
                    for k in 0..<(n * size) { taps[activation.tap][start * size + k] = activation.values[k] }
                }
            }
            let k = network.classCount
            for j in 0..<(n * k) { logits[start * k + j] = out[j] }
            start += n
        }
        return RecordedActivations(taps: taps, logits: logits, count: images.count)
    }
}

/// SPEC §3 computed the slow, obvious way from recorded activations.
struct NaiveAnalysis {
    struct Tap {
        var lo: [Float] = [], hi: [Float] = []
        /// [image][channel] histograms.
        var channelHist: [[[Int]]] = []
        /// [image] layer-level instance histograms.
        var layerHist: [[Int]] = []
        var instance: [[Double]] = []      // [image][channel]
        var layerInstance: [Double] = []   // [image]
    }

    let bins: Int
    let millerMadow: Bool
    let labels: [Int]
    let classCount: Int
    var taps: [Tap] = []

    init(network: Network, recorded: RecordedActivations, labels: [Int], settings: AnalysisSettings) {
        bins = settings.bins
        millerMadow = settings.millerMadow
        self.labels = labels
        classCount = network.classCount
        let n = recorded.count, calibration = min(n, 256), b = settings.bins
        for info in network.taps {
            let values = recorded.taps[info.index]
            let channels = info.channels, hw = info.valuesPerChannel, per = info.valuesPerImage
            var tap = Tap()
            // Ranges: min/max over the calibration images (dataset order).
            switch settings.range {
            case let .fixed(lo, hi):
                tap.lo = Array(repeating: lo, count: channels)
                tap.hi = Array(repeating: hi, count: channels)
            case .layer, .channel:
                var lo = [Float](repeating: .infinity, count: channels), hi = [Float](repeating: -.infinity, count: channels)
                for i in 0..<calibration {
                    for c in 0..<channels {
                        for j in 0..<hw {
                            let v = values[i * per + c * hw + j]
                            guard v.isFinite else { continue }
                            lo[c] = min(lo[c], v)
                            hi[c] = max(hi[c], v)
                        }
                    }
                }
                if settings.range == .layer {
                    let l = lo.min()!, h = hi.max()!
                    lo = Array(repeating: l, count: channels)
                    hi = Array(repeating: h, count: channels)
                }
                tap.lo = lo
                tap.hi = hi
            }
            for i in 0..<n {
                var hists: [[Int]] = []
                for c in 0..<channels {
                    var h = [Int](repeating: 0, count: b)
                    for j in 0..<hw {
                        if let k = Naive.bin(values[i * per + c * hw + j], lo: tap.lo[c], hi: tap.hi[c], bins: b) { h[k] += 1 }
                    }
                    hists.append(h)
                }
                var layer = [Int](repeating: 0, count: b)
                if settings.range == .channel {
                    // Each channel binned with its own range: the layer-level instance
                    // histogram is defined as the sum of the channel histograms.
                    for h in hists { for k in 0..<b { layer[k] += h[k] } }
                } else {
                    // One range for the tap: the histogram of all C·H·W values of the image.
                    for j in 0..<per {
                        if let k = Naive.bin(values[i * per + j], lo: tap.lo[0], hi: tap.hi[0], bins: b) { layer[k] += 1 }
                    }
                }
                tap.channelHist.append(hists)
                tap.layerHist.append(layer)
                tap.instance.append(hists.map { Naive.entropy($0, millerMadow: settings.millerMadow) })
                tap.layerInstance.append(Naive.entropy(layer, millerMadow: settings.millerMadow))
            }
            taps.append(tap)
        }
    }

    var imageCount: Int { labels.count }
    func images(ofClass y: Int) -> [Int] { labels.indices.filter { labels[$0] == y } }
    var labelledImages: [Int] { labels.indices.filter { labels[$0] >= 0 && labels[$0] < classCount } }

    /// Pooled histogram over `images` of one channel (nil: all channels).
    func ensembleHistogram(tap t: Int, channel: Int?, images: [Int]) -> [Int] {
        var h = [Int](repeating: 0, count: bins)
        let tap = taps[t]
        for i in images {
            for c in channel.map({ [$0] }) ?? Array(tap.channelHist[i].indices) {
                for k in 0..<bins { h[k] += tap.channelHist[i][c][k] }
            }
        }
        return h
    }

    func ensemble(tap t: Int, channel: Int?, images: [Int]) -> Double {
        Naive.entropy(ensembleHistogram(tap: t, channel: channel, images: images), millerMadow: millerMadow)
    }

    /// I = H_E(S) − Σ_y |S_y|/|S| H_E(S_y) over the labelled images (unlabelled
    /// images have no class to inform about).
    func labelInformation(tap t: Int, channel: Int?) -> Double {
        let labelled = labelledImages
        guard !labelled.isEmpty else { return 0 }
        var conditional = 0.0
        for y in 0..<classCount {
            let s = images(ofClass: y)
            if s.isEmpty { continue }
            conditional += Double(s.count) / Double(labelled.count) * ensemble(tap: t, channel: channel, images: s)
        }
        // ≥ 0 by concavity for plug-in entropies; with Miller–Madow the class
        // entropies get larger corrections (fewer values each) and the difference
        // can go negative, which the engine reports as 0.
        return max(0, ensemble(tap: t, channel: channel, images: labelled) - conditional)
    }

    func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }
}

func assertClose(_ a: Double, _ b: Double, _ tolerance: Double = 1e-9, _ message: @autoclosure () -> String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssert(abs(a - b) <= tolerance, "\(a) vs \(b) (difference \(a - b)) \(message())", file: file, line: line)
}

extension TapRange {
    static func uniform(_ lo: Float, _ hi: Float, channels: Int) -> TapRange {
        TapRange(lo: Array(repeating: lo, count: channels), hi: Array(repeating: hi, count: channels))
    }
}

/// Feeds one tap's values for a batch straight into an accumulator.
func observe(_ accumulator: TapAccumulator, tap: Int, values: [Float]) {
    let info = accumulator.network.taps[tap]
    precondition(values.count % info.valuesPerImage == 0)
    values.withUnsafeBufferPointer { buffer in
        accumulator.observe(TapActivation(tap: tap, batch: values.count / info.valuesPerImage, shape: info.shape, values: buffer))
    }
}
