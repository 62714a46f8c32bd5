//! Findings routes: GeoJSON across flights with filters, a flight's findings and
//! footprints, the photo crop of one finding, work-order status and the exports.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::findings_page::{page_response, Page};
use crate::flights::find_flight;
use crate::jobs::scrub_paths;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use besikta_store::time::{format_rfc3339, parse_timestamp};
use besikta_store::{FindingFilter, FindingRow};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const GEOJSON: &str = "application/geo+json";

/// A stored finding as served: the feature `report::export` writes for the typed finding
/// (as in `findings.geojson`), with the global id and the service's own properties added.
pub(crate) fn feature_of(row: &FindingRow) -> Value {
    let mut finding = row.finding.clone();
    // Rows stored by older versions name photos by their path on the server.
    for o in &mut finding.observations {
        o.photo = basename(&o.photo).to_string();
    }
    let mut feature = besikta_report::export::finding_feature(&finding).unwrap_or_else(|| {
        // An outline too small to write (only possible in rows of older versions).
        json!({"type": "Feature", "geometry": null, "properties": {}})
    });
    feature["id"] = json!(row.id);
    let props = &mut feature["properties"];
    props["finding_id"] = json!(row.id);
    props["flight_id"] = json!(row.flight_id);
    props["flight_finding_id"] = json!(row.finding_id);
    props["status"] = json!(row.status);
    props["created_at"] = json!(format_rfc3339(row.created_at));
    props["photo_url"] = json!(format!("/api/v1/findings/{}/photo.jpg", row.id));
    if let Some(props) = props.as_object_mut() {
        crate::review::add_properties(props, &row.review);
    }
    feature
}

/// The largest page of findings one request may ask for.
const MAX_PAGE: i64 = 5000;

fn list(text: Option<&String>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// Builds the filter from `bbox`, `class`, `severity` and `since` query parameters.
fn filter_from(query: &HashMap<String, String>) -> ApiResult<FindingFilter> {
    let mut filter = FindingFilter {
        classes: list(query.get("class")),
        ..Default::default()
    };
    for s in list(query.get("severity")) {
        filter.severities.push(s.parse().map_err(|_| {
            ApiError::bad_request(format!("unknown severity {s:?}: use low, medium or high"))
        })?);
    }
    if let Some(b) = query.get("bbox") {
        // Every part must be a number: "1,2,x,3,4" is not the area 1,2,3,4.
        let v: Vec<f64> = b
            .split(',')
            .map(|x| x.trim().parse())
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        // NaN compares false with everything, so it would pass the order checks below and
        // match nothing: refuse anything that is not a real longitude and latitude.
        let lon = |x: f64| (-180.0..=180.0).contains(&x);
        let lat = |y: f64| (-90.0..=90.0).contains(&y);
        if v.len() != 4
            || !(lon(v[0]) && lat(v[1]) && lon(v[2]) && lat(v[3]))
            || v[0] > v[2]
            || v[1] > v[3]
        {
            return Err(ApiError::bad_request(format!(
                "bbox {b:?} is not an area: give min_lon,min_lat,max_lon,max_lat in WGS 84 degrees (longitudes -180 to 180, latitudes -90 to 90, minimum first)"
            )));
        }
        filter.bbox = Some([v[0], v[1], v[2], v[3]]);
    }
    let number = |name: &str, range: std::ops::RangeInclusive<i64>| -> ApiResult<Option<i64>> {
        query
            .get(name)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{name} must be a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ))
                    })
            })
            .transpose()
    };
    filter.limit = number("limit", 1..=MAX_PAGE)?;
    filter.reviews = crate::review::review_filter(query)?;
    filter.after_id = number("after", 0..=i64::MAX)?;
    if let Some(s) = query.get("since") {
        filter.since = Some(parse_timestamp(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "since {s:?} is not a real date: use 2026-05-31 or 2026-05-31T12:00:00Z"
            ))
        })?);
    }
    Ok(filter)
}

