//! Web map tiles (XYZ, Web Mercator, 256 px) read from a mosaic COG through GDAL: each tile
//! pixel takes the nearest mosaic pixel of the coarsest overview that is still at least as
//! fine as the tile (GDAL's own choice for `gdalwarp -r near`), so a tile reads only the
//! small window of the level it needs, never the whole mosaic.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::Dataset;
use image::RgbaImage;
use std::path::Path;

/// Tile size, pixels.
pub const TILE_PX: u32 = 256;

/// Half the Web Mercator world's width, metres.
const HALF_WORLD_M: f64 = 20_037_508.342_789_244;

/// One rendered tile.
#[derive(Debug, Clone)]
pub struct WebTile {
    /// RGBA, alpha 0 where the mosaic has no ground.
    pub image: RgbaImage,
    /// The overview read (`None`: the full resolution), as `gdalwarp -ovr` numbers them.
    pub overview: Option<usize>,
}

impl WebTile {
    /// The tile as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>, String> {
        let mut out = std::io::Cursor::new(Vec::new());
        self.image
            .write_to(&mut out, image::ImageFormat::Png)
            .map_err(|e| format!("cannot encode the tile as PNG: {e}"))?;
        Ok(out.into_inner())
    }
}

/// Web Mercator bounds `[min_x, min_y, max_x, max_y]` of tile `z/x/y`, metres.
pub fn tile_bounds(z: u8, x: u32, y: u32) -> [f64; 4] {
    let size = 2.0 * HALF_WORLD_M / f64::from(1u32 << z.min(30));
    let min_x = -HALF_WORLD_M + f64::from(x) * size;
    let max_y = HALF_WORLD_M - f64::from(y) * size;
    [min_x, max_y - size, min_x + size, max_y]
}

/// Tile `z/x/y` of the RGBA mosaic `cog` (as `write_mosaic` writes it), or `None` when the
/// tile holds no ground of the mosaic (or does not exist at that zoom). Errors name the
/// file.
pub fn web_tile(cog: &Path, z: u8, x: u32, y: u32) -> Result<Option<WebTile>, String> {
    if z > 30 || x >= 1u32 << z || y >= 1u32 << z {
        return Ok(None);
    }
    let err = |what: &str, e: gdal::errors::GdalError| {
        format!(
            "cannot read the mosaic {} ({what}): {e}; make it again with `besikta mosaic`",
            cog.display()
        )
    };
    let ds = Dataset::open(cog).map_err(|e| err("open", e))?;
    if ds.raster_count() < 4 {
        return Err(format!(
            "the mosaic {} has {} bands, not RGBA; make it again with `besikta mosaic`",
            cog.display(),
            ds.raster_count()
        ));
    }
    let mut srs = ds.spatial_ref().map_err(|e| err("CRS", e))?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut merc = SpatialRef::from_epsg(3857).map_err(|e| err("EPSG:3857", e))?;
    merc.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_cog = CoordTransform::new(&merc, &srs).map_err(|e| err("transform", e))?;
    let gt = ds.geo_transform().map_err(|e| err("geotransform", e))?;
    let (w, h) = ds.raster_size();

    // Tile pixel centres in the mosaic's CRS.
    let [min_x, _, max_x, max_y] = tile_bounds(z, x, y);
    let step = (max_x - min_x) / f64::from(TILE_PX);
    let n = (TILE_PX * TILE_PX) as usize;
    let (mut xs, mut ys) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for j in 0..TILE_PX {
        for i in 0..TILE_PX {
            xs.push(min_x + (f64::from(i) + 0.5) * step);
            ys.push(max_y - (f64::from(j) + 0.5) * step);
        }
    }
    let mut zs = vec![0.0; n];
    to_cog
        .transform_coords(&mut xs, &mut ys, &mut zs)
        .map_err(|e| err("transform", e))?;
    // Full-resolution pixel coordinates.
    let px: Vec<f64> = xs.iter().map(|&v| (v - gt[0]) / gt[1]).collect();
    let py: Vec<f64> = ys.iter().map(|&v| (v - gt[3]) / gt[5]).collect();
    let (pmin_x, pmax_x) = min_max(&px);
    let (pmin_y, pmax_y) = min_max(&py);
    if pmax_x < 0.0 || pmax_y < 0.0 || pmin_x >= w as f64 || pmin_y >= h as f64 {
        return Ok(None);
    }

    // The coarsest overview whose pixels are no larger than the tile's.
    let target = (pmax_x - pmin_x).max(pmax_y - pmin_y) / f64::from(TILE_PX);
    let band1 = ds.rasterband(1).map_err(|e| err("band 1", e))?;
    let levels = band1.overview_count().map_err(|e| err("overviews", e))?;
    let mut overview = None;
    let (mut lw, mut lh) = (w, h);
    for k in 0..levels.max(0) as usize {
        let ov = band1.overview(k).map_err(|e| err("overview", e))?;
        let (ow, oh) = ov.size();
        if (w as f64 / ow as f64) <= target {
            overview = Some(k);
            (lw, lh) = (ow, oh);
        } else {
            break;
        }
    }
    let (sx, sy) = (lw as f64 / w as f64, lh as f64 / h as f64);

    // The window of that level the tile needs.
    let clamp = |v: f64, max: usize| (v.floor().max(0.0) as usize).min(max);
    let (c0, c1) = (clamp(pmin_x * sx, lw - 1), clamp(pmax_x * sx, lw - 1));
    let (r0, r1) = (clamp(pmin_y * sy, lh - 1), clamp(pmax_y * sy, lh - 1));
    let (ww, wh) = (c1 - c0 + 1, r1 - r0 + 1);
    let mut bands = Vec::with_capacity(4);
    for b in 1..=4 {
        let band = ds.rasterband(b).map_err(|e| err("band", e))?;
        let band = match overview {
            Some(k) => band.overview(k).map_err(|e| err("overview", e))?,
            None => band,
        };
        let buf = band
            .read_as::<u8>((c0 as isize, r0 as isize), (ww, wh), (ww, wh), None)
            .map_err(|e| err("pixels", e))?;
        bands.push(buf.data().to_vec());
    }

    let mut image = RgbaImage::new(TILE_PX, TILE_PX);
    let mut any = false;
    for (k, p) in image.pixels_mut().enumerate() {
        let (fx, fy) = (px[k] * sx, py[k] * sy);
        if !(fx >= 0.0 && fy >= 0.0 && fx < lw as f64 && fy < lh as f64) {
            continue;
        }
        let (c, r) = (fx.floor() as usize, fy.floor() as usize);
        if c < c0 || c > c1 || r < r0 || r > r1 {
            continue;
        }
        let q = (r - r0) * ww + (c - c0);
        let a = bands[3][q];
        if a == 0 {
            continue;
        }
        any = true;
        *p = image::Rgba([bands[0][q], bands[1][q], bands[2][q], a]);
    }
    Ok(any.then_some(WebTile { image, overview }))
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}
