// The immediate-mode context: one per window, owned by the UI thread.
//
// Each frame the app calls `beginFrame(_:)`, declares its widgets (which draw and return
// whether they were used), then `endFrame()`. The values widgets edit belong to the caller;
// the context only remembers interaction state (hover, press, keyboard focus), scroll
// offsets and the caret of the text field being edited — all keyed by widget IDs made
// from labels hashed under an ID stack.

/// A widget's identity: a hash of its label under the enclosing ID scopes.
public struct WidgetID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "#" + String(rawValue, radix: 16) }
}

/// Two interactive widgets in one frame with the same ID: they would share hover, press and
/// focus state. Usually the same label twice in one scope; fix it with `pushID` or "label##key".
public struct IDCollision: Hashable, Sendable {
    public var id: WidgetID
    public var label: String
}

/// A line of text that did not fit its rectangle and was drawn shortened with "…".
/// In front of an audience a shortened control label hides what the control does, so the
/// text-fitting code records every shortening; layout tests fail on the ones they care about.
public struct TextTruncation: Sendable, Hashable, CustomStringConvertible {
    /// Whose text it was.
    public enum Kind: Sendable, Hashable {
        /// The label of an interactive widget (button, check box, segment, tab, drop-down…).
        case control
        /// Static text with a name: `label(_:)`, modal titles, or `drawText(…, owner:)`.
        case label
        /// Other text a view drew with `drawText` (values, axis ticks, captions).
        case text
    }

    public var kind: Kind
    /// The text as asked for.
    public var text: String
    /// What was drawn instead ("" when not even "…" fitted).
    public var shown: String
    /// The widget's ID (for `.control`), or the ID its label has in its scope (for `.label`).
    public var widgetID: WidgetID?
    /// The label the ID was made from (may carry a "##key" suffix).
    public var label: String?
    /// The rectangle the text had to fit.
    public var rect: Rect

    public var description: String {
        "\(kind) \(label.map { "'\($0)' " } ?? "")\(widgetID.map { "\($0) " } ?? "")shows '\(shown)' for '\(text)' in \(Int(rect.width.rounded())) px"
    }
}

/// Problems found while building frames, for tests and a debug overlay.
public struct Diagnostics: Sendable {
    /// ID collisions of the last completed frame.
    public var idCollisions: [IDCollision] = []
    /// Unbalanced begin/end or push/pop calls noticed at the end of the last frame.
    public var unbalancedScopes: [String] = []
    /// Text shortened to fit in the last completed frame, in drawing order.
    public var truncations: [TextTruncation] = []

    /// The truncated labels of controls and named static text: what a user reads to know
    /// what a control does. Plain view text (`.text`) is left out.
    public var truncatedLabels: [TextTruncation] { truncations.filter { $0.kind != .text } }
}

/// How a region responds to the mouse and keyboard this frame.
public struct Interaction: Sendable {
    public var id: WidgetID
    /// The widget's rectangle (unclipped).
    public var rect: Rect
    /// The mouse is over the visible part of the widget and nothing covers it.
    public var isHovered = false
    /// The left button went down on the widget this frame.
    public var isPressed = false
    /// The left button went down on the widget and is still held (or was released this frame).
    public var isActive = false
    /// Released over the widget after pressing it, or activated from the keyboard.
    public var isClicked = false
    public var isDoubleClicked = false
    public var isRightClicked = false
    public var isFocused = false
    /// The mouse moved beyond the drag threshold while active.
    public var isDragging = false
    /// Mouse position when the press started.
    public var pressPosition = Vec2.zero
    /// Movement since the previous frame while active.
    public var dragDelta = Vec2.zero
}

/// Behaviour switches for `interact(_:rect:options:)`.
public struct InteractionOptions: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Takes keyboard focus on click and in Tab order; Enter/Space then click it.
    public static let focusable = InteractionOptions(rawValue: 1 << 0)
    /// Focusable, but Enter/Space are left to the widget (text fields, lists).
    public static let customKeys = InteractionOptions(rawValue: 1 << 1)
}

/// Facts about the most recent widget, for tooltips and app logic.
public struct ItemInfo: Sendable {
    public var id: WidgetID?
    public var rect = Rect.zero
    public var isHovered = false
    public var isActive = false
    public var isFocused = false
    /// A text field whose editing ended with Enter this frame.
    public var wasSubmitted = false
}

