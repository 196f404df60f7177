import Foundation
import SlicerData

/// `FileDigest`'s hash fed piece by piece: the same value as hashing all the
/// bytes at once, so files far larger than memory can be digested as they
/// are written or read.
struct DigestState {
    private var h: UInt64
    private var word: UInt64 = 0
    private var shift: UInt64 = 0

    /// - Parameter count: the number of bytes that will be fed in all.
    init(seed: UInt64 = 0, count: Int) {
        h = 0x9E37_79B9_7F4A_7C15 ^ seed ^ UInt64(count)
    }

    @inline(__always) private mutating func mix(_ w: UInt64) {
        h ^= w &* 0xBF58_476D_1CE4_E5B9
        h = (h << 27 | h >> 37) &* 0x94D0_49BB_1331_11EB
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        var i = 0
        let n = bytes.count
        // Finish a word begun by the last piece, byte by byte.
        while shift != 0 && i < n {
            word |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift += 8
            i += 1
            if shift == 64 { mix(word); word = 0; shift = 0 }
        }
        // Whole little-endian words.
        while n - i >= 8 {
            mix(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            i += 8
        }
        while i < n {
            word |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift += 8
            i += 1
        }
    }

    func finish() -> UInt64 {
        var h = self.h
        if shift > 0 {
            h ^= word &* 0xBF58_476D_1CE4_E5B9
            h = (h << 27 | h >> 37) &* 0x94D0_49BB_1331_11EB
        }
        h ^= h >> 31; h &*= 0xD6E8_FEB8_6659_FD93; h ^= h >> 32
        return h
    }
}

/// Buffered binary output, digesting what it writes, into the piece-by-piece
/// writer of `AtomicFile.write(to:_:)` (a temporary file renamed into place,
/// never over a device or FIFO). Numbers are written little-endian.
final class BinaryWriter {
    private let put: (UnsafeRawBufferPointer) throws -> Void
    private var buffer: [UInt8] = []
    private(set) var digest: DigestState

    /// Writes `path` atomically through a writer whose digest will cover `digestCount` bytes.
    static func write(to path: String, digestCount: Int, _ body: (BinaryWriter) throws -> Void) throws {
        try AtomicFile.write(to: path) { put in
            // The writer lives only inside this call, as `put` does.
            try withoutActuallyEscaping(put) { put in
                let writer = BinaryWriter(put: put, digestCount: digestCount)
                try body(writer)
                try writer.flush()
            }
        }
    }

    private init(put: @escaping (UnsafeRawBufferPointer) throws -> Void, digestCount: Int) {
        self.put = put
        digest = DigestState(count: digestCount)
        buffer.reserveCapacity(1 << 20)
    }

