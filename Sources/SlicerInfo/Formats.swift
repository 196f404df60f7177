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
                              summary: AnalysisSummary, memory: MemoryPlan? = nil) -> String {
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
            "instance_ceiling": \(J.number(t.instanceCeiling)), "non_finite": \(t.nonFiniteValues), \
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
        "classes": \(J.array(classNames) { J.string($0) }), "class_counts": \(J.array(summary.classCounts) { String($0) }),\(memory.map { "\n \"memory\": \($0.json)," } ?? "")
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
/// `cnnslicer.analysis-partial.v3`: the line `CNNSLICER-PARTIAL-3`, a JSON
/// header (model, data, their digests, settings, calibration, shard) after
/// its 8-byte length, the histograms in binary (`HistogramSet.write(to:)`),
/// and a 16-hex-digit digest of everything after the first line. Binary,
/// because the histograms of a 1,000-class ImageNet network are tens of
/// millions of counts. v2 partials (JSON, every class's channel histograms)
/// are still read.
public struct AnalysisPartial: Sendable {
    public static let format = "cnnslicer.analysis-partial.v3"
    static let previousFormat = "cnnslicer.analysis-partial.v2"
    static let magic = Array("CNNSLICER-PARTIAL-3\n".utf8)
    public var format: String { AnalysisPartial.format }
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

    /// The header's fields, as stored in the file.
    struct Header: Codable {
        var format: String
        let model, data, modelDigest, dataDigest: String
        let totalImages, shardIndex, shardCount, bins: Int
        let range: String
        let millerMadow: Bool
        let classNames: [String]
        let ranges: [TapRange]
        var histogramBytes: Int?
    }

    public init(model: String, data: String, modelDigest: String, dataDigest: String, totalImages: Int,
                shardIndex: Int, shardCount: Int, settings: AnalysisSettings, classNames: [String],
                ranges: [TapRange], histograms: HistogramSet) {
        self.model = model; self.data = data; self.modelDigest = modelDigest; self.dataDigest = dataDigest
        self.totalImages = totalImages; self.shardIndex = shardIndex; self.shardCount = shardCount
        bins = settings.bins; range = settings.range.description; millerMadow = settings.millerMadow
        self.classNames = classNames; self.ranges = ranges; self.histograms = histograms
    }

    init(header h: Header, histograms: HistogramSet) {
        self.init(model: h.model, data: h.data, modelDigest: h.modelDigest, dataDigest: h.dataDigest,
                  totalImages: h.totalImages, shardIndex: h.shardIndex, shardCount: h.shardCount,
                  settings: AnalysisSettings(bins: h.bins, range: RangeMode(argument: h.range) ?? .layer,
                                             millerMadow: h.millerMadow),
                  classNames: h.classNames, ranges: h.ranges, histograms: histograms)
    }

    public var settings: AnalysisSettings {
        AnalysisSettings(bins: bins, range: RangeMode(argument: range) ?? .layer, millerMadow: millerMadow)
    }

    public func write(to path: String) throws {
        let header = try JSONEncoder().encode(Header(
            format: format, model: model, data: data, modelDigest: modelDigest, dataDigest: dataDigest,
            totalImages: totalImages, shardIndex: shardIndex, shardCount: shardCount, bins: bins, range: range,
            millerMadow: millerMadow, classNames: classNames, ranges: ranges, histogramBytes: histograms.encodedByteCount))
        let writer = try BinaryWriter(path: path, digestCount: 8 + header.count + histograms.encodedByteCount)
        try writer.write(AnalysisPartial.magic, digested: false)
        try writer.write(UInt64(header.count))
        try writer.write([UInt8](header))
        try histograms.write(to: writer)
        try writer.write(Array(String(format: "%016llx", writer.digest.finish()).utf8), digested: false)
        try writer.commit()
    }

    public static func read(from path: String) throws -> AnalysisPartial {
        let reader = try BinaryReader(path: path)
        let partial: AnalysisPartial
        let head = try reader.readBytes(min(magic.count, reader.size), digested: false)
        if head.first == UInt8(ascii: "{") {
            partial = try readVersion2(path)
        } else {
            guard reader.size > magic.count + 8 + 16, head == magic else {
                throw InfoError.invalid("\(path): not a \(format) file")
            }
            reader.beginDigest(count: reader.size - magic.count - 16)
            let length = try reader.readInt("header length", limit: reader.remaining)
            let header: Header
            do {
                header = try JSONDecoder().decode(Header.self, from: Data(try reader.readBytes(length)))
            } catch let error as InfoError { throw error } catch {
                throw InfoError.invalid("\(path): not a valid \(format) file (its header: \(error))")
            }
            guard header.format == format, header.histogramBytes == reader.remaining - 16 else {
                throw InfoError.invalid("\(path): not a \(format) file, or truncated")
            }
            let histograms = try HistogramSet.read(from: reader)
            let digest = String(format: "%016llx", reader.digest.finish())
            guard reader.remaining == 16, try String(decoding: reader.readBytes(16, digested: false), as: UTF8.self) == digest else {
                throw InfoError.invalid("\(path): corrupt (its digest does not match its contents)")
            }
            partial = AnalysisPartial(header: header, histograms: histograms)
        }
        try partial.validate(path: path)
        return partial
    }

    /// A v2 partial: JSON, with every class's channel histograms.
    static func readVersion2(_ path: String) throws -> AnalysisPartial {
        struct V2: Decodable {
            let format, model, data, modelDigest, dataDigest: String
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
        let v2: V2
        do { v2 = try JSONDecoder().decode(V2.self, from: data) } catch {
            throw InfoError.invalid("\(path): not a valid \(previousFormat) file (\(error))")
        }
        guard v2.format == previousFormat else { throw InfoError.invalid("\(path): not a \(format) or \(previousFormat) file") }
        let s = v2.histograms
        guard (2...4096).contains(s.bins), (1..<(1 << 24)).contains(s.classCount) else {
            throw InfoError.invalid("\(path): \(s.bins) bins, \(s.classCount) classes")
        }
        var set = HistogramSet(tapShapes: [], classCount: s.classCount, bins: s.bins, layout: .kept, millerMadow: v2.millerMadow)
        set.imageCounts = s.imageCounts
        for (t, v) in s.taps.enumerated() {
            guard v.slots == s.classCount + 1, v.bins == s.bins, v.channels >= 1, v.valuesPerChannel >= 1,
                  v.channels < 1 << 24, v.counts.count == v.slots * v.channels * v.bins else {
                throw InfoError.invalid("\(path): tap \(t): counts has \(v.counts.count) values for \(v.slots) class slots × \(v.channels) channels × \(v.bins) bins")
            }
            var tap = TapHistograms(channels: v.channels, valuesPerChannel: v.valuesPerChannel, slots: v.slots, bins: v.bins, layout: .kept)
            tap.counts = v.counts
            tap.nonFinite = v.nonFinite
            tap.layerInstanceSum = v.layerInstanceSum
            tap.layerInstanceSquares = v.layerInstanceSquares
            tap.channelInstanceSum = v.channelInstanceSum
            // v2 had no tap-level histograms: the sum of the channels'.
            for k in 0..<v.slots {
                for c in 0..<v.channels {
                    for b in 0..<v.bins { tap.layerCounts[k * v.bins + b] &+= v.counts[(k * v.channels + c) * v.bins + b] }
                }
            }
            set.taps.append(tap)
        }
        do { try set.validate() } catch let error as InfoError { throw InfoError.invalid("\(path): \(error)") }
        return AnalysisPartial(model: v2.model, data: v2.data, modelDigest: v2.modelDigest, dataDigest: v2.dataDigest,
                               totalImages: v2.totalImages, shardIndex: v2.shardIndex, shardCount: v2.shardCount,
                               settings: AnalysisSettings(bins: v2.bins, range: RangeMode(argument: v2.range) ?? .layer,
                                                          millerMadow: v2.millerMadow),
                               classNames: v2.classNames, ranges: v2.ranges, histograms: set)
    }

    /// Checks the header against the histograms (the histograms' own arrays
    /// are checked by `HistogramSet.validate`); throws naming `path` and the field.
    func validate(path: String) throws {
        func fail(_ what: String) throws -> Never { throw InfoError.invalid("\(path): \(what)") }
        guard shardCount >= 1, (1...shardCount).contains(shardIndex) else { try fail("shard \(shardIndex)/\(shardCount) is not k/n with 1 ≤ k ≤ n") }
        guard bins == histograms.bins else { try fail("bins \(bins) but the histograms have \(histograms.bins)") }
        guard RangeMode(argument: range) != nil else { try fail("range '\(range)' is not layer, channel or LO,HI") }
        guard classNames.count == histograms.classCount else { try fail("\(classNames.count) class names for \(histograms.classCount) classes") }
        guard ranges.count == histograms.taps.count else { try fail("ranges for \(ranges.count) taps, histograms for \(histograms.taps.count)") }
        for (t, (r, h)) in zip(ranges, histograms.taps).enumerated() where r.lo.count != h.channels || r.hi.count != h.channels {
            try fail("tap \(t): ranges for \(r.lo.count) channels, histograms for \(h.channels)")
        }
        guard totalImages >= histograms.imageCount else { try fail("\(histograms.imageCount) images in a set of \(totalImages)") }
    }

    /// Adds the histograms of partials that cover every shard exactly once
    /// and agree on model, data and settings. Classes split between shards
    /// (on-demand layout) are complete once all are added, and are reduced.
    public static func merge(_ partials: [AnalysisPartial]) throws -> AnalysisPartial {
        guard var merged = partials.first else { throw InfoError.invalid("no partials to merge") }
        var seen = Set<Int>()
        for p in partials {
            let mismatch = p.modelDigest != merged.modelDigest ? "model" : p.dataDigest != merged.dataDigest ? "data"
                : (p.bins != merged.bins || p.range != merged.range || p.millerMadow != merged.millerMadow) ? "settings"
                : p.shardCount != merged.shardCount ? "shard count" : p.ranges != merged.ranges ? "calibration"
                : p.histograms.layout != merged.histograms.layout ? "class × channel layout"
                : p.histograms.classCount != merged.histograms.classCount || p.histograms.taps.count != merged.histograms.taps.count
                    || zip(p.histograms.taps, merged.histograms.taps).contains(where: { $0.channels != $1.channels }) ? "model shape" : nil
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
        total.closeOpenClasses()
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
