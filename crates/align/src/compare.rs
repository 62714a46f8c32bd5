//! A measurement, not a product step: both pair estimators (the correlation alignment uses,
//! and features + RANSAC) run on every overlapping pair of a flight, on the same ground
//! images, each with an independent check of what it leaves: photo `b`'s ground image is
//! resampled through the estimate and the pair is estimated again by both methods (what is
//! left should be nothing). With the true poses of a simulated flight, the true relative
//! transform of each pair too. Used by `examples/compare_pairs.rs`.

use crate::correlate::{self, PairMatch};
use crate::features::{self, FeatureConfig, Rigid};
use crate::grounds::{Coverage, Placed};
use crate::ortho::{self, Frame, GrayGround, Raster};
use crate::{flight_frame, neighbour_pairs, AlignConfig};
use besikta_core::Capture;
use besikta_georef::{Ground, PhotoGeometry};
use serde::Serialize;
use std::time::Instant;

/// One estimator's result on a pair.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// The transform from `a`'s ground image to `b`'s at the overlap's centre, or why the
    /// pair is rejected.
    pub outcome: Result<Rigid, String>,
    /// E.g. matched with vegetation included.
    pub note: Option<String>,
    /// Correlation: peak NCC; features: inliers / matches.
    pub score: Option<f64>,
    /// Correlation: tiles that gave tie points; features: inliers.
    pub support: usize,
    /// RMS distance of the tie points (correlation) or inliers (features) from the
    /// fitted rigid transform, metres.
    pub rms_m: Option<f64>,
    pub seconds: f64,
    /// What correlation and features measure between `a` and `b` resampled through this
    /// estimate (`None` when the estimate failed).
    pub left_by_correlation: Option<Result<Rigid, String>>,
    pub left_by_features: Option<Result<Rigid, String>>,
}

/// One method's estimate of a pair: its transform with score, support and RMS, or why it
/// failed, and what `left` measures between the pair resampled through the transform.
fn estimate(
    fit: Result<(Rigid, f64, usize, f64), String>,
    note: Option<String>,
    seconds: f64,
    left: &dyn Fn(&Rigid) -> LeftBy,
) -> Estimate {
    match fit {
        Ok((rigid, score, support, rms)) => {
            let (lc, lf) = left(&rigid);
            Estimate {
                outcome: Ok(rigid),
                note,
                score: Some(score),
                support,
                rms_m: Some(rms),
                seconds,
                left_by_correlation: lc,
                left_by_features: lf,
            }
        }
        Err(e) => Estimate {
            outcome: Err(e),
            note,
            score: None,
            support: 0,
            rms_m: None,
            seconds,
            left_by_correlation: None,
            left_by_features: None,
        },
    }
}

/// What correlation and features measure between a pair resampled through an estimate.
type LeftBy = (Option<Result<Rigid, String>>, Option<Result<Rigid, String>>);

/// One overlapping pair.
#[derive(Debug, Clone, Serialize)]
pub struct PairComparison {
    pub a: String,
    pub b: String,
    /// Shared fraction of the smaller footprint.
    pub overlap: f64,
    /// Centre of the shared ground, metres in the flight frame; every transform is given
    /// at this point.
    pub centre_m: [f64; 2],
    pub correlation: Estimate,
    pub features: Estimate,
    /// The true transform (from the true poses), when they were given.
    pub truth: Option<Rigid>,
}

/// Every overlapping pair of a flight, and the photos that could not be projected.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub pairs: Vec<PairComparison>,
    pub not_projected: Vec<(String, String)>,
    pub project_s: f64,
}

/// A transform with its rotation in degrees; correlation's ties fitted rigidly.
fn correlation_rigid(m: &PairMatch, centre: [f64; 2]) -> (Option<Rigid>, Option<f64>) {
    let pairs: Vec<([f64; 2], [f64; 2])> = m
        .ties
        .iter()
        .map(|t| (t.at, [t.at[0] + t.shift[0], t.at[1] + t.shift[1]]))
        .collect();
    let fit = Rigid::fit(&pairs, centre);
    let rms = fit.map(|f| {
        (pairs
            .iter()
            .map(|&(p, q)| f.residual(p, q).powi(2))
            .sum::<f64>()
            / pairs.len() as f64)
            .sqrt()
    });
    (fit, rms)
}

/// Correlation's result as a rigid transform: with the peak, the tie count and the ties'
/// RMS distance from the fit (metres).
struct CorrelationFit {
    rigid: Rigid,
    peak: f64,
    ties: usize,
    rms: f64,
}

