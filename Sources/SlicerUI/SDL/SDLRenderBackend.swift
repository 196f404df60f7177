// Renders DrawData through SDL_Renderer with SDL_RenderGeometry (one call per batch) and
// owns the textures draw lists refer to: the glyph atlas, images and heat maps.

import CSDL2

@MainActor
public final class SDLRenderBackend {
    let renderer: OpaquePointer
    public let fontAtlas: SDLFontAtlas
    /// Name of SDL's render driver ("software", "opengl", …).
    public let driverName: String
    /// SDL's software renderer gets the run-splitting fast path in `render(_:)`.
    public let isSoftware: Bool
    /// SDL_RenderGeometry calls issued by the last `render(_:)` (more than the draw list's
    /// batches on the software renderer, which splits batches into runs).
    public private(set) var drawCallCount = 0

    private var textures: [UInt32: (texture: OpaquePointer, width: Int, height: Int)] = [:]
    private var nextTextureID: UInt32 = 1
    private var keyedTextures: [String: (id: TextureID, version: Int)] = [:]
    /// The key of each keyed texture, so that freeing one does not search them all (a
    /// page of 444 feature maps freed one by one cost 0.65 s with a search each).
    private var textureKeys: [TextureID: String] = [:]
    /// True when DrawVertex is bit-compatible with SDL_Vertex, so buffers go to SDL as they are.
    private let verticesMatchSDL: Bool
    private var convertedVertices: [SDL_Vertex] = []
    private var runIndices: [Int32] = []

    init(renderer: OpaquePointer, fontDirectory: String) throws {
        self.renderer = renderer
        var info = SDL_RendererInfo()
        SDL_GetRendererInfo(renderer, &info)
        driverName = info.name.map { String(cString: $0) } ?? "unknown"
        isSoftware = info.flags & SDL_RENDERER_SOFTWARE.rawValue != 0
        verticesMatchSDL = MemoryLayout<DrawVertex>.stride == MemoryLayout<SDL_Vertex>.stride
            && MemoryLayout<DrawVertex>.offset(of: \DrawVertex.position) == MemoryLayout<SDL_Vertex>.offset(of: \SDL_Vertex.position)
            && MemoryLayout<DrawVertex>.offset(of: \DrawVertex.color) == MemoryLayout<SDL_Vertex>.offset(of: \SDL_Vertex.color)
            && MemoryLayout<DrawVertex>.offset(of: \DrawVertex.uv) == MemoryLayout<SDL_Vertex>.offset(of: \SDL_Vertex.tex_coord)
        let atlasID = TextureID(rawValue: nextTextureID)
        nextTextureID += 1
        fontAtlas = try SDLFontAtlas(renderer: renderer, textureID: atlasID, fontDirectory: fontDirectory)
        textures[atlasID.rawValue] = (fontAtlas.sdlTexture, fontAtlas.size, fontAtlas.size)
        SDL_SetRenderDrawBlendMode(renderer, SDL_BLENDMODE_BLEND)
    }

    /// Size of the output in pixels.
    public var outputSize: (width: Int, height: Int) {
        var w: Int32 = 0, h: Int32 = 0
        SDL_GetRendererOutputSize(renderer, &w, &h)
        return (Int(w), Int(h))
    }

    // MARK: Textures

    /// Creates a texture from RGBA bytes (4 per pixel, rows top to bottom). `smooth` selects
    /// linear filtering; the default keeps heat-map cells sharp when magnified.
    public func createTexture(width: Int, height: Int, pixels: [UInt8], smooth: Bool = false) throws -> TextureID {
        guard width > 0, height > 0, pixels.count == width * height * 4 else {
            throw SDLError("createTexture", message: "need \(width)×\(height)×4 bytes, got \(pixels.count)")
        }
        guard let texture = SDL_CreateTexture(renderer, SDL_PIXELFORMAT_RGBA32.rawValue, Int32(SDL_TEXTUREACCESS_STATIC.rawValue),
                                              Int32(width), Int32(height)) else {
            throw SDLError("SDL_CreateTexture(\(width)×\(height))")
        }
        SDL_SetTextureBlendMode(texture, SDL_BLENDMODE_BLEND)
        SDL_SetTextureScaleMode(texture, smooth ? SDL_ScaleModeLinear : SDL_ScaleModeNearest)
        pixels.withUnsafeBytes { _ = SDL_UpdateTexture(texture, nil, $0.baseAddress, Int32(width * 4)) }
        let id = TextureID(rawValue: nextTextureID)
        nextTextureID += 1
        textures[id.rawValue] = (texture, width, height)
        return id
    }

