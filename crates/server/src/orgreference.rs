//! An organisation's reference orthophoto (`GET`/`PUT`/`DELETE /api/v1/org/reference`,
//! issue 12): an admin uploads one georeferenced GeoTIFF (any CRS; a municipality's aerial
//! orthophoto) and the organisation's jobs align their flights to it as well as to
//! themselves, which fixes the flights' absolute position (`pose_source = reference` in
//! `footprints.geojson`). A flight the reference does not cover keeps the flight's own
//! alignment, with the reason in `summary.json`.
//!
//! An upload is checked through GDAL as alignment will read it (it opens, has a
//! geotransform, a coordinate system GDAL/PROJ can transform, is north-up and lies on the
//! Earth) before anything changes; a refused upload keeps the reference in use. The file
//! and its description live in the storage (`objects`), so workers on other machines find
//! them in an object store too: `orgs/<org>/reference/index.json` describes the reference
//! in use, its file is `orgs/<org>/reference/<sha256 prefix>/<name>`.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use besikta_pipeline::ProcessOptions;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The reference in use, as `index.json` keeps it and `GET` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrgReference {
    /// The file's name as uploaded (`?name=`), `reference.tif` by default.
    name: String,
    /// Storage key of the file.
    key: String,
    /// The coordinate system's name, and its EPSG code when it has one.
    crs: String,
    epsg: Option<u32>,
    width: u32,
    height: u32,
    /// Ground size of one pixel along x and y, in the CRS's units.
    pixel_size: [f64; 2],
    /// `[min x, min y, max x, max y]` in the CRS.
    bounds: [f64; 4],
    /// `[min lon, min lat, max lon, max lat]`.
    bounds_wgs84: [f64; 4],
    bytes: u64,
    sha256: String,
    uploaded_at: i64,
    /// Role and token (hash prefix) of the admin who uploaded it.
    uploaded_by: String,
}

fn index_key(org: i64) -> String {
    format!("orgs/{org}/reference/index.json")
}

fn prefix(org: i64) -> String {
    format!("orgs/{org}/reference/")
}

/// Serialises changes of the reference within this process (admins change it rarely).
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn read_index(state: &AppState, org: i64) -> ApiResult<Option<OrgReference>> {
    match state.storage().get_bytes(&index_key(org)).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ApiError::internal(format!(
                "the organisation's reference description {} is damaged ({e}); upload the reference again or delete it",
                index_key(org)
            ))
        }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

fn shown(r: &Option<OrgReference>) -> Value {
    match r {
        None => json!({ "reference": null }),
        Some(r) => json!({ "reference": {
            "name": r.name, "crs": r.crs, "epsg": r.epsg,
            "width": r.width, "height": r.height, "pixel_size": r.pixel_size,
            "bounds": r.bounds, "bounds_wgs84": r.bounds_wgs84,
            "bytes": r.bytes, "sha256": r.sha256,
            "uploaded_at": r.uploaded_at, "uploaded_by": r.uploaded_by,
        }}),
    }
}

/// `GET /api/v1/org/reference`: the organisation's reference orthophoto (name, CRS, pixel
/// size, extent), or `{"reference": null}`. Viewers, planners and admins.
pub async fn get(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(Right::Read)?;
    Ok(Json(shown(&read_index(&state, auth.org_id()).await?)))
}

/// A scratch folder in the data folder, removed on drop.
struct Spool(PathBuf);

