//! Why a photo cannot be used, in words a field crew understands: what is wrong and what to do.

/// A photo (or upload) that ingest refused, and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct IngestError {
    /// The file as the user named it (or the upload's name).
    pub file: String,
    pub problem: Problem,
}

impl IngestError {
    pub(crate) fn new(file: &str, problem: Problem) -> Self {
        Self {
            file: file.to_string(),
            problem,
        }
    }

    /// The reason alone, without the file name (for [`besikta_core::Rejected`]).
    pub fn reason(&self) -> String {
        self.problem.to_string()
    }
}

/// What is wrong with one input. The texts end with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("cannot read the file ({0}); check that it exists and that you may read it")]
    Unreadable(std::io::Error),
    #[error(
        "not a JPEG photo ({starts_with}); only JPEG photos and GeoTIFF orthophotos can be used, \
         so leave this file out or export the photo as JPEG"
    )]
    NotJpeg { starts_with: String },
    #[error(
        "the file is {size_mb} MB, more than the {limit_mb} MB a drone photo can be; \
         leave it out (orthophotos belong in a .tif GeoTIFF)"
    )]
    TooLarge { size_mb: u64, limit_mb: u64 },
    #[error(
        "its header claims {width} x {height} pixels, over the {limit_mpx} megapixel limit \
         (a decompression bomb or a corrupt header); do not upload this file"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        limit_mpx: u64,
    },
    #[error(
        "the JPEG has no image size header before its image data, so it is corrupt; \
         copy the photo again from the drone's memory card"
    )]
    NoFrameHeader,
    #[error(
        "the file ends before its image data does (cut short while copying or uploading); \
         copy the photo again from the drone's memory card"
    )]
    Truncated,
    #[error(
        "the JPEG structure is damaged at byte {offset} ({what}); \
         copy the photo again from the drone's memory card"
    )]
    Corrupt { offset: usize, what: &'static str },
    #[error(
        "no GPS position in EXIF or XMP: the drone had no GPS fix when it took this photo, \
         or the position was stripped; geotag it from the flight log or leave it out"
    )]
    NoGps,
    #[error(
        "the GPS position is 0, 0 (off the coast of Africa), which drones write when they have \
         no GPS fix; geotag the photo from the flight log or leave it out"
    )]
    NullIsland,
    #[error(
        "{what} is {value}, which is impossible ({allowed}); the position or attitude data is \
         corrupt, so geotag the photo again or leave it out"
    )]
    OutOfRange {
        what: &'static str,
        value: f64,
        allowed: &'static str,
    },
    #[error(
        "the gimbal pitch is {pitch:+.1} degrees: the camera looked above the horizon, so the \
         photo shows no ground to map; leave it out (set the gimbal to look down, -90 for mapping)"
    )]
    GimbalAboveHorizon { pitch: f64 },
    #[error("same photo as {first} (identical content); remove one of the copies")]
    Duplicate { first: String },
    #[error(
        "a TIFF without georeferencing ({0}); export the orthophoto as a GeoTIFF with its \
         coordinate system"
    )]
    NotGeoreferenced(String),
    #[error(
        "GDAL cannot open it as a raster ({0}); check that the orthophoto is a complete GeoTIFF"
    )]
    RasterUnreadable(String),
}
