import CMallocStats
import Foundation
import XCTest
import SlicerData
@testable import SlicerEngine
@testable import SlicerInfo

/// The memory estimate against what the allocator reports (glibc's
/// `mallinfo2`: bytes in use in every arena plus mapped blocks, through
/// CMallocStats) for the structures an analysis allocates, and for a whole run.
final class MemoryPlanTests: XCTestCase {
    static func allocated() -> Int { Int(cnns_heap_bytes_in_use()) }

    /// Bytes allocated by `make` (and still held by what it returns).
    func measure<T>(_ make: () throws -> T) rethrows -> (T, Int) {
        let before = MemoryPlanTests.allocated()
        let value = try make()
        return (value, MemoryPlanTests.allocated() - before)
    }

    /// Within 3 % and 64 kB (malloc's and the arrays' headers).
    func assertEstimate(_ estimate: Int, measured: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssert(abs(estimate - measured) <= measured / 33 + 65_536,
                  "\(what): estimated \(estimate) bytes, allocated \(measured)", file: file, line: line)
    }

    func testHistogramSetAndAccumulatorEstimates() throws {
        for (network, layout) in [(try wideNetwork(classes: 200), ClassChannelLayout.kept), (try wideNetwork(classes: 200), .onDemand),
                                  (try InfoFixtures.network("residual_cnn"), .kept), (try InfoFixtures.network("residual_cnn"), .onDemand)] {
            let taps = network.taps, k = network.classCount
            for bins in [64, 256] {
                let (set, setBytes) = measure {
                    HistogramSet(tapShapes: taps.map { ($0.channels, $0.valuesPerChannel) }, classCount: k, bins: bins, layout: layout)
                }
                assertEstimate(MemoryPlan.histogramSetBytes(taps: taps, classCount: k, bins: bins, layout: layout,
                                                            openSlots: layout == .kept ? k + 1 : 0),
                               measured: setBytes, "\(network.path) \(layout) set, \(bins) bins")
                XCTAssertEqual(set.byteCount, MemoryPlan.histogramSetBytes(taps: taps, classCount: k, bins: bins, layout: layout,
                                                                            openSlots: layout == .kept ? k + 1 : 0))
                let settings = AnalysisSettings(bins: bins)
                let ranges = taps.map { TapRange.uniform(0, 1, channels: $0.channels) }
                let binning = TapBinning(network: network, ranges: ranges, bins: bins)
                let (accumulator, bytes) = measure {
                    TapAccumulator(network: network, settings: settings, ranges: ranges, classCount: k, store: nil,
                                   layout: layout, binning: binning)
                }
                assertEstimate(MemoryPlan.accumulatorBytes(taps: taps, classCount: k, bins: bins, layout: layout)
                                   + MemoryPlan.histogramSetBytes(taps: taps, classCount: k, bins: bins, layout: layout,
                                                                  openSlots: layout == .kept ? k + 1 : 0),
                               measured: bytes, "\(network.path) \(layout) accumulator, \(bins) bins")
                withExtendedLifetime(accumulator) {}
                withExtendedLifetime(set) {}
            }
        }
    }

    func testBinningStoreAndExecutorEstimates() throws {
        let network = try InfoFixtures.network("residual_cnn")
        let taps = network.taps
        for range in [RangeMode.layer, .channel] {
            let ranges = taps.map { tap in
                TapRange(lo: (0..<tap.channels).map { Float($0) * -0.01 }, hi: (0..<tap.channels).map { 1 + Float($0) * (range == .channel ? 0.01 : 0) })
            }
            let uniform = range == .layer ? taps.map { TapRange.uniform(-0.5, 1, channels: $0.channels) } : ranges
            let (binning, bytes) = measure { TapBinning(network: network, ranges: uniform, bins: 64) }
            assertEstimate(MemoryPlan.binningBytes(taps: taps, bins: 64, perChannel: range == .channel), measured: bytes, "binning \(range)")
            withExtendedLifetime(binning) {}
        }
        let channels = taps.reduce(0) { $0 + $1.channels }
        let (store, storeBytes) = try measure { try PerImageStore(imageCount: 300, tapChannels: taps.map(\.channels), classCount: 10) }
        assertEstimate(PerImageStore.residentByteCount(imageCount: 300, channels: channels, taps: taps.count, classCount: 10),
                       measured: storeBytes, "per-image store")
        withExtendedLifetime(store) {}
        for capacity in [1, 8, 64] {
            let exact = try network.executorByteCount(capacity: capacity)   // plans (and packs weights) first
            let (executor, bytes) = try measure { try network.makeExecutor(capacity: capacity) }
            assertEstimate(exact, measured: bytes, "executor of \(capacity)")
            let estimate = network.estimatedExecutorByteCount(capacity: capacity)
            XCTAssert(estimate >= exact * 9 / 10 && estimate <= exact * 11 / 10 + 65_536,
                      "estimated executor of \(capacity): \(estimate), planned \(exact)")
            withExtendedLifetime(executor) {}
        }
    }

