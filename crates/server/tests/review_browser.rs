//! The review queue in headless Chromium: the Brighton fixture flight is uploaded and
//! processed through the API, then a planner reviews findings with the keyboard only and
//! the work-order export changes with each decision (`web/test/review.mjs`); a screenshot
//! of the queue is saved. Needs Debian's `chromium` and `npm ci` in `web/`; fails, not
//! skips, when they are missing.

mod common;

use axum::http::StatusCode;
use common::{env, fixture, repo_root};
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_findings_with_the_keyboard_and_the_work_orders_follow() {
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
    let flight = e.create_flight("a", "review test flight").await;
    let photos: Vec<(&str, Vec<u8>)> = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]
        .into_iter()
        .map(|p| (p, std::fs::read(fixture(&format!("brighton/{p}"))).unwrap()))
        .collect();
    let r = e.multipart(flight, e.token("a", "crew"), &photos).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = e
        .post_json(
            &format!("/api/v1/flights/{flight}/process"),
            e.token("a", "crew"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let workers = besikta_server::Workers::start(&e.state);
    let started = Instant::now();
    loop {
        let f = e
            .get(&format!("/api/v1/flights/{flight}"), e.token("a", "viewer"))
            .await
            .json();
        match f["state"].as_str().unwrap() {
            "done" => break,
            "failed" => panic!("processing failed: {}", f["error"]),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "processing took over 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    workers.stop();
    println!("processed in {:.0} s", started.elapsed().as_secs_f64());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = e.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("besikta-review.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut cmd = Command::new("node");
    cmd.arg(web.join("test/review.mjs"))
        .arg(format!("http://{addr}"))
        .arg(e.token("a", "planner"))
        .arg(flight.to_string())
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
        "review browser test failed:\n{stdout}\n{stderr}"
    );
    let png = image::open(&screenshot).expect("a screenshot was saved");
    assert_eq!((png.width(), png.height()), (1280, 800));
}
