//! Reviews of findings in SQLite: the `finding_reviews` table, its migration, and how a
//! review follows its finding when a flight is processed again.
//!
//! A review row points at `findings.id`. Re-processing replaces a flight's findings
//! ([`crate::Store::complete_job`] deletes them and inserts new rows, whose ids SQLite may
//! even reuse), so a trigger leaves the review of a deleted finding waiting (`finding`
//! NULL, with the flight, the model's class and the bbox it had), and [`carry_over`], at
//! the end of the same transaction, gives each waiting review to the new finding of the
//! same class whose bbox overlaps its own best (intersection over union, best pairs
//! first, one review per finding). A review whose finding did not come back stays waiting
//! (a later run may find the defect again); deleting the flight deletes it.

use super::sql;
use crate::rows::{review_of, ReviewRow};
use crate::time::now;
use crate::{FindingRow, Result};
use besikta_core::{Review, ReviewState};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// The table and its triggers; every statement is idempotent, so running it on each open
/// is the migration of a database made before reviews existed.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS finding_reviews (
    id INTEGER PRIMARY KEY,
    -- findings.id; NULL while its finding is gone (re-processing) and no new one took it.
    finding INTEGER UNIQUE,
    org_id INTEGER NOT NULL,
    flight_id INTEGER NOT NULL,
    -- The model's class and the bbox of the reviewed finding: how a review is matched to
    -- the finding of a re-processed flight.
    class TEXT NOT NULL,
    min_x REAL NOT NULL, min_y REAL NOT NULL, max_x REAL NOT NULL, max_y REAL NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    -- The reviewing token's name (Principal::token) and role.
    reviewer TEXT NOT NULL,
    reviewer_role TEXT NOT NULL,
    reviewed_at INTEGER NOT NULL,
    comment TEXT,
    corrected_class TEXT,
    corrected_severity TEXT,
    -- JSON [[lon, lat], ...], a closed ring.
    corrected_outline TEXT
);
CREATE INDEX IF NOT EXISTS finding_reviews_waiting ON finding_reviews(flight_id, class) WHERE finding IS NULL;
CREATE TRIGGER IF NOT EXISTS finding_reviews_wait AFTER DELETE ON findings
BEGIN
    UPDATE finding_reviews SET finding = NULL WHERE finding = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS finding_reviews_flight_deleted AFTER DELETE ON flights
BEGIN
    DELETE FROM finding_reviews WHERE flight_id = OLD.id;
END;
"#;

const COLUMNS: &str = "finding, state, reason, reviewer, reviewed_at, comment, corrected_class, \
     corrected_severity, corrected_outline";

/// A review row as read (with its finding's id), before its words are parsed.
type Raw = (i64, ReviewRow);

fn raw(row: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        row.get(0)?,
        ReviewRow {
            state: row.get(1)?,
            reason: row.get(2)?,
            reviewer: row.get(3)?,
            reviewed_at: row.get(4)?,
            comment: row.get(5)?,
            class: row.get(6)?,
            severity: row.get(7)?,
            outline: row.get(8)?,
        },
    ))
}

/// Fills `review` of each row from the table (rows without one keep `Unreviewed`).
pub(super) fn attach(conn: &Connection, rows: &mut [FindingRow]) -> Result<()> {
    // In chunks: SQLite limits the number of parameters of one statement.
    for chunk in rows.chunks_mut(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM finding_reviews WHERE finding IN ({marks})"
            ))
            .map_err(sql("reading reviews"))?;
        let found = stmt
            .query_map(rusqlite::params_from_iter(chunk.iter().map(|f| f.id)), raw)
            .map_err(sql("reading reviews"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("reading reviews"))?;
        for (id, r) in found {
            let review = review_of(r)?;
            if let Some(row) = chunk.iter_mut().find(|f| f.id == id) {
                row.review = review;
            }
        }
    }
    Ok(())
}

/// The SQL condition (on table `findings`) of a finding being in one of `states`, and its
/// parameters.
pub(super) fn state_clause(states: &[ReviewState]) -> (String, Vec<rusqlite::types::Value>) {
    let marks = vec!["?"; states.len()].join(", ");
    (
        format!(
            "COALESCE((SELECT r.state FROM finding_reviews r WHERE r.finding = findings.id), 'unreviewed') IN ({marks})"
        ),
        states.iter().map(|s| s.as_str().to_string().into()).collect(),
    )
}

