//! Reviews: a planner's or admin's word on a finding (`PUT /api/v1/findings/{id}/review`),
//! the `review=` filter of the findings routes, the review properties every served
//! finding carries, and which findings become work orders.

use crate::auth::{Auth, Right};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use besikta_core::{RejectReason, Review, ReviewState, Severity, UnknownWord};
use besikta_store::FindingRow;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The members a review request may have.
const FIELDS: &[&str] = &["state", "reason", "comment", "class", "severity", "outline"];
/// The longest comment kept, characters.
const MAX_COMMENT: usize = 2000;

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn word<T: std::str::FromStr<Err = UnknownWord>>(body: &Value, key: &str) -> ApiResult<Option<T>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|e: UnknownWord| unprocessable(format!("{key}: {e}"))),
        Some(other) => Err(unprocessable(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

fn text(body: &Value, key: &str) -> ApiResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(other) => Err(unprocessable(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

/// A corrected outline: a closed ring of at least four WGS 84 `[lon, lat]` positions.
fn outline(body: &Value) -> ApiResult<Option<Vec<[f64; 2]>>> {
    let Some(v) = body.get("outline").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bad = || {
        unprocessable(
            "outline must be a closed ring [[lon, lat], ...] of at least 4 WGS 84 positions, the last equal to the first",
        )
    };
    let ring: Vec<[f64; 2]> = v
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|p| {
            let lon = p.get(0)?.as_f64()?;
            let lat = p.get(1)?.as_f64()?;
            ((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)).then_some([lon, lat])
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    if ring.len() < 4 || ring.first() != ring.last() {
        return Err(bad());
    }
    Ok(Some(ring))
}

/// How long the classes read from the manifests are reused, so a review does not walk the
/// models folder and parse every manifest each time.
const CLASSES_FRESH: std::time::Duration = std::time::Duration::from_secs(300);

type Classes = Vec<(String, besikta_core::AssetKind)>;

/// Every class the service's models know (their manifests under `models_dir`), sorted,
/// each once, with its asset kind; read again at most every [`CLASSES_FRESH`].
pub fn model_classes(models_dir: &std::path::Path) -> Classes {
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;
    static CACHE: OnceLock<Mutex<HashMap<std::path::PathBuf, (Instant, Classes)>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some((at, list)) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(models_dir)
    {
        if at.elapsed() < CLASSES_FRESH {
            return list.clone();
        }
    }
    let list = read_model_classes(models_dir);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(models_dir.to_path_buf(), (Instant::now(), list.clone()));
    list
}

fn read_model_classes(models_dir: &std::path::Path) -> Classes {
    let mut out: Vec<(String, besikta_core::AssetKind)> = Vec::new();
    for path in besikta_pipeline::find_manifests(models_dir) {
        if let Ok(m) = besikta_infer::Manifest::load(&path) {
            for c in m.classes {
                if !out.iter().any(|(n, _)| *n == c.name) {
                    out.push((c.name, c.asset_kind));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `GET /api/v1/classes`: the classes a correction may give (those of the models).
pub async fn classes(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(Right::Read)?;
    let dir = state.config().models_dir.clone();
    let list = tokio::task::spawn_blocking(move || model_classes(&dir))
        .await
        .map_err(|e| ApiError::internal(format!("reading the model manifests crashed: {e}")))?;
    Ok(Json(json!({
        "classes": list
            .iter()
            .map(|(name, kind)| json!({"name": name, "asset_kind": kind.as_str()}))
            .collect::<Vec<_>>()
    })))
}

/// Reads and checks a review request against the finding it is about; a corrected class
/// must be one of `known` (the models' classes).
pub fn parse_review(body: &Value, finding: &FindingRow, known: &[String]) -> ApiResult<Review> {
    let object = body.as_object().ok_or_else(|| {
        ApiError::bad_request("expected a JSON object {\"state\": ..., \"reason\": ...}")
    })?;
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(unprocessable(format!(
            "unknown member {unknown:?}; a review has: {}",
            FIELDS.join(", ")
        )));
    }
    let state: ReviewState = word(body, "state")?.ok_or_else(|| {
        unprocessable(format!(
            "state is missing; expected one of: {}",
            ReviewState::NAMES.join(", ")
        ))
    })?;
    let reason: Option<RejectReason> = word(body, "reason")?;
    let severity: Option<Severity> = word(body, "severity")?;
    let class = text(body, "class")?;
    if let Some(c) = &class {
        let ok = c.len() <= 64
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-'));
        if !ok {
            return Err(unprocessable(format!(
                "class {c:?} is not a class name: letters, digits, '_' and '-', at most 64"
            )));
        }
        if *c != finding.class && !known.contains(c) {
            return Err(unprocessable(format!(
                "unknown class {c:?}; the service's models know: {}",
                known.join(", ")
            )));
        }
    }
    let comment = text(body, "comment")?;
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT)
    {
        return Err(unprocessable(format!(
            "comment is longer than {MAX_COMMENT} characters"
        )));
    }
    let outline = outline(body)?;
    match state {
        ReviewState::Rejected if reason.is_none() => {
            return Err(unprocessable(format!(
                "a rejection needs a reason; expected one of: {}",
                RejectReason::NAMES.join(", ")
            )))
        }
        ReviewState::Rejected => {}
        _ if reason.is_some() => {
            return Err(unprocessable(format!(
                "reason is only for state rejected, not {state}"
            )))
        }
        _ => {}
    }
    // What a correction changes; only a change counts.
    let class = class.filter(|c| *c != finding.class);
    let severity = severity.filter(|s| *s != finding.severity);
    let changes = class.is_some() || severity.is_some() || outline.is_some();
    match state {
        ReviewState::Corrected if !changes => {
            return Err(unprocessable(format!(
            "a correction needs a class other than {:?}, a severity other than {} or an outline",
            finding.class, finding.severity
        )))
        }
        ReviewState::Corrected => {}
        _ if body.get("class").is_some_and(|v| !v.is_null())
            || body.get("severity").is_some_and(|v| !v.is_null())
            || outline.is_some() =>
        {
            return Err(unprocessable(format!(
                "class, severity and outline are for state corrected, not {state}"
            )))
        }
        _ => {}
    }
    Ok(Review {
        state,
        reason,
        by: None,
        at: None,
        comment,
        corrected_class: class,
        corrected_severity: severity,
        corrected_polygon: outline,
    })
}

/// `PUT /api/v1/findings/{id}/review`: planners and admins; 404 for a finding of another
/// organisation; 422 for a review that does not hold together.
pub async fn put_review(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    auth.require(Right::Review)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"state\": \"confirmed\"}} with Content-Type application/json: {e}"
        ))
    })?;
    let finding = state
        .store()
        .finding(auth.org_id(), id)?
        .ok_or_else(|| ApiError::not_found("finding"))?;
    let dir = state.config().models_dir.clone();
    let known: Vec<String> = tokio::task::spawn_blocking(move || model_classes(&dir))
        .await
        .map_err(|e| ApiError::internal(format!("reading the model manifests crashed: {e}")))?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let review = Review {
        by: Some(auth.0.token.clone()),
        ..parse_review(&body, &finding, &known)?
    };
    let stored = state
        .store()
        .set_review(auth.org_id(), id, &review, auth.0.role.as_str())?
        .ok_or_else(|| ApiError::not_found("finding"))?;
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    add_properties(&mut out, &stored);
    Ok(Json(Value::Object(out)))
}

/// The `review` query parameter: comma-separated states.
pub fn review_filter(query: &HashMap<String, String>) -> ApiResult<Vec<ReviewState>> {
    let Some(text) = query.get("review") else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ReviewState>()
                .map_err(|e| unprocessable(format!("review: {e}")))
        })
        .collect()
}

/// The review members of a served finding (GeoJSON properties, CSV columns): `review`,
/// `reviewed_by`, `reviewed_at`, `review_reason`, `review_comment`, `corrected_class`,
/// `corrected_severity` (null where not set).
pub fn add_properties(props: &mut Map<String, Value>, review: &Review) {
    props.insert("review".into(), json!(review.state.as_str()));
    props.insert("reviewed_by".into(), json!(review.by));
    props.insert("reviewed_at".into(), json!(review.at));
    props.insert(
        "review_reason".into(),
        json!(review.reason.map(RejectReason::as_str)),
    );
    props.insert("review_comment".into(), json!(review.comment));
    props.insert("corrected_class".into(), json!(review.corrected_class));
    props.insert(
        "corrected_severity".into(),
        json!(review.corrected_severity.map(Severity::as_str)),
    );
    if let Some(ring) = &review.corrected_polygon {
        props.insert("corrected_outline".into(), json!(ring));
    }
}

/// Which findings become work orders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkSelection {
    /// Unreviewed findings too (marked `unreviewed` in the `review` column); rejected never.
    pub include_unreviewed: bool,
}

impl WorkSelection {
    /// From `include=unreviewed` (or `include=reviewed`: confirmed and corrected only) of
    /// an export request; without it, `include_unreviewed` (the organisation's setting).
    pub fn from_query(
        query: &HashMap<String, String>,
        include_unreviewed: bool,
    ) -> ApiResult<WorkSelection> {
        let mut selection = WorkSelection { include_unreviewed };
        if let Some(list) = query.get("include") {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match item {
                    "unreviewed" => selection.include_unreviewed = true,
                    "reviewed" => selection.include_unreviewed = false,
                    other => {
                        return Err(unprocessable(format!(
                            "include: unknown {other:?}; expected: unreviewed or reviewed"
                        )))
                    }
                }
            }
        }
        Ok(selection)
    }

    /// The review states that become work.
    pub fn states(self) -> Vec<ReviewState> {
        let mut out = vec![ReviewState::Confirmed, ReviewState::Corrected];
        if self.include_unreviewed {
            out.push(ReviewState::Unreviewed);
        }
        out
    }
}

