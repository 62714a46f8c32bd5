//! Finding and loading the ONNX Runtime shared library, and building sessions on CPU or CUDA.

use crate::InferError;
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// The CUDA execution provider of the `onnxruntime-gpu` wheel; never falls back to CPU silently.
    Cuda,
}

const LIB_NAME: &str = "libonnxruntime.so";
const CUDA_PROVIDER: &str = "libonnxruntime_providers_cuda.so";

/// How to get the library, appended to every "not found" error.
pub const HOW_TO_GET_ORT: &str =
    "run `scripts/setup` in the Besikta checkout (it puts the CPU library at \
     .cache/onnxruntime/libonnxruntime.so), or set ORT_DYLIB_PATH to a libonnxruntime.so \
     (for example the one inside the `onnxruntime` wheel from PyPI)";

/// The loaded runtime: one per process, because the shared library can only be loaded once.
struct Runtime {
    env: Environment,
    /// The library actually loaded (`libonnxruntime.so` alone when the system loader found it).
    library: PathBuf,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Candidate library paths in the order they are tried, with where each came from.
pub fn library_candidates() -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        out.push((PathBuf::from(p), "ORT_DYLIB_PATH"));
        // An explicit choice is final: falling back to another library would hide a typo.
        return out;
    }
    let rel = Path::new(".cache").join("onnxruntime").join(LIB_NAME);
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            out.push((dir.join(&rel), "project cache next to the executable"));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    out.push((root.join(&rel), "project cache of the source checkout"));
    out
}

fn load_runtime() -> Result<Runtime, String> {
    let candidates = library_candidates();
    let explicit = candidates
        .first()
        .is_some_and(|(_, src)| *src == "ORT_DYLIB_PATH");
    let chosen = candidates
        .iter()
        .find(|(p, _)| p.is_file())
        .map(|(p, _)| p.clone());
    let library = match chosen {
        Some(p) => p,
        None if explicit => {
            return Err(format!(
                "ORT_DYLIB_PATH is set to {}, which is not a file; {HOW_TO_GET_ORT}",
                candidates[0].0.display()
            ))
        }
        // Last resort: the system loader's search path (LD_LIBRARY_PATH, /usr/lib, ...).
        None => PathBuf::from(LIB_NAME),
    };
    let builder = ort::init_from(&library).map_err(|e| {
        if library.as_os_str() == LIB_NAME {
            format!(
                "the ONNX Runtime library was not found in the project cache nor on the system ({e}); {HOW_TO_GET_ORT}"
            )
        } else {
            format!("could not load ONNX Runtime from {}: {e}; {HOW_TO_GET_ORT}", library.display())
        }
    })?;
    let env = builder
        .with_name("besikta")
        .with_telemetry(false)
        .build()
        .map_err(|e| {
            format!(
                "could not start ONNX Runtime from {}: {e}",
                library.display()
            )
        })?;
    Ok(Runtime { env, library })
}

fn runtime() -> Result<&'static Runtime, InferError> {
    RUNTIME
        .get_or_init(load_runtime)
        .as_ref()
        .map_err(|e| InferError::Runtime(e.clone()))
}

/// Loads the ONNX Runtime library (once per process) and returns the path it came from.
pub fn ensure_runtime() -> Result<PathBuf, InferError> {
    runtime().map(|r| r.library.clone())
}

/// Checks that `device` can run models before any work starts: loads the runtime and, for
/// [`Device::Cuda`], looks for the CUDA execution provider beside it. The error names the
/// device and what to install.
pub fn check_device(device: Device) -> Result<(), InferError> {
    let rt = runtime()?;
    match device {
        Device::Cpu => Ok(()),
        Device::Cuda => check_cuda_provider(&rt.library),
    }
}

/// Options of one session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionOptions {
    pub device: Device,
    pub intra_threads: usize,
}

/// Builds one session for `model`; CUDA either registers or fails with the reason.
///
/// On CPU, memory patterns are off: with them ONNX Runtime plans one block for all of a
/// run's tensors, which its arena rounds up and keeps for the session's life (about
/// 140 MiB more per session of the test crack model at 256 px, so ~280 MiB for the two
/// sessions of a `serve` job), for no time gained on these models
/// (`benches/results/load.md`, "Server memory while processing"). Outputs are the same
/// to the bit.
pub(crate) fn build_session(model: &Path, opts: SessionOptions) -> Result<Session, InferError> {
    let rt = runtime()?;
    let ort_err = |what: &str, e: ort::Error| InferError::Session {
        path: model.to_path_buf(),
        reason: format!("{what}: {e}"),
    };
    let mut builder = Session::builder(&rt.env)
        .map_err(|e| ort_err("could not create a session builder", e))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| ort_err("could not set the optimisation level", e.into()))?
        .with_intra_threads(opts.intra_threads.max(1))
        .map_err(|e| ort_err("could not set the thread count", e.into()))?;
    if opts.device == Device::Cpu {
        builder = builder
            .with_memory_pattern(false)
            .map_err(|e| ort_err("could not turn off memory patterns", e.into()))?;
    }
    if opts.device == Device::Cuda {
        check_cuda_provider(&rt.library)?;
        builder = builder
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(|e| InferError::Cuda(format!(
                "the CUDA execution provider failed to register ({e}); check that the CUDA 12 runtime and cuDNN 9 libraries the onnxruntime-gpu wheel needs are on the loader path and a GPU is visible"
            )))?;
    }
    builder
        .commit_from_file(model)
        .map_err(|e| InferError::Session {
            path: model.to_path_buf(),
            reason: format!("ONNX Runtime could not load the model: {e}"),
        })
}

/// The CUDA provider is a separate library that must sit beside the loaded `libonnxruntime.so`.
fn check_cuda_provider(library: &Path) -> Result<(), InferError> {
    let dir = if library.as_os_str() == LIB_NAME {
        None
    } else {
        library.parent()
    };
    let found = dir.is_some_and(|d| d.join(CUDA_PROVIDER).is_file());
    if found {
        return Ok(());
    }
    let beside = match dir {
        Some(d) => format!(
            "beside the loaded {} (in {})",
            library.display(),
            d.display()
        ),
        None => "beside the system libonnxruntime.so".to_string(),
    };
    Err(InferError::Cuda(format!(
        "--device cuda needs {CUDA_PROVIDER} {beside}, and it is not there (the CPU `onnxruntime` wheel has none); \
         unpack the `onnxruntime-gpu` wheel from PyPI into a folder and set ORT_DYLIB_PATH to its libonnxruntime.so, \
         or use --device cpu"
    )))
}
