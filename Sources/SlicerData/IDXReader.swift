import Foundation

/// Reader for the IDX files of MNIST and Fashion-MNIST
/// (`{train,t10k}-images-idx3-ubyte[.gz]` + `…-labels-idx1-ubyte[.gz]`).
///
/// Layout (big-endian): magic `00 00 08 03` (unsigned bytes, 3 dimensions),
/// then count, rows, columns, then the pixels; labels: magic `00 00 08 01`,
/// count, then one byte per image.
public enum IDXReader {
    static let imagesMagic: UInt32 = 0x0000_0803
    static let labelsMagic: UInt32 = 0x0000_0801

    public static let digitClassNames = (0...9).map { String($0) }
    public static let fashionClassNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// File-name stems per split, in the order they are tried.
    static func imageNames(for split: Split) -> [String] {
        let prefix = split == .test ? "t10k" : "train"
        return ["\(prefix)-images-idx3-ubyte", "\(prefix)-images.idx3-ubyte"]
    }

    /// Finds `name` or `name.gz` in `directory`.
    static func existing(_ directory: String, _ names: [String]) -> String? {
        for name in names {
            for candidate in [name, name + ".gz"] {
                let path = FileIO.join(directory, candidate)
                if FileIO.isFile(path) { return path }
            }
        }
        return nil
    }

    /// The images file of `split` in `directory`, if there is one.
    static func imagesFile(in directory: String, split: Split) -> String? {
        existing(directory, imageNames(for: split))
    }

    /// The labels file that belongs to an images file: same directory, same
    /// name with "images"/"idx3" replaced by "labels"/"idx1", raw or gzip.
    public static func labelsFile(forImages imagesPath: String) -> String? {
        let directory = FileIO.parent(of: imagesPath)
        var name = FileIO.fileName(of: imagesPath)
        if name.hasSuffix(".gz") { name.removeLast(3) }
        let labelsName = name.replacingOccurrences(of: "images", with: "labels")
            .replacingOccurrences(of: "idx3", with: "idx1")
        guard labelsName != name else { return nil }
        return existing(directory, [labelsName])
    }

    /// Loads the images file of `split` and its labels from a directory.
    public static func load(directory: String, split: Split, limit: Int? = nil,
                            classNames: [String]? = nil) throws -> LabeledImages {
        guard let images = imagesFile(in: directory, split: split) else {
            let expected = imageNames(for: split)[0]
            throw DataError.missingFile(path: directory, detail: "no \(expected)[.gz] in this directory")
        }
        return try load(imagesPath: images, limit: limit, classNames: classNames)
    }

    /// Loads an images file and the labels file found beside it.
    /// - Parameters:
    ///   - limit: keep only the first `limit` images.
    ///   - classNames: names for the labels; by default Fashion-MNIST's when
    ///     the path mentions "fashion", otherwise the digits "0"..."9".
    public static func load(imagesPath: String, limit: Int? = nil,
                            classNames: [String]? = nil) throws -> LabeledImages {
        try load(imagesPath: imagesPath, imageBytes: nil, limit: limit, classNames: classNames)
    }

    /// As `load(imagesPath:)`, reusing bytes the caller has already read.
    static func load(imagesPath: String, imageBytes: [UInt8]?, limit: Int?,
                     classNames: [String]?) throws -> LabeledImages {
        guard let labelsPath = labelsFile(forImages: imagesPath) else {
            throw DataError.missingFile(
                path: imagesPath,
                detail: "no labels file beside it (expected …-labels-idx1-ubyte[.gz] in \(FileIO.parent(of: imagesPath)))")
        }
        let raw = try imageBytes ?? FileIO.readAll(imagesPath)
        let images = try parseImages(Gzip.isGzip(raw) ? Gzip.decompress(raw, path: imagesPath) : raw, path: imagesPath)
        let labelBytes = try FileIO.readAll(labelsPath)
        let labels = try parseLabels(Gzip.isGzip(labelBytes) ? Gzip.decompress(labelBytes, path: labelsPath) : labelBytes,
                                     path: labelsPath)
        guard labels.count == images.count else {
            throw DataError.shapeMismatch(path: labelsPath, detail: "\(labels.count) labels for \(images.count) images in \(imagesPath)")
        }
        let names = classNames ?? defaultClassNames(for: imagesPath, labels: labels)
        if let bad = labels.first(where: { Int($0) >= names.count }) {
            throw DataError.corrupt(path: labelsPath, detail: "label \(bad) is outside 0..<\(names.count)")
        }
        let kept = min(images.count, limit ?? images.count)
        let perImage = images.rows * images.columns
        let pixels = Array(images.bytes[16..<(16 + kept * perImage)])
        return LabeledImages(validatedChannels: 1, height: images.rows, width: images.columns, pixels: pixels,
                             labels: labels.prefix(kept).map { Int($0) }, classNames: names, source: imagesPath,
                             labelSource: labelsPath)
    }

