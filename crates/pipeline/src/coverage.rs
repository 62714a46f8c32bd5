//! Coverage-planned inference (issue 14): every ground cell of the flight is given to the
//! photo(s) that see it closest to nadir, and each model infers only the tiles that touch
//! ground their photo owns; tiles whose ground a better view owns are skipped.
//!
//! Which photo sees a cell best: the smallest off-nadir tangent, the horizontal distance from
//! the point below the camera to the cell over the camera's height. A photo whose footprint
//! lies inside a better-placed photo's owns nothing.
//!
//! Multi-view evidence (`views`/`support`, `crate::Coverage::processed`) then sees only the
//! owners of a spot. A class whose evidence rule needs `min_support` > 1 photos (crack: 2)
//! would lose every finding if a spot had one owner, and a ratio rule (moss, debris: half
//! the views) would never drop one, so each model's cells get [`owners_for`] owners: 1
//! when its classes have neither rule (pothole: a confidence rule only), else enough for
//! the rule to mean what it did with every view (crack, moss, debris: 3).
//!
//! Second-view windows (issue 14; `BESIKTA_SECOND_VIEWS=windows|owners|auto`, chosen per
//! flight by `crate::second_views`): every model's cells get one owner, and each candidate of a class
//! whose rule needs more views ([`needs_views`]) is looked at again in the photos that
//! [`owners_for`] owners would have given its spot and that did not infer it already,
//! through a small window ([`windows_for`]: the candidate's ground box widened by
//! [`WINDOW_MARGIN_M`]) instead of whole owned areas (the pipeline's `windows.rs`). A window counts as
//! processed ground for evidence only where its tiles were run, so `views` and `support`
//! are counted over the same photos as with [`owners_for`] owners.

use besikta_core::Capture;
use besikta_georef::PhotoGeometry;
use besikta_infer::manifest::Manifest;
use besikta_infer::tiling::{bounds as bbox, TilePlan};
use besikta_report::{EvidenceRules, WorkFrame};
use image::RgbImage;
use std::collections::BTreeMap;
use std::path::Path;

/// Ground cell size, metres (work frame).
pub const CELL_M: f64 = 1.0;

/// Owned ground is widened by this much, metres, before tiles are chosen: a defect across
/// the border between two owners is then seen whole by both (and merged) rather than cut
/// in two halves that do not merge.
pub const MARGIN_M: f64 = 5.0;

/// A second-view window is the candidate's ground box widened by this much, metres: the
/// merge tolerance's ceiling (observations further apart are not the same defect).
pub const WINDOW_MARGIN_M: f64 = 2.0;

/// Environment variable that sets both margins, metres (`OWNED,WINDOW`, e.g. `5,2`: owned
/// ground widened by `OWNED` before tiles are chosen, see [`MARGIN_M`]; second-view windows
/// widened by `WINDOW`, see [`WINDOW_MARGIN_M`]), read once per flight by [`crate::units::prepare`]
/// and kept in its plan: for measuring other settings on flights without recompiling
/// (`benches/results/coverage-margins-2026-12-06-s40.md`). Unset or empty: the defaults.
pub const MARGINS_ENV: &str = "BESIKTA_COVERAGE_MARGINS";

/// How far owned ground and second-view windows reach beyond what they are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Margins {
    /// Owned ground widened by this much, metres ([`MARGIN_M`] by default).
    pub owned_m: f64,
    /// A candidate's box widened by this much for its windows, metres ([`WINDOW_MARGIN_M`]).
    pub window_m: f64,
}

impl Default for Margins {
    fn default() -> Self {
        Margins {
            owned_m: MARGIN_M,
            window_m: WINDOW_MARGIN_M,
        }
    }
}

impl Margins {
    /// The defaults, or [`MARGINS_ENV`] when it is set.
    pub fn from_env() -> Result<Margins, crate::PipelineError> {
        Margins::parse(crate::setting::value(MARGINS_ENV).as_deref())
    }

    /// The defaults, or `value` (`OWNED,WINDOW`, metres, both finite and at least 0).
    fn parse(value: Option<&str>) -> Result<Margins, crate::PipelineError> {
        let Some(text) = value.filter(|t| !t.trim().is_empty()) else {
            return Ok(Margins::default());
        };
        match crate::setting::two_numbers(text) {
            Some((owned_m, window_m)) if owned_m >= 0.0 && window_m >= 0.0 => {
                Ok(Margins { owned_m, window_m })
            }
            _ => Err(crate::PipelineError::Setting(format!(
                "{MARGINS_ENV}={text} is not OWNED,WINDOW in metres, both 0 or more (e.g. 5,2); \
                 set it so or unset it for the defaults"
            ))),
        }
    }
}

