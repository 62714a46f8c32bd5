//! Walking a JPEG's marker segments without decoding pixels: where the EXIF and XMP
//! payloads are, what size the frame header claims, and whether the image data ends.
//!
//! The walk is deliberately shallow. It trusts nothing it has not bounds-checked, never
//! allocates in proportion to what a header claims, and reads the entropy-coded data only
//! to find where it ends (a cut-short copy has no end-of-image marker).

use crate::error::Problem;
use memchr::memchr;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP1: u8 = 0xE1;

/// The APP1 signature of an EXIF payload (a TIFF structure follows it).
const EXIF_SIGNATURE: &[u8] = b"Exif\0\0";
/// The APP1 signature of a standard XMP packet.
pub(crate) const XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// What a marker walk found. Slices borrow from the file's bytes.
#[derive(Debug, Default)]
pub(crate) struct Layout<'a> {
    /// The TIFF structure of the first EXIF APP1 segment (signature stripped).
    pub exif: Option<&'a [u8]>,
    /// Every standard XMP packet (signature stripped), in file order.
    pub xmp: Vec<&'a [u8]>,
    /// Width and height from the first SOFn frame header.
    pub frame: Option<Frame>,
}

/// The frame header's claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub width: u32,
    pub height: u32,
}

/// Limits the walk enforces before it looks at anything else.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest width x height a frame header may claim.
    pub max_pixels: u64,
}

/// Whether `bytes` starts like a JPEG (SOI then another marker).
pub(crate) fn looks_like_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 3 && bytes[0] == 0xFF && bytes[1] == SOI && bytes[2] == 0xFF
}

/// Walks the markers of a whole JPEG file.
///
/// Order of checks: the signature, then the frame size against `limits` as soon as the
/// frame header is met (so a decompression bomb is refused before its metadata is even
/// parsed), then that the entropy-coded data reaches an end-of-image marker.
pub(crate) fn walk(bytes: &[u8], limits: Limits) -> Result<Layout<'_>, Problem> {
    if !looks_like_jpeg(bytes) {
        return Err(Problem::NotJpeg {
            starts_with: describe_start(bytes),
        });
    }
    let mut layout = Layout::default();
    let mut pos = 2;
    loop {
        let (marker, at) = next_marker(bytes, pos)?;
        pos = at + 2;
        match marker {
            // Markers without a length field.
            0x01 | 0xD0..=0xD7 => continue,
            SOI => {
                return Err(Problem::Corrupt {
                    offset: at,
                    what: "a second start-of-image marker inside the header",
                })
            }
            EOI => {
                return Err(Problem::Corrupt {
                    offset: at,
                    what: "the image ends before any image data",
                })
            }
            _ => {}
        }
        let length = segment_length(bytes, pos)?;
        let payload = &bytes[pos + 2..pos + length];
        match marker {
            APP1 => {
                if let Some(tiff) = payload.strip_prefix(EXIF_SIGNATURE) {
                    if layout.exif.is_none() {
                        layout.exif = Some(tiff);
                    }
                } else if let Some(packet) = payload.strip_prefix(XMP_SIGNATURE) {
                    layout.xmp.push(packet);
                }
            }
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC); the first one counts.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) && layout.frame.is_none() => {
                let frame = parse_frame(payload, pos)?;
                let pixels = u64::from(frame.width) * u64::from(frame.height);
                if pixels > limits.max_pixels {
                    return Err(Problem::TooManyPixels {
                        width: frame.width,
                        height: frame.height,
                        limit_mpx: limits.max_pixels / 1_000_000,
                    });
                }
                layout.frame = Some(frame);
            }
            SOS => {
                if layout.frame.is_none() {
                    return Err(Problem::NoFrameHeader);
                }
                pos = end_of_scan(bytes, pos + length)?;
                // `pos` is at the marker that ended the scan: EOI, or the next segment of a
                // progressive or multi-scan image.
                if bytes[pos + 1] == EOI {
                    return Ok(layout);
                }
                continue;
            }
            _ => {}
        }
        pos += length;
    }
}

/// Finds the next marker at or after `pos`, skipping fill bytes (0xFF 0xFF ...).
fn next_marker(bytes: &[u8], pos: usize) -> Result<(u8, usize), Problem> {
    if pos >= bytes.len() {
        return Err(Problem::Truncated);
    }
    if bytes[pos] != 0xFF {
        return Err(Problem::Corrupt {
            offset: pos,
            what: "a header segment does not start with a marker",
        });
    }
    let mut at = pos;
    while at + 1 < bytes.len() && bytes[at + 1] == 0xFF {
        at += 1;
    }
    if at + 1 >= bytes.len() {
        return Err(Problem::Truncated);
    }
    Ok((bytes[at + 1], at))
}

