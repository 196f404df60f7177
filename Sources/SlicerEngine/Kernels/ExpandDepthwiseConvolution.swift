/// An inverted residual's expansion (1×1 convolution, its BatchNormalization
/// and ReLU6 folded in) and the depthwise convolution that alone reads it, as
/// one step of the inference plan (Fusion.swift).
///
/// Separately, the expansion writes its whole output before the depthwise
/// convolution reads it back: on MobileNet-V2's 112×112 stage that is 96
/// planes, 4.8 MB per image, 1.8 MB on the 56×56 stage — more than the L2
/// cache, so it goes to L3 or memory, is read back by the expansion's own
/// epilogue, then again by the depthwise kernel. Here the expansion is
/// computed a block of `blockChannels` channels over a band of input rows at a
/// time into scratch (L2-sized), and the depthwise kernel consumes each
/// channel of the block while it is in cache: the expanded tensor is never
/// written whole.
///
/// A band covers the input rows its output rows read, halo included: on
/// planes too large for one band (the 112×112 stage) the halo rows are
/// computed again by the next band — a few per cent of the expansion.
///
/// The values are bit for bit the unfused steps': each expanded value is the
/// same sum over input channels in the same order (PackedRows.multiply does not
/// depend on which columns it is given) with the same bias and clamp, and each
/// depthwise output reads the same values in the same tap order
/// (DepthwiseConvKernel.computeChannel).
struct ExpandDepthwiseKernel: Kernel {
    let outputShape: [Int]
    /// The expansion: 1×1, stride 1, no padding, one group, no residual.
    let expand: ConvKernel
    /// The depthwise convolution over the expansion's output (multiplier 1).
    let depthwise: DepthwiseConvKernel
    let channels: Int, height: Int, width: Int
    /// Channels of the expansion (= the depthwise kernel's channels).
    let expanded: Int
    /// Depthwise output rows per band (outH: the whole plane in one band).
    let bandRows: Int
    /// Expanded channels per block: whole panels of the packed filters.
    let blockChannels: Int
    /// Floats per channel of the block's scratch: the largest band's input
    /// pixels, rounded up to whole vectors.
    let blockStride: Int

    /// Input floats per band at most: the band is read once per block of
    /// channels, so it should stay in L2 beside the block.
    /// (512 KiB: MobileNet-V2's 56×56 input, 24 channels, in one band, no
    /// halo; 256 KiB measured about 4 % slower on its merged steps.)
    static let bandBudget = 128 * 1024
    /// Floats of one block of expanded channels (256 KiB).
    static let blockBudget = 64 * 1024
    /// Expansions whose output per image is at most this many floats (256
    /// KiB) stay separate steps: their output stays in cache between the two
    /// steps anyway. MobileNet-V2's 28×28 expansions (192 channels, 600 KiB)
    /// still gained 10–15 % merged, one thread on Zen 4; smaller ones were not
    /// measured (its 14×14 and 7×7 planes are not whole vectors, which the
    /// merged kernel requires).
    static let fusesAbove = 64 * 1024

    /// Whether `expand` followed by `depthwise` (reading only its output) can run as one step.
    /// Only expansions of more than `above` floats per image.
    static func accepts(expand: ConvKernel, depthwise: ConvKernel, above: Int = fusesAbove) -> Bool {
        let e = expand.window
        guard let dw = depthwise.depthwise, expand.depthwise == nil, expand.groups == 1,
              expand.packedFilters.count == 1, !expand.epilogue.addsResidual, expand.imagesPerProduct == 1,
              e.kernelH == 1, e.kernelW == 1, e.strideH == 1, e.strideW == 1,
              e.padTop + e.padLeft + e.padBottom + e.padRight == 0,
              expand.outputShape.count == 4, depthwise.outputShape.count == 4 else { return false }
        let plane = expand.height * expand.width
        // The band's product reads whole vectors from each input channel: with
        // planes of whole vectors a band can always be placed inside the plane.
        return dw.multiplier == 1 && dw.channels == expand.outChannels
            && dw.height == expand.height && dw.width == expand.width
            && !dw.epilogue.addsResidual && plane % 16 == 0
            && expand.outChannels * plane > above
    }

