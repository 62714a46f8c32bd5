//! Two-sided ground test for thin detections: a crack lies within one surface, a line between
//! two surfaces does not.
//!
//! The crack model traces any thin dark line, and the straight joint between asphalt and
//! paler paving, a kerb, a slab footway's edge or a worn patch's border is one. Such a line is
//! seen alike in every photo, so the multi-view evidence keeps it. What tells it from a crack
//! is the ground beside it: on either side of a crack lies the same pavement, on either side
//! of a joint lie two different surfaces. [`sides_grey`] measures that: the detection's
//! outline is rasterised, the ground [`NEAR_M`]-[`FAR_M`] from it (a ring, so a lane marking
//! right beside a crack is stepped over) is split in two by the detection's main axis, and the
//! difference of the two halves' median luminance is the value (0-255). The report's evidence
//! rules drop a finding whose median over its views is above a class's `max_sides_grey`
//! (`models/evidence.toml`).
//!
//! Measured through `process` with the rule off (2026-12-06, s42;
//! `benches/results/operating-points/sides-2026-12-06-s42.md`): on the six simulated validation
//! flights, four draws, every true crack finding's median is at most 5 grey levels and the five
//! false places are 1, 2, 7 (slab-grid joints: the same slabs on both sides), 56 and 67.5
//! (lane-marking edges); on the real Brighton flight every crack judged real is at most 10, the
//! joint of asphalt and paving, a worn surface's edge and a lawn's shadow edge (judged false)
//! 18.5-25.5. Rocks under water stay (their two sides are alike).

use besikta_core::Detection;
use image::RgbImage;

/// Inner edge of the ring beside a detection, metres of ground.
pub const NEAR_M: f64 = 0.15;
/// Outer edge of the ring, metres of ground.
pub const FAR_M: f64 = 0.40;
/// The ring never reaches further than this many pixels (fine-GSD photos stay cheap).
const MAX_FAR_PX: f64 = 64.0;

