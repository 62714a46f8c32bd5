//! `--device cuda` on a machine without the CUDA execution provider (the CPU onnxruntime
//! of `scripts/setup`): `process`, `worker` and `serve` refuse at start, naming the device
//! and what to install, before any photo is read, any database is opened or any job taken.

mod common;

use common::*;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The refusal names the device, the missing provider library and the wheel that has it.
fn assert_refused(what: &str, o: &Output) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: stderr: {stderr}");
    for needle in [
        "--device cuda",
        "libonnxruntime_providers_cuda.so",
        "onnxruntime-gpu",
        "--device cpu",
    ] {
        assert!(stderr.contains(needle), "{what}: no {needle:?} in {stderr}");
    }
}

/// Runs `besikta` with a deadline, so a start that is not refused fails the test instead
/// of serving for ever.
fn run_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_besikta"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the besikta binary runs");
    let start = Instant::now();
    while child
        .try_wait()
        .expect("the child can be waited for")
        .is_none()
    {
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child
                .wait_with_output()
                .expect("the killed child is reaped");
            panic!(
                "besikta {args:?} was still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
        .wait_with_output()
        .expect("the child's output is read")
}

#[test]
fn process_with_device_cuda_is_refused_before_any_photo_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = besikta(&[
        "process",
        brighton().to_str().unwrap(),
        "--device",
        "cuda",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_refused("process", &o);
    // Nothing was read or written: no progress line, no output folder.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("reading photos"), "{stderr}");
    assert!(!out.exists(), "the output folder was made");
}

#[test]
fn worker_with_device_cuda_is_refused_before_the_database_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Port 9 (discard) has no database: had the worker gone on, it would say so instead.
    let o = run_within(
        &[
            "worker",
            "--database",
            "postgres://besikta@127.0.0.1:9/none",
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cuda",
        ],
        Duration::from_secs(60),
    );
    assert_refused("worker", &o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("127.0.0.1:9"), "{stderr}");
    assert!(!data.exists(), "the data folder was made");
}

#[test]
fn serve_with_device_cuda_is_refused_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = run_within(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cuda",
        ],
        Duration::from_secs(60),
    );
    assert_refused("serve", &o);
    assert!(!data.exists(), "the data folder was made");
}

#[test]
fn an_unknown_device_is_refused_with_the_choices() {
    let o = besikta(&["process", "x", "-o", "y", "--device", "tpu"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tpu") && stderr.contains("cpu") && stderr.contains("cuda"),
        "{stderr}"
    );
}
