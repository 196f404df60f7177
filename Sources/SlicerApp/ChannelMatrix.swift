import Foundation
import SlicerEngine
import SlicerInfo
import SlicerUI

/// A column of the channel matrix.
enum MatrixColumn: Hashable {
    /// The channel's entropy over one class's images (instance: mean per image; ensemble: pooled).
    case classEntropy(Int)
    case instance, ensemble, information, car
}

struct MatrixState {
    /// Sorted by this column (nil: channel order), descending when true. A column
    /// that disappears (CAR of another model) leaves the sort with it.
    var sortColumn: MatrixColumn?
    var descending = true
    /// The class × channel table drawn last (from `AppModel.classChannelTable`).
    var shownTable: ClassChannelTable?
    /// First class column shown when they do not all fit (Shift+wheel pages through them);
    /// a position in `columnClasses`, not a class index.
    var firstClass = 0
    /// Classes added as columns with the class picker (many classes), in the order added.
    var pinned: [Int] = []
    /// How the other columns are chosen (many classes).
    var ranking: AppModel.ClassRanking = .mostImages
    /// The class picker (type to search the classes) replaces the matrix while open.
    var pickerOpen = false
    var pickerQuery = ""
    /// The picker query's matches, kept between frames.
    var pickerSearch = ClassSearchMemo()
    /// Whether the picker's search field should take the keyboard on the next frame.
    var focusPicker = false
    /// The query the picker's list was last scrolled for (a new one starts at the top).
    var pickerListQuery = ""
    /// Where each class row of the picker was drawn in the last frame (class → rectangle).
    var pickerRows: [Int: Rect] = [:]
    /// The classes that have a column (selected, pinned, then the largest), drawn last frame.
    var columnClasses: [Int] = []
    /// The part of `columnClasses` on screen in the last frame.
    var shownClasses: [Int] = []
    /// Display row where a drag-brush started.
    var brushAnchor: Int?
    /// Brushed channels last frame: a channel brushed in another view is scrolled into sight.
    var lastBrushed: Set<Int> = []
    /// Where the rows were drawn in the last frame.
    var geometry: MatrixGeometry?
    /// "Classes…" sits in the tab row (a short panel) rather than on a row of its own.
    var classesInTabRow = false
    /// The progress shown over class columns being computed in the last frame (nil: none).
    var pendingText: String?
}

/// The matrix's rows as drawn in the last frame (tests, scripted scrolling).
struct MatrixGeometry {
    /// The visible part of the rows (inside the scroll bar).
    var viewport: Rect
    var rowHeight: Float
    /// y of display row 0 (moves with scrolling).
    var firstRowY: Float
    /// Channel of each display row (the sort).
    var order: [Int]
    var columns: [MatrixColumn]
    var columnX: [Float]
    var columnWidth: Float
    /// The header text drawn for each column (a name or one of its shorter forms).
    var headerTexts: [String]
    /// The column headers' band (above the rows' panel, not scrolled).
    var header: Rect
    /// The scrolling panel the rows are drawn (and clipped) in.
    var panel: Rect

    /// Where column `i`'s header is drawn.
    func headerRect(column i: Int) -> Rect {
        Rect(x: columnX[i], y: header.y, width: columnWidth, height: header.height)
    }

    /// The screen rectangle of the row showing channel `c`.
    func rowRect(channel c: Int) -> Rect? {
        order.firstIndex(of: c).map { Rect(x: viewport.x, y: firstRowY + Float($0) * rowHeight, width: viewport.width, height: rowHeight) }
    }
}

extension AppView {
    // MARK: Data

    /// Per-class channel values of a tap for the classes shown (one row per entry
    /// of `classes`, in that order; nil for a class without images): mean instance
    /// entropy, or ensemble entropy; nil while they are not available. The one
    /// place the matrix reads class × channel data, through the model's adapter
    /// (`AppModel.classChannelTable`): from the analysis's histograms for small
    /// models, computed on demand in the background (exact) for many classes.
    func matrixClassTable(_ snapshot: AnalysisSnapshot, tap: Int, classes: [Int], ensemble: Bool) -> [[Double?]]? {
        matrix.shownTable = model.classChannelTable(tap: tap, classes: classes)
        return matrix.shownTable?.values(ensemble: ensemble)
    }

    // MARK: Channel entropy matrix

