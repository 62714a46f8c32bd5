//! Flight alignment: ties a flight's photos to each other so that one spot on the ground
//! lands on one spot on the map whichever photo sees it.
//!
//! Consumer drones write GPS positions a few metres off per photo and a compass heading off
//! by about a degree. [`align`] corrects them from the photos themselves:
//!
//! 1. **Ground images.** Each photo is decoded, averaged down to about the alignment GSD
//!    ([`AlignConfig::gsd_m`], 7.5 cm) and projected through georef's camera model onto the
//!    ground (plane or DEM) in the flight's local East-North-Up frame, on one common grid.
//!    Registration runs on the gradient magnitude (robust to exposure differences), with
//!    vegetation masked (excess green `2G - R - B` above [`AlignConfig::vegetation_exg`]):
//!    treetops stand metres above the ground and move between views by parallax.
//! 2. **Pairs.** Neighbours come from an R-tree on the ground envelopes; a pair is tried when
//!    the photos share at least [`AlignConfig::min_overlap`] of the smaller footprint.
//!    Masked normalised cross-correlation finds the relative shift, coarse (4x the GSD, the
//!    whole search radius) then fine; the pair is rejected with a reason when the peak is
//!    low, not distinct from the best shift farther than [`AlignConfig::distinct_m`] away,
//!    at the edge of the search window, or the shared ground has too little texture.
//!    The overlap is then cut into tiles correlated on their own: tie points whose spread
//!    carries the relative rotation.
//! 3. **Adjustment.** One least-squares solve of per-photo corrections (east, north, and a
//!    rotation about the camera's vertical, i.e. yaw) over all tie points, Huber-weighted
//!    and iteratively reweighted. GPS and compass are unbiased on average, so each connected
//!    block's mean shift and mean rotation are held at zero: alignment makes the photos
//!    agree with each other; it does not move the flight as a whole.
//! 4. **Acceptance.** A photo takes its correction only when that makes its own tie
//!    residuals smaller than they were with the metadata poses; otherwise its ties are
//!    dropped, the rest is solved again, and it keeps the metadata pose with the reason.
//!    A photo that cannot be aligned for any reason (single photo, no overlap, uniform
//!    ground, undecodable, oblique) keeps its metadata pose and says why; nothing fails as
//!    a whole.
//!
//! 5. **Reference** ([`align_with_reference`]). A georeferenced orthophoto in any CRS
//!    ([`Reference`], read through GDAL) is resampled onto the same grid and matched to
//!    every photo like one more neighbour that does not move; a block tied to it is
//!    anchored by it instead of by its mean, which fixes the absolute position
//!    (`PoseSource::Reference`). A reference that cannot be read or does not cover the
//!    flight is set aside with a note; the flight is still aligned to itself.
//! 6. **Roads** ([`align_to`] with [`RoadOutlines`]). Without a reference, an asset
//!    register's road surfaces fix the absolute position instead: after the adjustment each
//!    aligned block is moved as a whole to where its photos' road edges fit the register's
//!    (`PoseSource::Register`; see the `roads` module for the test it must pass).
//!
//! A per-photo scale (the camera's height above the ground) is estimated too, and kept
//! only where it cuts the residuals by a fifth; the flight's mean height stays the ground
//! model's.

mod adjust;
mod compare;
mod correlate;
mod features;
mod grounds;
mod mosaic;
mod ortho;
mod reference;
mod roads;
mod tiles;

pub use compare::{compare_pairs, Comparison, Estimate, PairComparison};
pub use features::{FeatureConfig, FeatureMatch, Rigid};
pub use mosaic::{apply_poses_by_name, write_mosaic, MosaicConfig, MosaicSummary};
pub use reference::Reference;
pub use roads::{RoadOutlines, RoadSurface};
pub use tiles::{tile_bounds, web_tile, WebTile, TILE_PX};

use adjust::Obs;
use besikta_core::Capture;
use besikta_georef::Ground;
use grounds::{Grounds, Placed};
use ortho::Frame;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How alignment runs. The defaults suit nadir photos from 20-120 m.
#[derive(Debug, Clone)]
pub struct AlignConfig {
    /// Ground size of one cell of the projected photos, metres.
    pub gsd_m: f64,
    /// Largest relative shift searched between two photos, metres.
    pub search_radius_m: f64,
    /// Least shared fraction of the smaller footprint for a pair to be tried.
    pub min_overlap: f64,
    /// At most this many neighbours per photo (the largest overlaps).
    pub max_neighbours: usize,
    /// Least ground both photos must see clearly (masked cells excluded), square metres.
    pub min_overlap_m2: f64,
    /// Least normalised cross-correlation at the peak.
    pub min_peak: f64,
    /// Least lead of the peak over the best shift farther than `distinct_m`.
    pub min_margin: f64,
    pub distinct_m: f64,
    /// Least standard deviation of the gradient image (grey levels per cell) on the shared
    /// ground: below it the ground is uniform (water, fresh asphalt, snow).
    pub min_texture: f64,
    /// Excess green `2G - R - B` above which a cell is vegetation and masked.
    pub vegetation_exg: f32,
    /// Least normalised cross-correlation of a tile at the fine GSD.
    pub min_tile_peak: f64,
    /// The overlap is cut into `tiles x tiles` tiles for tie points.
    pub tiles: usize,
    /// Search radius of a tile around its pair's shift, and its distinctness distance,
    /// metres.
    pub tile_search_m: f64,
    pub tile_distinct_m: f64,
    /// Huber threshold in robust standard deviations of the residuals.
    pub huber_k: f64,
    /// Photos looking farther from straight down than this are not aligned, degrees.
    pub max_off_nadir_deg: f64,
    /// Try a per-photo scale (height above the ground) and keep it where it cuts the
    /// residuals by a fifth.
    pub estimate_scale: bool,
    /// Most memory the photos' ground images may hold between the pairs that need them,
    /// MiB (a Brighton photo's is about 20 MiB). Photos are matched in ground order and
    /// each image is dropped after its last pair; one dropped too early is projected
    /// again, which costs time, not accuracy. At least the two images of one pair are
    /// always held. Default [`DEFAULT_MEMORY_MB`], or `BESIKTA_ALIGN_MEMORY_MB`.
    pub memory_mb: usize,
    /// Most photos' worth of ground images held at once (the largest image projected so
    /// far times this), but not less than [`MIN_HOLD_MB`]: small photos then do not fill
    /// `memory_mb` with hundreds of images that the next stage (inference, which holds
    /// about 300 MiB of its own) would not need, so the peak does not grow with the flight.
    /// Default [`DEFAULT_HOLD_PHOTOS`]; 0: `memory_mb` alone.
    pub hold_photos: usize,
    /// Largest shift of the whole flight searched when fitting it to a register's roads,
    /// metres (consumer GPS is off by 1-5 m).
    pub road_search_m: f64,
}

