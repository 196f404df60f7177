import Foundation
import SlicerData
import SlicerEngine

/// Minimal JSON text building with the number formatting our formats promise:
/// doubles in shortest round-trip form, non-finite values as null.
public enum JSONText {
    public static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    public static func number(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "null" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) + (v == 0 && v.sign == .minus ? "" : "") }
        return "\(v)"
    }

    public static func number(_ v: Float) -> String { number(Double(v)) }

    public static func array<S: Sequence>(_ values: S, _ render: (S.Element) -> String) -> String {
        "[" + values.map(render).joined(separator: ", ") + "]"
    }
}

/// `cnnslicer.analysis.v1` (SPEC §6).
public enum AnalysisJSON {
    public static func render(network: Network, modelPath: String, dataSource: String, classNames: [String],
                              summary: AnalysisSummary) -> String {
        typealias J = JSONText
        let range: String
        switch summary.range {
        case .layer: range = J.string("layer")
        case .channel: range = J.string("channel")
        case let .fixed(lo, hi): range = "[\(J.number(lo)), \(J.number(hi))]"
        }
        var taps: [String] = []
        for t in summary.taps {
            taps.append("""
                {"name": \(J.string(t.name)), "op": \(J.string(t.op)), "shape": \(J.array(t.shape) { String($0) }), \
            "range": [\(J.number(t.range.lo)), \(J.number(t.range.hi))], \
            "instance_entropy": \(J.number(t.instanceEntropy)), "instance_entropy_std": \(J.number(t.instanceEntropySpread)), \
            "ensemble_entropy": \(J.number(t.ensembleEntropy)), "label_information": \(J.number(t.labelInformation)), \
            "instance_ceiling": \(J.number(t.instanceCeiling)), \
            "channel_instance_ceiling": \(J.number(t.channelInstanceCeiling)), "non_finite": \(t.nonFiniteValues), \
            "class_instance_entropy": \(J.array(t.classInstanceEntropy) { J.number($0) }), \
            "class_ensemble_entropy": \(J.array(t.classEnsembleEntropy) { J.number($0) }), \
            "channel_instance_entropy": \(J.array(t.channelInstanceEntropy) { J.number($0) }), \
            "channel_ensemble_entropy": \(J.array(t.channelEnsembleEntropy) { J.number($0) }), \
            "channel_label_information": \(J.array(t.channelLabelInformation) { J.number($0) })}
            """)
        }
        return """
        {"format": "cnnslicer.analysis.v1", "model": \(J.string(modelPath)), "data": \(J.string(dataSource)), \
        "images": \(summary.images), "bins": \(summary.bins), "range": \(range), "miller_madow": \(summary.millerMadow), \
        "classes": \(J.array(classNames) { J.string($0) }), "class_counts": \(J.array(summary.classCounts) { String($0) }),
         "taps": [
        \(taps.joined(separator: ",\n"))
        ]}
        """
    }
}

/// Content digests that key caches and tie shard partials to their inputs.
public enum FileDigest {
    /// A 64-bit digest of bytes, as 16 hex digits (not cryptographic: it detects
    /// changed or different inputs, not adversaries).
    public static func of<C: Collection>(bytes: C, seed: UInt64 = 0) -> String where C.Element == UInt8 {
        String(format: "%016llx", hash(bytes, seed: seed))
    }

    static func hash<C: Collection>(_ bytes: C, seed: UInt64) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ seed ^ UInt64(bytes.count)
        var word: UInt64 = 0, shift: UInt64 = 0
        @inline(__always) func mix(_ w: UInt64) {
            h ^= w &* 0xBF58_476D_1CE4_E5B9
            h = (h << 27 | h >> 37) &* 0x94D0_49BB_1331_11EB
        }
        for b in bytes {
            word |= UInt64(b) << shift
            shift += 8
            if shift == 64 { mix(word); word = 0; shift = 0 }
        }
        if shift > 0 { mix(word) }
        h ^= h >> 31; h &*= 0xD6E8_FEB8_6659_FD93; h ^= h >> 32
        return h
    }

    public static func of(file path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InfoError.io("\(path): cannot read")
        }
        return of(bytes: data)
    }

    /// Digest of a data set's pixels, labels and layout.
    public static func of(images: LabeledImages) -> String {
        var header = "\(images.count)x\(images.channels)x\(images.height)x\(images.width)".utf8.map { $0 }
        header += images.labels.flatMap { withUnsafeBytes(of: Int32($0).littleEndian, Array.init) }
        let a = hash(header, seed: 1), b = hash(images.pixels, seed: 2)
        return String(format: "%016llx%016llx", a, b)
    }
}

/// A shard's histograms (`analyze --shard k/n`), to be merged.
public struct AnalysisPartial: Codable {
    public static let format = "cnnslicer.analysis-partial.v2"
    public var format = AnalysisPartial.format
    public let model: String
    public let data: String
    public let modelDigest: String
    public let dataDigest: String
    public let totalImages: Int
    public let shardIndex: Int
    public let shardCount: Int
    public let bins: Int
    public let range: String
    public let millerMadow: Bool
    public let classNames: [String]
    public let ranges: [TapRange]
    public let histograms: HistogramSet

