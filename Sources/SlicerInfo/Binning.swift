import CBinning

/// Bins of a value per SPEC §3: b = clamp(floor((v − lo)/(hi − lo)·B), 0, B−1),
/// evaluated in double precision in exactly that order; every value when
/// hi == lo falls in bin 0; nil for a non-finite value (not binned, counted).
@inline(__always)
public func referenceBin(_ v: Float, lo: Float, hi: Float, bins: Int) -> Int? {
    guard v.isFinite else { return nil }
    if hi == lo { return 0 }
    let t = (Double(v) - Double(lo)) / (Double(hi) - Double(lo)) * Double(bins)
    let b = t.rounded(.down)
    if b < 0 { return 0 }
    if b >= Double(bins - 1) { return bins - 1 }
    return Int(b)
}

/// Bins one channel's values fast and exactly.
///
/// A float32 pass computes every bin with one multiply; it is vectorised and
/// branch-free. Its result can differ from the double-precision definition
/// only for values within a few float ulps of a bin edge, or for non-finite
/// values; the pass counts those, and a second, scalar pass recomputes just
/// them with `referenceBin`. The bins written are therefore exactly the
/// definition's. Non-finite values get bin `bins` (one past the last), which
/// callers keep as a separate count.
struct ChannelBinner {
    let bins: Int
    let lo: Float, hi: Float
    private let scale: Float
    /// Half-width of the band around an edge where float32 may disagree:
    /// the relative error of (v − lo)·scale is below 3·2⁻²⁴ and t ≤ B, so
    /// B·2⁻²¹ leaves a safety factor of about 2.
    private let edgeBand: Float
    /// The float32 pass's error bound assumes that v − lo cannot overflow for a
    /// value inside the range (span ≤ Float.greatestFiniteMagnitude) and that
    /// the scale B/span is a normal float. Ranges at the ends of float32 break
    /// that: a span above Float.greatestFiniteMagnitude (e.g. [−3e38, 3e38])
    /// sent half the range to the last bin, and a span below about B·3e-39
    /// (e.g. [1e-38, 1.2e-38]) made the scale infinite, sending every value
    /// above lo to the last bin — neither flagged as doubtful. For such ranges
    /// every value is binned with `referenceBin` instead (found by
    /// SlicerInfoTests.BinningTests.testChannelBinnerAtExtremeRanges).
    private let referenceOnly: Bool

    /// This range for the fused AVX-512 kernel (CBinning), where the processor
    /// has it and the range suits the float32 pass; nil otherwise.
    let vectorRange: cnns_binning?

    /// Whether this process may take the AVX-512 kernel (tests switch it off
    /// to check the portable path gives the same bins).
    nonisolated(unsafe) static var vectorKernelAllowed = cnns_bin_has_avx512() != 0

    init(bins: Int, lo: Float, hi: Float) {
        self.bins = bins
        self.lo = lo
        self.hi = hi
        let span = Double(hi) - Double(lo)
        scale = span > 0 ? Float(Double(bins) / span) : 0
        edgeBand = Float(bins) * 0x1p-21
        referenceOnly = span > 0 && !(span <= Double(Float.greatestFiniteMagnitude) && scale.isNormal)
        if referenceOnly || !ChannelBinner.vectorKernelAllowed {
            vectorRange = nil
        } else {
            var range = cnns_binning()
            range.lo = lo
            range.hi = hi
            range.scale = scale
            range.band = edgeBand
            range.bins = Int32(bins)
            // A range from exactly 0 is a ReLU's: most values are 0, in bin 0.
            range.skip_zero_bin = lo == 0 && hi > 0 ? 1 : 0
            // edges[0] = −∞ marks the table as filled; more than 64 bins
            // leave it +∞ and the kernel tests for doubtful values instead.
            withUnsafeMutableBytes(of: &range.edges) { raw in
                let edges = raw.bindMemory(to: Float.self)
                for b in edges.indices { edges[b] = .infinity }
                guard bins <= edges.count else { return }
                edges[0] = -.infinity
                for b in 1..<bins { edges[b] = ChannelBinner.lowerEdge(of: b, lo: lo, hi: hi, bins: bins) }
            }
            vectorRange = range
        }
    }

