import Foundation
import SlicerUI

/// A simple built-in file chooser (no GTK): a modal list of the entries of one directory
/// and a path field. Typing a path and pressing Return goes there (a folder) or opens it (a
/// file); Ctrl+A selects the field; the folder it showed last is remembered across sessions.
struct FileChooserState {
    /// What the chosen path is for.
    enum Purpose: Equatable {
        /// A model, a data set or an image: whatever the path turns out to be.
        case anything
        /// The data to open together with this model (after a model did not fit the data).
        case data(forModel: String)
    }

    var isOpen = false
    var purpose = Purpose.anything
    var directory = FileManager.default.currentDirectoryPath
    var path = ""
    var entries: [String] = []
    var selection: Int?
    /// A problem with the typed path, shown in the chooser (not as a second modal).
    var problem: String?
    /// Focus the path field (all selected) when the chooser next draws.
    var focusPath = false

    mutating func open(at directory: String, purpose: Purpose = .anything) {
        isOpen = true
        self.purpose = purpose
        problem = nil
        focusPath = true
        var isDirectory: ObjCBool = false
        let usable = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && isDirectory.boolValue
        navigate(to: usable ? directory : FileManager.default.currentDirectoryPath)
    }

    /// Shows a folder's entries; the path field shows the folder, ready for a name to be typed.
    mutating func navigate(to folder: String) {
        directory = FileChooserState.standardized(folder)
        path = directory.hasSuffix("/") ? directory : directory + "/"
        problem = nil
        reload()
    }

    mutating func reload() {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        var isDir: ObjCBool = false
        let dirs = names.filter { fm.fileExists(atPath: directory + "/" + $0, isDirectory: &isDir) && isDir.boolValue }
        let files = names.filter { n in [".onnx", ".png", ".jpg", ".jpeg", ".gz", "-ubyte", ".bin"].contains { n.lowercased().hasSuffix($0) } }
        entries = (directory == "/" ? [] : [".."]) + dirs.map { $0 + "/" } + files
        selection = nil
    }

    /// `~` expanded, relative paths taken from the shown folder, "." and ".." resolved.
    func resolve(_ typed: String) -> String {
        let trimmed = typed.trimmingCharacters(in: .whitespaces)
        let expanded = (trimmed as NSString).expandingTildeInPath
        let absolute = expanded.hasPrefix("/") ? expanded : (directory as NSString).appendingPathComponent(expanded)
        return FileChooserState.standardized(absolute)
    }

    static func standardized(_ path: String) -> String {
        let clean = (path as NSString).standardizingPath
        return clean.isEmpty ? "/" : clean
    }

    /// What Return (or "Open") does with a path: go into a folder, or choose a file.
    enum Action: Equatable { case navigate(String), choose(String), missing(String) }

    func action(for typed: String) -> Action {
        let resolved = resolve(typed)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) else { return .missing(resolved) }
        return isDirectory.boolValue ? .navigate(resolved) : .choose(resolved)
    }
}

extension AppView {
    /// Opens the chooser at the last folder used (this session or an earlier one).
    func openFileChooser(purpose: FileChooserState.Purpose = .anything) {
        let start = preferences.lastFolder ?? FileManager.default.currentDirectoryPath
        chooser.open(at: start, purpose: purpose)
    }

