//! End-to-end accuracy on the bundled simulated flight over Helsinki, whose ground truth is
//! known: position error in metres, recall, precision, one finding per defect, asset ids.
//!
//! The floors below are regression catches set under the figures measured when they were
//! written (see the README's accuracy table), not targets.

use besikta_pipeline::{process, ProcessConfig};
use besikta_report::RegisterSource;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn simulated_helsinki_flight_is_found_placed_merged_and_matched() {
    let out = tempfile::tempdir().unwrap();
    let cfg = ProcessConfig {
        inputs: vec![repo().join("fixtures/sim")],
        registers: vec![RegisterSource::new(
            repo().join("fixtures/registers/helsinki.osm.pbf"),
        )],
        models_dir: repo().join("models"),
        dem: None,
        crs: Some("EPSG:3067".into()),
        out_dir: out.path().to_path_buf(),
        threads: 1,
    };
    let outcome = process(&cfg, &mut |_| {}).unwrap();
    let s = &outcome.summary;
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert!(
        s.models.iter().all(|m| m.photos_skipped.is_empty()),
        "{:?}",
        s.models
    );
    // Tiles away from roads and roofs are skipped.
    let skipped: usize = s.models.iter().map(|m| m.tiles_skipped).sum();
    let total: usize = s.models.iter().map(|m| m.tiles_total).sum();
    eprintln!("tiles skipped {skipped} of {total}");

    let m = besikta_sim::evaluate_files(
        &repo().join("fixtures/sim/truth.geojson"),
        &out.path().join("findings.geojson"),
        &besikta_sim::EvalConfig::default(),
    )
    .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&m).unwrap());
    let median = m.median_err_m.expect("some defect was found");
    let p95 = m.p95_err_m.unwrap();
    assert!(median < 0.5, "median position error {median} m");
    assert!(p95 < 1.5, "95th percentile position error {p95} m");
    assert!(m.recall >= FLOOR_RECALL, "recall {}", m.recall);
    assert!(m.precision >= FLOOR_PRECISION, "precision {}", m.precision);
    assert_eq!(m.duplicates, 0, "one finding per planted defect");
    assert!(
        m.asset_id_accuracy.unwrap() >= 0.9,
        "{:?}",
        m.asset_id_accuracy
    );
}

const FLOOR_RECALL: f64 = 0.6;
const FLOOR_PRECISION: f64 = 0.12;
