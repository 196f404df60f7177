import ArgumentParser
import Foundation
import SlicerData
import SlicerEngine
import SlicerInfo

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Top-1 accuracy of a model on a labelled image set, overall and per class.")

    @OptionGroup var model: ModelOptions
    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "Images per batch.")
    var batch: Int = 64

    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int = defaultThreadCount()

    @Flag(name: .long, help: "Print {\"images\", \"accuracy\", \"class_accuracy\"} as JSON.")
    var json = false

    func validate() throws { try RunLimits.validate(batch: batch, threads: threads) }

    func run() throws {
        try reportingErrors {
            let workload = try data.input(for: model)
            guard workload.images.labels.contains(where: { $0 >= 0 }) else {
                throw DataError.emptySet(path: workload.images.source, detail: "no labelled images to evaluate")
            }
            let predictions = try classify(workload, batchSize: RunLimits.batch(batch, for: workload.images.count), threads: threads)
            let perClass = predictions.classAccuracy
            if json {
                print("{\"images\": \(workload.images.count), \"accuracy\": \(JSONText.number(predictions.accuracy)), \"class_accuracy\": [\(perClass.map(JSONText.number).joined(separator: ", "))]\(classMappingJSON(workload.classMapping))}")
                return
            }
            printReport(workload, predictions)
        }
    }
}

/// `, "class_mapping": …` (`ClassMapping.json`: null for a data set with its own labels).
func classMappingJSON(_ mapping: ClassMapping) -> String {
    ", \"class_mapping\": \(mapping.json)"
}

func printReport(_ workload: ModelInput, _ predictions: Predictions) {
    let counts = workload.images.classCounts
    print("model:    \(workload.network.path)")
    print("data:     \(workload.images.source) (\(workload.images.count) images)")
    if workload.classMapping.source != .dataset {
        for line in workload.classMapping.report(classNames: workload.classNames, limit: 20) { print(line) }
    }
    print(String(format: "accuracy: %.2f%%", predictions.accuracy * 100))
    // With many classes (ImageNet's 1,000) only those with images are listed.
    let listed = (0..<workload.classNames.count).filter { k in workload.classNames.count <= 100 || (k < counts.count && counts[k] > 0) }
    let width = max(5, listed.map { workload.classNames[$0].count }.max() ?? 5)
    let perClass = predictions.classAccuracy
    for k in listed {
        let name = workload.classNames[k].padding(toLength: width, withPad: " ", startingAt: 0)
        let n = k < counts.count ? counts[k] : 0
        let text = perClass[k].map { String(format: "%6.2f%%", $0 * 100) } ?? "     —"
        print("  \(name)  \(text)  (\(n) images)")
    }
    if listed.count < workload.classNames.count {
        print("  (\(workload.classNames.count - listed.count) classes without images not listed)")
    }
}

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The shipped default: the Fashion-MNIST CNN, its taps, and its accuracy on the Fashion-MNIST test set.")

    @OptionGroup var model: ModelOptions
    @OptionGroup var data: DataOptions

    func run() throws {
        try reportingErrors {
            let workload = try data.input(for: model)
            let network = workload.network
            print("taps of \(network.path):")
            for tap in network.taps {
                print("  \(tap.index)\t\(tap.opType)\t(\(tap.shape.map(String.init).joined(separator: "×")))\t\(tap.name)")
            }
            let start = Date()
            let predictions = try classify(workload, batchSize: 64, threads: defaultThreadCount())
            let seconds = Date().timeIntervalSince(start)
            printReport(workload, predictions)
            print(String(format: "%.0f images/s on %d threads", Double(workload.images.count) / seconds, defaultThreadCount()))
        }
    }
}
