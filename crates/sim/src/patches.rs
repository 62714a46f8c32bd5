//! Real crack photos pasted into the ground at their true scale: image/mask pairs such as
//! DeepCrack's (`NAME.jpg` with `NAME_mask.png`, mask > 127 = crack), about 1 mm per pixel.
//!
//! Only the crack pixels are pasted (the photo's own pavement would clash with the
//! texture), splatted into texture cells with their coverage, so a 3 mm crack seen at 2 cm
//! per cell is as faint as it would be in a real photo. The truth line is the principal
//! axis of the pasted mask pixels on the ground.
//!
//! A crack is a shadowed gap: what makes it visible is how much darker it is than the
//! pavement around it. By default ([`Contrast::Relative`]) each crack pixel darkens the
//! simulated ground by its ratio to its own photo's pavement (the mean colour of the photo's
//! non-crack pixels). Pasting the crack pixels' own colours ([`Contrast::Absolute`], the only
//! way before 2026-12-05) puts a crack from a bright concrete photo (pavement ~130 grey,
//! crack ~100) onto simulated asphalt of ~96 grey: 28 of the 88 held-out crack photos have
//! crack pixels of 90 grey or lighter, so on asphalt they vanish or turn lighter than the
//! road. Each pasted crack's truth records the photo and how much darker its cells became
//! (`patch`, `patch_contrast`).

use crate::defects::{Defect, DefectClass, DefectShape, Pasted};
use crate::rng::Rng;
use crate::texture::{blend, Texture};
use crate::SimError;
use std::path::Path;

/// How a pasted crack's colour is put on the simulated ground (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Contrast {
    /// Darken the ground by each crack pixel's ratio to its photo's pavement colour.
    #[default]
    Relative,
    /// Paste the crack pixels' own colours.
    Absolute,
}

impl Contrast {
    /// The mode's name, as `flight.json` and `besikta simulate --patch-contrast` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Contrast::Relative => "relative",
            Contrast::Absolute => "absolute",
        }
    }
}

/// One image/mask pair.
#[derive(Debug, Clone)]
pub struct Patch {
    pub name: String,
    pub image: image::RgbImage,
    pub mask: image::GrayImage,
}

/// Reads every `NAME_mask.png` with a `NAME.jpg` (or `.png`, `.jpeg`) beside it, by name.
pub fn load(dir: &Path) -> Result<Vec<Patch>, SimError> {
    let read_err = |p: &Path, e: String| SimError::Read {
        path: p.display().to_string(),
        message: e,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| read_err(dir, e.to_string()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix("_mask.png").map(String::from))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Some(img_path) = ["jpg", "jpeg", "png", "JPG"]
            .iter()
            .map(|ext| dir.join(format!("{name}.{ext}")))
            .find(|p| p.exists())
        else {
            continue;
        };
        let mask_path = dir.join(format!("{name}_mask.png"));
        let image = image::open(&img_path)
            .map_err(|e| read_err(&img_path, e.to_string()))?
            .to_rgb8();
        let mask = image::open(&mask_path)
            .map_err(|e| read_err(&mask_path, e.to_string()))?
            .to_luma8();
        if image.dimensions() != mask.dimensions() {
            return Err(read_err(
                &mask_path,
                format!(
                    "mask is {:?} but the photo is {:?}",
                    mask.dimensions(),
                    image.dimensions()
                ),
            ));
        }
        out.push(Patch { name, image, mask });
    }
    if out.is_empty() {
        return Err(read_err(
            dir,
            "no image/mask pairs (NAME.jpg with NAME_mask.png) in the folder".into(),
        ));
    }
    Ok(out)
}

