//! Simulated drone flights with known ground truth, for tests, benchmarks and the demo.
//!
//! [`simulate`] builds a ground texture from a real asset register (roads as asphalt with
//! lane markings, footways as paving, roofs, grass; [`texture`]), plants defects at known
//! ground positions on roads and roofs ([`defects`]), plans a lawnmower flight ([`plan`]),
//! renders every photo through georef's camera model ([`render`]) and writes JPEGs carrying
//! EXIF GPS and DJI `drone-dji` XMP as a DJI drone does ([`exif`]), plus `truth.geojson`
//! (one feature per planted defect) and `flight.json` (the true and written pose of every
//! photo). [`evaluate`] scores a processed flight's findings against the truth.
//!
//! GPS and compass noise go into the metadata only: photos are rendered from the true
//! pose, so a pipeline that trusts the metadata sees the same errors a real flight has.
//! Everything is seeded with a fixed-algorithm generator ([`rng`]), so the same seed gives
//! byte-identical photos.

pub mod camera;
pub mod defects;
pub mod evaluate;
pub mod exif;
pub mod orthophoto;
pub mod patches;
pub mod plan;
pub mod render;
pub mod rng;
pub mod texture;

pub use camera::CameraModel;
pub use defects::{Defect, DefectClass, DefectShape};
pub use evaluate::{evaluate, evaluate_files, evaluate_with, ClassMetrics, EvalConfig, Metrics};
pub use exif::PhotoMeta;

use besikta_core::Capture;
use besikta_georef::{Ground, PhotoGeometry};
use besikta_report::register::{frame_for, Register, RegisterSource};
use render::{BatchTransform, RenderOptions};
use rng::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Errors of the simulator; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{message}")]
    Config { message: String },
    #[error("register: {0}")]
    Register(#[from] besikta_report::ReportError),
    #[error("camera geometry of {file}: {message}")]
    Georef { file: String, message: String },
    #[error("coordinate transform to/from {crs} failed: {message}")]
    Crs { crs: String, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{what} GeoJSON: {message}")]
    Geojson { what: String, message: String },
}

/// Everything that defines a simulated flight.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Asset register to build the ground from (e.g. an OSM PBF extract).
    pub register: PathBuf,
    pub out_dir: PathBuf,
    pub seed: u64,
    /// Centre of the flight: WGS 84 latitude, longitude.
    pub center: [f64; 2],
    pub photos: usize,
    /// Flying height above the ground, metres.
    pub altitude_m: f64,
    /// Forward and side overlap, percent.
    pub overlap_pct: f64,
    /// EXIF model of the camera, from [`camera::CAMERAS`].
    pub camera: String,
    /// Defects to plant (fewer are planted when the area has no room).
    pub defects: usize,
    /// Standard deviation of the horizontal GPS error written into the metadata, metres:
    /// a bias drifting over a minute (0.8 of it) plus per-photo jitter (0.6 of it).
    pub gps_noise_m: f64,
    /// Standard deviation of the compass (yaw) error written into the metadata, degrees.
    pub yaw_noise_deg: f64,
    /// Rendered photo width, pixels (height follows the sensor's aspect ratio).
    pub width_px: u32,
    /// Ground elevation above mean sea level, metres (the take-off point is on the ground).
    pub ground_elevation_m: f64,
    pub jpeg_quality: u8,
    /// Folder of real crack image/mask pairs (`NAME.jpg` + `NAME_mask.png`) to paste instead
    /// of drawing cracks procedurally.
    pub patches: Option<PathBuf>,
    /// Ground size of one patch pixel, millimetres (DeepCrack/CRACK500: about 1).
    pub patch_mm_per_px: f64,
    /// How the pasted cracks' colours meet the simulated ground.
    pub patch_contrast: patches::Contrast,
    /// Capture time of the first photo, EXIF form; photos follow every 2 s.
    pub start_time: String,
    /// Also write the true ground as a GeoTIFF orthophoto here (working CRS, about 5 cm
    /// per pixel or the texture's cell if coarser).
    pub orthophoto: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            register: PathBuf::new(),
            out_dir: PathBuf::new(),
            seed: 1,
            // Central Helsinki (Kluuvi): carriageways with markings, footways and roofs of
            // several colours, with room for defects away from junctions.
            center: [60.1699, 24.9475],
            photos: 12,
            altitude_m: 40.0,
            overlap_pct: 70.0,
            camera: "FC6310".into(),
            defects: 15,
            gps_noise_m: 0.0,
            yaw_noise_deg: 0.0,
            width_px: 1600,
            ground_elevation_m: 10.0,
            jpeg_quality: 90,
            patches: None,
            patch_mm_per_px: 1.0,
            patch_contrast: patches::Contrast::Relative,
            start_time: "2024:06:01 10:00:00".into(),
            orthophoto: None,
        }
    }
}

