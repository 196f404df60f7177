// Drives a UIContext without SDL: a fixed-width fake measurer and hand-made InputState.

import XCTest
@testable import SlicerUI

@MainActor
final class Harness {
    let ui: UIContext
    var input: InputState

    init(width: Float = 800, height: Float = 600, scale: Float = 1, theme: Theme = .dark) {
        ui = UIContext(measurer: FixedWidthTextMeasurer(), theme: theme)
        input = InputState(displaySize: Vec2(width, height), scale: scale)
    }

    /// One frame; per-frame input is cleared afterwards, as a backend would.
    @discardableResult
    func frame(_ build: (UIContext) -> Void) -> DrawData {
        input.time += 1.0 / 60
        ui.beginFrame(input)
        build(ui)
        ui.endFrame()
        input.beginFrame()
        return ui.drawData
    }

    func move(to p: Vec2, _ build: (UIContext) -> Void) {
        input.mousePosition = p
        frame(build)
    }

    /// Move, press, release: three frames, like the headless host.
    func click(at p: Vec2, _ build: (UIContext) -> Void) {
        move(to: p, build)
        input.press(.left)
        frame(build)
        input.release(.left)
        frame(build)
    }

    func drag(from a: Vec2, to b: Vec2, steps: Int = 4, _ build: (UIContext) -> Void) {
        move(to: a, build)
        input.press(.left)
        frame(build)
        for s in 1...steps {
            input.mousePosition = a + (b - a) * (Float(s) / Float(steps))
            frame(build)
        }
        input.release(.left)
        frame(build)
    }

    func press(_ key: Key, modifiers: KeyModifiers = [], _ build: (UIContext) -> Void) {
        input.press(key, modifiers: modifiers)
        frame(build)
    }
}

/// The repository root, from this file's location (tests run from a fresh clone).
func repositoryRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}
