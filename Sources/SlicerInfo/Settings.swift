/// How the binning range of a tap is chosen (SPEC §3).
public enum RangeMode: Sendable, Hashable, CustomStringConvertible {
    /// min/max of all the tap's values over the calibration images (default).
    case layer
    /// min/max per channel over the calibration images.
    case channel
    /// A fixed range for every tap.
    case fixed(lo: Float, hi: Float)

    public var description: String {
        switch self {
        case .layer: return "layer"
        case .channel: return "channel"
        case let .fixed(lo, hi): return "\(lo),\(hi)"
        }
    }

    /// Parses `layer`, `channel` or `LO,HI`.
    public init?(argument: String) {
        switch argument {
        case "layer": self = .layer
        case "channel": self = .channel
        default:
            let parts = argument.split(separator: ",")
            guard parts.count == 2, let lo = Float(parts[0]), let hi = Float(parts[1]),
                  lo.isFinite, hi.isFinite, lo <= hi else { return nil }
            self = .fixed(lo: lo, hi: hi)
        }
    }
}

/// Everything that changes the numbers of an analysis.
public struct AnalysisSettings: Sendable, Hashable {
    public var bins: Int
    public var range: RangeMode
    /// Adds (m − 1)/(2 n ln 2) to every entropy; off by default.
    public var millerMadow: Bool

    /// Calibration uses the first min(N, this) images in dataset order.
    public static let calibrationImageCount = 256

    public init(bins: Int = 64, range: RangeMode = .layer, millerMadow: Bool = false) {
        self.bins = bins
        self.range = range
        self.millerMadow = millerMadow
    }
}

/// The binning range of every channel of one tap.
public struct TapRange: Sendable, Equatable, Codable {
    public var lo: [Float]
    public var hi: [Float]

    /// The range of the whole tap: for layer and fixed modes every channel's.
    public var layerLo: Float { lo.min() ?? 0 }
    public var layerHi: Float { hi.max() ?? 0 }
}
