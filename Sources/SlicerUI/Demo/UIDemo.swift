// A demo screen with every widget, a heat map, legends and a line chart. It is the
// reference image of the rendering test, the subject of the benchmark's "typical frame",
// and a worked example of the API for the app. Deterministic: no clocks, no randomness.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything the demo's widgets edit; owned by the caller, like any app state.
public struct UIDemoState: Sendable {
    public var splitFraction: Float = 0.36
    public var tab = 0
    public var showClasses = true
    public var showCeiling = true
    public var method = 0
    public var epoch = 7
    public var bins: Float = 0.25
    public var model = 1
    public var search = "shirt"
    public var selectedClass: Int? = 3
    public var progress: Float = 0.62
    public var clicks = 0
    public var brushed: Rect?
    public var error: String?

    public init() {}
}

@MainActor
public enum UIDemo {
    public static let classNames = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                    "Shirt", "Sneaker", "Bag", "Ankle boot"]
    static let taps = ["conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2", "fc1", "relu3", "fc2"]

    /// RGBA pixels of a smooth synthetic heat map for the demo's texture.
    public static func heatMapPixels(width: Int, height: Int, map: ColorMap = .sequential) -> [UInt8] {
        var values = [Float]()
        values.reserveCapacity(width * height)
        for y in 0..<height {
            for x in 0..<width {
                let u = Float(x) / Float(max(1, width - 1)), v = Float(y) / Float(max(1, height - 1))
                values.append(0.5 + 0.5 * sinf(u * 5.5 + v * 1.5) * cosf(v * 4.2 - u))
            }
        }
        return map.rgba(values, in: 0...1)
    }

    /// Synthetic entropy (bits) of class `k` at tap `t`: decreasing with depth, class-dependent.
    static func entropy(classIndex k: Int, tap t: Int) -> Float {
        let depth = Float(t) / Float(taps.count - 1)
        let spread = Float(k) / Float(classNames.count - 1) - 0.5
        return 7.4 - (4.2 + 2.4 * spread) * depth + 0.45 * sinf(Float(k) * 1.7 + depth * 5) * (1 - depth * 0.5)
    }

    /// Declares the demo screen. `heatMap` is a texture made from `heatMapPixels` (or nil).
    public static func build(_ ui: UIContext, state: inout UIDemoState, heatMap: TextureID?) {
        let screen = ui.displayRect
        let (left, right) = ui.splitter("split", in: screen, axis: .horizontal, fraction: &state.splitFraction, minimumSize: 200)
        ui.panel("Controls", rect: left) {
            controls(ui, state: &state)
        }
        ui.panel("Views", rect: right) {
            views(ui, state: &state, heatMap: heatMap)
        }
        if let message = state.error, ui.modalMessage("Cannot open model", message: message) {
            state.error = nil
        }
    }

    public static func controls(_ ui: UIContext, state: inout UIDemoState) {
        ui.label("CNNSlicer widgets", style: .heading)
        ui.label("Entropy of activations, per layer and class.", style: .small)
        ui.tabBar("tabs", selection: &state.tab, tabs: ["Layers", "Channels", "CAR"])
        ui.row(.fraction(1), .fraction(1))
        if ui.button("Run analysis") { state.clicks += 1 }
        if ui.button("Show error") { state.error = "model.onnx: unsupported operator 'GridSample' at node 17." }
        ui.row(.fraction(1), .fraction(1))
        ui.toggle("Per-class lines", isOn: &state.showClasses)
        ui.checkbox("Ceiling", isChecked: &state.showCeiling)
        ui.row(.fraction(1))
        ui.segmented("method", selection: &state.method, options: ["Method 1", "Method 2", "Label info"])
        ui.slider("Epoch", value: &state.epoch, in: 0...20)
        ui.slider("Bin width", value: &state.bins, in: 0.05...1, step: 0.05, decimals: 2)
        ui.dropDown("Model", selection: &state.model, options: ["lenet-fashion", "small-cnn", "resnet-8"])
        ui.tooltip("Which trained network to analyse")
        ui.textField("search", text: &state.search, placeholder: "Search classes")
        ui.label("Classes", style: .small)
        let filtered = classNames.enumerated().map { "\($0.offset)  \($0.element)" }
        ui.list("classes", items: filtered, selection: &state.selectedClass, visibleRows: 4)
        ui.progressBar(state.progress, label: "Analysing 6,200 / 10,000 images")
        ui.label("Entropy (bits)", style: .small)
        ui.colorLegend(.sequential, range: 0...8, unit: "bits")
        ui.colorLegend(.diverging, range: -2...2, unit: "Δ bits")
        if let clicked = ui.categoryLegend(classNames) { state.selectedClass = clicked }
    }

    static func views(_ ui: UIContext, state: inout UIDemoState, heatMap: TextureID?) {
        ui.label("Entropy per tap", style: .heading)
        let chart = ui.cell(height: .points(260))
        lineChart(ui, in: chart, state: &state)
        ui.row(.fraction(2), .fraction(1), height: .points(200))
        if let heatMap {
            let cell = ui.cell()
            ui.drawList.image(heatMap, in: cell)
            ui.drawList.strokeRect(cell, color: ui.theme.colors.panelBorder)
        } else {
            _ = ui.cell()
        }
        let legend = ui.cell()
        ui.drawColorLegend(.sequential, range: 0...8, unit: "bits", in: legend, axis: .vertical)
        ui.row(.fraction(1))
        ui.label("Monospace: conv2 → (16, 12, 12)   H = 4.213 bits", style: .mono)
        ui.label("Clicks: \(state.clicks)", style: .small)
    }

    /// A line chart of synthetic entropies with axes, grid, a brushable plot area and labels.
    static func lineChart(_ ui: UIContext, in rect: Rect, state: inout UIDemoState) {
        let colors = ui.theme.colors
        let small = ui.font(.small)
        let margin = Vec2(ui.scaled(36), ui.scaled(22))
        let plot = Rect(x: rect.x + margin.x, y: rect.y + ui.scaled(6), width: rect.width - margin.x - ui.scaled(8),
                        height: rect.height - margin.y - ui.scaled(6))
        ui.drawList.fillRect(rect, color: colors.background, cornerRadius: ui.scaled(3))
        let maxBits: Float = 8
        func point(_ t: Int, _ bits: Float) -> Vec2 {
            Vec2(plot.x + plot.width * Float(t) / Float(taps.count - 1), plot.maxY - plot.height * bits / maxBits)
        }
        for bits in stride(from: 0, through: Int(maxBits), by: 2) {
            let y = point(0, Float(bits)).y
            ui.drawList.line(from: Vec2(plot.x, y), to: Vec2(plot.maxX, y), color: colors.gridLine)
            ui.drawList.text("\(bits)", at: Vec2(rect.x + ui.scaled(6), y - ui.lineHeight(.small) / 2), font: small,
                             color: colors.textDim, measurer: ui.measurer)
        }
        for (t, name) in taps.enumerated() where t % 2 == 0 {
            let x = point(t, 0).x
            ui.drawList.line(from: Vec2(x, plot.y), to: Vec2(x, plot.maxY), color: colors.gridLine)
            let w = ui.measurer.width(of: name, font: small)
            ui.drawList.text(name, at: Vec2(x - w / 2, plot.maxY + ui.scaled(3)), font: small, color: colors.textDim, measurer: ui.measurer)
        }
        if state.showCeiling {
            ui.drawList.line(from: point(0, 7.9), to: point(taps.count - 1, 7.9), color: colors.error.withAlpha(0.8), thickness: ui.scaled(1))
        }
        if let brushed = state.brushed {
            ui.drawList.fillRect(brushed, color: colors.brushFill)
        }
        if state.showClasses {
            for k in classNames.indices {
                let points = taps.indices.map { point($0, entropy(classIndex: k, tap: $0)) }
                let selected = state.selectedClass == k
                ui.drawList.polyline(points, color: CategoricalPalette.standard.color(at: k).withAlpha(selected ? 1 : 0.85),
                                     thickness: ui.scaled(selected ? 3 : 1.5))
            }
        }
        let mean = taps.indices.map { t in point(t, classNames.indices.map { entropy(classIndex: $0, tap: t) }.reduce(0, +) / Float(classNames.count)) }
        ui.drawList.polyline(mean, color: colors.text, thickness: ui.scaled(2.5))
        for p in mean { ui.drawList.fillCircle(center: p, radius: ui.scaled(3.5), color: colors.text) }
        let result = ui.brush("chart", in: plot, axis: .horizontal)
        if let brush = result.brush, brush.isFinished { state.brushed = brush.rect }
        if result.interaction.isClicked, !result.interaction.isDragging { state.brushed = nil }
    }
}
