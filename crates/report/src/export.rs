//! Writing findings and work orders: RFC 7946 GeoJSON, GeoPackage through GDAL, and CSV.

use crate::frame::{parse_crs, wgs84};
use crate::quantity::WorkOrder;
use crate::{Finding, Report, ReportError};
use gdal::spatial_ref::CoordTransform;
use gdal::vector::{FieldValue, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType};
use gdal::DriverManager;
use serde_json::{json, Value};
use std::path::Path;

fn write_err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Write {
        path: path.display().to_string(),
        message: crate::gdal_errors::explained(e),
    }
}

/// Twice the signed area of a ring (positive = counter-clockwise in x/y).
fn signed_area2(ring: &[[f64; 2]]) -> f64 {
    ring.windows(2)
        .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
        .sum()
}

/// A closed, counter-clockwise ring, as RFC 7946 wants exteriors.
pub fn ccw_closed(ring: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut r: Vec<[f64; 2]> = ring.to_vec();
    if r.first() != r.last() {
        if let Some(&f) = r.first() {
            r.push(f);
        }
    }
    if signed_area2(&r) < 0.0 {
        r.reverse();
    }
    r
}

/// Coordinates are written to 7 decimals: 1e-7 degrees is about 1 cm, enough, and keeps
/// files small.
const SCALE: f64 = 1e7;

fn round7(p: [f64; 2]) -> Value {
    json!([
        (p[0] * SCALE).round() / SCALE,
        (p[1] * SCALE).round() / SCALE
    ])
}

/// Smallest outline worth a finding, m²: below it rounding to 1 cm leaves no shape.
pub const MIN_RING_AREA_M2: f64 = 1e-4;

/// A WGS 84 ring as RFC 7946 wants it once written: rounded to 7 decimals *first*, then
/// repeated positions removed, closed, counter-clockwise for an exterior (clockwise for a
/// hole), with at least 4 positions and an area of at least [`MIN_RING_AREA_M2`]. `None`
/// for a ring that rounding leaves degenerate: a sliver. Orientation and area are decided
/// on the rounded integers, exactly, so no reader can find the written ring clockwise.
pub fn rfc7946_ring(ring: &[[f64; 2]], exterior: bool) -> Option<Vec<[f64; 2]>> {
    let mut pts: Vec<[i64; 2]> = Vec::with_capacity(ring.len() + 1);
    for p in ring {
        if !(p[0].is_finite() && p[1].is_finite()) {
            return None;
        }
        let q = [(p[0] * SCALE).round() as i64, (p[1] * SCALE).round() as i64];
        if pts.last() != Some(&q) {
            pts.push(q);
        }
    }
    while pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    if pts.len() < 3 {
        return None;
    }
    if !is_simple(&pts) {
        // A ring that crosses or touches itself (a loop of a simplified outline, or one
        // that rounding made touch) is no valid polygon: write the convex hull of its
        // positions instead, which covers the whole defect.
        pts = convex_hull_ccw(pts);
        if pts.len() < 3 {
            return None;
        }
    }
    let n = pts.len();
    let area2: i128 = (0..n)
        .map(|i| orient([0, 0], pts[i], pts[(i + 1) % n]))
        .sum();
    // One unit of the grid is 1e-7 degrees: about 1.1 cm north-south, cos(lat) of that east-west.
    let lat = pts[0][1] as f64 / SCALE;
    let unit_m2 = 0.011_132 * 0.011_132 * lat.to_radians().cos().abs();
    if area2 == 0 || (area2.unsigned_abs() as f64) / 2.0 * unit_m2 < MIN_RING_AREA_M2 {
        return None;
    }
    if (area2 < 0) == exterior {
        // Keep the first position first.
        pts[1..].reverse();
    }
    pts.push(pts[0]);
    Some(
        pts.iter()
            .map(|q| [q[0] as f64 / SCALE, q[1] as f64 / SCALE])
            .collect(),
    )
}

