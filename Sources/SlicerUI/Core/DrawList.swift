// The draw list: every primitive becomes indexed, coloured, textured triangles, appended
// into one vertex and one index buffer. Consecutive primitives with the same texture and
// clip rectangle share a batch, so a frame is a handful of backend draw calls.
//
// Solid shapes sample a white texel of the glyph atlas (when there is one), which puts
// shapes and text into the same batch. Axis-aligned rectangles are always emitted as the
// quad (0,1,2)(0,2,3) with one colour; SDL's software renderer turns exactly that pattern
// into a rectangle fill or blit, which is much faster than rasterising two triangles.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Identifies a backend texture (glyph atlas, image, heat map). `.none` draws untextured.
public struct TextureID: Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let none = TextureID(rawValue: 0)
}

/// One vertex. The field order and sizes mirror `SDL_Vertex` (two floats, four bytes,
/// two floats; 20 bytes) so the backend can pass the buffer to SDL without copying;
/// the backend checks the layout at start-up and converts if it ever differs.
public struct DrawVertex: Hashable, Sendable {
    public var position: Vec2
    public var color: Color
    /// Normalised texture coordinates.
    public var uv: Vec2

    @inlinable public init(position: Vec2, color: Color, uv: Vec2) {
        self.position = position; self.color = color; self.uv = uv
    }
}

/// A run of indices drawn with one texture and one clip rectangle: one backend draw call.
/// Its indices count from `vertexOffset`, so a backend passes only the batch's own
/// vertices (`vertexOffset ..< vertexOffset + vertexCount`) with each call.
public struct DrawBatch: Hashable, Sendable {
    public var texture: TextureID
    public var clipRect: Rect
    public var vertexOffset: Int
    public var vertexCount: Int
    public var indexOffset: Int
    public var indexCount: Int
}

/// Triangles for one layer of a frame.
public struct DrawList: Sendable {
    public private(set) var vertices: [DrawVertex] = []
    /// Three per triangle, relative to their batch's `vertexOffset`. `Int32` matches SDL's `int`.
    public private(set) var indices: [Int32] = []
    public private(set) var batches: [DrawBatch] = []
    /// Primitives requested since the last reset, including culled ones.
    public private(set) var submittedCount = 0
    /// Primitives dropped because they lay entirely outside the clip rectangle.
    public private(set) var culledCount = 0
    /// The whole output area; the clip rectangle when no clip is pushed.
    public private(set) var bounds: Rect
    /// Texture and texel used for solid shapes (see the file comment).
    public private(set) var solidTexture: TextureID
    public private(set) var whiteTexel: Vec2
    private var clipStack: [Rect] = []
    private var batchVertexStart = 0
    /// Reused for the outline of rounded shapes, so drawing them allocates nothing.
    private var scratch: [Vec2] = []

    public init(bounds: Rect = Rect(x: 0, y: 0, width: 800, height: 600),
                solidTexture: TextureID = .none, whiteTexel: Vec2 = .zero) {
        self.bounds = bounds
        self.solidTexture = solidTexture
        self.whiteTexel = whiteTexel
    }

    /// Empties the list for a new frame, keeping the buffers' capacity.
    public mutating func reset(bounds: Rect, solidTexture: TextureID, whiteTexel: Vec2) {
        vertices.removeAll(keepingCapacity: true)
        indices.removeAll(keepingCapacity: true)
        batches.removeAll(keepingCapacity: true)
        clipStack.removeAll(keepingCapacity: true)
        submittedCount = 0
        culledCount = 0
        self.bounds = bounds
        self.solidTexture = solidTexture
        self.whiteTexel = whiteTexel
    }

    public var isEmpty: Bool { indices.isEmpty }
    public var triangleCount: Int { indices.count / 3 }

    // MARK: Clipping

    /// The current clip rectangle; primitives are clipped to it by the backend and
    /// dropped here when they miss it entirely.
    public var clipRect: Rect { clipStack.last ?? bounds }
    public var clipDepth: Int { clipStack.count }

