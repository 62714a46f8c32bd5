//! Scoring a processed flight against its truth: position errors, recall, precision,
//! duplicate findings and asset attribution.
//!
//! Both inputs are GeoJSON FeatureCollections in WGS 84: the simulator's `truth.geojson`
//! (LineStrings for cracks, Polygons otherwise, with `id`, `class`, `asset_id`) and the
//! pipeline's `findings.geojson` (any geometry, with `class` and `asset_id`). Distances are
//! computed in a local tangent plane at the truth's first vertex, exact to millimetres
//! over a flight.
//!
//! Matching: a finding matches a truth defect of the same class when its position is within
//! the tolerance; it is assigned to the nearest such defect. A finding's position is its
//! area centroid; its error is the distance to the defect's centroid (potholes, roof damage)
//! or to the crack's centreline (a crack finding may cover only part of the crack). Every
//! finding assigned to a defect beyond the first (nearest) one is a duplicate: the merger
//! should have fused it.
//!
//! Per class ([`ClassMetrics`], one row per class after the aliases): recall counts the
//! defects planted with that class, precision the findings reported with it. A finding of
//! the wrong class near a defect counts as the pooled figures count it: with
//! `class_must_match` (the default) it matches nothing, so it is a false positive of its
//! own class's row and does not find the defect; the row also counts it in
//! `near_other_class` (class confusion, not a finding in an empty place). Without
//! `class_must_match` it finds the defect (the defect's row gains the recall, the
//! finding's row the true finding). The rows sum to the pooled figures.

use crate::SimError;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// Options of [`evaluate_with`].
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// Farthest a finding may be from a defect and still be that defect, metres.
    pub tolerance_m: f64,
    /// Whether a finding must have the defect's class to match it.
    pub class_must_match: bool,
    /// Finding class -> truth class, for models whose classes are finer than the
    /// simulator's (the roof model's `missing_tile`, `debris`, `moss` are all what the
    /// simulator draws as `roof_damage`).
    pub class_aliases: Vec<(String, String)>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        let alias = |a: &str| (a.to_string(), "roof_damage".to_string());
        EvalConfig {
            tolerance_m: 2.0,
            class_must_match: true,
            class_aliases: vec![
                alias("missing_tile"),
                alias("debris"),
                alias("moss"),
                alias("roof-damage"),
            ],
        }
    }
}

/// The scores of one processed flight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub truth_count: usize,
    pub finding_count: usize,
    /// Defects found by at least one finding.
    pub matched: usize,
    /// Median position error over found defects (their nearest finding), metres.
    pub median_err_m: Option<f64>,
    /// 95th percentile (nearest rank) of the same errors, metres.
    pub p95_err_m: Option<f64>,
    /// Found defects / defects (1 when there are no defects).
    pub recall: f64,
    /// Findings that match a defect / findings (1 when there are no findings).
    pub precision: f64,
    /// Findings beyond the first for the same defect.
    pub duplicates: usize,
    /// Share of found defects whose nearest finding names the defect's asset.
    pub asset_id_accuracy: Option<f64>,
    /// Ids of the defects nobody found.
    pub missed: Vec<String>,
    /// Ids (or indexes) of the findings that match no defect.
    pub false_positives: Vec<String>,
    /// The same figures per class (after the aliases), sorted by class name; the rows sum
    /// to the pooled counts above.
    pub per_class: Vec<ClassMetrics>,
}

/// The scores of one class: its defects (recall) and the findings reported as it
/// (precision).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub class: String,
    /// Defects planted with this class.
    pub truth_count: usize,
    /// Of those, found by at least one finding.
    pub matched: usize,
    /// Findings reported with this class.
    pub finding_count: usize,
    /// Of those, findings that match a defect.
    pub findings_on_a_defect: usize,
    /// Findings beyond the first for this class's defects.
    pub duplicates: usize,
    /// Findings of this class that match no defect but lie within the tolerance of a
    /// defect of another class (counted in `finding_count`, not in `findings_on_a_defect`).
    pub near_other_class: usize,
    /// matched / truth_count (None when the class has no defects).
    pub recall: Option<f64>,
    /// findings_on_a_defect / finding_count (None when the class has no findings).
    pub precision: Option<f64>,
    /// Median position error over this class's found defects, metres.
    pub median_err_m: Option<f64>,
}

