//! Corrected outlines read back from an annotation tool: CVAT for images 1.1 XML or COCO
//! JSON made from an export's chips, mapped through the export's manifest to outlines in
//! pixels of the original photos, one per finding.
//!
//! Everything is checked before anything is returned, so a caller that stores the result
//! stores all of it or nothing: a file for another flight, an image name that is not a
//! chip of the export, XML or JSON that does not parse, a class the chip's model does not
//! have, an image whose size is not the chip's, or a run-length mask each stop the import
//! with a message naming the file and the image.
//!
//! An annotation belongs to a finding by its `finding_id` attribute (written by the export,
//! kept by CVAT), else by the largest overlap with an exported outline in the same chip,
//! else, in a chip cut around one finding, to that finding. An outline matching no finding
//! (a defect the model missed) is listed in [`CorrectionSet::unmatched`], not stored: a
//! finding needs a flight's evidence, not just a drawn shape.

use crate::chip;
use crate::coco::Coco;
use crate::manifest::{ChipEntry, ExportManifest};
use crate::TrainingError;
use quick_xml::events::{BytesStart, Event};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One finding's correction, in pixels of one of its photos.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingCorrection {
    pub flight: String,
    pub finding_id: String,
    pub photo: String,
    /// The class the annotation gives.
    pub class: String,
    /// The corrected outline in pixels of `photo` (the largest part when the finding was cut
    /// over several chips of that photo).
    pub outline_px: Vec<[f64; 2]>,
    /// Whether the outline or the class differs from what was exported.
    pub outline_changed: bool,
    pub class_changed: bool,
    /// The chip the outline was drawn on.
    pub chip: String,
}

/// What a corrections file says, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CorrectionSet {
    /// Findings whose class or outline changed, one entry each.
    pub changed: Vec<FindingCorrection>,
    /// Findings annotated exactly as exported.
    pub unchanged: usize,
    /// Outlines that match no finding: `(chip, class)`.
    pub unmatched: Vec<(String, String)>,
    /// Findings exported with an outline whose annotation is gone from the file: `(flight,
    /// finding id)`. Not applied (a person rejects a finding in the review queue).
    pub removed: Vec<(String, String)>,
    /// Redrawn outlines not taken because the finding reaches past the chip they were drawn
    /// on (a piece cannot stand for the whole): `(chip, finding id)`. A class change on
    /// them still counts.
    pub partial: Vec<(String, String)>,
    /// Images of the file.
    pub images: usize,
}

/// One annotation as read, in chip pixels.
#[derive(Debug, Clone)]
struct Drawn {
    image: String,
    class: String,
    polygon: Vec<[f64; 2]>,
    finding_id: Option<String>,
}

/// Image name and size (when the file says it) and its annotations.
#[derive(Debug, Default)]
struct ReadFile {
    images: Vec<(String, Option<[u32; 2]>)>,
    drawn: Vec<Drawn>,
}

/// Reads and checks `file` against the export in `export` (its folder or `manifest.json`);
/// `flight`, when given, must be the flight of every image in the file.
pub fn read_corrections(
    file: &Path,
    export: &Path,
    flight: Option<&str>,
) -> Result<CorrectionSet, TrainingError> {
    let manifest = ExportManifest::load(export)?;
    let bytes = std::fs::read(file).map_err(|e| TrainingError::io(file, "read", e))?;
    let err = |message: String| TrainingError::Corrections {
        path: file.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| err(format!("not UTF-8 text: {e}")))?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let read = if trimmed.starts_with('<') {
        read_cvat(trimmed).map_err(err)?
    } else if trimmed.starts_with('{') {
        read_coco(trimmed).map_err(err)?
    } else {
        return Err(err(
            "neither CVAT for images XML nor COCO JSON (it should start with `<` or `{`)".into(),
        ));
    };
    resolve(read, &manifest, flight).map_err(err)
}

