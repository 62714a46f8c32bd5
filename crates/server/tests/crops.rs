//! The photo crop of a finding through the API: a strong ETag, `If-None-Match` -> 304,
//! the same bytes on the second fetch, and no stale crop after the flight is processed again.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use besikta_core::Severity;
use besikta_store::NewFinding;
use common::{crack_view, env, road_finding, Env, Reply};

/// A crack seen in DJI_0018.JPG with its box's top-left corner at `x`, `y`.
fn finding(x: f64, y: f64) -> NewFinding {
    let mut f = road_finding("F1", "crack", Severity::Medium, "", 24.0, 60.0);
    f.finding.asset = None;
    f.finding.observations = vec![crack_view("DJI_0018.JPG", x, y)];
    f
}

async fn the_finding(e: &Env) -> i64 {
    let r = e
        .get("/api/v1/findings.geojson", e.token("a", "viewer"))
        .await;
    let features = r.json()["features"].as_array().unwrap().clone();
    assert_eq!(features.len(), 1);
    features[0]["id"].as_i64().unwrap()
}

async fn crop(e: &Env, id: i64, if_none_match: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = if_none_match
        .map(|t| vec![("if-none-match", t)])
        .unwrap_or_default();
    e.send(
        Method::GET,
        &format!("/api/v1/findings/{id}/photo.jpg"),
        Some(e.token("a", "viewer")),
        &headers,
        Body::empty(),
    )
    .await
}

#[tokio::test]
async fn crop_has_a_strong_etag_and_is_not_stale_after_processing_again() {
    let e = env();
    let flight = e.create_flight("a", "crops").await;
    let photo = std::fs::read(common::fixture("brighton/DJI_0018.JPG")).unwrap();
    let r = e
        .multipart(flight, e.token("a", "crew"), &[("DJI_0018.JPG", photo)])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    e.store_findings("Espoo", flight, vec![finding(500.0, 500.0)]);
    let id = the_finding(&e).await;

    let first = crop(&e, id, None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("content-type"), Some("image/jpeg"));
    let etag = first.header("etag").expect("an ETag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 20,
        "{etag}"
    );
    assert!(image::load_from_memory(&first.body).is_ok());

    // The second fetch: the same bytes and the same tag.
    let second = crop(&e, id, None).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("etag"), Some(etag.as_str()));

    // The client's copy is current: 304 with no body, the tag repeated.
    let not_modified = crop(&e, id, Some(&etag)).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    let other = crop(&e, id, Some("\"something-else\"")).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, first.body);

    // Processed again: the defect is found at another place of the same photo. The old
    // tag no longer matches and the crop shows the new place.
    e.store_findings("Espoo", flight, vec![finding(2500.0, 1500.0)]);
    let id2 = the_finding(&e).await;
    let again = crop(&e, id2, Some(&etag)).await;
    assert_eq!(again.status, StatusCode::OK, "the old tag is stale");
    let etag2 = again.header("etag").unwrap().to_string();
    assert_ne!(etag2, etag);
    assert_ne!(
        again.body, first.body,
        "a crop of the new place, not the cached old one"
    );
    let img = image::load_from_memory(&again.body).unwrap();
    assert!(img.width() >= 256 && img.height() >= 256);
}
