//! pixel -> ground -> pixel round trips over the whole frame, on level ground and on DEMs
//! in projected CRSs, with and without lens distortion.

mod common;

use besikta_georef::{
    CameraHeight, Dem, DemGrid, GeometryOptions, GeorefError, Ground, PhotoGeometry,
};
use common::*;
use gdal::raster::Buffer;
use gdal::spatial_ref::SpatialRef;
use gdal::DriverManager;
use std::path::Path;

/// Round trips must come back within this many pixels.
const TOL_PX: f64 = 0.01;

/// Far enough for the top corners of a photo 60 degrees off nadir.
const FAR: GeometryOptions = GeometryOptions {
    max_range_m: 5000.0,
    camera_height: CameraHeight::Absolute,
};

/// Nadir to 60 degrees off nadir, several headings and a little roll.
fn shots(lat: f64, lon: f64, abs_alt: f64) -> Vec<Shot> {
    let mut out = Vec::new();
    for distortion in [None, Some(DISTORTION)] {
        for (pitch, yaw, roll) in [
            (-90.0, 0.0, 0.0),
            (-89.9, 45.0, 0.0),
            (-75.0, 90.0, 2.0),
            (-60.0, 200.0, -3.0),
            (-45.0, 300.0, 0.0),
            (-30.0, 10.0, 1.0),
        ] {
            out.push(Shot {
                lat,
                lon,
                abs_alt,
                rel_alt: 40.0,
                yaw,
                pitch,
                roll,
                distortion,
            });
        }
    }
    out
}

/// Checks every pixel of a 9 x 7 grid (corners included) comes back within tolerance.
/// Returns the largest error in pixels.
fn check_round_trips(g: &PhotoGeometry, what: &str) -> f64 {
    let mut worst: f64 = 0.0;
    for px in frame_grid(9, 7) {
        let p = g
            .pixel_to_ground(px)
            .unwrap_or_else(|e| panic!("{what}: pixel {px:?}: {e}"));
        let back = g.ground_to_pixel(p.lat, p.lon, p.height_m).unwrap();
        let err = ((back[0] - px[0]).powi(2) + (back[1] - px[1]).powi(2)).sqrt();
        assert!(err < TOL_PX, "{what}: pixel {px:?} came back at {back:?}");
        worst = worst.max(err);
    }
    worst
}

#[test]
fn round_trip_on_level_ground() {
    let ground = Ground::TakeOffPlane;
    let mut worst: f64 = 0.0;
    for shot in shots(46.8426, -91.9945, 198.5) {
        let g = PhotoGeometry::with_options(&capture(shot), &ground, &FAR).unwrap();
        worst = worst.max(check_round_trips(&g, &format!("{shot:?}")));
    }
    eprintln!("level ground: worst round trip {worst:.2e} px");
}

/// Synthetic terrain in projected metres around `(x0, y0)`: a tilted plane plus a bump.
fn terrain(x: f64, y: f64, x0: f64, y0: f64, base: f64) -> f64 {
    let (dx, dy) = (x - x0, y - y0);
    let bump = 6.0 * (-((dx - 10.0).powi(2) + (dy - 8.0).powi(2)) / (2.0 * 40.0 * 40.0)).exp();
    base + 0.02 * dx + 0.01 * dy + bump
}

/// Writes a Float32 GeoTIFF DEM of `terrain` in `epsg`, `half` metres either side of the
/// camera, with cells of `cell` metres, the way a user's DEM would arrive.
fn write_dem(
    path: &Path,
    epsg: u32,
    lat: f64,
    lon: f64,
    base: f64,
    half: f64,
    cell: f64,
) -> [f64; 2] {
    let to = besikta_georef::CrsTransform::from_wgs84(&format!("EPSG:{epsg}")).unwrap();
    let [x0, y0] = to.apply(lon, lat).unwrap();
    let n = (2.0 * half / cell) as usize;
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type::<f32, _>(path, n, n, 1)
        .unwrap();
    let (left, top) = (x0 - half, y0 + half);
    ds.set_geo_transform(&[left, cell, 0.0, top, 0.0, -cell])
        .unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(epsg).unwrap())
        .unwrap();
    let mut data = Vec::with_capacity(n * n);
    for j in 0..n {
        for i in 0..n {
            let x = left + (i as f64 + 0.5) * cell;
            let y = top - (j as f64 + 0.5) * cell;
            data.push(terrain(x, y, x0, y0, base) as f32);
        }
    }
    let mut band = ds.rasterband(1).unwrap();
    band.write((0, 0), (n, n), &mut Buffer::new((n, n), data))
        .unwrap();
    [x0, y0]
}

