// The inference plan: the same graph with a convolution's BatchNormalization
// folded into its weights and its activation and residual Add applied as it
// stores its output.
//
// The analysis observes every node's output (each one is a tap), so the plan
// it runs keeps every node as its own step. A run that nobody observes — no
// observer, no ablation mask: `cnnslicer bench`, `eval` — needs only the
// logits, and ONNX Runtime's default optimisations do exactly these fusions:
// a separate BatchNormalization, ReLU or Add step reads and writes a whole
// activation (224×224×64 floats on a VGG) from memory, where the fused
// convolution touches each value once, while its output block is in cache.
//
// Folding changes the rounding (the sum runs over γ/σ-scaled weights): the
// inference plan's logits agree with the observed plan's to about 1e-5
// relative, not bit for bit, which is why the analysis and CAR never use it.
// Conv → Relu/Clip and Conv → Add → Relu without a BatchNormalization are bit
// for bit the same operations in the same order — except for the dense 3×3
// stride-1 convolutions that the inference plan computes by Winograd's
// F(2×2, 3×3) (WinogradConvolution.swift, `WinogradConvKernel.accepts`).
// A 2×2 stride-2 max pool merges into the convolution before it where a
// kernel stores only the pooled values (`InferenceFusion.pooledKernel`), and
// a large 1×1 expansion and the depthwise convolution that alone reads it
// merge into one step (ExpandDepthwiseConvolution.swift); both bit for bit
// the separate steps' values, but Winograd's rounding where it computes the
// convolution.

/// What a convolution does to each value after its sum and bias.
struct OutputEpilogue: Sendable, Equatable {
    /// Add runtime input 1 (same shape as the output), as `Add(conv, other)` does.
    var addsResidual = false
    /// Clamp to [low, high] after the addition: Relu is [0, +∞], Clip (ReLU6) [min, max].
    var clamps = false
    var low: Float = 0
    var high: Float = .infinity

    var isEmpty: Bool { !addsResidual && !clamps }

    /// The activation kernels' clamp (ActivationKernel): NaN passes through.
    @inline(__always)
    func clamp(_ v: SIMD16<Float>) -> SIMD16<Float> {
        v.replacing(with: low, where: v .< low).replacing(with: high, where: v .> high)
    }

    /// dst[i] = clamp(src[i] + bias + residual[i]) for i < count, each step only
    /// when present, in the order of the separate Conv, Add and activation
    /// nodes. `src` may be `dst`.
    @inline(__always)
    func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int,
               bias: Float?, residual: UnsafePointer<Float>?) {
        let hasBias = bias != nil, b = bias ?? 0, bv = SIMD16<Float>(repeating: b)
        var i = 0
        while i + 16 <= count {
            var v = loadVector(src + i)
            if hasBias { v += bv }
            if let residual { v += loadVector(residual + i) }
            if clamps { v = clamp(v) }
            storeVector(v, dst + i)
            i += 16
        }
        if i < count {
            // The tail through one vector, lane by lane in and out: a scalar clamp
            // compiles to branches, mispredicted on half of all values.
            let tail = count - i
            var v = SIMD16<Float>(), r = SIMD16<Float>()
            for k in 0..<tail { v[k] = src[i + k] }
            if let residual { for k in 0..<tail { r[k] = residual[i + k] } }
            if hasBias { v += bv }
            if residual != nil { v += r }
            if clamps { v = clamp(v) }
            for k in 0..<tail { dst[i + k] = v[k] }
        }
    }
}

extension ConvKernel {
    /// This convolution followed by y = x·scale[m] + shift[m] (a BatchNormalization
    /// in inference mode, as BatchNormKernel folds it) as one convolution:
    /// weights W[m]·scale[m], bias b[m]·scale[m] + shift[m], computed in double
    /// and rounded once.
    func foldingBatchNorm(scale: [Float], shift: [Float]) -> ConvKernel {
        precondition(scale.count == outChannels && shift.count == outChannels, "BatchNormalization of \(scale.count) channels after \(outChannels) filters")
        let perFilter = weights.count / outChannels
        var folded = [Float](repeating: 0, count: weights.count)
        var foldedBias = [Float](repeating: 0, count: outChannels)
        for m in 0..<outChannels {
            let s = Double(scale[m])
            for k in 0..<perFilter { folded[m * perFilter + k] = Float(Double(weights.pointer[m * perFilter + k]) * s) }
            let b = bias.map { Double($0.pointer[m]) } ?? 0
            foldedBias[m] = Float(b * s + Double(shift[m]))
        }
        var kernel = self
        kernel.weights = WeightBuffer(folded)
        kernel.bias = WeightBuffer(foldedBias)
        let cg = channels / groups, mg = outChannels / groups, depth = cg * window.kernelH * window.kernelW
        kernel.packedFilters = folded.withUnsafeBufferPointer { all -> [PackedRows] in
            guard let base = all.baseAddress else { return [] }
            return (0..<groups).map { g in PackedRows(base + g * mg * depth, rows: mg, depth: depth, rowStride: depth) }
        }
        if var depthwise = kernel.depthwise {
            depthwise.weights = kernel.weights
            depthwise.bias = kernel.bias
            kernel.depthwise = depthwise
        }
        return kernel
    }

