import Foundation
import SlicerEngine
import SlicerInfo
import SlicerUI

struct ScatterState {
    /// The entropy measure on the x axis.
    var measure: EntropyMethod = .information
    /// What the last frame showed (tests): ρ and each channel's point.
    var rho: Double?
    var points: [Vec2] = []
}

extension AppView {
    /// "Does information predict importance?": one point per channel of the
    /// selected tap, x = an entropy measure over all images, y = CAR in accuracy
    /// points, with Spearman's ρ (ties averaged). Brushing a rectangle selects
    /// channels in every view; brushed channels are marked here.
    func drawScatter(_ ui: UIContext, _ rect: Rect) {
        let pad = ui.scaled(8)
        let line = ui.lineHeight(.small)
        let area = rect.insetBy(dx: pad, dy: pad / 2)
        guard let summary = model.snapshot?.summary, !summary.taps.isEmpty else {
            ui.drawText("analysing…", in: rect, color: ui.theme.colors.textDim, alignment: .center)
            return
        }
        let tapIndex = min(model.selection.tap, summary.taps.count - 1)
        let tap = summary.taps[tapIndex]
        let channels = tap.channelEnsembleEntropy.count

        // The x measure, as a segmented choice whose labels fit.
        let choices: [EntropyMethod] = [.instance, .ensemble, .information]
        let labelSets = [["instance H", "ensemble H", "label information"], ["instance", "ensemble", "label info"], ["inst", "ens", "info"]]
        let segmentWidth = (area.width - ui.scaled(4)) / 3 - ui.scaled(8)
        let labels = labelSets.first { $0.allSatisfy { ui.fits($0, width: segmentWidth, style: .body) } } ?? labelSets[2]
        var choice = choices.firstIndex(of: scatter.measure) ?? 2
        ui.panel("scatter-controls", rect: Rect(x: area.x, y: area.y, width: area.width, height: ui.widgetHeight), options: []) {
            ui.row(.fraction(1))
            if ui.segmented("scatter-x", selection: &choice, options: labels) { scatter.measure = choices[choice] }
        }
        var y = area.y + ui.widgetHeight + ui.scaled(4)

        // CAR: the finished result, or the partial one while it runs.
        let key = carKey(tap: tapIndex, greedy: false)
        let runningPartial = model.car.running.flatMap { r -> CARPartial? in
            r.request.key.context == key?.context && r.request.key.tap == tapIndex && r.request.key.mask == model.selection.mask ? r.partial : nil
        }
        let shown = shownCAR(tap: tapIndex)
        guard let scores = runningPartial?.scores ?? shown?.scores, scores.channels == channels else {
            let texts = ["CAR of \(tap.name) is not computed yet: run it to see whether information predicts importance",
                         "Run CAR for \(tap.name) to plot entropy against it", "Run CAR first"]
            statusLine(ui, texts, in: Rect(x: area.x, y: y, width: area.width, height: line), color: ui.theme.colors.textDim)
            y += line + ui.scaled(6)
            let running = model.car.running != nil
            let titles = running ? ["CAR is running (CAR tab)", "Running…"] : ["Run CAR for \(tap.name)", "Run CAR"]
            let title = titles.first { ui.fittingWidth(button: $0) <= area.width } ?? titles[1]
            let button = Rect(x: area.x, y: y, width: min(area.width, ui.fittingWidth(button: title)), height: ui.widgetHeight)
            if ui.button(title + "##scatter-run", rect: button), !running, let key {
                model.car.start(CARRequest(key: key, input: model.engine.input, epoch: model.selection.epoch))
            }
            return
        }
        let xs: [Double]
        switch scatter.measure {
        case .instance: xs = tap.channelInstanceEntropy
        case .ensemble: xs = tap.channelEnsembleEntropy
        case .information: xs = tap.channelLabelInformation
        }
        let ys = scores.car.map { $0 * 100 }
        let rho = RankCorrelation.spearman(xs, ys)
        let rhoText = rho.map { String(format: "Spearman ρ = %.3f", $0) } ?? "Spearman ρ undefined (a constant side)"
        var note = ""
        if let p = runningPartial, p.imagesDone < p.imagesTotal { note = " · CAR so far over \(p.imagesDone) of \(p.imagesTotal) images" }
        else if shown?.matchesMask == false { note = " · CAR computed under another mask" }
        statusLine(ui, ["\(rhoText) over \(channels) channels (ties share ranks)\(note)", "\(rhoText) · \(channels) channels\(note)", rhoText],
                   in: Rect(x: area.x, y: y, width: area.width, height: line), color: ui.theme.colors.text, style: .body)
        layout["scatterRho"] = Rect(x: area.x, y: y, width: area.width, height: line)
        scatter.rho = rho
        y += ui.lineHeight(.body) + ui.scaled(4)

        // Axes: x in bits, y in accuracy points (0 marked).
        let font = ui.font(.small)
        let xLow = min(0, xs.min() ?? 0), xHigh = max(xs.max() ?? 1, xLow + 1e-3)
        let yLow = min(0, ys.min() ?? 0), yHigh = max(ys.max() ?? 1, yLow + 0.1)
        let yTicks = niceTicks(in: yLow...yHigh, maxCount: 5)
        let axisWidth = (yTicks.values.map { ui.measurer.width(of: formatNumber($0, decimals: yTicks.decimals)[...], font: font) }.max() ?? 0) + ui.scaled(8)
        let plot = Rect(x: area.x + axisWidth + line * 1.2, y: y + ui.scaled(4), width: area.width - axisWidth - line * 1.2 - ui.scaled(8),
                        height: area.maxY - y - ui.scaled(4) - line * 2.6)
        guard plot.width > ui.scaled(40), plot.height > ui.scaled(40) else { return }
        let xTicks = niceTicks(in: xLow...xHigh, maxCount: max(2, Int(plot.width / ui.scaled(60))))
        let x0 = min(xLow, xTicks.values.first ?? xLow), x1 = max(xHigh, xTicks.values.last ?? xHigh)
        let y0 = min(yLow, yTicks.values.first ?? yLow), y1 = max(yHigh, yTicks.values.last ?? yHigh)
        // A margin inside the frame so points on the edges are whole.
        let inner = plot.insetBy(ui.scaled(6))
        let px: (Double) -> Float = { inner.x + Float(($0 - x0) / max(x1 - x0, 1e-12)) * inner.width }
        let py: (Double) -> Float = { inner.maxY - Float(($0 - y0) / max(y1 - y0, 1e-12)) * inner.height }
        ui.drawList.fillRect(plot, color: ui.theme.colors.background.withAlpha(0.35))
        ui.drawValueTicks(yTicks, plot: plot, labels: Rect(x: area.x + line * 1.2, y: plot.y, width: axisWidth - ui.scaled(6), height: plot.height), position: py)
        ui.drawHorizontalValueTicks(xTicks, plot: plot, position: px)
        ui.drawList.line(from: Vec2(plot.x, py(0)), to: Vec2(plot.maxX, py(0)), color: ui.theme.colors.textDim)
        ui.drawList.strokeRect(plot, color: ui.theme.colors.panelBorder)
        let xTitle = ["\(scatter.measure.title) per channel (bits, all images)", "\(scatter.measure.title) (bits)"]
        statusLine(ui, xTitle, in: Rect(x: plot.x, y: plot.maxY + line + ui.scaled(2), width: plot.width, height: line), color: ui.theme.colors.textDim)
        if let yTitle = ui.firstFitting(["CAR (accuracy points)", "CAR (points)", "CAR"], width: plot.height) {
            ui.drawVerticalText(yTitle[...], in: Rect(x: area.x, y: plot.y, width: line, height: plot.height - (plot.height - ui.measurer.width(of: yTitle[...], font: font)) / 2),
                                color: ui.theme.colors.textDim)
        }

        // Points: brushed on top and larger; ablated channels in the error colour.
        let brushed = model.selection.channels
        let masked = model.selection.mask.channels[tapIndex] ?? []
        let points = (0..<channels).map { Vec2(px(xs[$0]), py(ys[$0])) }
        let radius = ui.scaled(channels > 256 ? 2.5 : 3.5)
        for c in 0..<channels where !brushed.contains(c) {
            ui.drawList.fillCircle(center: points[c], radius: radius, color: (masked.contains(c) ? ui.theme.colors.error : ui.theme.colors.accent).withAlpha(0.75))
        }
        for c in brushed.sorted() where c < channels {
            ui.drawList.fillCircle(center: points[c], radius: radius * 1.5, color: ui.theme.colors.text)
            ui.drawList.strokeCircle(center: points[c], radius: radius * 1.5 + ui.scaled(1.5), color: ui.theme.colors.accent, thickness: ui.scaled(1.5))
        }
        layout["scatterPlot"] = plot
        scatter.points = points

        // Brush a rectangle to select channels; click a point to select it; hover reads it.
        let result = ui.brush("scatter", in: plot, axis: .both)
        let mouse = ui.input.mousePosition
        let nearest = (0..<channels).min { (points[$0] - mouse).length < (points[$1] - mouse).length }
        let hovered = nearest.flatMap { (points[$0] - mouse).length <= radius * 2.5 ? $0 : nil }
        if let band = result.brush {
            model.selection.channels = Set((0..<channels).filter { band.rect.contains(points[$0]) })
            focusedView = 2
        } else if result.interaction.isClicked {
            if let c = hovered { brushChannel(c, ui) } else if !ui.input.modifiers.contains(.control) { model.selection.channels = [] }
        }
        if result.interaction.isHovered, !result.interaction.isActive, let c = hovered {
            ui.drawList.strokeCircle(center: points[c], radius: radius * 2, color: ui.theme.colors.text, thickness: ui.scaled(1.5))
            ui.showTooltip(String(format: "channel %d\n%@: %.3f bits\nCAR: %.2f points", c, scatter.measure.title, xs[c], ys[c])
                           + "\nclick: brush · drag: brush a rectangle", near: mouse)
        }
    }
}
