import Foundation
import XCTest
import SlicerData
import SlicerEngine
import SlicerInfo
import SlicerUI
@testable import SlicerApp

/// The app's shell (toolbar, browser, file chooser, opening files, draw pad, export) in the
/// headless host, on data written to a temporary folder in the standard IDX format and the
/// engine's fixture models — opened the way the command line opens them.
@MainActor
final class ShellHarness {
    let host: HeadlessHost
    let model: AppModel
    let view: AppView
    let folder: String

    static var fixtures: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SlicerEngineTests/Fixtures").path
    }

    /// The models the project ships (exported from PyTorch: real tap names such as `/1/BatchNormalization`).
    static var shippedModels: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("assets/models").path
    }

    /// - Parameters:
    ///   - images: how many 28×28 images (labels cycle through the ten classes).
    ///   - series: checkpoints of the fixture model (more than one shows the epoch slider).
    ///   - model: the checkpoint copied into the series (default: the engine's small fixture).
    init(width: Int = 1400, height: Int = 900, images: Int = 60, series: Int = 1, theme: Int = 0,
         largeType: Bool = false, model checkpoint: String = ShellHarness.fixtures + "/plain_cnn.onnx") throws {
        setenv("SDL_VIDEODRIVER", "offscreen", 1)
        setenv("CNNSLICER_NO_CACHE", "1", 1)
        folder = NSTemporaryDirectory() + "cnnslicer-shell-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder + "/exports", withIntermediateDirectories: true)
        setenv("CNNSLICER_EXPORT_DIR", folder + "/exports", 1)
        // Fashion-MNIST's layout and class names (the folder's name says "fashion").
        let data = folder + "/fashion-mnist"
        try ShellHarness.writeIDX(to: data, count: images, side: 28)
        try fm.createDirectory(atPath: folder + "/series", withIntermediateDirectories: true)
        for e in 0..<series {
            try fm.copyItem(atPath: checkpoint, toPath: folder + "/series/epoch_\(e).onnx")
        }
        var options = WorkspaceOptions(models: series > 1 ? [folder + "/series/epoch_*.onnx"] : [folder + "/series/epoch_0.onnx"],
                                       data: data)
        options.labels = IDXReader.fashionClassNames
        let (workspace, resolved) = try options.open()
        host = try HeadlessHost(width: width, height: height)
        model = AppModel(workspace: workspace, threads: 1)
        model.selection.epoch = workspace.inputs.count - 1
        view = AppView(model: model, textures: host.renderer, options: resolved,
                       preferences: PreferencesStore(path: folder + "/config/cnnslicer/preferences.json"))
        view.largeType = largeType
        view.setTheme(theme, host.ui)
        settle()
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func frame(_ ui: UIContext) { view.frame(ui) }

    /// Runs frames until the analysis and the shown image are in.
    func settle(timeout: Double = 30) { runUntilSettled(host, model, timeout: timeout, frame) }

    /// An IDX pair (`t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`) of deterministic
    /// images: a bright square whose place depends on the label, over noise.
    static func writeIDX(to directory: String, count: Int, side: Int) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func header(_ magic: UInt32, _ dims: [Int]) -> [UInt8] {
            ([magic] + dims.map(UInt32.init)).flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
        }
        var rng: UInt64 = 99
        var pixels: [UInt8] = []
        var labels: [UInt8] = []
        for i in 0..<count {
            let label = i % 10
            labels.append(UInt8(label))
            for y in 0..<side {
                for x in 0..<side {
                    rng = rng &* 6364136223846793005 &+ 1442695040888963407
                    let inSquare = abs(x - 4 - 2 * label) < 4 && abs(y - 14) < 6
                    pixels.append(inSquare ? 230 : UInt8(truncatingIfNeeded: rng >> 59))
                }
            }
        }
        try Data(header(0x0803, [count, side, side]) + pixels).write(to: URL(fileURLWithPath: directory + "/t10k-images-idx3-ubyte"))
        try Data(header(0x0801, [count]) + labels).write(to: URL(fileURLWithPath: directory + "/t10k-labels-idx1-ubyte"))
    }
}

