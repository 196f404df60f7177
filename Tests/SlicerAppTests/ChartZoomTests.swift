import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerONNX
@testable import SlicerInfo
import SlicerUI
@testable import SlicerApp

/// torchvision's MobileNet-V2 in miniature: its node names and block layout
/// (a stem, 17 inverted-residual blocks from the t, c, n, s table with a
/// shortcut Add where stride is 1 and the width stays, a last 1×1 ConvBNReLU,
/// pooling and a Gemm), 4 channels on 32×32 images so that the analysis takes
/// a moment. Strides 2 where the real one halves the resolution: 16, 8, 4, 2, 1.
enum MiniMobileNet {
    static let classes = 10
    /// (expansion t, repeats n, stride s) of torchvision's inverted_residual_setting.
    static let settings = [(1, 1, 1), (6, 2, 2), (6, 3, 2), (6, 4, 2), (6, 3, 1), (6, 3, 2), (6, 1, 1)]

    static func network() throws -> Network {
        var seed: UInt64 = 0xB0B
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 20_001) / 10_000 - 1
        }
        var inits: [String: ONNXTensor] = [:]
        var nodes: [ONNXNode] = []
        let c = 4
        func weights(_ name: String, _ dims: [Int], scale: Float, offset: Float = 0) -> String {
            inits[name] = ONNXTensor(name: name, dims: dims, floats: (0..<dims.reduce(1, *)).map { _ in offset + scale * next() })
            return name
        }
        inits["relu6.min"] = ONNXTensor(name: "relu6.min", dims: [], floats: [0])
        inits["relu6.max"] = ONNXTensor(name: "relu6.max", dims: [], floats: [6])
        func add(_ op: String, _ name: String, _ inputs: [String], _ attributes: [String: ONNXAttribute] = [:]) -> String {
            nodes.append(ONNXNode(name: name, opType: op, domain: "", inputs: inputs, outputs: [name], attributes: attributes))
            return name
        }
        func conv(_ prefix: String, _ x: String, inputs: Int = 4, k: Int, stride: Int = 1) -> String {
            let w = weights(prefix + ".w", [c, inputs, k, k], scale: 0.6 / Float(k))
            let p = k / 2
            return add("Conv", prefix + "/Conv", [x, w], ["kernel_shape": .ints([k, k]), "pads": .ints([p, p, p, p]), "strides": .ints([stride, stride])])
        }
        func bn(_ prefix: String, _ x: String) -> String {
            let g = weights(prefix + ".g", [c], scale: 0.2, offset: 1), b = weights(prefix + ".b", [c], scale: 0.2)
            let m = weights(prefix + ".m", [c], scale: 0.1), v = weights(prefix + ".v", [c], scale: 0.2, offset: 1)
            return add("BatchNormalization", prefix + "/BatchNormalization", [x, g, b, m, v], ["epsilon": .float(1e-5)])
        }
        /// torchvision's Conv2dNormActivation: "P.0" Conv, "P.1" BN, "P.2" ReLU6 (a Clip).
        func convBNReLU(_ p: String, _ x: String, inputs: Int = 4, k: Int, stride: Int = 1) -> String {
            let leaf = p.split(separator: "/").last.map(String.init) ?? p
            var y = conv("\(p)/\(leaf).0", x, inputs: inputs, k: k, stride: stride)
            y = bn("\(p)/\(leaf).1", y)
            return add("Clip", "\(p)/\(leaf).2/Clip", [y, "relu6.min", "relu6.max"])
        }
        var x = convBNReLU("/features/features.0", "input", inputs: 3, k: 3, stride: 2)
        var index = 1
        for (t, n, s) in settings {
            for r in 0..<n {
                let p = "/features/features.\(index)"
                let stride = r == 0 ? s : 1
                var y = x
                var part = 0
                if t != 1 { y = convBNReLU("\(p)/conv/conv.\(part)", y, k: 1); part += 1 }
                y = convBNReLU("\(p)/conv/conv.\(part)", y, k: 3, stride: stride)
                y = conv("\(p)/conv/conv.\(part + 1)", y, k: 1)
                y = bn("\(p)/conv/conv.\(part + 2)", y)
                // The shortcut where the block keeps the resolution (and, in the real one, the width).
                x = r > 0 ? add("Add", "\(p)/Add", [x, y]) : y
                index += 1
            }
        }
        x = convBNReLU("/features/features.\(index)", x, k: 1)
        x = add("GlobalAveragePool", "/GlobalAveragePool", [x])
        x = add("Flatten", "/Flatten", [x], ["axis": .int(1)])
        let fw = weights("fc.w", [classes, c], scale: 1), fb = weights("fc.b", [classes], scale: 0.1)
        _ = add("Gemm", "/classifier/classifier.1/Gemm", [x, fw, fb], ["transB": .int(1)])
        let graph = ONNXGraph(name: "mini-mobilenet", nodes: nodes, initializers: inits,
                              inputs: [ONNXValueInfo(name: "input", elementType: .float, dims: [.symbolic("N"), .value(3), .value(32), .value(32)])],
                              outputs: [ONNXValueInfo(name: "/classifier/classifier.1/Gemm", elementType: .float, dims: nil)])
        return try Network(model: ONNXModel(path: "mini-mobilenet_v2.onnx", irVersion: 8, opsetVersion: 13, producerName: "SlicerAppTests",
                                            producerVersion: "1", graph: graph, metadata: []))
    }

    static func workspace(count: Int = 60) throws -> Workspace {
        let network = try network()
        var rng: UInt64 = 7
        let pixels: [UInt8] = (0..<(count * 3 * 32 * 32)).map { _ in
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: rng >> 56)
        }
        let names = (0..<classes).map { "class \($0)" }
        let images = try LabeledImages(channels: 3, height: 32, width: 32, pixels: pixels, labels: (0..<count).map { $0 % classes },
                                       classNames: names, source: "generated")
        return Workspace(inputs: [try ModelInput(network: network, images: images, labels: names)])
    }
}

