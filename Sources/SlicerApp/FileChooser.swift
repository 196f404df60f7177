import Foundation
import SlicerUI

/// A simple built-in file chooser (no GTK): a modal list of the entries of
/// one directory, with a path field; choosing a file or pressing "Open here"
/// on a directory hands the path to the app (model, data folder or image).
struct FileChooserState {
    var isOpen = false
    var directory = FileManager.default.currentDirectoryPath
    var path = ""
    var entries: [String] = []
    var selection: Int?

    mutating func open(at directory: String) {
        isOpen = true
        self.directory = directory
        path = directory
        reload()
    }

    mutating func reload() {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        var isDir: ObjCBool = false
        let dirs = names.filter { fm.fileExists(atPath: directory + "/" + $0, isDirectory: &isDir) && isDir.boolValue }
        let files = names.filter { n in [".onnx", ".png", ".jpg", ".jpeg", ".gz", "-ubyte", ".bin"].contains { n.lowercased().hasSuffix($0) } }
        entries = [".."] + dirs.map { $0 + "/" } + files
        selection = nil
    }
}

extension AppView {
    /// Draws the chooser when open; returns a chosen path.
    func drawFileChooser(_ ui: UIContext) -> String? {
        guard chooser.isOpen else { return nil }
        var chosen: String?
        let display = ui.displayRect
        let box = Rect(x: display.width * 0.25, y: display.height * 0.15, width: display.width * 0.5, height: display.height * 0.7)
        ui.withLayer(.modal) {
            ui.drawList.fillRect(display, color: ui.theme.colors.modalVeil)
            ui.panel("file-chooser", rect: box) {
                ui.label("Open a model (.onnx), a data folder or file, or an image", style: .heading)
                ui.row(.fraction(1), .points(80))
                _ = ui.textField("path", text: &chooser.path)
                if ui.button("Go") {
                    var isDir: ObjCBool = false
                    if FileManager.default.fileExists(atPath: chooser.path, isDirectory: &isDir) {
                        if isDir.boolValue { chooser.directory = chooser.path; chooser.reload() } else { chosen = chooser.path }
                    } else {
                        model.messages.append("\(chooser.path): no such file or directory")
                    }
                }
                var selection = chooser.selection
                if ui.list("entries", items: chooser.entries, selection: &selection, visibleRows: 14), let i = selection {
                    let name = chooser.entries[i]
                    if name == ".." {
                        chooser.directory = (chooser.directory as NSString).deletingLastPathComponent
                        chooser.path = chooser.directory
                        chooser.reload()
                    } else if name.hasSuffix("/") {
                        chooser.directory += (chooser.directory.hasSuffix("/") ? "" : "/") + String(name.dropLast())
                        chooser.path = chooser.directory
                        chooser.reload()
                    } else {
                        chooser.selection = i
                        chooser.path = chooser.directory + "/" + name
                    }
                }
                ui.row(.fraction(1), .fraction(1), .fraction(1))
                if ui.button("Open file") { chosen = chooser.path }
                if ui.button("Open this folder as data") { chosen = chooser.directory }
                if ui.button("Cancel") { chooser.isOpen = false }
            }
        }
        if chosen != nil { chooser.isOpen = false }
        return chosen
    }

    /// Crops a saved window screenshot to one view's rectangle (atomic rewrite).
    public static func cropScreenshot(at path: String, to rect: Rect) throws {
        let image = try PNGFile.read(path)
        let x0 = max(0, Int(rect.x)), y0 = max(0, Int(rect.y))
        let x1 = min(image.width, Int(rect.maxX)), y1 = min(image.height, Int(rect.maxY))
        guard x1 > x0, y1 > y0 else { return }
        var pixels = [UInt8]()
        pixels.reserveCapacity((x1 - x0) * (y1 - y0) * 4)
        for y in y0..<y1 { pixels += image.pixels[((y * image.width + x0) * 4)..<((y * image.width + x1) * 4)] }
        try PNGFile.write(RGBAImage(width: x1 - x0, height: y1 - y0, pixels: pixels), to: path)
    }
}