/// Photos' worth of ground images held at most ([`AlignConfig::hold_photos`]): the 18
/// Brighton photos (about 20 MiB each) all fit under `memory_mb` still; 1,600 px simulated
/// photos (about 2 MiB) are held within [`MIN_HOLD_MB`] instead of 384 MiB: 200 photos
/// aligned in 7.6 s with 332 projections and 183 MB peak, against 6.1 s, 210 projections
/// and 431 MB, poses identical (`benches/results/align-budget-2026-12-05.md`).
pub const DEFAULT_HOLD_PHOTOS: usize = 24;

/// The least memory, MiB, [`AlignConfig::hold_photos`] limits the ground images to (at
/// 96 MiB the 200 simulated photos took 348 projections and 8.2 s).
pub const MIN_HOLD_MB: usize = 128;

/// The ground images' default memory budget, MiB: the 18 Brighton photos (9 MP) all fit
/// (356 MiB held at most), so none is projected twice; with 192 MiB 35 projections were made
/// for 18 photos and alignment took 1.8x as long (`benches/results/align-budget-2026-12-04.md`).
pub const DEFAULT_MEMORY_MB: usize = 384;

/// Environment variable that sets [`AlignConfig::memory_mb`] (MiB) for every alignment.
pub const MEMORY_ENV: &str = "BESIKTA_ALIGN_MEMORY_MB";

/// [`DEFAULT_MEMORY_MB`], or the whole number of MiB in [`MEMORY_ENV`]; a value that is not
/// one is refused with a warning on stderr and the default is used. Read once per process
/// (every `AlignConfig::default()` asks), so a bad value is warned about once.
pub fn memory_mb_from_env() -> usize {
    static BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        let v = std::env::var(MEMORY_ENV).ok();
        memory_mb_of(v.as_deref()).unwrap_or_else(|e| {
            eprintln!("warning: {e}; using {DEFAULT_MEMORY_MB}");
            DEFAULT_MEMORY_MB
        })
    })
}

/// The budget a value of [`MEMORY_ENV`] sets (`None`: unset, the default).
fn memory_mb_of(v: Option<&str>) -> Result<usize, String> {
    match v {
        None => Ok(DEFAULT_MEMORY_MB),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{MEMORY_ENV}={v:?} is not a whole number of MiB")),
    }
}

impl Default for AlignConfig {
    fn default() -> Self {
        AlignConfig {
            gsd_m: 0.075,
            search_radius_m: 8.0,
            min_overlap: 0.2,
            max_neighbours: 8,
            min_overlap_m2: 20.0,
            min_peak: 0.3,
            min_margin: 0.05,
            distinct_m: 1.0,
            min_texture: 1.0,
            vegetation_exg: 20.0,
            min_tile_peak: 0.25,
            tiles: 4,
            tile_search_m: 0.6,
            tile_distinct_m: 0.3,
            huber_k: 1.5,
            max_off_nadir_deg: 20.0,
            estimate_scale: true,
            memory_mb: memory_mb_from_env(),
            hold_photos: DEFAULT_HOLD_PHOTOS,
            road_search_m: 6.0,
        }
    }
}

/// Where a photo's pose comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoseSource {
    /// The photo's own metadata (not aligned; the reason says why).
    Metadata,
    /// Corrected by alignment to the other photos of the flight.
    Flight,
    /// Corrected by alignment to a reference orthophoto.
    Reference,
    /// Aligned to the flight, and the flight moved as a whole onto an asset register's
    /// roads.
    Register,
}

impl PoseSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PoseSource::Metadata => "metadata",
            PoseSource::Flight => "flight",
            PoseSource::Reference => "reference",
            PoseSource::Register => "register",
        }
    }
}

/// One photo's pose after alignment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhotoPose {
    pub file: String,
    pub source: PoseSource,
    /// Refined camera position, WGS 84 degrees (the metadata position when not aligned).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Correction applied to the camera position, metres east and north.
    pub correction_m: [f64; 2],
    /// Correction added to the heading (yaw), degrees clockwise.
    pub yaw_correction_deg: f64,
    /// Change of the camera's height above the ground, metres (0 unless the flight's data
    /// asked for a scale; see [`AlignSummary::scale_estimated`]).
    pub height_correction_m: f64,
    /// Position uncertainty relative to the rest of the flight, metres (the RMS of this
    /// photo's tie residuals after the adjustment, at least 2 cm); `None` when not aligned.
    pub sigma_m: Option<f64>,
    /// Pairs with this photo that entered the adjustment.
    pub pairs: usize,
    /// RMS of this photo's tie residuals with metadata poses and after, metres.
    pub residual_before_m: Option<f64>,
    pub residual_after_m: Option<f64>,
    /// Why the metadata pose was kept.
    pub reason: Option<String>,
}

