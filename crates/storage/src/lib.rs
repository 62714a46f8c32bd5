//! Where photos and job products live: the local data folder (the default, today's layout)
//! or an S3-compatible object store (`s3://bucket/prefix`), behind one small API of
//! blocking calls (worker threads) and async calls (HTTP handlers).
//!
//! Objects are named by the same relative paths the database keeps
//! (`flights/<id>/photos/<name>`, `flights/<id>/out-<job>-<attempt>/findings.geojson`), so
//! a flight's files sit in the same places in a folder and under a bucket prefix. Files
//! move in both directions as streams through a local file: a photo is never held whole
//! in memory (uploads go in parts of [`PART_BYTES`], downloads are written as they
//! arrive).
//!
//! The S3 store is configured from the usual AWS environment variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP` for a plain-HTTP test
//! server). No `object_store` type appears in this crate's API.

#[cfg(feature = "test-support")]
pub mod testing;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, RetryConfig, WriteMultipart};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Size of one part of a multipart upload (S3 needs at least 5 MiB but for the last).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// Parts of one upload in flight at once: memory per upload is about this times
/// [`PART_BYTES`].
const PARTS_IN_FLIGHT: usize = 2;

/// A storage operation that failed, naming the storage and the object.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object storage {url}: {key} does not exist")]
    NotFound { url: String, key: String },
    #[error("object storage {url}: cannot {action} {key}: {message}; check that the storage is reachable and the AWS_* settings (endpoint, region, credentials) are right")]
    Remote {
        url: String,
        action: &'static str,
        key: String,
        message: String,
    },
    #[error("{what} {path}: {source}")]
    Local {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage URL {url}: {reason} (use s3://bucket/prefix, or a folder)")]
    Url { url: String, reason: String },
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

fn local_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.display().to_string();
    move |source| StorageError::Local { what, path, source }
}

/// The storage of one process; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// Files under this folder (the data folder by default).
    Local(PathBuf),
    Remote(Arc<Remote>),
}

struct Remote {
    store: Arc<dyn ObjectStore>,
    /// Key prefix inside the bucket, without slashes at either end (may be empty).
    prefix: String,
    /// `s3://bucket/prefix` as given (it holds no credentials).
    url: String,
    /// The storage's own runtime: its HTTP client runs here whatever the caller is (a
    /// worker thread or a handler on the server's runtime).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio forbids inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.url())
    }
}

impl Storage {
    /// The storage `url` names: `s3://bucket[/prefix]` (configured from the AWS
    /// environment variables), `file:///folder` or a folder path; none: `data_dir`.
    pub fn open(url: Option<&str>, data_dir: &Path) -> Result<Storage, StorageError> {
        Storage::open_with(url, data_dir, std::env::vars())
    }

