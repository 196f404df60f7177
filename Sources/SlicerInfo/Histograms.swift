import Foundation

/// How much class × channel detail an analysis keeps (SPEC §3 needs every
/// class's channel histogram only for the label information, and only until
/// that class is complete).
public enum ClassChannelLayout: String, Sendable, Hashable, Codable, CustomStringConvertible {
    /// Every class's channel histograms for the whole run: any union of classes
    /// can be asked later. taps × channels × (K+1) × bins counts: right for
    /// small K (the shipped 10-class models: a few MB).
    case kept
    /// A class's channel histograms live only while the class is in progress;
    /// once complete it is reduced to what the label information needs (its
    /// channel counts pooled, |S_y|·H_E(S_y,l,c) summed). Class × channel
    /// values for a tap are computed on demand (`ClassChannelTable`). Memory
    /// independent of K but for the tap-level class histograms (taps × K × bins).
    case onDemand = "on-demand"

    public var description: String { rawValue }
}

/// The mergeable statistics of one tap over a set of images: ensemble
/// histograms, non-finite counts and sums of the per-image instance
/// entropies. Two sets over disjoint images merge by addition into exactly the
/// statistics of their union (SPEC §3).
///
/// Channel histograms are kept per class *slot* (the K classes, then one for
/// unlabelled images) for the *open* slots: every slot in the kept layout,
/// only the classes still in progress in the on-demand layout. A closed class
/// contributes its channel counts to `closedCounts` and |S_y|·H_E(S_y,l,c) to
/// `closedConditional`, which is all the label information needs of it.
public struct TapHistograms: Sendable, Equatable {
    public let channels: Int
    public let valuesPerChannel: Int
    /// Class slots: the K classes, then one for unlabelled images.
    public let slots: Int
    public let bins: Int
    /// The slots whose channel histograms are in `counts`, ascending.
    public private(set) var openSlots: [Int]
    /// counts[(o·channels + c)·bins + b] for slot openSlots[o]: class-major, so
    /// that one image's updates (one class, every channel) walk memory in order.
    public internal(set) var counts: [UInt64]
    /// The tap-level histogram (all channels) of every slot: [k·bins + b].
    public internal(set) var layerCounts: [UInt64]
    /// Non-finite values per class slot (not binned).
    public internal(set) var nonFinite: [UInt64]
    /// Σ_i H_I(i,l) and Σ_i H_I(i,l)² per class slot. Exact sums (`ExactSum`),
    /// so that workers, batches and shards in any order give the same bits.
    public internal(set) var layerInstanceSum: [ExactSum]
    public internal(set) var layerInstanceSquares: [ExactSum]
    /// Σ_i H_I(i,l,c): per open slot [o·channels + c] in the kept layout, one
    /// row over all images [c] in the on-demand layout.
    public internal(set) var channelInstanceSum: [ExactSum]
    /// Channel counts of the labelled images of closed classes: [c·bins + b]
    /// (empty: none closed).
    public internal(set) var closedCounts: [UInt64]
    /// Σ over closed classes y of |S_y|·H_E(S_y,l,c): [c] (empty: none closed);
    /// exact, as classes close in whatever order the workers finish them.
    public internal(set) var closedConditional: [ExactSum]

    init(channels: Int, valuesPerChannel: Int, slots: Int, bins: Int, layout: ClassChannelLayout) {
        self.channels = channels
        self.valuesPerChannel = valuesPerChannel
        self.slots = slots
        self.bins = bins
        openSlots = layout == .kept ? Array(0..<slots) : []
        counts = Array(repeating: 0, count: openSlots.count * channels * bins)
        layerCounts = Array(repeating: 0, count: slots * bins)
        nonFinite = Array(repeating: 0, count: slots)
        layerInstanceSum = Array(repeating: 0, count: slots)
        layerInstanceSquares = Array(repeating: 0, count: slots)
        channelInstanceSum = Array(repeating: 0, count: (layout == .kept ? slots : 1) * channels)
        closedCounts = layout == .onDemand ? Array(repeating: 0, count: channels * bins) : []
        closedConditional = layout == .onDemand ? Array(repeating: 0, count: channels) : []
    }

