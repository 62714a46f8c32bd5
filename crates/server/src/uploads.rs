//! Photo uploads: the tus 1.0 resumable protocol (core, creation, termination, checksum)
//! and plain multipart for small batches; both end in [`ingest_file`], which hashes,
//! checks and stores one photo, or rejects it with a reason.
//!
//! A tus upload's offset is the size of its part file on disk, not a number in the
//! database: bytes are appended as they arrive, so when the connection drops mid-PATCH
//! (or the server is killed) the next HEAD reports exactly what was kept. A PATCH with an
//! `Upload-Checksum` is written to a side file first and appended only once it matches.

// tus answers carry protocol headers, so helpers return finished responses as errors;
// they are rare paths and a boxed response would only add noise.
#![allow(clippy::result_large_err)]

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::flights::find_flight;
use crate::tus_headers::{parse_checksum, parse_u64, safe_name, ChecksumAlgorithm, TUS_CHECKSUMS};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use besikta_store::{Photo, PhotoAdded, RejectedPhoto, Upload};
use futures_util::StreamExt;
use serde_json::json;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;

const TUS_VERSION: &str = "1.0.0";
const TUS_EXTENSIONS: &str = "creation,termination,checksum,expiration";

/// Uploads with a PATCH in flight; a second concurrent PATCH of the same upload is refused
/// (423) rather than interleaving bytes.
#[derive(Debug, Default)]
pub struct ActiveUploads(Mutex<HashSet<String>>);

struct ActiveGuard<'a> {
    set: &'a ActiveUploads,
    id: String,
}

impl ActiveUploads {
    fn enter(&self, id: &str) -> Option<ActiveGuard<'_>> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(id.to_string()).then(|| ActiveGuard {
            set: self,
            id: id.to_string(),
        })
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        // Runs also when the connection drops and the handler's future is cancelled.
        self.set
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// What happened to one uploaded file.
#[derive(Debug)]
pub enum Ingested {
    Stored(Photo),
    Duplicate(Photo),
}

/// Why one file was refused; the server goes on.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub reason: String,
}

fn refused(status: StatusCode, reason: impl Into<String>) -> Refused {
    Refused {
        status,
        reason: reason.into(),
    }
}

