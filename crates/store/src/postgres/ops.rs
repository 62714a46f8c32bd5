//! PostgreSQL side of the operations queries: worker heartbeats (by the database's clock,
//! so machines with skewed clocks agree), releasing a job on shutdown, jobs by organisation.

use super::{get, lock_flight, pg};
use crate::ops::{add_count, OrgJobCounts, WorkerBeat, WorkerSeen, FORGET_WORKERS_AFTER_SECS};
use crate::time::now;
use crate::{Job, JobCounts, Result};
use postgres::{Client, Transaction};

pub(super) const MIGRATION: &str = r#"
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    job_id BIGINT,
    last_seen BIGINT NOT NULL
);
"#;

/// The database's clock, Unix seconds.
const DB_NOW: &str = "EXTRACT(EPOCH FROM clock_timestamp())::BIGINT";

pub(super) fn beat(c: &mut Client, beat: &WorkerBeat) -> Result<()> {
    const DOING: &str = "recording a worker's heartbeat";
    c.execute(
        &format!(
            "INSERT INTO workers (id, host, kind, job_id, last_seen) VALUES ($1, $2, $3, $4, {DB_NOW}) \
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, kind = excluded.kind, \
             job_id = excluded.job_id, last_seen = excluded.last_seen"
        ),
        &[&beat.id, &beat.host, &beat.kind, &beat.job_id],
    )
    .map_err(pg(DOING))?;
    c.execute(
        &format!("DELETE FROM workers WHERE last_seen < {DB_NOW} - $1"),
        &[&FORGET_WORKERS_AFTER_SECS],
    )
    .map_err(pg(DOING))?;
    Ok(())
}

pub(super) fn forget(c: &mut Client, id: &str) -> Result<()> {
    c.execute("DELETE FROM workers WHERE id = $1", &[&id])
        .map_err(pg("forgetting a stopped worker"))?;
    Ok(())
}

pub(super) fn workers(c: &mut Client) -> Result<Vec<WorkerSeen>> {
    const DOING: &str = "reading worker heartbeats";
    c.query(
        &format!(
            "SELECT id, host, kind, job_id, GREATEST({DB_NOW} - last_seen, 0) FROM workers ORDER BY id"
        ),
        &[],
    )
    .map_err(pg(DOING))?
    .iter()
    .map(|r| {
        Ok(WorkerSeen {
            id: get(r, 0)?,
            host: get(r, 1)?,
            kind: get(r, 2)?,
            job_id: get(r, 3)?,
            seconds_since: get(r, 4)?,
        })
    })
    .collect()
}

pub(super) fn release(tx: &mut Transaction<'_>, job: &Job) -> Result<bool> {
    const DOING: &str = "returning a job to the queue";
    lock_flight(tx, job.flight_id, DOING)?;
    let n = tx
        .execute(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, updated_at = $1 \
             WHERE id = $2 AND attempt = $3 AND state = 'running'",
            &[&now(), &job.id, &job.attempt],
        )
        .map_err(pg(DOING))?;
    if n == 1 {
        // A follow-up queued for photos that arrived during this run is covered by the
        // released job, which reads all photos when it runs again.
        tx.execute(
            "DELETE FROM jobs WHERE flight_id = $1 AND state = 'queued' AND attempt = 0 AND id <> $2",
            &[&job.flight_id, &job.id],
        )
        .map_err(pg(DOING))?;
        tx.execute(
            "UPDATE flights SET state = 'queued' WHERE id = $1",
            &[&job.flight_id],
        )
        .map_err(pg(DOING))?;
    }
    Ok(n == 1)
}

pub(super) fn counts_by_org(c: &mut Client) -> Result<Vec<OrgJobCounts>> {
    counts_by_org_of(c, "jobs")
}

/// Rows of `table` (`jobs` or `work_units`) by organisation and state.
pub(super) fn counts_by_org_of(c: &mut Client, table: &str) -> Result<Vec<OrgJobCounts>> {
    let doing = crate::ops::doing_counts(table);
    let rows = c
        .query(
            &format!(
                "SELECT o.id, o.name, j.state, COUNT(*) FROM {table} j JOIN orgs o ON o.id = j.org_id \
                 GROUP BY o.id, o.name, j.state ORDER BY o.id"
            ),
            &[],
        )
        .map_err(pg(doing))?;
    let mut out: Vec<OrgJobCounts> = Vec::new();
    for r in &rows {
        let org_id: i64 = get(r, 0)?;
        if out.last().is_none_or(|o| o.org_id != org_id) {
            out.push(OrgJobCounts {
                org_id,
                org: get(r, 1)?,
                jobs: JobCounts::default(),
            });
        }
        let state: String = get(r, 2)?;
        if let Some(last) = out.last_mut() {
            add_count(&mut last.jobs, &state, get(r, 3)?);
        }
    }
    Ok(out)
}
