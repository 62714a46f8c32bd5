//! Multi-view evidence: how many photos could have seen a finding (`views`), how many did
//! (`support`), one combined confidence, and the per-class rule that drops weak findings.
//!
//! A spot on the ground is seen by 3-6 overlapping photos. A real defect is detected in most
//! of them; a false positive (a shadow edge, a paving joint seen at one angle, JPEG noise)
//! usually in one. For each finding:
//!
//! - `views`: photos whose *processed area* for the finding's class contains the finding's
//!   centroid (the footprint, limited to the region of interest when tiles were skipped),
//!   plus any photo that detected it there;
//! - `support`: distinct photos among the finding's observations;
//! - `confidence` = noisy-OR of the per-photo best scores, `1 - prod(1 - s_p)`, times the
//!   support ratio `support / views`. Several independent detections raise it; views that
//!   saw nothing lower it.
//!
//! The rule (per class, TOML, `*` for the rest) drops a finding when `support < min_support`,
//! or when `views >= min_views_for_ratio` and `support / views < min_ratio`, or when the
//! combined confidence is below `min_confidence`. Dropped findings are counted by reason.
//! `report = false` drops every finding of the class (`class_not_reported`): the shipped
//! rules turn `moss` off, whose findings were false on every flight that could be scored.
//!
//! `max_pieces_per_view` drops a finding that its supporting photos saw, in the median, as
//! more than that many separate pieces (observations of one photo merged into it): a crack
//! model cuts regular patterns (paving joints, roof seams, lane-marking edges) into many
//! short straight pieces per photo, where the simulated cracks came out as one or two. Counted
//! as `pieces_per_view`. Off unless set (the shipped crack rule sets 2): a real long crack seen
//! in many pieces is dropped too (measured on simulated cracks only; see `models/evidence.toml`).
//!
//! `min_view_consistency` (off unless set; the shipped pothole rule sets 0.6) drops a finding
//! seen in two or more photos whose views do not look alike (`inconsistent_views`): the
//! pipeline reads those photos again, cuts a small north-up grey patch of the ground around
//! each photo's observation of it and takes the best normalised cross-correlation over pairs
//! of photos. Solid ground looks the same from two photos taken seconds apart; rocks seen
//! through moving water do not (the five boulders under the sea on the real Brighton flight
//! scored 0.08-0.42, water standing in broken pavement 0.85 and 0.95, simulated potholes
//! 0.77-0.99). The report does not see pixels: the pipeline hands the check in between
//! [`crate::merge_and_weigh`] and [`crate::finish_report`].
//!
//! `max_sides_grey` (off unless set; the shipped crack rule sets 12) drops a thin finding
//! whose two sides are different ground (`edge_between_surfaces`): the pipeline measures, for
//! each observation, the difference of the median luminance 0.15-0.40 m on either side of the
//! detection (`besikta_pipeline::sides`), and the rule takes the median over the finding's
//! observations. A crack lies within one pavement; the joint of asphalt and paving, a slab
//! footway's edge or a worn patch's border lies between two.
//!
//! ```toml
//! [[rule]]
//! class = "crack"
//! min_support = 2
//! min_ratio = 0.5
//! min_views_for_ratio = 2
//! min_confidence = 0.0
//! max_pieces_per_view = 2.0
//! max_sides_grey = 12.0
//! ```
//!
//! `[[group]]` tables name classes that are one kind of damage (see [`crate::classgroup`]):
//!
//! ```toml
//! [[group]]
//! name = "roof_damage"
//! classes = ["missing_tile", "debris", "moss"]
//! pick = "first_listed"
//! ```
//!
//! The shipped values (also the defaults here) and the simulated flights they were chosen on
//! are in `models/evidence.toml`.

use crate::classgroup::ClassGroup;
use crate::frame::WorkFrame;
use crate::{Finding, ReportError};
use geo::{Contains, Point, Polygon};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The ground one photo covered for some classes (all WGS 84 lon/lat rings).
#[derive(Debug, Clone)]
pub struct Coverage {
    pub photo: String,
    /// Classes of the model(s) run over this area.
    pub classes: Vec<String>,
    /// The photo's footprint.
    pub footprint: Vec<[f64; 2]>,
    /// Where tiles were run, when only part of the footprint was (regions of interest);
    /// `None` = the whole footprint.
    pub processed: Option<Vec<Vec<[f64; 2]>>>,
}

