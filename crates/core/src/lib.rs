//! Vocabulary types shared by every Besikta stage; no IO, no GDAL, no ONNX Runtime, no HTTP.
//!
//! A [`Capture`] is one photo as ingest understood it: where the file is, what camera took
//! it ([`Camera`]), and where the camera was and how it looked ([`Pose`]). Georeferencing
//! turns a capture into pixel <-> ground mappings; inference turns its pixels into
//! [`Detection`]s; reporting merges detections into findings tied to assets.

use serde::{Deserialize, Serialize};

/// Where the focal length in pixels came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntrinsicsSource {
    /// DJI `CalibratedFocalLength` (already in pixels) and calibrated optical centre.
    Calibrated,
    /// EXIF focal length in mm and the sensor width from the camera database.
    CameraDatabase,
    /// EXIF `FocalLengthIn35mmFilm` (36 mm wide frame, scaled by the crop of the photo).
    Equivalent35mm,
    /// EXIF focal-plane resolution tags.
    FocalPlaneResolution,
}

/// Brown-Conrady lens distortion in normalised image coordinates (OpenCV convention).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BrownDistortion {
    pub k1: f64,
    pub k2: f64,
    pub p1: f64,
    pub p2: f64,
    pub k3: f64,
}

/// Pinhole intrinsics of one photo, in pixels of that photo.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub width: u32,
    pub height: u32,
    /// Focal length in pixels (square pixels assumed).
    pub focal_px: f64,
    /// Principal point, pixels from the left edge of the photo.
    pub cx: f64,
    /// Principal point, pixels from the top edge of the photo.
    pub cy: f64,
    pub distortion: Option<BrownDistortion>,
}

/// Camera position and orientation at exposure, in DJI's conventions.
///
/// Angles are degrees. Yaw is clockwise from true north; pitch is 0 at the horizon and
/// -90 looking straight down; roll is positive when the right side of the image dips.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    /// WGS 84 latitude, degrees.
    pub latitude: f64,
    /// WGS 84 longitude, degrees.
    pub longitude: f64,
    /// Height of the camera as the drone reports it (DJI: above mean sea level, EGM96-ish;
    /// see georef's crate docs). `None` when only relative altitude is known.
    pub absolute_altitude_m: Option<f64>,
    /// Height above the take-off point, metres.
    pub relative_altitude_m: Option<f64>,
    pub yaw_deg: f64,
    pub pitch_deg: f64,
    pub roll_deg: f64,
}

/// RTK positioning quality, when the drone recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RtkInfo {
    pub flag: Option<i64>,
    pub std_lon_m: Option<f64>,
    pub std_lat_m: Option<f64>,
    pub std_hgt_m: Option<f64>,
}

/// One photo's metadata as read by ingest. Unknown values are `None`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Capture {
    pub file: String,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub make: Option<String>,
    pub model: Option<String>,
    /// Local time as the camera wrote it, `YYYY-MM-DDTHH:MM:SS`.
    pub taken_at: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// EXIF GPSAltitude, signed by GPSAltitudeRef.
    pub gps_altitude_m: Option<f64>,
    pub absolute_altitude_m: Option<f64>,
    pub relative_altitude_m: Option<f64>,
    pub gimbal_yaw_deg: Option<f64>,
    pub gimbal_pitch_deg: Option<f64>,
    pub gimbal_roll_deg: Option<f64>,
    pub flight_yaw_deg: Option<f64>,
    pub flight_pitch_deg: Option<f64>,
    pub flight_roll_deg: Option<f64>,
    pub focal_length_mm: Option<f64>,
    pub focal_length_35mm: Option<f64>,
    pub focal_length_px: Option<f64>,
    pub principal_point_px: Option<[f64; 2]>,
    pub intrinsics_source: Option<IntrinsicsSource>,
    pub distortion: Option<BrownDistortion>,
    pub rtk: Option<RtkInfo>,
    /// Where the attitude came from: `xmp-drone-dji`, `dji-makernotes`, `xmp-<vendor>`.
    pub attitude_source: Option<String>,
}

impl Capture {
    /// The pinhole camera, when the focal length in pixels is known.
    pub fn camera(&self) -> Option<Camera> {
        let focal_px = self.focal_length_px?;
        let [cx, cy] = self
            .principal_point_px
            .unwrap_or([self.width as f64 / 2.0, self.height as f64 / 2.0]);
        Some(Camera {
            width: self.width,
            height: self.height,
            focal_px,
            cx,
            cy,
            distortion: self.distortion,
        })
    }

    /// The camera pose; gimbal angles, falling back to straight down with the flight yaw.
    pub fn pose(&self) -> Option<Pose> {
        Some(Pose {
            latitude: self.latitude?,
            longitude: self.longitude?,
            absolute_altitude_m: self.absolute_altitude_m.or(self.gps_altitude_m),
            relative_altitude_m: self.relative_altitude_m,
            yaw_deg: self.gimbal_yaw_deg.or(self.flight_yaw_deg).unwrap_or(0.0),
            pitch_deg: self.gimbal_pitch_deg.unwrap_or(-90.0),
            roll_deg: self.gimbal_roll_deg.unwrap_or(0.0),
        })
    }
}

/// A photo that could not be used, and why, in words a field crew understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub file: String,
    pub reason: String,
}

/// The asset kind a defect belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    Road,
    Roof,
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One defect found in one photo, in that photo's pixel coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Defect class name from the model manifest (`crack`, `pothole`, ...).
    pub class: String,
    pub asset_kind: Option<AssetKind>,
    pub confidence: f32,
    /// `[x0, y0, x1, y1]` in pixels of the original photo.
    pub bbox: [f64; 4],
    /// Outline in pixels of the original photo (segmentation only).
    pub polygon: Option<Vec<[f64; 2]>>,
    pub area_px: f64,
    /// Skeleton length in pixels (thin defects such as cracks).
    pub length_px: Option<f64>,
}

pub mod review;
pub use review::{RejectReason, Review, ReviewState, UnknownWord};

pub mod finding;
