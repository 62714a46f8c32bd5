//! The `besikta process` subcommand: a flight folder in, findings and work orders out.

use anyhow::Context;
use besikta_core::AssetKind;
use besikta_pipeline::{process_with, ProcessConfig, ProcessOptions, Progress, Stage};
use besikta_report::RegisterSource;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `besikta process`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flight folder(s) or photos.
    #[arg(required = true)]
    pub flight: Vec<PathBuf>,
    /// Asset register (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, OSM PBF); repeatable.
    #[arg(long = "assets")]
    pub assets: Vec<PathBuf>,
    /// Layer of the registers to read (default: the first; OSM: lines and multipolygons).
    #[arg(long)]
    pub assets_layer: Option<String>,
    /// Kind of the registers' assets (default: from the geometry).
    #[arg(long, value_parser = parse_kind)]
    pub assets_kind: Option<AssetKind>,
    /// Field with the asset id.
    #[arg(long)]
    pub id_field: Option<String>,
    /// Field with the asset name.
    #[arg(long)]
    pub name_field: Option<String>,
    /// Field with the road width in metres (default: by road class).
    #[arg(long)]
    pub width_field: Option<String>,
    /// CRS of the registers' coordinates, e.g. EPSG:3067, when the file does not name it
    /// (a GeoJSON in metres without a "crs" member) or names it wrongly.
    #[arg(long, value_name = "CRS")]
    pub assets_crs: Option<String>,
    /// Folder with model manifests (default: the project's `models/`).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// DEM/DSM GeoTIFF for the ground (default: a plane at the take-off height).
    #[arg(long)]
    pub dem: Option<PathBuf>,
    /// CRS of the GeoPackage output, e.g. EPSG:3067 (default: the register's).
    #[arg(long)]
    pub crs: Option<String>,
    /// Output folder.
    #[arg(short = 'o', long = "out", required = true)]
    pub out: PathBuf,
    /// ONNX Runtime threads per session.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[command(flatten)]
    pub device: crate::device::DeviceFlag,
    /// Do not align the photos to each other: place each from its own metadata pose.
    #[arg(long)]
    pub no_align: bool,
    /// Reference orthophoto (GeoTIFF, any CRS) to align the photos to: fixes the absolute
    /// position.
    #[arg(long, value_name = "ORTHO", conflicts_with = "no_align")]
    pub reference: Option<PathBuf>,
    /// Do not fit the aligned flight onto the register's roads (--assets). By default,
    /// without --reference, the flight is moved as a whole to where its road edges fit the
    /// register's, when they fit clearly (summary.json alignment.roads says what happened).
    #[arg(long, conflicts_with = "no_align")]
    pub no_road_fit: bool,
    /// Infer every tile of every photo. By default each model infers only the tiles over
    /// ground the photo sees best (coverage planning; skipped tiles are counted in
    /// summary.json as tiles_skipped_for_coverage).
    #[arg(long)]
    pub all_views: bool,
}

fn parse_kind(s: &str) -> Result<AssetKind, String> {
    match s {
        "road" => Ok(AssetKind::Road),
        "roof" => Ok(AssetKind::Roof),
        _ => Err(format!("'{s}' is not an asset kind: use road or roof")),
    }
}

/// The project's `models/` folder: beside an ancestor of the executable, else the checkout
/// this binary was built from.
pub fn default_models_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .map(|a| a.join("models"))
            .find(|m| m.join("crack").is_dir())
    });
    from_exe.unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")))
}

fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Ingest => "reading photos",
        Stage::Georef => "placing photos on the ground",
        Stage::Infer => "finding defects",
        Stage::Report => "merging and matching",
        Stage::Export => "writing results",
    }
}

