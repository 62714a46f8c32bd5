//! Simulated flights over the Helsinki OSM register: same seed gives the same bytes, and
//! rendering agrees with georef's camera model (each planted defect is dark where
//! `ground_to_pixel` projects it in every photo that sees it).

use besikta_core::Capture;
use besikta_georef::{Ground, PhotoGeometry};
use besikta_sim::{simulate, DefectShape, SimConfig, SimOutput};
use std::path::{Path, PathBuf};

fn helsinki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/registers/helsinki.osm.pbf")
}

fn flight(out: &Path, seed: u64) -> (SimConfig, SimOutput) {
    let cfg = SimConfig {
        register: helsinki(),
        out_dir: out.to_path_buf(),
        seed,
        photos: 6,
        width_px: 1200,
        defects: 10,
        // Noise goes into the metadata only; the checks below use the true pose.
        gps_noise_m: 1.5,
        yaw_noise_deg: 2.0,
        ..Default::default()
    };
    let out = simulate(&cfg).expect("simulation runs");
    (cfg, out)
}

fn luminance(img: &image::RgbImage, x: i64, y: i64) -> Option<f64> {
    if x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 {
        return None;
    }
    let p = img.get_pixel(x as u32, y as u32).0;
    Some(0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
}

#[test]
fn same_seed_same_bytes_and_defects_are_dark_where_georef_projects_them() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (cfg, out) = flight(a.path(), 11);
    let (_, again) = flight(b.path(), 11);
    assert_eq!(out.photos.len(), 6);
    assert!(out.defects.len() >= 8, "planted {}", out.defects.len());
    for name in out
        .photos
        .iter()
        .map(|p| p.file.as_str())
        .chain(["truth.geojson", "flight.json"])
    {
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
    assert_eq!(again.defects, out.defects);

    // The noisy metadata really is noisy: written positions differ from the true ones.
    let moved = out
        .photos
        .iter()
        .filter(|p| {
            (p.written.latitude - p.true_lat).abs() > 1e-6
                || (p.written.longitude - p.true_lon).abs() > 1e-6
        })
        .count();
    assert!(moved >= 5, "GPS noise reached {moved} of 6 photos");

    // Every planted defect's truth point, projected through each true camera pose.
    let ground = Ground::Plane {
        height_m: cfg.ground_elevation_m,
    };
    let truth = &out.truth["features"];
    let mut seen_by: Vec<usize> = vec![0; out.defects.len()];
    for photo in &out.photos {
        let img = image::open(a.path().join(&photo.file)).unwrap().to_rgb8();
        let capture = Capture {
            file: photo.file.clone(),
            width: img.width(),
            height: img.height(),
            latitude: Some(photo.true_lat),
            longitude: Some(photo.true_lon),
            absolute_altitude_m: Some(photo.written.absolute_altitude_m),
            relative_altitude_m: Some(photo.written.relative_altitude_m),
            gimbal_yaw_deg: Some(photo.true_yaw_deg),
            gimbal_pitch_deg: Some(-90.0),
            gimbal_roll_deg: Some(0.0),
            focal_length_px: Some(
                besikta_sim::CameraModel::find(&cfg.camera)
                    .unwrap()
                    .focal_px(img.width()),
            ),
            ..Default::default()
        };
        let geom = PhotoGeometry::new(&capture, &ground).unwrap();
        for (k, d) in out.defects.iter().enumerate() {
            let f = &truth[k];
            assert_eq!(f["properties"]["id"], d.id.as_str());
            // A point on the defect: the middle vertex of a crack, the centre of a blob.
            let lonlat = match &d.shape {
                DefectShape::Line { .. } => {
                    let c = f["geometry"]["coordinates"].as_array().unwrap();
                    let m = &c[c.len() / 2];
                    [m[0].as_f64().unwrap(), m[1].as_f64().unwrap()]
                }
                DefectShape::Area { .. } => {
                    let c = &f["properties"]["centre"];
                    [c[0].as_f64().unwrap(), c[1].as_f64().unwrap()]
                }
            };
            let px = geom
                .ground_to_pixel(lonlat[1], lonlat[0], ground_height(&ground))
                .unwrap();
            let (x, y) = (px[0].floor() as i64, px[1].floor() as i64);
            if x < 20 || y < 20 || x >= img.width() as i64 - 20 || y >= img.height() as i64 - 20 {
                continue;
            }
            // Darkest pixel within one pixel of the projection against the median of a
            // ring 1.5 m (30 px) away: the defect must stand out as dark.
            let dark = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                .filter_map(|(dx, dy)| luminance(&img, x + dx, y + dy))
                .fold(f64::MAX, f64::min);
            let mut ring: Vec<f64> = (0..32)
                .filter_map(|i| {
                    let t = i as f64 / 32.0 * std::f64::consts::TAU;
                    luminance(
                        &img,
                        x + (30.0 * t.cos()) as i64,
                        y + (30.0 * t.sin()) as i64,
                    )
                })
                .collect();
            ring.sort_by(f64::total_cmp);
            let around = ring[ring.len() / 2];
            assert!(
                dark < 0.75 * around && dark < 110.0,
                "{} ({}) in {} at {px:?}: {dark:.0} vs {around:.0} around",
                d.id,
                d.class.name(),
                photo.file
            );
            seen_by[k] += 1;
        }
    }
    for (k, n) in seen_by.iter().enumerate() {
        assert!(
            *n >= 2,
            "{} is seen well inside only {n} photos",
            out.defects[k].id
        );
    }
}

fn ground_height(g: &Ground) -> f64 {
    match g {
        Ground::Plane { height_m } => *height_m,
        _ => 0.0,
    }
}

#[test]
fn real_crack_patches_replace_the_drawn_cracks_with_truth_at_their_scale() {
    let out = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        register: helsinki(),
        out_dir: out.path().to_path_buf(),
        seed: 4,
        photos: 6,
        width_px: 600,
        defects: 8,
        altitude_m: 25.0,
        patches: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cracks")),
        patch_mm_per_px: 2.0,
        ..Default::default()
    };
    let sim = simulate(&cfg).unwrap();
    let cracks: Vec<_> = sim
        .defects
        .iter()
        .filter(|d| d.class == besikta_sim::DefectClass::Crack)
        .collect();
    assert!(!cracks.is_empty());
    for d in cracks {
        // 640 px at 2 mm is 1.28 m: a pasted crack is no longer than its patch's diagonal.
        let l = d.length_m().unwrap();
        assert!(l > 0.2 && l < 1.5, "{} is {l} m long", d.id);
        let DefectShape::Line { points, width_m } = &d.shape else {
            panic!("a crack is a line")
        };
        assert_eq!(points.len(), 2);
        assert!(*width_m > 0.002 && *width_m < 0.05, "width {width_m}");
    }
}
