//! An organisation's findings revision (`Store::findings_revision`, the findings pages'
//! ETags) on every backend: each change of what a findings page says raises it, in that
//! organisation only, to at least the clock; adding or removing findings also raises
//! `rows`; a refused change and a read raise nothing.

mod common;

use besikta_core::finding::Finding;
use besikta_core::{AssetKind, Review, ReviewState, Severity};
use besikta_store::{
    CompleteOutcome, FindingFilter, FindingsRevision, FlightDeleted, JobResult, NewFinding, Store,
};
use common::stores;

fn finding(id: &str, lon: f64) -> NewFinding {
    let d = 0.0001;
    NewFinding::new(Finding {
        id: id.into(),
        class: "crack".into(),
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

fn process(s: &dyn Store, org: i64, flight: i64, findings: Vec<NewFinding>) {
    s.enqueue_job(org, flight).unwrap();
    let job = s.claim_job(60).unwrap().unwrap();
    let result = JobResult {
        output_dir: format!("flights/{flight}/out-{}", job.id),
        findings,
        rejected: vec![],
    };
    assert!(matches!(
        s.complete_job(&job, &result).unwrap(),
        CompleteOutcome::Stored { .. }
    ));
}

/// The organisation's revision after a change: `content` raised, `rows` raised exactly
/// when findings were added or removed, both at least the clock (microseconds since 1970)
/// when the change began, so numbers are not handed out twice after a restore.
fn raised(
    s: &dyn Store,
    org: i64,
    last: &mut FindingsRevision,
    rows: bool,
    started: i64,
    what: &str,
) {
    let now = s.findings_revision(org).unwrap();
    assert!(
        now.content > last.content && now.content >= started,
        "{what}: {now:?} after {last:?}"
    );
    if rows {
        assert!(
            now.rows > last.rows && now.rows >= started,
            "{what}: {now:?} after {last:?}"
        );
    } else {
        assert_eq!(now.rows, last.rows, "{what}");
    }
    *last = now;
}

fn micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[test]
fn every_change_of_an_organisations_findings_raises_its_revision() {
    for (name, s, _dir) in stores() {
        let a = s.ensure_org("Espoo", None).unwrap();
        let b = s.ensure_org("Vantaa", None).unwrap();
        let mut last = FindingsRevision::default();
        assert_eq!(s.findings_revision(a.id).unwrap(), last, "{name}");
        let flight = s.create_flight(a.id, "f").unwrap();
        let t = micros();
        process(
            &*s,
            a.id,
            flight.id,
            vec![finding("F1", 24.0), finding("F2", 24.01)],
        );
        raised(&*s, a.id, &mut last, true, t, &format!("{name}: a job"));
        let ids: Vec<i64> = s
            .findings(a.id, &FindingFilter::default())
            .unwrap()
            .iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(ids.len(), 2);
        // Reading changes nothing.
        s.finding(a.id, ids[0]).unwrap();
        assert_eq!(s.findings_revision(a.id).unwrap(), last, "{name}");

        let confirmed = Review {
            state: ReviewState::Confirmed,
            by: Some("0123456789ab".into()),
            ..Default::default()
        };
        let t = micros();
        assert!(s
            .set_review(a.id, ids[0], &confirmed, "planner")
            .unwrap()
            .is_some());
        raised(&*s, a.id, &mut last, false, t, &format!("{name}: review"));
        s.set_review(a.id, ids[0], &Review::default(), "planner")
            .unwrap();
        raised(
            &*s,
            a.id,
            &mut last,
            false,
            t,
            &format!("{name}: review removed"),
        );
        assert!(s.set_finding_status(a.id, ids[1], "scheduled").unwrap());
        raised(&*s, a.id, &mut last, false, t, &format!("{name}: status"));

        // Refused: another organisation's finding changes nobody's revision.
        assert!(!s.set_finding_status(b.id, ids[1], "done").unwrap());
        assert_eq!(
            s.set_review(b.id, ids[1], &confirmed, "planner").unwrap(),
            None
        );
        assert_eq!(s.findings_revision(a.id).unwrap(), last, "{name}");
        assert_eq!(
            s.findings_revision(b.id).unwrap(),
            FindingsRevision::default(),
            "{name}"
        );

        // Re-processing replaces the findings: rows change.
        let t = micros();
        process(&*s, a.id, flight.id, vec![finding("F1", 24.0)]);
        raised(
            &*s,
            a.id,
            &mut last,
            true,
            t,
            &format!("{name}: re-processed"),
        );
        assert!(matches!(
            s.delete_flight(a.id, flight.id).unwrap(),
            FlightDeleted::Deleted { .. }
        ));
        raised(
            &*s,
            a.id,
            &mut last,
            true,
            t,
            &format!("{name}: flight deleted"),
        );
        assert_eq!(
            s.findings_revision(b.id).unwrap(),
            FindingsRevision::default(),
            "{name}"
        );
    }
}
