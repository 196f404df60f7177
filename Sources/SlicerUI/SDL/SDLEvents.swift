// Translation of SDL events into InputState, and the reverse for injecting test input
// through SDL's own event queue (so tests exercise the real translation).

import CSDL2

/// An input event in backend-neutral terms, for tests and scripted demos.
public enum HostEvent: Sendable, Hashable {
    case mouseMove(Vec2)
    case mouseDown(MouseButtons, clicks: Int = 1)
    case mouseUp(MouseButtons)
    /// Positive y scrolls content towards its start (wheel away from the user).
    case wheel(Vec2)
    case key(Key, modifiers: KeyModifiers = [])
    /// A key released; `modifiers` are those still held afterwards.
    case keyUp(Key, modifiers: KeyModifiers = [])
    case text(String)
    case dropFile(String)
}

/// What an SDL event meant for the run loop.
enum EventEffect {
    case none, input, quit, windowChanged, wake
}

/// The user-event code `SDLWindowHost.wakeUp()` posts.
let wakeEventCode: Int32 = 0x534C_4349   // "SLCI"

struct SDLEventTranslator {
    /// Output pixels per window coordinate (2 on a high-density display).
    var pixelRatio: Float = 1

    static let namedKeys: [Int32: Key] = {
        var table: [Int32: Key] = [
            Int32(SDLK_TAB.rawValue): .tab, Int32(SDLK_RETURN.rawValue): .enter, Int32(SDLK_KP_ENTER.rawValue): .enter,
            Int32(SDLK_ESCAPE.rawValue): .escape, Int32(SDLK_SPACE.rawValue): .space,
            Int32(SDLK_BACKSPACE.rawValue): .backspace, Int32(SDLK_DELETE.rawValue): .delete,
            Int32(SDLK_LEFT.rawValue): .left, Int32(SDLK_RIGHT.rawValue): .right,
            Int32(SDLK_UP.rawValue): .up, Int32(SDLK_DOWN.rawValue): .down,
            Int32(SDLK_HOME.rawValue): .home, Int32(SDLK_END.rawValue): .end,
            Int32(SDLK_PAGEUP.rawValue): .pageUp, Int32(SDLK_PAGEDOWN.rawValue): .pageDown,
            Int32(SDLK_KP_PLUS.rawValue): .character("+"), Int32(SDLK_KP_MINUS.rawValue): .character("-"),
        ]
        let functionKeys: [SDL_KeyCode] = [SDLK_F1, SDLK_F2, SDLK_F3, SDLK_F4, SDLK_F5, SDLK_F6, SDLK_F7, SDLK_F8,
                                           SDLK_F9, SDLK_F10, SDLK_F11, SDLK_F12]
        for (i, code) in functionKeys.enumerated() { table[Int32(code.rawValue)] = .function(i + 1) }
        let keypadDigits: [SDL_KeyCode] = [SDLK_KP_0, SDLK_KP_1, SDLK_KP_2, SDLK_KP_3, SDLK_KP_4, SDLK_KP_5, SDLK_KP_6,
                                           SDLK_KP_7, SDLK_KP_8, SDLK_KP_9]
        for (i, code) in keypadDigits.enumerated() { table[Int32(code.rawValue)] = .character(Character(String(i))) }
        return table
    }()

    static func key(for code: Int32) -> Key? {
        if let named = namedKeys[code] { return named }
        // Printable ASCII key codes are the characters themselves (letters in lower case).
        if code > 32, code < 127, let scalar = Unicode.Scalar(UInt32(code)) { return .character(Character(scalar)) }
        return nil
    }

    static func keyCode(for key: Key) -> Int32? {
        if case .character(let c) = key, let ascii = c.asciiValue, ascii > 32, ascii < 127 { return Int32(ascii) }
        if case .enter = key { return Int32(SDLK_RETURN.rawValue) }
        return namedKeys.first { $0.value == key }?.key
    }

