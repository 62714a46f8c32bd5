//! Tile layout over a photo at the model's GSD, region-of-interest skipping, and filling input tensors.
//!
//! Coordinates: the photo is conceptually resampled by `scale` (model pixels per photo pixel)
//! into a "virtual" image of `virt_w` x `virt_h`; tiles are laid out there. The virtual image is
//! never built when upsampling (it could be 17x the photo), only sampled tile by tile.

use crate::manifest::{ChannelOrder, Manifest};
use image::RgbImage;

/// One tile: top-left corner in virtual (model-resolution) pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
}

/// Where the tiles of one photo go.
#[derive(Debug, Clone, PartialEq)]
pub struct TilePlan {
    /// Model pixels per photo pixel (1.0 when the photo is used at its own scale).
    pub scale: f64,
    pub photo_w: u32,
    pub photo_h: u32,
    pub virt_w: u32,
    pub virt_h: u32,
    pub tile_w: u32,
    pub tile_h: u32,
    /// Tiles to run, in row-major order.
    pub tiles: Vec<Tile>,
    pub tiles_total: usize,
    pub tiles_skipped: usize,
}

impl TilePlan {
    /// Lays out overlapping tiles over a `width` x `height` photo.
    ///
    /// `gsd_mm` is the photo's ground sampling distance; when it is known and outside the
    /// model's tolerated range, tiles are resampled to the model's GSD. `roi` are polygons in
    /// photo pixels: tiles that touch none of them are skipped.
    pub fn new(
        width: u32,
        height: u32,
        manifest: &Manifest,
        gsd_mm: Option<f64>,
        roi: Option<&[Vec<[f64; 2]>]>,
    ) -> TilePlan {
        let g = manifest.gsd;
        let scale = match gsd_mm {
            Some(p)
                if p.is_finite()
                    && p > 0.0
                    && !(g.min_mm_per_px..=g.max_mm_per_px).contains(&p) =>
            {
                p / g.mm_per_px
            }
            _ => 1.0,
        };
        let virt_w = ((width as f64 * scale).round() as u32).max(1);
        let virt_h = ((height as f64 * scale).round() as u32).max(1);
        let (tile_w, tile_h) = (manifest.input.width, manifest.input.height);
        let overlap = manifest.tiling.overlap_px;
        let xs = axis_positions(virt_w, tile_w, overlap);
        let ys = axis_positions(virt_h, tile_h, overlap);
        let mut tiles = Vec::with_capacity(xs.len() * ys.len());
        let mut skipped = 0;
        // Each polygon's bounding box, so a tile far from it is passed over at once (a
        // vegetation region is hundreds of small polygons).
        let boxed = roi.map(|polys| polys.iter().map(|p| (bounds(p), p)).collect::<Vec<_>>());
        for &y in &ys {
            for &x in &xs {
                let keep = boxed.as_ref().is_none_or(|polys| {
                    // The tile's footprint in photo pixels.
                    let r = [
                        x as f64 / scale,
                        y as f64 / scale,
                        (x + tile_w) as f64 / scale,
                        (y + tile_h) as f64 / scale,
                    ];
                    polys.iter().any(|(b, p)| {
                        b[0] <= r[2]
                            && b[2] >= r[0]
                            && b[1] <= r[3]
                            && b[3] >= r[1]
                            && rect_touches_polygon(r, p)
                    })
                });
                if keep {
                    tiles.push(Tile { x, y });
                } else {
                    skipped += 1;
                }
            }
        }
        TilePlan {
            scale,
            photo_w: width,
            photo_h: height,
            virt_w,
            virt_h,
            tile_w,
            tile_h,
            tiles_total: xs.len() * ys.len(),
            tiles_skipped: skipped,
            tiles,
        }
    }
}

