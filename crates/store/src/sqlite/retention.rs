//! Retention of original photos in SQLite (see `crate::retention`).

use super::sql;
use crate::retention::{RemovedPhoto, DUE_WHERE};
use crate::{Photo, Result};
use rusqlite::{params, Connection};

/// Idempotent, run on each open: one row per photo whose file retention removed; goes with
/// the photo (and so with its flight).
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS photo_retention (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    removed_at INTEGER NOT NULL
);
"#;

pub(super) fn due(conn: &Connection, finished_before: i64) -> Result<Vec<Photo>> {
    let doing = "listing photos due for retention";
    let mut stmt = conn
        .prepare(&format!(
            "SELECT p.id, p.flight_id, p.name, p.sha256, p.size, p.path \
             FROM photos p JOIN flights f ON f.id = p.flight_id WHERE {DUE_WHERE} ?1 \
             ORDER BY p.id"
        ))
        .map_err(sql(doing))?;
    let rows = stmt
        .query_map([finished_before], |r| {
            Ok(Photo {
                id: r.get(0)?,
                flight_id: r.get(1)?,
                name: r.get(2)?,
                sha256: r.get(3)?,
                size: r.get::<_, i64>(4)? as u64,
                path: r.get(5)?,
            })
        })
        .map_err(sql(doing))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql(doing))
}

pub(super) fn mark(conn: &Connection, photo_id: i64, at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO photo_retention (photo_id, removed_at) VALUES (?1, ?2) \
         ON CONFLICT(photo_id) DO NOTHING",
        params![photo_id, at],
    )
    .map_err(sql("recording a photo removed by retention"))?;
    Ok(())
}

pub(super) fn removed(conn: &Connection, flight_id: i64) -> Result<Vec<RemovedPhoto>> {
    let doing = "listing photos removed by retention";
    let mut stmt = conn
        .prepare(
            "SELECT p.id, p.name, r.removed_at FROM photo_retention r \
             JOIN photos p ON p.id = r.photo_id WHERE p.flight_id = ?1 ORDER BY p.id",
        )
        .map_err(sql(doing))?;
    let rows = stmt
        .query_map([flight_id], |r| {
            Ok(RemovedPhoto {
                photo_id: r.get(0)?,
                name: r.get(1)?,
                removed_at: r.get(2)?,
            })
        })
        .map_err(sql(doing))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql(doing))
}

pub(super) fn totals(conn: &Connection, org_id: i64) -> Result<(i64, i64)> {
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(p.size), 0) FROM photo_retention r \
         JOIN photos p ON p.id = r.photo_id JOIN flights f ON f.id = p.flight_id \
         WHERE f.org_id = ?1",
        [org_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(sql("counting photos removed by retention"))
}
