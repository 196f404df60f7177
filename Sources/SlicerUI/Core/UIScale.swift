// The user's UI scale (Ctrl +, Ctrl −, Ctrl 0). It multiplies the display density; the
// backend puts the product into `InputState.scale`, so fonts are re-rasterised at the new
// pixel size and every metric scales with them.

public struct UIScale: Hashable, Sendable {
    /// Zoom steps, like a browser's: fine near 100 %, coarser further out.
    public static let steps: [Float] = [0.5, 0.67, 0.75, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 1.75, 2, 2.5, 3]

    public private(set) var factor: Float

    public init(factor: Float = 1) {
        self.factor = max(UIScale.steps[0], min(UIScale.steps[UIScale.steps.count - 1], factor))
    }

    public mutating func zoomIn() {
        factor = UIScale.steps.first { $0 > factor + 0.001 } ?? factor
    }
    public mutating func zoomOut() {
        factor = UIScale.steps.last { $0 < factor - 0.001 } ?? factor
    }
    public mutating func reset() { factor = 1 }
}

extension UIContext {
    /// Applies Ctrl/Cmd + "+"/"=" (zoom in), "-" (zoom out) and "0" (reset) to `scale`.
    /// Shift is ignored because "+" needs it on many layouts. True when the scale changed.
    @discardableResult
    public func handleScaleShortcuts(_ scale: inout UIScale) -> Bool {
        let before = scale
        for command in [KeyModifiers.control, .gui] {
            for modifiers in [command, command.union(.shift)] {
                if takeKey(.character("+"), modifiers: modifiers) || takeKey(.character("="), modifiers: modifiers) {
                    scale.zoomIn()
                }
                if takeKey(.character("-"), modifiers: modifiers) { scale.zoomOut() }
                if takeKey(.character("0"), modifiers: modifiers) { scale.reset() }
            }
        }
        if scale != before { requestFrame() }
        return scale != before
    }
}
