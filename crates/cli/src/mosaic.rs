//! The `besikta mosaic` subcommand: a quick orthomosaic of a flight from its aligned poses,
//! written as a Cloud-Optimised GeoTIFF (the work is `besikta_align::write_mosaic`).

use anyhow::Context;
use besikta_align::{
    align, apply_poses_by_name, write_mosaic, AlignConfig, MosaicConfig, PhotoPose,
};
use std::path::PathBuf;

/// Arguments of `besikta mosaic`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flight folder(s) or photos.
    #[arg(required = true)]
    pub flight: Vec<PathBuf>,
    /// Poses written by `besikta align -o poses.json` (default: align the flight now).
    #[arg(long, conflicts_with = "no_align")]
    pub poses: Option<PathBuf>,
    /// Use the photos' metadata poses as they are.
    #[arg(long)]
    pub no_align: bool,
    /// Ground size of one mosaic pixel, centimetres.
    #[arg(long, default_value_t = 5.0)]
    pub gsd_cm: f64,
    /// DEM/DSM GeoTIFF for the ground (default: a plane at the take-off height).
    #[arg(long)]
    pub dem: Option<PathBuf>,
    /// Output CRS, projected (e.g. EPSG:3067; default: the flight's UTM zone).
    #[arg(long)]
    pub crs: Option<String>,
    /// Output Cloud-Optimised GeoTIFF.
    #[arg(short = 'o', long = "out", required = true)]
    pub out: PathBuf,
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let scan = crate::align::scan_flight(&args.flight)?;
    let ground = crate::align::ground_of(args.dem.as_deref())?;
    let captures = if args.no_align {
        println!("metadata poses (--no-align)");
        scan.captures.clone()
    } else if let Some(p) = &args.poses {
        #[derive(serde::Deserialize)]
        struct Poses {
            photos: Vec<PhotoPose>,
        }
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let poses: Poses = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a poses file: write one with `besikta align FLIGHT -o poses.json`",
                p.display()
            )
        })?;
        let (caps, n) = apply_poses_by_name(&scan.captures, &poses.photos);
        println!("poses from {}: {n} of {} photos", p.display(), caps.len());
        caps
    } else {
        let a = align(&scan.captures, &ground, &AlignConfig::default());
        println!(
            "aligned {} of {} photos ({:.1} s)",
            a.summary.photos_aligned,
            scan.captures.len(),
            a.summary.seconds
        );
        a.apply(&scan.captures)
    };
    let cfg = MosaicConfig {
        gsd_m: args.gsd_cm / 100.0,
        crs: args.crs.clone(),
        ..MosaicConfig::default()
    };
    let s = write_mosaic(&captures, &ground, &cfg, &args.out).map_err(anyhow::Error::msg)?;
    for (f, why) in &s.skipped {
        println!("  skipped {f}: {why}");
    }
    println!(
        "wrote {}: {} x {} px at {:.1} cm, {}, {} photos, {:.0} % covered, {:.1} s",
        args.out.display(),
        s.width,
        s.height,
        s.gsd_m * 100.0,
        s.crs,
        s.photos_used,
        s.covered * 100.0,
        s.seconds
    );
    Ok(0)
}
