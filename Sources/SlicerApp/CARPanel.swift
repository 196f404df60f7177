import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo
import SlicerUI

/// Presentation state of the CAR panel (the results themselves live in `CARSession`).
struct CARPanelState {
    /// Also prune greedily to half the filters, with the baselines.
    var greedy = false
    /// The part shown: 0 CAR per filter (bars and class-wise heat map), 1 the pruning curve, 2 the session's results.
    var section = 0
}

/// The CAR a view shows for a tap: the result under the current mask, or else
/// the newest under another mask, which the view then says.
struct ShownCAR {
    let record: CARRecord
    let matchesMask: Bool
    var scores: CARScores { record.result.scores }
}

extension AppView {
    // MARK: Which result

    /// What identifies CAR for the selected checkpoint, or nil while its digest is computed.
    var carContext: String? { model.car.context(for: model.engine.input) }

    /// The request for CAR of `tap` under the current mask (greedy when ticked and possible).
    func carKey(tap: Int, greedy: Bool) -> CARKey? {
        guard let context = carContext else { return nil }
        let mask = model.selection.mask
        let keep = greedy ? CARSession.greedyTarget(channels: model.network.taps[tap].channels, tap: tap, mask: mask) : nil
        return CARKey(context: context, tap: tap, mask: mask, keep: keep)
    }

    /// CAR for `tap` as the matrix, the scatter and the panel show it.
    func shownCAR(tap: Int) -> ShownCAR? {
        guard let context = carContext, tap < model.network.taps.count else { return nil }
        let mask = model.selection.mask
        let keep = CARSession.greedyTarget(channels: model.network.taps[tap].channels, tap: tap, mask: mask)
        if let exact = model.car.record(context: context, tap: tap, mask: mask, keep: keep, network: model.network) {
            return ShownCAR(record: exact, matchesMask: true)
        }
        return model.car.latestRecord(context: context, tap: tap).map { ShownCAR(record: $0, matchesMask: false) }
    }

