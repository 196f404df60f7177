import SlicerEngine

/// Instance entropies of one image's feature maps (SPEC §3, method 1), with an
/// analysis's ranges — for images outside the data set (drawn, dropped) and
/// for the feature-map viewer's per-map labels and histograms.
public struct ImageEntropy: Sendable {
    /// H_I per tap and per tap × channel.
    public let layer: [Double]
    public let channels: [[Double]]
    /// Bin counts per tap × channel (index `bins` holds non-finite values).
    public let histograms: [[[Int32]]]

    /// `taps`: the taps to compute (nil: all); the others have a layer entropy of 0 and no
    /// channels, so a view that labels one tap's maps pays for that tap alone.
    public init(maps: FeatureMaps, ranges: [TapRange], settings: AnalysisSettings, taps: Set<Int>? = nil) {
        var layer: [Double] = [], channels: [[Double]] = [], histograms: [[[Int32]]] = []
        let b = settings.bins
        for tap in maps.taps {
            let values = maps.values[tap.index]
            let hw = tap.valuesPerChannel
            var scratch = [Int32](repeating: 0, count: max(hw, 1))
            var total = [Int](repeating: 0, count: b + 1)
            var perChannel: [Double] = [], hists: [[Int32]] = []
            guard taps?.contains(tap.index) ?? true, tap.index < ranges.count, values.count == tap.valuesPerImage else {
                layer.append(0); channels.append([]); histograms.append([]); continue
            }
            for c in 0..<tap.channels {
                let binner = ChannelBinner(bins: b, lo: ranges[tap.index].lo[c], hi: ranges[tap.index].hi[c])
                let nonFinite = values.withUnsafeBufferPointer { v in
                    scratch.withUnsafeMutableBufferPointer { binner.bin(v.baseAddress! + c * hw, count: hw, into: $0.baseAddress!) }
                }
                var h = [Int32](repeating: 0, count: b + 1)
                for i in 0..<hw { h[Int(scratch[i])] += 1 }
                for i in 0...b { total[i] += Int(h[i]) }
                _ = nonFinite
                perChannel.append(Entropy.bits(h.prefix(b), millerMadow: settings.millerMadow))
                hists.append(h)
            }
            layer.append(Entropy.bits(total.prefix(b), millerMadow: settings.millerMadow))
            channels.append(perChannel)
            histograms.append(hists)
        }
        self.layer = layer
        self.channels = channels
        self.histograms = histograms
    }
}
