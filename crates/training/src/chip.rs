//! Chip geometry: where a chip sits in its photo, cutting and resampling it to the model's
//! GSD, and moving outlines between photo and chip pixels (clipped to the chip, rasterised).
//!
//! A chip is an integer window `[x0, y0, w, h]` of photo pixels (it may reach past the
//! photo's edge only when the photo is smaller than the window; the outside is black)
//! resampled to the model's input size `W x H`. So `scale = [W / w, H / h]` chip pixels per
//! photo pixel, and a point maps as `chip = (photo - [x0, y0]) * scale` in continuous pixel
//! coordinates (origin at the top-left corner of the top-left pixel, as everywhere else).

use besikta_infer::image::{imageops, Rgb, RgbImage};

/// Where a chip was cut: photo pixels, integer, `[x0, y0, width, height]`.
pub type Window = [i64; 4];

/// How a model sees a photo: the window size in photo pixels for the model's input size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipScale {
    /// Window size in photo pixels.
    pub window: [i64; 2],
    /// Chip size (the model's input), pixels.
    pub chip: [u32; 2],
}

impl ChipScale {
    /// The window for a photo at `photo_mm` mm/px and a model at `model_mm` mm/px whose
    /// input is `chip` pixels: `chip * model_mm / photo_mm` photo pixels, rounded.
    pub fn new(photo_mm: f64, model_mm: f64, chip: [u32; 2]) -> ChipScale {
        let s = photo_mm / model_mm;
        let side = |c: u32| ((f64::from(c) / s).round() as i64).max(1);
        ChipScale {
            window: [side(chip[0]), side(chip[1])],
            chip,
        }
    }

    /// Chip pixels per photo pixel, per axis (equal up to the rounding of the window).
    pub fn scale(&self) -> [f64; 2] {
        [
            f64::from(self.chip[0]) / self.window[0] as f64,
            f64::from(self.chip[1]) / self.window[1] as f64,
        ]
    }
}

/// Axis-aligned bounds `[min_x, min_y, max_x, max_y]` of an outline.
pub fn bounds(points: &[[f64; 2]]) -> Option<[f64; 4]> {
    let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for p in points {
        if !(p[0].is_finite() && p[1].is_finite()) {
            return None;
        }
        b = [
            b[0].min(p[0]),
            b[1].min(p[1]),
            b[2].max(p[0]),
            b[3].max(p[1]),
        ];
    }
    (b[0] <= b[2] && b[1] <= b[3]).then_some(b)
}

/// Starts of windows of length `len` covering `[lo, hi]` with a margin, within `0..limit`.
fn starts(lo: f64, hi: f64, margin: f64, len: i64, limit: i64) -> Vec<i64> {
    let (a, b) = (lo - margin, hi + margin);
    let extent = b - a;
    let lenf = len as f64;
    let raw: Vec<f64> = if extent <= lenf {
        vec![(lo + hi) / 2.0 - lenf / 2.0]
    } else {
        // Neighbouring windows overlap by a quarter, so an outline cut at one edge is whole
        // in the next window.
        let n = ((extent - lenf) / (0.75 * lenf)).ceil() as usize + 1;
        let step = (extent - lenf) / (n - 1) as f64;
        (0..n).map(|i| a + step * i as f64).collect()
    };
    let mut out: Vec<i64> = raw
        .into_iter()
        .map(|s| {
            let s = s.round() as i64;
            if limit >= len {
                s.clamp(0, limit - len)
            } else {
                // A photo smaller than the window: centre it, the rest is padding.
                (limit - len) / 2
            }
        })
        .collect();
    out.dedup();
    out
}

/// Windows around an outline: one centred on it when it fits with `margin_chip_px` chip
/// pixels to spare, else a grid of overlapping windows over it. Windows stay inside a
/// photo of `photo` pixels when the photo is large enough; only windows the outline
/// reaches into are kept (a diagonal crack does not fill its whole grid).
pub fn windows_around(
    outline: &[[f64; 2]],
    scale: &ChipScale,
    photo: [u32; 2],
    margin_chip_px: f64,
) -> Vec<Window> {
    let Some(b) = bounds(outline) else {
        return Vec::new();
    };
    let s = scale.scale();
    let [w, h] = scale.window;
    let xs = starts(b[0], b[2], margin_chip_px / s[0], w, i64::from(photo[0]));
    let ys = starts(b[1], b[3], margin_chip_px / s[1], h, i64::from(photo[1]));
    let mut out = Vec::new();
    for &y0 in &ys {
        for &x0 in &xs {
            let win = [x0, y0, w, h];
            if !clip_to_window(outline, win).is_empty() {
                out.push(win);
            }
        }
    }
    out
}

