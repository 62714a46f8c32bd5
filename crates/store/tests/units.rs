//! Work units (issue 15) on every backend: a job's batches claimed under leases, a unit
//! whose worker stopped renewing taken over after its lease without touching the other
//! units' results, results stored once per attempt, a stopping worker's unit put back in
//! the queue at once (`release_unit`), units counted by state; the finish unit free once
//! no batch is queued or running, taking the job over (a finisher that died is replaced
//! after its lease, and only the last finisher stores the job), jobs in units never
//! re-queued; fair share of units between organisations, units counted per organisation;
//! a finish storing the job's results (or its failure) and marking its unit done in one
//! transaction, refused when its claim was taken over or handed back.

mod common;

use besikta_core::finding::Finding;
use besikta_core::{AssetKind, Severity};
use besikta_store::{
    CompleteOutcome, FindingFilter, FlightState, Job, JobResult, NewFinding, Store, StoreError,
    UnitKind, WorkUnit,
};
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
        // One unit's result at a time (the finishing worker reads them so).
        let ids: Vec<i64> = s
            .units(job.id, false)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        let one_by_one: Vec<Option<String>> =
            ids.iter().map(|&id| s.unit_result(id).unwrap()).collect();
        assert_eq!(
            one_by_one,
            [Some("r1".to_string()), None, Some("r3".to_string()), None],
            "{name}"
        );
        assert_eq!(s.unit_result(i64::MAX).unwrap(), None, "{name}");

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

/// A finding of class `class` at longitude `lon`.
fn finding(class: &str, lon: f64) -> NewFinding {
    let d = 0.0001;
    NewFinding::new(Finding {
        id: format!("{class}-{lon}"),
        class: class.into(),
        asset_kind: AssetKind::Road,
        severity: Severity::Medium,
        confidence: 0.5,
        length_m: None,
        area_m2: 1.0,
        polygon: vec![
            [lon, 60.0],
            [lon + d, 60.0],
            [lon + d, 60.0 + d],
            [lon, 60.0 + d],
            [lon, 60.0],
        ],
        centroid: [lon + d / 2.0, 60.0 + d / 2.0],
        asset: None,
        observations: vec![],
        best: 0,
        views: 1,
        support: 1,
    })
}

/// A job's result in folder `dir` with one finding of class `class`.
fn result_with(dir: &str, class: &str) -> JobResult {
    JobResult {
        output_dir: dir.into(),
        findings: vec![finding(class, 24.9)],
        rejected: vec![],
    }
}

/// A flight whose job put one batch, done, so its finish unit is free: (job, flight id).
fn ready_to_finish(s: &dyn Store, org: i64, name: &str) -> (Job, i64) {
    let flight = s.create_flight(org, name).unwrap();
    s.enqueue_job(org, flight.id).unwrap();
    let job = s.claim_job(60).unwrap().unwrap();
    s.put_units(&job, "{}", &[(0, 2)]).unwrap();
    let batch = s.claim_unit(60, Some(job.id), "batcher").unwrap().unwrap();
    assert!(s.complete_unit(&batch, Some("r"), None).unwrap());
    (job, flight.id)
}

/// The finish unit's row of the job: (state, attempt, worker).
fn finish_row(s: &dyn Store, job_id: i64) -> (String, i64, Option<String>) {
    let rows = s.units(job_id, false).unwrap();
    let fin = rows.iter().find(|r| r.kind == UnitKind::Finish).unwrap();
    (fin.state.clone(), fin.attempt, fin.worker.clone())
}

/// What a reader sees of the flight: its state, output folder and finding classes.
fn seen(s: &dyn Store, org: i64, flight: i64) -> (FlightState, Option<String>, Vec<String>) {
    let f = s.flight(org, flight).unwrap().unwrap();
    let filter = FindingFilter {
        flight_id: Some(flight),
        ..FindingFilter::default()
    };
    let classes = s
        .findings(org, &filter)
        .unwrap()
        .into_iter()
        .map(|r| r.class)
        .collect();
    (f.state, f.output_dir, classes)
}

