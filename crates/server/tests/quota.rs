//! Per-organisation upload quotas (`ServerConfig::quota`, `besikta serve --quota-photos`,
//! `--quota-photo-gb`): an upload that would go over is refused with 413 naming the quota,
//! through multipart and tus alike; the photos already stored stay; another organisation is
//! not affected. Runs on PostgreSQL too (`BESIKTA_TEST_DATABASE=postgres`, feature `postgres`).

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use besikta_server::Quota;
use common::{env_with, fixture, Env};
use serde_json::Value;

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("brighton/{name}"))).unwrap()
}

/// Photos and stored bytes of the flight, as its organisation's admin sees them in /metrics.
async fn stored(e: &Env, org: &str) -> (u64, u64) {
    let text = e.get("/metrics", e.token(org, "admin")).await.text();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
            .parse()
            .unwrap()
    };
    (value("besikta_photos"), value("besikta_photo_bytes"))
}

fn statuses(files: &Value) -> Vec<String> {
    files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_string())
        .collect()
}

async fn tus_create(e: &Env, flight: i64, length: usize) -> common::Reply {
    e.send(
        Method::POST,
        &format!("/api/v1/flights/{flight}/uploads"),
        Some(e.token("a", "crew")),
        &[
            ("tus-resumable", "1.0.0"),
            ("upload-length", &length.to_string()),
            ("upload-metadata", "filename RDAwMjAuSlBH"),
        ],
        Body::empty(),
    )
    .await
}

#[tokio::test]
async fn a_photo_count_quota_refuses_the_next_upload_and_keeps_what_is_stored() {
    let e = env_with(|c| {
        c.quota = Quota {
            max_photos: Some(2),
            max_photo_bytes: None,
        }
    });
    let crew = e.token("a", "crew");
    let flight = e.create_flight("a", "q").await;
    let files = [
        ("DJI_0018.JPG", photo("DJI_0018.JPG")),
        ("DJI_0019.JPG", photo("DJI_0019.JPG")),
        ("DJI_0020.JPG", photo("DJI_0020.JPG")),
    ];
    let sizes: u64 = files[..2].iter().map(|f| f.1.len() as u64).sum();
    // A batch that fills the quota on the way: the third photo is refused, naming it.
    let r = e.multipart(flight, crew, &files).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(statuses(&body), ["stored", "stored", "rejected"], "{body}");
    let reason = body["files"][2]["reason"].as_str().unwrap();
    assert!(reason.contains("2 of at most 2 photos"), "{reason}");
    assert!(reason.contains("quota"), "{reason}");
    assert_eq!(stored(&e, "a").await, (2, sizes));

    // Full: a new request is refused at once, through multipart and tus.
    let r = e.multipart(flight, crew, &files[2..]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().contains("photo quota is full"), "{}", r.text());
    let r = tus_create(&e, flight, files[2].1.len()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().contains("--quota-photos 2"), "{}", r.text());
    // Nothing stored was lost; the other organisation is not limited by this one's photos.
    assert_eq!(stored(&e, "a").await, (2, sizes));
    let other = e.create_flight("b", "q").await;
    let r = e.multipart(other, e.token("b", "crew"), &files[..1]).await;
    assert_eq!(statuses(&r.json()), ["stored"]);

    // Room again after a flight is deleted.
    let r = e
        .send(
            Method::DELETE,
            &format!("/api/v1/flights/{flight}"),
            Some(e.token("a", "admin")),
            &[],
            Body::empty(),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let flight = e.create_flight("a", "q2").await;
    let r = e.multipart(flight, crew, &files[2..]).await;
    assert_eq!(statuses(&r.json()), ["stored"]);
}

#[tokio::test]
async fn a_byte_quota_refuses_an_upload_that_would_go_over() {
    let first = photo("DJI_0018.JPG");
    let second = photo("DJI_0019.JPG");
    // Room for the first photo and not quite for the second.
    let max = (first.len() + second.len() - 1) as u64;
    let e = env_with(|c| {
        c.quota = Quota {
            max_photos: None,
            max_photo_bytes: Some(max),
        }
    });
    let crew = e.token("a", "crew");
    let flight = e.create_flight("a", "q").await;
    let r = e
        .multipart(flight, crew, &[("DJI_0018.JPG", first.clone())])
        .await;
    assert_eq!(statuses(&r.json()), ["stored"]);

    // tus: refused at creation, before any byte is sent.
    let r = tus_create(&e, flight, second.len()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let text = r.text();
    assert!(text.contains("storage quota"), "{text}");
    assert!(text.contains("--quota-photo-gb"), "{text}");
    // A smaller upload still fits.
    assert_eq!(
        tus_create(&e, flight, 1000).await.status,
        StatusCode::CREATED
    );

    // multipart: the photo is refused when its bytes are in, and recorded on the flight.
    let r = e
        .multipart(flight, crew, &[("DJI_0019.JPG", second.clone())])
        .await;
    let body = r.json();
    assert_eq!(statuses(&body), ["rejected"], "{body}");
    assert!(
        body["files"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("storage quota"),
        "{body}"
    );
    assert_eq!(stored(&e, "a").await, (1, first.len() as u64));
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(f["photos"], 1, "{f}");
    let photo_dir = e.dir.path().join(format!("flights/{flight}/photos"));
    let files: Vec<_> = std::fs::read_dir(photo_dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "the refused photo left no file");
}
