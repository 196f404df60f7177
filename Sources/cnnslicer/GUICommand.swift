import ArgumentParser
import Foundation
import SlicerApp
import SlicerData
import SlicerInfo
import SlicerUI

/// Model and data options of the app (`gui`, `screenshot`).
struct AppOptions: ParsableArguments {
    @Option(name: .long, parsing: .upToNextOption,
            help: "ONNX model(s): one file, a list, or a glob of checkpoints (a model series). Default: the shipped Fashion-MNIST series.")
    var model: [String] = []

    @Option(name: .long, help: "Images (as for eval). Default: the data set the model names (metadata cnnslicer.data, or class names of mnist, fashion-mnist or cifar10), else fashion-mnist, else the bundled subset.")
    var data: String?

    @Option(name: .long, help: "Dataset split for IDX and CIFAR data: test or train.")
    var split: Split = .test

    @Option(name: .long, help: "Use only the first N images in dataset order.")
    var limit: Int?

    @Option(name: .long, help: "Per-channel means, comma-separated (default: the model's metadata).")
    var mean: String?

    @Option(name: .long, help: "Per-channel standard deviations, comma-separated (default: the model's metadata).")
    var std: String?

    @OptionGroup var images: ImageOptions

    /// The options as given; without `--model`, the shipped default series, and without
    /// `--data`, the data the model names (its metadata or class names), else Fashion-MNIST
    /// (or the bundled subset where Fashion-MNIST is not installed).
    func workspaceOptions() throws -> WorkspaceOptions {
        var models = model
        if models.isEmpty {
            guard let assets = ShippedDefault.assetsDirectory() else { _ = try ShippedDefault.modelPath(); return WorkspaceOptions(models: [], data: "") }
            models = [assets + "/models/fashion_mnist_cnn_epochs/epoch_*.onnx"]
        }
        var options = WorkspaceOptions(models: models, data: data ?? "")
        let fallback = ShippedDefault.dataSource()
        options.fallbackName = ShippedDefault.dataName
        options.fallbackData = fallback.path
        options.fallbackNote = fallback.note
        options.split = split
        options.limit = limit
        (options.mean, options.std) = try images.normalization(mean: mean, std: std)
        options.resize = images.interpolationMode
        options.geometry = try images.geometry()
        options.classIndex = images.classIndex
        return options
    }
}

struct GUICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gui",
        abstract: "The app: architecture strip, entropy chart, channel matrix, feature maps, image browser and draw pad, linked.",
        discussion: """
            Keys: ←/→ step taps, ↑/↓ step images, Tab cycles views, Esc clears brushes, F11 full screen, \
            Ctrl +/− UI scale, Ctrl T theme, Ctrl L large type, Ctrl B hide/show the browser, \
            Ctrl O open, Ctrl S save the window as PNG, Ctrl Shift S save the focused view, Ctrl E save the numbers as CSV, \
            Ctrl Q quit. Drop an .onnx, a data folder or an image on the window.
            """)

    @OptionGroup var app: AppOptions

    @Option(name: .long, help: "Window size WxH.")
    var size: String = "1600x1000"

    func run() throws {
        // ArgumentParser calls run() on the main thread, where SDL must live.
        try MainActor.assumeIsolated { try runOnMain() }
    }

    @MainActor
    func runOnMain() throws {
        try reportingErrors {
            let (workspace, options) = try app.workspaceOptions().open()
            let (w, h) = try parseSize(size)
            var hostOptions = SDLWindowHost.Options()
            hostOptions.width = w
            hostOptions.height = h
            let host = try SDLWindowHost(options: hostOptions)
            let model = AppModel(workspace: workspace)
            model.selection.epoch = workspace.inputs.count - 1
            model.wake = { SDLWindowHost.wakeUp() }
            let view = AppView(model: model, textures: host.renderer, options: options, preferences: .standard())
            host.run { ui in
                // Ctrl +/− and Ctrl 0 scale the whole UI crisply (fonts are re-rasterised per size).
                ui.handleScaleShortcuts(&host.uiScale)
                for path in ui.input.droppedFiles { view.open(path) }
                view.frame(ui)
                if host.title != view.windowTitle { host.title = view.windowTitle }
                if view.wantsFullscreenToggle { host.isFullscreen.toggle(); view.wantsFullscreenToggle = false }
                if let path = view.wantsScreenshot {
                    view.wantsScreenshot = nil
                    let crop = view.screenshotCrop
                    host.requestScreenshot(to: path) { result in
                        do {
                            try result.get()
                            if let crop { try AppView.cropScreenshot(at: path, to: crop) }
                        } catch {
                            model.messages.append("\(error)")
                        }
                    }
                }
                if view.wantsQuit { host.quit() }
            }
        }
    }
}

