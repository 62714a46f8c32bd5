//! Crops made at processing time: when a job's pipeline has finished, each finding's
//! default crop (its best view, the crop settings the endpoint uses) is rendered once, each
//! photo decoded once for all its findings, and written among the job's products as
//! `crops/<content digest>.jpg`. The products are published to the storage with the rest
//! and removed with them when the flight is processed again or deleted.
//!
//! The file is named by [`CropKey::content_digest`] (photo content hash, box, outline,
//! settings), so the crop endpoint serves it only when it is exactly the crop it would make
//! now; anything else (another view, a replaced photo, other settings) falls back to the
//! decode pool.

use crate::crops::CropKey;
use crate::findings::{basename, crop_decoded, CropConfig};
use crate::AppState;
use besikta_core::finding::Finding;
use besikta_store::Photo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The folder of the precomputed crops inside a job's products folder.
pub const DIR: &str = "crops";

/// The crop settings of the endpoint's default crop on this server.
pub fn default_config(state: &AppState) -> CropConfig {
    CropConfig {
        max_photo_pixels: state.config().limits.max_photo_pixels,
        ..CropConfig::default()
    }
}

/// The product name (relative to the job's products folder) of the crop with this key.
pub fn product_name(key: &CropKey) -> String {
    format!("{DIR}/{}.jpg", key.content_digest())
}

/// What [`render`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rendered {
    /// Crops written.
    pub crops: usize,
    /// Photos decoded for them.
    pub decoded: usize,
    /// Findings whose crop could not be made (their crops are made on demand instead).
    pub failed: usize,
}

/// One crop to make from a photo.
struct Wanted<'a> {
    name: String,
    bbox: [f64; 4],
    outline: &'a [[f64; 2]],
}

/// Renders the default crop of every finding into `out_dir/crops/`. `photos` are the
/// flight's photos and `inputs` their local files, in the same order. A crop that cannot
/// be made is reported and left to the endpoint; it never fails the job. `renew_lease` is
/// called every few seconds (a large flight takes a while).
pub fn render(
    state: &AppState,
    findings: &[Finding],
    photos: &[Photo],
    inputs: &[PathBuf],
    out_dir: &Path,
    renew_lease: &dyn Fn(),
) -> Rendered {
    render_with(
        findings,
        photos,
        inputs,
        out_dir,
        &default_config(state),
        renew_lease,
    )
}

