import Foundation
import SlicerEngine
import SlicerInfo
import SlicerUI

struct MatrixState {
    /// Column sorted by (−1: channel order), descending when true.
    var sortColumn = -1
    var descending = true
    var cache: (key: [Int], table: [[Double?]])?
}

struct FeatureMapState {
    var enlarged: Int?
}

extension AppView {
    // MARK: Channel entropy matrix

    func drawRightPanel(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        let tabHeight = ui.widgetHeight + ui.scaled(4)
        ui.panel("right-tabs", rect: Rect(x: rect.x, y: rect.y, width: rect.width, height: tabHeight), options: []) {
            _ = ui.tabBar("right", selection: &rightTab, tabs: ["Channel matrix", "CAR"])
        }
        let body = Rect(x: rect.x, y: rect.y + tabHeight, width: rect.width, height: rect.height - tabHeight)
        if rightTab == 0 {
            drawMatrix(ui, body)
        } else {
            drawCARPanel(ui, body)
        }
        focusFrame(ui, rect, view: 2)
    }

    /// Rows = channels of the selected tap, columns = classes then all/ensemble/information.
    func drawMatrix(_ ui: UIContext, _ rect: Rect) {
        guard let snapshot = model.snapshot, let histograms = snapshot.histograms, let summary = snapshot.summary else {
            ui.drawText("analysing…", in: rect, color: ui.theme.colors.textDim, alignment: .center)
            return
        }
        let tapIndex = min(model.selection.tap, summary.taps.count - 1)
        let tap = summary.taps[tapIndex]
        let channels = tap.channelEnsembleEntropy.count
        let classNames = model.workspace.classNames
        let method = model.selection.method
        let ensemble = method != .instance
        let key = [snapshot.generation, snapshot.progress.imagesDone, tapIndex, ensemble ? 1 : 0]
        let table: [[Double?]]
        if let c = matrix.cache, c.key == key { table = c.table } else {
            table = AnalysisSummary.classChannelTable(histograms, tap: tapIndex, method: ensemble,
                                                      millerMadow: model.selection.settings.millerMadow)
            matrix.cache = (key, table)
        }
        // Columns: one per class, then the whole set's instance, ensemble and label information.
        // CAR joins as a column once it has been computed for this tap (CAR tab).
        let carValues: [Double]? = carRunner.result.flatMap { r in r.tap.index == tapIndex && r.scores.car.count == channels ? r.scores.car : nil }
        let extra = ["inst", "ens", "info"] + (carValues == nil ? [] : ["CAR"])
        let columnCount = classNames.count + extra.count
        func cell(_ c: Int, _ col: Int) -> Double? {
            if col < classNames.count { return table[col][c] }
            switch col - classNames.count {
            case 0: return tap.channelInstanceEntropy[c]
            case 1: return tap.channelEnsembleEntropy[c]
            case 2: return tap.channelLabelInformation[c]
            default: return carValues?[c]
            }
        }
        var order = Array(0..<channels)
        if matrix.sortColumn >= 0 && matrix.sortColumn < columnCount {
            let col = matrix.sortColumn
            order.sort { a, b in
                let x = cell(a, col) ?? -1, y = cell(b, col) ?? -1
                return matrix.descending ? (x > y || (x == y && a < b)) : (x < y || (x == y && a < b))
            }
        }
        let pad = ui.scaled(6)
        let header = ui.lineHeight(.small) * 1.3
        let labelWidth = ui.scaled(34)
        let legendHeight = ui.scaled(34) + ui.lineHeight(.small)
        let grid = Rect(x: rect.x + pad + labelWidth, y: rect.y + header + pad, width: rect.width - 2 * pad - labelWidth,
                        height: rect.height - header - 2 * pad - legendHeight)
        let colWidth = grid.width / Float(columnCount)
        let rowHeight = max(ui.scaled(3), min(ui.scaled(18), grid.height / Float(max(channels, 1))))
        // A window too small for the grid shows nothing rather than negative rows.
        guard grid.width > 0, grid.height > 0 else { return }
        let visibleRows = max(0, min(channels, Int(grid.height / rowHeight)))
        // Colour ranges: classes share one scale; label information has its own.
        let maxValue = max(1e-9, (0..<channels).flatMap { c in (0..<(classNames.count + 2)).compactMap { cell(c, $0) } }.max() ?? 1)
        let maxInfo = max(1e-9, tap.channelLabelInformation.max() ?? 1)
        let maxCAR = max(1e-9, carValues?.map(abs).max() ?? 1)
        for col in 0..<columnCount {
            let r = Rect(x: grid.x + Float(col) * colWidth, y: rect.y + pad, width: colWidth, height: header)
            let name = col < classNames.count ? String(classNames[col].prefix(Int(max(1, colWidth / ui.scaled(7))))) : extra[col - classNames.count]
            let hit = ui.interact("matrix-col-\(col)", rect: r)
            let sorted = matrix.sortColumn == col
            ui.drawText(Substring(name + (sorted ? (matrix.descending ? "▾" : "▴") : "")), in: r, style: .small,
                        color: sorted || hit.isHovered ? ui.theme.colors.text : ui.theme.colors.textDim, alignment: .center)
            if hit.isClicked {
                if sorted { matrix.descending.toggle() } else { matrix.sortColumn = col; matrix.descending = true }
            }
            if hit.isHovered { ui.tooltip(col < classNames.count ? "\(classNames[col]) — click to sort" : ["mean instance entropy", "ensemble entropy", "label information", "CAR (accuracy lost when ablated)"][col - classNames.count] + " — click to sort") }
        }
        let brushed = model.selection.channels
        for row in 0..<visibleRows {
            let c = order[row]
            let y = grid.y + Float(row) * rowHeight
            for col in 0..<columnCount {
                let r = Rect(x: grid.x + Float(col) * colWidth, y: y, width: colWidth - 1, height: rowHeight - (rowHeight > ui.scaled(4) ? 1 : 0))
                let kind = col - classNames.count   // 2: label information, 3: CAR
                let color = cell(c, col).map { v in
                    kind == 2 ? ColorMap.diverging.color(at: 0.5 + 0.5 * Float(v / maxInfo))
                        : kind == 3 ? ColorMap.diverging.color(at: 0.5 + 0.5 * Float(v / maxCAR))
                        : ColorMap.sequential.color(at: Float(v / maxValue))
                } ?? ui.theme.colors.widget
                ui.drawList.fillRect(r, color: color)
            }
            if brushed.contains(c) {
                // A bar beside the row marks it without hiding its colours.
                ui.drawList.fillRect(Rect(x: grid.x - ui.scaled(5), y: y, width: ui.scaled(4), height: max(1, rowHeight - 1)), color: ui.theme.colors.accent)
            }
            if rowHeight >= ui.lineHeight(.small) * 0.8 {
                ui.drawText(Substring(String(c)), in: Rect(x: rect.x + pad, y: y, width: labelWidth - ui.scaled(4), height: rowHeight), style: .small,
                            color: brushed.contains(c) ? ui.theme.colors.text : ui.theme.colors.textDim, alignment: .trailing)
            }
        }
        if visibleRows < channels {
            ui.drawText(Substring("\(channels - visibleRows) more rows"), in: Rect(x: grid.x, y: grid.y + Float(visibleRows) * rowHeight, width: grid.width, height: ui.lineHeight(.small)),
                        style: .small, color: ui.theme.colors.textDim)
        }
        // Brush rows to select channels; click one row to select it; hover reads a cell.
        let gridRect = Rect(x: grid.x, y: grid.y, width: grid.width, height: Float(visibleRows) * rowHeight)
        layout["matrixGrid"] = gridRect
        let result = ui.brush("matrix", in: gridRect, axis: .vertical)
        let rowAt: (Float) -> Int = { y in min(visibleRows - 1, max(0, Int((y - grid.y) / rowHeight))) }
        if let b = result.brush {
            let a = rowAt(b.rect.y), z = rowAt(b.rect.maxY - 1)
            model.selection.channels = Set(order[min(a, z)...max(a, z)])
            focusedView = 2
        } else if result.interaction.isClicked, visibleRows > 0 {
            let c = order[rowAt(ui.input.mousePosition.y)]
            if ui.input.modifiers.contains(.control) || ui.input.modifiers.contains(.shift) {
                if brushed.contains(c) { model.selection.channels.remove(c) } else { model.selection.channels.insert(c) }
            } else {
                model.selection.channels = brushed == [c] ? [] : [c]
            }
            focusedView = 2
        }
        if result.interaction.isHovered && visibleRows > 0 {
            let c = order[rowAt(ui.input.mousePosition.y)]
            let col = min(columnCount - 1, max(0, Int((ui.input.mousePosition.x - grid.x) / colWidth)))
            let name = col < classNames.count ? classNames[col] : ["mean instance", "ensemble", "label information", "CAR"][col - classNames.count]
            ui.tooltip(String(format: "channel %d · %@\n%@ bits", c, name, cell(c, col).map { String(format: "%.3f", $0) } ?? "—"))
        }
        let note = ui.lineHeight(.small)
        let legendRect = Rect(x: grid.x, y: rect.maxY - legendHeight + note, width: min(grid.width, ui.scaled(260)), height: legendHeight - note - pad)
        ui.drawColorLegend(.sequential, range: 0...Float(maxValue), unit: "bits (\(method == .instance ? "instance" : "ensemble"))", in: legendRect)
    }

