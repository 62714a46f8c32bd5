//! `besikta export-training` and `besikta import-corrections` against a service data folder
//! holding the committed simulated flight (fixtures/sim) with its truth defects stored as
//! findings (outlines projected through georef with the true poses) and some reviewed.

mod common;

use besikta_core::finding::{Finding, Observation};
use besikta_core::{AssetKind, Capture, Review, ReviewState, Severity};
use besikta_georef::{Ground, PhotoGeometry};
use besikta_store::{FindingFilter, JobResult, NewFinding, PhotoAdded, Store};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sim's area defects (potholes, roof damage as `missing_tile`) as stored findings of
/// one flight, with one observation per photo the defect lies well inside.
fn sim_findings() -> Vec<Finding> {
    let dir = common::fixtures().join("sim");
    let meta = read_json(&dir.join("flight.json"));
    let truth = read_json(&dir.join("truth.geojson"));
    let height = meta["ground_elevation_m"].as_f64().unwrap();
    let ground = Ground::Plane { height_m: height };
    let mut findings = Vec::new();
    for f in truth["features"].as_array().unwrap() {
        if f["geometry"]["type"] != "Polygon" {
            continue;
        }
        let props = &f["properties"];
        let class = match props["class"].as_str().unwrap() {
            "roof_damage" => "missing_tile",
            c => c,
        };
        let ring: Vec<[f64; 2]> = f["geometry"]["coordinates"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| [c[0].as_f64().unwrap(), c[1].as_f64().unwrap()])
            .collect();
        let mut observations = Vec::new();
        for p in meta["photos"].as_array().unwrap() {
            let w = &p["written"];
            let capture = Capture {
                file: p["file"].as_str().unwrap().into(),
                width: w["width"].as_u64().unwrap() as u32,
                height: w["height"].as_u64().unwrap() as u32,
                latitude: p["true_lat"].as_f64(),
                longitude: p["true_lon"].as_f64(),
                absolute_altitude_m: w["absolute_altitude_m"].as_f64(),
                relative_altitude_m: w["relative_altitude_m"].as_f64(),
                gimbal_yaw_deg: p["true_yaw_deg"].as_f64(),
                gimbal_pitch_deg: Some(-90.0),
                gimbal_roll_deg: Some(0.0),
                focal_length_px: meta["camera"]["focal_px"].as_f64(),
                ..Default::default()
            };
            let geom = PhotoGeometry::new(&capture, &ground).unwrap();
            // The open ring in pixels, the closed ring on the ground, as the pipeline has them.
            let px: Vec<[f64; 2]> = ring[..ring.len() - 1]
                .iter()
                .map(|g| geom.ground_to_pixel(g[1], g[0], height).unwrap())
                .collect();
            let (xs, ys): (Vec<f64>, Vec<f64>) = px.iter().map(|p| (p[0], p[1])).unzip();
            let b = [
                xs.iter().copied().fold(f64::MAX, f64::min),
                ys.iter().copied().fold(f64::MAX, f64::min),
                xs.iter().copied().fold(f64::MIN, f64::max),
                ys.iter().copied().fold(f64::MIN, f64::max),
            ];
            if b[0] < 30.0
                || b[1] < 30.0
                || b[2] > capture.width as f64 - 30.0
                || b[3] > capture.height as f64 - 30.0
            {
                continue;
            }
            let centre = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
            observations.push(Observation {
                photo: capture.file.clone(),
                class: class.into(),
                asset_kind: AssetKind::Road,
                confidence: 0.9,
                pixel_polygon: px,
                pixel_bbox: b,
                ground_polygon: ring.clone(),
                length_px: None,
                gsd_cm: geom.gsd_cm_at(centre).unwrap(),
                view_quality: 1.0,
                position_uncertainty_m: 0.5,
                pose_sigma_m: None,
                sides_grey: None,
                model: None,
            });
        }
        let n = observations.len();
        let c = props["centre"].as_array().unwrap();
        findings.push(Finding {
            id: props["id"].as_str().unwrap().into(),
            class: class.into(),
            asset_kind: if class == "pothole" {
                AssetKind::Road
            } else {
                AssetKind::Roof
            },
            severity: Severity::Medium,
            confidence: 0.9,
            length_m: None,
            area_m2: props["area_m2"].as_f64().unwrap(),
            polygon: ring,
            centroid: [c[0].as_f64().unwrap(), c[1].as_f64().unwrap()],
            asset: None,
            observations,
            best: 0,
            views: n,
            support: n,
        });
    }
    findings
}