    /// Writes bytes; `digested: false` for the parts the digest does not cover.
    func write(_ bytes: UnsafeRawBufferPointer, digested: Bool = true) throws {
        if digested { digest.update(bytes) }
        if buffer.count + bytes.count > 1 << 20 { try flush() }
        if bytes.count >= 1 << 20 {
            // Large blocks (a per-image store of hundreds of MB) go straight from their memory.
            try put(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    func write(_ bytes: [UInt8], digested: Bool = true) throws {
        try bytes.withUnsafeBytes { try write($0, digested: digested) }
    }

    func write(_ value: UInt64) throws {
        try withUnsafeBytes(of: value.littleEndian) { try write($0) }
    }

    func write<T: BitwiseCopyable>(array: [T]) throws {
        try array.withUnsafeBytes { try write($0) }
    }

    /// The digest so far, as the 16 hex digits that end a file.
    func writeDigest() throws {
        try write(Array(String(format: "%016llx", digest.finish()).utf8), digested: false)
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try put($0) }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Buffered binary input from a file, digesting everything read. Every read
/// is checked against the bytes the file has left, so a length that lies
/// cannot make a reader allocate or read past the end.
final class BinaryReader {
    let path: String
    private let fd: Int32
    let size: Int
    private(set) var offset = 0
    private var buffer: [UInt8] = []
    private var start = 0
    private(set) var digest = DigestState(count: 0)

    /// Opens a regular file (anything else is refused before a byte is read:
    /// a FIFO would block, a device never end).
    init(path: String) throws {
        self.path = path
        (fd, size) = try InputFile.open(path)
        // Opened without blocking (for a FIFO's sake); reads of a regular file block as usual.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    }

    deinit { close(fd) }

    var remaining: Int { size - offset }

    /// Starts digesting the next `count` bytes.
    func beginDigest(count: Int) { digest = DigestState(count: count) }

    func read(into target: UnsafeMutableRawBufferPointer, digested: Bool = true) throws {
        guard target.count <= remaining else { throw InfoError.invalid("\(path): truncated (\(target.count) bytes needed, \(remaining) left)") }
        guard var out = target.baseAddress else { return }
        var left = target.count
        while left > 0 {
            if start == buffer.count {
                // Large reads go straight into the target.
                if left >= 1 << 20 {
                    let n = Glibc.read(fd, out, left)
                    guard n > 0 else { throw InfoError.io("\(path): read failed") }
                    if digested { digest.update(UnsafeRawBufferPointer(start: out, count: n)) }
                    out += n; left -= n; offset += n
                    continue
                }
                buffer = [UInt8](repeating: 0, count: min(1 << 20, remaining))
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
                guard n > 0 else { throw InfoError.io("\(path): read failed") }
                buffer.removeLast(buffer.count - n)
                start = 0
            }
            let n = min(left, buffer.count - start)
            buffer.withUnsafeBytes { src in
                let piece = UnsafeRawBufferPointer(rebasing: src[start..<(start + n)])
                out.copyMemory(from: piece.baseAddress!, byteCount: n)
                if digested { digest.update(piece) }
            }
            start += n; out += n; left -= n; offset += n
        }
    }

    func readBytes(_ count: Int, digested: Bool = true) throws -> [UInt8] {
        guard count >= 0, count <= remaining else { throw InfoError.invalid("\(path): truncated (\(count) bytes needed, \(remaining) left)") }
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0, digested: digested) }
        return bytes
    }

    func readUInt64() throws -> UInt64 {
        var v: UInt64 = 0
        try withUnsafeMutableBytes(of: &v) { try read(into: $0) }
        return UInt64(littleEndian: v)
    }

    /// A count or size field: at most `limit`.
    func readInt(_ field: String, limit: Int = Int(Int32.max)) throws -> Int {
        let v = try readUInt64()
        guard v <= UInt64(limit) else { throw InfoError.invalid("\(path): field \(field): \(v) is out of range") }
        return Int(v)
    }

    func readArray<T: BitwiseCopyable>(_ count: Int, of _: T.Type, field: String) throws -> [T] {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard count >= 0, !overflow, bytes <= remaining else {
            throw InfoError.invalid("\(path): field \(field): \(count) values, more than the file holds")
        }
        return try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            try read(into: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }
}

extension HistogramSet {
    /// HSET2: the sums of instance entropies are exact sums (`ExactSum`, 16
    /// bytes each); HSET1 had doubles.
    static let binaryMagic = Array("HSET2\n".utf8)

    /// Bytes of `write(to:)`'s output.
    var encodedByteCount: Int {
        var n = HistogramSet.binaryMagic.count + 6 * 8 + imageCounts.count * 8
        for t in taps {
            n += 4 * 8 + t.openSlots.count * 8
            n += (t.counts.count + t.layerCounts.count + t.nonFinite.count + t.closedCounts.count) * 8
            n += (t.layerInstanceSum.count + t.layerInstanceSquares.count + t.channelInstanceSum.count
                  + t.closedConditional.count) * MemoryLayout<ExactSum>.stride
        }
        return n
    }

    /// Writes the set in the binary form of cache entries and shard partials.
    func write(to w: BinaryWriter) throws {
        try w.write(HistogramSet.binaryMagic)
        for v in [bins, classCount, layout == .kept ? 0 : 1, millerMadow ? 1 : 0, taps.count, imageCounts.count] {
            try w.write(UInt64(v))
        }
        try w.write(array: imageCounts.map { Int64($0) })
        for t in taps {
            for v in [t.channels, t.valuesPerChannel, t.slots, t.openSlots.count] { try w.write(UInt64(v)) }
            try w.write(array: t.openSlots.map { Int64($0) })
            try w.write(array: t.counts)
            try w.write(array: t.layerCounts)
            try w.write(array: t.nonFinite)
            try w.write(array: t.layerInstanceSum)
            try w.write(array: t.layerInstanceSquares)
            try w.write(array: t.channelInstanceSum)
            try w.write(array: t.closedCounts)
            try w.write(array: t.closedConditional)
        }
    }

    /// Reads what `write(to:)` wrote, checking every length against the file
    /// before allocating. The caller checks the file's digest and then the
    /// whole set (`validate`, Validation.swift) before using it.
    static func read(from r: BinaryReader) throws -> HistogramSet {
        func fail(_ field: String, _ problem: String) -> InfoError { InfoError.invalid("\(r.path): field histograms\(field): \(problem)") }
        guard try r.readBytes(binaryMagic.count) == binaryMagic else { throw InfoError.invalid("\(r.path): histograms are not in the expected form") }
        func sums(_ count: Int, field: String) throws -> [ExactSum] { try r.readArray(count, of: ExactSum.self, field: field) }
        let bins = try r.readInt("histograms.bins", limit: 4096), classCount = try r.readInt("histograms.classCount", limit: 1 << 24)
        let layoutCode = try r.readInt("histograms.layout", limit: 1), mm = try r.readInt("histograms.millerMadow", limit: 1)
        let tapCount = try r.readInt("histograms.taps", limit: 1 << 20), slotCount = try r.readInt("histograms.imageCounts", limit: 1 << 24)
        guard bins >= 2 else { throw fail(".bins", "\(bins) is outside 2...4096") }
        guard classCount >= 1, slotCount == classCount + 1 else { throw fail(".imageCounts", "\(slotCount) values for \(classCount) classes") }
        let layout: ClassChannelLayout = layoutCode == 0 ? .kept : .onDemand
        var set = HistogramSet(tapShapes: [], classCount: classCount, bins: bins, layout: layout, millerMadow: mm == 1)
        set.imageCounts = try r.readArray(slotCount, of: Int64.self, field: "histograms.imageCounts").map { Int(clamping: $0) }
        for t in 0..<tapCount {
            let at = ".taps[\(t)]"
            let channels = try r.readInt("histograms\(at).channels", limit: 1 << 24)
            let values = try r.readInt("histograms\(at).valuesPerChannel", limit: 1 << 32)
            let slots = try r.readInt("histograms\(at).slots", limit: 1 << 24)
            let open = try r.readInt("histograms\(at).openSlots", limit: slots)
            guard slots == slotCount else { throw fail("\(at).slots", "\(slots), expected \(slotCount) (classes + 1)") }
            guard channels >= 1, values >= 1 else { throw fail(at, "\(channels) channels of \(values) values") }
            let openSlots = try r.readArray(open, of: Int64.self, field: "histograms\(at).openSlots")
            guard openSlots.allSatisfy({ $0 >= 0 && $0 < slots }) else { throw fail("\(at).openSlots", "a class slot outside 0..<\(slots)") }
            var tap = TapHistograms(channels: channels, valuesPerChannel: values, slots: slots, bins: bins, layout: layout)
            tap.setOpenSlots(openSlots.map { Int($0) })
            let block = channels * bins
            tap.counts = try r.readArray(open * block, of: UInt64.self, field: "histograms\(at).counts")
            tap.layerCounts = try r.readArray(slots * bins, of: UInt64.self, field: "histograms\(at).layerCounts")
            tap.nonFinite = try r.readArray(slots, of: UInt64.self, field: "histograms\(at).nonFinite")
            tap.layerInstanceSum = try sums(slots, field: "histograms\(at).layerInstanceSum")
            tap.layerInstanceSquares = try sums(slots, field: "histograms\(at).layerInstanceSquares")
            tap.channelInstanceSum = try sums((layout == .kept ? slots : 1) * channels, field: "histograms\(at).channelInstanceSum")
            tap.closedCounts = try r.readArray(layout == .kept ? 0 : block, of: UInt64.self, field: "histograms\(at).closedCounts")
            tap.closedConditional = try sums(layout == .kept ? 0 : channels, field: "histograms\(at).closedConditional")
            set.taps.append(tap)
        }
        return set
    }
}
