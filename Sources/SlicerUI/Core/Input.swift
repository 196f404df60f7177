// The input a frame is built from. The backend (or a test) fills it; the context only reads it.
// Persistent fields (mouse position, buttons held, time, display) survive between frames;
// per-frame fields (presses, releases, wheel, keys, text, drops) are cleared by `beginFrame()`.

/// Mouse buttons as a set, so "pressed this frame" and "held" are cheap to test.
public struct MouseButtons: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let left = MouseButtons(rawValue: 1 << 0)
    public static let right = MouseButtons(rawValue: 1 << 1)
    public static let middle = MouseButtons(rawValue: 1 << 2)
}

/// Modifier keys held with a key press.
public struct KeyModifiers: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let shift = KeyModifiers(rawValue: 1 << 0)
    public static let control = KeyModifiers(rawValue: 1 << 1)
    public static let alt = KeyModifiers(rawValue: 1 << 2)
    /// The "super"/Windows/Command key.
    public static let gui = KeyModifiers(rawValue: 1 << 3)
}

/// A key, independent of the backend's key codes. Letters are lower-case characters;
/// keypad + and − arrive as the characters "+" and "-".
public enum Key: Hashable, Sendable {
    case tab, enter, escape, space, backspace, delete
    case left, right, up, down, home, end, pageUp, pageDown
    /// F1…F24.
    case function(Int)
    case character(Character)
}

/// One key press (or auto-repeat) with the modifiers held at that moment.
public struct KeyPress: Hashable, Sendable {
    public var key: Key
    public var modifiers: KeyModifiers
    public var isRepeat: Bool

    public init(_ key: Key, modifiers: KeyModifiers = [], isRepeat: Bool = false) {
        self.key = key; self.modifiers = modifiers; self.isRepeat = isRepeat
    }
}

/// Everything a frame needs to know about the outside world.
public struct InputState: Sendable {
    /// Mouse position in output pixels. Far outside the window until the mouse is seen,
    /// so nothing is hovered at start-up.
    public var mousePosition = Vec2(-100_000, -100_000)
    public var buttonsDown: MouseButtons = []
    /// Buttons that went down during this frame (even if already released again).
    public var buttonsPressed: MouseButtons = []
    /// Buttons that went up during this frame.
    public var buttonsReleased: MouseButtons = []
    /// 2 for the second press of a double click (as reported by the backend).
    public var clickCount = 0
    /// Wheel movement this frame; positive y scrolls content up (wheel away from the user).
    public var wheel = Vec2.zero
    /// Key presses this frame, in order.
    public var keys: [KeyPress] = []
    /// Modifiers currently held.
    public var modifiers: KeyModifiers = []
    /// Text typed this frame (already composed by the platform's input method).
    public var text = ""
    /// Paths of files dropped onto the window this frame.
    public var droppedFiles: [String] = []
    /// Seconds since an arbitrary start; drives tooltips and animations.
    public var time: Double = 0
    /// Output size in pixels.
    public var displaySize = Vec2(800, 600)
    /// Pixels per layout point: display density times the user's UI scale.
    public var scale: Float = 1
    /// Set when the window lost focus or the pointer left it, so hover state can be dropped.
    public var mouseInWindow = true

    public init() {}
    public init(displaySize: Vec2, scale: Float = 1, time: Double = 0) {
        self.displaySize = displaySize; self.scale = scale; self.time = time
    }

    /// Clears the per-frame fields; call before collecting the next frame's events.
    public mutating func beginFrame() {
        buttonsPressed = []
        buttonsReleased = []
        clickCount = 0
        wheel = .zero
        keys.removeAll(keepingCapacity: true)
        text = ""
        droppedFiles.removeAll(keepingCapacity: true)
    }

    // Mutators used by the backend's event translation and by tests.

    public mutating func press(_ button: MouseButtons, clicks: Int = 1) {
        buttonsDown.insert(button)
        buttonsPressed.insert(button)
        clickCount = max(clickCount, clicks)
    }
    public mutating func release(_ button: MouseButtons) {
        buttonsDown.remove(button)
        buttonsReleased.insert(button)
    }
    public mutating func press(_ key: Key, modifiers: KeyModifiers = [], isRepeat: Bool = false) {
        keys.append(KeyPress(key, modifiers: modifiers, isRepeat: isRepeat))
    }

    public func isDown(_ button: MouseButtons) -> Bool { buttonsDown.contains(button) }
    public func wasPressed(_ button: MouseButtons) -> Bool { buttonsPressed.contains(button) }
    public func wasReleased(_ button: MouseButtons) -> Bool { buttonsReleased.contains(button) }
}
