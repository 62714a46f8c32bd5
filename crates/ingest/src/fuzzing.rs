//! Entry points for the fuzz targets in `fuzz/` (not a stable API): the marker walk, the
//! EXIF reader and the XMP reader, each on untrusted bytes as an upload would give them.

use crate::jpeg::{self, Limits};
use crate::{exif_tags, xmp, ReadOptions};

/// What a successful marker walk found, for a fuzz target to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// The EXIF payload's length.
    pub exif_len: Option<usize>,
    /// How many XMP packets.
    pub xmp_packets: usize,
    /// Width and height from the frame header.
    pub frame: Option<(u32, u32)>,
}

/// Walks `bytes` as a JPEG with the default limits; `None` when the walk refuses them.
pub fn jpeg_walk(bytes: &[u8]) -> Option<Walked> {
    let limits = Limits {
        max_pixels: ReadOptions::default().max_pixels,
    };
    let layout = jpeg::walk(bytes, limits).ok()?;
    Some(Walked {
        exif_len: layout.exif.map(<[u8]>::len),
        xmp_packets: layout.xmp.len(),
        frame: layout.frame.map(|f| (f.width, f.height)),
    })
}

/// Reads an EXIF TIFF structure (the APP1 payload after `Exif\0\0`); the fields' debug
/// text when anything was read.
pub fn exif(tiff: &[u8]) -> Option<String> {
    exif_tags::read(tiff).map(|f| format!("{f:?}"))
}

/// Reads XMP packets (APP1 payloads after the XMP signature); the result's debug text, so
/// every field is looked at.
pub fn xmp(packets: &[&[u8]]) -> String {
    format!("{:?}", xmp::read(packets))
}
