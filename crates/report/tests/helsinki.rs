//! Matching, chainage, merging and exports checked on the real Helsinki OpenStreetMap register.

use besikta_core::AssetKind;
use besikta_report::export::{findings_geojson, workorders_csv, workorders_csv_grouped, write_all};
use besikta_report::quantity::{asset_conditions_from_matches, work_orders};
use besikta_report::register::{frame_for, Register, RegisterSource};
use besikta_report::ConditionRules;
use besikta_report::{build_report, Observation, ReportConfig, WorkFrame};
use std::path::PathBuf;
use std::process::Command;

fn helsinki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/registers/helsinki.osm.pbf")
}

fn load() -> (WorkFrame, Register) {
    let src = RegisterSource::new(helsinki());
    let frame = frame_for(std::slice::from_ref(&src)).unwrap().unwrap();
    let reg = Register::load(&src, &frame).unwrap();
    (frame, reg)
}

/// Haversine distance in metres: an independent, hand-checkable yardstick.
fn haversine(a: [f64; 2], b: [f64; 2]) -> f64 {
    let r = 6_371_008.8;
    let (la1, la2) = (a[1].to_radians(), b[1].to_radians());
    let dla = la2 - la1;
    let dlo = (b[0] - a[0]).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

/// A small square outline (side `s` metres) around a lon/lat point.
fn square(c: [f64; 2], s: f64) -> Vec<[f64; 2]> {
    let dlat = s / 2.0 / 111_132.0;
    let dlon = s / 2.0 / (111_320.0 * c[1].to_radians().cos());
    vec![
        [c[0] - dlon, c[1] - dlat],
        [c[0] + dlon, c[1] - dlat],
        [c[0] + dlon, c[1] + dlat],
        [c[0] - dlon, c[1] + dlat],
        [c[0] - dlon, c[1] - dlat],
    ]
}

/// These tests check matching on defects seen once: keep every finding whatever its
/// support (the evidence rules are tested in `tests/merge.rs`).
fn one_view_cfg() -> ReportConfig {
    ReportConfig {
        evidence: besikta_report::EvidenceRules::keep_all(),
        ..ReportConfig::default()
    }
}

fn obs(photo: &str, class: &str, kind: AssetKind, c: [f64; 2]) -> Observation {
    Observation {
        photo: photo.into(),
        class: class.into(),
        asset_kind: kind,
        confidence: 0.8,
        pixel_polygon: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]],
        pixel_bbox: [0.0, 0.0, 10.0, 10.0],
        ground_polygon: square(c, 0.4),
        length_px: Some(50.0),
        gsd_cm: 2.0,
        view_quality: 0.9,
        position_uncertainty_m: 0.5,
        pose_sigma_m: None,
        sides_grey: None,
        model: None,
    }
}

// Aleksanterinkatu, way 26427722, as OpenStreetMap digitised it (first three vertices).
const V1: [f64; 2] = [24.9510198, 60.1690282];
const V2: [f64; 2] = [24.9513244, 60.1690229];
const V3: [f64; 2] = [24.9519902, 60.1690404];

#[test]
fn register_reads_roads_and_buildings_in_a_metric_frame() {
    let (frame, reg) = load();
    // The register is WGS 84, so the work frame is UTM zone 35N.
    assert_eq!(frame.name, "EPSG:32635");
    assert_eq!(reg.crs, "EPSG:4326");
    let roads = reg
        .assets
        .iter()
        .filter(|a| a.kind == AssetKind::Road)
        .count();
    let roofs = reg
        .assets
        .iter()
        .filter(|a| a.kind == AssetKind::Roof)
        .count();
    // The data README says about 2,650 highway ways and 500 buildings; ogrinfo agrees.
    assert!((2500..2800).contains(&roads), "{roads} roads");
    assert!((400..700).contains(&roofs), "{roofs} buildings");
    let a = reg.asset("way/26427722").expect("Aleksanterinkatu segment");
    assert_eq!(a.name.as_deref(), Some("Aleksanterinkatu"));
    assert_eq!(a.width_m, 6.0, "unclassified road default width");
}

