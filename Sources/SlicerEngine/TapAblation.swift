import COpenBLAS
import Foundation

// Ablation of a tap's channels without recomputing what does not change
// (SPEC §4, CAR). Two exact facts are used:
//
// 1. Nothing before the tap depends on the ablation: the plan runs up to the
//    tap once per chunk of images, the buffers the rest of the plan reads are
//    kept, and each ablation restores them, zeroes its channels at the tap and
//    runs only the steps after the tap. These are the very kernel calls
//    `Executor.run(count:mask:)` makes on the very same values, so the logits
//    are identical bit for bit ("exact" logits).
//
// 2. When the tap flows through channel-separable operators (BatchNormalization,
//    activations, pooling: each output channel depends only on the same input
//    channel) into a single linear consumer (Conv, Gemm, MatMul by a constant)
//    and nowhere else, zeroing channel c at the tap replaces channel c at the
//    consumer's input by a fixed plane v_c (the chain applied to a zero plane,
//    the same for every image; 0 for ReLU/pooling chains, not for BN). The
//    consumer being linear in each input channel, its output under the ablation is
//        y_c = y − W[:, c] ⊛ (x_c − v_c)
//    which costs 1/C of the consumer, and only the steps after the consumer run
//    ("fast" logits). This is exact algebra, but the rounding differs from a
//    recomputation, so callers must confirm near-ties with the exact logits
//    (SlicerInfo's CAR does: an image whose top-two margin is tiny is redone exactly).
//
// 3. When the consumer is a Conv followed by channel-separable operators, a second
//    convolution, monotone operators and the final Gemm, that second convolution
//    is half of the network: its change is bounded in 8-bit integers instead, and
//    most images' predictions are certain without computing it (BoundedStage.swift).

/// How the plan continues after one tap, for ablating that tap's channels.
/// Built once per network and tap; immutable and shareable between threads.
public final class TapAblationPlan: @unchecked Sendable {
    // Immutable after init. `@unchecked` because kernels hold `WeightBuffer`s
    // (Sendable classes) behind the existential `any Kernel`.

    public let network: Network
    public let tap: TapInfo

    /// What the shortcut of fact 2 goes through, for messages ("MaxPool → Conv '/4/Conv'"),
    /// or nil when ablations recompute every step after the tap.
    public let shortcutDescription: String?
    /// Why there is no shortcut, when there is none.
    public let noShortcutReason: String?
    /// What the bounded second stage goes through ("BatchNormalization → Relu → MaxPool →
    /// Conv '/8/Conv' (8-bit bound) → … → Gemm '/14/Gemm'"), or nil when it does not apply.
    public var boundedStageDescription: String? { boundedStage?.description }

    /// Node indices (`network.orderedNodes`) of the tap's producer (nil for the input),
    /// the channel-separable chain, and the linear consumer.
    let tapNode: Int?
    let chainNodes: [Int]
    let linearNode: Int?
    /// Taps produced inside the chain (a mask there disables the shortcut).
    let chainTaps: Set<Int>
    /// The chain applied to an all-zero tap: C × planeSize floats (the v_c of fact 2).
    let zeroPlanes: [Float]
    /// Values per channel at the linear consumer's input.
    let planeSize: Int
    /// Fact 3, where the graph after the linear consumer allows it.
    let boundedStage: BoundedStage?
    /// Floats per image of the linear consumer's output (what a `ConsumerCache` holds), or nil.
    public let consumerValuesPerImage: Int?
    /// Floats per image of the bounded stage's convolution output, when there is one.
    public let boundedValuesPerImage: Int?

    /// The convolution whose filters produce the tap's channels (through
    /// channel-separable operators), with each filter's L1 norm; or why there is none.
    public let producingConvolution: Result<(name: String, l1: [Double]), EngineError>

    public init(network: Network, tap tapIndex: Int) throws {
        guard tapIndex >= 0 && tapIndex < network.taps.count else {
            throw EngineError.invalidRequest("\(network.path): no tap \(tapIndex) (the model has \(network.taps.count))")
        }
        self.network = network
        let tap = network.taps[tapIndex]
        self.tap = tap
        let nodes = network.orderedNodes
        let plan = try network.plan(capacity: 1)
        var stepOfNode: [Int: Int] = [:]
        for (i, step) in plan.steps.enumerated() { stepOfNode[step.nodeIndex] = i }
        var producer: [String: Int] = [:]
        var readers: [String: [Int]] = [:]
        for (i, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = i }
            for input in node.inputs where !input.isEmpty { readers[input, default: []].append(i) }
        }
        func kernel(_ node: Int) -> (any Kernel)? { stepOfNode[node].map { plan.steps[$0].kernel } }

        let tapValue: String
        if tapIndex == 0 {
            tapNode = nil
            tapValue = network.inputName
        } else {
            guard let step = plan.steps.first(where: { $0.tap == tapIndex }) else {
                throw EngineError.invalidRequest("\(network.path): tap '\(tap.name)' is not computed by any step")
            }
            tapNode = step.nodeIndex
            tapValue = nodes[step.nodeIndex].outputs[0]
        }

