//! Findings of different classes that name one kind of damage (the roof model's
//! `missing_tile`, `debris` and `moss`; a crack and a pothole on one spot of a road) on one
//! spot of one asset, merged into one finding.
//!
//! The merge ([`crate::merge`]) keeps model classes apart, so one damaged patch of roof that
//! some photos saw as a missing tile and others as moss became two findings: two work items
//! for one repair, and a duplicate when scored as roof damage. A class group (`[[group]]` in
//! `evidence.toml`, [`ClassGroup`]) lists such classes. After the evidence rules and asset
//! matching, the findings of a group are visited lead first:
//!
//! - **Lead order** ([`Pick`]): with `pick = "first_listed"` (the default) the class listed
//!   first, then the higher combined confidence. A group lists its classes most severe first
//!   (the shipped roof group: a missing tile lets water in, debris may break tiles or block
//!   gutters, moss does neither yet). With `pick = "most_confident"` the higher combined
//!   confidence, then the class listed first.
//! - **Absorbing:** a lead absorbs every finding of the group not yet visited that has a
//!   *different* class, lies on the same asset (same asset id, or both unmatched) and whose
//!   outline comes within the merge's pair tolerance of the lead's outline
//!   ([`crate::MergeRules::pair_tolerance_m`] of the two best views' relative
//!   uncertainties, plus [`crate::ReportConfig::extra_tolerance_m`]). Findings of the lead's
//!   own class are left alone unless the group sets `same_class_within_m`: then a finding of
//!   the lead's class on the same *registered* asset (a building) whose outline comes
//!   within that many metres of the lead's is absorbed too. That is for one damaged patch
//!   that the model saw only in pieces at its edges, each piece confirmed by other photos
//!   than the other piece: the merge keeps them apart (farther apart than two views of one
//!   spot may be), but a roofer mends them in one visit. Absorbing is not transitive (a
//!   finding near an absorbed one but beyond the lead's reach stays apart), so no chain of
//!   moss grows across a roof.
//! - **The merged finding** keeps the lead's class, id order, outline, area, length, asset
//!   and best view. It holds every observation (the lead's first), and its `views`,
//!   `support` and combined confidence are set again from all of them as
//!   [`crate::evidence`] does: support counts distinct photos over every class, views adds
//!   the photos whose processed area for the lead's class covers the centroid. The evidence
//!   rules are not applied again: each part already passed its own class's rule.
//! - The contributing classes are the distinct classes of its observations
//!   ([`contributing_classes`]; `classes` in `findings.geojson` and the API's features, present
//!   only on findings merged over several classes, so every other finding's bytes stay).

use crate::evidence::{self, Coverage, WorkCoverage};
use crate::frame::WorkFrame;
use crate::{Finding, ReportConfig, ReportError};
use geo::{Distance, Euclidean, Polygon};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Classes of one model that name one kind of damage (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassGroup {
    /// Name for messages (`roof_damage`).
    pub name: String,
    /// The member classes, most severe first.
    pub classes: Vec<String>,
    /// Which finding of a merged spot gives its class and outline.
    #[serde(default)]
    pub pick: Pick,
    /// Findings of the lead's own class on the same registered asset whose outlines come
    /// within this many metres of the lead's are absorbed too (see the module docs); none
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_class_within_m: Option<f64>,
}

/// How the lead of a merged spot is chosen (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The class listed first (most severe), then the higher combined confidence.
    #[default]
    FirstListed,
    /// The higher combined confidence, then the class listed first.
    MostConfident,
}

impl ClassGroup {
    /// The roof-damage model's classes (`models/roof/manifest.toml`), most severe first.
    pub fn roof_damage() -> ClassGroup {
        ClassGroup {
            name: "roof_damage".into(),
            classes: vec!["missing_tile".into(), "debris".into(), "moss".into()],
            pick: Pick::FirstListed,
            same_class_within_m: Some(2.0),
        }
    }

    /// A crack and a pothole on one spot of a road: one finding of the more confident class
    /// (`models/evidence.toml`, 2026-12-05; neither model is always the right one when they
    /// disagree on a spot).
    pub fn road_damage() -> ClassGroup {
        ClassGroup {
            name: "road_damage".into(),
            classes: vec!["crack".into(), "pothole".into()],
            pick: Pick::MostConfident,
            same_class_within_m: None,
        }
    }

    fn rank(&self, class: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == class)
    }
}

