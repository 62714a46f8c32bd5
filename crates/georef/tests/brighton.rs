//! The three Brighton fixture photos (DJI Phantom 3, 40 m, nadir), read with exiftool:
//! footprint size, GSD, overlap of consecutive frames, and the camera where the photo says.

mod common;

use besikta_georef::geodesy::{geodetic_to_ecef, EnuFrame};
use besikta_georef::{FootprintOptions, Ground, PhotoGeometry};
use common::*;
use geo::{Area, BooleanOps, LineString, Polygon};

const PHOTOS: [&str; 3] = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"];

/// A footprint ring in metres East/North of a common origin, as a geo polygon.
fn local_polygon(ring: &[[f64; 2]], origin: &EnuFrame) -> Polygon<f64> {
    let pts: Vec<(f64, f64)> = ring
        .iter()
        .map(|p| {
            let e = origin.from_ecef(geodetic_to_ecef(p[1], p[0], 0.0));
            (e[0], e[1])
        })
        .collect();
    Polygon::new(LineString::from(pts), vec![])
}

#[test]
fn footprints_gsd_and_camera_positions_of_the_fixture_photos() {
    let ground = Ground::TakeOffPlane;
    let captures: Vec<_> = PHOTOS
        .iter()
        .map(|p| capture_from_exiftool(&fixture(&format!("brighton/{p}"))))
        .collect();
    let origin = EnuFrame::new(
        captures[0].latitude.unwrap(),
        captures[0].longitude.unwrap(),
        0.0,
    );
    let mut polygons = Vec::new();
    for c in &captures {
        let g = PhotoGeometry::new(c, &ground).unwrap();
        let exif = exiftool(std::path::Path::new(&c.file));
        // The camera is where exiftool says the photo was taken, at the absolute altitude.
        let pos = g.camera_position();
        assert_eq!(pos.lat, exif["GPSLatitude"].as_f64().unwrap());
        assert_eq!(pos.lon, exif["GPSLongitude"].as_f64().unwrap());
        let abs: f64 = exif["AbsoluteAltitude"].as_str().unwrap().parse().unwrap();
        assert_eq!(pos.height_m, abs);
        let rel = c.relative_altitude_m.unwrap();

        // About 68 m x 38 m and 1.7 cm per pixel at 40 m.
        let (w, h) = (c.width as f64, c.height as f64);
        let f = c.focal_length_px.unwrap();
        let cam = g.camera_position();
        let corner = |px: [f64; 2]| enu(&cam, &g.pixel_to_ground(px).unwrap());
        // Across the middle of the frame: pitch -89.9 instead of -90 widens the far edge
        // and narrows the near one by 0.08 %, but leaves the middle lines at nadir scale.
        let width = dist(corner([0.0, h / 2.0]), corner([w, h / 2.0]));
        let height = dist(corner([w / 2.0, 0.0]), corner([w / 2.0, h]));
        assert!(
            (width - rel * w / f).abs() < 0.01,
            "{}: width {width}",
            c.file
        );
        assert!(
            (height - rel * h / f).abs() < 0.01,
            "{}: height {height}",
            c.file
        );
        assert!((67.0..69.5).contains(&width) && (37.5..39.5).contains(&height));
        let gsd = g.gsd_cm_center().unwrap();
        assert!(
            (gsd - rel / f * 100.0).abs() < 1e-3,
            "{}: GSD {gsd}",
            c.file
        );
        assert!((1.65..1.75).contains(&gsd));
        // The centre of the photo lies (almost) straight below the camera.
        let centre = corner([w / 2.0, h / 2.0]);
        assert!(centre[0].hypot(centre[1]) < rel * 0.1f64.to_radians().tan() + 1e-3);
        eprintln!("{}: {width:.2} m x {height:.2} m, GSD {gsd:.3} cm", c.file);

        let ring = g.footprint(&FootprintOptions::default()).unwrap();
        polygons.push(local_polygon(&ring, &origin));
    }
    // Consecutive frames ~13.7 m apart along a ~38 m long frame overlap by roughly
    // (38.3 - 13.7) / 38.3 = 64 %; one frame further apart by roughly 29 %.
    let overlap =
        |a: &Polygon<f64>, b: &Polygon<f64>| a.intersection(b).unsigned_area() / a.unsigned_area();
    let o01 = overlap(&polygons[0], &polygons[1]);
    let o12 = overlap(&polygons[1], &polygons[2]);
    let o02 = overlap(&polygons[0], &polygons[2]);
    eprintln!("overlap 18/19 {o01:.3}, 19/20 {o12:.3}, 18/20 {o02:.3}");
    for (what, o, lo, hi) in [
        ("18/19", o01, 0.55, 0.70),
        ("19/20", o12, 0.55, 0.70),
        ("18/20", o02, 0.20, 0.35),
    ] {
        assert!((lo..hi).contains(&o), "overlap {what}: {o}");
    }
    for p in &polygons {
        assert!(
            (p.unsigned_area() - 68.0 * 38.3).abs() < 60.0,
            "{}",
            p.unsigned_area()
        );
    }
}
