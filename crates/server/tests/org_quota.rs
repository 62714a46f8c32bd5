//! An organisation's own upload limits (`OrgSettings::quota`, set by the operator with
//! `besikta quota`): each replaces the service's flag for that organisation only, a refusal
//! names where the limit was set, the organisation sees it in `GET /org/settings` and
//! cannot set it through `PUT`. Runs on PostgreSQL too (`BESIKTA_TEST_DATABASE=postgres`).

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use besikta_server::Quota;
use besikta_store::{OrgQuota, OrgSettings};
use common::{env_with, fixture, Env};
use serde_json::{json, Value};

fn photo(name: &str) -> (&str, Vec<u8>) {
    (
        name,
        std::fs::read(fixture(&format!("brighton/{name}"))).unwrap(),
    )
}

fn statuses(files: &Value) -> Vec<String> {
    files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_string())
        .collect()
}

/// What `besikta quota --org NAME ...` stores.
fn set_own_quota(e: &Env, org: &str, quota: Option<OrgQuota>) {
    let id = e.store().ensure_org(org, None).unwrap().id;
    let mut settings = e.store().org_settings(id).unwrap();
    settings.quota = quota;
    e.store().set_org_settings(id, &settings).unwrap();
}

fn own_quota(e: &Env, org: &str) -> Option<OrgQuota> {
    let id = e.store().ensure_org(org, None).unwrap().id;
    e.store().org_settings(id).unwrap().quota
}

#[tokio::test]
async fn an_organisations_own_photo_limit_replaces_the_flag_for_it_alone() {
    // The service allows one photo per organisation; Espoo ("a") may keep two.
    let e = env_with(|c| {
        c.quota = Quota {
            max_photos: Some(1),
            max_photo_bytes: None,
        }
    });
    let two = OrgQuota {
        max_photos: Some(2),
        max_photo_bytes: None,
    };
    set_own_quota(&e, "Espoo", Some(two));
    let files = [
        photo("DJI_0018.JPG"),
        photo("DJI_0019.JPG"),
        photo("DJI_0020.JPG"),
    ];
    let flight = e.create_flight("a", "own").await;
    let r = e.multipart(flight, e.token("a", "crew"), &files).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(statuses(&body), ["stored", "stored", "rejected"], "{body}");
    let reason = body["files"][2]["reason"].as_str().unwrap();
    assert!(reason.contains("2 of at most 2 photos"), "{reason}");
    assert!(reason.contains("besikta quota"), "{reason}");
    assert!(!reason.contains("--quota-photos"), "{reason}");

    // Vantaa ("b") has none of its own: the flag's one photo.
    let other = e.create_flight("b", "flag").await;
    let r = e.multipart(other, e.token("b", "crew"), &files[..2]).await;
    let body = r.json();
    assert_eq!(statuses(&body), ["stored", "rejected"], "{body}");
    let reason = body["files"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("--quota-photos 1"), "{reason}");

    // Cleared: the flag applies to Espoo again (two stored, one allowed).
    set_own_quota(&e, "Espoo", None);
    let r = e.multipart(flight, e.token("a", "crew"), &files[2..]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.text().contains("--quota-photos 1"), "{}", r.text());
}

#[tokio::test]
async fn an_own_byte_limit_applies_without_any_flag() {
    let e = env_with(|_| {});
    let (name, bytes) = photo("DJI_0018.JPG");
    set_own_quota(
        &e,
        "Vantaa",
        Some(OrgQuota {
            max_photos: None,
            max_photo_bytes: Some(bytes.len() as u64 - 1),
        }),
    );
    let flight = e.create_flight("b", "bytes").await;
    // tus: refused at creation from its Upload-Length.
    let r = e
        .send(
            Method::POST,
            &format!("/api/v1/flights/{flight}/uploads"),
            Some(e.token("b", "crew")),
            &[
                ("tus-resumable", "1.0.0"),
                ("upload-length", &bytes.len().to_string()),
                ("upload-metadata", "filename RDAwMjAuSlBH"),
            ],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.text().contains("storage quota"), "{}", r.text());
    assert!(r.text().contains("besikta quota"), "{}", r.text());
    // Espoo, without limits of its own on a service without flags, stores it.
    let mine = e.create_flight("a", "free").await;
    let r = e
        .multipart(mine, e.token("a", "crew"), &[(name, bytes)])
        .await;
    assert_eq!(statuses(&r.json()), ["stored"]);
}

#[tokio::test]
async fn the_organisation_sees_its_quota_and_cannot_set_it() {
    let e = env_with(|_| {});
    let own = OrgQuota {
        max_photos: Some(500),
        max_photo_bytes: Some(20_000_000_000),
    };
    set_own_quota(&e, "Espoo", Some(own));
    let r = e.get("/api/v1/org/settings", e.token("a", "viewer")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["quota"],
        json!({"max_photos": 500, "max_photo_bytes": 20_000_000_000u64})
    );
    // Another organisation's settings show no quota (none of its own).
    let r = e.get("/api/v1/org/settings", e.token("b", "viewer")).await;
    assert!(r.json().get("quota").is_none(), "{}", r.text());

    // The admin changes a setting: the quota stays.
    let admin = e.token("a", "admin");
    let r = e
        .put_json(
            "/api/v1/org/settings",
            admin,
            r#"{"workorders_include_unreviewed": true}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["quota"]["max_photos"], 500);
    assert_eq!(own_quota(&e, "Espoo"), Some(own));
    // ... and cannot raise it.
    let r = e
        .put_json(
            "/api/v1/org/settings",
            admin,
            r#"{"workorders_include_unreviewed": true, "quota": {"max_photos": 1000000}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("besikta quota"), "{}", r.text());
    let id = e.store().ensure_org("Espoo", None).unwrap().id;
    assert_eq!(
        e.store().org_settings(id).unwrap(),
        OrgSettings {
            workorders_include_unreviewed: true,
            quota: Some(own),
        }
    );
}
