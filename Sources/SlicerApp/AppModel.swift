import Dispatch
import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo
import Synchronization

/// Where the app's data comes from: a model series and one data set.
public struct Workspace: Sendable {
    public let inputs: [ModelInput]
    /// Shown in the status bar (e.g. that a bundled subset stands in for a missing data set):
    /// every note whole, joined.
    public let note: String?
    /// Each note on its own, in its forms longest first (the whole text, then shorter ones
    /// that say the same): the status bar shows the longest that fits, the whole on hover.
    public let noteForms: [[String]]

    public init(inputs: [ModelInput], note: String? = nil) {
        self.inputs = inputs
        self.note = note
        noteForms = note.map { [[$0]] } ?? []
    }

    public init(inputs: [ModelInput], notes: [[String]]) {
        self.inputs = inputs
        noteForms = notes.filter { !$0.isEmpty }
        note = noteForms.isEmpty ? nil : noteForms.map { $0[0] }.joined(separator: "; ")
    }

    public var images: LabeledImages { inputs[0].images }
    public var classNames: [String] { inputs[0].classNames }
    public var network: Network { inputs[0].network }
}

/// The app's state, owned by the UI thread. Views read it and change
/// `selection`; once per frame `update()` turns changes into engine requests
/// (stale work cancelled) and picks up the results that arrived meanwhile.
@MainActor
public final class AppModel {
    public private(set) var workspace: Workspace
    public private(set) var engines: [AnalysisEngine]
    public var selection = Selection()
    /// Every CAR result of the session, and the computation running.
    let car: CARSession
    /// Errors to show, oldest first; the app keeps running. Kept on one line
    /// each, escaped: an error may quote a damaged file's bytes (ErrorText).
    public var messages: [String] = [] {
        didSet {
            if messages.contains(where: { ErrorText.oneLine($0) != $0 }) { messages = messages.map(ErrorText.oneLine) }
        }
    }
    /// A drawn or dropped image shown instead of a data set image (bytes, C×H×W).
    public private(set) var drawnPixels: [UInt8]?

    /// Every tap's values for the shown image.
    public private(set) var featureMaps: FeatureMaps? { didSet { featureMapsVersion += 1 } }
    /// Changes whenever `featureMaps` does, to key caches of derived numbers.
    public private(set) var featureMapsVersion = 0
    /// The analysis of the brushed images, as far as it has got.
    public private(set) var subsetSummary: AnalysisSummary?
    public private(set) var subsetProgress: AnalysisProgress?

    /// Class × channel tables for the views (on demand for many classes).
    private let classChannels = ClassChannelValues()
    private var requested: (epoch: Int, request: AnalysisRequest)?
    private var featureKey: FeatureKey?
    private var subsetKey: (images: Set<Int>, epoch: Int, request: AnalysisRequest)?
    private let priority = DispatchQueue(label: "cnnslicer.priority")
    /// Results posted by background work; a class so closures can capture it.
    private let inbox = Shared(Inbox())
    /// Raised by background work so the UI loop wakes and draws the news.
    public var wake: (@Sendable () -> Void)? {
        didSet { for e in engines { e.setListener(wake) }; car.wake = wake }
    }

    struct FeatureKey: Hashable, Sendable {
        var epoch: Int, image: Int?, drawn: [UInt8]?, mask: AblationMask
    }

    struct Inbox: Sendable {
        var featureMaps: (FeatureKey, FeatureMaps)?
        var subset: (generation: Int, summary: AnalysisSummary, progress: AnalysisProgress, done: Bool)?
        var errors: [String] = []
        var subsetGeneration = 0
    }

    public init(workspace: Workspace, threads: Int = defaultThreadCount(), carCache: CARCache? = CARCache.standard()) {
        self.workspace = workspace
        engines = workspace.inputs.map { AnalysisEngine(input: $0, threads: threads) }
        car = CARSession(cache: carCache)
        selection.tap = Self.startTap(workspace.network)
        if let note = workspace.note { messages.append(note) }
    }

    /// The tap the app opens on: the first activation (what the first layer's
    /// filters respond with), not the input, whose one channel says little.
    static func startTap(_ network: Network) -> Int {
        let activations: Set<String> = ["Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu"]
        return network.taps.first { activations.contains($0.opType) }?.index ?? min(1, network.taps.count - 1)
    }

    public var engine: AnalysisEngine { engines[min(selection.epoch, engines.count - 1)] }
    public var network: Network { engine.input.network }
    public var snapshot: AnalysisSnapshot? { engine.snapshot }

