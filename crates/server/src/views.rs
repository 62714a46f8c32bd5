//! The views of a finding (`GET /api/v1/findings/{id}/views`): every photo of its flight
//! that saw the spot, whether or not the model detected it there, with the finding's
//! ground outline projected into that photo, so a reviewer can look at the spot in
//! photos where the model said nothing.
//!
//! The photos that saw it are those whose footprint (the flight's `footprints.geojson`
//! product) holds the finding's centroid, plus every photo that detected it. Each photo's
//! camera is the one the job used: its metadata (read with `ingest`, as the pipeline
//! does) with the refined position and heading the footprint records (`align::apply_pose`);
//! the outline's corners go into the photo through `georef` on the same ground (the
//! take-off plane, or the server's elevation model). Cameras are kept per flight product
//! folder, so a photo's metadata is read once per process.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::findings::basename;
use crate::flights::find_flight;
use crate::jobs::scrub_paths;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use besikta_core::finding::Finding;
use besikta_core::Capture;
use besikta_georef::{Ground, PhotoGeometry};
use besikta_pipeline::coverage::inside;
use besikta_store::FindingRow;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One photo that saw a finding.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub photo: String,
    /// The model detected the finding in this photo.
    pub detected: bool,
    /// Index in the finding's `observations` when detected (`photo.jpg?view=N`).
    pub observation: Option<usize>,
    /// The finding's ground outline in this photo's pixels; `None` when it cannot be
    /// projected (the flight has no footprints product, or the camera is unknown).
    pub outline_px: Option<Vec<[f64; 2]>>,
    /// The box of `outline_px`.
    pub bbox_px: Option<[f64; 4]>,
    /// The model's box in this photo (of all its pieces there), when detected.
    pub detected_bbox_px: Option<[f64; 4]>,
    /// The projected outline lies inside the photo.
    pub in_frame: bool,
    /// The photo's width and height, pixels (when its camera is known).
    pub size_px: Option<[u32; 2]>,
}

/// A photo's camera as the job used it.
type Cameras = HashMap<(String, String), Arc<Capture>>;

/// Cameras by (product folder, photo name); cleared when it grows past this.
const MAX_CAMERAS: usize = 4096;

fn cameras() -> &'static Mutex<Cameras> {
    static CAMERAS: std::sync::OnceLock<Mutex<Cameras>> = std::sync::OnceLock::new();
    CAMERAS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn bbox_of(points: &[[f64; 2]]) -> [f64; 4] {
    points.iter().fold(
        [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
        |[x0, y0, x1, y1], p| [x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1])],
    )
}

/// A footprint feature: the photo's name, its ground ring and its properties.
struct Footprint {
    photo: String,
    ring: Vec<[f64; 2]>,
    props: Value,
}

