//! A flight run as work units (issue 15): prepare -> batches -> finish, with every unit's
//! result passed through JSON as between workers, gives the same findings as `process`
//! for any split of the photos into batches.

use besikta_pipeline::units::{finish, infer_batch, prepare, BatchResult, Prepared};
use besikta_pipeline::{process, ProcessConfig, ProcessOptions};
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

fn through_json<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

#[test]
fn units_in_any_split_give_the_findings_of_process() {
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = process(&config(whole_dir.path()), &mut |_| {}).unwrap();
    assert!(
        !whole.report.findings.is_empty(),
        "the simulated flight has findings"
    );

    let split_dir = tempfile::tempdir().unwrap();
    let cfg = config(split_dir.path());
    let prepared: Prepared =
        through_json(&prepare(&cfg, &ProcessOptions::default(), &mut |_| {}).unwrap());
    let n = prepared.photos.len();
    assert!(n >= 6, "{n} photos prepared");
    assert!(
        !prepared.owned.is_empty(),
        "the coverage plan travels with the prepared flight"
    );
    // Uneven batches, run out of order, each through JSON.
    let cuts = [0, 1, 4, n - 2, n];
    let mut batches: Vec<BatchResult> = cuts
        .windows(2)
        .rev()
        .map(|w| {
            let b = infer_batch(
                &cfg,
                &prepared,
                w[0]..w[1],
                &|f: &str| PathBuf::from(f),
                &mut |_| {},
            )
            .unwrap();
            assert_eq!((b.first, b.count), (w[0], w[1] - w[0]));
            through_json(&b)
        })
        .collect();
    assert_eq!(batches.len(), 4);
    let split = finish(&cfg, &prepared, batches.clone(), &mut |_| {}).unwrap();

    let (a, b) = (
        serde_json::to_value(&split.report.findings).unwrap(),
        serde_json::to_value(&whole.report.findings).unwrap(),
    );
    assert!(
        a == b,
        "findings differ between process and units: {}",
        first_difference(&a, &b, "findings")
    );
    assert_eq!(
        split.report.work_orders.len(),
        whole.report.work_orders.len()
    );
    let (a, b) = (&split.summary, &whole.summary);
    assert_eq!(
        (a.photos_found, a.photos_processed, a.detections, a.findings),
        (b.photos_found, b.photos_processed, b.detections, b.findings)
    );
    assert_eq!(a.dropped, b.dropped);
    assert_eq!(a.warnings, b.warnings);
    for (x, y) in a.models.iter().zip(&b.models) {
        assert_eq!(
            (
                x.detections,
                x.tiles_total,
                x.tiles_inferred,
                x.tiles_skipped
            ),
            (
                y.detections,
                y.tiles_total,
                y.tiles_inferred,
                y.tiles_skipped
            ),
            "{}",
            x.name
        );
    }
    // The same files, from typed data.
    let read = |d: &Path| std::fs::read_to_string(d.join("findings.geojson")).unwrap();
    assert_eq!(read(split_dir.path()), read(whole_dir.path()));

    // Batches that leave a photo out are refused, not finished short.
    batches.retain(|b| b.first != 1);
    let err = finish(&cfg, &prepared, batches, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("do not cover"), "{err}");
}

/// Where two JSON values first differ, for a readable failure.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    return first_difference(p, q, &format!("{at}[{i}]"));
                }
            }
            format!("{at}: {} items against {}", x.len(), y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for (k, p) in x {
                if y.get(k) != Some(p) {
                    return match y.get(k) {
                        Some(q) => first_difference(p, q, &format!("{at}.{k}")),
                        None => format!("{at}.{k} missing"),
                    };
                }
            }
            format!("{at}: keys differ")
        }
        _ => format!("{at}: {a} against {b}"),
    }
}
