//! Every command whose reader goes away (`besikta scan ... | head`) exits quietly: no panic,
//! no backtrace, no error message, status 141 (128 + SIGPIPE) as a shell shows for `cat`.
//!
//! The pipe is real: an OS pipe whose reading end is closed before the command starts, so
//! its first write fails every time (a `| head` that has already read its lines).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Runs `besikta args` with stdout (or stderr) into a pipe nobody reads; returns the exit
/// code and what it said on the other stream.
fn with_closed(stream: &str, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_besikta"));
    cmd.args(args)
        .current_dir(fixtures())
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    let out = if stream == "stdout" {
        cmd.stdout(writer).stderr(Stdio::piped()).output().unwrap()
    } else {
        cmd.stderr(writer).stdout(Stdio::piped()).output().unwrap()
    };
    let other = if stream == "stdout" {
        out.stderr
    } else {
        out.stdout
    };
    (
        out.status.code(),
        String::from_utf8_lossy(&other).into_owned(),
    )
}

fn assert_quiet(stream: &str, args: &[&str]) {
    let (code, said) = with_closed(stream, args);
    assert!(
        !said.contains("panicked") && !said.contains("backtrace") && !said.contains("error"),
        "besikta {args:?} with {stream} closed said: {said}"
    );
    assert_eq!(
        code,
        Some(141),
        "besikta {args:?} ({stream} closed): {said}"
    );
}

#[test]
fn scan_as_table_and_json() {
    assert_quiet("stdout", &["scan", "brighton", "broken"]);
    assert_quiet("stdout", &["scan", "brighton", "--format", "json"]);
}

#[test]
fn simulate_evaluate() {
    assert_quiet(
        "stdout",
        &[
            "simulate",
            "--evaluate",
            "sim/truth.geojson",
            "sim/truth.geojson",
        ],
    );
    // Its per-class table goes to stderr.
    assert_quiet(
        "stderr",
        &[
            "simulate",
            "--evaluate",
            "sim/truth.geojson",
            "sim/truth.geojson",
        ],
    );
}

#[test]
fn simulate_with_progress_on_a_closed_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "simulate",
        "--assets",
        "registers/helsinki.osm.pbf",
        "--out",
        out,
        "--photos",
        "2",
        "--width",
        "320",
        "--defects",
        "2",
    ];
    assert_quiet("stderr", &args);
}

#[test]
fn infer_as_table_and_json() {
    for format in ["table", "json"] {
        assert_quiet(
            "stdout",
            &[
                "infer",
                "--model",
                "models/mtscrack_static.toml",
                "cracks/deepcrack_11114.jpg",
                "--gsd-mm",
                "1",
                "--threads",
                "1",
                "--format",
                format,
            ],
        );
    }
}

#[test]
fn process_token_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_quiet(
        "stdout",
        &[
            "process",
            "brighton/DJI_0020.JPG",
            "--models",
            "models/coarse",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let data = dir.path().join("data");
    assert_quiet(
        "stdout",
        &[
            "token",
            "create",
            "--data",
            data.to_str().unwrap(),
            "--org",
            "Espoo",
            "--role",
            "admin",
        ],
    );
    // clap prints help itself and ignores the failed write: quiet, status 0.
    let (code, said) = with_closed("stdout", &["--help"]);
    assert_eq!((code, said.as_str()), (Some(0), ""));
}