    /// nil unless `accepts(expand:depthwise:above:)`.
    init?(expand: ConvKernel, depthwise conv: ConvKernel, above: Int = fusesAbove) {
        guard ExpandDepthwiseKernel.accepts(expand: expand, depthwise: conv, above: above), let dw = conv.depthwise else { return nil }
        self.expand = expand
        depthwise = dw
        outputShape = conv.outputShape
        channels = expand.channels
        height = expand.height
        width = expand.width
        expanded = expand.outChannels
        let w = dw.window
        // Output rows per band: the whole plane when the input fits the band
        // budget (and always for flat planes, which are computed whole);
        // otherwise as many rows as keep the band's input within it.
        var rows = w.outH
        if !dw.planes.isFlat && channels * height * width > Self.bandBudget {
            let inputRows = max(1, Self.bandBudget / max(1, channels * width))
            rows = max(1, min(w.outH, (inputRows - (w.kernelH - 1) * w.dilationH - 1) / w.strideH + 1))
        }
        bandRows = rows
        var most = 0
        var r0 = 0
        while r0 < w.outH {
            let span = Self.inputRows(r0..<min(w.outH, r0 + rows), window: w, height: height)
            most = max(most, span.count * width)
            r0 += rows
        }
        blockStride = (most + 15) / 16 * 16
        let panels = PackedRows.panelCount(rows: expanded)
        blockChannels = PackedRows.panelHeight * max(1, min(panels, Self.blockBudget / max(1, PackedRows.panelHeight * blockStride)))
    }

    /// The input rows that output rows `rows` of the depthwise window read (inside the image).
    static func inputRows(_ rows: Range<Int>, window w: Window2D, height: Int) -> Range<Int> {
        let lo = max(0, rows.lowerBound * w.strideH - w.padTop)
        let hi = min(height, (rows.upperBound - 1) * w.strideH - w.padTop + (w.kernelH - 1) * w.dilationH + 1)
        return lo..<max(lo, hi)
    }

    var scratchCount: Int { depthwise.planes.scratchCount + blockChannels * blockStride }

    func run(_ io: KernelIO) {
        let plane = height * width, w = depthwise.window, outPlane = w.outH * w.outW
        let padded = io.scratch, block = io.scratch + depthwise.planes.scratchCount
        let filters = expand.packedFilters[0], depth = filters.depth
        let panelSize = depth * PackedRows.panelHeight
        let e = expand.epilogue, bias = expand.bias
        let applies = bias != nil || !e.isEmpty
        var offsets = [Int](repeating: 0, count: depth)
        offsets.withUnsafeMutableBufferPointer { offsetsBuffer in
            guard let offsets = offsetsBuffer.baseAddress else { return }
            depthwise.planes.withPlanes(padded, padding: 0) { tapOffsets, copy in
                for n in 0..<io.batch {
                    let image = io.inputs[0] + n * channels * plane
                    let out = io.output + n * expanded * outPlane
                    var r0 = 0
                    while r0 < w.outH {
                        let rows = r0..<min(w.outH, r0 + bandRows)
                        let input = Self.inputRows(rows, window: w, height: height)
                        let pixels = input.count * width, productWidth = (pixels + 15) / 16 * 16
                        // The product reads productWidth floats from each channel: start
                        // early enough that the last channel's read ends inside the image
                        // (plane is whole vectors, so productWidth ≤ plane). The extra
                        // columns are computed and dropped.
                        let first = min(input.lowerBound * width, plane - productWidth)
                        let skip = input.lowerBound * width - first
                        for j in 0..<depth { offsets[j] = j * plane + first }
                        var c0 = 0
                        while c0 < expanded {
                            let count = min(blockChannels, expanded - c0)
                            PackedRows.multiply(UnsafePointer(filters.storage.pointer) + (c0 / PackedRows.panelHeight) * panelSize,
                                                panels: PackedRows.panelCount(rows: count), depth: depth,
                                                image, offsets: offsets, width: productWidth, into: block, ldc: blockStride)
                            for k in 0..<count {
                                let row = block + k * blockStride + skip
                                if applies {
                                    e.apply(row, row, count: pixels, bias: bias?.pointer[c0 + k], residual: nil)
                                }
                                depthwise.planes.copyRows(input, from: row, into: padded, copy)
                                depthwise.computeChannel(c0 + k, padded, tapOffsets, into: out + (c0 + k) * outPlane, rows: rows)
                            }
                            c0 += count
                        }
                        r0 = rows.upperBound
                    }
                }
            }
        }
    }
}
