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

    /// The instance-entropy ceiling for a tap: log2(min(B, values per channel)).
    public static func instanceCeiling(bins: Int, valuesPerChannel: Int) -> Double {
        log2(Double(max(1, min(bins, valuesPerChannel))))
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
