//! Criterion benchmarks of the report stage: matching findings against a 100,000-asset register.

use besikta_core::AssetKind;
use besikta_report::register::{Register, RegisterSource};
use besikta_report::{ReportConfig, WorkFrame};
use criterion::{criterion_group, criterion_main, Criterion};
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType};
use gdal::DriverManager;

/// A grid of 100,000 short road segments (20 m long, 50 m apart) in ETRS-TM35FIN, written as a
/// GeoPackage through GDAL so loading goes through the real reader.
fn synthetic_register(path: &std::path::Path) {
    let driver = DriverManager::get_driver_by_name("GPKG").unwrap();
    let mut ds = driver.create_vector_only(path).unwrap();
    let srs = SpatialRef::from_epsg(3067).unwrap();
    {
        let layer = ds
            .create_layer(LayerOptions {
                name: "roads",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbLineString,
                options: None,
            })
            .unwrap();
        layer
            .create_defn_fields(&[("id", OGRFieldType::OFTString)])
            .unwrap();
    }
    let tx = ds.start_transaction().unwrap();
    let layer = tx.layer(0).unwrap();
    for i in 0..100_000u32 {
        let (x, y) = (
            380_000.0 + (i % 316) as f64 * 50.0,
            6_670_000.0 + (i / 316) as f64 * 50.0,
        );
        let wkt = format!("LINESTRING({x} {y},{} {y})", x + 20.0);
        let g = gdal::vector::Geometry::from_wkt(&wkt).unwrap();
        let mut f = gdal::vector::Feature::new(layer.defn()).unwrap();
        f.set_geometry(g).unwrap();
        f.set_field_string(0, &format!("r{i}")).unwrap();
        f.create(&layer).unwrap();
    }
    tx.commit().unwrap();
}

fn bench_matching(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roads.gpkg");
    synthetic_register(&path);
    let frame = WorkFrame::new(&SpatialRef::from_epsg(3067).unwrap()).unwrap();
    let mut src = RegisterSource::new(&path);
    src.kind = Some(AssetKind::Road);
    let start = std::time::Instant::now();
    let reg = Register::load(&src, &frame).unwrap();
    eprintln!(
        "loaded {} assets through GDAL and indexed them in {:.2} s",
        reg.assets.len(),
        start.elapsed().as_secs_f64()
    );
    let cfg = ReportConfig::default();
    let square = |x: f64, y: f64| {
        geo::Polygon::new(
            geo::LineString::from(vec![
                (x, y),
                (x + 0.3, y),
                (x + 0.3, y + 0.3),
                (x, y + 0.3),
                (x, y),
            ]),
            vec![],
        )
    };
    let points: Vec<[f64; 2]> = (0..1000u32)
        .map(|i| {
            let k = (i * 7919) % 100_000;
            [
                380_005.0 + (k % 316) as f64 * 50.0,
                6_670_001.0 + (k / 316) as f64 * 50.0,
            ]
        })
        .collect();
    c.bench_function("match 1000 road findings against 100k assets", |b| {
        b.iter(|| {
            let mut matched = 0;
            for p in &points {
                let poly = square(p[0], p[1]);
                if reg
                    .match_finding(AssetKind::Road, *p, &poly, 1.5, &cfg)
                    .is_some()
                {
                    matched += 1;
                }
            }
            assert_eq!(matched, points.len());
        })
    });
}

criterion_group!(benches, bench_matching);
criterion_main!(benches);
