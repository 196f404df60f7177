import XCTest
@testable import SlicerEngine
@testable import SlicerONNX

// The vectorised MaxPool / AveragePool (phase planes, PhasePlanes.swift)
// against a straightforward Float reference in the kernel's order: taps inside
// the input in row-major order, the max from −∞ taking a value only when it is
// larger, the sum from zero divided by the window's count (count_include_pad:
// taps inside the padded border). Values must match bit for bit.

final class PoolKernelTests: XCTestCase {
    struct Case {
        var channels = 2
        var h: Int
        var w: Int
        var kernel = (3, 3)
        var stride = (2, 2)
        var dilation = (1, 1)
        /// top, left, bottom, right
        var pads = [1, 1, 1, 1]
        var ceil = false
        var label: String { "\(channels)x\(h)x\(w) k\(kernel) s\(stride) d\(dilation) pads \(pads) ceil \(ceil)" }
    }

    /// Output size as ONNX defines it (a ceil_mode window starting in the right padding is dropped).
    func outSize(_ input: Int, _ k: Int, _ s: Int, _ d: Int, _ p0: Int, _ p1: Int, _ ceil: Bool) -> Int {
        let span = input + p0 + p1 - ((k - 1) * d + 1)
        var out = (ceil ? (span + s - 1) / s : span / s) + 1
        if ceil && (out - 1) * s >= input + p0 { out -= 1 }
        return out
    }

    func reference(_ c: Case, max isMax: Bool, includePad: Bool, x: [Float], images: Int) -> (values: [Float], oh: Int, ow: Int) {
        let (kh, kw) = c.kernel, (sh, sw) = c.stride, (dh, dw) = c.dilation
        let oh = outSize(c.h, kh, sh, dh, c.pads[0], c.pads[2], c.ceil)
        let ow = outSize(c.w, kw, sw, dw, c.pads[1], c.pads[3], c.ceil)
        var y = [Float]()
        for plane in 0..<images * c.channels {
            for r in 0..<oh {
                for q in 0..<ow {
                    var best = -Float.infinity, sum: Float = 0
                    var inside = 0, rowsInPad = 0, colsInPad = 0
                    for ki in 0..<kh where r * sh - c.pads[0] + ki * dh < c.h + c.pads[2] { rowsInPad += 1 }
                    for kj in 0..<kw where q * sw - c.pads[1] + kj * dw < c.w + c.pads[3] { colsInPad += 1 }
                    for ki in 0..<kh {
                        for kj in 0..<kw {
                            let iy = r * sh - c.pads[0] + ki * dh, ix = q * sw - c.pads[1] + kj * dw
                            guard iy >= 0 && iy < c.h && ix >= 0 && ix < c.w else { continue }
                            let v = x[(plane * c.h + iy) * c.w + ix]
                            if v > best { best = v }
                            sum += v
                            inside += 1
                        }
                    }
                    let count = includePad ? rowsInPad * colsInPad : inside
                    y.append(isMax ? best : (count > 0 ? sum / Float(count) : 0))
                }
            }
        }
        return (y, oh, ow)
    }

    func check(_ c: Case, op: String, includePad: Bool = false, images: Int = 2, opset: Int = 13,
               file: StaticString = #filePath, line: UInt = #line) throws {
        var attributes: [String: ONNXAttribute] = [
            "kernel_shape": .ints([c.kernel.0, c.kernel.1]), "strides": .ints([c.stride.0, c.stride.1]),
            "pads": .ints(c.pads), "ceil_mode": .int(c.ceil ? 1 : 0)]
        if c.dilation != (1, 1) { attributes["dilations"] = .ints([c.dilation.0, c.dilation.1]) }
        if op == "AveragePool" { attributes["count_include_pad"] = .int(includePad ? 1 : 0) }
        let model = flattened([node(op, "pool", ["x"], attributes)], input: [c.channels, c.h, c.w], tapped: "pool",
                              opset: opset)
        let label = "\(op) \(c.label) include pad \(includePad)"
        let executor = try Network(model: model).makeExecutor(capacity: images)
        let kernel = try XCTUnwrap(executor.plan.steps.compactMap { $0.kernel as? PoolKernel }.first, label,
                                   file: file, line: line)
        XCTAssertNotNil(kernel.planes, "\(label): the vectorised path", file: file, line: line)
        let out = try execute(model, count: images, seed: UInt64(c.h * 64 + c.w))
        let want = reference(c, max: op == "MaxPool", includePad: includePad, x: out.input, images: images)
        XCTAssertEqual(out.shapes["pool"], [c.channels, want.oh, want.ow], label, file: file, line: line)
        let got = out.tap("pool")
        guard got.count == want.values.count else {
            return XCTFail("\(label): \(got.count) values, expected \(want.values.count)", file: file, line: line)
        }
        if let i = got.indices.first(where: { got[$0].bitPattern != want.values[$0].bitPattern }) {
            XCTFail("\(label): value \(i) is \(got[i]), the reference \(want.values[i])", file: file, line: line)
        }
    }

