// Standard widgets. Each takes a label (its ID, and usually its visible text), edits a
// value the caller owns through `inout`, draws itself into the current draw list and
// returns whether it was used (clicked, or the value changed).

public enum TextAlignment: Sendable {
    case leading, center, trailing
}

/// Whose label a line of text is, for truncation reports.
struct TextOwner {
    var kind: TextTruncation.Kind
    var id: WidgetID?
    var label: String?

    static func control(_ id: WidgetID, _ label: String) -> TextOwner { TextOwner(kind: .control, id: id, label: label) }
}

/// Caret of the one text field being edited (only one can have focus).
struct TextEditState {
    var id: WidgetID?
    var isEditing = false
    /// Caret position in Unicode scalars.
    var caret = 0
    /// The other end of the selection (nil or equal to `caret`: nothing selected).
    var anchor: Int?
    /// Horizontal scroll of the text inside the field, in pixels.
    var scrollX: Float = 0
}

extension UIContext {
    // MARK: Text helpers

    /// Draws one line of text in `rect`, vertically centred, truncated with "…" if needed.
    /// `owner` names the control or caption the text belongs to (its ID in the current scope):
    /// a truncation is then reported as a label's in `diagnostics`, not as a view's text.
    public func drawText(_ text: Substring, in rect: Rect, style: TextStyle = .body, color: Color,
                         alignment: TextAlignment = .leading, owner: String? = nil) {
        drawText(text, in: rect, style: style, color: color, alignment: alignment,
                 labelOf: owner.map { TextOwner(kind: .label, id: id($0), label: $0) })
    }