    static func modifiers(from mod: UInt16) -> KeyModifiers {
        let m = UInt32(mod)
        var result: KeyModifiers = []
        if m & KMOD_SHIFT.rawValue != 0 { result.insert(.shift) }
        if m & KMOD_CTRL.rawValue != 0 { result.insert(.control) }
        if m & KMOD_ALT.rawValue != 0 { result.insert(.alt) }
        if m & KMOD_GUI.rawValue != 0 { result.insert(.gui) }
        return result
    }

    static func rawModifiers(_ modifiers: KeyModifiers) -> UInt16 {
        var m: UInt32 = 0
        if modifiers.contains(.shift) { m |= KMOD_LSHIFT.rawValue }
        if modifiers.contains(.control) { m |= KMOD_LCTRL.rawValue }
        if modifiers.contains(.alt) { m |= KMOD_LALT.rawValue }
        if modifiers.contains(.gui) { m |= KMOD_LGUI.rawValue }
        return UInt16(m)
    }

    static func buttons(_ sdlButton: UInt8) -> MouseButtons {
        switch Int32(sdlButton) {
        case SDL_BUTTON_LEFT: return .left
        case SDL_BUTTON_RIGHT: return .right
        case SDL_BUTTON_MIDDLE: return .middle
        default: return []
        }
    }