/// Sign of the turn p -> q -> r on the integer grid: exact.
fn orient(p: [i64; 2], q: [i64; 2], r: [i64; 2]) -> i128 {
    let d = |a: i64, b: i64| i128::from(a) - i128::from(b);
    d(q[0], p[0]) * d(r[1], p[1]) - d(q[1], p[1]) * d(r[0], p[0])
}

/// Whether `r`, collinear with `p`-`q`, lies within their bounding box.
fn on_segment(p: [i64; 2], q: [i64; 2], r: [i64; 2]) -> bool {
    r[0] >= p[0].min(q[0])
        && r[0] <= p[0].max(q[0])
        && r[1] >= p[1].min(q[1])
        && r[1] <= p[1].max(q[1])
}

/// Whether closed segments `a`-`b` and `c`-`d` share a point.
fn segments_meet(a: [i64; 2], b: [i64; 2], c: [i64; 2], d: [i64; 2]) -> bool {
    let (o1, o2, o3, o4) = (
        orient(a, b, c),
        orient(a, b, d),
        orient(c, d, a),
        orient(c, d, b),
    );
    if o1.signum() * o2.signum() < 0 && o3.signum() * o4.signum() < 0 {
        return true;
    }
    (o1 == 0 && on_segment(a, b, c))
        || (o2 == 0 && on_segment(a, b, d))
        || (o3 == 0 && on_segment(c, d, a))
        || (o4 == 0 && on_segment(c, d, b))
}

/// Whether an open ring (first position not repeated, no repeated neighbours) neither
/// crosses nor touches itself, exactly: neighbouring edges meet only at their shared
/// position (no spike back along the previous edge), others not at all.
fn is_simple(pts: &[[i64; 2]]) -> bool {
    let n = pts.len();
    let edge = |i: usize| (pts[i], pts[(i + 1) % n]);
    for i in 0..n {
        let (a, b) = edge(i);
        let (_, c) = edge((i + 1) % n);
        // A spike: the next edge turns straight back over this one.
        if orient(a, b, c) == 0 && (on_segment(a, b, c) || on_segment(b, c, a)) {
            return false;
        }
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue; // neighbours through the closing position
            }
            let (c, d) = edge(j);
            if segments_meet(a, b, c, d) {
                return false;
            }
        }
    }
    true
}