impl Spool {
    fn new(state: &AppState, what: &str) -> Result<Spool, String> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = state.data_dir().join("scratch").join(format!(
            "{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the scratch folder {}: {e}", dir.display()))?;
        Ok(Spool(dir))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `bytes` start like a TIFF (classic or BigTIFF, either byte order).
fn is_tiff(bytes: &[u8]) -> bool {
    bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
}

/// A file name usable in a storage key: 1 to 100 letters, digits, '.', '_', '-', ending
/// in `.tif` or `.tiff`.
fn name_ok(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    (1..=100).contains(&name.len())
        && !name.starts_with('.')
        && (lower.ends_with(".tif") || lower.ends_with(".tiff"))
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// What a usable reference holds.
struct Checked {
    crs: String,
    epsg: Option<u32>,
    width: u32,
    height: u32,
    pixel_size: [f64; 2],
    bounds: [f64; 4],
    bounds_wgs84: [f64; 4],
}

/// Reads `path` through GDAL as alignment will (`besikta_align::Reference`) and describes
/// it (`besikta_ingest`'s GeoTIFF reader); the reason in the admin's words when it cannot
/// be used, naming the file as uploaded, never the server's folders.
fn check(path: &Path, name: &str) -> Result<Checked, String> {
    let scrub = |s: String| s.replace(&path.display().to_string(), name);
    let refuse = |detail: String| {
        format!(
            "{name} is not a reference orthophoto we can use: {}. Upload a georeferenced GeoTIFF (north-up, with a coordinate system; gdalwarp -t_srs EPSG:... makes one); the reference in use was kept",
            scrub(detail)
        )
    };
    let scan = besikta_ingest::scan(&[path.to_path_buf()]);
    let Some(ortho) = scan.orthophotos.into_iter().next() else {
        let reason = scan
            .rejected
            .into_iter()
            .next()
            .map_or_else(|| "GDAL does not read it".to_string(), |r| r.reason);
        return Err(refuse(reason));
    };
    let reference = besikta_align::Reference::open(path).map_err(refuse)?;
    let bounds_wgs84 = reference.bounds_wgs84().map_err(refuse)?;
    let (w, h) = reference.size();
    if w < 8 || h < 8 {
        return Err(refuse(format!("it is only {w} x {h} pixels")));
    }
    let pixel_size = reference.pixel_size();
    // Alignment matches at 5-10 cm per pixel: pixels far from that (a CRS in the wrong
    // units, a thumbnail) are refused. Measured on the ground, so any CRS compares.
    let mid_lat = ((bounds_wgs84[1] + bounds_wgs84[3]) / 2.0).to_radians();
    let width_m = (bounds_wgs84[2] - bounds_wgs84[0]) * 111_320.0 * mid_lat.cos();
    let metres_per_px = width_m / w as f64;
    if !(0.005..=5.0).contains(&metres_per_px) {
        return Err(refuse(format!(
            "its pixels are {metres_per_px:.3} m on the ground; alignment needs 0.005-5 m (municipal orthophotos are 0.05-0.25 m)"
        )));
    }
    Ok(Checked {
        crs: ortho.crs,
        epsg: ortho.epsg.or_else(|| reference.epsg()),
        width: ortho.width,
        height: ortho.height,
        pixel_size,
        bounds: ortho.bounds,
        bounds_wgs84,
    })
}

/// `PUT /api/v1/org/reference[?name=FILE.tif]` with the GeoTIFF as the body: checked, then
/// in use for the organisation's next jobs in place of the previous one. Admins only;
/// audited. 415: not a TIFF; 422: a TIFF that cannot serve (the reason says why); the
/// previous reference stays in both.
pub async fn put(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    auth.require(Right::Admin)?;
    let name = query
        .get("name")
        .cloned()
        .unwrap_or_else(|| "reference.tif".into());
    if !name_ok(&name) {
        return Err(ApiError::bad_request(format!(
            "name {name:?} must be 1 to 100 letters, digits, '.', '_' or '-' ending in .tif or .tiff"
        )));
    }
    if !is_tiff(&body) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the reference must be one GeoTIFF file (a georeferenced orthophoto) as the body; the reference in use was kept",
        ));
    }
    let spool = Spool::new(&state, "reference").map_err(ApiError::internal)?;
    let file = spool.0.join(&name);
    tokio::fs::write(&file, &body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::StorageFull {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "the server's disk is full",
            )
        } else {
            ApiError::internal(format!("cannot store the reference: {e}"))
        }
    })?;
    let checked = {
        let (file, name) = (file.clone(), name.clone());
        tokio::task::spawn_blocking(move || check(&file, &name))
            .await
            .map_err(|e| ApiError::internal(format!("reading the reference crashed: {e}")))?
    }
    .map_err(|reason| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, reason))?;
    let sha256: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let org = auth.org_id();
    let _lock = LOCK.lock().await;
    let previous = read_index(&state, org).await?;
    let key = format!("{}{}/{name}", prefix(org), &sha256[..16]);
    state
        .storage()
        .put_file(&key, &file)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let reference = OrgReference {
        name: name.clone(),
        key: key.clone(),
        crs: checked.crs,
        epsg: checked.epsg,
        width: checked.width,
        height: checked.height,
        pixel_size: checked.pixel_size,
        bounds: checked.bounds,
        bounds_wgs84: checked.bounds_wgs84,
        bytes: body.len() as u64,
        sha256: sha256.clone(),
        uploaded_at: now(),
        uploaded_by: format!("{} {}", auth.0.role.as_str(), auth.0.token),
    };
    let text = serde_json::to_vec_pretty(&reference)
        .map_err(|e| ApiError::internal(format!("cannot describe the reference: {e}")))?;
    let index_file = spool.0.join("index.json");
    tokio::fs::write(&index_file, text)
        .await
        .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", index_file.display())))?;
    // The description names the new file only once that is stored; a job reading the old
    // description meanwhile still finds the old file until it is removed below.
    state
        .storage()
        .put_file(&index_key(org), &index_file)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(old) = previous.filter(|p| p.key != key) {
        if let Some((dir, _)) = old.key.rsplit_once('/') {
            if let Err(e) = state.storage().delete_prefix(&format!("{dir}/")).await {
                eprintln!(
                    "besikta: cannot remove the previous reference {} of organisation {org}: {e}",
                    old.key
                );
            }
        }
    }
    crate::audit::record(
        &state,
        &auth,
        "org.reference.uploaded",
        &format!(
            "{name}: {} x {} px, {}, {:.3} x {:.3} per pixel, {} bytes, sha256 {}",
            reference.width,
            reference.height,
            reference.crs,
            reference.pixel_size[0],
            reference.pixel_size[1],
            reference.bytes,
            &sha256[..12]
        ),
    );
    Ok(Json(shown(&Some(reference))))
}

