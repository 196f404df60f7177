import Foundation
import SlicerEngine

// One place that checks decoded analysis statistics — shard partials
// (`analyze --shard`, `merge`) and analysis cache entries — before anything
// indexes into them. JSON decoding only checks types: a partial whose `counts`
// is one value short, or whose `slots` lies, would otherwise make the merge or
// the summary read past an array (a trap, or heap corruption in the unchecked
// release build), and a changed count would silently become a different
// entropy. Every length is checked against the others and against the model,
// every count against the number of values the images hold, every entropy sum
// against its ceiling. A failure names the field (`histograms.taps[2].counts`)
// so that the caller can prefix the file.
//
// Whoever changes HistogramSet or the partial format changes the checks here.
// Both layouts (ClassChannelLayout) are checked: kept (every class slot's
// channel histograms) and on demand (open slots, and the closed classes'
// pooled counts and entropy sums).

/// A decoded field that cannot be right.
public struct FieldError: Error, CustomStringConvertible, Equatable {
    /// The field's path in the decoded structure, e.g. `histograms.taps[2].counts`.
    public let field: String
    public let problem: String

    public init(_ field: String, _ problem: String) {
        self.field = field
        self.problem = problem
    }

    public var description: String { "field \(field): \(problem)" }
}

/// What decoded statistics must describe, as far as the caller knows it.
public struct StatisticsShape: Equatable, Sendable {
    /// (channels, values per channel) of every tap.
    public var taps: [TapShape]
    public var classCount: Int

    public struct TapShape: Equatable, Sendable {
        public var channels: Int
        public var valuesPerChannel: Int
    }

    public init(network: Network) {
        taps = network.taps.map { TapShape(channels: $0.channels, valuesPerChannel: $0.valuesPerChannel) }
        classCount = network.classCount
    }

    /// The shape the statistics claim for themselves.
    init(histograms: HistogramSet) {
        taps = histograms.taps.map { TapShape(channels: $0.channels, valuesPerChannel: $0.valuesPerChannel) }
        classCount = histograms.classCount
    }
}

/// Limits that no real analysis reaches; beyond them a value is damage, and
/// the arithmetic below stays far from overflow.
enum StatisticsLimits {
    static let bins = 2...4096
    static let classCount = 1...1_000_000
    static let taps = 1...100_000
    static let channels = 1...(1 << 24)
    static let valuesPerChannel = 1...(1 << 30)
}

extension HistogramSet {
    /// Checks every length and value; see the comment at the top of this file.
    ///
    /// - Parameters:
    ///   - field: this set's name in the enclosing structure, for the error.
    ///   - shape: the taps and classes the statistics must have (from the model), when known.
    ///   - images: how many images they must cover, when known.
    ///   - millerMadow: whether entropies include the correction (it raises their ceiling).
    public func validate(field: String = "histograms", shape: StatisticsShape?, images: Int?,
                         millerMadow: Bool) throws(FieldError) {
        guard StatisticsLimits.bins.contains(bins) else { throw FieldError("\(field).bins", "\(bins) is outside 2...4096") }
        guard StatisticsLimits.classCount.contains(classCount) else {
            throw FieldError("\(field).classCount", "\(classCount) is not a plausible number of classes")
        }
        if let shape, classCount != shape.classCount {
            throw FieldError("\(field).classCount", "\(classCount), but the model has \(shape.classCount) classes")
        }
        let slots = classCount + 1
        guard imageCounts.count == slots else {
            throw FieldError("\(field).imageCounts", "\(imageCounts.count) values, expected \(slots) (classes + 1)")
        }
        var total = 0
        for (k, n) in imageCounts.enumerated() {
            guard n >= 0, n <= Int(Int32.max) else { throw FieldError("\(field).imageCounts[\(k)]", "\(n) is not an image count") }
            total += n
        }
        if let images, total != images {
            throw FieldError("\(field).imageCounts", "they add up to \(total) images, expected \(images)")
        }
        guard StatisticsLimits.taps.contains(taps.count) else {
            throw FieldError("\(field).taps", "\(taps.count) taps is not plausible")
        }
        if let shape, taps.count != shape.taps.count {
            throw FieldError("\(field).taps", "\(taps.count) taps, but the model has \(shape.taps.count)")
        }
        // Every entropy lies in [0, log2 B], plus at most (B − 1)/(2 ln 2)
        // with the Miller–Madow correction (m − 1)/(2 n ln 2), m ≤ B, n ≥ 1.
        let ceiling = log2(Double(bins)) + (millerMadow ? Double(bins - 1) / (2 * M_LN2) : 0)
        for (t, tap) in taps.enumerated() {
            try tap.validate(field: "\(field).taps[\(t)]", bins: bins, slots: slots, imageCounts: imageCounts, layout: layout,
                             expected: shape?.taps[t], ceiling: ceiling)
        }
    }
}

