//! Road surfaces from an asset register as an absolute reference: once the photos agree
//! with each other, the whole flight is moved to where its road edges fit the register's.
//!
//! Each photo's ground image (at the coarse level, vegetation masked) is compared with the
//! register's road surfaces rendered on the same grid: the normalised cross-correlation of
//! the two gradient magnitudes (magnitudes, since a road may be darker or lighter than what
//! lies beside it) for every shift within [`AlignConfig::road_search_m`]. Those surfaces are
//! kept (a few KiB a photo), and after the adjustment summed at each photo's own correction
//! plus one common shift of the flight ([`fit`]): the shift where the flight's photos agree
//! best with the roads. It is taken only when the summed peak is clear of every shift more
//! than [`AlignConfig::distinct_m`] away and most photos' own peaks agree with it; a
//! straight road alone (no crossing, no bend) says nothing along itself and is refused. A
//! shift under [`MIN_ROAD_SHIFT_M`] is within the fit's own error and is not applied.
//!
//! Only ground-level outlines are used: roof edges are displaced by their height in nadir
//! photos (metres at 20-40 m altitude), road edges are not. The flight lands where the
//! register's roads are, so on the map it is as good as the register, and relative to the
//! register (what keeps a defect on its asset) better than its GPS.

use crate::ortho::{Frame, Ortho, COARSE};
use crate::AlignConfig;

/// Road surfaces of an asset register (centrelines buffered by half their width, or area
/// outlines).
#[derive(Debug, Clone, Default)]
pub struct RoadOutlines {
    pub polygons: Vec<RoadSurface>,
    /// Where they came from, for the summary (e.g. the register's file name).
    pub source: String,
}

/// One piece of road surface.
#[derive(Debug, Clone, Default)]
pub struct RoadSurface {
    /// Outer ring of `[longitude, latitude]`, WGS 84.
    pub ring: Vec<[f64; 2]>,
    /// A carriageway (asphalt) rather than a footway, path or cycleway (paving): where the two
    /// meet, a kerb or a change of surface is an edge in the photos too.
    pub carriageway: bool,
}

/// Level of a carriageway and of a footway in the rendered roads (verge 0).
const CARRIAGEWAY: f32 = 1.0;
const FOOTWAY: f32 = 0.5;

/// The outlines in the flight frame (metres east, north), with their envelopes and levels,
/// footways first so carriageways are drawn over them.
pub(crate) struct LocalRoads {
    polys: Vec<(Vec<[f64; 2]>, [f64; 4], f32)>,
}

