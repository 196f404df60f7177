// The SDL backend under the headless host: event translation, pixels, textures, fonts,
// screenshots, the run loop's idling, and the reference image.

import XCTest
import Foundation
@testable import SlicerUI

final class RenderTests: XCTestCase {
    static let referenceName = "demo-dark"
    static let referenceSize = (width: 1000, height: 720)

    // MARK: Reference image

    /// Renders the demo screen deterministically (a few frames so scroll state settles).
    @MainActor static func renderDemo(_ host: HeadlessHost, state: UIDemoState = UIDemoState()) throws -> RGBAImage {
        var state = state
        let heat = try host.renderer.texture(for: "demo-heat", version: 1, width: 96, height: 64) {
            UIDemo.heatMapPixels(width: 96, height: 64)
        }
        for _ in 0..<3 { host.frame { UIDemo.build($0, state: &state, heatMap: heat) } }
        return try host.capture()
    }

    /// Passes when only rasterisation noise differs: few differing pixels, none dense.
    static func looksTheSame(_ d: ImageDifference) -> Bool {
        d.differingPixelFraction < 0.005 && d.worstTileDifference <= 12 && d.meanChannelDifference < 3
    }

    @MainActor func testRenderedFrameMatchesTheReferenceImage() async throws {
        let host = try HeadlessHost(width: Self.referenceSize.width, height: Self.referenceSize.height)
        let image = try Self.renderDemo(host)
        let sourcePath = repositoryRoot() + "/Tests/SlicerUITests/Reference/\(Self.referenceName).png"
        if ProcessInfo.processInfo.environment["SLICERUI_RECORD_REFERENCE"] == "1" {
            try PNGFile.write(image, to: sourcePath)
            XCTFail("recorded \(sourcePath); look at it, then run again without SLICERUI_RECORD_REFERENCE")
            return
        }
        let url = try XCTUnwrap(Bundle.module.url(forResource: Self.referenceName, withExtension: "png", subdirectory: "Reference"),
                                "reference image missing from the test bundle")
        let reference = try PNGFile.read(url.path)
        let difference = try XCTUnwrap(ImageComparison.compare(image, reference), "size differs from the reference")
        if !Self.looksTheSame(difference) {
            let dir = NSTemporaryDirectory() + "slicerui-reference-failure"
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try? PNGFile.write(image, to: dir + "/actual.png")
            if let viz = difference.visualization { try? PNGFile.write(viz, to: dir + "/difference.png") }
            XCTFail("rendered frame differs from the reference: \(difference); images in \(dir)")
        }
    }

    @MainActor func testComparisonToleratesNoiseButCatchesRealChanges() async throws {
        let host = try HeadlessHost(width: Self.referenceSize.width, height: Self.referenceSize.height)
        let base = try Self.renderDemo(host)

        // Anti-aliasing-like noise: small changes on many pixels, larger ones on a few.
        var noisy = base
        var seed: UInt64 = 42
        for i in stride(from: 0, to: noisy.pixels.count, by: 4) {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let r = Int(seed >> 61)   // 0…7
            let delta = (seed >> 40) % 300 == 0 ? 60 : r - 4
            for c in 0..<3 { noisy.pixels[i + c] = UInt8(max(0, min(255, Int(noisy.pixels[i + c]) + delta))) }
        }
        let noise = try XCTUnwrap(ImageComparison.compare(base, noisy))
        XCTAssertTrue(Self.looksTheSame(noise), "noise should pass: \(noise)")

        // A one-digit change of a label must fail.
        var clicked = UIDemoState()
        clicked.clicks = 1
        let oneDigit = try XCTUnwrap(ImageComparison.compare(base, try Self.renderDemo(host, state: clicked)))
        XCTAssertFalse(Self.looksTheSame(oneDigit), "a changed digit must be caught: \(oneDigit)")
        XCTAssertNotNil(oneDigit.differingRegion)

        // So must a moved slider and another theme.
        var moved = UIDemoState()
        moved.epoch = 15
        XCTAssertFalse(Self.looksTheSame(try XCTUnwrap(ImageComparison.compare(base, try Self.renderDemo(host, state: moved)))))
        host.ui.theme = .light
        XCTAssertFalse(Self.looksTheSame(try XCTUnwrap(ImageComparison.compare(base, try Self.renderDemo(host)))))
    }

