import CZlib

/// gzip (RFC 1952) compression and decompression of in-memory buffers via zlib.
///
/// Decompression works on the whole file in memory with `inflate` rather than
/// `gzread`, because `gzread` silently returns short data on a truncated file;
/// here a stream that ends early or fails its CRC is reported as a `DataError`.
public enum Gzip {
    /// True if `bytes` start with the gzip magic 1f 8b. Files are recognised by
    /// content, not by name, so a renamed `.gz` or an unpacked file both work.
    public static func isGzip<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var iterator = bytes.makeIterator()
        return iterator.next() == 0x1f && iterator.next() == 0x8b
    }

    /// Decompresses a complete gzip file (one or more concatenated members).
    /// - Parameter path: used only to name the file in errors.
    public static func decompress(_ input: [UInt8], path: String) throws -> [UInt8] {
        guard isGzip(input) else {
            throw DataError.corrupt(path: path, detail: "not a gzip file (\(leadingBytesDescription(input[...])))")
        }
        guard input.count <= Int(UInt32.max) else {
            throw DataError.unsupportedFormat(path: path, detail: "compressed file larger than 4 GiB")
        }
        // The trailer's ISIZE is the uncompressed size modulo 2^32 of the last
        // member: exact for ordinary files, garbage for a truncated one, so it
        // is only trusted up to a sane multiple of the input.
        var capacity = 1 << 16
        if input.count >= 18 {
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            capacity = max(capacity, min(isize, input.count * 16 + (1 << 20)))
        }
        var output = [UInt8](repeating: 0, count: capacity)
        var produced = 0

        var stream = z_stream()
        var status = inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw DataError.ioFailure(path: path, detail: "zlib inflateInit failed (\(status))")
        }
        defer { inflateEnd(&stream) }

        try input.withUnsafeBufferPointer { inBuffer in
            stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
            stream.avail_in = UInt32(inBuffer.count)
            while true {
                if produced == output.count {
                    output.append(contentsOf: repeatElement(0, count: output.count))
                }
                output.withUnsafeMutableBufferPointer { outBuffer in
                    let room = min(outBuffer.count - produced, Int(UInt32.max))
                    stream.next_out = outBuffer.baseAddress! + produced
                    stream.avail_out = UInt32(room)
                    status = inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                }
                switch status {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    let remaining = Int(stream.avail_in)
                    if remaining == 0 { return }
                    let next = inBuffer.count - remaining
                    if isGzip(inBuffer[next...]) {
                        // Another gzip member follows (as `cat a.gz b.gz` makes).
                        inflateReset(&stream)
                        continue
                    }
                    if inBuffer[next...].allSatisfy({ $0 == 0 }) { return } // tape-style zero padding
                    throw DataError.corrupt(path: path, detail: "\(remaining) bytes of trailing garbage after the gzip data")
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 {
                        throw DataError.truncated(path: path, detail: "gzip stream ends early (file truncated after \(inBuffer.count) bytes?)")
                    }
                    continue // output full: grow and retry
                case Z_DATA_ERROR, Z_NEED_DICT:
                    let message = stream.msg.map { String(cString: $0) } ?? "invalid compressed data"
                    throw DataError.corrupt(path: path, detail: "gzip data is corrupt: \(message)")
                default:
                    throw DataError.ioFailure(path: path, detail: "zlib inflate failed (\(status))")
                }
            }
        }
        output.removeSubrange(produced...)
        return output
    }

    /// Compresses `bytes` into a single-member gzip file image.
    public static func compress(_ bytes: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) -> [UInt8] {
        var stream = z_stream()
        // deflateInit2 only fails on bad parameters or out of memory; the
        // parameters here are constants, so treat failure as a programming error.
        let initStatus = deflateInit2_(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                       ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(initStatus == Z_OK, "deflateInit2 failed: \(initStatus)")
        defer { deflateEnd(&stream) }
        // deflateBound covers the zlib framing, not the gzip header and trailer.
        let bound = Int(deflateBound(&stream, UInt(bytes.count))) + 64
        var output = [UInt8](repeating: 0, count: bound)
        var produced = 0
        bytes.withUnsafeBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
                stream.avail_in = UInt32(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = UInt32(outBuffer.count)
                let status = deflate(&stream, Z_FINISH)
                precondition(status == Z_STREAM_END, "deflate did not finish: \(status)")
                produced = outBuffer.count - Int(stream.avail_out)
            }
        }
        output.removeSubrange(produced...)
        return output
    }
}
