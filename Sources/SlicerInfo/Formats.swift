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
///
/// Sealed by a digest of all its other fields, so that a partial damaged or
/// edited after it was written is refused instead of merged into different
/// numbers; and checked whole on reading (`validate`, Validation.swift), so
/// that nothing out of range ever reaches the merge.
public struct AnalysisPartial: Codable {
    public static let format = "cnnslicer.analysis-partial.v3"
    public var format = AnalysisPartial.format
    public let model: String
    public let data: String
    public let modelDigest: String
    public let dataDigest: String
    public let totalImages: Int
    public let shardIndex: Int
    public let shardCount: Int
    /// The images (indices in dataset order) this shard analysed: [first, end).
    public let images: [Int]
    public let bins: Int
    public let range: String
    public let millerMadow: Bool
    public let classNames: [String]
    public let ranges: [TapRange]
    public let histograms: HistogramSet
    /// `FileDigest` of the partial's JSON with this field empty (`sealDigest`).
    public internal(set) var digest = ""

    public init(model: String, data: String, modelDigest: String, dataDigest: String, totalImages: Int,
                shardIndex: Int, shardCount: Int, images: Range<Int>, settings: AnalysisSettings, classNames: [String],
                ranges: [TapRange], histograms: HistogramSet) {
        self.model = model; self.data = data; self.modelDigest = modelDigest; self.dataDigest = dataDigest
        self.totalImages = totalImages; self.shardIndex = shardIndex; self.shardCount = shardCount
        self.images = [images.lowerBound, images.upperBound]
        bins = settings.bins; range = settings.range.description; millerMadow = settings.millerMadow
        self.classNames = classNames; self.ranges = ranges; self.histograms = histograms
        digest = sealDigest()
    }

    public var settings: AnalysisSettings {
        AnalysisSettings(bins: bins, range: RangeMode(argument: range) ?? .layer, millerMadow: millerMadow)
    }

    /// The images as a range (valid once `validate` passed).
    public var imageRange: Range<Int> { images[0]..<images[1] }

    /// The digest of every field but `digest`, over their canonical JSON (sorted
    /// keys; numbers in shortest round-trip form, so decoding and encoding again
    /// gives the same text).
    func sealDigest() -> String {
        var unsealed = self
        unsealed.digest = ""
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return FileDigest.of(bytes: (try? encoder.encode(unsealed)) ?? Data())
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try AtomicFile.write(try encoder.encode(self), to: path)
    }

    /// Reads and checks a partial: its format, its digest, and every length and
    /// value (`validate`). Errors name `path` and the field.
    public static func read(from path: String) throws -> AnalysisPartial {
        let data = Data(try InputFile.read(path))
        // The format first, so that a partial of another version says so rather
        // than failing on a field it does not have.
        struct Header: Decodable { let format: String? }
        guard let header = try? JSONDecoder().decode(Header.self, from: data) else {
            throw InfoError.invalid("\(path): not a \(format) file (not a JSON object)")
        }
        guard header.format == format else {
            let found = header.format.map { "format '\(String(reflecting: $0).dropFirst().dropLast())'" } ?? "no format field"
            let older = header.format?.hasPrefix("cnnslicer.analysis-partial.") == true ? "; re-run the shards with this cnnslicer" : ""
            throw InfoError.invalid("\(path): not a \(format) file (\(found)\(older))")
        }
        let partial: AnalysisPartial
        do {
            partial = try JSONDecoder().decode(AnalysisPartial.self, from: data)
        } catch let error as DecodingError {
            throw InfoError.invalid("\(path): \(describe(error))")
        } catch {
            throw InfoError.invalid("\(path): not a valid \(format) file")
        }
        guard partial.digest == partial.sealDigest() else {
            throw InfoError.invalid("\(path): field digest: does not match the contents (the file was changed or damaged after it was written)")
        }
        do {
            try partial.validate()
        } catch {
            throw InfoError.invalid("\(path): \(error)")
        }
        return partial
    }

    /// Checks the partial against itself: shard numbers, image range, settings,
    /// class names, ranges and histograms (Validation.swift).
    public func validate() throws(FieldError) {
        guard shardCount >= 1, shardCount <= 1_000_000 else { throw FieldError("shardCount", "\(shardCount) is not a shard count") }
        guard (1...shardCount).contains(shardIndex) else { throw FieldError("shardIndex", "\(shardIndex) is outside 1...\(shardCount)") }
        guard totalImages >= 1, totalImages <= Int(Int32.max) else { throw FieldError("totalImages", "\(totalImages) is not an image count") }
        guard images.count == 2, images[0] >= 0, images[0] <= images[1], images[1] <= totalImages else {
            throw FieldError("images", "\(images) is not a range [first, end) within 0...\(totalImages)")
        }
        guard RangeMode(argument: range) != nil else { throw FieldError("range", "'\(range)' is not layer, channel or LO,HI") }
        guard bins == histograms.bins else { throw FieldError("bins", "\(bins), but the histograms have \(histograms.bins)") }
        try histograms.validate(shape: nil, images: images[1] - images[0], millerMadow: millerMadow)
        guard classNames.count == histograms.classCount else {
            throw FieldError("classNames", "\(classNames.count) names for \(histograms.classCount) classes")
        }
        try ranges.validate(shape: StatisticsShape(histograms: histograms))
    }

