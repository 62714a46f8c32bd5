//! One photo's bytes to a [`Capture`]: marker walk, EXIF, XMP, maker notes, intrinsics,
//! and the plausibility checks that decide whether the photo can be used.

use crate::camera_db::{self, Inputs};
use crate::error::Problem;
use crate::exif_tags::{self, ExifFields};
use crate::jpeg::{self, Limits};
use crate::xmp::{self, XmpFields};
use besikta_core::Capture;
use sha2::{Digest, Sha256};

/// How strict reading is.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// The most pixels a frame header may claim (a decompression-bomb guard).
    pub max_pixels: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_pixels: 200_000_000,
        }
    }
}

/// Lowercase hex SHA-256 of the bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xF)]));
    }
    hex
}

/// Reads and checks one JPEG held in memory.
pub(crate) fn read(name: &str, bytes: &[u8], options: &ReadOptions) -> Result<Capture, Problem> {
    let layout = jpeg::walk(
        bytes,
        Limits {
            max_pixels: options.max_pixels,
        },
    )?;
    let frame = layout.frame.ok_or(Problem::NoFrameHeader)?;
    let exif = layout.exif.and_then(exif_tags::read).unwrap_or_default();
    let xmp = xmp::read(&layout.xmp);
    let capture = assemble(name, sha256_hex(bytes), frame, &exif, &xmp);
    check(&capture)?;
    Ok(capture)
}

fn assemble(
    name: &str,
    sha256: String,
    frame: jpeg::Frame,
    exif: &ExifFields,
    xmp: &XmpFields,
) -> Capture {
    let make = exif.make.clone().or_else(|| xmp.make.clone());
    let model = exif.model.clone().or_else(|| xmp.model.clone());

    // XMP attitude first; DJI's maker notes fill what the XMP lacks (older firmware,
    // or XMP stripped by an editor).
    let notes = exif.dji.unwrap_or_default();
    let gimbal_yaw_deg = xmp.gimbal.yaw.or(notes.camera_yaw);
    let gimbal_pitch_deg = xmp.gimbal.pitch.or(notes.camera_pitch);
    let gimbal_roll_deg = xmp.gimbal.roll.or(notes.camera_roll);
    let attitude_source = match xmp.attitude_source {
        Some(source) => Some(source.to_string()),
        None if exif
            .dji
            .is_some_and(|n| n.camera_pitch.is_some() || n.camera_yaw.is_some()) =>
        {
            Some("dji-makernotes".to_string())
        }
        None => None,
    };

    let intrinsics = camera_db::intrinsics(&Inputs {
        width: frame.width,
        height: frame.height,
        model: model.as_deref(),
        focal_length_mm: exif.focal_length_mm,
        focal_length_35mm: exif.focal_length_35mm,
        focal_plane_px_per_mm: exif.focal_plane_px_per_mm,
        xmp,
    });

    Capture {
        file: name.to_string(),
        sha256,
        width: frame.width,
        height: frame.height,
        make,
        model,
        taken_at: exif.taken_at.clone(),
        latitude: exif.latitude.or(xmp.latitude),
        longitude: exif.longitude.or(xmp.longitude),
        gps_altitude_m: exif.gps_altitude_m,
        absolute_altitude_m: xmp.absolute_altitude_m,
        relative_altitude_m: xmp.relative_altitude_m,
        gimbal_yaw_deg,
        gimbal_pitch_deg,
        gimbal_roll_deg,
        flight_yaw_deg: xmp.flight.yaw.or(notes.flight_yaw),
        flight_pitch_deg: xmp.flight.pitch.or(notes.flight_pitch),
        flight_roll_deg: xmp.flight.roll.or(notes.flight_roll),
        focal_length_mm: exif.focal_length_mm,
        focal_length_35mm: exif.focal_length_35mm,
        focal_length_px: intrinsics.map(|i| i.focal_px),
        principal_point_px: intrinsics.and_then(|i| i.principal_point),
        intrinsics_source: intrinsics.map(|i| i.source),
        distortion: intrinsics.and_then(|i| i.distortion),
        rtk: xmp.rtk,
        attitude_source,
    }
}

