import Dispatch
import Foundation
import SlicerEngine
import SlicerInfo

/// Identifies one CAR result: the model, data and preprocessing (as digests,
/// `CARCache.context`), the tap, the channels already ablated, and the greedy
/// target when the result has a pruning curve.
struct CARKey: Hashable, Sendable {
    var context: String
    var tap: Int
    var mask: AblationMask
    var keep: Int?

    var cacheKey: String { CARCache.key(context: context, tap: tap, mask: mask, keep: keep, seed: 0) }
}

/// A finished result and what the views need to name it.
struct CARRecord: Sendable {
    let key: CARKey
    let result: CARResult
    /// Model file name and epoch of the series (for the list of results).
    let modelName: String
    let epoch: Int
    /// Found in the on-disk cache rather than computed in this session.
    let fromDisk: Bool
}

/// What the app asks for: CAR of one tap of one checkpoint under a mask.
struct CARRequest: Sendable {
    let key: CARKey
    let input: ModelInput
    let epoch: Int
}

/// Every CAR result of the session, kept per model, data, tap, mask and greedy
/// target, and the one computation running (others queue behind it). Results
/// are never dropped: a second tap, a new mask, another model or Cancel leave
/// the finished ones in place; each is also written to the on-disk cache and
/// found there again in later sessions. Owned by the UI thread; the worker
/// posts news through a lock-protected inbox that `poll()` collects.
@MainActor
final class CARSession {
    let cache: CARCache?
    /// Finished results by key, and their keys in the order they arrived.
    private(set) var records: [CARKey: CARRecord] = [:]
    private(set) var order: [CARKey] = []
    /// The computation in progress: its request, progress and partial results.
    private(set) var running: (request: CARRequest, progress: CARProgress?, partial: CARPartial?)?
    private(set) var queued: [CARRequest] = []
    /// The last failure, with the request it belongs to.
    private(set) var failure: (key: CARKey, message: String)?

    private let worker = DispatchQueue(label: "cnnslicer.car")
    private let hasher = DispatchQueue(label: "cnnslicer.car-context")
    private let inbox = Shared(Inbox())
    /// Context digests per network. The network is held weakly (a switched-away model may
    /// be hundreds of megabytes) and compared by identity, so a reused identifier never
    /// finds another network's digest.
    private var contexts: [ObjectIdentifier: (network: WeakNetwork, images: String, context: String?)] = [:]
    /// Keys already looked up on disk.
    private var diskChecked: Set<CARKey> = []
    var wake: (@Sendable () -> Void)?
    /// For tests only: the worker waits after posting each partial result until `poll()`
    /// has taken it (at most 10 s), so that a test's frames see the run's partial results
    /// however fast the run is on the machine. The app never sets it.
    var holdsPartials = false

    struct Inbox: Sendable {
        var generation = 0
        var progress: (Int, CARProgress)?
        var partial: (Int, CARPartial)?
        /// Whether `poll()` has taken the posted partial result (see `holdsPartials`).
        var partialTaken = true
        var finished: [(generation: Int, record: CARRecord)] = []
        var loaded: [CARRecord] = []
        var failed: [(generation: Int, key: CARKey, message: String)] = []
        var contexts: [(ObjectIdentifier, String)] = []
        var contextErrors: [String] = []
    }

    init(cache: CARCache?) {
        self.cache = cache
    }

    // MARK: Lookups (every frame)

    /// The digest of `input`'s model, data and preprocessing, or nil while it is
    /// computed in the background (reading the model file takes a moment).
    func context(for input: ModelInput) -> String? {
        let id = ObjectIdentifier(input.network)
        if let known = contexts[id], known.network.value === input.network, known.images == input.images.source { return known.context }
        contexts = contexts.filter { $0.value.network.value != nil }
        contexts[id] = (WeakNetwork(input.network), input.images.source, nil)
        let inbox = self.inbox, wake = self.wake
        hasher.async {
            do {
                let context = try CARCache.context(input: input)
                inbox.withLock { $0.contexts.append((id, context)) }
            } catch {
                inbox.withLock { $0.contextErrors.append("\(error)") }
            }
            wake?()
        }
        return nil
    }

    /// The result for a tap under a mask: with the pruning curve when there is one.
    /// Looks on disk (in the background) the first time a key is asked for.
    func record(context: String, tap: Int, mask: AblationMask, keep: Int?, network: Network) -> CARRecord? {
        let plain = CARKey(context: context, tap: tap, mask: mask, keep: nil)
        let greedy = keep.map { CARKey(context: context, tap: tap, mask: mask, keep: $0) }
        for key in [greedy, plain].compactMap({ $0 }) where records[key] == nil { loadFromDisk(key, network: network) }
        return greedy.flatMap { records[$0] } ?? records[plain]
    }

    /// The newest result for a tap of this model and data under any mask (shown,
    /// marked as such, when the current mask has none).
    func latestRecord(context: String, tap: Int) -> CARRecord? {
        order.reversed().lazy.compactMap { self.records[$0] }.first { $0.key.context == context && $0.key.tap == tap }
    }