/// How second views are found: by windows around candidates ([`windows_for`]), by giving
/// cells [`owners_for`] owners, or per flight from the plan (`windows`, `owners`, `auto`;
/// see `crate::second_views`).
pub const SECOND_VIEWS_ENV: &str = "BESIKTA_SECOND_VIEWS";

/// One photo as the planner sees it, all in the work frame (metres).
#[derive(Debug, Clone)]
pub struct View {
    /// The photo's footprint ring.
    pub footprint: Vec<[f64; 2]>,
    /// The ground point below the camera.
    pub below_camera: [f64; 2],
    /// The camera's height over the ground, metres.
    pub height_m: f64,
}

/// One run of cells along a grid row: `(row, first column, last column)`, inclusive. 32-bit,
/// as the plan is held for the whole flight (a grid of 4 billion cells a side is beyond any).
pub type Run = (u32, u32, u32);

/// Which cells each photo owns, as runs of cells along grid rows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Ownership {
    pub cell_m: f64,
    /// South-west corner of cell (0, 0).
    pub origin: [f64; 2],
    /// Per photo: `(row, first column, last column)` inclusive runs.
    pub runs: Vec<Vec<Run>>,
    /// Cells inside at least one footprint.
    pub cells_covered: usize,
}

impl Ownership {
    /// The ground rectangle (work frame, counter-clockwise) of one run.
    pub fn run_rect(&self, run: Run) -> [[f64; 2]; 4] {
        let (r, c0, c1) = run;
        let x0 = self.origin[0] + c0 as f64 * self.cell_m;
        let x1 = self.origin[0] + (c1 + 1) as f64 * self.cell_m;
        let y0 = self.origin[1] + r as f64 * self.cell_m;
        let y1 = y0 + self.cell_m;
        [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    }
}

/// How many photos own each cell for a model with these classes (see the module docs).
pub fn owners_for(rules: &EvidenceRules, classes: &[String]) -> usize {
    let rule = |c: &str| {
        rules
            .rules
            .iter()
            .find(|r| r.class == c)
            .or_else(|| rules.rules.iter().find(|r| r.class == "*"))
    };
    // A support rule needs `min_support` views and one spare (one owner may miss it); a
    // ratio rule needs enough views that one detection alone falls below the ratio, and
    // one spare (0.5: three owners, so 1 of 3 is dropped and 2 of 3 kept, as with all views).
    // A class that is not reported needs no views beyond its owner's.
    classes
        .iter()
        .filter_map(|c| rule(c))
        .filter(|r| r.report)
        .map(|r| {
            let support = if r.min_support > 1 {
                r.min_support + 1
            } else {
                1
            };
            let ratio = if r.min_ratio > 0.0 {
                ((1.0 / r.min_ratio).floor() as usize + 1).max(r.min_views_for_ratio)
            } else {
                1
            };
            support.max(ratio)
        })
        .max()
        .unwrap_or(1)
}

/// Whether candidates of `class` need second views (its rule asks for more than one view).
pub fn needs_views(rules: &EvidenceRules, class: &str) -> bool {
    owners_for(rules, &[class.to_string()]) > 1
}

/// Owners per cell for a model with these classes: one with second-view windows, else
/// [`owners_for`].
pub fn owners_planned(rules: &EvidenceRules, classes: &[String], windows: bool) -> usize {
    if windows {
        1
    } else {
        owners_for(rules, classes)
    }
}

/// Whether photo `i` owns ground within `margin` metres of `p` (its inferred area under
/// the plan: owned cells widened by [`MARGIN_M`], see [`owned_pixels`]).
pub fn owns_near(own: &Ownership, i: usize, p: [f64; 2], margin: f64) -> bool {
    let Some(runs) = own.runs.get(i) else {
        return false;
    };
    runs.iter().any(|&run| {
        let [a, _, b, _] = own.run_rect(run);
        p[0] >= a[0] - margin
            && p[0] <= b[0] + margin
            && p[1] >= a[1] - margin
            && p[1] <= b[1] + margin
    })
}

/// The second-view windows of one candidate seen by photo `source` (ground box `bbox`
/// `[x0, y0, x1, y1]`, work frame). `single`: the one-owner plan every photo inferred;
/// `several`: the plan with the owners per cell the candidate's rule needs ([`owners_for`]).
/// A window goes to each other photo that is one of the candidate centre's owners in
/// `several` and did not infer it already (its `single` ground widened by
/// `margins.owned_m` holds it not): so the views at a candidate are those [`owners_for`] owners would give, and
/// nothing is inferred where no candidate is. The window is the box widened by
/// `margins.window_m` (counter-clockwise).
pub fn windows_for(
    single: &Ownership,
    several: &Ownership,
    source: usize,
    bbox: [f64; 4],
    margins: Margins,
) -> Vec<(usize, [[f64; 2]; 4])> {
    let c = [(bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0];
    let m = margins.window_m;
    let rect = [
        [bbox[0] - m, bbox[1] - m],
        [bbox[2] + m, bbox[1] - m],
        [bbox[2] + m, bbox[3] + m],
        [bbox[0] - m, bbox[3] + m],
    ];
    (0..several.runs.len())
        .filter(|&p| {
            p != source
                && owns_near(several, p, c, 0.0)
                && !owns_near(single, p, c, margins.owned_m)
        })
        .map(|p| (p, rect))
        .collect()
}

/// One photo as the planner sees it, from its capture, footprint (lon/lat) and GSD (cm);
/// a photo without a position owns nothing.
pub fn view_of(c: &Capture, footprint: &[[f64; 2]], gsd_cm: f64, frame: &WorkFrame) -> View {
    let height_m = c
        .focal_length_px
        .map(|f| gsd_cm / 100.0 * f)
        .or(c.relative_altitude_m)
        .unwrap_or(0.0);
    let below = c
        .longitude
        .zip(c.latitude)
        .and_then(|(lon, lat)| frame.to_work([lon, lat]).ok());
    View {
        footprint: footprint
            .iter()
            .filter_map(|p| frame.to_work(*p).ok())
            .collect(),
        // No position: height 0 keeps the photo out of the plan (owns nothing).
        below_camera: below.unwrap_or([0.0, 0.0]),
        height_m: if below.is_some() { height_m } else { 0.0 },
    }
}

/// A ground rectangle (work frame) in photo `geom`'s pixels, at the height of the photo's
/// centre; `None` when a corner does not project.
pub fn rect_pixels(
    rect: &[[f64; 2]; 4],
    frame: &WorkFrame,
    geom: &PhotoGeometry<'_>,
) -> Option<Vec<[f64; 2]>> {
    let cam = geom.camera();
    let centre = [cam.width as f64 / 2.0, cam.height as f64 / 2.0];
    let h = geom.pixel_to_ground(centre).ok()?.height_m;
    let px: Vec<[f64; 2]> = rect
        .iter()
        .filter_map(|&xy| {
            let ll = frame.to_wgs84(xy).ok()?;
            geom.ground_to_pixel(ll[1], ll[0], h).ok()
        })
        .collect();
    (px.len() == 4).then_some(px)
}

/// Whether `p` lies inside the ring `ring` (any planar or lon/lat coordinates, even-odd
/// rule; the ring may or may not repeat its first point).
pub fn inside(ring: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    let n = ring.len();
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + n - 1) % n]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            inside = !inside;
        }
    }
    inside
}

