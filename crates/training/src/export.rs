//! The export: plan chips per model from the finding views, decode each photo once, write
//! chips, masks, YOLO labels, COCO and the manifest.

use crate::chip::{self, ChipScale, Window};
use crate::coco::{self, Coco, CocoAnnotation, CocoCategory, CocoImage};
use crate::manifest::{
    ChipAnnotation, ChipEntry, ChipKind, ExportManifest, ModelEntry, Skipped, FORMAT,
};
use crate::{ExportInput, FindingView, Photo, TrainingError};
use besikta_core::ReviewState;
use besikta_infer::image::{GrayImage, RgbImage};
use besikta_infer::manifest::Task;
use besikta_infer::Manifest;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Image format of the chips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChipFormat {
    /// Lossless; the default.
    #[default]
    Png,
    /// Quality 95; smaller, with compression artefacts.
    Jpeg,
}

impl ChipFormat {
    fn extension(self) -> &'static str {
        match self {
            ChipFormat::Png => "png",
            ChipFormat::Jpeg => "jpg",
        }
    }
}

/// Options of [`export_training`].
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub format: ChipFormat,
    /// Background chips per model; `None`: as many as the model has positive chips.
    pub background_per_model: Option<usize>,
    /// Seed of the background sampling (same input and seed, same chips).
    pub seed: u64,
    /// Decompression-bomb guard for decoding photos (ingest's limit).
    pub max_pixels: u64,
    /// Room around an outline inside its chip, chip pixels.
    pub margin_chip_px: f64,
    /// At most this many chips per finding view: an outline needing more windows (a
    /// lane marking taken for a 30 m crack) keeps this many, evenly spread over it.
    pub max_chips_per_view: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            format: ChipFormat::Png,
            background_per_model: None,
            seed: 7,
            max_pixels: 200_000_000,
            margin_chip_px: 16.0,
            max_chips_per_view: 8,
        }
    }
}

/// Chips written for one model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelCounts {
    pub positive: usize,
    pub hard_negative: usize,
    pub background: usize,
    /// Labelled outlines over all chips.
    pub annotations: usize,
    /// Windows left out by [`ExportOptions::max_chips_per_view`].
    pub windows_dropped: usize,
}

/// What [`export_training`] wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    /// Per model name.
    pub models: BTreeMap<String, ModelCounts>,
    /// Views or photos that gave no chip, with the reason.
    pub skipped: Vec<Skipped>,
    pub manifest: PathBuf,
}

/// A chip before its pixels are cut.
struct Plan {
    model: usize,
    kind: ChipKind,
    photo: usize,
    finding_id: Option<String>,
    review: ReviewState,
    gsd_cm: f64,
    window: Window,
    scale: [f64; 2],
}

/// Photo index by (flight, name).
type PhotoIndex = HashMap<(String, String), usize>;

/// Writes chips, labels and the manifest for `models` into `out` (a new or empty folder).
/// One unreadable photo or unusable outline is skipped with its reason; the rest go on.
pub fn export_training(
    input: &ExportInput,
    models: &[Manifest],
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportSummary, TrainingError> {
    if models.is_empty() {
        return Err(TrainingError::Input(
            "no models: give the models folder whose manifests say each model's GSD and classes"
                .into(),
        ));
    }
    prepare_out(out)?;
    let index: PhotoIndex = input
        .photos
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.flight.clone(), p.name.clone()), i))
        .collect();
    let mut skipped = Vec::new();
    let mut dims: HashMap<usize, Option<[u32; 2]>> = HashMap::new();
    let mut plans = Vec::new();
    let mut dropped = HashMap::new();
    for (mi, m) in models.iter().enumerate() {
        plan_findings(
            input,
            &index,
            mi,
            m,
            opts,
            &mut dims,
            &mut plans,
            &mut skipped,
            &mut dropped,
        );
    }
    for (mi, m) in models.iter().enumerate() {
        let positives = plans
            .iter()
            .filter(|p| p.model == mi && p.kind == ChipKind::Positive)
            .count();
        let want = opts.background_per_model.unwrap_or(positives);
        plan_background(input, mi, m, want, opts, &mut dims, &mut plans);
    }
    let mut summary = write_all(input, models, out, opts, plans, skipped)?;
    for (mi, n) in dropped {
        if let Some(c) = summary.models.get_mut(&models[mi].name) {
            c.windows_dropped = n;
        }
    }
    Ok(summary)
}