        // Forwards: tap → channel-separable operators → one linear consumer, with no other reader.
        var chain: [Int] = [], chainTaps = Set<Int>()
        var linear: Int?, reason: String?, description: [String] = []
        var value = tapValue
        var flattened = false   // a Flatten/Reshape was passed: only a Gemm/MatMul may follow
        var channelsHere = tap.channels, planeHere = tap.valuesPerChannel
        walk: while true {
            if value == network.outputName { reason = "the tap's values are the network's output"; break }
            let users = readers[value] ?? []
            guard users.count == 1, let user = users.first else {
                reason = users.isEmpty ? "nothing reads the tap's values"
                    : "'\(value)' is read by \(users.count) inputs (\(Set(users).map { nodes[$0].displayName }.sorted().joined(separator: ", ")))"
                break
            }
            let node = nodes[user]
            guard let k = kernel(user) else {
                // No kernel: an alias of the same memory (Identity, Dropout, Flatten, Reshape, …).
                switch node.opType {
                case "Identity", "Dropout": break
                case "Flatten", "Reshape": flattened = true
                default: reason = "'\(value)' goes into \(node.opType) '\(node.displayName)'"; break walk
                }
                value = node.outputs[0]
                continue
            }
            if !flattened, TapAblationPlan.isChannelSeparable(k), node.inputs.first == value {
                chain.append(user)
                if let s = stepOfNode[user], let t = plan.steps[s].tap { chainTaps.insert(t) }
                description.append(node.opType)
                planeHere = product(k.outputShape.dropFirst(2))
                value = node.outputs[0]
                continue
            }
            if !flattened, let conv = k as? ConvKernel, node.inputs.first == value, conv.channels == channelsHere {
                linear = user
                description.append("Conv '\(node.displayName)'")
            } else if let gemm = k as? GemmKernel, node.inputs.first == value, gemm.inFeatures == channelsHere * planeHere {
                linear = user
                description.append("Gemm '\(node.displayName)'")
            } else if let matmul = k as? MatMulKernel, matmul.weights != nil, matmul.rows == 1, node.inputs.first == value,
                      matmul.inner == channelsHere * planeHere {
                linear = user
                description.append("MatMul '\(node.displayName)'")
            } else {
                reason = "'\(value)' goes into \(node.opType) '\(node.displayName)', which is not linear in each channel"
            }
            break
        }
        channelsHere = tap.channels

        // v_c: the chain's kernels run on one all-zero image.
        var zeros = [Float](repeating: 0, count: tap.valuesPerImage)
        if linear != nil {
            for node in chain {
                let k = kernel(node)!
                var out = [Float](repeating: 0, count: product(k.outputShape.dropFirst()))
                var scratch = [Float](repeating: 0, count: max(k.scratchCount, 1))
                zeros.withUnsafeMutableBufferPointer { x in
                    out.withUnsafeMutableBufferPointer { y in
                        scratch.withUnsafeMutableBufferPointer { s in
                            k.run(KernelIO(inputs: [x.baseAddress!], output: y.baseAddress!, scratch: s.baseAddress!, batch: 1))
                        }
                    }
                }
                zeros = out
            }
            if !zeros.allSatisfy(\.isFinite) {
                reason = "the operators after the tap turn an ablated channel into non-finite values"
                linear = nil
            }
        }
        self.chainNodes = chain
        self.chainTaps = chainTaps
        self.linearNode = linear
        self.zeroPlanes = zeros
        self.planeSize = linear == nil ? tap.valuesPerChannel : zeros.count / max(tap.channels, 1)
        self.shortcutDescription = linear == nil ? nil : description.joined(separator: " → ")
        self.boundedStage = linear.flatMap { BoundedStage.find(network: network, linear: $0, readers: readers, kernel: kernel) }
        self.consumerValuesPerImage = linear.flatMap { kernel($0) }.map { product($0.outputShape.dropFirst()) }
        self.boundedValuesPerImage = boundedStage.flatMap { kernel($0.convolution) }.map { product($0.outputShape.dropFirst()) }
        self.noShortcutReason = linear == nil ? (reason ?? "no linear consumer") : nil

        // Backwards: the tap's producer through channel-separable operators to a Conv.
        var found: Result<(name: String, l1: [Double]), EngineError>?
        var back = tapValue
        while found == nil {
            guard let p = producer[back] else {
                found = .failure(.invalidRequest("tap '\(tap.name)' of \(network.path) is the network's input, not produced by a convolution"))
                break
            }
            let node = nodes[p]
            guard let k = kernel(p) else {
                if node.opType == "Identity" || node.opType == "Dropout" { back = node.inputs[0]; continue }
                found = .failure(.invalidRequest("tap '\(tap.name)' of \(network.path) comes from \(node.opType) '\(node.displayName)', not from a convolution"))
                break
            }
            if let conv = k as? ConvKernel, conv.outChannels == tap.channels {
                let per = conv.weights.count / max(conv.outChannels, 1)
                let norms = (0..<conv.outChannels).map { m in
                    (0..<per).reduce(0.0) { $0 + Double(abs(conv.weights.pointer[m * per + $1])) }
                }
                found = .success((node.displayName, norms))
            } else if TapAblationPlan.isChannelSeparable(k) {
                back = node.inputs[0]
            } else {
                found = .failure(.invalidRequest("tap '\(tap.name)' of \(network.path) comes from \(node.opType) '\(node.displayName)', not from a convolution's filters"))
            }
        }
        producingConvolution = found!
    }

    /// Operators whose every output channel depends only on the same input channel.
    static func isChannelSeparable(_ k: any Kernel) -> Bool {
        k is BatchNormKernel || k is ActivationKernel || k is PoolKernel || k is GlobalPoolKernel
    }

    public var hasShortcut: Bool { linearNode != nil }
}