/// Thresholds for one class (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRule {
    pub class: String,
    #[serde(default = "one")]
    pub min_support: usize,
    #[serde(default)]
    pub min_ratio: f64,
    #[serde(default = "two")]
    pub min_views_for_ratio: usize,
    #[serde(default)]
    pub min_confidence: f64,
    /// Largest median number of pieces per supporting photo (see the module docs); `None`:
    /// no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pieces_per_view: Option<f64>,
    /// `false`: no finding of this class is reported (each is counted as
    /// `class_not_reported`), and its candidates get no second views. For a class whose
    /// findings were never shown to be right on real photos (see `models/evidence.toml`).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub report: bool,
    /// Least best-pair similarity (-1 to 1) of the photos that saw a finding (see the
    /// module docs); `None`: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_view_consistency: Option<f64>,
    /// Largest median, over a finding's observations that measured it, of how much the
    /// ground on the two sides of a thin detection differs (`Observation::sides_grey`,
    /// luminance 0-255): a line between two surfaces is not a crack (see the module docs);
    /// `None`: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sides_grey: Option<f64>,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn is_yes(b: &bool) -> bool {
    *b
}
fn two() -> usize {
    2
}

/// All evidence rules; the `*` rule applies to classes without their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRules {
    #[serde(rename = "rule")]
    pub rules: Vec<EvidenceRule>,
    /// Classes of one model that name one kind of damage (`[[group]]` tables): findings of
    /// different classes of a group on one spot become one finding ([`crate::classgroup`]).
    /// None when the file has no `[[group]]`.
    #[serde(default, rename = "group", skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ClassGroup>,
    /// Without a register, the share of paved-like ground (not vegetation) a road defect
    /// needs around it to be kept (`min_paved_share`, 0-1; the pipeline's rough-ground rule,
    /// default 0.6 when absent; 0 turns the rule off, e.g. for cobbled or gravel roads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_paved_share: Option<f64>,
}

impl Default for EvidenceRules {
    /// The values of `models/evidence.toml` (see there for the data behind them).
    fn default() -> Self {
        let r = |class: &str, min_support, min_ratio, min_confidence| EvidenceRule {
            class: class.into(),
            min_support,
            min_ratio,
            min_views_for_ratio: 2,
            min_confidence,
            max_pieces_per_view: None,
            report: true,
            min_view_consistency: None,
            max_sides_grey: None,
        };
        EvidenceRules {
            rules: vec![
                EvidenceRule {
                    max_pieces_per_view: Some(2.0),
                    max_sides_grey: Some(12.0),
                    ..r("crack", 2, 0.5, 0.0)
                },
                EvidenceRule {
                    min_view_consistency: Some(0.6),
                    ..r("pothole", 1, 0.0, 0.6)
                },
                EvidenceRule {
                    report: false,
                    ..r("moss", 1, 0.5, 0.0)
                },
                r("debris", 1, 0.5, 0.0),
                r("*", 1, 0.0, 0.0),
            ],
            groups: vec![ClassGroup::roof_damage(), ClassGroup::road_damage()],
            min_paved_share: Some(0.6),
        }
    }
}

impl EvidenceRules {
    /// No finding is dropped (for callers that want every merged detection).
    pub fn keep_all() -> Self {
        EvidenceRules {
            rules: vec![EvidenceRule {
                class: "*".into(),
                min_support: 1,
                min_ratio: 0.0,
                min_views_for_ratio: 2,
                min_confidence: 0.0,
                max_pieces_per_view: None,
                report: true,
                min_view_consistency: None,
                max_sides_grey: None,
            }],
            groups: Vec::new(),
            min_paved_share: None,
        }
    }

