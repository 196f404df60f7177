import ArgumentParser
import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo

extension CARStrategy: ExpressibleByArgument {}

struct CARCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "car",
        abstract: "Filter importance by classification accuracy reduction (SPEC §4) as JSON `cnnslicer.car.v1`.",
        discussion: """
            CAR of a channel is the top-1 accuracy lost when the channel is zeroed at the tap and \
            everything downstream is recomputed; class-wise CAR is the same per true class. With \
            --greedy K, channels are pruned greedily (smallest CAR under the current mask first) until \
            K remain, and the accuracy curve is compared with three baselines: smallest L1 norm of the \
            producing convolution's filters, a seeded random order, and lowest channel ensemble entropy. \
            Choose the tap after a convolution's BatchNormalization/activation: zeroing there is what \
            removing the filter does.
            """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "The tap whose channels are ablated (a name from `cnnslicer info`, or its index).")
    var tap: String

    @Option(name: .long, help: "Prune greedily until K channels remain; adds the curve and the baselines.")
    var greedy: Int?

    @Option(name: .long, help: "Seed of the random baseline.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Where to write the JSON (atomically); - for standard output.")
    var out: String = "-"

    @Option(name: .long, help: "Images per chunk.")
    var batch: Int = 64

    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int = defaultThreadCount()

    @Option(name: .long, help: "fast (the network up to the tap once, a linear shortcut after it, near-ties redone exactly), suffix (everything after the tap per ablation) or naive (the whole network per ablation). All give the same numbers.")
    var strategy: CARStrategy = .fast

    @Flag(name: .long, help: "Also compute CAR of every channel naively (the whole network per ablation) and print both times and the speed-up to standard error.")
    var compareNaive = false

    @Flag(name: .long, help: "No progress bar.")
    var quiet = false

    func validate() throws {
        try RunLimits.validate(batch: batch, threads: threads)
        if let greedy, greedy < 0 { throw ValidationError("--greedy must be 0 or more") }
    }

    func run() throws {
        try reportingErrors {
            let input = try data.input(for: model)
            let network = input.network
            try checkOutput(out, models: [network.path], data: data.data ?? input.images.source)
            let tapIndex = try CARCommand.resolveTap(tap, in: network)
            if let greedy, greedy >= network.taps[tapIndex].channels {
                throw CLIError("\(network.path): tap '\(network.taps[tapIndex].name)' has \(network.taps[tapIndex].channels) channels; --greedy must be below that, got \(greedy)")
            }
            let engine = try CAREngine(input: input, tap: tapIndex, batchSize: RunLimits.batch(batch, for: input.images.count), threads: threads, strategy: strategy)
            let bar = CARProgressBar(enabled: !quiet)
            let started = Date()
            let scores = try engine.scores(progress: { bar.update($0) })
            bar.finish()
            let carSeconds = Date().timeIntervalSince(started)
            if compareNaive {
                try compare(scores: scores, seconds: carSeconds, input: input, tapIndex: tapIndex, engine: engine)
            }
            let result = try engine.run(keep: greedy, seed: seed, initial: scores, progress: { bar.update($0) })
            bar.finish()
            if !quiet {
                let stats = engine.stats
                note(String(format: "car: %d channels of '%@' over %d images in %.1f s (shortcut: %@; %d chunk ablations by the shortcut, %d exact)",
                            engine.tap.channels, engine.tap.name, scores.images, Date().timeIntervalSince(started),
                            engine.shortcutDescription, stats.shortcutRuns, stats.exactRuns))
                if stats.boundedImages + stats.recomputedImages > 0 {
                    note(String(format: "car: %d image ablations certain by the 8-bit bound, %d recomputed in floats",
                                stats.boundedImages, stats.recomputedImages))
                }
                if let reason = result.baselines?.l1Unavailable { note("car: no L1 baseline: \(reason)") }
            }
            try emit(CARJSON.render(result: result, modelPath: network.path, dataSource: input.images.source,
                                    classNames: input.classNames), to: out)
        }
    }

    /// Times CAR of every channel the naive way and reports the speed-up of the engine's strategy.
    func compare(scores: CARScores, seconds: Double, input: ModelInput, tapIndex: Int, engine: CAREngine) throws {
        let naive = try CAREngine(input: input, tap: tapIndex, batchSize: RunLimits.batch(batch, for: input.images.count), threads: threads, strategy: .naive)
        let bar = CARProgressBar(enabled: !quiet)
        let started = Date()
        let reference = try naive.scores(progress: { bar.update($0) })
        bar.finish()
        let naiveSeconds = Date().timeIntervalSince(started)
        let same = reference == scores
        note(String(format: "car: CAR of %d channels of '%@' over %d images: %@ %.2f s, naive %.2f s, speed-up %.1f×; results %@",
                    engine.tap.channels, engine.tap.name, scores.images, engine.strategy.rawValue, seconds, naiveSeconds,
                    naiveSeconds / max(seconds, 1e-9), same ? "identical" : "DIFFER"))
        if !same { throw CLIError("\(input.network.path): tap '\(engine.tap.name)': \(engine.strategy.rawValue) and naive CAR differ") }
    }

    /// A tap by name, else by index; unknown names list the taps.
    static func resolveTap(_ text: String, in network: Network) throws -> Int {
        if let t = network.tap(named: text) { return t.index }
        if let i = Int(text), i >= 0 && i < network.taps.count { return i }
        throw CLIError("\(network.path): no tap named '\(text)'; taps: \(network.taps.map(\.name).joined(separator: ", "))")
    }

    private func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// A progress bar on standard error, drawn only when it is a terminal.
final class CARProgressBar: @unchecked Sendable {
    // Updated from worker threads; the lock keeps lines whole.
    private let lock = NSLock()
    private let enabled: Bool
    private var lastDraw = -1.0
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled && isatty(STDERR_FILENO) == 1 }

    func update(_ p: CARProgress) {
        guard enabled else { return }
        lock.withLock {
            guard p.seconds - lastDraw >= 0.1 || p.done >= p.total else { return }
            lastDraw = p.seconds
            let width = 30
            let filled = min(width, Int(p.fraction * Double(width)))
            let eta = p.secondsLeft.map { String(format: "ETA %.0fs", $0) } ?? ""
            let line = "\r[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
                + String(format: "] %3.0f%%  %@  ", p.fraction * 100, p.stage) + eta + "      "
            FileHandle.standardError.write(Data(line.utf8))
            drawn = true
        }
    }

    func finish() {
        guard enabled else { return }
        lock.withLock {
            if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
            drawn = false
            lastDraw = -1
        }
    }
}