final class ShellLayoutTests: XCTestCase {
    /// Renders the whole app at the sizes, scales, type sizes and themes it is shown at, in
    /// each of its states, and fails on any control or named label shortened with "…".
    @MainActor func testNoControlLabelIsTruncatedAtAnySizeThemeOrTypeSize() async throws {
        // The shipped Fashion-MNIST model as a two-checkpoint series (epoch slider), on the tap
        // with the longest name (it goes into the CAR button's label).
        let h = try ShellHarness(series: 2, model: ShellHarness.shippedModels + "/fashion_mnist_cnn.onnx")
        let taps = h.model.network.taps
        h.model.selection.tap = taps.indices.max { taps[$0].name.count < taps[$1].name.count } ?? 0
        for setup in Presentation.all {
            setup.apply(to: h.host, h.view)
            let name = setup.name
            // Each state the shell can be in: the views, the CAR tab, the draw pad, the chooser, the prompt.
            let states: [(String, String, () -> Void)] = [
                ("main", "thumbnails", { h.view.rightTab = 0; h.view.browser.tab = 0 }),
                ("CAR tab and draw pad", "padTools", { h.view.rightTab = 1; h.view.browser.tab = 1 }),
                ("file chooser", "chooser", { h.view.rightTab = 0; h.view.browser.tab = 0; h.view.openFileChooser() }),
                ("size prompt", "openPrompt", {
                    h.view.closeChooser()
                    h.view.open(ShellHarness.fixtures + "/bn_cnn.onnx")
                }),
            ]
            for (state, shown, enter) in states {
                enter()
                h.host.frame(h.frame)
                h.host.frame(h.frame)
                XCTAssertNotNil(h.view.layout[shown], "\(name), \(state) is on screen")
                let cut = h.host.ui.diagnostics.truncatedLabels
                XCTAssertEqual(cut, [], "\(name), \(state): \(cut.map(\.description).joined(separator: "; "))")
                // Nothing of the shell leaves the window.
                let display = h.host.ui.displayRect
                for key in ["toolbar", "status", "browser", "chooser", "openPrompt"] {
                    guard let r = h.view.layout[key] else { continue }
                    XCTAssertTrue(r.minX >= 0 && r.minY >= 0 && r.maxX <= display.maxX + 0.5 && r.maxY <= display.maxY + 0.5,
                                  "\(name), \(state): \(key) \(r) inside \(display)")
                }
            }
            h.view.pendingOpen = nil
        }
    }

    /// The check above can fail: in a window too small for the toolbar's words, the detector
    /// reports them.
    @MainActor func testTheDetectorSeesTruncationInTheApp() async throws {
        let h = try ShellHarness(width: 420, height: 400)
        h.view.largeType = true
        h.view.applyLargeType(h.host.ui)
        h.host.frame(h.frame)
        h.host.frame(h.frame)
        XCTAssertFalse(h.host.ui.diagnostics.truncatedLabels.isEmpty)
    }

    @MainActor func testTheToolbarWrapsInsteadOfCuttingAndShowsModelAndData() async throws {
        let h = try ShellHarness(width: 1600, height: 1000, series: 2)
        h.host.frame(h.frame)
        let wide = h.view.toolbarRows
        XCTAssertTrue(h.view.windowTitle.contains("series/epoch_1.onnx"), h.view.windowTitle)
        XCTAssertTrue(h.view.windowTitle.contains("fashion-mnist (test)"), h.view.windowTitle)
        h.host.resize(width: 1024, height: 700)
        h.view.largeType = true
        h.view.applyLargeType(h.host.ui)
        h.host.frame(h.frame)
        h.host.frame(h.frame)
        let narrow = h.view.toolbarRows
        XCTAssertGreaterThan(narrow, wide, "more rows when the window is narrow and the type large")
        // Every toolbar control is inside the window: none falls off the right edge.
        let toolbar = try XCTUnwrap(h.view.layout["toolbar"])
        XCTAssertLessThanOrEqual(toolbar.maxX, 1024)
        XCTAssertEqual(h.host.ui.diagnostics.truncatedLabels, [])
        // The heading names the model and the data.
        let headings = h.view.titleVariants()
        XCTAssertTrue(headings.allSatisfy { $0.contains("epoch_1.onnx") && $0.contains("fashion-mnist") })
    }
}

