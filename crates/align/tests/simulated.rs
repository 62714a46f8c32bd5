//! Alignment on flights the simulator renders at test time over the Helsinki register
//! fixture, whose true poses are known: GPS noise of 2 m (drifting bias plus jitter) and
//! compass noise of 1 degree are taken out of the metadata; and the bad cases (a single
//! photo, photos that do not overlap, a uniform ground) keep their metadata poses with a
//! reason.

use besikta_align::{align, recheck, AlignConfig, Alignment, PoseSource};
use besikta_core::Capture;
use besikta_georef::geodesy::{geodetic_to_ecef, EnuFrame};
use besikta_georef::Ground;
use besikta_sim::{simulate, SimConfig, SimOutput};
use std::path::{Path, PathBuf};

fn helsinki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/registers/helsinki.osm.pbf")
}

fn flight(out: &Path, seed: u64, photos: usize, gps: f64, yaw: f64) -> SimOutput {
    flight_with_overlap(out, seed, photos, gps, yaw, 70.0)
}

fn flight_with_overlap(
    out: &Path,
    seed: u64,
    photos: usize,
    gps: f64,
    yaw: f64,
    overlap_pct: f64,
) -> SimOutput {
    simulate(&SimConfig {
        register: helsinki(),
        out_dir: out.to_path_buf(),
        seed,
        photos,
        width_px: 1200,
        altitude_m: 40.0,
        overlap_pct,
        defects: 4,
        gps_noise_m: gps,
        yaw_noise_deg: yaw,
        ..Default::default()
    })
    .expect("simulation runs")
}

fn captures(dir: &Path) -> Vec<Capture> {
    let mut scan = besikta_ingest::scan(&[dir.to_path_buf()]);
    assert!(scan.rejected.is_empty(), "{:?}", scan.rejected);
    scan.captures.sort_by(|a, b| a.file.cmp(&b.file));
    scan.captures
}

/// East/north metres of each photo's position error against the truth, and yaw error.
fn errors(sim: &SimOutput, caps: &[Capture]) -> Vec<([f64; 2], f64)> {
    let f = EnuFrame::new(sim.photos[0].true_lat, sim.photos[0].true_lon, 0.0);
    let en = |lat: f64, lon: f64| {
        let p = f.from_ecef(geodetic_to_ecef(lat, lon, 0.0));
        [p[0], p[1]]
    };
    sim.photos
        .iter()
        .map(|p| {
            let c = caps
                .iter()
                .find(|c| c.file.ends_with(&p.file))
                .expect("every photo is a capture");
            let t = en(p.true_lat, p.true_lon);
            let m = en(c.latitude.unwrap(), c.longitude.unwrap());
            let yaw = c.gimbal_yaw_deg.unwrap() - p.true_yaw_deg;
            let yaw = (yaw + 180.0).rem_euclid(360.0) - 180.0;
            ([m[0] - t[0], m[1] - t[1]], yaw)
        })
        .collect()
}