/// Refuses photos whose position or attitude cannot be right.
fn check(c: &Capture) -> Result<(), Problem> {
    let (Some(latitude), Some(longitude)) = (c.latitude, c.longitude) else {
        return Err(Problem::NoGps);
    };
    let within = |what, value: f64, min: f64, max: f64, allowed| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(Problem::OutOfRange {
                what,
                value,
                allowed,
            })
        }
    };
    within(
        "the latitude",
        latitude,
        -90.0,
        90.0,
        "it must lie within -90..90",
    )?;
    within(
        "the longitude",
        longitude,
        -180.0,
        180.0,
        "it must lie within -180..180",
    )?;
    if latitude == 0.0 && longitude == 0.0 {
        return Err(Problem::NullIsland);
    }
    // Altitudes: below the Dead Sea shore or above any drone's service ceiling.
    for (what, value) in [
        ("the GPS altitude", c.gps_altitude_m),
        ("the absolute altitude", c.absolute_altitude_m),
    ] {
        if let Some(value) = value {
            within(
                what,
                value,
                -500.0,
                9000.0,
                "drones fly within -500..9000 m above sea level",
            )?;
        }
    }
    if let Some(value) = c.relative_altitude_m {
        within(
            "the height above take-off",
            value,
            -3000.0,
            5000.0,
            "it must lie within -3000..5000 m",
        )?;
    }
    if let Some(pitch) = c.gimbal_pitch_deg {
        within(
            "the gimbal pitch",
            pitch,
            -180.0,
            180.0,
            "it must lie within -180..180 degrees",
        )?;
        if pitch > 0.0 {
            return Err(Problem::GimbalAboveHorizon { pitch });
        }
    }
    for (what, value) in [
        ("the gimbal yaw", c.gimbal_yaw_deg),
        ("the gimbal roll", c.gimbal_roll_deg),
        ("the flight yaw", c.flight_yaw_deg),
        ("the flight pitch", c.flight_pitch_deg),
        ("the flight roll", c.flight_roll_deg),
    ] {
        if let Some(value) = value {
            within(
                what,
                value,
                -360.0,
                360.0,
                "angles lie within -360..360 degrees",
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nadir() -> Capture {
        Capture {
            latitude: Some(46.84),
            longitude: Some(-91.99),
            gps_altitude_m: Some(198.3),
            absolute_altitude_m: Some(198.3),
            relative_altitude_m: Some(39.8),
            gimbal_pitch_deg: Some(-89.9),
            gimbal_yaw_deg: Some(45.0),
            ..Capture::default()
        }
    }

    #[test]
    fn plausible_captures_pass_and_absurd_ones_are_named() {
        assert!(check(&nadir()).is_ok());
        let horizon = Capture {
            gimbal_pitch_deg: Some(0.0),
            ..nadir()
        };
        assert!(
            check(&horizon).is_ok(),
            "looking at the horizon is not above it"
        );
        let cases = [
            (
                Capture {
                    latitude: None,
                    ..nadir()
                },
                "no GPS position",
            ),
            (
                Capture {
                    longitude: Some(-191.0),
                    ..nadir()
                },
                "the longitude is -191",
            ),
            (
                Capture {
                    latitude: Some(0.0),
                    longitude: Some(0.0),
                    ..nadir()
                },
                "0, 0",
            ),
            (
                Capture {
                    gps_altitude_m: Some(25_000.0),
                    ..nadir()
                },
                "the GPS altitude is 25000",
            ),
            (
                Capture {
                    relative_altitude_m: Some(-9000.0),
                    ..nadir()
                },
                "height above take-off is -9000",
            ),
            (
                Capture {
                    gimbal_pitch_deg: Some(12.5),
                    ..nadir()
                },
                "+12.5 degrees",
            ),
            (
                Capture {
                    gimbal_pitch_deg: Some(-400.0),
                    ..nadir()
                },
                "gimbal pitch is -400",
            ),
            (
                Capture {
                    flight_roll_deg: Some(f64::NAN),
                    ..nadir()
                },
                "flight roll is NaN",
            ),
        ];
        for (capture, words) in cases {
            let reason = check(&capture).unwrap_err().to_string();
            assert!(reason.contains(words), "{words}: {reason}");
        }
    }
}
