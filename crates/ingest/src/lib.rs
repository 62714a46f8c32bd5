//! Reading drone photos and orthophotos: metadata, validation, content hashes, camera database.
//!
//! Photos are JPEGs whose pixels are never decoded: [`read_capture_bytes`] walks the marker
//! segments, takes the frame size from the SOF header (EXIF sizes can lie), reads EXIF GPS
//! and DJI maker notes with kamadak-exif and XMP (DJI `drone-dji`, Autel, Parrot, Skydio,
//! Pix4D `Camera`) with quick-xml, works out the focal length in pixels, and refuses what
//! cannot be right. [`scan`] does that for files and folders, reads GeoTIFF orthophotos
//! through GDAL, and rejects duplicates by SHA-256, so one bad file never sinks a batch.
//!
//! Invariants: no pixel decoding, no allocation sized by what a header claims, every
//! rejection reason says what is wrong and what a field crew can do about it.

mod camera_db;
mod capture;
mod error;
mod exif_tags;
#[doc(hidden)]
pub mod fuzzing;
mod jpeg;
mod ortho;
mod scan;
mod xmp;

pub use camera_db::{sensor_for, Sensor, SENSORS};
pub use capture::{sha256_hex, ReadOptions};
pub use error::{IngestError, Problem};
pub use ortho::Orthophoto;
pub use scan::{read_capture_with, scan_with, ScanOptions, ScanReport};

use besikta_core::Capture;
use std::path::{Path, PathBuf};

/// Reads every photo and orthophoto under `paths`, sorted by file name, with duplicates
/// (same SHA-256) and unusable files listed in [`ScanReport::rejected`].
///
/// Named files are read whatever their extension. Folders are searched recursively for
/// `.jpg`/`.jpeg` photos and `.tif`/`.tiff` orthophotos; other photo formats found there
/// (`.png`, `.heic`, `.dng`, `.webp`) are rejected so the crew hears they were skipped,
/// and hidden entries (`._DJI_0001.JPG` resource forks, `.Trashes`) are ignored.
pub fn scan(paths: &[PathBuf]) -> ScanReport {
    scan_with(paths, &ScanOptions::default())
}

/// Reads one photo from disk.
pub fn read_capture(path: &Path) -> Result<Capture, IngestError> {
    read_capture_with(path, &ScanOptions::default())
}

/// Reads one photo held in memory (an upload); `name` is what errors and the capture call it.
pub fn read_capture_bytes(name: &str, bytes: &[u8]) -> Result<Capture, IngestError> {
    capture::read(name, bytes, &ReadOptions::default()).map_err(|p| IngestError::new(name, p))
}
