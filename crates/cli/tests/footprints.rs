//! `besikta footprints` on the Brighton fixture photos, checked against exiftool (camera
//! positions), GDAL's ogrinfo (the file's CRS and feature count) and gdaltransform.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::*;

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ring(feature: &Value) -> Vec<[f64; 2]> {
    assert_eq!(feature["geometry"]["type"], "Polygon");
    let rings = feature["geometry"]["coordinates"].as_array().unwrap();
    assert_eq!(rings.len(), 1, "one exterior ring, no holes");
    rings[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
        .collect()
}

/// Twice the signed area (positive = counter-clockwise).
/// A level Float32 GeoTIFF at the take-off elevation (158.51 m) in UTM 15N, `size` x
/// `size` cells over `ullr` (upper-left x, y, lower-right x, y).
fn level_dem(path: &Path, size: &str, ullr: [&str; 4]) {
    let mut args = vec![
        "-q",
        "-of",
        "GTiff",
        "-ot",
        "Float32",
        "-outsize",
        size,
        size,
        "-bands",
        "1",
        "-burn",
        "158.51",
        "-a_srs",
        "EPSG:32615",
        "-a_ullr",
    ];
    args.extend(ullr);
    args.push(path.to_str().unwrap());
    tool("gdal_create", &args);
}

/// The features of two footprint files, pairwise.
fn feature_pairs<'v>(a: &'v Value, b: &'v Value) -> impl Iterator<Item = (&'v Value, &'v Value)> {
    a["features"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["features"].as_array().unwrap())
}

/// The two footprints' corners agree within 2e-8 degrees.
fn assert_rings_agree(fa: &Value, fb: &Value) {
    for (p, q) in ring(fa).iter().zip(&ring(fb)) {
        assert!(
            (p[0] - q[0]).abs() < 2e-8 && (p[1] - q[1]).abs() < 2e-8,
            "{p:?} vs {q:?}"
        );
    }
}

fn signed_area2(ring: &[[f64; 2]]) -> f64 {
    ring.windows(2)
        .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
        .sum()
}

