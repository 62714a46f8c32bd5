//! Uploads under concurrent, interrupted and careless use (issue 11): photos with the same
//! name finished at the same moment, a server killed between the last byte and storing
//! the photo, a PATCH past the declared length, and what a crew reads when a file is not
//! a photo.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use besikta_server::{app, AppState, ServerConfig};
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
    let store = e.store();
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
            assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.text());
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

async fn create_upload(e: &Env, flight: i64, name: &str, length: usize) -> String {
    let r = e
        .tus_create(flight, e.token("a", "crew"), name, length)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    r.header("location").unwrap().to_string()
}

async fn head(e: &Env, uri: &str) -> common::Reply {
    e.tus_head(uri, e.token("a", "crew")).await
}

fn part_file(e: &Env, uri: &str) -> std::path::PathBuf {
    e.dir
        .path()
        .join("uploads")
        .join(format!("{}.part", uri.rsplit('/').next().unwrap()))
}

/// The same data folder opened again, as a restarted server would.
fn restart(e: Env) -> Env {
    let Env {
        dir,
        tokens,
        database,
        ..
    } = e;
    let mut config = ServerConfig::new(dir.path(), common::coarse_crack_models());
    config.database = database.clone();
    let state = AppState::open(config).expect("the server starts again");
    let app = app(state.clone());
    Env {
        dir,
        state,
        app,
        tokens,
        database,
    }
}

#[tokio::test]
async fn an_upload_whose_bytes_all_arrived_is_stored_at_the_next_start() {
    let e = env();
    let flight = e.create_flight("a", "killed").await;
    let photo = std::fs::read(fixture("broken/duplicate-1.jpg")).unwrap();
    let uri = create_upload(&e, flight, "DJI_0001.JPG", photo.len()).await;
    let partial = create_upload(&e, flight, "DJI_0002.JPG", 1000).await;
    // What kill -9 leaves between the last byte and storing the photo: every byte in the
    // part file, the upload row, no photo. (A second upload is only half there.)
    std::fs::write(part_file(&e, &uri), &photo).unwrap();
    std::fs::write(part_file(&e, &partial), [1u8; 400]).unwrap();
    // Killed one step later: the photo row committed, the file not yet moved into place.
    let mut other = photo.clone();
    other.extend_from_slice(b"another photo");
    let moved = create_upload(&e, flight, "DJI_0003.JPG", other.len()).await;
    std::fs::write(part_file(&e, &moved), &other).unwrap();
    e.state
        .store()
        .add_photo(
            flight,
            "DJI_0003.JPG",
            &sha256_hex(&other),
            other.len() as u64,
            &format!("flights/{flight}/photos"),
        )
        .unwrap();
    assert_eq!(
        head(&e, &uri).await.header("upload-offset"),
        Some(photo.len().to_string().as_str())
    );

    let e = restart(e);
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), e.token("a", "crew"))
        .await
        .json();
    assert_eq!(f["photos"], json!(2), "{f}");
    let photos = assert_disk_matches_store(&e, flight);
    assert_eq!(photos[0].name, "DJI_0001.JPG");
    assert_eq!(photos[0].sha256, sha256_hex(&photo));
    assert_eq!(photos[1].name, "DJI_0003.JPG");
    assert_eq!(head(&e, &moved).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        head(&e, &uri).await.status,
        StatusCode::NOT_FOUND,
        "finished uploads are forgotten"
    );
    assert!(!part_file(&e, &uri).exists());
    // The unfinished one resumes where it stopped.
    let h = head(&e, &partial).await;
    assert_eq!(
        (h.status, h.header("upload-offset")),
        (StatusCode::OK, Some("400"))
    );
}

async fn patch_stream(e: &Env, uri: &str, offset: usize, chunks: Vec<Vec<u8>>) -> common::Reply {
    let stream = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::from(c))),
    );
    e.send(
        Method::PATCH,
        uri,
        Some(e.token("a", "crew")),
        &[
            ("tus-resumable", "1.0.0"),
            ("content-type", "application/offset+octet-stream"),
            ("upload-offset", &offset.to_string()),
        ],
        Body::from_stream(stream),
    )
    .await
}

