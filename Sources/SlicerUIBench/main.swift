// SlicerUIBench: times building the draw list for a dense frame and rendering it at
// 1600×1000 with SDL's software renderer (headless), and prints JSON.
//
//   swift run -c release --scratch-path .build-ui SlicerUIBench [--frames N]
//       [--demo PATH] [--dense PATH]     (also write screenshots of the demo / dense frame)
//       [--theme dark|light|high-contrast] (theme of the demo screenshot)

import Foundation
import SlicerUI

struct Options {
    var frames = 200
    var demoPath: String?
    var densePath: String?
    var theme = Theme.dark

    init(arguments: [String]) throws {
        var rest = arguments.dropFirst()
        while let arg = rest.popFirst() {
            switch arg {
            case "--frames":
                guard let v = rest.popFirst(), let n = Int(v), n > 0 else { throw UsageError("--frames needs a positive integer") }
                frames = n
            case "--demo":
                guard let v = rest.popFirst() else { throw UsageError("--demo needs a path") }
                demoPath = v
            case "--theme":
                guard let v = rest.popFirst(), let t = Theme.all.first(where: { $0.name == v }) else {
                    throw UsageError("--theme needs one of: " + Theme.all.map(\.name).joined(separator: ", "))
                }
                theme = t
            case "--dense":
                guard let v = rest.popFirst() else { throw UsageError("--dense needs a path") }
                densePath = v
            default:
                throw UsageError("unknown argument \(arg)")
            }
        }
    }
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A frame as dense as the app's busiest view: a channel × class entropy matrix with
/// numbers in its cells, row and column labels, a line chart with many series and
/// point markers, grid lines, and the demo's widget panel.
@MainActor
enum DenseFrame {
    static let rows = 64, columns = 56

    static func build(_ ui: UIContext, state: inout UIDemoState, frame: Int) {
        let screen = ui.displayRect
        let (left, right) = ui.splitter("split", in: screen, axis: .horizontal, fraction: &state.splitFraction)
        ui.panel("Controls", rect: left) {
            // The demo's controls column: every widget kind.
            UIDemo.controls(ui, state: &state)
        }
        ui.panel("Matrix", rect: right, options: [.background, .border, .padded]) {
            let area = ui.remainingRect
            let matrixHeight = (area.height * 0.62).rounded()
            let cellW = ((area.width - 70) / Float(columns)).rounded(.down)
            let cellH = ((matrixHeight - 20) / Float(rows)).rounded(.down)
            let origin = Vec2(area.x + 60, area.y + 16)
            let small = ui.font(.small)
            let list = ui.measurer
            for c in 0..<columns where c % 4 == 0 {
                ui.drawList.text("c\(c)", at: Vec2(origin.x + Float(c) * cellW, area.y), font: small,
                                 color: ui.theme.colors.textDim, measurer: list)
            }
            for r in 0..<rows {
                let y = origin.y + Float(r) * cellH
                ui.drawList.text("ch \(r)", at: Vec2(area.x, y), font: small, color: ui.theme.colors.textDim, measurer: list)
                for c in 0..<columns {
                    let v = 0.5 + 0.5 * sinf(Float(r) * 0.21 + Float(c) * 0.13 + Float(frame) * 0.05)
                    let cell = Rect(x: origin.x + Float(c) * cellW, y: y, width: cellW - 1, height: cellH - 1)
                    ui.drawList.fillRect(cell, color: ColorMap.sequential.color(at: v))
                    // Numbers in every third cell (the matrix shows values on hover/zoom).
                    if (r + c) % 3 == 0 {
                        ui.drawList.text(formatNumber(v * 8, decimals: 1), at: Vec2(cell.x + 1, cell.y - 2), font: small,
                                         color: v > 0.6 ? .black : .white, measurer: list)
                    }
                }
            }
            // Line chart: 24 series × 120 points, markers on one series, grid.
            let chart = Rect(x: area.x, y: origin.y + Float(rows) * cellH + 12, width: area.width,
                             height: max(40, area.maxY - (origin.y + Float(rows) * cellH + 12)))
            for g in 0..<20 {
                let y = chart.y + chart.height * Float(g) / 19
                ui.drawList.line(from: Vec2(chart.x, y), to: Vec2(chart.maxX, y), color: ui.theme.colors.gridLine)
                let x = chart.x + chart.width * Float(g) / 19
                ui.drawList.line(from: Vec2(x, chart.y), to: Vec2(x, chart.maxY), color: ui.theme.colors.gridLine)
            }
            for s in 0..<24 {
                var points = [Vec2]()
                points.reserveCapacity(120)
                for i in 0..<120 {
                    let t = Float(i) / 119
                    let v = 0.5 + 0.4 * sinf(t * 6 + Float(s) * 0.7 + Float(frame) * 0.03) * (1 - t * 0.5)
                    points.append(Vec2(chart.x + chart.width * t, chart.maxY - chart.height * v))
                }
                ui.drawList.polyline(points, color: CategoricalPalette.standard.color(at: s), thickness: 1.5)
                if s == 0 {
                    for p in points { ui.drawList.fillCircle(center: p, radius: 2.5, color: ui.theme.colors.text) }
                }
            }
        }
    }
}

struct Measurement: Encodable {
    var meanMs: Double
    var medianMs: Double
    var p95Ms: Double
    var minMs: Double

    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        meanMs = sorted.reduce(0, +) / Double(sorted.count) * 1000
        medianMs = sorted[sorted.count / 2] * 1000
        p95Ms = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.95))] * 1000
        minMs = sorted[0] * 1000
    }
}

