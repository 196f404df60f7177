import Foundation
import SlicerUI

/// Where views get textures for images and heat maps. The SDL backend
/// provides one; a texture is uploaded again only when its `version` changes.
@MainActor
public protocol TextureProvider: AnyObject {
    func textureID(key: String, version: Int, width: Int, height: Int, pixels: () -> [UInt8]) -> TextureID?
    /// Frees a texture no longer shown (e.g. thumbnails scrolled far away).
    func releaseTexture(_ id: TextureID)
}

extension SDLRenderBackend: TextureProvider {
    public func textureID(key: String, version: Int, width: Int, height: Int, pixels: () -> [UInt8]) -> TextureID? {
        do {
            return try texture(for: key, version: version, width: width, height: height, pixels: pixels)
        } catch {
            return nil
        }
    }

    public func releaseTexture(_ id: TextureID) { destroyTexture(id) }
}

/// The views' texture provider: textures released are freed a few per frame instead of all
/// at once. The views let go of textures in bulk (a tap change past the map budget drops a
/// thousand maps, a new workspace every thumbnail). Freeing one costs little once SDL's
/// queued drawing is flushed every frame (a frame freeing 1,024 stayed under 30 ms,
/// BENCHMARKS.md), but a frame's cost should not depend on how much an earlier one left
/// behind: `freesPerFrame` at the end of each frame bounds it.
@MainActor
final class PacedTextures: TextureProvider {
    /// Textures freed at most at the end of a frame.
    static let freesPerFrame = 64

    /// The renderer's textures (owned by the host, as before: not kept alive here).
    weak var base: TextureProvider?
    /// Released and not yet freed, oldest first; an id in `queue` but not in `waiting` was
    /// asked for again before its turn and is skipped.
    private var queue: [TextureID] = []
    private var head = 0
    private var waiting: Set<TextureID> = []
    /// What the last `endFrame` freed, and the most any frame freed (tests, frame statistics).
    private(set) var freedLastFrame = 0
    private(set) var mostFreedInAFrame = 0
    /// The longest a frame spent freeing, in milliseconds (frame statistics).
    private(set) var longestFreeing = 0.0

    init(base: TextureProvider) { self.base = base }

    /// Released textures not yet freed.
    var pendingCount: Int { waiting.count }

    func textureID(key: String, version: Int, width: Int, height: Int, pixels: () -> [UInt8]) -> TextureID? {
        let id = base?.textureID(key: key, version: version, width: width, height: height, pixels: pixels)
        // A texture released but shown again (a tap visited again before its maps were freed)
        // is the renderer's same texture: it stays.
        if let id { waiting.remove(id) }
        return id
    }

    func releaseTexture(_ id: TextureID) {
        if waiting.insert(id).inserted { queue.append(id) }
    }

    /// Frees up to `budget` released textures (at the end of a frame, after it was drawn).
    func endFrame(budget: Int = PacedTextures.freesPerFrame) {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { longestFreeing = max(longestFreeing, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) }
        var freed = 0
        while freed < budget, head < queue.count {
            let id = queue[head]
            head += 1
            guard waiting.remove(id) != nil else { continue }
            base?.releaseTexture(id)
            freed += 1
        }
        if head == queue.count || head > 4096 {
            queue.removeFirst(head)
            head = 0
        }
        freedLastFrame = freed
        mostFreedInAFrame = max(mostFreedInAFrame, freed)
    }

    /// Frees everything released now (the view goes away).
    func flush() { endFrame(budget: .max) }
}

extension AppView {
    /// The most textures freed at the end of one frame so far (frame statistics).
    public var mostTexturesFreedInAFrame: Int { pacedTextures?.mostFreedInAFrame ?? 0 }
    /// The longest one frame spent freeing textures, in milliseconds.
    public var longestTextureFreeing: Double { pacedTextures?.longestFreeing ?? 0 }
}
