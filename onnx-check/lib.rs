//! Nothing here: the package's content is its tests (`tests/suite/`, tapegrad's ONNX export
//! run in tract against tapegrad's own outputs), the example `examples/fashion.rs` (the main
//! job's exported file on the held-out images) and `check.py` (ONNX Runtime).
