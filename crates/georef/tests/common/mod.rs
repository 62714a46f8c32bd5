//! Shared helpers for georef's integration tests: captures built by hand or from exiftool.

#![allow(dead_code)]

use besikta_core::{BrownDistortion, Capture, IntrinsicsSource};
use besikta_georef::geodesy::{geodetic_to_ecef, EnuFrame};
use besikta_georef::GroundPoint;
use std::path::{Path, PathBuf};

/// DJI Phantom 3 Professional FC300S: 4000 x 2250 px, 3.61 mm lens, 6.17 mm wide sensor.
pub const WIDTH: u32 = 4000;
pub const HEIGHT: u32 = 2250;
pub const FOCAL_PX: f64 = 3.61 / 6.17 * 4000.0;

/// A distortion of the size DJI writes in `DewarpData` for small wide-angle lenses.
pub const DISTORTION: BrownDistortion = BrownDistortion {
    k1: -0.128,
    k2: 0.106,
    p1: 0.0011,
    p2: -0.0006,
    k3: -0.031,
};

/// The pose of a synthetic capture.
#[derive(Debug, Clone, Copy)]
pub struct Shot {
    pub lat: f64,
    pub lon: f64,
    pub abs_alt: f64,
    pub rel_alt: f64,
    pub yaw: f64,
    pub pitch: f64,
    pub roll: f64,
    pub distortion: Option<BrownDistortion>,
}

impl Default for Shot {
    fn default() -> Self {
        // Brighton, Minnesota: DJI_0018's position, 40 m over take-off.
        Self {
            lat: 46.842_607_083_333_3,
            lon: -91.994_559_888_888_9,
            abs_alt: 198.51,
            rel_alt: 40.0,
            yaw: 0.0,
            pitch: -90.0,
            roll: 0.0,
            distortion: None,
        }
    }
}

pub fn capture(shot: Shot) -> Capture {
    Capture {
        file: "synthetic.jpg".into(),
        width: WIDTH,
        height: HEIGHT,
        latitude: Some(shot.lat),
        longitude: Some(shot.lon),
        absolute_altitude_m: Some(shot.abs_alt),
        relative_altitude_m: Some(shot.rel_alt),
        gimbal_yaw_deg: Some(shot.yaw),
        gimbal_pitch_deg: Some(shot.pitch),
        gimbal_roll_deg: Some(shot.roll),
        focal_length_mm: Some(3.61),
        focal_length_px: Some(FOCAL_PX),
        intrinsics_source: Some(IntrinsicsSource::CameraDatabase),
        distortion: shot.distortion,
        ..Capture::default()
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// The exiftool reading (`-n -json`) of a fixture photo.
pub fn exiftool(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new("exiftool")
        .args(["-n", "-json"])
        .arg(path)
        .output()
        .expect("exiftool is installed");
    assert!(
        out.status.success(),
        "exiftool failed on {}",
        path.display()
    );
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("exiftool JSON");
    v[0].take()
}

fn number(v: &serde_json::Value, key: &str) -> f64 {
    match &v[key] {
        serde_json::Value::Number(n) => n.as_f64().unwrap(),
        // exiftool keeps the sign of DJI's XMP values ("+39.80") as a string.
        serde_json::Value::String(s) => s.trim_start_matches('+').parse().unwrap(),
        other => panic!("{key}: {other:?}"),
    }
}

/// A capture of a fixture photo built from exiftool's reading of it, with the focal
/// length from the FC300S sensor width (what ingest's camera database does).
pub fn capture_from_exiftool(path: &Path) -> Capture {
    let v = exiftool(path);
    assert_eq!(v["Model"], "FC300S");
    let width = number(&v, "ImageWidth") as u32;
    Capture {
        file: path.display().to_string(),
        width,
        height: number(&v, "ImageHeight") as u32,
        latitude: Some(number(&v, "GPSLatitude")),
        longitude: Some(number(&v, "GPSLongitude")),
        gps_altitude_m: Some(number(&v, "GPSAltitude")),
        absolute_altitude_m: Some(number(&v, "AbsoluteAltitude")),
        relative_altitude_m: Some(number(&v, "RelativeAltitude")),
        gimbal_yaw_deg: Some(number(&v, "GimbalYawDegree")),
        gimbal_pitch_deg: Some(number(&v, "GimbalPitchDegree")),
        gimbal_roll_deg: Some(number(&v, "GimbalRollDegree")),
        focal_length_mm: Some(number(&v, "FocalLength")),
        focal_length_px: Some(number(&v, "FocalLength") / 6.17 * width as f64),
        intrinsics_source: Some(IntrinsicsSource::CameraDatabase),
        ..Capture::default()
    }
}

/// A ground point in the East-North-Up frame at `origin` (metres).
pub fn enu(origin: &GroundPoint, p: &GroundPoint) -> [f64; 3] {
    EnuFrame::new(origin.lat, origin.lon, origin.height_m)
        .from_ecef(geodetic_to_ecef(p.lat, p.lon, p.height_m))
}

pub fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Pixels over the whole frame: an `nx` x `ny` grid including edges and corners.
pub fn frame_grid(nx: usize, ny: usize) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            out.push([
                WIDTH as f64 * i as f64 / (nx - 1) as f64,
                HEIGHT as f64 * j as f64 / (ny - 1) as f64,
            ]);
        }
    }
    out
}