    /// Rows = channels of the selected tap (scrolling, every one reachable), columns =
    /// classes, then the whole set's instance and ensemble entropy, label information
    /// and, once computed for this model and tap, CAR.
    func drawMatrix(_ ui: UIContext, _ rect: Rect) {
        guard let snapshot = model.snapshot, let summary = snapshot.summary, !summary.taps.isEmpty else {
            ui.drawText("analysing…", in: rect, color: ui.theme.colors.textDim, alignment: .center)
            return
        }
        let tapIndex = min(model.selection.tap, summary.taps.count - 1)
        let tap = summary.taps[tapIndex]
        let channels = tap.channelEnsembleEntropy.count
        let classNames = model.workspace.classNames
        let method = model.selection.method
        let ensemble = method != .instance
        guard channels > 0 else { return }
        let shown = shownCAR(tap: tapIndex).flatMap { $0.scores.channels == channels ? $0 : nil }
        let carPoints = shown.map { $0.scores.car.map { $0 * 100 } }
        // Rows of the classes shown (set below, once the columns are chosen).
        var classRows: [[Double?]] = []
        var rowOfClass: [Int: Int] = [:]

        func value(_ c: Int, _ column: MatrixColumn) -> Double? {
            switch column {
            case .classEntropy(let k): return rowOfClass[k].flatMap { classRows[safe: $0]?[safe: c] ?? nil }
            case .instance: return tap.channelInstanceEntropy[c]
            case .ensemble: return tap.channelEnsembleEntropy[c]
            case .information: return tap.channelLabelInformation[c]
            case .car: return carPoints?[c]
            }
        }

        // Columns: every class when they fit at a readable width, else a window of
        // them that Shift+wheel pages through; the summary columns stay at the right.
        let pad = ui.scaled(6)
        let line = ui.lineHeight(.small)
        let font = ui.font(.small)
        let labelWidth = ui.measurer.width(of: String(max(channels - 1, 0))[...], font: font) + ui.scaled(12)
        let summaryColumns: [MatrixColumn] = [.instance, .ensemble, .information] + (carPoints == nil ? [] : [.car])
        var inner = rect.insetBy(pad)
        let minColumn = ui.scaled(12)
        let classCount = min(classNames.count, model.network.classCount)
        // Many classes (ImageNet's 1,000) cannot all be columns: a row above the matrix
        // says which are shown and opens the class picker, which then replaces the matrix.
        let roomForClasses = max(1, Int((inner.width - labelWidth - ui.scaled(ui.theme.scrollbarWidth)) / minColumn) - summaryColumns.count)
        let manyClasses = classCount > roomForClasses
        if !manyClasses { matrix.pickerOpen = false }
        if matrix.pickerOpen {
            drawClassPicker(ui, inner, classNames: classNames, classCount: classCount)
            return
        }
        if manyClasses && !matrix.classesInTabRow {
            let controlsHeight = ui.widgetHeight + ui.scaled(ui.theme.spacing)
            drawMatrixClassControls(ui, Rect(x: inner.x, y: inner.y, width: inner.width, height: ui.widgetHeight),
                                    classCount: classCount, room: roomForClasses)
            inner = Rect(x: inner.x, y: inner.y + controlsHeight, width: inner.width, height: max(0, inner.height - controlsHeight))
        }
        let minRow = (line * 0.95).rounded(), maxRow = ui.scaled(18)
        // Legends and headers first: the rows take what is left, at least five of them. A
        // panel too short for that (1024×700 in large type) keeps the header pinned above
        // the rows, with shorter names if need be (the tooltip has them whole), and scrolls
        // the legends with the rows, below the last one.
        let legendHeight = matrixLegendHeight(ui, width: inner.width - labelWidth, withCAR: carPoints != nil)
        let longestName = classNames.map { ui.measurer.width(of: $0[...], font: font) }.max() ?? 0
        let headerNeed = min(longestName, inner.height * 0.42) + line * 0.9 + ui.scaled(4)
        let tight = inner.height < headerNeed + legendHeight + 5 * minRow
        let roughRows = inner.height - legendHeight - line * 4
        let scrolls = tight || Float(channels) * max(minRow, min(maxRow, roughRows / Float(channels))) > roughRows + 0.5
        let bar = scrolls ? ui.scaled(ui.theme.scrollbarWidth) : 0
        let gridWidth = inner.width - labelWidth - bar
        let fitting = max(1, Int(gridWidth / minColumn) - summaryColumns.count)
        // Every class when they fit; else the selected and picked classes, then the largest.
        let columnClasses = model.matrixClasses(limit: fitting, pinned: matrix.pinned, ranking: matrix.ranking, tap: tapIndex)
            .filter { $0 < classCount }
        let shownClasses = min(columnClasses.count, fitting)
        matrix.firstClass = max(0, min(matrix.firstClass, columnClasses.count - shownClasses))
        let shownClassIndices = Array(columnClasses[matrix.firstClass..<(matrix.firstClass + shownClasses)])
        matrix.columnClasses = columnClasses
        matrix.shownClasses = shownClassIndices
        classRows = matrixClassTable(snapshot, tap: tapIndex, classes: shownClassIndices, ensemble: ensemble) ?? []
        rowOfClass = Dictionary(shownClassIndices.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let classesPending = classRows.isEmpty && !shownClassIndices.isEmpty
        let columns = shownClassIndices.map { MatrixColumn.classEntropy($0) } + summaryColumns
        let colWidth = gridWidth / Float(columns.count)
        let gridX = inner.x + labelWidth
        if let sorted = matrix.sortColumn, !columns.contains(sorted) {
            // A class paged out of view keeps its sort; one no longer a column loses it.
            if case .classEntropy(let k) = sorted, columnClasses.contains(k) {} else { matrix.sortColumn = nil }
        }

        // Header: upright names when they all fit a column, else turned upwards.
        let headerAlternatives = columns.map { headerTexts($0, classNames) }
        let upright = headerAlternatives.allSatisfy { ui.fits($0[0], width: colWidth - ui.scaled(2)) }
        // Turned names may take up to 42 % of the height: enough for every 10-class name at
        // 1024×700; longer names (ImageNet's) use their shorter forms.
        let longest = headerAlternatives.map { ui.measurer.width(of: $0[0][...], font: font) }.max() ?? 0
        // Tight: names up to the room left by four rows, at most 42 % of the height, so that
        // short forms ("goldfish", "tench") are read rather than bare class indices.
        let tightRow = (line * 0.85).rounded()
        // The sort marker's band under the names is slimmer when tight (a smaller ▾).
        let markerBand: Float = tight ? 0.6 : 0.9
        let tightCap = min(longest, ui.scaled(160), inner.height * 0.42, inner.height - 4 * tightRow - line * markerBand - ui.scaled(6))
        let cap = tight ? max(line * 1.5, tightCap) : max(line * 3, min(longest, inner.height * 0.42))
        let chosen = headerAlternatives.map { texts in upright ? texts[0] : (texts.first { ui.fits($0, width: cap) } ?? texts.last!) }
        let headerHeight = (upright ? line : chosen.map { ui.measurer.width(of: $0[...], font: font) }.max() ?? line) + line * markerBand
        // The scrolling panel under the header: the rows, and (tight) the legends after them.
        let viewportHeight = max(0, inner.height - headerHeight - ui.scaled(2) - (tight ? 0 : legendHeight + ui.scaled(2)))
        // Tight panels pack rows a little closer (the channel numbers are digits: no descenders).
        let rowHeight = tight ? tightRow : max(minRow, min(maxRow, viewportHeight / Float(channels)))
        let viewport = Rect(x: inner.x, y: inner.y + headerHeight + ui.scaled(2), width: inner.width, height: viewportHeight)
        let headerRect = Rect(x: gridX, y: inner.y, width: gridWidth, height: headerHeight)
        guard viewport.height > 0, gridWidth > 0 else { return }

        // Order of the rows.
        var order = Array(0..<channels)
        if let sorted = matrix.sortColumn {
            let keys = order.map { value($0, sorted) ?? -.infinity }
            order.sort { a, b in
                if keys[a] != keys[b] { return matrix.descending ? keys[a] > keys[b] : keys[a] < keys[b] }
                return a < b
            }
        }

        // Colour ranges: entropies share one scale; label information and CAR have their own.
        var maxBits = 1e-9
        for c in 0..<channels {
            for column in columns where column.isEntropy { maxBits = max(maxBits, value(c, column) ?? 0) }
        }
        let maxInfo = max(1e-9, tap.channelLabelInformation.max() ?? 0)
        let maxCAR = max(1e-9, carPoints?.map(abs).max() ?? 0)
        func color(_ v: Double?, _ column: MatrixColumn) -> Color {
            guard let v else { return ui.theme.colors.widget }
            switch column {
            case .information: return ColorMap.warm.color(at: Float(v / maxInfo))
            case .car: return ColorMap.diverging.color(at: 0.5 + 0.5 * Float(v / maxCAR))
            default: return ColorMap.sequential.color(at: Float(v / maxBits))
            }
        }

        // The header stays where it is whatever the scroll: outside the rows' panel.
        drawMatrixHeader(ui, header: headerRect, columns: columns, texts: chosen,
                         full: headerAlternatives, upright: upright, markerShare: markerBand - 0.1, colWidth: colWidth, classCount: columnClasses.count, shownClasses: shownClasses,
                         channels: channels, labelRect: Rect(x: inner.x, y: inner.y, width: labelWidth, height: headerHeight))
        func legends(at y: Float) {
            drawMatrixLegends(ui, Rect(x: gridX, y: y, width: gridWidth, height: legendHeight),
                              maxBits: maxBits, maxInfo: maxInfo, maxCAR: carPoints == nil ? nil : maxCAR, method: method, shown: shown)
        }

        // Keyboard (matrix focused): Page Up/Down and Home/End scroll the rows.
        let panelLabel = "matrix-rows"
        let rowsHeight = Float(channels) * rowHeight
        let contentHeight = tight ? rowsHeight + ui.scaled(4) + legendHeight : rowsHeight
        var scroll = ui.scrollOffset(ofPanel: panelLabel).y
        let maxScroll = max(0, contentHeight - viewport.height)
        if focusedView == 2 && !ui.wantsTextInput {
            if ui.shortcut(.pageDown) { scroll += viewport.height - rowHeight }
            if ui.shortcut(.pageUp) { scroll -= viewport.height - rowHeight }
            if ui.shortcut(.home) { scroll = 0 }
            if ui.shortcut(.end) { scroll = maxScroll }
        }
        // A single channel brushed elsewhere (bars, scatter, maps) comes into view.
        let brushed = model.selection.channels
        if brushed != matrix.lastBrushed, brushed.count == 1, let c = brushed.first, let row = order.firstIndex(of: c) {
            let y = Float(row) * rowHeight
            if y < scroll || y + rowHeight > scroll + viewport.height { scroll = y - (viewport.height - rowHeight) / 2 }
        }
        // Until the panel has measured its content the scroll offset would be clamped to 0:
        // keep the news for the next frame.
        if ui.contentSize(ofPanel: panelLabel).y >= contentHeight - 1 { matrix.lastBrushed = brushed }
        // Auto-scroll while a brush is dragged past the top or bottom.
        if matrix.brushAnchor != nil, ui.input.isDown(.left) {
            let m = ui.input.mousePosition.y
            if m < viewport.y { scroll -= rowHeight; ui.requestFrame(after: 0.03) }
            if m > viewport.maxY { scroll += rowHeight; ui.requestFrame(after: 0.03) }
        }
        scroll = max(0, min(maxScroll, scroll))
        ui.setScrollOffset(Vec2(0, scroll), ofPanel: panelLabel)

        ui.beginPanel(panelLabel, rect: viewport, options: [.scrollable])
        let content = ui.cell(height: .points(contentHeight / ui.scale))
        let rowsTop = content.y
        let firstRow = max(0, min(channels, Int(scroll / rowHeight)))
        let lastRow = max(0, min(channels, Int((scroll + viewport.height) / rowHeight) + 1))
        let mask = model.selection.mask.channels[tapIndex] ?? []
        for row in firstRow..<max(firstRow, lastRow) {
            let c = order[row]
            let y = rowsTop + Float(row) * rowHeight
            for (i, column) in columns.enumerated() {
                let r = Rect(x: gridX + Float(i) * colWidth, y: y, width: colWidth - (colWidth > 4 ? 1 : 0), height: rowHeight - 1)
                ui.drawList.fillRect(r, color: color(value(c, column), column))
            }
            let labelCell = Rect(x: inner.x, y: y, width: labelWidth - ui.scaled(4), height: rowHeight - 1)
            let isBrushed = brushed.contains(c)
            if isBrushed { ui.drawList.fillRect(labelCell, color: ui.theme.colors.accent, cornerRadius: ui.scaled(2)) }
            ui.drawText(Substring(String(c)), in: labelCell.insetBy(dx: ui.scaled(3), dy: 0), style: .small,
                        color: isBrushed ? ui.theme.colors.textOnAccent : (mask.contains(c) ? ui.theme.colors.error : ui.theme.colors.textDim),
                        alignment: .trailing)
            if mask.contains(c) {
                // An ablated channel: struck through across its row.
                ui.drawList.line(from: Vec2(gridX, y + rowHeight / 2), to: Vec2(gridX + gridWidth, y + rowHeight / 2),
                                 color: ui.theme.colors.error, thickness: ui.scaled(1.5))
            }
        }
        // Brushed rows: an outline around each run of them, over the colours.
        var row = firstRow
        while row < lastRow {
            guard brushed.contains(order[row]) else { row += 1; continue }
            var end = row
            while end + 1 < lastRow && brushed.contains(order[end + 1]) { end += 1 }
            let r = Rect(x: gridX, y: rowsTop + Float(row) * rowHeight, width: gridWidth - 1, height: Float(end - row + 1) * rowHeight - 1)
            ui.drawList.strokeRect(r.insetBy(-1), color: ui.theme.colors.text, thickness: ui.scaled(2))
            row = end + 1
        }
        // The rows' visible part (in tight mode the legends may share the panel).
        let visibleTop = max(viewport.y, rowsTop), visibleBottom = min(viewport.maxY, rowsTop + rowsHeight)
        let rowsRect = Rect(x: inner.x, y: visibleTop, width: labelWidth + gridWidth, height: max(0, visibleBottom - visibleTop))
        layout["matrixGrid"] = Rect(x: gridX, y: rowsRect.y, width: gridWidth, height: rowsRect.height)
        matrix.geometry = MatrixGeometry(viewport: rowsRect,
                                         rowHeight: rowHeight, firstRowY: rowsTop, order: order, columns: columns,
                                         columnX: columns.indices.map { gridX + Float($0) * colWidth }, columnWidth: colWidth,
                                         headerTexts: chosen, header: headerRect, panel: viewport)
        handleMatrixPointer(ui, rowsRect: rowsRect, contentY: rowsTop, rowHeight: rowHeight, order: order, gridX: gridX,
                            colWidth: colWidth, columns: columns) { c, column in
            matrixTooltip(c, column, value: value(c, column), tap: tap, classNames: classNames, method: method, shown: shown)
        }
        if tight { legends(at: rowsTop + rowsHeight + ui.scaled(4)) }
        ui.endPanel()
        matrix.pendingText = nil
        if classesPending {
            // On-demand class columns (many classes) are being computed: say how far, from
            // the work's own count of images binned, over them instead of leaving them blank.
            let classArea = Rect(x: gridX, y: rowsRect.y, width: colWidth * Float(shownClasses), height: rowsRect.height)
            let progress = model.classChannelProgress
            let total = (progress?.total ?? 0) > 0 ? progress?.total ?? 0 : matrixPendingImages(shownClassIndices)
            let done = min(progress?.done ?? 0, total)
            let percent = ClassChannelValues.percent(done, total)
            let texts = ["computing \(shownClasses) class columns: \(percent) % of \(formatCount(total)) images",
                         "computing \(shownClasses) classes: \(percent) %", "computing \(percent) %", "\(percent) %"]
            if let text = ui.firstFitting(texts, width: classArea.width - ui.scaled(12)) {
                let line = ui.lineHeight(.small)
                let box = Rect(x: classArea.x, y: classArea.y + ui.scaled(4), width: classArea.width, height: line + ui.scaled(6))
                ui.drawList.fillRect(box, color: ui.theme.colors.panel.withAlpha(0.9), cornerRadius: ui.scaled(3))
                // The box fills from the left as the images are binned: a bar behind the words.
                let filled = Rect(x: box.x, y: box.maxY - ui.scaled(3), width: box.width * Float(done) / Float(max(1, total)), height: ui.scaled(3))
                ui.drawList.fillRect(filled, color: ui.theme.colors.accent, cornerRadius: ui.scaled(1))
                ui.drawText(text[...], in: box, style: .small, color: ui.theme.colors.text, alignment: .center)
                matrix.pendingText = text
            }
            layout["matrixPending"] = classArea
        }
        // Brushing here is not "brushed elsewhere": the row is where the pointer is.
        if model.selection.channels != brushed { matrix.lastBrushed = model.selection.channels }
        // Shift+wheel pages through the class columns when they do not all fit.
        // (and a horizontal wheel or trackpad swipe).
        let sideways = ui.input.modifiers.contains(.shift) ? ui.input.wheel.y : -ui.input.wheel.x
        if columnClasses.count > shownClasses, sideways != 0,
           Rect(x: gridX, y: inner.y, width: gridWidth, height: viewport.maxY - inner.y).contains(ui.input.mousePosition) {
            let step = (sideways > 0 ? -1 : 1) * max(1, shownClasses / 2)
            matrix.firstClass = max(0, min(columnClasses.count - shownClasses, matrix.firstClass + step))
        }
        if !tight { legends(at: inner.maxY - legendHeight) }
    }

    /// Click a row, drag across rows (auto-scrolling past the edges), Ctrl/Shift-click to add; hover reads a cell.
    private func handleMatrixPointer(_ ui: UIContext, rowsRect: Rect, contentY: Float, rowHeight: Float, order: [Int],
                                     gridX: Float, colWidth: Float, columns: [MatrixColumn],
                                     tooltip: (Int, MatrixColumn) -> String) {
        let hit = ui.interact("matrix", rect: rowsRect)
        if hit.isHovered || hit.isActive { ui.setCursor(.crosshair) }
        let rowAt: (Float) -> Int = { y in min(order.count - 1, max(0, Int((y - contentY) / rowHeight))) }
        let mouse = ui.input.mousePosition
        if hit.isPressed { matrix.brushAnchor = rowAt(mouse.y) }
        if hit.isActive, hit.isDragging, let anchor = matrix.brushAnchor {
            let current = rowAt(mouse.y)
            model.selection.channels = Set(order[min(anchor, current)...max(anchor, current)])
            let band = Rect(x: rowsRect.x, y: contentY + Float(min(anchor, current)) * rowHeight, width: rowsRect.width,
                            height: Float(abs(current - anchor) + 1) * rowHeight)
            ui.drawList.fillRect(band, color: ui.theme.colors.brushFill)
            ui.drawList.strokeRect(band, color: ui.theme.colors.brushStroke, thickness: max(1, ui.scaled(1)))
            focusedView = 2
        } else if hit.isClicked, let anchor = matrix.brushAnchor {
            brushChannel(order[anchor], ui)
            focusedView = 2
        }
        if !hit.isActive { matrix.brushAnchor = nil }
        if hit.isHovered, !hit.isActive {
            let c = order[rowAt(mouse.y)]
            let i = Int((mouse.x - gridX) / colWidth)
            let text = i >= 0 && i < columns.count ? tooltip(c, columns[i]) : "channel \(c)\nclick: brush · drag: brush rows · ctrl-click: add"
            ui.showTooltip(text, near: mouse)
        }
    }

    func matrixTooltip(_ c: Int, _ column: MatrixColumn, value: Double?, tap: TapSummary, classNames: [String],
                               method: EntropyMethod, shown: ShownCAR?) -> String {
        let measure = method == .instance ? "mean instance entropy" : "ensemble entropy"
        let v = value.map { String(format: "%.3f", $0) } ?? "—"
        switch column {
        case .classEntropy(let k):
            return "channel \(c) · \(classNames[safe: k] ?? "class \(k)")\n\(measure) over the class's images: \(v) bits"
        case .instance:
            return "channel \(c)\nmean instance entropy: \(v) bits (ceiling \(String(format: "%.3f", tap.channelInstanceCeiling)) bits)"
        case .ensemble:
            return "channel \(c)\nensemble entropy: \(v) bits"
        case .information:
            return "channel \(c)\nlabel information: \(v) bits"
        case .car:
            let note = shown.map { $0.matchesMask ? "" : "\n(computed \($0.record.key.mask.isEmpty ? "without a mask" : "under another mask"))" } ?? ""
            return "channel \(c)\nCAR: \(value.map { String(format: "%.2f", $0) } ?? "—") accuracy points" + note
        }
    }

    private func headerTexts(_ column: MatrixColumn, _ classNames: [String]) -> [String] {
        switch column {
        case .classEntropy(let k):
            let name = classNames[safe: k] ?? "class \(k)"
            return classNameAlternatives(name) + [String(k)]
        case .instance: return ["instance", "inst"]
        case .ensemble: return ["ensemble", "ens"]
        case .information: return ["label info", "info"]
        case .car: return ["CAR (points)", "CAR"]
        }
    }

    private func drawMatrixHeader(_ ui: UIContext, header: Rect, columns: [MatrixColumn], texts: [String], full: [[String]], upright: Bool, markerShare: Float,
                                  colWidth: Float, classCount: Int, shownClasses: Int, channels: Int, labelRect: Rect) {
        let line = ui.lineHeight(.small)
        let marker = line * markerShare
        for (i, column) in columns.enumerated() {
            let r = Rect(x: header.x + Float(i) * colWidth, y: header.y, width: colWidth, height: header.height)
            let textRect = Rect(x: r.x, y: r.y, width: r.width, height: r.height - marker)
            let hit = ui.interact("matrix-col-\(column)", rect: r)
            let sorted = matrix.sortColumn == column
            let selectedClass: Bool = {
                if case .classEntropy(let k) = column { return model.selection.classes.contains(k) || matrix.pinned.contains(k) } else { return false }
            }()
            let color = sorted || hit.isHovered || selectedClass ? ui.theme.colors.text : ui.theme.colors.textDim
            if hit.isHovered { ui.drawList.fillRect(r, color: ui.theme.colors.widgetHovered, cornerRadius: ui.scaled(2)) }
            if upright {
                ui.drawText(texts[i][...], in: Rect(x: r.x, y: textRect.maxY - line, width: r.width, height: line), style: .small, color: color, alignment: .center)
            } else {
                ui.drawVerticalText(texts[i][...], in: textRect, color: color)
            }
            if sorted {
                // ▾ descending, ▴ ascending, under the name.
                let cx = r.center.x, y0 = r.maxY - marker * 0.8, s = marker * 0.35
                let points = matrix.descending ? (Vec2(cx - s, y0), Vec2(cx + s, y0), Vec2(cx, y0 + s * 1.2))
                    : (Vec2(cx - s, y0 + s * 1.2), Vec2(cx + s, y0 + s * 1.2), Vec2(cx, y0))
                ui.drawList.fillTriangle(points.0, points.1, points.2, color: ui.theme.colors.accent)
            }
            if hit.isClicked {
                if sorted { matrix.descending.toggle() } else { matrix.sortColumn = column; matrix.descending = true }
            }
            if hit.isHovered {
                let what: String
                switch column {
                case .classEntropy: what = full[i][0] + ": entropy over this class's images"
                case .instance: what = "mean instance entropy over all images"
                case .ensemble: what = "ensemble entropy over all images"
                case .information: what = "label information: how much the channel's values say about the class"
                case .car: what = "CAR: accuracy points lost when the channel is set to 0"
                }
                ui.tooltip(what + "\nclick: sort" + (sorted ? " the other way" : ""))
            }
        }
        // Over the channel numbers: which classes are shown when not all fit.
        if classCount > shownClasses {
            let first = matrix.firstClass
            let texts = ["columns \(first + 1)–\(first + shownClasses) of \(classCount), Shift+wheel", "\(first + 1)–\(first + shownClasses)/\(classCount)"]
            if let text = texts.first(where: { ui.fits($0, width: header.height - ui.scaled(4)) }) {
                ui.drawVerticalText(text[...], in: labelRect, color: ui.theme.colors.textDim)
            }
        } else if let text = ui.firstFitting(["ch."], width: labelRect.width - ui.scaled(6)) {
            ui.drawText(text[...], in: Rect(x: labelRect.x, y: labelRect.maxY - line * 1.8, width: labelRect.width - ui.scaled(6), height: line),
                        style: .small, color: ui.theme.colors.textDim, alignment: .trailing)
        }
    }

    // MARK: Legends

    private func matrixLegendCount(withCAR: Bool) -> Int { withCAR ? 3 : 2 }

    /// Legends side by side when they fit (each needs about 100 points), else stacked.
    private func matrixLegendHeight(_ ui: UIContext, width: Float, withCAR: Bool) -> Float {
        let count = matrixLegendCount(withCAR: withCAR)
        let perRow = max(1, min(count, Int(width / ui.scaled(100))))
        let rows = (count + perRow - 1) / perRow
        return Float(rows) * legendBlockHeight(ui)
    }

    private func legendBlockHeight(_ ui: UIContext) -> Float { ui.lineHeight(.small) * 3 + ui.scaled(6) }

    private func drawMatrixLegends(_ ui: UIContext, _ rect: Rect, maxBits: Double, maxInfo: Double, maxCAR: Double?,
                                   method: EntropyMethod, shown: ShownCAR?) {
        var legends: [(titles: [String], map: ColorMap, range: ClosedRange<Float>)] = [
            (["entropy, bits (\(method == .instance ? "instance" : "ensemble"))", "entropy, bits"], .sequential, 0...Float(maxBits)),
            (["label information, bits", "label info, bits"], .warm, 0...Float(maxInfo)),
        ]
        if let maxCAR {
            let note = shown?.matchesMask == false ? " (other mask)" : ""
            legends.append((["CAR, accuracy points" + note, "CAR, points" + note, "CAR, points"], .diverging, Float(-maxCAR)...Float(maxCAR)))
        }
        let perRow = max(1, min(legends.count, Int(rect.width / ui.scaled(100))))
        let width = rect.width / Float(perRow)
        let block = legendBlockHeight(ui)
        let line = ui.lineHeight(.small)
        for (i, legend) in legends.enumerated() {
            let x = rect.x + Float(i % perRow) * width, y = rect.y + Float(i / perRow) * block
            let cell = Rect(x: x, y: y, width: width - ui.scaled(10), height: block)
            layout["matrixLegend\(i)"] = cell
            statusLine(ui, legend.titles, in: Rect(x: cell.x, y: cell.y + ui.scaled(2), width: cell.width, height: line), color: ui.theme.colors.text)
            ui.drawColorLegend(legend.map, range: legend.range, unit: "", in: Rect(x: cell.x, y: cell.y + line + ui.scaled(4), width: cell.width, height: block - line - ui.scaled(4)),
                               tickCount: cell.width < ui.scaled(150) ? 2 : min(5, Int(cell.width / ui.scaled(40))))
        }
    }
}

extension MatrixColumn {
    var isClass: Bool { if case .classEntropy = self { return true } else { return false } }
    /// Columns coloured on the shared entropy scale.
    var isEntropy: Bool {
        switch self {
        case .classEntropy, .instance, .ensemble: return true
        case .information, .car: return false
        }
    }
}

// MARK: Many classes: which are columns, and the class picker

extension AppView {
    /// Images of `classes` (what an on-demand class table runs the network over).
    func matrixPendingImages(_ classes: [Int]) -> Int {
        let counts = model.classImageCounts
        return classes.reduce(0) { $0 + (counts[safe: $1] ?? 0) }
    }

