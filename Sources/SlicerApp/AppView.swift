import Foundation
import SlicerEngine
import SlicerInfo
import SlicerUI

/// The whole window: four linked views, the image browser and draw pad, a
/// status bar, and room for the CAR panel. One frame = one call of `frame`.
@MainActor
public final class AppView {
    public let model: AppModel
    public weak var textures: TextureProvider?
    /// Presentation state, owned here (not part of the analysis selection).
    public var showBrowser = true
    public var largeType = false
    public var rightTab = 0
    /// Per-class lines in the chart.
    public var showClassLines = true
    /// Requests the host should carry out after the frame.
    public var wantsFullscreenToggle = false
    public var wantsScreenshot: String?
    public var wantsQuit = false
    /// Which view has keyboard focus for Tab cycling: 0 strip, 1 chart, 2 matrix, 3 maps, 4 browser.
    public var focusedView = 0
    var matrix = MatrixState()
    var maps = FeatureMapState()
    var browser = BrowserState()
    var pad = DrawPadState()
    var themeIndex = 0
    var exportNote: String?
    var chooser = FileChooserState()
    var carPanel = CARPanelState()
    var scatter = ScatterState()
    var chart = ChartState()
    /// A path chosen in the file chooser, for the host to open.
    public var chosenPath: String?
    /// When a screenshot is for one view: its rectangle, to crop to after saving.
    public var screenshotCrop: Rect?
    var imageEntropyCache: (key: [Int], value: ImageEntropy)?
    /// Where each view was drawn in the last frame (for tests and export of one view).
    public internal(set) var layout: [String: Rect] = [:]
    /// Channel order of the feature-map grid in the last frame (brushed first).
    public internal(set) var lastMapOrder: [Int] = []

    public init(model: AppModel, textures: TextureProvider?) {
        self.model = model
        self.textures = textures
    }

    public func frame(_ ui: UIContext) {
        model.update()
        handleKeys(ui)
        let full = ui.displayRect
        let pad = ui.scaled(6)
        let barHeight = ui.widgetHeight + 2 * pad
        let statusHeight = ui.lineHeight(.small) + 2 * pad
        let top = Rect(x: 0, y: 0, width: full.width, height: barHeight)
        let status = Rect(x: 0, y: full.height - statusHeight, width: full.width, height: statusHeight)
        let body = Rect(x: pad, y: top.maxY, width: full.width - 2 * pad, height: status.y - top.maxY - pad)
        toolbar(ui, top)
        let stripHeight = min(ui.scaled(132), body.height * 0.2)
        let strip = Rect(x: body.x, y: body.y, width: body.width, height: stripHeight)
        layout = ["strip": strip, "toolbar": top, "status": status]
        drawStrip(ui, strip)
        let lower = Rect(x: body.x, y: strip.maxY + pad, width: body.width, height: body.maxY - strip.maxY - pad)
        let browserWidth = showBrowser ? lower.width * 0.2 : 0
        if showBrowser {
            layout["browser"] = Rect(x: lower.x, y: lower.y, width: browserWidth - pad, height: lower.height)
            drawBrowser(ui, Rect(x: lower.x, y: lower.y, width: browserWidth - pad, height: lower.height))
        }
        let main = Rect(x: lower.x + browserWidth, y: lower.y, width: lower.width - browserWidth, height: lower.height)
        let upperHeight = main.height * 0.52
        let chart = Rect(x: main.x, y: main.y, width: main.width * 0.55 - pad, height: upperHeight - pad)
        let right = Rect(x: chart.maxX + pad, y: main.y, width: main.maxX - chart.maxX - pad, height: upperHeight - pad)
        let mapsRect = Rect(x: main.x, y: main.y + upperHeight, width: main.width, height: main.height - upperHeight)
        layout["chart"] = chart
        layout["matrix"] = right
        layout["maps"] = mapsRect
        drawChart(ui, chart)
        drawRightPanel(ui, right)
        drawFeatureMaps(ui, mapsRect)
        drawStatus(ui, status)
        if let path = drawFileChooser(ui) { chosenPath = path }
        showMessages(ui)
        if model.isBusy || model.subsetProgress.map({ $0.imagesDone < $0.imagesTotal }) == true {
            ui.requestFrame(after: 0.1)
        }
    }

    // MARK: Toolbar

