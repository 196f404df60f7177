// Text measurement and glyph placement, behind a protocol the backend implements.
// The core never rasterises text: it asks the measurer where each glyph goes and which
// part of the glyph atlas to sample, so layout is testable with a fake, fixed-width measurer.

/// The typefaces the UI uses (DejaVu Sans and DejaVu Sans Mono in the SDL backend).
public enum FontFace: Int, Hashable, Sendable, CaseIterable {
    case sans
    case mono
}

/// A face at a whole pixel size. Sizes are whole pixels so every UI scale gets its own
/// crisply hinted rasterisation instead of a stretched bitmap.
public struct Font: Hashable, Sendable {
    public var face: FontFace
    public var pixelSize: Int
    /// Glyph images turned 90° counter-clockwise in the atlas, for text that reads
    /// upwards (`DrawList.verticalText`). Placement and metrics are the upright ones.
    public var isTurned: Bool

    public init(_ face: FontFace, pixelSize: Int, isTurned: Bool = false) {
        self.face = face
        self.pixelSize = max(1, pixelSize)
        self.isTurned = isTurned
    }

    /// The same face and size with turned glyph images.
    public var turned: Font { Font(face, pixelSize: pixelSize, isTurned: true) }
}

/// Vertical metrics of a font, in pixels.
public struct FontMetrics: Hashable, Sendable {
    /// Baseline distance below the top of the line box.
    public var ascent: Float
    /// Distance of the lowest descender below the baseline (positive).
    public var descent: Float
    /// Distance between consecutive baselines.
    public var lineHeight: Float

    public init(ascent: Float, descent: Float, lineHeight: Float) {
        self.ascent = ascent; self.descent = descent; self.lineHeight = lineHeight
    }
}

/// Where one glyph's image goes, relative to the top-left of the text's line box,
/// and which part of the atlas texture holds it (normalised coordinates).
public struct PlacedGlyph: Sendable {
    public var rect: Rect
    public var uvMin: Vec2
    public var uvMax: Vec2
    /// Pen position after this glyph: the caret position following it.
    public var penAfter: Float

    public init(rect: Rect, uvMin: Vec2, uvMax: Vec2, penAfter: Float) {
        self.rect = rect; self.uvMin = uvMin; self.uvMax = uvMax; self.penAfter = penAfter
    }
}

/// Measures and places text. Implemented by the SDL glyph atlas; tests use `FixedWidthTextMeasurer`.
@MainActor
public protocol TextMeasurer: AnyObject {
    /// The texture glyph UVs refer to. It also holds a white texel so solid shapes can share
    /// the texture and land in the same draw call as text. `.none` when there is no texture.
    var atlasTexture: TextureID { get }
    /// Normalised coordinates of the centre of the white texel in `atlasTexture`.
    var whiteTexel: Vec2 { get }
    func metrics(of font: Font) -> FontMetrics
    /// Advance width of a single line of text (newlines are not interpreted).
    func width(of text: Substring, font: Font) -> Float
    /// Calls `body` for every visible glyph of a single line, in order.
    func forEachGlyph(in text: Substring, font: Font, _ body: (PlacedGlyph) -> Void)
}

extension TextMeasurer {
    public func width(of text: String, font: Font) -> Float { width(of: text[...], font: font) }

    /// Caret offsets (in Unicode scalars) → x positions, including 0 before the first scalar.
    /// Used by the text field to place the caret and to hit-test clicks.
    public func caretPositions(in text: Substring, font: Font) -> [Float] {
        let scalars = text.unicodeScalars
        var positions: [Float] = [0]
        var index = scalars.startIndex
        // Prefix widths rather than summed advances, so a measurer with kerning stays exact.
        while index < scalars.endIndex {
            index = scalars.index(after: index)
            positions.append(width(of: Substring(scalars[scalars.startIndex..<index]), font: font))
        }
        return positions
    }

    /// Splits text into lines no wider than `maxWidth`, breaking at spaces where possible
    /// and inside words only when a single word is too long. "\n" always breaks.
    public func wrap(_ text: String, font: Font, maxWidth: Float) -> [Substring] {
        var lines: [Substring] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var lineStart = paragraph.startIndex
            var lastBreak: Substring.Index? = nil
            var index = paragraph.startIndex
            while index < paragraph.endIndex {
                let next = paragraph.index(after: index)
                if width(of: paragraph[lineStart..<next], font: font) > maxWidth, index > lineStart {
                    if paragraph[index] == " " {
                        // The overflowing character is a space: the line ends right before it.
                        lines.append(paragraph[lineStart..<index])
                        lineStart = next
                        index = next
                        lastBreak = nil
                        continue
                    }
                    if let breakAt = lastBreak, breakAt > lineStart {
                        lines.append(paragraph[lineStart..<breakAt])
                        lineStart = paragraph.index(after: breakAt)   // drop the space
                    } else {
                        lines.append(paragraph[lineStart..<index])
                        lineStart = index
                    }
                    lastBreak = nil
                    continue   // re-measure the current character on the new line
                }
                if paragraph[index] == " " { lastBreak = index }
                index = next
            }
            lines.append(paragraph[lineStart..<paragraph.endIndex])
        }
        return lines
    }

    /// The text shortened with a trailing "…" so it fits `maxWidth`.
    public func truncate(_ text: String, font: Font, maxWidth: Float) -> String {
        if width(of: text[...], font: font) <= maxWidth { return text }
        let ellipsis = "…"
        let budget = maxWidth - width(of: ellipsis[...], font: font)
        if budget <= 0 { return "" }
        var end = text.startIndex
        var fitted = text.startIndex
        while end < text.endIndex {
            end = text.index(after: end)
            if width(of: text[text.startIndex..<end], font: font) > budget { break }
            fitted = end
        }
        return String(text[text.startIndex..<fitted]) + ellipsis
    }
}

/// A measurer where every scalar is `advanceRatio × pixelSize` wide: deterministic layout for
/// tests of the core (and of app views) without SDL or fonts.
@MainActor
public final class FixedWidthTextMeasurer: TextMeasurer {
    public let advanceRatio: Float
    public let lineHeightRatio: Float

    public init(advanceRatio: Float = 0.5, lineHeightRatio: Float = 1.25) {
        self.advanceRatio = advanceRatio
        self.lineHeightRatio = lineHeightRatio
    }

    public var atlasTexture: TextureID { .none }
    public var whiteTexel: Vec2 { .zero }

    public func advance(for font: Font) -> Float { Float(font.pixelSize) * advanceRatio }

    public func metrics(of font: Font) -> FontMetrics {
        let size = Float(font.pixelSize)
        return FontMetrics(ascent: size, descent: size * 0.25, lineHeight: size * lineHeightRatio)
    }

    public func width(of text: Substring, font: Font) -> Float {
        Float(text.unicodeScalars.count) * advance(for: font)
    }

    public func forEachGlyph(in text: Substring, font: Font, _ body: (PlacedGlyph) -> Void) {
        let advance = advance(for: font)
        let height = metrics(of: font).lineHeight
        var pen: Float = 0
        for scalar in text.unicodeScalars {
            if scalar != " " {
                body(PlacedGlyph(rect: Rect(x: pen, y: 0, width: advance, height: height),
                                 uvMin: .zero, uvMax: .zero, penAfter: pen + advance))
            }
            pen += advance
        }
    }
}
