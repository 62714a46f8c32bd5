//! One photo projected onto the ground at a coarse common GSD, in the flight's local metric
//! frame: the gradient image (vegetation masked) that pairs are correlated on.

use besikta_core::Capture;
use besikta_georef::geodesy::{ecef_to_geodetic, geodetic_to_ecef, EnuFrame};
use besikta_georef::{FootprintOptions, Ground, PhotoGeometry};
use std::path::Path;

/// The flight's local East-North-Up frame, metres, with a common grid of square cells.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    enu: EnuFrame,
    h0: f64,
    /// Cell size, metres.
    pub gsd: f64,
}

impl Frame {
    pub fn new(lat: f64, lon: f64, h0: f64, gsd: f64) -> Frame {
        Frame {
            enu: EnuFrame::new(lat, lon, h0),
            h0,
            gsd,
        }
    }

    /// East, north (metres) of a geodetic point.
    pub fn to_enu(&self, lat: f64, lon: f64, h: f64) -> [f64; 2] {
        let p = self.enu.from_ecef(geodetic_to_ecef(lat, lon, h));
        [p[0], p[1]]
    }

    /// Latitude, longitude of the point `[east, north]` at height `h` (same vertical
    /// reference as the frame's origin height).
    pub fn to_geo(&self, en: [f64; 2], h: f64) -> [f64; 2] {
        let g = ecef_to_geodetic(self.enu.to_ecef([en[0], en[1], h - self.h0]));
        [g[0], g[1]]
    }

    /// Height of the ground under the flight (the take-off point's, from the photos'
    /// absolute minus relative altitude; 0 when none says), the frame's origin height.
    pub fn ground_height(&self) -> f64 {
        self.h0
    }

    /// Centre of global cell `(ix, iy)` in metres.
    pub fn cell_centre(&self, ix: i64, iy: i64) -> [f64; 2] {
        [(ix as f64 + 0.5) * self.gsd, (iy as f64 + 0.5) * self.gsd]
    }
}

/// A raster on the global grid: cell `(x0 + i, y0 + j)` is `val[j * w + i]`; rows go north.
#[derive(Debug, Clone)]
pub(crate) struct Raster {
    pub x0: i64,
    pub y0: i64,
    pub w: usize,
    pub h: usize,
    /// Two channels: grey level in `[0]` for grey rasters; gradient east and north for
    /// gradient rasters.
    pub val: Vec<[f32; 2]>,
    pub ok: Vec<bool>,
}

impl Raster {
    pub fn new(x0: i64, y0: i64, w: usize, h: usize) -> Raster {
        Raster {
            x0,
            y0,
            w,
            h,
            val: vec![[0.0; 2]; w * h],
            ok: vec![false; w * h],
        }
    }

    pub fn x1(&self) -> i64 {
        self.x0 + self.w as i64
    }

    pub fn y1(&self) -> i64 {
        self.y0 + self.h as i64
    }

    /// Means of `f x f` blocks; a block is valid when at least half its cells are.
    pub fn downsample(&self, f: usize) -> Raster {
        let x0 = self.x0.div_euclid(f as i64);
        let y0 = self.y0.div_euclid(f as i64);
        let x1 = (self.x1() + f as i64 - 1).div_euclid(f as i64);
        let y1 = (self.y1() + f as i64 - 1).div_euclid(f as i64);
        let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
        let mut sum = vec![[0f32; 2]; w * h];
        let mut cnt = vec![0u32; w * h];
        for j in 0..self.h {
            let gy = (self.y0 + j as i64).div_euclid(f as i64) - y0;
            for i in 0..self.w {
                let k = j * self.w + i;
                if self.ok[k] {
                    let gx = (self.x0 + i as i64).div_euclid(f as i64) - x0;
                    let c = gy as usize * w + gx as usize;
                    sum[c][0] += self.val[k][0];
                    sum[c][1] += self.val[k][1];
                    cnt[c] += 1;
                }
            }
        }
        let mut out = Raster::new(x0, y0, w, h);
        let need = ((f * f) as u32).div_ceil(2);
        for c in 0..w * h {
            if cnt[c] >= need {
                out.val[c] = [sum[c][0] / cnt[c] as f32, sum[c][1] / cnt[c] as f32];
                out.ok[c] = true;
            }
        }
        out
    }
}

