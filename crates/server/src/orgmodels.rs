//! Models per organisation (`GET /api/v1/org/models`, `PUT`/`DELETE
//! /api/v1/org/models/{model}`): an organisation's admin uploads its own version of one of
//! the server's models (say, fine-tuned on its reviews) and its jobs use it instead of the
//! server's; the other organisations keep the server's.
//!
//! An upload is a manifest (TOML, as beside every shipped model) and its ONNX file, and
//! optionally a model card. It is checked before anything changes: the manifest names a
//! model the server has, under a version of its own; its input, output and classes are the
//! server model's (so findings, reviews and work orders mean the same things); the ONNX
//! file loads in ONNX Runtime, fits its manifest and runs one tile with an output of the
//! expected shape. A refused upload leaves the version in use as it was.
//!
//! The files and the organisation's choice live in the storage (`objects`), so workers on
//! other machines find them in an object store too: `orgs/<org>/models/index.json` lists
//! the uploaded versions and which one is in use, each version in
//! `orgs/<org>/models/<model>/<version>/` (`manifest.toml`, `model.onnx`, `card.md`).
//! A job builds its own models folder ([`job_models`]): the server's manifests with the
//! organisation's versions in place of theirs.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::orgmodel_check::check_upload;
use crate::AppState;
use axum::extract::{Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use besikta_infer::manifest::Task;
use besikta_infer::Manifest;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path as FsPath, PathBuf};

/// The index of an organisation's uploaded versions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Index {
    models: Vec<OrgModel>,
}

/// One uploaded version of a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrgModel {
    name: String,
    version: String,
    /// Storage prefix of its files.
    dir: String,
    sha256: String,
    bytes: u64,
    uploaded_at: i64,
    /// Role and token (hash prefix) of the admin who uploaded it.
    uploaded_by: String,
    /// Whether the organisation's jobs use it (at most one per model name).
    active: bool,
}

/// Largest manifest or model card part, bytes.
const MAX_TEXT_PART: usize = 1024 * 1024;

fn index_key(org: i64) -> String {
    format!("orgs/{org}/models/index.json")
}

/// Serialises changes of the indexes within this process (admins change them rarely).
static INDEX_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn read_index(state: &AppState, org: i64) -> ApiResult<Index> {
    match state.storage().get_bytes(&index_key(org)).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::internal(format!(
                "the organisation's model index {} is damaged ({e}); restore it from a backup or delete it to return to the server's models",
                index_key(org)
            ))
        }),
        Err(e) if e.is_not_found() => Ok(Index::default()),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