fn prepare_out(out: &Path) -> Result<(), TrainingError> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out)
            .map_err(|e| TrainingError::io(out, "read the output folder", e))?;
        if entries.next().is_some() {
            return Err(TrainingError::Output {
                path: out.to_path_buf(),
                message:
                    "the output folder is not empty; give a new folder so two exports do not mix"
                        .into(),
            });
        }
    }
    std::fs::create_dir_all(out).map_err(|e| TrainingError::io(out, "create the output folder", e))
}

fn photo_dims(
    photo: &Photo,
    i: usize,
    dims: &mut HashMap<usize, Option<[u32; 2]>>,
) -> Option<[u32; 2]> {
    *dims.entry(i).or_insert_with(|| {
        besikta_infer::image::ImageReader::open(&photo.path)
            .ok()?
            .with_guessed_format()
            .ok()?
            .into_dimensions()
            .ok()
            .map(|(w, h)| [w, h])
    })
}

fn has_class(m: &Manifest, class: &str) -> bool {
    m.classes.iter().any(|c| c.name == class)
}

/// What a view is to a model: positive, hard negative or nothing.
fn kind_for(v: &FindingView, m: &Manifest) -> Option<ChipKind> {
    match v.review {
        ReviewState::Confirmed | ReviewState::Corrected if has_class(m, &v.class) => {
            Some(ChipKind::Positive)
        }
        ReviewState::Rejected if has_class(m, &v.detected_class) => Some(ChipKind::HardNegative),
        ReviewState::Corrected if has_class(m, &v.detected_class) => Some(ChipKind::HardNegative),
        _ => None,
    }
}

fn chip_size(m: &Manifest) -> [u32; 2] {
    [m.input.width, m.input.height]
}

#[allow(clippy::too_many_arguments)]
fn plan_findings(
    input: &ExportInput,
    index: &PhotoIndex,
    mi: usize,
    m: &Manifest,
    opts: &ExportOptions,
    dims: &mut HashMap<usize, Option<[u32; 2]>>,
    plans: &mut Vec<Plan>,
    skipped: &mut Vec<Skipped>,
    dropped: &mut HashMap<usize, usize>,
) {
    for v in &input.views {
        let Some(kind) = kind_for(v, m) else { continue };
        let skip = |reason: String| Skipped {
            flight: v.flight.clone(),
            photo: v.photo.clone(),
            finding_id: Some(v.finding_id.clone()),
            model: Some(m.name.clone()),
            reason,
        };
        let Some(&pi) = index.get(&(v.flight.clone(), v.photo.clone())) else {
            skipped.push(skip("the photo is not among the flight's photos".into()));
            continue;
        };
        let photo_mm = v.gsd_cm * 10.0;
        if !(photo_mm.is_finite() && photo_mm > 0.0) {
            skipped.push(skip(format!("GSD {} cm/px is not usable", v.gsd_cm)));
            continue;
        }
        if photo_mm > m.gsd.max_mm_per_px {
            skipped.push(skip(format!(
                "the photo ({photo_mm:.1} mm/px) is coarser than the model accepts ({} mm/px)",
                m.gsd.max_mm_per_px
            )));
            continue;
        }
        let Some(size) = photo_dims(&input.photos[pi], pi, dims) else {
            skipped.push(skip(format!(
                "cannot read the size of {}",
                input.photos[pi].path.display()
            )));
            continue;
        };
        let scale = ChipScale::new(photo_mm, m.gsd.mm_per_px, chip_size(m));
        let windows = chip::windows_around(&v.outline_px, &scale, size, opts.margin_chip_px);
        if windows.is_empty() {
            skipped.push(skip(
                "the outline has no area inside the photo (fewer than 3 points, or outside)".into(),
            ));
            continue;
        }
        let windows = spread(windows, opts.max_chips_per_view.max(1));
        *dropped.entry(mi).or_default() += windows.1;
        for window in windows.0 {
            plans.push(Plan {
                model: mi,
                kind,
                photo: pi,
                finding_id: Some(v.finding_id.clone()),
                review: v.review,
                gsd_cm: v.gsd_cm,
                window,
                scale: scale.scale(),
            });
        }
    }
}

