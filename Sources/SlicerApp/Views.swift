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
            // From the strip's top edge, so it stays over the strip instead of the chart's lines below.
            ui.tooltip(text, near: Vec2(ui.input.mousePosition.x, rect.y))
        }
    }

    // MARK: Entropy line chart

    func drawChart(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        focusFrame(ui, rect, view: 1)
        let pad = ui.scaled(8)
        let line = ui.lineHeight(.small)
        let method = model.selection.method
        let titleRect = Rect(x: rect.x + pad, y: rect.y + pad / 2, width: rect.width - 2 * pad, height: ui.lineHeight())
        // Label information is a difference of entropies, not an entropy: its title says so.
        let quantity = method == .information ? "Label information" : method == .instance ? "Instance entropy" : "Ensemble entropy"
        statusLine(ui, ["\(quantity) per tap (bits)", "\(quantity) (bits)"],
                   in: titleRect, color: ui.theme.colors.text, style: .body)
        guard let summary = model.snapshot?.summary, !summary.taps.isEmpty else {
            ui.drawText("analysing…", in: rect, color: ui.theme.colors.textDim, alignment: .center)
            return
        }
        let taps = summary.taps
        let sel = model.selection
        let classNames = model.workspace.classNames
        let palette = ui.theme.classPalette
        let imageLine = method == .instance ? shownImageEntropy().flatMap { $0.count == taps.count ? $0 : nil } : nil
        let subset = model.subsetSummary.flatMap { $0.taps.count == taps.count ? $0 : nil }

        // Series, in legend order. The legend's rows do not depend on clicks (a class
        // toggled brushes its images, and the "brushed" row is always there), so the
        // entry under the pointer stays under it.
        var series: [ChartSeries] = [ChartSeries(id: .all, names: ["all images", "all"], color: ui.theme.colors.text,
                                                 values: taps.map { value($0, method: method) }, thickness: 3)]
        series.append(ChartSeries(id: .brushed, names: sel.brushedImages.isEmpty ? ["brushed images (none)", "brushed (none)", "brushed"]
                                    : ["brushed (\(sel.brushedImages.count) images)", "brushed (\(sel.brushedImages.count))", "brushed"],
                                  color: ui.theme.colors.accent, values: subset.map { s in s.taps.map { value($0, method: method) } }, thickness: 2.5))
        if method == .instance {
            series.append(ChartSeries(id: .image, names: ["shown image", "image"], color: ui.theme.colors.error, values: imageLine, thickness: 2))
            series.append(ChartSeries(id: .ceiling, names: ["ceiling log2 min(B, C·H·W)", "ceiling"], color: ui.theme.colors.textDim,
                                      values: taps.map(\.instanceCeiling), thickness: 1))
        }
        if method != .information {
            for k in classNames.indices {
                let values = taps.compactMap { classValue($0, k, method: method) }
                let highlighted = sel.classes.isEmpty || sel.classes.contains(k)
                series.append(ChartSeries(id: .cls(k), names: classNameAlternatives(classNames[k]) + ["\(k)"], color: palette.color(at: k).withAlpha(highlighted ? 0.95 : 0.3),
                                          values: values.count == taps.count && (showClassLines || sel.classes.contains(k)) ? values : nil,
                                          thickness: highlighted && !sel.classes.isEmpty ? 2.5 : 1.3))
            }
        }

        // Legend outside the plot, at the right: name, and the value at the hovered tap.
        let font = ui.font(.small)
        let valueWidth = ui.measurer.width(of: "00.000", font: font)
        let nameWidth = series.map { ui.measurer.width(of: $0.names[0][...], font: font) }.max() ?? 0
        let legendWidth = min(rect.width * 0.38, ui.scaled(22) + nameWidth + valueWidth + ui.scaled(8))
        let body = Rect(x: rect.x + pad, y: titleRect.maxY + ui.scaled(4), width: rect.width - 2 * pad, height: rect.maxY - titleRect.maxY - ui.scaled(4) - pad)
        let legendRect = Rect(x: body.maxX - legendWidth, y: body.y, width: legendWidth, height: body.height)

        // The value axis fitted to what is drawn (label information: 0–0.17, not 0–1).
        var maxY = 0.0
        for s in series { if let v = s.values { maxY = max(maxY, v.max() ?? 0) } }
        maxY = max(maxY, 1e-3)
        let axisFont = ui.measurer
        var ticks = niceTicks(in: 0...(maxY * 1.04), maxCount: 5)
        let top = max(maxY * 1.04, ticks.values.last ?? 0)
        let axisWidth = (ticks.values.map { axisFont.width(of: formatNumber($0, decimals: ticks.decimals)[...], font: font) }.max() ?? 0) + ui.scaled(8)
        let plotX = body.x + axisWidth
        let plotWidth = legendRect.x - ui.scaled(12) - plotX
        guard plotWidth > ui.scaled(40) else { return }
        // Tap names under the plot: upright where they fit, else turned up and thinned.
        let xOfPlot: (Int, Float, Float) -> Float = { i, x, w in x + (taps.count > 1 ? Float(i) / Float(taps.count - 1) : 0.5) * w }
        let labels = taps.indices.map { i in
            AxisLabel(position: xOfPlot(i, plotX, plotWidth), texts: tapLabelTexts(taps[i].name, index: i, op: taps[i].op),
                      isEmphasized: i == sel.tap)
        }
        let labelLayout = ui.layoutCategoryLabels(labels, maxHeight: min(body.height * 0.35, ui.scaled(150)))
        let plot = Rect(x: plotX, y: body.y + line / 2, width: plotWidth, height: body.height - line / 2 - labelLayout.height - ui.scaled(4))
        guard plot.height > ui.scaled(30) else { return }
        ticks = niceTicks(in: 0...top, maxCount: max(2, min(6, Int(plot.height / (line * 2)))))
        let yTop = max(top, ticks.values.last ?? top)
        let xOf: (Int) -> Float = { i in xOfPlot(i, plot.x, plot.width) }
        let yOf: (Double) -> Float = { v in plot.maxY - Float(v / yTop) * plot.height }
        ui.drawValueTicks(ticks, plot: plot, labels: Rect(x: body.x, y: plot.y, width: axisWidth - ui.scaled(6), height: plot.height), position: yOf)
        let drawnLabels = ui.drawCategoryLabels(labels, layout: labelLayout, top: plot.maxY + ui.scaled(3), emphasisColor: ui.theme.colors.text)
        layout["chartPlot"] = plot
        chart.yTop = yTop
        chart.axisLabels = drawnLabels.compactMap { i in
            labelLayout.choices[i].map { c in
                let length = ui.measurer.width(of: labels[i].texts[c][...], font: font)
                return labelLayout.isVertical
                    ? Rect(x: labels[i].position - line / 2, y: plot.maxY + ui.scaled(3), width: line, height: length)
                    : Rect(x: labels[i].position - length / 2, y: plot.maxY + ui.scaled(3), width: length, height: line)
            }
        }

        // Selected tap (and range) as a band.
        let range = sel.tapRange ?? sel.tap...sel.tap
        let bandX0 = xOf(range.lowerBound) - ui.scaled(3), bandX1 = xOf(range.upperBound) + ui.scaled(3)
        ui.drawList.fillRect(Rect(x: bandX0, y: plot.y, width: bandX1 - bandX0, height: plot.height), color: ui.theme.colors.selection.withAlpha(0.5))

        // The line under the pointer: nearest to any segment (not only vertices).
        let mouse = ui.input.mousePosition
        let polylines = series.map { s in s.values.map { v in v.indices.map { Vec2(xOf($0), yOf(v[$0])) } } }
        chart.lines = [:]
        for (s, points) in zip(series, polylines) { chart.lines[s.id] = points }
        var nearest: (index: Int, distance: Float)?
        if plot.insetBy(-ui.scaled(4)).contains(mouse) {
            for (i, points) in polylines.enumerated() {
                guard let points, series[i].id != .ceiling else { continue }
                let d = distance(from: mouse, toPolyline: points)
                if d <= ui.scaled(7), d < nearest?.distance ?? .infinity { nearest = (i, d) }
            }
        }
        chart.hovered = nearest.map { series[$0.index].id }
        // Draw: classes first, then the ceiling, the image, brushed and all images on top; the hovered line last.
        let drawOrder = series.indices.filter { if case .cls = series[$0].id { return true } else { return false } }
            + series.indices.filter { if case .cls = series[$0].id { return false } else { return true } }.reversed()
        for i in drawOrder where i != nearest?.index {
            guard let points = polylines[i] else { continue }
            ui.drawList.polyline(points, color: series[i].color, thickness: ui.scaled(series[i].thickness))
        }
        if let n = nearest, let points = polylines[n.index] {
            ui.drawList.polyline(points, color: series[n.index].color.withAlpha(1), thickness: ui.scaled(max(series[n.index].thickness, 2) + 1.5))
        }
        if let image = series.first(where: { $0.id == .image }), let points = polylines[series.firstIndex(where: { $0.id == .image })!], image.values != nil {
            for p in points { ui.drawList.fillCircle(center: p, radius: ui.scaled(2.5), color: image.color) }
        }

        // Hover: a guide at the nearest tap; the legend reads the values there.
        let hit = ui.interact("chart", rect: plot)
        var hoveredTap: Int?
        if hit.isHovered {
            let i = min(taps.count - 1, max(0, Int(((mouse.x - plot.x) / max(plot.width, 1)) * Float(max(taps.count - 1, 1)) + 0.5)))
            hoveredTap = i
            ui.drawList.line(from: Vec2(xOf(i), plot.y), to: Vec2(xOf(i), plot.maxY), color: ui.theme.colors.textDim)
            if hit.isClicked {
                if let n = nearest, case .cls(let k) = series[n.index].id { toggleClass(k) } else {
                    model.selection.tap = i
                    model.selection.tapRange = nil
                    model.selection.channels = []
                }
                focusedView = 1
            }
        }
        drawChartLegend(ui, legendRect, series: series, tap: hoveredTap ?? sel.tap, taps: taps, hovered: nearest?.index)
    }

    /// The legend beside the plot: a row per series with its value at `tap`; class rows
    /// toggle the class everywhere. It scrolls when the classes do not fit.
    private func drawChartLegend(_ ui: UIContext, _ rect: Rect, series: [ChartSeries], tap: Int, taps: [TapSummary], hovered: Int?) {
        let line = ui.lineHeight(.small)
        let font = ui.font(.small)
        let row = line + ui.scaled(2)
        // The line under the pointer, named; else how to use the legend.
        let name = hovered.map { series[$0].names[0] }
        let headerTexts = name.map { ["\($0) at \(taps[tap].name)", "\($0)", series[hovered!].names.last!] }
            ?? ["at \(taps[tap].name) · click a class to select it", "at \(taps[tap].name)", "at tap \(tap)"]
        statusLine(ui, headerTexts, in: Rect(x: rect.x, y: rect.y, width: rect.width, height: line), color: ui.theme.colors.text)
        let list = Rect(x: rect.x, y: rect.y + row, width: rect.width, height: rect.height - row)
        layout["chartLegend"] = list
        ui.beginPanel("chart-legend", rect: list, options: [.scrollable])
        let content = ui.cell(height: .points(Float(series.count) * row / ui.scale))
        // Values at the hovered tap where there is room; names come first: without room
        // for both, a name that says something beats a number beside an index.
        let valueWidth = ui.measurer.width(of: "00.000", font: font)
        let nameSpace = content.width - ui.scaled(24)
        let showValues = series.allSatisfy { s in ui.fits(s.names[min(1, s.names.count - 1)], width: nameSpace - valueWidth) }
        chart.legendRows = [:]
        for (i, s) in series.enumerated() {
            let r = Rect(x: content.x, y: content.y + Float(i) * row, width: content.width, height: row)
            chart.legendRows[s.id] = r
            var on = false
            var hit: Interaction?
            if case .cls(let k) = s.id {
                hit = ui.interact("class-legend-\(k)", rect: r)
                on = model.selection.classes.contains(k)
                if hit?.isClicked == true { toggleClass(k) }
            }
            if hovered == i || hit?.isHovered == true || on {
                ui.drawList.fillRect(r, color: (on ? ui.theme.colors.selection : ui.theme.colors.widgetHovered), cornerRadius: ui.scaled(2))
            }
            ui.drawList.fillRect(Rect(x: r.x + ui.scaled(2), y: r.y + row / 2 - ui.scaled(1.5), width: ui.scaled(14), height: ui.scaled(3)),
                                 color: s.values == nil ? s.color.withAlpha(0.35) : s.color)
            let nameRect = Rect(x: r.x + ui.scaled(20), y: r.y, width: nameSpace - (showValues ? valueWidth : 0), height: row)
            let color = s.values == nil ? ui.theme.colors.textDisabled : (hovered == i || on ? ui.theme.colors.text : ui.theme.colors.textDim)
            statusLine(ui, s.names, in: nameRect, color: color)
            if showValues, let v = s.values?[safe: tap] {
                let text = formatNumber(v, decimals: 3)
                let w = ui.measurer.width(of: text[...], font: font)
                ui.drawList.text(text, at: Vec2(r.maxX - w - ui.scaled(2), r.y + (row - line) / 2), font: font, color: color, measurer: ui.measurer)
            }
        }
        ui.endPanel()
    }

    /// A tap's name for the x axis, from the full name to shorter forms: the last
    /// parts of a path-like name ("/layer1/layer1.0/conv1/Conv" → "conv1/Conv"), then its index.
    func tapLabelTexts(_ name: String, index: Int, op: String) -> [String] {
        // Long operator names in tap names read as their usual abbreviations.
        var short = name
        for (long, abbreviation) in [("BatchNormalization", "BN"), ("GlobalAveragePool", "GAP"), ("AveragePool", "AvgPool")] {
            short = short.replacingOccurrences(of: long, with: abbreviation)
        }
        let parts = short.split(separator: "/").map(String.init)
        return [short, parts.count > 2 ? parts.suffix(2).joined(separator: "/") : short, "\(index) \(shortOp(op))", String(index)]
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

struct ChartState {
    /// The line under the pointer in the last frame (named in the legend).
    var hovered: ChartSeries.ID?
    /// What the last frame drew (tests): the value axis's top, each line's points,
    /// the legend's rows and the tap names' boxes.
    var yTop = 0.0
    var lines: [ChartSeries.ID: [Vec2]] = [:]
    var legendRows: [ChartSeries.ID: Rect] = [:]
    var axisLabels: [Rect] = []
}

/// One line of the entropy chart.
struct ChartSeries {
    enum ID: Hashable { case all, brushed, image, ceiling, cls(Int) }
    let id: ID
    /// The name and shorter forms, for a narrow legend.
    let names: [String]
    let color: Color
    /// One value per tap; nil when the line is not drawn (no brushed images, class lines off).
    let values: [Double]?
    let thickness: Float
}

/// Shortest distance from `p` to a polyline, along its segments.
func distance(from p: Vec2, toPolyline points: [Vec2]) -> Float {
    guard let first = points.first else { return .infinity }
    if points.count == 1 { return (p - first).length }
    var best = Float.infinity
    for (a, b) in zip(points, points.dropFirst()) {
        let ab = b - a
        let t = max(0, min(1, ab.dot(ab) > 0 ? (p - a).dot(ab) / ab.dot(ab) : 0))
        best = min(best, (p - (a + ab * t)).length)
    }
    return best
}
