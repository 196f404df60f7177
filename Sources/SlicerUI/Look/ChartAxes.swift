// Axes for the app's charts: value ticks with grid lines, and category labels
// (tap names, channel numbers, class names) that are never cut: they are drawn
// upright when they fit their slot, turned upwards when they do not, and thinned
// to every n-th label when even that would make them overlap.

/// A label for one position on a category axis, with shorter alternatives
/// ("/layer1/layer1.0/conv1/Conv", "conv1/Conv") tried when the first does not fit.
public struct AxisLabel: Sendable, Hashable {
    /// Centre of the category along the axis, in pixels.
    public var position: Float
    /// Texts from the preferred to the shortest.
    public var texts: [String]
    /// Drawn even when thinning skips its neighbours (e.g. the selected tap).
    public var isEmphasized: Bool

    public init(position: Float, texts: [String], isEmphasized: Bool = false) {
        self.position = position
        self.texts = texts
        self.isEmphasized = isEmphasized
    }

    public init(position: Float, text: String, isEmphasized: Bool = false) {
        self.init(position: position, texts: [text], isEmphasized: isEmphasized)
    }
}

/// How a row of category labels is laid out under a plot.
public struct CategoryLabelLayout: Sendable, Equatable {
    /// Labels are turned to read upwards.
    public var isVertical: Bool
    /// Every `stride`-th label is drawn (plus emphasised ones that do not collide).
    public var stride: Int
    /// Height the labels take below the plot.
    public var height: Float
    /// The text chosen per label (index into its `texts`), nil where none fits.
    public var choices: [Int?]
}

extension UIContext {
    /// Grid lines across `plot` at `ticks` and their values in `labels` (left of the plot:
    /// right-aligned, vertically centred on the line). `position` maps a value to y.
    public func drawValueTicks(_ ticks: (values: [Double], decimals: Int), plot: Rect, labels: Rect,
                               position: (Double) -> Float, gridColor: Color? = nil) {
        let small = lineHeight(.small)
        for v in ticks.values {
            let y = position(v)
            guard y >= plot.y - 0.5, y <= plot.maxY + 0.5 else { continue }
            drawList.line(from: Vec2(plot.x, y), to: Vec2(plot.maxX, y), color: gridColor ?? theme.colors.gridLine)
            let text = formatNumber(v, decimals: ticks.decimals)
            let font = self.font(.small)
            let w = measurer.width(of: text[...], font: font)
            drawList.text(text, at: Vec2(labels.maxX - w, y - small / 2), font: font, color: theme.colors.textDim, measurer: measurer)
        }
    }

    /// Ticks along a horizontal value axis under `plot` (scatter plots): tick marks and values centred on them.
    public func drawHorizontalValueTicks(_ ticks: (values: [Double], decimals: Int), plot: Rect,
                                         position: (Double) -> Float, gridColor: Color? = nil) {
        let font = self.font(.small)
        for v in ticks.values {
            let x = position(v)
            guard x >= plot.x - 0.5, x <= plot.maxX + 0.5 else { continue }
            drawList.line(from: Vec2(x, plot.y), to: Vec2(x, plot.maxY), color: gridColor ?? theme.colors.gridLine)
            let text = formatNumber(v, decimals: ticks.decimals)
            let w = measurer.width(of: text[...], font: font)
            drawList.text(text, at: Vec2(x - w / 2, plot.maxY + scaled(2)), font: font, color: theme.colors.textDim, measurer: measurer)
        }
    }

