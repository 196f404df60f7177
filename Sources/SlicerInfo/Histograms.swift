/// The mergeable statistics of one tap over a set of images: ensemble
/// histograms per channel and class, non-finite counts, and sums of the
/// per-image instance entropies. Two sets over disjoint images merge by
/// addition into exactly the statistics of their union (SPEC §3).
public struct TapHistograms: Sendable, Equatable, Codable {
    public let channels: Int
    public let valuesPerChannel: Int
    /// Class slots: the K classes, then one for unlabelled images.
    public let slots: Int
    public let bins: Int
    /// counts[(k·channels + c)·bins + b]: class-major, so that one image's
    /// updates (one class, every channel) walk through memory in order.
    public var counts: [UInt64]
    /// Non-finite values per class slot (not binned).
    public var nonFinite: [UInt64]
    /// Σ_i H_I(i,l) and Σ_i H_I(i,l)² per class slot.
    public var layerInstanceSum: [Double]
    public var layerInstanceSquares: [Double]
    /// Σ_i H_I(i,l,c) per class slot: [k·channels + c].
    public var channelInstanceSum: [Double]

    init(channels: Int, valuesPerChannel: Int, slots: Int, bins: Int) {
        self.channels = channels
        self.valuesPerChannel = valuesPerChannel
        self.slots = slots
        self.bins = bins
        counts = Array(repeating: 0, count: channels * slots * bins)
        nonFinite = Array(repeating: 0, count: slots)
        layerInstanceSum = Array(repeating: 0, count: slots)
        layerInstanceSquares = Array(repeating: 0, count: slots)
        channelInstanceSum = Array(repeating: 0, count: slots * channels)
    }

    mutating func add(_ other: TapHistograms) {
        precondition(other.counts.count == counts.count && other.slots == slots, "histograms of different shapes")
        counts.withUnsafeMutableBufferPointer { a in
            other.counts.withUnsafeBufferPointer { b in for i in 0..<a.count { a[i] &+= b[i] } }
        }
        for i in 0..<slots {
            nonFinite[i] += other.nonFinite[i]
            layerInstanceSum[i] += other.layerInstanceSum[i]
            layerInstanceSquares[i] += other.layerInstanceSquares[i]
        }
        for i in 0..<channelInstanceSum.count { channelInstanceSum[i] += other.channelInstanceSum[i] }
    }

    /// The ensemble histogram of channel `c` (nil: all channels) over the class slots in `classes`.
    public func histogram(channel c: Int?, classes: [Int]) -> [UInt64] {
        var h = [UInt64](repeating: 0, count: bins)
        let channelRange = c.map { $0...$0 } ?? 0...(channels - 1)
        counts.withUnsafeBufferPointer { p in
            for ch in channelRange {
                for k in classes {
                    let base = (k * channels + ch) * bins
                    for b in 0..<bins { h[b] &+= p[base + b] }
                }
            }
        }
        return h
    }
}

/// Statistics of all taps of a network over a set of images.
public struct HistogramSet: Sendable, Equatable, Codable {
    public let bins: Int
    /// K; slot K holds unlabelled images.
    public let classCount: Int
    public var taps: [TapHistograms]
    /// Images per class slot.
    public var imageCounts: [Int]

    public init(tapShapes: [(channels: Int, valuesPerChannel: Int)], classCount: Int, bins: Int) {
        self.bins = bins
        self.classCount = classCount
        taps = tapShapes.map { TapHistograms(channels: $0.channels, valuesPerChannel: $0.valuesPerChannel,
                                             slots: classCount + 1, bins: bins) }
        imageCounts = Array(repeating: 0, count: classCount + 1)
    }

    public var imageCount: Int { imageCounts.reduce(0, +) }

    public mutating func add(_ other: HistogramSet) {
        precondition(other.taps.count == taps.count && other.bins == bins && other.classCount == classCount,
                     "histogram sets of different analyses")
        for i in taps.indices { taps[i].add(other.taps[i]) }
        for i in imageCounts.indices { imageCounts[i] += other.imageCounts[i] }
    }
}