    /// Replaces the model series and data (open / drop), keeping what of the selection still fits.
    public func replace(_ workspace: Workspace) {
        for e in engines { e.cancel() }
        if workspace.network.taps.map(\.name) != self.workspace.network.taps.map(\.name) {
            selection.tap = Self.startTap(workspace.network)
        }
        self.workspace = workspace
        engines = workspace.inputs.map { AnalysisEngine(input: $0) }
        for e in engines { e.setListener(wake) }
        requested = nil
        featureKey = nil
        featureMaps = nil
        subsetKey = nil
        subsetSummary = nil
        classChannels.reset()
        if let note = workspace.note { messages.append(note) }
    }

    /// Tap `tap`'s values per class and channel for `classes` (mean instance
    /// and ensemble entropy, exact), or nil while they are computed in the
    /// background; the view is woken when they arrive. For models with many
    /// classes ask only for the classes on screen: each new set of classes or
    /// tap is one run of the network up to the tap over those classes' images,
    /// and makes the previous request stale.
    public func classChannelTable(tap: Int, classes: [Int]) -> ClassChannelTable? {
        classChannels.table(engine: engine, epoch: selection.epoch, tap: tap, classes: classes, wake: wake)
    }

    /// How far the class × channel table asked for last is, while it is computed in the
    /// background (images binned, images in all); nil when none is being computed.
    public var classChannelProgress: (done: Int, total: Int)? { classChannels.progress }

    /// Tests only: see `ClassChannelValues.afterChunk`.
    var classChannelAfterChunk: (@Sendable () -> Void)? {
        get { classChannels.afterChunk }
        set { classChannels.afterChunk = newValue }
    }

    /// How a class × channel view fills the columns left after the selected and added
    /// classes, when not every class fits.
    public enum ClassRanking: Int, Sendable, CaseIterable {
        /// The classes with the most images in the data set (ties: lower index).
        case mostImages
        /// The classes whose tap-level entropy at the tap departs most from the whole
        /// set's, |H(class) − H(all)|, in the method shown (instance: mean instance
        /// entropy; ensemble and label information: ensemble entropy) — the classes
        /// the tap treats most differently. Exact: the analysis keeps every class's
        /// tap-level numbers. Classes without images come last.
        case mostDistinct
    }

    /// The classes a class × channel view shows as columns, in the order shown:
    /// every class when there are at most `limit`; else the selected classes,
    /// then `pinned` (added with the matrix's class picker), then the best of
    /// the rest by `ranking` at tap `tap` until `limit` columns are filled. When
    /// the selected and pinned classes alone exceed `limit`, all of them are
    /// returned (the view pages through them).
    public func matrixClasses(limit: Int, pinned: [Int] = [], ranking: ClassRanking = .mostImages, tap: Int? = nil) -> [Int] {
        let k = network.classCount
        guard k > limit else { return Array(0..<k) }
        var chosen = selection.classes.sorted().filter { $0 < k }
        for p in pinned where p >= 0 && p < k && !chosen.contains(p) { chosen.append(p) }
        guard chosen.count < limit else { return chosen }
        let taken = Set(chosen)
        let keys = rankingKeys(ranking, tap: tap)
        let rest = (0..<k).filter { !taken.contains($0) }
            .sorted { keys[$0] != keys[$1] ? keys[$0] > keys[$1] : $0 < $1 }
        return chosen + rest.prefix(max(0, limit - chosen.count))
    }

    /// Per class, larger is shown first.
    func rankingKeys(_ ranking: ClassRanking, tap: Int?) -> [Double] {
        let k = network.classCount
        switch ranking {
        case .mostImages:
            return classImageCounts.map(Double.init)
        case .mostDistinct:
            guard let t = tap, let summary = snapshot?.summary, let s = summary.taps[safe: t] else { return classImageCounts.map(Double.init) }
            let instance = selection.method == .instance
            let all = instance ? s.instanceEntropy : s.ensembleEntropy
            let perClass = instance ? s.classInstanceEntropy : s.classEnsembleEntropy
            return (0..<k).map { c in perClass[safe: c].flatMap { $0 }.map { abs($0 - all) } ?? -1 }
        }
    }

    /// Images per class of the data set (index = class), counted once per data set.
    public var classImageCounts: [Int] {
        let images = workspace.images, k = network.classCount
        if let cached = classCountsCache, cached.source == images.source, cached.images == images.count, cached.counts.count == k {
            return cached.counts
        }
        var counts = [Int](repeating: 0, count: k)
        for y in images.labels where y >= 0 && y < k { counts[y] += 1 }
        classCountsCache = (images.source, images.count, counts)
        return counts
    }
    private var classCountsCache: (source: String, images: Int, counts: [Int])?

