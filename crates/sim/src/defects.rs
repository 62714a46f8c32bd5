//! Planting defects at known ground positions on the register's assets, and drawing them
//! into the ground texture: cracks as thin dark meandering polylines, potholes as dark
//! irregular blobs with broken rims, roof damage as dark patches.
//!
//! Positions are chosen so the truth is unambiguous: a road defect lies well inside one
//! carriageway and farther than that road's reach from every other road centreline (so the
//! nearest-centreline matcher must pick the planted asset), away from buildings; a roof
//! defect lies inside exactly one building, clear of its walls; defects are far enough
//! apart that a correct merger never fuses two of them.

use crate::rng::{fbm, Rng};
use crate::texture::{blend, is_carriageway, Texture};
use besikta_core::AssetKind;
use besikta_report::register::{Asset, AssetGeometry};
use geo::{Contains, Distance, Euclidean, Point};

/// The defect classes the simulator plants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefectClass {
    Crack,
    Pothole,
    RoofDamage,
}

impl DefectClass {
    /// The class name used in truth files and model manifests.
    pub fn name(self) -> &'static str {
        match self {
            DefectClass::Crack => "crack",
            DefectClass::Pothole => "pothole",
            DefectClass::RoofDamage => "roof_damage",
        }
    }

    pub fn asset_kind(self) -> AssetKind {
        match self {
            DefectClass::Crack | DefectClass::Pothole => AssetKind::Road,
            DefectClass::RoofDamage => AssetKind::Roof,
        }
    }
}

/// A defect's outline in working metres.
#[derive(Debug, Clone, PartialEq)]
pub enum DefectShape {
    /// A crack's centreline and its (mean) width.
    Line { points: Vec<[f64; 2]>, width_m: f64 },
    /// A closed ring (first point repeated last).
    Area { ring: Vec<[f64; 2]> },
}

impl DefectShape {
    /// The points that outline it: a crack's centreline, or the ring.
    pub fn outline(&self) -> &[[f64; 2]] {
        match self {
            DefectShape::Line { points, .. } => points,
            DefectShape::Area { ring } => ring,
        }
    }
}

/// One planted defect.
#[derive(Debug, Clone, PartialEq)]
pub struct Defect {
    /// `D001`, `D002`, ... in planting order.
    pub id: String,
    pub class: DefectClass,
    pub asset_id: String,
    pub shape: DefectShape,
    /// Centre of the defect (centroid of the area, midpoint of the crack), working metres.
    pub centre: [f64; 2],
    /// Seed of the drawing details (width wobble, interior texture).
    pub seed: u64,
    /// The real crack photo pasted here instead of a drawn crack, if any.
    pub pasted: Option<Pasted>,
}

/// Which crack photo was pasted onto a planted crack, and how much it darkened the ground.
#[derive(Debug, Clone, PartialEq)]
pub struct Pasted {
    /// The photo's name in the patch folder (`NAME` of `NAME.jpg`).
    pub name: String,
    /// Mean grey levels (0-255) by which the ground cells the crack covers got darker; at
    /// zero or below the crack cannot be seen.
    pub contrast: f64,
}

impl Defect {
    /// Length along a crack, metres.
    pub fn length_m(&self) -> Option<f64> {
        match &self.shape {
            DefectShape::Line { points, .. } => Some(polyline_length(points)),
            DefectShape::Area { .. } => None,
        }
    }

    /// Area on the ground, m² (a crack: length x mean width).
    pub fn area_m2(&self) -> f64 {
        match &self.shape {
            DefectShape::Line { points, width_m } => polyline_length(points) * width_m,
            DefectShape::Area { ring } => ring_area(ring).abs(),
        }
    }

    /// Distance from the centre to the farthest point of the outline.
    pub fn radius_m(&self) -> f64 {
        self.shape
            .outline()
            .iter()
            .map(|p| ((p[0] - self.centre[0]).powi(2) + (p[1] - self.centre[1]).powi(2)).sqrt())
            .fold(0.0, f64::max)
    }
}

pub fn polyline_length(points: &[[f64; 2]]) -> f64 {
    points
        .windows(2)
        .map(|w| ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt())
        .sum()
}

/// Signed shoelace area of a ring (closed or not).
pub fn ring_area(ring: &[[f64; 2]]) -> f64 {
    let Some(&o) = ring.first() else { return 0.0 };
    let n = ring.len();
    // Relative to the first vertex: with UTM coordinates (1e6 m) the products would
    // cancel catastrophically for a defect a metre across.
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            (a[0] - o[0]) * (b[1] - o[1]) - (b[0] - o[0]) * (a[1] - o[1])
        })
        .sum::<f64>()
        / 2.0
}

