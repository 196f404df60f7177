import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerInfo

// Helpers for the CAR tests. The reference ("naive") CAR here is written from
// SPEC §4 directly: for every ablation, the whole network through
// `Executor.run(count:mask:)`, predictions by a plain argmax (ties to the
// lowest index), correct predictions counted per true class.

enum CARFixtures {
    /// The engine tests' fixture models, read from the source tree.
    static func fixture(_ name: String) throws -> Network {
        try load(URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()        // SlicerCARTests
            .deletingLastPathComponent()        // Tests
            .appendingPathComponent("SlicerEngineTests/Fixtures/\(name).onnx").path)
    }

    /// A model shipped in assets/models (trained by the project).
    static func shipped(_ name: String) throws -> Network {
        try load(URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("assets/models/\(name).onnx").path)
    }

    nonisolated(unsafe) private static var cache: [String: Network] = [:]
    private static let lock = NSLock()

    private static func load(_ path: String) throws -> Network {
        lock.lock(); defer { lock.unlock() }
        if let n = cache[path] { return n }
        let n = try Network(contentsOf: path)
        cache[path] = n
        return n
    }
}

/// SplitMix64: reproducible pseudo-random numbers.
struct TestRandom: RandomNumberGenerator {
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

enum Reference {
    /// Top-1 of each row, ties to the lowest index.
    static func argmax(_ logits: UnsafeBufferPointer<Float>, classes k: Int) -> [Int] {
        (0..<(logits.count / k)).map { n in
            var best = 0
            for i in 0..<k where logits[n * k + i] > logits[n * k + best] { best = i }
            return best
        }
    }

    /// Every image's logits under `mask`, the whole network, batches of `batch`.
    static func logits(_ input: ModelInput, images: [Int]? = nil, mask: AblationMask = AblationMask(),
                       batch: Int = 16) throws -> [Float] {
        let order = images ?? Array(0..<input.images.count)
        let executor = try input.network.makeExecutor(capacity: batch)
        var out: [Float] = []
        var start = 0
        while start < order.count {
            let n = min(batch, order.count - start)
            try input.fill(order[start..<(start + n)], into: executor.inputBuffer)
            out += Array(executor.run(count: n, mask: mask))
            start += n
        }
        return out
    }

    static func predictions(_ input: ModelInput, images: [Int]? = nil, mask: AblationMask = AblationMask(),
                            batch: Int = 16) throws -> [Int] {
        let l = try logits(input, images: images, mask: mask, batch: batch)
        return l.withUnsafeBufferPointer { argmax($0, classes: input.network.classCount) }
    }

    /// Correct predictions per class under `mask`.
    static func correct(_ input: ModelInput, mask: AblationMask, batch: Int = 16) throws -> [Int] {
        let p = try predictions(input, mask: mask, batch: batch)
        var counts = [Int](repeating: 0, count: input.network.classCount)
        for (i, y) in input.images.labels.enumerated() where y >= 0 && p[i] == y { counts[y] += 1 }
        return counts
    }

    /// Base and per-channel correct counts at `tap`, the whole network per ablation.
    static func scores(_ input: ModelInput, tap: Int, base: AblationMask = AblationMask(),
                       batch: Int = 16) throws -> (base: [Int], ablated: [[Int]]) {
        let channels = input.network.taps[tap].channels
        return (try correct(input, mask: base, batch: batch),
                try (0..<channels).map { try correct(input, mask: base.adding(tap: tap, channel: $0), batch: batch) })
    }

    /// SPEC §4's greedy pruning, from whole-network runs.
    static func greedy(_ input: ModelInput, tap: Int, keep: Int, base: AblationMask = AblationMask(),
                       batch: Int = 16) throws -> (order: [Int], accuracy: [Double], hadTie: Bool) {
        let n = input.images.labels.filter { $0 >= 0 }.count
        var mask = base, order: [Int] = [], accuracy: [Double] = [], hadTie = false
        var remaining = Array(0..<input.network.taps[tap].channels)
        while remaining.count > keep {
            let totals = try remaining.map { try correct(input, mask: mask.adding(tap: tap, channel: $0), batch: batch).reduce(0, +) }
            let best = totals.max()!
            if totals.filter({ $0 == best }).count > 1 { hadTie = true }
            let pick = remaining[totals.firstIndex(of: best)!]
            order.append(pick)
            accuracy.append(Double(best) / Double(n))
            mask = mask.adding(tap: tap, channel: pick)
            remaining.removeAll { $0 == pick }
        }
        return (order, accuracy, hadTie)
    }

    /// Accuracy after each removal along `order`.
    static func curve(_ input: ModelInput, tap: Int, order: [Int], steps: Int, batch: Int = 16) throws -> [Double] {
        let n = Double(input.images.labels.filter { $0 >= 0 }.count)
        var mask = AblationMask()
        return try order.prefix(steps).map { c in
            mask = mask.adding(tap: tap, channel: c)
            return Double(try correct(input, mask: mask, batch: batch).reduce(0, +)) / n
        }
    }
}

/// Pseudo-random images for `network`, labelled so that CAR has something to
/// measure: two images in three carry the network's own prediction (ablations
/// can only lose them), the third a random class (ablations may gain it).
///
/// With `allPredicted`, every image carries the prediction under `mask`.
func syntheticInput(_ network: Network, count: Int, seed: UInt64, unlabelled: Set<Int> = [],
                    allPredicted: Bool = false, mask: AblationMask = AblationMask()) throws -> ModelInput {
    var rng = TestRandom(seed: seed)
    let s = network.inputShape
    let per = s.reduce(1, *)
    let pixels = (0..<(count * per)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let k = network.classCount
    let names = (0..<k).map { "c\($0)" }
    let draft = try ModelInput(network: network, images: try LabeledImages(
        channels: s[0], height: s[1], width: s[2], pixels: pixels, labels: Array(repeating: 0, count: count),
        classNames: names, source: "synthetic"))
    let predicted = try Reference.predictions(draft, mask: mask)
    let labels = (0..<count).map { i -> Int in
        if unlabelled.contains(i) { return -1 }
        return i % 3 == 2 && !allPredicted ? Int(rng.next() % UInt64(k)) : predicted[i]
    }
    return try ModelInput(network: network, images: try LabeledImages(
        channels: s[0], height: s[1], width: s[2], pixels: pixels, labels: labels, classNames: names, source: "synthetic"))
}
