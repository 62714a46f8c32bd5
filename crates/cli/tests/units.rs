//! One flight, three `besikta worker` processes, batch units of one photo (issue 15):
//! the units are taken by more than one worker, and the stored findings equal those of
//! the same photos processed in one process (`pipeline::process`).

mod common;

use besikta_pipeline::{process, ProcessConfig};
use besikta_store::testing::PgCluster;
use besikta_store::{FindingFilter, PgStore, Store};
use common::http::http;
use common::process::{
    admin_token, besikta_command, coarse_models, photo_form, start_serve, start_worker, Proc,
};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const PHOTOS: [&str; 3] = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"];

fn worker(data: &Path, url: &str) -> Proc {
    let mut cmd = besikta_command();
    cmd.args(["worker", "--threads", "1", "--lease-secs", "10"])
        .args(["--unit-photos", "1", "--database", url, "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models());
    start_worker(cmd)
}

fn json(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> Value {
    common::http::json(addr, method, path, token, body)
}

#[test]
fn one_flight_is_inferred_by_several_workers_and_matches_one_process() {
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data, Some(&url));
    let mut cmd = besikta_command();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--workers", "0"])
        .args(["--database", &url, "--data"])
        .arg(&data);
    let (_server, addr) = start_serve(cmd);
    let flight = json(
        &addr,
        "POST",
        "/api/v1/flights",
        &token,
        br#"{"name": "units"}"#,
    )["id"]
        .as_i64()
        .unwrap();
    let (form, ctype) = photo_form("units-test", &PHOTOS);
    let path = format!("/api/v1/flights/{flight}/photos");
    assert_eq!(http(&addr, "POST", &path, &token, &ctype, &form).0, 200);
    let job = json(
        &addr,
        "POST",
        &format!("/api/v1/flights/{flight}/process"),
        &token,
        b"{}",
    )["job"]
        .as_i64()
        .unwrap();

    let _workers: Vec<Proc> = (0..3).map(|_| worker(&data, &url)).collect();
    let flight_path = format!("/api/v1/flights/{flight}");
    common::process::wait_for(Duration::from_secs(600), Duration::from_millis(50), || {
        let f = json(&addr, "GET", &flight_path, &token, b"{}");
        assert_ne!(f["state"], "failed", "{f}");
        f["state"] == "done"
    });

    // One unit per photo, each done, taken by more than one worker process.
    let store = PgStore::open_with(&url, 1).unwrap();
    let units = store.units(job, false).unwrap();
    assert_eq!(units.len(), PHOTOS.len(), "{units:?}");
    assert!(units.iter().all(|u| u.state == "done"), "{units:?}");
    let mut workers: Vec<&str> = units.iter().filter_map(|u| u.worker.as_deref()).collect();
    workers.sort_unstable();
    workers.dedup();
    eprintln!("units by worker: {units:?}");
    assert!(workers.len() >= 2, "one worker ran every unit: {units:?}");
    assert_eq!(store.unit_plan(job).unwrap(), None, "the plan is dropped");

    // The same findings as one process over the same photos.
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
        inputs: PHOTOS.iter().map(|p| common::brighton().join(p)).collect(),
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
