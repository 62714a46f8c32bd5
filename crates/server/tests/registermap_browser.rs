//! The register layer of the web map in headless Chromium: the OpenStreetMap fixture is
//! uploaded through the API as the organisation's register, then `web/test/registers.mjs`
//! zooms the map in on central Helsinki, checks the assets drawn are those the API serves
//! for the view, hovers a road and reads its name and id; a screenshot is saved. Needs
//! Debian's `chromium` and `npm ci` in `web/`; fails, not skips, when they are missing.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{env, fixture, repo_root};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_draws_the_register_when_zoomed_in_and_hover_names_the_asset() {
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
    let e = env();
    let r = e
        .send(
            Method::PUT,
            "/api/v1/registers/osm",
            Some(e.token("a", "admin")),
            &[],
            Body::from(std::fs::read(fixture("registers/helsinki.osm.pbf")).unwrap()),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = e.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let screenshot =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("besikta-registers.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut cmd = Command::new("node");
    cmd.arg(web.join("test/registers.mjs"))
        .arg(format!("http://{addr}"))
        .arg(e.token("a", "viewer"))
        // Central Helsinki, by the university (the fixture's busiest part).
        .args(["24.9475", "60.1695"])
        .arg("--screenshot")
        .arg(&screenshot)
        .env("CHROMIUM", &chromium);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "registers browser test failed:\n{stdout}\n{stderr}"
    );
    let png = image::open(&screenshot).expect("a screenshot was saved");
    assert_eq!((png.width(), png.height()), (1280, 800));
    println!("screenshot: {}", screenshot.display());
}
