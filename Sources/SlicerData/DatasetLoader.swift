import Foundation

/// Which part of a dataset to read.
public enum Split: String, Sendable, CaseIterable {
    case test, train
}

/// The one entry point for image data: a dataset name, a directory or a
/// file, in any of the formats of SPEC §1, recognised by content and layout.
public enum DatasetLoader {
    /// Dataset names that resolve to standard locations.
    public static let knownNames = ["mnist", "fashion-mnist", "cifar10"]

    /// Loads images from `pathOrName`.
    ///
    /// An existing path wins over a name. A directory may hold an IDX pair
    /// (`split` picks t10k or train), CIFAR-10 binary or python batches
    /// (directly or in `cifar-10-batches-bin`/`-py`), or class subfolders of
    /// images. A file may be an IDX images file (labels found beside it), a
    /// single CIFAR batch, or one PNG/JPEG image (unlabelled).
    /// - Parameters:
    ///   - limit: keep the first `limit` images in dataset order.
    ///   - channels: for image files only: 1 or 3 (nil: keep the file's).
    ///   - imageSize: for image files only: resize every image to this size
    ///     (IDX and CIFAR data always come in their native size).
    ///   - imageResize: for image files only: how to resize.
    ///   - imageGeometry: for image files only: shorter-side resize and centre crop
    ///     before `imageSize` (its interpolation replaces `imageResize`).
    public static func load(_ pathOrName: String, split: Split = .test, limit: Int? = nil,
                            channels: Int? = nil, imageSize: ImageSize? = nil,
                            imageResize: ResizeMode = .bilinear, imageGeometry: ImageGeometry? = nil) throws -> LabeledImages {
        let imageOptions = ImageOptions(channels: channels, size: imageSize,
                                        geometry: imageGeometry ?? ImageGeometry(interpolation: imageResize))
        if let limit, limit <= 0 {
            throw DataError.invalidArgument(source: pathOrName, detail: "limit must be positive, got \(limit)")
        }
        let images: LabeledImages
        switch FileIO.kind(of: pathOrName) {
        case .directory:
            images = try loadDirectory(pathOrName, split: split, limit: limit, imageOptions,
                                       classNames: nil, depth: 0)
        case .file:
            images = try loadFile(pathOrName, limit: limit, imageOptions)
        case .other:
            throw DataError.unsupportedFormat(path: pathOrName, detail: "not a regular file or directory")
        case nil:
            let key = pathOrName.lowercased()
            guard knownNames.contains(key) else {
                throw DataError.missingFile(
                    path: pathOrName,
                    detail: "no such file or directory (and not a dataset name: \(knownNames.joined(separator: ", ")))")
            }
            let candidates = candidateDirectories(forName: key)
            guard let directory = candidates.first(where: FileIO.isDirectory) else {
                throw DataError.missingFile(
                    path: pathOrName, detail: "dataset not found; looked in \(candidates.joined(separator: ", "))")
            }
            let names = key == "fashion-mnist" ? IDXReader.fashionClassNames : (key == "mnist" ? IDXReader.digitClassNames : nil)
            images = try loadDirectory(directory, split: split, limit: limit, imageOptions,
                                       classNames: names, depth: 0)
        }
        return limit.map { images.prefix($0) } ?? images
    }

    /// What loading `pathOrName` reads, for commands that must not write their
    /// results over it (`OutputFile.check`): the path itself (a folder stands for
    /// every file in it), the folder a dataset name resolves to, and the labels
    /// file beside an IDX images file.
    public static func inputPaths(_ pathOrName: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        switch FileIO.kind(of: pathOrName) {
        case .directory, .other:
            return [pathOrName]
        case .file:
            return [pathOrName] + (IDXReader.labelsFile(forImages: pathOrName).map { [$0] } ?? [])
        case nil:
            let key = pathOrName.lowercased()
            guard knownNames.contains(key) else { return [] }
            return Array(candidateDirectories(forName: key, environment: environment).filter(FileIO.isDirectory).prefix(1))
        }
    }

    /// Where a dataset name is looked for, in order: `$CNNSLICER_DATA/<name>`,
    /// `$XDG_DATA_HOME/cnnslicer/<name>` (default `~/.local/share`), and for
    /// fashion-mnist the Debian package's `/usr/share/datasets/fashion-mnist`.
    public static func candidateDirectories(
        forName name: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String] {
        var candidates: [String] = []
        if let root = environment["CNNSLICER_DATA"], !root.isEmpty {
            candidates.append(FileIO.join(root, name))
        }
        let dataHome: String?
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty {
            dataHome = xdg
        } else if let home = environment["HOME"], !home.isEmpty {
            dataHome = FileIO.join(home, ".local/share")
        } else {
            dataHome = nil
        }
        if let dataHome { candidates.append(FileIO.join(FileIO.join(dataHome, "cnnslicer"), name)) }
        if name == "fashion-mnist" { candidates.append("/usr/share/datasets/fashion-mnist") }
        return candidates
    }

