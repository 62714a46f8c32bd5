//! The listener's limits over real sockets: a slow-loris client (headers that never end)
//! and an idle keep-alive connection are cut off after the header timeout while others are
//! served; connections over the limit are answered 503; a request other than an upload
//! must be answered within the request timeout, while an upload may take longer as long
//! as its bytes keep coming, and is cut when they stop.

mod common;

use besikta_server::{serve_on, NetLimits};
use common::{env, fixture, tus_patch_head, Env};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(e: &Env, limits: NetLimits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = e.app.clone();
    tokio::spawn(serve_on(listener, app, limits, std::future::pending()));
    addr
}

fn limits() -> NetLimits {
    NetLimits {
        header_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        body_idle_timeout: Duration::from_secs(1),
        max_connections: 6,
        drain_timeout: Duration::from_secs(1),
        ..NetLimits::default()
    }
}

/// Reads until the server closes the connection; the bytes and how long it took.
async fn until_closed(
    s: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: Duration,
) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, start.elapsed()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after {limit:?}"),
        }
    }
}

/// `GET /healthz` on a fresh connection: status and time taken.
async fn healthz(addr: SocketAddr) -> (String, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (bytes, _) = until_closed(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&bytes).to_string();
    (
        text.lines().next().unwrap_or("").to_string(),
        start.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_others_are_served() {
    let e = env();
    let addr = start(&e, limits()).await;
    // Three slow-loris clients: a request line and half a header, then nothing.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    // One idle keep-alive connection after a complete request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    // Meanwhile everyone else is served, quickly.
    for _ in 0..10 {
        let (status, took) = healthz(addr).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
    for s in &mut slow {
        let (bytes, took) = until_closed(s, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(3), "cut after {took:?}");
        // Closed without an answer to the unfinished request (hyper may send 408).
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    let (bytes, took) = until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 200 OK"));
    assert!(
        took < Duration::from_secs(3),
        "idle connection kept {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_refused_until_slots_free() {
    let e = env();
    let addr = start(
        &e,
        NetLimits {
            max_connections: 3,
            ..limits()
        },
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let s = TcpStream::connect(addr).await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, took) = healthz(addr).await;
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(
        took < Duration::from_millis(500),
        "refused at once: {took:?}"
    );
    // The silent connections are cut by the header timeout; then there is room again.
    for s in &mut held {
        until_closed(s, Duration::from_secs(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(healthz(addr).await.0, "HTTP/1.1 200 OK");
}

/// The offset the server reports for a tus upload.
async fn offset(e: &Env, path: &str, crew: &str) -> usize {
    let r = e.tus_head(path, crew).await;
    r.header("upload-offset")
        .unwrap_or_else(|| panic!("HEAD {path}: {}", r.status))
        .parse::<usize>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_may_outlast_the_request_timeout_while_bytes_keep_coming() {
    let e = env();
    let addr = start(&e, limits()).await;
    let flight = e.create_flight("a", "slow").await;
    let crew = e.token("a", "crew").to_string();
    let photo = std::fs::read(fixture("brighton/DJI_0018.JPG")).unwrap();
    let created = e
        .tus_create(flight, &crew, "DJI_0018.JPG", photo.len())
        .await;
    let path = created.header("location").unwrap().to_string();
    // A third of the photo in 4 pieces 0.6 s apart: 1.8 s in all, past the 1 s request
    // timeout, but never 1 s without bytes. Then the sender stops: cut after 1 s idle.
    let third = photo.len() / 3;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(tus_patch_head(&path, &crew, 0, photo.len()).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    for piece in photo[..third].chunks(third.div_ceil(4)) {
        s.write_all(piece).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let (bytes, _) = until_closed(&mut s, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes).to_string();
    assert!(
        started.elapsed() > Duration::from_millis(2400),
        "not cut by the request timeout"
    );
    // The bytes that came are kept and the answer (if the server still sends one) says so.
    assert!(
        text.is_empty() || text.contains(&format!("upload-offset: {third}\r\n")),
        "{text}"
    );
    assert_eq!(
        offset(&e, &path, &crew).await,
        third,
        "every byte that came is kept"
    );

    // The rest, slowly but steadily: the upload completes.
    let rest = &photo[third..];
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(tus_patch_head(&path, &crew, third, rest.len()).as_bytes())
        .await
        .unwrap();
    for piece in rest.chunks(rest.len().div_ceil(3)) {
        s.write_all(piece).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let (bytes, _) = until_closed(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&bytes).to_string();
    assert!(text.starts_with("HTTP/1.1 204"), "{text}");
    let f = e
        .get(&format!("/api/v1/flights/{flight}"), &crew)
        .await
        .json();
    assert_eq!(f["photos"], 1, "the photo is stored: {f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests_must_finish_within_the_request_timeout() {
    let e = env();
    let addr = start(&e, limits()).await;
    let crew = e.token("a", "crew").to_string();
    // A JSON body trickled in, a byte every 0.3 s: never idle for 1 s, but the request
    // is not done after the 1 s request timeout.
    let body = br#"{"name": "a flight named slowly"}"#;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "POST /api/v1/flights HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {crew}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (mut read, mut write) = s.into_split();
    tokio::spawn(async move {
        for b in body {
            if write.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let (bytes, _) = until_closed(&mut read, Duration::from_secs(15)).await;
    let text = String::from_utf8_lossy(&bytes).to_string();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("longer than 1 s"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at the timeout, not when the body ended"
    );
}
