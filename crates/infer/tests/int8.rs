//! The shipped int8 models compute, on the CPU the tests run on, what their float originals compute.
//!
//! ONNX Runtime's int8 convolutions on x86 CPUs without VNNI (AVX2 only, e.g. AMD EPYC before
//! Zen 4) add pairs of uint8 x int8 products in 16 bits, which saturates when the weights use
//! the full int8 range. The shipped files were quantized with 8-bit weights until 2026-12-07: on
//! such a CPU 0.9 % of the crack model's output values on this test's tiles moved by more than
//! 0.1 against the float model (0.05 % with 7-bit weights), and its card F1 fell 3-4 points.
//! `models/train/quantize_int8.py` now quantizes weights to 7 bits, which makes the kernels exact on
//! every CPU. This test runs each shipped int8 file and the float file beside it on the same
//! tiles of a real Brighton photo and bounds how far apart they are, so a model quantized the
//! old way fails here on a CPU that saturates.

use besikta_infer::{decode_photo, EngineConfig, Manifest, Model};
use std::path::{Path, PathBuf};

const MAX_PIXELS: u64 = 200_000_000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cfg() -> EngineConfig {
    EngineConfig {
        workers: 1,
        intra_threads: 1,
        ..EngineConfig::default()
    }
}

/// The int8 model a shipped manifest names, and a manifest for the float file beside it
/// (written to `tmp`, pointing at the float file by absolute path).
fn int8_and_float(rel: &str, tmp: &Path) -> (Model, Model) {
    let manifest = repo().join("models").join(rel);
    let int8 = Model::load(&manifest, &cfg()).unwrap();
    let m = Manifest::load(&manifest).unwrap();
    let name = m.model.to_string_lossy().to_string();
    assert!(
        name.ends_with("-int8.onnx"),
        "{rel} names {name}, not an int8 file"
    );
    let float = m.dir.join(name.replace("-int8.onnx", ".onnx"));
    assert!(float.exists(), "{} missing", float.display());
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replacen(
        &format!("model = \"{name}\""),
        &format!("model = {:?}", float.canonicalize().unwrap()),
        1,
    );
    let dst = tmp.join(manifest.file_name().unwrap());
    std::fs::write(&dst, text).unwrap();
    (int8, Model::load(&dst, &cfg()).unwrap())
}

/// |int8 - float| over every output value of 24 tiles spread over DJI_0018, sorted.
fn differences(rel: &str) -> (Vec<f32>, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut int8, mut float) = int8_and_float(rel, tmp.path());
    let img = decode_photo(&repo().join("fixtures/brighton/DJI_0018.JPG"), MAX_PIXELS).unwrap();
    let (tw, th) = (int8.manifest().input.width, int8.manifest().input.height);
    let mut input = Vec::new();
    let mut n = 0;
    for j in 0..4 {
        for i in 0..6 {
            let x = (img.width() - tw) * i / 5;
            let y = (img.height() - th) * j / 3;
            input.extend(int8.preprocess_tile(&img, x, y));
            n += 1;
        }
    }
    let (shape_q, q) = int8.run_tensor(&input, n).unwrap();
    let (shape_f, f) = float.run_tensor(&input, n).unwrap();
    assert_eq!(shape_q, shape_f);
    let mean_abs_float = f.iter().map(|v| v.abs() as f64).sum::<f64>() / f.len() as f64;
    let mut d: Vec<f32> = q.iter().zip(&f).map(|(a, b)| (a - b).abs()).collect();
    d.sort_by(f32::total_cmp);
    (d, mean_abs_float)
}

fn quantile(sorted: &[f32], q: f64) -> f32 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn share_above(sorted: &[f32], t: f32) -> f64 {
    sorted.iter().filter(|&&v| v > t).count() as f64 / sorted.len() as f64
}

#[test]
fn int8_crack_model_agrees_with_its_float_model() {
    let (d, _) = differences("crack/crack-unet.toml");
    let (p999, share) = (quantile(&d, 0.999), share_above(&d, 0.1));
    eprintln!("crack int8 vs float: p99.9 {p999:.4}, share > 0.1 {share:.5}");
    // 7-bit weights (2026-12-07), AMD EPYC with AVX2: 0.063 and 0.00049; the 8-bit file there
    // gave 0.878 and 0.0088.
    assert!(p999 < 0.2 && share < 0.002, "p99.9 {p999}, share {share}");
}

#[test]
fn int8_roof_model_agrees_with_its_float_model() {
    let (d, _) = differences("roof/roof-damage.toml");
    let (p999, share) = (quantile(&d, 0.999), share_above(&d, 0.1));
    eprintln!("roof int8 vs float: p99.9 {p999:.4}, share > 0.1 {share:.5}");
    // 7-bit weights: 0.057 and 0.00053; the 8-bit file on the same CPU: 0.100 and 0.00100.
    assert!(
        p999 < 0.085 && share < 0.0008,
        "p99.9 {p999}, share {share}"
    );
}

#[test]
fn int8_pothole_model_agrees_with_its_float_model() {
    // Raw detector output (box coordinates in tile pixels and class scores).
    let (d, mean_abs_float) = differences("pothole/pothole-det.toml");
    let mean = d.iter().map(|&v| v as f64).sum::<f64>() / d.len() as f64;
    let rel = mean / mean_abs_float;
    eprintln!(
        "pothole int8 vs float: mean |diff| {mean:.4} ({rel:.4} of the mean |float|), max {:.3}",
        d[d.len() - 1]
    );
    // 7-bit weights: 0.0079 (max 43.7 px); the 8-bit file on the same CPU: 0.0447 (max 219 px).
    assert!(
        rel < 0.02,
        "mean |diff| {mean} against mean |float| {mean_abs_float}"
    );
}