/// A one-line progress bar on stderr.
fn show(p: &Progress) {
    let width = 30;
    let filled = (p.done * width)
        .checked_div(p.total)
        .unwrap_or(width)
        .min(width);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r{:<30} [{}{}] {}/{}",
        stage_name(p.stage),
        "#".repeat(filled),
        " ".repeat(width - filled),
        p.done,
        p.total
    );
    if p.done >= p.total {
        let _ = writeln!(err);
    }
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let device = args.device.checked()?;
    let registers = args
        .assets
        .iter()
        .map(|p| RegisterSource {
            path: p.clone(),
            layer: args.assets_layer.clone(),
            kind: args.assets_kind,
            id_field: args.id_field.clone(),
            name_field: args.name_field.clone(),
            width_field: args.width_field.clone(),
            class_field: None,
            crs: args.assets_crs.clone(),
        })
        .collect();
    let cfg = ProcessConfig {
        inputs: args.flight.clone(),
        registers,
        models_dir: args.models.clone().unwrap_or_else(default_models_dir),
        dem: args.dem.clone(),
        crs: args.crs.clone(),
        out_dir: args.out.clone(),
        threads: args.threads,
        device,
    };
    let opts = ProcessOptions {
        align: !args.no_align,
        reference: args.reference.clone(),
        fit_roads: !args.no_road_fit,
        coverage: !args.all_views,
        ..ProcessOptions::default()
    };
    // Each stage's freed buffers go back to the system before the next stage allocates its own
    // (alignment's ground images before inference), and each photo's once it is inferred: what
    // a photo freed inside glibc's heaps otherwise stayed resident, and the peak crept up with
    // the flight (crate::allocator).
    let mut release = besikta_pipeline::ReleasePoints::default();
    let mut progress = |p: &Progress| {
        if release.due(p) {
            crate::allocator::release_free_memory();
        }
        show(p);
    };
    let outcome =
        process_with(&cfg, &opts, &mut progress).context("processing the flight failed")?;
    let s = &outcome.summary;
    println!(
        "photos: {} found, {} processed, {} rejected",
        s.photos_found,
        s.photos_processed,
        s.rejected.len()
    );
    if let Some(a) = &s.alignment {
        println!(
            "alignment: {} of {} photos aligned, {} of {} pairs accepted, tie residual {} -> {} m RMS, {:.1} s",
            a.photos_aligned,
            a.photos_aligned + a.photos_metadata,
            a.pairs_accepted,
            a.pairs_tried,
            a.residual_rms_before_m.map_or("-".into(), |v| format!("{v:.3}")),
            a.residual_rms_after_m.map_or("-".into(), |v| format!("{v:.3}")),
            a.seconds
        );
        if let Some(r) = &a.reference {
            println!("  {r}");
        }
    }
    for r in &s.rejected {
        println!("  rejected {}: {}", r.file, r.reason);
    }
    for m in &s.models {
        if m.tiles_skipped_without_register > 0 && m.tiles_inferred == 0 {
            println!(
                "model {} {}: not run without an asset register ({} tiles)",
                m.name, m.version, m.tiles_skipped_without_register
            );
            continue;
        }
        let coarse = if m.photos_skipped_for_scale > 0 {
            format!(
                "; not run on {} photos too coarse for it ({} tiles)",
                m.photos_skipped_for_scale, m.tiles_skipped_for_scale
            )
        } else {
            String::new()
        };
        println!(
            "model {} {}: {} detections, {} of {} tiles inferred; skipped: {} no asset in \
             view, {} seen better by another photo{coarse}",
            m.name,
            m.version,
            m.detections,
            m.tiles_inferred,
            m.tiles_total,
            m.tiles_skipped,
            m.tiles_skipped_for_coverage
        );
    }
    for w in &s.warnings {
        println!("warning: {w}");
    }
    println!(
        "findings: {} ({} on registered assets, {} unmatched); work orders: {}",
        s.findings, s.findings_matched, s.findings_unmatched, s.work_orders
    );
    for w in outcome.report.work_orders.iter().take(10) {
        let length = if w.length_m > 0.0 {
            format!(" {:.1} m", w.length_m)
        } else {
            String::new()
        };
        println!(
            "  P{} {:?} {} x{}{length} {:.2} m2 - {}",
            w.priority, w.worst_severity, w.class, w.count, w.area_m2, w.location
        );
    }
    let t = &s.timings;
    println!(
        "time: {:.2} s total (ingest {:.2}, georef {:.2}, decode {:.2} overlapped, infer {:.2}, report {:.2}, export {:.2})",
        t.total_s, t.ingest_s, t.georef_s, t.decode_s, t.infer_s, t.report_s, t.export_s
    );
    println!("written to {}", args.out.display());
    Ok(if s.rejected.is_empty() { 0 } else { 1 })
}
