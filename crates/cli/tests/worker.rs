//! `besikta serve --workers 0` and `besikta worker` processes sharing one PostgreSQL
//! database and data folder: SIGKILL the worker in the middle of a job, and another worker
//! takes the job over once its lease ends and finishes it, with no finding lost or doubled.

mod common;

use besikta_store::testing::PgCluster;
use besikta_store::{FindingFilter, PgStore, Store};
use common::process::{
    admin_token, besikta_command, coarse_models, queued_brighton_flight, start_serve, start_worker,
    Proc,
};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn serve(data: &Path, url: &str) -> (Proc, String) {
    let mut cmd = besikta_command();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--workers", "0"])
        .args(["--database", url, "--data"])
        .arg(data);
    start_serve(cmd)
}

fn worker(data: &Path, url: &str) -> Proc {
    let mut cmd = besikta_command();
    cmd.args(["worker", "--threads", "2", "--lease-secs", "3"])
        .args(["--database", url, "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models());
    start_worker(cmd)
}

fn json(addr: &str, method: &str, path: &str, token: &str) -> Value {
    common::http::json(addr, method, path, token, b"{}")
}

fn wait_for(limit: Duration, done: impl FnMut() -> bool) {
    common::process::wait_for(limit, Duration::from_millis(20), done)
}

#[test]
fn sigkill_a_worker_mid_job_and_another_finishes_it_once() {
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data, Some(&url));
    assert!(
        !data.join("besikta.db").exists(),
        "the token went to PostgreSQL"
    );

    let (_server, addr) = serve(&data, &url);
    let (flight, job) = queued_brighton_flight(&addr, &token, "worker-kill-test");

    // The server has no workers of its own: the job waits in the queue.
    std::thread::sleep(Duration::from_millis(500));
    let store = PgStore::open_with(&url, 1).unwrap();
    assert_eq!(store.job_state(job).unwrap().as_deref(), Some("queued"));

    // Worker A takes it; kill it once inference is under way.
    let mut a = worker(&data, &url);
    let flight_path = format!("/api/v1/flights/{flight}");
    wait_for(Duration::from_secs(300), || {
        let f = json(&addr, "GET", &flight_path, &token);
        f["state"] == "running" && f["progress"]["stage"] == "infer"
    });
    a.0.kill().unwrap(); // SIGKILL
    a.0.wait().unwrap();
    assert_eq!(
        store.job_state(job).unwrap().as_deref(),
        Some("running"),
        "killed mid-job"
    );
    assert!(data.join(format!("flights/{flight}/out-{job}-1")).exists());

    // Worker B finds the job once its lease (3 s) ends and runs it to the end.
    let killed_at = Instant::now();
    let _b = worker(&data, &url);
    wait_for(Duration::from_secs(300), || {
        let f = json(&addr, "GET", &flight_path, &token);
        assert_ne!(f["state"], "failed", "{f}");
        f["state"] == "done"
    });
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "taken over only after the lease"
    );
    let counts = store.job_counts().unwrap();
    assert_eq!(
        (counts.done, counts.running, counts.queued, counts.failed),
        (1, 0, 0, 0)
    );

    // One set of products (attempt 2; attempt 1's partial folder is gone), and the stored
    // findings are that set's, once each.
    let outs = common::output_folders(&data, flight);
    assert_eq!(outs, [format!("out-{job}-2")]);
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(
            data.join(format!("flights/{flight}/out-{job}-2/findings.geojson")),
        )
        .unwrap(),
    )
    .unwrap();
    let org = store.ensure_org("Brighton", None).unwrap();
    let filter = FindingFilter {
        flight_id: Some(flight),
        ..Default::default()
    };
    let stored = store.findings(org.id, &filter).unwrap();
    assert!(
        !stored.is_empty(),
        "the coarse crack model finds something in Brighton"
    );
    assert_eq!(stored.len(), written["features"].as_array().unwrap().len());
    let mut ids: Vec<&str> = stored.iter().map(|f| f.finding_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), stored.len(), "no finding stored twice");
    let served = json(
        &addr,
        "GET",
        &format!("/api/v1/flights/{flight}/findings.geojson"),
        &token,
    );
    assert_eq!(served["features"].as_array().unwrap().len(), stored.len());
}
