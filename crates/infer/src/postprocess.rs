//! From class masks and scores to detections: connected components, outlines, skeleton length, NMS.

use crate::manifest::Manifest;
use besikta_core::Detection;
use image::GrayImage;
use imageproc::contours::{find_contours, BorderType};
use imageproc::geometry::approximate_polygon_dp;
use imageproc::point::Point;

/// Settings of segmentation post-processing.
#[derive(Debug, Clone, Copy)]
pub struct SegPostConfig {
    /// Components with fewer pixels are dropped.
    pub min_area_px: f64,
    /// Douglas-Peucker tolerance of outlines, in photo pixels.
    pub simplify_px: f64,
}

/// A horizontal run of equal class values in one row.
#[derive(Debug, Clone, Copy)]
struct Run {
    y: u32,
    x0: u32,
    x1: u32,
    class: u8,
}

/// Labels 8-connected components of equal non-zero class value, as groups of runs.
///
/// Working on runs instead of pixels keeps it to one pass over the mask and a union-find
/// over far fewer elements than pixels.
fn components(mask: &GrayImage) -> Vec<Vec<Run>> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let raw: &[u8] = mask.as_raw();
    let mut runs: Vec<Run> = Vec::new();
    let mut parent: Vec<usize> = Vec::new();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut prev_row = 0..0; // index range of the previous row's runs
    for (y, row) in raw.chunks_exact(w).enumerate().take(h) {
        let start = runs.len();
        let mut x = 0;
        while x < w {
            let v = row[x];
            if v == 0 {
                // Skip background quickly; most of a photo is background.
                x += row[x..].iter().position(|&b| b != 0).unwrap_or(w - x);
                continue;
            }
            let x0 = x;
            x += row[x..].iter().position(|&b| b != v).unwrap_or(w - x);
            let id = runs.len();
            runs.push(Run {
                y: y as u32,
                x0: x0 as u32,
                x1: x as u32,
                class: v,
            });
            parent.push(id);
            // 8-connectivity: a run in the row above touches when the column spans overlap
            // after widening by one pixel.
            for j in prev_row.clone() {
                let r: Run = runs[j];
                if (r.x1 as usize) < x0 {
                    continue;
                }
                if r.x0 as usize > x {
                    break;
                }
                if r.class == v {
                    let (a, b) = (find(&mut parent, j), find(&mut parent, id));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
            }
        }
        prev_row = start..runs.len();
    }
    let mut group_of = vec![usize::MAX; runs.len()];
    let mut groups: Vec<Vec<Run>> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let root = find(&mut parent, i);
        if group_of[root] == usize::MAX {
            group_of[root] = groups.len();
            groups.push(Vec::new());
        }
        groups[group_of[root]].push(*run);
    }
    groups
}

/// Turns a class mask (0 = background) plus the per-pixel score of the chosen class into one
/// detection per connected component.
pub fn segment_detections(
    mask: &GrayImage,
    score: &[f32],
    manifest: &Manifest,
    cfg: SegPostConfig,
) -> Vec<Detection> {
    let w = mask.width() as usize;
    let mut out = Vec::new();
    for runs in components(mask) {
        let area: u64 = runs.iter().map(|r| (r.x1 - r.x0) as u64).sum();
        if (area as f64) < cfg.min_area_px {
            continue;
        }
        let class_index = runs[0].class as usize;
        let Some(class) = manifest.class(class_index) else {
            continue;
        };
        let mut sum = 0f64;
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for r in &runs {
            let base = r.y as usize * w;
            sum += score[base + r.x0 as usize..base + r.x1 as usize]
                .iter()
                .map(|&p| p as f64)
                .sum::<f64>();
            x0 = x0.min(r.x0);
            x1 = x1.max(r.x1);
            y0 = y0.min(r.y);
            y1 = y1.max(r.y + 1);
        }
        // Binary crop with a one-pixel empty border so contours close and thinning sees edges.
        let (cw, ch) = ((x1 - x0 + 2) as usize, (y1 - y0 + 2) as usize);
        let mut crop = vec![0u8; cw * ch];
        for r in &runs {
            let row = (r.y - y0 + 1) as usize * cw;
            crop[row + (r.x0 - x0 + 1) as usize..row + (r.x1 - x0 + 1) as usize].fill(255);
        }
        let polygon = outline(&crop, cw, ch, cfg.simplify_px).map(|pts| {
            pts.into_iter()
                .map(|[x, y]| [x + x0 as f64 - 1.0, y + y0 as f64 - 1.0])
                .collect::<Vec<_>>()
        });
        let length_px = if class.name.to_ascii_lowercase().contains("crack") {
            zhang_suen(&mut crop, cw, ch);
            Some(skeleton_length(&crop, cw, ch))
        } else {
            None
        };
        out.push(Detection {
            class: class.name.clone(),
            asset_kind: Some(class.asset_kind),
            confidence: (sum / area as f64) as f32,
            bbox: [x0 as f64, y0 as f64, x1 as f64, y1 as f64],
            polygon,
            area_px: area as f64,
            length_px,
        });
    }
    out
}

