//! Work units (issue 15) on every backend: a job's batches claimed under leases, a unit
//! whose worker stopped renewing taken over after its lease without touching the other
//! units' results, results stored once per attempt, a stopping worker's unit put back in
//! the queue at once (`release_unit`), units counted by state; the finish unit free once
//! no batch is queued or running, taking the job over (a finisher that died is replaced
//! after its lease, and only the last finisher stores the job), jobs in units never
//! re-queued; fair share of units between organisations, units counted per organisation.

mod common;

use besikta_store::{CompleteOutcome, Job, JobResult, UnitKind};
use common::stores;

#[test]
fn units_are_leased_taken_over_after_expiry_and_stored_once() {
    for (name, s, _dir) in stores() {
        let org = s.ensure_org("Vantaa", None).unwrap();
        let flight = s.create_flight(org.id, "big").unwrap();
        s.enqueue_job(org.id, flight.id).unwrap();
        let job = s.claim_job(60).unwrap().unwrap();
        // No units yet: nothing to claim.
        assert_eq!(s.claim_unit(60, None, "w0").unwrap(), None, "{name}");
        s.put_units(&job, "{\"plan\":1}", &[(0, 4), (4, 4), (8, 2)])
            .unwrap();
        // A second attempt's put keeps the first plan and the units as they are.
        s.put_units(&job, "{\"plan\":2}", &[(0, 4), (4, 4), (8, 2)])
            .unwrap();
        assert_eq!(
            s.unit_plan(job.id).unwrap().as_deref(),
            Some("{\"plan\":1}"),
            "{name}"
        );
        let rows = s.units(job.id, false).unwrap();
        let kinds: Vec<_> = rows.iter().map(|r| (r.kind, r.first, r.count)).collect();
        assert_eq!(
            kinds,
            [
                (UnitKind::Batch, 0, 4),
                (UnitKind::Batch, 4, 4),
                (UnitKind::Batch, 8, 2),
                (UnitKind::Finish, 10, 0)
            ],
            "{name}"
        );

        let u1 = s.claim_unit(60, None, "w1").unwrap().unwrap();
        let u2 = s.claim_unit(60, Some(job.id), "w2").unwrap().unwrap();
        let u3 = s.claim_unit(1, None, "w3").unwrap().unwrap();
        assert_eq!(
            [
                (u1.first, u1.count),
                (u2.first, u2.count),
                (u3.first, u3.count)
            ],
            [(0, 4), (4, 4), (8, 2)],
            "{name}"
        );
        assert_eq!(
            (u1.job_id, u1.flight_id, u1.attempt),
            (job.id, flight.id, 1)
        );
        assert_eq!(u1.kind, UnitKind::Batch);
        // All batches leased (and the finish unit waits for them): nothing free until a
        // lease runs out.
        assert_eq!(s.claim_unit(60, None, "w4").unwrap(), None, "{name}");
        assert!(s.complete_unit(&u1, Some("r1"), None).unwrap());
        assert!(
            !s.complete_unit(&u1, Some("again"), None).unwrap(),
            "{name}: a done unit is not stored twice"
        );
        assert!(s.renew_unit(&u2, 60).unwrap());

        // w3 stops renewing: after its one-second lease, w4 takes the unit over.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let u3b = s.claim_unit(60, None, "w4").unwrap().unwrap();
        assert_eq!((u3b.id, u3b.attempt), (u3.id, 2), "{name}");
        assert!(
            !s.renew_unit(&u3, 60).unwrap(),
            "{name}: the old lease is gone"
        );
        assert!(
            !s.complete_unit(&u3, Some("late"), None).unwrap(),
            "{name}: the late worker stores nothing"
        );
        assert!(s.complete_unit(&u3b, Some("r3"), None).unwrap());
        assert!(s.complete_unit(&u2, None, Some("decoder crashed")).unwrap());

        let rows = s.units(job.id, true).unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.first,
                    r.state.as_str(),
                    r.worker.as_deref(),
                    r.result.as_deref(),
                    r.error.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, "done", Some("w1"), Some("r1"), None),
                (4, "failed", Some("w2"), None, Some("decoder crashed")),
                (8, "done", Some("w4"), Some("r3"), None),
                (10, "queued", None, None, None),
            ],
            "{name}"
        );
        assert!(s.units(job.id, false).unwrap()[0].result.is_none());

        // Units of a job that is no longer running are not handed out.
        let f2 = s.create_flight(org.id, "other").unwrap();
        s.enqueue_job(org.id, f2.id).unwrap();
        let job2 = s.claim_job(60).unwrap().unwrap();
        s.put_units(&job2, "{}", &[(0, 1)]).unwrap();
        s.fail_job(&job2, "stopped").unwrap();
        // No batch of the first job is queued or running any more (one failed): its
        // finish unit is free, and claiming it starts the job's next attempt.
        let fin = s.claim_unit(60, None, "w5").unwrap().unwrap();
        assert_eq!(
            (fin.kind, fin.job_id, fin.job_attempt, fin.first, fin.count),
            (UnitKind::Finish, job.id, job.attempt + 1, 10, 0),
            "{name}"
        );
        assert_eq!(s.claim_unit(60, None, "w6").unwrap(), None, "{name}");

        // A finished job's plan and results go; the units stay as the record of who ran what.
        s.delete_units(job.id).unwrap();
        let rows = s.units(job.id, true).unwrap();
        assert_eq!(rows.len(), 4, "{name}");
        assert!(rows.iter().all(|r| r.result.is_none()), "{name}");
        assert_eq!(rows[2].worker.as_deref(), Some("w4"), "{name}");
        assert_eq!(rows[3].worker.as_deref(), Some("w5"), "{name}");
        assert_eq!(s.unit_plan(job.id).unwrap(), None);
    }
}

