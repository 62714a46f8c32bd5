//! Streamed answers under admission control (issue 11): a streamed body gives back its
//! request place once its head is ready, and holds a stream place
//! (`NetLimits::max_active_streams`) from before its head is sent until its body is
//! written, or dropped because the client went away. Through the real listener
//! (`serve_on`) on loopback; the stream's pieces come from the test, so each step is
//! decided by the test, not by timing.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use besikta_server::{serve_on, NetLimits};
use hyper::body::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Each stream's pieces, by the number in its path, handed to the handler once.
type Feeds = Arc<Mutex<HashMap<u32, mpsc::Receiver<Bytes>>>>;

/// `GET /stream/{n}`: a body of unknown size, each piece as the test sends it on feed
/// `n`, ending when the test drops its sender.
async fn stream(State(feeds): State<Feeds>, Path(n): Path<u32>) -> Body {
    let rx = feeds.lock().unwrap().remove(&n).expect("a feed per stream");
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|piece| (Ok::<_, std::convert::Infallible>(piece), rx))
    }))
}

/// Longest wait for something that must come: generous for a loaded machine.
const MUST: Duration = Duration::from_secs(30);
/// How long something that must not come is given to come anyway. Cannot fail a correct
/// server: a late answer is not there either way.
const MUST_NOT: Duration = Duration::from_millis(300);

/// Sends `GET path` on a new connection (kept open).
async fn get_on_new_connection(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    s
}

/// Reads into `seen` until it contains `want`, within `limit`; whether it came.
async fn read_until(s: &mut TcpStream, seen: &mut Vec<u8>, want: &str, limit: Duration) -> bool {
    let found = |seen: &[u8]| String::from_utf8_lossy(seen).contains(want);
    let _ = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        while !found(seen) {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    found(seen)
}

/// A quick answer (bytes in memory) on its own connection: its status line.
async fn quick(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /quick HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    assert!(read_until(&mut s, &mut seen, "quick answer", MUST).await);
    String::from_utf8_lossy(&seen)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_holds_a_stream_place_until_written_and_no_request_place() {
    let feeds: Feeds = Arc::default();
    let mut senders = HashMap::new();
    for n in 1..=3 {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        feeds.lock().unwrap().insert(n, rx);
        senders.insert(n, tx);
    }
    let app = Router::new()
        .route("/stream/{n}", get(stream))
        .route("/quick", get(|| async { "quick answer\n" }))
        .with_state(feeds);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = NetLimits {
        max_active_requests: 1,
        max_active_streams: 1,
        ..NetLimits::default()
    };
    tokio::spawn(serve_on(listener, app, limits, std::future::pending()));

    // Stream 1 gets its head and a first piece, and stays open.
    let mut one = get_on_new_connection(addr, "/stream/1").await;
    let mut seen_one = Vec::new();
    assert!(read_until(&mut one, &mut seen_one, "\r\n\r\n", MUST).await);
    let head = String::from_utf8_lossy(&seen_one).to_string();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "a streamed body: {head}"
    );
    senders[&1]
        .send(Bytes::from_static(b"piece-1a"))
        .await
        .unwrap();
    assert!(read_until(&mut one, &mut seen_one, "piece-1a", MUST).await);

    // Its request place is free again: a quick answer (the only request place) comes
    // while stream 1 is still being written.
    assert_eq!(quick(addr).await, "HTTP/1.1 200 OK");

    // Stream 2 waits for the only stream place: no head while stream 1 is open, and it
    // waits without a request place (quick answers still come).
    let mut two = get_on_new_connection(addr, "/stream/2").await;
    let mut seen_two = Vec::new();
    assert!(
        !read_until(&mut two, &mut seen_two, "HTTP/1.1", MUST_NOT).await,
        "stream 2 answered while stream 1 held the stream place: {:?}",
        String::from_utf8_lossy(&seen_two)
    );
    assert_eq!(quick(addr).await, "HTTP/1.1 200 OK");

    // Stream 1 written to its end (the final chunk): stream 2 gets the place and its head.
    senders[&1]
        .send(Bytes::from_static(b"piece-1b"))
        .await
        .unwrap();
    drop(senders.remove(&1));
    assert!(read_until(&mut one, &mut seen_one, "piece-1b\r\n0\r\n\r\n", MUST).await);
    assert!(read_until(&mut two, &mut seen_two, "\r\n\r\n", MUST).await);
    assert!(String::from_utf8_lossy(&seen_two).starts_with("HTTP/1.1 200 OK"));

    // Stream 3 waits behind stream 2, whose client goes away mid-body: once the server
    // finds the connection gone (its next piece cannot be written), the place is free.
    let mut three = get_on_new_connection(addr, "/stream/3").await;
    let mut seen_three = Vec::new();
    assert!(!read_until(&mut three, &mut seen_three, "HTTP/1.1", MUST_NOT).await);
    drop(two);
    for _ in 0..4 {
        // The first write after the close may still succeed (the peer's reset comes
        // back with it); a later one fails, or the feed is dropped with the body.
        if senders[&2]
            .send(Bytes::from(vec![b'x'; 64 * 1024]))
            .await
            .is_err()
        {
            break;
        }
        if read_until(&mut three, &mut seen_three, "\r\n\r\n", MUST_NOT).await {
            break;
        }
    }
    assert!(
        read_until(&mut three, &mut seen_three, "\r\n\r\n", MUST).await,
        "stream 3 never got the place of the dropped stream 2"
    );
    assert!(String::from_utf8_lossy(&seen_three).starts_with("HTTP/1.1 200 OK"));
    senders[&3]
        .send(Bytes::from_static(b"piece-3a"))
        .await
        .unwrap();
    assert!(read_until(&mut three, &mut seen_three, "piece-3a", MUST).await);
}
