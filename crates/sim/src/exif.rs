//! Writing photo metadata the way a DJI drone does: an EXIF APP1 segment (a little-endian TIFF
//! with IFD0, the Exif IFD and the GPS IFD) and an XMP APP1 segment with `drone-dji` attributes,
//! spliced into a JPEG right after its SOI marker in place of the encoder's JFIF APP0.

use crate::SimError;

/// Everything written into one photo's metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhotoMeta {
    pub make: String,
    pub model: String,
    /// `YYYY:MM:DD HH:MM:SS`, as EXIF writes it.
    pub datetime: String,
    pub width: u32,
    pub height: u32,
    pub focal_mm: f64,
    pub focal_35mm: u16,
    pub f_number: f64,
    /// Exposure time, seconds.
    pub exposure_s: f64,
    pub iso: u16,
    /// WGS 84, degrees.
    pub latitude: f64,
    pub longitude: f64,
    /// Metres above mean sea level (EXIF GPSAltitude and XMP AbsoluteAltitude).
    pub absolute_altitude_m: f64,
    /// Metres above the take-off point.
    pub relative_altitude_m: f64,
    pub gimbal_yaw_deg: f64,
    pub gimbal_pitch_deg: f64,
    pub gimbal_roll_deg: f64,
    pub flight_yaw_deg: f64,
    pub flight_pitch_deg: f64,
    pub flight_roll_deg: f64,
}

/// Denominator of GPS seconds: 1e-6 arc-seconds is 0.03 mm on the ground.
const SECONDS_DENOMINATOR: u32 = 1_000_000;

/// Degrees to EXIF degrees/minutes/seconds rationals, as `(numerator, denominator)` triples.
pub fn dms_rationals(deg: f64) -> [(u32, u32); 3] {
    let micro_arcsec = (deg.abs() * 3600.0 * SECONDS_DENOMINATOR as f64).round() as u64;
    let per_degree = 3600 * SECONDS_DENOMINATOR as u64;
    let d = micro_arcsec / per_degree;
    let rest = micro_arcsec % per_degree;
    let per_minute = 60 * SECONDS_DENOMINATOR as u64;
    let m = rest / per_minute;
    let s = rest % per_minute;
    [
        (d as u32, 1),
        (m as u32, 1),
        (s as u32, SECONDS_DENOMINATOR),
    ]
}

/// The value a reader gets back from [`dms_rationals`] (signless).
pub fn dms_value(r: &[(u32, u32); 3]) -> f64 {
    let f = |(n, d): (u32, u32)| n as f64 / d as f64;
    f(r[0]) + f(r[1]) / 60.0 + f(r[2]) / 3600.0
}

/// Altitude as written: millimetre rational.
fn altitude_rational(m: f64) -> (u32, u32) {
    ((m.abs() * 1000.0).round() as u32, 1000)
}

impl PhotoMeta {
    /// Latitude as a reader decodes it from the EXIF rationals and ref.
    pub fn written_latitude(&self) -> f64 {
        dms_value(&dms_rationals(self.latitude)).copysign(self.latitude)
    }

    /// Longitude as a reader decodes it from the EXIF rationals and ref.
    pub fn written_longitude(&self) -> f64 {
        dms_value(&dms_rationals(self.longitude)).copysign(self.longitude)
    }

    /// GPSAltitude as a reader decodes it (with the sign from GPSAltitudeRef).
    pub fn written_gps_altitude(&self) -> f64 {
        let (n, d) = altitude_rational(self.absolute_altitude_m);
        (n as f64 / d as f64).copysign(self.absolute_altitude_m)
    }
}

/// A TIFF value type and its payload bytes (little-endian).
enum Value {
    Byte(Vec<u8>),
    Ascii(String),
    Short(u16),
    Long(u32),
    Rational(Vec<(u32, u32)>),
    Undefined(Vec<u8>),
}

