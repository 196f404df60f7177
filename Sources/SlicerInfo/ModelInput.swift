import Foundation
import SlicerData
import SlicerEngine

/// A network with the labelled images it runs on, preprocessed per SPEC §1.
///
/// Shared by the command line, the analysis engine and the app, so that a
/// model/data mismatch is refused the same way everywhere.
public struct ModelInput: Sendable {
    public let network: Network
    public let images: LabeledImages
    public let preprocessing: Preprocessing
    /// One name per output class.
    public let classNames: [String]
    /// How an image folder's subfolders became class indices (`.dataset` otherwise).
    public let classMapping: ClassMapping

    /// - Parameters:
    ///   - mean, std: override the model's `cnnslicer.mean`/`cnnslicer.std` (defaults 0 and 1).
    ///   - labels: override the model's `cnnslicer.labels`, else the dataset's names.
    ///   - resize: allow data sets whose image size differs from the model's; image
    ///     files (folders, single images) are resized regardless, when loaded.
    ///   - classIndex: names the model's classes for an image folder's subfolders (ClassMapping).
    public init(network: Network, images: LabeledImages, mean: [Float]? = nil, std: [Float]? = nil,
                labels: [String]? = nil, resize: ResizeMode? = nil, classIndex: ClassIndex? = nil) throws {
        let shape = network.inputShape
        guard shape.count == 3 else {
            throw EngineError.unsupported(file: network.path, reason: "input shape \(shape) is not C×H×W images")
        }
        guard images.count > 0 else { throw DataError.emptySet(path: images.source, detail: "no images") }
        // Data sets come in their native size: a different size means the wrong
        // data for this model unless the user asks for resizing.
        if (images.height, images.width) != (shape[1], shape[2]) && resize == nil {
            throw EngineError.shapeMismatch(
                file: images.source,
                reason: "images are \(images.channels)×\(images.height)×\(images.width) but \(network.path) takes \(shape.map(String.init).joined(separator: "×")); pass --resize bilinear|nearest to resize")
        }
        if images.channels != shape[0] && !(images.channels == 1 || (images.channels == 3 && shape[0] == 1)) {
            throw EngineError.shapeMismatch(file: images.source, reason: "images have \(images.channels) channels, \(network.path) takes \(shape[0])")
        }
        let mean = mean ?? network.metadataMean ?? [0]
        let std = std ?? network.metadataStd ?? [1]
        for (name, values) in [("mean", mean), ("std", std)] where values.count != 1 && values.count != shape[0] {
            throw DataError.invalidArgument(source: network.path, detail: "\(name) has \(values.count) values for \(shape[0]) input channels")
        }
        guard std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw DataError.invalidArgument(source: network.path, detail: "mean and std must be finite and std non-zero")
        }
        let modelNames = labels ?? network.metadataLabels
        var images = images
        var mapping = ClassMapping.dataset
        if images.labelsFromFolderNames {
            mapping = try ClassMapping.resolve(folders: images.classNames, classCount: network.classCount, modelNames: modelNames,
                                               classIndex: classIndex, source: images.source)
        }
        if let maxLabel = images.labels.max(), maxLabel >= network.classCount, mapping.source == .dataset {
            throw EngineError.shapeMismatch(file: images.labelSource, reason: "label \(maxLabel) but \(network.path) has \(network.classCount) classes")
        }
        let names = modelNames ?? (mapping.source == .dataset || mapping.source == .sortedFolders ? images.classNames : [])
        let classNames = (0..<network.classCount).map { k -> String in
            if k < names.count && !names[k].isEmpty { return names[k] }
            if let name = classIndex?.displayName(of: k) { return name }
            return mapping.entries.first { $0.classIndex == k }?.folder ?? "class \(k)"
        }
        if images.labelsFromFolderNames {
            images = try images.relabeled(mapping.entries.map(\.classIndex), classNames: classNames)
        }
        self.network = network
        self.images = images
        self.preprocessing = Preprocessing(mean: mean, std: std, resize: resize ?? .bilinear)
        self.classNames = classNames
        self.classMapping = mapping
    }

    /// Loads the data for `network`: image files are converted to the model's
    /// channels and size while loading.
    ///
    /// - Parameters:
    ///   - geometry: shorter-side resize and centre crop of image files; default the
    ///     model's `cnnslicer.resize` (shorter side, antialiased, centre crop to the
    ///     model's size), else a stretch to the model's size with `resize`.
    ///   - classIndex: a class-index file for image folders; default
    ///     `imagenet_class_index.json` in the data folder, when there is one.
    public static func load(network: Network, data: String, split: Split = .test, limit: Int? = nil,
                            mean: [Float]? = nil, std: [Float]? = nil, labels: [String]? = nil,
                            resize: ResizeMode? = nil, geometry: ImageGeometry? = nil,
                            classIndex: String? = nil) throws -> ModelInput {
        let images = try loadImages(for: network, data: data, split: split, limit: limit, resize: resize, geometry: geometry)
        return try ModelInput(network: network, images: images, mean: mean, std: std, labels: labels, resize: resize,
                              classIndex: try Self.classIndex(path: classIndex, data: data, images: images))
    }

    /// The images of `data` for `network`, image files brought to its input as `load` says.
    public static func loadImages(for network: Network, data: String, split: Split = .test, limit: Int? = nil,
                                  resize: ResizeMode? = nil, geometry: ImageGeometry? = nil) throws -> LabeledImages {
        let shape = network.inputShape
        guard shape.count == 3 else {
            throw EngineError.unsupported(file: network.path, reason: "input shape \(shape) is not C×H×W images")
        }
        let geometry = geometry ?? network.metadataShorterSide.map { ImageGeometry(shorterSide: $0, interpolation: resize ?? .antialias) }
        return try DatasetLoader.load(data, split: split, limit: limit, channels: shape[0] == 1 ? 1 : 3,
                                      imageSize: ImageSize(width: shape[2], height: shape[1]),
                                      imageResize: resize ?? .bilinear, imageGeometry: geometry)
    }

    /// The class-index file at `path`, else `imagenet_class_index.json` in the data folder of an
    /// image folder, else nil.
    public static func classIndex(path: String?, data: String, images: LabeledImages) throws -> ClassIndex? {
        if let path { return try ClassIndex.read(path: path) }
        let conventional = (data as NSString).appendingPathComponent(ClassIndex.conventionalFileName)
        guard images.labelsFromFolderNames, FileManager.default.fileExists(atPath: conventional) else { return nil }
        return try ClassIndex.read(path: conventional)
    }

    public var classCount: Int { network.classCount }

    /// Writes the images at `indices` into an executor's input buffer.
    public func fill<Indices: Collection>(_ indices: Indices, into buffer: UnsafeMutablePointer<Float>) throws where Indices.Element == Int {
        let s = network.inputShape
        try preprocessing.fill(images, indices: indices, channels: s[0], height: s[1], width: s[2], into: buffer)
    }
}
