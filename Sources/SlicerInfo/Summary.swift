import SlicerEngine

/// The set-level numbers of SPEC §3 for one tap, over all analysed images.
public struct TapSummary: Sendable, Equatable {
    public let name: String
    public let op: String
    public let shape: [Int]
    public let range: (lo: Float, hi: Float)
    /// Mean over images of H_I(i,l), and its standard deviation.
    public let instanceEntropy: Double
    public let instanceEntropySpread: Double
    public let ensembleEntropy: Double
    public let labelInformation: Double
    /// nil for classes without images.
    public let classInstanceEntropy: [Double?]
    public let classEnsembleEntropy: [Double?]
    public let channelInstanceEntropy: [Double]
    public let channelEnsembleEntropy: [Double]
    public let channelLabelInformation: [Double]
    /// The ceiling of the layer-level instance entropy (`instanceEntropy` and
    /// the class lines): log2(min(B, C·H·W)), the histogram having all C·H·W
    /// values of the tap for one image (`Entropy.instanceCeiling`).
    public let instanceCeiling: Double
    /// The ceiling of a channel's instance entropy: log2(min(B, H·W)) — 0 for
    /// the one value per channel of a 1×1 or flat (rank-2) tap.
    public let channelInstanceCeiling: Double
    public let nonFiniteValues: UInt64

    public static func == (a: TapSummary, b: TapSummary) -> Bool {
        a.name == b.name && a.ensembleEntropy == b.ensembleEntropy && a.instanceEntropy == b.instanceEntropy
            && a.channelEnsembleEntropy == b.channelEnsembleEntropy && a.channelInstanceEntropy == b.channelInstanceEntropy
    }
}

public struct AnalysisSummary: Sendable {
    public let images: Int
    public let bins: Int
    public let range: RangeMode
    public let millerMadow: Bool
    public let classCounts: [Int]
    public let taps: [TapSummary]

    public init(network: Network, histograms: HistogramSet, ranges: [TapRange], settings: AnalysisSettings) {
        let k = histograms.classCount
        let mm = settings.millerMadow
        let counts = histograms.imageCounts
        let n = histograms.imageCount
        let labelled = (0..<k).filter { counts[$0] > 0 }
        let allSlots = Array(0...k).filter { counts[$0] > 0 }
        let labelledCount = labelled.reduce(0) { $0 + counts[$1] }
        images = n
        bins = histograms.bins
        range = settings.range
        millerMadow = mm
        classCounts = Array(counts.prefix(k))
        taps = zip(network.taps, zip(histograms.taps, ranges)).map { info, pair in
            let (h, r) = pair
            func entropy(_ channel: Int?, _ classes: [Int]) -> Double {
                Entropy.bits(h.histogram(channel: channel, classes: classes), millerMadow: mm)
            }
            func information(_ channel: Int?) -> Double {
                guard labelledCount > 0 else { return 0 }
                var conditional = 0.0
                for y in labelled { conditional += Double(counts[y]) / Double(labelledCount) * entropy(channel, [y]) }
                return max(0, entropy(channel, labelled) - conditional)
            }
            let layerSum = h.layerInstanceSum.reduce(0, +), layerSquares = h.layerInstanceSquares.reduce(0, +)
            let mean = n > 0 ? layerSum / Double(n) : 0
            let variance = n > 1 ? max(0, (layerSquares - Double(n) * mean * mean) / Double(n - 1)) : 0
            let channels = h.channels
            return TapSummary(
                name: info.name, op: info.opType, shape: info.shape, range: (r.layerLo, r.layerHi),
                instanceEntropy: mean, instanceEntropySpread: variance.squareRoot(),
                ensembleEntropy: entropy(nil, allSlots), labelInformation: information(nil),
                classInstanceEntropy: (0..<k).map { counts[$0] > 0 ? h.layerInstanceSum[$0] / Double(counts[$0]) : nil },
                classEnsembleEntropy: (0..<k).map { counts[$0] > 0 ? entropy(nil, [$0]) : nil },
                channelInstanceEntropy: (0..<channels).map { c in
                    n > 0 ? (0...k).reduce(0) { $0 + h.channelInstanceSum[$1 * channels + c] } / Double(n) : 0
                },
                channelEnsembleEntropy: (0..<channels).map { entropy($0, allSlots) },
                channelLabelInformation: (0..<channels).map { information($0) },
                instanceCeiling: Entropy.instanceCeiling(bins: histograms.bins, values: info.valuesPerImage, millerMadow: mm),
                channelInstanceCeiling: Entropy.instanceCeiling(bins: histograms.bins, values: info.valuesPerChannel, millerMadow: mm),
                nonFiniteValues: h.nonFinite.reduce(0, +))
        }
    }
}