/// RMS of the position errors after removing the flight's mean error, and the largest
/// yaw error after removing the mean yaw error.
fn consistency(e: &[([f64; 2], f64)]) -> (f64, f64) {
    let n = e.len() as f64;
    let m = [
        e.iter().map(|x| x.0[0]).sum::<f64>() / n,
        e.iter().map(|x| x.0[1]).sum::<f64>() / n,
    ];
    let my = e.iter().map(|x| x.1).sum::<f64>() / n;
    let rms = (e
        .iter()
        .map(|x| (x.0[0] - m[0]).powi(2) + (x.0[1] - m[1]).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let yaw = e.iter().map(|x| (x.1 - my).abs()).fold(0.0, f64::max);
    (rms, yaw)
}

/// RMS of the position errors after removing the best-fitting rotation and shift of the
/// whole flight (what a reference orthophoto would also fix): the flight's shape alone.
fn shape_rms(sim: &SimOutput, e: &[([f64; 2], f64)]) -> f64 {
    let f = EnuFrame::new(sim.photos[0].true_lat, sim.photos[0].true_lon, 0.0);
    let pts: Vec<[f64; 2]> = sim
        .photos
        .iter()
        .map(|p| {
            let q = f.from_ecef(geodetic_to_ecef(p.true_lat, p.true_lon, 0.0));
            [q[0], q[1]]
        })
        .collect();
    let n = e.len() as f64;
    let c = [
        pts.iter().map(|p| p[0]).sum::<f64>() / n,
        pts.iter().map(|p| p[1]).sum::<f64>() / n,
    ];
    let m = [
        e.iter().map(|x| x.0[0]).sum::<f64>() / n,
        e.iter().map(|x| x.0[1]).sum::<f64>() / n,
    ];
    // Small rotation: error ~ m + w * perp(p - c); least squares for w.
    let (mut num, mut den) = (0.0, 0.0);
    for (p, x) in pts.iter().zip(e) {
        let q = [-(p[1] - c[1]), p[0] - c[0]];
        num += q[0] * (x.0[0] - m[0]) + q[1] * (x.0[1] - m[1]);
        den += q[0] * q[0] + q[1] * q[1];
    }
    let w = num / den.max(1e-9);
    (pts.iter()
        .zip(e)
        .map(|(p, x)| {
            let q = [-(p[1] - c[1]), p[0] - c[0]];
            (x.0[0] - m[0] - w * q[0]).powi(2) + (x.0[1] - m[1] - w * q[1]).powi(2)
        })
        .sum::<f64>()
        / n)
        .sqrt()
}

fn report(a: &Alignment) {
    eprintln!("{}", serde_json::to_string_pretty(&a.summary).unwrap());
    for p in &a.pairs {
        eprintln!(
            "{} {} overlap {:.2} accepted {} peak {:?} ties {} {:?}",
            p.a, p.b, p.overlap, p.accepted, p.peak, p.ties, p.reason
        );
    }
}

#[test]
fn gps_and_compass_noise_are_taken_out_of_a_simulated_flight() {
    let dir = tempfile::tempdir().unwrap();
    let sim = flight(dir.path(), 1207, 12, 2.0, 1.0);
    let caps = captures(dir.path());
    let ground = Ground::TakeOffPlane;
    let a = align(&caps, &ground, &AlignConfig::default());
    report(&a);
    let refined = a.apply(&caps);
    let (before, yaw_before) = consistency(&errors(&sim, &caps));
    let (after, yaw_after) = consistency(&errors(&sim, &refined));
    let mean_yaw = errors(&sim, &refined).iter().map(|x| x.1).sum::<f64>() / caps.len() as f64;
    eprintln!(
        "after alignment: flight's mean yaw error {mean_yaw:.3} deg (not observable without a reference); position error without the flight's mean shift and rotation {:.3} m RMS",
        shape_rms(&sim, &errors(&sim, &refined))
    );
    eprintln!(
        "position error minus the flight's mean: {before:.3} m RMS before, {after:.3} m after; largest yaw error minus mean: {yaw_before:.3} deg before, {yaw_after:.3} deg after"
    );
    assert!(
        a.photos.iter().all(|p| p.source == PoseSource::Flight),
        "{:?}",
        a.photos
            .iter()
            .map(|p| (&p.file, &p.reason))
            .collect::<Vec<_>>()
    );
    assert!(a.summary.pairs_accepted >= 15, "{:?}", a.summary);
    assert!(before > 0.8, "the metadata really is noisy ({before} m)");
    assert!(after <= FLOOR_POSITION_RMS_M, "position RMS {after} m");
    assert!(yaw_after <= FLOOR_YAW_DEG, "yaw {yaw_after} deg");
    // The flight's mean stays on the mean GPS: the corrections average to zero.
    let n = a.photos.len() as f64;
    let mean_e = a.photos.iter().map(|p| p.correction_m[0]).sum::<f64>() / n;
    let mean_n = a.photos.iter().map(|p| p.correction_m[1]).sum::<f64>() / n;
    assert!(
        mean_e.abs() < 1e-6 && mean_n.abs() < 1e-6,
        "{mean_e} {mean_n}"
    );
    let rb = a.summary.residual_rms_before_m.unwrap();
    let ra = a.summary.residual_rms_after_m.unwrap();
    assert!(ra < 0.1 * rb, "residuals {rb} -> {ra}");

    // Re-correlating the accepted pairs with the refined poses: little shift is left.
    let left = recheck(
        &refined,
        &ground,
        &AlignConfig::default(),
        &a.accepted_pairs,
    );
    let shifts: Vec<f64> = left.iter().flatten().map(|s| s[0].hypot(s[1])).collect();
    assert!(shifts.len() * 10 >= left.len() * 9, "{left:?}");
    let rms = (shifts.iter().map(|s| s * s).sum::<f64>() / shifts.len() as f64).sqrt();
    eprintln!(
        "re-correlated pair shift after alignment: {:.1} cm RMS",
        rms * 100.0
    );
    assert!(rms < 0.15, "pair shift left {rms} m");
}

/// Regression floors, set at what the method reaches (see the crate's figures).
const FLOOR_POSITION_RMS_M: f64 = 0.15;
const FLOOR_YAW_DEG: f64 = 0.2;

#[test]
fn a_single_photo_keeps_its_metadata_pose() {
    let dir = tempfile::tempdir().unwrap();
    flight(dir.path(), 5, 1, 2.0, 1.0);
    let caps = captures(dir.path());
    let a = align(&caps, &Ground::TakeOffPlane, &AlignConfig::default());
    assert_eq!(a.photos.len(), 1);
    let p = &a.photos[0];
    assert_eq!(p.source, PoseSource::Metadata);
    assert_eq!(p.correction_m, [0.0, 0.0]);
    assert!(
        p.reason.as_deref().unwrap().contains("single photo"),
        "{p:?}"
    );
    assert_eq!(a.apply(&caps), caps);
}

#[test]
fn photos_that_do_not_overlap_keep_their_metadata_poses() {
    let dir = tempfile::tempdir().unwrap();
    // Two photos planned edge to edge (no overlap), GPS noise well under the gap's margin.
    flight_with_overlap(dir.path(), 6, 2, 0.5, 1.0, 0.0);
    let caps = captures(dir.path());
    assert_eq!(caps.len(), 2);
    let a = align(&caps, &Ground::TakeOffPlane, &AlignConfig::default());
    assert_eq!(a.summary.pairs_tried, 0);
    for p in &a.photos {
        assert_eq!(p.source, PoseSource::Metadata);
        assert!(
            p.reason
                .as_deref()
                .unwrap()
                .contains("no other photo shares"),
            "{p:?}"
        );
    }
    assert_eq!(a.apply(&caps), caps);
}

#[test]
fn a_uniform_ground_keeps_metadata_poses_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sim = flight(dir.path(), 8, 4, 2.0, 1.0);
    // The same photos with their metadata, but of a featureless grey surface (sensor
    // noise only), as over calm water or fresh asphalt.
    for (k, p) in sim.photos.iter().enumerate() {
        let mut img = image::RgbImage::new(p.written.width, p.written.height);
        let mut state = 0x9E37_79B9u32 ^ k as u32;
        for px in img.pixels_mut() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let v = 118 + (state % 5) as u8;
            *px = image::Rgb([v, v, v]);
        }
        let mut jpeg = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut jpeg, 90,
        ))
        .unwrap();
        let bytes = besikta_sim::exif::splice_metadata(&jpeg, &p.meta).unwrap();
        std::fs::write(dir.path().join(&p.file), bytes).unwrap();
    }
    let caps = captures(dir.path());
    let a = align(&caps, &Ground::TakeOffPlane, &AlignConfig::default());
    report(&a);
    assert!(a.summary.pairs_tried >= 3, "{:?}", a.summary);
    assert_eq!(a.summary.pairs_accepted, 0);
    for p in &a.photos {
        assert_eq!(p.source, PoseSource::Metadata);
        let r = p.reason.as_deref().unwrap();
        assert!(r.contains("overlapping pairs matched"), "{r}");
    }
    assert_eq!(a.apply(&caps), caps);
}

