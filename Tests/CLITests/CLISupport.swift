import Foundation
import XCTest

// Runs the real `cnnslicer` binary, as a user does, on files in a scratch
// folder: the command-line tests and the fuzz campaign observe exit status,
// standard output and error, and what is left in the folder afterwards.

/// What one run of the binary did.
struct CommandResult {
    let arguments: [String]
    /// Exit status, or nil when a signal ended the process.
    let status: Int32?
    /// The signal that ended the process (SIGKILL after a timeout included).
    let signal: Int32?
    let timedOut: Bool
    let stdout: String
    let stderr: String
    let seconds: Double

    var stderrLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: true) }

    var summary: String {
        let how = timedOut ? "timed out" : signal.map { "killed by signal \($0)" } ?? "exit \(status ?? -1)"
        return "cnnslicer \(arguments.joined(separator: " ")): \(how)\nstderr: \(stderr.prefix(2000))"
    }
}

enum CLI {
    /// The binary `swift build --build-tests` put beside the test bundle, or
    /// `$CNNSLICER_BINARY`.
    static let binary: String? = {
        if let path = ProcessInfo.processInfo.environment["CNNSLICER_BINARY"], FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("cnnslicer").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }()

    static func requireBinary() throws -> String {
        guard let binary else {
            throw XCTSkip("no cnnslicer binary beside the tests (build it with `swift build --build-tests`, or set CNNSLICER_BINARY)")
        }
        return binary
    }

    /// Runs the binary in `directory` and waits at most `timeout` seconds
    /// (then kills it: a hang is a finding, not a stuck test run).
    ///
    /// The environment keeps the analysis cache inside `directory` unless
    /// `environment` says otherwise.
    static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:],
                    timeout: Double = 120) throws -> CommandResult {
        let binary = try requireBinary()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        env["XDG_CACHE_HOME"] = directory + "/.cache-home"
        env["CNNSLICER_NO_CACHE"] = nil
        for (key, value) in environment { env[key] = value.isEmpty ? nil : value }
        process.environment = env
        // Output goes to files, not pipes: a pipe that nobody drains would block
        // a chatty process and look like a hang.
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("cnnslicer-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: capture, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: capture) }
        let outURL = capture.appendingPathComponent("out"), errURL = capture.appendingPathComponent("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let started = Date()
        try process.run()
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { process.waitUntilExit(); finished.signal() }
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
        }
        try out.close(); try err.close()
        let signalled = process.terminationReason == .uncaughtSignal
        return CommandResult(arguments: arguments,
                             status: signalled ? nil : process.terminationStatus,
                             signal: signalled ? process.terminationStatus : nil, timedOut: timedOut,
                             stdout: String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self),
                             stderr: String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self),
                             seconds: Date().timeIntervalSince(started))
    }
}

/// The committed seed inputs (tools/make_fuzz_seeds.py) and models.
enum Seeds {
    static var root: String { Bundle.module.resourceURL!.appendingPathComponent("Seeds").path }

    /// A small real export (PyTorch 1.13, BatchNormalization kept, labels in its metadata): 1×28×28 in, 10 classes.
    static var model: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SlicerEngineTests/Fixtures/plain_cnn.onnx").path
    }

    static func path(_ name: String) -> String { root + "/" + name }
}

/// A fresh folder, removed by `remove()`.
struct Scratch {
    let path: String

    init(_ label: String = "cli") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("cnnslicer-\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Copies a seed (file or folder) in and returns its new path.
    func copy(_ source: String, as name: String) throws -> String {
        let target = path + "/" + name
        try FileManager.default.copyItem(atPath: source, toPath: target)
        return target
    }

    /// Names in the folder other than those in `expected` and the cache home,
    /// such as temporary files left by an interrupted write.
    func leftovers(expected: Set<String>) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
            .filter { !expected.contains($0) && $0 != ".cache-home" }.sorted()
    }
}

/// Asserts the shape every failure of the command line must have: exit status
/// 1, and exactly one line on standard error, `cnnslicer: error: …`, mentioning
/// each of `words`.
func assertOneLineError(_ result: CommandResult, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(result.status, 1, result.summary, file: file, line: line)
    XCTAssertEqual(result.stderrLines.count, 1, result.summary, file: file, line: line)
    XCTAssert(result.stderr.hasPrefix("cnnslicer: error: "), result.summary, file: file, line: line)
    for word in words { XCTAssert(result.stderr.contains(word), "should mention \(word): \(result.summary)", file: file, line: line) }
}
