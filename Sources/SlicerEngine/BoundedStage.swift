import CInt8
import Foundation

// The second stage of CAR's shortcut (TapAblation.swift explains the first).
//
// After the tap's linear consumer, the graph may continue with channel-separable
// operators, a second convolution, monotone channel-separable operators (BN,
// monotone activations, pooling) and one final Gemm that gives the logits — the
// shape of the shipped MNIST and Fashion-MNIST CNNs. There the first stage's
// suffix is dominated by that second convolution, which is half of the network.
//
// Its change under an ablation, Δz = W ⊛ Δx (Δx: the change at its input, dense
// but small), is computed in 8-bit integers with a rigorous bound instead:
// W ≈ s_W·Ŵ and Δx ≈ s_Δ·q with |W − s_W·Ŵ| ≤ e_W and |Δx − s_Δ·q| ≤ s_Δ/2, so
//     |W ⊛ Δx − s_W·s_Δ·(Ŵ ⊛ q)| ≤ e_W·Σ|Δx| + s_Δ/2·s_W·Σ|Ŵ|
// per output value, Σ over its receptive field. The integer product is exact
// (VNNI or plain C, the same integers). Each value of the convolution's output
// is then known to lie in an interval; the monotone operators after it map
// intervals to intervals (held channels-last, one vector of channels per
// position), and the final linear layer bounds every logit difference. When the
// winner's lower margin over every other class exceeds the near-tie margin, the
// prediction of the full recomputation is certain without computing it.
// Otherwise a second, finer level (the rest of Δx and of W in steps 254 times
// smaller: two more 8-bit products) tries again; an image still uncertain is
// recomputed in 32-bit floats from the convolution on and, if that is a
// near-tie, exactly by the caller. On MNIST 98–99.9 % of image ablations are
// certain from the first level or the second; the 8-bit product runs about four
// times faster than the float convolution it replaces.

/// Where the bounded second stage applies, with the convolution's weights in 8 bits.
/// Built once per plan; immutable.
struct BoundedStage: @unchecked Sendable {
    // `@unchecked`: holds kernels (Sendable value types) behind `any Kernel`; immutable.

    /// Node indices (`network.orderedNodes`): the channel-separable operators between
    /// the first consumer and the convolution, the convolution, the monotone operators
    /// after it, and the final linear layer whose output is the network's.
    let chainBefore: [Int]
    let convolution: Int
    let chainAfter: [Int]
    let output: Int
    let description: String

    /// Ŵ as packed for `cnns_i8_gemm`: paddedRows (multiple of 64) × depth (kh·kw·paddedChannels,
    /// k ordered as (kh, kw, channel) to match a channels-last input).
    let packed: [Int8]
    let paddedRows: Int
    let paddedChannels: Int
    let depth: Int
    /// Per output channel, padded with zeros to paddedRows: s_W, e_W, s_W·Σ|Ŵ|/2, and
    /// 128·ΣŴ (undoes the +128 offset of the inputs).
    let rowScale: [Float]
    let rowError: [Float]
    let rowMagnitude: [Float]
    let rowOffset: [Int32]
    /// The second, finer level for images the first leaves uncertain: W − s_W·Ŵ ≈ (s_W/254)·Ŵ₂.
    /// Per output channel: Ŵ₂ packed, s_W/254, 128·ΣŴ₂, e₂ = max|W − W′| with
    /// W′ = s_W·Ŵ + (s_W/254)·Ŵ₂, Σ|W′|, and 127·(s_W/254)·Σ|Ŵ₂| (bounds the one
    /// product left out, Ŵ₂·q₂).
    let finePacked: [Int8]
    let fineScale: [Float]
    let fineOffset: [Int32]
    let fineError: [Float]
    let fineMagnitude: [Float]
    let fineOmitted: [Float]
    /// Output positions (oh·outW + ow) of the convolution that reach the logits, and the others.
    let usedPositions: [Int]
    let unusedPositions: [Int]
    /// The operators after the convolution, for intervals held channels-last
    /// (positions × paddedRows), and the grid they end on.
    let intervalSteps: [IntervalStep]
    let finalPositions: Int
    /// The final layer as classes × (finalPositions × paddedRows), channels-last to match,
    /// alpha applied (zero for padded channels), and its bias.
    let finalWeights: [Float]
    let finalBias: [Float]
    /// max_j |finalWeights[j][i]| per feature.
    let finalLargest: [Float]
    let features: Int
    /// Whether the 8-bit product takes the AVX-512 VNNI path.
    let vector: Bool

