import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo
import SlicerUI

/// The whole window: four linked views, the image browser and draw pad, a
/// status bar, and room for the CAR panel. One frame = one call of `frame`.
@MainActor
public final class AppView {
    public let model: AppModel
    /// The renderer's textures, through `PacedTextures`: what the views release is freed a
    /// few textures per frame (the renderer itself is the host's, not kept alive here).
    public var textures: TextureProvider? {
        get { pacedTextures?.base == nil ? nil : pacedTextures }
        set { pacedTextures = newValue.map { ($0 as? PacedTextures) ?? PacedTextures(base: $0) } }
    }
    var pacedTextures: PacedTextures?
    /// How the current model and data were opened; a dropped or chosen file changes one of
    /// them and reopens. Nil: opening other files is not offered (a fixed workspace).
    public var options: WorkspaceOptions?
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
    /// The views in Tab order, by the names `layout` uses.
    public static let viewNames = ["strip", "chart", "matrix", "maps", "browser"]
    var matrix = MatrixState()
    var maps = FeatureMapState()
    var browser = BrowserState()
    var pad = DrawPadState()
    public internal(set) var themeIndex = 0
    var exportNote: String?
    var chooser = FileChooserState()
    var carPanel = CARPanelState()
    var scatter = ScatterState()
    var chart = ChartState()
    var strip = StripState()
    /// A model and data that need resizing to fit: the app asks what to do.
    var pendingOpen: PendingOpen?
    /// What the app remembers between sessions, and where (nil: nothing is written).
    var preferences: Preferences
    let preferencesStore: PreferencesStore?
    /// When a screenshot is for one view: its rectangle, to crop to after saving.
    public var screenshotCrop: Rect?
    var imageEntropyCache: (key: [Int], value: ImageEntropy)?
    var shownEntropyJob = ShownEntropyJob()
    /// Where each view was drawn in the last frame (for tests and export of one view).
    public internal(set) var layout: [String: Rect] = [:]
    /// Rows the toolbar took in the last frame.
    public internal(set) var toolbarRows = 1
    /// Channel order of the feature-map grid in the last frame (brushed first).
    public internal(set) var lastMapOrder: [Int] = []

    public init(model: AppModel, textures: TextureProvider?, options: WorkspaceOptions? = nil,
                preferences: PreferencesStore? = nil) {
        self.model = model
        self.pacedTextures = textures.map { PacedTextures(base: $0) }
        self.options = options
        self.preferencesStore = preferences
        self.preferences = preferences?.load() ?? Preferences()
    }