    /// Replaces a texture's pixels; a different size recreates it under the same ID.
    public func updateTexture(_ id: TextureID, width: Int, height: Int, pixels: [UInt8]) throws {
        guard let existing = textures[id.rawValue], id != fontAtlas.atlasTexture else {
            throw SDLError("updateTexture", message: "unknown texture \(id.rawValue)")
        }
        guard pixels.count == width * height * 4 else {
            throw SDLError("updateTexture", message: "need \(width)×\(height)×4 bytes, got \(pixels.count)")
        }
        if existing.width == width, existing.height == height {
            pixels.withUnsafeBytes { _ = SDL_UpdateTexture(existing.texture, nil, $0.baseAddress, Int32(width * 4)) }
            return
        }
        var mode = SDL_ScaleModeNearest
        SDL_GetTextureScaleMode(existing.texture, &mode)
        let replacement = try createTexture(width: width, height: height, pixels: pixels, smooth: mode == SDL_ScaleModeLinear)
        textures[id.rawValue] = textures.removeValue(forKey: replacement.rawValue)
        nextTextureID -= 1
        SDL_DestroyTexture(existing.texture)
    }

    public func destroyTexture(_ id: TextureID) {
        guard id != fontAtlas.atlasTexture, let entry = textures.removeValue(forKey: id.rawValue) else { return }
        SDL_DestroyTexture(entry.texture)
        if let key = textureKeys.removeValue(forKey: id) { keyedTextures[key] = nil }
    }

    /// A texture identified by `key` that is uploaded only when `version` changes — the
    /// immediate-mode way to show a heat map: call every frame, pay only when data changes.
    public func texture(for key: String, version: Int, width: Int, height: Int,
                        pixels: () -> [UInt8]) throws -> TextureID {
        if let cached = keyedTextures[key] {
            if cached.version == version { return cached.id }
            try updateTexture(cached.id, width: width, height: height, pixels: pixels())
            keyedTextures[key] = (cached.id, version)
            return cached.id
        }
        let id = try createTexture(width: width, height: height, pixels: pixels())
        keyedTextures[key] = (id, version)
        textureKeys[id] = key
        return id
    }

    public var textureCount: Int { textures.count }

    // MARK: Rendering

    /// Clears to the frame's background and draws every layer. Does not present.
    public func render(_ data: DrawData) {
        let clear = data.clearColor
        SDL_SetRenderDrawColor(renderer, clear.r, clear.g, clear.b, 255)
        SDL_RenderSetClipRect(renderer, nil)
        SDL_RenderClear(renderer)
        SDL_SetRenderDrawBlendMode(renderer, SDL_BLENDMODE_BLEND)
        let (w, h) = outputSize
        let full = Rect(x: 0, y: 0, width: Float(w), height: Float(h))
        var currentClip: Rect? = nil
        var calls = 0
        for list in data.lists where !list.isEmpty {
            list.indices.withUnsafeBufferPointer { indices in
                withSDLVertices(list.vertices) { vertices, count in
                    for batch in list.batches where batch.indexCount > 0 {
                        let clip = batch.clipRect.intersection(full)
                        // SDL treats an empty clip rectangle as "no clipping", so skip instead.
                        guard !clip.isEmpty else { continue }
                        if clip != currentClip {
                            if clip == full {
                                SDL_RenderSetClipRect(renderer, nil)
                            } else {
                                var r = SDL_Rect(x: Int32(clip.x), y: Int32(clip.y), w: Int32(clip.width), h: Int32(clip.height))
                                SDL_RenderSetClipRect(renderer, &r)
                            }
                            currentClip = clip
                        }
                        var texture: OpaquePointer? = nil
                        if batch.texture != .none {
                            guard let entry = textures[batch.texture.rawValue] else { continue }
                            texture = entry.texture
                        }
                        guard let vertexBase = vertices, let indexBase = indices.baseAddress,
                              batch.vertexOffset + batch.vertexCount <= Int(count) else { continue }
                        if isSoftware {
                            calls += renderSoftwareRuns(batch, texture: texture, vertices: vertexBase,
                                                        sourceVertices: list.vertices, indices: indexBase,
                                                        whiteTexel: list.whiteTexel, solidTexture: list.solidTexture)
                        } else {
                            SDL_RenderGeometry(renderer, texture, vertexBase + batch.vertexOffset, Int32(batch.vertexCount),
                                               indexBase + batch.indexOffset, Int32(batch.indexCount))
                            calls += 1
                        }
                    }
                }
            }
        }
        SDL_RenderSetClipRect(renderer, nil)
        drawCallCount = calls
    }

