//! The Besikta web service: one process holding an organisation-separated SQLite database
//! and the photos in a data folder, serving resumable uploads, a job queue run by a bounded
//! pool of worker threads, the findings API, exports and the bundled offline web pages.
//!
//! Layout of the data folder:
//! `besikta.db` (SQLite, WAL), `uploads/` (tus part files), `flights/<id>/photos/`
//! (stored photos), `flights/<id>/out-<job>-<attempt>/` (a job's products; the flight row
//! names the current one), `orgs/<id>/registers/` (asset registers).

mod audit;
pub mod auth;
mod crops;
pub mod error;
mod findings;
mod findings_page;
mod flights;
mod jobs;
mod listen;
mod metrics;
mod mosaic;
mod objects;
mod openapi;
mod openapi_errors;
mod ops;
mod orgmodel_check;
mod orgmodels;
mod orgreference;
mod orgsettings;
mod precrops;
mod quota;
mod registermap;
mod registers;
mod retention;
mod review;
mod security;
pub mod training;
mod tus_headers;
mod units;
pub use units::DEFAULT_UNIT_PHOTOS;
mod uploads;
mod views;
mod web;
mod workorders;

pub use auth::{allows, Right};
pub use crops::CropSettings;
pub use error::{ApiError, ServerError};
pub use jobs::Workers;
pub use listen::{serve_on, NetLimits};
pub use metrics::{start_health_checks, Metrics};
pub use ops::hostname;
pub use quota::Quota;
pub use retention::sweep as sweep_retention;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use besikta_store::{Role, SqliteStore, Store};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Size limits that protect the server from one bad upload.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest photo, bytes.
    pub max_photo_bytes: u64,
    /// Largest photo, pixels (width x height): a decompression bomb guard.
    pub max_photo_pixels: u64,
    /// Largest multipart request (a batch of small photos), bytes.
    pub max_multipart_bytes: usize,
    /// Largest register upload, bytes.
    pub max_register_bytes: usize,
    /// Seconds a tus upload may stay unfinished before it and its bytes are removed (tus
    /// expiration extension).
    pub upload_lifetime_secs: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_photo_bytes: 80 * 1024 * 1024,
            max_photo_pixels: 120_000_000,
            max_multipart_bytes: 256 * 1024 * 1024,
            max_register_bytes: 1024 * 1024 * 1024,
            upload_lifetime_secs: 7 * 24 * 3600,
        }
    }
}

/// Everything the service needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// Model manifests for the pipeline.
    pub models_dir: PathBuf,
    /// Optional elevation model for georeferencing.
    pub dem: Option<PathBuf>,
    /// Jobs processed at the same time by this process (0 in `serve`: none, workers of
    /// their own run them).
    pub workers: usize,
    /// ONNX Runtime threads of each model session of a job (the job runs one session per
    /// core, `EngineConfig::default`).
    pub threads_per_job: usize,
    /// Where the jobs' models run (`--device`).
    pub device: besikta_infer::Device,
    pub limits: Limits,
    /// Background map tiles (`https://.../{z}/{x}/{y}.png`); none: the map works offline.
    pub tile_url: Option<String>,
    /// The database (`postgres://user:password@host:port/db`, or a SQLite file); none:
    /// SQLite in `besikta.db` of the data folder.
    pub database: Option<String>,
    /// Seconds a job stays leased to its worker without a heartbeat; a worker that dies
    /// loses its job to another after this long.
    pub lease_secs: i64,
    /// Where photos and job products live: `s3://bucket/prefix` (configured from the
    /// AWS_* environment variables) or a folder; none: the data folder.
    pub storage: Option<String>,
    /// Time limits and the connection limit of the HTTP listener.
    pub net: NetLimits,
    /// On SIGTERM or Ctrl-C, seconds the jobs in hand may take to finish; those still
    /// running then go back to the queue for another worker (or the next start).
    pub shutdown_secs: u64,
    /// A bearer token (from `--metrics-token-file`) that shows `/metrics` of the whole
    /// service: the queue of every organisation and the workers' heartbeats.
    pub metrics_token: Option<String>,
    /// The photo crop pool's size (`--crop-permits`, `--crop-cache-mb`).
    pub crops: CropSettings,
    /// The most photo bytes and photos one organisation may keep (`--quota-photo-gb`,
    /// `--quota-photos`); none by default.
    pub quota: Quota,
    /// Photos per batch unit of a job (`--unit-photos`): a larger flight is inferred in
    /// units any worker may take (issue 15); one this size or smaller stays one unit.
    pub unit_photos: usize,
    /// Days after its job finished that a flight's original photos are kept
    /// (`--retain-photos-days`); none: kept until the flight is deleted.
    pub retain_photos_days: Option<u32>,
    /// Ground size of the flight's orthomosaic, cm (`--mosaic-gsd-cm`): each job also writes
    /// `mosaic.tif` (photos aligned again: about the alignment's time once more), shown on
    /// the web map as tiles; none (the default): no mosaic.
    pub mosaic_gsd_cm: Option<f64>,
    /// Called between a job's stages and after each photo it infers, to give memory the job
    /// freed back to the system (the binary passes glibc's `malloc_trim`; the server itself
    /// knows no allocator). Does nothing by default.
    pub release_memory: fn(),
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>, models_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            models_dir: models_dir.into(),
            dem: None,
            workers: 1,
            threads_per_job: 1,
            device: besikta_infer::Device::Cpu,
            limits: Limits::default(),
            tile_url: None,
            database: None,
            lease_secs: 600,
            storage: None,
            net: NetLimits::default(),
            shutdown_secs: 60,
            metrics_token: None,
            crops: CropSettings::default(),
            quota: Quota::default(),
            unit_photos: units::DEFAULT_UNIT_PHOTOS,
            retain_photos_days: None,
            mosaic_gsd_cm: None,
            release_memory: || {},
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
    storage: besikta_storage::Storage,
    config: ServerConfig,
    metrics: Metrics,
    /// Photo crops: the decode pool and the cache of finished crops.
    crops: crops::CropPool,
    uploads: uploads::ActiveUploads,
    jobs: jobs::Signal,
    /// The Content-Security-Policy header, fixed at start.
    csp: axum::http::HeaderValue,
}

