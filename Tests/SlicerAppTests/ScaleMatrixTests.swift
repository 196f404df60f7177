import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerONNX
@testable import SlicerInfo
import SlicerUI
@testable import SlicerApp

/// The app at ResNet-50's scale (issue 13) on a model built here: a tap of 2,048
/// channels and 1,000 classes with ImageNet-style names. The matrix's rows and
/// columns, the class picker, the paged feature-map grid and the browser's class
/// search, through real input events in the headless host.
@MainActor
final class MatrixScaleHarness: HeadlessApp {
    static let channels = 2048
    static let classes = 1000
    static let tabby = 281

    /// ImageNet-style names: a few real ones (long ones among them) and the rest made up.
    static let names: [String] = (0..<classes).map { k in
        switch k {
        case 3: return "tiger shark, Galeocerdo cuvieri"
        case 28: return "spotted salamander, Ambystoma maculatum"
        case 281: return "tabby, tabby cat"
        case 282: return "tiger cat"
        case 285: return "Egyptian cat"
        case 500: return "European fire salamander, Salamandra salamandra"
        default: return "synthetic class \(k)"
        }
    }

    /// One image of every class, then ten more of each of classes 500…519: the twenty
    /// classes with the most images are those, the others tie at one image.
    static func label(_ i: Int) -> Int { i < classes ? i : 500 + (i - classes) % 20 }
    static let imageCount = classes + 200

    /// 1×4×4 input → 1×1 conv to 2,048 channels → Relu → GlobalAveragePool → Flatten →
    /// Gemm to 1,000 logits, seeded weights.
    static func network() throws -> Network {
        var state: UInt64 = 99
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 40) % 20_001) / 10_000 - 1
        }
        func node(_ op: String, _ name: String, _ inputs: [String], _ attributes: [String: ONNXAttribute] = [:]) -> ONNXNode {
            ONNXNode(name: name, opType: op, domain: "", inputs: inputs, outputs: [name], attributes: attributes)
        }
        let c = channels, k = classes
        let tensors = [
            ONNXTensor(name: "w1", dims: [c, 1, 1, 1], floats: (0..<c).map { _ in next() }),
            ONNXTensor(name: "b1", dims: [c], floats: (0..<c).map { _ in 0.3 * next() }),
            ONNXTensor(name: "w2", dims: [k, c], floats: (0..<(k * c)).map { _ in 0.1 * next() }),
            ONNXTensor(name: "b2", dims: [k], floats: (0..<k).map { _ in 0.1 * next() }),
        ]
        var initializers: [String: ONNXTensor] = [:]
        for t in tensors { initializers[t.name] = t }
        let nodes = [
            node("Conv", "conv", ["x", "w1", "b1"], ["kernel_shape": .ints([1, 1])]),
            node("Relu", "relu", ["conv"]),
            node("GlobalAveragePool", "gap", ["relu"]),
            node("Flatten", "flat", ["gap"], ["axis": .int(1)]),
            node("Gemm", "fc", ["flat", "w2", "b2"], ["transB": .int(1)]),
        ]
        let graph = ONNXGraph(name: "scale", nodes: nodes, initializers: initializers,
                              inputs: [ONNXValueInfo(name: "x", elementType: .float, dims: [.symbolic("N"), .value(1), .value(4), .value(4)])],
                              outputs: [ONNXValueInfo(name: "fc", elementType: .float, dims: nil)])
        return try Network(model: ONNXModel(path: "scale-2048x1000.onnx", irVersion: 8, opsetVersion: 13, producerName: "SlicerAppTests",
                                            producerVersion: "1", graph: graph, metadata: []))
    }

    static func workspace() throws -> Workspace {
        let net = try network()
        var state: UInt64 = 5
        let pixels: [UInt8] = (0..<(imageCount * 16)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let images = try LabeledImages(channels: 1, height: 4, width: 4, pixels: pixels, labels: (0..<imageCount).map(label),
                                       classNames: names, source: "generated-1000")
        return Workspace(inputs: [try ModelInput(network: net, images: images, labels: names)])
    }

    /// The Relu: 2,048 maps of 4×4.
    let relu: Int

    init(width: Int = 1600, height: Int = 1000) throws {
        let workspace = try Self.workspace()
        relu = try XCTUnwrap(workspace.network.taps.first { $0.opType == "Relu" }).index
        try super.init(workspace: workspace, width: width, height: height)
        model.selection.tap = relu
        settle()
    }

    /// Frames until the analysis, the shown image and any class columns being computed are in.
    func settle(timeout: Double = 180) {
        let deadline = Date().addingTimeInterval(timeout)
        var calm = 0
        while Date() < deadline && calm < 3 {
            host.frame(frame)
            calm = (model.snapshot?.isComplete ?? false) && model.featureMaps != nil && !model.isBusy ? calm + 1 : 0
            Thread.sleep(forTimeInterval: 0.01)
        }
    }
}