    /// Checks that the partial fits `network` (taps, channels, values, classes).
    public func validate(against network: Network) throws(FieldError) {
        try histograms.validate(shape: StatisticsShape(network: network), images: images[1] - images[0], millerMadow: millerMadow)
    }

    /// Adds the histograms of partials that cover every image once, one shard
    /// each, and agree on model, data and settings. Errors name the file.
    ///
    /// - Parameter partials: each partial with the file it was read from.
    public static func merge(_ partials: [(path: String, partial: AnalysisPartial)]) throws -> AnalysisPartial {
        guard let (firstPath, first) = partials.first else { throw InfoError.invalid("no partials to merge") }
        var byShard: [Int: String] = [:]
        for (path, p) in partials {
            let mismatch = p.modelDigest != first.modelDigest ? "model" : p.dataDigest != first.dataDigest ? "data"
                : (p.bins != first.bins || p.range != first.range || p.millerMadow != first.millerMadow) ? "settings"
                : p.shardCount != first.shardCount ? "shard count" : p.totalImages != first.totalImages ? "image count"
                : p.ranges != first.ranges ? "calibration (binning ranges)"
                : StatisticsShape(histograms: p.histograms) != StatisticsShape(histograms: first.histograms) ? "histogram shapes"
                : nil
            if let mismatch {
                throw InfoError.invalid("\(path): shard \(p.shardIndex)/\(p.shardCount) has a different \(mismatch) from \(firstPath) (shard \(first.shardIndex)/\(first.shardCount))")
            }
            if let earlier = byShard[p.shardIndex] {
                throw InfoError.invalid("\(path): shard \(p.shardIndex)/\(p.shardCount) given twice (also \(earlier))")
            }
            byShard[p.shardIndex] = path
        }
        let missing = (1...first.shardCount).filter { byShard[$0] == nil }
        guard missing.isEmpty else {
            let given = partials.map { "\($0.path) (\($0.partial.shardIndex)/\($0.partial.shardCount))" }.joined(separator: ", ")
            throw InfoError.invalid("missing shard\(missing.count > 1 ? "s" : "") \(missing.map { "\($0)/\(first.shardCount)" }.joined(separator: ", ")); given: \(given)")
        }
        // Shard k must start where shard k − 1 ended, the first at 0 and the last at the end.
        let ordered = partials.sorted { $0.partial.shardIndex < $1.partial.shardIndex }
        var next = 0
        for (path, p) in ordered {
            guard p.images[0] == next else {
                throw InfoError.invalid("\(path): shard \(p.shardIndex)/\(p.shardCount) covers images \(p.images[0])..<\(p.images[1]), expected them to start at \(next)")
            }
            next = p.images[1]
        }
        guard next == first.totalImages else {
            throw InfoError.invalid("\(ordered.last?.path ?? firstPath): the shards end at image \(next), but the data has \(first.totalImages)")
        }
        var total = ordered[0].partial.histograms
        for (_, p) in ordered.dropFirst() { total.add(p.histograms) }
        return AnalysisPartial(model: first.model, data: first.data, modelDigest: first.modelDigest,
                               dataDigest: first.dataDigest, totalImages: first.totalImages, shardIndex: 1,
                               shardCount: 1, images: 0..<first.totalImages, settings: first.settings,
                               classNames: first.classNames, ranges: first.ranges, histograms: total)
    }
}

/// One line for a JSON decoding error: the field's path and what is wrong.
func describe(_ error: DecodingError) -> String {
    func path(_ keys: [CodingKey]) -> String {
        keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
    }
    switch error {
    case let .keyNotFound(key, context):
        return "field \(path(context.codingPath + [key])): missing"
    case let .typeMismatch(type, context):
        return "field \(path(context.codingPath)): not a \(type)"
    case let .valueNotFound(type, context):
        return "field \(path(context.codingPath)): null where a \(type) is needed"
    case let .dataCorrupted(context):
        return context.codingPath.isEmpty ? "not valid JSON" : "field \(path(context.codingPath)): invalid value"
    @unknown default:
        return "not valid JSON"
    }
}

/// Per-image arrays of an analysis as .npy files (`analyze --npy DIR`).
public enum NPYExport {
    /// Writes `layer_instance_entropy.npy` (N×T), `channel_instance_entropy_<t>.npy`
    /// (N×C per tap, t the tap index), `predictions.npy`, `probabilities.npy` (N×K),
    /// `labels.npy` (float32; −1 for unlabelled) and `taps.txt` (one tap name per line).
    /// The files `write` creates in its directory.
    public static func fileNames(network: Network) -> [String] {
        ["layer_instance_entropy.npy"] + network.taps.map { "channel_instance_entropy_\($0.index).npy" }
            + ["predictions.npy", "probabilities.npy", "labels.npy", "taps.txt"]
    }

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
