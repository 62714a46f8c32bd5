//! Helpers shared by the server's integration tests: a fresh data folder with two
//! organisations and a token per role, and one-request calls through the router.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use besikta_server::{app, create_token_with, AppState, ServerConfig};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::path::PathBuf;
use tower::ServiceExt;

pub const ROLES: [&str; 4] = ["crew", "viewer", "planner", "admin"];

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures").join(name)
}

/// The baseline crack model (fixtures/models) under the test manifest `fixtures/models/coarse` (68 mm per
/// pixel): the Brighton photos (17 mm per pixel) are then inferred at a quarter of their
/// size, so three photos give real detections and findings in well under a minute. The
/// findings are not trustworthy defects (the model was trained at 1 mm per pixel); these
/// tests check the service's plumbing, the model's quality is tested elsewhere.
pub fn coarse_crack_models() -> PathBuf {
    fixture("models/coarse")
}

/// The Brighton fixture photos `names` with their bytes, for [`Env::multipart`].
pub fn brighton_photos<'n>(names: &[&'n str]) -> Vec<(&'n str, Vec<u8>)> {
    names
        .iter()
        .map(|n| {
            (
                *n,
                std::fs::read(fixture(&format!("brighton/{n}"))).unwrap(),
            )
        })
        .collect()
}

/// Chromium and `web/`'s playwright-core for the browser tests, checked: the tests fail,
/// not skip, when they are missing.
pub struct Browser {
    pub chromium: String,
    pub web: PathBuf,
}

impl Browser {
    pub fn find() -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&chromium).is_file(),
            "the browser test needs Chromium at {chromium}: apt-get install chromium (or set CHROMIUM)"
        );
        let web = repo_root().join("web");
        assert!(
            web.join("node_modules/playwright-core").is_dir(),
            "the browser test needs playwright-core: run `npm ci` in {}",
            web.display()
        );
        Browser { chromium, web }
    }

    /// Runs `node web/test/<script> <args> --screenshot <png>` (`png` in the target's
    /// test folder) with Chromium, prints its output, and asserts it succeeded (`what`
    /// names the test) and saved a 1280 x 800 screenshot; returns the screenshot's path.
    pub async fn run(
        &self,
        script: &str,
        args: Vec<std::ffi::OsString>,
        png: &str,
        what: &str,
    ) -> PathBuf {
        let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(png);
        let _ = std::fs::remove_file(&screenshot);
        let mut cmd = std::process::Command::new("node");
        cmd.arg(self.web.join("test").join(script))
            .args(args)
            .arg("--screenshot")
            .arg(&screenshot)
            .env("CHROMIUM", &self.chromium);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{stdout}");
        assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
        let png = image::open(&screenshot).expect("a screenshot was saved");
        assert_eq!((png.width(), png.height()), (1280, 800));
        screenshot
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub app: Router,
    /// `tokens["a"]["crew"]`: organisation `a` (Espoo) or `b` (Vantaa), then role.
    pub tokens: HashMap<&'static str, HashMap<&'static str, String>>,
    /// The database URL ([`test_database`]); `None`: SQLite in `dir`.
    pub database: Option<String>,
}

/// The database of a test's server: with `BESIKTA_TEST_DATABASE=postgres`, a fresh
/// database in this test process's throw-away PostgreSQL cluster
/// (`besikta_store::testing`); otherwise `None`, SQLite in the data folder.
pub fn test_database() -> Option<String> {
    match std::env::var("BESIKTA_TEST_DATABASE").as_deref() {
        Ok("postgres") => Some(
            besikta_store::testing::PgCluster::shared()
                .and_then(|c| c.fresh_database())
                .unwrap_or_else(|e| panic!("BESIKTA_TEST_DATABASE=postgres: {e}")),
        ),
        Ok("sqlite") | Ok("") | Err(_) => None,
        Ok(other) => panic!("BESIKTA_TEST_DATABASE={other}: use postgres or sqlite"),
    }
}