    /// The words above the matrix that say which classes have a column, for the columns `room` allows.
    /// Whether the classes do not all fit as columns at 12 points in a panel `width` wide
    /// (ImageNet's 1,000): the matrix then shows a choice of them, with "Classes…".
    func matrixHasManyClasses(_ ui: UIContext, width: Float) -> Bool {
        guard let tap = model.snapshot?.summary?.taps[safe: min(model.selection.tap, (model.snapshot?.summary?.taps.count ?? 1) - 1)] else { return false }
        let channels = tap.channelEnsembleEntropy.count
        let labelWidth = ui.measurer.width(of: String(max(channels - 1, 0))[...], font: ui.font(.small)) + ui.scaled(12)
        let inner = width - 2 * ui.scaled(6)
        let room = max(1, Int((inner - labelWidth - ui.scaled(ui.theme.scrollbarWidth)) / ui.scaled(12)) - 4)
        return min(model.workspace.classNames.count, model.network.classCount) > room
    }

    func matrixColumnSummary(classCount: Int, room: Int) -> [String] {
        let selected = model.selection.classes.count
        let added = matrix.pinned.filter { !model.selection.classes.contains($0) }.count
        let top = max(0, room - selected - added)
        var parts: [String] = []
        if selected > 0 { parts.append("\(selected) selected") }
        if added > 0 { parts.append("\(added) added") }
        let total = formatCount(classCount)
        if top > 0 {
            let long = matrix.ranking == .mostImages ? "\(top) with the most images" : "\(top) most distinct here"
            let short = matrix.ranking == .mostImages ? "top \(top) by images" : "top \(top) by distinctness"
            return [(parts + [long]).joined(separator: " · ") + " of \(total) classes",
                    (parts + [short]).joined(separator: " · ") + " of \(total)",
                    "top \(top) of \(total)", "\(total) classes"]
        }
        return [parts.joined(separator: " · ") + " of \(total) classes", parts.joined(separator: " · "), "\(total) classes"]
    }

