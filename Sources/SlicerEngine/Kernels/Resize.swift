/// Resize (opset 10+) and Upsample (opset 7–9) of (N, C, H, W) data over H and W:
/// nearest and linear, with ONNX's coordinate transformations. Output position x
/// maps to input coordinate
///   half_pixel          (x + 0.5)/s − 0.5
///   pytorch_half_pixel  (x + 0.5)/s − 0.5, or 0 when the output has length 1
///   align_corners       x·(in − 1)/(out − 1), or 0 when out = 1
///   asymmetric          x/s
///   tf_half_pixel_for_nn (x + 0.5)/s
/// with s the given scale, or out/in when sizes are given. Nearest rounds it by
/// `nearest_mode` (round_prefer_floor, round_prefer_ceil, floor, ceil); linear
/// clamps it to [0, in − 1] and interpolates between its two neighbours. Before
/// opset 11 (and for Upsample) the transformation is asymmetric and nearest
/// takes the floor when enlarging and the ceiling when shrinking (ONNX Runtime's
/// behaviour for those versions). Cubic, tf_crop_and_resize and opset 18's antialias are refused.
struct ResizeKernel: Kernel {
    /// Sampling along one axis: source indices and the weight of the second.
    struct Axis: Sendable, Equatable {
        var lower: [Int]
        var upper: [Int]
        var weight: [Float]
    }

    let outputShape: [Int]
    let inputHeight: Int, inputWidth: Int
    let rows: Axis, columns: Axis

    func run(_ io: KernelIO) {
        let planes = io.batch * outputShape[1]
        let outHeight = rows.lower.count, outWidth = columns.lower.count
        for p in 0..<planes {
            let x = io.inputs[0] + p * inputHeight * inputWidth
            let y = io.output + p * outHeight * outWidth
            for r in 0..<outHeight {
                let top = x + rows.lower[r] * inputWidth, bottom = x + rows.upper[r] * inputWidth
                let wy = rows.weight[r]
                let out = y + r * outWidth
                for c in 0..<outWidth {
                    let c0 = columns.lower[c], c1 = columns.upper[c], wx = columns.weight[c]
                    let upperRow = top[c0] + wx * (top[c1] - top[c0])
                    let lowerRow = bottom[c0] + wx * (bottom[c1] - bottom[c0])
                    out[c] = wy == 0 ? upperRow : upperRow + wy * (lowerRow - upperRow)
                }
            }
        }
    }

    enum Transformation: String { case halfPixel = "half_pixel", pytorchHalfPixel = "pytorch_half_pixel",
                                       alignCorners = "align_corners", asymmetric, tfHalfPixelForNN = "tf_half_pixel_for_nn" }
    enum Rounding: String { case roundPreferFloor = "round_prefer_floor", roundPreferCeil = "round_prefer_ceil", floor, ceil }

    /// The sampling of one axis of length `input` resized to `output` with scale `scale`.
    static func axis(input: Int, output: Int, scale: Float, linear: Bool, transformation: Transformation,
                     rounding: Rounding) -> Axis {
        var result = Axis(lower: [], upper: [], weight: [])
        for x in 0..<output {
            // In float32, as ONNX Runtime computes it: in double, 1.5/0.6 − 0.5 falls just
            // below 2 and a floor would pick another pixel.
            let d = Float(x)
            var coordinate: Float
            switch transformation {
            case .halfPixel: coordinate = (d + 0.5) / scale - 0.5
            case .pytorchHalfPixel: coordinate = output > 1 ? (d + 0.5) / scale - 0.5 : 0
            case .alignCorners: coordinate = output > 1 ? d * Float(input - 1) / Float(output - 1) : 0
            case .asymmetric: coordinate = d / scale
            case .tfHalfPixelForNN: coordinate = (d + 0.5) / scale
            }
            if linear {
                coordinate = min(max(coordinate, 0), Float(input - 1))
                let i0 = Int(coordinate.rounded(.down))
                result.lower.append(i0)
                result.upper.append(min(i0 + 1, input - 1))
                result.weight.append(coordinate - Float(i0))
            } else {
                var i: Int
                switch rounding {
                case .floor: i = Int(coordinate.rounded(.down))
                case .ceil: i = Int(coordinate.rounded(.up))
                case .roundPreferFloor:
                    i = coordinate - coordinate.rounded(.down) == 0.5 ? Int(coordinate.rounded(.down)) : Int(coordinate.rounded())
                case .roundPreferCeil:
                    i = coordinate - coordinate.rounded(.down) == 0.5 ? Int(coordinate.rounded(.up)) : Int(coordinate.rounded())
                }
                i = min(max(i, 0), input - 1)
                result.lower.append(i)
                result.upper.append(i)
                result.weight.append(0)
            }
        }
        return result
    }