    // MARK: Feature-map viewer

    func drawFeatureMaps(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        focusFrame(ui, rect, view: 3)
        let pad = ui.scaled(8)
        let infoWidth = ui.scaled(200)
        let info = Rect(x: rect.x + pad, y: rect.y + pad, width: infoWidth, height: rect.height - 2 * pad)
        let grid = Rect(x: info.maxX + pad, y: rect.y + pad, width: rect.maxX - info.maxX - 2 * pad, height: rect.height - 2 * pad)
        guard let maps = model.featureMaps else {
            ui.drawText("running the image…", in: rect, color: ui.theme.colors.textDim, alignment: .center)
            return
        }
        drawImageInfo(ui, info, maps)
        let tapIndex = min(model.selection.tap, maps.taps.count - 1)
        let tap = maps.taps[tapIndex]
        let values = maps.values[tapIndex]
        let entropy = currentImageEntropy()
        let hw = tap.valuesPerChannel
        let side = tap.mapSize
        let brushed = model.selection.channels
        // Brushed channels first, then the rest in order.
        let order = (0..<tap.channels).filter { brushed.contains($0) } + (0..<tap.channels).filter { !brushed.contains($0) }
        lastMapOrder = order
        ui.drawText(Substring("\(tap.name) · \(tap.channels) maps of \(side.0)×\(side.1) · instance entropy in bits"),
                    in: Rect(x: grid.x, y: grid.y, width: grid.width, height: ui.lineHeight(.small)), style: .small, color: ui.theme.colors.textDim)
        let area = Rect(x: grid.x, y: grid.y + ui.lineHeight(.small) + ui.scaled(2), width: grid.width, height: grid.height - ui.lineHeight(.small) - ui.scaled(2))
        if let big = maps_enlarged(tap.channels) {
            drawMap(ui, tap: tapIndex, channel: big, values: values, hw: hw, side: side, in: area.insetBy(ui.scaled(4)), large: true,
                    entropy: entropy?.channels[safe: tapIndex]?[safe: big])
            if ui.interact("enlarged", rect: area).isClicked { self.maps.enlarged = nil }
            return
        }
        // Grid layout: as many columns as fit squares of at least 28 points.
        let count = tap.channels
        let labelHeight = ui.lineHeight(.small)
        var cols = 1
        var cellSize: Float = 0
        for c in stride(from: min(count, 64), through: 1, by: -1) {
            let rows = (count + c - 1) / c
            let size = min(area.width / Float(c), area.height / Float(rows) - 0)
            if size > cellSize { cellSize = size; cols = c }
        }
        cellSize = max(cellSize, ui.scaled(8))
        let showLabels = cellSize > ui.scaled(44)
        let mouse = ui.input.mousePosition
        var hoveredChannel: Int?
        for (slot, c) in order.enumerated() {
            let x = area.x + Float(slot % cols) * cellSize, y = area.y + Float(slot / cols) * cellSize
            guard y + cellSize <= area.maxY + 1 else { break }
            let r = Rect(x: x + 1, y: y + 1, width: cellSize - 2, height: cellSize - 2 - (showLabels ? labelHeight : 0))
            drawMap(ui, tap: tapIndex, channel: c, values: values, hw: hw, side: side, in: r, large: false, entropy: nil)
            if let h = entropy?.channels[safe: tapIndex]?[safe: c], showLabels {
                // "channel · bits" where it fits, else just the bits, else nothing.
                let font = ui.font(.small)
                let candidates = [String(format: "%d · %.2f", c, h), String(format: "%.2f", h)].map { Substring($0) }
                if let text = candidates.first(where: { ui.measurer.width(of: $0, font: font) <= cellSize - ui.scaled(2) }) {
                    ui.drawText(text, in: Rect(x: x, y: r.maxY, width: cellSize, height: labelHeight), style: .small,
                                color: brushed.contains(c) ? ui.theme.colors.text : ui.theme.colors.textDim, alignment: .center)
                }
            }
            if model.selection.mask.channels[tapIndex]?.contains(c) == true {
                ui.drawList.line(from: r.origin, to: Vec2(r.maxX, r.maxY), color: ui.theme.colors.error, thickness: ui.scaled(2))
            }
            if brushed.contains(c) { ui.drawList.strokeRect(r.insetBy(-1), color: ui.theme.colors.accent, thickness: ui.scaled(2)) }
            if Rect(x: x, y: y, width: cellSize, height: cellSize).contains(mouse) { hoveredChannel = c }
        }
        let hit = ui.interact("maps", rect: area)
        if hit.isHovered, let c = hoveredChannel {
            // Histogram of this map's values in the analysis's bins.
            if let hist = entropy?.histograms[safe: tapIndex]?[safe: c] {
                ui.withLayer(.tooltip) {
                    let box = Rect(x: min(mouse.x + ui.scaled(16), ui.displayRect.maxX - ui.scaled(230)), y: max(ui.scaled(4), mouse.y - ui.scaled(120)), width: ui.scaled(220), height: ui.scaled(110))
                    ui.drawList.fillRect(box, color: ui.theme.colors.tooltip, cornerRadius: ui.scaled(4))
                    let bins = hist.count - 1
                    let peak = Float(max(1, hist.prefix(bins).max() ?? 1))
                    let plot = box.insetBy(ui.scaled(8))
                    let barsArea = Rect(x: plot.x, y: plot.y + ui.lineHeight(.small), width: plot.width, height: plot.height - ui.lineHeight(.small))
                    for b in 0..<bins {
                        let h = barsArea.height * Float(hist[b]) / peak
                        ui.drawList.fillRect(Rect(x: barsArea.x + Float(b) * barsArea.width / Float(bins), y: barsArea.maxY - h, width: max(1, barsArea.width / Float(bins) - 0.5), height: h),
                                             color: ui.theme.colors.accent)
                    }
                    let h = entropy?.channels[tapIndex][c] ?? 0
                    ui.drawText(Substring(String(format: "channel %d: %.3f bits", c, h)), in: Rect(x: plot.x, y: plot.y, width: plot.width, height: ui.lineHeight(.small)),
                                style: .small, color: ui.theme.colors.tooltipText)
                }
            }
            if hit.isClicked { self.maps.enlarged = c; focusedView = 3 }
        }
    }

