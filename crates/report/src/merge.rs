//! Merging observations of the same physical defect seen in several photos into one finding.
//!
//! Two observations *may* be the same defect when they have the same class and:
//!
//! - they come from different photos and their ground outlines come within the pair's
//!   tolerance ([`MergeRules::pair_tolerance_m`]): [`MergeRules::pose_sigmas`] times the
//!   combined relative uncertainty of the two photos' positions (`hypot` of each
//!   observation's [`Observation::relative_uncertainty_m`]: the aligned pose sigma, else the
//!   photo's GPS or RTK figure), clamped to [`MergeRules::min_pose_tolerance_m`] ..
//!   [`MergeRules::max_pose_tolerance_m`], plus [`ReportConfig::extra_tolerance_m`] for what
//!   poses do not explain (outlines that differ between views, heights); two crack
//!   fragments must also be roughly collinear when both are elongated (principal axes within
//!   [`MergeRules::crack_max_angle_deg`]);
//! - or they are segmentation pieces of one photo (crack fragments, blobs of one roof
//!   damage) whose outlines are within [`MergeRules::crack_gap_m`] of each other (a crack
//!   network the model saw in pieces: inside one photo positions are exact relative to each
//!   other, so the gap is small). Detector boxes of one photo are never merged.
//!
//! Pairs are joined closest first (single linkage, Kruskal order), but a join is refused when
//! it would make the group's extent (bounding-box diagonal) larger than the largest member's
//! extent plus the pair tolerance of two photos with the group's largest relative
//! uncertainty. That cap
//! is what stops transitive chains: fragments along a 100 m lane marking become a row of
//! short findings, never one finding along the street. A group never holds two detector boxes
//! (potholes) of one photo: non-maximum suppression already separated them.
//!
//! A finding's outline is the best photo's (confidence x closeness to the photo centre): its
//! one detection, or the convex hull of its fragments when the best photo saw the crack in
//! pieces; the crack's length is the summed length of the best photo's fragments.

use crate::frame::WorkFrame;
use crate::{Finding, Observation, ReportConfig, ReportError};
use besikta_core::Severity;
use geo::{
    Area, BoundingRect, Centroid, ConvexHull, Distance, Euclidean, MultiPolygon, Polygon, Simplify,
};
use rstar::{primitives::GeomWithData, primitives::Rectangle, RTree, AABB};
use std::collections::BTreeMap;

/// Tuning of the merge (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct MergeRules {
    /// Largest gap, metres, between two segmentation pieces of one photo that are one defect.
    pub crack_gap_m: f64,
    /// Largest angle, degrees, between two elongated crack observations that are one crack.
    pub crack_max_angle_deg: f64,
    /// Length / width ratio above which an outline has a direction.
    pub elongated_ratio: f64,
    /// Classes that come from detectors (boxes, one object each after non-maximum
    /// suppression) rather than segmentation outlines (which a model may cut into pieces);
    /// the process job fills it from the model manifests.
    pub box_classes: Vec<String>,
    /// How many sigmas of the pair's combined relative position uncertainty two
    /// observations of one defect may lie apart.
    pub pose_sigmas: f64,
    /// Floor of that distance, metres. Two views of one defect also differ by what poses do
    /// not explain: outlines cut differently per view, and raised things (roofs) shifted by
    /// parallax over a flat ground model; aligned poses (sigma 0.02-0.15 m) alone would give
    /// 0.3 m, which on simulated flights with 2 m GPS noise split 19 more findings of three
    /// flights (more duplicates, lower precision) than 1 m does.
    pub min_pose_tolerance_m: f64,
    /// Ceiling of that distance, metres: photos with metadata poses (1 m each) get the 2 m
    /// they always had.
    pub max_pose_tolerance_m: f64,
}