    /// The stage after the first consumer `linear`, or nil when the graph has another shape.
    static func find(network: Network, linear: Int, readers: [String: [Int]],
                     kernel: (Int) -> (any Kernel)?) -> BoundedStage? {
        let nodes = network.orderedNodes
        guard kernel(linear) is ConvKernel else { return nil }
        var value = nodes[linear].outputs[0]
        var before: [Int] = [], after: [Int] = [], words: [String] = []
        func onlyReader() -> Int? {
            guard value != network.outputName, let users = readers[value], users.count == 1 else { return nil }
            return users[0]
        }
        // Channel-separable operators, then the convolution.
        var conv: (node: Int, kernel: ConvKernel)?
        while conv == nil {
            guard let user = onlyReader(), nodes[user].inputs.first == value else { return nil }
            let node = nodes[user]
            guard let k = kernel(user) else {
                guard node.opType == "Identity" || node.opType == "Dropout" else { return nil }
                value = node.outputs[0]
                continue
            }
            if let c = k as? ConvKernel {
                guard c.groups == 1 else { return nil }
                conv = (user, c)
                words.append("Conv '\(node.displayName)' (8-bit bound)")
            } else if TapAblationPlan.isChannelSeparable(k) {
                before.append(user)
                words.append(node.opType)
            } else {
                return nil
            }
            value = node.outputs[0]
        }
        // Monotone channel-separable operators, then the final linear layer.
        var final: (node: Int, weights: [Float], bias: [Float], features: Int)?
        while final == nil {
            guard let user = onlyReader(), nodes[user].inputs.first == value else { return nil }
            let node = nodes[user]
            guard let k = kernel(user) else {
                guard ["Identity", "Dropout", "Flatten", "Reshape"].contains(node.opType) else { return nil }
                value = node.outputs[0]
                continue
            }
            if let gemm = k as? GemmKernel {
                guard gemm.fullBias == nil, node.outputs[0] == network.outputName else { return nil }
                let n = gemm.outFeatures, f = gemm.inFeatures
                var w = [Float](repeating: 0, count: n * f)
                for j in 0..<n {
                    for i in 0..<f {
                        w[j * f + i] = gemm.alpha * gemm.weights.pointer[gemm.transB ? j * f + i : i * n + j]
                    }
                }
                final = (user, w, gemm.rowBias ?? [Float](repeating: 0, count: n), f)
            } else if let matmul = k as? MatMulKernel, let weights = matmul.weights, matmul.rows == 1,
                      node.outputs[0] == network.outputName {
                let n = matmul.cols, f = matmul.inner
                var w = [Float](repeating: 0, count: n * f)
                for j in 0..<n { for i in 0..<f { w[j * f + i] = weights.pointer[i * n + j] } }
                final = (user, w, [Float](repeating: 0, count: n), f)
            } else if BoundedStage.isMonotone(k) {
                after.append(user)
                words.append(node.opType)
            } else {
                return nil
            }
            value = node.outputs[0]
        }
        guard let conv, let final, final.features == product(kernel(after.last ?? conv.node)!.outputShape.dropFirst()),
              final.bias.count == network.classCount else { return nil }
        words.append("\(nodes[final.node].opType) '\(nodes[final.node].displayName)'")

        // Output positions of the convolution that any later window reads.
        let w = conv.kernel.window
        var used = [Bool](repeating: true, count: w.outH * w.outW)
        var height = w.outH, width = w.outW
        for node in after {
            guard let pool = kernel(node) as? PoolKernel else {
                if kernel(node) is GlobalPoolKernel { used = used.map { _ in true } }
                continue
            }
            // Positions of this pool's input read by some window, mapped back through
            // the elementwise operators (which keep positions) to the convolution.
            guard pool.height == height, pool.width == width else { return nil }
            var read = [Bool](repeating: false, count: height * width)
            let pw = pool.window
            for r in 0..<pw.outH {
                let rs = pool.rowSpans[r]
                for c in 0..<pw.outW {
                    let cs = pool.colSpans[c]
                    for ki in rs.first..<max(rs.first, rs.last) {
                        for kj in cs.first..<max(cs.first, cs.last) {
                            read[(rs.origin + ki * pw.dilationH) * width + cs.origin + kj * pw.dilationW] = true
                        }
                    }
                }
            }
            // Only the first pooling narrows what the convolution must give; later
            // ones read the first one's output, whose every value matters or not
            // through it. Keep it simple and exact: stop after the first.
            used = zip(used, read).map { $0 && $1 }
            height = pw.outH
            width = pw.outW
            break
        }
        let usedPositions = used.indices.filter { used[$0] }
        guard !usedPositions.isEmpty else { return nil }

        // 8-bit weights, one scale per output channel.
        let m = conv.kernel.outChannels, c = conv.kernel.channels, kk = w.kernelH * w.kernelW
        let paddedRows = (m + 63) / 64 * 64, paddedChannels = (c + 3) / 4 * 4
        let depth = kk * paddedChannels
        var rows = [Int8](repeating: 0, count: paddedRows * depth)
        var scale = [Float](repeating: 0, count: paddedRows), error = scale, magnitude = scale
        var offsets = [Int32](repeating: 0, count: paddedRows)
        var fineRows = [Int8](repeating: 0, count: paddedRows * depth)
        var fineScale = [Float](repeating: 0, count: paddedRows), fineError = fineScale, fineMagnitude = fineScale
        var fineOmitted = fineScale
        var fineOffsets = offsets
        for o in 0..<m {
            let filter = conv.kernel.weights.pointer + o * c * kk
            var largest: Float = 0
            for i in 0..<(c * kk) { largest = max(largest, abs(filter[i])) }
            guard largest.isFinite else { return nil }
            let s = largest > 0 ? largest / 127 : 1
            var worst: Float = 0, total = 0, sum: Int32 = 0
            for ch in 0..<c {
                for t in 0..<kk {
                    let v = filter[ch * kk + t]
                    let q = Int8(max(-127, min(127, (v / s).rounded())))
                    rows[o * depth + t * paddedChannels + ch] = q
                    worst = max(worst, abs(v - s * Float(q)))
                    total += abs(Int(q))
                    sum += Int32(q)
                }
            }
            scale[o] = s
            // The error of each weight, rounded up a little: s·q carries its own rounding.
            error[o] = worst * 1.001 + s * 1e-6
            magnitude[o] = s * Float(total) / 2
            offsets[o] = 128 * sum
            // The finer level: the rest of each weight in steps of s/254.
            let s2 = s / 254
            var worst2: Float = 0, total2 = 0, sum2: Int32 = 0, size: Float = 0
            for ch in 0..<c {
                for t in 0..<kk {
                    let v = filter[ch * kk + t], q = Float(rows[o * depth + t * paddedChannels + ch])
                    let q2 = Int8(max(-127, min(127, ((v - s * q) / s2).rounded())))
                    fineRows[o * depth + t * paddedChannels + ch] = q2
                    let approximation = s * q + s2 * Float(q2)
                    worst2 = max(worst2, abs(v - approximation))
                    size += abs(approximation)
                    total2 += abs(Int(q2))
                    sum2 += Int32(q2)
                }
            }
            fineScale[o] = s2
            fineError[o] = worst2 * 1.001 + s * 1e-6
            fineMagnitude[o] = size * 1.0001
            fineOmitted[o] = 127 * s2 * Float(total2)
            fineOffsets[o] = 128 * sum2
        }
        var packed = [Int8](repeating: 0, count: rows.count), finePacked = packed
        rows.withUnsafeBufferPointer { src in
            packed.withUnsafeMutableBufferPointer { dst in
                cnns_i8_pack(src.baseAddress!, Int32(paddedRows), Int32(depth), dst.baseAddress!)
            }
        }
        fineRows.withUnsafeBufferPointer { src in
            finePacked.withUnsafeMutableBufferPointer { dst in
                cnns_i8_pack(src.baseAddress!, Int32(paddedRows), Int32(depth), dst.baseAddress!)
            }
        }

        // The operators after the convolution, channels-last, and the final layer to match.
        func padded(_ values: [Float]) -> [Float] { values + [Float](repeating: 0, count: paddedRows - values.count) }
        var steps: [IntervalStep] = []
        var gridH = w.outH, gridW = w.outW
        for node in after {
            switch kernel(node) {
            case let bn as BatchNormKernel:
                steps.append(.affine(scale: padded(bn.scale), shift: padded(bn.shift)))
            case let a as ActivationKernel:
                steps.append(.activation(a.function))
            case let pool as PoolKernel:
                guard pool.height == gridH, pool.width == gridW else { return nil }
                steps.append(.pool(pool))
                (gridH, gridW) = (pool.window.outH, pool.window.outW)
            case let global as GlobalPoolKernel:
                steps.append(.globalPool(isMax: global.isMax, positions: gridH * gridW))
                (gridH, gridW) = (1, 1)
            default:
                return nil
            }
        }
        let positions = gridH * gridW
        guard final.features == m * positions else { return nil }
        let k = network.classCount
        var weights = [Float](repeating: 0, count: k * positions * paddedRows)
        for j in 0..<k {
            for o in 0..<m {
                for q in 0..<positions { weights[(j * positions + q) * paddedRows + o] = final.weights[j * final.features + o * positions + q] }
            }
        }
        let unusedPositions = used.indices.filter { !used[$0] }
        return BoundedStage(chainBefore: before, convolution: conv.node, chainAfter: after, output: final.node,
                            description: words.joined(separator: " → "), packed: packed, paddedRows: paddedRows,
                            paddedChannels: paddedChannels, depth: depth, rowScale: scale, rowError: error,
                            rowMagnitude: magnitude, rowOffset: offsets, finePacked: finePacked, fineScale: fineScale,
                            fineOffset: fineOffsets, fineError: fineError, fineMagnitude: fineMagnitude,
                            fineOmitted: fineOmitted, usedPositions: usedPositions,
                            unusedPositions: unusedPositions, intervalSteps: steps, finalPositions: positions,
                            finalWeights: weights, finalBias: final.bias,
                            finalLargest: (0..<(positions * paddedRows)).map { i in
                                (0..<k).reduce(Float(0)) { max($0, abs(weights[$1 * positions * paddedRows + i])) }
                            },
                            features: positions * paddedRows,
                            vector: cnns_i8_has_vnni() != 0)
    }

