import Foundation
import XCTest
import SlicerData
import SlicerEngine
import SlicerInfo
import SlicerUI
@testable import SlicerApp

/// The app in the headless host (SDL offscreen driver, software renderer) on a
/// fixture model and generated images: real widgets, real input events.
@MainActor
final class AppHarness {
    let host: HeadlessHost
    let model: AppModel
    let view: AppView

    static var fixture: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SlicerEngineTests/Fixtures/plain_cnn.onnx").path
    }

    init() throws {
        setenv("SDL_VIDEODRIVER", "offscreen", 1)
        setenv("CNNSLICER_NO_CACHE", "1", 1)
        // Random clicks may hit "Save CSV": keep exports out of the working tree.
        let exports = NSTemporaryDirectory() + "cnnslicer-app-tests"
        try FileManager.default.createDirectory(atPath: exports, withIntermediateDirectories: true)
        setenv("CNNSLICER_EXPORT_DIR", exports, 1)
        let network = try Network(contentsOf: Self.fixture)
        var rng: UInt64 = 12345
        let count = 40
        let pixels: [UInt8] = (0..<(count * 784)).map { _ in
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: rng >> 56)
        }
        let images = try LabeledImages(channels: 1, height: 28, width: 28, pixels: pixels, labels: (0..<count).map { $0 % 10 },
                                       classNames: (0..<10).map { "c\($0)" }, source: "generated")
        let input = try ModelInput(network: network, images: images)
        host = try HeadlessHost(width: 1400, height: 900)
        model = AppModel(workspace: Workspace(inputs: [input]), threads: 1)
        view = AppView(model: model, textures: host.renderer)
        settle()
    }


    func frame(_ ui: UIContext) { view.frame(ui) }

    /// Runs frames until the analysis and the shown image are in.
    func settle(timeout: Double = 30) { runUntilSettled(host, model, timeout: timeout, frame) }
}

final class AppTests: XCTestCase {
    @MainActor func testClickOnTheStripSelectsTheTapInEveryView() async throws {
        let h = try AppHarness(); let host = h.host, model = h.model, view = h.view; func frame(_ ui: UIContext) { view.frame(ui) }; func settle() { h.settle() }
        let strip = try XCTUnwrap(view.layout["strip"])
        let taps = model.network.taps
        let inner = strip.insetBy(host.ui.scaled(6))
        let target = 5
        let x = inner.x + (Float(target) + 0.5) * inner.width / Float(taps.count)
        host.click(at: Vec2(x, strip.center.y), frame)
        XCTAssertEqual(model.selection.tap, target)
        settle()
        // The matrix and the viewer show the selected tap: the viewer's grid has its channels.
        XCTAssertEqual(view.lastMapOrder.count, taps[target].channels)
        XCTAssertNotNil(view.matrix.shownTable)
        XCTAssertEqual(view.matrix.shownTable?.tap, target)
        // Arrow keys step taps.
        host.press(.right, frame)
        XCTAssertEqual(model.selection.tap, target + 1)
        host.press(.left, frame)
        host.press(.left, frame)
        XCTAssertEqual(model.selection.tap, target - 1)
    }

    @MainActor func testBrushingMatrixRowsHighlightsThoseMapsFirst() async throws {
        let h = try AppHarness(); let host = h.host, model = h.model, view = h.view; func frame(_ ui: UIContext) { view.frame(ui) }; func settle() { h.settle() }
        model.selection.tap = 5   // /relu2/Relu, 16 channels
        settle()
        let grid = try XCTUnwrap(view.layout["matrixGrid"])
        let rows = model.network.taps[5].channels
        let geometry = try XCTUnwrap(view.matrix.geometry)
        // Drag over rows 3…6.
        let from = try XCTUnwrap(geometry.rowRect(channel: 3)), to = try XCTUnwrap(geometry.rowRect(channel: 6))
        host.drag(from: Vec2(grid.center.x, from.center.y), to: Vec2(grid.center.x, to.center.y), steps: 6, frame)
        XCTAssertEqual(model.selection.channels, Set(3...6))
        host.frame(frame)
        XCTAssertEqual(Array(view.lastMapOrder.prefix(4)), [3, 4, 5, 6])
        XCTAssertEqual(view.lastMapOrder.count, rows)
        host.press(.escape, frame)
        XCTAssertTrue(model.selection.channels.isEmpty)
    }