    func maps_enlarged(_ channels: Int) -> Int? {
        guard let e = maps.enlarged, e < channels else { return nil }
        return e
    }

    /// One feature map as a colour-mapped texture (or, for 1×1 maps, a bar).
    func drawMap(_ ui: UIContext, tap: Int, channel c: Int, values: [Float], hw: Int, side: (Int, Int), in r: Rect, large: Bool, entropy: Double?) {
        guard (c + 1) * hw <= values.count else { return }
        let slice = values[(c * hw)..<((c + 1) * hw)]
        let lo = slice.min() ?? 0, hi = slice.max() ?? 0
        if hw == 1 {
            let all = values
            let vmax = max(abs(all.min() ?? 0), abs(all.max() ?? 0), 1e-9)
            ui.drawList.fillRect(r, color: ColorMap.diverging.color(at: 0.5 + 0.5 * slice.first! / vmax))
        } else {
            let version = model.featureMapsVersion
            let id = textures?.textureID(key: "map-\(tap)-\(c)", version: version, width: side.1, height: side.0) {
                ColorMap.sequential.rgba(Array(slice), in: lo...(hi > lo ? hi : lo + 1))
            }
            if let id { ui.drawList.image(id, in: r) }
        }
        if large {
            ui.drawText(Substring(String(format: "channel %d · min %.3g · max %.3g", c, lo, hi) + (entropy.map { String(format: " · %.3f bits", $0) } ?? "") + " — click to go back"),
                        in: Rect(x: r.x, y: r.maxY - ui.lineHeight(), width: r.width, height: ui.lineHeight()), color: ui.theme.colors.text)
        }
    }