#[test]
fn road_defect_gets_chainage_along_aleksanterinkatu() {
    let (frame, reg) = load();
    // Halfway along the second segment, 1 m north of the centreline.
    let mid = [(V2[0] + V3[0]) / 2.0, (V2[1] + V3[1]) / 2.0];
    let p = [mid[0], mid[1] + 1.0 / 111_132.0];
    let expected = haversine(V1, V2) + haversine(V2, mid);
    let o = obs("a.jpg", "crack", AssetKind::Road, p);
    let report = build_report(vec![o], &[reg], &frame, &one_view_cfg()).unwrap();
    let f = &report.findings[0];
    let m = f.asset.as_ref().expect("matched to a road");
    assert_eq!(m.asset_id, "way/26427722");
    assert_eq!(m.asset_name.as_deref(), Some("Aleksanterinkatu"));
    let ch = m.chainage_m.unwrap();
    // UTM scale error here is under 0.05 %; allow 0.2 m.
    assert!((ch - expected).abs() < 0.2, "chainage {ch} vs {expected}");
    // The road runs west to east; north is to its left.
    let off = m.offset_m.unwrap();
    assert!((off - 1.0).abs() < 0.1, "offset {off}");
    assert!(report.work_orders[0]
        .location
        .starts_with("Aleksanterinkatu, "));
}

#[test]
fn roof_defect_goes_to_the_building_that_contains_it_and_far_ones_stay_unmatched() {
    let (frame, reg) = load();
    let inside = obs("a.jpg", "roof_damage", AssetKind::Roof, [24.9528, 60.1720]);
    // Out in the harbour basin south of the extract: nothing registered there.
    let nowhere = obs("b.jpg", "crack", AssetKind::Road, [24.9600, 60.1600]);
    let report = build_report(vec![inside, nowhere], &[reg], &frame, &one_view_cfg()).unwrap();
    // The crack is on no road: dropped and counted; the roof defect is kept.
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.dropped.get("off_road_surface"), Some(&1));
    let roof = report
        .findings
        .iter()
        .find(|f| f.class == "roof_damage")
        .unwrap();
    let m = roof.asset.as_ref().unwrap();
    assert_eq!(m.asset_id, "relation/6066");
    assert_eq!(m.asset_name.as_deref(), Some("Kansallisarkisto"));
    assert_eq!(m.distance_m, 0.0);
    // Without the on-asset rule, it stays as an unmatched finding.
    let cfg = ReportConfig {
        assets_only: false,
        ..one_view_cfg()
    };
    let report = build_report(vec![nowhere_again()], &[load().1], &frame, &cfg).unwrap();
    let lost = report.findings.iter().find(|f| f.class == "crack").unwrap();
    assert!(lost.asset.is_none());
    let wo = report
        .work_orders
        .iter()
        .find(|w| w.class == "crack")
        .unwrap();
    assert!(wo.location.contains("not on any registered asset"));
}

fn nowhere_again() -> Observation {
    obs("b.jpg", "crack", AssetKind::Road, [24.9600, 60.1600])
}

