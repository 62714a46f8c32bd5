//! The process job aligns a noisy simulated flight before placing anything on the ground:
//! footprints.geojson carries the refined camera positions with their provenance, and
//! summary.json the alignment's figures; `--no-align` (ProcessOptions) keeps the metadata.

use besikta_georef::geodesy::{geodetic_to_ecef, EnuFrame};
use besikta_pipeline::{process, process_with, ProcessConfig, ProcessOptions};
use besikta_sim::{simulate, SimConfig};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(photos: &Path, out: &Path) -> ProcessConfig {
    ProcessConfig {
        inputs: vec![photos.to_path_buf()],
        registers: Vec::new(),
        // The 68 mm/px test model: fast, and its findings are not what is tested here.
        models_dir: repo().join("fixtures/models/coarse"),
        dem: None,
        crs: None,
        out_dir: out.to_path_buf(),
        threads: 1,
        device: Default::default(),
    }
}

fn footprints(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("footprints.geojson")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["features"].as_array().unwrap().clone()
}

#[test]
fn process_aligns_a_noisy_flight_and_records_each_pose() {
    let photos = tempfile::tempdir().unwrap();
    let sim = simulate(&SimConfig {
        register: repo().join("fixtures/registers/helsinki.osm.pbf"),
        out_dir: photos.path().to_path_buf(),
        seed: 4242,
        photos: 8,
        width_px: 1000,
        altitude_m: 40.0,
        defects: 2,
        gps_noise_m: 2.0,
        yaw_noise_deg: 1.0,
        ..Default::default()
    })
    .unwrap();
    let frame = EnuFrame::new(sim.photos[0].true_lat, sim.photos[0].true_lon, 0.0);
    let en = |lat: f64, lon: f64| {
        let p = frame.from_ecef(geodetic_to_ecef(lat, lon, 0.0));
        [p[0], p[1]]
    };
    // Position errors of the footprints' camera positions, minus the flight's mean error.
    let spread = |features: &[serde_json::Value]| {
        let errs: Vec<[f64; 2]> = sim
            .photos
            .iter()
            .map(|p| {
                let f = features
                    .iter()
                    .find(|f| f["properties"]["file"].as_str().unwrap().ends_with(&p.file))
                    .unwrap();
                let got = en(
                    f["properties"]["camera_latitude"].as_f64().unwrap(),
                    f["properties"]["camera_longitude"].as_f64().unwrap(),
                );
                let t = en(p.true_lat, p.true_lon);
                [got[0] - t[0], got[1] - t[1]]
            })
            .collect();
        let n = errs.len() as f64;
        let m = [
            errs.iter().map(|e| e[0]).sum::<f64>() / n,
            errs.iter().map(|e| e[1]).sum::<f64>() / n,
        ];
        (errs
            .iter()
            .map(|e| (e[0] - m[0]).powi(2) + (e[1] - m[1]).powi(2))
            .sum::<f64>()
            / n)
            .sqrt()
    };

    let out = tempfile::tempdir().unwrap();
    let outcome = process(&config(photos.path(), out.path()), &mut |_| {}).unwrap();
    let a = outcome
        .summary
        .alignment
        .clone()
        .expect("process aligns by default");
    assert_eq!(a.photos_aligned, 8, "{a:?}");
    assert!(a.pairs_accepted >= 8, "{a:?}");
    assert!(a.residual_rms_after_m.unwrap() < 0.1 * a.residual_rms_before_m.unwrap());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["alignment"]["pairs_tried"],
        serde_json::json!(a.pairs_tried)
    );
    let aligned = footprints(out.path());
    for f in &aligned {
        let p = &f["properties"];
        assert_eq!(p["pose_source"], "flight", "{p}");
        assert_eq!(p["pose_correction_m"].as_array().unwrap().len(), 2);
        assert!(p["yaw_correction_deg"].as_f64().unwrap().abs() < 5.0);
        assert!(p["pose_sigma_m"].as_f64().unwrap() < 0.5, "{p}");
    }

    let out_raw = tempfile::tempdir().unwrap();
    let opts = ProcessOptions {
        align: false,
        ..ProcessOptions::default()
    };
    let raw = process_with(&config(photos.path(), out_raw.path()), &opts, &mut |_| {}).unwrap();
    assert!(raw.summary.alignment.is_none());
    let metadata = footprints(out_raw.path());
    for f in &metadata {
        assert_eq!(f["properties"]["pose_source"], "metadata");
        assert_eq!(
            f["properties"]["pose_correction_m"],
            serde_json::json!([0.0, 0.0])
        );
    }
    let (before, after) = (spread(&metadata), spread(&aligned));
    eprintln!(
        "camera position error minus the mean: {before:.3} m with metadata, {after:.3} m aligned"
    );
    assert!(before > 0.8, "{before}");
    assert!(after < 0.2, "{after}");
}