/// The linear consumer's output for one chunk of images under one mask, kept by the
/// caller between `TapAblationRunner.prepare` calls on the same images (greedy
/// pruning's steps), so that a mask with more channels at the tap updates it
/// instead of running the consumer again. Used by one worker at a time.
public final class ConsumerCache: @unchecked Sendable {
    // Touched only inside `prepare`, by the worker holding the chunk.
    var values: [Float] = []
    var mask: AblationMask?
    var count = 0
    /// Whether to keep the bounded stage's convolution output of the base pass
    /// too: a greedy step runs two passes under one mask (the reference
    /// candidate, then the others), and the second need not run that
    /// convolution again (on MNIST it is most of the base pass).
    public let keepsBase: Bool
    var baseOutput: [Float] = []
    var baseMask: AblationMask?
    public init(keepsBase: Bool = false) { self.keepsBase = keepsBase }
}

/// Runs many ablations of one tap's channels for one chunk of images at a time.
///
/// Not thread-safe: one per worker. Use with the executor (of the same batch
/// capacity) that holds the chunk's input, e.g. the one a `BatchRunner` hands out.
public final class TapAblationRunner {
    public let plan: TapAblationPlan
    public let capacity: Int
    private let steps: [PlanStep]
    private let tapStep: Int            // −1 for the input tap
    private let linearStep: Int?
    private let outputBuffer: Int
    private let classCount: Int
    /// Physical buffers read after the tap step before being written: restored before every exact run.
    private let liveAfterTap: [Int]
    /// The same after the linear consumer (its own output excluded): restored before every fast run.
    private let liveAfterLinear: [Int]
    private let floatsPerImage: [Int]    // per physical buffer
    /// Floats per image of the value each `liveAfterTap` buffer holds after the tap (nil
    /// when unknown: one image alone is then recomputed from the snapshot as part of
    /// the whole chunk).
    private let liveValuesPerImage: [Int]?

    private var tapSnapshot: [[Float]]
    /// Whether `tapSnapshot` holds the prepared chunk. It is taken only when an
    /// exact run needs it: most chunks never do, and copying the tap's
    /// activations at every `prepare` (6 MB a chunk for MNIST's first layer)
    /// cost more than recomputing the prefix for the few that do.
    private var tapSnapshotValid = false
    /// The prepared chunk's network input (masked), from which the prefix is
    /// recomputed: for the tap snapshot, or for one image alone.
    private var inputCopy: [Float]
    private let inputValuesPerImage: Int
    private var linearSnapshot: [[Float]]
    private var consumerInput: [Float]   // x: count × C × planeSize
    private var consumerOutput: [Float]  // y, before any mask at the consumer's tap
    // Work space of the shortcut, grown on demand.
    private var differencePlane: [Float] = []
    private var columns: [Float] = []
    private var packedWeights: [Float] = []
    private var staging: [Float] = []

    private var executor: Executor?
    private var count = 0
    private var mask = AblationMask()
    private var fastReady = false
    /// Fact 3's buffers, when the plan has the bounded stage.
    private let bounded: BoundedStageRunner?
    private var boundedReady = false
    /// The base logits from `prepare`'s pass, when it ran to the end.
    private let baseCache: UnsafeMutablePointer<Float>
    private var baseCached = false

