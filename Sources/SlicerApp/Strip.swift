import Foundation
import SlicerEngine
import SlicerInfo
import SlicerUI

// The architecture strip at any size: a ResNet-50 has 175 taps, a shipped
// model a dozen. The strip shows a window of taps (all of them when they fit),
// zooms (Ctrl+wheel, + / − / all, a click on a block's header) and pans
// (wheel, dragging a header or the overview bar under the taps). Blocks come
// from the ONNX node names exporters write ("/layer2/layer2.1/conv1/Conv"):
// up to two levels of module paths, drawn as header bands over their taps.

/// A run of consecutive taps whose node names share a module path.
struct TapGroup: Equatable, Sendable {
    /// The module path, "layer2/layer2.1".
    var path: String
    /// Its name from the longest form to the shortest: "layer2.1", "1".
    var labels: [String]
    var taps: ClosedRange<Int>
}

/// The blocks of a network read from its tap names: `levels[0]` the outer
/// modules (ResNet's stages), `levels[1]` the ones inside (its blocks).
struct TapGroups: Equatable, Sendable {
    var levels: [[TapGroup]] = []
    /// Each tap's own short name ("conv1", "downsample.0", "Add"), or nil
    /// when the names have no module paths (the strip then shows operators).
    var leafNames: [String?] = []

    static let maxLevels = 2
    /// More blocks than this in the top row is no overview (MobileNet-V2's 19 "features.N"):
    /// stages are made above them.
    static let maxTopGroups = 9

    /// `sizes`: each tap's spatial size (height of its maps), which makes stages of a
    /// network whose names give only a long flat row of blocks.
    init(names: [String], sizes: [Int]? = nil) {
        // Module path of a tap: its name's parts without the last one (the node's
        // own name, "Conv" or "Relu_1"). "input" and "/6/Relu" have one part or none.
        let modules: [[Substring]] = names.map { name in
            let parts = name.split(separator: "/")
            return parts.count >= 2 ? Array(parts.dropLast()) : []
        }
        var counts: [String: Int] = [:]
        for m in modules where !m.isEmpty {
            for d in 1...m.count { counts[m.prefix(d).joined(separator: "/"), default: 0] += 1 }
        }
        var kept: [[TapGroup]] = []
        let deepest = modules.map(\.count).max() ?? 0
        var depth = 1
        while depth <= deepest, kept.count < Self.maxLevels {
            defer { depth += 1 }
            // Maximal runs of taps under the same path at this depth, of two taps or more.
            var runs: [TapGroup] = []
            var i = 0
            while i < names.count {
                guard modules[i].count >= depth else { i += 1; continue }
                let key = modules[i].prefix(depth).joined(separator: "/")
                var j = i
                while j + 1 < names.count, modules[j + 1].count >= depth,
                      modules[j + 1].prefix(depth).joined(separator: "/") == key { j += 1 }
                if j > i {
                    let last = String(modules[i][depth - 1])
                    var labels = [last]
                    // "layer2.1" inside "layer2" also reads as "1".
                    if depth > 1 {
                        let parent = String(modules[i][depth - 2])
                        if last.hasPrefix(parent + "."), last.count > parent.count + 1 { labels.append(String(last.dropFirst(parent.count + 1))) }
                    }
                    runs.append(TapGroup(path: key, labels: labels, taps: i...j))
                }
                i = j + 1
            }
            // A level says something when it splits the taps further than the one above: a run
            // that only repeats a group above ("features.1/conv" around all of "features.1") is
            // dropped, and so is a level of one group over most of the network ("features").
            if let above = kept.last { runs.removeAll { run in above.contains { $0.taps == run.taps } } }
            guard !runs.isEmpty else { continue }
            if runs.count == 1, Float(runs[0].taps.count) >= 0.8 * Float(names.count) { continue }
            kept.append(runs)
        }
        // A long flat row of blocks (MobileNet's "features.0" … "features.18", whose next level
        // is only the "conv" wrapper of the blocks with a shortcut, so a row with holes): the
        // blocks become the lower row, under stages of consecutive blocks that end at the same
        // resolution — what ResNet's layer1 … layer4 are, and MobileNet's bottleneck sequences.
        if let sizes, sizes.count == names.count, let top = kept.first, top.count > Self.maxTopGroups,
           let stages = Self.stages(of: top, sizes: sizes) {
            kept = [stages, top]
        }
        // The lower row covers every block of the upper one: a block not split further (a stem
        // of single-layer modules, a stage of one block) keeps its own cell there, so the row
        // has no holes under a named block.
        // Children covering at most half of a block (EfficientNet's stem, whose only run of two is
        // the Sigmoid and Mul of one SiLU) do not say what it is made of either: the block instead.
        if kept.count == 2 {
            var lower: [TapGroup] = []
            for parent in kept[0] {
                let children = kept[1].filter { parent.taps.contains($0.taps.lowerBound) && parent.taps.contains($0.taps.upperBound) }
                let covered = children.reduce(0) { $0 + $1.taps.count }
                lower += 2 * covered > parent.taps.count ? children : [parent]
            }
            // Runs outside every block of the upper row stay as they are.
            lower += kept[1].filter { child in !kept[0].contains { $0.taps.contains(child.taps.lowerBound) && $0.taps.contains(child.taps.upperBound) } }
            kept[1] = lower.sorted { $0.taps.lowerBound < $1.taps.lowerBound }
        }
        levels = kept
        leafNames = names.indices.map { i in
            let m = modules[i]
            guard !kept.isEmpty else { return nil }
            // A leaf module (one tap under its path) is named by the module, else by the node.
            if !m.isEmpty, counts[m.joined(separator: "/")] == 1 { return String(m[m.count - 1]) }
            return names[i].split(separator: "/").last.map(String.init) ?? names[i]
        }
    }

