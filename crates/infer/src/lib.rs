//! ONNX defect models: manifests, sessions, tiling, pre- and post-processing.