    /// Opens the CAR tab and runs CAR for the selected tap (scripted use: screenshots).
    public func startCAR(greedy: Bool) {
        rightTab = 1
        carPanel.greedy = greedy
        model.car.poll()
        let tap = min(model.selection.tap, model.network.taps.count - 1)
        // The context digest is computed in the background: wait for it here.
        let deadline = Date().addingTimeInterval(30)
        while carKey(tap: tap, greedy: greedy) == nil && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
            model.car.poll()
        }
        guard let key = carKey(tap: tap, greedy: greedy) else { return }
        model.car.start(CARRequest(key: key, input: model.engine.input, epoch: model.selection.epoch))
    }

    /// Whether CAR computations started from the panel are still going.
    public var isCARRunning: Bool {
        model.car.poll()
        return model.car.running != nil || !model.car.queued.isEmpty
    }

    // MARK: Panel

    func drawCARPanel(_ ui: UIContext, _ rect: Rect) {
        let net = model.network
        let tapIndex = min(model.selection.tap, net.taps.count - 1)
        let tap = net.taps[tapIndex]
        let pad = ui.scaled(8)
        let key = carKey(tap: tapIndex, greedy: carPanel.greedy)
        let shown = shownCAR(tap: tapIndex)
        let running = key.map { model.car.isRunning($0) } ?? false
        let queued = key.map { model.car.isQueued($0) } ?? false
        let brushed = model.selection.channels

        // Controls, flowing onto as many rows as the width needs (never cut). The run
        // button is as wide as its widest state, so the others stay put when a run starts.
        let area = rect.insetBy(dx: pad, dy: pad / 2)
        let runStates = [["Run CAR for \(tap.name)", "Run CAR"], ["Running CAR on \(tap.name)…", "Running…"], ["Queued: \(tap.name)", "Queued"]]
        let maskStates = brushed.isEmpty ? ["Apply mask (brush channels)", "Apply mask"] : ["Apply mask: ablate \(brushed.count)", "Ablate \(brushed.count)"]
        // Full labels on two rows where they fit, else the short ones (a small window keeps
        // its room for the charts); a label is never cut.
        func layoutAt(_ level: Int) -> (FlowLayout, [String]) {
            let labels = [runStates[running ? 1 : queued ? 2 : 0][level], "greedy ½", "Cancel", maskStates[level],
                          ["Clear mask", "Clear"][level], ["Export CAR", "Export"][level]]
            let widths = [runStates.map { ui.fittingWidth(button: $0[level]) }.max() ?? 0, ui.fittingWidth(checkbox: labels[1])]
                + labels.dropFirst(2).map { ui.fittingWidth(button: $0) }
            return (FlowLayout(widths.map { FlowLayout.Item(width: $0) }, maxWidth: area.width, spacing: ui.scaled(ui.theme.spacing)), labels)
        }
        var (flow, labels) = layoutAt(0)
        if flow.rowCount > 2 || flow.placements.contains(where: { $0.width < 1 }) { (flow, labels) = layoutAt(1) }
        let runLabel = labels[0], maskLabel = labels[3], exportLabel = labels[5], clearLabel = labels[4]
        let rowStep = ui.widgetHeight + ui.scaled(ui.theme.spacing)
        var y = area.y
        ui.withID("car-controls") {
            for (i, place) in flow.placements.enumerated() {
                let r = Rect(x: area.x + place.x, y: y + Float(place.row) * rowStep, width: place.width, height: ui.widgetHeight)
                layout["carControl\(i)"] = r
                switch i {
                case 0:
                    if ui.button(runLabel + "##run", rect: r), !running, !queued, let key {
                        model.car.start(CARRequest(key: key, input: model.engine.input, epoch: model.selection.epoch))
                    }
                    ui.tooltip("CAR(c) = acc(S) − acc(S with channel c set to 0), for every channel of the selected tap")
                case 1:
                    ui.checkbox("greedy ½##greedy", isChecked: &carPanel.greedy, rect: r)
                    ui.tooltip("Also prune greedily to half the filters, beside the L1, random and entropy baselines")
                case 2:
                    if ui.button("Cancel##car", rect: r), let key { model.car.cancel(key) }
                    ui.tooltip("Stops the computation for this tap; finished results stay")
                case 3:
                    if ui.button(maskLabel + "##mask", rect: r), !brushed.isEmpty {
                        var mask = model.selection.mask
                        mask.channels[tapIndex, default: []].formUnion(brushed)
                        model.selection.mask = mask
                    }
                    ui.tooltip("Set the brushed channels to 0: every view recomputes under the mask")
                case 4:
                    if ui.button(clearLabel + "##clear", rect: r) { model.selection.mask = AblationMask() }
                default:
                    if ui.button(exportLabel + "##export", rect: r), let shown { exportCAR(shown.record) }
                    ui.tooltip("Write the shown result as cnnslicer.car.v1 JSON and CSV")
                }
            }
        }
        y += ui.flowHeight(rows: flow.rowCount) + pad / 2

        // Status: progress in percent with the time left, or where the result comes from.
        let line = ui.lineHeight(.small)
        let status = Rect(x: area.x, y: y, width: area.width, height: line)
        y = status.maxY + pad / 2
        if running, let p = model.car.running?.progress {
            let bar = Rect(x: status.x, y: status.y + line * 0.25, width: min(status.width * 0.35, ui.scaled(160)), height: line * 0.5)
            ui.drawList.fillRect(bar, color: ui.theme.colors.widget, cornerRadius: ui.scaled(2))
            ui.drawList.fillRect(Rect(x: bar.x, y: bar.y, width: bar.width * Float(p.fraction), height: bar.height),
                                 color: ui.theme.colors.accent, cornerRadius: ui.scaled(2))
            let text = Rect(x: bar.maxX + ui.scaled(6), y: status.y, width: status.maxX - bar.maxX - ui.scaled(6), height: line)
            statusLine(ui, carProgressTexts(p), in: text, color: ui.theme.colors.text)
        } else if let failure = model.car.failure, failure.key == key || failure.key.tap == tapIndex {
            statusLine(ui, [failure.message, "CAR failed (hover for why)"], in: status, color: ui.theme.colors.error)
            if ui.interact("car-error", rect: status).isHovered { ui.showTooltip(failure.message, near: ui.input.mousePosition) }
        } else if let shown {
            statusLine(ui, carSourceTexts(shown), in: status, color: shown.matchesMask ? ui.theme.colors.textDim : ui.theme.colors.error)
        } else if queued {
            statusLine(ui, ["Waiting for the running CAR computation to finish", "Queued"], in: status, color: ui.theme.colors.textDim)
        } else {
            statusLine(ui, ["CAR(c) = acc(S) − acc(S with channel c zeroed): press Run", "Press Run"], in: status, color: ui.theme.colors.textDim)
        }

        // Which part to show: each gets the whole height (a demo needs no scrolling at 1600×1000).
        let count = model.car.order.count
        let sectionNames = [["CAR per filter", "Pruning curve", "Results (\(count))"], ["Filters", "Pruning", "Results"], ["CAR", "Curve", "All"]]
        let segmentWidth = area.width / 3 - ui.scaled(8)
        let names = sectionNames.first { $0.allSatisfy { ui.fits($0, width: segmentWidth, style: .body) } } ?? sectionNames[2]
        ui.panel("car-sections", rect: Rect(x: area.x, y: y, width: area.width, height: ui.widgetHeight), options: []) {
            ui.row(.fraction(1))
            _ = ui.segmented("car-section", selection: &carPanel.section, options: names)
        }
        y += ui.widgetHeight + pad / 2

        // The charts: from the result, or the partial one while it runs.
        let body = Rect(x: area.x, y: y, width: area.width, height: rect.maxY - y - pad / 2)
        layout["carBody"] = body
        guard body.height > ui.scaled(20) else { return }
        let partial = running ? model.car.running?.partial : nil
        let scores = partial?.scores ?? shown?.scores
        let result = partial == nil ? shown?.record.result : nil
        let greedy = partial?.greedy ?? result?.greedy
        let partialNote = partial.flatMap { $0.imagesDone < $0.imagesTotal ? $0 : nil }
        // Below a readable height the part scrolls instead of shrinking.
        let listHeight = Float(count + 1) * (line + ui.scaled(3)) + ui.scaled(4)
        let minimum: Float = carPanel.section == 0 ? ui.scaled(230) : carPanel.section == 1 ? ui.scaled(170) : listHeight
        let height = max(body.height, minimum)
        ui.beginPanel("car-body", rect: body, options: [.scrollable])
        let content = ui.cell(height: .points(height / ui.scale))
        switch carPanel.section {
        case 0:
            if let scores {
                drawFilterCharts(ui, content, scores: scores, result: result, partial: partialNote)
            } else {
                statusLine(ui, ["No CAR for this tap yet: press Run", "No CAR yet"], in: Rect(x: content.x, y: content.y, width: content.width, height: line),
                           color: ui.theme.colors.textDim)
            }
        case 1:
            if let scores {
                drawPruningCurve(ui, content, scores: scores, greedy: greedy, baselines: result?.baselines,
                                 expected: running ? key?.keep != nil : (result?.greedy != nil))
            } else {
                statusLine(ui, ["Tick \"greedy ½\" and press Run for the pruning curve", "Tick greedy, Run"],
                           in: Rect(x: content.x, y: content.y, width: content.width, height: line), color: ui.theme.colors.textDim)
            }
        default:
            drawCARResultList(ui, content)
        }
        ui.endPanel()
    }

    /// Bars per filter above the class-wise heat map, on one x-axis (the filters).
    func drawFilterCharts(_ ui: UIContext, _ content: Rect, scores: CARScores, result: CARResult?, partial: CARPartial?) {
        let names = model.workspace.classNames
        let k = scores.classCounts.count
        let pad = ui.scaled(8)
        let width = content.width
        // The left column holds value ticks and class names.
        let classNamesWidth = min(width * 0.3, names.prefix(k).map { ui.measurer.width(of: $0[...], font: ui.font(.small)) }.max() ?? 0) + ui.scaled(6)
        let axisWidth = max(classNamesWidth, ui.measurer.width(of: "−00.0", font: ui.font(.small)) + ui.scaled(6))
        let plotX = content.x + axisWidth
        // Room at the right for the other half of the class names when the heat map's rows are low.
        let rightSpace = classNamesWidth
        let plotWidth = width - axisWidth - rightSpace - ui.scaled(4)
        // The heat map needs a readable row per class (and its colour key); the bars get the rest.
        let line = ui.lineHeight(.small)
        let heatWanted = Float(k) * (line + ui.scaled(1)) + line * 3.6 + ui.scaled(6)
        let barsHeight = max(ui.scaled(100), min((content.height - pad) * 0.5, content.height - pad - heatWanted))
        let bars = Rect(x: plotX, y: content.y, width: plotWidth, height: barsHeight)
        drawCARBars(ui, bars, axisX: content.x, scores: scores, partial: partial, result: result)
        let heat = Rect(x: plotX, y: bars.maxY + pad, width: plotWidth, height: content.maxY - bars.maxY - pad)
        drawCARHeatMap(ui, heat, labelX: content.x, scores: scores, rightLabelSpace: rightSpace - ui.scaled(6))
    }

    // MARK: Bars

    func drawCARBars(_ ui: UIContext, _ rect: Rect, axisX: Float, scores: CARScores, partial: CARPartial?, result: CARResult?) {
        let line = ui.lineHeight(.small)
        let car = scores.car.map { $0 * 100 }
        let channels = car.count
        var title = [String(format: "CAR per filter, accuracy points (accuracy %.1f %%)", scores.accuracy * 100),
                     String(format: "CAR per filter, points (acc. %.1f %%)", scores.accuracy * 100), "CAR per filter, points"]
        if let p = partial {
            title = ["CAR per filter, points — so far over \(p.imagesDone) of \(p.imagesTotal) images",
                     "CAR so far: \(p.imagesDone) of \(p.imagesTotal) images", "CAR so far (points)"]
        }
        statusLine(ui, title, in: Rect(x: axisX, y: rect.y, width: rect.maxX - axisX, height: line), color: ui.theme.colors.text)
        let filterImages = result.map(firstLayerFilters) ?? []
        let labelsHeight = line + ui.scaled(4)
        let imageSize: Float = filterImages.isEmpty ? 0 : min(rect.width / Float(max(channels, 1)) - 1, ui.scaled(18))
        let plot = Rect(x: rect.x, y: rect.y + line * 1.4, width: rect.width,
                        height: rect.height - line * 1.4 - labelsHeight - imageSize - ui.scaled(2))
        guard plot.height > ui.scaled(10), channels > 0 else { return }
        // Value axis in points: from the most negative CAR (or 0) to the largest.
        let low = min(0, car.min() ?? 0), high = max(car.max() ?? 0, low + 0.1)
        let ticks = niceTicks(in: low...high, maxCount: max(3, Int(plot.height / (line * 1.6))))
        let top = max(high, ticks.values.last ?? high), bottom = min(low, ticks.values.first ?? low)
        let yOf: (Double) -> Float = { v in plot.maxY - Float((v - bottom) / max(top - bottom, 1e-9)) * plot.height }
        ui.drawValueTicks(ticks, plot: plot, labels: Rect(x: axisX, y: plot.y, width: plot.x - axisX - ui.scaled(4), height: plot.height), position: yOf)
        let w = plot.width / Float(channels)
        let zero = yOf(0)
        let brushed = model.selection.channels
        var hovered: Int?
        for c in 0..<channels {
            let y0 = min(zero, yOf(car[c])), y1 = max(zero, yOf(car[c]))
            let r = Rect(x: plot.x + Float(c) * w, y: y0, width: max(1, w - (w > 3 ? 1 : 0)), height: max(1, y1 - y0))
            let color = car[c] < 0 ? ui.theme.colors.error : (brushed.contains(c) ? ui.theme.colors.text : ui.theme.colors.accent)
            ui.drawList.fillRect(r, color: color)
            if brushed.contains(c) {
                ui.drawList.fillRect(Rect(x: plot.x + Float(c) * w, y: plot.y, width: max(1, w - 1), height: plot.height), color: ui.theme.colors.selection.withAlpha(0.45))
            }
            if c < filterImages.count, let id = filterImages[c] {
                ui.drawList.image(id, in: Rect(x: plot.x + Float(c) * w + (w - imageSize) / 2, y: plot.maxY + labelsHeight, width: imageSize, height: imageSize))
            }
            if Rect(x: plot.x + Float(c) * w, y: plot.y, width: w, height: plot.height + labelsHeight + imageSize).contains(ui.input.mousePosition) { hovered = c }
        }
        ui.drawList.line(from: Vec2(plot.x, zero), to: Vec2(plot.maxX, zero), color: ui.theme.colors.textDim)
        // Channel numbers under the bars, thinned so they never overlap.
        let labels = (0..<channels).map { AxisLabel(position: plot.x + (Float($0) + 0.5) * w, text: String($0), isEmphasized: brushed.contains($0)) }
        let labelLayout = ui.layoutCategoryLabels(labels, maxHeight: line * 2, allowVertical: false)
        ui.drawCategoryLabels(labels, layout: labelLayout, top: plot.maxY + ui.scaled(2), emphasisColor: ui.theme.colors.text)
        let hit = ui.interact("car-bars", rect: Rect(x: plot.x, y: plot.y, width: plot.width, height: plot.height + labelsHeight + imageSize))
        layout["carBars"] = plot
        if hit.isHovered, let c = hovered {
            var text = String(format: "filter %d: CAR %.2f points (accuracy %.2f %% → %.2f %%)", c, car[c], scores.accuracy * 100, scores.accuracy(ablating: c) * 100)
            let names = model.workspace.classNames
            if let (most, least) = scores.extremeClasses(channel: c) {
                text += "\nmost important for \(names[safe: most] ?? "class \(most)"), least for \(names[safe: least] ?? "class \(least)")"
            }
            ui.showTooltip(text + "\nclick: brush this channel · ctrl-click: add it", near: ui.input.mousePosition)
            if hit.isClicked { brushChannel(c, ui) }
        }
    }

    /// Click brushes one channel, Ctrl/Shift-click toggles it (matrix, bars, scatter alike).
    func brushChannel(_ c: Int, _ ui: UIContext) {
        if ui.input.modifiers.contains(.control) || ui.input.modifiers.contains(.shift) {
            if model.selection.channels.contains(c) { model.selection.channels.remove(c) } else { model.selection.channels.insert(c) }
        } else {
            model.selection.channels = model.selection.channels == [c] ? [] : [c]
        }
    }

    // MARK: Class-wise heat map

    /// `rightLabelSpace`: room right of the grid for every other class name when rows are low.
    func drawCARHeatMap(_ ui: UIContext, _ rect: Rect, labelX: Float, scores: CARScores, rightLabelSpace: Float = 0) {
        let line = ui.lineHeight(.small)
        let names = model.workspace.classNames
        let classCar = scores.classCar
        let channels = classCar.count, k = scores.classCounts.count
        statusLine(ui, ["Class-wise CAR: filters (columns) × true classes (rows), points", "Class-wise CAR (points)"],
                   in: Rect(x: labelX, y: rect.y, width: rect.maxX - labelX, height: line), color: ui.theme.colors.text)
        let legendHeight = line * 2 + ui.scaled(6)
        let grid = Rect(x: rect.x, y: rect.y + line * 1.4, width: rect.width, height: rect.height - line * 1.4 - legendHeight)
        guard channels > 0, k > 0, grid.height > 2 else { return }
        let w = grid.width / Float(channels), h = grid.height / Float(k)
        let maxAbs = max(1e-9, classCar.flatMap { $0.compactMap { $0.map(abs) } }.max() ?? 0) * 100
        let brushed = model.selection.channels
        let font = ui.font(.small)
        // Class names beside their rows: at the left, and when rows are lower than a line,
        // every other one at the right (rows alternate sides, so each name has two rows of room).
        let labelWidth = grid.x - labelX - ui.scaled(6)
        let alternate = h < line && h * 2 >= line && rightLabelSpace > 0
        let every = alternate ? 1 : max(1, Int((line / max(h, 0.1)).rounded(.up)))
        for y in Swift.stride(from: 0, to: k, by: every) {
            let name = names[safe: y] ?? "class \(y)"
            let right = alternate && y % 2 == 1
            guard let text = ui.firstFitting(classNameAlternatives(name) + ["\(y)"], width: right ? rightLabelSpace : labelWidth) else { continue }
            let tw = ui.measurer.width(of: text[...], font: font)
            let on = model.selection.classes.contains(y)
            let x = right ? grid.maxX + ui.scaled(6) : grid.x - ui.scaled(6) - tw
            ui.drawList.text(text, at: Vec2(x, grid.y + (Float(y) + 0.5) * h - line / 2), font: font,
                             color: on ? ui.theme.colors.text : ui.theme.colors.textDim, measurer: ui.measurer)
        }
        for c in 0..<channels {
            for y in 0..<k {
                let r = Rect(x: grid.x + Float(c) * w, y: grid.y + Float(y) * h, width: max(1, w - (w > 3 ? 1 : 0)), height: max(1, h - (h > 3 ? 1 : 0)))
                let color = classCar[c][y].map { ColorMap.diverging.color(at: 0.5 + 0.5 * Float($0 * 100 / maxAbs)) } ?? ui.theme.colors.widget
                ui.drawList.fillRect(r, color: color)
            }
            if brushed.contains(c) {
                ui.drawList.strokeRect(Rect(x: grid.x + Float(c) * w, y: grid.y, width: w, height: grid.height).insetBy(-1),
                                       color: ui.theme.colors.text, thickness: ui.scaled(1.5))
            }
        }
        layout["carHeat"] = grid
        let legend = Rect(x: grid.x, y: grid.maxY + ui.scaled(4), width: min(grid.width, ui.scaled(300)), height: legendHeight - ui.scaled(4))
        ui.drawColorLegend(.diverging, range: Float(-maxAbs)...Float(maxAbs), unit: "points", in: legend)
        let hit = ui.interact("car-heat", rect: grid)
        if hit.isHovered {
            let m = ui.input.mousePosition
            let c = min(channels - 1, max(0, Int((m.x - grid.x) / w))), y = min(k - 1, max(0, Int((m.y - grid.y) / h)))
            let value = classCar[c][y].map { String(format: "%.2f points", $0 * 100) } ?? "no images of this class"
            let classAccuracy = scores.classAccuracy[y].map { String(format: " (class accuracy %.1f %%)", $0 * 100) } ?? ""
            ui.showTooltip("filter \(c) · \(names[safe: y] ?? "class \(y)")\(classAccuracy)\nCAR for this class: \(value)\nclick: brush this channel",
                           near: m)
            if hit.isClicked { brushChannel(c, ui) }
        }
    }

    // MARK: Pruning curve

    func drawPruningCurve(_ ui: UIContext, _ rect: Rect, scores: CARScores, greedy: CARCurve?, baselines: CARBaselines?, expected: Bool) {
        let line = ui.lineHeight(.small)
        guard let greedy else {
            let text = expected ? ["Greedy pruning starts when CAR of every filter is in"]
                : ["Tick \"greedy ½\" and run for the greedy pruning curve and its baselines", "Tick \"greedy ½\" for the pruning curve"]
            statusLine(ui, text, in: Rect(x: rect.x, y: rect.y, width: rect.width, height: line), color: ui.theme.colors.textDim)
            return
        }
        let palette = ui.theme.classPalette
        var series: [(String, CARCurve, Color)] = [("greedy CAR", greedy, ui.theme.colors.text)]
        if let b = baselines {
            if let l1 = b.l1 { series.append(("L1 norm", l1, palette.color(at: 0))) }
            series.append(("random", b.random, palette.color(at: 3)))
            series.append(("lowest entropy", b.entropy, palette.color(at: 2)))
        }
        let steps = max(greedy.accuracy.count, series.map { $0.1.accuracy.count }.max() ?? 0)
        let planned = max(steps, greedy.order.count)
        let all = series.flatMap { $0.1.accuracy } + [scores.accuracy]
        let low = (all.min() ?? 0) * 100, high = (all.max() ?? 1) * 100
        // Title on its own line above the plot: the curve never runs through it.
        statusLine(ui, [String(format: "Accuracy while pruning filters (%.1f %% – %.1f %%)", low, high), "Accuracy while pruning (%)"],
                   in: Rect(x: rect.x, y: rect.y, width: rect.width, height: line), color: ui.theme.colors.text)
        let font = ui.font(.small)
        let legendWidth = min(rect.width * 0.32, (series.map { ui.measurer.width(of: $0.0[...], font: font) }.max() ?? 0) + ui.scaled(26))
        let axisWidth = ui.measurer.width(of: "100.0", font: font) + ui.scaled(6)
        let plot = Rect(x: rect.x + axisWidth, y: rect.y + line * 1.6, width: rect.width - axisWidth - legendWidth - ui.scaled(10),
                        height: rect.height - line * 1.6 - line * 2.4)
        guard plot.width > ui.scaled(30), plot.height > ui.scaled(20) else { return }
        var ticks = niceTicks(in: max(0, low - 1)...min(100, high + 1), maxCount: max(2, Int(plot.height / (line * 1.5))))
        // Start the axis at a tick at or below the lowest accuracy, so that it is labelled.
        if let first = ticks.values.first, ticks.values.count > 1, first > low {
            let step = ticks.values[1] - first
            ticks.values.insert(first - step * ((first - low) / step).rounded(.up), at: 0)
        }
        let lo = min(ticks.values.first ?? low, low), hi = max(ticks.values.last ?? high, high)
        let yOf: (Double) -> Float = { v in plot.maxY - Float((v - lo) / max(hi - lo, 1e-9)) * plot.height }
        let xOf: (Int) -> Float = { j in plot.x + plot.width * Float(j) / Float(max(planned, 1)) }
        ui.drawValueTicks(ticks, plot: plot, labels: Rect(x: rect.x, y: plot.y, width: axisWidth - ui.scaled(4), height: plot.height), position: yOf)
        let xTicks = niceTicks(in: 0...Double(max(planned, 1)), maxCount: max(2, min(planned + 1, Int(plot.width / ui.scaled(40)))))
        for v in xTicks.values where v == v.rounded() {
            let x = xOf(Int(v))
            ui.drawList.line(from: Vec2(x, plot.maxY), to: Vec2(x, plot.maxY + ui.scaled(3)), color: ui.theme.colors.textDim)
            let text = String(Int(v))
            ui.drawList.text(text, at: Vec2(x - ui.measurer.width(of: text[...], font: font) / 2, plot.maxY + ui.scaled(3)), font: font,
                             color: ui.theme.colors.textDim, measurer: ui.measurer)
        }
        let xTitle = ui.firstFitting(["filters pruned (greedy: smallest CAR first)", "filters pruned"], width: plot.width) ?? ""
        ui.drawText(xTitle[...], in: Rect(x: plot.x, y: plot.maxY + line * 1.2, width: plot.width, height: line), style: .small,
                    color: ui.theme.colors.textDim, alignment: .center)
        for (i, (name, c, color)) in series.enumerated() {
            let values = [scores.accuracy] + c.accuracy
            let pts = values.indices.map { j in Vec2(xOf(j), yOf(values[j] * 100)) }
            ui.drawList.polyline(pts, color: color, thickness: ui.scaled(i == 0 ? 2.5 : 1.5))
            // Legend beside the plot, outside it.
            let ly = plot.y + Float(i) * (line + ui.scaled(2))
            let lx = plot.maxX + ui.scaled(10)
            ui.drawList.fillRect(Rect(x: lx, y: ly + line / 2 - ui.scaled(1.5), width: ui.scaled(12), height: ui.scaled(3)), color: color)
            if let text = ui.firstFitting([name], width: rect.maxX - lx - ui.scaled(16)) {
                ui.drawList.text(text, at: Vec2(lx + ui.scaled(16), ly), font: font, color: ui.theme.colors.textDim, measurer: ui.measurer)
            }
        }
        layout["carCurve"] = plot
        let hit = ui.interact("car-curve", rect: plot)
        if hit.isHovered {
            let j = min(planned, max(0, Int(((ui.input.mousePosition.x - plot.x) / plot.width * Float(planned)).rounded())))
            var text = j == 0 ? "no filter pruned" : "\(j) filter\(j == 1 ? "" : "s") pruned"
            for (name, c, _) in series {
                let values = [scores.accuracy] + c.accuracy
                if j < values.count { text += String(format: "\n%@: %.2f %%", name, values[j] * 100) + (j > 0 && j - 1 < c.order.count ? " (filter \(c.order[j - 1]))" : "") }
            }
            ui.drawList.line(from: Vec2(xOf(j), plot.y), to: Vec2(xOf(j), plot.maxY), color: ui.theme.colors.textDim)
            ui.showTooltip(text, near: Vec2(plot.maxX + ui.scaled(4), plot.y))
        }
    }

    // MARK: Results of the session

    /// Every result of the session, newest first; a click selects its tap.
    func drawCARResultList(_ ui: UIContext, _ rect: Rect) {
        let line = ui.lineHeight(.small)
        let records = model.car.order.reversed().compactMap { model.car.records[$0] }
        guard !records.isEmpty else {
            statusLine(ui, ["No CAR results in this session yet", "None yet"], in: Rect(x: rect.x, y: rect.y, width: rect.width, height: line),
                       color: ui.theme.colors.textDim)
            return
        }
        statusLine(ui, ["CAR results this session (\(records.count)) — click to show", "Results (\(records.count))"],
                   in: Rect(x: rect.x, y: rect.y, width: rect.width, height: line), color: ui.theme.colors.text)
        let context = carContext
        for (i, record) in records.enumerated() {
            let r = Rect(x: rect.x, y: rect.y + Float(i + 1) * (line + ui.scaled(3)), width: rect.width, height: line + ui.scaled(2))
            guard r.maxY <= rect.maxY else { break }
            let key = record.key
            let tapName = model.network.taps[safe: key.tap]?.name ?? "tap \(key.tap)"
            let thisModel = key.context == context
            let mask = key.mask.isEmpty ? "no mask" : "mask of \(key.mask.channels.values.reduce(0) { $0 + $1.count })"
            let where_ = thisModel ? "" : " · \(record.modelName)"
            let accuracy = String(format: "%.1f %%", record.result.scores.accuracy * 100)
            let texts = ["\(record.result.tap.name) · \(mask)\(key.keep != nil ? " · greedy" : "") · accuracy \(accuracy)\(where_)\(record.fromDisk ? " · cached" : "")",
                         "\(record.result.tap.name) · \(mask)\(key.keep != nil ? " · greedy" : "")\(where_)",
                         "\(record.result.tap.name)\(where_)", record.result.tap.name]
            let hit = ui.interact("car-record-\(i)", rect: r)
            if hit.isHovered { ui.drawList.fillRect(r, color: ui.theme.colors.widgetHovered) }
            let current = thisModel && key.tap == model.selection.tap
            statusLine(ui, texts, in: r, color: current ? ui.theme.colors.text : ui.theme.colors.textDim)
            if hit.isClicked, thisModel, tapName == record.result.tap.name {
                model.selection.tap = key.tap
                model.selection.channels = []
            }
        }
    }

    // MARK: Export

    /// Writes the result as `cnnslicer.car.v1` JSON, a CSV per channel and, with greedy, a CSV of the curves.
    func exportCAR(_ record: CARRecord) {
        let result = record.result
        let modelPath = model.network.path, data = model.workspace.images.source, names = model.workspace.classNames
        var files: [(String, String)] = [
            (exportPath("json", suffix: "-car"), CARJSON.render(result: result, modelPath: modelPath, dataSource: data, classNames: names, mask: record.key.mask) + "\n"),
            (exportPath("csv", suffix: "-car"), CARCSV.channels(result: result, modelPath: modelPath, dataSource: data, classNames: names, mask: record.key.mask)),
        ]
        if let pruning = CARCSV.pruning(result: result, modelPath: modelPath, dataSource: data, mask: record.key.mask) {
            files.append((exportPath("csv", suffix: "-car-pruning"), pruning))
        }
        do {
            for (path, text) in files { try AtomicFile.write(Data(text.utf8), to: path) }
            exportNote = "saved " + files.map { URL(fileURLWithPath: $0.0).lastPathComponent }.joined(separator: ", ")
        } catch {
            model.messages.append("\(error)")
        }
    }

    // MARK: Text helpers

    /// Progress as the panel says it: stage, percent and time left.
    func carProgressTexts(_ p: CARProgress) -> [String] {
        let percent = String(format: "%.0f %%", p.fraction * 100)
        let left = p.secondsLeft.map { $0 < 1 ? "under 1 s left" : "about \(durationText($0)) left" } ?? "estimating time left"
        return ["\(p.stage): \(percent) · \(left)", "\(percent) · \(left)", percent]
    }

    /// Where a shown result comes from, and whether it matches the current mask.
    func carSourceTexts(_ shown: ShownCAR) -> [String] {
        let r = shown.record
        let images = "\(r.result.scores.images) images"
        let origin = r.fromDisk ? "from the cache" : "computed in \(durationText(r.result.stats.seconds))"
        if !shown.matchesMask {
            let mask = r.key.mask.isEmpty ? "without a mask" : "under another mask"
            return ["Shown: CAR computed \(mask) — press Run for the current mask", "Computed \(mask): Run for this mask", "Other mask"]
        }
        return ["\(images) · \(origin)", images]
    }

    func durationText(_ seconds: Double) -> String {
        if seconds < 1 { return "under 1 s" }
        if seconds < 60 { return "\(Int(seconds.rounded())) s" }
        let s = Int(seconds.rounded())
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return "\(s / 3600) h \((s % 3600) / 60) min"
    }

    /// Draws the first of `texts` that fits `rect` (never a cut one; nothing if none fits).
    func statusLine(_ ui: UIContext, _ texts: [String], in rect: Rect, color: Color, style: TextStyle = .small) {
        guard let text = ui.firstFitting(texts, width: rect.width, style: style) else { return }
        ui.drawText(text[...], in: rect, style: style, color: color)
    }

    /// The producing convolution's filters as small RGB images, when it reads an RGB input.
    func firstLayerFilters(_ result: CARResult) -> [TextureID?] {
        guard let convName = result.baselines?.l1Convolution ?? (result.tap.opType == "Conv" ? result.tap.name : nil) else { return [] }
        let net = model.network
        guard let node = net.orderedNodes.first(where: { $0.displayName == convName }), node.inputs.count > 1,
              let w = net.model.graph.initializers[node.inputs[1]], w.dims.count == 4, w.dims[1] == 3 else { return [] }
        let (m, kh, kw) = (w.dims[0], w.dims[2], w.dims[3])
        let values = w.floatValues
        return (0..<m).map { f in
            textures?.textureID(key: "filter-\(convName)-\(f)", version: 0, width: kw, height: kh) {
                let slice = Array(values[(f * 3 * kh * kw)..<((f + 1) * 3 * kh * kw)])
                let scale = max(1e-9, slice.map(abs).max() ?? 1)
                var rgba = [UInt8](repeating: 255, count: kh * kw * 4)
                for p in 0..<(kh * kw) {
                    for ch in 0..<3 { rgba[p * 4 + ch] = UInt8(max(0, min(255, 127.5 + 127.5 * slice[ch * kh * kw + p] / scale))) }
                }
                return rgba
            }
        }
    }
}