/// One pair of overlapping photos that was tried.
#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    pub a: String,
    pub b: String,
    /// Shared fraction of the smaller footprint.
    pub overlap: f64,
    /// The pair's ties entered the final adjustment.
    pub accepted: bool,
    pub peak: Option<f64>,
    pub margin: Option<f64>,
    /// Shift of `b` relative to `a` on the ground with metadata poses, metres east, north.
    pub shift_m: Option<[f64; 2]>,
    pub ties: usize,
    pub reason: Option<String>,
}

/// The figures `summary.json` carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlignSummary {
    pub photos_aligned: usize,
    pub photos_metadata: usize,
    pub pairs_tried: usize,
    pub pairs_accepted: usize,
    /// RMS of the tie shifts between accepted pairs with metadata poses, and of the
    /// residuals after the adjustment, metres.
    pub residual_rms_before_m: Option<f64>,
    pub residual_rms_after_m: Option<f64>,
    /// Whether a per-photo scale (height above the ground) was estimated: only when it
    /// lowers the residual RMS by a fifth or more.
    pub scale_estimated: bool,
    /// What became of the reference orthophoto, when one was given.
    pub reference: Option<String>,
    /// What became of the register's roads, when they were given and no reference was used.
    #[serde(default)]
    pub roads: Option<String>,
    /// The shift of the flight onto the register's roads, metres east, north, when taken.
    #[serde(default)]
    pub road_shift_m: Option<[f64; 2]>,
    /// Time spent decoding and projecting photos, correlating pairs, and in total, seconds.
    pub project_s: f64,
    pub correlate_s: f64,
    pub seconds: f64,
    /// Ground images projected, counting photos projected again after being dropped to
    /// stay within [`AlignConfig::memory_mb`], and the most memory they held at once, MiB.
    pub projections: usize,
    pub held_peak_mb: f64,
}

/// The result of aligning a flight: one pose per capture, in the captures' order.
#[derive(Debug, Clone, Serialize)]
pub struct Alignment {
    pub photos: Vec<PhotoPose>,
    pub pairs: Vec<PairReport>,
    pub summary: AlignSummary,
    /// Indices (into the captures) of the accepted pairs, for re-checking.
    #[serde(skip)]
    pub accepted_pairs: Vec<(usize, usize)>,
}

impl Alignment {
    /// The captures with refined positions and headings (unaligned ones unchanged).
    pub fn apply(&self, captures: &[Capture]) -> Vec<Capture> {
        captures
            .iter()
            .zip(&self.photos)
            .map(|(c, p)| apply_pose(c, p))
            .collect()
    }

    /// The pose of `file`, if it was among the captures aligned.
    pub fn pose_of(&self, file: &str) -> Option<&PhotoPose> {
        self.photos.iter().find(|p| p.file == file)
    }
}

/// The capture with `pose`'s refined position, heading and height (unchanged when the pose
/// is the metadata one).
pub fn apply_pose(c: &Capture, p: &PhotoPose) -> Capture {
    let mut c = c.clone();
    if p.source != PoseSource::Metadata {
        c.latitude = p.latitude;
        c.longitude = p.longitude;
        match (c.gimbal_yaw_deg, c.flight_yaw_deg) {
            (Some(y), _) => c.gimbal_yaw_deg = Some(wrap_deg(y + p.yaw_correction_deg)),
            (None, Some(y)) => c.flight_yaw_deg = Some(wrap_deg(y + p.yaw_correction_deg)),
            (None, None) => c.gimbal_yaw_deg = Some(wrap_deg(p.yaw_correction_deg)),
        }
        // The ground stays where it was (absolute minus relative altitude); the camera
        // moves up or down.
        let dh = p.height_correction_m;
        if dh != 0.0 {
            c.relative_altitude_m = c.relative_altitude_m.map(|h| h + dh);
            c.absolute_altitude_m = c.absolute_altitude_m.map(|h| h + dh);
            if c.absolute_altitude_m.is_none() {
                c.gps_altitude_m = c.gps_altitude_m.map(|h| h + dh);
            }
        }
    }
    c
}

/// Prior sigma of the per-photo scale when it is estimated.
const PRIOR_SCALE: f64 = 0.05;

/// The camera's height above the ground, metres, as its metadata tells it.
fn height_above_ground(c: &Capture) -> f64 {
    c.relative_altitude_m.unwrap_or(40.0)
}

fn wrap_deg(a: f64) -> f64 {
    let r = (a + 180.0).rem_euclid(360.0) - 180.0;
    if r == -180.0 {
        180.0
    } else {
        r
    }
}

/// The flight's frame: centred on the mean camera position, cells of `cfg.gsd_m`.
fn flight_frame(captures: &[Capture], gsd: f64) -> Option<Frame> {
    let pos: Vec<(f64, f64)> = captures
        .iter()
        .filter_map(|c| Some((c.latitude?, c.longitude?)))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect();
    if pos.is_empty() {
        return None;
    }
    let n = pos.len() as f64;
    let lat = pos.iter().map(|p| p.0).sum::<f64>() / n;
    let lon = pos.iter().map(|p| p.1).sum::<f64>() / n;
    let h0 = captures
        .iter()
        .find_map(|c| Some(c.absolute_altitude_m? - c.relative_altitude_m?))
        .unwrap_or(0.0);
    Some(Frame::new(lat, lon, h0, gsd))
}

