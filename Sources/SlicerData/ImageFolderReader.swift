import CSDL2
import Dispatch
import Foundation

/// Target size for images read from files.
public struct ImageSize: Sendable, Equatable, CustomStringConvertible {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    public var description: String { "\(width)×\(height)" }
}

/// Reads PNG/JPEG images with SDL2_image: a folder with one subfolder per
/// class (the torchvision ImageFolder layout), or a single unlabelled image.
public enum ImageFolderReader {
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    static func isImageFileName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Class subfolders (sorted by name) and their image files (sorted by name).
    static func classFolders(in directory: String) throws -> [(name: String, files: [String])] {
        try FileIO.listDirectory(directory).compactMap { name in
            let folder = FileIO.join(directory, name)
            guard FileIO.isDirectory(folder) else { return nil }
            let files = try FileIO.listDirectory(folder).filter(isImageFileName).map { FileIO.join(folder, $0) }
            return (name, files)
        }
    }

    static func looksLikeImageFolder(_ directory: String) -> Bool {
        guard let folders = try? classFolders(in: directory) else { return false }
        return folders.contains { !$0.files.isEmpty }
    }

    /// Loads a class-per-subfolder image folder. Class indices follow the
    /// sorted subfolder names (torchvision's ImageFolder), and the set says its
    /// labels came from folder names (`labelsFromFolderNames`) so that a model's
    /// own class names can re-map them; images are taken in sorted file-name order.
    /// - Parameters:
    ///   - channels: 1 or 3; nil keeps 3 unless every image is 8-bit grayscale.
    ///     Colour is reduced to one channel with the luminance weights
    ///     0.299, 0.587, 0.114; gray is replicated to three.
    ///   - targetSize: bring every image to this size (see `geometry`).
    ///     Without it all images must have the size of the first one.
    ///   - resize: the interpolation when no `geometry` is given.
    ///   - geometry: shorter-side resize and centre crop before the target size.
    ///   - limit: stop after this many images.
    public static func load(directory: String, channels: Int? = nil, targetSize: ImageSize? = nil,
                            resize: ResizeMode = .bilinear, geometry: ImageGeometry? = nil, limit: Int? = nil) throws -> LabeledImages {
        try checkChannels(channels, source: directory)
        let folders = try classFolders(in: directory)
        guard !folders.isEmpty else {
            throw DataError.emptySet(path: directory, detail: "no class subfolders")
        }
        let geometry = geometry ?? ImageGeometry(interpolation: resize)
        var jobs: [(file: String, label: Int)] = []
        for (classIndex, folder) in folders.enumerated() {
            for file in folder.files { jobs.append((file, classIndex)) }
        }
        if let limit { jobs = Array(jobs.prefix(limit)) }
        var collected: [DecodedImage] = []
        var pixels: [UInt8] = []
        var labels: [Int] = []
        var reference: (size: ImageSize, file: String)?
        // Decoding and resizing dominate (about 6 ms for a 500×375 JPEG): a chunk of
        // files at a time on all cores, appended in order so the set does not depend on it.
        let chunk = 64
        for start in stride(from: 0, to: jobs.count, by: chunk) {
            let part = jobs[start..<min(start + chunk, jobs.count)]
            let results = ParallelSlots<Result<DecodedImage, Error>>(count: part.count)
            DispatchQueue.concurrentPerform(iterations: part.count) { k in
                let file = part[part.startIndex + k].file
                results.set(k, Result {
                    let image = try decode(path: file)
                    return targetSize.map { image.prepared(for: $0, geometry: geometry) } ?? image
                })
            }
            for (k, job) in part.enumerated() {
                guard let image = try results.get(k)?.get() else { continue }
                if targetSize == nil, let reference, reference.size != image.size {
                    throw DataError.shapeMismatch(
                        path: job.file,
                        detail: "image is \(image.size), but \(reference.file) is \(reference.size); give a target size to resize")
                }
                if reference == nil { reference = (image.size, job.file) }
                // With the channel count known, keep only the planes: a decoded
                // ImageNet set would otherwise be held twice.
                if let channels { image.appendPlanes(channels: channels, to: &pixels) } else { collected.append(image) }
                labels.append(job.label)
            }
        }
        guard let size = reference?.size else {
            throw DataError.emptySet(path: directory, detail: "no PNG or JPEG files in the class subfolders")
        }
        let outputChannels = channels ?? (collected.allSatisfy(\.isGray) ? 1 : 3)
        if channels == nil {
            pixels.reserveCapacity(collected.count * outputChannels * size.width * size.height)
            for image in collected { image.appendPlanes(channels: outputChannels, to: &pixels) }
        }
        return LabeledImages(validatedChannels: outputChannels, height: size.height, width: size.width, pixels: pixels,
                             labels: labels, classNames: folders.map(\.name), source: directory, labelsFromFolderNames: true)
    }