fn io_refusal(what: &str, e: &std::io::Error) -> Refused {
    if e.kind() == std::io::ErrorKind::StorageFull {
        refused(
            StatusCode::INSUFFICIENT_STORAGE,
            "the server's disk is full; nothing was stored, try again later",
        )
    } else {
        refused(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &FsPath) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Turns a fully received file into a photo of the flight (blocking: hashes and reads the
/// image header). The part file is moved into place or deleted; a refusal is recorded on
/// the flight so the crew sees it beside the pipeline's rejections.
pub fn ingest_file(
    state: &AppState,
    org_id: i64,
    flight_id: i64,
    file_name: &str,
    part: &FsPath,
) -> Result<Ingested, Refused> {
    let result = ingest_inner(state, org_id, flight_id, file_name, part);
    if let Err(r) = &result {
        let _ = std::fs::remove_file(part);
        let _ = state.store().add_upload_rejection(
            flight_id,
            &RejectedPhoto {
                file: safe_name(file_name),
                reason: r.reason.clone(),
            },
        );
    }
    result
}

fn ingest_inner(
    state: &AppState,
    org_id: i64,
    flight_id: i64,
    file_name: &str,
    part: &FsPath,
) -> Result<Ingested, Refused> {
    let limits = &state.config().limits;
    let (sha256, size) =
        sha256_file(part).map_err(|e| io_refusal("cannot read the received file", &e))?;
    if size == 0 {
        return Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the file is empty",
        ));
    }
    if size > limits.max_photo_bytes {
        return Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the file is {size} bytes; the limit is {} bytes",
                limits.max_photo_bytes
            ),
        ));
    }
    let store = state.store();
    let internal =
        |e: besikta_store::StoreError| refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    if let Some(existing) = store
        .photo_by_sha256(flight_id, &sha256)
        .map_err(internal)?
    {
        if crate::objects::photo_present(state, &existing.path) {
            let _ = std::fs::remove_file(part);
            return Ok(Ingested::Duplicate(existing));
        }
    }
    // What the file is, when it is no JPEG, in the crew's words; then its metadata as the
    // pipeline's ingest reads it (no pixels decoded), under this server's limits: a photo
    // the pipeline would reject (no GPS, GPS 0,0, camera above the horizon, cut short,
    // too many pixels) is told now, not after processing.
    jpeg_size(part)?;
    let options = besikta_ingest::ScanOptions {
        read: besikta_ingest::ReadOptions {
            max_pixels: limits.max_photo_pixels,
        },
        max_photo_bytes: limits.max_photo_bytes,
        ..besikta_ingest::ScanOptions::default()
    };
    if let Err(e) = besikta_ingest::read_capture_with(part, &options) {
        let status = match e.problem {
            besikta_ingest::Problem::TooLarge { .. }
            | besikta_ingest::Problem::TooManyPixels { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        return Err(refused(status, e.reason()));
    }
    // The row is recorded first (which settles the name), then the file moves to the
    // row's path: two uploads named alike can never write over each other's photo.
    let dir = format!("flights/{flight_id}/photos");
    let abs_dir = state.data_dir().join(&dir);
    std::fs::create_dir_all(&abs_dir)
        .map_err(|e| io_refusal("cannot create the flight's photo folder", &e))?;
    // The organisation's quota, checked and the row added in one transaction of the
    // database (`quota::add_photo`), so no other upload, in any process, takes the room.
    let name = safe_name(file_name);
    let photo = crate::quota::NewPhoto {
        flight_id,
        name: &name,
        sha256: &sha256,
        size,
        dir: &dir,
    };
    let added =
        crate::quota::add_photo(state, org_id, photo).map_err(|q| refused(q.status, q.reason))?;
    match added {
        PhotoAdded::New(p) => {
            if let Err(e) = std::fs::rename(part, state.data_dir().join(&p.path)) {
                let _ = store.delete_photo(p.id);
                return Err(io_refusal("cannot move the photo into place", &e));
            }
            // With an object store the photo goes there now (streamed in parts).
            if let Err(e) = crate::objects::publish_photo(state, &p.path) {
                let _ = std::fs::remove_file(state.data_dir().join(&p.path));
                let _ = store.delete_photo(p.id);
                return Err(refused(StatusCode::SERVICE_UNAVAILABLE, e));
            }
            Ok(Ingested::Stored(p))
        }
        PhotoAdded::Duplicate(p) => {
            let dest = state.data_dir().join(&p.path);
            // A server killed between recording a photo and moving it left the row
            // without its file: these bytes are that photo, so they complete it. (An
            // identical upload finishing at the same moment may be just about to move
            // its own copy there; either copy is the same photo.)
            if crate::objects::photo_present(state, &p.path)
                || std::fs::rename(part, &dest).is_err()
            {
                let _ = std::fs::remove_file(part);
            } else if let Err(e) = crate::objects::publish_photo(state, &p.path) {
                return Err(refused(StatusCode::SERVICE_UNAVAILABLE, e));
            }
            Ok(Ingested::Duplicate(p))
        }
    }
}

/// What a file that is not a JPEG holds, in words a crew knows, from its first bytes.
fn describe_start(head: &[u8]) -> &'static str {
    let at = |i: usize, sig: &[u8]| head.get(i..i + sig.len()) == Some(sig);
    if head.is_empty() {
        "nothing"
    } else if at(0, b"\x89PNG") {
        "a PNG image (a screenshot or an edited picture)"
    } else if at(0, b"II*\0") || at(0, b"MM\0*") {
        "a TIFF image (orthophotos are processed with `besikta process`, not uploaded)"
    } else if at(4, b"ftypheic") || at(4, b"ftypheix") || at(4, b"ftypmif1") {
        "a HEIC photo (a phone's format; export it as JPEG)"
    } else if at(4, b"ftyp") {
        "a video"
    } else if at(0, b"%PDF") {
        "a PDF document"
    } else if at(0, b"PK\x03\x04") {
        "a ZIP archive (unpack it and upload the photos inside)"
    } else if at(0, b"GIF8") || (at(0, b"RIFF") && at(8, b"WEBP")) {
        "a web image (GIF or WebP)"
    } else if std::str::from_utf8(head)
        .is_ok_and(|t| t.chars().all(|c| !c.is_control() || c.is_whitespace()))
    {
        "text"
    } else {
        "data of an unknown kind"
    }
}

