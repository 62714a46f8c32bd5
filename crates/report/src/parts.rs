//! Merging a flight in parts (issue 14, memory flat in flight size): the observations are
//! split into parts that share no possible merge, and each part is merged and weighed on its
//! own ([`Merger`]), so the merge holds one part's observations at a time instead of the
//! whole flight's.
//!
//! Why the result is the same as one merge of everything: [`crate::merge`] only ever joins
//! two observations of one class whose outlines come within the pair's tolerance, and that
//! tolerance is at most [`reach_m`]. Two observations whose bounding boxes lie further apart
//! than that can never be joined, nor can anything joined to them: the merge's single-linkage
//! order (and its extent cap) only ever looks inside one connected set of candidate pairs.
//! [`Parts::split`] puts each such set (observations of one class whose boxes come within
//! [`reach_m`], transitively) whole into one part, keeps every part's observations in their
//! order in the flight, and [`Merger::finish`] sorts the findings of all parts by the merge's
//! own key. The evidence rules weigh each finding alone.

use crate::evidence::{self, WorkCoverage};
use crate::onasset::AssetCheck;
use crate::{
    merge, Coverage, Finding, Merged, Observation, Register, ReportConfig, ReportError, WorkFrame,
};
use geo::BoundingRect;
use rstar::AABB;
use std::collections::BTreeMap;

/// The farthest apart, metres, two observations' outlines may be and still be merged:
/// the pair tolerance of two photos with the flight's largest relative uncertainty, or the
/// gap between pieces of one photo, whichever is larger.
pub fn reach_m(cfg: &ReportConfig, max_uncertainty_m: f64) -> f64 {
    cfg.merge
        .pair_tolerance_m(max_uncertainty_m, max_uncertainty_m, cfg.extra_tolerance_m)
        .max(cfg.merge.crack_gap_m)
}

/// What splitting needs of one observation: its class and its outline's bounding box in the
/// working frame.
struct Key {
    class: usize,
    rect: Option<[f64; 4]>,
}

/// The flight's observations as keys, added one by one in the flight's order.
#[derive(Default)]
pub struct Parts {
    keys: Vec<Key>,
    classes: Vec<String>,
    max_uncertainty_m: f64,
}

impl Parts {
    /// Adds the next observation (index = the number added before it).
    pub fn add(&mut self, o: &Observation, frame: &WorkFrame) {
        let class = match self.classes.iter().position(|c| *c == o.class) {
            Some(c) => c,
            None => {
                self.classes.push(o.class.clone());
                self.classes.len() - 1
            }
        };
        // An outline that does not convert is a part of its own; the merge reports it.
        let rect = frame
            .ring_to_work(&o.ground_polygon)
            .ok()
            .and_then(|p| p.bounding_rect())
            .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y]);
        self.max_uncertainty_m = self.max_uncertainty_m.max(o.relative_uncertainty_m());
        self.keys.push(Key { class, rect });
    }

    /// How many observations were added.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The observations' indexes in parts of about `max_part` (a connected set larger than
    /// that is one part), each part in ascending order, the parts in the order of their
    /// first observation.
    pub fn split(&self, cfg: &ReportConfig, max_part: usize) -> Vec<Vec<usize>> {
        let reach = reach_m(cfg, self.max_uncertainty_m);
        let tree = merge::rect_tree(
            self.keys
                .iter()
                .enumerate()
                .filter_map(|(i, k)| Some((i, k.rect?))),
        );
        let mut uf = merge::UnionFind::new(self.keys.len());
        for (i, k) in self.keys.iter().enumerate() {
            let Some(r) = k.rect else { continue };
            let env =
                AABB::from_corners([r[0] - reach, r[1] - reach], [r[2] + reach, r[3] + reach]);
            for cand in tree.locate_in_envelope_intersecting(&env) {
                let j = cand.data;
                if j <= i || self.keys[j].class != k.class {
                    continue;
                }
                let (a, b) = (uf.find(i), uf.find(j));
                if a != b {
                    uf.0[a.max(b)] = a.min(b);
                }
            }
        }
        // Connected sets in the order of their first observation (roots are the smallest
        // index of their set).
        let mut sets: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..self.keys.len() {
            let r = uf.find(i);
            sets.entry(r).or_default().push(i);
        }
        let mut parts: Vec<Vec<usize>> = Vec::new();
        let mut part: Vec<usize> = Vec::new();
        for set in sets.into_values() {
            if !part.is_empty() && part.len() + set.len() > max_part {
                part.sort_unstable();
                parts.push(std::mem::take(&mut part));
            }
            part.extend(set);
        }
        if !part.is_empty() {
            part.sort_unstable();
            parts.push(part);
        }
        parts
    }
}

/// Merges and weighs a flight part by part ([`Merger::add`]), keeping only the findings
/// that pass the evidence rules.
pub struct Merger<'a> {
    cov: Vec<WorkCoverage>,
    registers: &'a [Register],
    frame: &'a WorkFrame,
    cfg: &'a ReportConfig,
    check: Option<AssetCheck>,
    findings: Vec<Finding>,
    dropped: BTreeMap<String, usize>,
}

impl<'a> Merger<'a> {
    pub fn new(
        coverage: &[Coverage],
        registers: &'a [Register],
        frame: &'a WorkFrame,
        cfg: &'a ReportConfig,
    ) -> Result<Merger<'a>, ReportError> {
        Ok(Merger {
            cov: evidence::work_coverage(coverage, frame)?,
            registers,
            frame,
            cfg,
            check: cfg.assets_only.then(|| AssetCheck::new(registers)),
            findings: Vec::new(),
            dropped: BTreeMap::new(),
        })
    }

    /// One part: its observations are kept on their assets (with `assets_only`), merged
    /// and weighed; the findings that pass are kept.
    pub fn add(&mut self, observations: Vec<Observation>) -> Result<(), ReportError> {
        let observations = match &self.check {
            Some(check) => {
                check.keep(observations, self.registers, self.frame, &mut self.dropped)?
            }
            None => observations,
        };
        let findings = merge::merge_observations(observations, self.frame, self.cfg)?;
        let kept = evidence::apply_work(
            findings,
            &self.cov,
            self.frame,
            &self.cfg.evidence,
            &mut self.dropped,
        )?;
        self.findings.extend(kept);
        Ok(())
    }

    /// Every part's findings in the merge's order (by class, then south-west to
    /// north-east), numbered.
    pub fn finish(self) -> Merged {
        let mut findings = self.findings;
        merge::sort_and_number(&mut findings);
        Merged {
            findings,
            dropped: self.dropped,
        }
    }
}
