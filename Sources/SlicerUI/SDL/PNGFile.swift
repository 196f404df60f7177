// PNG reading and writing through SDL_image. Writes go to a temporary file in the same
// directory and are renamed into place, so a reader never sees a half-written image.

import CSDL2
#if canImport(Glibc)
import Glibc
#endif

@MainActor
public enum PNGFile {
    public static func write(_ image: RGBAImage, to path: String) throws {
        try SDLRuntime.startLibraries()
        var pixels = image.pixels
        let temporary = path + ".tmp-\(getpid())"
        try pixels.withUnsafeMutableBytes { bytes in
            guard let surface = SDL_CreateRGBSurfaceWithFormatFrom(bytes.baseAddress, Int32(image.width), Int32(image.height), 32,
                                                                   Int32(image.width * 4), SDL_PIXELFORMAT_RGBA32.rawValue) else {
                throw SDLError("SDL_CreateRGBSurfaceWithFormatFrom")
            }
            defer { SDL_FreeSurface(surface) }
            if IMG_SavePNG(surface, temporary) != 0 {
                let error = SDLError("IMG_SavePNG(\(path))")
                unlink(temporary)
                throw error
            }
        }
        if rename(temporary, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw SDLError("rename(\(temporary) → \(path))", message: reason)
        }
    }

    public static func read(_ path: String) throws -> RGBAImage {
        try SDLRuntime.startLibraries()
        guard let loaded = IMG_Load(path) else { throw SDLError("IMG_Load(\(path))") }
        defer { SDL_FreeSurface(loaded) }
        guard let converted = SDL_ConvertSurfaceFormat(loaded, SDL_PIXELFORMAT_RGBA32.rawValue, 0) else {
            throw SDLError("SDL_ConvertSurfaceFormat(\(path))")
        }
        defer { SDL_FreeSurface(converted) }
        let surface = converted.pointee
        let width = Int(surface.w), height = Int(surface.h), pitch = Int(surface.pitch)
        guard let source = surface.pixels?.assumingMemoryBound(to: UInt8.self) else { throw SDLError("IMG_Load(\(path))", message: "no pixels") }
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        pixels.withUnsafeMutableBufferPointer { target in
            for y in 0..<height {
                for x in 0..<(width * 4) { target[y * width * 4 + x] = source[y * pitch + x] }
            }
        }
        return RGBAImage(width: width, height: height, pixels: pixels)
    }
}
