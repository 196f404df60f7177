// Pixel buffers for screenshots and reference-image tests, and a tolerant comparison.

/// An image as tightly packed RGBA bytes, rows top to bottom.
public struct RGBAImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 4, "RGBAImage needs width × height × 4 bytes")
        self.width = width; self.height = height; self.pixels = pixels
    }

    public init(width: Int, height: Int, fill: Color = .black) {
        self.width = width; self.height = height
        var bytes = [UInt8](repeating: 0, count: width * height * 4)
        for i in stride(from: 0, to: bytes.count, by: 4) {
            bytes[i] = fill.r; bytes[i + 1] = fill.g; bytes[i + 2] = fill.b; bytes[i + 3] = fill.a
        }
        self.pixels = bytes
    }

    public subscript(x: Int, y: Int) -> Color {
        let i = (y * width + x) * 4
        return Color(r: pixels[i], g: pixels[i + 1], b: pixels[i + 2], a: pixels[i + 3])
    }

    /// Counts pixels matching `predicate` inside `rect` (clamped to the image).
    public func count(in rect: Rect, where predicate: (Color) -> Bool) -> Int {
        let x0 = max(0, Int(rect.minX)), y0 = max(0, Int(rect.minY))
        let x1 = min(width, Int(rect.maxX)), y1 = min(height, Int(rect.maxY))
        var n = 0
        if x0 < x1, y0 < y1 {
            for y in y0..<y1 { for x in x0..<x1 where predicate(self[x, y]) { n += 1 } }
        }
        return n
    }
}

/// How two images differ.
public struct ImageDifference: Sendable, CustomStringConvertible {
    /// Mean absolute difference per colour channel (0…255).
    public var meanChannelDifference: Double
    public var maxChannelDifference: Int
    /// Share of pixels with some channel differing by more than the tolerance.
    public var differingPixelFraction: Double
    /// Most differing pixels in any 8×8 tile (0…64). Rasteriser differences are thin and
    /// scattered along edges; a real change (a different glyph, a moved bar) is dense.
    public var worstTileDifference: Int
    /// Bounding box of the differing pixels, nil when none differ.
    public var differingRegion: Rect?
    /// An image highlighting differing pixels in red over a faded copy of the first image.
    public var visualization: RGBAImage?

    public var description: String {
        "mean \(formatNumber(meanChannelDifference, decimals: 3)), max \(maxChannelDifference), "
            + "differing \(formatNumber(differingPixelFraction * 100, decimals: 3)) %"
            + ", worst 8×8 tile \(worstTileDifference)/64" + (differingRegion.map { " in \($0)" } ?? "")
    }
}

public enum ImageComparison {
    /// Compares two images of equal size. A pixel "differs" when a colour channel differs by
    /// more than `channelTolerance`, which absorbs anti-aliasing and rasteriser differences
    /// while still catching moved, missing or recoloured elements. Nil for a size mismatch.
    public static func compare(_ a: RGBAImage, _ b: RGBAImage, channelTolerance: Int = 48) -> ImageDifference? {
        guard a.width == b.width, a.height == b.height else { return nil }
        var total = 0, maxDiff = 0, differing = 0
        var minX = Int.max, minY = Int.max, maxX = -1, maxY = -1
        var viz = [UInt8](repeating: 255, count: a.pixels.count)
        let tilesAcross = (a.width + 7) / 8
        var tiles = [Int](repeating: 0, count: tilesAcross * ((a.height + 7) / 8))
        a.pixels.withUnsafeBufferPointer { pa in
            b.pixels.withUnsafeBufferPointer { pb in
                for p in 0..<(a.width * a.height) {
                    let i = p * 4
                    var pixelMax = 0
                    for c in 0..<3 {
                        let d = abs(Int(pa[i + c]) - Int(pb[i + c]))
                        total += d
                        pixelMax = max(pixelMax, d)
                    }
                    maxDiff = max(maxDiff, pixelMax)
                    if pixelMax > channelTolerance {
                        differing += 1
                        let x = p % a.width, y = p / a.width
                        minX = min(minX, x); maxX = max(maxX, x); minY = min(minY, y); maxY = max(maxY, y)
                        tiles[(y / 8) * tilesAcross + x / 8] += 1
                        viz[i] = 255; viz[i + 1] = 0; viz[i + 2] = 0
                    } else {
                        for c in 0..<3 { viz[i + c] = UInt8(160 + Int(pa[i + c]) * 95 / 255) }
                    }
                }
            }
        }
        let pixelCount = max(1, a.width * a.height)
        let region = maxX >= 0 ? Rect(x: Float(minX), y: Float(minY), width: Float(maxX - minX + 1), height: Float(maxY - minY + 1)) : nil
        return ImageDifference(meanChannelDifference: Double(total) / Double(pixelCount * 3),
                               maxChannelDifference: maxDiff,
                               differingPixelFraction: Double(differing) / Double(pixelCount),
                               worstTileDifference: tiles.max() ?? 0,
                               differingRegion: region,
                               visualization: RGBAImage(width: a.width, height: a.height, pixels: viz))
    }
}
