//! Parity with Python onnxruntime: same photo, same pre-processing, same output tensor to 1e-4.
//!
//! The reference tensors come from `fixtures/models/make_reference.py` (PIL + numpy + onnxruntime).

use besikta_infer::{decode_photo, EngineConfig, InferOptions, Model};
use std::path::{Path, PathBuf};

/// The decompression-bomb guard the product passes (ingest's limit, 200 MP).
const MAX_PIXELS: u64 = 200_000_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn load(workers: usize) -> Model {
    let cfg = EngineConfig {
        workers,
        intra_threads: 1,
        ..EngineConfig::default()
    };
    Model::load(&fixtures().join("models/mtscrack_static.toml"), &cfg).unwrap()
}

#[test]
fn input_and_output_tensors_match_python_onnxruntime() {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("models/mtscrack_parity.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["input_shape"], serde_json::json!([1, 3, 256, 256]));
    let want_in = read_f32(&fixtures().join("models/mtscrack_parity_input.f32"));
    let want_out = read_f32(&fixtures().join("models/mtscrack_parity_output.f32"));

    let mut model = load(1);
    let photo = decode_photo(
        &fixtures().join("cracks/parity_deepcrack_11111_crop.png"),
        MAX_PIXELS,
    )
    .unwrap();
    let input = model.preprocess_tile(&photo, 0, 0);
    assert_eq!(input.len(), want_in.len());
    // PNG decodes to the same bytes in both languages and the normalisation rounds once, so
    // the input must be bit-identical.
    let diffs = input.iter().zip(&want_in).filter(|(a, b)| a != b).count();
    assert_eq!(
        diffs, 0,
        "input tensor differs from Python's in {diffs} values"
    );

    let (shape, out) = model.run_tensor(&input, 1).unwrap();
    assert_eq!(shape, vec![1, 1, 256, 256]);
    let max_err = out
        .iter()
        .zip(&want_out)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_err <= 1e-4, "max |rust - python| = {max_err}");
    // The reference is not trivially empty: the crop holds a crack.
    assert!(want_out.iter().filter(|&&p| p >= 0.5).count() > 500);
}

#[test]
fn a_single_tile_photo_through_the_whole_engine_gives_pythons_mask() {
    let want_out = read_f32(&fixtures().join("models/mtscrack_parity_output.f32"));
    let mut model = load(2);
    let photo = decode_photo(
        &fixtures().join("cracks/parity_deepcrack_11111_crop.png"),
        MAX_PIXELS,
    )
    .unwrap();
    let res = model.infer_image(&photo, &InferOptions::default()).unwrap();
    assert_eq!((res.tiles_total, res.tiles_skipped), (1, 0));
    let mask = res.mask.unwrap();
    // One tile, blended with itself: the mask is Python's output thresholded at 0.5, except
    // where Python's probability is within the tolerance of the threshold.
    let mut disagree = 0;
    for (i, (&m, &p)) in mask.as_raw().iter().zip(&want_out).enumerate() {
        if (p - 0.5).abs() > 1e-4 && (m == 1) != (p >= 0.5) {
            disagree += 1;
            eprintln!("pixel {i}: mask {m}, python {p}");
        }
    }
    assert_eq!(disagree, 0);
    let crack_px: f64 = res.detections.iter().map(|d| d.area_px).sum();
    let python_px = want_out.iter().filter(|&&p| p >= 0.5).count() as f64;
    // Components below min_area_px (16) are dropped, so the sum may be slightly lower.
    assert!(
        crack_px <= python_px && crack_px >= python_px * 0.95,
        "{crack_px} vs {python_px}"
    );
    for d in &res.detections {
        assert_eq!(d.class, "crack");
        assert!(d.confidence >= 0.5 && d.confidence <= 1.0);
        assert!(d.length_px.unwrap() > 0.0);
        assert!(d.polygon.as_ref().unwrap().len() >= 3);
    }
}
