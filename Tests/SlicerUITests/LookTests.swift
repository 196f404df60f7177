// Colour maps, palette, themes, ticks and number formatting.

import XCTest
@testable import SlicerUI

final class LookTests: XCTestCase {
    func testOKLabRoundTripsAndHasNeutralGreys() {
        for hex: UInt32 in [0x000000, 0xFFFFFF, 0x1F74BF, 0xE85A48, 0x808080, 0x2FA29D] {
            let c = Color(hex: hex)
            let back = OKLab(c).color
            XCTAssertLessThanOrEqual(abs(Int(back.r) - Int(c.r)) + abs(Int(back.g) - Int(c.g)) + abs(Int(back.b) - Int(c.b)), 3, "\(c)")
        }
        let white = OKLab(.white)
        XCTAssertEqual(white.l, 1, accuracy: 1e-3)
        XCTAssertEqual(white.chroma, 0, accuracy: 1e-3)
        XCTAssertEqual(OKLab(.black).l, 0, accuracy: 1e-3)
        XCTAssertFalse(OKLab(l: 0.5, chroma: 0.4, hueDegrees: 140).isInGamut)
        XCTAssertTrue(OKLab(l: 0.5, chroma: 0.4, hueDegrees: 140).gamutMapped.isInGamut)
    }

    func testSequentialMapRisesSteadilyInLightness() {
        let map = ColorMap.sequential
        XCTAssertEqual(map.table.count, 256)
        let lightness = map.table.map { OKLab($0).l }
        XCTAssertLessThan(lightness[0], 0.3)
        XCTAssertGreaterThan(lightness[255], 0.88)
        // Monotonic at every 8th entry (8-bit rounding may wobble between neighbours).
        for i in stride(from: 8, to: 256, by: 8) { XCTAssertGreaterThan(lightness[i], lightness[i - 8]) }
        // Near-uniform: no quarter of the map carries much more or less contrast than another.
        let quarters = (0..<4).map { q in lightness[min(255, (q + 1) * 64)] - lightness[q * 64] }
        XCTAssertLessThan((quarters.max() ?? 0) / (quarters.min() ?? 1), 1.35)
        XCTAssertTrue(map.table.allSatisfy { $0.a == 255 })
        XCTAssertEqual(map.color(at: .nan), map.missing)
        XCTAssertEqual(map.color(for: 8, in: 0...8), map.table[255])
        XCTAssertEqual(map.color(for: -5, in: 0...8), map.table[0], "values below the range clamp")
    }

    func testDivergingMapIsSymmetricAroundALightCentre() {
        let map = ColorMap.diverging
        let low = OKLab(map.color(at: 0)), mid = OKLab(map.color(at: 0.5)), high = OKLab(map.color(at: 1))
        XCTAssertEqual(low.l, high.l, accuracy: 0.03)
        XCTAssertGreaterThan(mid.l, 0.9)
        XCTAssertLessThan(mid.chroma, 0.03)
        XCTAssertLessThan(low.b, 0, "the low end is blue")
        XCTAssertGreaterThan(high.a, 0, "the high end is red")
        for t in stride(from: Float(0.05), through: 0.45, by: 0.1) {
            XCTAssertEqual(OKLab(map.color(at: 0.5 - t)).l, OKLab(map.color(at: 0.5 + t)).l, accuracy: 0.04)
        }
    }

    func testCategoricalPaletteStaysDistinctForColourBlindViewers() {
        let colors = CategoricalPalette.standard.colors
        XCTAssertGreaterThanOrEqual(colors.count, 10)
        let labs = colors.map(OKLab.init)
        var minFull: Float = .infinity, minRedGreenBlind: Float = .infinity, minBlueYellowBlind: Float = .infinity
        for i in labs.indices {
            for j in labs.indices where j > i {
                let a = labs[i], b = labs[j]
                minFull = min(minFull, a.distance(to: b))
                // Proxies: red–green colour blindness loses the a axis, tritanopia the b axis.
                minRedGreenBlind = min(minRedGreenBlind, ((a.l - b.l) * (a.l - b.l) + (a.b - b.b) * (a.b - b.b)).squareRoot())
                minBlueYellowBlind = min(minBlueYellowBlind, ((a.l - b.l) * (a.l - b.l) + (a.a - b.a) * (a.a - b.a)).squareRoot())
            }
        }
        XCTAssertGreaterThan(minFull, 0.1)
        XCTAssertGreaterThan(minRedGreenBlind, 0.08)
        XCTAssertGreaterThan(minBlueYellowBlind, 0.08)
        // Readable as lines on both dark and light backgrounds.
        XCTAssertTrue(labs.allSatisfy { $0.l >= 0.5 && $0.l <= 0.9 })
        XCTAssertEqual(CategoricalPalette.standard.color(at: colors.count + 1), colors[1])
    }

    func testThemesKeepTextReadable() {
        for theme in Theme.all {
            let c = theme.colors
            XCTAssertGreaterThanOrEqual(c.text.contrastRatio(with: c.panel), 7, theme.name)
            XCTAssertGreaterThanOrEqual(c.text.contrastRatio(with: c.widget), 4.5, theme.name)
            XCTAssertGreaterThanOrEqual(c.textOnAccent.contrastRatio(with: c.accent), 3, theme.name)
            XCTAssertGreaterThanOrEqual(c.text.contrastRatio(with: c.selection), 4.5, theme.name)
        }
        let hc = Theme.highContrast.colors
        XCTAssertGreaterThanOrEqual(hc.text.contrastRatio(with: hc.panel), 18)
        XCTAssertGreaterThan(Theme.highContrast.borderWidth, Theme.dark.borderWidth)
    }

    func testTicksAndNumberFormatting() {
        XCTAssertEqual(niceTicks(in: 0...8, maxCount: 5).values, [0, 2, 4, 6, 8])
        XCTAssertEqual(niceTicks(in: -2...2, maxCount: 5).values, [-2, -1, 0, 1, 2])
        let fine = niceTicks(in: 0...0.35, maxCount: 5)
        XCTAssertEqual(fine.values.count, 4)
        XCTAssertEqual(fine.decimals, 1)
        XCTAssertEqual(formatNumber(3.14159, decimals: 2), "3.14")
        XCTAssertEqual(formatNumber(-2.5, decimals: 1), "-2.5")
        XCTAssertEqual(formatNumber(-0.004, decimals: 2), "0.00")
        XCTAssertEqual(formatNumber(0.05, decimals: 2), "0.05")
        XCTAssertEqual(formatNumber(1234.5, decimals: 0), "1235")
        XCTAssertEqual(formatNumber(Double.nan, decimals: 2), "NaN")
    }
}
