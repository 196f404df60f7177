// Widgets that draw above the rest of the frame: drop-down lists, tooltips and modal
// messages. They draw into higher layers and mark the area they cover, so widgets
// underneath stop reacting to the mouse there.

extension UIContext {
    // MARK: Drop-down

    /// A button showing the selected option; clicking opens a list to choose from.
    /// With focus, Up/Down change the selection directly and Enter/Space open the list.
    /// True when the selection changes.
    @discardableResult
    public func dropDown(_ label: String, selection: inout Int, options: [String]) -> Bool {
        let rect = nextRect(preferredHeight: widgetHeight)
        let id = self.id(label)
        let i = interact(id: id, label: label, rect: rect, options: [.focusable, .customKeys])
        let colors = theme.colors
        var changed = false
        var isOpen = openPopupID == id

        if i.isPressed || (i.isFocused && (takeKey(.enter) || takeKey(.space))) {
            isOpen.toggle()
            openPopupID = isOpen ? id : nil
            popupOpenedThisFrame = isOpen
            if isOpen { popupOpenedAtFrame = frameIndex }
            popupAnchor = rect
        }
        if i.isFocused, !options.isEmpty {
            var index = selection
            if takeKey(.down) { index = min(options.count - 1, index + 1) }
            if takeKey(.up) { index = max(0, index - 1) }
            if index != selection { selection = index; changed = true }
        }

        let radius = scaled(theme.cornerRadius)
        drawList.fillRect(rect, color: isOpen || i.isActive ? colors.widgetActive : (i.isHovered ? colors.widgetHovered : colors.widget),
                          cornerRadius: radius)
        drawList.strokeRect(rect, color: colors.widgetBorder, thickness: scaled(theme.borderWidth), cornerRadius: radius)
        let arrowSize = (lineHeight() * 0.3).rounded()
        let arrowCentre = Vec2(rect.maxX - scaled(theme.padding) - arrowSize, rect.center.y)
        drawList.fillTriangle(Vec2(arrowCentre.x - arrowSize, arrowCentre.y - arrowSize / 2),
                              Vec2(arrowCentre.x + arrowSize, arrowCentre.y - arrowSize / 2),
                              Vec2(arrowCentre.x, arrowCentre.y + arrowSize / 2), color: colors.textDim)
        let current = options.indices.contains(selection) ? options[selection] : ""
        let visible = UIContext.visibleText(label)
        let caption = visible.isEmpty ? current : "\(visible): \(current)"
        let textRect = Rect(x: rect.x + scaled(theme.padding), y: rect.y,
                            width: max(0, arrowCentre.x - arrowSize - rect.x - 2 * scaled(theme.padding)), height: rect.height)
        drawText(caption[...], in: textRect, color: colors.text, labelOf: .control(id, label))
        drawFocusRing(rect, isFocused: i.isFocused)

        if isOpen, !options.isEmpty {
            if let chosen = dropDownList(label, anchor: rect, options: options, selection: selection) {
                if chosen != selection { selection = chosen; changed = true }
                openPopupID = nil
            }
        }
        if changed { noteChange() }
        return changed
    }

    /// The width a drop-down needs to show "label: option" for its widest option.
    public func fittingWidth(dropDown label: String, options: [String]) -> Float {
        let visible = UIContext.visibleText(label)
        let widest = options.map { textWidth(visible.isEmpty ? $0 : "\(visible): \($0)") }.max() ?? 0
        // Text inset by the padding, then the arrow (two half-widths) and the padding after it.
        return widest + 4 * scaled(theme.padding) + 2 * (lineHeight() * 0.3).rounded()
    }

