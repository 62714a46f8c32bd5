//! Relative shift between two photos on the ground: masked normalised cross-correlation of
//! their gradient images, coarse to fine, then per tile for tie points that also carry
//! the relative rotation.

use crate::ortho::{Ortho, Raster, COARSE, TOP};
use crate::AlignConfig;

/// Cells `[x0, y0, x1, y1)` of the global grid a correlation is restricted to.
type Region = [i64; 4];

/// Score of one shift: NCC, cells compared, and the two standard deviations.
#[derive(Debug, Clone, Copy)]
struct Score {
    ncc: f64,
    n: usize,
    sd_a: f64,
    sd_b: f64,
}

/// NCC of `a(p)` with `b(p + d)` over the cells `p` in `region` valid in both.
fn ncc(a: &Raster, b: &Raster, d: [i64; 2], region: Region) -> Option<Score> {
    let xs = region[0].max(a.x0).max(b.x0 - d[0]);
    let xe = region[2].min(a.x1()).min(b.x1() - d[0]);
    let ys = region[1].max(a.y0).max(b.y0 - d[1]);
    let ye = region[3].min(a.y1()).min(b.y1() - d[1]);
    if xs >= xe || ys >= ye {
        return None;
    }
    let (mut n, mut sa, mut sb, mut saa, mut sbb, mut sab) = (0usize, 0f64, 0f64, 0f64, 0f64, 0f64);
    for y in ys..ye {
        let ra = ((y - a.y0) as usize) * a.w;
        let rb = ((y + d[1] - b.y0) as usize) * b.w;
        let ia = ra + (xs - a.x0) as usize;
        let ib = rb + (xs + d[0] - b.x0) as usize;
        let len = (xe - xs) as usize;
        let (va, oa) = (&a.val[ia..ia + len], &a.ok[ia..ia + len]);
        let (vb, ob) = (&b.val[ib..ib + len], &b.ok[ib..ib + len]);
        let (mut rsa, mut rsb, mut rsaa, mut rsbb, mut rsab, mut rn) =
            (0f32, 0f32, 0f32, 0f32, 0f32, 0usize);
        for k in 0..len {
            if oa[k] && ob[k] {
                for c in 0..2 {
                    let (x, z) = (va[k][c], vb[k][c]);
                    rsa += x;
                    rsb += z;
                    rsaa += x * x;
                    rsbb += z * z;
                    rsab += x * z;
                }
                rn += 1;
            }
        }
        n += rn;
        sa += rsa as f64;
        sb += rsb as f64;
        saa += rsaa as f64;
        sbb += rsbb as f64;
        sab += rsab as f64;
    }
    if n < 16 {
        return None;
    }
    // Both gradient components are samples of one signal.
    let nf = 2.0 * n as f64;
    let va = saa / nf - (sa / nf).powi(2);
    let vb = sbb / nf - (sb / nf).powi(2);
    if va <= 1e-9 || vb <= 1e-9 {
        return None;
    }
    let cov = sab / nf - sa * sb / (nf * nf);
    Some(Score {
        ncc: cov / (va * vb).sqrt(),
        n,
        sd_a: va.sqrt(),
        sd_b: vb.sqrt(),
    })
}

/// The best shift in a square search window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peak {
    /// Integer shift, cells.
    pub d: [i64; 2],
    /// Sub-cell refinement of `d` (parabola through the neighbours), cells.
    pub sub: [f64; 2],
    pub ncc: f64,
    /// Best score at least `exclusion` cells from the peak (`-1` when there is none).
    pub second: f64,
    /// Texture: the smaller of the two gradient standard deviations at the peak.
    pub texture: f64,
    /// The peak is on the edge of the search window (the true shift may be outside).
    pub on_edge: bool,
}

