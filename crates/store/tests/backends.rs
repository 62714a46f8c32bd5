//! The store's behaviour, checked the same way on every backend: SQLite in a temporary
//! folder and PostgreSQL in a throw-away cluster (`besikta_store::testing`). Plus what only
//! a database with several connections can get wrong: concurrent claims, concurrent
//! uploads of one flight, and calls from inside a tokio runtime.

mod common;

use besikta_core::finding::Finding;
use besikta_core::{AssetKind, RejectReason, Review, ReviewState, Severity};
use besikta_store::testing::PgCluster;
use besikta_store::{
    CompleteOutcome, FindingFilter, FlightDeleted, FlightState, JobResult, NewFinding, PgStore,
    PhotoAdded, RejectedPhoto, Role, SqliteStore, Store, Upload,
};
use common::stores;
use std::sync::Arc;

fn pg_store(connections: usize) -> PgStore {
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    PgStore::open_with(&url, connections).unwrap()
}

fn finding(id: &str, class: &str, severity: Severity, b: [f64; 4]) -> NewFinding {
    NewFinding::new(Finding {
        id: id.into(),
        class: class.into(),
        asset_kind: AssetKind::Road,
        severity,
        confidence: 0.5,
        length_m: None,
        area_m2: 1.0,
        polygon: vec![
            [b[0], b[1]],
            [b[2], b[1]],
            [b[2], b[3]],
            [b[0], b[3]],
            [b[0], b[1]],
        ],
        centroid: [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0],
        asset: None,
        observations: vec![],
        best: 0,
        views: 1,
        support: 1,
    })
}

/// Processes `flight` once more with `findings` as the job's result.
fn process(s: &dyn Store, org: i64, flight: i64, run: u32, findings: Vec<NewFinding>) {
    s.enqueue_job(org, flight).unwrap();
    let job = s.claim_job(60).unwrap().unwrap();
    let result = JobResult {
        output_dir: format!("flights/{flight}/out-{run}"),
        findings,
        rejected: vec![],
    };
    assert!(matches!(
        s.complete_job(&job, &result).unwrap(),
        CompleteOutcome::Stored { .. }
    ));
}

fn id_of(s: &dyn Store, org: i64, flight_finding: &str) -> i64 {
    s.findings(org, &FindingFilter::default())
        .unwrap()
        .into_iter()
        .find(|f| f.finding_id == flight_finding)
        .unwrap()
        .id
}

#[test]
fn orgs_see_only_their_own_rows() {
    for (name, s, _dir) in stores() {
        let a = s.ensure_org("Espoo", Some("EPSG:3067")).unwrap();
        let b = s.ensure_org("Vantaa", None).unwrap();
        assert_eq!(
            s.ensure_org("Espoo", None).unwrap(),
            a,
            "{name}: keeps its CRS"
        );
        assert_eq!(
            s.org(a.id).unwrap().unwrap().crs.as_deref(),
            Some("EPSG:3067")
        );
        assert_eq!(
            s.ensure_org("Espoo", Some("EPSG:3879"))
                .unwrap()
                .crs
                .as_deref(),
            Some("EPSG:3879"),
            "{name}"
        );
        let fa = s.create_flight(a.id, "north").unwrap();
        assert_eq!(fa.state, FlightState::Uploading, "{name}");
        assert!(s.flight(b.id, fa.id).unwrap().is_none(), "{name}");
        assert_eq!(s.flight(a.id, fa.id).unwrap().unwrap().name, "north");
        assert!(s.flights(b.id).unwrap().is_empty(), "{name}");
        s.insert_token(a.id, Role::Planner, "abc").unwrap();
        let p = s.principal("abc").unwrap().unwrap();
        assert_eq!((p.org.name.as_str(), p.role), ("Espoo", Role::Planner));
        assert!(s.principal("abd").unwrap().is_none(), "{name}");
        // Findings, uploads, registers and the audit log are the organisation's own too.
        process(
            &*s,
            a.id,
            fa.id,
            1,
            vec![finding(
                "F1",
                "crack",
                Severity::High,
                [24.0, 60.0, 24.001, 60.001],
            )],
        );
        let id = id_of(&*s, a.id, "F1");
        assert!(s.finding(b.id, id).unwrap().is_none(), "{name}");
        assert!(s
            .findings(b.id, &FindingFilter::default())
            .unwrap()
            .is_empty());
        assert!(!s.set_finding_status(b.id, id, "done").unwrap(), "{name}");
        assert_eq!(s.finding(a.id, id).unwrap().unwrap().status, "open");
        s.put_register(a.id, "roads", "orgs/1/registers/roads.gpkg")
            .unwrap();
        assert!(s.registers(b.id).unwrap().is_empty(), "{name}");
        s.record_audit(a.id, "0123456789ab", "admin", "token.created", "x")
            .unwrap();
        assert!(s.audit(b.id, 10).unwrap().is_empty(), "{name}");
        assert_eq!(s.audit(a.id, 10).unwrap()[0].action, "token.created");
        assert!(matches!(
            s.delete_flight(b.id, fa.id).unwrap(),
            FlightDeleted::NotFound
        ));
        assert_eq!(s.org_stats(a.id).unwrap().findings, 1, "{name}");
        assert_eq!(s.org_stats(b.id).unwrap().findings, 0, "{name}");
    }
}

