import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A view of one tap's values for the images of a batch, valid only during the
/// observer call (the buffer is reused by later nodes).
///
/// The executor may hand over a run's images in several calls per tap (see
/// `ExecutionPlan.imagesPerChunk`): `firstImage` says where in the run the
/// call's images start. Calls for one tap come in increasing `firstImage`.
public struct TapActivation {
    public let tap: Int
    /// Images in this call.
    public let batch: Int
    /// Index in the run of this call's first image.
    public let firstImage: Int
    /// Per-image shape, as in `TapInfo.shape`.
    public let shape: [Int]
    /// `batch × shape` values, image-major (NCHW).
    public let values: UnsafeBufferPointer<Float>

    public init(tap: Int, batch: Int, firstImage: Int = 0, shape: [Int], values: UnsafeBufferPointer<Float>) {
        self.tap = tap
        self.batch = batch
        self.firstImage = firstImage
        self.shape = shape
        self.values = values
    }
}

/// Channels to zero at taps: ablation for CAR (SPEC §4).
public struct AblationMask: Sendable, Equatable, Hashable {
    public var channels: [Int: Set<Int>]

    public init(_ channels: [Int: Set<Int>] = [:]) { self.channels = channels.filter { !$0.value.isEmpty } }

    public var isEmpty: Bool { channels.isEmpty }

    public func adding(tap: Int, channel: Int) -> AblationMask {
        var copy = self
        copy.channels[tap, default: []].insert(channel)
        return copy
    }
}

/// Runs one planned network on one thread. Not thread-safe: give each worker its own.
public final class Executor {
    public let network: Network
    let plan: ExecutionPlan
    /// The inference plan (Fusion.swift) for runs nobody observes, when the
    /// executor was made with `fusesUnobservedRuns`. It shares the buffers:
    /// each sized for the larger of the two plans' needs.
    let fusedPlan: ExecutionPlan?
    /// Whether the last `run(count:mask:observer:)` took the inference plan.
    public private(set) var lastRunWasFused = false
    // Readable in the module (not private) so that `TapAblationRunner` can run
    // part of the plan on these buffers (TapAblation.swift).
    private(set) var buffers: [UnsafeMutablePointer<Float>]
    let scratch: UnsafeMutablePointer<Float>

    public var capacity: Int { plan.capacity }

    /// Processor seconds of the calling thread spent in each node (by
    /// `orderedNodes` index) when profiling is on: the thread's own clock, not
    /// the wall clock, so that a profile on a machine shared with other work
    /// still says where this run's time goes.
    public private(set) var nodeSeconds: [Int: Double] = [:]
    /// Time every kernel call; off by default because reading the clock costs.
    public var isProfiling = false