/// The pixel size from a JPEG's frame header, without decoding pixels; anything else is
/// refused saying what the file is instead.
fn jpeg_size(part: &FsPath) -> Result<(u32, u32), Refused> {
    use image::ImageDecoder as _;
    let mut file =
        std::fs::File::open(part).map_err(|e| io_refusal("cannot read the received file", &e))?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(io_refusal("cannot read the received file", &e)),
        }
    }
    let head = &head[..n];
    if !head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        // A text file cut at 64 bytes may end inside a character: judge what is whole.
        let text_end = match std::str::from_utf8(head) {
            Ok(_) => head.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => head.len(),
        };
        return Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "not a JPEG photo: the file holds {}; upload the JPEG photos as they came from the drone's memory card",
                describe_start(&head[..text_end])
            ),
        ));
    }
    let file =
        std::fs::File::open(part).map_err(|e| io_refusal("cannot read the received file", &e))?;
    let decoder = image::codecs::jpeg::JpegDecoder::new(std::io::BufReader::new(file)).map_err(|_| {
        refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the JPEG photo is damaged: its header cannot be read (cut short or corrupt while copying); copy the photo again from the drone's memory card",
        )
    })?;
    Ok(decoder.dimensions())
}

fn ingested_json(file: &str, result: &Result<Ingested, Refused>) -> serde_json::Value {
    match result {
        Ok(Ingested::Stored(p)) => {
            json!({"file": file, "status": "stored", "name": p.name, "sha256": p.sha256, "size": p.size})
        }
        Ok(Ingested::Duplicate(p)) => {
            json!({"file": file, "status": "duplicate", "name": p.name, "sha256": p.sha256, "size": p.size})
        }
        Err(r) => json!({"file": file, "status": "rejected", "reason": r.reason}),
    }
}

async fn ingest_async(
    state: &AppState,
    org_id: i64,
    flight_id: i64,
    file_name: String,
    part: PathBuf,
) -> Result<Ingested, Refused> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || ingest_file(&state, org_id, flight_id, &file_name, &part))
        .await
        .unwrap_or_else(|e| {
            Err(refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the photo check crashed: {e}"),
            ))
        })
}

fn random_id() -> ApiResult<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(hex(&bytes))
}

fn part_path(state: &AppState, upload_id: &str) -> PathBuf {
    state
        .data_dir()
        .join("uploads")
        .join(format!("{upload_id}.part"))
}

fn tus_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn tus_error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut r = ApiError::new(status, message).into_response();
    r.headers_mut().extend(tus_headers());
    r
}

fn check_version(headers: &HeaderMap) -> Result<(), Response> {
    match header_str(headers, "tus-resumable") {
        Some(TUS_VERSION) => Ok(()),
        _ => {
            let mut r = tus_error(
                StatusCode::PRECONDITION_FAILED,
                "this server speaks tus 1.0.0 (send Tus-Resumable: 1.0.0)",
            );
            r.headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
            Err(r)
        }
    }
}

fn u64_header(headers: &HeaderMap, name: &str) -> Result<u64, Response> {
    header_str(headers, name)
        .and_then(parse_u64)
        .ok_or_else(|| {
            tus_error(
                StatusCode::BAD_REQUEST,
                format!("missing or malformed {name} header"),
            )
        })
}

/// `Upload-Metadata: key base64,key2 base64`.
fn metadata_value(headers: &HeaderMap, key: &str) -> Option<String> {
    crate::tus_headers::metadata_value(header_str(headers, "upload-metadata")?, key)
}

fn api(e: ApiError) -> Response {
    let mut r = e.into_response();
    r.headers_mut().extend(tus_headers());
    r
}

pub async fn tus_options(State(state): State<AppState>) -> Response {
    let mut h = tus_headers();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(TUS_CHECKSUMS),
    );
    h.insert(
        "tus-max-size",
        HeaderValue::from(state.config().limits.max_photo_bytes),
    );
    (StatusCode::NO_CONTENT, h).into_response()
}

