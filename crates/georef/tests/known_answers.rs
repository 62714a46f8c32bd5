//! Known-answer tests of the frames and angle conventions written in the crate docs.

mod common;

use besikta_georef::{FootprintOptions, GeometryOptions, GeorefError, Ground, PhotoGeometry};
use common::*;

const H: f64 = 40.0;

/// Ground point of a pixel in the camera's ENU frame (origin at the camera).
fn ground_enu(g: &PhotoGeometry, px: [f64; 2]) -> [f64; 3] {
    enu(&g.camera_position(), &g.pixel_to_ground(px).unwrap())
}

fn assert_close(actual: f64, expected: f64, tol: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: {actual} vs expected {expected} (tolerance {tol})"
    );
}

#[test]
fn nadir_yaw_0_top_is_north_and_footprint_is_2h_tan_half_fov_wide() {
    let ground = Ground::TakeOffPlane;
    let g = PhotoGeometry::new(&capture(Shot::default()), &ground).unwrap();
    let (w, h) = (WIDTH as f64, HEIGHT as f64);
    let half_fov_x = (w / 2.0 / FOCAL_PX).atan();
    let half_fov_y = (h / 2.0 / FOCAL_PX).atan();
    let top = ground_enu(&g, [w / 2.0, 0.0]);
    let right = ground_enu(&g, [w, h / 2.0]);
    let centre = ground_enu(&g, [w / 2.0, h / 2.0]);
    // The Earth's curvature lowers the ground by d^2 / 2R, 0.1 mm at 35 m: 1 mm tolerance.
    assert_close(centre[0], 0.0, 1e-9, "centre east");
    assert_close(centre[1], 0.0, 1e-9, "centre north");
    assert_close(centre[2], -H, 1e-9, "centre is 40 m below");
    assert_close(top[1], H * half_fov_y.tan(), 1e-3, "top edge north");
    assert_close(top[0], 0.0, 1e-6, "top edge east");
    assert_close(right[0], H * half_fov_x.tan(), 1e-3, "right edge east");
    assert_close(right[1], 0.0, 1e-6, "right edge north");
    let tl = ground_enu(&g, [0.0, 0.0]);
    let tr = ground_enu(&g, [w, 0.0]);
    let bl = ground_enu(&g, [0.0, h]);
    assert_close(
        dist(tl, tr),
        2.0 * H * half_fov_x.tan(),
        1e-3,
        "footprint width",
    );
    assert_close(
        dist(tl, bl),
        2.0 * H * half_fov_y.tan(),
        1e-3,
        "footprint height",
    );
    assert!(
        tl[0] < 0.0 && tl[1] > 0.0,
        "top-left corner is north-west: {tl:?}"
    );
}

#[test]
fn yaw_90_turns_the_top_of_the_photo_east() {
    let ground = Ground::TakeOffPlane;
    let shot = Shot {
        yaw: 90.0,
        ..Shot::default()
    };
    let g = PhotoGeometry::new(&capture(shot), &ground).unwrap();
    let (w, h) = (WIDTH as f64, HEIGHT as f64);
    let top = ground_enu(&g, [w / 2.0, 0.0]);
    let right = ground_enu(&g, [w, h / 2.0]);
    assert_close(top[0], H * h / 2.0 / FOCAL_PX, 1e-3, "top edge east");
    assert_close(top[1], 0.0, 1e-6, "top edge north");
    assert_close(right[1], -H * w / 2.0 / FOCAL_PX, 1e-3, "right edge south");
}

