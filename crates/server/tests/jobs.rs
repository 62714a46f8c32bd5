//! Processing through the API with the real pipeline on the Brighton fixture photos: the
//! job runs on a worker thread, findings land in SQLite exactly as the pipeline wrote
//! them, and the photo crop and exports are served.

mod common;

use axum::http::StatusCode;
use besikta_server::Workers;
use common::{brighton_photos, env_with, fixture};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Calls of the job's memory-release hook (`ServerConfig::release_memory`).
static RELEASES: AtomicUsize = AtomicUsize::new(0);

fn count_release() {
    RELEASES.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_a_flight_stores_the_pipelines_findings() {
    let e = env_with(|c| {
        c.threads_per_job = 2;
        c.release_memory = count_release;
    });
    let flight = e.create_flight("a", "brighton").await;
    let crew = e.token("a", "crew");
    let files = brighton_photos(&["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]);
    let r = e.multipart(flight, crew, &files).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = e.process(flight, crew).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let job = r.json()["job"].clone();
    // Asking again while queued gives the same job, not a second one.
    let again = e.process(flight, crew).await;
    assert_eq!(again.json()["job"], job);

    let workers = Workers::start(&e.state);
    let f = e
        .wait_for_flight(flight, crew, Duration::from_secs(900))
        .await;
    workers.stop();
    assert_eq!(f["state"], json!("done"), "{f}");
    assert_eq!(
        f["progress"]["stage"],
        json!("export"),
        "the last progress report: {f}"
    );
    // Memory is given back after each of the three inferred photos and between the stages.
    let releases = RELEASES.load(Ordering::SeqCst);
    assert!(releases >= 3 + 2, "release hook called {releases} times");

    // The stored findings are the pipeline's, one for one.
    let out = e.outputs(flight);
    assert_eq!(out.len(), 1, "exactly one output folder: {out:?}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out[0].join("findings.geojson")).unwrap())
            .unwrap();
    let viewer = e.token("a", "viewer");
    let served = e.findings_geojson(flight, viewer).await;
    let written_ids: Vec<&Value> = written["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["properties"]["id"])
        .collect();
    let served_ids: Vec<&Value> = served["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["properties"]["id"])
        .collect();
    assert_eq!(served_ids, written_ids);
    assert!(
        !served_ids.is_empty(),
        "the coarse crack model finds something in Brighton"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out[0].join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        f["rejected"].as_array().unwrap().len(),
        summary["rejected"].as_array().unwrap().len()
    );

    let footprints = e.flight_geojson(flight, "footprints", viewer).await;
    assert_eq!(footprints["type"], json!("FeatureCollection"));

    if let Some(first) = served["features"].as_array().unwrap().first() {
        let id = first["id"].as_i64().unwrap();
        let crop = e
            .get(&format!("/api/v1/findings/{id}/photo.jpg"), viewer)
            .await;
        assert_eq!(crop.status, StatusCode::OK);
        let img = image::load_from_memory(&crop.body).unwrap();
        assert!(img.width().max(img.height()) <= 1024);
    }
    let planner = e.token("a", "planner");
    let gpkg = e.get("/api/v1/workorders.gpkg", planner).await;
    assert_eq!(gpkg.status, StatusCode::OK);
    assert!(gpkg.body.starts_with(b"SQLite format 3\0"));
    let csv = e.get("/api/v1/workorders.csv", planner).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text());
    assert!(csv.text().starts_with("flight_id,"));
    let wo = e.get("/api/v1/workorders.geojson", planner).await;
    assert_eq!(wo.json()["type"], json!("FeatureCollection"));

    // Work orders rebuilt from the stored typed findings are the pipeline's, row for row.
    let all = e
        .get("/api/v1/workorders.csv?include=unreviewed", planner)
        .await;
    assert_eq!(all.status, StatusCode::OK);
    let served_csv = String::from_utf8(all.body).unwrap();
    let written_csv = std::fs::read_to_string(out[0].join("workorders.csv")).unwrap();
    let (mut served_lines, mut written_lines) = (served_csv.lines(), written_csv.lines());
    let head = served_lines.next().unwrap();
    assert!(
        head.starts_with(&format!("flight_id,{}", written_lines.next().unwrap())),
        "{head}"
    );
    let served_rows: Vec<&str> = served_lines.collect();
    let written_rows: Vec<&str> = written_lines.collect();
    assert_eq!(served_rows.len(), written_rows.len(), "{served_csv}");
    assert!(!written_rows.is_empty());
    for (s, w) in served_rows.iter().zip(&written_rows) {
        assert!(s.starts_with(&format!("{flight},{w}")), "{s}\n{w}");
    }
    // Each observation names the model that produced it.
    let obs = &served["features"][0]["properties"]["observations"][0];
    assert!(
        obs["model"].as_str().is_some_and(|m| !m.is_empty()),
        "{obs}"
    );
    assert!(obs["model_version"].as_str().is_some(), "{obs}");

    // Re-uploading a stored photo is a no-op and leaves the flight done.
    let r = e.multipart(flight, crew, &files[..1]).await;
    assert_eq!(r.json()["files"][0]["status"], json!("duplicate"));
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(f["state"], json!("done"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_run_fails_the_flight_with_a_reason() {
    // No models in the models folder: the pipeline refuses before any heavy work.
    let empty = tempfile::tempdir().unwrap();
    let models = empty.path().to_path_buf();
    let e = env_with(move |c| c.models_dir = models);
    let flight = e.create_flight("a", "no models").await;
    let crew = e.token("a", "crew");
    let r = e.process(flight, crew).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "no photos yet");
    let photo = std::fs::read(fixture("brighton/DJI_0020.JPG")).unwrap();
    e.multipart(flight, crew, &[("DJI_0020.JPG", photo)]).await;
    let r = e.process(flight, crew).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let workers = Workers::start(&e.state);
    let f = e
        .wait_for_flight(flight, crew, Duration::from_secs(120))
        .await;
    workers.stop();
    assert_eq!(f["state"], json!("failed"));
    assert!(
        f["error"].as_str().unwrap().contains("no models found"),
        "{f}"
    );
    let metrics = e.get("/metrics", e.token("a", "admin")).await;
    assert!(metrics.text().contains("besikta_jobs{state=\"failed\"} 1"));
}
