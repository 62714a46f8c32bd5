//! One photo's geometry: pixel -> ground ray intersection, ground -> pixel projection,
//! footprint polygon and ground sampling distance.

use crate::camera::{camera_point_to_pixel, camera_to_enu, pixel_to_camera_ray};
use crate::crs::CrsTransform;
use crate::dem::Dem;
use crate::geodesy::{
    add, cross, dot, ecef_to_geodetic, geodetic_to_ecef, mat_mul, mat_vec, norm, scale, sub,
    up_ecef, EnuFrame,
};
use crate::GeorefError;
use besikta_core::{Camera, Capture};

/// What the rays meet. All heights are in the vertical reference of the capture's
/// altitudes (see the crate docs, "Heights and datums").
// A run holds one ground model for all photos, so the size of the DEM variant is no cost.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Default)]
pub enum Ground {
    /// A level surface at each photo's take-off elevation: absolute minus relative
    /// altitude. Needs only the relative altitude: without an absolute altitude the camera
    /// is put at its relative altitude over a surface at height 0, and ground heights are
    /// then heights above the take-off point.
    #[default]
    TakeOffPlane,
    /// A level surface at a fixed height, in the same reference as the capture's absolute
    /// altitude (DJI: metres above mean sea level).
    Plane { height_m: f64 },
    /// Terrain from a DEM/DSM, whose heights must be in the same reference as the capture's
    /// absolute altitude.
    Dem(Dem),
}

/// A place on the ground: WGS 84 latitude and longitude in degrees, height in metres in
/// the vertical reference of the ground model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundPoint {
    pub lat: f64,
    pub lon: f64,
    pub height_m: f64,
}

impl GroundPoint {
    /// The point's `[x, y]` in another CRS (x = easting or longitude).
    pub fn in_crs(&self, crs: &CrsTransform) -> Result<[f64; 2], GeorefError> {
        crs.apply(self.lon, self.lat)
    }
}

/// Where the camera's height comes from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum CameraHeight {
    /// The capture's absolute altitude (EXIF GPS altitude when it has none). With
    /// [`Ground::TakeOffPlane`] only the relative altitude matters either way.
    #[default]
    Absolute,
    /// The ground's height at the take-off point (WGS 84 degrees) plus the relative
    /// altitude. Use it over a DEM when the drone's absolute altitude is unreliable
    /// (barometric drift) or in another vertical datum than the DEM (an RTK drone's
    /// ellipsoidal heights over an orthometric DEM differ by the geoid, tens of metres).
    OverTakeOff { lat: f64, lon: f64 },
}

/// How one photo's geometry is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeometryOptions {
    /// Farthest distance from the camera, along the ray, at which a ray may meet the
    /// ground; farther is an error ([`GeorefError::BeyondRange`]). Metres.
    pub max_range_m: f64,
    /// Where the camera's height comes from.
    pub camera_height: CameraHeight,
}

impl Default for GeometryOptions {
    fn default() -> Self {
        Self {
            max_range_m: 1000.0,
            camera_height: CameraHeight::Absolute,
        }
    }
}

/// How to trace a photo's footprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FootprintOptions {
    /// Points per edge of the photo (corners included), so curved edges (distortion,
    /// terrain) are followed; at least 2.
    pub points_per_edge: usize,
    /// Where rays that see the horizon, or leave the DEM, or go farther than this
    /// (metres along the ray from the camera) are cut. The footprint is then the part of
    /// the ground seen within this range.
    pub max_range_m: f64,
}

impl Default for FootprintOptions {
    fn default() -> Self {
        Self {
            points_per_edge: 16,
            max_range_m: 250.0,
        }
    }
}

/// Ground model after the capture's altitudes have been resolved.
#[derive(Debug, Clone, Copy)]
enum Surface<'g> {
    /// Constant height above the ellipsoid (in the capture's reference, see crate docs).
    Level(f64),
    Dem(&'g Dem),
}

