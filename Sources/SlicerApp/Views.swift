import Foundation
import SlicerEngine
import SlicerInfo
import SlicerUI

/// Colours of operator types in the strip (chosen from the categorical palette).
@MainActor
func opColor(_ op: String, _ ui: UIContext) -> Color {
    let palette = CategoricalPalette.standard
    switch op {
    case "Input": return ui.theme.colors.textDim
    case "Conv": return palette.color(at: 0)
    case "BatchNormalization": return palette.color(at: 1)
    case "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Softmax": return palette.color(at: 2)
    case "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool": return palette.color(at: 3)
    case "Gemm", "MatMul": return palette.color(at: 4)
    default: return palette.color(at: 6)
    }
}

func shortOp(_ op: String) -> String {
    switch op {
    case "BatchNormalization": return "BN"
    case "GlobalAveragePool": return "GAP"
    case "AveragePool": return "AvgPool"
    default: return op
    }
}

extension AppView {
    /// The value the chart and strip show for one tap under the current method.
    func value(_ t: TapSummary, method: EntropyMethod) -> Double {
        switch method {
        case .instance: return t.instanceEntropy
        case .ensemble: return t.ensembleEntropy
        case .information: return t.labelInformation
        }
    }

    func classValue(_ t: TapSummary, _ k: Int, method: EntropyMethod) -> Double? {
        switch method {
        case .instance: return t.classInstanceEntropy[k]
        case .ensemble: return t.classEnsembleEntropy[k]
        case .information: return nil
        }
    }

    // MARK: Architecture strip