/// One written photo: its file, the pose it was rendered from and the metadata written.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoRecord {
    pub file: String,
    /// True camera position (WGS 84) and heading, as rendered.
    pub true_lat: f64,
    pub true_lon: f64,
    pub true_yaw_deg: f64,
    /// Values as a reader decodes them from the file (after EXIF/XMP rounding).
    pub written: WrittenMeta,
    /// The writer's input: [`exif::app1_segments`] of this gives the file's APP1 bytes.
    pub meta: PhotoMeta,
}

/// The metadata values as a reader gets them back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrittenMeta {
    pub make: String,
    pub model: String,
    pub taken_at: String,
    pub width: u32,
    pub height: u32,
    pub latitude: f64,
    pub longitude: f64,
    pub gps_altitude_m: f64,
    pub absolute_altitude_m: f64,
    pub relative_altitude_m: f64,
    pub gimbal_yaw_deg: f64,
    pub gimbal_pitch_deg: f64,
    pub gimbal_roll_deg: f64,
    pub flight_yaw_deg: f64,
    pub flight_pitch_deg: f64,
    pub flight_roll_deg: f64,
    pub focal_length_mm: f64,
    pub focal_length_35mm: f64,
}

impl WrittenMeta {
    fn of(m: &PhotoMeta) -> WrittenMeta {
        let r2 = |x: f64| exif::dji_number(x).parse::<f64>().unwrap_or(x);
        WrittenMeta {
            make: m.make.clone(),
            model: m.model.clone(),
            taken_at: exif_to_iso(&m.datetime),
            width: m.width,
            height: m.height,
            latitude: m.written_latitude(),
            longitude: m.written_longitude(),
            gps_altitude_m: m.written_gps_altitude(),
            absolute_altitude_m: r2(m.absolute_altitude_m),
            relative_altitude_m: r2(m.relative_altitude_m),
            gimbal_yaw_deg: r2(m.gimbal_yaw_deg),
            gimbal_pitch_deg: r2(m.gimbal_pitch_deg),
            gimbal_roll_deg: r2(m.gimbal_roll_deg),
            flight_yaw_deg: r2(m.flight_yaw_deg),
            flight_pitch_deg: r2(m.flight_pitch_deg),
            flight_roll_deg: r2(m.flight_roll_deg),
            focal_length_mm: (m.focal_mm * 100.0).round() / 100.0,
            focal_length_35mm: m.focal_35mm as f64,
        }
    }
}

/// `2024:06:01 10:00:00` -> `2024-06-01T10:00:00`.
fn exif_to_iso(s: &str) -> String {
    let mut out = s.to_string();
    if out.len() >= 19 {
        out.replace_range(4..5, "-");
        out.replace_range(7..8, "-");
        out.replace_range(10..11, "T");
    }
    out
}

