//! Moving outlines between a photo's pixels and the ground without the photo's camera: an
//! observation stores its outline twice, in pixels and on the ground (each vertex through
//! the pipeline's own, aligned geometry), and over the few metres of one finding the
//! mapping between the two is affine to well under a pixel for a nadir photo. So a ground
//! outline (a reviewer's correction) projects into the photo, and a pixel outline (drawn on
//! a chip) goes to the ground, with the fit's residual saying how far to trust it.

/// `dst = [a b c; d e f] * [x, y, 1]`, in coordinates relative to `src_origin` and
/// `dst_origin` (ground degrees are small differences; centring keeps the fit well posed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    m: [[f64; 3]; 2],
    src_origin: [f64; 2],
    /// Source coordinates are divided by this (their RMS distance from the origin), so the
    /// normal equations are well scaled for degrees and pixels alike.
    src_scale: f64,
    dst_origin: [f64; 2],
    /// Root-mean-square residual of the fit, in destination units.
    pub rms: f64,
}

impl Affine {
    /// Least-squares fit of `dst[i] ~ A src[i]`; `None` with fewer than 3 pairs, or when the
    /// points are collinear.
    pub fn fit(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Option<Affine> {
        if src.len() != dst.len() || src.len() < 3 {
            return None;
        }
        let mean = |p: &[[f64; 2]]| {
            let n = p.len() as f64;
            let s = p.iter().fold([0.0, 0.0], |a, q| [a[0] + q[0], a[1] + q[1]]);
            [s[0] / n, s[1] / n]
        };
        let (so, d_o) = (mean(src), mean(dst));
        let ss = (src
            .iter()
            .map(|p| (p[0] - so[0]).powi(2) + (p[1] - so[1]).powi(2))
            .sum::<f64>()
            / src.len() as f64)
            .sqrt();
        if !(ss.is_finite() && ss > 0.0) {
            return None;
        }
        // Normal equations: (X^T X) m = X^T y, X rows [x, y, 1].
        let mut xtx = [[0.0; 3]; 3];
        let mut xty = [[0.0; 3]; 2];
        for (s, d) in src.iter().zip(dst) {
            let row = [(s[0] - so[0]) / ss, (s[1] - so[1]) / ss, 1.0];
            let y = [d[0] - d_o[0], d[1] - d_o[1]];
            for i in 0..3 {
                for j in 0..3 {
                    xtx[i][j] += row[i] * row[j];
                }
                for k in 0..2 {
                    xty[k][i] += row[i] * y[k];
                }
            }
        }
        let inv = invert3(xtx)?;
        let mut m = [[0.0; 3]; 2];
        for k in 0..2 {
            for i in 0..3 {
                m[k][i] = (0..3).map(|j| inv[i][j] * xty[k][j]).sum();
            }
        }
        let mut a = Affine {
            m,
            src_origin: so,
            src_scale: ss,
            dst_origin: d_o,
            rms: 0.0,
        };
        let sq: f64 = src
            .iter()
            .zip(dst)
            .map(|(s, d)| {
                let p = a.apply(*s);
                (p[0] - d[0]).powi(2) + (p[1] - d[1]).powi(2)
            })
            .sum();
        a.rms = (sq / src.len() as f64).sqrt();
        Some(a)
    }

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let x = (p[0] - self.src_origin[0]) / self.src_scale;
        let y = (p[1] - self.src_origin[1]) / self.src_scale;
        [
            self.m[0][0] * x + self.m[0][1] * y + self.m[0][2] + self.dst_origin[0],
            self.m[1][0] * x + self.m[1][1] * y + self.m[1][2] + self.dst_origin[1],
        ]
    }
}

fn invert3(a: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    // Rows are scaled to unit RMS by the caller, so the determinant is comparable to 1.
    if !(det.is_finite() && det.abs() > 1e-9) {
        return None;
    }
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| a[r0][c0] * a[r1][c1] - a[r0][c1] * a[r1][c0];
    Some([
        [
            c(1, 1, 2, 2) / det,
            -c(0, 1, 2, 2) / det,
            c(0, 1, 1, 2) / det,
        ],
        [
            -c(1, 0, 2, 2) / det,
            c(0, 0, 2, 2) / det,
            -c(0, 0, 1, 2) / det,
        ],
        [
            c(1, 0, 2, 1) / det,
            -c(0, 0, 2, 1) / det,
            c(0, 0, 1, 1) / det,
        ],
    ])
}

