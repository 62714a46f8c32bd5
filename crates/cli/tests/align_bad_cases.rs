//! `besikta align` on the bad cases of issue 12, on flights the simulator renders at test
//! time over the Helsinki register fixture: a single photo, photos that do not overlap,
//! oblique photos, two flights in one folder, a reference that does not cover the flight
//! and one in another CRS than the flight's. Each run succeeds (nothing fails as a whole),
//! says what happened in plain words, and a photo that cannot be aligned keeps its
//! metadata pose with the reason.

mod common;

use besikta_sim::{simulate, SimConfig, SimOutput};
use common::{besikta, fixtures};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn sim(out: &Path, seed: u64, photos: usize, overlap_pct: f64) -> SimConfig {
    SimConfig {
        register: fixtures().join("registers/helsinki.osm.pbf"),
        out_dir: out.to_path_buf(),
        seed,
        photos,
        width_px: 1000,
        altitude_m: 40.0,
        overlap_pct,
        defects: 0,
        gps_noise_m: 2.0,
        yaw_noise_deg: 1.0,
        ..Default::default()
    }
}

fn flight(out: &Path, seed: u64, photos: usize, overlap_pct: f64) -> SimOutput {
    simulate(&sim(out, seed, photos, overlap_pct)).expect("the simulation runs")
}

/// `besikta align DIR [extra] -o poses.json`: its stdout and the poses file.
fn align(flight: &Path, extra: &[&str]) -> (String, Value) {
    let out = flight.parent().unwrap().join("poses.json");
    let mut args = vec![
        "align",
        flight.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = besikta(&args);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("{stdout}");
    let v = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    (stdout, v)
}

/// Every photo keeps its metadata pose (no correction) with a reason holding `reason`,
/// and stdout says so for each.
fn all_metadata(stdout: &str, v: &Value, reason: &str) {
    let photos = v["photos"].as_array().unwrap();
    assert!(!photos.is_empty());
    for p in photos {
        assert_eq!(p["source"], "metadata", "{p}");
        assert_eq!(p["correction_m"], serde_json::json!([0.0, 0.0]), "{p}");
        assert_eq!(p["yaw_correction_deg"], 0.0, "{p}");
        let r = p["reason"].as_str().unwrap_or_default();
        assert!(r.contains(reason), "{p}");
    }
    assert_eq!(
        stdout.matches("metadata pose (").count(),
        photos.len(),
        "{stdout}"
    );
    assert!(stdout.contains(reason), "{stdout}");
}

#[test]
fn a_single_photo_keeps_its_metadata_pose() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    flight(&photos, 21, 1, 70.0);
    let (stdout, v) = align(&photos, &[]);
    assert!(stdout.starts_with("0 of 1 photos aligned"), "{stdout}");
    all_metadata(&stdout, &v, "a single photo: nothing to align it with");
}

#[test]
fn photos_that_do_not_overlap_keep_their_metadata_poses() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    // Planned edge to edge, GPS noise well under the gap's margin.
    simulate(&SimConfig {
        gps_noise_m: 0.5,
        ..sim(&photos, 22, 2, 0.0)
    })
    .unwrap();
    let (stdout, v) = align(&photos, &[]);
    assert!(stdout.contains("0 of 0 pairs accepted"), "{stdout}");
    all_metadata(&stdout, &v, "no other photo shares");
}

/// The JPEG without its APP1 segments (EXIF, XMP), so new metadata can be spliced in.
fn strip_app1(jpeg: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        if jpeg[i + 1] != 0xE1 {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    out.extend_from_slice(&jpeg[i..]);
    out
}

#[test]
fn oblique_photos_keep_their_metadata_poses() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let s = flight(&photos, 23, 3, 70.0);
    // The same photos, their gimbal said to look 35 degrees off straight down.
    for p in &s.photos {
        let path = photos.join(&p.file);
        let mut meta = p.meta.clone();
        meta.gimbal_pitch_deg = -55.0;
        let bare = strip_app1(&std::fs::read(&path).unwrap());
        std::fs::write(
            &path,
            besikta_sim::exif::splice_metadata(&bare, &meta).unwrap(),
        )
        .unwrap();
    }
    let (stdout, v) = align(&photos, &[]);
    all_metadata(&stdout, &v, "oblique photos are not aligned");
    assert!(
        stdout.contains("35 degrees away from straight down"),
        "{stdout}"
    );
}

