import Foundation
import XCTest
import SlicerData
import SlicerEngine
@testable import SlicerInfo
import SlicerUI
@testable import SlicerApp

/// The data views in the headless host (issue 14): matrix, chart, CAR panel,
/// scatter, feature maps. Real widgets and input events on the fixture models,
/// with Fashion-MNIST's class names (long ones, as an audience sees them).
@MainActor
final class ViewsHarness {
    let host: HeadlessHost
    let model: AppModel
    let view: AppView
    static let fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// A fixture model by name, or a path.
    static func fixture(_ name: String) -> String {
        name.hasSuffix(".onnx") ? name : repositoryRoot + "/Tests/SlicerEngineTests/Fixtures/\(name).onnx"
    }

    static func workspace(_ fixture: String = "plain_cnn", count: Int = 200) throws -> Workspace {
        let network = try Network(contentsOf: Self.fixture(fixture))
        var rng: UInt64 = 777
        let pixels: [UInt8] = (0..<(count * 784)).map { _ in
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: rng >> 56)
        }
        let images = try LabeledImages(channels: 1, height: 28, width: 28, pixels: pixels, labels: (0..<count).map { $0 % 10 },
                                       classNames: fashion, source: "generated")
        return Workspace(inputs: [try ModelInput(network: network, images: images, labels: fashion)])
    }

    init(width: Int = 1400, height: Int = 900, fixture: String = "plain_cnn", count: Int = 200, carCache: CARCache? = nil) throws {
        setenv("SDL_VIDEODRIVER", "offscreen", 1)
        setenv("CNNSLICER_NO_CACHE", "1", 1)
        let exports = NSTemporaryDirectory() + "cnnslicer-views-tests"
        try FileManager.default.createDirectory(atPath: exports, withIntermediateDirectories: true)
        setenv("CNNSLICER_EXPORT_DIR", exports, 1)
        host = try HeadlessHost(width: width, height: height)
        model = AppModel(workspace: try Self.workspace(fixture, count: count), threads: 2, carCache: carCache)
        view = AppView(model: model, textures: host.renderer)
        settle()
    }

    func frame(_ ui: UIContext) { view.frame(ui) }
    func frame() { host.frame(frame) }
    func pause(_ seconds: Double) { Thread.sleep(forTimeInterval: seconds) }

    /// Frames until the analysis, the shown image and any CAR computation are in.
    func settle(timeout: Double = 120) {
        let deadline = Date().addingTimeInterval(timeout)
        var calm = 0
        while Date() < deadline && calm < 3 {
            host.frame(frame)
            let done = model.snapshot?.isComplete ?? false
            let car = !view.isCARRunning
            calm = done && model.featureMaps != nil && car ? calm + 1 : 0
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// Opens the CAR tab, presses Run (greedy if asked) and waits for the result.
    func runCAR(tap: Int, greedy: Bool = false) throws {
        model.selection.tap = tap
        view.rightTab = 1
        view.carPanel.greedy = greedy
        frame()
        settleContext()
        try click(button: "run")
        XCTAssertTrue(view.isCARRunning || model.car.records.values.contains { $0.key.tap == tap }, "Run started CAR")
        settle()
    }

    /// Frames until the CAR context digest is known.
    func settleContext() {
        let deadline = Date().addingTimeInterval(30)
        while view.carContext == nil && Date() < deadline { frame(); Thread.sleep(forTimeInterval: 0.005) }
    }

    /// Clicks one of the CAR panel's flowing buttons (run, greedy, cancel, mask, clear, export).
    func click(button: String) throws {
        let names = ["run": 0, "greedy": 1, "cancel": 2, "mask": 3, "clear": 4, "export": 5]
        let index = try XCTUnwrap(names[button])
        frame()   // the panel as it is now
        let rect = try XCTUnwrap(view.layout["carControl\(index)"], "button \(button) drawn")
        host.click(at: rect.center, frame)
    }
}

final class ViewsTests: XCTestCase {
    // MARK: Start tap

    @MainActor func testTheAppStartsOnTheFirstActivation() async throws {
        let h = try ViewsHarness()
        let tap = h.model.network.taps[h.model.selection.tap]
        XCTAssertEqual(tap.opType, "Relu")
        XCTAssertTrue(h.model.network.taps.prefix(h.model.selection.tap).allSatisfy { !["Relu", "LeakyRelu"].contains($0.opType) })
    }

    // MARK: Bug 2: the matrix scrolls, every row can be seen and brushed

    @MainActor func testMatrixScrollsToEveryRowWithWheelKeysAndScrollbar() async throws {
        // A small window: /relu2/Relu's 16 rows do not all fit.
        let h = try ViewsHarness(width: 1024, height: 700)
        h.model.selection.tap = 5
        h.settle()
        let g0 = try XCTUnwrap(h.view.matrix.geometry)
        let channels = h.model.network.taps[5].channels
        XCTAssertEqual(g0.order.count, channels)
        let last = try XCTUnwrap(g0.rowRect(channel: channels - 1))
        XCTAssertGreaterThan(last.maxY, g0.viewport.maxY, "the last row starts out of sight")
        XCTAssertGreaterThanOrEqual(g0.rowHeight, h.host.ui.lineHeight(.small) * 0.9, "rows stay tall enough for their labels")

        // Wheel over the rows.
        h.host.scroll(by: Vec2(0, -10), at: g0.viewport.center, h.frame)
        h.frame()
        let g1 = try XCTUnwrap(h.view.matrix.geometry)
        XCTAssertLessThan(g1.firstRowY, g0.firstRowY, "the wheel scrolls the rows")
        let lastRow = try XCTUnwrap(g1.rowRect(channel: channels - 1))
        XCTAssertLessThanOrEqual(lastRow.maxY, g1.viewport.maxY + 1, "the wheel reaches the last row")
        // ... which can be brushed there.
        h.host.click(at: Vec2(g1.viewport.x + g1.viewport.width * 0.6, lastRow.center.y), h.frame)
        XCTAssertEqual(h.model.selection.channels, [channels - 1])

        // Keys: Home, then End, with the matrix focused.
        h.view.focusedView = 2
        h.host.press(.home, h.frame)
        h.frame()
        XCTAssertEqual(h.view.matrix.geometry?.firstRowY ?? 0, g0.firstRowY, accuracy: 0.5, "Home scrolls to the top")
        h.host.press(.end, h.frame)
        h.frame()
        let g2 = try XCTUnwrap(h.view.matrix.geometry)
        XCTAssertLessThanOrEqual(try XCTUnwrap(g2.rowRect(channel: channels - 1)).maxY, g2.viewport.maxY + 1, "End shows the last row")
        h.host.press(.pageUp, h.frame)
        h.frame()
        XCTAssertGreaterThan(h.view.matrix.geometry?.firstRowY ?? 0, g2.firstRowY, "Page Up scrolls back")

        // The scroll bar: drag its thumb from the top to the bottom.
        h.host.press(.home, h.frame)
        h.frame()
        let bar = h.host.ui.scaled(h.host.ui.theme.scrollbarWidth)
        let top = Vec2(g0.viewport.maxX + bar / 2, g0.viewport.y + 4)
        h.host.drag(from: top, to: Vec2(top.x, g0.viewport.maxY + 40), steps: 6, h.frame)
        h.frame()
        let g3 = try XCTUnwrap(h.view.matrix.geometry)
        XCTAssertLessThanOrEqual(try XCTUnwrap(g3.rowRect(channel: channels - 1)).maxY, g3.viewport.maxY + 1, "the scroll bar reaches the last row")
    }

    @MainActor func testAChannelBrushedElsewhereScrollsIntoTheMatrix() async throws {
        let h = try ViewsHarness(width: 1024, height: 700)
        h.model.selection.tap = 5
        h.settle()
        let g0 = try XCTUnwrap(h.view.matrix.geometry)
        XCTAssertGreaterThan(try XCTUnwrap(g0.rowRect(channel: 15)).maxY, g0.viewport.maxY + 1, "out of sight at first")
        h.model.selection.channels = [15]   // as a click on a CAR bar or a scatter point does
        h.frame(); h.frame()
        let g1 = try XCTUnwrap(h.view.matrix.geometry)
        let row = try XCTUnwrap(g1.rowRect(channel: 15))
        XCTAssertTrue(row.minY >= g1.viewport.minY - 1 && row.maxY <= g1.viewport.maxY + 1, "\(row) in \(g1.viewport)")
        // ... and the user can scroll away from it again.
        h.host.scroll(by: Vec2(0, 10), at: g1.viewport.center, h.frame)
        h.frame()
        XCTAssertGreaterThan(h.view.matrix.geometry?.firstRowY ?? 0, g1.firstRowY)
    }

    @MainActor func testMatrixRowsCarryLabelsAndBrushedRowsAreMarked() async throws {
        let h = try ViewsHarness(width: 1024, height: 700)
        h.model.selection.tap = 5
        h.settle()
        let g = try XCTUnwrap(h.view.matrix.geometry)
        // Brush rows 1…3 by dragging across them.
        let r1 = try XCTUnwrap(g.rowRect(channel: 1)), r3 = try XCTUnwrap(g.rowRect(channel: 3))
        let x = g.columnX[2] + 2
        h.host.drag(from: Vec2(x, r1.center.y), to: Vec2(x, r3.center.y), steps: 5, h.frame)
        XCTAssertEqual(h.model.selection.channels, [1, 2, 3])
        h.frame()
        let image = try h.host.capture()
        let theme = h.host.ui.theme
        let panel = theme.colors.panel
        // Every visible row has its channel number at the left (ink in the label column) ...
        let geometry = try XCTUnwrap(h.view.matrix.geometry)
        let labelColumn = geometry.columnX[0] - geometry.viewport.x
        for c in 0..<8 {
            guard let row = geometry.rowRect(channel: c), row.maxY <= geometry.viewport.maxY else { continue }
            var ink = 0
            for px in Int(geometry.viewport.x)..<Int(geometry.viewport.x + labelColumn - 4) {
                let color = image[px, Int(row.center.y)]
                if abs(Int(color.r) - Int(panel.r)) + abs(Int(color.g) - Int(panel.g)) + abs(Int(color.b) - Int(panel.b)) > 60 { ink += 1 }
            }
            XCTAssertGreaterThan(ink, 1, "row of channel \(c) has a label")
        }
        // ... and a brushed row's label cell is filled with the accent colour, a plain one is not.
        func accentShare(_ c: Int) throws -> Double {
            let row = try XCTUnwrap(geometry.rowRect(channel: c))
            var hits = 0, total = 0
            for px in Int(geometry.viewport.x + 1)..<Int(geometry.viewport.x + labelColumn - 6) {
                total += 1
                if image[px, Int(row.y + 2)] == theme.colors.accent { hits += 1 }
            }
            return Double(hits) / Double(max(total, 1))
        }
        XCTAssertGreaterThan(try accentShare(2), 0.5, "a brushed row is marked across its label, not by a tick")
        XCTAssertLessThan(try accentShare(5), 0.1)
    }

    @MainActor func testMatrixHeadersShowWholeClassNamesAndLegendsForEveryScale() async throws {
        for (w, hgt, large) in [(1024, 700, false), (1600, 1000, true), (1600, 1000, false)] {
            let h = try ViewsHarness(width: w, height: hgt)
            if large { h.view.largeType = true; h.view.applyLargeType(h.host.ui) }
            h.frame(); h.frame()
            let g = try XCTUnwrap(h.view.matrix.geometry)
            let classHeaders = Array(g.headerTexts.prefix(10))
            XCTAssertEqual(classHeaders, ViewsHarness.fashion, "\(w)×\(hgt) large \(large): whole class names, not \"T-shi\"")
            XCTAssertNotNil(h.view.layout["matrixLegend0"], "entropy legend")
            XCTAssertNotNil(h.view.layout["matrixLegend1"], "label information legend")
            XCTAssertNil(h.view.layout["matrixLegend2"], "no CAR legend before CAR")
        }
    }

    // MARK: Bug 4: CAR of another model leaves the matrix and its sort; units

    @MainActor func testCARColumnBelongsToItsModelAndSortsAway() async throws {
        let h = try ViewsHarness(count: 80)
        let tap = h.model.selection.tap
        try h.runCAR(tap: tap)
        h.view.rightTab = 0
        h.frame()
        XCTAssertEqual(h.view.matrix.geometry?.columns.last, .car, "CAR joins the matrix for its model and tap")
        XCTAssertNotNil(h.view.layout["matrixLegend2"], "with its colour legend")
        // Sort by CAR (click its header).
        let g = try XCTUnwrap(h.view.matrix.geometry)
        let header = Vec2(g.columnX[g.columns.count - 1] + g.columnWidth / 2, g.viewport.y - 20)
        h.host.click(at: header, h.frame)
        XCTAssertEqual(h.view.matrix.sortColumn, .car)
        // Units: points, never bits.
        let tooltip = h.view.matrixTooltip(0, .car, value: 1.5, tap: try XCTUnwrap(h.model.snapshot?.summary?.taps[tap]),
                                           classNames: ViewsHarness.fashion, method: .instance, shown: h.view.shownCAR(tap: tap))
        XCTAssertTrue(tooltip.contains("points") && !tooltip.contains("bits"), tooltip)

        // Another model with the same input: the shipped MNIST CNN, no CAR of its own.
        h.model.replace(try ViewsHarness.workspace(ViewsHarness.repositoryRoot + "/assets/models/mnist_cnn.onnx", count: 80))
        h.model.selection.tap = tap
        h.settle()
        XCTAssertFalse(h.view.matrix.geometry?.columns.contains(.car) ?? true, "the old model's CAR left the matrix")
        XCTAssertNil(h.view.matrix.sortColumn, "and the sort")
        XCTAssertNil(h.view.layout["matrixLegend2"])
        // Its result is still in the session (results list), for the model it belongs to.
        XCTAssertEqual(h.model.car.records.count, 1)
    }

    // MARK: Bug 5: CAR results are never lost

    @MainActor func testCARResultsSurviveCancelASecondTapAndAMask() async throws {
        let h = try ViewsHarness(count: 80)
        let first = h.model.selection.tap
        try h.runCAR(tap: first)
        let result = try XCTUnwrap(h.view.shownCAR(tap: first))
        XCTAssertTrue(result.matchesMask)
        // Cancel with nothing running: the result stays.
        try h.click(button: "cancel")
        h.frame()
        XCTAssertNotNil(h.view.shownCAR(tap: first), "Cancel when idle keeps finished results")
        // A second tap: both kept.
        let second = first + 1
        try h.runCAR(tap: second)
        XCTAssertNotNil(h.view.shownCAR(tap: second))
        XCTAssertEqual(h.view.shownCAR(tap: first)?.scores, result.scores, "the first tap's result is kept")
        XCTAssertEqual(h.model.car.records.count, 2)
        // Apply a mask at the first tap: its unmasked result is still shown, marked as such.
        h.model.selection.tap = first
        h.model.selection.channels = [0, 1]
        h.frame()
        try h.click(button: "mask")
        h.settle()
        XCTAssertEqual(h.model.selection.mask.channels[first], [0, 1])
        let shown = try XCTUnwrap(h.view.shownCAR(tap: first), "a mask does not hide the results")
        XCTAssertFalse(shown.matchesMask)
        XCTAssertEqual(shown.scores, result.scores)
    }

    @MainActor func testCancelStopsOnlyTheRunningComputation() async throws {
        let h = try ViewsHarness(count: 600)
        let first = h.model.selection.tap
        try h.runCAR(tap: first)
        XCTAssertEqual(h.model.car.records.count, 1)
        // A long greedy run at a 16-channel tap, cancelled while it runs.
        h.model.selection.tap = 5
        h.view.carPanel.greedy = true
        h.frame()
        try h.click(button: "run")
        XCTAssertTrue(h.view.isCARRunning, "greedy on 600 images takes more than a few frames")
        try h.click(button: "cancel")
        XCTAssertFalse(h.view.isCARRunning)
        h.settle()
        XCTAssertNil(h.view.shownCAR(tap: 5), "the cancelled run left nothing")
        XCTAssertEqual(h.model.car.records.count, 1, "and the finished result is still there")
        XCTAssertNotNil(h.view.shownCAR(tap: first))
    }

    @MainActor func testCARResultsAreCachedOnDiskAndExported() async throws {
        let dir = NSTemporaryDirectory() + "cnnslicer-views-car-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try ViewsHarness(count: 80, carCache: CARCache(directory: dir))
        let tap = first.model.selection.tap
        try first.runCAR(tap: tap, greedy: true)
        let computed = try XCTUnwrap(first.view.shownCAR(tap: tap))
        XCTAssertFalse(computed.record.fromDisk)
        XCTAssertNotNil(computed.record.result.greedy)
        // Export: JSON (cnnslicer.car.v1) and two CSV tables.
        let exports = NSTemporaryDirectory() + "cnnslicer-views-tests"
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: exports)) ?? [])
        try first.click(button: "export")
        let added = Set(try FileManager.default.contentsOfDirectory(atPath: exports)).subtracting(before)
        let json = try XCTUnwrap(added.first { $0.hasSuffix("-car.json") }, "\(added)")
        XCTAssertNotNil(added.first { $0.hasSuffix("-car.csv") })
        XCTAssertNotNil(added.first { $0.hasSuffix("-car-pruning.csv") }, "\(added)")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: exports + "/" + json))) as? [String: Any])
        XCTAssertEqual(object["format"] as? String, "cnnslicer.car.v1")
        XCTAssertEqual((object["car"] as? [Double])?.count, first.model.network.taps[tap].channels)
        XCTAssertFalse(added.contains { $0.contains(".tmp") }, "nothing half-written")

        // A new session on the same files finds the result without running anything.
        let second = try ViewsHarness(count: 80, carCache: CARCache(directory: dir))
        second.view.rightTab = 1
        second.settleContext()
        let deadline = Date().addingTimeInterval(30)
        while second.view.shownCAR(tap: tap) == nil && Date() < deadline { second.frame(); second.pause(0.01) }
        let cached = try XCTUnwrap(second.view.shownCAR(tap: tap))
        XCTAssertTrue(cached.record.fromDisk)
        XCTAssertEqual(cached.scores, computed.scores)
        XCTAssertEqual(cached.record.result.greedy, computed.record.result.greedy)
        XCTAssertNil(second.model.car.running)
    }

    // MARK: CAR panel

    @MainActor func testCARProgressSaysPercentAndTimeLeftAndResultsComeIncrementally() async throws {
        let h = try ViewsHarness(count: 320)
        let p = CARProgress(stage: "greedy 3/16", done: 3424192, total: 4420000, seconds: 60)
        let texts = h.view.carProgressTexts(p)
        XCTAssertEqual(texts[0], "greedy 3/16: 77 % · about 17 s left")
        XCTAssertFalse(texts.joined().contains("3424192"), "no raw counts")
        XCTAssertEqual(h.view.durationText(95), "1 min 35 s")
        // A run over 5 chunks of images: bars are drawn before it ends, from the partial scores.
        h.model.selection.tap = h.model.selection.tap
        h.view.rightTab = 1
        h.frame()
        h.settleContext()
        // However fast the machine, the run waits for a frame to take each partial result.
        h.model.car.holdsPartials = true
        try h.click(button: "run")
        var sawPartial = false
        let deadline = Date().addingTimeInterval(120)
        while h.view.isCARRunning && Date() < deadline {
            h.frame()
            if let partial = h.model.car.running?.partial, partial.imagesDone < partial.imagesTotal, h.view.layout["carBars"] != nil {
                if !sawPartial, let dir = ProcessInfo.processInfo.environment["SLICERAPP_KEEP_IMAGES"] {
                    try h.host.saveScreenshot(to: dir + "/car-partial.png")   // to look at
                }
                sawPartial = true
            }
            h.pause(0.002)
        }
        XCTAssertTrue(sawPartial, "CAR per filter is shown while the run goes on")
    }

    @MainActor func testCARPanelHoverNamesFilterAndClassAndClickBrushes() async throws {
        let h = try ViewsHarness(count: 80)
        try h.runCAR(tap: h.model.selection.tap)
        h.frame()
        let heat = try XCTUnwrap(h.view.layout["carHeat"])
        let channels = h.model.network.taps[h.model.selection.tap].channels
        // The cell of filter 3, class 4.
        let point = Vec2(heat.x + (3.5 / Float(channels)) * heat.width, heat.y + 4.5 / 10 * heat.height)
        h.host.click(at: point, h.frame)
        XCTAssertEqual(h.model.selection.channels, [3])
        let bars = try XCTUnwrap(h.view.layout["carBars"])
        h.host.click(at: Vec2(bars.x + (5.5 / Float(channels)) * bars.width, bars.maxY - 2), h.frame)
        XCTAssertEqual(h.model.selection.channels, [5])
    }

    // MARK: Bug 9: the ceiling of flat taps; numbers, chart and CSV agree

    @MainActor func testInstanceEntropyNeverExceedsItsCeilingInChartAndCSV() async throws {
        let h = try ViewsHarness()
        let summary = try XCTUnwrap(h.model.snapshot?.summary)
        let bins = summary.bins
        for (tap, s) in zip(h.model.network.taps, summary.taps) {
            XCTAssertLessThanOrEqual(s.instanceEntropy, s.instanceCeiling + 1e-9, tap.name)
            XCTAssertEqual(s.instanceCeiling, log2(Double(min(bins, tap.valuesPerImage))), accuracy: 1e-12, tap.name)
            XCTAssertEqual(s.channelInstanceCeiling, log2(Double(min(bins, tap.valuesPerChannel))), accuracy: 1e-12, tap.name)
        }
        let gemm = try XCTUnwrap(h.model.network.taps.last)
        XCTAssertEqual(summary.taps.last?.instanceCeiling ?? 0, log2(10), accuracy: 1e-12, "the 10-logit tap: log2(min(64, 10))")
        XCTAssertGreaterThan(summary.taps.last?.instanceEntropy ?? 0, 0.5, "\(gemm.name) has real entropy")
        // The chart draws that ceiling: its line lies above the all-images line everywhere.
        h.model.selection.method = .instance
        h.frame()
        let ceiling = try XCTUnwrap(h.view.chart.lines[.ceiling]), all = try XCTUnwrap(h.view.chart.lines[.all])
        for (c, a) in zip(ceiling, all) { XCTAssertLessThanOrEqual(c.y, a.y + 0.5, "screen y grows downwards") }
        // The CSV export says the same.
        // The CSV tables say the same: per tap, and per channel of the selected flat tap.
        h.model.selection.tap = h.model.network.taps.count - 1
        h.frame()
        let paths = h.view.exportCSV()
        XCTAssertEqual(paths.count, 2)
        var rowsPerFile: [Int] = []
        for path in paths {
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
            let header = try XCTUnwrap(lines.first { $0.contains("instance_ceiling") }, path).split(separator: ",").map(String.init)
            let entropyColumn = try XCTUnwrap(header.firstIndex(of: "instance_entropy"))
            let ceilingColumn = try XCTUnwrap(header.firstIndex(of: "instance_ceiling"))
            var rows = 0
            for line in lines where !line.hasPrefix("#") {
                let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard f.count == header.count, let e = Double(f[entropyColumn]), let c = Double(f[ceilingColumn]) else { continue }
                XCTAssertLessThanOrEqual(e, c + 1e-9, line)
                rows += 1
            }
            rowsPerFile.append(rows)
        }
        XCTAssertEqual(rowsPerFile, [h.model.network.taps.count, h.model.network.taps.last!.channels])
    }

    // MARK: The chart

    @MainActor func testChartLegendAndReadoutStayOffThePlot() async throws {
        let h = try ViewsHarness()
        let plot = try XCTUnwrap(h.view.layout["chartPlot"]), legend = try XCTUnwrap(h.view.layout["chartLegend"])
        XCTAssertFalse(plot.intersects(legend), "the legend is beside the plot")
        // Hover the plot: the values go to the legend; no tooltip box over the lines.
        h.host.moveMouse(to: plot.center, h.frame)
        for _ in 0..<40 { h.host.frame(h.frame) }   // past any tooltip delay
        let tooltipLayer = h.host.ui.drawData.lists[DrawLayer.tooltip.rawValue]
        for v in tooltipLayer.vertices { XCTAssertFalse(plot.insetBy(2).contains(v.position), "nothing drawn over the plot at \(v.position)") }
        // Tap names under the plot, never overlapping.
        let labels = h.view.chart.axisLabels
        XCTAssertGreaterThanOrEqual(labels.count, h.model.network.taps.count / 2)
        for i in labels.indices { for j in labels.indices where j > i { XCTAssertFalse(labels[i].intersects(labels[j]), "labels \(i) and \(j) overlap") } }
        for l in labels { XCTAssertGreaterThanOrEqual(l.y, plot.maxY) }
    }

    @MainActor func testChartValueAxisFitsLabelInformation() async throws {
        let h = try ViewsHarness()
        h.model.selection.method = .information
        h.frame()
        let summary = try XCTUnwrap(h.model.snapshot?.summary)
        let largest = summary.taps.map(\.labelInformation).max() ?? 0
        XCTAssertLessThan(largest, 0.5, "the fixture's label information is small")
        XCTAssertGreaterThanOrEqual(h.view.chart.yTop, largest)
        XCTAssertLessThan(h.view.chart.yTop, max(largest * 1.6, largest + 0.05), "the axis fits the data (not 0–1)")
    }

    @MainActor func testLegendClickDoesNotMoveTheLegendAndSelectsTheClass() async throws {
        let h = try ViewsHarness()
        let before = h.view.chart.legendRows
        let row = try XCTUnwrap(before[.cls(3)])
        h.host.click(at: row.center, h.frame)
        XCTAssertEqual(h.model.selection.classes, [3])
        h.settle()
        XCTAssertEqual(h.view.chart.legendRows, before, "no entry moved under the pointer")
        // The next class is still where it was: a second click selects it.
        h.host.click(at: try XCTUnwrap(before[.cls(4)]).center, h.frame)
        XCTAssertEqual(h.model.selection.classes, [3, 4])
    }

    @MainActor func testLinesAreHitAlongTheirSegmentsAndHoverNamesThem() async throws {
        let h = try ViewsHarness()
        let lines = h.view.chart.lines
        // A point halfway along a segment of some line, far from every other line and from vertices.
        var target: (ChartSeries.ID, Vec2)?
        search: for (id, points) in lines.sorted(by: { "\($0.key)" < "\($1.key)" }) where id != .ceiling {
            for (a, b) in zip(points, points.dropFirst()) {
                // Between the points, at least 10 pixels from either.
                let mid = a + (b - a) * 0.5
                guard (b - a).length > 24 else { continue }
                let others = lines.filter { $0.key != id && $0.key != .ceiling }.map { distance(from: mid, toPolyline: $0.value) }
                if others.allSatisfy({ $0 > 4 }) { target = (id, mid); break search }
            }
        }
        let (id, point) = try XCTUnwrap(target, "a segment away from the other lines")
        h.host.moveMouse(to: point, h.frame)
        h.frame()
        XCTAssertEqual(h.view.chart.hovered, id, "hover names the line under the pointer between its points")
        XCTAssertEqual(distance(from: Vec2(5, 5), toPolyline: [Vec2(0, 0), Vec2(10, 0)]), 5, accuracy: 1e-6)
        XCTAssertEqual(distance(from: Vec2(-3, 4), toPolyline: [Vec2(0, 0), Vec2(10, 0)]), 5, accuracy: 1e-6)
    }

    // MARK: Enlarged feature map

    @MainActor func testEnlargedMapKeepsItsAspectRatioWithTheCaptionOutside() async throws {
        let h = try ViewsHarness()
        h.model.selection.tap = 4   // 16 maps of 12×12
        h.settle()
        let maps = try XCTUnwrap(h.view.layout["maps"])
        // Click the first map of the grid.
        let order = h.view.lastMapOrder
        XCTAssertFalse(order.isEmpty)
        let gridStart = Vec2(maps.x + h.host.ui.scaled(8) * 2 + h.host.ui.scaled(200) + 10, maps.y + h.host.ui.lineHeight(.small) * 2 + 10)
        h.host.click(at: gridStart, h.frame)
        h.frame()
        let image = try XCTUnwrap(h.view.layout["enlargedMap"], "a map was enlarged")
        if let dir = ProcessInfo.processInfo.environment["SLICERAPP_KEEP_IMAGES"] { try h.host.saveScreenshot(to: dir + "/enlarged.png") }
        XCTAssertEqual(image.width / image.height, 1, accuracy: 0.02, "a 12×12 map stays square")
        XCTAssertGreaterThan(image.y, maps.y + h.host.ui.lineHeight(.small), "the caption is above the data, not over it")
    }

    // MARK: Entropy vs CAR

    @MainActor func testScatterShowsSpearmanAndBrushesChannels() async throws {
        let h = try ViewsHarness(count: 80)
        let tap = h.model.selection.tap
        try h.runCAR(tap: tap)
        h.view.rightTab = 2
        h.view.scatter.measure = .ensemble
        h.frame(); h.frame()
        let summary = try XCTUnwrap(h.model.snapshot?.summary)
        let car = try XCTUnwrap(h.view.shownCAR(tap: tap)).scores.car.map { $0 * 100 }
        let expected = RankCorrelation.spearman(summary.taps[tap].channelEnsembleEntropy, car)
        XCTAssertEqual(h.view.scatter.rho, expected)
        XCTAssertNotNil(h.view.layout["scatterRho"])
        // Brush a rectangle over the right half of the plot.
        let plot = try XCTUnwrap(h.view.layout["scatterPlot"])
        let points = h.view.scatter.points
        XCTAssertEqual(points.count, h.model.network.taps[tap].channels)
        let from = Vec2(plot.center.x, plot.y + 2), to = Vec2(plot.maxX - 2, plot.maxY - 2)
        h.host.drag(from: from, to: to, steps: 5, h.frame)
        let band = Rect(corner: from, corner: to)
        let inside = Set(points.indices.filter { band.contains(points[$0]) })
        XCTAssertFalse(inside.isEmpty)
        XCTAssertEqual(h.model.selection.channels, inside)
        h.frame()
        XCTAssertEqual(Set(h.view.lastMapOrder.prefix(inside.count)), inside, "brushed channels lead the feature maps")
    }
}

