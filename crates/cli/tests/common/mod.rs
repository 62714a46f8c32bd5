//! Helpers shared by the command-line tests: where the fixtures are and how to run `besikta`.
// Each test file uses only some of these.
#![allow(dead_code)]

pub mod findings;
pub mod http;
pub mod process;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The Brighton fixture photos.
pub fn brighton() -> PathBuf {
    fixtures().join("brighton")
}

/// Runs the `besikta` binary built for these tests and waits for it.
pub fn besikta(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_besikta"))
        .args(args)
        .output()
        .expect("the besikta binary runs")
}

/// `besikta <subcommand> <an empty folder> -o <out>` fails saying there are no usable
/// photos, and writes no output.
pub fn assert_no_photos_is_an_error(subcommand: &str, out_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(out_name);
    let o = besikta(&[
        subcommand,
        dir.path().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no usable photos"), "{err}");
    assert!(!out.exists());
}

/// The names of the job product folders (`out-<job>-<attempt>`) of a flight in `data`.
pub fn output_folders(data: &Path, flight: i64) -> Vec<String> {
    std::fs::read_dir(data.join(format!("flights/{flight}")))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("out-"))
        .collect()
}