final class ShellBehaviourTests: XCTestCase {
    // MARK: Bug 1: the browser scrolls, draws every row, reaches every image

    @MainActor func testTheBrowserScrollsDrawsTheRowsInViewAndReachesTheLastImage() async throws {
        let h = try ShellHarness(width: 1024, height: 700, images: 400)
        let area = try XCTUnwrap(h.view.layout["thumbnails"])
        let firstScreen = Set(h.view.browser.thumbnailRects.keys)
        XCTAssertTrue(firstScreen.contains(0))
        // The wheel scrolls well past the first screenful…
        for _ in 0..<12 { h.host.scroll(by: Vec2(0, -3), at: area.center, h.frame) }
        h.host.frame(h.frame)
        let scroll = h.host.ui.scrollOffset(ofPanel: "thumbnails")
        XCTAssertGreaterThan(scroll.y, area.height)
        // …and the rows now in view are the ones drawn (not the first screenful again).
        let shown = h.view.browser.thumbnailRects
        XCTAssertTrue(Set(shown.keys).isDisjoint(with: firstScreen), "rows in view: \(shown.keys.sorted().prefix(5))…")
        XCTAssertTrue(shown.values.contains { area.contains($0.center) })
        // The pixels agree: the lower half of the browser shows images (their bright squares), not a blank panel.
        let pixels = try h.host.capture()
        var bright = 0
        for y in Int(area.center.y)..<Int(area.maxY) {
            for x in Int(area.x)..<Int(area.maxX - 12) where pixels.pixels[(y * pixels.width + x) * 4] > 200 { bright += 1 }
        }
        XCTAssertGreaterThan(bright, 500, "the scrolled rows are drawn")
        // A thumbnail scrolled into view can be clicked.
        let (target, rect) = try XCTUnwrap(shown.filter { area.contains($0.value.center) }.max { $0.key < $1.key })
        h.host.click(at: rect.center, h.frame)
        XCTAssertEqual(h.model.selection.image, target)

        // The scroll bar reaches the last image: drag its thumb from the top to the bottom.
        h.host.ui.setScrollOffset(.zero, ofPanel: "thumbnails")
        h.host.frame(h.frame)
        let bar = Vec2(area.maxX - h.host.ui.scaled(h.host.ui.theme.scrollbarWidth) / 2, area.y + h.host.ui.scaled(8))
        h.host.drag(from: bar, to: Vec2(bar.x, area.maxY + 200), steps: 6, h.frame)
        h.host.frame(h.frame)
        let last = try XCTUnwrap(h.view.browser.thumbnailRects[399], "the last image is in view")
        XCTAssertTrue(area.contains(last.center))
        h.host.click(at: last.center, h.frame)
        XCTAssertEqual(h.model.selection.image, 399)

        // ↑ steps back to an image far above: the browser scrolls to it.
        h.model.selection.image = 12
        h.host.press(.up, h.frame)
        h.host.frame(h.frame)
        XCTAssertEqual(h.model.selection.image, 11)
        let eleven = try XCTUnwrap(h.view.browser.thumbnailRects[11])
        XCTAssertTrue(area.contains(eleven.center), "the shown image is scrolled into view")
        // ↓ down to the end: it follows.
        h.model.selection.image = 380
        for _ in 0..<19 { h.host.press(.down, h.frame) }
        h.host.frame(h.frame)
        XCTAssertEqual(h.model.selection.image, 399)
        XCTAssertTrue(area.contains(try XCTUnwrap(h.view.browser.thumbnailRects[399]).center))
    }

    // MARK: Bug 3: another input shape from the GUI

