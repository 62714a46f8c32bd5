//! The findings a flight processed through the service stored, compared with one
//! `pipeline::process` run over the same photos (none lost, none doubled, none changed).

use super::process::coarse_models;
use besikta_pipeline::{process, ProcessConfig};
use besikta_store::{FindingFilter, PgStore, Store};
use serde_json::Value;
use std::path::Path;

/// The flight's stored findings (organisation Brighton) equal `pipeline::process` over the
/// same Brighton fixture `photos`, observation photos by file name.
pub fn assert_same_findings_as_one_process(store: &PgStore, flight: i64, photos: &[&str]) {
    let org = store.ensure_org("Brighton", None).unwrap();
    let filter = FindingFilter {
        flight_id: Some(flight),
        ..Default::default()
    };
    let mut stored = store.findings(org.id, &filter).unwrap();
    stored.sort_by(|a, b| a.finding_id.cmp(&b.finding_id));
    assert!(!stored.is_empty(), "the coarse model finds something");
    let out = tempfile::tempdir().unwrap();
    let cfg = ProcessConfig {
        inputs: photos.iter().map(|p| super::brighton().join(p)).collect(),
        registers: vec![],
        models_dir: coarse_models(),
        dem: None,
        crs: org.crs.clone(),
        out_dir: out.path().to_path_buf(),
        threads: 1,
        device: Default::default(),
    };
    let whole = process(&cfg, &mut |_| {}).unwrap();
    let expected: Vec<Value> = whole
        .report
        .findings
        .into_iter()
        .map(|mut f| {
            for o in &mut f.observations {
                o.photo = Path::new(&o.photo)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
            }
            serde_json::to_value(&f).unwrap()
        })
        .collect();
    let got: Vec<Value> = stored
        .iter()
        .map(|r| serde_json::to_value(&r.finding).unwrap())
        .collect();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "stored findings differ from one process's");
}

/// The job's units at the moment a worker was killed: (id, attempt) of those done, and the
/// ids of those running (asserted to be exactly one, the killed worker's).
pub fn units_at_kill(store: &PgStore, job: i64) -> (Vec<(i64, i64)>, Vec<i64>) {
    let before = store.units(job, false).unwrap();
    let done: Vec<(i64, i64)> = before
        .iter()
        .filter(|r| r.state == "done")
        .map(|r| (r.id, r.attempt))
        .collect();
    let running: Vec<i64> = before
        .iter()
        .filter(|r| r.state == "running")
        .map(|r| r.id)
        .collect();
    assert_eq!(running.len(), 1, "{before:?}");
    (done, running)
}
