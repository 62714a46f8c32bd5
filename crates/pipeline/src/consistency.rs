//! Whether the photos that saw a finding saw the same thing (issue 13, multi-view evidence):
//! after merging, the photos of every finding of a class with `min_view_consistency` seen in
//! two or more photos are read again ([`cut_for`], one photo at a time, only those photos),
//! a small north-up grey patch of the ground is cut around each photo's most confident
//! observation of it ([`cut`]), and the finding's best normalised cross-correlation over
//! pairs of its photos ([`Patches::best_pair`]) decides whether it is kept
//! (`inconsistent_views`, see `besikta_report::evidence`).
//!
//! Solid ground looks alike from two photos taken seconds apart; rocks seen through moving
//! water, glints and ripples do not. The patch is resampled on the ground (east-north axes,
//! the photo's own GSD) through the photo's geometry, so photos flown in opposite directions
//! compare directly; a shift of up to [`SEARCH`] samples absorbs the detections' different
//! centres. Nothing is kept per observation while the flight is inferred, so memory does not
//! grow with the flight.

use crate::units::PreparedPhoto;
use besikta_georef::{Ground, PhotoGeometry};
use besikta_report::evidence::EvidenceRules;
use besikta_report::{Finding, Observation};
use image::RgbImage;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Side of the compared square, samples (about 1.6 m at 1.7 cm/px).
pub const SIDE: usize = 96;
/// Largest shift searched each way, samples.
pub const SEARCH: usize = 16;
/// Side of a stored patch.
const FULL: usize = SIDE + 2 * SEARCH;
/// Reason counted in `dropped`.
pub const REASON: &str = "inconsistent_views";

/// One observation's ground patch: grey values, `FULL` x `FULL`, rows north to south.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewPatch {
    pub photo: String,
    /// The observation's `pixel_bbox`: with `photo`, which observation it belongs to.
    pub bbox: [f64; 4],
    pub gray: Vec<u8>,
}

type Key = (String, [u64; 4]);

fn key(photo: &str, bbox: [f64; 4]) -> Key {
    (photo.to_string(), bbox.map(f64::to_bits))
}

/// The patch around `o` in `img` (the photo `o` was detected in, placed by `geom`); `None`
/// when the ground around it does not place or runs off the photo.
pub fn cut(img: &RgbImage, geom: &PhotoGeometry<'_>, o: &Observation) -> Option<ViewPatch> {
    let b = o.pixel_bbox;
    let c = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
    let g = geom.pixel_to_ground(c).ok()?;
    // Pixels per metre east and north at the observation.
    let m_lat = 1.0 / 111_132.0;
    let m_lon = m_lat / g.lat.to_radians().cos().max(1e-6);
    let p0 = geom.ground_to_pixel(g.lat, g.lon, g.height_m).ok()?;
    let pe = geom
        .ground_to_pixel(g.lat, g.lon + m_lon, g.height_m)
        .ok()?;
    let pn = geom
        .ground_to_pixel(g.lat + m_lat, g.lon, g.height_m)
        .ok()?;
    let (de, dn) = (
        [pe[0] - p0[0], pe[1] - p0[1]],
        [pn[0] - p0[0], pn[1] - p0[1]],
    );
    let step = o.gsd_cm / 100.0;
    if !(step.is_finite() && step > 0.0) {
        return None;
    }
    let (w, h) = (img.width() as f64, img.height() as f64);
    let half = FULL as f64 / 2.0;
    let mut gray = Vec::with_capacity(FULL * FULL);
    for r in 0..FULL {
        let n = (half - r as f64 - 0.5) * step;
        for col in 0..FULL {
            let e = (col as f64 + 0.5 - half) * step;
            let x = c[0] + de[0] * e + dn[0] * n;
            let y = c[1] + de[1] * e + dn[1] * n;
            if !(x >= 0.0 && y >= 0.0 && x < w - 1.0 && y < h - 1.0) {
                return None;
            }
            gray.push(bilinear_luma(img, x, y));
        }
    }
    Some(ViewPatch {
        photo: o.photo.clone(),
        bbox: b,
        gray,
    })
}

