//! The flight's orthomosaic on the web map: with `mosaic_gsd_cm` set, a job also writes
//! `mosaic.tif`, and `GET /api/v1/flights/{id}/mosaic/{z}/{x}/{y}.png` serves PNG tiles whose
//! pixels are GDAL's own `gdalwarp -r near` of that COG to the tile; 404 where the mosaic
//! has no ground and for another organisation's flight.

mod common;

use axum::http::StatusCode;
use besikta_server::Workers;
use common::{env_with, fixture};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The XYZ tile holding WGS 84 `lon`, `lat` at zoom `z`.
fn tile_of(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = (lon + 180.0) / 360.0 * n;
    let l = lat.to_radians();
    let y = (1.0 - (l.tan() + 1.0 / l.cos()).ln() / std::f64::consts::PI) / 2.0 * n;
    (x as u32, y as u32)
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

fn run(program: &str, args: &[&str]) {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed (GDAL's tools): {e}"));
    assert!(
        o.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `gdalwarp -r near` of `cog` to tile `z/x/y` from overview `level`, as RGBA (through
/// `gdal_translate` to PNG).
fn gdalwarp(
    cog: &Path,
    z: u8,
    x: u32,
    y: u32,
    level: Option<usize>,
    dir: &Path,
) -> image::RgbaImage {
    let b = besikta_align::tile_bounds(z, x, y);
    let ovr = level.map_or("NONE".to_string(), |l| l.to_string());
    let bounds: Vec<String> = b.iter().map(|v| format!("{v:.6}")).collect();
    let (tif, png) = (dir.join("warp.tif"), dir.join("warp.png"));
    let mut args = vec![
        "-q",
        "-overwrite",
        "-r",
        "near",
        "-et",
        "0",
        "-t_srs",
        "EPSG:3857",
        "-te",
    ];
    args.extend(bounds.iter().map(String::as_str));
    args.extend(["-ts", "256", "256", "-ovr", &ovr, "-of", "GTiff"]);
    args.extend([cog.to_str().unwrap(), tif.to_str().unwrap()]);
    run("gdalwarp", &args);
    run(
        "gdal_translate",
        &[
            "-q",
            "-of",
            "PNG",
            tif.to_str().unwrap(),
            png.to_str().unwrap(),
        ],
    );
    image::open(&png).unwrap().to_rgba8()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosaic_tiles_are_gdals_warp_of_the_flights_cog_for_its_organisation_only() {
    let e = env_with(|c| {
        c.mosaic_gsd_cm = Some(10.0);
        c.threads_per_job = 2;
    });
    let flight = e.create_flight("a", "mosaic").await;
    let crew = e.token("a", "crew").to_string();
    let viewer = e.token("a", "viewer").to_string();
    let photos: Vec<(&str, Vec<u8>)> = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]
        .iter()
        .map(|n| {
            (
                *n,
                std::fs::read(fixture(&format!("brighton/{n}"))).unwrap(),
            )
        })
        .collect();
    let r = e.multipart(flight, &crew, &photos).await;
    assert_eq!(r.status, StatusCode::OK);
    // Not processed yet: no mosaic.
    let info = e
        .get(&format!("/api/v1/flights/{flight}/mosaic"), &viewer)
        .await
        .json();
    assert_eq!(info["available"], json!(false), "{info}");
    let r = e
        .get(
            &format!("/api/v1/flights/{flight}/mosaic/19/0/0.png"),
            &viewer,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    assert_eq!(e.process(flight, &crew).await.status, StatusCode::ACCEPTED);
    let workers = Workers::start(&e.state);
    let f = e
        .wait_for_flight(flight, &crew, Duration::from_secs(900))
        .await;
    workers.stop();
    assert_eq!(f["state"], json!("done"), "{f}");
    let cog = find(e.dir.path(), "mosaic.tif").expect("the job wrote mosaic.tif");
    let info = e
        .get(&format!("/api/v1/flights/{flight}/mosaic"), &viewer)
        .await
        .json();
    assert_eq!(info["available"], json!(true), "{info}");
    assert_eq!(
        info["tiles"],
        json!(format!(
            "/api/v1/flights/{flight}/mosaic/{{z}}/{{x}}/{{y}}.png"
        ))
    );

    // A tile under the middle photo's camera.
    let fp = e
        .get(
            &format!("/api/v1/flights/{flight}/footprints.geojson"),
            &viewer,
        )
        .await
        .json();
    let p = &fp["features"][1]["properties"];
    let (lon, lat) = (
        p["camera_longitude"].as_f64().unwrap(),
        p["camera_latitude"].as_f64().unwrap(),
    );
    let z = 20;
    let (x, y) = tile_of(lon, lat, z);
    let uri = |x: u32, y: u32| format!("/api/v1/flights/{flight}/mosaic/{z}/{x}/{y}.png");
    let r = e.get(&uri(x, y), &viewer).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some("image/png"));
    let got = image::load_from_memory(&r.body).unwrap().to_rgba8();
    assert_eq!(got.dimensions(), (256, 256));
    let level = besikta_align::web_tile(&cog, z, x, y)
        .unwrap()
        .unwrap()
        .overview;
    let want = gdalwarp(&cog, z, x, y, level, e.dir.path());
    let (mut alpha_same, mut opaque, mut rgb_same) = (0, 0, 0);
    for (px, w) in got.pixels().zip(want.pixels()) {
        alpha_same += usize::from(px[3] == w[3]);
        if px[3] == 255 && w[3] == 255 {
            opaque += 1;
            rgb_same += usize::from((0..3).all(|b| px[b] == w[b]));
        }
    }
    eprintln!("alpha equal {alpha_same}/65536, RGB equal {rgb_same}/{opaque}, overview {level:?}");
    assert!(opaque > 6_000, "{opaque}");
    assert!(alpha_same >= 65_470, "{alpha_same}");
    assert!(
        rgb_same as f64 >= 0.999 * opaque as f64,
        "{rgb_same}/{opaque}"
    );

    // Outside the mosaic's ground: 404.
    let r = e.get(&uri(x + 40, y), &viewer).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Another organisation does not see the flight or its tiles.
    let other = e.token("b", "admin").to_string();
    let r = e.get(&uri(x, y), &other).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = e
        .get(&format!("/api/v1/flights/{flight}/mosaic"), &other)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Not a PNG tile address.
    let r = e
        .get(
            &format!("/api/v1/flights/{flight}/mosaic/{z}/{x}/{y}"),
            &viewer,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
