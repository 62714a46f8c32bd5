//! Helpers shared by the pipeline's work-unit tests: the bundled simulated flight's
//! configuration, options, JSON round trips as between workers, and readable differences.
// Each test file uses only some of these.
#![allow(dead_code)]

use besikta_pipeline::units::{infer_batch, BatchResult, Prepared};
use besikta_pipeline::{ModelSummary, ProcessConfig, ProcessOptions};
use besikta_report::RegisterSource;
use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bundled simulated flight (`fixtures/sim`) with the Helsinki register and the
/// shipped models, written to `out`.
pub fn config(out: &Path) -> ProcessConfig {
    ProcessConfig {
        inputs: vec![repo().join("fixtures/sim")],
        registers: vec![RegisterSource::new(
            repo().join("fixtures/registers/helsinki.osm.pbf"),
        )],
        models_dir: repo().join("models"),
        dem: None,
        crs: Some("EPSG:3067".into()),
        out_dir: out.to_path_buf(),
        threads: 1,
        device: Default::default(),
    }
}

/// A models folder in `dir` with the shipped models (linked) and the shipped evidence rules
/// changed by `edit` (the text of `models/evidence.toml` in, the rules to use out).
pub fn models_with_evidence(dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let shipped = repo().join("models");
    let m = dir.join("models");
    std::fs::create_dir_all(&m).unwrap();
    for kind in ["crack", "pothole", "roof"] {
        std::os::unix::fs::symlink(shipped.join(kind), m.join(kind)).unwrap();
    }
    let text = std::fs::read_to_string(shipped.join("evidence.toml")).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changes the rules");
    std::fs::write(m.join("evidence.toml"), edited).unwrap();
    m
}

/// The summary of the model called `name`.
pub fn model<'a>(models: &'a [ModelSummary], name: &str) -> &'a ModelSummary {
    models
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("the shipped {name} model is listed"))
}

/// The default options with second views by windows (`true`) or by owners (`false`).
pub fn options(windows: bool) -> ProcessOptions {
    ProcessOptions {
        windows: Some(windows),
        ..ProcessOptions::default()
    }
}

/// `v` written to JSON and read back, as between workers.
pub fn through_json<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

/// The batches of `prepared` cut at `cuts` (first 0, last the photo count), run last
/// first, each result through JSON.
pub fn batches(cfg: &ProcessConfig, prepared: &Prepared, cuts: &[usize]) -> Vec<BatchResult> {
    cuts.windows(2)
        .rev()
        .map(|w| {
            let b = infer_batch(
                cfg,
                prepared,
                w[0]..w[1],
                &|f: &str| PathBuf::from(f),
                &mut |_| {},
            )
            .unwrap();
            assert_eq!((b.first, b.count), (w[0], w[1] - w[0]));
            through_json(&b)
        })
        .collect()
}

/// Where two JSON values first differ, for a readable failure.
pub fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    return first_difference(p, q, &format!("{at}[{i}]"));
                }
            }
            format!("{at}: {} items against {}", x.len(), y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for (k, p) in x {
                if y.get(k) != Some(p) {
                    return match y.get(k) {
                        Some(q) => first_difference(p, q, &format!("{at}.{k}")),
                        None => format!("{at}.{k} missing"),
                    };
                }
            }
            format!("{at}: keys differ")
        }
        _ => format!("{at}: {a} against {b}"),
    }
}

/// Asserts the two findings lists are the same once serialised, naming the first difference.
pub fn assert_same_findings<T: serde::Serialize>(a: &T, b: &T, what: &str) {
    let (a, b) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    );
    assert!(
        a == b,
        "findings differ between {what}: {}",
        first_difference(&a, &b, "findings")
    );
}
