//! The model manifest: the TOML file beside an `.onnx` model that says how to feed it and read it.

use crate::InferError;
use besikta_core::AssetKind;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What the model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Segmentation,
    Detection,
}

/// Channel order of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// How to turn the raw output tensor into probabilities or boxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decode {
    /// `[N, C, H, W]` already in 0..1.
    Probabilities,
    /// `[N, C, H, W]` raw scores: sigmoid when C == classes, softmax when C == classes + 1.
    Logits,
    /// `[N, 4 + classes, boxes]`: cx, cy, w, h in input pixels, then class scores.
    Yolov8,
    /// `[N, boxes, 5 + classes]`: cx, cy, w, h, objectness, then class scores.
    Yolov5,
}

/// `[input]`: how a tile becomes the model's input tensor (always NCHW float32).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub channels: ChannelOrder,
    pub scale: f64,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    pub dynamic_batch: bool,
}

/// `[output]`: which output to read and how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub name: String,
    pub decode: Decode,
}

/// `[gsd]`: the ground sampling distance the model was trained at, in mm per pixel.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GsdSpec {
    pub mm_per_px: f64,
    pub min_mm_per_px: f64,
    pub max_mm_per_px: f64,
}

/// `[tiling]`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TilingSpec {
    pub overlap_px: u32,
}

/// `[thresholds]`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub confidence: f32,
    #[serde(default = "default_nms_iou")]
    pub nms_iou: f32,
    #[serde(default)]
    pub min_area_px: f64,
}

fn default_nms_iou() -> f32 {
    0.5
}

/// `[scope]`: where the pipeline runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeSpec {
    /// Whether `process` runs the model on a flight without an asset register. Without
    /// one, only the vegetation rule limits where a model looks; a model whose classes
    /// belong inside building outlines (roof damage) cannot tell a roof from the ground
    /// there and says `false` (`models/roof/roof-damage.toml`). `besikta infer` runs every
    /// model whatever this says.
    pub run_without_register: bool,
}

impl ScopeSpec {
    /// Whether `process` runs the model on a flight with (`true`) or without a register.
    pub fn runs(&self, with_register: bool) -> bool {
        with_register || self.run_without_register
    }
}

impl Default for ScopeSpec {
    fn default() -> Self {
        ScopeSpec {
            run_without_register: true,
        }
    }
}

/// One `[[classes]]` entry; the first is class index 1 in masks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    pub name: String,
    pub asset_kind: AssetKind,
}

