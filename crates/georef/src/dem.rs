//! Digital elevation / surface models read through GDAL, sampled bilinearly in their own CRS.
//!
//! Query points arrive as WGS 84 longitude/latitude and are transformed into the DEM's CRS
//! with GDAL/PROJ before sampling, so a DEM in SWEREF 99 TM, ETRS-TM35FIN, UTM or plain
//! degrees is read where it is, never misread as if it were in another CRS. Only the
//! horizontal coordinates are transformed: cell values are taken as metres in the DEM's
//! own vertical datum (see the crate docs for how that meets the camera's altitude).

use crate::crs::{self, CrsTransform};
use crate::geodesy::{geodetic_to_ecef, norm, sub};
use crate::GeorefError;
use gdal::Dataset;
use std::path::{Path, PathBuf};

/// An in-memory elevation grid with its georeferencing, for DEMs that do not come from a
/// file (synthetic terrain for simulations and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct DemGrid {
    /// CRS of the grid, anything GDAL's `SetFromUserInput` accepts (`EPSG:3006`, WKT, ...).
    pub crs: String,
    /// GDAL geotransform: `x = gt[0] + col * gt[1] + row * gt[2]`,
    /// `y = gt[3] + col * gt[4] + row * gt[5]`, for cell corners.
    pub geo_transform: [f64; 6],
    pub width: usize,
    pub height: usize,
    /// Row-major heights in metres, first row at the top; NaN marks no data.
    pub heights_m: Vec<f64>,
}

/// A DEM/DSM held in memory, with a transform from WGS 84 into its CRS.
///
/// The whole first band is read at open (a 5000 x 5000 model takes 100 MB); GDAL objects
/// inside make it neither `Send` nor `Sync`: open one per thread.
#[derive(Debug)]
pub struct Dem {
    path: PathBuf,
    width: usize,
    height: usize,
    heights: Vec<f32>,
    gt: [f64; 6],
    to_dem: CrsTransform,
    min_m: f64,
    max_m: f64,
    cell_m: f64,
}

