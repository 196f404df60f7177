import Foundation
import SlicerData
import SlicerEngine

/// Finished analyses on disk under `$XDG_CACHE_HOME/cnnslicer/` (default
/// `~/.cache/cnnslicer/`), keyed by digests of the model file, the images and
/// the settings. Written atomically; every entry carries its key and a digest
/// of all its bytes after the digest itself (header and per-image store), and
/// its header is checked whole against the model (Validation.swift), so a
/// corrupt, truncated, edited or stale entry is detected, deleted and rebuilt —
/// never trusted.
///
/// Layout: the magic line, 16 hex digits of the digest and a newline, the
/// header's length (8 bytes, little-endian), the header (JSON), the store's bytes.
public struct AnalysisCache: Sendable {
    public let directory: String
    static let magic = Array("CNNSLICER-CACHE-2\n".utf8)
    /// The digest line after the magic: 16 hex digits and a newline.
    static let digestLength = 17

    public init(directory: String) { self.directory = directory }

    /// The user's cache directory, or nil when `CNNSLICER_NO_CACHE` is set.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> AnalysisCache? {
        if environment["CNNSLICER_NO_CACHE"] != nil { return nil }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.cache"
        return AnalysisCache(directory: base + "/cnnslicer")
    }

    /// Identifies an analysis: model bytes, image pixels and labels, preprocessing, settings, mask.
    public static func key(input: ModelInput, request: AnalysisRequest) -> String {
        let model = (try? FileDigest.of(file: input.network.path)) ?? "unreadable"
        let mask = request.mask.channels.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.sorted())" }.joined(separator: ";")
        let settings = "v2|\(request.settings.bins)|\(request.settings.range)|\(request.settings.millerMadow)|"
            + "\(input.preprocessing.mean)|\(input.preprocessing.std)|\(input.preprocessing.resize)|\(mask)"
        return model + FileDigest.of(images: input.images) + FileDigest.of(bytes: Array(settings.utf8))
    }

    func path(for key: String) -> String { directory + "/" + key + ".analysis" }

    struct Header: Codable {
        let key: String
        let ranges: [TapRange]
        let imageCount: Int
        let tapChannels: [Int]
        let classCount: Int
        let histograms: HistogramSet
        let storeBytes: Int
        let storeDigest: String
    }

    /// Writes `result` (with its per-image store) under `key`.
    public func save(_ result: AnalysisResult, key: String) throws {
        guard let store = result.store else { return }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let raw = store.rawBytes
        let header = Header(key: key, ranges: result.ranges, imageCount: store.imageCount,
                            tapChannels: (0..<store.tapCount).map { store.channelEntropies(image: 0, tap: $0).count },
                            classCount: store.classCount, histograms: result.histograms,
                            storeBytes: raw.count, storeDigest: FileDigest.of(bytes: raw))
        let json = try JSONEncoder().encode(header)
        var body = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { body.append(contentsOf: $0) }
        body.append(json)
        raw.withUnsafeBytes { body.append(contentsOf: $0) }
        var data = Data(AnalysisCache.magic)
        data.append(contentsOf: Array((FileDigest.of(bytes: body) + "\n").utf8))
        data.append(body)
        try AtomicFile.write(data, to: path(for: key))
    }

    /// The cached result for `key`, or nil (a bad entry is removed).
    public func load(key: String, input: ModelInput, settings: AnalysisSettings) -> AnalysisResult? {
        let file = path(for: key)
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        func reject() -> AnalysisResult? {
            try? FileManager.default.removeItem(atPath: file)
            return nil
        }
        let magic = AnalysisCache.magic
        let bodyStart = magic.count + AnalysisCache.digestLength
        guard data.count > bodyStart + 8, Array(data.prefix(magic.count)) == magic,
              String(decoding: data[magic.count..<bodyStart], as: UTF8.self) == FileDigest.of(bytes: data[bodyStart...]) + "\n"
        else { return reject() }
        var length: UInt64 = 0
        withUnsafeMutableBytes(of: &length) { $0.copyBytes(from: data[bodyStart..<(bodyStart + 8)]) }
        length = UInt64(littleEndian: length)
        let jsonStart = bodyStart + 8
        guard length < UInt64(data.count - jsonStart) else { return reject() }
        let jsonEnd = jsonStart + Int(length)
        guard let header = try? JSONDecoder().decode(Header.self, from: data[jsonStart..<jsonEnd]),
              header.key == key, data.count - jsonEnd == header.storeBytes else { return reject() }
        let raw = [UInt8](data[jsonEnd...])
        let network = input.network
        let shape = StatisticsShape(network: network)
        guard FileDigest.of(bytes: raw) == header.storeDigest,
              header.imageCount == input.images.count, header.classCount == network.classCount,
              header.tapChannels == network.taps.map(\.channels),
              (try? header.ranges.validate(shape: shape)) != nil,
              header.histograms.bins == settings.bins,
              (try? header.histograms.validate(shape: shape, images: header.imageCount, millerMadow: settings.millerMadow)) != nil,
              let store = try? PerImageStore(imageCount: header.imageCount, tapChannels: header.tapChannels,
                                             classCount: header.classCount),
              store.rawBytes.count == raw.count else { return reject() }
        store.load(rawBytes: raw)
        store.markComplete(0..<header.imageCount)
        return AnalysisResult(settings: settings, ranges: header.ranges, histograms: header.histograms, store: store,
                              images: Array(0..<header.imageCount))
    }
}

extension PerImageStore {
    /// Everything the store holds, as bytes (for the cache).
    var rawBytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(channelEntropyBase), count: dataByteCount))
    }

    func load(rawBytes: [UInt8]) {
        rawBytes.withUnsafeBytes { src in
            UnsafeMutableRawPointer(channelEntropyBase).copyMemory(from: src.baseAddress!, byteCount: min(src.count, dataByteCount))
        }
    }
}
