//! An organisation's reference orthophoto with the storage in an object store: `besikta
//! serve --storage s3://...` against a real S3-compatible server (moto on loopback) keeps
//! the uploaded GeoTIFF in the bucket, and its job's worker fetches it from there to align
//! a simulated flight (GPS noise 2 m) to it: every photo's pose comes from the reference.

mod common;

use besikta_sim::{simulate, SimConfig};
use besikta_storage::testing::MotoServer;
use common::http::http;
use common::process::{admin_token, coarse_models, start_serve, wait_for};
use serde_json::Value;
use std::time::Duration;

#[test]
fn jobs_fetch_the_reference_from_the_object_store_and_align_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let utm = dir.path().join("truth-utm.tif");
    let sim = simulate(&SimConfig {
        register: common::fixtures().join("registers/helsinki.osm.pbf"),
        out_dir: photos.clone(),
        seed: 1207,
        photos: 6,
        width_px: 1000,
        defects: 0,
        gps_noise_m: 2.0,
        yaw_noise_deg: 1.0,
        orthophoto: Some(utm.clone()),
        ..Default::default()
    })
    .unwrap();
    let moto = MotoServer::start("besikta").unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data, None);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_besikta"));
    cmd.envs(moto.env())
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "1", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(coarse_models())
        .args(["--storage", &moto.url("city")]);
    let (_serve, addr) = start_serve(cmd);

    // The simulator's own UTM GeoTIFF as the reference.
    let tif = std::fs::read(&utm).unwrap();
    let (status, body) = http(
        &addr,
        "PUT",
        "/api/v1/org/reference?name=truth.tif",
        &token,
        "image/tiff",
        &tif,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let r: Value = serde_json::from_slice(&body).unwrap();
    let sha = r["reference"]["sha256"].as_str().unwrap().to_string();
    // In the bucket, not in the data folder.
    let key = format!("orgs/1/reference/{}/truth.tif", &sha[..16]);
    let bucket = moto.storage("city").unwrap();
    let local = dir.path().join("fetched.tif");
    bucket.get_file_blocking(&key, &local).unwrap();
    assert_eq!(std::fs::read(&local).unwrap(), tif);
    assert!(!data.join(&key).exists());

    // A flight of the simulated photos, processed.
    let (status, body) = http(
        &addr,
        "POST",
        "/api/v1/flights",
        &token,
        "application/json",
        br#"{"name": "reference"}"#,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let flight = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let boundary = "reference-s3-test";
    let mut form = Vec::new();
    for p in &sim.photos {
        form.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"p\"; filename=\"{}\"\r\n\r\n", p.file).as_bytes(),
        );
        form.extend_from_slice(&std::fs::read(photos.join(&p.file)).unwrap());
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let (status, body) = http(
        &addr,
        "POST",
        &format!("/api/v1/flights/{flight}/photos"),
        &token,
        &format!("multipart/form-data; boundary={boundary}"),
        &form,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, body) = http(
        &addr,
        "POST",
        &format!("/api/v1/flights/{flight}/process"),
        &token,
        "application/json",
        b"{}",
    );
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let path = format!("/api/v1/flights/{flight}");
    wait_for(Duration::from_secs(600), Duration::from_millis(250), || {
        let (_, body) = http(&addr, "GET", &path, &token, "application/json", b"");
        let f: Value = serde_json::from_slice(&body).unwrap();
        assert_ne!(f["state"], "failed", "{f}");
        f["state"] == "done"
    });
    let (status, body) = http(
        &addr,
        "GET",
        &format!("{path}/footprints.geojson"),
        &token,
        "application/json",
        b"",
    );
    assert_eq!(status, 200);
    let fp: Value = serde_json::from_slice(&body).unwrap();
    let features = fp["features"].as_array().unwrap();
    assert_eq!(features.len(), 6);
    for f in features {
        assert_eq!(
            f["properties"]["pose_source"], "reference",
            "{}",
            f["properties"]
        );
    }
    // The job's scratch copy of the reference is gone.
    let scratch = data.join("scratch");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("job-reference"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