    /// The open list of a drop-down; returns the option clicked, if any.
    private func dropDownList(_ label: String, anchor: Rect, options: [String], selection: Int) -> Int? {
        let rowHeight = lineHeight() + scaled(theme.padding)
        let border = max(1, scaled(theme.borderWidth))
        let display = displayRect
        let wanted = rowHeight * Float(min(options.count, 10)) + 2 * border
        let below = display.maxY - anchor.maxY - scaled(4)
        let above = anchor.minY - scaled(4)
        // Open downwards unless the list fits better above.
        let opensDown = below >= wanted || below >= above
        let height = min(wanted, max(rowHeight, opensDown ? below : above))
        // As wide as the longest option (within the window), so no option is shortened.
        let widest = options.map { measurer.width(of: UIContext.visibleText($0), font: font(.body)) }.max() ?? 0
        let fitting = widest + 2 * scaled(theme.padding) + 2 * border
            + (options.count > 10 ? scaled(theme.scrollbarWidth) : 0)
        let width = min(max(anchor.width, scaled(120), fitting.rounded(.up)), display.width)
        let x = max(0, min(anchor.x, display.maxX - width))
        let rect = Rect(x: x, y: opensDown ? anchor.maxY + scaled(2) : anchor.minY - scaled(2) - height, width: width, height: height)
        popupRect = rect
        popupDrawn = true
        var chosen: Int?
        withLayer(.popup) {
            cover(rect)
            // A soft shadow so the list reads as floating.
            drawList.fillRect(rect.offsetBy(Vec2(scaled(2), scaled(3))), color: Color.black.withAlpha(0.25), cornerRadius: scaled(4))
            // Opening: scroll the chosen option into view (a list of 1,000 classes opens at it). The
            // panel learns its content height in its first frame, so the second applies it too.
            if frameIndex - popupOpenedAtFrame <= 1 {
                let top = Float(selection) * rowHeight
                let visible = rect.height - 2 * border
                setScrollOffset(Vec2(0, max(0, top - (visible - rowHeight) / 2)), ofPanel: label + "##popup")
            }
            let scroll = scrollOffset(ofPanel: label + "##popup").y
            beginPanel(label + "##popup", rect: rect, options: [.background, .border, .scrollable])
            layoutStack[layoutStack.count - 1].spacing = 0
            // Only the rows in view become widgets; the others only take their height.
            let first = min(options.count, max(0, Int(scroll / rowHeight)))
            let last = min(options.count, first + Int(rect.height / rowHeight) + 2)
            if first > 0 { _ = nextRect(preferredHeight: Float(first) * rowHeight) }
            for index in first..<last {
                let option = options[index]
                let row = nextRect(preferredHeight: rowHeight)
                let r = interact(option + "##\(index)", rect: row)
                let colors = theme.colors
                if index == selection {
                    drawList.fillRect(row, color: colors.selection)
                } else if r.isHovered {
                    drawList.fillRect(row, color: colors.widgetHovered)
                }
                drawText(UIContext.visibleText(option), in: row.insetBy(dx: scaled(theme.padding), dy: 0), color: colors.text,
                         labelOf: .control(r.id, option + "##\(index)"))
                if r.isClicked { chosen = index }
            }
            if last < options.count { _ = nextRect(preferredHeight: Float(options.count - last) * rowHeight) }
            endPanel()
        }
        return chosen
    }

    // MARK: Tooltip

    /// Shows `text` near the mouse once it has rested on the previous widget for the
    /// theme's delay. Call right after the widget it explains.
    /// `near`: where to put it instead of the mouse (a chart keeps it off its lines).
    public func tooltip(_ text: String, near point: Vec2? = nil) {
        guard lastItem.isHovered, activeID == nil, let id = lastItem.id else { return }
        // The hover must be at least a frame old for its start time to be known.
        guard previousTopmostHover?.id == id else {
            requestFrame(after: theme.tooltipDelay)
            return
        }
        let elapsed = input.time - hoverStartTime
        if elapsed < theme.tooltipDelay {
            requestFrame(after: theme.tooltipDelay - elapsed)
            return
        }
        showTooltip(text, near: point ?? input.mousePosition)
    }

