//! Ingest against someone else's truth: exiftool's reading (`exiftool -n -json`) of the
//! Brighton photos and of the crafted broken files, committed beside them.

use besikta_core::{Capture, IntrinsicsSource};
use besikta_ingest::{read_capture, read_capture_bytes, scan, Problem};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The photos that have an exiftool reading beside them.
fn brighton_photos() -> Vec<(PathBuf, Value)> {
    let dir = fixtures().join("brighton");
    let mut found: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "JPG"))
        .map(|photo| {
            let json = photo.with_extension("exiftool.json");
            let text = std::fs::read_to_string(&json)
                .unwrap_or_else(|e| panic!("{}: {e}", json.display()));
            let mut parsed: Value = serde_json::from_str(&text).unwrap();
            (photo, parsed[0].take())
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(found.len() >= 3, "expected the three Brighton fixtures");
    found
}

/// exiftool -n prints XMP reals as text (`"+45.00"`) and EXIF values as numbers.
fn number(tags: &Value, name: &str) -> f64 {
    match &tags[name] {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.trim().parse().unwrap_or_else(|_| panic!("{name}: {s}")),
        other => panic!("exiftool has no numeric {name}: {other}"),
    }
}

fn text(tags: &Value, name: &str) -> String {
    tags[name]
        .as_str()
        .unwrap_or_else(|| panic!("exiftool has no {name}"))
        .to_string()
}

fn close(what: &str, ours: Option<f64>, truth: f64, tolerance: f64) {
    let ours = ours.unwrap_or_else(|| panic!("{what}: we read nothing, exiftool {truth}"));
    assert!(
        (ours - truth).abs() <= tolerance,
        "{what}: we read {ours}, exiftool {truth}"
    );
}

/// Every contract field of `c` against exiftool's reading of the same file.
fn assert_agrees(c: &Capture, tags: &Value) {
    let file = &c.file;
    assert_eq!(c.width, number(tags, "ImageWidth") as u32, "{file}");
    assert_eq!(c.height, number(tags, "ImageHeight") as u32, "{file}");
    assert_eq!(
        c.make.as_deref(),
        Some(text(tags, "Make").as_str()),
        "{file}"
    );
    assert_eq!(
        c.model.as_deref(),
        Some(text(tags, "Model").as_str()),
        "{file}"
    );
    let taken = text(tags, "DateTimeOriginal")
        .replacen(':', "-", 2)
        .replacen(' ', "T", 1);
    assert_eq!(c.taken_at.as_deref(), Some(taken.as_str()), "{file}");
    close("latitude", c.latitude, number(tags, "GPSLatitude"), 1e-7);
    close("longitude", c.longitude, number(tags, "GPSLongitude"), 1e-7);
    let below = number(tags, "GPSAltitudeRef") == 1.0;
    let gps_altitude = number(tags, "GPSAltitude");
    close(
        "GPS altitude",
        c.gps_altitude_m,
        if below { -gps_altitude } else { gps_altitude },
        0.01,
    );
    close(
        "absolute altitude",
        c.absolute_altitude_m,
        number(tags, "AbsoluteAltitude"),
        0.01,
    );
    close(
        "relative altitude",
        c.relative_altitude_m,
        number(tags, "RelativeAltitude"),
        0.01,
    );
    close(
        "gimbal yaw",
        c.gimbal_yaw_deg,
        number(tags, "GimbalYawDegree"),
        0.01,
    );
    close(
        "gimbal pitch",
        c.gimbal_pitch_deg,
        number(tags, "GimbalPitchDegree"),
        0.01,
    );
    close(
        "gimbal roll",
        c.gimbal_roll_deg,
        number(tags, "GimbalRollDegree"),
        0.01,
    );
    close(
        "flight yaw",
        c.flight_yaw_deg,
        number(tags, "FlightYawDegree"),
        0.01,
    );
    close(
        "flight pitch",
        c.flight_pitch_deg,
        number(tags, "FlightPitchDegree"),
        0.01,
    );
    close(
        "flight roll",
        c.flight_roll_deg,
        number(tags, "FlightRollDegree"),
        0.01,
    );
    close(
        "focal length",
        c.focal_length_mm,
        number(tags, "FocalLength"),
        1e-6,
    );
    close(
        "35 mm focal length",
        c.focal_length_35mm,
        number(tags, "FocalLengthIn35mmFormat"),
        1e-6,
    );
}

#[test]
fn brighton_photos_agree_with_exiftool() {
    for (photo, tags) in brighton_photos() {
        let c = read_capture(&photo).unwrap();
        assert_agrees(&c, &tags);
        assert_eq!(c.attitude_source.as_deref(), Some("xmp-drone-dji"));
        assert_eq!(c.sha256.len(), 64);
        // FC300S: 6.17 mm sensor width, 16:9 photos keep the full 4000 px width.
        assert_eq!(c.intrinsics_source, Some(IntrinsicsSource::CameraDatabase));
        close(
            "focal length px",
            c.focal_length_px,
            number(&tags, "FocalLength") / 6.17 * number(&tags, "ImageWidth"),
            1e-6,
        );
        assert!((c.focal_length_px.unwrap() - 2340.0).abs() < 1.0);
    }
}

#[test]
fn uploads_read_the_same_as_files() {
    for (photo, _) in brighton_photos() {
        let from_file = read_capture(&photo).unwrap();
        let bytes = std::fs::read(&photo).unwrap();
        let upload = read_capture_bytes(&from_file.file, &bytes).unwrap();
        assert_eq!(upload, from_file);
    }
}

/// Splits a JPEG into header segments (marker, bytes including the marker) and the rest
/// from SOS on: a test-side walk, independent of the crate's.
fn split_header(bytes: &[u8]) -> (Vec<(u8, Vec<u8>)>, Vec<u8>) {
    let mut segments = Vec::new();
    let mut pos = 2;
    loop {
        let marker = bytes[pos + 1];
        if marker == 0xDA {
            return (segments, bytes[pos..].to_vec());
        }
        let length = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
        segments.push((marker, bytes[pos..pos + 2 + length].to_vec()));
        pos += 2 + length;
    }
}

fn join(segments: &[(u8, Vec<u8>)], rest: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    for (_, bytes) in segments {
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(rest);
    out
}

fn is_xmp(segment: &(u8, Vec<u8>)) -> bool {
    segment.0 == 0xE1 && segment.1[4..].starts_with(b"http://ns.adobe.com/xap/1.0/\0")
}

#[test]
fn dji_maker_notes_fill_in_when_the_xmp_is_gone() {
    for (photo, tags) in brighton_photos() {
        let bytes = std::fs::read(&photo).unwrap();
        let (mut segments, rest) = split_header(&bytes);
        let before = segments.len();
        segments.retain(|s| !is_xmp(s));
        assert_eq!(
            segments.len(),
            before - 1,
            "{} has one XMP packet",
            photo.display()
        );
        let c = read_capture_bytes("no-xmp.jpg", &join(&segments, &rest)).unwrap();
        assert_eq!(c.attitude_source.as_deref(), Some("dji-makernotes"));
        // exiftool's names for DJI maker-note tags 0x06..0x0b.
        close(
            "camera yaw",
            c.gimbal_yaw_deg,
            number(&tags, "CameraYaw"),
            1e-4,
        );
        close(
            "camera pitch",
            c.gimbal_pitch_deg,
            number(&tags, "CameraPitch"),
            1e-4,
        );
        close(
            "camera roll",
            c.gimbal_roll_deg,
            number(&tags, "CameraRoll"),
            1e-4,
        );
        close("yaw", c.flight_yaw_deg, number(&tags, "Yaw"), 1e-4);
        close("pitch", c.flight_pitch_deg, number(&tags, "Pitch"), 1e-4);
        close("roll", c.flight_roll_deg, number(&tags, "Roll"), 1e-4);
        // And they agree with the XMP to its two decimals.
        close(
            "gimbal pitch",
            c.gimbal_pitch_deg,
            number(&tags, "GimbalPitchDegree"),
            0.01,
        );
        assert_eq!(c.absolute_altitude_m, None);
        close("latitude", c.latitude, number(&tags, "GPSLatitude"), 1e-7);
    }
}

#[test]
fn frame_header_size_wins_over_exif() {
    let (photo, tags) = &brighton_photos()[0];
    let bytes = std::fs::read(photo).unwrap();
    let (mut segments, rest) = split_header(&bytes);
    let sof = segments.iter_mut().find(|s| s.0 == 0xC0).unwrap();
    // SOF0 payload: length(2) precision(1) height(2) width(2).
    sof.1[5..7].copy_from_slice(&3000u16.to_be_bytes());
    let c = read_capture_bytes("resized.jpg", &join(&segments, &rest)).unwrap();
    assert_eq!(number(tags, "ExifImageHeight"), 2250.0);
    assert_eq!((c.width, c.height), (4000, 3000));
}

fn broken(name: &str) -> PathBuf {
    fixtures().join("broken").join(name)
}

fn exiftool_of(name: &str) -> Value {
    let path = broken(name).with_extension("exiftool.json");
    let mut parsed: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    parsed[0].take()
}

/// One crafted file per rejection reason, and what each must be rejected for.
#[test]
fn each_broken_fixture_is_rejected_for_its_own_reason() {
    type Check = fn(&Problem) -> bool;
    let cases: [(&str, Check); 6] = [
        ("truncated.jpg", |p| matches!(p, Problem::Truncated)),
        ("not-a-photo.jpg", |p| matches!(p, Problem::NotJpeg { .. })),
        ("no-gps.jpg", |p| matches!(p, Problem::NoGps)),
        ("bomb-65535x65535.jpg", |p| {
            matches!(
                p,
                Problem::TooManyPixels {
                    width: 65535,
                    height: 65535,
                    ..
                }
            )
        }),
        (
            "latitude-95.jpg",
            |p| matches!(p, Problem::OutOfRange { value, .. } if *value == 95.0),
        ),
        (
            "gimbal-up.jpg",
            |p| matches!(p, Problem::GimbalAboveHorizon { pitch } if *pitch == 30.0),
        ),
    ];
    for (name, expected) in cases {
        let err = read_capture(&broken(name)).expect_err(name);
        assert!(expected(&err.problem), "{name}: {err}");
        assert!(
            err.to_string().contains(name),
            "the error names the file: {err}"
        );
        // Every reason tells the crew what to do.
        let reason = err.reason();
        assert!(
            ["copy", "leave", "do not", "geotag", "export", "remove"]
                .iter()
                .any(|verb| reason.contains(verb)),
            "{name}: {reason}"
        );
    }
    // exiftool agrees the values are what the reasons say.
    assert_eq!(number(&exiftool_of("latitude-95.jpg"), "GPSLatitude"), 95.0);
    assert_eq!(
        number(&exiftool_of("gimbal-up.jpg"), "GimbalPitchDegree"),
        30.0
    );
    assert!(exiftool_of("no-gps.jpg").get("GPSLatitude").is_none());
    let reason = read_capture(&broken("no-gps.jpg")).unwrap_err().reason();
    assert!(
        reason.starts_with("no GPS position in EXIF or XMP"),
        "{reason}"
    );
}

#[test]
fn small_crafted_photo_still_agrees_with_exiftool() {
    // The header of DJI_0018 with synthetic image data: everything but the pixels is real.
    let c = read_capture(&broken("duplicate-1.jpg")).unwrap();
    assert_agrees(&c, &exiftool_of("duplicate-1.jpg"));
}

#[test]
fn xmp_in_element_form_reads_like_exiftool() {
    // exiftool rewrote this packet as property elements; turn the +30 back into a nadir
    // pitch of the same length and the photo must read exactly as exiftool read it.
    let mut bytes = std::fs::read(broken("gimbal-up.jpg")).unwrap();
    let element = b"<drone-dji:GimbalPitchDegree>+30.00<";
    let at = bytes
        .windows(element.len())
        .position(|w| w == element)
        .expect("exiftool writes XMP properties as elements");
    bytes[at + 29..at + 35].copy_from_slice(b"-45.00");
    let c = read_capture_bytes("gimbal-up.jpg", &bytes).unwrap();
    assert_eq!(c.gimbal_pitch_deg, Some(-45.0));
    let mut tags = exiftool_of("gimbal-up.jpg");
    tags["GimbalPitchDegree"] = Value::String("-45.00".into());
    assert_agrees(&c, &tags);
}

#[test]
fn scan_keeps_the_good_and_rejects_the_rest() {
    let report = scan(&[fixtures().join("brighton"), fixtures().join("broken")]);
    let names = |files: Vec<&String>| -> Vec<String> {
        files
            .iter()
            .map(|f| {
                Path::new(f)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    assert_eq!(
        names(report.captures.iter().map(|c| &c.file).collect()),
        [
            "DJI_0018.JPG",
            "DJI_0019.JPG",
            "DJI_0020.JPG",
            "duplicate-1.jpg"
        ]
    );
    assert_eq!(
        names(report.rejected.iter().map(|r| &r.file).collect()),
        [
            "bomb-65535x65535.jpg",
            "duplicate-2.jpg",
            "gimbal-up.jpg",
            "latitude-95.jpg",
            "no-gps.jpg",
            "not-a-photo.jpg",
            "truncated.jpg"
        ]
    );
    let duplicate = &report.rejected[1];
    assert!(
        duplicate.reason.contains("duplicate-1.jpg"),
        "{}",
        duplicate.reason
    );
    assert!(report.orthophotos.is_empty());
    // The same folder named twice is one input, not fourteen duplicates.
    let twice = scan(&[fixtures().join("brighton"), fixtures().join("brighton/")]);
    assert_eq!(twice.captures.len(), 3);
    assert!(twice.rejected.is_empty(), "{:?}", twice.rejected);
    // A copy under another name is a duplicate.
    let dir = tempfile::tempdir().unwrap();
    let original = fixtures().join("brighton/DJI_0018.JPG");
    std::fs::copy(&original, dir.path().join("copy.jpg")).unwrap();
    // macOS resource forks and trash on memory cards are not photos.
    std::fs::write(
        dir.path().join("._copy.jpg"),
        b"\0\x05\x16\x07 resource fork",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join(".Trashes")).unwrap();
    std::fs::write(dir.path().join(".Trashes/old.jpg"), b"deleted").unwrap();
    let both = scan(&[original, dir.path().to_path_buf()]);
    assert_eq!(both.captures.len(), 1);
    assert_eq!(both.rejected.len(), 1);
    assert!(both.rejected[0].reason.starts_with("same photo as"));
}

#[test]
fn missing_paths_are_rejected_not_fatal() {
    let report = scan(&[
        fixtures().join("no-such-folder"),
        fixtures().join("brighton/DJI_0019.JPG"),
    ]);
    assert_eq!(report.captures.len(), 1);
    assert_eq!(report.rejected.len(), 1);
    assert!(report.rejected[0].reason.contains("cannot read"));
}

#[test]
fn every_cut_short_copy_is_refused_and_nothing_panics() {
    let whole = std::fs::read(broken("duplicate-1.jpg")).unwrap();
    assert!(read_capture_bytes("whole.jpg", &whole).is_ok());
    // Cut anywhere before the end-of-image marker: header, metadata or image data.
    for len in (0..whole.len() - 1).step_by(61) {
        let err = read_capture_bytes("cut.jpg", &whole[..len])
            .expect_err("a cut-short copy must be refused");
        assert!(
            matches!(
                err.problem,
                Problem::Truncated | Problem::NotJpeg { .. } | Problem::Corrupt { .. }
            ),
            "cut at {len}: {err}"
        );
    }
    // Single damaged bytes in the header: refused, or still a plausible capture.
    for at in (2..20_000).step_by(7) {
        let mut damaged = whole.clone();
        damaged[at] ^= 0xA5;
        if let Ok(c) = read_capture_bytes("damaged.jpg", &damaged) {
            assert!(c.latitude.is_some_and(|l| (-90.0..=90.0).contains(&l)));
            assert!(c.width > 0 && c.height > 0);
            assert!(c.gimbal_pitch_deg.is_none_or(|p| p <= 0.0));
        }
    }
}

#[test]
fn content_hashes_agree_with_coreutils() {
    // `sha256sum fixtures/brighton/*.JPG` (GNU coreutils 9.1).
    let truth = [
        (
            "DJI_0018.JPG",
            "2ce07a031764b0c67da1226327c804c6100ef243ca88d01804a5fc2080394b17",
        ),
        (
            "DJI_0019.JPG",
            "037fa63260e54ed21f048359b454f32ef62cb08c864feecca0cb70d2a06e6902",
        ),
        (
            "DJI_0020.JPG",
            "0a6c59d68ea966f23cda127404d9f388cd2af4377f442cad302d84f0edf5ad0c",
        ),
    ];
    for (name, sha256) in truth {
        let c = read_capture(&fixtures().join("brighton").join(name)).unwrap();
        assert_eq!(c.sha256, sha256, "{name}");
    }
}