    /// Draws the chooser when open; returns a chosen path.
    func drawFileChooser(_ ui: UIContext) -> String? {
        guard chooser.isOpen else { return nil }
        var chosen: String?
        let display = ui.displayRect
        let width = min(display.width - ui.scaled(24), max(display.width * 0.5, ui.scaled(640)))
        let height = min(display.height - ui.scaled(24), max(display.height * 0.7, ui.scaled(420)))
        let box = Rect(x: ((display.width - width) / 2).rounded(), y: ((display.height - height) / 2).rounded(), width: width, height: height)
        layout["chooser"] = box
        // Escape closes the chooser, even while the path is being edited.
        if ui.shortcut(.escape) { closeChooser(); return nil }
        ui.modal {
            ui.panel("file-chooser", rect: box) {
                let heading: String
                switch chooser.purpose {
                case .anything: heading = "Open a model (.onnx), a data folder or file, or an image"
                case .data(let model): heading = "Choose the data for \(URL(fileURLWithPath: model).lastPathComponent)"
                }
                ui.label(heading, style: .heading, wrap: true)
                ui.label("Type a path and press Return to go there or open it; Ctrl+A selects the path.", style: .small, wrap: true)
                let goWidth = ui.fittingWidth(button: "Go")
                ui.row(.fraction(1), .points(goWidth / ui.scale))
                if chooser.focusPath {
                    ui.focusTextField("path")
                    chooser.focusPath = false
                }
                ui.textField("path", text: &chooser.path)
                // Return goes to or opens the typed path, from the field or with nothing focused.
                let submitted = ui.lastItem.wasSubmitted || (ui.focusID == nil && ui.takeKey(.enter))
                if ui.button("Go") || submitted {
                    switch chooser.action(for: chooser.path) {
                    case .navigate(let folder):
                        chooser.navigate(to: folder)
                        // Keep typing in the field: the caret after the folder's "/".
                        ui.focusTextField("path", selectingAll: false)
                    case .choose(let file): chosen = file
                    case .missing(let path): chooser.problem = "\(path): no such file or folder"
                    }
                }
                ui.row(.fraction(1))
                if let problem = chooser.problem { ui.label(problem, style: .small, color: ui.theme.colors.error, wrap: true) }
                var buttons = [ui.flowButton("Open") {
                    switch self.chooser.action(for: self.chooser.path) {
                    case .navigate(let folder):
                        // "Open" on a folder opens it as data, as the data folder it usually is.
                        chosen = folder
                    case .choose(let file): chosen = file
                    case .missing(let path): self.chooser.problem = "\(path): no such file or folder"
                    }
                }]
                if chooser.purpose == .anything {
                    buttons.append(ui.flowButton("Open this folder as data") { chosen = self.chooser.directory })
                }
                buttons.append(ui.flowButton("Cancel") { self.closeChooser() })
                // The list takes the height the buttons leave.
                let rowHeight = ui.lineHeight() + ui.scaled(ui.theme.padding)
                let buttonRows = ui.flowLayout(buttons, width: ui.remainingRect.width).rowCount
                let buttonsHeight = ui.flowHeight(rows: buttonRows) + 2 * ui.scaled(ui.theme.spacing)
                let rows = max(3, Int((ui.remainingRect.height - buttonsHeight - 2) / rowHeight))
                var selection = chooser.selection
                let changed = ui.list("entries", items: chooser.entries, selection: &selection, visibleRows: rows)
                let listFocused = ui.lastItem.isFocused
                // A click on a folder goes there; arrows only move the selection; Return in the
                // list goes into the selected folder or opens the selected file.
                let clicked = changed && ui.input.wasReleased(.left)
                let enter = listFocused && ui.takeKey(.enter)
                if let i = selection, chooser.entries.indices.contains(i) {
                    let name = chooser.entries[i]
                    let isFolder = name == ".." || name.hasSuffix("/")
                    let target = name == ".." ? (chooser.directory as NSString).deletingLastPathComponent
                        : (chooser.directory as NSString).appendingPathComponent(isFolder ? String(name.dropLast()) : name)
                    if isFolder && (clicked || enter) {
                        chooser.navigate(to: target)
                    } else if changed || enter {
                        chooser.selection = i
                        chooser.path = target + (isFolder ? "/" : "")
                        if enter { chosen = target }
                    }
                }
                ui.flow(buttons)
            }
        }
        if let chosen {
            rememberFolder(of: chosen)
            chooser.isOpen = false
        }
        return chosen
    }

    func closeChooser() {
        rememberFolder(chooser.directory)
        chooser.isOpen = false
    }

    /// Remembers the folder a chosen path is in (or the folder itself) for the next chooser.
    func rememberFolder(of path: String) {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        rememberFolder(exists && isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent)
    }

    func rememberFolder(_ folder: String) {
        guard preferences.lastFolder != folder else { return }
        preferences.lastFolder = folder
        guard let store = preferencesStore else { return }
        do { try store.save(preferences) } catch { model.messages.append("\(error)") }
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