/// A data folder with one processed flight of organisation `city`; returns the store and
/// the flight id.
fn service(data: &Path) -> (Arc<dyn Store>, i64) {
    std::fs::create_dir_all(data).unwrap();
    let store = besikta_server::open_store(data, None).unwrap();
    let org = store.ensure_org("city", None).unwrap();
    let flight = store.create_flight(org.id, "sim").unwrap();
    let dir = format!("flights/{}/photos", flight.id);
    std::fs::create_dir_all(data.join(&dir)).unwrap();
    for e in std::fs::read_dir(common::fixtures().join("sim")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "JPG") {
            let bytes = std::fs::read(&p).unwrap();
            let name = p.file_name().unwrap().to_str().unwrap();
            let sha = format!(
                "{:064x}",
                bytes.len() as u128 * 1_000_003 + name.len() as u128
            );
            let PhotoAdded::New(row) = store
                .add_photo(flight.id, name, &sha, bytes.len() as u64, &dir)
                .unwrap()
            else {
                panic!("{name} is new")
            };
            std::fs::write(data.join(&row.path), bytes).unwrap();
        }
    }
    store.enqueue_job(org.id, flight.id).unwrap();
    let job = store.claim_job(60).unwrap().unwrap();
    let findings = sim_findings().into_iter().map(NewFinding::new).collect();
    store
        .complete_job(
            &job,
            &JobResult {
                output_dir: "results/sim".into(),
                findings,
                rejected: vec![],
            },
        )
        .unwrap();
    (store, flight.id)
}

fn reviews(store: &dyn Store, flight: i64) -> Vec<(String, Review)> {
    let org = store.ensure_org("city", None).unwrap();
    store
        .findings(
            org.id,
            &FindingFilter {
                flight_id: Some(flight),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.finding.id.clone(), r.review))
        .collect()
}