/// Luminance (0-255) of a pixel, Rec. 601 weights.
fn luma(p: &image::Rgb<u8>) -> u8 {
    let [r, g, b] = p.0;
    ((299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000) as u8
}

/// The median of `v` (empty: `None`).
fn median(v: &mut [u8]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable(mid);
    Some(*m as f32)
}

/// How much the ground on the two sides of thin detection `d` differs in `img`: the
/// difference of the median luminance of the two halves of the ring [`NEAR_M`]-[`FAR_M`]
/// around it, split by its main axis; `gsd_cm` is the photo's ground sampling distance
/// there; `outline` is the detection's outline in photo pixels as placed on the map (its
/// box when the model gave none, `crate::pixel_outline`). `None` for a detection that is not
/// thin (no skeleton length) or whose ring leaves too little of the photo on a side.
pub fn sides_grey(img: &RgbImage, d: &Detection, outline: &[[f64; 2]], gsd_cm: f64) -> Option<f32> {
    d.length_px?;
    let poly = outline;
    if gsd_cm.is_nan() || gsd_cm <= 0.0 {
        return None;
    }
    let near = NEAR_M * 100.0 / gsd_cm;
    let far = (FAR_M * 100.0 / gsd_cm).min(MAX_FAR_PX);
    if far <= near {
        return None;
    }
    let (w, h) = (img.width() as i64, img.height() as i64);
    let pad = far.ceil() as i64 + 1;
    let x0 = (d.bbox[0].floor() as i64 - pad).max(0);
    let y0 = (d.bbox[1].floor() as i64 - pad).max(0);
    let x1 = (d.bbox[2].ceil() as i64 + pad).min(w - 1);
    let y1 = (d.bbox[3].ceil() as i64 + pad).min(h - 1);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let (cw, ch) = ((x1 - x0 + 1) as usize, (y1 - y0 + 1) as usize);
    // The detection's pixels: its outline's interior and the outline itself (a crack one
    // pixel wide has no pixel centre strictly inside its outline).
    let mut on = vec![false; cw * ch];
    let mut mark = |x: f64, y: f64| {
        let (px, py) = (x.round() as i64 - x0, y.round() as i64 - y0);
        if px >= 0 && py >= 0 && (px as usize) < cw && (py as usize) < ch {
            on[py as usize * cw + px as usize] = true;
        }
    };
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
        let steps = ((b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil() as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            mark(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
        }
    }
    let (bx0, by0) = (d.bbox[0].floor() as i64, d.bbox[1].floor() as i64);
    let (bx1, by1) = (d.bbox[2].ceil() as i64, d.bbox[3].ceil() as i64);
    for y in by0.max(y0)..=by1.min(y1) {
        for x in bx0.max(x0)..=bx1.min(x1) {
            if crate::coverage::inside(poly, [x as f64 + 0.5, y as f64 + 0.5]) {
                on[(y - y0) as usize * cw + (x - x0) as usize] = true;
            }
        }
    }
    // Main axis of the detection's pixels.
    let (mut n, mut sx, mut sy) = (0f64, 0f64, 0f64);
    for (i, _) in on.iter().enumerate().filter(|(_, v)| **v) {
        n += 1.0;
        sx += (i % cw) as f64;
        sy += (i / cw) as f64;
    }
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut syy, mut sxy) = (0f64, 0f64, 0f64);
    for (i, _) in on.iter().enumerate().filter(|(_, v)| **v) {
        let (dx, dy) = ((i % cw) as f64 - mx, (i / cw) as f64 - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    // The axis's direction; the normal is perpendicular to it.
    let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let (nx, ny) = (-angle.sin(), angle.cos());
    // Distance of every crop pixel to the nearest detection pixel: a two-pass chamfer
    // transform (steps 1 and sqrt 2; within 8 % of the Euclidean distance). Single precision:
    // the crop of a crack across a whole photo is millions of pixels (at 8 bytes each this
    // plane was 12.7 MB of the server's peak on a simulated 1,000-photo flight, s50).
    let big = f32::MAX / 4.0;
    let mut dist: Vec<f32> = on.iter().map(|&v| if v { 0.0 } else { big }).collect();
    drop(on);
    let d2 = std::f32::consts::SQRT_2;
    for y in 0..ch {
        for x in 0..cw {
            let i = y * cw + x;
            let mut v = dist[i];
            if x > 0 {
                v = v.min(dist[i - 1] + 1.0);
            }
            if y > 0 {
                v = v.min(dist[i - cw] + 1.0);
                if x > 0 {
                    v = v.min(dist[i - cw - 1] + d2);
                }
                if x + 1 < cw {
                    v = v.min(dist[i - cw + 1] + d2);
                }
            }
            dist[i] = v;
        }
    }
    for y in (0..ch).rev() {
        for x in (0..cw).rev() {
            let i = y * cw + x;
            let mut v = dist[i];
            if x + 1 < cw {
                v = v.min(dist[i + 1] + 1.0);
            }
            if y + 1 < ch {
                v = v.min(dist[i + cw] + 1.0);
                if x + 1 < cw {
                    v = v.min(dist[i + cw + 1] + d2);
                }
                if x > 0 {
                    v = v.min(dist[i + cw - 1] + d2);
                }
            }
            dist[i] = v;
        }
    }
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (i, &dv) in dist.iter().enumerate() {
        // Compared in double precision: a distance of whole steps (8.0) stays outside a ring
        // that starts at 7.99999999, as it did when the plane was f64.
        let dv = f64::from(dv);
        if dv <= near || dv > far {
            continue;
        }
        let (x, y) = (i % cw, i / cw);
        let s = (x as f64 - mx) * nx + (y as f64 - my) * ny;
        let l = luma(img.get_pixel((x0 + x as i64) as u32, (y0 + y as i64) as u32));
        if s < 0.0 {
            left.push(l);
        } else if s > 0.0 {
            right.push(l);
        }
    }
    if left.len() < 5 || right.len() < 5 {
        return None;
    }
    Some((median(&mut left)? - median(&mut right)?).abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use besikta_core::AssetKind;

    /// [`sides_grey`] on the outline `observe` gives the detection.
    fn measure(img: &RgbImage, d: &Detection, gsd_cm: f64) -> Option<f32> {
        sides_grey(img, d, &crate::pixel_outline(d), gsd_cm)
    }

    fn crack(poly: Vec<[f64; 2]>) -> Detection {
        let xs = poly.iter().map(|p| p[0]);
        let ys = poly.iter().map(|p| p[1]);
        let bbox = [
            xs.clone().fold(f64::MAX, f64::min),
            ys.clone().fold(f64::MAX, f64::min),
            xs.fold(f64::MIN, f64::max),
            ys.fold(f64::MIN, f64::max),
        ];
        Detection {
            class: "crack".into(),
            asset_kind: Some(AssetKind::Road),
            confidence: 0.9,
            bbox,
            polygon: Some(poly),
            area_px: 40.0,
            length_px: Some(40.0),
        }
    }

    /// A 200x200 photo: grey asphalt (96), with `paint` drawing on it.
    fn photo(paint: impl Fn(u32, u32) -> Option<u8>) -> RgbImage {
        RgbImage::from_fn(200, 200, |x, y| {
            let v = paint(x, y).unwrap_or(96 + ((x * 7 + y * 13) % 5) as u8);
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn ground_whole_steps_away_is_in_the_ring_exactly_when_the_ring_starts_below_it() {
        // A line across the whole photo (no ends in the crop) on rows 100-101; the rows 8-14
        // above it are bright. With the ring starting just below 8 pixels, row 92 (8 whole
        // steps away) is in it: 7 bright of 14 rows above, median bright; starting just above
        // 8, 6 bright of 13, median dark. The distances are held in single precision and the
        // ring's edges in double, so 7.99999999 does not round up to 8.
        let mut img = RgbImage::from_pixel(1000, 200, image::Rgb([100, 100, 100]));
        for y in 86..=92 {
            for x in 0..1000 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let d = crack(vec![
            [0.0, 100.0],
            [999.0, 100.0],
            [999.0, 101.0],
            [0.0, 101.0],
        ]);
        let gsd_for_near = |near_px: f64| NEAR_M * 100.0 / near_px;
        assert_eq!(measure(&img, &d, gsd_for_near(8.0 - 1e-8)), Some(155.0));
        assert_eq!(measure(&img, &d, gsd_for_near(8.0 + 1e-8)), Some(0.0));
    }

    #[test]
    fn a_crack_in_asphalt_has_alike_sides_a_joint_between_two_surfaces_does_not() {
        // A vertical dark line at x = 100, rows 60-140; 2 cm per pixel: the ring is 7.5-20 px.
        let line = vec![[100.0, 60.0], [101.0, 60.0], [101.0, 140.0], [100.0, 140.0]];
        let crack_in_asphalt = photo(|x, _| (x == 100).then_some(40));
        let v = measure(&crack_in_asphalt, &crack(line.clone()), 2.0).unwrap();
        assert!(v <= 2.0, "a crack in one surface: {v}");
        // The same line where asphalt (96) meets pale paving (150).
        let joint = photo(|x, _| {
            if x == 100 {
                Some(40)
            } else {
                (x > 100).then_some(150)
            }
        });
        let v = measure(&joint, &crack(line.clone()), 2.0).unwrap();
        assert!(v >= 50.0, "a joint between two surfaces: {v}");
        // A crack with a 10-cm lane marking right beside it (x 103-107): the ring steps over
        // the marking to the asphalt beyond.
        let beside_marking = photo(|x, _| match x {
            100 => Some(40),
            103..=107 => Some(230),
            _ => None,
        });
        let v = measure(&beside_marking, &crack(line.clone()), 2.0).unwrap();
        assert!(v <= 2.0, "a crack beside a lane marking: {v}");
        // A diagonal crack, a polyline outline one pixel wide.
        let diag = vec![[60.0, 60.0], [140.0, 140.0], [141.0, 140.0], [61.0, 60.0]];
        let v = measure(&crack_in_asphalt, &crack(diag), 2.0).unwrap();
        assert!(v <= 2.0, "a diagonal line in one surface: {v}");
    }

    #[test]
    fn not_measured_for_detections_that_are_not_thin_or_have_no_outline() {
        let img = photo(|_, _| None);
        let mut d = crack(vec![
            [90.0, 90.0],
            [110.0, 90.0],
            [110.0, 110.0],
            [90.0, 110.0],
        ]);
        d.length_px = None;
        assert_eq!(measure(&img, &d, 2.0), None);
        // Without an outline, the box stands for it.
        let mut d = crack(vec![[100.0, 60.0], [101.0, 140.0]]);
        d.polygon = None;
        assert!(measure(&img, &d, 2.0).is_some_and(|v| v <= 2.0));
        assert_eq!(
            measure(&img, &crack(vec![[90.0, 90.0], [91.0, 90.0]]), 0.0),
            None
        );
    }
}