/// The vertex pairs of an observation: its pixel outline and its ground outline, which the
/// pipeline made vertex by vertex and then closed (and reversed when it ran clockwise on
/// the ground). Tries both orders and keeps the better fit; `None` when the counts do not
/// match (a vertex missed the ground) or the outline is degenerate.
fn pairs_fit(pixel: &[[f64; 2]], ground: &[[f64; 2]], to_ground: bool) -> Option<Affine> {
    let mut g: Vec<[f64; 2]> = ground.to_vec();
    if g.len() > 1 && g.first() == g.last() {
        g.pop();
    }
    let mut p: Vec<[f64; 2]> = pixel.to_vec();
    if p.len() > 1 && p.first() == p.last() {
        p.pop();
    }
    if g.len() != p.len() {
        return None;
    }
    let n = p.len();
    let reversed: Vec<[f64; 2]> = (0..n).map(|k| g[(n - k) % n]).collect();
    [g, reversed]
        .into_iter()
        .filter_map(|g| {
            if to_ground {
                Affine::fit(&p, &g)
            } else {
                Affine::fit(&g, &p)
            }
        })
        .min_by(|a, b| a.rms.total_cmp(&b.rms))
}

/// Ground (lon, lat) to this photo's pixels, from one observation's two outlines; `rms` in
/// pixels.
pub fn ground_to_pixel(pixel: &[[f64; 2]], ground: &[[f64; 2]]) -> Option<Affine> {
    pairs_fit(pixel, ground, false)
}

/// This photo's pixels to ground (lon, lat), from one observation's two outlines; `rms` in
/// degrees.
pub fn pixel_to_ground(pixel: &[[f64; 2]], ground: &[[f64; 2]]) -> Option<Affine> {
    pairs_fit(pixel, ground, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_outline_gives_the_mapping_both_ways_in_either_vertex_order() {
        // A rotated, scaled nadir photo near Helsinki: 1.875 cm/px, yaw 30 degrees.
        let (lon0, lat0) = (24.9475f64, 60.1699f64);
        let m_per_deg_lat = 111_320.0;
        let m_per_deg_lon = m_per_deg_lat * lat0.to_radians().cos();
        let to_ground = |p: [f64; 2]| {
            let (x, y) = ((p[0] - 800.0) * 0.01875, (p[1] - 533.0) * 0.01875);
            let (s, c) = 30f64.to_radians().sin_cos();
            let (e, n) = (c * x - s * y, -(s * x + c * y));
            [lon0 + e / m_per_deg_lon, lat0 + n / m_per_deg_lat]
        };
        let pixel = vec![
            [700.0, 500.0],
            [760.0, 505.0],
            [770.0, 560.0],
            [705.0, 555.0],
        ];
        let mut ground: Vec<[f64; 2]> = pixel.iter().map(|p| to_ground(*p)).collect();
        ground.push(ground[0]);
        for g in [ground.clone(), ground.iter().rev().copied().collect()] {
            let back = ground_to_pixel(&pixel, &g).unwrap();
            assert!(back.rms < 1e-6, "rms {}", back.rms);
            let q = back.apply(to_ground([730.0, 530.0]));
            assert!(
                (q[0] - 730.0).abs() < 1e-4 && (q[1] - 530.0).abs() < 1e-4,
                "{q:?}"
            );
            let there = pixel_to_ground(&pixel, &g).unwrap();
            let r = there.apply([730.0, 530.0]);
            let want = to_ground([730.0, 530.0]);
            assert!((r[0] - want[0]).abs() < 1e-9 && (r[1] - want[1]).abs() < 1e-9);
        }
        // Collinear or mismatched outlines give no mapping.
        assert!(Affine::fit(&[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], &[[0.0, 0.0]; 3]).is_none());
        assert!(ground_to_pixel(&pixel, &ground[..3]).is_none());
    }
}
