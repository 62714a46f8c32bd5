//! COCO instances JSON (the subset annotation tools exchange): written per model by the
//! export, read back by the corrections import.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `images[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoImage {
    pub id: u64,
    pub file_name: String,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
}

/// `annotations[]`. `segmentation` stays a JSON value when read: polygons are a list of
/// flat coordinate lists, run-length masks an object (refused with a message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoAnnotation {
    pub id: u64,
    pub image_id: u64,
    pub category_id: u64,
    #[serde(default)]
    pub segmentation: Value,
    #[serde(default)]
    pub area: f64,
    /// `[x, y, width, height]`.
    #[serde(default)]
    pub bbox: Vec<f64>,
    #[serde(default)]
    pub iscrowd: u8,
    /// CVAT keeps these through its COCO import and export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, Value>>,
}

/// `categories[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoCategory {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub supercategory: String,
}

/// A COCO instances file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coco {
    #[serde(default)]
    pub info: Value,
    #[serde(default)]
    pub licenses: Vec<Value>,
    pub images: Vec<CocoImage>,
    #[serde(default)]
    pub annotations: Vec<CocoAnnotation>,
    pub categories: Vec<CocoCategory>,
}

/// A ring as COCO's flat `[x1, y1, x2, y2, ...]`, rounded to 0.01 px.
pub fn flat(ring: &[[f64; 2]]) -> Vec<f64> {
    ring.iter()
        .flat_map(|p| [round2(p[0]), round2(p[1])])
        .collect()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// `[x, y, width, height]` of a ring.
pub fn bbox_xywh(ring: &[[f64; 2]]) -> [f64; 4] {
    match crate::chip::bounds(ring) {
        Some(b) => [
            round2(b[0]),
            round2(b[1]),
            round2(b[2] - b[0]),
            round2(b[3] - b[1]),
        ],
        None => [0.0; 4],
    }
}
