import Foundation
import XCTest

/// A mutation-fuzzing campaign over every input format the program reads,
/// running the real binary on each damaged file.
///
/// Each case copies a seed (tools/make_fuzz_seeds.py) into a fresh folder,
/// damages one file with one to three byte-level mutations (bit flips,
/// interesting values, boundary integers, truncation, deletion, insertion,
/// duplication; number edits for JSON), runs the command that reads it, and
/// checks what a careful user may expect:
///
/// - no crash (a signal) and no hang (a timeout);
/// - exit status 0 or 1, and on 1 exactly one line `cnnslicer: error: …`
///   naming the damaged file (or its folder);
/// - on 0 a complete output, on 1 no output at all, and never a temporary file
///   left behind;
/// - no lie: where damage is detectable — a digest (partials, cache entries), a
///   CRC (gzip, PNG), or a file size its header fixes (IDX, .npy) — an
///   exit status of 0 means the numbers are exactly those of the undamaged
///   seed (the damage was harmless, e.g. in JSON whitespace or a gzip header's
///   time stamp). Formats without any check (pixel bytes of IDX or CIFAR, ONNX
///   weights, JPEG data, pickles, which Python itself loads after many kinds of
///   damage) may give other numbers: that is the data, not a lie.
///
/// The bounded run in `make test` lasts `CNNSLICER_FUZZ_SECONDS` (default 60)
/// with a fixed seed, so that CI is reproducible; `make fuzz` runs longer with
/// a new seed each time. Findings are kept under the system's temporary folder
/// (the failure message says where) with the damaged file and the command.
final class FuzzTests: XCTestCase {
    func testMutatedInputsNeverCrashHangOrLie() throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["CNNSLICER_FUZZ_SECONDS"].flatMap(Double.init) ?? 60
        let seed = environment["CNNSLICER_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_261_204
        let campaign = try FuzzCampaign(seed: seed)
        defer { campaign.cleanUp() }
        let report = try campaign.run(seconds: seconds, workers: 2)
        print("fuzz: seed \(seed), \(report.cases) cases in \(Int(seconds)) s: " +
              report.perTarget.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") +
              "; outcomes: " + report.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        XCTAssertGreaterThan(report.cases, FuzzTarget.all.count, "the campaign ran too few cases to mean anything")
        if !report.findings.isEmpty {
            XCTFail("fuzz: \(report.findings.count) finding(s), kept in \(campaign.findingsDirectory); seed \(seed):\n" +
                    report.findings.prefix(12).joined(separator: "\n"))
        }
    }
}

/// One input format and the command that reads it.
struct FuzzTarget {
    enum Check {
        /// Damage cannot be told from other data: only crashes, hangs, error
        /// lines and outputs are checked.
        case shape
        /// Damage that changes the file's length is detectable (declared sizes);
        /// other damage may be data.
        case length
        /// Every damage is detectable (a digest or CRC): exit 0 must give the seed's numbers.
        case strict
    }

    let name: String
    /// Seed files or folders copied into each case's folder, by their name there.
    let copies: [(seed: String, as: String)]
    /// The file (relative to the case folder) that is damaged.
    let damaged: String
    /// Arguments, relative to the case folder.
    let arguments: [String]
    /// The command's output file, relative to the case folder.
    let output: String
    let check: Check
    /// Mutations for text formats (number and character edits) besides the byte ones.
    var isText = false

    static let model = "model.onnx"

