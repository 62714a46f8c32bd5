//! `besikta serve` and `besikta worker` as real processes for the tests: a child killed
//! when dropped, the address `serve` listens on, tokens, photo uploads and polling.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The baseline crack model under the test manifest `fixtures/models/coarse` (68 mm per
/// pixel): three Brighton photos give real detections in well under a minute of
/// inference. (The findings are not trustworthy defects; these tests check the service,
/// not the model.)
pub fn coarse_models() -> PathBuf {
    super::fixtures().join("models/coarse")
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Sends SIGTERM and waits (at most `limit`) for the exit.
    pub fn terminate(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() < limit,
                "still running {limit:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The `besikta` binary built for these tests, as a command to add arguments to.
pub fn besikta_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_besikta"))
}

/// Starts `cmd` (a `besikta serve ...`) and reads the address from its first line
/// (`besikta: listening on http://ADDR`); stdout is piped for that, stderr inherited.
pub fn start_serve(mut cmd: Command) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("besikta serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("besikta: listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (Proc(child), addr)
}

/// Starts `cmd` (a `besikta worker ...`), stdout dropped, stderr inherited.
pub fn start_worker(mut cmd: Command) -> Proc {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("besikta worker starts");
    Proc(child)
}

/// An admin token of organisation Brighton made by `besikta token create` in `data`
/// (and the database at `database`, when given).
pub fn admin_token(data: &Path, database: Option<&str>) -> String {
    let mut cmd = besikta_command();
    cmd.args(["token", "create", "--org", "Brighton", "--role", "admin"]);
    if let Some(url) = database {
        cmd.args(["--database", url]);
    }
    let out = cmd.arg("--data").arg(data).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A multipart form with the Brighton photos `names` (field `p`), and its content type.
pub fn photo_form(boundary: &str, names: &[&str]) -> (Vec<u8>, String) {
    let mut form = Vec::new();
    for name in names {
        form.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"p\"; filename=\"{name}\"\r\n\r\n").as_bytes(),
        );
        form.extend_from_slice(&std::fs::read(super::brighton().join(name)).unwrap());
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (form, format!("multipart/form-data; boundary={boundary}"))
}

/// Polls `done` every `step` until it holds; fails after `limit`.
pub fn wait_for(limit: Duration, step: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(step);
    }
}

/// A flight named brighton with the three Brighton fixture photos (one multipart upload
/// with `boundary`), queued for processing through `besikta serve` at `addr`; (flight,
/// job).
pub fn queued_brighton_flight(addr: &str, token: &str, boundary: &str) -> (i64, i64) {
    use super::http::{http, json};
    let flight = json(
        addr,
        "POST",
        "/api/v1/flights",
        token,
        br#"{"name": "brighton"}"#,
    )["id"]
        .as_i64()
        .unwrap();
    let (form, ctype) = photo_form(boundary, &["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]);
    let path = format!("/api/v1/flights/{flight}/photos");
    assert_eq!(http(addr, "POST", &path, token, &ctype, &form).0, 200);
    let job = json(
        addr,
        "POST",
        &format!("/api/v1/flights/{flight}/process"),
        token,
        b"{}",
    )["job"]
        .as_i64()
        .unwrap();
    (flight, job)
}
