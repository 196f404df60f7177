import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerONNX
@testable import SlicerInfo
import SlicerUI
@testable import SlicerApp

/// A ResNet-50 in miniature, built in memory: torchvision's node names and
/// layout (stem, four stages of 3, 4, 6 and 3 bottleneck blocks, a downsample
/// branch in each stage's first block, Add and ReLU after each block, global
/// pooling, a 1,000-class Gemm) — 175 taps as the real export has, 4 channels
/// on 8×8 images so that the whole analysis takes a moment.
enum MiniResNet {
    static let classes = 1000
    static let stages = [3, 4, 6, 3]

    static func network() throws -> Network {
        var seed: UInt64 = 0x5EED
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 20_001) / 10_000 - 1
        }
        var inits: [String: ONNXTensor] = [:]
        var nodes: [ONNXNode] = []
        func weights(_ name: String, _ dims: [Int], scale: Float, offset: Float = 0) -> String {
            inits[name] = ONNXTensor(name: name, dims: dims, floats: (0..<dims.reduce(1, *)).map { _ in offset + scale * next() })
            return name
        }
        func add(_ op: String, _ name: String, _ inputs: [String], _ attributes: [String: ONNXAttribute] = [:]) -> String {
            nodes.append(ONNXNode(name: name, opType: op, domain: "", inputs: inputs, outputs: [name], attributes: attributes))
            return name
        }
        let c = 4
        func conv(_ prefix: String, _ x: String, k: Int) -> String {
            let w = weights(prefix + ".w", [c, c, k, k], scale: 0.6 / Float(k))
            let pads = k == 3 ? [1, 1, 1, 1] : [0, 0, 0, 0]
            return add("Conv", prefix + "/Conv", [x, w], ["kernel_shape": .ints([k, k]), "pads": .ints(pads)])
        }
        func bn(_ prefix: String, _ x: String) -> String {
            let g = weights(prefix + ".g", [c], scale: 0.2, offset: 1), b = weights(prefix + ".b", [c], scale: 0.2)
            let m = weights(prefix + ".m", [c], scale: 0.1), v = weights(prefix + ".v", [c], scale: 0.2, offset: 1)
            return add("BatchNormalization", prefix + "/BatchNormalization", [x, g, b, m, v], ["epsilon": .float(1e-5)])
        }
        let w0 = weights("conv1.w", [c, 3, 3, 3], scale: 0.4)
        var x = add("Conv", "/conv1/Conv", ["input", w0], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])])
        x = bn("/bn1", x)
        x = add("Relu", "/relu/Relu", [x])
        x = add("MaxPool", "/maxpool/MaxPool", [x], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
        for (s, blocks) in stages.enumerated() {
            let stage = "layer\(s + 1)"
            for b in 0..<blocks {
                let p = "/\(stage)/\(stage).\(b)"
                let input = x
                var y = conv(p + "/conv1", input, k: 1)
                y = bn(p + "/bn1", y)
                y = add("Relu", p + "/relu/Relu", [y])
                y = conv(p + "/conv2", y, k: 3)
                y = bn(p + "/bn2", y)
                y = add("Relu", p + "/relu_1/Relu", [y])
                y = conv(p + "/conv3", y, k: 1)
                y = bn(p + "/bn3", y)
                var shortcut = input
                if b == 0 {
                    shortcut = conv(p + "/downsample/downsample.0", input, k: 1)
                    shortcut = bn(p + "/downsample/downsample.1", shortcut)
                }
                y = add("Add", p + "/Add", [y, shortcut])
                x = add("Relu", p + "/relu_2/Relu", [y])
            }
        }
        x = add("GlobalAveragePool", "/avgpool/GlobalAveragePool", [x])
        x = add("Flatten", "/Flatten", [x], ["axis": .int(1)])
        let fw = weights("fc.w", [classes, c], scale: 1), fb = weights("fc.b", [classes], scale: 0.1)
        _ = add("Gemm", "/fc/Gemm", [x, fw, fb], ["transB": .int(1)])
        let graph = ONNXGraph(name: "mini-resnet", nodes: nodes, initializers: inits,
                              inputs: [ONNXValueInfo(name: "input", elementType: .float, dims: [.symbolic("N"), .value(3), .value(8), .value(8)])],
                              outputs: [ONNXValueInfo(name: "/fc/Gemm", elementType: .float, dims: nil)])
        return try Network(model: ONNXModel(path: "mini-resnet50.onnx", irVersion: 8, opsetVersion: 13, producerName: "SlicerAppTests",
                                            producerVersion: "1", graph: graph, metadata: []))
    }

    /// Class names of ImageNet's kinds of length: short, with a comma (a first word of wide
    /// letters, as "hammerhead"), long.
    static func className(_ k: Int) -> String {
        switch k % 4 {
        case 0: return "kind \(k)"
        case 1: return "hammerhead \(k), with another name"
        case 2: return "a rather long class name number \(k)"
        default: return "c\(k)"
        }
    }

    /// `count` random 3×8×8 images; image i is of class (i·7) mod 250, so 250 classes have
    /// images and 750 have none (as a small ImageNet folder).
    static func workspace(count: Int = 500) throws -> Workspace {
        let network = try network()
        var rng: UInt64 = 99
        let pixels: [UInt8] = (0..<(count * 192)).map { _ in
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: rng >> 56)
        }
        let names = (0..<classes).map(className)
        let images = try LabeledImages(channels: 3, height: 8, width: 8, pixels: pixels, labels: (0..<count).map { ($0 * 7) % 250 },
                                       classNames: names, source: "generated")
        return Workspace(inputs: [try ModelInput(network: network, images: images, labels: names)])
    }
}

