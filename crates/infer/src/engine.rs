//! The model: validated sessions, tiles fanned out to worker threads, blended back into a photo.

use crate::manifest::{Decode, Manifest, Task};
use crate::postprocess::{nms, segment_detections, SegPostConfig};
use crate::runtime::{build_session, Device, SessionOptions};
use crate::tiling::{fill_tile, tent, Normaliser, Tile, TilePlan, TileSource};
use crate::{scratch, InferError};
use besikta_core::Detection;
use image::{GrayImage, RgbImage};
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// How to run a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    pub device: Device,
    /// ONNX Runtime intra-op threads of each session.
    pub intra_threads: usize,
    /// Sessions running tiles in parallel, one thread each.
    pub workers: usize,
    /// Tiles per inference call (1 when the model's batch dimension is fixed).
    pub batch_size: usize,
}

impl Default for EngineConfig {
    /// One single-threaded session per core: for tile-sized models this beats one session
    /// with many threads, whose per-operator fan-out costs more than it saves.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        EngineConfig {
            device: Device::Cpu,
            intra_threads: 1,
            workers: cores,
            batch_size: 4,
        }
    }
}

impl EngineConfig {
    /// The CUDA execution provider: one session (the GPU runs a batch's tiles in parallel),
    /// `threads` ONNX Runtime threads for what stays on the CPU, and batches of 8 tiles.
    pub fn cuda(threads: usize) -> Self {
        EngineConfig {
            device: Device::Cuda,
            intra_threads: threads.max(1),
            workers: 1,
            batch_size: 8,
        }
    }
}

/// Per-photo options.
#[derive(Debug, Clone, Copy, Default)]
pub struct InferOptions<'a> {
    /// Ground sampling distance of the photo in mm per pixel, when known.
    pub gsd_mm: Option<f64>,
    /// Region of interest: polygons in photo pixels; tiles outside all of them are skipped.
    pub roi: Option<&'a [Vec<[f64; 2]>]>,
    /// Place the tiles on the regions of interest ([`TilePlan::covering`]) instead of
    /// keeping the grid's tiles that touch them; for small scattered regions.
    pub cover_roi: bool,
    /// The caller does not use [`PhotoResult::mask`] (the pipeline): it is left `None` and
    /// no photo-sized mask is assembled.
    pub skip_mask: bool,
}

/// What a model found in one photo.
#[derive(Debug, Clone)]
pub struct PhotoResult {
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
    /// Class index per photo pixel (0 = background); segmentation models only.
    pub mask: Option<GrayImage>,
    pub tiles_total: usize,
    pub tiles_skipped: usize,
}

/// A loaded, validated model with its sessions (built once, reused for every photo).
pub struct Model {
    manifest: Manifest,
    sessions: Vec<Session>,
    /// Each session's input buffer, kept from photo to photo (a batch of tiles is a few MB:
    /// allocated afresh it would be page-faulted in again for every photo and model).
    inputs: Vec<Vec<f32>>,
    batch: usize,
    /// Output channels (segmentation) or per-box values (detection).
    out_channels: usize,
    norm: Normaliser,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.manifest.name)
            .field("sessions", &self.sessions.len())
            .field("batch", &self.batch)
            .finish()
    }
}

/// Static dimensions of a tensor outlet, `None` for dynamic ones.
fn dims_of(dtype: &ValueType) -> Option<(TensorElementType, Vec<Option<i64>>)> {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => {
            Some((*ty, shape.iter().map(|&d| (d >= 0).then_some(d)).collect()))
        }
        _ => None,
    }
}