final class ScaleMatrixTests: XCTestCase {
    // MARK: Class search

    /// The kept answer must follow both the query and the names: a new data set with the
    /// same query, or the same names with a new query, may not return the old matches.
    func testClassSearchMemoFollowsQueryAndNames() {
        let imagenet = ["tench", "goldfish", "tabby, tabby cat", "tiger cat", "Egyptian cat"]
        let other = ["cat", "dog", "tabby"]
        var memo = ClassSearchMemo()
        for (query, names) in [("cat", imagenet), ("cat", imagenet), ("tab", imagenet), ("tab", other), ("cat", other), ("", other), ("1", imagenet)] {
            XCTAssertEqual(memo.matches(query, in: names), ClassSearch.matches(query, in: names), "\(query) in \(names)")
        }
        XCTAssertEqual(memo.matches("tab", in: other), [2])
    }

    @MainActor func testClassSearchFindsByAnyPartOfTheNameBestFirst() {
        let names = MatrixScaleHarness.names
        // A substring inside a word finds it.
        XCTAssertEqual(ClassSearch.matches("abb", in: names), [MatrixScaleHarness.tabby])
        // "cat": names with a word starting "cat" (tabby cat, tiger cat, Egyptian cat) before
        // none, in class order; a name equal to an alternative first.
        XCTAssertEqual(ClassSearch.matches("cat", in: names), [281, 282, 285])
        XCTAssertEqual(ClassSearch.matches("tiger cat", in: names).first, 282, "an exact name first")
        XCTAssertEqual(ClassSearch.matches("TABBY", in: names).first, 281, "case does not matter")
        XCTAssertEqual(ClassSearch.matches("tiger_shark", in: names), [3], "folder-style names match as typed")
        XCTAssertEqual(ClassSearch.matches("salamander", in: names), [28, 500])
        XCTAssertEqual(ClassSearch.matches("281", in: names).first, 281, "a number finds the class of that index first")
        XCTAssertEqual(ClassSearch.matches("", in: names).count, 1000)
        XCTAssertEqual(ClassSearch.matches("zebra", in: names), [])
        // Prefix before word-start before substring.
        XCTAssertEqual(ClassSearch.matches("sal", in: ["basalt", "big salmon", "salt"]), [2, 1, 0])
    }

    // MARK: Grid paging

    func testMapPagingCutsPagesWithAPartialLastOne() {
        let p = MapPaging(count: 2048, pageSize: 250)
        XCTAssertEqual(p.pageCount, 9)
        XCTAssertEqual(p.channels(onPage: 0), 0..<250)
        XCTAssertEqual(p.channels(onPage: 8), 2000..<2048, "the last page holds what is left")
        XCTAssertEqual(p.channels(onPage: 20), 2000..<2048, "past the end: the last page")
        XCTAssertEqual(p.caption(page: 0), "maps 1–250 of 2048")
        XCTAssertEqual(p.caption(page: 8), "maps 2001–2048 of 2048")
        XCTAssertEqual(p.page(of: 1249), 4)
        XCTAssertEqual(p.page(of: 1250), 5)
        XCTAssertEqual(p.page(of: 2047), 8)
        XCTAssertEqual(MapPaging(count: 2048, pageSize: 256).pageCount, 8)
        XCTAssertEqual(MapPaging(count: 16, pageSize: 16).pageCount, 1)
    }

