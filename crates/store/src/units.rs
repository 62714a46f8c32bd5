//! Work units of a job (issue 15): a flight's job is prepared once (the serialised plan is
//! kept here), its photos are inferred in batch units that any worker may claim under a
//! lease, and the job's own worker finishes the flight from every batch's result.

use serde::Serialize;

/// A claimed batch unit: run it, then [`crate::Store::complete_unit`] with the same
/// `attempt`, which proves the lease is still this worker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkUnit {
    pub id: i64,
    pub job_id: i64,
    pub org_id: i64,
    pub flight_id: i64,
    /// The prepared photos it covers: `first..first + count`.
    pub first: i64,
    pub count: i64,
    pub attempt: i64,
}

/// One unit of a job as stored, for the job's worker and for progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitRow {
    pub id: i64,
    pub first: i64,
    pub count: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub attempt: i64,
    /// The worker that last claimed it.
    pub worker: Option<String>,
    /// The batch's result (JSON), once done.
    pub result: Option<String>,
    pub error: Option<String>,
}
