import Foundation
import SlicerData
import SlicerEngine

/// Finished CAR results on disk, in the analysis cache's folder
/// (`$XDG_CACHE_HOME/cnnslicer/`, `CNNSLICER_NO_CACHE` bypasses both) and under
/// its rules: an entry is written atomically (temporary file, then rename),
/// carries its key, and a digest covers everything after its first line, so a
/// corrupt, truncated or stale entry is deleted and recomputed — never trusted.
///
/// A CAR run is minutes of work for a deep tap or a greedy curve: the app keeps
/// every result of a session and finds it here again in the next one.
///
/// Entry layout (`<key>.car`): the line `CNNSLICER-CAR-CACHE-1`, a line with
/// the 16-hex-digit digest of the rest, then JSON (`Entry`).
public struct CARCache: Sendable {
    public let directory: String
    static let magic = "CNNSLICER-CAR-CACHE-1\n"

    public init(directory: String) { self.directory = directory }

    /// The user's cache directory (the analysis cache's), or nil when `CNNSLICER_NO_CACHE` is set.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> CARCache? {
        AnalysisCache.standard(environment: environment).map { CARCache(directory: $0.directory) }
    }

    /// What identifies the model and the images a CAR result depends on: the
    /// model file's bytes, the images' pixels and labels, and the preprocessing.
    /// Reads the model file: call it off the UI thread.
    public static func context(input: ModelInput) throws -> String {
        let model = try FileDigest.of(file: input.network.path)
        let p = input.preprocessing
        let preprocessing = FileDigest.of(bytes: Array("\(p.mean)|\(p.std)|\(p.resize)".utf8))
        return model + FileDigest.of(images: input.images) + preprocessing
    }

    /// One result: the context, the tap, the channels already ablated, and the
    /// greedy target and seed when the result has a pruning curve.
    public static func key(context: String, tap: Int, mask: AblationMask, keep: Int?, seed: UInt64) -> String {
        let mask = mask.channels.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.sorted())" }.joined(separator: ";")
        let request = "car-v1|\(tap)|\(mask)|\(keep.map(String.init) ?? "-")|\(seed)"
        return context + FileDigest.of(bytes: Array(request.utf8))
    }

    func path(for key: String) -> String { directory + "/" + key + ".car" }

    struct Entry: Codable {
        let key: String
        let tapIndex: Int
        let tapName: String
        let channels: Int
        let scores: CARScores
        let greedy: CARCurve?
        let keep: Int?
        let baselines: CARBaselines?
        let stats: CARStats
        let shortcut: String
    }

    /// Writes `result` under `key`.
    public func save(_ result: CARResult, key: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw InfoError.io("\(directory): cannot create directory (\(error.localizedDescription))")
        }
        let entry = Entry(key: key, tapIndex: result.tap.index, tapName: result.tap.name, channels: result.tap.channels,
                          scores: result.scores, greedy: result.greedy, keep: result.keep, baselines: result.baselines,
                          stats: result.stats, shortcut: result.shortcut)
        let body = try JSONEncoder().encode(entry)
        var data = Data(CARCache.magic.utf8)
        data.append(Data((FileDigest.of(bytes: body) + "\n").utf8))
        data.append(body)
        try AtomicFile.write(data, to: path(for: key))
    }

    /// The cached result for `key` on `network`, or nil; an entry that fails any
    /// check (magic, digest, key, tap, sizes) is removed.
    public func load(key: String, network: Network) -> CARResult? {
        let file = path(for: key)
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        func reject() -> CARResult? {
            try? FileManager.default.removeItem(atPath: file)
            return nil
        }
        let magic = Data(CARCache.magic.utf8)
        let digestEnd = magic.count + 17
        guard data.count > digestEnd, data.prefix(magic.count) == magic, data[digestEnd - 1] == UInt8(ascii: "\n") else { return reject() }
        let body = data[digestEnd...]
        guard String(decoding: data[magic.count..<(digestEnd - 1)], as: UTF8.self) == FileDigest.of(bytes: body),
              let entry = try? JSONDecoder().decode(Entry.self, from: body),
              entry.key == key, entry.tapIndex >= 0, entry.tapIndex < network.taps.count else { return reject() }
        let tap = network.taps[entry.tapIndex]
        let k = network.classCount
        let s = entry.scores
        guard tap.name == entry.tapName, tap.channels == entry.channels,
              s.classCounts.count == k, s.baseCorrect.count == k, s.ablatedCorrect.count == tap.channels,
              s.ablatedCorrect.allSatisfy({ $0.count == k }),
              zip(s.baseCorrect, s.classCounts).allSatisfy({ $0 >= 0 && $0 <= $1 }),
              s.ablatedCorrect.allSatisfy({ zip($0, s.classCounts).allSatisfy { $0 >= 0 && $0 <= $1 } }),
              [entry.greedy, entry.baselines?.l1, entry.baselines?.random, entry.baselines?.entropy].allSatisfy({ curve in
                  curve.map { $0.order.count == $0.accuracy.count && $0.order.allSatisfy { (0..<tap.channels).contains($0) } } ?? true
              }) else { return reject() }
        return CARResult(tap: tap, scores: s, greedy: entry.greedy, keep: entry.keep, baselines: entry.baselines,
                         stats: entry.stats, shortcut: entry.shortcut)
    }
}
