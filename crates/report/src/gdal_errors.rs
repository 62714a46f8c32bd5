//! GDAL's own messages routed into our errors instead of its `ERROR 4: ...` lines on stderr.
//!
//! GDAL reports problems through a process-wide error handler whose default prints to
//! stderr; the Rust binding then often returns only "returned a NULL pointer" or the last
//! message, while the cause was said one message earlier ("GeoJSON object too
//! complex/large" before "Failed to read GeoJSON data"). [`install`] replaces that printing
//! with a short per-thread record, and [`take`] hands the record to the error being built on
//! the same thread, so the user reads GDAL's words in our message, once, with the file named.
//!
//! [`install`] also lifts GDAL's limit on the size of one GeoJSON object
//! (`OGR_GEOJSON_MAX_OBJ_SIZE`, 200 MB of parsed size in GDAL 3.6, which a 50 MB register
//! holding one large multi-line reaches) unless the user has set it.

use gdal::errors::CplErrType;
use std::cell::RefCell;
use std::sync::Once;

/// Messages kept per thread: enough for the chain that explains one failure.
const KEPT: usize = 8;

/// One message GDAL gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdalMessage {
    /// An error (`CE_Failure`); otherwise a warning.
    pub failure: bool,
    pub number: i32,
    pub text: String,
}

thread_local! {
    static RECENT: RefCell<Vec<GdalMessage>> = const { RefCell::new(Vec::new()) };
}

/// Routes GDAL's messages to [`take`] for the rest of the process (idempotent). Called by
/// every reader and writer of this crate before it touches GDAL, and by the CLI at start.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let set =
            gdal::config::get_config_option("OGR_GEOJSON_MAX_OBJ_SIZE", "").unwrap_or_default();
        if set.is_empty() {
            // 0 = no limit. Registers are local files or bounded uploads.
            let _ = gdal::config::set_config_option("OGR_GEOJSON_MAX_OBJ_SIZE", "0");
        }
        gdal::config::set_error_handler(|class, number, text| match class {
            CplErrType::None | CplErrType::Debug => {}
            // GDAL aborts right after a fatal error: the last chance to say why.
            CplErrType::Fatal => eprintln!("besikta: GDAL fatal error {number}: {text}"),
            CplErrType::Warning | CplErrType::Failure => RECENT.with(|recent| {
                let mut recent = recent.borrow_mut();
                if recent.len() == KEPT {
                    recent.remove(0);
                }
                recent.push(GdalMessage {
                    failure: class == CplErrType::Failure,
                    number,
                    text: text.trim().to_string(),
                });
            }),
        });
    });
}

/// What GDAL said on this thread since the last call, oldest first; forgets it.
pub fn take() -> Vec<GdalMessage> {
    RECENT.with(|recent| std::mem::take(&mut *recent.borrow_mut()))
}

/// GDAL's errors (not warnings) on this thread since the last call, each once, oldest
/// first, joined with "; "; `None` when GDAL reported none. Forgets them.
pub fn take_failures() -> Option<String> {
    let mut said: Vec<String> = Vec::new();
    for m in take().into_iter().filter(|m| m.failure) {
        if !said.contains(&m.text) {
            said.push(m.text);
        }
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// What GDAL said about the failure `e` of a call on this thread: its own messages when it
/// gave any (the binding keeps only the last, and wraps it in "returned a NULL pointer"),
/// else the binding's error.
pub fn explained(e: impl std::fmt::Display) -> String {
    take_failures().unwrap_or_else(|| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn cut_geojson(dir: &Path) -> PathBuf {
        let path = dir.join("cut.geojson");
        std::fs::write(&path, r#"{"type":"FeatureCollection","features":[{"type":"#).unwrap();
        path
    }

    #[test]
    fn gdal_failures_reach_the_caller_once() {
        install();
        let dir = tempfile::tempdir().unwrap();
        let path = cut_geojson(dir.path());
        take();
        let err = gdal::Dataset::open(&path).unwrap_err();
        // The binding keeps only GDAL's last message, which is not the cause.
        assert!(!err.to_string().contains("Unterminated"), "{err}");
        let text = explained(&err);
        assert_eq!(text.matches("Unterminated object").count(), 1, "{text}");
        assert_eq!(
            text.matches("Failed to read GeoJSON data").count(),
            1,
            "{text}"
        );
        assert!(take().is_empty(), "the record was handed over");
    }

    #[test]
    fn each_thread_hears_its_own_messages() {
        install();
        let dir = tempfile::tempdir().unwrap();
        let path = cut_geojson(dir.path());
        take();
        std::thread::spawn(move || {
            assert!(gdal::Dataset::open(&path).is_err());
            assert!(
                take().iter().any(|m| m.failure),
                "GDAL said why on this thread"
            );
        })
        .join()
        .unwrap();
        assert!(take().is_empty(), "another thread's failure is not ours");
    }
}
