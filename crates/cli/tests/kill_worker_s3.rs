//! Kill test (issue 15) on PostgreSQL + S3: `besikta worker --storage s3://...` (moto on
//! loopback), batch units of one photo, is SIGKILLed while it runs a batch unit; another
//! worker with its own data folder takes the unit over after its lease, the flight
//! completes once, the stored findings are one `pipeline::process` run's (none lost or
//! doubled), and the photos and products are in the bucket, not in any local folder.

mod common;

use besikta_storage::testing::MotoServer;
use besikta_store::testing::PgCluster;
use besikta_store::{PgStore, Store, UnitKind};
use common::http::json;
use common::process::{
    admin_token, besikta_command, coarse_models, queued_brighton_flight, start_serve, start_worker,
    wait_for, Proc,
};
use std::path::Path;
use std::time::{Duration, Instant};

const PHOTOS: [&str; 3] = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"];

/// `besikta worker` (one thread, 3 s leases, one photo per unit) on `database` and
/// `storage`, with its own data folder `data`.
fn worker(data: &Path, database: &str, storage: &str, env: &[(String, String)]) -> Proc {
    let mut cmd = besikta_command();
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["worker", "--threads", "1", "--lease-secs", "3"])
        .args(["--unit-photos", "1", "--database", database])
        .args(["--storage", storage, "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models());
    start_worker(cmd)
}

/// The names of the `out-*` folders of `flight` in the data folder `data` (none when the
/// flight has no folder there).
fn local_outputs(data: &Path, flight: i64) -> Vec<String> {
    std::fs::read_dir(data.join(format!("flights/{flight}")))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("out-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_worker_killed_mid_unit_on_postgres_and_s3_loses_only_that_unit() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoServer::start("besikta").unwrap();
    let s3 = moto.url("region");
    let env = moto.env();
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let api = dir.path().join("api");
    let token = admin_token(&api, Some(&url));
    let mut cmd = besikta_command();
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "0"])
        .args(["--database", &url, "--storage", &s3, "--data"])
        .arg(&api);
    let (_server, addr) = start_serve(cmd);
    let (flight, job) = queued_brighton_flight(&addr, &token, "kill-worker-s3-test");

    // The photos are in the bucket, not on the API machine's disk.
    let bucket = moto.storage("region").unwrap();
    for name in PHOTOS {
        let key = format!("flights/{flight}/photos/{name}");
        assert!(
            bucket.exists_blocking(&key).unwrap(),
            "{key} not in the bucket"
        );
        assert!(!api.join(&key).exists(), "{key} on the API machine's disk");
    }

    // Worker A (the only one) prepares the job and runs units; SIGKILL while it runs its
    // second unit, the first one done.
    let store = PgStore::open_with(&url, 1).unwrap();
    let data_a = dir.path().join("worker-a");
    let mut a = worker(&data_a, &url, &s3, &env);
    let pid_a = format!(":{}:", a.0.id());
    wait_for(Duration::from_secs(600), Duration::from_millis(10), || {
        let u = store.units(job, false).unwrap();
        u.iter().any(|r| r.state == "done")
            && u.iter().any(|r| {
                r.kind == UnitKind::Batch
                    && r.state == "running"
                    && r.worker.as_deref().is_some_and(|w| w.contains(&pid_a))
            })
    });
    a.0.kill().unwrap(); // SIGKILL
    let status = a.0.wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status}");
    let (done_before, killed) = common::findings::units_at_kill(&store, job);

    // Worker B, another data folder (another machine), takes the killed unit after its
    // lease and finishes the flight.
    let data_b = dir.path().join("worker-b");
    let b = worker(&data_b, &url, &s3, &env);
    let pid_b = format!(":{}:", b.0.id());
    let flight_path = format!("/api/v1/flights/{flight}");
    wait_for(Duration::from_secs(600), Duration::from_millis(50), || {
        let f = json(&addr, "GET", &flight_path, &token, b"");
        assert_ne!(f["state"], "failed", "{f}");
        f["state"] == "done"
    });
    let after = store.units(job, false).unwrap();
    eprintln!("units done before the kill {done_before:?}, killed {killed:?}, after {after:?}");
    assert!(after.iter().all(|r| r.state == "done"), "{after:?}");
    for (id, attempt) in &done_before {
        let r = after.iter().find(|r| r.id == *id).unwrap();
        assert_eq!(r.attempt, *attempt, "a finished unit was run again: {r:?}");
    }
    let k = after.iter().find(|r| r.id == killed[0]).unwrap();
    assert_eq!((k.kind, k.attempt), (UnitKind::Batch, 2), "{k:?}");
    assert!(k.worker.as_deref().unwrap().contains(&pid_b), "{k:?}");
    let batches = after.iter().filter(|r| r.kind == UnitKind::Batch).count();
    assert_eq!(batches, PHOTOS.len(), "{after:?}");
    let mut finish = after.iter().filter(|r| r.kind == UnitKind::Finish);
    let fin = finish.next().expect("a finish unit");
    assert!(finish.next().is_none(), "one finish unit: {after:?}");
    assert_eq!(fin.attempt, 1, "{fin:?}");
    assert!(fin.worker.as_deref().unwrap().contains(&pid_b), "{fin:?}");
    // The flight completed once: one job, done.
    let counts = store.job_counts().unwrap();
    assert_eq!((counts.done, counts.running, counts.failed), (1, 0, 0));

    // The findings are one process's over the same photos: none lost, none doubled.
    common::findings::assert_same_findings_as_one_process(&store, flight, &PHOTOS);

    // The products are in the bucket (their summary counts the stored findings), and in
    // no local folder; worker B's scratch is gone.
    let org = store.ensure_org("Brighton", None).unwrap();
    let out = store
        .flight(org.id, flight)
        .unwrap()
        .and_then(|f| f.output_dir)
        .expect("the flight's products");
    for name in ["summary.json", "footprints.geojson"] {
        let key = format!("{out}/{name}");
        assert!(
            bucket.exists_blocking(&key).unwrap(),
            "{key} not in the bucket"
        );
    }
    let summary = dir.path().join("summary.json");
    bucket
        .get_file_blocking(&format!("{out}/summary.json"), &summary)
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let filter = besikta_store::FindingFilter {
        flight_id: Some(flight),
        ..Default::default()
    };
    let stored = store.findings(org.id, &filter).unwrap().len();
    assert_eq!(summary["findings"], stored, "{summary}");
    for data in [&api, &data_a, &data_b] {
        let outs = local_outputs(data, flight);
        assert!(outs.is_empty(), "products in {}: {outs:?}", data.display());
        let photos: Vec<_> = std::fs::read_dir(data.join(format!("flights/{flight}/photos")))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(photos.is_empty(), "photos on disk: {photos:?}");
    }
    let left = std::fs::read_dir(data_b.join("scratch"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "worker B left scratch files");
    eprintln!(
        "{stored} findings; units {:?}; whole test {:?}",
        after
            .iter()
            .map(|r| (r.id, r.kind, r.attempt))
            .collect::<Vec<_>>(),
        started.elapsed()
    );
}