    /// Shows a tooltip immediately (value read-outs on charts).
    public func showTooltip(_ text: String, near point: Vec2) {
        let font = self.font(.small)
        let pad = scaled(theme.padding)
        let lines = measurer.wrap(text, font: font, maxWidth: scaled(320))
        let lineHeight = measurer.metrics(of: font).lineHeight
        let width = (lines.map { measurer.width(of: $0, font: font) }.max() ?? 0) + 2 * pad
        let height = lineHeight * Float(lines.count) + 2 * pad
        let display = displayRect
        var origin = Vec2(point.x + scaled(14), point.y + scaled(18))
        if origin.x + width > display.maxX { origin.x = max(0, point.x - width - scaled(6)) }
        if origin.y + height > display.maxY { origin.y = max(0, point.y - height - scaled(6)) }
        let rect = Rect(origin: origin, size: Vec2(width, height)).pixelAligned
        withLayer(.tooltip) {
            let colors = theme.colors
            drawList.fillRect(rect, color: colors.tooltip, cornerRadius: scaled(3))
            drawList.strokeRect(rect, color: colors.panelBorder, thickness: max(1, scaled(theme.borderWidth)), cornerRadius: scaled(3))
            for (i, line) in lines.enumerated() {
                drawList.text(line, at: Vec2(rect.x + pad, rect.y + pad + Float(i) * lineHeight), font: font,
                              color: colors.tooltipText, measurer: measurer)
            }
        }
    }

    // MARK: Modal dialogs

    /// A dialog over a veil: `body` draws in the modal layer, and until it is gone the rest of
    /// the window neither reacts to the mouse nor takes part in Tab order.
    public func modal(_ body: () -> Void) {
        modalOpen = true
        withLayer(.modal) {
            let display = displayRect
            cover(display)
            drawList.fillRect(display, color: theme.colors.modalVeil)
            body()
        }
    }

    // MARK: Modal message

    /// A message over a veil that blocks the rest of the window (for errors). Returns true
    /// on the frame it is dismissed with its button, Enter or Escape; the caller then stops
    /// calling it (typically by clearing its error value).
    @discardableResult
    public func modalMessage(_ title: String, message: String, button: String = "OK") -> Bool {
        modalOpen = true
        var dismissed = false
        withLayer(.modal) {
            pushID("##modal-" + title)
            defer { popID() }
            let display = displayRect
            let colors = theme.colors
            cover(display)
            drawList.fillRect(display, color: colors.modalVeil)

            let pad = scaled(theme.padding) * 2
            let width = min(scaled(460), display.width * 0.9)
            let bodyFont = font(.body)
            let lines = measurer.wrap(message, font: bodyFont, maxWidth: width - 2 * pad)
            let bodyLineHeight = measurer.metrics(of: bodyFont).lineHeight
            let titleHeight = lineHeight(.heading)
            let height = pad + titleHeight + scaled(theme.spacing) + bodyLineHeight * Float(lines.count) + pad + widgetHeight + pad
            let box = Rect(x: (display.width - width) / 2, y: max(0, (display.height - height) / 2),
                           width: width, height: height).pixelAligned
            drawList.fillRect(box.offsetBy(Vec2(0, scaled(4))), color: Color.black.withAlpha(0.3), cornerRadius: scaled(6))
            drawList.fillRect(box, color: colors.panel, cornerRadius: scaled(6))
            drawList.strokeRect(box, color: colors.error, thickness: max(1, scaled(theme.borderWidth)), cornerRadius: scaled(6))
            drawText(title[...], in: Rect(x: box.x + pad, y: box.y + pad, width: box.width - 2 * pad, height: titleHeight),
                     style: .heading, color: colors.error, labelOf: TextOwner(kind: .label, id: id(title), label: title))
            var y = box.y + pad + titleHeight + scaled(theme.spacing)
            for line in lines {
                drawList.text(line, at: Vec2(box.x + pad, y), font: bodyFont, color: colors.text, measurer: measurer)
                y += bodyLineHeight
            }
            let buttonWidth = max(scaled(90), measurer.width(of: UIContext.visibleText(button), font: bodyFont) + 4 * scaled(theme.padding))
            let buttonRect = Rect(x: box.maxX - pad - buttonWidth, y: box.maxY - pad - widgetHeight,
                                  width: buttonWidth, height: widgetHeight)
            // The button owns focus while the message is up, so keys cannot reach the UI behind it.
            let buttonID = id(button)
            if focusID != buttonID { focus(buttonID, visible: isFocusVisible) }
            if self.button(button, rect: buttonRect) { dismissed = true }
            if takeKey(.escape) || takeKey(.enter) { dismissed = true }
        }
        if dismissed {
            focusID = nil
            noteChange()
        }
        return dismissed
    }
}
