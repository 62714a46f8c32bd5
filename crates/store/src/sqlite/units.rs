//! SQLite side of work units ([`crate::units`]).

use super::sql;
use crate::time::now;
use crate::units::{UnitKind, UnitRow, WorkUnit};
use crate::{CompleteOutcome, Job, JobResult, Result};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS unit_plans (
    job_id INTEGER PRIMARY KEY,
    prepared TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS work_units (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    org_id INTEGER NOT NULL,
    flight_id INTEGER NOT NULL,
    first INTEGER NOT NULL,
    count INTEGER NOT NULL,
    state TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'batch',
    attempt INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    worker TEXT,
    result TEXT,
    error TEXT,
    UNIQUE (job_id, first)
);
CREATE INDEX IF NOT EXISTS work_units_state ON work_units(state, id);
"#;

/// Databases made before finish units (work units without `kind`) get the column; then the
/// index fair share counts running units by.
pub(super) fn upgrade(conn: &Connection) -> Result<()> {
    const DOING: &str = "adding finish units to the work units table";
    let has_kind: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('work_units') WHERE name = 'kind'",
            [],
            |r| r.get(0),
        )
        .map_err(sql(DOING))?;
    if !has_kind {
        conn.execute_batch("ALTER TABLE work_units ADD COLUMN kind TEXT NOT NULL DEFAULT 'batch'")
            .map_err(sql(DOING))?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS work_units_org_state ON work_units(org_id, state)",
    )
    .map_err(sql(DOING))
}

pub(super) fn put(
    conn: &mut Connection,
    job: &Job,
    prepared: &str,
    batches: &[(i64, i64)],
) -> Result<()> {
    const DOING: &str = "storing a job's work units";
    let tx = conn.transaction().map_err(sql(DOING))?;
    tx.execute(
        "INSERT INTO unit_plans (job_id, prepared) VALUES (?1, ?2) ON CONFLICT (job_id) DO NOTHING",
        params![job.id, prepared],
    )
    .map_err(sql(DOING))?;
    for (first, count) in batches {
        tx.execute(
            "INSERT INTO work_units (job_id, org_id, flight_id, first, count, state) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued') ON CONFLICT (job_id, first) DO NOTHING",
            params![job.id, job.org_id, job.flight_id, first, count],
        )
        .map_err(sql(DOING))?;
    }
    // The finish unit, after the last photo (free once every batch is done or failed).
    let end = batches.iter().map(|(f, c)| f + c).max().unwrap_or(0);
    tx.execute(
        "INSERT INTO work_units (job_id, org_id, flight_id, first, count, state, kind) \
         VALUES (?1, ?2, ?3, ?4, 0, 'queued', 'finish') ON CONFLICT (job_id, first) DO NOTHING",
        params![job.id, job.org_id, job.flight_id, end],
    )
    .map_err(sql(DOING))?;
    tx.commit().map_err(sql(DOING))
}