    // MARK: Pixels

    @MainActor func testPixelsOutsideAPanelAreClipped() async throws {
        let host = try HeadlessHost(width: 400, height: 300)
        let panel = Rect(x: 100, y: 100, width: 200, height: 100)
        let red = Color(r: 255, g: 0, b: 0)
        host.frame { ui in
            ui.panel("P", rect: panel, options: [.background]) {
                // Far bigger than the panel, centred on it.
                ui.drawList.fillRect(Rect(x: 0, y: 0, width: 400, height: 300), color: red)
                ui.drawList.polyline([Vec2(0, 0), Vec2(400, 300)], color: red, thickness: 9)
            }
        }
        let image = try host.capture()
        let isRed: (Color) -> Bool = { $0.r > 200 && $0.g < 60 && $0.b < 60 }
        XCTAssertEqual(image.count(in: panel, where: isRed), 200 * 100, "the panel is filled")
        let everywhere = image.count(in: Rect(x: 0, y: 0, width: 400, height: 300), where: isRed)
        XCTAssertEqual(everywhere, 200 * 100, "nothing leaks outside the panel")
        XCTAssertEqual(image[50, 50], host.ui.theme.colors.background)
    }

    @MainActor func testTextRendersCrisplyAtTwiceTheScale() async throws {
        func inkHeight(scale: Float) throws -> (height: Int, width: Int) {
            let host = try HeadlessHost(width: 300, height: 120, scale: scale)
            host.frame { ui in ui.label("Hgy Entropy") }
            let image = try host.capture()
            let background = host.ui.theme.colors.background
            var rows = Set<Int>(), columns = Set<Int>()
            for y in 0..<image.height {
                for x in 0..<image.width where image[x, y].contrastRatio(with: background) > 3 {
                    rows.insert(y); columns.insert(x)
                }
            }
            return ((rows.max() ?? 0) - (rows.min() ?? 0) + 1, (columns.max() ?? 0) - (columns.min() ?? 0) + 1)
        }
        let one = try inkHeight(scale: 1), two = try inkHeight(scale: 2)
        XCTAssertGreaterThan(one.height, 10)
        XCTAssertEqual(Double(two.height) / Double(one.height), 2, accuracy: 0.2)
        XCTAssertEqual(Double(two.width) / Double(one.width), 2, accuracy: 0.15)
    }

    @MainActor func testThemesPaintTheirOwnColours() async throws {
        let host = try HeadlessHost(width: 200, height: 100)
        for theme in Theme.all {
            host.ui.theme = theme
            host.frame { ui in ui.panel("P", rect: Rect(x: 100, y: 0, width: 100, height: 100)) {} }
            let image = try host.capture()
            XCTAssertEqual(image[10, 10], theme.colors.background, theme.name)
            XCTAssertEqual(image[150, 50], theme.colors.panel, theme.name)
        }
    }

    // MARK: Input through SDL