impl LocalRoads {
    pub fn new(roads: &RoadOutlines, frame: &Frame, h: f64) -> LocalRoads {
        let mut polys: Vec<(Vec<[f64; 2]>, [f64; 4], f32)> = roads
            .polygons
            .iter()
            .filter(|r| r.ring.len() >= 3)
            .map(|r| {
                let pts: Vec<[f64; 2]> =
                    r.ring.iter().map(|p| frame.to_enu(p[1], p[0], h)).collect();
                let env = pts
                    .iter()
                    .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |a, p| {
                        [
                            a[0].min(p[0]),
                            a[1].min(p[1]),
                            a[2].max(p[0]),
                            a[3].max(p[1]),
                        ]
                    });
                (pts, env, if r.carriageway { CARRIAGEWAY } else { FOOTWAY })
            })
            .collect();
        polys.sort_by(|a, b| a.2.total_cmp(&b.2));
        LocalRoads { polys }
    }

    /// Cells of the coarse grid (`cell` metres, columns `x0..x0 + w`, rows `y0..y0 + h`)
    /// whose centres lie on a road: its level (the highest where surfaces overlap), else 0.
    fn render(&self, cell: f64, x0: i64, y0: i64, w: usize, h: usize) -> Vec<f32> {
        let mut out = vec![0f32; w * h];
        let env = [
            x0 as f64 * cell,
            y0 as f64 * cell,
            (x0 + w as i64) as f64 * cell,
            (y0 + h as i64) as f64 * cell,
        ];
        let mut xs = Vec::new();
        for (ring, e, level) in &self.polys {
            if e[2] < env[0] || e[0] > env[2] || e[3] < env[1] || e[1] > env[3] {
                continue;
            }
            let j0 = (((e[1] - env[1]) / cell).floor().max(0.0)) as usize;
            let j1 = (((e[3] - env[1]) / cell).ceil().max(0.0) as usize).min(h);
            for j in j0..j1 {
                let y = env[1] + (j as f64 + 0.5) * cell;
                xs.clear();
                for k in 0..ring.len() {
                    let (a, b) = (ring[k], ring[(k + 1) % ring.len()]);
                    if (a[1] <= y) != (b[1] <= y) {
                        xs.push(a[0] + (y - a[1]) / (b[1] - a[1]) * (b[0] - a[0]));
                    }
                }
                xs.sort_by(f64::total_cmp);
                for span in xs.chunks_exact(2) {
                    // Cells whose centre x lies in [span[0], span[1]).
                    let i0 = ((span[0] - env[0]) / cell - 0.5).ceil().max(0.0) as usize;
                    let i1 = (((span[1] - env[0]) / cell - 0.5).ceil().max(0.0) as usize).min(w);
                    for v in &mut out[j * w + i0.min(w)..j * w + i1.max(i0.min(w))] {
                        *v = v.max(*level);
                    }
                }
            }
        }
        out
    }
}

/// One photo's agreement with the roads: NCC for every shift `(dx, dy)` in cells of
/// `-radius..=radius` (`ncc[(dy + r) * (2r + 1) + dx + r]`, NaN where too little compares).
/// A shift `d` says the photo's ground lies `d` cells east/north of where its pose put it.
#[derive(Debug, Clone)]
pub(crate) struct Surface {
    radius: i64,
    ncc: Vec<f32>,
}

impl Surface {
    fn at(&self, dx: i64, dy: i64) -> f32 {
        let r = self.radius;
        if dx.abs() > r || dy.abs() > r {
            return f32::NAN;
        }
        self.ncc[((dy + r) * (2 * r + 1) + dx + r) as usize]
    }

    /// Bilinear at a fractional shift (cells); NaN outside or next to a NaN.
    fn sample(&self, x: f64, y: f64) -> f64 {
        let (xf, yf) = (x.floor(), y.floor());
        let (fx, fy) = (x - xf, y - yf);
        let (xi, yi) = (xf as i64, yf as i64);
        let v = |dx, dy| f64::from(self.at(xi + dx, yi + dy));
        (v(0, 0) * (1.0 - fx) + v(1, 0) * fx) * (1.0 - fy)
            + (v(0, 1) * (1.0 - fx) + v(1, 1) * fx) * fy
    }

    /// The photo's own best shift, cells.
    fn peak(&self) -> Option<[i64; 2]> {
        let r = self.radius;
        let mut best: Option<([i64; 2], f32)> = None;
        for dy in -r..=r {
            for dx in -r..=r {
                let v = self.at(dx, dy);
                if v.is_finite() && best.is_none_or(|b| v > b.1) {
                    best = Some(([dx, dy], v));
                }
            }
        }
        best.map(|b| b.0)
    }
}

/// Smoothing passes over the rendered roads: a register's edge is not sharp to a cell.
const ROAD_BLUR: usize = 2;

