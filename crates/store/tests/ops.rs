//! The operations queries on both backends (SQLite in a temporary folder, PostgreSQL in a
//! throw-away cluster): worker heartbeats, a job released by a stopping worker, and the
//! queue by organisation.

mod common;

use besikta_store::{FlightState, WorkerBeat};
use common::stores;

fn beat(id: &str, job_id: Option<i64>) -> WorkerBeat {
    WorkerBeat {
        id: id.into(),
        host: "machine-1".into(),
        kind: "worker".into(),
        job_id,
    }
}

#[test]
fn workers_beat_are_listed_with_their_age_and_forgotten_when_they_stop() {
    for (name, s, _dir) in stores() {
        assert!(s.workers().unwrap().is_empty(), "{name}");
        s.beat_worker(&beat("machine-1:10:0", None)).unwrap();
        s.beat_worker(&beat("machine-1:11:0", Some(7))).unwrap();
        // A second beat replaces the first: one row per worker.
        s.beat_worker(&beat("machine-1:10:0", Some(3))).unwrap();
        let seen = s.workers().unwrap();
        assert_eq!(seen.len(), 2, "{name}: {seen:?}");
        assert_eq!(seen[0].id, "machine-1:10:0", "{name}");
        assert_eq!(seen[0].job_id, Some(3), "{name}");
        assert_eq!(seen[0].host, "machine-1", "{name}");
        assert_eq!(seen[0].kind, "worker", "{name}");
        assert_eq!(seen[1].job_id, Some(7), "{name}");
        assert!(
            seen.iter().all(|w| (0..=2).contains(&w.seconds_since)),
            "{name}: just now: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2100));
        s.beat_worker(&beat("machine-1:11:0", None)).unwrap();
        let seen = s.workers().unwrap();
        assert!(seen[0].seconds_since >= 2, "{name}: {seen:?}");
        assert!(seen[1].seconds_since <= 1, "{name}: {seen:?}");
        s.forget_worker("machine-1:10:0").unwrap();
        let seen = s.workers().unwrap();
        assert_eq!(seen.len(), 1, "{name}");
        assert_eq!(seen[0].id, "machine-1:11:0", "{name}");
    }
}

#[test]
fn a_released_job_is_queued_again_at_once_and_its_old_attempt_stores_nothing() {
    for (name, s, _dir) in stores() {
        let org = s.ensure_org("Espoo", None).unwrap();
        let flight = s.create_flight(org.id, "f").unwrap();
        let job_id = s.enqueue_job(org.id, flight.id).unwrap();
        let job = s.claim_job(600).unwrap().unwrap();
        assert_eq!(job.id, job_id);
        assert!(s.release_job(&job).unwrap(), "{name}");
        assert_eq!(s.job_state(job.id).unwrap().as_deref(), Some("queued"));
        assert_eq!(
            s.flight(org.id, flight.id).unwrap().unwrap().state,
            FlightState::Queued,
            "{name}"
        );
        // Released twice, or renewed by the stopped attempt: no effect.
        assert!(!s.release_job(&job).unwrap(), "{name}");
        assert!(!s.renew_job(&job, 600, &serde_json::json!({})).unwrap());
        // Another worker takes it without waiting for the 600 s lease.
        let again = s.claim_job(600).unwrap().unwrap();
        assert_eq!(again.id, job.id, "{name}");
        assert_eq!(again.attempt, job.attempt + 1, "{name}");
        let result = besikta_store::JobResult {
            output_dir: "x".into(),
            findings: vec![],
            rejected: vec![],
        };
        assert_eq!(
            s.complete_job(&job, &result).unwrap(),
            besikta_store::CompleteOutcome::LeaseLost,
            "{name}: the released attempt stores nothing"
        );
    }
}

#[test]
fn jobs_are_counted_per_organisation() {
    for (name, s, _dir) in stores() {
        let a = s.ensure_org("Espoo", None).unwrap();
        let b = s.ensure_org("Vantaa", None).unwrap();
        s.ensure_org("Idle", None).unwrap();
        for org in [&a, &a, &b] {
            let f = s.create_flight(org.id, "f").unwrap();
            s.enqueue_job(org.id, f.id).unwrap();
        }
        let job = s.claim_job(60).unwrap().unwrap();
        s.fail_job(&job, "broken").unwrap();
        let by_org = s.job_counts_by_org().unwrap();
        assert_eq!(by_org.len(), 2, "{name}: organisations with jobs only");
        assert_eq!(by_org[0].org, "Espoo");
        assert_eq!(by_org[1].org, "Vantaa");
        let total: i64 = by_org
            .iter()
            .map(|o| o.jobs.queued + o.jobs.running + o.jobs.done + o.jobs.failed)
            .sum();
        assert_eq!(total, 3, "{name}");
        assert_eq!(
            by_org.iter().map(|o| o.jobs.failed).sum::<i64>(),
            1,
            "{name}"
        );
        let all = s.job_counts().unwrap();
        assert_eq!(
            all.queued,
            by_org.iter().map(|o| o.jobs.queued).sum::<i64>(),
            "{name}"
        );
    }
}
