//! `besikta simulate` as a user runs it: a noisy flight over the Helsinki register, read
//! back by `besikta scan --format json` with exactly the values written, and
//! `besikta simulate --evaluate` scoring a truth file against itself.

use serde_json::Value;

mod common;
use common::*;

/// `besikta simulate --assets <the Helsinki register fixture> --out <out> <extra>`.
fn simulate_over_helsinki(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let register = fixtures().join("registers/helsinki.osm.pbf");
    let mut args = vec![
        "simulate",
        "--assets",
        register.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    besikta(&args)
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
}

#[test]
fn scan_reads_back_what_simulate_wrote() {
    let out = tempfile::tempdir().unwrap();
    let o = simulate_over_helsinki(
        out.path(),
        &[
            "--seed",
            "5",
            "--photos",
            "4",
            "--width",
            "480",
            "--defects",
            "4",
            "--gps-noise",
            "2",
            "--yaw-noise",
            "3",
            "--camera",
            "FC330",
            "--altitude",
            "35",
        ],
    );
    assert!(
        o.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("4 photos"), "{stdout}");

    let flight: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("flight.json")).unwrap()).unwrap();
    let truth: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("truth.geojson")).unwrap()).unwrap();
    assert_eq!(
        truth["features"].as_array().unwrap().len(),
        flight["defects_planted"].as_u64().unwrap() as usize
    );

    let o = besikta(&["scan", "--format", "json", out.path().to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "scan: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let scan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let captures = scan["captures"].as_array().unwrap();
    let photos = flight["photos"].as_array().unwrap();
    assert_eq!(captures.len(), photos.len());
    for p in photos {
        let name = p["file"].as_str().unwrap();
        let c = captures
            .iter()
            .find(|c| c["file"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in the scan"));
        let w = &p["written"];
        for k in ["make", "model", "taken_at", "width", "height"] {
            assert_eq!(c[k], w[k], "{name} {k}");
        }
        for (k, tol) in [
            ("latitude", 1e-12),
            ("longitude", 1e-12),
            ("gps_altitude_m", 1e-9),
            ("absolute_altitude_m", 1e-9),
            ("relative_altitude_m", 1e-9),
            ("gimbal_yaw_deg", 1e-9),
            ("gimbal_pitch_deg", 1e-9),
            ("gimbal_roll_deg", 1e-9),
            ("flight_yaw_deg", 1e-9),
            ("flight_pitch_deg", 1e-9),
            ("flight_roll_deg", 1e-9),
            ("focal_length_mm", 1e-9),
            ("focal_length_35mm", 1e-9),
        ] {
            close(
                c[k].as_f64().unwrap(),
                w[k].as_f64().unwrap(),
                tol,
                &format!("{name} {k}"),
            );
        }
        // ingest's camera database gives the focal length the photo was rendered with.
        close(
            c["focal_length_px"].as_f64().unwrap(),
            flight["camera"]["focal_px"].as_f64().unwrap(),
            1e-9,
            "focal px",
        );
        // The noise is in the metadata: the written position is not the true one.
        let moved = (w["latitude"].as_f64().unwrap() - p["true_lat"].as_f64().unwrap()).abs()
            + (w["longitude"].as_f64().unwrap() - p["true_lon"].as_f64().unwrap()).abs();
        assert!(moved > 1e-7, "{name} carries no GPS noise");
    }
}

#[test]
fn evaluate_scores_the_fixture_truth_against_itself() {
    let truth = fixtures().join("sim/truth.geojson");
    let o = besikta(&[
        "simulate",
        "--evaluate",
        truth.to_str().unwrap(),
        truth.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["truth_count"], 13);
    assert_eq!(m["recall"], 1.0);
    assert_eq!(m["precision"], 1.0);
    assert_eq!(m["duplicates"], 0);
    assert_eq!(m["asset_id_accuracy"], 1.0);
    assert!(m["median_err_m"].as_f64().unwrap() < 0.01, "{m}");
    // Per class: every planted defect found by its own copy, nothing false.
    let rows: Vec<(String, u64, u64, u64, u64)> = m["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let n = |k: &str| c[k].as_u64().unwrap();
            (
                c["class"].as_str().unwrap().to_string(),
                n("truth_count"),
                n("matched"),
                n("findings_on_a_defect"),
                n("duplicates"),
            )
        })
        .collect();
    let row = |c: &str, n: u64| (c.to_string(), n, n, n, 0);
    assert_eq!(
        rows,
        vec![row("crack", 6), row("pothole", 3), row("roof_damage", 4)]
    );
    // The same table as text on standard error, the pooled row last.
    let table = String::from_utf8_lossy(&o.stderr);
    let last: Vec<&str> = table.lines().last().unwrap().split_whitespace().collect();
    assert_eq!(
        last,
        ["all", "1.000", "(13/13)", "1.000", "(13/13)", "0", "0", "0.00"],
        "{table}"
    );
}

#[test]
fn a_flight_over_no_assets_says_it_planted_nothing_and_exits_1() {
    let out = tempfile::tempdir().unwrap();
    // 3 km north-east of the register's extent: no road or roof in view.
    let o = simulate_over_helsinki(
        out.path(),
        &[
            "--center",
            "60.19,24.99",
            "--photos",
            "2",
            "--width",
            "320",
            "--defects",
            "5",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("warning: planted 0 of 5 defects")
            && stderr.contains("60.19,24.99")
            && stderr.contains("helsinki.osm.pbf")
            && stderr.contains("--center"),
        "{stderr}"
    );
}
