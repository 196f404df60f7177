#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Small POSIX file helpers. POSIX calls are used instead of Foundation's
/// `Data(contentsOf:)` so that failures can be reported with the exact errno
/// text and classified (missing vs. permission) for `DataError`.
enum FileIO {
    enum Kind { case file, directory, other }

    /// The kind of the file system item at `path`, or nil if nothing is there.
    static func kind(of path: String) -> Kind? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    static func isFile(_ path: String) -> Bool { kind(of: path) == .file }
    static func isDirectory(_ path: String) -> Bool { kind(of: path) == .directory }

    /// Size in bytes of a regular file, or nil if it cannot be stat'ed.
    static func size(of path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_size)
    }

    static func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

    static func openError(_ path: String, _ code: Int32) -> DataError {
        if code == ENOENT || code == ENOTDIR {
            return .missingFile(path: path, detail: "no such file or directory")
        }
        return .ioFailure(path: path, detail: "cannot open: \(errnoText(code))")
    }

    /// Reads a whole regular file into memory.
    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw openError(path, errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DataError.ioFailure(path: path, detail: "cannot stat: \(errnoText(errno))")
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            throw DataError.unsupportedFormat(path: path, detail: "is a directory, expected a file")
        }
        // st_size is only a hint (it is 0 for pipes and /proc files), so keep
        // reading until end of file, growing the buffer when it fills.
        var buffer = [UInt8](repeating: 0, count: max(Int(info.st_size), 0) + 1)
        var filled = 0
        while true {
            if filled == buffer.count {
                buffer.append(contentsOf: repeatElement(0, count: max(buffer.count, 1 << 16)))
            }
            let got = buffer.withUnsafeMutableBytes { raw in
                read(fd, raw.baseAddress! + filled, raw.count - filled)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw DataError.ioFailure(path: path, detail: "read failed: \(errnoText(errno))")
            }
            if got == 0 { break }
            filled += got
        }
        buffer.removeSubrange(filled...)
        return buffer
    }

    /// Non-hidden entries of a directory, sorted by name (byte order of the
    /// UTF-8 names, so the order does not depend on locale).
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw openError(path, errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.bindMemory(to: UInt8.self)
                let length = bytes.firstIndex(of: 0) ?? bytes.count
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<length]), as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            names.append(name)
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func join(_ directory: String, _ name: String) -> String {
        if directory.isEmpty { return name }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Writes a file so that readers never see a half-written one: the data
    /// goes to a temporary file in the same directory (same file system, so
    /// `rename` is atomic), is flushed, and then replaces the target.
    /// `body` receives a `write` function it may call any number of times.
    static func writeAtomically(
        to path: String,
        _ body: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        let directory = parent(of: path)
        let temporary = join(directory, ".\(fileName(of: path)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            let code = errno
            throw DataError.ioFailure(path: path, detail: "cannot create temporary file in \(directory): \(errnoText(code))")
        }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temporary) }
        }
        func writeChunk(_ chunk: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < chunk.count {
                let wrote = write(fd, chunk.baseAddress! + offset, chunk.count - offset)
                if wrote < 0 {
                    if errno == EINTR { continue }
                    throw DataError.ioFailure(path: path, detail: "write failed: \(errnoText(errno))")
                }
                offset += wrote
            }
        }
        try body(writeChunk)
        if fsync(fd) != 0 {
            throw DataError.ioFailure(path: path, detail: "fsync failed: \(errnoText(errno))")
        }
        closed = true
        if close(fd) != 0 {
            throw DataError.ioFailure(path: path, detail: "close failed: \(errnoText(errno))")
        }
        if rename(temporary, path) != 0 {
            throw DataError.ioFailure(path: path, detail: "cannot rename temporary file into place: \(errnoText(errno))")
        }
        renamed = true
    }
}