fn review(store: &dyn Store, flight: i64, id: &str, state: ReviewState) {
    let org = store.ensure_org("city", None).unwrap();
    let row = store
        .findings(
            org.id,
            &FindingFilter {
                flight_id: Some(flight),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .find(|r| r.finding.id == id)
        .unwrap();
    let r = Review {
        state,
        by: Some("test".into()),
        reason: (state == ReviewState::Rejected).then_some(besikta_core::RejectReason::NotADefect),
        ..Default::default()
    };
    store
        .set_review(org.id, row.id, &r, "planner")
        .unwrap()
        .unwrap();
}

#[test]
fn reviewed_findings_export_as_chips_and_corrections_come_back_as_reviews_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (store, flight) = service(&data);
    // Pothole D005 and roof D002 confirmed, pothole D011 and roof D004 rejected.
    for (id, s) in [
        ("D005", ReviewState::Confirmed),
        ("D002", ReviewState::Confirmed),
        ("D011", ReviewState::Rejected),
        ("D004", ReviewState::Rejected),
    ] {
        review(store.as_ref(), flight, id, s);
    }
    let models = common::fixtures().join("../models");
    let out = tmp.path().join("export");
    let flight_s = flight.to_string();
    let args = [
        "export-training",
        "--data",
        data.to_str().unwrap(),
        "--org",
        "city",
        "--flight",
        &flight_s,
        "--models",
        models.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let run = common::besikta(&args);
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success());
    let manifest = read_json(&out.join("manifest.json"));
    let chips = manifest["chips"].as_array().unwrap();
    let of = |model: &str, kind: &str| {
        chips
            .iter()
            .filter(|c| c["model"] == model && c["kind"] == kind)
            .collect::<Vec<_>>()
    };
    for model in ["pothole-det", "roof-damage"] {
        for kind in ["positive", "hard_negative", "background"] {
            assert!(!of(model, kind).is_empty(), "{model} has {kind} chips");
        }
    }
    assert!(chips.iter().all(|c| c["flight"] == flight_s.as_str()));
    assert!(of("roof-damage", "positive")
        .iter()
        .all(|c| c["finding_id"] == "D002"));
    assert!(of("pothole-det", "hard_negative")
        .iter()
        .all(|c| c["finding_id"] == "D011"));
    // Unreviewed findings gave no chips of their own.
    assert!(chips
        .iter()
        .all(|c| !["D007", "D009", "D013"].contains(&c["finding_id"].as_str().unwrap_or(""))));
    // Exporting into the same folder again is refused.
    let again = common::besikta(&args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // The roof chip with D002, redrawn 12 chip pixels to the right, as CVAT XML.
    let chip = of("roof-damage", "positive")
        .into_iter()
        .find(|c| c["annotations"].as_array().unwrap().len() == 1)
        .unwrap()
        .clone();
    let name = chip["file"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let polygon: Vec<[f64; 2]> = chip["annotations"][0]["polygon"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_f64().unwrap() + 12.0, p[1].as_f64().unwrap()])
        .collect();
    let points: Vec<String> = polygon
        .iter()
        .map(|p| format!("{:.2},{:.2}", p[0], p[1]))
        .collect();
    let xml = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="{name}" width="256" height="256">
    <polygon label="missing_tile" source="manual" occluded="0" points="{}" z_order="0">
      <attribute name="finding_id">D002</attribute>
    </polygon>
  </image>
</annotations>
"#,
        points.join(";")
    );
    let before = reviews(store.as_ref(), flight);
    let import = |text: &str, flight_arg: &str| {
        let f = tmp.path().join("corrections.xml");
        std::fs::write(&f, text).unwrap();
        common::besikta(&[
            "import-corrections",
            f.to_str().unwrap(),
            "--export",
            out.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--org",
            "city",
            "--flight",
            flight_arg,
        ])
    };
    // Bad files: refused with a message, and no review changes.
    for (text, flight_arg, expect) in [
        (
            xml.clone(),
            (flight + 1).to_string(),
            "this file is for another flight",
        ),
        (
            xml.replace(&name, "DJI_0001.JPG"),
            flight_s.clone(),
            "not chips of this training export",
        ),
        (
            xml[..xml.len() - 40].to_string(),
            flight_s.clone(),
            "broken XML",
        ),
        (
            xml.replace("label=\"missing_tile\"", "label=\"graffiti\""),
            flight_s.clone(),
            "is not a class of model roof-damage",
        ),
    ] {
        let run = import(&text, &flight_arg);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && err.contains(expect), "{err}");
        assert_eq!(
            reviews(store.as_ref(), flight),
            before,
            "a refused file changed nothing"
        );
    }
    // --dry-run tells and stores nothing.
    let f = tmp.path().join("corrections.xml");
    std::fs::write(&f, &xml).unwrap();
    let dry = common::besikta(&[
        "import-corrections",
        f.to_str().unwrap(),
        "--export",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--org",
        "city",
        "--dry-run",
    ]);
    assert!(dry.status.success());
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would store: flight"));
    assert_eq!(reviews(store.as_ref(), flight), before);

    // The good file: D002 becomes corrected, its outline moved 12 chip px = 12 / scale photo
    // px = that many times the GSD on the ground.
    let run = import(&xml, &flight_s);
    println!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success());
    let after = reviews(store.as_ref(), flight);
    let (_, r) = after.iter().find(|(id, _)| id == "D002").unwrap();
    assert_eq!(r.state, ReviewState::Corrected);
    assert_eq!(r.by.as_deref(), Some("annotation import"));
    assert_eq!(r.corrected_class, None);
    let corrected = r.corrected_polygon.clone().unwrap();
    let original = sim_findings()
        .into_iter()
        .find(|f| f.id == "D002")
        .unwrap()
        .polygon;
    let metres = |a: [f64; 2], b: [f64; 2]| {
        let dx = (a[0] - b[0]) * 111_320.0 * 60.17f64.to_radians().cos();
        let dy = (a[1] - b[1]) * 111_320.0;
        (dx * dx + dy * dy).sqrt()
    };
    let scale = chip["scale"][0].as_f64().unwrap();
    let gsd_m = chip["photo_gsd_cm"].as_f64().unwrap() / 100.0;
    let want = 12.0 / scale * gsd_m;
    for (a, b) in corrected.iter().zip(&original) {
        let d = metres(*a, *b);
        assert!((d - want).abs() < 0.02, "moved {d:.3} m, want {want:.3} m");
    }
    // Other findings kept their reviews.
    for ((id, a), (_, b)) in after.iter().zip(&before) {
        if id != "D002" {
            assert_eq!(a, b, "{id}");
        }
    }

    // Exported again, D002's chips carry the corrected outline: in the photo it is the
    // drawn one.
    let out2 = tmp.path().join("export2");
    let run = common::besikta(&[
        "export-training",
        "--data",
        data.to_str().unwrap(),
        "--flight",
        &flight_s,
        "--models",
        models.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    let m2 = read_json(&out2.join("manifest.json"));
    let to_photo = |c: &Value, p: &Value| {
        let w = &c["window_px"];
        [
            p[0].as_f64().unwrap() / c["scale"][0].as_f64().unwrap() + w[0].as_f64().unwrap(),
            p[1].as_f64().unwrap() / c["scale"][1].as_f64().unwrap() + w[1].as_f64().unwrap(),
        ]
    };
    let drawn: Vec<[f64; 2]> = polygon
        .iter()
        .map(|p| to_photo(&chip, &serde_json::json!(p)))
        .collect();
    let again = m2["chips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["model"] == "roof-damage" && c["finding_id"] == "D002" && c["photo"] == chip["photo"]
        })
        .unwrap();
    assert_eq!(again["review"], "corrected");
    let outline: Vec<[f64; 2]> = again["annotations"][0]["polygon"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| to_photo(again, p))
        .collect();
    assert_eq!(outline.len(), drawn.len());
    for (a, b) in outline.iter().zip(&drawn) {
        assert!(
            (a[0] - b[0]).abs() < 0.5 && (a[1] - b[1]).abs() < 0.5,
            "{a:?} vs {b:?}"
        );
    }
}
