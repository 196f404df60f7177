import Foundation

/// Readers for CIFAR-10 in its two official layouts: the binary version
/// (`data_batch_[1-5].bin`, `test_batch.bin`, `batches.meta.txt`) and the
/// python version (`cifar-10-batches-py/`: pickled `data_batch_1..5`,
/// `test_batch`, `batches.meta`). Both give 3×32×32 images, planes R, G, B.
public enum CIFARReader {
    public static let defaultClassNames = [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ]
    static let side = 32
    static let imageBytes = 3 * 32 * 32
    /// One label byte, then the 3072 pixel bytes.
    static let recordBytes = 1 + imageBytes

    // MARK: Binary version

    static func binaryFiles(in directory: String, split: Split) -> [String] {
        let names = split == .test ? ["test_batch.bin"] : (1...5).map { "data_batch_\($0).bin" }
        return names.map { FileIO.join(directory, $0) }.filter(FileIO.isFile)
    }

    static func looksLikeBinary(_ directory: String) -> Bool {
        !binaryFiles(in: directory, split: .test).isEmpty || !binaryFiles(in: directory, split: .train).isEmpty
    }

    /// Loads the batches of `split` from a binary CIFAR-10 directory. The
    /// training split is the concatenation of `data_batch_1.bin`...`_5.bin`
    /// in that order, of whichever exist.
    public static func loadBinary(directory: String, split: Split, limit: Int? = nil) throws -> LabeledImages {
        let files = binaryFiles(in: directory, split: split)
        guard !files.isEmpty else {
            let expected = split == .test ? "test_batch.bin" : "data_batch_1.bin … data_batch_5.bin"
            throw DataError.missingFile(path: directory, detail: "no \(expected) in this CIFAR-10 directory")
        }
        return try loadBinary(files: files, limit: limit, source: directory)
    }

    /// Loads one or more binary batch files, in order, with the class names
    /// from `batches.meta.txt` beside the first file.
    public static func loadBinary(files: [String], limit: Int? = nil, source: String? = nil) throws -> LabeledImages {
        guard let first = files.first else {
            throw DataError.missingFile(path: source ?? "", detail: "no CIFAR-10 batch files given")
        }
        let names = try textClassNames(in: FileIO.parent(of: first))
        var pixels: [UInt8] = []
        var labels: [Int] = []
        for file in files {
            if let limit, labels.count >= limit { break }
            let bytes = try FileIO.readAll(file)
            let records = bytes.count / recordBytes
            guard bytes.count % recordBytes == 0 else {
                throw DataError.corrupt(
                    path: file,
                    detail: "size \(bytes.count) is not a whole number of \(recordBytes)-byte CIFAR-10 records (\(records) records + \(bytes.count % recordBytes) bytes)")
            }
            let wanted = min(records, (limit ?? Int.max) - labels.count)
            pixels.reserveCapacity(pixels.count + wanted * imageBytes)
            for record in 0..<wanted {
                let start = record * recordBytes
                let label = Int(bytes[start])
                guard label < names.count else {
                    throw DataError.corrupt(path: file, detail: "record \(record) has label \(label), expected 0..<\(names.count)")
                }
                labels.append(label)
                pixels.append(contentsOf: bytes[(start + 1)..<(start + recordBytes)])
            }
        }
        guard !labels.isEmpty else {
            throw DataError.emptySet(path: source ?? first, detail: "the CIFAR-10 batch files hold no records")
        }
        return LabeledImages(validatedChannels: 3, height: side, width: side, pixels: pixels, labels: labels,
                             classNames: names, source: source ?? first)
    }

    /// Class names from `batches.meta.txt` (one per line, blank lines ignored),
    /// or the standard CIFAR-10 names if the file is missing.
    static func textClassNames(in directory: String) throws -> [String] {
        let path = FileIO.join(directory, "batches.meta.txt")
        guard FileIO.isFile(path) else { return defaultClassNames }
        let text = String(decoding: try FileIO.readAll(path), as: UTF8.self)
        let names = text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard names.count == defaultClassNames.count else {
            throw DataError.corrupt(path: path, detail: "lists \(names.count) class names, CIFAR-10 has \(defaultClassNames.count)")
        }
        return names
    }

    // MARK: Python version

    static func pythonFiles(in directory: String, split: Split) -> [String] {
        let names = split == .test ? ["test_batch"] : (1...5).map { "data_batch_\($0)" }
        return names.map { FileIO.join(directory, $0) }.filter(FileIO.isFile)
    }

    static func looksLikePython(_ directory: String) -> Bool {
        !pythonFiles(in: directory, split: .test).isEmpty || !pythonFiles(in: directory, split: .train).isEmpty
            || FileIO.isFile(FileIO.join(directory, "batches.meta"))
    }

    /// Loads the pickled batches of `split` from a `cifar-10-batches-py` directory.
    public static func loadPython(directory: String, split: Split, limit: Int? = nil) throws -> LabeledImages {
        let files = pythonFiles(in: directory, split: split)
        guard !files.isEmpty else {
            let expected = split == .test ? "test_batch" : "data_batch_1 … data_batch_5"
            throw DataError.missingFile(path: directory, detail: "no \(expected) in this CIFAR-10 python directory")
        }
        return try loadPython(files: files, limit: limit, source: directory)
    }

