//! What operations read from the store: worker heartbeats and the queue per organisation.

use crate::JobCounts;
use serde::Serialize;

/// A worker's heartbeat: a built-in worker thread of `besikta serve` or one of a
/// `besikta worker` process, with the job in hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerBeat {
    /// Unique per worker: `<host>:<pid>:<thread>`.
    pub id: String,
    pub host: String,
    /// `serve` (a built-in worker thread) or `worker` (a `besikta worker` process).
    pub kind: String,
    /// The job it is running, if any.
    pub job_id: Option<i64>,
}

/// A worker as the store last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerSeen {
    pub id: String,
    pub host: String,
    pub kind: String,
    pub job_id: Option<i64>,
    /// Seconds since its last heartbeat, by the database's clock.
    pub seconds_since: i64,
}

/// Jobs by state of one organisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgJobCounts {
    pub org_id: i64,
    pub org: String,
    pub jobs: JobCounts,
}

/// Heartbeats older than this are dropped when workers beat: a machine gone for good
/// stops showing after a week.
pub const FORGET_WORKERS_AFTER_SECS: i64 = 7 * 24 * 3600;

/// What counting `table` by organisation is doing, for errors.
pub(crate) fn doing_counts(table: &str) -> &'static str {
    if table == "jobs" {
        "counting jobs by organisation"
    } else {
        "counting work units by organisation"
    }
}

/// Adds `n` jobs in `state` to `counts` (unknown states are not counted).
pub(crate) fn add_count(counts: &mut JobCounts, state: &str, n: i64) {
    match state {
        "queued" => counts.queued += n,
        "running" => counts.running += n,
        "done" => counts.done += n,
        "failed" => counts.failed += n,
        _ => {}
    }
}