#[test]
fn oblique_camera_sees_a_trapezoid_on_the_far_side() {
    let ground = Ground::TakeOffPlane;
    for (pitch, yaw) in [(-45.0, 0.0), (-60.0, 0.0), (-45.0, 120.0)] {
        let shot = Shot {
            pitch,
            yaw,
            ..Shot::default()
        };
        let g = PhotoGeometry::new(&capture(shot), &ground).unwrap();
        let (w, h) = (WIDTH as f64, HEIGHT as f64);
        let off_nadir = (90.0 + pitch).to_radians();
        let heading = yaw.to_radians();
        // The optical axis meets the ground h tan(off-nadir) away, along the yaw.
        let c = ground_enu(&g, [w / 2.0, h / 2.0]);
        let reach = H * off_nadir.tan();
        // The Earth's curvature drops the ground by reach^2 / 2R: the ray meets it later.
        let curvature = reach * reach / 6.3e6;
        assert_close(c[0], reach * heading.sin(), curvature, "centre east");
        assert_close(c[1], reach * heading.cos(), curvature, "centre north");
        // Independent trigonometry for the corners: a pixel's ray leaves the optical axis
        // by (x, y) = ((u - cx) / f, (v - cy) / f); in the vertical plane of the yaw the
        // ray is depressed by (off-nadir complement) minus atan(y)...
        let corner = |u: f64, v: f64| {
            let (x, y) = ((u - w / 2.0) / FOCAL_PX, (v - h / 2.0) / FOCAL_PX);
            // Camera axes in (along-yaw, across-right, up): forward, right, image-down.
            let (st, ct) = off_nadir.sin_cos();
            let fwd = [st, 0.0, -ct];
            let down_img = [-ct, 0.0, -st];
            let ray = [fwd[0] + y * down_img[0], x, fwd[2] + y * down_img[2]];
            let t = H / -ray[2];
            [ray[0] * t, ray[1] * t]
        };
        let expected_far = corner(w, 0.0)[1] - corner(0.0, 0.0)[1];
        let expected_near = corner(w, h)[1] - corner(0.0, h)[1];
        let far = dist(ground_enu(&g, [0.0, 0.0]), ground_enu(&g, [w, 0.0]));
        let near = dist(ground_enu(&g, [0.0, h]), ground_enu(&g, [w, h]));
        let tol = 1e-5 * expected_far.powi(2) + 1e-3;
        assert_close(far, expected_far, tol, "far edge width");
        assert_close(near, expected_near, 1e-3, "near edge width");
        assert!(
            far > 1.5 * near,
            "a trapezoid widening away: {far} vs {near}"
        );
        // The whole footprint lies ahead of the camera.
        let fp = g.footprint(&FootprintOptions::default()).unwrap();
        let origin = g.camera_position();
        for p in &fp {
            let e = enu(
                &origin,
                &besikta_georef::GroundPoint {
                    lat: p[1],
                    lon: p[0],
                    height_m: origin.height_m - H,
                },
            );
            let ahead = e[0] * heading.sin() + e[1] * heading.cos();
            assert!(ahead > 0.0, "footprint point behind the camera: {e:?}");
        }
    }
}

#[test]
fn roll_dips_the_right_side_of_an_oblique_photo() {
    // Level camera looking north, rolled 10 degrees: the right edge looks down more, so
    // the centre of the right edge meets the ground; the left edge sees sky.
    let ground = Ground::TakeOffPlane;
    let shot = Shot {
        pitch: -10.0,
        roll: 10.0,
        ..Shot::default()
    };
    let g = PhotoGeometry::new(&capture(shot), &ground).unwrap();
    let (w, h) = (WIDTH as f64, HEIGHT as f64);
    let r = ground_enu(&g, [w, h / 2.0]);
    assert!(
        r[0] > 0.0 && r[1] > 0.0,
        "right edge meets the ground north-east: {r:?}"
    );
    let l = g.pixel_to_ground([0.0, h / 2.0]);
    assert!(
        matches!(
            l,
            Err(GeorefError::AboveHorizon { .. }) | Err(GeorefError::BeyondRange { .. })
        ),
        "left edge sees the horizon: {l:?}"
    );
}

#[test]
fn rays_that_miss_are_errors_with_reasons() {
    let ground = Ground::TakeOffPlane;
    let level = capture(Shot {
        pitch: 0.0,
        ..Shot::default()
    });
    let g = PhotoGeometry::new(&level, &ground).unwrap();
    let err = g.pixel_to_ground([2000.0, 0.0]).unwrap_err();
    assert!(matches!(err, GeorefError::AboveHorizon { .. }), "{err}");
    assert!(err.to_string().contains("above the horizon"), "{err}");

    let shallow = capture(Shot {
        pitch: -5.0,
        ..Shot::default()
    });
    let opts = GeometryOptions {
        max_range_m: 100.0,
        ..GeometryOptions::default()
    };
    let g = PhotoGeometry::with_options(&shallow, &ground, &opts).unwrap();
    let err = g.pixel_to_ground([2000.0, 1125.0]).unwrap_err();
    assert!(matches!(err, GeorefError::BeyondRange { .. }), "{err}");
    assert!(err.to_string().contains("100 m"), "{err}");

    let nadir = PhotoGeometry::new(&capture(Shot::default()), &ground).unwrap();
    let c = nadir.camera_position();
    let err = nadir
        .ground_to_pixel(c.lat, c.lon, c.height_m + 5.0)
        .unwrap_err();
    assert!(matches!(err, GeorefError::BehindCamera { .. }), "{err}");
}