    public init(plan: TapAblationPlan, capacity: Int) throws {
        self.plan = plan
        self.capacity = capacity
        let p = try plan.network.plan(capacity: capacity)
        steps = p.steps
        outputBuffer = p.outputBuffer
        classCount = plan.network.classCount
        floatsPerImage = p.bufferSizes.map { $0 / capacity }
        tapStep = plan.tapNode.flatMap { node in p.steps.firstIndex { $0.nodeIndex == node } } ?? -1
        linearStep = plan.linearNode.flatMap { node in p.steps.firstIndex { $0.nodeIndex == node } }
        func liveIn(from start: Int, excluding: Int?) -> [Int] {
            var written = Set<Int>(), live: [Int] = []
            for step in p.steps[start...] {
                for b in step.inputBuffers where !written.contains(b) && !live.contains(b) { live.append(b) }
                written.insert(step.outputBuffer)
            }
            if !written.contains(p.outputBuffer) && !live.contains(p.outputBuffer) { live.append(p.outputBuffer) }
            return live.filter { $0 != excluding }
        }
        liveAfterTap = liveIn(from: tapStep + 1, excluding: nil)
        // A physical buffer is sized for the largest value it ever holds; what it holds
        // after the tap is as large per image as the first later step reading it says.
        let afterTap = Array(p.steps[(tapStep + 1)...])
        let outputBufferIndex = p.outputBuffer, classes = plan.network.classCount
        let sizes = liveAfterTap.map { b -> Int? in
            for step in afterTap {
                if let j = step.inputBuffers.firstIndex(of: b) { return step.inputValuesPerImage[j] }
            }
            return b == outputBufferIndex ? classes : nil
        }
        liveValuesPerImage = sizes.allSatisfy { $0 != nil } ? sizes.compactMap { $0 } : nil
        tapSnapshot = liveAfterTap.map { [Float](repeating: 0, count: p.bufferSizes[$0]) }
        inputValuesPerImage = plan.network.taps[0].valuesPerImage
        inputCopy = [Float](repeating: 0, count: capacity * inputValuesPerImage)
        if let l = linearStep {
            liveAfterLinear = liveIn(from: l + 1, excluding: p.steps[l].outputBuffer)
            linearSnapshot = liveAfterLinear.map { [Float](repeating: 0, count: p.bufferSizes[$0]) }
            let k = p.steps[l].kernel
            consumerInput = [Float](repeating: 0, count: capacity * plan.tap.channels * plan.planeSize)
            consumerOutput = [Float](repeating: 0, count: product(k.outputShape))
            if let conv = k as? ConvKernel { differencePlane = [Float](repeating: 0, count: conv.height * conv.width) }
        } else {
            liveAfterLinear = []
            linearSnapshot = []
            consumerInput = []
            consumerOutput = []
        }
        bounded = plan.boundedStage.map {
            BoundedStageRunner(stage: $0, steps: p.steps, capacity: capacity, classCount: plan.network.classCount)
        }
        baseCache = .allocate(capacity: capacity * classCount)
        baseCache.initialize(repeating: 0, count: capacity * classCount)
    }

    deinit { baseCache.deallocate() }

    /// Whether `boundedPredictions` is available for the prepared chunk.
    public var hasBoundedStage: Bool { boundedReady }

    /// Whether the bounded stage's 8-bit product takes the vector path (tests compare both).
    public var usesVectorProducts: Bool {
        get { bounded?.vector ?? false }
        set { bounded?.vector = newValue && (plan.boundedStage?.vector ?? false) }
    }

    /// Images the bounded stage certified, and those it recomputed in floats, since creation.
    public var boundedImageCounts: (certified: Int, recomputed: Int) {
        (bounded?.certifiedImages ?? 0, bounded?.recomputedImages ?? 0)
    }

    /// Whether `fastLogits` is available for the prepared chunk.
    public var hasShortcut: Bool { fastReady }

