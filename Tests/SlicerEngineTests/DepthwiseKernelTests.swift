import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

// The direct depthwise convolution (DepthwiseConvolution.swift) against a
// straightforward reference that sums in the kernel's documented order: from
// zero, Σ over (ki, kj) row-major of fused multiply-adds (padding taps add a
// product with zero), then plus the bias. The values must be bit-identical:
// the analysis shows these activations, and they must not change when the
// kernel gets faster.

final class DepthwiseKernelTests: XCTestCase {
    struct Case {
        var channels = 2
        var h: Int
        var w: Int
        var kernel = (3, 3)
        var stride = (1, 1)
        var dilation = (1, 1)
        /// top, left, bottom, right
        var pads = [1, 1, 1, 1]
        var multiplier = 1
        var bias = true
        /// A Clip after the convolution (fused into the depthwise kernel's stores).
        var clip: (Float, Float)? = nil
        var label: String {
            "\(channels)x\(h)x\(w) k\(kernel) s\(stride) d\(dilation) pads \(pads) ×\(multiplier) bias \(bias) clip \(String(describing: clip))"
        }
    }

    /// The reference in the kernel's order, in Float with fused multiply-adds.
    func reference(_ c: Case, x: [Float], weights: [Float], bias: [Float]?, images: Int) -> (values: [Float], oh: Int, ow: Int) {
        let (kh, kw) = c.kernel, (sh, sw) = c.stride, (dh, dw) = c.dilation
        let oh = (c.h + c.pads[0] + c.pads[2] - (kh - 1) * dh - 1) / sh + 1
        let ow = (c.w + c.pads[1] + c.pads[3] - (kw - 1) * dw - 1) / sw + 1
        let m = c.channels * c.multiplier
        var y = [Float](repeating: 0, count: images * m * oh * ow)
        for n in 0..<images {
            for o in 0..<m {
                let ch = o / c.multiplier
                for r in 0..<oh {
                    for q in 0..<ow {
                        var acc: Float = 0
                        for ki in 0..<kh {
                            for kj in 0..<kw {
                                let iy = r * sh - c.pads[0] + ki * dh, ix = q * sw - c.pads[1] + kj * dw
                                let inside = iy >= 0 && iy < c.h && ix >= 0 && ix < c.w
                                let v = inside ? x[((n * c.channels + ch) * c.h + iy) * c.w + ix] : 0
                                acc.addProduct(weights[(o * kh + ki) * kw + kj], v)
                            }
                        }
                        if let bias { acc += bias[o] }
                        y[((n * m + o) * oh + r) * ow + q] = acc
                    }
                }
            }
        }
        return (y, oh, ow)
    }

    /// Runs the case through the engine and compares every value bit for bit.
    /// Returns the depthwise kernel the plan chose.
    @discardableResult
    func check(_ c: Case, images: Int = 2, seed: UInt64 = 11, file: StaticString = #filePath, line: UInt = #line) throws -> DepthwiseConvKernel? {
        let m = c.channels * c.multiplier
        let weights = randomFloats(m * c.kernel.0 * c.kernel.1, seed: seed, in: -1...1)
        let bias = c.bias ? randomFloats(m, seed: seed + 1, in: -1...1) : nil
        var inits = [ONNXTensor(name: "W", dims: [m, 1, c.kernel.0, c.kernel.1], floats: weights)]
        var inputs = ["x", "W"]
        if let bias { inits.append(ONNXTensor(name: "B", dims: [m], floats: bias)); inputs.append("B") }
        let conv = node("Conv", "dw", inputs, [
            "kernel_shape": .ints([c.kernel.0, c.kernel.1]), "strides": .ints([c.stride.0, c.stride.1]),
            "dilations": .ints([c.dilation.0, c.dilation.1]), "pads": .ints(c.pads), "group": .int(c.channels)])
        var nodes = [conv], last = "dw"
        if let (lo, hi) = c.clip {
            inits += [ONNXTensor(name: "lo", dims: [], floats: [lo]), ONNXTensor(name: "hi", dims: [], floats: [hi])]
            nodes.append(node("Clip", "act", ["dw", "lo", "hi"]))
            last = "act"
        }
        let model = flattened(nodes, inits, input: [c.channels, c.h, c.w], tapped: last)
        let executor = try Network(model: model).makeExecutor(capacity: images)
        let kernel = try XCTUnwrap(executor.plan.steps.compactMap { $0.kernel as? ConvKernel }.first, c.label, file: file, line: line)
        XCTAssertNotNil(kernel.depthwise, "\(c.label): the direct depthwise kernel", file: file, line: line)
        let out = try execute(model, count: images, seed: seed + 2)
        var want = reference(c, x: out.input, weights: weights, bias: bias, images: images)
        if let (lo, hi) = c.clip { want.values = want.values.map { min(hi, max(lo, $0)) } }
        let got = out.tap(last)
        XCTAssertEqual(out.shapes[last], [m, want.oh, want.ow], c.label, file: file, line: line)
        guard got.count == want.values.count else {
            XCTFail("\(c.label): \(got.count) values, expected \(want.values.count)", file: file, line: line)
            return kernel.depthwise
        }
        if let i = got.indices.first(where: { got[$0].bitPattern != want.values[$0].bitPattern }) {
            XCTFail("\(c.label): value \(i) is \(got[i]), the reference in the same order \(want.values[i])",
                    file: file, line: line)
        }
        return kernel.depthwise
    }