impl TilePlan {
    /// Tiles placed on the regions of interest rather than on the photo's grid: the
    /// polygons' bounding boxes (photo pixels) that touch are joined into clusters, and each
    /// cluster is covered by the fewest tiles that overlap by at least `tiling.overlap_px`,
    /// centred on it (moved inside the photo at its edges). For small scattered regions such
    /// as second-view windows: a window smaller than a tile takes one tile here, where the
    /// grid gives it up to four. When the grid's tiles that touch the regions are no more
    /// than the placed ones, the grid's plan is returned. `tiles_total` is the grid's count,
    /// as for [`TilePlan::new`], and `tiles_skipped` what of it this plan does not run.
    pub fn covering(
        width: u32,
        height: u32,
        manifest: &Manifest,
        gsd_mm: Option<f64>,
        roi: &[Vec<[f64; 2]>],
    ) -> TilePlan {
        // The grid's tiles that touch the regions: the plan to beat, and the layout.
        let grid = TilePlan::new(width, height, manifest, gsd_mm, Some(roi));
        let scale = grid.scale;
        let mut boxes: Vec<[f64; 4]> = roi
            .iter()
            .filter(|p| p.len() >= 3)
            .map(|p| {
                let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
                for q in p {
                    b = [
                        b[0].min(q[0]),
                        b[1].min(q[1]),
                        b[2].max(q[0]),
                        b[3].max(q[1]),
                    ];
                }
                b.map(|v| v * scale)
            })
            .collect();
        // Join touching boxes until none touch.
        let mut joined = true;
        while joined {
            joined = false;
            let mut i = 0;
            while i < boxes.len() {
                let mut j = i + 1;
                while j < boxes.len() {
                    let (a, b) = (boxes[i], boxes[j]);
                    if a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3] {
                        boxes[i] = [
                            a[0].min(b[0]),
                            a[1].min(b[1]),
                            a[2].max(b[2]),
                            a[3].max(b[3]),
                        ];
                        boxes.swap_remove(j);
                        joined = true;
                    } else {
                        j += 1;
                    }
                }
                i += 1;
            }
        }
        let overlap = manifest.tiling.overlap_px;
        let (vw, vh, tw, th) = (grid.virt_w, grid.virt_h, grid.tile_w, grid.tile_h);
        let mut tiles = Vec::new();
        for b in &boxes {
            let xs = cover_axis(b[0], b[2], vw, tw, overlap);
            let ys = cover_axis(b[1], b[3], vh, th, overlap);
            for &y in &ys {
                for &x in &xs {
                    tiles.push(Tile { x, y });
                }
            }
        }
        tiles.sort_by_key(|t| (t.y, t.x));
        tiles.dedup();
        // Many clusters close together (a window clipped to several pieces of road) can
        // take more placed tiles than the grid's: then the grid's.
        if grid.tiles.len() <= tiles.len() {
            return grid;
        }
        TilePlan {
            tiles_skipped: grid.tiles_total.saturating_sub(tiles.len()),
            tiles,
            ..grid
        }
    }
}

/// Tile origins covering `[lo, hi]` (virtual pixels) of an axis `len` long: the fewest tiles
/// overlapping by at least `overlap`, spread evenly over a span centred on the interval and
/// kept inside the axis.
fn cover_axis(lo: f64, hi: f64, len: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if len <= tile {
        return vec![0];
    }
    let (lo, hi) = (lo.clamp(0.0, len as f64), hi.clamp(0.0, len as f64));
    let need = (hi - lo).ceil().max(1.0) as u32;
    let span = need.max(tile).min(len);
    let centre = (lo + hi) / 2.0;
    let start = (centre - span as f64 / 2.0)
        .round()
        .clamp(0.0, (len - span) as f64) as u32;
    axis_positions(span, tile, overlap)
        .into_iter()
        .map(|p| p + start)
        .collect()
}

/// Tile origins along one axis: evenly spread so that neighbours overlap by at least `overlap`
/// and the last tile ends exactly at the edge (no tile hangs over unless the image is smaller).
pub fn axis_positions(len: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if len <= tile {
        return vec![0];
    }
    let stride = (tile - overlap).max(1) as u64;
    let span = (len - tile) as u64;
    let n = span.div_ceil(stride) + 1;
    (0..n)
        .map(|i| ((i * span * 2 + (n - 1)) / (2 * (n - 1))) as u32)
        .collect()
}

