//! What SQLite and PostgreSQL share around their SQL: turning stored words and JSON into
//! types, a photo's free name, a flight's rejected lists, and a review's stored form and
//! audit line. Each backend keeps its own queries and calls these on what it read.

use crate::time::format_rfc3339;
use crate::{RejectedPhoto, Result, StoreError};
use besikta_core::{RejectReason, Review, ReviewState, Severity};

/// Maps a JSON error to [`StoreError::Corrupt`] about `what`.
pub(crate) fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    }
}

/// A stored word (`Severity`, `ReviewState`, ...) parsed; an unknown one is
/// [`StoreError::Corrupt`] about `what`.
pub(crate) fn word<T: std::str::FromStr<Err = besikta_core::UnknownWord>>(
    what: &'static str,
    text: &str,
) -> Result<T> {
    text.parse()
        .map_err(|e: besikta_core::UnknownWord| StoreError::Corrupt {
            what,
            message: e.to_string(),
        })
}

/// A flight's progress column: empty or missing is `None`.
pub(crate) fn flight_progress(text: Option<&str>) -> Result<Option<serde_json::Value>> {
    match text.filter(|p| !p.is_empty()) {
        Some(text) => Ok(Some(
            serde_json::from_str(text).map_err(corrupt("flight progress"))?,
        )),
        None => Ok(None),
    }
}

/// A flight's rejected photos: those refused at upload first, then the pipeline's.
pub(crate) fn flight_rejected(pipeline: &str, upload: &str) -> Result<Vec<RejectedPhoto>> {
    let mut all: Vec<RejectedPhoto> =
        serde_json::from_str(upload).map_err(corrupt("rejected photos"))?;
    all.extend(
        serde_json::from_str::<Vec<RejectedPhoto>>(pipeline).map_err(corrupt("rejected photos"))?,
    );
    Ok(all)
}

/// The upload-rejected list `current` (JSON) with `rejected` in it, replacing an earlier
/// rejection of the same file; JSON again.
pub(crate) fn with_upload_rejection(current: &str, rejected: &RejectedPhoto) -> Result<String> {
    let mut list: Vec<RejectedPhoto> =
        serde_json::from_str(current).map_err(corrupt("rejected photos"))?;
    list.retain(|r| r.file != rejected.file);
    list.push(rejected.clone());
    serde_json::to_string(&list).map_err(corrupt("rejected photos"))
}

/// The name a photo is stored under: its own, else with the start of its hash added
/// (`SAME-1a2b3c4d.JPG`: same name, different content, as from two cameras), longer
/// prefixes when even that is taken.
pub(crate) fn name_candidates(name: &str, sha256: &str) -> Vec<String> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    let mut out = vec![name.to_string()];
    for n in [8, 16, 64] {
        out.push(format!("{stem}-{}{ext}", &sha256[..n.min(sha256.len())]));
    }
    out
}

/// The first of [`name_candidates`] that `taken` says is free in flight `flight_id`.
pub(crate) fn free_name(
    name: &str,
    sha256: &str,
    flight_id: i64,
    mut taken: impl FnMut(&str) -> Result<bool>,
) -> Result<String> {
    for candidate in name_candidates(name, sha256) {
        if !taken(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(StoreError::Corrupt {
        what: "photo names",
        message: format!("every name for {name} (sha256 {sha256}) is taken in flight {flight_id}"),
    })
}

/// A review row as read, before its words are parsed.
pub(crate) struct ReviewRow {
    pub state: String,
    pub reason: Option<String>,
    pub reviewer: String,
    pub reviewed_at: i64,
    pub comment: Option<String>,
    pub class: Option<String>,
    pub severity: Option<String>,
    pub outline: Option<String>,
}

/// The review of a stored review row.
pub(crate) fn review_of(r: ReviewRow) -> Result<Review> {
    const WHAT: &str = "finding review";
    Ok(Review {
        state: word::<ReviewState>(WHAT, &r.state)?,
        reason: r
            .reason
            .as_deref()
            .map(|r| word::<RejectReason>(WHAT, r))
            .transpose()?,
        by: Some(r.reviewer),
        at: Some(format_rfc3339(r.reviewed_at)),
        comment: r.comment,
        corrected_class: r.class,
        corrected_severity: r
            .severity
            .as_deref()
            .map(|s| word::<Severity>(WHAT, s))
            .transpose()?,
        corrected_polygon: r
            .outline
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(corrupt("corrected outline of a review"))?,
    })
}

/// The corrected outline of `review` as stored (JSON), if it has one.
pub(crate) fn review_outline(review: &Review) -> Result<Option<String>> {
    review
        .corrected_polygon
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(corrupt("corrected outline of a review"))
}

/// `review` as stored by token `by` at `at` (Unix seconds).
pub(crate) fn stored_review(review: &Review, by: &str, at: i64) -> Review {
    Review {
        by: Some(by.to_string()),
        at: Some(format_rfc3339(at)),
        ..review.clone()
    }
}

/// The audit log's detail of storing `review` of finding `id`.
pub(crate) fn review_audit_detail(id: i64, review: &Review) -> String {
    let mut detail = format!("finding {id} {}", review.state);
    if let Some(r) = review.reason {
        detail.push_str(&format!(" ({r})"));
    }
    if let Some(c) = &review.corrected_class {
        detail.push_str(&format!(", class {c}"));
    }
    if let Some(s) = review.corrected_severity {
        detail.push_str(&format!(", severity {s}"));
    }
    detail
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_name_without_an_extension_gets_the_hash_start_at_its_end() {
        let h1 = "1111111111111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(super::name_candidates("README", h1)[1], "README-11111111");
    }
}
