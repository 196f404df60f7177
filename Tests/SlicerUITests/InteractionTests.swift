// Mouse and keyboard behaviour of the core, with the fake measurer (no SDL).

import XCTest
@testable import SlicerUI

final class InteractionTests: XCTestCase {
    @MainActor func testButtonClicksOnlyOnPressAndReleaseOverIt() async throws {
        let h = Harness()
        var clicks = 0
        var rect = Rect.zero
        let build: (UIContext) -> Void = { ui in
            if ui.button("OK") { clicks += 1 }
            rect = ui.lastItem.rect
        }
        h.frame(build)
        XCTAssertFalse(rect.isEmpty)
        h.click(at: rect.center, build)
        XCTAssertEqual(clicks, 1)

        // Pressed inside, released outside: cancelled.
        h.move(to: rect.center, build)
        h.input.press(.left); h.frame(build)
        h.input.mousePosition = Vec2(rect.center.x, rect.maxY + 50); h.input.release(.left); h.frame(build)
        XCTAssertEqual(clicks, 1)

        // Pressed outside, released inside: not a click either.
        h.move(to: Vec2(rect.center.x, rect.maxY + 50), build)
        h.input.press(.left); h.frame(build)
        h.input.mousePosition = rect.center; h.input.release(.left); h.frame(build)
        XCTAssertEqual(clicks, 1)

        // Press and release within one frame (fast click) still counts.
        h.input.press(.left); h.input.release(.left); h.frame(build)
        XCTAssertEqual(clicks, 2)
    }

    @MainActor func testDragMovesTheCallersOffset() async throws {
        let h = Harness()
        var offset = Vec2.zero
        let area = Rect(x: 100, y: 100, width: 200, height: 200)
        let build: (UIContext) -> Void = { ui in ui.drag("view", rect: area, offset: &offset) }
        h.drag(from: Vec2(150, 150), to: Vec2(190, 170), build)
        XCTAssertEqual(offset, Vec2(40, 20))
        // Dragging keeps working when the mouse leaves the area (the press captured it).
        h.drag(from: Vec2(150, 150), to: Vec2(500, 150), build)
        XCTAssertEqual(offset, Vec2(390, 20))
        // A drag that starts outside does nothing.
        h.drag(from: Vec2(50, 50), to: Vec2(150, 150), build)
        XCTAssertEqual(offset, Vec2(390, 20))
    }

    @MainActor func testBrushReportsTheRectangleAndAPlainClickDoesNot() async throws {
        let h = Harness()
        let area = Rect(x: 100, y: 100, width: 300, height: 200)
        var finished: Rect?
        var sawInProgress = false
        var clicked = false
        let build: (UIContext) -> Void = { ui in
            let result = ui.brush("chart", in: area, axis: .horizontal)
            if let brush = result.brush {
                if brush.isFinished { finished = brush.rect } else { sawInProgress = true }
            }
            if result.interaction.isClicked, !result.interaction.isDragging { clicked = true }
        }
        h.drag(from: Vec2(150, 150), to: Vec2(250, 180), build)
        XCTAssertTrue(sawInProgress)
        XCTAssertEqual(finished, Rect(x: 150, y: 100, width: 100, height: 200), "horizontal brush spans the full height")
        XCTAssertFalse(clicked)

        finished = nil
        h.click(at: Vec2(200, 200), build)
        XCTAssertNil(finished)
        XCTAssertTrue(clicked)

        // Brushes are clamped to the view.
        h.drag(from: Vec2(300, 150), to: Vec2(900, 150), build)
        XCTAssertEqual(finished?.maxX, area.maxX)
    }

    @MainActor func testSliderFollowsTheMouseAndTheKeyboard() async throws {
        let h = Harness()
        var epoch = 3
        var rect = Rect.zero
        var changes = 0
        let build: (UIContext) -> Void = { ui in
            if ui.slider("Epoch", value: &epoch, in: 0...20) { changes += 1 }
            rect = ui.lastItem.rect
        }
        h.frame(build)
        // The grab is 8 px wide, so its centre travels from x + 4 to maxX − 4.
        h.click(at: Vec2(rect.x + 4 + (rect.width - 8) * 0.5, rect.center.y), build)
        XCTAssertEqual(epoch, 10)
        XCTAssertGreaterThan(changes, 0)
        h.drag(from: Vec2(rect.x + 4 + (rect.width - 8) * 0.5, rect.center.y), to: Vec2(5000, rect.center.y), build)
        XCTAssertEqual(epoch, 20, "dragging past the end clamps to the maximum")
        h.drag(from: Vec2(rect.maxX - 4, rect.center.y), to: Vec2(-300, 900), build)
        XCTAssertEqual(epoch, 0)

        // The slider took focus when clicked; arrow keys step it.
        h.press(.right, build)
        h.press(.right, build)
        XCTAssertEqual(epoch, 2)
        h.press(.end, build)
        XCTAssertEqual(epoch, 20)

        var bins: Float = 0.25
        let floatBuild: (UIContext) -> Void = { ui in
            ui.slider("Bins", value: &bins, in: 0.05...1, step: 0.05)
            rect = ui.lastItem.rect
        }
        h.frame(floatBuild)
        h.click(at: Vec2(rect.x + 4 + (rect.width - 8) * 0.5, rect.center.y), floatBuild)
        XCTAssertEqual(bins, 0.525, accuracy: 0.03)
        let steps = (bins - 0.05) / 0.05
        XCTAssertEqual(steps, steps.rounded(), accuracy: 1e-3, "value snaps to the step")
    }

