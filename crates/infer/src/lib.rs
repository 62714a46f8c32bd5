//! ONNX defect models: manifests, sessions, tiling, pre- and post-processing.
//!
//! A model is an `.onnx` file plus a TOML manifest beside it that says how to feed and read
//! it. [`Model::load`] reads the manifest, loads ONNX Runtime (see below), builds one session
//! per worker and refuses a model whose inputs and outputs do not match the manifest.
//! [`Model::infer_image`] slices a photo into overlapping tiles at the model's ground sampling
//! distance, runs them on all workers, blends segmentation outputs back with a tent window
//! (or merges boxes with class-aware NMS) and returns [`besikta_core::Detection`]s in the
//! photo's own pixels.
//!
//! # Bringing your own model: the manifest
//!
//! File `<model>.toml`, usually beside `<model>.onnx`:
//!
//! ```toml
//! name = "crack-unet"              # required
//! version = "0.1.0"                # required
//! task = "segmentation"            # "segmentation" | "detection"
//! model = "crack-unet.onnx"        # path of the ONNX file, relative to the manifest
//! license = "MIT OR Apache-2.0"    # optional, shown to users
//! provenance = "how it was trained" # optional
//!
//! [input]
//! name = "image"                   # ONNX input name
//! width = 256                      # tile size the model takes (fixed spatial size)
//! height = 256
//! channels = "rgb"                 # "rgb" | "bgr"
//! scale = 0.00392156862745098      # pixel value 0..255 is multiplied by this ...
//! mean = [0.0, 0.0, 0.0]           # ... then this is subtracted per channel (in the order above) ...
//! std = [1.0, 1.0, 1.0]            # ... then divided by this. Layout is always NCHW float32.
//! dynamic_batch = true             # whether the batch dimension may be > 1
//!
//! [output]
//! name = "mask"                    # ONNX output name
//! decode = "probabilities"
//!
//! [gsd]                            # ground sampling distance the model was trained at
//! mm_per_px = 10.0
//! min_mm_per_px = 4.0              # tolerated range; outside it tiles are resampled to mm_per_px
//! max_mm_per_px = 20.0
//!
//! [tiling]
//! overlap_px = 32                  # overlap between neighbouring tiles, in model input pixels
//!
//! [thresholds]
//! confidence = 0.5                 # seg: pixel probability threshold; det: box score threshold
//! nms_iou = 0.5                    # detection only
//! min_area_px = 16                 # drop components/boxes smaller than this (original-photo pixels)
//!
//! [[classes]]                      # order = class index 1, 2, ... (0 is background in masks)
//! name = "crack"                   # defect type reported
//! asset_kind = "road"              # "road" | "roof"
//! ```
//!
//! `output.decode` is one of:
//!
//! - `probabilities`: segmentation, `[N, C, H, W]` already in 0..1;
//! - `logits`: segmentation, `[N, C, H, W]` raw; a sigmoid is applied when C equals the number
//!   of classes, a softmax across channels when C is classes + 1;
//! - `yolov8`: detection, `[N, 4 + classes, boxes]`: cx, cy, w, h in input pixels, class scores;
//! - `yolov5`: detection, `[N, boxes, 5 + classes]`: cx, cy, w, h, objectness, class scores
//!   (the score of a box is objectness times class score).
//!
//! For segmentation, when C == classes + 1 channel 0 is background and a pixel takes the class
//! of the largest channel if that is not background and its probability reaches
//! `thresholds.confidence`; when C == classes each channel is an independent probability and a
//! pixel takes the most probable class that reaches the threshold. The output's H and W must
//! equal the input tile's.
//!
//! Keys in the tables are checked strictly (a misspelt key is an error naming it); unknown
//! top-level keys are tolerated so a manifest can carry notes. At load time the manifest is
//! checked against the ONNX file: input and output names, float32 element type, rank, input
//! channel count (3), spatial size, a fixed batch dimension versus `dynamic_batch = true`, and
//! the output's channel count versus the number of classes.
//!
//! # GSD and tiling
//!
//! When the photo's GSD is given ([`InferOptions::gsd_mm`]) and lies outside
//! `[min_mm_per_px, max_mm_per_px]`, the photo is resampled to `mm_per_px` (downsampling once,
//! with a triangle filter; upsampling tile by tile, bilinear). Otherwise, and when the GSD is
//! unknown, tiles are cut at the photo's own scale. Probabilities are blended at model
//! resolution, or at photo resolution when that is coarser, then mapped to photo pixels.
//! Segmentation components become polygons (Douglas-Peucker, 1 px), with area in pixels and,
//! for classes whose name contains "crack", the length of the Zhang-Suen skeleton (diagonal
//! steps count sqrt 2). The confidence of a component is its mean probability.
//!
//! # Finding ONNX Runtime
//!
//! The runtime is loaded at run time, once per process: `ORT_DYLIB_PATH` when set; otherwise
//! `.cache/onnxruntime/libonnxruntime.so` in any ancestor folder of the executable or in the
//! source checkout this crate was built from (where `scripts/setup` puts it); otherwise the
//! system loader's `libonnxruntime.so`. [`Device::Cuda`] needs `libonnxruntime_providers_cuda.so`
//! beside the loaded library (the `onnxruntime-gpu` wheel) and fails rather than falling back.

