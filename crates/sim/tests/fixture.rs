//! The committed simulated flight (`fixtures/sim`): its metadata is what exiftool reads,
//! byte for byte what the writer produces, what ingest reads back, and the whole folder is
//! what the committed command regenerates.

use besikta_core::IntrinsicsSource;
use besikta_sim::exif::{app1_segments, read_app1_segments};
use besikta_sim::{PhotoMeta, SimConfig};
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sim")
}

fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn photos() -> Vec<Value> {
    read_json("flight.json")["photos"]
        .as_array()
        .unwrap()
        .clone()
}

fn meta(photo: &Value) -> PhotoMeta {
    serde_json::from_value(photo["meta"].clone()).unwrap()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
}

#[test]
fn writer_output_is_the_fixture_photo_that_exiftool_read() {
    let photo = &photos()[0];
    assert_eq!(photo["file"], "DJI_0001.JPG");
    let m = meta(photo);
    let jpeg = std::fs::read(dir().join("DJI_0001.JPG")).unwrap();
    let written: Vec<u8> = read_app1_segments(&jpeg).concat();
    assert_eq!(
        written,
        app1_segments(&m).unwrap(),
        "APP1 bytes of DJI_0001.JPG"
    );

    // exiftool 12.57 `-n -json` of the same file (filesystem fields removed).
    let x = read_json("DJI_0001.exiftool.json");
    assert_eq!(x["Make"], m.make.as_str());
    assert_eq!(x["Model"], m.model.as_str());
    assert_eq!(x["DateTimeOriginal"], m.datetime.as_str());
    assert_eq!(x["CreateDate"], m.datetime.as_str());
    assert_eq!(x["ModifyDate"], m.datetime.as_str());
    assert_eq!(x["ExifImageWidth"], m.width);
    assert_eq!(x["ExifImageHeight"], m.height);
    assert_eq!(x["ImageWidth"], m.width);
    assert_eq!(x["ImageHeight"], m.height);
    close(
        x["FocalLength"].as_f64().unwrap(),
        m.focal_mm,
        1e-9,
        "FocalLength",
    );
    assert_eq!(x["FocalLengthIn35mmFormat"], m.focal_35mm);
    close(x["FNumber"].as_f64().unwrap(), m.f_number, 1e-9, "FNumber");
    close(
        x["ExposureTime"].as_f64().unwrap(),
        m.exposure_s,
        1e-12,
        "ExposureTime",
    );
    assert_eq!(x["ISO"], m.iso);
    assert_eq!(x["GPSLatitudeRef"], "N");
    assert_eq!(x["GPSLongitudeRef"], "E");
    assert_eq!(x["GPSAltitudeRef"], 0);
    assert_eq!(x["GPSVersionID"], "2 3 0 0");
    // exiftool prints 15 significant digits: 1e-12 degrees is 0.1 µm.
    close(
        x["GPSLatitude"].as_f64().unwrap(),
        m.latitude,
        1e-9,
        "GPSLatitude",
    );
    close(
        x["GPSLongitude"].as_f64().unwrap(),
        m.longitude,
        1e-9,
        "GPSLongitude",
    );
    close(
        x["GPSLatitude"].as_f64().unwrap(),
        m.written_latitude(),
        1e-12,
        "decoded latitude",
    );
    close(
        x["GPSLongitude"].as_f64().unwrap(),
        m.written_longitude(),
        1e-12,
        "decoded longitude",
    );
    close(
        x["GPSAltitude"].as_f64().unwrap(),
        m.absolute_altitude_m,
        1e-9,
        "GPSAltitude",
    );
    // XMP values: exiftool keeps DJI's signed strings for most of them.
    let xmp_num = |k: &str| -> f64 {
        match &x[k] {
            Value::String(s) => s.parse().unwrap(),
            v => v.as_f64().unwrap(),
        }
    };
    assert_eq!(x["AbsoluteAltitude"], "+30.00");
    assert_eq!(x["RelativeAltitude"], "+20.00");
    for (k, v) in [
        ("AbsoluteAltitude", m.absolute_altitude_m),
        ("RelativeAltitude", m.relative_altitude_m),
        ("GimbalYawDegree", m.gimbal_yaw_deg),
        ("GimbalPitchDegree", m.gimbal_pitch_deg),
        ("GimbalRollDegree", m.gimbal_roll_deg),
        ("FlightYawDegree", m.flight_yaw_deg),
        ("FlightPitchDegree", m.flight_pitch_deg),
        ("FlightRollDegree", m.flight_roll_deg),
    ] {
        close(xmp_num(k), v, 0.005 + 1e-12, k);
    }
    assert_eq!(x["About"], "DJI Meta Data");
}