#[tokio::test]
async fn a_patch_past_the_length_keeps_nothing_of_itself_and_the_upload_resumes() {
    let e = env();
    let flight = e.create_flight("a", "too long").await;
    let photo = std::fs::read(fixture("broken/duplicate-1.jpg")).unwrap();
    let uri = create_upload(&e, flight, "DJI_0001.JPG", photo.len()).await;
    let r = patch_stream(&e, &uri, 0, vec![photo[..1000].to_vec()]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // The rest of the photo arrives in full, then ten bytes more: the 413 must not leave
    // offset = length with no photo (clients take that as done).
    let r = patch_stream(&e, &uri, 1000, vec![photo[1000..].to_vec(), vec![0u8; 10]]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("Upload-Length"),
        "the reason names the header"
    );
    let h = head(&e, &uri).await;
    assert_eq!(h.header("upload-offset"), Some("1000"), "back where it was");
    assert_eq!(r.header("upload-offset"), Some("1000"));
    // A declared Content-Length past the end is refused before any byte is read.
    let too_long = photo.len() - 1000 + 1;
    let r = e
        .send(
            Method::PATCH,
            &uri,
            Some(e.token("a", "crew")),
            &[
                ("tus-resumable", "1.0.0"),
                ("content-type", "application/offset+octet-stream"),
                ("upload-offset", "1000"),
                ("content-length", &too_long.to_string()),
            ],
            vec![7u8; too_long],
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(head(&e, &uri).await.header("upload-offset"), Some("1000"));
    // Resuming with the right bytes stores the photo.
    let r = patch_stream(&e, &uri, 1000, vec![photo[1000..].to_vec()]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("besikta-photo"), Some("stored"));
    let photos = assert_disk_matches_store(&e, flight);
    assert_eq!(photos[0].sha256, sha256_hex(&photo));
}

#[tokio::test]
async fn a_file_that_is_not_a_photo_is_refused_in_crew_language() {
    let e = env();
    let flight = e.create_flight("a", "not photos").await;
    let crew = e.token("a", "crew");
    let mut png = Vec::new();
    image::DynamicImage::new_rgb8(4, 4)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let jpeg = std::fs::read(fixture("broken/duplicate-1.jpg")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("notes.JPG", b"flight notes: wind 5 m/s".to_vec(), "text"),
        ("screen.JPG", png, "PNG"),
        ("doc.JPG", b"%PDF-1.7\n...".to_vec(), "PDF"),
        ("cut.JPG", jpeg[..20].to_vec(), "damaged"),
    ];
    for (name, bytes, says) in &cases {
        let r = e.multipart(flight, crew, &[(name, bytes.clone())]).await;
        let reason = r.json()["files"][0]["reason"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} refused: {}", r.json()))
            .to_string();
        assert!(reason.contains(says), "{name}: {reason}");
        for internal in [
            "extension",
            "part",
            "multipart",
            "Format error",
            "ImageError",
        ] {
            assert!(
                !reason.contains(internal),
                "{name}: {internal:?} in {reason}"
            );
        }
        assert!(reason.contains("JPEG"), "{name}: {reason}");
    }
    // Through tus (where the received bytes sit in a `.part` file) the same words.
    let uri = create_upload(&e, flight, "notes.JPG", 11).await;
    let r = e
        .send(
            Method::PATCH,
            &uri,
            Some(crew),
            &[
                ("tus-resumable", "1.0.0"),
                ("content-type", "application/offset+octet-stream"),
                ("upload-offset", "0"),
            ],
            b"not a jpeg!".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reason = r.json()["error"].as_str().unwrap().to_string();
    assert!(reason.starts_with("not a JPEG photo"), "{reason}");
    assert!(!reason.contains("part"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_uploads_finished_together_leave_one_file_and_no_leftovers() {
    let e = Arc::new(env());
    let photo = six_photos().remove(0);
    let crew = e.token("a", "crew").to_string();
    for round in 0..6 {
        let flight = e.create_flight("a", &format!("round {round}")).await;
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let (e, crew, photo) = (e.clone(), crew.clone(), photo.clone());
                tokio::spawn(async move {
                    e.multipart(flight, &crew, &[(&format!("copy-{i}.JPG"), photo)])
                        .await
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            statuses.push(r.json()["files"][0]["status"].as_str().unwrap().to_string());
        }
        statuses.sort();
        assert_eq!(
            statuses,
            [
                "duplicate",
                "duplicate",
                "duplicate",
                "duplicate",
                "duplicate",
                "stored"
            ],
            "round {round}"
        );
        assert_eq!(assert_disk_matches_store(&e, flight).len(), 1);
        let files = std::fs::read_dir(e.dir.path().join(format!("flights/{flight}/photos")))
            .unwrap()
            .count();
        assert_eq!(files, 1, "round {round}: no unreferenced copies");
    }
    let leftovers: Vec<_> = std::fs::read_dir(e.dir.path().join("uploads"))
        .unwrap()
        .flatten()
        .map(|d| d.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_batch_cut_off_after_some_photos_says_which_were_stored() {
    let e = env();
    let flight = e.create_flight("a", "cut batch").await;
    let boundary = "cut-batch-boundary";
    let photo = six_photos().remove(0);
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"DJI_0001.JPG\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
    body.extend_from_slice(&photo);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"DJI_0002.JPG\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
    body.extend_from_slice(&photo[..5000]);
    // The connection drops here: no closing boundary.
    let r = e
        .send(
            Method::POST,
            &format!("/api/v1/flights/{flight}/photos"),
            Some(e.token("a", "crew")),
            &[(
                "content-type",
                &format!("multipart/form-data; boundary={boundary}"),
            )],
            body,
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let v = r.json();
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("DJI_0001.JPG"),
        "the answer names what was kept: {error}"
    );
    assert_eq!(v["files"][0]["file"], json!("DJI_0001.JPG"), "{v}");
    assert_eq!(v["files"][0]["status"], json!("stored"), "{v}");
    assert_eq!(v["files"][1]["status"], json!("rejected"), "{v}");
    assert!(
        v["files"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("upload it again"),
        "{v}"
    );
    assert_eq!(assert_disk_matches_store(&e, flight).len(), 1);
}

#[tokio::test]
async fn abandoned_uploads_expire_and_their_bytes_are_removed() {
    let e = common::env_with(|c| c.limits.upload_lifetime_secs = 1);
    let flight = e.create_flight("a", "abandoned").await;
    let options = e
        .send(
            Method::OPTIONS,
            &format!("/api/v1/flights/{flight}/uploads"),
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert!(options
        .header("tus-extension")
        .unwrap()
        .contains("expiration"));
    let uri = create_upload(&e, flight, "DJI_0001.JPG", 1000).await;
    let h = head(&e, &uri).await;
    let expires = h.header("upload-expires").expect("Upload-Expires on HEAD");
    assert!(expires.ends_with(" GMT"), "an HTTP date: {expires}");
    std::fs::write(part_file(&e, &uri), [1u8; 400]).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // The next creation sweeps expired uploads.
    let fresh = create_upload(&e, flight, "DJI_0002.JPG", 1000).await;
    assert_eq!(head(&e, &uri).await.status, StatusCode::NOT_FOUND);
    assert!(
        !part_file(&e, &uri).exists(),
        "the abandoned bytes are gone"
    );
    assert_eq!(head(&e, &fresh).await.status, StatusCode::OK);
}

/// Photos the pipeline could not use are told at upload, in ingest's words, through both
/// multipart and tus; nothing of them is stored.
#[tokio::test]
async fn a_photo_without_gps_is_told_at_upload() {
    let e = env();
    let flight = e.create_flight("a", "metadata").await;
    let crew = e.token("a", "crew");
    let cases = [
        ("no-gps.jpg", "no GPS position"),
        ("gimbal-up.jpg", "above the horizon"),
        ("latitude-95.jpg", "impossible"),
        ("truncated.jpg", "ends before its image data"),
    ];
    for (name, says) in cases {
        let bytes = std::fs::read(fixture(&format!("broken/{name}"))).unwrap();
        let r = e.multipart(flight, crew, &[(name, bytes)]).await;
        let file = &r.json()["files"][0];
        assert_eq!(file["status"], "rejected", "{name}: {file}");
        let reason = file["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{name}: {reason}");
        assert!(!reason.contains("/"), "{name}: no server path in {reason}");
    }
    let bytes = std::fs::read(fixture("broken/no-gps.jpg")).unwrap();
    let uri = create_upload(&e, flight, "NOGPS.JPG", bytes.len()).await;
    let r = e
        .send(
            Method::PATCH,
            &uri,
            Some(crew),
            &[
                ("tus-resumable", "1.0.0"),
                ("content-type", "application/offset+octet-stream"),
                ("upload-offset", "0"),
            ],
            bytes,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("no GPS position"));
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(f["photos"], 0, "{f}");
    let rejected: Vec<&str> = f["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["file"].as_str())
        .collect();
    assert!(
        rejected.contains(&"no-gps.jpg") && rejected.contains(&"NOGPS.JPG"),
        "{f}"
    );
    // A good photo beside them is stored as before.
    let good = std::fs::read(fixture("broken/duplicate-1.jpg")).unwrap();
    let r = e.multipart(flight, crew, &[("good.jpg", good)]).await;
    assert_eq!(r.json()["files"][0]["status"], "stored");
}
