//! `besikta serve` as a real process: SIGKILL it while a job runs, start it again on the
//! same data folder, and the job finishes once, with nothing lost or duplicated.

mod common;

use besikta_store::{FindingFilter, SqliteStore, Store};
use common::http::http;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The baseline crack model under the test manifest `fixtures/models/coarse` (68 mm per pixel), so the three
/// Brighton photos give real detections in well under a minute of inference: long enough
/// to kill the server mid-job, and findings to check for duplicates. (The findings are
/// not trustworthy defects; this tests the service, not the model.)
fn coarse_crack_models() -> PathBuf {
    repo().join("fixtures/models/coarse")
}

fn start(data: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_besikta"))
        .args(["serve", "--addr", "127.0.0.1:0", "--threads", "2", "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_crack_models())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("besikta serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("besikta: listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server { child, addr }
}

fn json(addr: &str, method: &str, path: &str, token: &str, body: &str) -> Value {
    let (status, bytes) = http(
        addr,
        method,
        path,
        token,
        "application/json",
        body.as_bytes(),
    );
    assert!(
        status < 300,
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
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
    let out = Command::new(env!("CARGO_BIN_EXE_besikta"))
        .args([
            "token", "create", "--org", "Brighton", "--role", "admin", "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();

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
    let boundary = "kill-test-boundary";
    let mut form = Vec::new();
    for name in ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"] {
        form.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"p\"; filename=\"{name}\"\r\n\r\n").as_bytes(),
        );
        form.extend_from_slice(
            &std::fs::read(repo().join("fixtures/brighton").join(name)).unwrap(),
        );
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let (status, _) = http(
        &server.addr,
        "POST",
        &format!("/api/v1/flights/{flight}/photos"),
        &token,
        &format!("multipart/form-data; boundary={boundary}"),
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
                srv.child.kill().unwrap(); // SIGKILL on Unix
                srv.child.wait().unwrap();
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
