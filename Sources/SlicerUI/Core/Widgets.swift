// Standard widgets. Each takes a label (its ID, and usually its visible text), edits a
// value the caller owns through `inout`, draws itself into the current draw list and
// returns whether it was used (clicked, or the value changed).

public enum TextAlignment: Sendable {
    case leading, center, trailing
}

/// Caret of the one text field being edited (only one can have focus).
struct TextEditState {
    var id: WidgetID?
    var isEditing = false
    /// Caret position in Unicode scalars.
    var caret = 0
    /// Horizontal scroll of the text inside the field, in pixels.
    var scrollX: Float = 0
}

extension UIContext {
    // MARK: Text helpers

    /// Draws one line of text in `rect`, vertically centred, truncated with "…" if needed.
    public func drawText(_ text: Substring, in rect: Rect, style: TextStyle = .body, color: Color,
                         alignment: TextAlignment = .leading) {
        guard !text.isEmpty else { return }
        let font = self.font(style)
        var line = text
        var width = measurer.width(of: line, font: font)
        if width > rect.width + 0.5 {
            line = measurer.truncate(String(text), font: font, maxWidth: rect.width)[...]
            width = measurer.width(of: line, font: font)
        }
        let metrics = measurer.metrics(of: font)
        let x: Float
        switch alignment {
        case .leading: x = rect.x
        case .center: x = rect.x + (rect.width - width) / 2
        case .trailing: x = rect.maxX - width
        }
        let y = rect.y + (rect.height - metrics.lineHeight) / 2
        drawList.text(line, at: Vec2(x, y), font: font, color: color, measurer: measurer)
    }

    // MARK: Label

    /// Static text. With `wrap`, long text breaks into lines that fit the cell.
    public func label(_ text: String, style: TextStyle = .body, color: Color? = nil,
                      alignment: TextAlignment = .leading, wrap: Bool = false) {
        let font = self.font(style)
        let lineHeight = measurer.metrics(of: font).lineHeight
        let color = color ?? (style == .small ? theme.colors.textDim : theme.colors.text)
        if wrap {
            // Peek at the cell width first: wrapping needs it, and the cell height depends on it.
            let frame = layoutStack[layoutStack.count - 1]
            var probe = frame
            let width = probe.place(preferredHeight: 0, scale: scale).width
            let lines = measurer.wrap(text, font: font, maxWidth: width)
            let rect = nextRect(preferredHeight: lineHeight * Float(lines.count))
            for (i, line) in lines.enumerated() {
                drawText(line, in: Rect(x: rect.x, y: rect.y + Float(i) * lineHeight, width: rect.width, height: lineHeight),
                         style: style, color: color, alignment: alignment)
            }
        } else {
            let rect = nextRect(preferredHeight: lineHeight)
            drawText(text[...], in: rect, style: style, color: color, alignment: alignment)
        }
    }

    // MARK: Button

    /// A push button; true on the frame it is clicked (or activated with Enter/Space).
    @discardableResult
    public func button(_ label: String) -> Bool {
        let rect = nextRect(preferredHeight: widgetHeight)
        return button(label, rect: rect)
    }

    /// A button at an explicit rectangle (toolbars, overlays on custom views).
    @discardableResult
    public func button(_ label: String, rect: Rect) -> Bool {
        let i = interact(label, rect: rect, options: .focusable)
        let colors = theme.colors
        let fill = i.isActive && i.isHovered ? colors.widgetActive : (i.isHovered ? colors.widgetHovered : colors.widget)
        let radius = scaled(theme.cornerRadius)
        drawList.fillRect(rect, color: fill, cornerRadius: radius)
        drawList.strokeRect(rect, color: colors.widgetBorder, thickness: scaled(theme.borderWidth), cornerRadius: radius)
        drawText(UIContext.visibleText(label), in: rect.insetBy(dx: scaled(theme.padding), dy: 0),
                 color: colors.text, alignment: .center)
        drawFocusRing(rect, isFocused: i.isFocused)
        if i.isClicked { noteChange() }
        return i.isClicked
    }

