// Process-wide SDL set-up: video, SDL_ttf and SDL_image are initialised once, on the
// main thread, and stay up for the life of the process.

import CSDL2

/// An SDL failure, with SDL's own message.
public struct SDLError: Error, CustomStringConvertible {
    public var operation: String
    public var message: String

    public init(_ operation: String, message: String? = nil) {
        self.operation = operation
        self.message = message ?? String(cString: SDL_GetError())
    }

    public var description: String { "\(operation) failed: \(message)" }
}

@MainActor
enum SDLRuntime {
    private static var videoDriver: String?
    private static var librariesReady = false

    /// Starts SDL video with the first driver that works. `drivers` nil means SDL's default
    /// (the desktop); the headless host asks for "offscreen", then "dummy".
    static func startVideo(drivers: [String]?) throws -> String {
        if let videoDriver { return videoDriver }
        let attempts: [String?] = drivers ?? [nil]
        var lastError = "no video driver tried"
        for driver in attempts {
            if let driver { SDL_SetHint(SDL_HINT_VIDEODRIVER, driver) }
            if SDL_InitSubSystem(UInt32(SDL_INIT_VIDEO) | UInt32(SDL_INIT_EVENTS)) == 0 {
                let name = SDL_GetCurrentVideoDriver().map { String(cString: $0) } ?? driver ?? "default"
                videoDriver = name
                try startLibraries()
                return name
            }
            lastError = String(cString: SDL_GetError())
        }
        throw SDLError("SDL_InitSubSystem(video)", message: lastError)
    }

    static func startLibraries() throws {
        if librariesReady { return }
        if TTF_WasInit() == 0, TTF_Init() != 0 { throw SDLError("TTF_Init") }
        let png = Int32(IMG_INIT_PNG.rawValue)
        if IMG_Init(png) & png == 0 { throw SDLError("IMG_Init(PNG)") }
        librariesReady = true
    }
}
