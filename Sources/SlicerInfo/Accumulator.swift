import CBinning
import Foundation
import SlicerEngine

/// One worker's share of an analysis: it bins every tap of every image it
/// runs, straight from the executor's buffers, into its own histograms.
///
/// In the kept layout every class slot has its channel histograms here. In the
/// on-demand layout the worker runs whole classes (the analysis hands it units
/// of complete classes): a class in progress counts into one running row per
/// tap, which is reduced and dropped the moment the class's last image has
/// passed that tap (`TapHistograms.closeRows`); a labelled class of one image
/// goes straight to the closed part, its instance entropies being its ensemble
/// entropies. Memory is then independent of the number of classes.
///
/// Not thread-safe; each worker owns one and the analysis merges them.
final class TapAccumulator {
    let network: Network
    let settings: AnalysisSettings
    let layout: ClassChannelLayout
    /// Binners, fused-kernel ranges and entropy tables of every tap (shared by the workers).
    let binning: TapBinning
    var tables: [EntropyTable] { binning.tables }
    /// The statistics so far (the class counts of the last images flushed in).
    var histograms: HistogramSet {
        flushCounts()
        return stored
    }
    private var stored: HistogramSet
    /// Per tap, the ensemble counts of the images since the last flush, in 32
    /// bits: half the memory traffic of the 64-bit totals, which every image's
    /// every channel updates. Kept layout: every class slot, class-major. On
    /// demand: row 0 the running class, row 1 single-image classes (closed).
    private var classCounts: [[UInt32]]
    /// On demand, per tap: the slot counting into row 0 (−1: none), and per
    /// tap and slot the images that have passed the tap on this worker.
    private var running: [Int]
    private var seen: [Int32]
    /// Per class slot: images in this run, and in the whole analysed set (a
    /// shard's run may hold only part of a class, which then stays open).
    private let runTotals: [Int]
    private let setTotals: [Int]
    private var imagesSinceFlush = 0
    /// Images after which the 32-bit counts are added to the totals, so that
    /// no count can overflow (one image adds at most `valuesPerChannel`).
    var flushInterval: Int
    let store: PerImageStore?
    /// The batch being run: global image index and class slot of each image.
    var batchImages: [Int] = []
    var batchSlots: [Int] = []
    private var binScratch: [Int32]
    private var channelHist: [Int32]
    private var layerHist: [UInt64]

    /// - Parameters:
    ///   - runTotals, setTotals: images per class slot in this run and in the
    ///     whole set (on-demand layout; default: each class's images in the run
    ///     are all it has).
    init(network: Network, settings: AnalysisSettings, ranges: [TapRange], classCount: Int, store: PerImageStore?,
         layout: ClassChannelLayout = .kept, runTotals: [Int]? = nil, setTotals: [Int]? = nil,
         binning: TapBinning? = nil) {
        self.network = network
        self.settings = settings
        self.store = store
        self.layout = layout
        let b = settings.bins
        self.binning = binning ?? TapBinning(network: network, ranges: ranges, bins: b)
        stored = HistogramSet(tapShapes: network.taps.map { ($0.channels, $0.valuesPerChannel) },
                              classCount: classCount, bins: b, layout: layout, millerMadow: settings.millerMadow)
        let rows = layout == .kept ? classCount + 1 : 2
        classCounts = network.taps.map { [UInt32](repeating: 0, count: rows * $0.channels * b) }
        let slots = classCount + 1
        self.runTotals = runTotals ?? Array(repeating: 0, count: slots)
        self.setTotals = setTotals ?? runTotals ?? Array(repeating: 0, count: slots)
        running = Array(repeating: -1, count: layout == .kept ? 0 : network.taps.count)
        seen = Array(repeating: 0, count: layout == .kept ? 0 : network.taps.count * slots)
        flushInterval = max(1, Int(UInt32.max) / max(1, network.taps.map(\.valuesPerChannel).max() ?? 1))
        // + 16: the fused kernel stores whole vectors past its last index.
        binScratch = Array(repeating: 0, count: (network.taps.map(\.valuesPerImage).max() ?? 1) + 16)
        // Eight sub-histograms, the merged (or this channel's) counts, and the
        // running sum of the fused path, each `histogramStride(bins)` long
        // (the sparse path uses the first).
        channelHist = Array(repeating: 0, count: 10 * histogramStride(bins: b))
        layerHist = Array(repeating: 0, count: b + 1)
    }

