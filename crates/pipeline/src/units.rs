//! A flight as work units (issue 15): [`prepare`] (ingest, georeferencing, alignment, the
//! coverage plan: which photo infers which ground), [`infer_batch`] over any run of the
//! prepared photos, and [`finish`] (multi-view evidence, merging, asset matching,
//! measuring, exports, `summary.json`) over all batches' results. The prepared flight and
//! each batch's result are serde types, so other processes or machines can run the
//! batches; [`crate::process`] runs the same three in one process, and any split of the
//! photos into batches gives the same findings.

use crate::{
    coverage, create_out_dir, decode_reason, decoder, find_manifests, frame_anchor, load_registers,
    observe, on_its_asset, report_config, roi, scale, uncertainty_of, vegetation, write_json,
    write_products, ModelSummary, PipelineError, ProcessConfig, ProcessOptions, ProcessOutcome,
    Progress, Stage, Summary, Timings,
};
use besikta_align::AlignSummary;
use besikta_core::{Capture, Rejected};
use besikta_georef::{FootprintOptions, Ground, PhotoGeometry};
use besikta_infer::{Device, EngineConfig, InferOptions, Manifest};
use besikta_report::export::ccw_closed;
use besikta_report::{finish_report, Coverage, Observation, Register, WorkFrame};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::spill::Spill;

pub use crate::windows::Candidate;

/// A loaded model set and its [`crate::modelcache`] key.
type Loaded = (crate::modelcache::Key, Vec<besikta_infer::Model>);

/// What a batch of a one-process run hands its `finish`: the models it ran (for the
/// windows) and the registers it loaded, so they are not loaded a second time (loading a
/// register again at the end of a long flight raised the peak by about 27 MiB at 1,000
/// photos: a second copy built while the heap is full of the flight's observations).
pub(crate) struct Held {
    models: Loaded,
    frame: WorkFrame,
    registers: Vec<Register>,
    /// The batch's observations and processed areas, kept on disk ([`Spill`]) instead of
    /// in its [`BatchResult`].
    spilled: Option<Spilled>,
}

/// Batches' observations and processed areas on disk, in the order made.
struct Spilled {
    observations: Spill<Observation>,
    coverage: Spill<CoverageArea>,
}

impl Spilled {
    fn new(dir: &Path) -> Result<Spilled, PipelineError> {
        Ok(Spilled {
            observations: Spill::new(dir, "observations")?,
            coverage: Spill::new(dir, "coverage")?,
        })
    }
}

/// The engine settings of `cfg`.
fn engine_config(cfg: &ProcessConfig) -> EngineConfig {
    match cfg.device {
        Device::Cpu => EngineConfig {
            intra_threads: cfg.threads.max(1),
            ..EngineConfig::default()
        },
        Device::Cuda => EngineConfig::cuda(cfg.threads),
    }
}

/// The models under `paths`, from an earlier unit of this process (`modelcache`) or loaded.
fn load_models(cfg: &ProcessConfig, paths: &[PathBuf]) -> Result<Loaded, PipelineError> {
    let engine = engine_config(cfg);
    let key = crate::modelcache::key(paths, &engine)?;
    let models = crate::modelcache::take(&key, paths, &engine)?;
    Ok((key, models))
}

/// One photo placed on the ground by [`prepare`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreparedPhoto {
    /// The capture with its refined (aligned) pose; `file` as given to [`prepare`].
    pub capture: Capture,
    /// The footprint, WGS 84 lon/lat ring.
    pub footprint: Vec<[f64; 2]>,
    /// GSD at the photo's centre, cm.
    pub gsd_cm: f64,
    /// How well its position is known after alignment (merging and matching tolerances).
    pub uncertainty: crate::alignment::PhotoUncertainty,
}

