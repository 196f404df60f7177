import ArgumentParser
import Foundation
import SlicerEngine

@main
struct CNNSlicer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cnnslicer",
        abstract: "Information flow through trained CNNs: ONNX models, labelled image sets, entropy and filter importance.",
        discussion: """
            With no subcommand, opens the app (`gui`) on the shipped default: the Fashion-MNIST CNN \
            series trained by this project, on the Fashion-MNIST test set.
            """,
        subcommands: [GUICommand.self, ScreenshotCommand.self, DemoCommand.self, InfoCommand.self, InferCommand.self, EvalCommand.self, AnalyzeCommand.self,
                      MergeCommand.self, BenchCommand.self, CARCommand.self],
        defaultSubcommand: GUICommand.self)

    static func main() {
        // Before anything else runs: may start the program again with faster
        // BLAS kernels for this CPU (see BLASKernels).
        BLASKernels.restartWithBetterKernelsIfNeeded()
        main(nil)
    }
}

/// Prints one line naming the file and the problem, then exits non-zero.
///
/// Every subcommand runs its body through this so that a bad file never ends
/// in a stack trace or in ArgumentParser's usage text.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("cnnslicer: error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Writes `text` to `path` through a temporary file in the same directory and a
/// rename, so a reader never sees half a file.
func writeAtomically(_ text: String, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    do {
        try Data(text.utf8).write(to: temp)
        if rename(temp.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temp)
            throw CLIError("\(path): cannot write: \(reason)")
        }
    } catch let error as CLIError {
        throw error
    } catch {
        try? FileManager.default.removeItem(at: temp)
        throw CLIError("\(path): cannot write: \(error.localizedDescription)")
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
