// Geometry value types shared by the core, the draw list and the backend.
// Coordinates are in output pixels (the renderer's drawable), y pointing down.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A 2-D point or vector in pixels.
public struct Vec2: Hashable, Sendable, CustomStringConvertible {
    public var x: Float
    public var y: Float

    @inlinable public init(_ x: Float, _ y: Float) { self.x = x; self.y = y }
    @inlinable public init(x: Float, y: Float) { self.x = x; self.y = y }

    public static let zero = Vec2(0, 0)

    @inlinable public static func + (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x + b.x, a.y + b.y) }
    @inlinable public static func - (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x - b.x, a.y - b.y) }
    @inlinable public static func * (a: Vec2, s: Float) -> Vec2 { Vec2(a.x * s, a.y * s) }
    @inlinable public static prefix func - (a: Vec2) -> Vec2 { Vec2(-a.x, -a.y) }
    @inlinable public static func += (a: inout Vec2, b: Vec2) { a = a + b }
    @inlinable public static func -= (a: inout Vec2, b: Vec2) { a = a - b }

    @inlinable public var length: Float { (x * x + y * y).squareRoot() }
    @inlinable public func dot(_ other: Vec2) -> Float { x * other.x + y * other.y }
    /// The vector turned a quarter turn (counter-clockwise on screen).
    @inlinable public var perpendicular: Vec2 { Vec2(-y, x) }
    /// Unit vector in the same direction, or zero for a (near-)zero vector.
    @inlinable public var normalized: Vec2 {
        let l = length
        return l > 1e-6 ? Vec2(x / l, y / l) : .zero
    }

    public var description: String { "(\(x), \(y))" }
}

/// An axis-aligned rectangle: origin at the top-left, non-negative size.
public struct Rect: Hashable, Sendable, CustomStringConvertible {
    public var x: Float
    public var y: Float
    public var width: Float
    public var height: Float

    @inlinable public init(x: Float, y: Float, width: Float, height: Float) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
    @inlinable public init(origin: Vec2, size: Vec2) {
        self.init(x: origin.x, y: origin.y, width: size.x, height: size.y)
    }
    /// The rectangle spanned by two corners given in any order (used for brushes).
    @inlinable public init(corner a: Vec2, corner b: Vec2) {
        self.init(x: min(a.x, b.x), y: min(a.y, b.y), width: abs(a.x - b.x), height: abs(a.y - b.y))
    }

    public static let zero = Rect(x: 0, y: 0, width: 0, height: 0)

    @inlinable public var minX: Float { x }
    @inlinable public var minY: Float { y }
    @inlinable public var maxX: Float { x + width }
    @inlinable public var maxY: Float { y + height }
    @inlinable public var origin: Vec2 { Vec2(x, y) }
    @inlinable public var size: Vec2 { Vec2(width, height) }
    @inlinable public var center: Vec2 { Vec2(x + width * 0.5, y + height * 0.5) }
    @inlinable public var isEmpty: Bool { width <= 0 || height <= 0 }

    /// Half-open containment: a point on the right or bottom edge belongs to the
    /// neighbour, so adjacent widgets never both claim the mouse.
    @inlinable public func contains(_ p: Vec2) -> Bool {
        p.x >= x && p.y >= y && p.x < x + width && p.y < y + height
    }
    @inlinable public func intersects(_ r: Rect) -> Bool {
        x < r.maxX && r.x < maxX && y < r.maxY && r.y < maxY
    }
    /// The overlap of two rectangles; empty (zero size) when they do not meet.
    @inlinable public func intersection(_ r: Rect) -> Rect {
        let x0 = max(x, r.x), y0 = max(y, r.y)
        let x1 = min(maxX, r.maxX), y1 = min(maxY, r.maxY)
        return Rect(x: x0, y: y0, width: max(0, x1 - x0), height: max(0, y1 - y0))
    }
    @inlinable public func union(_ r: Rect) -> Rect {
        let x0 = min(x, r.x), y0 = min(y, r.y)
        return Rect(x: x0, y: y0, width: max(maxX, r.maxX) - x0, height: max(maxY, r.maxY) - y0)
    }
    /// Shrinks by `d` on every side (grows for negative `d`), never below zero size.
    @inlinable public func insetBy(_ d: Float) -> Rect { insetBy(dx: d, dy: d) }
    @inlinable public func insetBy(dx: Float, dy: Float) -> Rect {
        Rect(x: x + dx, y: y + dy, width: max(0, width - 2 * dx), height: max(0, height - 2 * dy))
    }
    @inlinable public func offsetBy(_ d: Vec2) -> Rect { Rect(x: x + d.x, y: y + d.y, width: width, height: height) }
    /// Snaps the edges to whole pixels so fills and clips land on pixel boundaries.
    @inlinable public var pixelAligned: Rect {
        let x0 = x.rounded(), y0 = y.rounded()
        return Rect(x: x0, y: y0, width: (maxX).rounded() - x0, height: (maxY).rounded() - y0)
    }

