//! Training export on the committed simulated flight (fixtures/sim): the truth defects,
//! projected into each photo through georef with the true poses, play reviewed findings.
//! Checks that chips show the defect where its mask is, that the mask is the projected
//! outline, that pycocotools reads the COCO files, and that corrections come back in photo
//! pixels (and bad corrections files are refused).

use besikta_core::{Capture, ReviewState};
use besikta_georef::{Ground, PhotoGeometry};
use besikta_infer::image::{GrayImage, RgbImage};
use besikta_infer::Manifest;
use besikta_training::chip;
use besikta_training::{
    export_training, read_corrections, ChipKind, ExportInput, ExportManifest, ExportOptions,
    FindingView, Photo,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn models() -> Vec<Manifest> {
    [
        "crack/crack-unet.toml",
        "pothole/pothole-det.toml",
        "roof/roof-damage.toml",
    ]
    .iter()
    .map(|m| Manifest::load(&root().join("models").join(m)).unwrap())
    .collect()
}

/// The simulated flight's photos and every truth defect as a finding view in each photo it
/// lies well inside. Review states cycle per class so every kind of chip occurs; the sim's
/// `roof_damage` plays the roof model's `missing_tile`.
struct Flight {
    input: ExportInput,
    /// (finding id, photo) -> outline in photo pixels, from georef.
    projected: Vec<(String, String, Vec<[f64; 2]>)>,
}

fn sim_flight(flight: &str) -> Flight {
    let dir = root().join("fixtures/sim");
    let meta = read_json(&dir.join("flight.json"));
    let truth = read_json(&dir.join("truth.geojson"));
    let ground = Ground::Plane {
        height_m: meta["ground_elevation_m"].as_f64().unwrap(),
    };
    let focal_px = meta["camera"]["focal_px"].as_f64().unwrap();
    let mut input = ExportInput::default();
    let mut projected = Vec::new();
    for p in meta["photos"].as_array().unwrap() {
        let w = &p["written"];
        let file = p["file"].as_str().unwrap().to_string();
        let capture = Capture {
            file: file.clone(),
            width: w["width"].as_u64().unwrap() as u32,
            height: w["height"].as_u64().unwrap() as u32,
            latitude: p["true_lat"].as_f64(),
            longitude: p["true_lon"].as_f64(),
            absolute_altitude_m: w["absolute_altitude_m"].as_f64(),
            relative_altitude_m: w["relative_altitude_m"].as_f64(),
            gimbal_yaw_deg: p["true_yaw_deg"].as_f64(),
            gimbal_pitch_deg: Some(-90.0),
            gimbal_roll_deg: Some(0.0),
            focal_length_px: Some(focal_px),
            ..Default::default()
        };
        let geom = PhotoGeometry::new(&capture, &ground).unwrap();
        input.photos.push(Photo {
            flight: flight.into(),
            name: file.clone(),
            path: dir.join(&file),
            gsd_cm: geom.gsd_cm_center().unwrap(),
        });
        let height = meta["ground_elevation_m"].as_f64().unwrap();
        let features = truth["features"].as_array().unwrap();
        for (k, f) in features.iter().enumerate() {
            let props = &f["properties"];
            // The n-th defect of its class: cycling per class gives each model every state.
            let nth = features[..k]
                .iter()
                .filter(|g| g["properties"]["class"] == props["class"])
                .count();
            let id = props["id"].as_str().unwrap().to_string();
            let coords = &f["geometry"]["coordinates"];
            let to_px = |c: &Value| {
                geom.ground_to_pixel(c[1].as_f64().unwrap(), c[0].as_f64().unwrap(), height)
                    .unwrap()
            };
            let outline: Vec<[f64; 2]> = match f["geometry"]["type"].as_str().unwrap() {
                "Polygon" => coords[0].as_array().unwrap().iter().map(to_px).collect(),
                // A crack is a line with a width: a thin outline around it in pixels.
                _ => {
                    let line: Vec<[f64; 2]> =
                        coords.as_array().unwrap().iter().map(to_px).collect();
                    let half = props["width_m"].as_f64().unwrap() * 50.0 / 1.875;
                    buffer(&line, half)
                }
            };
            let b = chip::bounds(&outline).unwrap();
            let inside = b[0] > 30.0
                && b[1] > 30.0
                && b[2] < capture.width as f64 - 30.0
                && b[3] < capture.height as f64 - 30.0;
            if !inside {
                continue;
            }
            let centre = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
            let detected = match props["class"].as_str().unwrap() {
                "roof_damage" => "missing_tile",
                c => c,
            }
            .to_string();
            let review = [
                ReviewState::Confirmed,
                ReviewState::Rejected,
                ReviewState::Corrected,
                ReviewState::Unreviewed,
            ][nth % 4];
            input.views.push(FindingView {
                flight: flight.into(),
                finding_id: id.clone(),
                photo: file.clone(),
                outline_px: outline.clone(),
                class: detected.clone(),
                detected_class: detected,
                review,
                gsd_cm: geom.gsd_cm_at(centre).unwrap(),
            });
            projected.push((id, file.clone(), outline));
        }
    }
    Flight { input, projected }
}

/// A polyline widened by `half` pixels each side (left side out, right side back).
fn buffer(line: &[[f64; 2]], half: f64) -> Vec<[f64; 2]> {
    let normal = |i: usize| {
        let (a, b) = if i + 1 < line.len() {
            (line[i], line[i + 1])
        } else {
            (line[i - 1], line[i])
        };
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let l = (dx * dx + dy * dy).sqrt().max(1e-9);
        [-dy / l * half, dx / l * half]
    };
    let mut ring: Vec<[f64; 2]> = (0..line.len())
        .map(|i| [line[i][0] + normal(i)[0], line[i][1] + normal(i)[1]])
        .collect();
    ring.extend(
        (0..line.len())
            .rev()
            .map(|i| [line[i][0] - normal(i)[0], line[i][1] - normal(i)[1]]),
    );
    ring
}

fn luminance(p: [u8; 3]) -> f64 {
    0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
}

fn export(dir: &Path) -> (Flight, ExportManifest) {
    let flight = sim_flight("7");
    let summary = export_training(&flight.input, &models(), dir, &ExportOptions::default())
        .expect("export runs");
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    (flight, ExportManifest::load(dir).unwrap())
}

#[test]
fn chips_show_each_reviewed_finding_under_its_mask_and_the_mask_is_the_projected_outline() {
    let out = tempfile::tempdir().unwrap();
    let (flight, manifest) = export(out.path());
    let count = |model: &str, kind: ChipKind| {
        manifest
            .chips
            .iter()
            .filter(|c| c.model == model && c.kind == kind)
            .count()
    };
    for model in ["crack-unet", "pothole-det", "roof-damage"] {
        let (p, n, b) = (
            count(model, ChipKind::Positive),
            count(model, ChipKind::HardNegative),
            count(model, ChipKind::Background),
        );
        println!("{model}: {p} positive, {n} hard negative, {b} background chips");
        assert!(p > 0 && n > 0, "{model}: {p} positive, {n} hard negative");
        assert_eq!(b, p, "{model}: as many background chips as positive ones");
    }
    let mut checked = 0;
    let (mut worst_cover, mut worst_ratio) = (1.0f64, 0.0f64);
    for c in &manifest.chips {
        let model = manifest.model(&c.model).unwrap();
        // Scale is the photo's GSD over the model's, up to the rounding of the window.
        let want = c.photo_gsd_cm * 10.0 / model.mm_per_px;
        assert!(
            (c.scale[0] / want - 1.0).abs() < 0.01 && (c.scale[1] / want - 1.0).abs() < 0.01,
            "{}: scale {:?}, want {want}",
            c.file,
            c.scale
        );
        let chip_img: RgbImage = besikta_infer::image::open(out.path().join(&c.file))
            .unwrap()
            .to_rgb8();
        assert_eq!([chip_img.width(), chip_img.height()], c.size);
        match c.kind {
            ChipKind::Background => {
                assert!(c.annotations.is_empty() && c.unreviewed_overlap.is_empty());
                for (_, photo, outline) in &flight.projected {
                    if *photo == c.photo {
                        assert!(
                            chip::clip_to_window(outline, c.window_px).is_empty(),
                            "background chip {} touches a finding",
                            c.file
                        );
                    }
                }
            }
            ChipKind::HardNegative => {
                let id = c.finding_id.as_deref().unwrap();
                assert!(c.annotations.iter().all(|a| a.finding_id != id));
            }
            ChipKind::Positive => {}
        }
        if c.kind != ChipKind::Positive || model.task != "segmentation" {
            continue;
        }
        let id = c.finding_id.as_deref().unwrap();
        let (_, _, outline) = flight
            .projected
            .iter()
            .find(|(f, p, _)| f == id && *p == c.photo)
            .unwrap();
        let mask_path = out
            .path()
            .join(c.file.replace("/images/", "/masks/"))
            .with_extension("png");
        let mask: GrayImage = besikta_infer::image::open(&mask_path).unwrap().to_luma8();
        // The mask against the outline projected into the photo, sampled at each chip
        // pixel's centre mapped back into the photo: the same pixels.
        let (mut inter, mut union, mut inside_lum, mut inside_n) = (0, 0, 0.0, 0);
        let mut around = Vec::new();
        for y in 0..c.size[1] {
            for x in 0..c.size[0] {
                let photo_pt =
                    chip::to_photo(&[[x as f64 + 0.5, y as f64 + 0.5]], c.window_px, c.scale)[0];
                let truth = chip::contains(outline, photo_pt[0], photo_pt[1]);
                let masked = mask.get_pixel(x, y).0[0] > 0;
                inter += usize::from(truth && masked);
                union += usize::from(truth || masked);
                let lum = luminance(chip_img.get_pixel(x, y).0);
                if truth {
                    inside_lum += lum;
                    inside_n += 1;
                } else {
                    around.push(lum);
                }
            }
        }
        let iou = inter as f64 / union as f64;
        // Other findings in the same chip add mask pixels; this finding's must all be there.
        assert!(
            inter as f64 >= 0.97 * inside_n as f64 && inside_n > 0,
            "{}: {inter} of {inside_n} outline pixels in the mask (IoU {iou:.3})",
            c.file
        );
        // The defect is dark in the sim: the chip's pixels under its outline are darker
        // than the chip around it, so chip pixels and mask line up.
        around.sort_by(f64::total_cmp);
        let median = around[around.len() / 2];
        let mean = inside_lum / inside_n as f64;
        assert!(
            mean < 0.8 * median,
            "{}: mean luminance {mean:.0} under {id} vs median {median:.0} around",
            c.file
        );
        worst_cover = worst_cover.min(inter as f64 / inside_n as f64);
        worst_ratio = worst_ratio.max(mean / median);
        checked += 1;
    }
    println!(
        "{checked} segmentation chips: at least {:.1}% of each outline's pixels in the mask; \
         defect pixels at most {:.2} of the luminance around them",
        worst_cover * 100.0,
        worst_ratio
    );
    assert!(checked >= 4, "checked {checked} segmentation chips");
}

fn python() -> PathBuf {
    let venv = root().join(".cache/pyvenv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/setup (it installs pycocotools there)",
        venv.display()
    );
    venv
}

#[test]
fn pycocotools_reads_every_coco_file_and_rasterises_the_masks_we_wrote() {
    let out = tempfile::tempdir().unwrap();
    let (_, manifest) = export(out.path());
    let script = r#"
import json, sys
import numpy as np
from PIL import Image
from pycocotools.coco import COCO
root = sys.argv[1]
for model in sys.argv[2:]:
    coco = COCO(f"{root}/{model}/coco.json")
    worst = 1.0
    for img in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        for a in anns:
            assert a["area"] > 0 and len(a["bbox"]) == 4, a
        try:
            ours = np.array(Image.open(f"{root}/{model}/masks/" + img["file_name"].rsplit(".", 1)[0] + ".png")) > 0
        except FileNotFoundError:
            continue
        theirs = np.zeros((img["height"], img["width"]), bool)
        for a in anns:
            theirs |= coco.annToMask(a) > 0
        union = (ours | theirs).sum()
        if union:
            worst = min(worst, (ours & theirs).sum() / union)
    print(model, len(coco.getImgIds()), len(coco.getAnnIds()), round(float(worst), 4))
"#;
    let has_pil = std::process::Command::new(python())
        .args(["-c", "import PIL"])
        .status()
        .unwrap()
        .success();
    assert!(
        has_pil,
        "Pillow missing in .cache/pyvenv: run scripts/setup"
    );
    let run = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(out.path())
        .args(["crack-unet", "pothole-det", "roof-damage"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "pycocotools failed: {}{}",
        stdout,
        String::from_utf8_lossy(&run.stderr)
    );
    for line in stdout.lines().filter(|l| l.contains('-')) {
        println!("{line}");
        let parts: Vec<&str> = line.split_whitespace().collect();
        let model = parts[0];
        let images: usize = parts[1].parse().unwrap();
        let anns: usize = parts[2].parse().unwrap();
        let worst: f64 = parts[3].parse().unwrap();
        let chips: Vec<_> = manifest.chips.iter().filter(|c| c.model == model).collect();
        assert_eq!(images, chips.len(), "{model}: images");
        assert_eq!(
            anns,
            chips.iter().map(|c| c.annotations.len()).sum::<usize>(),
            "{model}: annotations"
        );
        // pycocotools rasterises polygons by its own rules (pixel corners, not centres).
        assert!(
            worst > 0.75,
            "{model}: worst mask IoU with pycocotools {worst}"
        );
    }
    assert_eq!(stdout.lines().filter(|l| l.contains('-')).count(), 3);
}

/// A roof positive chip with its finding's annotation (the chip to draw corrections on).
fn roof_chip(manifest: &ExportManifest) -> &besikta_training::ChipEntry {
    manifest
        .chips
        .iter()
        .find(|c| {
            c.model == "roof-damage"
                && c.kind == ChipKind::Positive
                && c.annotations.len() == 1
                && c.annotations[0].finding_id == c.finding_id.clone().unwrap()
        })
        .expect("a roof chip with one finding")
}

fn cvat_xml(
    chip: &besikta_training::ChipEntry,
    label: &str,
    polygon: &[[f64; 2]],
    id: &str,
) -> String {
    let name = chip.file.rsplit('/').next().unwrap();
    let points: Vec<String> = polygon
        .iter()
        .map(|p| format!("{:.2},{:.2}", p[0], p[1]))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><id>3</id><name>roof review</name><size>1</size><mode>annotation</mode>
    <labels><label><name>missing_tile</name><type>polygon</type><attributes/></label></labels>
  </task><dumped>2026-12-02 00:40:00.000000+00:00</dumped></meta>
  <image id="0" name="{name}" width="{}" height="{}">
    <polygon label="{label}" source="manual" occluded="0" points="{}" z_order="0">
      <attribute name="finding_id">{id}</attribute>
    </polygon>
  </image>
</annotations>
"#,
        chip.size[0],
        chip.size[1],
        points.join(";")
    )
}

#[test]
fn corrections_from_coco_and_cvat_come_back_in_photo_pixels_and_bad_files_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let (_, manifest) = export(out.path());
    let export_dir = out.path();
    let manifest_before = std::fs::read(export_dir.join("manifest.json")).unwrap();

    // The exported COCO, read back as it is: nothing changed.
    let coco = export_dir.join("roof-damage/coco.json");
    let same = read_corrections(&coco, export_dir, Some("7")).unwrap();
    assert!(same.changed.is_empty(), "{:?}", same.changed);
    assert!(same.unchanged > 0 && same.unmatched.is_empty() && same.removed.is_empty());

    // One outline moved 12 chip pixels right in COCO: the correction is the exported photo
    // outline moved 12 / scale photo pixels.
    let chip = roof_chip(&manifest);
    let id = chip.finding_id.clone().unwrap();
    let name = chip.file.rsplit('/').next().unwrap();
    let mut doc = read_json(&coco);
    let image_id = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["file_name"] == name)
        .unwrap()["id"]
        .clone();
    for a in doc["annotations"].as_array_mut().unwrap() {
        if a["image_id"] == image_id {
            let seg = a["segmentation"][0].as_array_mut().unwrap();
            for (k, v) in seg.iter_mut().enumerate() {
                if k % 2 == 0 {
                    *v = serde_json::json!(v.as_f64().unwrap() + 12.0);
                }
            }
        }
    }
    let moved_file = out.path().join("moved.json");
    std::fs::write(&moved_file, serde_json::to_string(&doc).unwrap()).unwrap();
    let moved = read_corrections(&moved_file, export_dir, Some("7")).unwrap();
    let c = moved
        .changed
        .iter()
        .find(|c| c.finding_id == id)
        .unwrap_or_else(|| panic!("{id} changed: {:?}", moved.changed));
    assert!(c.outline_changed && !c.class_changed);
    assert_eq!(c.flight, "7");
    // Other chips of the same finding keep the old outline, so the largest drawn part is
    // kept: this chip's or another; either way it lies in the finding's photo pixels.
    if c.chip == name {
        let want = chip::to_photo(&chip.annotations[0].polygon, chip.window_px, chip.scale);
        let dx = 12.0 / chip.scale[0];
        assert_eq!(c.photo, chip.photo);
        for (got, w) in c.outline_px.iter().zip(&want) {
            assert!(
                (got[0] - w[0] - dx).abs() < 0.05 && (got[1] - w[1]).abs() < 0.05,
                "{got:?} vs {w:?}"
            );
        }
    }

    // CVAT XML: the same finding redrawn as a triangle and called moss.
    let triangle = [[20.0, 20.0], [120.0, 30.0], [60.0, 140.0]];
    let xml = out.path().join("cvat.xml");
    std::fs::write(&xml, cvat_xml(chip, "moss", &triangle, &id)).unwrap();
    let set = read_corrections(&xml, export_dir, Some("7")).unwrap();
    assert_eq!(set.images, 1);
    assert_eq!(set.changed.len(), 1, "{set:?}");
    let c = &set.changed[0];
    assert_eq!(
        (c.finding_id.as_str(), c.class.as_str()),
        (id.as_str(), "moss")
    );
    assert!(c.class_changed && c.outline_changed);
    let want = chip::to_photo(&triangle, chip.window_px, chip.scale);
    for (got, w) in c.outline_px.iter().zip(&want) {
        assert!((got[0] - w[0]).abs() < 0.01 && (got[1] - w[1]).abs() < 0.01);
    }
    // Without the finding_id attribute the overlap with the exported outline decides.
    let plain = cvat_xml(chip, "moss", &chip.annotations[0].polygon, "");
    std::fs::write(&xml, plain).unwrap();
    let set = read_corrections(&xml, export_dir, None).unwrap();
    assert_eq!(set.changed.len(), 1);
    assert_eq!(set.changed[0].finding_id, id);
    assert!(set.changed[0].class_changed && !set.changed[0].outline_changed);

    // Bad files: each refused with a message naming the problem.
    let refuse = |text: &str, flight: Option<&str>, expect: &str| {
        let f = out.path().join("bad.xml");
        std::fs::write(&f, text).unwrap();
        let err = read_corrections(&f, export_dir, flight)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.xml") && err.contains(expect), "{err}");
        println!("{err}");
    };
    let good = cvat_xml(chip, "missing_tile", &triangle, &id);
    refuse(&good, Some("8"), "is from flight 7, not flight 8");
    refuse(
        &good.replace(name, "IMG_1234.png"),
        None,
        "not chips of this training export (IMG_1234.png)",
    );
    refuse(&good[..good.len() / 2], None, "broken XML");
    let cut = good.find("</image>").unwrap() + "</image>".len();
    refuse(
        &good[..cut],
        None,
        "broken XML: the file ends inside 1 unclosed element",
    );
    refuse(
        &good.replace("</polygon>", "</polygon></image>"),
        None,
        "broken XML",
    );
    refuse(
        &good.replace("label=\"missing_tile\" source", "label=\"rust\" source"),
        None,
        "class \"rust\"",
    );
    refuse(
        &good.replace("width=\"256\"", "width=\"512\""),
        None,
        "draw on the exported chips without resizing",
    );
    refuse(
        "name,class\n",
        None,
        "neither CVAT for images XML nor COCO JSON",
    );
    let coco_text = std::fs::read_to_string(&coco).unwrap();
    refuse(
        &coco_text.replace("\"missing_tile\"", "\"rust\""),
        None,
        "class \"rust\"",
    );
    // Nothing in the export changed.
    assert_eq!(
        std::fs::read(export_dir.join("manifest.json")).unwrap(),
        manifest_before
    );
}

