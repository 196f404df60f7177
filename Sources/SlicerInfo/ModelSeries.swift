import Foundation
import SlicerEngine

/// Checkpoints of one architecture (e.g. one per training epoch): the epoch
/// dimension of the data cube (SPEC §1–§2).
public struct ModelSeries: Sendable {
    public let networks: [Network]

    /// Expands each argument as a glob (sorted by name, so epoch_02 < epoch_10)
    /// and loads the models; all must have the same taps (names and shapes).
    public init(patterns: [String]) throws {
        var paths: [String] = []
        for pattern in patterns {
            let matches = ModelSeries.glob(pattern)
            if matches.isEmpty {
                guard FileManager.default.fileExists(atPath: pattern) else {
                    throw EngineError.unreadable(file: pattern, reason: "no such file (and no file matches it as a pattern)")
                }
                paths.append(pattern)
            } else {
                paths += matches
            }
        }
        guard !paths.isEmpty else { throw InfoError.invalid("no models given") }
        let networks = try paths.map { try Network(contentsOf: $0) }
        let reference = networks[0]
        for n in networks.dropFirst() {
            guard n.taps.map(\.name) == reference.taps.map(\.name), n.taps.map(\.shape) == reference.taps.map(\.shape),
                  n.inputShape == reference.inputShape else {
                throw EngineError.shapeMismatch(file: n.path, reason: "taps differ from \(reference.path): a series needs checkpoints of one architecture")
            }
        }
        self.networks = networks
    }

    public var count: Int { networks.count }

    static func glob(_ pattern: String) -> [String] {
        guard pattern.contains(where: { "*?[".contains($0) }) else { return [] }
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { i in result.gl_pathv[i].map { String(cString: $0) } }.sorted()
    }
}