    @MainActor func testADrawnStrokeChangesThePrediction() async throws {
        let h = try AppHarness(); let host = h.host, model = h.model, view = h.view; func frame(_ ui: UIContext) { view.frame(ui) }; func settle() { h.settle() }
        view.browser.tab = 1
        host.frame(frame)
        let before = try XCTUnwrap(model.featureMaps?.probabilities)
        let pad = try XCTUnwrap(view.layout["drawPad"])
        host.drag(from: Vec2(pad.x + pad.width * 0.3, pad.y + pad.height * 0.2),
                  to: Vec2(pad.x + pad.width * 0.6, pad.y + pad.height * 0.8), steps: 8, frame)
        XCTAssertNotNil(model.drawnPixels)
        XCTAssertGreaterThan(model.drawnPixels?.filter { $0 > 0 }.count ?? 0, 10, "the stroke left ink")
        settle()
        let after = try XCTUnwrap(model.featureMaps?.probabilities)
        XCTAssertNotEqual(before, after)
        XCTAssertNil(model.selection.image, "a drawn image replaces the data set image")
    }

    @MainActor func testResizeAndScaleKeepTheLayoutSane() async throws {
        let h = try AppHarness(); let host = h.host, model = h.model, view = h.view; func frame(_ ui: UIContext) { view.frame(ui) }; func settle() { h.settle() }
        for (w, h, s) in [(1000, 700, Float(1)), (1600, 1000, 1.5), (800, 600, 2)] as [(Int, Int, Float)] {
            host.resize(width: w, height: h)
            host.scale = s
            host.frame(frame)
            host.frame(frame)
            let display = Rect(x: 0, y: 0, width: Float(w), height: Float(h))
            for name in ["strip", "chart", "matrix", "maps", "status", "toolbar"] {
                let r = try XCTUnwrap(view.layout[name], name)
                XCTAssertGreaterThan(r.width, 0, name)
                XCTAssertGreaterThan(r.height, 0, name)
                let inside = r.x >= -0.01 && r.y >= -0.01 && r.maxX <= display.maxX + 0.01 && r.maxY <= display.maxY + 0.01
                XCTAssertTrue(inside, "\(name) \(r) inside the window at \(w)×\(h)×\(s)")
            }
            let chart = view.layout["chart"]!, matrix = view.layout["matrix"]!, maps = view.layout["maps"]!
            XCTAssertFalse(chart.intersects(matrix))
            XCTAssertFalse(chart.intersects(maps))
        }
    }

    @MainActor func testTenThousandRandomEventsLeaveAConsistentSelection() async throws {
        let h = try AppHarness(); let host = h.host, model = h.model, view = h.view; func frame(_ ui: UIContext) { view.frame(ui) }; func settle() { h.settle() }
        var rng: UInt64 = 2026
        func next(_ n: Int) -> Int {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Int(rng >> 33) % n
        }
        let keys: [Key] = [.left, .right, .up, .down, .tab, .escape, .enter, .space, .character("a")]
        let size = Vec2(1400, 900)
        var events: [HostEvent] = []
        for i in 0..<10_000 {
            switch next(10) {
            case 0...4: events.append(.mouseMove(Vec2(Float(next(Int(size.x))), Float(next(Int(size.y))))))
            case 5: events.append(.mouseDown(.left))
            case 6: events.append(.mouseUp(.left))
            case 7: events.append(.wheel(Vec2(0, Float(next(5) - 2))))
            default: events.append(.key(keys[next(keys.count)]))
            }
            // A frame every few events, as a real loop would run.
            if i % 8 == 7 {
                host.post(events)
                events.removeAll()
                host.frame(frame)
                // Dismiss any message so the modal does not swallow all input.
                model.messages.removeAll()
            }
        }
        host.post(.mouseUp(.left))
        settle()
        let net = model.network
        let s = model.selection
        XCTAssertTrue((0..<net.taps.count).contains(s.tap))
        XCTAssertTrue(s.channels.allSatisfy { $0 >= 0 && $0 < net.taps[s.tap].channels })
        XCTAssertTrue(s.brushedImages.allSatisfy { $0 >= 0 && $0 < model.workspace.images.count })
        if let image = s.image { XCTAssertTrue((0..<model.workspace.images.count).contains(image)) }
        XCTAssertTrue(model.messages.isEmpty, "\(model.messages)")
        XCTAssertEqual(host.ui.diagnostics.idCollisions.count, 0, "\(host.ui.diagnostics.idCollisions)")
    }
}
