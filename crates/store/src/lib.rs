//! Persistence for the Besikta service: organisations, API tokens, flights, photos,
//! resumable uploads, the job queue and findings, behind the [`Store`] trait.
//!
//! [`SqliteStore`] keeps everything in one embedded SQLite database in WAL mode, so a
//! `besikta token create` in another process can write while the server runs. The job
//! queue lives in the database so a killed server loses nothing: jobs that were `running`
//! when it died are queued again by [`Store::requeue_running`] on start, and a job's
//! findings are replaced in one transaction by [`Store::complete_job`].
//!
//! The store knows nothing about HTTP; every query that reads an organisation's data
//! takes that organisation's id, so one organisation can never see another's rows.

mod carry;
pub mod legacy;
pub mod ops;
#[cfg(feature = "postgres")]
mod postgres;
pub mod quota;
pub mod retention;
mod rows;
mod settings;
mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod time;
pub mod units;

pub use ops::{OrgJobCounts, WorkerBeat, WorkerSeen};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use quota::{PhotoLimits, PhotoUsage, WithinLimits};
pub use settings::{OrgQuota, OrgSettings};
pub use sqlite::SqliteStore;
pub use units::{UnitKind, UnitRow, WorkUnit};

use besikta_core::finding::Finding;
use besikta_core::{Review, ReviewState, Severity};
use serde::{Deserialize, Serialize};

/// Errors of the store, naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {action}: {source}")]
    Sqlite {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("stored data is damaged ({what}): {message}")]
    Corrupt { what: &'static str, message: String },
    #[error("cannot use the database {url}: {message}")]
    Url { url: String, message: String },
    /// A finish unit's results refused ([`Store::complete_finish`], [`Store::fail_finish`]).
    #[error("work unit {unit_id} of job {job_id} is no longer this worker's (claim {attempt}): another worker claimed it after its lease ran out, it went back to the queue, or it is done; nothing was stored, the job is left to the unit's current worker")]
    ClaimLost {
        unit_id: i64,
        job_id: i64,
        attempt: i64,
    },
    #[cfg(feature = "postgres")]
    #[error("database error while {action}: {source}")]
    Postgres {
        action: &'static str,
        #[source]
        source: ::postgres::Error,
    },
    #[cfg(feature = "postgres")]
    #[error("cannot connect to the database {target} (check the --database URL and that PostgreSQL runs there): {source}")]
    Connect {
        target: String,
        #[source]
        source: ::postgres::Error,
    },
    #[cfg(feature = "postgres")]
    #[error("the database connection threads stopped while {action}")]
    Stopped { action: &'static str },
}

/// Opens the store a `--database` value names: `postgres://` and `postgresql://` URLs open
/// a [`PgStore`] (in builds with the `postgres` feature); `sqlite://PATH`, `sqlite:PATH`
/// or a plain file path open a [`SqliteStore`] there.
pub fn open_url(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(std::sync::Arc::new(PgStore::open(url)?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::Url {
            url: url.split('@').next_back().unwrap_or("").to_string(),
            message: "this besikta was built without PostgreSQL support; build it with \
                      `--features besikta-store/postgres`"
                .into(),
        });
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.contains("://") {
        return Err(StoreError::Url {
            url: url.to_string(),
            message: "unknown kind of database; give postgres://user:password@host:port/db \
                      or a SQLite file path"
                .into(),
        });
    }
    Ok(std::sync::Arc::new(SqliteStore::open(
        std::path::Path::new(path),
    )?))
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// What a token may do. Each role's rights are decided by the server; the store only keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Field crew: create flights, upload photos, start processing.
    Crew,
    /// Reads maps and findings.
    Viewer,
    /// Viewer plus exports and work-order status.
    Planner,
    /// Registers and tokens, and everything else in the organisation.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Crew, Role::Viewer, Role::Planner, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Crew => "crew",
            Role::Viewer => "viewer",
            Role::Planner => "planner",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// An organisation (a municipality); every other row belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Org {
    pub id: i64,
    pub name: String,
    /// CRS of its exports (`EPSG:3067`); `None`: the register's CRS.
    pub crs: Option<String>,
}

/// Who a request is from, as found by its token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub org: Org,
    pub role: Role,
    /// The first 12 hex digits of the token's SHA-256: names the token in the audit log
    /// without revealing it.
    pub token: String,
}

/// One line of an organisation's audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// The acting token ([`Principal::token`]), or `command line` for `besikta token`.
    pub token: String,
    /// The acting token's role.
    pub role: String,
    /// `token.created`, `finding.status`, `flight.deleted`, `register.uploaded`.
    pub action: String,
    pub detail: String,
}