impl Value {
    fn type_and_count(&self) -> (u16, u32) {
        match self {
            Value::Byte(b) => (1, b.len() as u32),
            Value::Ascii(s) => (2, s.len() as u32 + 1),
            Value::Short(_) => (3, 1),
            Value::Long(_) => (4, 1),
            Value::Rational(r) => (5, r.len() as u32),
            Value::Undefined(b) => (7, b.len() as u32),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Value::Byte(b) | Value::Undefined(b) => b.clone(),
            Value::Ascii(s) => {
                let mut v = s.as_bytes().to_vec();
                v.push(0);
                v
            }
            Value::Short(x) => x.to_le_bytes().to_vec(),
            Value::Long(x) => x.to_le_bytes().to_vec(),
            Value::Rational(r) => r
                .iter()
                .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
                .collect(),
        }
    }
}

/// Serialises one IFD at `offset` (from the TIFF header); values longer than 4 bytes follow
/// the IFD. Entries must be sorted by tag, as TIFF requires. Returns the IFD's bytes.
fn write_ifd(entries: &[(u16, Value)], offset: u32) -> Vec<u8> {
    let n = entries.len();
    let table_len = 2 + 12 * n + 4;
    let mut table = Vec::with_capacity(table_len);
    let mut data = Vec::new();
    table.extend_from_slice(&(n as u16).to_le_bytes());
    for (tag, value) in entries {
        let (typ, count) = value.type_and_count();
        let bytes = value.bytes();
        table.extend_from_slice(&tag.to_le_bytes());
        table.extend_from_slice(&typ.to_le_bytes());
        table.extend_from_slice(&count.to_le_bytes());
        if bytes.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..bytes.len()].copy_from_slice(&bytes);
            table.extend_from_slice(&inline);
        } else {
            let at = offset + table_len as u32 + data.len() as u32;
            table.extend_from_slice(&at.to_le_bytes());
            data.extend_from_slice(&bytes);
            // Values start on word boundaries.
            if data.len() % 2 == 1 {
                data.push(0);
            }
        }
    }
    // No next IFD (no thumbnail).
    table.extend_from_slice(&0u32.to_le_bytes());
    table.extend_from_slice(&data);
    table
}

fn rational(x: f64, den: u32) -> (u32, u32) {
    ((x * den as f64).round() as u32, den)
}

/// The TIFF structure of the EXIF segment (without the `Exif\0\0` prefix).
pub fn exif_tiff(m: &PhotoMeta) -> Vec<u8> {
    // The Exif and GPS IFD offsets depend on IFD0's size, which depends only on its
    // entries' sizes, so IFD0 is laid out twice: once to measure, once for real.
    let ifd0 = |exif_at: u32, gps_at: u32| -> Vec<(u16, Value)> {
        vec![
            (0x010F, Value::Ascii(m.make.clone())),
            (0x0110, Value::Ascii(m.model.clone())),
            (0x0112, Value::Short(1)),
            (0x011A, Value::Rational(vec![(72, 1)])),
            (0x011B, Value::Rational(vec![(72, 1)])),
            (0x0128, Value::Short(2)),
            (0x0131, Value::Ascii("besikta-sim".into())),
            (0x0132, Value::Ascii(m.datetime.clone())),
            (0x0213, Value::Short(1)),
            (0x8769, Value::Long(exif_at)),
            (0x8825, Value::Long(gps_at)),
        ]
    };
    let exif = vec![
        (
            0x829A,
            Value::Rational(vec![rational(m.exposure_s, 1_000_000)]),
        ),
        (0x829D, Value::Rational(vec![rational(m.f_number, 10)])),
        (0x8822, Value::Short(2)),
        (0x8827, Value::Short(m.iso)),
        (0x9000, Value::Undefined(b"0230".to_vec())),
        (0x9003, Value::Ascii(m.datetime.clone())),
        (0x9004, Value::Ascii(m.datetime.clone())),
        // Y Cb Cr, as every JPEG camera writes; exiftool -validate requires it.
        (0x9101, Value::Undefined(vec![1, 2, 3, 0])),
        (0x920A, Value::Rational(vec![rational(m.focal_mm, 100)])),
        (0xA000, Value::Undefined(b"0010".to_vec())),
        (0xA001, Value::Short(1)),
        (0xA002, Value::Long(m.width)),
        (0xA003, Value::Long(m.height)),
        (0xA405, Value::Short(m.focal_35mm)),
    ];
    let ref_of = |v: f64, pos: &str, neg: &str| if v < 0.0 { neg } else { pos }.to_string();
    let gps = vec![
        (0x0000, Value::Byte(vec![2, 3, 0, 0])),
        (0x0001, Value::Ascii(ref_of(m.latitude, "N", "S"))),
        (0x0002, Value::Rational(dms_rationals(m.latitude).to_vec())),
        (0x0003, Value::Ascii(ref_of(m.longitude, "E", "W"))),
        (0x0004, Value::Rational(dms_rationals(m.longitude).to_vec())),
        (
            0x0005,
            Value::Byte(vec![u8::from(m.absolute_altitude_m < 0.0)]),
        ),
        (
            0x0006,
            Value::Rational(vec![altitude_rational(m.absolute_altitude_m)]),
        ),
        (0x0012, Value::Ascii("WGS-84".into())),
    ];
    let ifd0_len = write_ifd(&ifd0(0, 0), 8).len() as u32;
    let exif_at = 8 + ifd0_len;
    let exif_bytes = write_ifd(&exif, exif_at);
    let gps_at = exif_at + exif_bytes.len() as u32;
    let gps_bytes = write_ifd(&gps, gps_at);

    let mut out = Vec::new();
    out.extend_from_slice(b"II*\0");
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&write_ifd(&ifd0(exif_at, gps_at), 8));
    out.extend_from_slice(&exif_bytes);
    out.extend_from_slice(&gps_bytes);
    out
}