@MainActor
final class ScaleHarness: HeadlessApp {
    init(width: Int = 1024, height: Int = 700) throws {
        try super.init(workspace: try MiniResNet.workspace(), width: width, height: height)
        runUntilSettled(host, model, timeout: 120, frame)
    }
    var strip: StripGeometry { get throws { try XCTUnwrap(view.strip.geometry, "the strip was drawn") } }

    func click(_ name: String) throws {
        frame()
        let r = try XCTUnwrap(try strip.buttons[name], "button \(name)")
        host.click(at: r.center, frame)
        frame()
    }

    /// What the detector found cut in the strip and the chart (the views this file is about).
    var truncations: [TextTruncation] {
        let areas = ["strip", "chart"].compactMap { view.layout[$0] }
        return host.ui.diagnostics.truncations.filter { t in areas.contains { $0.intersects(t.rect) } }
    }
}

final class ScaleViewsTests: XCTestCase {
    // MARK: Blocks from names

    func testBlocksComeFromTheModulePathsOfTheNames() throws {
        let names = try MiniResNet.network().taps.map(\.name)
        XCTAssertEqual(names.count, 175, "as the real ResNet-50: the input and 174 nodes (Flatten is no tap)")
        let groups = TapGroups(names: names)
        XCTAssertEqual(groups.levels.count, 2)
        // Stages and blocks: the runs of taps whose names start with the path, found here by prefix.
        func taps(under prefix: String) -> ClosedRange<Int>? {
            let hits = names.indices.filter { names[$0].hasPrefix(prefix) }
            return hits.first.map { $0...hits.last! }
        }
        XCTAssertEqual(groups.levels[0].map(\.path), ["layer1", "layer2", "layer3", "layer4"])
        for g in groups.levels[0] { XCTAssertEqual(g.taps, taps(under: "/\(g.path)/"), g.path) }
        XCTAssertEqual(groups.levels[1].count, MiniResNet.stages.reduce(0, +))
        for g in groups.levels[1] {
            XCTAssertEqual(g.taps, taps(under: "/\(g.path)/"), g.path)
            XCTAssertEqual(g.taps.count, g.path.hasSuffix(".0") ? 12 : 10, g.path)
        }
        XCTAssertEqual(groups.levels[1][4].labels, ["layer2.1", "1"])
        let index = { (name: String) in try XCTUnwrap(names.firstIndex(of: name)) }
        XCTAssertEqual(groups.leafNames[try index("/layer2/layer2.0/downsample/downsample.0/Conv")], "downsample.0")
        XCTAssertEqual(groups.leafNames[try index("/layer2/layer2.0/Add")], "Add")
        XCTAssertEqual(groups.leafNames[try index("/layer3/layer3.4/relu_1/Relu")], "relu_1")
        // The shipped models' names ("/6/Relu") have no blocks: the strip looks as it did.
        let small = TapGroups(names: ["input", "/0/Conv", "/1/BatchNormalization", "/2/Relu", "/3/MaxPool", "/4/Flatten", "/5/Gemm"])
        XCTAssertTrue(small.levels.isEmpty)
        XCTAssertEqual(small.leafNames, [String?](repeating: nil, count: 7))
        // MobileNet's names: one "features" module around most taps says nothing, nor does
        // "conv" around all of a block: the blocks, then the units inside them.
        var mobileNames = ["input", "/features/features.0/features.0.0/Conv", "/features/features.0/features.0.1/BatchNormalization",
                           "/features/features.0/features.0.2/Clip"]
        for b in 1...6 {
            let p = "/features/features.\(b)/conv/"
            mobileNames += [p + "conv.0/conv.0.0/Conv", p + "conv.0/conv.0.1/BatchNormalization", p + "conv.0/conv.0.2/Clip",
                            p + "conv.1/Conv", p + "conv.2/BatchNormalization"]
        }
        mobileNames += ["/GlobalAveragePool", "/classifier/classifier.1/Gemm"]
        let mobile = TapGroups(names: mobileNames)
        XCTAssertEqual(mobile.levels.first?.map(\.path), (0...6).map { "features/features.\($0)" })
        XCTAssertEqual(mobile.levels.first?.map(\.taps), [1...3] + (0..<6).map { (4 + 5 * $0)...(8 + 5 * $0) })
        // The stem, not split further, keeps its own cell in the lower row.
        XCTAssertEqual(mobile.levels.last?.map(\.path), ["features/features.0"] + (1...6).map { "features/features.\($0)/conv/conv.0" })
        XCTAssertEqual(mobile.levels.last?[1].labels, ["conv.0", "0"])
        XCTAssertEqual(mobile.levels[0][3].labels, ["features.3", "3"])
        // One module around everything says nothing: the level below is used.
        let wrapped = TapGroups(names: ["input"] + names.dropFirst().map { "/model" + $0 })
        XCTAssertEqual(wrapped.levels.first?.map(\.path), ["model/layer1", "model/layer2", "model/layer3", "model/layer4"])
    }