    // MARK: The matrix at 2,048 rows

    @MainActor func testScrolledToRow2000ABrushSelectsExactlyThatChannel() async throws {
        let h = try MatrixScaleHarness(width: 1024, height: 700)
        let g0 = try XCTUnwrap(h.view.matrix.geometry)
        XCTAssertEqual(g0.order.count, MatrixScaleHarness.channels)
        XCTAssertNil(g0.rowRect(channel: 2000).flatMap { $0.maxY <= g0.viewport.maxY ? $0 : nil }, "row 2000 starts out of sight")
        // End, then Page Up until channel 2000's row is in view.
        h.view.focusedView = 2
        h.host.press(.end, h.frame)
        h.frame()
        var g = try XCTUnwrap(h.view.matrix.geometry)
        for _ in 0..<20 {
            let row = try XCTUnwrap(g.rowRect(channel: 2000))
            if row.minY >= g.viewport.minY && row.maxY <= g.viewport.maxY { break }
            h.host.press(.pageUp, h.frame)
            h.frame()
            g = try XCTUnwrap(h.view.matrix.geometry)
        }
        let row = try XCTUnwrap(g.rowRect(channel: 2000))
        XCTAssertTrue(row.minY >= g.viewport.minY && row.maxY <= g.viewport.maxY, "row 2000 scrolled into view")
        // A click on it brushes channel 2000, no other.
        h.host.click(at: Vec2(g.columnX[1] + 2, row.center.y), h.frame)
        XCTAssertEqual(h.model.selection.channels, [2000])
        // A drag from 1999 to 2001 brushes exactly those, while scrolled.
        h.frame()
        g = try XCTUnwrap(h.view.matrix.geometry)
        let a = try XCTUnwrap(g.rowRect(channel: 1999)), b = try XCTUnwrap(g.rowRect(channel: 2001))
        h.host.drag(from: Vec2(g.columnX[1] + 2, a.center.y), to: Vec2(g.columnX[1] + 2, b.center.y), steps: 4, h.frame)
        XCTAssertEqual(h.model.selection.channels, [1999, 2000, 2001])
        // The row labels are the channel numbers: the label column is wide enough for "2047".
        let font = h.host.ui.font(.small)
        XCTAssertGreaterThanOrEqual(g.columnX[0] - g.viewport.x, h.host.ui.measurer.width(of: "2047"[...], font: font))
    }

    // MARK: Columns at 1,000 classes

    @MainActor func testColumnsAreSelectedThenLargestClassesAndFit() async throws {
        let h = try MatrixScaleHarness()
        h.model.selection.classes = [MatrixScaleHarness.tabby]
        h.settle()
        let g = try XCTUnwrap(h.view.matrix.geometry)
        let classColumns = g.columns.compactMap { column -> Int? in if case .classEntropy(let k) = column { return k } else { return nil } }
        // Reference: the selected class, then the classes by image count (ties: lower index).
        let labels = (0..<MatrixScaleHarness.imageCount).map(MatrixScaleHarness.label)
        var counts = [Int](repeating: 0, count: MatrixScaleHarness.classes)
        for y in labels { counts[y] += 1 }
        let ranked = (0..<MatrixScaleHarness.classes).filter { $0 != MatrixScaleHarness.tabby }.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        let expected = [MatrixScaleHarness.tabby] + ranked.prefix(classColumns.count - 1)
        XCTAssertEqual(classColumns, Array(expected))
        XCTAssertEqual(Array(classColumns[1...20]), Array(500..<520), "the twenty classes with eleven images lead the rest")
        XCTAssertLessThan(classColumns.count, 200, "not 1,000 columns")
        // Everything fits: columns at least 12 points wide, inside the matrix panel.
        let panel = try XCTUnwrap(h.view.layout["matrix"])
        XCTAssertGreaterThanOrEqual(g.columnWidth, h.host.ui.scaled(12) - 0.01)
        XCTAssertLessThanOrEqual(g.columnX.last! + g.columnWidth, panel.maxX + 0.5)
        // As many class columns as fit at 12 points beside the three summary columns, no fewer.
        let gridWidth = g.columnWidth * Float(g.columns.count)
        XCTAssertEqual(classColumns.count, Int(gridWidth / h.host.ui.scaled(12)) - 3)
        // The values shown are the exact on-demand table for those classes.
        let shown = try XCTUnwrap(h.view.matrix.shownTable)
        XCTAssertEqual(shown.classes, classColumns)
        let snapshot = try XCTUnwrap(h.model.snapshot)
        let direct = try h.model.engine.classChannelTable(tap: h.relu, classes: classColumns, request: snapshot.request,
                                                          ranges: try XCTUnwrap(snapshot.ranges))
        XCTAssertEqual(shown.values(ensemble: false).map { $0.map { $0 ?? -1 } }, direct.values(ensemble: false).map { $0.map { $0 ?? -1 } })
        XCTAssertEqual(shown.values(ensemble: true).map { $0.map { $0 ?? -1 } }, direct.values(ensemble: true).map { $0.map { $0 ?? -1 } })
    }

