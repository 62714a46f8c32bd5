//! Operations: `/metrics` with the service's metrics token (queue depth, jobs per state and
//! organisation, work units per state and organisation, each worker's heartbeat age) and without it, and `/healthz` naming the part
//! that failed. Runs on PostgreSQL too (BESIKTA_TEST_DATABASE=postgres).

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use besikta_server::Workers;
use common::{env_with, Env};
use std::time::{Duration, Instant};

const METRICS_TOKEN: &str = "operator-metrics-token-0123456789";

async fn metrics(e: &Env, token: Option<&str>) -> (StatusCode, String) {
    let r = e
        .send(Method::GET, "/metrics", token, &[], Body::empty())
        .await;
    (r.status, String::from_utf8(r.body).unwrap())
}

/// The value of the first line starting with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_token_shows_the_queue_per_organisation_and_worker_heartbeats() {
    let e = env_with(|c| {
        c.metrics_token = Some(METRICS_TOKEN.into());
        c.workers = 1;
    });
    let store = e.store();
    let espoo = store.ensure_org("Espoo", None).unwrap();
    let vantaa = store.ensure_org("Vantaa", None).unwrap();
    for org in [&espoo, &espoo, &vantaa] {
        let f = store.create_flight(org.id, "queued").unwrap();
        store.enqueue_job(org.id, f.id).unwrap();
    }
    let (status, text) = metrics(&e, Some(METRICS_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("besikta_http_requests_total"), "{text}");
    assert_eq!(value(&text, "besikta_queue_depth "), Some(3.0), "{text}");
    assert_eq!(
        value(&text, "besikta_queue_jobs{state=\"queued\"} "),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "besikta_org_jobs{org=\"Espoo\",state=\"queued\"} "),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "besikta_org_jobs{org=\"Vantaa\",state=\"queued\"} "),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, "besikta_workers "), Some(0.0), "{text}");

    // Neither the public nor an organisation's admin sees the service-wide queue.
    let (_, public) = metrics(&e, None).await;
    let (_, admin) = metrics(&e, Some(e.token("a", "admin"))).await;
    for text in [&public, &admin] {
        for hidden in ["besikta_queue", "besikta_org_jobs", "besikta_worker"] {
            assert!(!text.contains(hidden), "{hidden}:\n{text}");
        }
    }
    // A wrong token of the same length is just an unknown token.
    let wrong = format!("{}x", &METRICS_TOKEN[..METRICS_TOKEN.len() - 1]);
    assert_eq!(metrics(&e, Some(&wrong)).await.0, StatusCode::UNAUTHORIZED);

    // A built-in worker beats at start; its jobs (flights without photos) fail at once.
    // The worker marks a job failed before it clears its busy flag, so wait for both.
    let host = besikta_server::hostname();
    let worker = format!("{host}:{}:0", std::process::id());
    let idle = format!("besikta_worker_busy{{worker=\"{worker}\"}} 0");
    let workers = Workers::start(&e.state);
    let start = Instant::now();
    let text = loop {
        let (_, text) = metrics(&e, Some(METRICS_TOKEN)).await;
        if value(&text, "besikta_workers ") == Some(1.0)
            && value(&text, "besikta_queue_jobs{state=\"failed\"} ") == Some(3.0)
            && text.contains(&idle)
        {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(value(&text, "besikta_queue_depth "), Some(0.0), "{text}");
    let age = value(
        &text,
        &format!(
            "besikta_worker_heartbeat_age_seconds{{worker=\"{worker}\",host=\"{host}\",kind=\"serve\"}} "
        ),
    )
    .unwrap_or_else(|| panic!("no heartbeat of {worker}:\n{text}"));
    assert!(age <= 6.0, "beats every 5 s: {age}\n{text}");
    // A worker that stops cleanly is removed, not reported as silent.
    tokio::task::spawn_blocking(move || workers.stop())
        .await
        .unwrap();
    let (_, text) = metrics(&e, Some(METRICS_TOKEN)).await;
    assert_eq!(value(&text, "besikta_workers "), Some(0.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_token_shows_work_units_per_state_and_organisation() {
    let e = env_with(|c| c.metrics_token = Some(METRICS_TOKEN.into()));
    let store = e.store();
    let (_, text) = metrics(&e, Some(METRICS_TOKEN)).await;
    for s in ["queued", "running", "done", "failed"] {
        let line = format!("besikta_units{{state=\"{s}\"}} ");
        assert_eq!(value(&text, &line), Some(0.0), "{line}\n{text}");
    }
    // One running job split into 4 batch units (1 done, 1 failed, 1 running, 1 queued)
    // and its finish unit (queued), another organisation's job into 1 batch and a finish.
    let org = store.ensure_org("Espoo", None).unwrap();
    let flight = store.create_flight(org.id, "big").unwrap();
    store.enqueue_job(org.id, flight.id).unwrap();
    let job = store.claim_job(60).unwrap().unwrap();
    store
        .put_units(&job, "{}", &[(0, 4), (4, 4), (8, 4), (12, 2)])
        .unwrap();
    let done = store.claim_unit(60, None, "w0").unwrap().unwrap();
    assert!(store.complete_unit(&done, Some("{}"), None).unwrap());
    let failed = store.claim_unit(60, None, "w0").unwrap().unwrap();
    assert!(store.complete_unit(&failed, None, Some("bad")).unwrap());
    store.claim_unit(60, None, "w1").unwrap().unwrap();
    let vantaa = store.ensure_org("Vantaa", None).unwrap();
    let f2 = store.create_flight(vantaa.id, "small").unwrap();
    store.enqueue_job(vantaa.id, f2.id).unwrap();
    let job2 = store.claim_job(60).unwrap().unwrap();
    store.put_units(&job2, "{}", &[(0, 2)]).unwrap();
    let (status, text) = metrics(&e, Some(METRICS_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    for (s, n) in [
        ("queued", 4.0),
        ("running", 1.0),
        ("done", 1.0),
        ("failed", 1.0),
    ] {
        let line = format!("besikta_units{{state=\"{s}\"}} ");
        assert_eq!(value(&text, &line), Some(n), "{line}\n{text}");
    }
    assert!(text.contains("# TYPE besikta_units gauge"), "{text}");
    for (org, s, n) in [
        ("Espoo", "queued", 2.0),
        ("Espoo", "running", 1.0),
        ("Espoo", "done", 1.0),
        ("Espoo", "failed", 1.0),
        ("Vantaa", "queued", 2.0),
        ("Vantaa", "running", 0.0),
    ] {
        let line = format!("besikta_org_units{{org=\"{org}\",state=\"{s}\"}} ");
        assert_eq!(value(&text, &line), Some(n), "{line}\n{text}");
    }
    // Neither the public nor an organisation's admin sees them.
    let (_, public) = metrics(&e, None).await;
    let (_, admin) = metrics(&e, Some(e.token("a", "admin"))).await;
    for text in [&public, &admin] {
        assert!(!text.contains("besikta_units"), "{text}");
        assert!(!text.contains("besikta_org_units"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_which_part_failed() {
    let e = env_with(|_| {});
    let health = || async {
        let r = e
            .send(Method::GET, "/healthz", None, &[], Body::empty())
            .await;
        (r.status, String::from_utf8(r.body).unwrap())
    };
    assert_eq!(health().await, (StatusCode::OK, "ok\n".to_string()));

    // Storage: the data folder's flights/ is gone.
    let flights = e.dir.path().join("flights");
    std::fs::rename(&flights, e.dir.path().join("moved")).unwrap();
    let (status, text) = health().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("database: ok\n"), "{text}");
    assert!(text.contains("storage: cannot read"), "{text}");
    std::fs::rename(e.dir.path().join("moved"), &flights).unwrap();
    assert_eq!(health().await.0, StatusCode::OK);

    // Database: the jobs table the check queries is dropped behind the server's back.
    match &e.database {
        Some(url) => {
            // The synchronous client runs its own runtime: off this test's.
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                c.batch_execute("DROP TABLE jobs CASCADE").unwrap();
            })
            .join()
            .unwrap();
        }
        None => {
            let c = rusqlite::Connection::open(e.dir.path().join("besikta.db")).unwrap();
            c.execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE jobs;")
                .unwrap();
        }
    }
    let (status, text) = health().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("database: database error"), "{text}");
    assert!(text.contains("storage: ok\n"), "{text}");
}
