//! The `besikta scan` subcommand: every photo's metadata as a table or JSON, with rejections.

use anyhow::Context;
use besikta_core::{Capture, IntrinsicsSource};
use besikta_ingest::{Orthophoto, ScanReport};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Arguments of `besikta scan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Photos, GeoTIFF orthophotos, or folders to search recursively.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How `besikta scan` prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One row per photo for people, then rejections and orthophotos.
    Table,
    /// `{"captures": [...], "rejected": [...], "orthophotos": [...]}`
    Json,
}

/// Runs the subcommand; the returned byte is the process exit code: 0 when every input
/// was usable, 1 when something was rejected.
pub fn run(args: Args) -> anyhow::Result<u8> {
    // A path that does not exist is a typo in the command, not a bad photo.
    for path in &args.paths {
        if !path.exists() {
            anyhow::bail!(
                "no such file or folder: {} (give photos, orthophotos or folders of them)",
                path.display()
            );
        }
    }
    let report = besikta_ingest::scan(&args.paths);
    let text = match args.format {
        Format::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .context("cannot write the scan report as JSON")?;
            json.push('\n');
            json
        }
        Format::Table => table(&report),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")?;
    Ok(if report.rejected.is_empty() { 0 } else { 1 })
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn source_name(source: Option<IntrinsicsSource>) -> &'static str {
    match source {
        Some(IntrinsicsSource::Calibrated) => "calibrated",
        Some(IntrinsicsSource::CameraDatabase) => "camera-database",
        Some(IntrinsicsSource::Equivalent35mm) => "equivalent-35mm",
        Some(IntrinsicsSource::FocalPlaneResolution) => "focal-plane",
        None => "unknown",
    }
}

fn focal(c: &Capture) -> String {
    match c.focal_length_px {
        Some(px) => format!("{px:.1} ({})", source_name(c.intrinsics_source)),
        None => "- (unknown)".to_string(),
    }
}

/// The human table: photos, then rejected files with reasons, then orthophotos.
fn table(report: &ScanReport) -> String {
    let mut out = String::new();
    let file_width = report
        .captures
        .iter()
        .map(|c| c.file.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let _ = writeln!(
        out,
        "{:<file_width$}  {:<19}  {:>12}  {:>13}  {:>8}  {:>7}  {:>6}  FOCAL PX (SOURCE)",
        "FILE", "TAKEN", "LATITUDE", "LONGITUDE", "REL ALT", "YAW", "PITCH"
    );
    for c in &report.captures {
        let _ = writeln!(
            out,
            "{:<file_width$}  {:<19}  {:>12}  {:>13}  {:>8}  {:>7}  {:>6}  {}",
            c.file,
            c.taken_at.as_deref().unwrap_or("-"),
            opt(c.latitude, 7),
            opt(c.longitude, 7),
            opt(c.relative_altitude_m, 1),
            opt(c.gimbal_yaw_deg, 1),
            opt(c.gimbal_pitch_deg, 1),
            focal(c),
        );
    }
    let _ = writeln!(
        out,
        "{} photo{} usable, {} rejected, {} orthophoto{}",
        report.captures.len(),
        if report.captures.len() == 1 { "" } else { "s" },
        report.rejected.len(),
        report.orthophotos.len(),
        if report.orthophotos.len() == 1 {
            ""
        } else {
            "s"
        },
    );
    if !report.rejected.is_empty() {
        let _ = writeln!(out, "\nREJECTED");
        for r in &report.rejected {
            let _ = writeln!(out, "{}\n    {}", r.file, r.reason);
        }
    }
    if !report.orthophotos.is_empty() {
        let _ = writeln!(out, "\nORTHOPHOTOS");
        for o in &report.orthophotos {
            let _ = writeln!(out, "{}", ortho_line(o));
        }
    }
    out
}

fn ortho_line(o: &Orthophoto) -> String {
    let crs = match o.epsg {
        Some(code) => format!("EPSG:{code} {}", o.crs),
        None => o.crs.lines().next().unwrap_or_default().to_string(),
    };
    format!(
        "{}  {crs}  {} x {} px of {} x {}  bounds {:.3}, {:.3} .. {:.3}, {:.3}",
        o.file,
        o.width,
        o.height,
        o.pixel_size[0],
        o.pixel_size[1],
        o.bounds[0],
        o.bounds[1],
        o.bounds[2],
        o.bounds[3],
    )
}