fn basename(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn resolve(
    read: ReadFile,
    manifest: &ExportManifest,
    flight: Option<&str>,
) -> Result<CorrectionSet, String> {
    let by_name: HashMap<&str, &ChipEntry> = manifest
        .chips
        .iter()
        .map(|c| (basename(&c.file), c))
        .collect();
    if read.images.is_empty() {
        return Err("it has no images".into());
    }
    // Every image must be a chip of this export, of the expected flight, at the chip's size.
    let unknown: Vec<&str> = read
        .images
        .iter()
        .map(|(n, _)| basename(n))
        .filter(|n| !by_name.contains_key(n))
        .collect();
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(5).copied().collect();
        return Err(format!(
            "{} of its {} images are not chips of this training export ({}{}); import the file made from the chips of the export you name",
            unknown.len(),
            read.images.len(),
            shown.join(", "),
            if unknown.len() > shown.len() { ", ..." } else { "" }
        ));
    }
    for (name, size) in &read.images {
        let chip = by_name[basename(name)];
        if let Some(f) = flight {
            if chip.flight != f {
                return Err(format!(
                    "image {} is from flight {}, not flight {f}: this file is for another flight",
                    basename(name),
                    chip.flight
                ));
            }
        }
        if let Some(s) = size {
            if *s != chip.size {
                return Err(format!(
                    "image {} is {}x{} here but the chip is {}x{}; draw on the exported chips without resizing them",
                    basename(name),
                    s[0],
                    s[1],
                    chip.size[0],
                    chip.size[1]
                ));
            }
        }
    }
    for d in &read.drawn {
        let chip = by_name.get(basename(&d.image)).ok_or_else(|| {
            format!(
                "an annotation refers to image {}, which the file does not list",
                d.image
            )
        })?;
        let model = manifest
            .model(&chip.model)
            .ok_or_else(|| format!("the export names no model {}", chip.model))?;
        if !model.classes.contains(&d.class) {
            return Err(format!(
                "class {:?} (image {}) is not a class of model {} (classes: {}); rename the label or move the chip to the right model",
                d.class,
                basename(&d.image),
                model.name,
                model.classes.join(", ")
            ));
        }
        if d.polygon.len() < 3 || chip::ring_area(&d.polygon) <= 0.0 {
            return Err(format!(
                "an outline of class {} in image {} has no area (fewer than 3 points)",
                d.class,
                basename(&d.image)
            ));
        }
    }

    // Match annotations to findings, per chip.
    let mut set = CorrectionSet {
        images: read.images.len(),
        ..Default::default()
    };
    let mut drawn_by_chip: BTreeMap<&str, Vec<&Drawn>> = BTreeMap::new();
    for d in &read.drawn {
        drawn_by_chip.entry(basename(&d.image)).or_default().push(d);
    }
    // (flight, finding) -> candidates (chip, class, outline in photo px, changed flags, area).
    let mut per_finding: BTreeMap<(String, String), Vec<(FindingCorrection, f64)>> =
        BTreeMap::new();
    let mut seen_findings: BTreeMap<(String, String), bool> = BTreeMap::new();
    for (name, _) in &read.images {
        let chip = by_name[basename(name)];
        for a in &chip.annotations {
            seen_findings
                .entry((chip.flight.clone(), a.finding_id.clone()))
                .or_insert(false);
        }
        let drawn = drawn_by_chip.remove(basename(name)).unwrap_or_default();
        for d in drawn {
            let Some(finding) = match_finding(d, chip) else {
                set.unmatched
                    .push((basename(name).to_string(), d.class.clone()));
                continue;
            };
            seen_findings.insert((chip.flight.clone(), finding.clone()), true);
            let exported = chip.annotations.iter().find(|a| a.finding_id == finding);
            let (mut outline_changed, class_changed, clipped) = match exported {
                Some(a) => (
                    mask_iou(&a.polygon, &d.polygon, chip.size) < 0.98,
                    a.class != d.class,
                    a.clipped,
                ),
                // Drawn on a hard negative or over a finding not labelled in this chip.
                None => (true, true, chip.finding_clipped),
            };
            if outline_changed && clipped {
                set.partial
                    .push((basename(name).to_string(), finding.clone()));
                outline_changed = false;
            }
            let outline_px = chip::to_photo(&d.polygon, chip.window_px, chip.scale);
            let area = chip::ring_area(&d.polygon);
            per_finding
                .entry((chip.flight.clone(), finding.clone()))
                .or_default()
                .push((
                    FindingCorrection {
                        flight: chip.flight.clone(),
                        finding_id: finding,
                        photo: chip.photo.clone(),
                        class: d.class.clone(),
                        outline_px,
                        outline_changed,
                        class_changed,
                        chip: basename(name).to_string(),
                    },
                    area,
                ));
        }
    }
    for ((flight, id), kept) in &seen_findings {
        if !kept {
            set.removed.push((flight.clone(), id.clone()));
        }
    }
    for ((_, id), mut list) in per_finding {
        // The outline kept is the largest redrawn whole outline; a class change anywhere
        // counts.
        let changed_class = list
            .iter()
            .find(|(c, _)| c.class_changed)
            .map(|(c, _)| c.class.clone());
        list.sort_by(|a, b| {
            b.0.outline_changed
                .cmp(&a.0.outline_changed)
                .then(b.1.total_cmp(&a.1))
        });
        let (mut best, _) = list.swap_remove(0);
        if let Some(class) = changed_class {
            best.class = class;
            best.class_changed = true;
        }
        if best.outline_changed || best.class_changed {
            set.changed.push(best);
        } else if !set.partial.iter().any(|(_, f)| *f == id) {
            set.unchanged += 1;
        }
    }
    Ok(set)
}