final class ViewsLayoutTests: XCTestCase {
    /// Every state of the data views at the sizes, type sizes and themes the app is shown
    /// at, on the shipped Fashion-MNIST model (real tap names): no text cut with "…" —
    /// not a control's label, not a view's own text.
    @MainActor func testNoViewCutsAnyTextAtAnySizeThemeOrTypeSize() async throws {
        let model = ViewsHarness.repositoryRoot + "/assets/models/fashion_mnist_cnn.onnx"
        let h = try ViewsHarness(fixture: model, count: 120)
        let taps = h.model.network.taps
        let relu = try XCTUnwrap(taps.first { $0.opType == "Relu" }).index
        try h.runCAR(tap: relu, greedy: true)
        XCTAssertNotNil(h.view.shownCAR(tap: relu)?.record.result.greedy)
        h.model.selection.channels = [3, 4, 5]
        let states: [(String, () -> Void)] = [
            ("matrix", { h.view.rightTab = 0; h.model.selection.method = .instance }),
            ("matrix, ensemble", { h.model.selection.method = .ensemble }),
            ("chart, label information", { h.model.selection.method = .information }),
            ("CAR per filter", { h.model.selection.method = .instance; _ = h.view.showPanel(named: "car") }),
            ("pruning curve", { _ = h.view.showPanel(named: "car-curve") }),
            ("results", { _ = h.view.showPanel(named: "car-results") }),
            ("scatter, instance", { _ = h.view.showPanel(named: "scatter"); h.view.scatter.measure = .instance }),
            ("scatter, information", { h.view.scatter.measure = .information }),
            ("another tap without CAR", { h.model.selection.tap = relu + 4; _ = h.view.showPanel(named: "car") }),
            ("scatter without CAR", { _ = h.view.showPanel(named: "scatter") }),
            ("enlarged map", { h.model.selection.tap = relu; h.view.maps.enlarged = 3 }),
            ("flat tap", { h.view.maps.enlarged = nil; h.model.selection.tap = taps.count - 1; _ = h.view.showPanel(named: "matrix") }),
        ]
        for setup in Presentation.all {
            setup.apply(to: h.host, h.view)
            let name = setup.name
            for (state, enter) in states {
                enter()
                h.frame(); h.frame()
                // Hover the chart's plot too: its read-out must not cut either.
                if let plot = h.view.layout["chartPlot"] { h.host.moveMouse(to: plot.center, h.frame) }
                let cut = h.host.ui.diagnostics.truncations
                XCTAssertEqual(cut, [], "\(name), \(state): \(cut.map(\.description).joined(separator: "; "))")
            }
            h.model.selection.tap = relu
        }
    }
}