    /// The index of `slot` in `openSlots`, if its channel histograms are kept.
    public func openIndex(of slot: Int) -> Int? {
        var lo = 0, hi = openSlots.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if openSlots[mid] < slot { lo = mid + 1 } else { hi = mid }
        }
        return lo < openSlots.count && openSlots[lo] == slot ? lo : nil
    }

    /// Sets the open slots of a tap being read from a file (counts follow).
    mutating func setOpenSlots(_ slots: [Int]) { openSlots = slots }

    /// Makes `slot` open (zero counts) if it is not, and returns its index.
    @discardableResult
    mutating func open(_ slot: Int) -> Int {
        if let o = openIndex(of: slot) { return o }
        let o = openSlots.firstIndex { $0 > slot } ?? openSlots.count
        openSlots.insert(slot, at: o)
        let block = channels * bins
        counts.insert(contentsOf: repeatElement(0, count: block), at: o * block)
        return o
    }

    /// Closes `slot`, a labelled class whose every image is in: its channel
    /// counts join `closedCounts`, |S_y|·H_E(S_y,l,c) joins `closedConditional`,
    /// and its channel histograms are dropped.
    mutating func close(_ slot: Int, images: Int, table: EntropyTable, millerMadow: Bool) {
        guard let o = openIndex(of: slot) else { return }
        let block = channels * bins
        counts.withUnsafeBufferPointer { all in
            TapHistograms.reduce(all.baseAddress! + o * block, channels: channels, bins: bins, images: images, table: table,
                                 millerMadow: millerMadow, closedCounts: &closedCounts, closedConditional: &closedConditional)
        }
        openSlots.remove(at: o)
        counts.removeSubrange((o * block)..<((o + 1) * block))
    }

    /// Adds a complete class's channel histograms (`channels` rows of `bins`
    /// counts, any unsigned width) to the closed part.
    mutating func closeRows<Count: FixedWidthInteger & UnsignedInteger>(
        _ rows: UnsafePointer<Count>, images: Int, table: EntropyTable, millerMadow: Bool
    ) {
        TapHistograms.reduce(rows, channels: channels, bins: bins, images: images, table: table, millerMadow: millerMadow,
                             closedCounts: &closedCounts, closedConditional: &closedConditional)
    }

    /// A complete class's channel histograms reduced to what the label
    /// information needs of it: counts pooled, |S_y|·H_E(S_y,l,c) summed.
    private static func reduce<Count: FixedWidthInteger & UnsignedInteger>(
        _ rows: UnsafePointer<Count>, channels: Int, bins: Int, images: Int, table: EntropyTable, millerMadow: Bool,
        closedCounts: inout [UInt64], closedConditional: inout [ExactSum]
    ) {
        if closedCounts.isEmpty {
            closedCounts = Array(repeating: 0, count: channels * bins)
            closedConditional = Array(repeating: 0, count: channels)
        }
        closedCounts.withUnsafeMutableBufferPointer { closed in
            closedConditional.withUnsafeMutableBufferPointer { conditional in
                for c in 0..<channels {
                    let row = rows + c * bins, total = closed.baseAddress! + c * bins
                    var nonZero = false
                    for b in 0..<bins {
                        total[b] &+= UInt64(row[b])
                        nonZero = nonZero || row[b] != 0
                    }
                    // An all-zero row (every value non-finite) has entropy 0: nothing to add.
                    if nonZero {
                        conditional[c] += Double(images) * Entropy.tableBits(row, bins: bins, table: table, millerMadow: millerMadow)
                    }
                }
            }
        }
    }

    /// The ensemble histogram of channel `c` (nil: all channels) over the class
    /// slots in `classes`; the channel histograms of those slots must be open
    /// (tap-level histograms are there for every slot).
    public func histogram(channel c: Int?, classes: [Int]) -> [UInt64] {
        var h = [UInt64](repeating: 0, count: bins)
        guard let c else {
            for k in classes where k >= 0 && k < slots { for b in 0..<bins { h[b] &+= layerCounts[k * bins + b] } }
            return h
        }
        counts.withUnsafeBufferPointer { p in
            for k in classes {
                guard let o = openIndex(of: k) else { preconditionFailure("channel histograms of class slot \(k) are not kept") }
                let base = (o * channels + c) * bins
                for b in 0..<bins { h[b] &+= p[base + b] }
            }
        }
        return h
    }

    /// Channel `c`'s histogram over every image, closed and open.
    func channelHistogram(_ c: Int, labelledOnly: Bool) -> [UInt64] {
        var h = closedCounts.isEmpty ? [UInt64](repeating: 0, count: bins) : Array(closedCounts[(c * bins)..<((c + 1) * bins)])
        for (o, k) in openSlots.enumerated() where !labelledOnly || k < slots - 1 {
            let base = (o * channels + c) * bins
            for b in 0..<bins { h[b] &+= counts[base + b] }
        }
        return h
    }

    mutating func add(_ other: TapHistograms) {
        precondition(other.slots == slots && other.channels == channels && other.bins == bins, "histograms of different shapes")
        let block = channels * bins
        if other.openSlots == openSlots {
            Self.addArrays(&counts, other.counts)
        } else {
            for (o, k) in other.openSlots.enumerated() {
                let mine = open(k)
                counts.withUnsafeMutableBufferPointer { a in
                    other.counts.withUnsafeBufferPointer { b in
                        for i in 0..<block { a[mine * block + i] &+= b[o * block + i] }
                    }
                }
            }
        }
        Self.addArrays(&layerCounts, other.layerCounts)
        Self.addArrays(&nonFinite, other.nonFinite)
        for i in 0..<slots {
            layerInstanceSum[i] += other.layerInstanceSum[i]
            layerInstanceSquares[i] += other.layerInstanceSquares[i]
        }
        for i in 0..<channelInstanceSum.count { channelInstanceSum[i] += other.channelInstanceSum[i] }
        if !other.closedCounts.isEmpty {
            if closedCounts.isEmpty {
                closedCounts = other.closedCounts
                closedConditional = other.closedConditional
            } else {
                Self.addArrays(&closedCounts, other.closedCounts)
                for c in 0..<channels { closedConditional[c] += other.closedConditional[c] }
            }
        }
    }

    static func addArrays(_ a: inout [UInt64], _ b: [UInt64]) {
        a.withUnsafeMutableBufferPointer { x in
            b.withUnsafeBufferPointer { y in for i in 0..<x.count { x[i] &+= y[i] } }
        }
    }

    /// Bytes of the arrays (what a copy of this tap costs).
    var byteCount: Int {
        (counts.count + layerCounts.count + nonFinite.count + closedCounts.count) * 8
            + (layerInstanceSum.count * 2 + channelInstanceSum.count + closedConditional.count) * MemoryLayout<ExactSum>.stride
    }
}