/// The big-endian length of the segment whose length field starts at `pos`, bounds-checked.
fn segment_length(bytes: &[u8], pos: usize) -> Result<usize, Problem> {
    if pos + 2 > bytes.len() {
        return Err(Problem::Truncated);
    }
    let length = usize::from(u16::from_be_bytes([bytes[pos], bytes[pos + 1]]));
    if length < 2 {
        return Err(Problem::Corrupt {
            offset: pos,
            what: "a header segment with an impossible length",
        });
    }
    if pos + length > bytes.len() {
        return Err(Problem::Truncated);
    }
    Ok(length)
}

/// Reads the frame size from an SOFn payload (precision, height, width, components).
fn parse_frame(payload: &[u8], offset: usize) -> Result<Frame, Problem> {
    if payload.len() < 6 {
        return Err(Problem::Corrupt {
            offset,
            what: "the frame header is too short",
        });
    }
    let height = u32::from(u16::from_be_bytes([payload[1], payload[2]]));
    let width = u32::from(u16::from_be_bytes([payload[3], payload[4]]));
    if width == 0 || height == 0 {
        // Height 0 is legal with a DNL marker, but no camera writes it; refusing it keeps
        // the size we report honest.
        return Err(Problem::Corrupt {
            offset,
            what: "the frame header gives a zero image size",
        });
    }
    Ok(Frame { width, height })
}

/// Skips entropy-coded data starting at `pos`; returns the offset of the marker ending it.
///
/// Inside entropy-coded data 0xFF is followed by 0x00 (a stuffed byte), a restart marker
/// (0xD0..0xD7) or more 0xFF fill bytes; any other byte after 0xFF is a real marker.
fn end_of_scan(bytes: &[u8], mut pos: usize) -> Result<usize, Problem> {
    loop {
        let Some(skip) = memchr(0xFF, &bytes[pos.min(bytes.len())..]) else {
            return Err(Problem::Truncated);
        };
        let at = pos + skip;
        let mut next = at + 1;
        while next < bytes.len() && bytes[next] == 0xFF {
            next += 1;
        }
        if next >= bytes.len() {
            return Err(Problem::Truncated);
        }
        match bytes[next] {
            0x00 | 0xD0..=0xD7 => pos = next + 1,
            _ => return Ok(next - 1),
        }
    }
}

/// A short printable description of what a non-JPEG file starts with, for the reason text.
fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the file is empty".to_string();
    }
    let head = &bytes[..bytes.len().min(12)];
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return "it is a TIFF".to_string();
    }
    if head.starts_with(b"\x89PNG") {
        return "it is a PNG".to_string();
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "it is a HEIF/HEIC or MP4 container".to_string();
    }
    if head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        let text: String = String::from_utf8_lossy(head)
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        return format!("it starts with the text \"{}\"", text.trim_end());
    }
    let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02X}")).collect();
    format!("it starts with the bytes {}", hex.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_pixels: 200_000_000,
    };

    /// A minimal marker stream: SOI, SOF0 with the given size, SOS, scan bytes, then `tail`.
    fn stream(width: u16, height: u16, scan: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        out.extend_from_slice(scan);
        out.extend_from_slice(tail);
        out
    }

    #[test]
    fn complete_stream_with_stuffing_and_restarts_is_accepted() {
        let bytes = stream(
            640,
            480,
            &[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD3, 4],
            &[0xFF, 0xD9],
        );
        let layout = walk(&bytes, LIMITS).unwrap();
        assert_eq!(
            layout.frame,
            Some(Frame {
                width: 640,
                height: 480
            })
        );
    }

    #[test]
    fn missing_end_of_image_is_truncation() {
        let bytes = stream(640, 480, &[1, 2, 0xFF, 0x00, 3], &[]);
        assert!(matches!(walk(&bytes, LIMITS), Err(Problem::Truncated)));
        let bytes = stream(640, 480, &[1, 2, 3], &[0xFF]);
        assert!(matches!(walk(&bytes, LIMITS), Err(Problem::Truncated)));
    }

    #[test]
    fn oversized_frame_is_refused_before_the_scan() {
        // No EOI at all: the bomb must be reported, not the truncation.
        let bytes = stream(60000, 60000, &[1, 2, 3], &[]);
        assert!(matches!(
            walk(&bytes, LIMITS),
            Err(Problem::TooManyPixels {
                width: 60000,
                height: 60000,
                ..
            })
        ));
    }

    #[test]
    fn non_jpeg_inputs_are_described() {
        let err = walk(b"hello, world\n", LIMITS).unwrap_err();
        assert!(err.to_string().contains("\"hello, world\""), "{err}");
        assert!(matches!(walk(b"", LIMITS), Err(Problem::NotJpeg { .. })));
        assert!(matches!(
            walk(b"II*\0abcd", LIMITS),
            Err(Problem::NotJpeg { .. })
        ));
    }

    #[test]
    fn segment_running_past_the_end_is_truncation() {
        let bytes = [0xFF, 0xD8, 0xFF, 0xE1, 0x10, 0x00, b'E', b'x'];
        assert!(matches!(walk(&bytes, LIMITS), Err(Problem::Truncated)));
    }
}
