import Foundation
import SlicerData
import SlicerInfo
import SlicerUI

struct BrowserState {
    /// Class filter (nil: all classes).
    var classFilter: Int?
    var tab = 0
    /// The shown image the browser last scrolled to: a newly shown image (arrow keys, a
    /// click in another view) is brought into view once, and the wheel stays free after.
    var revealed: Int?
    /// Thumbnails with a texture, so those far out of view can be freed.
    var thumbnailTextures: [Int: TextureID] = [:]
    /// Where each thumbnail in view was drawn in the last frame (image index → rectangle).
    var thumbnailRects: [Int: Rect] = [:]
    /// The images under the class filter, kept while the filter and the data stay (50,000
    /// ImageNet validation images are not filtered again every frame).
    var shownIndices: (filter: Int?, source: String, count: Int, indices: [Int])?
    /// What is typed in the class search (many classes); a chosen class shows its name here.
    var query = ""
    /// The query's matches, kept between frames.
    var search = ClassSearchMemo()
    /// Where each class of the search's list was drawn in the last frame (class → rectangle).
    var matchRows: [Int: Rect] = [:]
}

struct DrawPadState {
    var pixels: [Float] = []
    var isDrawing = false
    var lastPoint: Vec2?
    /// Pen radius in steps of 0.8 pixels of a 28×28 canvas (scaled for larger inputs).
    var penSize = 2
    var erasing = false
}

extension AppView {
    /// Up to this many classes the filter is a drop-down; beyond it (ImageNet's 1,000) a
    /// search field, as a list of a thousand names is no way to find "tabby".
    static let classDropDownLimit = 24

    /// Thumbnail textures kept before those out of view are freed (a 224×224 data set of
    /// 50,000 images must not hold 50,000 textures).
    static let thumbnailTextureBudget = 600

    func drawBrowser(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        focusFrame(ui, rect, view: 4)
        let tabHeight = ui.widgetHeight + ui.scaled(4)
        ui.panel("browser-tabs", rect: Rect(x: rect.x, y: rect.y, width: rect.width, height: tabHeight), options: []) {
            _ = ui.tabBar("browser", selection: &browser.tab, tabs: ["Images", "Draw"])
        }
        let body = Rect(x: rect.x, y: rect.y + tabHeight, width: rect.width, height: rect.height - tabHeight)
        if browser.tab == 0 { drawThumbnails(ui, body) } else { drawPad(ui, body) }
    }

    /// The images shown under the class filter, in dataset order.
    func browserIndices() -> [Int] {
        let images = model.workspace.images
        if let cached = browser.shownIndices, cached.filter == browser.classFilter, cached.source == images.source,
           cached.count == images.count {
            return cached.indices
        }
        let indices = browser.classFilter.map { images.indices(ofClass: $0) } ?? Array(0..<images.count)
        browser.shownIndices = (browser.classFilter, images.source, images.count, indices)
        return indices
    }

    /// Filters the browser to class `k` (nil: every class), as the search list or drop-down does.
    func setBrowserFilter(_ k: Int?) {
        browser.classFilter = k
        let names = model.workspace.classNames
        browser.query = k.flatMap { names[safe: $0] } ?? ""
    }

    /// Thumbnails grouped by class, with a mark for right/wrong predictions.
    func drawThumbnails(_ ui: UIContext, _ rect: Rect) {
        let names = model.workspace.classNames
        let pad = ui.scaled(6)
        if names.count > AppView.classDropDownLimit {
            drawSearchableThumbnails(ui, rect)
            return
        }
        // The class filter and "brush" share a row when both fit, else they stack.
        let classOptions = ["all classes"] + names
        let filterWidth = ui.fittingWidth(dropDown: "##class", options: classOptions)
        let brushWidth = ui.fittingWidth(button: "brush")
        let controlsWidth = rect.width - 2 * pad
        let oneRow = filterWidth + brushWidth + ui.scaled(ui.theme.spacing) <= controlsWidth
        let filterHeight = (oneRow ? 1 : 2) * (ui.widgetHeight + ui.scaled(ui.theme.spacing))
        ui.panel("class-filter", rect: Rect(x: rect.x + pad, y: rect.y, width: controlsWidth, height: filterHeight), options: []) {
            if oneRow { ui.row(.fraction(1), .points(brushWidth / ui.scale)) } else { ui.row(.fraction(1)) }
            var choice = (browser.classFilter ?? -1) + 1
            if ui.dropDown("##class", selection: &choice, options: classOptions) {
                browser.classFilter = choice == 0 ? nil : choice - 1
            }
            ui.tooltip("Show the images of one class")
            if ui.button("brush") {
                model.selection.brushedImages = Set(browserIndices())
            }
            ui.tooltip("Brush every image shown (the class filter) — the chart adds their line")
        }
        let area = Rect(x: rect.x + pad, y: rect.y + filterHeight + pad, width: rect.width - 2 * pad,
                        height: max(0, rect.height - filterHeight - 2 * pad))
        drawThumbnailGrid(ui, area)
    }