    /// Stages over `blocks`: runs of adjacent blocks whose last taps have the same spatial
    /// size; nil when that does not group them (every block its own stage, or one stage).
    static func stages(of blocks: [TapGroup], sizes: [Int]) -> [TapGroup]? {
        var runs: [[TapGroup]] = []
        for b in blocks {
            if let prev = runs.last?.last, prev.taps.upperBound + 1 == b.taps.lowerBound,
               sizes[prev.taps.upperBound] == sizes[b.taps.upperBound] {
                runs[runs.count - 1].append(b)
            } else {
                runs.append([b])
            }
        }
        guard runs.count >= 2, runs.count < blocks.count else { return nil }
        return runs.map { run in
            let first = run[0], last = run[run.count - 1]
            guard run.count > 1 else { return first }
            // "features.7–13", "7–13": the first block's name, then the last one's shortest.
            let long = "\(first.labels[0])–\(last.labels[last.labels.count - 1])"
            let short = "\(first.labels[first.labels.count - 1])–\(last.labels[last.labels.count - 1])"
            let parent = first.path.split(separator: "/").dropLast().joined(separator: "/")
            return TapGroup(path: parent.isEmpty ? long : "\(parent)/\(long)", labels: long == short ? [long] : [long, short],
                            taps: first.taps.lowerBound...last.taps.upperBound)
        }
    }

    /// The group of `level` that holds `tap`, if any.
    func group(containing tap: Int, level: Int) -> TapGroup? {
        guard level < levels.count else { return nil }
        return levels[level].first { $0.taps.contains(tap) }
    }
}

/// Where the strip's taps, headers and controls were drawn in the last frame (tests read it).
struct StripGeometry {
    /// The area the taps are drawn in (below the headers, above the overview).
    var taps: Rect
    /// The first tap in view (fractional) and how many taps the view holds.
    var start: Float
    var span: Float
    var count: Int
    /// Block headers drawn, with the name each shows (nil: none fitted).
    var headers: [(level: Int, group: Int, rect: Rect, label: String?)] = []
    /// The overview bar (a scroll bar showing every tap) and its thumb, when navigation is shown.
    var overview: Rect?
    var thumb: Rect?
    /// "zoom in", "zoom out", "all".
    var buttons: [String: Rect] = [:]

    var slot: Float { taps.width / max(span, 1e-6) }
    func x(_ tap: Float) -> Float { taps.x + (tap - start) * slot }
    /// Taps whose whole slot is in view.
    var fullyVisible: ClosedRange<Int>? {
        let lo = Int((start - 1e-3).rounded(.up)), hi = Int((start + span + 1e-3).rounded(.down)) - 1
        return lo <= hi ? max(0, lo)...min(count - 1, hi) : nil
    }
    /// Taps of which any part is in view.
    var partlyVisible: ClosedRange<Int> {
        max(0, Int((start + 1e-3).rounded(.down)))...min(count - 1, max(0, Int((start + span - 1e-3).rounded(.up)) - 1))
    }
}