/// Shared fraction of the smaller of two photos' ground coverage.
fn overlap_fraction(a: &Placed, b: &Placed) -> f64 {
    let both = a.coverage.shared(&b.coverage);
    let (na, nb) = (a.coverage.cells(), b.coverage.cells());
    both as f64 / na.min(nb).max(1) as f64
}

/// Neighbouring pairs `(i, j, overlap)` with `i < j`, at most `max` per photo.
fn neighbour_pairs(placed: &[Option<Placed>], cfg: &AlignConfig) -> Vec<(usize, usize, f64)> {
    use rstar::primitives::{GeomWithData, Rectangle};
    use rstar::{RTree, AABB};
    let boxes: Vec<GeomWithData<Rectangle<[f64; 2]>, usize>> = placed
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let e = o.as_ref()?.envelope;
            Some(GeomWithData::new(
                Rectangle::from_corners([e[0], e[1]], [e[2], e[3]]),
                i,
            ))
        })
        .collect();
    let tree = RTree::bulk_load(boxes);
    let mut chosen = std::collections::BTreeMap::new();
    for (i, o) in placed.iter().enumerate() {
        let Some(o) = o else { continue };
        let e = o.envelope;
        let mut cands: Vec<(usize, f64)> = tree
            .locate_in_envelope_intersecting(&AABB::from_corners([e[0], e[1]], [e[2], e[3]]))
            .filter(|g| g.data != i)
            .filter_map(|g| {
                let other = placed[g.data].as_ref()?;
                let f = overlap_fraction(o, other);
                (f >= cfg.min_overlap).then_some((g.data, f))
            })
            .collect();
        cands.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (j, f) in cands.into_iter().take(cfg.max_neighbours) {
            chosen.insert((i.min(j), i.max(j)), f);
        }
    }
    chosen.into_iter().map(|((i, j), f)| (i, j, f)).collect()
}

/// Connected blocks of photos linked by observations.
fn blocks(n: usize, obs: &[Obs]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut linked = vec![false; n];
    for o in obs {
        let (a, b) = (find(&mut parent, o.a), find(&mut parent, o.b));
        parent[a] = b;
        linked[o.a] = true;
        linked[o.b] = true;
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &l) in linked.iter().enumerate() {
        if l {
            let r = find(&mut parent, i);
            groups.entry(r).or_default().push(i);
        }
    }
    groups.into_values().collect()
}

fn rms(v: impl Iterator<Item = [f64; 2]>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for r in v {
        s += r[0] * r[0] + r[1] * r[1];
        n += 1;
    }
    (n > 0).then(|| (s / n as f64).sqrt())
}

/// Aligns a flight's photos to each other. Never fails as a whole: every photo that cannot
/// be aligned keeps its metadata pose with the reason.
pub fn align(captures: &[Capture], ground: &Ground, cfg: &AlignConfig) -> Alignment {
    align_with_reference(captures, ground, cfg, None)
}

/// [`align`], also matching every photo to a reference orthophoto: those ties enter the
/// same adjustment and fix the absolute position of the blocks they reach.
pub fn align_with_reference(
    captures: &[Capture],
    ground: &Ground,
    cfg: &AlignConfig,
    reference: Option<&Reference>,
) -> Alignment {
    align_to(captures, ground, cfg, reference, None)
}

