import Foundation
import SlicerEngine
import Synchronization

/// One tap's numbers per class and channel — the channel matrix's class
/// columns: the ensemble entropy H_E(S_y,l,c) of each class's pooled values
/// and the mean instance entropy of its images (SPEC §3), for chosen classes.
///
/// With every class's channel histograms kept (small K) the table comes
/// straight from the histograms; otherwise (`ClassChannelLayout.onDemand`)
/// `Analyzer.classChannelTable` computes it exactly by running the network up
/// to the tap for those classes' images only.
public struct ClassChannelTable: Sendable, Equatable {
    public let tap: Int
    /// Class indices, in the order of the rows below.
    public let classes: [Int]
    /// Images of each class in the analysed set.
    public let imageCounts: [Int]
    /// [row][channel]; nil for a class without images.
    public let ensembleEntropy: [[Double?]]
    /// Mean instance entropy [row][channel]; nil for a class without images.
    public let instanceEntropy: [[Double?]]

    public func values(ensemble: Bool) -> [[Double?]] { ensemble ? ensembleEntropy : instanceEntropy }

    /// The row of class `k`, if the table has it.
    public func row(ofClass k: Int) -> Int? { classes.firstIndex(of: k) }
}

extension HistogramSet {
    /// The table from kept channel histograms, when every one of `classes` is
    /// open (always so in the kept layout); nil otherwise.
    public func classChannelTable(tap t: Int, classes: [Int], millerMadow: Bool) -> ClassChannelTable? {
        guard taps.indices.contains(t), classes.allSatisfy({ (0..<classCount).contains($0) }) else { return nil }
        let h = taps[t]
        guard classes.allSatisfy({ h.openIndex(of: $0) != nil }), h.channelInstanceSum.count == h.slots * h.channels else { return nil }
        let empty = [Double?](repeating: nil, count: h.channels)
        return ClassChannelTable(
            tap: t, classes: classes, imageCounts: classes.map { imageCounts[$0] },
            ensembleEntropy: classes.map { k in
                imageCounts[k] == 0 ? empty : (0..<h.channels).map { Entropy.bits(h.histogram(channel: $0, classes: [k]), millerMadow: millerMadow) }
            },
            instanceEntropy: classes.map { k in
                imageCounts[k] == 0 ? empty : (0..<h.channels).map { h.channelInstanceSum[k * h.channels + $0].value / Double(imageCounts[k]) }
            })
    }
}

