//! The tus request headers as plain text functions: `Upload-Length`/`Upload-Offset`,
//! `Upload-Metadata`, `Upload-Checksum`, and the file name kept on disk. The fuzz target
//! `fuzz/fuzz_targets/tus_headers.rs` compiles this very file (by path), so it must use
//! nothing from the rest of the crate.

use base64::Engine as _;

/// The checksum algorithms `Upload-Checksum` may name (tus `Tus-Checksum-Algorithm`).
pub const TUS_CHECKSUMS: &str = "sha1,sha256";

/// An `Upload-Length` or `Upload-Offset` value: a non-negative decimal integer, nothing else
/// (no sign, no spaces inside, at most `u64::MAX`).
pub fn parse_u64(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The value of `key` in an `Upload-Metadata` header (`key base64,key2 base64`), decoded
/// as UTF-8; `None` when the key is absent or its value is not base64 of UTF-8 text.
pub fn metadata_value(meta: &str, key: &str) -> Option<String> {
    meta.split(',').find_map(|pair| {
        let mut it = pair.trim().splitn(2, ' ');
        (it.next()? == key).then_some(())?;
        let value = base64::engine::general_purpose::STANDARD
            .decode(it.next()?.trim())
            .ok()?;
        String::from_utf8(value).ok()
    })
}

/// A checksum algorithm `Upload-Checksum` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// The digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

/// An `Upload-Checksum` value (`<algorithm> <base64 digest>`): the algorithm and the digest,
/// or the sentence to send back.
pub fn parse_checksum(value: &str) -> Result<(ChecksumAlgorithm, Vec<u8>), String> {
    let (alg, b64) = value
        .split_once(' ')
        .ok_or("Upload-Checksum must be '<algorithm> <base64 digest>'")?;
    let algorithm = match alg {
        "sha1" => ChecksumAlgorithm::Sha1,
        "sha256" => ChecksumAlgorithm::Sha256,
        other => {
            return Err(format!(
                "checksum algorithm {other:?} is not supported; use one of {TUS_CHECKSUMS}"
            ))
        }
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| "the Upload-Checksum digest is not base64".to_string())?;
    if digest.len() != algorithm.digest_len() {
        return Err(format!(
            "the Upload-Checksum digest is {} bytes; a {alg} digest is {}",
            digest.len(),
            algorithm.digest_len()
        ));
    }
    Ok((algorithm, digest))
}

/// A file name safe to keep on disk: its last path part, odd characters replaced.
pub fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "photo.jpg".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_plain_digits() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+5", "-1", "1 2", "0x10", "18446744073709551616", "１"] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn metadata_values_decode_or_are_absent() {
        let meta = "filename REpJXzAwMTguSlBH, flag ,name !!!";
        assert_eq!(
            metadata_value(meta, "filename").as_deref(),
            Some("DJI_0018.JPG")
        );
        assert_eq!(metadata_value(meta, "flag"), None);
        assert_eq!(metadata_value(meta, "name"), None);
        assert_eq!(metadata_value(meta, "other"), None);
    }

    #[test]
    fn checksums_need_a_known_algorithm_and_a_digest_of_its_length() {
        let sha1 = base64::engine::general_purpose::STANDARD.encode([7u8; 20]);
        assert_eq!(
            parse_checksum(&format!("sha1 {sha1}")),
            Ok((ChecksumAlgorithm::Sha1, vec![7u8; 20]))
        );
        let short = parse_checksum(&format!("sha256 {sha1}")).unwrap_err();
        assert!(short.contains("20 bytes"), "{short}");
        assert!(parse_checksum("md5 AAAA").unwrap_err().contains("md5"));
        assert!(parse_checksum("sha1").unwrap_err().contains("<algorithm>"));
        assert!(parse_checksum("sha1 ***")
            .unwrap_err()
            .contains("not base64"));
    }

    #[test]
    fn safe_names_are_one_harmless_path_part() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\DCIM\\DJI 0018.JPG"), "DJI_0018.JPG");
        assert_eq!(safe_name(".."), "photo.jpg");
        assert_eq!(safe_name("..."), "photo.jpg");
        assert_eq!(safe_name(""), "photo.jpg");
        assert_eq!(safe_name(&"a".repeat(300)).len(), 120);
    }
}
