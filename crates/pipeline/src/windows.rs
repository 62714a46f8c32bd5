//! Second-view windows (issue 14): after every photo of the flight is inferred over the
//! ground it owns, each candidate whose evidence rule needs more views is inferred again in
//! the other photos that cover it, only in a small window around it
//! ([`coverage::windows_for`]), and the window is recorded as that photo's processed ground
//! for `views` / `support`.
//!
//! The windows are their own step, run by `units::finish` over the candidates of all
//! batches (in photo order, whatever the split): each other photo is inferred once per
//! model over the union of every candidate's windows there (a tile wanted by several
//! candidates is run once), so a flight split into any batches infers exactly the same
//! windows as one `process` run and finds the same.

use crate::units::{CoverageArea, Prepared};
use crate::{
    coverage, decode_reason, decoder, observe, on_its_asset, roi, scale, vegetation, ModelSummary,
    PipelineError, Progress, Stage,
};
use besikta_georef::{Ground, PhotoGeometry};
use besikta_infer::tiling::rect_touches_polygon;
use besikta_infer::{InferOptions, Model};
use besikta_report::{Observation, Register, WorkFrame};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// One candidate from the owner pass: the model that found it, the photo (index into
/// [`Prepared::photos`]) and its ground box `[x0, y0, x1, y1]` (work frame). Batches hand
/// them to `units::finish` ([`crate::units::BatchResult::candidates`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
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
    /// Decoding the windowed photos, seconds (overlapped with inference).
    pub decode_s: f64,
}

/// One photo's windows: per model, the ground rectangles.
type PhotoWindows = BTreeMap<usize, Vec<[[f64; 2]; 4]>>;

/// Where and what to infer: per other photo, its windows.
type Jobs = BTreeMap<usize, PhotoWindows>;

