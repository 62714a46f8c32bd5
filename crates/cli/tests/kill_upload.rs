//! Kill test: `besikta serve` on PostgreSQL + S3 is SIGKILLed in the middle of a tus upload
//! (one PATCH done, a second one half sent); started again on the same database, bucket
//! and data folder, the upload resumes from the bytes received, the photo lands in the
//! bucket byte for byte, once, and the flight processes to `done` with distinct findings.

mod common;

use besikta_storage::testing::MotoServer;
use besikta_store::testing::PgCluster;
use common::process::{admin_token, coarse_models, start_serve, wait_for, Proc};
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PHOTO: &str = "DJI_0018.JPG";

/// Bytes of the first, complete PATCH.
const FIRST: usize = 300_000;

/// Bytes of the second PATCH that arrive before the kill (its body declares the rest).
const CUT: usize = 200_000;

const TIMEOUT: Duration = Duration::from_secs(120);

/// `besikta serve` (built-in worker, one thread) on `database` and `storage`.
fn serve(data: &Path, database: &str, storage: &str, env: &[(String, String)]) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_besikta"));
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "1"])
        .args(["--database", database, "--storage", storage, "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models());
    start_serve(cmd)
}

fn json(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> Value {
    common::http::json_within(addr, method, path, token, body, TIMEOUT)
}

/// A tus request (Tus-Resumable: 1.0.0 added); returns status and response head.
fn tus(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    common::http::tus(addr, method, path, token, headers, body, TIMEOUT)
}

/// The value of header `name` in a response head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// HEAD of the upload: (status, Upload-Offset).
fn offset(addr: &str, location: &str, token: &str) -> (u16, Option<u64>) {
    let (status, head) = tus(addr, "HEAD", location, token, &[], b"");
    let offset = header(&head, "upload-offset").map(|v| v.parse().unwrap());
    (status, offset)
}

fn patch(addr: &str, location: &str, token: &str, at: usize, bytes: &[u8]) -> (u16, String) {
    tus(
        addr,
        "PATCH",
        location,
        token,
        &[
            ("Upload-Offset", at.to_string()),
            ("Content-Type", "application/offset+octet-stream".into()),
        ],
        bytes,
    )
}

#[test]
fn serve_killed_mid_upload_on_postgres_and_s3_resumes_byte_exact_and_processes_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoServer::start("besikta").unwrap();
    let s3 = moto.url("region");
    let env = moto.env();
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let data = dir.path().join("api");
    let token = admin_token(&data, Some(&url));
    let bytes = std::fs::read(common::brighton().join(PHOTO)).unwrap();
    assert!(bytes.len() > FIRST + CUT + 1);

    let (mut server, addr) = serve(&data, &url, &s3, &env);
    let flight = json(
        &addr,
        "POST",
        "/api/v1/flights",
        &token,
        br#"{"name": "kill mid upload"}"#,
    )["id"]
        .as_i64()
        .unwrap();
    let meta = format!("filename {}", common::http::base64_encode(PHOTO.as_bytes()));
    let (status, head) = tus(
        &addr,
        "POST",
        &format!("/api/v1/flights/{flight}/uploads"),
        &token,
        &[
            ("Upload-Length", bytes.len().to_string()),
            ("Upload-Metadata", meta),
        ],
        b"",
    );
    assert_eq!(status, 201, "{head}");
    let location = header(&head, "location").expect("a Location header");

    // One whole PATCH, then a second one whose body is cut: the server is killed once
    // its first CUT bytes are on disk, with the connection still open.
    let (status, head) = patch(&addr, &location, &token, 0, &bytes[..FIRST]);
    assert_eq!(status, 204, "{head}");
    let mut cut = TcpStream::connect(&addr).unwrap();
    let rest = bytes.len() - FIRST;
    write!(
        cut,
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nUpload-Offset: {FIRST}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {rest}\r\n\r\n"
    )
    .unwrap();
    cut.write_all(&bytes[FIRST..FIRST + CUT]).unwrap();
    cut.flush().unwrap();
    let sent = (FIRST + CUT) as u64;
    wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
        offset(&addr, &location, &token).1 == Some(sent)
    });
    server.0.kill().unwrap(); // SIGKILL
    let status = server.0.wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status}");
    drop(cut);
    drop(server);

    // Started again on the same database, bucket and data folder: the upload is there,
    // at the bytes received before the kill, and no photo was made of the part.
    let (_server, addr) = serve(&data, &url, &s3, &env);
    let (status, at) = offset(&addr, &location, &token);
    assert_eq!(status, 200);
    assert_eq!(at, Some(sent), "Upload-Offset after the restart");
    let v = json(
        &addr,
        "GET",
        &format!("/api/v1/flights/{flight}"),
        &token,
        b"",
    );
    assert_eq!(v["photos"], 0, "{v}");

    // A PATCH from a wrong offset is refused; the rest from the right one completes it.
    // (A short body: the server answers 409 without reading it and closes, and a client
    // still writing megabytes then meets a broken pipe before it reads the answer.)
    let (status, head) = patch(&addr, &location, &token, FIRST, &bytes[FIRST..FIRST + 4096]);
    assert_eq!(status, 409, "{head}");
    let (status, head) = patch(
        &addr,
        &location,
        &token,
        sent as usize,
        &bytes[sent as usize..],
    );
    assert_eq!(status, 204, "{head}");
    assert_eq!(
        header(&head, "upload-offset"),
        Some(bytes.len().to_string())
    );
    assert_eq!(
        offset(&addr, &location, &token).0,
        404,
        "finished uploads go"
    );

    // Exactly one photo, byte for byte in the bucket, no part left on disk.
    let v = json(
        &addr,
        "GET",
        &format!("/api/v1/flights/{flight}"),
        &token,
        b"",
    );
    assert_eq!(v["photos"], 1, "{v}");
    assert_eq!(v["rejected"].as_array().map(Vec::len), Some(0), "{v}");
    let bucket = moto.storage("region").unwrap();
    let back = dir.path().join("back.jpg");
    bucket
        .get_file_blocking(&format!("flights/{flight}/photos/{PHOTO}"), &back)
        .unwrap();
    assert!(
        std::fs::read(&back).unwrap() == bytes,
        "the photo differs in the bucket"
    );
    let stray: Vec<_> = std::fs::read_dir(data.join("uploads"))
        .unwrap()
        .flatten()
        .collect();
    assert!(stray.is_empty(), "tus parts left behind: {stray:?}");

    // The flight processes to done (built-in worker) with findings, none twice.
    json(
        &addr,
        "POST",
        &format!("/api/v1/flights/{flight}/process"),
        &token,
        b"{}",
    );
    wait_for(Duration::from_secs(600), Duration::from_millis(200), || {
        let v = json(
            &addr,
            "GET",
            &format!("/api/v1/flights/{flight}"),
            &token,
            b"",
        );
        assert_ne!(v["state"], "failed", "{v}");
        v["state"] == "done"
    });
    let v = json(
        &addr,
        "GET",
        &format!("/api/v1/flights/{flight}/findings.geojson"),
        &token,
        b"",
    );
    let features = v["features"].as_array().unwrap();
    assert!(!features.is_empty(), "no findings: {v}");
    let rows: HashSet<String> = features.iter().map(|f| f["id"].to_string()).collect();
    let ids: HashSet<String> = features
        .iter()
        .map(|f| f["properties"]["id"].to_string())
        .collect();
    assert_eq!(rows.len(), features.len(), "a finding row twice: {v}");
    assert_eq!(ids.len(), features.len(), "a finding id twice: {v}");
    let v = json(
        &addr,
        "GET",
        &format!("/api/v1/flights/{flight}"),
        &token,
        b"",
    );
    assert_eq!(v["photos"], 1, "{v}");
    eprintln!(
        "{} findings; whole test {:?}",
        features.len(),
        started.elapsed()
    );
}
