//! The organisation setting for unreviewed work: admins only may set it, it holds for its
//! own organisation only, work-order exports follow it (unreviewed findings marked as
//! such, rejected ones never), and a request's `include=` still overrides it. Runs on
//! PostgreSQL too (`BESIKTA_TEST_DATABASE=postgres`).

mod common;

use axum::http::StatusCode;
use besikta_core::Severity;
use besikta_store::NewFinding;
use common::{csv_records, env, road_finding, Env, ROLES};
use serde_json::{json, Value};

/// A crack on road `asset`, a small square at `lon`, `lat`.
fn crack(id: &str, asset: &str, lon: f64, lat: f64) -> NewFinding {
    road_finding(id, "crack", Severity::Medium, asset, lon, lat)
}

/// Finding ids (`F1`) of the flight's work orders with their review column, sorted.
async fn work(e: &Env, org: &str, flight: i64, query: &str) -> Vec<(String, String)> {
    let r = e
        .get(
            &format!("/api/v1/workorders.csv?flight={flight}{query}"),
            e.token(org, "planner"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut records = csv_records(&r.text());
    let head = records.remove(0);
    let ids = head.iter().position(|c| c == "finding_ids").unwrap();
    let review = head.iter().position(|c| c == "review").unwrap();
    let mut out = Vec::new();
    for cells in records {
        for id in cells[ids].split(' ') {
            out.push((id.to_string(), cells[review].clone()));
        }
    }
    out.sort();
    out
}

/// GeoJSON work orders: (finding ids, review) per order.
async fn work_geojson(e: &Env, flight: i64, query: &str) -> Vec<(Value, Value)> {
    let r = e
        .get(
            &format!("/api/v1/workorders.geojson?flight={flight}{query}"),
            e.token("a", "planner"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut out: Vec<(Value, Value)> = r.json()["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["properties"]["finding_ids"].clone(),
                f["properties"]["review"].clone(),
            )
        })
        .collect();
    out.sort_by_key(|(ids, _)| ids.to_string());
    out
}

#[tokio::test]
async fn admins_set_whether_work_orders_include_unreviewed_findings_and_requests_override() {
    let e = env();
    let settings = "/api/v1/org/settings";
    // Defaults, readable by those who read findings; crews do not.
    for role in ["viewer", "planner", "admin"] {
        let r = e.get(settings, e.token("a", role)).await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.text());
        assert_eq!(r.json(), json!({"workorders_include_unreviewed": false}));
    }
    assert_eq!(
        e.get(settings, e.token("a", "crew")).await.status,
        StatusCode::FORBIDDEN
    );
    // Only admins change it.
    let on = r#"{"workorders_include_unreviewed": true}"#;
    for role in ROLES.into_iter().filter(|r| *r != "admin") {
        let r = e.put_json(settings, e.token("a", role), on).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}: {}", r.text());
    }
    assert_eq!(
        e.get(settings, e.token("a", "viewer")).await.json()["workorders_include_unreviewed"],
        false,
        "a refused change changes nothing"
    );
    // Bad bodies say what is known.
    for (body, status, expect) in [
        (
            "not json",
            StatusCode::BAD_REQUEST,
            "expected a JSON object",
        ),
        (
            r#"{"workorders_include_unreviewd": true}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "workorders_include_unreviewed",
        ),
        (
            r#"{"workorders_include_unreviewed": "yes"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "true or false",
        ),
    ] {
        let r = e.put_json(settings, e.token("a", "admin"), body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.text().contains(expect), "{body}: {}", r.text());
    }

    // Espoo's flight: F1 confirmed, F2 rejected, F3 and F4 unreviewed. Vantaa's: G1 unreviewed.
    let flight = e.create_flight("a", "north").await;
    e.store_findings(
        "Espoo",
        flight,
        vec![
            crack("F1", "R1", 24.0, 60.0),
            crack("F2", "R1", 24.001, 60.0),
            crack("F3", "R2", 24.002, 60.0),
            crack("F4", "R2", 24.003, 60.0),
        ],
    );
    let other = e.create_flight("b", "south").await;
    e.store_findings("Vantaa", other, vec![crack("G1", "S1", 25.0, 60.3)]);
    let ids: Vec<(String, i64)> = e.flight_finding_ids("a", flight).await;
    let id = |name: &str| ids.iter().find(|(n, _)| n == name).unwrap().1;
    for (name, body) in [
        ("F1", r#"{"state": "confirmed"}"#),
        ("F2", r#"{"state": "rejected", "reason": "not-a-defect"}"#),
    ] {
        let r = e
            .put_json(
                &format!("/api/v1/findings/{}/review", id(name)),
                e.token("a", "planner"),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let pair = |id: &str, review: &str| (id.to_string(), review.to_string());
    let reviewed_only = vec![pair("F1", "confirmed")];
    let with_unreviewed = vec![
        pair("F1", "confirmed"),
        pair("F3", "unreviewed"),
        pair("F4", "unreviewed"),
    ];
    // The default: reviewed work only.
    assert_eq!(work(&e, "a", flight, "").await, reviewed_only);
    assert_eq!(
        work(&e, "a", flight, "&include=unreviewed").await,
        with_unreviewed
    );

    // The admin turns the setting on: unreviewed findings become work, marked as such.
    let r = e.put_json(settings, e.token("a", "admin"), on).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"workorders_include_unreviewed": true}));
    assert_eq!(
        e.get(settings, e.token("a", "planner")).await.json()["workorders_include_unreviewed"],
        true
    );
    assert_eq!(work(&e, "a", flight, "").await, with_unreviewed);
    assert_eq!(
        work_geojson(&e, flight, "").await,
        vec![
            (json!(["F1"]), json!("confirmed")),
            (json!(["F3", "F4"]), json!("unreviewed")),
        ]
    );
    // The request still decides when it says: reviewed only, or unreviewed too.
    assert_eq!(
        work(&e, "a", flight, "&include=reviewed").await,
        reviewed_only
    );
    assert_eq!(
        work(&e, "a", flight, "&include=unreviewed").await,
        with_unreviewed
    );
    let r = e
        .get(
            &format!("/api/v1/workorders.csv?flight={flight}&include=everything"),
            e.token("a", "planner"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("unreviewed or reviewed"), "{}", r.text());
    // The rejected finding never becomes work.
    for q in ["", "&include=unreviewed"] {
        assert!(work(&e, "a", flight, q)
            .await
            .iter()
            .all(|(f, _)| f != "F2"));
    }

    // Vantaa's setting and work are its own.
    assert_eq!(
        e.get(settings, e.token("b", "admin")).await.json()["workorders_include_unreviewed"],
        false
    );
    assert!(work(&e, "b", other, "").await.is_empty());
    assert_eq!(
        work(&e, "b", other, "&include=unreviewed").await,
        vec![pair("G1", "unreviewed")]
    );

    // Every change is in the audit log; turning it off restores the default.
    let r = e.put_json(settings, e.token("a", "admin"), "{}").await;
    assert_eq!(r.json(), json!({"workorders_include_unreviewed": false}));
    assert_eq!(work(&e, "a", flight, "").await, reviewed_only);
    let audit = e.get("/api/v1/audit", e.token("a", "admin")).await.json();
    let changes: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "org.settings")
        .map(|a| a["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        [
            r#"{"workorders_include_unreviewed":false}"#,
            r#"{"workorders_include_unreviewed":true}"#,
        ]
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_organisation_settings() {
    let e = env();
    let doc = e
        .get("/api/v1/openapi.json", e.token("a", "viewer"))
        .await
        .json();
    let path = &doc["paths"]["/api/v1/org/settings"];
    assert!(path["get"]["description"]
        .as_str()
        .unwrap()
        .contains("viewer"));
    assert_eq!(path["put"]["description"], "Roles: admin.");
    let schema = &path["put"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        schema["properties"]["workorders_include_unreviewed"]["type"],
        "boolean"
    );
    assert!(path["put"]["responses"]["422"].is_object());
    let include = doc["paths"]["/api/v1/workorders.csv"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "include")
        .unwrap()["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        include.contains("workorders_include_unreviewed"),
        "{include}"
    );
}