/// `DELETE /api/v1/org/reference`: the organisation's jobs align their flights to
/// themselves only again. Admins only; audited. 404 when there is none.
pub async fn delete(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(Right::Admin)?;
    let org = auth.org_id();
    let _lock = LOCK.lock().await;
    let Some(old) = read_index(&state, org).await? else {
        return Err(ApiError::not_found("reference orthophoto"));
    };
    state
        .storage()
        .delete_prefix(&prefix(org))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    crate::audit::record(
        &state,
        &auth,
        "org.reference.deleted",
        &format!(
            "{} (sha256 {})",
            old.name,
            &old.sha256[..12.min(old.sha256.len())]
        ),
    );
    Ok(Json(shown(&None)))
}

/// The reference of one job attempt: its local file (in place in the data folder, or
/// fetched from the object store into a scratch folder removed on drop), or none.
pub(crate) struct JobReference {
    path: Option<PathBuf>,
    _scratch: Option<Spool>,
}

impl JobReference {
    /// The pipeline's options: aligned, and to the reference when there is one.
    pub(crate) fn options(&self) -> ProcessOptions {
        ProcessOptions {
            reference: self.path.clone(),
            ..ProcessOptions::default()
        }
    }
}

/// The reference orthophoto for a job of organisation `org` (blocking; worker threads).
pub(crate) fn job_reference(state: &AppState, org: i64) -> Result<JobReference, String> {
    let storage = state.storage();
    let key = index_key(org);
    let none = JobReference {
        path: None,
        _scratch: None,
    };
    let cannot = |e: besikta_storage::StorageError| {
        format!("cannot read the organisation's reference orthophoto: {e}")
    };
    if !storage.exists_blocking(&key).map_err(cannot)? {
        return Ok(none);
    }
    let spool = Spool::new(state, "job-reference")?;
    let local = spool.0.join("index.json");
    match storage.get_file_blocking(&key, &local) {
        Ok(_) => {}
        // Deleted meanwhile: no reference.
        Err(e) if e.is_not_found() => return Ok(none),
        Err(e) => return Err(cannot(e)),
    }
    let text =
        std::fs::read(&local).map_err(|e| format!("cannot read {}: {e}", local.display()))?;
    let r: OrgReference = serde_json::from_slice(&text).map_err(|e| {
        format!("the organisation's reference description {key} is damaged ({e}); upload the reference again or delete it")
    })?;
    if let Some(root) = storage.local_dir() {
        return Ok(JobReference {
            path: Some(root.join(&r.key)),
            _scratch: None,
        });
    }
    let file = spool.0.join(&r.name);
    storage.get_file_blocking(&r.key, &file).map_err(cannot)?;
    Ok(JobReference {
        path: Some(file),
        _scratch: Some(spool),
    })
}

