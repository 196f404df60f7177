// Layout, clipping, scrolling, scale and text measurement of the core (fake measurer).

import XCTest
@testable import SlicerUI

final class LayoutTests: XCTestCase {
    @MainActor func testRowsSplitFixedAndFractionalWidths() async throws {
        let h = Harness()
        var rects: [Rect] = []
        h.frame { ui in
            ui.row(.points(100), .fraction(1), .fraction(2), height: .points(40))
            for i in 0..<4 { ui.button("b\(i)"); rects.append(ui.lastItem.rect) }
        }
        // Body: 800 − 2 × 6 = 788 wide; free after 100 and 2 gaps of 6: 676 → 225 and 450.
        XCTAssertEqual(rects[0], Rect(x: 6, y: 6, width: 100, height: 40))
        XCTAssertEqual(rects[1], Rect(x: 112, y: 6, width: 225, height: 40))
        XCTAssertEqual(rects[2], Rect(x: 343, y: 6, width: 450, height: 40))
        XCTAssertEqual(rects[3].origin, Vec2(6, 52), "the fourth widget wraps to a new row with the same widths")
    }

    @MainActor func testColumnsNestAndFractionHeightsFillTheRest() async throws {
        let h = Harness()
        var left: [Rect] = [], right = Rect.zero, below = Rect.zero, fill = Rect.zero
        h.frame { ui in
            ui.row(.fraction(1), .fraction(1))
            ui.column {
                ui.button("one"); left.append(ui.lastItem.rect)
                ui.button("two"); left.append(ui.lastItem.rect)
            }
            ui.button("right"); right = ui.lastItem.rect
            ui.row(.fraction(1))
            ui.button("below"); below = ui.lastItem.rect
            fill = ui.cell(height: .fraction(1))
        }
        XCTAssertEqual(left[0].x, 6)
        XCTAssertEqual(left[1].y, left[0].maxY + 6)
        XCTAssertEqual(right.y, 6)
        XCTAssertEqual(right.x, left[0].maxX + 6)
        XCTAssertEqual(below.y, left[1].maxY + 6, "the row after a column starts below the column's content")
        XCTAssertEqual(fill.y, below.maxY + 6)
        XCTAssertEqual(fill.maxY, 594, accuracy: 1, "a fraction height takes the rest of the window")
    }

    @MainActor func testPanelClipsAndCullsContentOutsideIt() async throws {
        let h = Harness()
        let panel = Rect(x: 100, y: 100, width: 200, height: 100)
        let data = h.frame { ui in
            ui.panel("P", rect: panel) {
                for i in 0..<20 { ui.button("button \(i)") }
            }
            ui.drawList.fillRect(Rect(x: 500, y: 500, width: 10, height: 10), color: .white)
        }
        let base = data.lists[DrawLayer.base.rawValue]
        XCTAssertGreaterThanOrEqual(base.culledCount, 15 * 3, "buttons below the panel's edge are not drawn at all")
        var clippedBatches = 0
        for batch in base.batches where batch.indexCount > 0 && batch.clipRect != base.bounds {
            clippedBatches += 1
            XCTAssertEqual(batch.clipRect.intersection(panel), batch.clipRect, "content is clipped to the panel")
        }
        XCTAssertGreaterThan(clippedBatches, 0)
        // No drawn vertex of the panel's content lies wholly below the panel.
        for batch in base.batches where batch.clipRect != base.bounds {
            let vertices = base.vertices[batch.vertexOffset..<(batch.vertexOffset + batch.vertexCount)]
            let minY = vertices.map(\.position.y).min() ?? 0
            XCTAssertLessThan(minY, panel.maxY)
        }
        // Drawing after the panel is unclipped again.
        XCTAssertEqual(base.batches.last?.clipRect, base.bounds)
    }

    @MainActor func testWheelScrollsTheHoveredPanelWithinItsContent() async throws {
        let h = Harness()
        let panel = Rect(x: 100, y: 100, width: 300, height: 200)
        let other = Rect(x: 450, y: 100, width: 300, height: 200)
        var first = Rect.zero
        var visibleButtons = 0
        let build: (UIContext) -> Void = { ui in
            ui.panel("P", rect: panel) {
                for i in 0..<30 {
                    ui.button("row \(i)")
                    if i == 0 { first = ui.lastItem.rect }
                }
            }
            ui.panel("Other", rect: other) { ui.label("short") }
            visibleButtons = ui.drawData.lists[0].batches.count
        }
        h.frame(build)
        h.frame(build)
        let top = first.y
        let content = h.ui.contentSize(ofPanel: "P")
        let expectedHeight: Float = 30 * 27 + 29 * 6 + 2 * 6
        XCTAssertEqual(content.y, expectedHeight, accuracy: 1, "content height is measured")

        h.input.mousePosition = Vec2(200, 200)
        h.input.wheel = Vec2(0, -1)   // towards the user: scroll down
        h.frame(build)
        let step = h.ui.lineHeight() * 3
        XCTAssertEqual(h.ui.scrollOffset(ofPanel: "P").y, step, accuracy: 0.01)
        h.frame(build)
        XCTAssertEqual(first.y, top - step, accuracy: 0.01, "content moves up by the scrolled amount")

        h.input.wheel = Vec2(0, -1000)
        h.frame(build)
        let maxScroll = content.y - (panel.height - 2)
        XCTAssertEqual(h.ui.scrollOffset(ofPanel: "P").y, maxScroll, accuracy: 1, "scrolling stops at the end")

        h.input.mousePosition = Vec2(600, 200)
        h.input.wheel = Vec2(0, 5)
        h.frame(build)
        XCTAssertEqual(h.ui.scrollOffset(ofPanel: "P").y, maxScroll, accuracy: 1, "the wheel goes to the panel under the mouse")
        XCTAssertEqual(h.ui.scrollOffset(ofPanel: "Other").y, 0, "a panel without overflow does not scroll")
        XCTAssertGreaterThan(visibleButtons, 0)
    }