    @MainActor func testOpeningAModelOfAnotherInputSizeAsksAndResizes() async throws {
        let h = try ShellHarness()
        let before = h.model.network.path
        h.view.open(ShellHarness.fixtures + "/bn_cnn.onnx")   // 3×16×16 after 1×28×28 data
        h.host.frame(h.frame)
        XCTAssertNotNil(h.view.layout["openPrompt"], "the app asks instead of failing")
        XCTAssertEqual(h.model.messages, [])
        XCTAssertEqual(h.model.network.path, before, "nothing replaced yet")
        // The rest of the window waits: arrows do not step the taps under the prompt.
        let tap = h.model.selection.tap
        h.host.press(.right, h.frame)
        XCTAssertEqual(h.model.selection.tap, tap)
        // Keyboard: Tab to the first choice ("Resize bilinear"), Return.
        h.host.press(.tab, h.frame)
        h.host.press(.enter, h.frame)
        h.settle()
        XCTAssertNil(h.view.pendingOpen)
        XCTAssertTrue(h.model.network.path.hasSuffix("bn_cnn.onnx"))
        XCTAssertEqual(h.view.options?.resize, .bilinear)
        XCTAssertEqual(h.model.featureMaps?.values.first?.count, 3 * 16 * 16, "the image runs resized to the model's input")
        let status = h.view.planStatus(h.host.ui, width: 2000).parts.joined(separator: " · ")
        XCTAssertTrue(status.contains("images resized 28×28 → 16×16 (bilinear)"), status)

        // Back to a 28×28 model, then Cancel on the next mismatch keeps the model.
        h.view.open(ShellHarness.fixtures + "/plain_cnn.onnx")
        h.settle()
        XCTAssertTrue(h.model.network.path.hasSuffix("plain_cnn.onnx"))
        XCTAssertNil(h.view.options?.resize, "a new model asks afresh")
        h.view.open(ShellHarness.fixtures + "/residual_cnn.onnx")
        h.host.frame(h.frame)
        XCTAssertNotNil(h.view.pendingOpen)
        h.host.press(.escape, h.frame)
        XCTAssertNil(h.view.pendingOpen)
        XCTAssertTrue(h.model.network.path.hasSuffix("plain_cnn.onnx"))
    }

    @MainActor func testChooseDataOpensModelAndDataTogether() async throws {
        let h = try ShellHarness()
        // Data of the model's size, in a folder the chooser will be pointed at.
        try ShellHarness.writeIDX(to: h.folder + "/small", count: 20, side: 16)
        h.view.open(ShellHarness.fixtures + "/bn_cnn.onnx")
        h.host.frame(h.frame)
        // "Choose data…" is the third choice.
        for _ in 0..<3 { h.host.press(.tab, h.frame) }
        h.host.press(.enter, h.frame)
        h.host.frame(h.frame)
        XCTAssertTrue(h.view.chooser.isOpen)
        XCTAssertEqual(h.view.chooser.purpose, .data(forModel: ShellHarness.fixtures + "/bn_cnn.onnx"))
        h.host.type(h.folder + "/small", h.frame)
        h.host.press(.enter, h.frame)              // into the folder
        h.host.frame(h.frame)
        h.host.press(.character("a"), modifiers: .control, h.frame)
        h.host.type(h.folder + "/small/t10k-images-idx3-ubyte", h.frame)
        h.host.press(.enter, h.frame)              // the images file: open model and data
        h.settle()
        XCTAssertFalse(h.view.chooser.isOpen)
        XCTAssertTrue(h.model.network.path.hasSuffix("bn_cnn.onnx"))
        XCTAssertEqual(h.model.workspace.images.count, 20)
        XCTAssertNil(h.view.options?.resize)
        XCTAssertEqual(h.model.messages, [])
    }

    // MARK: Bug 6: Tab cycles the views; F11 twice restores the layout

    @MainActor func testTabCyclesTheViewsWithAVisibleRing() async throws {
        let h = try ShellHarness()
        XCTAssertEqual(h.view.focusedView, 0)
        var seen: [Int] = []
        for _ in 0..<5 {
            h.host.press(.tab, h.frame)
            seen.append(h.view.focusedView)
        }
        XCTAssertEqual(seen, [1, 2, 3, 4, 0])
        h.host.press(.tab, modifiers: .shift, h.frame)
        XCTAssertEqual(h.view.focusedView, 4)
        // The focused view wears the focus ring; the others do not.
        h.host.press(.tab, modifiers: .shift, h.frame)   // maps
        h.host.frame(h.frame)
        let image = try h.host.capture()
        func pixel(_ p: Vec2) -> Color {
            let i = (Int(p.y) * image.width + Int(p.x)) * 4
            return Color(r: image.pixels[i], g: image.pixels[i + 1], b: image.pixels[i + 2])
        }
        let ring = h.host.ui.theme.colors.focusRing
        let maps = try XCTUnwrap(h.view.layout["maps"]), chart = try XCTUnwrap(h.view.layout["chart"])
        let onRing = pixel(Vec2(maps.center.x, maps.y + 0.5))
        XCTAssertEqual(onRing.r, ring.r, accuracy: 8); XCTAssertEqual(onRing.g, ring.g, accuracy: 8); XCTAssertEqual(onRing.b, ring.b, accuracy: 8)
        let other = pixel(Vec2(chart.center.x, chart.y + 0.5))
        XCTAssertGreaterThan(abs(Int(other.r) - Int(ring.r)) + abs(Int(other.g) - Int(ring.g)) + abs(Int(other.b) - Int(ring.b)), 40)
        // With the browser hidden, Tab skips it.
        h.host.press(.character("b"), modifiers: .control, h.frame)
        seen = []
        for _ in 0..<4 { h.host.press(.tab, h.frame); seen.append(h.view.focusedView) }
        XCTAssertFalse(seen.contains(4))
    }

