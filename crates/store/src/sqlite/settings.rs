//! Organisation settings in SQLite: one JSON document per organisation.

use super::sql;
use crate::time::now;
use crate::{OrgSettings, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// Idempotent, run on each open: the migration of a database made before settings existed.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS org_settings (
    org_id INTEGER PRIMARY KEY REFERENCES orgs(id),
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

pub(super) fn read(conn: &Connection, org_id: i64) -> Result<OrgSettings> {
    let text: Option<String> = conn
        .query_row(
            "SELECT settings FROM org_settings WHERE org_id = ?1",
            [org_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("reading the organisation's settings"))?;
    OrgSettings::from_stored(text)
}

pub(super) fn write(conn: &Connection, org_id: i64, settings: &OrgSettings) -> Result<()> {
    conn.execute(
        "INSERT INTO org_settings (org_id, settings, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT(org_id) DO UPDATE SET settings = ?2, updated_at = ?3",
        params![org_id, settings.to_stored()?, now()],
    )
    .map_err(sql("storing the organisation's settings"))?;
    Ok(())
}
