//! WGS 84 geodesy in plain Rust: geodetic <-> ECEF and the local East-North-Up frame.
//!
//! No GDAL here: these conversions run once or more per ray, so they must be cheap, and
//! the closed forms are exact to well below a millimetre.

/// WGS 84 semi-major axis, metres.
pub const WGS84_A: f64 = 6_378_137.0;
/// WGS 84 flattening.
pub const WGS84_F: f64 = 1.0 / 298.257_223_563;

const B: f64 = WGS84_A * (1.0 - WGS84_F);
const E2: f64 = WGS84_F * (2.0 - WGS84_F);
const EP2: f64 = E2 / (1.0 - E2);

/// Geodetic latitude and longitude (degrees) and height above the ellipsoid (metres) to
/// Earth-centred Earth-fixed metres.
pub fn geodetic_to_ecef(lat_deg: f64, lon_deg: f64, h: f64) -> [f64; 3] {
    let (sl, cl) = lat_deg.to_radians().sin_cos();
    let (so, co) = lon_deg.to_radians().sin_cos();
    let n = WGS84_A / (1.0 - E2 * sl * sl).sqrt();
    [
        (n + h) * cl * co,
        (n + h) * cl * so,
        (n * (1.0 - E2) + h) * sl,
    ]
}

/// ECEF metres to geodetic `[lat_deg, lon_deg, h]` with Heikkinen's closed form, which is
/// exact (no iteration) and well conditioned everywhere except at the Earth's centre.
pub fn ecef_to_geodetic(p: [f64; 3]) -> [f64; 3] {
    let [x, y, z] = p;
    let a = WGS84_A;
    let r = (x * x + y * y).sqrt();
    let f = 54.0 * B * B * z * z;
    let g = r * r + (1.0 - E2) * z * z - E2 * (a * a - B * B);
    let c = E2 * E2 * f * r * r / (g * g * g);
    let s = (1.0 + c + (c * c + 2.0 * c).sqrt()).cbrt();
    let k = s + 1.0 + 1.0 / s;
    let pp = f / (3.0 * k * k * g * g);
    let q = (1.0 + 2.0 * E2 * E2 * pp).sqrt();
    let r0 = -(pp * E2 * r) / (1.0 + q)
        + (0.5 * a * a * (1.0 + 1.0 / q)
            - pp * (1.0 - E2) * z * z / (q * (1.0 + q))
            - 0.5 * pp * r * r)
            .max(0.0)
            .sqrt();
    let u = ((r - E2 * r0).powi(2) + z * z).sqrt();
    let v = ((r - E2 * r0).powi(2) + (1.0 - E2) * z * z).sqrt();
    let z0 = B * B * z / (a * v);
    let h = u * (1.0 - B * B / (a * v));
    let lat = (z + EP2 * z0).atan2(r);
    let lon = y.atan2(x);
    [lat.to_degrees(), lon.to_degrees(), h]
}

/// Unit vector of the local "up" (ellipsoid normal) at a geodetic position, in ECEF.
pub fn up_ecef(lat_deg: f64, lon_deg: f64) -> [f64; 3] {
    let (sl, cl) = lat_deg.to_radians().sin_cos();
    let (so, co) = lon_deg.to_radians().sin_cos();
    [cl * co, cl * so, sl]
}

/// A local East-North-Up tangent frame at an origin on or above the ellipsoid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnuFrame {
    /// Origin in ECEF metres.
    pub origin: [f64; 3],
    /// Rows are the East, North and Up unit vectors in ECEF: `enu = rot * (ecef - origin)`.
    pub rot: [[f64; 3]; 3],
}

