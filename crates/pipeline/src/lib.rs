//! The process job shared by `besikta process` and the server's workers: ingest ->
//! georeferencing -> inference -> report, writing every product into one output folder.

use besikta_report::RegisterSource;
use serde::Serialize;
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
}

mod alignment;
pub mod coverage;
mod roi;
pub mod scale;

pub use alignment::ProcessOptions;
pub mod vegetation;

use besikta_core::{Capture, Detection, Rejected};
use besikta_georef::{FootprintOptions, Ground, PhotoGeometry};
use besikta_infer::{EngineConfig, InferOptions, Model};
use besikta_report::export::{ccw_closed, write_all};
use besikta_report::register::frame_for;
use besikta_report::{
    build_report_with, Coverage, EvidenceRules, Observation, Register, Report, ReportConfig,
    WorkFrame,
};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// Horizontal position uncertainty assumed for photos without RTK figures, metres. Consumer
/// GNSS is off by a few metres absolutely, but consecutive photos of one flight share most
/// of that error, and merging only needs the relative part.
pub const DEFAULT_POSITION_UNCERTAINTY_M: f64 = 1.0;

/// Time spent in each stage, seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub ingest_s: f64,
    pub georef_s: f64,
    /// Flight alignment (part of georeferencing).
    pub align_s: f64,
    pub decode_s: f64,
    pub infer_s: f64,
    pub report_s: f64,
    pub export_s: f64,
    pub total_s: f64,
}

/// Per-model counts.
#[derive(Debug, Clone, Serialize)]
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
    /// Photos this model was not run on, with the reason.
    pub photos_skipped: Vec<Rejected>,
    /// Of those, photos coarser than the model accepts ([`scale`]): not enlarged to fit.
    pub photos_skipped_for_scale: usize,
    /// Tiles those photos would have needed, enlarged to the model's scale.
    pub tiles_skipped_for_scale: usize,
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
    /// register: on trees or lawns), `off_road_surface` / `off_building` (with a register),
    /// `weak_evidence_*` (seen by too few of the photos that covered the spot).
    pub dropped: std::collections::BTreeMap<String, usize>,
    pub models: Vec<ModelSummary>,
    pub registers: Vec<serde_json::Value>,
    pub work_crs: String,
    pub gpkg_crs: String,
    pub timings: Timings,
    /// Flight alignment: photos aligned, pairs tried and accepted, tie residual RMS before
    /// and after; absent when alignment was not run.
    pub alignment: Option<besikta_align::AlignSummary>,
    pub outputs: Vec<String>,
}

/// What a finished job hands back.
#[derive(Debug)]
pub struct ProcessOutcome {
    pub summary: Summary,
    pub report: Report,
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
    d: &Detection,
    uncertainty_m: f64,
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
        position_uncertainty_m: uncertainty_m,
        model: Some(besikta_report::ModelRef {
            name: model.name.clone(),
            version: model.version.clone(),
        }),
    })
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
fn load_registers(
    cfg: &ProcessConfig,
    captures: &[Capture],
) -> Result<(WorkFrame, Vec<Register>), PipelineError> {
    let frame = match frame_for(&cfg.registers)? {
        Some(f) => f,
        None => {
            let (lon, lat) = captures
                .iter()
                .find_map(|c| Some((c.longitude?, c.latitude?)))
                .unwrap_or((0.0, 0.0));
            WorkFrame::utm_for(lon, lat)?
        }
    };
    let registers = cfg
        .registers
        .iter()
        .map(|r| Register::load(r, &frame))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((frame, registers))
}

