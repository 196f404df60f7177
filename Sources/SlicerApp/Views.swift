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

    // MARK: Entropy line chart

    func drawChart(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        focusFrame(ui, rect, view: 1)
        let pad = ui.scaled(8)
        let line = ui.lineHeight(.small)
        let method = model.selection.method
        var titleRect = Rect(x: rect.x + pad, y: rect.y + pad / 2, width: rect.width - 2 * pad, height: ui.lineHeight())
        // Label information is a difference of entropies, not an entropy: its title says so.
        let quantity = method == .information ? "Label information" : method == .instance ? "Instance entropy" : "Ensemble entropy"
        // The chart shows the taps the strip shows (linked views): zoomed to a block there, the
        // chart's axis is that block's taps, its title says which, and "all taps" goes back.
        let shown = chartTapRange()
        let tapCount = model.network.taps.count
        chart.shownTaps = shown
        chart.allButton = nil
        if shown.count < tapCount {
            let text = "all taps"
            let w = ui.textWidth(text) + 2 * ui.scaled(ui.theme.padding) + ui.scaled(6)
            let button = Rect(x: titleRect.maxX - w, y: titleRect.y + ui.scaled(1), width: w, height: titleRect.height - ui.scaled(2))
            chart.allButton = button
            if ui.button(text, rect: button) {
                strip.span = nil
                strip.start = 0
                focusedView = 1
                ui.requestFrame()
            }
            ui.tooltip("show all \(tapCount) taps here and in the strip (0 in the strip)")
            titleRect.width -= w + ui.scaled(8)
            let range = "taps \(shown.lowerBound)–\(shown.upperBound) of \(tapCount)"
            let block = stripGroups().levels.reversed().lazy.flatMap { $0 }.first { $0.taps == shown }
            var titles: [String] = []
            if let block {
                titles += ["\(quantity) per tap (bits) · \(block.path), \(range)", "\(quantity) (bits) · \(block.labels[0]), \(range)",
                           "\(quantity) (bits) · \(block.labels[0])"]
            }
            titles += ["\(quantity) per tap (bits) · \(range)", "\(quantity) (bits) · \(range)",
                       "\(quantity) · taps \(shown.lowerBound)–\(shown.upperBound)", "\(quantity) (bits)"]
            statusLine(ui, titles, in: titleRect, color: ui.theme.colors.text, style: .body)
        } else {
            statusLine(ui, ["\(quantity) per tap (bits)", "\(quantity) (bits)"],
                       in: titleRect, color: ui.theme.colors.text, style: .body)
        }
        titleRect.width = rect.width - 2 * pad
        guard let summary = model.snapshot?.summary, !summary.taps.isEmpty else {
            ui.drawText("analysing…", in: rect, color: ui.theme.colors.textDim, alignment: .center)
            return
        }
        let taps = summary.taps
        guard shown.upperBound < taps.count else { return }
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
        // Class lines: every class for a few classes; for many (ImageNet's 1,000) the few that
        // differ most from all images, then the classes the user chose or selected.
        let many = classNames.count > ChartState.everyClassUpTo
        let shownClasses = method == .information ? [] : chartClasses(taps: taps, method: method)
        for (slot, k) in shownClasses.enumerated() {
            let values = taps.compactMap { classValue($0, k, method: method) }
            let highlighted = sel.classes.isEmpty || sel.classes.contains(k)
            // Many classes take their colours in legend order: distinct among the lines shown.
            let color = palette.color(at: many ? slot : k)
            series.append(ChartSeries(id: .cls(k), names: classNameAlternatives(classNames[k]) + ["\(k)"], color: color.withAlpha(highlighted ? 0.95 : 0.3),
                                      values: values.count == taps.count && (showClassLines || sel.classes.contains(k)) ? values : nil,
                                      thickness: highlighted && !sel.classes.isEmpty ? 2.5 : 1.3))
        }

        // Legend outside the plot, at the right: name, and the value at the hovered tap.
        let font = ui.font(.small)
        let valueWidth = ui.measurer.width(of: "00.000", font: font)
        let nameWidth = series.map { ui.measurer.width(of: $0.names[0][...], font: font) }.max() ?? 0
        let legendWidth = min(rect.width * 0.38, ui.scaled(22) + nameWidth + valueWidth + ui.scaled(8))
        let body = Rect(x: rect.x + pad, y: titleRect.maxY + ui.scaled(4), width: rect.width - 2 * pad, height: rect.maxY - titleRect.maxY - ui.scaled(4) - pad)
        let legendRect = Rect(x: body.maxX - legendWidth, y: body.y, width: legendWidth, height: body.height)

        // The value axis fitted to what is drawn (label information: 0–0.17, not 0–1; a block's taps).
        var maxY = 0.0
        for s in series { if let v = s.values { maxY = max(maxY, v[shown].max() ?? 0) } }
        maxY = max(maxY, 1e-3)
        let axisFont = ui.measurer
        var ticks = niceTicks(in: 0...(maxY * 1.04), maxCount: 5)
        let top = max(maxY * 1.04, ticks.values.last ?? 0)
        let axisWidth = (ticks.values.map { axisFont.width(of: formatNumber($0, decimals: ticks.decimals)[...], font: font) }.max() ?? 0) + ui.scaled(8)
        let plotX = body.x + axisWidth
        let plotWidth = legendRect.x - ui.scaled(12) - plotX
        guard plotWidth > ui.scaled(40) else { return }
        // Tap names under the plot: upright where they fit, else turned up and thinned.
        let first = shown.lowerBound, last = shown.count - 1
        let xOfPlot: (Int, Float, Float) -> Float = { i, x, w in x + (last > 0 ? Float(i - first) / Float(last) : 0.5) * w }
        let labels = shown.map { i in
            AxisLabel(position: xOfPlot(i, plotX, plotWidth), texts: tapLabelTexts(taps[i].name, index: i, op: taps[i].op),
                      isEmphasized: i == sel.tap)
        }
        let labelLayout = ui.layoutCategoryLabels(labels, maxHeight: min(body.height * 0.35, ui.scaled(150)))
        // Too many taps to name even every other one (a ResNet's 175): the axis names the
        // network's blocks under their spans instead, and the selected tap on a line below.
        let blocks = labelLayout.stride > 2 ? axisBlocks(shown) : nil
        let axisHeight = blocks == nil ? labelLayout.height : 2 * line + ui.scaled(4)
        let plot = Rect(x: plotX, y: body.y + line / 2, width: plotWidth, height: body.height - line / 2 - axisHeight - ui.scaled(4))
        guard plot.height > ui.scaled(30) else { return }
        ticks = niceTicks(in: 0...top, maxCount: max(2, min(6, Int(plot.height / (line * 2)))))
        let yTop = max(top, ticks.values.last ?? top)
        let xOf: (Int) -> Float = { i in xOfPlot(i, plot.x, plot.width) }
        let yOf: (Double) -> Float = { v in plot.maxY - Float(v / yTop) * plot.height }
        ui.drawValueTicks(ticks, plot: plot, labels: Rect(x: body.x, y: plot.y, width: axisWidth - ui.scaled(6), height: plot.height), position: yOf)
        layout["chartPlot"] = plot
        chart.yTop = yTop
        if let blocks {
            chart.axisLabels = drawBlockAxis(ui, blocks: blocks, plot: plot, xOf: xOf, tap: sel.tap, taps: taps, shown: shown)
        } else {
            let drawnLabels = ui.drawCategoryLabels(labels, layout: labelLayout, top: plot.maxY + ui.scaled(3), emphasisColor: ui.theme.colors.text)
            chart.axisLabels = drawnLabels.compactMap { i in
                labelLayout.choices[i].map { c in
                    let length = ui.measurer.width(of: labels[i].texts[c][...], font: font)
                    return labelLayout.isVertical
                        ? Rect(x: labels[i].position - line / 2, y: plot.maxY + ui.scaled(3), width: line, height: length)
                        : Rect(x: labels[i].position - length / 2, y: plot.maxY + ui.scaled(3), width: length, height: line)
                }
            }
        }

        // Selected tap (and range) as a band, where it is among the taps shown.
        let range = sel.tapRange ?? sel.tap...sel.tap
        if range.overlaps(shown) {
            let bandX0 = max(plot.x, xOf(max(range.lowerBound, first)) - ui.scaled(3)), bandX1 = min(plot.maxX, xOf(min(range.upperBound, shown.upperBound)) + ui.scaled(3))
            ui.drawList.fillRect(Rect(x: bandX0, y: plot.y, width: bandX1 - bandX0, height: plot.height), color: ui.theme.colors.selection.withAlpha(0.5))
        }

        // The line under the pointer: nearest to any segment (not only vertices).
        let mouse = ui.input.mousePosition
        let polylines = series.map { s in s.values.map { v in shown.map { Vec2(xOf($0), yOf(v[$0])) } } }
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
            let i = first + min(last, max(0, Int(((mouse.x - plot.x) / max(plot.width, 1)) * Float(max(last, 1)) + 0.5)))
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
    /// toggle the class everywhere. It scrolls when the rows do not fit. With many classes
    /// a search field above the rows adds any class (its matches replace the rows while
    /// typing), a caption says which classes are drawn, and a chosen class's row has × to
    /// take it away again.
    private func drawChartLegend(_ ui: UIContext, _ rect: Rect, series: [ChartSeries], tap: Int, taps: [TapSummary], hovered: Int?) {
        let line = ui.lineHeight(.small)
        let font = ui.font(.small)
        let row = line + ui.scaled(2)
        // The line under the pointer, named; else how to use the legend.
        let name = hovered.map { series[$0].names[0] }
        let headerTexts = name.map { ["\($0) at \(taps[tap].name)", "\($0)", series[hovered!].names.last!] }
            ?? ["at \(taps[tap].name) · click a class to select it", "at \(taps[tap].name)", "at tap \(tap)"]
        statusLine(ui, headerTexts, in: Rect(x: rect.x, y: rect.y, width: rect.width, height: line), color: ui.theme.colors.text)
        var top = rect.y + row
        let classNames = model.workspace.classNames
        let many = classNames.count > ChartState.everyClassUpTo && model.selection.method != .information
        chart.searchField = nil
        if many {
            let field = Rect(x: rect.x, y: top, width: rect.width, height: ui.widgetHeight)
            chart.searchField = field
            let placeholder = ui.firstFitting(["add a class: type its name", "add a class", "class…"], width: field.width - 2 * ui.scaled(ui.theme.padding), style: .body) ?? ""
            ui.area(field) { _ = ui.textField("chart-class-search", text: &chart.search, placeholder: placeholder) }
            top = field.maxY + ui.scaled(3)
        }
        let list = Rect(x: rect.x, y: top, width: rect.width, height: rect.maxY - top)
        layout["chartLegend"] = list
        chart.legendRows = [:]
        chart.matchRows = [:]
        chart.removeButtons = [:]
        let query = chart.search.trimmingCharacters(in: .whitespaces).lowercased()
        if many, !query.isEmpty {
            drawClassMatches(ui, list, query: query)
            return
        }
        // A caption before the class rows says which classes have lines.
        let firstClass = series.firstIndex { if case .cls = $0.id { return true } else { return false } }
        let topSet = Set(chart.ranking?.value ?? [])
        let top5 = series.filter { if case .cls(let k) = $0.id { return topSet.contains(k) } else { return false } }.count
        let caption = many && firstClass != nil
            ? ["\(top5) classes farthest from all images (mean |Δ| over taps), then chosen ones", "\(top5) farthest from all images, then chosen",
               "farthest from all images", "top \(top5) by |Δ|"] : nil
        ui.beginPanel("chart-legend", rect: list, options: [.scrollable])
        let rows = series.count + (caption == nil ? 0 : 1)
        let content = ui.cell(height: .points(Float(rows) * row / ui.scale))
        // Values at the hovered tap where there is room; names come first: without room
        // for both, a name that says something beats a number beside an index.
        let valueWidth = ui.measurer.width(of: "00.000", font: font)
        let nameSpace = content.width - ui.scaled(24)
        let showValues = series.allSatisfy { s in ui.fits(s.names[min(1, s.names.count - 1)], width: nameSpace - valueWidth) }
        let extras = Set(chart.extraClasses).subtracting(topSet)
        var y = content.y
        for (i, s) in series.enumerated() {
            if i == firstClass, let caption {
                statusLine(ui, caption, in: Rect(x: content.x + ui.scaled(2), y: y, width: content.width - ui.scaled(4), height: row), color: ui.theme.colors.textDim)
                y += row
            }
            let r = Rect(x: content.x, y: y, width: content.width, height: row)
            y += row
            chart.legendRows[s.id] = r
            var on = false
            var hit: Interaction?
            var remove: Rect?
            if case .cls(let k) = s.id {
                // A chosen class (not one of the top few) can be taken away with ×, shown on hover.
                if many, extras.contains(k), ui.isMouseOver(r) {
                    let w = ui.textWidth("×", style: .small) + ui.scaled(10)
                    remove = Rect(x: r.maxX - w, y: r.y, width: w, height: r.height)
                }
                if let remove, ui.interact("class-remove-\(k)", rect: remove).isClicked {
                    chart.extraClasses.removeAll { $0 == k }
                    if model.selection.classes.contains(k) { toggleClass(k) }
                }
                hit = ui.interact("class-legend-\(k)", rect: remove.map { Rect(x: r.x, y: r.y, width: r.width - $0.width, height: r.height) } ?? r)
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
            if let remove {
                ui.drawText("×", in: remove, style: .small, color: ui.theme.colors.text, alignment: .center)
                chart.removeButtons[s.id] = remove
            } else if showValues, let v = s.values?[safe: tap] {
                let text = formatNumber(v, decimals: 3)
                let w = ui.measurer.width(of: text[...], font: font)
                ui.drawList.text(text, at: Vec2(r.maxX - w - ui.scaled(2), r.y + (row - line) / 2), font: font, color: color, measurer: ui.measurer)
            }
        }
        ui.endPanel()
    }

    /// Classes whose name contains `query`, as rows in the legend's place: a click adds the
    /// class's line (and clears the search). At most what fits, with the count of the rest.
    private func drawClassMatches(_ ui: UIContext, _ list: Rect, query: String) {
        let names = model.workspace.classNames
        let row = ui.lineHeight(.small) + ui.scaled(2)
        let matches = names.indices.filter { names[$0].lowercased().contains(query) }
        let fit = max(1, Int(list.height / row) - 1)
        for (n, k) in matches.prefix(fit).enumerated() {
            let r = Rect(x: list.x, y: list.y + Float(n) * row, width: list.width, height: row)
            chart.matchRows[k] = r
            let hit = ui.interact("class-match-\(k)", rect: r)
            if hit.isHovered { ui.drawList.fillRect(r, color: ui.theme.colors.widgetHovered, cornerRadius: ui.scaled(2)) }
            statusLine(ui, ["+ " + names[k] + " (\(k))"] + classNameAlternatives(names[k]).map { "+ " + $0 } + ["+ \(k)"],
                       in: r.insetBy(dx: ui.scaled(4), dy: 0), color: ui.theme.colors.text)
            if hit.isClicked {
                if !chart.extraClasses.contains(k) { chart.extraClasses.append(k) }
                chart.search = ""
            }
        }
        let rest = matches.count - min(fit, matches.count)
        let note = matches.isEmpty ? ["no class matches", "none"] : rest > 0 ? ["\(rest) more: type more of the name", "\(rest) more"] : []
        statusLine(ui, note, in: Rect(x: list.x + ui.scaled(4), y: list.y + Float(min(fit, matches.count)) * row, width: list.width - ui.scaled(8), height: row),
                   color: ui.theme.colors.textDim)
    }

    /// The classes the chart draws lines for: every class of a model with a few; for many,
    /// the `ChartState.topCount` whose line lies farthest from the all-images line (mean
    /// absolute difference over the taps, for the method shown), then the classes chosen
    /// in the legend's search or selected anywhere, in the order they came. A class once
    /// shown keeps its row until its × is clicked, so rows never move under a click.
    func chartClasses(taps: [TapSummary], method: EntropyMethod) -> [Int] {
        let k = model.workspace.classNames.count
        guard k > ChartState.everyClassUpTo else { return Array(0..<k) }
        let key = "\(model.network.path)|\(k)"
        if chart.extrasKey != key {
            chart.extrasKey = key
            chart.extraClasses = []
            chart.search = ""
        }
        let top = farthestClasses(taps: taps, method: method)
        for c in model.selection.classes.sorted() where !top.contains(c) && !chart.extraClasses.contains(c) { chart.extraClasses.append(c) }
        return top + chart.extraClasses.filter { !top.contains($0) }
    }

    /// The `ChartState.topCount` classes whose line is farthest from the all-images line
    /// (ties: lower index); classes without a value at every tap (no images) are left out.
    func farthestClasses(taps: [TapSummary], method: EntropyMethod) -> [Int] {
        let snapshot = model.snapshot
        let cacheKey = [snapshot?.generation ?? -1, snapshot?.progress.imagesDone ?? -1, method.rawValue, taps.count, model.selection.epoch]
        if let cached = chart.ranking, cached.key == cacheKey { return cached.value }
        let all = taps.map { value($0, method: method) }
        var scored: [(k: Int, d: Double)] = []
        for c in model.workspace.classNames.indices {
            var sum = 0.0, complete = true
            for (t, summary) in taps.enumerated() {
                guard let v = classValue(summary, c, method: method), v.isFinite else { complete = false; break }
                sum += abs(v - all[t])
            }
            if complete, !taps.isEmpty { scored.append((c, sum / Double(taps.count))) }
        }
        scored.sort { $0.d != $1.d ? $0.d > $1.d : $0.k < $1.k }
        let top = scored.prefix(ChartState.topCount).map(\.k)
        chart.ranking = (cacheKey, top)
        return top
    }

    /// The x axis of a chart with too many taps to name: each block's name under its span
    /// (between brackets), a faint line in the plot where a block starts, and the selected
    /// tap's name on the line below. Returns the boxes of the texts drawn.
    func drawBlockAxis(_ ui: UIContext, blocks: [TapGroup], plot: Rect, xOf: (Int) -> Float, tap: Int, taps: [TapSummary],
                       shown: ClosedRange<Int>) -> [Rect] {
        let line = ui.lineHeight(.small)
        let font = ui.font(.small)
        let top = plot.maxY + ui.scaled(3)
        let half = shown.count > 1 ? plot.width / Float(shown.count - 1) / 2 : 0
        var boxes: [Rect] = []
        let chartLeft = (layout["chart"]?.x ?? 0) + ui.scaled(4)
        // One form for every block ("layer1" … "layer4", else "1" … "4"), so the axis reads evenly:
        // the first form every block has room for, else the one most blocks have room for (a
        // block too narrow for it goes unnamed rather than named differently). Names with a short
        // form of their own ("features.7", "7") are not numbered again by position.
        let forms = blocks.enumerated().map { n, block in block.labels.count > 1 ? block.labels : block.labels + ["\(n + 1)"] }
        let room = blocks.map { xOf($0.taps.upperBound) - xOf($0.taps.lowerBound) + 2 * half - ui.scaled(6) }
        let levels = 0..<(forms.map(\.count).max() ?? 1)
        let fitting = levels.map { l in forms.indices.filter { ui.fits(forms[$0][min(l, forms[$0].count - 1)], width: room[$0]) }.count }
        let best = levels.max { a, b in fitting[a] != fitting[b] ? fitting[a] < fitting[b] : a > b }
        let level: Int? = best.flatMap { fitting[$0] > 0 ? $0 : nil }
        // Each block's name: the form chosen for all where its span has room, else its own
        // shorter forms; a block too narrow even for its shortest form (MobileNet-V2's
        // first stage, "0–1") still gets that form, centred under its span and moved
        // sideways as far as its neighbours' names and the chart allow. The whole name is
        // on hover.
        var placed: [Rect?] = Array(repeating: nil, count: blocks.count)
        var texts: [String?] = Array(repeating: nil, count: blocks.count)
        var spans: [(Float, Float)] = []
        for (n, block) in blocks.enumerated() {
            let x0 = xOf(block.taps.lowerBound) - half, x1 = xOf(block.taps.upperBound) + half
            spans.append((x0, x1))
            let own = forms[n]
            let candidates = level.map { Array(own[min($0, own.count - 1)...]) } ?? own
            if let text = ui.firstFitting(candidates, width: x1 - x0 - ui.scaled(6)) {
                let w = ui.measurer.width(of: text[...], font: font)
                placed[n] = Rect(x: (x0 + x1 - w) / 2, y: top, width: w, height: line)
                texts[n] = text
            }
        }
        // Those still unnamed get their shortest form, and every name may then move
        // sideways — a named one as long as its centre stays over its span, an unnamed one
        // anywhere under the chart — first rightwards past the name on its left, then leftwards before the one
        // on its right. One that still overlaps (never seen: the shortest forms are a few
        // characters) is left out rather than drawn over another.
        let gap = ui.scaled(4)
        let leftmost = max(chartLeft, plot.x - ui.scaled(40)), rightmost = plot.maxX + ui.scaled(4)
        var extra = Set<Int>()
        for n in blocks.indices where placed[n] == nil {
            guard let text = forms[n].last else { continue }
            let w = ui.measurer.width(of: text[...], font: font)
            placed[n] = Rect(x: (spans[n].0 + spans[n].1 - w) / 2, y: top, width: w, height: line)
            texts[n] = text
            extra.insert(n)
        }
        if !extra.isEmpty {
            let order = blocks.indices.filter { placed[$0] != nil }
            func bounds(_ n: Int, _ w: Float) -> (Float, Float) {
                // A name that had room keeps its centre over its own span.
                extra.contains(n) ? (leftmost, rightmost - w) : (max(leftmost, spans[n].0 - w / 2), min(rightmost - w, spans[n].1 - w / 2))
            }
            var xs = order.map { placed[$0]!.x }
            for (i, n) in order.enumerated() {
                let (lo, hi) = bounds(n, placed[n]!.width)
                if i > 0 { xs[i] = max(xs[i], xs[i - 1] + placed[order[i - 1]]!.width + gap) }
                xs[i] = min(max(xs[i], lo), hi)
            }
            for (i, n) in order.enumerated().reversed() {
                let (lo, hi) = bounds(n, placed[n]!.width)
                if i + 1 < order.count { xs[i] = min(xs[i], xs[i + 1] - gap - placed[n]!.width) }
                xs[i] = min(max(xs[i], lo), hi)
            }
            let fits = order.indices.allSatisfy { i in i == 0 || xs[i] >= xs[i - 1] + placed[order[i - 1]]!.width + gap - 0.5 }
            if fits {
                for (i, n) in order.enumerated() { placed[n]!.x = xs[i] }
            } else {
                // Keep the names that had room; the others stay unnamed.
                for n in extra { placed[n] = nil; texts[n] = nil }
            }
        }
        for (n, block) in blocks.enumerated() {
            let (x0, x1) = spans[n]
            ui.drawList.line(from: Vec2(x0, plot.y), to: Vec2(x0, plot.maxY), color: ui.theme.colors.gridLine)
            let holds = block.taps.contains(tap)
            let color = holds ? ui.theme.colors.text : ui.theme.colors.textDim
            ui.drawList.line(from: Vec2(x0 + 1, top + line / 2), to: Vec2(x1 - 1, top + line / 2), color: color.withAlpha(0.5))
            guard let box = placed[n], let text = texts[n] else { continue }
            ui.drawList.fillRect(box.insetBy(dx: -ui.scaled(2), dy: 0), color: ui.theme.colors.panel)
            ui.drawList.text(text, at: Vec2(box.x, box.y), font: font, color: color, measurer: ui.measurer)
            boxes.append(box)
            if ui.interact("axis-block-\(n)", rect: box.insetBy(dx: -ui.scaled(2), dy: 0)).isHovered {
                ui.showTooltip("\(block.path.isEmpty ? block.labels[0] : block.path): taps \(block.taps.lowerBound)–\(block.taps.upperBound)",
                               near: ui.input.mousePosition)
            }
        }
        chart.axisBlockNames = texts
        // The selected tap, named in full where there is room, near its place on the axis.
        if shown.contains(tap) {
            // Within the chart's panel: the browser is on its left (the room was once counted
            // from the window's edge, and a long name ran over the thumbnails).
            let room = plot.maxX - chartLeft
            if let text = ui.firstFitting([taps[tap].name] + tapLabelTexts(taps[tap].name, index: tap, op: taps[tap].op), width: room) {
                let w = ui.measurer.width(of: text[...], font: font)
                let x = min(max(xOf(tap) - w / 2, plot.x - ui.scaled(30)), plot.maxX - w)
                let box = Rect(x: max(chartLeft, x), y: top + line + ui.scaled(2), width: w, height: line)
                ui.drawList.line(from: Vec2(xOf(tap), plot.maxY), to: Vec2(xOf(tap), box.y), color: ui.theme.colors.text.withAlpha(0.6))
                ui.drawList.text(text, at: Vec2(box.x, box.y), font: font, color: ui.theme.colors.text, measurer: ui.measurer)
                boxes.append(box)
            }
        }
        return boxes
    }

    /// The taps the chart shows: those the strip shows in full (all of them unless it is
    /// zoomed or the network has more taps than it can show at once).
    func chartTapRange() -> ClosedRange<Int> {
        let count = model.network.taps.count
        guard count > 0 else { return 0...0 }
        guard let g = strip.geometry, g.count == count, g.span < Float(count) - 1e-3 else { return 0...(count - 1) }
        let range = g.fullyVisible ?? g.partlyVisible
        return range.count >= 2 ? range : g.partlyVisible
    }

    /// The blocks the chart's axis names for taps `shown`: the outer level where it splits
    /// them (ResNet's stages for the whole network), else the inner one (a stage's blocks),
    /// each clipped to the taps shown.
    func axisBlocks(_ shown: ClosedRange<Int>) -> [TapGroup]? {
        let levels = stripGroups().levels
        let clipped = levels.map { level in
            level.compactMap { g -> TapGroup? in
                guard g.taps.overlaps(shown) else { return nil }
                var c = g
                c.taps = max(g.taps.lowerBound, shown.lowerBound)...min(g.taps.upperBound, shown.upperBound)
                return c
            }
        }
        return clipped.first { $0.count >= 2 } ?? clipped.last { !$0.isEmpty }
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

    /// Layer-level instance entropy of the shown image per tap: from the analysis's
    /// per-image store when it has the image, else (a drawn image, or while the analysis
    /// runs) computed in the background — every tap of a ResNet-50 took seconds, once
    /// on the main thread — and nil until it is ready (the chart leaves the line out).
    func shownImageEntropy() -> [Double]? {
        if let image = model.selection.image, model.drawnPixels == nil, let store = model.snapshot?.store, store.isComplete(image) {
            return (0..<store.tapCount).map { Double(store.layerEntropy(image: image, tap: $0)) }
        }
        guard let maps = model.featureMaps, let snapshot = model.snapshot, let ranges = snapshot.ranges else { return nil }
        let key = [model.featureMapsVersion, snapshot.generation]
        let job = shownEntropyJob
        if let done = job.result.withLock({ $0 }), done.key == key { return done.value }
        if job.requested != key {
            job.requested = key
            let settings = model.selection.settings
            let result = job.result, wake = model.wake
            DispatchQueue.global(qos: .userInitiated).async {
                let value = ImageEntropy(maps: maps, ranges: ranges, settings: settings).layer
                result.withLock { $0 = (key, value) }
                wake?()
            }
        }
        return nil
    }

    /// Whether the shown image's entropies are being computed in the background (the
    /// screenshot command and tests wait for them).
    public var isComputingImageEntropy: Bool {
        guard let requested = shownEntropyJob.requested else { return false }
        return shownEntropyJob.result.withLock { $0?.key } != requested
    }

    /// The shown image's entropies at one tap (the feature-map viewer's labels and
    /// histograms): that tap alone is binned, a few milliseconds even for 2,048 maps.
    func currentImageEntropy(tap: Int) -> ImageEntropy? {
        guard let maps = model.featureMaps, let snapshot = model.snapshot, let ranges = snapshot.ranges else { return nil }
        let key = [model.featureMapsVersion, snapshot.generation, tap]
        if let cached = imageEntropyCache, cached.key == key { return cached.value }
        let value = ImageEntropy(maps: maps, ranges: ranges, settings: model.selection.settings, taps: [tap])
        imageEntropyCache = (key, value)
        return value
    }
}

/// The shown image's entropies at every tap, computed off the main thread: the key
/// asked for last, and the last result with its key.
@MainActor
final class ShownEntropyJob {
    var requested: [Int]?
    let result = Shared<(key: [Int], value: [Double])?>(nil)
}

struct ChartState {
    /// Up to this many classes every class has a line (the shipped 10-class models);
    /// beyond, the `topCount` farthest from all images plus the chosen and selected ones.
    static let everyClassUpTo = 12
    static let topCount = 5
    /// The line under the pointer in the last frame (named in the legend).
    var hovered: ChartSeries.ID?
    /// Classes chosen in the legend's search or selected elsewhere, in order (many classes).
    var extraClasses: [Int] = []
    /// The model the chosen classes belong to.
    var extrasKey: String?
    /// The legend's search text.
    var search = ""
    /// The farthest classes, computed once per analysis state and method.
    var ranking: (key: [Int], value: [Int])?
    /// Tests: the search field, the rows of matching classes, the × buttons drawn.
    var searchField: Rect?
    var matchRows: [Int: Rect] = [:]
    var removeButtons: [ChartSeries.ID: Rect] = [:]
    /// What the last frame drew (tests): the value axis's top, each line's points,
    /// the legend's rows and the tap names' boxes.
    var yTop = 0.0
    var lines: [ChartSeries.ID: [Vec2]] = [:]
    var legendRows: [ChartSeries.ID: Rect] = [:]
    var axisLabels: [Rect] = []
    /// The name each block got on the axis in the last frame (nil: none), by block.
    var axisBlockNames: [String?] = []
    /// The taps on the x axis (the strip's when it is zoomed) and the "all taps" button, when shown.
    var shownTaps: ClosedRange<Int>?
    var allButton: Rect?
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
