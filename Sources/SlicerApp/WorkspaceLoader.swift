import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo

/// Opens a model series and a data set as a workspace — for the command
/// line, for files dropped on the window and for the file chooser.
public struct WorkspaceOptions: Sendable {
    public var models: [String]
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

    public init(models: [String], data: String) {
        self.models = models
        self.data = data
    }

    public func load() throws -> Workspace {
        let series = try ModelSeries(patterns: models)
        // Load the images once; every checkpoint shares them.
        let first = try ModelInput.load(network: series.networks[0], data: data, split: split, limit: limit,
                                        mean: mean, std: std, labels: labels, resize: resize, geometry: geometry,
                                        classIndex: classIndex)
        // The first checkpoint's input has the classes mapped already; the others share it.
        let inputs = try [first] + series.networks.dropFirst().map {
            try ModelInput(network: $0, images: first.images, mean: mean, std: std, labels: labels, resize: resize)
        }
        // Say how an image folder's classes were assigned, and warn where it may be wrong.
        var notes = note.map { [$0] } ?? []
        if first.classMapping.source != .dataset {
            notes.append(first.classMapping.warning.map { "warning: " + $0 } ?? first.classMapping.summary)
        }
        return Workspace(inputs: inputs, note: notes.isEmpty ? nil : notes.joined(separator: "; "))
    }
}

extension AppModel {
    /// Handles a dropped or chosen path: a model (.onnx) replaces the model, an
    /// image file is shown as a drawn image, anything else is opened as data.
    public func open(path: String, current: WorkspaceOptions) -> WorkspaceOptions? {
        var options = current
        let lower = path.lowercased()
        do {
            if lower.hasSuffix(".onnx") {
                options.models = [path]
            } else if [".png", ".jpg", ".jpeg"].contains(where: lower.hasSuffix) {
                let shape = network.inputShape
                let image = try DatasetLoader.load(path, channels: shape[0] == 1 ? 1 : 3,
                                                   imageSize: ImageSize(width: shape[2], height: shape[1]))
                setDrawnImage(Array(image.image(at: 0)))
                return nil
            } else {
                options.data = path
            }
            options.note = nil
            replace(try options.load())
            return options
        } catch {
            messages.append("\(error)")
            return nil
        }
    }
}
