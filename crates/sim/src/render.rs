//! Rendering one photo: every pixel's ray meets the ground through georef's camera model
//! ([`besikta_georef::PhotoGeometry`]) and samples the ground texture.
//!
//! Tracing a ray per sub-pixel through the ellipsoid and PROJ would cost seconds per photo,
//! so rays are traced on a grid of nodes every [`GRID_STEP_PX`] pixels, the nodes are moved
//! into the working frame in one GDAL call, and pixels interpolate between nodes. Over a
//! level ground the pixel -> ground map is a homography that is almost affine for survey
//! photos, so the interpolation error is far below a texture cell (tested below).

use crate::rng::hash2;
use crate::texture::{threads, Texture};
use crate::SimError;
use besikta_georef::PhotoGeometry;
use gdal::spatial_ref::CoordTransform;
use image::RgbImage;

/// Spacing of traced rays, pixels.
pub const GRID_STEP_PX: u32 = 8;

/// WGS 84 lon/lat <-> working frame, many points per call.
pub struct BatchTransform {
    to_work: CoordTransform,
    to_wgs84: CoordTransform,
    name: String,
}

impl std::fmt::Debug for BatchTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchTransform")
            .field("name", &self.name)
            .finish()
    }
}

impl BatchTransform {
    pub fn new(frame: &besikta_report::WorkFrame) -> Result<BatchTransform, SimError> {
        let err = |e: gdal::errors::GdalError| SimError::Crs {
            crs: frame.name.clone(),
            message: e.to_string(),
        };
        let geo = besikta_georef::wgs84().map_err(err)?;
        Ok(BatchTransform {
            to_work: CoordTransform::new(&geo, frame.srs()).map_err(err)?,
            to_wgs84: CoordTransform::new(frame.srs(), &geo).map_err(err)?,
            name: frame.name.clone(),
        })
    }

    fn run(&self, t: &CoordTransform, pts: &mut [[f64; 2]]) -> Result<(), SimError> {
        if pts.is_empty() {
            return Ok(());
        }
        let mut xs: Vec<f64> = pts.iter().map(|p| p[0]).collect();
        let mut ys: Vec<f64> = pts.iter().map(|p| p[1]).collect();
        let mut zs = vec![0.0; pts.len()];
        t.transform_coords(&mut xs, &mut ys, &mut zs)
            .map_err(|e| SimError::Crs {
                crs: self.name.clone(),
                message: e.to_string(),
            })?;
        for (p, (x, y)) in pts.iter_mut().zip(xs.into_iter().zip(ys)) {
            *p = [x, y];
        }
        Ok(())
    }

    /// `[lon, lat]` -> working `[x, y]`, in place.
    pub fn to_work(&self, pts: &mut [[f64; 2]]) -> Result<(), SimError> {
        self.run(&self.to_work, pts)
    }

    /// Working `[x, y]` -> `[lon, lat]`, in place.
    pub fn to_wgs84(&self, pts: &mut [[f64; 2]]) -> Result<(), SimError> {
        self.run(&self.to_wgs84, pts)
    }
}

/// Options of [`render`].
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Seed of the sensor noise of this photo.
    pub noise_seed: u64,
    /// Standard deviation-ish amplitude of the sensor noise, grey levels.
    pub noise_amplitude: f64,
    /// Darkening at the corners (0 = none), like a real lens.
    pub vignetting: f64,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            noise_seed: 0,
            noise_amplitude: 3.0,
            vignetting: 0.12,
        }
    }
}

/// Ground positions (working metres) of rays traced every [`GRID_STEP_PX`] pixels, and
/// bilinear interpolation between them.
#[derive(Debug, Clone)]
pub struct GroundGrid {
    nx: usize,
    w: u32,
    h: u32,
    /// `None` where a ray misses the ground.
    nodes: Vec<Option<[f64; 2]>>,
}

impl GroundGrid {
    /// Traces the grid's rays for a `w` x `h` photo.
    pub fn new(
        geom: &PhotoGeometry<'_>,
        tf: &BatchTransform,
        w: u32,
        h: u32,
    ) -> Result<GroundGrid, SimError> {
        let nx = w.div_ceil(GRID_STEP_PX) as usize + 1;
        let ny = h.div_ceil(GRID_STEP_PX) as usize + 1;
        let mut pts = Vec::with_capacity(nx * ny);
        let mut hit = Vec::with_capacity(nx * ny);
        for j in 0..ny {
            for i in 0..nx {
                let px = [
                    (i as u32 * GRID_STEP_PX).min(w) as f64,
                    (j as u32 * GRID_STEP_PX).min(h) as f64,
                ];
                match geom.pixel_to_ground(px) {
                    Ok(g) => {
                        pts.push([g.lon, g.lat]);
                        hit.push(true);
                    }
                    Err(_) => {
                        pts.push([0.0, 0.0]);
                        hit.push(false);
                    }
                }
            }
        }
        tf.to_work(&mut pts)?;
        let nodes = pts
            .into_iter()
            .zip(hit)
            .map(|(p, ok)| ok.then_some(p))
            .collect();
        Ok(GroundGrid { nx, w, h, nodes })
    }

