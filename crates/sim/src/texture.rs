//! The ground texture: an RGB raster in the register's metric working frame, painted from the
//! assets (grass, asphalt roads with lane markings, paved footways, roofs) and sampled
//! bilinearly by the renderer.
//!
//! Colours come from noise evaluated at ground coordinates, not at raster cells, so the look
//! of a place does not depend on the raster's resolution or extent.

use crate::rng::{fbm, hash2};
use besikta_core::AssetKind;
use besikta_report::register::{Asset, AssetGeometry};
use std::ops::Range;

/// An RGB raster, north up: cell (col, row) has its centre at
/// `(x0 + (col + 0.5) * cell_m, y1 - (row + 0.5) * cell_m)`.
#[derive(Debug, Clone)]
pub struct Texture {
    /// West edge, working metres.
    pub x0: f64,
    /// North edge, working metres.
    pub y1: f64,
    pub cell_m: f64,
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<[u8; 3]>,
}

/// A horizontal band of texture rows, painted by one thread.
pub struct Band<'a> {
    pub x0: f64,
    pub y1: f64,
    pub cell_m: f64,
    pub width: usize,
    pub rows: Range<usize>,
    pub data: &'a mut [[u8; 3]],
}

/// Threads used for painting and rendering (the build machines have two cores).
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
}

impl Texture {
    /// A texture covering `[xmin, xmax] x [ymin, ymax]` working metres at `cell_m`.
    pub fn new(xmin: f64, ymin: f64, xmax: f64, ymax: f64, cell_m: f64) -> Texture {
        let width = ((xmax - xmin) / cell_m).ceil().max(1.0) as usize;
        let height = ((ymax - ymin) / cell_m).ceil().max(1.0) as usize;
        Texture {
            x0: xmin,
            y1: ymax,
            cell_m,
            width,
            height,
            pixels: vec![[0, 0, 0]; width * height],
        }
    }

    /// Runs `f` on horizontal bands of the texture, one per thread.
    pub fn par_bands(&mut self, f: impl Fn(&mut Band<'_>) + Sync) {
        let n = threads();
        let rows_per = self.height.div_ceil(n).max(1);
        let (x0, y1, cell_m, width) = (self.x0, self.y1, self.cell_m, self.width);
        std::thread::scope(|s| {
            for (i, chunk) in self.pixels.chunks_mut(rows_per * width).enumerate() {
                let f = &f;
                s.spawn(move || {
                    let start = i * rows_per;
                    let mut band = Band {
                        x0,
                        y1,
                        cell_m,
                        width,
                        rows: start..start + chunk.len() / width,
                        data: chunk,
                    };
                    f(&mut band);
                });
            }
        });
    }

    /// Bilinear sample at a ground point (working metres); outside the raster, the edge.
    #[inline]
    pub fn sample(&self, x: f64, y: f64) -> [f32; 3] {
        let fx = (x - self.x0) / self.cell_m - 0.5;
        let fy = (self.y1 - y) / self.cell_m - 0.5;
        let cx = fx.floor();
        let cy = fy.floor();
        let (tx, ty) = ((fx - cx) as f32, (fy - cy) as f32);
        let clampc = |c: f64| (c.max(0.0) as usize).min(self.width - 1);
        let clampr = |r: f64| (r.max(0.0) as usize).min(self.height - 1);
        let (c0, c1) = (clampc(cx), clampc(cx + 1.0));
        let (r0, r1) = (clampr(cy), clampr(cy + 1.0));
        let p = |r: usize, c: usize| self.pixels[r * self.width + c];
        let (a, b, c, d) = (p(r0, c0), p(r0, c1), p(r1, c0), p(r1, c1));
        let mut out = [0f32; 3];
        for k in 0..3 {
            let top = a[k] as f32 + (b[k] as f32 - a[k] as f32) * tx;
            let bottom = c[k] as f32 + (d[k] as f32 - c[k] as f32) * tx;
            out[k] = top + (bottom - top) * ty;
        }
        out
    }

    /// The cell value at a ground point (nearest cell), for tests.
    pub fn at(&self, x: f64, y: f64) -> Option<[u8; 3]> {
        let c = ((x - self.x0) / self.cell_m).floor();
        let r = ((self.y1 - y) / self.cell_m).floor();
        if c < 0.0 || r < 0.0 || c >= self.width as f64 || r >= self.height as f64 {
            return None;
        }
        Some(self.pixels[r as usize * self.width + c as usize])
    }
}

impl Band<'_> {
    #[inline]
    fn centre(&self, col: usize, row: usize) -> (f64, f64) {
        (
            self.x0 + (col as f64 + 0.5) * self.cell_m,
            self.y1 - (row as f64 + 0.5) * self.cell_m,
        )
    }

