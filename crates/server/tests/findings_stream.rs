//! A findings page of thousands of findings is streamed: written in several chunks with no
//! length known up front (chunked over a real socket), parsing as one FeatureCollection
//! with every finding, byte for byte the page read at once; its ETag changes after a
//! review; and a page whose findings are replaced while it is written is cut off, never
//! ended as a short page.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use besikta_core::Severity;
use common::road_finding as finding;
use common::{env, Env};
use http_body_util::BodyExt;
use std::collections::BTreeSet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const FINDINGS: usize = 3000;

fn many(flight: i64, n: usize) -> Vec<besikta_store::NewFinding> {
    (0..n)
        .map(|i| {
            finding(
                &format!("F{i}"),
                if i % 3 == 0 { "pothole" } else { "crack" },
                Severity::Medium,
                "R1",
                24.0 + (i % 100) as f64 * 1e-4 + flight as f64 * 1e-2,
                60.0 + (i / 100) as f64 * 1e-4,
            )
        })
        .collect()
}

fn request(e: &Env, uri: &str, etag: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri).header(
        header::AUTHORIZATION,
        format!("Bearer {}", e.token("a", "viewer")),
    );
    if let Some(t) = etag {
        b = b.header(header::IF_NONE_MATCH, t);
    }
    b.body(Body::empty()).unwrap()
}

/// The answer's status, headers, body and how many data frames the body came in; the
/// body's length must not be known before it is read.
async fn streamed(e: &Env, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>, usize) {
    let response = e.app.clone().oneshot(request(e, uri, None)).await.unwrap();
    let (parts, mut body) = response.into_parts();
    assert_eq!(
        axum::body::HttpBody::size_hint(&body).exact(),
        None,
        "{uri}: a streamed body has no length up front"
    );
    assert!(parts.headers.get(header::CONTENT_LENGTH).is_none(), "{uri}");
    let (mut bytes, mut frames) = (Vec::new(), 0);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes.extend_from_slice(&data);
            frames += 1;
        }
    }
    (parts.status, parts.headers, bytes, frames)
}

async fn full(
    e: &Env,
    uri: &str,
    etag: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = e.app.clone().oneshot(request(e, uri, etag)).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

fn etag(headers: &axum::http::HeaderMap) -> String {
    headers[header::ETAG].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_page_is_streamed_whole_and_its_etag_follows_reviews() {
    let e = env();
    let flight = e.create_flight("a", "large").await;
    e.store_findings("Espoo", flight, many(flight, FINDINGS));

    let all = "/api/v1/findings.geojson";
    let (status, headers, body, frames) = streamed(&e, all).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/geo+json");
    assert!(
        frames >= FINDINGS / 500,
        "{frames} frames: written a chunk of findings at a time"
    );
    let page: serde_json::Value = serde_json::from_slice(&body).expect("one JSON document");
    assert_eq!(page["type"], "FeatureCollection");
    assert!(page.get("next").is_none());
    let features = page["features"].as_array().unwrap();
    assert_eq!(features.len(), FINDINGS);
    let ids: Vec<i64> = features.iter().map(|f| f["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in id order, none twice"
    );
    let names: BTreeSet<String> = features
        .iter()
        .map(|f| {
            assert_eq!(f["type"], "Feature");
            assert_eq!(f["geometry"]["type"], "Polygon");
            assert_eq!(f["properties"]["flight_id"], flight);
            f["properties"]["flight_finding_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: BTreeSet<String> = (0..FINDINGS).map(|i| format!("F{i}")).collect();
    assert_eq!(names, expected, "every finding, once");

    // The same findings read at once (a page with `limit`, not reached) and the flight's
    // own page are the same bytes.
    let (status, _, at_once) = full(&e, &format!("{all}?limit=5000"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(at_once == body, "streamed and read-at-once pages differ");
    let flight_page = format!("/api/v1/flights/{flight}/findings.geojson");
    let (_, flight_headers, flight_body, _) = streamed(&e, &flight_page).await;
    assert!(flight_body == body, "the flight's page differs");
    assert_ne!(etag(&flight_headers), etag(&headers));
    // A filter streams too: only the potholes.
    let (_, _, potholes, _) = streamed(&e, &format!("{all}?class=pothole")).await;
    let potholes: serde_json::Value = serde_json::from_slice(&potholes).unwrap();
    assert_eq!(
        potholes["features"].as_array().unwrap().len(),
        FINDINGS.div_ceil(3)
    );

    // Revalidation: 304 with no body until a review changes the page.
    let tag = etag(&headers);
    let (status, again, empty) = full(&e, all, Some(&tag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(etag(&again), tag);
    assert!(empty.is_empty());
    let r = e
        .put_json(
            &format!("/api/v1/findings/{}/review", ids[1234]),
            e.token("a", "planner"),
            r#"{"state": "rejected", "reason": "duplicate"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (status, after, changed) = full(&e, all, Some(&tag)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(etag(&after), tag);
    let changed: serde_json::Value = serde_json::from_slice(&changed).unwrap();
    assert_eq!(changed["features"].as_array().unwrap().len(), FINDINGS);
    assert_eq!(
        changed["features"][1234]["properties"]["review"],
        "rejected"
    );
    let (status, _, _) = full(&e, all, Some(&etag(&after))).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // Over a real socket the page goes out in HTTP/1.1 chunks.
    let addr = e.serve_on_loopback().await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET {all} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            e.token("a", "viewer")
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_lowercase();
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert!(text.ends_with("\r\n0\r\n\r\n"), "the chunked body is ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_findings_are_replaced_while_written_is_cut_off() {
    let e = env();
    let flight = e.create_flight("a", "replaced").await;
    e.store_findings("Espoo", flight, many(flight, 1200));
    let response = e
        .app
        .clone()
        .oneshot(request(&e, "/api/v1/findings.geojson", None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"{"));

    // Re-processing replaces the flight's findings (new ids) between two chunks.
    e.store_findings("Espoo", flight, many(flight, 1200));
    let mut cut = false;
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            cut = true;
            break;
        }
    }
    assert!(cut, "the body ends with an error, not as a short page");

    // Asked again, the page is whole: the new findings only.
    let (status, _, bytes) = full(&e, "/api/v1/findings.geojson", None).await;
    assert_eq!(status, StatusCode::OK);
    let page: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(page["features"].as_array().unwrap().len(), 1200);

    // A review meanwhile changes no finding's place in the page: written to the end.
    let response = e
        .app
        .clone()
        .oneshot(request(&e, "/api/v1/findings.geojson", None))
        .await
        .unwrap();
    let mut body = response.into_body();
    let mut bytes = body
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap()
        .to_vec();
    let id = page["features"][1100]["id"].as_i64().unwrap();
    let r = e
        .put_json(
            &format!("/api/v1/findings/{id}/review"),
            e.token("a", "planner"),
            r#"{"state": "confirmed"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    while let Some(frame) = body.frame().await {
        bytes.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    let page: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(page["features"].as_array().unwrap().len(), 1200);
    assert_eq!(page["features"][1100]["properties"]["review"], "confirmed");
}