fn ring_centroid(ring: &[[f64; 2]]) -> [f64; 2] {
    let o = ring[0];
    let n = ring.len();
    let (mut cx, mut cy, mut a2) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (p, q) = (ring[i], ring[(i + 1) % n]);
        let (p, q) = ([p[0] - o[0], p[1] - o[1]], [q[0] - o[0], q[1] - o[1]]);
        let c = p[0] * q[1] - q[0] * p[1];
        a2 += c;
        cx += (p[0] + q[0]) * c;
        cy += (p[1] + q[1]) * c;
    }
    [o[0] + cx / (3.0 * a2), o[1] + cy / (3.0 * a2)]
}

/// Options of [`plant`].
#[derive(Debug, Clone)]
pub struct PlantConfig {
    pub count: usize,
    /// Where defects may go: `[xmin, ymin, xmax, ymax]`, working metres (the part of the
    /// flight every defect is seen well in).
    pub area: [f64; 4],
    /// Minimum gap between two defects' outlines, metres.
    pub min_gap_m: f64,
    /// Relative frequencies of crack, pothole and roof damage.
    pub weights: [f64; 3],
    /// Random candidate positions tried per defect before giving up.
    pub attempts: usize,
    /// The photos' ground footprints, rings in working metres. With `min_views` above 0 a
    /// defect goes only where at least that many of them hold its whole outline: the bounding
    /// box of a flight whose last line is short has a corner that no photo sees, and a defect
    /// planted there could never be found.
    pub footprints: Vec<Vec<[f64; 2]>>,
    /// How many footprints must hold a defect's whole outline (0: no check).
    pub min_views: usize,
}

impl Default for PlantConfig {
    fn default() -> Self {
        PlantConfig {
            count: 15,
            area: [0.0; 4],
            min_gap_m: 4.0,
            weights: [0.45, 0.3, 0.25],
            attempts: 4000,
            footprints: Vec::new(),
            min_views: 0,
        }
    }
}

/// Distance beyond a road's half-width within which the matcher considers that road.
const ROAD_REACH_M: f64 = 2.5;
/// How much nearer the planted road's centreline must be than any other road's.
const ROAD_MARGIN_M: f64 = 1.5;
/// Clearance kept between a road defect and the carriageway edge, metres.
const ROAD_EDGE_CLEARANCE_M: f64 = 0.4;
/// Clearance between a roof defect and the building's walls, metres.
const ROOF_EDGE_CLEARANCE_M: f64 = 1.0;
/// Clearance between a road defect and any building (roofs hide roads), metres.
const BUILDING_CLEARANCE_M: f64 = 1.5;

struct Road<'a> {
    asset: &'a Asset,
    lines: &'a geo::MultiLineString<f64>,
}

struct Roof<'a> {
    asset: &'a Asset,
    polys: &'a geo::MultiPolygon<f64>,
}

