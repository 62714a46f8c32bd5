//! Photo crops of findings: a bounded pool for the full-photo decodes (at most N at once,
//! so memory stays bounded by N decoded photos) and a byte-bounded LRU of finished crop
//! JPEGs, keyed by everything the crop's bytes depend on (so the key is also a strong ETag).

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Bytes of finished crops kept in memory by the process-wide pool.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// What a crop's bytes depend on. Two equal keys give byte-identical crops: the photo by
/// its content hash, the place and outline of the defect, the crop settings.
pub struct CropKey<'a> {
    pub org_id: i64,
    pub finding_id: i64,
    pub photo_sha256: &'a str,
    pub bbox: [f64; 4],
    pub outline: &'a [[f64; 2]],
    pub cfg: &'a crate::findings::CropConfig,
}

impl CropKey<'_> {
    /// Hex digest of the key; used as the cache key and (quoted) as the ETag.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"besikta-crop-v1");
        h.update(self.org_id.to_le_bytes());
        h.update(self.finding_id.to_le_bytes());
        self.hash_content(&mut h);
        hex20(h)
    }

    /// Hex digest of what the crop's bytes depend on (photo content, place, outline,
    /// settings), without the organisation and the finding's database id, which a job does
    /// not know yet: the name of the crop made at processing time (`precrops`).
    pub fn content_digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"besikta-crop-content-v1");
        self.hash_content(&mut h);
        hex20(h)
    }

    fn hash_content(&self, h: &mut Sha256) {
        h.update((self.photo_sha256.len() as u64).to_le_bytes());
        h.update(self.photo_sha256.as_bytes());
        for v in self.bbox {
            h.update(v.to_bits().to_le_bytes());
        }
        h.update((self.outline.len() as u64).to_le_bytes());
        for p in self.outline {
            h.update(p[0].to_bits().to_le_bytes());
            h.update(p[1].to_bits().to_le_bytes());
        }
        h.update(self.cfg.margin.to_bits().to_le_bytes());
        h.update(self.cfg.min_side.to_le_bytes());
        h.update(self.cfg.max_output_side.to_le_bytes());
        h.update(self.cfg.max_photo_pixels.to_le_bytes());
    }
}

/// The first 20 bytes of a digest in hex.
fn hex20(h: Sha256) -> String {
    h.finalize()
        .iter()
        .take(20)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The crop pool's size (`besikta serve --crop-permits`, `--crop-cache-mb`); a value left
/// `None` comes from the environment, else the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CropSettings {
    /// Crops made (photos decoded) at once; default: one per core.
    pub permits: Option<usize>,
    /// Megabytes of finished crops kept in memory; 0: none; default: 64.
    pub cache_mb: Option<usize>,
}

/// Where a served crop came from (the `X-Besikta-Crop` header and the `/metrics` counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropSource {
    /// The in-memory cache of finished crops.
    Cache,
    /// The crop made when the flight was processed, stored with the job's products.
    Precomputed,
    /// Made now from the photo (a full decode in the pool).
    Decoded,
}

impl CropSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CropSource::Cache => "cache",
            CropSource::Precomputed => "precomputed",
            CropSource::Decoded => "decoded",
        }
    }
}

/// The pool's counters since the process started, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropCounters {
    /// Crop requests answered from the in-memory cache.
    pub hits: u64,
    /// Crop requests not in the cache (then served precomputed or decoded).
    pub misses: u64,
    /// Misses answered with the crop stored at processing time.
    pub precomputed: u64,
    /// Crops made by decoding the photo.
    pub decodes: u64,
    /// Bytes of crops in the cache now.
    pub cached_bytes: u64,
}

/// A whole number from the environment; a set but unreadable value is reported and ignored.
fn env_number(name: &str) -> Option<usize> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("besikta: {name}={v:?} is not a whole number; using the default (unset it or give e.g. {name}=2)");
            None
        }
    }
}

/// True when an `If-None-Match` header value names `etag` (or is `*`).
pub fn none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t == etag
    })
}

#[derive(Default)]
struct Lru {
    /// key -> (bytes, last use tick)
    entries: HashMap<String, (Arc<Vec<u8>>, u64)>,
    /// last use tick -> key, oldest first
    order: BTreeMap<u64, String>,
    bytes: usize,
    tick: u64,
}

