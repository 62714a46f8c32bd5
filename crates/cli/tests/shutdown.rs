//! Graceful shutdown of real processes: SIGTERM to a `besikta worker` in the middle of a
//! job lets it finish the job and exit 0; with no time left (`--shutdown-secs 0`) the job
//! goes back to the queue at once (not after its lease) and another worker finishes it.
//! SIGTERM to `besikta serve` with a job running does the same with its built-in worker.
//! `/metrics` with the metrics token shows the worker processes' heartbeats meanwhile.

mod common;

use besikta_store::testing::PgCluster;
use besikta_store::{PgStore, SqliteStore, Store};
use common::http::http;
use common::process::{
    admin_token, besikta_command, coarse_models, queued_brighton_flight, start_serve, start_worker,
    Proc,
};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const METRICS_TOKEN: &str = "metrics-token-for-the-shutdown-test";

fn serve(data: &Path, extra: &[&str]) -> (Proc, String) {
    let token_file = data.with_extension("metrics-token");
    std::fs::write(&token_file, format!("{METRICS_TOKEN}\n")).unwrap();
    let mut cmd = besikta_command();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--threads", "2"])
        .args(extra)
        .arg("--metrics-token-file")
        .arg(&token_file)
        .arg("--models")
        .arg(coarse_models())
        .arg("--data")
        .arg(data);
    start_serve(cmd)
}

fn worker(data: &Path, url: &str, shutdown_secs: u32) -> Proc {
    let mut cmd = besikta_command();
    cmd.args(["worker", "--threads", "2", "--lease-secs", "600"])
        .args(["--shutdown-secs", &shutdown_secs.to_string()])
        .args(["--database", url, "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models());
    start_worker(cmd)
}

fn json(addr: &str, method: &str, path: &str, token: &str) -> Value {
    common::http::json(addr, method, path, token, b"{}")
}

/// A flight with three Brighton photos, queued for processing; (flight, job).
fn queued_flight(addr: &str, token: &str) -> (i64, i64) {
    queued_brighton_flight(addr, token, "shutdown-test")
}

fn wait_for(limit: Duration, done: impl FnMut() -> bool) {
    common::process::wait_for(limit, Duration::from_millis(50), done)
}

fn inferring(addr: &str, token: &str, flight: i64) -> bool {
    let f = json(addr, "GET", &format!("/api/v1/flights/{flight}"), token);
    assert_ne!(f["state"], "failed", "{f}");
    f["state"] == "running" && f["progress"]["stage"] == "infer"
}

fn state(addr: &str, token: &str, flight: i64) -> String {
    json(addr, "GET", &format!("/api/v1/flights/{flight}"), token)["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn metrics(addr: &str) -> String {
    let (status, body) = http(addr, "GET", "/metrics", METRICS_TOKEN, "text/plain", b"");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

#[test]
fn sigterm_to_a_worker_finishes_the_job_in_hand_or_returns_it_at_the_deadline() {
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data, Some(&url));
    let (_server, addr) = serve(&data, &["--workers", "0", "--database", &url]);
    let store = PgStore::open_with(&url, 1).unwrap();

    // Time enough: the job in hand finishes, then the worker exits 0.
    let (flight, job) = queued_flight(&addr, &token);
    let mut a = worker(&data, &url, 300);
    wait_for(Duration::from_secs(300), || {
        inferring(&addr, &token, flight)
    });
    let text = metrics(&addr);
    assert!(text.contains("kind=\"worker\"} "), "{text}");
    assert!(text.contains("besikta_worker_busy{worker=\""), "{text}");
    assert!(text.contains("\"} 1\n"), "busy: {text}");
    let (status, _) = a.terminate(Duration::from_secs(300));
    assert!(status.success(), "{status}");
    assert_eq!(state(&addr, &token, flight), "done");
    assert_eq!(store.job_state(job).unwrap().as_deref(), Some("done"));
    assert!(store.workers().unwrap().is_empty(), "it said goodbye");

    // No time at all: the job goes back to the queue at once, though its lease has
    // 600 s to run, and the next worker finishes it.
    let (flight, job) = queued_flight(&addr, &token);
    let mut b = worker(&data, &url, 0);
    wait_for(Duration::from_secs(300), || {
        inferring(&addr, &token, flight)
    });
    let (status, took) = b.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    assert!(
        took < Duration::from_secs(10),
        "did not wait for the job: {took:?}"
    );
    assert_eq!(store.job_state(job).unwrap().as_deref(), Some("queued"));
    assert_eq!(state(&addr, &token, flight), "queued");
    let taken_over = Instant::now();
    let _c = worker(&data, &url, 60);
    wait_for(Duration::from_secs(300), || {
        state(&addr, &token, flight) == "done"
    });
    assert!(taken_over.elapsed() < Duration::from_secs(300));
    let counts = store.job_counts().unwrap();
    assert_eq!(
        (counts.done, counts.queued, counts.running, counts.failed),
        (2, 0, 0, 0)
    );
    let outs = common::output_folders(&data, flight);
    assert_eq!(
        outs,
        [format!("out-{job}-2")],
        "the second attempt's products only"
    );
}

#[test]
fn sigterm_to_serve_returns_the_running_job_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data, None);
    let (mut server, addr) = serve(&data, &["--workers", "1", "--shutdown-secs", "0"]);
    let (flight, job) = queued_flight(&addr, &token);
    wait_for(Duration::from_secs(300), || {
        inferring(&addr, &token, flight)
    });
    let (status, took) = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let store = SqliteStore::open(&data.join("besikta.db")).unwrap();
    assert_eq!(store.job_state(job).unwrap().as_deref(), Some("queued"));
    assert!(store.workers().unwrap().is_empty());
    drop(store);
    // The next start runs it to the end.
    let (_server, addr) = serve(&data, &["--workers", "1"]);
    wait_for(Duration::from_secs(300), || {
        state(&addr, &token, flight) == "done"
    });
}
