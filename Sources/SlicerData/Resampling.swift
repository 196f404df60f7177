/// How an image is brought to the size the model demands.
public enum ResizeMode: String, Sendable, CaseIterable {
    /// Nearest neighbour, sampling at pixel centres: destination pixel `d`
    /// takes source pixel `floor((d + 0.5) · in/out)` (PIL's NEAREST,
    /// PyTorch's "nearest-exact").
    case nearest
    /// Bilinear with half-pixel centres and edge clamping, no antialiasing:
    /// source coordinate `s = max(0, (d + 0.5) · in/out − 0.5)` (PyTorch
    /// `align_corners=False`, ONNX Resize `half_pixel`, OpenCV INTER_LINEAR).
    case bilinear
    /// Bilinear with antialiasing, as PIL's BILINEAR and so torchvision's
    /// `Resize` on images: destination pixel `d` is the weighted mean of the
    /// source pixels `i` with weight `triangle((i + 0.5 − c)/f)`, `c = (d + 0.5)·in/out`,
    /// `f = max(1, in/out)`, `triangle(t) = max(0, 1 − |t|)`, the weights
    /// normalised to sum 1. Enlarging, it is `bilinear`; shrinking, the filter
    /// widens with the factor so every source pixel counts (no aliasing).
    /// Computed in floating point and rounded once to bytes, where PIL rounds a
    /// fixed-point intermediate after each pass: results agree within 1–2 levels.
    case antialias
}

/// How an image file is brought to the model's input: optionally its shorter
/// side resized to `shorterSide` keeping the aspect ratio (torchvision's
/// `Resize(N)`: the longer side becomes ⌊N·long/short⌋), then a centre crop to
/// `crop` (torchvision's `CenterCrop`: origin `round((size − crop)/2)` with
/// Python's round half to even, zeros where the crop is larger than the image),
/// then a stretch to the model's size if it still differs. Without either, the
/// image is stretched to the model's size.
public struct ImageGeometry: Sendable, Equatable, CustomStringConvertible {
    public var shorterSide: Int?
    public var crop: ImageSize?
    public var interpolation: ResizeMode

    public init(shorterSide: Int? = nil, crop: ImageSize? = nil, interpolation: ResizeMode = .bilinear) {
        self.shorterSide = shorterSide
        self.crop = crop
        self.interpolation = interpolation
    }

    /// The size after the shorter-side resize.
    public func scaledSize(_ size: ImageSize) -> ImageSize {
        guard let n = shorterSide, size.width > 0, size.height > 0 else { return size }
        if size.width <= size.height {
            return ImageSize(width: n, height: n * size.height / size.width)
        }
        return ImageSize(width: n * size.width / size.height, height: n)
    }

    /// Offset of a centre crop of length `crop` from an axis of length `length`
    /// (negative: the crop starts before the image, which is padded with zeros).
    public static func cropOffset(length: Int, crop: Int) -> Int {
        if crop > length { return -((crop - length) / 2) }
        let twice = length - crop
        // round(twice / 2) with ties to even, as Python's round().
        return twice % 2 == 0 ? twice / 2 : (twice / 2) + ((twice / 2) % 2)
    }

    public var description: String {
        var parts: [String] = []
        if let shorterSide { parts.append("shorter side \(shorterSide)") }
        if let crop { parts.append("centre crop \(crop)") }
        parts.append(interpolation.rawValue)
        return parts.joined(separator: ", ")
    }
}

/// Triangle-filter taps along one axis for `ResizeMode.antialias`.
struct FilterAxis {
    /// First source index of each destination index.
    var first: [Int]
    /// Taps of each destination index.
    var count: [Int]
    /// `destination × stride` weights, zero after `count`.
    var weights: [Float]
    var stride: Int

    init(source: Int, destination: Int) {
        let scale = Double(source) / Double(destination)
        let widening = max(scale, 1)
        let support = widening
        stride = Int((support * 2).rounded(.up)) + 2
        first = []
        count = []
        weights = [Float](repeating: 0, count: destination * stride)
        for d in 0..<destination {
            let center = (Double(d) + 0.5) * scale
            let lo = max(Int((center - support + 0.5).rounded(.towardZero)), 0)
            let hi = min(Int((center + support + 0.5).rounded(.towardZero)), source)
            var w: [Double] = []
            for i in lo..<max(hi, lo) {
                let t = (Double(i) + 0.5 - center) / widening
                w.append(max(0, 1 - abs(t)))
            }
            let total = w.reduce(0, +)
            first.append(lo)
            count.append(w.count)
            for (k, v) in w.enumerated() { weights[d * stride + k] = Float(total > 0 ? v / total : 0) }
        }
    }
}