impl MergeRules {
    /// Largest distance, metres, between the outlines of two observations from different
    /// photos that may be one defect, for the photos' relative position uncertainties
    /// `sigma_a`, `sigma_b` (see the module docs).
    pub fn pair_tolerance_m(&self, sigma_a: f64, sigma_b: f64, extra_m: f64) -> f64 {
        (self.pose_sigmas * sigma_a.hypot(sigma_b))
            .clamp(self.min_pose_tolerance_m, self.max_pose_tolerance_m)
            + extra_m
    }
}

impl Default for MergeRules {
    fn default() -> Self {
        MergeRules {
            crack_gap_m: 0.3,
            crack_max_angle_deg: 30.0,
            elongated_ratio: 3.0,
            box_classes: vec!["pothole".into()],
            pose_sigmas: 2.0,
            min_pose_tolerance_m: 1.0,
            max_pose_tolerance_m: 2.0,
        }
    }
}

/// What the merge needs to know about one observation, in working metres.
struct Shape {
    coarse: Polygon<f64>,
    rect: Option<geo::Rect<f64>>,
    /// Bounding-box diagonal.
    extent: f64,
    /// Unit direction of the principal axis when the outline is elongated.
    axis: Option<[f64; 2]>,
    is_crack: bool,
    /// A detector's box (one object per box, separated by non-maximum suppression), as
    /// opposed to a segmentation outline, which a model may cut into pieces.
    is_box: bool,
}

/// Principal axis of a set of points, when their spread is elongated enough.
fn principal_axis(pts: &[[f64; 2]], ratio: f64) -> Option<[f64; 2]> {
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p[0] / n, y + p[1] / n));
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for p in pts {
        let (dx, dy) = (p[0] - mx, p[1] - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let tr = sxx + syy;
    let det = sxx * syy - sxy * sxy;
    let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
    let (l1, l2) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(0.0));
    if l1 <= 0.0 || l1 < ratio * ratio * l2 {
        return None;
    }
    let theta = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    Some([theta.cos(), theta.sin()])
}

/// A group being built: its bounding box and what bounds its growth.
#[derive(Clone)]
struct Group {
    rect: [f64; 4],
    max_extent: f64,
    max_unc: f64,
    /// Photos of the group's detector boxes: two boxes of one photo are two objects.
    photos: Vec<String>,
}

impl Group {
    fn joined(&self, o: &Group) -> Group {
        let mut photos = self.photos.clone();
        photos.extend(o.photos.iter().cloned());
        photos.sort();
        photos.dedup();
        Group {
            rect: [
                self.rect[0].min(o.rect[0]),
                self.rect[1].min(o.rect[1]),
                self.rect[2].max(o.rect[2]),
                self.rect[3].max(o.rect[3]),
            ],
            max_extent: self.max_extent.max(o.max_extent),
            max_unc: self.max_unc.max(o.max_unc),
            photos,
        }
    }
    fn diagonal(&self) -> f64 {
        (self.rect[2] - self.rect[0]).hypot(self.rect[3] - self.rect[1])
    }
}

/// Disjoint sets of indexes: `0[i]` is `i`'s parent, a root its own.
pub(crate) struct UnionFind(pub(crate) Vec<usize>);

impl UnionFind {
    /// `n` sets of one index each.
    pub(crate) fn new(n: usize) -> UnionFind {
        UnionFind((0..n).collect())
    }