    /// Channel-separable operators that map intervals to intervals when run on both
    /// ends (then ordered): affine per channel, non-decreasing activations, pooling.
    static func isMonotone(_ k: any Kernel) -> Bool {
        if k is BatchNormKernel || k is PoolKernel || k is GlobalPoolKernel { return true }
        guard let a = k as? ActivationKernel else { return false }
        switch a.function {
        case .relu, .sigmoid, .tanh, .clip: return true
        case let .leakyRelu(alpha): return alpha >= 0
        case let .hardSigmoid(alpha, _): return alpha >= 0
        case .hardSwish: return false
        }
    }
}

/// An elementwise operator applied inside the first stage's loop.
enum FusedOperator {
    case affine(scale: [Float], shift: [Float])
    case relu
    case leakyRelu(alpha: Float)
    case clip(min: Float, max: Float)

    init?(_ function: ActivationKernel.Function) {
        switch function {
        case .relu: self = .relu
        case let .leakyRelu(alpha): self = .leakyRelu(alpha: alpha)
        case let .clip(lo, hi): self = .clip(min: lo, max: hi)
        case .sigmoid, .tanh, .hardSigmoid, .hardSwish: return nil
        }
    }
}

/// One operator after the bounded convolution, as it acts on intervals held
/// channels-last (a vector of channels per position).
enum IntervalStep: @unchecked Sendable {
    // `@unchecked`: PoolKernel is a Sendable value type holding only values.
    /// BatchNormalization: x·scale + shift per channel (padded to paddedRows).
    case affine(scale: [Float], shift: [Float])
    case activation(ActivationKernel.Function)
    case pool(PoolKernel)
    case globalPool(isMax: Bool, positions: Int)
}

/// One worker's buffers and steps for the bounded stage. Not thread-safe.
final class BoundedStageRunner {
    let stage: BoundedStage
    private let before: [PlanStep]
    /// The leading elementwise operators of `before`, applied inside the first stage,
    /// and the steps after them.
    private let fused: [FusedOperator]
    private let rest: [PlanStep]
    private var firstColumns: [Float] = []
    private var firstPlane: [Float] = []
    private var termWeights: [Float] = []
    private var termOffsets: [Int] = []
    /// The first stage's sum before its fused operators, kept for a nested ablation.
    private var keptLinear: [Float] = []
    private let conv: PlanStep
    private let convKernel: ConvKernel
    private let after: [PlanStep]
    private let final: PlanStep
    private let classCount: Int
    /// Floats per image at the convolution's input and output.
    let inputSize: Int
    let outputSize: Int
    /// Whether to take the vector path of the 8-bit product (tests turn it off to compare).
    var vector: Bool

    /// Base values of the prepared chunk at the convolution's input and output.
    private let baseInput: UnsafeMutablePointer<Float>
    private let baseOutput: UnsafeMutablePointer<Float>
    // Per-image work space.
    private let work: [UnsafeMutablePointer<Float>]     // 6 buffers of `workSize`
    private let workSize: Int
    private let newInput: UnsafeMutablePointer<Float>
    private let difference: UnsafeMutablePointer<Float>
    private let columnSums: UnsafeMutablePointer<Float>  // Σ_c |Δx| per input position
    private let fieldSums: UnsafeMutablePointer<Float>   // Σ|Δx| over each used output's field
    private let quantized: UnsafeMutablePointer<UInt8>   // channels-last, padded, +128
    private let paddedH: Int, paddedW: Int
    private let rows: UnsafeMutablePointer<UInt8>
    private let rowCount: Int
    private let products: UnsafeMutablePointer<Int32>
    private var deltas: UnsafeMutablePointer<Float>      // used positions × paddedRows
    // The finer level's inputs, rows and products.
    private let fineQuantized: UnsafeMutablePointer<UInt8>
    private let fineRows: UnsafeMutablePointer<UInt8>
    private var fineDeltas: UnsafeMutablePointer<Float>
    private let crossDeltas: UnsafeMutablePointer<Float>
    private let logits: UnsafeMutablePointer<Float>
    private let lowerFeatures: UnsafeMutablePointer<Float>
    private let radiusFeatures: UnsafeMutablePointer<Float>
    /// The base output channels-last (images × positions × paddedRows), and the
    /// interval buffers (lower and upper, twice, of the largest grid × paddedRows).
    private let baseOutputLast: UnsafeMutablePointer<Float>
    private let intervals: [UnsafeMutablePointer<Float>]

    /// Images certified by the bound, and those recomputed in floats, since creation.
    private(set) var certifiedImages = 0
    private(set) var recomputedImages = 0

