// Legends for colour maps and class palettes, plus the number formatting and tick
// placement they (and the app's charts) need.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fixed-point formatting without Foundation: `formatNumber(3.14159, decimals: 2)` → "3.14".
public func formatNumber(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "∞" : "−∞") }
    let digits = max(0, min(9, decimals))
    var power: Double = 1
    for _ in 0..<digits { power *= 10 }
    let magnitude = (abs(value) * power).rounded()
    guard magnitude < 9e15 else { return String(value) }
    let whole = UInt64(magnitude)
    let divisor = UInt64(power)
    var text = (value < 0 && whole != 0 ? "-" : "") + String(whole / divisor)
    if digits > 0 {
        let fraction = String(whole % divisor)
        text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
    return text
}

public func formatNumber(_ value: Float, decimals: Int) -> String { formatNumber(Double(value), decimals: decimals) }

/// Round tick values (steps of 1, 2 or 5 × 10ⁿ) covering `range`, at most about `maxCount`,
/// and the number of decimals that shows them exactly.
public func niceTicks(in range: ClosedRange<Double>, maxCount: Int) -> (values: [Double], decimals: Int) {
    let span = range.upperBound - range.lowerBound
    guard span > 0, span.isFinite, maxCount >= 2 else { return ([range.lowerBound], 2) }
    let rough = span / Double(maxCount - 1)
    let magnitude = pow(10, floor(log10(rough)))
    let residual = rough / magnitude
    let step = (residual < 1.5 ? 1 : residual < 3 ? 2 : residual < 7 ? 5 : 10) * magnitude
    var values: [Double] = []
    var v = ceil(range.lowerBound / step - 1e-9) * step
    while v <= range.upperBound + step * 1e-9 {
        values.append(abs(v) < step * 1e-9 ? 0 : v)
        v += step
    }
    return (values, max(0, Int(-floor(log10(step) + 1e-9))))
}

extension UIContext {
    /// A horizontal colour bar with ticks and a unit in the next cell, e.g. entropy in "bits".
    public func colorLegend(_ map: ColorMap, range: ClosedRange<Float>, unit: String, tickCount: Int = 5) {
        let small = lineHeight(.small)
        let rect = nextRect(preferredHeight: (small * 0.9).rounded() + scaled(4) + small)
        drawColorLegend(map, range: range, unit: unit, in: rect, axis: .horizontal, tickCount: tickCount)
    }