/// Where a ray met the ground.
#[derive(Debug, Clone, Copy)]
struct Hit {
    ecef: [f64; 3],
    point: GroundPoint,
}

/// The camera geometry of one photo over one ground model.
#[derive(Debug)]
pub struct PhotoGeometry<'g> {
    file: String,
    camera: Camera,
    position: GroundPoint,
    centre: [f64; 3],
    up: [f64; 3],
    cam_to_ecef: [[f64; 3]; 3],
    surface: Surface<'g>,
    dem_path: Option<std::path::PathBuf>,
    max_range_m: f64,
}

/// Ray-marching step as a fraction of the DEM's cell size, so no cell is skipped.
const DEM_STEP_CELLS: f64 = 0.5;
/// Samples transformed to the DEM's CRS in one GDAL call while marching.
const DEM_BATCH: usize = 64;
/// DEM refinement stops when the bracket along the ray is shorter than this, metres...
const DEM_BISECT_TOL_M: f64 = 1e-6;
/// ...or when the ray is this close to the surface, metres.
const DEM_CLEARANCE_TOL_M: f64 = 1e-6;
/// Refinement steps allowed (regula falsi with bisection fallback).
const DEM_REFINE_MAX_ITER: usize = 100;
/// Bisection steps when cutting a footprint edge at the range limit (4000 px / 2^32).
const CUT_BISECT_STEPS: usize = 32;

fn is_miss(e: &GeorefError) -> bool {
    matches!(
        e,
        GeorefError::AboveHorizon { .. }
            | GeorefError::BeyondRange { .. }
            | GeorefError::OutsideDem { .. }
    )
}

impl<'g> PhotoGeometry<'g> {
    /// Geometry of `capture` over `ground` with default options.
    pub fn new(capture: &Capture, ground: &'g Ground) -> Result<Self, GeorefError> {
        Self::with_options(capture, ground, &GeometryOptions::default())
    }

