//! Models that do not match their manifest are refused at load time with a precise message,
//! and CUDA without its provider library fails clearly instead of falling back to CPU.

use besikta_infer::{Device, EngineConfig, InferError, Model};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The mtscrack manifest with one edit, written next to an absolute model path.
fn load_edited(from: &str, to: &str, device: Device) -> Result<Model, InferError> {
    let text = std::fs::read_to_string(fixtures().join("models/mtscrack_static.toml")).unwrap();
    assert!(text.contains(from), "fixture manifest lost `{from}`");
    let onnx = fixtures()
        .join("models/mtscrack_static.onnx")
        .canonicalize()
        .unwrap();
    let text = text.replacen(from, to, 1).replacen(
        "model = \"mtscrack_static.onnx\"",
        &format!("model = {:?}", onnx.display().to_string()),
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = EngineConfig {
        device,
        workers: 1,
        intra_threads: 1,
        batch_size: 1,
    };
    Model::load(&path, &cfg)
}

#[test]
fn mismatches_are_refused_with_the_reason() {
    let cases = [
        (
            "name = \"input_bgr\"",
            "name = \"image\"",
            "has no input `image` (its inputs: `input_bgr`)",
        ),
        (
            "name = \"final_mask\"",
            "name = \"mask\"",
            "has no output `mask` (its outputs: `final_mask`)",
        ),
        (
            "width = 256",
            "width = 512",
            "width is 256, the manifest says 512",
        ),
        (
            "dynamic_batch = false",
            "dynamic_batch = true",
            "batch dimension is fixed at 1",
        ),
        (
            "asset_kind = \"road\"",
            "asset_kind = \"road\"\n\n[[classes]]\nname = \"pothole\"\nasset_kind = \"road\"",
            "has 1 channels ([1, 1, 256, 256]) but the manifest lists 2 classes",
        ),
        (
            "task = \"segmentation\"",
            "task = \"detection\"",
            "segmentation decoding but `task = \"detection\"`",
        ),
    ];
    for (from, to, expect) in cases {
        let err = load_edited(from, to, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains(expect), "{to}:\n{err}");
        assert!(
            err.contains("edited.toml"),
            "the message names the manifest: {err}"
        );
    }
    // A detection decoding on this segmentation model: the output rank does not fit.
    let err = load_edited(
        "decode = \"probabilities\"",
        "decode = \"yolov8\"",
        Device::Cpu,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(err.contains("detection decoding"), "{err}");
    assert!(load_edited("scale = 1.0", "scale = 1.0", Device::Cpu).is_ok());
}

#[test]
fn cuda_without_its_provider_library_is_a_clear_error() {
    let err = load_edited("scale = 1.0", "scale = 1.0", Device::Cuda).unwrap_err();
    assert!(matches!(err, InferError::Cuda(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("libonnxruntime_providers_cuda.so"), "{msg}");
    assert!(msg.contains("onnxruntime-gpu"), "{msg}");
    assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join("models/mtscrack_static.toml")).unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, text).unwrap();
    let err = Model::load(&path, &EngineConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mtscrack_static.onnx, which does not exist"),
        "{err}"
    );
}