/// At most `max` of `windows`, evenly spread (first and last kept), and how many were left out.
fn spread(windows: Vec<Window>, max: usize) -> (Vec<Window>, usize) {
    let n = windows.len();
    if n <= max {
        return (windows, 0);
    }
    let kept = if max == 1 {
        vec![windows[n / 2]]
    } else {
        (0..max)
            .map(|i| windows[(i * (n - 1) + (max - 1) / 2) / (max - 1)])
            .collect()
    };
    (kept, n - max)
}

/// splitmix64: a fixed, seedable generator (background chips must be reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

fn plan_background(
    input: &ExportInput,
    mi: usize,
    m: &Manifest,
    want: usize,
    opts: &ExportOptions,
    dims: &mut HashMap<usize, Option<[u32; 2]>>,
    plans: &mut Vec<Plan>,
) {
    if want == 0 {
        return;
    }
    let reviewed: BTreeSet<&str> = input
        .views
        .iter()
        .filter(|v| v.review != ReviewState::Unreviewed)
        .map(|v| v.flight.as_str())
        .collect();
    let candidates: Vec<usize> = input
        .photos
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let mm = p.gsd_cm * 10.0;
            reviewed.contains(p.flight.as_str())
                && mm.is_finite()
                && mm > 0.0
                && mm <= m.gsd.max_mm_per_px
        })
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return;
    }
    // Every finding's bounds per photo, any class, any review: background touches none.
    let mut taken: HashMap<usize, Vec<[f64; 4]>> = HashMap::new();
    for v in &input.views {
        if let (Some(&pi), Some(b)) = (
            candidates
                .iter()
                .find(|&&i| input.photos[i].flight == v.flight && input.photos[i].name == v.photo),
            chip::bounds(&v.outline_px),
        ) {
            taken.entry(pi).or_default().push(b);
        }
    }
    let mut rng = Rng(opts.seed ^ (mi as u64).wrapping_mul(0x1000_0001));
    let mut made = 0;
    for _ in 0..want * 50 {
        if made == want {
            break;
        }
        let pi = candidates[rng.below(candidates.len() as u64) as usize];
        let photo = &input.photos[pi];
        let Some(size) = photo_dims(photo, pi, dims) else {
            continue;
        };
        let scale = ChipScale::new(photo.gsd_cm * 10.0, m.gsd.mm_per_px, chip_size(m));
        let [w, h] = scale.window;
        if w > i64::from(size[0]) || h > i64::from(size[1]) {
            continue;
        }
        let x0 = rng.below((i64::from(size[0]) - w + 1) as u64) as i64;
        let y0 = rng.below((i64::from(size[1]) - h + 1) as u64) as i64;
        let window = [x0, y0, w, h];
        let wb = chip::window_bounds(window);
        let busy = taken.entry(pi).or_default();
        if busy.iter().any(|b| chip::overlaps(*b, wb)) {
            continue;
        }
        busy.push(wb);
        plans.push(Plan {
            model: mi,
            kind: ChipKind::Background,
            photo: pi,
            finding_id: None,
            review: ReviewState::Unreviewed,
            gsd_cm: photo.gsd_cm,
            window,
            scale: scale.scale(),
        });
        made += 1;
    }
}

