// The desktop host: a resizable, high-DPI SDL window and its run loop. The loop sleeps in
// SDL_WaitEvent(Timeout) while nothing changes, so an idle window uses no CPU; it runs
// frames only for input, for a time the UI asked for (tooltips, animation) or when another
// thread calls `wakeUp()` (e.g. the engine published new results).

import CSDL2

@MainActor
public final class SDLWindowHost {
    public struct Options: Sendable {
        public var title = "CNNSlicer"
        public var width = 1400
        public var height = 900
        public var theme = Theme.dark
        public var vsync = true
        /// Use SDL's software renderer even when a GPU renderer is available.
        public var softwareRenderer = false
        /// Directory holding the DejaVu fonts; nil searches with `FontLocator`.
        public var fontDirectory: String?
        public init() {}
    }

    public let ui: UIContext
    public let renderer: SDLRenderBackend
    /// The user's UI scale; the window's pixel density multiplies it.
    public var uiScale = UIScale()
    public private(set) var stats = FrameStats()
    public private(set) var pixelRatio: Float = 1

    private let window: OpaquePointer
    private let sdlRenderer: OpaquePointer
    private var input = InputState()
    private var translator = SDLEventTranslator()
    private var quitRequested = false
    private var pendingScreenshots: [(path: String, done: (Result<Void, Error>) -> Void)] = []
    private var cursors: [MouseCursor: OpaquePointer] = [:]
    private var currentCursor = MouseCursor.arrow
    private var textInputOn = true
    private let startCounter = SDL_GetPerformanceCounter()
    /// The window's place and size before full screen, restored when leaving it.
    private var windowedFrame: (x: Int32, y: Int32, w: Int32, h: Int32)?
    /// Until then, the loop checks the output size every few frames' time (see `isFullscreen`).
    private var settleUntil: Double = 0

    public init(options: Options = Options()) throws {
        _ = try SDLRuntime.startVideo(drivers: nil)
        // Clicking into an inactive window should also click the widget under the mouse.
        SDL_SetHint(SDL_HINT_MOUSE_FOCUS_CLICKTHROUGH, "1")
        SDL_SetHint(SDL_HINT_VIDEO_X11_NET_WM_BYPASS_COMPOSITOR, "0")
        let flags = SDL_WINDOW_RESIZABLE.rawValue | SDL_WINDOW_ALLOW_HIGHDPI.rawValue
        guard let window = SDL_CreateWindow(options.title, Int32(SDL_WINDOWPOS_CENTERED_MASK), Int32(SDL_WINDOWPOS_CENTERED_MASK),
                                            Int32(options.width), Int32(options.height), flags) else {
            throw SDLError("SDL_CreateWindow")
        }
        self.window = window
        var rendererFlags = options.softwareRenderer ? SDL_RENDERER_SOFTWARE.rawValue : SDL_RENDERER_ACCELERATED.rawValue
        if options.vsync { rendererFlags |= SDL_RENDERER_PRESENTVSYNC.rawValue }
        var created = SDL_CreateRenderer(window, -1, rendererFlags)
        if created == nil, !options.softwareRenderer {
            created = SDL_CreateRenderer(window, -1, SDL_RENDERER_SOFTWARE.rawValue)
        }
        guard let sdlRenderer = created else {
            SDL_DestroyWindow(window)
            throw SDLError("SDL_CreateRenderer")
        }
        self.sdlRenderer = sdlRenderer
        guard let fonts = options.fontDirectory ?? FontLocator.fontDirectory() else {
            throw SDLError("font lookup", message: "DejaVuSans.ttf and DejaVuSansMono.ttf not found in "
                           + FontLocator.candidateDirectories().joined(separator: ", "))
        }
        renderer = try SDLRenderBackend(renderer: sdlRenderer, fontDirectory: fonts)
        ui = UIContext(measurer: renderer.fontAtlas, theme: options.theme)
        ui.readClipboard = {
            guard SDL_HasClipboardText() == SDL_TRUE, let text = SDL_GetClipboardText() else { return nil }
            defer { SDL_free(text) }
            return String(cString: text)
        }
        ui.writeClipboard = { SDL_SetClipboardText($0) }
        updateGeometry()
    }

    /// Posts a wake-up event from any thread: the loop runs a frame soon after.
    /// (SDL_PushEvent is thread-safe.)
    public nonisolated static func wakeUp() {
        var event = SDL_Event()
        event.type = SDL_USEREVENT.rawValue
        event.user.code = wakeEventCode
        SDL_PushEvent(&event)
    }

    /// Asks the loop to end, from any thread (as closing the window does).
    public nonisolated static func postQuit() {
        var event = SDL_Event()
        event.type = SDL_QUIT.rawValue
        SDL_PushEvent(&event)
    }

    isolated deinit {
        for cursor in cursors.values { SDL_FreeCursor(cursor) }
        SDL_DestroyRenderer(sdlRenderer)
        SDL_DestroyWindow(window)
    }

    /// Ends `run` after the current frame.
    public func quit() { quitRequested = true }

    public var title: String {
        get { String(cString: SDL_GetWindowTitle(window)) }
        set { SDL_SetWindowTitle(window, newValue) }
    }