    static var all: [FuzzTarget] {
        func analyze(_ data: String, _ more: [String] = []) -> [String] {
            ["analyze", "--model", model, "--data", data, "--threads", "1", "--no-cache", "--quiet", "--resize", "bilinear",
             "--out", "out.json"] + more
        }
        let base = [(seed: Seeds.model, as: model)]
        return [
            FuzzTarget(name: "onnx", copies: base + [(Seeds.path("input.npy"), "input.npy")], damaged: model,
                       arguments: ["infer", "--model", model, "--input", "input.npy", "--output", "out.npy"],
                       output: "out.npy", check: .shape),
            FuzzTarget(name: "idx-images", copies: base + [(Seeds.path("idx"), "data")],
                       damaged: "data/t10k-images-idx3-ubyte", arguments: analyze("data"), output: "out.json", check: .length),
            FuzzTarget(name: "idx-labels", copies: base + [(Seeds.path("idx"), "data")],
                       damaged: "data/t10k-labels-idx1-ubyte", arguments: analyze("data"), output: "out.json", check: .length),
            FuzzTarget(name: "idx-gz", copies: base + [(Seeds.path("idx-gz"), "data")],
                       damaged: "data/t10k-images-idx3-ubyte.gz", arguments: analyze("data"), output: "out.json", check: .strict),
            FuzzTarget(name: "cifar-bin", copies: base + [(Seeds.path("cifar-bin"), "data")],
                       damaged: "data/test_batch.bin", arguments: analyze("data"), output: "out.json", check: .shape),
            FuzzTarget(name: "cifar-pickle", copies: base + [(Seeds.path("cifar-py"), "data")],
                       damaged: "data/cifar-10-batches-py/test_batch", arguments: analyze("data"), output: "out.json",
                       check: .shape),
            FuzzTarget(name: "cifar-meta", copies: base + [(Seeds.path("cifar-py"), "data")],
                       damaged: "data/cifar-10-batches-py/batches.meta", arguments: analyze("data"), output: "out.json",
                       check: .shape),
            FuzzTarget(name: "npy", copies: base + [(Seeds.path("input.npy"), "input.npy")], damaged: "input.npy",
                       arguments: ["infer", "--model", model, "--input", "input.npy", "--output", "out.npy"],
                       output: "out.npy", check: .length),
            FuzzTarget(name: "png", copies: base + [(Seeds.path("images"), "data")], damaged: "data/0/image_0.png",
                       arguments: analyze("data"), output: "out.json", check: .strict),
            FuzzTarget(name: "jpeg", copies: base + [(Seeds.path("images"), "data")], damaged: "data/1/image_3.jpg",
                       arguments: analyze("data"), output: "out.json", check: .shape),
            // Made by the campaign from the seeds (`FuzzCampaign.init`).
            // Partials are binary (a JSON header, binary histograms, a digest).
            FuzzTarget(name: "partial", copies: [], damaged: "p1.json",
                       arguments: ["merge", "p1.json", "p2.json", "--out", "out.json"], output: "out.json", check: .strict),
            FuzzTarget(name: "cache", copies: base + [(Seeds.path("idx"), "data")], damaged: "cache-entry",
                       arguments: ["analyze", "--model", model, "--data", "data", "--threads", "1", "--quiet", "--out", "out.json"],
                       output: "out.json", check: .strict),
        ]
    }
}

/// What a campaign found.
struct FuzzReport {
    var cases = 0
    var perTarget: [String: Int] = [:]
    var outcomes: [String: Int] = [:]
    var findings: [String] = []
}

/// Runs cases until time is up; see `FuzzTests`.
final class FuzzCampaign: @unchecked Sendable {
    // Shared between the workers: `lock` guards `report` and `nextFinding`.
    private let lock = NSLock()
    private var report = FuzzReport()
    private var nextFinding = 0
    let seed: UInt64
    private let work: Scratch
    let findingsDirectory: String
    /// The undamaged output of each target.
    private var reference: [String: Data] = [:]
    /// Folder with the undamaged shard partials and the cache entry.
    private let prepared: String
    private var cacheEntryName = ""

    init(seed: UInt64) throws {
        self.seed = seed
        work = try Scratch("fuzz")
        findingsDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("cnnslicer-fuzz-findings-\(seed)").path
        prepared = work.path + "/prepared"
        try FileManager.default.createDirectory(atPath: prepared, withIntermediateDirectories: true)
        // Shard partials of the IDX seed, and a cache entry for its analysis.
        _ = try Self.copy(Seeds.model, to: prepared + "/" + FuzzTarget.model)
        _ = try Self.copy(Seeds.path("idx"), to: prepared + "/data")
        for k in 1...2 {
            let result = try CLI.run(["analyze", "--model", FuzzTarget.model, "--data", "data", "--shard", "\(k)/2", "--batch", "4",
                                      "--threads", "1", "--quiet", "--out", "p\(k).json"], in: prepared)
            guard result.status == 0 else { throw FuzzSetupError(result.summary) }
        }
        let cached = try CLI.run(["analyze", "--model", FuzzTarget.model, "--data", "data", "--threads", "1", "--quiet",
                                  "--out", "cached.json"], in: prepared, environment: ["XDG_CACHE_HOME": prepared + "/cache-home"])
        guard cached.status == 0 else { throw FuzzSetupError(cached.summary) }
        let entries = try FileManager.default.contentsOfDirectory(atPath: prepared + "/cache-home/cnnslicer")
        guard entries.count == 1, let entry = entries.first else { throw FuzzSetupError("expected one cache entry, found \(entries)") }
        cacheEntryName = entry
        // The undamaged outputs.
        for target in FuzzTarget.all {
            let folder = try makeCase(target, index: -1)
            let result = try runCase(target, in: folder)
            guard result.status == 0, let output = FileManager.default.contents(atPath: folder + "/" + target.output) else {
                throw FuzzSetupError("\(target.name) on the undamaged seed: \(result.summary)")
            }
            reference[target.name] = output
        }
    }

    func cleanUp() { work.remove() }

    private static func copy(_ source: String, to target: String) throws -> String {
        try FileManager.default.copyItem(atPath: source, toPath: target)
        return target
    }

