//! Object storage end to end: `besikta serve --storage s3://...` and three `besikta worker
//! --database postgres://... --storage s3://...` processes, each with a data folder of its
//! own (nothing shared but PostgreSQL and the bucket), against a real S3-compatible server
//! (moto on loopback) and a throw-away PostgreSQL cluster. Photos uploaded through the API
//! (multipart and tus) land in the bucket byte for byte, and the flights give the same
//! findings as the same flight through SQLite and the data folder.

mod common;

use besikta_storage::testing::MotoServer;
use besikta_store::testing::PgCluster;
use common::http::request;
use common::process::{admin_token as token, coarse_models, start_serve, start_worker, Proc};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PHOTOS: [&str; 3] = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"];

/// How long a request may wait for each read.
const TIMEOUT: Duration = Duration::from_secs(120);

fn photo_bytes(name: &str) -> Vec<u8> {
    std::fs::read(common::brighton().join(name)).unwrap()
}

fn besikta(env: &[(String, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_besikta"));
    c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    c
}

/// `besikta serve` with `extra` arguments; returns it and its address.
fn serve(data: &Path, extra: &[&str], env: &[(String, String)]) -> (Proc, String) {
    let mut cmd = besikta(env);
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models())
        .args(extra);
    start_serve(cmd)
}

fn json(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> Value {
    common::http::json_within(addr, method, path, token, body, TIMEOUT)
}

fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    ctype: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let headers = if ctype.is_empty() {
        vec![]
    } else {
        vec![("Content-Type", ctype.to_string())]
    };
    let (status, _, body) = request(addr, method, path, token, &headers, body, TIMEOUT);
    (status, body)
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

/// A flight with `PHOTOS`: the first two by multipart, the last by tus in 300 kB PATCHes.
fn upload_flight(addr: &str, token: &str, name: &str) -> i64 {
    let flight = json(
        addr,
        "POST",
        "/api/v1/flights",
        token,
        format!(r#"{{"name": "{name}"}}"#).as_bytes(),
    )["id"]
        .as_i64()
        .unwrap();
    let boundary = "storage-test";
    let mut form = Vec::new();
    for name in &PHOTOS[..2] {
        form.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"p\"; filename=\"{name}\"\r\n\r\n").as_bytes(),
        );
        form.extend_from_slice(&photo_bytes(name));
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let (status, body) = http(
        addr,
        "POST",
        &format!("/api/v1/flights/{flight}/photos"),
        token,
        &ctype,
        &form,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let bytes = photo_bytes(PHOTOS[2]);
    let meta = format!(
        "filename {}",
        common::http::base64_encode(PHOTOS[2].as_bytes())
    );
    let (status, head) = tus(
        addr,
        "POST",
        &format!("/api/v1/flights/{flight}/uploads"),
        token,
        &[
            ("Upload-Length", bytes.len().to_string()),
            ("Upload-Metadata", meta),
        ],
        b"",
    );
    assert_eq!(status, 201, "{head}");
    let location = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_string())
        })
        .expect("a Location header");
    for (i, chunk) in bytes.chunks(300_000).enumerate() {
        let (status, head) = tus(
            addr,
            "PATCH",
            &location,
            token,
            &[
                ("Upload-Offset", (i * 300_000).to_string()),
                ("Content-Type", "application/offset+octet-stream".into()),
            ],
            chunk,
        );
        assert_eq!(status, 204, "{head}");
    }
    flight
}