    @MainActor func testPostedEventsArriveThroughSDLsQueue() async throws {
        let host = try HeadlessHost(width: 400, height: 300)
        var seen = InputState()
        let record: (UIContext) -> Void = { ui in seen = ui.input }
        host.post(.mouseMove(Vec2(120, 80)), .mouseDown(.left, clicks: 2))
        host.frame(record)
        XCTAssertEqual(seen.mousePosition, Vec2(120, 80))
        XCTAssertTrue(seen.wasPressed(.left))
        XCTAssertTrue(seen.isDown(.left))
        XCTAssertEqual(seen.clickCount, 2)
        host.post(.mouseUp(.left), .wheel(Vec2(0, -2)))
        host.frame(record)
        XCTAssertTrue(seen.wasReleased(.left))
        XCTAssertFalse(seen.isDown(.left))
        XCTAssertEqual(seen.wheel, Vec2(0, -2))
        host.post(.key(.character("s"), modifiers: .control), .key(.tab, modifiers: .shift), .key(.function(11)), .text("héllo ✓"))
        host.frame(record)
        XCTAssertEqual(seen.keys.map(\.key), [.character("s"), .tab, .function(11)])
        XCTAssertEqual(seen.keys[0].modifiers, .control)
        XCTAssertEqual(seen.keys[1].modifiers, .shift)
        XCTAssertEqual(seen.text, "héllo ✓")
        host.post(.dropFile("/data/images/shirt 1.png"))
        host.frame(record)
        XCTAssertEqual(seen.droppedFiles, ["/data/images/shirt 1.png"])
        host.frame(record)
        XCTAssertTrue(seen.keys.isEmpty && seen.text.isEmpty && seen.droppedFiles.isEmpty, "per-frame input is cleared")
    }

    @MainActor func testHighDensityDisplaysMapWindowPointsToPixels() async throws {
        _ = try HeadlessHost(width: 64, height: 64)   // SDL up
        var translator = SDLEventTranslator()
        translator.pixelRatio = 2
        var input = InputState()
        // A motion event at window point (50, 40) lands at pixel (100, 80) of a 2× drawable.
        var event = try XCTUnwrap(translator.sdlEvent(for: .mouseMove(Vec2(100, 80)), modifiers: [], pointer: .zero))
        XCTAssertEqual(event.motion.x, 50)
        XCTAssertEqual(event.motion.y, 40)
        _ = translator.apply(&event, to: &input)
        XCTAssertEqual(input.mousePosition, Vec2(100, 80))
        // The UI scale then multiplies the density: everything is laid out in pixels.
        let h = Harness(scale: 2 * 1.25)
        h.frame { _ in }
        XCTAssertEqual(h.ui.font(.body).pixelSize, 35)
    }

    @MainActor func testScriptedClickAndTypingDriveWidgets() async throws {
        let host = try HeadlessHost(width: 400, height: 300)
        var clicks = 0
        var text = ""
        var buttonRect = Rect.zero, fieldRect = Rect.zero
        let build: (UIContext) -> Void = { ui in
            if ui.button("Go") { clicks += 1 }
            buttonRect = ui.lastItem.rect
            ui.textField("name", text: &text)
            fieldRect = ui.lastItem.rect
        }
        host.frame(build)
        host.click(at: buttonRect.center, build)
        XCTAssertEqual(clicks, 1)
        host.click(at: fieldRect.center, build)
        host.type("conv2", build)
        host.press(.backspace, build)
        XCTAssertEqual(text, "conv")
        host.press(.tab, modifiers: .shift, build)
        host.press(.enter, build)
        XCTAssertEqual(clicks, 2)
    }

    // MARK: Textures, fonts, files

    @MainActor func testTexturesUploadOnlyWhenTheirVersionChanges() async throws {
        let host = try HeadlessHost(width: 64, height: 64)
        var uploads = 0
        func heat(_ version: Int, size: Int = 4) throws -> TextureID {
            try host.renderer.texture(for: "heat", version: version, width: size, height: size) {
                uploads += 1
                return [UInt8](repeating: 200, count: size * size * 4)
            }
        }
        let a = try heat(1)
        XCTAssertEqual(try heat(1), a)
        XCTAssertEqual(try heat(1), a)
        XCTAssertEqual(uploads, 1)
        XCTAssertEqual(try heat(2), a, "same ID, new pixels")
        XCTAssertEqual(uploads, 2)
        XCTAssertEqual(try heat(3, size: 8), a, "a new size keeps the ID")
        let before = host.renderer.textureCount
        host.renderer.destroyTexture(a)
        XCTAssertEqual(host.renderer.textureCount, before - 1)
        XCTAssertThrowsError(try host.renderer.createTexture(width: 2, height: 2, pixels: [0, 0, 0]))

        // The texture is drawn: a green image shows as green pixels.
        let green = try host.renderer.createTexture(width: 2, height: 2, pixels: [UInt8](repeating: 0, count: 16).enumerated().map { $0.offset % 4 == 1 || $0.offset % 4 == 3 ? 255 : 0 })
        host.frame { ui in ui.drawList.image(green, in: Rect(x: 10, y: 10, width: 20, height: 20)) }
        XCTAssertEqual(try host.capture()[20, 20], Color(r: 0, g: 255, b: 0))
    }