    /// `drawText` for widgets: their labels are reported with the widget's ID when shortened.
    func drawText(_ text: Substring, in rect: Rect, style: TextStyle = .body, color: Color,
                  alignment: TextAlignment = .leading, labelOf owner: TextOwner?) {
        guard !text.isEmpty else { return }
        let font = self.font(style)
        var line = text
        var width = measurer.width(of: line, font: font)
        if width > rect.width + 0.5 {
            line = measurer.truncate(String(text), font: font, maxWidth: rect.width)[...]
            width = measurer.width(of: line, font: font)
            noteTruncation(of: text, shown: line, in: rect, owner: owner)
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

    /// Records text that had to be shortened (or left out) to fit `rect`.
    func noteTruncation(of text: Substring, shown: Substring, in rect: Rect, owner: TextOwner?) {
        truncations.append(TextTruncation(kind: owner?.kind ?? .text, text: String(text), shown: String(shown),
                                          widgetID: owner?.id, label: owner?.label, rect: rect))
    }

    // MARK: Fitting widths
    //
    // The width each widget needs to show its whole label, from the same geometry it draws
    // with: layouts that reflow (a toolbar that wraps) measure with these instead of guessing.

    /// Width of one line of text in a style.
    public func textWidth(_ text: String, style: TextStyle = .body) -> Float {
        measurer.width(of: UIContext.visibleText(text), font: font(style)).rounded(.up)
    }

    /// A button: its label inside the padding, with as much again as breathing room.
    public func fittingWidth(button label: String) -> Float {
        textWidth(label) + 4 * scaled(theme.padding)
    }

    /// A check box or a toggle: the box, a gap and the label.
    public func fittingWidth(checkbox label: String) -> Float {
        (lineHeight() * 0.95).rounded() * 1.8 + 2 * scaled(theme.padding) + textWidth(label)
    }

    /// Equal segments are as wide as the widest option; fitting ones as their own labels.
    public func fittingWidth(segmented options: [String], widths: SegmentWidths = .equal) -> Float {
        switch widths {
        case .equal: return Float(options.count) * (options.map { segmentWidth($0) }.max() ?? 0)
        case .fitting: return options.reduce(0) { $0 + segmentWidth($1) }
        }
    }

    /// One segment's label (inset by 4 points each side) with padding around it.
    func segmentWidth(_ option: String) -> Float {
        textWidth(option) + 2 * scaled(4) + 2 * scaled(theme.padding)
    }

    /// A slider showing "label: value" for the widest of `values`, with room to drag.
    public func fittingWidth(slider label: String, values: [String]) -> Float {
        let visible = UIContext.visibleText(label)
        let widest = values.map { textWidth(visible.isEmpty ? $0 : "\(visible): \($0)") }.max() ?? 0
        return max(widest + 4 * scaled(theme.padding), scaled(120))
    }

    /// A tab bar: every tab at its natural width.
    public func fittingWidth(tabs: [String]) -> Float {
        tabs.reduce(0) { $0 + (textWidth($1) + 4 * scaled(theme.padding)).rounded() }
    }

    // MARK: Label

    /// Static text. With `wrap`, long text breaks into lines that fit the cell.
    public func label(_ text: String, style: TextStyle = .body, color: Color? = nil,
                      alignment: TextAlignment = .leading, wrap: Bool = false) {
        let font = self.font(style)
        let lineHeight = measurer.metrics(of: font).lineHeight
        let color = color ?? (style == .small ? theme.colors.textDim : theme.colors.text)
        let owner = TextOwner(kind: .label, id: id(text), label: text)
        if wrap {
            // Peek at the cell width first: wrapping needs it, and the cell height depends on it.
            let frame = layoutStack[layoutStack.count - 1]
            var probe = frame
            let width = probe.place(preferredHeight: 0, scale: scale).width
            let lines = measurer.wrap(text, font: font, maxWidth: width)
            let rect = nextRect(preferredHeight: lineHeight * Float(lines.count))
            for (i, line) in lines.enumerated() {
                drawText(line, in: Rect(x: rect.x, y: rect.y + Float(i) * lineHeight, width: rect.width, height: lineHeight),
                         style: style, color: color, alignment: alignment, labelOf: owner)
            }
        } else {
            let rect = nextRect(preferredHeight: lineHeight)
            drawText(text[...], in: rect, style: style, color: color, alignment: alignment, labelOf: owner)
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
                 color: colors.text, alignment: .center, labelOf: .control(i.id, label))
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
        drawText(UIContext.visibleText(label), in: textRect, color: colors.text, labelOf: .control(i.id, label))
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
        drawText(UIContext.visibleText(label), in: textRect, color: colors.text, labelOf: .control(i.id, label))
        drawFocusRing(track, isFocused: i.isFocused)
        return i.isClicked
    }

    // MARK: Segmented choice

    /// How a segmented control divides its width.
    public enum SegmentWidths: Sendable {
        /// Every segment as wide as the others.
        case equal
        /// In proportion to the labels: one long option does not widen all of them.
        case fitting
    }

    /// Mutually exclusive options side by side; true when the selection changes.
    @discardableResult
    public func segmented(_ label: String, selection: inout Int, options: [String], widths: SegmentWidths = .equal) -> Bool {
        let rect = nextRect(preferredHeight: widgetHeight)
        guard !options.isEmpty else { return false }
        let colors = theme.colors
        let radius = scaled(theme.cornerRadius)
        drawList.fillRect(rect, color: colors.widget, cornerRadius: radius)
        var changed = false
        pushID(label)
        // Segment edges as fractions of the width.
        let shares: [Float]
        switch widths {
        case .equal: shares = options.map { _ in 1 }
        case .fitting: shares = options.map { segmentWidth($0) }
        }
        let total = shares.reduce(0, +)
        var edges: [Float] = [0]
        for share in shares { edges.append(edges[edges.count - 1] + share / max(total, 1e-6)) }
        for (index, option) in options.enumerated() {
            let x0 = (rect.x + rect.width * edges[index]).rounded()
            let x1 = index == options.count - 1 ? rect.maxX : (rect.x + rect.width * edges[index + 1]).rounded()
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
                     color: isSelected ? colors.textOnAccent : colors.text, alignment: .center,
                     labelOf: .control(i.id, option + "##\(index)"))
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
        drawText(caption[...], in: rect.insetBy(dx: scaled(theme.padding), dy: 0), color: colors.text, alignment: .center,
                 labelOf: .control(i.id, label))
        drawFocusRing(rect, isFocused: i.isFocused)
        return changed
    }

    // MARK: Text field

    /// A single-line text field. True when the text changed this frame; `lastItem.wasSubmitted`
    /// tells whether Enter ended the edit. Click or Tab to edit; Escape or Enter to finish.
    /// Ctrl+A (or a double click) selects all, Shift with the arrows, Home and End extends the
    /// selection, and typing, pasting, Backspace or Delete replace it; Ctrl+C / Ctrl+X copy and
    /// cut the selection (all of the text when nothing is selected).
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
                let all = pendingSelectAll == id
                textEdit = TextEditState(id: id, isEditing: true, caret: scalarCount, anchor: all ? 0 : nil, scrollX: 0)
            }
            if pendingSelectAll == id { textEdit.caret = scalarCount; textEdit.anchor = 0 }
            pendingSelectAll = nil
            wantsTextInput = true
            textEdit.caret = min(textEdit.caret, scalarCount)
            textEdit.anchor = textEdit.anchor.map { min($0, scalarCount) }
            if i.isPressed {
                if i.isDoubleClicked {
                    textEdit.anchor = 0
                    textEdit.caret = scalarCount
                } else {
                    let positions = measurer.caretPositions(in: text[...], font: font)
                    let x = input.mousePosition.x - inner.x + textEdit.scrollX
                    textEdit.caret = nearestIndex(in: positions, to: x)
                    textEdit.anchor = nil
                }
            }
            var scalars = Array(text.unicodeScalars)
            var caret = textEdit.caret
            var anchor = textEdit.anchor
            /// The selected range, if any characters are selected.
            func selected() -> Range<Int>? {
                guard let a = anchor, a != caret else { return nil }
                return min(a, caret)..<max(a, caret)
            }
            /// Removes the selection; true when there was one.
            func deleteSelection() -> Bool {
                guard let range = selected() else { anchor = nil; return false }
                scalars.removeSubrange(range)
                caret = range.lowerBound
                anchor = nil
                return true
            }
            func insert(_ new: [Unicode.Scalar]) {
                _ = deleteSelection()
                scalars.insert(contentsOf: new, at: caret)
                caret += new.count
            }
            func selectedText() -> String {
                var view = String.UnicodeScalarView()
                view.append(contentsOf: selected().map { Array(scalars[$0]) } ?? scalars)
                return String(view)
            }
            /// Moves the caret; with Shift held the selection follows, else it collapses.
            func move(to position: Int, extending: Bool) {
                if extending { anchor = anchor ?? caret } else { anchor = nil }
                caret = max(0, min(scalars.count, position))
            }
            let control = input.modifiers.contains(.control)
            if !input.text.isEmpty, !control {
                insert(input.text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })
            }
            if takeKey(.character("a"), modifiers: .control) { anchor = 0; caret = scalars.count }
            if takeKey(.backspace), !deleteSelection(), caret > 0 { scalars.remove(at: caret - 1); caret -= 1 }
            if takeKey(.delete), !deleteSelection(), caret < scalars.count { scalars.remove(at: caret) }
            for extending in [true, false] {
                let modifiers: KeyModifiers = extending ? .shift : []
                if takeKey(.left, modifiers: modifiers) {
                    if !extending, let range = selected() { move(to: range.lowerBound, extending: false) } else { move(to: caret - 1, extending: extending) }
                }
                if takeKey(.right, modifiers: modifiers) {
                    if !extending, let range = selected() { move(to: range.upperBound, extending: false) } else { move(to: caret + 1, extending: extending) }
                }
                if takeKey(.home, modifiers: modifiers) { move(to: 0, extending: extending) }
                if takeKey(.end, modifiers: modifiers) { move(to: scalars.count, extending: extending) }
            }
            if takeKey(.character("v"), modifiers: .control), let paste = readClipboard?() {
                insert(paste.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })
            }
            if takeKey(.character("c"), modifiers: .control) { writeClipboard?(selectedText()) }
            if takeKey(.character("x"), modifiers: .control) {
                writeClipboard?(selectedText())
                if !deleteSelection() { scalars.removeAll(); caret = 0 }
            }
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
            if textEdit.caret != caret || textEdit.anchor != anchor { noteChange() }
            textEdit.caret = caret
            textEdit.anchor = anchor
        } else if textEdit.id == id {
            textEdit.isEditing = false
            textEdit.anchor = nil
        }

        // Frame, text (scrolled so the caret stays visible), selection, caret.
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
                if let anchor = textEdit.anchor, anchor != textEdit.caret {
                    let prefixA = String(String.UnicodeScalarView(text.unicodeScalars.prefix(anchor)))
                    let anchorX = measurer.width(of: prefixA[...], font: font)
                    let x0 = inner.x + min(anchorX, caretX) - scrollX, x1 = inner.x + max(anchorX, caretX) - scrollX
                    drawList.fillRect(Rect(x: x0, y: textY, width: x1 - x0, height: metrics.lineHeight), color: colors.selection)
                }
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

    /// Gives keyboard focus to the text field with this label (in the current scope) with all
    /// of its text selected, so that typing replaces it (a path field when a chooser opens).
    public func focusTextField(_ label: String, selectingAll: Bool = true) {
        let target = id(label)
        focus(target, visible: true)
        if selectingAll { pendingSelectAll = target }
        if textEdit.id == target { textEdit.isEditing = false }
    }

    /// The selected part of the text field being edited, as scalar offsets (for tests).
    public var textSelection: Range<Int>? {
        guard textEdit.isEditing, let a = textEdit.anchor, a != textEdit.caret else { return nil }
        return min(a, textEdit.caret)..<max(a, textEdit.caret)
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
        drawSelectableRow(UIContext.visibleText(label), rect: rect, isSelected: isSelected, isHovered: i.isHovered,
                          owner: .control(i.id, label))
        drawFocusRing(rect, isFocused: i.isFocused)
        if i.isClicked { noteChange() }
        return i.isClicked
    }

    private func drawSelectableRow(_ text: Substring, rect: Rect, isSelected: Bool, isHovered: Bool, owner: TextOwner) {
        let colors = theme.colors
        if isSelected {
            drawList.fillRect(rect, color: colors.selection, cornerRadius: scaled(2))
        } else if isHovered {
            drawList.fillRect(rect, color: colors.widgetHovered, cornerRadius: scaled(2))
        }
        drawText(text, in: rect.insetBy(dx: scaled(theme.padding), dy: 0), color: colors.text, labelOf: owner)
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
            drawSelectableRow(UIContext.visibleText(items[index]), rect: row, isSelected: selection == index, isHovered: r.isHovered,
                              owner: .control(r.id, items[index] + "##\(index)"))
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
            guard tabRect.width > 0 else {
                // A tab with no room at all is a label the user cannot see: report it too.
                noteTruncation(of: text, shown: "", in: tabRect, owner: .control(id(tab + "##\(index)"), tab + "##\(index)"))
                continue
            }
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
            drawText(text, in: tabRect, color: isSelected ? colors.text : colors.textDim, alignment: .center,
                     labelOf: .control(i.id, tab + "##\(index)"))
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