    /// Runs the images already in `executor.inputBuffer` (`count` of them) up to the
    /// tap — and, when the shortcut applies, through the linear consumer — under
    /// `mask`, and keeps what ablations of the tap need. The input buffer may be
    /// overwritten.
    ///
    /// With `cache` (one per chunk, kept by the caller across calls on the same
    /// images, as greedy pruning's steps are): when it holds the consumer's output
    /// for a mask that differs only by fewer channels at the tap, that output is
    /// updated by the first stage's algebra instead of running the consumer again,
    /// and the cache then holds the new one. Only the shortcuts use that output
    /// (their near-ties are redone exactly); exact logits still recompute from the
    /// tap, and `baseLogits` then does too.
    public func prepare(_ executor: Executor, count: Int, mask: AblationMask, cache: ConsumerCache? = nil) {
        precondition(executor.capacity == capacity && executor.network === plan.network, "executor does not match the runner")
        precondition(count > 0 && count <= capacity, "batch of \(count) outside 1...\(capacity)")
        self.executor = executor
        self.count = count
        self.mask = mask
        baseCached = false
        zero(mask.channels[0], tap: 0, buffer: executor.inputBuffer)
        tapSnapshotValid = false
        let inputs = count * inputValuesPerImage
        inputCopy.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: executor.inputBuffer, count: inputs) }
        // The channels masked since the cache was filled, when it can be used.
        let tapIndex = plan.tap.index
        let cacheable = tapStep >= 0 && linearStep != nil && mask.channels.keys.allSatisfy { $0 <= tapIndex }
            && liveAfterTap.contains(steps[max(tapStep, 0)].outputBuffer)
        var added: [Int]?
        if cacheable, let cache, let cached = cache.mask, cache.count == count {
            let now = mask.channels[tapIndex] ?? [], before = cached.channels[tapIndex] ?? []
            var others = mask.channels, cachedOthers = cached.channels
            others[tapIndex] = nil
            cachedOthers[tapIndex] = nil
            if others == cachedOthers && before.isSubset(of: now) { added = now.subtracting(before).sorted() }
        }
        var prefixMask = mask
        if let added, !added.isEmpty {
            var channels = mask.channels
            channels[tapIndex] = (mask.channels[tapIndex] ?? []).subtracting(added)
            prefixMask = AblationMask(channels)
        }
        executor.runSteps(0..<(tapStep + 1), count: count, mask: prefixMask)
        // The input tap's snapshot is the input itself: cheap, taken now.
        if tapStep < 0 { takeTapSnapshot() }
        fastReady = false
        guard let l = linearStep, plan.chainTaps.isDisjoint(with: mask.channels.keys) else { return }
        executor.runSteps((tapStep + 1)..<l, count: count, mask: prefixMask)
        let step = steps[l]
        let x = executor.buffers[step.inputBuffers[0]], y = executor.buffers[step.outputBuffer]
        let xCount = count * plan.tap.channels * plan.planeSize
        let yCount = count * product(step.kernel.outputShape.dropFirst())
        consumerInput.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: x, count: xCount) }
        if let added, let cache {
            // y = cached y − the new channels' contributions (x still holds them), then
            // x takes the values of masked channels, as the chain gives them from zeros.
            cache.values.withUnsafeBufferPointer { c in
                consumerOutput.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: c.baseAddress!, count: yCount) }
            }
            writeAblatedOutput(added, kernel: step.kernel, into: y)
            let plane = plan.planeSize, channels = plan.tap.channels
            plan.zeroPlanes.withUnsafeBufferPointer { v in
                for n in 0..<count {
                    for c in added { (x + (n * channels + c) * plane).update(from: v.baseAddress! + c * plane, count: plane) }
                }
            }
            consumerInput.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: x, count: xCount) }
        } else {
            step.kernel.run(KernelIO(inputs: step.inputBuffers.map { executor.buffers[$0] }, output: y,
                                     scratch: executor.scratch, batch: count))
        }
        consumerOutput.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: y, count: yCount) }
        if let t = step.tap { zero(mask.channels[t], tap: t, buffer: y) }
        save(liveAfterLinear, into: &linearSnapshot)
        // inf − inf would poison the difference: such chunks take the exact path.
        fastReady = consumerInput[0..<xCount].allSatisfy(\.isFinite) && consumerOutput[0..<yCount].allSatisfy(\.isFinite)
        if cacheable, let cache {
            if fastReady {
                if cache.values.count != yCount { cache.values = [Float](repeating: 0, count: yCount) }
                consumerOutput.withUnsafeBufferPointer { src in
                    cache.values.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: src.baseAddress!, count: yCount) }
                }
                cache.mask = mask
                cache.count = count
            } else {
                cache.mask = nil
            }
        }
        boundedReady = false
        guard fastReady else { return }
        // The rest of the base pass, in the order `Executor.run` takes, keeping the
        // logits (bit for bit the executor's, unless the consumer came from the
        // cache) and what the bounded stage starts from. The bounded stage needs the
        // unmasked base after the consumer: no tap after the ablated one may be masked.
        if let bounded, mask.channels.keys.allSatisfy({ $0 <= plan.tap.index }),
           let c = steps.firstIndex(where: { $0.nodeIndex == bounded.stage.convolution }) {
            executor.runSteps((l + 1)..<c, count: count, mask: mask)
            bounded.keepInput(executor.buffers[steps[c].inputBuffers[0]], count: count)
            let y = executor.buffers[steps[c].outputBuffer]
            let yCount = count * bounded.outputSize
            if let cache, cache.keepsBase, cache.baseMask == mask, cache.count == count, cache.baseOutput.count == yCount {
                // The same chunk under the same mask as the last pass: the
                // convolution's output is the one kept then, bit for bit.
                cache.baseOutput.withUnsafeBufferPointer { y.update(from: $0.baseAddress!, count: yCount) }
                if let t = steps[c].tap { zero(mask.channels[t], tap: t, buffer: y) }
            } else {
                executor.runSteps(c..<(c + 1), count: count, mask: mask)
                if let cache, cache.keepsBase, cacheable {
                    cache.baseOutput = Array(UnsafeBufferPointer(start: y, count: yCount))
                    cache.baseMask = mask
                }
            }
            boundedReady = bounded.keepOutput(y, count: count)
            executor.runSteps((c + 1)..<steps.count, count: count, mask: mask)
        } else {
            executor.runSteps((l + 1)..<steps.count, count: count, mask: mask)
        }
        baseCache.update(from: executor.buffers[outputBuffer], count: count * classCount)
        baseCached = added == nil
    }

    /// The logits under the prepared mask alone, bit for bit those of `Executor.run(count:mask:)`.
    public func baseLogits() -> UnsafeBufferPointer<Float> {
        guard baseCached else { return exactLogits(ablating: []) }
        return UnsafeBufferPointer(start: baseCache, count: count * classCount)
    }

    /// The logits with `channels` of the tap ablated as well, recomputed from the
    /// tap: bit for bit those of `Executor.run(count:mask:)` with the combined mask.
    public func exactLogits(ablating channels: [Int]) -> UnsafeBufferPointer<Float> {
        guard let executor else { preconditionFailure("prepare() first") }
        if !tapSnapshotValid { takeTapSnapshot() }
        restore(liveAfterTap, from: tapSnapshot)
        var m = mask
        for c in channels { m = m.adding(tap: plan.tap.index, channel: c) }
        zero(Set(channels), tap: plan.tap.index, buffer: tapBuffer(executor))
        executor.runSteps((tapStep + 1)..<steps.count, count: count, mask: m)
        return UnsafeBufferPointer(start: executor.buffers[outputBuffer], count: count * classCount)
    }

    /// Image `image`'s row of `exactLogits(ablating:)`, recomputed for that image alone,
    /// as a batch of one: from the tap snapshot when one was taken, else the whole
    /// network from the image's input. Kernels give every image the same values
    /// whatever the batch size (KernelTests), so this is bit for bit the same row. When
    /// a few images of a chunk are near-ties, redoing only those costs 1/count of the chunk.
    public func exactLogits(ablating channels: [Int], image: Int) -> UnsafeBufferPointer<Float> {
        guard let executor else { preconditionFailure("prepare() first") }
        precondition(image >= 0 && image < count, "image \(image) outside the prepared chunk of \(count)")
        var m = mask
        for c in channels { m = m.adding(tap: plan.tap.index, channel: c) }
        if !tapSnapshotValid && tapStep >= 0 {
            // The whole network for this image alone, from its (masked) input.
            let n = inputValuesPerImage
            inputCopy.withUnsafeBufferPointer { executor.inputBuffer.update(from: $0.baseAddress! + image * n, count: n) }
            executor.runSteps(0..<steps.count, count: 1, mask: m)
            return UnsafeBufferPointer(start: executor.buffers[outputBuffer], count: classCount)
        }
        guard let sizes = liveValuesPerImage else {
            let all = exactLogits(ablating: channels)
            return UnsafeBufferPointer(rebasing: all[(image * classCount)..<((image + 1) * classCount)])
        }
        if !tapSnapshotValid { takeTapSnapshot() }
        for (i, b) in liveAfterTap.enumerated() {
            let n = sizes[i]
            tapSnapshot[i].withUnsafeBufferPointer { executor.buffers[b].update(from: $0.baseAddress! + image * n, count: n) }
        }
        zero(Set(channels), tap: plan.tap.index, buffer: tapBuffer(executor), images: 1)
        executor.runSteps((tapStep + 1)..<steps.count, count: 1, mask: m)
        return UnsafeBufferPointer(start: executor.buffers[outputBuffer], count: classCount)
    }

    /// The logits with `channels` ablated through the linear shortcut (nil when it
    /// does not apply to this chunk). Equal to `exactLogits` up to rounding.
    public func fastLogits(ablating channels: [Int]) -> UnsafeBufferPointer<Float>? {
        guard fastReady, let executor, let l = linearStep else { return nil }
        let step = steps[l]
        restore(liveAfterLinear, from: linearSnapshot)
        let y = executor.buffers[step.outputBuffer]
        let masked = mask.channels[plan.tap.index] ?? []
        let ablated = Set(channels).filter { $0 >= 0 && $0 < plan.tap.channels && !masked.contains($0) }.sorted()
        writeAblatedOutput(ablated, kernel: step.kernel, into: y)
        if let t = step.tap { zero(mask.channels[t], tap: t, buffer: y) }
        executor.runSteps((l + 1)..<steps.count, count: count, mask: mask)
        return UnsafeBufferPointer(start: executor.buffers[outputBuffer], count: count * classCount)
    }

    /// Each image's prediction with `channels` ablated, through the bounded stage (nil
    /// when it does not apply to this chunk): certain ones, and nil for images whose
    /// prediction needs the exact logits. `margin`: as `CAREngine.nearTieMargin`.
    public func boundedPredictions(ablating channels: [Int], margin: Float) -> [Int?]? {
        boundedPredictions(ablatingEach: [channels], margin: margin)?.first
    }

    /// `boundedPredictions(ablating:margin:)` for each entry of `ablations` ([ablation][image]),
    /// faster than one call each: every image is taken once for all of them.
    public func boundedPredictions(ablatingEach ablations: [[Int]], margin: Float) -> [[Int?]]? {
        guard boundedReady, let bounded, let executor, let l = linearStep,
              let first = steps[l].kernel as? ConvKernel else { return nil }
        let masked = mask.channels[plan.tap.index] ?? []
        let sets = ablations.map { channels in
            Set(channels).filter { $0 >= 0 && $0 < plan.tap.channels && !masked.contains($0) }.sorted()
        }
        let plane = plan.planeSize, tapChannels = plan.tap.channels
        // Nested ablations (the baselines' prefixes of one order) extend the previous
        // one's first stage by their new channels instead of starting again.
        let extends = sets.indices.map { a in a + 1 < sets.count && !sets[a].isEmpty && Set(sets[a + 1]).isSuperset(of: sets[a]) }
        var kept: (image: Int, channels: Set<Int>)?
        return consumerInput.withUnsafeBufferPointer { x in
        consumerOutput.withUnsafeBufferPointer { y in
        plan.zeroPlanes.withUnsafeBufferPointer { v in
            bounded.predictions(count: count, ablations: sets.count, scratch: executor.scratch, margin: margin) { i, a, target in
                var channels = sets[a], fromKept = false
                if let k = kept, k.image == i, Set(channels).isSuperset(of: k.channels) {
                    channels = channels.filter { !k.channels.contains($0) }
                    fromKept = true
                }
                bounded.firstStage(image: i, channels: channels, first: first, cachedInput: x.baseAddress!,
                                   cachedOutput: y.baseAddress!, zeroPlanes: v.baseAddress!, planeSize: plane,
                                   tapChannels: tapChannels, fromKept: fromKept, keep: extends[a], into: target)
                kept = extends[a] ? (i, Set(sets[a])) : nil
            }
        }}}
    }

    /// Top-1 (ties to the lowest index) when the row is finite and its winner leads the
    /// runner-up by more than `margin`·max(1, largest |logit|); nil otherwise.
    public static func confidentPrediction(_ row: UnsafeBufferPointer<Float>, margin: Float) -> Int? {
        var best = 0, scale: Float = 1
        for i in row.indices {
            let v = row[i]
            guard v.isFinite else { return nil }
            scale = max(scale, abs(v))
            if v > row[best] { best = i }
        }
        var second = -Float.infinity
        for i in row.indices where i != best { second = max(second, row[i]) }
        guard row.count == 1 || row[best] - second > margin * scale else { return nil }
        return best
    }

    // MARK: - Internals

    private func tapBuffer(_ executor: Executor) -> UnsafeMutablePointer<Float> {
        tapStep < 0 ? executor.inputBuffer : executor.buffers[steps[tapStep].outputBuffer]
    }

    /// Recomputes the prefix of the prepared chunk from its input under the full
    /// mask (bit for bit what `prepare` computed: the kernels do not depend on the
    /// batch) and keeps what the exact path starts from.
    private func takeTapSnapshot() {
        guard let executor else { return }
        let inputs = count * inputValuesPerImage
        inputCopy.withUnsafeBufferPointer { executor.inputBuffer.update(from: $0.baseAddress!, count: inputs) }
        executor.runSteps(0..<(tapStep + 1), count: count, mask: mask)
        save(liveAfterTap, into: &tapSnapshot)
        tapSnapshotValid = true
    }

    private func save(_ live: [Int], into snapshot: inout [[Float]]) {
        guard let executor else { return }
        for (i, b) in live.enumerated() {
            let n = count * floatsPerImage[b]
            snapshot[i].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: executor.buffers[b], count: n) }
        }
    }

    private func restore(_ live: [Int], from snapshot: [[Float]]) {
        guard let executor else { return }
        for (i, b) in live.enumerated() {
            let n = count * floatsPerImage[b]
            snapshot[i].withUnsafeBufferPointer { executor.buffers[b].update(from: $0.baseAddress!, count: n) }
        }
    }

    /// Zeroes `channels` of tap `t` for the chunk's images, as `Executor` applies masks.
    private func zero(_ channels: Set<Int>?, tap t: Int, buffer: UnsafeMutablePointer<Float>, images: Int? = nil) {
        guard let channels, !channels.isEmpty else { return }
        let info = plan.network.taps[t]
        let per = info.valuesPerChannel, c = info.channels
        for n in 0..<(images ?? count) {
            for ch in channels where ch >= 0 && ch < c { (buffer + (n * c + ch) * per).update(repeating: 0, count: per) }
        }
    }

    /// y = y_cached − Σ_c (linear consumer)(x_c − v_c), without bias: the consumer's
    /// output with `channels` (ascending, not masked already) ablated.
    private func writeAblatedOutput(_ channels: [Int], kernel: any Kernel, into y: UnsafeMutablePointer<Float>) {
        let yCount = count * product(kernel.outputShape.dropFirst())
        guard !channels.isEmpty else {
            consumerOutput.withUnsafeBufferPointer { y.update(from: $0.baseAddress!, count: yCount) }
            return
        }
        if let conv = kernel as? ConvKernel {
            writeAblatedConvOutput(channels, conv, into: y)
            return
        }
        consumerOutput.withUnsafeBufferPointer { y.update(from: $0.baseAddress!, count: yCount) }
        // Gemm / MatMul on the flattened tap: channel c is features c·plane ..< (c+1)·plane.
        let plane = plan.planeSize, features = plan.tap.channels * plane
        grow(&differencePlane, to: count * plane)
        for c in channels {
            consumerInput.withUnsafeBufferPointer { xAll in
            plan.zeroPlanes.withUnsafeBufferPointer { v in
            differencePlane.withUnsafeMutableBufferPointer { dBuf in
                let d = dBuf.baseAddress!, vc = v.baseAddress! + c * plane
                for n in 0..<count {
                    let xc = xAll.baseAddress! + n * features + c * plane
                    for i in 0..<plane { d[n * plane + i] = xc[i] - vc[i] }
                }
                if let gemm = kernel as? GemmKernel {
                    let b = gemm.transB ? gemm.weights.pointer + c * plane : gemm.weights.pointer + c * plane * gemm.outFeatures
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, gemm.transB ? CblasTrans : CblasNoTrans,
                                Int32(count), Int32(gemm.outFeatures), Int32(plane), -gemm.alpha, d, Int32(plane),
                                b, Int32(gemm.transB ? gemm.inFeatures : gemm.outFeatures), 1, y, Int32(gemm.outFeatures))
                } else if let matmul = kernel as? MatMulKernel, let weights = matmul.weights {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(count), Int32(matmul.cols), Int32(plane),
                                -1, d, Int32(plane), weights.pointer + c * plane * matmul.cols, Int32(matmul.cols),
                                1, y, Int32(matmul.cols))
                }
            }}}
        }
    }

    /// The Conv case: per group of the convolution, the ablated channels' difference
    /// planes of all the chunk's images side by side as one column matrix
    /// (kh·kw rows per channel), their filter slices packed beside each other,
    /// one GEMM into `staging`, and y = y_cached − staging in one pass.
    private func writeAblatedConvOutput(_ channels: [Int], _ conv: ConvKernel, into y: UnsafeMutablePointer<Float>) {
        let w = conv.window
        let kk = w.kernelH * w.kernelW, p = conv.outPixels, n = count * p
        let cg = conv.channels / conv.groups, mg = conv.outChannels / conv.groups
        let plane = plan.planeSize, tapChannels = plan.tap.channels
        // Channels per GEMM: bounded so that the column matrix stays ≤ 4 M floats (or one channel).
        let perGemm = max(1, (1 << 22) / max(kk * n, 1))
        grow(&staging, to: mg * n)
        for g in 0..<conv.groups {
            let mine = channels.filter { $0 / cg == g }
            let outBase = g * mg * p
            guard !mine.isEmpty else {
                consumerOutput.withUnsafeBufferPointer { cached in
                    for i in 0..<count {
                        let offset = i * conv.outChannels * p + outBase
                        (y + offset).update(from: cached.baseAddress! + offset, count: mg * p)
                    }
                }
                continue
            }
            var first = true
            for batchStart in stride(from: 0, to: mine.count, by: perGemm) {
                let batch = mine[batchStart..<min(mine.count, batchStart + perGemm)]
                let k = batch.count * kk
                grow(&columns, to: k * n)
                grow(&packedWeights, to: mg * k)
                consumerInput.withUnsafeBufferPointer { xAll in
                plan.zeroPlanes.withUnsafeBufferPointer { v in
                differencePlane.withUnsafeMutableBufferPointer { dBuf in
                columns.withUnsafeMutableBufferPointer { colBuf in
                packedWeights.withUnsafeMutableBufferPointer { wBuf in
                staging.withUnsafeMutableBufferPointer { sBuf in
                    let d = dBuf.baseAddress!, cols = colBuf.baseAddress!, packed = wBuf.baseAddress!
                    for (j, c) in batch.enumerated() {
                        let vc = v.baseAddress! + c * plane
                        for i in 0..<count {
                            let xc = xAll.baseAddress! + (i * tapChannels + c) * plane
                            for t in 0..<plane { d[t] = xc[t] - vc[t] }
                            TapAblationRunner.planeColumns(d, conv, into: cols + j * kk * n + i * p, rowStride: n)
                        }
                        let filter = conv.weights.pointer + g * mg * cg * kk + (c % cg) * kk
                        for m in 0..<mg { (packed + m * k + j * kk).update(from: filter + m * cg * kk, count: kk) }
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(mg), Int32(n), Int32(k),
                                1, packed, Int32(k), cols, Int32(n), first ? 0 : 1, sBuf.baseAddress!, Int32(n))
                }}}}}}
                first = false
            }
            consumerOutput.withUnsafeBufferPointer { cached in
            staging.withUnsafeBufferPointer { sBuf in
                for i in 0..<count {
                    for m in 0..<mg {
                        let offset = i * conv.outChannels * p + outBase + m * p
                        let src = cached.baseAddress! + offset, dst = y + offset
                        let contribution = sBuf.baseAddress! + m * n + i * p
                        for t in 0..<p { dst[t] = src[t] - contribution[t] }
                    }
                }
            }}
        }
    }

    /// One input plane's columns for `conv`: kh·kw rows of outH·outW values,
    /// `rowStride` apart (so that several images sit side by side).
    static func planeColumns(_ x: UnsafePointer<Float>, _ conv: ConvKernel, into cols: UnsafeMutablePointer<Float>,
                              rowStride: Int) {
        let w = conv.window, h = conv.height, wd = conv.width
        var row = 0
        for ki in 0..<w.kernelH {
            for kj in 0..<w.kernelW {
                let dst = cols + row * rowStride
                let colOffset = kj * w.dilationW - w.padLeft
                // Output columns whose input column lies inside the plane: lo..<hi.
                let lo = colOffset < 0 ? min(w.outW, (-colOffset + w.strideW - 1) / w.strideW) : 0
                let lastValid = wd - 1 - colOffset
                let hi = lastValid < 0 ? lo : max(lo, min(w.outW, lastValid / w.strideW + 1))
                for r in 0..<w.outH {
                    let ih = r * w.strideH - w.padTop + ki * w.dilationH
                    let out = dst + r * w.outW
                    guard ih >= 0 && ih < h else { out.update(repeating: 0, count: w.outW); continue }
                    if lo > 0 { out.update(repeating: 0, count: lo) }
                    let src = x + ih * wd + colOffset
                    if w.strideW == 1 {
                        if hi > lo { (out + lo).update(from: src + lo, count: hi - lo) }
                    } else {
                        var c = lo
                        while c < hi { out[c] = src[c * w.strideW]; c += 1 }
                    }
                    if hi < w.outW { (out + hi).update(repeating: 0, count: w.outW - hi) }
                }
                row += 1
            }
        }
    }

    private func grow(_ buffer: inout [Float], to size: Int) {
        if buffer.count < size { buffer = [Float](repeating: 0, count: size) }
    }
}
