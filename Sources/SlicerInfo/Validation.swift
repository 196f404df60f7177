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
    ///   - millerMadow: whether instance entropies include the correction (it raises their ceiling).
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
        // Every instance entropy lies in [0, log2 B], plus at most (B − 1)/(2 ln 2)
        // with the Miller–Madow correction (m − 1)/(2 n ln 2), m ≤ B, n ≥ 1.
        let ceiling = log2(Double(bins)) + (millerMadow ? Double(bins - 1) / (2 * M_LN2) : 0)
        for (t, tap) in taps.enumerated() {
            try tap.validate(field: "\(field).taps[\(t)]", bins: bins, slots: slots, imageCounts: imageCounts,
                             expected: shape?.taps[t], ceiling: ceiling)
        }
    }
}

extension TapHistograms {
    func validate(field: String, bins setBins: Int, slots setSlots: Int, imageCounts: [Int],
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
        let (perSlot, overflow1) = channels.multipliedReportingOverflow(by: bins)
        let (countLength, overflow2) = perSlot.multipliedReportingOverflow(by: slots)
        guard !overflow1, !overflow2 else { throw FieldError("\(field).counts", "channels × slots × bins overflows") }
        try Self.expect(counts.count, countLength, "\(field).counts", "channels × slots × bins")
        try Self.expect(nonFinite.count, slots, "\(field).nonFinite", "slots")
        try Self.expect(layerInstanceSum.count, slots, "\(field).layerInstanceSum", "slots")
        try Self.expect(layerInstanceSquares.count, slots, "\(field).layerInstanceSquares", "slots")
        try Self.expect(channelInstanceSum.count, slots * channels, "\(field).channelInstanceSum", "slots × channels")
        // Each image of class slot k puts valuesPerChannel values into every channel,
        // each either into one bin or into the non-finite count.
        for k in 0..<slots {
            let images = UInt64(imageCounts[k])
            let perChannel = images * UInt64(valuesPerChannel)           // < 2^61 by the limits
            var binned: UInt64 = 0
            for c in 0..<channels {
                let base = (k * channels + c) * bins
                var sum: UInt64 = 0
                for b in 0..<bins {
                    let (s, overflow) = sum.addingReportingOverflow(counts[base + b])
                    guard !overflow, s <= perChannel else {
                        throw FieldError("\(field).counts", "channel \(c) of class slot \(k) holds more than the \(perChannel) values of its \(images) images")
                    }
                    sum = s
                }
                binned += sum
            }
            let (expected, overflow) = perChannel.multipliedReportingOverflow(by: UInt64(channels))
            guard !overflow, nonFinite[k] <= expected, binned == expected - nonFinite[k] else {
                throw FieldError("\(field).counts", "class slot \(k): \(binned) binned and \(nonFinite[k]) non-finite values, but its \(images) images hold \(overflow ? "too many" : String(expected))")
            }
            let n = Double(images)
            try Self.expectSum(layerInstanceSum[k], images: n, bound: ceiling, "\(field).layerInstanceSum[\(k)]")
            try Self.expectSum(layerInstanceSquares[k], images: n, bound: ceiling * ceiling, "\(field).layerInstanceSquares[\(k)]")
            // Σ h² ≥ (Σ h)² / n (Cauchy–Schwarz), with room for rounding.
            if n > 0, layerInstanceSquares[k] * n < layerInstanceSum[k] * layerInstanceSum[k] * (1 - 1e-9) - 1e-9 {
                throw FieldError("\(field).layerInstanceSquares[\(k)]", "smaller than the square of the sum allows")
            }
            for c in 0..<channels {
                try Self.expectSum(channelInstanceSum[k * channels + c], images: n, bound: ceiling,
                                   "\(field).channelInstanceSum[\(k * channels + c)]")
            }
        }
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