/// Stage settings of the report: the evidence rules beside the models
/// (`evidence.toml`), and box merging for the classes of detection models.
fn report_config(models_dir: &Path, models: &[Model]) -> Result<ReportConfig, PipelineError> {
    let evidence_path = models_dir.join("evidence.toml");
    Ok(ReportConfig {
        evidence: if evidence_path.is_file() {
            EvidenceRules::load(&evidence_path)?
        } else {
            EvidenceRules::default()
        },
        merge: besikta_report::MergeRules {
            box_classes: models
                .iter()
                .filter(|m| matches!(m.manifest().task, besikta_infer::manifest::Task::Detection))
                .flat_map(|m| m.manifest().classes.iter().map(|k| k.name.clone()))
                .collect(),
            ..besikta_report::MergeRules::default()
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
    footprints: Vec<serde_json::Value>,
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
    let fp_path = cfg.out_dir.join("footprints.geojson");
    write_json(
        &fp_path,
        &json!({"type": "FeatureCollection", "features": footprints}),
    )?;
    outputs.push(fp_path.display().to_string());
    Ok((gpkg_crs, outputs))
}

/// Runs the whole job with the default options (the flight is aligned). Bad photos are
/// rejected with a reason and the rest go on.
pub fn process(
    cfg: &ProcessConfig,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ProcessOutcome, PipelineError> {
    process_with(cfg, &ProcessOptions::default(), progress)
}

/// [`process`] with options (alignment on or off).
pub fn process_with(
    cfg: &ProcessConfig,
    opts: &ProcessOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ProcessOutcome, PipelineError> {
    let t_all = Instant::now();
    let mut timings = Timings::default();
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| PipelineError::Write {
        path: cfg.out_dir.display().to_string(),
        message: e.to_string(),
    })?;

    // Ingest.
    let t = Instant::now();
    let scan = besikta_ingest::scan(&cfg.inputs);
    let photos_found = scan.captures.len() + scan.rejected.len();
    let mut rejected = scan.rejected;
    progress(&Progress {
        stage: Stage::Ingest,
        done: photos_found,
        total: photos_found,
        file: None,
    });
    timings.ingest_s = t.elapsed().as_secs_f64();

    // Models first: a missing model should fail before any heavy work.
    let manifests = find_manifests(&cfg.models_dir);
    if manifests.is_empty() {
        return Err(PipelineError::NoModels(
            cfg.models_dir.display().to_string(),
        ));
    }
    let engine = EngineConfig {
        intra_threads: cfg.threads.max(1),
        ..EngineConfig::default()
    };
    let mut models = manifests
        .iter()
        .map(|m| Model::load(m, &engine))
        .collect::<Result<Vec<_>, _>>()?;
    let mut model_summaries: Vec<ModelSummary> = models
        .iter()
        .zip(&manifests)
        .map(|(m, p)| ModelSummary {
            name: m.manifest().name.clone(),
            version: m.manifest().version.clone(),
            manifest: p.display().to_string(),
            detections: 0,
            tiles_total: 0,
            tiles_skipped: 0,
            tiles_skipped_for_coverage: 0,
            tiles_inferred: 0,
            photos_skipped: Vec::new(),
            photos_skipped_for_scale: 0,
            tiles_skipped_for_scale: 0,
        })
        .collect();
    // Photos too coarse for each model, for the flight's advice.
    let mut scale_skips: Vec<Vec<scale::TooCoarse>> = vec![Vec::new(); models.len()];

    // Georeferencing.
    let t = Instant::now();
    let ground = match &cfg.dem {
        Some(p) => Ground::Dem(
            besikta_georef::Dem::open(p).map_err(|e| PipelineError::Write {
                path: p.display().to_string(),
                message: e.to_string(),
            })?,
        ),
        None => Ground::TakeOffPlane,
    };
    // Alignment: refined poses drive footprints, detections on the ground and matching.
    let t_align = Instant::now();
    let (captures, aligned) = alignment::run(&scan.captures, &ground, opts);
    timings.align_s = t_align.elapsed().as_secs_f64();
    let mut geoms = Vec::new();
    let mut footprints = Vec::new();
    let total = captures.len();
    for (i, c) in captures.iter().enumerate() {
        let g = PhotoGeometry::new(c, &ground).and_then(|g| {
            let fp = g.footprint(&FootprintOptions::default())?;
            let gsd = g.gsd_cm_center()?;
            Ok((g, fp, gsd))
        });
        match g {
            Ok((g, fp, gsd)) => {
                footprints.push(json!({
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [ccw_closed(&fp)]},
                    "properties": {"file": c.file, "gsd_cm": gsd,
                        "camera_latitude": c.latitude, "camera_longitude": c.longitude,
                        "relative_altitude_m": c.relative_altitude_m},
                }));
                alignment::annotate(footprints.last_mut(), &aligned, &c.file, uncertainty_of(c));
                geoms.push((c, g, fp, gsd));
            }
            Err(e) => rejected.push(Rejected {
                file: c.file.clone(),
                reason: format!("cannot place the photo on the ground: {e}"),
            }),
        }
        progress(&Progress {
            stage: Stage::Georef,
            done: i + 1,
            total,
            file: Some(c.file.clone()),
        });
    }
    timings.georef_s = t.elapsed().as_secs_f64();

    // Registers and the working frame.
    let (frame, registers) = load_registers(cfg, &scan.captures)?;

    // Which ground each photo infers (coverage planning), per owners-per-cell count.
    let plan = coverage::Planner::new(
        opts.coverage,
        &geoms,
        &frame,
        &cfg.models_dir,
        &models,
        !registers.is_empty(),
    );

    // Inference, decoding the next photo while the current one is inferred.
    let t = Instant::now();
    let mut observations = Vec::new();
    let mut detections_total = 0;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let files: Vec<String> = geoms.iter().map(|g| g.0.file.clone()).collect();
    let max_pixels = besikta_ingest::ReadOptions::default().max_pixels;
    let mut decode_s = 0.0;
    // Photos whose pixels were decoded: the ones that count as processed.
    let mut photos_decoded = 0;
    let mut dropped = std::collections::BTreeMap::<String, usize>::new();
    let mut coverage: Vec<Coverage> = Vec::new();
    let veg_rule = vegetation::VegetationRule::default();
    std::thread::scope(|s| -> Result<(), PipelineError> {
        s.spawn(move || {
            for f in files {
                let t = Instant::now();
                let img = besikta_infer::decode_photo(Path::new(&f), max_pixels);
                if tx.send((img, t.elapsed().as_secs_f64())).is_err() {
                    break;
                }
            }
        });
        let n = geoms.len();
        for (i, (c, g, fp, gsd_cm)) in geoms.iter().enumerate() {
            let (img, dt) = rx.recv().expect("the decoder sends one result per photo");
            decode_s += dt;
            let img = match img {
                Ok(img) => {
                    photos_decoded += 1;
                    img
                }
                Err(e) => {
                    rejected.push(Rejected {
                        file: c.file.clone(),
                        reason: decode_reason(&e),
                    });
                    continue;
                }
            };
            let unc = uncertainty_of(c);
            // Without a register, trees and lawns are found by colour and texture instead.
            let veg = registers
                .is_empty()
                .then(|| vegetation::VegetationMask::new(&img, &veg_rule));
            let veg_roi = veg.as_ref().map(|v| v.roi());
            for ((m, ms), skips) in models
                .iter_mut()
                .zip(model_summaries.iter_mut())
                .zip(scale_skips.iter_mut())
            {
                // The camera's height over the ground, from the GSD it gives there.
                let height_m = c
                    .focal_length_px
                    .map(|f| gsd_cm / 100.0 * f)
                    .or(c.relative_altitude_m);
                if let Some(skip) = scale::too_coarse(m.manifest(), gsd_cm * 10.0, height_m) {
                    let plan = besikta_infer::tiling::TilePlan::new(
                        c.width,
                        c.height,
                        m.manifest(),
                        Some(gsd_cm * 10.0),
                        None,
                    );
                    ms.tiles_skipped_for_scale += plan.tiles_total;
                    ms.photos_skipped_for_scale += 1;
                    ms.photos_skipped.push(Rejected {
                        file: c.file.clone(),
                        reason: skip.to_string(),
                    });
                    skips.push(skip);
                    continue;
                }
                let kinds: Vec<_> = m.manifest().classes.iter().map(|k| k.asset_kind).collect();
                let roi = if registers.is_empty() {
                    veg_roi.clone()
                } else {
                    Some(roi::asset_roi(&registers, &frame, g, &kinds, unc))
                };
                let planned =
                    plan.restrict(i, g, m.manifest(), &img, gsd_cm * 10.0, roi.as_deref());
                let opts = InferOptions {
                    gsd_mm: Some(gsd_cm * 10.0),
                    roi: planned.as_ref().map_or(roi.as_deref(), |p| Some(&p.roi)),
                };
                let r = m.infer_image(&img, &opts)?;
                let roi_skipped = planned.as_ref().map_or(r.tiles_skipped, |p| p.roi_skipped);
                ms.tiles_total += r.tiles_total;
                ms.tiles_skipped += roi_skipped;
                ms.tiles_skipped_for_coverage += r.tiles_skipped - roi_skipped;
                ms.tiles_inferred += r.tiles_total - r.tiles_skipped;
                ms.detections += r.detections.len();
                detections_total += r.detections.len();
                for d in &r.detections {
                    if veg
                        .as_ref()
                        .is_some_and(|v| v.share(d.bbox) >= veg_rule.drop_share)
                    {
                        *dropped.entry("vegetation".to_string()).or_default() += 1;
                        continue;
                    }
                    observations.extend(observe(c, g, d, unc, m.manifest()));
                }
                coverage.push(Coverage {
                    photo: c.file.clone(),
                    classes: m
                        .manifest()
                        .classes
                        .iter()
                        .map(|k| k.name.clone())
                        .collect(),
                    footprint: fp.clone(),
                    processed: if let Some(p) = &planned {
                        Some(p.processed.clone())
                    } else if registers.is_empty() {
                        None
                    } else {
                        roi.as_deref().map(|r| roi::pixels_to_ground(g, r))
                    },
                });
            }
            progress(&Progress {
                stage: Stage::Infer,
                done: i + 1,
                total: n,
                file: Some(c.file.clone()),
            });
        }
        Ok(())
    })?;
    timings.decode_s = decode_s;
    let warnings: Vec<String> = scale_skips
        .iter()
        .filter_map(|s| scale::flight_advice(s, photos_decoded))
        .collect();
    timings.infer_s = t.elapsed().as_secs_f64();

    // Report.
    let t = Instant::now();
    let report_cfg = report_config(&cfg.models_dir, &models)?;
    let report = build_report_with(observations, &coverage, &registers, &frame, &report_cfg)?;
    for (k, v) in &report.dropped {
        *dropped.entry(k.clone()).or_default() += v;
    }
    progress(&Progress {
        stage: Stage::Report,
        done: 1,
        total: 1,
        file: None,
    });
    timings.report_s = t.elapsed().as_secs_f64();

    // Export.
    let t = Instant::now();
    let (gpkg_crs, outputs) = write_products(cfg, &report, &registers, footprints)?;
    timings.export_s = t.elapsed().as_secs_f64();
    timings.total_s = t_all.elapsed().as_secs_f64();

    let matched = report.findings.iter().filter(|f| f.asset.is_some()).count();
    let summary = Summary {
        photos_found,
        photos_processed: photos_decoded,
        rejected,
        warnings,
        detections: detections_total,
        findings: report.findings.len(),
        findings_matched: matched,
        findings_unmatched: report.findings.len() - matched,
        work_orders: report.work_orders.len(),
        dropped,
        models: model_summaries,
        registers: registers
            .iter()
            .map(|r| json!({"file": r.source.display().to_string(), "crs": r.crs, "assets": r.assets.len()}))
            .collect(),
        work_crs: frame.name.clone(),
        gpkg_crs: if gpkg_crs.len() > 40 {
            registers.first().map(|r| r.crs.clone()).unwrap_or(gpkg_crs)
        } else {
            gpkg_crs
        },
        timings,
        alignment: alignment::summary(&aligned),
        outputs,
    };
    let sum_path = cfg.out_dir.join("summary.json");
    write_json(&sum_path, &summary)?;
    progress(&Progress {
        stage: Stage::Export,
        done: 1,
        total: 1,
        file: None,
    });
    Ok(ProcessOutcome { summary, report })
}