/// Absolute position error RMS (metres) and largest absolute yaw error (degrees).
fn absolute(e: &[([f64; 2], f64)]) -> (f64, f64) {
    let n = e.len() as f64;
    let rms = (e
        .iter()
        .map(|x| x.0[0].powi(2) + x.0[1].powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    (rms, e.iter().map(|x| x.1.abs()).fold(0.0, f64::max))
}

#[test]
fn a_reference_orthophoto_in_another_crs_fixes_the_absolute_position() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let utm = dir.path().join("truth-utm.tif");
    let sim = simulate(&SimConfig {
        register: helsinki(),
        out_dir: photos.clone(),
        seed: 1207,
        photos: 12,
        width_px: 1200,
        altitude_m: 40.0,
        overlap_pct: 70.0,
        defects: 4,
        gps_noise_m: 2.0,
        yaw_noise_deg: 1.0,
        orthophoto: Some(utm.clone()),
        ..Default::default()
    })
    .unwrap();
    // The municipality's orthophoto is in ETRS-TM35FIN, not the flight's UTM zone.
    let tm35 = dir.path().join("truth-tm35fin.tif");
    let st = std::process::Command::new("gdalwarp")
        .args(["-q", "-t_srs", "EPSG:3067", "-r", "bilinear"])
        .arg(&utm)
        .arg(&tm35)
        .status()
        .expect("gdalwarp runs");
    assert!(st.success());
    let caps = captures(&photos);
    let reference = besikta_align::Reference::open(&tm35).unwrap();
    let a = besikta_align::align_with_reference(
        &caps,
        &Ground::TakeOffPlane,
        &AlignConfig::default(),
        Some(&reference),
    );
    report(&a);
    let (before, _) = absolute(&errors(&sim, &caps));
    let (after, yaw) = absolute(&errors(&sim, &a.apply(&caps)));
    eprintln!("absolute position error {before:.3} m RMS with metadata, {after:.3} m with the reference; largest yaw error {yaw:.3} deg");
    assert!(
        a.photos.iter().all(|p| p.source == PoseSource::Reference),
        "{:?}",
        a.summary
    );
    assert!(before > 1.0, "{before}");
    assert!(after <= 0.3, "absolute error {after} m");
    assert!(yaw <= 0.2, "yaw {yaw} deg");
}

#[test]
fn a_reference_that_does_not_cover_the_flight_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    flight(&photos, 9, 4, 2.0, 1.0);
    // A small orthophoto of another place (a second flight 2 km away).
    let other = dir.path().join("other.tif");
    simulate(&SimConfig {
        register: helsinki(),
        out_dir: dir.path().join("other"),
        seed: 9,
        photos: 1,
        width_px: 400,
        defects: 0,
        center: [60.1850, 24.9500],
        orthophoto: Some(other.clone()),
        ..Default::default()
    })
    .unwrap();
    let caps = captures(&photos);
    let reference = besikta_align::Reference::open(&other).unwrap();
    let a = besikta_align::align_with_reference(
        &caps,
        &Ground::TakeOffPlane,
        &AlignConfig::default(),
        Some(&reference),
    );
    let note = a.summary.reference.clone().unwrap();
    assert!(note.contains("does not cover"), "{note}");
    // The flight is still aligned to itself.
    assert!(
        a.photos.iter().all(|p| p.source == PoseSource::Flight),
        "{:?}",
        a.photos
    );
    // And a file that is not a raster says so.
    let bad = dir.path().join("notes.txt");
    std::fs::write(&bad, "not a raster").unwrap();
    let e = besikta_align::Reference::open(&bad).unwrap_err();
    assert!(e.contains("cannot read the reference"), "{e}");
}

