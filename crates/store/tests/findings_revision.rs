//! An organisation's findings revision (`Store::findings_revision`, the findings pages'
//! ETags) on every backend: each change of what a findings page says raises it, in that
//! organisation only; adding or removing findings also raises `rows`; a refused change and
//! a read raise nothing.

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

fn rev(content: i64, rows: i64) -> FindingsRevision {
    FindingsRevision { content, rows }
}

#[test]
fn every_change_of_an_organisations_findings_raises_its_revision() {
    for (name, s, _dir) in stores() {
        let a = s.ensure_org("Espoo", None).unwrap();
        let b = s.ensure_org("Vantaa", None).unwrap();
        assert_eq!(s.findings_revision(a.id).unwrap(), rev(0, 0), "{name}");
        let flight = s.create_flight(a.id, "f").unwrap();
        process(
            &*s,
            a.id,
            flight.id,
            vec![finding("F1", 24.0), finding("F2", 24.01)],
        );
        assert_eq!(
            s.findings_revision(a.id).unwrap(),
            rev(1, 1),
            "{name}: a job"
        );
        let ids: Vec<i64> = s
            .findings(a.id, &FindingFilter::default())
            .unwrap()
            .iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(ids.len(), 2);
        // Reading changes nothing.
        s.finding(a.id, ids[0]).unwrap();
        assert_eq!(s.findings_revision(a.id).unwrap(), rev(1, 1), "{name}");

        let confirmed = Review {
            state: ReviewState::Confirmed,
            by: Some("0123456789ab".into()),
            ..Default::default()
        };
        assert!(s
            .set_review(a.id, ids[0], &confirmed, "planner")
            .unwrap()
            .is_some());
        assert_eq!(
            s.findings_revision(a.id).unwrap(),
            rev(2, 1),
            "{name}: review"
        );
        s.set_review(a.id, ids[0], &Review::default(), "planner")
            .unwrap();
        assert_eq!(
            s.findings_revision(a.id).unwrap(),
            rev(3, 1),
            "{name}: review removed"
        );
        assert!(s.set_finding_status(a.id, ids[1], "scheduled").unwrap());
        assert_eq!(
            s.findings_revision(a.id).unwrap(),
            rev(4, 1),
            "{name}: status"
        );

        // Refused: another organisation's finding changes nobody's revision.
        assert!(!s.set_finding_status(b.id, ids[1], "done").unwrap());
        assert_eq!(
            s.set_review(b.id, ids[1], &confirmed, "planner").unwrap(),
            None
        );
        assert_eq!(s.findings_revision(a.id).unwrap(), rev(4, 1), "{name}");
        assert_eq!(s.findings_revision(b.id).unwrap(), rev(0, 0), "{name}");

        // Re-processing replaces the findings: rows change.
        process(&*s, a.id, flight.id, vec![finding("F1", 24.0)]);
        assert_eq!(
            s.findings_revision(a.id).unwrap(),
            rev(5, 2),
            "{name}: re-processed"
        );
        assert!(matches!(
            s.delete_flight(a.id, flight.id).unwrap(),
            FlightDeleted::Deleted { .. }
        ));
        assert_eq!(
            s.findings_revision(a.id).unwrap(),
            rev(6, 3),
            "{name}: flight deleted"
        );
        assert_eq!(s.findings_revision(b.id).unwrap(), rev(0, 0), "{name}");
    }
}