/// A file-name-safe piece: letters, digits, `-` and `_`; the rest become `_`.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name)
}

/// Per-model writers.
struct ModelOut {
    dir: PathBuf,
    coco: Coco,
    counts: ModelCounts,
    names: BTreeSet<String>,
}

fn write_all(
    input: &ExportInput,
    models: &[Manifest],
    out: &Path,
    opts: &ExportOptions,
    mut plans: Vec<Plan>,
    mut skipped: Vec<Skipped>,
) -> Result<ExportSummary, TrainingError> {
    let mut outs = Vec::new();
    for m in models {
        let dir = out.join(safe(&m.name));
        let mut subdirs = vec!["images", "labels"];
        if m.task == Task::Segmentation {
            subdirs.push("masks");
        }
        for sub in subdirs {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| TrainingError::io(&d, "create", e))?;
        }
        outs.push(ModelOut {
            dir,
            coco: Coco {
                info: json!({
                    "description": format!("Besikta reviewed findings for {} {}", m.name, m.version),
                    "version": m.version,
                }),
                licenses: Vec::new(),
                images: Vec::new(),
                annotations: Vec::new(),
                categories: m
                    .classes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| CocoCategory {
                        id: i as u64 + 1,
                        name: c.name.clone(),
                        supercategory: c.asset_kind.as_str().to_string(),
                    })
                    .collect(),
            },
            counts: ModelCounts::default(),
            names: BTreeSet::new(),
        });
    }
    // Views per photo, for the labels of every chip cut from it.
    let mut views_in: HashMap<(&str, &str), Vec<&FindingView>> = HashMap::new();
    for v in &input.views {
        views_in
            .entry((v.flight.as_str(), v.photo.as_str()))
            .or_default()
            .push(v);
    }
    plans.sort_by_key(|p| p.photo);
    let mut chips = Vec::new();
    let mut start = 0;
    while start < plans.len() {
        let pi = plans[start].photo;
        let end = start + plans[start..].iter().take_while(|p| p.photo == pi).count();
        let photo = &input.photos[pi];
        match besikta_infer::decode_photo(&photo.path, opts.max_pixels) {
            Ok(img) => {
                let here = views_in
                    .get(&(photo.flight.as_str(), photo.name.as_str()))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                for plan in &plans[start..end] {
                    let entry = write_chip(
                        plan,
                        photo,
                        &img,
                        here,
                        &models[plan.model],
                        &mut outs[plan.model],
                        opts,
                    )?;
                    chips.push(entry);
                }
            }
            Err(e) => skipped.push(Skipped {
                flight: photo.flight.clone(),
                photo: photo.name.clone(),
                finding_id: None,
                model: None,
                reason: format!("{e} ({} chips not made)", end - start),
            }),
        }
        start = end;
    }
    let mut summary = ExportSummary::default();
    for (m, o) in models.iter().zip(outs) {
        write_json(
            &o.dir.join("coco.json"),
            &serde_json::to_value(&o.coco).map_err(|e| {
                TrainingError::Input(format!("COCO of {} could not be serialised: {e}", m.name))
            })?,
        )?;
        let mut yaml = String::from("# YOLO dataset written by besikta export-training\npath: .\ntrain: images\nval: images\nnames:\n");
        for (i, c) in m.classes.iter().enumerate() {
            yaml.push_str(&format!("  {i}: {}\n", json!(c.name)));
        }
        write_text(&o.dir.join("data.yaml"), &yaml)?;
        summary.models.insert(m.name.clone(), o.counts);
    }
    chips.sort_by(|a: &ChipEntry, b| a.file.cmp(&b.file));
    let manifest = ExportManifest {
        format: FORMAT.to_string(),
        models: models
            .iter()
            .map(|m| ModelEntry {
                name: m.name.clone(),
                version: m.version.clone(),
                task: match m.task {
                    Task::Segmentation => "segmentation".into(),
                    Task::Detection => "detection".into(),
                },
                mm_per_px: m.gsd.mm_per_px,
                classes: m.classes.iter().map(|c| c.name.clone()).collect(),
            })
            .collect(),
        chips,
        skipped: skipped.clone(),
    };
    let path = out.join("manifest.json");
    let value = serde_json::to_value(&manifest)
        .map_err(|e| TrainingError::Input(format!("manifest could not be serialised: {e}")))?;
    write_json(&path, &value)?;
    summary.skipped = skipped;
    summary.manifest = path;
    Ok(summary)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), TrainingError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainingError::Input(format!("{}: {e}", path.display())))?;
    write_text(path, &text)
}