    /// Sets the images of the next batch (in batch order).
    func begin(images: [Int], slots: [Int]) {
        if imagesSinceFlush + images.count > flushInterval { flushCounts() }
        imagesSinceFlush += images.count
        batchImages = images
        batchSlots = slots
        for k in slots { stored.imageCounts[k] += 1 }
    }

    /// Adds the 32-bit class counts to the totals and clears them.
    private func flushCounts() {
        guard imagesSinceFlush > 0 else { return }
        for t in classCounts.indices {
            if layout == .kept {
                classCounts[t].withUnsafeMutableBufferPointer { recent in
                    stored.taps[t].counts.withUnsafeMutableBufferPointer { total in
                        for i in 0..<recent.count { total[i] &+= UInt64(recent[i]) }
                    }
                    recent.update(repeating: 0)
                }
            } else {
                flushRunning(tap: t)
                let block = network.taps[t].channels * settings.bins
                classCounts[t].withUnsafeMutableBufferPointer { recent in
                    stored.taps[t].closedCounts.withUnsafeMutableBufferPointer { total in
                        for i in 0..<block { total[i] &+= UInt64(recent[block + i]) }
                    }
                    recent.baseAddress!.advanced(by: block).update(repeating: 0, count: block)
                }
            }
        }
        imagesSinceFlush = 0
    }

    /// On demand: moves tap `t`'s running row into its class's open 64-bit
    /// histograms (a snapshot or a long class) and clears the row.
    private func flushRunning(tap t: Int) {
        let slot = running[t]
        guard slot >= 0 else { return }
        let block = network.taps[t].channels * settings.bins
        let o = stored.taps[t].open(slot)
        classCounts[t].withUnsafeMutableBufferPointer { recent in
            stored.taps[t].counts.withUnsafeMutableBufferPointer { total in
                let base = o * block
                for i in 0..<block { total[base + i] &+= UInt64(recent[i]) }
            }
            recent.baseAddress!.update(repeating: 0, count: block)
        }
    }

    /// On demand: the running class of tap `t` has had all its images; reduce
    /// it if it is a labelled class complete in the set, else keep it open.
    private func finishRunning(tap t: Int) {
        let slot = running[t]
        guard slot >= 0 else { return }
        let slots = stored.classCount + 1
        guard slot < slots - 1, runTotals[slot] == setTotals[slot] else {
            flushRunning(tap: t)
            running[t] = -1
            return
        }
        let block = network.taps[t].channels * settings.bins
        if stored.taps[t].openIndex(of: slot) != nil {
            flushRunning(tap: t)
            stored.taps[t].close(slot, images: setTotals[slot], table: tables[t], millerMadow: settings.millerMadow)
        } else {
            classCounts[t].withUnsafeMutableBufferPointer { recent in
                stored.taps[t].closeRows(UnsafePointer(recent.baseAddress!), images: setTotals[slot], table: tables[t],
                                         millerMadow: settings.millerMadow)
                recent.baseAddress!.update(repeating: 0, count: block)
            }
        }
        running[t] = -1
    }

    /// On demand: which row of tap `t`'s 32-bit counts image of `slot` counts
    /// into (0 running, 1 closed directly), switching the running class if needed.
    @inline(__always)
    private func row(tap t: Int, slot: Int) -> Int {
        if slot < stored.classCount && setTotals[slot] == 1 { return 1 }
        if running[t] != slot {
            // A class that did not finish here (part of a shard's class, or
            // unlabelled images) keeps its counts open.
            if running[t] >= 0 { flushRunning(tap: t) }
            running[t] = slot
        }
        return 0
    }

