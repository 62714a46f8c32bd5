//! `besikta serve --mosaic-gsd-cm N` as a real process: the flag reaches the server's jobs,
//! so a processed flight gets its orthomosaic product (`mosaic.tif`) and the map's mosaic
//! endpoint says it is available; without the flag a job makes none.

mod common;

use common::http::json;
use common::process::{
    admin_token, besikta_command, coarse_models, queued_brighton_flight, start_serve, wait_for,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `mosaic.tif` files under `dir`.
fn mosaics(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "mosaic.tif") {
                out.push(p);
            }
        }
    }
    out
}

/// Serves `data` with `flags`, processes the three Brighton photos to the end; whether the
/// flight's mosaic is available, and the mosaic files written.
fn process_with(data: &Path, flags: &[&str]) -> (serde_json::Value, Vec<PathBuf>) {
    let token = admin_token(data, None);
    let mut cmd = besikta_command();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--workers", "1", "--data"])
        .arg(data)
        .arg("--models")
        .arg(coarse_models())
        .args(flags);
    let (_serve, addr) = start_serve(cmd);
    let (flight, _job) = queued_brighton_flight(&addr, &token, "serve-mosaic-test");
    let path = format!("/api/v1/flights/{flight}");
    wait_for(Duration::from_secs(600), Duration::from_millis(250), || {
        let f = json(&addr, "GET", &path, &token, b"");
        assert_ne!(f["state"], "failed", "{f}");
        f["state"] == "done"
    });
    let info = json(&addr, "GET", &format!("{path}/mosaic"), &token, b"");
    (info, mosaics(data))
}

#[test]
fn the_mosaic_flag_reaches_the_servers_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (info, files) = process_with(&dir.path().join("with"), &["--mosaic-gsd-cm", "20"]);
    assert_eq!(info["available"], true, "{info}");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(std::fs::metadata(&files[0]).unwrap().len() > 1000);

    let (info, files) = process_with(&dir.path().join("without"), &[]);
    assert_eq!(info["available"], false, "{info}");
    assert!(files.is_empty(), "{files:?}");
}
