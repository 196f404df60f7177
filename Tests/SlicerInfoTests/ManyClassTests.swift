import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerInfo

/// Many classes (K = 120 on a small in-memory CNN): the on-demand layout,
/// which reduces each class as soon as it is complete, against the naive
/// reference of SPEC §3 and against the kept layout; shards that split
/// classes; class × channel tables computed on demand; the cache.
final class ManyClassTests: XCTestCase {
    static let classes = 120

    /// Labels that make every case appear: classes of one image, of two and
    /// three, one class larger than a batch (class 7: every fifth image),
    /// empty classes (above 60), and unlabelled images.
    static func label(_ i: Int) -> Int {
        if i % 5 == 0 { return 7 }
        if i % 23 == 4 { return -1 }
        return (i * 37) % 61
    }

    func setup(count: Int = 150, settings: AnalysisSettings = AnalysisSettings(), batchSize: Int = 7,
               layout: ClassChannelLayout) throws -> (Analyzer, [TapRange]) {
        let network = try wideNetwork(classes: ManyClassTests.classes)
        let images = try makeImages(shape: network.inputShape, count: count, seed: 21, classes: ManyClassTests.classes,
                                    labels: ManyClassTests.label)
        let analyzer = try Analyzer(input: try ModelInput(network: network, images: images), settings: settings,
                                    batchSize: batchSize, threads: 2, layout: layout)
        return (analyzer, try analyzer.calibrate())
    }

    func testTheSetsHaveTheShapesTheTestsNeed() throws {
        let labels = (0..<150).map(ManyClassTests.label)
        var counts = [Int: Int]()
        for y in labels { counts[y, default: 0] += 1 }
        XCTAssertGreaterThan(counts[7] ?? 0, 7, "a class larger than a batch")
        XCTAssertTrue(counts.contains { $0.key >= 0 && $0.value == 1 }, "single-image classes")
        XCTAssertTrue(counts.contains { $0.key >= 0 && $0.value == 2 }, "two-image classes")
        XCTAssertGreaterThan(counts[-1] ?? 0, 0, "unlabelled images")
        XCTAssertTrue((0..<ManyClassTests.classes).contains { counts[$0] == nil }, "empty classes")
    }

    func testOnDemandMatchesNaiveWithManyClasses() throws {
        let network = try wideNetwork(classes: ManyClassTests.classes)
        for (settings, batch) in [(AnalysisSettings(), 7), (AnalysisSettings(bins: 16, range: .channel, millerMadow: true), 64),
                                  (AnalysisSettings(bins: 32, range: .fixed(lo: -1, hi: 3)), 3)] {
            try checkAgainstNaive(model: "wide", network: network, settings: settings, count: 150, batchSize: batch,
                          labels: ManyClassTests.label, seed: 21, layout: .onDemand, tolerance: 1e-12)
        }
        // And the kept layout on the same model, for the comparison below.
        try checkAgainstNaive(model: "wide", network: network, settings: AnalysisSettings(), count: 150,
                      labels: ManyClassTests.label, seed: 21, layout: .kept, tolerance: 1e-12)
    }

    /// The two layouts give the same numbers: integers exactly, entropies to 1e-12.
    func testOnDemandEqualsKept() throws {
        let (kept, ranges) = try setup(layout: .kept)
        let (onDemand, _) = try setup(layout: .onDemand)
        let a = try kept.run(ranges: ranges, keepPerImage: false)
        let b = try onDemand.run(ranges: ranges, keepPerImage: false)
        XCTAssertEqual(a.histograms.imageCounts, b.histograms.imageCounts)
        for (x, y) in zip(a.histograms.taps, b.histograms.taps) {
            XCTAssertEqual(x.layerCounts, y.layerCounts)
            XCTAssertEqual(x.nonFinite, y.nonFinite)
            // The kept per-class channel counts of the labelled classes add up to the closed counts.
            var labelled = [UInt64](repeating: 0, count: x.channels * x.bins)
            for k in 0..<ManyClassTests.classes {
                for c in 0..<x.channels {
                    for (bin, v) in x.histogram(channel: c, classes: [k]).enumerated() { labelled[c * x.bins + bin] += v }
                }
            }
            XCTAssertEqual(labelled, y.closedCounts)
        }
        assertSameSummary(a.summary(network: kept.network), b.summary(network: onDemand.network), 1e-12)
        // Each class was reduced by one worker, never held open: only the unlabelled slot is.
        XCTAssertEqual(b.histograms.openSlots, [ManyClassTests.classes])
        XCTAssertEqual(b.histograms.layout, .onDemand)
    }

