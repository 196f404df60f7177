// The glyph atlas: glyphs are rasterised with SDL_ttf on first use, per face and pixel size,
// trimmed to their ink and packed into one texture shared by every font size. The texture
// also holds a white block that solid shapes sample, so text and shapes share draw calls.

import CSDL2

/// Where a rasterised glyph sits relative to the pen and in the atlas.
private struct GlyphEntry {
    var advance: Float
    /// Ink rectangle relative to (pen x, top of the line box); empty for spaces.
    var rect: Rect
    var uvMin: Vec2
    var uvMax: Vec2
}

/// One opened face at one pixel size with its cached glyphs.
private final class FontEntry {
    let handle: OpaquePointer
    let metrics: FontMetrics
    let isTurned: Bool
    /// ASCII glyphs by code point: an array lookup on the hot path instead of hashing.
    var ascii: [GlyphEntry?] = Array(repeating: nil, count: 128)
    var other: [UInt32: GlyphEntry] = [:]

    init(handle: OpaquePointer, metrics: FontMetrics, isTurned: Bool) {
        self.handle = handle
        self.metrics = metrics
        self.isTurned = isTurned
    }

    deinit { TTF_CloseFont(handle) }
}

@MainActor
public final class SDLFontAtlas: TextMeasurer {
    public let atlasTexture: TextureID
    public let whiteTexel: Vec2
    /// Side of the square atlas texture in pixels.
    public let size: Int
    /// Increases whenever the atlas is cleared (see `prepareFrame()`).
    public private(set) var generation = 0

    private let texture: OpaquePointer
    private let fontPaths: [FontFace: String]
    private var fonts: [Font: FontEntry] = [:]
    // Shelf packing: glyphs fill rows left to right; a new shelf starts below the tallest.
    private var shelfX = 0, shelfY = 0, shelfHeight = 0
    private var isFull = false
    private static let whiteBlock = 4

    /// Opens the atlas for `renderer`. `texture` must be registered with the backend under
    /// `textureID`; `fontDirectory` must hold both DejaVu files.
    init(renderer: OpaquePointer, textureID: TextureID, fontDirectory: String, size: Int = 1024) throws {
        var paths: [FontFace: String] = [:]
        for face in FontFace.allCases {
            let path = fontDirectory + "/" + (FontLocator.fileNames[face] ?? "")
            // Opening once validates the file early, with a clear message.
            guard let probe = TTF_OpenFont(path, 12) else { throw SDLError("TTF_OpenFont(\(path))") }
            TTF_CloseFont(probe)
            paths[face] = path
        }
        fontPaths = paths
        guard let texture = SDL_CreateTexture(renderer, SDL_PIXELFORMAT_ARGB8888.rawValue, Int32(SDL_TEXTUREACCESS_STATIC.rawValue),
                                              Int32(size), Int32(size)) else {
            throw SDLError("SDL_CreateTexture(glyph atlas)")
        }
        SDL_SetTextureBlendMode(texture, SDL_BLENDMODE_BLEND)
        SDL_SetTextureScaleMode(texture, SDL_ScaleModeNearest)
        self.texture = texture
        self.size = size
        self.atlasTexture = textureID
        let centre = Float(SDLFontAtlas.whiteBlock) / 2 / Float(size)
        self.whiteTexel = Vec2(centre, centre)
        clear()
    }

    var sdlTexture: OpaquePointer { texture }

    /// Clears the atlas if it filled up during the last frame, so glyphs dropped then are
    /// rasterised on the next frame. Returns true when it cleared (the host then redraws).
    @discardableResult
    func prepareFrame() -> Bool {
        guard isFull else { return false }
        clear()
        return true
    }

    private func clear() {
        for entry in fonts.values {
            entry.ascii = Array(repeating: nil, count: 128)
            entry.other.removeAll()
        }
        // Transparent everywhere except the white block in the corner.
        let zero = [UInt32](repeating: 0, count: size * size)
        zero.withUnsafeBytes { bytes in
            _ = SDL_UpdateTexture(texture, nil, bytes.baseAddress, Int32(size * 4))
        }
        let block = SDLFontAtlas.whiteBlock
        let white = [UInt32](repeating: 0xFFFF_FFFF, count: block * block)
        var rect = SDL_Rect(x: 0, y: 0, w: Int32(block), h: Int32(block))
        white.withUnsafeBytes { bytes in
            _ = SDL_UpdateTexture(texture, &rect, bytes.baseAddress, Int32(block * 4))
        }
        shelfX = block + 1
        shelfY = 0
        shelfHeight = block
        isFull = false
        generation += 1
    }

    // MARK: TextMeasurer

    public func metrics(of font: Font) -> FontMetrics {
        entry(for: font)?.metrics ?? FontMetrics(ascent: Float(font.pixelSize), descent: 0, lineHeight: Float(font.pixelSize))
    }

    public func width(of text: Substring, font: Font) -> Float {
        guard let entry = entry(for: font) else { return 0 }
        var width: Float = 0
        for scalar in text.unicodeScalars { width += glyph(scalar, in: entry).advance }
        return width
    }

    public func forEachGlyph(in text: Substring, font: Font, _ body: (PlacedGlyph) -> Void) {
        guard let entry = entry(for: font) else { return }
        var pen: Float = 0
        for scalar in text.unicodeScalars {
            let g = glyph(scalar, in: entry)
            if !g.rect.isEmpty {
                body(PlacedGlyph(rect: g.rect.offsetBy(Vec2(pen, 0)), uvMin: g.uvMin, uvMax: g.uvMax, penAfter: pen + g.advance))
            }
            pen += g.advance
        }
    }

