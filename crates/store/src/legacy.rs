//! Findings stored before the store kept typed findings: a GeoJSON feature as the
//! pipeline wrote it (`findings.geojson`), turned into a [`Finding`] as well as it allows.
//!
//! The old feature carried the outline, the measured quantities, the asset match and, per
//! observation, the photo, confidence, pixel box and outline and GSD; what it did not carry
//! (ground outline of each view, view quality, position uncertainty, the model) is left
//! empty or zero. Nothing here fails: a damaged feature still gives a finding with the
//! class and severity of its row and its bbox as outline.

use besikta_core::finding::{AssetMatch, Finding, Observation};
use besikta_core::{AssetKind, Severity};
use serde_json::Value;

fn f64_of(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn pair(v: &Value) -> Option<[f64; 2]> {
    Some([v.get(0)?.as_f64()?, v.get(1)?.as_f64()?])
}

fn ring(v: &Value) -> Vec<[f64; 2]> {
    v.as_array()
        .map(|a| a.iter().filter_map(pair).collect())
        .unwrap_or_default()
}

/// The exterior ring of a Polygon or the first polygon of a MultiPolygon; a Point gives
/// no ring.
fn outline(geometry: &Value) -> Vec<[f64; 2]> {
    let coords = &geometry["coordinates"];
    match geometry["type"].as_str() {
        Some("Polygon") => ring(&coords[0]),
        Some("MultiPolygon") => ring(&coords[0][0]),
        _ => Vec::new(),
    }
}

fn centroid_of(ring: &[[f64; 2]], bbox: [f64; 4]) -> [f64; 2] {
    // The mean of the distinct positions: close enough for a finding's marker.
    let pts: &[[f64; 2]] = match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    };
    if pts.is_empty() {
        return [(bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0];
    }
    let n = pts.len() as f64;
    [
        pts.iter().map(|p| p[0]).sum::<f64>() / n,
        pts.iter().map(|p| p[1]).sum::<f64>() / n,
    ]
}

/// A finding from an old row: its GeoJSON `feature`, its id, class and severity columns
/// and its bbox columns.
pub fn finding_from_feature(
    feature: &Value,
    finding_id: &str,
    class: &str,
    severity: &str,
    bbox: [f64; 4],
) -> Finding {
    let props = &feature["properties"];
    let text = |k: &str| props[k].as_str().map(str::to_string);
    let number = |k: &str| f64_of(&props[k]);
    let class = text("class").unwrap_or_else(|| class.to_string());
    let asset_kind = text("asset_kind")
        .and_then(|k| k.parse::<AssetKind>().ok())
        .unwrap_or(AssetKind::Road);
    let severity = severity
        .parse::<Severity>()
        .or_else(|_| text("severity").unwrap_or_default().parse())
        .unwrap_or(Severity::Low);
    let mut polygon = outline(&feature["geometry"]);
    if polygon.len() < 3 {
        let [x0, y0, x1, y1] = bbox;
        polygon = vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]];
    }
    let centroid = centroid_of(&polygon, bbox);
    let confidence = number("confidence").unwrap_or(0.0) as f32;
    let observations: Vec<Observation> = props["observations"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|o| {
                    let b = &o["bbox_px"];
                    let pixel_bbox = [
                        f64_of(&b[0]).unwrap_or(0.0),
                        f64_of(&b[1]).unwrap_or(0.0),
                        f64_of(&b[2]).unwrap_or(0.0),
                        f64_of(&b[3]).unwrap_or(0.0),
                    ];
                    Observation {
                        photo: o["photo"].as_str().unwrap_or_default().to_string(),
                        class: class.clone(),
                        asset_kind,
                        confidence: f64_of(&o["confidence"]).unwrap_or(0.0) as f32,
                        pixel_polygon: ring(&o["polygon_px"]),
                        pixel_bbox,
                        ground_polygon: Vec::new(),
                        length_px: None,
                        gsd_cm: f64_of(&o["gsd_cm"]).unwrap_or(0.0),
                        view_quality: 0.0,
                        position_uncertainty_m: 0.0,
                        pose_sigma_m: None,
                        sides_grey: None,
                        model: None,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let best_photo = text("best_photo");
    let best = observations
        .iter()
        .position(|o| Some(&o.photo) == best_photo.as_ref())
        .unwrap_or(0);
    let asset = text("asset_id").map(|asset_id| AssetMatch {
        asset_id,
        asset_name: text("asset_name"),
        asset_kind,
        chainage_m: number("chainage_m"),
        offset_m: number("offset_m"),
        distance_m: 0.0,
        asset_area_m2: None,
    });
    let support = props["support"]
        .as_u64()
        .map(|n| n as usize)
        .unwrap_or(observations.len());
    Finding {
        id: text("id").unwrap_or_else(|| finding_id.to_string()),
        class,
        asset_kind,
        severity,
        confidence,
        length_m: number("length_m"),
        area_m2: number("area_m2").unwrap_or(0.0),
        polygon,
        centroid,
        asset,
        best,
        views: props["views"]
            .as_u64()
            .map(|n| n as usize)
            .unwrap_or(support),
        support,
        observations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pipeline_feature_becomes_the_same_finding() {
        let feature = json!({
            "type": "Feature", "id": "F00003",
            "geometry": {"type": "Polygon", "coordinates": [[[24.0, 60.0], [24.0002, 60.0], [24.0002, 60.0001], [24.0, 60.0]]]},
            "properties": {"id": "F00003", "class": "pothole", "asset_kind": "road", "severity": "medium",
                "confidence": 0.75, "views": 3, "support": 2, "length_m": null, "area_m2": 0.3,
                "asset_id": "way/7", "asset_name": "Main St", "chainage_m": 12.5, "offset_m": -1.0,
                "matched": true, "observation_count": 2, "best_photo": "/srv/f/b.jpg",
                "observations": [
                    {"photo": "/srv/f/a.jpg", "confidence": 0.5, "bbox_px": [1, 2, 3, 4], "polygon_px": [[1, 2], [3, 2], [3, 4]], "gsd_cm": 1.2},
                    {"photo": "/srv/f/b.jpg", "confidence": 0.9, "bbox_px": [10, 20, 30, 40], "polygon_px": [[10, 20], [30, 20], [30, 40]], "gsd_cm": 1.1}
                ]}
        });
        let f = finding_from_feature(&feature, "F00003", "pothole", "medium", [0.0; 4]);
        assert_eq!(f.id, "F00003");
        assert_eq!(f.severity, Severity::Medium);
        assert_eq!((f.views, f.support, f.best), (3, 2, 1));
        assert_eq!(f.best_photo(), "/srv/f/b.jpg");
        assert_eq!(f.observations[1].pixel_bbox, [10.0, 20.0, 30.0, 40.0]);
        assert_eq!(f.observations[1].pixel_polygon.len(), 3);
        assert_eq!(f.polygon.len(), 4);
        let a = f.asset.unwrap();
        assert_eq!((a.asset_id.as_str(), a.chainage_m), ("way/7", Some(12.5)));
    }

    #[test]
    fn a_damaged_feature_still_gives_a_finding() {
        for feature in [
            json!(null),
            json!("text"),
            json!({"geometry": {"type": "Point", "coordinates": [24.8, 60.2]}}),
        ] {
            let f = finding_from_feature(&feature, "F1", "crack", "high", [24.8, 60.2, 24.9, 60.3]);
            assert_eq!((f.id.as_str(), f.class.as_str()), ("F1", "crack"));
            assert_eq!(f.severity, Severity::High);
            assert_eq!(f.polygon.len(), 5, "the bbox as outline");
            assert!(f.observations.is_empty());
            assert_eq!(f.best_photo(), "");
        }
    }
}
