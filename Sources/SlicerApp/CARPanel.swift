import Dispatch
import Foundation
import SlicerEngine
import SlicerInfo
import SlicerUI

/// The CAR computation the panel shows: for one tap of one epoch under one mask.
struct CARJob: Equatable {
    var epoch: Int
    var tap: Int
    var mask: AblationMask
}

/// Runs CAR in the background for the panel; results are read on the UI thread.
@MainActor
final class CARController {
    private let queue = DispatchQueue(label: "cnnslicer.car")
    private let state = Shared<State>(State())
    private(set) var job: CARJob?
    private(set) var result: CARResult?
    private(set) var progress: CARProgress?
    private(set) var error: String?

    struct State: Sendable {
        var generation = 0
        var progress: CARProgress?
        var result: (Int, CARResult)?
        var error: (Int, String)?
    }

    var isRunning: Bool { job != nil && result == nil && error == nil }

    func start(_ job: CARJob, input: ModelInput, greedy: Bool, wake: (@Sendable () -> Void)?) {
        self.job = job
        result = nil
        error = nil
        progress = nil
        let generation = state.withLock { s -> Int in s.generation += 1; s.progress = nil; return s.generation }
        let state = self.state
        queue.async {
            let stale: @Sendable () -> Bool = { state.withLock { $0.generation != generation } }
            do {
                let engine = try CAREngine(input: input, tap: job.tap, baseMask: job.mask)
                let channels = engine.tap.channels
                let result = try engine.run(keep: greedy ? max(1, channels / 2) : nil, isCancelled: stale) { p in
                    state.withLock { if $0.generation == generation { $0.progress = p } }
                    wake?()
                }
                state.withLock { $0.result = (generation, result) }
            } catch InfoError.cancelled {
            } catch {
                state.withLock { $0.error = (generation, "\(error)") }
            }
            wake?()
        }
    }

    func cancel() {
        state.withLock { $0.generation += 1 }
        job = nil
        result = nil
        progress = nil
    }

    /// Picks up what the worker posted.
    func poll() {
        let s = state.withLock { $0 }
        progress = s.progress
        if let (g, r) = s.result, g == s.generation { result = r }
        if let (g, e) = s.error, g == s.generation { error = e }
    }
}

extension AppView {
    /// Opens the CAR tab and runs CAR for the selected tap (scripted use: screenshots).
    public func startCAR(greedy: Bool) {
        rightTab = 1
        carGreedy = greedy
        let tap = min(model.selection.tap, model.network.taps.count - 1)
        carRunner.start(CARJob(epoch: model.selection.epoch, tap: tap, mask: model.selection.mask),
                        input: model.engine.input, greedy: greedy, wake: model.wake)
    }

    /// Whether a CAR run started from the panel is still going.
    public var isCARRunning: Bool {
        carRunner.poll()
        return carRunner.isRunning
    }