    /// [`Storage::open`] with the `AWS_*` settings taken from `vars` instead of the process
    /// environment (variables not starting with `AWS_` are ignored).
    pub fn open_with(
        url: Option<&str>,
        data_dir: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Storage, StorageError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Storage::local(data_dir));
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StorageError::Url {
                    url: url.into(),
                    reason: "no bucket name".into(),
                });
            }
            // A storage that does not answer is told within seconds, not after minutes
            // of retries. (Client options first: the AWS_* settings below add to them.)
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_retry(RetryConfig {
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(20),
                    ..RetryConfig::default()
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(5))
                        .with_timeout(Duration::from_secs(120)),
                );
            for (key, value) in vars {
                if !key.starts_with("AWS_") {
                    continue;
                }
                if let Ok(k) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    builder = builder.with_config(k, value);
                }
            }
            let store = builder.build().map_err(|e| StorageError::Url {
                url: url.into(),
                reason: e.to_string(),
            })?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("besikta-storage")
                .enable_all()
                .build()
                .map_err(local_error(
                    "cannot start the storage runtime for",
                    Path::new(url),
                ))?;
            return Ok(Storage {
                kind: Kind::Remote(Arc::new(Remote {
                    store: Arc::new(store),
                    prefix: prefix.trim_matches('/').to_string(),
                    url: url.to_string(),
                    handle: runtime.handle().clone(),
                    runtime: Some(runtime),
                })),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Storage::local(path));
        }
        if url.contains("://") {
            return Err(StorageError::Url {
                url: url.into(),
                reason: "unknown scheme".into(),
            });
        }
        Ok(Storage::local(url))
    }

    /// Files in a folder.
    pub fn local(dir: impl Into<PathBuf>) -> Storage {
        Storage {
            kind: Kind::Local(dir.into()),
        }
    }

    /// Where the storage is, for messages: `s3://bucket/prefix` or the folder.
    pub fn url(&self) -> String {
        match &self.kind {
            Kind::Local(dir) => dir.display().to_string(),
            Kind::Remote(r) => r.url.clone(),
        }
    }

    /// The folder when the storage is local: its files can be read in place.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Local(dir) => Some(dir),
            Kind::Remote(_) => None,
        }
    }

    pub fn is_local(&self) -> bool {
        self.local_dir().is_some()
    }

    // ---- async (for handlers on any tokio runtime) ----

    /// Copies the file `src` to the object `key`, streaming (multipart above one part).
    pub async fn put_file(&self, key: &str, src: &Path) -> Result<u64, StorageError> {
        match &self.kind {
            Kind::Local(dir) => copy_local(src, &dir.join(key)),
            Kind::Remote(r) => {
                let r2 = r.clone();
                let (key, src) = (key.to_string(), src.to_path_buf());
                r.spawn(async move { r2.put_file(&key, &src).await }).await
            }
        }
    }

    /// Copies the object `key` into the file `dest` (written beside and renamed, so `dest`
    /// is whole or absent), streaming.
    pub async fn get_file(&self, key: &str, dest: &Path) -> Result<u64, StorageError> {
        match &self.kind {
            Kind::Local(dir) => copy_local(&dir.join(key), dest),
            Kind::Remote(r) => {
                let r2 = r.clone();
                let (key, dest) = (key.to_string(), dest.to_path_buf());
                r.spawn(async move { r2.get_file(&key, &dest).await }).await
            }
        }
    }

    /// The whole object `key`: for small objects only (products such as findings.geojson).
    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        match &self.kind {
            Kind::Local(dir) => {
                let path = dir.join(key);
                match std::fs::read(&path) {
                    Ok(b) => Ok(b),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err(StorageError::NotFound {
                            url: self.url(),
                            key: key.into(),
                        })
                    }
                    Err(e) => Err(local_error("cannot read", &path)(e)),
                }
            }
            Kind::Remote(r) => {
                let r2 = r.clone();
                let key = key.to_string();
                r.spawn(async move { r2.get_bytes(&key).await }).await
            }
        }
    }

    /// Whether the object `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match &self.kind {
            Kind::Local(dir) => Ok(dir.join(key).is_file()),
            Kind::Remote(r) => {
                let r2 = r.clone();
                let key = key.to_string();
                r.spawn(async move { r2.exists(&key).await }).await
            }
        }
    }

    /// Deletes every object under `prefix` (a "folder"); missing ones are no error.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        match &self.kind {
            Kind::Local(dir) => delete_local(&dir.join(prefix)),
            Kind::Remote(r) => {
                let r2 = r.clone();
                let prefix = prefix.to_string();
                r.spawn(async move { r2.delete_prefix(&prefix).await })
                    .await
            }
        }
    }

    /// Checks that the storage answers: the folder exists, or the bucket can be listed
    /// under the prefix. The error names the storage.
    pub async fn health(&self) -> Result<(), StorageError> {
        match &self.kind {
            Kind::Local(dir) => local_health(dir),
            Kind::Remote(r) => {
                let r2 = r.clone();
                r.spawn(async move { r2.health().await }).await
            }
        }
    }

    // ---- blocking (for worker threads; safe on an async runtime's thread too) ----

    /// [`Storage::put_file`] for threads outside any async runtime.
    pub fn put_file_blocking(&self, key: &str, src: &Path) -> Result<u64, StorageError> {
        match &self.kind {
            Kind::Local(dir) => copy_local(src, &dir.join(key)),
            Kind::Remote(r) => r.block(r.put_file(key, src)),
        }
    }

    /// [`Storage::get_file`] for threads outside any async runtime.
    pub fn get_file_blocking(&self, key: &str, dest: &Path) -> Result<u64, StorageError> {
        match &self.kind {
            Kind::Local(dir) => copy_local(&dir.join(key), dest),
            Kind::Remote(r) => r.block(r.get_file(key, dest)),
        }
    }

    /// [`Storage::exists`] for threads outside any async runtime.
    pub fn exists_blocking(&self, key: &str) -> Result<bool, StorageError> {
        match &self.kind {
            Kind::Local(dir) => Ok(dir.join(key).is_file()),
            Kind::Remote(r) => r.block(r.exists(key)),
        }
    }

    /// [`Storage::delete_prefix`] for threads outside any async runtime.
    pub fn delete_prefix_blocking(&self, prefix: &str) -> Result<usize, StorageError> {
        match &self.kind {
            Kind::Local(dir) => delete_local(&dir.join(prefix)),
            Kind::Remote(r) => r.block(r.delete_prefix(prefix)),
        }
    }

    /// [`Storage::health`] for threads outside any async runtime: the storage health
    /// check of `besikta serve`/`worker` at start (and of `/healthz`).
    pub fn health_blocking(&self) -> Result<(), StorageError> {
        match &self.kind {
            Kind::Local(dir) => local_health(dir),
            Kind::Remote(r) => r.block(r.health()),
        }
    }

    /// Copies every file under the folder `dir` to objects under `prefix` (same relative
    /// names); returns the number of files.
    pub fn put_dir_blocking(&self, prefix: &str, dir: &Path) -> Result<usize, StorageError> {
        let mut files = Vec::new();
        list_files(dir, dir, &mut files)?;
        for rel in &files {
            let key = format!("{}/{}", prefix.trim_end_matches('/'), rel);
            self.put_file_blocking(&key, &dir.join(rel))?;
        }
        Ok(files.len())
    }
}

