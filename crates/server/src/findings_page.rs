//! A page of findings as one GeoJSON FeatureCollection written a chunk of features at a time:
//! read from the store by id (keyset paging), so the server's memory does not grow with the
//! organisation's findings; its strong ETag made from the organisation's findings revision,
//! so answering a revalidation reads no finding.

use crate::error::ApiResult;
use crate::findings::feature_of;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use besikta_store::{FindingFilter, FindingRow, FindingsRevision};
use serde_json::json;
use std::collections::HashMap;

const GEOJSON: &str = "application/geo+json";

/// Findings read from the store and written per step of a page.
const CHUNK: usize = 500;

/// Part of every page's ETag: raise it when a page's bytes change for the same stored
/// findings (another property, another number format), so tags of the old bytes stop
/// matching. `tests::the_page_bytes_are_pinned_to_the_page_format` fails until it is raised.
const PAGE_FORMAT: &str = "findings-page-1";

/// One findings page asked for: its path (part of the `next` link), the query as given,
/// and the filter made from it.
pub struct Page<'a> {
    pub path: &'a str,
    pub query: &'a HashMap<String, String>,
    pub filter: FindingFilter,
}

/// A page of findings: with `limit` given and reached, a `next` member and a
/// `Link: <...>; rel="next"` header give the same query from after the last id.
///
/// The page carries a strong `ETag` and must be revalidated (`Cache-Control: private,
/// no-cache`): a map that asks again with `If-None-Match` gets `304 Not Modified` and no
/// body when nothing changed. The tag is a digest of the organisation's findings revision
/// (raised by the store with every change of a finding, its status or its review), the
/// path, the query and [`PAGE_FORMAT`]: the same tag means the same bytes.
///
/// Without `limit` the body is streamed: each chunk of findings is read after the last id
/// written. Should findings be added or removed meanwhile (a job's results stored, a flight
/// deleted), the body is cut off (the connection closes without the end of the chunked
/// body) rather than mixing two sets; the client asks again and gets the new page. A page
/// with `limit` (at most 5,000 findings) is read at once, for its `Link` header, and
/// written a chunk at a time.
pub fn page_response(
    state: &AppState,
    org_id: i64,
    page: Page<'_>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let revision = state.store().findings_revision(org_id)?;
    let etag = page_etag(org_id, page.path, page.query, revision);
    let validators = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "private, no-cache".to_string()),
    ];
    if let Some(v) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if crate::crops::none_match(v, &etag) {
            return Ok((StatusCode::NOT_MODIFIED, validators).into_response());
        }
    }
    let (body, next) = match page.filter.limit {
        Some(limit) => {
            let rows = state.store().findings(org_id, &page.filter)?;
            let next = next_link(page.path, page.query, limit, &rows);
            let body = Body::from_stream(futures_util::stream::iter(
                rendered(rows, next.clone()).map(Ok::<_, std::convert::Infallible>),
            ));
            (body, next)
        }
        None => {
            let body = Body::from_stream(streamed(state.clone(), org_id, page.filter, revision));
            (body, None)
        }
    };
    let mut response = (
        [(header::CONTENT_TYPE, GEOJSON.to_string())],
        validators,
        body,
    )
        .into_response();
    if let Some(n) = next {
        if let Ok(v) = HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(response)
}

/// The strong ETag of a page: what its bytes depend on, digested.
fn page_etag(
    org_id: i64,
    path: &str,
    query: &HashMap<String, String>,
    revision: FindingsRevision,
) -> String {
    let mut pairs: Vec<(&String, &String)> = query.iter().collect();
    pairs.sort();
    let key = json!([
        PAGE_FORMAT,
        env!("CARGO_PKG_VERSION"),
        org_id,
        path,
        revision.content,
        pairs
    ]);
    format!(
        "\"{}\"",
        crate::findings::hex_digest(key.to_string().as_bytes())
    )
}

/// The `next` link of a full page: the same query from after its last id.
fn next_link(
    path: &str,
    query: &HashMap<String, String>,
    limit: i64,
    rows: &[FindingRow],
) -> Option<String> {
    let last = rows.last().filter(|_| rows.len() as i64 == limit)?;
    let mut pairs: Vec<(&String, &String)> = query
        .iter()
        .filter(|(k, _)| k.as_str() != "after")
        .collect();
    pairs.sort();
    let mut q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    q.push(format!("after={}", last.id));
    Some(format!("{path}?{}", q.join("&")))
}

/// Percent-encodes a query value (everything but unreserved characters and commas).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The collection's text before its first feature (up to and including the `[` of
/// `features`) and after its last one (from the `]`), cut from what serde_json writes for
/// the collection with no features: the bytes of the whole collection as one JSON value,
/// whatever order serde_json gives its members (`next`, when there is one, comes after
/// `features` both in key order and in insertion order).
fn envelope(next: Option<&str>) -> (String, String) {
    let mut collection = json!({"type": "FeatureCollection", "features": []});
    if let Some(n) = next {
        collection["next"] = json!(n);
    }
    let text = collection.to_string();
    const FEATURES: &str = "\"features\":[";
    // Always there: the object above has it, and nothing before it can contain it.
    let cut = text.find(FEATURES).map_or(0, |at| at + FEATURES.len());
    (text[..cut].to_string(), text[cut..].to_string())
}

