// Layout: rows of cells whose widths are fixed or fractional, nested columns, panels that
// clip and scroll their content, and splitters that divide a rectangle. Sizes are given in
// layout points and converted with the context's scale, so the whole UI scales together.

/// A width or height.
public enum Size: Sendable, Hashable {
    /// Height: what the widget needs. Width: same as `.fraction(1)`.
    case auto
    /// A fixed length in layout points (scaled to pixels).
    case points(Float)
    /// A share of the space left: for widths, after fixed columns and spacing; for heights,
    /// of the space from the cursor to the bottom of the enclosing area.
    case fraction(Float)

    /// All the space left: `.fraction(1)`.
    public static var fill: Size { .fraction(1) }
}

/// Cursor state of one layout area (the window, a panel or a column).
struct LayoutFrame {
    var body: Rect
    var spacing: Float
    var columns: [Size] = [.fraction(1)]
    var height: Size = .auto
    var xs: [Float] = []
    var widths: [Float] = []
    var cursorY: Float
    var column = 0
    var rowHeight: Float = 0
    var rowOpen = false
    /// Bottom-right corner of everything placed, for content size and scrolling.
    var extent: Vec2

    init(body: Rect, spacing: Float) {
        self.body = body
        self.spacing = spacing
        self.cursorY = body.y
        self.extent = body.origin
    }

    mutating func closeRow() {
        if rowOpen { cursorY += rowHeight + spacing }
        rowOpen = false
        column = 0
        rowHeight = 0
    }

    mutating func openRow(scale: Float) {
        closeRow()
        rowOpen = true
        let n = columns.count
        var fixed: Float = 0, shares: Float = 0
        for c in columns {
            switch c {
            case .points(let p): fixed += (p * scale).rounded()
            case .fraction(let f): shares += max(0, f)
            case .auto: shares += 1
            }
        }
        let free = max(0, body.width - fixed - spacing * Float(n - 1))
        xs.removeAll(keepingCapacity: true)
        widths.removeAll(keepingCapacity: true)
        var x = body.x
        for c in columns {
            let w: Float
            switch c {
            case .points(let p): w = (p * scale).rounded()
            case .fraction(let f): w = shares > 0 ? (free * max(0, f) / shares).rounded(.down) : 0
            case .auto: w = shares > 0 ? (free / shares).rounded(.down) : 0
            }
            xs.append(x)
            widths.append(w)
            x += w + spacing
        }
    }

    /// The next cell, `preferredHeight` tall unless the row fixes the height.
    mutating func place(preferredHeight: Float, scale: Float) -> Rect {
        if !rowOpen || column >= columns.count { openRow(scale: scale) }
        let h: Float
        switch height {
        case .auto: h = preferredHeight
        case .points(let p): h = (p * scale).rounded()
        case .fraction(let f): h = (max(0, body.maxY - cursorY) * f).rounded(.down)
        }
        let rect = Rect(x: xs[column], y: cursorY, width: widths[column], height: max(0, h))
        column += 1
        include(rect)
        return rect
    }

    mutating func include(_ rect: Rect) {
        rowHeight = max(rowHeight, rect.maxY - cursorY)
        extent = Vec2(max(extent.x, rect.maxX), max(extent.y, rect.maxY))
    }
}

/// Panel behaviour.
public struct PanelOptions: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let background = PanelOptions(rawValue: 1 << 0)
    public static let border = PanelOptions(rawValue: 1 << 1)
    /// Scrolls vertically when the content is taller than the panel.
    public static let scrollable = PanelOptions(rawValue: 1 << 2)
    /// Scrolls horizontally when the content is wider than the panel.
    public static let horizontalScroll = PanelOptions(rawValue: 1 << 3)
    /// Leaves the theme's padding around the content.
    public static let padded = PanelOptions(rawValue: 1 << 4)
    public static let standard: PanelOptions = [.background, .border, .scrollable, .padded]
}

/// What a panel remembers between frames.
struct PanelState {
    var scroll = Vec2.zero
    var contentSize = Vec2.zero
    var visibleSize = Vec2.zero
}

