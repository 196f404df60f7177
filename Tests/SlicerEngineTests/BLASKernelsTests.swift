import XCTest
@testable import SlicerEngine

final class BLASKernelsTests: XCTestCase {
    private let avx512: Set<String> = ["fma", "avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"]

    func testAVX2FallbackOnAnAVX512CPUAsksForSkylakeX() {
        XCTAssertEqual(BLASKernels.preferredCoreType(cpuFlags: avx512, coreName: "Haswell", environment: [:]), "SKYLAKEX")
        XCTAssertEqual(BLASKernels.preferredCoreType(cpuFlags: avx512, coreName: "Zen", environment: [:]), "SKYLAKEX")
    }

    func testKeepsWhatIsAlreadyRightOrChosen() {
        // The library's own AVX-512 choice stays.
        XCTAssertNil(BLASKernels.preferredCoreType(cpuFlags: avx512, coreName: "SkylakeX", environment: [:]))
        XCTAssertNil(BLASKernels.preferredCoreType(cpuFlags: avx512, coreName: "Cooperlake", environment: [:]))
        // A user's (or the machine's) OPENBLAS_CORETYPE wins, whatever it says.
        XCTAssertNil(BLASKernels.preferredCoreType(cpuFlags: avx512, coreName: "Haswell", environment: ["OPENBLAS_CORETYPE": "Haswell"]))
        // Without the whole AVX-512 subset the kernels need, Haswell is right.
        XCTAssertNil(BLASKernels.preferredCoreType(cpuFlags: ["fma", "avx2", "avx512f"], coreName: "Haswell", environment: [:]))
    }

    func testCPUFlagsAreReadFromACpuinfoFile() throws {
        let path = NSTemporaryDirectory() + "cpuinfo-\(getpid())"
        try "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f\nbugs\t\t: none\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(BLASKernels.cpuFlags(cpuinfo: path), ["fpu", "avx2", "avx512f"])
        XCTAssertEqual(BLASKernels.cpuFlags(cpuinfo: path + "-missing"), [])
    }
}