/// Appends the features of `rows` to `out`, each after a comma but the page's first.
fn write_features(out: &mut Vec<u8>, rows: &[FindingRow], first: &mut bool) {
    for row in rows {
        if !*first {
            out.push(b',');
        }
        *first = false;
        // Writing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &feature_of(row));
    }
}

/// A page read whole, written a chunk at a time: the head, chunks of features, the tail.
fn rendered(rows: Vec<FindingRow>, next: Option<String>) -> impl Iterator<Item = Bytes> {
    let (head, tail) = (envelope(None).0, envelope(next.as_deref()).1);
    let mut rows = rows.into_iter().peekable();
    let mut first = true;
    let mut head = Some(head);
    let mut tail = Some(tail);
    std::iter::from_fn(move || {
        let mut out = Vec::new();
        if let Some(h) = head.take() {
            out.extend_from_slice(h.as_bytes());
        }
        let chunk: Vec<FindingRow> = rows.by_ref().take(CHUNK).collect();
        write_features(&mut out, &chunk, &mut first);
        if rows.peek().is_none() {
            out.extend_from_slice(tail.take()?.as_bytes());
        }
        Some(Bytes::from(out))
    })
}

/// Where a streamed page is.
struct Streaming {
    state: AppState,
    org_id: i64,
    filter: FindingFilter,
    /// The revision the page's ETag was made from.
    revision: FindingsRevision,
    /// The last id written; `None` before the first chunk (the filter's own `after_id`).
    after: Option<i64>,
    first: bool,
    done: bool,
}