/// The findings that become work under `selection`, a correction applied to its finding:
/// the corrected class and severity (and outline, with its bbox centre as centroid)
/// replace the model's.
pub fn work_findings(rows: Vec<FindingRow>, selection: WorkSelection) -> Vec<FindingRow> {
    rows.into_iter()
        .filter(|r| {
            r.review.state.is_work()
                || (selection.include_unreviewed && r.review.state == ReviewState::Unreviewed)
        })
        .map(|mut r| {
            if r.review.state == ReviewState::Corrected {
                if let Some(c) = &r.review.corrected_class {
                    r.finding.class = c.clone();
                    r.class = c.clone();
                }
                if let Some(s) = r.review.corrected_severity {
                    r.finding.severity = s;
                    r.severity = s;
                }
                if let Some(ring) = &r.review.corrected_polygon {
                    r.finding.polygon = ring.clone();
                    let b = r.finding.bbox();
                    r.finding.centroid = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
                }
            }
            r
        })
        .collect()
}

/// The `review` filter as the OpenAPI document explains it.
pub const FILTER_DOC: &str =
    "comma-separated review states: unreviewed, confirmed, rejected, corrected";

/// The review members of a served finding, for the OpenAPI document.
pub fn openapi_schema() -> Value {
    json!({
        "type": "object",
        "description": "A person's word on a finding, as properties of every served finding and as work-order columns.",
        "properties": {
            "review": {"enum": ReviewState::NAMES, "description": "unreviewed until a planner or admin reviews it"},
            "reviewed_by": {"type": ["string", "null"], "description": "the reviewing token's name (the first 12 hex digits of its SHA-256, as in the audit log)"},
            "reviewed_at": {"type": ["string", "null"], "format": "date-time"},
            "review_reason": {"oneOf": [{"enum": RejectReason::NAMES}, {"type": "null"}], "description": "why it was rejected"},
            "review_comment": {"type": ["string", "null"]},
            "corrected_class": {"type": ["string", "null"], "description": "the class a correction gave it (the model's stays in `class`)"},
            "corrected_severity": {"oneOf": [{"enum": Severity::NAMES}, {"type": "null"}]},
            "corrected_outline": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}, "description": "a corrected outline, WGS 84 lon/lat closed ring; absent when none"}
        },
        "required": ["review", "reviewed_by", "reviewed_at"]
    })
}