/// The agreement surface of photo `o` with `roads` (`None` when the photo sees too little
/// road edge, or too little of its ground is clear of vegetation).
pub(crate) fn surface(o: &Ortho, roads: &LocalRoads, cfg: &AlignConfig) -> Option<Surface> {
    let cell = cfg.gsd_m * COARSE as f64;
    let r = (cfg.road_search_m / cell).ceil() as i64;
    let p = &o.coarse;
    let (pw, ph) = (p.w as i64, p.h as i64);
    // The register around the photo, `r` cells wider on every side.
    let (x0, y0) = (p.x0 - r, p.y0 - r);
    let (w, h) = ((pw + 2 * r) as usize, (ph + 2 * r) as usize);
    let mut inside = roads.render(cell, x0, y0, w, h);
    if !inside.iter().any(|&v| v > 0.0) {
        return None;
    }
    for _ in 0..ROAD_BLUR {
        inside = blur(&inside, w, h);
    }
    let edge = magnitude(&inside, w, h);
    // The photo's gradient magnitude where it is valid.
    let mag: Vec<f32> = p
        .val
        .iter()
        .zip(&p.ok)
        .map(|(v, &ok)| if ok { v[0].hypot(v[1]) } else { f32::NAN })
        .collect();
    let valid = mag.iter().filter(|v| v.is_finite()).count();
    let min_cells = ((cfg.min_overlap_m2 / (cell * cell)) as usize).max(64);
    if valid < min_cells {
        return None;
    }
    let side = (2 * r + 1) as usize;
    let mut ncc = vec![f32::NAN; side * side];
    for dy in -r..=r {
        for dx in -r..=r {
            let (mut n, mut sa, mut sb, mut saa, mut sbb, mut sab) =
                (0usize, 0f64, 0f64, 0f64, 0f64, 0f64);
            for j in 0..ph {
                let rb = ((j + r + dy) as usize) * w;
                let ra = (j as usize) * p.w;
                let (mut rsa, mut rsb, mut rsaa, mut rsbb, mut rsab, mut rn) =
                    (0f32, 0f32, 0f32, 0f32, 0f32, 0usize);
                for i in 0..p.w {
                    let a = mag[ra + i];
                    if !a.is_finite() {
                        continue;
                    }
                    let b = edge[rb + (i as i64 + r + dx) as usize];
                    rsa += a;
                    rsb += b;
                    rsaa += a * a;
                    rsbb += b * b;
                    rsab += a * b;
                    rn += 1;
                }
                n += rn;
                sa += f64::from(rsa);
                sb += f64::from(rsb);
                saa += f64::from(rsaa);
                sbb += f64::from(rsbb);
                sab += f64::from(rsab);
            }
            let nf = n as f64;
            let va = saa / nf - (sa / nf).powi(2);
            let vb = sbb / nf - (sb / nf).powi(2);
            if n >= min_cells && va > 1e-9 && vb > 1e-9 {
                let cov = sab / nf - sa * sb / (nf * nf);
                ncc[((dy + r) as usize) * side + (dx + r) as usize] =
                    (cov / (va * vb).sqrt()) as f32;
            }
        }
    }
    Some(Surface { radius: r, ncc })
}

/// [1 2 1] x [1 2 1] blur of a full raster (edges clamped).
fn blur(v: &[f32], w: usize, h: usize) -> Vec<f32> {
    let at = |i: i64, j: i64| {
        v[(j.clamp(0, h as i64 - 1) as usize) * w + i.clamp(0, w as i64 - 1) as usize]
    };
    let mut out = vec![0f32; w * h];
    for j in 0..h as i64 {
        for i in 0..w as i64 {
            let mut s = 0f32;
            for (dj, wj) in [(-1, 1f32), (0, 2.0), (1, 1.0)] {
                for (di, wi) in [(-1, 1f32), (0, 2.0), (1, 1.0)] {
                    s += wj * wi * at(i + di, j + dj);
                }
            }
            out[j as usize * w + i as usize] = s / 16.0;
        }
    }
    out
}