@MainActor
final class MobileHarness: HeadlessApp {
    init(width: Int = 1024, height: Int = 700) throws {
        try super.init(workspace: try MiniMobileNet.workspace(), width: width, height: height)
        runUntilSettled(host, model, timeout: 120, frame)
    }
}

final class ChartZoomTests: XCTestCase {
    // MARK: The chart follows the strip

    /// Where the chart's line for all images should be at tap `i` of `shown`, from the summary.
    @MainActor func expectedPoint(_ h: HeadlessApp, tap i: Int, shown: ClosedRange<Int>) throws -> Vec2 {
        let plot = try XCTUnwrap(h.view.layout["chartPlot"])
        let summary = try XCTUnwrap(h.model.snapshot?.summary)
        let v = h.view.value(summary.taps[i], method: h.model.selection.method)
        let x = plot.x + Float(i - shown.lowerBound) / Float(shown.count - 1) * plot.width
        return Vec2(x, plot.maxY - Float(v / h.view.chart.yTop) * plot.height)
    }

    @MainActor func testTheChartShowsTheTapsOfTheStripsBlockAndGoesBackToAll() async throws {
        let h = try ScaleHarness()
        let names = h.model.network.taps.map(\.name)
        let count = names.count
        XCTAssertEqual(h.view.chart.shownTaps, 0...(count - 1), "whole strip, whole chart")
        XCTAssertNil(h.view.chart.allButton)
        let block = names.firstIndex { $0.hasPrefix("/layer3/layer3.1/") }!...names.lastIndex { $0.hasPrefix("/layer3/layer3.1/") }!
        XCTAssertTrue(h.view.zoomStrip(toBlock: "layer3/layer3.1"))
        h.model.selection.tap = block.lowerBound + 3
        h.frame(); h.frame()
        XCTAssertEqual(h.view.chart.shownTaps, block)
        // The line for all images has a point per tap of the block, each at that tap's value,
        // from the plot's left edge to its right.
        let points = try XCTUnwrap(h.view.chart.lines[.all])
        XCTAssertEqual(points.count, block.count)
        for (n, i) in block.enumerated() {
            let e = try expectedPoint(h, tap: i, shown: block)
            XCTAssertEqual(points[n].x, e.x, accuracy: 0.01, "tap \(i)")
            XCTAssertEqual(points[n].y, e.y, accuracy: 0.01, "tap \(i)")
        }
        // The value axis fits the block's values, not the whole network's.
        let summary = try XCTUnwrap(h.model.snapshot?.summary)
        let blockMax = block.map { h.view.value(summary.taps[$0], method: h.model.selection.method) }.max()!
        XCTAssertGreaterThanOrEqual(h.view.chart.yTop, blockMax)
        // Its taps are named, none cut, none over another.
        let labels = h.view.chart.axisLabels
        XCTAssertGreaterThanOrEqual(labels.count, block.count / 2, "a block's taps have room for names")
        for i in labels.indices { for j in labels.indices where j > i { XCTAssertFalse(labels[i].intersects(labels[j])) } }
        XCTAssertEqual(h.truncations, [])
        // A click on the chart selects the tap under the pointer among the block's.
        let plot = try XCTUnwrap(h.view.layout["chartPlot"])
        h.host.click(at: Vec2(plot.maxX - 1, plot.y + 2), h.frame)
        XCTAssertEqual(h.model.selection.tap, block.upperBound)
        // "all taps" in the chart's title shows every tap, here and in the strip.
        let all = try XCTUnwrap(h.view.chart.allButton)
        h.host.click(at: all.center, h.frame)
        h.frame()
        XCTAssertEqual(h.view.chart.shownTaps, 0...(count - 1))
        XCTAssertEqual(try h.strip.span, Float(count))
        XCTAssertNil(h.view.chart.allButton)
        XCTAssertEqual(h.view.chart.lines[.all]?.count, count)
    }

