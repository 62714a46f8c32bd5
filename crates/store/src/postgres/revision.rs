//! The organisation's findings revision in PostgreSQL (see `crate::FindingsRevision`; the
//! table is made by the migration `MIGRATION`), raised inside the transactions that change
//! its findings.

use super::{get, pg};
use crate::{FindingsRevision, Result};
use postgres::GenericClient;

/// The schema migration that adds the table. A missing row is revision 0.
pub(super) const MIGRATION: &str = "CREATE TABLE findings_revisions (
    org_id BIGINT PRIMARY KEY REFERENCES orgs(id),
    content BIGINT NOT NULL,
    rows BIGINT NOT NULL
);";

/// What changed, for [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// A status or a review: the same findings, other content.
    Content,
    /// Findings added or removed.
    Rows,
}

/// Raises the organisation's revision; call inside the transaction of the change, as its
/// last statement (the row lock it takes is then held by nobody waiting for another lock).
pub(super) fn raise(c: &mut impl GenericClient, org_id: i64, change: Change) -> Result<()> {
    let (at, rows) = (crate::revision_clock(), change == Change::Rows);
    c.execute(
        "INSERT INTO findings_revisions (org_id, content, rows) VALUES ($1, $2::BIGINT, CASE WHEN $3::BOOLEAN THEN $2::BIGINT ELSE 0::BIGINT END) \
         ON CONFLICT (org_id) DO UPDATE SET content = GREATEST(findings_revisions.content + 1, $2::BIGINT), \
         rows = CASE WHEN $3::BOOLEAN THEN GREATEST(findings_revisions.rows + 1, $2::BIGINT) ELSE findings_revisions.rows END",
        &[&org_id, &at, &rows],
    )
    .map_err(pg("raising the findings revision"))?;
    Ok(())
}

pub(super) fn read(c: &mut impl GenericClient, org_id: i64) -> Result<FindingsRevision> {
    let doing = "reading the findings revision";
    Ok(c.query_opt(
        "SELECT content, rows FROM findings_revisions WHERE org_id = $1",
        &[&org_id],
    )
    .map_err(pg(doing))?
    .map(|r| -> Result<FindingsRevision> {
        Ok(FindingsRevision {
            content: get(&r, 0)?,
            rows: get(&r, 1)?,
        })
    })
    .transpose()?
    .unwrap_or_default())
}
