import COpenBLAS
import Foundation

/// Which OpenBLAS kernels this process runs, and a better choice where the
/// library's own detection falls short.
///
/// Debian's OpenBLAS 0.3.21 predates AMD Zen 5: on such a CPU it falls back to
/// its AVX2 ("Haswell") kernels although the CPU has full AVX-512, and SGEMM —
/// most of a convolution — then runs at about two thirds of the speed of the
/// AVX-512 ("SkylakeX") kernels. The choice is made when the library is loaded,
/// before any of our code runs, so the only way to change it is the documented
/// `OPENBLAS_CORETYPE` variable and a fresh start of the process
/// (`restartWithBetterKernelsIfNeeded`).
public enum BLASKernels {
    /// The kernel family OpenBLAS uses in this process.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The `OPENBLAS_CORETYPE` to ask for, or nil when the library's choice is
    /// already right, the user chose one, or the CPU lacks what the better kernels need.
    ///
    /// - Parameters:
    ///   - cpuFlags: the `flags` of /proc/cpuinfo.
    ///   - coreName: what OpenBLAS picked by itself.
    ///   - environment: the process environment (a user's OPENBLAS_CORETYPE wins).
    public static func preferredCoreType(cpuFlags: Set<String>, coreName: String,
                                         environment: [String: String]) -> String? {
        if environment["OPENBLAS_CORETYPE"] != nil { return nil }
        // SkylakeX kernels use AVX-512 F, BW, DQ and VL.
        let needed: Set<String> = ["avx512f", "avx512bw", "avx512dq", "avx512vl"]
        guard needed.isSubset(of: cpuFlags) else { return nil }
        // Only replace the AVX2 fallbacks; an AVX-512 family picked by the
        // library (SkylakeX, Cooperlake, Sapphire Rapids) is kept.
        let avx2Fallbacks: Set<String> = ["haswell", "zen"]
        return avx2Fallbacks.contains(coreName.lowercased()) ? "SKYLAKEX" : nil
    }

    /// The CPU feature flags of the first processor in /proc/cpuinfo (empty elsewhere).
    public static func cpuFlags(cpuinfo path: String = "/proc/cpuinfo") -> Set<String> {
        // Read line by line with stdio: /proc files report a size of 0, which
        // defeats readers that size their buffer from stat().
        guard let file = fopen(path, "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            guard text.hasPrefix("flags"), let colon = text.firstIndex(of: ":") else { continue }
            return Set(text[text.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        }
        return []
    }

    /// Starts this program again with `OPENBLAS_CORETYPE` set when OpenBLAS chose
    /// AVX2 kernels on a CPU with AVX-512 (see the type's comment). Returns
    /// normally when nothing is to be done or the restart fails; never returns
    /// when it succeeds. Call first thing in `main`, before any thread starts.
    /// `CNNSLICER_KEEP_BLAS=1` keeps the library's choice.
    public static func restartWithBetterKernelsIfNeeded() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["CNNSLICER_KEEP_BLAS"] == nil,
              let core = preferredCoreType(cpuFlags: cpuFlags(), coreName: coreName, environment: environment)
        else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        // /proc/self/exe is this very binary, wherever it was started from.
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Still here: the restart failed; carry on with the kernels we have.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
