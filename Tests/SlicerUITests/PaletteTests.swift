import XCTest
@testable import SlicerUI

/// Class colours must stand out on the panels of their theme (no yellow on white).
final class PaletteTests: XCTestCase {
    /// WCAG 2.x contrast ratio from the sRGB definition, written out here rather than
    /// through `Color.contrastRatio`, so that the test checks that too.
    private func wcagContrast(_ a: Color, _ b: Color) -> Double {
        func linear(_ c: UInt8) -> Double {
            let v = Double(c) / 255
            return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4)
        }
        func luminance(_ c: Color) -> Double { 0.2126 * linear(c.r) + 0.7152 * linear(c.g) + 0.0722 * linear(c.b) }
        let (x, y) = (luminance(a), luminance(b))
        return (max(x, y) + 0.05) / (min(x, y) + 0.05)
    }

    func testContrastFormulaOnKnownPairs() {
        XCTAssertEqual(wcagContrast(.black, .white), 21, accuracy: 1e-9)
        XCTAssertEqual(wcagContrast(Color(hex: 0x777777), .white), 4.48, accuracy: 0.01)
        XCTAssertEqual(Double(Color(hex: 0x777777).contrastRatio(with: .white)), wcagContrast(Color(hex: 0x777777), .white), accuracy: 0.01)
    }

    /// Every class colour against its theme's panel and background: at least 3:1 (WCAG's
    /// non-text contrast), 4.5:1 on the high-contrast theme.
    func testClassColoursContrastWithTheirTheme() {
        for theme in Theme.all {
            let minimum = theme.name == "high-contrast" ? 4.5 : 3.0
            for (i, color) in theme.classPalette.colors.enumerated() {
                for (what, surface) in [("panel", theme.colors.panel), ("background", theme.colors.background)] {
                    let ratio = wcagContrast(color, surface)
                    XCTAssertGreaterThanOrEqual(ratio, minimum, "\(theme.name): class \(i) \(color) on the \(what) \(surface): \(ratio):1")
                }
            }
        }
        // The old single palette fails on the light theme: the test can fail.
        let light = Theme.light.colors.panel
        XCTAssertLessThan(CategoricalPalette.standard.colors.map { wcagContrast($0, light) }.min()!, 3)
    }

    /// The first ten colours stay apart: in OKLab, and with the red–green axis
    /// removed (a proxy for the commonest colour blindness).
    func testClassColoursAreDistinct() {
        for theme in Theme.all {
            let labs = theme.classPalette.colors.prefix(10).map { OKLab($0) }
            for i in labs.indices {
                for j in labs.indices where j > i {
                    XCTAssertGreaterThan(labs[i].distance(to: labs[j]), 0.1, "\(theme.name): classes \(i) and \(j)")
                    let dl = labs[i].l - labs[j].l, db = labs[i].b - labs[j].b
                    XCTAssertGreaterThan((dl * dl + db * db).squareRoot(), 0.03, "\(theme.name): classes \(i) and \(j) without red–green")
                }
            }
        }
    }
}
