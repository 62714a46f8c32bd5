//! `/healthz` of a real `besikta serve`: answered from the background checks, which still
//! show a part that fails (and recovers): within a check round (every 0.5 s; a round older than 5.5 s answers 503)
//! (polled here for up to 10 s, so a loaded machine does not fail it).

mod common;

use common::http::request;
use common::process::{admin_token, besikta_command, coarse_models, start_serve};
use std::time::{Duration, Instant};

/// Polls `/healthz` until `want` holds for its status and text, for at most `limit`;
/// returns the last answer.
fn health_until(addr: &str, limit: Duration, want: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let start = Instant::now();
    loop {
        let (status, _, body) = request(addr, "GET", "/healthz", "", &[], b"", limit);
        let text = String::from_utf8_lossy(&body).to_string();
        if want(status, &text) || start.elapsed() > limit {
            return (status, text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn healthz_follows_a_failing_part_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin_token(&data, None);
    let mut cmd = besikta_command();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--threads", "2", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(coarse_models());
    let (_server, addr) = start_serve(cmd);
    let limit = Duration::from_secs(10);
    assert_eq!(
        health_until(&addr, limit, |s, _| s == 200),
        (200, "ok\n".to_string())
    );

    // The data folder's flights/ goes away: the checks see it, /healthz says which part.
    let flights = data.join("flights");
    std::fs::rename(&flights, data.join("moved")).unwrap();
    let (status, text) = health_until(&addr, limit, |s, _| s == 503);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("database: ok\n"), "{text}");
    assert!(text.contains("storage: cannot read"), "{text}");

    // Back in place: healthy again.
    std::fs::rename(data.join("moved"), &flights).unwrap();
    assert_eq!(
        health_until(&addr, limit, |s, _| s == 200),
        (200, "ok\n".to_string())
    );
}
