//! A flight too coarse for one of the server's models: the job finishes `done` and the
//! flight's API response carries the pipeline's advice (how low to fly) in `warnings`.

mod common;

use axum::http::StatusCode;
use besikta_server::Workers;
use common::{env_with, fixture};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_finer_than_the_flight_is_reported_in_the_flights_warnings() {
    // fixtures/models holds the close-up crack model (at most 1.4 mm/px) and, in coarse/,
    // the same network declared at 68 mm/px; the Brighton photo is 17 mm/px.
    let models = fixture("models");
    let e = env_with(move |c| {
        c.models_dir = models;
        c.threads_per_job = 2;
    });
    let flight = e.create_flight("a", "too coarse").await;
    let crew = e.token("a", "crew");
    let photo = std::fs::read(fixture("brighton/DJI_0020.JPG")).unwrap();
    let r = e.multipart(flight, crew, &[("DJI_0020.JPG", photo)]).await;
    assert_eq!(r.status, StatusCode::OK);

    // Before processing there is nothing to warn about.
    let before = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(before["warnings"], json!([]), "{before}");

    let r = e.process(flight, crew).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let workers = Workers::start(&e.state);
    let f = e
        .wait_for_flight(flight, crew, Duration::from_secs(600))
        .await;
    workers.stop();
    assert_eq!(f["state"], json!("done"), "{f}");
    let advice = "mtscrack (crack) needs 1.4 mm/px or finer; this flight is 1.7 cm/px \
                  (1 of 1 photos coarser, not run): fly at 3 m or lower with this camera";
    assert_eq!(f["warnings"], json!([advice]), "{f}");

    // The OpenAPI document describes the field.
    let api = e.get("/api/v1/openapi.json", crew).await.json();
    assert_eq!(
        api["components"]["schemas"]["Flight"]["properties"]["warnings"]["type"],
        json!("array")
    );
}