    /// The data set image shown before a drawn image replaced it ("Back to data" returns there).
    public private(set) var imageBeforeDrawing: Int?

    /// Shows a drawn/dropped image (bytes in the model's input layout), or nil to go back to the data set.
    public func setDrawnImage(_ pixels: [UInt8]?) {
        if pixels != nil, drawnPixels == nil { imageBeforeDrawing = selection.image }
        drawnPixels = pixels
        if pixels != nil { selection.image = nil }
    }

    /// Once per frame: clamps the selection, issues requests for what changed, collects results.
    public func update() {
        car.poll()
        let net = network
        selection.clamp(tapCount: net.taps.count, imageCount: workspace.images.count,
                        channelCount: net.taps[min(selection.tap, net.taps.count - 1)].channels,
                        classCount: net.classCount, epochCount: engines.count)
        if drawnPixels == nil && selection.image == nil && workspace.images.count > 0 { selection.image = 0 }

        // Main analysis of the selected epoch; the others follow once it is done.
        let request = selection.request
        if requested?.epoch != selection.epoch || requested?.request != request {
            if let old = requested, old.epoch != selection.epoch { engines[old.epoch].cancel() }
            engine.start(request)
            requested = (selection.epoch, request)
        }

        // Feature maps of the shown image.
        let key = FeatureKey(epoch: selection.epoch, image: drawnPixels == nil ? selection.image : nil,
                             drawn: drawnPixels, mask: selection.mask)
        if key != featureKey {
            featureKey = key
            let engine = self.engine
            let shape = net.inputShape
            let wake = self.wake
            priority.async { [inbox] in
                do {
                    let maps: FeatureMaps
                    if let drawn = key.drawn {
                        maps = try engine.featureMaps(pixels: drawn, channels: shape[0], height: shape[1], width: shape[2], mask: key.mask)
                    } else if let image = key.image {
                        maps = try engine.featureMaps(image: image, mask: key.mask)
                    } else { return }
                    inbox.withLock { $0.featureMaps = (key, maps) }
                } catch {
                    inbox.withLock { $0.errors.append("\(error)") }
                }
                wake?()
            }
        }

        // Brushed images: their own analysis with the main analysis's ranges.
        if let ranges = snapshot?.ranges, !selection.brushedImages.isEmpty,
           subsetKey.map({ $0.images != selection.brushedImages || $0.epoch != selection.epoch || $0.request != request }) ?? true {
            subsetKey = (selection.brushedImages, selection.epoch, request)
            subsetSummary = nil
            let generation = inbox.withLock { s -> Int in s.subsetGeneration += 1; return s.subsetGeneration }
            let images = selection.brushedImages.sorted()
            let engine = self.engine
            let wake = self.wake
            let box = inbox
            priority.async {
                let stale: @Sendable () -> Bool = { box.withLock { $0.subsetGeneration != generation } }
                do {
                    let summary = try engine.analyzeSubset(images, ranges: ranges, request: request, isCancelled: stale) { s, p in
                        box.withLock { $0.subset = (generation, s, p, false) }
                        wake?()
                    }
                    box.withLock { $0.subset = (generation, summary, AnalysisProgress(imagesDone: images.count, imagesTotal: images.count, seconds: 0), true) }
                } catch InfoError.cancelled {
                } catch {
                    box.withLock { $0.errors.append("\(error)") }
                }
                wake?()
            }
        } else if selection.brushedImages.isEmpty && subsetKey != nil {
            subsetKey = nil
            subsetSummary = nil
            subsetProgress = nil
            inbox.withLock { $0.subsetGeneration += 1 }
        }

        // Results that arrived since the last frame.
        let news = inbox.withLock { s -> Inbox in
            let copy = s
            s.featureMaps = nil
            s.errors = []
            return copy
        }
        if let (k, maps) = news.featureMaps, k == featureKey { featureMaps = maps }
        if let sub = news.subset, sub.generation == news.subsetGeneration, subsetKey != nil {
            subsetSummary = sub.summary
            subsetProgress = sub.progress
        }
        messages += news.errors
        if let error = classChannels.takeError() { messages.append(error) }
        if let error = snapshot?.error.map(ErrorText.oneLine), !messages.contains(error) { messages.append(error) }
    }

    /// Whether background work is still running (the UI keeps redrawing for progress).
    public var isBusy: Bool {
        guard let s = snapshot else { return true }
        return (!s.isComplete && s.error == nil) || classChannels.isComputing
    }
}

/// A lock-protected value that closures on other threads can share.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R { try mutex.withLock { try body(&$0) } }
}