/// What [`Store::delete_flight`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum FlightDeleted {
    /// Rows gone; the caller removes `flights/<id>/` and the listed upload part files.
    Deleted {
        flight: Box<Flight>,
        findings: i64,
        upload_ids: Vec<String>,
    },
    /// A job is processing the flight right now; nothing changed.
    Running,
    /// No such flight in the organisation.
    NotFound,
}

/// Where a flight is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlightState {
    Uploading,
    Queued,
    Running,
    Done,
    Failed,
}

impl FlightState {
    pub fn as_str(self) -> &'static str {
        match self {
            FlightState::Uploading => "uploading",
            FlightState::Queued => "queued",
            FlightState::Running => "running",
            FlightState::Done => "done",
            FlightState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<FlightState> {
        Ok(match text {
            "uploading" => FlightState::Uploading,
            "queued" => FlightState::Queued,
            "running" => FlightState::Running,
            "done" => FlightState::Done,
            "failed" => FlightState::Failed,
            other => {
                return Err(StoreError::Corrupt {
                    what: "flight state",
                    message: format!("unknown state {other:?}"),
                })
            }
        })
    }
}

/// A photo the pipeline could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedPhoto {
    pub file: String,
    pub reason: String,
}

/// One flight: a batch of photos processed together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flight {
    pub id: i64,
    #[serde(skip)]
    pub org_id: i64,
    pub name: String,
    pub state: FlightState,
    /// The last progress report of the running job (stage, done, total, file).
    pub progress: Option<serde_json::Value>,
    /// Photos refused at upload or by the pipeline.
    pub rejected: Vec<RejectedPhoto>,
    pub error: Option<String>,
    /// Folder of the finished job's products, relative to the data folder.
    #[serde(skip)]
    pub output_dir: Option<String>,
    pub created_at: String,
    pub photos: i64,
}

/// One stored photo of a flight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Photo {
    pub id: i64,
    pub flight_id: i64,
    /// File name as the crew uploaded it (unique within the flight).
    pub name: String,
    pub sha256: String,
    pub size: u64,
    /// Path relative to the data folder.
    pub path: String,
}

/// What [`Store::add_photo`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum PhotoAdded {
    New(Photo),
    /// The flight already held a photo with the same content; nothing changed.
    Duplicate(Photo),
}

/// A resumable (tus) upload in progress. The offset is the size of its part file on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub id: String,
    pub org_id: i64,
    pub flight_id: i64,
    pub length: u64,
    pub file_name: String,
    pub complete: bool,
    /// Unix seconds (set by [`Store::create_upload`]; ignored there).
    pub created_at: i64,
}

/// A claimed job: run it and then call [`Store::complete_job`] or [`Store::fail_job`] with
/// the same `attempt`, which proves the lease is still this worker's.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub org_id: i64,
    pub flight_id: i64,
    pub attempt: i64,
}

/// Counts of jobs by state, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
}

/// One organisation's figures, for its admins' metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrgStats {
    pub flights: i64,
    pub photos: i64,
    pub photo_bytes: i64,
    pub findings: i64,
    pub jobs: JobCounts,
}

/// A finding of a finished job, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFinding {
    /// The typed finding; its `id` is unique within its flight.
    pub finding: Finding,
    /// WGS 84 `[min_lon, min_lat, max_lon, max_lat]`, for the bbox filter.
    pub bbox: [f64; 4],
}

impl NewFinding {
    /// The finding with the bbox of its outline.
    pub fn new(finding: Finding) -> NewFinding {
        NewFinding {
            bbox: finding.bbox(),
            finding,
        }
    }
}

