// Elementwise loops written with SIMD16 vectors.
//
// The compiler does not vectorise the plain loops of the elementwise kernels
// by itself: their output may be their input (they run in place) and it cannot
// prove the pointers either equal or disjoint, so it emits one scalar at a
// time — a ReLU then took as long as the convolution before it. These helpers
// read a whole vector before writing it, which is right both in place and
// out of place (buffers never overlap partially).

@inline(__always)
func loadVector(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
func storeVector(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// y[i] = f(x[i]) for i < count; `vector` and `scalar` must compute the same function.
@inline(__always)
func mapElements(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                 vector: (SIMD16<Float>) -> SIMD16<Float>, scalar: (Float) -> Float) {
    var i = 0
    while i + 16 <= count {
        storeVector(vector(loadVector(x + i)), y + i)
        i += 16
    }
    while i < count { y[i] = scalar(x[i]); i += 1 }
}

/// y[i] = f(a[i], b[i]) for i < count.
///
/// A tail of 8 or more goes through the 16-lane function on half a vector of
/// padding lanes, which are computed and dropped: the 2×2 pool's rows (14 or 28
/// values on MNIST) would otherwise be mostly scalar.
@inline(__always)
func zipElements(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                 vector: (SIMD16<Float>, SIMD16<Float>) -> SIMD16<Float>, scalar: (Float, Float) -> Float) {
    var i = 0
    while i + 16 <= count {
        storeVector(vector(loadVector(a + i), loadVector(b + i)), y + i)
        i += 16
    }
    if i + 8 <= count {
        let lowA = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
        let lowB = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        let r = vector(SIMD16(lowHalf: lowA, highHalf: .zero), SIMD16(lowHalf: lowB, highHalf: .zero))
        UnsafeMutableRawPointer(y + i).storeBytes(of: r.lowHalf, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count { y[i] = scalar(a[i], b[i]); i += 1 }
}

/// dst[0..<count] = src[0..<count] for the short rows of im2col and padding,
/// inline: a library memmove call per 28-float row cost more than the copy.
@inline(__always)
func copyFloats(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count { storeVector(loadVector(src + i), dst + i); i += 16 }
    if i + 8 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self),
                                                    as: SIMD8<Float>.self)
        i += 8
    }
    if i + 4 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD4<Float>.self),
                                                    as: SIMD4<Float>.self)
        i += 4
    }
    while i < count { dst[i] = src[i]; i += 1 }
}

/// dst[0..<count] = 0, inline (see `copyFloats`).
@inline(__always)
func zeroFloats(_ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count { storeVector(SIMD16<Float>(), dst + i); i += 16 }
    while i < count { dst[i] = 0; i += 1 }
}

/// Lanes 0, 2, …, 14 of `a`, then of `b`. Spelled lane by lane, this
/// compiles to one two-source permute (vpermt2ps on AVX-512);
/// `SIMD32.evenHalf` of a 32-float load became chains of inserts and
/// permutes where inlined (the Winograd split) and a library call per
/// vector where not (the stride-2 im2col).
@inline(__always)
func evenLanes(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    SIMD16<Float>(a[0], a[2], a[4], a[6], a[8], a[10], a[12], a[14], b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14])
}

/// Lanes 1, 3, …, 15 of `a`, then of `b` (see `evenLanes`).
@inline(__always)
func oddLanes(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    SIMD16<Float>(a[1], a[3], a[5], a[7], a[9], a[11], a[13], a[15], b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15])
}
