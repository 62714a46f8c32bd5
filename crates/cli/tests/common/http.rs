//! A raw HTTP/1.1 client for the tests that run `besikta serve` as a process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One HTTP/1.1 request with `Connection: close`; returns status and body (de-chunked).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let headers = [("Content-Type", content_type.to_string())];
    let (status, _, body) = request(
        addr,
        method,
        path,
        token,
        &headers,
        body,
        Duration::from_secs(60),
    );
    (status, body)
}

/// A JSON request that must succeed (status under 300); the reply's JSON.
pub fn json(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> serde_json::Value {
    json_within(addr, method, path, token, body, Duration::from_secs(60))
}

/// [`json`] waiting at most `timeout` for each read.
pub fn json_within(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
    timeout: Duration,
) -> serde_json::Value {
    let headers = [("Content-Type", "application/json".to_string())];
    let (status, _, bytes) = request(addr, method, path, token, &headers, body, timeout);
    assert!(
        status < 300,
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
}

/// One HTTP/1.1 request (`Connection: close`) with `headers`, waiting at most `timeout`
/// for each read; returns the status, the response head and the body (de-chunked).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a full HTTP response");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.to_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, head, body)
}

/// A tus request (Tus-Resumable: 1.0.0 added) waiting at most `timeout` for each read;
/// returns status and response head.
pub fn tus(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> (u16, String) {
    let mut all = vec![("Tus-Resumable", "1.0.0".to_string())];
    all.extend(headers.iter().cloned());
    let (status, head, _) = request(addr, method, path, token, &all, body, timeout);
    (status, head)
}

/// Standard base64 with padding (tus `Upload-Metadata` values).
pub fn base64_encode(b: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = ((c[0] as u32) << 16)
            | ((*c.get(1).unwrap_or(&0) as u32) << 8)
            | (*c.get(2).unwrap_or(&0) as u32);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[end + 4 + n..];
    }
}
