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
    /// - Parameter memory: the run's memory estimate, on a line of its own
    ///   (`"memory": {…},`) after the first.
    public static func render(network: Network, modelPath: String, dataSource: String, classNames: [String],
                              summary: AnalysisSummary, memory: MemoryPlan? = nil, classMapping: String? = nil) -> String {
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
        "classes": \(J.array(classNames) { J.string($0) }), "class_counts": \(J.array(summary.classCounts) { String($0) }),\(classMapping.map { " \"class_mapping\": \($0)," } ?? "")\(memory.map { "\n \"memory\": \($0.json)," } ?? "")
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
        // Little-endian 64-bit words, mixed in turn (DigestState), a word at a time.
        var state = DigestState(seed: seed, count: bytes.count)
        if bytes.withContiguousStorageIfAvailable({ state.update(UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { state.update($0) }
        }
        return state.finish()
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
/// `cnnslicer.analysis-partial.v5`: the line `CNNSLICER-PARTIAL-5`, a JSON
/// header (model, data, their digests, settings, calibration, shard and the
/// images it covers) after its 8-byte length, the histograms in binary
/// (`HistogramSet.write(to:)`), and 16 hex digits of digest over everything
/// after the first line — so that a partial damaged or edited after it was
/// written is refused instead of merged into different numbers. Binary,
/// because the histograms of a 1,000-class ImageNet network are tens of
/// millions of counts. Checked whole on reading (`validate`,
/// Validation.swift), so that nothing out of range reaches the merge. v2
/// partials (JSON, every class's channel histograms, what earlier releases
/// wrote) are still read.
public struct AnalysisPartial: Sendable {
    /// Version 5: the sums of instance entropies are exact (`ExactSum`), so
    /// that merged shards give the bits of one run. Partials are short-lived
    /// (written by the shards, read by `merge`): versions 3 and 4 are refused
    /// with a note to re-run the shards.
    public static let format = "cnnslicer.analysis-partial.v5"
    static let version2 = "cnnslicer.analysis-partial.v2"
    static let magic = Array("CNNSLICER-PARTIAL-5\n".utf8)
    public var format: String { AnalysisPartial.format }
    public let model: String
    public let data: String
    public let modelDigest: String
    public let dataDigest: String
    public let totalImages: Int
    public let shardIndex: Int
    public let shardCount: Int
    /// The images this shard analysed: positions [first, end) in the order the
    /// shards split (the images sorted by class, `Analyzer.classUnits`), so
    /// that merge can check the shards tile the data; empty for a v2 partial,
    /// which did not record them.
    public let images: [Int]
    public let bins: Int
    public let range: String
    public let millerMadow: Bool
    public let classNames: [String]
    public let ranges: [TapRange]
    public let histograms: HistogramSet
    /// How the data's classes were mapped (`ClassMapping.json`), for `merge` to write as
    /// one run would; nil in partials written before it was kept.
    public let classMapping: String?

    /// The header's fields, as stored in the file.
    struct Header: Codable {
        var format: String
        let model, data, modelDigest, dataDigest: String
        let totalImages, shardIndex, shardCount: Int
        let images: [Int]
        let bins: Int
        let range: String
        let millerMadow: Bool
        let classNames: [String]
        let ranges: [TapRange]
        let histogramBytes: Int
        /// Optional: partials of version 5 written before it was kept have none.
        let classMapping: String?
    }

    public init(model: String, data: String, modelDigest: String, dataDigest: String, totalImages: Int,
                shardIndex: Int, shardCount: Int, images: Range<Int>, settings: AnalysisSettings, classNames: [String],
                ranges: [TapRange], histograms: HistogramSet, classMapping: String? = nil) {
        self.init(model: model, data: data, modelDigest: modelDigest, dataDigest: dataDigest, totalImages: totalImages,
                  shardIndex: shardIndex, shardCount: shardCount, images: [images.lowerBound, images.upperBound],
                  bins: settings.bins, range: settings.range.description, millerMadow: settings.millerMadow,
                  classNames: classNames, ranges: ranges, histograms: histograms, classMapping: classMapping)
    }

    init(model: String, data: String, modelDigest: String, dataDigest: String, totalImages: Int, shardIndex: Int,
         shardCount: Int, images: [Int], bins: Int, range: String, millerMadow: Bool, classNames: [String],
         ranges: [TapRange], histograms: HistogramSet, classMapping: String? = nil) {
        self.classMapping = classMapping
        self.model = model; self.data = data; self.modelDigest = modelDigest; self.dataDigest = dataDigest
        self.totalImages = totalImages; self.shardIndex = shardIndex; self.shardCount = shardCount
        self.images = images; self.bins = bins; self.range = range; self.millerMadow = millerMadow
        self.classNames = classNames; self.ranges = ranges; self.histograms = histograms
    }

    public var settings: AnalysisSettings {
        AnalysisSettings(bins: bins, range: RangeMode(argument: range) ?? .layer, millerMadow: millerMadow)
    }

    /// The images as a range (valid once `validate` passed; empty for a v2 partial).
    public var imageRange: Range<Int> { images.count == 2 ? images[0]..<images[1] : 0..<0 }

    /// How many images the partial holds: its range's, or (v2) its histograms'.
    var imageCount: Int? { images.count == 2 ? images[1] - images[0] : nil }

    public func write(to path: String) throws {
        let header = try JSONEncoder().encode(Header(
            format: format, model: model, data: data, modelDigest: modelDigest, dataDigest: dataDigest,
            totalImages: totalImages, shardIndex: shardIndex, shardCount: shardCount, images: images, bins: bins,
            range: range, millerMadow: millerMadow, classNames: classNames, ranges: ranges,
            histogramBytes: histograms.encodedByteCount, classMapping: classMapping))
        try BinaryWriter.write(to: path, digestCount: 8 + header.count + histograms.encodedByteCount) { writer in
            try writer.write(AnalysisPartial.magic, digested: false)
            try writer.write(UInt64(header.count))
            try writer.write([UInt8](header))
            try histograms.write(to: writer)
            try writer.writeDigest()
        }
    }

    /// Reads and checks a partial: its format, its digest, and every length and
    /// value (`validate`). Errors name `path` and the field.
    public static func read(from path: String) throws -> AnalysisPartial {
        let reader = try BinaryReader(path: path)
        let head = try reader.readBytes(min(magic.count, reader.size), digested: false)
        let partial: AnalysisPartial
        if head.first == UInt8(ascii: "{") {
            partial = try readJSON(path)
        } else {
            guard head == magic else {
                let older = head.starts(with: Array("CNNSLICER-PARTIAL-".utf8)) ? "; re-run the shards with this cnnslicer" : ""
                throw InfoError.invalid("\(path): not a \(format) file\(older)")
            }
            guard reader.size > magic.count + 8 + 16 else { throw InfoError.invalid("\(path): truncated") }
            reader.beginDigest(count: reader.size - magic.count - 16)
            let length = try reader.readInt("header length", limit: reader.remaining)
            let header: Header
            do {
                header = try JSONDecoder().decode(Header.self, from: Data(try reader.readBytes(length)))
            } catch let error as DecodingError {
                throw InfoError.invalid("\(path): header \(describe(error))")
            }
            guard header.format == format else {
                let older = header.format.hasPrefix("cnnslicer.analysis-partial.") ? "; re-run the shards with this cnnslicer" : ""
                throw InfoError.invalid("\(path): not a \(format) file (format \(String(reflecting: header.format)))\(older)")
            }
            guard header.histogramBytes == reader.remaining - 16 else {
                throw InfoError.invalid("\(path): truncated, or field histogramBytes is wrong (\(header.histogramBytes) bytes of histograms, \(reader.remaining - 16) in the file)")
            }
            // The digest first: a damaged file is called damaged, not given the field its damage hit.
            let histograms = try HistogramSet.read(from: reader)
            let digest = String(format: "%016llx", reader.digest.finish())
            guard try String(decoding: reader.readBytes(16, digested: false), as: UTF8.self) == digest else {
                throw InfoError.invalid("\(path): field digest: does not match the contents (the file was changed or damaged after it was written)")
            }
            do { try histograms.validate(shape: nil, images: nil, millerMadow: header.millerMadow) } catch {
                throw InfoError.invalid("\(path): \(error)")
            }
            partial = AnalysisPartial(
                model: header.model, data: header.data, modelDigest: header.modelDigest, dataDigest: header.dataDigest,
                totalImages: header.totalImages, shardIndex: header.shardIndex, shardCount: header.shardCount,
                images: header.images, bins: header.bins, range: header.range, millerMadow: header.millerMadow,
                classNames: header.classNames, ranges: header.ranges, histograms: histograms,
                classMapping: header.classMapping)
        }
        do {
            try partial.validate()
        } catch {
            throw InfoError.invalid("\(path): \(error)")
        }
        return partial
    }

    /// A JSON partial: version 2 (every class's channel histograms), what
    /// earlier releases wrote; other JSON versions are refused by name.
    static func readJSON(_ path: String) throws -> AnalysisPartial {
        struct Version: Decodable { let format: String? }
        struct V2: Decodable {
            let model, data, modelDigest, dataDigest: String
            let totalImages, shardIndex, shardCount, bins: Int
            let range: String
            let millerMadow: Bool
            let classNames: [String]
            let ranges: [TapRange]
            let histograms: Set
            struct Set: Decodable { let bins, classCount: Int; let taps: [Tap]; let imageCounts: [Int] }
            struct Tap: Decodable {
                let channels, valuesPerChannel, slots, bins: Int
                let counts, nonFinite: [UInt64]
                let layerInstanceSum, layerInstanceSquares, channelInstanceSum: [Double]
            }
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw InfoError.io("\(path): no such file or not readable") }
        guard let version = try? JSONDecoder().decode(Version.self, from: data) else {
            throw InfoError.invalid("\(path): not a \(format) file (not a JSON object)")
        }
        guard version.format == version2 else {
            let found = version.format.map { "format '\(String(reflecting: $0).dropFirst().dropLast())'" } ?? "no format field"
            let older = version.format?.hasPrefix("cnnslicer.analysis-partial.") == true ? "; re-run the shards with this cnnslicer" : ""
            throw InfoError.invalid("\(path): not a \(format) or \(version2) file (\(found)\(older))")
        }
        let v2: V2
        do { v2 = try JSONDecoder().decode(V2.self, from: data) } catch let error as DecodingError {
            throw InfoError.invalid("\(path): \(describe(error))")
        }
        let s = v2.histograms
        var set = HistogramSet(tapShapes: [], classCount: s.classCount, bins: s.bins, layout: .kept, millerMadow: v2.millerMadow)
        set.imageCounts = s.imageCounts
        for (t, v) in s.taps.enumerated() {
            // Lengths first: the tap-level histograms are derived from the counts below.
            let field = "histograms.taps[\(t)]"
            guard v.slots == s.classCount + 1, v.bins == s.bins else { throw InfoError.invalid("\(path): field \(field).slots: \(v.slots) class slots, \(v.bins) bins for \(s.classCount) classes, \(s.bins) bins") }
            guard StatisticsLimits.channels.contains(v.channels), StatisticsLimits.valuesPerChannel.contains(v.valuesPerChannel),
                  StatisticsLimits.bins.contains(v.bins), StatisticsLimits.classCount.contains(s.classCount),
                  v.counts.count == v.slots * v.channels * v.bins else {
                throw InfoError.invalid("\(path): field \(field).counts: \(v.counts.count) values, expected \(v.slots) class slots × \(v.channels) channels × \(v.bins) bins")
            }
            var tap = TapHistograms(channels: v.channels, valuesPerChannel: v.valuesPerChannel, slots: v.slots, bins: v.bins, layout: .kept)
            tap.counts = v.counts
            tap.nonFinite = v.nonFinite
            tap.layerInstanceSum = v.layerInstanceSum.map { ExactSum($0) }
            tap.layerInstanceSquares = v.layerInstanceSquares.map { ExactSum($0) }
            tap.channelInstanceSum = v.channelInstanceSum.map { ExactSum($0) }
            // v2 had no tap-level histograms: the sum of the channels'.
            for k in 0..<v.slots {
                for c in 0..<v.channels {
                    for b in 0..<v.bins { tap.layerCounts[k * v.bins + b] &+= v.counts[(k * v.channels + c) * v.bins + b] }
                }
            }
            set.taps.append(tap)
        }
        return AnalysisPartial(model: v2.model, data: v2.data, modelDigest: v2.modelDigest, dataDigest: v2.dataDigest,
                               totalImages: v2.totalImages, shardIndex: v2.shardIndex, shardCount: v2.shardCount,
                               images: [],
                               bins: v2.bins, range: v2.range, millerMadow: v2.millerMadow, classNames: v2.classNames,
                               ranges: v2.ranges, histograms: set)
    }

    /// Checks the partial against itself: shard numbers, image range, settings,
    /// class names, ranges and histograms (Validation.swift).
    public func validate() throws(FieldError) {
        guard shardCount >= 1, shardCount <= 1_000_000 else { throw FieldError("shardCount", "\(shardCount) is not a shard count") }
        guard (1...shardCount).contains(shardIndex) else { throw FieldError("shardIndex", "\(shardIndex) is outside 1...\(shardCount)") }
        guard totalImages >= 1, totalImages <= Int(Int32.max) else { throw FieldError("totalImages", "\(totalImages) is not an image count") }
        guard images.isEmpty || (images.count == 2 && images[0] >= 0 && images[0] <= images[1] && images[1] <= totalImages) else {
            throw FieldError("images", "\(images) is not a range [first, end) within 0...\(totalImages)")
        }
        guard RangeMode(argument: range) != nil else { throw FieldError("range", "'\(range)' is not layer, channel or LO,HI") }
        guard bins == histograms.bins else { throw FieldError("bins", "\(bins), but the histograms have \(histograms.bins)") }
        guard millerMadow == histograms.millerMadow || histograms.layout == .kept else {
            throw FieldError("millerMadow", "\(millerMadow), but the histograms were reduced with \(histograms.millerMadow)")
        }
        try histograms.validate(shape: nil, images: imageCount, millerMadow: millerMadow)
        guard histograms.imageCount <= totalImages else {
            throw FieldError("histograms.imageCounts", "they add up to \(histograms.imageCount) images, more than the data's \(totalImages)")
        }
        guard classNames.count == histograms.classCount else {
            throw FieldError("classNames", "\(classNames.count) names for \(histograms.classCount) classes")
        }
        try ranges.validate(shape: StatisticsShape(histograms: histograms))
    }

    /// Checks that the partial fits `network` (taps, channels, values, classes).
    public func validate(against network: Network) throws(FieldError) {
        try histograms.validate(shape: StatisticsShape(network: network), images: imageCount, millerMadow: millerMadow)
    }

    /// Adds the histograms of partials that cover every image once, one shard
    /// each, and agree on model, data, settings and layout. Classes split
    /// between shards (on-demand layout) are complete once all are added, and
    /// are reduced. Errors name the file.
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
                : p.classMapping != first.classMapping ? "class mapping (folders to the model's classes)"
                : p.histograms.layout != first.histograms.layout ? "class × channel layout (\(p.histograms.layout), not \(first.histograms.layout))"
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
        // Shard k must start where shard k − 1 ended, the first at 0 and the last
        // at the end; v2 partials did not record their images: then their counts must add up.
        let ordered = partials.sorted { $0.partial.shardIndex < $1.partial.shardIndex }
        if ordered.allSatisfy({ $0.partial.imageCount != nil }) {
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
        } else {
            let images = ordered.reduce(0) { $0 + $1.partial.histograms.imageCount }
            guard images == first.totalImages else {
                throw InfoError.invalid("\(ordered.last?.path ?? firstPath): the shards hold \(images) images, but the data has \(first.totalImages)")
            }
        }
        var total = ordered[0].partial.histograms
        for (_, p) in ordered.dropFirst() { total.add(p.histograms) }
        total.closeOpenClasses()
        return AnalysisPartial(model: first.model, data: first.data, modelDigest: first.modelDigest,
                               dataDigest: first.dataDigest, totalImages: first.totalImages, shardIndex: 1,
                               shardCount: 1, images: 0..<first.totalImages, settings: first.settings,
                               classNames: first.classNames, ranges: first.ranges, histograms: total,
                               classMapping: first.classMapping)
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
