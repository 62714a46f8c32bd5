//! Registers that used to fail silently or with GDAL's words on stderr: projected GeoJSON
//! without a `crs` member, a GeoJSON over 50 MB, a truncated GeoJSON.

use besikta_report::register::{frame_for, Register, RegisterSource};
use besikta_report::WorkFrame;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn helsinki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/registers/helsinki.osm.pbf")
}

/// Helsinki's roads as GeoJSON in ETRS-TM35FIN metres, with the `crs` member GDAL wrote
/// removed: what a GIS export that "forgot" the CRS looks like.
fn roads_in_metres_without_crs(dir: &Path) -> (PathBuf, usize) {
    let with_crs = dir.join("with-crs.geojson");
    let status = Command::new("ogr2ogr")
        .args(["-f", "GeoJSON", "-t_srs", "EPSG:3067"])
        .arg(&with_crs)
        .arg(helsinki())
        .args(["lines", "-where", "highway IS NOT NULL"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&with_crs).unwrap()).unwrap();
    let obj = json.as_object_mut().unwrap();
    assert!(obj.remove("crs").is_some(), "GDAL wrote a crs member");
    let roads = obj["features"].as_array().unwrap().len();
    let path = dir.join("roads-3067-no-crs.geojson");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    (path, roads)
}

#[test]
fn a_projected_geojson_without_crs_is_refused_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (path, roads) = roads_in_metres_without_crs(dir.path());
    assert!(roads > 100, "{roads} roads");

    // Before: read as degrees, every feature failed to transform and was skipped: a
    // register of 0 assets, a job with 0 findings and no word.
    let src = RegisterSource::new(&path);
    let err = frame_for(std::slice::from_ref(&src))
        .unwrap_err()
        .to_string();
    for words in [
        "roads-3067-no-crs.geojson",
        "not longitudes and latitudes",
        "EPSG:4326",
        "--assets-crs",
        "ogr2ogr -a_srs",
    ] {
        assert!(err.contains(words), "{words}: {err}");
    }
    let frame = WorkFrame::utm_for(24.95, 60.17).unwrap();
    let err = Register::load(&src, &frame).unwrap_err().to_string();
    assert!(err.contains("--assets-crs"), "{err}");

    // Named, it is a register in its own CRS like any other.
    let src = RegisterSource {
        crs: Some("EPSG:3067".into()),
        ..RegisterSource::new(&path)
    };
    let frame = frame_for(std::slice::from_ref(&src)).unwrap().unwrap();
    assert_eq!(frame.name, "EPSG:3067");
    let reg = Register::load(&src, &frame).unwrap();
    assert_eq!(reg.assets.len(), roads);
    assert_eq!(reg.crs, "EPSG:3067");
}

/// One MultiLineString feature of 1.6 million vertices in Helsinki: a 53 MB file that GDAL
/// 3.6 refuses by default ("GeoJSON object too complex/large").
fn large_geojson(path: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write!(
        f,
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{"id":"big","highway":"residential"}},"geometry":{{"type":"MultiLineString","coordinates":[["#
    )
    .unwrap();
    let n = 1_600_000;
    for i in 0..n {
        let t = i as f64 / n as f64;
        let sep = if i + 1 < n { "," } else { "" };
        write!(
            f,
            "[{:.12},{:.12}]{sep}",
            24.90 + 0.05 * t,
            60.16 + 0.01 * (t * 40.0).sin()
        )
        .unwrap();
    }
    write!(f, "]]}}}}]}}").unwrap();
    f.flush().unwrap();
}

#[test]
fn a_geojson_register_over_50_mb_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.geojson");
    large_geojson(&path);
    let mb = std::fs::metadata(&path).unwrap().len() / 1_000_000;
    assert!(mb >= 50, "{mb} MB");
    let src = RegisterSource::new(&path);
    let frame = frame_for(std::slice::from_ref(&src)).unwrap().unwrap();
    let reg = Register::load(&src, &frame).unwrap();
    assert_eq!(reg.assets.len(), 1);
    assert_eq!(reg.assets[0].id, "big");
}

#[test]
fn a_truncated_geojson_says_what_gdal_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.geojson");
    std::fs::write(
        &path,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[24.9,60.1],[24.91"#,
    )
    .unwrap();
    let err = frame_for(&[RegisterSource::new(&path)])
        .unwrap_err()
        .to_string();
    // GDAL's cause, which it used to print to stderr while we said "NULL pointer".
    assert!(err.contains("cut.geojson"), "{err}");
    assert!(err.contains("Unterminated object"), "{err}");
    assert_eq!(
        err.matches("Unterminated object").count(),
        1,
        "said once: {err}"
    );
}
