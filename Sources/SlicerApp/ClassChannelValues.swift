import Dispatch
import SlicerEngine
import SlicerInfo

/// The class × channel values of one tap that views ask for (the channel
/// matrix's class columns), exact per SPEC §3, without the app ever holding
/// every class's channel histograms.
///
/// For models with few classes the analysis keeps those histograms and the
/// table is derived from the newest snapshot at once (growing with it). For
/// many classes (ImageNet's 1,000) the engine computes the table in the
/// background for the requested classes only, by running the network up to
/// the tap for their images; a request for other classes or another tap makes
/// the running one stale, and it stops at its next batch.
///
/// Owned by `AppModel` (UI thread); the background work reports through a lock.
@MainActor
final class ClassChannelValues {
    struct Key: Hashable, Sendable {
        var epoch: Int
        var generation: Int
        var tap: Int
        var classes: [Int]
        /// Images in the snapshot the table came from (kept histograms grow with it).
        var imagesDone: Int
    }

    private var current: (key: Key, table: ClassChannelTable)?
    private var requested: Key?
    /// The newest request's id and its result, filled by the background queue.
    private let inbox = Shared(Inbox())

    struct Inbox: Sendable {
        var id = 0
        var result: (Key, ClassChannelTable)?
        var error: String?
        /// The running request's images binned and in all (nil until it starts).
        var progress: (done: Int, total: Int)?
    }
    /// Tests only: called after each chunk of an on-demand table's images is binned
    /// (e.g. to slow the work down enough to watch its progress frame by frame).
    var afterChunk: (@Sendable () -> Void)?
    private let queue = DispatchQueue(label: "cnnslicer.class-channels")

    /// The table for `tap` and `classes` from `engine`'s newest snapshot, or nil
    /// while it is being computed (`wake` is called when it arrives).
    func table(engine: AnalysisEngine, epoch: Int, tap: Int, classes: [Int],
               wake: (@Sendable () -> Void)?) -> ClassChannelTable? {
        guard let snapshot = engine.snapshot, let ranges = snapshot.ranges else { return nil }
        let kept = snapshot.keepsClassChannels
        let key = Key(epoch: epoch, generation: snapshot.generation, tap: tap, classes: classes,
                      imagesDone: kept ? snapshot.progress.imagesDone : 0)
        if let current, current.key == key { return current.table }
        if kept, let histograms = snapshot.histograms,
           let table = histograms.classChannelTable(tap: tap, classes: classes, millerMadow: snapshot.request.settings.millerMadow) {
            current = (key, table)
            return table
        }
        let (arrived, _) = inbox.withLock { ($0.result, $0.error) }
        if let (k, table) = arrived, k == key {
            current = (key, table)
            return table
        }
        if requested != key {
            requested = key
            let id = inbox.withLock { s -> Int in s.id += 1; s.result = nil; s.progress = nil; return s.id }
            let request = snapshot.request
            let box = inbox
            let afterChunk = self.afterChunk
            queue.async {
                let stale: @Sendable () -> Bool = { box.withLock { $0.id != id } }
                // The work's own count of images binned; the view is woken when the whole
                // percentage it shows changes, not for every batch.
                let progress: @Sendable (Int, Int) -> Void = { done, total in
                    let changed = box.withLock { s -> Bool in
                        guard s.id == id else { return false }
                        let before = s.progress.map { Self.percent($0.done, $0.total) }
                        s.progress = (done, total)
                        return before != Self.percent(done, total)
                    }
                    if changed { wake?() }
                    if done > 0 { afterChunk?() }
                }
                do {
                    let table = try engine.classChannelTable(tap: tap, classes: classes, request: request, ranges: ranges,
                                                             isCancelled: stale, progress: progress)
                    box.withLock { s in if s.id == id { s.result = (key, table) } }
                    wake?()
                } catch InfoError.cancelled {
                } catch {
                    box.withLock { s in if s.id == id { s.error = "\(error)" } }
                    wake?()
                }
            }
        }
        return nil
    }

    /// Whether a requested table is still being computed.
    var isComputing: Bool {
        guard let requested, current?.key != requested else { return false }
        return inbox.withLock { $0.error == nil }
    }

    /// How far the requested table is: images binned and in all, while it is being
    /// computed (0 of its images before its first batch); nil when nothing is computing.
    var progress: (done: Int, total: Int)? {
        guard isComputing else { return nil }
        return inbox.withLock { $0.progress } ?? (0, 0)
    }

    /// Whole percent of `done` in `total` (rounded down: 100 only when all are done).
    nonisolated static func percent(_ done: Int, _ total: Int) -> Int {
        total > 0 ? min(100, done * 100 / total) : 0
    }

    /// An error from the background work, once.
    func takeError() -> String? {
        inbox.withLock { s in defer { s.error = nil }; return s.error }
    }

    /// Drops everything (new model or data).
    func reset() {
        current = nil
        requested = nil
        inbox.withLock { $0.id += 1; $0.result = nil; $0.error = nil; $0.progress = nil }
    }
}
