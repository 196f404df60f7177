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