/// The finding an annotation belongs to (see the module docs).
fn match_finding(d: &Drawn, chip: &ChipEntry) -> Option<String> {
    if let Some(id) = &d.finding_id {
        if chip.annotations.iter().any(|a| &a.finding_id == id)
            || chip.finding_id.as_deref() == Some(id.as_str())
        {
            return Some(id.clone());
        }
    }
    let best = chip
        .annotations
        .iter()
        .map(|a| (mask_iou(&a.polygon, &d.polygon, chip.size), a))
        .filter(|(iou, _)| *iou > 0.0)
        .max_by(|x, y| x.0.total_cmp(&y.0));
    if let Some((_, a)) = best {
        return Some(a.finding_id.clone());
    }
    chip.finding_id.clone()
}

/// Intersection over union of two outlines rasterised on the chip grid.
fn mask_iou(a: &[[f64; 2]], b: &[[f64; 2]], size: [u32; 2]) -> f64 {
    let n = (size[0] * size[1]) as usize;
    let mut ma = vec![0u8; n];
    let mut mb = vec![0u8; n];
    chip::rasterise(a, 1, &mut ma, size);
    chip::rasterise(b, 1, &mut mb, size);
    let (mut inter, mut union) = (0usize, 0usize);
    for (x, y) in ma.iter().zip(&mb) {
        inter += usize::from(*x & *y);
        union += usize::from(*x | *y);
    }
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

fn read_coco(text: &str) -> Result<ReadFile, String> {
    let coco: Coco = serde_json::from_str(text).map_err(|e| format!("not COCO JSON: {e}"))?;
    let images: HashMap<u64, &str> = coco
        .images
        .iter()
        .map(|i| (i.id, i.file_name.as_str()))
        .collect();
    let categories: HashMap<u64, &str> = coco
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    let mut out = ReadFile {
        images: coco
            .images
            .iter()
            .map(|i| {
                let size = (i.width > 0 && i.height > 0).then_some([i.width, i.height]);
                (i.file_name.clone(), size)
            })
            .collect(),
        drawn: Vec::new(),
    };
    for a in &coco.annotations {
        let image = images.get(&a.image_id).ok_or_else(|| {
            format!(
                "annotation {} refers to image id {}, which is not in `images`",
                a.id, a.image_id
            )
        })?;
        let class = categories.get(&a.category_id).ok_or_else(|| {
            format!(
                "annotation {} has category id {}, which is not in `categories`",
                a.id, a.category_id
            )
        })?;
        let finding_id = a
            .attributes
            .as_ref()
            .and_then(|m| m.get("finding_id"))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let mut polygons: Vec<Vec<[f64; 2]>> = Vec::new();
        match &a.segmentation {
            serde_json::Value::Array(parts) if !parts.is_empty() => {
                for part in parts {
                    let nums: Vec<f64> = part
                        .as_array()
                        .map(|v| v.iter().filter_map(serde_json::Value::as_f64).collect())
                        .unwrap_or_default();
                    if !nums.len().is_multiple_of(2) || nums.len() < 6 {
                        return Err(format!(
                            "annotation {} (image {image}) has a polygon that is not x, y pairs of at least 3 points",
                            a.id
                        ));
                    }
                    polygons.push(nums.chunks(2).map(|c| [c[0], c[1]]).collect());
                }
            }
            serde_json::Value::Object(_) => {
                return Err(format!(
                    "annotation {} (image {image}) is a run-length mask; export polygons instead",
                    a.id
                ))
            }
            _ if a.bbox.len() == 4 => {
                let [x, y, w, h] = [a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]];
                polygons.push(vec![[x, y], [x + w, y], [x + w, y + h], [x, y + h]]);
            }
            _ => {
                return Err(format!(
                    "annotation {} (image {image}) has neither a polygon nor a box",
                    a.id
                ))
            }
        }
        // Parts of one annotation: the largest stands for it.
        polygons.sort_by(|p, q| chip::ring_area(q).total_cmp(&chip::ring_area(p)));
        if let Some(polygon) = polygons.into_iter().next() {
            out.drawn.push(Drawn {
                image: image.to_string(),
                class: class.to_string(),
                polygon,
                finding_id,
            });
        }
    }
    Ok(out)
}