/// One call stores the job's results and marks its finish unit done (no `complete_unit`
/// after it), and a failed finish fails the job and marks the unit done the same way; a
/// claim whose job attempt is over stores nothing and leaves its unit running (the two
/// writes roll back together).
#[test]
fn a_finish_stores_the_job_and_marks_its_unit_done_in_one_step() {
    for (name, s, _dir) in stores() {
        let s = s.as_ref();
        let org = s.ensure_org("Kotka", None).unwrap().id;
        let (job, flight) = ready_to_finish(s, org, "big");
        let fin = s.claim_unit(60, None, "finisher").unwrap().unwrap();
        assert_eq!((fin.kind, fin.job_id), (UnitKind::Finish, job.id), "{name}");
        assert_eq!(
            finish_row(s, job.id),
            ("running".into(), 1, Some("finisher".into())),
            "{name}"
        );

        // The claim holds but names a job attempt that is over: nothing at all is written.
        let stale = WorkUnit {
            job_attempt: fin.job_attempt - 1,
            ..fin.clone()
        };
        assert_eq!(
            s.complete_finish(&stale, &result_with("out-stale", "crack"))
                .unwrap(),
            CompleteOutcome::LeaseLost,
            "{name}"
        );
        assert_eq!(
            finish_row(s, job.id).0,
            "running",
            "{name}: the unit is not marked done without the job"
        );
        assert_eq!(s.job_state(job.id).unwrap().as_deref(), Some("running"));
        assert_eq!(seen(s, org, flight).2, Vec::<String>::new(), "{name}");

        // The real claim: job, flight, findings and unit, all at once.
        assert_eq!(
            s.complete_finish(&fin, &result_with("out-1", "crack"))
                .unwrap(),
            CompleteOutcome::Stored {
                previous_output_dir: None
            },
            "{name}"
        );
        assert_eq!(
            finish_row(s, job.id),
            ("done".into(), 1, Some("finisher".into())),
            "{name}"
        );
        assert_eq!(s.job_state(job.id).unwrap().as_deref(), Some("done"));
        assert_eq!(
            seen(s, org, flight),
            (
                FlightState::Done,
                Some("out-1".into()),
                vec!["crack".to_string()]
            ),
            "{name}"
        );
        assert!(
            !s.complete_unit(&fin, None, None).unwrap(),
            "{name}: nothing left to mark"
        );
        assert_eq!(s.claim_unit(60, None, "late").unwrap(), None, "{name}");
        // Done once: the same claim cannot store again.
        assert!(
            matches!(
                s.complete_finish(&fin, &result_with("out-2", "pothole")),
                Err(StoreError::ClaimLost { unit_id, job_id, attempt: 1 })
                    if unit_id == fin.id && job_id == job.id
            ),
            "{name}"
        );
        assert_eq!(seen(s, org, flight).1.as_deref(), Some("out-1"), "{name}");

        // A failed finish: the job and flight fail and the unit is done, in one step.
        let (job2, flight2) = ready_to_finish(s, org, "broken");
        let fin2 = s.claim_unit(60, None, "finisher").unwrap().unwrap();
        assert_eq!(fin2.job_id, job2.id, "{name}");
        s.fail_finish(&fin2, "alignment failed").unwrap();
        assert_eq!(finish_row(s, job2.id).0, "done", "{name}");
        assert_eq!(s.job_state(job2.id).unwrap().as_deref(), Some("failed"));
        let f2 = s.flight(org, flight2).unwrap().unwrap();
        assert_eq!(
            (f2.state, f2.error.as_deref()),
            (FlightState::Failed, Some("alignment failed")),
            "{name}"
        );
        assert!(
            matches!(
                s.fail_finish(&fin2, "again"),
                Err(StoreError::ClaimLost { .. })
            ),
            "{name}"
        );
    }
}