    // MARK: Checkbox and toggle

    /// A check box with its label to the right; true when toggled.
    @discardableResult
    public func checkbox(_ label: String, isChecked: inout Bool) -> Bool {
        checkbox(label, isChecked: &isChecked, rect: nextRect(preferredHeight: widgetHeight))
    }

    /// A check box at an explicit rectangle (rows the caller lays out itself).
    @discardableResult
    public func checkbox(_ label: String, isChecked: inout Bool, rect: Rect) -> Bool {
        let i = interact(label, rect: rect, options: .focusable)
        let colors = theme.colors
        let side = (lineHeight() * 0.95).rounded()
        let box = Rect(x: rect.x, y: (rect.y + (rect.height - side) / 2).rounded(), width: side, height: side)
        if i.isClicked { isChecked.toggle(); noteChange() }
        let radius = scaled(theme.cornerRadius) * 0.75
        if isChecked {
            drawList.fillRect(box, color: i.isHovered ? colors.accentHovered : colors.accent, cornerRadius: radius)
            let s = box.width
            let mark = [Vec2(box.x + s * 0.22, box.y + s * 0.52), Vec2(box.x + s * 0.42, box.y + s * 0.72),
                        Vec2(box.x + s * 0.78, box.y + s * 0.30)]
            drawList.polyline(mark, color: colors.textOnAccent, thickness: max(1.5, scaled(2)))
        } else {
            drawList.fillRect(box, color: i.isHovered ? colors.widgetHovered : colors.widget, cornerRadius: radius)
            drawList.strokeRect(box, color: colors.widgetBorder, thickness: scaled(theme.borderWidth), cornerRadius: radius)
        }
        let textRect = Rect(x: box.maxX + scaled(theme.padding), y: rect.y,
                            width: max(0, rect.maxX - box.maxX - scaled(theme.padding)), height: rect.height)
        drawText(UIContext.visibleText(label), in: textRect, color: colors.text)
        drawFocusRing(box, isFocused: i.isFocused)
        return i.isClicked
    }

    /// An on/off switch with its label to the right; true when flipped.
    @discardableResult
    public func toggle(_ label: String, isOn: inout Bool) -> Bool {
        let rect = nextRect(preferredHeight: widgetHeight)
        let i = interact(label, rect: rect, options: .focusable)
        if i.isClicked { isOn.toggle(); noteChange() }
        let colors = theme.colors
        let h = (lineHeight() * 0.95).rounded()
        let track = Rect(x: rect.x, y: (rect.y + (rect.height - h) / 2).rounded(), width: (h * 1.8).rounded(), height: h)
        let trackColor = isOn ? (i.isHovered ? colors.accentHovered : colors.accent)
                              : (i.isHovered ? colors.widgetHovered : colors.widget)
        drawList.fillRect(track, color: trackColor, cornerRadius: h / 2)
        if !isOn { drawList.strokeRect(track, color: colors.widgetBorder, thickness: scaled(theme.borderWidth), cornerRadius: h / 2) }
        let knobRadius = h / 2 - max(2, scaled(2))
        let knobX = isOn ? track.maxX - h / 2 : track.x + h / 2
        drawList.fillCircle(center: Vec2(knobX, track.center.y), radius: knobRadius,
                            color: isOn ? colors.textOnAccent : colors.textDim)
        let textRect = Rect(x: track.maxX + scaled(theme.padding), y: rect.y,
                            width: max(0, rect.maxX - track.maxX - scaled(theme.padding)), height: rect.height)
        drawText(UIContext.visibleText(label), in: textRect, color: colors.text)
        drawFocusRing(track, isFocused: i.isFocused)
        return i.isClicked
    }

    // MARK: Segmented choice

