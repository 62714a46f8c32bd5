//! Merge-tolerance sweep over one flight through the process job's own work units: one
//! `units::prepare` and one `units::infer_batch` (what `besikta process` runs), then one
//! `units::finish` per tolerance setting (`BESIKTA_MERGE_TOLERANCE`), each into its own
//! output folder. Same findings as `BESIKTA_MERGE_TOLERANCE=F,C besikta process` per
//! setting, without repeating the inference. Used for
//! `benches/results/operating-points/flights-2026-12-02-merge-floor.txt`.
//!
//! ```sh
//! cargo build --release -p besikta-pipeline --example merge_sweep
//! target/release/examples/merge_sweep FLIGHT ASSETS MODELS OUT_ROOT [--crs EPSG:3067] \
//!     [--reference ORTHO.tif] [--threads N] -- 1.0,2.0 1.5,2.0 2.0,2.0
//! ```
//!
//! Writes `OUT_ROOT/<FLOOR>-<CEILING>/` (findings.geojson, summary.json, ...) per setting.

use besikta_pipeline::{units, ProcessConfig, ProcessOptions, MERGE_TOLERANCE_ENV};
use besikta_report::RegisterSource;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("merge_sweep: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let usage =
        "usage: merge_sweep FLIGHT ASSETS MODELS OUT_ROOT [--crs CRS] [--reference ORTHO.tif] \
                 [--threads N] -- FLOOR,CEILING ...";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").ok_or(usage)?;
    let (head, settings) = (&args[..split], &args[split + 1..]);
    if head.len() < 4 || settings.is_empty() {
        return Err(usage.into());
    }
    let mut crs = None;
    let mut reference = None;
    let mut threads = 1;
    let mut rest = head[4..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or(usage)?;
        match flag.as_str() {
            "--crs" => crs = Some(value.clone()),
            "--reference" => reference = Some(PathBuf::from(value)),
            "--threads" => threads = value.parse().map_err(|_| usage)?,
            _ => return Err(usage.into()),
        }
    }
    let root = PathBuf::from(&head[3]);
    let mut cfg = ProcessConfig {
        inputs: vec![PathBuf::from(&head[0])],
        registers: vec![RegisterSource::new(&head[1])],
        models_dir: PathBuf::from(&head[2]),
        dem: None,
        crs,
        out_dir: root.clone(),
        threads,
        device: Default::default(),
    };
    let opts = ProcessOptions {
        reference,
        ..ProcessOptions::default()
    };
    let prepared = units::prepare(&cfg, &opts, &mut |_| {}).map_err(|e| e.to_string())?;
    let batch = units::infer_batch(
        &cfg,
        &prepared,
        0..prepared.photos.len(),
        &|f: &str| PathBuf::from(f),
        &mut |_| {},
    )
    .map_err(|e| e.to_string())?;
    for setting in settings {
        cfg.out_dir = root.join(setting.replace(',', "-"));
        // Single-threaded here: nothing else reads the environment while it changes.
        std::env::set_var(MERGE_TOLERANCE_ENV, setting);
        let outcome = units::finish(&cfg, &prepared, vec![batch.clone()], &mut |_| {})
            .map_err(|e| format!("setting {setting}: {e}"))?;
        println!(
            "{setting}: {} findings -> {}",
            outcome.summary.findings,
            cfg.out_dir.display()
        );
    }
    Ok(())
}
