//! Scanning files and folders: collecting inputs, reading them on a few threads, and
//! rejecting duplicates, so one bad file never sinks the batch.

use crate::capture::{self, ReadOptions};
use crate::error::{IngestError, Problem};
use crate::ortho::{self, Orthophoto};
use besikta_core::{Capture, Rejected};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Everything a scan found, sorted by file name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    pub captures: Vec<Capture>,
    pub rejected: Vec<Rejected>,
    pub orthophotos: Vec<Orthophoto>,
}

/// How a scan runs.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    pub read: ReadOptions,
    /// Reader threads; 0 means one per available core.
    pub threads: usize,
    /// Files larger than this are refused without being read into memory.
    pub max_photo_bytes: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            read: ReadOptions::default(),
            threads: 0,
            max_photo_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What kind of input a path is, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jpeg,
    Tiff,
    /// Other photo formats: listed in folders so the crew hears they were skipped.
    OtherPhoto,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" | "jpe" => Some(Kind::Jpeg),
        "tif" | "tiff" => Some(Kind::Tiff),
        "png" | "heic" | "heif" | "dng" | "webp" => Some(Kind::OtherPhoto),
        _ => None,
    }
}

/// Files to read: named files whatever their extension, and from folders (recursively)
/// the photos and TIFFs that are not hidden. Unreadable paths come back as rejections.
fn collect(paths: &[PathBuf]) -> (BTreeSet<PathBuf>, Vec<Rejected>) {
    let mut files = BTreeSet::new();
    let mut rejected = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk_dir(path, &mut files, &mut rejected),
            Ok(_) => {
                files.insert(path.clone());
            }
            Err(err) => rejected.push(Rejected {
                file: path.display().to_string(),
                reason: Problem::Unreadable(err).to_string(),
            }),
        }
    }
    (files, rejected)
}

fn walk_dir(dir: &Path, files: &mut BTreeSet<PathBuf>, rejected: &mut Vec<Rejected>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            rejected.push(Rejected {
                file: dir.display().to_string(),
                reason: Problem::Unreadable(err).to_string(),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        // Hidden entries are not photos: macOS leaves `._DJI_0001.JPG` resource forks on
        // memory cards, and `.Trashes` holds deleted files.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follow symlinks to files but not to folders, so a link loop cannot hang the scan.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            walk_dir(&path, files, rejected);
        } else if kind_of(&path).is_some() {
            files.insert(path);
        }
    }
}

/// One file's outcome.
enum Outcome {
    Capture(Box<Capture>),
    Orthophoto(Orthophoto),
    Rejected(Rejected),
}

fn read_one(path: &Path, options: &ScanOptions) -> Outcome {
    let name = path.display().to_string();
    let reject = |problem: Problem| {
        Outcome::Rejected(Rejected {
            file: name.clone(),
            reason: problem.to_string(),
        })
    };
    if kind_of(path) == Some(Kind::Tiff) {
        return match ortho::read(&name, path) {
            Ok(ortho) => Outcome::Orthophoto(ortho),
            Err(problem) => reject(problem),
        };
    }
    match read_bytes(path, options.max_photo_bytes) {
        Ok(bytes) => match capture::read(&name, &bytes, &options.read) {
            Ok(capture) => Outcome::Capture(Box::new(capture)),
            Err(problem) => reject(problem),
        },
        Err(problem) => reject(problem),
    }
}

/// Reads a whole file once; hashing and parsing then share the buffer.
pub(crate) fn read_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>, Problem> {
    let size = std::fs::metadata(path).map_err(Problem::Unreadable)?.len();
    if size > max_bytes {
        return Err(Problem::TooLarge {
            size_mb: size / 1_000_000,
            limit_mb: max_bytes / 1_000_000,
        });
    }
    std::fs::read(path).map_err(Problem::Unreadable)
}

/// Scans with explicit options; see [`crate::scan`].
pub fn scan_with(paths: &[PathBuf], options: &ScanOptions) -> ScanReport {
    let (files, mut rejected) = collect(paths);
    // The same file named twice (or reached through two arguments) is one input.
    let mut seen = HashMap::new();
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|path| {
            let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            seen.insert(key, ()).is_none()
        })
        .collect();

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else {
                    break;
                };
                let outcome = read_one(path, options);
                if let Ok(mut slots) = outcomes.lock() {
                    slots[i] = Some(outcome);
                }
            });
        }
    });

    let mut report = ScanReport::default();
    let mut first_by_hash: HashMap<String, String> = HashMap::new();
    let outcomes = outcomes.into_inner().unwrap_or_default();
    for outcome in outcomes.into_iter().flatten() {
        match outcome {
            Outcome::Capture(capture) => {
                if let Some(first) = first_by_hash.get(&capture.sha256) {
                    rejected.push(Rejected {
                        file: capture.file.clone(),
                        reason: Problem::Duplicate {
                            first: first.clone(),
                        }
                        .to_string(),
                    });
                } else {
                    first_by_hash.insert(capture.sha256.clone(), capture.file.clone());
                    report.captures.push(*capture);
                }
            }
            Outcome::Orthophoto(ortho) => report.orthophotos.push(ortho),
            Outcome::Rejected(r) => rejected.push(r),
        }
    }
    rejected.sort_by(|a, b| a.file.cmp(&b.file));
    report.rejected = rejected;
    report
}

/// Reads one photo from disk.
pub fn read_capture_with(path: &Path, options: &ScanOptions) -> Result<Capture, IngestError> {
    let name = path.display().to_string();
    let bytes =
        read_bytes(path, options.max_photo_bytes).map_err(|p| IngestError::new(&name, p))?;
    capture::read(&name, &bytes, &options.read).map_err(|p| IngestError::new(&name, p))
}
