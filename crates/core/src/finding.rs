//! Findings as data: one detection placed on the ground ([`Observation`]), one physical
//! defect merged over the photos that saw it ([`Finding`]) and where it sits on a
//! registered asset ([`AssetMatch`]). Report builds them, the pipeline hands them back,
//! the store keeps them (serde JSON) and every export is written from them.

use crate::{AssetKind, Severity};
use serde::{Deserialize, Serialize};

/// The model that produced an observation, as its manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelRef {
    /// Manifest `name` (`crack-seg`, ...).
    pub name: String,
    /// Manifest `version`.
    pub version: String,
}

/// One detection in one photo, already placed on the ground by georeferencing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Photo file the detection comes from.
    pub photo: String,
    pub class: String,
    pub asset_kind: AssetKind,
    pub confidence: f32,
    /// Outline in pixels of the photo (the box corners for detectors).
    pub pixel_polygon: Vec<[f64; 2]>,
    /// `[x0, y0, x1, y1]` in pixels of the photo.
    pub pixel_bbox: [f64; 4],
    /// The same outline on the ground: WGS 84 longitude, latitude; closed ring.
    pub ground_polygon: Vec<[f64; 2]>,
    /// Skeleton length in pixels for thin defects (cracks).
    pub length_px: Option<f64>,
    /// Ground sampling distance at the detection, centimetres per pixel.
    pub gsd_cm: f64,
    /// 1 at the photo's centre, falling to 0 at its corners: oblique edges are worse views.
    pub view_quality: f64,
    /// Horizontal position uncertainty of this photo on the map, metres (GPS, RTK when
    /// known; after alignment to a reference orthophoto, its pose sigma): what keeping
    /// defects on their asset and matching them to the register use.
    pub position_uncertainty_m: f64,
    /// Uncertainty of this photo's position relative to the other photos of its flight,
    /// metres (1 sigma), when flight alignment refined its pose (`pose_sigma_m` of
    /// `footprints.geojson`): what merging observations across photos uses. `None` (not
    /// aligned, or stored before alignment existed): `position_uncertainty_m` stands for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pose_sigma_m: Option<f64>,
    /// For a thin detection (a crack): how much the ground on its two sides differs,
    /// median luminance 0-255, measured 0.15-0.40 m from it (`besikta_pipeline::sides`).
    /// A crack lies within one surface; a line between two surfaces (a kerb, the joint of
    /// asphalt and paving, a slab edge) has different ground on its sides. `None`: not
    /// measured (not thin, or stored before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sides_grey: Option<f32>,
    /// The model that detected it; `None` for findings stored before models were recorded.
    #[serde(default)]
    pub model: Option<ModelRef>,
}

impl Observation {
    /// Crack length on the ground, metres.
    pub fn length_m(&self) -> Option<f64> {
        self.length_px.map(|l| l * self.gsd_cm / 100.0)
    }

    /// The uncertainty merging uses: the aligned pose sigma, else the photo's own
    /// position uncertainty.
    pub fn relative_uncertainty_m(&self) -> f64 {
        self.pose_sigma_m.unwrap_or(self.position_uncertainty_m)
    }

    /// How good this view is, used to pick the best photo of a finding.
    pub fn view_score(&self) -> f64 {
        self.confidence as f64 * (0.5 + 0.5 * self.view_quality)
    }
}

/// Where a finding sits on its asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetMatch {
    pub asset_id: String,
    pub asset_name: Option<String>,
    pub asset_kind: AssetKind,
    /// Distance along the road from its first vertex to the finding, metres.
    pub chainage_m: Option<f64>,
    /// Signed lateral offset from the centreline (positive = left of the digitised direction).
    pub offset_m: Option<f64>,
    /// Distance from the finding to the asset (0 inside a building).
    pub distance_m: f64,
    /// The asset's area in the working frame, m² (a road: length x width), for its
    /// condition score; `None` for findings stored before it was recorded.
    #[serde(default)]
    pub asset_area_m2: Option<f64>,
}

