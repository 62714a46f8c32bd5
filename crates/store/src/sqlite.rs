//! The SQLite implementation of [`Store`]: one connection behind a mutex, WAL journal.

use crate::quota::{PhotoLimits, WithinLimits};
use crate::rows::corrupt;
use crate::time::{format_rfc3339, now};
use crate::{
    AuditEntry, CompleteOutcome, FindingFilter, FindingRow, Flight, FlightDeleted, FlightState,
    Job, JobCounts, JobResult, Org, OrgStats, Photo, PhotoAdded, Principal, RegisterRow,
    RejectedPhoto, Result, Role, Store, StoreError, Upload,
};
use besikta_core::finding::Finding;
use besikta_core::Severity;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

mod ops;
mod retention;
mod review;
mod revision;
mod settings;
mod units;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS orgs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    crs TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    sha256 TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS flights (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    progress TEXT,
    rejected TEXT NOT NULL DEFAULT '[]',
    upload_rejected TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    output_dir TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY,
    flight_id INTEGER NOT NULL REFERENCES flights(id),
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    path TEXT NOT NULL,
    UNIQUE (flight_id, sha256),
    UNIQUE (flight_id, name)
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    flight_id INTEGER NOT NULL REFERENCES flights(id),
    length INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    flight_id INTEGER NOT NULL REFERENCES flights(id),
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    flight_id INTEGER NOT NULL REFERENCES flights(id),
    finding_id TEXT NOT NULL,
    class TEXT NOT NULL,
    severity TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    min_x REAL NOT NULL, min_y REAL NOT NULL, max_x REAL NOT NULL, max_y REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    -- serde JSON of besikta_core::finding::Finding (schema version 1; before it, a
    -- GeoJSON feature in a column `feature`, see `migrate`).
    finding TEXT NOT NULL,
    UNIQUE (flight_id, finding_id)
);
CREATE INDEX IF NOT EXISTS findings_org ON findings(org_id, created_at);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    at INTEGER NOT NULL,
    token TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_org ON audit(org_id, id);
CREATE TABLE IF NOT EXISTS registers (
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, kind)
);
"#;

/// The SQLite store; cheap to share behind an `Arc`.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn sql(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { action, source }
}

impl SqliteStore {
    /// Opens (creating when missing) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // WAL lets readers and the token command work while a job writes; the busy
        // timeout makes a second process wait for the lock instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        migrate(&conn)?;
        conn.execute_batch(review::SCHEMA).map_err(open_err)?;
        conn.execute_batch(ops::SCHEMA).map_err(open_err)?;
        conn.execute_batch(settings::SCHEMA).map_err(open_err)?;
        conn.execute_batch(units::SCHEMA).map_err(open_err)?;
        units::upgrade(&conn)?;
        conn.execute_batch(retention::SCHEMA).map_err(open_err)?;
        conn.execute_batch(revision::SCHEMA).map_err(open_err)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back
        // on drop), so a poisoned mutex is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

const FLIGHT_COLUMNS: &str =
    "f.id, f.org_id, f.name, f.state, f.progress, f.rejected, f.upload_rejected, \
     f.error, f.output_dir, f.created_at, (SELECT COUNT(*) FROM photos p WHERE p.flight_id = f.id)";

fn flight_from_row(row: &Row<'_>) -> rusqlite::Result<(Flight, String, String, String)> {
    Ok((
        Flight {
            id: row.get(0)?,
            org_id: row.get(1)?,
            name: row.get(2)?,
            state: FlightState::Uploading,
            progress: None,
            rejected: Vec::new(),
            error: row.get(7)?,
            output_dir: row.get(8)?,
            created_at: format_rfc3339(row.get(9)?),
            photos: row.get(10)?,
        },
        row.get::<_, String>(3)?,
        row.get::<_, Option<String>>(4)?.unwrap_or_default(),
        format!(
            "{}\u{0}{}",
            row.get::<_, String>(5)?,
            row.get::<_, String>(6)?
        ),
    ))
}

fn finish_flight(parts: (Flight, String, String, String)) -> Result<Flight> {
    let (mut flight, state, progress, rejected) = parts;
    flight.state = FlightState::parse(&state)?;
    flight.progress = crate::rows::flight_progress(Some(&progress))?;
    let (pipeline, upload) = rejected.split_once('\u{0}').unwrap_or((&rejected, "[]"));
    flight.rejected = crate::rows::flight_rejected(pipeline, upload)?;
    Ok(flight)
}

fn photo_from_row(row: &Row<'_>) -> rusqlite::Result<Photo> {
    Ok(Photo {
        id: row.get(0)?,
        flight_id: row.get(1)?,
        name: row.get(2)?,
        sha256: row.get(3)?,
        size: row.get::<_, i64>(4)? as u64,
        path: row.get(5)?,
    })
}

const PHOTO_COLUMNS: &str = "id, flight_id, name, sha256, size, path";
const FINDING_COLUMNS: &str =
    "id, org_id, flight_id, finding_id, class, severity, created_at, status, finding";

/// Severity and finding JSON of a row, read after the row (`finish_finding`).
type RawFinding = (FindingRow, String, Option<String>);

fn finding_from_row(row: &Row<'_>) -> rusqlite::Result<RawFinding> {
    Ok((
        FindingRow {
            id: row.get(0)?,
            org_id: row.get(1)?,
            flight_id: row.get(2)?,
            finding_id: row.get(3)?,
            class: row.get(4)?,
            severity: Severity::Low,
            created_at: row.get(6)?,
            status: row.get(7)?,
            finding: placeholder_finding(),
            review: Default::default(),
        },
        row.get(5)?,
        row.get(8)?,
    ))
}

/// Stands in for the finding until its JSON is parsed.
fn placeholder_finding() -> Finding {
    Finding {
        id: String::new(),
        class: String::new(),
        asset_kind: besikta_core::AssetKind::Road,
        severity: Severity::Low,
        confidence: 0.0,
        length_m: None,
        area_m2: 0.0,
        polygon: Vec::new(),
        centroid: [0.0, 0.0],
        asset: None,
        observations: Vec::new(),
        best: 0,
        views: 0,
        support: 0,
    }
}

fn finish_finding((mut f, severity, finding): RawFinding) -> Result<FindingRow> {
    f.severity = crate::rows::word("finding severity", &severity)?;
    let finding = finding.ok_or_else(|| StoreError::Corrupt {
        what: "finding",
        message: format!("finding {} has no stored content", f.id),
    })?;
    f.finding = serde_json::from_str(&finding).map_err(corrupt("finding"))?;
    Ok(f)
}

/// The schema version this code writes (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Brings a database written by older code up to [`SCHEMA_VERSION`], in one transaction.
///
/// Version 1: findings are typed. A database from before (version 0 with a `feature`
/// column of GeoJSON) gets a `finding` column, each row's feature converted by
/// [`crate::legacy::finding_from_feature`], and the `feature` column dropped
/// (`ALTER TABLE`, not a rebuild: triggers on `findings` stay).
fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql("reading the schema version"))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let has_feature: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('findings') WHERE name = 'feature')",
            [],
            |r| r.get(0),
        )
        .map_err(sql("reading the findings table's columns"))?;
    let tx = conn
        .unchecked_transaction()
        .map_err(sql("upgrading the database"))?;
    if has_feature {
        tx.execute_batch("ALTER TABLE findings ADD COLUMN finding TEXT")
            .map_err(sql("adding typed findings to the database"))?;
        let rows = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, finding_id, class, severity, min_x, min_y, max_x, max_y, feature FROM findings",
                )
                .map_err(sql("reading findings to upgrade"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?],
                        r.get::<_, Option<String>>(8)?,
                    ))
                })
                .map_err(sql("reading findings to upgrade"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("reading findings to upgrade"))?;
            rows
        };
        for (id, finding_id, class, severity, bbox, feature) in rows {
            let feature: serde_json::Value = feature
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null);
            let typed =
                crate::legacy::finding_from_feature(&feature, &finding_id, &class, &severity, bbox);
            let text = serde_json::to_string(&typed).map_err(corrupt("finding"))?;
            tx.execute(
                "UPDATE findings SET finding = ?1, severity = ?2 WHERE id = ?3",
                params![text, typed.severity.as_str(), id],
            )
            .map_err(sql("upgrading a stored finding"))?;
        }
        tx.execute_batch("ALTER TABLE findings DROP COLUMN feature")
            .map_err(sql("removing the old findings column"))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sql("recording the schema version"))?;
    tx.commit().map_err(sql("upgrading the database"))
}

