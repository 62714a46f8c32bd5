//! The training export through the API (`POST /api/v1/training-export`): admins only (the
//! role x organisation matrix), the ZIP opens with Python's `zipfile` (a reader from
//! outside) and holds exactly the files `besikta export-training` writes for the same
//! organisation and seed (both gather with `besikta_server::training::gather`), with the
//! confirmed finding as a positive chip and the rejected one as a hard negative.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{env, fixture, typed_finding, Env, Reply, ROLES};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

async fn post(e: &Env, uri: &str, token: &str) -> Reply {
    e.send(Method::POST, uri, Some(token), &[], Body::empty())
        .await
}

/// The ZIP's files and their bytes, read by Python's zipfile (CRCs checked by `testzip`).
fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("export.zip");
    std::fs::write(&zip, bytes).unwrap();
    let out = dir.path().join("x");
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  bad = z.testzip()\n\
                  assert bad is None, 'bad CRC in ' + bad\n\
                  z.extractall(sys.argv[2])\n\
                  print(len(z.namelist()))";
    let run = Command::new("python3")
        .args(["-c", script])
        .arg(&zip)
        .arg(&out)
        .output()
        .expect("python3 runs");
    assert!(
        run.status.success(),
        "Python's zipfile cannot read the export: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut files = BTreeMap::new();
    read_tree(&out, &out, &mut files);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        files.len().to_string()
    );
    files
}

fn read_tree(root: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            read_tree(root, &p, out);
        } else {
            let name = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(name, std::fs::read(&p).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_download_the_training_export_the_cli_would_write() {
    let e = env();
    let flight = e.create_flight("a", "north").await;
    let photo = std::fs::read(fixture("brighton/DJI_0018.JPG")).unwrap();
    let r = e
        .multipart(flight, e.token("a", "crew"), &[("DJI_0018.JPG", photo)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Two cracks seen in the photo, stored as a finished job stores them.
    let ring = |lon: f64| {
        vec![
            [lon, 46.8],
            [lon + 0.00002, 46.8],
            [lon + 0.00002, 46.80002],
            [lon, 46.8],
        ]
    };
    e.store_findings(
        "Espoo",
        flight,
        vec![
            typed_finding("F1", "crack", "medium", ring(-92.1), "DJI_0018.JPG"),
            typed_finding("F2", "crack", "low", ring(-92.0999), "DJI_0018.JPG"),
        ],
    );
    let ids: BTreeMap<String, i64> = e
        .flight_finding_ids("a", flight)
        .await
        .into_iter()
        .collect();
    for (name, body) in [
        ("F1", r#"{"state": "confirmed"}"#),
        ("F2", r#"{"state": "rejected", "reason": "not-a-defect"}"#),
    ] {
        let r = e
            .put_json(
                &format!("/api/v1/findings/{}/review", ids[name]),
                e.token("a", "planner"),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    // Roles: admins only; another organisation's flight is not found.
    let uri = format!("/api/v1/training-export?flight={flight}");
    for role in ROLES.into_iter().filter(|r| *r != "admin") {
        for org in ["a", "b"] {
            let r = post(&e, &uri, e.token(org, role)).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{org} {role}: {}",
                r.text()
            );
        }
    }
    assert_eq!(
        post(&e, &uri, e.token("b", "admin")).await.status,
        StatusCode::NOT_FOUND
    );
    for (query, expect) in [
        ("?format=tiff", "png or jpeg"),
        ("?seed=-1", "whole number"),
        ("?flight=x", "whole number"),
    ] {
        let r = post(
            &e,
            &format!("/api/v1/training-export{query}"),
            e.token("a", "admin"),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(r.text().contains(expect), "{query}: {}", r.text());
    }

    let r = post(&e, &uri, e.token("a", "admin")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"training-flight-{flight}.zip\"").as_str())
    );
    let summary: Value = serde_json::from_str(r.header("x-besikta-export").unwrap()).unwrap();
    println!("export: {summary}");
    assert_eq!(summary["flights"], 1);
    assert_eq!(summary["reviewed_views"], 2);
    let served = unzip(&r.body);

    // The same gathering and export the CLI runs, into a folder.
    let dir = tempfile::tempdir().unwrap();
    let org = e.state.store().ensure_org("Espoo", None).unwrap();
    let gathered = besikta_server::training::gather(
        e.state.store(),
        e.state.data_dir(),
        std::slice::from_ref(&org),
        Some(flight),
    )
    .unwrap();
    let manifests: Vec<besikta_infer::Manifest> =
        besikta_pipeline::find_manifests(&e.state.config().models_dir)
            .iter()
            .map(|p| besikta_infer::Manifest::load(p).unwrap())
            .collect();
    let opts = besikta_training::ExportOptions {
        max_pixels: e.state.config().limits.max_photo_pixels,
        ..Default::default()
    };
    let out = dir.path().join("cli");
    besikta_training::export_training(&gathered.input, &manifests, &out, &opts).unwrap();
    let mut local = BTreeMap::new();
    read_tree(&out, &out, &mut local);
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        local.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (name, bytes) in &local {
        assert!(served[name] == *bytes, "{name} differs");
    }

    // The confirmed finding is a positive chip, the rejected one a hard negative.
    let manifest: Value = serde_json::from_slice(&served["manifest.json"]).unwrap();
    let chips = manifest["chips"].as_array().unwrap();
    let kind_of = |id: &str| -> Vec<&str> {
        chips
            .iter()
            .filter(|c| c["finding_id"] == id)
            .map(|c| c["kind"].as_str().unwrap())
            .collect()
    };
    println!(
        "{} files, {} chips: F1 {:?}, F2 {:?}",
        served.len(),
        chips.len(),
        kind_of("F1"),
        kind_of("F2")
    );
    assert!(!kind_of("F1").is_empty() && kind_of("F1").iter().all(|k| *k == "positive"));
    assert!(!kind_of("F2").is_empty() && kind_of("F2").iter().all(|k| *k == "hard_negative"));
    assert!(served.keys().any(|k| k.ends_with("coco.json")));
    assert!(served
        .keys()
        .any(|k| k.contains("/images/") && k.ends_with(".png")));

    // Written to the audit log; nothing left behind in the data folder.
    let audit = e.get("/api/v1/audit", e.token("a", "admin")).await.json();
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "training.exported"));
    let leftovers: Vec<_> = std::fs::read_dir(e.dir.path().join(format!("orgs/{}", org.id)))
        .map(|d| d.filter_map(|x| x.ok()).map(|x| x.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|n| !n.to_string_lossy().starts_with("training-export")),
        "{leftovers:?}"
    );
    // The OpenAPI document describes it.
    let doc = e
        .get("/api/v1/openapi.json", e.token("a", "viewer"))
        .await
        .json();
    assert_eq!(
        doc["paths"]["/api/v1/training-export"]["post"]["description"],
        "Roles: admin."
    );
}