    /// The same convolution with `epilogue` (the depthwise kernel gets its clamp).
    func with(_ epilogue: OutputEpilogue) -> ConvKernel {
        var kernel = self
        kernel.epilogue = epilogue
        if var depthwise = kernel.depthwise {
            precondition(!epilogue.addsResidual, "a depthwise convolution takes no residual")
            depthwise.epilogue = epilogue
            kernel.depthwise = depthwise
        }
        return kernel
    }
}

/// One kernel call of a plan being built (Network.buildPlan), before buffers
/// are assigned: logical storages in and out.
struct PendingStep {
    var kernel: any Kernel
    var inputs: [Int]
    var inputSizes: [Int]
    var output: Int
    var tap: Int?
    var node: Int
}

enum InferenceFusion {
    /// Merges into each convolution the steps that alone read its output, as
    /// long as they fit its epilogue, in this order: a BatchNormalization
    /// (folded into the weights), an Add of another value of the same shape
    /// (the residual), a Relu or Clip. The merged step takes the place of the
    /// last step it absorbs (its inputs, including the residual, are all
    /// computed by then) and writes that step's output. Steps of the
    /// inference plan carry no taps: nobody observes it.
    ///
    /// Then a 2×2 stride-2 max pool that alone reads the result merges too,
    /// where a kernel computes the pooled values directly (`pooledKernel`):
    /// the convolution's full-size output is never stored. `fusesPools`
    /// false leaves the pools as steps (tests compare the two plans).
    /// Expansions of more than `expansionsAbove` floats per image merge with
    /// their depthwise convolution (`fuseExpansions`).
    static func fuse(_ pending: [PendingStep], outputStorage: Int, fusesPools: Bool = true,
                     expansionsAbove: Int = ExpandDepthwiseKernel.fusesAbove) -> [PendingStep] {
        var steps: [PendingStep?] = pending
        // readers[s]: steps reading storage s, kept up to date as steps merge.
        var readers: [Int: [Int]] = [:]
        for (i, step) in pending.enumerated() { for s in step.inputs { readers[s, default: []].append(i) } }
        for i in steps.indices {
            guard var step = steps[i], var conv = step.kernel as? ConvKernel else { continue }
            var position = i
            var merged = false
            var pooled: (any Kernel)?
            while step.output != outputStorage, let users = readers[step.output], users.count == 1,
                  let j = users.first, let next = steps[j] {
                let output = step.output
                if let bn = next.kernel as? BatchNormKernel, conv.epilogue.isEmpty,
                   bn.outputShape == conv.outputShape {
                    conv = conv.foldingBatchNorm(scale: bn.scale, shift: bn.shift)
                } else if let add = next.kernel as? BinaryKernel, add.op == .add, add.constant == nil,
                          case .same = add.layout, add.outputShape == conv.outputShape, next.inputs.count == 2,
                          next.inputs[0] != next.inputs[1], conv.depthwise == nil, conv.epilogue.isEmpty {
                    let other = next.inputs[0] == output ? 1 : 0
                    var epilogue = conv.epilogue
                    epilogue.addsResidual = true
                    conv = conv.with(epilogue)
                    step.inputs.append(next.inputs[other])
                    step.inputSizes.append(next.inputSizes[other])
                    readers[next.inputs[other], default: []].removeAll { $0 == j }
                    readers[next.inputs[other], default: []].append(j)
                } else if let activation = next.kernel as? ActivationKernel, !conv.epilogue.clamps,
                          let (low, high) = activation.clampBounds {
                    var epilogue = conv.epilogue
                    (epilogue.clamps, epilogue.low, epilogue.high) = (true, low, high)
                    conv = conv.with(epilogue)
                } else if fusesPools, let pool = next.kernel as? PoolKernel, let kernel = pooledKernel(conv, pool) {
                    pooled = kernel
                } else {
                    break
                }
                // The conv's own inputs are now read at position j.
                for s in Set(step.inputs) {
                    readers[s, default: []].removeAll { $0 == position }
                    if !(readers[s]?.contains(j) ?? false) { readers[s, default: []].append(j) }
                }
                readers[output] = nil
                steps[position] = nil
                step.output = next.output
                step.tap = nil
                position = j
                merged = true
                // Nothing merges after the pool: the kernel is no longer a convolution.
                if pooled != nil { break }
            }
            if merged {
                step.kernel = pooled ?? conv
                steps[position] = step
            }
        }
        // Every dense 3×3 stride-1 convolution of the plan, fused or not, then
        // runs as F(2×2, 3×3) (WinogradConvolution.swift), its filters
        // transformed after any BatchNormalization fold above.
        // Of the rest, small planes of whole blocks of 64 filters run with
        // the filters along the vector lanes (ChannelVectorConvolution.swift),
        // bit for bit the same values without the padded columns.
        return fuseExpansions(steps.compactMap { $0 }, outputStorage: outputStorage, above: expansionsAbove).map { step in
            guard let conv = step.kernel as? ConvKernel else { return step }
            var step = step
            if WinogradConvKernel.accepts(conv) {
                step.kernel = WinogradConvKernel(conv)
            } else if ChannelVectorConvKernel.accepts(conv) {
                step.kernel = ChannelVectorConvKernel(conv)
            }
            return step
        }
    }

