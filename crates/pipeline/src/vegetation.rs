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
//!
//! **Paved ground.** Road defects lie on pavement, and pavement seen from a drone is smooth:
//! a block is *paved-like* when it is not vegetation and the interquartile range of its
//! luminance is at most [`VegetationRule::rough_iqr`] (a thin dark crack covers well under a
//! quarter of a block, so it does not make the block rough; gravel, riprap, boulders and
//! branches do). Without a register, a road-class detection is dropped (reason `unpaved`)
//! when fewer than [`VegetationRule::min_paved_share`] of the blocks around it that are not
//! vegetation (its box widened by [`VegetationRule::paved_context_blocks`] blocks) are
//! paved-like. Chosen on
//! the 30 random Brighton findings of 2026-12-04 (the README's sample: both real cracks kept
//! with 0.96 and 0.67 of their surroundings paved-like; rocks, gravel, plants, boulders and
//! most shadows below 0.6) and checked on a second draw after the change. Smooth water is
//! paved-like by this rule; rocks under calm water still pass.
//! Road models run only near *seeds*, paved-like blocks whose own surroundings pass this
//! test, so not around a lone smooth block amid rough ground
//! ([`VegetationMask::road_roi`]).
//!
//! **A crack lies in pavement, not along an edge.** A thin road defect (one with a skeleton
//! length, a crack) barely changes the blocks it crosses, so the blocks under its own box
//! stay paved-like; where fewer than [`VegetationRule::min_box_paved_share`] of them are, the
//! line the model traced is an edge of something else (a car's body or tail light, a tree
//! shadow's border, a branch, the joint of the asphalt against a verge or gutter) and the
//! detection is dropped without a register (reason `not_on_pavement`). Measured on the 56
//! judged Brighton findings of 2026-12-04 (`benches/results/brighton-all56-unpaved-2026-12-04.csv`):
//! every real crack has at least half of its box on paved-like blocks (22 of 22, three at
//! exactly one half), 12 of the 23 false findings have less (10 of them none). Through the
//! product the flight went from 56 findings (22 real, 11 unclear, 23 false) to 51 (27, 8, 16):
//! fewer edge pieces also let crack networks pass the crack rule's `max_pieces_per_view`
//! (`benches/results/operating-points/onpavement-2026-12-04.md`). `min_paved_share = 0` in
//! the evidence rules turns this rule off with the rough-ground one.

use besikta_core::{AssetKind, Detection};
use image::RgbImage;

/// The `q`-th quartile (1 or 3) of a 256-bin histogram of `n` values.
fn quantile(hist: &[u32; 256], n: u32, q: u32) -> u8 {
    let want = (n * q).div_ceil(4).max(1);
    let mut seen = 0;
    for (v, &c) in hist.iter().enumerate() {
        seen += c;
        if seen >= want {
            return v as u8;
        }
    }
    255
}

/// Whether a model's classes (their asset kinds) are all road defects: such a model runs
/// only near paved-like ground without a register ([`VegetationMask::roi_for`]).
fn roads_only(kinds: &[AssetKind]) -> bool {
    !kinds.is_empty() && kinds.iter().all(|k| *k == AssetKind::Road)
}

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
    /// Luminance interquartile range (0-255) above which a block is rough, not paved-like.
    pub rough_iqr: u8,
    /// Blocks around a road defect's box that are its surroundings.
    pub paved_context_blocks: u32,
    /// Share of paved-like blocks in those surroundings below which it is dropped.
    pub min_paved_share: f64,
    /// Share of paved-like blocks under a thin road defect's own box below which it is
    /// dropped (applied when [`VegetationRule::judges_pavement`]).
    pub min_box_paved_share: f64,
}

impl VegetationRule {
    /// The default rule with the evidence rules' `min_paved_share` when they set one.
    pub fn from_rules(rules: &besikta_report::EvidenceRules) -> VegetationRule {
        let d = VegetationRule::default();
        VegetationRule {
            min_paved_share: rules.min_paved_share.unwrap_or(d.min_paved_share),
            ..d
        }
    }

    /// Whether road defects are judged by the ground around them (`min_paved_share > 0`).
    pub fn judges_pavement(&self) -> bool {
        self.min_paved_share > 0.0
    }
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
            rough_iqr: 12,
            paved_context_blocks: 4,
            min_paved_share: 0.6,
            min_box_paved_share: 0.5,
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
    /// Not vegetation and smooth (see the module docs).
    paved: Vec<bool>,
}

