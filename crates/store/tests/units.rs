//! Work units (issue 15) on every backend: a job's batches claimed under leases, a unit
//! whose worker stopped renewing taken over after its lease without touching the other
//! units' results, results stored once per attempt, a stopping worker's unit put back in
//! the queue at once (`release_unit`), units counted by state.

mod common;

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
        assert_eq!(s.units(job.id, false).unwrap().len(), 3, "{name}");

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
        // All leased: nothing free until a lease runs out.
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
        assert_eq!(s.claim_unit(60, None, "w5").unwrap(), None, "{name}");

        // A finished job's plan and results go; the units stay as the record of who ran what.
        s.delete_units(job.id).unwrap();
        let rows = s.units(job.id, true).unwrap();
        assert_eq!(rows.len(), 3, "{name}");
        assert!(rows.iter().all(|r| r.result.is_none()), "{name}");
        assert_eq!(rows[2].worker.as_deref(), Some("w4"), "{name}");
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
        let counts = s.unit_counts().unwrap();
        assert_eq!(
            (counts.queued, counts.running, counts.done, counts.failed),
            (1, 1, 1, 0),
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
        assert_eq!(s.unit_counts().unwrap().queued, 2, "{name}");
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
            (1, 0, 2, 0),
            "{name}"
        );
    }
}
