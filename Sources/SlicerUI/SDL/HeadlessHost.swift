// A host without a display, for tests, screenshots and benchmarks: SDL's "offscreen"
// video driver (or "dummy") with the software renderer, input injected either directly into
// InputState or as SDL events through the real translation, pixels read back.

import CSDL2

@MainActor
public final class HeadlessHost {
    public let ui: UIContext
    public let renderer: SDLRenderBackend
    /// The SDL video driver in use ("offscreen" or "dummy").
    public let videoDriver: String
    /// Input for the next frame. Tests may edit it directly; `post(_:)` goes through SDL.
    public var input: InputState
    /// Simulated seconds per frame (time drives tooltips and animation).
    public var frameInterval = 1.0 / 60
    /// UI scale applied on top of a pixel ratio of 1.
    public var scale: Float {
        didSet { input.scale = scale }
    }

    private let window: OpaquePointer
    private let sdlRenderer: OpaquePointer
    private var translator = SDLEventTranslator()
    private var pointer = Vec2(-1, -1)

    public init(width: Int = 800, height: Int = 600, scale: Float = 1, theme: Theme = .dark,
                fontDirectory: String? = nil) throws {
        videoDriver = try SDLRuntime.startVideo(drivers: ["offscreen", "dummy"])
        guard let window = SDL_CreateWindow("CNNSlicer (headless)", 0, 0, Int32(width), Int32(height), 0) else {
            throw SDLError("SDL_CreateWindow(headless)")
        }
        guard let sdlRenderer = SDL_CreateRenderer(window, -1, SDL_RENDERER_SOFTWARE.rawValue) else {
            SDL_DestroyWindow(window)
            throw SDLError("SDL_CreateRenderer(software)")
        }
        self.window = window
        self.sdlRenderer = sdlRenderer
        guard let fonts = fontDirectory ?? FontLocator.fontDirectory() else {
            throw SDLError("font lookup", message: "DejaVuSans.ttf and DejaVuSansMono.ttf not found in "
                           + FontLocator.candidateDirectories().joined(separator: ", "))
        }
        renderer = try SDLRenderBackend(renderer: sdlRenderer, fontDirectory: fonts)
        ui = UIContext(measurer: renderer.fontAtlas, theme: theme)
        self.scale = scale
        input = InputState(displaySize: Vec2(Float(width), Float(height)), scale: scale)
        drainEvents()   // window-creation events must not leak into the first frame
    }

    isolated deinit {
        SDL_DestroyRenderer(sdlRenderer)
        SDL_DestroyWindow(window)
    }

    /// Changes the output size (the software renderer follows the window surface).
    public func resize(width: Int, height: Int) {
        SDL_SetWindowSize(window, Int32(width), Int32(height))
        drainEvents()
        let (w, h) = renderer.outputSize
        input.displaySize = Vec2(Float(w), Float(h))
    }

    /// Runs one frame: applies posted SDL events, builds the UI with `build`, renders it.
    /// Per-frame input (presses, keys, text) is consumed by the frame.
    @discardableResult
    public func frame(_ build: (UIContext) -> Void) -> DrawData {
        let data = buildFrame(build)
        renderer.render(data)
        // Rendered now, as the window host does before presenting. SDL queues drawing until a
        // flush, and with no present here the queue grew over many frames until a texture
        // that was drawn got freed or updated: that frame then drew all the earlier ones (the
        // "seconds to free a page of textures" that frame statistics showed was this).
        renderer.flush()
        return data
    }

    /// Builds a frame without rendering it (for timing the two separately).
    public func buildFrame(_ build: (UIContext) -> Void) -> DrawData {
        var event = SDL_Event()
        SDL_PumpEvents()
        while SDL_PollEvent(&event) != 0 { _ = translator.apply(&event, to: &input) }
        input.time += frameInterval
        input.scale = scale
        renderer.fontAtlas.prepareFrame()
        ui.beginFrame(input)
        build(ui)
        ui.endFrame()
        input.beginFrame()
        return ui.drawData
    }

    /// Queues events in SDL's event queue; the next `frame` translates them.
    public func post(_ events: HostEvent...) { post(events) }

    public func post(_ events: [HostEvent]) {
        for hostEvent in events.flatMap(HeadlessHost.splittingText) {
            if case .mouseMove(let p) = hostEvent { pointer = p }
            guard var event = translator.sdlEvent(for: hostEvent, modifiers: input.modifiers, pointer: pointer) else { continue }
            SDL_PushEvent(&event)
        }
    }

    /// SDL's text event holds 31 bytes: longer text arrives as several events, as typing
    /// or an input method delivers it. Splits between characters.
    static func splittingText(_ event: HostEvent) -> [HostEvent] {
        guard case .text(let text) = event, text.utf8.count > 31 else { return [event] }
        var parts: [HostEvent] = []
        var current = ""
        for character in text {
            if current.utf8.count + String(character).utf8.count > 31 {
                parts.append(.text(current))
                current = ""
            }
            current.append(character)
        }
        if !current.isEmpty { parts.append(.text(current)) }
        return parts
    }

    // MARK: Scripted input (one frame per step)

    /// Moves the mouse and runs a frame (which settles hover).
    public func moveMouse(to point: Vec2, _ build: (UIContext) -> Void) {
        post(.mouseMove(point))
        frame(build)
    }

    /// Moves, presses and releases over `point` in three frames, like a real click.
    public func click(at point: Vec2, button: MouseButtons = .left, _ build: (UIContext) -> Void) {
        moveMouse(to: point, build)
        post(.mouseDown(button))
        frame(build)
        post(.mouseUp(button))
        frame(build)
    }

    /// Presses at `start`, moves to `end` in `steps` frames and releases there.
    public func drag(from start: Vec2, to end: Vec2, steps: Int = 4, _ build: (UIContext) -> Void) {
        moveMouse(to: start, build)
        post(.mouseDown(.left))
        frame(build)
        let n = max(1, steps)
        for step in 1...n {
            let t = Float(step) / Float(n)
            post(.mouseMove(start + (end - start) * t))
            frame(build)
        }
        post(.mouseUp(.left))
        frame(build)
    }

    /// Presses `key` with `modifiers` held for one frame; the key and the modifiers are
    /// released before the next frame, as fingers leave the keyboard.
    public func press(_ key: Key, modifiers: KeyModifiers = [], _ build: (UIContext) -> Void) {
        let held = input.modifiers
        post(.key(key, modifiers: modifiers))
        frame(build)
        post(.keyUp(key, modifiers: held))
        // Apply the release now, so the next step starts from the modifiers held before.
        var event = SDL_Event()
        SDL_PumpEvents()
        while SDL_PollEvent(&event) != 0 { _ = translator.apply(&event, to: &input) }
    }

    public func type(_ text: String, _ build: (UIContext) -> Void) {
        post(.text(text))
        frame(build)
    }

    public func scroll(by wheel: Vec2, at point: Vec2, _ build: (UIContext) -> Void) {
        post(.mouseMove(point), .wheel(wheel))
        frame(build)
    }

    // MARK: Pixels

    /// The last rendered frame.
    public func capture() throws -> RGBAImage { try renderer.readPixels() }

    /// Writes the last rendered frame as PNG (atomically).
    public func saveScreenshot(to path: String) throws { try renderer.saveScreenshot(to: path) }

    private func drainEvents() {
        var event = SDL_Event()
        SDL_PumpEvents()
        while SDL_PollEvent(&event) != 0 {
            if event.type == SDL_DROPFILE.rawValue || event.type == SDL_DROPTEXT.rawValue, let file = event.drop.file { SDL_free(file) }
        }
    }
}
