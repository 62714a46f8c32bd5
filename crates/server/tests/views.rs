//! The views of a finding on the Brighton fixture flight (three overlapping photos,
//! processed through the API): every photo whose footprint holds the finding is listed,
//! also those where the model did not detect it, with the finding's outline projected into
//! each; in a photo that detected it the projection lands on the model's own box; the crop
//! endpoint renders a non-detecting view. Runs on PostgreSQL too
//! (BESIKTA_TEST_DATABASE=postgres).

mod common;

use axum::http::StatusCode;
use common::{brighton_photos, env};
use serde_json::{json, Value};

fn corners(v: &Value) -> [f64; 4] {
    let a = v.as_array().unwrap();
    [0, 1, 2, 3].map(|i| a[i].as_f64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_photo_that_saw_a_finding_is_a_view_with_its_outline() {
    let e = env();
    let flight = e.create_flight("a", "views").await;
    let crew = e.token("a", "crew");
    let photos = brighton_photos(&["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]);
    assert_eq!(
        e.multipart(flight, crew, &photos).await.status,
        StatusCode::OK
    );
    e.process_to_done(flight, crew).await;

    let viewer = e.token("a", "viewer");
    let fc = e.findings_geojson(flight, viewer).await;
    let features = fc["features"].as_array().unwrap();
    assert!(!features.is_empty());
    let (mut detections, mut detections_photos, mut views, mut undetected) = (0, 0, 0, Vec::new());
    let mut on_others: Vec<f64> = Vec::new();
    let mut on_best: Vec<f64> = Vec::new();
    for f in features {
        let id = f["id"].as_i64().unwrap();
        let r = e.get(&format!("/api/v1/findings/{id}/views"), viewer).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        let list = v["views"].as_array().unwrap();
        let observations = f["properties"]["observations"].as_array().unwrap();
        assert_eq!(v["detections"], json!(observations.len()));
        // Every detecting photo is a view, first, in the order of the observations (a
        // photo holding several pieces of the finding once).
        let mut detecting: Vec<(&Value, usize)> = Vec::new();
        for (i, o) in observations.iter().enumerate() {
            if !detecting.iter().any(|(p, _)| *p == &o["photo"]) {
                detecting.push((&o["photo"], i));
            }
        }
        for (k, (photo, i)) in detecting.iter().enumerate() {
            assert_eq!(&&list[k]["photo"], photo, "{v}");
            assert_eq!(list[k]["detected"], json!(true));
            assert_eq!(list[k]["observation"], json!(i));
        }
        assert!(list[detecting.len()..]
            .iter()
            .all(|v| v["detected"] == json!(false)));
        detections += observations.len();
        detections_photos += detecting.len();
        views += list.len();
        for view in list {
            assert!(
                view["outline_px"].as_array().is_some_and(|o| o.len() >= 3),
                "{view}"
            );
            if view["detected"] == json!(true) {
                // The projected outline against the model's box(es) in the same photo. The
                // detections were made at the model's resolution (the test manifest's 68 mm
                // per pixel) and their ground outlines traced at it, so a round trip through
                // the same camera is exact to one model pixel: 68 mm / the photo's GSD in
                // photo pixels (4 px here).
                let (p, d) = (
                    corners(&view["bbox_px"]),
                    corners(&view["detected_bbox_px"]),
                );
                let o = &observations[view["observation"].as_u64().unwrap() as usize];
                let model_px = 68.0 / (o["gsd_cm"].as_f64().unwrap() * 10.0);
                let best = f["properties"]["best_photo"].as_str();
                if view["photo"].as_str() == best {
                    // The best view: the finding's outline is its detection (the hull of
                    // its pieces there), so the projected box is the model's box, up to how
                    // the two are drawn from the mask: the box spans whole mask pixels, the
                    // outline is traced along them and simplified, which differ by up to a
                    // model pixel per side; half a model pixel more is left for the polygon
                    // simplification.
                    let worst = (0..4).map(|k| (p[k] - d[k]).abs()).fold(0.0, f64::max);
                    on_best.push(worst);
                    assert!(
                        worst <= 1.5 * model_px,
                        "best view round trip off by {worst:.2} px (1.5 model pixels: {:.2} px): {view}",
                        1.5 * model_px
                    );
                } else {
                    // Another photo that detected it: the outline is the best photo's, which
                    // the merge joined with this photo's detection only within its pair
                    // tolerance (at most `max_pose_tolerance_m` + `extra_tolerance_m`), so
                    // the gap between the boxes on the ground stays within that.
                    let gap_px = (p[0] - d[2])
                        .max(d[0] - p[2])
                        .max(0.0)
                        .hypot((p[1] - d[3]).max(d[1] - p[3]).max(0.0));
                    let gap_m = gap_px * o["gsd_cm"].as_f64().unwrap() / 100.0;
                    let rules = besikta_report::ReportConfig::default();
                    let allowed = rules.merge.max_pose_tolerance_m + rules.extra_tolerance_m;
                    on_others.push(gap_m);
                    assert!(
                        gap_m <= allowed,
                        "the projected outline is {gap_m:.2} m from this photo's detection (merge tolerance at most {allowed} m): {view}"
                    );
                }
            } else {
                undetected.push((id, view.clone()));
            }
        }
    }
    let stats = |mut v: Vec<f64>, unit: &str| {
        v.sort_by(f64::total_cmp);
        format!(
            "{} views, median {:.2} {unit}, max {:.2} {unit}",
            v.len(),
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN)
        )
    };
    println!(
        "{} findings: {detections} detections, {views} views ({} without a detection); best views, projected box vs the model's (worst corner): {}; other detecting views, gap between the boxes on the ground: {}",
        features.len(),
        undetected.len(),
        stats(on_best.clone(), "px"),
        stats(on_others.clone(), "m"),
    );
    assert!(
        views > detections_photos,
        "the photos overlap, so some spot is seen without a detection"
    );
    assert!(views > detections, "more views than detections");

    // The crop of a view without a detection: a JPEG with the outline drawn in red.
    let (id, view) = &undetected[0];
    let url = view["crop_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("/api/v1/findings/{id}/photo.jpg?photo=")));
    let r = e.get(url, viewer).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let img = image::load_from_memory(&r.body).unwrap().to_rgb8();
    let red = img
        .pixels()
        .filter(|p| p[0] > 200 && p[1] < 80 && p[2] < 80)
        .count();
    assert!(red > 20, "the outline is drawn: {red} red pixels");
    // A photo that did not see it, and another organisation: 404.
    let r = e
        .get(
            &format!("/api/v1/findings/{id}/photo.jpg?photo=DJI_9999.JPG"),
            viewer,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = e
        .get(
            &format!("/api/v1/findings/{id}/views"),
            e.token("b", "viewer"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = e.get(&format!("/api/v1/findings/{id}/views"), crew).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Documented.
    let doc = e.get("/api/v1/openapi.json", viewer).await.json();
    let op = &doc["paths"]["/api/v1/findings/{id}/views"]["get"];
    assert!(
        op["summary"].as_str().is_some_and(|s| s.contains("photo")),
        "{op}"
    );
}