    pub(crate) fn find(&mut self, i: usize) -> usize {
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
}

/// An R-tree of boxes `[x0, y0, x1, y1]`, each with its index.
pub(crate) fn rect_tree(
    rects: impl Iterator<Item = (usize, [f64; 4])>,
) -> RTree<GeomWithData<Rectangle<[f64; 2]>, usize>> {
    RTree::bulk_load(
        rects
            .map(|(i, r)| GeomWithData::new(Rectangle::from_corners([r[0], r[1]], [r[2], r[3]]), i))
            .collect(),
    )
}

/// Groups of observation indexes, each one physical defect (see the module docs).
fn group_indexes(
    observations: &[Observation],
    shapes: &[Shape],
    cfg: &ReportConfig,
) -> Vec<Vec<usize>> {
    let rules = &cfg.merge;
    let tree = rect_tree(shapes.iter().enumerate().filter_map(|(i, s)| {
        let r = s.rect?;
        Some((i, [r.min().x, r.min().y, r.max().x, r.max().y]))
    }));
    let max_unc = observations
        .iter()
        .map(Observation::relative_uncertainty_m)
        .fold(0.0, f64::max);
    let cos_max = rules.crack_max_angle_deg.to_radians().cos();
    // Candidate pairs with their distance.
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, o) in observations.iter().enumerate() {
        let Some(r) = shapes[i].rect else { continue };
        let reach = rules
            .pair_tolerance_m(o.relative_uncertainty_m(), max_unc, cfg.extra_tolerance_m)
            .max(rules.crack_gap_m);
        let env = AABB::from_corners(
            [r.min().x - reach, r.min().y - reach],
            [r.max().x + reach, r.max().y + reach],
        );
        for cand in tree.locate_in_envelope_intersecting(&env) {
            let j = cand.data;
            let p = &observations[j];
            if j <= i || p.class != o.class {
                continue;
            }
            let same_photo = p.photo == o.photo;
            let (si, sj) = (&shapes[i], &shapes[j]);
            let crack = si.is_crack && sj.is_crack;
            if same_photo && (si.is_box || sj.is_box) {
                continue;
            }
            let tol = if same_photo {
                rules.crack_gap_m
            } else {
                rules.pair_tolerance_m(
                    o.relative_uncertainty_m(),
                    p.relative_uncertainty_m(),
                    cfg.extra_tolerance_m,
                )
            };
            if crack && !same_photo {
                if let (Some(a), Some(b)) = (si.axis, sj.axis) {
                    if (a[0] * b[0] + a[1] * b[1]).abs() < cos_max {
                        continue;
                    }
                }
            }
            let d = Euclidean.distance(&si.coarse, &sj.coarse);
            if d <= tol {
                pairs.push((d, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));

    let mut uf = UnionFind::new(observations.len());
    let mut groups: Vec<Option<Group>> = observations
        .iter()
        .zip(shapes)
        .map(|(o, s)| {
            let rect = s
                .rect
                .map_or([0.0; 4], |r| [r.min().x, r.min().y, r.max().x, r.max().y]);
            Some(Group {
                rect,
                max_extent: s.extent,
                max_unc: o.relative_uncertainty_m(),
                photos: if s.is_box {
                    vec![o.photo.clone()]
                } else {
                    Vec::new()
                },
            })
        })
        .collect();
    for (_, i, j) in pairs {
        let (ri, rj) = (uf.find(i), uf.find(j));
        if ri == rj {
            continue;
        }
        let (Some(gi), Some(gj)) = (groups[ri].as_ref(), groups[rj].as_ref()) else {
            continue;
        };
        if gi.photos.iter().any(|p| gj.photos.contains(p)) {
            continue;
        }
        let g = gi.joined(gj);
        let cap =
            g.max_extent + rules.pair_tolerance_m(g.max_unc, g.max_unc, cfg.extra_tolerance_m);
        if g.diagonal() > cap {
            continue;
        }
        let (keep, gone) = (ri.min(rj), ri.max(rj));
        uf.0[gone] = keep;
        groups[keep] = Some(g);
        groups[gone] = None;
    }
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..observations.len() {
        let r = uf.find(i);
        out.entry(r).or_default().push(i);
    }
    out.into_values().collect()
}

/// Centroid of a polygon, or its bounding-box centre when the area-weighted centroid of a
/// sliver lands outside its box (division by an area near zero).
fn safe_centroid(p: &Polygon<f64>) -> Option<geo::Point<f64>> {
    let r = p.bounding_rect();
    match (p.centroid(), r) {
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
    }
}

/// Groups observations into findings (severity is set later by the rules; views, support
/// and the combined confidence by [`crate::evidence`]).
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
    let shapes: Vec<Shape> = polys
        .iter()
        .zip(&observations)
        .map(|(p, o)| {
            let rect = p.bounding_rect();
            let pts: Vec<[f64; 2]> = p.exterior().points().map(|q| [q.x(), q.y()]).collect();
            Shape {
                coarse: p.simplify(0.05),
                rect,
                extent: rect.map_or(0.0, |r| r.width().hypot(r.height())),
                axis: principal_axis(&pts, cfg.merge.elongated_ratio),
                is_crack: o.length_px.is_some(),
                is_box: cfg.merge.box_classes.contains(&o.class),
            }
        })
        .collect();
    let groups = group_indexes(&observations, &shapes, cfg);
    let mut slots: Vec<Option<Observation>> = observations.into_iter().map(Some).collect();
    let mut findings = Vec::with_capacity(groups.len());
    for members in groups {
        let best_global = *members
            .iter()
            .max_by(|&&a, &&b| {
                let sa = slots[a].as_ref().map_or(0.0, |o| o.view_score());
                let sb = slots[b].as_ref().map_or(0.0, |o| o.view_score());
                sa.total_cmp(&sb)
            })
            .expect("a group has at least one member");
        let obs: Vec<Observation> = members
            .iter()
            .map(|&i| slots[i].take().expect("each observation is in one group"))
            .collect();
        let best = members
            .iter()
            .position(|&m| m == best_global)
            .expect("best is a member");
        let b = &obs[best];
        // The best photo's pieces of this defect (one, unless a crack seen in fragments).
        let pieces: Vec<usize> = members
            .iter()
            .zip(&obs)
            .filter(|(_, o)| o.photo == b.photo)
            .map(|(&m, _)| m)
            .collect();
        let (outline, polygon, area_m2) = if pieces.len() > 1 {
            let hull =
                MultiPolygon::new(pieces.iter().map(|&m| polys[m].clone()).collect()).convex_hull();
            let area: f64 = pieces.iter().map(|&m| polys[m].unsigned_area()).sum();
            let ring: Vec<[f64; 2]> = hull
                .exterior()
                .points()
                .map(|q| frame.to_wgs84([q.x(), q.y()]))
                .collect::<Result<_, _>>()?;
            (hull, ring, area)
        } else {
            (
                polys[best_global].clone(),
                b.ground_polygon.clone(),
                polys[best_global].unsigned_area(),
            )
        };
        let length_m = {
            let lengths: Vec<f64> = obs
                .iter()
                .filter(|o| o.photo == b.photo)
                .filter_map(|o| o.length_m())
                .collect();
            (!lengths.is_empty()).then(|| lengths.iter().sum())
        };
        let centroid = match safe_centroid(&outline) {
            Some(c) => frame.to_wgs84([c.x(), c.y()])?,
            None => b.ground_polygon[0],
        };
        findings.push(Finding {
            id: String::new(),
            class: b.class.clone(),
            asset_kind: b.asset_kind,
            severity: Severity::Low,
            confidence: obs.iter().map(|o| o.confidence).fold(0.0, f32::max),
            length_m,
            area_m2,
            polygon,
            centroid,
            asset: None,
            best,
            views: 0,
            support: 0,
            observations: obs,
        });
    }
    sort_and_number(&mut findings);
    Ok(findings)
}

/// Stable ids: by class, then south-west to north-east.
pub(crate) fn sort_and_number(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.class
            .cmp(&b.class)
            .then(a.centroid[1].total_cmp(&b.centroid[1]))
            .then(a.centroid[0].total_cmp(&b.centroid[0]))
    });
    for (i, f) in findings.iter_mut().enumerate() {
        f.id = format!("F{:05}", i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::principal_axis;

    #[test]
    fn principal_axis_of_a_thin_diagonal_strip_and_none_for_a_square() {
        let strip = [[0.0, 0.0], [10.0, 10.0], [10.2, 9.8], [0.2, -0.2]];
        let a = principal_axis(&strip, 3.0).unwrap();
        assert!((a[0].abs() - a[1].abs()).abs() < 1e-6, "{a:?}");
        let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert!(principal_axis(&square, 3.0).is_none());
    }
}