    @MainActor func testTheChartFollowsTheStripsZoomAndPan() async throws {
        let h = try ScaleHarness(width: 1600, height: 1000)
        for _ in 0..<5 { try h.click("zoom in") }
        var g = try h.strip
        var shown = try XCTUnwrap(g.fullyVisible)
        XCTAssertLessThan(shown.count, 30)
        XCTAssertEqual(h.view.chart.shownTaps, shown)
        XCTAssertEqual(h.view.chart.lines[.all]?.count, shown.count)
        // The wheel pans the strip: the chart moves with it.
        for _ in 0..<3 { h.host.scroll(by: Vec2(0, -3), at: g.taps.center, h.frame) }
        h.frame()
        g = try h.strip
        let panned = try XCTUnwrap(g.fullyVisible)
        XCTAssertNotEqual(panned, shown)
        XCTAssertEqual(h.view.chart.shownTaps, panned)
        shown = panned
        let points = try XCTUnwrap(h.view.chart.lines[.all])
        for (n, i) in shown.enumerated() { XCTAssertEqual(points[n].y, try expectedPoint(h, tap: i, shown: shown).y, accuracy: 0.01) }
        XCTAssertEqual(h.truncations, [])
    }

    // MARK: MobileNet's blocks

    func testMobileNetNamesGroupIntoStagesOverBlocks() throws {
        let network = try MiniMobileNet.network()
        let names = network.taps.map(\.name)
        let sizes = network.taps.map { $0.mapSize.height }
        let groups = TapGroups(names: names, sizes: sizes)
        XCTAssertEqual(groups.levels.count, 2)
        // The blocks: one cell per "features.N", exactly its taps.
        let blockCount = MiniMobileNet.settings.map(\.1).reduce(0, +) + 2
        XCTAssertEqual(groups.levels[1].map(\.path), (0..<blockCount).map { "features/features.\($0)" })
        for g in groups.levels[1] {
            let hits = names.indices.filter { names[$0].hasPrefix("/\(g.path)/") }
            XCTAssertEqual(g.taps, hits.first!...hits.last!, g.path)
        }
        // Stages above them: consecutive blocks ending at one resolution (16, 8, 4, 2, 1 here:
        // MobileNet-V2's 112, 56, 28, 14, 7), computed here from the taps' shapes.
        var expected: [[Int]] = []
        for (n, g) in groups.levels[1].enumerated() {
            if let last = expected.last?.last, sizes[groups.levels[1][last].taps.upperBound] == sizes[g.taps.upperBound] {
                expected[expected.count - 1].append(n)
            } else {
                expected.append([n])
            }
        }
        XCTAssertEqual(expected, [[0, 1], [2, 3], [4, 5, 6], Array(7...13), Array(14...18)])
        XCTAssertEqual(groups.levels[0].map(\.taps), expected.map { groups.levels[1][$0.first!].taps.lowerBound...groups.levels[1][$0.last!].taps.upperBound })
        XCTAssertEqual(groups.levels[0][3].labels, ["features.7–13", "7–13"])
        // No holes: every tap under a stage is under a block, and every cell has a name.
        for stage in groups.levels[0] {
            for t in stage.taps { XCTAssertNotNil(groups.group(containing: t, level: 1), "tap \(t) of \(stage.path)") }
        }
        for g in groups.levels.joined() { XCTAssertFalse(g.labels.isEmpty || g.labels.contains(""), g.path) }
        // Without the shapes (names only) the blocks stay the top row.
        XCTAssertEqual(TapGroups(names: names).levels.first?.count, blockCount)
    }

