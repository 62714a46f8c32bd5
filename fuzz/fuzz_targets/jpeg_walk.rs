//! Fuzz target: a photo upload's bytes through the JPEG marker walk and the whole capture
//! read (walk, EXIF, XMP, maker notes, checks), as `ingest_file` does at upload.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(walked) = besikta_ingest::fuzzing::jpeg_walk(data) {
        // Payloads borrow from the file: none can be longer than it.
        assert!(walked.exif_len.unwrap_or(0) <= data.len());
        if let Some((w, h)) = walked.frame {
            // The decompression-bomb guard held.
            assert!(u64::from(w) * u64::from(h) <= 200_000_000);
        }
    }
    if let Ok(capture) = besikta_ingest::read_capture_bytes("fuzz.jpg", data) {
        // A capture is only accepted with a frame size the walk vouched for.
        assert!(capture.width > 0 && capture.height > 0);
    }
});
