//! The `besikta serve` subcommand: runs the web service on a data folder.

use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Arguments of `besikta serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder holding the database, photos, registers and results (created when missing).
    #[arg(long)]
    pub data: PathBuf,
    /// Database URL (postgres://user:password@host:port/db); default: SQLite in --data.
    #[arg(long)]
    pub database: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Folder with model manifests (*.toml beside *.onnx).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Elevation model (GeoTIFF) for georeferencing over hilly ground.
    #[arg(long)]
    pub dem: Option<PathBuf>,
    /// Flights processed at the same time; 0: none here (`besikta worker` processes run them).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// ONNX Runtime threads per model session. A job already runs one session per core, so
    /// 1 (as `besikta process`) keeps every core busy; 2 ran four threads on two cores and
    /// made jobs 1.6x slower.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[command(flatten)]
    pub device: crate::device::DeviceFlag,
    /// Largest photo accepted, megabytes.
    #[arg(long, default_value_t = 80)]
    pub max_photo_mb: u64,
    /// Largest photo accepted, megapixels.
    #[arg(long, default_value_t = 120)]
    pub max_photo_megapixels: u64,
    /// Where photos and job products live: s3://bucket/prefix (endpoint, region and
    /// credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY; AWS_ALLOW_HTTP=true for a plain-HTTP endpoint) or a folder;
    /// default: the data folder.
    #[arg(long)]
    pub storage: Option<String>,
    /// Background map tiles for the web map, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png
    #[arg(long)]
    pub tile_url: Option<String>,
    /// On SIGTERM or Ctrl-C, seconds the jobs in hand may take to finish before they go back
    /// to the queue.
    #[arg(long, default_value_t = 60)]
    pub shutdown_secs: u64,
    /// Photos per batch unit: a larger flight's photos are inferred in units any worker
    /// takes (these threads and `besikta worker` processes); a flight this size or smaller
    /// stays one unit.
    #[arg(long, default_value_t = besikta_server::DEFAULT_UNIT_PHOTOS)]
    pub unit_photos: usize,
    /// Also make each flight's orthomosaic at this ground size, cm (`mosaic.tif`, shown on
    /// the web map; costs about the alignment's time again per job); default: none.
    #[arg(long, value_name = "CM")]
    pub mosaic_gsd_cm: Option<f64>,
    /// A file holding a bearer token that shows the whole service's /metrics (the queue of
    /// every organisation, worker heartbeats); without it only org admins see their figures.
    #[arg(long)]
    pub metrics_token_file: Option<PathBuf>,
    /// Open connections at most; the next is answered 503 and closed.
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (also closes idle keep-alive connections).
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds to answer a request (uploads are not limited while their bytes keep coming).
    #[arg(long, default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// Seconds an upload's body may pause before the connection is closed (the upload resumes).
    #[arg(long, default_value_t = 60)]
    pub upload_idle_secs: u64,
    /// Requests worked on at once; the others wait their turn, so /healthz (never held back,
    /// nor are uploads) answers at once under load. Default: four per core; 0: no limit.
    #[arg(long)]
    pub max_active_requests: Option<usize>,
    /// Streamed answers (findings pages without limit) written at once; the next waits for
    /// a place before its head, apart from --max-active-requests. Default: two per core;
    /// 0: no limit.
    #[arg(long)]
    pub max_active_streams: Option<usize>,
    /// Photo crops made (photos decoded) at once; default: BESIKTA_CROP_PERMITS, else one per core.
    #[arg(long)]
    pub crop_permits: Option<usize>,
    /// Megabytes of finished photo crops kept in memory (0: none); default:
    /// BESIKTA_CROP_CACHE_MB, else 64.
    #[arg(long)]
    pub crop_cache_mb: Option<usize>,
    /// Gigabytes of stored photos each organisation may keep; an upload that would go over
    /// is refused (413) naming the quota. Default: no limit.
    #[arg(long)]
    pub quota_photo_gb: Option<f64>,
    /// Photos each organisation may keep stored. Default: no limit. (`besikta quota` gives
    /// one organisation limits of its own, replacing these two for it.)
    #[arg(long)]
    pub quota_photos: Option<u64>,
    /// Days after a flight's job finished that its original photos are kept; then an hourly
    /// sweep deletes them (findings, products and the crops made at processing time stay).
    /// Default: photos are kept until the flight is deleted.
    #[arg(long)]
    pub retain_photos_days: Option<u32>,
}

/// Reads the metrics token file: its first line, which must not be empty.
fn metrics_token(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the metrics token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    anyhow::ensure!(
        token.len() >= 16,
        "the metrics token file {} must hold a token of at least 16 characters on its first line",
        path.display()
    );
    Ok(token)
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut config = besikta_server::ServerConfig::new(&args.data, &args.models);
    config.dem = args.dem;
    config.workers = args.workers;
    config.threads_per_job = args.threads.max(1);
    config.device = args.device.checked()?;
    config.limits.max_photo_bytes = args.max_photo_mb * 1024 * 1024;
    config.limits.max_photo_pixels = args.max_photo_megapixels * 1_000_000;
    config.tile_url = args.tile_url;
    config.database = args.database;
    config.storage = args.storage;
    config.shutdown_secs = args.shutdown_secs;
    config.unit_photos = args.unit_photos.max(1);
    config.mosaic_gsd_cm = args.mosaic_gsd_cm.filter(|g| *g > 0.0);
    config.release_memory = crate::allocator::release_free_memory;
    config.metrics_token = args
        .metrics_token_file
        .as_deref()
        .map(metrics_token)
        .transpose()?;
    config.net.max_connections = args.max_connections.max(1);
    config.net.header_timeout = std::time::Duration::from_secs(args.header_timeout_secs.max(1));
    config.net.request_timeout = std::time::Duration::from_secs(args.request_timeout_secs.max(1));
    config.net.body_idle_timeout = std::time::Duration::from_secs(args.upload_idle_secs.max(1));
    if let Some(n) = args.max_active_requests {
        config.net.max_active_requests = n;
    }
    if let Some(n) = args.max_active_streams {
        config.net.max_active_streams = n;
    }
    config.crops = besikta_server::CropSettings {
        permits: args.crop_permits,
        cache_mb: args.crop_cache_mb,
    };
    if let Some(gb) = args.quota_photo_gb {
        anyhow::ensure!(
            gb.is_finite() && gb > 0.0,
            "--quota-photo-gb {gb} is not a size: give gigabytes above 0, e.g. --quota-photo-gb 50"
        );
    }
    config.quota = besikta_server::Quota {
        max_photo_bytes: args.quota_photo_gb.map(|gb| (gb * 1e9) as u64),
        max_photos: args.quota_photos,
    };
    config.retain_photos_days = args.retain_photos_days;
    besikta_server::serve_blocking(config, args.addr)
        .with_context(|| format!("the service on {} stopped", args.addr))?;
    Ok(0)
}