/// Correlation as alignment runs it (vegetation masked; included when too little other
/// ground is left), as a rigid transform at `centre`.
fn by_correlation(
    a: &GrayGround,
    b: &GrayGround,
    centre: [f64; 2],
    cfg: &AlignConfig,
) -> (Result<CorrelationFit, String>, Option<String>) {
    let (oa, ob) = (ortho::into_ortho(a.clone()), ortho::into_ortho(b.clone()));
    let mut note = None;
    let mut matched = correlate::match_pair(&oa, &ob, cfg);
    if matches!(&matched, Err(e) if e.starts_with("less than")) {
        let pa = oa.plain.as_deref().unwrap_or(&oa);
        let pb = ob.plain.as_deref().unwrap_or(&ob);
        if oa.plain.is_some() || ob.plain.is_some() {
            matched = correlate::match_pair(pa, pb, cfg)
                .map_err(|e| format!("too little ground outside vegetation, and with it: {e}"));
            if matched.is_ok() {
                note = Some("vegetation included".into());
            }
        }
    }
    let out = matched.and_then(|m| match correlation_rigid(&m, centre) {
        (Some(rigid), Some(rms)) => Ok(CorrelationFit {
            rigid,
            peak: m.peak,
            ties: m.ties.len(),
            rms,
        }),
        _ => Err("its tie points do not fix a rotation".into()),
    });
    (out, note)
}

/// Features + RANSAC the same way: vegetation masked, included when too few features are
/// left without it.
fn by_features(
    a: &GrayGround,
    b: &GrayGround,
    centre: [f64; 2],
    cfg: &AlignConfig,
    fcfg: &FeatureConfig,
) -> (Result<features::FeatureMatch, String>, Option<String>) {
    let run =
        |mask| features::match_features(a, b, cfg.gsd_m, cfg.search_radius_m, centre, mask, fcfg);
    let masked = run(true);
    let has_veg = a.veg.iter().any(|&v| v) || b.veg.iter().any(|&v| v);
    match masked {
        Err(e) if has_veg && e.starts_with("too few") => match run(false) {
            Ok(m) => (Ok(m), Some("vegetation included".into())),
            Err(e2) => (Err(format!("{e}; with vegetation included: {e2}")), None),
        },
        other => (other, None),
    }
}

/// `b` resampled onto `a`'s grid through `t`: the cell at `p` takes `b`'s value at
/// `t(p)` (bilinear; vegetation from the nearest cell).
fn warp(b: &GrayGround, t: &Rigid, like: &GrayGround, gsd: f64) -> GrayGround {
    let l = &like.gray;
    let mut gray = Raster::new(l.x0, l.y0, l.w, l.h);
    let mut veg = vec![false; l.w * l.h];
    let r = &b.gray;
    for j in 0..l.h {
        for i in 0..l.w {
            let p = [
                ((l.x0 + i as i64) as f64 + 0.5) * gsd,
                ((l.y0 + j as i64) as f64 + 0.5) * gsd,
            ];
            let q = t.apply(p);
            let u = q[0] / gsd - 0.5 - r.x0 as f64;
            let v = q[1] / gsd - 0.5 - r.y0 as f64;
            if u < 0.0 || v < 0.0 || u >= (r.w - 1) as f64 || v >= (r.h - 1) as f64 {
                continue;
            }
            let (ui, vi) = (u as usize, v as usize);
            let k = vi * r.w + ui;
            if !(r.ok[k] && r.ok[k + 1] && r.ok[k + r.w] && r.ok[k + r.w + 1]) {
                continue;
            }
            let (fu, fv) = ((u - ui as f64) as f32, (v - vi as f64) as f32);
            let val = (r.val[k][0] * (1.0 - fu) + r.val[k + 1][0] * fu) * (1.0 - fv)
                + (r.val[k + r.w][0] * (1.0 - fu) + r.val[k + r.w + 1][0] * fu) * fv;
            let o = j * l.w + i;
            gray.val[o] = [val, 0.0];
            gray.ok[o] = true;
            let near = (v.round() as usize).min(r.h - 1) * r.w + (u.round() as usize).min(r.w - 1);
            veg[o] = b.veg[near];
        }
    }
    GrayGround {
        gray,
        veg,
        camera: b.camera,
        envelope: like.envelope,
    }
}

