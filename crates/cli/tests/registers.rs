//! `besikta process` with registers that used to fail silently or let GDAL print its own
//! `ERROR n:` lines: a projected GeoJSON without a `crs` member, a truncated GeoJSON.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn process(register: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_besikta"))
        .arg("process")
        .arg(fixtures().join("brighton/DJI_0020.JPG"))
        .arg("--assets")
        .arg(register)
        .arg("--models")
        .arg(fixtures().join("models/coarse"))
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .expect("the besikta binary runs")
}

/// A road through the Brighton photo, in UTM zone 15N metres, with no `crs` member.
fn road_in_metres(dir: &Path) -> PathBuf {
    let path = dir.join("road-utm15n.geojson");
    let json = serde_json::json!({
        "type": "FeatureCollection",
        "features": [{
            "type": "Feature",
            "properties": {"id": "r1", "name": "Shore road", "highway": "residential"},
            "geometry": {"type": "LineString",
                "coordinates": [[576600.0, 5188100.0], [576700.0, 5188200.0]]},
        }],
    });
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

#[test]
fn a_projected_geojson_without_crs_is_refused_and_accepted_with_assets_crs() {
    let dir = tempfile::tempdir().unwrap();
    let register = road_in_metres(dir.path());
    let o = process(&register, &dir.path().join("a"), &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Before: a finished run with 0 assets and 0 findings, and no word about why.
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("road-utm15n.geojson")
            && stderr.contains("not longitudes and latitudes")
            && stderr.contains("--assets-crs"),
        "{stderr}"
    );

    let out = dir.path().join("b");
    let o = process(&register, &out, &["--assets-crs", "EPSG:32615"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["registers"][0]["assets"], 1, "{summary}");
    assert_eq!(summary["registers"][0]["crs"], "EPSG:32615");
}

#[test]
fn gdal_speaks_through_our_error_not_its_own_lines() {
    let dir = tempfile::tempdir().unwrap();
    let register = dir.path().join("cut.geojson");
    std::fs::write(
        &register,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":"#,
    )
    .unwrap();
    let o = process(&register, &dir.path().join("out"), &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    // Before: "ERROR 1: ... Unterminated object" and "ERROR 4: Failed to read GeoJSON
    // data" from GDAL itself, then our "NULL pointer" error without the cause.
    assert!(!stderr.contains("ERROR "), "{stderr}");
    assert!(
        stderr.contains("cut.geojson") && stderr.contains("Unterminated object"),
        "{stderr}"
    );
}
