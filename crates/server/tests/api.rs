//! The API through the router without a socket: auth for every route and role,
//! organisation isolation, multipart and tus uploads, findings filters, health and metrics.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use besikta_store::NewFinding;
use common::{env, fixture, sha256_hex, Env, ROLES};
use serde_json::json;

/// Every route with a body that passes its own validation far enough to reach the check
/// under test, and the roles allowed on it.
fn routes(
    flight: i64,
    upload: &str,
    finding: i64,
) -> Vec<(
    Method,
    String,
    &'static [&'static str],
    Option<serde_json::Value>,
)> {
    const ALL: &[&str] = &["crew", "viewer", "planner", "admin"];
    const CREW: &[&str] = &["crew", "admin"];
    const READ: &[&str] = &["viewer", "planner", "admin"];
    const PLAN: &[&str] = &["planner", "admin"];
    const ADMIN: &[&str] = &["admin"];
    let f = format!("/api/v1/flights/{flight}");
    vec![
        (Method::GET, "/api/v1/me".into(), ALL, None),
        (Method::GET, "/api/v1/flights".into(), ALL, None),
        (
            Method::POST,
            "/api/v1/flights".into(),
            CREW,
            Some(json!({"name": "x"})),
        ),
        (Method::GET, f.clone(), ALL, None),
        (Method::POST, format!("{f}/process"), CREW, None),
        (Method::GET, format!("{f}/findings.geojson"), READ, None),
        (Method::GET, format!("{f}/footprints.geojson"), READ, None),
        (Method::POST, format!("{f}/uploads"), CREW, None),
        (Method::HEAD, format!("{f}/uploads/{upload}"), CREW, None),
        (Method::PATCH, format!("{f}/uploads/{upload}"), CREW, None),
        (Method::POST, format!("{f}/photos"), CREW, None),
        (Method::GET, "/api/v1/findings.geojson".into(), READ, None),
        (
            Method::GET,
            format!("/api/v1/findings/{finding}/photo.jpg"),
            READ,
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/findings/{finding}/status"),
            PLAN,
            Some(json!({"status": "scheduled"})),
        ),
        (Method::GET, "/api/v1/workorders.csv".into(), PLAN, None),
        (Method::GET, "/api/v1/workorders.geojson".into(), PLAN, None),
        (Method::GET, "/api/v1/workorders.gpkg".into(), PLAN, None),
        (Method::GET, "/api/v1/registers".into(), READ, None),
        (Method::PUT, "/api/v1/registers/roads".into(), ADMIN, None),
        (
            Method::GET,
            "/api/v1/registers/roads/data".into(),
            READ,
            None,
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            ADMIN,
            Some(json!({"role": "viewer"})),
        ),
        (Method::GET, "/api/v1/audit".into(), ADMIN, None),
        (Method::DELETE, format!("{f}/uploads/{upload}"), CREW, None),
    ]
}

async fn call(
    e: &Env,
    method: &Method,
    uri: &str,
    token: Option<&str>,
    body: &Option<serde_json::Value>,
) -> StatusCode {
    let (headers, payload): (Vec<(&str, &str)>, Body) = match body {
        Some(v) => (
            vec![("content-type", "application/json")],
            Body::from(v.to_string()),
        ),
        None => (
            vec![("tus-resumable", "1.0.0"), ("upload-length", "10")],
            Body::empty(),
        ),
    };
    e.send(method.clone(), uri, token, &headers, payload)
        .await
        .status
}

fn finding(id: &str, class: &str, severity: &str, lon: f64, lat: f64) -> NewFinding {
    let d = 0.00001;
    common::typed_finding(
        id,
        class,
        severity,
        vec![
            [lon, lat],
            [lon + d, lat],
            [lon + d, lat + d],
            [lon, lat + d],
            [lon, lat],
        ],
        "DJI_0001.JPG",
    )
}

/// A tus upload of `length` bytes without metadata, created by organisation a's crew.
async fn bare_upload(e: &Env, flight: i64, length: &str) -> common::Reply {
    e.send(
        Method::POST,
        &format!("/api/v1/flights/{flight}/uploads"),
        Some(e.token("a", "crew")),
        &[("tus-resumable", "1.0.0"), ("upload-length", length)],
        Body::empty(),
    )
    .await
}