    func drawStrip(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        focusFrame(ui, rect, view: 0)
        let taps = model.network.taps
        guard !taps.isEmpty else { return }
        let pad = ui.scaled(6)
        let inner = rect.insetBy(pad)
        let slot = inner.width / Float(taps.count)
        let maxChannels = Float(taps.map(\.channels).max() ?? 1)
        let maxSide = Float(taps.map { $0.mapSize.width }.max() ?? 1)
        let summary = model.snapshot?.summary
        let method = model.selection.method
        let maxValue = summary.map { s in s.taps.map { value($0, method: method) }.max() ?? 1 } ?? 1
        let labelHeight = ui.lineHeight(.small)
        let blockArea = Rect(x: inner.x, y: inner.y + labelHeight, width: inner.width, height: inner.height - 2 * labelHeight - ui.scaled(8))
        // Blocks (conv → BN → activation → pool): every other run of taps that
        // starts at a convolution or linear layer gets a shaded band behind it.
        var start = 0, group = 0
        for i in 1...taps.count {
            guard i == taps.count || ["Conv", "Gemm", "MatMul"].contains(taps[i].opType) else { continue }
            if group % 2 == 1 {
                ui.drawList.fillRect(Rect(x: inner.x + Float(start) * slot, y: inner.y, width: Float(i - start) * slot, height: inner.height),
                                     color: ui.theme.colors.widget.withAlpha(0.6), cornerRadius: ui.scaled(3))
            }
            group += 1
            start = i
        }
        let interaction = ui.interact("strip", rect: inner)
        var hovered: Int?
        for tap in taps {
            let x = inner.x + Float(tap.index) * slot
            // Height by channels, width by spatial size: the shape reads at a glance.
            let h = max(ui.scaled(6), blockArea.height * (0.25 + 0.75 * (Float(tap.channels) / maxChannels).squareRoot()))
            let side = Float(tap.mapSize.width)
            let w = max(ui.scaled(4), (slot - ui.scaled(3)) * (0.3 + 0.7 * side / maxSide))
            let block = Rect(x: x + (slot - w) / 2, y: blockArea.y + (blockArea.height - h) / 2, width: w, height: h)
            let selected = tap.index == model.selection.tap || (model.selection.tapRange?.contains(tap.index) ?? false)
            var color = opColor(tap.opType, ui)
            if !selected { color = color.withAlpha(0.55) }
            ui.drawList.fillRect(block, color: color, cornerRadius: ui.scaled(2))
            if selected { ui.drawList.strokeRect(block.insetBy(-ui.scaled(2)), color: ui.theme.colors.text, thickness: ui.scaled(2), cornerRadius: ui.scaled(3)) }
            // Entropy mark under the block.
            if let s = summary, tap.index < s.taps.count {
                let v = Float(value(s.taps[tap.index], method: method) / max(maxValue, 1e-9))
                let mark = Rect(x: x + ui.scaled(1), y: inner.maxY - labelHeight - ui.scaled(6), width: max(1, (slot - ui.scaled(2)) * v), height: ui.scaled(4))
                ui.drawList.fillRect(mark, color: ColorMap.sequential.color(at: v))
            }
            // Labels only where they fit: narrow slots keep the strip readable.
            let font = ui.font(.small)
            let op = Substring(shortOp(tap.opType))
            if ui.measurer.width(of: op, font: font) <= slot - ui.scaled(2) {
                ui.drawText(op, in: Rect(x: x, y: inner.y, width: slot, height: labelHeight), style: .small,
                            color: ui.theme.colors.textDim, alignment: .center)
            }
            let shape = Substring(tap.shape.map(String.init).joined(separator: "×"))
            let compact = Substring(tap.shape.count == 3 && tap.shape[1] == tap.shape[2] ? "\(tap.shape[0])·\(tap.shape[1])²" : "\(tap.shape[0])")
            for text in [shape, compact] where ui.measurer.width(of: text, font: font) <= slot - ui.scaled(2) {
                ui.drawText(text, in: Rect(x: x, y: inner.maxY - labelHeight, width: slot, height: labelHeight),
                            style: .small, color: ui.theme.colors.textDim, alignment: .center)
                break
            }
            if interaction.isHovered && ui.input.mousePosition.x >= x && ui.input.mousePosition.x < x + slot { hovered = tap.index }
        }
        let tapAt: (Float) -> Int = { px in min(taps.count - 1, max(0, Int((px - inner.x) / slot))) }
        if interaction.isDragging {
            let a = tapAt(interaction.pressPosition.x), b = tapAt(ui.input.mousePosition.x)
            model.selection.tapRange = min(a, b)...max(a, b)
            model.selection.tap = b
        } else if interaction.isClicked {
            model.selection.tap = tapAt(ui.input.mousePosition.x)
            model.selection.tapRange = nil
            model.selection.channels = []
            focusedView = 0
        }
        if let h = hovered {
            let tap = taps[h]
            var text = "\(tap.name)\n\(tap.opType), \(tap.shape.map(String.init).joined(separator: "×"))"
            if let s = summary, h < s.taps.count {
                let t = s.taps[h]
                text += String(format: "\ninstance %.3f bits, ensemble %.3f bits, label information %.3f bits", t.instanceEntropy, t.ensembleEntropy, t.labelInformation)
            }
            ui.tooltip(text)
        }
    }

    // MARK: Entropy line chart

