import Foundation

/// Shannon entropy of histograms, in bits (SPEC §3).
public enum Entropy {
    /// H(p) = −Σ p_b log2 p_b over the bins, 0·log 0 = 0; nil counts give 0.
    /// With `millerMadow`, adds (m − 1)/(2 n ln 2), m the non-empty bins, n the values.
    public static func bits<C: Collection>(_ counts: C, millerMadow: Bool = false) -> Double where C.Element: BinaryInteger {
        var n: Double = 0
        var nonEmpty = 0
        for c in counts where c > 0 { n += Double(c); nonEmpty += 1 }
        guard n > 0 else { return 0 }
        var h: Double = 0
        for c in counts where c > 0 {
            let p = Double(c) / n
            h -= p * log2(p)
        }
        if millerMadow { h += Double(nonEmpty - 1) / (2 * n * M_LN2) }
        return max(h, 0)
    }

    /// The largest entropy a histogram of `values` values in `bins` bins can
    /// have: log2(min(B, n)) (SPEC §3's instance-entropy ceiling, with n = H·W
    /// for a channel and C·H·W for a whole tap). One value (a channel of a 1×1
    /// or flat tap) always lands in one bin: its ceiling is 0.
    ///
    /// With the Miller–Madow correction the estimate adds (m − 1)/(2 n ln 2)
    /// for m non-empty bins; since H ≤ log2 m and both terms grow with m, the
    /// ceiling is reached at m = min(B, n): log2 m + (m − 1)/(2 n ln 2). So an
    /// entropy never shows above its own ceiling, corrected or not.
    public static func instanceCeiling(bins: Int, values: Int, millerMadow: Bool = false) -> Double {
        let m = max(1, min(bins, values))
        var ceiling = log2(Double(m))
        if millerMadow { ceiling += Double(m - 1) / (2 * Double(max(values, 1)) * M_LN2) }
        return ceiling
    }
}

/// Entropy of many small histograms with the same maximum count, fast:
/// H = log2 n − (Σ c·log2 c)/n with c·log2 c from a table. Equal to the
/// direct formula up to float rounding (≈1e-15).
struct EntropyTable: Sendable {
    /// c·log2(c) for c in 0...maxCount.
    private let xlogx: [Double]

    /// log2 of the usual total (every value of a channel finite): one call to
    /// log2 saved per channel and image.
    private let log2MaxCount: Double

    init(maxCount: Int) {
        xlogx = (0...max(1, maxCount)).map { $0 == 0 ? 0 : Double($0) * log2(Double($0)) }
        log2MaxCount = log2(Double(max(1, maxCount)))
    }

    @inline(__always) private func log2Total(_ total: Int) -> Double {
        total == maxCount ? log2MaxCount : log2(Double(total))
    }

    var maxCount: Int { xlogx.count - 1 }

    @inline(__always) func xlogx(_ count: Int) -> Double { xlogx[count] }

    /// Entropy from Σ c·log2 c over the bins, the non-empty bins and the total.
    @inline(__always)
    func bits(sum: Double, nonEmpty: Int, total: Int, millerMadow: Bool) -> Double {
        guard total > 0 else { return 0 }
        let n = Double(total)
        var h = log2Total(total) - sum / n
        if millerMadow { h += Double(nonEmpty - 1) / (2 * n * M_LN2) }
        return max(h, 0)
    }

    /// Entropy of `bins` counts that add up to `total`.
    @inline(__always)
    func bits(_ counts: UnsafePointer<Int32>, bins: Int, total: Int, millerMadow: Bool) -> Double {
        guard total > 0 else { return 0 }
        // Four partial sums: one running sum would wait on each addition's latency.
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var nonEmpty = 0
        xlogx.withUnsafeBufferPointer { table in
            var b = 0
            while b + 4 <= bins {
                s0 += table[Int(counts[b])]
                s1 += table[Int(counts[b + 1])]
                s2 += table[Int(counts[b + 2])]
                s3 += table[Int(counts[b + 3])]
                b += 4
            }
            while b < bins { s0 += table[Int(counts[b])]; b += 1 }
            if millerMadow { for b in 0..<bins where counts[b] > 0 { nonEmpty += 1 } }
        }
        let sum = (s0 + s1) + (s2 + s3)
        let n = Double(total)
        var h = log2Total(total) - sum / n
        if millerMadow { h += Double(nonEmpty - 1) / (2 * n * M_LN2) }
        return max(h, 0)
    }
}