/// A polygon's bounding box `[x0, y0, x1, y1]` (inverted, so it touches nothing, when empty).
pub fn bounds(poly: &[[f64; 2]]) -> [f64; 4] {
    poly.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, p| {
            [
                b[0].min(p[0]),
                b[1].min(p[1]),
                b[2].max(p[0]),
                b[3].max(p[1]),
            ]
        },
    )
}

/// Whether an axis-aligned rectangle `[x0, y0, x1, y1]` and a polygon overlap.
pub fn rect_touches_polygon(r: [f64; 4], poly: &[[f64; 2]]) -> bool {
    if poly.len() < 3 {
        return false;
    }
    let inside_rect = |p: &[f64; 2]| p[0] >= r[0] && p[0] <= r[2] && p[1] >= r[1] && p[1] <= r[3];
    if poly.iter().any(inside_rect) {
        return true;
    }
    let corners = [[r[0], r[1]], [r[2], r[1]], [r[2], r[3]], [r[0], r[3]]];
    if corners.iter().any(|c| point_in_polygon(*c, poly)) {
        return true;
    }
    // Remaining case: an edge crosses the rectangle without a vertex inside either shape.
    let n = poly.len();
    (0..n).any(|i| {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        (0..4).any(|k| segments_cross(a, b, corners[k], corners[(k + 1) % 4]))
    })
}

