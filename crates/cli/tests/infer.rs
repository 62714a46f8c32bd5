//! `besikta infer` end to end: JSON shape, masks and overlays, a bad photo among good ones, CUDA error.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn besikta() -> Command {
    Command::new(env!("CARGO_BIN_EXE_besikta"))
}

#[test]
fn json_masks_and_overlays_for_crack_photos_and_a_broken_one() {
    let out_dir = tempfile::tempdir().unwrap();
    let broken = out_dir.path().join("broken.jpg");
    std::fs::write(&broken, b"this is not a JPEG").unwrap();
    let masks = out_dir.path().join("masks");
    let overlay = out_dir.path().join("overlay");
    let output = besikta()
        .arg("infer")
        .arg("--model")
        .arg(fixtures().join("models/mtscrack_static.toml"))
        .arg(fixtures().join("cracks/deepcrack_11111.jpg"))
        .arg(&broken)
        .arg(fixtures().join("cracks/crack500_20160222_081031.jpg"))
        .args(["--format", "json", "--gsd-mm", "1.0", "--threads", "2"])
        .arg("--masks")
        .arg(&masks)
        .arg("--overlay")
        .arg(&overlay)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // One photo failed: exit 1, named with its reason; the others were processed.
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let photos = json["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    assert_eq!(
        json["errors"][0]["file"].as_str().unwrap(),
        broken.display().to_string()
    );
    assert!(json["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("decode"));

    let first = &photos[0];
    assert!(first["file"]
        .as_str()
        .unwrap()
        .ends_with("deepcrack_11111.jpg"));
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(544), Some(384))
    );
    let dets = first["detections"].as_array().unwrap();
    assert!(!dets.is_empty(), "the crack in deepcrack_11111 is found");
    for d in dets {
        assert_eq!(d["class"], "crack");
        let c = d["confidence"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&c));
        let b: Vec<f64> = d["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            b[0] < b[2] && b[1] < b[3] && b[2] <= 544.0 && b[3] <= 384.0,
            "{b:?}"
        );
        assert!(d["polygon"].as_array().unwrap().len() >= 3);
        assert!(d["area_px"].as_f64().unwrap() >= 16.0);
        assert!(d["length_px"].as_f64().unwrap() > 0.0);
    }

    // Masks at the photo's own size with class indices; overlays as JPEG.
    let mask = besikta_infer::image::open(masks.join("deepcrack_11111.png"))
        .unwrap()
        .to_luma8();
    assert_eq!(mask.dimensions(), (544, 384));
    assert!(mask.pixels().all(|p| p[0] <= 1));
    let area: f64 = dets.iter().map(|d| d["area_px"].as_f64().unwrap()).sum();
    let lit = mask.pixels().filter(|p| p[0] == 1).count() as f64;
    assert!(
        lit >= area,
        "mask pixels {lit} cover the components' {area}"
    );
    let ov = besikta_infer::image::open(overlay.join("deepcrack_11111.jpg")).unwrap();
    assert_eq!((ov.width(), ov.height()), (544, 384));
    assert!(!masks.join("broken.png").exists());
}

#[test]
fn the_table_names_each_photo() {
    let output = besikta()
        .arg("infer")
        .arg("--model")
        .arg(fixtures().join("models/mtscrack_static.toml"))
        .arg(fixtures().join("cracks/deepcrack_11114.jpg"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("deepcrack_11114.jpg  544x384"), "{text}");
    assert!(text.contains("crack "), "{text}");
}

#[test]
fn cuda_on_a_machine_without_it_fails_clearly() {
    let output = besikta()
        .arg("infer")
        .arg("--model")
        .arg(fixtures().join("models/mtscrack_static.toml"))
        .arg(fixtures().join("cracks/deepcrack_11114.jpg"))
        .args(["--device", "cuda"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("libonnxruntime_providers_cuda.so"),
        "{stderr}"
    );
}

#[test]
fn a_decompression_bomb_is_refused_by_name_and_the_batch_goes_on() {
    let output = besikta()
        .arg("infer")
        .arg("--model")
        .arg(fixtures().join("models/mtscrack_static.toml"))
        .arg(fixtures().join("broken/bomb-65535x65535.jpg"))
        .arg(fixtures().join("cracks/deepcrack_11114.jpg"))
        .args(["--format", "json", "--gsd-mm", "1.0", "--threads", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Before the limit, the decoder asked for 13 GB and the process aborted (SIGABRT).
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("bomb-65535x65535.jpg")
            && stderr.contains("65535 x 65535")
            && stderr.contains("megapixel limit"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let photos = json["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 1, "the good photo was still processed");
    assert!(photos[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("deepcrack_11114.jpg"));
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["reason"]
        .as_str()
        .unwrap()
        .contains("decompression bomb"));
}

#[test]
fn without_a_gsd_it_says_so_and_asks_for_gsd_mm() {
    let output = besikta()
        .arg("infer")
        .arg("--model")
        .arg(fixtures().join("models/mtscrack_static.toml"))
        .arg(fixtures().join("cracks/deepcrack_11114.jpg"))
        .args(["--threads", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("deepcrack_11114.jpg: no ground sampling distance known")
            && stderr.contains("as if it were 1 mm/px")
            && stderr.contains("pass --gsd-mm"),
        "{stderr}"
    );
}

#[test]
fn a_photo_coarser_than_the_model_is_skipped_not_enlarged() {
    // A Brighton drone photo (17 mm/px at 40 m) and a close-up crack model (at most 1.4
    // mm/px): before, it was enlarged 17 times (289 times the tiles) and run anyway.
    let output = besikta()
        .arg("infer")
        .arg("--model")
        .arg(fixtures().join("models/mtscrack_static.toml"))
        .arg(fixtures().join("brighton/DJI_0020.JPG"))
        .args(["--format", "json", "--threads", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json["photos"].as_array().unwrap().is_empty());
    let reason = json["errors"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("mtscrack (crack) needs 1.4 mm/px or finer; this photo is 1.7 cm/px")
            && reason.ends_with("fly at 3 m or lower with this camera"),
        "{reason}"
    );
    assert!(
        stderr.contains("skipped") && stderr.contains("DJI_0020.JPG"),
        "{stderr}"
    );
}