    /// A whole run: the peak of allocated bytes while it runs (sampled) lies
    /// within the plan's parts that it allocates, and not far below them
    /// (on this machine: kept 268.8 MB measured for 268.3 MB estimated,
    /// on demand 10.4 MB for 11.5 MB, and 7.8 MB on a loaded CI machine).
    func testPeakOfARunIsWithinTheEstimate() throws {
        let network = try wideNetwork(classes: 200)
        let images = try makeImages(shape: network.inputShape, count: 400, seed: 5, classes: 200) { ($0 * 7) % 200 }
        let input = try ModelInput(network: network, images: images)
        for layout in [ClassChannelLayout.kept, .onDemand] {
            let settings = AnalysisSettings(bins: 128)
            let plan = try MemoryPlan(input: input, settings: settings, batchSize: 16, threads: 2, layout: layout,
                                      snapshots: true, budget: 1 << 40)
            let analyzer = try Analyzer(input: input, settings: settings, batchSize: 16, threads: 2, layout: layout)
            let ranges = try analyzer.calibrate()
            _ = try network.executorByteCount(capacity: 16)
            let base = MemoryPlanTests.allocated()
            final class Peak: @unchecked Sendable {
                // `value` and `stop`: the sampler thread writes, the test reads after it stopped.
                // `latest`: the newest snapshot, kept as the engine keeps it (under `lock`).
                var value = 0
                var stop = false
                let lock = NSLock()
                var latest: HistogramSet?
            }
            let peak = Peak()
            let sampler = Thread {
                while !peak.stop { peak.value = max(peak.value, MemoryPlanTests.allocated()); usleep(200) }
            }
            sampler.start()
            // Snapshots as often as the engine allows itself (a twentieth of the time), one at a time.
            let result = try analyzer.run(ranges: ranges, keepPerImage: true, partialInterval: 0.001) { set, _ in
                peak.lock.withLock { peak.latest = set }
            }
            peak.value = max(peak.value, MemoryPlanTests.allocated())
            peak.stop = true
            while !sampler.isFinished { usleep(100) }
            withExtendedLifetime(result) {}
            let measured = peak.value - base
            // The executors were made by the calibration, before `base`.
            let expected = ["binning", "workers", "results", "per-image"].reduce(0) { $0 + plan.bytes(of: $1) }
            XCTAssertLessThanOrEqual(measured, expected + expected / 10 + (1 << 20), "\(layout): peak \(measured), estimate \(expected)")
            // The lower bound guards against an estimate far above what a run needs. The
            // sampler sees the kept layout's tables, allocated once for the whole run, but
            // on demand the peak is the moment the open class blocks and a snapshot overlap,
            // which a 200 µs sampler on a loaded machine can miss (CI saw 68 % of the
            // estimate): half of it is the bound there.
            let floor = layout == .kept ? expected * 3 / 4 : expected / 2
            XCTAssertGreaterThanOrEqual(measured, floor, "\(layout): peak \(measured), estimate \(expected)")
        }
    }

    func testAutomaticChoicesAndTheRefusal() throws {
        let small = try InfoFixtures.network("plain_cnn")
        XCTAssertEqual(MemoryPlan.automaticLayout(network: small, bins: 64, threads: 2), .kept)
        XCTAssertEqual(MemoryPlan.automaticBatchSize(network: small), 64)
        let wide = try wideNetwork(classes: 100_000)
        XCTAssertEqual(MemoryPlan.automaticLayout(network: wide, bins: 64, threads: 2), .onDemand)
        let images = try makeImages(shape: small.inputShape, count: 50, seed: 1) { $0 % 10 }
        let input = try ModelInput(network: small, images: images)
        let plan = try MemoryPlan(input: input, settings: AnalysisSettings(), batchSize: 64, threads: 2, budget: 1 << 20)
        XCTAssertFalse(plan.fits)
        XCTAssertThrowsError(try plan.check(images: 50, file: small.path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(small.path) && text.contains("--memory-limit"), text)
        }
        XCTAssertTrue(plan.json.contains("\"estimated_bytes\": \(plan.totalBytes)"))
    }
}