pub async fn tus_create(
    State(state): State<AppState>,
    auth: Auth,
    Path(flight_id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    tus_create_inner(state, auth, flight_id, headers)
        .await
        .unwrap_or_else(|r| r)
}

async fn tus_create_inner(
    state: AppState,
    auth: Auth,
    flight_id: i64,
    headers: HeaderMap,
) -> Result<Response, Response> {
    auth.require(Right::Upload).map_err(api)?;
    find_flight(&state, &auth, flight_id).map_err(api)?;
    check_version(&headers)?;
    if headers.contains_key("upload-defer-length") {
        return Err(tus_error(
            StatusCode::BAD_REQUEST,
            "deferred length is not supported: send Upload-Length",
        ));
    }
    let length = u64_header(&headers, "upload-length")?;
    let max = state.config().limits.max_photo_bytes;
    if length > max {
        return Err(tus_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the file is {length} bytes; the limit is {max} bytes"),
        ));
    }
    // Refused before any byte is sent when the photo would not fit the quota.
    crate::quota::check(&state, auth.org_id(), 1, length)
        .map_err(|q| tus_error(q.status, q.reason))?;
    let file_name = metadata_value(&headers, "filename")
        .or_else(|| metadata_value(&headers, "name"))
        .unwrap_or_else(|| "photo.jpg".into());
    let id = random_id().map_err(api)?;
    let upload = Upload {
        id: id.clone(),
        org_id: auth.org_id(),
        flight_id,
        length,
        file_name,
        complete: false,
        created_at: besikta_store::time::now(),
    };
    expire_abandoned(&state).await;
    tokio::fs::File::create(part_path(&state, &id))
        .await
        .map_err(|e| {
            api(ApiError::new(
                io_refusal("cannot create the upload", &e).status,
                e.to_string(),
            ))
        })?;
    state
        .store()
        .create_upload(&upload)
        .map_err(|e| api(e.into()))?;
    let mut h = tus_headers();
    let location = format!("/api/v1/flights/{flight_id}/uploads/{id}");
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| api(ApiError::internal(e.to_string())))?,
    );
    h.insert("upload-offset", HeaderValue::from(0u64));
    insert_expires(&mut h, &state, &upload);
    if length == 0 {
        // Nothing will ever be PATCHed; settle it now so the crew sees the rejection.
        let result = finish(&state, &upload).await;
        return Ok(finished_response(h, 0, result, StatusCode::CREATED));
    }
    Ok((StatusCode::CREATED, h).into_response())
}

/// `Upload-Expires`: when an unfinished upload and its bytes will be removed.
fn insert_expires(h: &mut HeaderMap, state: &AppState, upload: &Upload) {
    let at = upload.created_at + state.config().limits.upload_lifetime_secs;
    if let Ok(v) = HeaderValue::from_str(&besikta_store::time::format_http_date(at)) {
        h.insert("upload-expires", v);
    }
}

/// Removes uploads left unfinished past their lifetime, rows and bytes (run at each
/// creation and at start, so abandoned parts never pile up).
pub async fn expire_abandoned(state: &AppState) {
    let before = besikta_store::time::now() - state.config().limits.upload_lifetime_secs;
    match state.store().expire_uploads(before) {
        Ok(ids) => {
            for id in ids {
                let part = part_path(state, &id);
                let _ = tokio::fs::remove_file(&part).await;
                let _ = tokio::fs::remove_file(part.with_extension("chunk")).await;
            }
        }
        Err(e) => eprintln!("besikta: cannot expire abandoned uploads: {e}"),
    }
}

fn find_upload(
    state: &AppState,
    auth: &Auth,
    flight_id: i64,
    id: &str,
) -> Result<Upload, Response> {
    auth.require(Right::Upload).map_err(api)?;
    find_flight(state, auth, flight_id).map_err(api)?;
    state
        .store()
        .upload(auth.org_id(), flight_id, id)
        .map_err(|e| api(e.into()))?
        .ok_or_else(|| {
            tus_error(
                StatusCode::NOT_FOUND,
                "upload not found (finished uploads are forgotten)",
            )
        })
}

async fn current_offset(state: &AppState, upload: &Upload) -> u64 {
    if upload.complete {
        return upload.length;
    }
    tokio::fs::metadata(part_path(state, &upload.id))
        .await
        .map(|m| m.len())
        .unwrap_or(0)
}