    /// On demand: image of `slot` has passed tap `t`.
    @inline(__always)
    private func passed(tap t: Int, slot: Int) {
        guard running[t] == slot else { return }
        let i = t * (stored.classCount + 1) + slot
        seen[i] += 1
        if Int(seen[i]) == runTotals[slot] { finishRunning(tap: t) }
    }

    /// The executor's observer: bins one tap for every image of the batch.
    func observe(_ activation: TapActivation) {
        let t = activation.tap
        let tap = network.taps[t]
        let hw = tap.valuesPerChannel, channels = tap.channels, bins = settings.bins
        let table = tables[t]
        let mm = settings.millerMadow
        let tapBinners = binning.binners[t]
        let offset = store?.channelOffsets[t] ?? 0
        let kept = layout == .kept
        guard let values = activation.values.baseAddress else { return }
        guard !kept else {
            bin(values, images: 0..<activation.batch, firstImage: activation.firstImage, row: nil, tap: t, hw: hw,
                channels: channels, bins: bins, table: table, mm: mm, tapBinners: tapBinners, offset: offset)
            return
        }
        // On demand an image may switch the running class or complete it:
        // that bookkeeping goes between images.
        for n in 0..<activation.batch {
            let slot = batchSlots[activation.firstImage + n]
            let row = self.row(tap: t, slot: slot)
            bin(values, images: n..<(n + 1), firstImage: activation.firstImage, row: row, tap: t, hw: hw,
                channels: channels, bins: bins, table: table, mm: mm, tapBinners: tapBinners, offset: offset)
            passed(tap: t, slot: slot)
        }
    }