    func testEveryRowWidthAndVectorRemainder() throws {
        // Widths 1…40: the flat run and every remainder of whole-vector rows.
        for w in 1...40 {
            try check(Case(h: 3 + w % 5, w: w), op: "MaxPool")
            try check(Case(h: 4, w: w, stride: (1, 1)), op: "MaxPool")
            try check(Case(h: 5, w: w), op: "AveragePool", includePad: w % 2 == 0)
        }
    }

    func testResNetStemAndImageSizes() throws {
        // ResNet's 3×3/2 max pool after the stem (112 → 56), and odd sizes.
        for side in [1, 2, 7, 14, 28, 56, 112, 113] {
            try check(Case(channels: 2, h: side, w: side), op: "MaxPool", images: 1)
            guard side > 1 else { continue }
            try check(Case(channels: 2, h: side, w: side, kernel: (2, 2), pads: [0, 0, 0, 0], ceil: true), op: "MaxPool",
                      images: 1)
        }
    }

    func testPadsCeilModeDilationsAndDivisors() throws {
        let cases = [
            Case(h: 9, w: 21, pads: [0, 0, 0, 0]),
            Case(h: 10, w: 19, kernel: (5, 5), stride: (1, 1), pads: [2, 2, 2, 2]),
            Case(h: 11, w: 30, pads: [0, 2, 1, 0]),
            Case(h: 12, w: 17, kernel: (3, 2), pads: [2, 0, 0, 1]),
            Case(h: 13, w: 33, stride: (2, 1), pads: [1, 0, 0, 1], ceil: true),
            Case(h: 8, w: 35, stride: (3, 3), pads: [2, 1, 1, 2], ceil: true),
            Case(h: 7, w: 7, kernel: (2, 2), pads: [1, 1, 1, 1], ceil: true),
            Case(h: 6, w: 22, kernel: (3, 3), pads: [1, 1, 1, 1], ceil: true),
            Case(h: 8, w: 8, kernel: (2, 2), pads: [1, 1, 0, 0]),
        ]
        for c in cases {
            try check(c, op: "MaxPool")
            try check(c, op: "AveragePool", includePad: false)
            try check(c, op: "AveragePool", includePad: true)
        }
        let dilated = Case(h: 10, w: 29, kernel: (2, 3), stride: (1, 2), dilation: (2, 2), pads: [1, 1, 1, 1], ceil: true)
        try check(dilated, op: "MaxPool")
        try check(dilated, op: "AveragePool", includePad: true, opset: 19)
    }

    func testMaxPoolOfNegativeValuesIgnoresThePadding() throws {
        // All inputs negative: a padding tap read as 0 would win every border window.
        let c = Case(h: 20, w: 20)
        let model = flattened([node("MaxPool", "pool", ["x"], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]),
                                                                 "pads": .ints(c.pads)])],
                              input: [c.channels, c.h, c.w], tapped: "pool")
        let out = try execute(model, count: 1, range: -3 ... -1)
        XCTAssertTrue(out.tap("pool").allSatisfy { $0 <= -1 }, "padding leaked into MaxPool")
    }
}