fn fmt_dims(d: &[Option<i64>]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|x| x.map_or("?".into(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

impl Model {
    /// Loads the manifest and its ONNX file, checks they agree, and builds the sessions.
    pub fn load(manifest_path: &Path, cfg: &EngineConfig) -> Result<Model, InferError> {
        let manifest = Manifest::load(manifest_path)?;
        let model_path = manifest.model_path();
        let opts = SessionOptions {
            device: cfg.device,
            intra_threads: cfg.intra_threads,
        };
        let first = build_session(&model_path, opts)?;
        let out_channels = check_shapes(&manifest, manifest_path, &first)?;
        let mut sessions = vec![first];
        for _ in 1..cfg.workers.max(1) {
            sessions.push(build_session(&model_path, opts)?);
        }
        let batch = if manifest.input.dynamic_batch {
            cfg.batch_size.max(1)
        } else {
            1
        };
        let norm = Normaliser::new(&manifest);
        let inputs = vec![Vec::new(); sessions.len()];
        Ok(Model {
            manifest,
            sessions,
            inputs,
            batch,
            out_channels,
            norm,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Tiles per inference call actually used.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// Fills the model input for one tile of `img` at `(x, y)` (photo at its own scale); the
    /// pre-processing exactly as [`Model::infer_image`] does it, exposed for parity tests.
    pub fn preprocess_tile(&self, img: &RgbImage, x: u32, y: u32) -> Vec<f32> {
        let plan = TilePlan::new(img.width(), img.height(), &self.manifest, None, None);
        let (tw, th) = (
            self.manifest.input.width as usize,
            self.manifest.input.height as usize,
        );
        let mut out = vec![0f32; 3 * tw * th];
        fill_tile(
            &TileSource::Direct(img),
            &plan,
            Tile { x, y },
            &self.norm,
            &mut out,
            &mut Vec::new(),
        );
        out
    }

    /// Runs the first session on a raw NCHW input of `batch` tiles; returns the output tensor
    /// (shape and values) as the model produced it, before any decoding.
    pub fn run_tensor(
        &mut self,
        input: &[f32],
        batch: usize,
    ) -> Result<(Vec<i64>, Vec<f32>), InferError> {
        let (w, h) = (
            self.manifest.input.width as usize,
            self.manifest.input.height as usize,
        );
        let m = &self.manifest;
        let run_err = |e: ort::Error| InferError::Run {
            model: m.name.clone(),
            reason: e.to_string(),
        };
        let tensor = TensorRef::from_array_view(([batch, 3, h, w], input)).map_err(run_err)?;
        let outputs = self.sessions[0]
            .run(ort::inputs![m.input.name.as_str() => tensor])
            .map_err(run_err)?;
        let (shape, data) = outputs[m.output.name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        Ok((shape.to_vec(), data.to_vec()))
    }

    /// Runs the model over a whole photo: tiles, inference on all workers, blending, post-processing.
    pub fn infer_image(
        &mut self,
        img: &RgbImage,
        opts: &InferOptions,
    ) -> Result<PhotoResult, InferError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(InferError::Run {
                model: self.manifest.name.clone(),
                reason: "the photo has no pixels".into(),
            });
        }
        let plan = match opts.roi {
            Some(roi) if opts.cover_roi => {
                TilePlan::covering(w, h, &self.manifest, opts.gsd_mm, roi)
            }
            _ => TilePlan::new(w, h, &self.manifest, opts.gsd_mm, opts.roi),
        };
        // Downsampling happens once for the whole photo with a proper filter (no aliasing);
        // upsampling is done per tile so the enlarged photo never exists in memory.
        let resized =
            (plan.scale < 1.0).then(|| crate::tiling::downsample(img, plan.virt_w, plan.virt_h));
        let source = if let Some(resized) = &resized {
            TileSource::Direct(resized)
        } else if plan.scale == 1.0 {
            TileSource::Direct(img)
        } else {
            TileSource::Upsampled {
                photo: img,
                scale: plan.scale,
            }
        };
        let Model {
            manifest,
            sessions,
            inputs,
            batch,
            out_channels,
            norm,
        } = self;
        let threads = sessions.len();
        let workers = Workers {
            sessions,
            inputs,
            manifest,
            norm,
            batch: *batch,
        };
        let (detections, mask) = match manifest.task {
            Task::Segmentation => {
                let mut stitch = Stitcher::new(&plan, *out_channels, manifest);
                workers.run(&plan, &source, |tile, data| stitch.add(tile, data))?;
                let finished = stitch.finish(manifest, threads);
                let post = SegPostConfig {
                    min_area_px: manifest.thresholds.min_area_px,
                    simplify_px: 1.0,
                };
                let mut dets = segment_detections(&finished.mask, &finished.score, manifest, post);
                let (ox, oy) = (finished.origin.0 as f64, finished.origin.1 as f64);
                if (ox, oy) != (0.0, 0.0) {
                    // Whole pixels: the shift is exact.
                    for d in &mut dets {
                        d.bbox = [
                            d.bbox[0] + ox,
                            d.bbox[1] + oy,
                            d.bbox[2] + ox,
                            d.bbox[3] + oy,
                        ];
                        for q in d.polygon.iter_mut().flatten() {
                            *q = [q[0] + ox, q[1] + oy];
                        }
                    }
                }
                let mask = if opts.skip_mask {
                    finished.give_back();
                    None
                } else {
                    Some(finished.whole_mask(w, h))
                };
                (dets, mask)
            }
            Task::Detection => {
                let mut boxes = Vec::new();
                workers.run(&plan, &source, |tile, data| {
                    decode_boxes(manifest, *out_channels, &plan, tile, data, &mut boxes)
                })?;
                let kept = nms(boxes, manifest.thresholds.nms_iou as f64)
                    .into_iter()
                    .filter(|d| d.area_px >= manifest.thresholds.min_area_px)
                    .collect();
                (kept, None)
            }
        };
        if let Some(resized) = resized {
            scratch::give_u8(resized.into_raw());
        }
        Ok(PhotoResult {
            width: w,
            height: h,
            detections,
            mask,
            tiles_total: plan.tiles_total,
            tiles_skipped: plan.tiles_skipped,
        })
    }
}

/// The sessions of a model, borrowed for one photo.
struct Workers<'m> {
    sessions: &'m mut [Session],
    inputs: &'m mut [Vec<f32>],
    manifest: &'m Manifest,
    norm: &'m Normaliser,
    batch: usize,
}

impl Workers<'_> {
    /// Fans the plan's tiles out to one thread per session and hands each tile's raw output
    /// (one batch item) to `sink` on the calling thread, in completion order, so blending
    /// overlaps with inference.
    fn run(
        self,
        plan: &TilePlan,
        source: &TileSource,
        mut sink: impl FnMut(Tile, &[f32]),
    ) -> Result<(), InferError> {
        let next = AtomicUsize::new(0);
        let Workers {
            sessions,
            inputs,
            manifest,
            norm,
            batch,
        } = self;
        let n_tiles = plan.tiles.len();
        if n_tiles == 0 {
            return Ok(());
        }
        let workers = sessions.len().min(n_tiles.div_ceil(batch)).max(1);
        let (tx, rx) =
            mpsc::sync_channel::<Result<(usize, Vec<f32>), InferError>>(workers * batch * 2);
        // Tile outputs go back to the workers once blended: a fresh tile-sized buffer per
        // tile is a fresh mapping of the allocator's (above its mmap threshold), paid for in
        // page faults (about 1 CPU-s of a 9 MP flight with all three models).
        let spare = Spare::default();
        let mut first_err = None;
        std::thread::scope(|scope| {
            for (session, input) in sessions.iter_mut().zip(inputs.iter_mut()).take(workers) {
                let tx = tx.clone();
                let next = &next;
                let spare = &spare;
                scope.spawn(move || {
                    let out = Outlet { tx: &tx, spare };
                    let w = Worker {
                        session,
                        input,
                        manifest,
                        norm,
                    };
                    if let Err(e) = w.run(plan, source, next, batch, &out) {
                        let _ = tx.send(Err(e));
                    }
                });
            }
            drop(tx);
            // Tiles are blended in the plan's order whichever worker finishes first, so the
            // floating-point sums of overlapping tiles do not depend on timing: a photo gives
            // bit-identical results on every run (and in any split into work units).
            let mut pending = std::collections::BTreeMap::new();
            let mut next_tile = 0;
            for msg in rx.iter() {
                match msg {
                    Ok((i, data)) => {
                        pending.insert(i, data);
                        while let Some(data) = pending.remove(&next_tile) {
                            sink(plan.tiles[next_tile], &data);
                            spare.give(data);
                            next_tile += 1;
                        }
                    }
                    Err(e) => {
                        // Stop handing out tiles; workers finish their current batch and exit.
                        next.store(usize::MAX / 2, Ordering::SeqCst);
                        first_err.get_or_insert(e);
                    }
                }
            }
            for (i, data) in pending {
                sink(plan.tiles[i], &data);
            }
        });
        first_err.map_or(Ok(()), Err)
    }
}

/// Tile output buffers the blending thread has finished with, for the workers to refill.
#[derive(Default)]
struct Spare(std::sync::Mutex<Vec<Vec<f32>>>);

impl Spare {
    /// A buffer holding a copy of `data`: a spare one when there is one.
    fn copy_of(&self, data: &[f32]) -> Vec<f32> {
        let kept = self.0.lock().map(|mut v| v.pop()).unwrap_or(None);
        let mut item = kept.unwrap_or_default();
        item.clear();
        item.extend_from_slice(data);
        item
    }

    fn give(&self, v: Vec<f32>) {
        if let Ok(mut kept) = self.0.lock() {
            kept.push(v);
        }
    }
}

/// Where a worker sends its tiles' outputs, and the spare buffers it copies them into.
struct Outlet<'a> {
    tx: &'a mpsc::SyncSender<Result<(usize, Vec<f32>), InferError>>,
    spare: &'a Spare,
}

/// One worker: a session and its input buffer.
struct Worker<'a> {
    session: &'a mut Session,
    input: &'a mut Vec<f32>,
    manifest: &'a Manifest,
    norm: &'a Normaliser,
}

impl Worker<'_> {
    /// Takes batches of tiles, fills the reused input buffer, runs the session.
    fn run(
        self,
        plan: &TilePlan,
        source: &TileSource,
        next: &AtomicUsize,
        batch: usize,
        out: &Outlet<'_>,
    ) -> Result<(), InferError> {
        let Worker {
            session,
            input,
            manifest,
            norm,
        } = self;
        let (tw, th) = (plan.tile_w as usize, plan.tile_h as usize);
        let per_tile = 3 * tw * th;
        // Every tile overwrites its whole slot (fill_tile pads), so old contents do not matter.
        input.resize(batch * per_tile, 0.0);
        let mut row = Vec::new();
        let run_err = |e: ort::Error| InferError::Run {
            model: manifest.name.clone(),
            reason: e.to_string(),
        };
        loop {
            let start = next.fetch_add(batch, Ordering::SeqCst);
            if start >= plan.tiles.len() {
                return Ok(());
            }
            let end = (start + batch).min(plan.tiles.len());
            let n = end - start;
            for (k, &tile) in plan.tiles[start..end].iter().enumerate() {
                fill_tile(
                    source,
                    plan,
                    tile,
                    norm,
                    &mut input[k * per_tile..(k + 1) * per_tile],
                    &mut row,
                );
            }
            let tensor = TensorRef::from_array_view(([n, 3, th, tw], &input[..n * per_tile]))
                .map_err(run_err)?;
            let outputs = session
                .run(ort::inputs![manifest.input.name.as_str() => tensor])
                .map_err(run_err)?;
            let (shape, data) = outputs[manifest.output.name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(run_err)?;
            if shape.first().copied() != Some(n as i64) || data.len() % n != 0 {
                return Err(InferError::Run {
                    model: manifest.name.clone(),
                    reason: format!(
                        "asked for {n} tiles, the output has shape {:?}",
                        shape.to_vec()
                    ),
                });
            }
            let per_out = data.len() / n;
            let expect_seg = if manifest.task == Task::Segmentation {
                Some(per_out == shape.get(1).copied().unwrap_or(0) as usize * tw * th)
            } else {
                None
            };
            if expect_seg == Some(false) {
                return Err(InferError::Run {
                    model: manifest.name.clone(),
                    reason: format!(
                        "the segmentation output has shape {:?}, not the input tile size {tw}x{th}",
                        shape.to_vec()
                    ),
                });
            }
            for k in 0..n {
                let item = out.spare.copy_of(&data[k * per_out..(k + 1) * per_out]);
                if out.tx.send(Ok((start + k, item))).is_err() {
                    return Ok(()); // the receiver stopped after an error elsewhere
                }
            }
        }
    }
}

/// Checks the session's input and output against the manifest; returns the output channel
/// count (segmentation) or values per box (detection).
fn check_shapes(
    m: &Manifest,
    manifest_path: &Path,
    session: &Session,
) -> Result<usize, InferError> {
    let fail = |reason: String| {
        Err(InferError::Mismatch {
            manifest: manifest_path.to_path_buf(),
            model: m.model_path(),
            reason,
        })
    };
    let names = |outlets: &[ort::value::Outlet]| {
        outlets
            .iter()
            .map(|o| format!("`{}`", o.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(input) = session.inputs().iter().find(|i| i.name() == m.input.name) else {
        return fail(format!(
            "the model has no input `{}` (its inputs: {})",
            m.input.name,
            names(session.inputs())
        ));
    };
    if session.inputs().len() != 1 {
        return fail(format!(
            "the model has {} inputs ({}); Besikta feeds exactly one image tensor",
            session.inputs().len(),
            names(session.inputs())
        ));
    }
    let Some(output) = session.outputs().iter().find(|o| o.name() == m.output.name) else {
        return fail(format!(
            "the model has no output `{}` (its outputs: {})",
            m.output.name,
            names(session.outputs())
        ));
    };
    let Some((ity, idims)) = dims_of(input.dtype()) else {
        return fail(format!("input `{}` is not a tensor", m.input.name));
    };
    if ity != TensorElementType::Float32 {
        return fail(format!(
            "input `{}` is {ity:?}, Besikta feeds float32",
            m.input.name
        ));
    }
    if idims.len() != 4 {
        return fail(format!(
            "input `{}` has shape {} (rank {}); expected NCHW, rank 4",
            m.input.name,
            fmt_dims(&idims),
            idims.len()
        ));
    }
    let want = [
        None,
        Some(3),
        Some(m.input.height as i64),
        Some(m.input.width as i64),
    ];
    let what = ["batch", "channel count", "height", "width"];
    for k in 1..4 {
        if let (Some(have), Some(want)) = (idims[k], want[k]) {
            if have != want {
                return fail(format!(
                    "input `{}` has shape {}: {} is {have}, the manifest says {want}",
                    m.input.name,
                    fmt_dims(&idims),
                    what[k]
                ));
            }
        }
    }
    if m.input.dynamic_batch && idims[0].is_some_and(|b| b != -1) {
        return fail(format!(
            "`input.dynamic_batch = true` but the model's batch dimension is fixed at {} (shape {}); set it to false",
            idims[0].unwrap_or(0),
            fmt_dims(&idims)
        ));
    }
    let Some((oty, odims)) = dims_of(output.dtype()) else {
        return fail(format!("output `{}` is not a tensor", m.output.name));
    };
    if oty != TensorElementType::Float32 {
        return fail(format!(
            "output `{}` is {oty:?}; Besikta reads float32",
            m.output.name
        ));
    }
    let k = m.classes.len() as i64;
    let shown = fmt_dims(&odims);
    match m.output.decode {
        Decode::Probabilities | Decode::Logits => {
            if odims.len() != 4 {
                return fail(format!(
                    "segmentation output `{}` has shape {shown}; expected [N, C, H, W]",
                    m.output.name
                ));
            }
            let Some(c) = odims[1] else {
                return fail(format!(
                    "output `{}` has a dynamic channel dimension ({shown}); it must be fixed",
                    m.output.name
                ));
            };
            if c != k && c != k + 1 {
                return fail(format!(
                    "output `{}` has {c} channels ({shown}) but the manifest lists {k} classes; expected {k} (one per class) or {} (background first)",
                    m.output.name,
                    k + 1
                ));
            }
            for (d, (have, want)) in [(odims[2], m.input.height), (odims[3], m.input.width)]
                .into_iter()
                .enumerate()
            {
                if have.is_some_and(|v| v != want as i64) {
                    return fail(format!(
                        "output `{}` has shape {shown}; its {} must equal the input tile's {want}",
                        m.output.name,
                        ["height", "width"][d]
                    ));
                }
            }
            Ok(c as usize)
        }
        Decode::Yolov8 | Decode::Yolov5 => {
            if odims.len() != 3 {
                return fail(format!(
                    "detection output `{}` has shape {shown}; expected rank 3",
                    m.output.name
                ));
            }
            let (axis, want) = if m.output.decode == Decode::Yolov8 {
                (1, 4 + k)
            } else {
                (2, 5 + k)
            };
            match odims[axis] {
                Some(v) if v != want => fail(format!(
                    "output `{}` has shape {shown}: {v} values per box, but {:?} with {k} classes needs {want}",
                    m.output.name, m.output.decode
                )),
                _ => Ok(want as usize),
            }
        }
    }
}

/// Weighted blend of tile outputs.
///
/// The canvas is at model resolution when that is no finer than the photo, and at photo
/// resolution when upsampling (model pixels are then averaged into photo pixels), so memory
/// never exceeds a photo-sized float plane per channel.
struct Stitcher<'p> {
    plan: &'p TilePlan,
    channels: usize,
    canvas_w: usize,
    canvas_h: usize,
    /// Where the canvas starts in the photo. At the photo's own scale the canvas is only
    /// the bounding box of the plan's tiles (second-view windows and coverage-planned
    /// photos run a few tiles: blending, classifying and labelling a whole 9 MP plane for
    /// them cost more than the tiles); else the whole photo or virtual image, from 0.
    origin: (usize, usize),
    acc: Vec<f32>,
    weight: Vec<f32>,
    wx: Vec<f32>,
    wy: Vec<f32>,
    /// For upsampling: photo column/row of each virtual column/row.
    to_photo: Option<(Vec<u32>, Vec<u32>)>,
    /// Raw scores that still need a sigmoid or softmax.
    logits: bool,
    /// Channel 0 is background: softmax across channels, argmax picks the class.
    softmax: bool,
}

impl<'p> Stitcher<'p> {
    fn new(plan: &'p TilePlan, channels: usize, manifest: &Manifest) -> Self {
        Self::with_canvas(plan, channels, manifest, true)
    }

    /// `crop`: at the photo's own scale, the canvas is only the tiles' bounding box.
    fn with_canvas(plan: &'p TilePlan, channels: usize, manifest: &Manifest, crop: bool) -> Self {
        let up = plan.scale > 1.0;
        let ((cw, ch), origin) = if up {
            ((plan.photo_w as usize, plan.photo_h as usize), (0, 0))
        } else if crop && plan.scale == 1.0 && !plan.tiles.is_empty() {
            // The tiles' span on one axis, clipped to the image: (start, length).
            let span = |at: fn(&Tile) -> u32, tile: u32, len: u32| {
                let lo = plan.tiles.iter().map(at).min().unwrap_or(0) as usize;
                let hi = plan.tiles.iter().map(|t| at(t) + tile).max().unwrap_or(len);
                (lo, hi.min(len) as usize - lo)
            };
            let (x0, cw) = span(|t| t.x, plan.tile_w, plan.virt_w);
            let (y0, ch) = span(|t| t.y, plan.tile_h, plan.virt_h);
            ((cw, ch), (x0, y0))
        } else {
            ((plan.virt_w as usize, plan.virt_h as usize), (0, 0))
        };
        let to_photo = up.then(|| {
            let map = |n: u32, len: u32| {
                (0..n)
                    .map(|v| (((v as f64 + 0.5) / plan.scale) as u32).min(len - 1))
                    .collect()
            };
            (
                map(plan.virt_w, plan.photo_w),
                map(plan.virt_h, plan.photo_h),
            )
        });
        Stitcher {
            plan,
            channels,
            canvas_w: cw,
            canvas_h: ch,
            origin,
            acc: scratch::take_f32(cw * ch * channels),
            weight: scratch::take_f32(cw * ch),
            wx: tent(plan.tile_w),
            wy: tent(plan.tile_h),
            to_photo,
            logits: manifest.output.decode == Decode::Logits,
            softmax: channels == manifest.classes.len() + 1,
        }
    }

    fn add(&mut self, tile: Tile, data: &[f32]) {
        let (tw, th) = (self.plan.tile_w as usize, self.plan.tile_h as usize);
        let plane = tw * th;
        let (vw, vh) = (self.plan.virt_w as usize, self.plan.virt_h as usize);
        let (x0, y0) = (tile.x as usize, tile.y as usize);
        // Only the part of the tile inside the virtual image counts (edge padding is discarded).
        let cols = tw.min(vw - x0);
        let rows = th.min(vh - y0);
        let cplane = self.canvas_w * self.canvas_h;
        let mut probs = Vec::new();
        let data = if self.logits {
            probs.extend_from_slice(data);
            softmax_or_sigmoid(&mut probs, self.channels, plane, self.softmax);
            &probs[..]
        } else {
            data
        };
        for r in 0..rows {
            let wyr = self.wy[r];
            let src = r * tw..r * tw + cols;
            match &self.to_photo {
                None => {
                    let (ox, oy) = self.origin;
                    let dst = (y0 + r - oy) * self.canvas_w + x0 - ox;
                    let wrow = &mut self.weight[dst..dst + cols];
                    for (wt, &wxc) in wrow.iter_mut().zip(&self.wx[..cols]) {
                        *wt += wxc * wyr;
                    }
                    for c in 0..self.channels {
                        let d = &mut self.acc[c * cplane + dst..c * cplane + dst + cols];
                        let s = &data[c * plane + src.start..c * plane + src.end];
                        for ((a, &p), &wxc) in d.iter_mut().zip(s).zip(&self.wx[..cols]) {
                            *a += p * wxc * wyr;
                        }
                    }
                }
                Some((px, py)) => {
                    let prow = py[y0 + r] as usize * self.canvas_w;
                    for (k, &wxc) in self.wx[..cols].iter().enumerate() {
                        let i = prow + px[x0 + k] as usize;
                        let wgt = wxc * wyr;
                        self.weight[i] += wgt;
                        for c in 0..self.channels {
                            self.acc[c * cplane + i] += data[c * plane + src.start + k] * wgt;
                        }
                    }
                }
            }
        }
    }

    /// Normalises the blend, maps it to photo pixels and picks each pixel's class.
    /// Returns the class mask and the chosen class's probability per photo pixel, over the
    /// part of the photo that starts at [`Stitcher::origin`] (the whole photo unless the
    /// canvas is cropped to the tiles; every pixel outside it is background).
    fn finish(mut self, manifest: &Manifest, threads: usize) -> Finished {
        let channels = self.channels;
        let cplane = self.canvas_w * self.canvas_h;
        let origin = self.origin;
        let (pw, ph) = if origin != (0, 0) || self.plan.scale == 1.0 {
            (self.canvas_w, self.canvas_h)
        } else {
            (self.plan.photo_w as usize, self.plan.photo_h as usize)
        };
        let conf = manifest.thresholds.confidence;
        let background_channel = self.softmax;
        let mut mask = scratch::take_u8(pw * ph);
        let mut score = scratch::take_f32(pw * ph);
        let classify = |probs: &[f32]| -> (u8, f32) {
            let (best, p) = probs
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |acc, (i, p)| if p > acc.1 { (i, p) } else { acc },
                );
            if background_channel {
                if best == 0 || p < conf {
                    (0, 0.0)
                } else {
                    (best as u8, p)
                }
            } else if p >= conf {
                (best as u8 + 1, p)
            } else {
                (0, 0.0)
            }
        };
        // Every output pixel is independent: bands of rows go to the engine's threads (the
        // workers are idle now), each writing its own rows of `mask` and `score`; the
        // arithmetic per pixel is the same whatever the split.
        let band = ph.div_ceil(threads.max(1)).max(1) * pw;
        if self.canvas_w == pw && self.canvas_h == ph {
            let (acc, weight) = (&self.acc, &self.weight);
            std::thread::scope(|scope| {
                for (k, (m, s)) in mask
                    .chunks_mut(band)
                    .zip(score.chunks_mut(band))
                    .enumerate()
                {
                    let first = k * band;
                    scope.spawn(move || {
                        let weight = &weight[first..first + m.len()];
                        if channels == 1 {
                            // The common single-class case, kept to a tight loop.
                            let acc = &acc[first..first + m.len()];
                            for (((m, s), &a), &wt) in
                                m.iter_mut().zip(s.iter_mut()).zip(acc).zip(weight)
                            {
                                let p = if wt > 0.0 { a / wt } else { 0.0 };
                                if p >= conf {
                                    *m = 1;
                                    *s = p;
                                }
                            }
                        } else {
                            let mut probs = vec![0f32; channels];
                            for (j, &wt) in weight.iter().enumerate() {
                                for (c, slot) in probs.iter_mut().enumerate() {
                                    let a = acc[c * cplane + first + j];
                                    *slot = if wt > 0.0 { a / wt } else { 0.0 };
                                }
                                (m[j], s[j]) = classify(&probs);
                            }
                        }
                    });
                }
            });
        } else {
            for c in 0..channels {
                for (a, &wt) in self.acc[c * cplane..(c + 1) * cplane]
                    .iter_mut()
                    .zip(&self.weight)
                {
                    *a = if wt > 0.0 { *a / wt } else { 0.0 };
                }
            }
            // Model resolution coarser than the photo: bilinear from the canvas.
            let (cw, ch) = (self.canvas_w, self.canvas_h);
            let s = self.plan.scale;
            let taps = |n: usize, len: usize| -> Vec<(usize, usize, f32)> {
                (0..n)
                    .map(|i| {
                        let f = ((i as f64 + 0.5) * s - 0.5).clamp(0.0, (len - 1) as f64);
                        let i0 = f.floor() as usize;
                        (i0, (i0 + 1).min(len - 1), (f - i0 as f64) as f32)
                    })
                    .collect()
            };
            let xt = taps(pw, cw);
            let yt = taps(ph, ch);
            let acc = &self.acc;
            let (xt, yt) = (&xt, &yt);
            std::thread::scope(|scope| {
                for (k, (m, sc)) in mask
                    .chunks_mut(band)
                    .zip(score.chunks_mut(band))
                    .enumerate()
                {
                    let first_row = k * band / pw;
                    scope.spawn(move || {
                        let mut probs = vec![0f32; channels];
                        let rows = m.len() / pw;
                        for (r, &(y0, y1, fy)) in yt[first_row..first_row + rows].iter().enumerate()
                        {
                            for (x, &(x0, x1, fx)) in xt.iter().enumerate() {
                                for (c, slot) in probs.iter_mut().enumerate() {
                                    let a = &acc[c * cplane..(c + 1) * cplane];
                                    let top = a[y0 * cw + x0] * (1.0 - fx) + a[y0 * cw + x1] * fx;
                                    let bot = a[y1 * cw + x0] * (1.0 - fx) + a[y1 * cw + x1] * fx;
                                    *slot = top * (1.0 - fy) + bot * fy;
                                }
                                let i = r * pw + x;
                                (m[i], sc[i]) = classify(&probs);
                            }
                        }
                    });
                }
            });
        }
        let mask = GrayImage::from_raw(pw as u32, ph as u32, mask)
            .unwrap_or_else(|| GrayImage::new(pw as u32, ph as u32));
        scratch::give_f32(std::mem::take(&mut self.acc));
        scratch::give_f32(std::mem::take(&mut self.weight));
        Finished {
            mask,
            score,
            origin,
        }
    }
}

/// A blended photo (or the part of it its tiles cover): class per pixel, the chosen class's
/// probability per pixel, and where that part starts in the photo.
struct Finished {
    mask: GrayImage,
    score: Vec<f32>,
    origin: (usize, usize),
}

impl Finished {
    /// Hands the buffers back to this thread's scratch for its next photo.
    fn give_back(self) {
        scratch::give_f32(self.score);
        scratch::give_u8(self.mask.into_raw());
    }

    /// The class mask over the whole `width x height` photo.
    fn whole_mask(self, width: u32, height: u32) -> GrayImage {
        let (ox, oy) = self.origin;
        let (cw, ch) = (self.mask.width(), self.mask.height());
        if (ox, oy) == (0, 0) && (cw, ch) == (width, height) {
            scratch::give_f32(self.score);
            return self.mask;
        }
        let (w, h) = (width as usize, height as usize);
        let mut whole = scratch::take_u8(w * h);
        for (r, row) in self.mask.as_raw().chunks_exact(cw as usize).enumerate() {
            let at = (oy + r) * w + ox;
            whole[at..at + row.len()].copy_from_slice(row);
        }
        scratch::give_f32(self.score);
        scratch::give_u8(self.mask.into_raw());
        GrayImage::from_raw(width, height, whole).unwrap_or_else(|| GrayImage::new(width, height))
    }
}

/// Logits to probabilities in place: softmax across channels when channel 0 is background,
/// else an independent sigmoid per channel.
fn softmax_or_sigmoid(data: &mut [f32], channels: usize, plane: usize, softmax: bool) {
    if !softmax {
        for v in data.iter_mut() {
            *v = 1.0 / (1.0 + (-*v).exp());
        }
        return;
    }
    for i in 0..plane {
        let max = (0..channels)
            .map(|c| data[c * plane + i])
            .fold(f32::MIN, f32::max);
        let mut sum = 0.0;
        for c in 0..channels {
            let e = (data[c * plane + i] - max).exp();
            data[c * plane + i] = e;
            sum += e;
        }
        for c in 0..channels {
            data[c * plane + i] /= sum;
        }
    }
}

/// Decodes one tile's YOLO output into photo-pixel detections above the confidence threshold.
fn decode_boxes(
    m: &Manifest,
    per_box: usize,
    plan: &TilePlan,
    tile: Tile,
    data: &[f32],
    out: &mut Vec<Detection>,
) {
    let k = m.classes.len();
    let n_boxes = data.len() / per_box;
    let conf = m.thresholds.confidence;
    let v8 = m.output.decode == Decode::Yolov8;
    // yolov8 is [4 + k, boxes] (attribute-major); yolov5 is [boxes, 5 + k] (box-major).
    let at = |b: usize, a: usize| {
        if v8 {
            data[a * n_boxes + b]
        } else {
            data[b * per_box + a]
        }
    };
    let s = plan.scale;
    for b in 0..n_boxes {
        let (score, class) = if v8 {
            (0..k)
                .map(|c| (at(b, 4 + c), c))
                .fold((f32::MIN, 0), |a, x| if x.0 > a.0 { x } else { a })
        } else {
            let obj = at(b, 4);
            (0..k)
                .map(|c| (obj * at(b, 5 + c), c))
                .fold((f32::MIN, 0), |a, x| if x.0 > a.0 { x } else { a })
        };
        if score < conf {
            continue;
        }
        let (cx, cy, bw, bh) = (
            at(b, 0) as f64,
            at(b, 1) as f64,
            at(b, 2) as f64,
            at(b, 3) as f64,
        );
        let to_px =
            |v: f64, origin: u32, len: u32| ((v + origin as f64) / s).clamp(0.0, len as f64);
        let bbox = [
            to_px(cx - bw / 2.0, tile.x, plan.photo_w),
            to_px(cy - bh / 2.0, tile.y, plan.photo_h),
            to_px(cx + bw / 2.0, tile.x, plan.photo_w),
            to_px(cy + bh / 2.0, tile.y, plan.photo_h),
        ];
        let area = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]);
        if area <= 0.0 {
            continue;
        }
        let cls = &m.classes[class];
        out.push(Detection {
            class: cls.name.clone(),
            asset_kind: Some(cls.asset_kind),
            confidence: score,
            bbox,
            polygon: None,
            area_px: area,
            length_px: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(classes: &[&str], gsd: (f64, f64, f64), decode: &str) -> Manifest {
        let classes: String = classes
            .iter()
            .map(|c| format!("[[classes]]\nname = \"{c}\"\nasset_kind = \"roof\"\n"))
            .collect();
        Manifest::parse(&format!(
            "name = \"t\"\nversion = \"0\"\ntask = \"segmentation\"\nmodel = \"t.onnx\"\n\
             [input]\nname = \"image\"\nwidth = 32\nheight = 32\nchannels = \"rgb\"\n\
             scale = 1.0\nmean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\ndynamic_batch = true\n\
             [output]\nname = \"mask\"\ndecode = \"{decode}\"\n\
             [gsd]\nmm_per_px = {}\nmin_mm_per_px = {}\nmax_mm_per_px = {}\n\
             [tiling]\noverlap_px = 8\n[thresholds]\nconfidence = 0.5\nmin_area_px = 1\n{classes}",
            gsd.0, gsd.1, gsd.2
        ))
        .expect("a valid test manifest")
    }

    /// Stitches made-up tile outputs and finishes them with `threads` bands: the finished
    /// part (mask, scores, origin).
    fn stitched_over(
        m: &Manifest,
        channels: usize,
        gsd_mm: f64,
        threads: usize,
        roi: &[Vec<[f64; 2]>],
        crop: bool,
    ) -> Finished {
        let plan = TilePlan::new(75, 53, m, Some(gsd_mm), Some(roi));
        let mut st = Stitcher::with_canvas(&plan, channels, m, crop);
        let (tw, th) = (plan.tile_w as usize, plan.tile_h as usize);
        // Probabilities in 0..1, logits spread wider so that the softmax decides something.
        let spread = if m.output.decode == Decode::Logits {
            8.0
        } else {
            1.0
        };
        for (k, &tile) in plan.tiles.iter().enumerate() {
            let data: Vec<f32> = (0..channels * tw * th)
                .map(|i| ((i * 7919 + k * 104_729) % 1000) as f32 / 1000.0 * spread)
                .collect();
            st.add(tile, &data);
        }
        st.finish(m, threads)
    }

    /// As [`stitched_over`] with a region of interest in a corner: at the model's scale one
    /// tile of 32 px touches it and the rest of the photo is never inferred. The whole mask
    /// and the finished part's scores.
    fn stitched(m: &Manifest, channels: usize, gsd_mm: f64, threads: usize) -> (Vec<u8>, Vec<f32>) {
        let roi = vec![vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]];
        let f = stitched_over(m, channels, gsd_mm, threads, &roi, true);
        let score = f.score.clone();
        (f.whole_mask(75, 53).into_raw(), score)
    }

    #[test]
    fn a_canvas_cropped_to_the_tiles_gives_the_whole_canvas_pixels_and_detections() {
        let m = manifest(&["crack"], (10.0, 5.0, 20.0), "probabilities");
        // A region away from the corner: the tiles' bounding box starts inside the photo.
        let roi = vec![vec![[40.0, 30.0], [60.0, 30.0], [60.0, 45.0], [40.0, 45.0]]];
        let cropped = stitched_over(&m, 1, 10.0, 2, &roi, true);
        let whole = stitched_over(&m, 1, 10.0, 2, &roi, false);
        assert_eq!(whole.origin, (0, 0));
        assert_ne!(cropped.origin, (0, 0), "the canvas is cropped");
        assert!(cropped.mask.width() < 75, "narrower than the photo");
        let post = SegPostConfig {
            min_area_px: 1.0,
            simplify_px: 1.0,
        };
        let (ox, oy) = cropped.origin;
        let mut a = segment_detections(&cropped.mask, &cropped.score, &m, post);
        let b = segment_detections(&whole.mask, &whole.score, &m, post);
        assert!(!b.is_empty(), "the test paints something");
        for d in &mut a {
            d.bbox = [
                d.bbox[0] + ox as f64,
                d.bbox[1] + oy as f64,
                d.bbox[2] + ox as f64,
                d.bbox[3] + oy as f64,
            ];
            for q in d.polygon.iter_mut().flatten() {
                *q = [q[0] + ox as f64, q[1] + oy as f64];
            }
        }
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let cw = cropped.mask.width() as usize;
        for (i, &p) in cropped.score.iter().enumerate() {
            let (x, y) = (ox + i % cw, oy + i / cw);
            assert_eq!(p.to_bits(), whole.score[y * 75 + x].to_bits());
        }
        assert_eq!(cropped.whole_mask(75, 53), whole.whole_mask(75, 53));
    }

    #[test]
    fn finishing_in_bands_gives_the_same_mask_and_scores_as_one_thread() {
        // One class at the photo's scale, three classes with background (softmax of
        // logits), and a coarser model scale (the canvas is smaller than the photo).
        let cases = [
            (
                manifest(&["crack"], (10.0, 5.0, 20.0), "probabilities"),
                1,
                10.0,
            ),
            (
                manifest(&["a", "b", "c"], (10.0, 5.0, 20.0), "logits"),
                4,
                10.0,
            ),
            (
                manifest(&["a", "b"], (30.0, 25.0, 40.0), "probabilities"),
                2,
                10.0,
            ),
        ];
        for (k, (m, channels, gsd)) in cases.iter().enumerate() {
            let one = stitched(m, *channels, *gsd, 1);
            assert!(one.0.iter().any(|&v| v > 0), "the test paints something");
            if k < 2 {
                assert!(
                    one.0[52 * 75..].iter().all(|&v| v == 0),
                    "uninferred rows stay empty"
                );
            }
            for threads in [2, 3, 8, 100] {
                assert_eq!(
                    stitched(m, *channels, *gsd, threads),
                    one,
                    "{threads} bands"
                );
            }
        }
    }
}