func parseSize(_ text: String) throws -> (Int, Int) {
    let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
    guard parts.count == 2, parts[0] >= 320, parts[1] >= 240, parts[0] <= 8192, parts[1] <= 8192 else {
        throw ValidationError("--size expects WxH between 320x240 and 8192x8192, got '\(text)'")
    }
    return (parts[0], parts[1])
}

struct ScreenshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "screenshot",
        abstract: "Render the app headless to PNG after the analysis of --limit images is complete.",
        discussion: "--select takes comma-separated key=value pairs: tap=NAME, image=I, class=K, channels=A-B, method=instance|ensemble|information, epoch=E, car=1|greedy (open the CAR panel and run it), tab=matrix|car|car-curve|car-results|scatter (the right panel's view), zoom=BLOCK (the strip shows one block, e.g. layer2/layer2.1), filter=TEXT (the browser's class search: the best match), columns=A+B (add the best match of each as a matrix column), picker=TEXT (the matrix's class picker open with TEXT typed).")

    @OptionGroup var app: AppOptions

    @Option(name: .long, help: "Where to write the PNG.")
    var out: String

    @Option(name: .long, help: "Size WxH.")
    var size: String = "1600x1000"

    @Option(name: .long, help: "Selection to apply, e.g. tap=/2/Relu,image=3,class=1,channels=0-7,method=ensemble.")
    var select: String?

    @Option(name: .long, help: "UI scale, 0.5 to 3 (as Ctrl +/− in the app).")
    var scale: Float = 1

    @Option(name: .long, help: "Theme: dark, light or high-contrast.")
    var theme: String = "dark"

    @Flag(name: .long, help: "Large type (as Ctrl L in the app).")
    var largeType = false

    @Flag(name: .long, help: "List every control label the frame had to shorten with \"…\" on stderr, and exit with status 1 if there is one.")
    var checkLabels = false

    func validate() throws {
        let range = UIScale.steps[0]...UIScale.steps[UIScale.steps.count - 1]
        guard scale.isFinite, range.contains(scale) else {
            throw ValidationError("--scale must be between \(range.lowerBound) and \(range.upperBound), got \(scale)")
        }
        // The views need 320×240 points; at scale 3 a 320×240 image holds a third of that.
        let (w, h) = try parseSize(size)
        guard Float(w) / scale >= 320, Float(h) / scale >= 240 else {
            throw ValidationError("--scale \(scale) needs --size of at least \(Int((320 * scale).rounded(.up)))x\(Int((240 * scale).rounded(.up))), got \(size)")
        }
    }

    @Flag(name: .long, help: "Also print frame-time statistics as JSON: frames while the engine works, and frames after selection changes once it is done.")
    var frameStats = false

    func run() throws {
        try MainActor.assumeIsolated { try runOnMain() }
    }

    @MainActor
    func runOnMain() throws {
        try reportingErrors {
            guard let themeIndex = Theme.all.firstIndex(where: { $0.name == theme }) else {
                throw ValidationError("--theme expects one of \(Theme.all.map(\.name).joined(separator: ", ")), got '\(theme)'")
            }
            let (workspace, options) = try app.workspaceOptions().open()
            try checkOutput(out, models: workspace.inputs.map(\.network.path), data: options.data)
            let (w, h) = try parseSize(size)
            setenv("SDL_VIDEODRIVER", "offscreen", 0)
            let host = try HeadlessHost(width: w, height: h, scale: scale)
            let model = AppModel(workspace: workspace)
            model.selection.epoch = workspace.inputs.count - 1
            let view = AppView(model: model, textures: host.renderer, options: options)
            view.largeType = largeType
            view.setTheme(themeIndex, host.ui)
            var runCAR: Bool?
            var selectedTap: Int?
            if let select {
                runCAR = try apply(select, to: model)
                if select.contains("tap=") { selectedTap = model.selection.tap }
                try showPanel(select, in: view)
                try zoomStrip(select, in: view)
            }
            // Run frames until the analysis (and the shown image) are complete.
            let deadline = Date().addingTimeInterval(600)
            var settled = 0
            var busyFrames: [Double] = []
            while Date() < deadline {
                let t0 = DispatchTime.now().uptimeNanoseconds
                host.frame { view.frame($0) }
                if model.isBusy { busyFrames.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) }
                let done = model.snapshot.map { $0.isComplete || $0.error != nil } ?? false
                let subsetDone = model.selection.brushedImages.isEmpty
                    || (model.subsetProgress.map { $0.imagesDone >= $0.imagesTotal } ?? false)
                if done, let greedy = runCAR {
                    view.startCAR(greedy: greedy)
                    // An explicit tab= wins over the CAR panel that startCAR opens.
                    if let select, select.contains("tab=") { try showPanel(select, in: view) }
                    runCAR = nil
                }
                let carDone = runCAR == nil && !view.isCARRunning
                if done && !model.isBusy && !view.isComputingImageEntropy && model.featureMaps != nil && subsetDone && carDone { settled += 1 } else { settled = 0 }
                if settled >= 3 { break }
                Thread.sleep(forTimeInterval: 0.02)
            }
            if let error = model.snapshot?.error { throw CLIError(error) }
            host.frame { view.frame($0) }
            try AtomicFile.write(try PNGFile.encode(try host.capture()), to: out)
            if checkLabels {
                let cut = host.ui.diagnostics.truncatedLabels
                for t in cut { FileHandle.standardError.write(Data("cnnslicer: \(out): truncated \(t)\n".utf8)) }
                if !cut.isEmpty { throw ExitCode(1) }
            }
            if frameStats { printFrameStats(busy: busyFrames, host: host, model: model, view: view, selectedTap: selectedTap) }
        }
    }

    /// Frame times (build + software render) while the engine works, and for
    /// frames in which the selection changes once it is done (each change is
    /// drawn in the frame that makes it: the views read the selection directly).
    @MainActor
    func printFrameStats(busy: [Double], host: HeadlessHost, model: AppModel, view: AppView, selectedTap: Int?) {
        var changed: [Double] = []
        let taps = model.network.taps.count
        for i in 0..<60 {
            model.selection.tap = i % taps
            model.selection.channels = Set(0..<(1 + i % 4))
            let t0 = DispatchTime.now().uptimeNanoseconds
            host.frame { view.frame($0) }
            changed.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        // Paging through the maps of the tap selected by --select (2,048 at ResNet-50's last
        // block): each frame shows another page, drawn and uploaded for the first time.
        var paged: [Double] = [], redrawn: [Double] = []
        if let tap = selectedTap {
            model.selection.tap = tap
            model.selection.channels = []
            host.frame { view.frame($0) }
            for i in 0..<min(30, max(0, view.mapPageCount * 2)) where view.mapPageCount > 1 {
                view.mapPage = i % view.mapPageCount
                let t0 = DispatchTime.now().uptimeNanoseconds
                host.frame { view.frame($0) }
                paged.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                // The same page again: its textures are made, the frame only draws.
                let t1 = DispatchTime.now().uptimeNanoseconds
                host.frame { view.frame($0) }
                redrawn.append(Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e6)
            }
        }
        func stats(_ values: [Double]) -> String {
            let s = values.sorted()
            guard !s.isEmpty else { return "{\"frames\": 0}" }
            func q(_ p: Double) -> Double { s[min(s.count - 1, Int(p * Double(s.count - 1)))] }
            // Which frame was the slowest: a one-off stall shows as one frame, not in p99.
            let at = values.firstIndex(of: s.last!) ?? 0
            return String(format: "{\"frames\": %d, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, \"max_at\": %d}", s.count, q(0.5), q(0.99), s.last!, at)
        }
        print("{\"size\": \"\(size)\", \"images\": \(model.workspace.images.count), \"while_analysing\": \(stats(busy)), \"selection_changes\": \(stats(changed)), \"map_pages\": \(stats(paged)), \"map_pages_redrawn\": \(stats(redrawn)), \"textures_freed\": {\"most_in_a_frame\": \(view.mostTexturesFreedInAFrame), \"longest_ms\": \(String(format: "%.2f", view.longestTextureFreeing))}}")
    }

    /// `tab=` of `--select`: the right panel's view.
    @MainActor
    func showPanel(_ text: String, in view: AppView) throws {
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { continue }
            switch kv[0] {
            case "filter": view.filterBrowser(kv[1]); continue
            case "picker": view.openClassPicker(query: kv[1]); continue
            case "columns": view.addMatrixClasses(kv[1].split(separator: "+").map(String.init)); continue
            case "tab": break
            default: continue
            }
            guard view.showPanel(named: kv[1]) else {
                throw ValidationError("--select: tab=matrix|car|car-curve|car-results|scatter, got '\(kv[1])'")
            }
        }
    }

    /// `zoom=` of `--select`: the strip shows that block's taps.
    @MainActor
    func zoomStrip(_ text: String, in view: AppView) throws {
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0] == "zoom" else { continue }
            guard view.zoomStrip(toBlock: kv[1]) else {
                let names = view.stripBlockNames
                throw CLIError("\(view.model.network.path): no block named '\(kv[1])'" + (names.isEmpty ? " (its tap names have no blocks)" : " (blocks: \(names.joined(separator: ", ")))"))
            }
        }
    }

    /// Applies `--select`; returns whether (and how) to run CAR: nil none, false CAR only, true with greedy.
    @MainActor
    func apply(_ text: String, to model: AppModel) throws -> Bool? {
        let net = model.network
        var runCAR: Bool?
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ValidationError("--select: '\(part)' is not key=value") }
            switch kv[0] {
            case "tap":
                guard let tap = net.tap(named: kv[1]) ?? Int(kv[1]).flatMap({ $0 < net.taps.count ? net.taps[$0] : nil }) else {
                    throw CLIError("\(net.path): no tap named '\(kv[1])' (taps: \(net.taps.map(\.name).joined(separator: ", ")))")
                }
                model.selection.tap = tap.index
            case "image":
                guard let i = Int(kv[1]), i >= 0, i < model.workspace.images.count else { throw ValidationError("--select: image \(kv[1]) out of range") }
                model.selection.image = i
            case "class":
                guard let k = Int(kv[1]) ?? model.workspace.classNames.firstIndex(of: kv[1]), k >= 0, k < net.classCount else {
                    throw ValidationError("--select: unknown class \(kv[1])")
                }
                model.selection.classes = [k]
                let labels = model.workspace.images.labels
                model.selection.brushedImages = Set(labels.indices.filter { labels[$0] == k })
            case "channels":
                let ends = kv[1].split(separator: "-").compactMap { Int($0) }
                guard let a = ends.first, let b = ends.last, a <= b else { throw ValidationError("--select: channels A-B") }
                model.selection.channels = Set(a...b)
            case "method":
                guard let m = EntropyMethod(name: kv[1]) else { throw ValidationError("--select: method instance|ensemble|information") }
                model.selection.method = m
            case "car":
                guard ["1", "yes", "greedy"].contains(kv[1]) else { throw ValidationError("--select: car=1|greedy") }
                runCAR = kv[1] == "greedy"
            case "tab", "zoom", "filter", "picker", "columns":
                continue   // showPanel, zoomStrip
            case "epoch":
                guard let e = Int(kv[1]), e >= 0, e < model.engines.count else { throw ValidationError("--select: epoch out of range") }
                model.selection.epoch = e
            default:
                throw ValidationError("--select: unknown key \(kv[0])")
            }
        }
        return runCAR
    }
}
