import Foundation
import XCTest
@testable import SlicerInfo
import SlicerUI
@testable import SlicerApp

/// Issue 13's flaws seen on ImageNet-size models in front of an audience: the image
/// panel's prediction lines clipped at 1024×700 in large type, a matrix of three rows
/// headed by bare class indices, a first stage unnamed on the chart's axis, and the
/// frame that computed every tap's entropies of the shown image on the main thread.
final class PresentationFlawsTests: XCTestCase {
    // MARK: The image panel

    /// The plan never asks for more height than the panel has; with room to spare it is the
    /// old layout (a thumbnail of 55 % of the height, three predictions); lines go from the
    /// bottom only once the thumbnail is at its smallest.
    func testImagePanelPlanFitsEveryHeight() {
        let line: Float = 20, gap: Float = 6, titleGap: Float = 4, predictionGap: Float = 2, smallest: Float = 48
        var previous = 0
        for h in stride(from: Float(0), through: 400, by: 1) {
            for width: Float in [30, 120, 200] {
                let p = AppView.imageInfoPlan(height: h, width: width, line: line, gap: gap, titleGap: titleGap,
                                              predictionGap: predictionGap, minThumbnail: smallest, predictions: 3)
                let text = p.title ? gap + line + titleGap + Float(p.predictions) * (line + predictionGap) : 0
                XCTAssertLessThanOrEqual(p.side + text, h + 0.001, "height \(h), width \(width): everything inside")
                XCTAssertLessThanOrEqual(p.side, width, "height \(h)")
                if p.predictions < 3 && p.title {
                    XCTAssertLessThanOrEqual(p.side, min(width, smallest) + line + predictionGap,
                                             "height \(h), width \(width): a line goes only when the thumbnail is already small")
                }
                if width == 200 {
                    XCTAssertGreaterThanOrEqual(p.predictions, previous, "height \(h): more height never shows fewer lines")
                    previous = p.predictions
                }
            }
        }
        let roomy = AppView.imageInfoPlan(height: 400, width: 200, line: line, gap: gap, titleGap: titleGap,
                                          predictionGap: predictionGap, minThumbnail: smallest, predictions: 3)
        XCTAssertEqual(roomy.predictions, 3)
        XCTAssertTrue(roomy.title)
        XCTAssertEqual(roomy.side, 200, "width-bound thumbnail when the panel is tall")
    }

    /// Every line of the image panel lies inside the feature-map panel at every presented
    /// size, down to the app's 320×240 minimum, at both type sizes; at 1024×700 in large type
    /// (where the third prediction was clipped) all three predictions are shown.
    @MainActor func testEveryImagePanelLineFitsItsPanel() async throws {
        let h = try ScaleHarness()
        var setups = Presentation.all
        for large in [false, true] {
            for (w, hh) in [(320, 240), (640, 480), (800, 600), (1920, 1080)] {
                setups.append(Presentation(width: w, height: hh, scale: 1, theme: 0, largeType: large))
            }
        }
        for setup in setups {
            setup.apply(to: h.host, h.view)
            h.frame(); h.frame()
            let panel = try XCTUnwrap(h.view.layout["maps"], setup.name)
            let image = try XCTUnwrap(h.view.layout["shownImage"], setup.name)
            // (At 320×240 the panel itself is a few points high: nothing is drawn in it.)
            if image.height > 0 {
                XCTAssertTrue(panel.contains(image.origin) && image.maxY <= panel.maxY + 0.5, "\(setup.name): thumbnail \(image) in \(panel)")
            }
            let lines = (["imageTitle"] + (0..<3).map { "prediction \($0)" }).compactMap { h.view.layout[$0] }
            for r in lines {
                XCTAssertTrue(r.minY >= panel.minY - 0.5 && r.maxY <= panel.maxY + 0.5 && r.minX >= panel.minX - 0.5 && r.maxX <= panel.maxX + 0.5,
                              "\(setup.name): line \(r) inside the panel \(panel)")
                XCTAssertGreaterThanOrEqual(r.minY, image.maxY, "\(setup.name): under the thumbnail")
            }
            if setup.width >= 1024 {
                XCTAssertEqual(lines.count, 4, "\(setup.name): the title and three predictions")
            }
            let info = try XCTUnwrap(h.view.layout["imageInfo"], setup.name)
            let cut = h.host.ui.diagnostics.truncations.filter { info.intersects($0.rect) }
            XCTAssertEqual(cut, [], "\(setup.name): \(cut.map(\.description).joined(separator: "; "))")
        }
    }

