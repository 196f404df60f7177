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