/// Statistics of all taps of a network over a set of images.
public struct HistogramSet: Sendable, Equatable {
    public let bins: Int
    /// K; slot K holds unlabelled images.
    public let classCount: Int
    public let layout: ClassChannelLayout
    /// Whether the closed classes' entropies carry the Miller–Madow correction
    /// (they are reduced under the analysis's settings).
    public let millerMadow: Bool
    public internal(set) var taps: [TapHistograms]
    /// Images per class slot.
    public internal(set) var imageCounts: [Int]

    public init(tapShapes: [(channels: Int, valuesPerChannel: Int)], classCount: Int, bins: Int,
                layout: ClassChannelLayout = .kept, millerMadow: Bool = false) {
        self.bins = bins
        self.classCount = classCount
        self.layout = layout
        self.millerMadow = millerMadow
        taps = tapShapes.map { TapHistograms(channels: $0.channels, valuesPerChannel: $0.valuesPerChannel,
                                             slots: classCount + 1, bins: bins, layout: layout) }
        imageCounts = Array(repeating: 0, count: classCount + 1)
    }

    public var imageCount: Int { imageCounts.reduce(0, +) }

    /// Class slots whose channel histograms are kept in every tap.
    public var openSlots: [Int] { taps.first?.openSlots ?? [] }

    public mutating func add(_ other: HistogramSet) {
        precondition(other.taps.count == taps.count && other.bins == bins && other.classCount == classCount
                     && other.layout == layout, "histogram sets of different analyses")
        for i in taps.indices { taps[i].add(other.taps[i]) }
        for i in imageCounts.indices { imageCounts[i] += other.imageCounts[i] }
    }

    /// Closes every open labelled class (on-demand layout): for when every
    /// image of the set is in, e.g. after merging all shards.
    public mutating func closeOpenClasses() {
        guard layout == .onDemand else { return }
        for t in taps.indices {
            let table = EntropyTable(maxCount: taps[t].valuesPerChannel)
            for k in taps[t].openSlots where k < classCount {
                taps[t].close(k, images: imageCounts[k], table: table, millerMadow: millerMadow)
            }
        }
    }

    /// Bytes of all arrays.
    public var byteCount: Int { taps.reduce(0) { $0 + $1.byteCount } + imageCounts.count * 8 }
}

extension Entropy {
    /// Entropy of `bins` counts of any unsigned width: c·log2 c from the tap's
    /// table where the count is within it (one image's values per channel),
    /// log2 beyond — the merged histograms of a class of several images.
    static func tableBits<Count: FixedWidthInteger & UnsignedInteger>(
        _ counts: UnsafePointer<Count>, bins: Int, table: EntropyTable, millerMadow: Bool
    ) -> Double {
        var total: UInt64 = 0, nonEmpty = 0
        var s0 = 0.0, s1 = 0.0
        let limit = UInt64(table.maxCount)
        var b = 0
        while b < bins {
            let c = UInt64(counts[b])
            total &+= c
            nonEmpty += c > 0 ? 1 : 0
            let term = c <= limit ? table.xlogx(Int(c)) : Double(c) * log2(Double(c))
            if b & 1 == 0 { s0 += term } else { s1 += term }
            b += 1
        }
        return table.bits(sum: s0 + s1, nonEmpty: nonEmpty, total: Int(total), millerMadow: millerMadow)
    }
}