#[test]
fn kamadak_exif_reads_what_exiftool_reads() {
    let x = read_json("DJI_0001.exiftool.json");
    let file = std::fs::File::open(dir().join("DJI_0001.JPG")).unwrap();
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::BufReader::new(file))
        .unwrap();
    let field = |tag| exif.get_field(tag, exif::In::PRIMARY).unwrap();
    let ascii = |tag| match &field(tag).value {
        exif::Value::Ascii(v) => String::from_utf8(v[0].clone()).unwrap(),
        v => panic!("{v:?}"),
    };
    assert_eq!(ascii(exif::Tag::Make), x["Make"].as_str().unwrap());
    assert_eq!(ascii(exif::Tag::Model), x["Model"].as_str().unwrap());
    assert_eq!(
        ascii(exif::Tag::DateTimeOriginal),
        x["DateTimeOriginal"].as_str().unwrap()
    );
    let dms = |tag| match &field(tag).value {
        exif::Value::Rational(r) => r[0].to_f64() + r[1].to_f64() / 60.0 + r[2].to_f64() / 3600.0,
        v => panic!("{v:?}"),
    };
    close(
        dms(exif::Tag::GPSLatitude),
        x["GPSLatitude"].as_f64().unwrap(),
        1e-12,
        "latitude",
    );
    close(
        dms(exif::Tag::GPSLongitude),
        x["GPSLongitude"].as_f64().unwrap(),
        1e-12,
        "longitude",
    );
    let rational = |tag| match &field(tag).value {
        exif::Value::Rational(r) => r[0].to_f64(),
        v => panic!("{v:?}"),
    };
    close(
        rational(exif::Tag::GPSAltitude),
        x["GPSAltitude"].as_f64().unwrap(),
        1e-12,
        "altitude",
    );
    close(
        rational(exif::Tag::FocalLength),
        x["FocalLength"].as_f64().unwrap(),
        1e-12,
        "focal",
    );
    assert_eq!(
        field(exif::Tag::FocalLengthIn35mmFilm).value.get_uint(0),
        x["FocalLengthIn35mmFormat"].as_u64().map(|v| v as u32)
    );
    assert_eq!(
        field(exif::Tag::PixelXDimension).value.get_uint(0),
        x["ExifImageWidth"].as_u64().map(|v| v as u32)
    );
}

#[test]
fn ingest_reads_back_every_value_written() {
    for photo in photos() {
        let file = photo["file"].as_str().unwrap();
        let w = &photo["written"];
        let c = besikta_ingest::read_capture(&dir().join(file)).unwrap();
        let num = |k: &str| w[k].as_f64().unwrap();
        assert_eq!(c.width as f64, num("width"), "{file}");
        assert_eq!(c.height as f64, num("height"));
        assert_eq!(c.make.as_deref(), w["make"].as_str());
        assert_eq!(c.model.as_deref(), w["model"].as_str());
        assert_eq!(c.taken_at.as_deref(), w["taken_at"].as_str());
        close(c.latitude.unwrap(), num("latitude"), 1e-12, "latitude");
        close(c.longitude.unwrap(), num("longitude"), 1e-12, "longitude");
        close(
            c.gps_altitude_m.unwrap(),
            num("gps_altitude_m"),
            1e-9,
            "gps altitude",
        );
        for (got, k) in [
            (c.absolute_altitude_m, "absolute_altitude_m"),
            (c.relative_altitude_m, "relative_altitude_m"),
            (c.gimbal_yaw_deg, "gimbal_yaw_deg"),
            (c.gimbal_pitch_deg, "gimbal_pitch_deg"),
            (c.gimbal_roll_deg, "gimbal_roll_deg"),
            (c.flight_yaw_deg, "flight_yaw_deg"),
            (c.flight_pitch_deg, "flight_pitch_deg"),
            (c.flight_roll_deg, "flight_roll_deg"),
            (c.focal_length_mm, "focal_length_mm"),
            (c.focal_length_35mm, "focal_length_35mm"),
        ] {
            close(got.unwrap(), num(k), 1e-9, k);
        }
        // The camera database turns 8.8 mm on a 13.2 mm sensor into the renderer's focal.
        let focal = read_json("flight.json")["camera"]["focal_px"]
            .as_f64()
            .unwrap();
        close(c.focal_length_px.unwrap(), focal, 1e-9, "focal px");
        assert_eq!(c.intrinsics_source, Some(IntrinsicsSource::CameraDatabase));
        assert_eq!(c.attitude_source.as_deref(), Some("xmp-drone-dji"));
    }
}

#[test]
fn the_committed_command_regenerates_the_fixture_byte_for_byte() {
    // The command in fixtures/README.md:
    // besikta simulate --assets fixtures/registers/helsinki.osm.pbf --out fixtures/sim
    //   --seed 1 --photos 16 --width 1600 --altitude 20 --overlap 65 --defects 15
    let out = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        register: dir().join("../registers/helsinki.osm.pbf"),
        out_dir: out.path().to_path_buf(),
        seed: 1,
        photos: 16,
        width_px: 1600,
        altitude_m: 20.0,
        overlap_pct: 65.0,
        defects: 15,
        ..Default::default()
    };
    let sim = besikta_sim::simulate(&cfg).unwrap();
    // 15 asked; the flight has room for 13 with the required gaps.
    assert_eq!(sim.defects.len(), 13);
    let mut names: Vec<String> = sim.photos.iter().map(|p| p.file.clone()).collect();
    names.push("truth.geojson".into());
    for name in &names {
        let a = std::fs::read(out.path().join(name)).unwrap();
        let b = std::fs::read(dir().join(name)).unwrap();
        assert!(a == b, "{name} differs from the committed fixture");
    }
    // flight.json names the register by file name only, so it is comparable too.
    let a: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("flight.json")).unwrap()).unwrap();
    assert!(
        a == read_json("flight.json"),
        "flight.json differs from the committed fixture"
    );
    // Every class and both asset kinds are in the truth.
    let truth = read_json("truth.geojson");
    let classes: std::collections::BTreeSet<&str> = truth["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes.into_iter().collect::<Vec<_>>(),
        ["crack", "pothole", "roof_damage"]
    );
}

#[test]
fn every_simulated_camera_is_in_ingests_database_with_the_same_sensor() {
    for cam in besikta_sim::camera::CAMERAS {
        let s = besikta_ingest::sensor_for(cam.model, cam.native_width)
            .unwrap_or_else(|| panic!("{} is not in ingest's camera database", cam.model));
        assert_eq!(s.width_mm, cam.sensor_width_mm, "{}", cam.model);
        assert_eq!(s.height_mm, cam.sensor_height_mm, "{}", cam.model);
        assert_eq!(
            s.native_px,
            [cam.native_width, cam.native_height],
            "{}",
            cam.model
        );
    }
}
