import Foundation
import SlicerUI
@testable import SlicerApp

/// Runs frames until the analysis, the shown image and any brushed set's analysis are in
/// (three calm frames in a row), or until `timeout` seconds have passed.
@MainActor
func runUntilSettled(_ host: HeadlessHost, _ model: AppModel, timeout: Double = 30, _ frame: (UIContext) -> Void) {
    let deadline = Date().addingTimeInterval(timeout)
    var calm = 0
    while Date() < deadline && calm < 3 {
        host.frame(frame)
        let done = model.snapshot?.isComplete ?? false
        let subset = model.selection.brushedImages.isEmpty || (model.subsetProgress.map { $0.imagesDone >= $0.imagesTotal } ?? false)
        calm = done && model.featureMaps != nil && subset ? calm + 1 : 0
        Thread.sleep(forTimeInterval: 0.01)
    }
}

/// The app headless on a workspace built by a test: its host, model and view. The
/// scale tests subclass it with their own workspace and what they look at.
@MainActor
class HeadlessApp {
    let host: HeadlessHost
    let model: AppModel
    let view: AppView

    init(workspace: Workspace, width: Int, height: Int) throws {
        setenv("SDL_VIDEODRIVER", "offscreen", 1)
        setenv("CNNSLICER_NO_CACHE", "1", 1)
        host = try HeadlessHost(width: width, height: height)
        model = AppModel(workspace: workspace, threads: 2, carCache: nil)
        view = AppView(model: model, textures: host.renderer)
    }

    func frame(_ ui: UIContext) { view.frame(ui) }
    func frame() { host.frame(frame) }
}

/// The sizes, UI scales, type sizes and themes the app is presented at: what the layout
/// tests render every state in.
struct Presentation {
    var width: Int
    var height: Int
    var scale: Float
    var theme: Int
    var largeType: Bool

    static let all = [
        Presentation(width: 1024, height: 700, scale: 1, theme: 0, largeType: false),
        Presentation(width: 1600, height: 1000, scale: 1, theme: 0, largeType: true),
        Presentation(width: 1600, height: 1000, scale: 1, theme: 1, largeType: false),
        Presentation(width: 1600, height: 1000, scale: 1.25, theme: 2, largeType: false),
        Presentation(width: 1024, height: 700, scale: 1, theme: 1, largeType: true),
        Presentation(width: 1600, height: 1000, scale: 1.5, theme: 0, largeType: false),
    ]

    var name: String { "\(width)×\(height) scale \(scale) \(Theme.all[theme].name)\(largeType ? " large type" : "")" }

    @MainActor func apply(to host: HeadlessHost, _ view: AppView) {
        host.resize(width: width, height: height)
        host.scale = scale
        view.largeType = largeType
        view.setTheme(theme, host.ui)
    }
}