/// A photo on the ground, ready to be correlated.
#[derive(Debug)]
pub(crate) struct Ortho {
    /// Gradient (east, north) at the fine GSD, vegetation and the photo's edges masked.
    pub fine: Raster,
    /// The gradient of the grey image averaged down [`COARSE`] times.
    pub coarse: Raster,
    /// The same averaged down [`TOP`] times: the whole search radius is scanned here.
    pub top: Raster,
    /// Cells seen by the photo at all (before masking), for overlap fractions.
    pub seen: Vec<bool>,
    /// Camera position, metres east/north in the flight frame.
    pub camera: [f64; 2],
    /// Envelope `[xmin, ymin, xmax, ymax]` in metres.
    pub envelope: [f64; 4],
    /// The same levels without the vegetation mask, when the photo has vegetation: a
    /// fallback for pairs that share too little other ground (lawns are at ground level;
    /// the acceptance test guards against treetops).
    pub plain: Option<Box<Ortho>>,
}

/// Coarse level factor.
pub(crate) const COARSE: usize = 4;
/// Top level factor (a multiple of [`COARSE`]).
pub(crate) const TOP: usize = 8;
/// Lattice step (cells) at which the exact camera model is evaluated; pixels in between
/// are interpolated (the ground-to-pixel map is smooth at this scale).
pub(crate) const LATTICE: usize = 8;

/// Where cell `i`, `j` of a grid falls in a photo read in `s x s` blocks (`sf` = `s`,
/// `ws x hs` blocks): the exact pixel positions at the [`LATTICE`] nodes (`nx` per row,
/// NaN where the ground is not seen) interpolated bilinearly, in block units. `None`
/// when that is not inside the photo with a block to its right and below.
pub(crate) fn lattice_uv(
    nodes: &[[f64; 2]],
    nx: usize,
    i: usize,
    j: usize,
    sf: f64,
    ws: usize,
    hs: usize,
) -> Option<(f64, f64)> {
    let (nj, fj) = (j / LATTICE, (j % LATTICE) as f64 / LATTICE as f64);
    let (ni, fi) = (i / LATTICE, (i % LATTICE) as f64 / LATTICE as f64);
    let a = nodes[nj * nx + ni];
    let b = nodes[nj * nx + ni + 1];
    let c = nodes[(nj + 1) * nx + ni];
    let d = nodes[(nj + 1) * nx + ni + 1];
    let mut px = [0.0; 2];
    for k in 0..2 {
        px[k] = (a[k] * (1.0 - fi) + b[k] * fi) * (1.0 - fj) + (c[k] * (1.0 - fi) + d[k] * fi) * fj;
    }
    let u = px[0] / sf - 0.5;
    let v = px[1] / sf - 0.5;
    (u >= 0.0 && v >= 0.0 && u < (ws - 1) as f64 && v < (hs - 1) as f64).then_some((u, v))
}

/// A photo read for projection: pixels averaged in `s x s` blocks, as luminance and excess
/// green (`ws x hs`, row-major). It depends only on the file and `s`, so it can be read on
/// another thread ahead of its projection ([`crate::grounds`]).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub s: usize,
    ws: usize,
    hs: usize,
    lum: Vec<f32>,
    exg: Vec<f32>,
}

/// Reads the photo with its pixels averaged in `s x s` blocks: luminance and excess green.
pub(crate) fn decode_downscaled(
    path: &Path,
    s: usize,
    pixels: &mut Vec<u8>,
) -> Result<Decoded, String> {
    let (ws, hs, px) = decode_blocks(path, s, 8, "too small to align", pixels)?;
    let mut lum = Vec::with_capacity(ws * hs);
    let mut exg = Vec::with_capacity(ws * hs);
    for [r, g, b] in px {
        lum.push(0.299 * r + 0.587 * g + 0.114 * b);
        exg.push(2.0 * g - r - b);
    }
    Ok(Decoded {
        s,
        ws,
        hs,
        lum,
        exg,
    })
}

/// The block size photo pixels are averaged in before projection: as many photo pixels as
/// fit in one ground cell at the photo's centre (1 to 64).
fn block_size(geom: &PhotoGeometry<'_>, frame: &Frame) -> Result<usize, String> {
    let photo_gsd = geom.gsd_cm_center().map_err(|e| e.to_string())? / 100.0;
    Ok(((frame.gsd / photo_gsd).floor() as usize).clamp(1, 64))
}