/// Mouse cursor shapes a widget can ask for.
public enum MouseCursor: Sendable, Hashable {
    case arrow, text, hand, resizeHorizontal, resizeVertical, crosshair
}

/// Named text sizes of a theme.
public enum TextStyle: Sendable {
    case body, mono, heading, small
}

@MainActor
public final class UIContext {
    public let measurer: any TextMeasurer
    public var theme: Theme
    public private(set) var input = InputState()
    public private(set) var frameIndex = 0
    public private(set) var diagnostics = Diagnostics()
    public internal(set) var lastItem = ItemInfo()

    // Interaction state.
    /// The topmost widget under the mouse, as resolved at the end of the last frame.
    public private(set) var hotID: WidgetID?
    public internal(set) var activeID: WidgetID?
    public internal(set) var focusID: WidgetID?
    /// True when focus was moved with the keyboard, so focus rings should show.
    public internal(set) var isFocusVisible = false
    /// True while the focused widget edits text (the backend may show an input method).
    public internal(set) var wantsTextInput = false
    /// Time at which the backend should run a frame although no event arrived;
    /// nil means "sleep until input". Updated by `endFrame()`.
    public private(set) var wakeTime: Double?

    /// Whether Tab and Shift+Tab move keyboard focus between widgets (read at `beginFrame`).
    /// An app that gives Tab another meaning (cycling its views) turns it off, and back on
    /// while a dialog needs Tab to walk its fields and buttons.
    public var tabMovesFocus = true

    /// Clipboard access supplied by the backend; nil (no clipboard) in tests.
    public var readClipboard: (@MainActor () -> String?)?
    public var writeClipboard: (@MainActor (String) -> Void)?

    // Output.
    var lists: [DrawList]
    public private(set) var layer: DrawLayer = .base

    // ID scopes.
    var idStack: [UInt64] = [UIContext.hashSeed]
    var usedIDs = Set<WidgetID>()
    var collisions: [IDCollision] = []
    var truncations: [TextTruncation] = []

    // Hover resolution: the topmost widget under the mouse last frame wins overlaps.
    struct HoverRecord { var id: WidgetID; var rect: Rect; var layer: DrawLayer }
    var topmostHover: HoverRecord?
    var previousTopmostHover: HoverRecord?
    /// Areas covered by higher layers (popups, tooltips, modal veil), this frame and last.
    var coveredAreas: [(layer: DrawLayer, rect: Rect)] = []
    var previousCoveredAreas: [(layer: DrawLayer, rect: Rect)] = []
    var hoverStartTime: Double = 0
    var activeSeen = false
    var previousMouse = Vec2.zero
    var pressPosition = Vec2.zero
    var dragStarted = false
    /// A widget took this frame's left press (it may already have been released again).
    var pressClaimed = false
    /// The mouse cursor the widgets under the mouse ask for; the backend applies it.
    public internal(set) var cursor: MouseCursor = .arrow

    // Keyboard.
    var consumedKeys: [Bool] = []
    var focusOrder: [WidgetID] = []
    /// The focus stops of the modal layer this frame: once a dialog is up, Tab walks only these.
    var modalFocusOrder: [WidgetID] = []
    var previousFocusOrder: [WidgetID] = []
    var focusSeen = false
    var focusMovedThisFrame = false
    var focusRectThisFrame: Rect?
    var focusPanelID: WidgetID?

    // Frame-to-frame change tracking, for "render another frame".
    var stateAtBegin: (WidgetID?, WidgetID?, WidgetID?, WidgetID?) = (nil, nil, nil, nil)
    var changedThisFrame = false
    var requestedWake: Double?

    // Layout, panels, popups, editing (used by the extensions in other files).
    var layoutStack: [LayoutFrame] = []
    var panelStack: [PanelFrame] = []
    var panelStates: [WidgetID: PanelState] = [:]
    var layerStack: [DrawLayer] = []
    var openPopupID: WidgetID?
    var popupOpenedThisFrame = false
    /// The frame in which the open popup opened.
    var popupOpenedAtFrame = 0
    /// The open popup was drawn this frame; if its owner is gone, the popup closes.
    var popupDrawn = false
    var popupRect: Rect?
    var popupAnchor: Rect?
    var textEdit = TextEditState()
    /// A text field asked to select all of its text when it next draws with focus.
    var pendingSelectAll: WidgetID?
    var modalOpen = false
    var previousModalOpen = false
    var wheelConsumed = false

