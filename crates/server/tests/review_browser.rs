//! The review queue in headless Chromium: the Brighton fixture flight is uploaded and
//! processed through the API, then a planner reviews findings with the keyboard only and
//! the work-order export changes with each decision (`web/test/review.mjs`); a screenshot
//! of the queue is saved. Needs Debian's `chromium` and `npm ci` in `web/`; fails, not
//! skips, when they are missing.

mod common;

use axum::http::StatusCode;
use common::{brighton_photos, env, Browser};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_findings_with_the_keyboard_and_the_work_orders_follow() {
    let browser = Browser::find();
    let e = env();
    let flight = e.create_flight("a", "review test flight").await;
    let photos = brighton_photos(&["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]);
    let r = e.multipart(flight, e.token("a", "crew"), &photos).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = e.process(flight, e.token("a", "crew")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let workers = besikta_server::Workers::start(&e.state);
    let started = Instant::now();
    let f = e
        .wait_for_flight(flight, e.token("a", "viewer"), Duration::from_secs(900))
        .await;
    assert_eq!(f["state"], "done", "processing failed: {}", f["error"]);
    workers.stop();
    println!("processed in {:.0} s", started.elapsed().as_secs_f64());

    let addr = e.serve_on_loopback().await;
    let args = vec![
        format!("http://{addr}").into(),
        e.token("a", "planner").into(),
        flight.to_string().into(),
    ];
    browser
        .run(
            "review.mjs",
            args,
            "besikta-review.png",
            "review browser test",
        )
        .await;
}