    func testEfficientNetNamesKeepStagesAndBlocksWithoutHoles() {
        // torchvision's efficientnet_b0: stem "features.0" of single-layer modules, stages
        // "features.1" … "features.7" of blocks "features.N.M", head "features.8".
        var names = ["input"]
        func cna(_ p: String) -> [String] {
            let leaf = p.split(separator: "/").last!
            return ["\(p)/\(leaf).0/Conv", "\(p)/\(leaf).1/BatchNormalization", "\(p)/\(leaf).2/Sigmoid", "\(p)/\(leaf).2/Mul"]
        }
        names += cna("/features/features.0")
        let blocks = [1, 2, 2, 3, 3, 4, 1]
        for (s, n) in blocks.enumerated() {
            for b in 0..<n {
                let p = "/features/features.\(s + 1)/features.\(s + 1).\(b)/block"
                names += cna("\(p)/block.0") + ["\(p)/block.1/avgpool/GlobalAveragePool", "\(p)/block.1/fc1/Conv", "\(p)/block.1/Mul"]
                names += ["\(p)/block.2/block.2.0/Conv", "\(p)/block.2/block.2.1/BatchNormalization"]
                if b > 0 { names.append("/features/features.\(s + 1)/features.\(s + 1).\(b)/Add") }
            }
        }
        names += cna("/features/features.8") + ["/avgpool/GlobalAveragePool", "/classifier/classifier.1/Gemm"]
        let groups = TapGroups(names: names, sizes: names.map { _ in 7 })
        XCTAssertEqual(groups.levels.count, 2)
        XCTAssertEqual(groups.levels[0].map(\.path), (0...8).map { "features/features.\($0)" }, "nine stages stay the top row")
        // Blocks of stages with several; a stage of one block, the stem and the head keep their own cell.
        var expected = ["features/features.0", "features/features.1"]
        for (s, n) in blocks.enumerated() where n > 1 { expected += (0..<n).map { "features/features.\(s + 1)/features.\(s + 1).\($0)" } }
        expected += ["features/features.7", "features/features.8"]
        XCTAssertEqual(groups.levels[1].map(\.path), expected)
        for stage in groups.levels[0] {
            for t in stage.taps { XCTAssertNotNil(groups.group(containing: t, level: 1), "tap \(t) of \(stage.path)") }
        }
    }

    @MainActor func testEveryHeaderCellOfAMobileNetHasAName() async throws {
        let h = try MobileHarness()
        let groups = h.view.stripGroups()
        XCTAssertEqual(groups.levels.count, 2)
        for setup in Presentation.all {
            setup.apply(to: h.host, h.view)
            for (state, enter) in [("whole strip", { h.view.strip.span = nil; h.view.strip.start = 0 }),
                                   ("a stage", { _ = h.view.zoomStrip(toBlock: "features.7-13") }),
                                   ("a block", { _ = h.view.zoomStrip(toBlock: "features.5") })] {
                enter()
                h.frame(); h.frame()
                let name = "\(setup.name), \(state)"
                let g = try XCTUnwrap(h.view.strip.geometry, name)
                // Every cell of both rows in view is there and named (cells cut by the strip's
                // edges are not: zooming shows whole blocks).
                for level in 0..<2 {
                    let inView = groups.levels[level].indices.filter { groups.levels[level][$0].taps.overlaps(g.partlyVisible) }
                    XCTAssertEqual(Set(g.headers.filter { $0.level == level }.map(\.group)), Set(inView), "\(name): row \(level)")
                }
                for header in g.headers { XCTAssertNotNil(header.label, "\(name): \(groups.levels[header.level][header.group].path) has no name") }
                let cut = h.host.ui.diagnostics.truncations.filter { t in ["strip", "chart"].compactMap { h.view.layout[$0] }.contains { $0.intersects(t.rect) } }
                XCTAssertEqual(cut, [], name)
            }
        }
    }
}