#[test]
fn round_trip_on_dems_in_projected_crs_and_heights_match_the_terrain() {
    let dir = tempfile::tempdir().unwrap();
    // Brighton in UTM 15N, Stockholm in SWEREF 99 TM, Helsinki in ETRS-TM35FIN.
    for (name, epsg, lat, lon) in [
        ("brighton", 32615, 46.8426, -91.9945),
        ("stockholm", 3006, 59.3293, 18.0686),
        ("helsinki", 3067, 60.1699, 24.9384),
    ] {
        let base = 150.0;
        let path = dir.path().join(format!("{name}.tif"));
        // 60 degrees off nadir, the top corners of the frame look 2-3 degrees below the
        // horizon and meet the ground more than a kilometre away.
        let [x0, y0] = write_dem(&path, epsg, lat, lon, base, 2400.0, 4.0);
        let dem = Dem::open(&path).unwrap();
        assert!(dem.crs().contains(&epsg.to_string()), "{}", dem.crs());
        let ground = Ground::Dem(dem);
        let to = besikta_georef::CrsTransform::from_wgs84(&format!("EPSG:{epsg}")).unwrap();
        // The camera stands 40 m over the terrain below it.
        let abs_alt = terrain(x0, y0, x0, y0, base) + 40.0;
        let mut worst: f64 = 0.0;
        let mut worst_height: f64 = 0.0;
        for shot in shots(lat, lon, abs_alt) {
            let g = PhotoGeometry::with_options(&capture(shot), &ground, &FAR).unwrap();
            worst = worst.max(check_round_trips(&g, &format!("{name} {shot:?}")));
            for px in frame_grid(5, 4) {
                let p = g.pixel_to_ground(px).unwrap();
                let [x, y] = to.apply(p.lon, p.lat).unwrap();
                let truth = terrain(x, y, x0, y0, base);
                // Bilinear interpolation of the bump on 4 m cells is within a centimetre.
                let dh = (p.height_m - truth).abs();
                assert!(
                    dh < 0.02,
                    "{name} {shot:?} {px:?}: {} vs {truth}",
                    p.height_m
                );
                worst_height = worst_height.max(dh);
            }
        }
        eprintln!("{name}: worst round trip {worst:.2e} px, worst height {worst_height:.2e} m");
    }
}

#[test]
fn flat_dems_in_metres_and_in_degrees_agree_with_the_take_off_plane() {
    let shot = Shot::default();
    let plane = Ground::TakeOffPlane;
    let gp = PhotoGeometry::new(&capture(shot), &plane).unwrap();
    let origin = gp.camera_position();
    // 300 cells either way: 1 m in UTM 15N, 1e-5 degrees (0.76 m x 1.1 m) in WGS 84.
    for (crs, cell) in [("EPSG:32615", 1.0), ("EPSG:4326", 1e-5)] {
        let to = besikta_georef::CrsTransform::from_wgs84(crs).unwrap();
        let [x0, y0] = to.apply(shot.lon, shot.lat).unwrap();
        let n = 300;
        let half = n as f64 / 2.0 * cell;
        let grid = DemGrid {
            crs: crs.into(),
            geo_transform: [x0 - half, cell, 0.0, y0 + half, 0.0, -cell],
            width: n,
            height: n,
            heights_m: vec![shot.abs_alt - shot.rel_alt; n * n],
        };
        let dem = Ground::Dem(Dem::from_grid("flat", grid).unwrap());
        let gd = PhotoGeometry::new(&capture(shot), &dem).unwrap();
        for px in frame_grid(7, 5) {
            let a = enu(&origin, &gd.pixel_to_ground(px).unwrap());
            let b = enu(&origin, &gp.pixel_to_ground(px).unwrap());
            assert!(dist(a, b) < 1e-4, "{crs} {px:?}: DEM {a:?} vs plane {b:?}");
        }
        assert!((gd.gsd_cm_center().unwrap() - gp.gsd_cm_center().unwrap()).abs() < 1e-6);
    }
}

