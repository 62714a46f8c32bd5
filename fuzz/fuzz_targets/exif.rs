//! Fuzz target: an EXIF TIFF structure (the APP1 payload after `Exif\0\0`) through the EXIF
//! reader, GPS and DJI maker notes included.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = besikta_ingest::fuzzing::exif(data);
});
