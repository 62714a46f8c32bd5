//! SQLite side of the operations queries: worker heartbeats, releasing a job on shutdown,
//! jobs by organisation.

use super::sql;
use crate::ops::{add_count, OrgJobCounts, WorkerBeat, WorkerSeen, FORGET_WORKERS_AFTER_SECS};
use crate::time::now;
use crate::{Job, JobCounts, Result};
use rusqlite::{params, Connection};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    job_id INTEGER,
    last_seen INTEGER NOT NULL
);
"#;

pub(super) fn beat(conn: &Connection, beat: &WorkerBeat) -> Result<()> {
    let t = now();
    conn.execute(
        "INSERT INTO workers (id, host, kind, job_id, last_seen) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (id) DO UPDATE SET host = excluded.host, kind = excluded.kind, \
         job_id = excluded.job_id, last_seen = excluded.last_seen",
        params![beat.id, beat.host, beat.kind, beat.job_id, t],
    )
    .map_err(sql("recording a worker's heartbeat"))?;
    conn.execute(
        "DELETE FROM workers WHERE last_seen < ?1",
        [t - FORGET_WORKERS_AFTER_SECS],
    )
    .map_err(sql("recording a worker's heartbeat"))?;
    Ok(())
}

pub(super) fn forget(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM workers WHERE id = ?1", [id])
        .map_err(sql("forgetting a stopped worker"))?;
    Ok(())
}

pub(super) fn workers(conn: &Connection) -> Result<Vec<WorkerSeen>> {
    let t = now();
    let mut stmt = conn
        .prepare("SELECT id, host, kind, job_id, ?1 - last_seen FROM workers ORDER BY id")
        .map_err(sql("reading worker heartbeats"))?;
    let rows = stmt
        .query_map([t], |r| {
            Ok(WorkerSeen {
                id: r.get(0)?,
                host: r.get(1)?,
                kind: r.get(2)?,
                job_id: r.get(3)?,
                seconds_since: r.get::<_, i64>(4)?.max(0),
            })
        })
        .map_err(sql("reading worker heartbeats"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(sql("reading worker heartbeats"))
}

pub(super) fn release(conn: &mut Connection, job: &Job) -> Result<bool> {
    const DOING: &str = "returning a job to the queue";
    let tx = conn.transaction().map_err(sql(DOING))?;
    let n = tx
        .execute(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, updated_at = ?1 \
             WHERE id = ?2 AND attempt = ?3 AND state = 'running'",
            params![now(), job.id, job.attempt],
        )
        .map_err(sql(DOING))?;
    if n == 1 {
        // A follow-up queued for photos that arrived during this run is covered by the
        // released job, which reads all photos when it runs again.
        tx.execute(
            "DELETE FROM jobs WHERE flight_id = ?1 AND state = 'queued' AND attempt = 0 AND id <> ?2",
            params![job.flight_id, job.id],
        )
        .map_err(sql(DOING))?;
        tx.execute(
            "UPDATE flights SET state = 'queued' WHERE id = ?1",
            [job.flight_id],
        )
        .map_err(sql(DOING))?;
    }
    tx.commit().map_err(sql(DOING))?;
    Ok(n == 1)
}

pub(super) fn counts_by_org(conn: &Connection) -> Result<Vec<OrgJobCounts>> {
    counts_by_org_of(conn, "jobs")
}

/// Rows of `table` (`jobs` or `work_units`) by organisation and state.
pub(super) fn counts_by_org_of(conn: &Connection, table: &str) -> Result<Vec<OrgJobCounts>> {
    let doing = crate::ops::doing_counts(table);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT o.id, o.name, j.state, COUNT(*) FROM {table} j JOIN orgs o ON o.id = j.org_id \
             GROUP BY o.id, o.name, j.state ORDER BY o.id"
        ))
        .map_err(sql(doing))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(sql(doing))?;
    let mut out: Vec<OrgJobCounts> = Vec::new();
    for row in rows {
        let (org_id, org, state, n) = row.map_err(sql(doing))?;
        if out.last().is_none_or(|o| o.org_id != org_id) {
            out.push(OrgJobCounts {
                org_id,
                org,
                jobs: JobCounts::default(),
            });
        }
        if let Some(last) = out.last_mut() {
            add_count(&mut last.jobs, &state, n);
        }
    }
    Ok(out)
}
