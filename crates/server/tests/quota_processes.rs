//! The upload quota holds across API processes sharing one database: two server
//! instances (each with its own store connection(s) and router, as two `besikta serve`
//! processes would have) race uploads of one organisation against a small quota; the
//! store counts and records each photo in one transaction that the other instance waits
//! for (a PostgreSQL advisory lock on the organisation; SQLite's write lock), so the
//! total never goes over, and every refusal is a 413 naming the quota. Runs on SQLite by
//! default and on PostgreSQL with `BESIKTA_TEST_DATABASE=postgres` (feature `postgres`).

mod common;

use axum::http::StatusCode;
use besikta_server::{app, AppState, Quota, ServerConfig};
use common::{brighton_photos, env_with, Env};
use std::sync::Arc;

const PHOTOS: [&str; 3] = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"];

/// A second server instance on the first one's data folder and database, with the same
/// quota flags: another process as far as the database can tell (its own connections;
/// nothing shared in memory but the test's runtime).
fn second_instance(first: &Env, quota: Quota) -> Env {
    let mut config = ServerConfig::new(first.dir.path(), common::coarse_crack_models());
    config.database = first.database.clone();
    config.quota = quota;
    let state = AppState::open(config).unwrap();
    Env {
        // Unused: the second instance keeps its files in the first's data folder.
        dir: tempfile::tempdir().unwrap(),
        app: app(state.clone()),
        state,
        tokens: first.tokens.clone(),
        database: first.database.clone(),
    }
}

/// One upload of the race: which photo went to which flight and what the server answered.
struct Attempt {
    photo: usize,
    status: StatusCode,
    /// `stored`, `rejected` or `refused` (the whole request refused).
    outcome: String,
    reason: String,
}

/// Uploads every photo to each of `flights` flights of organisation `a`, one photo per
/// multipart request, all at once, alternating between the two instances.
async fn race(instances: [Arc<Env>; 2], flights: usize) -> Vec<Attempt> {
    let photos = Arc::new(brighton_photos(&PHOTOS));
    let mut ids = Vec::new();
    for i in 0..flights {
        ids.push(
            instances[i % 2]
                .create_flight("a", &format!("race {i}"))
                .await,
        );
    }
    let mut tasks = Vec::new();
    for (k, flight) in ids.into_iter().enumerate() {
        for p in 0..PHOTOS.len() {
            let env = instances[(k + p) % 2].clone();
            let photos = photos.clone();
            tasks.push(tokio::spawn(async move {
                let (name, bytes) = &photos[p];
                let crew = env.token("a", "crew").to_string();
                let r = env
                    .multipart(flight, &crew, &[(*name, bytes.clone())])
                    .await;
                let (outcome, reason) = if r.status == StatusCode::OK {
                    let file = &r.json()["files"][0];
                    (
                        file["status"].as_str().unwrap().to_string(),
                        file["reason"].as_str().unwrap_or("").to_string(),
                    )
                } else {
                    ("refused".to_string(), r.text())
                };
                Attempt {
                    photo: p,
                    status: r.status,
                    outcome,
                    reason,
                }
            }));
        }
    }
    let mut attempts = Vec::new();
    for t in tasks {
        attempts.push(t.await.unwrap());
    }
    attempts
}

/// Photos and bytes organisation `a` holds, from the database.
fn held(e: &Env) -> (i64, i64) {
    let org = e.store().ensure_org("Espoo", None).unwrap().id;
    let stats = e.store().org_stats(org).unwrap();
    (stats.photos, stats.photo_bytes)
}

/// Every answer that is not `stored` is a clear refusal: 413 for the request, or the
/// photo rejected in a 200 batch answer, with a reason naming the quota; never a 5xx.
fn assert_clear_refusals(attempts: &[Attempt], names: &str) {
    for a in attempts.iter().filter(|a| a.outcome != "stored") {
        assert!(
            (a.status == StatusCode::PAYLOAD_TOO_LARGE && a.outcome == "refused")
                || (a.status == StatusCode::OK && a.outcome == "rejected"),
            "photo {}: {} {} {}",
            a.photo,
            a.status,
            a.outcome,
            a.reason
        );
        assert!(a.reason.contains(names), "{}", a.reason);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_racing_uploads_store_no_more_photos_than_the_quota() {
    let quota = Quota {
        max_photos: Some(3),
        max_photo_bytes: None,
    };
    let first = env_with(|c| c.quota = quota);
    let second = second_instance(&first, quota);
    let instances = [Arc::new(first), Arc::new(second)];
    // 4 flights x 3 photos = 12 different photo rows wanted, 3 allowed.
    let attempts = race(instances.clone(), 4).await;
    assert_eq!(attempts.len(), 12);
    let stored = attempts.iter().filter(|a| a.outcome == "stored").count();
    // Exactly the quota: never more, and no upload refused while there was room.
    assert_eq!(stored, 3, "stored by the race");
    assert_eq!(held(&instances[0]).0, 3, "photos in the database");
    assert_eq!(held(&instances[1]).0, 3, "photos the second instance sees");
    assert_clear_refusals(&attempts, "--quota-photos 3");
    // Both instances refuse the next one at once.
    for e in &instances {
        let flight = e.create_flight("a", "after").await;
        let r = e
            .multipart(flight, e.token("a", "crew"), &brighton_photos(&PHOTOS[..1]))
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
        assert!(r.text().contains("3 of at most 3 photos"), "{}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_racing_uploads_stay_within_the_storage_quota() {
    let photos = brighton_photos(&PHOTOS);
    let sizes: Vec<i64> = photos.iter().map(|p| p.1.len() as i64).collect();
    // Room for about four of the photos' bytes, not for five.
    let max = sizes.iter().sum::<i64>() * 4 / 3;
    let quota = Quota {
        max_photos: None,
        max_photo_bytes: Some(max as u64),
    };
    let first = env_with(|c| c.quota = quota);
    let second = second_instance(&first, quota);
    let instances = [Arc::new(first), Arc::new(second)];
    let attempts = race(instances.clone(), 4).await;
    let (photos_held, bytes) = held(&instances[0]);
    let stored: Vec<&Attempt> = attempts.iter().filter(|a| a.outcome == "stored").collect();
    assert_eq!(photos_held, stored.len() as i64);
    assert_eq!(
        bytes,
        stored.iter().map(|a| sizes[a.photo]).sum::<i64>(),
        "the database holds what the answers said was stored"
    );
    assert!(bytes <= max, "{bytes} bytes stored, quota {max}");
    assert!(stored.len() >= 3, "{} stored", stored.len());
    assert_clear_refusals(&attempts, "storage quota");
    // Refused only for want of room: each refused photo would not fit even now.
    for a in attempts.iter().filter(|a| a.outcome != "stored") {
        assert!(
            bytes + sizes[a.photo] > max,
            "photo {} ({} bytes) was refused though {} of {max} bytes are stored",
            a.photo,
            sizes[a.photo],
            bytes
        );
    }
}
