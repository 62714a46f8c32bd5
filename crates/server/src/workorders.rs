//! Work-order exports across flights (CSV, GeoJSON) and one flight's findings as a
//! GeoPackage, all built from the stored typed findings: work orders by
//! `report::quantity` exactly as the pipeline builds them, files by `report::export`.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::findings::basename;
use crate::flights::find_flight;
use crate::jobs::asset_kind;
use crate::review::{reviewed_orders, OrderReview, WorkSelection};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use besikta_core::Review;
use besikta_report::quantity::{asset_conditions_from_matches, work_orders, WorkOrder};
use besikta_report::{ConditionRules, Finding, RegisterSource};
use besikta_store::{FindingFilter, Flight, FlightState};
use serde_json::{json, Value};
use std::collections::HashMap;

const GEOJSON: &str = "application/geo+json";

/// The done flights an export covers: the one named by `flight`, else all of them,
/// newest first.
fn export_flights(
    state: &AppState,
    auth: &Auth,
    query: &HashMap<String, String>,
) -> ApiResult<Vec<Flight>> {
    auth.require(Right::Plan)?;
    let flights = match query.get("flight") {
        Some(f) => {
            let id = f
                .parse()
                .map_err(|_| ApiError::bad_request("flight must be a flight id"))?;
            vec![find_flight(state, auth, id)?]
        }
        None => state.store().flights(auth.org_id())?,
    };
    Ok(flights
        .into_iter()
        .filter(|f| f.state == FlightState::Done && f.output_dir.is_some())
        .collect())
}

/// The typed findings of a flight that become work with their reviews, photos named by
/// file name: confirmed and corrected ones (the correction applied), unreviewed ones too
/// with `include=unreviewed`, rejected ones never ([`WorkSelection`]).
fn work_findings(
    state: &AppState,
    auth: &Auth,
    flight: &Flight,
    query: &HashMap<String, String>,
) -> ApiResult<Vec<(Finding, Review)>> {
    // The request's include= wins over the organisation's setting.
    let default = state
        .store()
        .org_settings(auth.org_id())?
        .workorders_include_unreviewed;
    let selection = WorkSelection::from_query(query, default)?;
    let filter = FindingFilter {
        flight_id: Some(flight.id),
        reviews: selection.states(),
        ..Default::default()
    };
    let rows = state.store().findings(auth.org_id(), &filter)?;
    Ok(crate::review::work_findings(rows, selection)
        .into_iter()
        .map(|r| {
            let mut f = r.finding;
            // Rows stored by older versions name photos by their path on the server.
            for o in &mut f.observations {
                o.photo = basename(&o.photo).to_string();
            }
            (f, r.review)
        })
        .collect())
}

/// Work orders of findings as the pipeline makes them: grouped per asset and class,
/// prioritised by severity and the asset's condition score.
pub fn orders_of(findings: &[Finding]) -> Vec<WorkOrder> {
    let conditions = asset_conditions_from_matches(findings, &ConditionRules::default());
    work_orders(findings, &conditions)
}

/// Exported flights, each with its work orders and their reviews.
type FlightOrders = Vec<(Flight, Vec<(WorkOrder, OrderReview)>)>;

/// Each exported flight with its work orders and their reviews, newest flight first.
fn flight_orders(
    state: &AppState,
    auth: &Auth,
    query: &HashMap<String, String>,
) -> ApiResult<FlightOrders> {
    export_flights(state, auth, query)?
        .into_iter()
        .map(|flight| {
            let findings = work_findings(state, auth, &flight, query)?;
            Ok((flight, reviewed_orders(&findings, orders_of)))
        })
        .collect()
}

fn attachment(content_type: &'static str, name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Work orders of the organisation's processed flights (or `?flight=ID`), one CSV with a
/// leading `flight_id` column.
pub async fn workorders_csv(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let flights = flight_orders(&state, &auth, &query)?;
    if flights.is_empty() {
        return Err(ApiError::not_found("work orders (no processed flight yet)"));
    }
    let groups: Vec<(String, Vec<(WorkOrder, OrderReview)>)> = flights
        .into_iter()
        .map(|(f, orders)| (f.id.to_string(), orders))
        .collect();
    let csv = crate::review::workorders_csv("flight_id", &groups);
    Ok(attachment(
        "text/csv; charset=utf-8",
        "workorders.csv",
        csv.into_bytes(),
    ))
}

/// Work orders as GeoJSON MultiPoints (the findings' centroids), with a `flight_id`.
pub async fn workorders_geojson(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let mut features = Vec::new();
    for (flight, orders) in flight_orders(&state, &auth, &query)? {
        let (list, reviews): (Vec<WorkOrder>, Vec<OrderReview>) = orders.into_iter().unzip();
        let collection = besikta_report::export::workorders_geojson(&list);
        if let Value::Array(list) = &collection["features"] {
            // One feature per order, in order.
            for (f, review) in list.iter().zip(&reviews) {
                let mut f = f.clone();
                f["properties"]["flight_id"] = json!(flight.id);
                if let Some(props) = f["properties"].as_object_mut() {
                    crate::review::add_order_properties(props, review);
                }
                features.push(f);
            }
        }
    }
    let body = json!({"type": "FeatureCollection", "features": features}).to_string();
    Ok(attachment(GEOJSON, "workorders.geojson", body.into_bytes()))
}

/// The CRS of an organisation's GeoPackage: its own, else its first register's (as the
/// pipeline chooses), else WGS 84.
fn gpkg_crs(state: &AppState, auth: &Auth) -> ApiResult<String> {
    if let Some(crs) = state
        .store()
        .org(auth.org_id())?
        .and_then(|o| o.crs)
        .filter(|c| !c.is_empty())
    {
        return Ok(crs);
    }
    let registers = state.store().registers(auth.org_id())?;
    let wkt = registers.first().and_then(|r| {
        let src = RegisterSource {
            kind: asset_kind(&r.kind),
            ..RegisterSource::new(state.data_dir().join(&r.path))
        };
        let (srs, _) = besikta_report::register::register_crs(&src).ok()?;
        srs.to_wkt().ok()
    });
    Ok(wkt.unwrap_or_else(|| "EPSG:4326".into()))
}

/// A GeoPackage is one database per flight: `?flight=ID`, else the latest processed
/// flight; its `findings` layer written from the stored findings.
pub async fn workorders_gpkg(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let flights = export_flights(&state, &auth, &query)?;
    let flight = flights
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("work orders (no processed flight yet)"))?;
    let (findings, reviews): (Vec<Finding>, Vec<Review>) =
        work_findings(&state, &auth, &flight, &query)?
            .into_iter()
            .unzip();
    let extra = crate::review::gpkg_fields(&reviews);
    let crs = gpkg_crs(&state, &auth)?;
    let dir = state.data_dir().join("exports");
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("flight-{}-{name}.gpkg", flight.id));
    let written = path.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the exports folder: {e}"))?;
        let result = besikta_report::export::findings_gpkg_with(&written, &findings, &crs, &extra)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                std::fs::read(&written).map_err(|e| format!("cannot read the GeoPackage: {e}"))
            });
        let _ = std::fs::remove_file(&written);
        result
    })
    .await
    .map_err(|e| ApiError::internal(format!("the GeoPackage export crashed: {e}")))?
    .map_err(|m| ApiError::internal(crate::jobs::scrub_paths(&m, state.config())))?;
    Ok(attachment(
        "application/geopackage+sqlite3",
        &format!("flight-{}-findings.gpkg", flight.id),
        bytes,
    ))
}
