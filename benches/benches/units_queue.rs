//! Queue overhead per work unit (issue 15): one claim and one release of a batch unit
//! (the claim picks by fair share: the organisation with the fewest running units, finish
//! units first, then the oldest) with a deep queue: one organisation's flight of 2,000
//! batch units, another's of 20, 4 units running. SQLite (a file in a temporary folder)
//! and PostgreSQL (a throw-away local cluster, `besikta_store::testing`). Release puts the
//! unit back, so every iteration sees the same queue.

use besikta_store::testing::PgCluster;
use besikta_store::{PgStore, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, Criterion};

/// Two organisations' running jobs with their units queued, 4 of the first's running.
fn fill(s: &dyn Store) {
    for (org, flight, units) in [("Helsinki", "region", 2000), ("Kerava", "street", 20)] {
        let org = s.ensure_org(org, None).expect("org").id;
        let flight = s.create_flight(org, flight).expect("flight").id;
        s.enqueue_job(org, flight).expect("queue");
        let job = s.claim_job(3600).expect("claim").expect("a job");
        let batches: Vec<(i64, i64)> = (0..units).map(|i| (i * 8, 8)).collect();
        s.put_units(&job, "{}", &batches).expect("units");
    }
    for i in 0..4 {
        s.claim_unit(3600, None, &format!("busy-{i}"))
            .expect("claim")
            .expect("a unit");
    }
}

fn units(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let sqlite = SqliteStore::open(&dir.path().join("besikta.db")).expect("SQLite");
    let url = PgCluster::shared()
        .and_then(|c| c.fresh_database())
        .expect("a PostgreSQL cluster (scripts/setup installs it)");
    let pg = PgStore::open(&url).expect("PostgreSQL");
    let mut group = c.benchmark_group("units: claim + release of one unit, 2,020 queued");
    for (name, store) in [("sqlite", &sqlite as &dyn Store), ("postgres", &pg)] {
        fill(store);
        group.bench_function(name, |b| {
            b.iter(|| {
                let unit = store
                    .claim_unit(60, None, "bench")
                    .expect("claim")
                    .expect("a unit");
                assert!(store.release_unit(&unit).expect("release"));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, units);
criterion_main!(benches);