// MARK: Freeing textures a few per frame

/// The renderer's textures, counting what is freed (and refusing to free one twice).
@MainActor
final class CountingTextures: TextureProvider {
    let base: SDLRenderBackend
    var freed: [TextureID] = []
    init(_ base: SDLRenderBackend) { self.base = base }
    func textureID(key: String, version: Int, width: Int, height: Int, pixels: () -> [UInt8]) -> TextureID? {
        base.textureID(key: key, version: version, width: width, height: height, pixels: pixels)
    }
    func releaseTexture(_ id: TextureID) {
        XCTAssertFalse(freed.contains(id), "texture \(id.rawValue) freed twice")
        freed.append(id)
        base.releaseTexture(id)
    }
}

final class TexturePacingTests: XCTestCase {
    @MainActor func testReleasedTexturesAreFreedAFewPerFrameAndOnlyWhenNotShownAgain() async throws {
        setenv("SDL_VIDEODRIVER", "offscreen", 1)
        let host = try HeadlessHost(width: 64, height: 64)
        let counting = CountingTextures(host.renderer)
        let paced = PacedTextures(base: counting)
        let pixels = [UInt8](repeating: 200, count: 4 * 4 * 4)
        let ids = (0..<200).compactMap { paced.textureID(key: "t\($0)", version: 0, width: 4, height: 4) { pixels } }
        XCTAssertEqual(ids.count, 200)
        let before = host.renderer.textureCount
        for id in ids { paced.releaseTexture(id) }
        paced.releaseTexture(ids[0])  // twice: freed once
        XCTAssertTrue(counting.freed.isEmpty, "nothing is freed while the frame is built")
        // Shown again before its turn: the same texture, kept.
        XCTAssertEqual(paced.textureID(key: "t5", version: 0, width: 4, height: 4) { pixels }, ids[5])
        var frames = 0
        while paced.pendingCount > 0 {
            let was = counting.freed.count
            paced.endFrame()
            XCTAssertLessThanOrEqual(counting.freed.count - was, PacedTextures.freesPerFrame)
            XCTAssertGreaterThan(counting.freed.count - was, 0)
            frames += 1
        }
        XCTAssertEqual(frames, (199 + PacedTextures.freesPerFrame - 1) / PacedTextures.freesPerFrame)
        XCTAssertEqual(Set(counting.freed), Set(ids).subtracting([ids[5]]))
        XCTAssertEqual(counting.freed.first, ids[0], "oldest first")
        XCTAssertEqual(host.renderer.textureCount, before - 199)
        XCTAssertEqual(paced.mostFreedInAFrame, PacedTextures.freesPerFrame)
    }

    @MainActor func testTheAppFreesItsTexturesAFewPerFrameAfterVisitingEveryTap() async throws {
        let h = try ScaleHarness()
        let counting = CountingTextures(h.host.renderer)
        h.view.textures = counting
        // Every tap's maps, then a new workspace's worth of forgetting: all at once.
        for tap in 0..<h.model.network.taps.count {
            h.model.selection.tap = tap
            h.frame()
        }
        let kept = h.view.maps.textures.count + h.view.browser.thumbnailTextures.count
        XCTAssertGreaterThan(kept, 4 * PacedTextures.freesPerFrame, "enough textures to need several frames")
        let freedBefore = counting.freed.count
        h.view.forgetWorkspaceState()
        var perFrame: [Int] = []
        for _ in 0..<100 {
            let was = counting.freed.count
            h.frame()
            perFrame.append(counting.freed.count - was)
        }
        XCTAssertLessThanOrEqual(perFrame.max() ?? 0, PacedTextures.freesPerFrame, "no frame frees more than the budget")
        // All of them freed in the end, except those the new frames show again (the shown
        // tap's maps and the thumbnails in view, which stay the renderer's same textures).
        let shownAgain = h.view.maps.textures.count + h.view.browser.thumbnailTextures.count
        XCTAssertEqual(counting.freed.count - freedBefore, kept - shownAgain)
        XCTAssertEqual(h.view.pacedTextures?.pendingCount, 0)
    }
}
