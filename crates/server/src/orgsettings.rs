//! The organisation's settings (`GET`/`PUT /api/v1/org/settings`): choices its admin makes
//! once for everyone in it, such as whether work orders include unreviewed findings.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use besikta_store::OrgSettings;
use serde_json::{json, Value};

/// The settings (the defaults when the admin never set any). Viewers, planners and admins.
pub async fn get(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<OrgSettings>> {
    auth.require(Right::Read)?;
    Ok(Json(state.store().org_settings(auth.org_id())?))
}

/// Replaces the settings (a field left out takes its default). Admins only; audited.
pub async fn put(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<OrgSettings>> {
    auth.require(Right::Admin)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON object such as {{\"workorders_include_unreviewed\": true}}: {e}"
        ))
    })?;
    // The quota is the operator's (`besikta quota`): shown here, never set here.
    if body.get("quota").is_some() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "organisation settings: `quota` is set by the service's operator (besikta quota), not through the API; leave it out",
        ));
    }
    let mut settings: OrgSettings = serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("organisation settings: {e}; known settings: workorders_include_unreviewed (true or false)"),
        )
    })?;
    settings.quota = state.store().org_settings(auth.org_id())?.quota;
    state.store().set_org_settings(auth.org_id(), &settings)?;
    crate::audit::record(
        &state,
        &auth,
        "org.settings",
        &serde_json::to_string(&settings).unwrap_or_default(),
    );
    Ok(Json(settings))
}

/// The path's OpenAPI description.
pub fn openapi_path() -> Value {
    let schema = json!({"type": "object", "additionalProperties": false, "properties": {
        "workorders_include_unreviewed": {"type": "boolean", "default": false,
            "description": "work-order exports include unreviewed findings (marked unreviewed in the review column) unless the request says include=reviewed; rejected findings never"},
        "quota": {"type": "object", "readOnly": true, "additionalProperties": false,
            "description": "the organisation's own upload limits, set by the service's operator (besikta quota); each replaces the service-wide one; absent: the service's limits apply. Refused in PUT",
            "properties": {
                "max_photo_bytes": {"type": "integer", "minimum": 0, "description": "bytes of stored photos at most"},
                "max_photos": {"type": "integer", "minimum": 0, "description": "stored photos at most"}}}
    }});
    let ok = json!({"description": "the settings", "content": {"application/json": {"schema": schema.clone()}}});
    json!({
        "get": {"summary": "The organisation's settings (defaults when never set)", "description": "Roles: viewer, planner, admin.",
            "security": [{"bearer": []}], "responses": {"200": ok.clone()}},
        "put": {"summary": "Replace the organisation's settings (a setting left out takes its default); written to the audit log",
            "description": "Roles: admin.", "security": [{"bearer": []}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": schema}}},
            "responses": {"200": ok, "400": {"description": "not JSON"}, "422": {"description": "an unknown setting, a value of the wrong type, or `quota` (set by the operator)"}}}
    })
}
