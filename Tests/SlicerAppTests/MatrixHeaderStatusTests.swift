import Foundation
import XCTest
import Synchronization
import SlicerData
import SlicerEngine
@testable import SlicerInfo
import SlicerUI
@testable import SlicerApp

/// Issue 13's demo gaps: the matrix's class headers stay put while 2,048 rows scroll under
/// them, on-demand class columns say how far they are, and the status bar's class-mapping
/// note fits (a long class-index path in large type at 1024×700).
final class MatrixHeaderStatusTests: XCTestCase {
    // MARK: Pinned headers

    /// The pixels of `rect` (clamped to the image).
    private func pixels(_ image: RGBAImage, _ rect: Rect) -> [UInt8] {
        let x0 = max(0, Int(rect.minX.rounded(.up))), x1 = min(image.width, Int(rect.maxX.rounded(.down)))
        let y0 = max(0, Int(rect.minY.rounded(.up))), y1 = min(image.height, Int(rect.maxY.rounded(.down)))
        var out: [UInt8] = []
        for y in y0..<max(y0, y1) { out += image.pixels[(y * image.width + x0) * 4..<(y * image.width + max(x0, x1)) * 4] }
        return out
    }

    /// At every presented size and type size: scrolled from the top to channel 2000 and then to
    /// the end, the header band is where it was and looks the same (pixel for pixel), every
    /// column's header lies inside it, and the rows' panel starts below it — the first rows
    /// have gone up under the header, clipped, not drawn over it.
    @MainActor func testClassHeadersStayPinnedWhileRowsScrollDeep() async throws {
        let h = try MatrixScaleHarness(width: 1024, height: 700)
        h.model.selection.classes = [MatrixScaleHarness.tabby]
        for setup in Presentation.all {
            setup.apply(to: h.host, h.view)
            h.model.selection.channels = []
            h.view.focusedView = 2
            h.host.moveMouse(to: Vec2(2, 2), h.frame)
            h.host.press(.home, h.frame)
            h.settle()
            let top = try XCTUnwrap(h.view.matrix.geometry, setup.name)
            let panel = try XCTUnwrap(h.view.layout["matrix"], setup.name)
            let before = try h.host.capture()
            XCTAssertEqual(top.rowRect(channel: 0)?.minY ?? -1, top.panel.minY, accuracy: 0.5, "\(setup.name): row 0 first, under the header")

            // Deep: channel 2000 brushed elsewhere scrolls its row into view.
            h.model.selection.channels = [2000]
            h.frame(); h.frame()
            var g = try XCTUnwrap(h.view.matrix.geometry)
            let row = try XCTUnwrap(g.rowRect(channel: 2000))
            XCTAssertTrue(row.minY >= g.panel.minY - 0.5 && row.maxY <= g.panel.maxY + 0.5, "\(setup.name): row 2000 \(row) in \(g.panel)")
            for place in ["row 2000", "end"] {
                if place == "end" {
                    h.host.press(.end, h.frame)
                    h.frame()
                    g = try XCTUnwrap(h.view.matrix.geometry)
                    // The last rows are reached (or, in a short panel, the legends after them).
                    let last = try XCTUnwrap(g.rowRect(channel: 2047))
                    XCTAssertLessThanOrEqual(last.minY, g.panel.maxY + 0.5, "\(setup.name): scrolled to the end")
                }
                let name = "\(setup.name), \(place)"
                XCTAssertEqual(g.header, top.header, "\(name): the header band did not move")
                XCTAssertGreaterThanOrEqual(g.header.minY, panel.minY - 0.5, name)
                XCTAssertLessThanOrEqual(g.header.maxY, g.panel.minY + 0.5, "\(name): the rows' panel starts below the header")
                XCTAssertGreaterThanOrEqual(g.viewport.minY, g.header.maxY - 0.5, "\(name): no visible row over the header")
                for i in g.columns.indices {
                    let r = g.headerRect(column: i)
                    XCTAssertTrue(r.minY >= g.header.minY - 0.5 && r.maxY <= g.header.maxY + 0.5 && r.minX >= panel.minX - 0.5
                                  && r.maxX <= panel.maxX + 0.5, "\(name): header \(i) \(r) in \(g.header)")
                }
                XCTAssertEqual(g.headerTexts, top.headerTexts, name)
                // Scrolled rows: the first ones are above the panel's top (clipped under the header).
                let first = try XCTUnwrap(g.rowRect(channel: 0))
                XCTAssertLessThan(first.maxY, g.panel.minY, "\(name): row 0 scrolled away")
                let after = try h.host.capture()
                XCTAssertTrue(pixels(before, g.header) == pixels(after, g.header), "\(name): the header looks the same as at the top")
                XCTAssertFalse(pixels(before, g.viewport) == pixels(after, g.viewport), "\(name): the rows did move")
                let cut = h.host.ui.diagnostics.truncations
                XCTAssertEqual(cut, [], "\(name): \(cut.map(\.description).joined(separator: "; "))")
            }
        }
    }