/// Gives the flight's waiting reviews to its unreviewed findings: same class, overlapping
/// bboxes, the pairs with the largest intersection over union first, each review and each
/// finding used once; a review taken gets its finding's bbox (the next run matches against
/// that). Called by [`crate::Store::complete_job`] after it inserted the new findings, in
/// its transaction.
pub(super) fn carry_over(conn: &Connection, flight_id: i64) -> Result<usize> {
    const DOING: &str = "carrying reviews over to the new findings";
    let boxes = |query: &str| -> Result<Vec<crate::carry::Boxed>> {
        let mut stmt = conn.prepare(query).map_err(sql(DOING))?;
        let rows = stmt
            .query_map([flight_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                ))
            })
            .map_err(sql(DOING))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql(DOING));
        rows
    };
    let waiting = boxes(
        "SELECT id, class, min_x, min_y, max_x, max_y FROM finding_reviews \
         WHERE flight_id = ?1 AND finding IS NULL",
    )?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let findings = boxes(
        "SELECT f.id, f.class, f.min_x, f.min_y, f.max_x, f.max_y FROM findings f \
         WHERE f.flight_id = ?1 AND NOT EXISTS (SELECT 1 FROM finding_reviews r WHERE r.finding = f.id)",
    )?;
    let pairs = crate::carry::pair(&waiting, &findings);
    for (review_id, finding_id, b) in &pairs {
        conn.execute(
            "UPDATE finding_reviews SET finding = ?1, min_x = ?2, min_y = ?3, max_x = ?4, max_y = ?5 WHERE id = ?6",
            params![finding_id, b[0], b[1], b[2], b[3], review_id],
        )
        .map_err(sql(DOING))?;
    }
    Ok(pairs.len())
}

/// The review of a finding of the organisation; `None` when there is no such finding.
pub(super) fn review(conn: &Connection, org_id: i64, id: i64) -> Result<Option<Review>> {
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM findings WHERE id = ?1 AND org_id = ?2)",
            params![id, org_id],
            |r| r.get(0),
        )
        .map_err(sql("reading a review"))?;
    if !exists {
        return Ok(None);
    }
    let row = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM finding_reviews WHERE finding = ?1"),
            [id],
            raw,
        )
        .optional()
        .map_err(sql("reading a review"))?;
    Ok(Some(
        row.map(|(_, r)| review_of(r))
            .transpose()?
            .unwrap_or_default(),
    ))
}

/// Stores `review` of finding `id` (its `by` is the acting token's name; `at` is set
/// here) and appends `finding.review` to the audit log, in one transaction. `Unreviewed`
/// removes the review. Returns the stored review, `None` when the organisation has no
/// such finding.
pub(super) fn set_review(
    conn: &mut Connection,
    org_id: i64,
    id: i64,
    review: &Review,
    role: &str,
) -> Result<Option<Review>> {
    const DOING: &str = "storing a review";
    let tx = conn.transaction().map_err(sql(DOING))?;
    let finding = tx
        .query_row(
            "SELECT flight_id, class, min_x, min_y, max_x, max_y FROM findings WHERE id = ?1 AND org_id = ?2",
            params![id, org_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    [r.get::<_, f64>(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                ))
            },
        )
        .optional()
        .map_err(sql(DOING))?;
    let Some((flight_id, class, b)) = finding else {
        return Ok(None);
    };
    let at = now();
    let by = review.by.clone().unwrap_or_default();
    let stored = if review.state == ReviewState::Unreviewed {
        tx.execute("DELETE FROM finding_reviews WHERE finding = ?1", [id])
            .map_err(sql(DOING))?;
        Review::default()
    } else {
        let outline = crate::rows::review_outline(review)?;
        tx.execute(
            "INSERT INTO finding_reviews (finding, org_id, flight_id, class, min_x, min_y, max_x, max_y, \
             state, reason, reviewer, reviewer_role, reviewed_at, comment, corrected_class, corrected_severity, corrected_outline) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
             ON CONFLICT(finding) DO UPDATE SET state = ?9, reason = ?10, reviewer = ?11, reviewer_role = ?12, \
             reviewed_at = ?13, comment = ?14, corrected_class = ?15, corrected_severity = ?16, corrected_outline = ?17",
            params![
                id,
                org_id,
                flight_id,
                class,
                b[0],
                b[1],
                b[2],
                b[3],
                review.state.as_str(),
                review.reason.map(|r| r.as_str()),
                by,
                role,
                at,
                review.comment,
                review.corrected_class,
                review.corrected_severity.map(|s| s.as_str()),
                outline,
            ],
        )
        .map_err(sql(DOING))?;
        crate::rows::stored_review(review, &by, at)
    };
    let detail = crate::rows::review_audit_detail(id, review);
    tx.execute(
        "INSERT INTO audit (org_id, at, token, role, action, detail) VALUES (?1, ?2, ?3, ?4, 'finding.review', ?5)",
        params![org_id, at, by, role, detail],
    )
    .map_err(sql(DOING))?;
    super::revision::raise(&tx, org_id, super::revision::Change::Content)?;
    tx.commit().map_err(sql(DOING))?;
    Ok(Some(stored))
}

#[cfg(test)]
mod tests {
    use crate::{FindingFilter, JobResult, NewFinding, SqliteStore, Store};
    use besikta_core::finding::Finding;
    use besikta_core::{AssetKind, RejectReason, Review, ReviewState, Severity};

