//! The `besikta align` subcommand: aligns a flight's photos to each other and writes the
//! refined pose of every photo (and every pair tried) as JSON.

use anyhow::Context;
use besikta_align::{align_with_reference, recheck, AlignConfig, PoseSource, Reference};
use besikta_georef::{Dem, Ground};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `besikta align`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flight folder(s) or photos.
    #[arg(required = true)]
    pub flight: Vec<PathBuf>,
    /// DEM/DSM GeoTIFF for the ground (default: a plane at the take-off height).
    #[arg(long)]
    pub dem: Option<PathBuf>,
    /// Reference orthophoto (GeoTIFF or any raster GDAL reads, any CRS): the photos are
    /// also matched to it, which fixes the absolute position.
    #[arg(long, value_name = "ORTHO")]
    pub reference: Option<PathBuf>,
    /// Output JSON with each photo's refined pose, every pair tried and the figures.
    #[arg(short = 'o', long = "out", required = true)]
    pub out: PathBuf,
    /// Also re-correlate the accepted pairs with the refined poses and report the ground
    /// shift left between them (an independent check; costs a second pass).
    #[arg(long)]
    pub verify: bool,
    /// Ground cell size of the projected photos, metres.
    #[arg(long, default_value_t = AlignConfig::default().gsd_m)]
    pub gsd: f64,
    /// Largest relative shift searched between two photos, metres.
    #[arg(long, default_value_t = AlignConfig::default().search_radius_m)]
    pub search: f64,
}

fn rms_cm(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt() * 100.0)
}

/// Scans the flight's photos, printing the rejected ones; no usable photo is an error
/// (shared with `besikta mosaic`).
pub(crate) fn scan_flight(flight: &[PathBuf]) -> anyhow::Result<besikta_ingest::ScanReport> {
    let scan = besikta_ingest::scan(flight);
    for r in &scan.rejected {
        println!("  rejected {}: {}", r.file, r.reason);
    }
    if scan.captures.is_empty() {
        anyhow::bail!(
            "no usable photos in {}: check the folder holds the flight's JPEGs",
            flight
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(scan)
}

/// The ground photos are projected onto: the DEM/DSM at `dem`, else a plane at the
/// take-off height (shared with `besikta mosaic`).
pub(crate) fn ground_of(dem: Option<&Path>) -> anyhow::Result<Ground> {
    Ok(match dem {
        Some(p) => Ground::Dem(
            Dem::open(p).with_context(|| format!("cannot use {} as the ground", p.display()))?,
        ),
        None => Ground::TakeOffPlane,
    })
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let t = Instant::now();
    let scan = scan_flight(&args.flight)?;
    let ground = ground_of(args.dem.as_deref())?;
    let cfg = AlignConfig {
        gsd_m: args.gsd,
        search_radius_m: args.search,
        ..AlignConfig::default()
    };
    let reference = match &args.reference {
        Some(p) => Some(Reference::open(p).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let a = align_with_reference(&scan.captures, &ground, &cfg, reference.as_ref());
    let s = &a.summary;
    let n = scan.captures.len();
    println!(
        "{} of {} photos aligned; {} of {} pairs accepted; tie residual {} -> {} m RMS; {:.2} s ({:.0} ms per photo)",
        s.photos_aligned,
        n,
        s.pairs_accepted,
        s.pairs_tried,
        s.residual_rms_before_m.map_or("-".into(), |v| format!("{v:.3}")),
        s.residual_rms_after_m.map_or("-".into(), |v| format!("{v:.3}")),
        s.seconds,
        s.seconds * 1000.0 / n as f64
    );
    if let Some(r) = &s.reference {
        println!("  {r}");
    }
    for p in &a.photos {
        match p.source {
            PoseSource::Metadata => println!(
                "  {}: metadata pose ({})",
                p.file,
                p.reason.as_deref().unwrap_or("")
            ),
            _ => println!(
                "  {}: moved {:+.2} m east, {:+.2} m north, yaw {:+.2} deg; {} pairs, residual {:.3} -> {:.3} m",
                p.file,
                p.correction_m[0],
                p.correction_m[1],
                p.yaw_correction_deg,
                p.pairs,
                p.residual_before_m.unwrap_or(0.0),
                p.residual_after_m.unwrap_or(0.0)
            ),
        }
    }
    let mut verify = serde_json::Value::Null;
    if args.verify {
        let refined = a.apply(&scan.captures);
        let left = recheck(&refined, &ground, &cfg, &a.accepted_pairs);
        let before: Vec<f64> = a
            .accepted_pairs
            .iter()
            .filter_map(|&(i, j)| {
                a.pairs
                    .iter()
                    .find(|p| p.a == scan.captures[i].file && p.b == scan.captures[j].file)?
                    .shift_m
                    .map(|s| s[0].hypot(s[1]))
            })
            .collect();
        let after: Vec<f64> = left.iter().flatten().map(|s| s[0].hypot(s[1])).collect();
        println!(
            "re-correlated with refined poses: {} of {} accepted pairs still match; ground shift between them {} cm RMS before, {} cm after",
            after.len(),
            left.len(),
            rms_cm(&before).map_or("-".into(), |v| format!("{v:.1}")),
            rms_cm(&after).map_or("-".into(), |v| format!("{v:.1}"))
        );
        verify = json!({
            "pairs": left.len(),
            "pairs_matched_again": after.len(),
            "shift_rms_before_cm": rms_cm(&before),
            "shift_rms_after_cm": rms_cm(&after),
        });
    }
    let out = json!({
        "photos": a.photos,
        "pairs": a.pairs,
        "summary": a.summary,
        "verify": verify,
        "seconds_total": t.elapsed().as_secs_f64(),
    });
    let text = serde_json::to_string_pretty(&out).context("serialising the poses")?;
    std::fs::write(&args.out, text).with_context(|| {
        format!(
            "cannot write {}: check the folder exists and is writable",
            args.out.display()
        )
    })?;
    println!("wrote {}", args.out.display());
    Ok(0)
}