struct PanelFrame {
    var id: WidgetID
    var label: String
    var rect: Rect
    var content: Rect
    var padding: Float
    var options: PanelOptions
    var showsVertical: Bool
    var showsHorizontal: Bool
}

/// Places items of known widths left to right, wrapping to a new row where the next item
/// would cross the right edge: a toolbar that reflows instead of cutting its labels.
/// Items of one group stay on one row when the group fits on a row at all.
public struct FlowLayout: Sendable {
    public struct Item: Sendable, Hashable {
        public var width: Float
        /// Items with the same group wrap together.
        public var group: Int
        public init(width: Float, group: Int = 0) { self.width = width; self.group = group }
    }

    public struct Placement: Sendable, Hashable {
        public var row: Int
        public var x: Float
        public var width: Float
    }

    public var placements: [Placement] = []
    public var rowCount: Int { (placements.map(\.row).max() ?? -1) + 1 }

    /// - Parameters:
    ///   - maxWidth: the row width; an item wider than that gets a row of its own, cut to it.
    ///   - spacing: between items of a group; `groupSpacing` between groups.
    ///   - trailingGroup: a group set flush with the right end of its rows (a toolbar's
    ///     commands); it should be the last group.
    public init(_ items: [Item], maxWidth: Float, spacing: Float, groupSpacing: Float? = nil, trailingGroup: Int? = nil) {
        arrange(items, maxWidth: maxWidth, spacing: spacing, groupSpacing: groupSpacing)
        if let trailingGroup {
            let members = items.indices.filter { items[$0].group == trailingGroup }
            for row in Set(members.map { placements[$0].row }) {
                let onRow = members.filter { placements[$0].row == row }
                guard let last = onRow.last else { continue }
                let shift = max(0, maxWidth - placements[last].x - placements[last].width)
                for i in onRow { placements[i].x += shift }
            }
        }
    }

    private mutating func arrange(_ items: [Item], maxWidth: Float, spacing: Float, groupSpacing: Float?) {
        let gap = groupSpacing ?? spacing
        // `x` is where the next item would start; 0 means the row is still empty.
        var row = 0, x: Float = 0, index = 0
        while index < items.count {
            // The group starting here, and its width on one row.
            let group = items[index].group
            var end = index
            while end < items.count, items[end].group == group { end += 1 }
            let groupWidth = items[index..<end].reduce(-spacing) { $0 + $1.width + spacing }
            if x > 0 {
                if x + gap + groupWidth > maxWidth, groupWidth <= maxWidth {
                    row += 1
                    x = 0
                } else {
                    x += gap
                }
            }
            for item in items[index..<end] {
                if x > 0, x + item.width > maxWidth {
                    // A group wider than a row wraps inside itself.
                    row += 1
                    x = 0
                }
                let width = min(item.width, maxWidth)
                placements.append(Placement(row: row, x: x, width: width))
                x += width + spacing
            }
            x -= spacing
            index = end
        }
    }
}

/// A control in a flow: the width it needs (see `fittingWidth`) and how to declare it.
@MainActor
public struct FlowControl {
    public var width: Float
    /// Controls of one group wrap together.
    public var group: Int
    public var declare: () -> Void

    public init(width: Float, group: Int = 0, _ declare: @escaping () -> Void) {
        self.width = width
        self.group = group
        self.declare = declare
    }
}

extension UIContext {
    // MARK: Flows

    /// The flow of `controls` in rows of `width` (standard widget height, theme spacing).
    public func flowLayout(_ controls: [FlowControl], width: Float, groupSpacing: Float? = nil,
                           trailingGroup: Int? = nil) -> FlowLayout {
        FlowLayout(controls.map { FlowLayout.Item(width: $0.width, group: $0.group) }, maxWidth: width,
                   spacing: scaled(theme.spacing), groupSpacing: groupSpacing, trailingGroup: trailingGroup)
    }

    /// Height of `rows` rows of standard widgets.
    public func flowHeight(rows: Int) -> Float {
        Float(max(1, rows)) * (widgetHeight + scaled(theme.spacing)) - scaled(theme.spacing)
    }