/// What [`decode_downscaled`] will be asked for this photo: its file and block size, or
/// `None` when the photo does not place on the ground (its projection says why).
pub(crate) fn decode_request(
    capture: &Capture,
    ground: &Ground,
    frame: &Frame,
) -> Option<(std::path::PathBuf, usize)> {
    let geom = PhotoGeometry::new(capture, ground).ok()?;
    let s = block_size(&geom, frame).ok()?;
    Some((std::path::PathBuf::from(&capture.file), s))
}

/// Reads the photo with its pixels averaged in `s x s` blocks (RGB, row-major, `ws x hs`).
/// The same pixel limit as ingest and inference is checked on the header, before any
/// allocation, so a decompression bomb costs nothing here either. A photo under
/// `min_side` blocks on either side is an error ending in `too_small`. The photo is decoded
/// into `pixels`' memory, which holds its pixels afterwards: a caller decoding many photos
/// passes the same buffer each time (a fresh photo-sized one per photo would be mapped and
/// faulted in again each time: a third of alignment's CPU on a 9 MP flight went to the kernel).
pub(crate) fn decode_blocks(
    path: &Path,
    s: usize,
    min_side: usize,
    too_small: &str,
    pixels: &mut Vec<u8>,
) -> Result<(usize, usize, Vec<[f32; 3]>), String> {
    let open = || {
        image::ImageReader::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?
            .with_guessed_format()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let max_pixels = besikta_ingest::ReadOptions::default().max_pixels;
    let (w, h) = open()?
        .into_dimensions()
        .map_err(|e| format!("cannot decode {}: {e}", path.display()))?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!(
            "{} is {w}x{h} pixels, over the limit of {} megapixels",
            path.display(),
            max_pixels / 1_000_000
        ));
    }
    let mut reader = open()?;
    reader.no_limits();
    let cannot = |e: image::ImageError| format!("cannot decode {}: {e}", path.display());
    let decoder = reader.into_decoder().map_err(cannot)?;
    use image::ImageDecoder as _;
    let img = if decoder.color_type() == image::ColorType::Rgb8 {
        let (w, h) = decoder.dimensions();
        let mut buf = std::mem::take(pixels);
        buf.resize(decoder.total_bytes() as usize, 0);
        decoder.read_image(&mut buf).map_err(cannot)?;
        image::RgbImage::from_raw(w, h, buf)
            .ok_or_else(|| format!("cannot decode {}: short pixel buffer", path.display()))?
    } else {
        image::DynamicImage::from_decoder(decoder)
            .map_err(cannot)?
            .into_rgb8()
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (ws, hs) = (w / s, h / s);
    let out = if ws < min_side || hs < min_side {
        Err(format!("{} is {too_small}", path.display()))
    } else {
        let mut sums = vec![[0u32; 3]; ws * hs];
        let raw = img.as_raw();
        for y in 0..hs * s {
            let row = &raw[y * w * 3..(y * w + ws * s) * 3];
            let base = (y / s) * ws;
            for (x, px) in row.chunks_exact(3).enumerate() {
                let acc = &mut sums[base + x / s];
                acc[0] += px[0] as u32;
                acc[1] += px[1] as u32;
                acc[2] += px[2] as u32;
            }
        }
        let n = (s * s) as f32;
        // In place: the sums become the block means (same element size).
        let px: Vec<[f32; 3]> = sums
            .into_iter()
            .map(|a| [a[0] as f32 / n, a[1] as f32 / n, a[2] as f32 / n])
            .collect();
        Ok((ws, hs, px))
    };
    *pixels = img.into_raw();
    out
}

/// Heights of the ground the photo is projected onto.
pub(crate) enum Heights<'g> {
    Level(f64),
    Dem(&'g besikta_georef::Dem),
}

/// Projects one photo onto the ground. `Err` says in words why it cannot be used.
/// `decoded`, when given, is the photo already read ([`decode_request`]); one read with
/// another block size, or none, is read here.
pub(crate) fn project(
    capture: &Capture,
    ground: &Ground,
    frame: &Frame,
    exg_threshold: f32,
    decoded: Option<Result<Decoded, String>>,
) -> Result<Ortho, String> {
    project_gray_with(capture, ground, frame, exg_threshold, decoded).map(into_ortho)
}

/// A photo's grey image on the flight grid, before the gradient levels are made of it.
#[derive(Debug, Clone)]
pub(crate) struct GrayGround {
    pub gray: Raster,
    /// Vegetation (excess green over the threshold), per cell of `gray`.
    pub veg: Vec<bool>,
    pub camera: [f64; 2],
    pub envelope: [f64; 4],
}

