//! End-to-end inference figure: photos per second and peak memory over a folder of drone photos.
//!
//! ```text
//! cargo build --release -p besikta-benches --bin infer_e2e
//! target/release/infer_e2e [--model MANIFEST] [--dir DIR] [--limit N] [--workers N] [--intra N] [--batch N] [--gsd-mm X]
//! ```
//!
//! Defaults: the mtscrack fixture model, the Brighton flight in ../shared/data beside the checkout, 4 photos,
//! one single-threaded session per core. Decoding of the next photo runs on its own thread
//! while the current one is inferred, as `besikta infer` does. Prints one JSON line.

use besikta_infer::{decode_photo, EngineConfig, InferOptions, Model};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

struct Opts {
    model: PathBuf,
    dir: PathBuf,
    limit: usize,
    cfg: EngineConfig,
    gsd_mm: Option<f64>,
}

fn parse_args() -> Result<Opts, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut o = Opts {
        model: root.join("fixtures/models/mtscrack_static.toml"),
        dir: root.join("../shared/data/flights/brighton-beach"),
        limit: 4,
        cfg: EngineConfig::default(),
        gsd_mm: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--model" => o.model = PathBuf::from(value()?),
            "--dir" => o.dir = PathBuf::from(value()?),
            "--limit" => o.limit = num(value()?)?,
            "--workers" => o.cfg.workers = num(value()?)?,
            "--intra" => o.cfg.intra_threads = num(value()?)?,
            "--batch" => o.cfg.batch_size = num(value()?)?,
            "--gsd-mm" => o.gsd_mm = Some(value()?.parse().map_err(|e| format!("--gsd-mm: {e}"))?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() -> std::process::ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("infer_e2e: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut photos: Vec<PathBuf> = match std::fs::read_dir(&o.dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("png"))
            })
            .collect(),
        Err(e) => {
            eprintln!("infer_e2e: cannot read {}: {e}", o.dir.display());
            return std::process::ExitCode::from(2);
        }
    };
    photos.sort();
    photos.truncate(o.limit);
    let t0 = Instant::now();
    let mut model = match Model::load(&o.model, &o.cfg) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("infer_e2e: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let list = photos.clone();
    let decoder = std::thread::spawn(move || {
        for p in list {
            let started = Instant::now();
            let img = decode_photo(&p, besikta_ingest::ReadOptions::default().max_pixels);
            if tx.send((p, img, started.elapsed().as_secs_f64())).is_err() {
                break;
            }
        }
    });
    let (mut detections, mut tiles, mut decode_s, mut infer_s) = (0usize, 0usize, 0f64, 0f64);
    for (path, img, dt) in rx {
        decode_s += dt;
        let img = match img {
            Ok(i) => i,
            Err(e) => {
                eprintln!("infer_e2e: {}: {e}", path.display());
                continue;
            }
        };
        let started = Instant::now();
        match model.infer_image(
            &img,
            &InferOptions {
                gsd_mm: o.gsd_mm,
                roi: None,
                cover_roi: false,
                skip_mask: false,
            },
        ) {
            Ok(res) => {
                detections += res.detections.len();
                tiles += res.tiles_total - res.tiles_skipped;
            }
            Err(e) => eprintln!("infer_e2e: {}: {e}", path.display()),
        }
        infer_s += started.elapsed().as_secs_f64();
    }
    let _ = decoder.join();
    let elapsed = t1.elapsed().as_secs_f64();
    println!(
        "{{\"pipeline\": \"besikta-infer\", \"photos\": {}, \"seconds\": {:.3}, \"photos_per_second\": {:.4}, \"model_load_seconds\": {:.3}, \"tiles\": {}, \"detections\": {}, \"decode_seconds\": {:.3}, \"infer_seconds\": {:.3}, \"workers\": {}, \"intra_threads\": {}, \"batch\": {}, \"peak_rss_mb\": {:.1}}}",
        photos.len(),
        elapsed,
        photos.len() as f64 / elapsed,
        load_s,
        tiles,
        detections,
        decode_s,
        infer_s,
        o.cfg.workers,
        o.cfg.intra_threads,
        model.batch_size(),
        vm_hwm_kb() as f64 / 1024.0
    );
    std::process::ExitCode::SUCCESS
}