    /// Mutually exclusive options side by side; true when the selection changes.
    @discardableResult
    public func segmented(_ label: String, selection: inout Int, options: [String]) -> Bool {
        let rect = nextRect(preferredHeight: widgetHeight)
        guard !options.isEmpty else { return false }
        let colors = theme.colors
        let radius = scaled(theme.cornerRadius)
        drawList.fillRect(rect, color: colors.widget, cornerRadius: radius)
        var changed = false
        pushID(label)
        let width = rect.width / Float(options.count)
        for (index, option) in options.enumerated() {
            let x0 = (rect.x + width * Float(index)).rounded()
            let x1 = index == options.count - 1 ? rect.maxX : (rect.x + width * Float(index + 1)).rounded()
            let segment = Rect(x: x0, y: rect.y, width: x1 - x0, height: rect.height)
            let i = interact(option + "##\(index)", rect: segment, options: .focusable)
            if i.isClicked, selection != index {
                selection = index
                changed = true
            }
            let isSelected = selection == index
            if isSelected {
                drawList.fillRect(segment.insetBy(max(1, scaled(2))), color: i.isHovered ? colors.accentHovered : colors.accent,
                                  cornerRadius: max(0, radius - 1))
            } else if i.isHovered {
                drawList.fillRect(segment.insetBy(max(1, scaled(2))), color: colors.widgetHovered, cornerRadius: max(0, radius - 1))
            }
            if index > 0, !isSelected, selection != index - 1 {
                drawList.fillRect(Rect(x: x0, y: rect.y + scaled(5), width: max(1, scaled(1)), height: rect.height - scaled(10)),
                                  color: colors.widgetBorder)
            }
            drawText(UIContext.visibleText(option), in: segment.insetBy(dx: scaled(4), dy: 0),
                     color: isSelected ? colors.textOnAccent : colors.text, alignment: .center)
            drawFocusRing(segment, isFocused: i.isFocused)
        }
        popID()
        drawList.strokeRect(rect, color: colors.widgetBorder, thickness: scaled(theme.borderWidth), cornerRadius: radius)
        if changed { noteChange() }
        return changed
    }

    // MARK: Sliders

    /// An integer slider showing "label: value"; drag, click, or use the arrow keys when focused.
    @discardableResult
    public func slider(_ label: String, value: inout Int, in range: ClosedRange<Int>) -> Bool {
        var t = Double(value)
        let changed = sliderCore(label, value: &t, lower: Double(range.lowerBound), upper: Double(range.upperBound),
                                 step: 1, text: { "\(Int($0))" })
        if changed { value = Int(t) }
        return changed
    }

    /// A floating-point slider; values snap to `step` when given and show `decimals` digits.
    @discardableResult
    public func slider(_ label: String, value: inout Float, in range: ClosedRange<Float>, step: Float? = nil,
                       decimals: Int = 2) -> Bool {
        var t = Double(value)
        let changed = sliderCore(label, value: &t, lower: Double(range.lowerBound), upper: Double(range.upperBound),
                                 step: step.map(Double.init), text: { formatNumber($0, decimals: decimals) })
        if changed { value = Float(t) }
        return changed
    }

