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

    public init(network: Network, batchSize: Int = 64, threads: Int = defaultThreadCount()) {
        self.network = network
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
        let workers = min(threads, batches)
        var executors = idle.withLock { pool in
            let taken = Array(pool.suffix(workers))
            pool.removeLast(taken.count)
            return taken
        }
        while executors.count < workers {
            executors.append(UncheckedBox(try network.makeExecutor(capacity: batchSize)))
        }
        // Executors go back to the pool whatever happens; a run holds them alone.
        defer { idle.withLock { $0.append(contentsOf: executors) } }
        let state = Mutex<(next: Int, error: (any Error)?)>((0, nil))
        let boxes = UncheckedBox(executors)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let executor = boxes.value[worker].value
            while true {
                let batch: Int? = state.withLock { s in
                    guard s.error == nil, s.next < batches else { return nil }
                    defer { s.next += 1 }
                    return s.next
                }
                guard let batch, !isCancelled() else { return }
                let range = (batch * batchSize)..<min(total, (batch + 1) * batchSize)
                do {
                    try fill(range, executor.inputBuffer)
                    try process(worker, range, executor)
                } catch {
                    state.withLock { s in if s.error == nil { s.error = error } }
                    return
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
