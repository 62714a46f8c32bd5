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