pub async fn tus_head(
    State(state): State<AppState>,
    auth: Auth,
    Path((flight_id, id)): Path<(i64, String)>,
) -> Response {
    let upload = match find_upload(&state, &auth, flight_id, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let offset = current_offset(&state, &upload).await;
    let mut h = tus_headers();
    h.insert("upload-offset", HeaderValue::from(offset));
    h.insert("upload-length", HeaderValue::from(upload.length));
    insert_expires(&mut h, &state, &upload);
    (StatusCode::OK, h).into_response()
}

pub async fn tus_delete(
    State(state): State<AppState>,
    auth: Auth,
    Path((flight_id, id)): Path<(i64, String)>,
) -> Response {
    let upload = match find_upload(&state, &auth, flight_id, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(_guard) = state.inner.uploads.enter(&upload.id) else {
        return tus_error(
            StatusCode::LOCKED,
            "the upload is receiving data; try again",
        );
    };
    let _ = tokio::fs::remove_file(part_path(&state, &upload.id)).await;
    if let Err(e) = state.store().delete_upload(&upload.id) {
        return api(e.into());
    }
    (StatusCode::NO_CONTENT, tus_headers()).into_response()
}

enum Checksum {
    Sha1(Sha1, Vec<u8>),
    Sha256(Sha256, Vec<u8>),
}

impl Checksum {
    fn parse(value: &str) -> Result<Checksum, Response> {
        let (algorithm, digest) =
            parse_checksum(value).map_err(|m| tus_error(StatusCode::BAD_REQUEST, m))?;
        Ok(match algorithm {
            ChecksumAlgorithm::Sha1 => Checksum::Sha1(Sha1::new(), digest),
            ChecksumAlgorithm::Sha256 => Checksum::Sha256(Sha256::new(), digest),
        })
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Checksum::Sha1(h, _) => h.update(bytes),
            Checksum::Sha256(h, _) => h.update(bytes),
        }
    }

    fn matches(self) -> bool {
        match self {
            Checksum::Sha1(h, want) => h.finalize().as_slice() == want.as_slice(),
            Checksum::Sha256(h, want) => h.finalize().as_slice() == want.as_slice(),
        }
    }
}

pub async fn tus_patch(
    State(state): State<AppState>,
    auth: Auth,
    Path((flight_id, id)): Path<(i64, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    tus_patch_inner(state, auth, flight_id, id, headers, body)
        .await
        .unwrap_or_else(|r| r)
}

async fn tus_patch_inner(
    state: AppState,
    auth: Auth,
    flight_id: i64,
    id: String,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let upload = find_upload(&state, &auth, flight_id, &id)?;
    check_version(&headers)?;
    if header_str(&headers, "content-type") != Some("application/offset+octet-stream") {
        return Err(tus_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "PATCH needs Content-Type: application/offset+octet-stream",
        ));
    }
    let client_offset = u64_header(&headers, "upload-offset")?;
    let mut checksum = header_str(&headers, "upload-checksum")
        .map(Checksum::parse)
        .transpose()?;
    let Some(_guard) = state.inner.uploads.enter(&upload.id) else {
        return Err(tus_error(
            StatusCode::LOCKED,
            "another request is writing this upload; try again",
        ));
    };
    let offset = current_offset(&state, &upload).await;
    if client_offset != offset {
        let mut r = tus_error(
            StatusCode::CONFLICT,
            format!("Upload-Offset {client_offset} does not match the {offset} bytes received"),
        );
        r.headers_mut()
            .insert("upload-offset", HeaderValue::from(offset));
        return Err(r);
    }
    // Bytes past the declared length are refused whole, never partly kept: keeping the
    // part up to the length would read as "done" to a tus client, with no photo made.
    let too_long = |offset: u64| {
        let mut r = tus_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "more bytes than the declared Upload-Length of {}; nothing of this request was kept, resume from Upload-Offset {offset}",
                upload.length
            ),
        );
        r.headers_mut()
            .insert("upload-offset", HeaderValue::from(offset));
        r
    };
    if let Some(declared) =
        header_str(&headers, "content-length").and_then(|v| v.parse::<u64>().ok())
    {
        if offset.saturating_add(declared) > upload.length {
            return Err(too_long(offset));
        }
    }
    let part = part_path(&state, &upload.id);
    // With a checksum the bytes go to a side file and join the upload only once verified.
    let target = if checksum.is_some() {
        part.with_extension("chunk")
    } else {
        part.clone()
    };
    let io_err = |e: std::io::Error| {
        let r = io_refusal("cannot store the received bytes", &e);
        tus_error(r.status, r.reason)
    };
    let mut file = if checksum.is_some() {
        tokio::fs::File::create(&target).await.map_err(io_err)?
    } else {
        tokio::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&target)
            .await
            .map_err(io_err)?
    };
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    let mut broken = false;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(_) => {
                // The client went away mid-body: keep what arrived (tus resumes from it).
                broken = true;
                break;
            }
        };
        if offset + received + chunk.len() as u64 > upload.length {
            drop(file);
            if checksum.is_some() {
                let _ = tokio::fs::remove_file(&target).await;
            } else {
                truncate(&part, offset).await;
            }
            return Err(too_long(offset));
        }
        if let Some(c) = checksum.as_mut() {
            c.update(&chunk);
        }
        if let Err(e) = file.write_all(&chunk).await {
            drop(file);
            if checksum.is_some() {
                let _ = tokio::fs::remove_file(&target).await;
            } else {
                truncate(&part, offset + received).await;
            }
            return Err(io_err(e));
        }
        received += chunk.len() as u64;
    }
    file.flush().await.map_err(io_err)?;
    drop(file);
    if let Some(c) = checksum {
        if broken || !c.matches() {
            let _ = tokio::fs::remove_file(&target).await;
            if broken {
                return Err(tus_error(
                    StatusCode::BAD_REQUEST,
                    "the request body ended early; nothing of it was kept",
                ));
            }
            return Err(tus_error(
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
                "Checksum Mismatch: the bytes received do not match Upload-Checksum; nothing of them was kept",
            ));
        }
        append_file(&target, &part).await.map_err(io_err)?;
        let _ = tokio::fs::remove_file(&target).await;
    }
    let new_offset = current_offset(&state, &upload).await;
    let mut h = tus_headers();
    h.insert("upload-offset", HeaderValue::from(new_offset));
    insert_expires(&mut h, &state, &upload);
    if new_offset == upload.length {
        let result = finish(&state, &upload).await;
        return Ok(finished_response(
            h,
            new_offset,
            result,
            StatusCode::NO_CONTENT,
        ));
    }
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