/// The outcome of a job, stored atomically by [`Store::complete_job`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    /// Folder of the products relative to the data folder.
    pub output_dir: String,
    pub findings: Vec<NewFinding>,
    pub rejected: Vec<RejectedPhoto>,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRow {
    /// Global id, used in URLs.
    pub id: i64,
    pub org_id: i64,
    pub flight_id: i64,
    /// The pipeline's id, unique within its flight (`finding.id`).
    pub finding_id: String,
    /// The model's class (`finding.class`), kept as a column for filters.
    pub class: String,
    /// `finding.severity`, kept as a column for filters.
    pub severity: Severity,
    pub created_at: i64,
    /// Work-order status: `open`, `scheduled`, `in_progress`, `done`, `dismissed`.
    pub status: String,
    pub finding: Finding,
    /// A person's word on it ([`Store::set_review`]); `Unreviewed` by default.
    pub review: Review,
}

/// Counters of an organisation's findings, raised in the same transaction as each change,
/// never lowered (0 before the first change): each raise sets at least the microseconds
/// since 1970 ([`revision_clock`]), so a database restored from a backup does not hand out
/// numbers it already gave to other content. Equal counters mean an unchanged findings
/// page: everything `findings` returns for the organisation (rows, statuses, reviews) is
/// written only by [`Store::complete_job`], [`Store::set_finding_status`],
/// [`Store::set_review`] and [`Store::delete_flight`], and each raises them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FindingsRevision {
    /// Raised by every change of any finding of the organisation, its status or its review.
    pub content: i64,
    /// Raised only when findings are added or removed (a job's results stored, a flight
    /// deleted), so a reader paging by id can tell whether the set it walks changed.
    pub rows: i64,
}

/// The least value a raised [`FindingsRevision`] counter takes: microseconds since 1970.
pub(crate) fn revision_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Filters of a findings query; `None` means no restriction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingFilter {
    pub flight_id: Option<i64>,
    /// WGS 84 `[min_lon, min_lat, max_lon, max_lat]`; findings whose bbox intersects it.
    pub bbox: Option<[f64; 4]>,
    pub classes: Vec<String>,
    pub severities: Vec<Severity>,
    /// Unix seconds; findings stored at or after it.
    pub since: Option<i64>,
    /// Only findings with a larger id (the last id of the previous page).
    pub after_id: Option<i64>,
    /// At most this many, in id order.
    pub limit: Option<i64>,
    /// Findings in one of these review states (a finding without a review is `Unreviewed`).
    pub reviews: Vec<ReviewState>,
}

/// An asset register an organisation uploaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisterRow {
    pub kind: String,
    /// Path relative to the data folder.
    pub path: String,
    pub uploaded_at: String,
}

/// Everything the service keeps, behind one trait so another database can take SQLite's place.
pub trait Store: Send + Sync {
    /// The organisation with this name, created (with `crs`) when missing; an existing
    /// organisation's CRS is updated only when `crs` is given.
    fn ensure_org(&self, name: &str, crs: Option<&str>) -> Result<Org>;
    fn org(&self, org_id: i64) -> Result<Option<Org>>;
    /// Stores a token by its SHA-256 (hex); the plain token is never stored.
    fn insert_token(&self, org_id: i64, role: Role, token_sha256: &str) -> Result<()>;
    fn principal(&self, token_sha256: &str) -> Result<Option<Principal>>;

    fn create_flight(&self, org_id: i64, name: &str) -> Result<Flight>;
    fn flight(&self, org_id: i64, flight_id: i64) -> Result<Option<Flight>>;
    fn flights(&self, org_id: i64) -> Result<Vec<Flight>>;
    /// Adds rejections found at upload time (corrupt file, too large, disk full).
    fn add_upload_rejection(&self, flight_id: i64, rejected: &RejectedPhoto) -> Result<()>;