/// The first 32 hex digits of the SHA-256 of `bytes`.
pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn findings(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    auth.require(Right::Read)?;
    let mut filter = filter_from(&query)?;
    if let Some(f) = query.get("flight") {
        filter.flight_id = Some(
            f.parse()
                .map_err(|_| ApiError::bad_request("flight must be a flight id"))?,
        );
    }
    let page = Page {
        path: "/api/v1/findings.geojson",
        query: &query,
        filter,
    };
    page_response(&state, auth.org_id(), page, &headers)
}

pub async fn flight_findings(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    auth.require(Right::Read)?;
    find_flight(&state, &auth, id)?;
    let filter = FindingFilter {
        flight_id: Some(id),
        ..filter_from(&query)?
    };
    let path = format!("/api/v1/flights/{id}/findings.geojson");
    let page = Page {
        path: &path,
        query: &query,
        filter,
    };
    page_response(&state, auth.org_id(), page, &headers)
}

pub async fn flight_footprints(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    auth.require(Right::Read)?;
    let flight = find_flight(&state, &auth, id)?;
    let not_yet = || ApiError::not_found("footprints (the flight is not processed yet)");
    let dir = flight.output_dir.as_deref().ok_or_else(not_yet)?;
    // From the storage: the data folder or the object store.
    let bytes = crate::objects::product(&state, dir, "footprints.geojson")
        .await
        .map_err(|e| ApiError::internal(scrub_paths(&e, state.config())))?
        .ok_or_else(not_yet)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::internal(format!("{dir}/footprints.geojson is not UTF-8")))?;
    Ok(([(header::CONTENT_TYPE, GEOJSON)], text).into_response())
}

#[derive(Debug, Deserialize)]
pub struct StatusBody {
    status: String,
}

const STATUSES: [&str; 5] = ["open", "scheduled", "in_progress", "done", "dismissed"];

