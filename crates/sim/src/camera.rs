//! The drone cameras a simulated flight can pretend to be, and their intrinsics when the
//! photos are rendered smaller than the native sensor resolution.
//!
//! The figures are the makers' published specifications, the same ones ingest's camera
//! database holds. Rendering at a smaller width keeps the full field of view: the EXIF focal
//! length in millimetres stays the native one, so ingest's `focal_mm / sensor_width_mm *
//! image_width` gives exactly the focal length in pixels the renderer used.

use crate::SimError;

/// One camera model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraModel {
    /// EXIF Model, e.g. `FC6310`.
    pub model: &'static str,
    /// EXIF Make.
    pub make: &'static str,
    /// Human name of the drone.
    pub drone: &'static str,
    pub sensor_width_mm: f64,
    pub sensor_height_mm: f64,
    pub focal_mm: f64,
    pub native_width: u32,
    pub native_height: u32,
    /// EXIF FocalLengthIn35mmFilm as the camera writes it.
    pub focal_35mm: u16,
    /// Aperture and exposure the camera typically writes on a survey flight.
    pub f_number: f64,
}

/// Cameras known to the simulator.
pub const CAMERAS: &[CameraModel] = &[
    CameraModel {
        model: "FC6310",
        make: "DJI",
        drone: "Phantom 4 Pro",
        sensor_width_mm: 13.2,
        sensor_height_mm: 8.8,
        focal_mm: 8.8,
        native_width: 5472,
        native_height: 3648,
        focal_35mm: 24,
        f_number: 5.6,
    },
    CameraModel {
        model: "FC6310S",
        make: "DJI",
        drone: "Phantom 4 Pro V2.0",
        sensor_width_mm: 13.2,
        sensor_height_mm: 8.8,
        focal_mm: 8.8,
        native_width: 5472,
        native_height: 3648,
        focal_35mm: 24,
        f_number: 5.6,
    },
    CameraModel {
        model: "FC330",
        make: "DJI",
        drone: "Phantom 4",
        sensor_width_mm: 6.17,
        sensor_height_mm: 4.55,
        focal_mm: 3.61,
        native_width: 4000,
        native_height: 3000,
        focal_35mm: 20,
        f_number: 2.8,
    },
    CameraModel {
        model: "FC300S",
        make: "DJI",
        drone: "Phantom 3 Advanced",
        sensor_width_mm: 6.17,
        sensor_height_mm: 4.55,
        focal_mm: 3.61,
        native_width: 4000,
        native_height: 3000,
        focal_35mm: 20,
        f_number: 2.8,
    },
    CameraModel {
        model: "FC220",
        make: "DJI",
        drone: "Mavic Pro",
        sensor_width_mm: 6.17,
        sensor_height_mm: 4.55,
        focal_mm: 4.73,
        native_width: 4000,
        native_height: 3000,
        focal_35mm: 26,
        f_number: 2.2,
    },
];

impl CameraModel {
    /// Looks a model up by its EXIF Model (case-insensitive).
    pub fn find(model: &str) -> Result<CameraModel, SimError> {
        CAMERAS
            .iter()
            .find(|c| c.model.eq_ignore_ascii_case(model))
            .copied()
            .ok_or_else(|| SimError::Config {
                message: format!(
                    "unknown camera model '{model}'; known: {}",
                    CAMERAS
                        .iter()
                        .map(|c| c.model)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Photo height for a rendered width, keeping the sensor's aspect ratio.
    pub fn height_for(&self, width: u32) -> u32 {
        ((width as f64 * self.native_height as f64 / self.native_width as f64).round() as u32)
            .max(1)
    }

    /// Focal length in pixels of a photo `width` pixels wide, as ingest computes it: a
    /// photo at least as wide as the sensor's aspect keeps the sensor's full width, a
    /// narrower one (4:3 on a 1/2.3" sensor of 6.17 x 4.55 mm) its full height.
    pub fn focal_px(&self, width: u32) -> f64 {
        let height = self.height_for(width);
        let (w, h) = (width as f64, height as f64);
        if w / h >= self.sensor_width_mm / self.sensor_height_mm - 1e-3 {
            self.focal_mm / self.sensor_width_mm * w
        } else {
            self.focal_mm / self.sensor_height_mm * h
        }
    }

    /// Ground width (along the photo's x axis) of a `width`-pixel photo seen from
    /// `height_m` straight down, metres.
    pub fn ground_width_m(&self, height_m: f64, width: u32) -> f64 {
        height_m * width as f64 / self.focal_px(width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantom_4_pro_downsized_keeps_its_field_of_view() {
        let c = CameraModel::find("fc6310").unwrap();
        assert_eq!(c.height_for(1200), 800);
        assert_eq!(c.height_for(1600), 1067);
        // 8.8 / 13.2 * 1200 = 800 px; at 40 m the photo is 60 m wide, 5 cm per pixel.
        assert!((c.focal_px(1200) - 800.0).abs() < 1e-9);
        assert!((c.ground_width_m(40.0, 1200) - 60.0).abs() < 1e-9);
        // The 35 mm equivalent agrees with the sensor: 36 mm * 8.8 / 13.2 = 24 mm.
        let eq = 36.0 * c.focal_mm / c.sensor_width_mm;
        assert!((eq - c.focal_35mm as f64).abs() < 0.5);
    }

    #[test]
    fn four_by_three_on_a_one_over_2_3_sensor_keeps_the_sensor_height() {
        let c = CameraModel::find("FC330").unwrap();
        assert_eq!(c.height_for(480), 360);
        assert!((c.focal_px(480) - 3.61 / 4.55 * 360.0).abs() < 1e-9);
    }

    #[test]
    fn unknown_models_are_named_in_the_error() {
        let e = CameraModel::find("XYZ").unwrap_err().to_string();
        assert!(e.contains("XYZ") && e.contains("FC6310"), "{e}");
    }
}
