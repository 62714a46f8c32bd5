//! Relative shift and rotation between two photos on the ground from point features: FAST
//! corners and BRIEF descriptors (imageproc) on the ground-projected grey images (the same
//! grid the correlation uses), matched by Hamming distance (nearest within the search
//! radius, ratio test, mutual best), and one rigid transform (shift + rotation) fitted by
//! RANSAC. A measured alternative to correlation (see `compare`), not the default.

use crate::ortho::{blur, GrayGround, Raster};
use imageproc::binary_descriptors::brief::{brief, TestPair};
use imageproc::binary_descriptors::BinaryDescriptor;
use imageproc::corners::corners_fast9;
use imageproc::point::Point;
use serde::Serialize;

/// How the feature estimator runs.
#[derive(Debug, Clone)]
pub struct FeatureConfig {
    /// FAST-9 intensity threshold, grey levels.
    pub fast_threshold: u8,
    /// At most this many keypoints per photo (the strongest, at most one per cell of
    /// `cell_px` x `cell_px` so they spread over the overlap).
    pub max_keypoints: usize,
    pub cell_px: u32,
    /// Largest Hamming distance of a match, of 256 bits.
    pub max_hamming: u32,
    /// A match's distance must be below `ratio` times the second nearest one's.
    pub ratio: f64,
    /// RANSAC hypotheses (pairs of matches).
    pub iterations: usize,
    /// A match is an inlier when the transform puts it within this distance, metres.
    pub inlier_m: f64,
    /// Largest relative rotation considered, degrees (compass errors are about one).
    pub max_rotation_deg: f64,
    /// Least inliers for the pair to be used.
    pub min_inliers: usize,
    /// Least RMS distance of the inliers from their centroid, metres: closer together they
    /// do not fix the rotation.
    pub min_spread_m: f64,
    /// With the vegetation mask: keypoints only on ground cells whose descriptor patch is
    /// at most this fraction vegetation.
    pub max_vegetation: f64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            fast_threshold: 12,
            max_keypoints: 2500,
            cell_px: 10,
            max_hamming: 80,
            ratio: 0.85,
            iterations: 2000,
            inlier_m: 0.25,
            max_rotation_deg: 5.0,
            min_inliers: 15,
            min_spread_m: 2.0,
            max_vegetation: 0.25,
        }
    }
}

/// A rigid transform of the ground plane: the point `p` of photo `a`'s ground image is at
/// `centre + shift + R(rotation) (p - centre)` in photo `b`'s (metres, east and north, in
/// the flight frame; rotation in degrees counter-clockwise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rigid {
    pub centre_m: [f64; 2],
    pub shift_m: [f64; 2],
    pub rotation_deg: f64,
}

impl Rigid {
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let (s, c) = self.rotation_deg.to_radians().sin_cos();
        let d = [p[0] - self.centre_m[0], p[1] - self.centre_m[1]];
        [
            self.centre_m[0] + self.shift_m[0] + c * d[0] - s * d[1],
            self.centre_m[1] + self.shift_m[1] + s * d[0] + c * d[1],
        ]
    }

    /// The same transform with its shift given at `centre`.
    pub fn at(&self, centre: [f64; 2]) -> Rigid {
        let q = self.apply(centre);
        Rigid {
            centre_m: centre,
            shift_m: [q[0] - centre[0], q[1] - centre[1]],
            rotation_deg: self.rotation_deg,
        }
    }

    /// `self` after `first`: a point of `first`'s source through both.
    pub fn after(&self, first: &Rigid) -> Rigid {
        let c = first.centre_m;
        let q = self.apply(first.apply(c));
        Rigid {
            centre_m: c,
            shift_m: [q[0] - c[0], q[1] - c[1]],
            rotation_deg: self.rotation_deg + first.rotation_deg,
        }
    }

    /// Least-squares rigid transform taking each `p` to its `q`, expressed at `centre`;
    /// `None` with fewer than two pairs or all points in one place.
    pub fn fit(pairs: &[([f64; 2], [f64; 2])], centre: [f64; 2]) -> Option<Rigid> {
        if pairs.len() < 2 {
            return None;
        }
        let n = pairs.len() as f64;
        let mut pm = [0.0; 2];
        let mut qm = [0.0; 2];
        for (p, q) in pairs {
            for k in 0..2 {
                pm[k] += p[k] / n;
                qm[k] += q[k] / n;
            }
        }
        let (mut dot, mut cross) = (0.0, 0.0);
        for (p, q) in pairs {
            let a = [p[0] - pm[0], p[1] - pm[1]];
            let b = [q[0] - qm[0], q[1] - qm[1]];
            dot += a[0] * b[0] + a[1] * b[1];
            cross += a[0] * b[1] - a[1] * b[0];
        }
        if dot.hypot(cross) < 1e-12 {
            return None;
        }
        let rot = Rigid {
            centre_m: pm,
            shift_m: [qm[0] - pm[0], qm[1] - pm[1]],
            rotation_deg: cross.atan2(dot).to_degrees(),
        };
        Some(rot.at(centre))
    }

    /// Distance between where `self` and `p`'s transform put `p`, metres.
    pub fn residual(&self, p: [f64; 2], q: [f64; 2]) -> f64 {
        let r = self.apply(p);
        (r[0] - q[0]).hypot(r[1] - q[1])
    }
}