/// The strip's view: which taps it shows, kept between frames.
struct StripState {
    var start: Float = 0
    /// Taps in view; nil: as many as fit (all of them unless a network has hundreds).
    var span: Float?
    /// The selected tap the view last brought into sight (←/→ and clicks in other views move it).
    var revealedTap: Int?
    /// Where the overview's thumb was grabbed, from its left edge.
    var grab: Float?
    var groups: (names: [String], value: TapGroups)?
    var geometry: StripGeometry?
}

extension AppView {
    /// The blocks of the current network (computed once per network).
    func stripGroups() -> TapGroups {
        let names = model.network.taps.map(\.name)
        if let cached = strip.groups, cached.names == names { return cached.value }
        let value = TapGroups(names: names, sizes: model.network.taps.map { $0.mapSize.height })
        // Another network: the view starts over.
        strip = StripState()
        strip.groups = (names, value)
        return value
    }

    /// Whether the strip shows its navigation (overview bar and zoom buttons): for networks
    /// with blocks, when zoomed, or when taps get too narrow for their labels.
    func stripNavigates(_ ui: UIContext, width: Float, groups: TapGroups) -> Bool {
        let count = Float(model.network.taps.count)
        return !groups.levels.isEmpty || (strip.span.map { $0 < count } ?? false) || count * ui.scaled(24) > width
    }

    /// The strip's height in `body`: as before for small models, plus a row per header level
    /// and the overview row for large ones.
    func stripHeight(_ ui: UIContext, bodyHeight: Float, width: Float) -> Float {
        let base = min(ui.scaled(132), bodyHeight * 0.2)
        let groups = stripGroups()
        let rows = Float(groups.levels.count) + (stripNavigates(ui, width: width, groups: groups) ? 1 : 0)
        guard rows > 0 else { return base }
        // (A smaller share on short bodies was tried: the zoomed strip's tap labels then
        // ran into the bars in large type. The chart and matrix take their room from the
        // feature maps instead, see `frame`.)
        return min(base + rows * (ui.lineHeight(.small) + ui.scaled(3)), max(base, bodyHeight * 0.25)).rounded()
    }

    /// Shows taps `range` exactly (a block's header click; `--select zoom=`).
    func zoomStrip(to range: ClosedRange<Int>) {
        strip.span = Float(range.count)
        strip.start = Float(range.lowerBound)
    }

    /// Zooms the strip to the block named `path` ("layer2/layer2.1", or a last part such as
    /// "layer2.1"); false when there is no such block.
    @discardableResult
    public func zoomStrip(toBlock path: String) -> Bool {
        let groups = stripGroups()
        // A stage's "features.7–13" may be typed with a hyphen.
        let trimmed = path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        for name in [trimmed, trimmed.replacingOccurrences(of: "-", with: "–")] {
            for level in groups.levels {
                if let g = level.first(where: { $0.path == name }) ?? level.first(where: { $0.labels[0] == name }) {
                    zoomStrip(to: g.taps)
                    return true
                }
            }
        }
        return false
    }

    /// The blocks' paths (for messages naming what `zoom=` accepts).
    public var stripBlockNames: [String] { stripGroups().levels.flatMap { $0.map(\.path) } }

    // MARK: Drawing

