import Foundation
import XCTest
@testable import SlicerInfo

final class InterleavedOrderTests: XCTestCase {
    /// Every prefix of length L holds each class y within ±1 of L·n_y/N.
    private func assertProportionalPrefixes(_ labels: [Int], indices: [Int]? = nil, prefixStep: Int = 1,
                                            file: StaticString = #filePath, line: UInt = #line) {
        let set = indices ?? Array(labels.indices)
        let order = interleavedByClass(labels: labels, indices: indices)
        XCTAssertEqual(order.sorted(), set.sorted(), "a permutation of the images", file: file, line: line)
        var sizes: [Int: Int] = [:]
        for i in set { sizes[labels[i], default: 0] += 1 }
        var taken: [Int: Int] = [:]
        var worst = 0.0
        for (l, i) in order.enumerated() {
            taken[labels[i], default: 0] += 1
            let length = l + 1
            guard length % prefixStep == 0 else { continue }
            for (y, n) in sizes {
                let expected = Double(length) * Double(n) / Double(set.count)
                worst = max(worst, abs(Double(taken[y, default: 0]) - expected))
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "largest deviation from proportional", file: file, line: line)
        // Within each class, dataset order.
        for y in sizes.keys {
            let mine = order.filter { labels[$0] == y }
            XCTAssertEqual(mine, mine.sorted(), file: file, line: line)
        }
    }

    func testBalancedClassesComeInRounds() {
        let k = 10
        var rng = SplitMix64(seed: 7)
        // Shuffled labels, 12 of each class: every prefix of length m·K has exactly m of each.
        let labels = (0..<(12 * k)).map { $0 % k }.shuffled(using: &rng)
        let order = interleavedByClass(labels: labels)
        for m in 1...12 {
            let prefix = order.prefix(m * k)
            for y in 0..<k { XCTAssertEqual(prefix.filter { labels[$0] == y }.count, m) }
        }
        assertProportionalPrefixes(labels, prefixStep: k)
        assertProportionalPrefixes(labels)
    }

    func testUnbalancedClassesStayProportional() {
        var rng = SplitMix64(seed: 8)
        let sizes = [40, 3, 17, 1, 25, 9, 0, 12]
        var labels: [Int] = []
        for (y, n) in sizes.enumerated() { labels += [Int](repeating: y, count: n) }
        labels += [-1, -1, -1, -1, -1]    // unlabelled images are a group of their own
        labels.shuffle(using: &rng)
        assertProportionalPrefixes(labels)
        // A subset of the images.
        let subset = labels.indices.filter { $0 % 3 != 0 }
        assertProportionalPrefixes(labels, indices: subset)
        // Degenerate cases.
        XCTAssertEqual(interleavedByClass(labels: []), [])
        XCTAssertEqual(interleavedByClass(labels: [4, 4, 4]), [0, 1, 2])
    }
}

/// The in-memory store. (Above `PerImageStore.residentLimit`, 512 MiB, the
/// store is a mapped temporary file instead; building one that large is too
/// big for a unit test, so only the resident mode is exercised here. Both
/// modes share every accessor below: only where `base` points differs.)
final class PerImageStoreTests: XCTestCase {
    func testLayoutAccessorsAndCompletion() throws {
        let tapChannels = [3, 1, 4, 2], k = 5, n = 6
        let store = try PerImageStore(imageCount: n, tapChannels: tapChannels, classCount: k)
        XCTAssertEqual(store.channelOffsets, [0, 3, 4, 8])
        XCTAssertEqual(store.totalChannels, 10)
        XCTAssertEqual(store.tapCount, 4)
        XCTAssertEqual(store.imageCount, n)
        XCTAssertEqual(store.classCount, k)
        // Fresh store: zeros, nothing complete.
        XCTAssertEqual(store.completeCount, 0)
        XCTAssertEqual(Array(store.channelEntropies(image: 5, tap: 3)), [0, 0])
        // Fill every slot with a distinct value, then read everything back: no region overlaps another.
        for i in 0..<n {
            for t in 0..<4 {
                for c in 0..<tapChannels[t] { store.channelEntropyBase[i * 10 + store.channelOffsets[t] + c] = Float(1000 * i + 10 * t + c) }
                store.layerEntropyBase[i * 4 + t] = Float(-1000 * i - t)
            }
            var logits = [Float](repeating: 0, count: k)
            logits[(i * 2) % k] = 3
            logits.withUnsafeBufferPointer { store.setPrediction(image: i, logits: $0) }
        }
        for i in 0..<n {
            for t in 0..<4 {
                let e = store.channelEntropies(image: i, tap: t)
                XCTAssertEqual(e.count, tapChannels[t])
                XCTAssertEqual(Array(e), (0..<tapChannels[t]).map { Float(1000 * i + 10 * t + $0) })
                XCTAssertEqual(store.layerEntropy(image: i, tap: t), Float(-1000 * i - t))
            }
            XCTAssertEqual(store.prediction(image: i), (i * 2) % k)
            let p = Array(store.probabilities(image: i))
            XCTAssertEqual(p.count, k)
            XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-6)
            let big = exp(3.0) / (exp(3.0) + 4)
            XCTAssertEqual(Double(p[(i * 2) % k]), big, accuracy: 1e-6)
        }
        // Completion: duplicates counted once.
        store.markComplete([1, 3, 1])
        store.markComplete([3, 5])
        XCTAssertEqual(store.completeCount, 3)
        XCTAssertEqual((0..<n).map(store.isComplete), [false, true, false, true, false, true])
        store.markComplete(0..<n)
        XCTAssertEqual(store.completeCount, n)
    }

    func testPredictionsFromExtremeLogits() throws {
        let store = try PerImageStore(imageCount: 3, tapChannels: [1], classCount: 3)
        // Huge logits: the softmax must not overflow.
        [Float(1e30), 2e30, -1e30].withUnsafeBufferPointer { store.setPrediction(image: 0, logits: $0) }
        XCTAssertEqual(store.prediction(image: 0), 1)
        XCTAssertEqual(Array(store.probabilities(image: 0)), [0, 1, 0])
        // Ties go to the first class.
        [Float(2), 5, 5].withUnsafeBufferPointer { store.setPrediction(image: 1, logits: $0) }
        XCTAssertEqual(store.prediction(image: 1), 1)
        XCTAssertEqual(store.probabilities(image: 1)[1], store.probabilities(image: 1)[2])
        XCTAssertEqual(Array(store.probabilities(image: 1)).reduce(0, +), 1, accuracy: 1e-6)
        [Float(-3), -3, -3].withUnsafeBufferPointer { store.setPrediction(image: 2, logits: $0) }
        XCTAssertEqual(store.prediction(image: 2), 0)
        for p in store.probabilities(image: 2) { XCTAssertEqual(p, 1.0 / 3, accuracy: 1e-6) }
    }
}