#[test]
fn a_released_unit_goes_to_another_worker_at_once_and_is_counted() {
    for (name, s, _dir) in stores() {
        let org = s.ensure_org("Espoo", None).unwrap();
        let flight = s.create_flight(org.id, "big").unwrap();
        s.enqueue_job(org.id, flight.id).unwrap();
        let job = s.claim_job(60).unwrap().unwrap();
        s.put_units(&job, "{}", &[(0, 4), (4, 4), (8, 2)]).unwrap();
        let held = s.claim_unit(600, None, "stopping").unwrap().unwrap();
        let done = s.claim_unit(600, None, "w1").unwrap().unwrap();
        assert!(s.complete_unit(&done, Some("r"), None).unwrap());
        // Queued: the third batch and the finish unit (waiting for the batches).
        let counts = s.unit_counts().unwrap();
        assert_eq!(
            (counts.queued, counts.running, counts.done, counts.failed),
            (2, 1, 1, 0),
            "{name}"
        );

        // The stopping worker hands its unit back: queued again, long before its lease ends.
        assert!(s.release_unit(&held).unwrap(), "{name}");
        assert!(
            !s.release_unit(&held).unwrap(),
            "{name}: released once only"
        );
        assert!(
            !s.release_unit(&done).unwrap(),
            "{name}: a done unit is not put back"
        );
        assert_eq!(s.unit_counts().unwrap().queued, 3, "{name}");
        let next = s.claim_unit(600, None, "w2").unwrap().unwrap();
        assert_eq!((next.id, next.attempt), (held.id, 2), "{name}");
        // The stopped worker's late renewal or result changes nothing.
        assert!(!s.renew_unit(&held, 600).unwrap(), "{name}");
        assert!(
            !s.complete_unit(&held, Some("late"), None).unwrap(),
            "{name}"
        );
        assert!(!s.release_unit(&held).unwrap(), "{name}");
        assert!(s.complete_unit(&next, Some("r2"), None).unwrap(), "{name}");
        let row = s
            .units(job.id, true)
            .unwrap()
            .into_iter()
            .find(|r| r.id == held.id)
            .unwrap();
        assert_eq!(
            (
                row.state.as_str(),
                row.worker.as_deref(),
                row.result.as_deref()
            ),
            ("done", Some("w2"), Some("r2")),
            "{name}"
        );
        let counts = s.unit_counts().unwrap();
        assert_eq!(
            (counts.queued, counts.running, counts.done, counts.failed),
            (2, 0, 2, 0),
            "{name}"
        );
    }
}

fn result(dir: &str) -> JobResult {
    JobResult {
        output_dir: dir.into(),
        findings: vec![],
        rejected: vec![],
    }
}