    @MainActor func testShippedModelStripNeedsNoNavigation() async throws {
        let h = try ViewsHarness(width: 1024, height: 700)
        let g = try XCTUnwrap(h.view.strip.geometry)
        XCTAssertNil(g.overview, "a dozen taps fit: no overview bar")
        XCTAssertTrue(g.headers.isEmpty)
        XCTAssertEqual(g.span, Float(h.model.network.taps.count))
        XCTAssertLessThanOrEqual(try XCTUnwrap(h.view.layout["strip"]).height, 132, "the strip's height as before")
    }

    // MARK: Zoom, pan, keys

    @MainActor func testTheSelectedTapStaysInSightWhileZoomingAndStepping() async throws {
        let h = try ScaleHarness()
        let count = h.model.network.taps.count
        XCTAssertEqual(try h.strip.span, Float(count), "175 taps fit the strip at 1,024 pixels, narrowly")
        // Zoom in with the button: the view holds fewer taps, the selected one among them.
        for _ in 0..<4 { try h.click("zoom in") }
        var g = try h.strip
        XCTAssertLessThan(g.span, Float(count) / 5)
        XCTAssertTrue(try XCTUnwrap(g.fullyVisible).contains(h.model.selection.tap))
        // → across the network, one tap at a time: the view follows.
        h.view.focusedView = 0
        for step in 0..<(count - 1 - h.model.selection.tap) {
            h.host.press(.right, h.frame)
            g = try h.strip
            XCTAssertTrue(try XCTUnwrap(g.fullyVisible).contains(h.model.selection.tap), "step \(step): tap \(h.model.selection.tap) in \(g.partlyVisible)")
        }
        XCTAssertEqual(h.model.selection.tap, count - 1)
        XCTAssertEqual(g.start + g.span, Float(count), accuracy: 1e-3, "at the end the view ends at the last tap")
        // The wheel pans away from it; ← brings it back.
        let before = g.start
        for _ in 0..<6 { h.host.scroll(by: Vec2(0, 3), at: g.taps.center, h.frame) }
        g = try h.strip
        XCTAssertLessThan(g.start, before - 10, "the wheel pans towards the first tap")
        XCTAssertFalse(try XCTUnwrap(g.fullyVisible).contains(h.model.selection.tap))
        h.host.press(.left, h.frame)
        g = try h.strip
        XCTAssertTrue(try XCTUnwrap(g.fullyVisible).contains(h.model.selection.tap))
        // Ctrl+wheel zooms around the pointer: the tap under it stays under it.
        let point = Vec2(g.taps.x + g.taps.width * 0.3, g.taps.center.y)
        let under = g.start + (point.x - g.taps.x) / g.slot
        h.host.input.modifiers = .control
        h.host.scroll(by: Vec2(0, 2), at: point, h.frame)
        h.host.input.modifiers = []
        let z = try h.strip
        XCTAssertLessThan(z.span, g.span, "wheel away from the user zooms in")
        XCTAssertEqual(z.start + (point.x - z.taps.x) / z.slot, under, accuracy: 0.05)
        // "all" shows every tap again.
        try h.click("all")
        XCTAssertEqual(try h.strip.span, Float(count))
        XCTAssertEqual(try h.strip.fullyVisible, 0...(count - 1))
    }