    public var description: String { "Rect(\(x), \(y), \(width)×\(height))" }
}

/// An sRGB colour with straight (non-premultiplied) alpha, 8 bits per channel.
/// The byte layout matches `SDL_Color`, which lets the backend hand vertices to SDL unconverted.
public struct Color: Hashable, Sendable, CustomStringConvertible {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8
    public var a: UInt8

    @inlinable public init(r: UInt8, g: UInt8, b: UInt8, a: UInt8 = 255) {
        self.r = r; self.g = g; self.b = b; self.a = a
    }
    /// From a 0xRRGGBB literal, e.g. `Color(hex: 0x1E88E5)`.
    @inlinable public init(hex: UInt32, alpha: UInt8 = 255) {
        self.init(r: UInt8((hex >> 16) & 0xFF), g: UInt8((hex >> 8) & 0xFF), b: UInt8(hex & 0xFF), a: alpha)
    }
    /// From floating-point channels in 0…1 (clamped).
    public init(red: Float, green: Float, blue: Float, alpha: Float = 1) {
        func byte(_ v: Float) -> UInt8 { UInt8(max(0, min(255, (v * 255).rounded()))) }
        self.init(r: byte(red), g: byte(green), b: byte(blue), a: byte(alpha))
    }

    public static let white = Color(r: 255, g: 255, b: 255)
    public static let black = Color(r: 0, g: 0, b: 0)
    public static let clear = Color(r: 0, g: 0, b: 0, a: 0)

    /// The same colour with alpha scaled by `factor` (0…1).
    @inlinable public func withAlpha(_ factor: Float) -> Color {
        Color(r: r, g: g, b: b, a: UInt8(max(0, min(255, Float(a) * factor))))
    }
    /// Linear blend in sRGB space; good enough for hover tints, not for colour maps.
    public func mixed(with other: Color, _ t: Float) -> Color {
        func lerp(_ p: UInt8, _ q: UInt8) -> UInt8 {
            UInt8(max(0, min(255, (Float(p) + (Float(q) - Float(p)) * t).rounded())))
        }
        return Color(r: lerp(r, other.r), g: lerp(g, other.g), b: lerp(b, other.b), a: lerp(a, other.a))
    }
    /// Relative luminance (WCAG), used to pick readable text over a filled cell.
    public var luminance: Float {
        func lin(_ c: UInt8) -> Float {
            let v = Float(c) / 255
            return v <= 0.04045 ? v / 12.92 : powf((v + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }
    /// WCAG contrast ratio between two opaque colours (1…21).
    public func contrastRatio(with other: Color) -> Float {
        let l1 = luminance, l2 = other.luminance
        return (max(l1, l2) + 0.05) / (min(l1, l2) + 0.05)
    }

    public var description: String {
        let hex = (UInt32(r) << 16) | (UInt32(g) << 8) | UInt32(b)
        let digits = String(hex, radix: 16, uppercase: true)
        return "#" + String(repeating: "0", count: 6 - digits.count) + digits + (a == 255 ? "" : "/\(a)")
    }
}

/// Which way a splitter divides space or a brush is constrained.
public enum Axis: Sendable, Hashable {
    /// Side by side: the divider is vertical, the split moves along x.
    case horizontal
    /// Stacked: the divider is horizontal, the split moves along y.
    case vertical
}