/// What matching features gave.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureMatch {
    pub rigid: Rigid,
    /// Keypoints in `a` and `b` near the shared ground.
    pub keypoints: [usize; 2],
    /// Matches after the ratio test and the mutual check.
    pub matches: usize,
    pub inliers: usize,
    /// RMS of the inliers' distances from the fitted transform, metres.
    pub rms_m: f64,
    /// RMS distance of the inliers from their centroid, metres.
    pub spread_m: f64,
}

/// A tiny deterministic generator (64-bit LCG, high bits out): results do not depend on a
/// thread's random state.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }
}

/// Descriptor patch half-size (cells) a keypoint needs around it: BRIEF's 31-cell patch
/// plus its 5-cell averaging box.
const PATCH: i64 = 19;

/// BRIEF test pairs drawn once from an isotropic Gaussian (sigma 6.6 cells) about the
/// patch centre, as Calonder et al.; the same for every photo.
fn test_pairs() -> Vec<TestPair> {
    let mut rng = Lcg(0x5eed_b1ef);
    let mut out = Vec::with_capacity(256);
    while out.len() < 256 {
        let mut g = || {
            // Box-Muller.
            let (u, v) = (rng.unit().max(1e-12), rng.unit());
            15.0 + 6.6 * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let c = [g(), g(), g(), g()];
        if c.iter().all(|&x| (0.0..31.0).contains(&x)) {
            out.push(TestPair {
                p0: Point::new(c[0] as u32, c[1] as u32),
                p1: Point::new(c[2] as u32, c[3] as u32),
            });
        }
    }
    out
}

/// A keypoint: position (metres, flight frame) and its 256-bit descriptor.
struct Keypoint {
    at: [f64; 2],
    bits: [u128; 2],
}

/// Counts of `flag` cells in every `(2r+1)^2` window, from a summed-area table.
struct Window {
    w: usize,
    sums: Vec<u32>,
}

impl Window {
    fn new(w: usize, h: usize, flag: impl Fn(usize) -> bool) -> Window {
        let mut sums = vec![0u32; (w + 1) * (h + 1)];
        for j in 0..h {
            let mut row = 0u32;
            for i in 0..w {
                row += u32::from(flag(j * w + i));
                sums[(j + 1) * (w + 1) + i + 1] = sums[j * (w + 1) + i + 1] + row;
            }
        }
        Window { w, sums }
    }

    /// Flagged cells in the window of half-size `r` about `(i, j)` (inside the raster).
    fn count(&self, i: usize, j: usize, r: usize) -> u32 {
        let s = |x: usize, y: usize| self.sums[y * (self.w + 1) + x];
        let (x0, y0, x1, y1) = (i - r, j - r, i + r + 1, j + r + 1);
        s(x1, y1) + s(x0, y0) - s(x1, y0) - s(x0, y1)
    }
}

/// Keypoints of one ground image inside `roi` (metres `[xmin, ymin, xmax, ymax]`).
fn keypoints(
    g: &GrayGround,
    gsd: f64,
    roi: [f64; 4],
    mask_vegetation: bool,
    pairs: &[TestPair],
    cfg: &FeatureConfig,
) -> Vec<Keypoint> {
    let r: &Raster = &g.gray;
    let (w, h) = (r.w, r.h);
    if w as i64 <= 2 * PATCH + 2 || h as i64 <= 2 * PATCH + 2 {
        return Vec::new();
    }
    let smooth = blur(r);
    let mut img = image::GrayImage::new(w as u32, h as u32);
    for j in 0..h {
        for i in 0..w {
            let v = smooth.val[j * w + i][0].round().clamp(0.0, 255.0) as u8;
            img.put_pixel(i as u32, j as u32, image::Luma([v]));
        }
    }
    let invalid = Window::new(w, h, |k| !r.ok[k]);
    let veg = Window::new(w, h, |k| g.veg[k]);
    let p = PATCH as usize;
    let area = ((2 * p + 1) * (2 * p + 1)) as f64;
    let mut corners: Vec<(u32, u32, f32)> = corners_fast9(&img, cfg.fast_threshold)
        .into_iter()
        .filter(|c| {
            let (i, j) = (c.x as usize, c.y as usize);
            if i < p || j < p || i + p >= w || j + p >= h {
                return false;
            }
            let m = [
                (r.x0 + i as i64) as f64 * gsd + gsd / 2.0,
                (r.y0 + j as i64) as f64 * gsd + gsd / 2.0,
            ];
            if m[0] < roi[0] || m[1] < roi[1] || m[0] > roi[2] || m[1] > roi[3] {
                return false;
            }
            if invalid.count(i, j, p) > 0 {
                return false;
            }
            !mask_vegetation
                || (!g.veg[j * w + i] && f64::from(veg.count(i, j, p)) <= cfg.max_vegetation * area)
        })
        .map(|c| (c.x, c.y, c.score))
        .collect();
    // The strongest per cell, then the strongest overall.
    corners.sort_by(|a, b| b.2.total_cmp(&a.2).then((a.1, a.0).cmp(&(b.1, b.0))));
    let cw = w.div_ceil(cfg.cell_px.max(1) as usize);
    let mut taken = vec![false; cw * h.div_ceil(cfg.cell_px.max(1) as usize)];
    let mut chosen = Vec::new();
    for (x, y, _) in corners {
        let cell = (y / cfg.cell_px.max(1)) as usize * cw + (x / cfg.cell_px.max(1)) as usize;
        if !taken[cell] {
            taken[cell] = true;
            chosen.push(Point::new(x, y));
            if chosen.len() >= cfg.max_keypoints {
                break;
            }
        }
    }
    let Ok((descriptors, _)) = brief(&img, &chosen, 256, Some(&pairs.to_vec())) else {
        return Vec::new();
    };
    descriptors
        .into_iter()
        .map(|d| {
            let pos = d.position();
            Keypoint {
                at: [
                    (r.x0 + i64::from(pos.x)) as f64 * gsd + gsd / 2.0,
                    (r.y0 + i64::from(pos.y)) as f64 * gsd + gsd / 2.0,
                ],
                bits: [d.bits[0], d.bits[1]],
            }
        })
        .collect()
}

fn hamming(a: &[u128; 2], b: &[u128; 2]) -> u32 {
    (a[0] ^ b[0]).count_ones() + (a[1] ^ b[1]).count_ones()
}

/// For each keypoint of `from`, the nearest descriptor of `to` within `radius` metres and
/// whether it passes the ratio test and the distance limit.
fn nearest(
    from: &[Keypoint],
    to: &[Keypoint],
    radius: f64,
    cfg: &FeatureConfig,
) -> Vec<Option<usize>> {
    // Buckets of `radius` metres.
    let key = |p: [f64; 2]| {
        (
            (p[0] / radius).floor() as i64,
            (p[1] / radius).floor() as i64,
        )
    };
    let mut grid: std::collections::HashMap<(i64, i64), Vec<usize>> = Default::default();
    for (k, t) in to.iter().enumerate() {
        grid.entry(key(t.at)).or_default().push(k);
    }
    from.iter()
        .map(|f| {
            let (gx, gy) = key(f.at);
            let (mut best, mut second) = ((u32::MAX, usize::MAX), u32::MAX);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let Some(cands) = grid.get(&(gx + dx, gy + dy)) else {
                        continue;
                    };
                    for &k in cands {
                        let t = &to[k];
                        if (t.at[0] - f.at[0]).hypot(t.at[1] - f.at[1]) > radius {
                            continue;
                        }
                        let d = hamming(&f.bits, &t.bits);
                        if d < best.0 {
                            second = best.0;
                            best = (d, k);
                        } else if d < second {
                            second = d;
                        }
                    }
                }
            }
            (best.0 <= cfg.max_hamming
                && (second == u32::MAX || f64::from(best.0) < cfg.ratio * f64::from(second)))
            .then_some(best.1)
        })
        .collect()
}