#[test]
fn photos_uploads_and_names() {
    for (name, s, _dir) in stores() {
        let org = s.ensure_org("Espoo", None).unwrap();
        let f = s.create_flight(org.id, "f").unwrap();
        let h1 = "1111111111111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let h2 = "2222222222222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let h3 = "2222222222222222cccccccccccccccccccccccccccccccccccccccccccccccc";
        let names: Vec<(String, String)> = [h1, h2, h3]
            .iter()
            .map(
                |h| match s.add_photo(f.id, "SAME.JPG", h, 10, "p").unwrap() {
                    PhotoAdded::New(p) => (p.name, p.path),
                    other => panic!("{name}: {other:?}"),
                },
            )
            .collect();
        assert_eq!(
            names,
            [
                ("SAME.JPG".to_string(), "p/SAME.JPG".to_string()),
                ("SAME-22222222.JPG".into(), "p/SAME-22222222.JPG".into()),
                (
                    "SAME-2222222222222222.JPG".into(),
                    "p/SAME-2222222222222222.JPG".into()
                ),
            ],
            "{name}"
        );
        assert!(
            matches!(s.add_photo(f.id, "b.jpg", h1, 10, "p").unwrap(), PhotoAdded::Duplicate(p) if p.name == "SAME.JPG"),
            "{name}"
        );
        // Byte order of names, whatever the database's collation.
        s.add_photo(f.id, "a.jpg", "h4", 7, "p").unwrap();
        let listed: Vec<String> = s
            .photos(f.id)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            listed,
            [
                "SAME-22222222.JPG",
                "SAME-2222222222222222.JPG",
                "SAME.JPG",
                "a.jpg"
            ],
            "{name}"
        );
        assert_eq!(
            s.photo_by_sha256(f.id, h2).unwrap().unwrap().name,
            "SAME-22222222.JPG"
        );
        let a = s.photo_by_name(f.id, "a.jpg").unwrap().unwrap();
        assert_eq!((a.size, a.path.as_str()), (7, "p/a.jpg"), "{name}");
        s.delete_photo(a.id).unwrap();
        assert!(s.photo_by_name(f.id, "a.jpg").unwrap().is_none(), "{name}");
        let stats = s.org_stats(org.id).unwrap();
        assert_eq!((stats.photos, stats.photo_bytes), (3, 30), "{name}");
        assert_eq!(s.flight(org.id, f.id).unwrap().unwrap().photos, 3);

        s.add_upload_rejection(
            f.id,
            &RejectedPhoto {
                file: "x.jpg".into(),
                reason: "too large".into(),
            },
        )
        .unwrap();
        s.add_upload_rejection(
            f.id,
            &RejectedPhoto {
                file: "x.jpg".into(),
                reason: "corrupt".into(),
            },
        )
        .unwrap();
        let rejected = s.flight(org.id, f.id).unwrap().unwrap().rejected;
        assert_eq!(rejected.len(), 1, "{name}: one entry per file");
        assert_eq!(rejected[0].reason, "corrupt");

        let upload = |id: &str| Upload {
            id: id.into(),
            org_id: org.id,
            flight_id: f.id,
            length: 123,
            file_name: format!("{id}.jpg"),
            complete: false,
            created_at: 0,
        };
        s.create_upload(&upload("u1")).unwrap();
        s.create_upload(&upload("u2")).unwrap();
        let u1 = s.upload(org.id, f.id, "u1").unwrap().unwrap();
        assert_eq!((u1.length, u1.complete), (123, false), "{name}");
        assert!(
            u1.created_at > 1_700_000_000,
            "{name}: the store sets created_at"
        );
        assert!(
            s.upload(org.id + 1, f.id, "u1").unwrap().is_none(),
            "{name}"
        );
        s.mark_upload_complete("u1").unwrap();
        let open: Vec<String> = s
            .incomplete_uploads(f.id)
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(open, ["u2"], "{name}");
        assert_eq!(s.open_uploads().unwrap().len(), 2, "{name}");
        s.delete_upload("u2").unwrap();
        assert!(s.expire_uploads(0).unwrap().is_empty(), "{name}");
        assert_eq!(s.expire_uploads(i64::MAX).unwrap(), ["u1"], "{name}");
        assert!(s.open_uploads().unwrap().is_empty(), "{name}");
    }
}

