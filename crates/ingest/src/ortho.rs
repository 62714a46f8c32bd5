//! GeoTIFF orthophotos, recognised through GDAL: coordinate system, pixel size and bounds.

use crate::error::Problem;
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A georeferenced raster found among the inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orthophoto {
    pub file: String,
    /// The coordinate system's name (`SWEREF99 TM`), or its WKT when it has no name.
    pub crs: String,
    pub epsg: Option<u32>,
    pub width: u32,
    pub height: u32,
    /// Ground size of one pixel along x and y, in the CRS's units (both positive).
    pub pixel_size: [f64; 2],
    /// `[min x, min y, max x, max y]` in the CRS.
    pub bounds: [f64; 4],
}

/// Opens a TIFF with GDAL (GeoTIFF drivers only) and describes its georeferencing.
pub(crate) fn read(name: &str, path: &Path) -> Result<Orthophoto, Problem> {
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_RASTER | GdalOpenFlags::GDAL_OF_READONLY,
        allowed_drivers: Some(&["GTiff", "COG"]),
        ..DatasetOptions::default()
    };
    let dataset =
        Dataset::open_ex(path, options).map_err(|e| Problem::RasterUnreadable(e.to_string()))?;
    let (width, height) = dataset.raster_size();
    let transform = dataset
        .geo_transform()
        .map_err(|_| Problem::NotGeoreferenced("no geotransform".to_string()))?;
    let srs = dataset
        .spatial_ref()
        .map_err(|_| Problem::NotGeoreferenced("no coordinate system".to_string()))?;
    let epsg = srs
        .auth_name()
        .filter(|authority| authority.eq_ignore_ascii_case("EPSG"))
        .and_then(|_| srs.auth_code().ok())
        .and_then(|code| u32::try_from(code).ok());
    let crs = match srs.name() {
        Some(crs_name) if !crs_name.is_empty() && crs_name != "unknown" => crs_name,
        _ => srs.to_wkt().unwrap_or_default(),
    };

    // Corners through the affine transform, so rotated rasters get true bounds.
    let corner = |col: f64, row: f64| {
        [
            transform[0] + col * transform[1] + row * transform[2],
            transform[3] + col * transform[4] + row * transform[5],
        ]
    };
    let (w, h) = (width as f64, height as f64);
    let corners = [
        corner(0.0, 0.0),
        corner(w, 0.0),
        corner(0.0, h),
        corner(w, h),
    ];
    let mut bounds = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for [x, y] in corners {
        bounds[0] = bounds[0].min(x);
        bounds[1] = bounds[1].min(y);
        bounds[2] = bounds[2].max(x);
        bounds[3] = bounds[3].max(y);
    }

    Ok(Orthophoto {
        file: name.to_string(),
        crs,
        epsg,
        width: u32::try_from(width).unwrap_or(u32::MAX),
        height: u32::try_from(height).unwrap_or(u32::MAX),
        pixel_size: [
            transform[1].hypot(transform[4]),
            transform[2].hypot(transform[5]),
        ],
        bounds,
    })
}
