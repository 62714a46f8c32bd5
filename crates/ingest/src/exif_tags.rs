//! The EXIF fields ingest needs (camera, time, GPS, focal length) and DJI's maker notes,
//! read with kamadak-exif from the TIFF structure of the APP1 segment.

use exif::{Field, In, Rational, Reader, Tag, Value};

/// What the EXIF block says, every value optional.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ExifFields {
    pub make: Option<String>,
    pub model: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS`, local camera time.
    pub taken_at: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Metres, negative below sea level (GPSAltitudeRef = 1).
    pub gps_altitude_m: Option<f64>,
    pub focal_length_mm: Option<f64>,
    pub focal_length_35mm: Option<f64>,
    /// Focal-plane pixels per millimetre along x, from FocalPlaneXResolution and its unit.
    pub focal_plane_px_per_mm: Option<f64>,
    pub dji: Option<DjiMakerNotes>,
    /// Set when kamadak-exif gave up on part of the block (the rest is still used).
    pub damaged: bool,
}

/// Attitude from DJI's maker notes (little-endian IFD entries without a TIFF header).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct DjiMakerNotes {
    /// 0x06 Pitch, 0x07 Yaw, 0x08 Roll: the aircraft.
    pub flight_pitch: Option<f64>,
    pub flight_yaw: Option<f64>,
    pub flight_roll: Option<f64>,
    /// 0x09 CameraPitch, 0x0a CameraYaw, 0x0b CameraRoll: the gimbal.
    pub camera_pitch: Option<f64>,
    pub camera_yaw: Option<f64>,
    pub camera_roll: Option<f64>,
}

/// Parses the TIFF structure of an EXIF APP1 payload. `None` when nothing is readable.
pub(crate) fn read(tiff: &[u8]) -> Option<ExifFields> {
    let mut damaged = false;
    let exif = match Reader::new()
        .continue_on_error(true)
        .read_raw(tiff.to_vec())
    {
        Ok(exif) => exif,
        // Keep whatever parsed around the damage; a field crew still gets the position.
        Err(err) => err.distill_partial_result(|_| damaged = true).ok()?,
    };
    let get = |tag: Tag| {
        exif.get_field(tag, In::PRIMARY)
            .map(|field: &Field| &field.value)
    };

    let make = get(Tag::Make).and_then(ascii);
    let model = get(Tag::Model).and_then(ascii);
    let taken_at = get(Tag::DateTimeOriginal)
        .or_else(|| get(Tag::DateTime))
        .and_then(ascii)
        .and_then(|text| iso_datetime(&text));

    let latitude = signed_degrees(get(Tag::GPSLatitude), get(Tag::GPSLatitudeRef), b'S');
    let longitude = signed_degrees(get(Tag::GPSLongitude), get(Tag::GPSLongitudeRef), b'W');
    let gps_altitude_m = get(Tag::GPSAltitude).and_then(first_number).map(|metres| {
        let below_sea_level = get(Tag::GPSAltitudeRef)
            .and_then(|v| v.get_uint(0))
            .is_some_and(|r| r == 1);
        if below_sea_level {
            -metres
        } else {
            metres
        }
    });

    let focal_length_mm = get(Tag::FocalLength)
        .and_then(first_number)
        .filter(|f| *f > 0.0);
    let focal_length_35mm = get(Tag::FocalLengthIn35mmFilm)
        .and_then(first_number)
        .filter(|f| *f > 0.0);
    let focal_plane_px_per_mm = focal_plane_resolution(
        get(Tag::FocalPlaneXResolution),
        get(Tag::FocalPlaneResolutionUnit),
    );

    let is_dji = make
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("DJI"));
    let dji = match get(Tag::MakerNote) {
        Some(Value::Undefined(note, _)) if is_dji => dji_maker_notes(note),
        _ => None,
    };

    Some(ExifFields {
        make,
        model,
        taken_at,
        latitude,
        longitude,
        gps_altitude_m,
        focal_length_mm,
        focal_length_35mm,
        focal_plane_px_per_mm,
        dji,
        damaged,
    })
}

/// An ASCII field as trimmed text (cameras pad with NULs and spaces).
fn ascii(value: &Value) -> Option<String> {
    let Value::Ascii(parts) = value else {
        return None;
    };
    let text = String::from_utf8_lossy(parts.first()?);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.to_string())
}

/// `2016:06:23 16:31:59` -> `2016-06-23T16:31:59`; `None` for blank or malformed dates.
fn iso_datetime(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 {
        return None;
    }
    let digits_at = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if !digits_at.iter().all(|&i| bytes[i].is_ascii_digit()) {
        return None;
    }
    if &text[0..4] == "0000" {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}",
        &text[0..4],
        &text[5..7],
        &text[8..10],
        &text[11..13],
        &text[14..16],
        &text[17..19]
    ))
}

/// The first value of a numeric field as f64.
fn first_number(value: &Value) -> Option<f64> {
    let number = match value {
        Value::Rational(v) => rational(v.first()?)?,
        Value::SRational(v) => {
            let r = v.first()?;
            (r.denom != 0).then(|| f64::from(r.num) / f64::from(r.denom))?
        }
        Value::Short(v) => f64::from(*v.first()?),
        Value::Long(v) => f64::from(*v.first()?),
        Value::Float(v) => f64::from(*v.first()?),
        Value::Double(v) => *v.first()?,
        _ => return None,
    };
    number.is_finite().then_some(number)
}

fn rational(r: &Rational) -> Option<f64> {
    (r.denom != 0).then(|| f64::from(r.num) / f64::from(r.denom))
}

/// Degrees from EXIF's degrees/minutes/seconds rationals, negative for the `negative` ref.
fn signed_degrees(dms: Option<&Value>, reference: Option<&Value>, negative: u8) -> Option<f64> {
    let Some(Value::Rational(parts)) = dms else {
        return None;
    };
    let mut degrees = 0.0;
    for (part, scale) in parts.iter().zip([1.0, 60.0, 3600.0]) {
        degrees += rational(part)? / scale;
    }
    if parts.is_empty() {
        return None;
    }
    let is_negative = match reference {
        Some(Value::Ascii(refs)) => refs
            .first()
            .and_then(|r| r.first())
            .is_some_and(|r| r.eq_ignore_ascii_case(&negative)),
        _ => false,
    };
    Some(if is_negative { -degrees } else { degrees })
}

/// Pixels per millimetre on the focal plane; unit 2 = inch, 3 = cm, 4 = mm, 5 = µm.
fn focal_plane_resolution(resolution: Option<&Value>, unit: Option<&Value>) -> Option<f64> {
    let per_unit = resolution.and_then(first_number).filter(|r| *r > 0.0)?;
    let mm_per_unit = match unit.and_then(|u| u.get_uint(0)).unwrap_or(2) {
        2 => 25.4,
        3 => 10.0,
        4 => 1.0,
        5 => 0.001,
        _ => return None,
    };
    Some(per_unit / mm_per_unit)
}

/// Reads DJI's maker notes: a little-endian IFD (entry count, then 12-byte entries) with no
/// TIFF header. Only the attitude floats are needed and they fit in the value field itself,
/// so offsets into the enclosing TIFF are never followed.
fn dji_maker_notes(note: &[u8]) -> Option<DjiMakerNotes> {
    const FLOAT: u16 = 11;
    let count = usize::from(u16::from_le_bytes([*note.first()?, *note.get(1)?]));
    let mut out = DjiMakerNotes::default();
    let mut found = false;
    for i in 0..count {
        let Some(entry) = note.get(2 + 12 * i..2 + 12 * (i + 1)) else {
            break;
        };
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        let kind = u16::from_le_bytes([entry[2], entry[3]]);
        let n = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        if kind != FLOAT || n != 1 {
            continue;
        }
        let value = f64::from(f32::from_le_bytes([
            entry[8], entry[9], entry[10], entry[11],
        ]));
        if !value.is_finite() {
            continue;
        }
        let slot = match tag {
            0x06 => &mut out.flight_pitch,
            0x07 => &mut out.flight_yaw,
            0x08 => &mut out.flight_roll,
            0x09 => &mut out.camera_pitch,
            0x0a => &mut out.camera_yaw,
            0x0b => &mut out.camera_roll,
            _ => continue,
        };
        *slot = Some(value);
        found = true;
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_become_iso() {
        assert_eq!(
            iso_datetime("2016:06:23 16:31:59").as_deref(),
            Some("2016-06-23T16:31:59")
        );
        assert_eq!(iso_datetime("0000:00:00 00:00:00"), None);
        assert_eq!(iso_datetime("    :  :     :  :  "), None);
    }

    #[test]
    fn maker_note_entries_are_little_endian_floats() {
        let mut note = vec![2, 0];
        note.extend_from_slice(&[0x09, 0, 11, 0, 1, 0, 0, 0]);
        note.extend_from_slice(&(-89.9f32).to_le_bytes());
        note.extend_from_slice(&[0x0a, 0, 11, 0, 1, 0, 0, 0]);
        note.extend_from_slice(&45.0f32.to_le_bytes());
        let parsed = dji_maker_notes(&note).unwrap();
        assert!((parsed.camera_pitch.unwrap() + 89.9).abs() < 1e-5);
        assert_eq!(parsed.camera_yaw, Some(45.0));
        assert_eq!(parsed.flight_yaw, None);
        // A count larger than the data must not read past it.
        assert!(dji_maker_notes(&[200, 0, 1, 2]).is_none());
    }
}