    @MainActor func testPickerSearchAddsAClassColumnAndRemovesIt() async throws {
        let h = try MatrixScaleHarness()
        h.frame()
        XCTAssertFalse(h.view.matrix.columnClasses.contains(MatrixScaleHarness.tabby), "tabby is no column at first")
        let button = try XCTUnwrap(h.view.layout["matrixClassesButton"], "many classes: the picker's button")
        h.host.click(at: button.center, h.frame)
        XCTAssertTrue(h.view.matrix.pickerOpen)
        h.frame()
        h.host.type("abb", h.frame)
        h.frame()
        XCTAssertEqual(Array(h.view.matrix.pickerRows.keys), [MatrixScaleHarness.tabby], "the substring finds the one class")
        // Click the row: tabby becomes a column.
        let row = try XCTUnwrap(h.view.matrix.pickerRows[MatrixScaleHarness.tabby])
        h.host.click(at: row.center, h.frame)
        XCTAssertEqual(h.view.matrix.pinned, [MatrixScaleHarness.tabby])
        // Return with another query adds its best match.
        h.view.matrix.pickerQuery = ""
        h.view.matrix.focusPicker = true
        h.frame()
        h.host.type("egyptian", h.frame)
        h.host.press(.enter, h.frame)
        XCTAssertEqual(h.view.matrix.pinned, [MatrixScaleHarness.tabby, 285])
        let done = try XCTUnwrap(h.view.layout["matrixPicker"])
        h.host.press(.escape, h.frame)
        XCTAssertFalse(h.view.matrix.pickerOpen, "Escape closes the picker")
        XCTAssertNotNil(done)
        h.settle()
        XCTAssertEqual(Array(h.view.matrix.shownClasses.prefix(2)), [MatrixScaleHarness.tabby, 285], "added classes lead the columns")
        let headers = try XCTUnwrap(h.view.matrix.geometry).headerTexts
        XCTAssertTrue(classNameAlternatives(MatrixScaleHarness.names[281]).contains(headers[0]), headers[0])
        // Open again and click tabby's row: its column goes.
        h.host.click(at: try XCTUnwrap(h.view.layout["matrixClassesButton"]).center, h.frame)
        h.host.type("tabby", h.frame)
        h.frame()
        h.host.click(at: try XCTUnwrap(h.view.matrix.pickerRows[MatrixScaleHarness.tabby]).center, h.frame)
        XCTAssertEqual(h.view.matrix.pinned, [285])
    }

