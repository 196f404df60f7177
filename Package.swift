// swift-tools-version:6.0
import Foundation
import PackageDescription

// The vector unit the Swift kernels are compiled for. The binary is built where
// it runs (`make run`), so by default the building machine's is detected:
// 16-wide AVX-512 on AMD Zen 4/5, else 8-wide AVX2 (every x86-64 CPU since
// 2013), else the baseline. Binning and the elementwise kernels roughly double
// from baseline to AVX2 and gain again with 512-bit vectors on Zen 5.
//
// CNNSLICER_TARGET_CPU=baseline|haswell|znver4|znver5|native forces one, so that
// the tests can be run for each code path a user's machine may get
// (`make test-targets`, each in its own --scratch-path). Forcing baseline or
// haswell also switches off the C kernels' run-time AVX-512 paths (CBinning,
// CInt8), so the build runs what a machine without AVX-512 runs.
enum VectorTarget: String, CaseIterable {
    case baseline, haswell, znver4, znver5, native

    /// The building machine's, from /proc/cpuinfo.
    static func detected() -> VectorTarget {
        #if arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return .baseline }
        let lines = info.split(separator: "\n")
        let flags = Set(lines.first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let family = lines.first { $0.hasPrefix("cpu family") }?.split(separator: ":").last
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 0
        let amd = info.contains("AuthenticAMD")
        let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "avx512vbmi", "avx512_vnni"].allSatisfy(flags.contains)
        if amd && avx512 && family == 26 && flags.contains("avx512_vp2intersect") { return .znver5 }
        if amd && avx512 && family == 25 { return .znver4 }
        if flags.contains("avx2") && flags.contains("fma") { return .haswell }
        #endif
        return .baseline
    }

    static let chosen: VectorTarget = {
        guard let name = ProcessInfo.processInfo.environment["CNNSLICER_TARGET_CPU"], !name.isEmpty else { return detected() }
        guard let target = VectorTarget(rawValue: name) else {
            fatalError("CNNSLICER_TARGET_CPU=\(name): expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return target
    }()

    /// True when the build was told to stand in for a machine without AVX-512.
    static var forcedWithoutAVX512: Bool {
        ProcessInfo.processInfo.environment["CNNSLICER_TARGET_CPU"] != nil && [.baseline, .haswell].contains(chosen)
    }

    var swiftFlags: [String] { self == .baseline ? [] : ["-target-cpu", rawValue] }
}
func targetCPU() -> [String] { VectorTarget.chosen.swiftFlags }
let cKernelDefines: [CSetting] = VectorTarget.forcedWithoutAVX512 ? [.define("CNNS_NO_AVX512")] : []

// Release builds: -Ounchecked (no overflow or bounds checks) only for the
// engine's numeric kernels, executor and planner, whose loops index through raw
// pointers with extents checked once per call; it is worth about 5–10% of
// inference on small models (BENCHMARKS.md, "Checked builds"). Every module that
// reads files — the ONNX/protobuf reader (SlicerONNX), the dataset readers
// (SlicerData), the partial and cache decoding (SlicerInfo), the command line —
// keeps Swift's checks (-O): on a damaged file a missed check must be a trap,
// never a silent out-of-bounds read or a wrapped length. Measured, the checks
// cost the analysis nothing (its hot loop is C, CBinning).
let checked: [SwiftSetting] = [
    .unsafeFlags(["-O", "-wmo"] + targetCPU(), .when(configuration: .release)),
]
let kernels: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + targetCPU(), .when(configuration: .release)),
]
// The engine's kernels are optimised in debug builds too, for the same vector
// unit: unoptimised SIMD code is two orders of magnitude slower, a fused
// multiply-add without the FMA instruction is a library call per lane, and the
// tests run real models through them.
let engine: [SwiftSetting] = kernels + [.unsafeFlags(["-O"] + targetCPU(), .when(configuration: .debug))]

let package = Package(
    name: "CNNSlicer",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "cnnslicer", targets: ["cnnslicer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSDL2", path: "Sources/CSDL2", pkgConfig: "sdl2",
            providers: [.apt(["libsdl2-dev", "libsdl2-ttf-dev", "libsdl2-image-dev"])]),
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        // Exact 8-bit products (AVX-512 VNNI where present) for CAR's bounded
        // shortcut; optimised in debug builds too, as the engine is.
        .target(name: "CInt8", cSettings: [.unsafeFlags(["-O2"])] + cKernelDefines),
        // Cache hints for the product's micro-kernel (static inline, header only).
        .target(name: "CPrefetch"),
        // No contraction into FMA: the reference bin must round like SlicerInfo's Swift one.
        .target(name: "CBinning", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])] + cKernelDefines),
        // The ONNX import: protobuf wire format, model, graph and tensors, and the
        // errors of loading a model. Its own module so that it keeps Swift's checks
        // in release builds while the engine's kernels drop them (see above).
        .target(name: "SlicerONNX", swiftSettings: checked),
        .target(name: "SlicerEngine", dependencies: ["SlicerONNX", "COpenBLAS", "CInt8", "CPrefetch"], swiftSettings: engine),
        .target(name: "SlicerData", dependencies: ["CZlib", "CSDL2"], swiftSettings: checked),
        .target(name: "SlicerInfo", dependencies: ["SlicerEngine", "SlicerData", "CBinning"], swiftSettings: checked),
        .target(name: "SlicerUI", dependencies: ["CSDL2"], swiftSettings: checked),
        .executableTarget(name: "SlicerUIBench", dependencies: ["SlicerUI"], swiftSettings: checked),
        .target(name: "SlicerApp", dependencies: ["SlicerUI", "SlicerInfo", "SlicerEngine", "SlicerData"], swiftSettings: checked),
        .executableTarget(
            name: "cnnslicer",
            dependencies: [
                "SlicerEngine", "SlicerData", "SlicerInfo", "SlicerUI", "SlicerApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: checked),
        .testTarget(name: "SlicerEngineTests", dependencies: ["SlicerEngine", "SlicerONNX", "SlicerData"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SlicerDataTests", dependencies: ["SlicerData", "SlicerEngine"]),
        // glibc's allocator statistics, for the tests of the analysis's memory estimate.
        .target(name: "CMallocStats", path: "Tests/CMallocStats"),
        .testTarget(name: "SlicerInfoTests", dependencies: ["SlicerInfo", "SlicerEngine", "SlicerONNX", "SlicerData", "CBinning", "CMallocStats"]),
        .testTarget(name: "SlicerCARTests", dependencies: ["SlicerInfo", "SlicerEngine", "SlicerData", "CInt8"]),
        .testTarget(name: "SlicerAppTests", dependencies: ["SlicerApp", "SlicerUI", "SlicerInfo", "SlicerEngine", "SlicerData", "SlicerONNX"]),
        .testTarget(name: "SlicerUITests", dependencies: ["SlicerUI"], resources: [.copy("Reference")]),
        // The real binary on real files: bad arguments, bad inputs, and the bounded
        // fuzz campaign (`make fuzz` runs it longer). Runs `cnnslicer` as a process.
        .testTarget(name: "CLITests", resources: [.copy("Seeds")]),
    ]
)
