//! Without a reference orthophoto, `process` fits the aligned flight onto the register's
//! roads: a simulated flight with 2 m of GPS noise lands where it was flown, and a
//! register without roads leaves the flight where its GPS put it, saying why.

use besikta_align::AlignSummary;
use besikta_georef::geodesy::{geodetic_to_ecef, EnuFrame};
use besikta_pipeline::{process_with, ProcessConfig, ProcessOptions};
use besikta_report::RegisterSource;
use besikta_sim::{simulate, SimConfig, SimOutput};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(photos: &Path, out: &Path, register: PathBuf) -> ProcessConfig {
    ProcessConfig {
        inputs: vec![photos.to_path_buf()],
        registers: vec![RegisterSource::new(register)],
        // The 68 mm/px test model: fast, and its findings are not what is tested here.
        models_dir: repo().join("fixtures/models/coarse"),
        dem: None,
        crs: None,
        out_dir: out.to_path_buf(),
        threads: 1,
        device: Default::default(),
    }
}

/// Pose sources and the RMS distance (metres) of the footprints' camera positions from
/// where the simulator flew them.
fn placed(sim: &SimOutput, out: &Path) -> (Vec<String>, f64) {
    let text = std::fs::read_to_string(out.join("footprints.geojson")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let features = v["features"].as_array().unwrap();
    let frame = EnuFrame::new(sim.photos[0].true_lat, sim.photos[0].true_lon, 0.0);
    let en = |lat: f64, lon: f64| {
        let p = frame.from_ecef(geodetic_to_ecef(lat, lon, 0.0));
        [p[0], p[1]]
    };
    let mut sources = Vec::new();
    let mut sq = 0.0;
    for p in &sim.photos {
        let f = features
            .iter()
            .find(|f| f["properties"]["file"].as_str().unwrap().ends_with(&p.file))
            .unwrap();
        let q = &f["properties"];
        sources.push(q["pose_source"].as_str().unwrap().to_string());
        let got = en(
            q["camera_latitude"].as_f64().unwrap(),
            q["camera_longitude"].as_f64().unwrap(),
        );
        let t = en(p.true_lat, p.true_lon);
        sq += (got[0] - t[0]).powi(2) + (got[1] - t[1]).powi(2);
    }
    (sources, (sq / sim.photos.len() as f64).sqrt())
}

/// Eight photos over Helsinki at 30 m with `gps_noise_m` of GPS noise (and compass noise 1
/// deg with it).
fn flight(dir: &Path, gps_noise_m: f64) -> SimOutput {
    simulate(&SimConfig {
        register: repo().join("fixtures/registers/helsinki.osm.pbf"),
        out_dir: dir.to_path_buf(),
        seed: 7,
        photos: 8,
        width_px: 1000,
        altitude_m: 30.0,
        defects: 2,
        gps_noise_m,
        yaw_noise_deg: if gps_noise_m > 0.0 { 1.0 } else { 0.0 },
        ..Default::default()
    })
    .unwrap()
}

/// `process` with the default options and `register`: the alignment's summary.
fn aligned_with(photos: &Path, out: &Path, register: PathBuf) -> AlignSummary {
    let o = process_with(
        &config(photos, out, register),
        &ProcessOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    o.summary.alignment.expect("aligned")
}

#[test]
fn a_flight_with_gps_noise_is_fitted_onto_the_registers_roads() {
    let photos = tempfile::tempdir().unwrap();
    let register = repo().join("fixtures/registers/helsinki.osm.pbf");
    let sim = flight(photos.path(), 2.0);
    let run = |fit_roads: bool| {
        let out = tempfile::tempdir().unwrap();
        let opts = ProcessOptions {
            fit_roads,
            ..ProcessOptions::default()
        };
        let o = process_with(
            &config(photos.path(), out.path(), register.clone()),
            &opts,
            &mut |_| {},
        )
        .unwrap();
        let a = o.summary.alignment.clone().expect("aligned");
        (placed(&sim, out.path()), a)
    };
    let ((gps_sources, gps_err), gps) = run(false);
    let ((sources, err), fitted) = run(true);
    eprintln!(
        "camera positions {gps_err:.3} m RMS from the truth aligned to the flight, {err:.3} m fitted onto the roads: {:?}",
        fitted.roads
    );
    assert!(gps_sources.iter().all(|s| s == "flight"), "{gps_sources:?}");
    assert!(gps.roads.is_none() && gps.road_shift_m.is_none(), "{gps:?}");
    assert!(gps_err > 1.0, "the simulated GPS error is {gps_err} m");
    assert!(
        sources.iter().all(|s| s == "register"),
        "{sources:?} {fitted:?}"
    );
    let note = fitted.roads.as_deref().unwrap_or_default();
    assert!(
        note.contains("onto the roads of helsinki.osm.pbf"),
        "{note}"
    );
    assert!(fitted.road_shift_m.is_some());
    assert!(err < 0.4, "{err} m after fitting onto the roads");
}

#[test]
fn a_register_without_roads_leaves_the_flight_on_its_gps() {
    let photos = tempfile::tempdir().unwrap();
    let sim = simulate(&SimConfig {
        register: repo().join("fixtures/registers/helsinki.osm.pbf"),
        out_dir: photos.path().to_path_buf(),
        seed: 7,
        photos: 4,
        width_px: 800,
        altitude_m: 30.0,
        defects: 1,
        gps_noise_m: 2.0,
        yaw_noise_deg: 1.0,
        ..Default::default()
    })
    .unwrap();
    // A register of one building under the flight, and no road.
    let (lat, lon) = (sim.photos[0].true_lat, sim.photos[0].true_lon);
    let (dlat, dlon) = (0.0001, 0.0002);
    let register = photos.path().join("buildings.geojson");
    std::fs::write(
        &register,
        serde_json::json!({"type": "FeatureCollection", "features": [{"type": "Feature",
            "properties": {"id": "b1"},
            "geometry": {"type": "Polygon", "coordinates": [[[lon, lat], [lon + dlon, lat],
                [lon + dlon, lat + dlat], [lon, lat + dlat], [lon, lat]]]}}]})
        .to_string(),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let a = aligned_with(photos.path(), out.path(), register);
    let note = a.roads.as_deref().unwrap_or_default();
    assert!(
        note.contains("buildings.geojson has no road surface here"),
        "{note}"
    );
    assert!(a.road_shift_m.is_none());
    let (sources, _) = placed(&sim, out.path());
    assert!(sources.iter().all(|s| s == "flight"), "{sources:?}");
}

#[test]
fn a_flight_already_on_the_roads_is_not_moved() {
    let photos = tempfile::tempdir().unwrap();
    let register = repo().join("fixtures/registers/helsinki.osm.pbf");
    let sim = flight(photos.path(), 0.0);
    let out = tempfile::tempdir().unwrap();
    let a = aligned_with(photos.path(), out.path(), register);
    let note = a.roads.as_deref().unwrap_or_default();
    eprintln!("{note}");
    assert!(
        note.contains("already on the roads of helsinki.osm.pbf"),
        "{note}"
    );
    assert!(a.road_shift_m.is_none());
    let (sources, err) = placed(&sim, out.path());
    assert!(sources.iter().all(|s| s == "flight"), "{sources:?}");
    assert!(err < 0.1, "{err}");
}
