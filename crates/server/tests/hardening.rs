//! The service under concurrent use and careless or hostile input (issue 11): photos that
//! arrive while their flight is processed, unreadable registers, lenient query values,
//! security headers, what `/metrics` shows without a token, flight deletion and the audit
//! log.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use besikta_store::{JobResult, Store};
use common::{env, fixture, Env};
use serde_json::json;

fn db(e: &Env) -> &dyn Store {
    e.store()
}

/// Three small distinct photos (one real JPEG with different tails).
fn photo(i: u8) -> Vec<u8> {
    let mut p = std::fs::read(fixture("broken/duplicate-1.jpg")).unwrap();
    p.extend_from_slice(&[i; 8]);
    p
}

async fn process(e: &Env, flight: i64) -> common::Reply {
    e.post_json(
        &format!("/api/v1/flights/{flight}/process"),
        e.token("a", "crew"),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn a_photo_that_arrives_while_its_flight_runs_gets_a_follow_up_job() {
    let e = env();
    let flight = e.create_flight("a", "late").await;
    let crew = e.token("a", "crew");
    e.multipart(flight, crew, &[("DJI_0001.JPG", photo(1))])
        .await;
    let first = process(&e, flight).await.json()["job"].as_i64().unwrap();
    // A worker takes the job and reads the flight's one photo...
    let store = db(&e);
    let job = store.claim_job(60).unwrap().unwrap();
    assert_eq!(job.id, first);
    let seen = store.photos(flight).unwrap().len();
    // ...and a second photo lands meanwhile.
    let r = e
        .multipart(flight, crew, &[("DJI_0002.JPG", photo(2))])
        .await;
    assert_eq!(r.json()["files"][0]["status"], json!("stored"));
    let again = process(&e, flight).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    let follow_up = again.json()["job"].as_i64().unwrap();
    assert_ne!(
        follow_up, first,
        "the running job does not cover the late photo"
    );
    assert_eq!(again.json()["state"], json!("queued"));
    assert_eq!(
        process(&e, flight).await.json()["job"],
        json!(follow_up),
        "one follow-up, not one per request"
    );
    // No second worker may run the same flight at the same time.
    assert!(store.claim_job(60).unwrap().is_none());
    let result = JobResult {
        output_dir: format!("flights/{flight}/out-{}-{}", job.id, job.attempt),
        findings: vec![],
        rejected: vec![],
    };
    store.complete_job(&job, &result).unwrap();
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(
        f["state"],
        json!("queued"),
        "not done: {seen} of {} photos processed",
        f["photos"]
    );
    let next = store.claim_job(60).unwrap().unwrap();
    assert_eq!((next.id, next.flight_id), (follow_up, flight));
    assert_eq!(store.photos(flight).unwrap().len(), 2);
}

#[tokio::test]
async fn a_photo_during_the_run_queues_a_follow_up_even_without_asking() {
    let e = env();
    let flight = e.create_flight("a", "late, no request").await;
    let crew = e.token("a", "crew");
    e.multipart(flight, crew, &[("DJI_0001.JPG", photo(1))])
        .await;
    process(&e, flight).await;
    let store = db(&e);
    let job = store.claim_job(60).unwrap().unwrap();
    e.multipart(flight, crew, &[("DJI_0002.JPG", photo(2))])
        .await;
    // The worker fails; the late photo's job still runs.
    store.fail_job(&job, "model missing").unwrap();
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), crew)
        .await
        .json();
    assert_eq!(f["state"], json!("queued"), "{f}");
    let next = store.claim_job(60).unwrap().unwrap();
    assert_ne!(next.id, job.id);
    // A photo while a job is only queued needs nothing more: that job reads it.
    let e2 = e.create_flight("a", "queued only").await;
    e.multipart(e2, crew, &[("DJI_0001.JPG", photo(3))]).await;
    let queued = process(&e, e2).await.json()["job"].clone();
    e.multipart(e2, crew, &[("DJI_0002.JPG", photo(4))]).await;
    assert_eq!(process(&e, e2).await.json()["job"], queued);
}

