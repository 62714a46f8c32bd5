//! Flights outside a model's scale: a photo coarser than the model accepts is not enlarged
//! to fit (the detail is not in the photo, and the tiles multiply: 16 photos at 40 m once
//! made 7,776 crack tiles and nothing real). The model skips it and the crew hears how low
//! to fly instead.

use besikta_infer::Manifest;
use std::fmt;

/// One photo too coarse for one model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TooCoarse {
    /// Model name and what it finds, e.g. `crack-unet (crack)`.
    pub model: String,
    /// The coarsest GSD the model accepts, mm per pixel.
    pub need_mm: f64,
    /// The photo's GSD, mm per pixel.
    pub photo_mm: f64,
    /// Height above the ground at which this camera gives `need_mm`, metres, when the
    /// photo's own height is known.
    pub advised_height_m: Option<f64>,
}

/// `Some` when a photo at `gsd_mm` is coarser than `manifest` accepts. `height_m` is the
/// camera's height above the ground for that photo, when known: the GSD scales with it, so
/// `height * need / gsd` is how high this camera may fly.
pub fn too_coarse(manifest: &Manifest, gsd_mm: f64, height_m: Option<f64>) -> Option<TooCoarse> {
    let need_mm = manifest.gsd.max_mm_per_px;
    if !(gsd_mm.is_finite() && gsd_mm > need_mm) {
        return None;
    }
    let classes: Vec<&str> = manifest.classes.iter().map(|c| c.name.as_str()).collect();
    Some(TooCoarse {
        model: format!("{} ({})", manifest.name, classes.join(", ")),
        need_mm,
        photo_mm: gsd_mm,
        advised_height_m: height_m
            .filter(|h| h.is_finite() && *h > 0.0)
            .map(|h| h * need_mm / gsd_mm),
    })
}

/// A GSD as people say it: centimetres per pixel for drone photos, millimetres below 1 cm.
fn gsd_text(mm: f64) -> String {
    if mm >= 10.0 {
        format!("{:.1} cm/px", mm / 10.0)
    } else {
        format!("{mm:.1} mm/px")
    }
}

fn advice(height: Option<f64>) -> String {
    match height {
        // Rounded down: the point is to be fine enough.
        Some(h) if h >= 1.0 => format!("fly at {:.0} m or lower with this camera", h.floor()),
        _ => "fly lower or use a camera with a longer lens".to_string(),
    }
}

impl fmt::Display for TooCoarse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} needs {} or finer; this photo is {}, so the model was not run on it \
             (enlarging it would not add detail): {}",
            self.model,
            gsd_text(self.need_mm),
            gsd_text(self.photo_mm),
            advice(self.advised_height_m)
        )
    }
}

/// One sentence for a flight: how many of its `photos` were too coarse for a model, their
/// median GSD and the height to fly (the lowest any of them needs); `None` when none were.
pub fn flight_advice(skips: &[TooCoarse], photos: usize) -> Option<String> {
    let first = skips.first()?;
    let mut gsd: Vec<f64> = skips.iter().map(|s| s.photo_mm).collect();
    gsd.sort_by(f64::total_cmp);
    let median = gsd[gsd.len() / 2];
    let height = skips
        .iter()
        .filter_map(|s| s.advised_height_m)
        .min_by(f64::total_cmp);
    Some(format!(
        "{} needs {} or finer; this flight is {} ({} of {photos} photos coarser, not run): {}",
        first.model,
        gsd_text(first.need_mm),
        gsd_text(median),
        skips.len(),
        advice(height)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn crack_model() -> Manifest {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/crack/crack-unet.toml");
        Manifest::load(&path).unwrap()
    }

    #[test]
    fn a_photo_coarser_than_the_model_is_skipped_with_the_height_to_fly() {
        let m = crack_model();
        assert_eq!(m.gsd.max_mm_per_px, 20.0);
        assert_eq!(
            too_coarse(&m, 20.0, Some(40.0)),
            None,
            "at the limit it runs"
        );
        assert_eq!(too_coarse(&m, 4.0, Some(10.0)), None, "finer photos run");
        // 37 mm/px at 40 m: the same camera gives 20 mm/px at 21.6 m.
        let skip = too_coarse(&m, 37.0, Some(40.0)).unwrap();
        let text = skip.to_string();
        assert!(
            text.starts_with(
                "crack-unet (crack) needs 2.0 cm/px or finer; this photo is 3.7 cm/px"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("fly at 21 m or lower with this camera"),
            "{text}"
        );
        let unknown = too_coarse(&m, 37.0, None).unwrap().to_string();
        assert!(unknown.ends_with("fly lower or use a camera with a longer lens"));

        let flight = flight_advice(
            &[
                skip,
                too_coarse(&m, 36.0, Some(39.0)).unwrap(),
                too_coarse(&m, 38.0, Some(41.0)).unwrap(),
            ],
            5,
        )
        .unwrap();
        assert_eq!(
            flight,
            "crack-unet (crack) needs 2.0 cm/px or finer; this flight is 3.7 cm/px (3 of 5 \
             photos coarser, not run): fly at 21 m or lower with this camera"
        );
        assert_eq!(flight_advice(&[], 5), None);
    }
}