    // MARK: Progress of on-demand class columns

    /// A pause between frames (Thread.sleep is not for async contexts).
    static func nap(_ seconds: Double) { Thread.sleep(forTimeInterval: seconds) }

    /// The engine's count: told before the first batch and after each, growing, ending at the
    /// images of exactly the classes asked for.
    @MainActor func testOnDemandTableReportsImagesBinnedUpToItsTotal() async throws {
        let h = try MatrixScaleHarness()
        let snapshot = try XCTUnwrap(h.model.snapshot)
        let classes = [3, 281] + Array(500..<520)
        let expected = (0..<MatrixScaleHarness.imageCount).filter { classes.contains(MatrixScaleHarness.label($0)) }.count
        XCTAssertEqual(expected, 2 + 20 * 11, "more than a batch of 64")
        let seen = Mutex<[(Int, Int)]>([])
        _ = try h.model.engine.classChannelTable(tap: h.relu, classes: classes, request: snapshot.request,
                                                 ranges: try XCTUnwrap(snapshot.ranges), progress: { done, total in
            seen.withLock { $0.append((done, total)) }
        })
        let calls = seen.withLock { $0 }
        XCTAssertEqual(calls.first?.0, 0, "told before the first batch")
        XCTAssertTrue(calls.allSatisfy { $0.1 == expected }, "\(calls)")
        XCTAssertEqual(calls.last?.0, expected)
        XCTAssertEqual(calls.map(\.0), calls.map(\.0).sorted(), "monotone")
        XCTAssertGreaterThan(calls.count, 2, "told as it goes, not only at the start and the end: \(calls)")
    }