/// Gives every cell (centre inside some footprint) to the `owners` photos with the smallest
/// off-nadir tangent there (ties to the earlier photo).
pub fn assign(views: &[View], cell_m: f64, owners: usize) -> Ownership {
    let owners = owners.max(1);
    let mut env = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for p in views.iter().flat_map(|v| v.footprint.iter()) {
        env = [
            env[0].min(p[0]),
            env[1].min(p[1]),
            env[2].max(p[0]),
            env[3].max(p[1]),
        ];
    }
    let empty = Ownership {
        cell_m,
        origin: [0.0, 0.0],
        runs: vec![Vec::new(); views.len()],
        cells_covered: 0,
    };
    if !env.iter().all(|x| x.is_finite()) || cell_m <= 0.0 {
        return empty;
    }
    let origin = [
        (env[0] / cell_m).floor() * cell_m,
        (env[1] / cell_m).floor() * cell_m,
    ];
    let nx = ((env[2] - origin[0]) / cell_m).ceil() as usize + 1;
    let ny = ((env[3] - origin[1]) / cell_m).ceil() as usize + 1;
    // The best `owners` (tangent, photo) per cell, sorted.
    let mut best = vec![(f64::INFINITY, u32::MAX); nx * ny * owners];
    for (i, v) in views.iter().enumerate() {
        if v.footprint.len() < 3 || v.height_m.is_nan() || v.height_m <= 0.0 {
            continue;
        }
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in &v.footprint {
            lo = [lo[0].min(p[0]), lo[1].min(p[1])];
            hi = [hi[0].max(p[0]), hi[1].max(p[1])];
        }
        let cx0 = ((lo[0] - origin[0]) / cell_m).floor().max(0.0) as usize;
        let cy0 = ((lo[1] - origin[1]) / cell_m).floor().max(0.0) as usize;
        let cx1 = (((hi[0] - origin[0]) / cell_m).ceil() as usize).min(nx - 1);
        let cy1 = (((hi[1] - origin[1]) / cell_m).ceil() as usize).min(ny - 1);
        for cy in cy0..=cy1 {
            for cx in cx0..=cx1 {
                let p = [
                    origin[0] + (cx as f64 + 0.5) * cell_m,
                    origin[1] + (cy as f64 + 0.5) * cell_m,
                ];
                if !inside(&v.footprint, p) {
                    continue;
                }
                let d = ((p[0] - v.below_camera[0]).powi(2) + (p[1] - v.below_camera[1]).powi(2))
                    .sqrt();
                let mut cand = (d / v.height_m, i as u32);
                let slots = &mut best[(cy * nx + cx) * owners..][..owners];
                for s in slots.iter_mut() {
                    if cand.0 < s.0 || (cand.0 == s.0 && cand.1 < s.1) {
                        std::mem::swap(s, &mut cand);
                    }
                }
            }
        }
    }
    let mut runs = vec![Vec::new(); views.len()];
    let mut cells_covered = 0;
    for cy in 0..ny {
        // Open run per photo in this row: first column.
        let mut open: Vec<Option<usize>> = vec![None; views.len()];
        for cx in 0..=nx {
            let slots: &[(f64, u32)] = if cx < nx {
                &best[(cy * nx + cx) * owners..][..owners]
            } else {
                &[]
            };
            if slots.first().is_some_and(|s| s.1 != u32::MAX) {
                cells_covered += 1;
            }
            for (i, o) in open.iter_mut().enumerate() {
                let owns = slots.iter().any(|s| s.1 == i as u32);
                match (*o, owns) {
                    (None, true) => *o = Some(cx),
                    (Some(c0), false) => {
                        runs[i].push((cy as u32, c0 as u32, (cx - 1) as u32));
                        *o = None;
                    }
                    _ => {}
                }
            }
        }
    }
    Ownership {
        cell_m,
        origin,
        runs,
        cells_covered,
    }
}

