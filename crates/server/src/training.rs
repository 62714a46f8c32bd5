//! Reviews as training data through the API: `POST /api/v1/training-export` (admins) writes
//! the organisation's training chips with `besikta-training`, exactly as
//! `besikta export-training --org` does (both gather the findings with [`gather`]), and
//! answers with them as one ZIP file.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use besikta_core::finding::Observation;
use besikta_core::{Review, ReviewState};
use besikta_store::{FindingFilter, FindingRow, Org, Store, StoreError};
use besikta_training::local;
use besikta_training::{ChipFormat, ExportInput, ExportOptions, FindingView, Photo};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What [`gather`] found.
#[derive(Debug, Default)]
pub struct Gathered {
    pub input: ExportInput,
    /// Finding views that cannot be used, with the reason.
    pub skipped: Vec<String>,
    /// Flights looked at.
    pub flights: usize,
}

/// The outline of a finding in one of its photos: the corrected ground outline projected
/// through the observation's own pixel/ground pair when a reviewer changed it, else the
/// model's outline. `Err` says why the view cannot be used.
fn view_outline(o: &Observation, review: &Review) -> Result<Vec<[f64; 2]>, String> {
    let Some(ground) = review.corrected_polygon.as_ref().filter(|p| p.len() >= 3) else {
        return Ok(o.pixel_polygon.clone());
    };
    let fit = local::ground_to_pixel(&o.pixel_polygon, &o.ground_polygon).ok_or(
        "the corrected outline cannot be placed in this photo (its observation's outlines do not pair up)",
    )?;
    if fit.rms > 2.0 {
        return Err(format!(
            "the corrected outline cannot be placed in this photo reliably (fit residual {:.1} px)",
            fit.rms
        ));
    }
    Ok(ground.iter().map(|g| fit.apply(*g)).collect())
}

fn views_of(row: &FindingRow, flight: &str, skipped: &mut Vec<String>) -> Vec<FindingView> {
    let f = &row.finding;
    let class = row
        .review
        .corrected_class
        .clone()
        .filter(|_| row.review.state == ReviewState::Corrected)
        .unwrap_or_else(|| f.class.clone());
    f.observations
        .iter()
        .filter_map(|o| match view_outline(o, &row.review) {
            Ok(outline_px) => Some(FindingView {
                flight: flight.to_string(),
                finding_id: f.id.clone(),
                photo: o.photo.clone(),
                outline_px,
                detected_class: f.class.clone(),
                class: class.clone(),
                review: row.review.state,
                gsd_cm: o.gsd_cm,
            }),
            Err(why) => {
                skipped.push(format!(
                    "flight {flight} finding {} in {}: {why}",
                    f.id, o.photo
                ));
                None
            }
        })
        .collect()
}

/// The photos and finding views of `orgs`' flights (only `flight` when given) for
/// [`besikta_training::export_training`]; photo paths under `data_dir`.
pub fn gather(
    store: &dyn Store,
    data_dir: &Path,
    orgs: &[Org],
    flight: Option<i64>,
) -> Result<Gathered, StoreError> {
    let mut out = Gathered::default();
    for org in orgs {
        for f in store.flights(org.id)? {
            if flight.is_some_and(|id| id != f.id) {
                continue;
            }
            out.flights += 1;
            let label = f.id.to_string();
            let rows = store.findings(
                org.id,
                &FindingFilter {
                    flight_id: Some(f.id),
                    ..Default::default()
                },
            )?;
            let mut gsd_by_photo: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for row in &rows {
                for o in &row.finding.observations {
                    gsd_by_photo
                        .entry(o.photo.clone())
                        .or_default()
                        .push(o.gsd_cm);
                }
                out.input
                    .views
                    .extend(views_of(row, &label, &mut out.skipped));
            }
            // A photo's GSD: the mean of its observations'; photos without any take the
            // flight's median (one flying height per flight).
            let mut all: Vec<f64> = gsd_by_photo.values().flatten().copied().collect();
            all.sort_by(f64::total_cmp);
            let median = all.get(all.len() / 2).copied();
            for p in store.photos(f.id)? {
                let gsd = gsd_by_photo
                    .get(&p.name)
                    .map(|v| v.iter().sum::<f64>() / v.len() as f64)
                    .or(median);
                let Some(gsd_cm) = gsd else { continue };
                out.input.photos.push(Photo {
                    flight: label.clone(),
                    name: p.name.clone(),
                    path: data_dir.join(&p.path),
                    gsd_cm,
                });
            }
        }
    }
    Ok(out)
}