    /// Chooses how `labels` fit under a plot: upright when each fits between its
    /// neighbours, else turned upwards with at most `maxHeight` of text; then
    /// thinned so that no two drawn labels overlap.
    /// `allowVertical: false` keeps short labels (numbers) upright and only thins them.
    public func layoutCategoryLabels(_ labels: [AxisLabel], maxHeight: Float, style: TextStyle = .small,
                                     allowVertical: Bool = true) -> CategoryLabelLayout {
        let font = self.font(style)
        let gap = scaled(4)
        let line = lineHeight(style)
        guard !labels.isEmpty else { return CategoryLabelLayout(isVertical: false, stride: 1, height: 0, choices: []) }
        let spacing = labels.count > 1
            ? zip(labels.dropFirst(), labels).map { abs($0.position - $1.position) }.min() ?? .infinity : .infinity
        // Upright: every label's preferred text within its slot, for all labels.
        let widths = labels.map { $0.texts.map { measurer.width(of: $0[...], font: font) } }
        if widths.allSatisfy({ ($0.first ?? 0) <= spacing - gap }) {
            return CategoryLabelLayout(isVertical: false, stride: 1, height: line, choices: labels.map { _ in 0 })
        }
        // Upright but thinned: still upright if every other, third, … label fits.
        let widest = widths.map { $0.first ?? 0 }.max() ?? 0
        let uprightStride = spacing > 0 ? Int(((widest + gap) / spacing).rounded(.up)) : labels.count
        // Turned: each label is one line tall across the axis.
        let turnedStride = max(1, spacing > 0 ? Int(((line + gap) / spacing).rounded(.up)) : labels.count)
        if !allowVertical || uprightStride <= 2 || uprightStride <= turnedStride {
            return CategoryLabelLayout(isVertical: false, stride: max(1, uprightStride), height: line, choices: labels.map { _ in 0 })
        }
        // One level of shortening for all labels where possible, so the axis reads evenly;
        // else each label's longest text that fits.
        let levels = widths.map(\.count).max() ?? 0
        let uniform = (0..<levels).first { level in widths.allSatisfy { $0.isEmpty || $0[min(level, $0.count - 1)] <= maxHeight } }
        let choices = widths.map { w in
            uniform.map { w.isEmpty ? nil : min($0, w.count - 1) } ?? w.firstIndex { $0 <= maxHeight }
        }
        let used = zip(widths, choices).map { w, c in c.map { w[$0] } ?? 0 }.max() ?? 0
        return CategoryLabelLayout(isVertical: true, stride: turnedStride, height: used + gap, choices: choices)
    }

    /// Draws `labels` below `plot` (from `top`) as `layout` says. Returns the labels drawn, by index.
    @discardableResult
    public func drawCategoryLabels(_ labels: [AxisLabel], layout: CategoryLabelLayout, top: Float,
                                   style: TextStyle = .small, color: Color? = nil, emphasisColor: Color? = nil) -> [Int] {
        let font = self.font(style)
        let line = lineHeight(style)
        let gap = scaled(4)
        var drawn: [Int] = []
        // Emphasised labels first, then the stride; a label is skipped if it would touch one drawn.
        let candidates = labels.indices.filter { labels[$0].isEmphasized }
            + Swift.stride(from: 0, to: labels.count, by: max(1, layout.stride)).filter { !labels[$0].isEmphasized }
        var occupied: [(Float, Float)] = []
        for i in candidates {
            guard let choice = layout.choices[safe: i] ?? nil else { continue }
            let text = labels[i].texts[choice]
            let length = measurer.width(of: text[...], font: font)
            let extent = layout.isVertical ? line : length
            let lo = labels[i].position - extent / 2, hi = labels[i].position + extent / 2
            if occupied.contains(where: { lo < $0.1 + gap && hi > $0.0 - gap }) { continue }
            occupied.append((lo, hi))
            let c = labels[i].isEmphasized ? (emphasisColor ?? theme.colors.text) : (color ?? theme.colors.textDim)
            if layout.isVertical {
                // Right-aligned to the plot: the text ends just under the axis.
                drawList.verticalText(text[...], at: Vec2(lo, top + gap / 2 + length), font: font, color: c, measurer: measurer)
            } else {
                drawList.text(text, at: Vec2(lo, top), font: font, color: c, measurer: measurer)
            }
            drawn.append(i)
        }
        return drawn.sorted()
    }

    /// One line of text turned to read upwards, centred across `rect` and starting at
    /// its bottom (column headers). The caller checks that it fits: nothing is cut here.
    public func drawVerticalText(_ text: Substring, in rect: Rect, style: TextStyle = .small, color: Color) {
        let font = self.font(style)
        let line = lineHeight(style)
        drawList.verticalText(text, at: Vec2(rect.x + (rect.width - line) / 2, rect.maxY), font: font, color: color, measurer: measurer)
    }

    /// Whether `text` fits `width` in `style` (to choose between labels before drawing one).
    public func fits(_ text: String, width: Float, style: TextStyle = .small) -> Bool {
        measurer.width(of: text[...], font: font(style)) <= width + 0.5
    }

    /// The first of `candidates` that fits `width`, or nil.
    public func firstFitting(_ candidates: [String], width: Float, style: TextStyle = .small) -> String? {
        candidates.first { fits($0, width: width, style: style) }
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { index >= 0 && index < count ? self[index] : nil }
}