fn run_ok(args: &[&str]) -> Output {
    let out = besikta(args);
    assert!(
        out.status.success(),
        "besikta {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn wgs84_footprints_follow_rfc_7946_and_match_exiftool() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("footprints.geojson");
    run_ok(&[
        "footprints",
        brighton().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let doc = read_json(&out);
    assert_eq!(doc["type"], "FeatureCollection");
    assert!(doc.get("crs").is_none(), "RFC 7946 has no crs member");
    let features = doc["features"].as_array().unwrap();
    assert_eq!(features.len(), 3);
    for f in features {
        let props = &f["properties"];
        let file = props["file"].as_str().unwrap();
        let exif: Value = serde_json::from_str(&tool("exiftool", &["-n", "-json", file])).unwrap();
        let exif = &exif[0];
        // exiftool prints 15 significant digits.
        for (ours, theirs) in [
            ("camera_latitude", "GPSLatitude"),
            ("camera_longitude", "GPSLongitude"),
        ] {
            let (a, b) = (
                props[ours].as_f64().unwrap(),
                exif[theirs].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-12, "{file}: {ours} {a} vs exiftool {b}");
        }
        let rel: f64 = exif["RelativeAltitude"].as_str().unwrap().parse().unwrap();
        assert_eq!(props["relative_altitude_m"].as_f64(), Some(rel), "{file}");
        let gsd = props["gsd_cm"].as_f64().unwrap();
        assert!((1.65..1.75).contains(&gsd), "{file}: GSD {gsd} cm");

        let r = ring(f);
        assert_eq!(r.first(), r.last(), "{file}: closed ring");
        assert!(signed_area2(&r) > 0.0, "{file}: counter-clockwise");
        // About 68 m x 38 m: area in square metres on a local scale.
        let lat0 = props["camera_latitude"].as_f64().unwrap().to_radians();
        let (mx, my) = (111_320.0 * lat0.cos(), 111_132.0);
        let scaled: Vec<[f64; 2]> = r.iter().map(|p| [p[0] * mx, p[1] * my]).collect();
        let area = signed_area2(&scaled) / 2.0;
        assert!((2500.0..2750.0).contains(&area), "{file}: {area} m2");
        // The camera is inside its own (nadir) footprint.
        let cam = [
            props["camera_longitude"].as_f64().unwrap(),
            props["camera_latitude"].as_f64().unwrap(),
        ];
        let (xs, ys): (Vec<f64>, Vec<f64>) = r.iter().map(|p| (p[0], p[1])).unzip();
        assert!(xs.iter().cloned().fold(f64::INFINITY, f64::min) < cam[0]);
        assert!(xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max) > cam[0]);
        assert!(ys.iter().cloned().fold(f64::INFINITY, f64::min) < cam[1]);
        assert!(ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max) > cam[1]);
    }
    let info = tool("ogrinfo", &["-al", "-so", out.to_str().unwrap()]);
    assert!(info.contains("Feature Count: 3"), "{info}");
    assert!(info.contains("gsd_cm: Real"), "{info}");
}

#[test]
fn projected_footprints_name_their_crs_for_gdal_and_agree_with_gdaltransform() {
    let dir = tempfile::tempdir().unwrap();
    let wgs84 = dir.path().join("wgs84.geojson");
    let utm = dir.path().join("utm.geojson");
    let photos = brighton();
    run_ok(&[
        "footprints",
        photos.to_str().unwrap(),
        "-o",
        wgs84.to_str().unwrap(),
    ]);
    run_ok(&[
        "footprints",
        photos.to_str().unwrap(),
        "-o",
        utm.to_str().unwrap(),
        "--crs",
        "EPSG:32615",
    ]);
    let doc = read_json(&utm);
    assert_eq!(
        doc["crs"]["properties"]["name"],
        "urn:ogc:def:crs:EPSG::32615"
    );
    let info = tool("ogrinfo", &["-al", "-so", utm.to_str().unwrap()]);
    assert!(info.contains("Feature Count: 3"), "{info}");
    assert!(info.contains("UTM zone 15N"), "{info}");
    assert!(info.contains("ID[\"EPSG\",32615]]"), "{info}");

    // Every vertex is where gdaltransform puts the WGS 84 vertex (1e-8 degrees and
    // 1 mm rounding in the two files).
    let plain = read_json(&wgs84);
    for (a, b) in plain["features"]
        .as_array()
        .unwrap()
        .iter()
        .zip(doc["features"].as_array().unwrap())
    {
        assert_eq!(a["properties"]["file"], b["properties"]["file"]);
        let (ra, rb) = (ring(a), ring(b));
        assert_eq!(ra.len(), rb.len());
        let input: String = ra.iter().map(|p| format!("{} {}\n", p[0], p[1])).collect();
        let mut child = Command::new("gdaltransform")
            .args(["-s_srs", "EPSG:4326", "-t_srs", "EPSG:32615", "-output_xy"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gdaltransform is installed");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let expected: Vec<[f64; 2]> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Vec<f64> = l.split_whitespace().map(|s| s.parse().unwrap()).collect();
                [v[0], v[1]]
            })
            .collect();
        assert_eq!(expected.len(), rb.len());
        // Both rings start at the same vertex unless the projected one was reversed.
        for (e, p) in expected.iter().zip(&rb) {
            assert!(
                (e[0] - p[0]).abs() < 0.005 && (e[1] - p[1]).abs() < 0.005,
                "{e:?} vs {p:?}"
            );
        }
    }
}

#[test]
fn photos_without_usable_metadata_are_reported_and_skipped_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("DJI_0018.JPG");
    std::fs::copy(brighton().join("DJI_0018.JPG"), &good).unwrap();
    let no_gps = dir.path().join("no_gps.JPG");
    std::fs::copy(brighton().join("DJI_0019.JPG"), &no_gps).unwrap();
    tool(
        "exiftool",
        &[
            "-q",
            "-overwrite_original",
            "-gps:all=",
            "-xmp:all=",
            no_gps.to_str().unwrap(),
        ],
    );
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, b"this is not a photo").unwrap();
    let out_path = dir.path().join("out.geojson");
    let out = besikta(&[
        "footprints",
        dir.path().to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no_gps.JPG"), "{stderr}");
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    let doc = read_json(&out_path);
    let features = doc["features"].as_array().unwrap();
    assert_eq!(features.len(), 1, "{doc}");
    assert!(features[0]["properties"]["file"]
        .as_str()
        .unwrap()
        .ends_with("DJI_0018.JPG"));
}

#[test]
fn a_flat_dem_in_utm_gives_the_same_footprints_as_the_take_off_plane() {
    let dir = tempfile::tempdir().unwrap();
    // Level at the take-off elevation (AbsoluteAltitude - RelativeAltitude = 158.51 m),
    // 350 m x 350 m of UTM 15N around the photos, 1 m cells.
    let dem = dir.path().join("flat.tif");
    level_dem(&dem, "350", ["576500", "5188350", "576850", "5188000"]);
    let plane = dir.path().join("plane.geojson");
    let with_dem = dir.path().join("dem.geojson");
    let photos = brighton();
    run_ok(&[
        "footprints",
        photos.to_str().unwrap(),
        "-o",
        plane.to_str().unwrap(),
    ]);
    run_ok(&[
        "footprints",
        photos.to_str().unwrap(),
        "-o",
        with_dem.to_str().unwrap(),
        "--dem",
        dem.to_str().unwrap(),
    ]);
    let (a, b) = (read_json(&plane), read_json(&with_dem));
    for (fa, fb) in feature_pairs(&a, &b) {
        // Float32 stores 158.51 as 158.509995: a few micrometres of height, and the
        // coordinates are rounded to 1e-8 degrees.
        assert_rings_agree(fa, fb);
        let (ga, gb) = (&fa["properties"]["gsd_cm"], &fb["properties"]["gsd_cm"]);
        assert_eq!(ga, gb);
    }

    // Camera over the take-off point (here: the DEM is level, so anywhere on it) gives
    // the same footprints as the absolute altitude when that altitude is right.
    let take_off = dir.path().join("take_off.geojson");
    run_ok(&[
        "footprints",
        photos.to_str().unwrap(),
        "-o",
        take_off.to_str().unwrap(),
        "--dem",
        dem.to_str().unwrap(),
        "--take-off",
        "46.8425,-91.9946",
    ]);
    let c = read_json(&take_off);
    for (fb, fc) in feature_pairs(&b, &c) {
        assert_rings_agree(fb, fc);
    }

    // A DEM that does not reach the photos is reported per photo, not a silent hole.
    let far = dir.path().join("far.tif");
    level_dem(&far, "10", ["500000", "5100010", "500010", "5100000"]);
    let out = besikta(&[
        "footprints",
        photos.to_str().unwrap(),
        "-o",
        dir.path().join("none.geojson").to_str().unwrap(),
        "--dem",
        far.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DEM"), "{stderr}");
}