/// The paths' OpenAPI description.
pub fn openapi_paths() -> Value {
    let reference = json!({"type": "object", "properties": {"reference": {
        "type": ["object", "null"],
        "description": "the reference orthophoto in use; null when there is none",
        "properties": {
            "name": {"type": "string"}, "crs": {"type": "string"},
            "epsg": {"type": ["integer", "null"]},
            "width": {"type": "integer"}, "height": {"type": "integer"},
            "pixel_size": {"type": "array", "items": {"type": "number"}, "description": "x, y in the CRS's units"},
            "bounds": {"type": "array", "items": {"type": "number"}, "description": "min x, min y, max x, max y in the CRS"},
            "bounds_wgs84": {"type": "array", "items": {"type": "number"}, "description": "min lon, min lat, max lon, max lat"},
            "bytes": {"type": "integer"}, "sha256": {"type": "string"},
            "uploaded_at": {"type": "integer"}, "uploaded_by": {"type": "string"}}}}});
    let ok = json!({"description": "the organisation's reference", "content": {"application/json": {"schema": reference}}});
    json!({
        "/org/reference": {
            "get": {
                "summary": "The organisation's reference orthophoto (name, CRS, pixel size, extent), which its jobs align flights to",
                "description": "Roles: viewer, planner, admin.", "security": [{"bearer": []}],
                "responses": {"200": ok.clone()}},
            "put": {
                "summary": "Upload the organisation's reference orthophoto (one georeferenced GeoTIFF, any CRS, as the body); its jobs then align flights to it (pose_source reference); written to the audit log",
                "description": "Roles: admin. Checked through GDAL first (opens, georeferenced, a coordinate system, north-up, 0.005-5 m pixels); otherwise 415 or 422 and the reference in use stays.",
                "security": [{"bearer": []}],
                "parameters": [{"name": "name", "in": "query", "required": false, "schema": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*\\.[Tt][Ii][Ff][Ff]?$"}, "description": "the file's name (default reference.tif): letters, digits, '.', '_' or '-', not starting with '.', ending in .tif or .tiff"}],
                "requestBody": {"required": true, "content": {"image/tiff": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {"200": ok.clone(), "400": {"description": "a bad name"},
                    "413": {"description": "over the server's register size limit"},
                    "415": {"description": "not a TIFF"},
                    "422": {"description": "a TIFF that cannot serve as a reference (the reason says why); nothing changed"}}},
            "delete": {
                "summary": "Remove the organisation's reference orthophoto (flights are aligned to themselves only); written to the audit log",
                "description": "Roles: admin.", "security": [{"bearer": []}],
                "responses": {"200": ok, "404": {"description": "there is no reference"}}}
        }
    })
}
