//! The web pages in headless Chromium: upload the Brighton fixture flight through the
//! upload page, process it, see the findings on the map, open one, save a screenshot.
//! Needs Debian's `chromium` and `npm ci` in `web/` (playwright-core); fails, not skips,
//! when they are missing.

mod common;

use common::{env, fixture, Browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_process_and_open_a_finding_in_chromium() {
    let browser = Browser::find();
    let e = env();
    let addr = e.serve_on_loopback().await;
    let workers = besikta_server::Workers::start(&e.state);

    let mut args = vec![
        format!("http://{addr}").into(),
        e.token("a", "admin").into(),
    ];
    for p in ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"] {
        args.push(fixture(&format!("brighton/{p}")).into());
    }
    browser
        .run("browser.mjs", args, "besikta-map.png", "browser test")
        .await;
    workers.stop();
}
