//! Every ring we write is valid RFC 7946 *as written*, after rounding to 7 decimals: at
//! least 4 positions, closed, no repeated positions, a non-zero area, exteriors counter-
//! clockwise. Checked by GDAL (GEOS validity) and geo (winding) reading the files back;
//! outlines that rounding would leave degenerate are dropped and counted as `sliver`.

use besikta_core::AssetKind;
use besikta_report::export::{ccw_closed, rfc7946_ring, write_all};
use besikta_report::{build_report, EvidenceRules, Observation, ReportConfig, WorkFrame};
use gdal::vector::LayerAccess;
use geo::Winding;
use serde_json::Value;

/// Kluuvi, Helsinki.
const AT: [f64; 2] = [24.9475, 60.1699];

fn obs(class: &str, ring: Vec<[f64; 2]>) -> Observation {
    Observation {
        photo: "/data/flights/1/DJI_0001.JPG".into(),
        class: class.into(),
        asset_kind: AssetKind::Road,
        confidence: 0.9,
        pixel_polygon: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]],
        pixel_bbox: [0.0, 0.0, 10.0, 10.0],
        ground_polygon: ring,
        length_px: None,
        gsd_cm: 1.0,
        view_quality: 0.9,
        position_uncertainty_m: 0.5,
        pose_sigma_m: None,
        sides_grey: None,
        model: None,
    }
}

/// Offsets in units of 1e-7 degrees (about 1 cm) from `at`, as a closed ring.
fn ring(at: [f64; 2], units: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut r: Vec<[f64; 2]> = units
        .iter()
        .map(|u| [at[0] + u[0] * 1e-7, at[1] + u[1] * 1e-7])
        .collect();
    r.push(r[0]);
    r
}

fn twice_signed_area(r: &[[f64; 2]]) -> f64 {
    r.windows(2)
        .map(|w| {
            (w[0][0] - r[0][0]) * (w[1][1] - r[0][1]) - (w[1][0] - r[0][0]) * (w[0][1] - r[0][1])
        })
        .sum()
}

#[test]
fn rounding_first_decides_what_is_written() {
    // Counter-clockwise as computed, clockwise once rounded to 1e-7: B rises to 1, C sinks to 1.
    let flips = ring(AT, &[[0.0, 0.0], [300.0, 0.55], [600.0, 1.4]]);
    assert!(twice_signed_area(&flips) > 0.0);
    // Oriented, then rounded (what was written before): clockwise in the file.
    let round = |p: &[f64; 2]| [(p[0] * 1e7).round() / 1e7, (p[1] * 1e7).round() / 1e7];
    let before: Vec<[f64; 2]> = ccw_closed(&flips).iter().map(round).collect();
    assert!(twice_signed_area(&before) < 0.0);
    // Rounded, then oriented: counter-clockwise as written.
    let written = rfc7946_ring(&flips, true).unwrap();
    assert!(twice_signed_area(&written) > 0.0, "{written:?}");
    assert_eq!(written.iter().map(round).collect::<Vec<_>>(), written);

    // A 50 cm square with a vertex 0.1 cm from its first: the two round to one position.
    let square = ring(
        AT,
        &[
            [0.0, 0.0],
            [0.1, 0.0],
            [50.0, 0.0],
            [50.0, 50.0],
            [0.0, 50.0],
        ],
    );
    let written = rfc7946_ring(&square, true).unwrap();
    assert_eq!(written.len(), 5, "{written:?}");
    assert!(written.windows(2).all(|w| w[0] != w[1]));
    assert!(twice_signed_area(&written) > 0.0);
    // Given clockwise, written counter-clockwise; as a hole, clockwise.
    let mut cw = square.clone();
    cw.reverse();
    assert_eq!(rfc7946_ring(&cw, true).unwrap(), written);
    assert!(twice_signed_area(&rfc7946_ring(&square, false).unwrap()) < 0.0);
    // Open rings are closed; fewer than 3 distinct positions or no area are slivers.
    assert_eq!(rfc7946_ring(&square[..5], true).unwrap(), written);
    assert_eq!(
        rfc7946_ring(&ring(AT, &[[0.0, 0.0], [50.0, 0.0]]), true),
        None
    );
    let line = ring(AT, &[[0.0, 0.0], [50.0, 0.0], [100.0, 0.0]]);
    assert_eq!(rfc7946_ring(&line, true), None);
    assert_eq!(rfc7946_ring(&[[f64::NAN, 60.0]; 4], true), None);

    // A bowtie (an outline that crosses itself) and a ring with a spike back along an edge
    // are written as their convex hulls: simple, valid for GEOS.
    let bowtie = ring(AT, &[[0.0, 0.0], [50.0, 50.0], [50.0, 0.0], [0.0, 50.0]]);
    let spike = ring(
        AT,
        &[
            [0.0, 0.0],
            [50.0, 0.0],
            [80.0, 0.0],
            [50.0, 0.0],
            [50.0, 50.0],
            [0.0, 50.0],
        ],
    );
    for crossed in [bowtie, spike] {
        let written = rfc7946_ring(&crossed, true).unwrap();
        let wkt: Vec<String> = written
            .iter()
            .map(|p| format!("{} {}", p[0], p[1]))
            .collect();
        let g = gdal::vector::Geometry::from_wkt(&format!("POLYGON(({}))", wkt.join(","))).unwrap();
        assert!(g.is_valid(), "{written:?}");
        assert!(twice_signed_area(&written) > 0.0);
    }
}