/// One physical defect, merged over every photo that saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Unique within its flight (`F00001`).
    pub id: String,
    pub class: String,
    pub asset_kind: AssetKind,
    pub severity: Severity,
    /// Combined confidence over its views: noisy-OR of the supporting photos' scores
    /// times `support / views` (see report's `evidence`).
    pub confidence: f32,
    pub length_m: Option<f64>,
    pub area_m2: f64,
    /// Outline on the ground (WGS 84 lon/lat, closed ring), from the best view.
    pub polygon: Vec<[f64; 2]>,
    /// Centroid, WGS 84 lon/lat.
    pub centroid: [f64; 2],
    pub asset: Option<AssetMatch>,
    pub observations: Vec<Observation>,
    /// Index into `observations` of the best view.
    pub best: usize,
    /// Photos whose processed area covers the finding.
    pub views: usize,
    /// Photos that detected it.
    pub support: usize,
}

impl Finding {
    /// The best view, `None` only for a finding without observations.
    pub fn best_observation(&self) -> Option<&Observation> {
        self.observations
            .get(self.best)
            .or_else(|| self.observations.first())
    }

    /// The photo of the best view (empty without observations).
    pub fn best_photo(&self) -> &str {
        self.best_observation().map_or("", |o| o.photo.as_str())
    }

    /// `[min_lon, min_lat, max_lon, max_lat]` of the outline (the centroid when it has none).
    pub fn bbox(&self) -> [f64; 4] {
        let mut b = [
            self.centroid[0],
            self.centroid[1],
            self.centroid[0],
            self.centroid[1],
        ];
        for (i, p) in self.polygon.iter().enumerate() {
            if i == 0 {
                b = [p[0], p[1], p[0], p[1]];
            }
            b = [
                b[0].min(p[0]),
                b[1].min(p[1]),
                b[2].max(p[0]),
                b[3].max(p[1]),
            ];
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(photo: &str) -> Observation {
        Observation {
            photo: photo.into(),
            class: "crack".into(),
            asset_kind: AssetKind::Road,
            confidence: 0.8,
            pixel_polygon: vec![[10.0, 10.0], [20.0, 10.0], [20.0, 30.0]],
            pixel_bbox: [10.0, 10.0, 20.0, 30.0],
            ground_polygon: vec![],
            length_px: Some(200.0),
            gsd_cm: 1.5,
            view_quality: 1.0,
            position_uncertainty_m: 1.0,
            pose_sigma_m: None,
            sides_grey: None,
            model: Some(ModelRef {
                name: "crack-seg".into(),
                version: "2".into(),
            }),
        }
    }

    #[test]
    fn best_view_bbox_and_length() {
        let f = Finding {
            id: "F00001".into(),
            class: "crack".into(),
            asset_kind: AssetKind::Road,
            severity: Severity::Medium,
            confidence: 0.8,
            length_m: Some(3.0),
            area_m2: 0.2,
            polygon: vec![[24.0, 60.0], [24.1, 60.0], [24.1, 60.2], [24.0, 60.0]],
            centroid: [24.05, 60.1],
            asset: None,
            observations: vec![observation("a.jpg"), observation("b.jpg")],
            best: 1,
            views: 2,
            support: 2,
        };
        assert_eq!(f.best_photo(), "b.jpg");
        assert_eq!(f.bbox(), [24.0, 60.0, 24.1, 60.2]);
        assert_eq!(f.observations[0].length_m(), Some(3.0));
        let out_of_range = Finding {
            best: 7,
            ..f.clone()
        };
        assert_eq!(out_of_range.best_photo(), "a.jpg");
        let none = Finding {
            observations: vec![],
            polygon: vec![],
            ..f
        };
        assert_eq!(none.best_photo(), "");
        assert_eq!(none.bbox(), [24.05, 60.1, 24.05, 60.1]);
    }
}