impl Lru {
    fn get(&mut self, key: &str) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let tick = self.tick;
        let (bytes, used) = self.entries.get_mut(key)?;
        self.order.remove(used);
        *used = tick;
        self.order.insert(tick, key.to_string());
        Some(bytes.clone())
    }

    fn put(&mut self, key: String, value: Arc<Vec<u8>>, capacity: usize) {
        if value.len() > capacity {
            return;
        }
        if let Some((old, used)) = self.entries.remove(&key) {
            self.order.remove(&used);
            self.bytes -= old.len();
        }
        while self.bytes + value.len() > capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = self.entries.remove(&oldest) {
                self.bytes -= old.len();
            }
        }
        self.tick += 1;
        self.bytes += value.len();
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, (value, self.tick));
    }
}

/// Counters of the pool, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropStats {
    pub hits: u64,
    pub decodes: u64,
    pub max_running: usize,
    pub cached_bytes: usize,
}

/// The crop pool: at most `permits` crops computed at once, finished ones cached.
pub struct CropPool {
    permits: Semaphore,
    max_permits: usize,
    capacity: usize,
    cache: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
    precomputed: AtomicU64,
    decodes: AtomicU64,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl CropPool {
    pub fn new(permits: usize, cache_bytes: usize) -> CropPool {
        CropPool {
            permits: Semaphore::new(permits.max(1)),
            max_permits: permits.max(1),
            capacity: cache_bytes,
            cache: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            precomputed: AtomicU64::new(0),
            decodes: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
        }
    }

    /// The pool of `settings`: each value not given there comes from the environment
    /// (`BESIKTA_CROP_PERMITS`: crops made at once; `BESIKTA_CROP_CACHE_MB`, 0: no cache,
    /// each crop is made again), else one permit per core and [`CACHE_BYTES`] of crops.
    pub fn from_settings(settings: &CropSettings) -> CropPool {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let permits = settings
            .permits
            .or_else(|| env_number("BESIKTA_CROP_PERMITS"))
            .unwrap_or(cores)
            .max(1);
        let cache = settings
            .cache_mb
            .or_else(|| env_number("BESIKTA_CROP_CACHE_MB"))
            .map_or(CACHE_BYTES, |mb| mb << 20);
        CropPool::new(permits, cache)
    }

    /// Crops made at once.
    pub fn permits(&self) -> usize {
        self.max_permits
    }

    /// Bytes of finished crops the cache may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    #[cfg(test)]
    pub fn stats(&self) -> CropStats {
        CropStats {
            hits: self.hits.load(Ordering::Relaxed),
            decodes: self.decodes.load(Ordering::Relaxed),
            max_running: self.max_running.load(Ordering::Relaxed),
            cached_bytes: self.lock().bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves a consistent map (every step completes).
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters since the process started.
    pub fn counters(&self) -> CropCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CropCounters {
            hits: get(&self.hits),
            misses: get(&self.misses),
            precomputed: get(&self.precomputed),
            decodes: get(&self.decodes),
            cached_bytes: self.lock().bytes as u64,
        }
    }

    /// The cached crop of `key`, if any; one request's look-up, counted as a hit or a miss.
    pub fn cached(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let hit = self.lock().get(key);
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Keeps a crop stored at processing time in the cache (counted as served precomputed).
    pub fn keep_precomputed(&self, key: &str, bytes: Vec<u8>) -> Arc<Vec<u8>> {
        self.precomputed.fetch_add(1, Ordering::Relaxed);
        let bytes = Arc::new(bytes);
        self.lock()
            .put(key.to_string(), bytes.clone(), self.capacity);
        bytes
    }

    /// The crop of `key`: from the cache, or made by `make` on a blocking thread once one
    /// of the pool's permits is free. Counts decodes, not look-ups (see [`CropPool::cached`]).
    pub async fn get_or_make<F>(
        &self,
        key: &str,
        make: F,
    ) -> Result<(Arc<Vec<u8>>, CropSource), String>
    where
        F: FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
    {
        // The request's look-up ([`CropPool::cached`]) counted the miss already.
        if let Some(b) = self.lock().get(key) {
            return Ok((b, CropSource::Cache));
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| format!("the crop pool is closed: {e}"))?;
        // Another request may have made it while this one waited.
        if let Some(b) = self.lock().get(key) {
            return Ok((b, CropSource::Cache));
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.decodes.fetch_add(1, Ordering::Relaxed);
        let made = tokio::task::spawn_blocking(make).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        let bytes = Arc::new(made.map_err(|e| format!("the crop crashed: {e}"))??);
        self.lock()
            .put(key.to_string(), bytes.clone(), self.capacity);
        Ok((bytes, CropSource::Decoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{crop_finding, CropConfig};

    fn photo() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/brighton/DJI_0018.JPG")
    }

    fn key(cfg: &CropConfig, x: f64, sha: &str) -> String {
        CropKey {
            org_id: 1,
            finding_id: 7,
            photo_sha256: sha,
            bbox: [x, 500.0, x + 200.0, 600.0],
            outline: &[],
            cfg,
        }
        .digest()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn second_fetch_is_the_same_bytes_from_the_cache() {
        let pool = CropPool::new(2, CACHE_BYTES);
        let cfg = CropConfig::default();
        let k = key(&cfg, 500.0, "abc");
        let make = || {
            let cfg = CropConfig::default();
            move || crop_finding(&photo(), [500.0, 500.0, 700.0, 600.0], &[], &cfg)
        };
        let (a, from) = pool.get_or_make(&k, make()).await.unwrap();
        assert_eq!(from, CropSource::Decoded);
        let (b, from) = pool.get_or_make(&k, make()).await.unwrap();
        assert_eq!(from, CropSource::Cache);
        assert_eq!(a, b);
        assert!(image::load_from_memory(&b).is_ok());
        let s = pool.stats();
        assert_eq!(s.decodes, 1, "{s:?}");
        assert_eq!(s.cached_bytes, a.len());
        // Another photo content or another place is another key: made again.
        assert_ne!(k, key(&cfg, 500.0, "abd"));
        assert_ne!(k, key(&cfg, 501.0, "abc"));
        let (c, _) = pool
            .get_or_make(&key(&cfg, 500.0, "abd"), make())
            .await
            .unwrap();
        assert_eq!(pool.stats().decodes, 2);
        assert_eq!(a, c, "same photo bytes on disk here, so the same crop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_crops_never_exceed_the_permits() {
        let pool = Arc::new(CropPool::new(2, CACHE_BYTES));
        let cfg = CropConfig::default();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let pool = pool.clone();
            let k = key(&cfg, 100.0 * i as f64, "abc");
            tasks.push(tokio::spawn(async move {
                let x = 100.0 * i as f64;
                pool.get_or_make(&k, move || {
                    crop_finding(
                        &photo(),
                        [x, 500.0, x + 200.0, 600.0],
                        &[],
                        &CropConfig::default(),
                    )
                })
                .await
                .map(|(b, _)| b.len())
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().unwrap() > 1000);
        }
        let s = pool.stats();
        assert_eq!(s.decodes, 8);
        assert_eq!(s.max_running, 2, "8 crops at once on 2 permits: {s:?}");
    }

    #[test]
    fn lru_is_bounded_by_bytes_and_drops_the_oldest() {
        let mut l = Lru::default();
        l.put("a".into(), Arc::new(vec![0; 40]), 100);
        l.put("b".into(), Arc::new(vec![0; 40]), 100);
        assert!(l.get("a").is_some()); // a is now newer than b
        l.put("c".into(), Arc::new(vec![0; 40]), 100);
        assert!(l.get("b").is_none(), "the least recently used went");
        assert!(l.get("a").is_some() && l.get("c").is_some());
        assert_eq!(l.bytes, 80);
        l.put("big".into(), Arc::new(vec![0; 101]), 100);
        assert!(l.get("big").is_none(), "larger than the cache: not kept");
        assert_eq!(l.bytes, 80);
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(none_match("\"x\"", "\"x\""));
        assert!(none_match("\"y\", W/\"x\"", "\"x\""));
        assert!(none_match("*", "\"x\""));
        assert!(!none_match("\"y\"", "\"x\""));
    }
}
