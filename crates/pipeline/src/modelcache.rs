//! Loaded models kept by the process between work units (issue 15): a worker running one
//! batch unit after another loads each model set once, not once per unit. A set is keyed
//! by what was loaded (each manifest's text and a SHA-256 of its ONNX file, in order) and
//! how (the engine settings), not by where: an organisation's own model versions, copied
//! into a new folder for every unit, are the same set as long as the files are the same.
//! A set is taken out while a batch runs it (sessions are run mutably) and put back after,
//! so concurrent units of one process each get a set of their own. Nothing is kept unless
//! the process asks ([`keep`]): each ONNX Runtime session holds its memory arena (hundreds
//! of MiB), which a one-shot `besikta process` or an embedded server between jobs should
//! not keep; `besikta worker` processes keep one set.

use besikta_infer::{EngineConfig, Model};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::PipelineError;

/// Idle model sets kept at most ([`keep`]; none by default); the least recently returned
/// goes first.
static KEEP: AtomicUsize = AtomicUsize::new(0);

/// Keeps at most `sets` idle model sets in this process from now on (0: none).
pub fn keep(sets: usize) {
    KEEP.store(sets, Ordering::SeqCst);
    let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
    while idle.len() > sets {
        idle.remove(0);
    }
}

/// What a model set is: manifests and model files by content, and the engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    files: Vec<(String, String)>,
    engine: EngineConfig,
}

/// Idle sets, the most recently returned last.
static IDLE: Mutex<Vec<(Key, Vec<Model>)>> = Mutex::new(Vec::new());

fn read(path: &Path) -> Result<Vec<u8>, PipelineError> {
    std::fs::read(path).map_err(|e| PipelineError::Write {
        path: path.display().to_string(),
        message: format!("cannot read the model file ({e}); check the models folder"),
    })
}

/// The key of the models under `paths` (manifest files) run with `engine`.
pub fn key(paths: &[PathBuf], engine: &EngineConfig) -> Result<Key, PipelineError> {
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let manifest = besikta_infer::Manifest::load(p)?;
        let text = String::from_utf8_lossy(&read(p)?).into_owned();
        let onnx = besikta_ingest::sha256_hex(&read(&manifest.model_path())?);
        files.push((text, onnx));
    }
    Ok(Key {
        files,
        engine: *engine,
    })
}

/// An idle set of `key`, or the models loaded anew; hand it back with [`give_back`].
pub fn take(
    key: &Key,
    paths: &[PathBuf],
    engine: &EngineConfig,
) -> Result<Vec<Model>, PipelineError> {
    {
        let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = idle.iter().rposition(|(k, _)| k == key) {
            return Ok(idle.remove(i).1);
        }
    }
    Ok(paths
        .iter()
        .map(|m| Model::load(m, engine))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Keeps `models` for the next unit with the same key.
pub fn give_back(key: Key, models: Vec<Model>) {
    let keep = KEEP.load(Ordering::SeqCst);
    if keep == 0 {
        return;
    }
    let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
    idle.push((key, models));
    while idle.len() > keep {
        idle.remove(0);
    }
}

/// Whether a set of `key` waits to be used again.
pub fn is_idle(key: &Key) -> bool {
    IDLE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|(k, _)| k == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coarse test model copied into `dir` (manifest in `dir/m`), its manifest marked
    /// so no other test's set has this key.
    fn copy_models(dir: &Path) -> Vec<PathBuf> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models");
        std::fs::create_dir_all(dir.join("m")).unwrap();
        std::fs::copy(
            fixtures.join("mtscrack_static.onnx"),
            dir.join("mtscrack_static.onnx"),
        )
        .unwrap();
        let text = std::fs::read_to_string(fixtures.join("coarse/mtscrack_coarse.toml")).unwrap();
        let manifest = dir.join("m/mtscrack_coarse.toml");
        std::fs::write(&manifest, format!("# modelcache test\n{text}")).unwrap();
        vec![manifest]
    }

    #[test]
    fn a_set_is_reused_by_content_not_by_folder() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (pa, pb) = (copy_models(a.path()), copy_models(b.path()));
        let engine = EngineConfig {
            intra_threads: 1,
            workers: 1,
            ..EngineConfig::default()
        };
        let ka = key(&pa, &engine).unwrap();
        assert_eq!(ka, key(&pb, &engine).unwrap(), "same files, other folder");
        let other = EngineConfig {
            intra_threads: 2,
            ..engine
        };
        assert_ne!(ka, key(&pa, &other).unwrap(), "other engine settings");

        assert!(!is_idle(&ka));
        keep(2);
        let models = take(&ka, &pa, &engine).unwrap();
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].manifest().name, "mtscrack");
        give_back(ka.clone(), models);
        assert!(is_idle(&ka));
        // The set loaded from folder a serves folder b's unit (taken out while it runs),
        // even with folder a gone.
        drop(a);
        let models = take(&ka, &pb, &engine).unwrap();
        assert!(!is_idle(&ka), "taken out while a unit runs it");
        give_back(ka.clone(), models);

        // A changed model file is another set.
        std::fs::write(b.path().join("mtscrack_static.onnx"), b"not the same model").unwrap();
        assert_ne!(ka, key(&pb, &engine).unwrap());
    }
}
