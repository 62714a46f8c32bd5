//! Drawing findings onto a photo for people to look at: outlines, boxes and short labels.

use besikta_core::Detection;
use image::{Rgb, RgbImage};

/// Bright colours that stand out on asphalt and roofs, one per class (by first appearance).
const PALETTE: [[u8; 3]; 6] = [
    [255, 0, 255],
    [0, 255, 255],
    [255, 255, 0],
    [255, 96, 0],
    [0, 255, 64],
    [255, 0, 64],
];

/// A copy of `img` with every detection drawn on it: the polygon outline when there is one,
/// else the box, and a label with class and confidence. Line width grows with the photo.
pub fn draw_overlay(img: &RgbImage, dets: &[Detection]) -> RgbImage {
    let mut out = img.clone();
    let thick = (img.width().max(img.height()) / 1000).max(1) as i64 + 1;
    let glyph_px = (img.width().max(img.height()) / 800).max(1) as i64 + 1;
    let mut classes: Vec<&str> = Vec::new();
    for d in dets {
        let idx = classes
            .iter()
            .position(|c| *c == d.class)
            .unwrap_or_else(|| {
                classes.push(&d.class);
                classes.len() - 1
            });
        let colour = Rgb(PALETTE[idx % PALETTE.len()]);
        match &d.polygon {
            Some(poly) if poly.len() >= 2 => {
                for i in 0..poly.len() {
                    let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
                    thick_line(&mut out, a, b, thick, colour);
                }
            }
            _ => {
                let [x0, y0, x1, y1] = d.bbox;
                let c = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
                for i in 0..4 {
                    thick_line(&mut out, c[i], c[(i + 1) % 4], thick, colour);
                }
            }
        }
        let label = format!("{} {:.2}", d.class.to_uppercase(), d.confidence);
        let text_h = 9 * glyph_px;
        let y = if d.bbox[1] as i64 >= text_h {
            d.bbox[1] as i64 - text_h
        } else {
            d.bbox[3] as i64 + 1
        };
        draw_label(&mut out, d.bbox[0] as i64, y, &label, glyph_px, colour);
    }
    out
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u64) < img.width() as u64 && (y as u64) < img.height() as u64 {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// A line `thick` pixels wide: a square brush stepped along the segment.
fn thick_line(img: &mut RgbImage, a: [f64; 2], b: [f64; 2], thick: i64, c: Rgb<u8>) {
    let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().max(1.0) as i64;
    let r0 = -(thick / 2);
    for s in 0..=steps {
        let t = s as f64 / steps as f64;
        let x = (a[0] + (b[0] - a[0]) * t).round() as i64;
        let y = (a[1] + (b[1] - a[1]) * t).round() as i64;
        for dy in r0..r0 + thick {
            for dx in r0..r0 + thick {
                put(img, x + dx, y + dy, c);
            }
        }
    }
}

/// Text in a built-in 5x7 font on a dark box; `px` is the size of one font pixel.
fn draw_label(img: &mut RgbImage, x: i64, y: i64, text: &str, px: i64, c: Rgb<u8>) {
    let w = text.chars().count() as i64 * 6 * px + px;
    for yy in y..y + 9 * px {
        for xx in x..x + w {
            put(img, xx, yy, Rgb([0, 0, 0]));
        }
    }
    for (i, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        let gx = x + px + i as i64 * 6 * px;
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..5 {
                if bits & (0b10000 >> col) != 0 {
                    for dy in 0..px {
                        for dx in 0..px {
                            put(img, gx + col * px + dx, y + px + r as i64 * px + dy, c);
                        }
                    }
                }
            }
        }
    }
}

/// 5x7 bitmaps, one row per byte (bit 4 = leftmost column). Unknown characters are blank.
fn glyph(ch: char) -> [u8; 7] {
    match ch {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' | '_' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_and_labels_change_pixels_only_near_the_finding() {
        let img = RgbImage::from_pixel(400, 300, Rgb([90, 90, 90]));
        let det = Detection {
            class: "crack".into(),
            asset_kind: None,
            confidence: 0.9,
            bbox: [100.0, 100.0, 200.0, 150.0],
            polygon: Some(vec![
                [100.0, 100.0],
                [200.0, 100.0],
                [200.0, 150.0],
                [100.0, 150.0],
            ]),
            area_px: 5000.0,
            length_px: None,
        };
        let out = draw_overlay(&img, &[det]);
        assert_eq!(out.get_pixel(150, 100), &Rgb(PALETTE[0]));
        assert_eq!(out.get_pixel(150, 125), &Rgb([90, 90, 90]));
        assert_eq!(out.get_pixel(350, 250), &Rgb([90, 90, 90]));
        // The label sits above the box and has lit pixels in the class colour.
        let lit = (100..160)
            .flat_map(|x| (80..100).map(move |y| (x, y)))
            .filter(|&(x, y)| out.get_pixel(x, y) == &Rgb(PALETTE[0]))
            .count();
        assert!(lit > 20, "{lit}");
    }
}