impl Store for SqliteStore {
    fn ensure_org(&self, name: &str, crs: Option<&str>) -> Result<Org> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO orgs (name, crs) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET crs = COALESCE(?2, crs)",
            params![name, crs],
        )
        .map_err(sql("creating the organisation"))?;
        conn.query_row(
            "SELECT id, name, crs FROM orgs WHERE name = ?1",
            [name],
            |r| {
                Ok(Org {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    crs: r.get(2)?,
                })
            },
        )
        .map_err(sql("reading the organisation"))
    }

    fn org(&self, org_id: i64) -> Result<Option<Org>> {
        self.conn()
            .query_row(
                "SELECT id, name, crs FROM orgs WHERE id = ?1",
                [org_id],
                |r| {
                    Ok(Org {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        crs: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(sql("reading the organisation"))
    }

    fn insert_token(&self, org_id: i64, role: Role, token_sha256: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO tokens (sha256, org_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![token_sha256, org_id, role.as_str(), now()],
            )
            .map_err(sql("storing the token"))?;
        Ok(())
    }

    fn principal(&self, token_sha256: &str) -> Result<Option<Principal>> {
        let row = self
            .conn()
            .query_row(
                "SELECT o.id, o.name, o.crs, t.role FROM tokens t JOIN orgs o ON o.id = t.org_id WHERE t.sha256 = ?1",
                [token_sha256],
                |r| {
                    Ok((
                        Org {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            crs: r.get(2)?,
                        },
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(sql("looking up the token"))?;
        match row {
            None => Ok(None),
            Some((org, role)) => {
                let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt {
                    what: "token role",
                    message: format!("unknown role {role:?}"),
                })?;
                Ok(Some(Principal {
                    org,
                    role,
                    token: token_sha256.chars().take(12).collect(),
                }))
            }
        }
    }

    fn create_flight(&self, org_id: i64, name: &str) -> Result<Flight> {
        let id = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO flights (org_id, name, state, created_at) VALUES (?1, ?2, 'uploading', ?3)",
                params![org_id, name, now()],
            )
            .map_err(sql("creating the flight"))?;
            conn.last_insert_rowid()
        };
        self.flight(org_id, id)?.ok_or_else(|| StoreError::Corrupt {
            what: "flight",
            message: format!("flight {id} vanished right after it was created"),
        })
    }

    fn flight(&self, org_id: i64, flight_id: i64) -> Result<Option<Flight>> {
        let row = self
            .conn()
            .query_row(
                &format!(
                    "SELECT {FLIGHT_COLUMNS} FROM flights f WHERE f.id = ?1 AND f.org_id = ?2"
                ),
                params![flight_id, org_id],
                flight_from_row,
            )
            .optional()
            .map_err(sql("reading the flight"))?;
        row.map(finish_flight).transpose()
    }

    fn flights(&self, org_id: i64) -> Result<Vec<Flight>> {
        let rows = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {FLIGHT_COLUMNS} FROM flights f WHERE f.org_id = ?1 ORDER BY f.id DESC"
                ))
                .map_err(sql("listing flights"))?;
            let rows = stmt
                .query_map([org_id], flight_from_row)
                .map_err(sql("listing flights"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing flights"))?;
            rows
        };
        rows.into_iter().map(finish_flight).collect()
    }

    fn add_upload_rejection(&self, flight_id: i64, rejected: &RejectedPhoto) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(sql("recording a rejected upload"))?;
        let current: String = tx
            .query_row(
                "SELECT upload_rejected FROM flights WHERE id = ?1",
                [flight_id],
                |r| r.get(0),
            )
            .map_err(sql("recording a rejected upload"))?;
        let text = crate::rows::with_upload_rejection(&current, rejected)?;
        tx.execute(
            "UPDATE flights SET upload_rejected = ?1 WHERE id = ?2",
            params![text, flight_id],
        )
        .map_err(sql("recording a rejected upload"))?;
        tx.commit().map_err(sql("recording a rejected upload"))
    }

    fn add_photo(
        &self,
        flight_id: i64,
        name: &str,
        sha256: &str,
        size: u64,
        dir: &str,
    ) -> Result<PhotoAdded> {
        let added =
            self.add_photo_within(flight_id, name, sha256, size, dir, PhotoLimits::default())?;
        crate::quota::without_limits(added)
    }

    fn delete_photo(&self, photo_id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM photos WHERE id = ?1", [photo_id])
            .map_err(sql("deleting the photo"))?;
        Ok(())
    }

    fn photo_by_sha256(&self, flight_id: i64, sha256: &str) -> Result<Option<Photo>> {
        self.conn()
            .query_row(
                &format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE flight_id = ?1 AND sha256 = ?2"),
                params![flight_id, sha256],
                photo_from_row,
            )
            .optional()
            .map_err(sql("looking up a photo"))
    }

    fn photo_by_name(&self, flight_id: i64, name: &str) -> Result<Option<Photo>> {
        self.conn()
            .query_row(
                &format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE flight_id = ?1 AND name = ?2"),
                params![flight_id, name],
                photo_from_row,
            )
            .optional()
            .map_err(sql("looking up a photo"))
    }

    fn photos(&self, flight_id: i64) -> Result<Vec<Photo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {PHOTO_COLUMNS} FROM photos WHERE flight_id = ?1 ORDER BY name"
            ))
            .map_err(sql("listing photos"))?;
        let rows = stmt
            .query_map([flight_id], photo_from_row)
            .map_err(sql("listing photos"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("listing photos"));
        rows
    }

    fn create_upload(&self, upload: &Upload) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO uploads (id, org_id, flight_id, length, file_name, complete, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    upload.id,
                    upload.org_id,
                    upload.flight_id,
                    upload.length as i64,
                    upload.file_name,
                    upload.complete,
                    now()
                ],
            )
            .map_err(sql("creating the upload"))?;
        Ok(())
    }

    fn upload(&self, org_id: i64, flight_id: i64, upload_id: &str) -> Result<Option<Upload>> {
        self.conn()
            .query_row(
                "SELECT id, org_id, flight_id, length, file_name, complete, created_at FROM uploads WHERE id = ?1 AND org_id = ?2 AND flight_id = ?3",
                params![upload_id, org_id, flight_id],
                upload_from_row,
            )
            .optional()
            .map_err(sql("reading the upload"))
    }

    fn mark_upload_complete(&self, upload_id: &str) -> Result<()> {
        self.conn()
            .execute("UPDATE uploads SET complete = 1 WHERE id = ?1", [upload_id])
            .map_err(sql("finishing the upload"))?;
        Ok(())
    }

    fn delete_upload(&self, upload_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM uploads WHERE id = ?1", [upload_id])
            .map_err(sql("deleting the upload"))?;
        Ok(())
    }

    fn incomplete_uploads(&self, flight_id: i64) -> Result<Vec<Upload>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, org_id, flight_id, length, file_name, complete, created_at FROM uploads WHERE flight_id = ?1 AND complete = 0")
            .map_err(sql("listing uploads"))?;
        let rows = stmt
            .query_map([flight_id], upload_from_row)
            .map_err(sql("listing uploads"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("listing uploads"));
        rows
    }

    fn expire_uploads(&self, created_before: i64) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("DELETE FROM uploads WHERE created_at < ?1 RETURNING id")
            .map_err(sql("expiring uploads"))?;
        let rows = stmt
            .query_map([created_before], |r| r.get(0))
            .map_err(sql("expiring uploads"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("expiring uploads"));
        rows
    }

    fn open_uploads(&self) -> Result<Vec<Upload>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, org_id, flight_id, length, file_name, complete, created_at FROM uploads ORDER BY created_at, id")
            .map_err(sql("listing uploads"))?;
        let rows = stmt
            .query_map([], upload_from_row)
            .map_err(sql("listing uploads"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("listing uploads"));
        rows
    }

    fn enqueue_job(&self, org_id: i64, flight_id: i64) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("queueing the job"))?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM jobs WHERE flight_id = ?1 AND state IN ('queued', 'running') \
                 ORDER BY state = 'queued' DESC, id LIMIT 1",
                [flight_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("queueing the job"))?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let t = now();
        tx.execute(
            "INSERT INTO jobs (org_id, flight_id, state, created_at, updated_at) VALUES (?1, ?2, 'queued', ?3, ?3)",
            params![org_id, flight_id, t],
        )
        .map_err(sql("queueing the job"))?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE flights SET state = 'queued', error = NULL, progress = NULL WHERE id = ?1",
            [flight_id],
        )
        .map_err(sql("queueing the job"))?;
        tx.commit().map_err(sql("queueing the job"))?;
        Ok(id)
    }

    fn job_state(&self, job_id: i64) -> Result<Option<String>> {
        self.conn()
            .query_row("SELECT state FROM jobs WHERE id = ?1", [job_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("reading the job"))
    }

    fn claim_job(&self, lease_secs: i64) -> Result<Option<Job>> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("taking a job"))?;
        let t = now();
        let job = tx
            .query_row(
                "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_until = ?1, updated_at = ?2 \
                 WHERE id = (SELECT q.id FROM jobs q WHERE q.state = 'queued' AND q.flight_id NOT IN \
                 (SELECT flight_id FROM jobs WHERE state = 'running') \
                 ORDER BY (SELECT COUNT(*) FROM jobs r WHERE r.org_id = q.org_id AND r.state = 'running'), q.id LIMIT 1) \
                 RETURNING id, org_id, flight_id, attempt",
                params![t + lease_secs, t],
                |r| {
                    Ok(Job {
                        id: r.get(0)?,
                        org_id: r.get(1)?,
                        flight_id: r.get(2)?,
                        attempt: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(sql("taking a job"))?;
        if let Some(job) = &job {
            tx.execute(
                "UPDATE flights SET state = 'running' WHERE id = ?1",
                [job.flight_id],
            )
            .map_err(sql("taking a job"))?;
        }
        tx.commit().map_err(sql("taking a job"))?;
        Ok(job)
    }

    fn renew_job(&self, job: &Job, lease_secs: i64, progress: &serde_json::Value) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("renewing a job"))?;
        let t = now();
        let n = tx
            .execute(
                "UPDATE jobs SET lease_until = ?1, updated_at = ?2 WHERE id = ?3 AND attempt = ?4 AND state = 'running'",
                params![t + lease_secs, t, job.id, job.attempt],
            )
            .map_err(sql("renewing a job"))?;
        if n == 1 {
            tx.execute(
                "UPDATE flights SET progress = ?1 WHERE id = ?2",
                params![progress.to_string(), job.flight_id],
            )
            .map_err(sql("renewing a job"))?;
        }
        tx.commit().map_err(sql("renewing a job"))?;
        Ok(n == 1)
    }

    fn complete_job(&self, job: &Job, result: &JobResult) -> Result<CompleteOutcome> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(sql("storing the job's results"))?;
        let outcome = store_results(&tx, job, result)?;
        if outcome != CompleteOutcome::LeaseLost {
            tx.commit().map_err(sql("storing the job's results"))?;
        }
        Ok(outcome)
    }

    fn fail_job(&self, job: &Job, error: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("recording a failed job"))?;
        record_failure(&tx, job, error)?;
        tx.commit().map_err(sql("recording a failed job"))
    }

    fn requeue_running(&self) -> Result<usize> {
        requeue(&self.conn(), "")
    }

    fn requeue_expired(&self) -> Result<usize> {
        requeue(&self.conn(), &format!(" AND lease_until < {}", now()))
    }

    fn job_counts(&self) -> Result<JobCounts> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .map_err(sql("counting jobs"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(sql("counting jobs"))?;
        let mut counts = JobCounts::default();
        for row in rows {
            let (state, n) = row.map_err(sql("counting jobs"))?;
            crate::ops::add_count(&mut counts, &state, n);
        }
        Ok(counts)
    }

    fn org_stats(&self, org_id: i64) -> Result<OrgStats> {
        let conn = self.conn();
        let one = |query: &str| -> Result<i64> {
            conn.query_row(query, [org_id], |r| r.get(0))
                .map_err(sql("counting the organisation's data"))
        };
        let mut stats = OrgStats {
            flights: one("SELECT COUNT(*) FROM flights WHERE org_id = ?1")?,
            photos: one("SELECT COUNT(*) FROM photos p JOIN flights f ON f.id = p.flight_id WHERE f.org_id = ?1")?,
            photo_bytes: one("SELECT COALESCE(SUM(p.size), 0) FROM photos p JOIN flights f ON f.id = p.flight_id WHERE f.org_id = ?1")?,
            findings: one("SELECT COUNT(*) FROM findings WHERE org_id = ?1")?,
            jobs: JobCounts::default(),
        };
        let mut stmt = conn
            .prepare("SELECT state, COUNT(*) FROM jobs WHERE org_id = ?1 GROUP BY state")
            .map_err(sql("counting jobs"))?;
        let rows = stmt
            .query_map([org_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(sql("counting jobs"))?;
        for row in rows {
            let (state, n) = row.map_err(sql("counting jobs"))?;
            crate::ops::add_count(&mut stats.jobs, &state, n);
        }
        Ok(stats)
    }

    fn findings(&self, org_id: i64, filter: &FindingFilter) -> Result<Vec<FindingRow>> {
        let mut clauses = vec!["org_id = ?".to_string()];
        let mut values: Vec<rusqlite::types::Value> = vec![org_id.into()];
        if let Some(flight) = filter.flight_id {
            clauses.push("flight_id = ?".into());
            values.push(flight.into());
        }
        if let Some([x0, y0, x1, y1]) = filter.bbox {
            clauses.push("max_x >= ? AND min_x <= ? AND max_y >= ? AND min_y <= ?".into());
            values.extend([x0.into(), x1.into(), y0.into(), y1.into()]);
        }
        let severities: Vec<String> = filter
            .severities
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        for (column, list) in [("class", &filter.classes), ("severity", &severities)] {
            if !list.is_empty() {
                let marks = vec!["?"; list.len()].join(", ");
                clauses.push(format!("{column} IN ({marks})"));
                values.extend(list.iter().map(|s| s.clone().into()));
            }
        }
        if let Some(since) = filter.since {
            clauses.push("created_at >= ?".into());
            values.push(since.into());
        }
        if let Some(after) = filter.after_id {
            clauses.push("id > ?".into());
            values.push(after.into());
        }
        if !filter.reviews.is_empty() {
            let (clause, states) = review::state_clause(&filter.reviews);
            clauses.push(clause);
            values.extend(states);
        }
        let limit = match filter.limit {
            Some(n) => {
                values.push(n.into());
                " LIMIT ?"
            }
            None => "",
        };
        let query = format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE {} ORDER BY id{limit}",
            clauses.join(" AND ")
        );
        let rows = {
            let conn = self.conn();
            let mut stmt = conn.prepare(&query).map_err(sql("querying findings"))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values), finding_from_row)
                .map_err(sql("querying findings"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("querying findings"))?;
            rows
        };
        let mut rows = rows
            .into_iter()
            .map(finish_finding)
            .collect::<Result<Vec<_>>>()?;
        review::attach(&self.conn(), &mut rows)?;
        Ok(rows)
    }

    fn finding(&self, org_id: i64, id: i64) -> Result<Option<FindingRow>> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {FINDING_COLUMNS} FROM findings WHERE id = ?1 AND org_id = ?2"),
                params![id, org_id],
                finding_from_row,
            )
            .optional()
            .map_err(sql("reading the finding"))?;
        let mut row = row.map(finish_finding).transpose()?;
        review::attach(&self.conn(), row.as_mut_slice())?;
        Ok(row)
    }

    fn findings_revision(&self, org_id: i64) -> Result<crate::FindingsRevision> {
        revision::read(&self.conn(), org_id)
    }

    fn set_finding_status(&self, org_id: i64, id: i64, status: &str) -> Result<bool> {
        const DOING: &str = "setting the work-order status";
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql(DOING))?;
        let n = tx
            .execute(
                "UPDATE findings SET status = ?1 WHERE id = ?2 AND org_id = ?3",
                params![status, id, org_id],
            )
            .map_err(sql(DOING))?;
        if n == 1 {
            revision::raise(&tx, org_id, revision::Change::Content)?;
        }
        tx.commit().map_err(sql(DOING))?;
        Ok(n == 1)
    }

    fn set_review(
        &self,
        org_id: i64,
        id: i64,
        review: &besikta_core::Review,
        role: &str,
    ) -> Result<Option<besikta_core::Review>> {
        review::set_review(&mut self.conn(), org_id, id, review, role)
    }

    fn review(&self, org_id: i64, id: i64) -> Result<Option<besikta_core::Review>> {
        review::review(&self.conn(), org_id, id)
    }

    fn delete_flight(&self, org_id: i64, flight_id: i64) -> Result<FlightDeleted> {
        let Some(flight) = self.flight(org_id, flight_id)? else {
            return Ok(FlightDeleted::NotFound);
        };
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("deleting the flight"))?;
        let running: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE flight_id = ?1 AND state = 'running')",
                [flight_id],
                |r| r.get(0),
            )
            .map_err(sql("deleting the flight"))?;
        if running {
            return Ok(FlightDeleted::Running);
        }
        let upload_ids = {
            let mut stmt = tx
                .prepare("SELECT id FROM uploads WHERE flight_id = ?1")
                .map_err(sql("deleting the flight"))?;
            let ids = stmt
                .query_map([flight_id], |r| r.get::<_, String>(0))
                .map_err(sql("deleting the flight"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("deleting the flight"))?;
            ids
        };
        let findings = tx
            .execute("DELETE FROM findings WHERE flight_id = ?1", [flight_id])
            .map_err(sql("deleting the flight"))? as i64;
        for table in ["photos", "uploads", "jobs"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE flight_id = ?1"),
                [flight_id],
            )
            .map_err(sql("deleting the flight"))?;
        }
        tx.execute(
            "DELETE FROM flights WHERE id = ?1 AND org_id = ?2",
            params![flight_id, org_id],
        )
        .map_err(sql("deleting the flight"))?;
        revision::raise(&tx, org_id, revision::Change::Rows)?;
        tx.commit().map_err(sql("deleting the flight"))?;
        Ok(FlightDeleted::Deleted {
            flight: Box::new(flight),
            findings,
            upload_ids,
        })
    }

    fn record_audit(
        &self,
        org_id: i64,
        token: &str,
        role: &str,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO audit (org_id, at, token, role, action, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![org_id, now(), token, role, action, detail],
            )
            .map_err(sql("writing the audit log"))?;
        Ok(())
    }

    fn audit(&self, org_id: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, at, token, role, action, detail FROM audit WHERE org_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(sql("reading the audit log"))?;
        let rows = stmt
            .query_map(params![org_id, limit], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: format_rfc3339(r.get(1)?),
                    token: r.get(2)?,
                    role: r.get(3)?,
                    action: r.get(4)?,
                    detail: r.get(5)?,
                })
            })
            .map_err(sql("reading the audit log"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("reading the audit log"));
        rows
    }

    fn put_register(&self, org_id: i64, kind: &str, path: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO registers (org_id, kind, path, uploaded_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(org_id, kind) DO UPDATE SET path = ?3, uploaded_at = ?4",
                params![org_id, kind, path, now()],
            )
            .map_err(sql("recording the register"))?;
        Ok(())
    }

    fn registers(&self, org_id: i64) -> Result<Vec<RegisterRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT kind, path, uploaded_at FROM registers WHERE org_id = ?1 ORDER BY kind",
            )
            .map_err(sql("listing registers"))?;
        let rows = stmt
            .query_map([org_id], |r| {
                Ok(RegisterRow {
                    kind: r.get(0)?,
                    path: r.get(1)?,
                    uploaded_at: format_rfc3339(r.get(2)?),
                })
            })
            .map_err(sql("listing registers"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("listing registers"));
        rows
    }

    fn org_settings(&self, org_id: i64) -> Result<crate::OrgSettings> {
        settings::read(&self.conn(), org_id)
    }

    fn set_org_settings(&self, org_id: i64, settings: &crate::OrgSettings) -> Result<()> {
        settings::write(&self.conn(), org_id, settings)
    }

    fn output_dirs(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT output_dir FROM flights WHERE output_dir IS NOT NULL")
            .map_err(sql("listing output folders"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(sql("listing output folders"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("listing output folders"));
        rows
    }

    fn beat_worker(&self, beat: &crate::WorkerBeat) -> Result<()> {
        ops::beat(&self.conn(), beat)
    }

    fn forget_worker(&self, id: &str) -> Result<()> {
        ops::forget(&self.conn(), id)
    }

    fn workers(&self) -> Result<Vec<crate::WorkerSeen>> {
        ops::workers(&self.conn())
    }

    fn release_job(&self, job: &Job) -> Result<bool> {
        ops::release(&mut self.conn(), job)
    }

    fn job_counts_by_org(&self) -> Result<Vec<crate::OrgJobCounts>> {
        ops::counts_by_org(&self.conn())
    }

    fn put_units(&self, job: &Job, prepared: &str, batches: &[(i64, i64)]) -> Result<()> {
        units::put(&mut self.conn(), job, prepared, batches)
    }

    fn unit_plan(&self, job_id: i64) -> Result<Option<String>> {
        units::plan(&self.conn(), job_id)
    }

    fn claim_unit(
        &self,
        lease_secs: i64,
        job_id: Option<i64>,
        worker: &str,
    ) -> Result<Option<crate::WorkUnit>> {
        units::claim(&mut self.conn(), lease_secs, job_id, worker)
    }

    fn renew_unit(&self, unit: &crate::WorkUnit, lease_secs: i64) -> Result<bool> {
        units::renew(&self.conn(), unit, lease_secs)
    }

    fn complete_unit(
        &self,
        unit: &crate::WorkUnit,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<bool> {
        units::complete(&self.conn(), unit, result, error)
    }

    fn units(&self, job_id: i64, with_results: bool) -> Result<Vec<crate::UnitRow>> {
        units::rows(&self.conn(), job_id, with_results)
    }

    fn unit_result(&self, unit_id: i64) -> Result<Option<String>> {
        units::result(&self.conn(), unit_id)
    }

    fn delete_units(&self, job_id: i64) -> Result<()> {
        units::delete(&mut self.conn(), job_id)
    }

    fn retention_due(&self, finished_before: i64) -> Result<Vec<Photo>> {
        retention::due(&self.conn(), finished_before)
    }

    fn mark_photo_removed(&self, photo_id: i64, at: i64) -> Result<()> {
        retention::mark(&self.conn(), photo_id, at)
    }

    fn removed_photos(&self, flight_id: i64) -> Result<Vec<crate::retention::RemovedPhoto>> {
        retention::removed(&self.conn(), flight_id)
    }

    fn removed_photo_totals(&self, org_id: i64) -> Result<(i64, i64)> {
        retention::totals(&self.conn(), org_id)
    }

    fn unit_counts(&self) -> Result<JobCounts> {
        units::counts(&self.conn())
    }

    fn release_unit(&self, unit: &crate::WorkUnit) -> Result<bool> {
        units::release(&self.conn(), unit)
    }

    fn unit_counts_by_org(&self) -> Result<Vec<crate::OrgJobCounts>> {
        ops::counts_by_org_of(&self.conn(), "work_units")
    }

    fn complete_finish(
        &self,
        unit: &crate::WorkUnit,
        result: &JobResult,
    ) -> Result<CompleteOutcome> {
        units::complete_finish(&mut self.conn(), unit, result)
    }

    fn fail_finish(&self, unit: &crate::WorkUnit, error: &str) -> Result<()> {
        units::fail_finish(&mut self.conn(), unit, error)
    }

    fn add_photo_within(
        &self,
        flight_id: i64,
        name: &str,
        sha256: &str,
        size: u64,
        dir: &str,
        limits: PhotoLimits,
    ) -> Result<WithinLimits> {
        // One IMMEDIATE transaction: two uploads finishing together, in this process or
        // another on the same file, can neither both take a name, both record the same
        // content, nor both take the organisation's last room.
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql("recording the photo"))?;
        let added = add_photo_tx(&tx, flight_id, name, sha256, size, dir, limits)?;
        if matches!(added, WithinLimits::Added(PhotoAdded::New(_))) {
            tx.commit().map_err(sql("recording the photo"))?;
        }
        Ok(added)
    }
}

/// [`Store::complete_job`]'s writes inside the caller's transaction `tx`: `LeaseLost` when
/// the job attempt is over (the caller rolls back).
fn store_results(tx: &Connection, job: &Job, result: &JobResult) -> Result<CompleteOutcome> {
    let t = now();
    let n = tx
        .execute(
            "UPDATE jobs SET state = 'done', lease_until = NULL, updated_at = ?1 WHERE id = ?2 AND attempt = ?3 AND state = 'running'",
            params![t, job.id, job.attempt],
        )
        .map_err(sql("storing the job's results"))?;
    if n != 1 {
        return Ok(CompleteOutcome::LeaseLost);
    }
    let previous: Option<String> = tx
        .query_row(
            "SELECT output_dir FROM flights WHERE id = ?1",
            [job.flight_id],
            |r| r.get(0),
        )
        .map_err(sql("storing the job's results"))?;
    // Keep the work-order status planners set on findings that survive re-processing.
    let mut statuses = std::collections::HashMap::new();
    {
        let mut stmt = tx
            .prepare("SELECT finding_id, status FROM findings WHERE flight_id = ?1")
            .map_err(sql("storing the job's results"))?;
        let rows = stmt
            .query_map([job.flight_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(sql("storing the job's results"))?;
        for row in rows {
            let (id, status) = row.map_err(sql("storing the job's results"))?;
            statuses.insert(id, status);
        }
    }
    tx.execute("DELETE FROM findings WHERE flight_id = ?1", [job.flight_id])
        .map_err(sql("storing the job's results"))?;
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO findings (org_id, flight_id, finding_id, class, severity, created_at, \
                 min_x, min_y, max_x, max_y, status, finding) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(sql("storing the job's results"))?;
        for f in &result.findings {
            let status = statuses
                .get(&f.finding.id)
                .map(String::as_str)
                .unwrap_or("open");
            let finding = serde_json::to_string(&f.finding).map_err(corrupt("finding"))?;
            stmt.execute(params![
                job.org_id,
                job.flight_id,
                f.finding.id,
                f.finding.class,
                f.finding.severity.as_str(),
                t,
                f.bbox[0],
                f.bbox[1],
                f.bbox[2],
                f.bbox[3],
                status,
                finding
            ])
            .map_err(sql("storing a finding"))?;
        }
    }
    review::carry_over(tx, job.flight_id)?;
    revision::raise(tx, job.org_id, revision::Change::Rows)?;
    let rejected = serde_json::to_string(&result.rejected).map_err(corrupt("rejected photos"))?;
    // With a follow-up job queued (photos arrived during the run) the flight is not
    // done yet: its results stay readable meanwhile.
    tx.execute(
        "UPDATE flights SET state = CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE flight_id = ?3 AND state = 'queued') \
         THEN 'queued' ELSE 'done' END, error = NULL, output_dir = ?1, rejected = ?2 WHERE id = ?3",
        params![result.output_dir, rejected, job.flight_id],
    )
    .map_err(sql("storing the job's results"))?;
    Ok(CompleteOutcome::Stored {
        previous_output_dir: previous.filter(|p| *p != result.output_dir),
    })
}

/// [`Store::fail_job`]'s writes inside the caller's transaction `tx`; false (nothing
/// written) when the job attempt is over.
fn record_failure(tx: &Connection, job: &Job, error: &str) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE jobs SET state = 'failed', error = ?1, lease_until = NULL, updated_at = ?2 WHERE id = ?3 AND attempt = ?4 AND state = 'running'",
            params![error, now(), job.id, job.attempt],
        )
        .map_err(sql("recording a failed job"))?;
    if n == 1 {
        tx.execute(
            "UPDATE flights SET state = CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE flight_id = ?2 AND state = 'queued') \
             THEN 'queued' ELSE 'failed' END, error = ?1 WHERE id = ?2",
            params![error, job.flight_id],
        )
        .map_err(sql("recording a failed job"))?;
    }
    Ok(n == 1)
}

/// [`Store::add_photo_within`] in `tx`, an IMMEDIATE transaction: it holds the database's
/// write lock from its start, so every other connection, in this process or another, waits.
fn add_photo_tx(
    tx: &rusqlite::Transaction<'_>,
    flight_id: i64,
    name: &str,
    sha256: &str,
    size: u64,
    dir: &str,
    limits: PhotoLimits,
) -> Result<WithinLimits> {
    let existing = tx
        .query_row(
            &format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE flight_id = ?1 AND sha256 = ?2"),
            params![flight_id, sha256],
            photo_from_row,
        )
        .optional()
        .map_err(sql("recording the photo"))?;
    if let Some(existing) = existing {
        return Ok(WithinLimits::Added(PhotoAdded::Duplicate(existing)));
    }
    // The organisation's quota, counted inside this write transaction: a second process
    // recording a photo waits for it to commit, so both cannot take the last room.
    if limits.is_set() {
        let usage = tx
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(p.size), 0) FROM photos p \
                 JOIN flights f ON f.id = p.flight_id \
                 WHERE f.org_id = (SELECT org_id FROM flights WHERE id = ?1) \
                 AND NOT EXISTS (SELECT 1 FROM photo_retention r WHERE r.photo_id = p.id)",
                [flight_id],
                |r| Ok(crate::quota::usage_of(r.get(0)?, r.get(1)?)),
            )
            .map_err(sql("counting the organisation's photos for its quota"))?;
        if !limits.fits(usage, size) {
            return Ok(WithinLimits::Over(usage));
        }
    }
    let name = crate::rows::free_name(name, sha256, flight_id, |candidate| {
        tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM photos WHERE flight_id = ?1 AND name = ?2)",
            params![flight_id, candidate],
            |r| r.get(0),
        )
        .map_err(sql("recording the photo"))
    })?;
    let path = format!("{dir}/{name}");
    tx.execute(
        "INSERT INTO photos (flight_id, name, sha256, size, path) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![flight_id, name, sha256, size as i64, path],
    )
    .map_err(sql("recording the photo"))?;
    let id = tx.last_insert_rowid();
    // An upload that lands after processing makes the flight need processing again.
    tx.execute(
        "UPDATE flights SET state = 'uploading' WHERE id = ?1 AND state IN ('done', 'failed')",
        [flight_id],
    )
    .map_err(sql("recording the photo"))?;
    // A running job read its photos when it started and will not see this one: queue a
    // follow-up (one is enough however many arrive; a job still queued reads it anyway).
    tx.execute(
        "INSERT INTO jobs (org_id, flight_id, state, created_at, updated_at) \
         SELECT org_id, flight_id, 'queued', ?2, ?2 FROM jobs \
         WHERE flight_id = ?1 AND state = 'running' \
         AND NOT EXISTS (SELECT 1 FROM jobs WHERE flight_id = ?1 AND state = 'queued') LIMIT 1",
        params![flight_id, now()],
    )
    .map_err(sql("recording the photo"))?;
    Ok(WithinLimits::Added(PhotoAdded::New(Photo {
        id,
        flight_id,
        name,
        sha256: sha256.to_string(),
        size,
        path,
    })))
}