#[test]
fn a_restart_folds_the_follow_up_job_into_the_requeued_one() {
    for (name, s, _dir) in stores() {
        let org = s.ensure_org("Espoo", None).unwrap();
        let f = s.create_flight(org.id, "f").unwrap();
        s.add_photo(f.id, "a.jpg", "h1", 10, "p").unwrap();
        let first = s.enqueue_job(org.id, f.id).unwrap();
        s.claim_job(60).unwrap().unwrap();
        s.add_photo(f.id, "b.jpg", "h2", 10, "p").unwrap();
        let follow_up = s.enqueue_job(org.id, f.id).unwrap();
        assert_ne!(follow_up, first, "{name}");
        assert_eq!(s.job_state(follow_up).unwrap().as_deref(), Some("queued"));
        // The server dies mid-run: the re-queued job reads both photos, one job is enough.
        s.requeue_running().unwrap();
        assert_eq!(s.job_state(follow_up).unwrap(), None, "{name}");
        assert_eq!(s.job_counts().unwrap().queued, 1, "{name}");
        assert_eq!(s.claim_job(60).unwrap().unwrap().id, first, "{name}");
    }
}

#[test]
fn interrupted_job_is_requeued_and_completes_once() {
    for (name, s, _dir) in stores() {
        let org = s.ensure_org("Espoo", None).unwrap();
        let f = s.create_flight(org.id, "f").unwrap();
        let job_id = s.enqueue_job(org.id, f.id).unwrap();
        assert_eq!(
            s.enqueue_job(org.id, f.id).unwrap(),
            job_id,
            "{name}: no duplicate"
        );
        let first = s.claim_job(60).unwrap().unwrap();
        assert!(s.claim_job(60).unwrap().is_none(), "{name}");
        assert_eq!(
            s.flight(org.id, f.id).unwrap().unwrap().state,
            FlightState::Running
        );
        assert!(s
            .renew_job(&first, 60, &serde_json::json!({"stage": "infer"}))
            .unwrap());
        assert_eq!(
            s.flight(org.id, f.id).unwrap().unwrap().progress,
            Some(serde_json::json!({"stage": "infer"})),
            "{name}"
        );
        assert_eq!(s.requeue_expired().unwrap(), 0, "{name}: lease still valid");
        assert!(
            matches!(
                s.delete_flight(org.id, f.id).unwrap(),
                FlightDeleted::Running
            ),
            "{name}"
        );
        // The server dies here; on restart the running job goes back to the queue.
        assert_eq!(s.requeue_running().unwrap(), 1, "{name}");
        assert_eq!(
            s.flight(org.id, f.id).unwrap().unwrap().state,
            FlightState::Queued
        );
        let second = s.claim_job(60).unwrap().unwrap();
        assert_eq!((second.id, second.attempt), (first.id, 2), "{name}");
        assert!(!s.renew_job(&first, 60, &serde_json::json!({})).unwrap());
        let result = JobResult {
            output_dir: "flights/1/out-1-2".into(),
            findings: vec![
                finding("F1", "crack", Severity::High, [24.0, 60.0, 24.001, 60.001]),
                finding("F2", "pothole", Severity::Low, [25.0, 61.0, 25.001, 61.001]),
            ],
            rejected: vec![RejectedPhoto {
                file: "x.jpg".into(),
                reason: "no GPS".into(),
            }],
        };
        // The stale worker from before the crash must not be able to store anything.
        assert_eq!(
            s.complete_job(&first, &result).unwrap(),
            CompleteOutcome::LeaseLost,
            "{name}"
        );
        assert_eq!(
            s.complete_job(&second, &result).unwrap(),
            CompleteOutcome::Stored {
                previous_output_dir: None
            },
            "{name}"
        );
        let flight = s.flight(org.id, f.id).unwrap().unwrap();
        assert_eq!(flight.state, FlightState::Done, "{name}");
        assert_eq!(flight.rejected.len(), 1, "{name}");
        let all = s.findings(org.id, &FindingFilter::default()).unwrap();
        assert_eq!(all.len(), 2, "{name}");
        // The typed finding comes back (compared where JSON keeps every bit).
        assert_eq!(all[0].finding.id, "F1", "{name}");
        assert_eq!(
            all[0].finding.polygon, result.findings[0].finding.polygon,
            "{name}"
        );
        assert_eq!(all[1].severity, Severity::Low, "{name}");
        let filter = FindingFilter {
            bbox: Some([23.9, 59.9, 24.5, 60.5]),
            ..Default::default()
        };
        let hits = s.findings(org.id, &filter).unwrap();
        assert_eq!(hits.len(), 1, "{name}");
        assert_eq!(hits[0].finding_id, "F1");
        // A bbox touching the finding's edge counts; one a hair off does not.
        let edge = FindingFilter {
            bbox: Some([24.001, 60.001, 24.002, 60.002]),
            ..Default::default()
        };
        assert_eq!(s.findings(org.id, &edge).unwrap().len(), 1, "{name}");
        let off = FindingFilter {
            bbox: Some([24.0010001, 60.0010001, 24.002, 60.002]),
            ..Default::default()
        };
        assert!(s.findings(org.id, &off).unwrap().is_empty(), "{name}");
        let filter = FindingFilter {
            severities: vec![Severity::Low, Severity::Medium],
            ..Default::default()
        };
        assert_eq!(s.findings(org.id, &filter).unwrap()[0].class, "pothole");
        let filter = FindingFilter {
            classes: vec!["crack".into()],
            flight_id: Some(f.id),
            since: Some(0),
            ..Default::default()
        };
        assert_eq!(s.findings(org.id, &filter).unwrap().len(), 1, "{name}");
        let page = FindingFilter {
            after_id: Some(all[0].id),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(s.findings(org.id, &page).unwrap()[0].finding_id, "F2");
        assert!(s
            .set_finding_status(org.id, hits[0].id, "scheduled")
            .unwrap());
        // Re-processing replaces findings and keeps their work-order status.
        s.enqueue_job(org.id, f.id).unwrap();
        let third = s.claim_job(60).unwrap().unwrap();
        let result2 = JobResult {
            output_dir: "flights/1/out-2-1".into(),
            findings: vec![finding(
                "F1",
                "crack",
                Severity::High,
                [24.0, 60.0, 24.001, 60.001],
            )],
            rejected: vec![],
        };
        assert_eq!(
            s.complete_job(&third, &result2).unwrap(),
            CompleteOutcome::Stored {
                previous_output_dir: Some("flights/1/out-1-2".into())
            },
            "{name}"
        );
        let all = s.findings(org.id, &FindingFilter::default()).unwrap();
        assert_eq!(all.len(), 1, "{name}");
        assert_eq!(all[0].status, "scheduled", "{name}");
        assert_eq!(s.job_counts().unwrap().done, 2, "{name}");
        assert_eq!(s.output_dirs().unwrap(), ["flights/1/out-2-1"], "{name}");
        // A failed run.
        s.enqueue_job(org.id, f.id).unwrap();
        let fourth = s.claim_job(60).unwrap().unwrap();
        s.fail_job(&fourth, "out of memory").unwrap();
        let flight = s.flight(org.id, f.id).unwrap().unwrap();
        assert_eq!(flight.state, FlightState::Failed, "{name}");
        assert_eq!(flight.error.as_deref(), Some("out of memory"));
        assert_eq!(s.org_stats(org.id).unwrap().jobs.failed, 1, "{name}");
        match s.delete_flight(org.id, f.id).unwrap() {
            FlightDeleted::Deleted { findings, .. } => assert_eq!(findings, 1, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(s.flight(org.id, f.id).unwrap().is_none(), "{name}");
        assert!(s
            .findings(org.id, &FindingFilter::default())
            .unwrap()
            .is_empty());
    }
}

#[test]
fn a_review_is_stored_with_who_and_when_and_written_to_the_audit_log() {
    for (name, s, _dir) in stores() {
        let a = s.ensure_org("Espoo", None).unwrap();
        let b = s.ensure_org("Vantaa", None).unwrap();
        let f = s.create_flight(a.id, "f").unwrap();
        process(
            &*s,
            a.id,
            f.id,
            1,
            vec![
                finding(
                    "F1",
                    "crack",
                    Severity::Medium,
                    [24.0, 60.0, 24.001, 60.001],
                ),
                finding(
                    "F2",
                    "pothole",
                    Severity::Medium,
                    [24.01, 60.0, 24.011, 60.001],
                ),
            ],
        );
        let f1 = id_of(&*s, a.id, "F1");
        let f2 = id_of(&*s, a.id, "F2");
        assert_eq!(
            s.review(a.id, f1).unwrap(),
            Some(Review::default()),
            "{name}"
        );
        assert_eq!(s.review(b.id, f1).unwrap(), None, "{name}: another org's");
        let rejected = Review {
            state: ReviewState::Rejected,
            reason: Some(RejectReason::Duplicate),
            comment: Some("same as F2".into()),
            by: Some("0123456789ab".into()),
            ..Default::default()
        };
        assert_eq!(s.set_review(b.id, f1, &rejected, "planner").unwrap(), None);
        let stored = s
            .set_review(a.id, f1, &rejected, "planner")
            .unwrap()
            .unwrap();
        assert_eq!(stored.by.as_deref(), Some("0123456789ab"), "{name}");
        assert!(stored.at.as_deref().unwrap().ends_with('Z'), "{name}");
        assert_eq!(s.review(a.id, f1).unwrap(), Some(stored.clone()), "{name}");
        let corrected = Review {
            state: ReviewState::Corrected,
            corrected_class: Some("pothole".into()),
            corrected_severity: Some(Severity::High),
            corrected_polygon: Some(vec![[24.0, 60.0], [24.1, 60.0], [24.0, 60.1], [24.0, 60.0]]),
            by: Some("ba9876543210".into()),
            ..Default::default()
        };
        s.set_review(a.id, f2, &corrected, "admin").unwrap();
        let rows = s.findings(a.id, &FindingFilter::default()).unwrap();
        assert_eq!(rows[0].review, stored, "{name}");
        assert_eq!(rows[1].review.corrected_severity, Some(Severity::High));
        assert_eq!(rows[1].review.corrected_polygon.as_ref().unwrap().len(), 4);
        assert_eq!(
            s.finding(a.id, f2).unwrap().unwrap().review,
            rows[1].review,
            "{name}"
        );
        let only = |states: Vec<ReviewState>| {
            s.findings(
                a.id,
                &FindingFilter {
                    reviews: states,
                    ..Default::default()
                },
            )
            .unwrap()
            .iter()
            .map(|f| f.finding_id.clone())
            .collect::<Vec<_>>()
        };
        assert_eq!(only(vec![ReviewState::Rejected]), ["F1"], "{name}");
        assert_eq!(
            only(vec![ReviewState::Corrected, ReviewState::Confirmed]),
            ["F2"]
        );
        assert!(only(vec![ReviewState::Unreviewed]).is_empty(), "{name}");
        let back = Review {
            by: Some("0123456789ab".into()),
            ..Default::default()
        };
        s.set_review(a.id, f1, &back, "planner").unwrap();
        assert_eq!(only(vec![ReviewState::Unreviewed]), ["F1"], "{name}");
        let log = s.audit(a.id, 10).unwrap();
        let reviews: Vec<&str> = log
            .iter()
            .filter(|e| e.action == "finding.review")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(
            reviews,
            [
                format!("finding {f1} unreviewed"),
                format!("finding {f2} corrected, class pothole, severity high"),
                format!("finding {f1} rejected (duplicate)"),
            ],
            "{name}"
        );
        assert_eq!(
            (log[1].token.as_str(), log[1].role.as_str()),
            ("ba9876543210", "admin")
        );
        assert!(s.audit(b.id, 10).unwrap().is_empty(), "{name}");
    }
}

#[test]
fn reviews_follow_their_findings_through_reprocessing() {
    for (name, s, _dir) in stores() {
        let org = s.ensure_org("Espoo", None).unwrap().id;
        let flight = s.create_flight(org, "f").unwrap().id;
        let other = s.create_flight(org, "g").unwrap().id;
        let m = Severity::Medium;
        process(
            &*s,
            org,
            other,
            1,
            vec![finding("G1", "crack", m, [24.0, 60.0, 24.001, 60.001])],
        );
        process(
            &*s,
            org,
            flight,
            1,
            vec![
                finding("F1", "crack", m, [24.0, 60.0, 24.001, 60.001]),
                finding("F2", "pothole", m, [24.01, 60.0, 24.011, 60.001]),
                finding("F3", "crack", m, [24.02, 60.0, 24.021, 60.001]),
            ],
        );
        let confirm = Review {
            state: ReviewState::Confirmed,
            by: Some("0123456789ab".into()),
            ..Default::default()
        };
        let reject = Review {
            state: ReviewState::Rejected,
            reason: Some(RejectReason::NotADefect),
            by: Some("0123456789ab".into()),
            ..Default::default()
        };
        for (fid, review) in [("F1", &confirm), ("F2", &reject), ("F3", &confirm)] {
            s.set_review(org, id_of(&*s, org, fid), review, "planner")
                .unwrap()
                .unwrap();
        }
        process(
            &*s,
            org,
            flight,
            2,
            vec![
                finding("N1", "crack", m, [24.05, 60.0, 24.051, 60.001]),
                finding("N2", "pothole", m, [24.0102, 60.0002, 24.0112, 60.0012]),
                finding("N3", "crack", m, [24.0004, 60.0004, 24.0014, 60.0014]),
                finding("N4", "crack", m, [24.0006, 60.0, 24.0016, 60.001]),
            ],
        );
        let state_of = |fid: &str| {
            s.finding(org, id_of(&*s, org, fid))
                .unwrap()
                .unwrap()
                .review
        };
        assert_eq!(
            state_of("N1").state,
            ReviewState::Unreviewed,
            "{name}: new crack"
        );
        assert_eq!(
            state_of("N2").state,
            ReviewState::Rejected,
            "{name}: the pothole"
        );
        assert_eq!(state_of("N2").reason, Some(RejectReason::NotADefect));
        assert_eq!(
            state_of("N4").state,
            ReviewState::Confirmed,
            "{name}: best IoU"
        );
        assert_eq!(state_of("N3").state, ReviewState::Unreviewed, "{name}");
        assert_eq!(
            state_of("G1").state,
            ReviewState::Unreviewed,
            "{name}: other flight"
        );
        // A third run finds F3's crack again: its waiting review comes back.
        process(
            &*s,
            org,
            flight,
            3,
            vec![finding("M1", "crack", m, [24.02, 60.0, 24.021, 60.001])],
        );
        assert_eq!(state_of("M1").state, ReviewState::Confirmed, "{name}");
        assert!(matches!(
            s.delete_flight(org, flight).unwrap(),
            FlightDeleted::Deleted { .. }
        ));
        // The flight's waiting reviews went with it: a new flight's findings stay unreviewed.
        let again = s.create_flight(org, "h").unwrap().id;
        process(
            &*s,
            org,
            again,
            1,
            vec![finding("H1", "crack", m, [24.0, 60.0, 24.001, 60.001])],
        );
        assert_eq!(state_of("H1").state, ReviewState::Unreviewed, "{name}");
    }
}

/// Jobs of many flights claimed by eight threads at once (each on PostgreSQL with
/// connections of its own): every job is run exactly once and never two of one flight at
/// the same time.
#[test]
fn concurrent_claims_take_each_job_once() {
    let s = Arc::new(pg_store(8));
    let org = s.ensure_org("Espoo", None).unwrap().id;
    let mut jobs = Vec::new();
    for i in 0..40 {
        let flight = s.create_flight(org, &format!("f{i}")).unwrap().id;
        jobs.push(s.enqueue_job(org, flight).unwrap());
    }
    let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = Arc::clone(&s);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(job) = s.claim_job(60).unwrap() {
                        let result = JobResult {
                            output_dir: format!("flights/{}/out-{}", job.flight_id, job.id),
                            findings: vec![finding(
                                "F1",
                                "crack",
                                Severity::Low,
                                [24.0, 60.0, 24.001, 60.001],
                            )],
                            rejected: vec![],
                        };
                        assert!(matches!(
                            s.complete_job(&job, &result).unwrap(),
                            CompleteOutcome::Stored { .. }
                        ));
                        mine.push(job.id);
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = claimed.concat();
    all.sort();
    assert_eq!(all, jobs, "each job once");
    assert_eq!(s.job_counts().unwrap().done, 40);
    assert_eq!(
        s.findings(org, &FindingFilter::default()).unwrap().len(),
        40,
        "one finding per flight, none doubled"
    );
}

/// Uploads of one flight finishing together while its job runs: every photo gets a row
/// and a unique name, and exactly one follow-up job is queued.
#[test]
fn concurrent_photos_of_one_flight_queue_one_follow_up() {
    let s = Arc::new(pg_store(8));
    let org = s.ensure_org("Espoo", None).unwrap().id;
    let flight = s.create_flight(org, "f").unwrap().id;
    let first = s.enqueue_job(org, flight).unwrap();
    let running = s.claim_job(60).unwrap().unwrap();
    assert_eq!(running.id, first);
    std::thread::scope(|scope| {
        for i in 0..16 {
            let s = Arc::clone(&s);
            scope.spawn(move || {
                let sha = format!("{i:064x}");
                assert!(matches!(
                    s.add_photo(flight, "SAME.JPG", &sha, 1, "p").unwrap(),
                    PhotoAdded::New(_)
                ));
            });
        }
    });
    let photos = s.photos(flight).unwrap();
    assert_eq!(photos.len(), 16);
    let mut names: Vec<&str> = photos.iter().map(|p| p.name.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), 16, "unique names");
    let counts = s.job_counts().unwrap();
    assert_eq!((counts.running, counts.queued), (1, 1), "one follow-up");
}

/// The server calls the store from async handlers: PostgreSQL must work there (the
/// synchronous client alone would panic inside a tokio runtime).
#[test]
fn postgres_store_works_inside_a_tokio_runtime() {
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let names = runtime.block_on(async move {
        // Opened and used on runtime threads.
        let s: Arc<dyn Store> = Arc::new(PgStore::open(&url).unwrap());
        let org = s.ensure_org("Espoo", None).unwrap().id;
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move { s.create_flight(org, &format!("f{i}")).unwrap().name })
            })
            .collect();
        let mut names = Vec::new();
        for t in tasks {
            names.push(t.await.unwrap());
        }
        assert_eq!(s.flights(org).unwrap().len(), 4);
        names
    });
    assert_eq!(names, ["f0", "f1", "f2", "f3"]);
}