    @MainActor func testTabScrollsTheFocusedWidgetIntoView() async throws {
        let h = Harness()
        let panel = Rect(x: 0, y: 0, width: 300, height: 150)
        let build: (UIContext) -> Void = { ui in
            ui.panel("P", rect: panel) { for i in 0..<20 { ui.button("b\(i)") } }
        }
        h.frame(build)
        for _ in 0..<10 { h.press(.tab, build) }
        XCTAssertEqual(h.ui.focusID, h.ui.withID("P") { h.ui.id("b9") })
        XCTAssertGreaterThan(h.ui.scrollOffset(ofPanel: "P").y, 100)
    }

    @MainActor func testScaleMultipliesLayoutSizesAndFontSizes() async throws {
        func measure(scale: Float) -> (fixed: Rect, flexible: Rect, font: Font, height: Float) {
            let h = Harness(scale: scale)
            var fixed = Rect.zero, flexible = Rect.zero
            h.frame { ui in
                ui.row(.points(100), .fraction(1))
                ui.button("A"); fixed = ui.lastItem.rect
                ui.button("B"); flexible = ui.lastItem.rect
            }
            return (fixed, flexible, h.ui.font(.body), h.ui.widgetHeight)
        }
        let one = measure(scale: 1), two = measure(scale: 2), big = measure(scale: 1.5)
        XCTAssertEqual(one.fixed.width, 100)
        XCTAssertEqual(two.fixed.width, 200)
        XCTAssertEqual(big.fixed.width, 150)
        XCTAssertEqual(one.fixed.x, 6)
        XCTAssertEqual(two.fixed.x, 12, "spacing scales")
        XCTAssertEqual(two.flexible.x - two.fixed.maxX, 12)
        XCTAssertEqual(one.font.pixelSize, 14)
        XCTAssertEqual(two.font.pixelSize, 28)
        XCTAssertEqual(big.font.pixelSize, 21)
        XCTAssertEqual(two.height, 2 * one.height, accuracy: 1.01)
        XCTAssertEqual(two.fixed.height, two.height)
    }

    @MainActor func testScaleShortcutsStepThroughZoomLevels() async throws {
        let h = Harness()
        var scale = UIScale()
        let build: (UIContext) -> Void = { ui in ui.handleScaleShortcuts(&scale) }
        h.press(.character("="), modifiers: .control, build)
        XCTAssertEqual(scale.factor, 1.1)
        h.press(.character("+"), modifiers: [.control, .shift], build)
        XCTAssertEqual(scale.factor, 1.25)
        h.press(.character("-"), modifiers: .control, build)
        h.press(.character("-"), modifiers: .control, build)
        h.press(.character("-"), modifiers: .control, build)
        XCTAssertEqual(scale.factor, 0.9)
        h.press(.character("0"), modifiers: .control, build)
        XCTAssertEqual(scale.factor, 1)
        h.press(.character("="), build)
        XCTAssertEqual(scale.factor, 1, "without Ctrl the key is not a zoom")
        var tiny = UIScale(factor: 0.5)
        tiny.zoomOut()
        XCTAssertEqual(tiny.factor, 0.5)
    }

    @MainActor func testFakeMeasurerWrapAndTruncate() async throws {
        let m = FixedWidthTextMeasurer()
        let font = Font(.sans, pixelSize: 14)
        XCTAssertEqual(m.width(of: "abc", font: font), 21)
        XCTAssertEqual(m.width(of: "", font: font), 0)
        XCTAssertEqual(m.wrap("aaa bbb ccc", font: font, maxWidth: 49), ["aaa bbb", "ccc"])
        XCTAssertEqual(m.wrap("abcdefghij", font: font, maxWidth: 35), ["abcde", "fghij"], "long words break")
        XCTAssertEqual(m.wrap("one\ntwo", font: font, maxWidth: 500), ["one", "two"])
        XCTAssertEqual(m.truncate("abcdefghij", font: font, maxWidth: 35), "abcd…")
        XCTAssertEqual(m.truncate("abc", font: font, maxWidth: 35), "abc")
        XCTAssertEqual(m.caretPositions(in: "ab", font: font), [0, 7, 14])
    }