/// A class name and shorter forms of it for narrow places, from the longest, each
/// keeping the meaning: the part before a comma or slash ("tench, Tinca tinca" →
/// "tench", "T-shirt/top" → "T-shirt"), then the first word with the others'
/// initials ("Ankle boot" → "Ankle b."), then the first word. The full name is
/// always in the tooltip; callers add the class index as the last resort.
func classNameAlternatives(_ name: String) -> [String] {
    var forms = [name]
    func add(_ s: String) {
        let t = s.trimmingCharacters(in: .whitespaces)
        if !t.isEmpty, !forms.contains(t) { forms.append(t) }
    }
    var base = name
    for separator in [",", "/"] {
        if let first = name.split(separator: Character(separator)).first, first.count < name.count {
            base = String(first)
            add(base)
            break
        }
    }
    let words = base.split(separator: " ")
    if words.count > 1 {
        add(words[0] + " " + words.dropFirst().map { "\($0.prefix(1))." }.joined(separator: " "))
        add(String(words[0]))
    }
    // The first word cut at five, four, then three letters with a period ("goldfish" →
    // "goldf.", "gold.", "gol."; "house" → "hous.", "hou."), for a matrix header short of
    // room: read as a name where the class index would say nothing (the whole name is on
    // hover). Three letters go down to about the width of "hen"; wide letters ("hammerhead",
    // "mousetrap") need that step at 1024×700 in large type.
    if let first = words.first, first.count > 3 {
        for letters in stride(from: min(5, first.count - 1), through: 3, by: -1) { add(first.prefix(letters) + ".") }
    }
    return forms
}