impl EnuFrame {
    /// The frame whose origin is the geodetic position and whose axes point east, north and
    /// along the ellipsoid normal there.
    pub fn new(lat_deg: f64, lon_deg: f64, h: f64) -> Self {
        let (sl, cl) = lat_deg.to_radians().sin_cos();
        let (so, co) = lon_deg.to_radians().sin_cos();
        Self {
            origin: geodetic_to_ecef(lat_deg, lon_deg, h),
            rot: [
                [-so, co, 0.0],
                [-sl * co, -sl * so, cl],
                [cl * co, cl * so, sl],
            ],
        }
    }

    /// ECEF point to ENU metres.
    pub fn from_ecef(&self, p: [f64; 3]) -> [f64; 3] {
        mat_vec(&self.rot, sub(p, self.origin))
    }

    /// ENU metres to an ECEF point.
    pub fn to_ecef(&self, enu: [f64; 3]) -> [f64; 3] {
        add(self.origin, mat_t_vec(&self.rot, enu))
    }

    /// ENU direction to an ECEF direction.
    pub fn dir_to_ecef(&self, d: [f64; 3]) -> [f64; 3] {
        mat_t_vec(&self.rot, d)
    }
}

pub(crate) fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

pub(crate) fn mat_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [dot(m[0], v), dot(m[1], v), dot(m[2], v)]
}

pub(crate) fn mat_t_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * v[0] + m[1][0] * v[1] + m[2][0] * v[2],
        m[0][1] * v[0] + m[1][1] * v[1] + m[2][1] * v[2],
        m[0][2] * v[0] + m[1][2] * v[1] + m[2][2] * v[2],
    ]
}

pub(crate) fn mat_mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geodetic_ecef_round_trip_is_sub_micrometre() {
        for &(lat, lon, h) in &[
            (46.8426, -91.9945, 198.31),
            (59.3293, 18.0686, 25.0),
            (-33.9, 151.2, -30.0),
            (89.9, 10.0, 1000.0),
            (0.0, 0.0, 0.0),
            (60.17, 24.94, 8000.0),
        ] {
            let p = geodetic_to_ecef(lat, lon, h);
            let [lat2, lon2, h2] = ecef_to_geodetic(p);
            let back = geodetic_to_ecef(lat2, lon2, h2);
            assert!(
                norm(sub(p, back)) < 1e-6,
                "{lat} {lon} {h}: {:?}",
                sub(p, back)
            );
            assert!((h - h2).abs() < 1e-6);
            assert!((lat - lat2).abs() < 1e-11 && (lon - lon2).abs() < 1e-11);
        }
    }

    #[test]
    fn ecef_of_known_points() {
        // Equator / prime meridian lies on the x axis at the semi-major axis.
        let p = geodetic_to_ecef(0.0, 0.0, 0.0);
        assert!((p[0] - WGS84_A).abs() < 1e-9 && p[1].abs() < 1e-9 && p[2].abs() < 1e-9);
        // The pole lies on the z axis at the semi-minor axis (6 356 752.314 245 m).
        let p = geodetic_to_ecef(90.0, 0.0, 0.0);
        assert!((p[2] - 6_356_752.314_245).abs() < 1e-3);
    }

    #[test]
    fn enu_axes_point_where_they_should() {
        let f = EnuFrame::new(46.84, -91.99, 200.0);
        // One metre north raises the latitude, one metre east raises the longitude.
        let north = ecef_to_geodetic(f.to_ecef([0.0, 100.0, 0.0]));
        let east = ecef_to_geodetic(f.to_ecef([100.0, 0.0, 0.0]));
        let up = ecef_to_geodetic(f.to_ecef([0.0, 0.0, 10.0]));
        assert!(north[0] > 46.84 && (north[1] + 91.99).abs() < 1e-9);
        assert!(east[1] > -91.99 && (east[0] - 46.84).abs() < 1e-5);
        assert!((up[2] - 210.0).abs() < 1e-9);
        let back = f.from_ecef(f.to_ecef([1.0, 2.0, 3.0]));
        assert!(norm(sub(back, [1.0, 2.0, 3.0])) < 1e-9);
    }
}
