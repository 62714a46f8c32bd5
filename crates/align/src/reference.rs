//! A reference orthophoto (any georeferenced raster GDAL reads, in any CRS) resampled onto
//! the flight's grid, so each photo can be correlated with it like with a neighbour.

use crate::ortho::{levels, Frame, Ortho, Raster};
use besikta_georef::CrsTransform;
use gdal::Dataset;
use std::path::{Path, PathBuf};

/// An opened reference orthophoto.
#[derive(Debug)]
pub struct Reference {
    path: PathBuf,
    ds: Dataset,
    crs: CrsTransform,
    gt: [f64; 6],
    size: (usize, usize),
}

impl Reference {
    /// Opens `path`; `Err` says what is wrong and what to do.
    pub fn open(path: &Path) -> Result<Reference, String> {
        let ds = Dataset::open(path).map_err(|e| {
            format!(
                "cannot read the reference {}: {e}; pass a GeoTIFF (or any raster GDAL reads)",
                path.display()
            )
        })?;
        let srs = ds.spatial_ref().map_err(|_| {
            format!(
                "the reference {} has no coordinate system; give it one (e.g. gdal_edit.py -a_srs EPSG:...)",
                path.display()
            )
        })?;
        let wkt = srs.to_wkt().map_err(|e| e.to_string())?;
        let crs = CrsTransform::from_wgs84(&wkt).map_err(|e| e.to_string())?;
        let gt = ds.geo_transform().map_err(|_| {
            format!(
                "the reference {} is not georeferenced (no geotransform)",
                path.display()
            )
        })?;
        if gt[2] != 0.0 || gt[4] != 0.0 {
            return Err(format!(
                "the reference {} is rotated; warp it north-up first (gdalwarp)",
                path.display()
            ));
        }
        let size = ds.raster_size();
        Ok(Reference {
            path: path.to_path_buf(),
            ds,
            crs,
            gt,
            size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// Ground size of one pixel along x and y in the reference's CRS units (both positive).
    pub fn pixel_size(&self) -> [f64; 2] {
        [self.gt[1].abs(), self.gt[5].abs()]
    }

    /// The reference's EPSG code, when its CRS has one.
    pub fn epsg(&self) -> Option<u32> {
        self.crs.epsg()
    }

    /// The ground it covers in WGS 84, `[min lon, min lat, max lon, max lat]` (its edges
    /// sampled, so a grid rotated against north in WGS 84 is enclosed too).
    pub fn bounds_wgs84(&self) -> Result<[f64; 4], String> {
        let (w, h) = (self.size.0 as f64, self.size.1 as f64);
        let mut pts = Vec::new();
        for k in 0..=8 {
            let t = f64::from(k) / 8.0;
            for (c, r) in [(t * w, 0.0), (t * w, h), (0.0, t * h), (w, t * h)] {
                pts.push([self.gt[0] + c * self.gt[1], self.gt[3] + r * self.gt[5]]);
            }
        }
        self.crs.inverse_many(&mut pts).map_err(|e| {
            format!(
                "the reference {} cannot be placed in WGS 84: {e}",
                self.path.display()
            )
        })?;
        let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for p in &pts {
            b = [
                b[0].min(p[0]),
                b[1].min(p[1]),
                b[2].max(p[0]),
                b[3].max(p[1]),
            ];
        }
        if !b.iter().all(|v| v.is_finite()) || b[1] < -90.0 || b[3] > 90.0 {
            return Err(format!(
                "the reference {} lies outside the Earth in its coordinate system; check its CRS",
                self.path.display()
            ));
        }
        Ok(b)
    }

    /// The reference on the flight grid over `envelope` (metres, flight frame) at the
    /// height `h` of the ground, as correlation levels; `Err` when it does not cover it.
    pub(crate) fn project(
        &self,
        frame: &Frame,
        envelope: [f64; 4],
        h: f64,
        exg_threshold: f32,
    ) -> Result<Ortho, String> {
        let g = frame.gsd;
        let (x0, y0) = (
            (envelope[0] / g).floor() as i64,
            (envelope[1] / g).floor() as i64,
        );
        let (x1, y1) = (
            (envelope[2] / g).ceil() as i64,
            (envelope[3] / g).ceil() as i64,
        );
        let (w, h_cells) = ((x1 - x0) as usize, (y1 - y0) as usize);
        if w * h_cells > 60_000_000 {
            return Err("the flight is too large to hold the reference in memory".into());
        }
        // Reference coordinates of every cell centre.
        let mut pts = Vec::with_capacity(w * h_cells);
        for j in 0..h_cells {
            for i in 0..w {
                let ll = frame.to_geo(frame.cell_centre(x0 + i as i64, y0 + j as i64), h);
                pts.push([ll[1], ll[0]]);
            }
        }
        self.crs.apply_many(&mut pts).map_err(|e| e.to_string())?;
        // The window of the reference those cover, read at about the flight grid's GSD.
        let (mut c0, mut r0, mut c1, mut r1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        let px = |p: [f64; 2]| {
            [
                (p[0] - self.gt[0]) / self.gt[1],
                (p[1] - self.gt[3]) / self.gt[5],
            ]
        };
        for p in &pts {
            let q = px(*p);
            c0 = c0.min(q[0]);
            r0 = r0.min(q[1]);
            c1 = c1.max(q[0]);
            r1 = r1.max(q[1]);
        }
        let (ws, hs) = (self.size.0 as f64, self.size.1 as f64);
        let (c0, r0) = (c0.floor().max(0.0), r0.floor().max(0.0));
        let (c1, r1) = (c1.ceil().min(ws), r1.ceil().min(hs));
        if c1 - c0 < 8.0 || r1 - r0 < 8.0 {
            return Err(format!(
                "the reference {} does not cover the flight",
                self.path.display()
            ));
        }
        let factor = (g / self.gt[1].abs()).floor().max(1.0);
        let (win_w, win_h) = ((c1 - c0) as usize, (r1 - r0) as usize);
        let (buf_w, buf_h) = (
            ((win_w as f64 / factor) as usize).max(1),
            ((win_h as f64 / factor) as usize).max(1),
        );
        let bands = self.ds.raster_count().min(3);
        let mut rgb = Vec::new();
        for b in 1..=bands {
            let band = self.ds.rasterband(b).map_err(|e| e.to_string())?;
            let buf = band
                .read_as::<u8>(
                    (c0 as isize, r0 as isize),
                    (win_w, win_h),
                    (buf_w, buf_h),
                    Some(gdal::raster::ResampleAlg::Average),
                )
                .map_err(|e| format!("reading the reference {}: {e}", self.path.display()))?;
            rgb.push(buf.data().to_vec());
        }
        let (sx, sy) = (win_w as f64 / buf_w as f64, win_h as f64 / buf_h as f64);
        let mut gray = Raster::new(x0, y0, w, h_cells);
        let mut veg = vec![false; w * h_cells];
        for (k, p) in pts.iter().enumerate() {
            let q = px(*p);
            let u = (q[0] - c0) / sx - 0.5;
            let v = (q[1] - r0) / sy - 0.5;
            if !(u >= 0.0 && v >= 0.0 && u < (buf_w - 1) as f64 && v < (buf_h - 1) as f64) {
                continue;
            }
            let (ui, vi) = (u as usize, v as usize);
            let (fu, fv) = ((u - ui as f64) as f32, (v - vi as f64) as f32);
            let at = |band: &Vec<u8>| {
                let s = |x: usize, y: usize| band[y * buf_w + x] as f32;
                (s(ui, vi) * (1.0 - fu) + s(ui + 1, vi) * fu) * (1.0 - fv)
                    + (s(ui, vi + 1) * (1.0 - fu) + s(ui + 1, vi + 1) * fu) * fv
            };
            let (lum, exg) = if rgb.len() >= 3 {
                let (r, gg, b) = (at(&rgb[0]), at(&rgb[1]), at(&rgb[2]));
                (0.299 * r + 0.587 * gg + 0.114 * b, 2.0 * gg - r - b)
            } else {
                (at(&rgb[0]), 0.0)
            };
            gray.val[k] = [lum, 0.0];
            gray.ok[k] = true;
            veg[k] = exg > exg_threshold;
        }
        if gray.ok.iter().filter(|&&o| o).count() < 64 {
            return Err(format!(
                "the reference {} does not cover the flight",
                self.path.display()
            ));
        }
        let centre = [
            (envelope[0] + envelope[2]) / 2.0,
            (envelope[1] + envelope[3]) / 2.0,
        ];
        Ok(levels(gray, &veg, centre, envelope))
    }
}