    /// Loads one or more pickled batch files, in order, with the class names
    /// from the pickled `batches.meta` beside the first file.
    public static func loadPython(files: [String], limit: Int? = nil, source: String? = nil) throws -> LabeledImages {
        guard let first = files.first else {
            throw DataError.missingFile(path: source ?? "", detail: "no CIFAR-10 batch files given")
        }
        let names = try pickledClassNames(in: FileIO.parent(of: first))
        var pixels: [UInt8] = []
        var labels: [Int] = []
        for file in files {
            if let limit, labels.count >= limit { break }
            let batch = try decodePythonBatch(try FileIO.readAll(file), path: file, classCount: names.count)
            let wanted = min(batch.labels.count, (limit ?? Int.max) - labels.count)
            labels.append(contentsOf: batch.labels[0..<wanted])
            pixels.append(contentsOf: batch.pixels[batch.pixels.startIndex..<(batch.pixels.startIndex + wanted * imageBytes)])
        }
        guard !labels.isEmpty else {
            throw DataError.emptySet(path: source ?? first, detail: "the CIFAR-10 batch files hold no images")
        }
        return LabeledImages(validatedChannels: 3, height: side, width: side, pixels: pixels, labels: labels,
                             classNames: names, source: source ?? first)
    }

    /// Class names from the pickled `batches.meta` (`b'label_names'`), or the
    /// standard names if the file is missing.
    static func pickledClassNames(in directory: String) throws -> [String] {
        let path = FileIO.join(directory, "batches.meta")
        guard FileIO.isFile(path) else { return defaultClassNames }
        let root = try PickleMachine.load(try FileIO.readAll(path), path: path)
        guard case .dict(let dict) = root else {
            throw DataError.unsupportedFormat(path: path, detail: "pickle holds \(root.kindName), expected a dict with b'label_names'")
        }
        guard let value = dict.value(forKey: "label_names") else {
            throw DataError.unsupportedFormat(path: path, detail: "pickled dict has no 'label_names' key (keys: \(dict.keyList))")
        }
        guard let items = value.sequenceItems else {
            throw DataError.unsupportedFormat(path: path, detail: "'label_names' is \(value.kindName), expected a list")
        }
        let names = try items.map { item -> String in
            guard let name = item.stringValue else {
                throw DataError.unsupportedFormat(path: path, detail: "'label_names' holds \(item.kindName), expected strings")
            }
            return name
        }
        guard names.count == defaultClassNames.count else {
            throw DataError.corrupt(path: path, detail: "lists \(names.count) class names, CIFAR-10 has \(defaultClassNames.count)")
        }
        return names
    }

    struct PythonBatch {
        var pixels: ArraySlice<UInt8>
        var labels: [Int]
    }

    /// Interprets a pickled CIFAR-10 batch: a dict with b'labels' (list of
    /// ints) and b'data' (numpy uint8 array N×3072); other keys are ignored.
    static func decodePythonBatch(_ bytes: [UInt8], path: String, classCount: Int) throws -> PythonBatch {
        let root = try PickleMachine.load(bytes, path: path)
        guard case .dict(let dict) = root else {
            throw DataError.unsupportedFormat(path: path, detail: "pickle holds \(root.kindName), expected a CIFAR-10 batch dict")
        }
        guard let labelsValue = dict.value(forKey: "labels") else {
            if dict.value(forKey: "fine_labels") != nil {
                throw DataError.unsupportedFormat(path: path, detail: "this is a CIFAR-100 batch (b'fine_labels'); only CIFAR-10 is supported")
            }
            throw DataError.unsupportedFormat(path: path, detail: "pickled dict has no 'labels' key (keys: \(dict.keyList))")
        }
        guard let dataValue = dict.value(forKey: "data") else {
            throw DataError.unsupportedFormat(path: path, detail: "pickled dict has no 'data' key (keys: \(dict.keyList))")
        }
        guard let labelItems = labelsValue.sequenceItems else {
            throw DataError.unsupportedFormat(path: path, detail: "'labels' is \(labelsValue.kindName), expected a list of ints")
        }
        var labels: [Int] = []
        labels.reserveCapacity(labelItems.count)
        for (index, item) in labelItems.enumerated() {
            guard case .int(let label) = item else {
                throw DataError.unsupportedFormat(path: path, detail: "'labels'[\(index)] is \(item.kindName), expected an int")
            }
            guard label >= 0 && label < classCount else {
                throw DataError.corrupt(path: path, detail: "'labels'[\(index)] = \(label), expected 0..<\(classCount)")
            }
            labels.append(label)
        }
        guard case .ndarray(let array) = dataValue else {
            throw DataError.unsupportedFormat(path: path, detail: "'data' is \(dataValue.kindName), expected a numpy uint8 array")
        }
        guard let payload = array.payload else {
            throw DataError.unsupportedFormat(path: path, detail: "'data' numpy array was never filled (no BUILD)")
        }
        guard let rows = array.shape.first, array.shape.dropFirst().reduce(1, *) == imageBytes else {
            throw DataError.shapeMismatch(path: path, detail: "'data' has shape \(array.shape), expected (N, \(imageBytes))")
        }
        guard rows == labels.count else {
            throw DataError.shapeMismatch(path: path, detail: "'data' has \(rows) rows but 'labels' has \(labels.count) entries")
        }
        return PythonBatch(pixels: payload, labels: labels)
    }
}