    private func sliderCore(_ label: String, value: inout Double, lower: Double, upper: Double, step: Double?,
                            text: (Double) -> String) -> Bool {
        let rect = nextRect(preferredHeight: widgetHeight)
        let i = interact(label, rect: rect, options: [.focusable, .customKeys])
        let colors = theme.colors
        let span = upper - lower
        let grabWidth = max(4, scaled(8))
        let travel = max(1, rect.width - grabWidth)
        func snapped(_ v: Double) -> Double {
            var v = min(upper, max(lower, v))
            if let step, step > 0 { v = (lower + ((v - lower) / step).rounded() * step) }
            return min(upper, max(lower, v))
        }
        var newValue = value
        if i.isActive, span > 0 {
            let t = Double((input.mousePosition.x - rect.x - grabWidth / 2) / travel)
            newValue = snapped(lower + min(1, max(0, t)) * span)
        }
        if i.isFocused {
            let keyStep = step ?? (span / 100)
            let page = max(keyStep, span / 10)
            if takeKey(.left) || takeKey(.down) { newValue = snapped(value - keyStep) }
            if takeKey(.right) || takeKey(.up) { newValue = snapped(value + keyStep) }
            if takeKey(.pageDown) { newValue = snapped(value - page) }
            if takeKey(.pageUp) { newValue = snapped(value + page) }
            if takeKey(.home) { newValue = lower }
            if takeKey(.end) { newValue = upper }
        }
        let changed = newValue != value
        if changed { value = newValue; noteChange() }

        let radius = scaled(theme.cornerRadius)
        drawList.fillRect(rect, color: i.isHovered || i.isActive ? colors.widgetHovered : colors.widget, cornerRadius: radius)
        let fraction = span > 0 ? Float((value - lower) / span) : 0
        let grabX = (rect.x + travel * min(1, max(0, fraction))).rounded()
        if grabX > rect.x { drawList.fillRect(Rect(x: rect.x, y: rect.y, width: grabX - rect.x + grabWidth / 2, height: rect.height),
                                              color: colors.selection, cornerRadius: radius) }
        drawList.strokeRect(rect, color: colors.widgetBorder, thickness: scaled(theme.borderWidth), cornerRadius: radius)
        let grab = Rect(x: grabX, y: rect.y + scaled(2), width: grabWidth, height: rect.height - scaled(4))
        drawList.fillRect(grab, color: i.isActive ? colors.accentHovered : colors.accent, cornerRadius: scaled(2))
        let visible = UIContext.visibleText(label)
        let caption = visible.isEmpty ? text(value) : "\(visible): \(text(value))"
        drawText(caption[...], in: rect.insetBy(dx: scaled(theme.padding), dy: 0), color: colors.text, alignment: .center)
        drawFocusRing(rect, isFocused: i.isFocused)
        return changed
    }

    // MARK: Text field