/// A flight ready for inference: what [`prepare`] hands to the batches and to [`finish`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepared {
    pub photos_found: usize,
    /// Photos rejected at ingest or georeferencing.
    pub rejected: Vec<Rejected>,
    /// The photos placed on the ground, in the order batches index them.
    pub photos: Vec<PreparedPhoto>,
    /// `footprints.geojson` features, each kept as its JSON text: as `serde_json::Value`s
    /// they held about 6 KB per photo through the whole run (6 MB at 1,000 photos).
    /// Empty once [`Prepared::write_footprints`] has written them, or in a batch unit's copy
    /// ([`Prepared::without_footprints`]).
    pub footprints: Vec<Box<serde_json::value::RawValue>>,
    /// Where [`Prepared::write_footprints`] wrote them; the export then leaves that file be.
    #[serde(skip)]
    pub footprints_written: Option<PathBuf>,
    /// Longitude, latitude whose UTM zone is the working frame without a register.
    pub anchor: (f64, f64),
    /// The coverage plan per owners-per-cell count (empty: every tile is inferred).
    pub owned: BTreeMap<usize, coverage::Ownership>,
    /// Second views by windows around candidates ([`coverage::windows_for`]); else by owners.
    #[serde(default)]
    pub windows: bool,
    /// How that was chosen and what the plan said ([`crate::second_views`]); `None` with
    /// coverage planning off.
    #[serde(default)]
    pub second_views: Option<crate::second_views::SecondViews>,
    /// The plan's margins ([`coverage::MARGINS_ENV`] as read by `prepare`), so every unit
    /// plans with the same.
    #[serde(default)]
    pub margins: coverage::Margins,
    pub alignment: Option<AlignSummary>,
    /// Ingest, georeferencing and alignment times.
    pub timings: Timings,
}

impl Prepared {
    /// Writes `footprints.geojson` into `out_dir` now and lets go of the features, so they
    /// are not held through inference; [`finish`] then keeps that file.
    pub fn write_footprints(&mut self, out_dir: &Path) -> Result<(), PipelineError> {
        let path = out_dir.join(crate::FOOTPRINTS_FILE);
        crate::write_footprints(&path, &self.footprints)?;
        self.footprints = Vec::new();
        self.footprints_written = Some(path);
        Ok(())
    }

    /// This prepared flight for a batch unit, which writes no products: without the
    /// footprints' features (the finish unit reads the stored flight with them).
    pub fn without_footprints(mut self) -> Prepared {
        self.footprints = Vec::new();
        self
    }
}

/// The ground one photo covered for some classes (the serde form of
/// [`besikta_report::Coverage`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoverageArea {
    pub photo: String,
    pub classes: Vec<String>,
    pub footprint: Vec<[f64; 2]>,
    pub processed: Option<Vec<Vec<[f64; 2]>>>,
    /// A second-view window ([`coverage::windows_for`]), not the photo's own pass.
    #[serde(default)]
    pub window: bool,
}

impl From<CoverageArea> for Coverage {
    fn from(c: CoverageArea) -> Coverage {
        Coverage {
            photo: c.photo,
            classes: c.classes,
            footprint: c.footprint,
            processed: c.processed,
        }
    }
}

/// What one batch of photos found: [`infer_batch`]'s result, input to [`finish`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchResult {
    /// The prepared photos this batch covered: `first..first + count`.
    pub first: usize,
    pub count: usize,
    pub observations: Vec<Observation>,
    /// Candidates that need second views ([`coverage::windows_for`]), in photo order:
    /// [`finish`] infers the windows of every batch's candidates in one step, so any split
    /// of the photos gives the same windows.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    pub coverage: Vec<CoverageArea>,
    /// Per model, in the order of [`find_manifests`]: this batch's counts.
    pub models: Vec<ModelSummary>,
    /// Per model: photos too coarse for it.
    pub scale_skips: Vec<Vec<scale::TooCoarse>>,
    pub detections: usize,
    /// Photos whose pixels were decoded.
    pub photos_decoded: usize,
    /// Photos that could not be decoded.
    pub rejected: Vec<Rejected>,
    pub dropped: BTreeMap<String, usize>,
    pub decode_s: f64,
    pub infer_s: f64,
}

fn no_models(cfg: &ProcessConfig) -> PipelineError {
    PipelineError::NoModels(cfg.models_dir.display().to_string())
}