    @MainActor func testABlockHeaderShowsExactlyThatBlock() async throws {
        let h = try ScaleHarness()
        let names = h.model.network.taps.map(\.name)
        for (level, path) in [(1, "layer2/layer2.1"), (0, "layer3"), (1, "layer4/layer4.0")] {
            try h.click("all")
            let groups = TapGroups(names: names)
            let index = try XCTUnwrap(groups.levels[level].firstIndex { $0.path == path })
            let header = try XCTUnwrap(try h.strip.headers.first { $0.level == level && $0.group == index }, "\(path) has a header")
            h.host.click(at: header.rect.center, h.frame)
            h.frame()
            let g = try h.strip
            let expected = names.indices.filter { names[$0].hasPrefix("/\(path)/") }
            XCTAssertEqual(g.fullyVisible, expected.first!...expected.last!, path)
            XCTAssertEqual(g.partlyVisible, expected.first!...expected.last!, "\(path): no other tap even in part")
            // Each of its taps is named in its slot (the module's name, not cut).
            XCTAssertEqual(h.truncations, [])
        }
        // The same with --select zoom=… (the screenshot command).
        XCTAssertTrue(h.view.zoomStrip(toBlock: "layer1.2"))
        h.frame()
        let g = try h.strip
        XCTAssertEqual(g.partlyVisible, names.firstIndex { $0.hasPrefix("/layer1/layer1.2/") }!...names.lastIndex { $0.hasPrefix("/layer1/layer1.2/") }!)
        XCTAssertFalse(h.view.zoomStrip(toBlock: "layer9"))
    }

