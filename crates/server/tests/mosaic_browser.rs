//! The flight's orthomosaic on the web map in headless Chromium: with `mosaic_gsd_cm` set,
//! the Brighton fixture flight is processed, and the map page adds its mosaic layer under
//! the footprints, fetches its tiles with the token and gets PNG tiles back; a screenshot is
//! saved. Needs Debian's `chromium` and `npm ci` in `web/`; fails, not skips, without them.

mod common;

use axum::http::StatusCode;
use common::{brighton_photos, env_with, Browser};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_draws_the_flights_mosaic_from_its_tiles() {
    let browser = Browser::find();
    let e = env_with(|c| {
        c.mosaic_gsd_cm = Some(10.0);
        c.threads_per_job = 2;
    });
    let flight = e.create_flight("a", "mosaic on the map").await;
    let crew = e.token("a", "crew").to_string();
    let photos = brighton_photos(&["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]);
    assert_eq!(
        e.multipart(flight, &crew, &photos).await.status,
        StatusCode::OK
    );
    let f = e.process_to_done(flight, &crew).await;
    assert_eq!(f["state"], json!("done"), "{f}");
    let viewer = e.token("a", "viewer").to_string();
    let info = e
        .get(&format!("/api/v1/flights/{flight}/mosaic"), &viewer)
        .await
        .json();
    assert_eq!(info["available"], json!(true), "{info}");

    let addr = e.serve_on_loopback().await;
    browser
        .run(
            "mosaic.mjs",
            vec![
                format!("http://{addr}").into(),
                viewer.into(),
                flight.to_string().into(),
            ],
            "besikta-mosaic-map.png",
            "mosaic browser test",
        )
        .await;
}