mod engine;
pub mod manifest;
mod overlay;
pub mod postprocess;
mod runtime;
mod scratch;
pub mod tiling;

/// The image crate this one speaks (`RgbImage`, `GrayImage`), for callers that save results.
pub use image;

pub use engine::{EngineConfig, InferOptions, Model, PhotoResult};
pub use manifest::Manifest;
pub use overlay::draw_overlay;
pub use runtime::{check_device, ensure_runtime, library_candidates, Device, HOW_TO_GET_ORT};

use std::path::{Path, PathBuf};

/// Everything that can go wrong in inference, in words that name the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("could not {what} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("model manifest {} is not valid: {reason}", path.display())]
    Manifest { path: PathBuf, reason: String },
    #[error("model {} does not match its manifest {}: {reason}", model.display(), manifest.display())]
    Mismatch {
        manifest: PathBuf,
        model: PathBuf,
        reason: String,
    },
    #[error("ONNX Runtime is not available: {0}")]
    Runtime(String),
    #[error("CUDA is not available: {0}")]
    Cuda(String),
    #[error("could not open model {}: {reason}", path.display())]
    Session { path: PathBuf, reason: String },
    #[error("model `{model}` failed to run: {reason}")]
    Run { model: String, reason: String },
    #[error("could not decode photo {}: {reason}", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error(
        "photo {}: its header claims {width} x {height} pixels, over the {limit_mpx} megapixel \
         limit (a decompression bomb or a corrupt header); leave this file out",
        path.display()
    )]
    TooManyPixels {
        path: PathBuf,
        width: u32,
        height: u32,
        limit_mpx: u64,
    },
}

/// Decodes a photo (JPEG, PNG) to 8-bit RGB, once; the error names the file and the reason.
///
/// `max_pixels` is the caller's decompression-bomb guard (ingest's limit: one set of limits
/// for every path that reads photos). The size in the header is checked before any pixel
/// buffer is allocated, and the decoder is held to that size, so a 65535 x 65535 header
/// costs a few bytes of reading, not 13 GB.
pub fn decode_photo(path: &Path, max_pixels: u64) -> Result<image::RgbImage, InferError> {
    decode_photo_into(path, max_pixels, Vec::new())
}

/// [`decode_photo`] into `buf`'s memory (grown as needed): give back an earlier photo's
/// pixels (`RgbImage::into_raw`) so a run of photos reuses one buffer instead of leaving the
/// allocator a fresh photo-sized block each time.
pub fn decode_photo_into(
    path: &Path,
    max_pixels: u64,
    buf: Vec<u8>,
) -> Result<image::RgbImage, InferError> {
    let open = || -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>, InferError> {
        image::ImageReader::open(path)
            .map_err(|source| InferError::Io {
                path: path.to_path_buf(),
                what: "open photo",
                source,
            })?
            .with_guessed_format()
            .map_err(|source| InferError::Io {
                path: path.to_path_buf(),
                what: "read photo",
                source,
            })
    };
    let decode_err = |e: image::ImageError| InferError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let (width, height) = open()?.into_dimensions().map_err(decode_err)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(InferError::TooManyPixels {
            path: path.to_path_buf(),
            width,
            height,
            limit_mpx: max_pixels / 1_000_000,
        });
    }
    let mut reader = open()?;
    // The image crate's default limits are meant for web thumbnails and would refuse a
    // 100 MP drone frame; hold it to the size just checked instead (RGBA at most, plus the
    // conversion to RGB).
    let mut limits = image::Limits::no_limits();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(decode_err)?;
    use image::ImageDecoder as _;
    if decoder.color_type() != image::ColorType::Rgb8 {
        // Grey, RGBA or 16-bit photos: decoded as they are, then converted.
        return Ok(image::DynamicImage::from_decoder(decoder)
            .map_err(decode_err)?
            .to_rgb8());
    }
    // RGB straight into the caller's buffer: the same decoder and bytes as `decode()`,
    // without a fresh photo-sized allocation per photo.
    let (width, height) = decoder.dimensions();
    let len = decoder.total_bytes();
    let mut buf = buf;
    buf.clear();
    buf.resize(len as usize, 0);
    decoder.read_image(&mut buf).map_err(decode_err)?;
    image::RgbImage::from_raw(width, height, buf).ok_or_else(|| InferError::Decode {
        path: path.to_path_buf(),
        reason: format!("the decoder's {width} x {height} pixels do not fill an RGB image"),
    })
}