    @MainActor func testSameLabelInDifferentScopesDoesNotCollide() async throws {
        let h = Harness()
        var rects: [Rect] = []
        var clicked: [Int] = []
        let build: (UIContext) -> Void = { ui in
            rects.removeAll()
            for row in 0..<3 {
                ui.withID(row) {
                    if ui.button("Remove") { clicked.append(row) }
                    rects.append(ui.lastItem.rect)
                }
            }
            ui.button("Save##toolbar")
            ui.button("Save##menu")
        }
        h.frame(build)
        XCTAssertEqual(h.ui.diagnostics.idCollisions, [])
        let ids = (0..<3).map { row in h.ui.withID(row) { h.ui.id("Remove") } }
        XCTAssertEqual(Set(ids).count, 3)
        XCTAssertEqual(UIContext.visibleText("Save##toolbar"), "Save")

        h.click(at: rects[1].center, build)
        XCTAssertEqual(clicked, [1], "only the clicked row's button reacts")
    }

    @MainActor func testSameLabelTwiceInOneScopeIsReported() async throws {
        let h = Harness()
        var flag = false
        h.frame { ui in
            ui.button("Remove")
            ui.button("Remove")
            ui.panel("P", rect: Rect(x: 0, y: 200, width: 200, height: 100)) {
                ui.checkbox("Flag", isChecked: &flag)
                ui.button("Remove")   // a different scope: fine
            }
        }
        let collisions = h.ui.diagnostics.idCollisions
        XCTAssertEqual(collisions.count, 1)
        XCTAssertEqual(collisions.first?.label, "Remove")
        XCTAssertEqual(collisions.first?.id, h.ui.id("Remove"))
        // The next clean frame clears the report.
        h.frame { ui in ui.button("Remove") }
        XCTAssertTrue(h.ui.diagnostics.idCollisions.isEmpty)
    }

