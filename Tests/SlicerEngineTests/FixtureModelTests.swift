import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine

/// End-to-end checks against models exported by PyTorch (tools/make_fixtures.py):
/// the logits and one intermediate tap must match PyTorch's to 1e-4 relative error.
final class FixtureModelTests: XCTestCase {
    struct FixtureIndex: Decodable {
        struct Model: Decodable {
            let onnx: String, input: String, output: String, tap: String
            let input_shape: [Int], output_shape: [Int], tap_shape: [Int]
            let tap_node: String
            let taps: [String]
            let metadata_props: [String: String]
        }
        let models: [String: Model]
    }

    static var fixtureDirectory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    func loadIndex() throws -> FixtureIndex {
        let data = try Data(contentsOf: Self.fixtureDirectory.appendingPathComponent("fixtures.json"))
        return try JSONDecoder().decode(FixtureIndex.self, from: data)
    }

    /// max |a−b| / max(1, max|b|): relative to the scale of the expected values.
    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        var worst: Float = 0, scale: Float = 1
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)); scale = max(scale, abs(y)) }
        return worst / scale
    }

    func checkModel(_ name: String, batchSize: Int) throws {
        let index = try loadIndex()
        let fixture = try XCTUnwrap(index.models[name])
        let dir = Self.fixtureDirectory
        let network = try Network(contentsOf: dir.appendingPathComponent(fixture.onnx).path)
        XCTAssertEqual([fixture.input_shape[0]] + network.inputShape, fixture.input_shape)
        XCTAssertEqual(network.classCount, fixture.output_shape[1])
        XCTAssertEqual(network.taps.map(\.name), fixture.taps, "taps in topological order")
        let input = try NPYArray.readFloat32(path: dir.appendingPathComponent(fixture.input).path, expectedShape: fixture.input_shape)
        let expected = try NPYArray.readFloat32(path: dir.appendingPathComponent(fixture.output).path)
        let expectedTap = try NPYArray.readFloat32(path: dir.appendingPathComponent(fixture.tap).path)
        let tap = try XCTUnwrap(network.tap(named: fixture.tap_node))
        XCTAssertEqual([fixture.tap_shape[0]] + tap.shape, fixture.tap_shape)

        let images = fixture.input_shape[0]
        let perImage = network.inputShape.reduce(1, *)
        let executor = try network.makeExecutor(capacity: batchSize)
        var logits: [Float] = [], tapValues: [Float] = []
        var start = 0
        while start < images {
            let n = min(batchSize, images - start)
            let out = input.withUnsafeBufferPointer { buffer in
                executor.run(input: UnsafeBufferPointer(rebasing: buffer[(start * perImage)..<((start + n) * perImage)]), count: n) { activation in
                    if activation.tap == tap.index { tapValues += Array(activation.values) }
                }
            }
            logits += Array(out)
            start += n
        }
        XCTAssertLessThanOrEqual(relativeError(logits, expected), 1e-4, "\(name) logits, batch \(batchSize)")
        XCTAssertLessThanOrEqual(relativeError(tapValues, expectedTap), 1e-4, "\(name) tap \(tap.name), batch \(batchSize)")
    }

    func testPlainCNNMatchesPyTorch() throws {
        try checkModel("plain_cnn", batchSize: 4)
        try checkModel("plain_cnn", batchSize: 3)  // a partial last batch
        try checkModel("plain_cnn", batchSize: 1)
    }

    func testBatchNormCNNMatchesPyTorch() throws {
        try checkModel("bn_cnn", batchSize: 4)
        try checkModel("bn_cnn", batchSize: 1)
    }

    func testResidualCNNMatchesPyTorch() throws {
        try checkModel("residual_cnn", batchSize: 4)
        try checkModel("residual_cnn", batchSize: 3)
    }

    func testMetadataIsRead() throws {
        let network = try Network(contentsOf: Self.fixtureDirectory.appendingPathComponent("plain_cnn.onnx").path)
        XCTAssertEqual(network.metadataMean, [0.5])
        XCTAssertEqual(network.metadataStd, [0.25])
        XCTAssertEqual(network.metadataLabels?.count, 10)
        XCTAssertEqual(network.metadataLabels?.first, "zero")
        XCTAssertEqual(network.model.opsetVersion, 13)
    }

    func testBatchNormalizationIsKeptAsNodes() throws {
        let network = try Network(contentsOf: Self.fixtureDirectory.appendingPathComponent("bn_cnn.onnx").path)
        XCTAssertEqual(network.taps.filter { $0.opType == "BatchNormalization" }.count, 2)
    }

    func testParallelRunnerMatchesSequentialRun() throws {
        let dir = Self.fixtureDirectory
        let network = try Network(contentsOf: dir.appendingPathComponent("residual_cnn.onnx").path)
        let perImage = network.inputShape.reduce(1, *)
        // 37 deterministic pseudo-random images, batches of 5 on two threads.
        var state: UInt64 = 42
        let total = 37
        let input: [Float] = (0..<(total * perImage)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 40) % 2000) / 1000 - 1
        }
        let sequential = try network.makeExecutor(capacity: total)
        let expected = input.withUnsafeBufferPointer { Array(sequential.run(input: $0, count: total)) }
        let result = UncheckedBox(NSMutableArray(array: Array(repeating: Float(0), count: total * network.classCount)))
        let lock = NSLock()
        let runner = BatchRunner(network: network, batchSize: 5, threads: 2)
        try runner.run(total: total, fill: { range, destination in
            input.withUnsafeBufferPointer { src in
                destination.update(from: src.baseAddress! + range.lowerBound * perImage, count: range.count * perImage)
            }
        }, process: { _, range, executor in
            let logits = executor.run(count: range.count)
            lock.lock(); defer { lock.unlock() }
            for (i, v) in logits.enumerated() { result.value[range.lowerBound * network.classCount + i] = v }
        })
        let got = (result.value as! [Float])
        XCTAssertLessThanOrEqual(relativeError(got, expected), 1e-5)
    }
}
