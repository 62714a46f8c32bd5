//! Retention of original photos: which photos a retention sweep removed and when. The rows
//! of removed photos stay (their names and content hashes name the crops made at
//! processing time); only the files go.

use serde::Serialize;

/// A photo whose file a retention sweep removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedPhoto {
    pub photo_id: i64,
    pub name: String,
    /// When its file was removed (seconds since the Unix epoch).
    pub removed_at: i64,
}

/// Which photos a sweep at `finished_before` is due to remove: those of flights that are
/// `done` and whose last finished job ended before that time, not removed yet.
pub(crate) const DUE_WHERE: &str = "f.state = 'done' \
    AND NOT EXISTS (SELECT 1 FROM photo_retention r WHERE r.photo_id = p.id) \
    AND (SELECT MAX(j.updated_at) FROM jobs j WHERE j.flight_id = f.id AND j.state = 'done') < ";