    @MainActor func testMostDistinctFillsWithTheClassesFurthestFromAllImages() async throws {
        let h = try MatrixScaleHarness()
        h.model.selection.method = .ensemble
        h.view.openClassPicker()
        h.frame()
        // The picker's choice: most distinct.
        let segmented = try XCTUnwrap(h.view.layout["matrixRanking"])
        h.host.click(at: Vec2(segmented.maxX - 8, segmented.center.y), h.frame)
        XCTAssertEqual(h.view.matrix.ranking, .mostDistinct)
        h.host.press(.escape, h.frame)
        h.settle()
        // Reference from the analysis's tap-level numbers: |H_E(class) − H_E(all)|, largest first.
        let tap = try XCTUnwrap(h.model.snapshot?.summary).taps[h.relu]
        let distance = (0..<MatrixScaleHarness.classes).map { k in tap.classEnsembleEntropy[k].map { abs($0 - tap.ensembleEntropy) } ?? -1 }
        let ranked = (0..<MatrixScaleHarness.classes).sorted { distance[$0] != distance[$1] ? distance[$0] > distance[$1] : $0 < $1 }
        let columns = h.view.matrix.columnClasses
        XCTAssertEqual(columns, Array(ranked.prefix(columns.count)))
        XCTAssertNotEqual(columns, Array(0..<columns.count), "not class order")
        XCTAssertGreaterThan(distance[columns[0]], distance[columns[columns.count - 1]])
    }

    @MainActor func testMoreChosenClassesThanFitPageSideways() async throws {
        let h = try MatrixScaleHarness(width: 1024, height: 700)
        h.view.matrix.pinned = Array(100..<160)
        h.model.selection.classes = [7]
        h.settle()
        let columns = h.view.matrix.columnClasses
        XCTAssertEqual(columns, [7] + Array(100..<160), "only the chosen classes, selected first, when they overflow")
        let shown = h.view.matrix.shownClasses
        XCTAssertLessThan(shown.count, columns.count)
        XCTAssertEqual(shown, Array(columns.prefix(shown.count)))
        // Shift+wheel over the matrix pages to the next ones; a sideways wheel back.
        let g = try XCTUnwrap(h.view.matrix.geometry)
        let point = Vec2(g.columnX[1] + 2, g.viewport.center.y)
        h.host.moveMouse(to: point, h.frame)
        var shift = h.host.input
        shift.modifiers = .shift
        h.host.input = shift
        h.host.scroll(by: Vec2(0, -1), at: point, h.frame)
        h.host.input.modifiers = []
        h.frame()
        let paged = h.view.matrix.shownClasses
        XCTAssertEqual(paged.first, columns[max(1, shown.count / 2)], "half a window on")
        h.host.scroll(by: Vec2(-1, 0), at: point, h.frame)
        h.frame()
        XCTAssertEqual(h.view.matrix.shownClasses, shown, "a sideways wheel goes back")
    }

    // MARK: The feature-map grid pages

    @MainActor func testTheGridPagesAndFollowsTheBrushedChannel() async throws {
        let h = try MatrixScaleHarness(width: 1024, height: 700)
        let maps = h.view.maps
        XCTAssertGreaterThanOrEqual(maps.pageCount, 6, "2,048 maps do not fit one page at 28 points a map")
        let size = maps.pageSize
        XCTAssertEqual(maps.pageCount, (2048 + size - 1) / size)
        XCTAssertEqual(h.view.maps.drawnChannels, Array(0..<size), "only the first page is drawn")
        XCTAssertTrue(h.view.layout["mapsCaption"] != nil)
        // A channel on the fifth page (index 4), brushed in another view, turns the grid there.
        let c = 4 * size + 3
        h.model.selection.channels = [c]
        h.frame()
        XCTAssertEqual(h.view.maps.page, 4)
        XCTAssertEqual(h.view.maps.drawnChannels, Array((4 * size)..<(5 * size)))
        // Page Down, the previous button, End (the partial last page).
        h.view.focusedView = 3
        h.host.press(.pageDown, h.frame)
        h.frame()
        XCTAssertEqual(h.view.maps.page, 5)
        h.host.click(at: try XCTUnwrap(h.view.layout["mapsPrev"]).center, h.frame)
        XCTAssertEqual(h.view.maps.page, 4)
        h.host.press(.end, h.frame)
        h.frame()
        let last = h.view.maps.pageCount - 1
        XCTAssertEqual(h.view.maps.page, last)
        XCTAssertEqual(h.view.maps.drawnChannels, Array((last * size)..<2048), "the last page is partial")
        // Brushing a channel already in view leaves the page where it is.
        h.model.selection.channels = [2047, 3]
        h.frame()
        XCTAssertEqual(h.view.maps.page, last)
        // A tap of few maps is one page again.
        h.model.selection.channels = []
        h.model.selection.tap = 0
        h.settle()
        XCTAssertEqual(h.view.maps.pageCount, 1)
        XCTAssertEqual(h.view.maps.drawnChannels.count, h.model.network.taps[0].channels)
    }