    /// Pushes a clip rectangle, intersected with the current one (so a child can never
    /// draw outside its parent). Edges are snapped to pixels, as the backend clips in pixels.
    public mutating func pushClip(_ rect: Rect) {
        clipStack.append(rect.pixelAligned.intersection(clipRect))
    }
    /// Pushes a clip rectangle that ignores the current one (popups and modals escape panels).
    public mutating func pushClip(ignoringParent rect: Rect) {
        clipStack.append(rect.pixelAligned.intersection(bounds))
    }
    public mutating func popClip() {
        if !clipStack.isEmpty { clipStack.removeLast() }
    }

    // MARK: Batching

    /// Makes the last batch match `texture` and the current clip; returns false (and counts a
    /// cull) when `bounds` misses the clip rectangle, in which case nothing must be appended.
    @inline(__always)
    private mutating func begin(_ texture: TextureID, covering area: Rect) -> Bool {
        submittedCount += 1
        let clip = clipRect
        guard area.intersects(clip) || (area.isEmpty && clip.contains(area.origin)) else {
            culledCount += 1
            return false
        }
        if let last = batches.last, last.texture == texture, last.clipRect == clip {
            return true
        }
        let batch = DrawBatch(texture: texture, clipRect: clip, vertexOffset: vertices.count, vertexCount: 0,
                              indexOffset: indices.count, indexCount: 0)
        // Reuse a trailing empty batch (left when a clip changed before anything was drawn).
        if let last = batches.last, last.indexCount == 0 {
            batches[batches.count - 1] = batch
        } else {
            batches.append(batch)
        }
        batchVertexStart = vertices.count
        return true
    }

    /// Index of the next vertex relative to the current batch.
    @inline(__always)
    private var nextIndex: Int32 { Int32(vertices.count - batchVertexStart) }

    @inline(__always)
    private mutating func addIndices(_ a: Int32, _ b: Int32, _ c: Int32) {
        indices.append(a); indices.append(b); indices.append(c)
        batches[batches.count - 1].indexCount += 3
    }

    @inline(__always)
    private mutating func addVertex(_ x: Float, _ y: Float, _ color: Color, _ uv: Vec2) {
        vertices.append(DrawVertex(position: Vec2(x, y), color: color, uv: uv))
        batches[batches.count - 1].vertexCount += 1
    }

    /// Appends an axis-aligned quad in the exact layout SDL's software renderer recognises.
    @inline(__always)
    private mutating func addQuad(_ r: Rect, _ color: Color, uvMin: Vec2, uvMax: Vec2) {
        let base = nextIndex
        addVertex(r.minX, r.minY, color, uvMin)
        addVertex(r.maxX, r.minY, color, Vec2(uvMax.x, uvMin.y))
        addVertex(r.maxX, r.maxY, color, uvMax)
        addVertex(r.minX, r.maxY, color, Vec2(uvMin.x, uvMax.y))
        indices.append(base); indices.append(base + 1); indices.append(base + 2)
        indices.append(base); indices.append(base + 2); indices.append(base + 3)
        batches[batches.count - 1].indexCount += 6
    }

    // MARK: Rectangles