async fn write_index(state: &AppState, org: i64, index: &Index) -> ApiResult<()> {
    let text = serde_json::to_vec_pretty(index)
        .map_err(|e| ApiError::internal(format!("cannot write the model index: {e}")))?;
    let spool = Spool::new(state)?;
    let tmp = spool.dir.join("index.json");
    tokio::fs::write(&tmp, text)
        .await
        .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", tmp.display())))?;
    state
        .storage()
        .put_file(&index_key(org), &tmp)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The server's models: each manifest under the models folder that loads.
fn server_models(models_dir: &FsPath) -> Vec<(PathBuf, Manifest)> {
    besikta_pipeline::find_manifests(models_dir)
        .into_iter()
        .filter_map(|p| Manifest::load(&p).ok().map(|m| (p, m)))
        .collect()
}

fn listing(server: &[(PathBuf, Manifest)], index: &Index) -> Value {
    let models: Vec<Value> = server
        .iter()
        .map(|(_, m)| {
            let versions: Vec<&OrgModel> =
                index.models.iter().filter(|o| o.name == m.name).collect();
            let active = versions.iter().find(|o| o.active);
            json!({
                "name": m.name,
                "task": match m.task { Task::Segmentation => "segmentation", Task::Detection => "detection" },
                "classes": m.classes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                "default_version": m.version,
                "version": active.map_or(m.version.as_str(), |o| o.version.as_str()),
                "source": if active.is_some() { "organisation" } else { "default" },
                "uploaded": versions.iter().map(|o| json!({
                    "version": o.version, "sha256": o.sha256, "bytes": o.bytes,
                    "uploaded_at": o.uploaded_at, "uploaded_by": o.uploaded_by,
                    "active": o.active,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "models": models })
}

/// `GET /api/v1/org/models`: the server's models, the version the organisation's jobs use
/// and the versions it uploaded. Viewers, planners and admins.
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(Right::Read)?;
    let index = read_index(&state, auth.org_id()).await?;
    let server = server_models(&state.config().models_dir);
    Ok(Json(listing(&server, &index)))
}

fn one(server: &[(PathBuf, Manifest)], index: &Index, name: &str) -> Value {
    let all = listing(server, index);
    all["models"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

fn server_model(state: &AppState, name: &str) -> ApiResult<(Vec<(PathBuf, Manifest)>, Manifest)> {
    let server = server_models(&state.config().models_dir);
    let base = server
        .iter()
        .find(|(_, m)| m.name == name)
        .map(|(_, m)| m.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = server.iter().map(|(_, m)| m.name.as_str()).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "this server has no model {name:?}; its models: {}",
                    names.join(", ")
                ),
            )
        })?;
    Ok((server, base))
}

/// `PUT /api/v1/org/models/{model}`: `multipart/form-data` with the parts `manifest` (the
/// TOML manifest), `model` (the ONNX file) and optionally `card` (the model card,
/// Markdown) uploads a version and puts it in use; `application/json`
/// `{"version": "..."}` puts an uploaded version (or the server's default) in use.
/// Admins only; audited.
pub async fn put(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<Json<Value>> {
    auth.require(Right::Admin)?;
    let (server, base) = server_model(&state, &name)?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let bytes = axum::body::to_bytes(request.into_body(), 64 * 1024)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request: {e}")))?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Select {
            version: String,
        }
        let select: Select = serde_json::from_slice(&bytes).map_err(|e| {
            unprocessable(format!(
                "expected {{\"version\": \"...\"}} naming an uploaded version or the server's: {e}"
            ))
        })?;
        return select_version(&state, &auth, &server, &base, &select.version).await;
    }
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data with the parts manifest (TOML), model (ONNX) and optionally card (Markdown), or application/json {\"version\": \"...\"} to choose an uploaded version",
        ));
    }
    let multipart = <Multipart as axum::extract::FromRequest<()>>::from_request(request, &())
        .await
        .map_err(|e| {
            ApiError::bad_request(format!("expected multipart/form-data: {}", e.body_text()))
        })?;
    upload(&state, &auth, &server, &base, multipart).await
}

/// A scratch folder in the data folder, removed on drop.
struct Spool {
    dir: PathBuf,
}

impl Spool {
    fn new(state: &AppState) -> ApiResult<Spool> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = state.data_dir().join("scratch").join(format!(
            "model-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| {
            ApiError::internal(format!(
                "cannot create the scratch folder {}: {e}",
                dir.display()
            ))
        })?;
        Ok(Spool { dir })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn upload(
    state: &AppState,
    auth: &Auth,
    server: &[(PathBuf, Manifest)],
    base: &Manifest,
    mut multipart: Multipart,
) -> ApiResult<Json<Value>> {
    let spool = Spool::new(state)?;
    let (mut manifest_text, mut card, mut model_bytes) = (None, None, None::<u64>);
    let model_path = spool.dir.join("model.onnx");
    let max_model = state.config().limits.max_register_bytes;
    let mut hasher = Sha256::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("the form is broken: {}", e.body_text())))?
    {
        let part = field.name().unwrap_or("").to_string();
        match part.as_str() {
            "manifest" | "card" => {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| {
                    ApiError::bad_request(format!("the {part} part is broken: {}", e.body_text()))
                })? {
                    text.extend_from_slice(&chunk);
                    if text.len() > MAX_TEXT_PART {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("the {part} part is over {MAX_TEXT_PART} bytes"),
                        ));
                    }
                }
                let text = String::from_utf8(text)
                    .map_err(|_| unprocessable(format!("the {part} part is not UTF-8 text")))?;
                if part == "manifest" {
                    manifest_text = Some(text);
                } else {
                    card = Some(text);
                }
            }
            "model" => {
                use tokio::io::AsyncWriteExt;
                let mut file = tokio::fs::File::create(&model_path).await.map_err(|e| {
                    ApiError::internal(format!("cannot write {}: {e}", model_path.display()))
                })?;
                let mut n = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(|e| {
                    ApiError::bad_request(format!("the model part is broken: {}", e.body_text()))
                })? {
                    n += chunk.len() as u64;
                    if n > max_model as u64 {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("the model is over {max_model} bytes"),
                        ));
                    }
                    hasher.update(&chunk);
                    file.write_all(&chunk).await.map_err(|e| {
                        ApiError::new(
                            StatusCode::INSUFFICIENT_STORAGE,
                            format!("cannot store the model: {e}"),
                        )
                    })?;
                }
                file.flush().await.map_err(|e| {
                    ApiError::internal(format!("cannot write {}: {e}", model_path.display()))
                })?;
                model_bytes = Some(n);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown part {other:?}: send manifest (TOML), model (ONNX) and optionally card (Markdown)"
                )))
            }
        }
    }
    let (Some(manifest_text), Some(bytes)) = (manifest_text, model_bytes) else {
        return Err(ApiError::bad_request(
            "the upload needs two parts: manifest (the model's TOML manifest) and model (its ONNX file)",
        ));
    };
    let sha256: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // A version uploaded before with other weights: refused before the slow checks.
    if let Ok(m) = Manifest::parse(&manifest_text) {
        let index = read_index(state, auth.org_id()).await?;
        if let Some(existing) = index
            .models
            .iter()
            .find(|o| o.name == base.name && o.version == m.version && o.sha256 != sha256)
        {
            return Err(conflict(
                &existing.name,
                &existing.version,
                &existing.sha256,
            ));
        }
    }
    let checked = {
        let (base, dir) = (base.clone(), spool.dir.clone());
        tokio::task::spawn_blocking(move || check_upload(&base, &manifest_text, &dir))
            .await
            .map_err(|e| ApiError::internal(format!("checking the model crashed: {e}")))?
    };
    let manifest = checked.map_err(|reason| {
        unprocessable(format!(
            "model {} not changed: {}",
            base.name,
            crate::jobs::scrub_paths(
                &reason.replace(&format!("{}/", spool.dir.display()), "the upload's "),
                state.config()
            )
        ))
    })?;
    if let Some(card) = &card {
        tokio::fs::write(spool.dir.join("card.md"), card)
            .await
            .map_err(|e| ApiError::internal(format!("cannot write the model card: {e}")))?;
    }

    let _lock = INDEX_LOCK.lock().await;
    let org = auth.org_id();
    let mut index = read_index(state, org).await?;
    if let Some(existing) = index
        .models
        .iter()
        .find(|o| o.name == base.name && o.version == manifest.version)
    {
        if existing.sha256 != sha256 {
            return Err(conflict(
                &existing.name,
                &existing.version,
                &existing.sha256,
            ));
        }
    } else {
        let dir = format!("orgs/{org}/models/{}/{}", base.name, manifest.version);
        let mut files = vec!["manifest.toml", "model.onnx"];
        if card.is_some() {
            files.push("card.md");
        }
        for file in files {
            state
                .storage()
                .put_file(&format!("{dir}/{file}"), &spool.dir.join(file))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        index.models.push(OrgModel {
            name: base.name.clone(),
            version: manifest.version.clone(),
            dir,
            sha256: sha256.clone(),
            bytes,
            uploaded_at: now(),
            uploaded_by: format!("{} {}", auth.0.role.as_str(), auth.0.token),
            active: false,
        });
    }
    for o in index.models.iter_mut().filter(|o| o.name == base.name) {
        o.active = o.version == manifest.version;
    }
    write_index(state, org, &index).await?;
    crate::audit::record(
        state,
        auth,
        "org.model.uploaded",
        &format!(
            "{} {} in use ({bytes} bytes, sha256 {}{})",
            base.name,
            manifest.version,
            &sha256[..12],
            if card.is_some() {
                ", with a model card"
            } else {
                ""
            }
        ),
    );
    Ok(Json(one(server, &index, &base.name)))
}

