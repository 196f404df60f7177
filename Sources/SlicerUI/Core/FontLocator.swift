// Finding the DejaVu fonts. The repository ships them in fonts/; the binary lives in
// .build/<config>/ (or a test bundle below it), so walking up from the executable finds
// them in a checkout. CNNSLICER_FONTS and Debian's fonts-dejavu-core are the fallbacks.

import Foundation

public enum FontLocator {
    public static let fileNames: [FontFace: String] = [.sans: "DejaVuSans.ttf", .mono: "DejaVuSansMono.ttf"]
    public static let environmentVariable = "CNNSLICER_FONTS"
    public static let systemDirectory = "/usr/share/fonts/truetype/dejavu"

    /// Directories to try, in order: a `fonts` directory beside the executable or any of
    /// its parents, then `$CNNSLICER_FONTS`, then the system directory.
    public static func candidateDirectories(executablePath: String? = currentExecutablePath(),
                                            environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var directories: [String] = []
        if let executablePath {
            var url = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
            while true {
                directories.append(url.appendingPathComponent("fonts").path)
                let parent = url.deletingLastPathComponent()
                if parent.path == url.path { break }
                url = parent
            }
        }
        if let custom = environment[environmentVariable], !custom.isEmpty { directories.append(custom) }
        directories.append(systemDirectory)
        return directories
    }

    /// The first candidate directory holding both fonts.
    public static func fontDirectory(executablePath: String? = currentExecutablePath(),
                                     environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let fm = FileManager.default
        return candidateDirectories(executablePath: executablePath, environment: environment).first { dir in
            fileNames.values.allSatisfy { fm.isReadableFile(atPath: dir + "/" + $0) }
        }
    }

    public static func currentExecutablePath() -> String? {
        #if os(Linux)
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments.first
    }
}
