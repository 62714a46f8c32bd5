//! The organisation's registers on the map, whatever format was uploaded:
//! `GET /api/v1/registers/{kind}/features?bbox=...` answers with the assets in a bounding
//! box as GeoJSON in WGS 84, read by `report::registermap` (GDAL, as jobs read them) once
//! per uploaded file and kept in memory.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use besikta_report::registermap::RegisterMap;
use besikta_report::RegisterSource;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// Assets returned when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 2000;
/// The most assets one request may ask for.
pub const MAX_LIMIT: usize = 10_000;
/// Registers kept read in memory (the most recently used ones).
const CACHED: usize = 8;

/// A read register and the file it was read from (path, modification time, size): a new
/// upload replaces the file, so it no longer matches and is read again.
struct Cached {
    path: PathBuf,
    stamp: (Option<SystemTime>, u64),
    map: Arc<RegisterMap>,
    used: u64,
}

fn cache() -> &'static Mutex<(u64, Vec<Cached>)> {
    static CACHE: OnceLock<Mutex<(u64, Vec<Cached>)>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new((0, Vec::new())))
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// `min_lon,min_lat,max_lon,max_lat` in WGS 84 degrees.
fn parse_bbox(text: Option<&String>) -> ApiResult<[f64; 4]> {
    let text = text.ok_or_else(|| {
        unprocessable("bbox is required: bbox=min_lon,min_lat,max_lon,max_lat (WGS 84 degrees)")
    })?;
    let nums: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            unprocessable(format!(
                "bbox {text:?}: expected four numbers min_lon,min_lat,max_lon,max_lat"
            ))
        })?;
    let [a, b, c, d] = nums[..] else {
        return Err(unprocessable(format!(
            "bbox {text:?}: expected four numbers min_lon,min_lat,max_lon,max_lat, got {}",
            nums.len()
        )));
    };
    let lon = -180.0..=180.0;
    let lat = -90.0..=90.0;
    if !(lon.contains(&a) && lon.contains(&c) && lat.contains(&b) && lat.contains(&d)) {
        return Err(unprocessable(format!(
            "bbox {text:?}: longitudes must be within -180..180 and latitudes within -90..90"
        )));
    }
    if a > c || b > d {
        return Err(unprocessable(format!(
            "bbox {text:?}: the minimum must come first (min_lon,min_lat,max_lon,max_lat)"
        )));
    }
    Ok([a, b, c, d])
}

fn parse_limit(text: Option<&String>) -> ApiResult<usize> {
    match text {
        None => Ok(DEFAULT_LIMIT),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(unprocessable(format!(
                "limit {t:?}: expected a whole number from 1 to {MAX_LIMIT}"
            ))),
        },
    }
}

/// The register read from `path`, from memory when the file has not changed since.
fn load(path: PathBuf, kind: &str) -> Result<Arc<RegisterMap>, String> {
    let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read the register: {e}"))?;
    let stamp = (meta.modified().ok(), meta.len());
    {
        let mut guard = cache().lock().unwrap_or_else(|p| p.into_inner());
        let (clock, entries) = &mut *guard;
        *clock += 1;
        if let Some(c) = entries
            .iter_mut()
            .find(|c| c.path == path && c.stamp == stamp)
        {
            c.used = *clock;
            return Ok(c.map.clone());
        }
    }
    let src = RegisterSource {
        kind: crate::jobs::asset_kind(kind),
        ..RegisterSource::new(&path)
    };
    let shown = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let map = RegisterMap::load(&src).map_err(|e| {
        format!(
            "the {kind} register cannot be read for the map: {}; upload it again",
            e.to_string().replace(&path.display().to_string(), &shown)
        )
    })?;
    let map = Arc::new(map);
    let mut guard = cache().lock().unwrap_or_else(|p| p.into_inner());
    let (clock, entries) = &mut *guard;
    entries.retain(|c| c.path != path);
    if entries.len() >= CACHED {
        if let Some(oldest) = entries
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.used)
            .map(|(i, _)| i)
        {
            entries.swap_remove(oldest);
        }
    }
    entries.push(Cached {
        path,
        stamp,
        map: map.clone(),
        used: *clock,
    });
    Ok(map)
}

/// The assets of the organisation's `kind` register that touch `bbox`, as GeoJSON in WGS 84:
/// at most `limit` (default [`DEFAULT_LIMIT`]); `matched` says how many touch the box
/// and `capped` whether some were left out (also in the `X-Besikta-Capped` header).
pub async fn features(
    State(state): State<AppState>,
    auth: Auth,
    Path(kind): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    auth.require(Right::Read)?;
    let bbox = parse_bbox(query.get("bbox"))?;
    let limit = parse_limit(query.get("limit"))?;
    let reg = state
        .store()
        .registers(auth.org_id())?
        .into_iter()
        .find(|r| r.kind == kind)
        .ok_or_else(|| ApiError::not_found("register"))?;
    let path = state.data_dir().join(&reg.path);
    let body = tokio::task::spawn_blocking(move || -> Result<(Value, bool), String> {
        let map = load(path, &kind)?;
        let found = map.in_bbox(bbox, limit);
        let mut body = found.geojson();
        body["limit"] = json!(limit);
        Ok((body, found.capped()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("reading the register crashed: {e}")))?;
    let (body, capped) = body.map_err(ApiError::internal)?;
    let bytes = serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("cannot write the register's features: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/geo+json"),
            (
                header::HeaderName::from_static("x-besikta-capped"),
                if capped { "true" } else { "false" },
            ),
        ],
        bytes,
    )
        .into_response())
}

/// The path's OpenAPI description.
pub fn openapi_path() -> Value {
    json!({
        "parameters": [{"name": "kind", "in": "path", "required": true, "schema": {"enum": ["roads", "roofs", "osm"]}}],
        "get": {
            "summary": "The assets of a register that touch a bounding box, whatever format was uploaded (GeoPackage, zipped shapefile, FlatGeobuf, GeoJSON, OSM PBF), as read for matching: GeoJSON in WGS 84, each feature with asset_id, asset_name, asset_kind and class. At most `limit` features in the register's order; the collection's `matched` says how many touch the box and `capped` (and the X-Besikta-Capped header) whether some were left out",
            "description": "Roles: viewer, planner, admin.",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "bbox", "in": "query", "required": true, "schema": crate::openapi::bbox_schema(), "description": "min_lon,min_lat,max_lon,max_lat in WGS 84 degrees; an asset is included when its geometry (not only its bounding box) meets the box"},
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "description": "the most features to return"}
            ],
            "responses": {
                "200": {"description": "the assets", "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}},
                    "headers": {"X-Besikta-Capped": {"schema": {"enum": ["true", "false"]}, "description": "whether assets were left out to stay within limit"}}},
                "404": {"description": "the organisation has no register of this kind"},
                "422": {"description": "a missing or malformed bbox, or a limit outside 1..10000"}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounding_boxes_and_limits_are_checked() {
        let b = |s: &str| parse_bbox(Some(&s.to_string()));
        assert_eq!(b("24.9,60.1,25.0,60.2").unwrap(), [24.9, 60.1, 25.0, 60.2]);
        for bad in [
            "24.9,60.1,25.0",
            "a,b,c,d",
            "25,60,24,61",
            "24,91,25,92",
            "",
            "1,2,3,4,5",
        ] {
            let e = b(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        assert!(parse_bbox(None).is_err());
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(parse_limit(Some(&"5".into())).unwrap(), 5);
        assert!(parse_limit(Some(&"0".into())).is_err());
        assert!(parse_limit(Some(&"10001".into())).is_err());
    }
}
