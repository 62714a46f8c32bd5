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
    /// ONNX Runtime threads per job.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
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
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut config = besikta_server::ServerConfig::new(&args.data, &args.models);
    config.dem = args.dem;
    config.workers = args.workers;
    config.threads_per_job = args.threads.max(1);
    config.limits.max_photo_bytes = args.max_photo_mb * 1024 * 1024;
    config.limits.max_photo_pixels = args.max_photo_megapixels * 1_000_000;
    config.tile_url = args.tile_url;
    config.database = args.database;
    config.storage = args.storage;
    besikta_server::serve_blocking(config, args.addr)
        .with_context(|| format!("the service on {} stopped", args.addr))?;
    Ok(0)
}