    func drawCARPanel(_ ui: UIContext, _ rect: Rect) {
        carRunner.poll()
        let net = model.network
        let tapIndex = min(model.selection.tap, net.taps.count - 1)
        let tap = net.taps[tapIndex]
        let job = CARJob(epoch: model.selection.epoch, tap: tapIndex, mask: model.selection.mask)
        let pad = ui.scaled(8)
        // The controls wrap to more rows in a narrow panel rather than cutting their labels.
        let busy = carRunner.isRunning && carRunner.job == job
        let brushed = model.selection.channels
        // The tap's name goes in the label while it fits a row (ResNet names are long).
        let runLabels = busy ? ["Running CAR on \(tap.name)…", "Running CAR…"] : ["Run CAR for \(tap.name)", "Run CAR"]
        let runLabel = runLabels.first { ui.fittingWidth(button: $0) <= rect.width - 2 * pad } ?? runLabels[1]
        let buttons = [
            ui.flowButton(runLabel) {
                if !busy { self.carRunner.start(job, input: self.model.engine.input, greedy: self.carGreedy, wake: self.model.wake) }
            },
            FlowControl(width: ui.fittingWidth(checkbox: "greedy ½")) {
                ui.checkbox("greedy ½", isChecked: &self.carGreedy)
                ui.tooltip("Also prune greedily to half the filters, with the L1, random and entropy baselines")
            },
            ui.flowButton("Cancel") { self.carRunner.cancel() },
            ui.flowButton(brushed.isEmpty ? "Apply mask (brush channels)" : "Apply mask: ablate \(brushed.count)") {
                guard !brushed.isEmpty else { return }
                var mask = self.model.selection.mask
                mask.channels[tapIndex, default: []].formUnion(brushed)
                self.model.selection.mask = mask
            },
            ui.flowButton("Clear mask") { self.model.selection.mask = AblationMask() },
        ]
        let flow = ui.flowLayout(buttons, width: rect.width - 2 * pad)
        let controls = Rect(x: rect.x + pad, y: rect.y + pad / 2, width: rect.width - 2 * pad, height: ui.flowHeight(rows: flow.rowCount) + pad)
        ui.withID("car-controls") { ui.flow(buttons, layout: flow, at: controls.origin) }
        let body = Rect(x: rect.x + pad, y: controls.maxY + pad / 2, width: rect.width - 2 * pad, height: rect.maxY - controls.maxY - pad)
        if let error = carRunner.error, carRunner.job == job {
            ui.drawText(Substring(error), in: body, style: .small, color: ui.theme.colors.error)
            return
        }
        guard carRunner.job == job, let result = carRunner.result else {
            if let p = carRunner.progress, carRunner.job == job {
                let bar = Rect(x: body.x, y: body.y, width: body.width, height: ui.scaled(6))
                ui.drawList.fillRect(bar, color: ui.theme.colors.widget)
                ui.drawList.fillRect(Rect(x: bar.x, y: bar.y, width: bar.width * Float(p.fraction), height: bar.height), color: ui.theme.colors.accent)
                ui.drawText(Substring("\(p.stage): \(p.done)/\(p.total)"), in: Rect(x: body.x, y: bar.maxY + 2, width: body.width, height: ui.lineHeight(.small)),
                            style: .small, color: ui.theme.colors.textDim)
            } else {
                ui.drawText("CAR(c) = acc(S) − acc(S with channel c set to 0). Run it for the selected tap.", in: body, style: .small, color: ui.theme.colors.textDim)
            }
            return
        }
        let scores = result.scores
        let car = scores.car
        let names = model.workspace.classNames
        let channels = car.count
        let third = body.height / 3
        // 1. Bars per filter (percentage points), with first-layer RGB filters as images.
        let bars = Rect(x: body.x, y: body.y, width: body.width, height: third - pad)
        let maxCAR = max(1e-9, car.map(abs).max() ?? 1)
        let w = bars.width / Float(max(channels, 1))
        let filterImages = firstLayerFilters(result)
        let imageSize: Float = filterImages.isEmpty ? 0 : min(w - 1, ui.scaled(18))
        let mid = bars.maxY - imageSize - ui.lineHeight(.small)
        ui.drawText(Substring(String(format: "CAR per filter (accuracy %.1f%%, max %.1f points)", scores.accuracy * 100, maxCAR * 100)),
                    in: Rect(x: bars.x, y: bars.y, width: bars.width, height: ui.lineHeight(.small)), style: .small, color: ui.theme.colors.textDim)
        let barTop = bars.y + ui.lineHeight(.small)
        for c in 0..<channels {
            let h = (mid - barTop) * Float(abs(car[c]) / maxCAR)
            let r = Rect(x: bars.x + Float(c) * w, y: mid - h, width: max(1, w - 1), height: h)
            let brushed = model.selection.channels.contains(c)
            ui.drawList.fillRect(r, color: car[c] >= 0 ? (brushed ? ui.theme.colors.text : ui.theme.colors.accent) : ui.theme.colors.error)
            if c < filterImages.count, let id = filterImages[c] {
                ui.drawList.image(id, in: Rect(x: bars.x + Float(c) * w, y: mid + 2, width: imageSize, height: imageSize))
            }
            let hit = ui.interact("car-bar-\(c)", rect: Rect(x: bars.x + Float(c) * w, y: barTop, width: w, height: bars.maxY - barTop))
            if hit.isHovered {
                var text = String(format: "filter %d: CAR %.2f points", c, car[c] * 100)
                if let (most, least) = scores.extremeClasses(channel: c) {
                    text += "\nmost important for \(names[safe: most] ?? "\(most)"), least for \(names[safe: least] ?? "\(least)")"
                }
                ui.tooltip(text + "\nclick: brush this channel")
            }
            if hit.isClicked { model.selection.channels = [c] }
        }
        // 2. Class-wise heat map: filters × classes.
        let heat = Rect(x: body.x, y: bars.maxY + pad, width: body.width, height: third - pad)
        let classCar = scores.classCar
        let k = names.count
        let cellH = (heat.height - ui.lineHeight(.small)) / Float(max(k, 1))
        let maxClass = max(1e-9, classCar.flatMap { $0.compactMap { $0.map(abs) } }.max() ?? 1)
        ui.drawText("class-wise CAR (filters × classes)", in: Rect(x: heat.x, y: heat.y, width: heat.width, height: ui.lineHeight(.small)), style: .small, color: ui.theme.colors.textDim)
        for c in 0..<channels {
            for y in 0..<k {
                let v = classCar[c][safe: y] ?? nil
                let r = Rect(x: heat.x + Float(c) * w, y: heat.y + ui.lineHeight(.small) + Float(y) * cellH, width: max(1, w - 1), height: max(1, cellH - 1))
                ui.drawList.fillRect(r, color: v.map { ColorMap.diverging.color(at: 0.5 + 0.5 * Float($0 / maxClass)) } ?? ui.theme.colors.widget)
            }
        }
        // 3. Greedy curve with the baselines.
        let curve = Rect(x: body.x, y: heat.maxY + pad, width: body.width, height: body.maxY - heat.maxY - pad)
        guard let greedy = result.greedy else {
            ui.drawText("tick \"greedy ½\" for the pruning curve", in: curve, style: .small, color: ui.theme.colors.textDim)
            return
        }
        var series: [(String, CARCurve, Color)] = [("greedy CAR", greedy, ui.theme.colors.text)]
        let palette = CategoricalPalette.standard
        if let b = result.baselines {
            if let l1 = b.l1 { series.append(("L1 norm", l1, palette.color(at: 0))) }
            series.append(("random", b.random, palette.color(at: 3)))
            series.append(("lowest entropy", b.entropy, palette.color(at: 2)))
        }
        let all = series.flatMap { $0.1.accuracy } + [scores.accuracy]
        // The plot keeps a point of headroom around the curves; the label
        // states the accuracies themselves (a padded 100.4 % read as a bug).
        let low = all.min() ?? 0, high = all.max() ?? 1
        let lo = low - 0.01, hi = high + 0.01
        let plot = Rect(x: curve.x, y: curve.y + ui.lineHeight(.small), width: curve.width * 0.7, height: curve.height - ui.lineHeight(.small) * 2)
        ui.drawText(Substring(String(format: "accuracy while pruning (%.1f%% – %.1f%%)", low * 100, high * 100)), in: Rect(x: curve.x, y: curve.y, width: curve.width, height: ui.lineHeight(.small)),
                    style: .small, color: ui.theme.colors.textDim)
        let steps = greedy.accuracy.count
        for (i, (name, c, color)) in series.enumerated() {
            let values = [scores.accuracy] + c.accuracy
            let pts = values.indices.map { j in
                Vec2(plot.x + plot.width * Float(j) / Float(max(steps, 1)), plot.maxY - plot.height * Float((values[j] - lo) / (hi - lo)))
            }
            ui.drawList.polyline(pts, color: color, thickness: ui.scaled(i == 0 ? 2.5 : 1.5))
            let ly = plot.y + Float(i) * ui.lineHeight(.small)
            ui.drawList.fillRect(Rect(x: plot.maxX + ui.scaled(8), y: ly + ui.lineHeight(.small) / 2 - 1, width: ui.scaled(12), height: ui.scaled(3)), color: color)
            ui.drawText(Substring(name), in: Rect(x: plot.maxX + ui.scaled(24), y: ly, width: curve.maxX - plot.maxX - ui.scaled(24), height: ui.lineHeight(.small)),
                        style: .small, color: ui.theme.colors.textDim)
        }
        ui.drawText(Substring("filters pruned → \(steps)   first: \(greedy.order.prefix(8).map(String.init).joined(separator: ", "))"),
                    in: Rect(x: plot.x, y: plot.maxY, width: curve.width, height: ui.lineHeight(.small)), style: .small, color: ui.theme.colors.textDim)
    }

    /// The producing convolution's filters as small RGB images, when it reads an RGB input.
    func firstLayerFilters(_ result: CARResult) -> [TextureID?] {
        guard let convName = result.baselines?.l1Convolution ?? carConvolutionName(result) else { return [] }
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

    func carConvolutionName(_ result: CARResult) -> String? {
        result.tap.opType == "Conv" ? result.tap.name : nil
    }
}
