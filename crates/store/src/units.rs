//! Work units of a job (issue 15): a flight's job is prepared once (the serialised plan is
//! kept here), its photos are inferred in batch units that any worker may claim under a
//! lease, and one finish unit (claimable once no batch is queued or running) finishes the
//! flight from every batch's result; claiming it takes the job over (a new job attempt),
//! and the job's results are stored with the unit marked done in one transaction
//! ([`crate::Store::complete_finish`]), refused once another worker holds the claim.
//! Units are handed out by fair share: the organisation with the fewest running units
//! first, then finish units, then the oldest.

use crate::{Job, StoreError};
use serde::Serialize;

/// What a unit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Inference over a run of the prepared photos.
    Batch,
    /// Alignment of the batches' results, merging, matching, exports and the job's result.
    Finish,
}

impl UnitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Batch => "batch",
            UnitKind::Finish => "finish",
        }
    }

    /// The stored kind; anything but `finish` is a batch.
    pub fn parse(s: &str) -> UnitKind {
        if s == "finish" {
            UnitKind::Finish
        } else {
            UnitKind::Batch
        }
    }
}

/// A claimed unit: run it, then [`crate::Store::complete_unit`] with the same
/// `attempt`, which proves the lease is still this worker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkUnit {
    pub id: i64,
    pub kind: UnitKind,
    /// The job's attempt: for a finish unit the new one its claim started (the job is
    /// this worker's to complete or fail with it); for a batch the job's current one.
    pub job_attempt: i64,
    pub job_id: i64,
    pub org_id: i64,
    pub flight_id: i64,
    /// The prepared photos it covers: `first..first + count` (a finish unit: the photo
    /// count, 0).
    pub first: i64,
    pub count: i64,
    pub attempt: i64,
}

impl WorkUnit {
    /// The job as the claim holds it: for a finish unit, the attempt its claim started.
    pub fn job(&self) -> Job {
        Job {
            id: self.job_id,
            org_id: self.org_id,
            flight_id: self.flight_id,
            attempt: self.job_attempt,
        }
    }

    /// The refusal of a finish whose claim is no longer this one.
    pub(crate) fn claim_lost(&self) -> StoreError {
        StoreError::ClaimLost {
            unit_id: self.id,
            job_id: self.job_id,
            attempt: self.attempt,
        }
    }
}

/// One unit of a job as stored, for the job's worker and for progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitRow {
    pub id: i64,
    pub kind: UnitKind,
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