/// Plants defects on the assets; fewer than asked when the area has no room for more.
pub fn plant(assets: &[&Asset], cfg: &PlantConfig, seed: u64) -> Vec<Defect> {
    let roads: Vec<Road> = assets
        .iter()
        .filter_map(|a| match &a.geometry {
            AssetGeometry::Line(l) if a.kind == AssetKind::Road => {
                Some(Road { asset: a, lines: l })
            }
            _ => None,
        })
        .collect();
    let roofs: Vec<Roof> = assets
        .iter()
        .filter_map(|a| match &a.geometry {
            AssetGeometry::Area(p) if a.kind == AssetKind::Roof => {
                Some(Roof { asset: a, polys: p })
            }
            _ => None,
        })
        .collect();
    let mut rng = Rng::derive(seed, 0xDEFEC7);
    let mut out: Vec<Defect> = Vec::new();
    let [xmin, ymin, xmax, ymax] = cfg.area;
    let views: Vec<geo::Polygon<f64>> = cfg
        .footprints
        .iter()
        .map(|r| geo::Polygon::new(r.iter().map(|p| (p[0], p[1])).collect(), vec![]))
        .collect();
    for (i, mut class) in class_mix(cfg.count, &cfg.weights, &mut rng)
        .into_iter()
        .enumerate()
    {
        if class == DefectClass::RoofDamage && roofs.is_empty() {
            class = if i % 2 == 0 {
                DefectClass::Crack
            } else {
                DefectClass::Pothole
            };
        }
        for _ in 0..cfg.attempts {
            let p = [rng.range(xmin, xmax), rng.range(ymin, ymax)];
            let candidate = match class {
                DefectClass::RoofDamage => roof_defect(&roofs, p, &mut rng),
                _ => road_defect(&roads, &roofs, class, p, &mut rng),
            };
            let Some((asset_id, shape, centre)) = candidate else {
                continue;
            };
            let d = Defect {
                id: format!("D{:03}", i + 1),
                class,
                asset_id,
                shape,
                centre,
                seed: rng.next_u64(),
                pasted: None,
            };
            let outline = d.shape.outline();
            let in_area = outline
                .iter()
                .all(|q| q[0] > xmin && q[0] < xmax && q[1] > ymin && q[1] < ymax);
            let outline_inside = in_area
                && (cfg.min_views == 0
                    || views
                        .iter()
                        .filter(|f| {
                            outline
                                .iter()
                                .all(|q| f.contains(&geo::Point::new(q[0], q[1])))
                        })
                        .count()
                        >= cfg.min_views);
            let clear = out.iter().all(|o| {
                let gap = ((o.centre[0] - d.centre[0]).powi(2)
                    + (o.centre[1] - d.centre[1]).powi(2))
                .sqrt()
                    - o.radius_m()
                    - d.radius_m();
                gap >= cfg.min_gap_m
            });
            if outline_inside && clear {
                out.push(d);
                break;
            }
        }
    }
    // Ids follow the planted order even when some requests found no room.
    for (i, d) in out.iter_mut().enumerate() {
        d.id = format!("D{:03}", i + 1);
    }
    out
}

/// `count` classes in the proportions of `w` (largest remainder), in random order: a small
/// flight still gets every class.
fn class_mix(count: usize, w: &[f64; 3], rng: &mut Rng) -> Vec<DefectClass> {
    let classes = [
        DefectClass::Crack,
        DefectClass::Pothole,
        DefectClass::RoofDamage,
    ];
    let total: f64 = w.iter().sum();
    let exact: Vec<f64> = w.iter().map(|x| x / total * count as f64).collect();
    let mut n: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..3).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for &k in order.iter().take(count - n.iter().sum::<usize>()) {
        n[k] += 1;
    }
    let mut out: Vec<DefectClass> = (0..3)
        .flat_map(|k| std::iter::repeat_n(classes[k], n[k]))
        .collect();
    // Fisher-Yates with the seeded generator.
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i + 1));
    }
    out
}

/// The carriageway a point unambiguously belongs to, with its distance to the centreline:
/// the point is on it, clear of its edges and of buildings, and every other road's
/// centreline is at least [`ROAD_MARGIN_M`] farther away (the matcher picks the nearest
/// centreline, so position errors below the margin cannot change the answer).
fn unique_road<'a>(
    roads: &'a [Road<'a>],
    roofs: &[Roof],
    p: [f64; 2],
) -> Option<(&'a Road<'a>, f64)> {
    let pt = Point::new(p[0], p[1]);
    let mut dists: Vec<(f64, &Road)> = roads
        .iter()
        .map(|r| (Euclidean.distance(&pt, r.lines), r))
        .filter(|(d, r)| *d <= r.asset.width_m / 2.0 + ROAD_REACH_M)
        .collect();
    dists.sort_by(|a, b| a.0.total_cmp(&b.0));
    let &(d, road) = dists.first()?;
    if dists.get(1).is_some_and(|(d2, _)| d2 - d < ROAD_MARGIN_M) {
        return None;
    }
    on_carriageway(road, d, roofs, pt).then_some((road, d))
}

fn on_carriageway(road: &Road, d: f64, roofs: &[Roof], pt: Point<f64>) -> bool {
    is_carriageway(road.asset)
        && d <= road.asset.width_m / 2.0 - ROAD_EDGE_CLEARANCE_M
        && !roofs
            .iter()
            .any(|b| Euclidean.distance(&pt, b.polys) < BUILDING_CLEARANCE_M)
}

/// The road's direction near a point (unit vector of the nearest segment).
fn road_direction(lines: &geo::MultiLineString<f64>, p: [f64; 2]) -> [f64; 2] {
    let pt = Point::new(p[0], p[1]);
    let mut best = (f64::MAX, [1.0, 0.0]);
    for l in &lines.0 {
        for seg in l.lines() {
            let d = Euclidean.distance(&pt, &seg);
            let (dx, dy) = (seg.end.x - seg.start.x, seg.end.y - seg.start.y);
            let len = (dx * dx + dy * dy).sqrt();
            if d < best.0 && len > 0.0 {
                best = (d, [dx / len, dy / len]);
            }
        }
    }
    best.1
}

