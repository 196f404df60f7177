import Foundation
import Synchronization

/// A tap: the output of a node that computes something (SPEC §2), or the input.
public struct TapInfo: Sendable, Equatable {
    public let index: Int
    /// The node's name, else its output tensor's name; "input" for the input tap.
    public let name: String
    public let opType: String
    /// Shape of one image's values: [C, H, W] for rank-4 taps, [F] for rank-2.
    public let shape: [Int]

    public var channels: Int { shape.first ?? 1 }
    /// Values per channel (H·W, or 1 for a rank-2 tap).
    public var valuesPerChannel: Int { shape.dropFirst().reduce(1, *) }
    public var valuesPerImage: Int { shape.reduce(1, *) }
    /// How one channel's values are drawn as an image: H×W for [C, H, W]; a
    /// row for [C, L]; for higher ranks (a channel shuffle's [C, g, H, W]) the
    /// leading axes stacked as rows, so that height·width = valuesPerChannel.
    public var mapSize: (height: Int, width: Int) {
        guard shape.count >= 2 else { return (1, 1) }
        return (shape.dropFirst().dropLast().reduce(1, *), shape[shape.count - 1])
    }
}

/// One kernel call in a plan.
struct PlanStep: Sendable {
    let kernel: any Kernel
    let inputBuffers: [Int]
    /// Floats per image of each runtime input and of the output.
    let inputValuesPerImage: [Int]
    let outputValuesPerImage: Int
    let outputBuffer: Int
    let tap: Int?
    let nodeIndex: Int
}

/// The executable form of a graph at one batch capacity: kernels in order and
/// the buffers they read and write, shared between values whose lifetimes do
/// not overlap.
struct ExecutionPlan: Sendable {
    let capacity: Int
    let steps: [PlanStep]
    /// Floats per physical buffer.
    let bufferSizes: [Int]
    let inputBuffer: Int
    let outputBuffer: Int
    let scratchSize: Int
    /// The leading steps whose kernels treat each image on its own and gain
    /// nothing from many images per call (all but Gemm/MatMul, which want the
    /// batch as the rows of one matrix product).
    let imagewiseSteps: Int
    /// Images per call of the image-wise steps: as many as keep one step's
    /// inputs and output within `chunkBytes`, so that they stay in the core's
    /// L2 cache from one step to the next.
    let imagesPerChunk: Int

    /// Cache budget for one chunk's largest step (half of a 1 MiB L2, leaving
    /// room for the kernels' scratch and the weights).
    static let chunkBytes = 512 * 1024
}

/// A checked, planned ONNX classifier: input shape, output classes, taps.
///
/// Immutable and shareable between threads; each thread runs it through its
/// own `Executor`.
public final class Network: Sendable {
    public let model: ONNXModel
    public let path: String
    /// Per-image input shape, e.g. [1, 28, 28].
    public let inputShape: [Int]
    public let inputName: String
    public let outputName: String
    /// Number of classes (the logits' width).
    public let classCount: Int
    public let taps: [TapInfo]
    /// Nodes in the topological order used for execution.
    public let orderedNodes: [ONNXNode]
    private let plans = Mutex<[Int: ExecutionPlan]>([:])
    private let fusedPlans = Mutex<[Int: ExecutionPlan]>([:])

    public convenience init(contentsOf path: String) throws {
        try self.init(model: try ONNXModel(contentsOf: path))
    }

    public init(model: ONNXModel) throws {
        self.model = model
        self.path = model.path
        let file = model.path
        guard (7...21).contains(model.opsetVersion) else {
            throw EngineError.unsupported(file: file, reason: "opset \(model.opsetVersion) (supported: 7–21, tested 11–17)")
        }
        let inputs = model.dataInputs
        guard inputs.count == 1, let input = inputs.first else {
            throw EngineError.unsupported(file: file, reason: "\(inputs.count) graph inputs; a classifier has exactly one")
        }
        guard input.elementType == nil || input.elementType == .float else {
            throw EngineError.unsupported(file: file, reason: "input '\(input.name)' is not float32")
        }
        guard let dims = input.dims, dims.count >= 2 else {
            throw EngineError.unsupported(file: file, reason: "input '\(input.name)' has no declared shape of rank ≥ 2")
        }
        var perImage: [Int] = []
        for (i, d) in dims.enumerated().dropFirst() {
            guard case let .value(v) = d, v > 0 else {
                throw EngineError.unsupported(file: file, reason: "input '\(input.name)' dimension \(i) is not a fixed size")
            }
            perImage.append(v)
        }
        guard checkedProduct(perImage) != nil else {
            throw EngineError.unsupported(file: file, reason: "input '\(input.name)' shape \(perImage) is implausibly large")
        }
        guard let output = model.graph.outputs.first else {
            throw EngineError.invalidGraph(file: file, reason: "the graph has no output")
        }
        self.inputShape = perImage
        self.inputName = input.name
        self.outputName = output.name
        self.orderedNodes = try Network.topologicalOrder(model)
        // Planning at capacity 1 checks every node and gives the taps' shapes.
        let (plan, taps, outShape) = try Network.buildPlan(model: model, nodes: orderedNodes, inputName: input.name,
                                                           inputShape: perImage, outputName: output.name, capacity: 1)
        guard outShape.count == 2 else {
            throw EngineError.unsupported(file: file, reason: "output '\(output.name)' has shape \(outShape); a classifier gives (N, K) logits")
        }
        self.classCount = outShape[1]
        self.taps = taps
        plans.withLock { $0[1] = plan }
    }

