//! A page of findings carries a strong ETag and must be revalidated: asked again with
//! `If-None-Match`, it is `304 Not Modified` with no body while nothing changed, and a new
//! page with a new ETag once a finding's review changed; the same for one flight's findings.

mod common;

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use besikta_core::Severity;
use common::road_finding as finding;
use common::{env, Env, Reply};

async fn get_if(e: &Env, uri: &str, etag: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = etag.map(|t| ("if-none-match", t)).into_iter().collect();
    e.send(
        Method::GET,
        uri,
        Some(e.token("a", "viewer")),
        &headers,
        Body::empty(),
    )
    .await
}

fn etag_of(r: &Reply) -> String {
    r.headers
        .get(header::ETAG)
        .expect("an ETag")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn findings_pages_answer_304_until_a_finding_changes() {
    let e = env();
    let flight = e.create_flight("a", "etag").await;
    e.store_findings(
        "Espoo",
        flight,
        vec![
            finding("F1", "crack", Severity::Medium, "R1", 24.0, 60.0),
            finding("F2", "pothole", Severity::High, "R1", 24.001, 60.0),
        ],
    );
    for uri in [
        "/api/v1/findings.geojson".to_string(),
        format!("/api/v1/flights/{flight}/findings.geojson"),
        "/api/v1/findings.geojson?limit=1".to_string(),
    ] {
        let first = get_if(&e, &uri, None).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text());
        let etag = etag_of(&first);
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "{etag}"
        );
        assert_eq!(
            first.headers.get(header::CACHE_CONTROL).unwrap(),
            "private, no-cache"
        );
        assert_eq!(
            first.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/geo+json"
        );
        // Nothing changed: 304, the same ETag, no body.
        let again = get_if(&e, &uri, Some(&etag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert_eq!(etag_of(&again), etag);
        assert!(again.body.is_empty());
        // Another tag (or a list without ours) gets the page.
        let other = get_if(&e, &uri, Some("\"0000\", W/\"1111\"")).await;
        assert_eq!(other.status, StatusCode::OK);
        assert_eq!(other.body, first.body);
    }

    // A review changes what the page says: a new page with a new ETag.
    let uri = "/api/v1/findings.geojson";
    let before = get_if(&e, uri, None).await;
    let etag = etag_of(&before);
    let id = before.json()["features"][0]["id"].as_i64().unwrap();
    let r = e
        .put_json(
            &format!("/api/v1/findings/{id}/review"),
            e.token("a", "planner"),
            r#"{"state": "confirmed"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = get_if(&e, uri, Some(&etag)).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_ne!(etag_of(&after), etag);
    assert_ne!(after.body, before.body);

    // Another organisation's page is its own (no findings), never ours.
    let theirs = e.get(uri, e.token("b", "viewer")).await;
    assert_ne!(etag_of(&theirs), etag_of(&after));
}