#[test]
fn missing_metadata_is_reported_not_guessed() {
    let ground = Ground::TakeOffPlane;
    let mut c = capture(Shot::default());
    c.focal_length_px = None;
    let err = PhotoGeometry::new(&c, &ground).unwrap_err();
    assert!(err.to_string().contains("focal length"), "{err}");
    let mut c = capture(Shot::default());
    c.latitude = None;
    let err = PhotoGeometry::new(&c, &ground).unwrap_err();
    assert!(err.to_string().contains("GPS"), "{err}");
    let mut c = capture(Shot::default());
    c.gimbal_pitch_deg = Some(f64::NAN);
    let err = PhotoGeometry::new(&c, &ground).unwrap_err();
    assert!(err.to_string().contains("not valid numbers"), "{err}");
    let mut c = capture(Shot::default());
    c.relative_altitude_m = None;
    let err = PhotoGeometry::new(&c, &ground).unwrap_err();
    assert!(err.to_string().contains("relative altitude"), "{err}");
    // A fixed ground height above the camera.
    let high = Ground::Plane { height_m: 500.0 };
    let err = PhotoGeometry::new(&capture(Shot::default()), &high).unwrap_err();
    assert!(
        matches!(err, GeorefError::CameraBelowGround { .. }),
        "{err}"
    );
}

#[test]
fn explicit_plane_and_take_off_plane_agree() {
    let shot = Shot::default();
    let a = Ground::TakeOffPlane;
    let b = Ground::Plane {
        height_m: shot.abs_alt - shot.rel_alt,
    };
    let ga = PhotoGeometry::new(&capture(shot), &a).unwrap();
    let gb = PhotoGeometry::new(&capture(shot), &b).unwrap();
    for px in frame_grid(5, 5) {
        let (pa, pb) = (
            ga.pixel_to_ground(px).unwrap(),
            gb.pixel_to_ground(px).unwrap(),
        );
        assert_eq!(pa, pb);
        assert_close(
            pa.height_m,
            shot.abs_alt - shot.rel_alt,
            1e-6,
            "ground height",
        );
    }
}

#[test]
fn gsd_is_height_over_focal_length_at_nadir() {
    let ground = Ground::TakeOffPlane;
    let g = PhotoGeometry::new(&capture(Shot::default()), &ground).unwrap();
    assert_close(
        g.gsd_cm_center().unwrap(),
        H / FOCAL_PX * 100.0,
        1e-6,
        "GSD",
    );
    // Off-axis pixels are farther away and seen slanted: coarser.
    assert!(g.gsd_cm_at([0.0, 0.0]).unwrap() > g.gsd_cm_center().unwrap());
    // An oblique photo's GSD at the centre: range h / cos(a), and the pixel is stretched
    // along the view by 1 / cos(a): sqrt(area) = h / f / cos(a)^1.5.
    let a: f64 = 45f64.to_radians();
    let shot = Shot {
        pitch: -45.0,
        ..Shot::default()
    };
    let g = PhotoGeometry::new(&capture(shot), &ground).unwrap();
    assert_close(
        g.gsd_cm_center().unwrap(),
        H / FOCAL_PX / a.cos().powf(1.5) * 100.0,
        1e-4,
        "oblique GSD",
    );
}

#[test]
fn footprint_ring_is_closed_counter_clockwise_and_densified() {
    let ground = Ground::TakeOffPlane;
    for yaw in [0.0, 45.0, 200.0] {
        let shot = Shot {
            yaw,
            ..Shot::default()
        };
        let g = PhotoGeometry::new(&capture(shot), &ground).unwrap();
        let opts = FootprintOptions {
            points_per_edge: 9,
            ..FootprintOptions::default()
        };
        let ring = g.footprint(&opts).unwrap();
        assert_eq!(ring.len(), 4 * 8 + 1);
        assert_eq!(ring.first(), ring.last());
        let area2: f64 = ring
            .windows(2)
            .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
            .sum();
        assert!(area2 > 0.0, "counter-clockwise");
    }
}

#[test]
fn oblique_footprint_is_cut_at_the_maximum_range() {
    let ground = Ground::TakeOffPlane;
    // 80 degrees off nadir: the top of the photo sees the sky.
    let shot = Shot {
        pitch: -10.0,
        ..Shot::default()
    };
    let g = PhotoGeometry::new(&capture(shot), &ground).unwrap();
    assert!(g.pixel_to_ground([0.0, 0.0]).is_err());
    let opts = FootprintOptions {
        points_per_edge: 17,
        max_range_m: 200.0,
    };
    let ring = g.footprint(&opts).unwrap();
    let origin = g.camera_position();
    let mut farthest: f64 = 0.0;
    for p in &ring {
        let e = enu(
            &origin,
            &besikta_georef::GroundPoint {
                lat: p[1],
                lon: p[0],
                height_m: origin.height_m - H,
            },
        );
        let range = (e[0] * e[0] + e[1] * e[1] + e[2] * e[2]).sqrt();
        assert!(range <= 200.0 + 1e-6, "point beyond the cut: {range}");
        farthest = farthest.max(range);
    }
    assert!(
        farthest > 199.9,
        "the cut follows the range limit: {farthest}"
    );
}