    public func frame(_ ui: UIContext) {
        model.update()
        let dialogOpen = chooser.isOpen || pendingOpen != nil || !model.messages.isEmpty
        handleKeys(ui, dialogOpen: dialogOpen)
        let full = ui.displayRect
        let pad = ui.scaled(6)
        let bar = planToolbar(ui, width: full.width - 2 * pad)
        let top = Rect(x: 0, y: 0, width: full.width, height: ui.flowHeight(rows: bar.layout.rowCount) + 2 * pad)
        let statusPlan = planStatus(ui, width: full.width - 2 * pad)
        let status = Rect(x: 0, y: full.height - statusPlan.height, width: full.width, height: statusPlan.height)
        let body = Rect(x: pad, y: top.maxY, width: full.width - 2 * pad, height: max(0, status.y - top.maxY - pad))
        let stripHeight = self.stripHeight(ui, bodyHeight: body.height, width: body.width - ui.scaled(12))
        let strip = Rect(x: body.x, y: body.y, width: body.width, height: stripHeight)
        layout = ["strip": strip, "toolbar": top, "status": status]
        toolbarRows = bar.layout.rowCount
        drawToolbar(ui, bar, in: top)
        drawStrip(ui, strip)
        let lower = Rect(x: body.x, y: strip.maxY + pad, width: body.width, height: max(0, body.maxY - strip.maxY - pad))
        // The browser keeps room for its controls and a few thumbnails on small windows.
        let browserWidth = showBrowser ? min(lower.width * 0.3, max(lower.width * 0.2, ui.scaled(210))).rounded() : 0
        if showBrowser {
            let rect = Rect(x: lower.x, y: lower.y, width: browserWidth - pad, height: lower.height)
            layout["browser"] = rect
            drawBrowser(ui, rect)
        }
        let main = Rect(x: lower.x + browserWidth, y: lower.y, width: lower.width - browserWidth, height: lower.height)
        // The chart and matrix take 52 % of the height; where that is short for the type
        // size (1024×700 in large type) they take 60 %, so the matrix keeps named columns
        // and a few rows (the image panel below adapts its thumbnail to what is left).
        let short = AppView.isShortBody(ui, body.height)
        let upperHeight = (main.height * (short ? 0.6 : 0.52)).rounded()
        let chart = Rect(x: main.x, y: main.y, width: (main.width * 0.55).rounded() - pad, height: upperHeight - pad)
        let right = Rect(x: chart.maxX + pad, y: main.y, width: main.maxX - chart.maxX - pad, height: upperHeight - pad)
        let mapsRect = Rect(x: main.x, y: main.y + upperHeight, width: main.width, height: main.height - upperHeight)
        layout["chart"] = chart
        layout["matrix"] = right
        layout["maps"] = mapsRect
        drawChart(ui, chart)
        drawRightPanel(ui, right)
        drawFeatureMaps(ui, mapsRect)
        drawStatus(ui, statusPlan, in: status)
        if let path = drawFileChooser(ui) {
            switch chooser.purpose {
            case .anything: open(path)
            case .data(let model):
                guard var next = pendingOpen?.options ?? options else { break }
                pendingOpen = nil
                next.models = [model]
                next.data = path
                load(next)
            }
        }
        drawOpenPrompt(ui)
        showMessages(ui)
        // Tab cycles the views; a dialog needs it to walk its fields and buttons (next frame).
        ui.tabMovesFocus = chooser.isOpen || pendingOpen != nil || !model.messages.isEmpty
        if model.isBusy || isComputingImageEntropy || model.subsetProgress.map({ $0.imagesDone < $0.imagesTotal }) == true {
            ui.requestFrame(after: 0.1)
        }
        // Textures let go of this frame are freed over the next ones, a few at a time.
        if let paced = pacedTextures {
            paced.endFrame()
            if paced.pendingCount > 0 { ui.requestFrame(after: 0.02) }
        }
    }

    /// Whether the window's body (between toolbar and status bar) is short for the type
    /// size: fewer than 30 lines of small text (1024×700 in large type, not in normal type).
    /// The strip then takes less and the chart and matrix more of it.
    static func isShortBody(_ ui: UIContext, _ height: Float) -> Bool { height < ui.lineHeight(.small) * 30 }

    // MARK: Title

    /// The model's name: its file, with the series' folder for a model series.
    var modelName: String {
        let url = URL(fileURLWithPath: model.network.path)
        guard model.engines.count > 1 else { return url.lastPathComponent }
        return url.deletingLastPathComponent().lastPathComponent + "/" + url.lastPathComponent
    }

    /// The data's name: its folder and split for IDX and CIFAR files, else the file or folder.
    var dataName: String { AppView.dataName(of: model.workspace.images.source) }

    nonisolated static func dataName(of source: String) -> String {
        let url = URL(fileURLWithPath: source)
        let file = url.lastPathComponent.lowercased()
        let folder = url.deletingLastPathComponent().lastPathComponent
        let split = file.hasPrefix("t10k") || file.hasPrefix("test") ? "test"
            : (file.hasPrefix("train") || file.hasPrefix("data_batch") ? "train" : nil)
        if let split, !folder.isEmpty, folder != "/" { return "\(folder) (\(split))" }
        return url.lastPathComponent.isEmpty ? source : url.lastPathComponent
    }

