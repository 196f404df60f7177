// Helpers for custom views (charts, matrices, feature-map grids): dragging and brushing.

/// A rubber-band selection in progress or just finished.
public struct Brush: Hashable, Sendable {
    /// The brushed rectangle, clamped to the view.
    public var rect: Rect
    /// True on the frame the mouse is released; the selection is then final.
    public var isFinished: Bool
}

/// What `brush(_:in:axis:)` saw this frame.
public struct BrushResult: Sendable {
    /// The underlying interaction, e.g. to treat a click without drag as "select one".
    public var interaction: Interaction
    /// Non-nil while dragging and on the frame the drag ends.
    public var brush: Brush?
}

/// Which extent a brush selects.
public enum BrushAxis: Sendable, Hashable {
    /// A horizontal range: the brush spans the view's full height.
    case horizontal
    /// A vertical range: the brush spans the view's full width.
    case vertical
    /// A free rectangle.
    case both
}

extension UIContext {
    /// Makes `rect` draggable: while the mouse drags it, `offset` moves with the mouse
    /// (panning, moving a marker). True when the offset changed.
    @discardableResult
    public func drag(_ label: String, rect: Rect, offset: inout Vec2) -> Bool {
        let i = interact(label, rect: rect)
        if i.isHovered || i.isActive { setCursor(.hand) }
        guard i.isActive, i.dragDelta != .zero else { return false }
        offset += i.dragDelta
        noteChange()
        return true
    }

    /// Rubber-band brushing over a custom view. Draws the band; the caller turns the
    /// returned rectangle into a selection (rows, taps, images).
    public func brush(_ label: String, in rect: Rect, axis: BrushAxis = .both) -> BrushResult {
        let i = interact(label, rect: rect)
        if i.isHovered || i.isActive { setCursor(.crosshair) }
        var result = BrushResult(interaction: i, brush: nil)
        guard i.isDragging else { return result }
        var band = Rect(corner: i.pressPosition, corner: input.mousePosition).intersection(rect)
        switch axis {
        case .horizontal: band = Rect(x: band.x, y: rect.y, width: band.width, height: rect.height)
        case .vertical: band = Rect(x: rect.x, y: band.y, width: rect.width, height: band.height)
        case .both: break
        }
        result.brush = Brush(rect: band, isFinished: !i.isActive || input.wasReleased(.left))
        drawList.fillRect(band, color: theme.colors.brushFill)
        drawList.strokeRect(band, color: theme.colors.brushStroke, thickness: max(1, scaled(1)))
        noteChange()
        return result
    }
}
