/// A sum of doubles that is the same whatever order its terms are added in.
///
/// The per-image instance entropies of an analysis are summed by several
/// workers, each over the batches it happened to take, and the workers' sums
/// (and shards' partials) are then added together. Floating-point addition is
/// not associative, so summing doubles made the result depend on the thread
/// count, the batch size and the scheduling in its last bits. Here every term
/// is turned into a fixed-point integer in units of 2⁻⁶⁴ and added as an
/// integer, which is associative: any order, any split into workers or
/// shards, gives the same bits.
///
/// The terms lose nothing in the conversion as long as they are at least
/// 2⁻¹² (a double's 52 fraction bits then end at or above 2⁻⁶⁴): the sum is
/// then the exact sum of the doubles, rounded once when read (`value`).
/// Smaller terms are rounded to 2⁻⁶⁴ (an absolute error below 3·10⁻²⁰ each,
/// far below a double's resolution of any sum of entropies). The range is
/// ±2⁶³: a term of an analysis is an entropy (at most ~2¹², 4,096 bins with
/// the Miller–Madow correction), its square (2²⁴) or a class's size times an
/// entropy, so that even 2³¹ images fit with room to spare. Terms beyond the
/// range (never produced by an analysis, only by a damaged file) saturate, and
/// the validation of partials then refuses them as too large.
public struct ExactSum: Sendable, Hashable, BitwiseCopyable, CustomStringConvertible,
                        ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    /// The sum in units of 2⁻⁶⁴.
    public private(set) var fixed: Int128

    public static let zero = ExactSum(fixed: 0)
    /// Terms at or beyond this magnitude saturate (2⁶² leaves room to add).
    static let limit: Double = 0x1p62

    public init(fixed: Int128) { self.fixed = fixed }
    public init(_ value: Double) { fixed = ExactSum.fixedPoint(value) }
    public init(integerLiteral value: Int) { self.init(Double(value)) }
    public init(floatLiteral value: Double) { self.init(value) }

    /// The sum, rounded to the nearest double.
    public var value: Double { Double(fixed) * 0x1p-64 }

    public var description: String { "\(value)" }

    /// `x` in units of 2⁻⁶⁴, rounded to nearest (ties to even); ±2¹²⁶ for
    /// non-finite or out-of-range values (NaN as +).
    @inline(__always)
    static func fixedPoint(_ x: Double) -> Int128 {
        guard x.magnitude < limit else { return x < 0 ? -(Int128(1) << 126) : Int128(1) << 126 }
        // Scaling by a power of two is exact; the rounding is the only one.
        let r = (x * 0x1p64).rounded(.toNearestOrEven)
        guard r != 0 else { return 0 }
        // r is an integer below 2¹²⁶: its significand shifted by its exponent.
        let e = Int(r.exponent)
        let significand = Int128(r.significandBitPattern | (1 << 52))
        let m = e >= 52 ? significand << (e - 52) : significand >> (52 - e)
        return r < 0 ? -m : m
    }

    @inline(__always)
    public static func + (a: ExactSum, b: ExactSum) -> ExactSum { ExactSum(fixed: a.fixed &+ b.fixed) }

    @inline(__always)
    public static func += (a: inout ExactSum, b: ExactSum) { a.fixed &+= b.fixed }

    @inline(__always)
    public static func += (a: inout ExactSum, b: Double) { a.fixed &+= fixedPoint(b) }
}