/// Replaces every planted crack by a real crack patch: pastes it into the texture at
/// `mm_per_px` ground scale, turned along the planted crack, and rewrites the defect's
/// truth line to the pasted crack's principal axis.
pub fn paste_cracks(
    tex: &mut Texture,
    defects: &mut [Defect],
    patches: &[Patch],
    mm_per_px: f64,
    contrast: Contrast,
) {
    let scale = mm_per_px / 1000.0;
    let cell_px = (tex.cell_m / scale).powi(2);
    for d in defects.iter_mut().filter(|d| d.class == DefectClass::Crack) {
        let DefectShape::Line { points, .. } = &d.shape else {
            continue;
        };
        let mut rng = Rng::new(d.seed);
        let patch = &patches[rng.below(patches.len())];
        let (a, b) = (points[0], points[points.len() - 1]);
        let heading = (b[1] - a[1]).atan2(b[0] - a[0]);
        let (w, h) = patch.mask.dimensions();
        // The patch's own crack direction, so it is turned onto the planted one.
        let crack: Vec<(f64, f64)> = patch
            .mask
            .enumerate_pixels()
            .filter(|(_, _, m)| m.0[0] > 127)
            .map(|(x, y, _)| {
                (
                    x as f64 + 0.5 - w as f64 / 2.0,
                    h as f64 / 2.0 - y as f64 - 0.5,
                )
            })
            .collect();
        if crack.len() < 10 {
            continue;
        }
        let own = principal_angle(&crack);
        let pavement = pavement_colour(patch);
        let (s, c) = (heading - own).sin_cos();
        let to_ground = |(u, v): (f64, f64)| {
            [
                d.centre[0] + scale * (u * c - v * s),
                d.centre[1] + scale * (u * s + v * c),
            ]
        };
        // Splat crack pixels into cells: colour sums and counts.
        let mut cells: std::collections::BTreeMap<(i64, i64), ([f64; 3], f64)> = Default::default();
        let mut ground = Vec::with_capacity(crack.len());
        for (x, y, m) in patch.mask.enumerate_pixels() {
            if m.0[0] <= 127 {
                continue;
            }
            let uv = (
                x as f64 + 0.5 - w as f64 / 2.0,
                h as f64 / 2.0 - y as f64 - 0.5,
            );
            let g = to_ground(uv);
            ground.push(g);
            let col = ((g[0] - tex.x0) / tex.cell_m).floor() as i64;
            let row = ((tex.y1 - g[1]) / tex.cell_m).floor() as i64;
            let p = patch.image.get_pixel(x, y).0;
            let e = cells.entry((row, col)).or_insert(([0.0; 3], 0.0));
            for k in 0..3 {
                e.0[k] += match contrast {
                    Contrast::Absolute => p[k] as f64,
                    // The pixel's share of its pavement's colour (never lighter).
                    Contrast::Relative => (p[k] as f64 / pavement[k]).min(1.0),
                };
            }
            e.1 += 1.0;
        }
        let (mut darker, mut touched) = (0.0, 0usize);
        for ((row, col), (sum, n)) in cells {
            if row < 0 || col < 0 || row >= tex.height as i64 || col >= tex.width as i64 {
                continue;
            }
            let i = row as usize * tex.width + col as usize;
            let old = tex.pixels[i];
            let mean = match contrast {
                Contrast::Absolute => [sum[0] / n, sum[1] / n, sum[2] / n],
                Contrast::Relative => [0, 1, 2].map(|k| old[k] as f64 * sum[k] / n),
            };
            tex.pixels[i] = blend(old, mean, (n / cell_px).min(1.0) as f32);
            darker += luma(old) - luma(tex.pixels[i]);
            touched += 1;
        }
        d.pasted = Some(Pasted {
            name: patch.name.clone(),
            contrast: darker / touched.max(1) as f64,
        });
        // Truth: the principal axis through the pasted pixels, end to end.
        let (line, width) = axis_line(&ground, scale * scale);
        d.shape = DefectShape::Line {
            points: line,
            width_m: width,
        };
    }
}

/// Mean colour of a patch's pavement (its non-crack pixels), each channel at least 1.
fn pavement_colour(patch: &Patch) -> [f64; 3] {
    let (mut sum, mut n) = ([0.0; 3], 0.0);
    for (p, m) in patch.image.pixels().zip(patch.mask.pixels()) {
        if m.0[0] <= 127 {
            for (acc, v) in sum.iter_mut().zip(p.0) {
                *acc += v as f64;
            }
            n += 1.0;
        }
    }
    if n == 0.0 {
        return [255.0; 3];
    }
    sum.map(|v| (v / n).max(1.0))
}

fn luma(p: [u8; 3]) -> f64 {
    0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
}

