//! The `besikta simulate` subcommand: renders a simulated flight over a real asset register
//! with planted defects, and optionally scores a processed flight against its truth.

use anyhow::Context;
use besikta_sim::patches::Contrast;
use std::path::{Path, PathBuf};

/// `--patch-contrast`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PatchContrast {
    Relative,
    Absolute,
}

impl From<PatchContrast> for Contrast {
    fn from(c: PatchContrast) -> Contrast {
        match c {
            PatchContrast::Relative => Contrast::Relative,
            PatchContrast::Absolute => Contrast::Absolute,
        }
    }
}

/// Arguments of `besikta simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Asset register to build the ground from (OSM PBF, GeoPackage, Shapefile, GeoJSON...).
    #[arg(long, value_name = "REGISTER", required_unless_present = "evaluate")]
    pub assets: Option<PathBuf>,
    /// Folder to write the photos, truth.geojson and flight.json into.
    #[arg(long, value_name = "DIR", required_unless_present = "evaluate")]
    pub out: Option<PathBuf>,
    /// Seed: the same seed gives byte-identical photos.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Centre of the flight, WGS 84 `LAT,LON` (default: central Helsinki).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_center)]
    pub center: Option<[f64; 2]>,
    /// Number of photos.
    #[arg(long, default_value_t = 12)]
    pub photos: usize,
    /// Flying height above the ground, metres.
    #[arg(long, value_name = "M", default_value_t = 40.0)]
    pub altitude: f64,
    /// Forward and side overlap, percent.
    #[arg(long, value_name = "PCT", default_value_t = 70.0)]
    pub overlap: f64,
    /// Camera model (EXIF Model): FC6310, FC6310S, FC330, FC300S, FC220.
    #[arg(long, value_name = "MODEL", default_value = "FC6310")]
    pub camera: String,
    /// Defects to plant.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub defects: usize,
    /// Standard deviation of the GPS error written into the photos, metres (photos are
    /// rendered from the true position).
    #[arg(long, value_name = "M", default_value_t = 0.0)]
    pub gps_noise: f64,
    /// Standard deviation of the compass error written into the photos, degrees.
    #[arg(long, value_name = "DEG", default_value_t = 0.0)]
    pub yaw_noise: f64,
    /// Width of the rendered photos, pixels (height follows the sensor's aspect ratio).
    #[arg(long, value_name = "PX", default_value_t = 1600)]
    pub width: u32,
    /// Paste real cracks from this folder of image/mask pairs (`NAME.jpg` with
    /// `NAME_mask.png`, e.g. DeepCrack) instead of drawing them.
    #[arg(long, value_name = "DIR")]
    pub patches: Option<PathBuf>,
    /// Ground size of one patch pixel, millimetres.
    #[arg(long, value_name = "MM", default_value_t = 1.0)]
    pub patch_mm_per_px: f64,
    /// How pasted cracks meet the ground: `relative` darkens it by each crack pixel's ratio
    /// to its own photo's pavement; `absolute` pastes the crack pixels' colours (before
    /// 2026-12-05: a crack from light concrete can vanish on dark asphalt).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = PatchContrast::Relative)]
    pub patch_contrast: PatchContrast,
    /// JPEG quality, 1-100.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Also write the true ground as a GeoTIFF orthophoto (working CRS, about 5 cm/px).
    #[arg(long, value_name = "FILE")]
    pub orthophoto: Option<PathBuf>,
    /// Instead of simulating: score FINDINGS (a findings.geojson) against TRUTH (a
    /// truth.geojson); print the metrics as JSON (pooled, and per class under
    /// "per_class") and the per-class table as text on standard error.
    #[arg(long, num_args = 2, value_names = ["TRUTH", "FINDINGS"], conflicts_with_all = ["assets", "out"])]
    pub evaluate: Option<Vec<PathBuf>>,
    /// Matching tolerance of --evaluate, metres.
    #[arg(long, value_name = "M", default_value_t = 2.0)]
    pub tolerance: f64,
}

fn parse_center(s: &str) -> Result<[f64; 2], String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("'{s}' is not LAT,LON"))?;
    let lat: f64 = a
        .trim()
        .parse()
        .map_err(|_| format!("latitude '{a}' is not a number"))?;
    let lon: f64 = b
        .trim()
        .parse()
        .map_err(|_| format!("longitude '{b}' is not a number"))?;
    if !(-85.0..=85.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!("{lat},{lon} is not a latitude,longitude"));
    }
    Ok([lat, lon])
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    if let Some(paths) = &args.evaluate {
        let cfg = besikta_sim::EvalConfig {
            tolerance_m: args.tolerance,
            ..Default::default()
        };
        let m = besikta_sim::evaluate_files(&paths[0], &paths[1], &cfg)?;
        println!("{}", serde_json::to_string_pretty(&m)?);
        eprint!("{}", besikta_sim::evaluate::table(&m));
        return Ok(0);
    }
    let (Some(assets), Some(out)) = (args.assets, args.out) else {
        anyhow::bail!("--assets and --out are required to simulate");
    };
    let defaults = besikta_sim::SimConfig::default();
    let cfg = besikta_sim::SimConfig {
        register: assets,
        out_dir: out.clone(),
        seed: args.seed,
        center: args.center.unwrap_or(defaults.center),
        photos: args.photos,
        altitude_m: args.altitude,
        overlap_pct: args.overlap,
        camera: args.camera,
        defects: args.defects,
        gps_noise_m: args.gps_noise,
        yaw_noise_deg: args.yaw_noise,
        width_px: args.width,
        jpeg_quality: args.quality,
        patches: args.patches,
        patch_mm_per_px: args.patch_mm_per_px,
        patch_contrast: args.patch_contrast.into(),
        orthophoto: args.orthophoto.clone(),
        ..defaults
    };
    let result = besikta_sim::simulate_with_progress(&cfg, &mut |done, total| {
        eprint!("\rrendered {done}/{total} photos");
        if done == total {
            eprintln!();
        }
    })
    .with_context(|| format!("simulating a flight into {}", out.display()))?;
    println!(
        "{} photos, {} defects planted ({} asked), GSD {:.2} cm/px, frame {}: {}",
        result.photos.len(),
        result.defects.len(),
        cfg.defects,
        result.gsd_cm,
        result.frame,
        out.display()
    );
    Ok(warn_unplanted(
        result.defects.len(),
        cfg.defects,
        cfg.center,
        &cfg.register,
    ))
}

/// Says when fewer defects were planted than asked; the exit code is 1 when none could
/// be (a flight without ground truth is no test of anything).
fn warn_unplanted(planted: usize, asked: usize, center: [f64; 2], register: &Path) -> u8 {
    if planted >= asked {
        return 0;
    }
    let [lat, lon] = center;
    eprintln!(
        "warning: planted {planted} of {asked} defects: around {lat},{lon} the flight covers \
         too few roads and roofs of {} with room for them (defects go on assets in the middle \
         of the flight, apart from each other); choose a --center over mapped streets and \
         buildings, or fly more --photos",
        register.display()
    );
    if planted == 0 {
        1
    } else {
        0
    }
}