    init(stage: BoundedStage, steps: [PlanStep], capacity: Int, classCount: Int) {
        self.stage = stage
        self.classCount = classCount
        func step(_ node: Int) -> PlanStep { steps.first { $0.nodeIndex == node }! }
        before = stage.chainBefore.map(step)
        var fused: [FusedOperator] = []
        for s in before {
            if let bn = s.kernel as? BatchNormKernel {
                fused.append(.affine(scale: bn.scale, shift: bn.shift))
            } else if let a = s.kernel as? ActivationKernel, let op = FusedOperator(a.function) {
                fused.append(op)
            } else {
                break
            }
        }
        self.fused = fused
        rest = Array(before.dropFirst(fused.count))
        conv = step(stage.convolution)
        convKernel = conv.kernel as! ConvKernel
        after = stage.chainAfter.map(step)
        final = step(stage.output)
        vector = stage.vector
        let c = convKernel
        inputSize = c.channels * c.height * c.width
        outputSize = product(c.outputShape.dropFirst())
        let sizes = (stage.chainBefore + [stage.convolution] + stage.chainAfter + [stage.output])
            .map { product(step($0).kernel.outputShape.dropFirst()) }
        let workSize = max(sizes.max() ?? 1, c.channels * c.height * c.width, product(c.outputShape.dropFirst()), 1)
        self.workSize = workSize
        func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
            // Room past the end for the vector loads and stores of `fastPool`.
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n + 32)
            p.initialize(repeating: 0, count: n + 32)
            return p
        }
        baseInput = floats(capacity * inputSize)
        baseOutput = floats(capacity * outputSize)
        work = (0..<6).map { _ in floats(workSize) }
        newInput = floats(inputSize)
        difference = floats(inputSize)
        columnSums = floats(c.height * c.width)
        fieldSums = floats(stage.usedPositions.count)
        let w = c.window
        paddedH = c.height + w.padTop + w.padBottom
        paddedW = c.width + w.padLeft + w.padRight
        // Padding and padded channels hold 128, the offset zero; only the inside is rewritten.
        quantized = .allocate(capacity: paddedH * paddedW * stage.paddedChannels)
        quantized.initialize(repeating: 128, count: paddedH * paddedW * stage.paddedChannels)
        rowCount = (stage.usedPositions.count + 5) / 6 * 6
        rows = .allocate(capacity: rowCount * stage.depth)
        rows.initialize(repeating: 128, count: rowCount * stage.depth)
        products = .allocate(capacity: rowCount * stage.paddedRows)
        products.initialize(repeating: 0, count: rowCount * stage.paddedRows)
        deltas = floats(rowCount * stage.paddedRows)
        fineDeltas = floats(rowCount * stage.paddedRows)
        crossDeltas = floats(rowCount * stage.paddedRows)
        fineQuantized = .allocate(capacity: paddedH * paddedW * stage.paddedChannels)
        fineQuantized.initialize(repeating: 128, count: paddedH * paddedW * stage.paddedChannels)
        fineRows = .allocate(capacity: rowCount * stage.depth)
        fineRows.initialize(repeating: 128, count: rowCount * stage.depth)
        logits = floats(classCount)
        lowerFeatures = floats(stage.features)
        radiusFeatures = floats(stage.features)
        let grid = c.window.outH * c.window.outW
        baseOutputLast = floats(capacity * grid * stage.paddedRows)
        intervals = (0..<4).map { _ in floats(grid * stage.paddedRows) }
    }

    deinit {
        baseInput.deallocate(); baseOutput.deallocate()
        for w in work { w.deallocate() }
        newInput.deallocate(); difference.deallocate(); columnSums.deallocate(); fieldSums.deallocate()
        quantized.deallocate(); rows.deallocate(); products.deallocate(); logits.deallocate()
        lowerFeatures.deallocate(); radiusFeatures.deallocate(); deltas.deallocate(); baseOutputLast.deallocate()
        fineDeltas.deallocate(); crossDeltas.deallocate(); fineQuantized.deallocate(); fineRows.deallocate()
        for b in intervals { b.deallocate() }
    }

    /// Keeps the base values of `count` images at the convolution's input (call before
    /// the convolution runs, then `keepOutput` after).
    func keepInput(_ x: UnsafePointer<Float>, count: Int) {
        baseInput.update(from: x, count: count * inputSize)
    }

    /// Keeps the convolution's base output; false when the kept values are not all
    /// finite (the chunk then takes the other paths).
    func keepOutput(_ y: UnsafePointer<Float>, count: Int) -> Bool {
        baseOutput.update(from: y, count: count * outputSize)
        // Channels-last copy for the intervals: one vector of channels per position.
        let grid = convKernel.window.outH * convKernel.window.outW, mp = stage.paddedRows
        for n in 0..<count {
            for m in 0..<convKernel.outChannels {
                let src = y + n * outputSize + m * grid, dst = baseOutputLast + n * grid * mp + m
                for q in 0..<grid { dst[q * mp] = src[q] }
            }
        }
        for i in 0..<(count * inputSize) where !baseInput[i].isFinite { return false }
        for i in 0..<(count * outputSize) where !baseOutput[i].isFinite { return false }
        return true
    }

    /// The first stage for one image, as `TapAblationRunner` computes it for a chunk,
    /// with the leading elementwise operators after it applied on the way:
    /// y = y_cached − Σ_c W[:, c] ⊛ (x_c − v_c) for the ablated `channels` of the
    /// first consumer `first` (a Conv), written to `target`.
    ///
    /// With `fromKept`, the sum starts from the kept result of an earlier call for the
    /// same image (whose channels `channels` then extends); with `keep`, this call's
    /// result before the fused operators is kept for such a later call.
    func firstStage(image i: Int, channels: [Int], first: ConvKernel, cachedInput: UnsafePointer<Float>,
                    cachedOutput: UnsafePointer<Float>, zeroPlanes: UnsafePointer<Float>, planeSize: Int,
                    tapChannels: Int, fromKept: Bool = false, keep: Bool = false, into target: UnsafeMutablePointer<Float>) {
        let p = first.outPixels, perImage = first.outChannels * p
        if keptLinear.count < perImage { keptLinear = [Float](repeating: 0, count: perImage) }
        let w = first.window, kk = w.kernelH * w.kernelW
        let cg = first.channels / first.groups, mg = first.outChannels / first.groups
        if firstColumns.count < channels.count * kk * p + 16 {
            firstColumns = [Float](repeating: 0, count: channels.count * kk * p + 16)
        }
        if firstPlane.count < planeSize { firstPlane = [Float](repeating: 0, count: planeSize) }
        let termCount = first.outChannels * max(9, (channels.count * kk + 8) / 9 * 9)
        if termWeights.count < termCount {
            termWeights = [Float](repeating: 0, count: termCount)
            termOffsets = [Int](repeating: 0, count: termCount)
        }
        firstColumns.withUnsafeMutableBufferPointer { colBuf in
        firstPlane.withUnsafeMutableBufferPointer { planeBuf in
        termWeights.withUnsafeMutableBufferPointer { weights in
        termOffsets.withUnsafeMutableBufferPointer { offsets in
        keptLinear.withUnsafeMutableBufferPointer { keptBuf in
            let columns = colBuf.baseAddress!, plane = planeBuf.baseAddress!, kept = keptBuf.baseAddress!
            let fused = keep ? [] : self.fused
            let targetOut = target
            let target = keep ? kept : target
            for (j, c) in channels.enumerated() {
                let x = cachedInput + (i * tapChannels + c) * planeSize, v = zeroPlanes + c * planeSize
                for t in 0..<planeSize { plane[t] = x[t] - v[t] }
                TapAblationRunner.planeColumns(plane, first, into: columns + j * kk * p, rowStride: p)
            }
            let source = fromKept ? UnsafePointer(kept) : cachedOutput + i * perImage
            // The terms W[m, c, k]·column(c, k): the same columns for every output channel
            // of a group, the weights per output channel (weights[m·terms + j]).
            if first.groups == 1 {
                // Padded to whole blocks of nine with zero weights (on a real column),
                // negated, so that the register-blocked loop has no branches.
                let terms = max(9, (channels.count * kk + 8) / 9 * 9)
                for m in 0..<first.outChannels {
                    var j = 0
                    for c in channels {
                        let filter = first.weights.pointer + (m * cg + c % cg) * kk
                        for k in 0..<kk { weights[m * terms + j] = -filter[k]; j += 1 }
                    }
                    while j < terms { weights[m * terms + j] = 0; j += 1 }
                }
                for j in 0..<terms { offsets[j] = j < channels.count * kk ? j * p : 0 }
                subtractBlocked(target, source, weights.baseAddress!, offsets.baseAddress!, terms: terms,
                                columns: columns, planeSize: p, channels: first.outChannels, fused: fused)
            } else {
                for m in 0..<first.outChannels {
                    let g = m / mg
                    var terms = 0
                    for (j, c) in channels.enumerated() where c / cg == g {
                        let filter = first.weights.pointer + (m * cg + c % cg) * kk
                        for k in 0..<kk {
                            weights[terms] = filter[k]
                            offsets[terms] = (j * kk + k) * p
                            terms += 1
                        }
                    }
                    subtractTerms(target + m * p, source + m * p, weights.baseAddress!, offsets.baseAddress!, terms: terms,
                                  columns: columns, count: p, channel: m, fused: fused)
                }
            }
            if keep {
                // The fused operators from the kept sum into the target.
                for m in 0..<first.outChannels {
                    subtractTerms(targetOut + m * p, kept + m * p, weights.baseAddress!, offsets.baseAddress!, terms: 0,
                                  columns: columns, count: p, channel: m, fused: self.fused)
                }
            }
        }}}}}
    }

    /// Predictions of `count` images under each of `ablations` ablations, whose first
    /// stage `firstStage(image, ablation, into:)` computes: [ablation][image], certain
    /// ones, nil for images that need the exact recomputation. `margin` as
    /// `CAREngine.nearTieMargin`. Images outer, ablations inner: an image's base
    /// values stay in cache across its ablations.
    func predictions(count: Int, ablations: Int, scratch: UnsafeMutablePointer<Float>, margin: Float,
                     firstStage: (Int, Int, UnsafeMutablePointer<Float>) -> Void) -> [[Int?]] {
        var out = [[Int?]](repeating: [Int?](repeating: nil, count: count), count: ablations)
        for i in 0..<count {
            for a in 0..<ablations {
                // The first stage's output → the convolution's input, in floats.
                firstStage(i, a, work[0])
                var source = work[0]
                for (j, step) in rest.enumerated() {
                    let target = j == rest.count - 1 ? newInput : work[(j + 1) % 2]
                    if let pool = step.kernel as? PoolKernel, fastPool(pool, source, into: target) {
                    } else {
                        step.kernel.run(KernelIO(inputs: [source], output: target, scratch: scratch, batch: 1))
                    }
                    source = target
                }
                if rest.isEmpty { newInput.update(from: source, count: inputSize) }
                if let k = certify(image: i, scratch: scratch, margin: margin) {
                    out[a][i] = k
                    certifiedImages += 1
                } else {
                    out[a][i] = recompute(scratch: scratch, margin: margin)
                    recomputedImages += 1
                }
            }
        }
        return out
    }

    /// A 2×2/2 unpadded max pool on rows of at most 16 values, with vector loads
    /// (the buffers have room past their ends); false when `pool` is another kind.
    private func fastPool(_ pool: PoolKernel, _ x: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>) -> Bool {
        let w = pool.window
        guard case .max = pool.mode, w.kernelH == 2, w.kernelW == 2, w.strideH == 2, w.strideW == 2,
              w.dilationH == 1, w.dilationW == 1, w.padTop == 0, w.padLeft == 0, w.padBottom == 0, w.padRight == 0,
              pool.width <= 16, w.outW <= 8, 2 * w.outH <= pool.height else { return false }
        let planes = pool.outputShape[1], width = pool.width, inPlane = pool.height * width, outPlane = w.outH * w.outW
        for plane in 0..<planes {
            let src = x + plane * inPlane, dst = y + plane * outPlane
            for r in 0..<w.outH {
                let top = load(src + 2 * r * width), bottom = load(src + (2 * r + 1) * width)
                let v = larger(top, bottom)
                let e = v.evenHalf, o = v.oddHalf
                // Eight lanes stored, outW of them meant: the next row (or the room past
                // the end) takes the rest.
                UnsafeMutableRawPointer(dst + r * w.outW).storeBytes(of: e.replacing(with: o, where: e .< o),
                                                                     as: SIMD8<Float>.self)
            }
        }
        return true
    }

    // MARK: - The bound

    /// The class the full recomputation predicts, when the bound makes it certain.
    private func certify(image i: Int, scratch: UnsafeMutablePointer<Float>, margin: Float) -> Int? {
        let c = convKernel, s = stage
        let plane = c.height * c.width
        // Δx, its largest magnitude, and Σ_c |Δx| per position.
        let base = baseInput + i * inputSize
        let largest = differenceAndLargest(newInput, base, into: difference, count: inputSize)
        guard largest.isFinite else { return nil }
        columnSums.update(repeating: 0, count: plane)
        for ch in 0..<c.channels { addMagnitudes(columnSums, difference + ch * plane, count: plane) }
        // q = round(Δx / s_Δ) in −127…127, stored +128, channels-last inside the padding.
        let stepSize: Float = largest > 0 ? largest / 127 : 0
        let inverse: Float = largest > 0 ? 127 / largest : 0
        quantize(into: quantized) { d in (d * inverse).rounded() }
        gatherRows(from: quantized, into: rows, sums: true)
        multiply(s.packed, rows, offsets: s.rowOffset, scales: s.rowScale, step: stepSize, into: deltas)
        if let k = certainFromDeltas(image: i, error: s.rowError, halfStep: stepSize / 2 * 1.001, magnitude: s.rowMagnitude,
                                     omittedStep: 0, omitted: s.rowMagnitude, margin: margin) {
            return k
        }
        // The finer level: the rest of Δx in steps of s_Δ/254 (q₂), and the rest of the
        // weights (Ŵ₂): Ŵ·q + Ŵ·q₂/254 + Ŵ₂·q/254, with Ŵ₂·q₂/254² bounded.
        guard largest > 0 else { return nil }
        let fineStep = stepSize / 254, fineInverse = 127 * 254 / largest
        quantize(into: fineQuantized) { d in
            let q = max(-127, min(127, (d * inverse).rounded()))
            return ((d - stepSize * q) * fineInverse).rounded()
        }
        gatherRows(from: fineQuantized, into: fineRows, sums: false)
        multiply(s.packed, fineRows, offsets: s.rowOffset, scales: s.rowScale, step: fineStep, into: fineDeltas)
        multiply(s.finePacked, rows, offsets: s.fineOffset, scales: s.fineScale, step: stepSize, into: crossDeltas)
        addInto(fineDeltas, deltas, crossDeltas, count: s.usedPositions.count * s.paddedRows)
        swap(&deltas, &fineDeltas)
        defer { swap(&deltas, &fineDeltas) }
        // |Δx − s_Δ·q − s_Δ/254·q₂| ≤ s_Δ/508, widened for the rounding of Δx − s_Δ·q.
        return certainFromDeltas(image: i, error: s.fineError, halfStep: fineStep / 2 * 1.01 + largest * 0x1p-22,
                                 magnitude: s.fineMagnitude, omittedStep: fineStep, omitted: s.fineOmitted, margin: margin)
    }

    /// Writes round-to-byte values of Δx (`level` maps Δx to an integer-valued float,
    /// clamped here to −127…127) +128, channels-last inside the padding.
    private func quantize(into target: UnsafeMutablePointer<UInt8>, _ level: (Float) -> Float) {
        let c = convKernel, w = c.window, cp = stage.paddedChannels, plane = c.height * c.width
        for h in 0..<c.height {
            for x in 0..<c.width {
                let dst = target + ((h + w.padTop) * paddedW + w.padLeft + x) * cp
                let src = difference + h * c.width + x
                for ch in 0..<c.channels {
                    dst[ch] = UInt8(truncatingIfNeeded: Int32(max(-127, min(127, level(src[ch * plane])))) &+ 128)
                }
            }
        }
    }

    /// One row of kh·kw·paddedChannels bytes per used output position; with `sums`,
    /// also Σ|Δx| over each one's field.
    private func gatherRows(from source: UnsafePointer<UInt8>, into target: UnsafeMutablePointer<UInt8>, sums: Bool) {
        let c = convKernel, w = c.window, s = stage, cp = s.paddedChannels
        s.usedPositions.withUnsafeBufferPointer { used in
            for u in used.indices {
                let oh = used[u] / w.outW, ow = used[u] % w.outW
                let row = target + u * s.depth
                var field: Float = 0
                for kh in 0..<w.kernelH {
                    let ih = oh * w.strideH + kh * w.dilationH   // in padded coordinates
                    for kw in 0..<w.kernelW {
                        let iw = ow * w.strideW + kw * w.dilationW
                        copyBytes(row + (kh * w.kernelW + kw) * cp, source + (ih * paddedW + iw) * cp, count: cp)
                        let y = ih - w.padTop, x = iw - w.padLeft
                        if sums && y >= 0 && y < c.height && x >= 0 && x < c.width { field += columnSums[y * c.width + x] }
                    }
                }
                if sums { fieldSums[u] = field }
            }
        }
    }

    /// The 8-bit product of `weights` (packed) and `rows`, scaled to floats: (scale·step)·(Ŵ·q).
    private func multiply(_ weights: [Int8], _ rows: UnsafePointer<UInt8>, offsets: [Int32], scales: [Float], step: Float,
                         into target: UnsafeMutablePointer<Float>) {
        let s = stage
        weights.withUnsafeBufferPointer { p in
        offsets.withUnsafeBufferPointer { o in
        scales.withUnsafeBufferPointer { sc in
            cnns_i8_gemm_scaled(p.baseAddress!, Int32(s.paddedRows), Int32(s.depth), rows, Int32(rowCount), products,
                                o.baseAddress!, sc.baseAddress!, step, target, vector ? 1 : 0)
        }}}
    }

    /// Intervals centred on base + `deltas` with radius e·field + halfStep·magnitude +
    /// omittedStep·omitted (per output channel), through the operators after the
    /// convolution and the final layer: the certain class, if any.
    private func certainFromDeltas(image i: Int, error: [Float], halfStep: Float, magnitude: [Float],
                                   omittedStep: Float, omitted: [Float], margin: Float) -> Int? {
        let w = convKernel.window, s = stage
        // Interval of every used output value, channels-last; unused positions keep the
        // base (nothing after reads them).
        let mp = s.paddedRows, grid = w.outH * w.outW
        let baseLast = baseOutputLast + i * grid * mp
        var lower = intervals[0], upper = intervals[1]
        for position in s.unusedPositions {
            (lower + position * mp).update(from: baseLast + position * mp, count: mp)
            (upper + position * mp).update(from: baseLast + position * mp, count: mp)
        }
        error.withUnsafeBufferPointer { e in
        magnitude.withUnsafeBufferPointer { size in
        omitted.withUnsafeBufferPointer { rest in
        s.usedPositions.withUnsafeBufferPointer { used in
            for u in used.indices {
                let at = used[u] * mp
                boundValues(base: baseLast + at, delta: deltas + u * mp, error: e.baseAddress!, field: fieldSums[u],
                            magnitude: size.baseAddress!, halfStep: halfStep, omitted: rest.baseAddress!,
                            omittedStep: omittedStep, lower: lower + at, upper: upper + at, count: mp)
            }
        }}}}
        // The operators after the convolution, on both ends.
        var positions = grid, spare = (intervals[2], intervals[3])
        for step in s.intervalSteps {
            switch step {
            case let .affine(scale, shift):
                scale.withUnsafeBufferPointer { a in
                    shift.withUnsafeBufferPointer { b in
                        for q in 0..<positions {
                            affineInterval(lower + q * mp, upper + q * mp, scale: a.baseAddress!, shift: b.baseAddress!, count: mp)
                        }
                    }
                }
            case let .activation(function):
                activate(function, lower, count: positions * mp)
                activate(function, upper, count: positions * mp)
            case let .pool(pool):
                poolLast(pool, lower, into: spare.0, channels: mp)
                poolLast(pool, upper, into: spare.1, channels: mp)
                (lower, upper, spare) = (spare.0, spare.1, (lower, upper))
                positions = pool.window.outH * pool.window.outW
            case let .globalPool(isMax, count):
                globalPoolLast(isMax: isMax, lower, into: spare.0, positions: count, channels: mp)
                globalPoolLast(isMax: isMax, upper, into: spare.1, positions: count, channels: mp)
                (lower, upper, spare) = (spare.0, spare.1, (lower, upper))
                positions = 1
            }
        }
        return certainClass(lower: lower, upper: upper, margin: margin)
    }

    /// The final linear layer on intervals: the class whose lower margin over every
    /// other class exceeds the near-tie margin, if any.
    private func certainClass(lower: UnsafeMutablePointer<Float>, upper: UnsafeMutablePointer<Float>,
                              margin: Float) -> Int? {
        let f = stage.features, k = classCount
        let center = lowerFeatures, radius = radiusFeatures
        guard centerAndRadius(lower, upper, center: center, radius: radius, count: f) else { return nil }
        // γ: the worst relative rounding of an f-term float sum (|error| ≤ γ·Σ|terms|).
        let gamma = Float(f + 2) * Float.ulpOfOne
        return stage.finalWeights.withUnsafeBufferPointer { wBuf -> Int? in
        stage.finalBias.withUnsafeBufferPointer { bias -> Int? in
        stage.finalLargest.withUnsafeBufferPointer { largest -> Int? in
            let w = wBuf.baseAddress!
            // With L_i = max_j |W_ji|: Σ L·radius bounds every class's spread, and γ·Σ L·|centre|
            // the rounding of every logit's float sum.
            let sums = dotSpreadSize(largest.baseAddress!, center, radius, count: f)
            let rounding = gamma * sums.size
            var best = 0, top: Float = 0
            for j in 0..<k {
                logits[j] = dot(w + j * f, center, count: f) + bias[j]
                top = max(top, abs(logits[j]) + abs(bias[j]))
                if logits[j] > logits[best] { best = j }
            }
            let each = rounding + 2 * Float.ulpOfOne * top
            let scale = max(1, top + sums.spread * (1 + gamma) + each)
            guard scale.isFinite else { return nil }
            for j in 0..<k where j != best {
                // The difference of the two rows bounds the pair tighter than the two spreads.
                let pair = differenceSpread(w + best * f, w + j * f, radius, count: f) * (1 + gamma)
                let difference = logits[best] - logits[j]
                let low = difference - pair - 2 * each - abs(difference) * Float.ulpOfOne
                guard low > margin * scale else { return nil }
            }
            return best
        }}}
    }

    /// The image recomputed in floats from the convolution on: the prediction when its
    /// top two logits are not a near-tie, else nil.
    private func recompute(scratch: UnsafeMutablePointer<Float>, margin: Float) -> Int? {
        var source = work[0]
        conv.kernel.run(KernelIO(inputs: [newInput], output: source, scratch: scratch, batch: 1))
        for (j, step) in after.enumerated() {
            let target = work[(j + 1) % 2]
            step.kernel.run(KernelIO(inputs: [source], output: target, scratch: scratch, batch: 1))
            source = target
        }
        final.kernel.run(KernelIO(inputs: [source], output: logits, scratch: scratch, batch: 1))
        return TapAblationRunner.confidentPrediction(UnsafeBufferPointer(start: logits, count: classCount), margin: margin)
    }
}

