// Perceptual colour maps and a categorical palette, designed for this project in OKLab
// (Björn Ottosson's perceptual colour space, implemented here from its published definition).
// Lightness varies linearly along the sequential map, so equal steps in entropy look like
// equal steps in colour, and the map reads correctly in grey scale and for colour-blind viewers.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A colour in OKLab: L is perceived lightness (0…1); a and b are green–red and blue–yellow.
public struct OKLab: Hashable, Sendable {
    public var l: Float
    public var a: Float
    public var b: Float

    public init(l: Float, a: Float, b: Float) { self.l = l; self.a = a; self.b = b }

    /// From lightness, chroma and hue in degrees.
    public init(l: Float, chroma: Float, hueDegrees: Float) {
        let h = hueDegrees * .pi / 180
        self.init(l: l, a: chroma * cosf(h), b: chroma * sinf(h))
    }

    public init(_ color: Color) {
        let r = OKLab.linear(color.r), g = OKLab.linear(color.g), bl = OKLab.linear(color.b)
        let lc = cbrtf(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * bl)
        let mc = cbrtf(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * bl)
        let sc = cbrtf(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * bl)
        l = 0.2104542553 * lc + 0.7936177850 * mc - 0.0040720468 * sc
        a = 1.9779984951 * lc - 2.4285922050 * mc + 0.4505937099 * sc
        b = 0.0259040371 * lc + 0.7827717662 * mc - 0.8086757660 * sc
    }

    public var chroma: Float { (a * a + b * b).squareRoot() }

    /// Linear-light sRGB; components outside 0…1 mean the colour is out of gamut.
    public var linearRGB: (r: Float, g: Float, b: Float) {
        let lc = l + 0.3963377774 * a + 0.2158037573 * b
        let mc = l - 0.1055613458 * a - 0.0638541728 * b
        let sc = l - 0.0894841775 * a - 1.2914855480 * b
        let lv = lc * lc * lc, mv = mc * mc * mc, sv = sc * sc * sc
        return (4.0767416621 * lv - 3.3077115913 * mv + 0.2309699292 * sv,
                -1.2684380046 * lv + 2.6097574011 * mv - 0.3413193965 * sv,
                -0.0041960863 * lv - 0.7034186147 * mv + 1.7076147010 * sv)
    }

    public var isInGamut: Bool {
        let c = linearRGB, e: Float = 1e-4
        return c.r >= -e && c.r <= 1 + e && c.g >= -e && c.g <= 1 + e && c.b >= -e && c.b <= 1 + e
    }

    /// The displayable colour with the same lightness and hue, reducing chroma until it
    /// fits sRGB (clipping channels instead would shift hue and lightness).
    public var gamutMapped: OKLab {
        if isInGamut { return self }
        let c = chroma
        guard c > 0 else { return OKLab(l: min(1, max(0, l)), a: 0, b: 0) }
        var low: Float = 0, high: Float = 1
        for _ in 0..<24 {
            let mid = (low + high) / 2
            if OKLab(l: l, a: a * mid, b: b * mid).isInGamut { low = mid } else { high = mid }
        }
        return OKLab(l: l, a: a * low, b: b * low)
    }

    public var color: Color {
        let c = gamutMapped.linearRGB
        return Color(red: OKLab.encode(c.r), green: OKLab.encode(c.g), blue: OKLab.encode(c.b))
    }

    public func distance(to other: OKLab) -> Float {
        let dl = l - other.l, da = a - other.a, db = b - other.b
        return (dl * dl + da * da + db * db).squareRoot()
    }

    static func linear(_ byte: UInt8) -> Float {
        let v = Float(byte) / 255
        return v <= 0.04045 ? v / 12.92 : powf((v + 0.055) / 1.055, 2.4)
    }
    static func encode(_ v: Float) -> Float {
        let c = max(0, min(1, v))
        return c <= 0.0031308 ? 12.92 * c : 1.055 * powf(c, 1 / 2.4) - 0.055
    }
}

/// A continuous colour map sampled into a 256-entry table.
public struct ColorMap: Hashable, Sendable {
    public let name: String
    /// True when the middle of the range is the neutral point (e.g. a signed difference).
    public let isDiverging: Bool
    /// Colour for missing values (NaN).
    public var missing: Color
    public let table: [Color]

