//! The simulated ground as a GeoTIFF orthophoto (RGB, in the flight's working CRS): a
//! reference whose every pixel is where the truth says, for alignment tests and the demo.

use crate::texture::Texture;
use crate::SimError;
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::DriverManager;
use std::path::Path;

/// Writes `tex` averaged down `factor x factor` cells into `path` (tiled, deflate) with
/// the spatial reference of `frame`.
pub fn write(
    tex: &Texture,
    frame: &besikta_report::WorkFrame,
    path: &Path,
    factor: usize,
) -> Result<(), SimError> {
    let f = factor.max(1);
    let (w, h) = (tex.width / f, tex.height / f);
    let err = |e: gdal::errors::GdalError| SimError::Write {
        path: path.display().to_string(),
        message: format!("{e} (GDAL GeoTIFF writer)"),
    };
    if w == 0 || h == 0 {
        return Err(SimError::Config {
            message: format!(
                "the ground is too small for an orthophoto at {f} texture cells per pixel"
            ),
        });
    }
    let driver = DriverManager::get_driver_by_name("GTiff").map_err(err)?;
    let options =
        RasterCreationOptions::from_iter(["TILED=YES", "COMPRESS=DEFLATE", "PHOTOMETRIC=RGB"]);
    let mut ds = driver
        .create_with_band_type_with_options::<u8, _>(path, w, h, 3, &options)
        .map_err(err)?;
    let cell = tex.cell_m * f as f64;
    ds.set_geo_transform(&[tex.x0, cell, 0.0, tex.y1, 0.0, -cell])
        .map_err(err)?;
    ds.set_spatial_ref(frame.srs()).map_err(err)?;
    let n = (f * f) as u32;
    for band in 0..3 {
        let mut data = vec![0u8; w * h];
        for j in 0..h {
            for i in 0..w {
                let mut sum = 0u32;
                for dj in 0..f {
                    let row = (j * f + dj) * tex.width + i * f;
                    for p in &tex.pixels[row..row + f] {
                        sum += p[band] as u32;
                    }
                }
                data[j * w + i] = ((sum + n / 2) / n) as u8;
            }
        }
        let mut rb = ds.rasterband(band + 1).map_err(err)?;
        rb.write((0, 0), (w, h), &mut Buffer::new((w, h), data))
            .map_err(err)?;
    }
    Ok(())
}
