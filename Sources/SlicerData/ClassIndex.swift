import Foundation

/// A class-index file: which output index of a model each class name means, so
/// that an image folder's subfolders (`n01440764`, `tench`, …) find their class
/// whatever subset of classes the folder holds.
///
/// Formats:
/// - torchvision's `imagenet_class_index.json`: `{"0": ["n01440764", "tench"], …}`
///   (every string of an entry names the class);
/// - text, one class per line in index order: `n01440764 tench, Tinca tinca`
///   (ImageNet's `LOC_synset_mapping.txt`: the first word, and the rest of the
///   line, name the class), or simply one name per line. Blank lines count.
public struct ClassIndex: Sendable, Equatable {
    public let path: String
    /// Per output index: the names a folder may have for it.
    public let names: [Int: [String]]

    /// The file torchvision's users keep beside their data; looked for in the data folder.
    public static let conventionalFileName = "imagenet_class_index.json"

    /// Match key → index; the lowest index wins where two classes share a name.
    private let lookup: [String: Int]

    public init(path: String, names: [Int: [String]]) {
        self.path = path
        self.names = names
        var table: [String: Int] = [:]
        for (index, strings) in names.sorted(by: { $0.key < $1.key }) {
            for s in strings where table[ClassIndex.matchKey(s)] == nil { table[ClassIndex.matchKey(s)] = index }
        }
        lookup = table
    }

    public static func read(path: String) throws -> ClassIndex {
        let bytes = try FileIO.readAll(path)
        guard !bytes.isEmpty else { throw DataError.corrupt(path: path, detail: "empty class-index file") }
        let firstText = bytes.first { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }
        if firstText == UInt8(ascii: "{") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)), let entries = object as? [String: Any] else {
                throw DataError.corrupt(path: path, detail: "not a JSON object of the form {\"0\": [\"n01440764\", \"tench\"], …}")
            }
            var names: [Int: [String]] = [:]
            for (key, value) in entries {
                guard let index = Int(key), index >= 0 else {
                    throw DataError.corrupt(path: path, detail: "key \(Self.quoted(key)) is not a class index")
                }
                let strings = (value as? [Any])?.compactMap { $0 as? String } ?? (value as? String).map { [$0] }
                guard let strings, !strings.isEmpty else {
                    throw DataError.corrupt(path: path, detail: "class \(index) has no names (expected [\"n01440764\", \"tench\"])")
                }
                names[index] = strings
            }
            return ClassIndex(path: path, names: names)
        }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw DataError.corrupt(path: path, detail: "neither JSON nor UTF-8 text")
        }
        var names: [Int: [String]] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !line.isEmpty else { continue }
            var entry = [line]
            if let space = line.firstIndex(where: \.isWhitespace) {
                entry = [String(line[..<space]), line[space...].trimmingCharacters(in: .whitespaces), line]
            }
            names[index] = entry
        }
        guard !names.isEmpty else { throw DataError.corrupt(path: path, detail: "no classes in the class-index file") }
        return ClassIndex(path: path, names: names)
    }

    /// The output index a folder named `folder` stands for, if the file names it.
    public func index(of folder: String) -> Int? {
        lookup[ClassIndex.matchKey(folder)]
    }

    /// The class's human-readable name: the entry's last string.
    public func displayName(of index: Int) -> String? { names[index]?.last }

    /// How names are compared: case, surrounding space and `_`/`-`/space differences
    /// do not matter (a folder `great_white_shark` is the class "great white shark").
    public static func matchKey(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespaces).lowercased()
            .map { $0 == "_" || $0 == "-" ? " " : $0 }.reduce(into: "") { $0.append($1) }
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined() + "\""
    }
}