    /// Records a photo stored at `dir/<name>` (`dir` relative to the data folder), in one
    /// transaction: a photo with the same SHA-256 already in the flight is a no-op
    /// (`Duplicate`); a name another content holds becomes `stem-<sha256 prefix>.ext`.
    /// While a job of the flight runs, a follow-up job is queued for the new photo.
    /// The caller moves the file to the returned path only after this commits, so a file
    /// in place always belongs to its row.
    fn add_photo(
        &self,
        flight_id: i64,
        name: &str,
        sha256: &str,
        size: u64,
        dir: &str,
    ) -> Result<PhotoAdded>;
    /// Forgets a photo row (its file could not be moved into place).
    fn delete_photo(&self, photo_id: i64) -> Result<()>;
    fn photo_by_sha256(&self, flight_id: i64, sha256: &str) -> Result<Option<Photo>>;
    fn photo_by_name(&self, flight_id: i64, name: &str) -> Result<Option<Photo>>;
    fn photos(&self, flight_id: i64) -> Result<Vec<Photo>>;

    fn create_upload(&self, upload: &Upload) -> Result<()>;
    fn upload(&self, org_id: i64, flight_id: i64, upload_id: &str) -> Result<Option<Upload>>;
    fn mark_upload_complete(&self, upload_id: &str) -> Result<()>;
    fn delete_upload(&self, upload_id: &str) -> Result<()>;
    /// Uploads of a flight whose bytes all arrived but were not yet turned into photos.
    fn incomplete_uploads(&self, flight_id: i64) -> Result<Vec<Upload>>;
    /// Every upload not yet finished, of every organisation: a starting server finishes
    /// those whose bytes all arrived before it was killed.
    fn open_uploads(&self) -> Result<Vec<Upload>>;
    /// Forgets uploads created before `created_before` (Unix seconds); returns their ids so
    /// the caller removes their bytes.
    fn expire_uploads(&self, created_before: i64) -> Result<Vec<String>>;

    /// Queues processing of a flight; when a job of that flight is already queued or
    /// running, returns it instead of adding another. A running job covers every photo:
    /// one that arrives during the run queues a follow-up job ([`Store::add_photo`]),
    /// which is then the one returned.
    fn enqueue_job(&self, org_id: i64, flight_id: i64) -> Result<i64>;
    /// `queued`, `running`, `done` or `failed`.
    fn job_state(&self, job_id: i64) -> Result<Option<String>>;
    /// Takes a queued job of a flight no other job is running for, and leases it for
    /// `lease_secs`: of the organisation with the fewest running jobs (fair share: one
    /// organisation's many flights do not starve the others), the oldest.
    fn claim_job(&self, lease_secs: i64) -> Result<Option<Job>>;
    /// Extends the lease and records progress; false when the lease was lost.
    fn renew_job(&self, job: &Job, lease_secs: i64, progress: &serde_json::Value) -> Result<bool>;
    /// Replaces the flight's findings and marks job and flight done, all in one transaction.
    /// Returns the previous output folder (to delete), or `Err`/`Ok(None)`; false lease: no change.
    fn complete_job(&self, job: &Job, result: &JobResult) -> Result<CompleteOutcome>;
    fn fail_job(&self, job: &Job, error: &str) -> Result<()>;
    /// Queues again every job left `running` (by a server that died); returns how many.
    fn requeue_running(&self) -> Result<usize>;
    /// Queues again `running` jobs whose lease expired; returns how many.
    fn requeue_expired(&self) -> Result<usize>;
    /// Jobs by state across all organisations (the health check's query).
    fn job_counts(&self) -> Result<JobCounts>;
    /// Counts of one organisation's flights, photos, findings and jobs.
    fn org_stats(&self, org_id: i64) -> Result<OrgStats>;