    /// Declares `controls` at their widths, left to right from `origin`, wrapping to new rows
    /// at `width` instead of cutting their labels. Returns the rectangle they took.
    @discardableResult
    public func flow(_ controls: [FlowControl], at origin: Vec2, width: Float, groupSpacing: Float? = nil,
                     trailingGroup: Int? = nil) -> Rect {
        let layout = flowLayout(controls, width: width, groupSpacing: groupSpacing, trailingGroup: trailingGroup)
        flow(controls, layout: layout, at: origin)
        return Rect(x: origin.x, y: origin.y, width: width, height: flowHeight(rows: layout.rowCount))
    }

    /// Declares `controls` where a flow layout computed beforehand put them.
    public func flow(_ controls: [FlowControl], layout: FlowLayout, at origin: Vec2) {
        let rowHeight = widgetHeight + scaled(theme.spacing)
        for (control, place) in zip(controls, layout.placements) {
            area(Rect(x: origin.x + place.x, y: origin.y + Float(place.row) * rowHeight, width: place.width, height: widgetHeight)) {
                control.declare()
            }
        }
    }

    /// Flowed controls in the next cells of the current layout, as tall as their rows.
    public func flow(_ controls: [FlowControl], trailingGroup: Int? = nil) {
        let frame = layoutStack[layoutStack.count - 1]
        var probe = frame
        let width = probe.place(preferredHeight: 0, scale: scale).width
        let layout = flowLayout(controls, width: width, trailingGroup: trailingGroup)
        let cell = nextRect(preferredHeight: flowHeight(rows: layout.rowCount))
        flow(controls, layout: layout, at: cell.origin)
    }

    /// A button in a flow, at its fitting width.
    public func flowButton(_ label: String, group: Int = 0, action: @escaping () -> Void) -> FlowControl {
        FlowControl(width: fittingWidth(button: label), group: group) { [unowned self] in
            if self.button(label) { action() }
        }
    }

    // MARK: Explicit areas

    /// Lays out `body` inside `rect` (one column, standard widget height), e.g. a control at a
    /// place a flow layout chose. No clipping and no ID scope: the widgets behave as anywhere.
    public func area(_ rect: Rect, _ body: () -> Void) {
        layoutStack.append(LayoutFrame(body: rect, spacing: scaled(theme.spacing)))
        body()
        layoutStack.removeLast()
        layoutStack[layoutStack.count - 1].include(rect)
    }

    // MARK: Rows and cells

    /// Starts a row of cells with the given widths; widgets fill it left to right and
    /// continue in a new row with the same widths. `height` overrides widgets' own heights.
    public func row(_ columns: Size..., height: Size = .auto) { row(columns: columns, height: height) }

    public func row(columns: [Size], height: Size = .auto) {
        let count = layoutStack.count - 1
        layoutStack[count].closeRow()
        layoutStack[count].columns = columns.isEmpty ? [.fraction(1)] : columns
        layoutStack[count].height = height
    }

    /// The rectangle for the next cell. Custom views use it to claim space for drawing.
    /// `.auto` gives a standard widget height.
    public func cell(height: Size = .auto) -> Rect {
        let preferred: Float
        switch height {
        case .auto: preferred = widgetHeight
        case .points(let p): preferred = (p * scale).rounded()
        case .fraction(let f):
            // Measured from where the cell will start: this row if it has a free column,
            // otherwise the next row.
            let frame = layoutStack[layoutStack.count - 1]
            let continuesRow = frame.rowOpen && frame.column < frame.columns.count
            let top = continuesRow ? frame.cursorY : (frame.rowOpen ? frame.cursorY + frame.rowHeight + frame.spacing : frame.cursorY)
            preferred = (max(0, frame.body.maxY - top) * f).rounded(.down)
        }
        return nextRect(preferredHeight: preferred)
    }

    /// The next cell for a widget that needs `preferredHeight` pixels.
    func nextRect(preferredHeight: Float) -> Rect {
        let i = layoutStack.count - 1
        return layoutStack[i].place(preferredHeight: preferredHeight, scale: scale)
    }