    /// Cell ranges (cols, rows within this band) covering a ground box.
    fn cells(&self, xmin: f64, ymin: f64, xmax: f64, ymax: f64) -> (Range<usize>, Range<usize>) {
        let c0 = ((xmin - self.x0) / self.cell_m).floor().max(0.0) as usize;
        let c1 = (((xmax - self.x0) / self.cell_m).ceil().max(0.0) as usize).min(self.width);
        let r0 = ((self.y1 - ymax) / self.cell_m).floor().max(0.0) as usize;
        let r1 = ((self.y1 - ymin) / self.cell_m).ceil().max(0.0) as usize;
        let r0 = r0.max(self.rows.start);
        let r1 = r1.min(self.rows.end);
        (c0..c1.max(c0), r0..r1.max(r0))
    }

    /// Calls `shade` for every cell in the band (the ground everywhere).
    pub fn fill_all(&mut self, shade: impl Fn(f64, f64, usize, usize) -> [u8; 3]) {
        for row in self.rows.clone() {
            for col in 0..self.width {
                let (x, y) = self.centre(col, row);
                let i = (row - self.rows.start) * self.width + col;
                self.data[i] = shade(x, y, col, row);
            }
        }
    }

    /// Paints cells within `half_width` of segment a-b. `shade(x, y, along, across, old,
    /// coverage)` gets the position along the segment (metres from `a`), the signed distance
    /// across it, the old colour, and how much of the cell the band covers (0..1], and
    /// returns the new colour.
    pub fn paint_segment(
        &mut self,
        a: [f64; 2],
        b: [f64; 2],
        half_width: f64,
        shade: &impl Fn(f64, f64, f64, f64, [u8; 3], f32) -> [u8; 3],
    ) {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = (dx * dx + dy * dy).sqrt();
        let (ux, uy) = if len > 0.0 {
            (dx / len, dy / len)
        } else {
            (1.0, 0.0)
        };
        let pad = half_width + self.cell_m;
        let (cols, rows) = self.cells(
            a[0].min(b[0]) - pad,
            a[1].min(b[1]) - pad,
            a[0].max(b[0]) + pad,
            a[1].max(b[1]) + pad,
        );
        for row in rows {
            for col in cols.clone() {
                let (x, y) = self.centre(col, row);
                let (px, py) = (x - a[0], y - a[1]);
                let along = px * ux + py * uy;
                let across = -px * uy + py * ux;
                // Distance to the segment, with round caps so polylines join without gaps.
                let d = if along < 0.0 {
                    (px * px + py * py).sqrt()
                } else if along > len {
                    ((x - b[0]).powi(2) + (y - b[1]).powi(2)).sqrt()
                } else {
                    across.abs()
                };
                let coverage = ((half_width - d) / self.cell_m + 0.5).clamp(0.0, 1.0) as f32;
                if coverage <= 0.0 {
                    continue;
                }
                let i = (row - self.rows.start) * self.width + col;
                self.data[i] = shade(x, y, along, across, self.data[i], coverage);
            }
        }
    }