extension TapHistograms {
    func validate(field: String, bins setBins: Int, slots setSlots: Int, imageCounts: [Int], layout: ClassChannelLayout,
                  expected: StatisticsShape.TapShape?, ceiling: Double) throws(FieldError) {
        guard StatisticsLimits.channels.contains(channels) else { throw FieldError("\(field).channels", "\(channels) is not plausible") }
        guard StatisticsLimits.valuesPerChannel.contains(valuesPerChannel) else {
            throw FieldError("\(field).valuesPerChannel", "\(valuesPerChannel) is not plausible")
        }
        if let expected {
            guard channels == expected.channels else {
                throw FieldError("\(field).channels", "\(channels), but the model's tap has \(expected.channels)")
            }
            guard valuesPerChannel == expected.valuesPerChannel else {
                throw FieldError("\(field).valuesPerChannel", "\(valuesPerChannel), but the model's tap has \(expected.valuesPerChannel)")
            }
        }
        guard slots == setSlots else { throw FieldError("\(field).slots", "\(slots), expected \(setSlots) (classes + 1)") }
        guard bins == setBins else { throw FieldError("\(field).bins", "\(bins), but the set has \(setBins)") }
        guard zip(openSlots, openSlots.dropFirst()).allSatisfy({ $0 < $1 }), openSlots.allSatisfy({ (0..<slots).contains($0) }),
              layout == .onDemand || openSlots.count == slots else {
            throw FieldError("\(field).openSlots", "\(openSlots.count) class slots that are not \(layout == .kept ? "all \(slots)" : "distinct, ascending, below \(slots)")")
        }
        let (block, overflow1) = channels.multipliedReportingOverflow(by: bins)
        let (countLength, overflow2) = block.multipliedReportingOverflow(by: openSlots.count)
        guard !overflow1, !overflow2 else { throw FieldError("\(field).counts", "channels × slots × bins overflows") }
        try Self.expect(counts.count, countLength, "\(field).counts", "open class slots × channels × bins")
        try Self.expect(layerCounts.count, slots * bins, "\(field).layerCounts", "slots × bins")
        try Self.expect(nonFinite.count, slots, "\(field).nonFinite", "slots")
        try Self.expect(layerInstanceSum.count, slots, "\(field).layerInstanceSum", "slots")
        try Self.expect(layerInstanceSquares.count, slots, "\(field).layerInstanceSquares", "slots")
        let rows = layout == .kept ? slots : 1
        try Self.expect(channelInstanceSum.count, rows * channels, "\(field).channelInstanceSum", layout == .kept ? "slots × channels" : "channels")
        try Self.expect(closedCounts.count, layout == .kept ? 0 : block, "\(field).closedCounts", "channels × bins, on demand")
        try Self.expect(closedConditional.count, layout == .kept ? 0 : channels, "\(field).closedConditional", "channels, on demand")
        // Each image of class slot k puts valuesPerChannel values into every
        // channel, each either into one bin or into the non-finite count.
        var binnedBySlot = [UInt64](repeating: 0, count: slots)
        for k in 0..<slots {
            let images = UInt64(imageCounts[k])
            let perChannel = images * UInt64(valuesPerChannel)           // < 2^61 by the limits
            var binned: UInt64 = 0
            for b in 0..<bins {
                let (s, overflow) = binned.addingReportingOverflow(layerCounts[k * bins + b])
                guard !overflow else { throw FieldError("\(field).layerCounts", "class slot \(k) overflows") }
                binned = s
            }
            let (expected, overflow) = perChannel.multipliedReportingOverflow(by: UInt64(channels))
            guard !overflow, nonFinite[k] <= expected, binned == expected - nonFinite[k] else {
                throw FieldError("\(field).layerCounts", "class slot \(k): \(binned) binned and \(nonFinite[k]) non-finite values, but its \(images) images hold \(overflow ? "too many" : String(expected))")
            }
            binnedBySlot[k] = binned
            let n = Double(images)
            try Self.expectSum(layerInstanceSum[k].value, images: n, bound: ceiling, "\(field).layerInstanceSum[\(k)]")
            try Self.expectSum(layerInstanceSquares[k].value, images: n, bound: ceiling * ceiling, "\(field).layerInstanceSquares[\(k)]")
            // Σ h² ≥ (Σ h)² / n (Cauchy–Schwarz), with room for rounding.
            if n > 0, layerInstanceSquares[k].value * n < layerInstanceSum[k].value * layerInstanceSum[k].value * (1 - 1e-9) - 1e-9 {
                throw FieldError("\(field).layerInstanceSquares[\(k)]", "smaller than the square of the sum allows")
            }
            if layout == .kept {
                for c in 0..<channels {
                    try Self.expectSum(channelInstanceSum[k * channels + c].value, images: n, bound: ceiling,
                                       "\(field).channelInstanceSum[\(k * channels + c)]")
                }
            }
        }
        // The open slots' channel histograms: each channel at most its images'
        // values, all channels together the slot's tap-level histogram.
        for (o, k) in openSlots.enumerated() {
            let perChannel = UInt64(imageCounts[k]) * UInt64(valuesPerChannel)
            let sum = try Self.rowSums(counts, from: o * block, channels: channels, bins: bins, limit: perChannel,
                                       "\(field).counts", "channel %d of class slot \(k) holds more than the \(perChannel) values of its \(imageCounts[k]) images")
            guard sum == binnedBySlot[k] else {
                throw FieldError("\(field).counts", "class slot \(k): its channels hold \(sum) values, its tap-level histogram \(binnedBySlot[k])")
            }
        }
        guard layout == .onDemand else { return }
        let total = Double(imageCounts.reduce(0, +))
        for c in 0..<channels {
            try Self.expectSum(channelInstanceSum[c].value, images: total, bound: ceiling, "\(field).channelInstanceSum[\(c)]")
        }
        // The closed classes: the labelled slots with images whose channel histograms are not open.
        let closed = (0..<(slots - 1)).filter { imageCounts[$0] > 0 && !openSlots.contains($0) }
        let closedImages = closed.reduce(0) { $0 + imageCounts[$1] }
        let sum = try Self.rowSums(closedCounts, from: 0, channels: channels, bins: bins,
                                   limit: UInt64(closedImages) * UInt64(valuesPerChannel), "\(field).closedCounts",
                                   "channel %d holds more than the values of the \(closedImages) images of closed classes")
        guard sum == closed.reduce(UInt64(0), { $0 + binnedBySlot[$1] }) else {
            throw FieldError("\(field).closedCounts", "they hold \(sum) values, the closed classes' tap-level histograms \(closed.reduce(UInt64(0), { $0 + binnedBySlot[$1] }))")
        }
        for c in 0..<channels {
            try Self.expectSum(closedConditional[c].value, images: Double(closedImages), bound: ceiling, "\(field).closedConditional[\(c)]")
        }
    }