type Candidate = (String, DefectShape, [f64; 2]);

fn road_defect(
    roads: &[Road],
    roofs: &[Roof],
    class: DefectClass,
    p: [f64; 2],
    rng: &mut Rng,
) -> Option<Candidate> {
    let (road, centre_dist) = unique_road(roads, roofs, p)?;
    // Keep defects in the middle 60 % of the carriageway, where wheels and markings are.
    if centre_dist > 0.3 * road.asset.width_m {
        return None;
    }
    let (shape, centre) = match class {
        DefectClass::Crack => {
            let dir = road_direction(road.lines, p);
            let base = dir[1].atan2(dir[0]);
            // Longitudinal cracks run along the wheel paths; transverse ones across.
            let (heading, length) = if rng.unit() < 0.6 {
                (base + rng.range(-0.35, 0.35), rng.range(1.5, 4.0))
            } else {
                let across = base + std::f64::consts::FRAC_PI_2 + rng.range(-0.3, 0.3);
                (across, rng.range(1.2, (0.6 * road.asset.width_m).max(1.3)))
            };
            let points = meander(p, heading, length, 0.1, 0.12, rng);
            let width_m = rng.range(0.04, 0.08);
            let mid = points[points.len() / 2];
            (DefectShape::Line { points, width_m }, mid)
        }
        _ => {
            let ring = blob(p, rng.range(0.25, 0.6), 0.12, rng);
            let c = ring_centroid(&ring);
            (DefectShape::Area { ring }, c)
        }
    };
    // The matcher uses the defect's centre; every vertex must stay on the carriageway.
    match unique_road(roads, roofs, centre) {
        Some((r, _)) if r.asset.id == road.asset.id => {}
        _ => return None,
    }
    for q in shape.outline() {
        let qp = Point::new(q[0], q[1]);
        if !on_carriageway(road, Euclidean.distance(&qp, road.lines), roofs, qp) {
            return None;
        }
    }
    Some((road.asset.id.clone(), shape, centre))
}

fn roof_defect(roofs: &[Roof], p: [f64; 2], rng: &mut Rng) -> Option<Candidate> {
    let pt = Point::new(p[0], p[1]);
    let mut inside = roofs.iter().filter(|r| r.polys.contains(&pt));
    let roof = inside.next()?;
    if inside.next().is_some() {
        return None;
    }
    let radius = rng.range(0.35, 0.9);
    let walls_dist = roof
        .polys
        .0
        .iter()
        .flat_map(|poly| std::iter::once(poly.exterior()).chain(poly.interiors()))
        .map(|ring| Euclidean.distance(&pt, ring))
        .fold(f64::MAX, f64::min);
    if walls_dist < radius * 1.3 + ROOF_EDGE_CLEARANCE_M {
        return None;
    }
    let ring = blob(p, radius, 0.22, rng);
    let c = ring_centroid(&ring);
    Some((roof.asset.id.clone(), DefectShape::Area { ring }, c))
}

/// A random-walk polyline of `length` metres in steps of `step`, centred on `p`.
fn meander(
    p: [f64; 2],
    heading: f64,
    length: f64,
    step: f64,
    jitter: f64,
    rng: &mut Rng,
) -> Vec<[f64; 2]> {
    let n = (length / step).round().max(2.0) as usize;
    let mut pts = vec![[0.0, 0.0]];
    let mut drift = 0.0;
    for _ in 0..n {
        // The heading wanders but is pulled back towards the main direction.
        drift = 0.7 * drift + jitter * rng.normal();
        let h = heading + drift;
        let last = *pts.last().expect("starts with a point");
        pts.push([last[0] + step * h.cos(), last[1] + step * h.sin()]);
    }
    let mid = pts[pts.len() / 2];
    pts.iter()
        .map(|q| [q[0] - mid[0] + p[0], q[1] - mid[1] + p[1]])
        .collect()
}