pub(super) fn plan(conn: &Connection, job_id: i64) -> Result<Option<String>> {
    conn.query_row(
        "SELECT prepared FROM unit_plans WHERE job_id = ?1",
        [job_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(sql("reading a job's prepared flight"))
}

pub(super) fn claim(
    conn: &mut Connection,
    lease_secs: i64,
    job_id: Option<i64>,
    worker: &str,
) -> Result<Option<WorkUnit>> {
    const DOING: &str = "taking a work unit";
    let t = now();
    let tx = conn.transaction().map_err(sql(DOING))?;
    // Queued units, and running ones whose worker stopped renewing the lease, of jobs
    // still running (a finish unit once none of its job's batches is queued or running);
    // the organisation with the fewest running units first, then finish units, then the
    // oldest.
    let unit = tx
        .query_row(
            &format!(
                "UPDATE work_units SET state = 'running', attempt = attempt + 1, lease_until = ?1, worker = ?2 \
                 WHERE id = (SELECT u.id FROM work_units u JOIN jobs j ON j.id = u.job_id \
                 LEFT JOIN ({RUNNING_BY_ORG}) r ON r.org_id = u.org_id \
                 WHERE j.state = 'running' AND (?3 IS NULL OR u.job_id = ?3) \
                 AND (u.state = 'queued' OR (u.state = 'running' AND u.lease_until < ?4)) \
                 AND {FINISH_FREE} \
                 ORDER BY COALESCE(r.n, 0), u.kind = 'batch', u.id LIMIT 1) \
                 RETURNING id, kind, job_id, org_id, flight_id, first, count, attempt"
            ),
            params![t + lease_secs, worker, job_id, t],
            |r| {
                Ok(WorkUnit {
                    id: r.get(0)?,
                    kind: UnitKind::parse(&r.get::<_, String>(1)?),
                    job_attempt: 0,
                    job_id: r.get(2)?,
                    org_id: r.get(3)?,
                    flight_id: r.get(4)?,
                    first: r.get(5)?,
                    count: r.get(6)?,
                    attempt: r.get(7)?,
                })
            },
        )
        .optional()
        .map_err(sql(DOING))?;
    let Some(mut unit) = unit else {
        tx.commit().map_err(sql(DOING))?;
        return Ok(None);
    };
    // Finishing takes the job over: a new attempt, leased to this worker.
    unit.job_attempt = if unit.kind == UnitKind::Finish {
        tx.query_row(
            "UPDATE jobs SET attempt = attempt + 1, lease_until = ?1, updated_at = ?2 \
             WHERE id = ?3 RETURNING attempt",
            params![t + lease_secs, t, unit.job_id],
            |r| r.get(0),
        )
    } else {
        tx.query_row(
            "SELECT attempt FROM jobs WHERE id = ?1",
            [unit.job_id],
            |r| r.get(0),
        )
    }
    .map_err(sql(DOING))?;
    tx.commit().map_err(sql(DOING))?;
    Ok(Some(unit))
}

/// Each organisation's running units whose lease holds (`?4`: now), counted once per claim.
const RUNNING_BY_ORG: &str = "SELECT org_id, COUNT(*) AS n FROM work_units \
     WHERE state = 'running' AND lease_until >= ?4 GROUP BY org_id";

/// A candidate unit `u` is a batch, or a finish unit none of whose job's batches is still
/// queued or running.
pub(super) const FINISH_FREE: &str = "(u.kind = 'batch' OR NOT EXISTS (SELECT 1 FROM work_units b \
     WHERE b.job_id = u.job_id AND b.kind = 'batch' AND b.state IN ('queued', 'running')))";

/// Jobs (`jobs`) that put their units are the units' ([`crate::Store::put_units`]): not
/// re-queued.
pub(super) const NOT_IN_UNITS: &str =
    " AND NOT EXISTS (SELECT 1 FROM work_units w WHERE w.job_id = jobs.id AND w.kind = 'finish')";

pub(super) fn renew(conn: &Connection, unit: &WorkUnit, lease_secs: i64) -> Result<bool> {
    let n = conn
        .execute(
            "UPDATE work_units SET lease_until = ?1 WHERE id = ?2 AND attempt = ?3 AND state = 'running'",
            params![now() + lease_secs, unit.id, unit.attempt],
        )
        .map_err(sql("renewing a work unit"))?;
    Ok(n == 1)
}

pub(super) fn complete(
    conn: &Connection,
    unit: &WorkUnit,
    result: Option<&str>,
    error: Option<&str>,
) -> Result<bool> {
    let state = if error.is_some() { "failed" } else { "done" };
    let n = conn
        .execute(
            "UPDATE work_units SET state = ?1, result = ?2, error = ?3, lease_until = NULL \
             WHERE id = ?4 AND attempt = ?5 AND state = 'running'",
            params![state, result, error, unit.id, unit.attempt],
        )
        .map_err(sql("storing a work unit's result"))?;
    Ok(n == 1)
}

/// Marks `unit`, a finish unit running under this claim, done in `tx`; the refusal when
/// its claim is no longer this one.
fn finish_done(tx: &Connection, unit: &WorkUnit, doing: &'static str) -> Result<()> {
    let n = tx
        .execute(
            "UPDATE work_units SET state = 'done', result = NULL, error = NULL, lease_until = NULL \
             WHERE id = ?1 AND attempt = ?2 AND state = 'running' AND kind = 'finish'",
            params![unit.id, unit.attempt],
        )
        .map_err(sql(doing))?;
    if n == 1 {
        Ok(())
    } else {
        Err(unit.claim_lost())
    }
}

/// [`crate::Store::complete_finish`]: the unit done and the job's results, one transaction
/// (rolled back when either is no longer this claim's).
pub(super) fn complete_finish(
    conn: &mut Connection,
    unit: &WorkUnit,
    result: &JobResult,
) -> Result<CompleteOutcome> {
    const DOING: &str = "storing the job's results with its finish unit";
    let tx = conn.transaction().map_err(sql(DOING))?;
    finish_done(&tx, unit, DOING)?;
    let outcome = super::store_results(&tx, &unit.job(), result)?;
    if outcome != CompleteOutcome::LeaseLost {
        tx.commit().map_err(sql(DOING))?;
    }
    Ok(outcome)
}

/// [`crate::Store::fail_finish`]: the unit done and the job failed, one transaction
/// (rolled back when either is no longer this claim's).
pub(super) fn fail_finish(conn: &mut Connection, unit: &WorkUnit, error: &str) -> Result<()> {
    const DOING: &str = "recording a failed job with its finish unit";
    let tx = conn.transaction().map_err(sql(DOING))?;
    finish_done(&tx, unit, DOING)?;
    if super::record_failure(&tx, &unit.job(), error)? {
        tx.commit().map_err(sql(DOING))?;
    }
    Ok(())
}

pub(super) fn result(conn: &Connection, unit_id: i64) -> Result<Option<String>> {
    const DOING: &str = "reading a work unit's result";
    Ok(conn
        .query_row(
            "SELECT result FROM work_units WHERE id = ?1",
            params![unit_id],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()
        .map_err(sql(DOING))?
        .flatten())
}

pub(super) fn rows(conn: &Connection, job_id: i64, with_results: bool) -> Result<Vec<UnitRow>> {
    const DOING: &str = "reading a job's work units";
    let mut stmt = conn
        .prepare(
            "SELECT id, kind, first, count, state, attempt, worker, CASE WHEN ?2 THEN result END, error \
             FROM work_units WHERE job_id = ?1 ORDER BY first",
        )
        .map_err(sql(DOING))?;
    let rows = stmt
        .query_map(params![job_id, with_results], |r| {
            Ok(UnitRow {
                id: r.get(0)?,
                kind: UnitKind::parse(&r.get::<_, String>(1)?),
                first: r.get(2)?,
                count: r.get(3)?,
                state: r.get(4)?,
                attempt: r.get(5)?,
                worker: r.get(6)?,
                result: r.get(7)?,
                error: r.get(8)?,
            })
        })
        .map_err(sql(DOING))?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql(DOING))
}

pub(super) fn delete(conn: &mut Connection, job_id: i64) -> Result<()> {
    const DOING: &str = "forgetting a finished job's unit results";
    let tx = conn.transaction().map_err(sql(DOING))?;
    tx.execute(
        "UPDATE work_units SET result = NULL WHERE job_id = ?1",
        [job_id],
    )
    .map_err(sql(DOING))?;
    tx.execute("DELETE FROM unit_plans WHERE job_id = ?1", [job_id])
        .map_err(sql(DOING))?;
    tx.commit().map_err(sql(DOING))
}

pub(super) fn counts(conn: &Connection) -> Result<crate::JobCounts> {
    const DOING: &str = "counting work units";
    let mut stmt = conn
        .prepare("SELECT state, COUNT(*) FROM work_units GROUP BY state")
        .map_err(sql(DOING))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sql(DOING))?;
    let mut counts = crate::JobCounts::default();
    for row in rows {
        let (state, n) = row.map_err(sql(DOING))?;
        crate::ops::add_count(&mut counts, &state, n);
    }
    Ok(counts)
}

pub(super) fn release(conn: &Connection, unit: &WorkUnit) -> Result<bool> {
    let n = conn
        .execute(
            "UPDATE work_units SET state = 'queued', lease_until = NULL \
             WHERE id = ?1 AND attempt = ?2 AND state = 'running'",
            params![unit.id, unit.attempt],
        )
        .map_err(sql("returning a work unit to the queue"))?;
    Ok(n == 1)
}
