//! Retention of original photos (`besikta serve --retain-photos-days N`, off by default): a
//! sweep, run at start and then every hour, deletes the files of the original photos of
//! flights whose job finished more than N days ago. Findings, products and the crops made at
//! processing time stay, and the photos' rows stay (their names and content hashes name the
//! stored crops), so each finding's default crop is still served; the flight says which
//! photos were removed and when, a crop that would need the photo answers 410, and the
//! flight can no longer be processed again.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::http::StatusCode;
use besikta_store::time::format_rfc3339;
use besikta_store::Photo;
use serde_json::{json, Value};
use std::time::Duration;

/// How often the sweep runs in `besikta serve`.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

const DAY_SECS: i64 = 24 * 3600;

/// Removes the files of the photos due at `now` (seconds since the Unix epoch) and records
/// them as removed. Returns how many were removed; without `retain_photos_days` nothing is
/// done. A photo whose file cannot be deleted is reported and tried again next time.
pub fn sweep(state: &AppState, now: i64) -> Result<usize, String> {
    let Some(days) = state.config().retain_photos_days else {
        return Ok(0);
    };
    let store = state.store();
    let due = store
        .retention_due(now - i64::from(days) * DAY_SECS)
        .map_err(|e| format!("retention: {e}"))?;
    let mut removed = 0;
    for photo in due {
        if let Err(e) = delete_photo_file(state, &photo) {
            eprintln!(
                "besikta: retention: cannot delete {}: {e}; trying again at the next sweep",
                photo.path
            );
            continue;
        }
        store
            .mark_photo_removed(photo.id, now)
            .map_err(|e| format!("retention: {e}"))?;
        removed += 1;
    }
    Ok(removed)
}

/// Deletes one photo's file wherever it lives; a file already gone counts as deleted.
fn delete_photo_file(state: &AppState, photo: &Photo) -> Result<(), String> {
    let storage = state.storage();
    if storage.is_local() {
        return match std::fs::remove_file(state.data_dir().join(&photo.path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.to_string()),
        };
    }
    // Photo names are unique within a flight and the key is the whole relative path.
    storage
        .delete_prefix_blocking(&photo.path)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Runs the sweep now and then every [`SWEEP_EVERY`] on its own thread, while the process
/// lives; nothing when retention is off.
pub fn start(state: &AppState) {
    if state.config().retain_photos_days.is_none() {
        return;
    }
    let state = state.clone();
    let spawned = std::thread::Builder::new()
        .name("besikta-retention".into())
        .spawn(move || loop {
            match sweep(&state, besikta_store::time::now()) {
                Ok(0) => {}
                Ok(n) => eprintln!("besikta: retention removed {n} original photo(s)"),
                Err(e) => eprintln!("besikta: {e}"),
            }
            std::thread::sleep(SWEEP_EVERY);
        });
    if let Err(e) = spawned {
        eprintln!("besikta: cannot start the retention sweep: {e}");
    }
}

/// The flight's `photos_removed` member: each photo retention removed, with when and why.
pub fn flight_member(state: &AppState, flight_id: i64) -> ApiResult<Value> {
    let removed = state.store().removed_photos(flight_id)?;
    Ok(json!(removed
        .iter()
        .map(|r| json!({
            "name": r.name,
            "removed_at": format_rfc3339(r.removed_at),
            "reason": "retention",
        }))
        .collect::<Vec<_>>()))
}

/// 410 when retention removed `photo` (a crop that needs the original cannot be made).
pub fn refuse_removed(state: &AppState, photo: &Photo) -> ApiResult<()> {
    let removed = state.store().removed_photos(photo.flight_id)?;
    if let Some(r) = removed.iter().find(|r| r.photo_id == photo.id) {
        return Err(ApiError::new(
            StatusCode::GONE,
            format!(
                "the original photo {} was removed by the retention period for original photos on {}; the finding's default crop (made when the flight was processed) is still served: leave out view=",
                photo.name,
                format_rfc3339(r.removed_at)
            ),
        ));
    }
    Ok(())
}

/// 409 when retention removed photos of the flight: it cannot be processed again.
pub fn refuse_processing(state: &AppState, flight_id: i64) -> ApiResult<()> {
    let removed = state.store().removed_photos(flight_id)?;
    if let Some(first) = removed.first() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} original photo(s) of this flight were removed by the retention period for original photos (the first on {}), so it cannot be processed again; its findings and crops stay",
                removed.len(),
                format_rfc3339(first.removed_at)
            ),
        ));
    }
    Ok(())
}