    /// A filled rectangle, optionally with rounded corners. Edges snap to pixels so
    /// fractional UI scales stay crisp.
    public mutating func fillRect(_ rect: Rect, color: Color, cornerRadius: Float = 0) {
        let r = rect.pixelAligned
        guard color.a > 0, !r.isEmpty, begin(solidTexture, covering: r) else { return }
        let radius = min(cornerRadius, r.width * 0.5, r.height * 0.5)
        if radius < 1 {
            addQuad(r, color, uvMin: whiteTexel, uvMax: whiteTexel)
            return
        }
        // Three rectangles (a cross) and four corner fans: the large areas stay rectangles,
        // which renderers fill much faster than arbitrary triangles.
        let rr = radius.rounded()
        addQuad(Rect(x: r.minX, y: r.minY + rr, width: r.width, height: r.height - 2 * rr), color, uvMin: whiteTexel, uvMax: whiteTexel)
        if r.width > 2 * rr {
            addQuad(Rect(x: r.minX + rr, y: r.minY, width: r.width - 2 * rr, height: rr), color, uvMin: whiteTexel, uvMax: whiteTexel)
            addQuad(Rect(x: r.minX + rr, y: r.maxY - rr, width: r.width - 2 * rr, height: rr), color, uvMin: whiteTexel, uvMax: whiteTexel)
        }
        let segments = max(2, min(10, Int(rr * 0.75) + 1))
        let centres = [Vec2(r.minX + rr, r.minY + rr), Vec2(r.maxX - rr, r.minY + rr),
                       Vec2(r.maxX - rr, r.maxY - rr), Vec2(r.minX + rr, r.maxY - rr)]
        for corner in 0..<4 {
            let c = centres[corner]
            let base = nextIndex
            addVertex(c.x, c.y, color, whiteTexel)
            let start = Float.pi * (1 + Float(corner) * 0.5)
            for step in 0...segments {
                let angle = start + Float.pi * 0.5 * Float(step) / Float(segments)
                addVertex(c.x + rr * cosf(angle), c.y + rr * sinf(angle), color, whiteTexel)
            }
            for step in 0..<Int32(segments) { addIndices(base, base + 1 + step, base + 2 + step) }
        }
    }

    /// A rectangle filled with a two-colour gradient along `axis` (legends, progress).
    public mutating func fillGradient(_ rect: Rect, from start: Color, to end: Color, axis: Axis = .horizontal) {
        let r = rect.pixelAligned
        guard !r.isEmpty, begin(solidTexture, covering: r) else { return }
        let base = nextIndex
        let (c1, c2, c3) = axis == .horizontal ? (end, end, start) : (start, end, end)
        addVertex(r.minX, r.minY, start, whiteTexel)
        addVertex(r.maxX, r.minY, c1, whiteTexel)
        addVertex(r.maxX, r.maxY, c2, whiteTexel)
        addVertex(r.minX, r.maxY, c3, whiteTexel)
        addIndices(base, base + 1, base + 2)
        addIndices(base, base + 2, base + 3)
    }

    /// A rectangle outline drawn inside `rect`, so a bordered widget keeps its size.
    public mutating func strokeRect(_ rect: Rect, color: Color, thickness: Float = 1, cornerRadius: Float = 0) {
        let r = rect.pixelAligned
        let t = max(1, thickness.rounded())
        guard color.a > 0, !r.isEmpty else { return }
        let radius = min(cornerRadius, r.width * 0.5, r.height * 0.5)
        if radius < 1 {
            // Four bars: each is a recognised rectangle, and corners never overlap (no double
            // blending of translucent borders).
            let bars = [Rect(x: r.minX, y: r.minY, width: r.width, height: t),
                        Rect(x: r.minX, y: r.maxY - t, width: r.width, height: t),
                        Rect(x: r.minX, y: r.minY + t, width: t, height: max(0, r.height - 2 * t)),
                        Rect(x: r.maxX - t, y: r.minY + t, width: t, height: max(0, r.height - 2 * t))]
            for bar in bars where !bar.isEmpty { fillRect(bar, color: color) }
            return
        }
        guard begin(solidTexture, covering: r) else { return }
        roundedOutline(r.insetBy(t * 0.5), radius: max(0, radius - t * 0.5))
        let outline = scratch
        appendPolyline(outline, color: color, thickness: t, closed: true)
    }

    // MARK: Lines and polygons

    /// A straight line. Horizontal and vertical lines become pixel-aligned rectangles,
    /// which keeps grid lines and ticks sharp.
    public mutating func line(from a: Vec2, to b: Vec2, color: Color, thickness: Float = 1) {
        guard color.a > 0 else { return }
        if a.x == b.x || a.y == b.y {
            let h = thickness * 0.5
            let r = a.y == b.y
                ? Rect(x: min(a.x, b.x), y: a.y - h, width: abs(b.x - a.x), height: thickness)
                : Rect(x: a.x - h, y: min(a.y, b.y), width: thickness, height: abs(b.y - a.y))
            fillRect(r, color: color)
            return
        }
        let box = Rect(corner: a, corner: b).insetBy(-thickness)
        guard begin(solidTexture, covering: box) else { return }
        appendPolyline([a, b], color: color, thickness: thickness, closed: false)
    }