fn footprints(text: &[u8]) -> Vec<Footprint> {
    let Ok(v) = serde_json::from_slice::<Value>(text) else {
        return Vec::new();
    };
    v["features"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| {
                    let file = f["properties"]["file"].as_str()?;
                    let ring: Vec<[f64; 2]> = f["geometry"]["coordinates"][0]
                        .as_array()?
                        .iter()
                        .filter_map(|p| Some([p[0].as_f64()?, p[1].as_f64()?]))
                        .collect();
                    Some(Footprint {
                        photo: basename(file).to_string(),
                        ring,
                        props: f["properties"].clone(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The photo's metadata camera moved to the pose its footprint records.
fn refined_capture(local: &std::path::Path, props: &Value) -> Result<Capture, String> {
    let scan = besikta_ingest::scan(&[local.to_path_buf()]);
    let capture = scan.captures.into_iter().next().ok_or_else(|| {
        scan.rejected
            .first()
            .map(|r| r.reason.clone())
            .unwrap_or_else(|| "the photo has no usable metadata".into())
    })?;
    let source = props["pose_source"].as_str().unwrap_or("metadata");
    if source == "metadata" {
        return Ok(capture);
    }
    let pose: besikta_align::PhotoPose = serde_json::from_value(json!({
        "file": capture.file,
        "source": source,
        "latitude": props["camera_latitude"],
        "longitude": props["camera_longitude"],
        "correction_m": props["pose_correction_m"],
        "yaw_correction_deg": props["yaw_correction_deg"],
        // Not in the footprint: the alignment changes heights only when it estimated a
        // scale for the flight.
        "height_correction_m": 0.0,
        "sigma_m": props["pose_sigma_m"],
        "pairs": 0,
        "residual_before_m": null,
        "residual_after_m": null,
        "reason": null,
    }))
    .map_err(|e| format!("the footprint's pose does not read: {e}"))?;
    Ok(besikta_align::apply_pose(&capture, &pose))
}

/// `(lon, lat)` on the ground into the photo's pixels: at the ground's height under it,
/// found through the photo (exact on a plane; two rounds on an elevation model).
fn project(g: &PhotoGeometry, base_height: f64, p: [f64; 2]) -> Option<[f64; 2]> {
    let (lon, lat) = (p[0], p[1]);
    let mut h = base_height;
    let mut px = g.ground_to_pixel(lat, lon, h).ok()?;
    for _ in 0..2 {
        match g.pixel_to_ground(px) {
            Ok(q) if (q.height_m - h).abs() > 0.01 => {
                h = q.height_m;
                px = g.ground_to_pixel(lat, lon, h).ok()?;
            }
            _ => break,
        }
    }
    Some(px)
}

/// The finding's outline in one photo, with the photo's size.
fn outline_in(
    capture: &Capture,
    ground: &Ground,
    finding: &Finding,
) -> Option<(Vec<[f64; 2]>, [u32; 2])> {
    let g = PhotoGeometry::new(capture, ground).ok()?;
    let cam = g.camera();
    let (w, h) = (cam.width, cam.height);
    let base = g
        .pixel_to_ground([w as f64 / 2.0, h as f64 / 2.0])
        .ok()?
        .height_m;
    let ring: &[[f64; 2]] = match finding.polygon.as_slice() {
        [first, .., last] if first == last => &finding.polygon[..finding.polygon.len() - 1],
        r => r,
    };
    let outline = ring
        .iter()
        .map(|&p| project(&g, base, p))
        .collect::<Option<Vec<_>>>()?;
    (outline.len() >= 3).then_some((outline, [w, h]))
}

/// Every photo that saw the finding of `row`, detecting ones first (in the order of its
/// observations), then the others by name.
pub async fn finding_views(
    state: &AppState,
    auth: &Auth,
    row: &FindingRow,
) -> ApiResult<Vec<View>> {
    let finding = &row.finding;
    let detected: Vec<(usize, String)> = finding
        .observations
        .iter()
        .enumerate()
        .map(|(i, o)| (i, basename(&o.photo).to_string()))
        .collect();
    let flight = find_flight(state, auth, row.flight_id)?;
    let prints = match flight.output_dir.as_deref() {
        Some(dir) => crate::objects::product(state, dir, "footprints.geojson")
            .await
            .map_err(|e| ApiError::internal(scrub_paths(&e, state.config())))?
            .map(|b| footprints(&b))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let out_dir = flight.output_dir.clone().unwrap_or_default();
    // A photo may hold several pieces of one finding: one view per photo.
    let mut names: Vec<String> = Vec::new();
    for (_, p) in &detected {
        if !names.contains(p) {
            names.push(p.clone());
        }
    }
    let mut others: Vec<String> = prints
        .iter()
        .filter(|f| inside(&f.ring, finding.centroid) && !names.contains(&f.photo))
        .map(|f| f.photo.clone())
        .collect();
    others.sort();
    others.dedup();
    names.extend(others);

    // Cameras: cached, else read from the photo (fetched from the object store if need be).
    let mut known: HashMap<String, Arc<Capture>> = HashMap::new();
    for name in &names {
        let Some(fp) = prints.iter().find(|f| &f.photo == name) else {
            continue;
        };
        let key = (out_dir.clone(), name.clone());
        if let Some(c) = cameras()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            known.insert(name.clone(), c.clone());
            continue;
        }
        let Some(photo) = state.store().photo_by_name(row.flight_id, name)? else {
            continue;
        };
        let local = crate::objects::local_photo(state, &photo.path)
            .await
            .map_err(|e| ApiError::internal(scrub_paths(&e, state.config())))?;
        let props = fp.props.clone();
        let capture = tokio::task::spawn_blocking(move || {
            let c = refined_capture(&local.path, &props);
            drop(local);
            c
        })
        .await
        .map_err(|e| ApiError::internal(format!("reading a photo's camera crashed: {e}")))?;
        // A photo whose camera cannot be read is listed without an outline.
        if let Ok(c) = capture {
            let c = Arc::new(c);
            let mut cache = cameras().lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CAMERAS {
                cache.clear();
            }
            cache.insert(key, c.clone());
            known.insert(name.clone(), c);
        }
    }

    let dem = state.config().dem.clone();
    let finding = finding.clone();
    let views = tokio::task::spawn_blocking(move || {
        let ground = match &dem {
            Some(p) => besikta_georef::Dem::open(p)
                .map(Ground::Dem)
                .map_err(|e| format!("cannot open the elevation model: {e}"))?,
            None => Ground::TakeOffPlane,
        };
        Ok::<_, String>(
            names
                .iter()
                .map(|name| {
                    let observation = detected.iter().find(|(_, p)| p == name).map(|(i, _)| *i);
                    let projected = known
                        .get(name)
                        .and_then(|c| outline_in(c, &ground, &finding));
                    let bbox = projected.as_ref().map(|(o, _)| bbox_of(o));
                    let in_frame = match (&bbox, &projected) {
                        (Some(b), Some((_, [w, h]))) => {
                            b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= *w as f64 && b[3] <= *h as f64
                        }
                        _ => observation.is_some(),
                    };
                    View {
                        photo: name.clone(),
                        detected: observation.is_some(),
                        observation,
                        // The union of the model's boxes in this photo.
                        detected_bbox_px: observation.map(|_| {
                            let boxes: Vec<[f64; 2]> = detected
                                .iter()
                                .filter(|(_, p)| p == name)
                                .flat_map(|(i, _)| {
                                    let b = finding.observations[*i].pixel_bbox;
                                    [[b[0], b[1]], [b[2], b[3]]]
                                })
                                .collect();
                            bbox_of(&boxes)
                        }),
                        size_px: projected.as_ref().map(|(_, s)| *s),
                        outline_px: projected.map(|(o, _)| o),
                        bbox_px: bbox,
                        in_frame,
                    }
                })
                .collect::<Vec<_>>(),
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("projecting the finding crashed: {e}")))?
    .map_err(|e| ApiError::internal(scrub_paths(&e, state.config())))?;
    Ok(views)
}

/// `GET /api/v1/findings/{id}/views`. Viewers, planners and admins.
pub async fn views(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    auth.require(Right::Read)?;
    let row = state
        .store()
        .finding(auth.org_id(), id)?
        .ok_or_else(|| ApiError::not_found("finding"))?;
    let views = finding_views(&state, &auth, &row).await?;
    let listed: Vec<Value> = views
        .iter()
        .map(|v| {
            let mut j = serde_json::to_value(v).unwrap_or(Value::Null);
            j["crop_url"] = json!(format!(
                "/api/v1/findings/{id}/photo.jpg?photo={}",
                encode(&v.photo)
            ));
            j
        })
        .collect();
    Ok(Json(json!({
        "finding": id,
        "detections": row.finding.observations.len(),
        "views": listed,
    })))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What a finding's crop shows: `photo=NAME` (any photo that saw it: a detecting one
/// with the model's outline, another with the projected outline), else
/// [`crate::review::chosen_view`] (`view=N`, or the best view). Returns the photo's name,
/// the outline and the box to crop around.
pub async fn crop_target(
    state: &AppState,
    auth: &Auth,
    row: &FindingRow,
    query: &HashMap<String, String>,
) -> ApiResult<(String, Vec<[f64; 2]>, [f64; 4])> {
    if let Some(name) = query.get("photo") {
        if let Some(o) = row
            .finding
            .observations
            .iter()
            .find(|o| basename(&o.photo) == name)
        {
            return Ok((
                basename(&o.photo).to_string(),
                o.pixel_polygon.clone(),
                o.pixel_bbox,
            ));
        }
        let views = finding_views(state, auth, row).await?;
        let view = views
            .into_iter()
            .find(|v| &v.photo == name)
            .ok_or_else(|| {
                ApiError::not_found(&format!(
                    "photo {name:?} among the photos that saw this finding"
                ))
            })?;
        return match (view.outline_px, view.bbox_px) {
            (Some(o), Some(b)) => Ok((view.photo, o, b)),
            _ => Err(ApiError::not_found(&format!(
                "the finding's outline in {name} (the photo's camera is unknown)"
            ))),
        };
    }
    let o = crate::review::chosen_view(&row.finding, query)?;
    Ok((
        basename(&o.photo).to_string(),
        o.pixel_polygon.clone(),
        o.pixel_bbox,
    ))
}

/// The path's OpenAPI description.
pub fn openapi_path() -> Value {
    let view = json!({"type": "object", "properties": {
        "photo": {"type": "string"},
        "detected": {"type": "boolean", "description": "the model detected the finding in this photo"},
        "observation": {"type": ["integer", "null"], "description": "index in the finding's observations when detected"},
        "outline_px": {"type": ["array", "null"], "description": "the finding's ground outline projected into the photo, [x, y] pixels"},
        "bbox_px": {"type": ["array", "null"]},
        "detected_bbox_px": {"type": ["array", "null"], "description": "the model's box when detected"},
        "in_frame": {"type": "boolean"},
        "size_px": {"type": ["array", "null"], "description": "the photo's width and height"},
        "crop_url": {"type": "string", "description": "the crop of this photo with the outline drawn"}
    }});
    json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
        "get": {
            "summary": "Every photo that saw the finding (its footprint holds the finding's centroid, or it detected it), with the finding's outline projected into each",
            "description": "Roles: viewer, planner, admin.", "security": [{"bearer": []}],
            "responses": {"200": {"description": "the views", "content": {"application/json": {"schema":
                {"type": "object", "properties": {"finding": {"type": "integer"}, "detections": {"type": "integer"},
                    "views": {"type": "array", "items": view}}}}}},
                "404": {"description": "no such finding in your organisation"}}
        }
    })
}