    /// "Classes…" and what the columns are, above the matrix of a many-class model.
    func drawMatrixClassControls(_ ui: UIContext, _ rect: Rect, classCount: Int, room: Int) {
        let label = "Classes…"
        let width = ui.fittingWidth(button: label)
        let button = Rect(x: rect.x, y: rect.y, width: width, height: rect.height)
        layout["matrixClassesButton"] = button
        if ui.button(label, rect: button) { openClassPicker() }
        ui.tooltip("Choose the classes shown as columns: type to search \(formatCount(classCount)) class names")
        let text = Rect(x: button.maxX + ui.scaled(8), y: rect.y, width: max(0, rect.maxX - button.maxX - ui.scaled(8)), height: rect.height)
        statusLine(ui, matrixColumnSummary(classCount: classCount, room: room), in: text, color: ui.theme.colors.textDim)
    }

    func openClassPicker() {
        matrix.pickerOpen = true
        matrix.focusPicker = true
        focusedView = 2
    }

    /// Adds class `k` as a column, or takes it away (a selected class is unselected).
    func toggleMatrixClass(_ k: Int) {
        if model.selection.classes.contains(k) {
            model.selection.classes.remove(k)
            matrix.pinned.removeAll { $0 == k }
        } else if let i = matrix.pinned.firstIndex(of: k) {
            matrix.pinned.remove(at: i)
        } else {
            matrix.pinned.append(k)
            // Show the new column: the added classes come right after the selected ones.
            matrix.firstClass = 0
        }
    }