async fn put_register(e: &Env, kind: &str, body: Vec<u8>) -> common::Reply {
    e.send(
        Method::PUT,
        &format!("/api/v1/registers/{kind}"),
        Some(e.token("a", "admin")),
        &[],
        body,
    )
    .await
}

#[tokio::test]
async fn an_unreadable_register_is_refused_and_the_previous_one_kept() {
    let e = env();
    let good = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "r1", "name": "Main St"},
         "geometry": {"type": "LineString", "coordinates": [[24.8, 60.2], [24.81, 60.2]]}}]});
    let r = put_register(&e, "roads", good.to_string().into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut gpkg = b"SQLite format 3\0".to_vec();
    gpkg.extend_from_slice(&[0x5a; 4000]);
    let mut fgb = b"fgb\x03fgb\x00".to_vec();
    fgb.extend_from_slice(&[0x11; 500]);
    let mut osm = vec![0, 0, 0, 13, 10, 9];
    osm.extend_from_slice(b"OSMHeader");
    osm.extend_from_slice(&[0xee; 300]);
    let points = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [24.8, 60.2]}}]});
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("broken JSON", b"{ not json".to_vec(), "roads"),
        ("GeoPackage header, garbage after", gpkg, "roads"),
        ("FlatGeobuf header, garbage after", fgb, "roads"),
        ("OSM PBF header, garbage after", osm, "osm"),
        ("only points", points.to_string().into_bytes(), "roads"),
    ];
    for (what, body, kind) in cases {
        let r = put_register(&e, kind, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            r.text()
        );
        let reason = r.json()["error"].as_str().unwrap().to_string();
        assert!(reason.contains("register"), "{what}: {reason}");
        assert!(
            !reason.contains(&e.dir.path().display().to_string()),
            "{what}: no server paths in {reason}"
        );
    }
    // The register in use is still the good one, and it is the only file in the folder.
    let data = e
        .get("/api/v1/registers/roads/data", e.token("a", "viewer"))
        .await;
    assert_eq!(data.json(), good);
    let list = e
        .get("/api/v1/registers", e.token("a", "viewer"))
        .await
        .json();
    assert_eq!(list["registers"].as_array().unwrap().len(), 1, "{list}");
    let files: Vec<String> = std::fs::read_dir(e.dir.path().join("orgs/1/registers"))
        .unwrap()
        .flatten()
        .map(|d| d.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(files, ["roads.geojson"]);
    // A real OpenStreetMap extract is read and accepted.
    let pbf = std::fs::read(fixture("registers/helsinki.osm.pbf")).unwrap();
    let r = put_register(&e, "osm", pbf).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["assets"].as_u64().unwrap() > 100, "{}", r.json());
}

#[tokio::test]
async fn impossible_bbox_and_dates_are_refused_with_a_reason() {
    let e = env();
    let viewer = e.token("a", "viewer");
    let flight = e.create_flight("a", "filters").await;
    for (query, names) in [
        ("bbox=NaN,60,25,61", "bbox"),
        ("bbox=24,60,inf,61", "bbox"),
        ("bbox=24,-95,25,61", "bbox"),
        ("bbox=-200,60,25,61", "bbox"),
        // Every part must be a number: not four numbers among five parts.
        ("bbox=24,60,x,25,61", "bbox"),
        ("bbox=24,60,,25,61", "bbox"),
        ("since=2026-02-30", "since"),
        ("since=2025-02-29", "since"),
        ("since=2026-04-31T00:00:00Z", "since"),
        ("since=2026-05-01T12:00:00+25:00", "since"),
    ] {
        for uri in [
            format!("/api/v1/findings.geojson?{query}"),
            format!("/api/v1/flights/{flight}/findings.geojson?{query}"),
        ] {
            let r = e.get(&uri, viewer).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
            let reason = r.json()["error"].as_str().unwrap().to_string();
            assert!(reason.contains(names), "{uri}: {reason}");
        }
    }
    // Real edge days still work.
    for ok in [
        "since=2024-02-29",
        "since=2026-12-31T23:59:59Z",
        "bbox=-180,-90,180,90",
    ] {
        let r = e
            .get(&format!("/api/v1/findings.geojson?{ok}"), viewer)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{ok}: {}", r.text());
    }
}