    // MARK: The matrix at 1024×700 in large type

    /// A short matrix panel (1024×700, large type) keeps room for at least four rows and
    /// heads its class columns with names (short forms), not bare class indices.
    @MainActor func testShortMatrixHasRowsAndNamedColumns() async throws {
        let h = try ScaleHarness()
        for setup in Presentation.all {
            setup.apply(to: h.host, h.view)
            h.frame(); h.frame()
            let g = try XCTUnwrap(h.view.matrix.geometry, setup.name)
            XCTAssertGreaterThanOrEqual(g.viewport.height / g.rowHeight, 4, "\(setup.name): room for four rows")
            let classTexts = zip(g.columns, g.headerTexts).compactMap { column, text -> String? in
                if case .classEntropy = column { return text } else { return nil }
            }
            XCTAssertFalse(classTexts.isEmpty, setup.name)
            for text in classTexts { XCTAssertNil(Int(text), "\(setup.name): column headed by the bare index \(text)") }
        }
    }

    /// ImageNet names whose first word is of wide letters ("hammerhead", "house finch") were
    /// headed by bare indices at 1024×700 in large type: their short forms go down to three
    /// letters and a period, each form no longer than the one before, the whole name first.
    func testShortFormsGoDownToThreeLetters() {
        let cases: [(String, [String])] = [
            ("hammerhead, hammerhead shark", ["hammerhead", "hamme.", "hamm.", "ham."]),
            ("house finch, linnet, Carpodacus mexicanus", ["house finch", "house f.", "house", "hous.", "hou."]),
            ("goldfish", ["goldf.", "gold.", "gol."]),
            ("hen", []),
        ]
        for (name, wanted) in cases {
            let forms = classNameAlternatives(name)
            XCTAssertEqual(forms.first, name)
            for form in wanted { XCTAssertTrue(forms.contains(form), "\(name): \(form) in \(forms)") }
            for (a, b) in zip(forms, forms.dropFirst()) { XCTAssertGreaterThanOrEqual(a.count, b.count, "\(name): \(forms)") }
            XCTAssertEqual(Set(forms).count, forms.count, "\(name): no form twice")
        }
        XCTAssertEqual(classNameAlternatives("hen"), ["hen"], "no cut of a word of three letters")
    }

    /// Where the tab row has room for it (1280×700 in large type), "Classes…" sits at the
    /// tab row's right end instead of on a row of its own above the matrix, and still opens
    /// the picker; where it has not (1024×700), it keeps its row.
    @MainActor func testClassesButtonJoinsTheTabRowWhereItFits() async throws {
        let h = try ScaleHarness(width: 1280, height: 700)
        for (width, inTabs) in [(1280, true), (1024, false)] {
            Presentation(width: width, height: 700, scale: 1, theme: 0, largeType: true).apply(to: h.host, h.view)
            h.view.matrix.pickerOpen = false
            h.frame(); h.frame()
            let panel = try XCTUnwrap(h.view.layout["matrix"])
            let button = try XCTUnwrap(h.view.layout["matrixClassesButton"], "\(width)")
            let g = try XCTUnwrap(h.view.matrix.geometry, "\(width)")
            XCTAssertEqual(h.view.matrix.classesInTabRow, inTabs, "\(width)")
            XCTAssertTrue(panel.contains(button.origin) && button.maxX <= panel.maxX + 0.5 && button.maxY <= g.header.minY + 0.5, "\(width): \(button) above the header")
            if inTabs {
                XCTAssertLessThan(button.minY, panel.minY + h.host.ui.widgetHeight, "\(width): on the tab row")
            } else {
                XCTAssertGreaterThanOrEqual(button.minY, panel.minY + h.host.ui.widgetHeight, "\(width): on its own row")
            }
            let cut = h.host.ui.diagnostics.truncations.filter { panel.intersects($0.rect) }
            XCTAssertEqual(cut, [], "\(width): \(cut.map(\.description).joined(separator: "; "))")
            h.host.click(at: button.center, h.frame)
            h.frame()
            XCTAssertTrue(h.view.matrix.pickerOpen, "\(width): the button opens the picker")
        }
    }