    /// Draws a colour bar with ticks into `rect`. Horizontal: bar on top, tick labels below,
    /// unit at the right. Vertical: unit on top, bar at the left, labels to its right,
    /// high values at the top.
    public func drawColorLegend(_ map: ColorMap, range: ClosedRange<Float>, unit: String, in rect: Rect,
                                axis: Axis = .horizontal, tickCount: Int = 5) {
        let colors = theme.colors
        let font = self.font(.small)
        let small = measurer.metrics(of: font).lineHeight
        let tickLength = scaled(4)
        let segments = 48
        // Two ticks: the range's own ends (a narrow legend), at the decimals its span needs.
        let spanned = Double(range.upperBound - range.lowerBound)
        let ticks: (values: [Double], decimals: Int) = tickCount <= 2
            ? ([Double(range.lowerBound), Double(range.upperBound)], spanned >= 10 ? 0 : spanned >= 1 ? 1 : spanned >= 0.1 ? 2 : 3)
            : niceTicks(in: Double(range.lowerBound)...Double(max(range.upperBound, range.lowerBound)), maxCount: tickCount)
        let span = range.upperBound - range.lowerBound
        func position(_ v: Double) -> Float { span > 0 ? (Float(v) - range.lowerBound) / span : 0 }

        if axis == .horizontal {
            let unitWidth = unit.isEmpty ? 0 : measurer.width(of: unit[...], font: font) + scaled(theme.padding)
            // Half a label's width of margin each side so end labels are not cut off.
            let endLabels = [range.lowerBound, range.upperBound].map { formatNumber($0, decimals: ticks.decimals) }
            let margin = ((endLabels.map { measurer.width(of: $0[...], font: font) }.max() ?? 0) / 2).rounded()
            let bar = Rect(x: rect.x + margin, y: rect.y, width: max(1, rect.width - unitWidth - 2 * margin),
                           height: (small * 0.9).rounded())
            for k in 0..<segments {
                let t0 = Float(k) / Float(segments), t1 = Float(k + 1) / Float(segments)
                let x0 = (bar.x + bar.width * t0).rounded(), x1 = (bar.x + bar.width * t1).rounded()
                drawList.fillGradient(Rect(x: x0, y: bar.y, width: x1 - x0, height: bar.height),
                                      from: map.color(at: t0), to: map.color(at: t1), axis: .horizontal)
            }
            drawList.strokeRect(bar.insetBy(-1), color: colors.panelBorder)
            for value in ticks.values {
                let x = (bar.x + bar.width * position(value)).rounded()
                drawList.fillRect(Rect(x: x, y: bar.maxY, width: max(1, scaled(1)), height: tickLength), color: colors.textDim)
                let text = formatNumber(value, decimals: ticks.decimals)
                let w = measurer.width(of: text[...], font: font)
                drawList.text(text, at: Vec2(x - w / 2, bar.maxY + tickLength), font: font, color: colors.textDim, measurer: measurer)
            }
            if !unit.isEmpty {
                drawList.text(unit, at: Vec2(bar.maxX + margin + scaled(theme.padding), bar.y + (bar.height - small) / 2),
                              font: font, color: colors.text, measurer: measurer)
            }
        } else {
            let top = unit.isEmpty ? rect.y : rect.y + small + scaled(2)
            if !unit.isEmpty {
                drawList.text(unit, at: Vec2(rect.x, rect.y), font: font, color: colors.text, measurer: measurer)
            }
            let bar = Rect(x: rect.x, y: top + small / 2, width: (small * 0.9).rounded(),
                           height: max(1, rect.maxY - top - small))
            for k in 0..<segments {
                let t0 = Float(k) / Float(segments), t1 = Float(k + 1) / Float(segments)
                let y1 = (bar.maxY - bar.height * t0).rounded(), y0 = (bar.maxY - bar.height * t1).rounded()
                drawList.fillGradient(Rect(x: bar.x, y: y0, width: bar.width, height: y1 - y0),
                                      from: map.color(at: t1), to: map.color(at: t0), axis: .vertical)
            }
            drawList.strokeRect(bar.insetBy(-1), color: colors.panelBorder)
            for value in ticks.values {
                let y = (bar.maxY - bar.height * position(value)).rounded()
                drawList.fillRect(Rect(x: bar.maxX, y: y, width: tickLength, height: max(1, scaled(1))), color: colors.textDim)
                drawList.text(formatNumber(value, decimals: ticks.decimals), at: Vec2(bar.maxX + tickLength + scaled(3), y - small / 2),
                              font: font, color: colors.textDim, measurer: measurer)
            }
        }
    }

    /// Swatches with class names, flowing over as many lines as needed. Returns the index
    /// of a class clicked this frame (e.g. to select it everywhere).
    @discardableResult
    public func categoryLegend(_ names: [String], palette: CategoricalPalette = .standard, label: String = "legend") -> Int? {
        let font = self.font(.small)
        let small = measurer.metrics(of: font).lineHeight
        let swatch = (small * 0.75).rounded()
        let gap = scaled(theme.padding)
        let itemWidths = names.map { swatch + scaled(4) + measurer.width(of: $0[...], font: font) + 2 * gap }
        // Measure the flow against the cell width before claiming the cell's height.
        var probe = layoutStack[layoutStack.count - 1]
        let width = probe.place(preferredHeight: 0, scale: scale).width
        var lines = 1
        var x: Float = 0
        for w in itemWidths {
            if x > 0, x + w > width { lines += 1; x = 0 }
            x += w
        }
        let rect = nextRect(preferredHeight: small * Float(lines) + scaled(2) * Float(lines - 1))
        var clicked: Int?
        pushID(label)
        var cursor = Vec2(rect.x, rect.y)
        for (index, name) in names.enumerated() {
            if cursor.x > rect.x, cursor.x + itemWidths[index] > rect.maxX {
                cursor = Vec2(rect.x, cursor.y + small + scaled(2))
            }
            let item = Rect(x: cursor.x, y: cursor.y, width: itemWidths[index] - gap, height: small)
            let i = interact(name + "##\(index)", rect: item)
            if i.isHovered { drawList.fillRect(item, color: theme.colors.widgetHovered, cornerRadius: scaled(2)) }
            drawList.fillRect(Rect(x: item.x + scaled(2), y: item.y + (small - swatch) / 2, width: swatch, height: swatch),
                              color: palette.color(at: index), cornerRadius: scaled(2))
            drawList.text(name, at: Vec2(item.x + scaled(2) + swatch + scaled(4), item.y), font: font,
                          color: theme.colors.text, measurer: measurer)
            if i.isClicked { clicked = index }
            cursor.x += itemWidths[index]
        }
        popID()
        return clicked
    }
}