#[tokio::test]
async fn pages_and_api_send_security_headers() {
    let e =
        common::env_with(|c| c.tile_url = Some("https://tiles.example.org/{z}/{x}/{y}.png".into()));
    let admin = e.token("a", "admin").to_string();
    for (uri, token) in [
        ("/", None),
        ("/map", None),
        ("/upload", None),
        ("/static/map.js", None),
        ("/static/nothing.js", None),
        ("/healthz", None),
        ("/api/v1/openapi.json", None),
        ("/api/v1/flights", Some(admin.as_str())),
        ("/api/v1/flights", None),
    ] {
        let r = e.send(Method::GET, uri, token, &[], Body::empty()).await;
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{uri}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{uri}");
        let csp = r
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{uri} has no Content-Security-Policy"));
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{uri}: {csp}");
        }
        assert!(!csp.contains("unsafe-eval"), "{uri}: {csp}");
    }
    // The map's workers and tiles are allowed; the home page's one inline script by its hash.
    let csp = e.send(Method::GET, "/map", None, &[], Body::empty()).await;
    let csp = csp.header("content-security-policy").unwrap();
    assert!(csp.contains("worker-src 'self' blob:"), "{csp}");
    assert!(csp.contains("https://tiles.example.org"), "{csp}");
    let home = e.send(Method::GET, "/", None, &[], Body::empty()).await;
    let html = String::from_utf8(home.body.clone()).unwrap();
    let inline = html
        .split("<script>")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .expect("the home page has an inline script");
    let hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(inline.as_bytes()))
    };
    assert!(
        home.header("content-security-policy")
            .unwrap()
            .contains(&format!("'sha256-{hash}'")),
        "the inline script is allowed by its hash"
    );
}