    /// Type to search the classes; click one to add or remove its column. Drawn in the
    /// matrix's place, so it has the panel's height for the matches.
    func drawClassPicker(_ ui: UIContext, _ rect: Rect, classNames: [String], classCount: Int) {
        let names = Array(classNames.prefix(classCount))
        let matches = matrix.pickerSearch.matches(matrix.pickerQuery, in: names)
        let counts = model.classImageCounts
        let spacing = ui.scaled(ui.theme.spacing)
        let doneWidth = ui.fittingWidth(button: "Done"), clearWidth = ui.fittingWidth(button: "Clear added")
        var close = false
        layout["matrixPicker"] = rect
        if ui.shortcut(.escape) { close = true }
        ui.panel("class-picker", rect: Rect(x: rect.x, y: rect.y, width: rect.width, height: ui.widgetHeight + spacing), options: []) {
            ui.row(.fraction(1), .points(clearWidth / ui.scale), .points(doneWidth / ui.scale))
            if matrix.focusPicker {
                ui.focusTextField("##class-search")
                matrix.focusPicker = false
            }
            ui.textField("##class-search", text: &matrix.pickerQuery, placeholder: "search classes, e.g. tabby")
            layout["matrixPickerField"] = ui.lastItem.rect
            // Return adds (or removes) the best match: type "tabby", Return.
            if ui.lastItem.wasSubmitted, let first = matches.first {
                toggleMatrixClass(first)
                ui.focusTextField("##class-search")
            }
            if ui.button("Clear added") { matrix.pinned = [] }
            ui.tooltip("Take away every class added here (selected classes stay)")
            if ui.button("Done") { close = true }
        }
        let line = ui.lineHeight(.small)
        var y = rect.y + ui.widgetHeight + spacing
        let shown = Set(model.selection.classes).union(matrix.pinned)
        let caption = ["\(formatCount(matches.count)) of \(formatCount(classCount)) classes · click: add or remove a column · Return: the first",
                       "\(formatCount(matches.count)) of \(formatCount(classCount)) · click: add/remove",
                       "\(formatCount(matches.count)) of \(formatCount(classCount))"]
        statusLine(ui, caption, in: Rect(x: rect.x, y: y, width: rect.width, height: line), color: ui.theme.colors.textDim)
        y += line + ui.scaled(4)
        // The rest of the columns: the largest classes, or those the tap treats most differently.
        let rankingOptions = [["most images", "most distinct at this tap"], ["most images", "most distinct"], ["images", "distinct"]]
        let fillLabels = ["then fill with:", "fill:", ""]
        for (options, label) in zip(rankingOptions, fillLabels) {
            let labelWidth = label.isEmpty ? 0 : ui.measurer.width(of: label[...], font: ui.font(.small)) + ui.scaled(6)
            let width = ui.fittingWidth(segmented: options, widths: .fitting)
            guard labelWidth + width <= rect.width || label.isEmpty else { continue }
            if !label.isEmpty {
                ui.drawText(label[...], in: Rect(x: rect.x, y: y, width: labelWidth, height: ui.widgetHeight), style: .small, color: ui.theme.colors.textDim)
            }
            var choice = matrix.ranking.rawValue
            ui.panel("class-ranking", rect: Rect(x: rect.x + labelWidth, y: y, width: min(width, rect.width - labelWidth), height: ui.widgetHeight), options: []) {
                if ui.segmented("##ranking", selection: &choice, options: options, widths: .fitting) {
                    matrix.ranking = AppModel.ClassRanking(rawValue: choice) ?? .mostImages
                }
                layout["matrixRanking"] = ui.lastItem.rect
                ui.tooltip("The columns after the selected and added classes: the classes with the most images, or those whose entropy at this tap is furthest from all images' (|H(class) − H(all)|, exact)")
            }
            y += ui.widgetHeight + ui.scaled(4)
            break
        }
        let area = Rect(x: rect.x, y: y, width: rect.width, height: max(0, rect.maxY - y))
        layout["matrixPickerList"] = area
        let rowHeight = ui.lineHeight() + ui.scaled(ui.theme.padding)
        let label = "class-picker-rows"
        // A new query starts at the top of its matches.
        if matrix.pickerListQuery != matrix.pickerQuery {
            matrix.pickerListQuery = matrix.pickerQuery
            ui.setScrollOffset(.zero, ofPanel: label)
        }
        let scroll = ui.scrollOffset(ofPanel: label).y
        ui.beginPanel(label, rect: area, options: [.background, .border, .scrollable])
        let content = ui.cell(height: .points(Float(matches.count) * rowHeight / ui.scale))
        let first = max(0, Int(scroll / rowHeight)), last = min(matches.count, first + Int(area.height / rowHeight) + 2)
        var rows: [Int: Rect] = [:]
        let bar = ui.scaled(ui.theme.scrollbarWidth)
        for n in first..<max(first, last) {
            let k = matches[n]
            let r = Rect(x: content.x, y: content.y + Float(n) * rowHeight, width: area.width - bar - ui.scaled(2), height: rowHeight)
            rows[k] = r
            let hit = ui.interact("pick-\(k)", rect: r)
            let isShown = shown.contains(k)
            if isShown { ui.drawList.fillRect(r, color: ui.theme.colors.selection, cornerRadius: ui.scaled(2)) }
            else if hit.isHovered { ui.drawList.fillRect(r, color: ui.theme.colors.widgetHovered, cornerRadius: ui.scaled(2)) }
            let mark = model.selection.classes.contains(k) ? "selected" : (isShown ? "added" : "")
            let n = counts[safe: k] ?? 0
            let detail = ["#\(k) · \(n) image\(n == 1 ? "" : "s")" + (mark.isEmpty ? "" : " · \(mark)"), "#\(k)" + (mark.isEmpty ? "" : " · \(mark)"), "#\(k)"]
            // The whole name where it fits, else a shorter form; the tooltip has it all.
            drawClassRow(ui, r, name: names[k], detail: ui.firstFitting(detail, width: r.width * 0.45) ?? "")
            if hit.isHovered { ui.tooltip(names[k] + (isShown ? "\nclick: remove its column" : "\nclick: add a column")) }
            if hit.isClicked { toggleMatrixClass(k) }
        }
        matrix.pickerRows = rows
        ui.endPanel()
        if matches.isEmpty {
            ui.drawText("no class name contains \"\(matrix.pickerQuery)\"", in: area, style: .small, color: ui.theme.colors.textDim, alignment: .center)
        }
        if close { matrix.pickerOpen = false }
    }
}