    @MainActor func testDraggingTheOverviewPans() async throws {
        let h = try ScaleHarness()
        for _ in 0..<3 { try h.click("zoom in") }
        try h.click("zoom in")
        var g = try h.strip
        // Home: the view at the start.
        h.model.selection.tap = 0
        h.frame()
        g = try h.strip
        XCTAssertEqual(g.start, 0)
        let thumb = try XCTUnwrap(g.thumb), track = try XCTUnwrap(g.overview)
        let dx = track.width * 0.25
        h.host.drag(from: thumb.center, to: thumb.center + Vec2(dx, 0), steps: 5, h.frame)
        h.frame()
        g = try h.strip
        XCTAssertEqual(g.start, dx / track.width * Float(g.count), accuracy: 0.6, "the thumb moves the view by as many taps as it stands for")
        // A click on the track away from the thumb goes there.
        h.host.click(at: Vec2(track.maxX - 2, track.center.y), h.frame)
        h.frame()
        g = try h.strip
        XCTAssertEqual(g.start + g.span, Float(g.count), accuracy: 1e-3)
    }

    // MARK: The chart with 1,000 classes

    /// The classes farthest from the all-images line, computed here from the summary.
    @MainActor func farthest(_ h: ScaleHarness, method: EntropyMethod) throws -> [Int] {
        let taps = try XCTUnwrap(h.model.snapshot?.summary).taps
        var scored: [(Int, Double)] = []
        for k in 0..<MiniResNet.classes {
            let values = taps.map { method == .instance ? $0.classInstanceEntropy[k] : $0.classEnsembleEntropy[k] }
            guard values.allSatisfy({ $0 != nil }) else { continue }
            let all = taps.map { method == .instance ? $0.instanceEntropy : $0.ensembleEntropy }
            scored.append((k, zip(values, all).map { abs($0! - $1) }.reduce(0, +) / Double(taps.count)))
        }
        return scored.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(ChartState.topCount).map(\.0)
    }

    @MainActor func classLines(_ h: ScaleHarness) -> Set<Int> {
        Set(h.view.chart.lines.keys.compactMap { if case .cls(let k) = $0 { return k } else { return nil } })
    }

    @MainActor func testTheChartDrawsAFewClassesNotAThousand() async throws {
        let h = try ScaleHarness()
        for method in [EntropyMethod.instance, .ensemble] {
            h.model.selection.method = method
            h.frame(); h.frame()
            let lines = classLines(h)
            XCTAssertEqual(lines.count, ChartState.topCount, "\(method)")
            XCTAssertEqual(lines, Set(try farthest(h, method: method)), "\(method): the classes farthest from all images")
        }
        // A class selected elsewhere (the matrix, --select) joins them; one more line.
        let top = try farthest(h, method: .ensemble)
        let other = try XCTUnwrap((0..<250).first { !top.contains($0) })
        h.view.toggleClass(other)
        h.frame(); h.frame()
        XCTAssertEqual(classLines(h), Set(top + [other]))
        // Label information has no class lines.
        h.model.selection.method = .information
        h.frame()
        XCTAssertTrue(classLines(h).isEmpty)
    }