/// [`align_with_reference`], and where no reference fixes a block's absolute position, an
/// asset register's `roads` do: each block is moved as a whole to where its road edges fit
/// them (the `roads` module says when a fit is taken; `summary.roads` says what happened).
pub fn align_to(
    captures: &[Capture],
    ground: &Ground,
    cfg: &AlignConfig,
    reference: Option<&Reference>,
    roads: Option<&RoadOutlines>,
) -> Alignment {
    let t0 = Instant::now();
    let n = captures.len();
    let metadata = |c: &Capture, reason: String| PhotoPose {
        file: c.file.clone(),
        source: PoseSource::Metadata,
        latitude: c.latitude,
        longitude: c.longitude,
        correction_m: [0.0, 0.0],
        yaw_correction_deg: 0.0,
        height_correction_m: 0.0,
        sigma_m: None,
        pairs: 0,
        residual_before_m: None,
        residual_after_m: None,
        reason: Some(reason),
    };
    let Some(frame) = flight_frame(captures, cfg.gsd_m) else {
        let photos = captures
            .iter()
            .map(|c| metadata(c, "no GPS position".into()))
            .collect();
        return finish(
            photos,
            Vec::new(),
            Vec::new(),
            [None, None],
            [0.0; 2],
            false,
            t0,
        );
    };
    // Every photo is projected once in ground order to learn what it sees; the images
    // themselves are held only while pairs still need them (`Grounds`).
    let mut grounds = Grounds::new(captures, ground, &frame, cfg);
    let order = grounds::ground_order(captures, &frame);
    let projected = grounds.place(&order);
    let place_s = grounds.project_s;
    let t_correlate = Instant::now();
    let mut reasons: Vec<Option<String>> = projected
        .iter()
        .map(|r| r.as_ref().err().cloned())
        .collect();
    let placed: Vec<Option<Placed>> = projected.into_iter().map(Result::ok).collect();

    let candidates = neighbour_pairs(&placed, cfg);
    // The reference, as one more photo that does not move (index n).
    let mut ref_index = None;
    let mut reference_note = None;
    let mut ref_camera = [0.0; 2];
    let mut ref_ortho = None;
    if let Some(r) = reference {
        let env = placed.iter().flatten().map(|o| o.envelope).fold(
            [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
            |a, e| {
                [
                    a[0].min(e[0]),
                    a[1].min(e[1]),
                    a[2].max(e[2]),
                    a[3].max(e[3]),
                ]
            },
        );
        let h = frame.ground_height();
        let projected = if env[0] < env[2] {
            r.project(&frame, env, h, cfg.vegetation_exg)
        } else {
            Err("no photo could be placed on the ground".into())
        };
        match projected {
            Ok(ro) => {
                ref_index = Some(n);
                ref_camera = ro.camera;
                ref_ortho = Some(ro);
            }
            Err(e) => reference_note = Some(format!("reference not used: {e}")),
        }
    }

    // Tasks in ground order, last placed first (their images are still held), each photo
    // matched to the reference right after its last pair.
    let mut rank = vec![0usize; n];
    for (p, &k) in order.iter().enumerate() {
        rank[k] = p;
    }
    let mut by_ground: Vec<usize> = (0..candidates.len()).collect();
    by_ground.sort_by_key(|&c| {
        let (a, b) = (rank[candidates[c].0], rank[candidates[c].1]);
        std::cmp::Reverse((a.max(b), a.min(b)))
    });
    #[derive(Clone, Copy)]
    enum Task {
        Pair(usize),
        Reference(usize),
        Roads(usize),
    }
    // The register's roads, when no reference orthophoto anchors the flight.
    let local_roads = match (roads, &ref_ortho) {
        (Some(r), None) if !r.polygons.is_empty() => {
            Some(roads::LocalRoads::new(r, &frame, frame.ground_height()))
        }
        _ => None,
    };
    let with_roads = local_roads.is_some();
    let mut left = vec![0usize; n];
    for &(i, j, _) in &candidates {
        left[i] += 1;
        left[j] += 1;
    }
    let with_ref = ref_ortho.is_some();
    let mut tasks: Vec<Task> = Vec::new();
    if with_ref {
        let mut lonely: Vec<usize> = (0..n)
            .filter(|&k| placed[k].is_some() && left[k] == 0)
            .collect();
        lonely.sort_by_key(|&k| std::cmp::Reverse(rank[k]));
        tasks.extend(lonely.into_iter().map(Task::Reference));
    }
    for &c in &by_ground {
        tasks.push(Task::Pair(c));
        let (i, j, _) = candidates[c];
        for k in [i, j] {
            left[k] -= 1;
            if left[k] == 0 && with_ref {
                tasks.push(Task::Reference(k));
            }
            if left[k] == 0 && with_roads {
                tasks.push(Task::Roads(k));
            }
        }
    }
    let photos_of: Vec<Vec<usize>> = tasks
        .iter()
        .map(|t| match *t {
            Task::Pair(c) => vec![candidates[c].0, candidates[c].1],
            Task::Reference(k) | Task::Roads(k) => vec![k],
        })
        .collect();
    let reprojected_before = grounds.project_s;
    enum Out {
        Match(Result<correlate::PairMatch, String>, Option<String>),
        Roads(Option<roads::Surface>),
    }
    impl Out {
        fn into_match(self) -> (Result<correlate::PairMatch, String>, Option<String>) {
            match self {
                Out::Match(m, note) => (m, note),
                Out::Roads(_) => (Err("not a pair".into()), None),
            }
        }
    }
    let outcomes = grounds.run(&photos_of, |t, images| match tasks[t] {
        Task::Roads(_) => Out::Roads(
            local_roads
                .as_ref()
                .and_then(|r| roads::surface(images[0], r, cfg)),
        ),
        Task::Pair(_) => {
            let (a, b) = (images[0], images[1]);
            let mut note = None;
            let mut matched = correlate::match_pair(a, b, cfg);
            // Too little ground outside vegetation, or only ground that repeats (a road edge,
            // paving) once a green surface (a painted roof, a lawn) is masked: try with it.
            let why = match &matched {
                Err(e) if e.starts_with("less than") => Some("too little ground"),
                Err(e) if e.starts_with("ambiguous") => Some("ambiguous"),
                _ => None,
            };
            if let Some(why) = why {
                let pa = a.plain.as_deref().unwrap_or(a);
                let pb = b.plain.as_deref().unwrap_or(b);
                if a.plain.is_some() || b.plain.is_some() {
                    matched = correlate::match_pair(pa, pb, cfg)
                        .map_err(|e| format!("{why} outside vegetation, and with it: {e}"));
                    if matched.is_ok() {
                        note = Some(format!(
                            "matched with vegetation included ({why} outside it)"
                        ));
                    }
                }
            }
            Out::Match(matched, note)
        }
        Task::Reference(_) => match &ref_ortho {
            Some(ro) => Out::Match(correlate::match_pair(ro, images[0], cfg), None),
            None => Out::Match(Err("no reference".into()), None),
        },
    });
    let reprojection_s = grounds.project_s - reprojected_before;
    let mut pair_outcome: Vec<Option<_>> = vec![None; candidates.len()];
    let mut ref_outcome: Vec<Option<_>> = vec![None; n];
    let mut road_surfaces: Vec<Option<roads::Surface>> = vec![None; n];
    for (t, out) in tasks.iter().zip(outcomes) {
        let out = out.map_err(|e| format!("cannot project it again: {e}"));
        match (*t, out) {
            (Task::Roads(k), Ok(Out::Roads(s))) => road_surfaces[k] = s,
            (Task::Roads(_), _) => {}
            (Task::Pair(c), out) => pair_outcome[c] = Some(out.map(Out::into_match)),
            (Task::Reference(k), out) => ref_outcome[k] = Some(out.map(Out::into_match)),
        }
    }
    let (projections, held_peak) = (grounds.projections, grounds.peak_bytes);
    drop(grounds);

    let mut pairs = Vec::new();
    let mut obs = Vec::new();
    let mut pair_failures: Vec<Vec<String>> = vec![Vec::new(); n];
    for (c, &(i, j, overlap)) in candidates.iter().enumerate() {
        let Some(out) = pair_outcome[c].take() else {
            continue;
        };
        let mut rep = PairReport {
            a: captures[i].file.clone(),
            b: captures[j].file.clone(),
            overlap,
            accepted: false,
            peak: None,
            margin: None,
            shift_m: None,
            ties: 0,
            reason: None,
        };
        let matched = match out {
            Ok((matched, note)) => {
                rep.reason = note;
                matched
            }
            Err(e) => Err(e),
        };
        match matched {
            Ok(m) => {
                rep.peak = Some(m.peak);
                rep.margin = Some(m.margin);
                rep.shift_m = Some(m.shift_m);
                rep.ties = m.ties.len();
                rep.accepted = true;
                obs.extend(m.ties.iter().map(|&tie| Obs { a: i, b: j, tie }));
            }
            Err(e) => {
                pair_failures[i].push(e.clone());
                pair_failures[j].push(e.clone());
                rep.reason = Some(e);
            }
        }
        pairs.push(rep);
    }
    if let (Some(r), Some(_)) = (reference, &ref_ortho) {
        let mut matched = 0;
        for k in 0..n {
            let Some(out) = ref_outcome[k].take() else {
                continue;
            };
            let mut rep = PairReport {
                a: format!("reference {}", r.path().display()),
                b: captures[k].file.clone(),
                overlap: 1.0,
                accepted: false,
                peak: None,
                margin: None,
                shift_m: None,
                ties: 0,
                reason: None,
            };
            match out.and_then(|(m, _)| m) {
                Ok(m) => {
                    matched += 1;
                    rep.peak = Some(m.peak);
                    rep.margin = Some(m.margin);
                    rep.shift_m = Some(m.shift_m);
                    rep.ties = m.ties.len();
                    rep.accepted = true;
                    obs.extend(m.ties.iter().map(|&tie| Obs { a: n, b: k, tie }));
                }
                Err(e) => rep.reason = Some(format!("against the reference: {e}")),
            }
            pairs.push(rep);
        }
        // The file's name, not its path: a server's jobs read it from their own folders.
        reference_note = Some(format!(
            "{matched} photos matched the reference {}",
            r.path().file_name().map_or_else(
                || r.path().display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ));
    }
    drop(ref_ortho);
    let project_s = place_s + reprojection_s;
    let correlate_s = t_correlate.elapsed().as_secs_f64() - reprojection_s;
    for (i, o) in placed.iter().enumerate() {
        if o.is_some() && !candidates.iter().any(|&(a, b, _)| a == i || b == i) {
            reasons[i] = Some(if n == 1 {
                "a single photo: nothing to align it with".into()
            } else {
                format!(
                    "no other photo shares {:.0} % of its ground",
                    cfg.min_overlap * 100.0
                )
            });
        }
    }

    // Solve; photos whose correction does not improve their residuals leave and the rest
    // is solved again.
    let mut cams: Vec<[f64; 2]> = placed
        .iter()
        .map(|o| o.as_ref().map(|o| o.camera).unwrap_or([0.0; 2]))
        .collect();
    cams.push(ref_camera);
    let nn = n + 1;
    let mut solution = None;
    let mut scale = false;
    for _ in 0..5 {
        if obs.is_empty() {
            break;
        }
        let bl = blocks(nn, &obs);
        // Scale (height above the ground) only where the data ask for it: it must cut the
        // residual RMS by a fifth.
        let fixed = adjust::solve(&cams, &obs, &bl, cfg.huber_k, 8, 1e-6, ref_index);
        let free = adjust::solve(&cams, &obs, &bl, cfg.huber_k, 8, PRIOR_SCALE, ref_index);
        let robust_rms = |s: &adjust::Solution| {
            let mut v: Vec<f64> = s.residuals.iter().map(|r| r[0].hypot(r[1])).collect();
            v.sort_by(f64::total_cmp);
            let keep = &v[..(v.len() * 9).div_ceil(10)];
            (keep.iter().map(|x| x * x).sum::<f64>() / keep.len().max(1) as f64).sqrt()
        };
        let chosen = match (fixed, free) {
            (Some(a), Some(b)) if cfg.estimate_scale && robust_rms(&b) < 0.8 * robust_rms(&a) => {
                scale = true;
                Some(b)
            }
            (a, _) => {
                scale = false;
                a
            }
        };
        let Some(s) = chosen else {
            for o in &obs {
                for k in [o.a, o.b] {
                    reasons[k] = Some("the adjustment is singular".into());
                }
            }
            obs.clear();
            break;
        };
        let mut worse = Vec::new();
        for k in 0..n {
            let mine: Vec<usize> = (0..obs.len())
                .filter(|&q| obs[q].a == k || obs[q].b == k)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let before = rms(mine.iter().map(|&q| obs[q].tie.shift)).unwrap_or(0.0);
            let after = rms(mine.iter().map(|&q| s.residuals[q])).unwrap_or(0.0);
            if after >= before && before > 0.01 {
                worse.push((k, before, after));
            }
        }
        if worse.is_empty() {
            solution = Some(s);
            break;
        }
        for (k, before, after) in worse {
            reasons[k] = Some(format!(
                "a correction would not improve how it agrees with its neighbours (tie residual {:.2} m with metadata, {:.2} m corrected)",
                before, after
            ));
            obs.retain(|o| o.a != k && o.b != k);
        }
    }
    let accepted_pairs: Vec<(usize, usize)> = {
        let mut v: Vec<(usize, usize)> = obs
            .iter()
            .filter(|o| o.a < n && o.b < n)
            .map(|o| (o.a, o.b))
            .collect();
        v.dedup();
        v
    };
    for p in pairs.iter_mut() {
        let i = captures.iter().position(|c| c.file == p.a);
        let j = captures.iter().position(|c| c.file == p.b);
        let to_ref = i.is_none() && obs.iter().any(|o| o.a == n && Some(o.b) == j);
        if p.accepted
            && !to_ref
            && !accepted_pairs
                .iter()
                .any(|&(a, b)| Some(a) == i && Some(b) == j)
        {
            p.accepted = false;
            p.reason =
                Some("dropped with a photo whose correction did not improve its residuals".into());
        }
    }

    let anchored: Vec<usize> = blocks(nn, &obs)
        .into_iter()
        .filter(|b| b.contains(&n))
        .flatten()
        .collect();
    let mut photos = Vec::with_capacity(n);
    for (k, c) in captures.iter().enumerate() {
        let mine: Vec<usize> = (0..obs.len())
            .filter(|&q| obs[q].a == k || obs[q].b == k)
            .collect();
        let (Some(s), false) = (&solution, mine.is_empty()) else {
            let reason = reasons[k].clone().unwrap_or_else(|| {
                let f = &pair_failures[k];
                match f.first() {
                    Some(first) => format!(
                        "none of its {} overlapping pairs matched (e.g. {first})",
                        f.len()
                    ),
                    None => "no pair with it could be matched".into(),
                }
            });
            photos.push(metadata(c, reason));
            continue;
        };
        let [te, tn, rot, sc] = s.x[k];
        let cam = cams[k];
        let h = c
            .absolute_altitude_m
            .or(c.relative_altitude_m)
            .unwrap_or(0.0);
        let ll = frame.to_geo([cam[0] + te, cam[1] + tn], h);
        let before = rms(mine.iter().map(|&q| obs[q].tie.shift));
        let after = rms(mine.iter().map(|&q| s.residuals[q]));
        let mut partners: Vec<usize> = mine.iter().map(|&q| obs[q].a + obs[q].b - k).collect();
        partners.sort_unstable();
        partners.dedup();
        photos.push(PhotoPose {
            file: c.file.clone(),
            source: if anchored.contains(&k) {
                PoseSource::Reference
            } else {
                PoseSource::Flight
            },
            latitude: Some(ll[0]),
            longitude: Some(ll[1]),
            correction_m: [te, tn],
            // A counter-clockwise rotation of the ground image is a smaller heading.
            yaw_correction_deg: -rot.to_degrees(),
            // Ground distances from the nadir grow with the height above the ground.
            height_correction_m: sc * height_above_ground(c),
            sigma_m: after.map(|a| a.max(0.02)),
            pairs: partners.len(),
            residual_before_m: before,
            residual_after_m: after,
            reason: None,
        });
    }
    let (roads_note, road_shift) = match roads {
        None => (None, None),
        Some(_) if with_ref => (
            Some("roads not used: the reference orthophoto places the flight".to_string()),
            None,
        ),
        Some(r) => fit_to_roads(
            r,
            &road_surfaces,
            &blocks(nn, &obs),
            &mut photos,
            |k, e| {
                let c = &captures[k];
                let h = c
                    .absolute_altitude_m
                    .or(c.relative_altitude_m)
                    .unwrap_or(0.0);
                frame.to_geo([cams[k][0] + e[0], cams[k][1] + e[1]], h)
            },
            cfg,
        ),
    };
    let before = rms(obs.iter().map(|o| o.tie.shift));
    let after = solution
        .as_ref()
        .and_then(|s| rms(s.residuals.iter().copied()));
    let mut a = finish(
        photos,
        pairs,
        accepted_pairs,
        [before, after],
        [project_s, correlate_s],
        scale,
        t0,
    );
    a.summary.reference = reference_note;
    a.summary.roads = roads_note;
    a.summary.road_shift_m = road_shift;
    a.summary.projections = projections;
    a.summary.held_peak_mb = held_peak as f64 / f64::from(1u32 << 20);
    a
}

/// Moves each aligned block of `photos` onto the register's `roads` where its photos'
/// surfaces fit them ([`roads::fit`]); `geo(k, correction)` is photo `k`'s position with a
/// correction. The note for the summary, and the largest block's shift when taken.
fn fit_to_roads(
    roads: &RoadOutlines,
    surfaces: &[Option<roads::Surface>],
    blocks: &[Vec<usize>],
    photos: &mut [PhotoPose],
    geo: impl Fn(usize, [f64; 2]) -> [f64; 2],
    cfg: &AlignConfig,
) -> (Option<String>, Option<[f64; 2]>) {
    if roads.polygons.is_empty() {
        return (
            Some(format!(
                "roads not used: {} has no road surface here",
                roads.source
            )),
            None,
        );
    }
    let mut blocks: Vec<Vec<usize>> = blocks
        .iter()
        .map(|b| {
            b.iter()
                .copied()
                .filter(|&k| k < photos.len() && photos[k].source == PoseSource::Flight)
                .collect::<Vec<usize>>()
        })
        .filter(|b| !b.is_empty())
        .collect();
    if blocks.is_empty() {
        return (
            Some("roads not used: no photo was aligned to the flight".into()),
            None,
        );
    }
    blocks.sort_by_key(|b| std::cmp::Reverse(b.len()));
    let mut notes = Vec::new();
    let mut largest = None;
    for (bi, b) in blocks.iter().enumerate() {
        let members: Vec<(&roads::Surface, [f64; 2])> = b
            .iter()
            .filter_map(|&k| surfaces[k].as_ref().map(|s| (s, photos[k].correction_m)))
            .collect();
        let which = if blocks.len() > 1 {
            format!("block of {} photos: ", b.len())
        } else {
            String::new()
        };
        match roads::fit(&members, cfg) {
            Ok(f) if f.shift_m[0].hypot(f.shift_m[1]) < roads::MIN_ROAD_SHIFT_M => {
                notes.push(format!(
                    "{which}already on the roads of {}: the fit says {:.2} m east, {:.2} m north, under {:.2} m, so not moved ({} of {} photos agree; mean correlation {:.2}, {:.2} more than {:.1} m away)",
                    roads.source, f.shift_m[0], f.shift_m[1], roads::MIN_ROAD_SHIFT_M, f.agree, f.photos, f.peak, f.second, cfg.distinct_m
                ));
            }
            Ok(f) => {
                for &k in b {
                    let p = &mut photos[k];
                    p.correction_m = [
                        p.correction_m[0] + f.shift_m[0],
                        p.correction_m[1] + f.shift_m[1],
                    ];
                    let ll = geo(k, p.correction_m);
                    p.latitude = Some(ll[0]);
                    p.longitude = Some(ll[1]);
                    p.source = PoseSource::Register;
                }
                if bi == 0 {
                    largest = Some(f.shift_m);
                }
                notes.push(format!(
                    "{which}moved {:.2} m east, {:.2} m north onto the roads of {} ({} of {} photos agree; mean correlation {:.2}, {:.2} more than {:.1} m away)",
                    f.shift_m[0], f.shift_m[1], roads.source, f.agree, f.photos, f.peak, f.second, cfg.distinct_m
                ));
            }
            Err(e) => notes.push(format!("{which}roads of {} not used: {e}", roads.source)),
        }
    }
    (Some(notes.join("; ")), largest)
}

fn finish(
    photos: Vec<PhotoPose>,
    pairs: Vec<PairReport>,
    accepted_pairs: Vec<(usize, usize)>,
    [before, after]: [Option<f64>; 2],
    [project_s, correlate_s]: [f64; 2],
    scale_estimated: bool,
    t0: Instant,
) -> Alignment {
    let aligned = photos
        .iter()
        .filter(|p| p.source != PoseSource::Metadata)
        .count();
    let summary = AlignSummary {
        photos_aligned: aligned,
        photos_metadata: photos.len() - aligned,
        pairs_tried: pairs.len(),
        pairs_accepted: pairs.iter().filter(|p| p.accepted).count(),
        residual_rms_before_m: before,
        residual_rms_after_m: after,
        scale_estimated,
        reference: None,
        roads: None,
        road_shift_m: None,
        project_s,
        correlate_s,
        seconds: t0.elapsed().as_secs_f64(),
        projections: 0,
        held_peak_mb: 0.0,
    };
    Alignment {
        photos,
        pairs,
        summary,
        accepted_pairs,
    }
}

/// Re-correlates pairs (indices into `captures`) with the poses `captures` carry: the
/// ground shift left between them, metres east and north (`None` where the pair no longer
/// matches). An independent check of an alignment: pass `Alignment::apply`'s captures.
pub fn recheck(
    captures: &[Capture],
    ground: &Ground,
    cfg: &AlignConfig,
    pairs: &[(usize, usize)],
) -> Vec<Option<[f64; 2]>> {
    let Some(frame) = flight_frame(captures, cfg.gsd_m) else {
        return vec![None; pairs.len()];
    };
    // Only the pairs' photos, each held while a later pair still needs it.
    let valid: Vec<usize> = (0..pairs.len())
        .filter(|&p| pairs[p].0 < captures.len() && pairs[p].1 < captures.len())
        .collect();
    let tasks: Vec<Vec<usize>> = valid
        .iter()
        .map(|&p| vec![pairs[p].0, pairs[p].1])
        .collect();
    let mut grounds = Grounds::new(captures, ground, &frame, cfg);
    let shifts = grounds.run(&tasks, |_, images| {
        correlate::match_pair(images[0], images[1], cfg)
            .ok()
            .map(|m| m.shift_m)
    });
    let mut out = vec![None; pairs.len()];
    for (&p, shift) in valid.iter().zip(shifts) {
        out[p] = shift.ok().flatten();
    }
    out
}

#[cfg(test)]
mod memory_budget_tests {
    use super::*;

    #[test]
    fn the_budget_is_the_default_or_a_whole_number_of_mib() {
        assert_eq!(memory_mb_of(None), Ok(DEFAULT_MEMORY_MB));
        assert_eq!(memory_mb_of(Some(" 192 ")), Ok(192));
        assert_eq!(memory_mb_of(Some("0")), Ok(0));
        let e = memory_mb_of(Some("1.5G")).unwrap_err();
        assert!(
            e.contains("BESIKTA_ALIGN_MEMORY_MB") && e.contains("1.5G"),
            "{e}"
        );
    }
}