/// The upload id at the end of a created upload's `location`.
fn upload_id(created: &common::Reply) -> String {
    created
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_route_checks_token_role_and_organisation() {
    let e = env();
    let flight = e.create_flight("a", "north").await;
    let create = bare_upload(&e, flight, "10").await;
    assert_eq!(create.status, StatusCode::CREATED);
    let upload = upload_id(&create);
    e.store_findings(
        "Espoo",
        flight,
        vec![finding("F1", "crack", "high", 24.8, 60.2)],
    );
    let finding_id = e
        .get("/api/v1/findings.geojson", e.token("a", "viewer"))
        .await
        .json()["features"][0]["id"]
        .as_i64()
        .unwrap();

    for (method, uri, allowed, body) in routes(flight, &upload, finding_id) {
        assert_eq!(
            call(&e, &method, &uri, None, &body).await,
            StatusCode::UNAUTHORIZED,
            "{method} {uri} without token"
        );
        assert_eq!(
            call(&e, &method, &uri, Some("bsk_not-a-token"), &body).await,
            StatusCode::UNAUTHORIZED,
            "{method} {uri} with an unknown token"
        );
        for role in ROLES {
            let status = call(&e, &method, &uri, Some(e.token("a", role)), &body).await;
            if allowed.contains(&role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {uri} as {role}: {status}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri} as {role}");
            }
        }
    }
    // The other organisation's admin can do everything, yet sees none of Espoo's objects.
    let upload2 = upload_id(&bare_upload(&e, flight, "10").await);
    for (method, uri, _, body) in routes(flight, &upload2, finding_id) {
        if !(uri.contains("/flights/") || uri.contains("/findings/")) {
            continue;
        }
        let status = call(&e, &method, &uri, Some(e.token("b", "admin")), &body).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {uri} from another organisation"
        );
    }
    let theirs = e
        .get("/api/v1/findings.geojson", e.token("b", "admin"))
        .await
        .json();
    assert_eq!(theirs["features"].as_array().unwrap().len(), 0);
    let theirs = e.get("/api/v1/flights", e.token("b", "admin")).await.json();
    assert_eq!(theirs["flights"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn findings_filter_by_bbox_class_severity_and_since_across_flights() {
    let e = env();
    let f1 = e.create_flight("a", "one").await;
    let f2 = e.create_flight("a", "two").await;
    e.store_findings(
        "Espoo",
        f1,
        vec![
            finding("F1", "crack", "high", 24.80, 60.20),
            finding("F2", "pothole", "low", 24.90, 60.30),
        ],
    );
    e.store_findings(
        "Espoo",
        f2,
        vec![finding("F1", "crack", "medium", 24.81, 60.21)],
    );
    let viewer = e.token("a", "viewer");
    let count = |v: serde_json::Value| v["features"].as_array().unwrap().len();
    assert_eq!(
        count(e.get("/api/v1/findings.geojson", viewer).await.json()),
        3
    );
    assert_eq!(
        count(
            e.get("/api/v1/findings.geojson?class=crack", viewer)
                .await
                .json()
        ),
        2
    );
    assert_eq!(
        count(
            e.get("/api/v1/findings.geojson?severity=high,medium", viewer)
                .await
                .json()
        ),
        2
    );
    assert_eq!(
        count(
            e.get("/api/v1/findings.geojson?bbox=24.85,60.25,25,60.4", viewer)
                .await
                .json()
        ),
        1
    );
    assert_eq!(
        count(
            e.get("/api/v1/findings.geojson?since=2000-01-01", viewer)
                .await
                .json()
        ),
        3
    );
    assert_eq!(
        count(
            e.get(
                "/api/v1/findings.geojson?since=2999-01-01T00:00:00Z",
                viewer
            )
            .await
            .json()
        ),
        0
    );
    assert_eq!(
        count(
            e.get(&format!("/api/v1/flights/{f2}/findings.geojson"), viewer)
                .await
                .json()
        ),
        1
    );
    let r = e.get("/api/v1/findings.geojson?bbox=1,2,3", viewer).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().unwrap().contains("bbox"));
    assert_eq!(
        e.get("/api/v1/findings.geojson?since=soon", viewer)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let all = e
        .get("/api/v1/findings.geojson?class=pothole", viewer)
        .await;
    assert_eq!(all.header("content-type"), Some("application/geo+json"));
    let fc = all.json();
    let props = &fc["features"][0]["properties"];
    assert_eq!(props["flight_id"], json!(f1));
    assert_eq!(props["status"], json!("open"));
    // Planners set work-order status; it shows in the findings.
    let id = fc["features"][0]["id"].as_i64().unwrap();
    let r = e
        .send(
            Method::PUT,
            &format!("/api/v1/findings/{id}/status"),
            Some(e.token("a", "planner")),
            &[("content-type", "application/json")],
            json!({"status": "scheduled"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let fc = e
        .get("/api/v1/findings.geojson?class=pothole", viewer)
        .await
        .json();
    assert_eq!(
        fc["features"][0]["properties"]["status"],
        json!("scheduled")
    );
}

#[tokio::test]
async fn multipart_stores_photos_once_and_rejects_bad_files_with_reasons() {
    let e = env();
    let flight = e.create_flight("a", "brighton").await;
    let crew = e.token("a", "crew");
    let photo = std::fs::read(fixture("brighton/DJI_0018.JPG")).unwrap();
    let r = e
        .multipart(
            flight,
            crew,
            &[
                ("DJI_0018.JPG", photo.clone()),
                ("notes.JPG", b"this is not a photo".to_vec()),
                ("empty.jpg", Vec::new()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let files = r.json()["files"].clone();
    assert_eq!(files[0]["status"], json!("stored"));
    assert_eq!(files[0]["sha256"], json!(sha256_hex(&photo)));
    assert_eq!(files[1]["status"], json!("rejected"));
    assert!(
        files[1]["reason"]
            .as_str()
            .unwrap()
            .contains("not a JPEG photo"),
        "{files}"
    );
    assert_eq!(files[2]["status"], json!("rejected"));
    // The same photo again, under another name: a no-op.
    let r = e
        .multipart(flight, crew, &[("copy.JPG", photo.clone())])
        .await;
    assert_eq!(r.json()["files"][0]["status"], json!("duplicate"));
    assert_eq!(r.json()["files"][0]["name"], json!("DJI_0018.JPG"));
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(f["photos"], json!(1));
    assert_eq!(f["state"], json!("uploading"));
    let rejected: Vec<&str> = f["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(rejected, ["notes.JPG", "empty.jpg"]);
    let stored = std::fs::read(
        e.dir
            .path()
            .join(format!("flights/{flight}/photos/DJI_0018.JPG")),
    )
    .unwrap();
    assert_eq!(sha256_hex(&stored), sha256_hex(&photo));
}

#[tokio::test]
async fn photo_limits_refuse_large_uploads_without_harm() {
    let e = common::env_with(|c| {
        c.limits.max_photo_bytes = 1_000_000;
        c.limits.max_photo_pixels = 1_000_000;
    });
    let flight = e.create_flight("a", "limits").await;
    let crew = e.token("a", "crew");
    let big = bare_upload(&e, flight, "4024770").await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A small file that claims 4000x2250 pixels: the header alone decides.
    let photo = std::fs::read(fixture("brighton/DJI_0018.JPG")).unwrap();
    let r = e.multipart(flight, crew, &[("big.jpg", photo)]).await;
    let reason = r.json()["files"][0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("limit"), "{reason}");
    assert_eq!(e.get("/healthz", crew).await.status, StatusCode::OK);
}

fn tus_patch_headers(offset: usize) -> Vec<(String, String)> {
    vec![
        ("tus-resumable".into(), "1.0.0".into()),
        (
            "content-type".into(),
            "application/offset+octet-stream".into(),
        ),
        ("upload-offset".into(), offset.to_string()),
    ]
}

async fn patch(
    e: &Env,
    uri: &str,
    token: &str,
    offset: usize,
    bytes: &[u8],
    checksum: Option<String>,
) -> common::Reply {
    let mut h = tus_patch_headers(offset);
    if let Some(c) = checksum {
        h.push(("upload-checksum".into(), c));
    }
    let refs: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    e.send(Method::PATCH, uri, Some(token), &refs, bytes.to_vec())
        .await
}

fn sha1_b64(bytes: &[u8]) -> String {
    use sha1::Digest;
    format!(
        "sha1 {}",
        base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(bytes))
    )
}

#[tokio::test]
async fn tus_upload_in_pieces_with_checksums() {
    let e = env();
    let flight = e.create_flight("a", "tus").await;
    let crew = e.token("a", "crew");
    let photo = std::fs::read(fixture("brighton/DJI_0019.JPG")).unwrap();
    let options = e
        .send(
            Method::OPTIONS,
            &format!("/api/v1/flights/{flight}/uploads"),
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(options.status, StatusCode::NO_CONTENT);
    assert!(options
        .header("tus-extension")
        .unwrap()
        .contains("checksum"));
    assert!(options
        .header("tus-checksum-algorithm")
        .unwrap()
        .contains("sha1"));
    let old = e
        .send(
            Method::POST,
            &format!("/api/v1/flights/{flight}/uploads"),
            Some(crew),
            &[("tus-resumable", "0.2.2"), ("upload-length", "10")],
            Body::empty(),
        )
        .await;
    assert_eq!(old.status, StatusCode::PRECONDITION_FAILED);
    let name = base64::engine::general_purpose::STANDARD.encode("DJI_0019.JPG");
    let created = e
        .send(
            Method::POST,
            &format!("/api/v1/flights/{flight}/uploads"),
            Some(crew),
            &[
                ("tus-resumable", "1.0.0"),
                ("upload-length", &photo.len().to_string()),
                (
                    "upload-metadata",
                    &format!("filename {name},filetype aW1hZ2UvanBlZw=="),
                ),
            ],
            Body::empty(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let uri = created.header("location").unwrap().to_string();
    let third = photo.len() / 3;
    let r = patch(
        &e,
        &uri,
        crew,
        0,
        &photo[..third],
        Some(sha1_b64(&photo[..third])),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("upload-offset"), Some(third.to_string().as_str()));
    // A corrupted piece is refused with 460 and nothing of it is kept.
    let mut bad = photo[third..2 * third].to_vec();
    let good_sum = sha1_b64(&bad);
    bad[10] ^= 0xff;
    let r = patch(&e, &uri, crew, third, &bad, Some(good_sum)).await;
    assert_eq!(r.status.as_u16(), 460);
    let head = e.tus_head(&uri, crew).await;
    assert_eq!(
        head.header("upload-offset"),
        Some(third.to_string().as_str())
    );
    assert_eq!(
        head.header("upload-length"),
        Some(photo.len().to_string().as_str())
    );
    let r = patch(
        &e,
        &uri,
        crew,
        third,
        &photo[third..2 * third],
        Some("md5 AAAA".into()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unsupported algorithm");
    let r = patch(&e, &uri, crew, 5, &photo[5..10], None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "wrong offset");
    let r = patch(&e, &uri, crew, third, &photo[third..], None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("besikta-photo"), Some("stored"));
    let stored = std::fs::read(
        e.dir
            .path()
            .join(format!("flights/{flight}/photos/DJI_0019.JPG")),
    )
    .unwrap();
    assert_eq!(sha256_hex(&stored), sha256_hex(&photo));
    // Finished uploads are forgotten; the photo is found by its hash.
    let head = e.tus_head(&uri, crew).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    // A complete upload that is not a photo is refused with the reason, and listed.
    let created = e.tus_create(flight, crew, "bad.jpg", 11).await;
    let bad_uri = created.header("location").unwrap().to_string();
    let r = patch(&e, &bad_uri, crew, 0, b"not a jpeg!", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.header("besikta-photo"), Some("rejected"));
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not a JPEG photo"));
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(f["rejected"][0]["file"], json!("bad.jpg"));
    assert_eq!(f["photos"], json!(1));
    // Termination.
    let created = e
        .send(
            Method::POST,
            &format!("/api/v1/flights/{flight}/uploads"),
            Some(crew),
            &[("tus-resumable", "1.0.0"), ("upload-length", "100")],
            Body::empty(),
        )
        .await;
    let uri = created.header("location").unwrap().to_string();
    let r = e
        .send(
            Method::DELETE,
            &uri,
            Some(crew),
            &[("tus-resumable", "1.0.0")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = patch(&e, &uri, crew, 0, b"abc", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_metrics_openapi_and_pages() {
    let e = env();
    let r = e
        .send(Method::GET, "/healthz", None, &[], Body::empty())
        .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (StatusCode::OK, b"ok\n".as_slice())
    );
    let flight = e.create_flight("a", "m").await;
    let photo = std::fs::read(fixture("brighton/DJI_0020.JPG")).unwrap();
    e.multipart(
        flight,
        e.token("a", "crew"),
        &[("DJI_0020.JPG", photo.clone())],
    )
    .await;
    let m = e.get("/metrics", e.token("a", "admin")).await;
    let text = String::from_utf8(m.body).unwrap();
    assert!(text.contains("besikta_photos 1"), "{text}");
    assert!(
        text.contains(&format!("besikta_photo_bytes {}", photo.len())),
        "{text}"
    );
    assert!(text.contains("besikta_jobs{state=\"queued\"} 0"), "{text}");
    let doc = e
        .send(
            Method::GET,
            "/api/v1/openapi.json",
            None,
            &[],
            Body::empty(),
        )
        .await
        .json();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    for path in [
        "/api/v1/flights",
        "/api/v1/flights/{id}/uploads/{upload}",
        "/api/v1/findings.geojson",
        "/api/v1/workorders.gpkg",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(
        doc["paths"]["/api/v1/flights/{id}"]["delete"].is_object(),
        "flight deletion documented"
    );
    for page in [
        "/",
        "/upload",
        "/map",
        "/exports",
        "/static/maplibre-gl.js",
        "/static/tus.min.js",
    ] {
        let r = e.send(Method::GET, page, None, &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{page}");
        assert!(!r.body.is_empty(), "{page} has content");
    }
}

#[tokio::test]
async fn registers_are_stored_per_organisation() {
    let e = env();
    let admin = e.token("a", "admin");
    let geojson = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "r1", "name": "Main St"},
         "geometry": {"type": "LineString", "coordinates": [[24.8, 60.2], [24.81, 60.2]]}}]});
    let r = e
        .send(
            Method::PUT,
            "/api/v1/registers/roads",
            Some(admin),
            &[],
            geojson.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["format"], json!("geojson"));
    let r = e
        .send(
            Method::PUT,
            "/api/v1/registers/roads",
            Some(admin),
            &[],
            "garbage",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = e
        .send(
            Method::PUT,
            "/api/v1/registers/rivers",
            Some(admin),
            &[],
            geojson.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let list = e
        .get("/api/v1/registers", e.token("a", "viewer"))
        .await
        .json();
    assert_eq!(list["registers"][0]["kind"], json!("roads"));
    let data = e
        .get("/api/v1/registers/roads/data", e.token("a", "viewer"))
        .await
        .json();
    assert_eq!(data, geojson);
    assert_eq!(
        e.get("/api/v1/registers/roads/data", e.token("b", "admin"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Admins make tokens for their own organisation.
    let t = e
        .post_json("/api/v1/tokens", admin, json!({"role": "viewer"}))
        .await
        .json();
    let me = e
        .get("/api/v1/me", t["token"].as_str().unwrap())
        .await
        .json();
    assert_eq!(
        (me["organisation"].as_str(), me["role"].as_str()),
        (Some("Espoo"), Some("viewer"))
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_full_disk_fails_the_upload_with_a_reason_not_the_server() {
    let e = env();
    let flight = e.create_flight("a", "full disk").await;
    let crew = e.token("a", "crew");
    let created = bare_upload(&e, flight, "1000").await;
    let uri = created.header("location").unwrap().to_string();
    // /dev/full fails every write with ENOSPC, as a full disk does.
    let part = e
        .dir
        .path()
        .join("uploads")
        .join(format!("{}.part", uri.rsplit('/').next().unwrap()));
    std::fs::remove_file(&part).unwrap();
    std::os::unix::fs::symlink("/dev/full", &part).unwrap();
    let r = patch(&e, &uri, crew, 0, &[7u8; 1000], None).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    assert!(r.json()["error"].as_str().unwrap().contains("disk is full"));
    let health = e
        .send(Method::GET, "/healthz", None, &[], Body::empty())
        .await;
    assert_eq!(health.status, StatusCode::OK);
}
