import Foundation
import SlicerEngine

/// `cnnslicer.car.v1` (SPEC §6):
/// `{format, model, data, tap, images, accuracy, class_accuracy[K], car[C],
/// class_car[C][K], greedy: {order[], accuracy[]}, baselines: {l1: {order[],
/// accuracy[]}, random: {…}, entropy: {…}}}`.
///
/// `greedy` and `baselines` are present only with a greedy target. Beside the
/// specified keys: `classes`, `class_counts`, `tap_index`, `channels`,
/// `shortcut`; `greedy.keep`; `baselines.random.seed`; `baselines.l1.convolution`
/// and `baselines.l1.norms`; `baselines.entropy.entropies`. When no convolution
/// produces the tap's channels, `baselines.l1` is null and
/// `baselines.l1_unavailable` says why. Class-wise values of classes without
/// images are null.
public enum CARJSON {
    public static let format = "cnnslicer.car.v1"

    public static func render(result: CARResult, modelPath: String, dataSource: String, classNames: [String]) -> String {
        typealias J = JSONText
        let s = result.scores
        func ints(_ a: [Int]) -> String { J.array(a) { String($0) } }
        func doubles(_ a: [Double]) -> String { J.array(a) { J.number($0) } }
        func curve(_ c: CARCurve, extra: String = "") -> String {
            "{\"order\": \(ints(c.order)), \"accuracy\": \(doubles(c.accuracy))\(extra)}"
        }
        var parts = [
            "\"format\": \(J.string(format))",
            "\"model\": \(J.string(modelPath))",
            "\"data\": \(J.string(dataSource))",
            "\"tap\": \(J.string(result.tap.name))",
            "\"tap_index\": \(result.tap.index)",
            "\"channels\": \(result.tap.channels)",
            "\"images\": \(s.images)",
            "\"classes\": \(J.array(classNames) { J.string($0) })",
            "\"class_counts\": \(ints(s.classCounts))",
            "\"shortcut\": \(J.string(result.shortcut))",
            "\"accuracy\": \(J.number(s.accuracy))",
            "\"class_accuracy\": \(J.array(s.classAccuracy) { J.number($0) })",
            "\"car\": \(doubles(s.car))",
            "\"class_car\": [\n  " + s.classCar.map { row in J.array(row) { J.number($0) } }.joined(separator: ",\n  ") + "\n]",
        ]
        if let greedy = result.greedy {
            parts.append("\"greedy\": " + curve(greedy, extra: result.keep.map { ", \"keep\": \($0)" } ?? ""))
        }
        if let b = result.baselines {
            var l1 = "\"l1\": null, \"l1_unavailable\": \(J.string(b.l1Unavailable ?? "unknown"))"
            if let c = b.l1 {
                l1 = "\"l1\": " + curve(c, extra: ", \"convolution\": \(J.string(b.l1Convolution ?? "")), \"norms\": \(doubles(b.l1Norms ?? []))")
            }
            parts.append("""
                "baselines": {\(l1),
                 "random": \(curve(b.random, extra: ", \"seed\": \(b.seed)")),
                 "entropy": \(curve(b.entropy, extra: ", \"entropies\": \(doubles(b.entropies))"))}
                """)
        }
        return "{" + parts.joined(separator: ",\n ") + "}"
    }
}