    fn findings(&self, org_id: i64, filter: &FindingFilter) -> Result<Vec<FindingRow>>;
    /// How often the organisation's findings changed so far ([`FindingsRevision`]): one
    /// small read, so a findings page's `ETag` is known without reading the findings.
    fn findings_revision(&self, org_id: i64) -> Result<FindingsRevision>;
    fn finding(&self, org_id: i64, id: i64) -> Result<Option<FindingRow>>;
    /// Sets a finding's work-order status; false when no such finding in the organisation.
    fn set_finding_status(&self, org_id: i64, id: i64, status: &str) -> Result<bool>;
    /// Stores a person's review of a finding and appends `finding.review` to the audit log
    /// (token `review.by`, `role`), in one transaction; the store sets `review.at`.
    /// `Unreviewed` removes the review. Returns the stored review, `None` when the
    /// organisation has no such finding. A review follows its finding when the flight is
    /// processed again ([`Store::complete_job`]): to the new finding of the same class whose
    /// bbox overlaps the old one's best.
    fn set_review(
        &self,
        org_id: i64,
        id: i64,
        review: &Review,
        role: &str,
    ) -> Result<Option<Review>>;
    /// The review of a finding (`Unreviewed` when none); `None` when the organisation has
    /// no such finding.
    fn review(&self, org_id: i64, id: i64) -> Result<Option<Review>>;

    /// Deletes a flight with its photos, uploads, queued jobs and findings in one
    /// transaction (not while a job runs it); its files are the caller's to remove.
    fn delete_flight(&self, org_id: i64, flight_id: i64) -> Result<FlightDeleted>;

    /// Appends to the organisation's audit log.
    fn record_audit(
        &self,
        org_id: i64,
        token: &str,
        role: &str,
        action: &str,
        detail: &str,
    ) -> Result<()>;
    /// The newest `limit` entries of the organisation's audit log, newest first.
    fn audit(&self, org_id: i64, limit: i64) -> Result<Vec<AuditEntry>>;

    fn put_register(&self, org_id: i64, kind: &str, path: &str) -> Result<()>;
    fn registers(&self, org_id: i64) -> Result<Vec<RegisterRow>>;
    /// The organisation's settings (the defaults when its admin never set any).
    fn org_settings(&self, org_id: i64) -> Result<OrgSettings>;
    /// Replaces the organisation's settings.
    fn set_org_settings(&self, org_id: i64, settings: &OrgSettings) -> Result<()>;
    /// Output folders still referenced by a flight, relative to the data folder.
    fn output_dirs(&self) -> Result<Vec<String>>;

    /// Records that a worker is alive now (the database's clock), with the job in hand;
    /// heartbeats silent for a week are dropped.
    fn beat_worker(&self, beat: &WorkerBeat) -> Result<()>;
    /// Forgets a worker that stopped cleanly.
    fn forget_worker(&self, id: &str) -> Result<()>;
    /// Every worker that beat and did not stop cleanly, with the seconds since its last beat.
    fn workers(&self) -> Result<Vec<WorkerSeen>>;
    /// Puts a running job back in the queue at once, for a worker that stops before it
    /// finishes (so another takes it without waiting for the lease to end); false when the
    /// lease was no longer this attempt's.
    fn release_job(&self, job: &Job) -> Result<bool>;
    /// Jobs by state of every organisation that has jobs, for the operator's metrics.
    fn job_counts_by_org(&self) -> Result<Vec<OrgJobCounts>>;