// MARK: - Vector loops (explicit SIMD: float sums are not reassociated otherwise)

private typealias Vector = SIMD16<Float>

/// |v| lane by lane (NaN stays NaN).
@inline(__always) private func magnitude(_ v: Vector) -> Vector { v.replacing(with: -v, where: v .< 0) }
@inline(__always) private func magnitude(_ v: Float) -> Float { abs(v) }
/// Lane-wise max as a compare and blend (`pointwiseMax` is not vectorised).
@inline(__always) private func larger(_ a: Vector, _ b: Vector) -> Vector { a.replacing(with: b, where: a .< b) }

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> Vector {
    UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
}

@inline(__always) private func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
}

/// d = a − b, and the largest |d| (not finite when any d is not).
private func differenceAndLargest(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                  into d: UnsafeMutablePointer<Float>, count: Int) -> Float {
    // Comparisons and blends: Swift's pointwiseMax runs lane by lane. A NaN is lost by
    // the max, so a running sum of magnitudes (NaN or infinite then) tells it apart.
    var t = 0, top = Vector(), total = Vector()
    while t + 16 <= count {
        let v = load(a + t) - load(b + t)
        store(v, d + t)
        let m = magnitude(v)
        top = larger(top, m)
        total += m
        t += 16
    }
    var largest = top.max(), sum = total.sum()
    while t < count {
        let v = a[t] - b[t]
        d[t] = v
        largest = max(largest, abs(v))
        sum += abs(v)
        t += 1
    }
    return sum.isFinite ? largest : .nan
}