    private enum RunKind { case opaqueRectangles, solid, textured }

    /// The software renderer's fast path. SDL's software renderer turns an exact
    /// axis-aligned one-colour quad into a rectangle fill or blit, but fills with blending
    /// even when the colour is opaque (measured 8× slower than a plain fill), and rasterises
    /// textured triangles five times slower than untextured ones. So a batch is split into
    /// runs: opaque solid rectangles (SDL_RenderFillRect with blending off), other solid
    /// triangles (untextured instead of sampling the white texel) and textured quads
    /// (glyphs, images). The pixels are the same; only the cost changes. Returns the calls.
    private func renderSoftwareRuns(_ batch: DrawBatch, texture: OpaquePointer?, vertices: UnsafePointer<SDL_Vertex>,
                                    sourceVertices: [DrawVertex], indices: UnsafePointer<Int32>,
                                    whiteTexel: Vec2, solidTexture: TextureID) -> Int {
        let renderer = self.renderer
        var scratch = runIndices
        defer { runIndices = scratch }
        return sourceVertices.withUnsafeBufferPointer { all in
            let v = UnsafeBufferPointer(rebasing: all[batch.vertexOffset..<(batch.vertexOffset + batch.vertexCount)])
            let batchVertices = vertices + batch.vertexOffset
            let solidBatch = batch.texture == .none || batch.texture == solidTexture
            @inline(__always) func isSolid(_ k: Int32) -> Bool {
                batch.texture == .none || (solidBatch && v[Int(k)].uv == whiteTexel)
            }
            var calls = 0
            // SDL checks every vertex it is given on each call, so each run passes only the
            // vertices it uses, with its indices rebased onto them.
            func flush(_ kind: RunKind?, _ start: Int, _ end: Int) {
                guard let kind, end > start else { return }
                var low = Int32.max, high = Int32.min
                for k in start..<end { low = min(low, indices[k]); high = max(high, indices[k]) }
                scratch.removeAll(keepingCapacity: true)
                for k in start..<end { scratch.append(indices[k] - low) }
                let runVertices = batchVertices + Int(low)
                let runCount = high - low + 1
                switch kind {
                case .opaqueRectangles:
                    // SDL's geometry path fills rectangles with blending even when opaque;
                    // SDL_RenderFillRect with blending off is the fast memset-like fill.
                    SDL_SetRenderDrawBlendMode(renderer, SDL_BLENDMODE_NONE)
                    var current: Color? = nil
                    for k in stride(from: start, to: end, by: 6) {
                        let p0 = v[Int(indices[k])], p2 = v[Int(indices[k + 2])]
                        if p0.color != current {
                            SDL_SetRenderDrawColor(renderer, p0.color.r, p0.color.g, p0.color.b, 255)
                            current = p0.color
                        }
                        var rect = SDL_FRect(x: p0.position.x, y: p0.position.y,
                                             w: p2.position.x - p0.position.x, h: p2.position.y - p0.position.y)
                        SDL_RenderFillRectF(renderer, &rect)
                    }
                    SDL_SetRenderDrawBlendMode(renderer, SDL_BLENDMODE_BLEND)
                case .solid:
                    SDL_RenderGeometry(renderer, nil, runVertices, runCount, scratch, Int32(scratch.count))
                case .textured:
                    SDL_RenderGeometry(renderer, texture, runVertices, runCount, scratch, Int32(scratch.count))
                }
                calls += 1
            }
            var i = batch.indexOffset
            let end = batch.indexOffset + batch.indexCount
            var runStart = i
            var runKind: RunKind?
            while i + 3 <= end {
                let kind: RunKind
                var length = 3
                let a = indices[i]
                if i + 6 <= end, indices[i + 1] == a + 1, indices[i + 2] == a + 2, indices[i + 3] == a,
                   indices[i + 4] == a + 2, indices[i + 5] == a + 3, isSolid(a) {
                    let p0 = v[Int(a)], p1 = v[Int(a) + 1], p2 = v[Int(a) + 2], p3 = v[Int(a) + 3]
                    let oneOpaqueColour = p0.color.a == 255 && p0.color == p1.color && p0.color == p2.color && p0.color == p3.color
                    let axisAligned = p0.position.y == p1.position.y && p1.position.x == p2.position.x
                        && p2.position.y == p3.position.y && p3.position.x == p0.position.x
                        && p2.position.x > p0.position.x && p2.position.y > p0.position.y
                    kind = oneOpaqueColour && axisAligned && isSolid(a + 3) ? .opaqueRectangles : .solid
                    length = 6
                } else {
                    kind = isSolid(indices[i]) && isSolid(indices[i + 1]) && isSolid(indices[i + 2]) ? .solid : .textured
                }
                if kind != runKind {
                    flush(runKind, runStart, i)
                    runStart = i
                    runKind = kind
                }
                i += length
            }
            flush(runKind, runStart, end)
            return calls
        }
    }

