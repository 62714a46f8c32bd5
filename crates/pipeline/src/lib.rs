//! The process job shared by `besikta process` and the server's workers: ingest ->
//! georeferencing -> inference -> report, writing every product into one output folder.

use besikta_report::RegisterSource;
use serde::Serialize;
use std::path::PathBuf;

/// What to process and where to put the results.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Photos or folders (searched recursively).
    pub inputs: Vec<PathBuf>,
    pub registers: Vec<RegisterSource>,
    /// Folder holding model manifests (`*.toml`, searched recursively).
    pub models_dir: PathBuf,
    pub dem: Option<PathBuf>,
    /// CRS of the GeoPackage output; default the register's, else WGS 84.
    pub crs: Option<String>,
    pub out_dir: PathBuf,
    /// Threads for ONNX Runtime inside one session.
    pub threads: usize,
}

/// The stages, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Ingest,
    Georef,
    Infer,
    Report,
    Export,
}

/// One progress report: `done` of `total` units of `stage`.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub stage: Stage,
    pub done: usize,
    pub total: usize,
    pub file: Option<String>,
}

/// Errors that stop the whole job (bad photos do not: they are rejected and listed).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no models found in {0}: put model manifests (*.toml beside *.onnx) there or pass --models")]
    NoModels(String),
    #[error("{0}")]
    Report(#[from] besikta_report::ReportError),
    #[error("{0}")]
    Infer(#[from] besikta_infer::InferError),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}