/// An irregular closed blob around `p`: radius `r` modulated by a few random harmonics.
fn blob(p: [f64; 2], r: f64, roughness: f64, rng: &mut Rng) -> Vec<[f64; 2]> {
    let harmonics: Vec<(f64, f64, f64)> = [2.0, 3.0, 5.0, 7.0]
        .iter()
        .map(|&k| {
            (
                k,
                rng.range(0.0, roughness) / (k / 2.0),
                rng.range(0.0, std::f64::consts::TAU),
            )
        })
        .collect();
    let n = 36;
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let t = i as f64 / n as f64 * std::f64::consts::TAU;
            let m: f64 = harmonics
                .iter()
                .map(|(k, a, ph)| a * (k * t + ph).cos())
                .sum();
            let rr = r * (1.0 + m);
            [p[0] + rr * t.cos(), p[1] + rr * t.sin()]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// Draws the defects into the texture.
pub fn draw(tex: &mut Texture, defects: &[Defect]) {
    tex.par_bands(|band| {
        for d in defects {
            let mut rng = Rng::new(d.seed);
            match (&d.shape, d.class) {
                (DefectShape::Line { points, width_m }, _) => {
                    for w in points.windows(2) {
                        // The width wobbles along the crack, as real cracks open and close.
                        let hw = width_m / 2.0 * rng.range(0.6, 1.4);
                        let dark = rng.range(18.0, 38.0);
                        band.paint_segment(w[0], w[1], hw, &|_, _, _, _, old, cov| {
                            blend(old, [dark, dark, dark + 2.0], cov * 0.95)
                        });
                    }
                }
                (DefectShape::Area { ring }, DefectClass::Pothole) => {
                    // Broken, lighter asphalt around the hole, then the dark hole itself.
                    for w in ring.windows(2) {
                        band.paint_segment(w[0], w[1], 0.06, &|_, _, _, _, old, cov| {
                            blend(old, [150.0, 146.0, 140.0], cov * 0.8)
                        });
                    }
                    let s = d.seed;
                    band.fill_polygon(std::slice::from_ref(ring), &|x, y, _| {
                        let n = fbm(x, y, 0.15, s) - 0.5;
                        let v = (48.0 + 40.0 * n).clamp(20.0, 90.0);
                        [v as u8, (v * 0.97) as u8, (v * 0.92) as u8]
                    });
                }
                (DefectShape::Area { ring }, _) => {
                    let s = d.seed;
                    band.fill_polygon(std::slice::from_ref(ring), &|x, y, _| {
                        let n = fbm(x, y, 0.2, s) - 0.5;
                        let v = (34.0 + 36.0 * n).clamp(12.0, 80.0);
                        [v as u8, (v * 0.95) as u8, (v * 0.9) as u8]
                    });
                }
            }
        }
    });
}

/// The register's assets (kinds the simulator paints) whose extent meets a box.
pub fn assets_in(assets: &[Asset], bbox: [f64; 4]) -> Vec<&Asset> {
    use geo::BoundingRect;
    assets
        .iter()
        .filter(|a| {
            let r = match &a.geometry {
                AssetGeometry::Line(l) => l.bounding_rect(),
                AssetGeometry::Area(p) => p.bounding_rect(),
            };
            r.is_some_and(|r| {
                r.max().x >= bbox[0]
                    && r.min().x <= bbox[2]
                    && r.max().y >= bbox[1]
                    && r.min().y <= bbox[3]
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, MultiLineString, MultiPolygon, Polygon};

    fn assets() -> Vec<Asset> {
        vec![
            Asset {
                id: "way/1".into(),
                name: None,
                kind: AssetKind::Road,
                class: Some("primary".into()),
                width_m: 10.0,
                geometry: AssetGeometry::Line(MultiLineString::new(vec![LineString::from(vec![
                    (-100.0, 0.0),
                    (100.0, 0.0),
                ])])),
            },
            Asset {
                id: "way/2".into(),
                name: None,
                kind: AssetKind::Roof,
                class: Some("yes".into()),
                width_m: 0.0,
                geometry: AssetGeometry::Area(MultiPolygon::new(vec![Polygon::new(
                    LineString::from(vec![
                        (-30.0, 15.0),
                        (30.0, 15.0),
                        (30.0, 40.0),
                        (-30.0, 40.0),
                        (-30.0, 15.0),
                    ]),
                    vec![],
                )])),
            },
        ]
    }

    #[test]
    fn defects_land_on_their_assets_apart_from_each_other() {
        let a = assets();
        let refs: Vec<&Asset> = a.iter().collect();
        let cfg = PlantConfig {
            count: 12,
            area: [-50.0, -20.0, 50.0, 45.0],
            ..Default::default()
        };
        let ds = plant(&refs, &cfg, 42);
        assert!(ds.len() >= 10, "planted {}", ds.len());
        for d in &ds {
            match d.class {
                DefectClass::Crack | DefectClass::Pothole => {
                    assert_eq!(d.asset_id, "way/1");
                    assert!(d.centre[1].abs() <= 3.0 + 1e-9, "{d:?}");
                }
                DefectClass::RoofDamage => {
                    assert_eq!(d.asset_id, "way/2");
                    assert!(d.centre[1] > 16.0 && d.centre[1] < 39.0);
                }
            }
            assert!(d.area_m2() > 0.0);
        }
        for (i, a) in ds.iter().enumerate() {
            for b in &ds[i + 1..] {
                let dist = ((a.centre[0] - b.centre[0]).powi(2)
                    + (a.centre[1] - b.centre[1]).powi(2))
                .sqrt();
                assert!(dist - a.radius_m() - b.radius_m() >= 4.0 - 1e-9);
            }
        }
        // Same seed, same defects.
        assert_eq!(plant(&refs, &cfg, 42), ds);
        let classes: std::collections::HashSet<_> = ds.iter().map(|d| d.class).collect();
        assert_eq!(classes.len(), 3, "all three classes planted");
    }

    #[test]
    fn defects_go_only_where_enough_photos_see_them_whole() {
        let a = assets();
        let refs: Vec<&Asset> = a.iter().collect();
        // Three photos: west and middle overlap in x -30..-10 over the road, the middle and
        // the east one in 10..30; x -10..10 is seen by the middle photo only, and the east
        // photo does not reach the roof (y over 12).
        let square = |x0: f64, y0: f64, x1: f64, y1: f64| {
            vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        };
        let footprints = vec![
            square(-50.0, -20.0, -10.0, 45.0),
            square(-30.0, -20.0, 30.0, 45.0),
            square(10.0, -20.0, 50.0, 12.0),
        ];
        let cfg = PlantConfig {
            count: 12,
            area: [-50.0, -20.0, 50.0, 45.0],
            footprints: footprints.clone(),
            min_views: 2,
            ..Default::default()
        };
        let ds = plant(&refs, &cfg, 42);
        assert!(ds.len() >= 6, "planted {}", ds.len());
        for d in &ds {
            let outline = d.shape.outline();
            let views = footprints
                .iter()
                .filter(|f| {
                    outline.iter().all(|q| {
                        q[0] > f[0][0] && q[0] < f[2][0] && q[1] > f[0][1] && q[1] < f[2][1]
                    })
                })
                .count();
            assert!(views >= 2, "{} seen whole by {views} photo(s)", d.id);
            assert!(d.centre[0] < -10.0 || d.centre[0] > 10.0, "{d:?}");
        }
        // Without the footprints the same seed plants in the middle strip too.
        let free = plant(
            &refs,
            &PlantConfig {
                min_views: 0,
                ..cfg
            },
            42,
        );
        assert!(free.iter().any(|d| d.centre[0].abs() < 10.0));
    }

    #[test]
    fn crack_length_and_blob_area_are_measured_on_the_ground() {
        let mut rng = Rng::new(3);
        let pts = meander([0.0, 0.0], 0.0, 2.0, 0.1, 0.0, &mut rng);
        assert!((polyline_length(&pts) - 2.0).abs() < 1e-9);
        let ring = blob([5.0, 5.0], 1.0, 0.0, &mut rng);
        // A 36-gon of radius 1: 36/2 sin(10°) = 3.1256.
        assert!((ring_area(&ring) - 18.0 * (10f64.to_radians()).sin()).abs() < 1e-9);
        let c = ring_centroid(&ring);
        assert!((c[0] - 5.0).abs() < 1e-9 && (c[1] - 5.0).abs() < 1e-9);
    }

    #[test]
    fn drawn_defects_are_dark_on_the_texture() {
        let a = assets();
        let refs: Vec<&Asset> = a.iter().collect();
        let mut tex = Texture::new(-50.0, -20.0, 50.0, 45.0, 0.02);
        crate::texture::paint_assets(&mut tex, &refs, 1);
        let cfg = PlantConfig {
            count: 6,
            area: [-50.0, -20.0, 50.0, 45.0],
            ..Default::default()
        };
        let ds = plant(&refs, &cfg, 5);
        draw(&mut tex, &ds);
        for d in &ds {
            let p = match &d.shape {
                DefectShape::Line { points, .. } => points[points.len() / 2],
                DefectShape::Area { .. } => d.centre,
            };
            let c = tex.at(p[0], p[1]).unwrap();
            assert!(c[0] < 95, "{} at {p:?} is {c:?}", d.id);
        }
    }
}