/// The true transform of a pair: a point of `a`'s ground image (metadata pose) goes to
/// `a`'s pixel, to the ground through `a`'s true pose, to `b`'s pixel through `b`'s true
/// pose, and to `b`'s ground image through `b`'s metadata pose. Fitted on a 5 x 5 grid of
/// points 4 m apart about `centre`.
fn true_rigid(
    meta: [&Capture; 2],
    truth: [&Capture; 2],
    ground: &Ground,
    frame: &Frame,
    centre: [f64; 2],
) -> Option<Rigid> {
    let am = PhotoGeometry::new(meta[0], ground).ok()?;
    let at = PhotoGeometry::new(truth[0], ground).ok()?;
    let bt = PhotoGeometry::new(truth[1], ground).ok()?;
    let bm = PhotoGeometry::new(meta[1], ground).ok()?;
    let mid = [
        am.camera().width as f64 / 2.0,
        am.camera().height as f64 / 2.0,
    ];
    let h = am.pixel_to_ground(mid).ok()?.height_m;
    let mut pairs = Vec::new();
    for dy in -2..=2 {
        for dx in -2..=2 {
            let p = [centre[0] + 4.0 * dx as f64, centre[1] + 4.0 * dy as f64];
            let ll = frame.to_geo(p, h);
            let Some(q) = (|| {
                let pa = am.ground_to_pixel(ll[0], ll[1], h).ok()?;
                let x = at.pixel_to_ground(pa).ok()?;
                let pb = bt.ground_to_pixel(x.lat, x.lon, x.height_m).ok()?;
                let y = bm.pixel_to_ground(pb).ok()?;
                Some(frame.to_enu(y.lat, y.lon, y.height_m))
            })() else {
                continue;
            };
            pairs.push((p, q));
        }
    }
    Rigid::fit(&pairs, centre)
}

/// Runs both estimators on every overlapping pair of `captures` (and the checks). `truth`
/// holds the true poses in the same order, for simulated flights.
pub fn compare_pairs(
    captures: &[Capture],
    truth: Option<&[Capture]>,
    ground: &Ground,
    cfg: &AlignConfig,
    fcfg: &FeatureConfig,
) -> Comparison {
    let mut out = Comparison {
        pairs: Vec::new(),
        not_projected: Vec::new(),
        project_s: 0.0,
    };
    let Some(frame) = flight_frame(captures, cfg.gsd_m) else {
        return out;
    };
    let t0 = Instant::now();
    let grays: Vec<Option<GrayGround>> = captures
        .iter()
        .map(
            |c| match ortho::project_gray(c, ground, &frame, cfg.vegetation_exg) {
                Ok(g) => Some(g),
                Err(e) => {
                    out.not_projected.push((c.file.clone(), e));
                    None
                }
            },
        )
        .collect();
    out.project_s = t0.elapsed().as_secs_f64();
    let placed: Vec<Option<Placed>> = grays
        .iter()
        .map(|g| {
            g.as_ref().map(|g| Placed {
                camera: g.camera,
                envelope: g.envelope,
                coverage: Coverage::of(&g.gray, &g.gray.ok),
            })
        })
        .collect();
    let g = cfg.gsd_m;
    for (i, j, overlap) in neighbour_pairs(&placed, cfg) {
        let (Some(a), Some(b)) = (&grays[i], &grays[j]) else {
            continue;
        };
        let (ea, eb) = (a.envelope, b.envelope);
        let centre = [
            (ea[0].max(eb[0]) + ea[2].min(eb[2])) / 2.0,
            (ea[1].max(eb[1]) + ea[3].min(eb[3])) / 2.0,
        ];
        // What each estimate leaves, by both methods.
        let left = |t: &Rigid| {
            let w = warp(b, t, a, g);
            let c = by_correlation(a, &w, centre, cfg).0.map(|x| x.rigid);
            let f = by_features(a, &w, centre, cfg, fcfg).0.map(|x| x.rigid);
            (Some(c), Some(f))
        };
        let t = Instant::now();
        let (corr, note) = by_correlation(a, b, centre, cfg);
        let seconds = t.elapsed().as_secs_f64();
        let correlation = estimate(
            corr.map(|c| (c.rigid, c.peak, c.ties, c.rms)),
            note,
            seconds,
            &left,
        );
        let t = Instant::now();
        let (feat, note) = by_features(a, b, centre, cfg, fcfg);
        let seconds = t.elapsed().as_secs_f64();
        let features = estimate(
            feat.map(|m| {
                let score = m.inliers as f64 / m.matches.max(1) as f64;
                (m.rigid, score, m.inliers, m.rms_m)
            }),
            note,
            seconds,
            &left,
        );
        let truth = truth.and_then(|t| {
            true_rigid(
                [&captures[i], &captures[j]],
                [t.get(i)?, t.get(j)?],
                ground,
                &frame,
                centre,
            )
        });
        out.pairs.push(PairComparison {
            a: captures[i].file.clone(),
            b: captures[j].file.clone(),
            overlap,
            centre_m: centre,
            correlation,
            features,
            truth,
        });
    }
    out
}
