//! The camera model: pinhole intrinsics, Brown-Conrady distortion and the gimbal rotation.
//!
//! Camera frame (OpenCV): x to the right of the photo, y down the photo, z along the
//! optical axis out of the lens. Pixel coordinates are continuous with (0, 0) at the
//! top-left corner of the photo, so pixel column `i` has its centre at `i + 0.5`.

use crate::geodesy::mat_mul;
use besikta_core::{BrownDistortion, Camera};

/// Newton iterations allowed when inverting the distortion; it converges in 3-6.
const UNDISTORT_MAX_ITER: usize = 30;
/// Convergence threshold in normalised image units (1e-12 is ~2e-9 px at f = 2000 px).
const UNDISTORT_TOL: f64 = 1e-12;

/// Applies the OpenCV Brown-Conrady model to normalised undistorted coordinates.
pub fn distort(d: &BrownDistortion, x: f64, y: f64) -> [f64; 2] {
    let r2 = x * x + y * y;
    let radial = 1.0 + r2 * (d.k1 + r2 * (d.k2 + r2 * d.k3));
    [
        x * radial + 2.0 * d.p1 * x * y + d.p2 * (r2 + 2.0 * x * x),
        y * radial + d.p1 * (r2 + 2.0 * y * y) + 2.0 * d.p2 * x * y,
    ]
}

/// Inverts [`distort`] by Newton's method with the analytic Jacobian; `None` when the
/// model folds over (no unique inverse) at that point.
pub fn undistort(d: &BrownDistortion, xd: f64, yd: f64) -> Option<[f64; 2]> {
    let (mut x, mut y) = (xd, yd);
    for _ in 0..UNDISTORT_MAX_ITER {
        let [fx, fy] = distort(d, x, y);
        let (ex, ey) = (fx - xd, fy - yd);
        if ex.abs() < UNDISTORT_TOL && ey.abs() < UNDISTORT_TOL {
            return Some([x, y]);
        }
        let r2 = x * x + y * y;
        let radial = 1.0 + r2 * (d.k1 + r2 * (d.k2 + r2 * d.k3));
        let dradial = d.k1 + r2 * (2.0 * d.k2 + 3.0 * d.k3 * r2);
        let j11 = radial + 2.0 * x * x * dradial + 2.0 * d.p1 * y + 6.0 * d.p2 * x;
        let j12 = 2.0 * x * y * dradial + 2.0 * d.p1 * x + 2.0 * d.p2 * y;
        let j21 = j12;
        let j22 = radial + 2.0 * y * y * dradial + 6.0 * d.p1 * y + 2.0 * d.p2 * x;
        let det = j11 * j22 - j12 * j21;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        x -= (j22 * ex - j12 * ey) / det;
        y -= (-j21 * ex + j11 * ey) / det;
    }
    let [fx, fy] = distort(d, x, y);
    ((fx - xd).abs() < 1e-10 && (fy - yd).abs() < 1e-10).then_some([x, y])
}

/// Pixel to a direction in the camera frame (not normalised: z = 1).
pub fn pixel_to_camera_ray(cam: &Camera, px: [f64; 2]) -> Option<[f64; 3]> {
    let xd = (px[0] - cam.cx) / cam.focal_px;
    let yd = (px[1] - cam.cy) / cam.focal_px;
    let [x, y] = match &cam.distortion {
        Some(d) => undistort(d, xd, yd)?,
        None => [xd, yd],
    };
    Some([x, y, 1.0])
}

/// A point in the camera frame (z > 0) to its pixel.
pub fn camera_point_to_pixel(cam: &Camera, p: [f64; 3]) -> [f64; 2] {
    let (x, y) = (p[0] / p[2], p[1] / p[2]);
    let [xd, yd] = match &cam.distortion {
        Some(d) => distort(d, x, y),
        None => [x, y],
    };
    [cam.cx + cam.focal_px * xd, cam.cy + cam.focal_px * yd]
}