    /// A fresh folder with the target's files.
    private func makeCase(_ target: FuzzTarget, index: Int) throws -> String {
        let folder = work.path + "/case-\(target.name)-\(index)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (seed, name) in target.copies { _ = try Self.copy(seed, to: folder + "/" + name) }
        switch target.name {
        case "partial":
            // The partials name the model by the (relative) path they were made with.
            for name in ["p1.json", "p2.json", FuzzTarget.model] { _ = try Self.copy(prepared + "/" + name, to: folder + "/" + name) }
        case "cache":
            try FileManager.default.createDirectory(atPath: folder + "/cache-home/cnnslicer", withIntermediateDirectories: true)
            _ = try Self.copy(prepared + "/cache-home/cnnslicer/" + cacheEntryName, to: folder + "/cache-home/cnnslicer/" + cacheEntryName)
            try FileManager.default.createSymbolicLink(atPath: folder + "/cache-entry",
                                                       withDestinationPath: "cache-home/cnnslicer/" + cacheEntryName)
        default:
            break
        }
        return folder
    }

    private func runCase(_ target: FuzzTarget, in folder: String) throws -> CommandResult {
        var environment: [String: String] = [:]
        if target.name == "cache" { environment["XDG_CACHE_HOME"] = folder + "/cache-home" }
        return try CLI.run(target.arguments, in: folder, environment: environment, timeout: 60)
    }

    func run(seconds: Double, workers: Int) throws -> FuzzReport {
        let deadline = Date().addingTimeInterval(seconds)
        let targets = FuzzTarget.all
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var random = SplitMix(seed &+ UInt64(worker) &* 0x9E37_79B9_7F4A_7C15)
            var index = worker
            while Date() < deadline {
                let target = targets[index % targets.count]
                index += workers
                do {
                    try fuzzOne(target, index: index, random: &random)
                } catch {
                    record(target, outcome: "setup-error", finding: "\(target.name): \(error)", folder: nil, damaged: nil)
                }
            }
        }
        return lock.withLock { report }
    }

    private func fuzzOne(_ target: FuzzTarget, index: Int, random: inout SplitMix) throws {
        let folder = try makeCase(target, index: index)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let damagedPath = folder + "/" + target.damaged
        let original = try Data(contentsOf: URL(fileURLWithPath: damagedPath).resolvingSymlinksInPath())
        var bytes = [UInt8](original)
        let mutations = Mutator.mutate(&bytes, count: 1 + Int(random.next() % 3), isText: target.isText, random: &random)
        guard bytes != [UInt8](original) else { record(target, outcome: "unchanged", finding: nil, folder: nil, damaged: nil); return }
        try Data(bytes).write(to: URL(fileURLWithPath: damagedPath).resolvingSymlinksInPath())
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
        let result = try runCase(target, in: folder)
        let what = "\(target.name) [\(mutations.joined(separator: "; "))]"
        var problems: [String] = []
        let outputPath = folder + "/" + target.output
        let output = FileManager.default.contents(atPath: outputPath)
        if result.timedOut {
            problems.append("hang (no exit in 60 s)")
        } else if let signal = result.signal {
            problems.append("crash (signal \(signal))")
        } else if result.status == 1 {
            if result.stderrLines.count != 1 || !result.stderr.hasPrefix("cnnslicer: error: ") {
                problems.append("error is not one line: \(result.stderr.prefix(600))")
            }
            // The right file: the damaged one, by name (a message naming only the
            // folder, or the images file for a damaged labels file, points the
            // user to the wrong place).
            if target.name != "cache", !result.stderr.contains((target.damaged as NSString).lastPathComponent) {
                problems.append("error does not name \(target.damaged): \(result.stderr.prefix(300))")
            }
            if target.name == "cache" { problems.append("a damaged cache entry failed the command instead of being rebuilt: \(result.stderr.prefix(300))") }
            if output != nil { problems.append("failed but left \(target.output)") }
        } else if result.status == 0 {
            if output == nil || output?.isEmpty == true { problems.append("exit 0 without \(target.output)") }
            let lengthChanged = bytes.count != original.count
            let mustMatch = target.check == .strict || (target.check == .length && lengthChanged)
            if mustMatch, let output, output != reference[target.name] {
                problems.append("lie: exit 0 with other numbers than the undamaged input")
            }
        } else {
            problems.append("exit status \(result.status ?? -1): \(result.stderr.prefix(300))")
        }
        let after = Set((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
        let left = after.subtracting(before).subtracting([target.output, ".cache-home"])
        if !left.isEmpty { problems.append("left behind: \(left.sorted())") }
        let outcome = result.timedOut ? "hang" : result.signal != nil ? "crash" : "exit \(result.status ?? -1)"
        record(target, outcome: outcome, finding: problems.isEmpty ? nil : "\(what): " + problems.joined(separator: "; "),
               folder: problems.isEmpty ? nil : folder, damaged: problems.isEmpty ? nil : (bytes, target, result))
    }

    private func record(_ target: FuzzTarget, outcome: String, finding: String?, folder: String?,
                        damaged: ([UInt8], FuzzTarget, CommandResult)?) {
        let number: Int? = lock.withLock {
            report.cases += 1
            report.perTarget[target.name, default: 0] += 1
            report.outcomes[outcome, default: 0] += 1
            guard let finding else { return nil }
            report.findings.append(finding)
            nextFinding += 1
            return nextFinding
        }
        // Keep the damaged file and the command to reproduce the finding.
        if let number, folder != nil, let (bytes, target, result) = damaged {
            let keep = findingsDirectory + "/\(number)-\(target.name)"
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            try? Data(bytes).write(to: URL(fileURLWithPath: keep + "/" + (target.damaged as NSString).lastPathComponent))
            try? "cd <a copy of the seeds as in FuzzTarget \(target.name)>\ncnnslicer \(result.arguments.joined(separator: " "))\n\n\(result.summary)\n"
                .write(toFile: keep + "/README.txt", atomically: true, encoding: .utf8)
        }
    }
}

struct FuzzSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// SplitMix64: deterministic pseudo-random numbers, so that a seed reproduces a campaign.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Byte-level damage, as a disk, a network copy or a careless edit does it.
enum Mutator {
    static let interestingBytes: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x22]
    static let interestingWords: [UInt32] = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x0100_0000]
    static let interestingNumbers = ["0", "-1", "1e308", "-1e308", "NaN", "9223372036854775807", "18446744073709551616",
                                     "4294967296", "0.5", "1e-320", "-0", "2"]

