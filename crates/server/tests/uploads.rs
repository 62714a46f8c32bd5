//! Uploads under concurrent, interrupted and careless use (issue 11): photos with the same
//! name finished at the same moment, a server killed between the last byte and storing
//! the photo, a PATCH past the declared length, and what a crew reads when a file is not
//! a photo.

mod common;

use axum::http::StatusCode;
use besikta_store::{SqliteStore, Store};
use common::{env, fixture, sha256_hex, Env};
use serde_json::json;
use std::sync::Arc;

/// Six different photos: the same small real JPEG with a different tail after its
/// end-of-image marker (readers stop there; the content hash differs).
fn six_photos() -> Vec<Vec<u8>> {
    let base = std::fs::read(fixture("broken/duplicate-1.jpg")).unwrap();
    (0..6u8)
        .map(|i| {
            let mut p = base.clone();
            p.extend_from_slice(&[i; 16]);
            p
        })
        .collect()
}

/// Every photo the store recorded for the flight: its bytes on disk hash to the recorded
/// sha256, and no two rows share a file.
fn assert_disk_matches_store(e: &Env, flight: i64) -> Vec<besikta_store::Photo> {
    let store = SqliteStore::open(&e.dir.path().join("besikta.db")).unwrap();
    let photos = store.photos(flight).unwrap();
    let mut paths: Vec<&str> = photos.iter().map(|p| p.path.as_str()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), photos.len(), "one file per photo: {photos:?}");
    for p in &photos {
        let bytes = std::fs::read(e.dir.path().join(&p.path))
            .unwrap_or_else(|err| panic!("{} is missing: {err}", p.path));
        assert_eq!(
            sha256_hex(&bytes),
            p.sha256,
            "{} on disk is not the photo recorded",
            p.path
        );
    }
    photos
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_name_uploads_finished_together_keep_every_photo() {
    let e = Arc::new(env());
    let photos = six_photos();
    let crew = e.token("a", "crew").to_string();
    // The race needs the six to meet in the few microseconds between choosing the name
    // and recording it; several rounds make that near certain without the fix.
    for round in 0..12 {
        let flight = e.create_flight("a", &format!("round {round}")).await;
        let tasks: Vec<_> = photos
            .iter()
            .cloned()
            .map(|p| {
                let e = e.clone();
                let crew = crew.clone();
                tokio::spawn(async move { e.multipart(flight, &crew, &[("SAME.JPG", p)]).await })
            })
            .collect();
        let mut acknowledged = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(
                r.status,
                StatusCode::OK,
                "round {round}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let file = r.json()["files"][0].clone();
            assert_eq!(file["status"], json!("stored"), "round {round}: {file}");
            acknowledged.push(file);
        }
        let stored = assert_disk_matches_store(&e, flight);
        assert_eq!(stored.len(), 6, "round {round}: all six kept");
        for a in &acknowledged {
            let row = stored
                .iter()
                .find(|p| json!(p.sha256) == a["sha256"])
                .unwrap_or_else(|| panic!("acknowledged photo not recorded: {a}"));
            assert_eq!(
                json!(row.name),
                a["name"],
                "the answer names the stored file"
            );
        }
        assert!(
            stored.iter().any(|p| p.name == "SAME.JPG"),
            "the first keeps its name"
        );
    }
}
