//! A quick orthomosaic of a flight from its (aligned) poses: every ground cell of a grid in a
//! projected CRS takes its colour from the photo that sees it closest to nadir, through
//! georef's camera model; written as a Cloud-Optimised GeoTIFF (RGBA, alpha 0 outside
//! coverage) through GDAL. Memory: one decoded photo at a time plus the output grid.

use crate::ortho::{lattice_uv, LATTICE};
use besikta_core::Capture;
use besikta_georef::{FootprintOptions, Ground, PhotoGeometry};
use gdal::raster::{Buffer, ColorInterpretation, RasterCreationOptions};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::DriverManager;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// How the mosaic is made.
#[derive(Debug, Clone)]
pub struct MosaicConfig {
    /// Ground size of one output pixel, metres.
    pub gsd_m: f64,
    /// Output CRS (anything GDAL reads: `EPSG:32635`, WKT, PROJ); default the flight's UTM
    /// zone. Must be projected.
    pub crs: Option<String>,
    /// Largest output size, megapixels (the grid is held in memory, 5 bytes per pixel).
    pub max_megapixels: f64,
}

impl Default for MosaicConfig {
    fn default() -> Self {
        MosaicConfig {
            gsd_m: 0.05,
            crs: None,
            max_megapixels: 200.0,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct MosaicSummary {
    pub width: usize,
    pub height: usize,
    pub gsd_m: f64,
    /// The CRS as `AUTHORITY:CODE` when it has one, else its WKT.
    pub crs: String,
    /// `[xmin, ymin, xmax, ymax]` in the CRS.
    pub extent: [f64; 4],
    pub photos_used: usize,
    /// Photos left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Fraction of the output grid covered by some photo.
    pub covered: f64,
    pub seconds: f64,
}

/// Score of a cell no photo covers.
const EMPTY: u16 = u16::MAX;

struct Placed<'g> {
    geom: PhotoGeometry<'g>,
    /// Camera x, y in the output CRS and its height above the ground, metres.
    camera: [f64; 2],
    above: f64,
    /// Ground height the photo is projected onto (plane) when there is no DEM.
    level: f64,
    /// Envelope in output cells `[x0, y0, x1, y1]` (x east, y north).
    cells: [i64; 4],
    photo_gsd: f64,
}

fn srs_for(captures: &[Capture], crs: Option<&str>) -> Result<SpatialRef, String> {
    let mut srs = match crs {
        Some(text) => SpatialRef::from_definition(text)
            .map_err(|e| format!("cannot read the CRS {text:?}: {e} (give e.g. EPSG:32635)"))?,
        None => {
            let pos: Vec<(f64, f64)> = captures
                .iter()
                .filter_map(|c| Some((c.latitude?, c.longitude?)))
                .collect();
            if pos.is_empty() {
                return Err("no photo has a GPS position: nothing to place on a map".into());
            }
            let n = pos.len() as f64;
            let lat = pos.iter().map(|p| p.0).sum::<f64>() / n;
            let lon = pos.iter().map(|p| p.1).sum::<f64>() / n;
            let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) as u32 + 1;
            let code = if lat >= 0.0 { 32600 } else { 32700 } + zone;
            SpatialRef::from_epsg(code).map_err(|e| format!("cannot make EPSG:{code}: {e}"))?
        }
    };
    if !srs.is_projected() {
        return Err(format!(
            "the CRS {} is not projected: give a metric one (e.g. the UTM zone, EPSG:326xx)",
            crs.unwrap_or("")
        ));
    }
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

fn crs_name(srs: &SpatialRef) -> String {
    match (srs.auth_name(), srs.auth_code()) {
        (Some(a), Ok(c)) => format!("{a}:{c}"),
        _ => srs.to_wkt().unwrap_or_default(),
    }
}

/// Makes the mosaic of `captures` (give the aligned ones) on `ground` and writes it to
/// `out` as a Cloud-Optimised GeoTIFF. Photos that cannot be placed or decoded are
/// skipped with the reason; `Err` only when nothing can be written.
pub fn write_mosaic(
    captures: &[Capture],
    ground: &Ground,
    cfg: &MosaicConfig,
    out: &Path,
) -> Result<MosaicSummary, String> {
    let t = Instant::now();
    if cfg.gsd_m.is_nan() || cfg.gsd_m <= 0.0 || cfg.gsd_m.is_infinite() {
        return Err(format!(
            "the mosaic GSD must be positive, got {} m",
            cfg.gsd_m
        ));
    }
    let srs = srs_for(captures, cfg.crs.as_deref())?;
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(|e| e.to_string())?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_xy = CoordTransform::new(&wgs84, &srs).map_err(|e| e.to_string())?;
    let to_ll = CoordTransform::new(&srs, &wgs84).map_err(|e| e.to_string())?;
    let g = cfg.gsd_m;

    let mut skipped = Vec::new();
    let mut placed: Vec<(usize, Placed)> = Vec::new();
    for (k, c) in captures.iter().enumerate() {
        match place(c, ground, &to_xy, g) {
            Ok(p) => placed.push((k, p)),
            Err(e) => skipped.push((c.file.clone(), e)),
        }
    }
    if placed.is_empty() {
        return Err(format!(
            "no photo could be placed on the ground: {}",
            skipped
                .first()
                .map(|s| format!("{}: {}", s.0, s.1))
                .unwrap_or_default()
        ));
    }
    let x0 = placed.iter().map(|p| p.1.cells[0]).min().unwrap_or(0);
    let y0 = placed.iter().map(|p| p.1.cells[1]).min().unwrap_or(0);
    let x1 = placed.iter().map(|p| p.1.cells[2]).max().unwrap_or(0);
    let y1 = placed.iter().map(|p| p.1.cells[3]).max().unwrap_or(0);
    let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
    if (w * h) as f64 > cfg.max_megapixels * 1e6 {
        return Err(format!(
            "the mosaic would be {w} x {h} pixels at {:.1} cm, over {} megapixels: choose a coarser --gsd-cm",
            g * 100.0,
            cfg.max_megapixels
        ));
    }
    // Row 0 is the northernmost row (as the GeoTIFF stores it).
    let mut rgb = vec![[0u8; 3]; w * h];
    let mut score = vec![EMPTY; w * h];
    let mut used = 0;
    for (k, p) in &placed {
        let c = &captures[*k];
        match paint(c, p, ground, &to_ll, g, [x0, y1], w, &mut rgb, &mut score) {
            Ok(true) => used += 1,
            Ok(false) => skipped.push((c.file.clone(), "no cell was nearest to it".into())),
            Err(e) => skipped.push((c.file.clone(), e)),
        }
    }
    let covered = score.iter().filter(|&&s| s != EMPTY).count() as f64 / (w * h).max(1) as f64;
    let extent = [x0 as f64 * g, y0 as f64 * g, x1 as f64 * g, y1 as f64 * g];
    write_cog(out, &srs, extent, g, w, h, &rgb, &score)?;
    Ok(MosaicSummary {
        width: w,
        height: h,
        gsd_m: g,
        crs: crs_name(&srs),
        extent,
        photos_used: used,
        skipped,
        covered,
        seconds: t.elapsed().as_secs_f64(),
    })
}

fn place<'g>(
    c: &'g Capture,
    ground: &'g Ground,
    to_xy: &CoordTransform,
    g: f64,
) -> Result<Placed<'g>, String> {
    let geom = PhotoGeometry::new(c, ground)
        .map_err(|e| format!("cannot place the photo on the ground: {e}"))?;
    let cam = geom.camera_position();
    let centre = [
        geom.camera().width as f64 / 2.0,
        geom.camera().height as f64 / 2.0,
    ];
    let hit = geom
        .pixel_to_ground(centre)
        .map_err(|e| format!("the centre of the photo does not meet the ground: {e}"))?;
    let photo_gsd = geom.gsd_cm_center().map_err(|e| e.to_string())? / 100.0;
    let ring = geom
        .footprint(&FootprintOptions {
            points_per_edge: 8,
            max_range_m: 250.0,
        })
        .map_err(|e| format!("no footprint: {e}"))?;
    let mut xs: Vec<f64> = ring.iter().map(|p| p[0]).chain([cam.lon]).collect();
    let mut ys: Vec<f64> = ring.iter().map(|p| p[1]).chain([cam.lat]).collect();
    let mut zs = vec![0.0; xs.len()];
    to_xy
        .transform_coords(&mut xs, &mut ys, &mut zs)
        .map_err(|e| format!("cannot transform the footprint: {e}"))?;
    let n = xs.len() - 1;
    let (mut e0, mut n0, mut e1, mut n1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for i in 0..n {
        e0 = e0.min(xs[i]);
        n0 = n0.min(ys[i]);
        e1 = e1.max(xs[i]);
        n1 = n1.max(ys[i]);
    }
    Ok(Placed {
        camera: [xs[n], ys[n]],
        above: (cam.height_m - hit.height_m).max(1.0),
        level: hit.height_m,
        cells: [
            (e0 / g).floor() as i64,
            (n0 / g).floor() as i64,
            (e1 / g).ceil() as i64,
            (n1 / g).ceil() as i64,
        ],
        photo_gsd,
        geom,
    })
}

/// Paints the cells this photo sees closer to nadir than any photo before it. `origin` is
/// the global cell of the output's west edge and north edge. `Ok(false)`: no cell won.
#[allow(clippy::too_many_arguments)]
fn paint(
    c: &Capture,
    p: &Placed,
    ground: &Ground,
    to_ll: &CoordTransform,
    g: f64,
    origin: [i64; 2],
    out_w: usize,
    rgb: &mut [[u8; 3]],
    score: &mut [u16],
) -> Result<bool, String> {
    let [cx0, cy0, cx1, cy1] = p.cells;
    let (w, h) = ((cx1 - cx0) as usize, (cy1 - cy0) as usize);
    let s = ((g / p.photo_gsd).floor() as usize).clamp(1, 64);
    let (ws, hs, px) = crate::ortho::decode_blocks(
        Path::new(&c.file),
        s,
        2,
        "too small for the mosaic",
        &mut Vec::new(),
    )?;
    // Pixel coordinates at lattice nodes; NaN where the ground is not seen.
    let nx = w.div_ceil(LATTICE) + 1;
    let ny = h.div_ceil(LATTICE) + 1;
    let mut xs = Vec::with_capacity(nx * ny);
    let mut ys = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            xs.push((cx0 as f64 + (i * LATTICE) as f64 + 0.5) * g);
            ys.push((cy0 as f64 + (j * LATTICE) as f64 + 0.5) * g);
        }
    }
    let mut zs = vec![0.0; xs.len()];
    to_ll
        .transform_coords(&mut xs, &mut ys, &mut zs)
        .map_err(|e| format!("cannot transform the grid: {e}"))?;
    let mut nodes = vec![[f64::NAN; 2]; nx * ny];
    for (k, node) in nodes.iter_mut().enumerate() {
        let (lon, lat) = (xs[k], ys[k]);
        let hgt = match ground {
            Ground::Dem(d) => d.height_at(lat, lon).ok().flatten(),
            _ => Some(p.level),
        };
        if let Some(hgt) = hgt {
            if let Ok(q) = p.geom.ground_to_pixel(lat, lon, hgt) {
                *node = q;
            }
        }
    }
    let sf = s as f64;
    let mut won = false;
    for j in 0..h {
        let gy = cy0 + j as i64;
        let row = origin[1] - 1 - gy;
        if row < 0 {
            continue;
        }
        let yc = (gy as f64 + 0.5) * g - p.camera[1];
        for i in 0..w {
            let Some((u, v)) = lattice_uv(&nodes, nx, i, j, sf, ws, hs) else {
                continue;
            };
            let gx = cx0 + i as i64;
            let col = gx - origin[0];
            if col < 0 || col as usize >= out_w {
                continue;
            }
            let xc = (gx as f64 + 0.5) * g - p.camera[0];
            // tan² of the off-nadir angle, quantised: smaller is closer to nadir.
            let t2 = (xc * xc + yc * yc) / (p.above * p.above);
            let sc = (t2 * 10_000.0).min((EMPTY - 1) as f64) as u16;
            let k = row as usize * out_w + col as usize;
            if sc >= score[k] {
                continue;
            }
            let (ui, vi) = (u as usize, v as usize);
            let (fu, fv) = ((u - ui as f64) as f32, (v - vi as f64) as f32);
            let o = vi * ws + ui;
            let mut val = [0u8; 3];
            for (ch, out) in val.iter_mut().enumerate() {
                let x = (px[o][ch] * (1.0 - fu) + px[o + 1][ch] * fu) * (1.0 - fv)
                    + (px[o + ws][ch] * (1.0 - fu) + px[o + ws + 1][ch] * fu) * fv;
                *out = x.round().clamp(0.0, 255.0) as u8;
            }
            rgb[k] = val;
            score[k] = sc;
            won = true;
        }
    }
    Ok(won)
}