    /// Subfolders that download tools (torchvision, the CIFAR tarballs) put
    /// the actual files in; looked into when the directory itself has none.
    static let wrapperFolders = [
        "cifar-10-batches-bin", "cifar-10-batches-py", "raw", "MNIST/raw", "FashionMNIST/raw",
    ]

    /// How image files (not IDX/CIFAR) are brought to the model's format.
    struct ImageOptions {
        var channels: Int?
        var size: ImageSize?
        var geometry: ImageGeometry
    }

    static func loadDirectory(_ directory: String, split: Split, limit: Int?, _ imageOptions: ImageOptions,
                              classNames: [String]?, depth: Int) throws -> LabeledImages {
        if IDXReader.imagesFile(in: directory, split: split) != nil {
            return try IDXReader.load(directory: directory, split: split, limit: limit, classNames: classNames)
        }
        let other: Split = split == .test ? .train : .test
        if IDXReader.imagesFile(in: directory, split: other) != nil {
            throw DataError.missingFile(
                path: directory, detail: "has the \(other.rawValue) IDX files but no \(IDXReader.imageNames(for: split)[0])[.gz] for the \(split.rawValue) split")
        }
        if CIFARReader.looksLikeBinary(directory) {
            return try CIFARReader.loadBinary(directory: directory, split: split, limit: limit)
        }
        if CIFARReader.looksLikePython(directory) {
            return try CIFARReader.loadPython(directory: directory, split: split, limit: limit)
        }
        if depth < 2 {
            for wrapper in wrapperFolders {
                let inner = FileIO.join(directory, wrapper)
                if FileIO.isDirectory(inner) {
                    return try loadDirectory(inner, split: split, limit: limit, imageOptions,
                                             classNames: classNames, depth: depth + 1)
                }
            }
            // An image folder split into train/ and test/ (each with class subfolders).
            let splitFolder = FileIO.join(directory, split.rawValue)
            if FileIO.isDirectory(splitFolder) && FileIO.isDirectory(FileIO.join(directory, other.rawValue)) {
                return try loadDirectory(splitFolder, split: split, limit: limit, imageOptions,
                                         classNames: classNames, depth: depth + 1)
            }
        }
        if ImageFolderReader.looksLikeImageFolder(directory) {
            return try ImageFolderReader.load(directory: directory, channels: imageOptions.channels, targetSize: imageOptions.size,
                                              geometry: imageOptions.geometry, limit: limit)
        }
        throw DataError.unsupportedFormat(
            path: directory,
            detail: "no IDX pair, CIFAR-10 batches or class subfolders with PNG/JPEG images found")
    }

    static func loadFile(_ path: String, limit: Int?, _ imageOptions: ImageOptions) throws -> LabeledImages {
        let name = FileIO.fileName(of: path).lowercased()
        if ImageFolderReader.isImageFileName(name) {
            return try ImageFolderReader.loadImage(path: path, channels: imageOptions.channels, targetSize: imageOptions.size,
                                                   geometry: imageOptions.geometry)
        }
        let bytes = try FileIO.readAll(path)
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) || bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            return try ImageFolderReader.loadImage(path: path, channels: imageOptions.channels, targetSize: imageOptions.size,
                                                   geometry: imageOptions.geometry)
        }
        if bytes.count >= 2, bytes[0] == 0x80, (2...5).contains(bytes[1]) {
            return try CIFARReader.loadPython(files: [path], limit: limit)
        }
        if name.hasSuffix(".bin") {
            return try CIFARReader.loadBinary(files: [path], limit: limit)
        }
        let content = Gzip.isGzip(bytes) ? try Gzip.decompress(bytes, path: path) : bytes
        if content.starts(with: [0, 0, 8, 3]) {
            return try IDXReader.load(imagesPath: path, imageBytes: bytes, limit: limit, classNames: nil)
        }
        if content.starts(with: [0, 0, 8, 1]) {
            throw DataError.unsupportedFormat(path: path, detail: "this is an IDX labels file; give the images file or the folder")
        }
        throw DataError.unsupportedFormat(
            path: path, detail: "unrecognised data file (\(leadingBytesDescription(content[...])))")
    }
}
