//! The audit log: who (token and role) did what and when, for the duties of a municipal
//! data holder; written by the routes that create tokens, change work-order status,
//! upload registers and delete flights, and read by the organisation's admins.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Records one action of `auth`'s token. The action has already happened, so a failure to
/// write the log is reported on the server's error output, not to the caller.
pub fn record(state: &AppState, auth: &Auth, action: &str, detail: &str) {
    if let Err(e) = state.store().record_audit(
        auth.org_id(),
        &auth.0.token,
        auth.0.role.as_str(),
        action,
        detail,
    ) {
        eprintln!(
            "besikta: cannot write the audit log ({action}: {detail}) of organisation {}: {e}",
            auth.org_id()
        );
    }
}

/// `GET /api/v1/audit?limit=N`: the newest entries first (default 200, at most 5000).
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    auth.require(Right::Admin)?;
    let limit = match query.get("limit") {
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=5000).contains(n))
            .ok_or_else(|| ApiError::bad_request("limit must be a number from 1 to 5000"))?,
        None => 200,
    };
    let entries = state.store().audit(auth.org_id(), limit)?;
    Ok(Json(json!({ "entries": entries })))
}