    /// Paints the cells whose centres are inside the polygon (even-odd over all rings).
    pub fn fill_polygon(
        &mut self,
        rings: &[Vec<[f64; 2]>],
        shade: &impl Fn(f64, f64, [u8; 3]) -> [u8; 3],
    ) {
        let (mut xmin, mut ymin, mut xmax, mut ymax) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in rings.iter().flatten() {
            xmin = xmin.min(p[0]);
            ymin = ymin.min(p[1]);
            xmax = xmax.max(p[0]);
            ymax = ymax.max(p[1]);
        }
        if xmin > xmax {
            return;
        }
        let (cols, rows) = self.cells(xmin, ymin, xmax, ymax);
        let mut xs: Vec<f64> = Vec::new();
        for row in rows {
            let y = self.y1 - (row as f64 + 0.5) * self.cell_m;
            xs.clear();
            for ring in rings {
                let n = ring.len();
                for k in 0..n {
                    let p = ring[k];
                    let q = ring[(k + 1) % n];
                    if (p[1] > y) != (q[1] > y) {
                        xs.push(p[0] + (y - p[1]) / (q[1] - p[1]) * (q[0] - p[0]));
                    }
                }
            }
            xs.sort_by(f64::total_cmp);
            for pair in xs.chunks_exact(2) {
                let c0 = ((pair[0] - self.x0) / self.cell_m - 0.5).ceil().max(0.0) as usize;
                let c1 = ((pair[1] - self.x0) / self.cell_m - 0.5).floor();
                if c1 < 0.0 {
                    continue;
                }
                let c0 = c0.max(cols.start);
                let c1 = (c1 as usize + 1).min(cols.end);
                for col in c0..c1 {
                    let x = self.x0 + (col as f64 + 0.5) * self.cell_m;
                    let i = (row - self.rows.start) * self.width + col;
                    self.data[i] = shade(x, y, self.data[i]);
                }
            }
        }
    }
}

/// Blends `new` over `old` by `alpha`.
#[inline]
pub fn blend(old: [u8; 3], new: [f64; 3], alpha: f32) -> [u8; 3] {
    let a = alpha as f64;
    let mut out = [0u8; 3];
    for k in 0..3 {
        out[k] = (old[k] as f64 * (1.0 - a) + new[k] * a)
            .round()
            .clamp(0.0, 255.0) as u8;
    }
    out
}

fn rgb(c: [f64; 3]) -> [u8; 3] {
    [
        c[0].round().clamp(0.0, 255.0) as u8,
        c[1].round().clamp(0.0, 255.0) as u8,
        c[2].round().clamp(0.0, 255.0) as u8,
    ]
}

/// Fine per-cell grain in [-1, 1), tied to ground coordinates at 1 cm.
#[inline]
fn grain(x: f64, y: f64, seed: u64) -> f64 {
    hash2((x * 100.0).floor() as i64, (y * 100.0).floor() as i64, seed) * 2.0 - 1.0
}

fn grass(x: f64, y: f64, seed: u64) -> [u8; 3] {
    let n = fbm(x, y, 4.0, seed) - 0.5;
    let g = grain(x, y, seed ^ 0x11);
    rgb([
        72.0 + 40.0 * n + 10.0 * g,
        108.0 + 45.0 * n + 12.0 * g,
        48.0 + 20.0 * n + 6.0 * g,
    ])
}

fn asphalt(x: f64, y: f64, seed: u64) -> [u8; 3] {
    let n = fbm(x, y, 2.0, seed ^ 0x22) - 0.5;
    let g = grain(x, y, seed ^ 0x23);
    let v = 96.0 + 26.0 * n + 9.0 * g;
    rgb([v, v, v + 4.0])
}

fn paving(x: f64, y: f64, seed: u64) -> [u8; 3] {
    let n = fbm(x, y, 2.5, seed ^ 0x33) - 0.5;
    let g = grain(x, y, seed ^ 0x34);
    // Slab joints every 0.5 m (axis-aligned is fine at this scale).
    let joint = (x.rem_euclid(0.5) < 0.015) || (y.rem_euclid(0.5) < 0.015);
    let v = if joint { 120.0 } else { 156.0 } + 18.0 * n + 6.0 * g;
    rgb([v + 2.0, v, v - 4.0])
}

/// True for roads that carry traffic (get asphalt, markings, potholes); false for paths.
pub use besikta_report::register::is_carriageway;

/// Roof colour of a building, fixed by its id.
fn roof_colour(id: &str) -> [f64; 3] {
    const PALETTE: [[f64; 3]; 5] = [
        [150.0, 78.0, 62.0],   // red-brown tiles
        [168.0, 168.0, 162.0], // galvanised metal
        [96.0, 142.0, 120.0],  // weathered copper
        [140.0, 132.0, 120.0], // bitumen felt, light
        [182.0, 104.0, 78.0],  // terracotta
    ];
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x1000_0000_01b3)
    });
    PALETTE[(h % PALETTE.len() as u64) as usize]
}