fn conflict(name: &str, version: &str, sha256: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "version {version} of {name} was uploaded before with other weights (sha256 {sha256}); give the new model a version of its own"
        ),
    )
}

async fn select_version(
    state: &AppState,
    auth: &Auth,
    server: &[(PathBuf, Manifest)],
    base: &Manifest,
    version: &str,
) -> ApiResult<Json<Value>> {
    let _lock = INDEX_LOCK.lock().await;
    let org = auth.org_id();
    let mut index = read_index(state, org).await?;
    let is_default = version == base.version;
    if !is_default
        && !index
            .models
            .iter()
            .any(|o| o.name == base.name && o.version == version)
    {
        let uploaded: Vec<&str> = index
            .models
            .iter()
            .filter(|o| o.name == base.name)
            .map(|o| o.version.as_str())
            .collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no version {version:?} of {}: the server's is {}, uploaded: [{}]",
                base.name,
                base.version,
                uploaded.join(", ")
            ),
        ));
    }
    for o in index.models.iter_mut().filter(|o| o.name == base.name) {
        o.active = !is_default && o.version == version;
    }
    write_index(state, org, &index).await?;
    crate::audit::record(
        state,
        auth,
        "org.model.selected",
        &format!(
            "{} {version} in use{}",
            base.name,
            if is_default { " (the server's)" } else { "" }
        ),
    );
    Ok(Json(one(server, &index, &base.name)))
}

