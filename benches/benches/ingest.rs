//! Criterion benchmarks of the ingest stage: scanning a whole flight (read, hash, parse,
//! validate on all cores) and its parts on one photo held in memory.
//!
//! Reads the 18-photo Brighton flight from `../shared/data/flights/brighton-beach` (beside the checkout)
//! when present (or `BESIKTA_BENCH_FLIGHT`), else the three photos in `fixtures/brighton`.

use besikta_ingest::{read_capture_bytes, scan, sha256_hex};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn flight() -> PathBuf {
    let shared = std::env::var_os("BESIKTA_BENCH_FLIGHT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/flights/brighton-beach")
        });
    if shared.is_dir() {
        shared
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/brighton")
    }
}

fn photos(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the flight folder is readable")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    found.sort();
    found
}

fn benches(c: &mut Criterion) {
    let dir = flight();
    let files = photos(&dir);
    let total_bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();

    let mut group = c.benchmark_group("ingest");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(total_bytes));
    group.bench_function(format!("scan_flight_{}_photos", files.len()), |b| {
        b.iter(|| {
            let report = scan(black_box(std::slice::from_ref(&dir)));
            assert_eq!(report.captures.len(), files.len());
            report
        })
    });
    group.finish();

    let bytes = std::fs::read(&files[0]).expect("the first photo is readable");
    let mut group = c.benchmark_group("ingest_one_photo");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("read_capture_bytes", |b| {
        b.iter(|| read_capture_bytes("bench.jpg", black_box(&bytes)).expect("a good photo"))
    });
    group.bench_function("sha256_only", |b| b.iter(|| sha256_hex(black_box(&bytes))));
    group.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