#[test]
fn a_memory_budget_changes_how_often_photos_are_projected_not_the_result() {
    let dir = tempfile::tempdir().unwrap();
    flight(dir.path(), 1207, 8, 2.0, 1.0);
    let caps = captures(dir.path());
    let ground = Ground::TakeOffPlane;
    let roomy = align(&caps, &ground, &AlignConfig::default());
    // No room at all: only the two images of the pair being matched are held.
    let tight_cfg = AlignConfig {
        memory_mb: 0,
        ..AlignConfig::default()
    };
    let tight = align(&caps, &ground, &tight_cfg);
    report(&tight);
    assert!(roomy.summary.pairs_accepted >= 5, "{:?}", roomy.summary);
    // Every photo projected once when they all fit, some again when they do not.
    assert_eq!(roomy.summary.projections, caps.len());
    assert!(
        tight.summary.projections > caps.len(),
        "{:?}",
        tight.summary
    );
    assert!(tight.summary.held_peak_mb < roomy.summary.held_peak_mb);
    // The same poses, pairs and figures to the last bit.
    let json = |a: &Alignment| {
        (
            serde_json::to_string(&a.photos).unwrap(),
            serde_json::to_string(&a.pairs).unwrap(),
            a.accepted_pairs.clone(),
            a.summary.residual_rms_after_m,
        )
    };
    assert_eq!(json(&roomy), json(&tight));
    // The check re-correlates the same shifts within the tight budget too.
    let refined = roomy.apply(&caps);
    assert_eq!(
        recheck(
            &refined,
            &ground,
            &AlignConfig::default(),
            &roomy.accepted_pairs
        ),
        recheck(&refined, &ground, &tight_cfg, &roomy.accepted_pairs)
    );
}
