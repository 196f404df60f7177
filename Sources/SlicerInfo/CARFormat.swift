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

    /// `mask`: channels ablated before CAR was measured (the app's "apply mask"); written as
    /// `"mask": {"<tap index>": [channels]}` when not empty.
    public static func render(result: CARResult, modelPath: String, dataSource: String, classNames: [String],
                              mask: AblationMask = AblationMask()) -> String {
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
        if !mask.isEmpty {
            let taps = mask.channels.sorted { $0.key < $1.key }.map { "\(J.string(String($0.key))): \(ints($0.value.sorted()))" }
            parts.append("\"mask\": {" + taps.joined(separator: ", ") + "}")
        }
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

/// CAR as CSV, one table per file, for spreadsheets: CAR is in accuracy
/// points (percentage points, 100 × the fraction `cnnslicer.car.v1` holds), as
/// the app shows it. Lines starting with `#` before the header say where the
/// numbers come from (pandas: `read_csv(f, comment="#")`).
public enum CARCSV {
    /// One row per channel: CAR, the accuracy with it ablated, and CAR per class.
    public static func channels(result: CARResult, modelPath: String, dataSource: String, classNames: [String],
                                mask: AblationMask = AblationMask()) -> String {
        let s = result.scores
        var lines = header(result: result, modelPath: modelPath, dataSource: dataSource, mask: mask)
        let names = (0..<s.classCounts.count).map { $0 < classNames.count ? classNames[$0] : "class \($0)" }
        lines.append((["channel", "car_points", "accuracy_ablated_percent"] + names.map { "car_points_" + $0 }).map(field).joined(separator: ","))
        let car = s.car, classCar = s.classCar
        for c in 0..<s.channels {
            let row = [String(c), number(car[c] * 100), number(s.accuracy(ablating: c) * 100)]
                + classCar[c].map { $0.map { number($0 * 100) } ?? "" }
            lines.append(row.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The greedy pruning curve beside its baselines, one row per step; nil without greedy.
    public static func pruning(result: CARResult, modelPath: String, dataSource: String,
                               mask: AblationMask = AblationMask()) -> String? {
        guard let greedy = result.greedy else { return nil }
        var lines = header(result: result, modelPath: modelPath, dataSource: dataSource, mask: mask)
        var curves: [(String, CARCurve)] = [("greedy", greedy)]
        if let b = result.baselines {
            if let l1 = b.l1 { curves.append(("l1", l1)) }
            curves.append(("random", b.random))
            curves.append(("entropy", b.entropy))
        }
        lines.append((["step"] + curves.flatMap { ["\($0.0)_channel", "\($0.0)_accuracy_percent"] }).joined(separator: ","))
        lines.append((["0"] + curves.flatMap { _ in ["", number(result.scores.accuracy * 100)] }).joined(separator: ","))
        for step in 0..<greedy.order.count {
            let row = [String(step + 1)] + curves.flatMap { curve in
                step < curve.1.order.count ? [String(curve.1.order[step]), number(curve.1.accuracy[step] * 100)] : ["", ""]
            }
            lines.append(row.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func header(result: CARResult, modelPath: String, dataSource: String, mask: AblationMask) -> [String] {
        let masked = mask.channels.sorted { $0.key < $1.key }.map { "tap \($0.key): \($0.value.sorted().map(String.init).joined(separator: " "))" }
        return [
            "# format: cnnslicer.car.v1 as CSV (CAR in accuracy points)",
            "# model: \(modelPath)",
            "# data: \(dataSource)",
            "# tap: \(result.tap.name) (index \(result.tap.index), \(result.tap.channels) channels)",
            "# images: \(result.scores.images), accuracy: \(number(result.scores.accuracy * 100)) %",
            "# mask: " + (masked.isEmpty ? "none" : masked.joined(separator: "; ")),
        ]
    }

    /// Shortest text that reads back as the same double.
    static func number(_ v: Double) -> String { v.isFinite ? "\(v)" : "" }

    static func field(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