fn bilinear_luma(img: &RgbImage, x: f64, y: f64) -> u8 {
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let l = |xx: u32, yy: u32| {
        let p = img.get_pixel(xx, yy).0;
        0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
    };
    let v = l(x0, y0) * (1.0 - fx) * (1.0 - fy)
        + l(x0 + 1, y0) * fx * (1.0 - fy)
        + l(x0, y0 + 1) * (1.0 - fx) * fy
        + l(x0 + 1, y0 + 1) * fx * fy;
    v.round().clamp(0.0, 255.0) as u8
}

/// The best normalised cross-correlation of `a`'s central square with `b`'s over shifts of
/// up to [`SEARCH`] samples (every second one); -1 to 1, 0 for a flat patch.
pub fn similarity(a: &ViewPatch, b: &ViewPatch) -> f64 {
    if a.gray.len() != FULL * FULL || b.gray.len() != FULL * FULL {
        return 0.0;
    }
    let n = (SIDE * SIDE) as f64;
    let at = |r: usize, c: usize| a.gray[(r + SEARCH) * FULL + c + SEARCH] as f64;
    let mut mean_a = 0.0;
    for r in 0..SIDE {
        for c in 0..SIDE {
            mean_a += at(r, c);
        }
    }
    mean_a /= n;
    let mut var_a = 0.0;
    let mut za = Vec::with_capacity(SIDE * SIDE);
    for r in 0..SIDE {
        for c in 0..SIDE {
            let v = at(r, c) - mean_a;
            var_a += v * v;
            za.push(v);
        }
    }
    if var_a <= 0.0 {
        return 0.0;
    }
    let mut best: Option<f64> = None;
    for dy in (0..=2 * SEARCH).step_by(2) {
        for dx in (0..=2 * SEARCH).step_by(2) {
            let (mut sb, mut sbb, mut sab) = (0.0, 0.0, 0.0);
            for r in 0..SIDE {
                let row = &b.gray[(r + dy) * FULL + dx..(r + dy) * FULL + dx + SIDE];
                let zr = &za[r * SIDE..(r + 1) * SIDE];
                for (&v, &z) in row.iter().zip(zr) {
                    let v = v as f64;
                    sb += v;
                    sbb += v * v;
                    sab += z * v;
                }
            }
            let var_b = sbb - sb * sb / n;
            if var_b > 0.0 {
                let v = sab / (var_a * var_b).sqrt();
                best = Some(best.map_or(v, |b| b.max(v)));
            }
        }
    }
    best.unwrap_or(0.0)
}

/// Each photo's most confident observation among `observations` (by photo file, in file
/// order).
fn views_of(observations: &[Observation]) -> BTreeMap<&str, &Observation> {
    let mut per_photo: BTreeMap<&str, &Observation> = BTreeMap::new();
    for o in observations {
        let e = per_photo.entry(o.photo.as_str()).or_insert(o);
        if o.confidence > e.confidence {
            *e = o;
        }
    }
    per_photo
}

/// The patches [`Patches::best_pair`] needs for `findings`: of each finding whose class has
/// `min_view_consistency` and that two or more photos saw, each photo's most confident
/// observation. Photos are read (`locate`) and placed (`photos`, `ground`) one at a time; a
/// photo that cannot be read or placed, or ground running off it, gives no patch (the
/// finding is then judged on its other photos, or not at all).
pub fn cut_for(
    findings: &[Finding],
    rules: &EvidenceRules,
    photos: &[PreparedPhoto],
    ground: &Ground,
    locate: &dyn Fn(&str) -> PathBuf,
) -> Patches {
    let mut wanted: BTreeMap<&str, Vec<&Observation>> = BTreeMap::new();
    for f in findings {
        if rules.min_view_consistency(&f.class).is_none() {
            continue;
        }
        let views = views_of(&f.observations);
        if views.len() < 2 {
            continue;
        }
        for (photo, o) in views {
            wanted.entry(photo).or_default().push(o);
        }
    }
    let by_file: HashMap<&str, &PreparedPhoto> = photos
        .iter()
        .map(|p| (p.capture.file.as_str(), p))
        .collect();
    let max_pixels = besikta_ingest::ReadOptions::default().max_pixels;
    let mut out = Vec::new();
    for (photo, obs) in wanted {
        let Some(p) = by_file.get(photo) else {
            continue;
        };
        let Ok(geom) = PhotoGeometry::new(&p.capture, ground) else {
            continue;
        };
        let Ok(img) = besikta_infer::decode_photo_into(&locate(photo), max_pixels, Vec::new())
        else {
            continue;
        };
        out.extend(obs.into_iter().filter_map(|o| cut(&img, &geom, o)));
    }
    Patches::new(out)
}