    /// Empty vertical space, in points.
    public func spacer(_ points: Float) {
        _ = nextRect(preferredHeight: max(0, (points * scale).rounded() - layoutStack[layoutStack.count - 1].spacing))
    }

    /// A thin horizontal rule across the cell.
    public func separator() {
        let r = nextRect(preferredHeight: scaled(1))
        drawList.fillRect(Rect(x: r.x, y: r.y, width: r.width, height: max(1, scaled(1))), color: theme.colors.panelBorder)
    }

    /// Lays out `body` in the next cell as a vertical stack (a column inside a row).
    public func column(_ body: () -> Void) {
        let i = layoutStack.count - 1
        let cell = layoutStack[i].place(preferredHeight: 0, scale: scale)
        let parentBody = layoutStack[i].body
        let area = Rect(x: cell.x, y: cell.y, width: cell.width, height: max(0, parentBody.maxY - cell.y))
        layoutStack.append(LayoutFrame(body: area, spacing: layoutStack[i].spacing))
        body()
        var child = layoutStack.removeLast()
        child.closeRow()
        let used = Rect(x: cell.x, y: cell.y, width: cell.width, height: max(0, child.extent.y - cell.y))
        layoutStack[layoutStack.count - 1].include(used)
    }

    /// The area the current layout still has below its cursor (e.g. to split it).
    public var remainingRect: Rect {
        let frame = layoutStack[layoutStack.count - 1]
        let top = frame.rowOpen ? frame.cursorY + frame.rowHeight + frame.spacing : frame.cursorY
        return Rect(x: frame.body.x, y: top, width: frame.body.width, height: max(0, frame.body.maxY - top))
    }

    /// The whole output area.
    public var displayRect: Rect { Rect(origin: .zero, size: input.displaySize) }

    // MARK: Panels

    /// A clipped, optionally scrolling area with its own layout, at an explicit rectangle.
    public func panel(_ label: String, rect: Rect, options: PanelOptions = .standard, _ body: () -> Void) {
        beginPanel(label, rect: rect, options: options)
        body()
        endPanel()
    }

    /// A panel in the next cell of the current layout.
    public func panel(_ label: String, height: Size, options: PanelOptions = .standard, _ body: () -> Void) {
        let rect = cell(height: height)
        panel(label, rect: rect, options: options, body)
    }

    public func beginPanel(_ label: String, rect: Rect, options: PanelOptions = .standard) {
        let panelID = id(label)
        register(panelID, label: label, rect: rect)
        var state = panelStates[panelID] ?? PanelState()
        let colors = theme.colors
        let border = options.contains(.border) ? max(1, scaled(theme.borderWidth)) : 0
        if options.contains(.background) { drawList.fillRect(rect, color: colors.panel) }
        if border > 0 { drawList.strokeRect(rect, color: colors.panelBorder, thickness: border) }

        let pad = options.contains(.padded) ? scaled(theme.padding) : 0
        let bar = scaled(theme.scrollbarWidth)
        let inner = rect.insetBy(border)
        // Scroll bars follow last frame's content size (this frame's is not known yet).
        let showsV = options.contains(.scrollable) && state.contentSize.y > inner.height + 0.5
        let showsH = options.contains(.horizontalScroll) && state.contentSize.x > inner.width - (showsV ? bar : 0) + 0.5
        let content = Rect(x: inner.x, y: inner.y,
                           width: max(0, inner.width - (showsV ? bar : 0)),
                           height: max(0, inner.height - (showsH ? bar : 0)))
        state.scroll.x = max(0, min(state.scroll.x, state.contentSize.x - content.width))
        state.scroll.y = max(0, min(state.scroll.y, state.contentSize.y - content.height))
        if !showsV { state.scroll.y = 0 }
        if !showsH { state.scroll.x = 0 }
        panelStates[panelID] = state

        drawList.pushClip(content)
        pushID(label)
        let body = Rect(x: content.x + pad - state.scroll.x, y: content.y + pad - state.scroll.y,
                        width: max(0, content.width - 2 * pad), height: max(0, content.height - 2 * pad))
        layoutStack.append(LayoutFrame(body: body, spacing: scaled(theme.spacing)))
        panelStack.append(PanelFrame(id: panelID, label: label, rect: rect, content: content, padding: pad,
                                     options: options, showsVertical: showsV, showsHorizontal: showsH))
    }