/// A finisher whose lease ran out and whose unit another worker claimed is refused with a
/// clear error and stores nothing, before and after the new finisher stores the job (its
/// failure is refused too); so is a finisher that handed its unit back, and a batch unit.
#[test]
fn a_finish_whose_claim_was_taken_over_is_refused_and_stores_nothing() {
    for (name, s, _dir) in stores() {
        let s = s.as_ref();
        let org = s.ensure_org("Hamina", None).unwrap().id;
        let (job, flight) = ready_to_finish(s, org, "big");
        let slow = s.claim_unit(1, None, "slow").unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let next = s.claim_unit(60, None, "next").unwrap().unwrap();
        assert_eq!(
            (next.id, next.attempt, next.job_attempt),
            (slow.id, 2, slow.job_attempt + 1),
            "{name}"
        );

        // The slow finisher comes back: refused, nothing stored, the unit still the
        // new finisher's.
        let err = s
            .complete_finish(&slow, &result_with("out-slow", "pothole"))
            .unwrap_err();
        assert!(
            matches!(err, StoreError::ClaimLost { unit_id, job_id, attempt: 1 }
                if unit_id == slow.id && job_id == job.id),
            "{name}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("work unit {} of job {}", slow.id, job.id))
                && message.contains("nothing was stored"),
            "{name}: {message}"
        );
        assert!(matches!(
            s.fail_finish(&slow, "late failure"),
            Err(StoreError::ClaimLost { .. })
        ));
        assert_eq!(
            seen(s, org, flight),
            (FlightState::Running, None, vec![]),
            "{name}"
        );
        assert_eq!(s.job_state(job.id).unwrap().as_deref(), Some("running"));
        assert_eq!(
            finish_row(s, job.id),
            ("running".into(), 2, Some("next".into())),
            "{name}"
        );

        // The new finisher stores the job; the slow one still cannot overwrite it.
        assert!(matches!(
            s.complete_finish(&next, &result_with("out-next", "crack"))
                .unwrap(),
            CompleteOutcome::Stored { .. }
        ));
        assert!(matches!(
            s.complete_finish(&slow, &result_with("out-slow", "pothole")),
            Err(StoreError::ClaimLost { .. })
        ));
        assert_eq!(
            seen(s, org, flight),
            (
                FlightState::Done,
                Some("out-next".into()),
                vec!["crack".to_string()]
            ),
            "{name}"
        );
        assert_eq!(
            finish_row(s, job.id),
            ("done".into(), 2, Some("next".into())),
            "{name}"
        );

        // A stopping finisher that handed its unit back stores nothing: the unit is the
        // queue's, and the next claim finishes the job.
        let (job2, flight2) = ready_to_finish(s, org, "handed back");
        let leaving = s.claim_unit(60, None, "leaving").unwrap().unwrap();
        assert!(s.release_unit(&leaving).unwrap(), "{name}");
        assert!(matches!(
            s.complete_finish(&leaving, &result_with("out-leaving", "crack")),
            Err(StoreError::ClaimLost { .. })
        ));
        assert_eq!(
            seen(s, org, flight2),
            (FlightState::Running, None, vec![]),
            "{name}"
        );
        assert_eq!(finish_row(s, job2.id).0, "queued", "{name}");

        // Only a finish unit finishes a job.
        let f3 = s.create_flight(org, "batches").unwrap();
        s.enqueue_job(org, f3.id).unwrap();
        let job3 = s.claim_job(60).unwrap().unwrap();
        s.put_units(&job3, "{}", &[(0, 2)]).unwrap();
        let batch = s.claim_unit(60, Some(job3.id), "w").unwrap().unwrap();
        assert_eq!(batch.kind, UnitKind::Batch);
        let as_finish = WorkUnit {
            job_attempt: job3.attempt,
            ..batch.clone()
        };
        assert!(matches!(
            s.complete_finish(&as_finish, &result_with("out-batch", "crack")),
            Err(StoreError::ClaimLost { .. })
        ));
        assert_eq!(s.job_state(job3.id).unwrap().as_deref(), Some("running"));
        assert!(s.complete_unit(&batch, Some("r"), None).unwrap(), "{name}");
    }
}