fn search(
    a: &Raster,
    b: &Raster,
    centre: [i64; 2],
    radius: i64,
    region: Region,
    min_cells: usize,
    exclusion: i64,
) -> Option<Peak> {
    let side = (2 * radius + 1) as usize;
    let mut scores = vec![f64::NAN; side * side];
    let mut best: Option<(usize, Score)> = None;
    for j in 0..side {
        for i in 0..side {
            let d = [centre[0] + i as i64 - radius, centre[1] + j as i64 - radius];
            if let Some(s) = ncc(a, b, d, region).filter(|s| s.n >= min_cells) {
                scores[j * side + i] = s.ncc;
                if best.is_none_or(|(_, b)| s.ncc > b.ncc) {
                    best = Some((j * side + i, s));
                }
            }
        }
    }
    let (k, s) = best?;
    let (bi, bj) = ((k % side) as i64, (k / side) as i64);
    let mut second = -1f64;
    for j in 0..side as i64 {
        for i in 0..side as i64 {
            if (i - bi).abs().max((j - bj).abs()) >= exclusion {
                let v = scores[j as usize * side + i as usize];
                if v.is_finite() && v > second {
                    second = v;
                }
            }
        }
    }
    let at = |i: i64, j: i64| -> Option<f64> {
        if i < 0 || j < 0 || i >= side as i64 || j >= side as i64 {
            return None;
        }
        Some(scores[j as usize * side + i as usize]).filter(|v| v.is_finite())
    };
    let parabola = |m: Option<f64>, c: f64, p: Option<f64>| match (m, p) {
        (Some(m), Some(p)) => {
            let den = m - 2.0 * c + p;
            if den < -1e-12 {
                (0.5 * (m - p) / den).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    let sub = [
        parabola(at(bi - 1, bj), s.ncc, at(bi + 1, bj)),
        parabola(at(bi, bj - 1), s.ncc, at(bi, bj + 1)),
    ];
    let last = side as i64 - 1;
    Some(Peak {
        d: [centre[0] + bi - radius, centre[1] + bj - radius],
        sub,
        ncc: s.ncc,
        second,
        texture: s.sd_a.min(s.sd_b),
        on_edge: bi == 0 || bj == 0 || bi == last || bj == last,
    })
}

/// One tie point: a ground point where photo `a` puts it (metres, flight frame) and how
/// far photo `b` puts it from there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tie {
    pub at: [f64; 2],
    pub shift: [f64; 2],
}

/// What correlating a pair gave.
#[derive(Debug, Clone)]
pub(crate) struct PairMatch {
    /// Shift of `b` relative to `a` over the whole overlap, metres.
    pub shift_m: [f64; 2],
    pub peak: f64,
    pub margin: f64,
    pub ties: Vec<Tie>,
}

/// Correlates two photos. `Err` is the reason the pair is not used.
pub(crate) fn match_pair(a: &Ortho, b: &Ortho, cfg: &AlignConfig) -> Result<PairMatch, String> {
    let g = cfg.gsd_m;
    let all: Region = [i64::MIN / 4, i64::MIN / 4, i64::MAX / 4, i64::MAX / 4];
    // Top level: the whole search radius, where the peak must stand out.
    let gt = g * TOP as f64;
    let rt = (cfg.search_radius_m / gt).ceil() as i64;
    let excl_t = (cfg.distinct_m / gt).ceil().max(2.0) as i64;
    let min_t = (cfg.min_overlap_m2 / (gt * gt)) as usize;
    let top = search(&a.top, &b.top, [0, 0], rt, all, min_t, excl_t).ok_or_else(|| {
        format!(
            "less than {:.0} m² of ground both photos see clearly (vegetation and edges masked)",
            cfg.min_overlap_m2
        )
    })?;
    // Coarse: around the top peak.
    let gc = g * COARSE as f64;
    let k = (TOP / COARSE) as i64;
    let min_c = (cfg.min_overlap_m2 / (gc * gc)) as usize;
    let centre_c = [
        top.d[0] * k + (top.sub[0] * k as f64).round() as i64,
        top.d[1] * k + (top.sub[1] * k as f64).round() as i64,
    ];
    let mut coarse = search(&a.coarse, &b.coarse, centre_c, k + 1, all, min_c, i64::MAX)
        .ok_or_else(|| "the overlap vanished at the coarse level".to_string())?;
    coarse.second = top.second;
    coarse.on_edge = top.on_edge || coarse.on_edge;
    coarse.texture = coarse.texture.min(top.texture * 2.0);
    if coarse.texture < cfg.min_texture {
        return Err(format!(
            "too little texture on the ground they share (gradient {:.1} < {:.1}: uniform surface)",
            coarse.texture, cfg.min_texture
        ));
    }
    if coarse.ncc < cfg.min_peak || top.ncc < cfg.min_peak {
        return Err(format!(
            "weak correlation peak {:.2} < {:.2}",
            coarse.ncc.min(top.ncc),
            cfg.min_peak
        ));
    }
    let margin = top.ncc - top.second.max(0.0);
    if top.second >= 0.0 && margin < cfg.min_margin {
        return Err(format!(
            "ambiguous correlation: peak {:.2}, another {:.2} more than {:.1} m away",
            top.ncc, top.second, cfg.distinct_m
        ));
    }
    if coarse.on_edge {
        return Err(format!(
            "the best shift is at the edge of the {:.0} m search radius",
            cfg.search_radius_m
        ));
    }
    // Fine: tiles of the overlap, each searched on its own around the coarse shift (a
    // relative rotation moves distant parts of the overlap differently).
    let f = COARSE as i64;
    let centre = [
        coarse.d[0] * f + (coarse.sub[0] * f as f64).round() as i64,
        coarse.d[1] * f + (coarse.sub[1] * f as f64).round() as i64,
    ];
    let ties = tile_ties(a, b, centre, cfg);
    if ties.len() < 2 {
        return Err(format!(
            "only {} of the overlap's tiles confirm the coarse shift (peak {:.2})",
            ties.len(),
            coarse.ncc
        ));
    }
    let mut se: Vec<f64> = ties.iter().map(|t| t.shift[0]).collect();
    let mut sn: Vec<f64> = ties.iter().map(|t| t.shift[1]).collect();
    se.sort_by(f64::total_cmp);
    sn.sort_by(f64::total_cmp);
    Ok(PairMatch {
        shift_m: [se[se.len() / 2], sn[sn.len() / 2]],
        peak: coarse.ncc,
        margin,
        ties,
    })
}

/// Mean position (metres) of the cells of `region` valid in `a` and in `b` shifted by `d`,
/// with their count; also the bounding box of those cells.
fn overlap_cells(a: &Raster, b: &Raster, d: [i64; 2], region: Region) -> (usize, [f64; 2], Region) {
    let (mut n, mut sx, mut sy) = (0usize, 0f64, 0f64);
    let mut bb = [i64::MAX, i64::MAX, i64::MIN, i64::MIN];
    let xs = region[0].max(a.x0).max(b.x0 - d[0]);
    let xe = region[2].min(a.x1()).min(b.x1() - d[0]);
    let ys = region[1].max(a.y0).max(b.y0 - d[1]);
    let ye = region[3].min(a.y1()).min(b.y1() - d[1]);
    for y in ys..ye {
        for x in xs..xe {
            let ka = (y - a.y0) as usize * a.w + (x - a.x0) as usize;
            let kb = (y + d[1] - b.y0) as usize * b.w + (x + d[0] - b.x0) as usize;
            if a.ok[ka] && b.ok[kb] {
                n += 1;
                sx += x as f64 + 0.5;
                sy += y as f64 + 0.5;
                bb = [
                    bb[0].min(x),
                    bb[1].min(y),
                    bb[2].max(x + 1),
                    bb[3].max(y + 1),
                ];
            }
        }
    }
    if n == 0 {
        return (0, [0.0; 2], bb);
    }
    (n, [sx / n as f64, sy / n as f64], bb)
}

/// Tie points from tiles of the overlap, each correlated on its own around the pair's
/// shift `d`: their spread carries the relative rotation.
fn tile_ties(a: &Ortho, b: &Ortho, d: [i64; 2], cfg: &AlignConfig) -> Vec<Tie> {
    let g = cfg.gsd_m;
    let all: Region = [i64::MIN / 4, i64::MIN / 4, i64::MAX / 4, i64::MAX / 4];
    let (n, _, bb) = overlap_cells(&a.fine, &b.fine, d, all);
    if n == 0 {
        return Vec::new();
    }
    let t = cfg.tiles.max(1) as i64;
    let (tw, th) = ((bb[2] - bb[0]) / t, (bb[3] - bb[1]) / t);
    if tw < 16 || th < 16 {
        return Vec::new();
    }
    // Each tile: coarse search (with the distinctness test), then a small fine one.
    let f = COARSE as i64;
    let gc = g * COARSE as f64;
    let radius_c = ((cfg.tile_search_m + gc) / gc).ceil() as i64;
    let excl_c = (cfg.tile_distinct_m / gc).ceil().max(2.0) as i64;
    let min_cells = ((tw * th) as usize / 4).max(256);
    let min_cells_c = (min_cells / (COARSE * COARSE)).max(16);
    let centre_c = [d[0].div_euclid(f), d[1].div_euclid(f)];
    let mut ties = Vec::new();
    for ty in 0..t {
        for tx in 0..t {
            let region = [
                bb[0] + tx * tw,
                bb[1] + ty * th,
                bb[0] + (tx + 1) * tw,
                bb[1] + (ty + 1) * th,
            ];
            let region_c = [
                region[0].div_euclid(f),
                region[1].div_euclid(f),
                (region[2] + f - 1).div_euclid(f),
                (region[3] + f - 1).div_euclid(f),
            ];
            let Some(pc) = search(
                &a.coarse,
                &b.coarse,
                centre_c,
                radius_c,
                region_c,
                min_cells_c,
                excl_c,
            ) else {
                continue;
            };
            if pc.on_edge
                || pc.texture < cfg.min_texture
                || (pc.second >= 0.0 && pc.ncc - pc.second < cfg.min_margin / 2.0)
            {
                continue;
            }
            let centre = [
                pc.d[0] * f + (pc.sub[0] * f as f64).round() as i64,
                pc.d[1] * f + (pc.sub[1] * f as f64).round() as i64,
            ];
            let Some(p) = search(
                &a.fine,
                &b.fine,
                centre,
                f / 2 + 1,
                region,
                min_cells,
                i64::MAX,
            ) else {
                continue;
            };
            if p.ncc < cfg.min_tile_peak || p.on_edge {
                continue;
            }
            let (_, c, _) = overlap_cells(&a.fine, &b.fine, p.d, region);
            ties.push(Tie {
                at: [c[0] * g, c[1] * g],
                shift: [
                    (p.d[0] as f64 + p.sub[0]) * g,
                    (p.d[1] as f64 + p.sub[1]) * g,
                ],
            });
        }
    }
    ties
}
