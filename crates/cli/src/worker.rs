//! The `besikta worker` subcommand: runs processing jobs from a shared queue (PostgreSQL),
//! next to `besikta serve` and other workers on the same database and data folder.

use anyhow::Context as _;
use std::path::PathBuf;

/// Arguments of `besikta worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database the service uses (postgres://user:password@host:port/db).
    #[arg(long)]
    pub database: String,
    /// The service's data folder (shared with the server: photos, registers, products).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder with model manifests (*.toml beside *.onnx).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Elevation model (GeoTIFF) for georeferencing over hilly ground.
    #[arg(long)]
    pub dem: Option<PathBuf>,
    /// Jobs processed at the same time by this worker.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// ONNX Runtime threads per model session. A job already runs one session per core, so
    /// 1 (as `besikta process`) keeps every core busy; 2 ran four threads on two cores and
    /// made jobs 1.6x slower.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[command(flatten)]
    pub device: crate::device::DeviceFlag,
    /// Seconds without a heartbeat after which a job of a dead worker goes to another
    /// (renewed every third of it while the job runs).
    #[arg(long, default_value_t = 60)]
    pub lease_secs: i64,
    /// Where photos and job products live: s3://bucket/prefix (endpoint, region and
    /// credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY; AWS_ALLOW_HTTP=true for a plain-HTTP endpoint) or a folder;
    /// default: the data folder.
    #[arg(long)]
    pub storage: Option<String>,
    /// On SIGTERM or Ctrl-C, seconds the job in hand may take to finish before it goes back
    /// to the queue for another worker.
    #[arg(long, default_value_t = 60)]
    pub shutdown_secs: u64,
    /// Photos per batch unit: a larger flight's photos are inferred in units any worker
    /// takes, so one flight uses every worker; a flight this size or smaller stays one unit.
    #[arg(long, default_value_t = besikta_server::DEFAULT_UNIT_PHOTOS)]
    pub unit_photos: usize,
    /// Also make each flight's orthomosaic at this ground size, cm (`mosaic.tif`, shown on
    /// the web map; costs about the alignment's time again per job); default: none.
    #[arg(long, value_name = "CM")]
    pub mosaic_gsd_cm: Option<f64>,
}

/// Runs the subcommand until Ctrl-C or SIGTERM; the returned byte is the exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut config = besikta_server::ServerConfig::new(&args.data, &args.models);
    config.database = Some(args.database);
    config.dem = args.dem;
    config.workers = args.jobs.max(1);
    config.threads_per_job = args.threads.max(1);
    config.device = args.device.checked()?;
    config.lease_secs = args.lease_secs.max(1);
    config.storage = args.storage;
    config.shutdown_secs = args.shutdown_secs;
    config.unit_photos = args.unit_photos.max(1);
    config.mosaic_gsd_cm = args.mosaic_gsd_cm.filter(|g| *g > 0.0);
    config.release_memory = crate::allocator::release_free_memory;
    besikta_server::work_blocking(config)
        .with_context(|| format!("the worker on {} stopped", args.data.display()))?;
    Ok(0)
}
