//! Second-view windows (issue 14): after a batch's photos are inferred over the ground they
//! own, each candidate whose evidence rule needs more views is inferred again in every
//! other photo that covers it, only in a small window around it ([`coverage::windows_for`]),
//! and the window is recorded as that photo's processed ground for `views` / `support`.
//!
//! A batch infers each other photo once per model, over the union of the windows its
//! candidates put there (a tile wanted by several candidates is run once). A flight split
//! into batches infers each batch's windows apart: the same tile may run once per batch,
//! and where two batches' windows meet, the blending of overlapping tiles can differ.

use crate::units::{CoverageArea, Prepared};
use crate::{coverage, observe, roi, scale, vegetation, ModelSummary, PipelineError};
use besikta_georef::{Ground, PhotoGeometry};
use besikta_infer::tiling::rect_touches_polygon;
use besikta_infer::{InferOptions, Model};
use besikta_report::{Observation, Register, WorkFrame};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One candidate from the owner pass: the model that found it, the photo (index into
/// [`Prepared::photos`]) and its ground box `[x0, y0, x1, y1]` (work frame).
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub model: usize,
    /// Its class, for the owners that give its second views.
    pub class: String,
    pub photo: usize,
    pub bbox: [f64; 4],
}

/// The candidate's ground box in the work frame; `None` when it does not convert.
pub(crate) fn ground_box(o: &Observation, frame: &WorkFrame) -> Option<[f64; 4]> {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for p in &o.ground_polygon {
        let q = frame.to_work(*p).ok()?;
        b = [
            b[0].min(q[0]),
            b[1].min(q[1]),
            b[2].max(q[0]),
            b[3].max(q[1]),
        ];
    }
    b.iter().all(|x| x.is_finite()).then_some(b)
}

/// What the windows added: observations, processed areas and counts.
#[derive(Default)]
pub(crate) struct WindowsOut {
    pub observations: Vec<Observation>,
    pub coverage: Vec<CoverageArea>,
    pub detections: usize,
    pub dropped: BTreeMap<String, usize>,
}

/// Where and what to infer: per other photo, per model, the windows.
type Jobs = BTreeMap<usize, BTreeMap<usize, Vec<[[f64; 2]; 4]>>>;

/// The windows of `candidates` grouped by the photo they are inferred in.
fn jobs(prepared: &Prepared, candidates: &[Candidate], plan: &coverage::Planner<'_>) -> Jobs {
    let mut jobs = Jobs::new();
    for c in candidates {
        let Some((single, several)) = plan.window_plans(&c.class) else {
            continue;
        };
        for (p, rect) in coverage::windows_for(single, several, c.photo, c.bbox) {
            if p >= prepared.photos.len() {
                continue;
            }
            jobs.entry(p)
                .or_default()
                .entry(c.model)
                .or_default()
                .push(rect);
        }
    }
    jobs
}

/// Everything [`infer_windows`] reads besides the candidates.
pub(crate) struct Context<'a> {
    pub prepared: &'a Prepared,
    pub plan: &'a coverage::Planner<'a>,
    pub frame: &'a WorkFrame,
    pub registers: &'a [Register],
    pub ground: &'a Ground,
    pub locate: &'a dyn Fn(&str) -> PathBuf,
}

/// Infers the second-view windows of `candidates` with `models` (the batch's, in manifest
/// order), adding their tiles to `summaries` ([`ModelSummary::tiles_inferred_for_windows`]).
/// A photo that cannot be decoded or placed gives no window (it is no view there).
pub(crate) fn infer_windows(
    cx: &Context<'_>,
    candidates: &[Candidate],
    models: &mut [Model],
    summaries: &mut [ModelSummary],
) -> Result<WindowsOut, PipelineError> {
    let mut out = WindowsOut::default();
    let jobs = jobs(cx.prepared, candidates, cx.plan);
    let max_pixels = besikta_ingest::ReadOptions::default().max_pixels;
    let veg_rule = vegetation::VegetationRule::default();
    for (&p, per_model) in &jobs {
        let photo = &cx.prepared.photos[p];
        let c = &photo.capture;
        let Ok(geom) = PhotoGeometry::new(c, cx.ground) else {
            continue;
        };
        // A photo that cannot be decoded is rejected by its own batch; here it is no view.
        let Ok(img) =
            besikta_infer::decode_photo_into(&(cx.locate)(&c.file), max_pixels, Vec::new())
        else {
            continue;
        };
        let gsd_cm = photo.gsd_cm;
        let unc = photo.uncertainty;
        let veg = cx
            .registers
            .is_empty()
            .then(|| vegetation::VegetationMask::new(&img, &veg_rule));
        for (&mi, rects) in per_model {
            let (Some(m), Some(ms)) = (models.get_mut(mi), summaries.get_mut(mi)) else {
                continue;
            };
            let height_m = c
                .focal_length_px
                .map(|f| gsd_cm / 100.0 * f)
                .or(c.relative_altitude_m);
            if scale::too_coarse(m.manifest(), gsd_cm * 10.0, height_m).is_some() {
                continue;
            }
            let kinds: Vec<_> = m.manifest().classes.iter().map(|k| k.asset_kind).collect();
            let roi = if cx.registers.is_empty() {
                veg.as_ref().map(|v| v.roi())
            } else {
                Some(roi::asset_roi(
                    cx.registers,
                    cx.frame,
                    &geom,
                    &kinds,
                    unc.map_m,
                ))
            };
            let classes: Vec<String> = m
                .manifest()
                .classes
                .iter()
                .map(|k| k.name.clone())
                .collect();
            let px: Vec<Vec<[f64; 2]>> = rects
                .iter()
                .filter_map(|r| coverage::rect_pixels(r, cx.frame, &geom))
                .collect();
            let window = coverage::restrict(roi.as_deref(), &px);
            if window.is_empty() {
                continue;
            }
            let opts = InferOptions {
                gsd_mm: Some(gsd_cm * 10.0),
                roi: Some(&window),
            };
            let r = m.infer_image(&img, &opts)?;
            let tiles = r.tiles_total - r.tiles_skipped;
            if tiles == 0 {
                continue;
            }
            ms.tiles_inferred_for_windows += tiles;
            ms.windows_inferred += 1;
            for d in &r.detections {
                if !window.iter().any(|w| rect_touches_polygon(d.bbox, w)) {
                    continue;
                }
                ms.detections += 1;
                out.detections += 1;
                if veg
                    .as_ref()
                    .is_some_and(|v| v.share(d.bbox) >= veg_rule.drop_share)
                {
                    *out.dropped.entry("vegetation".to_string()).or_default() += 1;
                    continue;
                }
                out.observations
                    .extend(observe(c, &geom, d, unc, m.manifest()));
            }
            out.coverage.push(CoverageArea {
                photo: c.file.clone(),
                classes: classes.clone(),
                footprint: photo.footprint.clone(),
                // As for owned ground: the region of interest counts with a register.
                processed: Some(roi::pixels_to_ground(
                    &geom,
                    if cx.registers.is_empty() {
                        &px
                    } else {
                        &window
                    },
                )),
                window: true,
            });
        }
    }
    Ok(out)
}
