//! `besikta serve --crop-permits N --crop-cache-mb N` as a real process: the flags size the
//! photo crop pool (shown in `/metrics` with the crop counters), the environment variables
//! `BESIKTA_CROP_PERMITS` / `BESIKTA_CROP_CACHE_MB` stay as the fallback, the flags win.

mod common;

use common::http::http;
use common::process::{admin_token, besikta_command, start_serve, Proc};
use std::path::Path;

struct Server {
    _proc: Proc,
    addr: String,
}

fn start(data: &Path, flags: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = besikta_command();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--workers", "0", "--data"])
        .arg(data)
        .args(flags)
        .env_remove("BESIKTA_CROP_PERMITS")
        .env_remove("BESIKTA_CROP_CACHE_MB")
        .envs(env.iter().copied());
    let (proc, addr) = start_serve(cmd);
    Server { _proc: proc, addr }
}

/// The value of an unlabelled metric in `/metrics`.
fn metric(addr: &str, token: &str, name: &str) -> u64 {
    let (status, body) = http(addr, "GET", "/metrics", token, "text/plain", b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn crop_pool_flags_size_the_pool_and_win_over_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data, None);

    let s = start(&data, &["--crop-permits", "1", "--crop-cache-mb", "3"], &[]);
    assert_eq!(metric(&s.addr, &token, "besikta_crop_permits"), 1);
    assert_eq!(
        metric(&s.addr, &token, "besikta_crop_cache_capacity_bytes"),
        3 << 20
    );
    for counter in [
        "besikta_crop_cache_hits_total",
        "besikta_crop_cache_misses_total",
        "besikta_crop_precomputed_served_total",
        "besikta_crop_decodes_total",
    ] {
        assert_eq!(metric(&s.addr, &token, counter), 0, "{counter}");
    }
    drop(s);

    // The environment is the fallback ...
    let env = [
        ("BESIKTA_CROP_PERMITS", "3"),
        ("BESIKTA_CROP_CACHE_MB", "0"),
    ];
    let s = start(&data, &[], &env);
    assert_eq!(metric(&s.addr, &token, "besikta_crop_permits"), 3);
    assert_eq!(
        metric(&s.addr, &token, "besikta_crop_cache_capacity_bytes"),
        0
    );
    drop(s);

    // ... and a flag wins over it.
    let s = start(&data, &["--crop-cache-mb", "5"], &env);
    assert_eq!(metric(&s.addr, &token, "besikta_crop_permits"), 3);
    assert_eq!(
        metric(&s.addr, &token, "besikta_crop_cache_capacity_bytes"),
        5 << 20
    );
}
