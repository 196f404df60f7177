import Foundation
import XCTest
@testable import SlicerInfo

/// Spearman's ρ with ties (the entropy-vs-CAR scatter) against closed forms and
/// a straightforward reference: ranks by counting, Pearson from raw sums.
final class RankCorrelationTests: XCTestCase {
    /// Average rank by definition: 1 + (values below) + (values equal − 1)/2.
    private func referenceRanks(_ v: [Double]) -> [Double] {
        v.map { x in
            let below = v.filter { $0 < x }.count, equal = v.filter { $0 == x }.count
            return 1 + Double(below) + Double(equal - 1) / 2
        }
    }

    /// Pearson from n·Σxy − Σx·Σy over the square roots (a different arrangement from the code's).
    private func referencePearson(_ x: [Double], _ y: [Double]) -> Double {
        let n = Double(x.count)
        let sx = x.reduce(0, +), sy = y.reduce(0, +)
        let sxy = zip(x, y).map(*).reduce(0, +), sxx = x.map { $0 * $0 }.reduce(0, +), syy = y.map { $0 * $0 }.reduce(0, +)
        return (n * sxy - sx * sy) / ((n * sxx - sx * sx) * (n * syy - sy * sy)).squareRoot()
    }

    func testClosedForms() {
        // Monotone transforms: ρ = ±1 whatever the spacing.
        let x: [Double] = [0.1, 0.5, 0.7, 2, 9]
        XCTAssertEqual(RankCorrelation.spearman(x, x.map { exp($0) })!, 1, accuracy: 1e-12)
        XCTAssertEqual(RankCorrelation.spearman(x, x.map { -$0 * $0 })!, -1, accuracy: 1e-12)
        // No ties: 1 − 6Σd²/(n(n²−1)); d = (−1, 1, −1, 1, 0) → 1 − 24/120 = 0.8.
        XCTAssertEqual(RankCorrelation.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])!, 0.8, accuracy: 1e-12)
        // Ties: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4) give 4.5/√(4.5·5) = 3/√10.
        XCTAssertEqual(RankCorrelation.spearman([1, 2, 2, 3], [1, 2, 3, 4])!, 3 / 10.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(RankCorrelation.averageRanks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
        XCTAssertEqual(RankCorrelation.averageRanks([5, 5, 5]), [2, 2, 2])
        // Undefined: a constant side, fewer than two pairs.
        XCTAssertNil(RankCorrelation.spearman([1, 2, 3], [4, 4, 4]))
        XCTAssertNil(RankCorrelation.spearman([1], [2]))
        // Non-finite pairs are left out.
        XCTAssertEqual(RankCorrelation.spearman([1, .nan, 2, 3], [1, 5, 2, 3])!, 1, accuracy: 1e-12)
    }

    func testAgainstReferenceWithManyTies() {
        var rng = SplitMix64(seed: 2026)
        for trial in 0..<200 {
            let n = 2 + Int(rng.next() % 60)
            // Few distinct values, as CAR in whole images and quantised entropies give.
            let levels = 1 + Int(rng.next() % 6)
            let x = (0..<n).map { _ in Double(rng.next() % UInt64(levels)) * 0.25 }
            let y = (0..<n).map { i in x[i] * (trial % 2 == 0 ? 1 : -1) + Double(rng.next() % 3) }
            let rx = referenceRanks(x), ry = referenceRanks(y)
            XCTAssertEqual(RankCorrelation.averageRanks(x), rx, "trial \(trial)")
            guard Set(x).count > 1, Set(y).count > 1 else {
                XCTAssertNil(RankCorrelation.spearman(x, y), "trial \(trial)")
                continue
            }
            XCTAssertEqual(RankCorrelation.spearman(x, y)!, referencePearson(rx, ry), accuracy: 1e-9, "trial \(trial)")
        }
    }
}