impl Dem {
    /// Opens a single-band elevation raster (GeoTIFF or anything else GDAL reads).
    pub fn open(path: &Path) -> Result<Dem, GeorefError> {
        let gdal_err = |action: &'static str| {
            move |source| GeorefError::DemGdal {
                path: path.to_path_buf(),
                action,
                source,
            }
        };
        let ds = Dataset::open(path).map_err(gdal_err("open the file"))?;
        let gt = ds.geo_transform().map_err(gdal_err(
            "read the geotransform (is the raster georeferenced?)",
        ))?;
        let srs = ds
            .spatial_ref()
            .map_err(gdal_err("read the coordinate reference system"))?;
        let band = ds.rasterband(1).map_err(gdal_err("open band 1"))?;
        let unit = band.unit();
        if !matches!(
            unit.to_ascii_lowercase().as_str(),
            "" | "m" | "metre" | "meter" | "metres" | "meters"
        ) {
            return Err(GeorefError::Dem {
                path: path.to_path_buf(),
                reason: format!("heights are in {unit:?}; only metres are supported"),
            });
        }
        let nodata = band.no_data_value();
        let scale = band.scale().unwrap_or(1.0);
        let offset = band.offset().unwrap_or(0.0);
        let (width, height) = band.size();
        let buffer = band
            .read_band_as::<f64>()
            .map_err(gdal_err("read the heights"))?;
        let heights = buffer
            .data()
            .iter()
            .map(|&v| match nodata {
                Some(nd) if v == nd || (nd.is_nan() && v.is_nan()) => f64::NAN,
                _ => v * scale + offset,
            })
            .collect();
        let definition = srs
            .authority()
            .unwrap_or_else(|_| srs.name().unwrap_or_else(|| "the DEM's CRS".into()));
        let to_dem = CrsTransform::from_spatial_ref(&definition, srs)
            .map_err(gdal_err("build a transform from WGS 84 to the DEM's CRS"))?;
        Self::build(path.to_path_buf(), width, height, heights, gt, to_dem)
    }

    /// Builds a DEM from an in-memory grid; `name` stands in for the file name in errors.
    pub fn from_grid(name: &str, grid: DemGrid) -> Result<Dem, GeorefError> {
        if grid.heights_m.len() != grid.width * grid.height {
            return Err(GeorefError::Dem {
                path: name.into(),
                reason: format!(
                    "{} heights for a {} x {} grid",
                    grid.heights_m.len(),
                    grid.width,
                    grid.height
                ),
            });
        }
        let to_dem = CrsTransform::from_wgs84(&grid.crs)?;
        Self::build(
            name.into(),
            grid.width,
            grid.height,
            grid.heights_m,
            grid.geo_transform,
            to_dem,
        )
    }

    fn build(
        path: PathBuf,
        width: usize,
        height: usize,
        heights: Vec<f64>,
        gt: [f64; 6],
        to_dem: CrsTransform,
    ) -> Result<Dem, GeorefError> {
        let det = gt[1] * gt[5] - gt[2] * gt[4];
        if det == 0.0 || !det.is_finite() || width < 2 || height < 2 {
            return Err(GeorefError::Dem {
                path,
                reason:
                    "the grid is degenerate (fewer than 2 x 2 cells or a singular geotransform)"
                        .into(),
            });
        }
        let (min_m, max_m) = heights
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if !min_m.is_finite() {
            return Err(GeorefError::Dem {
                path,
                reason: "every cell is no data".into(),
            });
        }
        let mut dem = Dem {
            path,
            width,
            height,
            heights: heights.into_iter().map(|v| v as f32).collect(),
            gt,
            to_dem,
            min_m,
            max_m,
            cell_m: 0.0,
        };
        dem.cell_m = dem.measure_cell_size()?;
        Ok(dem)
    }

    /// Ground size of one cell at the grid's centre, metres (the smaller side), measured by
    /// taking neighbouring cell corners back to WGS 84, so it is right in degrees or feet too.
    fn measure_cell_size(&self) -> Result<f64, GeorefError> {
        let (c, r) = (self.width as f64 / 2.0, self.height as f64 / 2.0);
        let corner = |c: f64, r: f64| {
            [
                self.gt[0] + c * self.gt[1] + r * self.gt[2],
                self.gt[3] + c * self.gt[4] + r * self.gt[5],
            ]
        };
        let mut pts = [corner(c, r), corner(c + 1.0, r), corner(c, r + 1.0)];
        self.to_dem.inverse_many(&mut pts)?;
        let ecef: Vec<[f64; 3]> = pts
            .iter()
            .map(|p| geodetic_to_ecef(p[1], p[0], 0.0))
            .collect();
        let size = norm(sub(ecef[1], ecef[0])).min(norm(sub(ecef[2], ecef[0])));
        if !(size > 0.0 && size.is_finite()) {
            return Err(GeorefError::Dem {
                path: self.path.clone(),
                reason: "cannot measure the cell size on the ground".into(),
            });
        }
        Ok(size)
    }

    /// The file (or name) the DEM came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lowest and highest height in the model, metres.
    pub fn height_range_m(&self) -> [f64; 2] {
        [self.min_m, self.max_m]
    }

    /// Ground size of a cell, metres.
    pub fn cell_size_m(&self) -> f64 {
        self.cell_m
    }

    /// The DEM's CRS as written in the file (authority code when it has one).
    pub fn crs(&self) -> &str {
        self.to_dem.definition()
    }

    /// Height at a WGS 84 position, bilinear between cell centres; `None` outside the
    /// grid or where a neighbouring cell has no data.
    pub fn height_at(&self, lat: f64, lon: f64) -> Result<Option<f64>, GeorefError> {
        let mut out = Vec::with_capacity(1);
        self.heights_at(&mut [[lon, lat]], &mut out)?;
        Ok(out[0])
    }

    /// Heights at many WGS 84 `[lon, lat]` points (the slice is overwritten with DEM CRS
    /// coordinates); one GDAL call for all of them.
    pub(crate) fn heights_at(
        &self,
        lonlat: &mut [[f64; 2]],
        out: &mut Vec<Option<f64>>,
    ) -> Result<(), GeorefError> {
        crs::run_forward(&self.to_dem, lonlat)?;
        out.clear();
        out.extend(lonlat.iter().map(|&[x, y]| self.sample_xy(x, y)));
        Ok(())
    }

    fn sample_xy(&self, x: f64, y: f64) -> Option<f64> {
        let g = &self.gt;
        let (dx, dy) = (x - g[0], y - g[3]);
        let det = g[1] * g[5] - g[2] * g[4];
        let col = (g[5] * dx - g[2] * dy) / det;
        let row = (-g[4] * dx + g[1] * dy) / det;
        let (w, h) = (self.width as f64, self.height as f64);
        if !(0.0..=w).contains(&col) || !(0.0..=h).contains(&row) {
            return None;
        }
        // Cell values stand for cell centres; the outer half cell is held at the edge value
        // so the model covers its whole extent.
        let fx = (col - 0.5).clamp(0.0, w - 1.0);
        let fy = (row - 0.5).clamp(0.0, h - 1.0);
        let i0 = (fx.floor() as usize).min(self.width - 2);
        let j0 = (fy.floor() as usize).min(self.height - 2);
        let (tx, ty) = (fx - i0 as f64, fy - j0 as f64);
        let mut v = 0.0;
        for (i, j, w) in [
            (i0, j0, (1.0 - tx) * (1.0 - ty)),
            (i0 + 1, j0, tx * (1.0 - ty)),
            (i0, j0 + 1, (1.0 - tx) * ty),
            (i0 + 1, j0 + 1, tx * ty),
        ] {
            // A no-data neighbour only matters if it carries weight: on the edge of a hole
            // or of the grid, the valid cells alone decide.
            if w > 0.0 {
                v += w * self.heights[j * self.width + i] as f64;
            }
        }
        v.is_finite().then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3 x 3 cells of 10 m in UTM 15N, values 0..8 row by row from the top.
    fn grid(heights_m: Vec<f64>) -> Dem {
        Dem::from_grid(
            "test-grid",
            DemGrid {
                crs: "EPSG:32615".into(),
                geo_transform: [500_000.0, 10.0, 0.0, 5_188_030.0, 0.0, -10.0],
                width: 3,
                height: 3,
                heights_m,
            },
        )
        .unwrap()
    }

    /// Height at UTM coordinates, going through WGS 84 like every real query.
    fn at(dem: &Dem, x: f64, y: f64) -> Option<f64> {
        let [lon, lat] = dem.to_dem.inverse(x, y).unwrap();
        dem.height_at(lat, lon).unwrap()
    }

    #[test]
    fn cell_values_stand_for_cell_centres_and_interpolate_bilinearly() {
        let dem = grid((0..9).map(f64::from).collect());
        let close = |v: Option<f64>, e: f64| v.is_some_and(|v| (v - e).abs() < 1e-6);
        // Centre of the middle cell (row 1, col 1).
        assert!(close(at(&dem, 500_015.0, 5_188_015.0), 4.0));
        // Half way between the centres of cells (0, 0) and (0, 1), then down a quarter.
        assert!(close(at(&dem, 500_010.0, 5_188_025.0), 0.5));
        assert!(close(at(&dem, 500_010.0, 5_188_022.5), 0.5 + 0.75));
        // The outer half cell holds the edge value.
        assert!(close(at(&dem, 500_001.0, 5_188_029.0), 0.0));
        assert!(close(at(&dem, 500_029.0, 5_188_001.0), 8.0));
        // Outside the grid.
        assert_eq!(at(&dem, 499_999.0, 5_188_015.0), None);
        assert_eq!(at(&dem, 500_015.0, 5_188_031.0), None);
        assert_eq!(dem.height_range_m(), [0.0, 8.0]);
        assert!(
            (dem.cell_size_m() - 10.0).abs() < 0.01,
            "{}",
            dem.cell_size_m()
        );
    }

    #[test]
    fn no_data_cells_are_holes_not_zeros() {
        let mut h: Vec<f64> = (0..9).map(f64::from).collect();
        h[4] = f64::NAN;
        let dem = grid(h);
        assert_eq!(at(&dem, 500_015.0, 5_188_015.0), None);
        assert_eq!(at(&dem, 500_010.0, 5_188_020.0), None);
        assert!(at(&dem, 500_002.0, 5_188_028.0).is_some());
        let err = Dem::from_grid(
            "empty",
            DemGrid {
                crs: "EPSG:32615".into(),
                geo_transform: [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
                width: 2,
                height: 2,
                heights_m: vec![f64::NAN; 4],
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("no data"), "{err}");
    }
}