    /// Reads rules from a TOML file (see the module docs).
    pub fn load(path: &Path) -> Result<EvidenceRules, ReportError> {
        let err = |message: String| ReportError::Rules {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let rules: EvidenceRules = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        for r in &rules.rules {
            if !(0.0..=1.0).contains(&r.min_ratio) || !(0.0..=1.0).contains(&r.min_confidence) {
                return Err(err(format!(
                    "rule for '{}': min_ratio and min_confidence must be within 0-1",
                    r.class
                )));
            }
            if r.min_view_consistency
                .is_some_and(|m| !(-1.0..=1.0).contains(&m))
            {
                return Err(err(format!(
                    "rule for '{}': min_view_consistency must be within -1 to 1 (a correlation)",
                    r.class
                )));
            }
            if r.max_sides_grey
                .is_some_and(|m| !(0.0..=255.0).contains(&m))
            {
                return Err(err(format!(
                    "rule for '{}': max_sides_grey must be within 0-255 (grey levels)",
                    r.class
                )));
            }
            if r.max_pieces_per_view.is_some_and(|m| m.is_nan() || m < 1.0) {
                return Err(err(format!(
                    "rule for '{}': max_pieces_per_view must be 1 or more (pieces per photo)",
                    r.class
                )));
            }
        }
        if rules
            .min_paved_share
            .is_some_and(|m| !(0.0..=1.0).contains(&m))
        {
            return Err(err(
                "min_paved_share must be within 0-1 (0 keeps road defects on any ground)".into(),
            ));
        }
        crate::classgroup::check(&rules.groups).map_err(err)?;
        Ok(rules)
    }

    /// The class's `min_view_consistency` (its own rule, else the `*` rule's).
    pub fn min_view_consistency(&self, class: &str) -> Option<f64> {
        self.rule_for(class).and_then(|r| r.min_view_consistency)
    }

    fn rule_for(&self, class: &str) -> Option<&EvidenceRule> {
        self.rules
            .iter()
            .find(|r| r.class == class)
            .or_else(|| self.rules.iter().find(|r| r.class == "*"))
    }
}

/// The median of `sides_grey` over a finding's observations that measured it (see
/// `Observation::sides_grey`); `None` when none did.
pub fn median_sides_grey(f: &Finding) -> Option<f64> {
    let mut v: Vec<f64> = f
        .observations
        .iter()
        .filter_map(|o| o.sides_grey.map(f64::from))
        .collect();
    v.sort_by(f64::total_cmp);
    median_of_sorted(&v)
}

/// The median of sorted values (the mean of the middle two for an even count); `None` when
/// empty.
fn median_of_sorted(v: &[f64]) -> Option<f64> {
    let k = v.len();
    match k {
        0 => None,
        k if k % 2 == 1 => Some(v[k / 2]),
        k => Some((v[k / 2 - 1] + v[k / 2]) / 2.0),
    }
}

/// The median, over the photos that detected a finding, of how many of its observations
/// each photo gave (pieces of one photo merged into it); 0 without observations.
pub fn median_pieces_per_view(f: &Finding) -> f64 {
    let mut per_photo: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &f.observations {
        *per_photo.entry(o.photo.as_str()).or_default() += 1;
    }
    let mut n: Vec<f64> = per_photo.into_values().map(|k| k as f64).collect();
    n.sort_by(f64::total_cmp);
    median_of_sorted(&n).unwrap_or(0.0)
}

/// Noisy-OR of per-photo scores times the support ratio.
pub fn combined_confidence(per_photo: &[f32], views: usize) -> f32 {
    let support = per_photo.len();
    if support == 0 {
        return 0.0;
    }
    let miss: f64 = per_photo
        .iter()
        .map(|&s| 1.0 - (s as f64).clamp(0.0, 1.0))
        .product();
    let ratio = support as f64 / views.max(support) as f64;
    ((1.0 - miss) * ratio) as f32
}

/// A photo's [`Coverage`] in the working frame.
pub(crate) struct WorkCoverage {
    photo: String,
    classes: Vec<String>,
    footprint: Polygon<f64>,
    processed: Option<Vec<Polygon<f64>>>,
}

impl WorkCoverage {
    fn sees(&self, class: &str, p: &Point<f64>) -> bool {
        self.classes.iter().any(|c| c == class)
            && self.footprint.contains(p)
            && self
                .processed
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|q| q.contains(p)))
    }
}

/// Every photo's coverage moved into the working frame.
pub(crate) fn work_coverage(
    coverage: &[Coverage],
    frame: &WorkFrame,
) -> Result<Vec<WorkCoverage>, ReportError> {
    coverage
        .iter()
        .map(|c| {
            Ok(WorkCoverage {
                photo: c.photo.clone(),
                classes: c.classes.clone(),
                footprint: frame.ring_to_work(&c.footprint)?,
                processed: c
                    .processed
                    .as_ref()
                    .map(|ps| ps.iter().map(|p| frame.ring_to_work(p)).collect())
                    .transpose()?,
            })
        })
        .collect()
}