    /// The smallest float whose bin (by `referenceBin`) is at least `b`, for
    /// b in 1..<bins; +∞ when no float reaches bin b (hi == lo). The bin is
    /// monotone in the value (each step of its formula is), so the float
    /// kernel can compare against these edges instead of doing arithmetic in
    /// double precision.
    static func lowerEdge(of b: Int, lo: Float, hi: Float, bins: Int) -> Float {
        guard hi != lo else { return .infinity }
        func reaches(_ v: Float) -> Bool { (referenceBin(v, lo: lo, hi: hi, bins: bins) ?? -1) >= b }
        // Start at the edge in double precision and step by ulps: the float
        // edge is a few ulps away at most.
        var v = Float(Double(lo) + (Double(hi) - Double(lo)) * Double(b) / Double(bins))
        if v.isFinite {
            for _ in 0..<64 {
                if reaches(v) {
                    let down = v.nextDown
                    if !reaches(down) { return v }
                    v = down
                } else {
                    v = v.nextUp
                }
            }
        }
        // Not found nearby (not expected): bisect over all finite floats in
        // their order, -greatestFiniteMagnitude reaching nothing above bin 0.
        func key(_ f: Float) -> Int64 {
            f.sign == .minus ? -Int64(f.bitPattern & 0x7fff_ffff) : Int64(f.bitPattern)
        }
        func float(_ k: Int64) -> Float {
            k < 0 ? Float(bitPattern: UInt32(-k) | 0x8000_0000) : Float(bitPattern: UInt32(k))
        }
        var low = key(-Float.greatestFiniteMagnitude), high = key(Float.greatestFiniteMagnitude)
        guard reaches(float(high)) else { return .infinity }
        while high - low > 1 {
            let mid = low + (high - low) / 2
            if reaches(float(mid)) { high = mid } else { low = mid }
        }
        return float(high)
    }

    /// Writes a bin in 0...bins for each value; returns the number of non-finite values.
    @inline(__always)
    func bin(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Int32>) -> Int {
        if referenceOnly {
            var nonFinite = 0
            for i in 0..<count {
                if let b = referenceBin(x[i], lo: lo, hi: hi, bins: bins) {
                    out[i] = Int32(b)
                } else {
                    out[i] = Int32(bins)
                    nonFinite += 1
                }
            }
            return nonFinite
        }
        // Blocks of 256 values: a doubtful value sends only its block through the
        // slow second pass (a whole tap binned at once would nearly always
        // contain one somewhere).
        var nonFinite = 0
        var start = 0
        while start < count {
            let end = min(count, start + 256)
            if fastPass(x, from: start, to: end, into: out) {
                nonFinite += settle(x, from: start, to: end, into: out)
            }
            start = end
        }
        return nonFinite
    }

    /// Bins values start..<end in float32; true when one of them may be wrong.
    @inline(__always)
    private func fastPass(_ x: UnsafePointer<Float>, from start: Int, to end: Int, into out: UnsafeMutablePointer<Int32>) -> Bool {
        let last = Int32(bins - 1), top = Float(bins), lastEdge = Float(bins - 1)
        let band = edgeBand, lo = self.lo, scale = self.scale
        // Only selects and an integer OR in this loop (no `&&`, no float
        // reduction, which the compiler may not reorder), so it compiles to
        // straight vector code. A value is doubtful when it lies within the
        // band of an interior bin edge, or is not finite (v − v is NaN then).
        var doubtfulBits: UInt32 = 0
        let bandBits = band.bitPattern
        if hi == lo {
            for i in start..<end { let v = x[i]; out[i] = 0; doubtfulBits |= (v - v).bitPattern }
        } else {
            for i in start..<end {
                let v = x[i]
                let t = (v - lo) * scale
                var r = t >= 0 ? t : 0          // NaN and values below the range → 0
                r = r < top ? r : top           // +∞ and values above → B
                let k = Int32(r)
                let f = r - Float(k)
                out[i] = k < last ? k : last
                // Edges 1…B−1 matter; 0 and B are clamped anyway.
                let inside: Float = r >= 1 ? f : 1
                let below: Float = r < top ? inside : 1
                let above: Float = r < lastEdge ? 1 - f : 1
                let d = below < above ? below : above
                // d and band are non-negative floats, whose bit patterns order like
                // the numbers: the subtraction's top bit is d < band. (v − v) is +0
                // (all bits clear) exactly when v is finite.
                doubtfulBits |= ((d.bitPattern &- bandBits) >> 31) | (v - v).bitPattern
            }
        }
        return doubtfulBits != 0
    }

    /// Rare: finds the doubtful values of start..<end again and settles them
    /// with the definition; returns the non-finite count among them.
    private func settle(_ x: UnsafePointer<Float>, from start: Int, to end: Int, into out: UnsafeMutablePointer<Int32>) -> Int {
        let last = Int32(bins - 1), top = Float(bins)
        let band = edgeBand, lower = 1 - edgeBand, lo = self.lo, scale = self.scale
        var nonFinite = 0
        for i in start..<end {
            let v = x[i]
            if hi != lo && v.isFinite {
                var r = (v - lo) * scale
                r = r >= 0 ? (r < top ? r : top) : 0
                let k = Int32(r), f = r - Float(k)
                let isDoubtful = (f < band && k >= 1 && k <= last) || (f > lower && k < last)
                if !isDoubtful { continue }
            }
            if let b = referenceBin(v, lo: lo, hi: hi, bins: bins) {
                out[i] = Int32(b)
            } else {
                out[i] = Int32(bins)
                nonFinite += 1
            }
        }
        return nonFinite
    }
}