    static func make(_ c: NodeContext) throws -> BuiltNode {
        let shape = try c.runtimeShape(0)
        guard shape.count == 4 else { throw c.unsupported("\(c.node.opType) of rank \(shape.count) (only N×C×H×W)") }
        let mode = try c.string("mode", default: "nearest")
        guard mode == "nearest" || mode == "linear" || mode == "bilinear" else { throw c.unsupported("mode '\(mode)'") }
        let modern = c.node.opType == "Resize" && c.opset >= 11
        let transformation: Transformation, rounding: Rounding?
        if modern {
            let name = try c.string("coordinate_transformation_mode", default: "half_pixel")
            guard let t = Transformation(rawValue: name) else { throw c.unsupported("coordinate_transformation_mode '\(name)'") }
            let r = try c.string("nearest_mode", default: "round_prefer_floor")
            guard let n = Rounding(rawValue: r) else { throw c.unsupported("nearest_mode '\(r)'") }
            transformation = t
            rounding = n
            if try c.int("antialias", default: 0) != 0 { throw c.unsupported("antialias") }
            if c.node.attributes["axes"] != nil { throw c.unsupported("the axes attribute") }
        } else {
            transformation = .asymmetric
            rounding = nil
        }
        // Scales: Upsample-7 attribute, Upsample-9/Resize-10 input 1, Resize-11+ input 2 (or sizes, input 3).
        var scales: [Float]?
        var sizes: [Int]?
        if c.node.opType == "Upsample" && c.opset < 9 {
            scales = try c.node.attributes["scales"].map { attribute -> [Float] in
                guard case let .floats(f) = attribute else { throw c.failure("attribute 'scales' should be floats") }
                return f
            }
        } else if !modern {
            scales = try c.constant(1, "scales").floatValues
        } else {
            let given = try c.optionalConstant(2, "scales")?.floatValues
            scales = given.flatMap { $0.isEmpty ? nil : $0 }
            sizes = try c.optionalConstant(3, "sizes")?.intValues
            if sizes?.isEmpty == true { sizes = nil }
        }
        var out = shape
        var axisScales: [Float] = [1, 1, 1, 1]
        if let sizes {
            guard sizes.count == 4 else { throw c.failure("sizes \(sizes) for rank 4") }
            out = sizes
            // A file exported with a fixed batch names it in `sizes`; each image is resized alike.
            if let fixed = c.fixedBatch, sizes[0] == fixed { out[0] = shape[0] }
            for a in 0..<4 { axisScales[a] = Float(out[a]) / Float(max(shape[a], 1)) }
        } else if let scales {
            guard scales.count == 4, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw c.failure("scales \(scales) for rank 4") }
            axisScales = scales
            for a in 0..<4 { out[a] = Int((Double(shape[a]) * Double(scales[a])).rounded(.down)) }
        } else {
            throw c.failure("neither scales nor sizes")
        }
        guard out[0] == shape[0], out[1] == shape[1] else { throw c.unsupported("resizing the batch or channel axis (\(shape) to \(out))") }
        guard out[2] > 0, out[3] > 0, checkedProduct(out.dropFirst()) != nil else { throw c.failure("output shape \(out)") }
        let linear = mode != "nearest"
        return .kernel(ResizeKernel(outputShape: out, inputHeight: shape[2], inputWidth: shape[3],
                                    rows: axis(input: shape[2], output: out[2], scale: axisScales[2], linear: linear,
                                               transformation: transformation, rounding: rounding ?? (axisScales[2] < 1 ? .ceil : .floor)),
                                    columns: axis(input: shape[3], output: out[3], scale: axisScales[3], linear: linear,
                                                  transformation: transformation, rounding: rounding ?? (axisScales[3] < 1 ? .ceil : .floor))),
                       runtimeInputs: [0])
    }
}