#[test]
fn one_defect_seen_in_three_photos_is_one_finding() {
    let (frame, reg) = load();
    let mid = [(V2[0] + V3[0]) / 2.0, (V2[1] + V3[1]) / 2.0];
    let shift = |m: f64| [mid[0] + m / 55_400.0, mid[1]];
    let mut observations = vec![
        obs("p1.jpg", "crack", AssetKind::Road, shift(0.0)),
        obs("p2.jpg", "crack", AssetKind::Road, shift(0.6)),
        obs("p3.jpg", "crack", AssetKind::Road, shift(-0.5)),
        // Same place, other class: a different defect.
        obs("p1.jpg", "pothole", AssetKind::Road, shift(0.0)),
        // Same class, 15 m away: a different defect.
        obs("p2.jpg", "crack", AssetKind::Road, shift(15.0)),
    ];
    observations[1].confidence = 0.95;
    observations[1].view_quality = 1.0;
    let report = build_report(observations, &[reg], &frame, &one_view_cfg()).unwrap();
    assert_eq!(report.findings.len(), 3);
    let merged = report
        .findings
        .iter()
        .find(|f| f.observations.len() == 3)
        .expect("three views merged");
    assert_eq!(merged.best_photo(), "p2.jpg");
    // Noisy-OR of the three views (0.8, 0.95, 0.8), all three photos supporting it.
    assert_eq!((merged.support, merged.views), (3, 3));
    assert!(
        (merged.confidence - 0.998).abs() < 1e-6,
        "{}",
        merged.confidence
    );
    // 50 px skeleton at 2 cm/px.
    assert!((merged.length_m.unwrap() - 1.0).abs() < 1e-9);
    let cracks = report
        .work_orders
        .iter()
        .find(|w| w.class == "crack")
        .unwrap();
    assert_eq!(cracks.count, 2);
    let cond = &report.conditions[0];
    assert!(cond.score > 0.0 && cond.score < 100.0, "{cond:?}");
}

/// The service rebuilds work orders from findings it stored as JSON, without the register:
/// they must be the report's own, condition scores included.
#[test]
fn work_orders_rebuilt_from_stored_findings_are_the_reports() {
    let (frame, reg) = load();
    let mid = [(V2[0] + V3[0]) / 2.0, (V2[1] + V3[1]) / 2.0];
    let shift = |m: f64| [mid[0] + m / 55_400.0, mid[1]];
    let observations = vec![
        obs("p1.jpg", "crack", AssetKind::Road, shift(0.0)),
        obs("p1.jpg", "pothole", AssetKind::Road, shift(0.0)),
        obs("p2.jpg", "crack", AssetKind::Road, shift(15.0)),
        nowhere_again(),
    ];
    let report = build_report(observations, &[reg], &frame, &one_view_cfg()).unwrap();
    assert!(report.findings.iter().any(|f| f.asset.is_some()));
    assert!(!report.conditions.is_empty());
    let stored = serde_json::to_string(&report.findings).unwrap();
    let findings: Vec<besikta_report::Finding> = serde_json::from_str(&stored).unwrap();
    assert_eq!(findings, report.findings, "a finding survives its JSON");
    let conditions = asset_conditions_from_matches(&findings, &ConditionRules::default());
    let scores = |c: &[besikta_report::quantity::AssetCondition]| {
        c.iter()
            .map(|c| (c.asset_id.clone(), c.score, c.asset_area_m2))
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&conditions), scores(&report.conditions));
    let orders = work_orders(&findings, &conditions);
    let csv = workorders_csv(&orders);
    assert_eq!(csv, workorders_csv(&report.work_orders));
    let grouped = workorders_csv_grouped("flight_id", &[("7".into(), orders)]);
    let mut lines = csv.lines();
    let mut grouped_lines = grouped.lines();
    assert_eq!(
        grouped_lines.next().unwrap(),
        format!("flight_id,{}", lines.next().unwrap())
    );
    for (g, l) in grouped_lines.zip(lines) {
        assert_eq!(g, format!("7,{l}"));
    }
}

