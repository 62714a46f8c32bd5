//! `besikta process` as a user runs it: what it counts and says about photos that pass the
//! header check but cannot be decoded.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn besikta(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_besikta"))
        .args(args)
        .output()
        .expect("the besikta binary runs")
}

/// A copy of a Brighton photo whose first Huffman table claims more codes than exist: its
/// headers, EXIF and XMP are intact (ingest accepts it), its pixels cannot be decoded.
fn undecodable_copy(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(fixtures().join("brighton/DJI_0018.JPG")).unwrap();
    let mut pos = 2;
    loop {
        assert_eq!(bytes[pos], 0xFF, "a marker at {pos}");
        let marker = bytes[pos + 1];
        let length = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
        assert_ne!(marker, 0xDA, "a DHT segment before the scan");
        if marker == 0xC4 {
            // The 16 code-length counts after the table class/id byte.
            bytes[pos + 5..pos + 21].fill(0xFF);
            break;
        }
        pos += 2 + length;
    }
    let path = dir.join("DJI_0018_bad_huffman.JPG");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_photo_that_fails_to_decode_is_rejected_and_not_counted_as_processed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = undecodable_copy(dir.path());
    let out = dir.path().join("out");
    let good = fixtures().join("brighton/DJI_0019.JPG");
    let o = besikta(&[
        "process",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        "--models",
        fixtures().join("models/coarse").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("photos: 2 found, 1 processed, 1 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rejected") && stdout.contains("DJI_0018_bad_huffman.JPG"),
        "{stdout}"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["photos_found"], 2);
    assert_eq!(summary["photos_processed"], 1);
    let rejected = summary["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("DJI_0018_bad_huffman.JPG"));
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot be decoded"),
        "{}",
        rejected[0]
    );
}
