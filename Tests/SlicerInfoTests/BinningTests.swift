import Foundation
import XCTest
import CBinning
@testable import SlicerInfo

/// `referenceBin` and the fast `ChannelBinner` against SPEC §3's formula.
final class BinningTests: XCTestCase {
    /// ChannelBinner's bins (B for non-finite) and its non-finite count.
    private func fastBins(_ values: [Float], lo: Float, hi: Float, bins: Int) -> ([Int], Int) {
        let binner = ChannelBinner(bins: bins, lo: lo, hi: hi)
        var out = [Int32](repeating: -7, count: values.count)
        let nonFinite = values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { binner.bin(v.baseAddress!, count: values.count, into: $0.baseAddress!) }
        }
        return (out.map(Int.init), nonFinite)
    }

    /// The formula's bins, B for non-finite.
    private func specBins(_ values: [Float], lo: Float, hi: Float, bins: Int) -> [Int] {
        values.map { Naive.bin($0, lo: lo, hi: hi, bins: bins) ?? bins }
    }

    /// Edges lo + k(hi − lo)/B (computed in double, rounded to float) and their float neighbours.
    private func edgeValues(lo: Float, hi: Float, bins: Int, neighbours: Int = 3) -> [Float] {
        var out: [Float] = []
        for k in 0...bins {
            var e = Float(Double(lo) + Double(k) * (Double(hi) - Double(lo)) / Double(bins))
            out.append(e)
            var up = e, down = e
            for _ in 0..<neighbours { up = up.nextUp; down = down.nextDown; out += [up, down] }
            // The float at which the double-precision bin turns from k − 1 to k,
            // searched from the rounded edge (a few ulps at most; bounded anyway).
            if k > 0 && k < bins {
                func b(_ x: Float) -> Int { Naive.bin(x, lo: lo, hi: hi, bins: bins) ?? -1 }
                var steps = 0
                if b(e) >= k {
                    while steps < 64, b(e.nextDown) >= k { e = e.nextDown; steps += 1 }
                } else {
                    while steps < 64, b(e) < k { e = e.nextUp; steps += 1 }
                }
                out += [e, e.nextDown, e.nextUp]
            }
        }
        return out.filter(\.isFinite)
    }

    func testHiEqualsLoPutsEverythingInBinZero() {
        for bins in [2, 7, 64] {
            for v: Float in [3, -3, 1e30, -1e-30, 0, Float(3).nextUp] {
                XCTAssertEqual(referenceBin(v, lo: 3, hi: 3, bins: bins), 0)
            }
            XCTAssertNil(referenceBin(.nan, lo: 3, hi: 3, bins: bins))
            XCTAssertNil(referenceBin(.infinity, lo: 3, hi: 3, bins: bins))
            let values: [Float] = [3, 4, -100, .greatestFiniteMagnitude, .nan, -.infinity, 2]
            let (fast, nonFinite) = fastBins(values, lo: 3, hi: 3, bins: bins)
            XCTAssertEqual(fast, [0, 0, 0, 0, bins, bins, 0])
            XCTAssertEqual(nonFinite, 2)
        }
    }

    func testValuesOnEdgesAndOutsideTheRange() {
        // Hand-checked: [0, 1] in 4 bins, edges at exact binary fractions.
        let values: [Float] = [0, Float(0.25).nextDown, 0.25, Float(0.5).nextDown, 0.5, 0.75, Float(1).nextDown, 1, 1.5, -0.5, -.greatestFiniteMagnitude, .greatestFiniteMagnitude]
        let expected = [0, 0, 1, 1, 2, 3, 3, 3, 3, 0, 0, 3]
        XCTAssertEqual(values.map { referenceBin($0, lo: 0, hi: 1, bins: 4)! }, expected)
        XCTAssertEqual(fastBins(values, lo: 0, hi: 1, bins: 4).0, expected)
        // Negative range with a span that is not a binary fraction.
        let lo: Float = -7.3, hi: Float = -0.1
        for bins in [2, 7, 64, 256] {
            let edges = edgeValues(lo: lo, hi: hi, bins: bins)
            let outside: [Float] = [lo.nextDown, hi.nextUp, lo - 1, hi + 1, -1e30, 1e30, 0, -0.0]
            let all = edges + outside
            let spec = specBins(all, lo: lo, hi: hi, bins: bins)
            XCTAssertEqual(all.map { referenceBin($0, lo: lo, hi: hi, bins: bins)! }, spec)
            XCTAssertEqual(fastBins(all, lo: lo, hi: hi, bins: bins).0, spec)
            XCTAssertEqual(spec.suffix(outside.count), [0, bins - 1, 0, bins - 1, 0, bins - 1, bins - 1, bins - 1])
            XCTAssertEqual(referenceBin(lo, lo: lo, hi: hi, bins: bins), 0)
            XCTAssertEqual(referenceBin(hi, lo: lo, hi: hi, bins: bins), bins - 1, "hi itself is in the last bin")
        }
    }

    func testNonFiniteValuesAreNotBinned() {
        for v: Float in [.nan, -.nan, .infinity, -.infinity, .signalingNaN] {
            XCTAssertNil(referenceBin(v, lo: -1, hi: 1, bins: 8))
        }
        let values: [Float] = [0.1, .nan, -0.9, .infinity, -.infinity, 0.99, .signalingNaN]
        let (fast, nonFinite) = fastBins(values, lo: -1, hi: 1, bins: 8)
        XCTAssertEqual(fast, [4, 8, 0, 8, 8, 7, 8])
        XCTAssertEqual(nonFinite, 4)
        // Only finite values: nothing counted.
        XCTAssertEqual(fastBins([0.1, 0.2, 5], lo: -1, hi: 1, bins: 8).1, 0)
    }

    /// The fast path claims exactly the formula's bins for every value; this
    /// tries many ranges (negative, tiny and huge spans) and adversarial values.
    func testChannelBinnerEqualsFormulaOnRandomRanges() {
        var rng = SplitMix64(seed: 2024)
        var mismatches: [String] = []
        var checked = 0
        func randomRange(_ kind: Int) -> (Float, Float) {
            switch kind {
            case 0:   // ordinary, possibly negative
                let a = Float.random(in: -20...20, using: &rng), s = Float.random(in: 1e-3...50, using: &rng)
                return (a, a + s)
            case 1:   // entirely negative
                let h = -Float.random(in: 0...1000, using: &rng)
                return (h - Float.random(in: 0.01...1000, using: &rng), h)
            case 2:   // tiny span: a few to a few thousand ulps
                let a = Float.random(in: -100...100, using: &rng)
                var b = a
                for _ in 0..<Int.random(in: 1...3000, using: &rng) { b = b.nextUp }
                return (a, b)
            case 3:   // tiny magnitudes
                let a = Float.random(in: -1e-30...1e-30, using: &rng)
                return (a, a + Float.random(in: 1e-33...1e-30, using: &rng))
            case 4:   // huge span
                let s = Float.random(in: 1e20...1e37, using: &rng)
                let a = Float.random(in: -1...1, using: &rng) * s
                return (a, a + s)
            case 5:   // post-ReLU style [0, x]
                return (0, Float.random(in: 0.001...100, using: &rng))
            default:  // large offset, small span: edges far from zero
                let a = Float.random(in: 1e4...1e6, using: &rng)
                return (a, a + Float.random(in: 0.5...10, using: &rng))
            }
        }
        for trial in 0..<1400 {
            let (lo, hi) = randomRange(trial % 7)
            guard lo < hi, lo.isFinite, hi.isFinite else { continue }
            let bins = [2, 7, 64, 256][trial % 4]
            let span = Double(hi) - Double(lo)
            var values = edgeValues(lo: lo, hi: hi, bins: bins, neighbours: 2)
            for _ in 0..<300 {
                values.append(Float(Double(lo) + Double.random(in: -0.2...1.2, using: &rng) * span))
            }
            if trial % 5 == 0 { values += [.nan, .infinity, -.infinity] }
            values.shuffle(using: &rng)
            let spec = specBins(values, lo: lo, hi: hi, bins: bins)
            let (fast, nonFinite) = fastBins(values, lo: lo, hi: hi, bins: bins)
            XCTAssertEqual(nonFinite, values.filter { !$0.isFinite }.count)
            for i in values.indices {
                checked += 1
                XCTAssertEqual(referenceBin(values[i], lo: lo, hi: hi, bins: bins) ?? bins, spec[i])
                if fast[i] != spec[i] && mismatches.count < 10 {
                    mismatches.append("v=\(values[i]) lo=\(lo) hi=\(hi) B=\(bins): fast \(fast[i]) formula \(spec[i])")
                }
            }
        }
        XCTAssert(mismatches.isEmpty, "ChannelBinner differs from the formula:\n" + mismatches.joined(separator: "\n"))
        XCTAssertGreaterThan(checked, 500_000)
    }

    /// Ranges at the ends of float32: spans above Float.greatestFiniteMagnitude
    /// (where v − lo overflows in float) and subnormal spans (where B/span overflows).
    func testChannelBinnerAtExtremeRanges() {
        let ranges: [(Float, Float)] = [
            (-3e38, 3e38), (-.greatestFiniteMagnitude, .greatestFiniteMagnitude), (-2e38, 1.9e38),
            (0, 1e-40), (-1e-42, 1e-42), (0, Float.leastNonzeroMagnitude * 2), (1e-38, 1.2e-38),
            (-1e38, 3e38),
        ]
        var mismatches: [String] = []
        for (lo, hi) in ranges {
            for bins in [2, 7, 64, 256] {
                let span = Double(hi) - Double(lo)
                var values = edgeValues(lo: lo, hi: hi, bins: bins, neighbours: 1)
                values += (0...100).map { Float(Double(lo) + Double($0) / 100 * span) }
                let spec = specBins(values, lo: lo, hi: hi, bins: bins)
                let fast = fastBins(values, lo: lo, hi: hi, bins: bins).0
                let bad = values.indices.filter { fast[$0] != spec[$0] }
                if let i = bad.first {
                    mismatches.append("\(bad.count) of \(values.count) values, e.g. v=\(values[i]) lo=\(lo) hi=\(hi) B=\(bins): fast \(fast[i]) formula \(spec[i])")
                }
            }
        }
        XCTAssert(mismatches.isEmpty, "ChannelBinner differs from the formula:\n" + mismatches.joined(separator: "\n"))
    }

    // MARK: The fused AVX-512 kernel (CBinning)

    /// Every lower edge the kernel compares against is the first float of its bin.
    func testLowerEdgesAreTheFirstFloatOfEachBin() {
        var rng = SplitMix64(seed: 77)
        for trial in 0..<300 {
            let lo = Float.random(in: -50...50, using: &rng)
            let hi = trial % 3 == 0 ? lo + Float.random(in: 1e-4...1e-2, using: &rng) : lo + Float.random(in: 0.1...500, using: &rng)
            let bins = [2, 16, 33, 64][trial % 4]
            for b in 1..<bins {
                let e = ChannelBinner.lowerEdge(of: b, lo: lo, hi: hi, bins: bins)
                XCTAssertGreaterThanOrEqual(referenceBin(e, lo: lo, hi: hi, bins: bins) ?? -1, b)
                XCTAssertLessThan(referenceBin(e.nextDown, lo: lo, hi: hi, bins: bins) ?? -1, b, "lo \(lo) hi \(hi) B \(bins) b \(b)")
            }
        }
        XCTAssertEqual(ChannelBinner.lowerEdge(of: 1, lo: 2, hi: 2, bins: 8), .infinity, "hi == lo: nothing leaves bin 0")
    }

    /// The kernel's histogram (summed over its sub-histograms) equals the
    /// formula's, for the table path (≤ 64 bins) and the doubt-test path, with
    /// and without skipping bin 0, with 4 and 8 sub-histograms, for lengths
    /// with and without a partial last vector.
    func testFusedKernelCountsEqualTheFormula() throws {
        guard cnns_bin_has_avx512() != 0 else { throw XCTSkip("no AVX-512 here: the portable path is the one in use") }
        var rng = SplitMix64(seed: 99)
        var mismatches: [String] = []
        let ranges: [(Float, Float)] = [(-1.5, 2.5), (0, 3.75), (0, 1e-3), (1e5, 1e5 + 3), (-7, -6.5), (2, 2), (-1e-30, 1e-30),
                                        (0, 1), (-3e37, 3e37), (0, Float(1).nextUp)]
        for (r, (lo, hi)) in ranges.enumerated() {
            for bins in [2, 7, 16, 31, 64, 65, 256] {
                let binner = ChannelBinner(bins: bins, lo: lo, hi: hi)
                guard var range = binner.vectorRange else { continue }
                let span = Double(hi) - Double(lo)
                var values = hi > lo ? edgeValues(lo: lo, hi: hi, bins: bins, neighbours: 2) : []
                for _ in 0..<400 { values.append(Float(Double(lo) + Double.random(in: -0.3...1.3, using: &rng) * span)) }
                values += [Float](repeating: 0, count: 100) + [lo, hi, .nan, .infinity, -.infinity, -0.0]
                values.shuffle(using: &rng)
                for count in [values.count, 1, 15, 16, 17, 49] where count <= values.count {
                    let slice = Array(values.prefix(count))
                    var expected = [Int32](repeating: 0, count: bins + 1)
                    for v in slice { expected[Naive.bin(v, lo: lo, hi: hi, bins: bins) ?? bins] += 1 }
                    for skip in [Int32(0), 1] {
                        for subs in [4, 8] {
                            range.skip_zero_bin = skip
                            let stride = histogramStride(bins: bins)
                            var hist = [Int32](repeating: 0, count: 8 * stride)
                            var scratch = [Int32](repeating: 0, count: count + 16)
                            slice.withUnsafeBufferPointer { x in
                                cnns_bin_count_avx512(x.baseAddress!, count, &range, &hist, stride, Int32(subs), &scratch)
                            }
                            let got = (0...bins).map { b in (0..<subs).reduce(Int32(0)) { $0 + hist[$1 * stride + b] } }
                            if got != expected && mismatches.count < 10 {
                                mismatches.append("range \(r) [\(lo), \(hi)] B=\(bins) n=\(count) skip=\(skip) subs=\(subs)")
                            }
                            let outside = (0..<(8 * stride)).filter { $0 % stride > bins || $0 / stride >= subs }
                            XCTAssertTrue(outside.allSatisfy { hist[$0] == 0 }, "counts outside the used slots")
                        }
                    }
                }
            }
        }
        XCTAssert(mismatches.isEmpty, "fused kernel differs from the formula:\n" + mismatches.joined(separator: "\n"))
    }
}
