//! Models per organisation: an admin's upload is checked (ONNX Runtime loads and runs it,
//! its input, output and classes are the server model's) before it is used; the
//! organisation's jobs then record its version, another organisation's jobs keep the
//! server's, and DELETE goes back to the server's. Runs on PostgreSQL too
//! (BESIKTA_TEST_DATABASE=postgres).

mod common;

use axum::http::{Method, StatusCode};
use besikta_server::Workers;
use common::{env, fixture, repo_root, Env, Reply};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const BOUNDARY: &str = "besikta-model-boundary-91c2";

/// Form parts: name and bytes.
type Parts = Vec<(&'static str, Vec<u8>)>;

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

/// `PUT /api/v1/org/models/{model}` with the given form parts.
async fn upload(e: &Env, org: &str, role: &str, model: &str, parts: &[(&str, &[u8])]) -> Reply {
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    e.send(
        Method::PUT,
        &format!("/api/v1/org/models/{model}"),
        Some(e.token(org, role)),
        &[(
            "content-type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )],
        body,
    )
    .await
}

/// The version of `model` the organisation's jobs use, as GET lists it.
async fn in_use(e: &Env, org: &str, model: &str) -> (String, String) {
    let r = e.get("/api/v1/org/models", e.token(org, "viewer")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let list = r.json();
    let m = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == model)
        .unwrap_or_else(|| panic!("{model} not listed: {list}"))
        .clone();
    (
        m["version"].as_str().unwrap().to_string(),
        m["source"].as_str().unwrap().to_string(),
    )
}

/// The coarse test manifest (`fixtures/models/coarse`) under another version.
fn coarse_manifest(version: &str) -> String {
    let text = std::fs::read_to_string(fixture("models/coarse/mtscrack_coarse.toml")).unwrap();
    text.replace("version = \"static\"", &format!("version = \"{version}\""))
}

async fn process(e: &Env, org: &str, flight: i64) {
    let r = e
        .post_json(
            &format!("/api/v1/flights/{flight}/process"),
            e.token(org, "crew"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", text(&r));
}

async fn wait_done(e: &Env, org: &str, flight: i64) -> Value {
    let start = Instant::now();
    loop {
        let f = e
            .get(&format!("/api/v1/flights/{flight}"), e.token(org, "crew"))
            .await
            .json();
        if f["state"] == json!("done") || f["state"] == json!("failed") {
            assert_eq!(f["state"], json!("done"), "{f}");
            return f;
        }
        assert!(start.elapsed() < Duration::from_secs(900), "{f}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every model version the flight's stored findings name, and those of its summary.json.
async fn versions_used(e: &Env, org: &str, flight: i64) -> (Vec<String>, Vec<String>) {
    let served = e
        .get(
            &format!("/api/v1/flights/{flight}/findings.geojson"),
            e.token(org, "viewer"),
        )
        .await
        .json();
    let mut found: Vec<String> = served["features"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["properties"]["observations"].as_array().unwrap().clone())
        .map(|o| o["model_version"].as_str().unwrap().to_string())
        .collect();
    assert!(!found.is_empty(), "the flight has findings: {served}");
    found.sort();
    found.dedup();
    let org_id = e.store().ensure_org(org_name(org), None).unwrap().id;
    let out = e
        .store()
        .flight(org_id, flight)
        .unwrap()
        .and_then(|f| f.output_dir)
        .unwrap();
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(e.dir.path().join(out).join("summary.json")).unwrap(),
    )
    .unwrap();
    let summary_versions = summary["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_str().unwrap().to_string())
        .collect();
    (found, summary_versions)
}

fn org_name(org: &str) -> &'static str {
    match org {
        "a" => "Espoo",
        _ => "Vantaa",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisations_own_model_is_checked_used_and_reset() {
    let e = env();
    let onnx = std::fs::read(fixture("models/mtscrack_static.onnx")).unwrap();
    assert_eq!(
        in_use(&e, "a", "mtscrack").await,
        ("static".into(), "default".into())
    );

    // Documented.
    let doc = e
        .get("/api/v1/openapi.json", e.token("a", "viewer"))
        .await
        .json();
    assert!(
        doc["paths"]["/api/v1/org/models"]["get"].is_object(),
        "{}",
        doc["paths"]
    );
    let one = &doc["paths"]["/api/v1/org/models/{model}"];
    assert!(
        one["put"]["responses"]["422"].is_object() && one["delete"].is_object(),
        "{one}"
    );

    // Only admins upload; an unknown model is 404.
    let good = coarse_manifest("static-espoo-1");
    for role in ["crew", "viewer", "planner"] {
        let r = upload(
            &e,
            "a",
            role,
            "mtscrack",
            &[("manifest", good.as_bytes()), ("model", &onnx)],
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}: {}", text(&r));
    }
    let r = upload(
        &e,
        "a",
        "admin",
        "nosuch",
        &[("manifest", good.as_bytes()), ("model", &onnx)],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", text(&r));

    // Refused uploads, each with its reason; the version in use does not change.
    let roof_onnx = std::fs::read(repo_root().join("models/roof/roof-damage-int8.onnx")).unwrap();
    let roof_as_crack = std::fs::read_to_string(repo_root().join("models/roof/roof-damage.toml"))
        .unwrap()
        .replace("name = \"roof-damage\"", "name = \"mtscrack\"")
        .replace("version = \"0.3.0+int8w7\"", "version = \"roof-1\"");
    let bad: Vec<(&str, Parts, StatusCode, &str)> = vec![
        (
            "not an ONNX file",
            vec![
                ("manifest", good.clone().into_bytes()),
                ("model", b"GIF89a not a model at all".to_vec()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "does not load in ONNX Runtime",
        ),
        (
            "another model's ONNX file under this manifest (other input and output)",
            vec![
                ("manifest", good.clone().into_bytes()),
                ("model", roof_onnx.clone()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "has no input `input_bgr`",
        ),
        (
            "a model with other shapes and classes",
            vec![
                ("manifest", roof_as_crack.into_bytes()),
                ("model", roof_onnx),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "input `image` 256x256, the server's model `input_bgr` 256x256",
        ),
        (
            "the server's own version",
            vec![
                ("manifest", coarse_manifest("static").into_bytes()),
                ("model", onnx.clone()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "version static is the server's own",
        ),
        (
            "a manifest for another model",
            vec![
                (
                    "manifest",
                    good.replace("name = \"mtscrack\"", "name = \"other\"")
                        .into_bytes(),
                ),
                ("model", onnx.clone()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "the manifest names the model",
        ),
        (
            "no ONNX part",
            vec![("manifest", good.clone().into_bytes())],
            StatusCode::BAD_REQUEST,
            "needs two parts",
        ),
    ];
    for (what, parts, status, reason) in &bad {
        let parts: Vec<(&str, &[u8])> = parts.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let r = upload(&e, "a", "admin", "mtscrack", &parts).await;
        assert_eq!(r.status, *status, "{what}: {}", text(&r));
        assert!(text(&r).contains(reason), "{what}: {}", text(&r));
        assert!(
            !text(&r).contains(&e.dir.path().display().to_string()),
            "{what}: no server path in {}",
            text(&r)
        );
        assert_eq!(in_use(&e, "a", "mtscrack").await.0, "static", "{what}");
    }

    // A good upload (the same weights under a version of Espoo's, with a model card).
    let r = upload(
        &e,
        "a",
        "admin",
        "mtscrack",
        &[
            ("manifest", good.as_bytes()),
            ("model", &onnx),
            ("card", b"# Espoo crack model\n"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(r.json()["version"], json!("static-espoo-1"), "{}", text(&r));
    assert_eq!(
        in_use(&e, "a", "mtscrack").await,
        ("static-espoo-1".into(), "organisation".into())
    );
    assert_eq!(
        in_use(&e, "b", "mtscrack").await,
        ("static".into(), "default".into())
    );
    // The same version with other weights is a conflict.
    let mut other = onnx.clone();
    other.extend_from_slice(b"\0");
    let r = upload(
        &e,
        "a",
        "admin",
        "mtscrack",
        &[("manifest", good.as_bytes()), ("model", &other)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", text(&r));

    // Espoo's job uses its model, Vantaa's the server's.
    let photos: Vec<(&str, Vec<u8>)> = ["DJI_0018.JPG", "DJI_0019.JPG"]
        .into_iter()
        .map(|n| (n, std::fs::read(fixture(&format!("brighton/{n}"))).unwrap()))
        .collect();
    let fa = e.create_flight("a", "espoo").await;
    let fb = e.create_flight("b", "vantaa").await;
    for (org, flight) in [("a", fa), ("b", fb)] {
        let r = e.multipart(flight, e.token(org, "crew"), &photos).await;
        assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
        process(&e, org, flight).await;
    }
    let workers = Workers::start(&e.state);
    wait_done(&e, "a", fa).await;
    wait_done(&e, "b", fb).await;
    let a_used = versions_used(&e, "a", fa).await;
    let b_used = versions_used(&e, "b", fb).await;
    assert_eq!(
        a_used,
        (
            vec!["static-espoo-1".to_string()],
            vec!["static-espoo-1".to_string()]
        )
    );
    assert_eq!(
        b_used,
        (vec!["static".to_string()], vec!["static".to_string()])
    );

    // DELETE: back to the server's version; the uploaded one stays listed and selectable.
    let r = e
        .send(
            Method::DELETE,
            "/api/v1/org/models/mtscrack",
            Some(e.token("a", "admin")),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(
        in_use(&e, "a", "mtscrack").await,
        ("static".into(), "default".into())
    );
    process(&e, "a", fa).await;
    wait_done(&e, "a", fa).await;
    workers.stop();
    assert_eq!(
        versions_used(&e, "a", fa).await,
        (vec!["static".to_string()], vec!["static".to_string()])
    );
    let select = |v: &str| json!({ "version": v });
    let put_json = |v: Value| {
        e.send(
            Method::PUT,
            "/api/v1/org/models/mtscrack",
            Some(e.token("a", "admin")),
            &[("content-type", "application/json")],
            v.to_string(),
        )
    };
    let r = put_json(select("nope")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", text(&r));
    assert!(text(&r).contains("static-espoo-1"), "{}", text(&r));
    let r = put_json(select("static-espoo-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let listed = r.json();
    assert_eq!(listed["version"], json!("static-espoo-1"));
    assert_eq!(listed["uploaded"].as_array().unwrap().len(), 1, "{listed}");

    // Audited.
    let audit = e.get("/api/v1/audit", e.token("a", "admin")).await.json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .filter(|a| a.starts_with("org.model."))
        .collect();
    assert_eq!(
        actions,
        [
            "org.model.selected",
            "org.model.selected",
            "org.model.uploaded"
        ],
        "{audit}"
    );
    // Nothing of Espoo's shows in Vantaa's audit.
    let audit_b = e.get("/api/v1/audit", e.token("b", "admin")).await.json();
    assert!(!audit_b.to_string().contains("org.model."), "{audit_b}");
}
