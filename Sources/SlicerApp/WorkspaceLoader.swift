import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo

/// A model and data that do not fit as they are, but would with resizing: the app offers
/// the choice (and the command line names the flag) instead of failing outright.
public struct SizeMismatch: Error, Sendable, Hashable, CustomStringConvertible {
    public var model: String
    /// The model's input, C×H×W.
    public var modelShape: [Int]
    public var data: String
    /// The data set's images, C×H×W.
    public var dataShape: [Int]
    /// The data was not asked for but chosen by default (no `--data`).
    public var dataWasDefault = false

    public var description: String {
        let images = dataShape.map(String.init).joined(separator: "×")
        let input = modelShape.map(String.init).joined(separator: "×")
        if dataWasDefault {
            return "\(model): takes \(input) images but the default data \(data) has \(images); "
                + "pass --data with the model's data (or --resize bilinear|nearest to resize)"
        }
        return "\(data): images are \(images) but \(model) takes \(input); "
            + "pass --resize bilinear|nearest to resize them, or --data with the model's own data"
    }
}

/// Opens a model series and a data set as a workspace — for the command
/// line, for files dropped on the window and for the file chooser.
public struct WorkspaceOptions: Sendable {
    public var models: [String]
    /// The images; empty: the data the model says it is for, else `fallbackData`.
    public var data: String
    public var split: Split = .test
    public var limit: Int?
    public var mean: [Float]?
    public var std: [Float]?
    public var labels: [String]?
    public var resize: ResizeMode?
    /// Shorter-side resize and centre crop of image files (nil: the model's metadata, else a stretch).
    public var geometry: ImageGeometry?
    /// A class-index file for image folders (ClassMapping).
    public var classIndex: String?
    public var note: String?
    /// The data when `data` is empty and the model names none, or names this one by its
    /// dataset name (`fallbackName`): the command line passes Fashion-MNIST, or the bundled
    /// subset with a note when it is not installed.
    public var fallbackName = "fashion-mnist"
    public var fallbackData = "fashion-mnist"
    public var fallbackNote: String?

    public init(models: [String], data: String) {
        self.models = models
        self.data = data
    }

    /// Loads the series and the images; throws `SizeMismatch` when the images have another
    /// size than the model's input and no resizing was asked for.
    public func load() throws -> Workspace { try open().workspace }

    /// `load()`, also returning the options with the data that was chosen when none was given.
    public func open() throws -> (workspace: Workspace, options: WorkspaceOptions) {
        let series = try ModelSeries(patterns: models)
        let network = series.networks[0]
        let shape = network.inputShape
        guard shape.count == 3 else {
            throw EngineError.unsupported(file: network.path, reason: "input shape \(shape) is not C×H×W images")
        }
        var resolved = self
        let defaulted = data.isEmpty
        if defaulted {
            let intended = WorkspaceOptions.intendedData(for: network) ?? fallbackName
            if intended == fallbackName {
                resolved.data = fallbackData
                resolved.note = fallbackNote
            } else {
                resolved.data = intended
                resolved.note = "data: \(intended), the data set \(URL(fileURLWithPath: network.path).lastPathComponent) names"
            }
        }
        // Load the images once; every checkpoint shares them.
        let images: LabeledImages
        do {
            images = try ModelInput.loadImages(for: network, data: resolved.data, split: split, limit: limit,
                                               resize: resize, geometry: geometry)
        } catch where defaulted && resolved.data != fallbackData {
            throw DataError.invalidArgument(source: network.path, detail: "the model names the data set \(resolved.data), which was not found "
                                            + "(\(error)); pass --data with its images")
        }
        if resize == nil, (images.height, images.width) != (shape[1], shape[2]) {
            throw SizeMismatch(model: network.path, modelShape: shape, data: defaulted ? resolved.data : images.source,
                               dataShape: [images.channels, images.height, images.width], dataWasDefault: defaulted)
        }
        // The first checkpoint maps an image folder's classes; the others share its images.
        let first = try ModelInput(network: network, images: images, mean: mean, std: std, labels: labels, resize: resize,
                                   classIndex: try ModelInput.classIndex(path: classIndex, data: resolved.data, images: images))
        let inputs = try [first] + series.networks.dropFirst().map {
            try ModelInput(network: $0, images: first.images, mean: mean, std: std, labels: labels, resize: resize)
        }
        // Say how an image folder's classes were assigned, and warn where it may be wrong.
        var notes = resolved.note.map { [[$0]] } ?? []
        if first.classMapping.source != .dataset {
            notes.append(first.classMapping.statusNoteForms())
        }
        return (Workspace(inputs: inputs, notes: notes), resolved)
    }

    /// The data set a model is meant for, when the model says so: its `cnnslicer.data`
    /// metadata, or class names (`cnnslicer.labels`) that are those of a data set the
    /// program knows by name. Nil when it does not say.
    public static func intendedData(for network: Network) -> String? {
        if let named = network.model.metadataValue("cnnslicer.data")?.trimmingCharacters(in: .whitespaces), !named.isEmpty {
            return named
        }
        switch network.metadataLabels {
        case IDXReader.fashionClassNames?: return "fashion-mnist"
        case IDXReader.digitClassNames?: return "mnist"
        case CIFARReader.defaultClassNames?: return "cifar10"
        default: return nil
        }
    }
}

extension AppModel {
    /// Shows a PNG or JPEG file as a drawn image, converted to the model's input.
    public func showImage(file path: String) throws {
        // As the model's data would be: its cnnslicer.resize (shorter side, centre crop) if it has one.
        let image = try ModelInput.loadImages(for: network, data: path)
        setDrawnImage(Array(image.image(at: 0)))
    }
}
