//! The `besikta infer` subcommand: run a defect model on photos and print, save masks and overlays.

use crate::device::{DeviceArg, DeviceFlag};
use anyhow::Context;
use besikta_core::Detection;
use besikta_infer::{
    decode_photo, draw_overlay, Device, EngineConfig, InferError, InferOptions, Manifest, Model,
    PhotoResult,
};
use besikta_pipeline::scale::too_coarse;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Arguments of `besikta infer`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model manifest (`<model>.toml` beside `<model>.onnx`).
    #[arg(long)]
    pub model: PathBuf,
    /// Photos (JPEG, PNG); georeferenced or not.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write one PNG per photo here: pixel value = class index (0 = background), photo size.
    #[arg(long, value_name = "DIR")]
    pub masks: Option<PathBuf>,
    /// Write each photo here as JPEG with the findings drawn on it.
    #[arg(long, value_name = "DIR")]
    pub overlay: Option<PathBuf>,
    /// Ground sampling distance of the photos in mm per pixel; overrides what georeferencing
    /// says. Without either, photos are used at their own scale.
    #[arg(long, value_name = "X")]
    pub gsd_mm: Option<f64>,
    #[command(flatten)]
    pub device: DeviceFlag,
    /// CPU threads: on CPU, parallel single-threaded sessions; on CUDA, ONNX Runtime threads
    /// of the one session. Default: all cores.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Serialize)]
struct JsonReport {
    photos: Vec<JsonPhoto>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<JsonError>,
}

#[derive(Debug, Serialize)]
struct JsonPhoto {
    file: String,
    width: u32,
    height: u32,
    /// GSD the photo was treated at, when known.
    gsd_mm: Option<f64>,
    tiles_total: usize,
    tiles_skipped: usize,
    detections: Vec<JsonDetection>,
}

#[derive(Debug, Serialize)]
struct JsonDetection {
    class: String,
    confidence: f32,
    bbox: [f64; 4],
    #[serde(skip_serializing_if = "Option::is_none")]
    polygon: Option<Vec<[f64; 2]>>,
    area_px: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    length_px: Option<f64>,
}

#[derive(Debug, Serialize)]
struct JsonError {
    file: String,
    reason: String,
}

impl From<&Detection> for JsonDetection {
    fn from(d: &Detection) -> Self {
        let r1 = |v: f64| (v * 10.0).round() / 10.0;
        JsonDetection {
            class: d.class.clone(),
            confidence: (d.confidence * 1000.0).round() / 1000.0,
            bbox: d.bbox,
            polygon: d.polygon.clone(),
            area_px: d.area_px,
            length_px: d.length_px.map(r1),
        }
    }
}

/// One photo read by the decoding thread.
struct Decoded {
    path: PathBuf,
    img: Result<image_rgb::RgbImage, InferError>,
    /// Ground sampling distance, mm per pixel: `--gsd-mm`, else from georeferencing.
    gsd_mm: Option<f64>,
    /// Focal length in pixels from the photo's metadata, when known.
    focal_px: Option<f64>,
}

/// The photo's focal length in pixels and its GSD from its EXIF/XMP pose over the
/// take-off plane, when it has them.
fn from_metadata(path: &Path) -> (Option<f64>, Option<f64>) {
    let Ok(capture) = besikta_ingest::read_capture(path) else {
        return (None, None);
    };
    let ground = besikta_georef::Ground::TakeOffPlane;
    let gsd = besikta_georef::PhotoGeometry::new(&capture, &ground)
        .ok()
        .and_then(|g| g.gsd_cm_center().ok())
        .filter(|cm| cm.is_finite() && *cm > 0.0)
        .map(|cm| cm * 10.0);
    (capture.focal_length_px, gsd)
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cores).max(1);
    let cfg = match args.device.device {
        DeviceArg::Cpu => EngineConfig {
            device: Device::Cpu,
            intra_threads: 1,
            workers: threads,
            batch_size: 4,
        },
        DeviceArg::Cuda => EngineConfig::cuda(threads),
    };
    let mut model = Model::load(&args.model, &cfg)
        .with_context(|| format!("could not load model {}", args.model.display()))?;
    for dir in [&args.masks, &args.overlay].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create output folder {}", dir.display()))?;
    }

    // Decode the next photo on another thread while the current one is inferred.
    let (tx, rx) = mpsc::sync_channel::<Decoded>(1);
    let paths = args.paths.clone();
    let gsd_override = args.gsd_mm;
    // The same decompression-bomb guard as every other path that reads photos.
    let max_pixels = besikta_ingest::ReadOptions::default().max_pixels;
    let decoder = std::thread::spawn(move || {
        for path in paths {
            let img = decode_photo(&path, max_pixels);
            let (focal_px, gsd) = if img.is_ok() {
                from_metadata(&path)
            } else {
                (None, None)
            };
            let decoded = Decoded {
                gsd_mm: gsd_override.or(gsd),
                path,
                img,
                focal_px,
            };
            if tx.send(decoded).is_err() {
                break;
            }
        }
    });

    let mut report = JsonReport {
        photos: Vec::new(),
        errors: Vec::new(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for Decoded {
        path,
        img,
        gsd_mm,
        focal_px,
    } in rx
    {
        let file = path.display().to_string();
        let manifest = model.manifest();
        if img.is_ok() && gsd_mm.is_none() {
            eprintln!(
                "besikta infer: {file}: no ground sampling distance known (no GPS height and \
                 camera in its metadata), so model `{}` sees it at its own scale as if it were \
                 {} mm/px; pass --gsd-mm with the photo's millimetres per pixel",
                manifest.name, manifest.gsd.mm_per_px
            );
        }
        // Too coarse for the model: not enlarged to fit (the detail is not there).
        let height_m = focal_px.zip(gsd_mm).map(|(f, g)| f * g / 1000.0);
        if let Some(skip) = gsd_mm.and_then(|g| too_coarse(manifest, g, height_m)) {
            eprintln!("besikta infer: skipped {file}: {skip}");
            report.errors.push(JsonError {
                file,
                reason: skip.to_string(),
            });
            continue;
        }
        let result = img.and_then(|img| {
            let res = model.infer_image(
                &img,
                &InferOptions {
                    gsd_mm,
                    roi: None,
                    cover_roi: false,
                    skip_mask: false,
                },
            )?;
            write_outputs(&args, &path, &img, &res, model.manifest())?;
            Ok(res)
        });
        match result {
            Ok(res) => {
                let photo = JsonPhoto {
                    file,
                    width: res.width,
                    height: res.height,
                    gsd_mm,
                    tiles_total: res.tiles_total,
                    tiles_skipped: res.tiles_skipped,
                    detections: res.detections.iter().map(JsonDetection::from).collect(),
                };
                if args.format == Format::Table {
                    print_table(&mut out, &photo)?;
                }
                report.photos.push(photo);
            }
            Err(err) => {
                let reason = err.to_string();
                // Decoding errors name the photo already: say it once.
                if reason.contains(&file) {
                    eprintln!("besikta infer: skipped {reason}");
                } else {
                    eprintln!("besikta infer: skipped {file}: {reason}");
                }
                report.errors.push(JsonError { file, reason });
            }
        }
    }
    decoder
        .join()
        .map_err(|_| anyhow::anyhow!("the photo decoding thread panicked"))?;
    if args.format == Format::Json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    }
    Ok(if report.errors.is_empty() { 0 } else { 1 })
}