/// Writes the grid as a tiled GeoTIFF beside `out`, block by block, then copies it with
/// GDAL's COG driver (overviews, DEFLATE) and removes the intermediate file.
#[allow(clippy::too_many_arguments)]
fn write_cog(
    out: &Path,
    srs: &SpatialRef,
    extent: [f64; 4],
    g: f64,
    w: usize,
    h: usize,
    rgb: &[[u8; 3]],
    score: &[u16],
) -> Result<(), String> {
    let err = |what: &str, e: gdal::errors::GdalError| {
        format!(
            "cannot write {} ({what}): {e}; check the folder exists, is writable and has space",
            out.display()
        )
    };
    let tmp = out.with_extension("partial.tif");
    {
        let gtiff = DriverManager::get_driver_by_name("GTiff").map_err(|e| err("GTiff", e))?;
        let opts = RasterCreationOptions::from_iter([
            "TILED=YES",
            "COMPRESS=DEFLATE",
            "PHOTOMETRIC=RGB",
            "ALPHA=YES",
            "BIGTIFF=IF_SAFER",
        ]);
        let mut ds = gtiff
            .create_with_band_type_with_options::<u8, _>(&tmp, w, h, 4, &opts)
            .map_err(|e| err("create", e))?;
        ds.set_geo_transform(&[extent[0], g, 0.0, extent[3], 0.0, -g])
            .map_err(|e| err("geotransform", e))?;
        ds.set_spatial_ref(srs).map_err(|e| err("CRS", e))?;
        const ROWS: usize = 256;
        // Colour channels 0-2, then alpha.
        for (band, channel) in [Some(0usize), Some(1), Some(2), None]
            .into_iter()
            .enumerate()
        {
            let mut rb = ds.rasterband(band + 1).map_err(|e| err("band", e))?;
            if channel.is_none() {
                rb.set_color_interpretation(ColorInterpretation::AlphaBand)
                    .map_err(|e| err("alpha", e))?;
            }
            let mut r0 = 0;
            while r0 < h {
                let n = ROWS.min(h - r0);
                let data: Vec<u8> = (r0 * w..(r0 + n) * w)
                    .map(|k| match channel {
                        Some(ch) => rgb[k][ch],
                        None if score[k] == EMPTY => 0,
                        None => 255,
                    })
                    .collect();
                rb.write((0, r0 as isize), (w, n), &mut Buffer::new((w, n), data))
                    .map_err(|e| err("pixels", e))?;
                r0 += n;
            }
        }
        let cog = DriverManager::get_driver_by_name("COG").map_err(|e| err("COG driver", e))?;
        let opts = RasterCreationOptions::from_iter([
            "COMPRESS=DEFLATE",
            "BLOCKSIZE=512",
            "OVERVIEWS=AUTO",
            "BIGTIFF=IF_SAFER",
        ]);
        ds.create_copy(&cog, out, &opts)
            .map_err(|e| err("COG copy", e))?;
    }
    std::fs::remove_file(&tmp).map_err(|e| format!("cannot remove {}: {e}", tmp.display()))?;
    Ok(())
}

/// The captures with the poses of `poses` (e.g. read back from `besikta align`'s JSON),
/// matched by file name; photos without a pose keep their metadata. Returns the captures
/// and how many took a pose.
pub fn apply_poses_by_name(
    captures: &[Capture],
    poses: &[crate::PhotoPose],
) -> (Vec<Capture>, usize) {
    let name = |f: &str| {
        Path::new(f)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut matched = 0;
    let out = captures
        .iter()
        .map(|c| {
            let n = name(&c.file);
            match poses
                .iter()
                .find(|p| p.file == c.file || name(&p.file) == n)
            {
                Some(p) => {
                    matched += 1;
                    crate::apply_pose(c, p)
                }
                None => c.clone(),
            }
        })
        .collect();
    (out, matched)
}
