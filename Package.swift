// swift-tools-version:6.0
import Foundation
import PackageDescription

// Release builds of the numeric modules skip bounds checks on the hot loops;
// the kernels index through raw pointers whose extents are checked once per call.
// Where the building machine has AVX2 (every x86-64 CPU since 2013), the loops
// are compiled for it: the binary is built where it runs (`make run`), and
// 8-wide vectors roughly double the binning and elementwise kernels.
#if arch(x86_64)
let hasAVX2 = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" avx2") ?? false
#else
let hasAVX2 = false
#endif
let fast: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + (hasAVX2 ? ["-target-cpu", "haswell"] : []), .when(configuration: .release)),
]

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
        .target(name: "SlicerEngine", dependencies: ["COpenBLAS"], swiftSettings: fast),
        .target(name: "SlicerData", dependencies: ["CZlib", "CSDL2"], swiftSettings: fast),
        .target(name: "SlicerInfo", dependencies: ["SlicerEngine", "SlicerData"], swiftSettings: fast),
        .target(name: "SlicerUI", dependencies: ["CSDL2"], swiftSettings: fast),
        .executableTarget(name: "SlicerUIBench", dependencies: ["SlicerUI"], swiftSettings: fast),
        .target(name: "SlicerApp", dependencies: ["SlicerUI", "SlicerInfo", "SlicerEngine", "SlicerData"], swiftSettings: fast),
        .executableTarget(
            name: "cnnslicer",
            dependencies: [
                "SlicerEngine", "SlicerData", "SlicerInfo", "SlicerUI", "SlicerApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fast),
        .testTarget(name: "SlicerEngineTests", dependencies: ["SlicerEngine", "SlicerData"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SlicerDataTests", dependencies: ["SlicerData", "SlicerEngine"]),
        .testTarget(name: "SlicerInfoTests", dependencies: ["SlicerInfo", "SlicerEngine", "SlicerData"]),
        .testTarget(name: "SlicerCARTests", dependencies: ["SlicerInfo", "SlicerEngine", "SlicerData"]),
        .testTarget(name: "SlicerAppTests", dependencies: ["SlicerApp", "SlicerUI", "SlicerInfo", "SlicerEngine", "SlicerData"]),
        .testTarget(name: "SlicerUITests", dependencies: ["SlicerUI"], resources: [.copy("Reference")]),
    ]
)