    public init(measurer: any TextMeasurer, theme: Theme = .dark) {
        self.measurer = measurer
        self.theme = theme
        self.lists = DrawLayer.allCases.map { _ in DrawList() }
    }

    // MARK: Frame

    /// Starts a frame from the given input. Call exactly once before any widget.
    public func beginFrame(_ input: InputState) {
        self.input = input
        frameIndex += 1
        let display = Rect(origin: .zero, size: input.displaySize)
        for i in lists.indices {
            lists[i].reset(bounds: display, solidTexture: measurer.atlasTexture, whiteTexel: measurer.whiteTexel)
        }
        layer = .base
        layerStack.removeAll(keepingCapacity: true)
        idStack.removeAll(keepingCapacity: true)
        idStack.append(UIContext.hashSeed)
        usedIDs.removeAll(keepingCapacity: true)
        collisions.removeAll(keepingCapacity: true)
        truncations.removeAll(keepingCapacity: true)
        previousTopmostHover = topmostHover
        topmostHover = nil
        previousCoveredAreas = coveredAreas
        coveredAreas.removeAll(keepingCapacity: true)
        // A dialog that opened during the last frame: Tab walks its widgets only, from the start.
        previousFocusOrder = modalOpen ? modalFocusOrder : focusOrder
        focusOrder.removeAll(keepingCapacity: true)
        modalFocusOrder.removeAll(keepingCapacity: true)
        consumedKeys = Array(repeating: false, count: input.keys.count)
        previousModalOpen = modalOpen
        modalOpen = false
        popupOpenedThisFrame = false
        activeSeen = false
        pressClaimed = false
        cursor = .arrow
        focusSeen = false
        focusMovedThisFrame = false
        focusRectThisFrame = nil
        wheelConsumed = false
        wantsTextInput = false
        changedThisFrame = false
        requestedWake = nil
        popupDrawn = false
        lastItem = ItemInfo()
        stateAtBegin = (previousTopmostHover?.id, activeID, focusID, openPopupID)

        // Tab / Shift+Tab move focus along last frame's order (this frame's isn't known yet).
        if tabMovesFocus {
            if takeKey(.tab, modifiers: []) { moveFocus(by: 1) } else if takeKey(.tab, modifiers: .shift) { moveFocus(by: -1) }
        }

        layoutStack.removeAll(keepingCapacity: true)
        panelStack.removeAll(keepingCapacity: true)
        layoutStack.append(LayoutFrame(body: display.insetBy(scaled(theme.spacing)), spacing: scaled(theme.spacing)))
    }

    /// Finishes the frame: resolves focus and popups, checks scopes and decides whether
    /// another frame is needed. The result is in `drawData`.
    public func endFrame() {
        var unbalanced: [String] = []
        if idStack.count != 1 { unbalanced.append("ID stack has \(idStack.count - 1) unpopped scope(s)") }
        if !panelStack.isEmpty { unbalanced.append("\(panelStack.count) panel(s) not ended") }
        if layoutStack.count != 1 { unbalanced.append("\(layoutStack.count - 1) layout column(s) not ended") }
        if !layerStack.isEmpty { unbalanced.append("\(layerStack.count) layer(s) not ended") }
        for list in lists where list.clipDepth != 0 { unbalanced.append("clip stack depth \(list.clipDepth)"); break }

        // A press that went to no widget clears focus (clicking empty space "blurs").
        if input.wasPressed(.left), !pressClaimed, !focusMovedThisFrame {
            if let popup = popupRect, popup.contains(input.mousePosition) {} else { focusID = nil }
        }
        if activeID != nil, !activeSeen { activeID = nil }   // the pressed widget disappeared
        if focusID != nil, !focusSeen, !focusMovedThisFrame { focusID = nil }
        if activeID != nil, !input.isDown(.left), !input.wasReleased(.left) { activeID = nil }
        if takeKey(.escape) {
            if openPopupID != nil { openPopupID = nil } else { focusID = nil }
        }
        // A click outside the open popup and its opener closes it.
        if openPopupID != nil, !popupOpenedThisFrame, input.wasPressed(.left) {
            let insidePopup = popupRect?.contains(input.mousePosition) ?? false
            let onAnchor = popupAnchor?.contains(input.mousePosition) ?? false
            if !insidePopup, !onAnchor { openPopupID = nil }
        }
        if openPopupID != nil, !popupDrawn, !popupOpenedThisFrame { openPopupID = nil }
        if openPopupID == nil { popupRect = nil; popupAnchor = nil }

        let hoveredNow = topmostHover?.id
        if hoveredNow != stateAtBegin.0 { hoverStartTime = input.time }
        hotID = hoveredNow
        previousMouse = input.mousePosition

        // Interaction changes what widgets draw (hover tints, values), and the frame that
        // saw the change drew before it: ask for one more frame so the screen catches up.
        let stateNow = (hoveredNow, activeID, focusID, openPopupID)
        if stateNow != stateAtBegin || changedThisFrame {
            requestedWake = input.time
        }
        wakeTime = requestedWake

        diagnostics = Diagnostics(idCollisions: collisions, unbalancedScopes: unbalanced, truncations: truncations)
    }

