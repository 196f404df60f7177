import Foundation
import XCTest

/// `cnnslicer analyze` gives the same bits for any --threads and --batch, and
/// merged shards give the bits of one run. With --threads 2 the JSON used to
/// differ in the last digits between runs (the instance entropies' sums
/// depended on which worker finished first): on the shipped CIFAR-10 VGG over
/// 300 images, 793 of 5,559 values differed between --threads 1 and 2.
final class ReproducibilityTests: XCTestCase {
    private var scratch: Scratch!

    override func setUpWithError() throws {
        _ = try CLI.requireBinary()
        scratch = try Scratch()
    }

    override func tearDown() { scratch?.remove() }

    private static var assets: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("assets").path
    }

    /// The JSON without its memory estimate (which depends on --threads and
    /// --batch by design, and is on a line of its own).
    private func analysis(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try CLI.run(["analyze", "--model", Self.assets + "/models/fashion_mnist_cnn.onnx",
                                  "--data", Self.assets + "/data/fashion-mnist-subset", "--limit", "300",
                                  "--no-cache", "--quiet"] + arguments, in: scratch.path, timeout: 300)
        XCTAssertEqual(result.status, 0, result.summary, file: file, line: line)
        return result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix(" \"memory\":") }.joined(separator: "\n")
    }

    func testAnalyzeIsBitIdenticalForAnyThreadsAndBatches() throws {
        let reference = try analysis(["--threads", "1", "--batch", "64"])
        XCTAssert(reference.contains("\"images\": 300"), reference.prefix(300) + "")
        for (threads, batch) in [("2", "64"), ("2", "7"), ("3", "1"), ("4", "300")] {
            let other = try analysis(["--threads", threads, "--batch", batch])
            XCTAssert(other == reference, "--threads \(threads) --batch \(batch) differs from --threads 1 --batch 64")
        }
        // Shards of the same images, merged: the same text as one run.
        for k in 1...3 {
            _ = try analysis(["--threads", "2", "--batch", "5", "--shard", "\(k)/3", "--out", "p\(k).partial"])
        }
        let merged = try CLI.run(["merge", "p1.partial", "p3.partial", "p2.partial"], in: scratch.path)
        XCTAssertEqual(merged.status, 0, merged.summary)
        let one = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(reference.utf8)) as? [String: Any])
        let shards = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(merged.stdout.utf8)) as? [String: Any])
        // Everything but the file names (merge reports the partials' model and data paths).
        XCTAssertEqual(try XCTUnwrap(one["taps"] as? NSArray), try XCTUnwrap(shards["taps"] as? NSArray))
        XCTAssertEqual(one["class_counts"] as? [Int], shards["class_counts"] as? [Int])
    }
}