    func isRunning(_ key: CARKey) -> Bool { running?.request.key == key }
    func isQueued(_ key: CARKey) -> Bool { queued.contains { $0.key == key } }

    // MARK: Commands

    /// Runs (or queues behind the running one) CAR for `request`; nothing if it is
    /// already done, running or queued.
    func start(_ request: CARRequest) {
        let key = request.key
        guard records[key] == nil, !isRunning(key), !isQueued(key) else { return }
        if failure?.key == key { failure = nil }
        queued.append(request)
        if running == nil { startNext() }
    }

    /// Cancels the computation for `key` if it is running or queued; finished results stay.
    func cancel(_ key: CARKey) {
        queued.removeAll { $0.key == key }
        guard running?.request.key == key else { return }
        inbox.withLock { $0.generation += 1 }
        running = nil
        startNext()
    }

    /// Picks up what the workers posted.
    func poll() {
        let news = inbox.withLock { s -> Inbox in
            let copy = s
            s.finished = []; s.loaded = []; s.failed = []; s.contexts = []; s.contextErrors = []
            s.partialTaken = true
            return copy
        }
        for (id, context) in news.contexts where contexts[id]?.network.value != nil { contexts[id]?.context = context }
        for record in news.loaded where records[record.key] == nil { add(record) }
        var runningDone = false
        for (generation, record) in news.finished where generation == news.generation {
            add(record)
            runningDone = true
        }
        for (generation, key, message) in news.failed where generation == news.generation {
            failure = (key, message)
            runningDone = true
        }
        if runningDone {
            running = nil
            startNext()
        } else if running != nil {
            if let (g, p) = news.progress, g == news.generation { running?.progress = p }
            if let (g, p) = news.partial, g == news.generation { running?.partial = p }
        }
        if let error = news.contextErrors.first, failure == nil, let key = running?.request.key ?? order.last {
            failure = (key, error)
        }
    }

    // MARK: Internals

    private func add(_ record: CARRecord) {
        if records[record.key] == nil { order.append(record.key) }
        records[record.key] = record
    }

    private func loadFromDisk(_ key: CARKey, network: Network) {
        guard let cache, diskChecked.insert(key).inserted else { return }
        let inbox = self.inbox, wake = self.wake
        let name = URL(fileURLWithPath: network.path).lastPathComponent
        hasher.async {
            guard let result = cache.load(key: key.cacheKey, network: network) else { return }
            inbox.withLock { $0.loaded.append(CARRecord(key: key, result: result, modelName: name, epoch: -1, fromDisk: true)) }
            wake?()
        }
    }

    private func startNext() {
        guard running == nil, !queued.isEmpty else { return }
        let request = queued.removeFirst()
        running = (request, nil, nil)
        let generation = inbox.withLock { s -> Int in
            s.generation += 1
            s.progress = nil
            s.partial = nil
            return s.generation
        }
        let inbox = self.inbox, wake = self.wake, cache = self.cache, holds = holdsPartials
        let name = URL(fileURLWithPath: request.input.network.path).lastPathComponent
        worker.async {
            let key = request.key
            let stale: @Sendable () -> Bool = { inbox.withLock { $0.generation != generation } }
            func finish(_ result: CARResult, fromDisk: Bool) {
                let record = CARRecord(key: key, result: result, modelName: name, epoch: request.epoch, fromDisk: fromDisk)
                inbox.withLock { $0.finished.append((generation, record)) }
                wake?()
            }
            if let cached = cache?.load(key: key.cacheKey, network: request.input.network) {
                return finish(cached, fromDisk: true)
            }
            do {
                let engine = try CAREngine(input: request.input, tap: key.tap, baseMask: key.mask)
                let result = try engine.run(keep: key.keep, isCancelled: stale, progress: { p in
                    inbox.withLock { if $0.generation == generation { $0.progress = (generation, p) } }
                    wake?()
                }, partial: { p in
                    inbox.withLock { if $0.generation == generation { $0.partial = (generation, p); $0.partialTaken = false } }
                    wake?()
                    guard holds else { return }
                    let deadline = Date().addingTimeInterval(10)
                    while !inbox.withLock({ $0.partialTaken }) && !stale() && Date() < deadline { usleep(1000) }
                })
                // A failed cache write costs the next session a rerun, not this result.
                try? cache?.save(result, key: key.cacheKey)
                finish(result, fromDisk: false)
            } catch InfoError.cancelled {
            } catch {
                inbox.withLock { $0.failed.append((generation, key, "\(error)")) }
                wake?()
            }
        }
    }
}

extension CARSession {
    /// The greedy target the app uses: half of the channels left to prune (nil when fewer than two).
    static func greedyTarget(channels: Int, tap: Int, mask: AblationMask) -> Int? {
        let available = channels - (mask.channels[tap]?.count ?? 0)
        return available >= 2 ? available / 2 : nil
    }
}

/// A network held without keeping it alive.
final class WeakNetwork {
    weak var value: Network?
    init(_ value: Network) { self.value = value }
}