/// A second store on the same database (another process starting, a worker) finds the
/// schema in place and migrates nothing twice; a broken URL says what to write.
#[test]
fn postgres_schema_is_migrated_once_and_bad_urls_are_explained() {
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| PgStore::open(&url));
        let b = scope.spawn(|| PgStore::open(&url));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (a, b) = (a.unwrap(), b.unwrap());
    let org = a.ensure_org("Espoo", None).unwrap();
    assert_eq!(b.org(org.id).unwrap(), Some(org));
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i64> = c
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8]);
    let e = PgStore::open("postgres://u:secret@127.0.0.1:1/none")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot connect") && !e.contains("secret"), "{e}");
    let e = match besikta_store::open_url("mysql://x/y") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a MySQL URL opened"),
    };
    assert!(e.contains("unknown kind of database"), "{e}");
}

/// Fair share: with one organisation's flight running and more of its flights queued, the
/// next worker takes another organisation's flight although it was queued later.
#[test]
fn claims_share_workers_between_organisations() {
    for (name, s, _dir) in stores() {
        let a = s.ensure_org("Espoo", None).unwrap().id;
        let b = s.ensure_org("Vantaa", None).unwrap().id;
        let flights: Vec<i64> = (0..3)
            .map(|i| s.create_flight(a, &format!("a{i}")).unwrap().id)
            .collect();
        let a_jobs: Vec<i64> = flights
            .iter()
            .map(|&f| s.enqueue_job(a, f).unwrap())
            .collect();
        let b_flight = s.create_flight(b, "b").unwrap().id;
        let b_job = s.enqueue_job(b, b_flight).unwrap();
        assert_eq!(
            s.claim_job(60).unwrap().unwrap().id,
            a_jobs[0],
            "{name}: oldest first"
        );
        assert_eq!(
            s.claim_job(60).unwrap().unwrap().id,
            b_job,
            "{name}: B's turn"
        );
        assert_eq!(s.claim_job(60).unwrap().unwrap().id, a_jobs[1], "{name}");
        assert_eq!(s.claim_job(60).unwrap().unwrap().id, a_jobs[2], "{name}");
        assert!(s.claim_job(60).unwrap().is_none(), "{name}");
    }
}