/// Scores findings against truth with the default tolerance (2 m, same class).
pub fn evaluate(truth: &Value, findings: &Value) -> Result<Metrics, SimError> {
    evaluate_with(truth, findings, &EvalConfig::default())
}

/// Reads both GeoJSON files and scores them.
pub fn evaluate_files(
    truth: &Path,
    findings: &Path,
    cfg: &EvalConfig,
) -> Result<Metrics, SimError> {
    let read = |p: &Path| -> Result<Value, SimError> {
        let text = std::fs::read_to_string(p).map_err(|e| SimError::Read {
            path: p.display().to_string(),
            message: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| SimError::Read {
            path: p.display().to_string(),
            message: format!("not JSON: {e}"),
        })
    };
    evaluate_with(&read(truth)?, &read(findings)?, cfg)
}

struct Item {
    id: String,
    class: String,
    asset_id: Option<String>,
    /// Outline or line in local metres.
    points: Vec<[f64; 2]>,
    is_line: bool,
}

/// Local east/north metres around an origin on the WGS 84 ellipsoid.
struct Local {
    lon0: f64,
    lat0: f64,
    m_per_deg_lon: f64,
    m_per_deg_lat: f64,
}

impl Local {
    fn new(lon0: f64, lat0: f64) -> Local {
        let a = 6_378_137.0;
        let e2 = 0.006_694_379_990_14;
        let s = lat0.to_radians().sin();
        let w = (1.0 - e2 * s * s).sqrt();
        let n = a / w;
        let m = a * (1.0 - e2) / (w * w * w);
        Local {
            lon0,
            lat0,
            m_per_deg_lon: n * lat0.to_radians().cos() * std::f64::consts::PI / 180.0,
            m_per_deg_lat: m * std::f64::consts::PI / 180.0,
        }
    }

    fn xy(&self, p: [f64; 2]) -> [f64; 2] {
        [
            (p[0] - self.lon0) * self.m_per_deg_lon,
            (p[1] - self.lat0) * self.m_per_deg_lat,
        ]
    }
}

fn features<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, SimError> {
    v.get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| SimError::Geojson {
            what: what.into(),
            message: "not a GeoJSON FeatureCollection (no \"features\" array)".into(),
        })
}

fn coords(v: &Value) -> Option<[f64; 2]> {
    let a = v.as_array()?;
    Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?])
}

/// The points of a geometry (exterior rings only) and whether it is a line.
fn geometry_points(g: &Value) -> Option<(Vec<[f64; 2]>, bool)> {
    let c = g.get("coordinates")?;
    let list = |v: &Value| -> Option<Vec<[f64; 2]>> { v.as_array()?.iter().map(coords).collect() };
    match g.get("type")?.as_str()? {
        "Point" => Some((vec![coords(c)?], false)),
        "LineString" => Some((list(c)?, true)),
        "MultiLineString" => Some((
            c.as_array()?.iter().filter_map(list).flatten().collect(),
            true,
        )),
        "Polygon" => Some((list(c.as_array()?.first()?)?, false)),
        "MultiPolygon" => Some((
            c.as_array()?
                .iter()
                .filter_map(|p| list(p.as_array()?.first()?))
                .flatten()
                .collect(),
            false,
        )),
        _ => None,
    }
}

