//! A health checker's connection is served on a thread of its own (issue 11): with the
//! service's only worker thread blocked inside a handler (as a store call waiting on a
//! lock blocks it), `/healthz` on a checker's keep-alive connection is still answered,
//! so is `/healthz` on a new connection per probe (the accept loop runs on the health
//! thread), and other requests, on that connection or on a new one, are still served by
//! the service's runtime once it is free. The client side is plain blocking sockets on the test's thread, apart
//! from both runtimes. (No background refresher here: `/healthz` runs its checks in the
//! request, on the health thread's own blocking threads.)

mod common;

use axum::routing;
use besikta_server::{serve_on, NetLimits};
use common::env;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait for an answer that must come: generous for a loaded machine; an answer
/// that waited for the blocked worker would wait until the test lets it go.
const MUST: Duration = Duration::from_secs(30);

/// Sends `GET path` on `s` (keep-alive) and reads its answer.
fn get(s: &mut TcpStream, path: &str) -> (String, String) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    answer(s)
}

/// Reads one answer with a known length: its status line and body.
fn answer(s: &mut TcpStream) -> (String, String) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .expect("a content-length");
            if body.len() >= length {
                let status = head.lines().next().unwrap_or_default().to_string();
                return (status, body[..length].to_string());
            }
        }
        let n = s
            .read(&mut buf)
            .expect("an answer while the worker is blocked");
        assert!(n > 0, "connection closed: {text}");
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_checkers_connection_is_answered_while_the_only_worker_is_blocked() {
    let e = env();
    // Made before the channels, so a failing assertion drops `release` (and lets the blocked
    // worker go) before the runtime waits for its threads: the test fails instead of hanging.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (entered, has_entered) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let blocker = Arc::new(Mutex::new(Some((entered, released))));
    // `/block` blocks the thread polling it until the test lets go.
    let app = e.app.clone().route(
        "/block",
        routing::get(move || {
            let blocker = blocker.clone();
            async move {
                if let Some((entered, released)) = blocker.lock().unwrap().take() {
                    entered.send(()).unwrap();
                    let _ = released.recv();
                }
                "unblocked\n"
            }
        }),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        serve_on(listener, app, NetLimits::default(), std::future::pending()).await
    });

    // The checker's connection, opened while the service is free.
    let mut checker = TcpStream::connect(addr).unwrap();
    checker.set_read_timeout(Some(MUST)).unwrap();
    let (status, body) = get(&mut checker, "/healthz");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "ok\n")
    );

    // The only worker thread is blocked in a handler.
    let mut blocked = TcpStream::connect(addr).unwrap();
    blocked.set_read_timeout(Some(MUST)).unwrap();
    blocked
        .write_all(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    has_entered.recv_timeout(MUST).expect("/block was entered");

    // The checker is still answered, again and again, while the worker stays blocked.
    for _ in 0..5 {
        let (status, body) = get(&mut checker, "/healthz");
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 200 OK", "ok\n")
        );
    }

    // A checker that opens a new connection for each probe is accepted and answered too:
    // the accept loop does not wait for the blocked worker.
    for _ in 0..3 {
        let mut fresh = TcpStream::connect(addr).unwrap();
        fresh.set_read_timeout(Some(MUST)).unwrap();
        let (status, body) = get(&mut fresh, "/healthz");
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 200 OK", "ok\n")
        );
    }
    // A new connection of another client, accepted while the worker is blocked, is
    // handed to the service's runtime and answered once it is free.
    let mut other = TcpStream::connect(addr).unwrap();
    other.set_read_timeout(Some(MUST)).unwrap();
    other
        .write_all(b"GET /api/v1/flights HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();

    // Let go: the blocked request ends, and another request on the checker's connection
    // is served by the service's runtime.
    release.send(()).unwrap();
    let (status, body) = answer(&mut blocked);
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "unblocked\n")
    );
    let (status, _) = answer(&mut other);
    assert_eq!(status, "HTTP/1.1 401 Unauthorized", "answered by the app");
    let (status, _) = get(&mut checker, "/api/v1/flights");
    assert_eq!(status, "HTTP/1.1 401 Unauthorized", "answered by the app");
    runtime.shutdown_timeout(Duration::from_secs(10));
}