    /// Geometry of `capture` over `ground`.
    pub fn with_options(
        capture: &Capture,
        ground: &'g Ground,
        opts: &GeometryOptions,
    ) -> Result<Self, GeorefError> {
        let file = capture.file.clone();
        let missing = |what: &str| GeorefError::MissingMetadata {
            file: file.clone(),
            what: what.to_string(),
        };
        let camera = capture.camera().ok_or_else(|| {
            missing("no focal length in pixels (no calibrated focal length, no focal length with a known sensor size, no 35 mm equivalent)")
        })?;
        if camera.width == 0 || camera.height == 0 {
            return Err(missing("the image size is unknown"));
        }
        if !(camera.focal_px.is_finite() && camera.focal_px > 0.0) {
            return Err(missing("the focal length is not a positive number"));
        }
        let pose = capture
            .pose()
            .ok_or_else(|| missing("no GPS position (latitude/longitude)"))?;
        let finite = [
            pose.latitude,
            pose.longitude,
            pose.yaw_deg,
            pose.pitch_deg,
            pose.roll_deg,
        ]
        .iter()
        .chain(pose.absolute_altitude_m.iter())
        .chain(pose.relative_altitude_m.iter())
        .all(|v| v.is_finite());
        if !finite || pose.latitude.abs() > 90.0 || pose.longitude.abs() > 360.0 {
            return Err(missing(
                "the position, altitude or gimbal angles are not valid numbers",
            ));
        }
        let relative = || {
            pose.relative_altitude_m.ok_or_else(|| {
                missing(
                    "no relative altitude, so the camera cannot be placed over the take-off point",
                )
            })
        };
        let (camera_h, surface, dem_path) = match ground {
            Ground::TakeOffPlane => {
                let rel = pose.relative_altitude_m.ok_or_else(|| {
                    missing("no relative altitude, so the take-off ground level is unknown; use a DEM or a fixed ground height")
                })?;
                match pose.absolute_altitude_m {
                    Some(abs) => (abs, Surface::Level(abs - rel), None),
                    None => (rel, Surface::Level(0.0), None),
                }
            }
            Ground::Plane { height_m } => {
                let camera_h = match opts.camera_height {
                    CameraHeight::Absolute => pose.absolute_altitude_m.ok_or_else(|| {
                        missing("no absolute altitude, so the camera cannot be placed over a ground height")
                    })?,
                    CameraHeight::OverTakeOff { .. } => height_m + relative()?,
                };
                (camera_h, Surface::Level(*height_m), None)
            }
            Ground::Dem(dem) => {
                let camera_h = match opts.camera_height {
                    CameraHeight::Absolute => pose.absolute_altitude_m.ok_or_else(|| {
                        missing("no absolute altitude, so the camera cannot be placed over the DEM")
                    })?,
                    CameraHeight::OverTakeOff { lat, lon } => {
                        let take_off = dem.height_at(lat, lon)?.ok_or_else(|| GeorefError::Dem {
                            path: dem.path().to_path_buf(),
                            reason: format!(
                                "the take-off point ({lat:.7}, {lon:.7}) is outside the DEM or on no data"
                            ),
                        })?;
                        take_off + relative()?
                    }
                };
                (camera_h, Surface::Dem(dem), Some(dem.path().to_path_buf()))
            }
        };
        let position = GroundPoint {
            lat: pose.latitude,
            lon: pose.longitude,
            height_m: camera_h,
        };
        let frame = EnuFrame::new(pose.latitude, pose.longitude, camera_h);
        // ENU -> ECEF is the transpose of the frame's rows.
        let enu_to_ecef = [
            [frame.rot[0][0], frame.rot[1][0], frame.rot[2][0]],
            [frame.rot[0][1], frame.rot[1][1], frame.rot[2][1]],
            [frame.rot[0][2], frame.rot[1][2], frame.rot[2][2]],
        ];
        let cam_to_ecef = mat_mul(
            &enu_to_ecef,
            &camera_to_enu(pose.yaw_deg, pose.pitch_deg, pose.roll_deg),
        );
        let geometry = PhotoGeometry {
            file,
            camera,
            position,
            centre: frame.origin,
            up: up_ecef(pose.latitude, pose.longitude),
            cam_to_ecef,
            surface,
            dem_path,
            max_range_m: opts.max_range_m,
        };
        let ground_below = match surface {
            Surface::Level(h) => Some(h),
            Surface::Dem(dem) => dem.height_at(pose.latitude, pose.longitude)?,
        };
        if let Some(g) = ground_below {
            if g >= camera_h {
                return Err(GeorefError::CameraBelowGround {
                    file: geometry.file,
                    camera_height_m: camera_h,
                    ground_height_m: g,
                });
            }
        }
        Ok(geometry)
    }

    /// The camera's position: WGS 84 latitude/longitude and the height used for it.
    pub fn camera_position(&self) -> GroundPoint {
        self.position
    }

    /// The photo's pinhole camera.
    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    /// Where the ray through pixel `px` (`[x, y]`, continuous, (0, 0) at the photo's
    /// top-left corner) meets the ground.
    pub fn pixel_to_ground(&self, px: [f64; 2]) -> Result<GroundPoint, GeorefError> {
        self.hit(px, self.max_range_m).map(|h| h.point)
    }

