//! The process job shared by `besikta process` and the server's workers: ingest ->
//! georeferencing -> inference -> report, writing every product into one output folder.

use besikta_report::RegisterSource;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What to process and where to put the results.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Photos or folders (searched recursively).
    pub inputs: Vec<PathBuf>,
    pub registers: Vec<RegisterSource>,
    /// Folder holding model manifests (`*.toml`, searched recursively).
    pub models_dir: PathBuf,
    pub dem: Option<PathBuf>,
    /// CRS of the GeoPackage output; default the register's, else WGS 84.
    pub crs: Option<String>,
    pub out_dir: PathBuf,
    /// Threads for ONNX Runtime inside one session.
    pub threads: usize,
    /// Where the models run (`--device`); CUDA is checked before the first photo is read.
    pub device: besikta_infer::Device,
}

/// The stages, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Ingest,
    Georef,
    Infer,
    Report,
    Export,
}

/// One progress report: `done` of `total` units of `stage`.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub stage: Stage,
    pub done: usize,
    pub total: usize,
    pub file: Option<String>,
}

/// When a caller of the pipeline should give the memory it freed back to the system (the
/// binary's `malloc_trim`): at each change of stage, and after each inferred photo (one
/// [`Stage::Infer`] report per photo, never per tile). Feed it every progress report.
#[derive(Debug, Default)]
pub struct ReleasePoints {
    stage: Option<Stage>,
}

impl ReleasePoints {
    /// Whether memory should be given back after this report.
    pub fn due(&mut self, p: &Progress) -> bool {
        self.stage.replace(p.stage).is_some_and(|s| s != p.stage) || p.stage == Stage::Infer
    }
}

/// Errors that stop the whole job (bad photos do not: they are rejected and listed).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "no models found in {0}: put model manifests (*.toml beside *.onnx) there or pass --models"
    )]
    NoModels(String),
    // Transparent: the CLI walks the chain, and "{0}" with a source would say it twice.
    #[error(transparent)]
    Report(#[from] besikta_report::ReportError),
    #[error(transparent)]
    Infer(#[from] besikta_infer::InferError),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    /// Work units that do not fit together (issue 15).
    #[error("the flight's work units do not fit together: {0}")]
    Units(String),
    /// A setting of the process that cannot be used (the message names it and the fix).
    #[error("{0}")]
    Setting(String),
}

mod alignment;
pub mod consistency;
pub mod coverage;
pub(crate) mod decoder;
mod merge_tolerance;
pub mod modelcache;
mod roi;
pub mod scale;
pub mod second_views;
mod setting;
pub mod sides;
mod spill;
pub mod units;
mod windows;

pub use alignment::{road_outlines, ProcessOptions};
pub use merge_tolerance::MERGE_TOLERANCE_ENV;
pub mod vegetation;

use besikta_core::{Capture, Detection, Rejected};
use besikta_georef::PhotoGeometry;
use besikta_report::export::{ccw_closed, write_all};
use besikta_report::register::frame_for;
use besikta_report::{EvidenceRules, Observation, Register, Report, ReportConfig, WorkFrame};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Horizontal position uncertainty assumed for photos without RTK figures, metres. Consumer
/// GNSS is off by a few metres absolutely, but consecutive photos of one flight share most
/// of that error, and merging only needs the relative part.
pub const DEFAULT_POSITION_UNCERTAINTY_M: f64 = 1.0;

/// Time spent in each stage, seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub ingest_s: f64,
    pub georef_s: f64,
    /// Flight alignment (part of georeferencing).
    pub align_s: f64,
    pub decode_s: f64,
    pub infer_s: f64,
    /// Second-view windows, after every batch ([`coverage::windows_for`]; their decoding
    /// is in `decode_s` too).
    #[serde(default)]
    pub windows_s: f64,
    pub report_s: f64,
    pub export_s: f64,
    pub total_s: f64,
}