/// `PUT /api/v1/findings/{id}/review` for the OpenAPI document.
pub fn openapi_put() -> Value {
    json!({
        "summary": "Review a finding: confirm it, reject it with a reason, or correct its class, severity or outline (recorded in the audit log). Work orders contain confirmed and corrected findings.",
        "description": "Roles: planner, admin. A finding of another organisation is 404. A review follows its finding when the flight is processed again (to the new finding of the same class whose outline overlaps it best).",
        "security": [{"bearer": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "state": {"enum": ReviewState::NAMES, "description": "unreviewed takes a review back"},
                "reason": {"enum": RejectReason::NAMES, "description": "required with rejected, only with rejected"},
                "comment": {"type": "string", "maxLength": MAX_COMMENT},
                "class": {"type": "string", "description": "corrected only: the right class"},
                "severity": {"enum": Severity::NAMES, "description": "corrected only: the right severity"},
                "outline": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}, "description": "corrected only: the right outline, WGS 84 [lon, lat] closed ring"}
            },
            "required": ["state"]
        }}}},
        "responses": {
            "200": {"description": "the stored review: {id, review, reviewed_by, reviewed_at, review_reason, review_comment, corrected_class, corrected_severity}", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FindingReview"}}}},
            "400": {"description": "the body is not JSON"},
            "403": {"description": "crews and viewers may not review"},
            "404": {"description": "no such finding in your organisation"},
            "422": {"description": "an unknown word (the message names the accepted spellings), a rejection without a reason, a correction that changes nothing"}
        }
    })
}

/// The observation a crop shows: `view=N` (0-based, in the order of the finding's
/// `observations`) for the review queue's other views, else the best view.
pub fn chosen_view<'a>(
    finding: &'a besikta_core::finding::Finding,
    query: &HashMap<String, String>,
) -> ApiResult<&'a besikta_core::finding::Observation> {
    match query.get("view") {
        None => finding
            .best_observation()
            .ok_or_else(|| ApiError::not_found("photo of this finding (it has no observations)")),
        Some(v) => {
            let n = finding.observations.len();
            v.trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| finding.observations.get(i))
                .ok_or_else(|| {
                    ApiError::not_found(&format!(
                        "view {v:?} of this finding (it has {n} views: 0 to {})",
                        n.saturating_sub(1)
                    ))
                })
        }
    }
}