    /// The pixel at which a ground point appears. Points outside the frame get pixel
    /// coordinates outside `[0, width] x [0, height]`; occlusion by terrain is not checked.
    pub fn ground_to_pixel(
        &self,
        lat: f64,
        lon: f64,
        height_m: f64,
    ) -> Result<[f64; 2], GeorefError> {
        let v = sub(geodetic_to_ecef(lat, lon, height_m), self.centre);
        let m = &self.cam_to_ecef;
        // ECEF -> camera is the transpose of camera -> ECEF.
        let pc = [
            m[0][0] * v[0] + m[1][0] * v[1] + m[2][0] * v[2],
            m[0][1] * v[0] + m[1][1] * v[1] + m[2][1] * v[2],
            m[0][2] * v[0] + m[1][2] * v[1] + m[2][2] * v[2],
        ];
        if pc[2] <= 1e-9 * norm(pc) {
            return Err(GeorefError::BehindCamera {
                file: self.file.clone(),
                lat,
                lon,
                height_m,
            });
        }
        Ok(camera_point_to_pixel(&self.camera, pc))
    }

    /// The photo's footprint on the ground: a closed, counter-clockwise `[lon, lat]` ring
    /// (RFC 7946 orientation) following the photo's edges, cut at `opts.max_range_m` where
    /// the edges see the horizon or farther.
    pub fn footprint(&self, opts: &FootprintOptions) -> Result<Vec<[f64; 2]>, GeorefError> {
        let range = opts.max_range_m.min(self.max_range_m);
        let (w, h) = (self.camera.width as f64, self.camera.height as f64);
        let reference = self.reference_pixel(range)?;
        let n = opts.points_per_edge.max(2) - 1;
        let corners = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
        let mut ring: Vec<[f64; 2]> = Vec::with_capacity(4 * n + 1);
        for k in 0..4 {
            let (a, b) = (corners[k], corners[(k + 1) % 4]);
            for i in 0..n {
                let s = i as f64 / n as f64;
                let px = [a[0] + (b[0] - a[0]) * s, a[1] + (b[1] - a[1]) * s];
                let hit = match self.hit(px, range) {
                    Ok(hit) => hit,
                    Err(e) if is_miss(&e) => self.cut(reference, px, range)?,
                    Err(e) => return Err(e),
                };
                let p = [hit.point.lon, hit.point.lat];
                if ring.last() != Some(&p) {
                    ring.push(p);
                }
            }
        }
        if ring.len() < 3 {
            return Err(GeorefError::NoFootprint {
                file: self.file.clone(),
                reason: "the visible ground collapses to a line".into(),
            });
        }
        // Shoelace on a locally scaled lon/lat plane; the photo's edges run clockwise on
        // the ground for an unmirrored camera, but the sign decides, not the assumption.
        let k = self.position.lat.to_radians().cos();
        let area2: f64 = (0..ring.len())
            .map(|i| {
                let (p, q) = (ring[i], ring[(i + 1) % ring.len()]);
                p[0] * k * q[1] - q[0] * k * p[1]
            })
            .sum();
        if area2 < 0.0 {
            ring.reverse();
        }
        ring.push(ring[0]);
        Ok(ring)
    }

    /// Ground sampling distance at pixel `px`, centimetres: the side of the square with the
    /// same ground area as the pixel (measured on the terrain surface between the points
    /// half a pixel either side).
    pub fn gsd_cm_at(&self, px: [f64; 2]) -> Result<f64, GeorefError> {
        let at = |dx: f64, dy: f64| self.hit([px[0] + dx, px[1] + dy], self.max_range_m);
        let a = sub(at(0.5, 0.0)?.ecef, at(-0.5, 0.0)?.ecef);
        let b = sub(at(0.0, 0.5)?.ecef, at(0.0, -0.5)?.ecef);
        Ok(norm(cross(a, b)).sqrt() * 100.0)
    }

    /// Ground sampling distance at the centre of the photo, centimetres.
    pub fn gsd_cm_center(&self) -> Result<f64, GeorefError> {
        self.gsd_cm_at([
            self.camera.width as f64 / 2.0,
            self.camera.height as f64 / 2.0,
        ])
    }

