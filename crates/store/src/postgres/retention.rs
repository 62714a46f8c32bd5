//! Retention of original photos in PostgreSQL (see `crate::retention`; the table is made
//! by the migration `MIGRATION`).

use super::{get, pg};
use crate::retention::{RemovedPhoto, DUE_WHERE};
use crate::{Photo, Result};
use postgres::Client;

/// The schema migration that adds the table.
pub(super) const MIGRATION: &str = "CREATE TABLE photo_retention (
    photo_id BIGINT PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    removed_at BIGINT NOT NULL
);";

pub(super) fn due(c: &mut Client, finished_before: i64) -> Result<Vec<Photo>> {
    let doing = "listing photos due for retention";
    let rows = c
        .query(
            &format!(
                "SELECT p.id, p.flight_id, p.name, p.sha256, p.size, p.path \
                 FROM photos p JOIN flights f ON f.id = p.flight_id WHERE {DUE_WHERE} $1 \
                 ORDER BY p.id"
            ),
            &[&finished_before],
        )
        .map_err(pg(doing))?;
    rows.iter()
        .map(|r| {
            Ok(Photo {
                id: get(r, 0)?,
                flight_id: get(r, 1)?,
                name: get(r, 2)?,
                sha256: get(r, 3)?,
                size: get::<i64>(r, 4)? as u64,
                path: get(r, 5)?,
            })
        })
        .collect()
}

pub(super) fn mark(c: &mut Client, photo_id: i64, at: i64) -> Result<()> {
    c.execute(
        "INSERT INTO photo_retention (photo_id, removed_at) VALUES ($1, $2) \
         ON CONFLICT (photo_id) DO NOTHING",
        &[&photo_id, &at],
    )
    .map_err(pg("recording a photo removed by retention"))?;
    Ok(())
}

pub(super) fn removed(c: &mut Client, flight_id: i64) -> Result<Vec<RemovedPhoto>> {
    let rows = c
        .query(
            "SELECT p.id, p.name, r.removed_at FROM photo_retention r \
             JOIN photos p ON p.id = r.photo_id WHERE p.flight_id = $1 ORDER BY p.id",
            &[&flight_id],
        )
        .map_err(pg("listing photos removed by retention"))?;
    rows.iter()
        .map(|r| {
            Ok(RemovedPhoto {
                photo_id: get(r, 0)?,
                name: get(r, 1)?,
                removed_at: get(r, 2)?,
            })
        })
        .collect()
}

pub(super) fn totals(c: &mut Client, org_id: i64) -> Result<(i64, i64)> {
    let row = c
        .query_one(
            "SELECT COUNT(*)::BIGINT, COALESCE(SUM(p.size), 0)::BIGINT FROM photo_retention r \
             JOIN photos p ON p.id = r.photo_id JOIN flights f ON f.id = p.flight_id \
             WHERE f.org_id = $1",
            &[&org_id],
        )
        .map_err(pg("counting photos removed by retention"))?;
    Ok((get(&row, 0)?, get(&row, 1)?))
}
