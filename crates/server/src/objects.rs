//! Photos and job products in the storage `--storage` names (`besikta_storage`): with the
//! default (the data folder) every function here leaves files where they are, as before;
//! with an object store (`s3://bucket/prefix`) finished photos and a job's products are
//! copied there under the same relative paths the database keeps, and a job's photos are
//! fetched into a scratch folder of the worker that runs it.
//!
//! tus uploads are spooled in the data folder of the API machine (`uploads/<id>.part`,
//! written as each PATCH body streams in, so a restarted server resumes them) and the
//! finished file goes to the object store as one streamed multipart upload: S3 parts must
//! be at least 5 MiB but tus clients send chunks of any size, so PATCH bodies cannot be
//! the parts themselves, and a spool file never holds a photo in memory.

use crate::AppState;
use besikta_store::Photo;
use std::path::{Path, PathBuf};

/// After a photo was moved to `rel` in the data folder: with an object store, copies it
/// there and removes the local copy. The error names the storage.
pub(crate) fn publish_photo(state: &AppState, rel: &str) -> Result<(), String> {
    let storage = state.storage();
    if storage.is_local() {
        return Ok(());
    }
    let local = state.data_dir().join(rel);
    storage
        .put_file_blocking(rel, &local)
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&local);
    Ok(())
}

/// Whether the stored photo at `rel` is there (an upload may complete a row whose file a
/// crash left missing).
pub(crate) fn photo_present(state: &AppState, rel: &str) -> bool {
    let storage = state.storage();
    if storage.is_local() {
        return state.data_dir().join(rel).is_file();
    }
    storage.exists_blocking(rel).unwrap_or(false)
}

/// Where one job attempt reads its photos and writes its products.
pub(crate) struct JobFiles {
    /// The photos' local paths, in the order of the flight's photos.
    pub inputs: Vec<PathBuf>,
    /// The folder the pipeline writes into.
    pub out_dir: PathBuf,
    /// The scratch folder to remove at the end (object store only).
    scratch: Option<PathBuf>,
}

/// The scratch folder of a job attempt in the worker's data folder.
fn scratch_dir(data: &Path, job_id: i64, attempt: i64) -> PathBuf {
    data.join("scratch").join(format!("job-{job_id}-{attempt}"))
}

/// Prepares a job attempt's files: in the data folder as they are, or, with an object
/// store, the photos fetched (streamed to disk) into a scratch folder of this worker.
pub(crate) fn job_files(
    state: &AppState,
    job_id: i64,
    attempt: i64,
    photos: &[Photo],
    rel_out: &str,
    renew_lease: &dyn Fn(),
) -> Result<JobFiles, String> {
    let data = state.data_dir();
    let storage = state.storage();
    if storage.is_local() {
        return Ok(JobFiles {
            inputs: photos.iter().map(|p| data.join(&p.path)).collect(),
            out_dir: data.join(rel_out),
            scratch: None,
        });
    }
    let scratch = scratch_dir(data, job_id, attempt);
    let _ = std::fs::remove_dir_all(&scratch);
    let photo_dir = scratch.join("photos");
    let mut inputs = Vec::with_capacity(photos.len());
    let mut last_renew = std::time::Instant::now();
    for p in photos {
        // Photo names are unique within a flight.
        let local = photo_dir.join(crate::findings::basename(&p.path));
        storage
            .get_file_blocking(&p.path, &local)
            .map_err(|e| format!("cannot fetch the flight's photo {}: {e}", p.name))?;
        inputs.push(local);
        // A large flight takes a while to fetch: the job stays this worker's meanwhile.
        if last_renew.elapsed() >= std::time::Duration::from_secs(5) {
            renew_lease();
            last_renew = std::time::Instant::now();
        }
    }
    Ok(JobFiles {
        inputs,
        out_dir: scratch.join("out"),
        scratch: Some(scratch),
    })
}

impl JobFiles {
    /// After the pipeline succeeded: with an object store, copies the products to
    /// `rel_out` there.
    pub(crate) fn publish(&self, state: &AppState, rel_out: &str) -> Result<(), String> {
        if self.scratch.is_none() {
            return Ok(());
        }
        state
            .storage()
            .put_dir_blocking(rel_out, &self.out_dir)
            .map(|_| ())
            .map_err(|e| format!("cannot store the job's products: {e}"))
    }

    /// The local path of the register `rel` (relative to the data folder) for this job:
    /// in place, or fetched from the object store into the scratch folder.
    pub(crate) fn register(&self, state: &AppState, rel: &str) -> Result<PathBuf, String> {
        let Some(scratch) = &self.scratch else {
            return Ok(state.data_dir().join(rel));
        };
        let local = scratch.join("registers").join(rel);
        state
            .storage()
            .get_file_blocking(rel, &local)
            .map_err(|e| format!("cannot fetch the register {rel}: {e}"))?;
        Ok(local)
    }
}

impl Drop for JobFiles {
    /// Removes the scratch folder (object store only): the products are in the store.
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Deletes a job's products folder `rel` wherever they are.
pub(crate) fn remove_products(state: &AppState, rel: &str) {
    let _ = std::fs::remove_dir_all(state.data_dir().join(rel));
    let storage = state.storage();
    if !storage.is_local() {
        if let Err(e) = storage.delete_prefix_blocking(rel) {
            eprintln!("besikta: {e}");
        }
    }
}

/// After a register was stored at `rel` in the data folder: with an object store, copies
/// it there too (workers on other machines read it from there; the API keeps its copy).
pub(crate) async fn publish_register(state: &AppState, rel: &str) -> Result<(), String> {
    let storage = state.storage();
    if storage.is_local() {
        return Ok(());
    }
    storage
        .put_file(rel, &state.data_dir().join(rel))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Deletes a deleted flight's objects (its photos and products) from the object store.
pub(crate) async fn remove_flight(state: &AppState, flight_id: i64) -> Result<(), String> {
    let storage = state.storage();
    if storage.is_local() {
        return Ok(());
    }
    storage
        .delete_prefix(&format!("flights/{flight_id}"))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A product file of a job (`<output_dir>/<name>`), read whole; `None` when missing.
pub(crate) async fn product(
    state: &AppState,
    output_dir: &str,
    name: &str,
) -> Result<Option<Vec<u8>>, String> {
    let key = format!("{output_dir}/{name}");
    match state.storage().get_bytes(&key).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// A photo as a local file for decoding (crops): in place in the data folder, or fetched
/// from the object store into a temporary file that is removed when the guard drops.
pub(crate) async fn local_photo(state: &AppState, rel: &str) -> Result<LocalPhoto, String> {
    let storage = state.storage();
    if storage.is_local() {
        return Ok(LocalPhoto {
            path: state.data_dir().join(rel),
            temporary: false,
        });
    }
    let dir = state.data_dir().join("scratch");
    let name = format!(
        "crop-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let path = dir.join(name);
    storage
        .get_file(rel, &path)
        .await
        .map_err(|e| e.to_string())?;
    Ok(LocalPhoto {
        path,
        temporary: true,
    })
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A photo on local disk; a temporary copy is deleted on drop.
pub(crate) struct LocalPhoto {
    pub path: PathBuf,
    temporary: bool,
}

impl Drop for LocalPhoto {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
