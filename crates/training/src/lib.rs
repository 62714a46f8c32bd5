//! Reviewed findings as training data, and corrected outlines read back.
//!
//! [`export_training`] writes, per model, image chips at the model's ground sampling
//! distance around reviewed findings:
//!
//! - **positive**: a `confirmed` or `corrected` finding whose (final) class the model has;
//!   its outline becomes a polygon, a box and (segmentation models) a mask;
//! - **hard negative**: a `rejected` finding the model reported, and a `corrected` one whose
//!   class the reviewer moved to a class this model does not have;
//! - **background**: random windows of photos of reviewed flights that touch no finding at
//!   all (nobody looked at them, but no model flagged them either).
//!
//! Every chip carries every positive outline of its model that reaches into it (so a chip
//! around one finding does not teach that its neighbour is background), and the manifest
//! lists unreviewed findings that reach into it (`unreviewed_overlap`) so a trainer can drop
//! or mask such chips. Unreviewed findings are never labels.
//!
//! # Geometry
//!
//! A model with input `W x H` at `gsd.mm_per_px` sees a photo at `g` mm/px through a window
//! of `round(W * mm_per_px / g)` photo pixels, resampled to `W x H` (see [`chip`]). An
//! outline larger than one window is covered by a row or grid of windows overlapping by a
//! quarter. Photos coarser than the model's `max_mm_per_px` are not used for that model (the
//! `process` job skips them too). Outlines are in pixels of the original photo (origin
//! top-left, x right, y down); the caller projects ground outlines into each photo.
//!
//! # Output (`OUT/`)
//!
//! ```text
//! manifest.json                 every chip: model, kind, flight, photo, finding id, review
//!                               state, window in the photo, scale, its annotations; skips
//! <model>/images/<chip>.png     (or .jpg) the chip, W x H
//! <model>/masks/<chip>.png      segmentation models: 8-bit, value = class index (1-based)
//! <model>/labels/<chip>.txt     YOLO: detection "c cx cy w h", segmentation "c x1 y1 x2 y2 ..."
//! <model>/coco.json             COCO instances: polygons, boxes, areas in chip pixels
//! <model>/data.yaml             YOLO dataset file (class names)
//! ```
//!
//! [`corrections::read_corrections`] reads a CVAT-for-images 1.1 XML or COCO JSON file made
//! from these chips back into photo-pixel outlines per finding, checking everything before
//! returning anything.

pub mod chip;
pub mod coco;
pub mod corrections;
mod export;
pub mod local;
pub mod manifest;

pub use corrections::{read_corrections, CorrectionSet, FindingCorrection};
pub use export::{export_training, ChipFormat, ExportOptions, ExportSummary, ModelCounts};
pub use manifest::{ChipEntry, ChipKind, ExportManifest, Skipped};

use besikta_core::ReviewState;
use std::path::PathBuf;

/// One finding as seen in one photo: the plain input of [`export_training`].
#[derive(Debug, Clone, PartialEq)]
pub struct FindingView {
    /// Flight the finding belongs to (the store's id or a folder name).
    pub flight: String,
    pub finding_id: String,
    /// Photo file name, as in [`Photo::name`].
    pub photo: String,
    /// Outline in pixels of that photo (the corrected outline, projected, when a reviewer
    /// changed it); open or closed ring.
    pub outline_px: Vec<[f64; 2]>,
    /// The class the model reported.
    pub detected_class: String,
    /// The class after review (the corrected class, else `detected_class`).
    pub class: String,
    pub review: ReviewState,
    /// Ground sampling distance at the detection, centimetres per pixel.
    pub gsd_cm: f64,
}

/// A photo of a flight: where its file is and its GSD (for background chips).
#[derive(Debug, Clone, PartialEq)]
pub struct Photo {
    pub flight: String,
    pub name: String,
    pub path: PathBuf,
    /// Ground sampling distance at the photo's centre, centimetres per pixel.
    pub gsd_cm: f64,
}

/// Everything [`export_training`] reads: the photos of the flights and every finding view in
/// them, reviewed or not (unreviewed ones keep background chips off them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportInput {
    pub photos: Vec<Photo>,
    pub views: Vec<FindingView>,
}

/// What can go wrong; every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("could not {what} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Output { path: PathBuf, message: String },
    #[error("corrections file {}: {message}", path.display())]
    Corrections { path: PathBuf, message: String },
    #[error("training export {}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
}

impl TrainingError {
    pub(crate) fn io(path: &std::path::Path, what: &'static str, source: std::io::Error) -> Self {
        TrainingError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    }
}
