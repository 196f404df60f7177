// PNG reading and writing through SDL_image. Writes go to a temporary file in the same
// directory and are renamed into place, so a reader never sees a half-written image.

import CSDL2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@MainActor
public enum PNGFile {
    /// Why a PNG could not be made or written, in the user's terms: the file and
    /// the system's reason, not SDL's function names or a temporary file's name.
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): cannot write: \(reason)" }
    }

    /// The image as PNG bytes, encoded in memory (so that the caller decides how
    /// the file is written: the command line and the app write atomically,
    /// through SlicerData's `AtomicFile`, which also refuses device nodes).
    public static func encode(_ image: RGBAImage) throws -> [UInt8] {
        try SDLRuntime.startLibraries()
        var pixels = image.pixels
        var buffer: UnsafeMutablePointer<CChar>?
        var size = 0
        guard let stream = open_memstream(&buffer, &size) else {
            throw WriteError(path: "PNG", reason: String(cString: strerror(errno)))
        }
        let saved = pixels.withUnsafeMutableBytes { bytes -> Bool in
            guard let surface = SDL_CreateRGBSurfaceWithFormatFrom(bytes.baseAddress, Int32(image.width), Int32(image.height), 32,
                                                                   Int32(image.width * 4), SDL_PIXELFORMAT_RGBA32.rawValue),
                  let rw = SDL_RWFromFP(stream, SDL_FALSE) else { return false }
            defer { SDL_FreeSurface(surface) }
            return IMG_SavePNG_RW(surface, rw, 1) == 0
        }
        fclose(stream)   // publishes buffer and size
        defer { free(buffer) }
        guard saved, let buffer else {
            throw WriteError(path: "PNG", reason: "cannot encode a \(image.width)×\(image.height) image")
        }
        return buffer.withMemoryRebound(to: UInt8.self, capacity: size) { Array(UnsafeBufferPointer(start: $0, count: size)) }
    }

    /// Writes `image` as a PNG file, atomically (temporary file, then rename).
    public static func write(_ image: RGBAImage, to path: String) throws {
        let bytes = try encode(image)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
            throw WriteError(path: path, reason: reason)
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
