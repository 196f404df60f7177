import Foundation
import SlicerData
import SlicerInfo
import SlicerUI

struct BrowserState {
    /// Class filter (nil: all classes).
    var classFilter: Int?
    var tab = 0
}

struct DrawPadState {
    var pixels: [Float] = []
    var isDrawing = false
    var lastPoint: Vec2?
}

extension AppView {
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

    /// Thumbnails grouped by class, with a mark for right/wrong predictions.
    func drawThumbnails(_ ui: UIContext, _ rect: Rect) {
        let images = model.workspace.images
        let names = model.workspace.classNames
        let pad = ui.scaled(6)
        let filterHeight = ui.widgetHeight + pad
        ui.panel("class-filter", rect: Rect(x: rect.x + pad, y: rect.y, width: rect.width - 2 * pad, height: filterHeight), options: []) {
            ui.row(.fraction(1), .points(60))
            var choice = (browser.classFilter ?? -1) + 1
            let options = ["all classes"] + names
            if ui.dropDown("class", selection: &choice, options: options) {
                browser.classFilter = choice == 0 ? nil : choice - 1
            }
            if ui.button("brush") {
                let indices = browser.classFilter.map { images.indices(ofClass: $0) } ?? Array(0..<images.count)
                model.selection.brushedImages = Set(indices)
            }
            ui.tooltip("Brush every image shown (the class filter) — the chart adds their line")
        }
        let area = Rect(x: rect.x + pad, y: rect.y + filterHeight + pad, width: rect.width - 2 * pad, height: rect.height - filterHeight - 2 * pad)
        let indices: [Int] = browser.classFilter.map { images.indices(ofClass: $0) } ?? Array(0..<images.count)
        let cell = max(ui.scaled(30), min(ui.scaled(48), area.width / 5))
        let cols = max(1, Int(area.width / cell))
        let store = model.snapshot?.store
        ui.beginPanel("thumbnails", rect: area, options: [.scrollable])
        let scroll = ui.scrollOffset(ofPanel: "thumbnails")
        let totalRows = (indices.count + cols - 1) / cols
        // Reserve the full height so the panel scrolls; draw only the visible rows.
        let content = ui.cell(height: .points(Float(totalRows) * cell / ui.scale))
        let firstRow = max(0, Int(scroll.y / cell))
        let lastRow = min(totalRows, firstRow + Int(area.height / cell) + 2)
        for row in firstRow..<max(firstRow, lastRow) {
            for col in 0..<cols {
                let n = row * cols + col
                guard n < indices.count else { break }
                let i = indices[n]
                let r = Rect(x: content.x + Float(col) * cell, y: content.y + Float(row) * cell, width: cell - 2, height: cell - 2)
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
    }

    func thumbnail(_ i: Int, _ images: LabeledImages) -> TextureID? {
        let (c, h, w) = (images.channels, images.height, images.width)
        return textures?.textureID(key: "thumb-\(i)", version: 0, width: w, height: h) {
            let px = images.image(at: i)
            var rgba = [UInt8](repeating: 255, count: w * h * 4)
            let base = px.startIndex
            for p in 0..<(w * h) {
                for k in 0..<3 { rgba[p * 4 + k] = px[base + (c == 3 ? k : 0) * w * h + p] }
            }
            return rgba
        }
    }

    /// A canvas at the model's input size; every stroke re-runs the model.
    func drawPad(_ ui: UIContext, _ rect: Rect) {
        let shape = model.network.inputShape
        guard shape.count == 3 else { return }
        let (h, w) = (shape[1], shape[2])
        if pad.pixels.count != h * w { pad.pixels = Array(repeating: 0, count: h * w) }
        let padding = ui.scaled(8)
        let side = min(rect.width, rect.height - ui.widgetHeight * 2) - 2 * padding
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
        if hit.isActive {
            let m = ui.input.mousePosition
            let point = Vec2((m.x - canvas.x) / canvas.width * Float(w), (m.y - canvas.y) / canvas.height * Float(h))
            // A soft round brush about 2.5 pixels wide, stamped along the stroke.
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
        ui.panel("pad-buttons", rect: Rect(x: rect.x + padding, y: canvas.maxY + padding, width: rect.width - 2 * padding, height: ui.widgetHeight * 2), options: []) {
            ui.row(.fraction(0.5), .fraction(0.5))
            if ui.button("Clear") {
                pad.pixels = Array(repeating: 0, count: h * w)
                model.setDrawnImage(padBytes(channels: shape[0]))
            }
            if ui.button("Back to data") { model.setDrawnImage(nil); model.selection.image = model.selection.image ?? 0 }
        }
    }

    func stamp(at p: Vec2, w: Int, h: Int) {
        let radius: Float = 1.6
        // The pointer may leave the canvas while drawing: clip the stamp to it.
        let y0 = max(0, Int((p.y - 2).rounded(.down))), y1 = min(h - 1, Int((p.y + 2).rounded(.down)))
        let x0 = max(0, Int((p.x - 2).rounded(.down))), x1 = min(w - 1, Int((p.x + 2).rounded(.down)))
        guard y0 <= y1, x0 <= x1 else { return }
        for y in y0...y1 {
            for x in x0...x1 {
                let d = (Vec2(Float(x) + 0.5, Float(y) + 0.5) - p).length
                let v = max(0, min(1, (radius + 0.5 - d)))
                pad.pixels[y * w + x] = max(pad.pixels[y * w + x], v)
            }
        }
    }

    /// The canvas as bytes in the model's layout (grey replicated for RGB models).
    func padBytes(channels: Int) -> [UInt8] {
        let bytes = pad.pixels.map { UInt8(max(0, min(255, $0 * 255))) }
        return Array([[UInt8]](repeating: bytes, count: channels).joined())
    }
}