/// The job's worker puts its units and leaves: the job is never re-queued (its lease may
/// run out), the finish unit is free once every batch is done, a finisher that stops
/// renewing is replaced after its lease, and only the last finisher's attempt stores the
/// job (the preparer's and the dead finisher's attempts store nothing).
#[test]
fn the_finish_unit_takes_the_job_over_and_a_dead_finisher_is_replaced() {
    for (name, s, _dir) in stores() {
        let org = s.ensure_org("Lahti", None).unwrap();
        let flight = s.create_flight(org.id, "big").unwrap();
        s.enqueue_job(org.id, flight.id).unwrap();
        let job = s.claim_job(1).unwrap().unwrap();
        s.put_units(&job, "{}", &[(0, 2), (2, 2)]).unwrap();
        let b1 = s.claim_unit(60, None, "w1").unwrap().unwrap();
        let b2 = s.claim_unit(60, None, "w2").unwrap().unwrap();
        assert_eq!(b2.first, 2, "{name}");
        assert!(s.complete_unit(&b1, Some("r1"), None).unwrap());
        // One batch still runs: the finish unit waits.
        assert_eq!(s.claim_unit(60, None, "w3").unwrap(), None, "{name}");

        // The preparer's lease runs out; the job is the units' and stays running.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(s.requeue_expired().unwrap(), 0, "{name}");
        assert_eq!(s.requeue_running().unwrap(), 0, "{name}");
        assert_eq!(s.job_state(job.id).unwrap().as_deref(), Some("running"));
        assert!(s.complete_unit(&b2, Some("r2"), None).unwrap(), "{name}");

        // Every batch done: the finish unit goes to a worker that then dies (1 s lease).
        let f1 = s.claim_unit(1, None, "dying").unwrap().unwrap();
        assert_eq!(
            (f1.kind, f1.first, f1.attempt, f1.job_attempt),
            (UnitKind::Finish, 4, 1, job.attempt + 1),
            "{name}"
        );
        let as_job = |attempt| Job {
            attempt,
            ..job.clone()
        };
        assert_eq!(
            s.complete_job(&job, &result("out-preparer")).unwrap(),
            CompleteOutcome::LeaseLost,
            "{name}: the preparer's attempt is over"
        );
        assert!(s
            .renew_job(&as_job(f1.job_attempt), 1, &serde_json::Value::Null)
            .unwrap());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(s.requeue_expired().unwrap(), 0, "{name}");

        // Another worker redoes the finish: unit attempt 2, job attempt 3.
        let f2 = s.claim_unit(60, None, "w4").unwrap().unwrap();
        assert_eq!(
            (f2.id, f2.attempt, f2.job_attempt),
            (f1.id, 2, f1.job_attempt + 1),
            "{name}"
        );
        assert!(!s.renew_unit(&f1, 60).unwrap(), "{name}");
        assert!(!s
            .renew_job(&as_job(f1.job_attempt), 60, &serde_json::Value::Null)
            .unwrap());
        assert_eq!(
            s.complete_job(&as_job(f1.job_attempt), &result("out-dying"))
                .unwrap(),
            CompleteOutcome::LeaseLost,
            "{name}: the dead finisher stores nothing"
        );
        assert!(!s.complete_unit(&f1, None, None).unwrap(), "{name}");
        assert!(matches!(
            s.complete_job(&as_job(f2.job_attempt), &result("out-w4"))
                .unwrap(),
            CompleteOutcome::Stored { .. }
        ));
        assert!(s.complete_unit(&f2, None, None).unwrap(), "{name}");
        assert_eq!(s.job_state(job.id).unwrap().as_deref(), Some("done"));
        assert_eq!(s.claim_unit(60, None, "w5").unwrap(), None, "{name}");
        let rows = s.units(job.id, false).unwrap();
        let fin = rows.iter().find(|r| r.kind == UnitKind::Finish).unwrap();
        assert_eq!(
            (fin.state.as_str(), fin.attempt, fin.worker.as_deref()),
            ("done", 2, Some("w4")),
            "{name}"
        );
    }
}

/// Two organisations: one queued many units first, the other one unit later. Units go to
/// the organisation with fewer running units first, so the second's unit (and then its
/// finish unit) is claimed before the first's remaining units.
#[test]
fn units_are_shared_fairly_between_organisations() {
    for (name, s, _dir) in stores() {
        let big = s.ensure_org("Big", None).unwrap();
        let small = s.ensure_org("Small", None).unwrap();
        let fb = s.create_flight(big.id, "huge").unwrap();
        s.enqueue_job(big.id, fb.id).unwrap();
        let jb = s.claim_job(60).unwrap().unwrap();
        let many: Vec<(i64, i64)> = (0..6).map(|i| (i, 1)).collect();
        s.put_units(&jb, "{}", &many).unwrap();
        let fs = s.create_flight(small.id, "small").unwrap();
        s.enqueue_job(small.id, fs.id).unwrap();
        let js = s.claim_job(60).unwrap().unwrap();
        assert_eq!(js.org_id, small.id);
        s.put_units(&js, "{}", &[(0, 1)]).unwrap();

        // Nobody runs anything: the oldest (the big organisation's first) goes first.
        let a = s.claim_unit(60, None, "w1").unwrap().unwrap();
        assert_eq!((a.org_id, a.first), (big.id, 0), "{name}");
        // Big runs one, Small none: Small's unit, though Big queued five more before it.
        let b = s.claim_unit(60, None, "w2").unwrap().unwrap();
        assert_eq!((b.org_id, b.job_id), (small.id, js.id), "{name}");
        // One each: the tie goes to the oldest, Big's second.
        let c = s.claim_unit(60, None, "w3").unwrap().unwrap();
        assert_eq!((c.org_id, c.first), (big.id, 1), "{name}");
        // Small's batch done: its finish unit goes before Big's remaining batches.
        assert!(s.complete_unit(&b, Some("r"), None).unwrap());
        let d = s.claim_unit(60, None, "w4").unwrap().unwrap();
        assert_eq!((d.org_id, d.kind), (small.id, UnitKind::Finish), "{name}");
        let e = s.claim_unit(60, None, "w5").unwrap().unwrap();
        assert_eq!((e.org_id, e.first), (big.id, 2), "{name}");

        // Counted per organisation for the operator: Big 3 running, 3 batches and its
        // finish unit queued; Small its batch done and its finish running.
        let by_org: Vec<_> = s
            .unit_counts_by_org()
            .unwrap()
            .into_iter()
            .map(|o| {
                let u = o.jobs;
                (o.org, u.queued, u.running, u.done, u.failed)
            })
            .collect();
        assert_eq!(
            by_org,
            [
                ("Big".into(), 4, 3, 0, 0),
                ("Small".to_string(), 0, 1, 1, 0)
            ],
            "{name}"
        );
    }
}
