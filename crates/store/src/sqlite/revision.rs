//! The organisation's findings revision in SQLite (see `crate::FindingsRevision`): one row
//! per organisation, raised inside the transactions that change its findings.

use super::sql;
use crate::{FindingsRevision, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// Idempotent, run on each open. A missing row is revision 0.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS findings_revisions (
    org_id INTEGER PRIMARY KEY REFERENCES orgs(id),
    content INTEGER NOT NULL,
    rows INTEGER NOT NULL
);
"#;

/// What changed, for [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// A status or a review: the same findings, other content.
    Content,
    /// Findings added or removed.
    Rows,
}

/// Raises the organisation's revision; call inside the transaction of the change.
pub(super) fn raise(conn: &Connection, org_id: i64, change: Change) -> Result<()> {
    let (at, rows) = (crate::revision_clock(), change == Change::Rows);
    conn.execute(
        "INSERT INTO findings_revisions (org_id, content, rows) VALUES (?1, ?2, CASE WHEN ?3 THEN ?2 ELSE 0 END) \
         ON CONFLICT(org_id) DO UPDATE SET content = MAX(content + 1, ?2), \
         rows = CASE WHEN ?3 THEN MAX(rows + 1, ?2) ELSE rows END",
        params![org_id, at, rows],
    )
    .map_err(sql("raising the findings revision"))?;
    Ok(())
}

pub(super) fn read(conn: &Connection, org_id: i64) -> Result<FindingsRevision> {
    Ok(conn
        .query_row(
            "SELECT content, rows FROM findings_revisions WHERE org_id = ?1",
            [org_id],
            |r| {
                Ok(FindingsRevision {
                    content: r.get(0)?,
                    rows: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(sql("reading the findings revision"))?
        .unwrap_or_default())
}