fn items(v: &Value, what: &str, local: &mut Option<Local>) -> Result<Vec<Item>, SimError> {
    let mut out = Vec::new();
    for (i, f) in features(v, what)?.iter().enumerate() {
        let props = f.get("properties").cloned().unwrap_or(Value::Null);
        let text = |k: &str| props.get(k).and_then(Value::as_str).map(String::from);
        let Some((pts, is_line)) = f.get("geometry").and_then(geometry_points) else {
            return Err(SimError::Geojson {
                what: what.into(),
                message: format!("feature {i} has no usable geometry"),
            });
        };
        let Some(class) = text("class") else {
            return Err(SimError::Geojson {
                what: what.into(),
                message: format!("feature {i} has no \"class\" property"),
            });
        };
        if pts.is_empty() {
            continue;
        }
        let l = local.get_or_insert_with(|| Local::new(pts[0][0], pts[0][1]));
        let id = text("id")
            .or_else(|| f.get("id").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| format!("#{i}"));
        out.push(Item {
            id,
            class,
            asset_id: text("asset_id"),
            points: pts.into_iter().map(|p| l.xy(p)).collect(),
            is_line,
        });
    }
    Ok(out)
}

/// Area centroid of a ring; the vertex mean when it has no area; the point itself.
fn centroid(pts: &[[f64; 2]]) -> [f64; 2] {
    let n = pts.len();
    // Relative to the first vertex, so large coordinates do not cancel.
    let o = pts[0];
    let (mut cx, mut cy, mut a2) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (p, q) = (pts[i], pts[(i + 1) % n]);
        let (p, q) = ([p[0] - o[0], p[1] - o[1]], [q[0] - o[0], q[1] - o[1]]);
        let c = p[0] * q[1] - q[0] * p[1];
        a2 += c;
        cx += (p[0] + q[0]) * c;
        cy += (p[1] + q[1]) * c;
    }
    if a2.abs() > 1e-12 {
        [o[0] + cx / (3.0 * a2), o[1] + cy / (3.0 * a2)]
    } else {
        let s = pts
            .iter()
            .fold([0.0, 0.0], |s, p| [s[0] + p[0], s[1] + p[1]]);
        [s[0] / n as f64, s[1] / n as f64]
    }
}

fn dist_to_polyline(p: [f64; 2], line: &[[f64; 2]]) -> f64 {
    if line.len() == 1 {
        return ((p[0] - line[0][0]).powi(2) + (p[1] - line[0][1]).powi(2)).sqrt();
    }
    line.windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let l2 = dx * dx + dy * dy;
            let t = if l2 > 0.0 {
                (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (qx, qy) = (a[0] + t * dx, a[1] + t * dy);
            ((p[0] - qx).powi(2) + (p[1] - qy).powi(2)).sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

fn error_m(truth: &Item, finding_pos: [f64; 2]) -> f64 {
    if truth.is_line {
        dist_to_polyline(finding_pos, &truth.points)
    } else {
        let c = centroid(&truth.points);
        ((finding_pos[0] - c[0]).powi(2) + (finding_pos[1] - c[1]).powi(2)).sqrt()
    }
}

/// Scores findings against truth.
pub fn evaluate_with(
    truth: &Value,
    findings: &Value,
    cfg: &EvalConfig,
) -> Result<Metrics, SimError> {
    let mut local = None;
    let truth = items(truth, "truth", &mut local)?;
    let mut findings = items(findings, "findings", &mut local)?;
    for f in &mut findings {
        if let Some((_, to)) = cfg.class_aliases.iter().find(|(from, _)| *from == f.class) {
            f.class = to.clone();
        }
    }
    // For every defect, the findings assigned to it with their errors.
    let mut assigned: Vec<Vec<(f64, usize)>> = vec![Vec::new(); truth.len()];
    let mut false_positives = Vec::new();
    // Findings that match nothing, and whether a defect of another class is near each.
    let mut unmatched: Vec<(usize, bool)> = Vec::new();
    for (fi, f) in findings.iter().enumerate() {
        let pos = if f.is_line {
            f.points[f.points.len() / 2]
        } else {
            centroid(&f.points)
        };
        let best = truth
            .iter()
            .enumerate()
            .filter(|(_, t)| !cfg.class_must_match || t.class == f.class)
            .map(|(ti, t)| (error_m(t, pos), ti))
            .filter(|(e, _)| *e <= cfg.tolerance_m)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((e, ti)) => assigned[ti].push((e, fi)),
            None => {
                false_positives.push(f.id.clone());
                let near_other = truth
                    .iter()
                    .any(|t| t.class != f.class && error_m(t, pos) <= cfg.tolerance_m);
                unmatched.push((fi, near_other));
            }
        }
    }
    let per_class = class_rows(&truth, &findings, &assigned, &unmatched);
    let mut errors = Vec::new();
    let mut right_asset = 0usize;
    let mut duplicates = 0usize;
    let mut missed = Vec::new();
    for (ti, list) in assigned.iter_mut().enumerate() {
        list.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(e, fi)) = list.first() else {
            missed.push(truth[ti].id.clone());
            continue;
        };
        errors.push(e);
        duplicates += list.len() - 1;
        if findings[fi].asset_id.is_some() && findings[fi].asset_id == truth[ti].asset_id {
            right_asset += 1;
        }
    }
    errors.sort_by(f64::total_cmp);
    let matched = errors.len();
    let median_err_m = median(&errors);
    let p95_err_m = (!errors.is_empty()).then(|| {
        let rank = ((0.95 * errors.len() as f64).ceil() as usize).max(1);
        errors[rank - 1]
    });
    let matched_findings = findings.len() - false_positives.len();
    Ok(Metrics {
        truth_count: truth.len(),
        finding_count: findings.len(),
        matched,
        median_err_m,
        p95_err_m,
        recall: if truth.is_empty() {
            1.0
        } else {
            matched as f64 / truth.len() as f64
        },
        precision: if findings.is_empty() {
            1.0
        } else {
            matched_findings as f64 / findings.len() as f64
        },
        duplicates,
        asset_id_accuracy: (matched > 0).then(|| right_asset as f64 / matched as f64),
        missed,
        false_positives,
        per_class,
    })
}

/// Median of sorted values.
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    (n > 0).then(|| {
        if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        }
    })
}