/// Who reviewed the findings of one work order, for its `review`, `reviewed_by` and
/// `reviewed_at` columns.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderReview {
    /// Every finding of the order is in this state (orders are made per state).
    pub state: ReviewState,
    /// The reviewers' token names, each once, in order of first appearance.
    pub by: Vec<String>,
    /// The latest review of its findings (RFC 3339).
    pub at: Option<String>,
}

/// Work orders of findings and their reviews, made separately for each review state so
/// that an order's findings share one (`orders_of` groups and prioritises them), most
/// urgent first.
pub fn reviewed_orders(
    findings: &[(besikta_core::finding::Finding, Review)],
    orders_of: impl Fn(&[besikta_core::finding::Finding]) -> Vec<besikta_report::quantity::WorkOrder>,
) -> Vec<(besikta_report::quantity::WorkOrder, OrderReview)> {
    let mut out = Vec::new();
    for state in [
        ReviewState::Confirmed,
        ReviewState::Corrected,
        ReviewState::Unreviewed,
    ] {
        let part: Vec<&(besikta_core::finding::Finding, Review)> =
            findings.iter().filter(|(_, r)| r.state == state).collect();
        if part.is_empty() {
            continue;
        }
        let list: Vec<besikta_core::finding::Finding> =
            part.iter().map(|(f, _)| f.clone()).collect();
        for order in orders_of(&list) {
            let mut review = OrderReview {
                state,
                by: Vec::new(),
                at: None,
            };
            for id in &order.finding_ids {
                if let Some((_, r)) = part.iter().find(|(f, _)| f.id == *id) {
                    if let Some(by) = &r.by {
                        if !review.by.contains(by) {
                            review.by.push(by.clone());
                        }
                    }
                    // RFC 3339 UTC text sorts as time.
                    if r.at > review.at {
                        review.at = r.at.clone();
                    }
                }
            }
            out.push((order, review));
        }
    }
    // Stable: within a priority, reviewed work before unreviewed.
    out.sort_by_key(|(o, _)| o.priority);
    out
}

/// The work-order CSV with a leading `key` column and the review columns `review`,
/// `reviewed_by` (token names separated by spaces) and `reviewed_at` last; rows as
/// `report::export::workorders_csv_grouped` writes them.
pub fn workorders_csv(
    key: &str,
    groups: &[(
        String,
        Vec<(besikta_report::quantity::WorkOrder, OrderReview)>,
    )],
) -> String {
    let header = besikta_report::export::workorders_csv_grouped(key, &[]);
    let mut out = format!("{},review,reviewed_by,reviewed_at\n", header.trim_end());
    for (name, orders) in groups {
        for (order, review) in orders {
            let text = besikta_report::export::workorders_csv_grouped(
                key,
                &[(name.clone(), vec![order.clone()])],
            );
            // The header is one plain line; the row after it may hold quoted newlines.
            let row = text
                .split_once('\n')
                .map_or("", |(_, r)| r)
                .trim_end_matches('\n');
            // Review words, hex token names and RFC 3339 times need no CSV quoting.
            out.push_str(&format!(
                "{row},{},{},{}\n",
                review.state,
                review.by.join(" "),
                review.at.as_deref().unwrap_or("")
            ));
        }
    }
    out
}

/// The review members of a work-order GeoJSON feature's properties.
pub fn add_order_properties(props: &mut Map<String, Value>, review: &OrderReview) {
    props.insert("review".into(), json!(review.state.as_str()));
    props.insert("reviewed_by".into(), json!(review.by));
    props.insert("reviewed_at".into(), json!(review.at));
}

/// The review fields of a findings GeoPackage, one value per finding in `reviews`' order:
/// `review`, `reviewed_by`, `reviewed_at`, `review_reason`, `review_comment`.
pub fn gpkg_fields(reviews: &[Review]) -> Vec<besikta_report::export::ExtraField> {
    let field = |name: &str, value: &dyn Fn(&Review) -> Option<String>| {
        besikta_report::export::ExtraField {
            name: name.to_string(),
            values: reviews.iter().map(value).collect(),
        }
    };
    vec![
        field("review", &|r| Some(r.state.as_str().to_string())),
        field("reviewed_by", &|r| r.by.clone()),
        field("reviewed_at", &|r| r.at.clone()),
        field("review_reason", &|r| {
            r.reason.map(|x| x.as_str().to_string())
        }),
        field("review_comment", &|r| r.comment.clone()),
    ]
}