async fn truncate(path: &FsPath, len: u64) {
    if let Ok(f) = tokio::fs::OpenOptions::new().write(true).open(path).await {
        let _ = f.set_len(len).await;
    }
}

async fn append_file(from: &FsPath, to: &FsPath) -> std::io::Result<()> {
    let mut src = tokio::fs::File::open(from).await?;
    let mut dst = tokio::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(to)
        .await?;
    tokio::io::copy(&mut src, &mut dst).await?;
    dst.flush().await
}

/// All bytes are in: turn the part file into a photo and forget the upload.
async fn finish(state: &AppState, upload: &Upload) -> Result<Ingested, Refused> {
    let result = ingest_async(
        state,
        upload.org_id,
        upload.flight_id,
        upload.file_name.clone(),
        part_path(state, &upload.id),
    )
    .await;
    // The row goes either way: a stored photo is found by its hash, a refused one is
    // listed on the flight; a HEAD after this answers 404, and clients start over.
    let _ = state.store().delete_upload(&upload.id);
    result
}

/// At start: stores every upload whose bytes all arrived before the previous process was
/// killed (tus clients take offset = length as done and would never send it again), and
/// removes side files no request is writing any more: checksum chunks of a cut PATCH and
/// multipart files of a cut batch, and unfinished uploads past their lifetime. Returns how
/// many uploads were finished.
pub fn finish_interrupted(state: &AppState) -> usize {
    let uploads_dir = state.data_dir().join("uploads");
    if let Ok(entries) = std::fs::read_dir(&uploads_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let ext = path.extension().and_then(|e| e.to_str());
            if matches!(ext, Some("chunk" | "multipart")) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let uploads = match state.store().open_uploads() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("besikta: cannot list interrupted uploads: {e}");
            return 0;
        }
    };
    let mut finished = 0;
    for upload in uploads {
        let part = part_path(state, &upload.id);
        let Ok(meta) = std::fs::metadata(&part) else {
            // No bytes and no file: nothing to resume from.
            let _ = state.store().delete_upload(&upload.id);
            continue;
        };
        if meta.len() != upload.length {
            continue;
        }
        let result = ingest_file(
            state,
            upload.org_id,
            upload.flight_id,
            &upload.file_name,
            &part,
        );
        let _ = state.store().delete_upload(&upload.id);
        if let Err(r) = result {
            eprintln!(
                "besikta: interrupted upload {} of flight {} refused: {}",
                safe_name(&upload.file_name),
                upload.flight_id,
                r.reason
            );
        }
        finished += 1;
    }
    // Then what is left unfinished past its lifetime goes (a whole file was stored above).
    let before = besikta_store::time::now() - state.config().limits.upload_lifetime_secs;
    if let Ok(ids) = state.store().expire_uploads(before) {
        for id in ids {
            let _ = std::fs::remove_file(part_path(state, &id));
        }
    }
    finished
}