    // MARK: Fonts and glyphs

    private func entry(for font: Font) -> FontEntry? {
        if let entry = fonts[font] { return entry }
        guard let path = fontPaths[font.face], let handle = TTF_OpenFont(path, Int32(font.pixelSize)) else { return nil }
        TTF_SetFontHinting(handle, TTF_HINTING_NORMAL)
        let ascent = Float(TTF_FontAscent(handle))
        let descent = Float(-TTF_FontDescent(handle))
        let metrics = FontMetrics(ascent: ascent, descent: descent, lineHeight: Float(TTF_FontLineSkip(handle)))
        let entry = FontEntry(handle: handle, metrics: metrics, isTurned: font.isTurned)
        fonts[font] = entry
        return entry
    }

    @inline(__always)
    private func glyph(_ scalar: Unicode.Scalar, in entry: FontEntry) -> GlyphEntry {
        let code = scalar.value
        if code < 128, let cached = entry.ascii[Int(code)] { return cached }
        if code >= 128, let cached = entry.other[code] { return cached }
        let made = rasterize(code, in: entry)
        // A glyph dropped because the atlas is full is not cached, so it is retried after the clear.
        if !isFull || made.rect.isEmpty {
            if code < 128 { entry.ascii[Int(code)] = made } else { entry.other[code] = made }
        }
        return made
    }

    private func rasterize(_ code: UInt32, in entry: FontEntry) -> GlyphEntry {
        var code = code
        if TTF_GlyphIsProvided32(entry.handle, code) == 0, code > 32 {
            code = 0xFFFD   // replacement character for glyphs the font lacks
        }
        var minX: Int32 = 0, maxX: Int32 = 0, minY: Int32 = 0, maxY: Int32 = 0, advance: Int32 = 0
        TTF_GlyphMetrics32(entry.handle, code, &minX, &maxX, &minY, &maxY, &advance)
        var result = GlyphEntry(advance: Float(advance), rect: .zero, uvMin: .zero, uvMax: .zero)
        if code == 32 || code == 9 { return result }
        let white = SDL_Color(r: 255, g: 255, b: 255, a: 255)
        guard let rendered = TTF_RenderGlyph32_Blended(entry.handle, code, white) else { return result }
        defer { SDL_FreeSurface(rendered) }
        guard let converted = SDL_ConvertSurfaceFormat(rendered, SDL_PIXELFORMAT_ARGB8888.rawValue, 0) else { return result }
        defer { SDL_FreeSurface(converted) }
        let surface = converted.pointee
        let w = Int(surface.w), h = Int(surface.h), pitch = Int(surface.pitch)
        guard w > 0, h > 0, let pixels = surface.pixels else { return result }

        // Trim to the inked pixels: less atlas space and fewer pixels to blend when drawing.
        let rows = pixels.assumingMemoryBound(to: UInt8.self)
        var x0 = w, y0 = h, x1 = -1, y1 = -1
        for y in 0..<h {
            let row = rows + y * pitch
            // ARGB8888 is a native-endian 32-bit value: alpha is the most significant byte.
            for x in 0..<w where UnsafeRawPointer(row + x * 4).loadUnaligned(as: UInt32.self) >> 24 != 0 {
                x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
            }
        }
        guard x1 >= x0, y1 >= y0 else { return result }
        let inkW = x1 - x0 + 1, inkH = y1 - y0 + 1

        // Place on a shelf, with a one-pixel gap so neighbours never bleed into each other.
        // A turned font stores the ink turned 90° counter-clockwise (inkH wide, inkW tall), so
        // that upward text is drawn with upright texture coordinates: every renderer then copies
        // it pixel for pixel (SDL's software renderer blits such quads and would not turn them).
        let (atlasW, atlasH) = entry.isTurned ? (inkH, inkW) : (inkW, inkH)
        if shelfX + atlasW + 1 > size {
            shelfX = 0
            shelfY += shelfHeight + 1
            shelfHeight = 0
        }
        if shelfY + atlasH > size {
            isFull = true
            return result
        }
        var target = SDL_Rect(x: Int32(shelfX), y: Int32(shelfY), w: Int32(atlasW), h: Int32(atlasH))
        if entry.isTurned {
            var turned = [UInt32](repeating: 0, count: inkW * inkH)
            for y in 0..<inkH {
                let row = rows + (y0 + y) * pitch + x0 * 4
                // Upright (x, y) goes to (y, inkW − 1 − x).
                for x in 0..<inkW { turned[(inkW - 1 - x) * inkH + y] = UnsafeRawPointer(row + x * 4).loadUnaligned(as: UInt32.self) }
            }
            turned.withUnsafeBytes { _ = SDL_UpdateTexture(texture, &target, $0.baseAddress, Int32(inkH * 4)) }
        } else {
            SDL_UpdateTexture(texture, &target, UnsafeRawPointer(rows + y0 * pitch + x0 * 4), Int32(pitch))
        }
        let s = Float(size)
        result.uvMin = Vec2(Float(shelfX) / s, Float(shelfY) / s)
        result.uvMax = Vec2(Float(shelfX + atlasW) / s, Float(shelfY + atlasH) / s)
        // The rendered surface starts at the pen, shifted left by any negative left bearing.
        let originX = Float(min(0, minX))
        result.rect = Rect(x: originX + Float(x0), y: Float(y0), width: Float(inkW), height: Float(inkH))
        shelfX += atlasW + 1
        shelfHeight = max(shelfHeight, atlasH)
        return result
    }
}