/// Per-model counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSummary {
    pub name: String,
    pub version: String,
    pub manifest: String,
    pub detections: usize,
    pub tiles_total: usize,
    pub tiles_skipped: usize,
    /// Tiles skipped because better views own all their ground ([`coverage`]).
    pub tiles_skipped_for_coverage: usize,
    /// Tiles run: `tiles_total - tiles_skipped - tiles_skipped_for_coverage`.
    pub tiles_inferred: usize,
    /// Tiles run, beyond those, in second-view windows around other photos' candidates
    /// ([`coverage::windows_for`]).
    #[serde(default)]
    pub tiles_inferred_for_windows: usize,
    /// Windows inferred: other photos run over their windows (once per photo and model).
    #[serde(default)]
    pub windows_inferred: usize,
    /// Photos this model was not run on, with the reason.
    pub photos_skipped: Vec<Rejected>,
    /// Of those, photos coarser than the model accepts ([`scale`]): not enlarged to fit.
    pub photos_skipped_for_scale: usize,
    /// Tiles those photos would have needed, enlarged to the model's scale.
    pub tiles_skipped_for_scale: usize,
    /// Tiles of the photos this model was not run on because the flight has no asset
    /// register and its manifest's `[scope]` says `run_without_register = false`.
    #[serde(default)]
    pub tiles_skipped_without_register: usize,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub photos_found: usize,
    pub photos_processed: usize,
    pub rejected: Vec<Rejected>,
    /// What the crew should know about the flight: models not run on photos too coarse
    /// for them, with the height to fly ([`scale`]).
    pub warnings: Vec<String>,
    pub detections: usize,
    pub findings: usize,
    pub findings_matched: usize,
    pub findings_unmatched: usize,
    pub work_orders: usize,
    /// Detections, observations and findings left out, by reason: `vegetation` (no
    /// register: on trees or lawns), `unpaved` (no register: a road defect amid rough ground
    /// such as gravel, rocks or branches), `not_on_pavement` (no register: a crack whose own
    /// box is not mostly paved-like, the edge of a car, shadow or verge), `off_road_surface` /
    /// `off_building` (with a register),
    /// `weak_evidence_*` (seen by too few of the photos that covered the spot),
    /// `inconsistent_views` (the photos that saw it saw different things there: rocks
    /// through moving water; [`consistency`]).
    pub dropped: std::collections::BTreeMap<String, usize>,
    pub models: Vec<ModelSummary>,
    pub registers: Vec<serde_json::Value>,
    pub work_crs: String,
    pub gpkg_crs: String,
    pub timings: Timings,
    /// Flight alignment: photos aligned, pairs tried and accepted, tie residual RMS before
    /// and after; absent when alignment was not run.
    pub alignment: Option<besikta_align::AlignSummary>,
    /// Second views by windows or by owners, how that was chosen, and the tiles the plan
    /// gave both ways ([`second_views`]); absent with coverage planning off.
    pub second_views: Option<second_views::SecondViews>,
    pub outputs: Vec<String>,
}

/// What a finished job hands back.
#[derive(Debug)]
pub struct ProcessOutcome {
    pub summary: Summary,
    pub report: Report,
    /// The photos placed on the ground with their refined (aligned) poses, in the order of
    /// the prepared flight: later products (the server's mosaic) reuse them instead of
    /// aligning again.
    pub captures: Vec<Capture>,
}