    @MainActor func testRealFontMeasurement() async throws {
        let host = try HeadlessHost(width: 64, height: 64)
        let m = host.renderer.fontAtlas
        let body = Font(.sans, pixelSize: 14), big = Font(.sans, pixelSize: 28), mono = Font(.mono, pixelSize: 14)
        XCTAssertLessThan(m.width(of: "iiii", font: body), m.width(of: "WWWW", font: body))
        XCTAssertEqual(m.width(of: "iiii", font: mono), m.width(of: "WWWW", font: mono), "monospace")
        XCTAssertEqual(m.width(of: "Entropy", font: big) / m.width(of: "Entropy", font: body), 2, accuracy: 0.12)
        let metrics = m.metrics(of: body)
        XCTAssertEqual(metrics.lineHeight / 14, 1.17, accuracy: 0.12)
        XCTAssertGreaterThan(metrics.ascent, metrics.descent)
        let carets = m.caretPositions(in: "conv2", font: body)
        XCTAssertEqual(carets.count, 6)
        XCTAssertEqual(carets.last ?? 0, m.width(of: "conv2", font: body), accuracy: 0.01)
        XCTAssertEqual(carets, carets.sorted())
        var glyphs = 0
        m.forEachGlyph(in: "a b", font: body) { glyph in
            glyphs += 1
            XCTAssertFalse(glyph.rect.isEmpty)
            XCTAssertLessThan(glyph.uvMin.x, glyph.uvMax.x)
        }
        XCTAssertEqual(glyphs, 2, "spaces have no image")
        XCTAssertGreaterThan(m.width(of: "日本", font: body), 0, "missing glyphs still advance")
    }