fn upload_from_row(r: &Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        id: r.get(0)?,
        org_id: r.get(1)?,
        flight_id: r.get(2)?,
        length: r.get::<_, i64>(3)? as u64,
        file_name: r.get(4)?,
        complete: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn requeue(conn: &Connection, extra: &str) -> Result<usize> {
    let t = now();
    let n = conn
        .execute(
            &format!(
                "UPDATE jobs SET state = 'queued', lease_until = NULL, updated_at = {t} WHERE state = 'running'{extra}{}",
                units::NOT_IN_UNITS
            ),
            [],
        )
        .map_err(sql("re-queueing interrupted jobs"))?;
    // A re-queued job reads all photos when it runs again, so a follow-up queued for
    // photos that arrived during its first run is no longer needed.
    conn.execute(
        "DELETE FROM jobs WHERE state = 'queued' AND attempt = 0 AND id NOT IN \
         (SELECT MIN(id) FROM jobs WHERE state = 'queued' GROUP BY flight_id)",
        [],
    )
    .map_err(sql("re-queueing interrupted jobs"))?;
    conn.execute(
        "UPDATE flights SET state = 'queued' WHERE id IN (SELECT flight_id FROM jobs WHERE state = 'queued')",
        [],
    )
    .map_err(sql("re-queueing interrupted jobs"))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewFinding;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("besikta.db")).unwrap();
        (dir, store)
    }

    fn finding(id: &str, class: &str, severity: &str, bbox: [f64; 4]) -> NewFinding {
        let [x0, y0, x1, y1] = bbox;
        let finding = Finding {
            id: id.into(),
            class: class.into(),
            severity: severity.parse().unwrap(),
            polygon: vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]],
            centroid: [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
            ..placeholder_finding()
        };
        let new = NewFinding::new(finding);
        assert_eq!(new.bbox, bbox);
        new
    }

    /// A database as the code before schema version 1 left it: findings as GeoJSON features.
    #[test]
    fn findings_stored_as_geojson_by_older_code_are_typed_after_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("besikta.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                r#"
                CREATE TABLE orgs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, crs TEXT);
                CREATE TABLE flights (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES orgs(id),
                    name TEXT NOT NULL, state TEXT NOT NULL, progress TEXT, rejected TEXT NOT NULL DEFAULT '[]',
                    upload_rejected TEXT NOT NULL DEFAULT '[]', error TEXT, output_dir TEXT, created_at INTEGER NOT NULL);
                CREATE TABLE findings (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES orgs(id),
                    flight_id INTEGER NOT NULL REFERENCES flights(id), finding_id TEXT NOT NULL, class TEXT NOT NULL,
                    severity TEXT NOT NULL, created_at INTEGER NOT NULL,
                    min_x REAL NOT NULL, min_y REAL NOT NULL, max_x REAL NOT NULL, max_y REAL NOT NULL,
                    status TEXT NOT NULL DEFAULT 'open', feature TEXT NOT NULL, UNIQUE (flight_id, finding_id));
                CREATE INDEX findings_org ON findings(org_id, created_at);
                INSERT INTO orgs (id, name) VALUES (1, 'Espoo');
                INSERT INTO flights (id, org_id, name, state, output_dir, created_at) VALUES (4, 1, 'old', 'done', 'flights/4/out-1-1', 0);
                "#,
            )
            .unwrap();
            let feature = json!({"type": "Feature", "id": "F00001",
                "geometry": {"type": "Polygon", "coordinates": [[[24.8, 60.2], [24.8001, 60.2], [24.8001, 60.2001], [24.8, 60.2]]]},
                "properties": {"id": "F00001", "class": "crack", "asset_kind": "road", "severity": "high",
                    "confidence": 0.9, "views": 2, "support": 2, "length_m": 3.5, "area_m2": 0.2,
                    "best_photo": "/srv/besikta/flights/4/photos/DJI_0002.JPG",
                    "observations": [
                        {"photo": "/srv/besikta/flights/4/photos/DJI_0001.JPG", "confidence": 0.8,
                         "bbox_px": [1.0, 2.0, 3.0, 4.0], "polygon_px": [[1.0, 2.0], [3.0, 2.0], [3.0, 4.0]], "gsd_cm": 1.5},
                        {"photo": "/srv/besikta/flights/4/photos/DJI_0002.JPG", "confidence": 0.9,
                         "bbox_px": [100.0, 200.0, 300.0, 400.0], "polygon_px": [[100.0, 200.0], [300.0, 200.0], [300.0, 400.0]], "gsd_cm": 1.4}]}});
            for (id, finding_id, class, severity, status, feature) in [
                (
                    7,
                    "F00001",
                    "crack",
                    "high",
                    "scheduled",
                    feature.to_string(),
                ),
                // Damaged rows: neither may stop the upgrade nor make reading panic.
                (
                    8,
                    "F00002",
                    "pothole",
                    "medium",
                    "open",
                    "not json".to_string(),
                ),
                (9, "F00003", "moss", "bogus", "open", "{}".to_string()),
            ] {
                conn.execute(
                    "INSERT INTO findings (id, org_id, flight_id, finding_id, class, severity, created_at, \
                     min_x, min_y, max_x, max_y, status, feature) VALUES (?1, 1, 4, ?2, ?3, ?4, 0, 24.8, 60.2, 24.8001, 60.2001, ?5, ?6)",
                    params![id, finding_id, class, severity, status, feature],
                )
                .unwrap();
            }
        }
        for _ in 0..2 {
            // Twice: the second open finds the database current and changes nothing.
            let s = SqliteStore::open(&path).unwrap();
            let version: i64 = s
                .conn()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(version, SCHEMA_VERSION);
            let rows = s.findings(1, &FindingFilter::default()).unwrap();
            assert_eq!(rows.len(), 3);
            let old = &rows[0];
            assert_eq!(
                (old.id, old.finding_id.as_str(), old.status.as_str()),
                (7, "F00001", "scheduled")
            );
            assert_eq!(old.severity, Severity::High);
            assert_eq!(old.finding.length_m, Some(3.5));
            assert_eq!(
                old.finding.best_photo(),
                "/srv/besikta/flights/4/photos/DJI_0002.JPG"
            );
            assert_eq!(
                old.finding.best_observation().unwrap().pixel_bbox,
                [100.0, 200.0, 300.0, 400.0]
            );
            assert_eq!(rows[1].finding.class, "pothole");
            assert_eq!(rows[1].severity, Severity::Medium);
            assert_eq!(
                rows[1].finding.polygon.len(),
                5,
                "the bbox stands in for the outline"
            );
            assert_eq!(
                rows[2].severity,
                Severity::Low,
                "an unknown severity becomes low"
            );
            let filter = FindingFilter {
                severities: vec![Severity::High],
                bbox: Some([24.7, 60.1, 24.9, 60.3]),
                ..Default::default()
            };
            assert_eq!(s.findings(1, &filter).unwrap().len(), 1);
        }
    }

    /// What a job stores is what the API reads back, to the last bit of every float.
    #[test]
    fn a_typed_finding_is_read_back_exactly() {
        use besikta_core::finding::{AssetMatch, ModelRef, Observation};
        let (_dir, s) = store();
        let org = s.ensure_org("Espoo", None).unwrap();
        let f = s.create_flight(org.id, "f").unwrap();
        s.enqueue_job(org.id, f.id).unwrap();
        let job = s.claim_job(60).unwrap().unwrap();
        // Values no short decimal writes exactly (thirds, sevenths): what measuring gives.
        let (x0, y0) = (24.95 + 1e-3 / 7.0, 60.169 + 1e-4 / 3.0);
        let (x1, y1) = (x0 + 1e-5 / 3.0, y0 + 1e-5 / 7.0);
        let ring = vec![[x0, y0], [x1, y0], [x1, y1], [x0, y0]];
        let finding = Finding {
            id: "F00001".into(),
            class: "crack".into(),
            severity: Severity::Medium,
            confidence: 0.912_345_7,
            length_m: Some(1.0 / 3.0),
            area_m2: 1.0 / 6.0,
            polygon: ring.clone(),
            centroid: [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
            asset: Some(AssetMatch {
                asset_id: "way/26427722".into(),
                asset_name: Some("Aleksanterinkatu".into()),
                asset_kind: besikta_core::AssetKind::Road,
                chainage_m: Some(50.0 + 1.0 / 3.0),
                offset_m: Some(-2.0 / 3.0),
                distance_m: 2.0 / 3.0,
                asset_area_m2: Some(753.0 + 1.0 / 7.0),
            }),
            observations: vec![Observation {
                photo: "DJI_0018.JPG".into(),
                class: "crack".into(),
                asset_kind: besikta_core::AssetKind::Road,
                confidence: 0.8,
                pixel_polygon: vec![[1900.5, 1075.25], [2100.0, 1075.0], [2100.0, 1175.0]],
                pixel_bbox: [1900.5, 1075.0, 2100.0, 1175.0],
                ground_polygon: ring,
                length_px: Some(50.0),
                gsd_cm: 2.0 + 1.0 / 9.0,
                view_quality: 0.9,
                position_uncertainty_m: 0.5,
                pose_sigma_m: None,
                sides_grey: None,
                model: Some(ModelRef {
                    name: "crack-unet".into(),
                    version: "0.1.0+int8".into(),
                }),
            }],
            ..placeholder_finding()
        };
        let result = JobResult {
            output_dir: "flights/1/out-1-1".into(),
            findings: vec![NewFinding::new(finding.clone())],
            rejected: vec![],
        };
        s.complete_job(&job, &result).unwrap();
        let rows = s.findings(org.id, &FindingFilter::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].finding, finding);
        assert_eq!(
            (rows[0].class.as_str(), rows[0].severity),
            ("crack", Severity::Medium)
        );
        assert_eq!(
            s.finding(org.id, rows[0].id).unwrap().unwrap().finding,
            finding
        );
    }

    /// The bbox a new finding is stored with is its outline's extent (the queue tests in
    /// tests/backends.rs filter by it on both backends).
    #[test]
    fn a_new_findings_bbox_is_its_outlines_extent() {
        finding("F1", "crack", "high", [24.0, 60.0, 24.001, 60.001]);
        finding("F2", "pothole", "low", [25.0, 61.0, 25.001, 61.001]);
    }

    #[test]
    fn same_photo_twice_is_a_no_op() {
        let (_dir, s) = store();
        let org = s.ensure_org("Espoo", None).unwrap();
        let f = s.create_flight(org.id, "f").unwrap();
        assert!(matches!(
            s.add_photo(f.id, "a.jpg", "h1", 10, "p").unwrap(),
            PhotoAdded::New(p) if p.path == "p/a.jpg"
        ));
        assert!(
            matches!(s.add_photo(f.id, "b.jpg", "h1", 10, "p").unwrap(), PhotoAdded::Duplicate(p) if p.name == "a.jpg")
        );
        assert_eq!(s.photos(f.id).unwrap().len(), 1);
    }
}