#[test]
fn rays_leaving_a_small_dem_are_errors_and_the_footprint_is_cut_at_its_edge() {
    let shot = Shot::default();
    let crs = "EPSG:32615".to_string();
    let to = besikta_georef::CrsTransform::from_wgs84(&crs).unwrap();
    let [x0, y0] = to.apply(shot.lon, shot.lat).unwrap();
    // 50 m x 50 m around the camera: narrower than the 68 m wide footprint.
    let n = 100;
    let grid = DemGrid {
        crs,
        geo_transform: [x0 - 25.0, 0.5, 0.0, y0 + 25.0, 0.0, -0.5],
        width: n,
        height: n,
        heights_m: vec![shot.abs_alt - shot.rel_alt; n * n],
    };
    let ground = Ground::Dem(Dem::from_grid("small-dem", grid).unwrap());
    let g = PhotoGeometry::new(&capture(shot), &ground).unwrap();
    let err = g.pixel_to_ground([0.0, 0.0]).unwrap_err();
    assert!(matches!(err, GeorefError::OutsideDem { .. }), "{err}");
    assert!(err.to_string().contains("small-dem"), "{err}");
    let ring = g.footprint(&Default::default()).unwrap();
    let mut xs = Vec::new();
    for p in &ring {
        let [x, y] = to.apply(p[0], p[1]).unwrap();
        assert!((x - x0).abs() <= 25.0 + 1e-3 && (y - y0).abs() <= 25.0 + 1e-3);
        xs.push(x - x0);
    }
    let span = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - xs.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(
        (span - 50.0).abs() < 0.01,
        "footprint spans the DEM's width: {span}"
    );
}

#[test]
fn camera_over_the_take_off_point_ignores_a_wrong_absolute_altitude() {
    let dir = tempfile::tempdir().unwrap();
    let (lat, lon, base) = (59.3293, 18.0686, 20.0);
    let path = dir.path().join("sloped.tif");
    let [x0, y0] = write_dem(&path, 3006, lat, lon, base, 600.0, 2.0);
    let ground = Ground::Dem(Dem::open(&path).unwrap());
    let to = besikta_georef::CrsTransform::from_wgs84("EPSG:3006").unwrap();
    // The drone took off 150 m west and 100 m south of the photo, on the slope.
    let (tx, ty) = (x0 - 150.0, y0 - 100.0);
    let [take_off_lon, take_off_lat] = to.inverse(tx, ty).unwrap();
    let take_off_h = terrain(tx, ty, x0, y0, base);
    let truth = Shot {
        lat,
        lon,
        abs_alt: take_off_h + 40.0,
        rel_alt: 40.0,
        pitch: -60.0,
        yaw: 30.0,
        ..Shot::default()
    };
    // An RTK drone over an orthometric DEM: its heights are 24 m off (the geoid).
    let wrong = Shot {
        abs_alt: truth.abs_alt + 24.0,
        ..truth
    };
    let exact = PhotoGeometry::new(&capture(truth), &ground).unwrap();
    let opts = GeometryOptions {
        camera_height: CameraHeight::OverTakeOff {
            lat: take_off_lat,
            lon: take_off_lon,
        },
        ..GeometryOptions::default()
    };
    let fixed = PhotoGeometry::with_options(&capture(wrong), &ground, &opts).unwrap();
    let naive = PhotoGeometry::new(&capture(wrong), &ground).unwrap();
    assert!((fixed.camera_position().height_m - exact.camera_position().height_m).abs() < 1e-3);
    let origin = exact.camera_position();
    for px in frame_grid(5, 4) {
        let e = enu(&origin, &exact.pixel_to_ground(px).unwrap());
        let f = enu(&origin, &fixed.pixel_to_ground(px).unwrap());
        let n = enu(&origin, &naive.pixel_to_ground(px).unwrap());
        assert!(dist(e, f) < 0.01, "{px:?}: {e:?} vs {f:?}");
        // 24 m too high shifts even the near edge (4 degrees off nadir) by 1.8 m.
        assert!(dist(e, n) > 1.0, "the wrong altitude does matter: {px:?}");
    }
    // A take-off point off the DEM is an error that says so.
    let off = GeometryOptions {
        camera_height: CameraHeight::OverTakeOff { lat: 0.0, lon: 0.0 },
        ..GeometryOptions::default()
    };
    let err = PhotoGeometry::with_options(&capture(wrong), &ground, &off).unwrap_err();
    assert!(err.to_string().contains("take-off point"), "{err}");
}
