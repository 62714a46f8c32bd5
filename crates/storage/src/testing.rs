//! A throw-away S3-compatible server for tests: moto (`moto_server`, Apache-2.0, from
//! PyPI; `scripts/setup` installs it into `.cache/pyvenv`) on a free loopback port, with
//! one bucket. Stopped (killed) when dropped.

use crate::{Storage, StorageError};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server with one bucket.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    bucket: String,
}

/// The `moto_server` program: `BESIKTA_MOTO_SERVER`, else `.cache/pyvenv/bin/moto_server`
/// of this checkout, else `moto_server` on the PATH.
pub fn moto_program() -> PathBuf {
    if let Some(p) = std::env::var_os("BESIKTA_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/pyvenv/bin/moto_server");
    if local.is_file() {
        return local;
    }
    PathBuf::from("moto_server")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One plain HTTP/1.1 request (moto checks no signatures); returns the status code.
fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text}")))
}

impl MotoServer {
    /// Starts moto on a free loopback port and creates `bucket`.
    pub fn start(bucket: &str) -> Result<MotoServer, String> {
        let program = moto_program();
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e}; run scripts/setup (it installs moto[server] into .cache/pyvenv)",
                    program.display()
                )
            })?;
        let mut server = MotoServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            bucket: bucket.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{} exited at start: {status}", program.display()));
            }
            match http(server.addr, "PUT", &format!("/{bucket}")) {
                Ok(200) => return Ok(server),
                Ok(code) => {
                    return Err(format!(
                        "moto refused to create bucket {bucket}: HTTP {code}"
                    ))
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(e) => return Err(format!("moto did not answer on {}: {e}", server.addr)),
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, prefix.trim_matches('/'))
    }

    /// The AWS environment a client of this server needs (for child processes, or
    /// [`Storage::open_with`]).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A client of this server's bucket under `prefix`.
    pub fn storage(&self, prefix: &str) -> Result<Storage, StorageError> {
        Storage::open_with(Some(&self.url(prefix)), Path::new("."), self.env())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
