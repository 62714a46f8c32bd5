//! One flight, `besikta worker` processes, batch units of one photo (issue 15): the units
//! are taken by more than one worker, a worker killed mid-unit loses only that unit, a
//! stopping worker (SIGTERM) hands its unit back at once, the finish unit runs on another
//! worker than the one that prepared the job (also when the finisher is killed), and the
//! stored findings equal those of the same photos in one process (`pipeline::process`).

mod common;

use besikta_store::testing::PgCluster;
use besikta_store::{PgStore, Store, UnitKind, UnitRow};
use common::http::http;
use common::process::{
    admin_token, besikta_command, coarse_models, photo_form, start_serve, start_worker, Proc,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PHOTOS: [&str; 3] = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"];

fn worker(data: &Path, url: &str, lease_secs: &str) -> Proc {
    let mut cmd = besikta_command();
    cmd.args(["worker", "--threads", "1", "--lease-secs", lease_secs])
        .args(["--unit-photos", "1", "--database", url, "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models());
    start_worker(cmd)
}

fn json(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> Value {
    common::http::json(addr, method, path, token, body)
}

/// `besikta serve` with no workers of its own over a fresh PostgreSQL database.
/// (Fields drop in order: the server stops before its data folder goes.)
struct Service {
    _server: Proc,
    addr: String,
    token: String,
    url: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start() -> Service {
        let url = PgCluster::shared().unwrap().fresh_database().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = admin_token(&data, Some(&url));
        let mut cmd = besikta_command();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--workers", "0"])
            .args(["--database", &url, "--data"])
            .arg(&data);
        let (server, addr) = start_serve(cmd);
        Service {
            _server: server,
            addr,
            token,
            url,
            data,
            _dir: dir,
        }
    }

    /// A flight named `name` with [`PHOTOS`] (one multipart upload with `boundary`),
    /// queued for processing; (flight, job).
    fn queued_flight(&self, name: &str, boundary: &str) -> (i64, i64) {
        let (addr, token) = (&self.addr, &self.token);
        let body = serde_json::json!({ "name": name }).to_string();
        let flight = json(addr, "POST", "/api/v1/flights", token, body.as_bytes())["id"]
            .as_i64()
            .unwrap();
        let (form, ctype) = photo_form(boundary, &PHOTOS);
        let path = format!("/api/v1/flights/{flight}/photos");
        assert_eq!(http(addr, "POST", &path, token, &ctype, &form).0, 200);
        let path = format!("/api/v1/flights/{flight}/process");
        let job = json(addr, "POST", &path, token, b"{}")["job"]
            .as_i64()
            .unwrap();
        (flight, job)
    }

    /// Polls the flight every 50 ms until it is done (never failed); fails after `limit`.
    fn wait_until_done(&self, flight: i64, limit: Duration) {
        let flight_path = format!("/api/v1/flights/{flight}");
        common::process::wait_for(limit, Duration::from_millis(50), || {
            let f = json(&self.addr, "GET", &flight_path, &self.token, b"{}");
            assert_ne!(f["state"], "failed", "{f}");
            f["state"] == "done"
        });
    }
}

/// The job's finish unit among its units.
fn finish_unit(units: &[UnitRow]) -> &UnitRow {
    let mut finish = units.iter().filter(|u| u.kind == UnitKind::Finish);
    let unit = finish.next().expect("a finish unit");
    assert!(finish.next().is_none(), "one finish unit: {units:?}");
    unit
}

/// Polls every 10 ms until one unit of `job` is done and another runs on the worker whose
/// id holds `pid` (`:<pid>:`).
fn wait_until_second_unit_runs(store: &PgStore, job: i64, pid: &str) {
    common::process::wait_for(Duration::from_secs(600), Duration::from_millis(10), || {
        let u = store.units(job, false).unwrap();
        u.iter().any(|r| r.state == "done")
            && u.iter().any(|r| {
                r.state == "running" && r.worker.as_deref().is_some_and(|w| w.contains(pid))
            })
    });
}

#[test]
fn one_flight_is_inferred_by_several_workers_and_matches_one_process() {
    let s = Service::start();
    let (flight, job) = s.queued_flight("units", "units-test");

    let _workers: Vec<Proc> = (0..3).map(|_| worker(&s.data, &s.url, "10")).collect();
    s.wait_until_done(flight, Duration::from_secs(600));

    // One batch unit per photo and the finish unit, each done; the batches taken by more
    // than one worker process.
    let store = PgStore::open_with(&s.url, 1).unwrap();
    let all = store.units(job, false).unwrap();
    assert!(all.iter().all(|u| u.state == "done"), "{all:?}");
    assert_eq!(finish_unit(&all).attempt, 1, "{all:?}");
    let units: Vec<&UnitRow> = all.iter().filter(|u| u.kind == UnitKind::Batch).collect();
    assert_eq!(units.len(), PHOTOS.len(), "{units:?}");
    let mut workers: Vec<&str> = units.iter().filter_map(|u| u.worker.as_deref()).collect();
    workers.sort_unstable();
    workers.dedup();
    eprintln!("units by worker: {units:?}");
    assert!(workers.len() >= 2, "one worker ran every unit: {units:?}");
    assert_eq!(store.unit_plan(job).unwrap(), None, "the plan is dropped");

    // The same findings as one process over the same photos.
    assert_same_findings_as_one_process(&store, flight);
}

/// The flight's stored findings equal `pipeline::process` over the same photos.
fn assert_same_findings_as_one_process(store: &PgStore, flight: i64) {
    common::findings::assert_same_findings_as_one_process(store, flight, &PHOTOS);
}

/// SIGKILL the only worker (the job's own, which prepared it) while it runs its second
/// unit: the first unit's result is kept (not run again), the killed unit goes to the next
/// worker after its lease, that worker also finishes the flight (the finish unit), and the
/// findings are still one process's.
#[test]
fn a_worker_killed_mid_unit_loses_only_that_unit() {
    let s = Service::start();
    let (flight, job) = s.queued_flight("kill", "units-kill-test");
    let store = PgStore::open_with(&s.url, 1).unwrap();

    let mut a = worker(&s.data, &s.url, "3");
    let pid_a = format!(":{}:", a.0.id());
    wait_until_second_unit_runs(&store, job, &pid_a);
    a.0.kill().unwrap(); // SIGKILL
    a.0.wait().unwrap();
    let (done_before, killed) = common::findings::units_at_kill(&store, job);

    let b = worker(&s.data, &s.url, "3");
    let pid_b = format!(":{}:", b.0.id());
    s.wait_until_done(flight, Duration::from_secs(600));
    let after = store.units(job, false).unwrap();
    eprintln!("units done before the kill {done_before:?}, killed {killed:?}, after {after:?}");
    assert!(after.iter().all(|r| r.state == "done"), "{after:?}");
    for (id, attempt) in &done_before {
        let r = after.iter().find(|r| r.id == *id).unwrap();
        assert_eq!(r.attempt, *attempt, "a finished unit was run again: {r:?}");
    }
    let k = after.iter().find(|r| r.id == killed[0]).unwrap();
    assert_eq!(k.attempt, 2, "{k:?}");
    assert!(k.worker.as_deref().unwrap().contains(&pid_b), "{k:?}");
    // The job was prepared by A (the only worker then); B, started after, finished it.
    let fin = finish_unit(&after);
    assert_eq!(fin.attempt, 1, "{fin:?}");
    assert!(fin.worker.as_deref().unwrap().contains(&pid_b), "{fin:?}");
    let counts = store.job_counts().unwrap();
    assert_eq!((counts.done, counts.running, counts.failed), (1, 0, 0));
    assert_same_findings_as_one_process(&store, flight);
}

/// SIGTERM the only worker (the job's own, `--shutdown-secs 0`, 10-minute leases) while it
/// runs its second unit: the unit in hand goes back to the queue at once, not after its
/// lease, and the next worker runs it and finishes the flight.
#[test]
fn a_stopping_worker_hands_back_its_unit_at_once() {
    let s = Service::start();
    let (flight, job) = s.queued_flight("stop", "units-stop-test");
    let store = PgStore::open_with(&s.url, 1).unwrap();
    let stopping_worker = || {
        let mut cmd = besikta_command();
        cmd.args(["worker", "--threads", "1", "--lease-secs", "600"])
            .args(["--shutdown-secs", "0", "--unit-photos", "1"])
            .args(["--database", &s.url, "--data"])
            .arg(&s.data)
            .arg("--models")
            .arg(coarse_models());
        start_worker(cmd)
    };

    let mut a = stopping_worker();
    let pid_a = format!(":{}:", a.0.id());
    wait_until_second_unit_runs(&store, job, &pid_a);
    let (status, _) = a.terminate(Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    let after_stop = store.units(job, false).unwrap();
    assert!(
        after_stop.iter().all(|r| r.state != "running"),
        "a unit is still leased to the stopped worker: {after_stop:?}"
    );
    let handed_back: Vec<_> = after_stop
        .iter()
        .filter(|r| r.state == "queued" && r.attempt == 1)
        .map(|r| r.id)
        .collect();
    assert_eq!(handed_back.len(), 1, "{after_stop:?}");

    // The next worker takes the job and the handed-back unit long before a 600 s lease.
    let b = stopping_worker();
    let pid_b = format!(":{}:", b.0.id());
    let started = std::time::Instant::now();
    s.wait_until_done(flight, Duration::from_secs(500));
    assert!(started.elapsed() < Duration::from_secs(500));
    let after = store.units(job, false).unwrap();
    let r = after.iter().find(|r| r.id == handed_back[0]).unwrap();
    assert_eq!((r.state.as_str(), r.attempt), ("done", 2), "{r:?}");
    assert!(r.worker.as_deref().unwrap().contains(&pid_b), "{r:?}");
    // A prepared the job and left it to the queue; B finished it.
    let fin = finish_unit(&after);
    assert_eq!((fin.state.as_str(), fin.attempt), ("done", 1), "{fin:?}");
    assert!(fin.worker.as_deref().unwrap().contains(&pid_b), "{fin:?}");
    assert_same_findings_as_one_process(&store, flight);
}

/// SIGKILL the only worker (which prepared the job and ran every batch) while it runs the
/// finish unit: after the 3 s lease the next worker takes the finish unit (attempt 2, a
/// new job attempt), no batch runs again, the job completes once and the findings are
/// one process's (none lost or doubled).
#[test]
fn a_worker_killed_mid_finish_leaves_the_finish_to_another() {
    let s = Service::start();
    let (flight, job) = s.queued_flight("kill-finish", "units-kill-finish-test");
    let store = PgStore::open_with(&s.url, 1).unwrap();

    let mut a = worker(&s.data, &s.url, "3");
    let pid_a = format!(":{}:", a.0.id());
    common::process::wait_for(Duration::from_secs(600), Duration::from_millis(5), || {
        let u = store.units(job, false).unwrap();
        u.iter().any(|r| {
            r.kind == UnitKind::Finish
                && r.state == "running"
                && r.worker.as_deref().is_some_and(|w| w.contains(&pid_a))
        })
    });
    a.0.kill().unwrap(); // SIGKILL
    a.0.wait().unwrap();
    let before = store.units(job, false).unwrap();
    assert_eq!(
        store.job_state(job).unwrap().as_deref(),
        Some("running"),
        "the finish was killed before it stored the job: {before:?}"
    );

    let b = worker(&s.data, &s.url, "3");
    let pid_b = format!(":{}:", b.0.id());
    s.wait_until_done(flight, Duration::from_secs(600));
    // The job is stored and its finish unit marked done in one transaction
    // (`Store::complete_finish`): a done flight's finish unit is done.
    let after = store.units(job, false).unwrap();
    eprintln!("units before the kill {before:?}, after {after:?}");
    for r in after.iter().filter(|r| r.kind == UnitKind::Batch) {
        assert_eq!((r.state.as_str(), r.attempt), ("done", 1), "{r:?}");
        assert!(r.worker.as_deref().unwrap().contains(&pid_a), "{r:?}");
    }
    let fin = finish_unit(&after);
    assert_eq!((fin.state.as_str(), fin.attempt), ("done", 2), "{fin:?}");
    assert!(fin.worker.as_deref().unwrap().contains(&pid_b), "{fin:?}");
    let counts = store.job_counts().unwrap();
    assert_eq!((counts.done, counts.running, counts.failed), (1, 0, 0));
    assert_same_findings_as_one_process(&store, flight);
}