    public func endPanel() {
        guard let frame = panelStack.popLast(), layoutStack.count > 1 else { return }
        var layout = layoutStack.removeLast()
        layout.closeRow()
        drawList.popClip()
        popID()
        var state = panelStates[frame.id] ?? PanelState()
        let origin = Vec2(layout.body.x - frame.padding, layout.body.y - frame.padding)
        state.contentSize = Vec2(max(0, layout.extent.x - origin.x) + frame.padding,
                                 max(0, layout.extent.y - origin.y) + frame.padding)
        state.visibleSize = frame.content.size
        let maxScroll = Vec2(max(0, state.contentSize.x - frame.content.width),
                             max(0, state.contentSize.y - frame.content.height))
        let before = state.scroll

        // The innermost panel under the mouse that can still scroll takes the wheel.
        if !wheelConsumed, input.wheel != .zero, isMouseOver(frame.rect) {
            let step = lineHeight() * 3
            var wheel = input.wheel
            if input.modifiers.contains(.shift), wheel.x == 0 { wheel = Vec2(wheel.y, 0) }
            let canV = frame.options.contains(.scrollable) && maxScroll.y > 0 && wheel.y != 0
            let canH = frame.options.contains(.horizontalScroll) && maxScroll.x > 0 && wheel.x != 0
            if canV { state.scroll.y -= wheel.y * step }
            if canH { state.scroll.x -= wheel.x * step }
            if canV || canH { wheelConsumed = true }
        }
        // Keep a widget focused with Tab in view.
        if let focused = focusRectThisFrame, focusPanelID == frame.id {
            if focused.minY < frame.content.minY { state.scroll.y -= frame.content.minY - focused.minY + frame.padding }
            if focused.maxY > frame.content.maxY { state.scroll.y += focused.maxY - frame.content.maxY + frame.padding }
            focusRectThisFrame = nil
        }

        let bar = scaled(theme.scrollbarWidth)
        if frame.showsVertical {
            let track = Rect(x: frame.content.maxX, y: frame.content.y, width: bar, height: frame.content.height)
            state.scroll.y = scrollbar("##vscroll-\(frame.label)", track: track, axis: .vertical,
                                       offset: state.scroll.y, content: state.contentSize.y, visible: frame.content.height)
        }
        if frame.showsHorizontal {
            let track = Rect(x: frame.content.x, y: frame.content.maxY, width: frame.content.width, height: bar)
            state.scroll.x = scrollbar("##hscroll-\(frame.label)", track: track, axis: .horizontal,
                                       offset: state.scroll.x, content: state.contentSize.x, visible: frame.content.width)
        }
        state.scroll = Vec2(max(0, min(state.scroll.x, maxScroll.x)), max(0, min(state.scroll.y, maxScroll.y)))
        if state.scroll != before { noteChange() }
        panelStates[frame.id] = state
        // The panel occupies its rectangle in the enclosing layout.
        layoutStack[layoutStack.count - 1].include(frame.rect)
    }

    /// Scroll offset of a panel (in the current ID scope), e.g. to restore or sync views.
    public func scrollOffset(ofPanel label: String) -> Vec2 { panelStates[id(label)]?.scroll ?? .zero }

    public func setScrollOffset(_ offset: Vec2, ofPanel label: String) {
        var state = panelStates[id(label)] ?? PanelState()
        state.scroll = offset
        panelStates[id(label)] = state
    }

    /// Content size measured for a panel last frame.
    public func contentSize(ofPanel label: String) -> Vec2 { panelStates[id(label)]?.contentSize ?? .zero }