fn finished_response(
    mut h: HeaderMap,
    offset: u64,
    result: Result<Ingested, Refused>,
    ok: StatusCode,
) -> Response {
    h.insert("upload-offset", HeaderValue::from(offset));
    match result {
        Ok(Ingested::Stored(_)) => {
            h.insert("besikta-photo", HeaderValue::from_static("stored"));
            (ok, h).into_response()
        }
        Ok(Ingested::Duplicate(_)) => {
            h.insert("besikta-photo", HeaderValue::from_static("duplicate"));
            (ok, h).into_response()
        }
        Err(r) => {
            h.insert("besikta-photo", HeaderValue::from_static("rejected"));
            (r.status, h, Json(json!({"error": r.reason}))).into_response()
        }
    }
}

/// `POST /flights/{id}/photos` with `multipart/form-data`: every part with a file name is
/// one photo. Each file is answered on its own; one bad file does not fail the batch.
pub async fn multipart(
    State(state): State<AppState>,
    auth: Auth,
    Path(flight_id): Path<i64>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Response> {
    auth.require(Right::Upload)?;
    find_flight(&state, &auth, flight_id)?;
    // A full quota refuses the request before its bodies are read; a batch that fills it
    // on the way has its later photos refused one by one (see `files`).
    crate::quota::check(&state, auth.org_id(), 1, 0)
        .map_err(|q| ApiError::new(q.status, q.reason))?;
    let mut form = form.map_err(|e| {
        ApiError::bad_request(format!("expected multipart/form-data: {}", e.body_text()))
    })?;
    let max = state.config().limits.max_photo_bytes;
    let mut files: Vec<serde_json::Value> = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                // Photos before the break are stored: say which, so only the rest is sent again.
                let kept: Vec<&str> = files
                    .iter()
                    .filter(|f| matches!(f["status"].as_str(), Some("stored" | "duplicate")))
                    .filter_map(|f| f["file"].as_str())
                    .collect();
                let kept = if kept.is_empty() {
                    "no photo of this request was stored".to_string()
                } else {
                    format!(
                        "these were stored: {}; send the others again",
                        kept.join(", ")
                    )
                };
                let body = json!({
                    "error": format!("the upload broke off ({}); {kept}", e.body_text()),
                    "files": files,
                });
                return Ok((e.status(), Json(body)).into_response());
            }
        };
        let Some(file_name) = field.file_name().map(str::to_string) else {
            continue;
        };
        let part = state
            .data_dir()
            .join("uploads")
            .join(format!("{}.multipart", random_id()?));
        let written = write_field(field, &part, max).await;
        let result = match written {
            Ok(()) => ingest_async(&state, auth.org_id(), flight_id, file_name.clone(), part).await,
            Err(r) => {
                let _ = tokio::fs::remove_file(&part).await;
                let _ = state.store().add_upload_rejection(
                    flight_id,
                    &RejectedPhoto {
                        file: safe_name(&file_name),
                        reason: r.reason.clone(),
                    },
                );
                Err(r)
            }
        };
        files.push(ingested_json(&file_name, &result));
    }
    if files.is_empty() {
        return Err(ApiError::bad_request(
            "the form holds no files (send parts with a filename)",
        ));
    }
    Ok(Json(json!({ "files": files })).into_response())
}

async fn write_field(
    mut field: axum::extract::multipart::Field<'_>,
    path: &FsPath,
    max: u64,
) -> Result<(), Refused> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| io_refusal("cannot store the received file", &e))?;
    let mut size = 0u64;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len() as u64;
                if size > max {
                    return Err(refused(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the file is larger than the limit of {max} bytes"),
                    ));
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| io_refusal("cannot store the received file", &e))?;
            }
            Ok(None) => break,
            Err(e) => {
                return Err(refused(
                    e.status(),
                    format!(
                    "the connection dropped before the whole file arrived ({}); upload it again",
                    e.body_text()
                ),
                ))
            }
        }
    }
    file.flush()
        .await
        .map_err(|e| io_refusal("cannot store the received file", &e))
}