#[test]
fn a_redrawn_piece_of_a_finding_longer_than_its_chip_is_not_taken_for_the_whole() {
    let out = tempfile::tempdir().unwrap();
    let (_, manifest) = export(out.path());
    // A crack longer than one chip: its chips each hold a clipped piece.
    let chip = manifest
        .chips
        .iter()
        .find(|c| {
            c.model == "crack-unet"
                && c.kind == ChipKind::Positive
                && c.annotations.len() == 1
                && c.annotations[0].clipped
                && c.finding_clipped
        })
        .expect("a crack chip holding part of its crack");
    let id = chip.finding_id.clone().unwrap();
    let name = chip.file.rsplit('/').next().unwrap();
    let mut doc = read_json(&out.path().join("crack-unet/coco.json"));
    let image = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["file_name"] == name)
        .unwrap()
        .clone();
    let mut ann = doc["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["image_id"] == image["id"])
        .unwrap()
        .clone();
    for (k, v) in ann["segmentation"][0]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        if k % 2 == 1 {
            *v = serde_json::json!(v.as_f64().unwrap() + 6.0);
        }
    }
    doc["images"] = serde_json::json!([image]);
    doc["annotations"] = serde_json::json!([ann]);
    let file = out.path().join("piece.json");
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    let set = read_corrections(&file, out.path(), None).unwrap();
    assert_eq!(set.partial, vec![(name.to_string(), id.clone())]);
    assert!(set.changed.is_empty() && set.unchanged == 0, "{set:?}");
}