/// Whether two axis-aligned bounds overlap (touching counts).
pub fn overlaps(a: [f64; 4], b: [f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

/// The window's bounds in photo pixels.
pub fn window_bounds(w: Window) -> [f64; 4] {
    [
        w[0] as f64,
        w[1] as f64,
        (w[0] + w[2]) as f64,
        (w[1] + w[3]) as f64,
    ]
}

/// Sutherland-Hodgman clipping of a ring by an axis-aligned rectangle (exact for the
/// convex clip region; a concave outline cut into two parts keeps a zero-width bridge
/// along the edge, which rasterises to nothing).
pub fn clip_to_rect(ring: &[[f64; 2]], r: [f64; 4]) -> Vec<[f64; 2]> {
    let mut pts: Vec<[f64; 2]> = ring.to_vec();
    if pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    // (axis, bound, keep the side >= bound)
    let edges = [
        (0, r[0], true),
        (0, r[2], false),
        (1, r[1], true),
        (1, r[3], false),
    ];
    for (axis, bound, keep_ge) in edges {
        if pts.is_empty() {
            break;
        }
        let inside = |p: &[f64; 2]| {
            if keep_ge {
                p[axis] >= bound
            } else {
                p[axis] <= bound
            }
        };
        let mut out = Vec::with_capacity(pts.len() + 4);
        for i in 0..pts.len() {
            let cur = pts[i];
            let prev = pts[(i + pts.len() - 1) % pts.len()];
            let (ci, pi) = (inside(&cur), inside(&prev));
            if ci != pi {
                let t = (bound - prev[axis]) / (cur[axis] - prev[axis]);
                let mut q = [
                    prev[0] + t * (cur[0] - prev[0]),
                    prev[1] + t * (cur[1] - prev[1]),
                ];
                q[axis] = bound;
                out.push(q);
            }
            if ci {
                out.push(cur);
            }
        }
        pts = out;
    }
    if pts.len() < 3 || ring_area(&pts) <= 0.0 {
        return Vec::new();
    }
    pts
}

/// The outline clipped to a window, in photo pixels (empty when it does not reach in).
pub fn clip_to_window(outline: &[[f64; 2]], w: Window) -> Vec<[f64; 2]> {
    clip_to_rect(outline, window_bounds(w))
}

/// Photo pixels to chip pixels.
pub fn to_chip(points: &[[f64; 2]], w: Window, scale: [f64; 2]) -> Vec<[f64; 2]> {
    points
        .iter()
        .map(|p| {
            [
                (p[0] - w[0] as f64) * scale[0],
                (p[1] - w[1] as f64) * scale[1],
            ]
        })
        .collect()
}

/// Chip pixels to photo pixels.
pub fn to_photo(points: &[[f64; 2]], w: Window, scale: [f64; 2]) -> Vec<[f64; 2]> {
    points
        .iter()
        .map(|p| [p[0] / scale[0] + w[0] as f64, p[1] / scale[1] + w[1] as f64])
        .collect()
}

/// Unsigned shoelace area of an open or closed ring.
pub fn ring_area(ring: &[[f64; 2]]) -> f64 {
    let n = ring.len();
    if n < 3 {
        return 0.0;
    }
    let mut twice = 0.0;
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + 1) % n]);
        twice += a[0] * b[1] - b[0] * a[1];
    }
    twice.abs() / 2.0
}

