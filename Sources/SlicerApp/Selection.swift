import SlicerEngine
import SlicerInfo

/// Which entropy the views show (SPEC §3).
public enum EntropyMethod: Int, Sendable, CaseIterable, Hashable {
    case instance, ensemble, information

    public var title: String {
        switch self {
        case .instance: return "instance"
        case .ensemble: return "ensemble"
        case .information: return "label information"
        }
    }

    public init?(name: String) {
        switch name {
        case "instance": self = .instance
        case "ensemble": self = .ensemble
        case "information", "label", "label-information": self = .information
        default: return nil
        }
    }
}

/// The single source of truth every view reads and writes. A value: the app
/// compares the previous and the new selection once per frame and turns the
/// differences into engine requests.
public struct Selection: Sendable, Hashable {
    /// Index into the model series (0 for a single model).
    public var epoch = 0
    /// The image shown in the feature-map viewer; nil when a drawn image is shown.
    public var image: Int? = 0
    /// Images brushed in the browser or chosen by a class line.
    public var brushedImages: Set<Int> = []
    /// Classes highlighted everywhere.
    public var classes: Set<Int> = []
    /// The selected tap and, when dragging on the strip, a range of taps.
    public var tap = 0
    public var tapRange: ClosedRange<Int>?
    /// Channels brushed in the matrix.
    public var channels: Set<Int> = []
    public var method: EntropyMethod = .instance
    public var settings = AnalysisSettings()
    /// Channels ablated (CAR's "apply mask").
    public var mask = AblationMask()

    public init() {}

    /// What the background engine must compute for this selection.
    public var request: AnalysisRequest { AnalysisRequest(settings: settings, mask: mask) }

    /// Keeps indices inside the model's and the data's bounds.
    public mutating func clamp(tapCount: Int, imageCount: Int, channelCount: Int, classCount: Int, epochCount: Int) {
        epoch = min(max(epoch, 0), max(epochCount - 1, 0))
        tap = min(max(tap, 0), max(tapCount - 1, 0))
        if let r = tapRange {
            let lo = min(max(r.lowerBound, 0), max(tapCount - 1, 0)), hi = min(max(r.upperBound, lo), max(tapCount - 1, 0))
            tapRange = lo...hi
        }
        if let i = image, i < 0 || i >= imageCount { image = imageCount > 0 ? min(max(i, 0), imageCount - 1) : nil }
        brushedImages = brushedImages.filter { $0 >= 0 && $0 < imageCount }
        classes = classes.filter { $0 >= 0 && $0 < classCount }
        channels = channels.filter { $0 >= 0 && $0 < channelCount }
    }
}