fn attr(e: &BytesStart, key: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|e| format!("broken XML attribute: {e}"))?;
        if a.key.as_ref() == key.as_bytes() {
            let v = a
                .unescape_value()
                .map_err(|e| format!("broken XML attribute {key}: {e}"))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn number(e: &BytesStart, key: &str, image: &str) -> Result<f64, String> {
    attr(e, key)?
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("a box in image {image} has no number `{key}`"))
}

fn read_cvat(text: &str) -> Result<ReadFile, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = ReadFile::default();
    let mut image: Option<String> = None;
    let mut in_shape = false;
    let mut attribute: Option<String> = None;
    let mut saw_root = false;
    let mut depth = 0usize;
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("broken XML near byte {pos}: {e}"))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let opens = matches!(event, Event::Start(_));
                depth += usize::from(opens);
                let tag = e.name().as_ref().to_vec();
                match tag.as_slice() {
                    b"annotations" => saw_root = true,
                    b"image" => {
                        let name = attr(e, "name")?.ok_or("an <image> has no name attribute")?;
                        let w = attr(e, "width")?.and_then(|v| v.parse::<u32>().ok());
                        let h = attr(e, "height")?.and_then(|v| v.parse::<u32>().ok());
                        out.images
                            .push((name.clone(), w.zip(h).map(|(w, h)| [w, h])));
                        image = Some(name);
                    }
                    b"polygon" | b"box" => {
                        let img = image
                            .clone()
                            .ok_or("a shape outside any <image> (is this a CVAT video file?)")?;
                        let class = attr(e, "label")?
                            .ok_or_else(|| format!("a shape in image {img} has no label"))?;
                        let polygon = if tag.as_slice() == b"polygon" {
                            let points = attr(e, "points")?
                                .ok_or_else(|| format!("a polygon in image {img} has no points"))?;
                            parse_points(&points).ok_or_else(|| {
                                format!(
                                    "the points of a polygon in image {img} are not `x,y;x,y;...`"
                                )
                            })?
                        } else {
                            let (x0, y0) = (number(e, "xtl", &img)?, number(e, "ytl", &img)?);
                            let (x1, y1) = (number(e, "xbr", &img)?, number(e, "ybr", &img)?);
                            vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
                        };
                        out.drawn.push(Drawn {
                            image: img,
                            class,
                            polygon,
                            finding_id: None,
                        });
                        in_shape = opens;
                    }
                    b"mask" | b"polyline" | b"points" | b"cuboid" | b"ellipse" | b"skeleton" => {
                        let img = image.clone().unwrap_or_default();
                        return Err(format!(
                            "image {img} has a <{}>; only polygons and boxes are read (draw outlines as polygons)",
                            String::from_utf8_lossy(&tag)
                        ));
                    }
                    b"attribute" if in_shape => {
                        attribute = attr(e, "name")?;
                    }
                    _ => {}
                }
            }
            Event::Text(t) if attribute.as_deref() == Some("finding_id") => {
                let v = t
                    .decode()
                    .map_err(|e| format!("broken XML text near byte {pos}: {e}"))?
                    .trim()
                    .to_string();
                if let (Some(d), false) = (out.drawn.last_mut(), v.is_empty()) {
                    d.finding_id = Some(v);
                }
            }
            Event::End(e) => match e.name().as_ref() {
                _ if depth == 0 => {
                    return Err(format!(
                        "broken XML near byte {pos}: a closing tag without an opening one"
                    ))
                }
                name => {
                    depth -= 1;
                    match name {
                        b"image" => image = None,
                        b"polygon" | b"box" => in_shape = false,
                        b"attribute" => attribute = None,
                        _ => {}
                    }
                }
            },
            Event::Eof if depth > 0 => {
                return Err(format!(
                    "broken XML: the file ends inside {depth} unclosed element(s) (cut off?)"
                ))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err("no <annotations> element: not a CVAT for images XML file".into());
    }
    Ok(out)
}

/// CVAT's `x1,y1;x2,y2;...`.
fn parse_points(s: &str) -> Option<Vec<[f64; 2]>> {
    s.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (x, y) = p.split_once(',')?;
            Some([x.trim().parse().ok()?, y.trim().parse().ok()?])
        })
        .collect()
}