fn local_health(dir: &Path) -> Result<(), StorageError> {
    std::fs::read_dir(dir)
        .map(|_| ())
        .map_err(local_error("cannot read the storage folder", dir))
}

/// Relative paths (with `/`) of the files under `dir`.
fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), StorageError> {
    for entry in std::fs::read_dir(dir).map_err(local_error("cannot list", dir))? {
        let entry = entry.map_err(local_error("cannot list", dir))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(local_error("cannot read", &path))?;
        if kind.is_dir() {
            list_files(root, &path, out)?;
        } else if kind.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    Ok(())
}

fn copy_local(src: &Path, dest: &Path) -> Result<u64, StorageError> {
    if src == dest {
        return std::fs::metadata(src)
            .map(|m| m.len())
            .map_err(local_error("cannot read", src));
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(local_error("cannot create", parent))?;
    }
    let tmp = partial_path(dest);
    let n = std::fs::copy(src, &tmp).map_err(local_error("cannot copy", src))?;
    std::fs::rename(&tmp, dest).map_err(local_error("cannot write", dest))?;
    Ok(n)
}

fn delete_local(path: &Path) -> Result<usize, StorageError> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(1),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(local_error("cannot delete", path)(e)),
    }
}

/// `dest` with `.partial` appended: where a copy is written before it is renamed.
fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

impl Remote {
    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Waits for `fut` on the storage's runtime from a thread; called on an async
    /// runtime's thread (where blocking is forbidden) it waits on a helper thread.
    fn block<T: Send>(
        &self,
        fut: impl Future<Output = Result<T, StorageError>> + Send,
    ) -> Result<T, StorageError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.handle.block_on(fut);
        }
        std::thread::scope(|s| {
            s.spawn(|| self.handle.block_on(fut))
                .join()
                .unwrap_or_else(|_| {
                    Err(StorageError::Remote {
                        url: self.url.clone(),
                        action: "finish an operation on",
                        key: String::new(),
                        message: "the storage thread crashed".into(),
                    })
                })
        })
    }

    /// Runs `fut` on the storage's runtime and waits for it from any context.
    async fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StorageError>> + Send + 'static,
    ) -> Result<T, StorageError> {
        self.handle().spawn(fut).await.unwrap_or_else(|e| {
            Err(StorageError::Remote {
                url: self.url.clone(),
                action: "finish an operation on",
                key: String::new(),
                message: e.to_string(),
            })
        })
    }

    fn path(&self, key: &str) -> ObjectPath {
        let key = key.trim_matches('/');
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn error(&self, action: &'static str, key: &str, e: object_store::Error) -> StorageError {
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound {
                url: self.url.clone(),
                key: key.into(),
            },
            e => StorageError::Remote {
                url: self.url.clone(),
                action,
                key: key.into(),
                message: e.to_string(),
            },
        }
    }

    async fn put_file(&self, key: &str, src: &Path) -> Result<u64, StorageError> {
        let path = self.path(key);
        let mut file = tokio::fs::File::open(src)
            .await
            .map_err(local_error("cannot read", src))?;
        let size = file
            .metadata()
            .await
            .map_err(local_error("cannot read", src))?
            .len();
        if size <= PART_BYTES as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf)
                .await
                .map_err(local_error("cannot read", src))?;
            self.store
                .put(&path, buf.into())
                .await
                .map_err(|e| self.error("write", key, e))?;
            return Ok(size);
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.error("start an upload of", key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; 1024 * 1024];
        let mut total = 0u64;
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(local_error("cannot read", src)(e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                return Err(self.error("write", key, e));
            }
            writer.write(&buf[..n]);
            total += n as u64;
        }
        writer
            .finish()
            .await
            .map_err(|e| self.error("write", key, e))?;
        Ok(total)
    }

    async fn get_file(&self, key: &str, dest: &Path) -> Result<u64, StorageError> {
        let result = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| self.error("read", key, e))?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(local_error("cannot create", parent))?;
        }
        let tmp = partial_path(dest);
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(local_error("cannot write", &tmp))?;
        let mut stream = result.into_stream();
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(self.error("read", key, e));
                }
            };
            file.write_all(&chunk)
                .await
                .map_err(local_error("cannot write", &tmp))?;
            total += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(local_error("cannot write", &tmp))?;
        drop(file);
        tokio::fs::rename(&tmp, dest)
            .await
            .map_err(local_error("cannot write", dest))?;
        Ok(total)
    }

    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let result = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| self.error("read", key, e))?;
        let bytes = result
            .bytes()
            .await
            .map_err(|e| self.error("read", key, e))?;
        Ok(bytes.to_vec())
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error("look up", key, e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let base = self.path(prefix);
        let mut names = Vec::new();
        let mut listing = self.store.list(Some(&base));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.error("list", prefix, e))?;
            names.push(meta.location);
        }
        for name in &names {
            match self.store.delete(name).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error("delete", name.as_ref(), e)),
            }
        }
        Ok(names.len())
    }

    async fn health(&self) -> Result<(), StorageError> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        self.store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map(|_| ())
            .map_err(|e| self.error("list", "the bucket", e))
    }
}