/// The cells photo `i` owns as polygons in its pixels (one quad per run of cells, widened
/// by `margin_m`, [`Margins::owned_m`]).
pub fn owned_pixels(
    own: &Ownership,
    i: usize,
    frame: &WorkFrame,
    geom: &PhotoGeometry<'_>,
    margin_m: f64,
) -> Vec<Vec<[f64; 2]>> {
    let cam = geom.camera();
    let centre = [cam.width as f64 / 2.0, cam.height as f64 / 2.0];
    let Ok(h) = geom.pixel_to_ground(centre).map(|g| g.height_m) else {
        return Vec::new();
    };
    let to_px = |xy: [f64; 2]| -> Option<[f64; 2]> {
        let ll = frame.to_wgs84(xy).ok()?;
        geom.ground_to_pixel(ll[1], ll[0], h).ok()
    };
    own.runs
        .get(i)
        .map(|runs| {
            runs.iter()
                .filter_map(|&run| {
                    let [a, _, b, _] = own.run_rect(run);
                    let (m, lo, hi) = (margin_m, a, b);
                    let rect = [
                        [lo[0] - m, lo[1] - m],
                        [hi[0] + m, lo[1] - m],
                        [hi[0] + m, hi[1] + m],
                        [lo[0] - m, hi[1] + m],
                    ];
                    let px: Vec<[f64; 2]> = rect.iter().filter_map(|&q| to_px(q)).collect();
                    (px.len() == 4).then_some(px)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One model's tiles on one photo under the plan.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The region of interest to infer (pixel polygons): the given one within owned ground.
    pub roi: Vec<Vec<[f64; 2]>>,
    /// Tiles the given region of interest alone skips (register / vegetation).
    pub roi_skipped: usize,
    /// Where tiles were run, on the ground (WGS 84 lon/lat rings), for multi-view evidence.
    pub processed: Vec<Vec<[f64; 2]>>,
}

/// The flight's coverage plan: who owns which ground, per owners-per-cell count.
pub struct Planner<'a> {
    frame: &'a WorkFrame,
    registers_given: bool,
    rules: EvidenceRules,
    /// Borrowed from the prepared flight (a copy per batch held about 0.6 MB more at the
    /// inference peak of a 1,000-photo flight).
    owned: &'a BTreeMap<usize, Ownership>,
    windows: bool,
    margins: Margins,
}

type Placed<'a, 'b> = (&'a Capture, PhotoGeometry<'b>, Vec<[f64; 2]>, f64);

/// The evidence rules beside the models (`evidence.toml`), default without one. A broken
/// file is reported by the report stage, which reads it again.
pub(crate) fn evidence_rules(models_dir: &Path) -> EvidenceRules {
    let path = models_dir.join("evidence.toml");
    if path.is_file() {
        EvidenceRules::load(&path).unwrap_or_default()
    } else {
        EvidenceRules::default()
    }
}

/// Plans the flight's photos (`geoms`: capture, geometry, footprint lon/lat, GSD cm) for
/// the models of `manifests`: the ownership per owners-per-cell count; `on = false` plans
/// nothing (every tile is inferred). Serialisable, so a planned flight can be inferred in
/// batches elsewhere ([`crate::units`]).
pub fn ownership(
    on: bool,
    windows: bool,
    geoms: &[Placed<'_, '_>],
    frame: &WorkFrame,
    models_dir: &Path,
    manifests: &[Manifest],
) -> BTreeMap<usize, Ownership> {
    let rules = evidence_rules(models_dir);
    let mut owned = BTreeMap::new();
    if on {
        let views: Vec<View> = geoms
            .iter()
            .map(|(c, _, fp, gsd_cm)| view_of(c, fp, *gsd_cm, frame))
            .collect();
        for m in manifests {
            let classes: Vec<String> = m.classes.iter().map(|k| k.name.clone()).collect();
            let k = owners_planned(&rules, &classes, windows);
            owned.entry(k).or_insert_with(|| assign(&views, CELL_M, k));
            // With windows: where second views are looked for, per class.
            for c in classes.iter().filter(|c| windows && needs_views(&rules, c)) {
                let k = owners_for(&rules, std::slice::from_ref(c));
                owned.entry(k).or_insert_with(|| assign(&views, CELL_M, k));
            }
        }
    }
    owned
}

impl<'a> Planner<'a> {
    /// The evidence rules beside the models.
    pub fn rules(&self) -> &EvidenceRules {
        &self.rules
    }

    /// The planner over an [`ownership`] (empty: every tile is inferred).
    pub fn new(
        owned: &'a BTreeMap<usize, Ownership>,
        frame: &'a WorkFrame,
        models_dir: &Path,
        registers_given: bool,
        windows: bool,
        margins: Margins,
    ) -> Planner<'a> {
        Planner {
            frame,
            registers_given,
            rules: evidence_rules(models_dir),
            owned,
            windows,
            margins,
        }
    }

    /// The plan's margins (owned ground, windows).
    pub fn margins(&self) -> Margins {
        self.margins
    }

    /// Whether candidates of `class` get second-view windows under this plan.
    pub fn wants_window(&self, class: &str) -> bool {
        self.windows && self.owned.contains_key(&1) && needs_views(&self.rules, class)
    }

    /// The one-owner plan every photo inferred, and the plan whose owners give a
    /// candidate of `class` its second views ([`windows_for`]).
    pub fn window_plans(&self, class: &str) -> Option<(&Ownership, &Ownership)> {
        let k = owners_for(&self.rules, &[class.to_string()]);
        Some((self.owned.get(&1)?, self.owned.get(&k)?))
    }

    /// Photo `i`'s tiles for the model of `manifest` within `roi`; `None` when coverage
    /// planning is off.
    pub fn restrict(
        &self,
        i: usize,
        geom: &PhotoGeometry<'_>,
        manifest: &Manifest,
        img: &RgbImage,
        gsd_mm: f64,
        roi: Option<&[Vec<[f64; 2]>]>,
    ) -> Option<Planned> {
        let classes: Vec<String> = manifest.classes.iter().map(|k| k.name.clone()).collect();
        let own = self
            .owned
            .get(&owners_planned(&self.rules, &classes, self.windows))?;
        let owned_px = owned_pixels(own, i, self.frame, geom, self.margins.owned_m);
        let (w, h) = img.dimensions();
        let roi_skipped = TilePlan::new(w, h, manifest, Some(gsd_mm), roi).tiles_skipped;
        let planned = restrict(roi, &owned_px);
        let processed = if self.registers_given {
            crate::roi::pixels_to_ground(geom, &planned)
        } else {
            crate::roi::pixels_to_ground(geom, &owned_px)
        };
        Some(Planned {
            roi: planned,
            roi_skipped,
            processed,
        })
    }
}

/// Clips `subject` by the convex polygon `clip` (Sutherland-Hodgman, either orientation).
fn clip_convex(subject: &[[f64; 2]], clip: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let area2: f64 = (0..clip.len())
        .map(|i| {
            let (a, b) = (clip[i], clip[(i + 1) % clip.len()]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    let sign = if area2 >= 0.0 { 1.0 } else { -1.0 };
    let mut out = subject.to_vec();
    for i in 0..clip.len() {
        if out.is_empty() {
            break;
        }
        let (a, b) = (clip[i], clip[(i + 1) % clip.len()]);
        let side =
            |p: [f64; 2]| sign * ((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]));
        let input = std::mem::take(&mut out);
        for j in 0..input.len() {
            let (p, q) = (input[j], input[(j + 1) % input.len()]);
            let (sp, sq) = (side(p), side(q));
            if sp >= 0.0 {
                out.push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let t = sp / (sp - sq);
                out.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
            }
        }
    }
    out
}

/// The part of a region of interest (pixel polygons) inside the owned pixel polygons
/// (convex quads); `None` for `roi` = the whole photo, so the owned polygons themselves.
pub fn restrict(roi: Option<&[Vec<[f64; 2]>]>, owned: &[Vec<[f64; 2]>]) -> Vec<Vec<[f64; 2]>> {
    let Some(roi) = roi else {
        return owned.to_vec();
    };
    let ob: Vec<[f64; 4]> = owned.iter().map(|o| bbox(o)).collect();
    let mut out = Vec::new();
    for r in roi {
        let rb = bbox(r);
        for (o, b) in owned.iter().zip(&ob) {
            if b[0] > rb[2] || b[2] < rb[0] || b[1] > rb[3] || b[3] < rb[1] {
                continue;
            }
            let c = clip_convex(r, o);
            if c.len() >= 3 {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<[f64; 2]> {
        vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    }

    fn cells_of(o: &Ownership, photo: usize) -> Vec<(usize, usize)> {
        o.runs[photo]
            .iter()
            .flat_map(|&(r, c0, c1)| (c0..=c1).map(move |c| (r as usize, c as usize)))
            .collect()
    }

    /// A strip of three overlapping nadir photos, and a low oblique photo whose footprint
    /// lies inside the middle photo's.
    fn views() -> Vec<View> {
        let nadir = |cx: f64| View {
            footprint: square(cx - 30.0, 0.0, cx + 30.0, 40.0),
            below_camera: [cx, 20.0],
            height_m: 40.0,
        };
        vec![
            nadir(30.0),
            nadir(70.0),
            nadir(110.0),
            View {
                footprint: square(60.0, 10.0, 80.0, 30.0),
                below_camera: [50.0, 20.0],
                height_m: 15.0,
            },
        ]
    }

    #[test]
    fn every_cell_has_one_owner_and_a_view_inside_a_better_one_owns_nothing() {
        let v = views();
        let o = assign(&v, 1.0, 1);
        // The union of the footprints: x 0-140, y 0-40 = 5,600 cells of 1 m.
        assert_eq!(o.cells_covered, 140 * 40);
        let mut seen = std::collections::BTreeMap::new();
        for p in 0..v.len() {
            for c in cells_of(&o, p) {
                *seen.entry(c).or_insert(0) += 1;
            }
        }
        assert_eq!(seen.len(), 140 * 40);
        assert!(
            seen.values().all(|&n| n == 1),
            "each cell owned exactly once"
        );
        assert!(
            o.runs[3].is_empty(),
            "the oblique photo owns {:?}",
            o.runs[3]
        );
        // Nearest the camera: the middle photo owns x 50-90 (cells 50..=89), split at the
        // midpoints between cameras.
        let mid: Vec<_> = cells_of(&o, 1);
        assert_eq!(mid.len(), 40 * 40);
        assert!(mid.iter().all(|&(_, c)| (50..90).contains(&c)));
        // Owned rectangles lie inside the photo's footprint.
        for &run in &o.runs[0] {
            let r = o.run_rect(run);
            assert!(r.iter().all(|p| p[0] >= 0.0 && p[0] <= 60.0));
        }
    }

    #[test]
    fn two_owners_per_cell_where_two_photos_overlap() {
        let v = views();
        let o = assign(&v, 1.0, 2);
        let mut seen = std::collections::BTreeMap::new();
        for p in 0..v.len() {
            for c in cells_of(&o, p) {
                *seen.entry(c).or_insert(0) += 1;
            }
        }
        // Two owners where two or more footprints cover the cell, else its one photo.
        assert_eq!(seen.len(), 140 * 40);
        for (&(r, c), &n) in &seen {
            let p = [c as f64 + 0.5, r as f64 + 0.5];
            let covering = v.iter().filter(|w| inside(&w.footprint, p)).count();
            assert_eq!(n, covering.min(2), "cell ({r}, {c})");
        }
        // The oblique photo is second only where the middle photo is the one other view.
        assert!(cells_of(&o, 3).iter().all(|&(_, c)| (60..80).contains(&c)));
    }

    #[test]
    fn owners_follow_the_evidence_rules() {
        let rules = EvidenceRules::default();
        assert_eq!(owners_for(&rules, &["crack".into(), "pothole".into()]), 3);
        assert_eq!(owners_for(&rules, &["pothole".into()]), 1);
        assert_eq!(owners_for(&rules, &["roof_damage".into()]), 1);
        // debris: min_ratio 0.5 needs three views for one detection alone to fall below it.
        assert_eq!(
            owners_for(&rules, &["missing_tile".into(), "debris".into()]),
            3
        );
        // moss has the same ratio but is not reported: it needs no second view.
        assert_eq!(
            owners_for(&rules, &["missing_tile".into(), "moss".into()]),
            1
        );
        assert!(!needs_views(&rules, "moss"));
        let mut on = rules.clone();
        on.rules.iter_mut().for_each(|r| r.report = true);
        assert_eq!(owners_for(&on, &["missing_tile".into(), "moss".into()]), 3);
    }

    #[test]
    fn second_view_windows_go_to_the_other_owners_that_did_not_infer_the_spot() {
        let v = views();
        let (one, three) = (assign(&v, 1.0, 1), assign(&v, 1.0, 3));
        let cand = |x: f64| [x - 0.5, 20.0, x + 0.5, 21.0];
        let photos = |w: &[(usize, [[f64; 2]; 4])]| w.iter().map(|p| p.0).collect::<Vec<_>>();
        let d = Margins::default();
        // x 70 (the middle photo's ground): its other owners are the low oblique photo
        // (owns nothing alone) and no outer nadir photo (neither covers it).
        let w = windows_for(&one, &three, 1, cand(70.0), d);
        assert_eq!(photos(&w), vec![3]);
        // The window: the candidate's box widened by the margin on every side.
        let m = WINDOW_MARGIN_M;
        assert_eq!(
            w[0].1,
            [
                [69.5 - m, 20.0 - m],
                [70.5 + m, 20.0 - m],
                [70.5 + m, 21.0 + m],
                [69.5 - m, 21.0 + m]
            ]
        );
        // x 58: the first photo covers it (footprint to 60) but alone owns only to
        // 50 + MARGIN_M; the oblique photo (from 60) does not cover it.
        assert_eq!(
            photos(&windows_for(&one, &three, 1, cand(58.0), d)),
            vec![0]
        );
        // x 53: the first photo inferred it already (within MARGIN_M of its ground).
        assert!(windows_for(&one, &three, 1, cand(53.0), d).is_empty());
        // x 83: the last photo covers it (from 80) and alone owns from 90 - MARGIN_M.
        assert_eq!(
            photos(&windows_for(&one, &three, 1, cand(83.0), d)),
            vec![2]
        );
        // Never the candidate's own photo; where no other photo covers the spot, none.
        assert!(windows_for(&one, &three, 0, cand(10.0), d).is_empty());
        // Only the owners of the spot: with two owners per cell, x 70 is the middle and
        // the oblique photo's, so the oblique photo still gets the window; with one owner
        // per cell for the views too, nothing.
        let two = assign(&v, 1.0, 2);
        assert_eq!(photos(&windows_for(&one, &two, 1, cand(70.0), d)), vec![3]);
        assert!(windows_for(&one, &one, 1, cand(70.0), d).is_empty());
        // Other margins: the window is widened by its own; with no margin on owned ground,
        // the first photo did not infer x 53 and gets the window.
        let narrow = Margins {
            owned_m: 0.0,
            window_m: 1.0,
        };
        let w = windows_for(&one, &three, 1, cand(53.0), narrow);
        assert_eq!(photos(&w), vec![0]);
        assert_eq!(w[0].1[0], [52.5 - 1.0, 20.0 - 1.0]);
    }

    #[test]
    fn margins_come_from_the_setting_or_the_defaults() {
        assert_eq!(Margins::parse(None).unwrap(), Margins::default());
        assert_eq!(Margins::parse(Some(" ")).unwrap(), Margins::default());
        assert_eq!(
            Margins::parse(Some("2, 1.5")).unwrap(),
            Margins {
                owned_m: 2.0,
                window_m: 1.5
            }
        );
        for bad in ["2", "-1,2", "a,b", "1,2,3", "1,inf"] {
            let e = Margins::parse(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(MARGINS_ENV) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_window_is_a_few_tiles_of_the_other_photo() {
        // A nadir photo 40 m up, north up: 4000 x 2250 px at 1.7 cm/px.
        let (lat, lon) = (46.842_607, -91.994_560);
        let cap = Capture {
            file: "w.jpg".into(),
            width: 4000,
            height: 2250,
            latitude: Some(lat),
            longitude: Some(lon),
            absolute_altitude_m: Some(198.5),
            relative_altitude_m: Some(40.0),
            gimbal_yaw_deg: Some(0.0),
            gimbal_pitch_deg: Some(-90.0),
            gimbal_roll_deg: Some(0.0),
            focal_length_px: Some(3.61 / 6.17 * 4000.0),
            ..Capture::default()
        };
        let ground = besikta_georef::Ground::TakeOffPlane;
        let geom = PhotoGeometry::new(&cap, &ground).unwrap();
        let frame = WorkFrame::utm_for(lon, lat).unwrap();
        let below = frame.to_work([lon, lat]).unwrap();
        // A 1 m candidate 8 m east of the point below the camera.
        let (x, y) = (below[0] + 8.0, below[1]);
        let fp: Vec<[f64; 2]> = geom
            .footprint(&besikta_georef::FootprintOptions::default())
            .unwrap()
            .iter()
            .map(|p| frame.to_work(*p).unwrap())
            .collect();
        let v = vec![
            View {
                footprint: fp.clone(),
                below_camera: below,
                height_m: 40.0,
            },
            View {
                footprint: fp,
                below_camera: below,
                height_m: 40.0,
            },
        ];
        // Both photos own every cell (two owners); photo 1 alone owns nothing.
        let several = assign(&v, 1.0, 2);
        let single = Ownership {
            runs: vec![several.runs[0].clone(), Vec::new()],
            ..several.clone()
        };
        let w = windows_for(
            &single,
            &several,
            0,
            [x - 0.5, y - 0.5, x + 0.5, y + 0.5],
            Margins::default(),
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0, 1);
        let px = rect_pixels(&w[0].1, &frame, &geom).unwrap();
        let b = bbox(&px);
        // 5 m on the ground is about 290 px; east is to the right of the centre.
        assert!((b[2] - b[0] - 5.0 / 0.0171).abs() < 20.0, "{b:?}");
        assert!((b[0] + b[2]) / 2.0 > 2000.0 + 6.0 / 0.0171, "{b:?}");
        assert!(((b[1] + b[3]) / 2.0 - 1125.0).abs() < 30.0, "{b:?}");
        let manifest = Manifest::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/crack/crack-unet.toml"),
        )
        .unwrap();
        let all = TilePlan::new(4000, 2250, &manifest, Some(17.1), None);
        let plan = TilePlan::new(
            4000,
            2250,
            &manifest,
            Some(17.1),
            Some(std::slice::from_ref(&px)),
        );
        // 290 px across 256 px tiles overlapping by 32: two or three per axis.
        assert!(
            (4..=9).contains(&plan.tiles.len()),
            "{} of {} tiles",
            plan.tiles.len(),
            all.tiles_total
        );
        assert!(all.tiles_total >= 150, "{}", all.tiles_total);
        for t in &plan.tiles {
            let r = [
                t.x as f64,
                t.y as f64,
                (t.x + plan.tile_w) as f64,
                (t.y + plan.tile_h) as f64,
            ];
            assert!(besikta_infer::tiling::rect_touches_polygon(r, &px));
        }
    }

    #[test]
    fn a_region_of_interest_is_clipped_to_the_owned_ground() {
        let roi = vec![
            square(0.0, 0.0, 100.0, 10.0),
            square(500.0, 500.0, 600.0, 600.0),
        ];
        let owned = vec![square(50.0, -5.0, 200.0, 5.0)];
        let r = restrict(Some(&roi), &owned);
        assert_eq!(r.len(), 1);
        let b = bbox(&r[0]);
        assert_eq!(b, [50.0, 0.0, 100.0, 5.0]);
        assert_eq!(restrict(None, &owned), owned);
    }
}
