/// Everything that can go wrong while reading or writing data files.
///
/// Each case carries the offending path (or a description of the source) so
/// that the one-line `description` tells the user which file to look at and
/// what is wrong with it, e.g.
/// `/x/t10k-images-idx3-ubyte.gz: bad IDX magic 0x00000000 (expected 0x00000803 for images)`.
public enum DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file or directory does not exist (or a required companion file is absent).
    case missingFile(path: String, detail: String)
    /// The file ends before the data its header (or record size) promises.
    case truncated(path: String, detail: String)
    /// The file is of the expected kind but its content is inconsistent or damaged.
    case corrupt(path: String, detail: String)
    /// The file is readable but is not one of the formats (or variants) we understand.
    case unsupportedFormat(path: String, detail: String)
    /// Two parts that must agree do not (labels vs. images, expected vs. actual shape).
    case shapeMismatch(path: String, detail: String)
    /// The source is valid but holds no images.
    case emptySet(path: String, detail: String)
    /// The operating system refused an operation (permissions, disk full, ...).
    case ioFailure(path: String, detail: String)
    /// A caller-supplied parameter is out of range (mean/std length, channel count, ...).
    case invalidArgument(source: String, detail: String)

    /// The path or source description the error is about.
    public var path: String {
        switch self {
        case .missingFile(let path, _), .truncated(let path, _), .corrupt(let path, _),
             .unsupportedFormat(let path, _), .shapeMismatch(let path, _), .emptySet(let path, _),
             .ioFailure(let path, _), .invalidArgument(let path, _):
            return path
        }
    }

    /// The problem, without the path.
    public var detail: String {
        switch self {
        case .missingFile(_, let detail), .truncated(_, let detail), .corrupt(_, let detail),
             .unsupportedFormat(_, let detail), .shapeMismatch(_, let detail), .emptySet(_, let detail),
             .ioFailure(_, let detail), .invalidArgument(_, let detail):
            return detail
        }
    }

    public var description: String { ErrorText.oneLine("\(path): \(detail)") }
}

/// Error text as one printable line.
///
/// Details often quote what a damaged file holds — a .npy header, a pickle's
/// literal, a tensor or node name — and such bytes may be NULs, line breaks or
/// terminal escape sequences. Printed raw they would split the error over
/// several lines, cut it short (a NUL ends a C string) or drive the terminal;
/// escaped, the line stays one line and still shows what was there.
public enum ErrorText {
    public static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else { out.append(scalar); continue }
            let escaped: String
            switch scalar {
            case "\n": escaped = "\\n"
            case "\r": escaped = "\\r"
            case "\t": escaped = "\\t"
            case "\0": escaped = "\\0"
            default: escaped = "\\u{" + String(scalar.value, radix: 16) + "}"
            }
            out.append(contentsOf: escaped.unicodeScalars)
        }
        return String(out)
    }

    /// C0 and C1 controls, DEL, and the line and paragraph separators.
    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }
}

/// Formats a 32-bit value the way file-format documentation writes magics.
func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

/// Shows the first bytes of an unrecognised file, which is usually enough to
/// tell an HTML error page, a zip or an LFS pointer from the expected data.
func leadingBytesDescription(_ bytes: ArraySlice<UInt8>, count: Int = 8) -> String {
    if bytes.isEmpty { return "the file is empty" }
    let shown = bytes.prefix(count).map { byte -> String in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }
    return "first bytes " + shown.joined(separator: " ")
}