    /// The shown image, its label and the top predictions.
    func drawImageInfo(_ ui: UIContext, _ rect: Rect, _ maps: FeatureMaps) {
        let names = model.workspace.classNames
        let input = maps.taps[0]
        let side = min(rect.width, rect.height * 0.55)
        let imageRect = Rect(x: rect.x, y: rect.y, width: side, height: side)
        let values = maps.values[0]
        if input.shape.count == 3, !values.isEmpty {
            let (c, h, w) = (input.shape[0], input.shape[1], input.shape[2])
            let lo = values.min() ?? 0, hi = values.max() ?? 1
            let id = textures?.textureID(key: "shown-image", version: model.featureMapsVersion, width: w, height: h) {
                var rgba = [UInt8](repeating: 255, count: w * h * 4)
                for p in 0..<(w * h) {
                    for k in 0..<3 {
                        let v = values[(c == 3 ? k : 0) * w * h + p]
                        rgba[p * 4 + k] = UInt8(max(0, min(255, (v - lo) / max(hi - lo, 1e-9) * 255)))
                    }
                }
                return rgba
            }
            if let id { ui.drawList.image(id, in: imageRect) }
        }
        var y = imageRect.maxY + ui.scaled(6)
        let line = ui.lineHeight(.small)
        var title = "drawn image"
        if let i = model.selection.image, model.drawnPixels == nil {
            let label = model.workspace.images.labels[i]
            title = "image \(i)" + (label >= 0 && label < names.count ? " · \(names[label])" : "")
        }
        ui.drawText(Substring(title), in: Rect(x: rect.x, y: y, width: rect.width, height: line), style: .small, color: ui.theme.colors.text)
        y += line + ui.scaled(4)
        let top = maps.probabilities.indices.sorted { maps.probabilities[$0] > maps.probabilities[$1] }.prefix(3)
        for k in top {
            let p = maps.probabilities[k]
            ui.drawList.fillRect(Rect(x: rect.x, y: y + 1, width: rect.width * p, height: line - 2), color: CategoricalPalette.standard.color(at: k).withAlpha(0.6))
            ui.drawText(Substring(String(format: "%@ %.1f%%", k < names.count ? names[k] : "\(k)", p * 100)), in: Rect(x: rect.x + ui.scaled(3), y: y, width: rect.width, height: line),
                        style: .small, color: ui.theme.colors.text)
            y += line + ui.scaled(2)
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { index >= 0 && index < count ? self[index] : nil }
}