    /// Bins images `images` of a call's values for tap `t`: each image's class
    /// row of the 32-bit counts (its slot's, or `row`) gains its channel histograms.
    @inline(__always)
    private func bin(_ values: UnsafePointer<Float>, images: Range<Int>, firstImage: Int, row fixedRow: Int?, tap t: Int, hw: Int,
                     channels: Int, bins: Int, table: EntropyTable, mm: Bool, tapBinners: [ChannelBinner], offset: Int) {
        // The big arrays are moved out of `self` while binning and put back
        // afterwards (no copy: the local holds the only reference). Borrowing
        // them in place nested modify accesses to one stored property: an
        // exclusivity violation that traps in debug builds ("Simultaneous
        // accesses … modification requires exclusive access").
        var tapCounts = classCounts[t], tapInstanceSums = stored.taps[t].channelInstanceSum
        var tapConditional = stored.taps[t].closedConditional
        classCounts[t] = []
        stored.taps[t].channelInstanceSum = []
        stored.taps[t].closedConditional = []
        defer {
            classCounts[t] = tapCounts
            stored.taps[t].channelInstanceSum = tapInstanceSums
            stored.taps[t].closedConditional = tapConditional
        }
        let kept = layout == .kept
        binScratch.withUnsafeMutableBufferPointer { scratchBuffer in
        channelHist.withUnsafeMutableBufferPointer { histBuffer in
        layerHist.withUnsafeMutableBufferPointer { layerBuffer in
        tapInstanceSums.withUnsafeMutableBufferPointer { instanceSums in
        tapConditional.withUnsafeMutableBufferPointer { conditionalBuffer in
        tapCounts.withUnsafeMutableBufferPointer { countsBuffer in
            // Pointers hoisted out of the loops: no array accesses (and no
            // uniqueness checks) per value or per channel.
            let scratch = scratchBuffer.baseAddress!, hist = histBuffer.baseAddress!
            let layer = layerBuffer.baseAddress!
            let conditional = conditionalBuffer.baseAddress
            // Channels with fewer values than bins, or very few values, are
            // handled sparsely, touching only the bins their values fall in;
            // the others by the fused kernel (CBinning) where the processor has
            // it, else through eight sub-histograms (`countChannel`).
            let sparse = hw <= 2 * bins && hw < 32
            let stride = histogramStride(bins: bins)
            hist.update(repeating: 0, count: 10 * stride)
            // Fewer sub-histograms for small maps: each costs a vector pass per channel.
            let subs = hw >= 256 ? 8 : 4
            let shared = binning.sharedBinners[t]
            for n in images {
                let image = batchImages[firstImage + n], slot = batchSlots[firstImage + n]
                let row = fixedRow ?? slot
                let counts = countsBuffer.baseAddress! + row * channels * bins
                let sums = instanceSums.baseAddress! + (kept ? slot : 0) * channels
                // A single-image class (on demand): its instance entropies are its
                // ensemble entropies, which go straight to the label information's sum.
                let direct = !kept && row == 1
                let imageValues = values + n * channels * hw
                layer.update(repeating: 0, count: bins + 1)
                let entropyRow = store.map { $0.channelEntropyBase + image * $0.totalChannels + offset }
                // Channels sharing one range are binned in one pass over the
                // image's whole tap: no per-channel start-up, no short tails.
                // The fused kernel bins and counts a channel in one go; the
                // other paths bin first.
                let vectorRanges = sparse || hw == 1 ? nil : binning.vectorRanges[t]
                let fused = vectorRanges != nil
                if let shared, !fused { _ = shared.bin(imageValues, count: channels * hw, into: scratch) }
                if hw == 1 {
                    // One value per channel (rank-2 taps): its instance entropy is
                    // 0; it adds one count to its bin, or to the non-finite slot.
                    for c in 0..<channels {
                        if shared == nil { _ = tapBinners[c].bin(imageValues + c, count: 1, into: scratch + c) }
                        let b = Int(scratch[c])
                        if b < bins { counts[c * bins + b] &+= 1 }
                        layer[b] &+= 1
                        entropyRow?[c] = 0
                    }
                } else {
                    for c in 0..<channels {
                        let classRow = counts + c * bins
                        let h: Double
                        if let vectorRanges {
                            // The sub-histograms keep counting over the image's
                            // channels; this channel's counts are what their sum
                            // gained (`takeChannel`), and after the last channel
                            // the running sum is the image's layer histogram.
                            cnns_bin_count_avx512(imageValues + c * hw, hw, vectorRanges + (shared == nil ? c : 0), hist,
                                                  stride, Int32(subs), scratch)
                            h = takeChannel(count: hw, bins: bins, hist: hist, subs: subs, table: table, millerMadow: mm,
                                            classRow: classRow)
                        } else {
                            let indices = shared == nil ? scratch : scratch + c * hw
                            if shared == nil { _ = tapBinners[c].bin(imageValues + c * hw, count: hw, into: scratch) }
                            if !sparse {
                                h = countChannel(indices, count: hw, bins: bins, hist: hist,
                                                 table: table, millerMadow: mm, classRow: classRow, layer: layer)
                            } else {
                                // `hist` is all zeros between channels here.
                                for i in 0..<hw { hist[Int(indices[i])] &+= 1 }
                                let nonFinite = Int(hist[bins])
                                var sum = 0.0, nonEmpty = 0
                                for i in 0..<hw {
                                    let b = Int(indices[i]), count = hist[b]
                                    guard count > 0 else { continue }
                                    if b < bins {
                                        sum += table.xlogx(Int(count))
                                        nonEmpty += 1
                                        classRow[b] &+= UInt32(bitPattern: count)
                                    }
                                    layer[b] &+= UInt64(count)
                                    hist[b] = 0
                                }
                                h = table.bits(sum: sum, nonEmpty: nonEmpty, total: hw - nonFinite, millerMadow: mm)
                            }
                        }
                        entropyRow?[c] = Float(h)
                        sums[c] += h
                        if direct, let conditional { conditional[c] += h }
                    }
                    if fused {
                        // The running sum is the layer histogram; clear it all for the next image.
                        let running = hist + 9 * stride
                        for b in 0...bins { layer[b] = UInt64(running[b]) }
                        hist.update(repeating: 0, count: 10 * stride)
                    }
                }
                stored.taps[t].nonFinite[slot] &+= layer[bins]
                stored.taps[t].layerCounts.withUnsafeMutableBufferPointer { layerCounts in
                    let classLayer = layerCounts.baseAddress! + slot * bins
                    for b in 0..<bins { classLayer[b] &+= layer[b] }
                }
                let h = Entropy.tableBits(layer, bins: bins, table: table, millerMadow: mm)
                stored.taps[t].layerInstanceSum[slot] += h
                stored.taps[t].layerInstanceSquares[slot] += h * h
                if let store { store.layerEntropyBase[image * store.tapCount + t] = Float(h) }
            }
        }
        }
        }
        }
        }
        }
    }