impl VegetationMask {
    /// Classifies every block of `img`.
    pub fn new(img: &RgbImage, rule: &VegetationRule) -> VegetationMask {
        let b = rule.block_px.max(1);
        let (w, h) = img.dimensions();
        let (cols, rows) = (w.div_ceil(b), h.div_ceil(b));
        let mut veg = Vec::with_capacity((cols * rows) as usize);
        let mut paved = Vec::with_capacity((cols * rows) as usize);
        let mut hist = [0u32; 256];
        // The three luminance terms per 8-bit value: the same products as computing them
        // per pixel, so every sum below is bit for bit what it was.
        let lut = |k: f64| std::array::from_fn::<f64, 256, _>(|v| k * v as f64);
        let (lr, lg, lb) = (lut(0.299), lut(0.587), lut(0.114));
        let raw: &[u8] = img.as_raw();
        let stride = w as usize * 3;
        for by in 0..rows {
            for bx in 0..cols {
                let (x0, y0) = (bx * b, by * b);
                let (x1, y1) = ((x0 + b).min(w), (y0 + b).min(h));
                let (mut n, mut green, mut s, mut s2) = (0u32, 0u32, 0.0f64, 0.0f64);
                hist.fill(0);
                for y in y0..y1 {
                    let row =
                        &raw[y as usize * stride + x0 as usize * 3..][..(x1 - x0) as usize * 3];
                    for p in row.chunks_exact(3) {
                        let (r, g, bl) = (p[0] as i32, p[1] as i32, p[2] as i32);
                        if 2 * g - r - bl > rule.exg_min {
                            green += 1;
                        }
                        let l = lr[p[0] as usize] + lg[p[1] as usize] + lb[p[2] as usize];
                        hist[(l as usize).min(255)] += 1;
                        s += l;
                        s2 += l * l;
                        n += 1;
                    }
                }
                let iqr = quantile(&hist, n, 3).saturating_sub(quantile(&hist, n, 1));
                let n = n.max(1) as f64;
                let share = green as f64 / n;
                let std = (s2 / n - (s / n).powi(2)).max(0.0).sqrt();
                let is_veg = share >= rule.green_share
                    || (share >= rule.textured_green_share && std > rule.texture_std);
                veg.push(is_veg);
                paved.push(!is_veg && iqr <= rule.rough_iqr);
            }
        }
        VegetationMask {
            block: b,
            cols,
            rows,
            veg,
            paved,
        }
    }