    /// Builds a map by interpolating OKLab control points spaced evenly over 0…1.
    /// `interpolateHue` interpolates lightness, chroma and hue (a spiral through the hue
    /// circle, as a sequential map needs) instead of straight lines in OKLab (which a
    /// diverging map needs, to pass through its neutral centre).
    public init(name: String, controlPoints: [OKLab], interpolateHue: Bool, isDiverging: Bool,
                missing: Color = Color(hex: 0x808080)) {
        precondition(controlPoints.count >= 2, "a colour map needs at least two control points")
        self.name = name
        self.isDiverging = isDiverging
        self.missing = missing
        let count = 256
        var table = [Color]()
        table.reserveCapacity(count)
        for i in 0..<count {
            let t = Float(i) / Float(count - 1) * Float(controlPoints.count - 1)
            let k = min(Int(t), controlPoints.count - 2)
            let f = t - Float(k)
            let p = controlPoints[k], q = controlPoints[k + 1]
            let l = p.l + (q.l - p.l) * f
            let mixed: OKLab
            if interpolateHue {
                let hp = atan2f(p.b, p.a), hq = atan2f(q.b, q.a)
                var dh = hq - hp
                if dh > .pi { dh -= 2 * .pi } else if dh < -.pi { dh += 2 * .pi }
                let h = hp + dh * f
                let c = p.chroma + (q.chroma - p.chroma) * f
                mixed = OKLab(l: l, a: c * cosf(h), b: c * sinf(h))
            } else {
                mixed = OKLab(l: l, a: p.a + (q.a - p.a) * f, b: p.b + (q.b - p.b) * f)
            }
            table.append(mixed.color)
        }
        self.table = table
    }

    /// Colour at `t` in 0…1 (clamped); NaN gives `missing`.
    @inlinable public func color(at t: Float) -> Color {
        guard !t.isNaN else { return missing }
        let i = Int((max(0, min(1, t)) * Float(table.count - 1)).rounded())
        return table[i]
    }

    /// Colour for `value` mapped linearly from `range`.
    @inlinable public func color(for value: Float, in range: ClosedRange<Float>) -> Color {
        let span = range.upperBound - range.lowerBound
        return color(at: span > 0 ? (value - range.lowerBound) / span : 0.5)
    }

    /// RGBA bytes (row-major, 4 per value) for a heat-map texture.
    public func rgba(_ values: [Float], in range: ClosedRange<Float>) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        for (i, v) in values.enumerated() {
            let c = color(for: v, in: range)
            bytes[4 * i] = c.r; bytes[4 * i + 1] = c.g; bytes[4 * i + 2] = c.b; bytes[4 * i + 3] = c.a
        }
        return bytes
    }

    /// Sequential, viridis-like: dark violet → blue → teal → green → yellow, lightness
    /// rising linearly from 0.25 to 0.92. Control points chosen for this project.
    public static let sequential = ColorMap(
        name: "sequential",
        controlPoints: [OKLab(l: 0.25, chroma: 0.10, hueDegrees: 305),
                        OKLab(l: 0.4175, chroma: 0.12, hueDegrees: 265),
                        OKLab(l: 0.585, chroma: 0.10, hueDegrees: 205),
                        OKLab(l: 0.7525, chroma: 0.15, hueDegrees: 145),
                        OKLab(l: 0.92, chroma: 0.17, hueDegrees: 105)],
        interpolateHue: true, isDiverging: false)

    /// Diverging: blue → near-white → red-orange, symmetric in lightness so neither side
    /// looks more important.
    public static let diverging = ColorMap(
        name: "diverging",
        controlPoints: [OKLab(l: 0.40, chroma: 0.13, hueDegrees: 258),
                        OKLab(l: 0.68, chroma: 0.09, hueDegrees: 250),
                        OKLab(l: 0.96, chroma: 0.005, hueDegrees: 90),
                        OKLab(l: 0.68, chroma: 0.12, hueDegrees: 38),
                        OKLab(l: 0.40, chroma: 0.14, hueDegrees: 30)],
        interpolateHue: false, isDiverging: true)

    /// The diverging map's upper half (near-white → red-orange): for a quantity
    /// that is never negative (label information) beside a signed one (CAR), so
    /// that the same colour means the same direction in both.
    public static let warm = ColorMap(
        name: "warm",
        controlPoints: [OKLab(l: 0.96, chroma: 0.005, hueDegrees: 90),
                        OKLab(l: 0.68, chroma: 0.12, hueDegrees: 38),
                        OKLab(l: 0.40, chroma: 0.14, hueDegrees: 30)],
        interpolateHue: false, isDiverging: false)
}

