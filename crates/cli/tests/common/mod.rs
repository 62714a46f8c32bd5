//! Helpers shared by the command-line tests: where the fixtures are and how to run `besikta`.
// Each test file uses only some of these.
#![allow(dead_code)]

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