#[test]
fn organisation_settings_are_kept_per_organisation() {
    use besikta_store::OrgSettings;
    for (name, s, _dir) in stores() {
        let a = s.ensure_org("a", None).unwrap();
        let b = s.ensure_org("b", None).unwrap();
        // Never set: the defaults (work orders hold reviewed findings only).
        assert_eq!(
            s.org_settings(a.id).unwrap(),
            OrgSettings::default(),
            "{name}"
        );
        assert!(!s.org_settings(a.id).unwrap().workorders_include_unreviewed);
        let on = OrgSettings {
            workorders_include_unreviewed: true,
            ..OrgSettings::default()
        };
        s.set_org_settings(a.id, &on).unwrap();
        assert_eq!(s.org_settings(a.id).unwrap(), on, "{name}");
        // Another organisation is not touched.
        assert_eq!(
            s.org_settings(b.id).unwrap(),
            OrgSettings::default(),
            "{name}"
        );
        // Replaced, not merged or duplicated.
        s.set_org_settings(a.id, &OrgSettings::default()).unwrap();
        assert_eq!(
            s.org_settings(a.id).unwrap(),
            OrgSettings::default(),
            "{name}"
        );
        s.set_org_settings(a.id, &on).unwrap();
        assert_eq!(s.org_settings(a.id).unwrap(), on, "{name}");
    }
    // SQLite keeps them across a reopen (the table is made on each open, idempotently).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("besikta.db");
    let org = {
        let s = SqliteStore::open(&path).unwrap();
        let org = s.ensure_org("a", None).unwrap();
        s.set_org_settings(
            org.id,
            &OrgSettings {
                workorders_include_unreviewed: true,
                ..OrgSettings::default()
            },
        )
        .unwrap();
        org
    };
    let s = SqliteStore::open(&path).unwrap();
    assert!(
        s.org_settings(org.id)
            .unwrap()
            .workorders_include_unreviewed
    );
}
