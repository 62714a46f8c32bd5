//! Asset registers (admin uploads one file per kind) and token creation by admins.

use crate::auth::{new_token, token_hash, Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use besikta_report::{Register, RegisterSource};
use besikta_store::Role;
use serde::Deserialize;
use serde_json::{json, Value};

/// Register kinds: `roads` and `roofs` fix the asset kind; `osm` gives both from one
/// OpenStreetMap extract.
const KINDS: [&str; 3] = ["roads", "roofs", "osm"];

/// The file format from its first bytes; registers arrive as one file (no shapefile sets).
fn format_of(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"SQLite format 3\0") {
        Some("gpkg")
    } else if bytes.starts_with(b"fgb\x03") {
        Some("fgb")
    } else if bytes.len() > 8 && bytes[4..].windows(9).take(16).any(|w| w == b"OSMHeader") {
        Some("osm.pbf")
    } else if bytes.starts_with(b"PK\x03\x04") {
        // A zipped shapefile (.shp, .shx, .dbf, .prj), which GDAL reads as `.shp.zip`.
        Some("shp.zip")
    } else if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Some("geojson")
    } else {
        None
    }
}

pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(Right::Read)?;
    let registers = state.store().registers(auth.org_id())?;
    let list: Vec<Value> = registers
        .iter()
        .map(|r| {
            json!({
                "kind": r.kind,
                // The file is `<kind>.<format>` (an OSM register: `osm.osm.pbf`).
                "format": r.path.rsplit('/').next().and_then(|f| f.strip_prefix(&format!("{}.", r.kind))),
                "uploaded_at": r.uploaded_at,
                "data_url": r.path.ends_with(".geojson").then(|| format!("/api/v1/registers/{}/data", r.kind)),
                "features_url": format!("/api/v1/registers/{}/features", r.kind),
            })
        })
        .collect();
    Ok(Json(json!({ "registers": list })))
}

pub async fn put(
    State(state): State<AppState>,
    auth: Auth,
    Path(kind): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require(Right::Admin)?;
    if !KINDS.contains(&kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "register kind must be one of {}",
            KINDS.join(", ")
        )));
    }
    let format = format_of(&body).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the register must be one GeoPackage, GeoJSON, FlatGeobuf or OSM PBF file, or a zipped shapefile",
        )
    })?;
    let dir = format!("orgs/{}/registers", auth.org_id());
    let rel = format!("{dir}/{kind}.{format}");
    let abs_dir = state.data_dir().join(&dir);
    tokio::fs::create_dir_all(&abs_dir).await.map_err(|_| {
        ApiError::internal(format!("cannot create the folder {dir} in the data folder"))
    })?;
    // Write beside and rename: a job reading the old register never sees half a file.
    // The name keeps the format's extension, which GDAL's OSM reader goes by.
    let tmp = abs_dir.join(format!("incoming-{kind}.{format}"));
    let insufficient = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::StorageFull {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "the server's disk is full",
            )
        } else {
            ApiError::internal(format!("cannot store the register: {e}"))
        }
    };
    tokio::fs::write(&tmp, &body).await.map_err(insufficient)?;
    // Read it as every job will, before it replaces the register in use: a file GDAL
    // cannot open would otherwise fail each of the organisation's jobs.
    let checked = {
        let (tmp, kind) = (tmp.clone(), kind.clone());
        tokio::task::spawn_blocking(move || check_register(&tmp, &kind, format))
            .await
            .map_err(|e| ApiError::internal(format!("reading the register crashed: {e}")))?
    };
    let summary = match checked {
        Ok(summary) => summary,
        Err(reason) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, reason));
        }
    };
    tokio::fs::rename(&tmp, state.data_dir().join(&rel))
        .await
        .map_err(insufficient)?;
    // Workers on other machines read it from the object store, when there is one.
    crate::objects::publish_register(&state, &rel)
        .await
        .map_err(|e| ApiError::internal(crate::jobs::scrub_paths(&e, state.config())))?;
    // One file per kind: drop an older file of another format.
    for other in ["gpkg", "fgb", "osm.pbf", "geojson", "shp.zip"] {
        if other != format {
            let _ = tokio::fs::remove_file(abs_dir.join(format!("{kind}.{other}"))).await;
        }
    }
    state.store().put_register(auth.org_id(), &kind, &rel)?;
    crate::audit::record(
        &state,
        &auth,
        "register.uploaded",
        &format!(
            "{kind} register: {format}, {} bytes, {} assets",
            body.len(),
            summary.assets
        ),
    );
    Ok((
        StatusCode::OK,
        Json(json!({
            "kind": kind, "format": format, "bytes": body.len(),
            "assets": summary.assets, "crs": summary.crs,
        })),
    ))
}