#[test]
fn exports_are_read_back_by_gdal_with_the_right_crs_and_counts() {
    let (frame, reg) = load();
    let mid = [(V2[0] + V3[0]) / 2.0, (V2[1] + V3[1]) / 2.0];
    let observations = vec![
        obs("p1.jpg", "crack", AssetKind::Road, mid),
        obs("p1.jpg", "roof_damage", AssetKind::Roof, [24.9528, 60.1720]),
    ];
    let report = build_report(observations, &[reg], &frame, &one_view_cfg()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &report, "EPSG:3067").unwrap();

    let info = |file: &str, layer: &str| {
        let out = Command::new("ogrinfo")
            .args(["-so", "-al"])
            .arg(dir.path().join(file))
            .output()
            .expect("ogrinfo (gdal-bin) is installed by scripts/setup");
        assert!(out.status.success(), "ogrinfo failed on {file}");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains(&format!("Layer name: {layer}")), "{text}");
        text
    };
    let gpkg = info("findings.gpkg", "findings");
    assert!(gpkg.contains("Feature Count: 2"), "{gpkg}");
    assert!(gpkg.contains("ETRS89 / TM35FIN(E,N)"), "{gpkg}");
    assert!(gpkg.contains("chainage_m: Real"), "{gpkg}");
    let gj = info("findings.geojson", "findings");
    assert!(gj.contains("Feature Count: 2"));
    assert!(gj.contains("WGS 84"));
    let wo = info("workorders.geojson", "workorders");
    assert!(wo.contains("Feature Count: 2"));

    // RFC 7946: no crs member, closed counter-clockwise exteriors in lon/lat.
    let v = findings_geojson(&report.findings);
    assert!(v.get("crs").is_none());
    for f in v["features"].as_array().unwrap() {
        let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
        assert_eq!(ring.first(), ring.last());
        let pts: Vec<[f64; 2]> = ring
            .iter()
            .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
            .collect();
        let a2: f64 = pts
            .windows(2)
            .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
            .sum();
        assert!(a2 > 0.0, "exterior ring must be counter-clockwise");
        assert!(pts
            .iter()
            .all(|p| (24.0..26.0).contains(&p[0]) && (60.0..61.0).contains(&p[1])));
    }
    let csv = std::fs::read_to_string(dir.path().join("workorders.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("Aleksanterinkatu"));
    assert!(csv.contains("Kansallisarkisto"));
}

#[test]
fn register_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let frame = WorkFrame::utm_for(24.95, 60.17).unwrap();
    let mut src = RegisterSource::new(helsinki());
    src.layer = Some("roads".into());
    let err = Register::load(&src, &frame).unwrap_err().to_string();
    assert!(
        err.contains("no layer named 'roads'") && err.contains("lines"),
        "{err}"
    );

    // A shapefile without a .prj has no CRS.
    let shp = dir.path().join("nocrs.shp");
    let status = Command::new("ogr2ogr")
        .args(["-f", "ESRI Shapefile", "-a_srs", "EPSG:4326"])
        .arg(&shp)
        .arg(helsinki())
        .args(["lines", "-where", "osm_id = '26427722'"])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(dir.path().join("nocrs.prj")).unwrap();
    let err = Register::load(&RegisterSource::new(&shp), &frame)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nocrs.shp") && err.contains("no coordinate reference system"),
        "{err}"
    );

    let err = Register::load(
        &RegisterSource::new(dir.path().join("missing.gpkg")),
        &frame,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing.gpkg"), "{err}");
}

#[test]
fn a_register_in_tm35fin_gives_the_same_match_as_the_osm_original() {
    let dir = tempfile::tempdir().unwrap();
    let gpkg = dir.path().join("roads3067.gpkg");
    let status = Command::new("ogr2ogr")
        .args(["-f", "GPKG", "-t_srs", "EPSG:3067", "-nln", "roads"])
        .arg(&gpkg)
        .arg(helsinki())
        .args(["lines", "-where", "highway IS NOT NULL"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut src = RegisterSource::new(&gpkg);
    src.kind = Some(AssetKind::Road);
    src.class_field = Some("highway".into());
    let frame = frame_for(std::slice::from_ref(&src)).unwrap().unwrap();
    assert_eq!(
        frame.name, "EPSG:3067",
        "a projected register is its own frame"
    );
    let reg = Register::load(&src, &frame).unwrap();
    let mid = [(V2[0] + V3[0]) / 2.0, (V2[1] + V3[1]) / 2.0];
    let report = build_report(
        vec![obs("a.jpg", "crack", AssetKind::Road, mid)],
        &[reg],
        &frame,
        &one_view_cfg(),
    )
    .unwrap();
    let m = report.findings[0].asset.as_ref().unwrap();
    assert_eq!(
        m.asset_id, "26427722",
        "plain osm_id field of the converted file"
    );
    let expected = haversine(V1, V2) + haversine(V2, mid);
    assert!((m.chainage_m.unwrap() - expected).abs() < 0.2);
}
