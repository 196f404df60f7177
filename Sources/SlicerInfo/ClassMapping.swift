import Foundation
import SlicerData

/// How the classes of an image folder became the model's output indices.
///
/// An image folder names its classes by its subfolders; a model by the order of
/// its logits. Numbering the subfolders in sorted order (torchvision's
/// ImageFolder) is right only when the folder holds every class and sorts like
/// the model's classes: a folder of MNIST digits without "3" and "8" would
/// score folder "9" as class 7. So the subfolders are matched, in this order, to
/// a class-index file (`--class-index`, or `imagenet_class_index.json` in the data
/// folder), else to the model's class names (`cnnslicer.labels` or `--labels`),
/// and only when neither names them are they numbered in sorted order.
public struct ClassMapping: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// IDX or CIFAR data: the dataset's own class indices.
        case dataset
        /// Subfolders found in a class-index file (its path).
        case classIndexFile(String)
        /// Subfolders matched to the model's class names.
        case modelLabels
        /// Subfolders numbered in sorted order, as torchvision's ImageFolder does.
        case sortedFolders
    }

    public struct Entry: Sendable, Equatable {
        public let folder: String
        public let classIndex: Int
    }

    public let source: Source
    /// Each subfolder and its class, in sorted folder order; empty for `.dataset`.
    public let entries: [Entry]
    /// A caution for the user (e.g. a subset of ImageNet numbered in sorted order).
    public let warning: String?

    public static let dataset = ClassMapping(source: .dataset, entries: [], warning: nil)

    /// One line that says how classes were assigned.
    public var summary: String {
        switch source {
        case .dataset: return "classes: the dataset's own labels"
        case let .classIndexFile(path): return "classes: \(entries.count) folders matched by the class-index file \(path)"
        case .modelLabels: return "classes: \(entries.count) folders matched to the model's class names"
        case .sortedFolders: return "classes: \(entries.count) folders numbered in sorted order (as torchvision's ImageFolder)"
        }
    }

    /// The mapping as a JSON value for `eval --json` and `analyze`: `null` for a data set
    /// with its own labels (nothing was mapped), else `{"source", "class_index_file",
    /// "folders": {folder: class}, "warning"}` — the source is "class-index file",
    /// "model labels" or "sorted folders"; the file and the warning are `null` when
    /// there is none.
    public var json: String {
        typealias J = JSONText
        let source: String, file: String?
        switch self.source {
        case .dataset: return "null"
        case let .classIndexFile(path): (source, file) = ("class-index file", path)
        case .modelLabels: (source, file) = ("model labels", nil)
        case .sortedFolders: (source, file) = ("sorted folders", nil)
        }
        let folders = entries.map { "\(J.string($0.folder)): \($0.classIndex)" }.joined(separator: ", ")
        return "{\"source\": \(J.string(source)), \"class_index_file\": \(file.map(J.string) ?? "null"), "
            + "\"folders\": {\(folders)}, \"warning\": \(warning.map(J.string) ?? "null")}"
    }

    /// One short line for a status bar: the warning, or else the summary.
    public var statusNote: String {
        guard warning != nil, source == .sortedFolders else { return summary }
        return "warning: \(entries.count) folders numbered in sorted order; give --class-index if they are not classes 0–\(entries.count - 1)"
    }

    /// `statusNote` and shorter forms of it, longest first, for a status bar too narrow
    /// for the whole line (a class-index file deep in the file system, large type): the
    /// file's path with the home folder as `~`, then its middle elided
    /// (`~/…/imagenet-1000/imagenet_class_index.json`), then fewer words. Every form
    /// still says which rule applied; the first is the whole text (for a tooltip).
    public func statusNoteForms(home: String? = ProcessInfo.processInfo.environment["HOME"]) -> [String] {
        let n = entries.count
        switch source {
        case .dataset, .modelLabels:
            return [statusNote, "classes: \(n) folders matched to the model's names", "classes: the model's names"]
        case .sortedFolders:
            guard warning != nil else { return [statusNote, "classes: \(n) folders in sorted order"] }
            return [statusNote, "warning: folders numbered in sorted order; give --class-index if they are not classes 0–\(n - 1)",
                    "warning: folders in sorted order, see --class-index", "warning: classes by sorted folders"]
        case let .classIndexFile(path):
            // The file's folder says more than the words "the class-index file" do: those
            // go before the folder does.
            let paths = PathText.shorterForms(of: path, home: home)
            let file = paths.last ?? path
            let withFolder = paths.count > 1 ? Array(paths.dropLast()) : paths
            var forms = withFolder.map { "classes: \(n) folders matched by the class-index file \($0)" }
            forms += withFolder.map { "classes: \(n) folders matched by \($0)" }
            if paths.count > 1 { forms += ["classes: \(n) folders matched by the class-index file \(file)", "classes: \(n) folders matched by \(file)"] }
            forms.append("classes by \(file)")
            return forms
        }
    }

    /// The summary, the warning and `folder → index name` lines (at most `limit` of them).
    public func report(classNames: [String], limit: Int = .max) -> [String] {
        var lines = [summary]
        if let warning { lines.append("warning: \(warning)") }
        for entry in entries.prefix(limit) {
            let name = entry.classIndex < classNames.count ? classNames[entry.classIndex] : ""
            lines.append("  \(entry.folder) → \(entry.classIndex)\(name.isEmpty || name == entry.folder ? "" : " (\(name))")")
        }
        if entries.count > limit { lines.append("  … \(entries.count - limit) more") }
        return lines
    }

    /// Decides the mapping for `images` (whose labels are sorted-folder indices).
    ///
    /// - Parameter modelNames: the model's own class names, when it has them.
    public static func resolve(folders: [String], classCount: Int, modelNames: [String]?,
                               classIndex: ClassIndex?, source: String) throws -> ClassMapping {
        if let classIndex {
            var entries: [Entry] = []
            var missing: [String] = []
            for folder in folders {
                guard let index = classIndex.index(of: folder) else { missing.append(folder); continue }
                guard index < classCount else {
                    throw DataError.invalidArgument(
                        source: classIndex.path, detail: "folder '\(folder)' is class \(index), but the model has \(classCount) classes")
                }
                entries.append(Entry(folder: folder, classIndex: index))
            }
            guard missing.isEmpty else {
                throw DataError.invalidArgument(
                    source: classIndex.path, detail: "does not name the folder(s) \(list(missing)) of \(source)")
            }
            return ClassMapping(source: .classIndexFile(classIndex.path), entries: entries, warning: nil)
        }
        if let modelNames {
            var byKey: [String: Int] = [:]
            for (i, name) in modelNames.enumerated() where i < classCount && byKey[ClassIndex.matchKey(name)] == nil {
                byKey[ClassIndex.matchKey(name)] = i
            }
            let matched = folders.map { byKey[ClassIndex.matchKey($0)] }
            let unmatched = zip(folders, matched).filter { $0.1 == nil }.map(\.0)
            if unmatched.isEmpty {
                return ClassMapping(source: .modelLabels,
                                    entries: zip(folders, matched).map { Entry(folder: $0, classIndex: $1 ?? 0) }, warning: nil)
            }
            if unmatched.count < folders.count {
                throw DataError.invalidArgument(
                    source: source,
                    detail: "folder(s) \(list(unmatched)) name none of the model's classes, while the others do; rename them or give --class-index FILE")
            }
        }
        guard folders.count <= classCount else {
            throw DataError.shapeMismatch(path: source, detail: "\(folders.count) class folders for a model with \(classCount) classes")
        }
        var warning: String?
        if folders.count < classCount {
            warning = "\(folders.count) folders for \(classCount) classes: sorted order gives them classes 0–\(folders.count - 1), "
                + "right only if they are the model's first classes; give --class-index FILE (e.g. \(ClassIndex.conventionalFileName))"
        }
        return ClassMapping(source: .sortedFolders, entries: folders.enumerated().map { Entry(folder: $1, classIndex: $0) },
                            warning: warning)
    }

    static func list(_ names: [String]) -> String {
        let shown = names.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
        return names.count > 5 ? "\(shown) and \(names.count - 5) more" : shown
    }
}

/// Shorter ways to write a file's path where the whole one does not fit.
public enum PathText {
    /// `path`, then (each only when shorter than the one before) with the home folder
    /// as `~`, with the folders between the first and the file's own folder elided
    /// (`~/…/imagenet-1000/imagenet_class_index.json`: the folder is usually what tells
    /// files of the same name apart), `…/folder/file`, and the file's name alone.
    public static func shorterForms(of path: String, home: String?) -> [String] {
        var forms = [path]
        func add(_ form: String) { if form.count < (forms.last ?? path).count { forms.append(form) } }
        var tilde = path
        if let home, !home.isEmpty, home != "/", path.hasPrefix(home.hasSuffix("/") ? home : home + "/") {
            tilde = "~/" + path.dropFirst(home.count).drop { $0 == "/" }
            add(tilde)
        }
        let parts = tilde.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let file = parts.last, !file.isEmpty else { return forms }
        let folder = parts[parts.count - 2]
        if parts.count >= 4 {
            // Keep the root ("" for an absolute path, "~", or the first folder).
            add(parts[0] + "/…/" + folder + "/" + file)
        }
        if parts.count >= 3 { add("…/" + folder + "/" + file) }
        add(file)
        return forms
    }
}
