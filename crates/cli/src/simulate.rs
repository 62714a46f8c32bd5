//! The `besikta simulate` subcommand.

/// Arguments of `besikta simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input paths.
    pub paths: Vec<std::path::PathBuf>,
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("{} is not available in this build ({} paths)", "simulate", args.paths.len())
}
