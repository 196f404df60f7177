// Text selection in fields, flow layouts that wrap instead of cutting, fitting widths,
// dialogs that own Tab, and the headless host's scripted keyboard.

import XCTest
@testable import SlicerUI

final class ReflowAndDialogTests: XCTestCase {
    // MARK: Text field selection

    @MainActor func testCtrlASelectsAllAndTypingReplacesTheSelection() async throws {
        let h = Harness()
        var path = "/home/user/models"
        var clipboard: String?
        h.ui.writeClipboard = { clipboard = $0 }
        h.ui.readClipboard = { "pasted" }
        let build: (UIContext) -> Void = { ui in ui.textField("path", text: &path) }
        h.frame(build)
        h.click(at: h.ui.lastItem.rect.center, build)
        XCTAssertNil(h.ui.textSelection, "a click places the caret; nothing selected")
        h.press(.character("a"), modifiers: .control, build)
        XCTAssertEqual(h.ui.textSelection, 0..<17)
        h.press(.character("c"), modifiers: .control, build)
        XCTAssertEqual(clipboard, "/home/user/models")
        h.input.text = "/tmp"
        h.frame(build)
        XCTAssertEqual(path, "/tmp", "typing replaced the selection")
        XCTAssertNil(h.ui.textSelection)
        // Shift+Home selects back to the start; Backspace deletes just that.
        h.press(.left, build)                       // caret between "/tm" and "p"
        h.press(.home, modifiers: .shift, build)
        XCTAssertEqual(h.ui.textSelection, 0..<3)
        h.press(.backspace, build)
        XCTAssertEqual(path, "p")
        // Shift+Right selects one character; Ctrl+V pastes over it; Ctrl+X cuts everything.
        h.press(.home, build)
        h.press(.right, modifiers: .shift, build)
        h.press(.character("v"), modifiers: .control, build)
        XCTAssertEqual(path, "pasted")
        h.press(.character("x"), modifiers: .control, build)
        XCTAssertEqual(path, "")
        XCTAssertEqual(clipboard, "pasted")
    }

    @MainActor func testFocusTextFieldSelectsAllSoTheFirstKeyReplaces() async throws {
        let h = Harness()
        var path = "/old/folder/"
        let build: (UIContext) -> Void = { ui in ui.textField("path", text: &path) }
        h.frame { ui in
            ui.focusTextField("path")
            build(ui)
        }
        XCTAssertEqual(h.ui.textSelection, 0..<12)
        h.input.text = "~"
        h.frame(build)
        XCTAssertEqual(path, "~")
        // Without selecting: the caret goes to the end and typing appends.
        h.frame { ui in
            ui.focusTextField("path", selectingAll: false)
            build(ui)
        }
        XCTAssertNil(h.ui.textSelection)
        h.input.text = "/x"
        h.frame(build)
        XCTAssertEqual(path, "~/x")
    }

    // MARK: Flow layout

    func testFlowWrapsKeepsGroupsTogetherAndSetsTheTrailingGroupRight() {
        // Widths 100 + 6 + 100 = 206 fit in 250; the next group of two (90 + 6 + 90) does not: new row.
        let items = [FlowLayout.Item(width: 100, group: 0), .init(width: 100, group: 0),
                     .init(width: 90, group: 1), .init(width: 90, group: 1), .init(width: 40, group: 2)]
        let flow = FlowLayout(items, maxWidth: 250, spacing: 6, groupSpacing: 20, trailingGroup: 2)
        XCTAssertEqual(flow.placements.map(\.row), [0, 0, 1, 1, 1])
        XCTAssertEqual(flow.placements.map(\.x), [0, 106, 0, 96, 210], "the trailing group ends at the right edge")
        XCTAssertEqual(flow.rowCount, 2)
        // Everything fits on one wide row, with the wider gap between groups.
        let wide = FlowLayout(items, maxWidth: 1000, spacing: 6, groupSpacing: 20)
        XCTAssertEqual(wide.placements.map(\.row), [0, 0, 0, 0, 0])
        XCTAssertEqual(wide.placements.map(\.x), [0, 106, 226, 322, 432])
        // A group wider than a row wraps inside itself; an item wider than a row is cut to it.
        let narrow = FlowLayout([.init(width: 80), .init(width: 80), .init(width: 300)], maxWidth: 120, spacing: 6)
        XCTAssertEqual(narrow.placements.map(\.row), [0, 1, 2])
        XCTAssertEqual(narrow.placements[2].width, 120)
        // No item ever crosses the edge.
        for width: Float in [90, 150, 233, 400] {
            let f = FlowLayout(items, maxWidth: width, spacing: 6, groupSpacing: 20, trailingGroup: 2)
            XCTAssertTrue(f.placements.allSatisfy { $0.x >= 0 && $0.x + $0.width <= width + 0.001 }, "\(width)")
        }
    }

