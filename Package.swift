// swift-tools-version:6.0
import PackageDescription

// Release builds of the numeric modules skip bounds checks on the hot loops;
// the kernels index through raw pointers whose extents are checked once per call.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

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
        .executableTarget(
            name: "cnnslicer",
            dependencies: [
                "SlicerEngine", "SlicerData",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fast),
        .testTarget(name: "SlicerEngineTests", dependencies: ["SlicerEngine", "SlicerData"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SlicerDataTests", dependencies: ["SlicerData", "SlicerEngine"]),
    ]
)
