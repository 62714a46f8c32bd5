//! The check of an organisation's model upload (`PUT /api/v1/org/models/{model}`): its
//! manifest against the server's model and its ONNX file loaded and run in ONNX Runtime.
//! Also compiled by path into the fuzz target `fuzz/fuzz_targets/orgmodel.rs`: keep it free
//! of `crate::` imports (it may use std, besikta_infer and toml only).

use besikta_infer::manifest::Task;
use besikta_infer::{EngineConfig, Manifest, Model};
use std::path::Path as FsPath;

/// A version string usable as a folder name.
fn version_ok(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && !v.starts_with('.')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

/// Checks an uploaded manifest and the ONNX file `dir/model.onnx` against the server's
/// model `base`; writes `dir/manifest.toml` (its `model` key set to `model.onnx`) and
/// returns the parsed manifest, or the reasons it is refused.
pub fn check_upload(base: &Manifest, text: &str, dir: &FsPath) -> Result<Manifest, String> {
    let manifest = Manifest::parse(text).map_err(|e| format!("the manifest does not read: {e}"))?;
    if manifest.name != base.name {
        return Err(format!(
            "the manifest names the model {:?} but the upload is for {:?}",
            manifest.name, base.name
        ));
    }
    if !version_ok(&manifest.version) {
        return Err(format!(
            "version {:?} must be 1 to 64 letters, digits, '.', '_', '+' or '-'",
            manifest.version
        ));
    }
    if manifest.version == base.version {
        return Err(format!(
            "version {} is the server's own; give your model a version of its own so findings say which model made them",
            base.version
        ));
    }
    let mut differ = Vec::new();
    if manifest.task != base.task {
        differ.push(format!(
            "task {:?}, the server's model {:?}",
            manifest.task, base.task
        ));
    }
    let (i, b) = (&manifest.input, &base.input);
    if (i.name.as_str(), i.width, i.height) != (b.name.as_str(), b.width, b.height) {
        differ.push(format!(
            "input `{}` {}x{}, the server's model `{}` {}x{}",
            i.name, i.width, i.height, b.name, b.width, b.height
        ));
    }
    if manifest.output != base.output {
        differ.push(format!(
            "output `{}` ({:?}), the server's model `{}` ({:?})",
            manifest.output.name, manifest.output.decode, base.output.name, base.output.decode
        ));
    }
    if manifest.classes != base.classes {
        let names = |m: &Manifest| {
            m.classes
                .iter()
                .map(|c| format!("{} ({})", c.name, c.asset_kind))
                .collect::<Vec<_>>()
                .join(", ")
        };
        differ.push(format!(
            "classes [{}], the server's model [{}]",
            names(&manifest),
            names(base)
        ));
    }
    if !differ.is_empty() {
        return Err(format!(
            "it must take the same input and give the same output and classes as the server's {} {}: the upload has {}",
            base.name,
            base.version,
            differ.join("; ")
        ));
    }
    // The manifest as stored: its ONNX file beside it.
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| format!("the manifest does not read: {e}"))?;
    table.insert("model".into(), toml::Value::String("model.onnx".into()));
    let stored = toml::to_string(&table).map_err(|e| format!("cannot write the manifest: {e}"))?;
    let path = dir.join("manifest.toml");
    std::fs::write(&path, stored).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let engine = EngineConfig {
        intra_threads: 1,
        workers: 1,
        batch_size: 1,
        ..EngineConfig::default()
    };
    let mut model = Model::load(&path, &engine).map_err(|e| {
        format!("the ONNX file does not load in ONNX Runtime or does not fit its manifest: {e}")
    })?;
    // One blank tile through it: the output must have the shape the pipeline reads.
    let (w, h) = (base.input.width as usize, base.input.height as usize);
    let (shape, _) = model
        .run_tensor(&vec![0.0; 3 * w * h], 1)
        .map_err(|e| format!("the model does not run on one {w}x{h} tile: {e}"))?;
    if base.task == Task::Segmentation {
        let k = base.classes.len() as i64;
        let ok = shape.len() == 4
            && shape[0] == 1
            && (shape[1] == k || shape[1] == k + 1)
            && shape[2] == h as i64
            && shape[3] == w as i64;
        if !ok {
            return Err(format!(
                "on one {w}x{h} tile the output has shape {shape:?}; expected [1, {k} or {}, {h}, {w}]",
                k + 1
            ));
        }
    }
    Ok(manifest)
}
