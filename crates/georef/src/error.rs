//! Errors of the georef stage, worded for the person who has to act on them.

use std::path::PathBuf;

/// Why a georeferencing operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GeorefError {
    /// The capture lacks something the camera model needs.
    #[error("{file}: {what}")]
    MissingMetadata { file: String, what: String },

    /// The pixel's ray points at or above the horizon, so it never meets the ground.
    #[error("{file}: the ray through pixel ({x:.1}, {y:.1}) points above the horizon and never meets the ground")]
    AboveHorizon { file: String, x: f64, y: f64 },

    /// The ray would meet the ground, but farther than the allowed range.
    #[error("{file}: the ray through pixel ({x:.1}, {y:.1}) does not meet the ground within the maximum range of {max_range_m} m")]
    BeyondRange {
        file: String,
        x: f64,
        y: f64,
        max_range_m: f64,
    },

    /// The ray leaves the area the DEM covers (or crosses only no-data cells) before it
    /// meets the ground.
    #[error("{file}: the ray through pixel ({x:.1}, {y:.1}) leaves the area covered by the DEM {dem} before meeting the ground")]
    OutsideDem {
        file: String,
        x: f64,
        y: f64,
        dem: PathBuf,
    },

    /// The camera is below the ground surface, so nothing it sees can be placed.
    #[error("{file}: the camera at {camera_height_m:.2} m is below the ground ({ground_height_m:.2} m); check the altitudes and the ground model")]
    CameraBelowGround {
        file: String,
        camera_height_m: f64,
        ground_height_m: f64,
    },

    /// The ground point is behind the camera, so it has no pixel.
    #[error("{file}: the point ({lat:.7}, {lon:.7}, {height_m:.2} m) is behind the camera")]
    BehindCamera {
        file: String,
        lat: f64,
        lon: f64,
        height_m: f64,
    },

    /// The lens distortion model has no unique inverse at this pixel.
    #[error("{file}: the lens distortion cannot be inverted at pixel ({x:.1}, {y:.1}); the distortion coefficients are probably wrong")]
    Undistortion { file: String, x: f64, y: f64 },

    /// No part of the photo sees the ground within range, so it has no footprint.
    #[error("{file}: no footprint: {reason}")]
    NoFootprint { file: String, reason: String },

    /// The DEM could not be read or is unusable.
    #[error("DEM {path}: {reason}")]
    Dem { path: PathBuf, reason: String },

    /// GDAL failed while reading the DEM.
    #[error("DEM {path}: GDAL could not {action}")]
    DemGdal {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: gdal::errors::GdalError,
    },

    /// A CRS definition could not be understood or transformed to.
    #[error("coordinate reference system {definition:?}: {reason}")]
    Crs {
        definition: String,
        reason: String,
        #[source]
        source: Option<gdal::errors::GdalError>,
    },
}