    /// Connected line segments with mitred joins (miters are limited, so sharp turns
    /// cannot produce long spikes).
    public mutating func polyline(_ points: [Vec2], color: Color, thickness: Float = 1, closed: Bool = false) {
        guard points.count >= 2, color.a > 0 else { return }
        var box = Rect(origin: points[0], size: .zero)
        var minX = points[0].x, minY = points[0].y, maxX = minX, maxY = minY
        for p in points {
            minX = min(minX, p.x); maxX = max(maxX, p.x)
            minY = min(minY, p.y); maxY = max(maxY, p.y)
        }
        box = Rect(x: minX, y: minY, width: maxX - minX, height: maxY - minY).insetBy(-thickness)
        guard begin(solidTexture, covering: box) else { return }
        appendPolyline(points, color: color, thickness: thickness, closed: closed)
    }

    public mutating func fillTriangle(_ a: Vec2, _ b: Vec2, _ c: Vec2, color: Color) {
        let box = Rect(corner: Vec2(min(a.x, b.x, c.x), min(a.y, b.y, c.y)),
                       corner: Vec2(max(a.x, b.x, c.x), max(a.y, b.y, c.y)))
        guard color.a > 0, begin(solidTexture, covering: box) else { return }
        let base = nextIndex
        addVertex(a.x, a.y, color, whiteTexel)
        addVertex(b.x, b.y, color, whiteTexel)
        addVertex(c.x, c.y, color, whiteTexel)
        addIndices(base, base + 1, base + 2)
    }

    /// A filled convex polygon (triangulated as a fan from its first point).
    public mutating func fillConvexPolygon(_ points: [Vec2], color: Color) {
        guard points.count >= 3, color.a > 0 else { return }
        var box = Rect(origin: points[0], size: .zero)
        for p in points { box = box.union(Rect(origin: p, size: .zero)) }
        guard begin(solidTexture, covering: box) else { return }
        let base = nextIndex
        for p in points { addVertex(p.x, p.y, color, whiteTexel) }
        for i in 1..<(points.count - 1) { addIndices(base, base + Int32(i), base + Int32(i + 1)) }
    }

    public mutating func fillCircle(center: Vec2, radius: Float, color: Color) {
        let box = Rect(x: center.x - radius, y: center.y - radius, width: 2 * radius, height: 2 * radius)
        guard color.a > 0, radius > 0, begin(solidTexture, covering: box) else { return }
        circleOutline(center: center, radius: radius)
        fillScratchAsFan(center: center, color: color)
    }

    public mutating func strokeCircle(center: Vec2, radius: Float, color: Color, thickness: Float = 1) {
        let box = Rect(x: center.x - radius, y: center.y - radius, width: 2 * radius, height: 2 * radius)
        guard color.a > 0, radius > 0, begin(solidTexture, covering: box.insetBy(-thickness)) else { return }
        circleOutline(center: center, radius: radius)
        let outline = scratch
        appendPolyline(outline, color: color, thickness: thickness, closed: true)
    }

    // MARK: Images and text

    /// A textured quad: an image or heat map uploaded through the backend.
    public mutating func image(_ texture: TextureID, in rect: Rect, uvMin: Vec2 = .zero, uvMax: Vec2 = Vec2(1, 1),
                               tint: Color = .white) {
        let r = rect.pixelAligned
        guard tint.a > 0, !r.isEmpty, begin(texture, covering: r) else { return }
        addQuad(r, tint, uvMin: uvMin, uvMax: uvMax)
    }

