import Foundation
import SlicerData
import SlicerEngine

/// Finished analyses on disk under `$XDG_CACHE_HOME/cnnslicer/` (default
/// `~/.cache/cnnslicer/`), keyed by digests of the model file, the images and
/// the settings. Written atomically; every entry carries its key and a digest
/// of everything after its first line, and is checked whole against the model
/// (Validation.swift), so a corrupt, truncated, edited or stale entry is
/// detected, deleted and rebuilt — never trusted.
///
/// An entry: the line `CNNSLICER-CACHE-4`, a JSON header after its 8-byte
/// length, the histograms (`HistogramSet.write(to:)`), the per-image store's
/// bytes, and 16 hex digits of digest. Written and read in pieces: the store
/// of a large analysis (hundreds of MB) is never copied whole.
public struct AnalysisCache: Sendable {
    public let directory: String
    /// 4: exact sums of instance entropies (`ExactSum`); older entries are rebuilt.
    static let magic = Array("CNNSLICER-CACHE-4\n".utf8)

    public init(directory: String) { self.directory = directory }

    /// The user's cache directory, or nil when `CNNSLICER_NO_CACHE` is set.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> AnalysisCache? {
        if environment["CNNSLICER_NO_CACHE"] != nil { return nil }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.cache"
        return AnalysisCache(directory: base + "/cnnslicer")
    }

    /// Identifies an analysis: model bytes, image pixels and labels, preprocessing, settings, mask, layout.
    public static func key(input: ModelInput, request: AnalysisRequest, layout: ClassChannelLayout = .kept) -> String {
        let model = (try? FileDigest.of(file: input.network.path)) ?? "unreadable"
        let mask = request.mask.channels.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.sorted())" }.joined(separator: ";")
        let settings = "v3|\(request.settings.bins)|\(request.settings.range)|\(request.settings.millerMadow)|"
            + "\(input.preprocessing.mean)|\(input.preprocessing.std)|\(input.preprocessing.resize)|\(mask)|\(layout)"
        return model + FileDigest.of(images: input.images) + FileDigest.of(bytes: Array(settings.utf8))
    }

    func path(for key: String) -> String { directory + "/" + key + ".analysis" }

    struct Header: Codable {
        let key: String
        let ranges: [TapRange]
        let imageCount: Int
        let tapChannels: [Int]
        let classCount: Int
        let histogramBytes: Int
        let storeBytes: Int
    }

    /// Writes `result` (with its per-image store) under `key`.
    public func save(_ result: AnalysisResult, key: String) throws {
        guard let store = result.store else { return }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let histograms = result.histograms
        let header = try JSONEncoder().encode(Header(
            key: key, ranges: result.ranges, imageCount: store.imageCount,
            tapChannels: (0..<store.tapCount).map { store.channelEntropies(image: 0, tap: $0).count },
            classCount: store.classCount, histogramBytes: histograms.encodedByteCount, storeBytes: store.dataByteCount))
        try BinaryWriter.write(to: path(for: key),
                               digestCount: 8 + header.count + histograms.encodedByteCount + store.dataByteCount) { writer in
            try writer.write(AnalysisCache.magic, digested: false)
            try writer.write(UInt64(header.count))
            try writer.write([UInt8](header))
            try histograms.write(to: writer)
            try store.withRawBytes { try writer.write($0) }
            try writer.writeDigest()
        }
    }

    /// The cached result for `key`, or nil (a bad entry is removed).
    public func load(key: String, input: ModelInput, settings: AnalysisSettings) -> AnalysisResult? {
        let file = path(for: key)
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let result = try? read(file, key: key, input: input, settings: settings) else {
            try? FileManager.default.removeItem(atPath: file)
            return nil
        }
        return result
    }

    private func read(_ file: String, key: String, input: ModelInput, settings: AnalysisSettings) throws -> AnalysisResult {
        let reader = try BinaryReader(path: file)
        let magic = AnalysisCache.magic
        guard reader.size > magic.count + 8 + 16, try reader.readBytes(magic.count, digested: false) == magic else {
            throw InfoError.invalid("\(file): not a cache entry")
        }
        reader.beginDigest(count: reader.size - magic.count - 16)
        let length = try reader.readInt("header length", limit: reader.remaining)
        let header = try JSONDecoder().decode(Header.self, from: Data(try reader.readBytes(length)))
        let network = input.network
        guard header.key == key, header.imageCount == input.images.count, header.classCount == network.classCount,
              header.tapChannels == network.taps.map(\.channels), header.ranges.count == network.taps.count,
              header.histogramBytes >= 0, header.storeBytes >= 0,
              header.histogramBytes <= reader.remaining, header.storeBytes == reader.remaining - header.histogramBytes - 16
        else { throw InfoError.invalid("\(file): stale or truncated") }
        let shape = StatisticsShape(network: network)
        try header.ranges.validate(shape: shape)
        let histograms = try HistogramSet.read(from: reader)
        guard histograms.bins == settings.bins else { throw InfoError.invalid("\(file): stale") }
        let store = try PerImageStore(imageCount: header.imageCount, tapChannels: header.tapChannels, classCount: header.classCount)
        guard store.dataByteCount == header.storeBytes else { throw InfoError.invalid("\(file): stale") }
        try store.withMutableRawBytes { try reader.read(into: $0) }
        let digest = String(format: "%016llx", reader.digest.finish())
        guard try String(decoding: reader.readBytes(16, digested: false), as: UTF8.self) == digest else {
            throw InfoError.invalid("\(file): corrupt")
        }
        try histograms.validate(shape: shape, images: header.imageCount, millerMadow: settings.millerMadow)
        store.markComplete(0..<header.imageCount)
        return AnalysisResult(settings: settings, ranges: header.ranges, histograms: histograms, store: store,
                              images: Array(0..<header.imageCount))
    }
}

extension PerImageStore {
    /// Everything the store holds, as bytes (for the cache), without a copy.
    func withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: UnsafeRawPointer(channelEntropyBase), count: dataByteCount))
    }

    /// The store's bytes, to be filled (from the cache).
    func withMutableRawBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(channelEntropyBase), count: dataByteCount))
    }
}