    /// Why a detection is dropped without a register: `vegetation` when most of its box is,
    /// `unpaved` when it is a road defect (a class without an asset kind counts as one, as
    /// for its observation) whose surroundings are not mostly paved-like, `not_on_pavement`
    /// when it is a thin road defect whose own box is not mostly paved-like.
    pub fn drop_reason(&self, rule: &VegetationRule, d: &Detection) -> Option<&'static str> {
        let road =
            rule.judges_pavement() && d.asset_kind.unwrap_or(AssetKind::Road) == AssetKind::Road;
        if self.share(d.bbox) >= rule.drop_share {
            Some("vegetation")
        } else if road && self.paved_share(d.bbox, rule.paved_context_blocks) < rule.min_paved_share
        {
            Some("unpaved")
        } else if road
            && d.length_px.is_some()
            && self.box_paved_share(d.bbox) < rule.min_box_paved_share
        {
            Some("not_on_pavement")
        } else {
            None
        }
    }

    /// Share of the blocks under a pixel box that are paved-like (vegetation counts as not).
    pub fn box_paved_share(&self, bbox: [f64; 4]) -> f64 {
        self.box_share(bbox, &self.paved, 1.0)
    }

    /// Share of paved-like blocks among the blocks that are not vegetation under a pixel box
    /// widened by `context` blocks each side (a pothole at a road's edge beside a lawn has
    /// smooth road around it; lawns are the vegetation rule's business).
    pub fn paved_share(&self, bbox: [f64; 4], context: u32) -> f64 {
        if self.paved.is_empty() {
            return 1.0;
        }
        let b = self.block as f64;
        let (c0, r0) = (bbox[0] / b, bbox[1] / b);
        let (c1, r1) = (bbox[2] / b, bbox[3] / b);
        let lo = |v: f64| (v.floor().max(0.0) as u32).saturating_sub(context);
        let hi = |v: f64, n: u32| ((v.floor().max(0.0) as u32) + context).min(n - 1);
        let (mut n, mut p) = (0usize, 0usize);
        for y in lo(r0).min(self.rows - 1)..=hi(r1, self.rows) {
            for x in lo(c0).min(self.cols - 1)..=hi(c1, self.cols) {
                let i = (y * self.cols + x) as usize;
                n += !self.veg[i] as usize;
                p += self.paved[i] as usize;
            }
        }
        p as f64 / n.max(1) as f64
    }

    /// Indices of the blocks under a pixel box `[x0, y0, x1, y1]`.
    fn block_indices(&self, bbox: [f64; 4]) -> impl Iterator<Item = usize> + '_ {
        let b = self.block as f64;
        let cx = |v: f64| ((v / b).floor().max(0.0) as u32).min(self.cols.saturating_sub(1));
        let cy = |v: f64| ((v / b).floor().max(0.0) as u32).min(self.rows.saturating_sub(1));
        let (x0, x1, y0, y1) = (cx(bbox[0]), cx(bbox[2]), cy(bbox[1]), cy(bbox[3]));
        let cols = self.cols;
        (y0..=y1).flat_map(move |y| (x0..=x1).map(move |x| (y * cols + x) as usize))
    }

    /// Share of the blocks under a pixel box for which `of` (per block) holds; `empty` for a
    /// mask of no blocks.
    fn box_share(&self, bbox: [f64; 4], of: &[bool], empty: f64) -> f64 {
        if of.is_empty() {
            return empty;
        }
        let (mut n, mut k) = (0usize, 0usize);
        for i in self.block_indices(bbox) {
            n += 1;
            k += of[i] as usize;
        }
        k as f64 / n.max(1) as f64
    }

    /// Share of the blocks under a pixel box `[x0, y0, x1, y1]` that are vegetation.
    pub fn share(&self, bbox: [f64; 4]) -> f64 {
        self.box_share(bbox, &self.veg, 0.0)
    }

    /// Share of the whole photo that is vegetation.
    pub fn photo_share(&self) -> f64 {
        self.veg.iter().filter(|v| **v).count() as f64 / self.veg.len().max(1) as f64
    }

    /// Regions of interest (photo pixels): runs of non-vegetation blocks along each block
    /// row, so tiles wholly on vegetation are skipped.
    pub fn roi(&self) -> Vec<Vec<[f64; 2]>> {
        self.runs(|i| !self.veg[i])
    }

    /// Regions of interest of a model with classes of `kinds` without a register: near
    /// paved-like ground for a road-only model when `rule` judges pavement
    /// ([`VegetationMask::road_roi`]), else off vegetation ([`VegetationMask::roi`]).
    pub fn roi_for(&self, rule: &VegetationRule, kinds: &[AssetKind]) -> Vec<Vec<[f64; 2]>> {
        if roads_only(kinds) && rule.judges_pavement() {
            self.road_roi(rule.paved_context_blocks, rule.min_paved_share)
        } else {
            self.roi()
        }
    }

    /// Regions of interest of a model that finds road defects only: the blocks that are not
    /// vegetation and lie within `context` blocks of a *seed*, a paved-like block at least
    /// `seed_share` of whose own surroundings (`context` blocks each side, vegetation not
    /// counted) are paved-like: the test a one-block road defect there would have to pass
    /// ([`VegetationMask::paved_share`]). A road defect whose box is farther than that from
    /// every paved-like block has none around it and is dropped as `unpaved`
    /// ([`VegetationMask::drop_reason`]), so tiles wholly on such ground (gravel, riprap,
    /// boulders) are not run; nor are tiles around a lone smooth block amid such ground (a
    /// flat rock, a patch of calm water between boulders), where what a road model finds is
    /// dropped as `unpaved` too. `seed_share = 0` seeds every paved-like block. Measured on
    /// Brighton (2026-12-06, `benches/results/road-roi-2026-12-06-s43.md`): with the
    /// evidence rules' `min_paved_share` (0.6) as `seed_share`, crack tiles 1,156 -> 924
    /// and pothole tiles 1,369 -> 1,101, the same 40 findings in the same places.
    pub fn road_roi(&self, context: u32, seed_share: f64) -> Vec<Vec<[f64; 2]>> {
        let (cols, rows, k) = (self.cols as usize, self.rows as usize, context as usize);
        let b = self.block as f64;
        let seed: Vec<bool> = (0..self.paved.len())
            .map(|i| {
                let (x, y) = ((i % cols) as f64 * b, (i / cols) as f64 * b);
                self.paved[i]
                    && (seed_share <= 0.0 || self.paved_share([x, y, x, y], context) >= seed_share)
            })
            .collect();
        // Chebyshev dilation of the seed blocks: along rows, then along columns.
        let mut along = vec![false; self.paved.len()];
        for y in 0..rows {
            for x in 0..cols {
                let (lo, hi) = (x.saturating_sub(k), (x + k).min(cols - 1));
                along[y * cols + x] = (lo..=hi).any(|xx| seed[y * cols + xx]);
            }
        }
        let mut near = vec![false; self.paved.len()];
        for y in 0..rows {
            let (lo, hi) = (y.saturating_sub(k), (y + k).min(rows - 1));
            for x in 0..cols {
                near[y * cols + x] = (lo..=hi).any(|yy| along[yy * cols + x]);
            }
        }
        self.runs(|i| !self.veg[i] && near[i])
    }

    /// Runs of the blocks for which `keep(index)` holds along each block row, as rectangles.
    fn runs(&self, keep: impl Fn(usize) -> bool) -> Vec<Vec<[f64; 2]>> {
        let b = self.block as f64;
        let mut out = Vec::new();
        for y in 0..self.rows {
            let mut x = 0;
            while x < self.cols {
                if !keep((y * self.cols + x) as usize) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.cols && keep((y * self.cols + x) as usize) {
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

    fn detection(kind: AssetKind, bbox: [f64; 4]) -> Detection {
        Detection {
            class: "crack".into(),
            asset_kind: Some(kind),
            confidence: 0.9,
            bbox,
            polygon: None,
            area_px: 10.0,
            length_px: None,
        }
    }

    #[test]
    fn road_defects_amid_rough_ground_are_unpaved_a_crack_in_asphalt_is_not() {
        // 512 x 256: left half asphalt (grey, faint noise) with a thin dark crack, right
        // half rocks and gravel (grey blotches, strongly varying luminance).
        let img = RgbImage::from_fn(512, 256, |x, y| {
            if x < 256 {
                if y == 128 || y == 129 {
                    image::Rgb([60, 60, 62])
                } else {
                    let n = ((x * 7 + y * 13) % 5) as u8;
                    image::Rgb([120 + n, 120 + n, 124 + n])
                }
            } else {
                let v = ((x / 6 + y / 5) % 4) as u8 * 45 + 40;
                image::Rgb([v, v, v.saturating_sub(5)])
            }
        });
        let rule = VegetationRule::default();
        let m = VegetationMask::new(&img, &rule);
        let crack = detection(AssetKind::Road, [40.0, 126.0, 90.0, 131.0]);
        assert!(m.paved_share(crack.bbox, rule.paved_context_blocks) > 0.9);
        assert_eq!(m.drop_reason(&rule, &crack), None);
        let on_rocks = detection(AssetKind::Road, [400.0, 120.0, 420.0, 140.0]);
        assert!(m.paved_share(on_rocks.bbox, rule.paved_context_blocks) < 0.1);
        assert_eq!(m.drop_reason(&rule, &on_rocks), Some("unpaved"));
        // Road models are not run over the rocks farther than four blocks from the asphalt:
        // blocks 0-7 are asphalt (paved), 8-15 rocks; the road ROI reaches column 11.
        let reach = m
            .road_roi(rule.paved_context_blocks, 0.0)
            .iter()
            .flatten()
            .map(|p| p[0])
            .fold(0.0, f64::max);
        assert_eq!(reach, 12.0 * 32.0);
        // With the rule's seeds, the asphalt's last column (7) is not one: of its
        // surroundings (columns 3-11) 5 of 9 are paved-like, under 0.6, so a one-block road
        // defect there is dropped as unpaved; the ROI reaches from column 6 to column 10,
        // still over the whole asphalt.
        let reach = m
            .roi_for(&rule, &[AssetKind::Road])
            .iter()
            .flatten()
            .map(|p| p[0])
            .fold(0.0, f64::max);
        assert_eq!(reach, 11.0 * 32.0);
        let edge = detection(AssetKind::Road, [230.0, 100.0, 250.0, 120.0]);
        assert_eq!(m.drop_reason(&rule, &edge), Some("unpaved"));
        assert_eq!(
            m.roi().iter().flatten().map(|p| p[0]).fold(0.0, f64::max),
            512.0
        );
        // `min_paved_share = 0` in the evidence rules turns the rule off.
        let off = VegetationRule::from_rules(&besikta_report::EvidenceRules {
            min_paved_share: Some(0.0),
            ..besikta_report::EvidenceRules::default()
        });
        assert!(!off.judges_pavement());
        assert_eq!(m.drop_reason(&off, &on_rocks), None);
        assert_eq!(
            VegetationRule::from_rules(&besikta_report::EvidenceRules::default()),
            rule
        );
        // Roof classes are not judged by the ground around them.
        let roof = detection(AssetKind::Roof, on_rocks.bbox);
        assert_eq!(m.drop_reason(&rule, &roof), None);
    }

    #[test]
    fn a_crack_along_the_edge_of_a_car_is_not_on_pavement_a_crack_in_asphalt_is() {
        // 512 x 256 asphalt (faint noise) with a thin dark crack at y = 200 and a pale car
        // (x 128-224, y 80-144) whose upper and lower edges split the blocks they cross.
        let img = RgbImage::from_fn(512, 256, |x, y| {
            if (128..224).contains(&x) && (80..144).contains(&y) {
                image::Rgb([220, 220, 225])
            } else if y == 200 || y == 201 {
                image::Rgb([60, 60, 62])
            } else {
                let n = ((x * 7 + y * 13) % 5) as u8;
                image::Rgb([120 + n, 120 + n, 124 + n])
            }
        });
        let rule = VegetationRule::default();
        let m = VegetationMask::new(&img, &rule);
        let thin = |bbox| Detection {
            length_px: Some(50.0),
            ..detection(AssetKind::Road, bbox)
        };
        let crack = thin([300.0, 198.0, 350.0, 203.0]);
        assert_eq!(m.box_paved_share(crack.bbox), 1.0);
        assert_eq!(m.drop_reason(&rule, &crack), None);
        // The car's upper edge: its surroundings are smooth (asphalt, the car's roof), its
        // own blocks are all split between asphalt and car.
        let edge = thin([150.0, 76.0, 200.0, 84.0]);
        assert!(m.paved_share(edge.bbox, rule.paved_context_blocks) >= rule.min_paved_share);
        assert_eq!(m.box_paved_share(edge.bbox), 0.0);
        assert_eq!(m.drop_reason(&rule, &edge), Some("not_on_pavement"));
        // A blob (a pothole) there is not judged by its own box, nor is anything when the
        // evidence rules turn the pavement rules off.
        assert_eq!(
            m.drop_reason(&rule, &detection(AssetKind::Road, edge.bbox)),
            None
        );
        let off = VegetationRule {
            min_paved_share: 0.0,
            ..rule
        };
        assert_eq!(m.drop_reason(&off, &edge), None);
    }

    #[test]
    fn a_pothole_at_the_edge_of_a_road_beside_a_lawn_keeps_its_paved_surroundings() {
        // Left half lawn, right half asphalt with a dark rough pothole at the lawn's edge.
        let img = RgbImage::from_fn(512, 256, |x, y| {
            if x < 256 {
                image::Rgb([70, 140, 50])
            } else if (260..300).contains(&x) && (100..140).contains(&y) {
                let v = ((x + y) % 3) as u8 * 40 + 20;
                image::Rgb([v, v, v])
            } else {
                image::Rgb([120, 120, 125])
            }
        });
        let rule = VegetationRule::default();
        let m = VegetationMask::new(&img, &rule);
        let pothole = detection(AssetKind::Road, [260.0, 100.0, 300.0, 140.0]);
        assert!(m.share(pothole.bbox) < rule.drop_share);
        assert_eq!(m.drop_reason(&rule, &pothole), None);
    }

    #[test]
    fn a_lone_smooth_block_amid_rocks_does_not_bring_road_models() {
        // 512 x 256 of rocks (strongly varying luminance) with one smooth block (a flat rock
        // or calm water) at block column 8, row 4.
        let img = RgbImage::from_fn(512, 256, |x, y| {
            if (256..288).contains(&x) && (128..160).contains(&y) {
                image::Rgb([110, 112, 115])
            } else {
                let v = ((x / 6 + y / 5) % 4) as u8 * 45 + 40;
                image::Rgb([v, v, v.saturating_sub(5)])
            }
        });
        let rule = VegetationRule::default();
        let m = VegetationMask::new(&img, &rule);
        assert_eq!(m.box_paved_share([260.0, 130.0, 280.0, 150.0]), 1.0);
        // Seeded by every paved-like block, road models would run 9 x 8 blocks around it (the
        // photo is 8 blocks high); its surroundings are 1 of 72 paved-like, so with the
        // rule's seeds they do not run.
        let all: f64 = m
            .road_roi(rule.paved_context_blocks, 0.0)
            .iter()
            .map(|p| (p[1][0] - p[0][0]) * (p[2][1] - p[1][1]))
            .sum();
        assert_eq!(all, 9.0 * 8.0 * 32.0 * 32.0);
        assert!(m.roi_for(&rule, &[AssetKind::Road]).is_empty());
        // What a road model found there would be dropped as unpaved anyway.
        let d = detection(AssetKind::Road, [262.0, 132.0, 282.0, 152.0]);
        assert_eq!(m.drop_reason(&rule, &d), Some("unpaved"));
        // A roof model still runs there (off vegetation).
        assert!(!m.roi_for(&rule, &[AssetKind::Roof]).is_empty());
    }
}