/// A parsed and checked model manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub task: Task,
    /// ONNX file, relative to the manifest; resolved by [`Manifest::model_path`].
    pub model: PathBuf,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub provenance: Option<String>,
    pub input: InputSpec,
    pub output: OutputSpec,
    pub gsd: GsdSpec,
    pub tiling: TilingSpec,
    pub thresholds: Thresholds,
    /// Where the pipeline runs it; every model runs everywhere when the manifest has no
    /// `[scope]`.
    #[serde(default)]
    pub scope: ScopeSpec,
    pub classes: Vec<ClassSpec>,
    /// Directory of the manifest file (not part of the TOML).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Manifest {
    /// Reads and checks a manifest; every problem names the file and the offending key.
    pub fn load(path: &Path) -> Result<Manifest, InferError> {
        let text = std::fs::read_to_string(path).map_err(|source| InferError::Io {
            path: path.to_path_buf(),
            what: "read the model manifest",
            source,
        })?;
        let mut manifest = Manifest::parse(&text).map_err(|reason| InferError::Manifest {
            path: path.to_path_buf(),
            reason,
        })?;
        manifest.dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let model = manifest.model_path();
        if !model.is_file() {
            return Err(InferError::Manifest {
                path: path.to_path_buf(),
                reason: format!(
                    "`model` points at {}, which does not exist (the path is relative to the manifest)",
                    model.display()
                ),
            });
        }
        Ok(manifest)
    }

    /// Parses and checks manifest text; the error is a sentence naming the key at fault.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Where the ONNX file is.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.model)
    }

    /// The class at mask value `index` (1-based; 0 is background).
    pub fn class(&self, index: usize) -> Option<&ClassSpec> {
        index.checked_sub(1).and_then(|i| self.classes.get(i))
    }

    fn check(&self) -> Result<(), String> {
        let fail = |msg: String| Err(msg);
        if self.name.trim().is_empty() {
            return fail("`name` is empty".into());
        }
        let i = &self.input;
        if i.name.is_empty() || self.output.name.is_empty() {
            return fail(
                "`input.name` and `output.name` must name the ONNX input and output".into(),
            );
        }
        if i.width == 0 || i.height == 0 {
            return fail(format!(
                "`input.width` and `input.height` must be positive, got {}x{}",
                i.width, i.height
            ));
        }
        if !(i.scale.is_finite() && i.scale > 0.0) {
            return fail(format!(
                "`input.scale` must be a positive number, got {}",
                i.scale
            ));
        }
        if let Some(s) = i.std.iter().find(|s| !(s.is_finite() && **s != 0.0)) {
            return fail(format!("`input.std` must be non-zero numbers, got {s}"));
        }
        if i.mean.iter().any(|m| !m.is_finite()) {
            return fail("`input.mean` must be finite numbers".into());
        }
        let seg_decode = matches!(self.output.decode, Decode::Probabilities | Decode::Logits);
        match (self.task, seg_decode) {
            (Task::Segmentation, false) => {
                return fail(format!(
                    "`output.decode = {:?}` is a detection decoding but `task = \"segmentation\"`; use \"probabilities\" or \"logits\"",
                    self.output.decode
                ))
            }
            (Task::Detection, true) => {
                return fail(format!(
                    "`output.decode = {:?}` is a segmentation decoding but `task = \"detection\"`; use \"yolov8\" or \"yolov5\"",
                    self.output.decode
                ))
            }
            _ => {}
        }
        let g = self.gsd;
        if !(g.mm_per_px > 0.0 && g.min_mm_per_px > 0.0 && g.max_mm_per_px.is_finite()) {
            return fail("`gsd` values must be positive numbers of mm per pixel".into());
        }
        if !(g.min_mm_per_px <= g.mm_per_px && g.mm_per_px <= g.max_mm_per_px) {
            return fail(format!(
                "`gsd.mm_per_px = {}` must lie within `min_mm_per_px = {}` and `max_mm_per_px = {}`",
                g.mm_per_px, g.min_mm_per_px, g.max_mm_per_px
            ));
        }
        if self.tiling.overlap_px * 2 >= i.width.min(i.height) {
            return fail(format!(
                "`tiling.overlap_px = {}` must be less than half the tile size ({}x{})",
                self.tiling.overlap_px, i.width, i.height
            ));
        }
        let t = self.thresholds;
        if !(0.0..=1.0).contains(&t.confidence) || !(0.0..=1.0).contains(&t.nms_iou) {
            return fail(
                "`thresholds.confidence` and `thresholds.nms_iou` must be within 0..1".into(),
            );
        }
        if t.min_area_px.is_nan() || t.min_area_px < 0.0 {
            return fail("`thresholds.min_area_px` must be zero or more".into());
        }
        if self.classes.is_empty() {
            return fail("no `[[classes]]`: the model must declare at least one class".into());
        }
        if self.classes.len() > 255 {
            return fail("more than 255 classes do not fit an 8-bit mask".into());
        }
        if let Some(c) = self.classes.iter().find(|c| c.name.trim().is_empty()) {
            return fail(format!(
                "a class has an empty name (asset kind {:?})",
                c.asset_kind
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "crack-unet"
version = "0.1.0"
task = "segmentation"
model = "crack-unet.onnx"
license = "MIT"
provenance = "test"

[input]
name = "image"
width = 256
height = 256
channels = "rgb"
scale = 0.00392156862745098
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]
dynamic_batch = true

[output]
name = "mask"
decode = "probabilities"

[gsd]
mm_per_px = 10.0
min_mm_per_px = 4.0
max_mm_per_px = 20.0

[tiling]
overlap_px = 32

[thresholds]
confidence = 0.5
nms_iou = 0.5
min_area_px = 16

[[classes]]
name = "crack"
asset_kind = "road"
"#;

    #[test]
    fn the_agreed_example_parses() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.input.channels, ChannelOrder::Rgb);
        assert_eq!(m.classes[0].asset_kind, AssetKind::Road);
        assert_eq!(m.class(1).unwrap().name, "crack");
        assert!(m.class(0).is_none());
    }

    #[test]
    fn a_model_runs_without_a_register_unless_its_scope_says_not() {
        assert!(Manifest::parse(GOOD).unwrap().scope.run_without_register);
        let text = GOOD.replacen(
            "[[classes]]",
            "[scope]\nrun_without_register = false\n\n[[classes]]",
            1,
        );
        assert!(!Manifest::parse(&text).unwrap().scope.run_without_register);
        let typo = GOOD.replacen(
            "[[classes]]",
            "[scope]\nwithout_register = false\n\n[[classes]]",
            1,
        );
        let err = Manifest::parse(&typo).unwrap_err();
        assert!(err.contains("unknown field `without_register`"), "{err}");
        let shipped = Manifest::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../models/roof/roof-damage.toml"),
        )
        .unwrap();
        assert!(
            !shipped.scope.run_without_register,
            "the shipped roof model looks only at registered buildings"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                "channels = \"rgb\"",
                "channels = \"rgba\"",
                "unknown variant `rgba`",
            ),
            (
                "decode = \"probabilities\"",
                "decode = \"yolov8\"",
                "detection decoding",
            ),
            (
                "overlap_px = 32",
                "overlap_px = 200",
                "less than half the tile size",
            ),
            ("mm_per_px = 10.0", "mm_per_px = 30.0", "must lie within"),
            ("std = [1.0, 1.0, 1.0]", "std = [1.0, 0.0, 1.0]", "non-zero"),
            (
                "asset_kind = \"road\"",
                "asset_kind = \"bridge\"",
                "unknown variant `bridge`",
            ),
            (
                "overlap_px = 32",
                "overlap_px = 32\nstride = 3",
                "unknown field `stride`",
            ),
            ("width = 256\n", "", "missing field `width`"),
        ];
        for (from, to, expect) in cases {
            let text = GOOD.replacen(from, to, 1);
            let err = Manifest::parse(&text).unwrap_err();
            assert!(err.contains(expect), "{to}: {err}");
        }
    }
}