    @MainActor func testTheLegendSearchAddsAClassAndItsCrossTakesItAway() async throws {
        let h = try ScaleHarness(width: 1600, height: 1000)
        h.model.selection.method = .ensemble
        h.frame(); h.frame()
        let rowsBefore = h.view.chart.legendRows
        let field = try XCTUnwrap(h.view.chart.searchField)
        let plot = try XCTUnwrap(h.view.layout["chartPlot"])
        XCTAssertFalse(field.intersects(plot))
        let top = try farthest(h, method: .ensemble)
        let wanted = try XCTUnwrap((0..<250).first { !top.contains($0) && $0 % 4 == 2 })
        h.host.click(at: field.center, h.frame)
        h.host.type("number \(wanted)", h.frame)
        h.frame()
        let match = try XCTUnwrap(h.view.chart.matchRows[wanted], "class \(wanted) is offered")
        for k in h.view.chart.matchRows.keys { XCTAssertTrue(MiniResNet.className(k).contains("number \(wanted)"), "\(k) matches") }
        let legend = try XCTUnwrap(h.view.layout["chartLegend"])
        for r in h.view.chart.matchRows.values { XCTAssertTrue(legend.contains(Vec2(r.center.x, r.maxY - 1)), "the matches fit the legend") }
        h.host.click(at: match.center, h.frame)
        h.frame()
        XCTAssertEqual(classLines(h), Set(top + [wanted]))
        XCTAssertEqual(h.view.chart.search, "")
        XCTAssertTrue(h.model.selection.classes.isEmpty, "adding a line does not select the class")
        // The rows that were there did not move.
        for (id, r) in rowsBefore { XCTAssertEqual(h.view.chart.legendRows[id], r, "\(id)") }
        // Clicking its row selects it; clicking again deselects it and the row stays.
        let row = try XCTUnwrap(h.view.chart.legendRows[.cls(wanted)])
        h.host.click(at: Vec2(row.x + row.width * 0.3, row.center.y), h.frame)
        XCTAssertEqual(h.model.selection.classes, [wanted])
        h.host.click(at: Vec2(row.x + row.width * 0.3, row.center.y), h.frame)
        XCTAssertEqual(h.model.selection.classes, [])
        XCTAssertEqual(h.view.chart.legendRows[.cls(wanted)], row)
        // Its × (shown on hover) takes the line away; a top class has none.
        h.host.moveMouse(to: row.center, h.frame)
        let cross = try XCTUnwrap(h.view.chart.removeButtons[.cls(wanted)])
        h.host.click(at: cross.center, h.frame)
        h.frame()
        XCTAssertEqual(classLines(h), Set(top))
        let topRow = try XCTUnwrap(h.view.chart.legendRows[.cls(top[0])])
        h.host.moveMouse(to: topRow.center, h.frame)
        XCTAssertNil(h.view.chart.removeButtons[.cls(top[0])])
    }

    // MARK: Layout at the presented sizes

    @MainActor func testNothingIsCutOrCoveredAtThePresentedSizes() async throws {
        let h = try ScaleHarness()
        let states: [(String, () -> Void)] = [
            ("whole strip", { h.view.strip.span = nil; h.view.strip.start = 0; h.model.selection.method = .instance }),
            ("strip on a block", { _ = h.view.zoomStrip(toBlock: "layer3/layer3.2"); h.model.selection.tap = 100 }),
            ("ensemble, a class selected", { h.model.selection.method = .ensemble; h.view.toggleClass(12) }),
            ("legend search", { h.view.chart.search = "kind" }),
            ("label information", { h.view.chart.search = ""; h.model.selection.method = .information }),
        ]
        for setup in Presentation.all {
            setup.apply(to: h.host, h.view)
            for (state, enter) in states {
                enter()
                h.frame(); h.frame()
                if let plot = h.view.layout["chartPlot"] { h.host.moveMouse(to: plot.center, h.frame) }
                let name = "\(setup.name), \(state)"
                let cut = h.truncations
                XCTAssertEqual(cut, [], "\(name): \(cut.map(\.description).joined(separator: "; "))")
                let plot = try XCTUnwrap(h.view.layout["chartPlot"], name)
                let legend = try XCTUnwrap(h.view.layout["chartLegend"], name)
                XCTAssertFalse(plot.intersects(legend), "\(name): legend beside the plot")
                if let field = h.view.chart.searchField { XCTAssertFalse(field.intersects(plot), name) }
                let labels = h.view.chart.axisLabels
                XCTAssertFalse(labels.isEmpty, name)
                for i in labels.indices {
                    XCTAssertGreaterThanOrEqual(labels[i].y, plot.maxY, name)
                    for j in labels.indices where j > i { XCTAssertFalse(labels[i].intersects(labels[j]), "\(name): axis labels \(i), \(j) overlap") }
                }
                let strip = try h.strip
                let area = try XCTUnwrap(h.view.layout["strip"])
                XCTAssertGreaterThan(strip.taps.height, 20, "\(name): room for the taps")
                for header in strip.headers { XCTAssertTrue(area.contains(header.rect.center), name) }
                h.host.moveMouse(to: Vec2(-100, -100), h.frame)
            }
            h.view.chart.search = ""
            h.model.selection.classes = []
            h.model.selection.brushedImages = []
        }
    }
}