/// The cut patches of a flight, by observation.
#[derive(Default)]
pub struct Patches(HashMap<Key, ViewPatch>);

impl Patches {
    pub fn new(patches: impl IntoIterator<Item = ViewPatch>) -> Patches {
        Patches(
            patches
                .into_iter()
                .map(|p| (key(&p.photo, p.bbox), p))
                .collect(),
        )
    }

    /// The best similarity over pairs of the photos of a finding's `observations` (each
    /// photo by its most confident observation, when that has a patch), stopping at the
    /// first pair that reaches `enough`; `None` when fewer than two photos have a patch
    /// (nothing to compare: not judged).
    pub fn best_pair(&self, observations: &[Observation], enough: f64) -> Option<f64> {
        let views: Vec<&ViewPatch> = views_of(observations)
            .into_values()
            .filter_map(|o| self.0.get(&key(&o.photo, o.pixel_bbox)))
            .collect();
        if views.len() < 2 {
            return None;
        }
        let mut best = f64::NEG_INFINITY;
        for i in 0..views.len() {
            for j in i + 1..views.len() {
                best = best.max(similarity(views[i], views[j]));
                if best >= enough {
                    return Some(best);
                }
            }
        }
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use besikta_report::evidence::EvidenceRules;

    fn patch(f: impl Fn(usize, usize) -> u8) -> ViewPatch {
        let mut gray = Vec::new();
        for r in 0..FULL {
            for c in 0..FULL {
                gray.push(f(r, c));
            }
        }
        ViewPatch {
            photo: "a".into(),
            bbox: [0.0; 4],
            gray,
        }
    }

    /// A deterministic texture (a hash of the position).
    fn texture(r: i64, c: i64) -> u8 {
        let h = (r.wrapping_mul(73_856_093) ^ c.wrapping_mul(19_349_663)) as u64;
        (h.wrapping_mul(2_654_435_761) >> 24) as u8
    }

    #[test]
    fn the_same_ground_shifted_is_alike_other_ground_is_not() {
        let a = patch(|r, c| texture(r as i64, c as i64));
        // The same ground seen 6 samples further east and 4 further south.
        let b = patch(|r, c| texture(r as i64 - 4, c as i64 - 6));
        assert!(similarity(&a, &b) > 0.99, "{}", similarity(&a, &b));
        let other = patch(|r, c| texture(r as i64 + 1000, c as i64 + 7));
        assert!(
            similarity(&a, &other).abs() < 0.2,
            "{}",
            similarity(&a, &other)
        );
        let flat = patch(|_, _| 90);
        assert_eq!(similarity(&a, &flat), 0.0);
    }

    /// A nadir photo 40 m up over Brighton, `yaw` degrees, 800 x 600 px (8.5 cm/px).
    fn capture(file: &str, yaw: f64) -> besikta_core::Capture {
        besikta_core::Capture {
            file: file.into(),
            width: 800,
            height: 600,
            latitude: Some(46.842_607),
            longitude: Some(-91.994_560),
            absolute_altitude_m: Some(198.5),
            relative_altitude_m: Some(40.0),
            gimbal_yaw_deg: Some(yaw),
            gimbal_pitch_deg: Some(-90.0),
            gimbal_roll_deg: Some(0.0),
            focal_length_px: Some(3.61 / 6.17 * 800.0),
            ..besikta_core::Capture::default()
        }
    }

    fn observation(photo: &str, centre: [f64; 2], confidence: f32) -> Observation {
        let b = [
            centre[0] - 10.0,
            centre[1] - 10.0,
            centre[0] + 10.0,
            centre[1] + 10.0,
        ];
        Observation {
            photo: photo.into(),
            class: "pothole".into(),
            asset_kind: besikta_core::AssetKind::Road,
            confidence,
            pixel_polygon: vec![[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]],
            pixel_bbox: b,
            ground_polygon: Vec::new(),
            length_px: None,
            gsd_cm: 40.0 / (3.61 / 6.17 * 800.0) * 100.0,
            view_quality: 1.0,
            position_uncertainty_m: 1.0,
            pose_sigma_m: None,
            sides_grey: None,
            model: None,
        }
    }

    /// The ground seen flying north, the same ground flying south (the photo turned half a
    /// turn), and that place under moving water (another pattern).
    fn scenes() -> (RgbImage, RgbImage, RgbImage) {
        let a = RgbImage::from_fn(800, 600, |x, y| {
            let v = texture(y as i64 / 8, x as i64 / 8);
            image::Rgb([v, v / 2 + 60, 255 - v])
        });
        let b = RgbImage::from_fn(800, 600, |x, y| *a.get_pixel(799 - x, 599 - y));
        let water = RgbImage::from_fn(800, 600, |x, y| {
            let v = texture(y as i64 / 8 + 500, x as i64 / 8);
            image::Rgb([v, v, v])
        });
        (a, b, water)
    }

    #[test]
    fn photos_flown_in_opposite_directions_see_the_same_ground_moving_water_does_not() {
        let ground = besikta_georef::Ground::TakeOffPlane;
        let (north, south) = (capture("n.jpg", 0.0), capture("s.jpg", 180.0));
        let (gn, gs) = (
            PhotoGeometry::new(&north, &ground).unwrap(),
            PhotoGeometry::new(&south, &ground).unwrap(),
        );
        let (a, b, water) = scenes();
        // One spot, 3 px apart in the two detections' centres.
        let (oa, ob) = (
            observation("n.jpg", [300.0, 250.0], 0.9),
            observation("s.jpg", [799.0 - 303.0, 599.0 - 250.0], 0.8),
        );
        let pa = cut(&a, &gn, &oa).unwrap();
        let pb = cut(&b, &gs, &ob).unwrap();
        let pw = cut(&water, &gs, &ob).unwrap();
        assert!(similarity(&pa, &pb) > 0.9, "{}", similarity(&pa, &pb));
        assert!(similarity(&pa, &pw) < 0.3, "{}", similarity(&pa, &pw));
        let both = [oa.clone(), ob.clone()];
        let best = Patches::new([pa.clone(), pb])
            .best_pair(&both, 0.6)
            .unwrap();
        assert!(best > 0.9, "{best}");
        let best = Patches::new([pa.clone(), pw])
            .best_pair(&both, 0.6)
            .unwrap();
        assert!(best < 0.3, "{best}");
        // One photo with a patch: nothing to compare.
        assert_eq!(Patches::new([pa]).best_pair(&both, 0.6), None);
        // Near the edge of the photo there is no patch.
        assert!(cut(&a, &gn, &observation("n.jpg", [20.0, 20.0], 0.9)).is_none());
    }

    fn finding(class: &str, observations: Vec<Observation>) -> Finding {
        Finding {
            id: "F00001".into(),
            class: class.into(),
            asset_kind: besikta_core::AssetKind::Road,
            severity: besikta_core::Severity::Low,
            confidence: 0.9,
            length_m: None,
            area_m2: 0.1,
            polygon: Vec::new(),
            centroid: [0.0, 0.0],
            asset: None,
            views: observations.len(),
            support: observations.len(),
            observations,
            best: 0,
        }
    }

    #[test]
    fn the_photos_of_checked_findings_are_read_again_from_disk_and_compared() {
        let dir = tempfile::tempdir().unwrap();
        let ground = besikta_georef::Ground::TakeOffPlane;
        let (a, b, water) = scenes();
        for (name, img) in [("n.jpg", &a), ("s.jpg", &b), ("w.jpg", &water)] {
            img.save(dir.path().join(name)).unwrap();
        }
        let photo = |file: &str, yaw: f64| PreparedPhoto {
            capture: capture(file, yaw),
            footprint: Vec::new(),
            gsd_cm: 8.5,
            uncertainty: crate::alignment::PhotoUncertainty {
                map_m: 1.0,
                relative_m: None,
            },
        };
        let photos = [
            photo("n.jpg", 0.0),
            photo("s.jpg", 180.0),
            photo("w.jpg", 180.0),
        ];
        let on_n = observation("n.jpg", [300.0, 250.0], 0.9);
        let on_s = observation("s.jpg", [799.0 - 303.0, 599.0 - 250.0], 0.8);
        let on_w = observation("w.jpg", [799.0 - 303.0, 599.0 - 250.0], 0.8);
        // A weaker second observation in the north photo, off the spot: not the one compared.
        let weak = observation("n.jpg", [500.0, 400.0], 0.3);
        let solid = finding("pothole", vec![on_n.clone(), weak.clone(), on_s.clone()]);
        let wet = finding("pothole", vec![on_n.clone(), on_w.clone()]);
        let alone = finding("pothole", vec![weak.clone()]);
        let rules = EvidenceRules::default();
        let locate = |f: &str| dir.path().join(f);
        let findings = [solid.clone(), wet.clone(), alone.clone()];
        let patches = cut_for(&findings, &rules, &photos, &ground, &locate);
        // Three photos read, one patch each (the weak observation and the lone finding: none).
        assert_eq!(patches.0.len(), 3);
        let s = patches.best_pair(&solid.observations, 0.6).unwrap();
        assert!(s > 0.9, "{s}");
        let w = patches.best_pair(&wet.observations, 0.6).unwrap();
        assert!(w < 0.3, "{w}");
        assert_eq!(patches.best_pair(&alone.observations, 0.6), None);
        // Classes without the rule are not read at all; a missing photo gives no patch.
        let crack = finding("crack", vec![on_n.clone(), on_s.clone()]);
        assert_eq!(
            cut_for(&[crack], &rules, &photos, &ground, &locate).0.len(),
            0
        );
        let gone = |f: &str| dir.path().join("missing").join(f);
        let p = cut_for(&findings, &rules, &photos, &ground, &gone);
        assert_eq!(p.best_pair(&solid.observations, 0.6), None);
    }

    /// Patches the product cut on the real Brighton flight (`fixtures/view-patches`, see
    /// the fixtures README): the five pothole findings on boulders under the sea (false)
    /// and the two water-filled depressions in broken pavement (kept).
    #[test]
    fn real_brighton_boulders_under_water_are_unlike_water_in_pavement_is_alike() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/view-patches");
        let load = |name: String| {
            let gray = image::open(dir.join(&name)).unwrap().to_luma8();
            assert_eq!(gray.dimensions(), (FULL as u32, FULL as u32), "{name}");
            ViewPatch {
                photo: name,
                bbox: [0.0; 4],
                gray: gray.into_raw(),
            }
        };
        let pair = |what: &str, a: &str, b: &str| {
            similarity(
                &load(format!("{what}-{a}.png")),
                &load(format!("{what}-{b}.png")),
            )
        };
        let min = EvidenceRules::default()
            .min_view_consistency("pothole")
            .unwrap();
        for k in 1..=5 {
            let s = pair(&format!("boulder-under-water-{k}"), "DJI_0030", "DJI_0031");
            // The product measured 0.08-0.42 for these five.
            assert!(s < 0.45 && s < min, "boulder {k}: {s}");
        }
        for k in 1..=2 {
            let s = pair(&format!("water-in-pavement-{k}"), "DJI_0034", "DJI_0035");
            // 0.85 and 0.95.
            assert!(s > 0.8 && s >= min, "depression {k}: {s}");
        }
    }
}