/// The outer outline of the largest blob in a binary crop, simplified with Douglas-Peucker.
fn outline(crop: &[u8], w: usize, h: usize, epsilon: f64) -> Option<Vec<[f64; 2]>> {
    let img = GrayImage::from_raw(w as u32, h as u32, crop.to_vec())?;
    let contours = find_contours::<i32>(&img);
    let best = contours
        .iter()
        .filter(|c| c.border_type == BorderType::Outer && c.parent.is_none())
        .max_by_key(|c| c.points.len())?;
    let pts: Vec<Point<i32>> = if best.points.len() > 3 {
        approximate_polygon_dp(&best.points, epsilon, true)
    } else {
        best.points.clone()
    };
    Some(pts.iter().map(|p| [p.x as f64, p.y as f64]).collect())
}

/// Zhang-Suen thinning in place (non-zero = foreground); the border must be background.
pub fn zhang_suen(img: &mut [u8], w: usize, h: usize) {
    if w < 3 || h < 3 {
        return;
    }
    let mut to_clear: Vec<usize> = Vec::new();
    loop {
        let mut changed = false;
        for step in 0..2 {
            to_clear.clear();
            for y in 1..h - 1 {
                let (up, mid, down) = (
                    &img[(y - 1) * w..y * w],
                    &img[y * w..(y + 1) * w],
                    &img[(y + 1) * w..(y + 2) * w],
                );
                for x in 1..w - 1 {
                    if mid[x] == 0 {
                        continue;
                    }
                    // Neighbours P2..P9 clockwise from north.
                    let n = [
                        up[x] != 0,
                        up[x + 1] != 0,
                        mid[x + 1] != 0,
                        down[x + 1] != 0,
                        down[x] != 0,
                        down[x - 1] != 0,
                        mid[x - 1] != 0,
                        up[x - 1] != 0,
                    ];
                    let b = n.iter().filter(|&&v| v).count();
                    if !(2..=6).contains(&b) {
                        continue;
                    }
                    let a = (0..8).filter(|&i| !n[i] && n[(i + 1) % 8]).count();
                    if a != 1 {
                        continue;
                    }
                    let (p2, p4, p6, p8) = (n[0], n[2], n[4], n[6]);
                    // Step 1: P2*P4*P6 = 0 and P4*P6*P8 = 0; step 2: P2*P4*P8 = 0 and P2*P6*P8 = 0.
                    let ok = if step == 0 {
                        !(p4 && p6 && (p2 || p8))
                    } else {
                        !(p2 && p8 && (p4 || p6))
                    };
                    if ok {
                        to_clear.push(y * w + x);
                    }
                }
            }
            changed |= !to_clear.is_empty();
            for &i in &to_clear {
                img[i] = 0;
            }
        }
        if !changed {
            break;
        }
    }
}