fn line_parts(a: &Asset) -> Vec<Vec<[f64; 2]>> {
    match &a.geometry {
        AssetGeometry::Line(ml) => {
            ml.0.iter()
                .map(|l| l.0.iter().map(|c| [c.x, c.y]).collect())
                .collect()
        }
        AssetGeometry::Area(_) => Vec::new(),
    }
}

/// Every ring (exterior and holes) of each polygon of an area asset.
pub fn polygon_rings(a: &Asset) -> Vec<Vec<Vec<[f64; 2]>>> {
    match &a.geometry {
        AssetGeometry::Area(mp) => {
            mp.0.iter()
                .map(|p| {
                    std::iter::once(p.exterior())
                        .chain(p.interiors())
                        .map(|r| r.0.iter().map(|c| [c.x, c.y]).collect())
                        .collect()
                })
                .collect()
        }
        AssetGeometry::Line(_) => Vec::new(),
    }
}

/// Paints the ground, the roads and the roofs of the assets.
pub fn paint_assets(tex: &mut Texture, assets: &[&Asset], seed: u64) {
    let mut roads: Vec<&Asset> = assets
        .iter()
        .copied()
        .filter(|a| a.kind == AssetKind::Road)
        .collect();
    // Narrow paths first so carriageways are drawn over the footways that meet them.
    roads.sort_by(|a, b| a.width_m.total_cmp(&b.width_m).then(a.id.cmp(&b.id)));
    let roofs: Vec<&Asset> = assets
        .iter()
        .copied()
        .filter(|a| a.kind == AssetKind::Roof)
        .collect();

    tex.par_bands(|band| {
        band.fill_all(|x, y, _, _| grass(x, y, seed));
        for road in &roads {
            let hw = road.width_m / 2.0;
            let car = is_carriageway(road);
            let shade = |x: f64, y: f64, _: f64, _: f64, old: [u8; 3], cov: f32| {
                let c = if car {
                    asphalt(x, y, seed)
                } else {
                    paving(x, y, seed)
                };
                blend(old, [c[0] as f64, c[1] as f64, c[2] as f64], cov)
            };
            for part in line_parts(road) {
                for w in part.windows(2) {
                    band.paint_segment(w[0], w[1], hw, &shade);
                }
            }
        }
        // Markings after all surfaces so a crossing road does not erase them.
        for road in roads
            .iter()
            .filter(|r| is_carriageway(r) && r.width_m >= 6.0)
        {
            let hw = road.width_m / 2.0;
            for part in line_parts(road) {
                let mut chain = 0.0;
                for w in part.windows(2) {
                    let start = chain;
                    let paint = [225.0, 225.0, 212.0];
                    // Dashed centre line: 3 m dash, 6 m gap.
                    band.paint_segment(w[0], w[1], 0.06, &|_, _, along, _, old, cov| {
                        if (start + along).rem_euclid(9.0) < 3.0 {
                            blend(old, paint, cov * 0.9)
                        } else {
                            old
                        }
                    });
                    // Solid edge lines 0.3 m inside the edges.
                    band.paint_segment(w[0], w[1], hw - 0.25, &|_, _, _, across, old, _| {
                        let d = (across.abs() - (hw - 0.3)).abs();
                        if d < 0.05 {
                            blend(old, paint, 0.85)
                        } else {
                            old
                        }
                    });
                    chain += ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt();
                }
            }
        }
        for roof in &roofs {
            let base = roof_colour(&roof.id);
            for rings in polygon_rings(roof) {
                // Seams run along the building's longest wall, like sheet metal or tile rows.
                let (ux, uy) = longest_edge_dir(&rings[0]);
                band.fill_polygon(&rings, &|x, y, _| {
                    let n = fbm(x, y, 3.0, seed ^ 0x44) - 0.5;
                    let g = grain(x, y, seed ^ 0x45);
                    let across = -x * uy + y * ux;
                    let seam = if across.rem_euclid(0.6) < 0.04 {
                        -22.0
                    } else {
                        0.0
                    };
                    let v = 22.0 * n + 6.0 * g + seam;
                    rgb([base[0] + v, base[1] + v, base[2] + v])
                });
                // Parapets and eaves along every wall.
                for ring in &rings {
                    for w in ring.windows(2) {
                        band.paint_segment(w[0], w[1], 0.2, &|_, _, _, _, old, cov| {
                            blend(old, [base[0] * 0.7, base[1] * 0.7, base[2] * 0.7], cov)
                        });
                    }
                }
            }
        }
    });
}

