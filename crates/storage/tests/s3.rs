//! The S3 storage against a real S3-compatible server (moto on loopback): files go in and
//! come back byte for byte (one put and a multipart upload), folders are deleted, and a
//! storage that does not answer is told naming its URL.

use besikta_storage::testing::MotoServer;
use besikta_storage::{Storage, PART_BYTES};
use std::path::Path;

/// Deterministic bytes that are not a repeating block (parts in the wrong order show).
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn files_round_trip_byte_exact_through_s3() {
    let moto = MotoServer::start("besikta-test").expect("moto starts (run scripts/setup)");
    let storage = moto.storage("region-a").expect("storage opens");
    assert!(!storage.is_local());
    assert_eq!(storage.url(), "s3://besikta-test/region-a");
    storage.health_blocking().expect("the bucket answers");
    let dir = tempfile::tempdir().expect("temp dir");
    let small = bytes(100_000, 1);
    // Three parts and a bit: a multipart upload whose parts must be put together in order.
    let large = bytes(3 * PART_BYTES + 12_345, 2);
    std::fs::write(dir.path().join("small.jpg"), &small).expect("write");
    std::fs::write(dir.path().join("large.jpg"), &large).expect("write");

    let key_small = "flights/1/photos/small.jpg";
    let key_large = "flights/1/photos/large.jpg";
    assert!(!storage.exists_blocking(key_small).expect("head"));
    assert_eq!(
        storage
            .put_file_blocking(key_small, &dir.path().join("small.jpg"))
            .expect("put small"),
        small.len() as u64
    );
    assert_eq!(
        storage
            .put_file_blocking(key_large, &dir.path().join("large.jpg"))
            .expect("put large"),
        large.len() as u64
    );
    assert!(storage.exists_blocking(key_large).expect("head"));

    // Another client of the same bucket and prefix (as another machine would be) reads them.
    let other = moto.storage("region-a").expect("second client");
    let back = dir.path().join("back/large.jpg");
    other
        .get_file_blocking(key_large, &back)
        .expect("get large");
    assert!(
        std::fs::read(&back).expect("read back") == large,
        "large file differs"
    );
    assert!(!dir.path().join("back/large.jpg.partial").exists());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let got = rt.block_on(other.get_bytes(key_small)).expect("get small");
    assert!(got == small, "small file differs");
    // The prefix separates: another prefix of the same bucket sees nothing.
    let region_b = moto.storage("region-b").expect("storage b");
    assert!(!region_b.exists_blocking(key_small).expect("head"));
    let missing = rt.block_on(region_b.get_bytes(key_small)).unwrap_err();
    assert!(missing.is_not_found(), "{missing}");

    // A folder of products goes up with its relative names and is deleted as one.
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("overlays")).expect("mkdir");
    std::fs::write(out.join("summary.json"), b"{}").expect("write");
    std::fs::write(out.join("overlays/a.png"), bytes(1000, 3)).expect("write");
    assert_eq!(
        storage
            .put_dir_blocking("flights/1/out-1-1", &out)
            .expect("put dir"),
        2
    );
    assert!(storage
        .exists_blocking("flights/1/out-1-1/overlays/a.png")
        .expect("head"));
    assert_eq!(
        storage.delete_prefix_blocking("flights/1").expect("delete"),
        4
    );
    assert!(!storage.exists_blocking(key_large).expect("head"));
    assert!(!storage
        .exists_blocking("flights/1/out-1-1/summary.json")
        .expect("head"));
}

#[test]
fn an_unreachable_storage_is_named_in_the_error() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let env = vec![
        (
            "AWS_ENDPOINT_URL".to_string(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID".to_string(), "x".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "y".to_string()),
        ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
    ];
    let storage = Storage::open_with(Some("s3://nowhere/photos"), Path::new("."), env)
        .expect("opening does not connect");
    let started = std::time::Instant::now();
    let e = storage.health_blocking().unwrap_err().to_string();
    assert!(e.contains("s3://nowhere/photos"), "{e}");
    assert!(e.contains("AWS_"), "{e}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let bad = Storage::open(Some("gs://bucket"), Path::new(".")).unwrap_err();
    assert!(bad.to_string().contains("gs://bucket"), "{bad}");
}

#[test]
fn the_default_storage_is_the_data_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(None, dir.path()).expect("local");
    assert_eq!(storage.local_dir(), Some(dir.path()));
    std::fs::write(dir.path().join("a.txt"), b"abc").expect("write");
    storage
        .get_file_blocking("a.txt", &dir.path().join("sub/b.txt"))
        .expect("copy");
    assert_eq!(
        std::fs::read(dir.path().join("sub/b.txt")).expect("read"),
        b"abc"
    );
    storage.health_blocking().expect("folder exists");
}
