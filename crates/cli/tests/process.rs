//! `besikta process` as a user runs it: what it counts and says about photos that pass the
//! header check but cannot be decoded.

use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;
use common::*;

/// A copy of a Brighton photo whose first Huffman table claims more codes than exist: its
/// headers, EXIF and XMP are intact (ingest accepts it), its pixels cannot be decoded.
fn undecodable_copy(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(fixtures().join("brighton/DJI_0018.JPG")).unwrap();
    let mut pos = 2;
    loop {
        assert_eq!(bytes[pos], 0xFF, "a marker at {pos}");
        let marker = bytes[pos + 1];
        let length = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
        assert_ne!(marker, 0xDA, "a DHT segment before the scan");
        if marker == 0xC4 {
            // The 16 code-length counts after the table class/id byte.
            bytes[pos + 5..pos + 21].fill(0xFF);
            break;
        }
        pos += 2 + length;
    }
    let path = dir.join("DJI_0018_bad_huffman.JPG");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_photo_that_fails_to_decode_is_rejected_and_not_counted_as_processed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = undecodable_copy(dir.path());
    let out = dir.path().join("out");
    let good = fixtures().join("brighton/DJI_0019.JPG");
    let o = besikta(&[
        "process",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        "--models",
        fixtures().join("models/coarse").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("photos: 2 found, 1 processed, 1 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rejected") && stdout.contains("DJI_0018_bad_huffman.JPG"),
        "{stdout}"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["photos_found"], 2);
    assert_eq!(summary["photos_processed"], 1);
    let rejected = summary["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("DJI_0018_bad_huffman.JPG"));
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot be decoded"),
        "{}",
        rejected[0]
    );
}

#[test]
fn a_model_finer_than_the_flight_is_not_run_and_the_crew_hears_how_low_to_fly() {
    // fixtures/models holds a close-up crack model (at most 1.4 mm/px) and, in coarse/, the
    // same network declared at 68 mm/px; the Brighton photo is 17 mm/px.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let photo = fixtures().join("brighton/DJI_0020.JPG");
    let o = besikta(&[
        "process",
        photo.to_str().unwrap(),
        "--models",
        fixtures().join("models").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let advice = "mtscrack (crack) needs 1.4 mm/px or finer; this flight is 1.7 cm/px \
                  (1 of 1 photos coarser, not run): fly at 3 m or lower with this camera";
    assert!(stdout.contains(&format!("warning: {advice}")), "{stdout}");
    assert!(
        stdout.contains("not run on 1 photos too coarse for it"),
        "{stdout}"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["warnings"], serde_json::json!([advice]));
    let models = summary["models"].as_array().unwrap();
    let fine = models
        .iter()
        .find(|m| {
            m["manifest"]
                .as_str()
                .unwrap()
                .ends_with("mtscrack_static.toml")
        })
        .unwrap();
    assert_eq!(fine["photos_skipped_for_scale"], 1);
    assert_eq!(fine["tiles_total"], 0, "not a tile was run");
    // Enlarged 12x to 1.4 mm/px it would have needed thousands of 256 px tiles.
    assert!(
        fine["tiles_skipped_for_scale"].as_u64().unwrap() > 1000,
        "{fine}"
    );
    let coarse = models
        .iter()
        .find(|m| {
            m["manifest"]
                .as_str()
                .unwrap()
                .ends_with("mtscrack_coarse.toml")
        })
        .unwrap();
    assert_eq!(coarse["photos_skipped_for_scale"], 0);
    assert!(coarse["tiles_total"].as_u64().unwrap() > 0);
}