    /// Records the predictions of the batch from its logits.
    func finish(logits: UnsafeBufferPointer<Float>) {
        guard let store else { return }
        let k = network.classCount
        for (n, image) in batchImages.enumerated() {
            store.setPrediction(image: image, logits: UnsafeBufferPointer(rebasing: logits[(n * k)..<((n + 1) * k)]))
        }
    }
}

/// How every tap of a network is binned under one set of ranges: a binner per
/// channel (or one for the whole tap when its channels share the range), the
/// fused kernel's ranges, and entropy tables. Immutable, built once per
/// analysis and shared by its workers (for a ResNet-50's 94,000 channels the
/// binners alone are tens of megabytes).
final class TapBinning: @unchecked Sendable {
    // Immutable after init; the pointers are owned here and freed in deinit.
    /// Per tap, a binner per channel; empty when `sharedBinners[t]` serves them all.
    let binners: [[ChannelBinner]]
    /// Per tap, the binner all its channels share (layer and fixed ranges), if any.
    let sharedBinners: [ChannelBinner?]
    /// Per tap, the ranges of its channels for the fused AVX-512 kernel
    /// (one per channel, or one shared), or nil when a channel cannot take it.
    /// Kept out of Swift arrays so no range is copied per call.
    let vectorRanges: [UnsafeMutablePointer<cnns_binning>?]
    /// Per tap, c·log2 c for counts up to its values per channel.
    let tables: [EntropyTable]

    init(network: Network, ranges: [TapRange], bins: Int) {
        var shared: [ChannelBinner?] = []
        binners = zip(network.taps, ranges).map { tap, range in
            // One binner for a range all channels share (layer and fixed
            // ranges): its edge table is worth building once, not per channel.
            if let lo = range.lo.first, let hi = range.hi.first,
               range.lo.allSatisfy({ $0 == lo }), range.hi.allSatisfy({ $0 == hi }) {
                shared.append(ChannelBinner(bins: bins, lo: lo, hi: hi))
                return []
            }
            shared.append(nil)
            return (0..<tap.channels).map { ChannelBinner(bins: bins, lo: range.lo[$0], hi: range.hi[$0]) }
        }
        sharedBinners = shared
        vectorRanges = zip(binners, shared).map { tap, shared in
            let ranges = shared.map { [$0] } ?? tap
            guard !ranges.isEmpty, ranges.allSatisfy({ $0.vectorRange != nil }) else { return nil }
            let pointer = UnsafeMutablePointer<cnns_binning>.allocate(capacity: ranges.count)
            for (c, binner) in ranges.enumerated() { (pointer + c).initialize(to: binner.vectorRange ?? cnns_binning()) }
            return pointer
        }
        tables = network.taps.map { EntropyTable(maxCount: $0.valuesPerChannel) }
    }

    deinit {
        for pointer in vectorRanges { pointer?.deallocate() }
    }

    /// The binner of channel `c` of tap `t`.
    func binner(tap t: Int, channel c: Int) -> ChannelBinner { sharedBinners[t] ?? binners[t][c] }
}

/// Length of one sub-histogram in `countChannel`: bins + 1 (the last slot for
/// non-finite values) rounded up to whole vectors.
@inline(__always)
func histogramStride(bins: Int) -> Int { (bins + 1 + 15) / 16 * 16 }

