//! The flight's orthomosaic on the web map: an optional job product (`mosaic.tif`, a COG
//! written by `besikta_align::write_mosaic` from the photos with the poses the job's
//! pipeline refined (not aligned a second time), when
//! [`crate::ServerConfig::mosaic_gsd_cm`] is set) and XYZ PNG tiles read from it through
//! GDAL (`besikta_align::web_tile`), organisation-scoped like the flight's other products.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::flights::find_flight;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::path::{Path as FsPath, PathBuf};

/// The product's file name in the job's output folder.
pub const MOSAIC: &str = "mosaic.tif";

/// Job step: writes `out_dir/mosaic.tif` from the job's photos with the poses the
/// pipeline refined (`captures`, not aligned again) when the server is set to
/// (`mosaic_gsd_cm`); a flight whose mosaic fails keeps its findings (the reason is logged).
/// `inputs`: this worker's local copies of the photos, found by file name (a prepared
/// flight kept from an earlier attempt names that attempt's copies).
pub fn render(
    state: &AppState,
    captures: &[besikta_core::Capture],
    inputs: &[PathBuf],
    out_dir: &FsPath,
) {
    let Some(gsd_cm) = state.config().mosaic_gsd_cm else {
        return;
    };
    let local = local_captures(captures, inputs);
    if let Err(e) = write(&local, out_dir, gsd_cm, state.config().dem.as_deref()) {
        eprintln!("mosaic of {} not made: {e}", out_dir.display());
    }
}

/// `captures` with their files among `inputs` (matched by file name); others left out.
fn local_captures(
    captures: &[besikta_core::Capture],
    inputs: &[PathBuf],
) -> Vec<besikta_core::Capture> {
    let name = |p: &str| crate::findings::basename(p).to_string();
    let by_name: std::collections::HashMap<String, &PathBuf> = inputs
        .iter()
        .map(|p| (name(&p.to_string_lossy()), p))
        .collect();
    captures
        .iter()
        .filter_map(|c| {
            by_name.get(&name(&c.file)).map(|p| besikta_core::Capture {
                file: p.to_string_lossy().into_owned(),
                ..c.clone()
            })
        })
        .collect()
}

/// The mosaic of `captures` (their poses as given) at `gsd_cm` into `out_dir`.
pub fn write(
    captures: &[besikta_core::Capture],
    out_dir: &FsPath,
    gsd_cm: f64,
    dem: Option<&FsPath>,
) -> Result<(), String> {
    if captures.is_empty() {
        return Err("no usable photos".into());
    }
    let ground = match dem {
        Some(p) => besikta_georef::Ground::Dem(
            besikta_georef::Dem::open(p).map_err(|e| format!("DEM {}: {e}", p.display()))?,
        ),
        None => besikta_georef::Ground::TakeOffPlane,
    };
    let cfg = besikta_align::MosaicConfig {
        gsd_m: gsd_cm / 100.0,
        ..besikta_align::MosaicConfig::default()
    };
    besikta_align::write_mosaic(captures, &ground, &cfg, &out_dir.join(MOSAIC)).map(|_| ())
}

/// The flight's mosaic as a local file: in place in the data folder, else fetched once from
/// the object store into the scratch folder (named by the job's output folder, so a new job
/// gets a new copy). `None`: the flight has no mosaic.
async fn local_mosaic(state: &AppState, output_dir: &str) -> Result<Option<PathBuf>, String> {
    let storage = state.storage();
    if storage.is_local() {
        let p = state.data_dir().join(output_dir).join(MOSAIC);
        return Ok(p.is_file().then_some(p));
    }
    let name: String = output_dir
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let p = state
        .data_dir()
        .join("scratch")
        .join(format!("mosaic-{name}.tif"));
    if p.is_file() {
        return Ok(Some(p));
    }
    let Some(bytes) = crate::objects::product(state, output_dir, MOSAIC).await? else {
        return Ok(None);
    };
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = p.with_extension("part");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(Some(p))
}

/// `GET /api/v1/flights/{id}/mosaic`: whether the flight has a mosaic, and its tile URL
/// template (the web map adds a layer only for flights that have one).
pub async fn info(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    auth.require(Right::Read)?;
    let flight = find_flight(&state, &auth, id)?;
    let available = match flight.output_dir.as_deref() {
        Some(dir) => local_mosaic(&state, dir)
            .await
            .map_err(|e| ApiError::internal(crate::jobs::scrub_paths(&e, state.config())))?
            .is_some(),
        None => false,
    };
    Ok(axum::Json(serde_json::json!({
        "available": available,
        "tiles": format!("/api/v1/flights/{id}/mosaic/{{z}}/{{x}}/{{y}}.png"),
    })))
}

/// `GET /api/v1/flights/{id}/mosaic/{z}/{x}/{y}.png`: one 256 px Web Mercator tile of the
/// flight's mosaic; 404 where it has no ground, when the flight has no mosaic, or for
/// another organisation's flight.
pub async fn tile(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, z, x, y)): Path<(i64, u8, u32, String)>,
) -> ApiResult<Response> {
    auth.require(Right::Read)?;
    let y: u32 = y
        .strip_suffix(".png")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::not_found("tile (ask for {z}/{x}/{y}.png)"))?;
    let flight = find_flight(&state, &auth, id)?;
    let none = || {
        ApiError::not_found(
            "mosaic (the flight has none: the server makes one with --mosaic-gsd-cm)",
        )
    };
    let dir = flight.output_dir.as_deref().ok_or_else(none)?;
    let path = local_mosaic(&state, dir)
        .await
        .map_err(|e| ApiError::internal(crate::jobs::scrub_paths(&e, state.config())))?
        .ok_or_else(none)?;
    let config = state.config().clone();
    let png = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, String> {
        match besikta_align::web_tile(&path, z, x, y)? {
            Some(t) => t.png().map(Some),
            None => Ok(None),
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(crate::jobs::scrub_paths(&e, &config)))?
    .ok_or_else(|| ApiError::not_found("mosaic ground in this tile"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        png,
    )
        .into_response())
}