/// Sets `views`, `support` and the combined `confidence` of one finding from its
/// observations (whatever their classes) and the photos whose processed area for the
/// finding's class contains its centroid.
pub(crate) fn measure(
    f: &mut Finding,
    cov: &[WorkCoverage],
    frame: &WorkFrame,
) -> Result<(), ReportError> {
    let mut best: BTreeMap<&str, f32> = BTreeMap::new();
    for o in &f.observations {
        let e = best.entry(o.photo.as_str()).or_insert(0.0);
        *e = e.max(o.confidence);
    }
    let c = frame.to_work(f.centroid)?;
    let p = Point::new(c[0], c[1]);
    let extra = cov
        .iter()
        .filter(|w| !best.contains_key(w.photo.as_str()) && w.sees(&f.class, &p))
        .map(|w| w.photo.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let scores: Vec<f32> = best.values().copied().collect();
    f.support = scores.len();
    f.views = f.support + extra;
    f.confidence = combined_confidence(&scores, f.views);
    Ok(())
}

/// Sets `views`, `support` and the combined `confidence` of every finding, then drops the
/// findings the rules call weak, counting them in `dropped` by reason.
pub fn apply(
    findings: Vec<Finding>,
    coverage: &[Coverage],
    frame: &WorkFrame,
    rules: &EvidenceRules,
    dropped: &mut BTreeMap<String, usize>,
) -> Result<Vec<Finding>, ReportError> {
    apply_work(
        findings,
        &work_coverage(coverage, frame)?,
        frame,
        rules,
        dropped,
    )
}

/// [`apply`] with the coverage already in the working frame ([`work_coverage`]).
pub(crate) fn apply_work(
    findings: Vec<Finding>,
    cov: &[WorkCoverage],
    frame: &WorkFrame,
    rules: &EvidenceRules,
    dropped: &mut BTreeMap<String, usize>,
) -> Result<Vec<Finding>, ReportError> {
    let mut kept = Vec::with_capacity(findings.len());
    for mut f in findings {
        // A class that is not reported is dropped before its views are measured.
        if rules.rule_for(&f.class).is_some_and(|r| !r.report) {
            *dropped.entry("class_not_reported".to_string()).or_default() += 1;
            continue;
        }
        measure(&mut f, cov, frame)?;
        let reason = rules.rule_for(&f.class).and_then(|r| {
            let ratio = f.support as f64 / f.views as f64;
            if f.support < r.min_support {
                Some("weak_evidence_support")
            } else if f.views >= r.min_views_for_ratio && ratio < r.min_ratio {
                Some("weak_evidence_ratio")
            } else if (f.confidence as f64) < r.min_confidence {
                Some("weak_evidence_confidence")
            } else if r
                .max_pieces_per_view
                .is_some_and(|m| median_pieces_per_view(&f) > m)
            {
                Some("pieces_per_view")
            } else if r
                .max_sides_grey
                .zip(median_sides_grey(&f))
                .is_some_and(|(m, v)| v > m)
            {
                Some("edge_between_surfaces")
            } else {
                None
            }
        });
        match reason {
            Some(why) => *dropped.entry(why.to_string()).or_default() += 1,
            None => kept.push(f),
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noisy_or_rises_with_support_and_falls_with_unseen_views() {
        let one = combined_confidence(&[0.6], 1);
        let two = combined_confidence(&[0.6, 0.6], 2);
        assert!((one - 0.6).abs() < 1e-6);
        assert!((two - 0.84).abs() < 1e-6);
        // Detected in one of four photos that covered the spot.
        assert!((combined_confidence(&[0.6], 4) - 0.15).abs() < 1e-6);
        assert_eq!(combined_confidence(&[], 3), 0.0);
    }

    #[test]
    fn rules_read_from_toml_and_fall_back_to_the_star_rule() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("evidence.toml");
        std::fs::write(
            &p,
            "[[rule]]\nclass = \"crack\"\nmin_support = 3\n\n[[rule]]\nclass = \"*\"\nmin_ratio = 0.5\n",
        )
        .unwrap();
        let r = EvidenceRules::load(&p).unwrap();
        assert_eq!(r.rule_for("crack").unwrap().min_support, 3);
        assert_eq!(r.rule_for("crack").unwrap().min_ratio, 0.0);
        assert_eq!(r.rule_for("moss").unwrap().min_ratio, 0.5);
        std::fs::write(&p, "[[rule]]\nclass = \"x\"\nmin_ratio = 2.0\n").unwrap();
        let e = EvidenceRules::load(&p).unwrap_err().to_string();
        assert!(e.contains("evidence.toml") && e.contains("0-1"), "{e}");
    }
}
