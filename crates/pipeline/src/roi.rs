//! Regions of interest: the registered assets a photo sees, as polygons in its pixels, so
//! inference can skip tiles that show no road or roof.

use besikta_core::AssetKind;
use besikta_georef::PhotoGeometry;
use besikta_report::register::AssetGeometry;
use besikta_report::{Register, WorkFrame};

/// Polygons (photo pixels) around every asset of `kinds` inside the photo's footprint,
/// widened by `margin_m` for position error.
pub fn asset_roi(
    registers: &[Register],
    frame: &WorkFrame,
    geom: &PhotoGeometry<'_>,
    kinds: &[AssetKind],
    margin_m: f64,
) -> Vec<Vec<[f64; 2]>> {
    let cam = geom.camera();
    let centre = [cam.width as f64 / 2.0, cam.height as f64 / 2.0];
    let Ok(ground_centre) = geom.pixel_to_ground(centre) else {
        return Vec::new();
    };
    let h = ground_centre.height_m;
    let Ok(fp) = geom.footprint(&besikta_georef::FootprintOptions::default()) else {
        return Vec::new();
    };
    let work: Vec<[f64; 2]> = fp.iter().filter_map(|p| frame.to_work(*p).ok()).collect();
    if work.is_empty() {
        return Vec::new();
    }
    let env = besikta_infer::tiling::bounds(&work);
    let to_px = |xy: [f64; 2]| -> Option<[f64; 2]> {
        let ll = frame.to_wgs84(xy).ok()?;
        geom.ground_to_pixel(ll[1], ll[0], h).ok()
    };
    let mut out = Vec::new();
    for reg in registers {
        for a in reg.assets_in(env, margin_m + 20.0) {
            if !kinds.contains(&a.kind) {
                continue;
            }
            match &a.geometry {
                AssetGeometry::Line(lines) => {
                    let r = a.width_m / 2.0 + margin_m;
                    for line in &lines.0 {
                        for seg in line.lines() {
                            let (dx, dy) = (seg.end.x - seg.start.x, seg.end.y - seg.start.y);
                            let len = (dx * dx + dy * dy).sqrt();
                            if len < 1e-6 {
                                continue;
                            }
                            let (ux, uy) = (dx / len * r, dy / len * r);
                            let quad = [
                                [seg.start.x - ux - uy, seg.start.y - uy + ux],
                                [seg.end.x + ux - uy, seg.end.y + uy + ux],
                                [seg.end.x + ux + uy, seg.end.y + uy - ux],
                                [seg.start.x - ux + uy, seg.start.y - uy - ux],
                            ];
                            let px: Vec<[f64; 2]> = quad.iter().filter_map(|&q| to_px(q)).collect();
                            if px.len() == 4 {
                                out.push(px);
                            }
                        }
                    }
                }
                AssetGeometry::Area(polys) => {
                    for p in &polys.0 {
                        // The bounding box widened by the margin: cheap and generous.
                        let Some(r) = geo::BoundingRect::bounding_rect(p) else {
                            continue;
                        };
                        let (x0, y0) = (r.min().x - margin_m, r.min().y - margin_m);
                        let (x1, y1) = (r.max().x + margin_m, r.max().y + margin_m);
                        let px: Vec<[f64; 2]> = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
                            .iter()
                            .filter_map(|&q| to_px(q))
                            .collect();
                        if px.len() == 4 {
                            out.push(px);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Pixel polygons (a region of interest) back on the ground, WGS 84 lon/lat rings; corners
/// that miss the ground are left out, and polygons left with fewer than three corners.
pub fn pixels_to_ground(geom: &PhotoGeometry<'_>, polys: &[Vec<[f64; 2]>]) -> Vec<Vec<[f64; 2]>> {
    polys
        .iter()
        .filter_map(|p| {
            let ring: Vec<[f64; 2]> = p
                .iter()
                .filter_map(|&px| geom.pixel_to_ground(px).ok().map(|g| [g.lon, g.lat]))
                .collect();
            (ring.len() >= 3).then_some(ring)
        })
        .collect()
}