/// sums += |x|.
private func addMagnitudes(_ sums: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var t = 0
    while t + 16 <= count {
        store(load(sums + t) + magnitude(load(x + t)), sums + t)
        t += 16
    }
    while t < count { sums[t] += magnitude(x[t]); t += 1 }
}

/// Midpoints and half-widths; false when any end is not finite.
private func centerAndRadius(_ lo: UnsafePointer<Float>, _ hi: UnsafePointer<Float>, center: UnsafeMutablePointer<Float>,
                             radius: UnsafeMutablePointer<Float>, count: Int) -> Bool {
    var t = 0, total = Vector()
    let half = Vector(repeating: 0.5)
    while t + 16 <= count {
        let a = load(lo + t), b = load(hi + t)
        total += magnitude(a) + magnitude(b)
        let c = (a + b) * half
        store(c, center + t)
        // Rounding of the midpoint: the half-width is taken from the farther end.
        store(larger(b - c, c - a), radius + t)
        t += 16
    }
    var sum = total.sum()
    while t < count {
        let a = lo[t], b = hi[t]
        sum += abs(a) + abs(b)
        let c = (a + b) / 2
        center[t] = c
        radius[t] = max(b - c, c - a)
        t += 1
    }
    // Infinite or NaN ends make the sum so (a finite overflow only refuses a certificate).
    return sum.isFinite
}