    func toolbar(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel)
        ui.panel("toolbar", rect: rect.insetBy(ui.scaled(6)), options: []) {
            var columns: [Size] = [.fraction(1), .points(340), .points(150), .points(120), .points(110), .points(90)]
            if model.engines.count > 1 { columns.append(.points(220)) }
            columns += [.points(70), .points(70), .points(90), .points(90)]
            ui.row(columns: columns)
            let net = model.network
            ui.label("CNNSlicer — \(URL(fileURLWithPath: net.path).lastPathComponent) · \(model.workspace.images.source.split(separator: "/").suffix(2).joined(separator: "/"))",
                     style: .heading)
            var method = model.selection.method.rawValue
            if ui.segmented("method", selection: &method, options: EntropyMethod.allCases.map(\.title)) {
                model.selection.method = EntropyMethod(rawValue: method) ?? .instance
            }
            var rangeIndex = model.selection.settings.range == .channel ? 1 : 0
            if ui.segmented("range", selection: &rangeIndex, options: ["layer", "channel"]) {
                model.selection.settings.range = rangeIndex == 1 ? .channel : .layer
            }
            let binChoices = [16, 32, 64, 128, 256]
            var binIndex = binChoices.firstIndex(of: model.selection.settings.bins) ?? 2
            if ui.dropDown("bins", selection: &binIndex, options: binChoices.map { "\($0) bins" }) {
                model.selection.settings.bins = binChoices[binIndex]
            }
            var mm = model.selection.settings.millerMadow
            if ui.checkbox("Miller–Madow", isChecked: &mm) { model.selection.settings.millerMadow = mm }
            ui.tooltip("Adds (m − 1)/(2 n ln 2) to every entropy")
            _ = ui.checkbox("classes", isChecked: &showClassLines)
            ui.tooltip("Show a line per class in the chart")
            if model.engines.count > 1 {
                var epoch = model.selection.epoch
                if ui.slider("epoch", value: &epoch, in: 0...(model.engines.count - 1)) { model.selection.epoch = epoch }
            }
            if ui.button("Open…") { chooser.open(at: FileManager.default.currentDirectoryPath) }
            if ui.button("Theme") { cycleTheme(ui) }
            if ui.button("Save PNG") { wantsScreenshot = exportPath("png") }
            if ui.button("Save CSV") { exportCSV() }
        }
    }

    func cycleTheme(_ ui: UIContext) {
        themeIndex = (themeIndex + 1) % Theme.all.count
        ui.theme = Theme.all[themeIndex]
        applyLargeType(ui)
    }

    func applyLargeType(_ ui: UIContext) {
        let base = Theme.all[themeIndex]
        var theme = ui.theme
        theme.fontSize = base.fontSize * (largeType ? 1.4 : 1)
        theme.monoFontSize = base.monoFontSize * (largeType ? 1.4 : 1)
        theme.headingFontSize = base.headingFontSize * (largeType ? 1.4 : 1)
        ui.theme = theme
    }

    // MARK: Keys

    func handleKeys(_ ui: UIContext) {
        let taps = model.network.taps.count
        if ui.shortcut(.function(11)) { wantsFullscreenToggle = true }
        if ui.shortcut(.character("s"), modifiers: .control) { wantsScreenshot = exportPath("png"); screenshotCrop = nil }
        if ui.shortcut(.character("s"), modifiers: [.control, .shift]) || ui.shortcut(.character("S"), modifiers: [.control, .shift]) {
            // One view: the focused one.
            let names = ["strip", "chart", "matrix", "maps", "browser"]
            screenshotCrop = layout[names[focusedView]]
            wantsScreenshot = exportPath("png")
        }
        if ui.shortcut(.character("o"), modifiers: .control) { chooser.open(at: FileManager.default.currentDirectoryPath) }
        if ui.shortcut(.character("e"), modifiers: .control) { exportCSV() }
        if ui.shortcut(.character("t"), modifiers: .control) { cycleTheme(ui) }
        if ui.shortcut(.character("l"), modifiers: .control) { largeType.toggle(); applyLargeType(ui) }
        if ui.shortcut(.character("b"), modifiers: .control) { showBrowser.toggle() }
        if ui.shortcut(.character("q"), modifiers: .control) { wantsQuit = true }
        guard !ui.wantsTextInput else { return }
        if ui.shortcut(.tab) { focusedView = (focusedView + 1) % 5 }
        if ui.shortcut(.right) { model.selection.tap = min(taps - 1, model.selection.tap + 1); model.selection.channels = [] }
        if ui.shortcut(.left) { model.selection.tap = max(0, model.selection.tap - 1); model.selection.channels = [] }
        let count = model.workspace.images.count
        if ui.shortcut(.down), count > 0 { model.setDrawnImage(nil); model.selection.image = min(count - 1, (model.selection.image ?? -1) + 1) }
        if ui.shortcut(.up), count > 0 { model.setDrawnImage(nil); model.selection.image = max(0, (model.selection.image ?? 1) - 1) }
        if ui.shortcut(.escape) {
            model.selection.channels = []
            model.selection.brushedImages = []
            model.selection.classes = []
            model.selection.tapRange = nil
        }
    }

    func focusFrame(_ ui: UIContext, _ rect: Rect, view: Int) {
        let color = focusedView == view ? ui.theme.colors.focusRing : ui.theme.colors.panelBorder
        ui.drawList.strokeRect(rect, color: color, thickness: focusedView == view ? ui.scaled(2) : 1, cornerRadius: ui.scaled(4))
    }

    // MARK: Status and messages

    func drawStatus(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel)
        let pad = ui.scaled(6)
        var parts: [String] = []
        if let s = model.snapshot {
            let p = s.progress
            if s.fromCache {
                parts.append("\(p.imagesTotal) images (from cache)")
            } else if s.isComplete {
                parts.append(String(format: "%d images analysed, %.0f images/s", p.imagesTotal, p.imagesPerSecond))
            } else {
                parts.append(String(format: "analysing %d / %d images, %.0f images/s", p.imagesDone, p.imagesTotal, p.imagesPerSecond))
            }
            let bar = Rect(x: rect.maxX - ui.scaled(220) - pad, y: rect.y + pad, width: ui.scaled(220), height: rect.height - 2 * pad)
            ui.drawList.fillRect(bar, color: ui.theme.colors.widget, cornerRadius: ui.scaled(3))
            ui.drawList.fillRect(Rect(x: bar.x, y: bar.y, width: bar.width * Float(p.fraction), height: bar.height),
                                 color: ui.theme.colors.accent, cornerRadius: ui.scaled(3))
        }
        let s = model.selection
        parts.append("bins \(s.settings.bins), range \(s.settings.range)" + (s.settings.millerMadow ? ", Miller–Madow on" : ""))
        if !s.mask.isEmpty { parts.append("mask: \(s.mask.channels.values.reduce(0) { $0 + $1.count }) channels ablated") }
        if let sub = model.subsetProgress, !s.brushedImages.isEmpty {
            parts.append("brushed \(s.brushedImages.count) images (\(sub.imagesDone)/\(sub.imagesTotal))")
        }
        if let note = model.workspace.note { parts.append(note) }
        if let note = exportNote { parts.append(note) }
        ui.drawText(Substring(parts.joined(separator: "   ·   ")), in: Rect(x: rect.x + pad, y: rect.y, width: rect.width - ui.scaled(240), height: rect.height),
                    style: .small, color: ui.theme.colors.textDim)
    }

    func showMessages(_ ui: UIContext) {
        guard let first = model.messages.first else { return }
        if model.workspace.note == first {
            model.messages.removeFirst()
            return
        }
        if ui.modalMessage("Problem", message: first) { model.messages.removeFirst() }
    }

    // MARK: Export

    func exportPath(_ ext: String) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let dir = ProcessInfo.processInfo.environment["CNNSLICER_EXPORT_DIR"] ?? FileManager.default.currentDirectoryPath
        return "\(dir)/cnnslicer-\(formatter.string(from: Date())).\(ext)"
    }

    /// The numbers behind the chart and the matrix, as CSV (atomic write).
    func exportCSV() {
        guard let summary = model.snapshot?.summary else { exportNote = "nothing to export yet"; return }
        var lines = ["tap,op,instance_entropy,ensemble_entropy,label_information,instance_ceiling"]
        for t in summary.taps {
            lines.append("\(csv(t.name)),\(t.op),\(t.instanceEntropy),\(t.ensembleEntropy),\(t.labelInformation),\(t.instanceCeiling)")
        }
        let tap = summary.taps[min(model.selection.tap, summary.taps.count - 1)]
        lines.append("")
        lines.append("channel,instance_entropy,ensemble_entropy,label_information  (tap \(csv(tap.name)))")
        for c in tap.channelEnsembleEntropy.indices {
            lines.append("\(c),\(tap.channelInstanceEntropy[c]),\(tap.channelEnsembleEntropy[c]),\(tap.channelLabelInformation[c])")
        }
        let path = exportPath("csv")
        do {
            try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: path)
            exportNote = "saved \(path)"
        } catch {
            model.messages.append("\(error)")
        }
    }

    func csv(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
}
