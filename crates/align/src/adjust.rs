//! The robust adjustment: per-photo corrections (east, north, rotation about the camera's
//! vertical) that best explain every tie point, Huber-weighted and iteratively reweighted,
//! with each connected block's mean correction held at zero.

use crate::correlate::Tie;

/// A tie between photos `a` and `b`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obs {
    pub a: usize,
    pub b: usize,
    pub tie: Tie,
}

/// Corrections per photo: `[east, north, rotation, scale]`, metres, radians
/// counter-clockwise, and the relative change of ground distances from the camera.
#[derive(Debug, Clone)]
pub(crate) struct Solution {
    pub x: Vec<[f64; 4]>,
    /// Residual of each observation after the adjustment, metres `[east, north]`.
    pub residuals: Vec<[f64; 2]>,
}

/// Prior sigmas that keep the normal equations regular for photos the ties hardly
/// constrain (they barely pull on well-tied photos: ties weigh 10^6 times more).
const PRIOR_T_M: f64 = 50.0;
const PRIOR_ROT_RAD: f64 = 0.05;
/// Residual scale floor, metres: correlation is not better than this.
const MIN_SCALE_M: f64 = 0.02;

fn perp(v: [f64; 2]) -> [f64; 2] {
    [-v[1], v[0]]
}

/// The two rows (east, north) of one observation: `(unknown index, coefficient)` pairs.
fn rows(o: &Obs, cam: &[[f64; 2]]) -> [[(usize, f64); 8]; 2] {
    let xa = [o.tie.at[0] - cam[o.a][0], o.tie.at[1] - cam[o.a][1]];
    let xb = [
        o.tie.at[0] + o.tie.shift[0] - cam[o.b][0],
        o.tie.at[1] + o.tie.shift[1] - cam[o.b][1],
    ];
    let (pa, pb) = (perp(xa), perp(xb));
    let (ia, ib) = (N * o.a, N * o.b);
    let row = |c: usize| {
        [
            (ia + c, 1.0),
            (ia + 2, pa[c]),
            (ia + 3, xa[c]),
            (ib + c, -1.0),
            (ib + 2, -pb[c]),
            (ib + 3, -xb[c]),
            // Padding keeps both rows one type.
            (ia + 1 - c, 0.0),
            (ib + 1 - c, 0.0),
        ]
    };
    [row(0), row(1)]
}

/// Unknowns per photo.
const N: usize = 4;

/// The lower triangle of a symmetric `n x n` matrix, row `i` stored from its first
/// non-zero column `first[i]` to the diagonal (an envelope, or skyline): the normal matrix
/// of a flight ties each photo to its neighbours only, so for photos in flight order this is
/// a band of a few strips' photos instead of `n x n` (128 MB at 1,000 photos, issue 14).
pub(crate) struct Envelope {
    n: usize,
    first: Vec<usize>,
    /// Where row `i`'s entry for column `first[i]` is in `data`.
    start: Vec<usize>,
    data: Vec<f64>,
}

impl Envelope {
    /// A zero matrix whose row `i` may be non-zero from column `first[i]` (<= i) on.
    pub(crate) fn zeros(first: Vec<usize>) -> Self {
        let n = first.len();
        let mut start = Vec::with_capacity(n);
        let mut len = 0;
        for (i, &f) in first.iter().enumerate() {
            start.push(len);
            len += i + 1 - f.min(i);
        }
        Envelope {
            n,
            first: first.iter().enumerate().map(|(i, &f)| f.min(i)).collect(),
            start,
            data: vec![0.0; len],
        }
    }

    /// Entry `(i, j)` for `j <= i` inside the envelope (`j >= first[i]`).
    fn at(&mut self, i: usize, j: usize) -> &mut f64 {
        &mut self.data[self.start[i] + j - self.first[i]]
    }

    fn get(&self, i: usize, j: usize) -> f64 {
        if j < self.first[i] {
            0.0
        } else {
            self.data[self.start[i] + j - self.first[i]]
        }
    }