    @MainActor func testFullScreenTwiceRestoresTheLayoutExactly() async throws {
        let h = try ShellHarness(width: 1600, height: 1000)
        h.host.frame(h.frame)
        let before = h.view.layout
        h.host.press(.function(11), h.frame)
        XCTAssertTrue(h.view.wantsFullscreenToggle)
        // The host goes full screen: the window takes the display's size.
        h.view.wantsFullscreenToggle = false
        h.host.resize(width: 1920, height: 1080)
        h.host.frame(h.frame)
        XCTAssertNotEqual(h.view.layout["maps"], before["maps"])
        h.host.press(.function(11), h.frame)
        XCTAssertTrue(h.view.wantsFullscreenToggle)
        h.host.resize(width: 1600, height: 1000)
        h.host.frame(h.frame)
        XCTAssertEqual(h.view.layout, before, "every view back where it was, nothing clipped")
    }

    // MARK: Bug 7: the file chooser

    @MainActor func testTheChooserSelectsWithCtrlANavigatesWithReturnAndRemembersTheFolder() async throws {
        let h = try ShellHarness()
        let store = PreferencesStore(path: h.folder + "/config/cnnslicer/preferences.json")
        h.host.press(.character("o"), modifiers: .control, h.frame)
        h.host.frame(h.frame)
        XCTAssertTrue(h.view.chooser.isOpen)
        // The path field has focus with its text selected: typing replaces it.
        XCTAssertEqual(h.host.ui.textSelection, 0..<h.view.chooser.path.unicodeScalars.count)
        h.host.type(h.folder + "/series", h.frame)
        XCTAssertEqual(h.view.chooser.path, h.folder + "/series")
        h.host.press(.enter, h.frame)
        h.host.frame(h.frame)
        XCTAssertEqual(h.view.chooser.directory, FileChooserState.standardized(h.folder + "/series"))
        XCTAssertEqual(h.view.chooser.entries, ["..", "epoch_0.onnx"])
        // Ctrl+A selects the whole field again, Backspace clears it.
        h.host.press(.character("a"), modifiers: .control, h.frame)
        XCTAssertEqual(h.host.ui.textSelection?.count, h.view.chooser.path.unicodeScalars.count)
        h.host.press(.backspace, h.frame)
        XCTAssertEqual(h.view.chooser.path, "")
        // A relative name opens from the folder shown.
        h.host.type("epoch_0.onnx", h.frame)
        h.host.press(.enter, h.frame)
        h.settle()
        XCTAssertFalse(h.view.chooser.isOpen)
        XCTAssertEqual(h.model.network.path, FileChooserState.standardized(h.folder + "/series/epoch_0.onnx"))
        // The folder is remembered on disk, written atomically (no temporary file left).
        let remembered = store.load().lastFolder
        XCTAssertEqual(remembered, FileChooserState.standardized(h.folder + "/series"))
        let configFiles = try FileManager.default.contentsOfDirectory(atPath: h.folder + "/config/cnnslicer")
        XCTAssertEqual(configFiles, ["preferences.json"])
        // A new session opens the chooser there.
        let next = AppView(model: h.model, textures: h.host.renderer, options: h.view.options, preferences: store)
        next.openFileChooser()
        XCTAssertEqual(next.chooser.directory, remembered)
        // A damaged file means the defaults, not a failure.
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: store.path))
        XCTAssertNil(store.load().lastFolder)
    }

    @MainActor func testReturnInTheListGoesIntoFoldersAndEscapeCloses() async throws {
        let h = try ShellHarness()
        h.view.openFileChooser()
        h.view.chooser.navigate(to: h.folder)
        h.host.frame(h.frame)
        let list = h.view.chooser.entries
        XCTAssertEqual(list, ["..", "config/", "exports/", "fashion-mnist/", "series/"].filter { $0 != "config/" || FileManager.default.fileExists(atPath: h.folder + "/config") })
        // Tab from the path field to the list, Down to "series/", Return.
        h.host.press(.tab, h.frame)
        h.host.press(.tab, h.frame)
        let index = try XCTUnwrap(list.firstIndex(of: "series/"))
        for _ in 0...index { h.host.press(.down, h.frame) }
        h.host.press(.enter, h.frame)
        XCTAssertEqual(h.view.chooser.directory, FileChooserState.standardized(h.folder + "/series"))
        h.host.press(.escape, h.frame)
        XCTAssertFalse(h.view.chooser.isOpen)
        XCTAssertEqual(h.model.messages, [])
    }

    // MARK: Bug 8: a model without --data

    @MainActor func testAModelWithoutDataOpensTheDataItNamesOrTheDefault() async throws {
        let folder = NSTemporaryDirectory() + "cnnslicer-default-data-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try ShellHarness.writeIDX(to: folder + "/fallback", count: 30, side: 28)
        try ShellHarness.writeIDX(to: folder + "/named/mnist", count: 25, side: 28)
        let saved = ProcessInfo.processInfo.environment["CNNSLICER_DATA"]
        setenv("CNNSLICER_DATA", folder + "/named", 1)
        defer { if let saved { setenv("CNNSLICER_DATA", saved, 1) } else { unsetenv("CNNSLICER_DATA") } }
        let assets = ShellHarness.shippedModels
        func options(_ model: String) -> WorkspaceOptions {
            var o = WorkspaceOptions(models: [model], data: "")
            o.fallbackData = folder + "/fallback"
            o.fallbackNote = "using the fallback"
            return o
        }
        // The shipped MNIST model's class names are MNIST's: its data is opened by name.
        XCTAssertEqual(WorkspaceOptions.intendedData(for: try Network(contentsOf: assets + "/mnist_cnn.onnx")), "mnist")
        XCTAssertEqual(WorkspaceOptions.intendedData(for: try Network(contentsOf: assets + "/cifar10_vgg.onnx")), "cifar10")
        XCTAssertEqual(WorkspaceOptions.intendedData(for: try Network(contentsOf: assets + "/fashion_mnist_cnn.onnx")), "fashion-mnist")
        let (named, resolved) = try options(assets + "/mnist_cnn.onnx").open()
        XCTAssertEqual(named.images.count, 25)
        XCTAssertEqual(resolved.data, "mnist")
        // A model that names nothing gets the default data, with its note.
        let (fallback, fallbackOptions) = try options(ShellHarness.fixtures + "/plain_cnn.onnx").open()
        XCTAssertEqual(fallback.images.count, 30)
        XCTAssertEqual(fallbackOptions.note, "using the fallback")
        // When the default data does not fit, the message says what to pass.
        XCTAssertThrowsError(try options(ShellHarness.fixtures + "/bn_cnn.onnx").open()) { error in
            let mismatch = error as? SizeMismatch
            XCTAssertEqual(mismatch?.dataWasDefault, true)
            XCTAssertTrue("\(error)".contains("--data"), "\(error)")
            XCTAssertTrue("\(error)".contains("3×16×16"), "\(error)")
        }
        // A named data set that is not installed: one line naming the model, the set and the flag.
        XCTAssertThrowsError(try options(assets + "/cifar10_vgg.onnx").open()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("cifar10_vgg.onnx") && text.contains("cifar10") && text.contains("--data"), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
    }

    // MARK: Draw tab

    @MainActor func testPenSizeEraserAndBackToTheImageYouWereOn() async throws {
        let h = try ShellHarness()
        h.model.selection.image = 7
        h.host.frame(h.frame)
        h.view.browser.tab = 1
        h.host.frame(h.frame)
        let pad = try XCTUnwrap(h.view.layout["drawPad"])
        func stroke() {
            h.host.drag(from: Vec2(pad.x + pad.width * 0.2, pad.center.y), to: Vec2(pad.x + pad.width * 0.8, pad.center.y), steps: 8, h.frame)
        }
        func ink() -> Float { h.view.pad.pixels.reduce(0, +) }
        // The thinnest pen: click the size slider's left end.
        let size = try XCTUnwrap(h.view.layout["penSize"])
        h.host.click(at: Vec2(size.x + 2, size.center.y), h.frame)
        XCTAssertEqual(h.view.pad.penSize, 1)
        stroke()
        let thin = ink()
        XCTAssertNil(h.model.selection.image, "a drawn image replaces the data set image")
        // Clear, the widest pen, the same stroke: more ink.
        h.view.pad.pixels = Array(repeating: 0, count: h.view.pad.pixels.count)
        h.host.click(at: Vec2(size.maxX - 2, size.center.y), h.frame)
        XCTAssertEqual(h.view.pad.penSize, 6)
        stroke()
        let wide = ink()
        XCTAssertGreaterThan(wide, thin * 3)
        // The eraser takes ink away along its path.
        let eraser = try XCTUnwrap(h.view.layout["eraser"])
        h.host.click(at: eraser.center, h.frame)
        XCTAssertTrue(h.view.pad.erasing)
        stroke()
        XCTAssertLessThan(ink(), wide * 0.2)
        XCTAssertNotNil(h.model.drawnPixels)
        // "Back to data" returns to image 7.
        let back = try XCTUnwrap(h.view.layout["backToData"])
        h.host.click(at: back.center, h.frame)
        XCTAssertNil(h.model.drawnPixels)
        XCTAssertEqual(h.model.selection.image, 7)
    }

    // MARK: CSV export

    @MainActor func testCSVExportWritesOneTablePerFileWithModelDataAndSettings() async throws {
        let h = try ShellHarness()
        h.model.selection.tap = 2
        h.model.selection.settings.millerMadow = true
        h.settle()
        h.host.press(.character("e"), modifiers: .control, h.frame)
        let files = try FileManager.default.contentsOfDirectory(atPath: h.folder + "/exports").sorted()
        XCTAssertEqual(files.count, 2, "\(files)")
        let summary = try XCTUnwrap(h.model.snapshot?.summary)
        for file in files {
            let text = try String(contentsOfFile: h.folder + "/exports/" + file, encoding: .utf8)
            let lines = text.split(separator: "\n").map(String.init)
            let meta = lines.filter { $0.hasPrefix("#") }
            let table = lines.filter { !$0.hasPrefix("#") }
            XCTAssertTrue(meta.contains("# model: \(h.model.network.path)"), "\(meta)")
            XCTAssertTrue(meta.contains { $0.hasPrefix("# data: ") && $0.contains("fashion-mnist") })
            XCTAssertTrue(meta.contains("# bins: 64"))
            XCTAssertTrue(meta.contains("# miller_madow: true"))
            XCTAssertTrue(meta.contains("# images: 60"))
            let header = table[0].split(separator: ",")
            // One table: every row has the header's columns.
            XCTAssertTrue(table.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == header.count })
            if file.hasSuffix("-taps.csv") {
                XCTAssertEqual(table.count - 1, summary.taps.count)
                let ensemble = try XCTUnwrap(header.firstIndex(of: "ensemble_entropy"))
                for (row, tap) in zip(table.dropFirst(), summary.taps) {
                    XCTAssertEqual(Double(row.split(separator: ",")[ensemble]), tap.ensembleEntropy)
                }
            } else {
                XCTAssertTrue(file.hasSuffix("-channels.csv"))
                XCTAssertTrue(meta.contains { $0.contains("tap \(summary.taps[2].name)") })
                XCTAssertEqual(table.count - 1, summary.taps[2].channelEnsembleEntropy.count)
                for (row, value) in zip(table.dropFirst(), summary.taps[2].channelLabelInformation) {
                    XCTAssertEqual(Double(row.split(separator: ",")[3]), value)
                }
            }
        }
    }
}