    func drawChart(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        focusFrame(ui, rect, view: 1)
        let pad = ui.scaled(8)
        let method = model.selection.method
        let title = "\(method.title) entropy per tap (bits)"
        ui.drawText(Substring(title), in: Rect(x: rect.x + pad, y: rect.y + pad / 2, width: rect.width - 2 * pad, height: ui.lineHeight()),
                    style: .body, color: ui.theme.colors.text)
        guard let summary = model.snapshot?.summary, !summary.taps.isEmpty else {
            ui.drawText("analysing…", in: rect, color: ui.theme.colors.textDim, alignment: .center)
            return
        }
        let taps = summary.taps
        let legendWidth = ui.scaled(150)
        let plot = Rect(x: rect.x + ui.scaled(44), y: rect.y + ui.lineHeight() + pad, width: rect.width - ui.scaled(52) - legendWidth,
                        height: rect.height - ui.lineHeight() * 2 - pad * 2.5)
        let classNames = model.workspace.classNames
        let palette = CategoricalPalette.standard
        // Series: whole set, classes, brushed set, the shown image, and the ceiling.
        var maxY = taps.map { value($0, method: method) }.max() ?? 1
        if method == .instance { maxY = max(maxY, taps.map(\.instanceCeiling).max() ?? 0) }
        for t in taps { for k in classNames.indices { if let v = classValue(t, k, method: method) { maxY = max(maxY, v) } } }
        maxY = max(0.5, (maxY * 1.08).rounded(.up))
        let xOf: (Int) -> Float = { i in plot.x + (taps.count > 1 ? Float(i) / Float(taps.count - 1) : 0.5) * plot.width }
        let yOf: (Double) -> Float = { v in plot.maxY - Float(v / maxY) * plot.height }
        let ticks = niceTicks(in: 0...maxY, maxCount: 5)
        for v in ticks.values {
            let y = yOf(v)
            ui.drawList.line(from: Vec2(plot.x, y), to: Vec2(plot.maxX, y), color: ui.theme.colors.gridLine)
            ui.drawText(Substring(formatNumber(v, decimals: ticks.decimals)), in: Rect(x: rect.x, y: y - ui.lineHeight(.small) / 2, width: plot.x - rect.x - ui.scaled(4), height: ui.lineHeight(.small)),
                        style: .small, color: ui.theme.colors.textDim, alignment: .trailing)
        }
        // Selected tap (and range) as a band.
        let sel = model.selection
        let range = sel.tapRange ?? sel.tap...sel.tap
        let bandX0 = xOf(range.lowerBound) - ui.scaled(3), bandX1 = xOf(range.upperBound) + ui.scaled(3)
        ui.drawList.fillRect(Rect(x: bandX0, y: plot.y, width: bandX1 - bandX0, height: plot.height), color: ui.theme.colors.selection.withAlpha(0.5))
        if method == .instance {
            ui.drawList.polyline(taps.indices.map { Vec2(xOf($0), yOf(taps[$0].instanceCeiling)) }, color: ui.theme.colors.textDim, thickness: ui.scaled(1))
        }
        var hoverClass: Int?
        let mouse = ui.input.mousePosition
        for k in classNames.indices where method != .information && (showClassLines || sel.classes.contains(k)) {
            let highlighted = sel.classes.isEmpty || sel.classes.contains(k)
            let points = taps.indices.compactMap { i in classValue(taps[i], k, method: method).map { Vec2(xOf(i), yOf($0)) } }
            guard points.count == taps.count else { continue }
            ui.drawList.polyline(points, color: palette.color(at: k).withAlpha(highlighted ? 0.9 : 0.25), thickness: ui.scaled(highlighted && !sel.classes.isEmpty ? 2.5 : 1.2))
            if plot.contains(mouse), points.contains(where: { abs($0.x - mouse.x) < ui.scaled(20) && abs($0.y - mouse.y) < ui.scaled(5) }) { hoverClass = k }
        }
        ui.drawList.polyline(taps.indices.map { Vec2(xOf($0), yOf(value(taps[$0], method: method))) }, color: ui.theme.colors.text, thickness: ui.scaled(3))
        if let sub = model.subsetSummary, sub.taps.count == taps.count {
            ui.drawList.polyline(taps.indices.map { Vec2(xOf($0), yOf(value(sub.taps[$0], method: method))) }, color: ui.theme.colors.accent, thickness: ui.scaled(2.5))
        }
        let imageLine = shownImageEntropy()
        if method == .instance, let line = imageLine, line.count == taps.count {
            let pts = taps.indices.map { Vec2(xOf($0), yOf(line[$0])) }
            ui.drawList.polyline(pts, color: ui.theme.colors.error, thickness: ui.scaled(2))
            for p in pts { ui.drawList.fillCircle(center: p, radius: ui.scaled(2.5), color: ui.theme.colors.error) }
        }
        // Axis labels.
        ui.drawText("taps →", in: Rect(x: plot.x, y: plot.maxY + ui.scaled(2), width: plot.width, height: ui.lineHeight(.small)), style: .small,
                    color: ui.theme.colors.textDim, alignment: .center)
        // Legend: clicking a class selects it everywhere.
        let legend = Rect(x: plot.maxX + ui.scaled(10), y: plot.y, width: legendWidth - ui.scaled(12), height: plot.height)
        var y = legend.y
        let row = ui.lineHeight(.small) + ui.scaled(2)
        let entries: [(String, Color)] = [("all images", ui.theme.colors.text)]
            + (sel.brushedImages.isEmpty ? [] : [("brushed (\(sel.brushedImages.count))", ui.theme.colors.accent)])
            + (method == .instance && imageLine != nil ? [("shown image", ui.theme.colors.error)] : [])
            + (method == .instance ? [("ceiling log2 min(B,H·W)", ui.theme.colors.textDim)] : [])
        for (name, color) in entries {
            ui.drawList.fillRect(Rect(x: legend.x, y: y + row / 2 - ui.scaled(1.5), width: ui.scaled(14), height: ui.scaled(3)), color: color)
            ui.drawText(Substring(name), in: Rect(x: legend.x + ui.scaled(18), y: y, width: legend.width, height: row), style: .small, color: ui.theme.colors.textDim)
            y += row
        }
        if method != .information {
            for k in classNames.indices where y + row <= legend.maxY {
                let r = Rect(x: legend.x, y: y, width: legend.width, height: row)
                let hit = ui.interact("class-legend-\(k)", rect: r)
                let on = sel.classes.contains(k)
                ui.drawList.fillRect(Rect(x: r.x, y: r.y + row / 2 - ui.scaled(1.5), width: ui.scaled(14), height: ui.scaled(3)), color: palette.color(at: k))
                ui.drawText(Substring(classNames[k]), in: Rect(x: r.x + ui.scaled(18), y: r.y, width: r.width, height: row), style: .small,
                            color: on || hit.isHovered ? ui.theme.colors.text : ui.theme.colors.textDim)
                if hit.isClicked { toggleClass(k) }
                y += row
            }
        }
        // Hover read-out and click to select a tap.
        let hit = ui.interact("chart", rect: plot)
        if hit.isHovered {
            let i = min(taps.count - 1, max(0, Int(((mouse.x - plot.x) / max(plot.width, 1)) * Float(taps.count - 1) + 0.5)))
            ui.drawList.line(from: Vec2(xOf(i), plot.y), to: Vec2(xOf(i), plot.maxY), color: ui.theme.colors.textDim)
            var text = String(format: "%@\nall: %.3f bits", taps[i].name, value(taps[i], method: method))
            if let k = hoverClass, let v = classValue(taps[i], k, method: method) { text += String(format: "\n%@: %.3f bits (click: select class)", classNames[k], v) }
            if let sub = model.subsetSummary, i < sub.taps.count { text += String(format: "\nbrushed: %.3f bits", value(sub.taps[i], method: method)) }
            if method == .instance, let line = imageLine, i < line.count { text += String(format: "\nshown image: %.3f bits", line[i]) }
            if method == .instance { text += String(format: "\nceiling: %.3f bits", taps[i].instanceCeiling) }
            ui.tooltip(text)
            if hit.isClicked {
                if let k = hoverClass { toggleClass(k) } else {
                    model.selection.tap = i
                    model.selection.tapRange = nil
                    model.selection.channels = []
                }
                focusedView = 1
            }
        }
    }

    func toggleClass(_ k: Int) {
        if model.selection.classes.contains(k) { model.selection.classes.remove(k) } else { model.selection.classes.insert(k) }
        // A selected class brushes its images, so every view shows that set.
        let labels = model.workspace.images.labels
        let classes = model.selection.classes
        model.selection.brushedImages = classes.isEmpty ? [] : Set(labels.indices.filter { classes.contains(labels[$0]) })
    }

    /// Layer-level instance entropy of the shown image per tap.
    func shownImageEntropy() -> [Double]? {
        if let image = model.selection.image, model.drawnPixels == nil, let store = model.snapshot?.store, store.isComplete(image) {
            return (0..<store.tapCount).map { Double(store.layerEntropy(image: image, tap: $0)) }
        }
        return currentImageEntropy()?.layer
    }

    func currentImageEntropy() -> ImageEntropy? {
        guard let maps = model.featureMaps, let snapshot = model.snapshot, let ranges = snapshot.ranges else { return nil }
        let key = [model.featureMapsVersion, snapshot.generation]
        if let cached = imageEntropyCache, cached.key == key { return cached.value }
        let value = ImageEntropy(maps: maps, ranges: ranges, settings: model.selection.settings)
        imageEntropyCache = (key, value)
        return value
    }
}