    /// Adds `v` to entry `(i, j)` of the lower triangle; entries above the diagonal are
    /// ignored (the matrix is symmetric), and so is `v` outside the envelope if it is 0.
    pub(crate) fn add(&mut self, i: usize, j: usize, v: f64) {
        if j <= i {
            *self.at(i, j) += v;
        }
    }
}

/// Cholesky solve of the symmetric positive definite system in place (the factor fills no
/// entry outside the envelope). Bit for bit the dense Cholesky's result: the terms it skips
/// are products with exact zeros, and the others are summed in the same order.
fn cholesky_solve(m: &mut Envelope, rhs: &mut [f64]) -> bool {
    let n = m.n;
    for j in 0..n {
        let (fj, sj) = (m.first[j], m.start[j]);
        let jj = sj + j - fj;
        let mut d = m.data[jj];
        for v in &m.data[sj..jj] {
            d -= v * v;
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        m.data[jj] = d;
        for i in j + 1..n {
            let (fi, si) = (m.first[i], m.start[i]);
            if fi > j {
                continue;
            }
            let k0 = fi.max(fj);
            let ij = si + j - fi;
            let mut s = m.data[ij];
            let (row_i, row_j) = (&m.data[si + k0 - fi..ij], &m.data[sj + k0 - fj..jj]);
            for (a, b) in row_i.iter().zip(row_j) {
                s -= a * b;
            }
            m.data[ij] = s / d;
        }
    }
    for i in 0..n {
        let mut s = rhs[i];
        for (k, r) in rhs.iter().enumerate().take(i).skip(m.first[i]) {
            s -= m.get(i, k) * r;
        }
        rhs[i] = s / m.get(i, i);
    }
    for i in (0..n).rev() {
        let mut s = rhs[i];
        for (k, r) in rhs.iter().enumerate().skip(i + 1) {
            if m.first[k] <= i {
                s -= m.get(k, i) * r;
            }
        }
        rhs[i] = s / m.get(i, i);
    }
    true
}

/// First non-zero column of each row of the normal matrix of `np` photos tied by `obs`:
/// a photo's row starts at its own first unknown or at the first unknown of the
/// lowest-numbered photo it is tied to.
fn envelope_of(np: usize, obs: &[Obs]) -> Vec<usize> {
    let mut first_photo: Vec<usize> = (0..np).collect();
    for o in obs {
        let lo = o.a.min(o.b);
        for p in [o.a, o.b] {
            first_photo[p] = first_photo[p].min(lo);
        }
    }
    (0..N * np).map(|i| N * first_photo[i / N]).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Solves for the corrections of `cam.len()` photos from `obs`. `blocks` lists the photos of
/// each connected block whose mean correction is held at zero.
pub(crate) fn solve(
    cam: &[[f64; 2]],
    obs: &[Obs],
    blocks: &[Vec<usize>],
    huber_k: f64,
    iterations: usize,
    prior_scale: f64,
    fixed: Option<usize>,
) -> Option<Solution> {
    let np = cam.len();
    let n = N * np;
    let mut w = vec![1.0f64; obs.len()];
    let mut x = vec![0.0f64; n];
    let mut residuals = vec![[0.0; 2]; obs.len()];
    let first = envelope_of(np, obs);
    for _ in 0..iterations.max(1) {
        let mut m = Envelope::zeros(first.clone());
        let mut rhs = vec![0.0f64; n];
        for k in 0..np {
            let priors = if Some(k) == fixed {
                // The reference does not move.
                [1e-6; 4]
            } else {
                [PRIOR_T_M, PRIOR_T_M, PRIOR_ROT_RAD, prior_scale]
            };
            for (c, p) in priors.iter().enumerate() {
                m.add(N * k + c, N * k + c, 1.0 / (p * p));
            }
        }
        // Ties are weighed as sigma = MIN_SCALE_M before Huber.
        let base = 1.0 / (MIN_SCALE_M * MIN_SCALE_M);
        for (o, &wo) in obs.iter().zip(&w) {
            let r = rows(o, cam);
            for (row, y) in r.iter().zip(o.tie.shift) {
                for &(i, ci) in row {
                    if ci == 0.0 {
                        continue;
                    }
                    rhs[i] += base * wo * ci * y;
                    for &(j, cj) in row {
                        m.add(i, j, base * wo * ci * cj);
                    }
                }
            }
        }
        if !cholesky_solve(&mut m, &mut rhs) {
            return None;
        }
        x = rhs;
        for (k, o) in obs.iter().enumerate() {
            let r = rows(o, cam);
            for (c, row) in r.iter().enumerate() {
                let pred: f64 = row.iter().map(|&(i, ci)| ci * x[i]).sum();
                residuals[k][c] = o.tie.shift[c] - pred;
            }
        }
        let norms: Vec<f64> = residuals.iter().map(|r| r[0].hypot(r[1])).collect();
        let scale = (1.4826 * median(norms.clone())).max(MIN_SCALE_M);
        let k = huber_k * scale;
        for (wo, r) in w.iter_mut().zip(&norms) {
            *wo = if *r <= k { 1.0 } else { k / r };
        }
    }
    // Gauge: each block's mean rotation and mean shift are zero (GPS and compass are
    // unbiased on average). A common rotation of a block about its centre, with the shifts
    // it implies, leaves every tie unchanged; so does a common shift.
    let mut out: Vec<[f64; 4]> = (0..np)
        .map(|k| [x[N * k], x[N * k + 1], x[N * k + 2], x[N * k + 3]])
        .collect();
    // A block tied to the reference is anchored by it; the others by their mean.
    let free: Vec<Vec<usize>> = blocks
        .iter()
        .filter(|b| fixed.is_none_or(|f| !b.contains(&f)))
        .cloned()
        .collect();
    apply_gauge(cam, &mut out, &free);
    for (k, o) in obs.iter().enumerate() {
        let r = rows(o, cam);
        for (c, row) in r.iter().enumerate() {
            let pred: f64 = row.iter().map(|&(i, ci)| ci * out[i / N][i % N]).sum();
            residuals[k][c] = o.tie.shift[c] - pred;
        }
    }
    Some(Solution { x: out, residuals })
}

/// Removes each block's mean rotation (with the shifts a common rotation about the block's
/// centre implies) and mean shift.
fn apply_gauge(cam: &[[f64; 2]], out: &mut [[f64; 4]], blocks: &[Vec<usize>]) {
    for block in blocks {
        if block.is_empty() {
            continue;
        }
        let nb = block.len() as f64;
        let c0 = [
            block.iter().map(|&k| cam[k][0]).sum::<f64>() / nb,
            block.iter().map(|&k| cam[k][1]).sum::<f64>() / nb,
        ];
        let rot = block.iter().map(|&k| out[k][2]).sum::<f64>() / nb;
        for &k in block {
            let p = perp([cam[k][0] - c0[0], cam[k][1] - c0[1]]);
            out[k][0] -= rot * p[0];
            out[k][1] -= rot * p[1];
            out[k][2] -= rot;
        }
        // Likewise a common scale about the block's centre (the mean height above the
        // ground stays the ground model's).
        let sc = block.iter().map(|&k| out[k][3]).sum::<f64>() / nb;
        for &k in block {
            out[k][0] -= sc * (cam[k][0] - c0[0]);
            out[k][1] -= sc * (cam[k][1] - c0[1]);
            out[k][3] -= sc;
        }
        let t = [
            block.iter().map(|&k| out[k][0]).sum::<f64>() / nb,
            block.iter().map(|&k| out[k][1]).sum::<f64>() / nb,
        ];
        for &k in block {
            out[k][0] -= t[0];
            out[k][1] -= t[1];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three photos in a row with known corrections: ties generated from them are solved
    /// back exactly (up to the gauge, which is zero mean here by construction).
    #[test]
    fn known_corrections_are_recovered() {
        let cam = [[0.0, 0.0], [20.0, 0.0], [40.0, 0.0], [20.0, 20.0]];
        let truth: [[f64; 4]; 4] = [
            [0.5, -0.2, 0.01, 0.0],
            [-0.3, 0.4, -0.02, 0.0],
            [0.1, 0.1, 0.015, 0.0],
            [-0.3, -0.3, -0.005, 0.0],
        ];
        let mut obs = Vec::new();
        // A ground point as photo a places it is at `at`; the true point is
        // c_a + t_a + R(th_a)(at - c_a); photo b places the true point at the inverse.
        let place = |k: usize, at: [f64; 2]| -> [f64; 2] {
            let v = [at[0] - cam[k][0], at[1] - cam[k][1]];
            let (s, c) = truth[k][2].sin_cos();
            [
                cam[k][0] + truth[k][0] + c * v[0] - s * v[1],
                cam[k][1] + truth[k][1] + s * v[0] + c * v[1],
            ]
        };
        let unplace = |k: usize, g: [f64; 2]| -> [f64; 2] {
            let v = [
                g[0] - cam[k][0] - truth[k][0],
                g[1] - cam[k][1] - truth[k][1],
            ];
            let (s, c) = (-truth[k][2]).sin_cos();
            [
                cam[k][0] + c * v[0] - s * v[1],
                cam[k][1] + s * v[0] + c * v[1],
            ]
        };
        for (a, b) in [(0, 1), (1, 2), (0, 3), (1, 3), (2, 3)] {
            for dx in [-5.0, 0.0, 5.0] {
                for dy in [-5.0, 5.0] {
                    let at = [
                        (cam[a][0] + cam[b][0]) / 2.0 + dx,
                        (cam[a][1] + cam[b][1]) / 2.0 + dy,
                    ];
                    let g = place(a, at);
                    let xb = unplace(b, g);
                    obs.push(Obs {
                        a,
                        b,
                        tie: Tie {
                            at,
                            shift: [xb[0] - at[0], xb[1] - at[1]],
                        },
                    });
                }
            }
        }
        let s = solve(&cam, &obs, &[vec![0, 1, 2, 3]], 1.5, 5, 1e-6, None).unwrap();
        // Only differences are observable: compare with the truth under the same gauge.
        let mut expected = truth.to_vec();
        apply_gauge(&cam, &mut expected, &[vec![0, 1, 2, 3]]);
        for (k, (got, want)) in s.x.iter().zip(&expected).enumerate() {
            for c in 0..3 {
                let d = got[c] - want[c];
                let tol = if c == 2 { 2e-4 } else { 0.01 };
                assert!(d.abs() < tol, "photo {k} unknown {c} off by {d}");
            }
        }
        let rms = (s
            .residuals
            .iter()
            .map(|r| r[0] * r[0] + r[1] * r[1])
            .sum::<f64>()
            / s.residuals.len() as f64)
            .sqrt();
        assert!(rms < 0.01, "residual rms {rms}");
    }

    /// A lawnmower flight of `strips` x `per_strip` photos 10 m apart (serpentine order, as
    /// flown), each tied to its neighbours along and across the strips; shifts from a fixed
    /// pseudo-random sequence, one in seven an outlier.
    fn lawnmower(strips: usize, per_strip: usize) -> (Vec<[f64; 2]>, Vec<Obs>) {
        let index = |s: usize, x: usize| {
            s * per_strip
                + if s.is_multiple_of(2) {
                    x
                } else {
                    per_strip - 1 - x
                }
        };
        let mut cam = vec![[0.0; 2]; strips * per_strip];
        for s in 0..strips {
            for x in 0..per_strip {
                cam[index(s, x)] = [x as f64 * 10.0, s as f64 * 10.0];
            }
        }
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut obs = Vec::new();
        for s in 0..strips {
            for x in 0..per_strip {
                let a = index(s, x);
                let mut near = Vec::new();
                if x + 1 < per_strip {
                    near.push(index(s, x + 1));
                }
                if s + 1 < strips {
                    near.push(index(s + 1, x));
                }
                for b in near {
                    for t in 0..4 {
                        let at = [
                            (cam[a][0] + cam[b][0]) / 2.0 + next() * 8.0,
                            (cam[a][1] + cam[b][1]) / 2.0 + next() * 8.0,
                        ];
                        let big = if (a + t) % 7 == 0 { 3.0 } else { 0.1 };
                        obs.push(Obs {
                            a,
                            b,
                            tie: Tie {
                                at,
                                shift: [next() * big, next() * big],
                            },
                        });
                    }
                }
            }
        }
        (cam, obs)
    }

    /// The normal matrix of one weighting of `obs`, as `solve` builds it.
    fn normal(cam: &[[f64; 2]], obs: &[Obs], m: &mut dyn FnMut(usize, usize, f64)) -> Vec<f64> {
        let n = N * cam.len();
        let mut rhs = vec![0.0; n];
        for k in 0..n {
            m(k, k, 1.0 / (PRIOR_T_M * PRIOR_T_M));
        }
        for o in obs {
            for (row, y) in rows(o, cam).iter().zip(o.tie.shift) {
                for &(i, ci) in row {
                    if ci == 0.0 {
                        continue;
                    }
                    rhs[i] += 2500.0 * ci * y;
                    for &(j, cj) in row {
                        m(i, j, 2500.0 * ci * cj);
                    }
                }
            }
        }
        rhs
    }

    /// The dense Cholesky the envelope replaced (kept here as the reference).
    fn dense_cholesky_solve(m: &mut [f64], rhs: &mut [f64], n: usize) -> bool {
        for j in 0..n {
            let mut d = m[j * n + j];
            for k in 0..j {
                d -= m[j * n + k] * m[j * n + k];
            }
            if d <= 0.0 || !d.is_finite() {
                return false;
            }
            let d = d.sqrt();
            m[j * n + j] = d;
            for i in j + 1..n {
                let mut s = m[i * n + j];
                for k in 0..j {
                    s -= m[i * n + k] * m[j * n + k];
                }
                m[i * n + j] = s / d;
            }
        }
        for i in 0..n {
            let mut s = rhs[i];
            for (k, r) in rhs.iter().enumerate().take(i) {
                s -= m[i * n + k] * r;
            }
            rhs[i] = s / m[i * n + i];
        }
        for i in (0..n).rev() {
            let mut s = rhs[i];
            for (k, r) in rhs.iter().enumerate().skip(i + 1) {
                s -= m[k * n + i] * r;
            }
            rhs[i] = s / m[i * n + i];
        }
        true
    }

    #[test]
    fn the_envelope_cholesky_gives_the_dense_result_bit_for_bit() {
        let (cam, obs) = lawnmower(6, 8);
        let n = N * cam.len();
        let mut dense = vec![0.0; n * n];
        let mut want = normal(&cam, &obs, &mut |i, j, v| dense[i * n + j] += v);
        let mut env = Envelope::zeros(envelope_of(cam.len(), &obs));
        let mut got = normal(&cam, &obs, &mut |i, j, v| env.add(i, j, v));
        assert!(
            env.data.len() < n * (n + 1) / 2,
            "the envelope is the whole triangle"
        );
        assert!(dense_cholesky_solve(&mut dense, &mut want, n));
        assert!(cholesky_solve(&mut env, &mut got));
        assert!(want.iter().any(|v| v.abs() > 1e-6), "a trivial solution");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "unknown {k}: {g} against {w}");
        }
    }

    /// 1,000 photos in 25 strips: the normal matrix held is a band (under 16 MB where the
    /// dense one took 128 MB) and the adjustment still solves and fits the inliers.
    #[test]
    fn a_thousand_photo_flight_is_solved_in_a_band() {
        let (cam, obs) = lawnmower(25, 40);
        let n = N * cam.len();
        let env = Envelope::zeros(envelope_of(cam.len(), &obs));
        let mb = (env.data.len() * 8) as f64 / 1e6;
        assert!(
            mb < 16.0,
            "envelope {mb:.1} MB, dense {} MB",
            n * n * 8 / 1_000_000
        );
        let blocks = [(0..cam.len()).collect::<Vec<_>>()];
        let s = solve(&cam, &obs, &blocks, 1.5, 3, 1e-6, None).expect("solved");
        assert_eq!(s.x.len(), cam.len());
        let mut inlier: Vec<f64> = s.residuals.iter().map(|r| r[0].hypot(r[1])).collect();
        inlier.sort_by(f64::total_cmp);
        let median = inlier[inlier.len() / 2];
        assert!(
            median.is_finite() && median < 0.1,
            "median residual {median} m"
        );
    }
}