    /// A single-line text field. True when the text changed this frame; `lastItem.wasSubmitted`
    /// tells whether Enter ended the edit. Click or Tab to edit; Escape or Enter to finish.
    @discardableResult
    public func textField(_ label: String, text: inout String, placeholder: String = "") -> Bool {
        let rect = nextRect(preferredHeight: widgetHeight)
        let id = self.id(label)
        let i = interact(id: id, label: label, rect: rect, options: [.focusable, .customKeys])
        if i.isHovered { setCursor(.text) }
        let colors = theme.colors
        let font = self.font(.body)
        let pad = scaled(theme.padding)
        let inner = rect.insetBy(dx: pad, dy: 0)
        var changed = false
        var submitted = false
        let scalarCount = text.unicodeScalars.count

        if i.isFocused {
            if textEdit.id != id || !textEdit.isEditing {
                textEdit = TextEditState(id: id, isEditing: true, caret: scalarCount, scrollX: 0)
            }
            wantsTextInput = true
            textEdit.caret = min(textEdit.caret, scalarCount)
            if i.isPressed {
                let positions = measurer.caretPositions(in: text[...], font: font)
                let x = input.mousePosition.x - inner.x + textEdit.scrollX
                textEdit.caret = nearestIndex(in: positions, to: x)
            }
            var scalars = Array(text.unicodeScalars)
            var caret = textEdit.caret
            let control = input.modifiers.contains(.control)
            if !input.text.isEmpty, !control {
                let typed = input.text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }
                scalars.insert(contentsOf: typed, at: caret)
                caret += typed.count
            }
            if takeKey(.backspace), caret > 0 { scalars.remove(at: caret - 1); caret -= 1 }
            if takeKey(.delete), caret < scalars.count { scalars.remove(at: caret) }
            if takeKey(.left) { caret = max(0, caret - 1) }
            if takeKey(.right) { caret = min(scalars.count, caret + 1) }
            if takeKey(.home) { caret = 0 }
            if takeKey(.end) { caret = scalars.count }
            if takeKey(.character("v"), modifiers: .control), let paste = readClipboard?() {
                let clean = paste.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }
                scalars.insert(contentsOf: clean, at: caret)
                caret += clean.count
            }
            if takeKey(.character("c"), modifiers: .control) { writeClipboard?(text) }
            if takeKey(.enter) {
                submitted = true
                focusID = nil
            }
            var edited = String.UnicodeScalarView()
            edited.append(contentsOf: scalars)
            let newText = String(edited)
            if newText != text {
                text = newText
                changed = true
                noteChange()
            }
            textEdit.caret = caret
        } else if textEdit.id == id {
            textEdit.isEditing = false
        }

        // Frame, text (scrolled so the caret stays visible), caret.
        let radius = scaled(theme.cornerRadius)
        drawList.fillRect(rect, color: i.isFocused ? colors.panel : (i.isHovered ? colors.widgetHovered : colors.widget),
                          cornerRadius: radius)
        drawList.strokeRect(rect, color: i.isFocused ? colors.accent : colors.widgetBorder,
                            thickness: scaled(theme.borderWidth), cornerRadius: radius)
        let metrics = measurer.metrics(of: font)
        let textY = rect.y + (rect.height - metrics.lineHeight) / 2
        drawList.pushClip(inner)
        if text.isEmpty, !i.isFocused {
            drawList.text(UIContext.visibleText(placeholder.isEmpty ? label : placeholder), at: Vec2(inner.x, textY),
                          font: font, color: colors.textDisabled, measurer: measurer)
        } else {
            var scrollX: Float = 0
            var caretX: Float = 0
            if i.isFocused {
                let prefix = String(String.UnicodeScalarView(text.unicodeScalars.prefix(textEdit.caret)))
                caretX = measurer.width(of: prefix[...], font: font)
                scrollX = textEdit.scrollX
                if caretX - scrollX > inner.width - 2 { scrollX = caretX - inner.width + 2 }
                if caretX - scrollX < 0 { scrollX = caretX }
                textEdit.scrollX = max(0, scrollX)
            }
            drawList.text(text[...], at: Vec2(inner.x - scrollX, textY), font: font, color: colors.text, measurer: measurer)
            if i.isFocused {
                let x = (inner.x + caretX - scrollX).rounded()
                drawList.fillRect(Rect(x: x, y: textY + 1, width: max(1, scaled(1.5)), height: metrics.lineHeight - 2),
                                  color: colors.text)
            }
        }
        drawList.popClip()
        drawFocusRing(rect, isFocused: i.isFocused)
        lastItem.wasSubmitted = submitted
        return changed
    }

    private func nearestIndex(in positions: [Float], to x: Float) -> Int {
        var best = 0
        for (index, p) in positions.enumerated() where abs(p - x) < abs(positions[best] - x) { best = index }
        return best
    }

    // MARK: Selectables and lists

    /// A full-width row that shows selection; true when clicked. Building block for lists.
    @discardableResult
    public func selectable(_ label: String, isSelected: Bool, height: Float? = nil) -> Bool {
        let rect = nextRect(preferredHeight: height ?? (lineHeight() + scaled(theme.padding)))
        let i = interact(label, rect: rect, options: .focusable)
        drawSelectableRow(UIContext.visibleText(label), rect: rect, isSelected: isSelected, isHovered: i.isHovered)
        drawFocusRing(rect, isFocused: i.isFocused)
        if i.isClicked { noteChange() }
        return i.isClicked
    }

    private func drawSelectableRow(_ text: Substring, rect: Rect, isSelected: Bool, isHovered: Bool) {
        let colors = theme.colors
        if isSelected {
            drawList.fillRect(rect, color: colors.selection, cornerRadius: scaled(2))
        } else if isHovered {
            drawList.fillRect(rect, color: colors.widgetHovered, cornerRadius: scaled(2))
        }
        drawText(text, in: rect.insetBy(dx: scaled(theme.padding), dy: 0), color: colors.text)
    }

    /// A scrolling list with one selected row; Up/Down move the selection when it has focus.
    /// True when the selection changes.
    @discardableResult
    public func list(_ label: String, items: [String], selection: inout Int?, visibleRows: Int = 6) -> Bool {
        let rowHeight = lineHeight() + scaled(theme.padding)
        let border = max(1, scaled(theme.borderWidth))
        let height = rowHeight * Float(max(1, visibleRows)) + 2 * border
        let rect = nextRect(preferredHeight: height)
        let listID = id(label)
        // The list, not its rows, is the focus stop: one Tab in, arrows inside.
        let isFocused = registerFocusStop(listID, label: label, rect: rect)
        var changed = false
        if isFocused, !items.isEmpty {
            var index = selection ?? -1
            if takeKey(.down) { index = min(items.count - 1, index + 1) }
            if takeKey(.up) { index = max(0, index - 1) }
            if takeKey(.home) { index = 0 }
            if takeKey(.end) { index = items.count - 1 }
            if index >= 0, index != selection {
                selection = index
                changed = true
                // Bring the row into view.
                let state = panelStates[id(label + "##rows")] ?? PanelState()
                var scroll = state.scroll.y
                let top = Float(index) * rowHeight
                if top < scroll { scroll = top }
                if top + rowHeight > scroll + rect.height - 2 * border { scroll = top + rowHeight - (rect.height - 2 * border) }
                setScrollOffset(Vec2(0, scroll), ofPanel: label + "##rows")
            }
        }
        beginPanel(label + "##rows", rect: rect, options: [.background, .border, .scrollable])
        layoutStack[layoutStack.count - 1].spacing = 0
        // Only rows in view become widgets, so a list of thousands of items stays cheap.
        let scroll = scrollOffset(ofPanel: label + "##rows").y
        let content = panelStack.last?.content ?? rect
        let first = max(0, Int(scroll / rowHeight))
        let last = min(items.count, first + Int(content.height / rowHeight) + 2)
        if first > 0 { _ = nextRect(preferredHeight: Float(first) * rowHeight) }
        for index in first..<max(first, last) {
            let row = nextRect(preferredHeight: rowHeight)
            let r = interact(items[index] + "##\(index)", rect: row)
            if r.isClicked, selection != index {
                selection = index
                changed = true
            }
            if r.isPressed { focus(listID, visible: false) }
            drawSelectableRow(UIContext.visibleText(items[index]), rect: row, isSelected: selection == index, isHovered: r.isHovered)
        }
        if last < items.count { _ = nextRect(preferredHeight: Float(items.count - last) * rowHeight) }
        endPanel()
        drawFocusRing(rect, isFocused: isFocused)
        lastItem = ItemInfo(id: listID, rect: rect, isHovered: isMouseOver(rect), isActive: false,
                            isFocused: focusID == listID)
        if changed { noteChange() }
        return changed
    }

    // MARK: Tab bar

    /// A row of tabs; true when another tab is chosen.
    @discardableResult
    public func tabBar(_ label: String, selection: inout Int, tabs: [String]) -> Bool {
        let rect = nextRect(preferredHeight: widgetHeight)
        let colors = theme.colors
        let pad = scaled(theme.padding) * 2
        var x = rect.x
        var changed = false
        pushID(label)
        drawList.fillRect(Rect(x: rect.x, y: rect.maxY - max(1, scaled(1)), width: rect.width, height: max(1, scaled(1))),
                          color: colors.panelBorder)
        for (index, tab) in tabs.enumerated() {
            let text = UIContext.visibleText(tab)
            let width = (measurer.width(of: text, font: font(.body)) + 2 * pad).rounded()
            let tabRect = Rect(x: x, y: rect.y, width: min(width, max(0, rect.maxX - x)), height: rect.height)
            x += width
            guard tabRect.width > 0 else { continue }
            let i = interact(tab + "##\(index)", rect: tabRect, options: .focusable)
            if i.isClicked, selection != index {
                selection = index
                changed = true
            }
            let isSelected = selection == index
            if i.isHovered, !isSelected {
                drawList.fillRect(tabRect, color: colors.widgetHovered, cornerRadius: scaled(2))
            }
            if isSelected {
                drawList.fillRect(Rect(x: tabRect.x, y: tabRect.maxY - scaled(3), width: tabRect.width, height: scaled(3)),
                                  color: colors.accent)
            }
            drawText(text, in: tabRect, color: isSelected ? colors.text : colors.textDim, alignment: .center)
            drawFocusRing(tabRect, isFocused: i.isFocused)
        }
        popID()
        if changed { noteChange() }
        return changed
    }

    // MARK: Progress bar

    /// A progress bar for a fraction in 0…1, or an animated "busy" bar for nil.
    public func progressBar(_ fraction: Float?, label: String? = nil) {
        let rect = nextRect(preferredHeight: (lineHeight() * 0.9).rounded())
        let colors = theme.colors
        let radius = scaled(theme.cornerRadius)
        drawList.fillRect(rect, color: colors.widget, cornerRadius: radius)
        if let fraction {
            let f = max(0, min(1, fraction.isNaN ? 0 : fraction))
            let filled = Rect(x: rect.x, y: rect.y, width: (rect.width * f).rounded(), height: rect.height)
            if filled.width >= 1 { drawList.fillRect(filled, color: colors.accent, cornerRadius: radius) }
            let text = label ?? "\(Int((f * 100).rounded())) %"
            // Two-tone label: readable over the fill and over the empty track in every theme.
            let empty = Rect(x: filled.maxX, y: rect.y, width: rect.maxX - filled.maxX, height: rect.height)
            drawList.pushClip(empty)
            drawText(text[...], in: rect, style: .small, color: colors.text, alignment: .center)
            drawList.popClip()
            drawList.pushClip(filled)
            drawText(text[...], in: rect, style: .small, color: colors.textOnAccent, alignment: .center)
            drawList.popClip()
        } else {
            // Indeterminate: a block sweeping across; it needs frames while it is shown.
            let phase = Float((input.time * 0.8).truncatingRemainder(dividingBy: 1))
            let block = rect.width * 0.3
            let x0 = rect.x - block + (rect.width + block) * phase
            let visible = Rect(x: x0, y: rect.y, width: block, height: rect.height).intersection(rect)
            if !visible.isEmpty { drawList.fillRect(visible, color: colors.accent, cornerRadius: radius) }
            if let label { drawText(label[...], in: rect, style: .small, color: colors.text, alignment: .center) }
            requestFrame(after: 1.0 / 30)
        }
        drawList.strokeRect(rect, color: colors.widgetBorder, thickness: scaled(theme.borderWidth), cornerRadius: radius)
    }

    // MARK: Image

    /// An image or heat map in the next cell, scaled to fit while keeping `aspectRatio`
    /// (width / height) when given. Returns the rectangle it occupies.
    @discardableResult
    public func image(_ texture: TextureID, height: Size, aspectRatio: Float? = nil, tint: Color = .white) -> Rect {
        let cell = self.cell(height: height)
        var rect = cell
        if let aspectRatio, aspectRatio > 0 {
            let w = min(cell.width, cell.height * aspectRatio)
            let h = w / aspectRatio
            rect = Rect(x: cell.x + (cell.width - w) / 2, y: cell.y + (cell.height - h) / 2, width: w, height: h)
        }
        drawList.image(texture, in: rect, tint: tint)
        return rect
    }
}
