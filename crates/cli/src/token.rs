//! The `besikta token` subcommand: creates API tokens of the service.

use anyhow::Context as _;
use std::path::PathBuf;

/// Arguments of `besikta token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// What to do with tokens.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is stored hashed and cannot be shown again).
    Create(CreateArgs),
}

/// Arguments of `besikta token create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The service's data folder.
    #[arg(long)]
    pub data: PathBuf,
    /// The service's database URL (postgres://...), when it is not SQLite in --data.
    #[arg(long)]
    pub database: Option<String>,
    /// Organisation (municipality) name; created when new.
    #[arg(long)]
    pub org: String,
    /// crew, viewer, planner or admin.
    #[arg(long)]
    pub role: String,
    /// CRS of the organisation's exports (e.g. EPSG:3067); set or change it.
    #[arg(long)]
    pub crs: Option<String>,
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    match args.command {
        TokenCommand::Create(a) => {
            let token = besikta_server::create_token_with(
                &a.data,
                a.database.as_deref(),
                &a.org,
                &a.role,
                a.crs.as_deref(),
            )
            .with_context(|| format!("cannot create a token in {}", a.data.display()))?;
            println!("{token}");
            Ok(0)
        }
    }
}
