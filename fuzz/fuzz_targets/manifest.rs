//! Fuzz target: model manifest text (the TOML beside an ONNX model, also what an
//! organisation uploads with its own model) through `Manifest::parse` and its checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(manifest) = besikta_infer::Manifest::parse(text) {
        // What the checks let through must be usable: classes resolve, the model path joins.
        for i in 1..=manifest.classes.len() {
            assert!(manifest.class(i).is_some());
        }
        let _ = manifest.model_path();
    }
});