/// The manifests under the models folder, read; a missing model fails before heavy work.
fn manifests(cfg: &ProcessConfig) -> Result<(Vec<PathBuf>, Vec<Manifest>), PipelineError> {
    let paths = find_manifests(&cfg.models_dir);
    if paths.is_empty() {
        return Err(no_models(cfg));
    }
    let manifests = paths
        .iter()
        .map(|p| Manifest::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((paths, manifests))
}

/// What a flight without a register is told about a model that looks only at registered
/// assets (`[scope] run_without_register = false`).
fn not_run_without_register(m: &Manifest) -> String {
    let kinds: std::collections::BTreeSet<String> = m
        .classes
        .iter()
        .map(|k| match k.asset_kind {
            besikta_core::AssetKind::Roof => "building".to_string(),
            besikta_core::AssetKind::Road => "road".to_string(),
        })
        .collect();
    let kinds: Vec<String> = kinds.into_iter().collect();
    format!(
        "{} was not run: it looks only at {} outlines from an asset register, and this flight has none \
         (without one it cannot tell them from the ground around them); give a register with --assets, \
         or set run_without_register = true under [scope] in its manifest to run it over every photo",
        m.name,
        kinds.join(" and ")
    )
}

fn empty_summary(m: &Manifest, path: &Path) -> ModelSummary {
    ModelSummary {
        name: m.name.clone(),
        version: m.version.clone(),
        manifest: path.display().to_string(),
        detections: 0,
        tiles_total: 0,
        tiles_skipped: 0,
        tiles_skipped_for_coverage: 0,
        tiles_inferred: 0,
        tiles_inferred_for_windows: 0,
        windows_inferred: 0,
        photos_skipped: Vec::new(),
        photos_skipped_for_scale: 0,
        tiles_skipped_for_scale: 0,
        tiles_skipped_without_register: 0,
    }
}

fn open_ground(cfg: &ProcessConfig) -> Result<Ground, PipelineError> {
    Ok(match &cfg.dem {
        Some(p) => Ground::Dem(
            besikta_georef::Dem::open(p).map_err(|e| PipelineError::Write {
                path: p.display().to_string(),
                message: e.to_string(),
            })?,
        ),
        None => Ground::TakeOffPlane,
    })
}

/// Unit 1: ingest, georeferencing, alignment and the coverage plan. Writes nothing.
pub fn prepare(
    cfg: &ProcessConfig,
    opts: &ProcessOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Prepared, PipelineError> {
    // A device that cannot run is refused before any photo is read.
    besikta_infer::check_device(cfg.device)?;
    let mut timings = Timings::default();
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
    let (_, manifests) = manifests(cfg)?;
    let margins = coverage::Margins::from_env()?;

    // Georeferencing.
    let t = Instant::now();
    let ground = open_ground(cfg)?;
    // Registers and the working frame: the plan needs them, and alignment their roads.
    let anchor = frame_anchor(&scan.captures);
    let (frame, registers) = load_registers(cfg, anchor)?;
    // Alignment: refined poses drive footprints, detections on the ground and matching.
    let t_align = Instant::now();
    // Photos whose RTK places them better than a fit to the roads would are not moved.
    let rtk = !scan.captures.is_empty()
        && scan
            .captures
            .iter()
            .all(|c| uncertainty_of(c) <= crate::alignment::ROAD_FIT_UNCERTAINTY_M);
    let roads = (!rtk)
        .then(|| crate::alignment::road_outlines(&registers, &frame, &scan.captures))
        .flatten();
    let (captures, mut aligned) =
        crate::alignment::run(&scan.captures, &ground, opts, roads.as_ref());
    drop(roads);
    if let (true, true, Some(a)) = (
        rtk,
        !registers.is_empty() && opts.fit_roads,
        aligned.as_mut(),
    ) {
        a.summary.roads = Some(format!(
            "roads not used: every photo has an RTK position within {:.1} m",
            crate::alignment::ROAD_FIT_UNCERTAINTY_M
        ));
    }
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
                let mut feature = json!({
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [ccw_closed(&fp)]},
                    "properties": {"file": c.file, "gsd_cm": gsd,
                        "camera_latitude": c.latitude, "camera_longitude": c.longitude,
                        "relative_altitude_m": c.relative_altitude_m},
                });
                crate::alignment::annotate(&mut feature, &aligned, &c.file, uncertainty_of(c));
                footprints.push(
                    serde_json::value::to_raw_value(&feature).expect("a JSON value serialises"),
                );
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

    // Which ground each photo infers (coverage planning), per owners-per-cell count, with
    // second views by windows or by owners (`second_views`: decided here, before inference).
    let (windows, owned, second_views) = if opts.coverage {
        let setting = crate::second_views::Setting::resolve(opts.windows)?;
        let plan = |w| coverage::ownership(true, w, &geoms, &frame, &cfg.models_dir, &manifests);
        let (by_windows, by_owners) = (plan(true), plan(false));
        let mut both = by_owners.clone();
        both.extend(by_windows.clone());
        let unc: Vec<f64> = geoms
            .iter()
            .map(|(c, ..)| {
                crate::alignment::photo_uncertainty(&aligned, c, uncertainty_of(c)).map_m
            })
            .collect();
        // Tiles of photo `i` the plan `own` gives the model of `m` (register region of
        // interest; vegetation is not known before decoding).
        let tiles = |i: usize, own: &coverage::Ownership, m: &Manifest| {
            let (c, g, _, gsd_cm) = &geoms[i];
            let roi = (!registers.is_empty()).then(|| {
                let kinds: Vec<_> = m.classes.iter().map(|k| k.asset_kind).collect();
                roi::asset_roi(&registers, &frame, g, &kinds, unc[i])
            });
            let px = coverage::restrict(
                roi.as_deref(),
                &coverage::owned_pixels(own, i, &frame, g, margins.owned_m),
            );
            let t = besikta_infer::tiling::TilePlan::new(
                c.width,
                c.height,
                m,
                Some(gsd_cm * 10.0),
                Some(&px),
            );
            t.tiles_total - t.tiles_skipped
        };
        let rules = coverage::evidence_rules(&cfg.models_dir);
        let (several, single) =
            crate::second_views::planned_tiles(&both, &rules, &manifests, geoms.len(), &tiles);
        let (windows, sv) = crate::second_views::decide(setting, several, single);
        let owned = if windows { by_windows } else { by_owners };
        (windows, owned, Some(sv))
    } else {
        (false, BTreeMap::new(), None)
    };
    let photos = geoms
        .into_iter()
        .map(|(c, _, fp, gsd_cm)| PreparedPhoto {
            capture: c.clone(),
            footprint: fp,
            gsd_cm,
            uncertainty: crate::alignment::photo_uncertainty(&aligned, c, uncertainty_of(c)),
        })
        .collect();
    Ok(Prepared {
        photos_found,
        rejected,
        photos,
        footprints,
        footprints_written: None,
        anchor,
        owned,
        windows,
        second_views,
        margins,
        alignment: crate::alignment::summary(&aligned),
        timings,
    })
}

/// Unit 2: inference over the prepared photos `photos` (indices into
/// [`Prepared::photos`]; cut to the flight). `locate` turns a photo's `file` (as given to
/// [`prepare`]) into where its pixels are in this process. Writes nothing.
pub fn infer_batch(
    cfg: &ProcessConfig,
    prepared: &Prepared,
    photos: Range<usize>,
    locate: &dyn Fn(&str) -> PathBuf,
    progress: &mut dyn FnMut(&Progress),
) -> Result<BatchResult, PipelineError> {
    let (batch, held) = infer_batch_loaded(cfg, prepared, photos, locate, None, progress)?;
    let (key, models) = held.models;
    crate::modelcache::give_back(key, models);
    Ok(batch)
}

/// [`infer_batch`], handing back the models it ran and the registers it loaded (for the
/// windows and report of a one-process run). With `spill_to` (a folder), the observations
/// and processed areas are kept on disk there until [`finish_timed`] merges them, not in
/// the [`BatchResult`], so memory does not grow with the flight ([`crate::spill`]).
pub(crate) fn infer_batch_loaded(
    cfg: &ProcessConfig,
    prepared: &Prepared,
    photos: Range<usize>,
    locate: &dyn Fn(&str) -> PathBuf,
    spill_to: Option<&Path>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(BatchResult, Held), PipelineError> {
    let t = Instant::now();
    let n = prepared.photos.len();
    let range = photos.start.min(n)..photos.end.min(n).max(photos.start.min(n));
    let (paths, manifest_list) = manifests(cfg)?;
    // Observations off their assets are dropped as they are made, not held to the end of
    // the flight: per observation, the same check (and counts) as the report's at the end.
    let assets_only = report_config(&cfg.models_dir, &manifest_list)?.assets_only;
    // A model set an earlier unit of this process loaded is used again (`modelcache`).
    let (cache_key, mut models) = load_models(cfg, &paths)?;
    let mut model_summaries: Vec<ModelSummary> = models
        .iter()
        .zip(&paths)
        .map(|(m, p)| empty_summary(m.manifest(), p))
        .collect();
    // Photos too coarse for each model, for the flight's advice.
    let mut scale_skips: Vec<Vec<scale::TooCoarse>> = vec![Vec::new(); models.len()];
    let ground = open_ground(cfg)?;
    let (frame, registers) = load_registers(cfg, prepared.anchor)?;
    let plan = coverage::Planner::new(
        &prepared.owned,
        &frame,
        &cfg.models_dir,
        !registers.is_empty(),
        prepared.windows,
        prepared.margins,
    );
    let mut geoms = Vec::with_capacity(range.len());
    for p in &prepared.photos[range.clone()] {
        let g = PhotoGeometry::new(&p.capture, &ground).map_err(|e| PipelineError::Write {
            path: p.capture.file.clone(),
            message: format!("the prepared photo no longer places on the ground: {e}"),
        })?;
        geoms.push((&p.capture, g, &p.footprint, p.gsd_cm));
    }

    // Inference, decoding the next photo while the current one is inferred.
    let mut observations = Vec::new();
    let mut spilled = spill_to.map(Spilled::new).transpose()?;
    let mut detections_total = 0;
    let mut rejected = Vec::new();
    let files: Vec<PathBuf> = geoms.iter().map(|g| locate(&g.0.file)).collect();
    let max_pixels = besikta_ingest::ReadOptions::default().max_pixels;
    let mut decode_s = 0.0;
    // Photos whose pixels were decoded: the ones that count as processed.
    let mut photos_decoded = 0;
    let mut dropped = BTreeMap::<String, usize>::new();
    let mut coverage: Vec<CoverageArea> = Vec::new();
    // Candidates that need second views, for the windows after every batch ([`finish`]).
    let mut candidates: Vec<Candidate> = Vec::new();
    let veg_rule = vegetation::VegetationRule::from_rules(plan.rules());
    let asset_check = assets_only.then(|| besikta_report::onasset::AssetCheck::new(&registers));
    std::thread::scope(|s| -> Result<(), PipelineError> {
        // Without a register, trees and lawns are found by colour and texture instead: the
        // mask is computed on the decoder thread, overlapped with the previous photo.
        let wants_veg = registers.is_empty().then_some(veg_rule);
        let (rx, back_tx) = decoder::decode_ahead(s, files, max_pixels, wants_veg);
        for (j, (c, g, fp, gsd_cm)) in geoms.iter().enumerate() {
            let i = range.start + j;
            let gsd_cm = *gsd_cm;
            let decoder::Decoded {
                img,
                veg,
                decode_s: dt,
            } = rx.recv().expect("the decoder sends one result per photo");
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
            let unc = prepared.photos[i].uncertainty;
            for (mi, ((m, ms), skips)) in models
                .iter_mut()
                .zip(model_summaries.iter_mut())
                .zip(scale_skips.iter_mut())
                .enumerate()
            {
                // The camera's height over the ground, from the GSD it gives there.
                let height_m = c
                    .focal_length_px
                    .map(|f| gsd_cm / 100.0 * f)
                    .or(c.relative_altitude_m);
                // Tiles of the whole photo at the model's scale, for models not run on it.
                let all_tiles = |m: &besikta_infer::Model| {
                    besikta_infer::tiling::TilePlan::new(
                        c.width,
                        c.height,
                        m.manifest(),
                        Some(gsd_cm * 10.0),
                        None,
                    )
                    .tiles_total
                };
                if !m.manifest().scope.runs(!registers.is_empty()) {
                    ms.tiles_skipped_without_register += all_tiles(m);
                    continue;
                }
                if let Some(skip) = scale::too_coarse(m.manifest(), gsd_cm * 10.0, height_m) {
                    ms.tiles_skipped_for_scale += all_tiles(m);
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
                    veg.as_ref().map(|v| v.roi_for(&veg_rule, &kinds))
                } else {
                    Some(roi::asset_roi(&registers, &frame, g, &kinds, unc.map_m))
                };
                let planned =
                    plan.restrict(i, g, m.manifest(), &img, gsd_cm * 10.0, roi.as_deref());
                let opts = InferOptions {
                    gsd_mm: Some(gsd_cm * 10.0),
                    roi: planned.as_ref().map_or(roi.as_deref(), |p| Some(&p.roi)),
                    cover_roi: false,
                    skip_mask: true,
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
                    if let Some(why) = veg.as_ref().and_then(|v| v.drop_reason(&veg_rule, d)) {
                        *dropped.entry(why.to_string()).or_default() += 1;
                        continue;
                    }
                    let Some(o) = observe(c, g, &img, d, unc, m.manifest()) else {
                        continue;
                    };
                    if plan.wants_window(&o.class) {
                        if let Some(bbox) = crate::windows::ground_box(&o, &frame) {
                            candidates.push(Candidate {
                                model: mi,
                                class: o.class.clone(),
                                photo: i,
                                bbox,
                            });
                        }
                    }
                    let kept =
                        on_its_asset(o, asset_check.as_ref(), &registers, &frame, &mut dropped)?;
                    match (&mut spilled, kept) {
                        (Some(sp), Some(o)) => sp.observations.push(&o)?,
                        (None, Some(o)) => observations.push(o),
                        (_, None) => {}
                    }
                }
                let area = CoverageArea {
                    photo: c.file.clone(),
                    classes: m
                        .manifest()
                        .classes
                        .iter()
                        .map(|k| k.name.clone())
                        .collect(),
                    footprint: (*fp).clone(),
                    processed: if let Some(p) = &planned {
                        Some(p.processed.clone())
                    } else if registers.is_empty() {
                        None
                    } else {
                        roi.as_deref().map(|r| roi::pixels_to_ground(g, r))
                    },
                    window: false,
                };
                match &mut spilled {
                    Some(sp) => sp.coverage.push(&area)?,
                    None => coverage.push(area),
                }
            }
            progress(&Progress {
                stage: Stage::Infer,
                done: i + 1,
                total: n,
                file: Some(c.file.clone()),
            });
            // The decoder may have stopped already; then the buffer is simply freed.
            let _ = back_tx.send(img.into_raw());
        }
        Ok(())
    })?;
    let batch = BatchResult {
        first: range.start,
        count: range.len(),
        observations,
        candidates,
        coverage,
        models: model_summaries,
        scale_skips,
        detections: detections_total,
        photos_decoded,
        rejected,
        dropped,
        decode_s,
        infer_s: t.elapsed().as_secs_f64(),
    };
    Ok((
        batch,
        Held {
            models: (cache_key, models),
            frame,
            registers,
            spilled,
        },
    ))
}

/// Unit 3: the flight's findings from every batch's result (in any order; together they
/// must cover each prepared photo once): the second-view windows of every batch's
/// candidates (when [`Prepared::windows`]; photos read where [`prepare`] found them),
/// evidence, merging, matching, exports and `summary.json` into `cfg.out_dir`.
pub fn finish(
    cfg: &ProcessConfig,
    prepared: &Prepared,
    batches: Vec<BatchResult>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ProcessOutcome, PipelineError> {
    finish_located(
        cfg,
        prepared,
        batches,
        &|f: &str| PathBuf::from(f),
        progress,
    )
}

/// [`finish`] with `locate` turning a photo's `file` (as given to [`prepare`]) into where
/// its pixels are in this process, as for [`infer_batch`]: the second-view windows read
/// the photos again.
pub fn finish_located(
    cfg: &ProcessConfig,
    prepared: &Prepared,
    mut batches: Vec<BatchResult>,
    locate: &dyn Fn(&str) -> PathBuf,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ProcessOutcome, PipelineError> {
    batches.sort_by_key(|b| b.first);
    let mut batches = batches.into_iter().map(Ok);
    finish_timed(cfg, prepared, &mut batches, locate, None, None, progress)
}

/// [`finish_located`] over batch results handed over one at a time, in photo order (a
/// worker reading them from its store one by one): each batch's observations and processed
/// areas go to disk as it comes ([`crate::spill`]), so the finishing process never holds
/// every batch at once. A batch out of order, or one that cannot be read (the iterator's
/// error), stops the finish with that error.
pub fn finish_streamed(
    cfg: &ProcessConfig,
    prepared: &Prepared,
    batches: &mut dyn Iterator<Item = Result<BatchResult, PipelineError>>,
    locate: &dyn Fn(&str) -> PathBuf,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ProcessOutcome, PipelineError> {
    finish_timed(cfg, prepared, batches, locate, None, None, progress)
}

/// [`finish_streamed`]; `started`: when the whole job began in this process (else the total
/// time is the sum of the units' times); `held`: the models a batch of this process ran
/// (for the windows), the registers it loaded (the same `cfg`, so the same registers) and
/// its observations on disk.
pub(crate) fn finish_timed(
    cfg: &ProcessConfig,
    prepared: &Prepared,
    batches: &mut dyn Iterator<Item = Result<BatchResult, PipelineError>>,
    locate: &dyn Fn(&str) -> PathBuf,
    started: Option<Instant>,
    mut held: Option<Held>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ProcessOutcome, PipelineError> {
    create_out_dir(cfg)?;
    let (paths, manifests) = manifests(cfg)?;
    let mut models: Vec<ModelSummary> = manifests
        .iter()
        .zip(&paths)
        .map(|(m, p)| empty_summary(m, p))
        .collect();
    let mut scale_skips: Vec<Vec<scale::TooCoarse>> = vec![Vec::new(); models.len()];
    let mut timings = prepared.timings.clone();
    let mut rejected = prepared.rejected.clone();
    let mut observations = Vec::new();
    let mut candidates = Vec::new();
    let mut coverage: Vec<Coverage> = Vec::new();
    let mut dropped = BTreeMap::<String, usize>::new();
    let (mut detections, mut photos_decoded) = (0, 0);
    // Every batch's observations and processed areas wait on disk until the merge, in
    // photo order (a one-process run's batch put its own there already).
    let mut spilled = match held.as_mut().and_then(|h| h.spilled.take()) {
        Some(s) => s,
        None => Spilled::new(&cfg.out_dir)?,
    };
    let mut next = 0;
    for b in batches {
        let b = b?;
        if b.first != next {
            return Err(PipelineError::Units(format!(
                "the batches do not cover the flight's photos: photo {next} expected, a batch starts at {}",
                b.first
            )));
        }
        next += b.count;
        if b.models.len() != models.len() || b.scale_skips.len() != models.len() {
            return Err(PipelineError::Units(format!(
                "a batch (photos from {}) ran {} models, this worker has {}: give every worker the same models folder",
                b.first,
                b.models.len(),
                models.len()
            )));
        }
        for ((ms, bm), (skips, bs)) in models
            .iter_mut()
            .zip(b.models)
            .zip(scale_skips.iter_mut().zip(b.scale_skips))
        {
            ms.detections += bm.detections;
            ms.tiles_total += bm.tiles_total;
            ms.tiles_skipped += bm.tiles_skipped;
            ms.tiles_skipped_for_coverage += bm.tiles_skipped_for_coverage;
            ms.tiles_inferred += bm.tiles_inferred;
            ms.tiles_inferred_for_windows += bm.tiles_inferred_for_windows;
            ms.windows_inferred += bm.windows_inferred;
            ms.photos_skipped.extend(bm.photos_skipped);
            ms.photos_skipped_for_scale += bm.photos_skipped_for_scale;
            ms.tiles_skipped_for_scale += bm.tiles_skipped_for_scale;
            ms.tiles_skipped_without_register += bm.tiles_skipped_without_register;
            skips.extend(bs);
        }
        for o in &b.observations {
            spilled.observations.push(o)?;
        }
        for c in &b.coverage {
            spilled.coverage.push(c)?;
        }
        candidates.extend(b.candidates);
        rejected.extend(b.rejected);
        for (k, v) in b.dropped {
            *dropped.entry(k).or_default() += v;
        }
        detections += b.detections;
        photos_decoded += b.photos_decoded;
        timings.decode_s += b.decode_s;
        timings.infer_s += b.infer_s;
    }
    if next != prepared.photos.len() {
        return Err(PipelineError::Units(format!(
            "the batches cover {next} of the flight's {} photos",
            prepared.photos.len()
        )));
    }
    // Second views: every batch's candidates (batches sorted by photo), one step.
    let (loaded, (frame, registers)) = match held {
        Some(h) => (Some(h.models), (h.frame, h.registers)),
        None => (None, load_registers(cfg, prepared.anchor)?),
    };
    // The report's settings; its asset check also drops the windows' observations early.
    let report_cfg = report_config(&cfg.models_dir, &manifests)?;
    // The ground model, for the windows and for the view-consistency check.
    let ground = open_ground(cfg)?;
    if prepared.windows && !candidates.is_empty() {
        let t = Instant::now();
        let (key, mut loaded) = match loaded {
            Some(l) => l,
            None => load_models(cfg, &paths)?,
        };
        if loaded.len() != models.len() {
            return Err(PipelineError::Units(format!(
                "the batches ran {} models, the windows {}: give every worker the same models folder",
                models.len(),
                loaded.len()
            )));
        }
        let plan = coverage::Planner::new(
            &prepared.owned,
            &frame,
            &cfg.models_dir,
            !registers.is_empty(),
            prepared.windows,
            prepared.margins,
        );
        let undecodable: std::collections::BTreeSet<String> =
            rejected.iter().map(|r| r.file.clone()).collect();
        let asset_check = report_cfg
            .assets_only
            .then(|| besikta_report::onasset::AssetCheck::new(&registers));
        let cx = crate::windows::Context {
            asset_check: asset_check.as_ref(),
            prepared,
            plan: &plan,
            frame: &frame,
            registers: &registers,
            ground: &ground,
            locate,
            undecodable: &undecodable,
        };
        let w = crate::windows::infer_windows(&cx, &candidates, &mut loaded, &mut models, progress);
        crate::modelcache::give_back(key, loaded);
        let w = w?;
        observations.extend(w.observations);
        coverage.extend(w.coverage.into_iter().map(Coverage::from));
        detections += w.detections;
        for (k, v) in w.dropped {
            *dropped.entry(k).or_default() += v;
        }
        timings.decode_s += w.decode_s;
        timings.windows_s = t.elapsed().as_secs_f64();
    } else if let Some((key, loaded)) = loaded {
        crate::modelcache::give_back(key, loaded);
    }
    let mut warnings: Vec<String> = scale_skips
        .iter()
        .filter_map(|s| scale::flight_advice(s, photos_decoded))
        .collect();
    warnings.extend(
        manifests
            .iter()
            .zip(&models)
            .filter(|(_, s)| s.tiles_skipped_without_register > 0)
            .map(|(m, _)| not_run_without_register(m)),
    );

    // The windows' observations go behind the batches' on disk, in photo order; the
    // processed areas are read back now that the models' memory is free.
    for o in observations {
        spilled.observations.push(&o)?;
    }
    let mut c: Vec<Coverage> = spilled
        .coverage
        .read_all()?
        .into_iter()
        .map(Coverage::from)
        .collect();
    c.append(&mut coverage);
    coverage = c;

    // Report.
    let t = Instant::now();
    let merged = merge_in_parts(
        &mut spilled.observations,
        &coverage,
        &registers,
        &frame,
        &report_cfg,
    )?;
    // Whether a finding's photos saw alike ground: its photos are read again for patches.
    let rules = &report_cfg.evidence;
    let patches =
        crate::consistency::cut_for(merged.findings(), rules, &prepared.photos, &ground, locate);
    let unlike = |f: &besikta_report::Finding| {
        let min = rules.min_view_consistency(&f.class)?;
        match patches.best_pair(&f.observations, min) {
            Some(best) if best < min => Some(crate::consistency::REASON),
            _ => None,
        }
    };
    let report = finish_report(merged, &coverage, &registers, &frame, &report_cfg, &unlike)?;
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
    let (gpkg_crs, outputs) = write_products(cfg, &report, &registers, prepared)?;
    timings.export_s = t.elapsed().as_secs_f64();
    timings.total_s = match started {
        Some(s) => s.elapsed().as_secs_f64(),
        None => {
            timings.ingest_s
                + timings.georef_s
                + timings.infer_s
                + timings.windows_s
                + timings.report_s
                + timings.export_s
        }
    };

    let matched = report.findings.iter().filter(|f| f.asset.is_some()).count();
    let summary = Summary {
        photos_found: prepared.photos_found,
        photos_processed: photos_decoded,
        rejected,
        warnings,
        detections,
        findings: report.findings.len(),
        findings_matched: matched,
        findings_unmatched: report.findings.len() - matched,
        work_orders: report.work_orders.len(),
        dropped,
        models,
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
        alignment: prepared.alignment.clone(),
        second_views: prepared.second_views.clone(),
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
    Ok(ProcessOutcome {
        summary,
        report,
        captures: prepared.photos.iter().map(|p| p.capture.clone()).collect(),
    })
}

/// Observations merged at most about this many at a time ([`merge_in_parts`]).
const MERGE_PART: usize = 4096;

/// The flight's observations, read back from disk part by part
/// ([`besikta_report::parts`]: parts that share no possible merge), merged and weighed, so
/// the merge holds one part's observations and the findings kept, not the whole flight's
/// observations: the same findings as one merge of everything.
fn merge_in_parts(
    observations: &mut Spill<Observation>,
    coverage: &[Coverage],
    registers: &[Register],
    frame: &WorkFrame,
    cfg: &besikta_report::ReportConfig,
) -> Result<besikta_report::Merged, PipelineError> {
    let mut parts = besikta_report::Parts::default();
    observations.scan(
        |_| true,
        |_, o| {
            parts.add(&o, frame);
            Ok(())
        },
    )?;
    let mut merger = besikta_report::Merger::new(coverage, registers, frame, cfg)?;
    for part in parts.split(cfg, MERGE_PART) {
        let mut these = Vec::with_capacity(part.len());
        let mut next = part.iter().copied().peekable();
        observations.scan(
            |i| {
                let wanted = next.peek() == Some(&i);
                if wanted {
                    next.next();
                }
                wanted
            },
            |_, o| {
                these.push(o);
                Ok(())
            },
        )?;
        merger.add(these)?;
    }
    Ok(merger.finish())
}
