//! Memory of a flight's finish when it was run as work units (issue 14 on the scale-out path):
//! the batch results handed to `finish` all together (as `besikta worker` did before 2026-12-05)
//! or one at a time (`finish_streamed`, as it does now), each through JSON as between workers.
//!
//! ```text
//! cargo build --release -p besikta-benches --bin finish_memory
//! target/release/finish_memory units FLIGHT WORK [--assets REGISTER] [--models DIR] [--unit-photos 32]
//! target/release/finish_memory finish WORK OUT together|streamed [--assets REGISTER] [--models DIR]
//! ```
//!
//! `units` prepares the flight and infers its batches (in this process, one after the other),
//! writing `WORK/prepared.json` and `WORK/batch-NNNNN.json`; `finish` (run once per mode, each
//! in a fresh process) reads them back and finishes the flight into OUT, then prints one JSON
//! line: peak RSS of the process, RSS before the finish, seconds, findings. `together` reads
//! every batch's text first, as the store handed them over, then parses them all.

use besikta_pipeline::units::{
    finish_located, finish_streamed, infer_batch, prepare, BatchResult, Prepared,
};
use besikta_pipeline::{PipelineError, ProcessConfig, ProcessOptions};
use besikta_report::RegisterSource;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn usage() -> ! {
    eprintln!(
        "usage: finish_memory units FLIGHT WORK [--assets R] [--models D] [--unit-photos N]\n       \
         finish_memory finish WORK OUT together|streamed [--assets R] [--models D]"
    );
    std::process::exit(2)
}

/// The value after `flag`, if given.
fn flag(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn config(inputs: Vec<PathBuf>, out: &Path, args: &[String]) -> ProcessConfig {
    ProcessConfig {
        inputs,
        registers: flag(args, "--assets")
            .map(|p| RegisterSource {
                path: p.into(),
                ..RegisterSource::default()
            })
            .into_iter()
            .collect(),
        models_dir: flag(args, "--models")
            .unwrap_or_else(|| "models".into())
            .into(),
        dem: None,
        crs: None,
        out_dir: out.to_path_buf(),
        threads: 1,
        device: besikta_infer::Device::Cpu,
    }
}

fn batch_file(work: &Path, first: usize) -> PathBuf {
    work.join(format!("batch-{first:05}.json"))
}

fn units(flight: &Path, work: &Path, args: &[String]) -> Result<(), PipelineError> {
    std::fs::create_dir_all(work).expect("the work folder can be made");
    let cfg = config(vec![flight.to_path_buf()], &work.join("out"), args);
    let per: usize = flag(args, "--unit-photos")
        .map(|n| n.parse().expect("--unit-photos is a number"))
        .unwrap_or(32);
    let prepared = prepare(&cfg, &ProcessOptions::default(), &mut |_| {})?;
    let text = serde_json::to_string(&prepared).expect("a prepared flight serialises");
    std::fs::write(work.join("prepared.json"), text).expect("prepared.json is written");
    let n = prepared.photos.len();
    let mut first = 0;
    while first < n {
        let range = first..(first + per).min(n);
        let b = infer_batch(&cfg, &prepared, range.clone(), &|f| f.into(), &mut |_| {})?;
        let text = serde_json::to_string(&b).expect("a batch result serialises");
        std::fs::write(batch_file(work, first), text).expect("the batch result is written");
        eprintln!("photos {}-{} of {n}", range.start + 1, range.end);
        first = range.end;
    }
    Ok(())
}

fn finish(work: &Path, out: &Path, mode: &str, args: &[String]) -> Result<(), PipelineError> {
    let read = |p: &Path| std::fs::read_to_string(p).expect("a work file is readable");
    let prepared: Prepared =
        serde_json::from_str(&read(&work.join("prepared.json"))).expect("prepared.json parses");
    let mut files: Vec<PathBuf> = std::fs::read_dir(work)
        .expect("the work folder is readable")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("batch-"))
        })
        .collect();
    files.sort();
    let cfg = config(Vec::new(), out, args);
    let rss_before_kb = status_kb("VmRSS:");
    let t = Instant::now();
    let outcome = match mode {
        "together" => {
            let texts: Vec<String> = files.iter().map(|p| read(p)).collect();
            let batches: Vec<BatchResult> = texts
                .iter()
                .map(|t| serde_json::from_str(t).expect("a batch result parses"))
                .collect();
            drop(texts);
            finish_located(&cfg, &prepared, batches, &|f| f.into(), &mut |_| {})?
        }
        "streamed" => {
            let mut batches = files.iter().map(|p| {
                serde_json::from_str::<BatchResult>(&read(p))
                    .map_err(|e| PipelineError::Units(format!("{}: {e}", p.display())))
            });
            finish_streamed(&cfg, &prepared, &mut batches, &|f| f.into(), &mut |_| {})?
        }
        _ => usage(),
    };
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "batches": files.len(),
            "photos": prepared.photos.len(),
            "rss_before_finish_mb": rss_before_kb as f64 / 1024.0,
            "peak_rss_mb": status_kb("VmHWM:") as f64 / 1024.0,
            "finish_s": t.elapsed().as_secs_f64(),
            "findings": outcome.report.findings.len(),
        })
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("units") if args.len() >= 3 => units(Path::new(&args[1]), Path::new(&args[2]), &args),
        Some("finish") if args.len() >= 4 => {
            finish(Path::new(&args[1]), Path::new(&args[2]), &args[3], &args)
        }
        _ => usage(),
    };
    if let Err(e) = r {
        eprintln!("finish_memory: {e}");
        std::process::exit(1);
    }
}