/// Distinct colours for classes. The twelve colours were chosen for this project by a
/// greedy max–min search in OKLab (lightness 0.55–0.85, readable on dark and light
/// backgrounds), requiring separation not only in full OKLab but also with the red–green
/// axis removed (a proxy for protan/deutan vision) and with the blue–yellow axis removed
/// (a proxy for tritan vision). Colours vary in lightness as well as hue for that reason.
public struct CategoricalPalette: Hashable, Sendable {
    public let colors: [Color]

    public init(colors: [Color]) {
        precondition(!colors.isEmpty, "a palette needs colours")
        self.colors = colors
    }

    /// The colour of class `index`; indices beyond the palette wrap around.
    public func color(at index: Int) -> Color {
        let n = colors.count
        return colors[((index % n) + n) % n]
    }

    /// Class colours per theme. Lines and swatches must stand out from the panel
    /// they are drawn on: each colour has a WCAG contrast ratio of at least 3:1
    /// (non-text contrast) against its theme's panel and background — 4.5:1 on
    /// the high-contrast theme — where `standard` puts yellow and light green on
    /// white at 1.3–1.5:1. Chosen for this project by a local search in OKLab
    /// that keeps each class within 25° of its hue in `standard` (class 0 stays
    /// blue in every theme), bounds lightness by the contrast rule, and
    /// maximises the smallest distance between the first ten colours, in full
    /// OKLab and with the red–green axis removed (SlicerUITests checks both).
    public static let dark = CategoricalPalette(colors: [
        Color(hex: 0x0088CB), Color(hex: 0xFF4500), Color(hex: 0x00C1B6), Color(hex: 0xF89C00),
        Color(hex: 0xE53C9A), Color(hex: 0x9C80FF), Color(hex: 0x967B58), Color(hex: 0x00F189),
        Color(hex: 0xFF7CFF), Color(hex: 0xE6DF00), Color(hex: 0xADE5D9), Color(hex: 0xCCA0B8),
    ])

    public static let light = CategoricalPalette(colors: [
        Color(hex: 0x0035C9), Color(hex: 0x9B0A36), Color(hex: 0x00616E), Color(hex: 0x8C5200),
        Color(hex: 0x680064), Color(hex: 0x9247EE), Color(hex: 0x583127), Color(hex: 0x009286),
        Color(hex: 0x815C98), Color(hex: 0x848700), Color(hex: 0x004C07), Color(hex: 0xCE4A73),
    ])

    public static let highContrast = CategoricalPalette(colors: [
        Color(hex: 0x0E94FF), Color(hex: 0xF79B86), Color(hex: 0x00C3BE), Color(hex: 0xDBBB00),
        Color(hex: 0xD061C0), Color(hex: 0xA69FFF), Color(hex: 0xAA8C6A), Color(hex: 0x00FF8A),
        Color(hex: 0xFFA1EF), Color(hex: 0xDDF500), Color(hex: 0xA5DEAE), Color(hex: 0xFFD9E5),
    ])

    public static let standard = CategoricalPalette(colors: [
        Color(hex: 0x1F74BF), Color(hex: 0xE85A48), Color(hex: 0x2FA29D), Color(hex: 0xD0A92D),
        Color(hex: 0xB93780), Color(hex: 0x7D7DF9), Color(hex: 0xA05F38), Color(hex: 0x36F1A4),
        Color(hex: 0xDF84F4), Color(hex: 0xD6D71F), Color(hex: 0x72C298), Color(hex: 0xFBB4E2),
    ])
}