fn principal_angle(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |s, p| (s.0 + p.0 / n, s.1 + p.1 / n));
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for p in pts {
        let (dx, dy) = (p.0 - mx, p.1 - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    0.5 * (2.0 * sxy).atan2(sxx - syy)
}

/// Two-point line along the principal axis covering the points, and the mean width
/// (area / length) given each point's area.
fn axis_line(pts: &[[f64; 2]], pixel_area: f64) -> (Vec<[f64; 2]>, f64) {
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |s, p| (s.0 + p[0] / n, s.1 + p[1] / n));
    let rel: Vec<(f64, f64)> = pts.iter().map(|p| (p[0] - mx, p[1] - my)).collect();
    let (s, c) = principal_angle(&rel).sin_cos();
    let (lo, hi) = rel
        .iter()
        .map(|p| p.0 * c + p.1 * s)
        .fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let length = (hi - lo).max(1e-6);
    (
        vec![[mx + lo * c, my + lo * s], [mx + hi * c, my + hi * s]],
        n * pixel_area / length,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_diagonal_crack_is_turned_onto_the_planted_one_at_its_scale() {
        // A 200 x 100 px patch with a 2 px wide crack along its diagonal-ish line.
        let mut mask = image::GrayImage::new(200, 100);
        let image = image::RgbImage::from_pixel(200, 100, image::Rgb([20, 20, 20]));
        for x in 0..200u32 {
            let y = 20 + x * 60 / 200;
            mask.put_pixel(x, y, image::Luma([255]));
            mask.put_pixel(x, y + 1, image::Luma([255]));
        }
        let patch = Patch {
            name: "t".into(),
            image,
            mask,
        };
        let mut tex = Texture::new(0.0, 0.0, 2.0, 2.0, 0.01);
        tex.pixels.fill([120, 120, 120]);
        let mut ds = vec![Defect {
            id: "D001".into(),
            class: DefectClass::Crack,
            asset_id: "way/1".into(),
            // Planted along +y (north).
            shape: DefectShape::Line {
                points: vec![[1.0, 0.5], [1.0, 1.5]],
                width_m: 0.05,
            },
            centre: [1.0, 1.0],
            seed: 1,
            pasted: None,
        }];
        paste_cracks(&mut tex, &mut ds, &[patch], 5.0, Contrast::Absolute);
        let DefectShape::Line { points, width_m } = &ds[0].shape else {
            panic!()
        };
        // 200 px at 5 mm: the crack is ~1.04 m long (with its slope), now running north.
        let (a, b) = (points[0], points[1]);
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        assert!((len - 1.04).abs() < 0.03, "length {len}");
        assert!((b[0] - a[0]).abs() < 0.02, "runs north: {points:?}");
        assert!((width_m - 0.01).abs() < 0.003, "2 px of 5 mm: {width_m}");
        // Cells on the crack got darker; cells away from it did not.
        assert!(tex.at(1.0, 1.0).unwrap()[0] < 100);
        assert_eq!(tex.at(1.5, 1.0).unwrap(), [120, 120, 120]);
    }

    fn one_crack_on(ground: u8, contrast: Contrast) -> (Texture, Defect) {
        // A 100 x 60 px photo of light concrete (140 grey) with a 10 px wide crack of 100
        // grey across it, pasted at 2 mm/px onto uniform ground in 1 cm cells.
        let mut image = image::RgbImage::from_pixel(100, 60, image::Rgb([140, 140, 140]));
        let mut mask = image::GrayImage::new(100, 60);
        for x in 0..100u32 {
            for y in 25..35u32 {
                image.put_pixel(x, y, image::Rgb([100, 100, 100]));
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
        let patch = Patch {
            name: "concrete".into(),
            image,
            mask,
        };
        let mut tex = Texture::new(0.0, 0.0, 1.0, 1.0, 0.01);
        tex.pixels.fill([ground; 3]);
        let mut ds = vec![Defect {
            id: "D001".into(),
            class: DefectClass::Crack,
            asset_id: "way/1".into(),
            shape: DefectShape::Line {
                points: vec![[0.3, 0.5], [0.7, 0.5]],
                width_m: 0.02,
            },
            centre: [0.5, 0.5],
            seed: 1,
            pasted: None,
        }];
        paste_cracks(&mut tex, &mut ds, &[patch], 2.0, contrast);
        (tex, ds.remove(0))
    }

    #[test]
    fn a_crack_from_light_concrete_stays_darker_than_dark_asphalt() {
        // On 96-grey asphalt the crack's own colour (100) would be lighter than the road.
        let (tex, d) = one_crack_on(96, Contrast::Absolute);
        assert!(tex.at(0.5, 0.5).unwrap()[0] >= 96);
        let p = d.pasted.unwrap();
        assert_eq!(p.name, "concrete");
        assert!(p.contrast <= 0.0, "{}", p.contrast);
        // Relative: 100 / 140 of the asphalt under it, 69 grey, 27 levels darker.
        let (tex, d) = one_crack_on(96, Contrast::Relative);
        assert_eq!(tex.at(0.5, 0.5).unwrap(), [69, 69, 69]);
        assert_eq!(tex.at(0.5, 0.9).unwrap(), [96, 96, 96]);
        let c = d.pasted.unwrap().contrast;
        assert!((c - 27.0).abs() < 1.5, "{c}");
    }
}