/// w·c, Σ|w|·r and Σ|w|·|c|, each summed in floats.
private func dotSpreadSize(_ w: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ r: UnsafePointer<Float>,
                           count: Int) -> (dot: Float, spread: Float, size: Float) {
    var t = 0, dot = Vector(), spread = Vector(), size = Vector()
    while t + 16 <= count {
        let wv = load(w + t), cv = load(c + t)
        dot = dot.addingProduct(wv, cv)
        spread = spread.addingProduct(magnitude(wv), load(r + t))
        size = size.addingProduct(magnitude(wv), magnitude(cv))
        t += 16
    }
    var d = dot.sum(), s = spread.sum(), z = size.sum()
    while t < count {
        d += w[t] * c[t]
        s += magnitude(w[t]) * r[t]
        z += magnitude(w[t] * c[t])
        t += 1
    }
    return (d, s, z)
}

/// Σ|a − b|·r.
private func differenceSpread(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ r: UnsafePointer<Float>,
                              count: Int) -> Float {
    var t = 0, acc = Vector()
    while t + 16 <= count {
        acc = acc.addingProduct(magnitude(load(a + t) - load(b + t)), load(r + t))
        t += 16
    }
    var s = acc.sum()
    while t < count { s += magnitude(a[t] - b[t]) * r[t]; t += 1 }
    return s
}

/// Copies bytes, 16 at a time where it can.
@inline(__always) private func copyBytes(_ dst: UnsafeMutablePointer<UInt8>, _ src: UnsafePointer<UInt8>, count: Int) {
    var t = 0
    while t + 16 <= count {
        UnsafeMutableRawPointer(dst + t).storeBytes(of: UnsafeRawPointer(src + t).loadUnaligned(as: SIMD16<UInt8>.self),
                                                    as: SIMD16<UInt8>.self)
        t += 16
    }
    while t < count { dst[t] = src[t]; t += 1 }
}

/// center = base + delta, radius = e·field + halfStep·magnitude + omittedStep·omitted
/// (+ room for rounding), per channel.
private func boundValues(base: UnsafePointer<Float>, delta: UnsafePointer<Float>, error: UnsafePointer<Float>,
                         field: Float, magnitude size: UnsafePointer<Float>, halfStep: Float,
                         omitted: UnsafePointer<Float>, omittedStep: Float,
                         lower: UnsafeMutablePointer<Float>, upper: UnsafeMutablePointer<Float>, count: Int) {
    var t = 0
    let f = Vector(repeating: field), h = Vector(repeating: halfStep), o = Vector(repeating: omittedStep)
    let room = Vector(repeating: 1e-5)
    while t + 16 <= count {
        let d = load(delta + t), c = load(base + t) + d
        let r = (load(error + t) * f).addingProduct(h, load(size + t)).addingProduct(o, load(omitted + t))
            .addingProduct(room, magnitude(d) + magnitude(c))
        store(c - r, lower + t)
        store(c + r, upper + t)
        t += 16
    }
    while t < count {
        let d = delta[t], c = base[t] + d
        let r = error[t] * field + halfStep * size[t] + omittedStep * omitted[t] + 1e-5 * (abs(d) + abs(c))
        lower[t] = c - r
        upper[t] = c + r
        t += 1
    }
}

/// out = a + b + c.
private func addInto(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    var t = 0
    while t + 16 <= count {
        store(load(out + t) + load(a + t) + load(b + t), out + t)
        t += 16
    }
    while t < count { out[t] += a[t] + b[t]; t += 1 }
}

/// [lo, hi]·scale + shift per channel, put in order (a negative scale swaps the ends).
private func affineInterval(_ lo: UnsafeMutablePointer<Float>, _ hi: UnsafeMutablePointer<Float>,
                            scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, count: Int) {
    var t = 0
    while t + 16 <= count {
        let s = load(scale + t), b = load(shift + t)
        let x = load(lo + t) * s + b, y = load(hi + t) * s + b
        let swapped = y .< x
        store(x.replacing(with: y, where: swapped), lo + t)
        store(y.replacing(with: x, where: swapped), hi + t)
        t += 16
    }
    while t < count {
        let x = lo[t] * scale[t] + shift[t], y = hi[t] * scale[t] + shift[t]
        lo[t] = min(x, y)
        hi[t] = max(x, y)
        t += 1
    }
}

/// A non-decreasing activation in place.
private func activate(_ function: ActivationKernel.Function, _ x: UnsafeMutablePointer<Float>, count: Int) {
    switch function {
    case .relu:
        var t = 0
        let zero = Vector()
        while t + 16 <= count {
            let v = load(x + t)
            store(v.replacing(with: zero, where: v .< zero), x + t)
            t += 16
        }
        while t < count { x[t] = max(x[t], 0); t += 1 }
    case let .leakyRelu(alpha):
        for t in 0..<count where x[t] < 0 { x[t] *= alpha }
    case .sigmoid:
        for t in 0..<count { x[t] = 1 / (1 + Foundation.exp(-x[t])) }
    case .tanh:
        for t in 0..<count { x[t] = Foundation.tanh(x[t]) }
    case let .clip(lo, hi):
        for t in 0..<count { x[t] = x[t] < lo ? lo : (x[t] > hi ? hi : x[t]) }
    case let .hardSigmoid(alpha, beta):
        for t in 0..<count { x[t] = ActivationKernel.hardSigmoid(x[t], alpha, beta) }
    case .hardSwish:
        for t in 0..<count { x[t] *= ActivationKernel.hardSigmoid(x[t], 1 / 6, 0.5) }
    }
}

/// A PoolKernel on channels-last values: one vector of `channels` per position.
private func poolLast(_ pool: PoolKernel, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, channels: Int) {
    let w = pool.window, width = pool.width
    for r in 0..<w.outH {
        let rs = pool.rowSpans[r]
        for c in 0..<w.outW {
            let cs = pool.colSpans[c]
            let out = y + (r * w.outW + c) * channels
            var t = 0
            while t < channels {
                // Vectors of 16 channels (paddedRows is a multiple of 64).
                var acc: Vector
                switch pool.mode {
                case .max:
                    acc = Vector(repeating: -.infinity)
                    for ki in rs.first..<max(rs.first, rs.last) {
                        for kj in cs.first..<max(cs.first, cs.last) {
                            let q = (rs.origin + ki * w.dilationH) * width + cs.origin + kj * w.dilationW
                            acc = larger(acc, load(x + q * channels + t))
                        }
                    }
                case let .average(includePad):
                    acc = Vector()
                    for ki in rs.first..<max(rs.first, rs.last) {
                        for kj in cs.first..<max(cs.first, cs.last) {
                            let q = (rs.origin + ki * w.dilationH) * width + cs.origin + kj * w.dilationW
                            acc += load(x + q * channels + t)
                        }
                    }
                    let count = includePad ? rs.paddedCount * cs.paddedCount : (rs.last - rs.first) * (cs.last - cs.first)
                    acc = count > 0 ? acc / Vector(repeating: Float(count)) : Vector()
                }
                store(acc, out + t)
                t += 16
            }
        }
    }
}