/// One row per class present in the truth or the findings (classes already aliased):
/// `assigned[ti]` holds the (error, finding) pairs of defect `ti`, nearest first or not;
/// `unmatched` the findings that match no defect, with whether another class's defect
/// is near.
fn class_rows(
    truth: &[Item],
    findings: &[Item],
    assigned: &[Vec<(f64, usize)>],
    unmatched: &[(usize, bool)],
) -> Vec<ClassMetrics> {
    let mut classes: Vec<&str> = truth
        .iter()
        .chain(findings)
        .map(|i| i.class.as_str())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    classes
        .into_iter()
        .map(|class| {
            let mut errors = Vec::new();
            let mut duplicates = 0;
            let mut truth_count = 0;
            for (t, list) in truth.iter().zip(assigned) {
                if t.class != class {
                    continue;
                }
                truth_count += 1;
                if let Some(e) = list.iter().map(|a| a.0).min_by(f64::total_cmp) {
                    errors.push(e);
                    duplicates += list.len() - 1;
                }
            }
            errors.sort_by(f64::total_cmp);
            let finding_count = findings.iter().filter(|f| f.class == class).count();
            let misses: Vec<bool> = unmatched
                .iter()
                .filter(|(fi, _)| findings[*fi].class == class)
                .map(|(_, near)| *near)
                .collect();
            let findings_on_a_defect = finding_count - misses.len();
            let matched = errors.len();
            ClassMetrics {
                class: class.to_string(),
                truth_count,
                matched,
                finding_count,
                findings_on_a_defect,
                duplicates,
                near_other_class: misses.iter().filter(|n| **n).count(),
                recall: (truth_count > 0).then(|| matched as f64 / truth_count as f64),
                precision: (finding_count > 0)
                    .then(|| findings_on_a_defect as f64 / finding_count as f64),
                median_err_m: median(&errors),
            }
        })
        .collect()
}