/// Matches features of two ground images and fits a rigid transform by RANSAC, expressed
/// at `centre` (metres). `Err` is the reason the pair is not used.
pub(crate) fn match_features(
    a: &GrayGround,
    b: &GrayGround,
    gsd: f64,
    search_radius_m: f64,
    centre: [f64; 2],
    mask_vegetation: bool,
    cfg: &FeatureConfig,
) -> Result<FeatureMatch, String> {
    let pairs = test_pairs();
    let grow = |e: [f64; 4]| {
        [
            e[0] - search_radius_m,
            e[1] - search_radius_m,
            e[2] + search_radius_m,
            e[3] + search_radius_m,
        ]
    };
    let ka = keypoints(a, gsd, grow(b.envelope), mask_vegetation, &pairs, cfg);
    let kb = keypoints(b, gsd, grow(a.envelope), mask_vegetation, &pairs, cfg);
    let need = cfg.min_inliers;
    if ka.len() < need || kb.len() < need {
        return Err(format!(
            "too few keypoints on the ground they share ({} and {}; at least {need} each)",
            ka.len(),
            kb.len()
        ));
    }
    // The search radius of the correlation, plus what the largest rotation moves a point
    // at the far side of a footprint.
    let radius = search_radius_m + 0.5;
    let ab = nearest(&ka, &kb, radius, cfg);
    let ba = nearest(&kb, &ka, radius, cfg);
    let matches: Vec<([f64; 2], [f64; 2])> = ab
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let j = (*m)?;
            (ba[j] == Some(i)).then_some((ka[i].at, kb[j].at))
        })
        .collect();
    if matches.len() < need {
        return Err(format!(
            "too few distinct matches ({} of {} and {} keypoints; at least {need})",
            matches.len(),
            ka.len(),
            kb.len()
        ));
    }
    let fit = ransac(&matches, centre, cfg).ok_or_else(|| {
        format!(
            "no rigid transform within {:.0} degrees explains two of the {} matches",
            cfg.max_rotation_deg,
            matches.len()
        )
    })?;
    let inliers: Vec<([f64; 2], [f64; 2])> = matches
        .iter()
        .copied()
        .filter(|&(p, q)| fit.residual(p, q) <= cfg.inlier_m)
        .collect();
    let n = inliers.len();
    let rms = (inliers
        .iter()
        .map(|&(p, q)| fit.residual(p, q).powi(2))
        .sum::<f64>()
        / n.max(1) as f64)
        .sqrt();
    let mean = [
        inliers.iter().map(|x| x.0[0]).sum::<f64>() / n.max(1) as f64,
        inliers.iter().map(|x| x.0[1]).sum::<f64>() / n.max(1) as f64,
    ];
    let spread = (inliers
        .iter()
        .map(|x| (x.0[0] - mean[0]).powi(2) + (x.0[1] - mean[1]).powi(2))
        .sum::<f64>()
        / n.max(1) as f64)
        .sqrt();
    let found = FeatureMatch {
        rigid: fit,
        keypoints: [ka.len(), kb.len()],
        matches: matches.len(),
        inliers: n,
        rms_m: rms,
        spread_m: spread,
    };
    if n < need {
        return Err(format!(
            "only {n} of {} matches agree on one shift and rotation (at least {need})",
            matches.len()
        ));
    }
    if spread < cfg.min_spread_m {
        return Err(format!(
            "the {n} agreeing matches lie within {spread:.1} m of each other (the rotation is not fixed; at least {:.1} m)",
            cfg.min_spread_m
        ));
    }
    Ok(found)
}

