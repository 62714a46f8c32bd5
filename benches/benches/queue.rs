//! Queue overhead per job: queue, claim, one heartbeat and completion (with 20 findings)
//! of one job, on SQLite (a file in a temporary folder) and on PostgreSQL (a throw-away
//! local cluster, `besikta_store::testing`). The pipeline's own time is not in it.

use besikta_core::finding::Finding;
use besikta_core::{AssetKind, Severity};
use besikta_store::testing::PgCluster;
use besikta_store::{JobResult, NewFinding, PgStore, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, Criterion};

fn findings(n: usize) -> Vec<NewFinding> {
    (0..n)
        .map(|i| {
            let x = 24.0 + i as f64 * 0.001;
            NewFinding::new(Finding {
                id: format!("F{i}"),
                class: "crack".into(),
                asset_kind: AssetKind::Road,
                severity: Severity::Medium,
                confidence: 0.5,
                length_m: Some(2.0),
                area_m2: 1.0,
                polygon: vec![[x, 60.0], [x + 0.0005, 60.0], [x, 60.0005], [x, 60.0]],
                centroid: [x, 60.0],
                asset: None,
                observations: vec![],
                best: 0,
                views: 1,
                support: 1,
            })
        })
        .collect()
}

/// One job through the queue, as a worker sees it.
fn one_job(s: &dyn Store, org: i64, flight: i64, result: &JobResult) {
    s.enqueue_job(org, flight).expect("queue");
    let job = s.claim_job(60).expect("claim").expect("a job");
    s.renew_job(&job, 60, &serde_json::json!({"stage": "infer"}))
        .expect("renew");
    s.complete_job(&job, result).expect("complete");
}

fn queue(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let sqlite = SqliteStore::open(&dir.path().join("besikta.db")).expect("SQLite");
    let url = PgCluster::shared()
        .and_then(|c| c.fresh_database())
        .expect("a PostgreSQL cluster (scripts/setup installs it)");
    let pg = PgStore::open(&url).expect("PostgreSQL");
    let result = JobResult {
        output_dir: "flights/1/out".into(),
        findings: findings(20),
        rejected: vec![],
    };
    let mut group = c.benchmark_group("queue: one job with 20 findings");
    for (name, store) in [("sqlite", &sqlite as &dyn Store), ("postgres", &pg)] {
        let org = store.ensure_org("Espoo", None).expect("org").id;
        let flight = store.create_flight(org, "f").expect("flight").id;
        group.bench_function(name, |b| b.iter(|| one_job(store, org, flight, &result)));
    }
    group.finish();
}

criterion_group!(benches, queue);
criterion_main!(benches);
