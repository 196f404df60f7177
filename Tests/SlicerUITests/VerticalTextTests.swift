// Turned text (matrix headers, chart axes) through the real SDL software renderer:
// the pixels must be the upright text's pixels turned 90° counter-clockwise.

import XCTest
import Foundation
@testable import SlicerUI

final class VerticalTextTests: XCTestCase {
    @MainActor func testVerticalTextIsUprightTextTurnedCounterClockwise() async throws {
        setenv("SDL_VIDEODRIVER", "offscreen", 1)
        let host = try HeadlessHost(width: 400, height: 300)
        let text: Substring = "Pullover Rg/8"
        let font = Font(.sans, pixelSize: 24)
        let measurer = host.renderer.fontAtlas
        let width = Int(measurer.width(of: text, font: font).rounded(.up))
        let line = Int(measurer.metrics(of: font).lineHeight.rounded(.up))
        // Upright at (20, 20); turned with its bottom-left corner at (300, 20 + width).
        host.frame { ui in
            ui.drawList.text(text, at: Vec2(20, 20), font: font, color: .white, measurer: ui.measurer)
            ui.drawList.verticalText(text, at: Vec2(300, Float(20 + width)), font: font, color: .white, measurer: ui.measurer)
        }
        let image = try host.capture()
        if ProcessInfo.processInfo.environment["SLICERUI_KEEP_IMAGES"] == "1" {
            try PNGFile.write(image, to: NSTemporaryDirectory() + "vertical-text.png")
        }
        func ink(_ x: Int, _ y: Int) -> Int { Int(image[x, y].g) }
        let background = ink(0, 0)
        var inked = 0, differing = 0, total = 0
        // Upright (x, y) in the line box ↔ turned (300 + y, 20 + width − 1 − x).
        for y in 0..<line {
            for x in 0..<width {
                let a = ink(20 + x, 20 + y), b = ink(300 + y, 20 + width - 1 - x)
                if a != background { inked += 1 }
                total += 1
                if abs(a - b) > 64 { differing += 1 }
            }
        }
        XCTAssertGreaterThan(inked, width * line / 20, "the upright text was drawn")
        XCTAssertLessThan(Double(differing) / Double(inked), 0.03,
                          "\(differing) of \(inked) inked pixels differ between upright and turned text")
    }
}