    private func scrollbar(_ label: String, track: Rect, axis: Axis, offset: Float, content: Float, visible: Float) -> Float {
        let colors = theme.colors
        drawList.fillRect(track, color: colors.panel)
        let length = axis == .vertical ? track.height : track.width
        let thumbLength = max(scaled(20), length * min(1, visible / max(content, 1)))
        let travel = max(1, length - thumbLength)
        let maxOffset = max(1, content - visible)
        let position = travel * min(1, offset / maxOffset)
        let thumb = axis == .vertical
            ? Rect(x: track.x + 2, y: track.y + position, width: track.width - 4, height: thumbLength)
            : Rect(x: track.x + position, y: track.y + 2, width: thumbLength, height: track.height - 4)
        let interaction = interact(label, rect: track)
        var newOffset = offset
        if interaction.isPressed, !thumb.contains(input.mousePosition) {
            // Clicking the track jumps a page towards the click.
            let towards = axis == .vertical ? input.mousePosition.y < thumb.y : input.mousePosition.x < thumb.x
            newOffset += towards ? -visible : visible
        } else if interaction.isActive, !interaction.isPressed {
            let delta = axis == .vertical ? interaction.dragDelta.y : interaction.dragDelta.x
            newOffset += delta * maxOffset / travel
        }
        let color = interaction.isActive ? colors.accent : (interaction.isHovered ? colors.textDim : colors.scrollbarThumb)
        drawList.fillRect(thumb, color: color, cornerRadius: min(thumb.width, thumb.height) / 2)
        return newOffset
    }

    // MARK: Splitters

    /// Divides `rect` into two panes with a draggable divider. `fraction` (the first pane's
    /// share) belongs to the caller and is updated while dragging; each pane keeps at least
    /// `minimumSize` points when there is room.
    public func splitter(_ label: String, in rect: Rect, axis: Axis, fraction: inout Float,
                         minimumSize: Float = 48) -> (first: Rect, second: Rect) {
        let thickness = max(2, scaled(theme.splitterThickness))
        let total = axis == .horizontal ? rect.width : rect.height
        let available = max(0, total - thickness)
        let minimum = min(scaled(minimumSize), available / 2)
        func firstLength(_ f: Float) -> Float { max(minimum, min(available - minimum, (available * f).rounded())) }
        var length = firstLength(fraction)
        var handle = axis == .horizontal
            ? Rect(x: rect.x + length, y: rect.y, width: thickness, height: rect.height)
            : Rect(x: rect.x, y: rect.y + length, width: rect.width, height: thickness)
        let interaction = interact(label, rect: handle)
        if interaction.isHovered || interaction.isActive {
            setCursor(axis == .horizontal ? .resizeHorizontal : .resizeVertical)
        }
        if interaction.isActive, available > 0 {
            let along = axis == .horizontal ? input.mousePosition.x - rect.x : input.mousePosition.y - rect.y
            let newFraction = max(0, min(1, (along - thickness / 2) / available))
            if newFraction != fraction {
                fraction = newFraction
                noteChange()
            }
            length = firstLength(fraction)
            handle = axis == .horizontal
                ? Rect(x: rect.x + length, y: rect.y, width: thickness, height: rect.height)
                : Rect(x: rect.x, y: rect.y + length, width: rect.width, height: thickness)
        }
        let colors = theme.colors
        let lineColor = interaction.isActive ? colors.accent : (interaction.isHovered ? colors.textDim : colors.panelBorder)
        let mid = handle.center
        if axis == .horizontal {
            drawList.fillRect(Rect(x: mid.x - scaled(1), y: handle.y, width: max(1, scaled(2)), height: handle.height), color: lineColor)
        } else {
            drawList.fillRect(Rect(x: handle.x, y: mid.y - scaled(1), width: handle.width, height: max(1, scaled(2))), color: lineColor)
        }
        let first = axis == .horizontal
            ? Rect(x: rect.x, y: rect.y, width: length, height: rect.height)
            : Rect(x: rect.x, y: rect.y, width: rect.width, height: length)
        let second = axis == .horizontal
            ? Rect(x: handle.maxX, y: rect.y, width: max(0, rect.maxX - handle.maxX), height: rect.height)
            : Rect(x: rect.x, y: handle.maxY, width: rect.width, height: max(0, rect.maxY - handle.maxY))
        return (first, second)
    }
}
