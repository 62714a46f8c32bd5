//! The register layer of the web map in headless Chromium: the OpenStreetMap fixture is
//! uploaded through the API as the organisation's register, then `web/test/registers.mjs`
//! zooms the map in on central Helsinki, checks the assets drawn are those the API serves
//! for the view, hovers a road and reads its name and id; a screenshot is saved. Needs
//! Debian's `chromium` and `npm ci` in `web/`; fails, not skips, when they are missing.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{env, fixture, Browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_draws_the_register_when_zoomed_in_and_hover_names_the_asset() {
    let browser = Browser::find();
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
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let addr = e.serve_on_loopback().await;
    let args = vec![
        format!("http://{addr}").into(),
        e.token("a", "viewer").into(),
        // Central Helsinki, by the university (the fixture's busiest part).
        "24.9475".into(),
        "60.1695".into(),
    ];
    let screenshot = browser
        .run(
            "registers.mjs",
            args,
            "besikta-registers.png",
            "registers browser test",
        )
        .await;
    println!("screenshot: {}", screenshot.display());
}