    @MainActor func testFlowedControlsAtTheirFittingWidthsAreNeverCut() async throws {
        for width: Float in [160, 240, 420, 900] {
            let h = Harness(width: width + 12)
            var on = false, method = 0, bins = 2, epoch = 3
            var rows = 0
            var segmentedWidth: Float = 0
            h.frame { ui in
                segmentedWidth = ui.fittingWidth(segmented: ["instance", "ensemble", "label information"], widths: .fitting)
                let controls = [
                    FlowControl(width: ui.fittingWidth(segmented: ["instance", "ensemble", "label information"], widths: .fitting)) {
                        ui.segmented("method", selection: &method, options: ["instance", "ensemble", "label information"], widths: .fitting)
                    },
                    FlowControl(width: ui.fittingWidth(dropDown: "bins", options: ["16", "256"])) {
                        ui.dropDown("bins", selection: &bins, options: ["16", "256"])
                    },
                    FlowControl(width: ui.fittingWidth(checkbox: "Miller–Madow")) { ui.checkbox("Miller–Madow", isChecked: &on) },
                    FlowControl(width: ui.fittingWidth(slider: "epoch", values: ["10"])) { ui.slider("epoch", value: &epoch, in: 0...10) },
                    ui.flowButton("Save PNG") {},
                ]
                let layout = ui.flowLayout(controls, width: width)
                rows = layout.rowCount
                ui.flow(controls, layout: layout, at: Vec2(6, 6))
            }
            // Only a control wider than the whole row is cut (and reported): here the segments.
            let cut = Set(h.ui.diagnostics.truncatedLabels.map(\.text))
            XCTAssertTrue(cut.isSubset(of: ["instance", "ensemble", "label information"]), "width \(width): \(cut)")
            XCTAssertEqual(cut.isEmpty, segmentedWidth <= width, "width \(width): \(cut)")
            if width < 400 { XCTAssertGreaterThan(rows, 1) }
        }
    }

    // MARK: Dialogs and Tab

    @MainActor func testADialogOwnsTabFromItsFirstFrameAndCoversTheWindow() async throws {
        let h = Harness()
        var showDialog = false
        var behind = 0, ok = 0
        var behindRect = Rect.zero
        let build: (UIContext) -> Void = { ui in
            if ui.button("Behind") { behind += 1 }
            behindRect = ui.lastItem.rect
            if showDialog {
                ui.modal {
                    if ui.button("OK", rect: Rect(x: 300, y: 300, width: 80, height: 30)) { ok += 1 }
                    ui.button("Cancel", rect: Rect(x: 390, y: 300, width: 80, height: 30))
                }
            }
        }
        h.frame(build)
        showDialog = true
        h.frame(build)
        // The first Tab after the dialog appeared lands on its first button, not on one behind it.
        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("OK"))
        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("Cancel"))
        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("OK"))
        h.press(.enter, build)
        XCTAssertEqual(ok, 1)
        // The veil covers the widgets behind.
        h.click(at: behindRect.center, build)
        XCTAssertEqual(behind, 0)
    }

    @MainActor func testTabCanBeLeftToTheApp() async throws {
        let h = Harness()
        var appTabs = 0
        let build: (UIContext) -> Void = { ui in
            ui.button("one")
            ui.button("two")
            if ui.shortcut(.tab) { appTabs += 1 }
        }
        h.frame(build)
        h.ui.tabMovesFocus = false
        h.press(.tab, build)
        XCTAssertNil(h.ui.focusID)
        XCTAssertEqual(appTabs, 1)
        h.ui.tabMovesFocus = true
        h.press(.tab, build)
        XCTAssertEqual(h.ui.focusID, h.ui.id("one"))
        XCTAssertEqual(appTabs, 1)
    }

    // MARK: The headless host's keyboard

    @MainActor func testScriptedModifiersAreReleasedAndLongTextArrivesWhole() async throws {
        setenv("SDL_VIDEODRIVER", "offscreen", 1)
        let host = try HeadlessHost(width: 400, height: 200)
        var text = ""
        var saves = 0
        let build: (UIContext) -> Void = { ui in
            ui.textField("t", text: &text)
            if ui.shortcut(.character("s"), modifiers: .control) { saves += 1 }
        }
        host.frame(build)
        host.click(at: host.ui.lastItem.rect.center, build)
        host.press(.character("s"), modifiers: .control, build)
        XCTAssertEqual(saves, 1)
        XCTAssertEqual(host.input.modifiers, [], "Ctrl is let go after the press")
        let long = "/tmp/a-rather-long-folder-name-that-takes-more-than-32-bytes/épreuve"
        host.type(long, build)
        XCTAssertEqual(text, long)
    }
}