    /// While new class columns are computed, their area says "… N %" with N from the work's
    /// own count, never going back, and the values arrive in the end.
    @MainActor func testClassColumnsShowMonotoneProgressWhileComputing() async throws {
        let h = try MatrixScaleHarness()
        // Slow each batch down so the computation spans many frames.
        h.model.classChannelAfterChunk = { Thread.sleep(forTimeInterval: 0.05) }
        h.view.matrix.pinned = Array(600..<630)
        var texts: [String] = []
        var percents: [Int] = []
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            h.frame()
            if let text = h.view.matrix.pendingText {
                texts.append(text)
                if texts.count == 4, let dir = ProcessInfo.processInfo.environment["SLICERAPP_KEEP_IMAGES"] {
                    try h.host.saveScreenshot(to: dir + "/matrix-progress.png")
                }
                let number = try XCTUnwrap(text.split(separator: " ").firstIndex(of: "%").map { text.split(separator: " ")[$0 - 1] }, text)
                let percent = try XCTUnwrap(Int(number), text)
                percents.append(percent)
                // The number shown is the work's own count.
                if let p = h.model.classChannelProgress, p.total > 0 {
                    XCTAssertEqual(p.total, h.view.matrixPendingImages(h.view.matrix.shownClasses), "the images of the columns shown")
                    XCTAssertLessThanOrEqual(percent, ClassChannelValues.percent(p.done, p.total))
                }
            } else if !percents.isEmpty, h.view.matrix.shownTable != nil {
                break
            }
            Self.nap(0.01)
        }
        XCTAssertFalse(texts.isEmpty, "progress shown over the columns")
        XCTAssertEqual(percents, percents.sorted(), "monotone: \(percents)")
        XCTAssertGreaterThanOrEqual(Set(percents).count, 3, "it moved while computing: \(percents)")
        XCTAssertLessThan(percents.first ?? 100, 50)
        let shown = try XCTUnwrap(h.view.matrix.shownTable)
        XCTAssertEqual(Array(shown.classes.prefix(30)), Array(600..<630), "the columns arrived")
        XCTAssertNil(h.view.matrix.pendingText)
        XCTAssertNil(h.model.classChannelProgress)
    }

    // MARK: The status bar's class-mapping note

    func testPathShorterFormsKeepTheFolderAndTheFile() {
        let path = "/home/ana/datasets/ILSVRC2012/imagenet-1000/imagenet_class_index.json"
        XCTAssertEqual(PathText.shorterForms(of: path, home: "/home/ana"), [
            path, "~/datasets/ILSVRC2012/imagenet-1000/imagenet_class_index.json",
            "~/…/imagenet-1000/imagenet_class_index.json", "…/imagenet-1000/imagenet_class_index.json", "imagenet_class_index.json",
        ])
        XCTAssertEqual(PathText.shorterForms(of: "/data/in/x.json", home: "/home/ana"), ["/data/in/x.json", "/…/in/x.json", "…/in/x.json", "x.json"])
        XCTAssertEqual(PathText.shorterForms(of: "x.json", home: nil), ["x.json"])
        // Home itself as a prefix of another folder's name is not home.
        XCTAssertEqual(PathText.shorterForms(of: "/home/anabel/x.json", home: "/home/ana").first, "/home/anabel/x.json")
        XCTAssertFalse(PathText.shorterForms(of: "/home/anabel/x.json", home: "/home/ana").contains { $0.hasPrefix("~") })
    }

    /// A class-index file deep in the file system: at 1024×700 in large type the note is
    /// shown in a shorter form that still names the file, nothing is cut anywhere, and the
    /// whole text is there on hover; where it fits (1600×1000) the whole text is shown.
    @MainActor func testClassMappingNoteFitsEveryPresentationWithALongPath() async throws {
        let base = try MatrixScaleHarness.workspace()
        let path = "/home/demo/datasets/imagenet/ILSVRC2012/validation-resized-for-the-talk/imagenet-1000/imagenet_class_index.json"
        let mapping = ClassMapping(source: .classIndexFile(path),
                                   entries: (0..<1000).map { ClassMapping.Entry(folder: "n\($0)", classIndex: $0) }, warning: nil)
        let forms = mapping.statusNoteForms(home: "/home/demo")
        XCTAssertEqual(forms.first, mapping.statusNote)
        XCTAssertTrue(forms.allSatisfy { $0.contains("imagenet_class_index.json") }, "every form names the file")
        XCTAssertEqual(forms.map(\.count).max(), forms[0].count, "the whole text first")
        XCTAssertEqual(forms.last, "classes by imagenet_class_index.json")
        XCTAssertTrue(forms.contains("classes: 1000 folders matched by ~/…/imagenet-1000/imagenet_class_index.json"), "\(forms)")
        let workspace = Workspace(inputs: base.inputs, notes: [["data: a note before it"], forms])
        XCTAssertEqual(workspace.note, "data: a note before it; " + mapping.statusNote)
        let h = try HeadlessApp(workspace: workspace, width: 1024, height: 700)
        var shortened = false
        for setup in Presentation.all {
            setup.apply(to: h.host, h.view)
            h.frame(); h.frame()
            let plan = h.view.planStatus(h.host.ui, width: h.host.ui.displayRect.width)
            let index = try XCTUnwrap(plan.parts.firstIndex { $0.hasPrefix("classes") }, setup.name)
            let shown = plan.parts[index]
            XCTAssertTrue(forms.contains(shown), "\(setup.name): \(shown)")
            let fitsWhole = h.host.ui.textWidth(forms[0], style: .small) <= plan.textWidth
            XCTAssertEqual(shown == forms[0], fitsWhole, "\(setup.name): the whole note when it fits, else a shorter one")
            XCTAssertEqual(plan.wholeTexts[index], fitsWhole ? nil : forms[0])
            if !fitsWhole {
                shortened = true
                // The first form that fits: none before it would.
                let i = try XCTUnwrap(forms.firstIndex(of: shown))
                for longer in forms[..<i] { XCTAssertGreaterThan(h.host.ui.textWidth(longer, style: .small), plan.textWidth, setup.name) }
            }
            let cut = h.host.ui.diagnostics.truncations
            XCTAssertEqual(cut, [], "\(setup.name): \(cut.map(\.description).joined(separator: "; "))")
            // Hovering the shortened note shows the whole text (the tooltip layer draws it).
            if !fitsWhole, let r = h.view.layout["status \(index)"] {
                h.host.moveMouse(to: r.center, h.frame)
                let data = h.host.frame(h.frame)
                XCTAssertGreaterThan(data.lists[DrawLayer.tooltip.rawValue].triangleCount, 0, "\(setup.name): a tooltip")
                h.host.moveMouse(to: Vec2(2, 2), h.frame)
            }
        }
        XCTAssertTrue(shortened, "1024×700 in large type needs a shorter form")
    }
}
