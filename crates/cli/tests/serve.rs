//! `besikta serve` as a real process: SIGKILL it while a job runs, start it again on the
//! same data folder, and the job finishes once, with nothing lost or duplicated.

mod common;

use besikta_store::{FindingFilter, SqliteStore, Store};
use common::http::http;
use common::process::{admin_token, besikta_command, coarse_models, photo_form, start_serve, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Server {
    proc: Proc,
    addr: String,
}

fn start(data: &Path) -> Server {
    let mut cmd = besikta_command();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--threads", "2", "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models());
    let (proc, addr) = start_serve(cmd);
    Server { proc, addr }
}

fn json(addr: &str, method: &str, path: &str, token: &str, body: &str) -> Value {
    common::http::json(addr, method, path, token, body.as_bytes())
}

fn output_dirs(data: &Path, flight: i64) -> Vec<PathBuf> {
    std::fs::read_dir(data.join(format!("flights/{flight}")))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("out-"))
        .collect()
}

#[test]
fn sigkill_mid_job_then_restart_finishes_the_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data, None);

    let server = start(&data);
    let flight = json(
        &server.addr,
        "POST",
        "/api/v1/flights",
        &token,
        r#"{"name": "brighton"}"#,
    )["id"]
        .as_i64()
        .unwrap();
    let (form, ctype) = photo_form(
        "kill-test-boundary",
        &["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"],
    );
    let (status, _) = http(
        &server.addr,
        "POST",
        &format!("/api/v1/flights/{flight}/photos"),
        &token,
        &ctype,
        &form,
    );
    assert_eq!(status, 200);

    // Start the job and kill the server once inference is under way. A fast job may
    // finish before the kill lands; then process again, up to a few times.
    let mut server = Some(server);
    let mut killed_job = None;
    let mut requests = 0;
    for _ in 0..8 {
        let s = server.take().unwrap_or_else(|| start(&data));
        json(
            &s.addr,
            "POST",
            &format!("/api/v1/flights/{flight}/process"),
            &token,
            "",
        );
        requests += 1;
        let start_time = Instant::now();
        let mut s = Some(s);
        while start_time.elapsed() < Duration::from_secs(600) {
            let f = json(
                &s.as_ref().unwrap().addr,
                "GET",
                &format!("/api/v1/flights/{flight}"),
                &token,
                "",
            );
            if f["state"] == "running" && f["progress"]["stage"] == "infer" {
                let mut srv = s.take().unwrap();
                srv.proc.0.kill().unwrap(); // SIGKILL on Unix
                srv.proc.0.wait().unwrap();
                break;
            }
            if f["state"] == "done" {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        server = s;
        // The database is the judge of whether the kill landed mid-job.
        let store = SqliteStore::open(&data.join("besikta.db")).unwrap();
        if server.is_none() && store.job_counts().unwrap().running == 1 {
            killed_job = Some(store.job_counts().unwrap());
            break;
        }
    }
    let before = killed_job.expect("the kill never landed while a job was running");
    drop(server);

    // Restart: the interrupted job is queued again and finishes.
    let server = start(&data);
    let start_time = Instant::now();
    let f = loop {
        let f = json(
            &server.addr,
            "GET",
            &format!("/api/v1/flights/{flight}"),
            &token,
            "",
        );
        if f["state"] == "done" || f["state"] == "failed" {
            break f;
        }
        assert!(
            start_time.elapsed() < Duration::from_secs(600),
            "no finish after restart: {f}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(f["state"], "done", "{f}");
    assert_eq!(f["photos"], 3, "no photo lost");

    let store = SqliteStore::open(&data.join("besikta.db")).unwrap();
    let counts = store.job_counts().unwrap();
    assert_eq!((counts.running, counts.queued, counts.failed), (0, 0, 0));
    assert_eq!(
        counts.done, requests,
        "one job per process request, none duplicated"
    );
    assert_eq!(counts.done, before.done + 1);
    // Exactly one set of products, and the stored findings are that set's, once each.
    let dirs = output_dirs(&data, flight);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("findings.geojson")).unwrap())
            .unwrap();
    let org = store.ensure_org("Brighton", None).unwrap();
    let stored = store
        .findings(
            org.id,
            &FindingFilter {
                flight_id: Some(flight),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(stored.len(), written["features"].as_array().unwrap().len());
    assert!(
        !stored.is_empty(),
        "the coarse crack model finds something in Brighton"
    );
    let mut ids: Vec<&str> = stored.iter().map(|f| f.finding_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), stored.len(), "no finding stored twice");
    let served = json(
        &server.addr,
        "GET",
        &format!("/api/v1/flights/{flight}/findings.geojson"),
        &token,
        "",
    );
    assert_eq!(served["features"].as_array().unwrap().len(), stored.len());
}