    /// The title bar's text (the host shows it as the window title). ASCII separators: SDL's X11
    /// backend converts the title in the process's locale, which is "C" for a Swift program, and a
    /// non-ASCII character there leaves the window manager's _NET_WM_NAME at the old title.
    public var windowTitle: String { "CNNSlicer - \(modelName) - \(dataName)" }

    /// The toolbar's heading, longest first: the first that fits is shown.
    func titleVariants() -> [String] {
        let count = model.workspace.images.count
        let file = URL(fileURLWithPath: model.network.path).lastPathComponent
        return ["\(modelName) · \(dataName) · \(formatCount(count)) images", "\(modelName) · \(dataName)", "\(file) · \(dataName)"]
    }

    // MARK: Toolbar

    struct ToolbarPlan {
        var controls: [FlowControl]
        var layout: FlowLayout
    }

    /// The toolbar's groups, in order; the commands sit at the right end of their row.
    enum ToolbarGroup: Int { case title, method, binning, options, epoch, commands }

    /// The toolbar's controls at their natural widths, flowed into as many rows as the window
    /// needs: controls wrap to another row instead of being cut. New controls (a strip zoom,
    /// paging) join as another group.
    func planToolbar(_ ui: UIContext, width: Float) -> ToolbarPlan {
        var controls: [FlowControl] = []
        func add(_ group: ToolbarGroup, _ width: Float, _ declare: @escaping () -> Void) {
            controls.append(FlowControl(width: width, group: group.rawValue, declare))
        }
        let methods = EntropyMethod.allCases.map(\.title)
        add(.method, ui.fittingWidth(segmented: methods, widths: .fitting)) {
            var method = self.model.selection.method.rawValue
            if ui.segmented("method", selection: &method, options: methods, widths: .fitting) {
                self.model.selection.method = EntropyMethod(rawValue: method) ?? .instance
            }
        }
        let ranges = ["layer", "channel"]
        add(.binning, ui.fittingWidth(segmented: ranges, widths: .fitting)) {
            var rangeIndex = self.model.selection.settings.range == .channel ? 1 : 0
            if ui.segmented("range", selection: &rangeIndex, options: ranges, widths: .fitting) {
                self.model.selection.settings.range = rangeIndex == 1 ? .channel : .layer
            }
        }
        let binChoices = [16, 32, 64, 128, 256]
        let binNames = binChoices.map { "\($0)" }
        add(.binning, ui.fittingWidth(dropDown: "bins", options: binNames)) {
            var binIndex = binChoices.firstIndex(of: self.model.selection.settings.bins) ?? 2
            if ui.dropDown("bins", selection: &binIndex, options: binNames) {
                self.model.selection.settings.bins = binChoices[binIndex]
            }
        }
        add(.options, ui.fittingWidth(checkbox: "Miller–Madow")) {
            var mm = self.model.selection.settings.millerMadow
            if ui.checkbox("Miller–Madow", isChecked: &mm) { self.model.selection.settings.millerMadow = mm }
            ui.tooltip("Adds (m − 1)/(2 n ln 2) to every entropy")
        }
        add(.options, ui.fittingWidth(checkbox: "classes")) {
            ui.checkbox("classes", isChecked: &self.showClassLines)
            ui.tooltip("Show a line per class in the chart")
        }
        if model.engines.count > 1 {
            let last = model.engines.count - 1
            add(.epoch, ui.fittingWidth(slider: "epoch", values: ["\(last)"]) + ui.scaled(60)) {
                var epoch = self.model.selection.epoch
                if ui.slider("epoch", value: &epoch, in: 0...last) { self.model.selection.epoch = epoch }
            }
        }
        if options != nil { controls.append(ui.flowButton("Open…", group: ToolbarGroup.commands.rawValue) { self.openFileChooser() }) }
        controls.append(ui.flowButton("Theme", group: ToolbarGroup.commands.rawValue) { self.cycleTheme(ui) })
        controls.append(ui.flowButton("Save PNG", group: ToolbarGroup.commands.rawValue) {
            self.wantsScreenshot = self.exportPath("png")
            self.screenshotCrop = nil
        })
        controls.append(ui.flowButton("Save CSV", group: ToolbarGroup.commands.rawValue) { self.exportCSV() })

        // The heading comes first: the longest of its variants that keeps the toolbar to the
        // fewest rows (a long title must not push the controls onto another row).
        func heading(_ title: String) -> FlowControl {
            FlowControl(width: min(width, ui.textWidth(title, style: .heading) + ui.scaled(4)), group: ToolbarGroup.title.rawValue) {
                ui.label(title, style: .heading)
            }
        }
        func flowing(_ all: [FlowControl]) -> FlowLayout {
            ui.flowLayout(all, width: width, groupSpacing: ui.scaled(14), trailingGroup: ToolbarGroup.commands.rawValue)
        }
        // Of the variants that fit the width (else the shortest), the longest among those giving
        // the fewest rows (`min` keeps the first of equals).
        let variants = titleVariants()
        let fitting = variants.filter { ui.textWidth($0, style: .heading) + ui.scaled(4) <= width }
        let title = (fitting.isEmpty ? Array(variants.suffix(1)) : fitting)
            .map { ($0, flowing([heading($0)] + controls).rowCount) }.min { $0.1 < $1.1 }?.0 ?? ""
        controls.insert(heading(title), at: 0)
        return ToolbarPlan(controls: controls, layout: flowing(controls))
    }