    public func tap(named name: String) -> TapInfo? { taps.first { $0.name == name } }

    /// Float parameters in the model's initializers.
    public var parameterCount: Int {
        model.graph.initializers.values.filter(\.isFloatingPoint).reduce(0) { $0 + $1.elementCount }
    }

    public var metadataMean: [Float]? { Network.floats(model.metadataValue("cnnslicer.mean")) }
    public var metadataStd: [Float]? { Network.floats(model.metadataValue("cnnslicer.std")) }
    /// `cnnslicer.resize`: the shorter side image files are resized to before the
    /// centre crop to the input size (256 for ImageNet models at 224×224).
    public var metadataShorterSide: Int? {
        model.metadataValue("cnnslicer.resize").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.flatMap { $0 > 0 ? $0 : nil }
    }
    public var metadataLabels: [String]? {
        model.metadataValue("cnnslicer.labels").map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }
    }

    static func floats(_ text: String?) -> [Float]? {
        guard let text else { return nil }
        let values = text.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        return values.isEmpty ? nil : values
    }

    func plan(capacity: Int) throws -> ExecutionPlan {
        if let plan = plans.withLock({ $0[capacity] }) { return plan }
        let (plan, _, _) = try Network.buildPlan(model: model, nodes: orderedNodes, inputName: inputName,
                                                 inputShape: inputShape, outputName: outputName, capacity: capacity)
        plans.withLock { $0[capacity] = plan }
        return plan
    }

    /// The inference plan (Fusion.swift) at this capacity, built on first use:
    /// its folded weights are a second copy, made only for executors that ask.
    func fusedPlan(capacity: Int) throws -> ExecutionPlan {
        if let plan = fusedPlans.withLock({ $0[capacity] }) { return plan }
        let (plan, _, _) = try Network.buildPlan(model: model, nodes: orderedNodes, inputName: inputName,
                                                 inputShape: inputShape, outputName: outputName, capacity: capacity,
                                                 fused: true)
        fusedPlans.withLock { $0[capacity] = plan }
        return plan
    }

    /// An inference plan, built anew (not cached), with its merges chosen:
    /// `fusesPools` false leaves every pool as its own step; expansions of
    /// more than `fusingExpansionsAbove` floats per image merge with their
    /// depthwise convolution (ExpandDepthwiseKernel). The defaults are
    /// `fusedPlan(capacity:)`'s; tests change them to compare the plans or to
    /// run the merged kernels on small models.
    func inferencePlan(capacity: Int, fusesPools: Bool = true,
                       fusingExpansionsAbove: Int = ExpandDepthwiseKernel.fusesAbove) throws -> ExecutionPlan {
        try Network.buildPlan(model: model, nodes: orderedNodes, inputName: inputName, inputShape: inputShape,
                              outputName: outputName, capacity: capacity, fused: true, fusesPools: fusesPools,
                              fusingExpansionsAbove: fusingExpansionsAbove).0
    }

    /// Bytes an executor of this capacity allocates for its activation buffers
    /// and kernel scratch (the analysis's memory estimate counts one per worker).
    public func executorByteCount(capacity: Int) throws -> Int {
        let plan = try plan(capacity: capacity)
        return (plan.bufferSizes.reduce(0) { $0 + max($1, 1) } + max(plan.scratchSize, 1)) * MemoryLayout<Float>.stride
    }

    /// `executorByteCount(capacity:)` estimated from the plan for one image,
    /// without planning (and packing the weights) for `capacity`: activation
    /// buffers grow with the batch, kernel scratch does not.
    public func estimatedExecutorByteCount(capacity: Int) -> Int {
        guard let plan = try? plan(capacity: 1) else { return 0 }
        return (plan.bufferSizes.reduce(0) { $0 + max($1, 1) } * max(1, capacity) + max(plan.scratchSize, 1))
            * MemoryLayout<Float>.stride
    }

    /// An executor for batches of up to `capacity` images.
    ///
    /// - Parameter fusesUnobservedRuns: runs without an observer and without
    ///   an ablation mask then take the inference plan (Fusion.swift: BatchNormalization
    ///   folded into convolutions, activations and residual Adds fused into
    ///   their stores), whose logits match the observed plan's to about 1e-5
    ///   relative but not bit for bit. For commands that want only logits;
    ///   the analysis and CAR, which compare runs bit for bit, leave it off.
    public func makeExecutor(capacity: Int, fusesUnobservedRuns: Bool = false) throws -> Executor {
        guard capacity > 0 else { throw EngineError.invalidRequest("batch size must be positive") }
        let plan = try plan(capacity: capacity)
        let fused = fusesUnobservedRuns ? try fusedPlan(capacity: capacity) : nil
        // Every buffer is sized for the whole batch and touched when the executor
        // is made: a batch the machine cannot hold would end in an allocation trap.
        // Refuse it with the numbers instead (each worker has its own executor).
        let floats = Executor.bufferSizes(plan, fused).reduce(0, +) + max(plan.scratchSize, fused?.scratchSize ?? 0)
        let bytes = Double(floats) * Double(MemoryLayout<Float>.size)
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        guard memory <= 0 || bytes <= memory / 2 else {
            throw EngineError.invalidRequest(String(
                format: "%@: a batch of %d images needs %.1f GB of activations per worker, more than half of this machine's %.1f GB; use a smaller --batch",
                path, capacity, bytes / 1e9, memory / 1e9))
        }
        return Executor(network: self, plan: plan, fusedPlan: fused)
    }

    /// Kahn's algorithm, taking ready nodes in file order so that an already
    /// sorted graph (every exporter's output) keeps its order.
    static func topologicalOrder(_ model: ONNXModel) throws -> [ONNXNode] {
        let nodes = model.graph.nodes
        var producer: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if producer[output] != nil || model.graph.initializers[output] != nil {
                    throw EngineError.invalidGraph(file: model.path, reason: "node '\(node.displayName)': output '\(output)' is produced twice")
                }
                producer[output] = i
            }
        }
        let known = Set(model.graph.inputs.map(\.name)).union(model.graph.initializers.keys)
        var waiting = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, node) in nodes.enumerated() {
            for input in node.inputs where !input.isEmpty {
                if let p = producer[input] {
                    waiting[i] += 1
                    consumers[p].append(i)
                } else if !known.contains(input) {
                    throw EngineError.invalidGraph(file: model.path, reason: "node '\(node.displayName)' (\(node.opType)): input '\(input)' is never produced")
                }
            }
        }
        var ready = Set((0..<nodes.count).filter { waiting[$0] == 0 })
        var order: [ONNXNode] = []
        order.reserveCapacity(nodes.count)
        while let next = ready.min() {
            ready.remove(next)
            order.append(nodes[next])
            for c in consumers[next] {
                waiting[c] -= 1
                if waiting[c] == 0 { ready.insert(c) }
            }
        }
        if order.count != nodes.count {
            let stuck = (0..<nodes.count).first { waiting[$0] > 0 }.map { nodes[$0].displayName } ?? "?"
            throw EngineError.invalidGraph(file: model.path, reason: "the graph has a cycle through node '\(stuck)'")
        }
        return order
    }

    /// Builds kernels, taps and buffer assignments for one batch capacity.
    static func buildPlan(model: ONNXModel, nodes: [ONNXNode], inputName: String, inputShape: [Int],
                          outputName: String, capacity: Int, fused: Bool = false,
                          fusesPools: Bool = true,
                          fusingExpansionsAbove: Int = ExpandDepthwiseKernel.fusesAbove) throws -> (ExecutionPlan, [TapInfo], [Int]) {
        let file = model.path
        enum Value { case constant(ONNXTensor), runtime(storage: Int, shape: [Int]) }
        var values: [String: Value] = [:]
        for (name, tensor) in model.graph.initializers { values[name] = .constant(tensor) }
        // Logical storages: one per kernel output; aliases share their source's.
        var storageSizes: [Int] = [capacity * product(inputShape)]
        values[inputName] = .runtime(storage: 0, shape: [capacity] + inputShape)
        var taps = [TapInfo(index: 0, name: "input", opType: "Input", shape: inputShape)]
        var pending: [PendingStep] = []
        var scratch = 0
        var tapNames: Set<String> = ["input"]
        // A file exported without a dynamic batch axis fixes it (to 1, as torch.onnx.export
        // does by default); Reshape then reads its batch from a constant (ShapeOps.reshape).
        let fixedBatch: Int? = model.graph.inputs.first { $0.name == inputName }?.dims?.first.flatMap {
            if case let .value(v) = $0 { return v } else { return nil }
        }

        for (nodeIndex, node) in nodes.enumerated() {
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                throw EngineError.unsupported(file: file, reason: "node '\(node.displayName)': operator \(node.domain).\(node.opType) is outside the ONNX domain")
            }
            guard let factory = KernelRegistry.factory(for: node.opType) else {
                throw EngineError.unsupported(file: file, reason: "operator \(node.opType) in node '\(node.displayName)' (supported: \(KernelRegistry.supportedOperators.joined(separator: ", ")))")
            }
            let planInputs: [PlanValue?] = try node.inputs.map { name in
                if name.isEmpty { return nil }
                switch values[name] {
                case let .constant(t)?: return .constant(t)
                case let .runtime(_, shape)?: return .runtime(shape: shape)
                case nil: throw EngineError.invalidGraph(file: file, reason: "node '\(node.displayName)': input '\(name)' is not available")
                }
            }
            let context = NodeContext(node: node, opset: model.opsetVersion, file: file, inputs: planInputs,
                                      fixedBatch: fixedBatch)
            let outputs = node.outputs
            guard let first = outputs.first, !first.isEmpty else {
                throw EngineError.invalidGraph(file: file, reason: "node '\(node.displayName)' has no output")
            }
            // Shape arithmetic on constants (as exporters emit it) is evaluated here,
            // whatever the operator's kernel would do with data.
            let built = try ConstantFolder.fold(context) ?? factory(context)
            let perOutput: [BuiltNode]
            if case let .multiple(parts) = built {
                guard parts.count == outputs.count else {
                    throw context.failure("\(outputs.count) outputs where the operator gives \(parts.count)")
                }
                perOutput = parts
            } else {
                perOutput = [built]
            }
            for (outputName, part) in zip(outputs, perOutput) where !outputName.isEmpty {
                switch part {
                case let .constant(tensor):
                    values[outputName] = .constant(tensor)
                case let .alias(index, shape):
                    guard case let .runtime(storage, _)? = values[node.inputs[index]] else {
                        throw context.failure("aliases a constant")
                    }
                    // As for kernels below: Flatten(axis ≥ 2) of [N, C, …] is [N·C, …], which the
                    // executor would read as N images of the wrong values if it ended the graph.
                    guard shape.first == capacity else {
                        throw context.unsupported("output shape \(shape) does not keep the batch axis first")
                    }
                    values[outputName] = .runtime(storage: storage, shape: shape)
                case let .kernel(kernel, runtimeInputs):
                    let inputStorages: [(storage: Int, perImage: Int)] = try runtimeInputs.map { i in
                        guard case let .runtime(storage, shape)? = values[node.inputs[i]] else { throw context.failure("input \(i) is not data") }
                        return (storage, product(shape.dropFirst()))
                    }
                    let shape = kernel.outputShape
                    guard shape.first == capacity else {
                        throw context.unsupported("output shape \(shape) does not keep the batch axis first")
                    }
                    // Shapes computed from a damaged file's attributes may be absurd.
                    guard checkedProduct(shape.dropFirst()) != nil else {
                        throw context.unsupported("output shape \(shape) is implausibly large")
                    }
                    let storage = storageSizes.count
                    storageSizes.append(product(shape))
                    scratch = max(scratch, kernel.scratchCount)
                    values[outputName] = .runtime(storage: storage, shape: shape)
                    var tapIndex: Int?
                    if !KernelRegistry.valueMovingOperators.contains(node.opType) {
                        var name = node.name.isEmpty ? outputName : node.name
                        if tapNames.contains(name) { name = outputName }
                        tapNames.insert(name)
                        tapIndex = taps.count
                        taps.append(TapInfo(index: taps.count, name: name, opType: node.opType, shape: Array(shape.dropFirst())))
                    }
                    pending.append(PendingStep(kernel: kernel, inputs: inputStorages.map(\.storage), inputSizes: inputStorages.map(\.perImage),
                                               output: storage, tap: tapIndex, node: nodeIndex))
                case .multiple:
                    throw context.failure("nested outputs")
                }
            }
        }
        guard case let .runtime(outputStorage, outputShape)? = values[outputName] else {
            throw EngineError.invalidGraph(file: file, reason: "output '\(outputName)' is not computed from the input")
        }
        if fused {
            pending = InferenceFusion.fuse(pending, outputStorage: outputStorage, fusesPools: fusesPools,
                                           expansionsAbove: fusingExpansionsAbove)
            // Fused kernels may need more scratch than the nodes they replace (Winograd's transformed tiles).
            scratch = max(scratch, pending.map { $0.kernel.scratchCount }.max() ?? 0)
        }

        // Lifetimes: a storage is needed until its last reader runs; the output until the end.
        var lastUse = [Int](repeating: -1, count: storageSizes.count)
        for (i, step) in pending.enumerated() { for s in step.inputs { lastUse[s] = max(lastUse[s], i) } }
        lastUse[outputStorage] = Int.max
        // The executor runs the leading image-wise steps a chunk of images at a
        // time (ExecutionPlan.imagesPerChunk): chunk k runs all of them before
        // chunk k + 1 starts. A buffer may then pass from one value to another
        // inside that prefix only if the new value has no more floats per image
        // than the old: chunk k's part of the new value, ending at (k+1)·chunk·new,
        // must not reach the old value's parts of later chunks, not yet read.
        let imagewise = pending.firstIndex { $0.kernel.wantsWholeBatch } ?? pending.count
        let perImage = storageSizes.map { $0 / capacity }
        // Physical buffers, handed out best-fit from a free list as lifetimes end.
        var physicalOf = [Int](repeating: -1, count: storageSizes.count)
        var bufferSizes: [Int] = []
        /// Floats per image of the value a buffer held last.
        var bufferPerImage: [Int] = []
        var free: [Int] = []
        physicalOf[0] = 0
        bufferSizes.append(storageSizes[0])
        bufferPerImage.append(perImage[0])
        var releasedAt: [[Int]] = Array(repeating: [], count: pending.count)
        for s in 0..<storageSizes.count where lastUse[s] >= 0 && lastUse[s] < pending.count { releasedAt[lastUse[s]].append(s) }
        if lastUse[0] < 0 { free.append(0) }  // input unused by any kernel (degenerate)
        for (i, step) in pending.enumerated() {
            let need = storageSizes[step.output]
            let allowed = { (buffer: Int) in i >= imagewise || perImage[step.output] <= bufferPerImage[buffer] }
            var chosen: Int?
            if let inPlace = step.kernel.inPlaceInput {
                let source = step.inputs[inPlace]
                if lastUse[source] == i && step.inputs.filter({ $0 == source }).count == 1
                    && bufferSizes[physicalOf[source]] >= need && allowed(physicalOf[source]) {
                    chosen = physicalOf[source]
                }
            }
            if chosen == nil {
                let candidates = free.enumerated().filter { allowed($0.element) }
                let fits = candidates.filter { bufferSizes[$0.element] >= need }
                if let best = fits.min(by: { bufferSizes[$0.element] < bufferSizes[$1.element] }) {
                    chosen = best.element
                    free.remove(at: best.offset)
                } else if let largest = candidates.max(by: { bufferSizes[$0.element] < bufferSizes[$1.element] }) {
                    chosen = largest.element
                    bufferSizes[largest.element] = need
                    free.remove(at: largest.offset)
                } else {
                    chosen = bufferSizes.count
                    bufferSizes.append(need)
                    bufferPerImage.append(perImage[step.output])
                }
            }
            physicalOf[step.output] = chosen!
            bufferPerImage[chosen!] = perImage[step.output]
            // Inputs read for the last time by this step are free for the next step.
            for s in releasedAt[i] where physicalOf[s] != chosen! { free.append(physicalOf[s]) }
            if lastUse[step.output] < 0 && step.output != outputStorage { free.append(chosen!) }
        }
        let steps = pending.map {
            PlanStep(kernel: $0.kernel, inputBuffers: $0.inputs.map { physicalOf[$0] },
                     inputValuesPerImage: $0.inputSizes, outputValuesPerImage: storageSizes[$0.output] / capacity,
                     outputBuffer: physicalOf[$0.output], tap: $0.tap, nodeIndex: $0.node)
        }
        let largest = steps.prefix(imagewise).map { $0.inputValuesPerImage.reduce($0.outputValuesPerImage, +) }.max() ?? 1
        let chunk = max(1, min(capacity, ExecutionPlan.chunkBytes / max(1, largest * MemoryLayout<Float>.size)))
        let plan = ExecutionPlan(capacity: capacity, steps: steps, bufferSizes: bufferSizes, inputBuffer: 0,
                                 outputBuffer: physicalOf[outputStorage], scratchSize: scratch,
                                 imagewiseSteps: imagewise, imagesPerChunk: chunk)
        return (plan, taps, outputShape)
    }
}