    /// The frame's triangles, one draw list per layer.
    public var drawData: DrawData { DrawData(lists: lists, clearColor: theme.colors.background) }

    /// The draw list of the current layer, for custom drawing.
    /// `_modify` yields the stored list in place: with plain get/set every primitive would
    /// copy the whole list (copy-on-write of a buffer that is never uniquely referenced).
    public var drawList: DrawList {
        get { lists[layer.rawValue] }
        _modify { yield &lists[layer.rawValue] }
    }

    /// Asks for a frame `seconds` from now even if no input arrives (animations, timers).
    public func requestFrame(after seconds: Double = 0) {
        let t = input.time + max(0, seconds)
        requestedWake = min(requestedWake ?? t, t)
    }

    /// Records that a widget changed a value, so the app's reaction is drawn promptly.
    func noteChange() { changedThisFrame = true }

    // MARK: Scale and fonts

    /// Pixels per layout point.
    public var scale: Float { input.scale }

    /// A length in layout points converted to pixels.
    @inlinable public func scaled(_ points: Float) -> Float { (points * scale).rounded() }

    public func font(_ style: TextStyle) -> Font {
        switch style {
        case .body: return Font(.sans, pixelSize: Int((theme.fontSize * scale).rounded()))
        case .mono: return Font(.mono, pixelSize: Int((theme.monoFontSize * scale).rounded()))
        case .heading: return Font(.sans, pixelSize: Int((theme.headingFontSize * scale).rounded()))
        case .small: return Font(.sans, pixelSize: Int((theme.fontSize * 0.86 * scale).rounded()))
        }
    }

    public func lineHeight(_ style: TextStyle = .body) -> Float { measurer.metrics(of: font(style)).lineHeight }

    /// Height of a standard single-line widget (button, field, slider).
    public var widgetHeight: Float { (lineHeight(.body) + 2 * scaled(theme.padding) * 0.75).rounded() }

    // MARK: IDs

    static let hashSeed: UInt64 = 0xcbf2_9ce4_8422_2325

    /// FNV-1a over the label's bytes, seeded with the enclosing scope, then a final mix so
    /// nearby labels ("row 1", "row 2") land far apart.
    static func hash(_ label: String, seed: UInt64) -> UInt64 {
        var h = seed
        for byte in label.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        h ^= h >> 33; h = h &* 0xff51_afd7_ed55_8ccd; h ^= h >> 33
        return h
    }

    /// The ID a widget with this label gets in the current scope.
    public func id(_ label: String) -> WidgetID {
        WidgetID(rawValue: UIContext.hash(label, seed: idStack[idStack.count - 1]))
    }

    /// The text a label shows: everything before "##" ("Save##toolbar" shows "Save";
    /// the whole label still makes the ID).
    public nonisolated static func visibleText(_ label: String) -> Substring {
        var index = label.utf8.startIndex
        let end = label.utf8.endIndex
        while index < end {
            let next = label.utf8.index(after: index)
            if label.utf8[index] == UInt8(ascii: "#"), next < end, label.utf8[next] == UInt8(ascii: "#") {
                return label[label.startIndex..<index]
            }
            index = next
        }
        return label[...]
    }

    public func pushID(_ label: String) {
        idStack.append(UIContext.hash(label, seed: idStack[idStack.count - 1]))
    }
    public func pushID(_ index: Int) { pushID("#\(index)") }
    public func popID() {
        if idStack.count > 1 { idStack.removeLast() }
    }
    /// Runs `body` inside an ID scope, so repeated labels (one "Remove" per row) stay distinct.
    public func withID<R>(_ label: String, _ body: () throws -> R) rethrows -> R {
        pushID(label); defer { popID() }
        return try body()
    }
    public func withID<R>(_ index: Int, _ body: () throws -> R) rethrows -> R {
        pushID(index); defer { popID() }
        return try body()
    }