#[test]
fn two_flights_in_one_folder_are_each_aligned_to_themselves_never_to_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    flight(&photos, 24, 4, 70.0);
    // A second flight 1.7 km north, its photos renamed into the same folder.
    let other = dir.path().join("other");
    simulate(&SimConfig {
        center: [60.1850, 24.9500],
        ..sim(&other, 25, 4, 70.0)
    })
    .unwrap();
    for e in std::fs::read_dir(&other).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".JPG") {
            std::fs::copy(e.path(), photos.join(format!("B_{name}"))).unwrap();
        }
    }
    let (stdout, v) = align(&photos, &[]);
    assert!(stdout.contains(" of 8 photos aligned"), "{stdout}");
    let flight_of = |f: &str| {
        Path::new(f)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("B_")
    };
    let pairs = v["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 4, "{pairs:?}");
    for p in pairs {
        assert_eq!(
            flight_of(p["a"].as_str().unwrap()),
            flight_of(p["b"].as_str().unwrap()),
            "a pair across the two flights: {p}"
        );
    }
    // Each photo is aligned within its own flight or keeps its metadata pose with a reason.
    for p in v["photos"].as_array().unwrap() {
        match p["source"].as_str().unwrap() {
            "flight" => assert!(p["sigma_m"].as_f64().is_some(), "{p}"),
            "metadata" => assert!(p["reason"].as_str().is_some_and(|r| !r.is_empty()), "{p}"),
            other => panic!("source {other}: {p}"),
        }
    }
    assert!(
        v["photos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["source"] == "flight")
            .count()
            >= 6,
        "{stdout}"
    );
}

/// `gdalwarp -t_srs EPSG:3067` of `src` to `dest`.
fn warp_to_tm35fin(src: &Path, dest: &Path) {
    let o = std::process::Command::new("gdalwarp")
        .args(["-q", "-t_srs", "EPSG:3067", "-r", "bilinear"])
        .arg(src)
        .arg(dest)
        .output()
        .expect("gdalwarp (GDAL's tools) is installed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_reference_that_does_not_cover_the_flight_is_set_aside_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    flight(&photos, 26, 4, 70.0);
    // The orthophoto of another place, 1.7 km north, in another CRS.
    let utm: PathBuf = dir.path().join("elsewhere-utm.tif");
    simulate(&SimConfig {
        center: [60.1850, 24.9500],
        orthophoto: Some(utm.clone()),
        ..sim(&dir.path().join("elsewhere"), 27, 1, 70.0)
    })
    .unwrap();
    let tm35 = dir.path().join("elsewhere.tif");
    warp_to_tm35fin(&utm, &tm35);
    let (stdout, v) = align(&photos, &["--reference", tm35.to_str().unwrap()]);
    assert!(stdout.contains("does not cover the flight"), "{stdout}");
    let note = v["summary"]["reference"].as_str().unwrap();
    assert!(note.contains("does not cover the flight"), "{note}");
    // Still aligned to itself; no pose comes from the reference.
    for p in v["photos"].as_array().unwrap() {
        assert_ne!(p["source"], "reference", "{p}");
    }
    assert!(
        v["photos"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["source"] == "flight"),
        "{stdout}"
    );

    // A reference that is no raster: a clear error naming it, before any work.
    let bad = dir.path().join("notes.tif");
    std::fs::write(&bad, "not a raster").unwrap();
    let o = besikta(&[
        "align",
        photos.to_str().unwrap(),
        "--reference",
        bad.to_str().unwrap(),
        "-o",
        dir.path().join("bad.json").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot read the reference"), "{err}");
    assert!(err.contains("notes.tif"), "{err}");
}

#[test]
fn a_reference_in_another_crs_than_the_flights_fixes_the_poses() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let utm = dir.path().join("truth-utm.tif");
    simulate(&SimConfig {
        orthophoto: Some(utm.clone()),
        ..sim(&photos, 1207, 6, 70.0)
    })
    .unwrap();
    let tm35 = dir.path().join("truth-tm35fin.tif");
    warp_to_tm35fin(&utm, &tm35);
    let (stdout, v) = align(&photos, &["--reference", tm35.to_str().unwrap()]);
    assert!(
        stdout.contains("6 photos matched the reference"),
        "{stdout}"
    );
    for p in v["photos"].as_array().unwrap() {
        assert_eq!(p["source"], "reference", "{p}");
    }
}
