import COpenBLAS
import Dispatch
import Synchronization

/// Processor threads to use: the machine's cores, unless CNNSLICER_THREADS says otherwise.
public func defaultThreadCount() -> Int {
    if let text = ProcessInfo.processInfo.environment["CNNSLICER_THREADS"], let n = Int(text), n > 0 { return n }
    return max(1, ProcessInfo.processInfo.activeProcessorCount)
}

import Foundation

/// Runs many batches through a network on several threads, one executor per
/// thread, with OpenBLAS kept single-threaded so the two levels of parallelism
/// never oversubscribe the cores.
public final class BatchRunner: Sendable {
    public let network: Network
    public let batchSize: Int
    public let threads: Int
    /// Executors kept between runs: their buffers are allocated and touched once.
    private let idle = Mutex<[UncheckedBox<Executor>]>([])

    /// Whether the workers' executors take the inference plan for runs with
    /// no observer and no mask (`Network.makeExecutor(capacity:fusesUnobservedRuns:)`).
    public let fusesUnobservedRuns: Bool

    public init(network: Network, batchSize: Int = 64, threads: Int = defaultThreadCount(),
                fusesUnobservedRuns: Bool = false) {
        self.network = network
        self.fusesUnobservedRuns = fusesUnobservedRuns
        self.batchSize = max(1, batchSize)
        self.threads = max(1, threads)
        openblas_set_num_threads(1)
    }

    /// Processes `total` images in batches.
    ///
    /// - Parameters:
    ///   - fill: writes the images of a range into the executor's input buffer.
    ///   - process: runs the batch (usually `executor.run(count:observer:)`) and
    ///     consumes the result; `worker` identifies the thread for per-thread state.
    ///   - isCancelled: checked between batches.
    /// Errors thrown by `fill` or `process` stop all workers; the first is rethrown.
    public func run(total: Int,
                    isCancelled: @Sendable () -> Bool = { false },
                    fill: @Sendable (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void,
                    process: @Sendable (_ worker: Int, _ range: Range<Int>, _ executor: Executor) throws -> Void) throws {
        guard total > 0 else { return }
        let batches = (total + batchSize - 1) / batchSize
        let units = (0..<batches).map { b in [(b * batchSize)..<min(total, (b + 1) * batchSize)] }
        try run(units: units, isCancelled: isCancelled, fill: fill, process: process)
    }

    /// Processes units of work, each a list of batches (ranges of at most
    /// `batchSize` images) that one worker runs in sequence, so per-worker
    /// state can follow a unit from one batch to the next — the analysis keeps
    /// a class's histograms on the one worker that runs all its images. Units
    /// go to whichever worker is free, in order.
    public func run(units: [[Range<Int>]],
                    isCancelled: @Sendable () -> Bool = { false },
                    fill: @Sendable (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void,
                    process: @Sendable (_ worker: Int, _ range: Range<Int>, _ executor: Executor) throws -> Void) throws {
        let units = units.filter { !$0.isEmpty }
        guard !units.isEmpty else { return }
        precondition(units.allSatisfy { $0.allSatisfy { $0.count <= batchSize } }, "a batch larger than \(batchSize) images")
        let workers = min(threads, units.count)
        var executors = idle.withLock { pool in
            let taken = Array(pool.suffix(workers))
            pool.removeLast(taken.count)
            return taken
        }
        while executors.count < workers {
            executors.append(UncheckedBox(try network.makeExecutor(capacity: batchSize, fusesUnobservedRuns: fusesUnobservedRuns)))
        }
        // Executors go back to the pool whatever happens; a run holds them alone.
        defer { idle.withLock { $0.append(contentsOf: executors) } }
        let state = Mutex<(next: Int, error: (any Error)?)>((0, nil))
        let boxes = UncheckedBox(executors)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let executor = boxes.value[worker].value
            while true {
                let unit: Int? = state.withLock { s in
                    guard s.error == nil, s.next < units.count else { return nil }
                    defer { s.next += 1 }
                    return s.next
                }
                guard let unit else { return }
                for range in units[unit] where !range.isEmpty {
                    guard !isCancelled(), state.withLock({ $0.error == nil }) else { return }
                    do {
                        try fill(range, executor.inputBuffer)
                        try process(worker, range, executor)
                    } catch {
                        state.withLock { s in if s.error == nil { s.error = error } }
                        return
                    }
                }
            }
        }
        if let error = state.withLock({ $0.error }) { throw error }
    }
}

/// Hands non-Sendable per-thread objects to the worker that alone uses them.
public struct UncheckedBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