/// Finds model manifests (`*.toml` with their `.onnx` beside) under `dir`, sorted.
pub fn find_manifests(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml")
                && besikta_infer::Manifest::load(&p).is_ok_and(|m| m.model_path().is_file())
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), PipelineError> {
    let text = serde_json::to_string_pretty(v).expect("summary types serialise");
    std::fs::write(path, text).map_err(|e| PipelineError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A detection's outline in pixels: its polygon, else its box.
fn pixel_outline(d: &Detection) -> Vec<[f64; 2]> {
    match &d.polygon {
        Some(p) if p.len() >= 3 => p.clone(),
        _ => {
            let [x0, y0, x1, y1] = d.bbox;
            vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        }
    }
}

/// Places one detection on the ground; `None` when too little of it meets the ground.
fn observe(
    capture: &Capture,
    geom: &PhotoGeometry<'_>,
    img: &image::RgbImage,
    d: &Detection,
    uncertainty: alignment::PhotoUncertainty,
    model: &besikta_infer::Manifest,
) -> Option<Observation> {
    let outline = pixel_outline(d);
    let mut ground: Vec<[f64; 2]> = outline
        .iter()
        .filter_map(|&px| geom.pixel_to_ground(px).ok().map(|g| [g.lon, g.lat]))
        .collect();
    if ground.len() < 3 {
        return None;
    }
    ground = ccw_closed(&ground);
    let c = [(d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0];
    let gsd_cm = geom.gsd_cm_at(c).ok()?;
    let (w, h) = (capture.width as f64, capture.height as f64);
    let r = ((c[0] - w / 2.0).powi(2) + (c[1] - h / 2.0).powi(2)).sqrt();
    let half_diag = (w * w + h * h).sqrt() / 2.0;
    let sides_grey = sides::sides_grey(img, d, &outline, gsd_cm);
    Some(Observation {
        photo: capture.file.clone(),
        class: d.class.clone(),
        asset_kind: d.asset_kind.unwrap_or(besikta_core::AssetKind::Road),
        confidence: d.confidence,
        pixel_polygon: outline,
        pixel_bbox: d.bbox,
        ground_polygon: ground,
        length_px: d.length_px,
        gsd_cm,
        view_quality: (1.0 - r / half_diag).clamp(0.0, 1.0),
        position_uncertainty_m: uncertainty.map_m,
        pose_sigma_m: uncertainty.relative_m,
        sides_grey,
        model: Some(besikta_report::ModelRef {
            name: model.name.clone(),
            version: model.version.clone(),
        }),
    })
}

/// `o`, unless it lies off its asset (`check`, the report's `assets_only` check made as the
/// observation is made, so it is not held to the end of the flight): then `None`, counted
/// in `dropped` by reason as the report would count it.
fn on_its_asset(
    o: Observation,
    check: Option<&besikta_report::onasset::AssetCheck>,
    registers: &[Register],
    frame: &WorkFrame,
    dropped: &mut BTreeMap<String, usize>,
) -> Result<Option<Observation>, PipelineError> {
    if let Some(why) = check
        .map(|c| c.drop_reason(&o, registers, frame))
        .transpose()?
        .flatten()
    {
        *dropped.entry(why.to_string()).or_default() += 1;
        return Ok(None);
    }
    Ok(Some(o))
}

/// Why a photo's pixels could not be used, without its path (the rejection names the file).
fn decode_reason(e: &besikta_infer::InferError) -> String {
    match e {
        besikta_infer::InferError::Decode { reason, .. } => format!(
            "the photo cannot be decoded ({reason}); copy it again from the drone's memory card"
        ),
        besikta_infer::InferError::TooManyPixels {
            width,
            height,
            limit_mpx,
            ..
        } => format!(
            "its header claims {width} x {height} pixels, over the {limit_mpx} megapixel limit \
             (a decompression bomb or a corrupt header); leave this file out"
        ),
        other => format!("the photo cannot be decoded: {other}"),
    }
}

fn uncertainty_of(c: &Capture) -> f64 {
    c.rtk
        .and_then(|r| match (r.std_lon_m, r.std_lat_m) {
            (Some(a), Some(b)) => Some(a.max(b) * 2.0),
            _ => None,
        })
        .unwrap_or(DEFAULT_POSITION_UNCERTAINTY_M)
}

/// Stage: the working metric frame (the first register's CRS when projected, else the
/// UTM zone of the photos) and the registers loaded into it.
/// `anchor`: the longitude, latitude whose UTM zone is taken without a register
/// ([`frame_anchor`]).
fn load_registers(
    cfg: &ProcessConfig,
    anchor: (f64, f64),
) -> Result<(WorkFrame, Vec<Register>), PipelineError> {
    let frame = match frame_for(&cfg.registers)? {
        Some(f) => f,
        None => WorkFrame::utm_for(anchor.0, anchor.1)?,
    };
    let registers = cfg
        .registers
        .iter()
        .map(|r| Register::load(r, &frame))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((frame, registers))
}

/// The position of the first photo that has one (the metadata's, before alignment).
fn frame_anchor(captures: &[Capture]) -> (f64, f64) {
    captures
        .iter()
        .find_map(|c| Some((c.longitude?, c.latitude?)))
        .unwrap_or((0.0, 0.0))
}

/// Stage settings of the report: the evidence rules beside the models
/// (`evidence.toml`), and box merging for the classes of detection models.
fn report_config(
    models_dir: &Path,
    manifests: &[besikta_infer::Manifest],
) -> Result<ReportConfig, PipelineError> {
    let evidence_path = models_dir.join("evidence.toml");
    Ok(ReportConfig {
        evidence: if evidence_path.is_file() {
            EvidenceRules::load(&evidence_path)?
        } else {
            EvidenceRules::default()
        },
        merge: besikta_report::MergeRules {
            box_classes: manifests
                .iter()
                .filter(|m| matches!(m.task, besikta_infer::manifest::Task::Detection))
                .flat_map(|m| m.classes.iter().map(|k| k.name.clone()))
                .collect(),
            ..merge_tolerance::rules_from_env()?
        },
        ..ReportConfig::default()
    })
}

/// Stage: every product file of the report (findings, work orders, GeoPackage in the
/// asked CRS, else the first register's, else WGS 84) and the photos' footprints.
/// Returns the GeoPackage's CRS and the files written.
fn write_products(
    cfg: &ProcessConfig,
    report: &Report,
    registers: &[Register],
    prepared: &units::Prepared,
) -> Result<(String, Vec<String>), PipelineError> {
    let gpkg_crs = cfg
        .crs
        .clone()
        .or_else(|| registers.first().map(|r| r.crs_wkt.clone()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "EPSG:4326".into());
    let mut outputs: Vec<String> = write_all(&cfg.out_dir, report, &gpkg_crs)?
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let fp_path = cfg.out_dir.join(FOOTPRINTS_FILE);
    if prepared.footprints_written.as_deref() != Some(fp_path.as_path()) {
        write_footprints(&fp_path, &prepared.footprints)?;
    }
    outputs.push(fp_path.display().to_string());
    Ok((gpkg_crs, outputs))
}

/// The photos' footprints in the output folder.
pub(crate) const FOOTPRINTS_FILE: &str = "footprints.geojson";

/// Writes `footprints.geojson` (`features`: each feature's JSON text).
pub(crate) fn write_footprints(
    path: &Path,
    features: &[Box<serde_json::value::RawValue>],
) -> Result<(), PipelineError> {
    #[derive(Serialize)]
    struct Collection<'a> {
        r#type: &'static str,
        features: &'a [Box<serde_json::value::RawValue>],
    }
    write_json(
        path,
        &Collection {
            r#type: "FeatureCollection",
            features,
        },
    )
}

/// Runs the whole job with the default options (the flight is aligned). Bad photos are
/// rejected with a reason and the rest go on.
pub fn process(
    cfg: &ProcessConfig,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ProcessOutcome, PipelineError> {
    process_with(cfg, &ProcessOptions::default(), progress)
}

/// [`process`] with options (alignment on or off): the flight's work units
/// ([`units::prepare`], one [`units::infer_batch`] over every photo, [`units::finish`]) in
/// this process.
pub fn process_with(
    cfg: &ProcessConfig,
    opts: &ProcessOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ProcessOutcome, PipelineError> {
    let t_all = Instant::now();
    create_out_dir(cfg)?;
    let mut prepared = units::prepare(cfg, opts, progress)?;
    // The footprints go to the output folder now instead of waiting in memory through
    // inference (about 3 KB a photo: 2.9 MB at the peak of a 1,000-photo flight).
    prepared.write_footprints(&cfg.out_dir)?;
    let locate = |f: &str| PathBuf::from(f);
    // The observations and processed areas wait on disk in the output folder until the
    // merge, so memory does not grow with the flight.
    let (batch, held) = units::infer_batch_loaded(
        cfg,
        &prepared,
        0..prepared.photos.len(),
        &locate,
        Some(&cfg.out_dir),
        progress,
    )?;
    units::finish_timed(
        cfg,
        &prepared,
        &mut std::iter::once(Ok(batch)),
        &locate,
        Some(t_all),
        Some(held),
        progress,
    )
}

fn create_out_dir(cfg: &ProcessConfig) -> Result<(), PipelineError> {
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| PipelineError::Write {
        path: cfg.out_dir.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod release_points_tests {
    use super::*;

    fn report(stage: Stage) -> Progress {
        Progress {
            stage,
            done: 1,
            total: 2,
            file: None,
        }
    }

    #[test]
    fn memory_is_due_at_stage_changes_and_after_each_inferred_photo() {
        let mut r = ReleasePoints::default();
        let due: Vec<bool> = [
            Stage::Ingest,
            Stage::Ingest,
            Stage::Georef,
            Stage::Georef,
            Stage::Infer,
            Stage::Infer,
            Stage::Report,
            Stage::Report,
        ]
        .into_iter()
        .map(|s| r.due(&report(s)))
        .collect();
        assert_eq!(due, [false, false, true, false, true, true, true, false]);
    }
}