    /// Executes queued drawing now (SDL batches commands until present or read-back);
    /// used to time rendering separately from presenting.
    public func flush() { SDL_RenderFlush(renderer) }

    private func withSDLVertices(_ vertices: [DrawVertex], _ body: (UnsafePointer<SDL_Vertex>?, Int32) -> Void) {
        if verticesMatchSDL {
            vertices.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return body(nil, 0) }
                base.withMemoryRebound(to: SDL_Vertex.self, capacity: buffer.count) { body($0, Int32(buffer.count)) }
            }
        } else {
            convertedVertices.removeAll(keepingCapacity: true)
            for v in vertices {
                convertedVertices.append(SDL_Vertex(position: SDL_FPoint(x: v.position.x, y: v.position.y),
                                                    color: SDL_Color(r: v.color.r, g: v.color.g, b: v.color.b, a: v.color.a),
                                                    tex_coord: SDL_FPoint(x: v.uv.x, y: v.uv.y)))
            }
            convertedVertices.withUnsafeBufferPointer { body($0.baseAddress, Int32($0.count)) }
        }
    }

    // MARK: Read-back

    /// The rendered pixels (call after `render(_:)`, before presenting).
    public func readPixels() throws -> RGBAImage {
        let (w, h) = outputSize
        var pixels = [UInt8](repeating: 0, count: w * h * 4)
        let status = pixels.withUnsafeMutableBytes {
            SDL_RenderReadPixels(renderer, nil, SDL_PIXELFORMAT_RGBA32.rawValue, $0.baseAddress, Int32(w * 4))
        }
        if status != 0 { throw SDLError("SDL_RenderReadPixels") }
        // The back buffer has no meaningful alpha; screenshots are opaque.
        for i in stride(from: 3, to: pixels.count, by: 4) { pixels[i] = 255 }
        return RGBAImage(width: w, height: h, pixels: pixels)
    }

    /// Reads back the frame and writes it as PNG, atomically.
    public func saveScreenshot(to path: String) throws {
        try PNGFile.write(try readPixels(), to: path)
    }
}