    /// Applies `count` mutations; returns their descriptions.
    static func mutate(_ bytes: inout [UInt8], count: Int, isText: Bool, random: inout SplitMix) -> [String] {
        var done: [String] = []
        for _ in 0..<count {
            let n = bytes.count
            let at = n > 0 ? Int(random.next() % UInt64(n)) : 0
            let kind = Int(random.next() % (isText ? 10 : 8))
            switch kind {
            case 0 where n > 0:
                let bit = UInt8(1) << UInt8(random.next() % 8)
                bytes[at] ^= bit
                done.append("flip bit \(bit) at \(at)")
            case 1 where n > 0:
                let value = interestingBytes[Int(random.next() % UInt64(interestingBytes.count))]
                bytes[at] = value
                done.append("byte \(at) = \(value)")
            case 2 where n >= 4:
                let word = interestingWords[Int(random.next() % UInt64(interestingWords.count))]
                let start = min(at, n - 4), bigEndian = random.next() % 2 == 0
                for k in 0..<4 { bytes[start + k] = UInt8(truncatingIfNeeded: bigEndian ? word >> (24 - 8 * k) : word >> (8 * k)) }
                done.append("\(bigEndian ? "big" : "little")-endian \(word) at \(start)")
            case 3:
                let keep = random.next() % 4 == 0 ? Int(random.next() % UInt64(max(1, min(n, 64)))) : at
                bytes.removeSubrange(keep...)
                done.append("truncate to \(keep)")
            case 4 where n > 1:
                let length = 1 + Int(random.next() % UInt64(min(16, n - at)))
                bytes.removeSubrange(at..<(at + length))
                done.append("delete \(length) at \(at)")
            case 5:
                let length = 1 + Int(random.next() % 16)
                bytes.insert(contentsOf: (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
                done.append("insert \(length) at \(at)")
            case 6 where n > 1:
                let length = 1 + Int(random.next() % UInt64(min(64, n - at)))
                bytes.insert(contentsOf: bytes[at..<(at + length)], at: at)
                done.append("duplicate \(length) at \(at)")
            case 7 where n > 0:
                bytes[at] = UInt8(truncatingIfNeeded: random.next())
                done.append("random byte at \(at)")
            case 8, 9:
                // A number token replaced by another (text formats).
                let digits = bytes.indices.filter { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[$0]) }
                guard let start = digits.isEmpty ? nil : digits[Int(random.next() % UInt64(digits.count))] else { continue }
                var end = start
                while end < n, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) || bytes[end] == UInt8(ascii: ".")
                        || bytes[end] == UInt8(ascii: "e") || bytes[end] == UInt8(ascii: "-") { end += 1 }
                let number = interestingNumbers[Int(random.next() % UInt64(interestingNumbers.count))]
                bytes.replaceSubrange(start..<end, with: Array(number.utf8))
                done.append("number at \(start) = \(number)")
            default:
                continue
            }
        }
        return done
    }
}