fn longest_edge_dir(ring: &[[f64; 2]]) -> (f64, f64) {
    let mut best = (0.0, (1.0, 0.0));
    for w in ring.windows(2) {
        let (dx, dy) = (w[1][0] - w[0][0], w[1][1] - w[0][1]);
        let l = (dx * dx + dy * dy).sqrt();
        if l > best.0 {
            best = (l, (dx / l, dy / l));
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, MultiLineString, MultiPolygon, Polygon};

    fn road(id: &str, pts: &[(f64, f64)], width: f64) -> Asset {
        Asset {
            id: id.into(),
            name: None,
            kind: AssetKind::Road,
            class: Some("residential".into()),
            width_m: width,
            geometry: AssetGeometry::Line(MultiLineString::new(vec![LineString::from(
                pts.to_vec(),
            )])),
        }
    }

    fn roof(id: &str, pts: &[(f64, f64)]) -> Asset {
        Asset {
            id: id.into(),
            name: None,
            kind: AssetKind::Roof,
            class: Some("yes".into()),
            width_m: 0.0,
            geometry: AssetGeometry::Area(MultiPolygon::new(vec![Polygon::new(
                LineString::from(pts.to_vec()),
                vec![],
            )])),
        }
    }

    fn grey(c: [u8; 3]) -> bool {
        (c[0] as i32 - c[1] as i32).abs() < 12 && (c[1] as i32 - c[2] as i32).abs() < 12
    }

    #[test]
    fn roads_roofs_and_grass_land_where_the_assets_are() {
        let mut tex = Texture::new(0.0, 0.0, 40.0, 30.0, 0.05);
        let r = road("r", &[(0.0, 10.0), (40.0, 10.0)], 8.0);
        let b = roof(
            "b",
            &[
                (20.0, 20.0),
                (30.0, 20.0),
                (30.0, 28.0),
                (20.0, 28.0),
                (20.0, 20.0),
            ],
        );
        paint_assets(&mut tex, &[&r, &b], 1);
        // Asphalt 2 m off the centre line (away from the markings): grey and dark-ish.
        let c = tex.at(5.0, 12.0).unwrap();
        assert!(grey(c) && c[0] < 140, "asphalt {c:?}");
        // Centre line dash (chainage 0-3 m) is white.
        assert!(tex.at(1.5, 10.0).unwrap()[0] > 180);
        // Grass is green.
        let g = tex.at(5.0, 25.0).unwrap();
        assert!(g[1] > g[0] && g[1] > g[2], "grass {g:?}");
        // Inside the roof: the roof colour, not grass or asphalt.
        let base = roof_colour("b");
        let c = tex.at(25.0, 24.0).unwrap();
        assert!(
            (c[0] as f64 - base[0]).abs() < 40.0,
            "roof {c:?} vs {base:?}"
        );
        // Bilinear sampling between two cells is their mean.
        let a = tex.sample(5.025, 25.025);
        assert!((a[0] - tex.at(5.025, 25.025).unwrap()[0] as f32).abs() < 1e-3);
    }

    #[test]
    fn polygon_fill_respects_holes() {
        let mut tex = Texture::new(0.0, 0.0, 10.0, 10.0, 0.1);
        let outer = vec![[1.0, 1.0], [9.0, 1.0], [9.0, 9.0], [1.0, 9.0], [1.0, 1.0]];
        let hole = vec![[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0], [4.0, 4.0]];
        tex.par_bands(|band| {
            band.fill_polygon(&[outer.clone(), hole.clone()], &|_, _, _| [255, 0, 0])
        });
        let filled = tex.pixels.iter().filter(|p| p[0] == 255).count();
        // 64 m² - 4 m² at 0.01 m² per cell.
        assert_eq!(filled, 6000);
        assert_eq!(tex.at(5.0, 5.0).unwrap(), [0, 0, 0]);
        assert_eq!(tex.at(2.0, 5.0).unwrap(), [255, 0, 0]);
    }
}
