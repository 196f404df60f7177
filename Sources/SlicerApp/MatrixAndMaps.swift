import Foundation
import SlicerEngine
import SlicerInfo
import SlicerUI

struct FeatureMapState {
    var enlarged: Int?
    /// The page of the grid shown when a tap has more maps than fit (2,048 at ResNet-50's end).
    var page = 0
    /// The tap and brushed channels the page last followed: a new brush elsewhere turns
    /// the grid to the page of the lowest brushed channel, unless one is already in view.
    var followed: (tap: Int, channels: Set<Int>)?
    /// The paging of the last frame: maps per page and pages (1 when all fit).
    var pageSize = 0
    var pageCount = 1
    /// Channels whose maps were drawn in the last frame (only the page in view).
    var drawnChannels: [Int] = []
    /// Map textures made, so that those of taps left can be freed.
    var textures: [String: TextureID] = [:]
}

/// How a grid of feature maps is cut into pages.
struct MapPaging: Equatable {
    var count: Int
    var pageSize: Int

    var pageCount: Int { pageSize <= 0 ? 1 : max(1, (count + pageSize - 1) / pageSize) }
    /// The channels on page `p` (the last one may be partial).
    func channels(onPage p: Int) -> Range<Int> {
        guard pageSize > 0 else { return 0..<count }
        let q = max(0, min(p, pageCount - 1))
        return (q * pageSize)..<min(count, (q + 1) * pageSize)
    }
    func page(of channel: Int) -> Int { pageSize <= 0 ? 0 : max(0, min(channel, count - 1)) / pageSize }
    /// The caption's range, counted from 1: "maps 257–512 of 2048".
    func caption(page p: Int) -> String {
        let r = channels(onPage: p)
        return "maps \(r.lowerBound + 1)–\(r.upperBound) of \(count)"
    }
}

extension AppView {
    // MARK: Channel entropy matrix

    func drawRightPanel(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        let tabHeight = ui.widgetHeight + ui.scaled(4)
        // The longest tab names that fit side by side: a tab is never cut.
        let names = [["Channel matrix", "CAR", "Entropy vs CAR"], ["Matrix", "CAR", "Entropy vs CAR"], ["Matrix", "CAR", "H vs CAR"]]
        let tabPad = ui.scaled(ui.theme.padding) * 4
        // A short panel (1024×700 in large type) of a many-class matrix puts "Classes…" at
        // the right of the tab row instead of on a row of its own: that row goes to the matrix.
        let classesWidth = ui.fittingWidth(button: "Classes…")
        let tabsWidth = { (set: [String]) in set.map { ui.measurer.width(of: $0[...], font: ui.font(.body)) + tabPad }.reduce(0, +) }
        let compact = rightTab == 0 && rect.height < ui.lineHeight(.small) * 14 && matrixHasManyClasses(ui, width: rect.width)
            && tabsWidth(names[names.count - 1]) + classesWidth + ui.scaled(10) <= rect.width
        matrix.classesInTabRow = compact
        let room = compact ? rect.width - classesWidth - ui.scaled(10) : rect.width - ui.scaled(12)
        let tabs = names.first { tabsWidth($0) <= room } ?? names[names.count - 1]
        ui.panel("right-tabs", rect: Rect(x: rect.x, y: rect.y, width: rect.width - (compact ? classesWidth + ui.scaled(6) : 0), height: tabHeight), options: []) {
            _ = ui.tabBar("right", selection: &rightTab, tabs: tabs.enumerated().map { "\($1)##tab\($0)" })
        }
        if compact {
            let classCount = min(model.workspace.classNames.count, model.network.classCount)
            let button = Rect(x: rect.maxX - classesWidth - ui.scaled(4), y: rect.y + ui.scaled(2), width: classesWidth, height: ui.widgetHeight)
            layout["matrixClassesButton"] = button
            if ui.button("Classes…##tabrow", rect: button) { openClassPicker() }
            let shown = matrixColumnSummary(classCount: classCount, room: matrix.shownClasses.count).first ?? ""
            ui.tooltip("Choose the classes shown as columns: type to search \(formatCount(classCount)) class names\nshown: \(shown)")
        }
        let body = Rect(x: rect.x, y: rect.y + tabHeight, width: rect.width, height: rect.height - tabHeight)
        switch rightTab {
        case 0: drawMatrix(ui, body)
        case 1: drawCARPanel(ui, body)
        default: drawScatter(ui, body)
        }
        focusFrame(ui, rect, view: 2)
    }