    /// Work units (issue 15, [`units`]): keeps a running job's prepared flight (once: a
    /// later attempt of the job finds the first one's) and queues its batch units
    /// `(first photo, count)` and its finish unit; units already there keep their state
    /// and results. From then on the job is the units' (never re-queued by
    /// [`Store::requeue_expired`] or [`Store::requeue_running`]): its worker may leave it.
    fn put_units(&self, job: &Job, prepared: &str, batches: &[(i64, i64)]) -> Result<()>;
    /// The job's prepared flight, when [`Store::put_units`] stored one.
    fn unit_plan(&self, job_id: i64) -> Result<Option<String>>;
    /// Takes a queued unit of a running job (of `job_id` only, when given), or a running
    /// one whose lease ran out, leasing it to `worker` for `lease_secs`: of the
    /// organisation with the fewest running units, a finish unit before batches, then the
    /// oldest. A finish unit is free once none of its job's batches is queued or running;
    /// claiming it starts a new attempt of the job, leased to the same worker
    /// ([`WorkUnit::job_attempt`]), so an earlier finisher can no longer store the job.
    fn claim_unit(
        &self,
        lease_secs: i64,
        job_id: Option<i64>,
        worker: &str,
    ) -> Result<Option<WorkUnit>>;
    /// Extends a unit's lease; false when it is no longer this attempt's.
    fn renew_unit(&self, unit: &WorkUnit, lease_secs: i64) -> Result<bool>;
    /// Stores a unit's result (or its error: the unit fails); false when the lease was
    /// no longer this attempt's (nothing stored).
    fn complete_unit(
        &self,
        unit: &WorkUnit,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<bool>;
    /// The job's units by first photo, with their results when asked.
    fn units(&self, job_id: i64, with_results: bool) -> Result<Vec<UnitRow>>;
    /// One unit's result (JSON), when it has one: for reading a flight's batch results one
    /// at a time, so the finishing worker does not hold every batch's text at once.
    fn unit_result(&self, unit_id: i64) -> Result<Option<String>>;
    /// Forgets a finished job's prepared flight and its units' results; the units stay as
    /// the record of who ran which photos.
    fn delete_units(&self, job_id: i64) -> Result<()>;

    /// Photos a retention sweep is due to remove: of flights that are `done` and whose
    /// last finished job ended before `finished_before` (seconds), not removed yet.
    fn retention_due(&self, finished_before: i64) -> Result<Vec<Photo>>;
    /// Records that retention removed the photo's file at `at`; its row stays.
    fn mark_photo_removed(&self, photo_id: i64, at: i64) -> Result<()>;
    /// The flight's photos whose files retention removed.
    fn removed_photos(&self, flight_id: i64) -> Result<Vec<retention::RemovedPhoto>>;
    /// How many of the organisation's photos retention removed, and their bytes (no
    /// longer stored, so not counted against its quota).
    fn removed_photo_totals(&self, org_id: i64) -> Result<(i64, i64)>;
    /// Work units by state over every job, for the operator's metrics.
    fn unit_counts(&self) -> Result<JobCounts>;
    /// Puts a running unit back in the queue at once, for a worker that stops before it
    /// finishes (so another takes it without waiting for the lease to end); false when the
    /// lease was no longer this attempt's.
    fn release_unit(&self, unit: &WorkUnit) -> Result<bool>;
    /// Work units by state of every organisation that has units, for the operator's
    /// metrics (`jobs` of each [`OrgJobCounts`] counts units).
    fn unit_counts_by_org(&self) -> Result<Vec<OrgJobCounts>>;
    /// [`Store::add_photo`] within the flight's organisation's `limits`: what the
    /// organisation holds (photos retention removed left out) is counted and the photo
    /// recorded in one transaction that every other writer of the database, in any
    /// process, waits for; a photo that would go over a limit is not recorded (`Over`).
    /// A duplicate takes no room and is never refused.
    fn add_photo_within(
        &self,
        flight_id: i64,
        name: &str,
        sha256: &str,
        size: u64,
        dir: &str,
        limits: PhotoLimits,
    ) -> Result<WithinLimits>;
    /// [`Store::complete_job`] by the claim of the job's finish unit: the job's results
    /// stored for the job attempt the claim started ([`WorkUnit::job_attempt`]) and the
    /// unit marked done, in one transaction, so the job is never done while its finish unit
    /// is not (and a finisher that dies in between leaves nothing to redo). Refused with
    /// [`StoreError::ClaimLost`], storing nothing, when `unit` is not a finish unit running
    /// under this claim (another worker claimed it after its lease ran out, it was put back
    /// in the queue, or it is done); `LeaseLost` (nothing stored, the unit still running)
    /// when the claim holds but the job attempt is over.
    fn complete_finish(&self, unit: &WorkUnit, result: &JobResult) -> Result<CompleteOutcome>;
    /// [`Store::fail_job`] by the claim of the job's finish unit: the job and flight failed
    /// and the unit done, in one transaction; refused like [`Store::complete_finish`]
    /// (nothing changes when the job attempt is over).
    fn fail_finish(&self, unit: &WorkUnit, error: &str) -> Result<()>;
}

/// What [`Store::complete_job`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CompleteOutcome {
    /// Stored; the flight's previous output folder, if any, is no longer referenced.
    Stored { previous_output_dir: Option<String> },
    /// The lease was lost (the job was re-queued meanwhile); nothing stored.
    LeaseLost,
}