    // MARK: The chart's axis names every stage

    /// MobileNet-V2's stages on the chart's axis: each has a name at every presented size,
    /// the narrow first one ("features.0–1") included, and no two names overlap.
    @MainActor func testEveryMobileNetStageIsNamedOnTheChartAxis() async throws {
        let h = try MobileHarness()
        var setups = Presentation.all
        setups.append(Presentation(width: 1920, height: 1080, scale: 1, theme: 0, largeType: true))
        for setup in setups {
            setup.apply(to: h.host, h.view)
            h.view.strip.span = nil; h.view.strip.start = 0
            // The last tap: its long name is written under the axis, near the left end.
            h.model.selection.tap = h.model.network.taps.count - 2
            h.frame(); h.frame()
            let names = h.view.chart.axisBlockNames
            XCTAssertFalse(names.isEmpty, "\(setup.name): the axis names blocks")
            for (n, name) in names.enumerated() { XCTAssertNotNil(name, "\(setup.name): block \(n) unnamed") }
            let labels = h.view.chart.axisLabels
            let chart = try XCTUnwrap(h.view.layout["chart"], setup.name)
            for r in labels { XCTAssertTrue(r.minX >= chart.minX && r.maxX <= chart.maxX, "\(setup.name): \(r) inside the chart \(chart)") }
            for i in labels.indices {
                for j in labels.indices where j > i { XCTAssertFalse(labels[i].intersects(labels[j]), "\(setup.name): \(i) and \(j) overlap") }
            }
        }
    }

    // MARK: The shown image's entropies

    /// One tap's entropies are those of the whole computation at that tap (and nothing
    /// else is computed), so the maps' labels did not change by computing less.
    @MainActor func testOneTapsImageEntropyEqualsTheWholeComputation() async throws {
        let h = try ScaleHarness()
        let maps = try XCTUnwrap(h.model.featureMaps)
        let ranges = try XCTUnwrap(h.model.snapshot?.ranges)
        let settings = h.model.selection.settings
        let whole = ImageEntropy(maps: maps, ranges: ranges, settings: settings)
        for tap in [0, 7, 100, maps.taps.count - 1] {
            let one = ImageEntropy(maps: maps, ranges: ranges, settings: settings, taps: [tap])
            XCTAssertEqual(one.channels[tap], whole.channels[tap], "tap \(tap)")
            XCTAssertEqual(one.histograms[tap], whole.histograms[tap], "tap \(tap)")
            XCTAssertEqual(one.layer[tap], whole.layer[tap], "tap \(tap)")
            let other = tap == 0 ? 1 : 0
            XCTAssertEqual(one.channels[other], [], "tap \(other) not computed")
        }
    }

    /// A drawn image's line in the chart comes from the background: nil in the frame that
    /// asks, then (frames later, the main thread never waiting) the whole computation's values.
    @MainActor func testDrawnImageEntropyArrivesFromTheBackground() async throws {
        let h = try ScaleHarness()
        let shape = h.model.network.inputShape
        var rng: UInt64 = 3
        let pixels: [UInt8] = (0..<shape.reduce(1, *)).map { _ in
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: rng >> 56)
        }
        h.model.setDrawnImage(pixels)
        let deadline = Date().addingTimeInterval(60)
        while h.model.featureMaps == nil || h.model.isBusy, Date() < deadline { h.frame(); usleep(10_000) }
        h.frame()
        var values = h.view.shownImageEntropy()
        while values == nil, Date() < deadline {
            usleep(10_000)
            h.frame()
            values = h.view.shownImageEntropy()
        }
        XCTAssertFalse(h.view.isComputingImageEntropy)
        let maps = try XCTUnwrap(h.model.featureMaps)
        let expected = ImageEntropy(maps: maps, ranges: try XCTUnwrap(h.model.snapshot?.ranges), settings: h.model.selection.settings).layer
        XCTAssertEqual(try XCTUnwrap(values, "arrived"), expected)
    }
}