/// One channel's bin indices (0...bins, `bins` for non-finite values) counted,
/// turned into its instance entropy and added to its class row and to the
/// image's layer histogram.
///
/// Long runs of one bin (the zeros after a ReLU) would make every increment
/// wait for the previous one to reach memory; values go round-robin to eight
/// sub-histograms instead, so eight chains advance at once. They are then
/// summed a vector at a time and put back to zero.
///
/// - Parameter hist: nine histograms of `histogramStride(bins:)` counts: eight
///   all zero on entry (and on exit), then the merged one.
@inline(__always)
func countChannel(_ indices: UnsafePointer<Int32>, count: Int, bins: Int,
                  hist: UnsafeMutablePointer<Int32>, table: EntropyTable, millerMadow: Bool,
                  classRow: UnsafeMutablePointer<UInt32>, layer: UnsafeMutablePointer<UInt64>) -> Double {
    let stride = histogramStride(bins: bins)
    let h0 = hist, h1 = hist + stride, h2 = hist + 2 * stride, h3 = hist + 3 * stride
    let h4 = hist + 4 * stride, h5 = hist + 5 * stride, h6 = hist + 6 * stride, h7 = hist + 7 * stride
    var i = 0
    while i + 8 <= count {
        h0[Int(indices[i])] &+= 1
        h1[Int(indices[i + 1])] &+= 1
        h2[Int(indices[i + 2])] &+= 1
        h3[Int(indices[i + 3])] &+= 1
        h4[Int(indices[i + 4])] &+= 1
        h5[Int(indices[i + 5])] &+= 1
        h6[Int(indices[i + 6])] &+= 1
        h7[Int(indices[i + 7])] &+= 1
        i += 8
    }
    while i < count { h0[Int(indices[i])] &+= 1; i += 1 }
    return finishChannel(count: count, bins: bins, hist: hist, table: table, millerMadow: millerMadow,
                         classRow: classRow, layer: layer)
}

/// The second half of counting a channel: sums the eight sub-histograms into
/// the ninth (putting them back to zero), and turns it into the channel's
/// instance entropy, its class row and the image's layer histogram.
@inline(__always)
func finishChannel(count: Int, bins: Int, hist: UnsafeMutablePointer<Int32>, table: EntropyTable, millerMadow: Bool,
                   classRow: UnsafeMutablePointer<UInt32>, layer: UnsafeMutablePointer<UInt64>) -> Double {
    let stride = histogramStride(bins: bins)
    let merged = hist + 8 * stride
    let zero = SIMD16<Int32>()
    var v = 0
    while v < stride {
        var sum = zero
        for k in 0..<8 {
            let p = UnsafeMutableRawPointer(hist + k * stride + v)
            sum &+= p.loadUnaligned(as: SIMD16<Int32>.self)
            p.storeBytes(of: zero, as: SIMD16<Int32>.self)
        }
        UnsafeMutableRawPointer(merged + v).storeBytes(of: sum, as: SIMD16<Int32>.self)
        v += 16
    }
    let h = table.bits(merged, bins: bins, total: count - Int(merged[bins]), millerMadow: millerMadow)
    for b in 0..<bins { classRow[b] &+= UInt32(bitPattern: merged[b]) }
    for b in 0...bins { layer[b] &+= UInt64(merged[b]) }
    return h
}