/// Sobel gradient magnitude of a full raster (edges clamped).
fn magnitude(v: &[f32], w: usize, h: usize) -> Vec<f32> {
    let at = |i: i64, j: i64| {
        v[(j.clamp(0, h as i64 - 1) as usize) * w + i.clamp(0, w as i64 - 1) as usize]
    };
    let mut out = vec![0f32; w * h];
    for j in 0..h as i64 {
        for i in 0..w as i64 {
            let ge = (at(i + 1, j - 1) + 2.0 * at(i + 1, j) + at(i + 1, j + 1))
                - (at(i - 1, j - 1) + 2.0 * at(i - 1, j) + at(i - 1, j + 1));
            let gn = (at(i - 1, j + 1) + 2.0 * at(i, j + 1) + at(i + 1, j + 1))
                - (at(i - 1, j - 1) + 2.0 * at(i, j - 1) + at(i + 1, j - 1));
            out[j as usize * w + i as usize] = ge.hypot(gn) / 8.0;
        }
    }
    out
}

/// The flight's fit to the roads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fit {
    /// Shift of the whole block, metres east, north.
    pub shift_m: [f64; 2],
    /// Mean NCC at the peak, and the best more than `distinct_m` away.
    pub peak: f64,
    pub second: f64,
    /// Photos whose own best shift lies within `distinct_m` of the block's, of those with
    /// a surface.
    pub agree: usize,
    pub photos: usize,
}

/// Least mean NCC of the photos with the roads at the flight's shift.
pub(crate) const MIN_ROAD_PEAK: f64 = 0.15;
/// Least lead of that peak over the best shift more than `distinct_m` away.
pub(crate) const MIN_ROAD_MARGIN: f64 = 0.03;
/// A fitted shift shorter than this is within what the fit can tell (half its 30 cm cell;
/// on simulated flights its error is 0.06-0.12 m RMS): the flight already sits on the roads
/// and is not moved, metres.
pub(crate) const MIN_ROAD_SHIFT_M: f64 = 0.15;
/// Least photos with a surface, and the least share of them whose own peak agrees.
pub(crate) const MIN_ROAD_PHOTOS: usize = 3;
pub(crate) const MIN_ROAD_AGREE: f64 = 0.5;