    /// A finding whose outline is the rectangle `bbox`.
    fn finding(id: &str, class: &str, b: [f64; 4]) -> NewFinding {
        NewFinding::new(Finding {
            id: id.into(),
            class: class.into(),
            asset_kind: AssetKind::Road,
            severity: Severity::Medium,
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
    fn process(s: &SqliteStore, org: i64, flight: i64, run: u32, findings: Vec<NewFinding>) {
        s.enqueue_job(org, flight).unwrap();
        let job = s.claim_job(60).unwrap().unwrap();
        let result = JobResult {
            output_dir: format!("flights/{flight}/out-{run}"),
            findings,
            rejected: vec![],
        };
        assert!(matches!(
            s.complete_job(&job, &result).unwrap(),
            crate::CompleteOutcome::Stored { .. }
        ));
    }

    fn id_of(s: &SqliteStore, org: i64, flight_finding: &str) -> i64 {
        s.findings(org, &FindingFilter::default())
            .unwrap()
            .into_iter()
            .find(|f| f.finding_id == flight_finding)
            .unwrap()
            .id
    }

    #[test]
    fn reviews_follow_their_findings_through_reprocessing() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("b.db")).unwrap();
        let org = s.ensure_org("Espoo", None).unwrap().id;
        let flight = s.create_flight(org, "f").unwrap().id;
        let other = s.create_flight(org, "g").unwrap().id;
        process(
            &s,
            org,
            other,
            1,
            vec![finding("G1", "crack", [24.0, 60.0, 24.001, 60.001])],
        );
        process(
            &s,
            org,
            flight,
            1,
            vec![
                finding("F1", "crack", [24.0, 60.0, 24.001, 60.001]),
                finding("F2", "pothole", [24.01, 60.0, 24.011, 60.001]),
                finding("F3", "crack", [24.02, 60.0, 24.021, 60.001]),
            ],
        );
        let f1 = id_of(&s, org, "F1");
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
            s.set_review(org, id_of(&s, org, fid), review, "planner")
                .unwrap()
                .unwrap();
        }
        // The second run: ids renumbered, F1's outline moved a little (still overlapping),
        // the pothole found a little off too, F3's crack gone and a new crack elsewhere.
        // The old rows' ids are reused by SQLite for the new rows (same max rowid), so a
        // review keyed only by id would land on the wrong finding.
        process(
            &s,
            org,
            flight,
            2,
            vec![
                finding("N1", "crack", [24.05, 60.0, 24.051, 60.001]),
                finding("N2", "pothole", [24.0102, 60.0002, 24.0112, 60.0012]),
                finding("N3", "crack", [24.0004, 60.0004, 24.0014, 60.0014]),
                finding("N4", "crack", [24.0006, 60.0, 24.0016, 60.001]),
            ],
        );
        assert_eq!(id_of(&s, org, "N1"), f1, "SQLite reused the id");
        let state_of = |fid: &str| s.finding(org, id_of(&s, org, fid)).unwrap().unwrap().review;
        assert_eq!(state_of("N1").state, ReviewState::Unreviewed, "new crack");
        assert_eq!(state_of("N2").state, ReviewState::Rejected, "the pothole");
        assert_eq!(state_of("N2").reason, Some(RejectReason::NotADefect));
        // N3 and N4 both overlap F1's crack; N4 overlaps it more (IoU 0.25 against 0.22)
        // and takes it although N3 came first; N3 does not get a copy.
        assert_eq!(state_of("N4").state, ReviewState::Confirmed);
        assert_eq!(state_of("N3").state, ReviewState::Unreviewed);
        assert_eq!(
            state_of("G1").state,
            ReviewState::Unreviewed,
            "other flight"
        );
        // A third run finds F3's crack again: its waiting review comes back.
        process(
            &s,
            org,
            flight,
            3,
            vec![finding("M1", "crack", [24.02, 60.0, 24.021, 60.001])],
        );
        assert_eq!(state_of("M1").state, ReviewState::Confirmed);
        // Deleting the flight deletes its reviews (none left waiting).
        assert!(matches!(
            s.delete_flight(org, flight).unwrap(),
            crate::FlightDeleted::Deleted { .. }
        ));
        let left: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM finding_reviews", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_database_from_before_reviews_gets_the_table_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(super::super::SCHEMA).unwrap();
            conn.execute("INSERT INTO orgs (name) VALUES ('Espoo')", [])
                .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let org = s.ensure_org("Espoo", None).unwrap().id;
        let flight = s.create_flight(org, "f").unwrap().id;
        process(
            &s,
            org,
            flight,
            1,
            vec![finding("F1", "crack", [24.0, 60.0, 24.001, 60.001])],
        );
        let id = id_of(&s, org, "F1");
        let confirm = Review {
            state: ReviewState::Confirmed,
            by: Some("0123456789ab".into()),
            ..Default::default()
        };
        assert!(s.set_review(org, id, &confirm, "admin").unwrap().is_some());
        drop(s);
        // Opening again changes nothing.
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            s.review(org, id).unwrap().unwrap().state,
            ReviewState::Confirmed
        );
    }
}