    @MainActor func testLongLabelsAreTruncatedToTheirCell() async throws {
        let h = Harness(width: 200, height: 100)
        let data = h.frame { ui in ui.label(String(repeating: "x", count: 100)) }
        let glyphs = data.lists[0].vertices.count / 4
        // 188 px at 7 px per character: 25 glyphs plus the ellipsis at most.
        XCTAssertLessThanOrEqual(glyphs, 27)
        XCTAssertGreaterThan(glyphs, 20)
    }
}

final class DrawListTests: XCTestCase {
    @MainActor func testShapesAndTextShareABatchUntilTheClipChanges() async throws {
        let m = FixedWidthTextMeasurer()
        var list = DrawList(bounds: Rect(x: 0, y: 0, width: 400, height: 300))
        list.fillRect(Rect(x: 10, y: 10, width: 50, height: 20), color: .white)
        list.text("Hi", at: Vec2(12, 12), font: Font(.sans, pixelSize: 14), color: .black, measurer: m)
        list.line(from: Vec2(0, 50), to: Vec2(100, 80), color: .white, thickness: 2)
        XCTAssertEqual(list.batches.count, 1)
        list.pushClip(Rect(x: 0, y: 0, width: 100, height: 100))
        list.fillRect(Rect(x: 10, y: 10, width: 50, height: 20), color: .white)
        list.popClip()
        list.fillRect(Rect(x: 10, y: 10, width: 50, height: 20), color: .white)
        XCTAssertEqual(list.batches.count, 3)
        XCTAssertEqual(list.batches[1].clipRect, Rect(x: 0, y: 0, width: 100, height: 100))
        list.image(TextureID(rawValue: 7), in: Rect(x: 0, y: 0, width: 10, height: 10))
        XCTAssertEqual(list.batches.last?.texture, TextureID(rawValue: 7))
        XCTAssertEqual(list.batches.count, 4)
    }

    @MainActor func testRectanglesAreSingleQuadsAndCulledOutsideTheClip() async throws {
        var list = DrawList(bounds: Rect(x: 0, y: 0, width: 400, height: 300))
        list.fillRect(Rect(x: 10.4, y: 10.6, width: 20, height: 20), color: .white)
        XCTAssertEqual(list.vertices.count, 4)
        XCTAssertEqual(list.indices, [0, 1, 2, 0, 2, 3])
        XCTAssertEqual(list.vertices[0].position, Vec2(10, 11), "edges snap to pixels")
        list.pushClip(Rect(x: 0, y: 0, width: 100, height: 100))
        list.fillRect(Rect(x: 200, y: 200, width: 20, height: 20), color: .white)
        list.polyline([Vec2(150, 150), Vec2(180, 190)], color: .white)
        XCTAssertEqual(list.vertices.count, 4)
        XCTAssertEqual(list.culledCount, 2)
        list.popClip()
        list.polyline([Vec2(10, 10), Vec2(50, 50), Vec2(90, 10)], color: .white, thickness: 3)
        XCTAssertEqual(list.vertices.count, 4 + 6, "two vertices per polyline point")
        XCTAssertEqual(list.triangleCount, 2 + 4)
        // Batches index from their own first vertex.
        XCTAssertTrue(list.batches.allSatisfy { b in
            list.indices[b.indexOffset..<(b.indexOffset + b.indexCount)].allSatisfy { $0 >= 0 && Int($0) < b.vertexCount }
        })
    }

    @MainActor func testPolylineKeepsItsThicknessAtJoins() async throws {
        var list = DrawList(bounds: Rect(x: 0, y: 0, width: 400, height: 300))
        list.polyline([Vec2(0, 100), Vec2(100, 100), Vec2(100, 0)], color: .white, thickness: 4)
        let corner = list.vertices[2...3].map(\.position)
        // A right-angle join: the outer and inner mitre points are the corners of the two
        // 4 px bands, (102, 102) and (98, 98), so the band keeps its width through the turn.
        XCTAssertTrue(corner.contains { abs($0.x - 102) < 0.01 && abs($0.y - 102) < 0.01 }, "\(corner)")
        XCTAssertTrue(corner.contains { abs($0.x - 98) < 0.01 && abs($0.y - 98) < 0.01 }, "\(corner)")
        XCTAssertFalse(list.vertices.contains { $0.position.x.isNaN || $0.position.y.isNaN })
        list.polyline([Vec2(5, 5), Vec2(5, 5), Vec2(5, 5)], color: .white)
        XCTAssertFalse(list.vertices.contains { $0.position.x.isNaN }, "degenerate input draws nothing, not NaNs")
    }
}
