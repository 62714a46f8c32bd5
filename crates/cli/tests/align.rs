//! `besikta align` on the three real Brighton fixture photos: every photo gets a pose with
//! its source (and a reason when it keeps the metadata), every pair tried is listed, and the
//! re-correlation check runs; a folder without photos is a clear error.

use serde_json::Value;

mod common;
use common::*;

#[test]
fn align_writes_a_pose_for_every_photo_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("poses.json");
    let o = besikta(&[
        "align",
        brighton().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--verify",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let photos = v["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 3);
    for p in photos {
        let source = p["source"].as_str().unwrap();
        assert!(["metadata", "flight"].contains(&source), "{p}");
        if source == "metadata" {
            assert!(p["reason"].as_str().is_some_and(|r| !r.is_empty()), "{p}");
            assert_eq!(p["correction_m"], serde_json::json!([0.0, 0.0]));
        } else {
            assert!(p["sigma_m"].as_f64().is_some(), "{p}");
        }
        assert!(p["latitude"].as_f64().is_some_and(f64::is_finite), "{p}");
    }
    // DJI_0018/0019/0020 are consecutive: at least the two neighbouring pairs are tried.
    let pairs = v["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 2, "{pairs:?}");
    for p in pairs {
        assert!(
            p["accepted"].as_bool().unwrap() || p["reason"].as_str().is_some(),
            "{p}"
        );
    }
    assert_eq!(
        v["summary"]["pairs_tried"].as_u64().unwrap() as usize,
        pairs.len()
    );
    assert!(v["verify"].is_object());
}

#[test]
fn align_without_photos_says_so() {
    common::assert_no_photos_is_an_error("align", "poses.json");
}

/// DJI_0020 looks down on forest canopy (a strip of road and lawn at one edge), 20-25 m
/// below the drone: treetops move between views, so none of its pairs may be trusted.
#[test]
fn a_photo_over_forest_keeps_its_metadata_pose_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("poses.json");
    let o = besikta(&[
        "align",
        brighton().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let forest = v["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file"].as_str().unwrap().ends_with("DJI_0020.JPG"))
        .unwrap();
    assert_eq!(forest["source"], "metadata", "{forest}");
    assert_eq!(forest["correction_m"], serde_json::json!([0.0, 0.0]));
    let reason = forest["reason"].as_str().unwrap();
    assert!(reason.contains("overlapping pairs matched"), "{reason}");
    // Each of its pairs was tried and refused with a reason of its own.
    let pairs: Vec<&Value> = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["a"].as_str().unwrap().ends_with("DJI_0020.JPG")
                || p["b"].as_str().unwrap().ends_with("DJI_0020.JPG")
        })
        .collect();
    assert!(!pairs.is_empty());
    for p in pairs {
        assert_eq!(p["accepted"], false, "{p}");
        assert!(p["reason"].as_str().is_some_and(|r| !r.is_empty()), "{p}");
    }
    // The user is told too.
    assert!(stdout.contains("DJI_0020.JPG: metadata pose ("), "{stdout}");
}