    /// Claims an ID for this frame, recording a collision when it was already claimed.
    func register(_ id: WidgetID, label: String, rect: Rect) {
        if !usedIDs.insert(id).inserted {
            collisions.append(IDCollision(id: id, label: label))
            // Make the problem visible, as a developer aid.
            drawList.strokeRect(rect, color: theme.colors.error, thickness: scaled(2))
        }
    }

    // MARK: Hover and press

    /// Whether `point` lies under a higher layer's popup, tooltip or modal veil.
    func isCovered(_ point: Vec2) -> Bool {
        for area in previousCoveredAreas where area.layer.rawValue > layer.rawValue && area.rect.contains(point) { return true }
        for area in coveredAreas where area.layer.rawValue > layer.rawValue && area.rect.contains(point) { return true }
        if previousModalOpen, layer != .modal { return true }
        return false
    }

    /// Marks an area as covering everything in lower layers (popups, the modal veil).
    func cover(_ rect: Rect) { coveredAreas.append((layer, rect)) }

    /// Whether the mouse is over the visible part of `rect` in the current clip and layer.
    public func isMouseOver(_ rect: Rect) -> Bool {
        guard input.mouseInWindow else { return false }
        let visible = rect.intersection(drawList.clipRect)
        return visible.contains(input.mousePosition) && !isCovered(input.mousePosition)
    }

    /// Hover with overlap resolution: if last frame's topmost widget is still under the
    /// mouse, only it is hovered; otherwise any widget under the mouse is.
    func hover(_ id: WidgetID, _ rect: Rect) -> Bool {
        guard isMouseOver(rect) else { return false }
        let visible = rect.intersection(drawList.clipRect)
        if let top = topmostHover, top.layer.rawValue > layer.rawValue { return false }
        topmostHover = HoverRecord(id: id, rect: visible, layer: layer)
        // If last frame's winner vanished, nothing is hovered for one frame; `endFrame`
        // then sees the hover change and asks for another frame, which resolves it.
        if let previous = previousTopmostHover, previous.id != id, previous.layer.rawValue >= layer.rawValue,
           previous.rect.contains(input.mousePosition) {
            return false
        }
        return activeID == nil || activeID == id
    }

    /// The core of every widget: hover, press, release, drag and keyboard activation for a
    /// rectangle. Custom views call it directly (e.g. a chart that selects on click).
    @discardableResult
    public func interact(_ label: String, rect: Rect, options: InteractionOptions = []) -> Interaction {
        let id = self.id(label)
        return interact(id: id, label: label, rect: rect, options: options)
    }

    func interact(id: WidgetID, label: String, rect: Rect, options: InteractionOptions) -> Interaction {
        register(id, label: label, rect: rect)
        var result = Interaction(id: id, rect: rect)
        result.isHovered = hover(id, rect)
        let focusable = options.contains(.focusable) || options.contains(.customKeys)
        if focusable { addFocusStop(id) }

        if result.isHovered, activeID == nil, input.wasPressed(.left) {
            activeID = id
            pressClaimed = true
            pressPosition = input.mousePosition
            dragStarted = false
            result.isPressed = true
            result.isDoubleClicked = input.clickCount >= 2
            if focusable {
                focusID = id
                isFocusVisible = false
            } else if focusID != nil, !(popupRect?.contains(input.mousePosition) ?? false) {
                focusID = nil
            }
        }
        if activeID == id {
            activeSeen = true
            result.isActive = true
            result.pressPosition = pressPosition
            result.dragDelta = result.isPressed ? .zero : input.mousePosition - previousMouse
            if (input.mousePosition - pressPosition).length >= scaled(3) { dragStarted = true }
            result.isDragging = dragStarted
            if input.wasReleased(.left) || !input.isDown(.left) {
                activeID = nil
                result.isClicked = isMouseOver(rect)
            }
        }
        if result.isHovered, input.wasPressed(.right) { result.isRightClicked = true }

        if focusID == id {
            focusSeen = true
            result.isFocused = true
            if focusMovedThisFrame {
                focusRectThisFrame = rect
                focusPanelID = panelStack.last?.id
            }
            if options.contains(.focusable), !options.contains(.customKeys),
               takeKey(.enter) || takeKey(.space) {
                result.isClicked = true
            }
        }
        lastItem = ItemInfo(id: id, rect: rect, isHovered: result.isHovered, isActive: result.isActive,
                            isFocused: result.isFocused)
        return result
    }

