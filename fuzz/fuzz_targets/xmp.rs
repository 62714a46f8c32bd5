//! Fuzz target: XMP packets (APP1 payloads after the XMP signature) through the XMP reader;
//! a NUL byte in the input starts the next packet (a photo may carry several).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let packets: Vec<&[u8]> = data.split(|b| *b == 0).take(8).collect();
    let _ = besikta_ingest::fuzzing::xmp(&packets);
});