extension Analyzer {
    /// Tap `tap`'s class × channel table for `classes`, exactly, over the
    /// images of those classes among `images` (default: the whole set): runs
    /// the network only as far as the tap, only for those images, and bins
    /// them with `ranges` — the same bins the full analysis counts. Each
    /// class is run by one worker and reduced as soon as its last image is
    /// in, so memory is one class's channel histograms per worker whatever
    /// the number of classes.
    ///
    /// Blocking; call it off the UI thread. Throws `InfoError.cancelled` once
    /// `isCancelled` says so (checked between batches). `progress` is told
    /// (images done, images in all) once before the first batch and after each
    /// chunk of images the executor hands over is binned (a few images at a
    /// time) — the counts only grow, and the last call has them equal.
    public func classChannelTable(tap t: Int, classes: [Int], images: [Int]? = nil, ranges: [TapRange],
                                  isCancelled: @Sendable () -> Bool = { false },
                                  progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil) throws -> ClassChannelTable {
        guard network.taps.indices.contains(t) else { throw InfoError.invalid("tap \(t) is not one of the model's \(network.taps.count) taps") }
        guard ranges.count == network.taps.count else { throw InfoError.invalid("ranges for \(ranges.count) taps, the model has \(network.taps.count)") }
        let k = network.classCount
        let wanted = Set(classes.filter { (0..<k).contains($0) })
        let slots = self.slots
        let chosen = (images ?? Array(0..<input.images.count)).filter { wanted.contains(slots[$0]) }
        let (order, units) = Analyzer.classUnits(chosen, slots: slots, batchSize: batchSize)
        let totals = order.reduce(into: [Int: Int]()) { $0[slots[$1], default: 0] += 1 }
        let info = network.taps[t], bins = settings.bins, mm = settings.millerMadow
        let channels = info.channels, hw = info.valuesPerChannel
        let r = ranges[t]
        // One binner (one edge table) when the channels share the range, as in the full analysis.
        let shared = r.lo.allSatisfy({ $0 == r.lo.first }) && r.hi.allSatisfy({ $0 == r.hi.first })
        let binners = shared ? [ChannelBinner(bins: bins, lo: r.lo[0], hi: r.hi[0])]
            : (0..<channels).map { ChannelBinner(bins: bins, lo: r.lo[$0], hi: r.hi[$0]) }
        let table = EntropyTable(maxCount: hw)
        let results = Mutex<[Int: (ensemble: [Double], instance: [Double])]>([:])
        final class Worker: @unchecked Sendable {
            // Touched only by its own thread.
            var slot = -1, seen = 0
            var counts: [UInt64]
            // Exact, as the full analysis's sums: the table's instance entropies
            // are then the same bits as the kept layout's.
            var sums: [ExactSum]
            var scratch: [Int32]
            var hist: [Int32]
            init(channels: Int, bins: Int, hw: Int) {
                counts = Array(repeating: 0, count: channels * bins)
                sums = Array(repeating: 0, count: channels)
                scratch = Array(repeating: 0, count: hw)
                hist = Array(repeating: 0, count: bins + 1)
            }
        }
        let workers = (0..<threads).map { _ in Worker(channels: channels, bins: bins, hw: hw) }
        let runner = BatchRunner(network: network, batchSize: batchSize, threads: threads)
        let mask = self.mask
        // Images binned so far, over all workers; told under the lock so that the calls
        // see the counts in the order they grew.
        let done = Mutex(0)
        let total = order.count
        progress?(0, total)
        try runner.run(units: units, isCancelled: isCancelled, fill: { range, buffer in
            try input.fill(order[range], into: buffer)
        }, process: { worker, range, executor in
            let w = workers[worker]
            executor.run(count: range.count, through: t, mask: mask) { activation in
                guard let values = activation.values.baseAddress else { return }
                for n in 0..<activation.batch {
                    let slot = slots[order[range.lowerBound + activation.firstImage + n]]
                    if w.slot != slot { w.slot = slot; w.seen = 0 }
                    for c in 0..<channels {
                        w.scratch.withUnsafeMutableBufferPointer { scratch in
                            w.hist.withUnsafeMutableBufferPointer { hist in
                                _ = binners[shared ? 0 : c].bin(values + (n * channels + c) * hw, count: hw, into: scratch.baseAddress!)
                                hist.update(repeating: 0)
                                for i in 0..<hw { hist[Int(scratch[i])] += 1 }
                                let h = table.bits(hist.baseAddress!, bins: bins, total: hw - Int(hist[bins]), millerMadow: mm)
                                w.sums[c] += h
                                for b in 0..<bins { w.counts[c * bins + b] &+= UInt64(hist[b]) }
                            }
                        }
                    }
                    w.seen += 1
                    if w.seen == totals[slot] {
                        // The class is complete on this worker: reduce it.
                        let ensemble = (0..<channels).map { c in
                            Entropy.bits(w.counts[(c * bins)..<((c + 1) * bins)], millerMadow: mm)
                        }
                        let instance = w.sums.map { $0.value / Double(w.seen) }
                        results.withLock { $0[slot] = (ensemble, instance) }
                        w.counts.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
                        w.sums.withUnsafeMutableBufferPointer { $0.update(repeating: .zero) }
                        w.slot = -1
                    }
                }
                // Per chunk the executor hands over (a few images), not per batch: a
                // ResNet-50's table for 40 classes of one image each is one batch.
                if let progress { done.withLock { $0 += activation.batch; progress($0, total) } }
            }
        })
        if isCancelled() { throw InfoError.cancelled }
        let finished = results.withLock { $0 }
        let empty = [Double?](repeating: nil, count: channels)
        return ClassChannelTable(tap: t, classes: classes, imageCounts: classes.map { totals[$0] ?? 0 },
                                 ensembleEntropy: classes.map { finished[$0].map { $0.ensemble.map { Optional($0) } } ?? empty },
                                 instanceEntropy: classes.map { finished[$0].map { $0.instance.map { Optional($0) } } ?? empty })
    }
}
