//! Sensor sizes of common mapping drone cameras, and the focal length in pixels of a photo
//! from, best first: DJI's calibration, the focal length in mm with the sensor width, the
//! 35 mm equivalent, or the focal-plane resolution tags.

use crate::xmp::XmpFields;
use besikta_core::{BrownDistortion, IntrinsicsSource};

/// One camera's sensor, from the manufacturer's specifications.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensor {
    /// EXIF `Model` values this sensor is known by.
    pub models: &'static [&'static str],
    /// The drone or payload, for people reading the table.
    pub product: &'static str,
    /// Active area, millimetres, in the sensor's native (landscape) orientation.
    pub width_mm: f64,
    pub height_mm: f64,
    /// Full-resolution photo size in the native aspect, pixels.
    pub native_px: [u32; 2],
}

const fn sensor(
    models: &'static [&'static str],
    product: &'static str,
    width_mm: f64,
    height_mm: f64,
    native_px: [u32; 2],
) -> Sensor {
    Sensor {
        models,
        product,
        width_mm,
        height_mm,
        native_px,
    }
}

/// 1/2.3" sensors (6.17 x 4.55 mm) are the consumer DJI standard; 1" is 13.2 x 8.8 mm;
/// 4/3 is 17.3 x 13.0 mm; 1/2" 48 MP sensors are 6.4 x 4.8 mm.
pub const SENSORS: &[Sensor] = &[
    // DJI
    sensor(
        &["FC300S", "FC300X", "FC300C", "FC300XW"],
        "DJI Phantom 3",
        6.17,
        4.55,
        [4000, 3000],
    ),
    sensor(&["FC330"], "DJI Phantom 4", 6.17, 4.55, [4000, 3000]),
    sensor(
        &["FC6310", "FC6310S", "FC6310R"],
        "DJI Phantom 4 Pro / Pro V2 / RTK",
        13.2,
        8.8,
        [5472, 3648],
    ),
    sensor(&["FC220"], "DJI Mavic Pro", 6.17, 4.55, [4000, 3000]),
    sensor(&["FC2103"], "DJI Mavic Air", 6.17, 4.55, [4056, 3040]),
    sensor(
        &["FC2204"],
        "DJI Mavic 2 Enterprise Zoom",
        6.17,
        4.55,
        [4000, 3000],
    ),
    sensor(&["FC3170"], "DJI Mavic Air 2", 6.4, 4.8, [8000, 6000]),
    sensor(&["FC3411"], "DJI Air 2S", 13.2, 8.8, [5472, 3648]),
    sensor(&["FC7203"], "DJI Mavic Mini", 6.17, 4.55, [4000, 3000]),
    sensor(&["FC7303"], "DJI Mini 2", 6.17, 4.55, [4000, 3000]),
    sensor(&["FC3582"], "DJI Mini 3 Pro", 9.7, 7.3, [8064, 6048]),
    sensor(&["FC8482"], "DJI Mini 4 Pro", 9.7, 7.3, [8064, 6048]),
    sensor(
        &["L1D-20c"],
        "DJI Mavic 2 Pro (Hasselblad)",
        13.2,
        8.8,
        [5472, 3648],
    ),
    sensor(
        &["L2D-20c"],
        "DJI Mavic 3 (Hasselblad)",
        17.3,
        13.0,
        [5280, 3956],
    ),
    sensor(&["FC6510"], "DJI Zenmuse X4S", 13.2, 8.8, [5472, 3648]),
    sensor(&["FC6520"], "DJI Zenmuse X5S", 17.3, 13.0, [5280, 3956]),
    sensor(&["FC6540"], "DJI Zenmuse X7", 23.5, 15.7, [6016, 4008]),
    sensor(
        &["ZenmuseP1", "ZP1"],
        "DJI Zenmuse P1",
        35.9,
        24.0,
        [8192, 5460],
    ),
    sensor(&["M3E"], "DJI Mavic 3 Enterprise", 17.3, 13.0, [5280, 3956]),
    sensor(
        &["M3M"],
        "DJI Mavic 3 Multispectral (RGB)",
        17.3,
        13.0,
        [5280, 3956],
    ),
    sensor(
        &["M3T"],
        "DJI Mavic 3 Thermal (wide)",
        6.4,
        4.8,
        [8000, 6000],
    ),
    // Autel Robotics
    sensor(
        &["XT701", "EVO II"],
        "Autel EVO II (8K)",
        6.4,
        4.8,
        [8000, 6000],
    ),
    sensor(
        &["XT705", "EVO II Pro"],
        "Autel EVO II Pro (6K)",
        13.2,
        8.8,
        [5472, 3648],
    ),
    sensor(
        &["XT709", "EVO II Dual"],
        "Autel EVO II Dual 640T",
        6.4,
        4.8,
        [8000, 6000],
    ),
    // Parrot. Anafi: Sony IMX230, 5344 x 4016 pixels of 1.12 µm.
    sensor(
        &["ANAFI", "ANAFIUSA", "ANAFIUA", "ANAFI Thermal"],
        "Parrot Anafi",
        5.985,
        4.498,
        [5344, 4016],
    ),
    sensor(&["ANAFI Ai"], "Parrot Anafi Ai", 6.4, 4.8, [8000, 6000]),
    // Sequoia writes one Model for its RGB and its four 1.2 MP band cameras (3.75 µm
    // pixels); the photo size tells them apart.
    sensor(
        &["Sequoia"],
        "Parrot Sequoia (RGB)",
        6.17,
        4.55,
        [4608, 3456],
    ),
    sensor(
        &["Sequoia"],
        "Parrot Sequoia (multispectral band)",
        4.8,
        3.6,
        [1280, 960],
    ),
];