pub async fn set_status(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Result<Json<StatusBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    auth.require(Right::Plan)?;
    let Json(body) =
        body.map_err(|e| ApiError::bad_request(format!("expected {{\"status\": \"...\"}}: {e}")))?;
    if !STATUSES.contains(&body.status.as_str()) {
        return Err(ApiError::bad_request(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    if !state
        .store()
        .set_finding_status(auth.org_id(), id, &body.status)?
    {
        return Err(ApiError::not_found("finding"));
    }
    crate::audit::record(
        &state,
        &auth,
        "finding.status",
        &format!("finding {id} set to {}", body.status),
    );
    Ok(Json(json!({"id": id, "status": body.status})))
}

/// Crop settings of the finding photo.
#[derive(Debug, Clone)]
pub struct CropConfig {
    /// Margin around the defect's box, as a fraction of the box's larger side.
    pub margin: f64,
    /// The smallest crop side, pixels of the photo.
    pub min_side: u32,
    /// The largest side of the returned JPEG.
    pub max_output_side: u32,
    /// Photos with more pixels than this are not decoded (their header is checked first).
    pub max_photo_pixels: u64,
}

impl Default for CropConfig {
    fn default() -> Self {
        CropConfig {
            margin: 0.5,
            min_side: 256,
            max_output_side: 1024,
            max_photo_pixels: 120_000_000,
        }
    }
}

/// The best view of a finding, cropped around the defect with its outline drawn in red.
pub fn crop_finding(
    photo: &std::path::Path,
    bbox: [f64; 4],
    outline: &[[f64; 2]],
    cfg: &CropConfig,
) -> Result<Vec<u8>, String> {
    let img =
        besikta_infer::decode_photo(photo, cfg.max_photo_pixels).map_err(|e| e.to_string())?;
    crop_decoded(&img, bbox, outline, cfg)
}

/// [`crop_finding`] of a photo already decoded (processing crops many findings of one photo
/// from a single decode): the same bytes for the same pixels.
pub fn crop_decoded(
    img: &image::RgbImage,
    bbox: [f64; 4],
    outline: &[[f64; 2]],
    cfg: &CropConfig,
) -> Result<Vec<u8>, String> {
    let (w, h) = img.dimensions();
    let [x0, y0, x1, y1] = bbox;
    let side = (x1 - x0).max(y1 - y0).max(1.0);
    let half = ((side * (1.0 + 2.0 * cfg.margin)) / 2.0).max(cfg.min_side as f64 / 2.0);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    // Slide the window inside the photo rather than cut it, so a defect at the edge still
    // gets a full-size view.
    let window = |c: f64, size: u32| -> (u32, u32) {
        let side = (2.0 * half).min(size as f64);
        let start = (c - side / 2.0).clamp(0.0, size as f64 - side);
        (
            start as u32,
            ((start + side).ceil() as u32).clamp(start as u32 + 1, size),
        )
    };
    let (left, right) = window(cx, w);
    let (top, bottom) = window(cy, h);
    let mut crop = image::imageops::crop_imm(img, left, top, right - left, bottom - top).to_image();
    let scale = (cfg.max_output_side as f64 / crop.width().max(crop.height()) as f64).min(1.0);
    if scale < 1.0 {
        let (nw, nh) = (
            (crop.width() as f64 * scale) as u32,
            (crop.height() as f64 * scale) as u32,
        );
        crop = image::imageops::resize(
            &crop,
            nw.max(1),
            nh.max(1),
            image::imageops::FilterType::Triangle,
        );
    }
    let to_crop = |p: [f64; 2]| {
        (
            ((p[0] - left as f64) * scale) as f32,
            ((p[1] - top as f64) * scale) as f32,
        )
    };
    let ring: Vec<[f64; 2]> = if outline.len() >= 3 {
        outline.to_vec()
    } else {
        vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    };
    let red = image::Rgb([255u8, 32, 32]);
    for i in 0..ring.len() {
        let (a, b) = (to_crop(ring[i]), to_crop(ring[(i + 1) % ring.len()]));
        // Three offset lines: a one-pixel outline vanishes in a downscaled photo.
        for d in [-1.0f32, 0.0, 1.0] {
            imageproc::drawing::draw_line_segment_mut(
                &mut crop,
                (a.0 + d, a.1),
                (b.0 + d, b.1),
                red,
            );
            imageproc::drawing::draw_line_segment_mut(
                &mut crop,
                (a.0, a.1 + d),
                (b.0, b.1 + d),
                red,
            );
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&crop)
        .map_err(|e| format!("cannot encode the crop: {e}"))?;
    Ok(out)
}

pub(crate) fn basename(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

pub async fn photo(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    auth.require(Right::Read)?;
    let row = state
        .store()
        .finding(auth.org_id(), id)?
        .ok_or_else(|| ApiError::not_found("finding"))?;
    // `photo=NAME`: any photo that saw it (projected outline); `view=N`; else the best view.
    let (name, outline, bbox) = crate::views::crop_target(&state, &auth, &row, &query).await?;
    let photo = state
        .store()
        .photo_by_name(row.flight_id, &name)?
        .ok_or_else(|| ApiError::not_found("photo of this finding"))?;
    let cfg = crate::precrops::default_config(&state);
    // Everything the crop's bytes depend on: a reprocessed flight (another place or
    // outline) or a replaced photo (another content hash) is another key.
    let crop_key = crate::crops::CropKey {
        org_id: auth.org_id(),
        finding_id: id,
        photo_sha256: &photo.sha256,
        bbox,
        outline: &outline,
        cfg: &cfg,
    };
    let key = crop_key.digest();
    let precomputed = crate::precrops::product_name(&crop_key);
    let etag = format!("\"{key}\"");
    let cache_headers = |etag: &str| {
        [
            (header::ETAG, etag.to_string()),
            (header::CACHE_CONTROL, "private, max-age=3600".to_string()),
        ]
    };
    if let Some(v) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if crate::crops::none_match(v, &etag) {
            return Ok((StatusCode::NOT_MODIFIED, cache_headers(&etag)).into_response());
        }
    }
    let pool = state.crops();
    let (jpeg, source) = match pool.cached(&key) {
        Some(b) => (b, crate::crops::CropSource::Cache),
        None => match stored_crop(&state, &auth, row.flight_id, &precomputed).await? {
            // Made when the flight was processed: no decode.
            Some(bytes) => (
                pool.keep_precomputed(&key, bytes),
                crate::crops::CropSource::Precomputed,
            ),
            None => {
                crate::retention::refuse_removed(&state, &photo)?;
                // In place, or fetched from the object store for the crop (removed after it).
                let local = crate::objects::local_photo(&state, &photo.path)
                    .await
                    .map_err(|e| ApiError::internal(scrub_paths(&e, state.config())))?;
                pool.get_or_make(&key, move || {
                    crop_finding(&local.path, bbox, &outline, &cfg)
                })
                .await
                .map_err(|m| ApiError::internal(scrub_paths(&m, state.config())))?
            }
        },
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (
                header::HeaderName::from_static("x-besikta-crop"),
                source.as_str().to_string(),
            ),
        ],
        cache_headers(&etag),
        jpeg.as_ref().clone(),
    )
        .into_response())
}

/// The crop stored with the products of the flight's current job (`precrops`), if there
/// is one by that name.
async fn stored_crop(
    state: &AppState,
    auth: &Auth,
    flight_id: i64,
    name: &str,
) -> ApiResult<Option<Vec<u8>>> {
    let flight = find_flight(state, auth, flight_id)?;
    let Some(dir) = flight.output_dir.as_deref() else {
        return Ok(None);
    };
    crate::objects::product(state, dir, name)
        .await
        .map_err(|e| ApiError::internal(scrub_paths(&e, state.config())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/brighton/DJI_0018.JPG")
    }

    fn is_red(p: &image::Rgb<u8>) -> bool {
        p[0] > 200 && p[1] < 80 && p[2] < 80
    }

    #[test]
    fn crop_is_centred_on_the_defect_with_its_outline() {
        let cfg = CropConfig::default();
        // A 200x100 box in the middle: crop side = 200 * (1 + 2 * 0.5) = 400 pixels.
        let jpeg = crop_finding(&photo(), [1900.0, 1075.0, 2100.0, 1175.0], &[], &cfg).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (400, 400));
        // The box outline is 100 pixels in from the left edge, 150 from the top.
        assert!(is_red(img.get_pixel(100, 200)), "left edge of the box");
        assert!(is_red(img.get_pixel(200, 150)), "top edge of the box");
        assert!(
            !is_red(img.get_pixel(200, 200)),
            "inside the box is the photo"
        );
    }

    #[test]
    fn crop_at_the_photo_edge_keeps_its_size_and_large_crops_shrink() {
        let cfg = CropConfig::default();
        let jpeg = crop_finding(&photo(), [3950.0, 2200.0, 3990.0, 2240.0], &[], &cfg).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (256, 256),
            "min_side, slid inside the photo"
        );
        let jpeg = crop_finding(&photo(), [0.0, 0.0, 3000.0, 1500.0], &[], &cfg).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap();
        assert_eq!(img.width().max(img.height()), cfg.max_output_side);
    }

    #[test]
    fn a_photo_over_the_pixel_limit_is_refused_before_decoding() {
        let bomb = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/broken/bomb-65535x65535.jpg");
        let err =
            crop_finding(&bomb, [0.0, 0.0, 10.0, 10.0], &[], &CropConfig::default()).unwrap_err();
        assert!(
            err.contains("bomb-65535x65535.jpg"),
            "names the photo: {err}"
        );
        assert!(err.contains("pixel"), "says why: {err}");
    }
}