/// One channel's counts on the fused path: the sub-histograms 0..<subs hold
/// the running counts of the image's channels so far, slot 9 their sum before
/// this channel. Writes this channel's counts to slot 8, moves the running sum
/// on, adds the counts to the class row and returns the instance entropy.
@inline(__always)
func takeChannel(count: Int, bins: Int, hist: UnsafeMutablePointer<Int32>, subs: Int, table: EntropyTable,
                 millerMadow: Bool, classRow: UnsafeMutablePointer<UInt32>) -> Double {
    let stride = histogramStride(bins: bins)
    let channel = hist + 8 * stride, running = hist + 9 * stride
    @inline(__always) func load(_ k: Int, _ v: Int) -> SIMD16<Int32> {
        UnsafeRawPointer(hist + k * stride + v).loadUnaligned(as: SIMD16<Int32>.self)
    }
    var v = 0
    while v < stride {
        // Spelled out for the two counts in use: a loop over `subs` chained
        // every addition and did not unroll.
        var sum: SIMD16<Int32>
        if subs == 8 {
            sum = ((load(0, v) &+ load(1, v)) &+ (load(2, v) &+ load(3, v)))
                &+ ((load(4, v) &+ load(5, v)) &+ (load(6, v) &+ load(7, v)))
        } else if subs == 4 {
            sum = (load(0, v) &+ load(1, v)) &+ (load(2, v) &+ load(3, v))
        } else {
            sum = load(0, v)
            for k in 1..<max(1, subs) { sum &+= load(k, v) }
        }
        let before = UnsafeRawPointer(running + v).loadUnaligned(as: SIMD16<Int32>.self)
        UnsafeMutableRawPointer(channel + v).storeBytes(of: sum &- before, as: SIMD16<Int32>.self)
        UnsafeMutableRawPointer(running + v).storeBytes(of: sum, as: SIMD16<Int32>.self)
        v += 16
    }
    let h = table.bits(channel, bins: bins, total: count - Int(channel[bins]), millerMadow: millerMadow)
    for b in 0..<bins { classRow[b] &+= UInt32(bitPattern: channel[b]) }
    return h
}

/// Finds each tap's binning range (SPEC §3) on the calibration images.
enum Calibration {
    /// Per-channel min and max of the finite values.
    final class Extremes {
        var lo: [[Float]]
        var hi: [[Float]]
        init(network: Network) {
            lo = network.taps.map { Array(repeating: .infinity, count: $0.channels) }
            hi = network.taps.map { Array(repeating: -.infinity, count: $0.channels) }
        }

        func observe(_ a: TapActivation) {
            let tap = a.tap, hw = a.shape.dropFirst().reduce(1, *), channels = a.shape.first ?? 1
            guard let values = a.values.baseAddress else { return }
            for n in 0..<a.batch {
                for c in 0..<channels {
                    let x = values + (n * channels + c) * hw
                    var mn = lo[tap][c], mx = hi[tap][c]
                    for i in 0..<hw {
                        let v = x[i]
                        // Non-finite values never set a range: they are not binned.
                        let finite = v - v == 0
                        mn = finite && v < mn ? v : mn
                        mx = finite && v > mx ? v : mx
                    }
                    lo[tap][c] = mn
                    hi[tap][c] = mx
                }
            }
        }

        func merge(_ other: Extremes) {
            for t in lo.indices {
                for c in lo[t].indices {
                    lo[t][c] = Swift.min(lo[t][c], other.lo[t][c])
                    hi[t][c] = Swift.max(hi[t][c], other.hi[t][c])
                }
            }
        }
    }

    static func ranges(_ extremes: Extremes, mode: RangeMode) -> [TapRange] {
        zip(extremes.lo, extremes.hi).map { lo, hi in
            // A channel without finite values gets [0, 0]: all its values are then non-finite anyway.
            let clo = lo.map { $0.isFinite ? $0 : 0 }
            let chi = zip(hi, clo).map { $0.isFinite ? $0 : $1 }
            switch mode {
            case .channel:
                return TapRange(lo: clo, hi: chi)
            case .layer:
                let finiteLo = lo.filter(\.isFinite), finiteHi = hi.filter(\.isFinite)
                let l = finiteLo.min() ?? 0, h = finiteHi.max() ?? l
                return TapRange(lo: Array(repeating: l, count: lo.count), hi: Array(repeating: h, count: lo.count))
            case let .fixed(l, h):
                return TapRange(lo: Array(repeating: l, count: lo.count), hi: Array(repeating: h, count: lo.count))
            }
        }
    }
}