    @MainActor func testTabMovesFocusAndEnterActivates() async throws {
        let h = Harness()
        var aClicks = 0, bClicks = 0
        var name = ""
        let build: (UIContext) -> Void = { ui in
            if ui.button("A") { aClicks += 1 }
            if ui.button("B") { bClicks += 1 }
            ui.textField("name", text: &name)
        }
        h.frame(build)
        XCTAssertNil(h.ui.focusID)
        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("A"))
        XCTAssertTrue(h.ui.isFocusVisible)
        h.press(.enter, build)
        XCTAssertEqual(aClicks, 1)
        XCTAssertEqual(bClicks, 0)

        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("B"))
        h.press(.space, build)
        XCTAssertEqual(bClicks, 1)
        XCTAssertEqual(aClicks, 1)

        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("name"))
        h.input.text = "hi!"
        h.frame(build)
        XCTAssertEqual(name, "hi!")
        XCTAssertTrue(h.ui.wantsTextInput)
        h.press(.backspace, build)
        h.press(.left, build)
        h.press(.left, build)
        h.input.text = "<"
        h.frame(build)
        XCTAssertEqual(name, "<hi")

        h.press(.tab, modifiers: .shift, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("B"))
        h.press(.tab, build)
        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("A"), "Tab wraps around")
        h.press(.escape, build)
        XCTAssertNil(h.ui.focusID)
    }

    @MainActor func testEnterSubmitsATextFieldAndShortcutsIgnoreTyping() async throws {
        let h = Harness()
        var query = "ab"
        var submitted = false
        var saves = 0, finds = 0
        var rect = Rect.zero
        let build: (UIContext) -> Void = { ui in
            ui.textField("query", text: &query)
            if ui.lastItem.wasSubmitted { submitted = true }
            rect = ui.lastItem.rect
            if ui.shortcut(.character("s"), modifiers: .control) { saves += 1 }
            if ui.shortcut(.character("f")) { finds += 1 }
        }
        h.frame(build)
        h.click(at: rect.center, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("query"))
        h.input.press(.character("f"))
        h.input.text = "f"
        h.frame(build)
        XCTAssertEqual(query, "abf")
        XCTAssertEqual(finds, 0, "a plain-key shortcut must not fire while typing")
        h.press(.character("s"), modifiers: .control, build)
        XCTAssertEqual(saves, 1, "modified shortcuts still work while typing")
        h.press(.enter, build)
        XCTAssertTrue(submitted)
        XCTAssertNil(h.ui.focusID)
        h.press(.character("f"), build)
        XCTAssertEqual(finds, 1)
        XCTAssertEqual(query, "abf")
    }

    @MainActor func testClickingEmptySpaceClearsFocus() async throws {
        let h = Harness()
        var text = ""
        var rect = Rect.zero
        let build: (UIContext) -> Void = { ui in ui.textField("t", text: &text); rect = ui.lastItem.rect }
        h.frame(build)
        h.click(at: rect.center, build)
        XCTAssertNotNil(h.ui.focusID)
        h.click(at: Vec2(400, 500), build)
        XCTAssertNil(h.ui.focusID)
    }

    @MainActor func testCheckboxToggleSegmentedAndTabs() async throws {
        let h = Harness()
        var checked = false, on = true, method = 0, tab = 0
        var rects: [String: Rect] = [:]
        let build: (UIContext) -> Void = { ui in
            ui.checkbox("Check", isChecked: &checked); rects["check"] = ui.lastItem.rect
            ui.toggle("Switch", isOn: &on); rects["toggle"] = ui.lastItem.rect
            ui.segmented("method", selection: &method, options: ["One", "Two", "Three"]); rects["segment"] = ui.lastItem.rect
            ui.tabBar("tabs", selection: &tab, tabs: ["Alpha", "Beta"]); rects["tab"] = ui.lastItem.rect
        }
        h.frame(build)
        h.click(at: rects["check"]!.center, build)
        XCTAssertTrue(checked)
        h.click(at: rects["toggle"]!.center, build)
        XCTAssertFalse(on)
        // The last widget declared by the segmented control is its last segment.
        let lastSegment = rects["segment"]!
        h.click(at: lastSegment.center, build)
        XCTAssertEqual(method, 2)
        h.click(at: rects["tab"]!.center, build)
        XCTAssertEqual(tab, 1)
    }

    @MainActor func testDropDownOpensSelectsAndCoversWidgetsBelow() async throws {
        let h = Harness()
        var model = 0
        var underClicks = 0
        var dropRect = Rect.zero, underRect = Rect.zero
        let build: (UIContext) -> Void = { ui in
            ui.dropDown("Model", selection: &model, options: ["alpha", "beta", "gamma"]); dropRect = ui.lastItem.rect
            if ui.button("Under") { underClicks += 1 }
            underRect = ui.lastItem.rect
        }
        h.frame(build)
        h.click(at: dropRect.center, build)
        let popup = try XCTUnwrap(h.ui.popupRect, "clicking opens the list")
        XCTAssertTrue(popup.intersects(underRect))
        XCTAssertFalse(h.ui.drawData.lists[DrawLayer.popup.rawValue].isEmpty)

        // A click where the list covers the button goes to the list, not the button.
        h.click(at: Vec2(underRect.center.x, max(underRect.center.y, popup.y + 5)), build)
        XCTAssertEqual(underClicks, 0)
        XCTAssertNil(h.ui.popupRect, "choosing closes the list")

        h.click(at: dropRect.center, build)
        let list = try XCTUnwrap(h.ui.popupRect)
        let rowHeight = (list.height - 2) / 3
        h.click(at: Vec2(list.center.x, list.y + 1 + rowHeight * 2.5), build)
        XCTAssertEqual(model, 2)

        // Clicking outside closes without changing the selection; then the button works again.
        h.click(at: dropRect.center, build)
        XCTAssertNotNil(h.ui.popupRect)
        h.click(at: Vec2(700, 550), build)
        XCTAssertNil(h.ui.popupRect)
        XCTAssertEqual(model, 2)
        h.click(at: underRect.center, build)
        XCTAssertEqual(underClicks, 1)
    }

    @MainActor func testAnOpenDropDownClosesWhenItsOwnerDisappears() async throws {
        let h = Harness()
        var model = 0
        var showDropDown = true
        var rect = Rect.zero
        let build: (UIContext) -> Void = { ui in
            if showDropDown { ui.dropDown("Model", selection: &model, options: ["a", "b"]); rect = ui.lastItem.rect }
        }
        h.frame(build)
        h.click(at: rect.center, build)
        XCTAssertNotNil(h.ui.popupRect)
        showDropDown = false
        h.frame(build)
        showDropDown = true
        h.frame(build)
        XCTAssertNil(h.ui.popupRect, "a list whose drop-down vanished (e.g. a tab switch) does not come back open")
        XCTAssertTrue(h.ui.drawData.lists[DrawLayer.popup.rawValue].isEmpty)
    }

    @MainActor func testModalMessageBlocksTheWindowUntilDismissed() async throws {
        let h = Harness()
        var behind = 0
        var error: String? = "File not found: x.onnx"
        var rect = Rect.zero
        let build: (UIContext) -> Void = { ui in
            if ui.button("Behind") { behind += 1 }
            rect = ui.lastItem.rect
            if let message = error, ui.modalMessage("Error", message: message) { error = nil }
        }
        h.frame(build)
        XCTAssertFalse(h.ui.drawData.lists[DrawLayer.modal.rawValue].isEmpty)
        h.click(at: rect.center, build)
        XCTAssertEqual(behind, 0, "the veil blocks clicks")
        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.withID("##modal-Error") { h.ui.id("OK") }, "focus stays in the message")
        XCTAssertNotNil(error)
        h.press(.enter, build)
        XCTAssertNil(error)
        h.frame(build)
        h.click(at: rect.center, build)
        XCTAssertEqual(behind, 1)
    }

    @MainActor func testTooltipAppearsAfterTheDelayAndSchedulesAWake() async throws {
        let h = Harness()
        var rect = Rect.zero
        let build: (UIContext) -> Void = { ui in
            ui.button("Hover me")
            rect = ui.lastItem.rect
            ui.tooltip("Explains the button")
        }
        h.frame(build)
        h.move(to: rect.center, build)
        h.frame(build)
        XCTAssertTrue(h.ui.drawData.lists[DrawLayer.tooltip.rawValue].isEmpty)
        let wake = try XCTUnwrap(h.ui.wakeTime, "the context asks to be woken when the tooltip is due")
        XCTAssertGreaterThan(wake, h.input.time)
        h.input.time = wake
        h.frame(build)
        XCTAssertFalse(h.ui.drawData.lists[DrawLayer.tooltip.rawValue].isEmpty)
    }

    @MainActor func testAStaticFrameAsksForNoMoreFrames() async throws {
        let h = Harness()
        var on = false
        var rect = Rect.zero
        let build: (UIContext) -> Void = { ui in ui.toggle("t", isOn: &on); rect = ui.lastItem.rect; ui.label("static") }
        h.frame(build)
        h.frame(build)
        XCTAssertNil(h.ui.wakeTime, "nothing changes: the host may sleep until input")
        h.move(to: rect.center, build)
        XCTAssertNotNil(h.ui.wakeTime, "hover changed: one more frame to draw it")
        h.frame(build)
        XCTAssertNil(h.ui.wakeTime)
    }

    @MainActor func testListSelectsByClickAndArrowKeys() async throws {
        let h = Harness()
        var selection: Int? = nil
        var rect = Rect.zero
        let items = (0..<30).map { "Item \($0)" }
        let build: (UIContext) -> Void = { ui in
            ui.list("items", items: items, selection: &selection, visibleRows: 5)
            rect = ui.lastItem.rect
        }
        h.frame(build)
        let listRect = Rect(x: 6, y: 6, width: 788, height: (17.5 + 6) * 5 + 2)
        XCTAssertEqual(h.ui.panelStates[h.ui.id("items##rows")] != nil, true)
        h.click(at: Vec2(listRect.center.x, listRect.y + 1 + 23.5 * 1.5), build)
        XCTAssertEqual(selection, 1)
        XCTAssertEqual(h.ui.focusID, h.ui.id("items"))
        for _ in 0..<8 { h.press(.down, build) }
        XCTAssertEqual(selection, 9)
        // The selection was scrolled into view.
        XCTAssertGreaterThan(h.ui.scrollOffset(ofPanel: "items##rows").y, 0)
        XCTAssertFalse(rect.isEmpty)
    }

    @MainActor func testSplitterDragChangesTheCallersFraction() async throws {
        let h = Harness()
        var fraction: Float = 0.5
        var panes = (Rect.zero, Rect.zero)
        let area = Rect(x: 0, y: 0, width: 806, height: 600)
        let build: (UIContext) -> Void = { ui in
            panes = ui.splitter("split", in: area, axis: .horizontal, fraction: &fraction, minimumSize: 100)
        }
        h.frame(build)
        XCTAssertEqual(panes.0.width, 400)
        XCTAssertEqual(panes.1.x, 406)
        h.drag(from: Vec2(403, 300), to: Vec2(203, 300), build)
        XCTAssertEqual(fraction, 0.25, accuracy: 0.01)
        XCTAssertEqual(panes.0.width, 200, accuracy: 1)
        h.drag(from: Vec2(203, 300), to: Vec2(5, 300), build)
        XCTAssertEqual(panes.0.width, 100, "the minimum size holds")
    }
}
