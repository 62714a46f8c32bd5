//! Fuzz target: tus request header values (`Upload-Length`/`Upload-Offset`,
//! `Upload-Metadata`, `Upload-Checksum`) and the stored file name, through the very file
//! the server uses (crates/server/src/tus_headers.rs, compiled here by path).
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/server/src/tus_headers.rs"]
mod tus_headers;

use libfuzzer_sys::fuzz_target;
use tus_headers::{metadata_value, parse_checksum, parse_u64, safe_name};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One header value per line: a length/offset, the metadata, a checksum.
    let mut lines = text.split('\n');
    let number = lines.next().unwrap_or("");
    let meta = lines.next().unwrap_or("");
    let checksum = lines.next().unwrap_or("");
    if let Some(n) = parse_u64(number) {
        // Only plain digits are numbers: printing it back gives the value without zeros in front.
        let digits = number.trim_start_matches('0');
        assert_eq!(n.to_string(), if digits.is_empty() { "0" } else { digits });
    }
    for key in ["filename", "name"] {
        let name = metadata_value(meta, key).unwrap_or_default();
        let kept = safe_name(&name);
        // The stored name is one harmless path part whatever the client sent.
        assert!(!kept.is_empty() && kept.len() <= 120, "{kept:?}");
        assert!(!kept.starts_with('.'), "{kept:?}");
        assert!(
            kept.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')),
            "{kept:?}"
        );
    }
    if let Ok((algorithm, digest)) = parse_checksum(checksum) {
        assert_eq!(digest.len(), algorithm.digest_len());
    }
});
