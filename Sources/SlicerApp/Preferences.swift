import Foundation
import SlicerData
import SlicerInfo

/// What the app remembers between sessions, in `$XDG_CONFIG_HOME/cnnslicer/preferences.json`
/// (default `~/.config/cnnslicer/`). Small, human-readable, written atomically; a missing or
/// unreadable file means the defaults, so a damaged file never stops the app.
public struct Preferences: Codable, Sendable, Equatable {
    /// The folder the file chooser showed last.
    public var lastFolder: String?

    public init(lastFolder: String? = nil) {
        self.lastFolder = lastFolder
    }

    enum CodingKeys: String, CodingKey {
        case lastFolder = "last_folder"
    }
}

/// Where preferences live, and reading and writing them. A value: tests point it at a
/// temporary directory.
public struct PreferencesStore: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// `$XDG_CONFIG_HOME/cnnslicer/preferences.json`, else `~/.config/cnnslicer/preferences.json`.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> PreferencesStore {
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.config"
        return PreferencesStore(path: base + "/cnnslicer/preferences.json")
    }

    /// The stored preferences; the defaults when the file is missing or unreadable.
    public func load() -> Preferences {
        guard let data = FileManager.default.contents(atPath: path),
              let stored = try? JSONDecoder().decode(Preferences.self, from: data) else { return Preferences() }
        return stored
    }

    /// Writes through a temporary file and a rename, creating the folder if needed.
    public func save(_ preferences: Preferences) throws {
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw InfoError.io("\(folder): cannot create the configuration folder (\(error.localizedDescription))")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var data = try encoder.encode(preferences)
        data.append(contentsOf: Array("\n".utf8))
        try AtomicFile.write(data, to: path)
    }
}