/// The pooled and per-class figures as a plain-text table (one row per class, then
/// "all"): recall found/planted, precision true/total, duplicates, findings of the class
/// near a defect of another class, median error.
pub fn table(m: &Metrics) -> String {
    let ratio = |v: Option<f64>, a: usize, b: usize| match v {
        Some(v) => format!("{v:.3} ({a}/{b})"),
        None => format!("- ({a}/{b})"),
    };
    let err = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let mut rows = vec![[
        "class".to_string(),
        "recall (found/planted)".to_string(),
        "precision (true/total)".to_string(),
        "duplicates".to_string(),
        "near other class".to_string(),
        "median err m".to_string(),
    ]];
    for c in &m.per_class {
        rows.push([
            c.class.clone(),
            ratio(c.recall, c.matched, c.truth_count),
            ratio(c.precision, c.findings_on_a_defect, c.finding_count),
            c.duplicates.to_string(),
            c.near_other_class.to_string(),
            err(c.median_err_m),
        ]);
    }
    let on_a_defect = m.finding_count - m.false_positives.len();
    rows.push([
        "all".to_string(),
        ratio(Some(m.recall), m.matched, m.truth_count),
        ratio(Some(m.precision), on_a_defect, m.finding_count),
        m.duplicates.to_string(),
        m.per_class
            .iter()
            .map(|c| c.near_other_class)
            .sum::<usize>()
            .to_string(),
        err(m.median_err_m),
    ]);
    let width: Vec<usize> = (0..6)
        .map(|k| rows.iter().map(|r| r[k].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&width)
            .enumerate()
            .map(|(k, (c, w))| {
                if k == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Degrees of latitude/longitude per metre near 60.17 N (for building test cases).
    const LAT_PER_M: f64 = 1.0 / 111_412.0;
    const LON_PER_M: f64 = 1.0 / 55_502.0;

    fn at(e: f64, n: f64) -> [f64; 2] {
        [24.945 + e * LON_PER_M, 60.169 + n * LAT_PER_M]
    }

    fn square(e: f64, n: f64, half: f64) -> Value {
        json!([[
            at(e - half, n - half),
            at(e + half, n - half),
            at(e + half, n + half),
            at(e - half, n + half),
            at(e - half, n - half)
        ]])
    }

    fn truth() -> Value {
        json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square(0.0, 0.0, 0.4)},
             "properties": {"id": "D001", "class": "pothole", "asset_kind": "road", "asset_id": "way/1"}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [at(20.0, 0.0), at(23.0, 0.0)]},
             "properties": {"id": "D002", "class": "crack", "asset_kind": "road", "asset_id": "way/1"}},
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square(0.0, 30.0, 0.5)},
             "properties": {"id": "D003", "class": "roof_damage", "asset_kind": "roof", "asset_id": "way/9"}},
        ]})
    }

    fn finding(class: &str, geom: Value, asset: &str) -> Value {
        json!({"type": "Feature", "geometry": geom, "properties": {"class": class, "asset_id": asset}})
    }

    #[test]
    fn perfect_findings_score_perfectly() {
        let t = truth();
        let f = json!({"type": "FeatureCollection", "features": [
            finding("pothole", json!({"type": "Polygon", "coordinates": square(0.0, 0.0, 0.4)}), "way/1"),
            // A box around the middle metre of the crack: its centroid lies on the crack.
            finding("crack", json!({"type": "Polygon", "coordinates": square(21.0, 0.0, 0.5)}), "way/1"),
            finding("roof_damage", json!({"type": "Polygon", "coordinates": square(0.0, 30.0, 0.5)}), "way/9"),
        ]});
        let m = evaluate(&t, &f).unwrap();
        assert_eq!(
            (m.truth_count, m.finding_count, m.matched, m.duplicates),
            (3, 3, 3, 0)
        );
        assert_eq!(
            (m.recall, m.precision, m.asset_id_accuracy),
            (1.0, 1.0, Some(1.0))
        );
        assert!(
            m.median_err_m.unwrap() < 0.01 && m.p95_err_m.unwrap() < 0.01,
            "{m:?}"
        );
        assert!(m.missed.is_empty() && m.false_positives.is_empty());
    }

    #[test]
    fn offsets_duplicates_misses_and_wrong_assets_are_counted() {
        let t = truth();
        let f = json!({"type": "FeatureCollection", "features": [
            // 0.6 m east of the pothole, wrong asset.
            finding("pothole", json!({"type": "Polygon", "coordinates": square(0.6, 0.0, 0.4)}), "way/2"),
            // A second view of the same pothole, 1.2 m off: a duplicate.
            finding("pothole", json!({"type": "Polygon", "coordinates": square(0.0, 1.2, 0.4)}), "way/1"),
            // 1 m north of the crack line, right asset.
            finding("crack", json!({"type": "Polygon", "coordinates": square(21.5, 1.0, 0.3)}), "way/1"),
            // Nothing planted here: a false positive.
            finding("crack", json!({"type": "Polygon", "coordinates": square(50.0, 50.0, 0.3)}), "way/1"),
            // Right place, wrong class: a false positive, and the roof damage is missed.
            finding("pothole", json!({"type": "Polygon", "coordinates": square(0.0, 30.0, 0.5)}), "way/9"),
        ]});
        let m = evaluate(&t, &f).unwrap();
        assert_eq!(m.matched, 2);
        assert_eq!(m.duplicates, 1);
        assert_eq!(m.missed, vec!["D003".to_string()]);
        assert_eq!(m.false_positives, vec!["#3".to_string(), "#4".to_string()]);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.precision - 3.0 / 5.0).abs() < 1e-12);
        assert_eq!(m.asset_id_accuracy, Some(0.5));
        // Errors 0.6 m and 1.0 m: median 0.8, p95 the larger.
        assert!((m.median_err_m.unwrap() - 0.8).abs() < 0.005, "{m:?}");
        assert!((m.p95_err_m.unwrap() - 1.0).abs() < 0.005, "{m:?}");
        // Without the class rule, the roof finding counts.
        let loose = evaluate_with(
            &t,
            &f,
            &EvalConfig {
                class_must_match: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(loose.matched, 3);
    }

    /// Class, planted, found, findings, findings on a defect, duplicates, near other class.
    fn rows(m: &Metrics) -> Vec<(&str, usize, usize, usize, usize, usize, usize)> {
        m.per_class
            .iter()
            .map(|c| {
                (
                    c.class.as_str(),
                    c.truth_count,
                    c.matched,
                    c.finding_count,
                    c.findings_on_a_defect,
                    c.duplicates,
                    c.near_other_class,
                )
            })
            .collect()
    }

    /// The five findings of `offsets_duplicates_misses_and_wrong_assets_are_counted`.
    fn mixed_findings() -> Value {
        json!({"type": "FeatureCollection", "features": [
            finding("pothole", json!({"type": "Polygon", "coordinates": square(0.6, 0.0, 0.4)}), "way/2"),
            finding("pothole", json!({"type": "Polygon", "coordinates": square(0.0, 1.2, 0.4)}), "way/1"),
            finding("crack", json!({"type": "Polygon", "coordinates": square(21.5, 1.0, 0.3)}), "way/1"),
            finding("crack", json!({"type": "Polygon", "coordinates": square(50.0, 50.0, 0.3)}), "way/1"),
            finding("pothole", json!({"type": "Polygon", "coordinates": square(0.0, 30.0, 0.5)}), "way/9"),
        ]})
    }

    #[test]
    fn per_class_rows_have_known_answers_and_sum_to_the_pooled_figures() {
        let m = evaluate(&truth(), &mixed_findings()).unwrap();
        // crack: found, one true and one false finding. pothole: found, a duplicate, and a
        // pothole on the roof damage (false, near another class). roof damage: missed.
        assert_eq!(
            rows(&m),
            vec![
                ("crack", 1, 1, 2, 1, 0, 0),
                ("pothole", 1, 1, 3, 2, 1, 1),
                ("roof_damage", 1, 0, 0, 0, 0, 0),
            ]
        );
        let by = |c: &str| m.per_class.iter().find(|r| r.class == c).unwrap().clone();
        assert_eq!(
            (by("crack").recall, by("crack").precision),
            (Some(1.0), Some(0.5))
        );
        assert_eq!(by("pothole").precision, Some(2.0 / 3.0));
        assert_eq!(
            (by("roof_damage").recall, by("roof_damage").precision),
            (Some(0.0), None)
        );
        assert!(
            (by("pothole").median_err_m.unwrap() - 0.6).abs() < 0.005,
            "{m:?}"
        );
        assert!(
            (by("crack").median_err_m.unwrap() - 1.0).abs() < 0.005,
            "{m:?}"
        );
        assert_eq!(by("roof_damage").median_err_m, None);
        let sum = |f: fn(&ClassMetrics) -> usize| m.per_class.iter().map(f).sum::<usize>();
        assert_eq!(sum(|c| c.truth_count), m.truth_count);
        assert_eq!(sum(|c| c.matched), m.matched);
        assert_eq!(sum(|c| c.finding_count), m.finding_count);
        assert_eq!(
            sum(|c| c.findings_on_a_defect),
            m.finding_count - m.false_positives.len()
        );
        assert_eq!(sum(|c| c.duplicates), m.duplicates);
    }

    #[test]
    fn without_the_class_rule_a_wrong_class_finding_finds_the_defect() {
        let loose = evaluate_with(
            &truth(),
            &mixed_findings(),
            &EvalConfig {
                class_must_match: false,
                ..Default::default()
            },
        )
        .unwrap();
        // The pothole on the roof damage now finds it: recall in the roof row, a true
        // finding in the pothole row, and no class confusion left.
        assert_eq!(
            rows(&loose),
            vec![
                ("crack", 1, 1, 2, 1, 0, 0),
                ("pothole", 1, 1, 3, 3, 1, 0),
                ("roof_damage", 1, 1, 0, 0, 0, 0),
            ]
        );
    }

    #[test]
    fn aliased_roof_classes_share_one_row_and_the_table_prints_every_row() {
        let f = json!({"type": "FeatureCollection", "features": [
            finding("missing_tile", json!({"type": "Polygon", "coordinates": square(0.0, 30.2, 0.3)}), "way/9"),
            finding("moss", json!({"type": "Polygon", "coordinates": square(0.0, 29.5, 0.3)}), "way/9"),
            finding("moss", json!({"type": "Polygon", "coordinates": square(40.0, 30.0, 0.3)}), "way/9"),
        ]});
        let m = evaluate(&truth(), &f).unwrap();
        assert_eq!(
            rows(&m),
            vec![
                ("crack", 1, 0, 0, 0, 0, 0),
                ("pothole", 1, 0, 0, 0, 0, 0),
                ("roof_damage", 1, 1, 3, 2, 1, 0),
            ]
        );
        let text = table(&m);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("class") && lines[0].contains("recall (found/planted)"));
        let cells = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[1]),
            ["crack", "0.000", "(0/1)", "-", "(0/0)", "0", "0", "-"]
        );
        assert_eq!(
            cells(lines[3]),
            [
                "roof_damage",
                "1.000",
                "(1/1)",
                "0.667",
                "(2/3)",
                "1",
                "0",
                "0.20"
            ]
        );
        assert_eq!(
            cells(lines[4]),
            ["all", "0.333", "(1/3)", "0.667", "(2/3)", "1", "0", "0.20"]
        );
    }

    #[test]
    fn roof_model_classes_count_as_roof_damage() {
        let f = json!({"type": "FeatureCollection", "features": [
            finding("missing_tile", json!({"type": "Polygon", "coordinates": square(0.0, 30.2, 0.3)}), "way/9"),
        ]});
        let m = evaluate(&truth(), &f).unwrap();
        assert_eq!((m.matched, m.precision), (1, 1.0));
        assert!((m.median_err_m.unwrap() - 0.2).abs() < 0.005);
    }

    #[test]
    fn empty_findings_have_zero_recall_and_bad_input_is_an_error() {
        let m = evaluate(
            &truth(),
            &json!({"type": "FeatureCollection", "features": []}),
        )
        .unwrap();
        assert_eq!((m.recall, m.precision, m.median_err_m), (0.0, 1.0, None));
        let e = evaluate(&truth(), &json!({"type": "Feature"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("findings") && e.contains("FeatureCollection"),
            "{e}"
        );
    }
}
