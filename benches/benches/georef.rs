//! Criterion benchmarks of the georef stage: pixel -> ground, ground -> pixel, footprint
//! and GSD for DJI_0018 (read by ingest) on the take-off plane and on a DEM in UTM 15N,
//! nadir and 45 degrees oblique.

use besikta_core::Capture;
use besikta_georef::{
    CrsTransform, Dem, DemGrid, FootprintOptions, Ground, GroundPoint, PhotoGeometry,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;

fn capture() -> Capture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/brighton/DJI_0018.JPG");
    besikta_ingest::read_capture(&path).expect("the fixture photo reads")
}

/// A 1 m DEM in UTM 15N, 2 km square around the photo: a tilted plane at the take-off
/// elevation with a 6 m hill, held in memory like a GeoTIFF read with `Dem::open`.
fn dem(capture: &Capture) -> Dem {
    let crs = "EPSG:32615";
    let to = CrsTransform::from_wgs84(crs).expect("PROJ knows UTM 15N");
    let [x0, y0] = to
        .apply(capture.longitude.unwrap(), capture.latitude.unwrap())
        .expect("Brighton is in UTM 15N");
    let base = capture.absolute_altitude_m.unwrap() - capture.relative_altitude_m.unwrap();
    let (n, half) = (2000usize, 1000.0);
    let mut heights_m = Vec::with_capacity(n * n);
    for j in 0..n {
        for i in 0..n {
            let (dx, dy) = (i as f64 + 0.5 - half, half - j as f64 - 0.5);
            let hill = 6.0 * (-(dx * dx + dy * dy) / (2.0 * 30.0 * 30.0)).exp();
            heights_m.push(base + 0.01 * dx + 0.005 * dy + hill);
        }
    }
    Dem::from_grid(
        "bench-dem",
        DemGrid {
            crs: crs.into(),
            geo_transform: [x0 - half, 1.0, 0.0, y0 + half, 0.0, -1.0],
            width: n,
            height: n,
            heights_m,
        },
    )
    .expect("a valid grid")
}

/// 64 pixels spread over the frame, so no single ray flatters the figures.
fn pixels(c: &Capture) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    for j in 0..8 {
        for i in 0..8 {
            out.push([
                (i as f64 + 0.5) / 8.0 * c.width as f64,
                (j as f64 + 0.5) / 8.0 * c.height as f64,
            ]);
        }
    }
    out
}

fn bench_case(c: &mut Criterion, name: &str, capture: &Capture, ground: &Ground) {
    let g = PhotoGeometry::new(capture, ground).expect("the photo has a geometry");
    let px = pixels(capture);
    let points: Vec<GroundPoint> = px
        .iter()
        .map(|&p| g.pixel_to_ground(p).expect("every pixel sees the ground"))
        .collect();
    let mut group = c.benchmark_group(format!("georef_{name}"));
    group.throughput(Throughput::Elements(px.len() as u64));
    group.bench_function("pixel_to_ground_x64", |b| {
        b.iter(|| {
            for &p in &px {
                black_box(g.pixel_to_ground(black_box(p)).unwrap());
            }
        })
    });
    group.bench_function("ground_to_pixel_x64", |b| {
        b.iter(|| {
            for p in &points {
                black_box(g.ground_to_pixel(p.lat, p.lon, p.height_m).unwrap());
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("footprint_16_per_edge", |b| {
        b.iter(|| {
            g.footprint(black_box(&FootprintOptions::default()))
                .unwrap()
        })
    });
    group.bench_function("gsd_cm_center", |b| b.iter(|| g.gsd_cm_center().unwrap()));
    group.bench_function("photo_geometry_new", |b| {
        b.iter(|| PhotoGeometry::new(black_box(capture), ground).unwrap())
    });
    group.finish();
}

fn georef_benches(c: &mut Criterion) {
    let nadir = capture();
    // Distortion exercises the iterative undistortion, whatever ingest found in the photo.
    let mut distorted = nadir.clone();
    distorted.distortion = Some(besikta_core::BrownDistortion {
        k1: -0.128,
        k2: 0.106,
        p1: 0.0011,
        p2: -0.0006,
        k3: -0.031,
    });
    let mut oblique = nadir.clone();
    oblique.gimbal_pitch_deg = Some(-45.0);
    let plane = Ground::TakeOffPlane;
    let dem = Ground::Dem(dem(&nadir));
    bench_case(c, "plane_nadir", &nadir, &plane);
    bench_case(c, "plane_nadir_distorted", &distorted, &plane);
    bench_case(c, "plane_oblique45", &oblique, &plane);
    bench_case(c, "dem_nadir", &nadir, &dem);
    bench_case(c, "dem_oblique45", &oblique, &dem);
}

criterion_group!(benches, georef_benches);
criterion_main!(benches);
