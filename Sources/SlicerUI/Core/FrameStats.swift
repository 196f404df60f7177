// Frame-time statistics over a sliding window, for a debug overlay and the benchmark.

/// Timings of one frame, in seconds.
public struct FrameTiming: Sendable, Hashable {
    /// Building the UI (the app's frame closure, layout, draw list).
    public var build: Double
    /// Turning the draw data into backend draw calls and executing them.
    public var render: Double
    /// Presenting (includes waiting for vertical sync).
    public var present: Double
    public var batches: Int
    public var triangles: Int

    public init(build: Double, render: Double, present: Double, batches: Int = 0, triangles: Int = 0) {
        self.build = build; self.render = render; self.present = present
        self.batches = batches; self.triangles = triangles
    }
}

public struct FrameStats: Sendable {
    public let capacity: Int
    private var samples: [FrameTiming] = []
    private var next = 0
    /// Frames recorded since creation (not limited by `capacity`).
    public private(set) var totalFrames = 0

    public init(capacity: Int = 240) { self.capacity = max(1, capacity) }

    public mutating func record(_ timing: FrameTiming) {
        totalFrames += 1
        if samples.count < capacity {
            samples.append(timing)
        } else {
            samples[next] = timing
            next = (next + 1) % capacity
        }
    }

    public var count: Int { samples.count }
    public var latest: FrameTiming? {
        guard !samples.isEmpty else { return nil }
        return samples.count < capacity ? samples.last : samples[(next + capacity - 1) % capacity]
    }

    public func mean(_ field: KeyPath<FrameTiming, Double>) -> Double {
        samples.isEmpty ? 0 : samples.reduce(0) { $0 + $1[keyPath: field] } / Double(samples.count)
    }

    /// The `p`-quantile (0…1) of a field, by nearest rank.
    public func percentile(_ field: KeyPath<FrameTiming, Double>, _ p: Double) -> Double {
        guard !samples.isEmpty else { return 0 }
        let sorted = samples.map { $0[keyPath: field] }.sorted()
        let rank = Int((p * Double(sorted.count - 1)).rounded())
        return sorted[max(0, min(sorted.count - 1, rank))]
    }

    /// "build 0.4 ms · render 2.1 ms (p95 2.8) · 7 batches" for an overlay.
    public var summary: String {
        guard let latest else { return "no frames" }
        return "build \(formatNumber(mean(\.build) * 1000, decimals: 2)) ms · render \(formatNumber(mean(\.render) * 1000, decimals: 2)) ms"
            + " (p95 \(formatNumber(percentile(\.render, 0.95) * 1000, decimals: 2))) · \(latest.batches) batches"
    }
}