struct Report: Encodable {
    var benchmark = "slicerui.dense-frame"
    var width: Int
    var height: Int
    var frames: Int
    var renderDriver: String
    var videoDriver: String
    var primitives: Int
    var culledPrimitives: Int
    var triangles: Int
    var vertices: Int
    /// Batches in the draw lists: one draw call each on a GPU renderer.
    var batches: Int
    /// SDL_RenderGeometry/FillRect calls on the software renderer (batches split into runs).
    var drawCalls: Int
    var build: Measurement
    var render: Measurement
    var targets: [String: Double]
    var demoFrame: [String: Measurement]
}

@MainActor
func run() throws {
    let options = try Options(arguments: CommandLine.arguments)
    let host = try HeadlessHost(width: 1600, height: 1000)
    var state = UIDemoState()
    host.post(.mouseMove(Vec2(1200, 500)))

    // Warm-up: opens fonts and fills the glyph atlas, so only steady-state frames are timed.
    for frame in 0..<10 { host.frame { DenseFrame.build($0, state: &state, frame: frame) } }

    var buildTimes: [Double] = [], renderTimes: [Double] = []
    var last: DrawData?
    for frame in 0..<options.frames {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let data = host.buildFrame { DenseFrame.build($0, state: &state, frame: frame) }
        let t1 = DispatchTime.now().uptimeNanoseconds
        host.renderer.render(data)
        host.renderer.flush()
        let t2 = DispatchTime.now().uptimeNanoseconds
        buildTimes.append(Double(t1 - t0) / 1e9)
        renderTimes.append(Double(t2 - t1) / 1e9)
        last = data
    }
    if let path = options.densePath { try host.saveScreenshot(to: path) }
    guard let data = last else { return }
    let drawCalls = host.renderer.drawCallCount

    // The demo screen: a typical (not dense) frame, with its heat map texture.
    host.ui.theme = options.theme
    let heat = try host.renderer.createTexture(width: 96, height: 64, pixels: UIDemo.heatMapPixels(width: 96, height: 64))
    var demoState = UIDemoState()
    var demoBuild: [Double] = [], demoRender: [Double] = []
    for _ in 0..<10 { host.frame { UIDemo.build($0, state: &demoState, heatMap: heat) } }
    for _ in 0..<options.frames {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let d = host.buildFrame { UIDemo.build($0, state: &demoState, heatMap: heat) }
        let t1 = DispatchTime.now().uptimeNanoseconds
        host.renderer.render(d)
        host.renderer.flush()
        let t2 = DispatchTime.now().uptimeNanoseconds
        demoBuild.append(Double(t1 - t0) / 1e9)
        demoRender.append(Double(t2 - t1) / 1e9)
    }
    if let path = options.demoPath { try host.saveScreenshot(to: path) }

    let report = Report(width: 1600, height: 1000, frames: options.frames, renderDriver: host.renderer.driverName,
                        videoDriver: host.videoDriver, primitives: data.submittedCount, culledPrimitives: data.culledCount,
                        triangles: data.triangleCount, vertices: data.vertexCount, batches: data.batchCount,
                        drawCalls: drawCalls,
                        build: Measurement(buildTimes), render: Measurement(renderTimes),
                        targets: ["buildMs": 1, "renderMs": 8],
                        demoFrame: ["build": Measurement(demoBuild), "render": Measurement(demoRender)])
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(report), as: UTF8.self))
}

do {
    try MainActor.assumeIsolated { try run() }
} catch {
    FileHandle.standardError.write(Data("SlicerUIBench: \(error)\n".utf8))
    exit(1)
}