    /// A pixel that sees the ground within `range`, to cut missing edges towards: the
    /// centre, else the first of a few points down the centre column.
    fn reference_pixel(&self, range: f64) -> Result<[f64; 2], GeorefError> {
        let (w, h) = (self.camera.width as f64, self.camera.height as f64);
        let mut last = None;
        for frac in [0.5, 0.625, 0.75, 0.875, 1.0, 0.375, 0.25, 0.125, 0.0] {
            let px = [w / 2.0, h * frac];
            match self.hit(px, range) {
                Ok(_) => return Ok(px),
                Err(e) if is_miss(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(GeorefError::NoFootprint {
            file: self.file.clone(),
            reason: format!(
                "no ray down the centre of the photo meets the ground within {range} m ({})",
                last.map(|e| e.to_string()).unwrap_or_default()
            ),
        })
    }

    /// The farthest point from `inside` towards `outside` (pixels) that still meets the
    /// ground within range, by bisection.
    fn cut(&self, inside: [f64; 2], outside: [f64; 2], range: f64) -> Result<Hit, GeorefError> {
        let lerp = |s: f64| {
            [
                inside[0] + (outside[0] - inside[0]) * s,
                inside[1] + (outside[1] - inside[1]) * s,
            ]
        };
        let (mut lo, mut hi) = (0.0, 1.0);
        let mut best = self.hit(inside, range)?;
        for _ in 0..CUT_BISECT_STEPS {
            let mid = 0.5 * (lo + hi);
            match self.hit(lerp(mid), range) {
                Ok(hit) => {
                    lo = mid;
                    best = hit;
                }
                Err(e) if is_miss(&e) => hi = mid,
                Err(e) => return Err(e),
            }
        }
        Ok(best)
    }

    /// Unit direction of the ray through `px`, ECEF.
    fn ray(&self, px: [f64; 2]) -> Result<[f64; 3], GeorefError> {
        let rc =
            pixel_to_camera_ray(&self.camera, px).ok_or_else(|| GeorefError::Undistortion {
                file: self.file.clone(),
                x: px[0],
                y: px[1],
            })?;
        let d = mat_vec(&self.cam_to_ecef, rc);
        Ok(scale(d, 1.0 / norm(d)))
    }

    fn hit(&self, px: [f64; 2], range: f64) -> Result<Hit, GeorefError> {
        let d = self.ray(px)?;
        match self.surface {
            Surface::Level(height) => self.hit_level(px, d, height, range),
            Surface::Dem(dem) => self.hit_dem(px, d, dem, range),
        }
    }

    fn above_horizon(&self, px: [f64; 2]) -> GeorefError {
        GeorefError::AboveHorizon {
            file: self.file.clone(),
            x: px[0],
            y: px[1],
        }
    }

    fn beyond_range(&self, px: [f64; 2], range: f64) -> GeorefError {
        GeorefError::BeyondRange {
            file: self.file.clone(),
            x: px[0],
            y: px[1],
            max_range_m: range,
        }
    }

    fn outside_dem(&self, px: [f64; 2]) -> GeorefError {
        GeorefError::OutsideDem {
            file: self.file.clone(),
            x: px[0],
            y: px[1],
            dem: self.dem_path.clone().unwrap_or_default(),
        }
    }

    fn point_at(&self, d: [f64; 3], t: f64) -> ([f64; 3], [f64; 3]) {
        let p = add(self.centre, scale(d, t));
        (p, ecef_to_geodetic(p))
    }

    /// Ray against the surface of constant geodetic height: Newton's method on the height
    /// along the ray, started from the tangent-plane solution (the ellipsoid's curvature
    /// moves the answer by millimetres at drone ranges, but the round trip must be exact).
    fn hit_level(
        &self,
        px: [f64; 2],
        d: [f64; 3],
        height: f64,
        range: f64,
    ) -> Result<Hit, GeorefError> {
        let down = -dot(d, self.up);
        if down <= 1e-12 {
            return Err(self.above_horizon(px));
        }
        let mut t = (self.position.height_m - height) / down;
        for _ in 0..40 {
            if !(t.is_finite() && t >= 0.0) || t > 4.0 * range {
                break;
            }
            let (p, g) = self.point_at(d, t);
            let f = g[2] - height;
            if f.abs() < 1e-7 {
                if t > range {
                    return Err(self.beyond_range(px, range));
                }
                return Ok(Hit {
                    ecef: p,
                    point: GroundPoint {
                        lat: g[0],
                        lon: g[1],
                        height_m: g[2],
                    },
                });
            }
            let slope = dot(d, up_ecef(g[0], g[1]));
            if slope >= 0.0 {
                // The ray is rising here: it grazed past the surface without meeting it.
                return Err(self.above_horizon(px));
            }
            t -= f / slope;
        }
        // Newton only wanders off for rays so close to the horizon that they meet the
        // ground, if at all, far beyond any sensible range.
        Err(self.beyond_range(px, range))
    }

    /// Ray against the DEM: march from where the ray drops below the DEM's highest point
    /// in steps of half a cell, then bisect the first step that crosses the surface.
    fn hit_dem(
        &self,
        px: [f64; 2],
        d: [f64; 3],
        dem: &Dem,
        range: f64,
    ) -> Result<Hit, GeorefError> {
        let [zmin, zmax] = dem.height_range_m();
        let hc = self.position.height_m;
        let down = -dot(d, self.up);
        let t_start = if hc > zmax {
            if down <= 1e-12 {
                return Err(self.above_horizon(px));
            }
            // On the tangent plane the ray is at zmax here; the Earth's curvature only
            // lifts it higher, so the surface cannot have been met before.
            (hc - zmax) / down
        } else {
            0.0
        };
        if t_start > range {
            return Err(self.beyond_range(px, range));
        }
        let step = (dem.cell_size_m() * DEM_STEP_CELLS).max(1e-3);
        // Start one step early so the first sample is clearly above a surface that sits
        // at the model's highest value (a flat DEM) despite rounding.
        let t_start = (t_start - step).max(0.0);
        let steps = ((range - t_start) / step).ceil() as usize;
        // (t, clearance) of the last sample above the surface, and whether it was the
        // previous sample.
        let mut above: Option<(f64, f64)> = None;
        let mut previous_above = false;
        let mut last_outside = false;
        let mut lonlat = Vec::with_capacity(DEM_BATCH);
        let mut heights = Vec::with_capacity(DEM_BATCH);
        let mut ts = Vec::with_capacity(DEM_BATCH);
        let mut hs = Vec::with_capacity(DEM_BATCH);
        let mut i = 0;
        // Most rays meet the ground within a few steps: start with small batches.
        let mut batch = 4;
        while i <= steps {
            lonlat.clear();
            ts.clear();
            hs.clear();
            for k in i..(i + batch).min(steps + 1) {
                let t = (t_start + k as f64 * step).min(range);
                let (_, g) = self.point_at(d, t);
                ts.push(t);
                hs.push(g[2]);
                lonlat.push([g[1], g[0]]);
            }
            i += ts.len();
            batch = (batch * 2).min(DEM_BATCH);
            dem.heights_at(&mut lonlat, &mut heights)?;
            for k in 0..ts.len() {
                match heights[k] {
                    Some(z) => {
                        last_outside = false;
                        let f = hs[k] - z;
                        if f > 0.0 {
                            above = Some((ts[k], f));
                            previous_above = true;
                        } else {
                            return match above {
                                Some(lo) => self.refine_dem(px, d, dem, lo, (ts[k], f)),
                                // Entered the DEM's area already below its surface: the
                                // ray came in through the model's edge, not its top.
                                None => Err(self.outside_dem(px)),
                            };
                        }
                    }
                    None => {
                        if let (true, Some(lo)) = (previous_above, above) {
                            // Left the model within this step: the ground may have been
                            // met before the edge.
                            if let Some(hit) = self.crossing_before_edge(px, d, dem, lo, ts[k])? {
                                return Ok(hit);
                            }
                        }
                        previous_above = false;
                        last_outside = true;
                        if hs[k] < zmin {
                            // Below every height in the model and off the model: the ray
                            // can no longer meet the modelled surface.
                            return Err(self.outside_dem(px));
                        }
                    }
                }
            }
        }
        if last_outside {
            Err(self.outside_dem(px))
        } else {
            Err(self.beyond_range(px, range))
        }
    }

    /// Height of the ray above the DEM at `t`, `None` off the model.
    fn clearance(&self, d: [f64; 3], dem: &Dem, t: f64) -> Result<Option<f64>, GeorefError> {
        let (_, g) = self.point_at(d, t);
        let mut buf = Vec::with_capacity(1);
        dem.heights_at(&mut [[g[1], g[0]]], &mut buf)?;
        Ok(buf[0].map(|z| g[2] - z))
    }

    /// The ray is above the model at `inside` and off it at `outside`: find the model's
    /// edge between them, and the ground crossing if the ray is below the surface there.
    fn crossing_before_edge(
        &self,
        px: [f64; 2],
        d: [f64; 3],
        dem: &Dem,
        inside: (f64, f64),
        outside: f64,
    ) -> Result<Option<Hit>, GeorefError> {
        let (mut a, mut b) = (inside.0, outside);
        while b - a > DEM_BISECT_TOL_M {
            let mid = 0.5 * (a + b);
            if self.clearance(d, dem, mid)?.is_some() {
                a = mid;
            } else {
                b = mid;
            }
        }
        match self.clearance(d, dem, a)? {
            Some(f) if f <= 0.0 => self.refine_dem(px, d, dem, inside, (a, f)).map(Some),
            _ => Ok(None),
        }
    }

    /// Refines a bracket `(lo, f_lo > 0)`, `(hi, f_hi <= 0)` of the ray's clearance above
    /// the DEM with the Illinois variant of regula falsi: bilinear cells are smooth, so it
    /// converges in a handful of GDAL lookups where bisection takes twenty.
    fn refine_dem(
        &self,
        px: [f64; 2],
        d: [f64; 3],
        dem: &Dem,
        (mut lo, mut f_lo): (f64, f64),
        (mut hi, mut f_hi): (f64, f64),
    ) -> Result<Hit, GeorefError> {
        let mut side = 0i8;
        let mut best = (hi, f_hi.abs());
        for _ in 0..DEM_REFINE_MAX_ITER {
            if hi - lo <= DEM_BISECT_TOL_M || best.1 <= DEM_CLEARANCE_TOL_M {
                break;
            }
            let mut t = (lo * f_hi - hi * f_lo) / (f_hi - f_lo);
            if !(t > lo && t < hi) {
                t = 0.5 * (lo + hi);
            }
            match self.clearance(d, dem, t)? {
                Some(f) if f <= 0.0 => {
                    hi = t;
                    f_hi = f;
                    if side == -1 {
                        f_lo *= 0.5;
                    }
                    side = -1;
                    if -f < best.1 {
                        best = (t, -f);
                    }
                }
                Some(f) => {
                    lo = t;
                    f_lo = f;
                    if side == 1 {
                        f_hi *= 0.5;
                    }
                    side = 1;
                    if f < best.1 {
                        best = (t, f);
                    }
                }
                // No data inside the bracket counts as open air; bisect past it.
                None => {
                    lo = 0.5 * (lo + hi);
                    side = 0;
                }
            }
        }
        let t = if best.1 <= DEM_CLEARANCE_TOL_M {
            best.0
        } else {
            0.5 * (lo + hi)
        };
        if !t.is_finite() {
            return Err(self.outside_dem(px));
        }
        let (p, g) = self.point_at(d, t);
        Ok(Hit {
            ecef: p,
            point: GroundPoint {
                lat: g[0],
                lon: g[1],
                height_m: g[2],
            },
        })
    }
}
