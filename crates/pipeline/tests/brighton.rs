//! The whole process job on real Brighton photos: products written, readable by GDAL, and
//! every finding inside the flight's footprint.

use besikta_pipeline::{process, ProcessConfig};
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Distance in metres from a lon/lat point to a ring's edges (local flat approximation).
fn edge_distance_m(p: [f64; 2], ring: &[[f64; 2]]) -> f64 {
    let kx = 111_320.0 * p[1].to_radians().cos();
    let ky = 111_132.0;
    let q = |a: [f64; 2]| [(a[0] - p[0]) * kx, (a[1] - p[1]) * ky];
    ring.windows(2)
        .map(|w| {
            let (a, b) = (q(w[0]), q(w[1]));
            let ab = [b[0] - a[0], b[1] - a[1]];
            let t = (-(a[0] * ab[0] + a[1] * ab[1]) / (ab[0] * ab[0] + ab[1] * ab[1]).max(1e-12))
                .clamp(0.0, 1.0);
            let c = [a[0] + t * ab[0], a[1] + t * ab[1]];
            (c[0] * c[0] + c[1] * c[1]).sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Point in polygon (ray casting), lon/lat.
fn inside(p: [f64; 2], ring: &[[f64; 2]]) -> bool {
    let mut c = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[j]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            c = !c;
        }
        j = i;
    }
    c
}

/// The baseline crack model under a test manifest declaring 68 mm/px, so a 4000x2250 photo
/// runs in seconds (`fixtures/models/coarse`).
fn coarse_models() -> PathBuf {
    repo().join("fixtures/models/coarse")
}

fn ring_of(v: &serde_json::Value) -> Vec<[f64; 2]> {
    v["geometry"]["coordinates"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
        .collect()
}

#[test]
fn brighton_findings_stay_inside_the_flight_footprint() {
    let out = tempfile::tempdir().unwrap();
    let cfg = ProcessConfig {
        inputs: vec![repo().join("fixtures/brighton/DJI_0018.JPG")],
        registers: vec![],
        models_dir: coarse_models(),
        dem: None,
        crs: None,
        out_dir: out.path().to_path_buf(),
        threads: 1,
        device: Default::default(),
    };
    let mut stages = Vec::new();
    let outcome = process(&cfg, &mut |p| stages.push(p.stage)).unwrap();
    let s = &outcome.summary;
    assert_eq!(s.photos_found, 1);
    assert_eq!(s.photos_processed, 1);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert_eq!(s.work_crs, "EPSG:32615", "Duluth, MN is in UTM zone 15N");
    assert!(s.detections > 0, "the baseline model fires on these roads");

    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.path().join(name)).unwrap()).unwrap()
    };
    let footprints = read("footprints.geojson");
    let fps: Vec<Vec<[f64; 2]>> = footprints["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(ring_of)
        .collect();
    assert_eq!(fps.len(), 1);
    let findings = read("findings.geojson");
    let feats = findings["features"].as_array().unwrap();
    assert_eq!(feats.len(), s.findings);
    assert!(!feats.is_empty(), "some finding to check");
    for f in feats {
        for p in ring_of(f) {
            // Outlines touching the photo's edge sit on the footprint's edge: allow the
            // 1e-7 degree (1 cm) rounding of the GeoJSON.
            assert!(
                fps.iter()
                    .any(|fp| inside(p, fp) || edge_distance_m(p, fp) < 0.02),
                "finding {} has a vertex {p:?} outside every footprint",
                f["properties"]["id"]
            );
        }
        let props = &f["properties"];
        assert!(props["asset_id"].is_null(), "no register, no asset");
        assert!(!props["observations"].as_array().unwrap().is_empty());
        assert!(props["best_photo"].as_str().unwrap().ends_with(".JPG"));
    }
    let summary = read("summary.json");
    assert_eq!(summary["findings"].as_u64().unwrap() as usize, feats.len());

    // GDAL reads the GeoPackage back with the same number of features.
    let info = Command::new("ogrinfo")
        .args(["-so", "-al"])
        .arg(out.path().join("findings.gpkg"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains(&format!("Feature Count: {}", feats.len())),
        "{text}"
    );
}

#[test]
fn a_broken_photo_is_rejected_and_the_rest_processed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("fixtures/brighton/DJI_0018.JPG"),
        dir.path().join("good.jpg"),
    )
    .unwrap();
    let bytes = std::fs::read(repo().join("fixtures/brighton/DJI_0019.JPG")).unwrap();
    std::fs::write(dir.path().join("cut.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = ProcessConfig {
        inputs: vec![dir.path().to_path_buf()],
        registers: vec![],
        models_dir: coarse_models(),
        dem: None,
        crs: None,
        out_dir: out.path().to_path_buf(),
        threads: 1,
        device: Default::default(),
    };
    let outcome = process(&cfg, &mut |_| {}).unwrap();
    assert_eq!(outcome.summary.photos_processed, 1);
    assert_eq!(outcome.summary.rejected.len(), 1);
    assert!(outcome.summary.rejected[0].file.ends_with("cut.jpg"));
}
