//! GeoTIFF orthophotos: a tiny SWEREF 99 TM raster written with GDAL in a temporary
//! folder must come back with GDAL's own idea of its coordinate system, size and bounds.

use besikta_ingest::scan;
use gdal::raster::Buffer;
use gdal::spatial_ref::SpatialRef;
use gdal::DriverManager;
use std::path::Path;

fn write_tiff(path: &Path, georeferenced: bool) {
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut dataset = driver
        .create_with_band_type::<u8, _>(path, 40, 20, 3)
        .unwrap();
    if georeferenced {
        // 0.05 m pixels, top-left corner at E 674 000, N 6 580 010 (Stockholm).
        dataset
            .set_geo_transform(&[674_000.0, 0.05, 0.0, 6_580_010.0, 0.0, -0.05])
            .unwrap();
        dataset
            .set_spatial_ref(&SpatialRef::from_epsg(3006).unwrap())
            .unwrap();
    }
    let mut band = dataset.rasterband(1).unwrap();
    let mut pixels = Buffer::new((40, 20), vec![128u8; 40 * 20]);
    band.write((0, 0), (40, 20), &mut pixels).unwrap();
}

#[test]
fn geotiff_is_listed_with_crs_pixel_size_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let ortho_path = dir.path().join("ortho.tif");
    write_tiff(&ortho_path, true);

    let report = scan(&[dir.path().to_path_buf()]);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.captures.is_empty());
    let [ortho] = report.orthophotos.as_slice() else {
        panic!("one orthophoto expected: {:?}", report.orthophotos);
    };
    assert_eq!(ortho.epsg, Some(3006));
    // GDAL names EPSG:3006 so.
    let truth = SpatialRef::from_epsg(3006).unwrap().name().unwrap();
    assert_eq!(ortho.crs, truth);
    assert_eq!(ortho.crs, "SWEREF99 TM");
    assert_eq!((ortho.width, ortho.height), (40, 20));
    assert_eq!(ortho.pixel_size, [0.05, 0.05]);
    let expected = [674_000.0, 6_580_009.0, 674_002.0, 6_580_010.0];
    for (got, want) in ortho.bounds.iter().zip(expected) {
        assert!(
            (got - want).abs() < 1e-6,
            "{:?} vs {expected:?}",
            ortho.bounds
        );
    }
    assert!(ortho.file.ends_with("ortho.tif"));
}

#[test]
fn tiff_without_georeferencing_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_tiff(&dir.path().join("plain.tif"), false);
    std::fs::write(dir.path().join("fake.tif"), b"not a tiff at all").unwrap();
    let report = scan(&[dir.path().to_path_buf()]);
    assert!(report.orthophotos.is_empty());
    assert_eq!(report.rejected.len(), 2, "{:?}", report.rejected);
    let fake = &report.rejected[0];
    assert!(fake.file.ends_with("fake.tif"));
    assert!(fake.reason.contains("GDAL cannot open"), "{}", fake.reason);
    let plain = &report.rejected[1];
    assert!(plain.file.ends_with("plain.tif"));
    assert!(
        plain.reason.contains("without georeferencing"),
        "{}",
        plain.reason
    );
}