/// Length of a one-pixel-wide skeleton: orthogonal steps count 1, diagonal steps sqrt 2, and a
/// diagonal is skipped when an orthogonal path already joins the same two pixels.
pub fn skeleton_length(img: &[u8], w: usize, h: usize) -> f64 {
    let on = |x: usize, y: usize| img[y * w + x] != 0;
    let mut len = 0.0;
    for y in 0..h {
        for x in 0..w {
            if !on(x, y) {
                continue;
            }
            if x + 1 < w && on(x + 1, y) {
                len += 1.0;
            }
            if y + 1 < h && on(x, y + 1) {
                len += 1.0;
            }
            if x + 1 < w && y + 1 < h && on(x + 1, y + 1) && !on(x + 1, y) && !on(x, y + 1) {
                len += std::f64::consts::SQRT_2;
            }
            if x >= 1 && y + 1 < h && on(x - 1, y + 1) && !on(x - 1, y) && !on(x, y + 1) {
                len += std::f64::consts::SQRT_2;
            }
        }
    }
    len
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f64; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Class-aware non-maximum suppression: keeps the best box of each overlapping same-class group.
pub fn nms(mut dets: Vec<Detection>, iou_threshold: f64) -> Vec<Detection> {
    dets.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept
            .iter()
            .all(|k| k.class != d.class || iou(&k.bbox, &d.bbox) <= iou_threshold)
        {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagonal_line_thins_to_itself_and_measures_sqrt2_per_step() {
        let (w, h) = (12, 12);
        let mut img = vec![0u8; w * h];
        for i in 1..11 {
            img[i * w + i] = 1;
        }
        zhang_suen(&mut img, w, h);
        assert_eq!(img.iter().filter(|&&v| v != 0).count(), 10);
        let len = skeleton_length(&img, w, h);
        assert!((len - 9.0 * std::f64::consts::SQRT_2).abs() < 1e-9, "{len}");
    }

    #[test]
    fn a_thick_bar_thins_to_about_its_length() {
        let (w, h) = (60, 9);
        let mut img = vec![0u8; w * h];
        for y in 2..7 {
            for x in 5..55 {
                img[y * w + x] = 1;
            }
        }
        zhang_suen(&mut img, w, h);
        let len = skeleton_length(&img, w, h);
        // A 50 x 5 bar: the skeleton runs along the middle, losing a little at the ends.
        assert!((44.0..=50.0).contains(&len), "{len}");
    }

    #[test]
    fn components_split_by_class_and_join_diagonally() {
        let mut mask = GrayImage::new(8, 4);
        for (x, y, v) in [
            (0, 0, 1),
            (1, 1, 1),
            (2, 2, 1),
            (5, 0, 2),
            (6, 0, 2),
            (5, 1, 1),
            (7, 3, 2),
        ] {
            mask.put_pixel(x, y, image::Luma([v]));
        }
        let mut sizes: Vec<(u8, u64)> = components(&mask)
            .iter()
            .map(|g| (g[0].class, g.iter().map(|r| (r.x1 - r.x0) as u64).sum()))
            .collect();
        sizes.sort();
        assert_eq!(sizes, vec![(1, 1), (1, 3), (2, 1), (2, 2)]);
    }

    #[test]
    fn nms_is_class_aware() {
        let det = |class: &str, c: f32, x: f64| Detection {
            class: class.into(),
            asset_kind: None,
            confidence: c,
            bbox: [x, 0.0, x + 10.0, 10.0],
            polygon: None,
            area_px: 100.0,
            length_px: None,
        };
        let kept = nms(
            vec![
                det("a", 0.5, 1.0),
                det("a", 0.9, 0.0),
                det("b", 0.4, 0.0),
                det("a", 0.3, 50.0),
            ],
            0.5,
        );
        let got: Vec<(String, f32)> = kept
            .iter()
            .map(|d| (d.class.clone(), d.confidence))
            .collect();
        assert_eq!(
            got,
            vec![("a".into(), 0.9), ("b".into(), 0.4), ("a".into(), 0.3)]
        );
    }
}
