//! `manifest.json` of a training export: where every chip came from, read back by the
//! corrections import to map a chip's pixels to its photo.

use crate::chip::Window;
use crate::TrainingError;
use besikta_core::ReviewState;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format tag written into every manifest.
pub const FORMAT: &str = "besikta-training/1";

/// Why a chip was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChipKind {
    /// Around a confirmed or corrected finding of one of the model's classes.
    Positive,
    /// Around a rejected finding the model reported (or one corrected away from its classes).
    HardNegative,
    /// A random window of a reviewed flight touching no finding.
    Background,
}

impl ChipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChipKind::Positive => "positive",
            ChipKind::HardNegative => "hard_negative",
            ChipKind::Background => "background",
        }
    }
}

/// One labelled outline in a chip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChipAnnotation {
    pub finding_id: String,
    pub class: String,
    pub review: ReviewState,
    /// Outline clipped to the chip, chip pixels.
    pub polygon: Vec<[f64; 2]>,
    /// Whether the outline reaches past the chip (then `polygon` is only part of it).
    #[serde(default)]
    pub clipped: bool,
}

/// One chip and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChipEntry {
    /// Path relative to the export folder, e.g. `crack-unet/images/<chip>.png`.
    pub file: String,
    pub model: String,
    pub kind: ChipKind,
    pub flight: String,
    pub photo: String,
    /// The finding the chip was cut around (none for background).
    pub finding_id: Option<String>,
    /// Review state of that finding (`unreviewed` for background).
    pub review: ReviewState,
    /// `[x0, y0, width, height]` in pixels of the photo.
    pub window_px: Window,
    /// Chip pixels per photo pixel, `[x, y]`.
    pub scale: [f64; 2],
    /// Chip size, `[width, height]` pixels.
    pub size: [u32; 2],
    /// GSD of the photo at the finding (or the photo's centre), cm/px.
    pub photo_gsd_cm: f64,
    pub annotations: Vec<ChipAnnotation>,
    /// Unreviewed findings of this model reaching into the chip.
    pub unreviewed_overlap: Vec<String>,
    /// Whether the finding the chip was cut around reaches past it.
    #[serde(default)]
    pub finding_clipped: bool,
}

/// A model of the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub version: String,
    /// `segmentation` or `detection`.
    pub task: String,
    pub mm_per_px: f64,
    pub classes: Vec<String>,
}

/// A finding view that gave no chip for a model, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub flight: String,
    pub photo: String,
    pub finding_id: Option<String>,
    pub model: Option<String>,
    pub reason: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportManifest {
    pub format: String,
    pub models: Vec<ModelEntry>,
    pub chips: Vec<ChipEntry>,
    pub skipped: Vec<Skipped>,
}

impl ExportManifest {
    /// Reads `manifest.json` from an export folder (or the file itself).
    pub fn load(path: &Path) -> Result<ExportManifest, TrainingError> {
        let file = if path.is_dir() {
            path.join("manifest.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| TrainingError::io(&file, "read the training export manifest", e))?;
        let m: ExportManifest =
            serde_json::from_str(&text).map_err(|e| TrainingError::Manifest {
                path: file.clone(),
                message: format!(
                    "not a Besikta training manifest ({e}); give the folder `besikta export-training` wrote"
                ),
            })?;
        if m.format != FORMAT {
            return Err(TrainingError::Manifest {
                path: file,
                message: format!("format {:?}, expected {FORMAT:?}", m.format),
            });
        }
        Ok(m)
    }

    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }
}