/// Even-odd test of a point against a ring.
pub fn contains(ring: &[[f64; 2]], x: f64, y: f64) -> bool {
    let n = ring.len();
    let mut inside = false;
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a[1] > y) != (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Paints `value` into `mask` (row-major, `size` pixels) where a pixel's centre lies in `ring`.
pub fn rasterise(ring: &[[f64; 2]], value: u8, mask: &mut [u8], size: [u32; 2]) {
    let Some(b) = bounds(ring) else { return };
    let (w, h) = (i64::from(size[0]), i64::from(size[1]));
    let x0 = (b[0].floor() as i64).clamp(0, w);
    let x1 = (b[2].ceil() as i64).clamp(0, w);
    let y0 = (b[1].floor() as i64).clamp(0, h);
    let y1 = (b[3].ceil() as i64).clamp(0, h);
    for y in y0..y1 {
        for x in x0..x1 {
            if contains(ring, x as f64 + 0.5, y as f64 + 0.5) {
                mask[(y * w + x) as usize] = value;
            }
        }
    }
}

/// Cuts `window` out of `photo` (black outside the photo) and resamples it to `size`
/// (triangle filter: it averages when shrinking, interpolates when enlarging).
pub fn cut(photo: &RgbImage, window: Window, size: [u32; 2]) -> RgbImage {
    let [x0, y0, w, h] = window;
    let (pw, ph) = (i64::from(photo.width()), i64::from(photo.height()));
    let inside = x0 >= 0 && y0 >= 0 && x0 + w <= pw && y0 + h <= ph;
    let region = if inside {
        imageops::crop_imm(photo, x0 as u32, y0 as u32, w as u32, h as u32).to_image()
    } else {
        let mut canvas = RgbImage::from_pixel(w as u32, h as u32, Rgb([0, 0, 0]));
        let (ax, ay) = (x0.max(0), y0.max(0));
        let (bx, by) = ((x0 + w).min(pw), (y0 + h).min(ph));
        if ax < bx && ay < by {
            let part = imageops::crop_imm(
                photo,
                ax as u32,
                ay as u32,
                (bx - ax) as u32,
                (by - ay) as u32,
            )
            .to_image();
            imageops::replace(&mut canvas, &part, ax - x0, ay - y0);
        }
        canvas
    };
    if region.width() == size[0] && region.height() == size[1] {
        region
    } else {
        imageops::resize(&region, size[0], size[1], imageops::FilterType::Triangle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_outline_gets_one_centred_window_and_a_long_one_a_row_inside_the_photo() {
        // Photo at 18.75 mm/px, model at 20 mm/px with 256 px input: 273 px windows.
        let s = ChipScale::new(18.75, 20.0, [256, 256]);
        assert_eq!(s.window, [273, 273]);
        let small = [
            [500.0, 400.0],
            [520.0, 400.0],
            [520.0, 430.0],
            [500.0, 430.0],
        ];
        let w = windows_around(&small, &s, [1600, 1067], 16.0);
        assert_eq!(
            w, // 510 - 273 / 2 = 373.5 rounds to 374.
            vec![[374, 279, 273, 273]]
        );
        // Near the corner the window moves inside the photo.
        let corner = [[2.0, 2.0], [10.0, 2.0], [10.0, 9.0]];
        assert_eq!(
            windows_around(&corner, &s, [1600, 1067], 16.0),
            vec![[0, 0, 273, 273]]
        );
        // A 1000 px long thin outline: several windows, each reached by the outline.
        let long = [
            [100.0, 500.0],
            [1100.0, 500.0],
            [1100.0, 504.0],
            [100.0, 504.0],
        ];
        let w = windows_around(&long, &s, [1600, 1067], 16.0);
        assert!(w.len() >= 4, "{w:?}");
        assert!(w.iter().all(|w| w[0] >= 0 && w[0] + w[2] <= 1600));
        // The margin (16 chip px) is kept, up to the rounding of the window to whole pixels.
        assert!(w.first().map(|w| w[0] as f64) <= Some(100.0 - 16.0 / s.scale()[0] + 0.5));
        assert!(w.last().map(|w| (w[0] + w[2]) as f64) >= Some(1100.0));
    }

    #[test]
    fn clipping_keeps_the_part_inside_and_rasterising_fills_pixel_centres() {
        let square = [
            [-5.0, -5.0],
            [5.0, -5.0],
            [5.0, 5.0],
            [-5.0, 5.0],
            [-5.0, -5.0],
        ];
        let c = clip_to_rect(&square, [0.0, 0.0, 10.0, 10.0]);
        assert!((ring_area(&c) - 25.0).abs() < 1e-9, "{c:?}");
        assert!(clip_to_rect(&square, [6.0, 6.0, 9.0, 9.0]).is_empty());
        let mut mask = vec![0u8; 100];
        rasterise(&c, 3, &mut mask, [10, 10]);
        assert_eq!(mask.iter().filter(|v| **v == 3).count(), 25);
        assert_eq!(mask[0], 3);
        assert_eq!(mask[5], 0);
    }

    #[test]
    fn photo_and_chip_pixels_map_back_and_forth() {
        let w = [100, 50, 200, 200];
        let s = [1.28, 1.28];
        let p = [[150.0, 75.0], [300.0, 250.0]];
        let c = to_chip(&p, w, s);
        assert_eq!(c[0], [64.0, 32.0]);
        assert_eq!(c[1], [256.0, 256.0]);
        let back = to_photo(&c, w, s);
        assert!(back
            .iter()
            .zip(&p)
            .all(|(a, b)| (a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9));
    }

    #[test]
    fn a_window_past_the_edge_of_a_small_photo_is_padded_black() {
        let photo = RgbImage::from_pixel(10, 10, Rgb([200, 200, 200]));
        let chip = cut(&photo, [-5, -5, 20, 20], [20, 20]);
        assert_eq!(chip.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(chip.get_pixel(10, 10).0, [200, 200, 200]);
        assert_eq!(chip.get_pixel(19, 19).0, [0, 0, 0]);
    }
}
