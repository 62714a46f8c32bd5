//! `besikta scan` as a user runs it: the built binary on the fixture folders, its JSON
//! shape, its table, and its exit codes (0 all usable, 1 something rejected, 2 usage).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn besikta(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_besikta"))
        .args(args)
        .current_dir(fixtures())
        .output()
        .expect("the besikta binary runs")
}

/// The fields the issue names as the contract of `--format json`.
const CONTRACT: &[&str] = &[
    "file",
    "sha256",
    "width",
    "height",
    "make",
    "model",
    "taken_at",
    "latitude",
    "longitude",
    "absolute_altitude_m",
    "relative_altitude_m",
    "gimbal_yaw_deg",
    "gimbal_pitch_deg",
    "gimbal_roll_deg",
    "flight_yaw_deg",
    "flight_pitch_deg",
    "flight_roll_deg",
    "focal_length_mm",
    "focal_length_35mm",
    "focal_length_px",
    "intrinsics_source",
];

#[test]
fn json_lists_good_photos_and_rejects_broken_ones_with_exit_code_1() {
    let out = besikta(&["scan", "brighton", "broken", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let captures = report["captures"].as_array().unwrap();
    let rejected = report["rejected"].as_array().unwrap();
    assert!(report["orthophotos"].as_array().unwrap().is_empty());

    let files: Vec<&str> = captures
        .iter()
        .map(|c| c["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "brighton/DJI_0018.JPG",
            "brighton/DJI_0019.JPG",
            "brighton/DJI_0020.JPG",
            "broken/duplicate-1.jpg"
        ]
    );
    for capture in captures {
        for key in CONTRACT {
            assert!(capture.get(*key).is_some(), "{key} missing in {capture}");
        }
    }

    // DJI_0018 against exiftool's reading of it.
    let c = &captures[0];
    let tags: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("brighton/DJI_0018.exiftool.json")).unwrap(),
    )
    .unwrap();
    let tags = &tags[0];
    assert_eq!(c["width"], 4000);
    assert_eq!(c["height"], 2250);
    assert_eq!(c["make"], "DJI");
    assert_eq!(c["model"], "FC300S");
    assert_eq!(c["taken_at"], "2016-06-23T16:31:59");
    let near = |key: &str, truth: f64, tolerance: f64| {
        let ours = c[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {}", c[key]));
        assert!(
            (ours - truth).abs() <= tolerance,
            "{key}: {ours} vs {truth}"
        );
    };
    near("latitude", tags["GPSLatitude"].as_f64().unwrap(), 1e-7);
    near("longitude", tags["GPSLongitude"].as_f64().unwrap(), 1e-7);
    near("absolute_altitude_m", 198.31, 0.01);
    near("relative_altitude_m", 39.8, 0.01);
    near("gimbal_yaw_deg", 45.0, 0.01);
    near("gimbal_pitch_deg", -89.9, 0.01);
    near("flight_yaw_deg", 46.0, 0.01);
    near("focal_length_mm", 3.61, 1e-9);
    near("focal_length_35mm", 20.0, 1e-9);
    near("focal_length_px", 3.61 / 6.17 * 4000.0, 1e-6);
    assert_eq!(c["intrinsics_source"], "camera-database");
    assert_eq!(c["sha256"].as_str().unwrap().len(), 64);

    let reasons: Vec<(&str, &str)> = rejected
        .iter()
        .map(|r| (r["file"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    let expect = [
        ("broken/bomb-65535x65535.jpg", "megapixel limit"),
        (
            "broken/duplicate-2.jpg",
            "same photo as broken/duplicate-1.jpg",
        ),
        ("broken/gimbal-up.jpg", "above the horizon"),
        ("broken/latitude-95.jpg", "latitude is 95"),
        ("broken/no-gps.jpg", "no GPS position in EXIF or XMP"),
        ("broken/not-a-photo.jpg", "not a JPEG photo"),
        ("broken/truncated.jpg", "ends before its image data"),
    ];
    assert_eq!(reasons.len(), expect.len(), "{reasons:#?}");
    for ((file, reason), (want_file, want_words)) in reasons.iter().zip(expect) {
        assert_eq!(*file, want_file);
        assert!(reason.contains(want_words), "{file}: {reason}");
    }
}

#[test]
fn table_is_the_default_and_clean_input_exits_0() {
    let out = besikta(&["scan", "brighton"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("FILE"), "{table}");
    assert!(lines[1].starts_with("brighton/DJI_0018.JPG"), "{table}");
    assert!(lines[1].contains("2016-06-23T16:31:59"), "{table}");
    assert!(lines[1].contains("46.8426071"), "{table}");
    assert!(lines[1].contains("2340.4 (camera-database)"), "{table}");
    assert!(table.contains("3 photos usable, 0 rejected"), "{table}");
}

#[test]
fn table_lists_rejections_with_reasons() {
    let out = besikta(&["scan", "broken/not-a-photo.jpg", "broken/duplicate-1.jpg"]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("1 photo usable, 1 rejected"), "{table}");
    assert!(
        table.contains("REJECTED\nbroken/not-a-photo.jpg\n    not a JPEG photo"),
        "{table}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let missing = besikta(&["scan", "no-such-folder"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file or folder"));
    assert_eq!(besikta(&["scan"]).status.code(), Some(2));
    assert_eq!(
        besikta(&["scan", "brighton", "--format", "xml"])
            .status
            .code(),
        Some(2)
    );
}
