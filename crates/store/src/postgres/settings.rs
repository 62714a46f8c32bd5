//! Organisation settings in PostgreSQL: one JSON document per organisation (the table is
//! made by the migration `MIGRATION`).

use super::{get, pg};
use crate::time::now;
use crate::{OrgSettings, Result};
use postgres::Client;

/// The schema migration that adds the table.
pub(super) const MIGRATION: &str = "CREATE TABLE org_settings (
    org_id BIGINT PRIMARY KEY REFERENCES orgs(id),
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);";

pub(super) fn read(c: &mut Client, org_id: i64) -> Result<OrgSettings> {
    let row = c
        .query_opt(
            "SELECT settings FROM org_settings WHERE org_id = $1",
            &[&org_id],
        )
        .map_err(pg("reading the organisation's settings"))?;
    let text: Option<String> = match row {
        Some(r) => Some(get(&r, 0)?),
        None => None,
    };
    OrgSettings::from_stored(text)
}

pub(super) fn write(c: &mut Client, org_id: i64, settings: &OrgSettings) -> Result<()> {
    c.execute(
        "INSERT INTO org_settings (org_id, settings, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id) DO UPDATE SET settings = $2, updated_at = $3",
        &[&org_id, &settings.to_stored()?, &now()],
    )
    .map_err(pg("storing the organisation's settings"))?;
    Ok(())
}