    /// Loads one image file as an unlabelled set of one image.
    public static func loadImage(path: String, channels: Int? = nil, targetSize: ImageSize? = nil,
                                 resize: ResizeMode = .bilinear, geometry: ImageGeometry? = nil) throws -> LabeledImages {
        try checkChannels(channels, source: path)
        var image = try decode(path: path)
        if let targetSize { image = image.prepared(for: targetSize, geometry: geometry ?? ImageGeometry(interpolation: resize)) }
        let outputChannels = channels ?? (image.isGray ? 1 : 3)
        var pixels: [UInt8] = []
        image.appendPlanes(channels: outputChannels, to: &pixels)
        return LabeledImages(validatedChannels: outputChannels, height: image.size.height, width: image.size.width,
                             pixels: pixels, labels: [-1], classNames: [], source: path)
    }

    static func checkChannels(_ channels: Int?, source: String) throws {
        if let channels, channels != 1 && channels != 3 {
            throw DataError.invalidArgument(source: source, detail: "channels must be 1 or 3, got \(channels)")
        }
    }

    /// An image as planar R, G, B bytes, plus whether the file was 8-bit gray.
    struct DecodedImage {
        var size: ImageSize
        var rgb: [UInt8]
        var isGray: Bool

        func resized(to target: ImageSize, mode: ResizeMode) -> DecodedImage {
            guard target != size else { return self }
            let scaled = Resampler.resizeBytes(rgb, channels: 3, height: size.height, width: size.width,
                                               toHeight: target.height, width: target.width, mode: mode)
            return DecodedImage(size: target, rgb: scaled, isGray: isGray)
        }

        /// Shorter-side resize, centre crop, then the target size (ImageGeometry).
        func prepared(for target: ImageSize, geometry: ImageGeometry) -> DecodedImage {
            var image = self
            if geometry.shorterSide != nil { image = image.resized(to: geometry.scaledSize(size), mode: geometry.interpolation) }
            if let crop = geometry.crop ?? (geometry.shorterSide != nil ? target : nil) { image = image.centerCropped(to: crop) }
            return image.resized(to: target, mode: geometry.interpolation)
        }

        /// The centre `crop` of the image, zeros where it reaches past the edges.
        func centerCropped(to crop: ImageSize) -> DecodedImage {
            guard crop != size else { return self }
            let top = ImageGeometry.cropOffset(length: size.height, crop: crop.height)
            let left = ImageGeometry.cropOffset(length: size.width, crop: crop.width)
            let plane = size.width * size.height, cropPlane = crop.width * crop.height
            var out = [UInt8](repeating: 0, count: 3 * cropPlane)
            for c in 0..<3 {
                for y in 0..<crop.height where top + y >= 0 && top + y < size.height {
                    for x in 0..<crop.width where left + x >= 0 && left + x < size.width {
                        out[c * cropPlane + y * crop.width + x] = rgb[c * plane + (top + y) * size.width + left + x]
                    }
                }
            }
            return DecodedImage(size: crop, rgb: out, isGray: isGray)
        }

        func appendPlanes(channels: Int, to pixels: inout [UInt8]) {
            let planeSize = size.width * size.height
            if channels == 3 {
                pixels.append(contentsOf: rgb)
            } else if isGray {
                pixels.append(contentsOf: rgb[0..<planeSize]) // R == G == B
            } else {
                for i in 0..<planeSize {
                    let luminance = 0.299 * Float(rgb[i]) + 0.587 * Float(rgb[planeSize + i]) + 0.114 * Float(rgb[2 * planeSize + i])
                    pixels.append(UInt8(max(0, min(255, luminance.rounded()))))
                }
            }
        }
    }

