//! Merging observations of the same physical defect seen in several photos into one finding.
//!
//! Two observations are the same defect when they have the same class and their ground
//! outlines come within the sum of the photos' position uncertainties (plus the configured
//! extra tolerance) of each other. The relation is closed transitively (union-find), so a long
//! crack seen in pieces across three photos is one finding. Candidate pairs come from an
//! R-tree over the outlines' bounding boxes, so the cost stays near-linear.

use crate::frame::WorkFrame;
use crate::{Finding, Observation, ReportConfig, ReportError};
use besikta_core::Severity;
use geo::{Area, BoundingRect, Centroid, Distance, Euclidean, Simplify};
use rstar::{primitives::GeomWithData, primitives::Rectangle, RTree, AABB};

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, i: usize) -> usize {
        let mut r = i;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut j = i;
        while self.0[j] != r {
            let next = self.0[j];
            self.0[j] = r;
            j = next;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// Groups observations into findings (severity is set later by the rules).
pub fn merge_observations(
    observations: Vec<Observation>,
    frame: &WorkFrame,
    cfg: &ReportConfig,
) -> Result<Vec<Finding>, ReportError> {
    let polys = observations
        .iter()
        .map(|o| frame.ring_to_work(&o.ground_polygon))
        .collect::<Result<Vec<_>, _>>()?;
    // Distances are only compared with tolerances of decimetres to metres: outlines simplified
    // to 5 cm keep the answer and make each polygon-to-polygon distance far cheaper.
    let coarse: Vec<geo::Polygon<f64>> = polys.iter().map(|p| p.simplify(0.05)).collect();
    let rects: Vec<_> = polys.iter().map(|p| p.bounding_rect()).collect();
    let tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>> = RTree::bulk_load(
        rects
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let r = (*r)?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    i,
                ))
            })
            .collect(),
    );
    let max_unc = observations
        .iter()
        .map(|o| o.position_uncertainty_m)
        .fold(0.0, f64::max);
    let mut uf = UnionFind((0..observations.len()).collect());
    for (i, o) in observations.iter().enumerate() {
        let Some(r) = rects[i] else { continue };
        let reach = o.position_uncertainty_m + max_unc + cfg.extra_tolerance_m;
        let env = AABB::from_corners(
            [r.min().x - reach, r.min().y - reach],
            [r.max().x + reach, r.max().y + reach],
        );
        for cand in tree.locate_in_envelope_intersecting(&env) {
            let j = cand.data;
            if j <= i || observations[j].class != o.class {
                continue;
            }
            // Two views of one photo never see the same defect twice: detections in one
            // photo were already separated by the model.
            if observations[j].photo == o.photo {
                continue;
            }
            // Already in one group: no need to measure.
            if uf.find(i) == uf.find(j) {
                continue;
            }
            let tol = o.position_uncertainty_m
                + observations[j].position_uncertainty_m
                + cfg.extra_tolerance_m;
            if Euclidean.distance(&coarse[i], &coarse[j]) <= tol {
                uf.union(i, j);
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..observations.len() {
        let r = uf.find(i);
        groups.entry(r).or_default().push(i);
    }
    let mut slots: Vec<Option<Observation>> = observations.into_iter().map(Some).collect();
    let mut findings = Vec::with_capacity(groups.len());
    for members in groups.into_values() {
        let best_global = *members
            .iter()
            .max_by(|&&a, &&b| {
                let sa = slots[a].as_ref().map_or(0.0, |o| o.view_score());
                let sb = slots[b].as_ref().map_or(0.0, |o| o.view_score());
                sa.total_cmp(&sb)
            })
            .expect("a group has at least one member");
        let area_m2 = polys[best_global].unsigned_area();
        // A sliver's area-weighted centroid can land far outside it (division by an area
        // near zero): keep it only when it lies within the outline's bounding box.
        let best_poly_centroid = match (polys[best_global].centroid(), rects[best_global]) {
            (Some(c), Some(r))
                if c.x() >= r.min().x
                    && c.x() <= r.max().x
                    && c.y() >= r.min().y
                    && c.y() <= r.max().y =>
            {
                Some(c)
            }
            (_, Some(r)) => Some(r.center().into()),
            (c, None) => c,
        };
        let obs: Vec<Observation> = members
            .iter()
            .map(|&i| slots[i].take().expect("each observation is in one group"))
            .collect();
        let best = members
            .iter()
            .position(|&m| m == best_global)
            .expect("best is a member");
        let b = &obs[best];
        let centroid = match best_poly_centroid {
            Some(c) => frame.to_wgs84([c.x(), c.y()])?,
            None => b.ground_polygon[0],
        };
        findings.push(Finding {
            id: String::new(),
            class: b.class.clone(),
            asset_kind: b.asset_kind,
            severity: Severity::Low,
            confidence: obs.iter().map(|o| o.confidence).fold(0.0, f32::max),
            length_m: b.length_m(),
            area_m2,
            polygon: b.ground_polygon.clone(),
            centroid,
            asset: None,
            best,
            observations: obs,
        });
    }
    // Stable ids: by class, then south-west to north-east.
    findings.sort_by(|a, b| {
        a.class
            .cmp(&b.class)
            .then(a.centroid[1].total_cmp(&b.centroid[1]))
            .then(a.centroid[0].total_cmp(&b.centroid[0]))
    });
    for (i, f) in findings.iter_mut().enumerate() {
        f.id = format!("F{:05}", i + 1);
    }
    Ok(findings)
}
