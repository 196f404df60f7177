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
        let kept = histograms.layout == .kept
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
            // Exact sums over the class slots, rounded once: the same bits however the images were split.
            let layerSum = h.layerInstanceSum.reduce(ExactSum.zero, +).value
            let layerSquares = h.layerInstanceSquares.reduce(ExactSum.zero, +).value
            let mean = n > 0 ? layerSum / Double(n) : 0
            let variance = n > 1 ? max(0, (layerSquares - Double(n) * mean * mean) / Double(n - 1)) : 0
            let channels = h.channels
            let rows = h.channelInstanceSum.count / max(1, channels)
            let channelValues = kept
                ? (ensemble: (0..<channels).map { entropy($0, allSlots) }, information: (0..<channels).map { information($0) })
                : AnalysisSummary.reducedChannels(h, counts: counts, labelledCount: labelledCount, millerMadow: mm)
            return TapSummary(
                name: info.name, op: info.opType, shape: info.shape, range: (r.layerLo, r.layerHi),
                instanceEntropy: mean, instanceEntropySpread: variance.squareRoot(),
                ensembleEntropy: entropy(nil, allSlots), labelInformation: information(nil),
                classInstanceEntropy: (0..<k).map { counts[$0] > 0 ? h.layerInstanceSum[$0].value / Double(counts[$0]) : nil },
                classEnsembleEntropy: (0..<k).map { counts[$0] > 0 ? entropy(nil, [$0]) : nil },
                channelInstanceEntropy: (0..<channels).map { c in
                    n > 0 ? (0..<rows).reduce(ExactSum.zero) { $0 + h.channelInstanceSum[$1 * channels + c] }.value / Double(n) : 0
                },
                channelEnsembleEntropy: channelValues.ensemble,
                channelLabelInformation: channelValues.information,
                instanceCeiling: Entropy.instanceCeiling(bins: histograms.bins, values: info.valuesPerImage, millerMadow: mm),
                channelInstanceCeiling: Entropy.instanceCeiling(bins: histograms.bins, values: info.valuesPerChannel, millerMadow: mm),
                nonFiniteValues: h.nonFinite.reduce(0, +))
        }
    }

    /// Channel ensemble entropy and label information in the on-demand layout:
    /// closed classes are pooled counts and Σ|S_y|·H_E(S_y,l,c); the classes
    /// still open (in progress, or the unlabelled slot) are histograms.
    static func reducedChannels(_ h: TapHistograms, counts: [Int], labelledCount: Int,
                                millerMadow mm: Bool) -> (ensemble: [Double], information: [Double]) {
        let bins = h.bins, channels = h.channels, unlabelled = h.slots - 1
        var ensemble = [Double](repeating: 0, count: channels), information = ensemble
        var all = [UInt64](repeating: 0, count: bins), labelled = all
        for c in 0..<channels {
            for b in 0..<bins { labelled[b] = h.closedCounts[c * bins + b] }
            var conditional = h.closedConditional[c]
            for (o, k) in h.openSlots.enumerated() where k != unlabelled && counts[k] > 0 {
                let row = h.counts[((o * channels + c) * bins)..<((o * channels + c + 1) * bins)]
                for b in 0..<bins { labelled[b] &+= row[row.startIndex + b] }
                conditional += Double(counts[k]) * Entropy.bits(row, millerMadow: mm)
            }
            all = labelled
            if let o = h.openIndex(of: unlabelled) {
                let base = (o * channels + c) * bins
                for b in 0..<bins { all[b] &+= h.counts[base + b] }
            }
            ensemble[c] = Entropy.bits(all, millerMadow: mm)
            information[c] = labelledCount > 0 ? max(0, Entropy.bits(labelled, millerMadow: mm) - conditional.value / Double(labelledCount)) : 0
        }
        return (ensemble, information)
    }
}