/// The windows of `candidates` grouped by the photo they are inferred in.
fn jobs(prepared: &Prepared, candidates: &[Candidate], plan: &coverage::Planner<'_>) -> Jobs {
    let mut jobs = Jobs::new();
    for c in candidates {
        let Some((single, several)) = plan.window_plans(&c.class) else {
            continue;
        };
        for (p, rect) in coverage::windows_for(single, several, c.photo, c.bbox, plan.margins()) {
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
    /// Photos their own batch could not decode (files): no view anywhere.
    pub undecodable: &'a BTreeSet<String>,
    /// Observations off their assets are dropped as they are made ([`crate::on_its_asset`]).
    pub asset_check: Option<&'a besikta_report::onasset::AssetCheck>,
}

/// Infers the second-view windows of `candidates` (every batch's, in photo order) with
/// `models` (in manifest order), adding their tiles to `summaries`
/// ([`ModelSummary::tiles_inferred_for_windows`]). The next windowed photo is decoded while
/// the current one is inferred. A photo that does not place on the ground, or that its own
/// batch could not decode, gives no window (it is no view); one that its batch decoded but
/// that cannot be decoded here stops the step (the findings would depend on it).
pub(crate) fn infer_windows(
    cx: &Context<'_>,
    candidates: &[Candidate],
    models: &mut [Model],
    summaries: &mut [ModelSummary],
    progress: &mut dyn FnMut(&Progress),
) -> Result<WindowsOut, PipelineError> {
    let mut out = WindowsOut::default();
    let jobs = jobs(cx.prepared, candidates, cx.plan);
    let max_pixels = besikta_ingest::ReadOptions::default().max_pixels;
    let veg_rule = vegetation::VegetationRule::from_rules(cx.plan.rules());
    let placed: Vec<(usize, PhotoGeometry<'_>, &PhotoWindows)> = jobs
        .iter()
        .filter(|(&p, _)| !cx.undecodable.contains(&cx.prepared.photos[p].capture.file))
        .filter_map(|(&p, per_model)| {
            let g = PhotoGeometry::new(&cx.prepared.photos[p].capture, cx.ground).ok()?;
            Some((p, g, per_model))
        })
        .collect();
    let files: Vec<PathBuf> = placed
        .iter()
        .map(|(p, _, _)| (cx.locate)(&cx.prepared.photos[*p].capture.file))
        .collect();
    let total = placed.len();
    std::thread::scope(|s| -> Result<(), PipelineError> {
        let wants_veg = cx.registers.is_empty().then_some(veg_rule);
        let (rx, back_tx) = decoder::decode_ahead(s, files, max_pixels, wants_veg);
        for (done, (p, geom, per_model)) in placed.iter().enumerate() {
            let photo = &cx.prepared.photos[*p];
            let c = &photo.capture;
            let decoder::Decoded {
                img,
                veg,
                decode_s: dt,
            } = rx.recv().expect("the decoder sends one result per photo");
            out.decode_s += dt;
            let img = img.map_err(|e| {
                PipelineError::Units(format!(
                    "{} was decoded by its own batch but not for the second-view windows ({}): \
                     give the finishing worker the flight's photos",
                    c.file,
                    decode_reason(&e)
                ))
            })?;
            infer_photo(
                cx,
                &img,
                veg.as_ref(),
                *p,
                geom,
                per_model,
                &veg_rule,
                models,
                summaries,
                &mut out,
            )?;
            progress(&Progress {
                stage: Stage::Infer,
                done: done + 1,
                total,
                file: Some(c.file.clone()),
            });
            let _ = back_tx.send(img.into_raw());
        }
        Ok(())
    })?;
    Ok(out)
}

/// One windowed photo: each model over the windows it has there.
#[allow(clippy::too_many_arguments)]
fn infer_photo(
    cx: &Context<'_>,
    img: &image::RgbImage,
    veg: Option<&vegetation::VegetationMask>,
    p: usize,
    geom: &PhotoGeometry<'_>,
    per_model: &PhotoWindows,
    veg_rule: &vegetation::VegetationRule,
    models: &mut [Model],
    summaries: &mut [ModelSummary],
    out: &mut WindowsOut,
) -> Result<(), PipelineError> {
    let photo = &cx.prepared.photos[p];
    let c = &photo.capture;
    let gsd_cm = photo.gsd_cm;
    let unc = photo.uncertainty;
    for (&mi, rects) in per_model {
        let (Some(m), Some(ms)) = (models.get_mut(mi), summaries.get_mut(mi)) else {
            continue;
        };
        let height_m = c
            .focal_length_px
            .map(|f| gsd_cm / 100.0 * f)
            .or(c.relative_altitude_m);
        if scale::too_coarse(m.manifest(), gsd_cm * 10.0, height_m).is_some()
            || !m.manifest().scope.runs(!cx.registers.is_empty())
        {
            continue;
        }
        let kinds: Vec<_> = m.manifest().classes.iter().map(|k| k.asset_kind).collect();
        let roi = if cx.registers.is_empty() {
            veg.map(|v| v.roi_for(veg_rule, &kinds))
        } else {
            Some(roi::asset_roi(
                cx.registers,
                cx.frame,
                geom,
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
            .filter_map(|r| coverage::rect_pixels(r, cx.frame, geom))
            .collect();
        let window = coverage::restrict(roi.as_deref(), &px);
        if window.is_empty() {
            continue;
        }
        let opts = InferOptions {
            gsd_mm: Some(gsd_cm * 10.0),
            roi: Some(&window),
            // Windows are small and scattered: tiles centred on them, not the grid's.
            cover_roi: true,
            skip_mask: true,
        };
        let r = m.infer_image(img, &opts)?;
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
            if let Some(why) = veg.and_then(|v| v.drop_reason(veg_rule, d)) {
                *out.dropped.entry(why.to_string()).or_default() += 1;
                continue;
            }
            if let Some(o) = observe(c, geom, img, d, unc, m.manifest()) {
                out.observations.extend(on_its_asset(
                    o,
                    cx.asset_check,
                    cx.registers,
                    cx.frame,
                    &mut out.dropped,
                )?);
            }
        }
        out.coverage.push(CoverageArea {
            photo: c.file.clone(),
            classes,
            footprint: photo.footprint.clone(),
            // As for owned ground: the region of interest counts with a register.
            processed: Some(roi::pixels_to_ground(
                geom,
                if cx.registers.is_empty() {
                    &px
                } else {
                    &window
                },
            )),
            window: true,
        });
    }
    Ok(())
}