/// RANSAC over pairs of matches, then least squares on the inliers (twice).
fn ransac(m: &[([f64; 2], [f64; 2])], centre: [f64; 2], cfg: &FeatureConfig) -> Option<Rigid> {
    let mut rng = Lcg(0x00a1_19e5 ^ m.len() as u64);
    let max_rot = cfg.max_rotation_deg;
    let score = |t: &Rigid| -> (usize, f64) {
        let mut n = 0;
        let mut cost = 0.0;
        for &(p, q) in m {
            let r = t.residual(p, q);
            if r <= cfg.inlier_m {
                n += 1;
                cost += r * r;
            }
        }
        (n, cost)
    };
    let mut best: Option<(Rigid, (usize, f64))> = None;
    for _ in 0..cfg.iterations {
        let (i, j) = (rng.below(m.len()), rng.below(m.len()));
        let (pi, pj) = (m[i].0, m[j].0);
        if (pi[0] - pj[0]).hypot(pi[1] - pj[1]) < 1.0 {
            continue;
        }
        let Some(t) = Rigid::fit(&[m[i], m[j]], centre) else {
            continue;
        };
        if t.rotation_deg.abs() > max_rot {
            continue;
        }
        let s = score(&t);
        if best
            .as_ref()
            .is_none_or(|(_, b)| s.0 > b.0 || (s.0 == b.0 && s.1 < b.1))
        {
            best = Some((t, s));
        }
    }
    let (mut t, _) = best?;
    for _ in 0..2 {
        let inl: Vec<_> = m
            .iter()
            .copied()
            .filter(|&(p, q)| t.residual(p, q) <= cfg.inlier_m)
            .collect();
        match Rigid::fit(&inl, centre) {
            Some(f) if f.rotation_deg.abs() <= max_rot => t = f,
            _ => break,
        }
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured ground image: random overlapping rectangles of random grey levels (sharp
    /// corners, as road markings, kerbs and roofs give), painted on a 2.5 cm canvas over
    /// `[-10, 50)` metres and looked up by metres.
    fn scene(seed: u64) -> impl Fn([f64; 2]) -> f32 {
        const RES: f64 = 0.025;
        const N: usize = 2400;
        let mut rng = Lcg(seed);
        let mut canvas = vec![128f32; N * N];
        for _ in 0..900 {
            let (x, y) = (rng.unit() * 50.0 - 8.0, rng.unit() * 50.0 - 8.0);
            let (w, h) = (0.3 + rng.unit() * 2.5, 0.3 + rng.unit() * 2.5);
            let v = (rng.unit() * 200.0 + 30.0) as f32;
            let c = |m: f64| (((m + 10.0) / RES) as usize).min(N);
            for j in c(y)..c(y + h) {
                canvas[j * N + c(x)..j * N + c(x + w)].fill(v);
            }
        }
        move |p: [f64; 2]| {
            let c = |m: f64| (((m + 10.0) / RES).max(0.0) as usize).min(N - 1);
            canvas[c(p[1]) * N + c(p[0])]
        }
    }

    /// A ground image of `w x h` cells of `gsd` metres from cell `(x0, y0)`, each cell the
    /// mean of 3 x 3 samples of the scene through `map` (ground image -> scene metres).
    fn render(
        f: &dyn Fn([f64; 2]) -> f32,
        map: &dyn Fn([f64; 2]) -> [f64; 2],
        x0: i64,
        y0: i64,
        w: usize,
        h: usize,
        gsd: f64,
    ) -> GrayGround {
        let mut gray = Raster::new(x0, y0, w, h);
        for j in 0..h {
            for i in 0..w {
                let mut s = 0.0;
                for sj in 0..3 {
                    for si in 0..3 {
                        let p = [
                            ((x0 + i as i64) as f64 + (si as f64 + 0.5) / 3.0) * gsd,
                            ((y0 + j as i64) as f64 + (sj as f64 + 0.5) / 3.0) * gsd,
                        ];
                        s += f(map(p));
                    }
                }
                gray.val[j * w + i] = [s / 9.0, 0.0];
                gray.ok[j * w + i] = true;
            }
        }
        let envelope = [
            x0 as f64 * gsd,
            y0 as f64 * gsd,
            (x0 + w as i64) as f64 * gsd,
            (y0 + h as i64) as f64 * gsd,
        ];
        GrayGround {
            veg: vec![false; w * h],
            gray,
            camera: [0.0; 2],
            envelope,
        }
    }

    #[test]
    fn a_known_shift_and_rotation_is_recovered_within_a_cell_and_a_fifth_of_a_degree() {
        let gsd = 0.075;
        let f = scene(42);
        // Photo b sees the scene moved: what a shows at p, b shows at truth(p).
        let truth = Rigid {
            centre_m: [15.0, 15.0],
            shift_m: [1.37, -0.81],
            rotation_deg: 1.5,
        };
        let inv = Rigid {
            centre_m: truth.apply(truth.centre_m),
            shift_m: [-truth.shift_m[0], -truth.shift_m[1]],
            rotation_deg: -truth.rotation_deg,
        };
        let a = render(&f, &|p| p, 0, 0, 400, 400, gsd);
        let b = render(&f, &|q| inv.apply(q), 10, -8, 400, 400, gsd);
        // The inverse really inverts.
        let p = [3.0, 27.0];
        let back = inv.apply(truth.apply(p));
        assert!((back[0] - p[0]).abs() < 1e-9 && (back[1] - p[1]).abs() < 1e-9);

        let m = match_features(
            &a,
            &b,
            gsd,
            8.0,
            [15.0, 15.0],
            true,
            &FeatureConfig::default(),
        )
        .expect("the pair matches");
        let e = [
            m.rigid.shift_m[0] - truth.shift_m[0],
            m.rigid.shift_m[1] - truth.shift_m[1],
        ];
        assert!(
            e[0].hypot(e[1]) < gsd,
            "shift error {e:?} m ({} inliers of {} matches)",
            m.inliers,
            m.matches
        );
        assert!(
            (m.rigid.rotation_deg - truth.rotation_deg).abs() < 0.2,
            "rotation {} deg",
            m.rigid.rotation_deg
        );
        assert!(m.inliers >= 50 && m.rms_m < 0.1, "{m:?}");
    }

    #[test]
    fn a_pair_of_unrelated_grounds_is_rejected_with_a_reason() {
        let gsd = 0.075;
        let (f, g) = (scene(1), scene(2));
        let a = render(&f, &|p| p, 0, 0, 300, 300, gsd);
        let b = render(&g, &|p| p, 0, 0, 300, 300, gsd);
        let r = match_features(
            &a,
            &b,
            gsd,
            8.0,
            [11.0, 11.0],
            true,
            &FeatureConfig::default(),
        );
        let e = r.expect_err("different scenes do not match");
        assert!(e.contains("agree") || e.contains("matches"), "{e}");
    }

    #[test]
    fn rigid_fit_composes_and_recovers_an_exact_transform() {
        let t = Rigid {
            centre_m: [2.0, -1.0],
            shift_m: [0.4, 0.3],
            rotation_deg: -2.0,
        };
        let pairs: Vec<_> = [[0.0, 0.0], [5.0, 1.0], [-3.0, 4.0]]
            .iter()
            .map(|&p| (p, t.apply(p)))
            .collect();
        let f = Rigid::fit(&pairs, [7.0, 7.0]).expect("fits");
        for &(p, q) in &pairs {
            assert!(f.residual(p, q) < 1e-9);
        }
        let twice = t.after(&t);
        let p = [1.0, 2.0];
        let q = twice.apply(p);
        let r = t.apply(t.apply(p));
        assert!((q[0] - r[0]).abs() < 1e-9 && (q[1] - r[1]).abs() < 1e-9);
    }
}