    /// Narrow planes, 3×3 stride 1, computed a row per vector (16 lanes for
    /// rows of 9–15 outputs, 8 up to 8): every row width, heights from 1 (the
    /// last row is also the first) up, pads that make rows wider or narrower
    /// than the input, batch 3 (a row's dropped lanes must not reach the next
    /// channel or image), odd channel counts, with and without a clip.
    func testRowPerVectorPlanes() throws {
        for ow in 1...15 {
            for h in [1, 2, 3, 7, 14] {
                for pads in [[1, 1, 1, 1], [0, 0, 0, 0], [2, 2, 2, 2], [0, 2, 1, 0]] {
                    let w = ow + 2 - pads[1] - pads[3], oh = h + pads[0] + pads[2] - 2
                    guard w >= 1, oh >= 1 else { continue }
                    let clip: (Float, Float)? = (ow + h) % 2 == 0 ? (0, 0.5) : nil
                    let c = Case(channels: 3 + ow % 3, h: h, w: w, pads: pads, bias: h != 2, clip: clip)
                    let dw = try check(c, images: 3, seed: UInt64(ow * 31 + h))
                    XCTAssertEqual(dw?.rowVectors, true, "\(c.label): a row per vector")
                }
            }
        }
        // 16 outputs per row or stride 2: the other paths.
        XCTAssertEqual(try check(Case(h: 5, w: 16)).map(\.rowVectors), false)
        XCTAssertEqual(try check(Case(h: 5, w: 14, stride: (2, 2))).map(\.rowVectors), false)
    }

    func testEveryRowWidthAndVectorRemainder() throws {
        // Widths 1…40 cover the flat run (< 16 outputs per row) and every
        // remainder of rows of whole vectors, at strides 1 and 2.
        for w in 1...40 {
            try check(Case(h: 3 + w % 4, w: w))
            try check(Case(h: 5, w: w, stride: (2, 2)))
        }
    }

    func testPlaneSizesOfImageNetNetworks() throws {
        for side in [1, 2, 7, 14, 28, 56, 112, 113] {
            try check(Case(channels: 3, h: side, w: side), images: 1)
            try check(Case(channels: 3, h: side, w: side, stride: (2, 2)), images: 1)
        }
    }

    func testPadsKernelsStridesDilationsMultipliers() throws {
        let cases = [
            Case(h: 9, w: 21, pads: [0, 0, 0, 0]),
            Case(h: 10, w: 19, pads: [2, 2, 2, 2]),
            Case(h: 11, w: 30, pads: [0, 2, 1, 0]),
            Case(h: 12, w: 17, stride: (2, 2), pads: [0, 1, 2, 0]),
            Case(h: 13, w: 33, stride: (2, 1), pads: [1, 0, 0, 1], bias: false),
            Case(h: 9, w: 35, stride: (1, 3), pads: [2, 1, 1, 2]),
            Case(h: 15, w: 15, kernel: (5, 5), pads: [2, 2, 2, 2]),
            Case(h: 28, w: 28, kernel: (5, 5), stride: (2, 2), pads: [1, 2, 2, 1]),
            Case(h: 14, w: 40, kernel: (5, 3), dilation: (2, 2), pads: [3, 1, 0, 2]),
            Case(channels: 3, h: 8, w: 18, multiplier: 2),
            Case(channels: 2, h: 7, w: 7, stride: (2, 2), multiplier: 3, bias: false),
            Case(h: 6, w: 45, kernel: (1, 1), pads: [0, 0, 0, 0]),
        ]
        for c in cases { try check(c) }
    }

    /// The reference can tell a different summation order apart: adding the
    /// bias first changes some values' last bits, so the bit-for-bit check
    /// above does test the order.
    func testReferenceOrderMatters() {
        let c = Case(h: 16, w: 16)
        let x = randomFloats(2 * 16 * 16, seed: 5)
        let weights = randomFloats(18, seed: 6), bias = randomFloats(2, seed: 7)
        let ordered = reference(c, x: x, weights: weights, bias: bias, images: 1).values
        let biasFirst = reference(c, x: x, weights: weights, bias: nil, images: 1).values.enumerated().map { i, v in
            v + bias[i / 256]
        }
        XCTAssertEqual(ordered, biasFirst, "same order, same values")
        var seeded = [Float]()
        for o in 0..<2 {
            for r in 0..<16 {
                for q in 0..<16 {
                    var acc = bias[o]
                    for ki in 0..<3 {
                        for kj in 0..<3 {
                            let iy = r - 1 + ki, ix = q - 1 + kj
                            let v: Float = iy >= 0 && iy < 16 && ix >= 0 && ix < 16 ? x[(o * 16 + iy) * 16 + ix] : 0
                            acc.addProduct(weights[o * 9 + ki * 3 + kj], v)
                        }
                    }
                    seeded.append(acc)
                }
            }
        }
        XCTAssertNotEqual(ordered.map(\.bitPattern), seeded.map(\.bitPattern), "another order changes some bits")
    }
}
