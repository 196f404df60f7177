/// A set of 8-bit images with optional class labels, as read from a dataset.
///
/// Pixels are planar, N×C×H×W in row-major order — the layout the network
/// input uses (NCHW), so preprocessing is a straight per-plane map. For colour
/// images the planes are R, G, B, which is also CIFAR's on-disk order.
public struct LabeledImages: Sendable, Equatable {
    public let channels: Int
    public let height: Int
    public let width: Int
    /// Number of images.
    public let count: Int
    /// `count × channels × height × width` bytes.
    public let pixels: [UInt8]
    /// One label per image: an index into `classNames`, or −1 when unlabelled.
    public let labels: [Int]
    public let classNames: [String]
    /// Where the images came from (a path, or a description such as "drawn").
    public let source: String
    /// Where the labels came from, for errors about a label: the labels file of
    /// an IDX pair, else `source`.
    public let labelSource: String
    /// True when `classNames` are an image folder's subfolder names and the labels
    /// their sorted order: a model that names its classes may re-map them
    /// (`relabeled`). IDX and CIFAR labels are the datasets' own class indices.
    public let labelsFromFolderNames: Bool

    /// Bytes per image.
    public var pixelsPerImage: Int { channels * height * width }

    /// Creates an image set after checking that the parts fit together.
    /// - Parameter labelsFromFolderNames: the labels number `classNames` in sorted
    ///   order, as an image folder's subfolders (see the property).
    public init(channels: Int, height: Int, width: Int, pixels: [UInt8], labels: [Int],
                classNames: [String], source: String, labelsFromFolderNames: Bool = false) throws {
        guard channels > 0, height > 0, width > 0 else {
            throw DataError.invalidArgument(source: source, detail: "image size must be positive, got \(channels)×\(height)×\(width)")
        }
        let perImage = channels * height * width
        guard pixels.count == labels.count * perImage else {
            throw DataError.shapeMismatch(
                path: source,
                detail: "\(pixels.count) pixel bytes for \(labels.count) labels of \(channels)×\(height)×\(width) (expected \(labels.count * perImage))")
        }
        if let bad = labels.first(where: { $0 < -1 || $0 >= classNames.count }) {
            throw DataError.corrupt(path: source, detail: "label \(bad) is outside 0..<\(classNames.count) (−1 means unlabelled)")
        }
        self.init(validatedChannels: channels, height: height, width: width, pixels: pixels,
                  labels: labels, classNames: classNames, source: source, labelsFromFolderNames: labelsFromFolderNames)
    }

    /// For readers that have already checked their input.
    init(validatedChannels channels: Int, height: Int, width: Int, pixels: [UInt8], labels: [Int],
         classNames: [String], source: String, labelSource: String? = nil, labelsFromFolderNames: Bool = false) {
        assert(pixels.count == labels.count * channels * height * width)
        self.channels = channels
        self.height = height
        self.width = width
        self.count = labels.count
        self.pixels = pixels
        self.labels = labels
        self.classNames = classNames
        self.source = source
        self.labelSource = labelSource ?? source
        self.labelsFromFolderNames = labelsFromFolderNames
    }

    /// The same images with label `l` replaced by `mapping[l]` (−1 stays −1) and new
    /// class names, which the new labels index.
    public func relabeled(_ mapping: [Int], classNames newNames: [String]) throws -> LabeledImages {
        guard mapping.count == classNames.count, mapping.allSatisfy({ $0 >= 0 && $0 < newNames.count }) else {
            throw DataError.invalidArgument(source: source, detail: "class mapping \(mapping) does not fit \(classNames.count) classes onto \(newNames.count)")
        }
        return LabeledImages(validatedChannels: channels, height: height, width: width, pixels: pixels,
                             labels: labels.map { $0 < 0 ? $0 : mapping[$0] }, classNames: newNames, source: source,
                             labelSource: labelSource)
    }

    /// The `channels × height × width` bytes of image `index` (planar).
    public func image(at index: Int) -> ArraySlice<UInt8> {
        precondition(index >= 0 && index < count, "image index \(index) out of range 0..<\(count)")
        let start = index * pixelsPerImage
        return pixels[start..<(start + pixelsPerImage)]
    }

    /// Number of images per class, indexed like `classNames`; unlabelled images are not counted.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for label in labels where label >= 0 { counts[label] += 1 }
        return counts
    }

    /// Indices of the images whose true label is `classIndex`, in dataset order.
    public func indices(ofClass classIndex: Int) -> [Int] {
        labels.indices.filter { labels[$0] == classIndex }
    }

    /// The images at `indices`, in the order given (repeats allowed).
    public func subset(_ indices: [Int]) -> LabeledImages {
        let perImage = pixelsPerImage
        var newPixels = [UInt8]()
        newPixels.reserveCapacity(indices.count * perImage)
        var newLabels = [Int]()
        newLabels.reserveCapacity(indices.count)
        for index in indices {
            precondition(index >= 0 && index < count, "subset index \(index) out of range 0..<\(count)")
            newPixels.append(contentsOf: pixels[(index * perImage)..<((index + 1) * perImage)])
            newLabels.append(labels[index])
        }
        return LabeledImages(validatedChannels: channels, height: height, width: width, pixels: newPixels,
                             labels: newLabels, classNames: classNames, source: source, labelSource: labelSource,
                             labelsFromFolderNames: labelsFromFolderNames)
    }

    /// The first `n` images in dataset order (all of them if there are fewer);
    /// this is what `--limit N` selects.
    public func prefix(_ n: Int) -> LabeledImages {
        let kept = max(0, min(n, count))
        if kept == count { return self }
        return LabeledImages(validatedChannels: channels, height: height, width: width,
                             pixels: Array(pixels[0..<(kept * pixelsPerImage)]),
                             labels: Array(labels[0..<kept]), classNames: classNames, source: source, labelSource: labelSource,
                             labelsFromFolderNames: labelsFromFolderNames)
    }
}