    // MARK: Feature-map viewer

    func drawFeatureMaps(_ ui: UIContext, _ rect: Rect) {
        ui.drawList.fillRect(rect, color: ui.theme.colors.panel, cornerRadius: ui.scaled(4))
        focusFrame(ui, rect, view: 3)
        let pad = ui.scaled(8)
        // The image panel gives the grid room on narrow windows (down to the 320-point minimum).
        let infoWidth = min(ui.scaled(200), max(ui.scaled(80), (rect.width * 0.35).rounded()))
        let info = Rect(x: rect.x + pad, y: rect.y + pad, width: infoWidth, height: rect.height - 2 * pad)
        let grid = Rect(x: info.maxX + pad, y: rect.y + pad, width: rect.maxX - info.maxX - 2 * pad, height: rect.height - 2 * pad)
        guard let shownMaps = model.featureMaps else {
            ui.drawText("running the image…", in: rect, color: ui.theme.colors.textDim, alignment: .center)
            return
        }
        layout["imageInfo"] = info
        drawImageInfo(ui, info, shownMaps)
        let tapIndex = min(model.selection.tap, shownMaps.taps.count - 1)
        let tap = shownMaps.taps[tapIndex]
        let values = shownMaps.values[tapIndex]
        // Only the selected tap's maps are labelled: its entropies alone are computed (a
        // ResNet-50's every tap took seconds on the frame that first showed the maps).
        let entropy = currentImageEntropy(tap: tapIndex)
        let hw = tap.valuesPerChannel
        let side = tap.mapSize
        let brushed = model.selection.channels
        let line = ui.lineHeight(.small)
        let area = Rect(x: grid.x, y: grid.y + line + ui.scaled(2), width: grid.width, height: grid.height - line - ui.scaled(2))
        // Grid layout: as many columns as fit squares of at least 28 points; a tap with more
        // maps than that (2,048) is paged, and only the page in view is drawn.
        let count = tap.channels
        let minCell = ui.scaled(28)
        var cols = 1
        var cellSize: Float = 0
        for c in stride(from: min(count, 64), through: 1, by: -1) {
            let rows = (count + c - 1) / c
            let size = min(area.width / Float(c), area.height / Float(rows) - 0)
            if size > cellSize { cellSize = size; cols = c }
        }
        var paging = MapPaging(count: count, pageSize: count)
        if cellSize < minCell {
            cols = max(1, Int(area.width / minCell))
            let rows = max(1, Int(area.height / minCell))
            cellSize = min(area.width / Float(cols), area.height / Float(rows))
            paging.pageSize = cols * rows
        }
        let pages = paging.pageCount
        if maps.followed?.tap != tapIndex { maps.page = 0 }
        if maps.followed.map({ $0.tap != tapIndex || $0.channels != brushed }) ?? true {
            // Brushed in another view (or here): bring the lowest brushed channel's page into view.
            if let lowest = brushed.min(), !brushed.contains(where: { paging.channels(onPage: maps.page).contains($0) }) {
                maps.page = paging.page(of: lowest)
            }
            maps.followed = (tapIndex, brushed)
        }
        if pages > 1, focusedView == 3, !ui.wantsTextInput {
            if ui.shortcut(.pageDown) { maps.page += 1 }
            if ui.shortcut(.pageUp) { maps.page -= 1 }
            if ui.shortcut(.home) { maps.page = 0 }
            if ui.shortcut(.end) { maps.page = pages - 1 }
        }
        if pages > 1, ui.input.wheel.y != 0, ui.isMouseOver(area), maps.enlarged == nil {
            maps.page += ui.input.wheel.y < 0 ? 1 : -1
        }
        maps.page = max(0, min(pages - 1, maps.page))
        maps.pageSize = paging.pageSize
        maps.pageCount = pages
        // One page: brushed channels first, then the rest in order. Paged: channel order, so
        // that a page is a fixed range of channels and the brushed ones are outlined on theirs.
        let order = pages > 1 ? Array(paging.channels(onPage: maps.page))
            : (0..<count).filter { brushed.contains($0) } + (0..<count).filter { !brushed.contains($0) }
        lastMapOrder = order
        // Caption, with the page buttons at its right when paged.
        var captionRect = Rect(x: grid.x, y: grid.y, width: grid.width, height: line)
        if pages > 1 {
            let buttonWidth = ui.fittingWidth(button: "◀"), buttonHeight = line + ui.scaled(2)
            let next = Rect(x: grid.maxX - buttonWidth, y: grid.y - ui.scaled(1), width: buttonWidth, height: buttonHeight)
            let prev = Rect(x: next.x - buttonWidth - ui.scaled(4), y: next.y, width: buttonWidth, height: buttonHeight)
            layout["mapsPrev"] = prev
            layout["mapsNext"] = next
            if ui.button("◀##maps-prev", rect: prev) { maps.page = max(0, maps.page - 1) }
            ui.tooltip("Previous page of maps (Page Up)")
            if ui.button("▶##maps-next", rect: next) { maps.page = min(pages - 1, maps.page + 1) }
            ui.tooltip("Next page of maps (Page Down)")
            captionRect.width = max(0, prev.x - ui.scaled(8) - grid.x)
        }
        let range = paging.caption(page: maps.page)
        let shape = "\(side.0)×\(side.1)"
        let captions = pages > 1
            ? ["\(tap.name) · \(range) (\(shape)) · page \(maps.page + 1) of \(pages) · instance entropy in bits",
               "\(tap.name) · \(range) (\(shape)) · page \(maps.page + 1) of \(pages)",
               "\(range) (\(shape)) · page \(maps.page + 1) of \(pages)", "\(range) · page \(maps.page + 1)/\(pages)", range,
               "\(paging.channels(onPage: maps.page).lowerBound + 1)–\(paging.channels(onPage: maps.page).upperBound)/\(count)"]
            : ["\(tap.name) · \(count) maps of \(shape) · instance entropy in bits", "\(tap.name) · \(count) maps of \(shape)", "\(count) maps of \(shape)"]
        layout["mapsCaption"] = captionRect
        statusLine(ui, captions, in: captionRect, color: ui.theme.colors.textDim)
        if let big = maps_enlarged(tap.channels) {
            drawEnlargedMap(ui, tap: tapIndex, channel: big, values: values, hw: hw, side: side, in: area,
                            entropy: entropy?.channels[safe: tapIndex]?[safe: big])
            maps.drawnChannels = [big]
            releaseMapTextures()
            return
        }
        cellSize = max(cellSize, ui.scaled(8))
        let labelHeight = line
        let showLabels = cellSize > ui.scaled(44)
        let mouse = ui.input.mousePosition
        var hoveredChannel: Int?
        var drawn: [Int] = []
        for (slot, c) in order.enumerated() {
            let x = area.x + Float(slot % cols) * cellSize, y = area.y + Float(slot / cols) * cellSize
            guard y + cellSize <= area.maxY + 1 else { break }
            drawn.append(c)
            let r = Rect(x: x + 1, y: y + 1, width: cellSize - 2, height: cellSize - 2 - (showLabels ? labelHeight : 0))
            drawMap(ui, tap: tapIndex, channel: c, values: values, hw: hw, side: side, in: r.fitted(aspect: Float(side.1) / Float(side.0)))
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
        maps.drawnChannels = drawn
        releaseMapTextures()
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

    /// One map large, at its own aspect ratio (a 7×7 map stays square), with its
    /// caption above and its colour key below, never over the data.
    func drawEnlargedMap(_ ui: UIContext, tap: Int, channel c: Int, values: [Float], hw: Int, side: (Int, Int), in area: Rect, entropy: Double?) {
        guard (c + 1) * hw <= values.count else { return }
        let slice = values[(c * hw)..<((c + 1) * hw)]
        let lo = slice.min() ?? 0, hi = slice.max() ?? 0
        let line = ui.lineHeight(.small)
        let bits = entropy.map { String(format: " · %.3f bits", $0) } ?? ""
        statusLine(ui, [String(format: "channel %d · min %.3g · max %.3g", c, lo, hi) + bits + " · click to go back",
                        String(format: "channel %d", c) + bits + " · click: back", "channel \(c)"],
                   in: Rect(x: area.x, y: area.y, width: area.width, height: line), color: ui.theme.colors.text)
        let legendHeight = hw == 1 ? 0 : line * 2 + ui.scaled(6)
        let space = Rect(x: area.x, y: area.y + line + ui.scaled(4), width: area.width, height: area.height - line - ui.scaled(8) - legendHeight)
        let image = space.fitted(aspect: Float(side.1) / Float(side.0))
        drawMap(ui, tap: tap, channel: c, values: values, hw: hw, side: side, in: image)
        ui.drawList.strokeRect(image.insetBy(-1), color: ui.theme.colors.panelBorder)
        layout["enlargedMap"] = image
        if hw > 1 {
            let legend = Rect(x: image.x, y: image.maxY + ui.scaled(6), width: max(image.width, min(area.width, ui.scaled(220))), height: legendHeight - ui.scaled(4))
            ui.drawColorLegend(.sequential, range: lo...(hi > lo ? hi : lo + 1), unit: "activation", in: legend, tickCount: 4)
        }
        if ui.interact("enlarged", rect: area).isClicked { self.maps.enlarged = nil }
    }

    /// One feature map as a colour-mapped texture (or, for 1×1 maps, a bar).
    func drawMap(_ ui: UIContext, tap: Int, channel c: Int, values: [Float], hw: Int, side: (Int, Int), in r: Rect) {
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
            if let id {
                maps.textures["map-\(tap)-\(c)"] = id
                ui.drawList.image(id, in: r)
            }
        }
    }

    /// Map textures of other taps kept before they are freed. The selected tap's are all
    /// kept (2,048 maps of 7×7 are 400 KB), so turning pages back and forth only draws:
    /// a new page makes its textures (a few ms for 444), an old one has them. Freeing is
    /// what costs (SDL's software renderer took 0.65 s for a page of 444, and an update
    /// of a texture in place as much), so it happens only after a tap change, for the
    /// taps left.
    static let mapTextureBudget = 1024

    /// Frees the map textures of taps other than the selected one once there are more than the budget.
    func releaseMapTextures() {
        guard maps.textures.count > AppView.mapTextureBudget, let textures else { return }
        let prefix = "map-\(model.selection.tap)-"
        for (key, id) in maps.textures where !key.hasPrefix(prefix) {
            textures.releaseTexture(id)
            maps.textures[key] = nil
        }
    }

    /// The shown image, its label and the top predictions. The lines under the thumbnail
    /// are planned first and the thumbnail takes the height left: a short panel (1024×700 in
    /// large type) gets a smaller thumbnail, and one too short for a readable thumbnail and
    /// every line drops predictions from the bottom, so no line is ever clipped.
    func drawImageInfo(_ ui: UIContext, _ rect: Rect, _ maps: FeatureMaps) {
        let names = model.workspace.classNames
        let input = maps.taps[0]
        let line = ui.lineHeight(.small)
        let gap = ui.scaled(6)
        let plan = AppView.imageInfoPlan(height: rect.height, width: rect.width, line: line, gap: gap,
                                         titleGap: ui.scaled(4), predictionGap: ui.scaled(2), minThumbnail: ui.scaled(40),
                                         predictions: min(3, maps.probabilities.count))
        let imageRect = Rect(x: rect.x, y: rect.y, width: plan.side, height: plan.side)
        layout["shownImage"] = imageRect
        let values = maps.values[0]
        if input.shape.count == 3, !values.isEmpty, plan.side > 0 {
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
            if let id { ui.drawList.image(id, in: imageRect.fitted(aspect: Float(w) / Float(h))) }
        }
        guard plan.title else { return }
        var y = imageRect.maxY + gap
        // Long class names (ImageNet's "European fire salamander, Salamandra salamandra")
        // give way to their shorter forms rather than being cut; the whole name on hover.
        var titles = ["drawn image"]
        var wholeTitle = "drawn image"
        if let i = model.selection.image, model.drawnPixels == nil {
            let label = model.workspace.images.labels[i]
            titles = label >= 0 && label < names.count
                ? classNameAlternatives(names[label]).map { "image \(i) · \($0)" } + ["image \(i) · #\(label)", "image \(i)"]
                : ["image \(i)"]
            wholeTitle = label >= 0 && label < names.count ? "image \(i) · \(names[label]) (class \(label))" : "image \(i)"
        }
        let titleRect = Rect(x: rect.x, y: y, width: rect.width, height: line)
        layout["imageTitle"] = titleRect
        statusLine(ui, titles, in: titleRect, color: ui.theme.colors.text)
        if ui.firstFitting(titles, width: titleRect.width, style: .small) != titles.first,
           ui.interact("image-title", rect: titleRect).isHovered {
            ui.showTooltip(wholeTitle, near: ui.input.mousePosition)
        }
        y += line + ui.scaled(4)
        let top = maps.probabilities.indices.sorted { maps.probabilities[$0] > maps.probabilities[$1] }.prefix(plan.predictions)
        for (n, k) in top.enumerated() {
            let p = maps.probabilities[k]
            let row = Rect(x: rect.x, y: y, width: rect.width, height: line)
            layout["prediction \(n)"] = row
            ui.drawList.fillRect(Rect(x: rect.x, y: y + 1, width: rect.width * p, height: line - 2), color: ui.theme.classPalette.color(at: k).withAlpha(0.6))
            let percent = String(format: " %.1f%%", p * 100)
            let forms = (k < names.count ? classNameAlternatives(names[k]) : []) + ["#\(k)"]
            let textRect = Rect(x: rect.x + ui.scaled(3), y: y, width: rect.width - ui.scaled(3), height: line)
            statusLine(ui, forms.map { $0 + percent }, in: textRect, color: ui.theme.colors.text)
            if ui.firstFitting(forms.map { $0 + percent }, width: textRect.width, style: .small) != forms[0] + percent,
               ui.interact("prediction-\(n)", rect: row).isHovered {
                ui.showTooltip((k < names.count ? names[k] : "class") + " (class \(k))" + percent, near: ui.input.mousePosition)
            }
            y += line + ui.scaled(2)
        }
    }

    /// How the image panel is shared: the thumbnail's side, whether the title line is shown
    /// and how many prediction lines. Lines come first (the thumbnail shrinks to make room)
    /// down to a thumbnail of `minThumbnail`; below that, predictions go from the bottom,
    /// then the title. The thumbnail never exceeds the width nor 55 % of the height when
    /// there is room to spare (the layout the app had before).
    nonisolated static func imageInfoPlan(height: Float, width: Float, line: Float, gap: Float, titleGap: Float, predictionGap: Float,
                                          minThumbnail: Float, predictions: Int) -> (side: Float, title: Bool, predictions: Int) {
        func text(_ title: Bool, _ n: Int) -> Float {
            title ? gap + line + titleGap + Float(n) * (line + predictionGap) : 0
        }
        let smallest = min(minThumbnail, width)
        var n = predictions
        while n > 0, height - text(true, n) < smallest { n -= 1 }
        let title = height - text(true, 0) >= smallest
        let room = max(0, height - text(title, title ? n : 0))
        let side = max(0, min(width, room, max(height * 0.55, smallest)))
        return (side.rounded(.down), title, title ? n : 0)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { index >= 0 && index < count ? self[index] : nil }
}

extension Rect {
    /// The largest rectangle of width/height `aspect` centred in this one.
    func fitted(aspect: Float) -> Rect {
        guard aspect > 0, width > 0, height > 0 else { return self }
        let w = min(width, height * aspect), h = w / aspect
        return Rect(x: x + (width - w) / 2, y: y + (height - h) / 2, width: w, height: h)
    }
}
