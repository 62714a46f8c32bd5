//! Fuzz target: an organisation's model upload (manifest + ONNX file) through the check the
//! server runs on `PUT /api/v1/org/models/{model}` (crates/server/src/orgmodel_check.rs,
//! compiled here by path): the manifest parsed and compared with the server's model, the
//! ONNX file loaded in ONNX Runtime, checked against its manifest and run on one tile.
//! The input is the manifest text, a NUL byte, then the ONNX file. The server's model is
//! a tiny one of this folder (`fuzz/models/tiny.toml`, an 8x8 segmentation model), so a
//! run takes milliseconds. ONNX Runtime is found as the server finds it: ORT_DYLIB_PATH,
//! else `.cache/onnxruntime/libonnxruntime.so` above the executable (scripts/setup).
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/server/src/orgmodel_check.rs"]
mod orgmodel_check;

use besikta_infer::Manifest;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The server's model the uploads are checked against.
fn base() -> &'static Manifest {
    static BASE: OnceLock<Manifest> = OnceLock::new();
    BASE.get_or_init(|| {
        Manifest::parse(include_str!("../models/tiny.toml"))
            .unwrap_or_else(|e| panic!("fuzz/models/tiny.toml does not read: {e}"))
    })
}

/// This process's folder for the upload's files (the server's spool folder).
fn spool() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("besikta-fuzz-orgmodel-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let (text, onnx) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    // The server refuses a manifest part that is not UTF-8 before the check.
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let dir = spool();
    let model = dir.join("model.onnx");
    std::fs::write(&model, onnx)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", model.display()));
    let _ = std::fs::remove_file(dir.join("manifest.toml"));
    let result = orgmodel_check::check_upload(base(), text, dir);
    if std::env::var_os("BESIKTA_FUZZ_SHOW").is_some() {
        eprintln!("orgmodel: {result:?}");
    }
    if let Ok(accepted) = result {
        // What the check lets through is the server's model under a version of its own,
        // stored beside its ONNX file.
        let base = base();
        assert_eq!(accepted.name, base.name);
        assert_ne!(accepted.version, base.version);
        assert_eq!(accepted.classes, base.classes);
        assert_eq!(accepted.output, base.output);
        let stored = std::fs::read_to_string(dir.join("manifest.toml")).expect("stored manifest");
        let again = Manifest::parse(&stored).expect("the stored manifest reads");
        assert!(
            again.model_path().ends_with("model.onnx"),
            "{:?}",
            again.model_path()
        );
    }
});