/// Uppercase letters and digits only, so `L1D-20c`, `l1d20c` and `L1D 20C` match.
fn normalise(model: &str) -> String {
    model
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The sensor of an EXIF model, choosing by photo width when one model has several.
pub fn sensor_for(model: &str, photo_width: u32) -> Option<&'static Sensor> {
    let wanted = normalise(model);
    if wanted.is_empty() {
        return None;
    }
    SENSORS
        .iter()
        .filter(|s| s.models.iter().any(|m| normalise(m) == wanted))
        .min_by_key(|s| s.native_px[0].abs_diff(photo_width))
}

/// The pinhole intrinsics ingest settled on for one photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Intrinsics {
    pub focal_px: f64,
    pub principal_point: Option<[f64; 2]>,
    pub distortion: Option<BrownDistortion>,
    pub source: IntrinsicsSource,
}

/// What the intrinsics are derived from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub width: u32,
    pub height: u32,
    pub model: Option<&'a str>,
    pub focal_length_mm: Option<f64>,
    pub focal_length_35mm: Option<f64>,
    pub focal_plane_px_per_mm: Option<f64>,
    pub xmp: &'a XmpFields,
}

/// The diagonal of a 36 x 24 mm frame, which the 35 mm equivalent is defined on.
const FULL_FRAME_DIAGONAL_MM: f64 = 43.266_615_305_567_87;