use besikta_infer::image as image_rgb;

fn write_outputs(
    args: &Args,
    path: &Path,
    img: &image_rgb::RgbImage,
    res: &PhotoResult,
    manifest: &Manifest,
) -> Result<(), InferError> {
    let stem = path
        .file_stem()
        .map_or_else(|| "photo".into(), |s| s.to_string_lossy().into_owned());
    let save_err = |out: PathBuf, e: image_rgb::ImageError| InferError::Io {
        path: out,
        what: "write",
        source: std::io::Error::other(e.to_string()),
    };
    if let Some(dir) = &args.masks {
        let out = dir.join(format!("{stem}.png"));
        let mask = match &res.mask {
            Some(m) => m.clone(),
            None => boxes_mask(res, manifest),
        };
        mask.save(&out).map_err(|e| save_err(out.clone(), e))?;
    }
    if let Some(dir) = &args.overlay {
        let out = dir.join(format!("{stem}.jpg"));
        draw_overlay(img, &res.detections)
            .save_with_format(&out, image_rgb::ImageFormat::Jpeg)
            .map_err(|e| save_err(out.clone(), e))?;
    }
    Ok(())
}

/// Detection models have no pixel mask: fill each box with its class index instead.
fn boxes_mask(res: &PhotoResult, manifest: &Manifest) -> image_rgb::GrayImage {
    let mut mask = image_rgb::GrayImage::new(res.width, res.height);
    for d in &res.detections {
        let idx = manifest
            .classes
            .iter()
            .position(|c| c.name == d.class)
            .map_or(0, |i| i + 1) as u8;
        let [x0, y0, x1, y1] = d.bbox;
        for y in (y0.max(0.0) as u32)..(y1.min(res.height as f64) as u32) {
            for x in (x0.max(0.0) as u32)..(x1.min(res.width as f64) as u32) {
                mask.put_pixel(x, y, image_rgb::Luma([idx]));
            }
        }
    }
    mask
}

fn print_table(out: &mut impl Write, p: &JsonPhoto) -> std::io::Result<()> {
    let gsd = p
        .gsd_mm
        .map_or("unknown GSD".to_string(), |g| format!("{g:.1} mm/px"));
    writeln!(
        out,
        "{}  {}x{}  {}  {} tiles ({} skipped)  {} detections",
        p.file,
        p.width,
        p.height,
        gsd,
        p.tiles_total,
        p.tiles_skipped,
        p.detections.len()
    )?;
    if !p.detections.is_empty() {
        writeln!(
            out,
            "  {:<12} {:>6} {:>26} {:>10} {:>10}",
            "class", "conf", "bbox x0,y0,x1,y1", "area px", "length px"
        )?;
    }
    for d in &p.detections {
        let bbox = format!(
            "{:.0},{:.0},{:.0},{:.0}",
            d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]
        );
        let len = d.length_px.map_or("-".to_string(), |l| format!("{l:.1}"));
        writeln!(
            out,
            "  {:<12} {:>6.3} {:>26} {:>10.0} {:>10}",
            d.class, d.confidence, bbox, d.area_px, len
        )?;
    }
    Ok(())
}