/// The common shift of one block: `members` are `(surface, correction_m)` of its photos
/// (the correction the adjustment gave each, metres east, north).
pub(crate) fn fit(members: &[(&Surface, [f64; 2])], cfg: &AlignConfig) -> Result<Fit, String> {
    let cell = cfg.gsd_m * COARSE as f64;
    if members.len() < MIN_ROAD_PHOTOS {
        return Err(format!(
            "{} photos see enough road edge, fewer than {MIN_ROAD_PHOTOS}",
            members.len()
        ));
    }
    let r = members.iter().map(|m| m.0.radius).max().unwrap_or(0);
    let side = (2 * r + 1) as usize;
    let mut total = vec![f64::NAN; side * side];
    for dy in -r..=r {
        for dx in -r..=r {
            let (mut s, mut n) = (0.0, 0usize);
            for (sf, c) in members {
                let v = sf.sample(dx as f64 + c[0] / cell, dy as f64 + c[1] / cell);
                if v.is_finite() {
                    s += v;
                    n += 1;
                }
            }
            // Every photo must take part, or a shift where few do could win by chance.
            if n * 4 >= members.len() * 3 {
                total[((dy + r) as usize) * side + (dx + r) as usize] = s / n as f64;
            }
        }
    }
    let at = |dx: i64, dy: i64| {
        if dx.abs() > r || dy.abs() > r {
            f64::NAN
        } else {
            total[((dy + r) as usize) * side + (dx + r) as usize]
        }
    };
    let mut best: Option<([i64; 2], f64)> = None;
    for dy in -r..=r {
        for dx in -r..=r {
            let v = at(dx, dy);
            if v.is_finite() && best.is_none_or(|b| v > b.1) {
                best = Some(([dx, dy], v));
            }
        }
    }
    let Some((d, peak)) = best else {
        return Err("the photos' surfaces do not overlap".into());
    };
    let excl = (cfg.distinct_m / cell).ceil() as i64;
    let mut second = f64::MIN;
    for dy in -r..=r {
        for dx in -r..=r {
            if (dx - d[0]).abs() > excl || (dy - d[1]).abs() > excl {
                let v = at(dx, dy);
                if v.is_finite() {
                    second = second.max(v);
                }
            }
        }
    }
    // Sub-cell: a parabola through the peak and its neighbours, per axis.
    let sub = |m: f64, c: f64, p: f64| {
        let den = m - 2.0 * c + p;
        if den.is_finite() && den < -1e-12 {
            (0.5 * (m - p) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    };
    let sx = sub(at(d[0] - 1, d[1]), peak, at(d[0] + 1, d[1]));
    let sy = sub(at(d[0], d[1] - 1), peak, at(d[0], d[1] + 1));
    let shift_m = [(d[0] as f64 + sx) * cell, (d[1] as f64 + sy) * cell];
    let agree = members
        .iter()
        .filter(|(sf, c)| {
            sf.peak().is_some_and(|p| {
                let e = [p[0] as f64 * cell - c[0], p[1] as f64 * cell - c[1]];
                (e[0] - shift_m[0]).hypot(e[1] - shift_m[1]) <= cfg.distinct_m
            })
        })
        .count();
    let fit = Fit {
        shift_m,
        peak,
        second,
        agree,
        photos: members.len(),
    };
    if peak < MIN_ROAD_PEAK {
        return Err(format!(
            "weak fit to the roads: mean correlation {peak:.2} < {MIN_ROAD_PEAK:.2}"
        ));
    }
    if second > f64::MIN && peak - second < MIN_ROAD_MARGIN {
        return Err(format!(
            "ambiguous fit to the roads: {peak:.2}, and {second:.2} more than {:.1} m away (a straight road says nothing along itself)",
            cfg.distinct_m
        ));
    }
    if d[0].abs() == r || d[1].abs() == r {
        return Err(format!(
            "the best shift is at the edge of the {:.0} m search radius",
            cfg.road_search_m
        ));
    }
    if (agree as f64) < MIN_ROAD_AGREE * members.len() as f64 {
        return Err(format!(
            "only {agree} of {} photos agree on where the roads are",
            members.len()
        ));
    }
    Ok(fit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ortho::{levels, Raster};

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> (Vec<[f64; 2]>, [f64; 4], f32) {
        (
            vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
            [x0, y0, x1, y1],
            CARRIAGEWAY,
        )
    }

    /// A photo of `roads` on the fine grid whose ground lies `e` metres off: what is at
    /// `p` in the photo is at `p + e` on the ground (asphalt 60, verge 140).
    fn photo(roads: &LocalRoads, cfg: &AlignConfig, e: [f64; 2]) -> Ortho {
        let g = cfg.gsd_m;
        let (w, h) = (400usize, 300usize);
        let mut gray = Raster::new(0, 0, w, h);
        for j in 0..h {
            for i in 0..w {
                let p = [(i as f64 + 0.5) * g + e[0], (j as f64 + 0.5) * g + e[1]];
                let on = roads.polys.iter().any(|(r, _, _)| {
                    let (a, b) = (r[0], r[2]);
                    p[0] >= a[0] && p[0] < b[0] && p[1] >= a[1] && p[1] < b[1]
                });
                gray.val[j * w + i] = [if on { 60.0 } else { 140.0 }, 0.0];
                gray.ok[j * w + i] = true;
            }
        }
        let env = [0.0, 0.0, w as f64 * g, h as f64 * g];
        levels(gray, &vec![false; w * h], [env[2] / 2.0, env[3] / 2.0], env)
    }

    /// The fit of three photos of `seen`, each `e` metres off and not moved by the
    /// adjustment, to `roads`.
    fn fit_three(
        seen: &LocalRoads,
        roads: &LocalRoads,
        e: [f64; 2],
        cfg: &AlignConfig,
    ) -> Result<Fit, String> {
        let surfaces: Vec<Surface> = (0..3)
            .map(|_| surface(&photo(seen, cfg, e), roads, cfg).unwrap())
            .collect();
        let members: Vec<(&Surface, [f64; 2])> = surfaces.iter().map(|s| (s, [0.0, 0.0])).collect();
        fit(&members, cfg)
    }

    #[test]
    fn a_road_crossing_gives_the_flights_offset() {
        let cfg = AlignConfig::default();
        // A crossing in a 30 x 22.5 m photo: 7 m north-south, 6 m east-west.
        let roads = LocalRoads {
            polys: vec![rect(12.0, -50.0, 19.0, 80.0), rect(-50.0, 9.0, 80.0, 15.0)],
        };
        let e = [1.3, -0.8];
        let s = surface(&photo(&roads, &cfg, e), &roads, &cfg).expect("the photo sees road");
        // Three photos, the adjustment having moved two of them by half a metre each.
        let c = [[0.0, 0.0], [0.5, 0.0], [0.0, -0.5]];
        let shifted: Vec<Surface> = c
            .iter()
            .map(|c| {
                surface(
                    &photo(&roads, &cfg, [e[0] + c[0], e[1] + c[1]]),
                    &roads,
                    &cfg,
                )
                .unwrap()
            })
            .collect();
        let members: Vec<(&Surface, [f64; 2])> = shifted.iter().zip(c).collect();
        let f = fit(&members, &cfg).expect("a crossing fixes both axes");
        assert!(
            (f.shift_m[0] - e[0]).abs() < 0.15 && (f.shift_m[1] - e[1]).abs() < 0.15,
            "{f:?}, photo's own surface peak {:?}",
            s.peak()
        );
        assert_eq!(f.agree, 3);
        assert!(f.peak > 0.5 && f.peak - f.second > 0.1, "{f:?}");
    }

    #[test]
    fn a_straight_road_alone_is_refused_as_ambiguous() {
        let cfg = AlignConfig::default();
        let roads = LocalRoads {
            polys: vec![rect(12.0, -50.0, 19.0, 80.0)],
        };
        let e = fit_three(&roads, &roads, [1.0, 2.0], &cfg).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
    }

    #[test]
    fn carriageways_are_drawn_over_footways_at_their_own_level() {
        let mut footway = rect(0.0, 0.0, 3.0, 3.0);
        footway.2 = FOOTWAY;
        let mut polys = vec![rect(1.5, 0.0, 3.0, 3.0), footway];
        polys.sort_by(|a, b| a.2.total_cmp(&b.2));
        let roads = LocalRoads { polys };
        // 1 m cells from (0, 0): the footway's west half, then the carriageway, then verge.
        let r = roads.render(1.0, 0, 0, 4, 1);
        assert_eq!(r, vec![FOOTWAY, CARRIAGEWAY, CARRIAGEWAY, 0.0]);
    }

    #[test]
    fn two_parallel_roads_are_refused_as_ambiguous() {
        let cfg = AlignConfig::default();
        // Two north-south roads 3 m apart, each 3 m wide, and a photo of one 3 m wide road
        // between them: it fits either.
        let roads = LocalRoads {
            polys: vec![rect(9.0, -50.0, 12.0, 80.0), rect(15.0, -50.0, 18.0, 80.0)],
        };
        let seen = LocalRoads {
            polys: vec![rect(12.0, -50.0, 15.0, 80.0)],
        };
        let e = fit_three(&seen, &roads, [0.0, 0.0], &cfg).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
    }

    #[test]
    fn a_photo_without_road_has_no_surface() {
        let cfg = AlignConfig::default();
        let roads = LocalRoads {
            polys: vec![rect(500.0, 500.0, 510.0, 600.0)],
        };
        let p = photo(
            &LocalRoads {
                polys: vec![rect(12.0, -50.0, 19.0, 80.0)],
            },
            &cfg,
            [0.0; 2],
        );
        assert!(surface(&p, &roads, &cfg).is_none());
    }
}