    public init(model: String, data: String, modelDigest: String, dataDigest: String, totalImages: Int,
                shardIndex: Int, shardCount: Int, settings: AnalysisSettings, classNames: [String],
                ranges: [TapRange], histograms: HistogramSet) {
        self.model = model; self.data = data; self.modelDigest = modelDigest; self.dataDigest = dataDigest
        self.totalImages = totalImages; self.shardIndex = shardIndex; self.shardCount = shardCount
        bins = settings.bins; range = settings.range.description; millerMadow = settings.millerMadow
        self.classNames = classNames; self.ranges = ranges; self.histograms = histograms
    }

    public var settings: AnalysisSettings {
        AnalysisSettings(bins: bins, range: RangeMode(argument: range) ?? .layer, millerMadow: millerMadow)
    }

    public func write(to path: String) throws {
        let data = try JSONEncoder().encode(self)
        try AtomicFile.write(data, to: path)
    }

    public static func read(from path: String) throws -> AnalysisPartial {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InfoError.io("\(path): no such file or not readable")
        }
        do {
            let partial = try JSONDecoder().decode(AnalysisPartial.self, from: data)
            guard partial.format == format else { throw InfoError.invalid("\(path): not a \(format) file") }
            return partial
        } catch let error as InfoError {
            throw error
        } catch {
            throw InfoError.invalid("\(path): not a valid \(format) file (\(error))")
        }
    }

    /// Adds the histograms of partials that cover every shard exactly once
    /// and agree on model, data and settings.
    public static func merge(_ partials: [AnalysisPartial]) throws -> AnalysisPartial {
        guard var merged = partials.first else { throw InfoError.invalid("no partials to merge") }
        var seen = Set<Int>()
        for p in partials {
            let mismatch = p.modelDigest != merged.modelDigest ? "model" : p.dataDigest != merged.dataDigest ? "data"
                : (p.bins != merged.bins || p.range != merged.range || p.millerMadow != merged.millerMadow) ? "settings"
                : p.shardCount != merged.shardCount ? "shard count" : p.ranges != merged.ranges ? "calibration" : nil
            if let mismatch {
                throw InfoError.invalid("shard \(p.shardIndex)/\(p.shardCount) of \(p.model): different \(mismatch) from shard \(merged.shardIndex)/\(merged.shardCount)")
            }
            guard seen.insert(p.shardIndex).inserted else {
                throw InfoError.invalid("shard \(p.shardIndex)/\(p.shardCount) given twice")
            }
        }
        let missing = (1...merged.shardCount).filter { !seen.contains($0) }
        guard missing.isEmpty else {
            throw InfoError.invalid("missing shards \(missing.map { "\($0)/\(merged.shardCount)" }.joined(separator: ", "))")
        }
        var total = partials[0].histograms
        for p in partials.dropFirst() { total.add(p.histograms) }
        merged = AnalysisPartial(model: merged.model, data: merged.data, modelDigest: merged.modelDigest,
                                 dataDigest: merged.dataDigest, totalImages: merged.totalImages, shardIndex: 1,
                                 shardCount: 1, settings: merged.settings, classNames: merged.classNames,
                                 ranges: merged.ranges, histograms: total)
        return merged
    }
}

/// Writes through a temporary file in the same directory and a rename, so a
/// reader never sees half a file and a crash leaves the old one intact.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try data.write(to: temp)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw InfoError.io("\(path): cannot write (\(error.localizedDescription))")
        }
        if rename(temp.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temp)
            throw InfoError.io("\(path): cannot write (\(reason))")
        }
    }
}

/// Per-image arrays of an analysis as .npy files (`analyze --npy DIR`).
public enum NPYExport {
    /// Writes `layer_instance_entropy.npy` (N×T), `channel_instance_entropy_<t>.npy`
    /// (N×C per tap, t the tap index), `predictions.npy`, `probabilities.npy` (N×K),
    /// `labels.npy` (float32; −1 for unlabelled) and `taps.txt` (one tap name per line).
    public static func write(store: PerImageStore, network: Network, labels: [Int], to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw InfoError.io("\(directory): cannot create directory (\(error.localizedDescription))")
        }
        let n = store.imageCount, t = store.tapCount, k = store.classCount
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let layer = (0..<n).flatMap { i in (0..<t).map { store.layerEntropy(image: i, tap: $0) } }
        try NPYArray(shape: [n, t], float32: layer).write(to: path("layer_instance_entropy.npy"))
        for tap in network.taps {
            let values = (0..<n).flatMap { Array(store.channelEntropies(image: $0, tap: tap.index)) }
            try NPYArray(shape: [n, tap.channels], float32: values).write(to: path("channel_instance_entropy_\(tap.index).npy"))
        }
        try NPYArray(shape: [n], float32: (0..<n).map { Float(store.prediction(image: $0)) }).write(to: path("predictions.npy"))
        try NPYArray(shape: [n, k], float32: (0..<n).flatMap { Array(store.probabilities(image: $0)) }).write(to: path("probabilities.npy"))
        try NPYArray(shape: [n], float32: labels.map { Float($0) }).write(to: path("labels.npy"))
        try AtomicFile.write(Data((network.taps.map(\.name).joined(separator: "\n") + "\n").utf8), to: path("taps.txt"))
    }
}
