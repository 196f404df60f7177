/// The operators CNNSlicer runs, each mapped to the factory that checks the
/// node and builds its kernel (or folds it to a constant / an alias).
public enum KernelRegistry {
    public typealias Factory = @Sendable (NodeContext) throws -> BuiltNode

    static let factories: [String: Factory] = [
        "Conv": ConvKernel.make,
        "BatchNormalization": BatchNormKernel.make,
        "Relu": ActivationKernel.make,
        "LeakyRelu": ActivationKernel.make,
        "Sigmoid": ActivationKernel.make,
        "Tanh": ActivationKernel.make,
        "Clip": ActivationKernel.make,
        "MaxPool": PoolKernel.make,
        "AveragePool": PoolKernel.make,
        "GlobalAveragePool": GlobalPoolKernel.make,
        "GlobalMaxPool": GlobalPoolKernel.make,
        "Gemm": GemmKernel.make,
        "MatMul": MatMulKernel.make,
        "Add": BinaryKernel.make,
        "Sub": BinaryKernel.make,
        "Mul": BinaryKernel.make,
        "Div": BinaryKernel.make,
        "Concat": ConcatKernel.make,
        "Softmax": SoftmaxKernel.make,
        "Flatten": ShapeOps.flatten,
        "Reshape": ShapeOps.reshape,
        "Identity": ShapeOps.identity,
        "Dropout": ShapeOps.dropout,
        "Constant": ShapeOps.constant,
        "Shape": ShapeOps.shape,
        "Gather": ShapeOps.gather,
        "Unsqueeze": ShapeOps.unsqueeze,
        "Squeeze": ShapeOps.squeeze,
        "Cast": ShapeOps.cast,
        "HardSigmoid": ActivationKernel.make,
        "HardSwish": ActivationKernel.make,
        "PRelu": PReluKernel.make,
        "LogSoftmax": SoftmaxKernel.make,
        "Sum": SumKernel.make,
        "ReduceMean": ReduceKernel.make,
        "ReduceMax": ReduceKernel.make,
        "ReduceMin": ReduceKernel.make,
        "ReduceSum": ReduceKernel.make,
        "LRN": LRNKernel.make,
        "Pad": PadKernel.make,
        "Transpose": TransposeKernel.make,
        "Slice": SliceKernel.make,
        "Split": SplitKernel.make,
        "Resize": ResizeKernel.make,
        "Upsample": ResizeKernel.make,
    ].merging(ConstantFolder.constantOnlyOperators.map { ($0, ConstantFolder.refuseData) }) { kernel, _ in kernel }

    /// Operators whose outputs are not taps, exactly SPEC §2's list: they only move
    /// values. Transpose, Slice, Split and Pad are taps although they too only move
    /// or select values (a channel shuffle's transpose, a channel split's halves, a
    /// padded map): the specification names its list, and a tap list that matches
    /// other implementations of it matters more than skipping a near-copy.
    public static let valueMovingOperators: Set<String> = [
        "Flatten", "Reshape", "Identity", "Dropout", "Constant", "Shape", "Gather", "Squeeze", "Unsqueeze", "Cast",
    ]

    public static var supportedOperators: [String] { factories.keys.sorted() }

    public static func factory(for opType: String) -> Factory? { factories[opType] }
}
