// The truncation detector: every label shortened with "…" is reported with its widget.

import XCTest
@testable import SlicerUI

final class TruncationTests: XCTestCase {
    /// With the fake measurer a body glyph is 7 px wide (14 px font × 0.5) and widgets inset
    /// their text by the theme padding (6 px) on each side.
    @MainActor func testAShortenedButtonLabelIsReportedWithItsWidgetID() async throws {
        let h = Harness()
        var buttonID: WidgetID?
        h.frame { ui in
            ui.row(.points(100), .points(300))
            ui.button("Open the model##toolbar")   // 14 glyphs = 98 px in 88 px: shortened
            buttonID = ui.lastItem.id
            ui.button("Save")                      // fits
        }
        let found = h.ui.diagnostics.truncations
        XCTAssertEqual(found.count, 1, "\(found)")
        let t = try XCTUnwrap(found.first)
        XCTAssertEqual(t.kind, .control)
        XCTAssertEqual(t.text, "Open the model")
        XCTAssertEqual(t.label, "Open the model##toolbar")
        XCTAssertEqual(t.widgetID, buttonID)
        XCTAssertTrue(t.shown.hasSuffix("…"))
        XCTAssertLessThanOrEqual(Float(t.shown.unicodeScalars.count) * 7, 88)
        XCTAssertEqual(h.ui.diagnostics.truncatedLabels.count, 1)
    }

    @MainActor func testEveryKindOfControlReportsAndFittingOnesDoNot() async throws {
        let h = Harness(width: 2000)
        func build(width: Float) -> (UIContext) -> Void {
            return { ui in
                ui.row(.points(width))
                var on = true, index = 0, value = 3
                ui.checkbox("Miller–Madow correction", isChecked: &on)
                ui.toggle("classes shown", isOn: &on)
                ui.segmented("method", selection: &index, options: ["instance", "label information"])
                ui.dropDown("bins", selection: &index, options: ["64 bins", "128 bins"])
                ui.slider("epoch", value: &value, in: 0...10)
                ui.tabBar("tabs", selection: &index, tabs: ["Channel matrix", "CAR panel"])
                ui.selectable("a long selectable row", isSelected: false)
                ui.label("A static heading that is long")
            }
        }
        h.frame(build(width: 1000))
        XCTAssertEqual(h.ui.diagnostics.truncations, [], "everything fits in 1000 px")
        h.frame(build(width: 60))
        let kinds = h.ui.diagnostics.truncations.map(\.kind)
        let labels = Set(h.ui.diagnostics.truncations.compactMap(\.label).map { String(UIContext.visibleText($0)) })
        XCTAssertEqual(kinds.filter { $0 == .label }.count, 1, "the static label")
        for expected in ["Miller–Madow correction", "classes shown", "label information", "bins", "epoch",
                         "Channel matrix", "CAR panel", "a long selectable row", "A static heading that is long"] {
            XCTAssertTrue(labels.contains(expected), "\(expected) reported; got \(labels)")
        }
        XCTAssertTrue(h.ui.diagnostics.truncations.filter { $0.kind == .control }.allSatisfy { $0.widgetID != nil })
    }

    @MainActor func testViewTextIsReportedApartFromLabelsAndOwnersNameIt() async throws {
        let h = Harness()
        h.frame { ui in
            ui.drawText("a value read-out far too long", in: Rect(x: 0, y: 0, width: 40, height: 20), color: .white)
            ui.drawText("T-shirt/top", in: Rect(x: 0, y: 30, width: 30, height: 20), color: .white, owner: "column T-shirt/top")
            ui.drawText("ok", in: Rect(x: 0, y: 60, width: 40, height: 20), color: .white)
        }
        let t = h.ui.diagnostics.truncations
        XCTAssertEqual(t.map(\.kind), [.text, .label])
        XCTAssertNil(t[0].widgetID)
        XCTAssertEqual(t[1].label, "column T-shirt/top")
        XCTAssertEqual(t[1].widgetID, h.ui.id("column T-shirt/top"))
        XCTAssertEqual(h.ui.diagnostics.truncatedLabels.map(\.text), ["T-shirt/top"])
        // The next frame starts a new record.
        h.frame { _ in }
        XCTAssertEqual(h.ui.diagnostics.truncations, [])
    }

    @MainActor func testADropDownListIsWideEnoughForItsLongestOption() async throws {
        let h = Harness()
        var choice = 0
        let options = ["all classes", "a class with a very long name indeed"]
        let build: (UIContext) -> Void = { ui in
            ui.row(.points(140))
            ui.dropDown("class", selection: &choice, options: options)
        }
        h.frame(build)
        let anchor = h.ui.lastItem.rect
        h.click(at: anchor.center, build)
        h.frame(build)
        XCTAssertNotNil(h.ui.openPopupID, "the list is open")
        XCTAssertEqual(h.ui.diagnostics.truncations.filter { $0.text == options[1] }, [], "\(h.ui.diagnostics.truncations)")
    }
}

final class LongDropDownTests: XCTestCase {
    /// A drop-down of 1,000 options (ImageNet's classes) opens at the chosen one and makes
    /// widgets only of the rows in view.
    @MainActor func testALongListOpensAtTheSelectionAndCullsRowsOutOfView() async throws {
        let h = Harness()
        let options = (0..<1000).map { "class \($0)" }
        var choice = 900
        let build: (UIContext) -> Void = { ui in
            ui.row(.points(200))
            ui.dropDown("class", selection: &choice, options: options)
        }
        h.frame(build)
        h.click(at: h.ui.lastItem.rect.center, build)
        h.frame(build)
        let popup = try XCTUnwrap(h.ui.popupRect)
        let list = h.frame(build).lists[DrawLayer.popup.rawValue]
        XCTAssertLessThan(list.vertices.count, 40 * 30, "rows out of view are not drawn")
        // The row just below the chosen one is in view: clicking it chooses 901.
        let rowHeight = h.ui.lineHeight() + h.ui.scaled(h.ui.theme.padding)
        let selected = popup.y + (popup.height - rowHeight) / 2 + rowHeight / 2
        h.click(at: Vec2(popup.center.x, selected + rowHeight), build)
        XCTAssertEqual(choice, 901)
    }
}