    /// The ground position (working metres) seen at continuous pixel `(px, py)`, inside
    /// the photo; `None` where the rays around it miss the ground.
    #[inline]
    pub fn at(&self, px: f64, py: f64) -> Option<[f64; 2]> {
        let step = GRID_STEP_PX as f64;
        let ny = self.nodes.len() / self.nx;
        let i = ((px.max(0.0) / step) as usize).min(self.nx - 2);
        let j = ((py.max(0.0) / step) as usize).min(ny - 2);
        let node_px = |k: usize, limit: u32| (k as u32 * GRID_STEP_PX).min(limit) as f64;
        let (x0, x1) = (node_px(i, self.w), node_px(i + 1, self.w));
        let (y0, y1) = (node_px(j, self.h), node_px(j + 1, self.h));
        let tx = (px - x0) / (x1 - x0);
        let ty = (py - y0) / (y1 - y0);
        let g = |a: usize, b: usize| self.nodes[b * self.nx + a];
        let (a, b, c, d) = (g(i, j)?, g(i + 1, j)?, g(i, j + 1)?, g(i + 1, j + 1)?);
        Some([
            (a[0] * (1.0 - tx) + b[0] * tx) * (1.0 - ty) + (c[0] * (1.0 - tx) + d[0] * tx) * ty,
            (a[1] * (1.0 - tx) + b[1] * tx) * (1.0 - ty) + (c[1] * (1.0 - tx) + d[1] * tx) * ty,
        ])
    }
}

/// Renders a `w` x `h` photo of the textured ground as seen by `geom`.
pub fn render(
    tex: &Texture,
    geom: &PhotoGeometry<'_>,
    tf: &BatchTransform,
    w: u32,
    h: u32,
    opts: &RenderOptions,
) -> Result<RgbImage, SimError> {
    let grid = GroundGrid::new(geom, tf, w, h)?;
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    let row_bytes = w as usize * 3;
    let rows_per = (h as usize).div_ceil(threads()).max(1);
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let r2max = cx * cx + cy * cy;
    std::thread::scope(|s| {
        for (t, chunk) in buf.chunks_mut(rows_per * row_bytes).enumerate() {
            let grid = &grid;
            s.spawn(move || {
                for (r, row) in chunk.chunks_mut(row_bytes).enumerate() {
                    let y = (t * rows_per + r) as u32;
                    for x in 0..w {
                        let mut acc = [0f32; 3];
                        let mut sky = false;
                        // 2 x 2 sub-pixels: the texture is finer than the photo.
                        for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                            let Some([gx, gy]) = grid.at(x as f64 + sx, y as f64 + sy) else {
                                sky = true;
                                break;
                            };
                            let v = tex.sample(gx, gy);
                            for k in 0..3 {
                                acc[k] += v[k] / 4.0;
                            }
                        }
                        let out = &mut row[x as usize * 3..x as usize * 3 + 3];
                        if sky {
                            out.copy_from_slice(&[200, 210, 225]);
                            continue;
                        }
                        let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                        let vig = 1.0 - opts.vignetting * (dx * dx + dy * dy) / r2max;
                        let n = (hash2(x as i64, y as i64, opts.noise_seed) - 0.5)
                            * 2.0
                            * opts.noise_amplitude;
                        for k in 0..3 {
                            out[k] = (acc[k] as f64 * vig + n).round().clamp(0.0, 255.0) as u8;
                        }
                    }
                }
            });
        }
    });
    RgbImage::from_raw(w, h, buf).ok_or_else(|| SimError::Config {
        message: "rendered buffer does not match the photo size".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use besikta_core::Capture;
    use besikta_georef::Ground;
    use besikta_report::WorkFrame;

    #[test]
    fn interpolated_ground_positions_match_traced_rays_to_a_millimetre() {
        let frame = WorkFrame::utm_for(24.9475, 60.1699).unwrap();
        let tf = BatchTransform::new(&frame).unwrap();
        let (w, h) = (1200, 800);
        // Slightly tilted and turned, so the map from pixels to ground is not affine.
        let capture = Capture {
            file: "t.jpg".into(),
            width: w,
            height: h,
            latitude: Some(60.1699),
            longitude: Some(24.9475),
            absolute_altitude_m: Some(50.0),
            relative_altitude_m: Some(40.0),
            gimbal_yaw_deg: Some(33.0),
            gimbal_pitch_deg: Some(-85.0),
            gimbal_roll_deg: Some(2.0),
            focal_length_px: Some(800.0),
            ..Default::default()
        };
        let ground = Ground::Plane { height_m: 10.0 };
        let geom = PhotoGeometry::new(&capture, &ground).unwrap();
        let grid = GroundGrid::new(&geom, &tf, w, h).unwrap();
        let mut worst: f64 = 0.0;
        for k in 0..200 {
            let px = (k as f64 * 37.77) % w as f64;
            let py = (k as f64 * 23.31) % h as f64;
            let g = geom.pixel_to_ground([px, py]).unwrap();
            let mut p = [[g.lon, g.lat]];
            tf.to_work(&mut p).unwrap();
            let q = grid.at(px, py).unwrap();
            worst = worst.max(((p[0][0] - q[0]).powi(2) + (p[0][1] - q[1]).powi(2)).sqrt());
        }
        assert!(worst < 0.001, "worst interpolation error {worst} m");
    }
}
