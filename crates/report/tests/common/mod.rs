//! Helpers shared by the report crate's integration tests: a real UTM frame over central
//! Helsinki, rectangles on it and observations on those rectangles.
#![allow(dead_code)] // each test file uses some of them

use besikta_core::AssetKind;
use besikta_report::{Observation, WorkFrame};

/// Central Helsinki in UTM 35N, with its origin in working metres.
pub fn frame() -> (WorkFrame, [f64; 2]) {
    let f = WorkFrame::utm_for(24.9475, 60.1699).unwrap();
    let o = f.to_work([24.9475, 60.1699]).unwrap();
    (f, o)
}

/// The rectangle `[x0, y0, x1, y1]` (metres from the origin) as a closed WGS 84 ring.
pub fn ring(f: &(WorkFrame, [f64; 2]), r: [f64; 4]) -> Vec<[f64; 2]> {
    let (frame, o) = f;
    [
        [r[0], r[1]],
        [r[2], r[1]],
        [r[2], r[3]],
        [r[0], r[3]],
        [r[0], r[1]],
    ]
    .iter()
    .map(|p| frame.to_wgs84([o[0] + p[0], o[1] + p[1]]).unwrap())
    .collect()
}

/// A road observation of `class` from `photo` on the rectangle `r`: confidence 0.7, 2 cm/px,
/// GPS 1 m, no aligned pose, not a crack (the caller sets what its test needs).
pub fn observation(
    f: &(WorkFrame, [f64; 2]),
    photo: &str,
    class: &str,
    r: [f64; 4],
) -> Observation {
    Observation {
        photo: photo.into(),
        class: class.into(),
        asset_kind: AssetKind::Road,
        confidence: 0.7,
        pixel_polygon: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]],
        pixel_bbox: [0.0, 0.0, 10.0, 10.0],
        ground_polygon: ring(f, r),
        length_px: None,
        gsd_cm: 2.0,
        view_quality: 0.8,
        position_uncertainty_m: 1.0,
        pose_sigma_m: None,
        sides_grey: None,
        model: None,
    }
}