/// GlobalMaxPool / GlobalAveragePool on channels-last values.
private func globalPoolLast(isMax: Bool, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                            positions: Int, channels: Int) {
    var t = 0
    while t < channels {
        var acc = isMax ? Vector(repeating: -.infinity) : Vector()
        for q in 0..<positions {
            let v = load(x + q * channels + t)
            acc = isMax ? larger(acc, v) : acc + v
        }
        store(isMax ? acc : acc / Vector(repeating: Float(positions)), y + t)
        t += 16
    }
}

/// out = source − Σ weights[j]·columns[offsets[j] …], then the fused operators of
/// channel `channel` (each its own pass over `out`, which is in L1 by then), over `count` floats.
private func subtractTerms(_ out: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>,
                           _ weights: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>, terms: Int,
                           columns: UnsafePointer<Float>, count: Int, channel m: Int, fused: [FusedOperator]) {
    var t = 0
    while t + 16 <= count {
        var acc = load(source + t)
        for j in 0..<terms { acc = acc.addingProduct(Vector(repeating: -weights[j]), load(columns + offsets[j] + t)) }
        store(acc, out + t)
        t += 16
    }
    while t < count {
        var v = source[t]
        for j in 0..<terms { v = v.addingProduct(-weights[j], columns[offsets[j] + t]) }
        out[t] = v
        t += 1
    }
    for op in fused {
        switch op {
        case let .affine(scale, shift):
            let a = scale[m], b = shift[m]
            var t = 0
            while t + 16 <= count {
                store(load(out + t) * Vector(repeating: a) + Vector(repeating: b), out + t)
                t += 16
            }
            while t < count { out[t] = out[t] * a + b; t += 1 }
        case .relu:
            var t = 0
            while t + 16 <= count {
                let v = load(out + t)
                store(v.replacing(with: Vector(), where: v .< Vector()), out + t)
                t += 16
            }
            while t < count { out[t] = max(out[t], 0); t += 1 }
        case let .leakyRelu(alpha):
            for t in 0..<count where out[t] < 0 { out[t] *= alpha }
        case let .clip(lo, hi):
            for t in 0..<count { out[t] = out[t] < lo ? lo : (out[t] > hi ? hi : out[t]) }
        }
    }
}

/// For every channel m: out_m = source_m + Σ_j weights[m·terms + j]·columns[offsets[j] …]
/// (weights negated and padded to a multiple of nine by the caller), then the fused
/// operators; planes of `planeSize` floats. Nine column vectors are held in registers
/// while every channel's sum runs past them, so each multiply-add loads only its
/// weight (the usual case: one ablated channel, 3×3).
private func subtractBlocked(_ out: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>,
                             _ weights: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>, terms: Int,
                             columns: UnsafePointer<Float>, planeSize p: Int, channels: Int, fused: [FusedOperator]) {
    // BatchNormalization then ReLU, the common case, is applied before the store.
    var relu = false, others = fused
    var scaleCopy: [Float] = [], shiftCopy: [Float] = []
    if case let .affine(scale, shift)? = fused.first, fused.count <= 2,
       fused.count == 1 || { if case .relu = fused[1] { return true } else { return false } }() {
        scaleCopy = scale
        shiftCopy = shift
        relu = fused.count == 2
        others = []
    }
    let hasAffine = !scaleCopy.isEmpty
    scaleCopy.withUnsafeBufferPointer { sc in
    shiftCopy.withUnsafeBufferPointer { sh in
        var t = 0
        let zero = Vector()
        // With one block of terms from a separate source, the last values of each plane
        // are one more vector ending at the plane's end (recomputing a few, to the same
        // values); otherwise they are done one at a time below.
        let overlapTail = terms == 9 && source != UnsafePointer(out) && p >= 16 && p % 16 != 0
        var tail = false
        while t + 16 <= p || (overlapTail && !tail && t < p) {
            if t + 16 > p {
                t = p - 16
                tail = true
            }
            var first = 0
            while first < terms {
                let o = offsets + first
                let c0 = load(columns + o[0] + t), c1 = load(columns + o[1] + t), c2 = load(columns + o[2] + t)
                let c3 = load(columns + o[3] + t), c4 = load(columns + o[4] + t), c5 = load(columns + o[5] + t)
                let c6 = load(columns + o[6] + t), c7 = load(columns + o[7] + t), c8 = load(columns + o[8] + t)
                let from = first == 0 ? source : UnsafePointer(out)
                let finish = hasAffine && first + 9 >= terms
                // Two channels at a time: two independent chains of nine multiply-adds.
                @inline(__always) func sum(_ m: Int) -> Vector {
                    let w = weights + m * terms + first
                    var acc = load(from + m * p + t)
                    acc = acc.addingProduct(Vector(repeating: w[0]), c0).addingProduct(Vector(repeating: w[1]), c1)
                    acc = acc.addingProduct(Vector(repeating: w[2]), c2).addingProduct(Vector(repeating: w[3]), c3)
                    acc = acc.addingProduct(Vector(repeating: w[4]), c4).addingProduct(Vector(repeating: w[5]), c5)
                    acc = acc.addingProduct(Vector(repeating: w[6]), c6).addingProduct(Vector(repeating: w[7]), c7)
                    return acc.addingProduct(Vector(repeating: w[8]), c8)
                }
                @inline(__always) func finished(_ v: Vector, _ m: Int) -> Vector {
                    guard finish else { return v }
                    let a = v * Vector(repeating: sc[m]) + Vector(repeating: sh[m])
                    return relu ? a.replacing(with: zero, where: a .< zero) : a
                }
                var m = 0
                while m + 2 <= channels {
                    let a = sum(m), b = sum(m + 1)
                    store(finished(a, m), out + m * p + t)
                    store(finished(b, m + 1), out + (m + 1) * p + t)
                    m += 2
                }
                if m < channels { store(finished(sum(m), m), out + m * p + t) }
                first += 9
            }
            t += 16
        }
        // The last values of each plane, one at a time.
        if tail { t = p }
        for m in 0..<channels {
            let w = weights + m * terms
            for u in t..<p {
                var v = source[m * p + u]
                for j in 0..<terms { v = v.addingProduct(w[j], columns[offsets[j] + u]) }
                if hasAffine {
                    v = v * sc[m] + sh[m]
                    if relu { v = max(v, 0) }
                }
                out[m * p + u] = v
            }
        }
    }}
    if !others.isEmpty {
        for m in 0..<channels {
            subtractTerms(out + m * p, out + m * p, weights, offsets, terms: 0, columns: columns, count: p, channel: m,
                          fused: others)
        }
    }
}

/// a·b, summed in floats.
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var t = 0, acc = Vector()
    while t + 16 <= count {
        acc = acc.addingProduct(load(a + t), load(b + t))
        t += 16
    }
    var s = acc.sum()
    while t < count { s += a[t] * b[t]; t += 1 }
    return s
}