    /// `conv` (with its fused epilogue) and the max pool after it as one
    /// kernel: Winograd where its 2×2 tiles are the pool windows (even
    /// planes up to 32 columns, from 16 channels: MNIST's 32 → 64 on 14×14
    /// measured ~1.15–1.3× faster than the filters-along-the-lanes kernel,
    /// BENCHMARKS.md "mnist3"; Winograd's rounding, like the unpooled
    /// Winograd layers), else where one computes exactly the two steps'
    /// values: shallow first layers (PooledConvolution.swift) and the small
    /// planes that run with the filters along the lanes
    /// (ChannelVectorConvolution.swift); nil for every other convolution,
    /// whose pool stays a step.
    static func pooledKernel(_ conv: ConvKernel, _ pool: PoolKernel) -> (any Kernel)? {
        if WinogradConvKernel.accepts(conv, pool: pool) { return WinogradConvKernel(conv, pool: pool) }
        if WinogradConvKernel.accepts(conv) { return nil }
        if PooledConvKernel.accepts(conv, pool: pool) { return PooledConvKernel(conv, pool: pool) }
        if ChannelVectorConvKernel.accepts(conv, pool: pool) { return ChannelVectorConvKernel(conv, pool: pool) }
        return nil
    }
}

extension InferenceFusion {
    /// Merges each large 1×1 expansion with the depthwise convolution that
    /// alone reads it (an inverted residual's first two convolutions, each
    /// with its BatchNormalization and ReLU6 already folded in) into one
    /// ExpandDepthwiseKernel step, which never writes the expanded tensor
    /// whole (ExpandDepthwiseConvolution.swift). Bit for bit the same values.
    /// The merged step takes the depthwise step's place and output. Only
    /// expansions of more than `above` floats per image: smaller ones stay
    /// in cache between the two steps anyway.
    static func fuseExpansions(_ steps: [PendingStep], outputStorage: Int, above: Int) -> [PendingStep] {
        var readers: [Int: [Int]] = [:]
        for (i, step) in steps.enumerated() { for s in Set(step.inputs) { readers[s, default: []].append(i) } }
        var result: [PendingStep?] = steps
        for (i, step) in steps.enumerated() {
            guard let expand = step.kernel as? ConvKernel, step.output != outputStorage,
                  let users = readers[step.output], users.count == 1, let j = users.first, j > i,
                  let depthwise = steps[j].kernel as? ConvKernel, steps[j].inputs == [step.output],
                  let fused = ExpandDepthwiseKernel(expand: expand, depthwise: depthwise, above: above) else { continue }
            result[i] = nil
            result[j] = PendingStep(kernel: fused, inputs: step.inputs, inputSizes: step.inputSizes,
                                    output: steps[j].output, tap: nil, node: steps[j].node)
        }
        return result.compactMap { $0 }
    }
}

extension ActivationKernel {
    /// The activation as a clamp, when it is one (Relu, Clip).
    var clampBounds: (Float, Float)? {
        switch function {
        case .relu: return (0, .infinity)
        case let .clip(low, high): return (low, high)
        default: return nil
        }
    }
}