    func drawToolbar(_ ui: UIContext, _ plan: ToolbarPlan, in rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel)
        ui.withID("toolbar") {
            ui.flow(plan.controls, layout: plan.layout, at: Vec2(rect.x + ui.scaled(6), rect.y + ui.scaled(6)))
        }
    }

    func cycleTheme(_ ui: UIContext) {
        themeIndex = (themeIndex + 1) % Theme.all.count
        ui.theme = Theme.all[themeIndex]
        applyLargeType(ui)
    }

    /// Sets the theme by index into `Theme.all` (the screenshot command's `--theme`).
    public func setTheme(_ index: Int, _ ui: UIContext) {
        themeIndex = min(max(index, 0), Theme.all.count - 1)
        ui.theme = Theme.all[themeIndex]
        applyLargeType(ui)
    }

    public func applyLargeType(_ ui: UIContext) {
        let base = Theme.all[themeIndex]
        var theme = ui.theme
        theme.fontSize = base.fontSize * (largeType ? 1.4 : 1)
        theme.monoFontSize = base.monoFontSize * (largeType ? 1.4 : 1)
        theme.headingFontSize = base.headingFontSize * (largeType ? 1.4 : 1)
        ui.theme = theme
    }

    // MARK: Keys

    func handleKeys(_ ui: UIContext, dialogOpen: Bool) {
        let taps = model.network.taps.count
        if ui.shortcut(.function(11)) { wantsFullscreenToggle = true }
        if ui.shortcut(.character("s"), modifiers: .control) { wantsScreenshot = exportPath("png"); screenshotCrop = nil }
        if ui.shortcut(.character("s"), modifiers: [.control, .shift]) || ui.shortcut(.character("S"), modifiers: [.control, .shift]) {
            // One view: the focused one.
            screenshotCrop = layout[AppView.viewNames[focusedView]]
            wantsScreenshot = exportPath("png")
        }
        if ui.shortcut(.character("e"), modifiers: .control) { exportCSV() }
        if ui.shortcut(.character("t"), modifiers: .control) { cycleTheme(ui) }
        if ui.shortcut(.character("l"), modifiers: .control) { largeType.toggle(); applyLargeType(ui) }
        if ui.shortcut(.character("q"), modifiers: .control) { wantsQuit = true }
        // Keys that act on the views wait while a dialog (chooser, prompt, message) is up:
        // there the arrows, Tab, Return and Escape belong to the dialog.
        guard !dialogOpen else { return }
        if ui.shortcut(.character("o"), modifiers: .control), options != nil { openFileChooser() }
        if ui.shortcut(.character("b"), modifiers: .control) {
            showBrowser.toggle()
            if !showBrowser, focusedView == 4 { focusedView = 0 }
        }
        guard !ui.wantsTextInput else { return }
        let cycle = showBrowser ? AppView.viewNames.count : AppView.viewNames.count - 1
        if ui.shortcut(.tab) { focusedView = (focusedView + 1) % cycle }
        if ui.shortcut(.tab, modifiers: .shift) { focusedView = (focusedView + cycle - 1) % cycle }
        if ui.shortcut(.right) { model.selection.tap = min(taps - 1, model.selection.tap + 1); model.selection.channels = [] }
        if ui.shortcut(.left) { model.selection.tap = max(0, model.selection.tap - 1); model.selection.channels = [] }
        let count = model.workspace.images.count
        if ui.shortcut(.down), count > 0 { model.setDrawnImage(nil); model.selection.image = min(count - 1, (model.selection.image ?? -1) + 1) }
        if ui.shortcut(.up), count > 0 { model.setDrawnImage(nil); model.selection.image = max(0, (model.selection.image ?? 1) - 1) }
        if ui.shortcut(.escape) {
            // Escape first closes the matrix's class picker (its search field passes Escape on).
            if matrix.pickerOpen { matrix.pickerOpen = false; return }
            model.selection.channels = []
            model.selection.brushedImages = []
            model.selection.classes = []
            model.selection.tapRange = nil
        }
    }

    /// The focus ring of a view: the accent colour and thicker on the focused one.
    func focusFrame(_ ui: UIContext, _ rect: Rect, view: Int) {
        let color = focusedView == view ? ui.theme.colors.focusRing : ui.theme.colors.panelBorder
        ui.drawList.strokeRect(rect, color: color, thickness: focusedView == view ? ui.scaled(2) : 1, cornerRadius: ui.scaled(4))
    }

    // MARK: Opening models and data

    /// A model and data that fit only with resizing, waiting for the user's choice.
    struct PendingOpen {
        var options: WorkspaceOptions
        var mismatch: SizeMismatch
        /// The data the model says it is for, when that is not what was tried.
        var intendedData: String?
    }

    /// Opens a dropped or chosen path: an .onnx replaces the model, a PNG/JPEG is shown as a
    /// drawn image, anything else is opened as the data.
    public func open(_ path: String) {
        let lower = path.lowercased()
        if [".png", ".jpg", ".jpeg"].contains(where: lower.hasSuffix) {
            do { try model.showImage(file: path) } catch { model.messages.append("\(error)") }
            return
        }
        guard var next = options else {
            model.messages.append("\(path): this window was opened on a fixed model and data set")
            return
        }
        if lower.hasSuffix(".onnx") { next.models = [path] } else { next.data = path }
        next.note = nil
        // A new model or data set asks afresh whether to resize.
        next.resize = nil
        load(next)
    }

    /// Replaces the workspace; a model and data of different image sizes ask how to proceed.
    func load(_ next: WorkspaceOptions) {
        do {
            let (workspace, resolved) = try next.open()
            model.replace(workspace)
            model.selection.epoch = workspace.inputs.count - 1
            options = resolved
            pendingOpen = nil
            forgetWorkspaceState()
        } catch let mismatch as SizeMismatch {
            var intended: String?
            if let network = try? Network(contentsOf: mismatch.model), let name = WorkspaceOptions.intendedData(for: network),
               name != next.data {
                intended = name
            }
            pendingOpen = PendingOpen(options: next, mismatch: mismatch, intendedData: intended)
        } catch {
            model.messages.append("\(error)")
        }
    }

    /// Drops what the views keep about the previous model and data: caches keyed by numbers
    /// a new engine starts again from, thumbnails of the old images, the class filter.
    func forgetWorkspaceState() {
        matrix.shownTable = nil
        imageEntropyCache = nil
        shownEntropyJob = ShownEntropyJob()
        if let textures {
            for id in maps.textures.values { textures.releaseTexture(id) }
        }
        maps = FeatureMapState()
        matrix.pinned = []
        matrix.pickerOpen = false
        browser.classFilter = nil
        browser.query = ""
        browser.revealed = nil
        browser.shownIndices = nil
        if let textures {
            for id in browser.thumbnailTextures.values { textures.releaseTexture(id) }
        }
        browser.thumbnailTextures = [:]
    }

    /// The question a model and data of different sizes raise, with the ways out.
    func drawOpenPrompt(_ ui: UIContext) {
        guard let pending = pendingOpen, !chooser.isOpen else { return }
        let m = pending.mismatch
        let display = ui.displayRect
        let width = min(display.width - ui.scaled(24), ui.scaled(620))
        let modelFile = URL(fileURLWithPath: m.model).lastPathComponent
        let shape: ([Int]) -> String = { $0.map(String.init).joined(separator: "×") }
        let message = "\(modelFile) takes \(shape(m.modelShape)) images; \(AppView.dataName(of: m.data)) has \(shape(m.dataShape)). "
            + "Resize the images to the model's input size, or choose other data for this model."
        var next = pending.options
        var buttons: [FlowControl] = []
        if let intended = pending.intendedData {
            buttons.append(ui.flowButton("Open with \(intended)") { next.data = intended; self.load(next) })
        }
        buttons.append(ui.flowButton("Resize bilinear") { next.resize = .bilinear; self.load(next) })
        buttons.append(ui.flowButton("Resize nearest") { next.resize = .nearest; self.load(next) })
        buttons.append(ui.flowButton("Choose data…") { self.openFileChooser(purpose: .data(forModel: next.models.first ?? m.model)) })
        buttons.append(ui.flowButton("Cancel") { self.pendingOpen = nil })
        let pad = ui.scaled(12)
        let lines = ui.measurer.wrap(message, font: ui.font(.body), maxWidth: width - 2 * pad)
        let flow = ui.flowLayout(buttons, width: width - 2 * pad)
        let height = 2 * pad + ui.lineHeight(.heading) + ui.scaled(6) + Float(lines.count) * ui.lineHeight() + ui.scaled(10)
            + ui.flowHeight(rows: flow.rowCount)
        let box = Rect(x: ((display.width - width) / 2).rounded(), y: max(0, ((display.height - height) / 2).rounded()), width: width, height: height)
        layout["openPrompt"] = box
        if ui.shortcut(.escape) { pendingOpen = nil; return }
        ui.modal {
            ui.panel("open-prompt", rect: box, options: [.background, .border]) {
                let inner = box.insetBy(pad)
                ui.area(Rect(x: inner.x, y: inner.y, width: inner.width, height: ui.lineHeight(.heading))) {
                    ui.label("The model and the data differ in image size", style: .heading)
                }
                var y = inner.y + ui.lineHeight(.heading) + ui.scaled(6)
                for line in lines {
                    ui.drawList.text(line, at: Vec2(inner.x, y), font: ui.font(.body), color: ui.theme.colors.text, measurer: ui.measurer)
                    y += ui.lineHeight()
                }
                ui.flow(buttons, layout: flow, at: Vec2(inner.x, y + ui.scaled(10)))
            }
        }
    }

    // MARK: Status and messages

    struct StatusPlan {
        var parts: [String]
        /// The whole text of a part shown in a shorter form (on hover), by part.
        var wholeTexts: [Int: String] = [:]
        /// The width the parts flow in (beside the progress bar).
        var textWidth: Float = 0
        var flow: FlowLayout
        var lineHeight: Float
        var padding: Float
        var height: Float { Float(max(1, flow.rowCount)) * lineHeight + 2 * padding }
    }

    /// The status line's parts; they wrap to more lines rather than being cut.
    func planStatus(_ ui: UIContext, width: Float) -> StatusPlan {
        var parts: [String] = []
        if let s = model.snapshot {
            let p = s.progress
            if s.fromCache {
                parts.append("\(formatCount(p.imagesTotal)) images (from cache)")
            } else if s.isComplete {
                parts.append(String(format: "%@ images analysed, %.0f images/s", formatCount(p.imagesTotal), p.imagesPerSecond))
            } else {
                parts.append(String(format: "analysing %@ / %@ images, %.0f images/s", formatCount(p.imagesDone), formatCount(p.imagesTotal), p.imagesPerSecond))
            }
        }
        let s = model.selection
        parts.append("bins \(s.settings.bins), range \(s.settings.range)" + (s.settings.millerMadow ? ", Miller–Madow on" : ""))
        let images = model.workspace.images, input = model.network.inputShape
        if let resize = options?.resize, (images.height, images.width) != (input[1], input[2]) {
            // SPEC §1: resizing is stated in the UI.
            parts.append("images resized \(images.width)×\(images.height) → \(input[2])×\(input[1]) (\(resize))")
        }
        if !s.mask.isEmpty { parts.append("mask: \(s.mask.channels.values.reduce(0) { $0 + $1.count }) channels ablated") }
        if let sub = model.subsetProgress, !s.brushedImages.isEmpty {
            let n = s.brushedImages.count
            parts.append("brushed \(n) image\(n == 1 ? "" : "s") (\(sub.imagesDone)/\(sub.imagesTotal))")
        }
        let pad = ui.scaled(6)
        let progressWidth = ui.scaled(220) + pad
        let textWidth = max(ui.scaled(100), width - progressWidth)
        // A note longer than the line (a class-index file's path in large type) is shown in
        // the longest of its shorter forms that fits, whole on hover.
        var wholeTexts: [Int: String] = [:]
        for forms in model.workspace.noteForms {
            guard let whole = forms.first else { continue }
            let shown = forms.first { ui.textWidth($0, style: .small) <= textWidth } ?? forms.last ?? whole
            if shown != whole { wholeTexts[parts.count] = whole }
            parts.append(shown)
        }
        if let note = exportNote { parts.append(note) }
        let flow = FlowLayout(parts.map { FlowLayout.Item(width: min(textWidth, ui.textWidth($0, style: .small))) }, maxWidth: textWidth,
                              spacing: ui.textWidth("   ·   ", style: .small))
        return StatusPlan(parts: parts, wholeTexts: wholeTexts, textWidth: textWidth, flow: flow, lineHeight: ui.lineHeight(.small), padding: pad)
    }

    func drawStatus(_ ui: UIContext, _ plan: StatusPlan, in rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel)
        let pad = plan.padding
        if let p = model.snapshot?.progress {
            let bar = Rect(x: rect.maxX - ui.scaled(220) - pad, y: rect.y + pad, width: ui.scaled(220), height: plan.lineHeight)
            ui.drawList.fillRect(bar, color: ui.theme.colors.widget, cornerRadius: ui.scaled(3))
            ui.drawList.fillRect(Rect(x: bar.x, y: bar.y, width: bar.width * Float(p.fraction), height: bar.height),
                                 color: ui.theme.colors.accent, cornerRadius: ui.scaled(3))
        }
        let separator = ui.textWidth("   ·   ", style: .small)
        for (i, (part, place)) in zip(plan.parts, plan.flow.placements).enumerated() {
            let y = rect.y + pad + Float(place.row) * plan.lineHeight
            if i > 0, place.x > 0 {
                ui.drawText("·", in: Rect(x: rect.x + pad + place.x - separator, y: y, width: separator, height: plan.lineHeight),
                            style: .small, color: ui.theme.colors.textDim, alignment: .center)
            }
            let r = Rect(x: rect.x + pad + place.x, y: y, width: place.width, height: plan.lineHeight)
            ui.drawText(Substring(part), in: r, style: .small, color: ui.theme.colors.textDim, owner: "status \(i)")
            layout["status \(i)"] = r
            if let whole = plan.wholeTexts[i], ui.interact("status-part-\(i)", rect: r).isHovered {
                ui.showTooltip(whole, near: ui.input.mousePosition)
            }
        }
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

    func exportPath(_ ext: String, suffix: String = "") -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let dir = ProcessInfo.processInfo.environment["CNNSLICER_EXPORT_DIR"] ?? FileManager.default.currentDirectoryPath
        return "\(dir)/cnnslicer-\(formatter.string(from: Date()))\(suffix).\(ext)"
    }

    /// The numbers behind the chart and the matrix as two CSV files, one table each: per
    /// tap, and per channel of the selected tap. Each starts with `#` lines naming the model,
    /// the data and the settings (read with e.g. `pandas.read_csv(path, comment="#")`).
    /// Both are written atomically. Returns the paths written.
    @discardableResult
    func exportCSV() -> [String] {
        guard let summary = model.snapshot?.summary, !summary.taps.isEmpty else { exportNote = "nothing to export yet"; return [] }
        let tapIndex = min(model.selection.tap, summary.taps.count - 1)
        let tap = summary.taps[tapIndex]
        let s = model.selection
        var header = [
            "# cnnslicer export",
            "# model: \(model.network.path)",
            "# data: \(model.workspace.images.source)",
            "# images: \(summary.images)",
            "# bins: \(summary.bins)",
            "# range: \(summary.range)",
            "# miller_madow: \(summary.millerMadow)",
        ]
        if model.engines.count > 1 { header.append("# epoch: \(s.epoch) of \(model.engines.count - 1)") }
        if let resize = options?.resize { header.append("# resize: \(resize)") }
        let mask = s.mask.channels.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
            .map { "\(model.network.taps[$0.key].name)[\($0.value.sorted().map(String.init).joined(separator: " "))]" }
        header.append("# mask: " + (mask.isEmpty ? "none" : mask.joined(separator: "; ")))

        var taps = header + ["# table: one row per tap; entropies in bits",
                             "tap_index,tap,op,shape,range_lo,range_hi,instance_entropy,instance_entropy_std,ensemble_entropy,label_information,instance_ceiling,non_finite"]
        for (i, t) in summary.taps.enumerated() {
            let shape = t.shape.map(String.init).joined(separator: "x")
            taps.append("\(i),\(csv(t.name)),\(t.op),\(shape),\(t.range.lo),\(t.range.hi),\(t.instanceEntropy),\(t.instanceEntropySpread),"
                        + "\(t.ensembleEntropy),\(t.labelInformation),\(t.instanceCeiling),\(t.nonFiniteValues)")
        }
        var channels = header + ["# table: one row per channel of tap \(tap.name) (index \(tapIndex)); entropies in bits",
                                 "channel,instance_entropy,ensemble_entropy,label_information,instance_ceiling"]
        for c in tap.channelEnsembleEntropy.indices {
            channels.append("\(c),\(tap.channelInstanceEntropy[c]),\(tap.channelEnsembleEntropy[c]),\(tap.channelLabelInformation[c]),\(tap.channelInstanceCeiling)")
        }
        let paths = [exportPath("csv", suffix: "-taps"), exportPath("csv", suffix: "-channels")]
        do {
            for (path, lines) in zip(paths, [taps, channels]) {
                try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: path)
            }
            exportNote = "saved \(paths.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: " and "))"
            return paths
        } catch {
            model.messages.append("\(error)")
            return []
        }
    }

    func csv(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
}

/// 10000 → "10,000": counts an audience reads at a glance.
func formatCount(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}
