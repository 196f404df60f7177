import Foundation
import XCTest

/// Issue 12: bad arguments and bad files on the real command line. Each test
/// names the item of the issue it keeps fixed.
final class CommandErrorTests: XCTestCase {
    private var scratch: Scratch!

    override func setUpWithError() throws {
        _ = try CLI.requireBinary()
        scratch = try Scratch()
    }

    override func tearDown() { scratch?.remove() }

    private func run(_ arguments: [String], timeout: Double = 120) throws -> CommandResult {
        try CLI.run(arguments, in: scratch.path, timeout: timeout)
    }

    private func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// The file type bits of `path` (S_IFCHR, S_IFIFO, …), not following links.
    private func fileType(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    // MARK: Item 3: outputs

    /// A character device like /dev/full (1, 7) made in the scratch folder, or nil
    /// where this user may not make device nodes. The tests never point a command
    /// at the system's own /dev nodes: a binary with the bug would replace them.
    private func makeDevice(_ name: String) -> String? {
        let path = scratch.path + "/" + name
        return mknod(path, S_IFCHR | 0o666, dev_t(1 << 8 | 7)) == 0 ? path : nil
    }

    /// `--out`/`--output` onto a device node or FIFO used to replace the node by
    /// a regular file (the atomic rename); onto the model or the images it
    /// silently destroyed them. Both are refused before any work, and nothing changes.
    func testOutputsOntoDevicesFIFOsAndInputsAreRefused() throws {
        let model = try scratch.copy(Seeds.model, as: "model.onnx")
        let input = try scratch.copy(Seeds.path("input.npy"), as: "input.npy")
        let data = try scratch.copy(Seeds.path("idx"), as: "idx")
        let fifo = scratch.path + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let device = makeDevice("full")
        let modelBytes = bytes(model), inputBytes = bytes(input)

        for (target, word, type) in [(fifo, "FIFO", S_IFIFO)] + (device.map { [($0, "device", S_IFCHR)] } ?? []) {
            let result = try run(["infer", "--model", model, "--input", input, "--output", target], timeout: 30)
            assertOneLineError(result, mentioning: [target, word, "refusing"])
            XCTAssertEqual(fileType(target), type, "\(target) is left as it was")
        }

        assertOneLineError(try run(["infer", "--model", model, "--input", input, "--output", model]),
                           mentioning: [model, "input of this command"])
        assertOneLineError(try run(["infer", "--model", model, "--input", input, "--output", "input.npy"]),
                           mentioning: ["input.npy", "input of this command"])
        // Through a symbolic link as well.
        XCTAssertEqual(symlink(model, scratch.path + "/link.onnx"), 0)
        assertOneLineError(try run(["infer", "--model", model, "--input", input, "--output", "link.onnx"]),
                           mentioning: ["link.onnx", "input of this command"])
        let images = data + "/t10k-images-idx3-ubyte"
        let imageBytes = bytes(images)
        for command in [["analyze", "--no-cache"], ["car", "--tap", "0"]] {
            let result = try run(command + ["--model", model, "--data", data, "--out", images, "--quiet"])
            assertOneLineError(result, mentioning: [images, "data folder"])
        }
        XCTAssertEqual(bytes(model), modelBytes)
        XCTAssertEqual(bytes(input), inputBytes)
        XCTAssertEqual(bytes(images), imageBytes)
        XCTAssertEqual(scratch.leftovers(expected: ["model.onnx", "input.npy", "idx", "fifo", "full", "link.onnx"]), [])

        // A regular file is replaced, as before.
        let out = scratch.path + "/out.npy"
        FileManager.default.createFile(atPath: out, contents: Data("old".utf8))
        XCTAssertEqual(try run(["infer", "--model", model, "--input", input, "--output", out]).status, 0)
        XCTAssertEqual(bytes(out)?.prefix(6), Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]))
    }

    // MARK: Item 4: batch and threads

    /// `--batch 0` and `--threads 0` were taken silently by eval and infer;
    /// `eval --batch 1000000000` aborted allocating 3 TB. Refused as usage
    /// errors of the subcommand; a batch larger than the images is cut to them.
    func testBatchAndThreadLimits() throws {
        let data = Seeds.path("idx")
        let refusals: [([String], String)] = [
            (["eval", "--model", Seeds.model, "--data", data, "--batch", "0"], "--batch"),
            (["eval", "--model", Seeds.model, "--data", data, "--batch", "1000000000"], "--batch"),
            (["eval", "--model", Seeds.model, "--data", data, "--threads", "0"], "--threads"),
            (["infer", "--model", Seeds.model, "--input", Seeds.path("input.npy"), "--output", "o.npy", "--batch", "0"], "--batch"),
            (["infer", "--model", Seeds.model, "--input", Seeds.path("input.npy"), "--output", "o.npy", "--batch", "1000000000"], "--batch"),
            (["analyze", "--model", Seeds.model, "--data", data, "--batch", "-3"], "--batch"),
            (["analyze", "--model", Seeds.model, "--data", data, "--batch", "0"], "--batch"),
            (["analyze", "--model", Seeds.model, "--data", data, "--threads", "0"], "--threads"),
            (["bench", "--model", Seeds.model, "--batch", "100000"], "--batch"),
            (["bench", "--model", Seeds.model, "--batch", "0"], "--batch"),
            (["bench", "--model", Seeds.model, "--threads", "0"], "--threads"),
            (["car", "--model", Seeds.model, "--data", data, "--tap", "1", "--threads", "100000"], "--threads"),
        ]
        for (arguments, option) in refusals {
            let result = try run(arguments, timeout: 60)
            XCTAssertEqual(result.status, 64, result.summary)
            XCTAssert(result.stderr.contains(option) && result.stderr.contains("Usage: cnnslicer \(arguments[0])"), result.summary)
        }
        // 4096 per batch for 16 images: the same numbers as batches of 3.
        let big = try run(["eval", "--model", Seeds.model, "--data", data, "--batch", "4096", "--json"])
        let small = try run(["eval", "--model", Seeds.model, "--data", data, "--batch", "3", "--threads", "1", "--json"])
        XCTAssertEqual(big.status, 0, big.summary)
        XCTAssertEqual(big.stdout, small.stdout)
        XCTAssertLessThan(big.seconds, 60)
    }

    // MARK: Item 5: inputs that never end

    /// `infer --input` on a FIFO or /dev/zero hung; refused as `--model` is.
    func testNonRegularInputsAreRefused() throws {
        let fifo = scratch.path + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        for (input, word) in [(fifo, "FIFO"), ("/dev/zero", "device")] {
            let result = try run(["infer", "--model", Seeds.model, "--input", input, "--output", "o.npy"], timeout: 30)
            XCTAssertFalse(result.timedOut, result.summary)
            assertOneLineError(result, mentioning: [input, word])
            let model = try run(["info", "--model", input], timeout: 30)
            XCTAssertFalse(model.timedOut, model.summary)
            assertOneLineError(model, mentioning: [input, word])
        }
        let partial = try run(["merge", fifo, "--out", "m.json"], timeout: 30)
        XCTAssertFalse(partial.timedOut, partial.summary)
        assertOneLineError(partial, mentioning: [fifo, "FIFO"])
        XCTAssertEqual(scratch.leftovers(expected: ["fifo"]), [])
    }

    // MARK: Item 6 and 8: screenshot

    /// `--scale 0` trapped in drawMatrix, `--scale nan` was accepted; write
    /// errors showed SDL's function names and the temporary file.
    func testScreenshotScaleAndWriteErrors() throws {
        for scale in ["0", "nan", "-1", "100", "inf"] {
            let result = try run(["screenshot", "--model", Seeds.model, "--data", Seeds.path("idx"), "--out", "s.png", "--scale=\(scale)"])
            XCTAssertEqual(result.status, 64, result.summary)
            XCTAssert(result.stderr.contains("--scale must be between 0.5 and 3"), result.summary)
        }
        let cramped = try run(["screenshot", "--model", Seeds.model, "--data", Seeds.path("idx"), "--out", "s.png",
                               "--scale", "3", "--size", "320x240"])
        XCTAssertEqual(cramped.status, 64, cramped.summary)
        XCTAssert(cramped.stderr.contains("needs --size of at least 960x720"), cramped.summary)
        let missing = try run(["screenshot", "--model", Seeds.model, "--data", Seeds.path("idx"), "--out", "nowhere/s.png",
                               "--size", "640x400"])
        assertOneLineError(missing, mentioning: ["nowhere/s.png", "does not exist"])
        for detail in ["IMG_", "SDL", ".tmp-"] { XCTAssertFalse(missing.stderr.contains(detail), missing.summary) }
        let fifo = scratch.path + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let refused = try run(["screenshot", "--model", Seeds.model, "--data", Seeds.path("idx"), "--out", fifo, "--size", "640x400"])
        assertOneLineError(refused, mentioning: [fifo, "FIFO"])
        XCTAssertEqual(fileType(fifo), S_IFIFO)
        XCTAssertEqual(scratch.leftovers(expected: ["fifo"]), [])
    }

    // MARK: Item 8: error lines

    /// A .npy header with a NUL, a newline and a terminal escape was echoed raw,
    /// over several lines.
    func testErrorsEscapeRawBytesOnOneLine() throws {
        var header = Array("{'descr': '<f\n4\u{0}\u{1b}[31m', 'fortran_order': False, 'shape': (1,), }".utf8)
        // Padded so that header and preamble fill 128 bytes, as numpy pads to 64.
        header += Array(repeating: UInt8(ascii: " "), count: 127 - 10 - header.count) + [UInt8(ascii: "\n")]
        let file = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.count), 0] + header + [0, 0, 0, 0])
        let path = scratch.path + "/bad.npy"
        try file.write(to: URL(fileURLWithPath: path))
        let result = try run(["infer", "--model", Seeds.model, "--input", path, "--output", "o.npy"])
        assertOneLineError(result, mentioning: [path, "\\n", "\\0", "\\u{1b}"])
        XCTAssertFalse(result.stderr.dropLast().contains("\u{1b}"))

        // A pickle whose integer literal holds a NUL, a carriage return and a terminal escape.
        let cifar = try scratch.copy(Seeds.path("cifar-py"), as: "cifar-py")
        let batch = cifar + "/cifar-10-batches-py/test_batch"
        try Data([0x80, 0x02, UInt8(ascii: "I"), UInt8(ascii: "1"), 0, 0x1b] + Array("[31m\r2\n.".utf8))
            .write(to: URL(fileURLWithPath: batch))
        let pickle = try run(["eval", "--model", Seeds.model, "--data", cifar, "--resize", "bilinear"])
        assertOneLineError(pickle, mentioning: [batch, "integer literal", "\\0", "\\u{1b}", "\\r"])
        XCTAssertFalse(pickle.stderr.contains("\u{1b}") || pickle.stderr.contains("\r") || pickle.stderr.contains("\u{0}"))
    }

    // MARK: Item 7: image folders

    /// Folders were numbered in sorted order even when the model names its
    /// classes: in an MNIST folder without 3 and 8, folder "9" was class 7.
    /// They are matched to the model's labels, and eval and analyze say how.
    func testImageFoldersAreMatchedToTheModelsLabelsAndTheMappingIsPrinted() throws {
        let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("assets/models/mnist_cnn.onnx").path
        let folder = scratch.path + "/digits"
        for digit in ["0", "1", "2", "4", "5", "6", "7", "9"] {
            try FileManager.default.createDirectory(atPath: folder + "/" + digit, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Seeds.path("images/0/image_0.png"), toPath: folder + "/" + digit + "/a.png")
        }
        let eval = try run(["eval", "--model", model, "--data", folder])
        XCTAssertEqual(eval.status, 0, eval.summary)
        XCTAssert(eval.stdout.contains("classes: 8 folders matched to the model's class names"), eval.stdout)
        XCTAssert(eval.stdout.contains("  9 → 9\n") && eval.stdout.contains("  4 → 4\n"), eval.stdout)
        let json = try run(["eval", "--model", model, "--data", folder, "--json"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let mapping = try XCTUnwrap(object["class_mapping"] as? [String: Any])
        XCTAssertEqual(mapping["source"] as? String, "model labels")
        XCTAssertEqual(mapping["folders"] as? [String: Int], ["0": 0, "1": 1, "2": 2, "4": 4, "5": 5, "6": 6, "7": 7, "9": 9])
        let analyze = try run(["analyze", "--model", model, "--data", folder, "--no-cache", "--out", "a.json"])
        XCTAssertEqual(analyze.status, 0, analyze.summary)
        XCTAssert(analyze.stderr.contains("classes: 8 folders matched") && analyze.stderr.contains("  9 → 9\n"), analyze.summary)
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: XCTUnwrap(bytes(scratch.path + "/a.json"))) as? [String: Any])
        XCTAssertEqual(result["class_counts"] as? [Int], [1, 1, 1, 0, 1, 1, 1, 1, 0, 1])
        // The analysis JSON says the same as eval --json (it was on stderr only).
        let analyzed = try XCTUnwrap(result["class_mapping"] as? [String: Any], "analyze writes class_mapping")
        XCTAssertEqual(analyzed["source"] as? String, "model labels")
        XCTAssertEqual(analyzed["folders"] as? [String: Int], mapping["folders"] as? [String: Int])
        XCTAssertTrue(analyzed["class_index_file"] is NSNull && analyzed["warning"] is NSNull)

        // A class-index file (one name per line, in index order) that numbers the folders
        // against their sorted order: "b" is class 7, "a" class 2.
        let lettered = scratch.path + "/letters"
        for name in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: lettered + "/" + name, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Seeds.path("images/0/image_0.png"), toPath: lettered + "/" + name + "/x.png")
        }
        let index = scratch.path + "/index.txt"
        try (["c0", "c1", "a", "c3", "c4", "c5", "c6", "b", "c8", "c9"].joined(separator: "\n") + "\n").write(toFile: index, atomically: true, encoding: .utf8)
        let indexed = try run(["analyze", "--model", model, "--data", lettered, "--class-index", index, "--no-cache", "--quiet", "--out", "b.json"])
        XCTAssertEqual(indexed.status, 0, indexed.summary)
        let b = try XCTUnwrap(JSONSerialization.jsonObject(with: XCTUnwrap(bytes(scratch.path + "/b.json"))) as? [String: Any])
        let byFile = try XCTUnwrap(b["class_mapping"] as? [String: Any])
        XCTAssertEqual(byFile["source"] as? String, "class-index file")
        XCTAssertEqual(byFile["class_index_file"] as? String, index)
        XCTAssertEqual(byFile["folders"] as? [String: Int], ["a": 2, "b": 7])
        XCTAssertEqual(b["class_counts"] as? [Int], [0, 0, 1, 0, 0, 0, 0, 1, 0, 0])

        // IDX data keeps its own labels: nothing was mapped, the field is null (present).
        let idx = try run(["analyze", "--model", Seeds.model, "--data", Seeds.path("idx"), "--no-cache", "--quiet", "--out", "c.json"])
        XCTAssertEqual(idx.status, 0, idx.summary)
        let c = try XCTUnwrap(JSONSerialization.jsonObject(with: XCTUnwrap(bytes(scratch.path + "/c.json"))) as? [String: Any])
        XCTAssertTrue(c["class_mapping"] is NSNull, "\(c["class_mapping"] ?? "absent")")
    }

    /// A label the model has no class for is in the labels file: the error named
    /// the images file of the IDX pair.
    func testLabelErrorsNameTheLabelsFile() throws {
        let data = try scratch.copy(Seeds.path("idx"), as: "idx")
        let labels = data + "/t10k-labels-idx1-ubyte"
        var bytes = try XCTUnwrap(self.bytes(labels))
        bytes[8 + 3] = 200
        try bytes.write(to: URL(fileURLWithPath: labels))
        let result = try run(["eval", "--model", Seeds.model, "--data", data])
        assertOneLineError(result, mentioning: [labels, "label 200"])
        XCTAssertFalse(result.stderr.contains("t10k-images"), result.summary)
    }

    /// A usage error found while the command runs (a malformed `--select`)
    /// pointed to the top-level help; it names the subcommand's.
    func testUsageErrorsNameTheSubcommand() throws {
        let result = try run(["screenshot", "--model", Seeds.model, "--data", Seeds.path("idx"), "--out", "s.png", "--select", "foo"])
        XCTAssertEqual(result.status, 64, result.summary)
        XCTAssert(result.stderr.contains("Usage: cnnslicer screenshot"), result.summary)
        XCTAssert(result.stderr.contains("'cnnslicer screenshot --help'"), result.summary)
        let parse = try run(["eval", "--bogus"])
        XCTAssert(parse.stderr.contains("Usage: cnnslicer eval"), parse.summary)
        // A value the option parser cannot read: the subcommand's usage and help, not the top level's.
        for (command, option) in [("eval", "--batch"), ("analyze", "--threads"), ("infer", "--batch"), ("bench", "--threads")] {
            let bad = try run([command, option, "x"])
            XCTAssertEqual(bad.status, 64, bad.summary)
            XCTAssert(bad.stderr.contains("The value 'x' is invalid for '\(option)"), bad.summary)
            XCTAssert(bad.stderr.contains("Usage: cnnslicer \(command)"), bad.summary)
            XCTAssert(bad.stderr.contains("See 'cnnslicer \(command) --help'"), bad.summary)
        }
    }

    /// merge's errors named shards, not files ("missing shards 2/2", "shard 1/2
    /// given twice"); a damaged partial names its file and the field.
    func testMergeErrorsNameTheFiles() throws {
        let data = Seeds.path("idx")
        for k in 1...2 {
            let result = try run(["analyze", "--model", Seeds.model, "--data", data, "--shard", "\(k)/2", "--batch", "4",
                                  "--out", "p\(k).json", "--quiet"])
            XCTAssertEqual(result.status, 0, result.summary)
        }
        assertOneLineError(try run(["merge", "p1.json", "--out", "m.json"]), mentioning: ["missing shard 2/2", "p1.json"])
        assertOneLineError(try run(["merge", "p1.json", "p2.json", "p1.json", "--out", "m.json"]), mentioning: ["p1.json", "twice"])
        // One changed byte in the histograms (partials are binary, with a digest over everything after the first line).
        var edited = try XCTUnwrap(bytes(scratch.path + "/p1.json"))
        edited[edited.count / 2] ^= 0x01
        try edited.write(to: URL(fileURLWithPath: scratch.path + "/p1-edited.json"))
        assertOneLineError(try run(["merge", "p1-edited.json", "p2.json", "--out", "m.json"]), mentioning: ["p1-edited.json", "digest"])
        assertOneLineError(try run(["merge", "p1.json", "p2.json", "--out", "p2.json"]), mentioning: ["p2.json", "input of this command"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.path + "/m.json"))
        let merged = try run(["merge", "p1.json", "p2.json", "--out", "m.json"])
        XCTAssertEqual(merged.status, 0, merged.summary)
        let whole = try run(["analyze", "--model", Seeds.model, "--data", data, "--batch", "4", "--no-cache", "--quiet"])
        // The merged shards are the whole run, every number bit for bit: the
        // instance entropies' sums are exact (ExactSum), whatever their order.
        let a = try JSONSerialization.jsonObject(with: XCTUnwrap(bytes(scratch.path + "/m.json")))
        let b = try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8))
        assertSameJSON(a, b, path: "")
    }

    private func assertSameJSON(_ a: Any, _ b: Any, path: String, file: StaticString = #filePath, line: UInt = #line) {
        switch (a, b) {
        case let (x as [String: Any], y as [String: Any]):
            // `analyze` adds its memory estimate; `merge` has none to give.
            XCTAssertEqual(Set(x.keys).subtracting(["memory"]), Set(y.keys).subtracting(["memory"]), path, file: file, line: line)
            for (key, value) in x { if let other = y[key] { assertSameJSON(value, other, path: path + "." + key, file: file, line: line) } }
        case let (x as [Any], y as [Any]):
            XCTAssertEqual(x.count, y.count, path, file: file, line: line)
            for (i, (u, v)) in zip(x, y).enumerated() { assertSameJSON(u, v, path: path + "[\(i)]", file: file, line: line) }
        case let (x as NSNumber, y as NSNumber):
            XCTAssertEqual(x.doubleValue, y.doubleValue, path, file: file, line: line)
        default:
            XCTAssertEqual("\(a)", "\(b)", path, file: file, line: line)
        }
    }
}