    /// Applies one event. Text and dropped-file strings owned by SDL are freed here.
    func apply(_ event: inout SDL_Event, to input: inout InputState) -> EventEffect {
        switch SDL_EventType(rawValue: event.type) {
        case SDL_QUIT:
            return .quit
        case SDL_MOUSEMOTION:
            input.mousePosition = Vec2(Float(event.motion.x) * pixelRatio, Float(event.motion.y) * pixelRatio)
            input.mouseInWindow = true
            return .input
        case SDL_MOUSEBUTTONDOWN:
            input.mousePosition = Vec2(Float(event.button.x) * pixelRatio, Float(event.button.y) * pixelRatio)
            let button = SDLEventTranslator.buttons(event.button.button)
            if !button.isEmpty { input.press(button, clicks: Int(event.button.clicks)) }
            return .input
        case SDL_MOUSEBUTTONUP:
            input.mousePosition = Vec2(Float(event.button.x) * pixelRatio, Float(event.button.y) * pixelRatio)
            let button = SDLEventTranslator.buttons(event.button.button)
            if !button.isEmpty { input.release(button) }
            return .input
        case SDL_MOUSEWHEEL:
            let flip: Float = event.wheel.direction == SDL_MOUSEWHEEL_FLIPPED.rawValue ? -1 : 1
            // SDL's x is positive to the right; ours is positive towards the start, like y.
            input.wheel += Vec2(-event.wheel.preciseX * flip, event.wheel.preciseY * flip)
            return .input
        case SDL_KEYDOWN:
            input.modifiers = SDLEventTranslator.modifiers(from: event.key.keysym.mod)
            if let key = SDLEventTranslator.key(for: event.key.keysym.sym) {
                input.press(key, modifiers: input.modifiers, isRepeat: event.key.repeat != 0)
            }
            return .input
        case SDL_KEYUP:
            input.modifiers = SDLEventTranslator.modifiers(from: event.key.keysym.mod)
            return .input
        case SDL_TEXTINPUT:
            let text = withUnsafeBytes(of: &event.text.text) { raw -> String in
                let bytes = raw.prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            input.text += text
            return .input
        case SDL_DROPFILE:
            if let file = event.drop.file {
                input.droppedFiles.append(String(cString: file))
                SDL_free(file)
            }
            return .input
        case SDL_DROPTEXT:
            if let text = event.drop.file { SDL_free(text) }
            return .none
        case SDL_WINDOWEVENT:
            switch SDL_WindowEventID(rawValue: UInt32(event.window.event)) {
            case SDL_WINDOWEVENT_LEAVE:
                input.mouseInWindow = false
                return .input
            case SDL_WINDOWEVENT_ENTER:
                input.mouseInWindow = true
                return .input
            case SDL_WINDOWEVENT_FOCUS_LOST:
                // Button releases outside the window are never seen: drop held state so
                // nothing stays "pressed" after switching windows.
                input.buttonsDown = []
                input.modifiers = []
                return .input
            default:
                return .windowChanged
            }
        case SDL_USEREVENT:
            return event.user.code == wakeEventCode ? .wake : .none
        default:
            return .none
        }
    }

    /// Builds the SDL event for a `HostEvent`, in window coordinates. Button events happen
    /// at `pointer`, the last position the mouse was moved to.
    func sdlEvent(for hostEvent: HostEvent, modifiers: KeyModifiers, pointer: Vec2) -> SDL_Event? {
        var event = SDL_Event()
        let ticks = SDL_GetTicks()
        func windowPoint(_ p: Vec2) -> (Int32, Int32) { (Int32((p.x / pixelRatio).rounded(.down)), Int32((p.y / pixelRatio).rounded(.down))) }
        func sdlButton(_ b: MouseButtons) -> UInt8 {
            b.contains(.right) ? UInt8(SDL_BUTTON_RIGHT) : b.contains(.middle) ? UInt8(SDL_BUTTON_MIDDLE) : UInt8(SDL_BUTTON_LEFT)
        }
        switch hostEvent {
        case .mouseMove(let p):
            event.type = SDL_MOUSEMOTION.rawValue
            (event.motion.x, event.motion.y) = windowPoint(p)
            event.motion.timestamp = ticks
        case .mouseDown(let b, let clicks):
            event.type = SDL_MOUSEBUTTONDOWN.rawValue
            event.button.button = sdlButton(b)
            event.button.state = UInt8(SDL_PRESSED)
            event.button.clicks = UInt8(max(1, min(255, clicks)))
            event.button.timestamp = ticks
            (event.button.x, event.button.y) = windowPoint(pointer)
        case .mouseUp(let b):
            event.type = SDL_MOUSEBUTTONUP.rawValue
            event.button.button = sdlButton(b)
            event.button.state = UInt8(SDL_RELEASED)
            event.button.clicks = 1
            event.button.timestamp = ticks
            (event.button.x, event.button.y) = windowPoint(pointer)
        case .wheel(let w):
            event.type = SDL_MOUSEWHEEL.rawValue
            event.wheel.preciseX = -w.x
            event.wheel.preciseY = w.y
            event.wheel.x = Int32(-w.x)
            event.wheel.y = Int32(w.y)
            event.wheel.direction = SDL_MOUSEWHEEL_NORMAL.rawValue
            event.wheel.timestamp = ticks
        case .key(let key, let extra):
            guard let code = SDLEventTranslator.keyCode(for: key) else { return nil }
            event.type = SDL_KEYDOWN.rawValue
            event.key.keysym.sym = code
            event.key.keysym.mod = SDLEventTranslator.rawModifiers(modifiers.union(extra))
            event.key.state = UInt8(SDL_PRESSED)
            event.key.timestamp = ticks
        case .keyUp(let key, let held):
            guard let code = SDLEventTranslator.keyCode(for: key) else { return nil }
            event.type = SDL_KEYUP.rawValue
            event.key.keysym.sym = code
            event.key.keysym.mod = SDLEventTranslator.rawModifiers(held)
            event.key.state = UInt8(SDL_RELEASED)
            event.key.timestamp = ticks
        case .text(let text):
            event.type = SDL_TEXTINPUT.rawValue
            event.text.timestamp = ticks
            let bytes = Array(text.utf8.prefix(31))   // SDL's text field holds 32 bytes with the terminator
            withUnsafeMutableBytes(of: &event.text.text) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
                raw[bytes.count] = 0
            }
        case .dropFile(let path):
            event.type = SDL_DROPFILE.rawValue
            event.drop.file = SDL_strdup(path)
            event.drop.timestamp = ticks
        }
        return event
    }
}
