//! Reviews through the API: who may review (role x organisation), what a review must say
//! (422 naming the accepted words), the `review` filter and properties, reviews kept
//! through re-processing, and work-order exports that follow the review.

mod common;

use axum::http::StatusCode;
use besikta_core::Severity;
use common::road_finding as finding;
use common::{env, env_with, repo_root, sha256_hex, Env, Reply, ROLES};
use serde_json::{json, Value};

async fn put_review(e: &Env, id: i64, token: Option<&str>, body: &str) -> Reply {
    e.put_json(&format!("/api/v1/findings/{id}/review"), token, body)
        .await
}

/// The flight's findings as served, by the pipeline's id (`F1`).
async fn served(e: &Env, query: &str) -> Vec<(String, Value)> {
    let r = e
        .get(
            &format!("/api/v1/findings.geojson{query}"),
            e.token("a", "viewer"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["properties"]["flight_finding_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                f["properties"].clone(),
            )
        })
        .collect()
}

async fn ids_of(e: &Env, query: &str) -> Vec<i64> {
    let r = e
        .get(
            &format!("/api/v1/findings.geojson{query}"),
            e.token("a", "viewer"),
        )
        .await;
    r.json()["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect()
}

/// A flight of Espoo (`a`) with four cracks on road R1; Vantaa (`b`) has none. The
/// service's models are the shipped ones (crack, pothole, roof classes).
async fn two_flights() -> (Env, i64, Vec<i64>) {
    let e = env_with(|c| c.models_dir = repo_root().join("models"));
    let flight = e.create_flight("a", "north").await;
    e.store_findings(
        "Espoo",
        flight,
        vec![
            finding("F1", "crack", Severity::Medium, "R1", 24.0, 60.0),
            finding("F2", "crack", Severity::Low, "R1", 24.001, 60.0),
            finding("F3", "crack", Severity::Medium, "R1", 24.002, 60.0),
            finding("F4", "crack", Severity::High, "R1", 24.003, 60.0),
        ],
    );
    let ids = ids_of(&e, "").await;
    assert_eq!(ids.len(), 4);
    (e, flight, ids)
}

#[tokio::test]
async fn only_planners_and_admins_of_the_finding_s_organisation_review() {
    let (e, _flight, ids) = two_flights().await;
    let f = ids[0];
    let confirm = r#"{"state": "confirmed"}"#;
    assert_eq!(
        put_review(&e, f, None, confirm).await.status,
        StatusCode::UNAUTHORIZED
    );
    for role in ROLES {
        let own = put_review(&e, f, Some(e.token("a", role)), confirm).await;
        let other = put_review(&e, f, Some(e.token("b", role)), confirm).await;
        let (want_own, want_other) = match role {
            "planner" | "admin" => (StatusCode::OK, StatusCode::NOT_FOUND),
            _ => (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
        };
        assert_eq!(own.status, want_own, "{role} of Espoo: {}", own.text());
        assert_eq!(
            other.status,
            want_other,
            "{role} of Vantaa on Espoo's finding: {}",
            other.text()
        );
    }
    assert_eq!(
        put_review(&e, 999_999, Some(e.token("a", "planner")), confirm)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Vantaa's failed attempts changed nothing: the admin's confirmation stands.
    let props = &served(&e, "").await[0].1;
    assert_eq!(props["review"], "confirmed");
    let admin = e.token("a", "admin");
    assert_eq!(props["reviewed_by"], sha256_hex(admin.as_bytes())[..12]);
    // The classes a correction may give, for the review page.
    let r = e.get("/api/v1/classes", e.token("a", "viewer")).await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<String> = r.json()["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["crack", "debris", "missing_tile", "moss", "pothole"]
    );
    assert_eq!(
        e.get("/api/v1/classes", e.token("a", "crew")).await.status,
        StatusCode::FORBIDDEN
    );
    // /me tells the pages who may review.
    for (role, may) in [
        ("crew", false),
        ("viewer", false),
        ("planner", true),
        ("admin", true),
    ] {
        let me = e.get("/api/v1/me", e.token("a", role)).await.json();
        assert_eq!(me["rights"]["review"], may, "{role}");
    }
}

#[tokio::test]
async fn a_review_must_hold_together_and_unknown_words_name_the_accepted_ones() {
    let (e, _flight, ids) = two_flights().await;
    let f = ids[0];
    let planner = e.token("a", "planner");
    let cases: &[(&str, StatusCode, &str)] = &[
        (
            r#"{"state": "Confirmed"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "expected one of: unreviewed, confirmed, rejected, corrected",
        ),
        (
            r#"{"state": "rejected"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a rejection needs a reason; expected one of: not-a-defect, wrong-class, duplicate, out-of-scope",
        ),
        (
            r#"{"state": "rejected", "reason": "ugly"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown reject reason \"ugly\"; expected one of: not-a-defect, wrong-class, duplicate, out-of-scope",
        ),
        (
            r#"{"state": "confirmed", "reason": "duplicate"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason is only for state rejected",
        ),
        (
            r#"{"state": "corrected"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a correction needs a class other than \"crack\", a severity other than medium",
        ),
        (
            r#"{"state": "corrected", "class": "crack", "severity": "medium"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a correction needs",
        ),
        (
            r#"{"state": "corrected", "severity": "urgent"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown severity \"urgent\"; expected one of: low, medium, high",
        ),
        (
            r#"{"state": "confirmed", "class": "pothole"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "class, severity and outline are for state corrected",
        ),
        (
            r#"{"state": "confirmed", "colour": "red"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown member \"colour\"; a review has: state, reason, comment, class, severity, outline",
        ),
        (r#"{}"#, StatusCode::UNPROCESSABLE_ENTITY, "state is missing"),
        (
            r#"{"state": "corrected", "class": "tree"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown class \"tree\"; the service's models know: crack, debris, missing_tile, moss, pothole",
        ),
        ("{not json", StatusCode::BAD_REQUEST, "expected a JSON body"),
    ];
    for (body, status, message) in cases {
        let r = put_review(&e, f, Some(planner), body).await;
        assert_eq!(r.status, *status, "{body}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(message), "{body}: {error}");
    }
    // None of those stored anything.
    assert_eq!(served(&e, "").await[0].1["review"], "unreviewed");
    // The real ones, with what they store.
    let r = put_review(
        &e,
        ids[1],
        Some(planner),
        r#"{"state": "rejected", "reason": "not-a-defect", "comment": "a shadow"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["review_reason"], "not-a-defect");
    let r = put_review(
        &e,
        ids[2],
        Some(planner),
        r#"{"state": "corrected", "class": "pothole", "severity": "high"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let all = served(&e, "").await;
    let props = |fid: &str| all.iter().find(|(id, _)| id == fid).unwrap().1.clone();
    assert_eq!(props("F2")["review"], "rejected");
    assert_eq!(props("F2")["review_comment"], "a shadow");
    assert_eq!(props("F3")["review"], "corrected");
    assert_eq!(props("F3")["corrected_class"], "pothole");
    assert_eq!(props("F3")["corrected_severity"], "high");
    assert_eq!(props("F3")["class"], "crack", "the model's class stays");
    let at = props("F3")["reviewed_at"].as_str().unwrap().to_string();
    assert!(at.len() == 20 && at.ends_with('Z'), "RFC 3339: {at}");
    assert_eq!(props("F4")["review"], "unreviewed");
    assert_eq!(props("F4")["reviewed_by"], Value::Null);
    // The review filter.
    let pick = |list: Vec<(String, Value)>| list.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(pick(served(&e, "?review=rejected").await), ["F2"]);
    assert_eq!(
        pick(served(&e, "?review=unreviewed,corrected").await),
        ["F1", "F3", "F4"]
    );
    let r = e
        .get(
            "/api/v1/findings.geojson?review=maybe",
            e.token("a", "viewer"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .contains("expected one of: unreviewed, confirmed, rejected, corrected"));
    // Every review is in the audit log with its token and role.
    let log = e.get("/api/v1/audit", e.token("a", "admin")).await.json();
    let reviews: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["action"] == "finding.review")
        .collect();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["role"], "planner");
    assert_eq!(reviews[0]["token"], sha256_hex(planner.as_bytes())[..12]);
    assert_eq!(
        reviews[0]["detail"],
        format!("finding {} corrected, class pothole, severity high", ids[2])
    );
}

#[tokio::test]
async fn a_review_stays_with_its_finding_when_the_flight_is_processed_again() {
    let (e, flight, ids) = two_flights().await;
    let planner = e.token("a", "planner");
    let r = put_review(
        &e,
        ids[1],
        Some(planner),
        r#"{"state": "rejected", "reason": "duplicate"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // Processed again: ids and outlines change a little, F1 is gone.
    e.store_findings(
        "Espoo",
        flight,
        vec![
            finding("F1", "crack", Severity::Low, "R1", 24.0010, 60.00001),
            finding("F2", "crack", Severity::Medium, "R1", 24.0020, 60.0),
            finding("F3", "crack", Severity::High, "R1", 24.0031, 60.0),
        ],
    );
    let all = served(&e, "").await;
    let states: Vec<(&str, &str)> = all
        .iter()
        .map(|(id, p)| (id.as_str(), p["review"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("F1", "rejected"),
            ("F2", "unreviewed"),
            ("F3", "unreviewed")
        ]
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_review() {
    let e = env();
    let doc = e
        .get("/api/v1/openapi.json", e.token("a", "viewer"))
        .await
        .json();
    let put = &doc["paths"]["/api/v1/findings/{id}/review"]["put"];
    assert!(put["description"]
        .as_str()
        .unwrap()
        .contains("planner, admin"));
    let schema = &put["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        schema["properties"]["state"]["enum"],
        json!(["unreviewed", "confirmed", "rejected", "corrected"])
    );
    assert_eq!(
        schema["properties"]["reason"]["enum"],
        json!(["not-a-defect", "wrong-class", "duplicate", "out-of-scope"])
    );
    for code in ["200", "403", "404", "422"] {
        assert!(put["responses"][code].is_object(), "response {code}");
    }
    let params = doc["paths"]["/api/v1/findings.geojson"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(params.iter().any(|p| p["name"] == "review"));
    let props = &doc["components"]["schemas"]["FindingReview"]["properties"];
    for name in [
        "review",
        "reviewed_by",
        "reviewed_at",
        "review_reason",
        "review_comment",
    ] {
        assert!(props[name].is_object(), "{name}");
    }
    let csv = doc["paths"]["/api/v1/workorders.csv"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(csv.iter().any(|p| p["name"] == "include"));
}

/// RFC 4180 records of a CSV text, each as column name -> cell.
fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut records = common::csv_records(text);
    let head = records.remove(0);
    records
        .into_iter()
        .map(|r| head.iter().cloned().zip(r).collect())
        .collect()
}

#[tokio::test]
async fn work_orders_hold_confirmed_and_corrected_findings_and_never_rejected_ones() {
    let (e, flight, ids) = two_flights().await;
    let planner = e.token("a", "planner");
    let admin = e.token("a", "admin");
    let csv = |query: &'static str| {
        let e = &e;
        async move {
            let r = e
                .get(
                    &format!("/api/v1/workorders.csv?flight={flight}{query}"),
                    e.token("a", "planner"),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let body = r.text();
            assert!(
                body.lines()
                    .next()
                    .unwrap()
                    .ends_with(",finding_ids,review,reviewed_by,reviewed_at"),
                "{body}"
            );
            let mut rows: Vec<(String, String, String, String, String)> = csv_rows(&body)
                .into_iter()
                .map(|r| {
                    (
                        r["finding_ids"].clone(),
                        r["class"].clone(),
                        r["worst_severity"].clone(),
                        r["review"].clone(),
                        r["reviewed_by"].clone(),
                    )
                })
                .collect();
            rows.sort();
            rows
        }
    };
    // Nothing reviewed: no work yet, unless asked for.
    assert!(csv("").await.is_empty());
    let all = csv("&include=unreviewed").await;
    assert_eq!(all.len(), 1, "one order: four cracks on road R1");
    let mut in_order: Vec<&str> = all[0].0.split(' ').collect();
    in_order.sort();
    assert_eq!(in_order, ["F1", "F2", "F3", "F4"]);
    assert_eq!(
        (all[0].1.as_str(), all[0].3.as_str(), all[0].4.as_str()),
        ("crack", "unreviewed", "")
    );
    for (id, who, body) in [
        (ids[0], planner, r#"{"state": "confirmed"}"#),
        (
            ids[1],
            planner,
            r#"{"state": "rejected", "reason": "not-a-defect"}"#,
        ),
        (
            ids[2],
            admin,
            r#"{"state": "corrected", "class": "pothole", "severity": "high"}"#,
        ),
    ] {
        let r = put_review(&e, id, Some(who), body).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text());
    }
    let p = sha256_hex(planner.as_bytes())[..12].to_string();
    let a = sha256_hex(admin.as_bytes())[..12].to_string();
    let row = |ids: &str, class: &str, sev: &str, review: &str, by: &str| {
        (
            ids.to_string(),
            class.to_string(),
            sev.to_string(),
            review.to_string(),
            by.to_string(),
        )
    };
    // By default: the confirmed crack and the corrected finding as a pothole of high
    // severity; the rejected one and the unreviewed one are not work.
    assert_eq!(
        csv("").await,
        [
            row("F1", "crack", "medium", "confirmed", &p),
            row("F3", "pothole", "high", "corrected", &a),
        ]
    );
    // With include=unreviewed the unreviewed one comes in, marked; the rejected never.
    assert_eq!(
        csv("&include=unreviewed").await,
        [
            row("F1", "crack", "medium", "confirmed", &p),
            row("F3", "pothole", "high", "corrected", &a),
            row("F4", "crack", "high", "unreviewed", ""),
        ]
    );
    let r = e
        .get(
            &format!("/api/v1/workorders.csv?flight={flight}&include=rejected"),
            planner,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("expected: unreviewed"));
    // The GeoJSON says the same.
    let r = e
        .get(
            &format!("/api/v1/workorders.geojson?flight={flight}&include=unreviewed"),
            planner,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut got: Vec<(String, String, Value)> = serde_json::from_slice::<Value>(&r.body).unwrap()
        ["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (
                p["finding_ids"][0].as_str().unwrap().to_string(),
                p["review"].as_str().unwrap().to_string(),
                p["reviewed_by"].clone(),
            )
        })
        .collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        got,
        [
            ("F1".to_string(), "confirmed".to_string(), json!([p])),
            ("F3".to_string(), "corrected".to_string(), json!([a])),
            ("F4".to_string(), "unreviewed".to_string(), json!([])),
        ]
    );
    // The GeoPackage holds the work findings only (F1 and F3 by default).
    let r = e
        .get(&format!("/api/v1/workorders.gpkg?flight={flight}"), planner)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.body.starts_with(b"SQLite format 3\0"));
    // SQLite keeps the table definition and short text values as they are: the review
    // fields and their values are in the file.
    let has = |needle: &[u8]| r.body.windows(needle.len()).any(|w| w == needle);
    for needle in [
        &b"\"reviewed_by\" TEXT"[..],
        b"\"reviewed_at\" TEXT",
        b"\"review\" TEXT",
        p.as_bytes(),
        a.as_bytes(),
        b"corrected",
        b"pothole",
    ] {
        assert!(has(needle), "{}", String::from_utf8_lossy(needle));
    }
    assert!(!has(b"not-a-defect"), "the rejected finding is not in it");
}

#[tokio::test]
async fn each_view_of_a_finding_has_its_crop() {
    let e = env();
    let flight = e.create_flight("a", "views").await;
    let photo = std::fs::read(common::fixture("brighton/DJI_0018.JPG")).unwrap();
    let r = e
        .multipart(flight, e.token("a", "crew"), &[("DJI_0018.JPG", photo)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let view = |x0: f64, y0: f64| common::crack_view("DJI_0018.JPG", x0, y0);
    let mut f = finding("F1", "crack", Severity::Medium, "R1", 24.0, 60.0);
    f.finding.observations = vec![view(500.0, 500.0), view(2500.0, 1500.0)];
    f.finding.best = 1;
    e.store_findings("Espoo", flight, vec![f]);
    let id = ids_of(&e, "").await[0];
    let viewer = e.token("a", "viewer");
    let crop = |q: &'static str| {
        let e = &e;
        async move {
            e.get(&format!("/api/v1/findings/{id}/photo.jpg{q}"), viewer)
                .await
        }
    };
    let best = crop("").await;
    assert_eq!(best.status, StatusCode::OK);
    let (v0, v1) = (crop("?view=0").await, crop("?view=1").await);
    assert_eq!((v0.status, v1.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(best.body, v1.body, "the best view is view 1");
    assert_ne!(v0.body, v1.body, "another place of the photo");
    for q in ["?view=2", "?view=first"] {
        let r = crop(q).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{q}");
        assert!(r.text().contains("it has 2 views: 0 to 1"), "{}", r.text());
    }
}