extension Resampler {
    /// Resamples one float plane with triangle filters: rows first, then columns.
    static func resampleFiltered(_ source: UnsafePointer<Float>, sourceHeight: Int, sourceWidth: Int,
                                 into destination: UnsafeMutablePointer<Float>, rows: FilterAxis, columns: FilterAxis) {
        let width = columns.first.count, height = rows.first.count
        var horizontal = [Float](repeating: 0, count: sourceHeight * width)
        for y in 0..<sourceHeight {
            let row = source + y * sourceWidth
            for x in 0..<width {
                var acc: Float = 0
                let base = x * columns.stride, start = columns.first[x]
                for k in 0..<columns.count[x] { acc += columns.weights[base + k] * row[start + k] }
                horizontal[y * width + x] = acc
            }
        }
        for y in 0..<height {
            let base = y * rows.stride, start = rows.first[y]
            let out = destination + y * width
            for x in 0..<width { out[x] = 0 }
            for k in 0..<rows.count[y] {
                let w = rows.weights[base + k], line = (start + k) * width
                for x in 0..<width { out[x] += w * horizontal[line + x] }
            }
        }
    }
}

/// Precomputed sampling positions along one axis, so the per-pixel loop is
/// two loads, two multiplies and an add.
struct ResampleAxis {
    var lower: [Int]
    var upper: [Int]
    /// Weight of `upper`; `lower` gets `1 − weight`.
    var weight: [Float]

    init(source: Int, destination: Int, mode: ResizeMode) {
        lower = []
        upper = []
        weight = []
        let scale = Double(source) / Double(destination)
        for d in 0..<destination {
            switch mode {
            case .nearest:
                let s = min(Int(((Double(d) + 0.5) * scale).rounded(.down)), source - 1)
                lower.append(s)
                upper.append(s)
                weight.append(0)
            case .bilinear, .antialias:
                // (.antialias resamples with FilterAxis; this is its enlarging case.)
                let s = max(0, (Double(d) + 0.5) * scale - 0.5)
                let s0 = min(Int(s.rounded(.down)), source - 1)
                lower.append(s0)
                upper.append(min(s0 + 1, source - 1))
                weight.append(Float(s - Double(s0)))
            }
        }
    }
}

enum Resampler {
    /// Resamples one float plane `sourceHeight × sourceWidth` into `rows.count × columns.count`.
    static func resample(_ source: UnsafePointer<Float>, sourceWidth: Int,
                         into destination: UnsafeMutablePointer<Float>,
                         rows: ResampleAxis, columns: ResampleAxis) {
        let width = columns.lower.count
        for y in 0..<rows.lower.count {
            let top = source + rows.lower[y] * sourceWidth
            let bottom = source + rows.upper[y] * sourceWidth
            let wy = rows.weight[y]
            let out = destination + y * width
            for x in 0..<width {
                let x0 = columns.lower[x], x1 = columns.upper[x], wx = columns.weight[x]
                let upperRow = top[x0] + wx * (top[x1] - top[x0])
                let lowerRow = bottom[x0] + wx * (bottom[x1] - bottom[x0])
                out[x] = upperRow + wy * (lowerRow - upperRow)
            }
        }
    }

    /// Resizes planar 8-bit images (`channels` planes), rounding to the nearest byte.
    static func resizeBytes(_ pixels: [UInt8], channels: Int, height: Int, width: Int,
                            toHeight newHeight: Int, width newWidth: Int, mode: ResizeMode) -> [UInt8] {
        let rows = ResampleAxis(source: height, destination: newHeight, mode: mode)
        let columns = ResampleAxis(source: width, destination: newWidth, mode: mode)
        let filters = mode == .antialias
            ? (rows: FilterAxis(source: height, destination: newHeight), columns: FilterAxis(source: width, destination: newWidth)) : nil
        let plane = pixels.map(Float.init)
        var scratch = [Float](repeating: 0, count: newHeight * newWidth)
        var output = [UInt8]()
        output.reserveCapacity(channels * newHeight * newWidth)
        for channel in 0..<channels {
            plane.withUnsafeBufferPointer { source in
                scratch.withUnsafeMutableBufferPointer { destination in
                    let plane = source.baseAddress! + channel * height * width
                    if let filters {
                        resampleFiltered(plane, sourceHeight: height, sourceWidth: width, into: destination.baseAddress!,
                                         rows: filters.rows, columns: filters.columns)
                    } else {
                        resample(plane, sourceWidth: width, into: destination.baseAddress!, rows: rows, columns: columns)
                    }
                }
            }
            output.append(contentsOf: scratch.map { UInt8(max(0, min(255, $0.rounded()))) })
        }
        return output
    }
}