/// The gradient levels of a projected grey image (and, when it has vegetation, the same
/// without the vegetation mask).
pub(crate) fn into_ortho(g: GrayGround) -> Ortho {
    let GrayGround {
        gray,
        veg,
        camera,
        envelope,
    } = g;
    let plain = veg.iter().any(|&v| v).then(|| {
        Box::new(levels(
            gray.clone(),
            &vec![false; veg.len()],
            camera,
            envelope,
        ))
    });
    let mut o = levels(gray, &veg, camera, envelope);
    o.plain = plain;
    o
}

/// Projects one photo's grey image onto the ground (see [`project`]).
pub(crate) fn project_gray(
    capture: &Capture,
    ground: &Ground,
    frame: &Frame,
    exg_threshold: f32,
) -> Result<GrayGround, String> {
    project_gray_with(capture, ground, frame, exg_threshold, None)
}

fn project_gray_with(
    capture: &Capture,
    ground: &Ground,
    frame: &Frame,
    exg_threshold: f32,
    decoded: Option<Result<Decoded, String>>,
) -> Result<GrayGround, String> {
    let geom = PhotoGeometry::new(capture, ground)
        .map_err(|e| format!("cannot place the photo on the ground: {e}"))?;
    let cam = geom.camera_position();
    let camera = frame.to_enu(cam.lat, cam.lon, cam.height_m);
    let centre = [
        geom.camera().width as f64 / 2.0,
        geom.camera().height as f64 / 2.0,
    ];
    let hit = geom
        .pixel_to_ground(centre)
        .map_err(|e| format!("the centre of the photo does not meet the ground: {e}"))?;
    let heights = match ground {
        Ground::Dem(d) => Heights::Dem(d),
        _ => Heights::Level(hit.height_m),
    };
    let s = block_size(&geom, frame)?;
    let ring = geom
        .footprint(&FootprintOptions {
            points_per_edge: 8,
            max_range_m: 250.0,
        })
        .map_err(|e| format!("no footprint: {e}"))?;
    let (mut e0, mut n0, mut e1, mut n1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in &ring {
        let q = frame.to_enu(p[1], p[0], hit.height_m);
        e0 = e0.min(q[0]);
        n0 = n0.min(q[1]);
        e1 = e1.max(q[0]);
        n1 = n1.max(q[1]);
    }
    let g = frame.gsd;
    let (x0, y0) = ((e0 / g).floor() as i64, (n0 / g).floor() as i64);
    let (x1, y1) = ((e1 / g).ceil() as i64, (n1 / g).ceil() as i64);
    let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
    if w * h > 40_000_000 {
        return Err(format!(
            "its footprint ({:.0} x {:.0} m) is too large to align at {:.0} cm per cell",
            e1 - e0,
            n1 - n0,
            g * 100.0
        ));
    }
    let Decoded {
        ws, hs, lum, exg, ..
    } = match decoded {
        Some(Ok(d)) if d.s == s => d,
        Some(Err(e)) => return Err(e),
        _ => decode_downscaled(Path::new(&capture.file), s, &mut Vec::new())?,
    };

    // Pixel coordinates (original photo) at lattice nodes; NaN where the ground is not seen.
    let nx = w.div_ceil(LATTICE) + 1;
    let ny = h.div_ceil(LATTICE) + 1;
    let mut nodes = vec![[f64::NAN; 2]; nx * ny];
    for j in 0..ny {
        for i in 0..nx {
            let en = frame.cell_centre(x0 + (i * LATTICE) as i64, y0 + (j * LATTICE) as i64);
            let ll = frame.to_geo(en, hit.height_m);
            let hgt = match &heights {
                Heights::Level(v) => Some(*v),
                Heights::Dem(d) => d.height_at(ll[0], ll[1]).ok().flatten(),
            };
            if let Some(hgt) = hgt {
                let ll = frame.to_geo(en, hgt);
                if let Ok(px) = geom.ground_to_pixel(ll[0], ll[1], hgt) {
                    nodes[j * nx + i] = px;
                }
            }
        }
    }
    let mut gray = Raster::new(x0, y0, w, h);
    let mut veg = vec![false; w * h];
    let sf = s as f64;
    for j in 0..h {
        for i in 0..w {
            let Some((u, v)) = lattice_uv(&nodes, nx, i, j, sf, ws, hs) else {
                continue;
            };
            let (ui, vi) = (u as usize, v as usize);
            let (fu, fv) = ((u - ui as f64) as f32, (v - vi as f64) as f32);
            let q = vi * ws + ui;
            let val = (lum[q] * (1.0 - fu) + lum[q + 1] * fu) * (1.0 - fv)
                + (lum[q + ws] * (1.0 - fu) + lum[q + ws + 1] * fu) * fv;
            let k = j * w + i;
            gray.val[k] = [val, 0.0];
            gray.ok[k] = true;
            let nearest = (v.round() as usize).min(hs - 1) * ws + (u.round() as usize).min(ws - 1);
            veg[k] = exg[nearest] > exg_threshold;
        }
    }
    let envelope = [x0 as f64 * g, y0 as f64 * g, x1 as f64 * g, y1 as f64 * g];
    Ok(GrayGround {
        gray,
        veg,
        camera,
        envelope,
    })
}

/// The gradient levels of a grey raster on the flight grid (`veg` marks masked cells).
pub(crate) fn levels(gray: Raster, veg: &[bool], camera: [f64; 2], envelope: [f64; 4]) -> Ortho {
    let seen = gray.ok.clone();
    let fine = gradient(&blur(&gray), veg);
    let mut veg_raster = gray;
    for (v, &g) in veg_raster.val.iter_mut().zip(veg) {
        v[1] = if g { 1.0 } else { 0.0 };
    }
    let small = veg_raster.downsample(COARSE);
    let small_veg: Vec<bool> = small.val.iter().map(|v| v[1] > 0.5).collect();
    let coarse = gradient(&small, &small_veg);
    let smaller = veg_raster.downsample(TOP);
    let smaller_veg: Vec<bool> = smaller.val.iter().map(|v| v[1] > 0.5).collect();
    let top = gradient(&smaller, &smaller_veg);
    Ortho {
        fine,
        coarse,
        top,
        seen,
        camera,
        envelope,
        plain: None,
    }
}

/// Sobel gradient (east, north) of a grey raster, in grey levels per cell; cells that are
/// vegetation or lack a neighbour are not valid.
fn gradient(gray: &Raster, veg: &[bool]) -> Raster {
    let (w, h) = (gray.w, gray.h);
    let mut out = Raster::new(gray.x0, gray.y0, w, h);
    for j in 1..h.saturating_sub(1) {
        for i in 1..w.saturating_sub(1) {
            let k = j * w + i;
            if veg[k] {
                continue;
            }
            // Rows go north: k + w is the cell north of k.
            let idx = [
                k - w - 1,
                k - w,
                k - w + 1,
                k - 1,
                k + 1,
                k + w - 1,
                k + w,
                k + w + 1,
            ];
            if !idx.iter().all(|&q| gray.ok[q]) {
                continue;
            }
            let p = |q: usize| gray.val[q][0];
            let ge = (p(idx[2]) + 2.0 * p(idx[4]) + p(idx[7]))
                - (p(idx[0]) + 2.0 * p(idx[3]) + p(idx[5]));
            let gn = (p(idx[5]) + 2.0 * p(idx[6]) + p(idx[7]))
                - (p(idx[0]) + 2.0 * p(idx[1]) + p(idx[2]));
            out.val[k] = [ge / 8.0, gn / 8.0];
            out.ok[k] = true;
        }
    }
    out
}

/// A [1 2 1] x [1 2 1] binomial blur of a grey raster (valid cells only): gradients of the
/// blurred image tolerate the small misregistration a rotation leaves inside a tile.
pub(crate) fn blur(gray: &Raster) -> Raster {
    let (w, h) = (gray.w, gray.h);
    let mut out = gray.clone();
    for j in 1..h.saturating_sub(1) {
        for i in 1..w.saturating_sub(1) {
            let k = j * w + i;
            if !gray.ok[k] {
                continue;
            }
            let (mut s, mut n) = (0f32, 0f32);
            for (dj, wj) in [(-1i64, 1f32), (0, 2.0), (1, 1.0)] {
                for (di, wi) in [(-1i64, 1f32), (0, 2.0), (1, 1.0)] {
                    let q = (k as i64 + dj * w as i64 + di) as usize;
                    if gray.ok[q] {
                        s += wj * wi * gray.val[q][0];
                        n += wj * wi;
                    }
                }
            }
            out.val[k] = [s / n, 0.0];
        }
    }
    out
}
