import Foundation
import XCTest
import SlicerData
import SlicerEngine
@testable import SlicerInfo

/// `cnnslicer.analysis.v1` (SPEC §6) as rendered by `AnalysisJSON`.
final class AnalysisJSONTests: XCTestCase {
    private func render(range: RangeMode, modelPath: String = "models/plain_cnn.onnx",
                        classNames: [String] = (0..<10).map { "class \($0)" }) throws -> (Any, AnalysisSummary, Network) {
        let network = try InfoFixtures.network("plain_cnn")
        // Labels 0…7 only: classes 8 and 9 have no images (null entries).
        let images = try makeImages(shape: network.inputShape, count: 24, seed: 6, labels: { $0 % 8 })
        let summary = try Analyzer(input: try ModelInput(network: network, images: images),
                                   settings: AnalysisSettings(bins: 32, range: range), batchSize: 8, threads: 2)
            .analyze(keepPerImage: false).summary(network: network)
        let text = AnalysisJSON.render(network: network, modelPath: modelPath, dataSource: "test \"data\"\n",
                                       classNames: classNames, summary: summary)
        let json = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return (json, summary, network)
    }

    /// Compares numbers parsed by JSONSerialization, which on Linux may be off in
    /// the last digit of a shortest-round-trip double (`testNumberFormatting`
    /// checks the text itself round-trips exactly).
    private func assertSame(_ a: [Double?], _ b: [Double?], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) {
            if let x, let y {
                XCTAssertEqual(x, y, accuracy: 1e-14 * max(1, abs(y)), file: file, line: line)
            } else {
                XCTAssert(x == nil && y == nil, "\(String(describing: x)) vs \(String(describing: y))", file: file, line: line)
            }
        }
    }

    private func doubles(_ value: Any?, file: StaticString = #filePath, line: UInt = #line) -> [Double?] {
        guard let array = value as? [Any] else { XCTFail("not an array: \(String(describing: value))", file: file, line: line); return [] }
        return array.map { ($0 as? NSNumber)?.doubleValue }
    }

    func testFieldsAndLengths() throws {
        let names = (0..<10).map { "class \($0)" }
        let (json, summary, network) = try render(range: .layer, modelPath: "dir/\"odd\" name.onnx", classNames: names)
        let root = try XCTUnwrap(json as? [String: Any])
        XCTAssertEqual(root["format"] as? String, "cnnslicer.analysis.v1")
        XCTAssertEqual(root["model"] as? String, "dir/\"odd\" name.onnx")
        XCTAssertEqual(root["data"] as? String, "test \"data\"\n")
        XCTAssertEqual(root["images"] as? Int, 24)
        XCTAssertEqual(root["bins"] as? Int, 32)
        XCTAssertEqual(root["range"] as? String, "layer")
        XCTAssertEqual(root["classes"] as? [String], names)
        XCTAssertEqual(root["class_counts"] as? [Int], [3, 3, 3, 3, 3, 3, 3, 3, 0, 0])
        let taps = try XCTUnwrap(root["taps"] as? [[String: Any]])
        XCTAssertEqual(taps.count, network.taps.count)
        for (tap, (info, s)) in zip(taps, zip(network.taps, summary.taps)) {
            for key in ["name", "op", "shape", "range", "instance_entropy", "ensemble_entropy", "label_information",
                        "class_instance_entropy", "class_ensemble_entropy", "channel_instance_entropy",
                        "channel_ensemble_entropy", "channel_label_information"] {
                XCTAssertNotNil(tap[key], "\(info.name) lacks \(key)")
            }
            XCTAssertEqual(tap["name"] as? String, info.name)
            XCTAssertEqual(tap["op"] as? String, info.opType)
            XCTAssertEqual(tap["shape"] as? [Int], info.shape)
            assertSame(doubles(tap["range"]), [Double(s.range.lo), Double(s.range.hi)])
            assertSame(doubles(["instance_entropy", "ensemble_entropy", "label_information"].map { tap[$0] ?? NSNull() }),
                       [s.instanceEntropy, s.ensembleEntropy, s.labelInformation])
            for key in ["class_instance_entropy", "class_ensemble_entropy"] {
                XCTAssertEqual(doubles(tap[key]).count, 10, key)
                XCTAssert(tap[key].map { ($0 as! [Any])[8...].allSatisfy { $0 is NSNull } } ?? false, "classes without images are null")
            }
            assertSame(doubles(tap["class_instance_entropy"]), s.classInstanceEntropy)
            assertSame(doubles(tap["class_ensemble_entropy"]), s.classEnsembleEntropy)
            for key in ["channel_instance_entropy", "channel_ensemble_entropy", "channel_label_information"] {
                XCTAssertEqual(doubles(tap[key]).count, info.channels, "\(info.name) \(key)")
            }
            assertSame(doubles(tap["channel_instance_entropy"]), s.channelInstanceEntropy)
            assertSame(doubles(tap["channel_ensemble_entropy"]), s.channelEnsembleEntropy)
            assertSame(doubles(tap["channel_label_information"]), s.channelLabelInformation)
        }
    }

    func testRangeForms() throws {
        let (fixed, _, _) = try render(range: .fixed(lo: -1.5, hi: 2))
        let root = try XCTUnwrap(fixed as? [String: Any])
        assertSame(doubles(root["range"]), [-1.5, 2])
        let taps = try XCTUnwrap(root["taps"] as? [[String: Any]])
        for tap in taps { assertSame(doubles(tap["range"]), [-1.5, 2]) }
        let (channel, _, _) = try render(range: .channel)
        XCTAssertEqual((channel as? [String: Any])?["range"] as? String, "channel")
    }

    func testNumberFormatting() {
        XCTAssertEqual(JSONText.number(nil as Double?), "null")
        XCTAssertEqual(JSONText.number(Double.nan), "null")
        XCTAssertEqual(JSONText.number(-Double.infinity), "null")
        XCTAssertEqual(JSONText.number(3.0), "3")
        XCTAssertEqual(JSONText.number(-0.0), "0")
        for v in [0.1, 1.0 / 3, 6.02e23, -2.5e-300, 1e15, 123456.789] {
            XCTAssertEqual(Double(JSONText.number(v)), v)
        }
        XCTAssertEqual(JSONText.string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"")
    }
}