    /// The class filter of a data set with many classes: type part of a name, and the
    /// thumbnails give way to the matching classes until one is chosen (click, or Return
    /// for the first); an empty field shows every class.
    func drawSearchableThumbnails(_ ui: UIContext, _ rect: Rect) {
        let names = model.workspace.classNames
        let pad = ui.scaled(6)
        let brushWidth = ui.fittingWidth(button: "brush")
        let controlsWidth = rect.width - 2 * pad
        let spacing = ui.scaled(ui.theme.spacing)
        // The field needs room for a short name; on a narrow browser "brush" goes below it.
        let oneRow = controlsWidth - brushWidth - spacing >= ui.scaled(110)
        let filterHeight = (oneRow ? 1 : 2) * (ui.widgetHeight + spacing)
        let filtered = browser.classFilter.flatMap { names[safe: $0] }
        let searching = !browser.query.isEmpty && browser.query != filtered
        let matches = searching ? browser.search.matches(browser.query, in: names) : []
        ui.panel("class-filter", rect: Rect(x: rect.x + pad, y: rect.y, width: controlsWidth, height: filterHeight), options: []) {
            if oneRow { ui.row(.fraction(1), .points(brushWidth / ui.scale)) } else { ui.row(.fraction(1)) }
            // The longest hint the field shows whole.
            let fieldWidth = (oneRow ? controlsWidth - brushWidth - spacing : controlsWidth) - 2 * ui.scaled(ui.theme.padding)
            let hint = ui.firstFitting(["all \(formatCount(names.count)) classes: type to filter", "type to filter classes", "filter classes", "filter"],
                                       width: fieldWidth, style: .body) ?? ""
            if ui.textField("##class-search", text: &browser.query, placeholder: hint) {
                if browser.query.isEmpty { browser.classFilter = nil }
            }
            layout["browserSearch"] = ui.lastItem.rect
            if ui.lastItem.wasSubmitted {
                if browser.query.isEmpty { setBrowserFilter(nil) } else if let first = matches.first { setBrowserFilter(first) }
            }
            ui.tooltip(filtered.map { "Showing the images of \($0)\nclear the field for every class" } ?? "Type part of a class name, then click it or press Return")
            if ui.button("brush") {
                model.selection.brushedImages = Set(browserIndices())
            }
            ui.tooltip("Brush every image shown (the class filter) — the chart adds their line")
        }
        let area = Rect(x: rect.x + pad, y: rect.y + filterHeight + pad, width: rect.width - 2 * pad,
                        height: max(0, rect.height - filterHeight - 2 * pad))
        guard searching else {
            browser.matchRows = [:]
            drawThumbnailGrid(ui, area)
            return
        }
        drawClassMatches(ui, area, matches: matches, names: names)
    }

