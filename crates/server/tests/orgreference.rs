//! An organisation's reference orthophoto (issue 12): an admin uploads a georeferenced
//! GeoTIFF in another CRS than the flight's (ETRS-TM35FIN, EPSG:3067), refusals (not a
//! TIFF, a TIFF without georeferencing) keep the reference in use, and the organisation's
//! jobs align their flights to it: every photo's pose comes from the reference and lands
//! on its true position, and the job's mosaic uses those poses. The flight and its true
//! ground are simulated at test time over the Helsinki register fixture (GPS noise 2 m,
//! compass 1 degree), so no orthophoto is committed.

mod common;

use axum::http::{Method, StatusCode};
use besikta_sim::{simulate, SimConfig, SimOutput};
use common::{env_with, fixture, Env};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A noisy simulated flight in `dir/photos` and its true ground as a GeoTIFF in
/// EPSG:3067 (`dir/reference.tif`, warped from the simulator's UTM orthophoto).
fn flight_and_reference(dir: &Path) -> (SimOutput, PathBuf) {
    let utm = dir.join("truth-utm.tif");
    let sim = simulate(&SimConfig {
        register: fixture("registers/helsinki.osm.pbf"),
        out_dir: dir.join("photos"),
        seed: 1207,
        photos: 12,
        width_px: 1200,
        altitude_m: 40.0,
        overlap_pct: 70.0,
        defects: 4,
        gps_noise_m: 2.0,
        yaw_noise_deg: 1.0,
        orthophoto: Some(utm.clone()),
        ..Default::default()
    })
    .expect("the simulation runs");
    let tm35 = dir.join("reference.tif");
    let out = Command::new("gdalwarp")
        .args([
            "-q",
            "-t_srs",
            "EPSG:3067",
            "-r",
            "bilinear",
            "-co",
            "COMPRESS=DEFLATE",
        ])
        .arg(&utm)
        .arg(&tm35)
        .output()
        .expect("gdalwarp (GDAL's tools) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (sim, tm35)
}

async fn put_reference(e: &Env, token: &str, name: &str, body: Vec<u8>) -> common::Reply {
    e.send(
        Method::PUT,
        &format!("/api/v1/org/reference?name={name}"),
        Some(token),
        &[("content-type", "image/tiff")],
        body,
    )
    .await
}

/// Metres east and north from `a` to `b` (WGS 84 lat, lon), locally flat.
fn offset_m(a: (f64, f64), b: (f64, f64)) -> [f64; 2] {
    let r = 6_371_000.0_f64;
    [
        (b.1 - a.1).to_radians() * r * a.0.to_radians().cos(),
        (b.0 - a.0).to_radians() * r,
    ]
}

fn rms(v: &[[f64; 2]]) -> f64 {
    (v.iter().map(|d| d[0] * d[0] + d[1] * d[1]).sum::<f64>() / v.len() as f64).sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_align_flights_to_the_organisations_reference_orthophoto() {
    let e = env_with(|c| {
        c.threads_per_job = 2;
        c.mosaic_gsd_cm = Some(20.0);
    });
    let scratch = tempfile::tempdir().unwrap();
    let (sim, reference) = flight_and_reference(scratch.path());
    let admin = e.token("a", "admin").to_string();
    let viewer = e.token("a", "viewer").to_string();

    // Described in the OpenAPI document.
    let doc = e.get("/api/v1/openapi.json", &viewer).await.json();
    for method in ["get", "put", "delete"] {
        assert!(
            doc["paths"]["/api/v1/org/reference"][method].is_object(),
            "{method} /api/v1/org/reference documented"
        );
    }

    // None yet.
    let r = e.get("/api/v1/org/reference", &viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"reference": null}));

    // Only admins upload.
    let good = std::fs::read(&reference).unwrap();
    let r = put_reference(&e, &viewer, "helsinki-2025.tif", good.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    let r = put_reference(&e, &admin, "helsinki-2025.tif", good.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let uploaded = r.json()["reference"].clone();
    assert_eq!(uploaded["name"], "helsinki-2025.tif");
    assert_eq!(uploaded["epsg"], 3067, "{uploaded}");
    assert!(
        uploaded["crs"].as_str().unwrap().contains("TM35FIN"),
        "{uploaded}"
    );
    let px = uploaded["pixel_size"][0].as_f64().unwrap();
    assert!((0.02..0.2).contains(&px), "{uploaded}");
    // The extent holds the flight's centre (60.1699 N, 24.9475 E).
    let b: Vec<f64> = uploaded["bounds_wgs84"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        b[0] < 24.9475 && 24.9475 < b[2] && b[1] < 60.1699 && 60.1699 < b[3],
        "{b:?}"
    );
    assert_eq!(uploaded["bytes"], good.len());

    // Refusals keep the reference in use.
    let r = put_reference(
        &e,
        &admin,
        "notes.tif",
        b"not an orthophoto at all".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
    assert!(r.text().contains("GeoTIFF"), "{}", r.text());
    // The same pixels as a baseline TIFF: GDAL writes no GeoTIFF tags into the file.
    let plain = scratch.path().join("scan.tif");
    let out = Command::new("gdal_translate")
        .args([
            "-q",
            "-of",
            "GTiff",
            "-co",
            "PROFILE=BASELINE",
            "-srcwin",
            "0",
            "0",
            "64",
            "64",
        ])
        .arg(&reference)
        .arg(&plain)
        .output()
        .expect("gdal_translate (GDAL's tools) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = std::fs::read(&plain).unwrap();
    let r = put_reference(&e, &admin, "scan.tif", plain).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let reason = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("scan.tif"), "{reason}");
    assert!(reason.contains("georeferencing"), "{reason}");
    assert!(reason.contains("the reference in use was kept"), "{reason}");
    assert!(
        !reason.contains(&e.dir.path().display().to_string()),
        "{reason}"
    );
    let now = e.get("/api/v1/org/reference", &viewer).await.json();
    assert_eq!(now["reference"], uploaded);
    // Another organisation has none.
    let other = e.get("/api/v1/org/reference", e.token("b", "viewer")).await;
    assert_eq!(other.json(), json!({"reference": null}));

    // A flight of the organisation is aligned to it.
    let flight = e.create_flight("a", "reference").await;
    let crew = e.token("a", "crew").to_string();
    let photos: Vec<(String, Vec<u8>)> = sim
        .photos
        .iter()
        .map(|p| {
            let bytes = std::fs::read(scratch.path().join("photos").join(&p.file)).unwrap();
            (p.file.clone(), bytes)
        })
        .collect();
    let files: Vec<(&str, Vec<u8>)> = photos
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let r = e.multipart(flight, &crew, &files).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    e.process_to_done(flight, &crew).await;

    let fp = e.flight_geojson(flight, "footprints", &viewer).await;
    let features = fp["features"].as_array().unwrap();
    assert_eq!(features.len(), sim.photos.len());
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for f in features {
        let p = &f["properties"];
        assert_eq!(p["pose_source"], "reference", "{p}");
        let file = p["file"].as_str().unwrap();
        let name = file.rsplit('/').next().unwrap();
        let truth = sim.photos.iter().find(|t| t.file == name).unwrap();
        let t = (truth.true_lat, truth.true_lon);
        before.push(offset_m(
            t,
            (truth.written.latitude, truth.written.longitude),
        ));
        after.push(offset_m(
            t,
            (
                p["camera_latitude"].as_f64().unwrap(),
                p["camera_longitude"].as_f64().unwrap(),
            ),
        ));
    }
    let (before, after) = (rms(&before), rms(&after));
    eprintln!("camera position error: metadata {before:.3} m RMS, aligned to the uploaded reference {after:.3} m RMS");
    assert!(before > 1.0, "{before}");
    assert!(after <= 0.3, "{after}");

    // summary.json says the reference was used, and the mosaic was made from those poses.
    let out = e.outputs(flight);
    assert_eq!(out.len(), 1, "{out:?}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out[0].join("summary.json")).unwrap()).unwrap();
    let note = summary["alignment"]["reference"]
        .as_str()
        .unwrap_or_default();
    assert!(note.contains("12 photos matched the reference"), "{note}");
    // By the uploaded file's name, never by a path in the server's folders.
    assert!(!note.contains('/'), "a server path in the note: {note}");
    let mosaic = out[0].join("mosaic.tif");
    assert!(mosaic.is_file());
    mosaic_follows_the_footprints(&mosaic, features, scratch.path());

    // Audited; deleted; a second delete finds none.
    let audit = e.get("/api/v1/audit", &admin).await.json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["action"].as_str())
        .collect();
    assert!(actions.contains(&"org.reference.uploaded"), "{actions:?}");
    let r = e.delete("/api/v1/org/reference", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        e.get("/api/v1/org/reference", &viewer).await.json(),
        json!({"reference": null})
    );
    // Its files are gone from the storage (the data folder here).
    let left: Vec<PathBuf> = std::fs::read_dir(e.dir.path().join("orgs"))
        .unwrap()
        .flatten()
        .map(|d| d.path().join("reference"))
        .filter(|p| p.exists() && std::fs::read_dir(p).unwrap().next().is_some())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let r = e.delete("/api/v1/org/reference", &admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let audit = e.get("/api/v1/audit", &admin).await.json();
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["action"] == "org.reference.deleted"));
}

/// The job's mosaic was made with the poses of `footprints` (the reference-aligned ones),
/// not from the photos aligned again: the reference moved the flight as a whole by more
/// than a metre (which aligning the flight to itself, its mean held at the GPS, cannot),
/// and the mosaic's extent is the footprints' in its own CRS to two of its pixels.
fn mosaic_follows_the_footprints(mosaic: &Path, footprints: &[Value], scratch: &Path) {
    let n = footprints.len() as f64;
    let mean = |k: usize| {
        footprints
            .iter()
            .map(|f| f["properties"]["pose_correction_m"][k].as_f64().unwrap())
            .sum::<f64>()
            / n
    };
    let shift = mean(0).hypot(mean(1));
    assert!(
        shift > 1.0,
        "the reference moved the flight by {shift} m only"
    );
    let out = Command::new("gdalinfo")
        .arg("-json")
        .arg(mosaic)
        .output()
        .expect("gdalinfo (GDAL's tools) is installed");
    assert!(out.status.success());
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let gt: Vec<f64> = info["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let (w, h) = (
        info["size"][0].as_f64().unwrap(),
        info["size"][1].as_f64().unwrap(),
    );
    let extent = [gt[0], gt[3] + h * gt[5], gt[0] + w * gt[1], gt[3]];
    let wkt = scratch.join("mosaic.wkt");
    std::fs::write(&wkt, info["coordinateSystem"]["wkt"].as_str().unwrap()).unwrap();
    let mut points = String::new();
    for f in footprints {
        for p in f["geometry"]["coordinates"][0].as_array().unwrap() {
            points.push_str(&format!("{} {}\n", p[0], p[1]));
        }
    }
    let mut child = Command::new("gdaltransform")
        .args(["-s_srs", "EPSG:4326", "-t_srs"])
        .arg(&wkt)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gdaltransform (GDAL's tools) is installed");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(points.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        b = [
            b[0].min(v[0]),
            b[1].min(v[1]),
            b[2].max(v[0]),
            b[3].max(v[1]),
        ];
    }
    let worst = (0..4).map(|k| (b[k] - extent[k]).abs()).fold(0.0, f64::max);
    eprintln!(
        "mosaic extent against the reference-aligned footprints: worst edge {worst:.3} m (pixel {:.2} m); the reference moved the flight {shift:.2} m",
        gt[1]
    );
    assert!(worst <= 2.0 * gt[1], "{extent:?} against {b:?}");
}