    /// Decodes a PNG/JPEG with SDL2_image and converts it to planar RGB.
    static func decode(path: String) throws -> DecodedImage {
        guard FileIO.isFile(path) else {
            throw DataError.missingFile(path: path, detail: "no such image file")
        }
        // PNGs go through libpng, which prints its own lines; see StandardErrorCapture.
        let isPNG = path.lowercased().hasSuffix(".png")
        let (loaded, libraryText) = isPNG ? StandardErrorCapture.capturing { IMG_Load(path) } : (IMG_Load(path), "")
        guard let surface = loaded else {
            var detail = "cannot decode image: \(String(cString: SDL_GetError()))"
            let notes = libraryText.split(separator: "\n").filter { $0.hasPrefix("libpng error: ") }.map { $0.dropFirst(14) }
            if !notes.isEmpty { detail += " (libpng: \(notes.joined(separator: "; ")))" }
            throw DataError.corrupt(path: path, detail: detail)
        }
        defer { SDL_FreeSurface(surface) }
        let isGray = isEightBitGray(surface)
        // Converting to RGB24 handles palettes, gray, 16-bit and RGBA alike
        // (alpha is dropped: CNN inputs have no alpha channel).
        guard let rgbSurface = SDL_ConvertSurfaceFormat(surface, UInt32(SDL_PIXELFORMAT_RGB24.rawValue), 0) else {
            throw DataError.corrupt(path: path, detail: "cannot convert image to RGB: \(String(cString: SDL_GetError()))")
        }
        defer { SDL_FreeSurface(rgbSurface) }
        // Locking is a no-op for ordinary surfaces but required before
        // touching `pixels` of an RLE-accelerated one.
        guard SDL_LockSurface(rgbSurface) == 0 else {
            throw DataError.corrupt(path: path, detail: "cannot lock image surface: \(String(cString: SDL_GetError()))")
        }
        defer { SDL_UnlockSurface(rgbSurface) }
        let width = Int(rgbSurface.pointee.w), height = Int(rgbSurface.pointee.h)
        guard width > 0, height > 0, let base = rgbSurface.pointee.pixels else {
            throw DataError.corrupt(path: path, detail: "image has no pixels")
        }
        let pitch = Int(rgbSurface.pointee.pitch)
        let source = base.assumingMemoryBound(to: UInt8.self)
        let planeSize = width * height
        var rgb = [UInt8](repeating: 0, count: 3 * planeSize)
        rgb.withUnsafeMutableBufferPointer { planes in
            for y in 0..<height {
                let row = source + y * pitch
                for x in 0..<width {
                    let i = y * width + x
                    planes[i] = row[3 * x]
                    planes[planeSize + i] = row[3 * x + 1]
                    planes[2 * planeSize + i] = row[3 * x + 2]
                }
            }
        }
        return DecodedImage(size: ImageSize(width: width, height: height), rgb: rgb, isGray: isGray)
    }

    /// SDL_image gives 8-bit gray files as an 8-bit indexed surface whose
    /// palette is all gray; that is the "this image is grayscale" signal.
    static func isEightBitGray(_ surface: UnsafeMutablePointer<SDL_Surface>) -> Bool {
        guard let format = surface.pointee.format, format.pointee.BitsPerPixel == 8,
              let palette = format.pointee.palette, let colors = palette.pointee.colors else { return false }
        for index in 0..<Int(palette.pointee.ncolors) {
            let color = colors[index]
            if color.r != color.g || color.g != color.b { return false }
        }
        return true
    }
}

/// One slot per index, each written by one worker of a `concurrentPerform` and read
/// after it returns.
final class ParallelSlots<Value>: @unchecked Sendable {
    private var values: [Value?]
    private let lock = NSLock()

    init(count: Int) { values = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Value) {
        lock.lock(); defer { lock.unlock() }
        values[index] = value
    }

    func get(_ index: Int) -> Value? {
        lock.lock(); defer { lock.unlock() }
        return values[index]
    }
}

/// Standard error written by C libraries while a call runs.
///
/// libpng, inside SDL_image, prints its own `libpng error: …` (and warnings
/// such as `iCCP: known incorrect sRGB profile`) straight to the process's
/// standard error, before SDL_image reports a failure: the user would see two
/// lines for one bad file, the first without the file's name. While a PNG is
/// decoded, file descriptor 2 points to a temporary file, and its text becomes
/// part of the one error line. Decodes of PNG files take a lock for this, since
/// the descriptor is shared by the whole process.
enum StandardErrorCapture {
    private static let lock = NSLock()

    static func capturing<T>(_ body: () -> T) -> (result: T, text: String) {
        lock.lock()
        defer { lock.unlock() }
        fflush(nil)   // nothing written before goes into the capture
        guard let file = tmpfile() else { return (body(), "") }
        defer { fclose(file) }
        let saved = dup(STDERR_FILENO)
        guard saved >= 0, dup2(fileno(file), STDERR_FILENO) >= 0 else {
            if saved >= 0 { close(saved) }
            return (body(), "")
        }
        let result = body()
        fflush(nil)
        dup2(saved, STDERR_FILENO)
        close(saved)
        var text = [UInt8]()
        rewind(file)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while text.count < 1 << 16 {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            text += buffer[0..<n]
        }
        return (result, String(decoding: text, as: UTF8.self))
    }
}
