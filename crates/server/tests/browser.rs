//! The web pages in headless Chromium: upload the Brighton fixture flight through the
//! upload page, process it, see the findings on the map, open one, save a screenshot.
//! Needs Debian's `chromium` and `npm ci` in `web/` (playwright-core); fails, not skips,
//! when they are missing.

mod common;

use common::{env, fixture, repo_root};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_process_and_open_a_finding_in_chromium() {
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = e.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let workers = besikta_server::Workers::start(&e.state);

    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("besikta-map.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut cmd = Command::new("node");
    cmd.arg(web.join("test/browser.mjs"))
        .arg(format!("http://{addr}"))
        .arg(e.token("a", "admin"));
    for p in ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"] {
        cmd.arg(fixture(&format!("brighton/{p}")));
    }
    cmd.arg("--screenshot")
        .arg(&screenshot)
        .env("CHROMIUM", &chromium);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    workers.stop();
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    let png = image::open(&screenshot).expect("a screenshot was saved");
    assert_eq!((png.width(), png.height()), (1280, 800));
}
