//! A tus upload over a real socket whose connection is cut mid-PATCH, then resumed from
//! the offset the server reports; the stored photo must be byte-identical.

mod common;

use common::{env, fixture, sha256_hex, tus_patch_head};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connection_resumes_from_the_kept_bytes() {
    let e = env();
    let addr = e.serve_on_loopback().await;

    let flight = e.create_flight("a", "socket").await;
    let crew = e.token("a", "crew").to_string();
    let photo = std::fs::read(fixture("brighton/DJI_0018.JPG")).unwrap();
    let created = e
        .tus_create(flight, &crew, "DJI_0018.JPG", photo.len())
        .await;
    let path = created.header("location").unwrap().to_string();

    // Announce the whole file, send 40 % of it, and hang up.
    let cut = photo.len() * 2 / 5;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(tus_patch_head(&path, &crew, 0, photo.len()).as_bytes())
        .await
        .unwrap();
    for piece in photo[..cut].chunks(64 * 1024) {
        s.write_all(piece).await.unwrap();
    }
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(s);

    // The server keeps what arrived; wait until the offset settles.
    let start = Instant::now();
    let mut offset = 0usize;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let head = e.tus_head(&path, &crew).await;
        let now: usize = head.header("upload-offset").unwrap().parse().unwrap();
        if now == offset && now > 0 {
            break;
        }
        offset = now;
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "offset never settled"
        );
    }
    assert!(
        offset > 0 && offset <= cut,
        "kept {offset} of the {cut} bytes sent"
    );

    // Resume from the reported offset on a new connection.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let rest = &photo[offset..];
    s.write_all(tus_patch_head(&path, &crew, offset, rest.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(rest).await.unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).to_lowercase();
    assert!(response.starts_with("http/1.1 204"), "{response}");
    assert!(
        response.contains(&format!("upload-offset: {}", photo.len())),
        "{response}"
    );
    assert!(response.contains("besikta-photo: stored"), "{response}");

    let stored = std::fs::read(
        e.dir
            .path()
            .join(format!("flights/{flight}/photos/DJI_0018.JPG")),
    )
    .unwrap();
    assert_eq!(sha256_hex(&stored), sha256_hex(&photo));
    println!(
        "cut at {cut} bytes, server kept {offset}, resumed, stored {} bytes",
        stored.len()
    );
}