/// `DELETE /api/v1/org/models/{model}`: the organisation's jobs use the server's version
/// again (uploaded versions are kept and can be chosen again). Admins only; audited.
pub async fn reset(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require(Right::Admin)?;
    let (server, base) = server_model(&state, &name)?;
    let version = base.version.clone();
    select_version(&state, &auth, &server, &base, &version).await
}

/// The models folder of one job attempt: the server's, or, when the organisation uses
/// versions of its own, a scratch folder of manifests (removed on drop) naming the
/// server's ONNX files in place and the organisation's versions instead of theirs.
pub(crate) struct JobModels {
    pub dir: PathBuf,
    scratch: Option<PathBuf>,
}

impl Drop for JobModels {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A manifest copied to `dest` with its `model` key pointing at `model` (absolute).
fn write_manifest(src: &FsPath, model: &FsPath, dest: &FsPath) -> Result<(), String> {
    let text =
        std::fs::read_to_string(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| format!("cannot read the manifest {}: {e}", src.display()))?;
    table.insert(
        "model".into(),
        toml::Value::String(model.display().to_string()),
    );
    let out = toml::to_string(&table).map_err(|e| format!("cannot write a manifest: {e}"))?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(dest, out).map_err(|e| format!("cannot write {}: {e}", dest.display()))
}

/// The models folder for job `job_id`'s attempt `attempt` of organisation `org`.
pub(crate) fn job_models(
    state: &AppState,
    org: i64,
    job_id: i64,
    attempt: i64,
) -> Result<JobModels, String> {
    let models_dir = state.config().models_dir.clone();
    let storage = state.storage();
    let scratch = state
        .data_dir()
        .join("scratch")
        .join(format!("models-{job_id}-{attempt}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let key = index_key(org);
    let index: Index = if storage
        .exists_blocking(&key)
        .map_err(|e| format!("cannot read the organisation's model index: {e}"))?
    {
        let local = scratch.join("index.json");
        storage
            .get_file_blocking(&key, &local)
            .map_err(|e| format!("cannot read the organisation's model index: {e}"))?;
        let text =
            std::fs::read(&local).map_err(|e| format!("cannot read {}: {e}", local.display()))?;
        serde_json::from_slice(&text)
            .map_err(|e| format!("the organisation's model index {key} is damaged: {e}"))?
    } else {
        Index::default()
    };
    let active: Vec<&OrgModel> = index.models.iter().filter(|o| o.active).collect();
    let server = server_models(&models_dir);
    if !active
        .iter()
        .any(|o| server.iter().any(|(_, m)| m.name == o.name))
    {
        let _ = std::fs::remove_dir_all(&scratch);
        return Ok(JobModels {
            dir: models_dir,
            scratch: None,
        });
    }
    let guard = JobModels {
        dir: scratch.join("models"),
        scratch: Some(scratch.clone()),
    };
    let dir = &guard.dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let evidence = models_dir.join("evidence.toml");
    if evidence.is_file() {
        std::fs::copy(&evidence, dir.join("evidence.toml"))
            .map_err(|e| format!("cannot copy {}: {e}", evidence.display()))?;
    }
    for (i, (path, m)) in server.iter().enumerate() {
        let dest = dir.join(format!("{i:02}-{}", m.name)).join("manifest.toml");
        match active.iter().find(|o| o.name == m.name) {
            None => write_manifest(path, &m.model_path(), &dest)?,
            Some(o) => {
                let fetched = scratch.join("org").join(&o.name);
                let manifest = fetched.join("manifest.toml");
                storage
                    .get_file_blocking(&format!("{}/manifest.toml", o.dir), &manifest)
                    .map_err(|e| {
                        format!(
                            "cannot fetch the organisation's model {} {}: {e}",
                            o.name, o.version
                        )
                    })?;
                let model = match storage.local_dir() {
                    Some(root) => root.join(&o.dir).join("model.onnx"),
                    None => {
                        let local = fetched.join("model.onnx");
                        storage
                            .get_file_blocking(&format!("{}/model.onnx", o.dir), &local)
                            .map_err(|e| {
                                format!(
                                    "cannot fetch the organisation's model {} {}: {e}",
                                    o.name, o.version
                                )
                            })?;
                        local
                    }
                };
                write_manifest(&manifest, &model, &dest)?;
            }
        }
    }
    Ok(guard)
}

/// The paths' OpenAPI description.
pub fn openapi_paths() -> Value {
    let entry = json!({"type": "object", "properties": {
        "name": {"type": "string"}, "task": {"type": "string"},
        "classes": {"type": "array", "items": {"type": "string"}},
        "default_version": {"type": "string", "description": "the server's version"},
        "version": {"type": "string", "description": "the version this organisation's jobs use"},
        "source": {"type": "string", "enum": ["default", "organisation"]},
        "uploaded": {"type": "array", "items": {"type": "object", "properties": {
            "version": {"type": "string"}, "sha256": {"type": "string"}, "bytes": {"type": "integer"},
            "uploaded_at": {"type": "integer"}, "uploaded_by": {"type": "string"}, "active": {"type": "boolean"}}}}
    }});
    let one = json!({"description": "the model as the organisation now uses it", "content": {"application/json": {"schema": entry.clone()}}});
    json!({
        "/org/models": {"get": {
            "summary": "The server's models, the version this organisation's jobs use and the versions it uploaded",
            "description": "Roles: viewer, planner, admin.", "security": [{"bearer": []}],
            "responses": {"200": {"description": "the models", "content": {"application/json": {"schema":
                {"type": "object", "properties": {"models": {"type": "array", "items": entry}}}}}}}}},
        "/org/models/{model}": {
            "put": {
                "summary": "Upload a version of one of the server's models for this organisation (multipart: manifest, model, card), or choose an uploaded version (JSON {\"version\"}); written to the audit log",
                "description": "Roles: admin. The upload must load in ONNX Runtime, run one tile, and have the server model's input, output and classes; otherwise 422 and the version in use stays.",
                "security": [{"bearer": []}],
                "parameters": [{"name": "model", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {
                    "multipart/form-data": {"schema": {"type": "object", "required": ["manifest", "model"], "properties": {
                        "manifest": {"type": "string", "description": "the TOML manifest (name = the model's, a version of its own)"},
                        "model": {"type": "string", "format": "binary", "description": "the ONNX file"},
                        "card": {"type": "string", "description": "the model card (Markdown)"}}}},
                    "application/json": {"schema": {"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}}}},
                "responses": {"200": one.clone(), "400": {"description": "a broken or incomplete form"},
                    "404": {"description": "no such model on the server, or no such uploaded version"},
                    "409": {"description": "the version was uploaded before with other weights"},
                    "415": {"description": "neither multipart nor JSON"},
                    "422": {"description": "the model was refused (the reason says why); nothing changed"}}},
            "delete": {
                "summary": "Use the server's version of the model again (uploaded versions are kept); written to the audit log",
                "description": "Roles: admin.", "security": [{"bearer": []}],
                "parameters": [{"name": "model", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": one, "404": {"description": "no such model on the server"}}}
        }
    })
}