    init(network: Network, plan: ExecutionPlan, fusedPlan: ExecutionPlan? = nil) {
        self.network = network
        self.plan = plan
        self.fusedPlan = fusedPlan
        buffers = Executor.bufferSizes(plan, fusedPlan).map { size in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(size, 1))
            p.initialize(repeating: 0, count: max(size, 1))
            return p
        }
        let scratchSize = max(plan.scratchSize, fusedPlan?.scratchSize ?? 0, 1)
        scratch = .allocate(capacity: scratchSize)
        scratch.initialize(repeating: 0, count: scratchSize)
    }

    /// Floats per physical buffer for both plans: buffer i serves as buffer i
    /// of either (both take their input from buffer 0, so it is filled once).
    static func bufferSizes(_ plan: ExecutionPlan, _ fused: ExecutionPlan?) -> [Int] {
        guard let fused else { return plan.bufferSizes }
        return (0..<max(plan.bufferSizes.count, fused.bufferSizes.count)).map { i in
            max(i < plan.bufferSizes.count ? plan.bufferSizes[i] : 0, i < fused.bufferSizes.count ? fused.bufferSizes[i] : 0)
        }
    }

    deinit {
        for b in buffers { b.deallocate() }
        scratch.deallocate()
    }

    /// The buffer the next run reads its input from: fill `count × inputShape`
    /// floats here to avoid a copy, then call `run(count:)`.
    public var inputBuffer: UnsafeMutablePointer<Float> { buffers[plan.inputBuffer] }

    /// Runs `count` images already written to `inputBuffer`.
    ///
    /// - Returns: the logits, `count × classCount`, valid until the next run.
    @discardableResult
    public func run(count: Int, mask: AblationMask = AblationMask(),
                    observer: ((TapActivation) -> Void)? = nil) -> UnsafeBufferPointer<Float> {
        precondition(count > 0 && count <= plan.capacity, "batch of \(count) outside 1...\(plan.capacity)")
        if observer == nil && mask.isEmpty, let fusedPlan {
            lastRunWasFused = true
            runSteps(0..<fusedPlan.steps.count, of: fusedPlan, count: count, mask: mask, observer: nil)
            return UnsafeBufferPointer(start: buffers[fusedPlan.outputBuffer], count: count * network.classCount)
        }
        lastRunWasFused = false
        let taps = network.taps
        if !mask.isEmpty { applyMask(mask, tap: 0, buffer: inputBuffer, count: count) }
        if let observer {
            observer(TapActivation(tap: 0, batch: count, shape: taps[0].shape,
                                   values: UnsafeBufferPointer(start: inputBuffer, count: count * taps[0].valuesPerImage)))
        }
        runSteps(0..<plan.steps.count, count: count, mask: mask, observer: observer)
        return UnsafeBufferPointer(start: buffers[plan.outputBuffer], count: count * network.classCount)
    }

    /// Runs `count` images already written to `inputBuffer` only as far as tap
    /// `tap` — the steps up to the one that produces it — and hands that tap's
    /// values to `observer` (possibly in several calls, as `run` does). For work
    /// that needs one tap, not the logits: the class × channel tables that the
    /// analysis computes on demand. The values are those of a whole run, bit
    /// for bit: the same steps run in the same chunks.
    public func run(count: Int, through tap: Int, mask: AblationMask = AblationMask(),
                    observer: (TapActivation) -> Void) {
        precondition(count > 0 && count <= plan.capacity, "batch of \(count) outside 1...\(plan.capacity)")
        precondition(network.taps.indices.contains(tap), "tap \(tap) outside the network's \(network.taps.count) taps")
        if !mask.isEmpty { applyMask(mask, tap: 0, buffer: inputBuffer, count: count) }
        if tap == 0 {
            observer(TapActivation(tap: 0, batch: count, shape: network.taps[0].shape,
                                   values: UnsafeBufferPointer(start: inputBuffer, count: count * network.taps[0].valuesPerImage)))
            return
        }
        guard let last = plan.steps.firstIndex(where: { $0.tap == tap }) else { return }
        withoutActuallyEscaping(observer) { observer in
            runSteps(0..<(last + 1), count: count, mask: mask) { activation in
                if activation.tap == tap { observer(activation) }
            }
        }
    }

    /// Runs plan steps `range` on the buffers as they are, applying `mask` after
    /// each tap (the input tap's mask is the caller's business). Steps of the
    /// image-wise part run a few images at a time through all of them, so that
    /// each chunk's activations are still in cache for the next step (and for
    /// the observer); the rest run on the whole batch at once. CAR runs parts
    /// of the network this way too (TapAblation.swift).
    func runSteps(_ range: Range<Int>, count: Int, mask: AblationMask,
                  observer: ((TapActivation) -> Void)? = nil) {
        runSteps(range, of: plan, count: count, mask: mask, observer: observer)
    }

    private func runSteps(_ range: Range<Int>, of plan: ExecutionPlan, count: Int, mask: AblationMask,
                          observer: ((TapActivation) -> Void)?) {
        guard !range.isEmpty else { return }
        let imagewise = range.lowerBound..<max(range.lowerBound, min(range.upperBound, plan.imagewiseSteps))
        var first = 0
        while first < count, !imagewise.isEmpty {
            let n = min(plan.imagesPerChunk, count - first)
            for i in imagewise { runStep(plan.steps[i], first: first, count: n, mask: mask, observer: observer) }
            first += n
        }
        for i in imagewise.upperBound..<range.upperBound { runStep(plan.steps[i], first: 0, count: count, mask: mask, observer: observer) }
    }

    /// The calling thread's processor time in seconds.
    static func threadSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Runs `step` for images `first ..< first + count` of the batch.
    @inline(__always)
    private func runStep(_ step: PlanStep, first: Int, count: Int, mask: AblationMask,
                         observer: ((TapActivation) -> Void)?) {
        let output = buffers[step.outputBuffer] + first * step.outputValuesPerImage
        let inputs = zip(step.inputBuffers, step.inputValuesPerImage).map { buffers[$0] + first * $1 }
        let started = isProfiling ? Executor.threadSeconds() : 0
        step.kernel.run(KernelIO(inputs: inputs, output: output, scratch: scratch, batch: count))
        if isProfiling {
            nodeSeconds[step.nodeIndex, default: 0] += Executor.threadSeconds() - started
        }
        guard let tap = step.tap else { return }
        if !mask.isEmpty { applyMask(mask, tap: tap, buffer: output, count: count) }
        if let observer {
            observer(TapActivation(tap: tap, batch: count, firstImage: first, shape: network.taps[tap].shape,
                                   values: UnsafeBufferPointer(start: output, count: count * step.outputValuesPerImage)))
        }
    }

    /// Copies `input` (count × inputShape floats) in and runs.
    @discardableResult
    public func run(input: UnsafeBufferPointer<Float>, count: Int, mask: AblationMask = AblationMask(),
                    observer: ((TapActivation) -> Void)? = nil) -> UnsafeBufferPointer<Float> {
        let n = count * network.inputShape.reduce(1, *)
        precondition(input.count >= n, "input holds \(input.count) floats, \(n) needed")
        if let base = input.baseAddress { inputBuffer.update(from: base, count: n) }
        return run(count: count, mask: mask, observer: observer)
    }

    private func applyMask(_ mask: AblationMask, tap: Int, buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard let channels = mask.channels[tap] else { return }
        let info = network.taps[tap]
        let per = info.valuesPerChannel, c = info.channels
        for n in 0..<count {
            for ch in channels where ch >= 0 && ch < c {
                (buffer + (n * c + ch) * per).update(repeating: 0, count: per)
            }
        }
    }
}