/// Rotation taking camera-frame vectors to local East-North-Up vectors, from DJI gimbal
/// angles in degrees. See the crate docs for the convention.
pub fn camera_to_enu(yaw_deg: f64, pitch_deg: f64, roll_deg: f64) -> [[f64; 3]; 3] {
    let (sy, cy) = yaw_deg.to_radians().sin_cos();
    let (sp, cp) = pitch_deg.to_radians().sin_cos();
    let (sr, cr) = roll_deg.to_radians().sin_cos();
    // Aerospace body -> NED, Z-Y-X (yaw about down, pitch about the new right axis, roll
    // about the new forward axis).
    let rz = [[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]];
    let ry = [[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]];
    let rx = [[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]];
    // Camera (right, down, forward) -> body (forward, right, down).
    let cam_to_body = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    // NED -> ENU.
    let ned_to_enu = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]];
    let body_to_ned = mat_mul(&rz, &mat_mul(&ry, &rx));
    mat_mul(&ned_to_enu, &mat_mul(&body_to_ned, &cam_to_body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geodesy::mat_vec;

    fn close(a: [f64; 3], b: [f64; 3]) -> bool {
        (0..3).all(|i| (a[i] - b[i]).abs() < 1e-12)
    }

    #[test]
    fn nadir_yaw_zero_has_north_up_and_east_right() {
        let r = camera_to_enu(0.0, -90.0, 0.0);
        assert!(
            close(mat_vec(&r, [0.0, 0.0, 1.0]), [0.0, 0.0, -1.0]),
            "looks down"
        );
        assert!(
            close(mat_vec(&r, [0.0, -1.0, 0.0]), [0.0, 1.0, 0.0]),
            "top is north"
        );
        assert!(
            close(mat_vec(&r, [1.0, 0.0, 0.0]), [1.0, 0.0, 0.0]),
            "right is east"
        );
    }

    #[test]
    fn yaw_90_turns_the_top_of_the_photo_east() {
        let r = camera_to_enu(90.0, -90.0, 0.0);
        assert!(close(mat_vec(&r, [0.0, -1.0, 0.0]), [1.0, 0.0, 0.0]));
        assert!(
            close(mat_vec(&r, [1.0, 0.0, 0.0]), [0.0, -1.0, 0.0]),
            "right is south"
        );
    }

    #[test]
    fn horizon_camera_looks_along_yaw_and_roll_dips_the_right_side() {
        let r = camera_to_enu(0.0, 0.0, 0.0);
        assert!(
            close(mat_vec(&r, [0.0, 0.0, 1.0]), [0.0, 1.0, 0.0]),
            "looks north"
        );
        let r = camera_to_enu(0.0, 0.0, 30.0);
        let right = mat_vec(&r, [1.0, 0.0, 0.0]);
        assert!(
            right[2] < -0.49 && right[2] > -0.51,
            "right side dips: {right:?}"
        );
        let r = camera_to_enu(0.0, -45.0, 0.0);
        let fwd = mat_vec(&r, [0.0, 0.0, 1.0]);
        assert!(
            (fwd[1] - fwd[2].abs()).abs() < 1e-12 && fwd[2] < 0.0,
            "45 deg down"
        );
    }

    #[test]
    fn undistort_inverts_distort() {
        let d = BrownDistortion {
            k1: -0.13,
            k2: 0.11,
            p1: 0.0012,
            p2: -0.0007,
            k3: -0.03,
        };
        for i in -10..=10 {
            for j in -6..=6 {
                let (x, y) = (i as f64 * 0.09, j as f64 * 0.09);
                let [xd, yd] = distort(&d, x, y);
                let [xu, yu] = undistort(&d, xd, yd).expect("invertible");
                assert!((xu - x).abs() < 1e-11 && (yu - y).abs() < 1e-11);
            }
        }
    }
}