/// What a readable register holds.
struct RegisterSummary {
    assets: usize,
    crs: String,
}

fn format_name(format: &str) -> &'static str {
    match format {
        "gpkg" => "a GeoPackage",
        "fgb" => "a FlatGeobuf file",
        "osm.pbf" => "an OpenStreetMap PBF file",
        "shp.zip" => "a zipped shapefile",
        _ => "a GeoJSON file",
    }
}

/// Opens the register through the report crate's loader, as a job would (layers, CRS,
/// geometry types), and says in the admin's words why it cannot be used.
fn check_register(
    path: &std::path::Path,
    kind: &str,
    format: &str,
) -> Result<RegisterSummary, String> {
    let shown = format!("{kind}.{format}");
    let what = format_name(format);
    // The reasons name the file as uploaded, never the server's folders, and carry GDAL's
    // own message rather than the name of the C function that failed.
    let plain = |e: besikta_report::ReportError| match e {
        besikta_report::ReportError::RegisterOpen { message, .. } => {
            let gdal = message
                .split_once("Error msg: '")
                .map(|(_, m)| m.trim_end_matches('\'').trim().to_string())
                .filter(|m| !m.is_empty());
            match gdal {
                Some(m) => format!("{shown} cannot be opened ({m})"),
                None => format!("{shown} cannot be opened: it is damaged or not in that format"),
            }
        }
        other => other
            .to_string()
            .replace(&path.display().to_string(), &shown),
    };
    let refuse = |detail: String| {
        format!(
            "the register is not {what} we can use: {detail}. Check that it opens in a GIS (QGIS), then export it again; the register in use was kept"
        )
    };
    let src = RegisterSource {
        kind: crate::jobs::asset_kind(kind),
        ..RegisterSource::new(path)
    };
    let frame = besikta_report::register::frame_for(std::slice::from_ref(&src))
        .map_err(|e| refuse(plain(e)))?
        .ok_or_else(|| refuse("no layer to read".into()))?;
    let register = Register::load(&src, &frame).map_err(|e| refuse(plain(e)))?;
    if register.assets.is_empty() {
        return Err(refuse(format!(
            "{shown} holds no roads or buildings (lines or polygons{})",
            if format == "osm.pbf" {
                " tagged highway or building"
            } else {
                ""
            }
        )));
    }
    Ok(RegisterSummary {
        assets: register.assets.len(),
        crs: register.crs,
    })
}

/// A GeoJSON register as uploaded, for the map's register layer.
pub async fn data(
    State(state): State<AppState>,
    auth: Auth,
    Path(kind): Path<String>,
) -> ApiResult<Response> {
    auth.require(Right::Read)?;
    let reg = state
        .store()
        .registers(auth.org_id())?
        .into_iter()
        .find(|r| r.kind == kind)
        .ok_or_else(|| ApiError::not_found("register"))?;
    if !reg.path.ends_with(".geojson") {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "only GeoJSON registers are drawn on the map; this one is used for matching only",
        ));
    }
    let bytes = tokio::fs::read(state.data_dir().join(&reg.path))
        .await
        .map_err(|e| ApiError::internal(format!("cannot read the register: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], bytes).into_response())
}

#[derive(Debug, Deserialize)]
pub struct NewToken {
    role: String,
}

/// Admins create tokens for their own organisation only.
pub async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require(Right::Admin)?;
    let Json(body) =
        body.map_err(|e| ApiError::bad_request(format!("expected {{\"role\": \"...\"}}: {e}")))?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::bad_request("role must be crew, viewer, planner or admin"))?;
    let token = new_token().map_err(|e| ApiError::internal(e.to_string()))?;
    let hash = token_hash(&token);
    state.store().insert_token(auth.org_id(), role, &hash)?;
    crate::audit::record(
        &state,
        &auth,
        "token.created",
        &format!("{} token {}", role.as_str(), &hash[..12]),
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "role": role})),
    ))
}