/// What [`simulate`] produced.
#[derive(Debug, Clone)]
pub struct SimOutput {
    pub photos: Vec<PhotoRecord>,
    pub defects: Vec<Defect>,
    /// The truth as written to `truth.geojson`.
    pub truth: Value,
    /// Name of the working frame (e.g. `EPSG:32635`).
    pub frame: String,
    /// Ground sampling distance of the photos at the centre, centimetres per pixel.
    pub gsd_cm: f64,
    /// Texture cell size, centimetres.
    pub texture_cell_cm: f64,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    std::fs::write(path, bytes).map_err(|e| SimError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Adds `secs` seconds to an EXIF time (within the same day, as a flight is).
fn add_seconds(start: &str, secs: u64) -> Result<String, SimError> {
    let bad = || SimError::Config {
        message: format!("start time '{start}' is not 'YYYY:MM:DD HH:MM:SS'"),
    };
    let (date, time) = start.split_once(' ').ok_or_else(bad)?;
    let parts: Vec<u64> = time
        .split(':')
        .map(|p| p.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [h, m, s] = parts[..] else {
        return Err(bad());
    };
    let t = (h * 3600 + m * 60 + s + secs) % 86_400;
    Ok(format!(
        "{date} {:02}:{:02}:{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    ))
}

/// Builds, renders and writes a simulated flight into `cfg.out_dir`.
pub fn simulate(cfg: &SimConfig) -> Result<SimOutput, SimError> {
    simulate_with_progress(cfg, &mut |_, _| {})
}

/// [`simulate`], calling `progress(done, total)` after each photo.
pub fn simulate_with_progress(
    cfg: &SimConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SimOutput, SimError> {
    let cam = CameraModel::find(&cfg.camera)?;
    if !(cfg.altitude_m > 1.0 && cfg.altitude_m < 1000.0) {
        return Err(SimError::Config {
            message: format!(
                "altitude {} m is not a drone's flying height (1-1000 m)",
                cfg.altitude_m
            ),
        });
    }
    if !(0.0..95.0).contains(&cfg.overlap_pct) {
        return Err(SimError::Config {
            message: format!("overlap {} % must be between 0 and 95", cfg.overlap_pct),
        });
    }
    if !(64..=8192).contains(&cfg.width_px) {
        return Err(SimError::Config {
            message: format!(
                "photo width {} px must be between 64 and 8192",
                cfg.width_px
            ),
        });
    }
    let (w, h) = (cfg.width_px, cam.height_for(cfg.width_px));
    let src = RegisterSource::new(&cfg.register);
    let frame = frame_for(std::slice::from_ref(&src))?.ok_or_else(|| SimError::Config {
        message: "no register given".into(),
    })?;
    let register = Register::load(&src, &frame)?;
    let tf = BatchTransform::new(&frame)?;
    let mut c = [[cfg.center[1], cfg.center[0]]];
    tf.to_work(&mut c)?;
    let centre = c[0];

    let gw = cam.ground_width_m(cfg.altitude_m, w);
    let footprint = [gw, gw * h as f64 / w as f64];
    let flight = plan::lawnmower(centre, cfg.photos, footprint, cfg.overlap_pct / 100.0);
    let gsd = gw / w as f64;

    // The texture covers every footprint with a margin; cells at half the photos' GSD.
    let margin = 5.0 + 0.1 * footprint[0].max(footprint[1]);
    let [cx0, cy0, cx1, cy1] = flight.coverage;
    let bbox = [cx0 - margin, cy0 - margin, cx1 + margin, cy1 + margin];
    let mut cell = (gsd / 2.0).max(0.01);
    const MAX_CELLS: f64 = 150e6;
    let cells = |c: f64| (bbox[2] - bbox[0]) / c * (bbox[3] - bbox[1]) / c;
    if cells(cell) > MAX_CELLS {
        cell = ((bbox[2] - bbox[0]) * (bbox[3] - bbox[1]) / MAX_CELLS).sqrt();
    }
    let mut tex = texture::Texture::new(bbox[0], bbox[1], bbox[2], bbox[3], cell);
    let assets = defects::assets_in(&register.assets, bbox);
    texture::paint_assets(&mut tex, &assets, cfg.seed);

    // Defects go where the photos overlap, away from the outer edges of the flight.
    let inset = [0.3 * footprint[0], 0.3 * footprint[1]];
    let area = [
        cx0 + inset[0],
        cy0 + inset[1],
        cx1 - inset[0],
        cy1 - inset[1],
    ];
    // ... and where at least two photos see the whole defect (the box of a flight whose last
    // line is short has a corner no photo sees). The footprints are the true cameras' own, in
    // working metres: a photo's edges are not parallel to the grid (meridian convergence).
    let mut truth_pos: Vec<[f64; 2]> = flight.shots.iter().map(|s| [s.x, s.y]).collect();
    tf.to_wgs84(&mut truth_pos)?;
    let ground = Ground::Plane {
        height_m: cfg.ground_elevation_m,
    };
    let abs_alt = cfg.ground_elevation_m + cfg.altitude_m;
    let true_capture = |i: usize| Capture {
        file: format!("DJI_{:04}.JPG", i + 1),
        width: w,
        height: h,
        latitude: Some(truth_pos[i][1]),
        longitude: Some(truth_pos[i][0]),
        absolute_altitude_m: Some(abs_alt),
        relative_altitude_m: Some(cfg.altitude_m),
        gimbal_yaw_deg: Some(flight.shots[i].yaw_deg),
        gimbal_pitch_deg: Some(-90.0),
        gimbal_roll_deg: Some(0.0),
        focal_length_px: Some(cam.focal_px(w)),
        ..Default::default()
    };
    let georef = |c: &Capture, e: &dyn std::fmt::Display| SimError::Georef {
        file: c.file.clone(),
        message: e.to_string(),
    };
    let mut footprints = Vec::with_capacity(flight.shots.len());
    for i in 0..flight.shots.len() {
        let c = true_capture(i);
        let mut ring = PhotoGeometry::new(&c, &ground)
            .and_then(|g| g.footprint(&besikta_georef::FootprintOptions::default()))
            .map_err(|e| georef(&c, &e))?;
        tf.to_work(&mut ring)?;
        footprints.push(ring);
    }
    let mut planted = defects::plant(
        &assets,
        &defects::PlantConfig {
            count: cfg.defects,
            area,
            footprints,
            min_views: MIN_VIEWS.min(flight.shots.len()),
            ..Default::default()
        },
        cfg.seed,
    );
    match &cfg.patches {
        Some(dir) => {
            let patches = patches::load(dir)?;
            let others: Vec<Defect> = planted
                .iter()
                .filter(|d| d.class != DefectClass::Crack)
                .cloned()
                .collect();
            defects::draw(&mut tex, &others);
            patches::paste_cracks(
                &mut tex,
                &mut planted,
                &patches,
                cfg.patch_mm_per_px,
                cfg.patch_contrast,
            );
        }
        None => defects::draw(&mut tex, &planted),
    }

    if let Some(path) = &cfg.orthophoto {
        let factor = ((0.05 / cell).floor() as usize).max(1);
        orthophoto::write(&tex, &frame, path, factor)?;
    }
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| SimError::Write {
        path: cfg.out_dir.display().to_string(),
        message: e.to_string(),
    })?;
    refuse_foreign_photos(&cfg.out_dir, flight.shots.len())?;

    // Noisy positions (the true ones are above).
    let mut rng = Rng::derive(cfg.seed, 0xF11E);
    let mut noisy_pos: Vec<[f64; 2]> = Vec::new();
    let mut noise = Vec::new();
    let mut bias = GpsBias::new(cfg.seed, cfg.gps_noise_m);
    for s in &flight.shots {
        // Per-photo jitter on top of a slowly drifting bias, as real receivers have; the
        // jitter's draws are the generator's first, so attitudes stay as they were.
        let b = bias.next();
        let (dx, dy) = (
            b[0] + rng.normal() * cfg.gps_noise_m * GPS_JITTER_SHARE,
            b[1] + rng.normal() * cfg.gps_noise_m * GPS_JITTER_SHARE,
        );
        let dyaw = rng.normal() * cfg.yaw_noise_deg;
        // The airframe pitches and rolls a little in the wind; the gimbal holds the camera.
        let att = [
            rng.range(-2.0, 2.0),
            rng.range(-2.0, 2.0),
            rng.range(-1.5, 1.5),
        ];
        noisy_pos.push([s.x + dx, s.y + dy]);
        noise.push((dyaw, att));
    }
    tf.to_wgs84(&mut noisy_pos)?;

    let mut photos = Vec::new();
    for (i, s) in flight.shots.iter().enumerate() {
        let file = format!("DJI_{:04}.JPG", i + 1);
        let true_capture = true_capture(i);
        let geom =
            PhotoGeometry::new(&true_capture, &ground).map_err(|e| georef(&true_capture, &e))?;
        let img = render::render(
            &tex,
            &geom,
            &tf,
            w,
            h,
            &RenderOptions {
                noise_seed: rng::mix(cfg.seed ^ (i as u64 + 1)),
                ..Default::default()
            },
        )?;
        let (dyaw, att) = noise[i];
        let yaw = wrap_deg(s.yaw_deg + dyaw);
        let meta = PhotoMeta {
            make: cam.make.into(),
            model: cam.model.into(),
            datetime: add_seconds(&cfg.start_time, 2 * i as u64)?,
            width: w,
            height: h,
            focal_mm: cam.focal_mm,
            focal_35mm: cam.focal_35mm,
            f_number: cam.f_number,
            exposure_s: 0.001,
            iso: 100,
            latitude: noisy_pos[i][1],
            longitude: noisy_pos[i][0],
            absolute_altitude_m: abs_alt,
            relative_altitude_m: cfg.altitude_m,
            gimbal_yaw_deg: yaw,
            gimbal_pitch_deg: -90.0,
            gimbal_roll_deg: 0.0,
            flight_yaw_deg: wrap_deg(yaw + att[2]),
            flight_pitch_deg: att[0],
            flight_roll_deg: att[1],
        };
        let jpeg = encode_jpeg(&img, cfg.jpeg_quality)?;
        let bytes = exif::splice_metadata(&jpeg, &meta)?;
        write_file(&cfg.out_dir.join(&file), &bytes)?;
        photos.push(PhotoRecord {
            file,
            true_lat: truth_pos[i][1],
            true_lon: truth_pos[i][0],
            true_yaw_deg: s.yaw_deg,
            written: WrittenMeta::of(&meta),
            meta,
        });
        progress(i + 1, flight.shots.len());
    }

    let truth = truth_geojson(&planted, &tf)?;
    write_json(&cfg.out_dir.join("truth.geojson"), &truth)?;
    let mut flight_json = json!({
        "generator": "besikta simulate",
        "seed": cfg.seed,
        "register": cfg.register.file_name().map(|f| f.to_string_lossy().into_owned()),
        "frame": frame.name,
        "center": {"lat": cfg.center[0], "lon": cfg.center[1]},
        "camera": {"model": cam.model, "drone": cam.drone, "sensor_width_mm": cam.sensor_width_mm,
                   "focal_mm": cam.focal_mm, "focal_px": cam.focal_px(w)},
        "width": w, "height": h,
        "altitude_m": cfg.altitude_m,
        "ground_elevation_m": cfg.ground_elevation_m,
        "overlap_pct": cfg.overlap_pct,
        "gps_noise_m": cfg.gps_noise_m,
        "yaw_noise_deg": cfg.yaw_noise_deg,
        "gsd_cm": gsd * 100.0,
        "texture_cell_cm": cell * 100.0,
        "defects_requested": cfg.defects,
        "defects_planted": planted.len(),
        "crack_patches": cfg.patches.as_ref().map(|p| p.display().to_string()),
        "photos": photos,
    });
    if cfg.patches.is_some() {
        flight_json["crack_patch_contrast"] = json!(cfg.patch_contrast.name());
    }
    write_json(&cfg.out_dir.join("flight.json"), &flight_json)?;
    Ok(SimOutput {
        photos,
        defects: planted,
        truth,
        frame: frame.name.clone(),
        gsd_cm: gsd * 100.0,
        texture_cell_cm: cell * 100.0,
    })
}

/// How many photos must see a planted defect whole: the product asks a crack to be detected
/// in two photos (`min_support` in `models/evidence.toml`), so one seen once cannot be found.
/// A flight of one photo asks that photo only.
const MIN_VIEWS: usize = 2;

/// Shares of the GPS error's standard deviation: per-photo jitter and drifting bias
/// (0.6² + 0.8² = 1, so `gps_noise_m` stays the standard deviation of the total error).
const GPS_JITTER_SHARE: f64 = 0.6;
const GPS_BIAS_SHARE: f64 = 0.8;
/// Correlation time of the bias, seconds (photos are 2 s apart).
const GPS_BIAS_TAU_S: f64 = 60.0;

/// A slowly drifting horizontal GPS bias: a first-order Gauss-Markov process per axis,
/// stationary with standard deviation `GPS_BIAS_SHARE * sigma`, from its own generator.
struct GpsBias {
    rng: Rng,
    sigma: f64,
    rho: f64,
    state: Option<[f64; 2]>,
}

impl GpsBias {
    fn new(seed: u64, gps_noise_m: f64) -> GpsBias {
        GpsBias {
            rng: Rng::derive(seed, 0xB1A5),
            sigma: gps_noise_m * GPS_BIAS_SHARE,
            rho: (-2.0 / GPS_BIAS_TAU_S).exp(),
            state: None,
        }
    }

    fn next(&mut self) -> [f64; 2] {
        if self.sigma == 0.0 {
            return [0.0, 0.0];
        }
        let (s, rho) = (self.sigma, self.rho);
        let innov = (1.0 - rho * rho).sqrt() * s;
        let b = match self.state {
            None => [self.rng.normal() * s, self.rng.normal() * s],
            Some(p) => [
                rho * p[0] + self.rng.normal() * innov,
                rho * p[1] + self.rng.normal() * innov,
            ],
        };
        self.state = Some(b);
        b
    }
}

/// Photos this flight would not overwrite would be processed with it as if they belonged to
/// it (a larger earlier run, someone's real flight): refuse rather than mix or delete them.
fn refuse_foreign_photos(dir: &Path, photos: usize) -> Result<(), SimError> {
    let ours: std::collections::HashSet<String> =
        (1..=photos).map(|i| format!("DJI_{i:04}.JPG")).collect();
    let entries = std::fs::read_dir(dir).map_err(|e| SimError::Read {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        let photo = [".jpg", ".jpeg", ".tif", ".tiff", ".dng"]
            .iter()
            .any(|ext| lower.ends_with(ext));
        if photo && !ours.contains(&name) {
            return Err(SimError::Write {
                path: dir.join(&name).display().to_string(),
                message: format!(
                    "the output folder already holds photos this {photos}-photo flight would not replace; choose an empty folder"
                ),
            });
        }
    }
    Ok(())
}

fn wrap_deg(a: f64) -> f64 {
    let r = (a + 180.0).rem_euclid(360.0) - 180.0;
    // DJI writes +180 rather than -180 for due south.
    if r == -180.0 {
        180.0
    } else {
        r
    }
}

fn encode_jpeg(img: &image::RgbImage, quality: u8) -> Result<Vec<u8>, SimError> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(enc).map_err(|e| SimError::Config {
        message: format!("JPEG encoding failed: {e}"),
    })?;
    Ok(out)
}

fn write_json(path: &Path, v: &Value) -> Result<(), SimError> {
    let mut text = serde_json::to_string_pretty(v).map_err(|e| SimError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    text.push('\n');
    write_file(path, text.as_bytes())
}

fn round7(p: [f64; 2]) -> Value {
    json!([(p[0] * 1e7).round() / 1e7, (p[1] * 1e7).round() / 1e7])
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `truth.geojson`: one feature per planted defect, WGS 84 lon/lat (RFC 7946).
pub fn truth_geojson(planted: &[Defect], tf: &BatchTransform) -> Result<Value, SimError> {
    let mut features = Vec::new();
    for d in planted {
        let mut centre = [d.centre];
        tf.to_wgs84(&mut centre)?;
        let (geometry, width) = match &d.shape {
            DefectShape::Line { points, width_m } => {
                let mut p = points.clone();
                tf.to_wgs84(&mut p)?;
                (
                    json!({"type": "LineString", "coordinates": p.into_iter().map(round7).collect::<Vec<_>>()}),
                    Some(round3(*width_m)),
                )
            }
            DefectShape::Area { ring } => {
                // Counter-clockwise exterior, as RFC 7946 asks.
                let mut r = ring.clone();
                if defects::ring_area(&r) < 0.0 {
                    r.reverse();
                }
                tf.to_wgs84(&mut r)?;
                (
                    json!({"type": "Polygon", "coordinates": [r.into_iter().map(round7).collect::<Vec<_>>()]}),
                    None,
                )
            }
        };
        let mut props = json!({
            "id": d.id,
            "class": d.class.name(),
            "asset_kind": d.class.asset_kind(),
            "asset_id": d.asset_id,
            "area_m2": round3(d.area_m2()),
            "centre": round7(centre[0]),
        });
        if let Some(l) = d.length_m() {
            props["length_m"] = json!(round3(l));
        }
        if let Some(wd) = width {
            props["width_m"] = json!(wd);
        }
        if let Some(p) = &d.pasted {
            props["patch"] = json!(p.name);
            props["patch_contrast"] = json!((p.contrast * 10.0).round() / 10.0);
        }
        features.push(
            json!({"type": "Feature", "id": d.id, "geometry": geometry, "properties": props}),
        );
    }
    Ok(json!({
        "type": "FeatureCollection",
        "name": "besikta simulated defects (ground truth)",
        "features": features,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_folder_with_other_photos_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("DJI_0002.JPG"), b"x").unwrap();
        refuse_foreign_photos(d.path(), 2).unwrap();
        let e = refuse_foreign_photos(d.path(), 1).unwrap_err().to_string();
        assert!(
            e.contains("DJI_0002.JPG") && e.contains("empty folder"),
            "{e}"
        );
    }

    #[test]
    fn gps_bias_drifts_slowly_and_is_zero_without_noise() {
        let mut none = GpsBias::new(3, 0.0);
        assert!((0..10).all(|_| none.next() == [0.0, 0.0]));
        let mut b = GpsBias::new(3, 2.0);
        let v: Vec<[f64; 2]> = (0..4000).map(|_| b.next()).collect();
        let sd = (v.iter().map(|p| p[0] * p[0]).sum::<f64>() / v.len() as f64).sqrt();
        assert!((sd - 1.6).abs() < 0.4, "bias sd {sd}");
        // Consecutive photos share most of the bias: steps are far smaller than the bias.
        let step = (v
            .windows(2)
            .map(|w| (w[1][0] - w[0][0]).powi(2))
            .sum::<f64>()
            / (v.len() - 1) as f64)
            .sqrt();
        assert!(step < 0.5, "bias step sd {step}");
        let mut again = GpsBias::new(3, 2.0);
        assert_eq!(again.next(), v[0], "seeded");
    }

    #[test]
    fn times_and_angles_are_written_as_dji_does() {
        assert_eq!(
            add_seconds("2024:06:01 10:00:58", 4).unwrap(),
            "2024:06:01 10:01:02"
        );
        assert!(add_seconds("2024-06-01", 1).is_err());
        assert_eq!(exif_to_iso("2024:06:01 10:01:02"), "2024-06-01T10:01:02");
        assert_eq!(wrap_deg(-180.0), 180.0);
        assert_eq!(wrap_deg(181.0), -179.0);
        assert_eq!(wrap_deg(-1.0), -1.0);
    }
}