/// The whole page without `limit`: a chunk of findings read and written per step, on a
/// blocking thread (the store's calls block).
fn streamed(
    state: AppState,
    org_id: i64,
    filter: FindingFilter,
    revision: FindingsRevision,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let start = Streaming {
        state,
        org_id,
        after: filter.after_id,
        filter,
        revision,
        first: true,
        done: false,
    };
    futures_util::stream::unfold(Some(start), |s| async move {
        let mut s = s.filter(|s| !s.done)?;
        let org_id = s.org_id;
        let step = tokio::task::spawn_blocking(move || {
            let out = next_chunk(&mut s);
            (s, out)
        })
        .await;
        // An error ends the body without the end of its chunked encoding: the client sees
        // a cut-off answer, never a short page that looks whole.
        match step {
            Ok((s, Ok(bytes))) => Some((Ok(bytes), Some(s))),
            Ok((_, Err(e))) => {
                eprintln!("besikta: findings page of organisation {org_id} cut off: {e}");
                Some((Err(e), None))
            }
            Err(e) => {
                eprintln!("besikta: findings page of organisation {org_id} cut off: {e}");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    })
}

/// Reads and writes the next chunk of a streamed page (the head before the first, the tail
/// after the last); an error when the store fails or the organisation's findings were
/// added or removed since the page began.
fn next_chunk(s: &mut Streaming) -> Result<Bytes, std::io::Error> {
    let filter = FindingFilter {
        after_id: s.after,
        limit: Some(CHUNK as i64),
        ..s.filter.clone()
    };
    let store = s.state.store();
    let rows = store
        .findings(s.org_id, &filter)
        .map_err(std::io::Error::other)?;
    // Read after the chunk: a change of rows the chunk could see has raised it by now.
    let now = store
        .findings_revision(s.org_id)
        .map_err(std::io::Error::other)?;
    if now.rows != s.revision.rows {
        return Err(std::io::Error::other(
            "findings were added or removed while the page was written; ask again",
        ));
    }
    let mut out = Vec::new();
    if s.first {
        out.extend_from_slice(envelope(None).0.as_bytes());
    }
    write_features(&mut out, &rows, &mut s.first);
    s.after = rows.last().map(|r| r.id).or(s.after);
    if rows.len() < CHUNK {
        out.extend_from_slice(envelope(None).1.as_bytes());
        s.done = true;
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use besikta_core::finding::{AssetMatch, Finding, Observation};
    use besikta_core::{AssetKind, Review, ReviewState, Severity};

    /// The page as the server built it before streaming (commit 4ff7068): one JSON value.
    fn page_as_one_value(rows: &[FindingRow], next: Option<&str>) -> String {
        let mut body = json!({
            "type": "FeatureCollection",
            "features": rows.iter().map(feature_of).collect::<Vec<_>>(),
        });
        if let Some(n) = next {
            body["next"] = json!(n);
        }
        body.to_string()
    }

    fn row(id: i64) -> FindingRow {
        let (lon, lat) = (24.0 + id as f64 * 1e-4, 60.0 + 1.0 / 3.0);
        let d = 0.00002;
        let finding = Finding {
            id: format!("F{id}"),
            class: "crack".into(),
            asset_kind: AssetKind::Road,
            severity: Severity::Medium,
            confidence: 0.612_345_7,
            length_m: Some(1.0 / 7.0),
            area_m2: 0.5,
            polygon: vec![
                [lon, lat],
                [lon + d, lat],
                [lon + d, lat + d],
                [lon, lat + d],
                [lon, lat],
            ],
            centroid: [lon + d / 2.0, lat + d / 2.0],
            asset: Some(AssetMatch {
                asset_id: "R1".into(),
                asset_name: Some("Road \"one\" \u{e4}".into()),
                asset_kind: AssetKind::Road,
                chainage_m: Some(10.0),
                offset_m: Some(0.5),
                distance_m: 0.0,
                asset_area_m2: Some(1000.0),
            }),
            observations: vec![Observation {
                photo: "/data/flights/1/photos/DJI_0018.JPG".into(),
                class: "crack".into(),
                asset_kind: AssetKind::Road,
                confidence: 0.7,
                pixel_polygon: vec![[1.0, 2.0], [3.0, 2.0], [3.0, 4.0]],
                pixel_bbox: [1.0, 2.0, 3.0, 4.0],
                ground_polygon: vec![],
                length_px: None,
                gsd_cm: 1.7,
                view_quality: 1.0,
                position_uncertainty_m: 1.0,
                pose_sigma_m: None,
                sides_grey: None,
                model: None,
            }],
            best: 0,
            views: 1,
            support: 1,
        };
        FindingRow {
            id,
            org_id: 1,
            flight_id: 7,
            finding_id: finding.id.clone(),
            class: finding.class.clone(),
            severity: finding.severity,
            created_at: 1_780_000_000 + id,
            status: "open".into(),
            review: if id % 2 == 0 {
                Review {
                    state: ReviewState::Confirmed,
                    by: Some("0123456789ab".into()),
                    at: Some("2026-12-02T10:00:00Z".into()),
                    ..Default::default()
                }
            } else {
                Review::default()
            },
            finding,
        }
    }

    fn written(rows: Vec<FindingRow>, next: Option<&str>) -> (String, usize) {
        let chunks: Vec<Bytes> = rendered(rows, next.map(str::to_string)).collect();
        let n = chunks.len();
        let bytes: Vec<u8> = chunks.concat();
        (String::from_utf8(bytes).unwrap(), n)
    }

    #[test]
    fn the_written_page_has_the_bytes_of_the_page_as_one_value() {
        for n in [0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3] {
            let rows: Vec<FindingRow> = (1..=n as i64).map(row).collect();
            for next in [None, Some("/api/v1/findings.geojson?limit=2&after=2")] {
                let (text, chunks) = written(rows.clone(), next);
                assert_eq!(
                    text,
                    page_as_one_value(&rows, next),
                    "{n} findings, {next:?}"
                );
                assert_eq!(chunks, (n.max(1)).div_ceil(CHUNK), "{n} findings");
            }
        }
    }

    #[test]
    fn the_envelope_has_the_same_head_with_and_without_next() {
        let (head, tail) = envelope(None);
        let (head_next, tail_next) = envelope(Some("/x?a=\"b\""));
        assert_eq!(head, head_next);
        assert_eq!(
            format!("{head}{tail}"),
            r#"{"features":[],"type":"FeatureCollection"}"#
        );
        assert!(
            tail_next.starts_with("],\"next\":\"/x?a=\\\"b\\\"\""),
            "{tail_next}"
        );
    }

    #[test]
    fn the_page_bytes_are_pinned_to_the_page_format() {
        // A change of these bytes for the same findings must come with a new PAGE_FORMAT,
        // or maps holding the old page are told it is still current: raise it, then pin the
        // new digest here.
        let rows: Vec<FindingRow> = (1..=3).map(row).collect();
        let (text, _) = written(rows, Some("/api/v1/findings.geojson?after=3&limit=3"));
        assert_eq!(
            (
                PAGE_FORMAT,
                crate::findings::hex_digest(text.as_bytes()).as_str()
            ),
            ("findings-page-1", "2274ddf0d1bfb593c70376b9e7ffa80a")
        );
    }

    #[test]
    fn the_etag_follows_the_revision_the_organisation_path_and_query() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let r = |content| FindingsRevision { content, rows: 1 };
        let all = "/api/v1/findings.geojson";
        let base = page_etag(1, all, &q(&[("class", "crack")]), r(5));
        assert_eq!(base.len(), 34);
        assert_eq!(base, page_etag(1, all, &q(&[("class", "crack")]), r(5)));
        for other in [
            page_etag(1, all, &q(&[("class", "crack")]), r(6)),
            page_etag(2, all, &q(&[("class", "crack")]), r(5)),
            page_etag(
                1,
                "/api/v1/flights/3/findings.geojson",
                &q(&[("class", "crack")]),
                r(5),
            ),
            page_etag(1, all, &q(&[("class", "pothole")]), r(5)),
            page_etag(1, all, &q(&[]), r(5)),
        ] {
            assert_ne!(other, base);
        }
    }
}