    /// One line of text with its line box's top-left at `origin`. Glyphs outside the clip
    /// rectangle are skipped; partly visible ones are clipped by the backend.
    @MainActor
    public mutating func text(_ text: Substring, at origin: Vec2, font: Font, color: Color,
                              measurer: any TextMeasurer) {
        let lineHeight = measurer.metrics(of: font).lineHeight
        let ox = origin.x.rounded(), oy = origin.y.rounded()
        // Only the vertical extent is known without measuring; the horizontal test is per glyph.
        let row = Rect(x: clipRect.minX, y: oy, width: clipRect.width, height: lineHeight)
        glyphQuads(text, font: font, color: color, measurer: measurer, covering: row) { $0.offsetBy(Vec2(ox, oy)) }
    }

    @MainActor
    public mutating func text(_ text: String, at origin: Vec2, font: Font, color: Color, measurer: any TextMeasurer) {
        self.text(text[...], at: origin, font: font, color: color, measurer: measurer)
    }

    /// One line of text turned 90° counter-clockwise, reading upwards (column
    /// headers of a matrix: long names in narrow columns). `origin` is the
    /// bottom-left corner of the turned line box, which is `lineHeight` wide and
    /// as tall as the text is long. The measurer gives the turned font's glyph
    /// images already turned, so each glyph is an upright copy of atlas pixels,
    /// as sharp as upright text on every renderer.
    @MainActor
    public mutating func verticalText(_ text: Substring, at origin: Vec2, font: Font, color: Color,
                                      measurer: any TextMeasurer) {
        let lineHeight = measurer.metrics(of: font).lineHeight
        let ox = origin.x.rounded(), oy = origin.y.rounded()
        let column = Rect(x: ox, y: clipRect.minY, width: lineHeight, height: clipRect.height)
        // Upright (x, y) from the line's top-left goes to (ox + y, oy − x).
        glyphQuads(text, font: font.turned, color: color, measurer: measurer, covering: column) { g in
            Rect(x: ox + g.minY, y: oy - g.maxX, width: g.height, height: g.width)
        }
    }

    /// A quad per glyph of `text` at the rectangle `place` gives its upright one, skipping
    /// glyphs wholly outside the clip; nothing when `area` (the line's extent) misses it.
    @MainActor
    private mutating func glyphQuads(_ text: Substring, font: Font, color: Color, measurer: any TextMeasurer,
                                     covering area: Rect, place: (Rect) -> Rect) {
        guard color.a > 0, !text.isEmpty, begin(measurer.atlasTexture, covering: area) else { return }
        let clip = clipRect
        measurer.forEachGlyph(in: text, font: font) { glyph in
            let r = place(glyph.rect)
            if r.maxX < clip.minX || r.minX > clip.maxX || r.maxY < clip.minY || r.minY > clip.maxY { return }
            addQuad(r, color, uvMin: glyph.uvMin, uvMax: glyph.uvMax)
        }
    }

    // MARK: Geometry helpers

    /// Fills `scratch` with the outline of a rounded rectangle, clockwise from the top-left arc.
    private mutating func roundedOutline(_ r: Rect, radius: Float) {
        scratch.removeAll(keepingCapacity: true)
        if radius < 0.5 {
            scratch.append(contentsOf: [Vec2(r.minX, r.minY), Vec2(r.maxX, r.minY), Vec2(r.maxX, r.maxY), Vec2(r.minX, r.maxY)])
            return
        }
        // Enough segments that the arc looks round at its size, few enough to stay cheap.
        let segments = max(2, min(10, Int(radius * 0.75) + 1))
        let centres = [Vec2(r.minX + radius, r.minY + radius), Vec2(r.maxX - radius, r.minY + radius),
                       Vec2(r.maxX - radius, r.maxY - radius), Vec2(r.minX + radius, r.maxY - radius)]
        for corner in 0..<4 {
            let start = Float.pi * (1 + Float(corner) * 0.5)
            for step in 0...segments {
                let angle = start + Float.pi * 0.5 * Float(step) / Float(segments)
                scratch.append(Vec2(centres[corner].x + radius * cosf(angle), centres[corner].y + radius * sinf(angle)))
            }
        }
    }