    // MARK: The browser's class search

    @MainActor func testBrowserSearchFiltersExactlyThatClassesImages() async throws {
        let h = try MatrixScaleHarness()
        let field = try XCTUnwrap(h.view.layout["browserSearch"], "1,000 classes: a search field, not a drop-down")
        h.host.click(at: field.center, h.frame)
        h.host.type("salam", h.frame)
        h.frame()
        XCTAssertEqual(Set(h.view.browser.matchRows.keys), [28, 500], "the list gives way to the matches")
        // Click the European fire salamander (class 500, eleven images).
        h.host.click(at: try XCTUnwrap(h.view.browser.matchRows[500]).center, h.frame)
        h.frame()
        XCTAssertEqual(h.view.browser.classFilter, 500)
        let expected = (0..<MatrixScaleHarness.imageCount).filter { MatrixScaleHarness.label($0) == 500 }
        XCTAssertEqual(expected.count, 11)
        XCTAssertEqual(h.view.browserIndices(), expected)
        XCTAssertEqual(Set(h.view.browser.thumbnailRects.keys), Set(expected), "exactly that class's thumbnails are drawn")
        // Type another and press Return: the best match.
        h.host.click(at: field.center, h.frame)
        h.host.press(.character("a"), modifiers: .control, h.frame)
        h.host.type("tabby", h.frame)
        h.host.press(.enter, h.frame)
        h.frame()
        XCTAssertEqual(h.view.browser.classFilter, MatrixScaleHarness.tabby)
        XCTAssertEqual(Set(h.view.browser.thumbnailRects.keys), [MatrixScaleHarness.tabby])
        // An empty field is every class again.
        h.host.click(at: field.center, h.frame)
        h.host.press(.character("a"), modifiers: .control, h.frame)
        h.host.press(.backspace, h.frame)
        h.frame()
        XCTAssertNil(h.view.browser.classFilter)
        XCTAssertEqual(h.view.browserIndices().count, MatrixScaleHarness.imageCount)
    }

    // MARK: Nothing cut

    @MainActor func testNoTextIsCutAtScale() async throws {
        let h = try MatrixScaleHarness()
        h.model.selection.classes = [500]
        h.model.selection.channels = [1500]
        let states: [(String, () -> Void)] = [
            ("matrix and paged maps", { h.view.matrix.pickerOpen = false }),
            ("picker", { h.view.openClassPicker(); h.view.matrix.pickerQuery = "sala" }),
            ("picker, every class", { h.view.matrix.pickerQuery = "" }),
            ("browser search", { h.view.matrix.pickerOpen = false; h.view.browser.query = "cat" }),
            ("browser filtered", { h.view.setBrowserFilter(500) }),
        ]
        for setup in Presentation.all where [1024, 1600].contains(setup.width) {
            setup.apply(to: h.host, h.view)
            for (state, enter) in states {
                enter()
                h.frame(); h.frame()
                let cut = h.host.ui.diagnostics.truncations
                XCTAssertEqual(cut, [], "\(setup.name), \(state): \(cut.map(\.description).joined(separator: "; "))")
                if let dir = ProcessInfo.processInfo.environment["SLICERAPP_KEEP_IMAGES"] {
                    try h.host.saveScreenshot(to: dir + "/scale-\(setup.width)-\(setup.theme)-\(setup.largeType)-\(state.replacingOccurrences(of: " ", with: "_")).png")
                }
            }
            h.view.setBrowserFilter(nil)
        }
    }
}
