// Themes: colours plus metrics in layout points. Metrics are multiplied by the context's
// scale when used, so one theme serves every UI scale and display density.

/// The colours of a theme.
public struct ThemeColors: Hashable, Sendable {
    public var background: Color
    public var panel: Color
    public var panelBorder: Color
    public var text: Color
    public var textDim: Color
    public var textDisabled: Color
    /// Resting fill of buttons, fields and tracks.
    public var widget: Color
    public var widgetHovered: Color
    public var widgetActive: Color
    public var widgetBorder: Color
    /// Selection, checked state, slider fill, the active tab.
    public var accent: Color
    public var accentHovered: Color
    /// Text drawn on top of `accent`.
    public var textOnAccent: Color
    /// Background of selected list rows.
    public var selection: Color
    public var focusRing: Color
    public var scrollbarThumb: Color
    public var tooltip: Color
    public var tooltipText: Color
    /// Veil over the window behind a modal message.
    public var modalVeil: Color
    public var error: Color
    public var gridLine: Color
    /// Fill and outline of the brushing rectangle.
    public var brushFill: Color
    public var brushStroke: Color
}

public struct Theme: Hashable, Sendable {
    public var name: String
    public var colors: ThemeColors
    /// Colours of classes (lines, swatches), readable on this theme's panels.
    public var classPalette: CategoricalPalette = .dark
    /// Body text size in points.
    public var fontSize: Float = 14
    public var monoFontSize: Float = 13
    public var headingFontSize: Float = 17
    /// Space between a widget's edge and its content.
    public var padding: Float = 6
    /// Space between neighbouring widgets.
    public var spacing: Float = 6
    public var cornerRadius: Float = 4
    public var borderWidth: Float = 1
    public var focusRingWidth: Float = 2
    public var scrollbarWidth: Float = 10
    public var splitterThickness: Float = 6
    /// Seconds the mouse must rest on a widget before its tooltip shows.
    public var tooltipDelay: Double = 0.5

    public init(name: String, colors: ThemeColors) {
        self.name = name
        self.colors = colors
    }

    public static let dark = Theme(name: "dark", colors: ThemeColors(
        background: Color(hex: 0x1B1D21),
        panel: Color(hex: 0x24272C),
        panelBorder: Color(hex: 0x363A41),
        text: Color(hex: 0xE6E8EB),
        textDim: Color(hex: 0xA2A8B1),
        textDisabled: Color(hex: 0x686E77),
        widget: Color(hex: 0x33373E),
        widgetHovered: Color(hex: 0x3E434B),
        widgetActive: Color(hex: 0x4A5059),
        widgetBorder: Color(hex: 0x4A4F57),
        accent: Color(hex: 0x3D8BD9),
        accentHovered: Color(hex: 0x5AA0E6),
        textOnAccent: Color(hex: 0xFFFFFF),
        selection: Color(hex: 0x2D4F73),
        focusRing: Color(hex: 0x8CC4FF),
        scrollbarThumb: Color(hex: 0x555B64),
        tooltip: Color(hex: 0x0F1114, alpha: 240),
        tooltipText: Color(hex: 0xF2F3F5),
        modalVeil: Color(hex: 0x000000, alpha: 150),
        error: Color(hex: 0xF06A5E),
        gridLine: Color(hex: 0x3A3E45),
        brushFill: Color(hex: 0x3D8BD9, alpha: 60),
        brushStroke: Color(hex: 0x8CC4FF)))

    public static let light: Theme = {
        var theme = Theme(name: "light", colors: ThemeColors(
            background: Color(hex: 0xECEEF1),
            panel: Color(hex: 0xFAFBFC),
            panelBorder: Color(hex: 0xC9CED6),
            text: Color(hex: 0x1E2126),
            textDim: Color(hex: 0x5D646E),
            textDisabled: Color(hex: 0xA0A6AE),
            widget: Color(hex: 0xE1E4E9),
            widgetHovered: Color(hex: 0xD3D8DF),
            widgetActive: Color(hex: 0xC2C8D1),
            widgetBorder: Color(hex: 0xB3BAC4),
            accent: Color(hex: 0x1F6FC5),
            accentHovered: Color(hex: 0x2F80D8),
            textOnAccent: Color(hex: 0xFFFFFF),
            selection: Color(hex: 0xC7DDF5),
            focusRing: Color(hex: 0x1F6FC5),
            scrollbarThumb: Color(hex: 0xB8BEC7),
            tooltip: Color(hex: 0x2A2D33, alpha: 245),
            tooltipText: Color(hex: 0xF5F6F8),
            modalVeil: Color(hex: 0x20242A, alpha: 110),
            error: Color(hex: 0xC62F22),
            gridLine: Color(hex: 0xD9DDE3),
            brushFill: Color(hex: 0x1F6FC5, alpha: 50),
            brushStroke: Color(hex: 0x1F6FC5)))
        theme.classPalette = .light
        theme.cornerRadius = 4
        return theme
    }()

    /// For projectors and low vision: black and white with a yellow accent, thicker
    /// borders and focus ring, larger text.
    public static let highContrast: Theme = {
        var theme = Theme(name: "high-contrast", colors: ThemeColors(
            background: Color(hex: 0x000000),
            panel: Color(hex: 0x000000),
            panelBorder: Color(hex: 0xFFFFFF),
            text: Color(hex: 0xFFFFFF),
            textDim: Color(hex: 0xE0E0E0),
            textDisabled: Color(hex: 0xA8A8A8),
            widget: Color(hex: 0x000000),
            widgetHovered: Color(hex: 0x2B2B2B),
            widgetActive: Color(hex: 0x474747),
            widgetBorder: Color(hex: 0xFFFFFF),
            accent: Color(hex: 0xFFD400),
            accentHovered: Color(hex: 0xFFE44D),
            textOnAccent: Color(hex: 0x000000),
            selection: Color(hex: 0x0046B8),
            focusRing: Color(hex: 0x00E5FF),
            scrollbarThumb: Color(hex: 0xFFFFFF),
            tooltip: Color(hex: 0xFFFFFF),
            tooltipText: Color(hex: 0x000000),
            modalVeil: Color(hex: 0x000000, alpha: 200),
            error: Color(hex: 0xFF5C5C),
            gridLine: Color(hex: 0x8A8A8A),
            brushFill: Color(hex: 0xFFD400, alpha: 70),
            brushStroke: Color(hex: 0xFFD400)))
        theme.classPalette = .highContrast
        theme.fontSize = 16
        theme.monoFontSize = 15
        theme.headingFontSize = 19
        theme.borderWidth = 2
        theme.focusRingWidth = 3
        theme.cornerRadius = 2
        return theme
    }()

    public static let all: [Theme] = [.dark, .light, .highContrast]
}