/// A DJI-style signed angle or altitude: `+95.00`, `-90.00` (never `-0.00`).
pub fn dji_number(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    let r = if r == 0.0 { 0.0 } else { r };
    format!("{r:+.2}")
}

/// The XMP packet as DJI writes it (attribute form of `rdf:Description`).
pub fn xmp_packet(m: &PhotoMeta) -> String {
    let date = m.datetime.get(..10).unwrap_or("").replace(':', "-");
    let mut s = String::new();
    s.push_str("<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n");
    s.push_str("<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n");
    s.push_str(" <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n");
    s.push_str("  <rdf:Description rdf:about=\"DJI Meta Data\"\n");
    s.push_str("    xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\"\n");
    s.push_str("    xmlns:exif=\"http://ns.adobe.com/exif/1.0/\"\n");
    s.push_str("    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"\n");
    s.push_str("    xmlns:xmpMM=\"http://ns.adobe.com/xap/1.0/mm/\"\n");
    s.push_str("    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n");
    s.push_str("    xmlns:drone-dji=\"http://www.dji.com/drone-dji/1.0/\"\n");
    let attrs = [
        ("xmp:ModifyDate", date.clone()),
        ("xmp:CreateDate", date),
        ("tiff:Make", xml_escape(&m.make)),
        ("tiff:Model", xml_escape(&m.model)),
        ("dc:format", "image/jpeg".into()),
        (
            "drone-dji:AbsoluteAltitude",
            dji_number(m.absolute_altitude_m),
        ),
        (
            "drone-dji:RelativeAltitude",
            dji_number(m.relative_altitude_m),
        ),
        ("drone-dji:GimbalRollDegree", dji_number(m.gimbal_roll_deg)),
        ("drone-dji:GimbalYawDegree", dji_number(m.gimbal_yaw_deg)),
        (
            "drone-dji:GimbalPitchDegree",
            dji_number(m.gimbal_pitch_deg),
        ),
        ("drone-dji:FlightRollDegree", dji_number(m.flight_roll_deg)),
        ("drone-dji:FlightYawDegree", dji_number(m.flight_yaw_deg)),
        (
            "drone-dji:FlightPitchDegree",
            dji_number(m.flight_pitch_deg),
        ),
    ];
    let last = attrs.len() - 1;
    for (i, (k, v)) in attrs.iter().enumerate() {
        s.push_str(&format!("   {k}=\"{v}\""));
        s.push_str(if i == last { ">\n" } else { "\n" });
    }
    s.push_str("  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n");
    // Padding lets editors grow the packet in place, as every camera leaves it.
    for _ in 0..8 {
        s.push_str(&" ".repeat(99));
        s.push('\n');
    }
    s.push_str("<?xpacket end=\"w\"?>");
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// The two APP1 segments (marker, length and payload), EXIF first as DJI orders them.
pub fn app1_segments(m: &PhotoMeta) -> Result<Vec<u8>, SimError> {
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(&exif_tiff(m));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(xmp_packet(m).as_bytes());
    let mut out = Vec::new();
    for payload in [exif, xmp] {
        let len = payload.len() + 2;
        if len > 0xFFFF {
            return Err(SimError::Config {
                message: format!("metadata segment of {len} bytes does not fit a JPEG APP1"),
            });
        }
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&payload);
    }
    Ok(out)
}

/// Puts the metadata segments right after SOI, dropping the encoder's JFIF APP0 (a DJI
/// photo starts with its EXIF APP1).
pub fn splice_metadata(jpeg: &[u8], m: &PhotoMeta) -> Result<Vec<u8>, SimError> {
    if jpeg.len() < 4 || jpeg[0..2] != [0xFF, 0xD8] {
        return Err(SimError::Config {
            message: "the JPEG encoder produced no SOI marker".into(),
        });
    }
    let mut rest = &jpeg[2..];
    if rest.len() >= 4 && rest[0..2] == [0xFF, 0xE0] {
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        rest = &rest[(2 + len).min(rest.len())..];
    }
    let mut out = Vec::with_capacity(jpeg.len() + 4096);
    out.extend_from_slice(&[0xFF, 0xD8]);
    out.extend_from_slice(&app1_segments(m)?);
    out.extend_from_slice(rest);
    Ok(out)
}

/// The APP1 segments of a JPEG file (marker, length, payload), in order: for comparing a
/// written photo's metadata byte for byte.
pub fn read_app1_segments(jpeg: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut p = 2;
    while p + 4 <= jpeg.len() && jpeg[p] == 0xFF {
        let marker = jpeg[p + 1];
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = u16::from_be_bytes([jpeg[p + 2], jpeg[p + 3]]) as usize;
        let end = (p + 2 + len).min(jpeg.len());
        if marker == 0xE1 {
            out.push(jpeg[p..end].to_vec());
        }
        p = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dms_carries_over_exactly() {
        let r = dms_rationals(60.169_999_999_9);
        assert_eq!(r[0], (60, 1));
        assert_eq!(r[1], (10, 1));
        assert_eq!(r[2].1, SECONDS_DENOMINATOR);
        assert!((dms_value(&r) - 60.17).abs() < 1e-9);
        // 59.9999999 seconds round up into the next minute, not to "60 seconds".
        let r = dms_rationals(24.0 + 59.0 / 60.0 + 59.999_999_9 / 3600.0);
        assert_eq!(r, [(25, 1), (0, 1), (0, SECONDS_DENOMINATOR)]);
    }

    #[test]
    fn dji_numbers_have_a_sign_and_two_decimals() {
        assert_eq!(dji_number(95.0), "+95.00");
        assert_eq!(dji_number(-90.0), "-90.00");
        assert_eq!(dji_number(-0.001), "+0.00");
        assert_eq!(dji_number(179.996), "+180.00");
    }

    #[test]
    fn splice_replaces_jfif_and_segments_read_back() {
        let m = PhotoMeta {
            make: "DJI".into(),
            model: "FC6310".into(),
            datetime: "2024:06:01 10:00:00".into(),
            width: 8,
            height: 8,
            focal_mm: 8.8,
            focal_35mm: 24,
            f_number: 5.6,
            exposure_s: 0.001,
            iso: 100,
            latitude: 60.169,
            longitude: 24.945,
            absolute_altitude_m: 50.0,
            relative_altitude_m: 40.0,
            gimbal_yaw_deg: 0.0,
            gimbal_pitch_deg: -90.0,
            gimbal_roll_deg: 0.0,
            flight_yaw_deg: 0.0,
            flight_pitch_deg: 0.0,
            flight_roll_deg: 0.0,
        };
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xD9];
        let out = splice_metadata(&jpeg, &m).unwrap();
        let segs = read_app1_segments(&out);
        assert_eq!(segs.len(), 2);
        assert_eq!(&segs[0][4..10], b"Exif\0\0");
        assert!(segs[1][4..].starts_with(b"http://ns.adobe.com/xap/1.0/\0"));
        assert!(
            !out.windows(2).any(|w| w == [0xFF, 0xE0]),
            "JFIF APP0 removed"
        );
        assert_eq!(&out[out.len() - 2..], &[0xFF, 0xD9]);
    }
}
