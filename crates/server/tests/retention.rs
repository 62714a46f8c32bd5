//! Retention of original photos (`ServerConfig::retain_photos_days`, `besikta serve
//! --retain-photos-days`), with the sweep's clock set by the test: photos of a processed
//! flight stay until N days after its job finished, then their files go while findings,
//! products and the crops made at processing time stay; the flight says which photos were
//! removed, a crop that needs the original answers 410, processing again 409.
//! Runs on PostgreSQL too (`BESIKTA_TEST_DATABASE=postgres`, feature `postgres`).

mod common;

use axum::http::StatusCode;
use besikta_server::{sweep_retention, Quota};
use common::{brighton_photos, env_with, fixture, Env};
use serde_json::json;

const DAY: i64 = 24 * 3600;

async fn count_findings(e: &Env, flight: i64) -> usize {
    e.findings_geojson(flight, e.token("a", "viewer")).await["features"]
        .as_array()
        .unwrap()
        .len()
}

fn photo_files(e: &Env, flight: i64) -> usize {
    std::fs::read_dir(e.dir.path().join(format!("flights/{flight}/photos")))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_go_after_the_retention_period_and_findings_and_crops_stay() {
    let e = env_with(|c| {
        c.threads_per_job = 2;
        c.retain_photos_days = Some(30);
        c.quota = Quota {
            max_photos: Some(3),
            max_photo_bytes: None,
        };
    });
    let crew = e.token("a", "crew");
    let viewer = e.token("a", "viewer");
    let flight = e.create_flight("a", "brighton").await;
    let files = brighton_photos(&["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]);
    assert_eq!(
        e.multipart(flight, crew, &files).await.status,
        StatusCode::OK
    );
    e.process_to_done(flight, crew).await;
    let finished = besikta_store::time::now();
    let found = count_findings(&e, flight).await;
    assert!(found > 0);

    // Within the period nothing goes.
    assert_eq!(sweep_retention(&e.state, finished + 1).unwrap(), 0);
    assert_eq!(sweep_retention(&e.state, finished + 29 * DAY).unwrap(), 0);
    assert_eq!(photo_files(&e, flight), 3);
    // The organisation's quota (3 photos) is full meanwhile.
    let next = e.create_flight("a", "next").await;
    let one = || vec![("DJI_0018.JPG", files[0].1.clone())];
    let r = e.multipart(next, crew, &one()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(f["photos_removed"], json!([]), "{f}");

    // After it the three originals go, once.
    let removed_at = finished + 31 * DAY;
    assert_eq!(sweep_retention(&e.state, removed_at).unwrap(), 3);
    assert_eq!(sweep_retention(&e.state, removed_at + DAY).unwrap(), 0);
    assert_eq!(
        photo_files(&e, flight),
        0,
        "the original photos' files are gone"
    );
    // Removed photos take no room: the quota has room again.
    let r = e.multipart(next, crew, &one()).await;
    assert_eq!(
        r.json()["files"][0]["status"],
        json!("stored"),
        "{}",
        r.text()
    );

    // The flight says so; its photos' rows, findings and products stay.
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    let removed = f["photos_removed"].as_array().unwrap();
    assert_eq!(removed.len(), 3, "{f}");
    assert_eq!(removed[0]["reason"], json!("retention"));
    assert_eq!(
        removed[0]["removed_at"],
        json!(besikta_store::time::format_rfc3339(removed_at))
    );
    assert_eq!(f["photos"], json!(3));
    assert_eq!(count_findings(&e, flight).await, found);
    e.flight_geojson(flight, "footprints", viewer).await;

    // The default crop is still served, from the crop made at processing time.
    let id = e.findings_geojson(flight, viewer).await["features"][0]["id"]
        .as_i64()
        .unwrap();
    let r = e
        .get(&format!("/api/v1/findings/{id}/photo.jpg"), viewer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-besikta-crop"), Some("precomputed"));
    assert!(image::load_from_memory(&r.body).is_ok());

    // A crop that would need the original (here: the stored crops are gone too) says why.
    let out = e.outputs(flight);
    std::fs::remove_dir_all(out[0].join("crops")).unwrap();
    let other = e.findings_geojson(flight, viewer).await["features"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = e
        .get(&format!("/api/v1/findings/{other}/photo.jpg"), viewer)
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
    assert!(r.text().contains("retention"), "{}", r.text());

    // Processing again cannot work without the photos: refused, naming the reason.
    let r = e
        .post_json(
            &format!("/api/v1/flights/{flight}/process"),
            crew,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("retention"), "{}", r.text());
}

#[tokio::test]
async fn without_a_retention_period_nothing_is_removed() {
    let e = env_with(|_| {});
    let flight = e.create_flight("a", "kept").await;
    let photo = std::fs::read(fixture("brighton/DJI_0018.JPG")).unwrap();
    e.multipart(flight, e.token("a", "crew"), &[("DJI_0018.JPG", photo)])
        .await;
    e.store_findings("Espoo", flight, vec![]);
    let far = besikta_store::time::now() + 10_000 * DAY;
    assert_eq!(sweep_retention(&e.state, far).unwrap(), 0);
    assert_eq!(photo_files(&e, flight), 1);
}