#[test]
fn written_findings_read_back_valid_and_slivers_are_counted() {
    let dx = 2e-4; // about 11 m east-west between defects: never merged
    let at = |i: f64| [AT[0] + i * dx, AT[1]];
    let observations = vec![
        // A 40 cm pothole, clockwise as a careless detector might give it.
        obs("pothole", {
            let mut r = ring(
                at(0.0),
                &[[0.0, 0.0], [40.0, 0.0], [40.0, 40.0], [0.0, 40.0]],
            );
            r.reverse();
            r
        }),
        // A 30 cm patch with near-duplicate vertices.
        obs(
            "pothole",
            ring(
                at(1.0),
                &[
                    [0.0, 0.0],
                    [0.2, 0.1],
                    [30.0, 0.0],
                    [30.0, 30.0],
                    [29.9, 30.2],
                    [0.0, 30.0],
                ],
            ),
        ),
        // A crack traced one pixel wide that rounding collapses (a sliver), and one that
        // rounding turns clockwise.
        obs(
            "crack",
            ring(at(2.0), &[[0.0, 0.0], [80.0, 0.3], [160.0, 0.1]]),
        ),
        obs(
            "crack",
            ring(at(3.0), &[[0.0, 0.0], [300.0, 0.55], [600.0, 1.4]]),
        ),
        // Moss whose simplified outline crosses itself.
        obs(
            "moss",
            ring(
                at(4.0),
                &[[0.0, 0.0], [60.0, 60.0], [60.0, 0.0], [0.0, 60.0]],
            ),
        ),
    ];
    let frame = WorkFrame::utm_for(AT[0], AT[1]).unwrap();
    let cfg = ReportConfig {
        evidence: EvidenceRules::keep_all(),
        assets_only: false,
        ..ReportConfig::default()
    };
    let report = build_report(observations, &[], &frame, &cfg).unwrap();
    assert_eq!(report.findings.len(), 4, "{:?}", report.findings);
    assert_eq!(
        report.dropped.get("sliver"),
        Some(&1),
        "{:?}",
        report.dropped
    );

    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &report, "EPSG:4326").unwrap();

    // As text: what any reader sees.
    let text = std::fs::read_to_string(dir.path().join("findings.geojson")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let features = json["features"].as_array().unwrap();
    assert_eq!(features.len(), 4);
    for f in features {
        let rings = f["geometry"]["coordinates"].as_array().unwrap();
        let exterior: Vec<[f64; 2]> = rings[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
            .collect();
        assert!(exterior.len() >= 4);
        assert_eq!(exterior.first(), exterior.last());
        assert!(exterior.windows(2).all(|w| w[0] != w[1]), "{exterior:?}");
        let ls: geo::LineString<f64> = exterior.iter().map(|p| (p[0], p[1])).collect();
        assert!(
            ls.is_ccw(),
            "geo reads the exterior counter-clockwise: {exterior:?}"
        );
        for p in &exterior {
            let written = |v: f64| (v * 1e7).round() / 1e7;
            assert_eq!(*p, [written(p[0]), written(p[1])], "7 decimals");
        }
    }

    // GDAL (GEOS) on the GeoJSON and on the GeoPackage: valid polygons, same count.
    for name in ["findings.geojson", "findings.gpkg"] {
        let ds = gdal::Dataset::open(dir.path().join(name)).unwrap();
        let mut layer = ds.layer(0).unwrap();
        let mut n = 0;
        for feature in layer.features() {
            let g = feature.geometry().unwrap();
            assert!(g.is_valid(), "{name}: {}", g.wkt().unwrap());
            assert!(g.area() > 0.0);
            n += 1;
        }
        assert_eq!(n, 4, "{name}");
    }
}