pub fn env() -> Env {
    env_with(|_| {})
}

pub fn env_with(tweak: impl FnOnce(&mut ServerConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let database = test_database();
    let mut tokens = HashMap::new();
    for (key, org) in [("a", "Espoo"), ("b", "Vantaa")] {
        let mut per_role = HashMap::new();
        for role in ROLES {
            per_role.insert(
                role,
                create_token_with(dir.path(), database.as_deref(), org, role, None).unwrap(),
            );
        }
        tokens.insert(key, per_role);
    }
    let models = coarse_crack_models();
    let mut config = ServerConfig::new(dir.path(), models);
    config.database = database.clone();
    tweak(&mut config);
    let on_postgres = config.database.is_some();
    let state = AppState::open(config).unwrap();
    assert_eq!(
        dir.path().join("besikta.db").exists(),
        !on_postgres,
        "the server uses the database the test asked for"
    );
    let app = app(state.clone());
    Env {
        dir,
        state,
        app,
        tokens,
        database,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy), for messages and CSV.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

impl Env {
    /// The server's store, as its handlers see it.
    pub fn store(&self) -> &dyn besikta_store::Store {
        self.state.store()
    }

    pub fn token(&self, org: &str, role: &str) -> &str {
        &self.tokens[org][role]
    }

    pub async fn call(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A request with an optional bearer token and extra headers.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.call(b.body(body.into()).unwrap()).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Reply {
        self.send(Method::GET, uri, Some(token), &[], Body::empty())
            .await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> Reply {
        self.send(Method::DELETE, uri, Some(token), &[], Body::empty())
            .await
    }

    /// A PUT with a JSON body (given as text, so tests can send malformed JSON too).
    pub async fn put_json<'t>(
        &self,
        uri: &str,
        token: impl Into<Option<&'t str>>,
        body: &str,
    ) -> Reply {
        self.send(
            Method::PUT,
            uri,
            token.into(),
            &[("content-type", "application/json")],
            Body::from(body.to_string()),
        )
        .await
    }

    /// Stores findings for a flight of organisation `org` (its name: `Espoo`, `Vantaa`)
    /// through the job queue, as a worker would.
    pub fn store_findings(&self, org: &str, flight: i64, findings: Vec<besikta_store::NewFinding>) {
        let store = self.store();
        let org = store.ensure_org(org, None).unwrap();
        store.enqueue_job(org.id, flight).unwrap();
        let job = store.claim_job(60).unwrap().unwrap();
        let result = besikta_store::JobResult {
            output_dir: format!("flights/{flight}/out-{}-{}", job.id, job.attempt),
            findings,
            rejected: vec![],
        };
        store.complete_job(&job, &result).unwrap();
    }

    /// The flight's findings as its organisation's viewer gets them: (the pipeline's id
    /// `F1`, the finding's id), in the order served.
    pub async fn flight_finding_ids(&self, org: &str, flight: i64) -> Vec<(String, i64)> {
        self.get(
            &format!("/api/v1/flights/{flight}/findings.geojson"),
            self.token(org, "viewer"),
        )
        .await
        .json()["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["properties"]["flight_finding_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    f["id"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    /// Asks for the flight to be processed (`POST .../process`).
    pub async fn process(&self, flight: i64, token: &str) -> Reply {
        self.post_json(
            &format!("/api/v1/flights/{flight}/process"),
            token,
            serde_json::json!({}),
        )
        .await
    }

    /// Polls the flight until it is `done` or `failed` (at most `limit`); the flight.
    pub async fn wait_for_flight(
        &self,
        flight: i64,
        token: &str,
        limit: std::time::Duration,
    ) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            let f = self
                .get(&format!("/api/v1/flights/{flight}"), token)
                .await
                .json();
            if f["state"] == "done" || f["state"] == "failed" {
                return f;
            }
            assert!(
                start.elapsed() < limit,
                "the flight did not finish in {limit:?}: {f}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Asks for the flight to be processed (202), runs the server's workers until it is
    /// `done` (at most 15 minutes; `failed` fails the test) and stops them; the flight.
    pub async fn process_to_done(&self, flight: i64, token: &str) -> serde_json::Value {
        let r = self.process(flight, token).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let workers = besikta_server::Workers::start(&self.state);
        let f = self
            .wait_for_flight(flight, token, std::time::Duration::from_secs(900))
            .await;
        workers.stop();
        assert_eq!(f["state"], "done", "{f}");
        f
    }

    /// The flight's products folders (`flights/<id>/out-<job>-<attempt>`).
    pub fn outputs(&self, flight: i64) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join(format!("flights/{flight}")))
            .unwrap()
            .flatten()
            .map(|d| d.path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("out-"))
            .collect()
    }

    /// The flight's `findings.geojson` as `token` gets it (200 checked).
    pub async fn findings_geojson(&self, flight: i64, token: &str) -> serde_json::Value {
        self.flight_geojson(flight, "findings", token).await
    }

    /// The flight's `<layer>.geojson` (`findings`, `footprints`, ...) as `token` gets it
    /// (200 checked).
    pub async fn flight_geojson(&self, flight: i64, layer: &str, token: &str) -> serde_json::Value {
        let r = self
            .get(&format!("/api/v1/flights/{flight}/{layer}.geojson"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }

    /// Serves the router on a loopback port (for clients outside the process: a
    /// browser, a raw socket); its address.
    pub async fn serve_on_loopback(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = self.app.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// Creates a tus upload of `name` (`length` bytes) in the flight; the reply (its
    /// `location` header is the upload's URI).
    pub async fn tus_create(&self, flight: i64, token: &str, name: &str, length: usize) -> Reply {
        use base64::Engine as _;
        let name = base64::engine::general_purpose::STANDARD.encode(name);
        self.send(
            Method::POST,
            &format!("/api/v1/flights/{flight}/uploads"),
            Some(token),
            &[
                ("tus-resumable", "1.0.0"),
                ("upload-length", &length.to_string()),
                ("upload-metadata", &format!("filename {name}")),
            ],
            Body::empty(),
        )
        .await
    }

    /// `HEAD` of a tus upload (its `upload-offset` header is what the server kept).
    pub async fn tus_head(&self, uri: &str, token: &str) -> Reply {
        self.send(
            Method::HEAD,
            uri,
            Some(token),
            &[("tus-resumable", "1.0.0")],
            Body::empty(),
        )
        .await
    }

    pub async fn post_json(&self, uri: &str, token: &str, json: serde_json::Value) -> Reply {
        self.send(
            Method::POST,
            uri,
            Some(token),
            &[("content-type", "application/json")],
            json.to_string(),
        )
        .await
    }

    pub async fn create_flight(&self, org: &str, name: &str) -> i64 {
        let r = self
            .post_json(
                "/api/v1/flights",
                self.token(org, "crew"),
                serde_json::json!({"name": name}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["id"].as_i64().unwrap()
    }

    /// Uploads files as one multipart request.
    pub async fn multipart(&self, flight: i64, token: &str, files: &[(&str, Vec<u8>)]) -> Reply {
        let boundary = "besikta-test-boundary-7d1f";
        let mut body = Vec::new();
        for (name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{name}\"\r\nContent-Type: image/jpeg\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.send(
            Method::POST,
            &format!("/api/v1/flights/{flight}/photos"),
            Some(token),
            &[(
                "content-type",
                &format!("multipart/form-data; boundary={boundary}"),
            )],
            body,
        )
        .await
    }
}

/// The head of a tus `PATCH` sent over a raw socket (`Connection: close`).
pub fn tus_patch_head(path: &str, token: &str, offset: usize, length: usize) -> String {
    format!(
        "PATCH {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n"
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A typed finding with `ring` (WGS 84) as its outline and one observation of `photo`
/// (pixel box 1900,1075 - 2100,1175), as a finished job stores it.
#[allow(dead_code)]
pub fn typed_finding(
    id: &str,
    class: &str,
    severity: &str,
    ring: Vec<[f64; 2]>,
    photo: &str,
) -> besikta_store::NewFinding {
    use besikta_core::finding::{Finding, Observation};
    let n = ring.len().max(1) as f64;
    let centroid = [
        ring.iter().map(|p| p[0]).sum::<f64>() / n,
        ring.iter().map(|p| p[1]).sum::<f64>() / n,
    ];
    let observation = Observation {
        photo: photo.into(),
        class: class.into(),
        asset_kind: besikta_core::AssetKind::Road,
        confidence: 0.9,
        pixel_polygon: vec![[1900.0, 1075.0], [2100.0, 1075.0], [2100.0, 1175.0]],
        pixel_bbox: [1900.0, 1075.0, 2100.0, 1175.0],
        ground_polygon: ring.clone(),
        length_px: None,
        gsd_cm: 1.0,
        view_quality: 1.0,
        position_uncertainty_m: 1.0,
        pose_sigma_m: None,
        sides_grey: None,
        model: None,
    };
    besikta_store::NewFinding::new(Finding {
        id: id.into(),
        class: class.into(),
        asset_kind: besikta_core::AssetKind::Road,
        severity: severity.parse().expect("a severity word"),
        confidence: 0.9,
        length_m: None,
        area_m2: 1.0,
        polygon: ring,
        centroid,
        asset: None,
        observations: vec![observation],
        best: 0,
        views: 1,
        support: 1,
    })
}

/// A finding of `class` on road `asset` (matched at chainage 10 m), its outline a small
/// square at `lon`, `lat`, with no observations.
pub fn road_finding(
    id: &str,
    class: &str,
    severity: besikta_core::Severity,
    asset: &str,
    lon: f64,
    lat: f64,
) -> besikta_store::NewFinding {
    use besikta_core::finding::{AssetMatch, Finding};
    use besikta_core::AssetKind;
    let d = 0.00002;
    besikta_store::NewFinding::new(Finding {
        id: id.into(),
        class: class.into(),
        asset_kind: AssetKind::Road,
        severity,
        confidence: 0.6,
        length_m: None,
        area_m2: 0.5,
        polygon: vec![
            [lon, lat],
            [lon + d, lat],
            [lon + d, lat + d],
            [lon, lat + d],
            [lon, lat],
        ],
        centroid: [lon + d / 2.0, lat + d / 2.0],
        asset: Some(AssetMatch {
            asset_id: asset.into(),
            asset_name: Some(format!("Road {asset}")),
            asset_kind: AssetKind::Road,
            chainage_m: Some(10.0),
            offset_m: Some(0.5),
            distance_m: 0.0,
            asset_area_m2: Some(1000.0),
        }),
        observations: vec![],
        best: 0,
        views: 1,
        support: 1,
    })
}

/// A view of a crack in `photo` (a 200 x 100 pixel box with its top-left corner at `x`,
/// `y`, 1.7 cm per pixel), as a finding's observation.
pub fn crack_view(photo: &str, x: f64, y: f64) -> besikta_core::finding::Observation {
    besikta_core::finding::Observation {
        photo: photo.into(),
        class: "crack".into(),
        asset_kind: besikta_core::AssetKind::Road,
        confidence: 0.7,
        pixel_polygon: vec![],
        pixel_bbox: [x, y, x + 200.0, y + 100.0],
        ground_polygon: vec![],
        length_px: None,
        gsd_cm: 1.7,
        view_quality: 1.0,
        position_uncertainty_m: 1.0,
        pose_sigma_m: None,
        sides_grey: None,
        model: None,
    }
}

/// RFC 4180 records: quoted fields may hold commas, quotes ("") and newlines.
pub fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut row, mut cell, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => cell.push(c),
        }
    }
    records
}
