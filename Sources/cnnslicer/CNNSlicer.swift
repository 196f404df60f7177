import ArgumentParser
import Foundation
import SlicerData
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

extension ParsableCommand {
    /// Runs a subcommand's body so that every failure ends in one line.
    ///
    /// A bad file or value prints `cnnslicer: error: <file>: <problem>` (escaped
    /// onto one line, see `ErrorText`) and exits with status 1, never with a
    /// stack trace. A usage error found while running (a `ValidationError`, e.g.
    /// a malformed `--select`) is reported by ArgumentParser for this subcommand,
    /// with its usage line and `--help`, not the top-level command's.
    func reportingErrors<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let exit as ExitCode {
            throw exit
        } catch let error as ValidationError {
            // As ArgumentParser reports a bad option of this subcommand.
            let name = Self.configuration.commandName ?? "\(Self.self)"
            let usage = CNNSlicer.usageString(for: Self.self)
            FileHandle.standardError.write(Data("""
                Error: \(ErrorText.oneLine("\(error)"))
                Usage: \(usage)
                  See 'cnnslicer \(name) --help' for more information.

                """.utf8))
            throw ExitCode.validationFailure
        } catch {
            FileHandle.standardError.write(Data("cnnslicer: error: \(ErrorText.oneLine("\(error)"))\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
