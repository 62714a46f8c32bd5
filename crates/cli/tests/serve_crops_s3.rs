//! Crops made at processing time, with the storage in an S3 bucket (moto on loopback):
//! `besikta serve --storage s3://...` processes the Brighton fixture flight, the crops land
//! in the bucket beside the job's other products (none in the data folder), and a cold
//! crop request is answered from the bucket's stored crop, byte for byte, without decoding
//! the photo (`X-Besikta-Crop: precomputed`, `/metrics` counts no decode).

mod common;

use besikta_storage::testing::MotoServer;
use common::http::{json, request};
use common::process::{admin_token, besikta_command, coarse_models, start_serve};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The keys of the bucket under `prefix` (moto checks no signatures: one plain
/// ListObjectsV2 request).
fn bucket_keys(moto: &MotoServer, prefix: &str) -> Vec<String> {
    let addr = moto.endpoint().trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        s,
        "GET /{}?list-type=2&max-keys=1000&prefix={prefix} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        moto.bucket()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        !raw.contains("<IsTruncated>true"),
        "more than 1000 keys under {prefix}"
    );
    raw.split("<Key>")
        .skip(1)
        .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
        .collect()
}

/// Every file under `dir` whose path has a `crops` folder in it.
fn local_crops(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.components().any(|c| c.as_os_str() == "crops") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// The value of an unlabelled metric in `/metrics`.
fn metric(addr: &str, token: &str, name: &str) -> u64 {
    let (status, _, body) = request(addr, "GET", "/metrics", token, &[], b"", TIMEOUT);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_crop_made_at_processing_time_is_served_from_the_s3_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoServer::start("besikta").unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data, None);
    let mut cmd = besikta_command();
    cmd.envs(moto.env())
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "1"])
        .args(["--storage", &moto.url("region"), "--data"])
        .arg(&data)
        .arg("--models")
        .arg(coarse_models());
    let (_server, addr) = start_serve(cmd);
    let (flight, _job) = common::process::queued_brighton_flight(&addr, &token, "crops-s3");
    let start = Instant::now();
    loop {
        let v = json(
            &addr,
            "GET",
            &format!("/api/v1/flights/{flight}"),
            &token,
            b"",
        );
        assert_ne!(v["state"], "failed", "{v}");
        if v["state"] == "done" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "not done: {v}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // The crops are in the bucket with the job's products, not in the data folder.
    let keys = bucket_keys(&moto, &format!("region/flights/{flight}/"));
    let crops: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("/crops/") && k.ends_with(".jpg"))
        .collect();
    assert!(!crops.is_empty(), "no stored crop in the bucket: {keys:?}");
    assert!(
        keys.iter().any(|k| k.ends_with("/findings.geojson")),
        "the products are in the bucket: {keys:?}"
    );
    assert_eq!(local_crops(&data), Vec::<String>::new());

    let findings = json(
        &addr,
        "GET",
        &format!("/api/v1/flights/{flight}/findings.geojson"),
        &token,
        b"",
    );
    let id = findings["features"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("the coarse crack model finds something: {findings}"));
    let (status, head, crop) = request(
        &addr,
        "GET",
        &format!("/api/v1/findings/{id}/photo.jpg"),
        &token,
        &[],
        b"",
        TIMEOUT,
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_lowercase().contains("x-besikta-crop: precomputed"),
        "{head}"
    );
    assert!(crop.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG crop");
    // Byte for byte one of the crops in the bucket.
    let bucket = moto.storage("region").unwrap();
    let back = dir.path().join("crop.jpg");
    let stored: Vec<Vec<u8>> = crops
        .iter()
        .map(|k| {
            let key = k.strip_prefix("region/").unwrap();
            bucket.get_file_blocking(key, &back).unwrap();
            std::fs::read(&back).unwrap()
        })
        .collect();
    assert!(stored.contains(&crop), "the served crop is a stored one");
    assert_eq!(metric(&addr, &token, "besikta_crop_decodes_total"), 0);
    assert_eq!(
        metric(&addr, &token, "besikta_crop_precomputed_served_total"),
        1
    );
}