/// [`render`] with explicit crop settings.
pub fn render_with(
    findings: &[Finding],
    photos: &[Photo],
    inputs: &[PathBuf],
    out_dir: &Path,
    cfg: &CropConfig,
    renew_lease: &dyn Fn(),
) -> Rendered {
    let mut done = Rendered::default();
    // Photo index -> its crops; the endpoint finds the photo by the view's file name.
    let mut by_photo: BTreeMap<usize, Vec<Wanted>> = BTreeMap::new();
    for f in findings {
        let Some(obs) = f.best_observation() else {
            continue;
        };
        let name = basename(&obs.photo);
        let Some(i) = photos.iter().position(|p| p.name == name) else {
            done.failed += 1;
            continue;
        };
        let key = CropKey {
            org_id: 0,
            finding_id: 0,
            photo_sha256: &photos[i].sha256,
            bbox: obs.pixel_bbox,
            outline: &obs.pixel_polygon,
            cfg,
        };
        let wanted = by_photo.entry(i).or_default();
        let name = product_name(&key);
        if !wanted.iter().any(|w| w.name == name) {
            wanted.push(Wanted {
                name,
                bbox: obs.pixel_bbox,
                outline: &obs.pixel_polygon,
            });
        }
    }
    if by_photo.is_empty() {
        return done;
    }
    if let Err(e) = std::fs::create_dir_all(out_dir.join(DIR)) {
        eprintln!(
            "besikta: cannot make {}: {e}; crops will be made on demand",
            out_dir.join(DIR).display()
        );
        return Rendered {
            failed: by_photo.values().map(Vec::len).sum(),
            ..done
        };
    }
    let mut last_renew = std::time::Instant::now();
    for (i, wanted) in by_photo {
        if last_renew.elapsed() >= std::time::Duration::from_secs(5) {
            renew_lease();
            last_renew = std::time::Instant::now();
        }
        let Some(path) = inputs.get(i) else {
            done.failed += wanted.len();
            continue;
        };
        // One decode per photo, dropped before the next: one photo's pixels at a time.
        let img = match besikta_infer::decode_photo(path, cfg.max_photo_pixels) {
            Ok(img) => img,
            Err(e) => {
                eprintln!(
                    "besikta: no processing-time crops from {}: {e}; they will be made on demand",
                    photos[i].name
                );
                done.failed += wanted.len();
                continue;
            }
        };
        done.decoded += 1;
        for w in wanted {
            let written = crop_decoded(&img, w.bbox, w.outline, cfg).and_then(|jpeg| {
                std::fs::write(out_dir.join(&w.name), jpeg)
                    .map_err(|e| format!("cannot write {}: {e}", out_dir.join(&w.name).display()))
            });
            match written {
                Ok(()) => done.crops += 1,
                Err(e) => {
                    eprintln!("besikta: {e}; this crop will be made on demand");
                    done.failed += 1;
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::crop_finding;
    use besikta_core::finding::Observation;
    use besikta_core::{AssetKind, Severity};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/brighton")
            .join(name)
    }

    /// An observation through serde (fields added later take their defaults).
    fn obs(photo: &str, bbox: [f64; 4]) -> Observation {
        serde_json::from_value(serde_json::json!({
            "photo": format!("/somewhere/{photo}"),
            "class": "crack",
            "asset_kind": AssetKind::Road,
            "confidence": 0.7,
            "pixel_polygon": [],
            "pixel_bbox": bbox,
            "ground_polygon": [],
            "length_px": null,
            "gsd_cm": 1.7,
            "view_quality": 1.0,
            "position_uncertainty_m": 1.0,
            "model": null,
        }))
        .unwrap()
    }

    fn finding(id: &str, observations: Vec<Observation>, best: usize) -> Finding {
        Finding {
            id: id.into(),
            class: "crack".into(),
            asset_kind: AssetKind::Road,
            severity: Severity::Medium,
            confidence: 0.6,
            length_m: None,
            area_m2: 0.5,
            polygon: vec![],
            centroid: [24.0, 60.0],
            asset: None,
            views: observations.len(),
            support: observations.len(),
            observations,
            best,
        }
    }

    fn photo(id: i64, name: &str) -> Photo {
        Photo {
            id,
            flight_id: 1,
            name: name.into(),
            sha256: format!("sha-{name}"),
            size: 1,
            path: format!("flights/1/photos/{name}"),
        }
    }

    #[test]
    fn one_decode_per_photo_and_the_bytes_of_an_on_demand_crop() {
        let dir = tempfile::tempdir().unwrap();
        let photos = vec![photo(1, "DJI_0018.JPG"), photo(2, "DJI_0019.JPG")];
        let inputs = vec![fixture("DJI_0018.JPG"), fixture("DJI_0019.JPG")];
        let outline = vec![[1000.0, 1000.0], [1200.0, 1010.0], [1100.0, 1100.0]];
        let mut third = obs("DJI_0018.JPG", [1000.0, 1000.0, 1200.0, 1100.0]);
        third.pixel_polygon = outline.clone();
        let findings = vec![
            finding(
                "F1",
                vec![obs("DJI_0018.JPG", [500.0, 500.0, 700.0, 600.0])],
                0,
            ),
            // The best view is the second: only it is rendered.
            finding(
                "F2",
                vec![
                    obs("DJI_0018.JPG", [10.0, 10.0, 20.0, 20.0]),
                    obs("DJI_0019.JPG", [2000.0, 1500.0, 2100.0, 1550.0]),
                ],
                1,
            ),
            finding("F3", vec![third], 0),
            // Not a photo of this flight: counted, not fatal.
            finding("F4", vec![obs("ELSEWHERE.JPG", [0.0, 0.0, 9.0, 9.0])], 0),
        ];
        let cfg = CropConfig::default();
        let done = render_with(&findings, &photos, &inputs, dir.path(), &cfg, &|| {});
        assert_eq!(
            done,
            Rendered {
                crops: 3,
                decoded: 2,
                failed: 1
            }
        );
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join(DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        // Each stored crop is byte for byte the one the endpoint would make on demand.
        for (photo_i, bbox, outline) in [
            (0usize, [500.0, 500.0, 700.0, 600.0], vec![]),
            (1, [2000.0, 1500.0, 2100.0, 1550.0], vec![]),
            (0, [1000.0, 1000.0, 1200.0, 1100.0], outline.clone()),
        ] {
            let key = CropKey {
                org_id: 9,
                finding_id: 9,
                photo_sha256: &photos[photo_i].sha256,
                bbox,
                outline: &outline,
                cfg: &cfg,
            };
            let stored = std::fs::read(dir.path().join(product_name(&key))).unwrap();
            let on_demand = crop_finding(&inputs[photo_i], bbox, &outline, &cfg).unwrap();
            assert!(stored == on_demand, "crop of {bbox:?} differs");
        }
    }
}