fn point_in_polygon(p: [f64; 2], poly: &[[f64; 2]]) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[j]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn segments_cross(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let orient = |p: [f64; 2], q: [f64; 2], r: [f64; 2]| {
        (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    };
    let (d1, d2) = (orient(c, d, a), orient(c, d, b));
    let (d3, d4) = (orient(a, b, c), orient(a, b, d));
    (d1 > 0.0) != (d2 > 0.0) && (d3 > 0.0) != (d4 > 0.0)
}

/// Turns 0..255 pixel values into normalised input values, one table per tensor channel.
#[derive(Debug, Clone)]
pub struct Normaliser {
    /// `lut[c][v]` is the input value of tensor channel `c` for a byte `v`.
    lut: [[f32; 256]; 3],
    /// Which RGB byte feeds tensor channel `c`.
    source: [usize; 3],
}

impl Normaliser {
    pub fn new(manifest: &Manifest) -> Normaliser {
        let i = &manifest.input;
        let mut lut = [[0f32; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                // f64 then one rounding to f32, which the Python reference does too.
                *out = ((v as f64 * i.scale - i.mean[c]) / i.std[c]) as f32;
            }
        }
        let source = match i.channels {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        Normaliser { lut, source }
    }

    /// Normalises one RGB pixel row into three plane rows.
    #[inline]
    fn row(&self, rgb: &[u8], planes: [&mut [f32]; 3]) {
        let [p0, p1, p2] = planes;
        let (l0, l1, l2) = (&self.lut[0], &self.lut[1], &self.lut[2]);
        let [s0, s1, s2] = self.source;
        for (((px, a), b), c) in rgb.chunks_exact(3).zip(p0).zip(p1).zip(p2) {
            *a = l0[px[s0] as usize];
            *b = l1[px[s1] as usize];
            *c = l2[px[s2] as usize];
        }
    }
}

/// What tiles are cut from: the photo itself (or a downsampled copy), or the photo sampled
/// bilinearly on the fly when the model wants more pixels than the photo has.
#[derive(Debug)]
pub enum TileSource<'a> {
    /// Virtual pixel (x, y) is pixel (x, y) of this image.
    Direct(&'a RgbImage),
    /// Virtual pixel (x, y) is photo position ((x + 0.5) / scale - 0.5, ...), bilinear.
    Upsampled { photo: &'a RgbImage, scale: f64 },
}

/// Fills a CHW `out` (3 * tile_w * tile_h) for the tile at `tile`; pixels beyond the edge
/// repeat the edge so the model sees no artificial border.
pub fn fill_tile(
    src: &TileSource,
    plan: &TilePlan,
    tile: Tile,
    norm: &Normaliser,
    out: &mut [f32],
    rgb_row: &mut Vec<u8>,
) {
    let (tw, th) = (plan.tile_w as usize, plan.tile_h as usize);
    let plane = tw * th;
    let (p0, rest) = out[..3 * plane].split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    rgb_row.resize(tw * 3, 0);
    match src {
        TileSource::Direct(img) => {
            let (w, h) = (img.width() as usize, img.height() as usize);
            let raw: &[u8] = img.as_raw();
            let x0 = tile.x as usize;
            let inside_x = x0 + tw <= w;
            for r in 0..th {
                let sy = (tile.y as usize + r).min(h - 1);
                let line = &raw[sy * w * 3..(sy + 1) * w * 3];
                let rgb: &[u8] = if inside_x {
                    &line[x0 * 3..(x0 + tw) * 3]
                } else {
                    for (c, dst) in rgb_row.chunks_exact_mut(3).enumerate() {
                        let sx = (x0 + c).min(w - 1);
                        dst.copy_from_slice(&line[sx * 3..sx * 3 + 3]);
                    }
                    rgb_row
                };
                let span = r * tw..(r + 1) * tw;
                norm.row(
                    rgb,
                    [&mut p0[span.clone()], &mut p1[span.clone()], &mut p2[span]],
                );
            }
        }
        TileSource::Upsampled { photo, scale } => {
            let (w, h) = (photo.width() as usize, photo.height() as usize);
            let raw: &[u8] = photo.as_raw();
            let taps = |start: u32, n: usize, len: usize| -> Vec<(usize, usize, u32)> {
                (0..n)
                    .map(|i| {
                        let f = ((start as usize + i) as f64 + 0.5) / scale - 0.5;
                        let f = f.clamp(0.0, (len - 1) as f64);
                        let i0 = f.floor() as usize;
                        let i1 = (i0 + 1).min(len - 1);
                        // Weight of the second tap in 1/256ths: integer blending keeps it fast.
                        (i0, i1, ((f - i0 as f64) * 256.0).round() as u32)
                    })
                    .collect()
            };
            let xt = taps(tile.x, tw, w);
            let yt = taps(tile.y, th, h);
            for (r, &(y0, y1, wy)) in yt.iter().enumerate() {
                let l0 = &raw[y0 * w * 3..(y0 + 1) * w * 3];
                let l1 = &raw[y1 * w * 3..(y1 + 1) * w * 3];
                for (dst, &(x0, x1, wx)) in rgb_row.chunks_exact_mut(3).zip(&xt) {
                    for c in 0..3 {
                        let top = l0[x0 * 3 + c] as u32 * (256 - wx) + l0[x1 * 3 + c] as u32 * wx;
                        let bot = l1[x0 * 3 + c] as u32 * (256 - wx) + l1[x1 * 3 + c] as u32 * wx;
                        dst[c] = ((top * (256 - wy) + bot * wy + (1 << 15)) >> 16) as u8;
                    }
                }
                let span = r * tw..(r + 1) * tw;
                norm.row(
                    rgb_row,
                    [&mut p0[span.clone()], &mut p1[span.clone()], &mut p2[span]],
                );
            }
        }
    }
}

/// Taps of a triangle (tent) filter for resampling `src` samples to `dst` < `src` samples:
/// for each output sample, the first source index and the normalised weights.
fn triangle_taps(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = src as f64 / dst as f64; // > 1: the filter widens to cover the source pixels
    let support = ratio.max(1.0);
    (0..dst)
        .map(|i| {
            let centre = (i as f64 + 0.5) * ratio;
            let lo = ((centre - support).floor().max(0.0)) as usize;
            let hi = ((centre + support).ceil() as usize).min(src);
            let mut w: Vec<f32> = (lo..hi)
                .map(|j| {
                    let d = ((j as f64 + 0.5 - centre) / support).abs();
                    (1.0 - d).max(0.0) as f32
                })
                .collect();
            let sum: f32 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                // Degenerate (cannot happen for dst < src); fall back to the nearest pixel.
                w.iter_mut().for_each(|v| *v = 0.0);
                w[0] = 1.0;
            }
            (lo, w)
        })
        .collect()
}

/// Downsamples an RGB photo with a separable triangle filter whose support covers every
/// source pixel (no aliasing of thin cracks into noise). Several times faster than the image
/// crate's generic resize because it works on rows of bytes with precomputed taps.
pub fn downsample(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let (dw, dh) = (width as usize, height as usize);
    if dw >= sw || dh >= sh || dw == 0 || dh == 0 {
        return image::imageops::resize(
            img,
            width.max(1),
            height.max(1),
            image::imageops::FilterType::Triangle,
        );
    }
    let xt = triangle_taps(sw, dw);
    let yt = triangle_taps(sh, dh);
    let raw: &[u8] = img.as_raw();
    // Horizontal pass into f32 rows (source height x output width).
    let mut tmp = crate::scratch::take_f32(sh * dw * 3);
    for (src_row, dst_row) in raw.chunks_exact(sw * 3).zip(tmp.chunks_exact_mut(dw * 3)) {
        for ((lo, w), out) in xt.iter().zip(dst_row.chunks_exact_mut(3)) {
            let (mut r, mut g, mut b) = (0f32, 0f32, 0f32);
            for (px, &wt) in src_row[lo * 3..(lo + w.len()) * 3].chunks_exact(3).zip(w) {
                r += px[0] as f32 * wt;
                g += px[1] as f32 * wt;
                b += px[2] as f32 * wt;
            }
            out.copy_from_slice(&[r, g, b]);
        }
    }
    // Vertical pass, row by row so the inner loop runs along contiguous memory.
    let mut out = crate::scratch::take_u8(dh * dw * 3);
    let mut acc = vec![0f32; dw * 3];
    for ((lo, w), dst_row) in yt.iter().zip(out.chunks_exact_mut(dw * 3)) {
        acc.fill(0.0);
        for (k, &wt) in w.iter().enumerate() {
            let src = &tmp[(lo + k) * dw * 3..(lo + k + 1) * dw * 3];
            for (a, &v) in acc.iter_mut().zip(src) {
                *a += v * wt;
            }
        }
        for (d, &a) in dst_row.iter_mut().zip(&acc) {
            *d = a.round().clamp(0.0, 255.0) as u8;
        }
    }
    crate::scratch::give_f32(tmp);
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(width, height))
}

/// Blending weights along one tile axis: a tent that is highest in the middle, so tile borders
/// (where the model sees least context) count least, and never zero so a pixel seen by a single
/// tile still gets a value.
pub fn tent(n: u32) -> Vec<f32> {
    let half = n as f32 / 2.0;
    (0..n)
        .map(|i| {
            let d = (i as f32 + 0.5).min(n as f32 - i as f32 - 0.5);
            (d / half).max(1e-3)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_axis_with_at_least_the_overlap() {
        for (len, tile, overlap) in [
            (4000, 256, 32),
            (2250, 256, 32),
            (300, 256, 32),
            (256, 256, 32),
            (100, 256, 32),
            (513, 256, 0),
        ] {
            let xs = axis_positions(len, tile, overlap);
            assert_eq!(xs[0], 0);
            if len >= tile {
                assert_eq!(xs.last().unwrap() + tile, len, "{len}");
            }
            for pair in xs.windows(2) {
                assert!(pair[0] + tile >= pair[1] + overlap, "{len}: {pair:?}");
                assert!(pair[1] > pair[0]);
            }
        }
        assert_eq!(axis_positions(4000, 256, 32).len(), 18);
    }

    #[test]
    fn downsampling_matches_the_image_crate_and_keeps_flat_areas_flat() {
        let img = RgbImage::from_fn(301, 203, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8])
        });
        let ours = downsample(&img, 150, 101);
        let theirs = image::imageops::resize(&img, 150, 101, image::imageops::FilterType::Triangle);
        // Same filter family; allow small differences from edge handling and rounding.
        let mean_diff: f64 = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .sum::<f64>()
            / ours.as_raw().len() as f64;
        assert!(mean_diff < 2.0, "{mean_diff}");
        let flat = RgbImage::from_pixel(97, 61, image::Rgb([10, 200, 77]));
        assert!(downsample(&flat, 31, 20)
            .pixels()
            .all(|p| p.0 == [10, 200, 77]));
    }

    #[test]
    fn roi_overlap_cases() {
        let square = vec![[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]];
        assert!(rect_touches_polygon([0.0, 0.0, 15.0, 15.0], &square)); // vertex inside rect
        assert!(rect_touches_polygon([12.0, 12.0, 14.0, 14.0], &square)); // rect inside polygon
        assert!(!rect_touches_polygon([30.0, 0.0, 40.0, 40.0], &square));
        let sliver = vec![[-5.0, 5.0], [50.0, 6.0], [50.0, 7.0], [-5.0, 6.0]];
        assert!(rect_touches_polygon([10.0, 0.0, 20.0, 20.0], &sliver)); // edges cross only
    }

    fn crack_manifest() -> Manifest {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/crack/crack-unet.toml"
        ))
        .unwrap();
        Manifest::parse(&text).unwrap()
    }

    fn square(x0: f64, y0: f64, side: f64) -> Vec<[f64; 2]> {
        vec![
            [x0, y0],
            [x0 + side, y0],
            [x0 + side, y0 + side],
            [x0, y0 + side],
        ]
    }

    /// Whether every pixel of `r` lies in some tile of `plan` (photo scale 1).
    fn covered(plan: &TilePlan, r: [f64; 4]) -> bool {
        let (tw, th) = (plan.tile_w as f64, plan.tile_h as f64);
        let mut y = r[1];
        while y < r[3] {
            let mut x = r[0];
            while x < r[2] {
                if !plan.tiles.iter().any(|t| {
                    let (tx, ty) = (t.x as f64, t.y as f64);
                    x >= tx && x < tx + tw && y >= ty && y < ty + th
                }) {
                    return false;
                }
                x += 1.0;
            }
            y += 1.0;
        }
        true
    }

    #[test]
    fn tiles_placed_on_small_windows_are_fewer_and_cover_them() {
        let m = crack_manifest();
        // A 200 px window straddling four grid tiles of a 4000 x 2250 photo (GSD in range).
        let w = square(200.0, 200.0, 200.0);
        let grid = TilePlan::new(4000, 2250, &m, Some(17.0), Some(std::slice::from_ref(&w)));
        assert_eq!(grid.tiles.len(), 4);
        let placed = TilePlan::covering(4000, 2250, &m, Some(17.0), std::slice::from_ref(&w));
        assert_eq!(placed.tiles.len(), 1);
        assert!(covered(&placed, [200.0, 200.0, 400.0, 400.0]));
        assert_eq!(placed.tiles_total, grid.tiles_total);
        assert_eq!(placed.tiles_skipped, grid.tiles_total - 1);
        // At the photo's corner the tile moves inside the photo.
        let corner = square(3900.0, 2150.0, 100.0);
        let p = TilePlan::covering(4000, 2250, &m, Some(17.0), std::slice::from_ref(&corner));
        assert_eq!(p.tiles, vec![Tile { x: 3744, y: 1994 }]);
        // Windows that touch are one cluster: 200 + 200 px wide needs two tiles across.
        let two = [w.clone(), square(400.0, 200.0, 200.0)];
        let p = TilePlan::covering(4000, 2250, &m, Some(17.0), &two);
        assert_eq!(p.tiles.len(), 2);
        assert!(covered(&p, [200.0, 200.0, 600.0, 400.0]));
        // Many small pieces close together: the grid's tiles when they are fewer.
        let pieces: Vec<Vec<[f64; 2]>> = (0..6)
            .flat_map(|i| {
                (0..6).map(move |j| square(10.0 + 70.0 * i as f64, 10.0 + 70.0 * j as f64, 20.0))
            })
            .collect();
        let grid = TilePlan::new(4000, 2250, &m, Some(17.0), Some(&pieces));
        let p = TilePlan::covering(4000, 2250, &m, Some(17.0), &pieces);
        assert!(p.tiles.len() <= grid.tiles.len());
        for piece in &pieces {
            assert!(covered(
                &p,
                [piece[0][0], piece[0][1], piece[2][0], piece[2][1]]
            ));
        }
    }
}