    /// The classes matching the browser's search, one row each with its image count.
    func drawClassMatches(_ ui: UIContext, _ area: Rect, matches: [Int], names: [String]) {
        layout["browserMatches"] = area
        let counts = model.classImageCounts
        let rowHeight = ui.lineHeight() + ui.scaled(ui.theme.padding)
        let label = "class-matches"
        let scroll = ui.scrollOffset(ofPanel: label).y
        ui.beginPanel(label, rect: area, options: [.scrollable])
        let content = ui.cell(height: .points(Float(matches.count) * rowHeight / ui.scale))
        let first = max(0, Int(scroll / rowHeight)), last = min(matches.count, first + Int(area.height / rowHeight) + 2)
        let bar = ui.scaled(ui.theme.scrollbarWidth)
        var rows: [Int: Rect] = [:]
        for n in first..<max(first, last) {
            let k = matches[n]
            let r = Rect(x: content.x, y: content.y + Float(n) * rowHeight, width: area.width - bar - ui.scaled(2), height: rowHeight)
            rows[k] = r
            let hit = ui.interact("match-\(k)", rect: r)
            if hit.isHovered || n == 0 {
                ui.drawList.fillRect(r, color: n == 0 ? ui.theme.colors.selection : ui.theme.colors.widgetHovered, cornerRadius: ui.scaled(2))
            }
            let count = String(counts[safe: k] ?? 0)
            drawClassRow(ui, r, name: names[k], detail: count)
            if hit.isHovered { ui.tooltip("\(names[k]) · \(count) images\nclick: show them" + (n == 0 ? " (or Return)" : "")) }
            if hit.isClicked { setBrowserFilter(k); focusedView = 4 }
        }
        browser.matchRows = rows
        ui.endPanel()
        if matches.isEmpty {
            ui.drawText("no class name contains \"\(browser.query)\"", in: area, style: .small, color: ui.theme.colors.textDim, alignment: .center)
        }
    }

    /// The thumbnails of the images under the class filter, scrolling; only the rows in view are drawn.
    func drawThumbnailGrid(_ ui: UIContext, _ area: Rect) {
        let images = model.workspace.images
        let names = model.workspace.classNames
        layout["thumbnails"] = area
        let indices = browserIndices()
        let cell = max(ui.scaled(30), min(ui.scaled(48), (area.width - ui.scaled(ui.theme.scrollbarWidth)) / 5)).rounded(.down)
        let cols = max(1, Int((area.width - ui.scaled(ui.theme.scrollbarWidth)) / cell))
        let totalRows = (indices.count + cols - 1) / cols
        let store = model.snapshot?.store

        // The scroll offset lives under the panel's own ID: read it before the panel opens
        // its ID scope (inside, the same label would name another panel).
        var scroll = ui.scrollOffset(ofPanel: "thumbnails")
        if model.drawnPixels == nil, let shown = model.selection.image, shown != browser.revealed {
            browser.revealed = shown
            if let n = indices.firstIndex(of: shown) {
                let top = Float(n / cols) * cell
                if top < scroll.y { scroll.y = top }
                if top + cell > scroll.y + area.height { scroll.y = top + cell - area.height }
                ui.setScrollOffset(scroll, ofPanel: "thumbnails")
            }
        }
        ui.beginPanel("thumbnails", rect: area, options: [.scrollable])
        // Reserve the full height so the panel scrolls; draw only the visible rows.
        let content = ui.cell(height: .points(Float(totalRows) * cell / ui.scale))
        // The panel clamps the offset to its content the same way.
        let firstRow = max(0, Int(max(0, min(scroll.y, Float(totalRows) * cell - area.height)) / cell))
        let lastRow = min(totalRows, firstRow + Int(area.height / cell) + 2)
        var visible = Set<Int>()
        browser.thumbnailRects = [:]
        for row in firstRow..<max(firstRow, lastRow) {
            for col in 0..<cols {
                let n = row * cols + col
                guard n < indices.count else { break }
                let i = indices[n]
                visible.insert(i)
                let r = Rect(x: content.x + Float(col) * cell, y: content.y + Float(row) * cell, width: cell - 2, height: cell - 2)
                browser.thumbnailRects[i] = r
                if let id = thumbnail(i, images) { ui.drawList.image(id, in: r) }
                if model.selection.brushedImages.contains(i) { ui.drawList.fillRect(r, color: ui.theme.colors.accent.withAlpha(0.3)) }
                if let store, store.isComplete(i), images.labels[i] >= 0 {
                    let right = store.prediction(image: i) == images.labels[i]
                    let mark = Rect(x: r.maxX - ui.scaled(7), y: r.y + ui.scaled(1), width: ui.scaled(6), height: ui.scaled(6))
                    ui.drawList.fillRect(mark, color: right ? CategoricalPalette.standard.color(at: 2) : ui.theme.colors.error, cornerRadius: ui.scaled(3))
                }
                if model.selection.image == i && model.drawnPixels == nil {
                    ui.drawList.strokeRect(r.insetBy(-1), color: ui.theme.colors.text, thickness: ui.scaled(2))
                }
                let hit = ui.interact("thumb-\(i)", rect: r)
                if hit.isClicked {
                    if ui.input.modifiers.contains(.control) || ui.input.modifiers.contains(.shift) {
                        if model.selection.brushedImages.contains(i) { model.selection.brushedImages.remove(i) } else { model.selection.brushedImages.insert(i) }
                    } else {
                        model.setDrawnImage(nil)
                        model.selection.image = i
                        browser.revealed = i
                    }
                    focusedView = 4
                }
                if hit.isHovered {
                    var text = "image \(i)"
                    if images.labels[i] >= 0, images.labels[i] < names.count { text += " · \(names[images.labels[i]])" }
                    if let store, store.isComplete(i) {
                        let p = store.prediction(image: i)
                        text += "\npredicted \(p < names.count ? names[p] : String(p)) (\(String(format: "%.0f%%", store.probabilities(image: i)[p] * 100)))"
                    }
                    ui.tooltip(text + "\nclick: show · ctrl-click: brush")
                }
            }
        }
        ui.endPanel()
        releaseThumbnails(keeping: visible)
    }

