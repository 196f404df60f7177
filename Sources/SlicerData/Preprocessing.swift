/// Turns dataset bytes into network input (SPEC §1): `x = u/255`, then
/// `(x − mean_c)/std_c` per input channel, NCHW float32, resized only when
/// the model's input size differs from the images'.
public struct Preprocessing: Sendable, Equatable {
    /// One value for all channels, or one per model input channel.
    public var mean: [Float]
    /// One value for all channels, or one per model input channel.
    public var std: [Float]
    public var resize: ResizeMode

    public init(mean: [Float] = [0], std: [Float] = [1], resize: ResizeMode = .bilinear) {
        self.mean = mean
        self.std = std
        self.resize = resize
    }

    /// Luminance weights (ITU-R BT.601) used when a 1-channel model gets colour images.
    public static let luminanceWeights: (red: Float, green: Float, blue: Float) = (0.299, 0.587, 0.114)

    /// Per-channel mean and std expanded to `channels` values, after checking them.
    func normalization(channels: Int, source: String) throws -> (mean: [Float], std: [Float]) {
        func expand(_ values: [Float], _ name: String) throws -> [Float] {
            if values.count == 1 { return [Float](repeating: values[0], count: channels) }
            guard values.count == channels else {
                throw DataError.invalidArgument(
                    source: source, detail: "\(name) has \(values.count) values, the model input has \(channels) channels (give 1 or \(channels))")
            }
            return values
        }
        let means = try expand(mean, "mean")
        let stds = try expand(std, "std")
        guard means.allSatisfy(\.isFinite) else {
            throw DataError.invalidArgument(source: source, detail: "mean \(mean) is not finite")
        }
        guard stds.allSatisfy({ $0.isFinite && $0 != 0 }) else {
            throw DataError.invalidArgument(source: source, detail: "std \(std) must be finite and non-zero")
        }
        return (means, stds)
    }

    /// Writes the images at `indices` as NCHW float32 network input.
    ///
    /// - Parameters:
    ///   - channels, height, width: the model's input size. 1-channel data is
    ///     replicated for a 3-channel model; 3-channel data is reduced with
    ///     luminance weights for a 1-channel model.
    ///   - output: room for `indices.count × channels × height × width` floats;
    ///     image `k` of `indices` goes to the k-th block.
    public func fill<Indices: Collection>(
        _ images: LabeledImages, indices: Indices, channels: Int, height: Int, width: Int,
        into output: UnsafeMutablePointer<Float>
    ) throws where Indices.Element == Int {
        guard channels > 0, height > 0, width > 0 else {
            throw DataError.invalidArgument(source: images.source, detail: "model input size \(channels)×\(height)×\(width) is not positive")
        }
        let conversion: ChannelConversion
        switch (images.channels, channels) {
        case let (have, want) where have == want: conversion = .same
        case (1, _): conversion = .replicate
        case (3, 1): conversion = .luminance
        default:
            throw DataError.shapeMismatch(
                path: images.source, detail: "images have \(images.channels) channels, the model wants \(channels)")
        }
        if let bad = indices.first(where: { $0 < 0 || $0 >= images.count }) {
            throw DataError.invalidArgument(source: images.source, detail: "image index \(bad) out of range 0..<\(images.count)")
        }
        let (means, stds) = try normalization(channels: channels, source: images.source)

        // u ↦ (u/255 − mean)/std evaluated once per byte value and channel, in
        // the same float32 operation order as a numpy reference would use.
        var table = [Float](repeating: 0, count: 256 * channels)
        for c in 0..<channels {
            for u in 0..<256 { table[c * 256 + u] = (Float(u) / 255 - means[c]) / stds[c] }
        }

        let sourceHeight = images.height, sourceWidth = images.width
        let sourcePlane = sourceHeight * sourceWidth
        let outputPlane = height * width
        let needsResize = sourceHeight != height || sourceWidth != width
        let rows = needsResize ? ResampleAxis(source: sourceHeight, destination: height, mode: resize) : nil
        let columns = needsResize ? ResampleAxis(source: sourceWidth, destination: width, mode: resize) : nil
        let filters = needsResize && resize == .antialias
            ? (rows: FilterAxis(source: sourceHeight, destination: height), columns: FilterAxis(source: sourceWidth, destination: width)) : nil
        // Normalised planes at the source size, resampled afterwards (both
        // steps are affine per channel, so the order does not change the result).
        var scratch = [Float](repeating: 0, count: needsResize ? channels * sourcePlane : 0)
        let weights = Self.luminanceWeights

        images.pixels.withUnsafeBufferPointer { pixelBuffer in
            table.withUnsafeBufferPointer { tableBuffer in
                scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                    guard let pixels = pixelBuffer.baseAddress, let lut = tableBuffer.baseAddress else { return }
                    for (k, index) in indices.enumerated() {
                        let image = pixels + index * images.pixelsPerImage
                        let target = output + k * channels * outputPlane
                        let planes = needsResize ? scratchBuffer.baseAddress! : target
                        let planeStride = needsResize ? sourcePlane : outputPlane
                        for c in 0..<channels {
                            let destination = planes + c * planeStride
                            switch conversion {
                            case .same, .replicate:
                                let plane = image + (conversion == .same ? c : 0) * sourcePlane
                                let channelTable = lut + c * 256
                                for i in 0..<sourcePlane { destination[i] = channelTable[Int(plane[i])] }
                            case .luminance:
                                let (mean, std) = (means[c], stds[c])
                                for i in 0..<sourcePlane {
                                    let l = weights.red * Float(image[i]) + weights.green * Float(image[sourcePlane + i])
                                        + weights.blue * Float(image[2 * sourcePlane + i])
                                    destination[i] = (l / 255 - mean) / std
                                }
                            }
                            if let filters {
                                Resampler.resampleFiltered(destination, sourceHeight: sourceHeight, sourceWidth: sourceWidth,
                                                           into: target + c * outputPlane, rows: filters.rows, columns: filters.columns)
                            } else if let rows, let columns {
                                Resampler.resample(destination, sourceWidth: sourceWidth,
                                                   into: target + c * outputPlane, rows: rows, columns: columns)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Convenience: the images at `indices` as a new NCHW float array.
    public func tensor<Indices: Collection>(
        _ images: LabeledImages, indices: Indices, channels: Int, height: Int, width: Int
    ) throws -> [Float] where Indices.Element == Int {
        var values = [Float](repeating: 0, count: indices.count * channels * height * width)
        try values.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            try fill(images, indices: indices, channels: channels, height: height, width: width, into: base)
        }
        return values
    }

    enum ChannelConversion { case same, replicate, luminance }
}
