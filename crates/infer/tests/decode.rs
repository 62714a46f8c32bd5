//! `decode_photo` holds every photo to the caller's pixel limit before allocating: the
//! 65535 x 65535 JPEG fixture and a PNG that claims 100,000 x 100,000 are refused by name.
//! `decode_photo_into` gives the same pixels in a reused buffer.

use besikta_infer::{decode_photo, decode_photo_into, image, InferError};
use std::path::{Path, PathBuf};

/// The decompression-bomb guard the product passes (ingest's limit, 200 MP).
const MAX_PIXELS: u64 = 200_000_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A PNG whose header claims `width` x `height` RGB pixels, with a token of image data.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    // zlib stream of a few zero bytes: valid, far too short for the claimed size.
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

fn assert_refused(path: &Path, width: u32, height: u32) {
    let err = decode_photo(path, MAX_PIXELS).unwrap_err();
    match &err {
        InferError::TooManyPixels {
            path: p,
            width: w,
            height: h,
            limit_mpx,
        } => {
            assert_eq!(p, path);
            assert_eq!((*w, *h, *limit_mpx), (width, height, 200));
        }
        other => panic!("expected a pixel-limit refusal, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("200 megapixel limit"), "{text}");
}

#[test]
fn a_jpeg_bomb_is_refused_by_its_header() {
    assert_refused(
        &fixtures().join("broken/bomb-65535x65535.jpg"),
        65535,
        65535,
    );
}

#[test]
fn a_png_bomb_is_refused_by_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.png");
    std::fs::write(&path, png_claiming(100_000, 100_000)).unwrap();
    assert_refused(&path, 100_000, 100_000);
}

#[test]
fn photos_within_the_limit_decode_and_a_tighter_limit_refuses_them() {
    let photo = fixtures().join("brighton/DJI_0018.JPG");
    let img = decode_photo(&photo, MAX_PIXELS).unwrap();
    let pixels = u64::from(img.width()) * u64::from(img.height());
    assert_eq!(pixels, 9_000_000, "the Brighton fixture is a 9 MP frame");
    let err = decode_photo(&photo, pixels - 1).unwrap_err();
    assert!(matches!(err, InferError::TooManyPixels { .. }), "{err:?}");
}

#[test]
fn decoding_into_a_reused_buffer_gives_the_image_crates_pixels() {
    let photo = fixtures().join("brighton/DJI_0018.JPG");
    let small = fixtures().join("cracks/deepcrack_11114.jpg");
    let grey = fixtures().join("cracks/deepcrack_11114_mask.png");
    // A dirty buffer larger than the small photo, then one smaller than the large photo.
    let big = decode_photo(&photo, MAX_PIXELS).unwrap();
    let big_ptr = big.as_raw().as_ptr();
    let mut dirty = big.into_raw();
    dirty.fill(0xAB);
    let again = decode_photo_into(&small, MAX_PIXELS, dirty).unwrap();
    assert_eq!(again.as_raw().as_ptr(), big_ptr, "the buffer was reused");
    let expect = image::open(&small).unwrap().to_rgb8();
    assert_eq!(again.dimensions(), expect.dimensions());
    assert!(
        again.as_raw() == expect.as_raw(),
        "pixels differ from image::open"
    );
    let large = decode_photo_into(&photo, MAX_PIXELS, again.into_raw()).unwrap();
    assert!(large.as_raw() == image::open(&photo).unwrap().to_rgb8().as_raw());
    // A grey PNG goes through the converting path and still comes out as RGB.
    let g = decode_photo_into(&grey, MAX_PIXELS, large.into_raw()).unwrap();
    assert!(g.as_raw() == image::open(&grey).unwrap().to_rgb8().as_raw());
}