    /// The sum of `channels` rows of `bins` counts from `start`, each row at most `limit`.
    private static func rowSums(_ counts: [UInt64], from start: Int, channels: Int, bins: Int, limit: UInt64,
                                _ field: String, _ problem: String) throws(FieldError) -> UInt64 {
        var total: UInt64 = 0
        for c in 0..<channels {
            var row: UInt64 = 0
            for b in 0..<bins {
                let (s, overflow) = row.addingReportingOverflow(counts[start + c * bins + b])
                guard !overflow, s <= limit else { throw FieldError(field, String(format: problem, c)) }
                row = s
            }
            total += row
        }
        return total
    }

    private static func expect(_ count: Int, _ expected: Int, _ field: String, _ what: String) throws(FieldError) {
        guard count == expected else { throw FieldError(field, "\(count) values, expected \(expected) (\(what))") }
    }

    /// A sum over `images` images of values in [0, bound].
    private static func expectSum(_ sum: Double, images: Double, bound: Double, _ field: String) throws(FieldError) {
        guard sum.isFinite, sum >= 0, sum <= images * bound * (1 + 1e-9) + 1e-9 else {
            throw FieldError(field, "\(sum) is outside 0...\(images * bound) for \(Int(images)) images")
        }
    }
}

extension Array where Element == TapRange {
    /// The binning ranges of every tap: one finite lo ≤ hi per channel.
    public func validate(field: String = "ranges", shape: StatisticsShape) throws(FieldError) {
        guard count == shape.taps.count else { throw FieldError(field, "\(count) taps, expected \(shape.taps.count)") }
        for (t, range) in enumerated() {
            let channels = shape.taps[t].channels
            guard range.lo.count == channels, range.hi.count == channels else {
                throw FieldError("\(field)[\(t)]", "\(range.lo.count) lower and \(range.hi.count) upper bounds for \(channels) channels")
            }
            for c in 0..<channels where !(range.lo[c].isFinite && range.hi[c].isFinite && range.lo[c] <= range.hi[c]) {
                throw FieldError("\(field)[\(t)]", "channel \(c): [\(range.lo[c]), \(range.hi[c])] is not a range")
            }
        }
    }
}
