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
            case .bilinear:
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
        let plane = pixels.map(Float.init)
        var scratch = [Float](repeating: 0, count: newHeight * newWidth)
        var output = [UInt8]()
        output.reserveCapacity(channels * newHeight * newWidth)
        for channel in 0..<channels {
            plane.withUnsafeBufferPointer { source in
                scratch.withUnsafeMutableBufferPointer { destination in
                    resample(source.baseAddress! + channel * height * width, sourceWidth: width,
                             into: destination.baseAddress!, rows: rows, columns: columns)
                }
            }
            output.append(contentsOf: scratch.map { UInt8(max(0, min(255, $0.rounded()))) })
        }
        return output
    }
}