    public var isFullscreen: Bool {
        get { SDL_GetWindowFlags(window) & SDL_WINDOW_FULLSCREEN_DESKTOP.rawValue == SDL_WINDOW_FULLSCREEN_DESKTOP.rawValue }
        set {
            guard newValue != isFullscreen else { return }
            if newValue {
                var x: Int32 = 0, y: Int32 = 0, w: Int32 = 0, h: Int32 = 0
                SDL_GetWindowPosition(window, &x, &y)
                SDL_GetWindowSize(window, &w, &h)
                windowedFrame = (x, y, w, h)
                SDL_SetWindowFullscreen(window, SDL_WINDOW_FULLSCREEN_DESKTOP.rawValue)
            } else {
                SDL_SetWindowFullscreen(window, 0)
                // Leaving full screen, SDL (X11) may keep the desktop's size until something resizes the
                // window: put back the size and place it had, so F11 twice gives the same layout.
                if let f = windowedFrame {
                    SDL_SetWindowSize(window, f.w, f.h)
                    SDL_SetWindowPosition(window, f.x, f.y)
                }
            }
            // Window managers apply the change later: watch the output size for a while.
            settleUntil = now() + 1.5
            ui.requestFrame()
        }
    }

    /// Runs a frame when the renderer's output size no longer matches the last frame's
    /// (a change that arrived without an event, or after the event that announced it).
    private func geometryChanged() -> Bool {
        let (w, h) = renderer.outputSize
        return Vec2(Float(w), Float(h)) != input.displaySize
    }

    /// Saves the next rendered frame as PNG; `done` reports the outcome after that frame.
    public func requestScreenshot(to path: String, done: @escaping (Result<Void, Error>) -> Void = { _ in }) {
        pendingScreenshots.append((path, done))
        ui.requestFrame()
    }

    /// Runs frames until the window is closed or `quit()` is called. `frame` declares the UI.
    public func run(_ frame: (UIContext) -> Void) {
        var runNow = true          // the first frame
        var wakeAt: Double? = nil
        while !quitRequested {
            input.beginFrame()
            var event = SDL_Event()
            var sawEvent = false
            if !runNow {
                // Sleep until an event, or until the time the UI asked to be woken.
                let got: Int32
                if let wakeAt {
                    let ms = max(1, Int32(((wakeAt - now()) * 1000).rounded(.up)))
                    got = SDL_WaitEventTimeout(&event, ms)
                } else {
                    got = SDL_WaitEvent(&event)
                }
                if got != 0 { sawEvent = handle(&event) || sawEvent }
            }
            while SDL_PollEvent(&event) != 0 { sawEvent = handle(&event) || sawEvent }
            if quitRequested { break }
            let timerDue = wakeAt.map { now() >= $0 } ?? false
            let settling = now() < settleUntil
            let resized = settling && geometryChanged()
            guard runNow || sawEvent || timerDue || resized || !pendingScreenshots.isEmpty else {
                if settling { wakeAt = min(wakeAt ?? .infinity, now() + 0.05) }
                continue
            }

            let timing = runFrame(frame)
            stats.record(timing)
            if let wake = ui.wakeTime {
                runNow = wake <= input.time
                wakeAt = runNow ? nil : wake
            } else {
                runNow = false
                wakeAt = nil
            }
            if now() < settleUntil { wakeAt = min(wakeAt ?? .infinity, now() + 0.05) }
            // Glyphs dropped from a full atlas are redrawn after it is cleared.
            if renderer.fontAtlas.prepareFrame() { runNow = true }
        }
    }

    private func runFrame(_ frame: (UIContext) -> Void) -> FrameTiming {
        updateGeometry()
        input.time = now()
        input.scale = pixelRatio * uiScale.factor
        let t0 = now()
        ui.beginFrame(input)
        frame(ui)
        ui.endFrame()
        let t1 = now()
        let data = ui.drawData
        renderer.render(data)
        renderer.flush()
        let t2 = now()
        for request in pendingScreenshots {
            request.done(Result { try renderer.saveScreenshot(to: request.path) })
        }
        pendingScreenshots.removeAll()
        SDL_RenderPresent(sdlRenderer)
        let t3 = now()
        applyCursor(ui.cursor)
        if ui.wantsTextInput != textInputOn {
            textInputOn = ui.wantsTextInput
            if textInputOn { SDL_StartTextInput() } else { SDL_StopTextInput() }
        }
        return FrameTiming(build: t1 - t0, render: t2 - t1, present: t3 - t2,
                           batches: renderer.drawCallCount, triangles: data.triangleCount)
    }

    /// Returns whether the event should produce a frame.
    private func handle(_ event: inout SDL_Event) -> Bool {
        switch translator.apply(&event, to: &input) {
        case .quit:
            quitRequested = true
            return false
        case .none:
            return false
        case .input, .windowChanged, .wake:
            return true
        }
    }

    private func updateGeometry() {
        var windowW: Int32 = 0, windowH: Int32 = 0
        SDL_GetWindowSize(window, &windowW, &windowH)
        let (w, h) = renderer.outputSize
        pixelRatio = windowW > 0 ? max(1, Float(w) / Float(windowW)) : 1
        translator.pixelRatio = pixelRatio
        input.displaySize = Vec2(Float(w), Float(h))
    }

    private func applyCursor(_ shape: MouseCursor) {
        guard shape != currentCursor else { return }
        currentCursor = shape
        if cursors[shape] == nil {
            let system: SDL_SystemCursor
            switch shape {
            case .arrow: system = SDL_SYSTEM_CURSOR_ARROW
            case .text: system = SDL_SYSTEM_CURSOR_IBEAM
            case .hand: system = SDL_SYSTEM_CURSOR_HAND
            case .resizeHorizontal: system = SDL_SYSTEM_CURSOR_SIZEWE
            case .resizeVertical: system = SDL_SYSTEM_CURSOR_SIZENS
            case .crosshair: system = SDL_SYSTEM_CURSOR_CROSSHAIR
            }
            cursors[shape] = SDL_CreateSystemCursor(system)
        }
        if let cursor = cursors[shape] { SDL_SetCursor(cursor) }
    }

    private func now() -> Double {
        Double(SDL_GetPerformanceCounter() - startCounter) / Double(SDL_GetPerformanceFrequency())
    }
}
