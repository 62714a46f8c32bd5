//! Second-view windows (issue 14) on the bundled simulated flight: one owner per cell for
//! every model, and a crack candidate's other views inferred only in small windows around
//! it, which give the finding its second supporting photo.

use besikta_pipeline::units::{finish, infer_batch, prepare, BatchResult, Prepared};
use besikta_pipeline::{ProcessConfig, ProcessOptions};
use besikta_report::RegisterSource;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(out: &Path) -> ProcessConfig {
    ProcessConfig {
        inputs: vec![repo().join("fixtures/sim")],
        registers: vec![RegisterSource::new(
            repo().join("fixtures/registers/helsinki.osm.pbf"),
        )],
        models_dir: repo().join("models"),
        dem: None,
        crs: Some("EPSG:3067".into()),
        out_dir: out.to_path_buf(),
        threads: 1,
        device: Default::default(),
    }
}

fn options(windows: bool) -> ProcessOptions {
    ProcessOptions {
        windows: Some(windows),
        ..ProcessOptions::default()
    }
}

fn through_json<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

#[test]
fn a_crack_seen_by_its_owner_gets_its_second_view_through_a_window() {
    let out = tempfile::tempdir().unwrap();
    let cfg = config(out.path());
    let prepared: Prepared = through_json(&prepare(&cfg, &options(true), &mut |_| {}).unwrap());
    assert!(prepared.windows);
    assert_eq!(
        prepared.owned.keys().copied().collect::<Vec<_>>(),
        vec![1, 3],
        "one owner per cell for every model; three where second views of cracks are looked for"
    );
    let n = prepared.photos.len();
    // Through JSON, as between workers: the windows' results travel with the batch.
    let batch: BatchResult = through_json(
        &infer_batch(
            &cfg,
            &prepared,
            0..n,
            &|f: &str| PathBuf::from(f),
            &mut |_| {},
        )
        .unwrap(),
    );
    for m in &batch.models {
        eprintln!(
            "windows: {} owner tiles {}, window tiles {} in {} windows",
            m.name, m.tiles_inferred, m.tiles_inferred_for_windows, m.windows_inferred
        );
    }
    let crack = batch
        .models
        .iter()
        .find(|m| m.name == "crack-unet")
        .expect("the shipped crack model ran");
    assert!(crack.windows_inferred > 0, "{crack:?}");
    // Windows are parts of the photos, not whole photos: fewer tiles than the photos'
    // own passes left out.
    assert!(
        crack.tiles_inferred_for_windows < crack.tiles_skipped_for_coverage + crack.tiles_skipped,
        "{crack:?}"
    );
    // Pothole evidence needs no second view: no windows.
    let pothole = batch
        .models
        .iter()
        .find(|m| m.name == "pothole-det")
        .unwrap();
    assert_eq!(pothole.tiles_inferred_for_windows, 0);
    let windowed: Vec<serde_json::Value> = batch
        .window_observations
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    assert!(!windowed.is_empty());

    let outcome = finish(&cfg, &prepared, vec![batch.clone()], &mut |_| {}).unwrap();
    // A crack finding with two supporting photos, one of them seen only in a window:
    // without that window it would have support 1 and be dropped (min_support 2).
    let through_window = outcome.report.findings.iter().find(|f| {
        let (win, own): (Vec<_>, Vec<_>) = f
            .observations
            .iter()
            .partition(|o| windowed.contains(&serde_json::to_value(o).unwrap()));
        let own: std::collections::BTreeSet<&str> = own.iter().map(|o| o.photo.as_str()).collect();
        f.class == "crack"
            && f.support == 2
            && own.len() == 1
            && win.iter().any(|o| !own.contains(o.photo.as_str()))
    });
    let f = through_window.expect("a crack confirmed by a window");
    assert!(f.views >= 2, "views {} support {}", f.views, f.support);
    // The window photo's processed area there is the window, recorded as such.
    let window_photos: Vec<&str> = batch
        .coverage
        .iter()
        .filter(|c| c.window)
        .map(|c| c.photo.as_str())
        .collect();
    assert!(f
        .observations
        .iter()
        .any(|o| window_photos.contains(&o.photo.as_str())));
    let s = &outcome.summary;
    let m = s.models.iter().find(|m| m.name == "crack-unet").unwrap();
    assert!(m.tiles_inferred_for_windows > 0);
}