    static func defaultClassNames(for path: String, labels: ArraySlice<UInt8>) -> [String] {
        if path.lowercased().contains("fashion") { return fashionClassNames }
        let largest = Int(labels.max() ?? 0)
        return largest < 10 ? digitClassNames : (0...largest).map { String($0) }
    }

    struct ParsedImages {
        var bytes: [UInt8]
        var count: Int
        var rows: Int
        var columns: Int
    }

    static func bigEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    static func checkMagic(_ bytes: [UInt8], expected: UInt32, what: String, path: String) throws {
        guard bytes.count >= 4 else {
            throw DataError.truncated(path: path, detail: "\(bytes.count) bytes is too short for an IDX \(what) header")
        }
        let magic = bigEndian32(bytes, at: 0)
        guard magic == expected else {
            var hint = ""
            if magic == labelsMagic { hint = "; this is an IDX labels file" }
            if magic == imagesMagic { hint = "; this is an IDX images file" }
            throw DataError.corrupt(path: path, detail: "bad IDX magic \(hex32(magic)) (expected \(hex32(expected)) for \(what))\(hint)")
        }
    }

    static func parseImages(_ bytes: [UInt8], path: String) throws -> ParsedImages {
        try checkMagic(bytes, expected: imagesMagic, what: "images", path: path)
        guard bytes.count >= 16 else {
            throw DataError.truncated(path: path, detail: "\(bytes.count) bytes is too short for the 16-byte IDX images header")
        }
        let count = Int(bigEndian32(bytes, at: 4))
        let rows = Int(bigEndian32(bytes, at: 8))
        let columns = Int(bigEndian32(bytes, at: 12))
        guard rows > 0, columns > 0 else {
            throw DataError.corrupt(path: path, detail: "IDX header gives an image size of \(rows)×\(columns)")
        }
        guard count > 0 else { throw DataError.emptySet(path: path, detail: "IDX header says 0 images") }
        // 32-bit fields multiplied in 64-bit Int cannot overflow for count*rows
        // but can for count*rows*columns, so check.
        let (total, overflow) = (count * rows).multipliedReportingOverflow(by: columns)
        let expected = total + 16
        guard !overflow else {
            throw DataError.corrupt(path: path, detail: "IDX header gives an impossible size \(count)×\(rows)×\(columns)")
        }
        if bytes.count < expected {
            throw DataError.truncated(
                path: path,
                detail: "\(bytes.count) bytes, but the header promises \(count) images of \(rows)×\(columns) = \(expected) bytes")
        }
        if bytes.count > expected {
            throw DataError.corrupt(
                path: path,
                detail: "\(bytes.count - expected) unexpected bytes after \(count) images of \(rows)×\(columns)")
        }
        return ParsedImages(bytes: bytes, count: count, rows: rows, columns: columns)
    }

    static func parseLabels(_ bytes: [UInt8], path: String) throws -> ArraySlice<UInt8> {
        try checkMagic(bytes, expected: labelsMagic, what: "labels", path: path)
        guard bytes.count >= 8 else {
            throw DataError.truncated(path: path, detail: "\(bytes.count) bytes is too short for the 8-byte IDX labels header")
        }
        let count = Int(bigEndian32(bytes, at: 4))
        if bytes.count < 8 + count {
            throw DataError.truncated(path: path, detail: "\(bytes.count) bytes, but the header promises \(count) labels = \(8 + count) bytes")
        }
        if bytes.count > 8 + count {
            throw DataError.corrupt(path: path, detail: "\(bytes.count - 8 - count) unexpected bytes after \(count) labels")
        }
        return bytes[8...]
    }
}