#[tokio::test]
async fn metrics_show_no_organisation_figures_without_its_admin_token() {
    let e = env();
    let fa = e.create_flight("a", "a").await;
    let fb = e.create_flight("b", "b").await;
    e.multipart(fa, e.token("a", "crew"), &[("DJI_0001.JPG", photo(1))])
        .await;
    e.multipart(
        fb,
        e.token("b", "crew"),
        &[("DJI_0001.JPG", photo(2)), ("DJI_0002.JPG", photo(3))],
    )
    .await;
    process(&e, fa).await;
    let public = e
        .send(Method::GET, "/metrics", None, &[], Body::empty())
        .await;
    assert_eq!(public.status, StatusCode::OK);
    let text = String::from_utf8(public.body).unwrap();
    assert!(text.contains("besikta_http_requests_total"), "{text}");
    for leak in [
        "besikta_jobs",
        "besikta_findings",
        "photos",
        "upload_bytes",
        "flights",
    ] {
        assert!(!text.contains(leak), "{leak} without a token:\n{text}");
    }
    let viewer = e.get("/metrics", e.token("a", "viewer")).await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    let admin = e.get("/metrics", e.token("a", "admin")).await;
    let text = String::from_utf8(admin.body).unwrap();
    assert!(
        text.contains("besikta_photos 1\n"),
        "only Espoo's photo:\n{text}"
    );
    assert!(
        text.contains(&format!("besikta_photo_bytes {}\n", photo(1).len())),
        "{text}"
    );
    assert!(
        text.contains("besikta_jobs{state=\"queued\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("besikta_flights 1\n"), "{text}");
    let other = e.get("/metrics", e.token("b", "admin")).await;
    let text = String::from_utf8(other.body).unwrap();
    assert!(text.contains("besikta_photos 2\n"), "{text}");
    assert!(
        text.contains("besikta_jobs{state=\"queued\"} 0\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_errors_name_no_server_paths() {
    let empty = tempfile::tempdir().unwrap();
    let models = empty.path().to_path_buf();
    let e = common::env_with(move |c| c.models_dir = models);
    let flight = e.create_flight("a", "no models").await;
    let crew = e.token("a", "crew");
    e.multipart(flight, crew, &[("DJI_0001.JPG", photo(1))])
        .await;
    assert_eq!(process(&e, flight).await.status, StatusCode::ACCEPTED);
    let workers = besikta_server::Workers::start(&e.state);
    let start = std::time::Instant::now();
    let f = loop {
        let f = e
            .get(&format!("/api/v1/flights/{flight}"), crew)
            .await
            .json();
        if f["state"] == json!("failed") || f["state"] == json!("done") {
            break f;
        }
        assert!(start.elapsed().as_secs() < 120, "{f}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    workers.stop();
    let error = f["error"].as_str().unwrap();
    assert!(error.contains("no models found"), "{error}");
    for path in [empty.path(), e.dir.path()] {
        assert!(
            !error.contains(&path.display().to_string()),
            "{path:?} in {error}"
        );
    }
    assert!(!f.to_string().contains("/tmp/"), "{f}");
}

#[tokio::test]
async fn planners_delete_a_flight_with_everything_in_it_and_admins_read_the_audit_log() {
    let e = env();
    let flight = e.create_flight("a", "to delete").await;
    let keep = e.create_flight("a", "to keep").await;
    let crew = e.token("a", "crew");
    e.multipart(flight, crew, &[("DJI_0001.JPG", photo(1))])
        .await;
    e.multipart(keep, crew, &[("DJI_0001.JPG", photo(2))]).await;
    // Findings and products, as a finished job leaves them.
    let store = db(&e);
    process(&e, flight).await;
    let job = store.claim_job(60).unwrap().unwrap();
    let out = format!("flights/{flight}/out-{}-{}", job.id, job.attempt);
    std::fs::create_dir_all(e.dir.path().join(&out)).unwrap();
    std::fs::write(e.dir.path().join(&out).join("findings.gpkg"), b"products").unwrap();
    store
        .complete_job(
            &job,
            &JobResult {
                output_dir: out,
                findings: vec![common::typed_finding(
                    "F1",
                    "crack",
                    "high",
                    square(24.8, 60.2),
                    "DJI_0001.JPG",
                )],
                rejected: vec![],
            },
        )
        .unwrap();
    let findings = e
        .get("/api/v1/findings.geojson", e.token("a", "viewer"))
        .await
        .json();
    let finding = findings["features"][0]["id"].as_i64().unwrap();
    let r = e
        .send(
            Method::PUT,
            &format!("/api/v1/findings/{finding}/status"),
            Some(e.token("a", "planner")),
            &[("content-type", "application/json")],
            json!({"status": "scheduled"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let t = e
        .post_json(
            "/api/v1/tokens",
            e.token("a", "admin"),
            json!({"role": "crew"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED);

    let uri = format!("/api/v1/flights/{flight}");
    for (org, role, status) in [
        ("a", "crew", StatusCode::FORBIDDEN),
        ("a", "viewer", StatusCode::FORBIDDEN),
        ("b", "admin", StatusCode::NOT_FOUND),
    ] {
        let r = e.delete(&uri, e.token(org, role)).await;
        assert_eq!(r.status, status, "{org} {role}");
    }
    let r = e.delete(&uri, e.token("a", "planner")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["photos"], json!(1));
    assert_eq!(r.json()["findings"], json!(1));
    assert_eq!(e.get(&uri, crew).await.status, StatusCode::NOT_FOUND);
    assert!(
        !e.dir.path().join(format!("flights/{flight}")).exists(),
        "photos and products gone"
    );
    assert_eq!(
        e.get("/api/v1/findings.geojson", e.token("a", "viewer"))
            .await
            .json()["features"],
        json!([])
    );
    assert_eq!(
        e.get(
            &format!("/api/v1/findings/{finding}/photo.jpg"),
            e.token("a", "viewer")
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // The other flight is untouched.
    assert_eq!(store.photos(keep).unwrap().len(), 1);
    assert!(e
        .dir
        .path()
        .join(store.photos(keep).unwrap()[0].path.clone())
        .is_file());

    // The audit log: who, when, what; admins only, own organisation only.
    assert_eq!(
        e.get("/api/v1/audit", e.token("a", "planner")).await.status,
        StatusCode::FORBIDDEN
    );
    let log = e.get("/api/v1/audit", e.token("a", "admin")).await;
    assert_eq!(log.status, StatusCode::OK);
    let entries = log.json()["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    for want in ["token.created", "finding.status", "flight.deleted"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let deleted = entries
        .iter()
        .find(|x| x["action"] == json!("flight.deleted"))
        .unwrap();
    assert_eq!(deleted["role"], json!("planner"));
    assert!(
        deleted["detail"].as_str().unwrap().contains("to delete"),
        "{deleted}"
    );
    assert!(deleted["at"].as_str().unwrap().ends_with('Z'), "{deleted}");
    assert!(deleted["token"].as_str().unwrap().len() >= 8, "{deleted}");
    let status = entries
        .iter()
        .find(|x| x["action"] == json!("finding.status"))
        .unwrap();
    assert!(
        status["detail"].as_str().unwrap().contains("scheduled"),
        "{status}"
    );
    let theirs = e.get("/api/v1/audit", e.token("b", "admin")).await.json();
    for x in theirs["entries"].as_array().unwrap() {
        // Vantaa's log holds only its own tokens, made on the command line by `env()`.
        assert_eq!(
            (&x["action"], &x["token"]),
            (&json!("token.created"), &json!("command line")),
            "{x}"
        );
    }
    // A flight being processed is not deleted under the worker's feet.
    process(&e, keep).await;
    store.claim_job(60).unwrap().unwrap();
    let r = e
        .delete(&format!("/api/v1/flights/{keep}"), e.token("a", "admin"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn findings_come_in_pages_when_asked() {
    let e = env();
    let flight = e.create_flight("a", "pages").await;
    let store = db(&e);
    e.multipart(flight, e.token("a", "crew"), &[("DJI_0001.JPG", photo(1))])
        .await;
    process(&e, flight).await;
    let job = store.claim_job(60).unwrap().unwrap();
    let findings = (0..5)
        .map(|i| {
            let lon = 24.8 + i as f64 * 0.001;
            common::typed_finding(
                &format!("F{i}"),
                "crack",
                "low",
                square(lon, 60.2),
                "DJI_0001.JPG",
            )
        })
        .collect();
    store
        .complete_job(
            &job,
            &JobResult {
                output_dir: format!("flights/{flight}/out-1-1"),
                findings,
                rejected: vec![],
            },
        )
        .unwrap();
    let viewer = e.token("a", "viewer");
    let mut uri = "/api/v1/findings.geojson?class=crack&limit=2".to_string();
    let mut pages = Vec::new();
    loop {
        let r = e.get(&uri, viewer).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let ids: Vec<String> = r.json()["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["properties"]["flight_finding_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        pages.push(ids);
        match r.header("link") {
            Some(link) => {
                let next = link.trim_start_matches('<').split('>').next().unwrap();
                assert!(link.ends_with("rel=\"next\""), "{link}");
                assert!(next.contains("class=crack"), "filters kept: {next}");
                assert_eq!(r.json()["next"], json!(next));
                uri = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, [vec!["F0", "F1"], vec!["F2", "F3"], vec!["F4"]]);
    let all = e
        .get(
            &format!("/api/v1/flights/{flight}/findings.geojson"),
            viewer,
        )
        .await;
    assert_eq!(
        all.json()["features"].as_array().unwrap().len(),
        5,
        "no limit: all"
    );
    for bad in ["limit=0", "limit=x", "after=-1", "limit=100000"] {
        let r = e
            .get(&format!("/api/v1/findings.geojson?{bad}"), viewer)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// A 1 m square outline at `lon`, `lat` (WGS 84), closed.
fn square(lon: f64, lat: f64) -> Vec<[f64; 2]> {
    let d = 0.00001;
    vec![
        [lon, lat],
        [lon + d, lat],
        [lon + d, lat + d],
        [lon, lat + d],
        [lon, lat],
    ]
}
