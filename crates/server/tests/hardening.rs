//! The service under concurrent use and careless or hostile input (issue 11): photos that
//! arrive while their flight is processed, unreadable registers, lenient query values,
//! security headers, what `/metrics` shows without a token, flight deletion and the audit
//! log.

mod common;

use axum::http::StatusCode;
use besikta_store::{JobResult, SqliteStore, Store};
use common::{env, fixture, Env};
use serde_json::json;

fn db(e: &Env) -> SqliteStore {
    SqliteStore::open(&e.dir.path().join("besikta.db")).unwrap()
}

/// Three small distinct photos (one real JPEG with different tails).
fn photo(i: u8) -> Vec<u8> {
    let mut p = std::fs::read(fixture("broken/duplicate-1.jpg")).unwrap();
    p.extend_from_slice(&[i; 8]);
    p
}

async fn process(e: &Env, flight: i64) -> common::Reply {
    e.post_json(
        &format!("/api/v1/flights/{flight}/process"),
        e.token("a", "crew"),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn a_photo_that_arrives_while_its_flight_runs_gets_a_follow_up_job() {
    let e = env();
    let flight = e.create_flight("a", "late").await;
    let crew = e.token("a", "crew");
    e.multipart(flight, crew, &[("DJI_0001.JPG", photo(1))])
        .await;
    let first = process(&e, flight).await.json()["job"].as_i64().unwrap();
    // A worker takes the job and reads the flight's one photo...
    let store = db(&e);
    let job = store.claim_job(60).unwrap().unwrap();
    assert_eq!(job.id, first);
    let seen = store.photos(flight).unwrap().len();
    // ...and a second photo lands meanwhile.
    let r = e
        .multipart(flight, crew, &[("DJI_0002.JPG", photo(2))])
        .await;
    assert_eq!(r.json()["files"][0]["status"], json!("stored"));
    let again = process(&e, flight).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    let follow_up = again.json()["job"].as_i64().unwrap();
    assert_ne!(
        follow_up, first,
        "the running job does not cover the late photo"
    );
    assert_eq!(again.json()["state"], json!("queued"));
    assert_eq!(
        process(&e, flight).await.json()["job"],
        json!(follow_up),
        "one follow-up, not one per request"
    );
    // No second worker may run the same flight at the same time.
    assert!(store.claim_job(60).unwrap().is_none());
    let result = JobResult {
        output_dir: format!("flights/{flight}/out-{}-{}", job.id, job.attempt),
        findings: vec![],
        rejected: vec![],
    };
    store.complete_job(&job, &result).unwrap();
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(
        f["state"],
        json!("queued"),
        "not done: {seen} of {} photos processed",
        f["photos"]
    );
    let next = store.claim_job(60).unwrap().unwrap();
    assert_eq!((next.id, next.flight_id), (follow_up, flight));
    assert_eq!(store.photos(flight).unwrap().len(), 2);
}

#[tokio::test]
async fn a_photo_during_the_run_queues_a_follow_up_even_without_asking() {
    let e = env();
    let flight = e.create_flight("a", "late, no request").await;
    let crew = e.token("a", "crew");
    e.multipart(flight, crew, &[("DJI_0001.JPG", photo(1))])
        .await;
    process(&e, flight).await;
    let store = db(&e);
    let job = store.claim_job(60).unwrap().unwrap();
    e.multipart(flight, crew, &[("DJI_0002.JPG", photo(2))])
        .await;
    // The worker fails; the late photo's job still runs.
    store.fail_job(&job, "model missing").unwrap();
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(f["state"], json!("queued"), "{f}");
    let next = store.claim_job(60).unwrap().unwrap();
    assert_ne!(next.id, job.id);
    // A photo while a job is only queued needs nothing more: that job reads it.
    let e2 = e.create_flight("a", "queued only").await;
    e.multipart(e2, crew, &[("DJI_0001.JPG", photo(3))]).await;
    let queued = process(&e, e2).await.json()["job"].clone();
    e.multipart(e2, crew, &[("DJI_0002.JPG", photo(4))]).await;
    assert_eq!(process(&e, e2).await.json()["job"], queued);
}