    func assertSameSummary(_ a: AnalysisSummary, _ b: AnalysisSummary, _ tolerance: Double,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.images, b.images, file: file, line: line)
        XCTAssertEqual(a.classCounts, b.classCounts, file: file, line: line)
        for (x, y) in zip(a.taps, b.taps) {
            for (u, v) in [(x.instanceEntropy, y.instanceEntropy), (x.ensembleEntropy, y.ensembleEntropy),
                           (x.labelInformation, y.labelInformation), (x.instanceEntropySpread, y.instanceEntropySpread)] {
                assertClose(u, v, tolerance, x.name, file: file, line: line)
            }
            for (u, v) in zip(x.classEnsembleEntropy + x.classInstanceEntropy, y.classEnsembleEntropy + y.classInstanceEntropy) {
                XCTAssertEqual(u == nil, v == nil, file: file, line: line)
                if let u, let v { assertClose(u, v, tolerance, x.name, file: file, line: line) }
            }
            for (u, v) in zip(x.channelEnsembleEntropy + x.channelInstanceEntropy + x.channelLabelInformation,
                              y.channelEnsembleEntropy + y.channelInstanceEntropy + y.channelLabelInformation) {
                assertClose(u, v, tolerance, x.name, file: file, line: line)
            }
            XCTAssertEqual(x.nonFiniteValues, y.nonFiniteValues, file: file, line: line)
        }
    }

    /// Partial results while the analysis runs are exact over the images done
    /// so far, a class in progress included (its open histograms count in
    /// full; classes already reduced through their sums).
    func testPartialResultsAreExactOverTheImagesDone() throws {
        let (analyzer, ranges) = try setup(count: 90, batchSize: 4, layout: .onDemand)
        // One worker: the images done are always a prefix of the processing order.
        let one = try Analyzer(input: analyzer.input, settings: analyzer.settings, batchSize: 4, threads: 1, layout: .onDemand)
        final class Partials: @unchecked Sendable {
            // Appended to by the one worker, read after the run.
            var sets: [(HistogramSet, Int)] = []
        }
        let partials = Partials()
        let result = try one.run(ranges: ranges, keepPerImage: false, partialInterval: 0) { set, p in
            partials.sets.append((set, p.imagesDone))
        }
        XCTAssertGreaterThan(partials.sets.count, 10, "a partial result after every batch")
        let network = analyzer.network
        let recorded = try RecordedActivations.record(network: network, images: analyzer.input.images, batchSize: 4)
        let naive = NaiveAnalysis(network: network, recorded: recorded, labels: analyzer.input.images.labels,
                                  settings: analyzer.settings)
        let labels = analyzer.input.images.labels, k = network.classCount
        var sawOpenClass = false
        for (set, done) in partials.sets where done % 3 == 0 || set.openSlots.contains(where: { $0 < k }) {
            let images = Array(result.images.prefix(done))
            XCTAssertEqual(set.imageCount, done)
            sawOpenClass = sawOpenClass || set.openSlots.contains { $0 < k }
            let summary = AnalysisSummary(network: network, histograms: set, ranges: ranges, settings: analyzer.settings)
            let labelled = images.filter { labels[$0] >= 0 }
            for t in [1, 4, 6] {
                for c in 0..<network.taps[t].channels {
                    assertClose(summary.taps[t].channelEnsembleEntropy[c], naive.ensemble(tap: t, channel: c, images: images), 1e-12,
                                "\(done) images, tap \(t) channel \(c)")
                    var conditional = 0.0
                    for y in Set(labelled.map { labels[$0] }) {
                        let members = labelled.filter { labels[$0] == y }
                        conditional += Double(members.count) / Double(labelled.count) * naive.ensemble(tap: t, channel: c, images: members)
                    }
                    let information = max(0, naive.ensemble(tap: t, channel: c, images: labelled) - conditional)
                    assertClose(summary.taps[t].channelLabelInformation[c], information, 1e-12, "\(done) images, tap \(t) channel \(c)")
                    assertClose(summary.taps[t].channelInstanceEntropy[c], naive.mean(images.map { naive.taps[t].instance[$0][c] }), 1e-12)
                }
            }
        }
        XCTAssertTrue(sawOpenClass, "some partial result had a class in progress")
    }

    /// Shards cut the class-sorted order anywhere (through the large class and
    /// the small ones): a class split between shards stays open in each
    /// partial, and `merge` reduces it once all parts are in. Through the files.
    func testOnDemandShardsSplittingClassesMergeExactly() throws {
        let (analyzer, ranges) = try setup(layout: .onDemand)
        let n = 150
        let full = try analyzer.run(ranges: ranges, keepPerImage: false)
        let sorted = Analyzer.classUnits(Array(0..<n), slots: analyzer.slots, batchSize: 7).order
        let totals = analyzer.slots.reduce(into: [Int](repeating: 0, count: ManyClassTests.classes + 1)) { $0[$1] += 1 }
        let cuts = [0, 17, 61, 62, 113, n]
        let dir = NSTemporaryDirectory() + "cnnslicer-shards-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var partials: [AnalysisPartial] = []
        for s in 0..<(cuts.count - 1) {
            let images = Array(sorted[cuts[s]..<cuts[s + 1]])
            let part = try analyzer.run(images: images, ranges: ranges, keepPerImage: false, classTotals: totals)
            // A class cut by this shard's edges is still open in it.
            let slots = analyzer.slots
            let edgeClasses = Set([images.first, images.last].compactMap { $0 }.map { slots[$0] })
                .filter { y in y < ManyClassTests.classes && images.filter { slots[$0] == y }.count < totals[y] }
            XCTAssertTrue(edgeClasses.isSubset(of: Set(part.histograms.openSlots)), "shard \(s): \(edgeClasses) open")
            let partial = AnalysisPartial(model: "wide.onnx", data: "test", modelDigest: "m", dataDigest: "d", totalImages: n,
                                          shardIndex: s + 1, shardCount: cuts.count - 1, images: cuts[s]..<cuts[s + 1],
                                          settings: analyzer.settings,
                                          classNames: (0..<ManyClassTests.classes).map { "c\($0)" }, ranges: ranges,
                                          histograms: part.histograms)
            try partial.write(to: dir + "/part\(s).partial")
            let read = try AnalysisPartial.read(from: dir + "/part\(s).partial")
            XCTAssertEqual(read.histograms, part.histograms)
            partials.append(read)
        }
        let merged = try AnalysisPartial.merge(partials.enumerated().reversed().map { (path: "part\($0.offset)", partial: $0.element) })
        XCTAssertEqual(merged.histograms.openSlots, [ManyClassTests.classes], "every class reduced after the merge")
        XCTAssertEqual(merged.histograms.imageCounts, full.histograms.imageCounts)
        for (x, y) in zip(merged.histograms.taps, full.histograms.taps) {
            XCTAssertEqual(x.layerCounts, y.layerCounts)
            XCTAssertEqual(x.closedCounts, y.closedCounts)
            XCTAssertEqual(x.counts, y.counts)
        }
        assertSameSummary(AnalysisSummary(network: analyzer.network, histograms: merged.histograms, ranges: ranges,
                                          settings: analyzer.settings),
                          full.summary(network: analyzer.network), 1e-12)
        // A partial of the other layout is refused by name.
        let (kept, _) = try setup(layout: .kept)
        let keptPart = try kept.run(images: Array(sorted[0..<17]), ranges: ranges, keepPerImage: false)
        var mixed = partials
        mixed[0] = AnalysisPartial(model: "wide.onnx", data: "test", modelDigest: "m", dataDigest: "d", totalImages: n,
                                   shardIndex: 1, shardCount: cuts.count - 1, images: 0..<17, settings: analyzer.settings,
                                   classNames: (0..<ManyClassTests.classes).map { "c\($0)" }, ranges: ranges,
                                   histograms: keptPart.histograms)
        XCTAssertThrowsError(try AnalysisPartial.merge(mixed.enumerated().map { (path: "part\($0.offset)", partial: $0.element) })) {
            XCTAssertTrue("\($0)".contains("layout") && "\($0)".contains("part"), "\($0)")
        }
    }

    /// The class × channel table of a tap, computed on demand by running the
    /// network up to the tap for the chosen classes only, against the naive
    /// per-class numbers and against the kept histograms.
    func testClassChannelTableOnDemand() throws {
        let (analyzer, ranges) = try setup(count: 150, settings: AnalysisSettings(bins: 32), layout: .onDemand)
        let network = analyzer.network
        let recorded = try RecordedActivations.record(network: network, images: analyzer.input.images, batchSize: 7)
        let naive = NaiveAnalysis(network: network, recorded: recorded, labels: analyzer.input.images.labels,
                                  settings: analyzer.settings)
        let classes = [7, 0, 3, 100, 119, 37]  // a large class, small ones, empty ones
        let (kept, _) = try setup(count: 150, settings: AnalysisSettings(bins: 32), layout: .kept)
        let keptHistograms = try kept.run(ranges: ranges, keepPerImage: false).histograms
        for t in [0, 2, 4, 6, 8] {
            let table = try analyzer.classChannelTable(tap: t, classes: classes, ranges: ranges)
            XCTAssertEqual(table.classes, classes)
            let fromKept = try XCTUnwrap(keptHistograms.classChannelTable(tap: t, classes: classes, millerMadow: false))
            XCTAssertEqual(table.imageCounts, fromKept.imageCounts)
            for (row, y) in classes.enumerated() {
                let members = naive.images(ofClass: y)
                XCTAssertEqual(table.imageCounts[row], members.count)
                for c in 0..<network.taps[t].channels {
                    if members.isEmpty {
                        XCTAssertNil(table.ensembleEntropy[row][c])
                        XCTAssertNil(table.instanceEntropy[row][c])
                        continue
                    }
                    let ensemble = naive.ensemble(tap: t, channel: c, images: members)
                    let instance = naive.mean(members.map { naive.taps[t].instance[$0][c] })
                    assertClose(table.ensembleEntropy[row][c] ?? .nan, ensemble, 1e-12, "tap \(t) class \(y) channel \(c)")
                    assertClose(table.instanceEntropy[row][c] ?? .nan, instance, 1e-12, "tap \(t) class \(y) channel \(c)")
                    assertClose(fromKept.ensembleEntropy[row][c] ?? .nan, ensemble, 1e-12)
                    assertClose(fromKept.instanceEntropy[row][c] ?? .nan, instance, 1e-12)
                }
            }
        }
        // The engine's API: from kept histograms when it has them, else computed; cancellable.
        let engine = AnalysisEngine(input: analyzer.input, batchSize: 7, threads: 2, cache: nil)
        let request = AnalysisRequest(settings: AnalysisSettings(bins: 32), layout: .onDemand)
        let viaEngine = try engine.classChannelTable(tap: 4, classes: classes, request: request, ranges: ranges)
        XCTAssertEqual(viaEngine, try analyzer.classChannelTable(tap: 4, classes: classes, ranges: ranges))
        XCTAssertThrowsError(try engine.classChannelTable(tap: 4, classes: classes, request: request, ranges: ranges,
                                                          isCancelled: { true })) {
            XCTAssertEqual($0 as? InfoError, .cancelled)
        }
    }

    /// Executor.run(through:) stops at the tap with the values of a whole run, bit for bit.
    func testRunThroughATapGivesTheWholeRunsValues() throws {
        let network = try wideNetwork(classes: ManyClassTests.classes)
        let images = try makeImages(shape: network.inputShape, count: 9, seed: 3, classes: ManyClassTests.classes) { $0 }
        let recorded = try RecordedActivations.record(network: network, images: images, batchSize: 9)
        let input = try ModelInput(network: network, images: images)
        let executor = try network.makeExecutor(capacity: 9)
        for t in network.taps.indices {
            try input.fill(0..<9, into: executor.inputBuffer)
            var values = [Float](repeating: .nan, count: 9 * network.taps[t].valuesPerImage)
            var calls = Set<Int>()
            executor.run(count: 9, through: t) { a in
                calls.insert(a.tap)
                let per = network.taps[t].valuesPerImage
                for k in 0..<(a.batch * per) { values[a.firstImage * per + k] = a.values[k] }
            }
            XCTAssertEqual(calls, [t])
            XCTAssertEqual(values, recorded.taps[t], "tap \(t)")
        }
    }

    /// Units of batches each run by one worker, in order; every batch once.
    func testBatchRunnerRunsEachUnitOnOneWorker() throws {
        let network = try wideNetwork(classes: 10)
        let runner = BatchRunner(network: network, batchSize: 4, threads: 2)
        let units: [[Range<Int>]] = [[0..<4, 4..<8, 8..<10], [10..<12], [12..<16, 16..<17], [17..<20]]
        final class Log: @unchecked Sendable {
            // Appended to under `lock` by the workers.
            let lock = NSLock()
            var entries: [(worker: Int, range: Range<Int>)] = []
        }
        let log = Log()
        try runner.run(units: units, fill: { _, _ in }, process: { worker, range, _ in
            log.lock.withLock { log.entries.append((worker, range)) }
        })
        let entries = log.entries
        XCTAssertEqual(entries.map(\.range).sorted { $0.lowerBound < $1.lowerBound }, units.flatMap { $0 })
        for unit in units {
            let runs = entries.filter { unit.contains($0.range) }
            XCTAssertEqual(Set(runs.map(\.worker)).count, 1, "\(unit) on one worker")
            XCTAssertEqual(runs.map(\.range), unit, "in order")
        }
    }

    /// The cache keeps an on-demand analysis; an edited header or payload is rejected.
    func testCacheRoundTripOnDemand() throws {
        let dir = NSTemporaryDirectory() + "cnnslicer-cache-many-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (analyzer, ranges) = try setup(layout: .onDemand)
        let result = try analyzer.run(ranges: ranges)
        let cache = AnalysisCache(directory: dir)
        let request = AnalysisRequest()
        let key = AnalysisCache.key(input: analyzer.input, request: request, layout: .onDemand)
        XCTAssertNotEqual(key, AnalysisCache.key(input: analyzer.input, request: request, layout: .kept))
        try cache.save(result, key: key)
        let loaded = try XCTUnwrap(cache.load(key: key, input: analyzer.input, settings: analyzer.settings))
        XCTAssertEqual(loaded.histograms, result.histograms)
        XCTAssertEqual(loaded.ranges, result.ranges)
        for i in [0, 77, 149] {
            XCTAssertEqual(Array(loaded.store!.channelEntropies(image: i, tap: 4)), Array(result.store!.channelEntropies(image: i, tap: 4)))
            XCTAssertEqual(Array(loaded.store!.probabilities(image: i)), Array(result.store!.probabilities(image: i)))
        }
        // An edited digit in the JSON header (a range) is caught by the digest over the whole entry.
        let file = cache.path(for: key)
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: file))
        let pattern = Array("\"ranges\"".utf8)
        let at = try XCTUnwrap((0..<(bytes.count - pattern.count)).first { i in pattern.indices.allSatisfy { bytes[i + $0] == pattern[$0] } })
        let digit = try XCTUnwrap((at..<min(bytes.count, at + 200)).first { (48...57).contains(bytes[$0]) })
        bytes[digit] = bytes[digit] == 57 ? 56 : bytes[digit] + 1
        try bytes.write(to: URL(fileURLWithPath: file))
        XCTAssertNil(cache.load(key: key, input: analyzer.input, settings: analyzer.settings))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        // A flipped bit in the histograms.
        try cache.save(result, key: key)
        bytes = try XCTUnwrap(FileManager.default.contents(atPath: file))
        bytes[bytes.count / 3] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: file))
        XCTAssertNil(cache.load(key: key, input: analyzer.input, settings: analyzer.settings))
    }

    /// The engine analyses a many-class model on demand by itself, and its
    /// result equals a direct run; an impossible memory budget is refused
    /// with a message, not attempted.
    func testEngineChoosesOnDemandAndRefusesWhatCannotFit() throws {
        let (analyzer, ranges) = try setup(layout: .onDemand)
        // 120 classes of this small model are kept (a few MB); force the point with a budget.
        let plan = try MemoryPlan(input: analyzer.input, settings: analyzer.settings, batchSize: 7, threads: 2, snapshots: true,
                                  budget: 1 << 40)
        XCTAssertEqual(plan.layout, .kept)
        let tight = try MemoryPlan(input: analyzer.input, settings: analyzer.settings, batchSize: 7, threads: 2, snapshots: true,
                                   budget: plan.totalBytes - 1)
        XCTAssertEqual(tight.layout, .onDemand, "adapts when kept does not fit")
        XCTAssertLessThan(tight.totalBytes, plan.totalBytes)
        let engine = AnalysisEngine(input: analyzer.input, batchSize: 7, threads: 2, cache: nil, memoryBudget: tight.totalBytes)
        let snapshot = try XCTUnwrap(engine.wait(for: engine.start(AnalysisRequest()), timeout: 60))
        XCTAssertNil(snapshot.error)
        XCTAssertEqual(snapshot.histograms?.layout, .onDemand)
        XCTAssertEqual(snapshot.memory?.layout, .onDemand)
        let direct = try analyzer.run(ranges: ranges, keepPerImage: false).summary(network: analyzer.network)
        assertSameSummary(try XCTUnwrap(snapshot.summary), direct, 1e-12)
        XCTAssertEqual(snapshot.ranges, ranges)

        let refused = AnalysisEngine(input: analyzer.input, batchSize: 7, threads: 2, cache: nil, memoryBudget: 1 << 20)
        let failed = try XCTUnwrap(refused.wait(for: refused.start(AnalysisRequest()), timeout: 60))
        let message = try XCTUnwrap(failed.error)
        XCTAssertTrue(message.contains("wide-120.onnx") && message.contains("memory"), message)
        XCTAssertNil(failed.histograms)
    }
}