fn write_text(path: &Path, text: &str) -> Result<(), TrainingError> {
    std::fs::write(path, text).map_err(|e| TrainingError::io(path, "write", e))
}

fn write_chip(
    plan: &Plan,
    photo: &Photo,
    img: &RgbImage,
    here: &[&FindingView],
    m: &Manifest,
    o: &mut ModelOut,
    opts: &ExportOptions,
) -> Result<ChipEntry, TrainingError> {
    let size = chip_size(m);
    let chip_img = chip::cut(img, plan.window, size);
    let base = match &plan.finding_id {
        Some(id) => format!(
            "{}-{}-{}-{}",
            safe(&m.name),
            safe(&photo.flight),
            safe(stem(&photo.name)),
            safe(id)
        ),
        None => format!(
            "{}-{}-{}-bg",
            safe(&m.name),
            safe(&photo.flight),
            safe(stem(&photo.name))
        ),
    };
    let mut k = 1;
    let mut name = format!("{base}-{k}");
    while o.names.contains(&name) {
        k += 1;
        name = format!("{base}-{k}");
    }
    o.names.insert(name.clone());
    let file_name = format!("{name}.{}", opts.format.extension());
    let image_path = o.dir.join("images").join(&file_name);
    let saved = match opts.format {
        ChipFormat::Png => chip_img.save(&image_path),
        ChipFormat::Jpeg => std::fs::File::create(&image_path)
            .map_err(besikta_infer::image::ImageError::IoError)
            .and_then(|f| {
                let mut w = std::io::BufWriter::new(f);
                besikta_infer::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, 95)
                    .encode_image(&chip_img)
            }),
    };
    saved.map_err(|e| TrainingError::Output {
        path: image_path.clone(),
        message: format!("could not write the chip: {e}"),
    })?;

    // Labels: every positive outline of this model in the photo that reaches in.
    let mut annotations = Vec::new();
    let mut unreviewed = Vec::new();
    for v in here {
        let clipped = chip::clip_to_window(&v.outline_px, plan.window);
        if clipped.is_empty() {
            continue;
        }
        if v.review == ReviewState::Unreviewed {
            if has_class(m, &v.detected_class) && !unreviewed.contains(&v.finding_id) {
                unreviewed.push(v.finding_id.clone());
            }
            continue;
        }
        if kind_for(v, m) != Some(ChipKind::Positive) {
            continue;
        }
        let polygon = chip::to_chip(&clipped, plan.window, plan.scale);
        if chip::ring_area(&polygon) < 1.0 {
            continue;
        }
        annotations.push(ChipAnnotation {
            finding_id: v.finding_id.clone(),
            class: v.class.clone(),
            review: v.review,
            polygon,
            clipped: is_clipped(&v.outline_px, &clipped),
        });
    }
    let finding_clipped = plan.finding_id.as_ref().is_some_and(|id| {
        here.iter().filter(|v| &v.finding_id == id).any(|v| {
            is_clipped(
                &v.outline_px,
                &chip::clip_to_window(&v.outline_px, plan.window),
            )
        })
    });

    let image_id = o.coco.images.len() as u64 + 1;
    o.coco.images.push(CocoImage {
        id: image_id,
        file_name: file_name.clone(),
        width: size[0],
        height: size[1],
    });
    let mut yolo = String::new();
    let mut mask = vec![0u8; (size[0] * size[1]) as usize];
    for a in &annotations {
        let Some(ci) = m.classes.iter().position(|c| c.name == a.class) else {
            continue;
        };
        let bbox = coco::bbox_xywh(&a.polygon);
        o.coco.annotations.push(CocoAnnotation {
            id: o.coco.annotations.len() as u64 + 1,
            image_id,
            category_id: ci as u64 + 1,
            segmentation: json!([coco::flat(&a.polygon)]),
            area: (chip::ring_area(&a.polygon) * 100.0).round() / 100.0,
            bbox: bbox.to_vec(),
            iscrowd: 0,
            attributes: Some(
                [
                    ("finding_id".to_string(), json!(a.finding_id)),
                    ("review".to_string(), json!(a.review.as_str())),
                ]
                .into_iter()
                .collect(),
            ),
        });
        let (w, h) = (f64::from(size[0]), f64::from(size[1]));
        match m.task {
            Task::Detection => yolo.push_str(&format!(
                "{ci} {:.6} {:.6} {:.6} {:.6}\n",
                (bbox[0] + bbox[2] / 2.0) / w,
                (bbox[1] + bbox[3] / 2.0) / h,
                bbox[2] / w,
                bbox[3] / h
            )),
            Task::Segmentation => {
                yolo.push_str(&ci.to_string());
                for p in &a.polygon {
                    yolo.push_str(&format!(
                        " {:.6} {:.6}",
                        (p[0] / w).clamp(0.0, 1.0),
                        (p[1] / h).clamp(0.0, 1.0)
                    ));
                }
                yolo.push('\n');
                chip::rasterise(&a.polygon, ci as u8 + 1, &mut mask, size);
            }
        }
    }
    write_text(&o.dir.join("labels").join(format!("{name}.txt")), &yolo)?;
    if m.task == Task::Segmentation {
        let mask_path = o.dir.join("masks").join(format!("{name}.png"));
        let img = GrayImage::from_raw(size[0], size[1], mask)
            .ok_or_else(|| TrainingError::Input(format!("mask of {name} has the wrong size")))?;
        img.save(&mask_path).map_err(|e| TrainingError::Output {
            path: mask_path.clone(),
            message: format!("could not write the mask: {e}"),
        })?;
    }
    match plan.kind {
        ChipKind::Positive => o.counts.positive += 1,
        ChipKind::HardNegative => o.counts.hard_negative += 1,
        ChipKind::Background => o.counts.background += 1,
    }
    o.counts.annotations += annotations.len();
    let rel = format!(
        "{}/images/{file_name}",
        o.dir
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
    );
    Ok(ChipEntry {
        file: rel,
        model: m.name.clone(),
        kind: plan.kind,
        flight: photo.flight.clone(),
        photo: photo.name.clone(),
        finding_id: plan.finding_id.clone(),
        review: plan.review,
        window_px: plan.window,
        scale: plan.scale,
        size,
        photo_gsd_cm: plan.gsd_cm,
        annotations,
        unreviewed_overlap: unreviewed,
        finding_clipped,
    })
}

/// Whether clipping cut off part of an outline (more than half a percent of its area).
fn is_clipped(outline: &[[f64; 2]], clipped: &[[f64; 2]]) -> bool {
    chip::ring_area(clipped) < 0.995 * chip::ring_area(outline)
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spreading_keeps_first_and_last_and_counts_the_rest() {
        let w: Vec<[i64; 4]> = (0..10).map(|i| [i, 0, 1, 1]).collect();
        let (kept, dropped) = spread(w.clone(), 4);
        assert_eq!(
            kept.iter().map(|k| k[0]).collect::<Vec<_>>(),
            vec![0, 3, 6, 9]
        );
        assert_eq!(dropped, 6);
        assert_eq!(spread(w.clone(), 10), (w.clone(), 0));
        assert_eq!(spread(w, 1).0, vec![[5, 0, 1, 1]]);
    }
}