/// Shared state of the handlers and workers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("data_dir", &self.inner.config.data_dir)
            .finish()
    }
}

fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("besikta.db")
}

/// Opens the store `database` names (see [`besikta_store::open_url`]), or SQLite in
/// `besikta.db` of the data folder when it is `None`; brings its schema up to date.
pub fn open_store(data_dir: &Path, database: Option<&str>) -> Result<Arc<dyn Store>, ServerError> {
    Ok(match database {
        Some(url) => besikta_store::open_url(url)?,
        None => Arc::new(SqliteStore::open(&db_path(data_dir))?),
    })
}

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::DataDir {
        path: path.display().to_string(),
        source,
    }
}

impl AppState {
    /// Opens the data folder (creating it), puts back in the queue every job a previous
    /// process left running and stores every upload whose bytes had all arrived: this is
    /// how a killed server resumes its work.
    pub fn open(config: ServerConfig) -> Result<AppState, ServerError> {
        for sub in ["", "uploads", "flights", "orgs"] {
            let dir = config.data_dir.join(sub);
            std::fs::create_dir_all(&dir).map_err(data_dir_error(&dir))?;
        }
        let store = open_store(&config.data_dir, config.database.as_deref())?;
        // Jobs left running by this process's predecessor go back to the queue. Without
        // workers of its own (`--workers 0`) the running jobs are worker processes' and
        // stay theirs while their leases hold.
        let requeued = if config.workers == 0 {
            store.requeue_expired()?
        } else {
            store.requeue_running()?
        };
        if requeued > 0 {
            eprintln!("besikta: {requeued} interrupted job(s) queued again");
        }
        jobs::remove_orphan_outputs(store.as_ref(), &config.data_dir);
        let state = AppState::with_store(config, store)?;
        let finished = uploads::finish_interrupted(&state);
        if finished > 0 {
            eprintln!("besikta: {finished} upload(s) interrupted after their last byte finished");
        }
        Ok(state)
    }

    /// Opens the data folder and database for a worker process (`besikta worker`): no
    /// start-up recovery, since a server and other workers share the queue and the folder
    /// (a dead worker's job comes back when its lease ends).
    pub fn open_worker(config: ServerConfig) -> Result<AppState, ServerError> {
        for sub in ["", "flights"] {
            let dir = config.data_dir.join(sub);
            std::fs::create_dir_all(&dir).map_err(data_dir_error(&dir))?;
        }
        let store = open_store(&config.data_dir, config.database.as_deref())?;
        AppState::with_store(config, store)
    }