/// Processes the flights and waits for all of them to be done.
fn process_all(addr: &str, token: &str, flights: &[i64]) {
    for f in flights {
        json(
            addr,
            "POST",
            &format!("/api/v1/flights/{f}/process"),
            token,
            b"{}",
        );
    }
    let start = Instant::now();
    for f in flights {
        loop {
            let v = json(addr, "GET", &format!("/api/v1/flights/{f}"), token, b"");
            assert_ne!(v["state"], "failed", "{v}");
            if v["state"] == "done" {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "flight {f} not done: {v}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A flight's findings as the pipeline made them (no server ids), sorted.
fn findings(addr: &str, token: &str, flight: i64) -> Vec<String> {
    let v = json(
        addr,
        "GET",
        &format!("/api/v1/flights/{flight}/findings.geojson"),
        token,
        b"",
    );
    let mut out: Vec<String> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = &f["properties"];
            serde_json::json!({
                "geometry": f["geometry"],
                "id": p["id"], "class": p["class"], "severity": p["severity"],
                "confidence": p["confidence"], "views": p["views"],
                "length_m": p["length_m"], "area_m2": p["area_m2"],
                "observations": p["observations"],
            })
            .to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn flights_through_postgres_s3_and_three_workers_give_the_findings_of_sqlite_and_a_folder() {
    let dir = tempfile::tempdir().unwrap();

    // Baseline: SQLite and the data folder, the built-in worker.
    let local = dir.path().join("local");
    let local_token = token(&local, None);
    let (local_server, local_addr) = serve(&local, &["--workers", "1"], &[]);
    let base_flight = upload_flight(&local_addr, &local_token, "brighton");
    process_all(&local_addr, &local_token, &[base_flight]);
    let expected = findings(&local_addr, &local_token, base_flight);
    assert!(
        !expected.is_empty(),
        "the coarse crack model finds something in Brighton"
    );
    drop(local_server);

    // PostgreSQL + S3: an API machine without workers and three worker machines, each
    // with its own (empty) data folder.
    let moto = MotoServer::start("besikta").unwrap();
    let s3 = moto.url("region");
    let env = moto.env();
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let api_data = dir.path().join("api");
    let token = token(&api_data, Some(&url));
    let (_server, addr) = serve(
        &api_data,
        &["--workers", "0", "--database", &url, "--storage", &s3],
        &env,
    );
    let flights: Vec<i64> = (0..3)
        .map(|i| upload_flight(&addr, &token, &format!("brighton {i}")))
        .collect();

    // The photos are in the bucket byte for byte, and not on the API machine's disk.
    let bucket = moto.storage("region").unwrap();
    for f in &flights {
        for name in PHOTOS {
            let back = dir.path().join("back.jpg");
            bucket
                .get_file_blocking(&format!("flights/{f}/photos/{name}"), &back)
                .unwrap_or_else(|e| panic!("flight {f} photo {name}: {e}"));
            assert!(
                std::fs::read(&back).unwrap() == photo_bytes(name),
                "{name} differs in the bucket"
            );
            assert!(!api_data.join(format!("flights/{f}/photos/{name}")).exists());
        }
    }
    let stray: Vec<_> = std::fs::read_dir(api_data.join("uploads"))
        .unwrap()
        .flatten()
        .collect();
    assert!(stray.is_empty(), "tus parts left behind: {stray:?}");

    let workers: Vec<Proc> = (0..3)
        .map(|i| {
            let data = dir.path().join(format!("worker-{i}"));
            let mut cmd = besikta(&env);
            cmd.args([
                "worker",
                "--threads",
                "1",
                "--database",
                &url,
                "--storage",
                &s3,
                "--data",
            ])
            .arg(&data)
            .arg("--models")
            .arg(coarse_models());
            start_worker(cmd)
        })
        .collect();
    process_all(&addr, &token, &flights);
    drop(workers);

    for f in &flights {
        assert_eq!(
            findings(&addr, &token, *f),
            expected,
            "flight {f} differs from SQLite + folder"
        );
        // The products are in the bucket (and served from there), the scratch folders gone.
        // (the API machine never had them: it runs no workers and shares no folder).
        let outs = std::fs::read_dir(api_data.join(format!("flights/{f}")))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("out-"))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(outs, 0, "products on the API machine's disk");
        let (status, body) = http(
            &addr,
            "GET",
            &format!("/api/v1/flights/{f}/footprints.geojson"),
            &token,
            "",
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let fp: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(fp["features"].as_array().unwrap().len(), PHOTOS.len());
    }
    for i in 0..3 {
        let scratch = dir.path().join(format!("worker-{i}/scratch"));
        let left = std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "worker {i} left scratch files");
    }
    // A crop of a finding's photo, read from the bucket.
    let all = json(
        &addr,
        "GET",
        &format!("/api/v1/flights/{}/findings.geojson", flights[0]),
        &token,
        b"",
    );
    let id = all["features"][0]["properties"]["finding"]
        .as_i64()
        .or_else(|| all["features"][0]["id"].as_i64())
        .expect("a finding id");
    let (status, jpeg) = http(
        &addr,
        "GET",
        &format!("/api/v1/findings/{id}/photo.jpg"),
        &token,
        "",
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&jpeg));
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG crop");

    // Deleting a flight deletes its objects.
    json(
        &addr,
        "DELETE",
        &format!("/api/v1/flights/{}", flights[2]),
        &token,
        b"",
    );
    assert!(!bucket
        .exists_blocking(&format!("flights/{}/photos/{}", flights[2], PHOTOS[0]))
        .unwrap());
}

#[test]
fn serve_with_an_unreachable_storage_stops_naming_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "x".into()),
        ("AWS_SECRET_ACCESS_KEY", "y".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let out = besikta(&env)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--storage",
            "s3://photos/region-a",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3://photos/region-a"), "{err}");
    assert!(err.contains("AWS_"), "{err}");
}