    private mutating func circleOutline(center: Vec2, radius: Float) {
        scratch.removeAll(keepingCapacity: true)
        let segments = max(8, min(64, Int(radius * 1.5)))
        for step in 0..<segments {
            let angle = 2 * Float.pi * Float(step) / Float(segments)
            scratch.append(Vec2(center.x + radius * cosf(angle), center.y + radius * sinf(angle)))
        }
    }

    /// Triangulates the convex outline in `scratch` as a fan around `center`.
    private mutating func fillScratchAsFan(center: Vec2, color: Color) {
        let base = nextIndex
        addVertex(center.x, center.y, color, whiteTexel)
        for p in scratch { addVertex(p.x, p.y, color, whiteTexel) }
        let n = Int32(scratch.count)
        for i in 0..<n { addIndices(base, base + 1 + i, base + 1 + (i + 1) % n) }
    }

    /// Emits a thick polyline as a strip: two vertices per point, offset along the mitre.
    /// The caller has already opened the batch.
    private mutating func appendPolyline(_ input: [Vec2], color: Color, thickness: Float, closed: Bool) {
        // Drop repeated points; they have no direction and would produce NaN normals.
        var points = [Vec2]()
        points.reserveCapacity(input.count)
        for p in input where points.last.map({ ($0 - p).length > 1e-4 }) ?? true { points.append(p) }
        if closed, points.count > 2, let first = points.first, let last = points.last, (first - last).length <= 1e-4 {
            points.removeLast()
        }
        let n = points.count
        guard n >= 2 else { return }
        let half = max(0.5, thickness * 0.5)
        let base = nextIndex
        for i in 0..<n {
            let hasPrev = closed || i > 0
            let hasNext = closed || i < n - 1
            let prev = points[(i + n - 1) % n], here = points[i], next = points[(i + 1) % n]
            let dirIn = hasPrev ? (here - prev).normalized : (next - here).normalized
            let dirOut = hasNext ? (next - here).normalized : dirIn
            let nIn = dirIn.perpendicular, nOut = dirOut.perpendicular
            var miter = (nIn + nOut).normalized
            if miter == .zero { miter = nOut }   // a full turn-back: fall back to a square end
            // Offset so both segments keep their full width; capped at 2× to avoid spikes.
            let cosine = max(0.5, miter.dot(nOut))
            let offset = miter * (half / cosine)
            addVertex(here.x + offset.x, here.y + offset.y, color, whiteTexel)
            addVertex(here.x - offset.x, here.y - offset.y, color, whiteTexel)
        }
        let segments = closed ? n : n - 1
        for s in 0..<segments {
            let a = base + Int32(2 * s), b = base + Int32(2 * ((s + 1) % n))
            addIndices(a, a + 1, b + 1)
            addIndices(a, b + 1, b)
        }
    }
}

/// Stacking order of a frame's draw lists: later layers are drawn over earlier ones,
/// whatever order widgets were submitted in.
public enum DrawLayer: Int, CaseIterable, Sendable {
    case base = 0
    /// Drop-down lists and other popups.
    case popup
    case tooltip
    /// Modal messages, above everything.
    case modal
}

/// A frame's output: one draw list per layer, rendered in order.
public struct DrawData: Sendable {
    public var lists: [DrawList]
    /// Background colour to clear to.
    public var clearColor: Color

    public init(lists: [DrawList], clearColor: Color) {
        self.lists = lists; self.clearColor = clearColor
    }

    public var batchCount: Int { lists.reduce(0) { $0 + $1.batches.count(where: { $0.indexCount > 0 }) } }
    public var vertexCount: Int { lists.reduce(0) { $0 + $1.vertices.count } }
    public var triangleCount: Int { lists.reduce(0) { $0 + $1.triangleCount } }
    public var submittedCount: Int { lists.reduce(0) { $0 + $1.submittedCount } }
    public var culledCount: Int { lists.reduce(0) { $0 + $1.culledCount } }
}