/// Writes every file under `dir` into a ZIP (stored: chips are PNG or JPEG already),
/// names relative to `dir` with `/`, in sorted order.
pub fn zip_folder(dir: &Path, out: &mut impl Write) -> std::io::Result<u64> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, files)?;
            } else {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let too_big =
        || std::io::Error::other("the training export is over 4 GiB; export one flight at a time");
    let mut offset: u64 = 0;
    let mut central = Vec::new();
    let mut count: u16 = 0;
    for path in &files {
        let name = path
            .strip_prefix(dir)
            .map_err(std::io::Error::other)?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let data = std::fs::read(path)?;
        let crc = crc32fast::hash(&data);
        let size = u32::try_from(data.len()).map_err(|_| too_big())?;
        let at = u32::try_from(offset).map_err(|_| too_big())?;
        let name_len = u16::try_from(name.len()).map_err(std::io::Error::other)?;
        // Local file header: version 2.0, UTF-8 names (bit 11), stored, no time.
        let mut head = Vec::with_capacity(30 + name.len());
        head.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        head.extend_from_slice(&20u16.to_le_bytes());
        head.extend_from_slice(&0x0800u16.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&0x0021u16.to_le_bytes()); // 1980-01-01
        head.extend_from_slice(&crc.to_le_bytes());
        head.extend_from_slice(&size.to_le_bytes());
        head.extend_from_slice(&size.to_le_bytes());
        head.extend_from_slice(&name_len.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(name.as_bytes());
        out.write_all(&head)?;
        out.write_all(&data)?;
        offset += head.len() as u64 + data.len() as u64;
        // Central directory entry.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0x0800u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x0021u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
        central.extend_from_slice(&at.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        count = count.checked_add(1).ok_or_else(too_big)?;
    }
    let at = u32::try_from(offset).map_err(|_| too_big())?;
    let central_len = u32::try_from(central.len()).map_err(|_| too_big())?;
    out.write_all(&central)?;
    let mut end = Vec::with_capacity(22);
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    end.extend_from_slice(&[0; 4]);
    end.extend_from_slice(&count.to_le_bytes());
    end.extend_from_slice(&count.to_le_bytes());
    end.extend_from_slice(&central_len.to_le_bytes());
    end.extend_from_slice(&at.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    out.write_all(&end)?;
    Ok(offset + central.len() as u64 + 22)
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// `POST /api/v1/training-export?flight=&format=png|jpeg&seed=&background=`: the
/// organisation's reviewed findings as training chips in a ZIP (the layout of
/// `besikta export-training`: `manifest.json`, per model `coco.json`, `data.yaml`,
/// `images/`, `masks/`, `labels/`). Admins only; written to the audit log.
pub async fn export(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    auth.require(Right::Admin)?;
    let number = |name: &str| -> ApiResult<Option<u64>> {
        query
            .get(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| unprocessable(format!("{name} {v:?}: expected a whole number")))
            })
            .transpose()
    };
    let flight = number("flight")?.map(|f| f as i64);
    let format = match query.get("format").map(String::as_str) {
        None | Some("png") => ChipFormat::Png,
        Some("jpeg") | Some("jpg") => ChipFormat::Jpeg,
        Some(other) => {
            return Err(unprocessable(format!(
                "format {other:?}: expected png or jpeg"
            )))
        }
    };
    let seed = number("seed")?.unwrap_or(7);
    let background = number("background")?.map(|b| b as usize);
    if let Some(f) = flight {
        state
            .store()
            .flight(auth.org_id(), f)?
            .ok_or_else(|| ApiError::not_found("flight"))?;
    }
    let org = state
        .store()
        .org(auth.org_id())?
        .ok_or_else(|| ApiError::not_found("organisation"))?;
    let scratch_dir = state.data_dir().join(format!(
        "orgs/{}/training-export-{}",
        org.id,
        crate::auth::new_token()
            .map_err(|e| ApiError::internal(e.to_string()))?
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect::<String>()
    ));
    let state2 = state.clone();
    let made = tokio::task::spawn_blocking(move || -> ApiResult<(Vec<u8>, Value)> {
        let scratch = Scratch(scratch_dir);
        let gathered = gather(state2.store(), state2.data_dir(), std::slice::from_ref(&org), flight)?;
        let models_dir = &state2.config().models_dir;
        let manifests: Vec<besikta_infer::Manifest> = besikta_pipeline::find_manifests(models_dir)
            .iter()
            .map(|p| besikta_infer::Manifest::load(p))
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::internal(format!("the service's model manifests: {e}")))?;
        let opts = ExportOptions {
            format,
            background_per_model: background,
            seed,
            max_pixels: state2.config().limits.max_photo_pixels,
            ..Default::default()
        };
        let out = scratch.0.join("export");
        let summary = besikta_training::export_training(&gathered.input, &manifests, &out, &opts)
            .map_err(|e| ApiError::internal(format!("the training export failed: {e}")))?;
        let reviewed = gathered
            .input
            .views
            .iter()
            .filter(|v| v.review != ReviewState::Unreviewed)
            .count();
        let mut zip = Vec::new();
        zip_folder(&out, &mut zip)
            .map_err(|e| ApiError::internal(format!("cannot pack the training export: {e}")))?;
        let counts: BTreeMap<&String, Value> = summary
            .models
            .iter()
            .map(|(m, c)| {
                (
                    m,
                    json!({"positive": c.positive, "hard_negative": c.hard_negative, "background": c.background}),
                )
            })
            .collect();
        let detail = json!({
            "flights": gathered.flights,
            "views": gathered.input.views.len(),
            "reviewed_views": reviewed,
            "models": counts,
            "skipped": gathered.skipped.len() + summary.skipped.len(),
        });
        Ok((zip, detail))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the training export crashed: {e}")))?;
    let (zip, detail) = made?;
    crate::audit::record(&state, &auth, "training.exported", &detail.to_string());
    let name = match flight {
        Some(f) => format!("training-flight-{f}.zip"),
        None => "training.zip".to_string(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (
                header::HeaderName::from_static("x-besikta-export"),
                detail.to_string(),
            ),
        ],
        zip,
    )
        .into_response())
}

/// The path's OpenAPI description.
pub fn openapi_path() -> Value {
    let q = |name: &str, schema: Value, description: &str| json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description});
    json!({"post": {
        "summary": "The organisation's reviewed findings as training data, one ZIP in the layout of `besikta export-training`: manifest.json, and per model coco.json, data.yaml, images/, masks/ (segmentation), labels/ (YOLO). Confirmed and corrected findings are positives, rejected ones hard negatives, plus seeded background from reviewed flights. Runs while the request waits; written to the audit log",
        "description": "Roles: admin.",
        "security": [{"bearer": []}],
        "parameters": [
            q("flight", json!({"type": "integer"}), "only this flight (404 when the organisation has no such flight)"),
            q("format", json!({"enum": ["png", "jpeg"], "default": "png"}), "chip image format"),
            q("seed", json!({"type": "integer", "default": 7}), "seed of the background sampling"),
            q("background", json!({"type": "integer"}), "background chips per model (default: as many as positives)")
        ],
        "responses": {
            "200": {"description": "the ZIP; the X-Besikta-Export header sums it up (flights, views, reviewed views, chips per model)", "content": {"application/zip": {}}},
            "404": {"description": "no such flight in your organisation"},
            "422": {"description": "a malformed parameter"}
        }
    }})
}
