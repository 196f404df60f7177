import Foundation

/// Spearman's rank correlation, for "does a channel's information predict its
/// importance (CAR)?" — one pair per channel. Many channels share a value (a
/// CAR of exactly 0 points is common), so ties get the mean of the ranks they
/// span and ρ is the Pearson correlation of those average ranks; the shortcut
/// 1 − 6Σd²/(n(n²−1)) holds only without ties and is not used.
public enum RankCorrelation {
    /// Ranks 1…n in ascending order of `values`; equal values share the mean
    /// of the ranks they occupy (e.g. [10, 20, 20, 30] → [1, 2.5, 2.5, 4]).
    public static func averageRanks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
            // Positions start..<end (0-based) hold ranks start+1 … end: their mean.
            let shared = Double(start + 1 + end) / 2
            for k in start..<end { ranks[order[k]] = shared }
            start = end
        }
        return ranks
    }

    /// Spearman's ρ of the pairs whose values are both finite; nil when fewer
    /// than two remain or either side is constant (ρ is undefined then).
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        let pairs = zip(x, y).filter { $0.0.isFinite && $0.1.isFinite }
        guard pairs.count >= 2 else { return nil }
        return pearson(averageRanks(pairs.map(\.0)), averageRanks(pairs.map(\.1)))
    }

    /// Pearson's correlation; nil when either side has no variance.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double? {
        let n = Double(min(x.count, y.count))
        guard n >= 2 else { return nil }
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        guard sxx > 0, syy > 0 else { return nil }
        return max(-1, min(1, sxy / (sxx * syy).squareRoot()))
    }
}