/// Checks groups read from a file: a name, at least two classes, no class listed twice or
/// in two groups, no `*`.
pub(crate) fn check(groups: &[ClassGroup]) -> Result<(), String> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for g in groups {
        if g.name.trim().is_empty() {
            return Err("every [[group]] needs a name".into());
        }
        if g.classes.len() < 2 {
            return Err(format!(
                "group '{}' lists {} class(es); a group needs at least two",
                g.name,
                g.classes.len()
            ));
        }
        if let Some(m) = g.same_class_within_m {
            if !(m.is_finite() && m > 0.0 && m <= 10.0) {
                return Err(format!(
                    "group '{}': same_class_within_m = {m} is not a distance from 0 to 10 metres",
                    g.name
                ));
            }
        }
        for c in &g.classes {
            if c == "*" || c.trim().is_empty() {
                return Err(format!("group '{}': '{c}' is not a class name", g.name));
            }
            if let Some(other) = seen.insert(c.as_str(), g.name.as_str()) {
                return Err(format!(
                    "class '{c}' is listed twice (groups '{other}' and '{}'); a class belongs to one group at most",
                    g.name
                ));
            }
        }
    }
    Ok(())
}

/// The distinct classes of a finding's observations, its own class first, then the rest
/// by name.
pub fn contributing_classes(f: &Finding) -> Vec<&str> {
    let mut rest: Vec<&str> = f
        .observations
        .iter()
        .map(|o| o.class.as_str())
        .filter(|c| *c != f.class)
        .collect();
    rest.sort_unstable();
    rest.dedup();
    let mut out = vec![f.class.as_str()];
    out.extend(rest);
    out
}

/// The relative position uncertainty of a finding's best view (what the merge uses).
fn uncertainty(f: &Finding) -> f64 {
    f.best_observation()
        .map_or(0.0, |o| o.relative_uncertainty_m())
}

fn asset_id(f: &Finding) -> Option<&str> {
    f.asset.as_ref().map(|a| a.asset_id.as_str())
}

/// Merges findings of different classes of one group on one spot of one asset (see the
/// module docs); returns the findings left, in their order.
pub fn merge_groups(
    findings: Vec<Finding>,
    groups: &[ClassGroup],
    coverage: &[Coverage],
    frame: &WorkFrame,
    cfg: &ReportConfig,
) -> Result<Vec<Finding>, ReportError> {
    let mut slots: Vec<Option<Finding>> = findings.into_iter().map(Some).collect();
    let mut cov: Option<Vec<WorkCoverage>> = None;
    for g in groups {
        let mut members: Vec<(usize, usize, f32)> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let f = f.as_ref()?;
                Some((i, g.rank(&f.class)?, f.confidence))
            })
            .collect();
        if members.len() < 2 {
            continue;
        }
        members.sort_by(|a, b| {
            let by_rank = a.1.cmp(&b.1);
            let by_conf = b.2.total_cmp(&a.2);
            match g.pick {
                Pick::FirstListed => by_rank.then(by_conf),
                Pick::MostConfident => by_conf.then(by_rank),
            }
            .then(a.0.cmp(&b.0))
        });
        let mut polys: BTreeMap<usize, Polygon<f64>> = BTreeMap::new();
        for &(i, _, _) in &members {
            if let Some(f) = &slots[i] {
                polys.insert(i, frame.ring_to_work(&f.polygon)?);
            }
        }
        for (k, &(lead, _, _)) in members.iter().enumerate() {
            let Some(l) = slots[lead].as_ref() else {
                continue;
            };
            let mut absorbed = Vec::new();
            for &(other, _, _) in &members[k + 1..] {
                let Some(o) = slots[other].as_ref() else {
                    continue;
                };
                if asset_id(o) != asset_id(l) {
                    continue;
                }
                let tol = if o.class == l.class {
                    match g.same_class_within_m {
                        Some(m) if asset_id(l).is_some() => m,
                        _ => continue,
                    }
                } else {
                    cfg.merge.pair_tolerance_m(
                        uncertainty(l),
                        uncertainty(o),
                        cfg.extra_tolerance_m,
                    )
                };
                if Euclidean.distance(&polys[&lead], &polys[&other]) <= tol {
                    absorbed.push(other);
                }
            }
            if absorbed.is_empty() {
                continue;
            }
            let Some(mut merged) = slots[lead].take() else {
                continue;
            };
            for other in absorbed {
                if let Some(o) = slots[other].take() {
                    merged.observations.extend(o.observations);
                }
            }
            if cov.is_none() {
                cov = Some(evidence::work_coverage(coverage, frame)?);
            }
            evidence::measure(&mut merged, cov.as_deref().unwrap_or_default(), frame)?;
            slots[lead] = Some(merged);
        }
    }
    Ok(slots.into_iter().flatten().collect())
}