    /// Frees thumbnail textures out of view once there are more than the budget.
    func releaseThumbnails(keeping visible: Set<Int>) {
        guard browser.thumbnailTextures.count > AppView.thumbnailTextureBudget, let textures else { return }
        for (i, id) in browser.thumbnailTextures where !visible.contains(i) {
            textures.releaseTexture(id)
            browser.thumbnailTextures[i] = nil
        }
    }

    /// A thumbnail at most 64 pixels a side (large inputs are box-filtered down).
    func thumbnail(_ i: Int, _ images: LabeledImages) -> TextureID? {
        let (c, h, w) = (images.channels, images.height, images.width)
        let step = max(1, (max(h, w) + 63) / 64)
        let (th, tw) = (h / step, w / step)
        let id = textures?.textureID(key: "thumb-\(i)", version: 0, width: tw, height: th) {
            let px = images.image(at: i)
            let base = px.startIndex
            var rgba = [UInt8](repeating: 255, count: tw * th * 4)
            for y in 0..<th {
                for x in 0..<tw {
                    for k in 0..<3 {
                        let plane = base + (c == 3 ? k : 0) * w * h
                        var sum = 0
                        for dy in 0..<step { for dx in 0..<step { sum += Int(px[plane + (y * step + dy) * w + x * step + dx]) } }
                        rgba[(y * tw + x) * 4 + k] = UInt8(sum / (step * step))
                    }
                }
            }
            return rgba
        }
        if let id { browser.thumbnailTextures[i] = id }
        return id
    }

