// The ONNX model types (ONNXModel, ONNXTensor, …) and EngineError live in
// SlicerONNX, a module of their own only so that the file reader keeps Swift's
// runtime checks in release builds (Package.swift). For every user of the
// engine they remain part of it.
@_exported import SlicerONNX