/// Convex hull of grid positions, counter-clockwise, open (Andrew's monotone chain).
fn convex_hull_ccw(mut pts: Vec<[i64; 2]>) -> Vec<[i64; 2]> {
    pts.sort_unstable();
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut hull: Vec<[i64; 2]> = Vec::with_capacity(pts.len() + 1);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[i64; 2]>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && orient(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// Removes findings whose outline is a sliver once written ([`rfc7946_ring`]), counting
/// them under `sliver` in `dropped`.
pub fn drop_slivers(
    findings: Vec<Finding>,
    dropped: &mut std::collections::BTreeMap<String, usize>,
) -> Vec<Finding> {
    let before = findings.len();
    let kept: Vec<Finding> = findings
        .into_iter()
        .filter(|f| rfc7946_ring(&f.polygon, true).is_some())
        .collect();
    if kept.len() < before {
        *dropped.entry("sliver".to_string()).or_default() += before - kept.len();
    }
    kept
}

/// Properties shared by the GeoJSON and the GeoPackage.
fn finding_properties(f: &Finding) -> serde_json::Map<String, Value> {
    let a = f.asset.as_ref();
    let obs: Vec<Value> = f
        .observations
        .iter()
        .map(|o| {
            let mut v = json!({
                "photo": o.photo,
                "confidence": o.confidence,
                "bbox_px": o.pixel_bbox,
                "polygon_px": o.pixel_polygon,
                "gsd_cm": o.gsd_cm,
                "model": o.model.as_ref().map(|m| m.name.as_str()),
                "model_version": o.model.as_ref().map(|m| m.version.as_str()),
            });
            if let Some(s) = o.sides_grey {
                v["sides_grey"] = json!(s);
            }
            v
        })
        .collect();
    let v = json!({
        "id": f.id,
        "class": f.class,
        "asset_kind": f.asset_kind,
        "severity": f.severity,
        "confidence": f.confidence,
        "views": f.views,
        "support": f.support,
        "length_m": f.length_m,
        "area_m2": f.area_m2,
        "asset_id": a.map(|a| a.asset_id.clone()),
        "asset_name": a.and_then(|a| a.asset_name.clone()),
        "chainage_m": a.and_then(|a| a.chainage_m),
        "offset_m": a.and_then(|a| a.offset_m),
        "matched": a.is_some(),
        "observation_count": f.observations.len(),
        "observations": obs,
        "best_photo": f.best_photo(),
    });
    match v {
        Value::Object(mut m) => {
            // Only on findings merged over several classes of a class group, so the bytes
            // of every other finding (and the server's findings pages) stay as they were.
            let classes = crate::classgroup::contributing_classes(f);
            if classes.len() > 1 {
                m.insert("classes".into(), json!(classes));
            }
            m
        }
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// `findings.geojson`: RFC 7946 (WGS 84 lon/lat, CCW exteriors after rounding, no `crs`
/// member). A finding whose outline is a sliver ([`rfc7946_ring`]) is left out; reports
/// from [`crate::build_report`] have none (they are dropped, and counted, before ids).
pub fn findings_geojson(findings: &[Finding]) -> Value {
    let features: Vec<Value> = findings.iter().filter_map(finding_feature).collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// One finding as an RFC 7946 feature, as `findings.geojson` and the service's API write
/// it; `None` for a sliver ([`rfc7946_ring`]).
pub fn finding_feature(f: &Finding) -> Option<Value> {
    let ring = rfc7946_ring(&f.polygon, true)?;
    Some(json!({
        "type": "Feature",
        "id": f.id,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": finding_properties(f),
    }))
}

/// `workorders.geojson`: one MultiPoint feature per work order (the findings' centroids).
pub fn workorders_geojson(orders: &[WorkOrder]) -> Value {
    let features: Vec<Value> = orders
        .iter()
        .map(|w| {
            json!({
                "type": "Feature",
                "geometry": {"type": "MultiPoint",
                    "coordinates": w.points.iter().map(|p| round7(*p)).collect::<Vec<_>>()},
                "properties": {
                    "priority": w.priority, "asset_id": w.asset_id, "asset_name": w.asset_name,
                    "asset_kind": w.asset_kind, "class": w.class, "count": w.count,
                    "length_m": round2(w.length_m), "area_m2": round2(w.area_m2),
                    "worst_severity": w.worst_severity, "condition_score": w.condition_score.map(round2),
                    "location": w.location,
                    "photos": w.photos.iter().map(|p| photo_name(p)).collect::<Vec<_>>(),
                    "finding_ids": w.finding_ids,
                },
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The file name of a photo path (`/srv/besikta/flights/7/DJI_0001.JPG` -> `DJI_0001.JPG`):
/// work orders go to contractors, who need the photo's name, not the server's folders.
pub fn photo_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// One CSV cell: quoted when needed (RFC 4180), and text that a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`, tab, carriage return first: OWASP's CSV injection rule)
/// prefixed with `'`, so a register name such as `=HYPERLINK(...)` stays text. Numbers we
/// wrote ("-0.50") are left as numbers.
fn csv_field(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The columns of `workorders.csv`.
const WORKORDER_COLUMNS: &str = "priority,asset_id,asset_name,asset_kind,class,count,length_m,area_m2,worst_severity,condition_score,location,photos,finding_ids";

/// `workorders.csv`, one row per asset and defect type, most urgent first.
pub fn workorders_csv(orders: &[WorkOrder]) -> String {
    let mut out = format!("{WORKORDER_COLUMNS}\n");
    for w in orders {
        push_workorder_row(&mut out, None, w);
    }
    out
}

/// Work orders of several groups (flights) in one CSV: a first column `key` holding each
/// group's name, then the columns of [`workorders_csv`], groups in the order given.
pub fn workorders_csv_grouped(key: &str, groups: &[(String, Vec<WorkOrder>)]) -> String {
    let mut out = format!("{},{WORKORDER_COLUMNS}\n", csv_field(key));
    for (name, orders) in groups {
        for w in orders {
            push_workorder_row(&mut out, Some(name), w);
        }
    }
    out
}

fn push_workorder_row(out: &mut String, first: Option<&str>, w: &WorkOrder) {
    let row = [
        w.priority.to_string(),
        w.asset_id.clone().unwrap_or_default(),
        w.asset_name.clone().unwrap_or_default(),
        w.asset_kind.as_str().to_string(),
        w.class.clone(),
        w.count.to_string(),
        format!("{:.2}", w.length_m),
        format!("{:.2}", w.area_m2),
        w.worst_severity.as_str().to_string(),
        w.condition_score
            .map(|s| format!("{s:.1}"))
            .unwrap_or_default(),
        w.location.clone(),
        w.photos
            .iter()
            .map(|p| photo_name(p))
            .collect::<Vec<_>>()
            .join(" "),
        w.finding_ids.join(" "),
    ];
    let line: Vec<String> = first
        .into_iter()
        .chain(row.iter().map(String::as_str))
        .map(csv_field)
        .collect();
    out.push_str(&line.join(","));
    out.push('\n');
}

/// Writes `findings.gpkg` with one polygon layer `findings` in `crs` (WKT, `EPSG:n`, ...).
pub fn findings_gpkg(path: &Path, findings: &[Finding], crs: &str) -> Result<(), ReportError> {
    findings_gpkg_with(path, findings, crs, &[])
}

/// A text field the caller adds to each finding of a GeoPackage (the service's review
/// columns): its name and one value per finding, in the order of the findings.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraField {
    pub name: String,
    pub values: Vec<Option<String>>,
}

/// [`findings_gpkg`] with `extra` text fields after the standard ones.
pub fn findings_gpkg_with(
    path: &Path,
    findings: &[Finding],
    crs: &str,
    extra: &[ExtraField],
) -> Result<(), ReportError> {
    crate::gdal_errors::install();
    crate::gdal_errors::take();
    let target = parse_crs(crs)?;
    let to_target = CoordTransform::new(&wgs84(), &target).map_err(|e| write_err(path, e))?;
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| write_err(path, e))?;
    }
    let driver = DriverManager::get_driver_by_name("GPKG").map_err(|e| write_err(path, e))?;
    let mut ds = driver
        .create_vector_only(path)
        .map_err(|e| write_err(path, e))?;
    let layer = ds
        .create_layer(LayerOptions {
            name: "findings",
            srs: Some(&target),
            ty: OGRwkbGeometryType::wkbPolygon,
            options: None,
        })
        .map_err(|e| write_err(path, e))?;
    let fields: [(&str, OGRFieldType::Type); 17] = [
        ("finding_id", OGRFieldType::OFTString),
        ("class", OGRFieldType::OFTString),
        ("asset_kind", OGRFieldType::OFTString),
        ("severity", OGRFieldType::OFTString),
        ("confidence", OGRFieldType::OFTReal),
        ("views", OGRFieldType::OFTInteger),
        ("support", OGRFieldType::OFTInteger),
        ("length_m", OGRFieldType::OFTReal),
        ("area_m2", OGRFieldType::OFTReal),
        ("asset_id", OGRFieldType::OFTString),
        ("asset_name", OGRFieldType::OFTString),
        ("chainage_m", OGRFieldType::OFTReal),
        ("offset_m", OGRFieldType::OFTReal),
        ("matched", OGRFieldType::OFTInteger),
        ("observation_count", OGRFieldType::OFTInteger),
        ("best_photo", OGRFieldType::OFTString),
        ("observations", OGRFieldType::OFTString),
    ];
    layer
        .create_defn_fields(&fields)
        .map_err(|e| write_err(path, e))?;
    let extra_fields: Vec<(&str, OGRFieldType::Type)> = extra
        .iter()
        .map(|x| (x.name.as_str(), OGRFieldType::OFTString))
        .collect();
    layer
        .create_defn_fields(&extra_fields)
        .map_err(|e| write_err(path, e))?;
    for (i, f) in findings.iter().enumerate() {
        // The same outline as the GeoJSON's, slivers left out alike.
        let Some(ring) = rfc7946_ring(&f.polygon, true) else {
            continue;
        };
        let wkt = format!(
            "POLYGON(({}))",
            ring.iter()
                .map(|p| format!("{} {}", p[0], p[1]))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut geom = gdal::vector::Geometry::from_wkt(&wkt).map_err(|e| write_err(path, e))?;
        geom.transform_inplace(&to_target)
            .map_err(|e| write_err(path, e))?;
        let props = finding_properties(f);
        let str_of = |k: &str| -> Option<FieldValue> {
            match props.get(k)? {
                Value::String(s) => Some(FieldValue::StringValue(s.clone())),
                Value::Null => None,
                other => Some(FieldValue::StringValue(other.to_string())),
            }
        };
        let real_of = |k: &str| props.get(k)?.as_f64().map(FieldValue::RealValue);
        let values: Vec<(&str, Option<FieldValue>)> = vec![
            ("finding_id", str_of("id")),
            ("class", str_of("class")),
            ("asset_kind", str_of("asset_kind")),
            ("severity", str_of("severity")),
            ("confidence", real_of("confidence")),
            ("views", Some(FieldValue::IntegerValue(f.views as i32))),
            ("support", Some(FieldValue::IntegerValue(f.support as i32))),
            ("length_m", real_of("length_m")),
            ("area_m2", real_of("area_m2")),
            ("asset_id", str_of("asset_id")),
            ("asset_name", str_of("asset_name")),
            ("chainage_m", real_of("chainage_m")),
            ("offset_m", real_of("offset_m")),
            (
                "matched",
                Some(FieldValue::IntegerValue(f.asset.is_some() as i32)),
            ),
            (
                "observation_count",
                Some(FieldValue::IntegerValue(f.observations.len() as i32)),
            ),
            ("best_photo", str_of("best_photo")),
            ("observations", str_of("observations")),
        ];
        let defn = layer.defn();
        let mut feature = gdal::vector::Feature::new(defn).map_err(|e| write_err(path, e))?;
        feature.set_geometry(geom).map_err(|e| write_err(path, e))?;
        for (name, v) in values {
            if let Some(v) = v {
                let idx = feature.field_index(name).map_err(|e| write_err(path, e))?;
                feature.set_field(idx, &v).map_err(|e| write_err(path, e))?;
            }
        }
        for x in extra {
            if let Some(Some(v)) = x.values.get(i) {
                let idx = feature
                    .field_index(&x.name)
                    .map_err(|e| write_err(path, e))?;
                feature
                    .set_field(idx, &FieldValue::StringValue(v.clone()))
                    .map_err(|e| write_err(path, e))?;
            }
        }
        feature.create(&layer).map_err(|e| write_err(path, e))?;
    }
    Ok(())
}

/// Writes every product of a report into `dir`; returns the files written.
pub fn write_all(
    dir: &Path,
    report: &Report,
    gpkg_crs: &str,
) -> Result<Vec<std::path::PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let mut written = Vec::new();
    let mut put = |name: &str, text: String| -> Result<(), ReportError> {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| write_err(&p, e))?;
        written.push(p);
        Ok(())
    };
    put(
        "findings.geojson",
        serde_json::to_string(&findings_geojson(&report.findings)).expect("JSON values serialise"),
    )?;
    put("workorders.csv", workorders_csv(&report.work_orders))?;
    put(
        "workorders.geojson",
        serde_json::to_string(&workorders_geojson(&report.work_orders))
            .expect("JSON values serialise"),
    )?;
    let gpkg = dir.join("findings.gpkg");
    findings_gpkg(&gpkg, &report.findings, gpkg_crs)?;
    written.push(gpkg);
    Ok(written)
}