    /// A canvas at the model's input size; every stroke re-runs the model.
    func drawPad(_ ui: UIContext, _ rect: Rect) {
        let shape = model.network.inputShape
        guard shape.count == 3 else { return }
        let (h, w) = (shape[1], shape[2])
        if pad.pixels.count != h * w { pad.pixels = Array(repeating: 0, count: h * w) }
        let padding = ui.scaled(8)
        // Controls below the canvas at their natural widths, wrapping as the panel narrows.
        let tools = [
            FlowControl(width: ui.fittingWidth(segmented: ["pen", "eraser"])) {
                var mode = self.pad.erasing ? 1 : 0
                if ui.segmented("tool", selection: &mode, options: ["pen", "eraser"]) { self.pad.erasing = mode == 1 }
                self.layout["eraser"] = ui.lastItem.rect   // the last segment
            },
            FlowControl(width: ui.fittingWidth(slider: "size", values: ["6"])) {
                ui.slider("size", value: &self.pad.penSize, in: 1...6)
                self.layout["penSize"] = ui.lastItem.rect
                ui.tooltip("Pen and eraser width")
            },
            ui.flowButton("Clear") {
                self.pad.pixels = Array(repeating: 0, count: h * w)
                self.model.setDrawnImage(self.padBytes(channels: shape[0]))
            },
            FlowControl(width: ui.fittingWidth(button: "Back to data")) {
                if ui.button("Back to data") { self.returnToData() }
                self.layout["backToData"] = ui.lastItem.rect
                ui.tooltip("Show the data set image you were on before drawing")
            },
        ]
        let flow = ui.flowLayout(tools, width: rect.width - 2 * padding)
        let toolsHeight = ui.flowHeight(rows: flow.rowCount)
        let side = max(0, min(rect.width - 2 * padding, rect.height - toolsHeight - 3 * padding))
        let canvas = Rect(x: rect.x + padding, y: rect.y + padding, width: side, height: side)
        layout["drawPad"] = canvas
        let id = textures?.textureID(key: "drawpad", version: pad.pixels.hashValue, width: w, height: h) {
            var rgba = [UInt8](repeating: 255, count: w * h * 4)
            for p in 0..<(w * h) { let v = UInt8(max(0, min(255, pad.pixels[p] * 255))); rgba[p * 4] = v; rgba[p * 4 + 1] = v; rgba[p * 4 + 2] = v }
            return rgba
        }
        if let id { ui.drawList.image(id, in: canvas) }
        ui.drawList.strokeRect(canvas, color: ui.theme.colors.widgetBorder)
        let hit = ui.interact("drawpad", rect: canvas)
        if hit.isHovered || hit.isActive { ui.setCursor(.crosshair) }
        if hit.isActive, side > 0 {
            let m = ui.input.mousePosition
            let point = Vec2((m.x - canvas.x) / canvas.width * Float(w), (m.y - canvas.y) / canvas.height * Float(h))
            // A soft round brush, stamped along the stroke.
            let from = pad.lastPoint ?? point
            let steps = max(1, Int((point - from).length * 2))
            for s in 0...steps {
                let t = Float(s) / Float(steps)
                stamp(at: from + (point - from) * t, w: w, h: h)
            }
            pad.lastPoint = point
            model.setDrawnImage(padBytes(channels: shape[0]))
        } else {
            pad.lastPoint = nil
        }
        layout["padTools"] = Rect(x: rect.x + padding, y: canvas.maxY + padding, width: rect.width - 2 * padding, height: toolsHeight)
        ui.withID("pad-tools") { ui.flow(tools, layout: flow, at: Vec2(rect.x + padding, canvas.maxY + padding)) }
    }

    /// Leaves the drawn image for the data set image shown before drawing.
    func returnToData() {
        let back = model.imageBeforeDrawing ?? model.selection.image ?? 0
        model.setDrawnImage(nil)
        model.selection.image = back
    }

    /// The pen's radius in canvas pixels: the same stroke weight on a 28×28 and a 224×224 canvas.
    func penRadius(w: Int, h: Int) -> Float {
        Float(pad.penSize) * 0.8 * Float(max(w, h)) / 28
    }

    func stamp(at p: Vec2, w: Int, h: Int) {
        let radius = penRadius(w: w, h: h)
        let reach = radius + 1
        // The pointer may leave the canvas while drawing: clip the stamp to it.
        let y0 = max(0, Int((p.y - reach).rounded(.down))), y1 = min(h - 1, Int((p.y + reach).rounded(.down)))
        let x0 = max(0, Int((p.x - reach).rounded(.down))), x1 = min(w - 1, Int((p.x + reach).rounded(.down)))
        guard y0 <= y1, x0 <= x1 else { return }
        for y in y0...y1 {
            for x in x0...x1 {
                let d = (Vec2(Float(x) + 0.5, Float(y) + 0.5) - p).length
                // Coverage falls from 1 to 0 over the pixel at the rim: soft, not jagged.
                let v = max(0, min(1, radius + 0.5 - d))
                let old = pad.pixels[y * w + x]
                pad.pixels[y * w + x] = pad.erasing ? min(old, 1 - v) : max(old, v)
            }
        }
    }

    /// The canvas as bytes in the model's layout (grey replicated for RGB models).
    func padBytes(channels: Int) -> [UInt8] {
        let bytes = pad.pixels.map { UInt8(max(0, min(255, $0 * 255))) }
        return Array([[UInt8]](repeating: bytes, count: channels).joined())
    }
}
