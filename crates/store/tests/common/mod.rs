//! Set-up shared by the store's integration tests: one store of each backend, each in a
//! fresh database.

use besikta_store::testing::PgCluster;
use besikta_store::{PgStore, SqliteStore, Store};
use std::sync::Arc;

/// A store of each backend, each in a fresh database: SQLite in a temporary folder (kept
/// alive by the folder returned with it) and PostgreSQL in the throw-away cluster
/// (`besikta_store::testing`).
pub fn stores() -> Vec<(&'static str, Arc<dyn Store>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("besikta.db")).unwrap();
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let pg = PgStore::open(&url).unwrap();
    vec![
        ("sqlite", Arc::new(sqlite), dir),
        ("postgres", Arc::new(pg), tempfile::tempdir().unwrap()),
    ]
}
