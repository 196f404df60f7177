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
    ///
    /// Anything else is refused before a byte is read: a FIFO would block until
    /// some writer appears and a device such as /dev/zero never ends. Opening
    /// with O_NONBLOCK keeps the open itself from waiting for a FIFO's writer.
    static func readAll(_ path: String) throws -> [UInt8] {
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        // st_size is only a hint (the file may grow or shrink while it is read),
        // so keep reading until end of file, growing the buffer when it fills.
        var buffer = [UInt8](repeating: 0, count: size + 1)
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

    /// Opens a regular file for reading (the caller closes the descriptor),
    /// refusing anything else as `readAll` does; returns its size.
    static func openRegular(_ path: String) throws -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw openError(path, errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw DataError.ioFailure(path: path, detail: "cannot stat: \(errnoText(code))")
        }
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG else {
            close(fd)
            switch kind {
            case S_IFDIR: throw DataError.unsupportedFormat(path: path, detail: "is a directory, expected a file")
            case S_IFIFO: throw DataError.unsupportedFormat(path: path, detail: "is a FIFO, expected a regular file")
            case S_IFCHR, S_IFBLK: throw DataError.unsupportedFormat(path: path, detail: "is a device, expected a regular file")
            default: throw DataError.unsupportedFormat(path: path, detail: "is not a regular file")
            }
        }
        return (fd, max(Int(info.st_size), 0))
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
    ///
    /// The target must be a regular file or not exist (`OutputFile.target`):
    /// the rename would otherwise replace a device node, FIFO or socket by a
    /// regular file. A symbolic link is written through, to the file it names.
    static func writeAtomically(
        to requested: String,
        _ body: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        let path = try OutputFile.target(requested)
        let directory = parent(of: path)
        let temporary = join(directory, ".\(fileName(of: path)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            let code = errno
            throw DataError.ioFailure(path: requested, detail: "cannot write: \(errnoText(code)) (creating a file in \(directory))")
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
                    throw DataError.ioFailure(path: requested, detail: "cannot write: \(errnoText(errno))")
                }
                offset += wrote
            }
        }
        try body(writeChunk)
        if fsync(fd) != 0 {
            throw DataError.ioFailure(path: requested, detail: "cannot write: \(errnoText(errno)) (fsync)")
        }
        closed = true
        if close(fd) != 0 {
            throw DataError.ioFailure(path: requested, detail: "cannot write: \(errnoText(errno)) (close)")
        }
        if rename(temporary, path) != 0 {
            throw DataError.ioFailure(path: requested, detail: "cannot write: \(errnoText(errno)) (renaming the temporary file into place)")
        }
        renamed = true
    }
}

/// Whole-file reads of inputs that other modules decode (shard partials):
/// regular files only, with the errors of `FileIO.readAll`.
public enum InputFile {
    public static func read(_ path: String) throws -> [UInt8] { try FileIO.readAll(path) }

    /// Opens a regular file to be read in pieces (large partials, cache
    /// entries); the caller closes the descriptor. Returns its size.
    public static func open(_ path: String) throws -> (fd: Int32, size: Int) { try FileIO.openRegular(path) }
}

/// Whole-file writes for results (JSON, CSV, .npy, the cache): atomic, through
/// `FileIO.writeAtomically`, so that a crash or a full disk never leaves half a
/// file behind and an existing file is replaced only by a complete one.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try FileIO.writeAtomically(to: path) { write in try data.withUnsafeBytes { try write($0) } }
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try FileIO.writeAtomically(to: path) { write in try bytes.withUnsafeBytes { try write($0) } }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// Writes in pieces: `body` gets a function to call with each piece, so
    /// that a file larger than memory (a cache entry with its per-image store)
    /// is never assembled first.
    public static func write(to path: String, _ body: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try FileIO.writeAtomically(to: path, body)
    }
}

/// Where a command may write its result.
///
/// Writing is a rename of a complete temporary file over the target, which is
/// safe for a regular file but would replace a device node (`/dev/full`), FIFO
/// or socket by a regular file; and an output that names one of the command's
/// own inputs (the model, the images, a partial) would destroy that input.
/// Commands call `check` before they start work, so a mistyped `--out` fails at
/// once, not after an hour of analysis.
public enum OutputFile {
    /// Checks that `path` can receive a result without replacing anything but
    /// a regular file that is none of `inputs`.
    ///
    /// - Parameter inputs: files the command reads, and data folders: an output
    ///   may be none of the files, and no existing file inside a folder.
    public static func check(_ path: String, inputs: [String] = []) throws {
        let target = try self.target(path)
        let directory = FileIO.parent(of: target)
        guard FileIO.isDirectory(directory) else {
            throw DataError.ioFailure(path: path, detail: "cannot write: directory \(directory) does not exist")
        }
        guard access(directory, W_OK) == 0 else {
            throw DataError.ioFailure(path: path, detail: "cannot write: \(FileIO.errnoText(errno)) (directory \(directory))")
        }
        var info = stat()
        guard stat(target, &info) == 0 else { return }   // a new file: nothing to overwrite
        let resolved = resolvedPath(target)
        for input in inputs {
            var other = stat()
            guard !input.isEmpty, stat(input, &other) == 0 else { continue }
            if other.st_dev == info.st_dev && other.st_ino == info.st_ino {
                throw DataError.invalidArgument(source: path, detail: "is an input of this command (\(input)); refusing to overwrite it")
            }
            if other.st_mode & S_IFMT == S_IFDIR, let folder = resolvedPath(input), let resolved, resolved.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/") {
                throw DataError.invalidArgument(source: path, detail: "is a file inside the data folder \(input); refusing to overwrite it (write the result elsewhere)")
            }
        }
    }

    /// The file a write to `path` replaces: `path` itself, or the file a symbolic
    /// link names. Throws for directories, device nodes, FIFOs and sockets.
    static func target(_ path: String) throws -> String {
        guard !path.isEmpty else { throw DataError.invalidArgument(source: "output", detail: "the output path is empty") }
        var info = stat()
        guard lstat(path, &info) == 0 else { return path }
        var target = path
        if info.st_mode & S_IFMT == S_IFLNK {
            // Follow the link to what it names; a dangling link is replaced.
            guard stat(path, &info) == 0, let resolved = resolvedPath(path) else { return path }
            target = resolved
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return target
        case S_IFDIR: throw DataError.ioFailure(path: path, detail: "cannot write: is a directory")
        case S_IFCHR, S_IFBLK: throw DataError.invalidArgument(source: path, detail: "is a device, not a regular file; refusing to replace it")
        case S_IFIFO: throw DataError.invalidArgument(source: path, detail: "is a FIFO, not a regular file; refusing to replace it")
        default: throw DataError.invalidArgument(source: path, detail: "is not a regular file; refusing to replace it")
        }
    }

    private static func resolvedPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