pub(crate) fn intrinsics(inputs: &Inputs<'_>) -> Option<Intrinsics> {
    let (w, h) = (f64::from(inputs.width), f64::from(inputs.height));
    let xmp = inputs.xmp;

    // DJI's per-unit factory calibration beats the per-model CalibratedFocalLength.
    if let Some(dewarp) = xmp.dewarp {
        return Some(Intrinsics {
            focal_px: (dewarp.fx + dewarp.fy) / 2.0,
            principal_point: Some([w / 2.0 + dewarp.cx_offset, h / 2.0 + dewarp.cy_offset]),
            distortion: Some(dewarp.distortion),
            source: IntrinsicsSource::Calibrated,
        });
    }
    if let Some(focal_px) = xmp.calibrated_focal_px {
        return Some(Intrinsics {
            focal_px,
            principal_point: xmp.calibrated_center_px,
            distortion: None,
            source: IntrinsicsSource::Calibrated,
        });
    }

    let uncalibrated = |focal_px: f64, source| {
        (focal_px.is_finite() && focal_px > 0.0).then_some(Intrinsics {
            focal_px,
            principal_point: None,
            distortion: None,
            source,
        })
    };
    // Compare in landscape orientation whatever way the photo was saved.
    let (long, short) = (w.max(h), w.min(h));
    let sensor = inputs
        .model
        .and_then(|m| sensor_for(m, inputs.width.max(inputs.height)));

    if let (Some(focal_mm), Some(sensor)) = (inputs.focal_length_mm, sensor) {
        // A photo wider than the sensor (16:9 on a 4:3 sensor) keeps the full width and
        // crops the height; a narrower one keeps the height.
        let focal_px = if long / short >= sensor.width_mm / sensor.height_mm - 1e-3 {
            focal_mm / sensor.width_mm * long
        } else {
            focal_mm / sensor.height_mm * short
        };
        if let Some(found) = uncalibrated(focal_px, IntrinsicsSource::CameraDatabase) {
            return Some(found);
        }
    }

    if let Some(f35) = inputs.focal_length_35mm {
        // The 35 mm equivalent describes the whole sensor's diagonal. Without a known
        // sensor, assume a 16:9 (or wider) photo is a crop of a 4:3 sensor, as most drone
        // cameras make them, and that a 4:3 or 3:2 photo shows the whole sensor.
        let native_aspect = sensor.map_or_else(
            || {
                if long / short > 1.55 {
                    4.0 / 3.0
                } else {
                    long / short
                }
            },
            |s| s.width_mm / s.height_mm,
        );
        let (full_long, full_short) = if long / short >= native_aspect - 1e-3 {
            (long, long / native_aspect)
        } else {
            (short * native_aspect, short)
        };
        let diagonal_px = full_long.hypot(full_short);
        if let Some(found) = uncalibrated(
            f35 / FULL_FRAME_DIAGONAL_MM * diagonal_px,
            IntrinsicsSource::Equivalent35mm,
        ) {
            return Some(found);
        }
    }

    if let (Some(focal_mm), Some(px_per_mm)) =
        (inputs.focal_length_mm, inputs.focal_plane_px_per_mm)
    {
        return uncalibrated(focal_mm * px_per_mm, IntrinsicsSource::FocalPlaneResolution);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmp::Dewarp;

    fn inputs<'a>(xmp: &'a XmpFields, width: u32, height: u32, model: &'a str) -> Inputs<'a> {
        Inputs {
            width,
            height,
            model: Some(model),
            focal_length_mm: Some(3.61),
            focal_length_35mm: Some(20.0),
            focal_plane_px_per_mm: None,
            xmp,
        }
    }

    #[test]
    fn every_model_is_unique_and_plausible() {
        let mut seen = std::collections::HashSet::new();
        for s in SENSORS {
            for m in s.models {
                // Sequoia is listed twice on purpose (chosen by photo width).
                assert!(
                    seen.insert(normalise(m)) || *m == "Sequoia",
                    "{m} listed twice"
                );
            }
            let aspect = s.width_mm / s.height_mm;
            let px_aspect = f64::from(s.native_px[0]) / f64::from(s.native_px[1]);
            assert!(
                (aspect - px_aspect).abs() < 0.05,
                "{}: {aspect} vs {px_aspect}",
                s.product
            );
        }
        assert_eq!(sensor_for("l1d 20C", 5472).unwrap().width_mm, 13.2);
        assert_eq!(sensor_for("Sequoia", 1280).unwrap().width_mm, 4.8);
        assert_eq!(sensor_for("Sequoia", 4608).unwrap().width_mm, 6.17);
        assert!(sensor_for("", 100).is_none());
    }

    #[test]
    fn sixteen_by_nine_keeps_the_sensor_width() {
        let xmp = XmpFields::default();
        let found = intrinsics(&inputs(&xmp, 4000, 2250, "FC300S")).unwrap();
        assert_eq!(found.source, IntrinsicsSource::CameraDatabase);
        assert!((found.focal_px - 3.61 / 6.17 * 4000.0).abs() < 1e-9);
        // The same photo saved portrait.
        let portrait = intrinsics(&inputs(&xmp, 2250, 4000, "FC300S")).unwrap();
        assert!((portrait.focal_px - found.focal_px).abs() < 1e-9);
        // A square crop keeps the height.
        let square = intrinsics(&inputs(&xmp, 3000, 3000, "FC300S")).unwrap();
        assert!((square.focal_px - 3.61 / 4.55 * 3000.0).abs() < 1e-9);
    }

    #[test]
    fn equivalent_35mm_uses_the_full_sensor_diagonal() {
        let xmp = XmpFields::default();
        let found = intrinsics(&inputs(&xmp, 4000, 2250, "unknown camera")).unwrap();
        assert_eq!(found.source, IntrinsicsSource::Equivalent35mm);
        // 4:3 sensor 4000 px wide: diagonal 5000 px.
        assert!((found.focal_px - 20.0 / FULL_FRAME_DIAGONAL_MM * 5000.0).abs() < 1e-9);
        // A 3:2 photo is a 36 x 24 frame scaled: f35 / 36 * width exactly.
        let three_two = intrinsics(&inputs(&xmp, 6000, 4000, "unknown camera")).unwrap();
        assert!((three_two.focal_px - 20.0 / 36.0 * 6000.0).abs() < 1e-9);
    }

    #[test]
    fn calibration_comes_first() {
        let xmp = XmpFields {
            calibrated_focal_px: Some(3666.666504),
            calibrated_center_px: Some([2736.0, 1824.0]),
            ..XmpFields::default()
        };
        let found = intrinsics(&inputs(&xmp, 5472, 3648, "FC6310R")).unwrap();
        assert_eq!(found.source, IntrinsicsSource::Calibrated);
        assert_eq!(found.focal_px, 3666.666504);
        assert_eq!(found.principal_point, Some([2736.0, 1824.0]));

        let xmp = XmpFields {
            calibrated_focal_px: Some(3666.666504),
            dewarp: Some(Dewarp {
                fx: 3713.29,
                fy: 3713.29,
                cx_offset: 7.02,
                cy_offset: -8.72,
                distortion: BrownDistortion {
                    k1: -0.1,
                    ..BrownDistortion::default()
                },
            }),
            ..XmpFields::default()
        };
        let found = intrinsics(&inputs(&xmp, 5280, 3956, "M3E")).unwrap();
        assert_eq!(found.focal_px, 3713.29);
        assert_eq!(found.principal_point, Some([2640.0 + 7.02, 1978.0 - 8.72]));
        assert_eq!(found.distortion.unwrap().k1, -0.1);
    }

    #[test]
    fn focal_plane_resolution_is_the_last_resort() {
        let xmp = XmpFields::default();
        let found = intrinsics(&Inputs {
            focal_length_35mm: None,
            focal_plane_px_per_mm: Some(648.3),
            ..inputs(&xmp, 4000, 3000, "unknown")
        })
        .unwrap();
        assert_eq!(found.source, IntrinsicsSource::FocalPlaneResolution);
        assert!((found.focal_px - 3.61 * 648.3).abs() < 1e-9);
        let none = intrinsics(&Inputs {
            focal_length_mm: None,
            focal_length_35mm: None,
            ..inputs(&xmp, 4000, 3000, "FC300S")
        });
        assert_eq!(none, None);
    }
}