    fn with_store(config: ServerConfig, store: Arc<dyn Store>) -> Result<AppState, ServerError> {
        if let Some(url) = &config.tile_url {
            if security::tile_origin(url).is_none() {
                return Err(ServerError::TileUrl { url: url.clone() });
            }
        }
        let csp = security::content_security_policy(
            config.tile_url.as_deref(),
            &web::inline_script_hashes(),
        );
        let csp = axum::http::HeaderValue::from_str(&csp).map_err(|_| ServerError::TileUrl {
            url: config.tile_url.clone().unwrap_or_default(),
        })?;
        // An object store that does not answer stops the start, naming its URL.
        let storage = besikta_storage::Storage::open(config.storage.as_deref(), &config.data_dir)?;
        storage.health_blocking()?;
        let crops = crops::CropPool::from_settings(&config.crops);
        let state = AppState {
            inner: Arc::new(Inner {
                store,
                storage,
                config,
                metrics: Metrics::default(),
                crops,
                uploads: uploads::ActiveUploads::default(),
                jobs: jobs::Signal::default(),
                csp,
            }),
        };
        state.metrics().started.get_or_init(std::time::Instant::now);
        Ok(state)
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// Where photos and products live (the data folder, or an object store).
    pub fn storage(&self) -> &besikta_storage::Storage {
        &self.inner.storage
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The photo crop pool and cache.
    pub(crate) fn crops(&self) -> &crops::CropPool {
        &self.inner.crops
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }
}

/// All routes. Workers are separate ([`Workers::start`]) so tests can drive the API alone.
pub fn app(state: AppState) -> Router {
    let limits = state.config().limits.clone();
    let api = Router::new()
        .route("/openapi.json", get(openapi::openapi))
        .route("/me", get(flights::me))
        .route("/flights", post(flights::create).get(flights::list))
        .route(
            "/flights/{id}",
            get(flights::get_one).delete(flights::delete),
        )
        .route("/audit", get(audit::list))
        .route("/flights/{id}/process", post(flights::process))
        .route(
            "/flights/{id}/findings.geojson",
            get(findings::flight_findings),
        )
        .route(
            "/flights/{id}/footprints.geojson",
            get(findings::flight_footprints),
        )
        .route("/flights/{id}/mosaic", get(mosaic::info))
        .route("/flights/{id}/mosaic/{z}/{x}/{y}", get(mosaic::tile))
        .route(
            "/flights/{id}/uploads",
            post(uploads::tus_create).options(uploads::tus_options),
        )
        .route(
            "/flights/{id}/uploads/{upload}",
            axum::routing::head(uploads::tus_head)
                .patch(uploads::tus_patch)
                .delete(uploads::tus_delete)
                .options(uploads::tus_options),
        )
        .route(
            "/flights/{id}/photos",
            post(uploads::multipart).layer(DefaultBodyLimit::max(limits.max_multipart_bytes)),
        )
        .route("/findings.geojson", get(findings::findings))
        .route("/findings/{id}/photo.jpg", get(findings::photo))
        .route("/findings/{id}/views", get(views::views))
        .route("/findings/{id}/status", put(findings::set_status))
        .route("/findings/{id}/review", put(review::put_review))
        .route("/classes", get(review::classes))
        .route("/workorders.csv", get(workorders::workorders_csv))
        .route("/workorders.geojson", get(workorders::workorders_geojson))
        .route("/workorders.gpkg", get(workorders::workorders_gpkg))
        .route("/registers", get(registers::list))
        .route(
            "/registers/{kind}",
            put(registers::put).layer(DefaultBodyLimit::max(limits.max_register_bytes)),
        )
        .route("/registers/{kind}/data", get(registers::data))
        .route("/registers/{kind}/features", get(registermap::features))
        .route("/org/settings", get(orgsettings::get).put(orgsettings::put))
        .route("/org/models", get(orgmodels::list))
        .route(
            "/org/models/{model}",
            put(orgmodels::put)
                .delete(orgmodels::reset)
                .layer(DefaultBodyLimit::max(limits.max_register_bytes)),
        )
        .route(
            "/org/reference",
            get(orgreference::get)
                .put(orgreference::put)
                .delete(orgreference::delete)
                .layer(DefaultBodyLimit::max(limits.max_register_bytes)),
        )
        .route("/training-export", post(training::export))
        .route("/tokens", post(registers::create_token));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(metrics::healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(web::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::add_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .with_state(state)
}

/// Creates an API token for `org` (created with `crs` when new) and returns it; only its
/// hash is stored, so this is the one time it can be seen.
pub fn create_token(
    data_dir: &Path,
    org: &str,
    role: &str,
    crs: Option<&str>,
) -> Result<String, ServerError> {
    create_token_with(data_dir, None, org, role, crs)
}

/// [`create_token`] in the store `database` names (none: SQLite in the data folder).
pub fn create_token_with(
    data_dir: &Path,
    database: Option<&str>,
    org: &str,
    role: &str,
    crs: Option<&str>,
) -> Result<String, ServerError> {
    let role = Role::parse(role).ok_or_else(|| ServerError::Role(role.to_string()))?;
    std::fs::create_dir_all(data_dir).map_err(data_dir_error(data_dir))?;
    let store = open_store(data_dir, database)?;
    let org = store.ensure_org(org, crs)?;
    let token = auth::new_token()?;
    let hash = auth::token_hash(&token);
    store.insert_token(org.id, role, &hash)?;
    store.record_audit(
        org.id,
        "command line",
        "operator",
        "token.created",
        &format!("{} token {}", role.as_str(), &hash[..12]),
    )?;
    Ok(token)
}

/// [`serve`] on its own multi-threaded tokio runtime: for callers without one (the CLI).
pub fn serve_blocking(config: ServerConfig, addr: SocketAddr) -> Result<(), ServerError> {
    // Handlers poll for long (store calls, file reads): look for new I/O and for tasks
    // woken from blocking threads every 7 polls (tokio: 61 and 31), so a request that
    // needs little (`/healthz`) is not left waiting behind a busy worker's queue.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .event_interval(7)
        .global_queue_interval(7)
        .enable_all()
        .build()
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    runtime.block_on(serve(config, addr))
}

/// Runs the service until the process receives Ctrl-C or SIGTERM; then it stops taking
/// connections and jobs, lets open requests finish (`net.drain_timeout`) and the jobs in
/// hand too (`shutdown_secs`; those still running go back to the queue), and returns.
pub async fn serve(config: ServerConfig, addr: SocketAddr) -> Result<(), ServerError> {
    let state = AppState::open(config)?;
    // No built-in workers when asked for none: `besikta worker` processes run the jobs.
    let workers = (state.config().workers > 0).then(|| Workers::start(&state));
    retention::start(&state);
    metrics::start_health_checks(&state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    // Scripts and tests wait for this line to know the port.
    println!("besikta: listening on http://{local}");
    let (stopping, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("besikta: stopping: no new connections or jobs; finishing those in hand");
        let _ = stopping.send(true);
    });
    let mut http_stop = stop.clone();
    let http = listen::serve_on(
        listener,
        app(state.clone()),
        state.config().net.clone(),
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
    );
    let mut jobs_stop = stop;
    let deadline = std::time::Duration::from_secs(state.config().shutdown_secs);
    let jobs = async move {
        let _ = jobs_stop.wait_for(|s| *s).await;
        if let Some(workers) = workers {
            let _ = tokio::task::spawn_blocking(move || workers.stop_within(deadline)).await;
        }
    };
    tokio::join!(http, jobs);
    Ok(())
}

/// Runs `config.workers` job workers against the queue in `config.database` until the
/// process receives Ctrl-C or SIGTERM, then stops taking jobs and lets each finish the
/// job in hand within `config.shutdown_secs` (a job still running then goes back to the
/// queue for another worker): the worker processes of a deployment with PostgreSQL
/// (`besikta worker`).
pub fn work_blocking(config: ServerConfig) -> Result<(), ServerError> {
    let state = AppState::open_worker(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServerError::DataDir {
            path: "a signal handler".into(),
            source,
        })?;
    // A worker process runs unit after unit: its models stay loaded between them.
    besikta_pipeline::modelcache::keep(1);
    let workers = Workers::start_as(&state, "worker");
    // Scripts and tests wait for this line.
    println!(
        "besikta: worker running {} job(s) at a time",
        state.config().workers.max(1)
    );
    runtime.block_on(shutdown_signal());
    let deadline = state.config().shutdown_secs;
    eprintln!("besikta: stopping: finishing the job in hand (at most {deadline} s)");
    let released = workers.stop_within(std::time::Duration::from_secs(deadline));
    eprintln!("besikta: worker stopped ({released} job(s) returned to the queue)");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
