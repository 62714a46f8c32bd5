//! Vegetation without a register: a per-pixel excess-green rule with a texture check, so
//! road and roof models are not run over (or believed on) trees and lawns.
//!
//! A pixel is green when its excess green `2G - R - B` (0-255 channels) is above
//! [`VegetationRule::exg_min`]: grass and lit leaves score 30-120, grey asphalt, concrete
//! and roofs -10 to 10, bluish shade on asphalt below 0. The photo is cut into square blocks;
//! a block is vegetation when at least [`VegetationRule::green_share`] of its pixels are
//! green, or when it is partly green ([`VegetationRule::textured_green_share`]) *and*
//! strongly textured (luminance standard deviation above [`VegetationRule::texture_std`]):
//! a tree canopy, whose deep shadows are dark rather than green. A detection is on
//! vegetation when most of its box's blocks are; a tile is skipped when none of its blocks
//! is anything else.
//!
//! Measured on the real Brighton flight (18 photos, 4000x2250, no register): block maps of
//! DJI_0018 and DJI_0026 put the asphalt (also in tree shadow, which is blue, not green),
//! the gravel verge and the parked cars outside vegetation, and lawn and canopy inside;
//! boulders on the lawn are single non-vegetation blocks, so a detection's box around one
//! is mostly vegetation. Over the flight, 1/3 of the tiles were skipped and 57,719 of the
//! 64,269 detections left (59,352 of them the roof model's) dropped; findings fell from
//! 5,764 (before this rule and bounded merging) to 2,172, and to 816 with the evidence
//! rules. Moss on a roof is green too: without a register it is dropped with the lawns;
//! give a register to inspect roofs.

use image::RgbImage;

/// Thresholds of the rule (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VegetationRule {
    /// Block side, pixels of the photo.
    pub block_px: u32,
    pub exg_min: i32,
    pub green_share: f64,
    pub textured_green_share: f64,
    pub texture_std: f64,
    /// Share of a detection's box on vegetation blocks above which it is dropped.
    pub drop_share: f64,
}

impl Default for VegetationRule {
    fn default() -> Self {
        VegetationRule {
            block_px: 32,
            exg_min: 20,
            green_share: 0.5,
            textured_green_share: 0.25,
            texture_std: 28.0,
            drop_share: 0.5,
        }
    }
}

/// Which blocks of one photo are vegetation.
#[derive(Debug, Clone)]
pub struct VegetationMask {
    block: u32,
    cols: u32,
    rows: u32,
    veg: Vec<bool>,
}

impl VegetationMask {
    /// Classifies every block of `img`.
    pub fn new(img: &RgbImage, rule: &VegetationRule) -> VegetationMask {
        let b = rule.block_px.max(1);
        let (w, h) = img.dimensions();
        let (cols, rows) = (w.div_ceil(b), h.div_ceil(b));
        let mut veg = Vec::with_capacity((cols * rows) as usize);
        for by in 0..rows {
            for bx in 0..cols {
                let (x0, y0) = (bx * b, by * b);
                let (x1, y1) = ((x0 + b).min(w), (y0 + b).min(h));
                let (mut n, mut green, mut s, mut s2) = (0u32, 0u32, 0.0f64, 0.0f64);
                for y in y0..y1 {
                    for x in x0..x1 {
                        let p = img.get_pixel(x, y).0;
                        let (r, g, bl) = (p[0] as i32, p[1] as i32, p[2] as i32);
                        if 2 * g - r - bl > rule.exg_min {
                            green += 1;
                        }
                        let l = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * bl as f64;
                        s += l;
                        s2 += l * l;
                        n += 1;
                    }
                }
                let n = n.max(1) as f64;
                let share = green as f64 / n;
                let std = (s2 / n - (s / n).powi(2)).max(0.0).sqrt();
                veg.push(
                    share >= rule.green_share
                        || (share >= rule.textured_green_share && std > rule.texture_std),
                );
            }
        }
        VegetationMask {
            block: b,
            cols,
            rows,
            veg,
        }
    }

    fn blocks(&self, bbox: [f64; 4]) -> impl Iterator<Item = bool> + '_ {
        let b = self.block as f64;
        let cx = |v: f64| ((v / b).floor().max(0.0) as u32).min(self.cols.saturating_sub(1));
        let cy = |v: f64| ((v / b).floor().max(0.0) as u32).min(self.rows.saturating_sub(1));
        let (x0, x1, y0, y1) = (cx(bbox[0]), cx(bbox[2]), cy(bbox[1]), cy(bbox[3]));
        (y0..=y1).flat_map(move |y| (x0..=x1).map(move |x| self.veg[(y * self.cols + x) as usize]))
    }

    /// Share of the blocks under a pixel box `[x0, y0, x1, y1]` that are vegetation.
    pub fn share(&self, bbox: [f64; 4]) -> f64 {
        if self.veg.is_empty() {
            return 0.0;
        }
        let (mut n, mut v) = (0usize, 0usize);
        for is_veg in self.blocks(bbox) {
            n += 1;
            v += is_veg as usize;
        }
        v as f64 / n.max(1) as f64
    }

    /// Share of the whole photo that is vegetation.
    pub fn photo_share(&self) -> f64 {
        self.veg.iter().filter(|v| **v).count() as f64 / self.veg.len().max(1) as f64
    }

    /// Regions of interest (photo pixels): runs of non-vegetation blocks along each block
    /// row, so tiles wholly on vegetation are skipped.
    pub fn roi(&self) -> Vec<Vec<[f64; 2]>> {
        let b = self.block as f64;
        let mut out = Vec::new();
        for y in 0..self.rows {
            let mut x = 0;
            while x < self.cols {
                if self.veg[(y * self.cols + x) as usize] {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.cols && !self.veg[(y * self.cols + x) as usize] {
                    x += 1;
                }
                let (x0, x1) = (start as f64 * b, x as f64 * b);
                let (y0, y1) = (y as f64 * b, (y + 1) as f64 * b);
                out.push(vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lawn_and_canopy_are_vegetation_grey_asphalt_is_not() {
        // Left half lawn green, right half asphalt grey with a dark crack line.
        let mut img = RgbImage::from_fn(128, 64, |x, y| {
            if x < 64 {
                image::Rgb([70, 140, 50])
            } else if y == 30 {
                image::Rgb([40, 40, 40])
            } else {
                image::Rgb([120, 120, 125])
            }
        });
        let rule = VegetationRule::default();
        let m = VegetationMask::new(&img, &rule);
        assert_eq!(m.share([0.0, 0.0, 63.0, 63.0]), 1.0);
        assert_eq!(m.share([64.0, 0.0, 127.0, 63.0]), 0.0);
        assert!((m.photo_share() - 0.5).abs() < 1e-9);
        assert_eq!(m.roi().len(), 2, "one run of asphalt per block row");
        // A canopy: a checkerboard of lit leaves and black shade (40 % green, textured).
        for y in 0..64 {
            for x in 64..128 {
                let lit = ((x / 4) + (y / 4)) % 5 < 2;
                img.put_pixel(
                    x,
                    y,
                    image::Rgb(if lit { [60, 130, 40] } else { [10, 12, 10] }),
                );
            }
        }
        let m = VegetationMask::new(&img, &rule);
        assert_eq!(m.share([64.0, 0.0, 127.0, 63.0]), 1.0);
        assert!(m.roi().is_empty());
    }
}
