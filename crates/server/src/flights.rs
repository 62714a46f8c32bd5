//! Flight routes: create, list, state and progress, starting processing, and deletion.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use besikta_store::{Flight, FlightDeleted};
use serde::Deserialize;
use serde_json::{json, Value};

/// Looks a flight up within the caller's organisation: another organisation's is 404.
pub fn find_flight(state: &AppState, auth: &Auth, id: i64) -> ApiResult<Flight> {
    state
        .store()
        .flight(auth.org_id(), id)?
        .ok_or_else(|| ApiError::not_found("flight"))
}

/// Who the token belongs to: the web pages use it to show the right controls.
pub async fn me(State(state): State<AppState>, auth: Auth) -> Json<Value> {
    let role = auth.0.role;
    Json(json!({
        "organisation": auth.0.org.name,
        "crs": auth.0.org.crs,
        "role": role,
        "tile_url": state.config().tile_url,
        "rights": {
            "upload": crate::allows(role, Right::Upload),
            "read": crate::allows(role, Right::Read),
            "plan": crate::allows(role, Right::Plan),
            "review": crate::allows(role, Right::Review),
            "admin": crate::allows(role, Right::Admin),
        }
    }))
}

#[derive(Debug, Deserialize)]
pub struct NewFlight {
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<Json<NewFlight>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require(Right::Upload)?;
    let Json(body) =
        body.map_err(|e| ApiError::bad_request(format!("expected {{\"name\": \"...\"}}: {e}")))?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::bad_request(
            "a flight needs a name of 1 to 200 characters",
        ));
    }
    let flight = state.store().create_flight(auth.org_id(), name)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": flight.id, "name": flight.name, "state": flight.state })),
    ))
}

pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(Right::FlightStatus)?;
    let flights = state.store().flights(auth.org_id())?;
    Ok(Json(json!({ "flights": flights })))
}

pub async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    auth.require(Right::FlightStatus)?;
    let flight = find_flight(&state, &auth, id)?;
    let warnings = flight_warnings(&state, &flight).await;
    let mut body = serde_json::to_value(&flight)
        .map_err(|e| ApiError::internal(format!("cannot show flight {id}: {e}")))?;
    body["warnings"] = json!(warnings);
    body["photos_removed"] = crate::retention::flight_member(&state, id)?;
    Ok(Json(body))
}

/// What the crew should know about the finished job, from its `summary.json`: models not
/// run on photos too coarse for them, with the height to fly. Empty before a job finished
/// or when the summary cannot be read (the flight itself still shows).
async fn flight_warnings(state: &AppState, flight: &Flight) -> Vec<String> {
    let Some(dir) = flight.output_dir.as_deref() else {
        return Vec::new();
    };
    let Ok(Some(bytes)) = crate::objects::product(state, dir, "summary.json").await else {
        return Vec::new();
    };
    let Ok(summary) = serde_json::from_slice::<Value>(&bytes) else {
        return Vec::new();
    };
    summary["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str())
        .map(|w| crate::jobs::scrub_paths(w, state.config()))
        .collect()
}

pub async fn process(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require(Right::Upload)?;
    let flight = find_flight(&state, &auth, id)?;
    if flight.photos == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the flight has no photos yet: upload them first",
        ));
    }
    crate::retention::refuse_processing(&state, id)?;
    let job = state.store().enqueue_job(auth.org_id(), id)?;
    let job_state = state
        .store()
        .job_state(job)?
        .unwrap_or_else(|| "queued".into());
    state.inner.jobs.notify();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job": job, "state": job_state })),
    ))
}

/// `DELETE /flights/{id}`: the flight with its photos, crops, findings and products, for
/// planners and admins of its organisation; refused (409) while a job processes it.
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    auth.require(Right::Plan)?;
    let (flight, findings, upload_ids) = match state.store().delete_flight(auth.org_id(), id)? {
        FlightDeleted::NotFound => return Err(ApiError::not_found("flight")),
        FlightDeleted::Running => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "the flight is being processed; delete it when its job has finished",
            ))
        }
        FlightDeleted::Deleted {
            flight,
            findings,
            upload_ids,
        } => (flight, findings, upload_ids),
    };
    // The rows are gone, so nothing refers to these files any more.
    let data = state.data_dir().to_path_buf();
    let folder = data.join(format!("flights/{id}"));
    let removed = tokio::task::spawn_blocking(move || {
        for upload in upload_ids {
            let part = data.join("uploads").join(format!("{upload}.part"));
            let _ = std::fs::remove_file(part);
        }
        match std::fs::remove_dir_all(&folder) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("deleting the flight's files crashed: {e}")))?;
    // Its photos and products in the object store, when there is one.
    let removed = match (removed, crate::objects::remove_flight(&state, id).await) {
        (Ok(()), Err(e)) => Err(e),
        (r, _) => r,
    };
    let detail = format!(
        "flight {id} '{}': {} photos, {findings} findings",
        flight.name, flight.photos
    );
    crate::audit::record(&state, &auth, "flight.deleted", &detail);
    if let Err(e) = removed {
        return Err(ApiError::internal(format!(
            "the flight was deleted but some of its files in flights/{id} were not ({e}); they are no longer used"
        )));
    }
    Ok(Json(json!({
        "deleted": id,
        "photos": flight.photos,
        "findings": findings,
    })))
}