    func drawStrip(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        focusFrame(ui, rect, view: 0)
        let taps = model.network.taps
        guard !taps.isEmpty else { return }
        let groups = stripGroups()
        let pad = ui.scaled(6)
        let inner = rect.insetBy(pad)
        let labelHeight = ui.lineHeight(.small)
        let headerRow = labelHeight + ui.scaled(3)
        let navigates = stripNavigates(ui, width: inner.width, groups: groups)
        let headerHeight = Float(groups.levels.count) * headerRow
        let navHeight = navigates ? headerRow : 0
        let area = Rect(x: inner.x, y: inner.y + headerHeight, width: inner.width, height: max(0, inner.height - headerHeight - navHeight))
        let count = taps.count

        // The view: zoom and pan from the wheel and keys, then the selected tap into sight.
        let minSlot = ui.scaled(3)
        let widest = min(Float(count), max(1, area.width / minSlot))
        let narrowest = min(Float(count), 3)
        func clampView() {
            if let s = strip.span { strip.span = min(max(s, narrowest), widest) }
            let span = strip.span ?? widest
            strip.start = min(max(strip.start, 0), Float(count) - span)
        }
        func zoom(by factor: Float, around tap: Float, at x: Float) {
            let old = strip.span ?? widest
            let span = min(max(old * factor, narrowest), widest)
            let fraction = (x - area.x) / max(area.width, 1)
            strip.span = span
            strip.start = tap - fraction * span
            clampView()
        }
        clampView()
        var span = strip.span ?? widest
        let mouse = ui.input.mousePosition
        if ui.isMouseOver(rect), ui.input.wheel != .zero {
            let slot = area.width / span
            if ui.input.modifiers.contains(.control) {
                // Ctrl+wheel zooms around the tap under the pointer, which stays under it.
                let anchor = strip.start + (mouse.x - area.x) / slot
                zoom(by: pow(0.8, ui.input.wheel.y + ui.input.wheel.x), around: anchor, at: mouse.x)
            } else if span < Float(count) {
                strip.start -= (ui.input.wheel.y + ui.input.wheel.x) * max(1, (span / 8).rounded())
                clampView()
            }
        }
        if focusedView == 0 {
            let centre = strip.start + span / 2
            if ui.shortcut(.character("+")) || ui.shortcut(.character("+"), modifiers: .shift) || ui.shortcut(.character("=")) {
                zoom(by: 1 / 1.6, around: centre, at: area.center.x)
            }
            if ui.shortcut(.character("-")) { zoom(by: 1.6, around: centre, at: area.center.x) }
            if ui.shortcut(.character("0")) { strip.span = nil; strip.start = 0 }
        }
        span = strip.span ?? widest
        let selectedTap = model.selection.tap
        if strip.revealedTap != selectedTap {
            // ←/→ or a click in another view: keep the selected tap in sight, a tap from the edge.
            let margin: Float = span >= 5 ? 1 : 0
            let t = Float(min(max(selectedTap, 0), count - 1))
            if t < strip.start + margin { strip.start = t - margin }
            if t + 1 > strip.start + span - margin { strip.start = t + 1 - span + margin }
            clampView()
            strip.revealedTap = selectedTap
        }
        var geometry = StripGeometry(taps: area, start: strip.start, span: span, count: count)
        let slot = geometry.slot
        let visible = geometry.partlyVisible

        let maxChannels = Float(taps.map(\.channels).max() ?? 1)
        let maxSide = Float(taps.map { $0.mapSize.width }.max() ?? 1)
        let summary = model.snapshot?.summary
        let method = model.selection.method
        let maxValue = summary.map { s in s.taps.map { value($0, method: method) }.max() ?? 1 } ?? 1
        // Rows for the tap labels above and the shapes below, unless no tap has room for either
        // (a whole ResNet): then the taps take that height.
        let font = ui.font(.small)
        let room = slot - ui.scaled(2)
        let labelRows = ui.measurer.width(of: "BN", font: font) <= room
        let labelRow = labelRows ? labelHeight : 0
        let blockArea = Rect(x: area.x, y: area.y + labelRow, width: area.width, height: area.height - 2 * labelRow - ui.scaled(8))
        ui.drawList.pushClip(area)
        // Blocks: every other one gets a shaded band behind it. From the names when they have
        // module paths (the inner level: ResNet's blocks), else runs of taps that start at a
        // convolution or linear layer (conv → BN → activation → pool).
        var bands: [ClosedRange<Int>] = []
        if let inner = groups.levels.last {
            bands = inner.map(\.taps)
        } else {
            var start = 0
            for i in 1...count where i == count || ["Conv", "Gemm", "MatMul"].contains(taps[i].opType) {
                bands.append(start...(i - 1))
                start = i
            }
        }
        for (n, band) in bands.enumerated() where n % 2 == 1 && band.upperBound >= visible.lowerBound && band.lowerBound <= visible.upperBound {
            let x0 = geometry.x(Float(band.lowerBound)), x1 = geometry.x(Float(band.upperBound + 1))
            ui.drawList.fillRect(Rect(x: x0, y: area.y, width: x1 - x0, height: area.height),
                                 color: ui.theme.colors.widget.withAlpha(0.6), cornerRadius: ui.scaled(3))
        }
        // Tap labels: the tap's own name in a network with blocks ("conv1", "downsample.0"),
        // else the operator; one form for every tap in view where it fits, so they read evenly.
        let forms: (Int) -> [String] = { i in
            let op = shortOp(taps[i].opType)
            if let leaf = groups.leafNames[safe: i] ?? nil, leaf != op { return [leaf, op] }
            return [op]
        }
        let uniform = (0..<2).first { level in
            visible.allSatisfy { i in let f = forms(i); return ui.measurer.width(of: f[min(level, f.count - 1)][...], font: font) <= room }
        }
        let interaction = ui.interact("strip", rect: area)
        var hovered: Int?
        for i in visible {
            let tap = taps[i]
            let x = geometry.x(Float(i))
            // Height by channels, width by spatial size: the shape reads at a glance.
            let h = max(ui.scaled(6), blockArea.height * (0.25 + 0.75 * (Float(tap.channels) / maxChannels).squareRoot()))
            let side = Float(tap.mapSize.width)
            let w = max(min(ui.scaled(4), slot * 0.8), (slot - ui.scaled(3)) * (0.3 + 0.7 * side / maxSide))
            let block = Rect(x: x + (slot - w) / 2, y: blockArea.y + (blockArea.height - h) / 2, width: w, height: h)
            let selected = i == selectedTap || (model.selection.tapRange?.contains(i) ?? false)
            var color = opColor(tap.opType, ui)
            if !selected { color = color.withAlpha(0.55) }
            ui.drawList.fillRect(block, color: color, cornerRadius: ui.scaled(slot > 8 ? 2 : 0))
            if selected { ui.drawList.strokeRect(block.insetBy(-ui.scaled(2)), color: ui.theme.colors.text, thickness: ui.scaled(2), cornerRadius: ui.scaled(3)) }
            // Entropy mark under the block.
            if let s = summary, i < s.taps.count {
                let v = Float(value(s.taps[i], method: method) / max(maxValue, 1e-9))
                let mark = Rect(x: x + min(ui.scaled(1), slot * 0.1), y: area.maxY - labelRow - ui.scaled(6), width: max(1, (slot - ui.scaled(2)) * v), height: ui.scaled(4))
                ui.drawList.fillRect(mark, color: ColorMap.sequential.color(at: v))
            }
            let f = forms(i)
            let text = uniform.map { f[min($0, f.count - 1)] } ?? f[f.count - 1]
            if uniform != nil || ui.measurer.width(of: text[...], font: font) <= room {
                ui.drawText(Substring(text), in: Rect(x: x, y: area.y, width: slot, height: labelHeight), style: .small,
                            color: ui.theme.colors.textDim, alignment: .center)
            }
            let shape = Substring(tap.shape.map(String.init).joined(separator: "×"))
            let compact = Substring(tap.shape.count == 3 && tap.shape[1] == tap.shape[2] ? "\(tap.shape[0])·\(tap.shape[1])²" : "\(tap.shape[0])")
            for text in [shape, compact] where ui.measurer.width(of: text, font: font) <= room {
                ui.drawText(text, in: Rect(x: x, y: area.maxY - labelHeight, width: slot, height: labelHeight),
                            style: .small, color: ui.theme.colors.textDim, alignment: .center)
                break
            }
            if interaction.isHovered && mouse.x >= x && mouse.x < x + slot { hovered = i }
        }
        ui.drawList.popClip()

        // Select: click a tap, drag over a range.
        let tapAt: (Float) -> Int = { px in min(count - 1, max(0, Int(((px - area.x) / slot + geometry.start).rounded(.down)))) }
        if interaction.isDragging {
            let a = tapAt(interaction.pressPosition.x), b = tapAt(mouse.x)
            model.selection.tapRange = min(a, b)...max(a, b)
            model.selection.tap = b
            strip.revealedTap = b
        } else if interaction.isClicked {
            model.selection.tap = tapAt(mouse.x)
            model.selection.tapRange = nil
            model.selection.channels = []
            strip.revealedTap = model.selection.tap
            focusedView = 0
        }

        // (Right after the taps' interaction: a tooltip belongs to the last item.)
        if let h = hovered {
            let tap = taps[h]
            var text = "\(tap.name)\n\(tap.opType), \(tap.shape.map(String.init).joined(separator: "×"))"
            if let s = summary, h < s.taps.count {
                let t = s.taps[h]
                text += String(format: "\ninstance %.3f bits, ensemble %.3f bits, label information %.3f bits", t.instanceEntropy, t.ensembleEntropy, t.labelInformation)
            }
            // From the strip's top edge, so it stays over the strip instead of the chart's lines below.
            ui.tooltip(text, near: Vec2(mouse.x, rect.y))
        }

        // Block headers over their taps: click zooms to the block, drag pans.
        for (level, row) in groups.levels.enumerated() {
            let y = inner.y + Float(level) * headerRow
            // One form of the names for the whole row where every block in view has room for it.
            let inView = row.indices.filter { row[$0].taps.upperBound >= visible.lowerBound && row[$0].taps.lowerBound <= visible.upperBound }
            let formLevel = (0..<2).first { l in
                inView.allSatisfy { g in
                    let labels = row[g].labels
                    return ui.fits(labels[min(l, labels.count - 1)], width: Float(row[g].taps.count) * slot - ui.scaled(6))
                }
            }
            for g in inView {
                let group = row[g]
                let x0 = max(geometry.x(Float(group.taps.lowerBound)), area.x), x1 = min(geometry.x(Float(group.taps.upperBound + 1)), area.maxX)
                guard x1 - x0 >= 2 else { continue }
                let cell = Rect(x: x0 + 1, y: y, width: x1 - x0 - 2, height: labelHeight + ui.scaled(1))
                let hit = ui.interact("strip-block-\(level)-\(g)", rect: cell)
                let holds = group.taps.contains(selectedTap)
                let fill = holds ? ui.theme.colors.selection : (hit.isHovered ? ui.theme.colors.widgetHovered : ui.theme.colors.widget.withAlpha(g % 2 == 0 ? 0.9 : 0.55))
                ui.drawList.fillRect(cell, color: fill, cornerRadius: ui.scaled(2))
                let labels = group.labels
                let text = formLevel.map { labels[min($0, labels.count - 1)] } ?? labels.first { ui.fits($0, width: cell.width - ui.scaled(4)) }
                var shown = text.flatMap { ui.fits($0, width: cell.width - ui.scaled(4)) ? $0 : nil }
                if let shown {
                    ui.drawText(Substring(shown), in: cell, style: .small, color: holds ? ui.theme.colors.text : ui.theme.colors.textDim, alignment: .center)
                } else {
                    // Too narrow for even its shortest name (MobileNet's last block of three taps on
                    // a small window): the name starts in the cell and runs on over the taps after
                    // it that have no block in this row, rather than leaving the cell blank.
                    let next = inView.first { row[$0].taps.lowerBound > group.taps.upperBound }.map { geometry.x(Float(row[$0].taps.lowerBound)) } ?? area.maxX
                    let room = Rect(x: cell.x + ui.scaled(2), y: cell.y, width: min(next, area.maxX) - cell.x - ui.scaled(4), height: cell.height)
                    shown = labels.first { ui.fits($0, width: room.width) }
                    if let shown {
                        ui.drawText(Substring(shown), in: room, style: .small, color: holds ? ui.theme.colors.text : ui.theme.colors.textDim, alignment: .leading)
                    }
                }
                geometry.headers.append((level, g, cell, shown))
                if hit.isActive, hit.isDragging {
                    strip.start -= hit.dragDelta.x / slot
                    clampView()
                } else if hit.isClicked, !hit.isDragging {
                    zoomStrip(to: group.taps)
                    focusedView = 0
                }
                if hit.isHovered, !hit.isActive {
                    ui.tooltip("\(group.path): taps \(group.taps.lowerBound)–\(group.taps.upperBound) (\(group.taps.count))\nclick: show this block · drag: pan")
                }
            }
        }

        // The overview: every tap, with the part in view as a thumb to drag; zoom buttons beside it.
        if navigates {
            let y = area.maxY + ui.scaled(2)
            let buttonHeight = labelHeight + ui.scaled(1)
            var x = inner.maxX
            var buttons: [(String, String, Rect)] = []
            for (name, text) in [("all", "all"), ("zoom in", "+"), ("zoom out", "−")] {
                let w = ui.textWidth(text, style: .small) + ui.scaled(12)
                x -= w
                buttons.append((name, text, Rect(x: x, y: y, width: w, height: buttonHeight)))
                x -= ui.scaled(3)
            }
            for (name, text, r) in buttons {
                geometry.buttons[name] = r
                let hit = ui.interact("strip-\(name)", rect: r)
                ui.drawList.fillRect(r, color: hit.isHovered ? ui.theme.colors.widgetHovered : ui.theme.colors.widget, cornerRadius: ui.scaled(3))
                ui.drawText(Substring(text), in: r, style: .small, color: ui.theme.colors.text, alignment: .center, owner: "strip-\(name)")
                if hit.isClicked {
                    let current = strip.span ?? widest
                    let visibleSelected = Float(selectedTap) >= strip.start && Float(selectedTap) < strip.start + current
                    let anchor = visibleSelected ? Float(selectedTap) + 0.5 : strip.start + current / 2
                    let anchorX = area.x + (anchor - strip.start) * area.width / current
                    switch name {
                    case "zoom in": zoom(by: 1 / 1.6, around: anchor, at: anchorX)
                    case "zoom out": zoom(by: 1.6, around: anchor, at: anchorX)
                    default: strip.span = nil; strip.start = 0
                    }
                    focusedView = 0
                }
                ui.tooltip(name == "all" ? "show every tap (0)" : name == "zoom in" ? "zoom in (+, Ctrl+wheel)" : "zoom out (−, Ctrl+wheel)")
            }
            let track = Rect(x: inner.x, y: y + ui.scaled(2), width: max(ui.scaled(20), x - ui.scaled(6) - inner.x), height: buttonHeight - ui.scaled(4))
            ui.drawList.fillRect(track, color: ui.theme.colors.widget, cornerRadius: ui.scaled(2))
            let perTap = track.width / Float(count)
            if perTap >= 1 {
                for (i, tap) in taps.enumerated() {
                    ui.drawList.fillRect(Rect(x: track.x + Float(i) * perTap, y: track.y + ui.scaled(2), width: max(1, perTap - 1), height: track.height - ui.scaled(4)),
                                         color: opColor(tap.opType, ui).withAlpha(0.45))
                }
            }
            let current = strip.span ?? widest
            let thumb = Rect(x: track.x + strip.start * perTap, y: track.y, width: max(ui.scaled(6), current * perTap), height: track.height)
            let hit = ui.interact("strip-overview", rect: track)
            if hit.isPressed { strip.grab = thumb.contains(mouse) ? mouse.x - thumb.x : thumb.width / 2 }
            if hit.isActive, let grab = strip.grab {
                strip.start = (mouse.x - grab - track.x) / perTap
                clampView()
            }
            if !hit.isActive { strip.grab = nil }
            let shown = Rect(x: track.x + strip.start * perTap, y: track.y, width: thumb.width, height: track.height)
            ui.drawList.fillRect(shown, color: ui.theme.colors.accent.withAlpha(hit.isHovered || hit.isActive ? 0.45 : 0.3), cornerRadius: ui.scaled(2))
            ui.drawList.strokeRect(shown, color: ui.theme.colors.accent, thickness: 1, cornerRadius: ui.scaled(2))
            let selX = track.x + (Float(selectedTap) + 0.5) * perTap
            ui.drawList.line(from: Vec2(selX, track.y), to: Vec2(selX, track.maxY), color: ui.theme.colors.text, thickness: ui.scaled(2))
            geometry.overview = track
            geometry.thumb = shown
            ui.tooltip("taps \(Int(strip.start.rounded()))–\(min(count, Int((strip.start + current).rounded())) - 1) of \(count) in view: drag to pan, click to go there")
        }
        // A header, button or the overview moved the view after the taps were drawn: draw again.
        if geometry.start != strip.start || geometry.span != (strip.span ?? widest) { ui.requestFrame() }
        strip.geometry = geometry

    }
}