    @MainActor func testFontsAreFoundBesideTheExecutableFirst() async throws {
        let fonts = try XCTUnwrap(FontLocator.fontDirectory())
        XCTAssertEqual(URL(fileURLWithPath: fonts).standardizedFileURL.path,
                       URL(fileURLWithPath: repositoryRoot() + "/fonts").standardizedFileURL.path,
                       "the test binary under .build finds the repository's fonts/")
        for name in FontLocator.fileNames.values {
            XCTAssertTrue(FileManager.default.fileExists(atPath: repositoryRoot() + "/fonts/" + name))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: repositoryRoot() + "/fonts/LICENSE-DejaVu.txt"))
        let order = FontLocator.candidateDirectories(executablePath: "/opt/app/bin/cnnslicer", environment: ["CNNSLICER_FONTS": "/custom"])
        XCTAssertEqual(Array(order.prefix(4)), ["/opt/app/bin/fonts", "/opt/app/fonts", "/opt/fonts", "/fonts"])
        XCTAssertEqual(Array(order.suffix(2)), ["/custom", "/usr/share/fonts/truetype/dejavu"])
        XCTAssertNil(FontLocator.fontDirectory(executablePath: "/nonexistent/bin/x", environment: ["CNNSLICER_FONTS": "/nonexistent"])
                     .flatMap { $0.hasPrefix("/nonexistent") ? $0 : nil })
    }

    @MainActor func testScreenshotIsWrittenAtomicallyAndReadsBack() async throws {
        let host = try HeadlessHost(width: 320, height: 200)
        var state = UIDemoState()
        host.frame { UIDemo.build($0, state: &state, heatMap: nil) }
        let dir = NSTemporaryDirectory() + "slicerui-shot-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/frame.png"
        try host.saveScreenshot(to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["frame.png"], "no temporary file is left")
        let read = try PNGFile.read(path)
        XCTAssertEqual(read, try host.capture())
        XCTAssertThrowsError(try host.saveScreenshot(to: dir + "/missing-dir/frame.png"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["frame.png"])
    }

    // MARK: Run loop

    /// The window host sleeps while nothing happens and wakes for `wakeUp()`.
    @MainActor func testWindowHostIdlesWithoutBusyLooping() async throws {
        let host = try windowHost(width: 320, height: 200)
        let startCPU = processCPUSeconds()
        // Another thread: 400 ms of silence, then five wake-ups, then quit.
        let poker = Thread {
            usleep(400_000)
            for _ in 0..<5 { SDLWindowHost.wakeUp(); usleep(40_000) }
            usleep(100_000)
            SDLWindowHost.postQuit()
        }
        poker.start()
        var framesBeforeWake = 0
        let start = Date()
        host.run { ui in
            ui.label("idle")
            if Date().timeIntervalSince(start) < 0.35 { framesBeforeWake += 1 }
        }
        let cpu = processCPUSeconds() - startCPU
        XCTAssertLessThanOrEqual(framesBeforeWake, 3, "an unchanging UI draws once or twice, then sleeps")
        XCTAssertGreaterThanOrEqual(host.stats.totalFrames, framesBeforeWake + 4, "wake-ups from another thread run frames")
        XCTAssertLessThan(cpu, 0.45, "the loop waits for events instead of spinning (CPU \(cpu) s over ~0.7 s)")
    }
}

extension RenderTests {
    /// F11 twice gives back the window's size: SDL kept the desktop's size after leaving full
    /// screen (X11 and the offscreen driver alike), so the layout stayed clipped until a resize.
    @MainActor func testLeavingFullScreenRestoresTheWindowSize() async throws {
        let host = try windowHost(width: 900, height: 640)
        // Another thread keeps the loop turning, then ends it.
        let poker = Thread {
            for _ in 0..<60 { usleep(20_000); SDLWindowHost.wakeUp() }
            SDLWindowHost.postQuit()
        }
        poker.start()
        var frame = 0
        var sizes: [Vec2] = []
        var toggledOffAt: Int?
        host.run { ui in
            frame += 1
            sizes.append(ui.displayRect.size)
            ui.label("full screen")
            if frame == 3 { host.isFullscreen = true }
            if toggledOffAt == nil, frame > 3, host.isFullscreen, ui.displayRect.size != sizes[0] {
                host.isFullscreen = false
                toggledOffAt = frame
            }
        }
        let first = try XCTUnwrap(sizes.first)
        XCTAssertEqual(first, Vec2(900, 640))
        XCTAssertTrue(sizes.contains { $0 != first }, "full screen took another size: \(Set(sizes.map { "\($0)" }))")
        XCTAssertNotNil(toggledOffAt)
        XCTAssertEqual(sizes.last, first, "back to the window's size after F11 twice")
        XCTAssertFalse(host.isFullscreen)
    }
}

/// The real window host without vsync; without a display, on SDL's offscreen driver
/// (which the headless host starts).
@MainActor
private func windowHost(width: Int, height: Int) throws -> SDLWindowHost {
    if ProcessInfo.processInfo.environment["DISPLAY"] == nil, ProcessInfo.processInfo.environment["WAYLAND_DISPLAY"] == nil {
        _ = try HeadlessHost(width: 64, height: 64)
    }
    var options = SDLWindowHost.Options()
    options.width = width
    options.height = height
    options.vsync = false
    return try SDLWindowHost(options: options)
}

private func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