    /// Adds a widget to this frame's Tab order; behind an open dialog, widgets are left out.
    private func addFocusStop(_ id: WidgetID) {
        if layer == .modal { modalFocusOrder.append(id) }
        if layer == .modal || !previousModalOpen { focusOrder.append(id) }
    }

    /// Adds a widget to the Tab order without mouse handling (for composite widgets whose
    /// parts handle the mouse). Returns whether it has focus.
    func registerFocusStop(_ id: WidgetID, label: String, rect: Rect) -> Bool {
        register(id, label: label, rect: rect)
        addFocusStop(id)
        guard focusID == id else { return false }
        focusSeen = true
        if focusMovedThisFrame {
            focusRectThisFrame = rect
            focusPanelID = panelStack.last?.id
        }
        return true
    }

    // MARK: Keyboard

    /// Consumes the first unconsumed press of `key`. With `modifiers` nil any modifiers match.
    public func takeKey(_ key: Key, modifiers: KeyModifiers? = nil) -> Bool {
        for (i, press) in input.keys.enumerated() where !consumedKeys[i] && press.key == key {
            if let required = modifiers, press.modifiers != required { continue }
            consumedKeys[i] = true
            return true
        }
        return false
    }

    /// Whether an unconsumed press of `key` is waiting (without consuming it).
    public func hasKey(_ key: Key) -> Bool {
        input.keys.indices.contains { !consumedKeys[$0] && input.keys[$0].key == key }
    }

    /// A keyboard shortcut: true once when `key` is pressed with exactly `modifiers`.
    /// Plain keys are ignored while a text field is being edited, so typing never triggers them.
    public func shortcut(_ key: Key, modifiers: KeyModifiers = []) -> Bool {
        let plain = modifiers.isDisjoint(with: [.control, .alt, .gui])
        if plain, textEdit.isEditing, focusID == textEdit.id {
            switch key {
            case .function, .escape, .pageUp, .pageDown: break
            default: return false
            }
        }
        return takeKey(key, modifiers: modifiers)
    }

    /// Gives keyboard focus to the widget with this label in the current scope.
    public func setFocus(_ label: String) {
        focusID = id(label)
        isFocusVisible = true
    }

    public func isFocused(_ label: String) -> Bool { focusID == id(label) }

    private func moveFocus(by step: Int) {
        let order = previousFocusOrder
        guard !order.isEmpty else { return }
        if let current = focusID, let index = order.firstIndex(of: current) {
            focusID = order[(index + step + order.count) % order.count]
        } else {
            focusID = step > 0 ? order[0] : order[order.count - 1]
        }
        isFocusVisible = true
        focusMovedThisFrame = true
        openPopupID = nil
    }

    /// Asks the backend for a cursor shape this frame (the last request wins).
    public func setCursor(_ shape: MouseCursor) { cursor = shape }

    /// Draws the focus ring around `rect` when focus was reached with the keyboard.
    func drawFocusRing(_ rect: Rect, isFocused: Bool) {
        guard isFocused, isFocusVisible else { return }
        let w = scaled(theme.focusRingWidth)
        drawList.strokeRect(rect.insetBy(-w), color: theme.colors.focusRing, thickness: w,
                            cornerRadius: scaled(theme.cornerRadius) + w)
    }

    // MARK: Layers

    /// Draws `body` into a higher layer with the whole window as its clip, e.g. a popup.
    /// The layer gets its own layout area, so nothing drawn there moves the widgets below.
    public func withLayer<R>(_ layer: DrawLayer, _ body: () throws -> R) rethrows -> R {
        layerStack.append(self.layer)
        self.layer = layer
        let display = Rect(origin: .zero, size: input.displaySize)
        drawList.pushClip(ignoringParent: display)
        layoutStack.append(LayoutFrame(body: display, spacing: scaled(theme.spacing)))
        let item = lastItem
        defer {
            layoutStack.removeLast()
            drawList.popClip()
            self.layer = layerStack.removeLast()
            lastItem = item
        }
        return try body()
    }

    /// Gives focus to `id` from inside a frame (it counts as seen, so it is kept).
    func focus(_ id: WidgetID, visible: Bool) {
        focusID = id
        focusSeen = true
        isFocusVisible = visible
    }
}
