import Foundation
import Synchronization

/// Per-image results of an analysis: instance entropy per image × tap ×
/// channel and per image × tap (float32), the prediction and the class
/// probabilities.
///
/// Memory is bounded: up to `residentLimit` bytes live in ordinary memory;
/// a larger store is a memory-mapped temporary file (deleted at once, so it
/// vanishes with the process), whose pages the kernel writes out and drops
/// under pressure. Writers fill disjoint images; an image becomes visible to
/// readers once `markComplete` has published it.
public final class PerImageStore: @unchecked Sendable {
    // Written by the analysis workers (each image by one worker only), read by
    // anyone after `markComplete`; `completed` is the synchronisation point.
    public let imageCount: Int
    /// Offset of each tap's channels in a row of `channelEntropy`.
    public let channelOffsets: [Int]
    public let totalChannels: Int
    public let tapCount: Int
    public let classCount: Int
    private let base: UnsafeMutableRawPointer
    private let byteCount: Int
    private let isMapped: Bool
    private let completed = Mutex<(flags: [Bool], count: Int)>(([], 0))

    /// Above this size the store lives in a mapped file instead of memory.
    public static let residentLimit = 512 << 20

    /// Bytes of the store for these sizes.
    public static func byteCount(imageCount: Int, channels: Int, taps: Int, classCount: Int) -> Int {
        max(1, imageCount * (channels + taps + classCount + 1) * 4)
    }

    /// Bytes of a store of these sizes that stay resident: all of a store in
    /// memory; of a mapped one, the pages being written and the small parts
    /// (`releaseResident` gives the written channel rows back to the kernel).
    public static func residentByteCount(imageCount: Int, channels: Int, taps: Int, classCount: Int) -> Int {
        let total = byteCount(imageCount: imageCount, channels: channels, taps: taps, classCount: classCount)
        guard total > residentLimit else { return total }
        return imageCount * (taps + classCount + 1) * 4 + 256 * channels * 4
    }

    public init(imageCount: Int, tapChannels: [Int], classCount: Int) throws {
        self.imageCount = imageCount
        var offsets: [Int] = []
        var total = 0
        for c in tapChannels { offsets.append(total); total += c }
        channelOffsets = offsets
        totalChannels = total
        tapCount = tapChannels.count
        self.classCount = classCount
        let bytes = PerImageStore.byteCount(imageCount: imageCount, channels: total, taps: tapChannels.count, classCount: classCount)
        byteCount = bytes
        if bytes <= PerImageStore.residentLimit {
            base = .allocate(byteCount: bytes, alignment: 64)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            isMapped = false
        } else {
            let dir = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
            var template = Array("\(dir)/cnnslicer-store-XXXXXX".utf8CString)
            let fd = mkstemp(&template)
            guard fd >= 0 else { throw InfoError.io("\(dir): cannot create a temporary file for \(bytes) bytes of per-image results") }
            unlink(String(cString: template))
            defer { close(fd) }
            guard ftruncate(fd, off_t(bytes)) == 0,
                  let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
                throw InfoError.io("\(dir): cannot map \(bytes) bytes for per-image results")
            }
            base = p
            isMapped = true
        }
        completed.withLock { $0.flags = Array(repeating: false, count: imageCount) }
    }

    deinit {
        if isMapped { munmap(base, byteCount) } else { base.deallocate() }
    }

    /// Bytes of results: entropies, probabilities and predictions.
    var dataByteCount: Int { imageCount * (totalChannels + tapCount + classCount + 1) * 4 }

    var channelEntropyBase: UnsafeMutablePointer<Float> { base.assumingMemoryBound(to: Float.self) }
    var layerEntropyBase: UnsafeMutablePointer<Float> { channelEntropyBase + imageCount * totalChannels }
    var probabilityBase: UnsafeMutablePointer<Float> { layerEntropyBase + imageCount * tapCount }
    var predictionBase: UnsafeMutablePointer<Int32> {
        UnsafeMutableRawPointer(probabilityBase + imageCount * classCount).assumingMemoryBound(to: Int32.self)
    }

    /// Instance entropies of image `i`, tap `t`, all channels.
    public func channelEntropies(image i: Int, tap t: Int) -> UnsafeBufferPointer<Float> {
        let count = t + 1 < channelOffsets.count ? channelOffsets[t + 1] - channelOffsets[t] : totalChannels - channelOffsets[t]
        return UnsafeBufferPointer(start: channelEntropyBase + i * totalChannels + channelOffsets[t], count: count)
    }

    public func layerEntropy(image i: Int, tap t: Int) -> Float { layerEntropyBase[i * tapCount + t] }
    public func prediction(image i: Int) -> Int { Int(predictionBase[i]) }
    public func probabilities(image i: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: probabilityBase + i * classCount, count: classCount)
    }

    public func isComplete(_ i: Int) -> Bool { completed.withLock { $0.flags[i] } }
    public var completeCount: Int { completed.withLock { $0.count } }

    /// A mapped store's written channel rows of `images` leave this process's
    /// resident memory (they stay in the file and come back when read), so
    /// that analysing a large set does not grow resident memory with it.
    func releaseResident<S: Sequence>(_ images: S) where S.Element == Int {
        guard isMapped else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let row = totalChannels * 4
        let start = UnsafeMutableRawPointer(channelEntropyBase)
        let offset = start - base
        for i in images {
            let lo = (offset + i * row + page - 1) / page * page, hi = (offset + (i + 1) * row) / page * page
            if hi > lo { madvise(base + lo, hi - lo, Int32(MADV_DONTNEED)) }
        }
    }

    /// Publishes images whose results are all written.
    func markComplete<S: Sequence>(_ images: S) where S.Element == Int {
        completed.withLock { state in
            for i in images where !state.flags[i] { state.flags[i] = true; state.count += 1 }
        }
    }

    func setPrediction(image i: Int, logits: UnsafeBufferPointer<Float>) {
        var best = 0
        var m = -Float.infinity
        for (k, v) in logits.enumerated() where v > m { m = v; best = k }
        if !(m > -Float.infinity) { best = 0 }
        predictionBase[i] = Int32(best)
        // Softmax with the max subtracted, so large logits cannot overflow.
        var sum: Float = 0
        let p = probabilityBase + i * classCount
        for k in 0..<classCount { let e = expf(logits[k] - m); p[k] = e; sum += e }
        for k in 0..<classCount { p[k] /= sum }
    }
}

public enum InfoError: Error, CustomStringConvertible, Equatable, Sendable {
    case io(String)
    case invalid(String)
    case cancelled

    public var description: String {
        switch self {
        case let .io(m), let .invalid(m): return m
        case .cancelled: return "cancelled"
        }
    }
}
