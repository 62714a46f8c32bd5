//! Web map tiles read from a mosaic COG (the three Brighton fixture photos, metadata poses,
//! 5 cm) agree pixel for pixel with GDAL's own `gdalwarp -r near` of the COG to the same
//! tile, at full resolution and from each overview; tiles without ground are `None`.

use besikta_align::{tile_bounds, web_tile, write_mosaic, MosaicConfig, TILE_PX};
use besikta_georef::Ground;
use gdal::Dataset;
use std::path::{Path, PathBuf};
use std::process::Command;

fn brighton() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/brighton")
}

/// The XYZ tile holding WGS 84 `lon`, `lat` at zoom `z`.
fn tile_of(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = (lon + 180.0) / 360.0 * n;
    let l = lat.to_radians();
    let y = (1.0 - (l.tan() + 1.0 / l.cos()).ln() / std::f64::consts::PI) / 2.0 * n;
    (x as u32, y as u32)
}

/// `gdalwarp -r near` of `cog` to tile `z/x/y` from overview `level` (`None`: full
/// resolution): RGBA bands.
fn gdalwarp(cog: &Path, z: u8, x: u32, y: u32, level: Option<usize>, out: &Path) -> Vec<Vec<u8>> {
    let b = tile_bounds(z, x, y);
    let ovr = level.map_or("NONE".to_string(), |l| l.to_string());
    let size = TILE_PX.to_string();
    let bounds: Vec<String> = b.iter().map(|v| format!("{v:.6}")).collect();
    let _ = std::fs::remove_file(out);
    let o = Command::new("gdalwarp")
        .args(["-q", "-r", "near", "-et", "0", "-t_srs", "EPSG:3857", "-te"])
        .args(&bounds)
        .args(["-ts", &size, &size, "-ovr", &ovr, "-of", "GTiff"])
        .arg(cog)
        .arg(out)
        .output()
        .expect("gdalwarp is installed (GDAL's tools)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ds = Dataset::open(out).unwrap();
    assert_eq!(ds.raster_count(), 4);
    let n = TILE_PX as usize;
    (1..=4)
        .map(|i| {
            ds.rasterband(i)
                .unwrap()
                .read_as::<u8>((0, 0), (n, n), (n, n), None)
                .unwrap()
                .data()
                .to_vec()
        })
        .collect()
}

#[test]
fn tiles_match_gdalwarp_of_the_cog_at_each_level() {
    let mut scan = besikta_ingest::scan(&[brighton()]);
    assert!(scan.rejected.is_empty(), "{:?}", scan.rejected);
    scan.captures.sort_by(|a, b| a.file.cmp(&b.file));
    let dir = tempfile::tempdir().unwrap();
    let cog = dir.path().join("mosaic.tif");
    write_mosaic(
        &scan.captures,
        &Ground::TakeOffPlane,
        &MosaicConfig::default(),
        &cog,
    )
    .unwrap();
    let c = &scan.captures[1];
    let (lon, lat) = (c.longitude.unwrap(), c.latitude.unwrap());

    let mut levels = Vec::new();
    for z in [18u8, 19, 20, 21] {
        let (x, y) = tile_of(lon, lat, z);
        let tile = web_tile(&cog, z, x, y)
            .unwrap()
            .unwrap_or_else(|| panic!("tile {z}/{x}/{y} under a photo has ground"));
        levels.push(tile.overview);
        let want = gdalwarp(&cog, z, x, y, tile.overview, &dir.path().join("w.tif"));
        let (mut alpha_same, mut rgb_same, mut opaque) = (0, 0, 0);
        for (k, p) in tile.image.pixels().enumerate() {
            if p[3] == want[3][k] {
                alpha_same += 1;
            }
            if p[3] == 255 && want[3][k] == 255 {
                opaque += 1;
                if (0..3).all(|b| p[b] == want[b][k]) {
                    rgb_same += 1;
                }
            }
        }
        let n = (TILE_PX * TILE_PX) as usize;
        eprintln!(
            "z{z} overview {:?}: alpha equal {alpha_same}/{n}, RGB equal {rgb_same}/{opaque}",
            tile.overview
        );
        assert!(opaque > n / 10, "z{z}: {opaque} opaque pixels");
        assert!(alpha_same as f64 >= 0.999 * n as f64, "z{z}: {alpha_same}");
        assert!(
            rgb_same as f64 >= 0.999 * opaque as f64,
            "z{z}: {rgb_same}/{opaque}"
        );
        let png = tile.png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let back = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(back, tile.image);
    }
    // Full resolution close in, overviews further out.
    assert_eq!(levels[3], None, "{levels:?}");
    assert!(levels[0].is_some(), "{levels:?}");

    // No ground: a tile 50 tiles east, and one that does not exist at its zoom.
    let (x, y) = tile_of(lon, lat, 18);
    assert!(web_tile(&cog, 18, x + 50, y).unwrap().is_none());
    assert!(web_tile(&cog, 3, 8, 0).unwrap().is_none());
    // Not a mosaic: an error naming the file.
    let e = web_tile(&brighton().join("DJI_0018.JPG"), 18, x, y).unwrap_err();
    assert!(e.contains("DJI_0018.JPG"), "{e}");
}
