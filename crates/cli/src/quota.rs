//! The `besikta quota` subcommand: the operator gives one organisation upload limits of
//! its own, replacing `serve --quota-photo-gb/--quota-photos` for it (stored in the
//! organisation's settings, shown to it in `GET /api/v1/org/settings`, audited).

use anyhow::Context as _;
use besikta_store::OrgQuota;
use std::path::PathBuf;

/// Arguments of `besikta quota`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service's data folder.
    #[arg(long)]
    pub data: PathBuf,
    /// The service's database URL (postgres://...), when it is not SQLite in --data.
    #[arg(long)]
    pub database: Option<String>,
    /// Organisation (municipality) name; created when new.
    #[arg(long)]
    pub org: String,
    /// Gigabytes (10^9 bytes) of stored photos the organisation may keep; replaces the
    /// service's --quota-photo-gb for it.
    #[arg(long, value_name = "GB")]
    pub photo_gb: Option<f64>,
    /// Stored photos the organisation may keep; replaces the service's --quota-photos for it.
    #[arg(long, value_name = "N")]
    pub photos: Option<u64>,
    /// Remove the organisation's own limits: the service's flags apply to it again.
    #[arg(long, conflicts_with_all = ["photo_gb", "photos"])]
    pub clear: bool,
}

/// Runs the subcommand: sets (or with neither limit nor --clear, shows) the quota and
/// prints the organisation's own limits as JSON (`{}`: the service's apply).
pub fn run(args: Args) -> anyhow::Result<u8> {
    let gb = args.photo_gb.map(gigabytes).transpose()?;
    let store = besikta_server::open_store(&args.data, args.database.as_deref())
        .with_context(|| format!("cannot open the service's store in {}", args.data.display()))?;
    let org = store
        .ensure_org(&args.org, None)
        .with_context(|| format!("cannot find or create organisation {:?}", args.org))?;
    let mut settings = store
        .org_settings(org.id)
        .with_context(|| format!("cannot read the settings of organisation {:?}", args.org))?;
    let change = if args.clear {
        Some(None)
    } else if gb.is_some() || args.photos.is_some() {
        // A limit not given keeps the organisation's current one.
        let old = settings.quota.unwrap_or_default();
        Some(Some(OrgQuota {
            max_photo_bytes: gb.or(old.max_photo_bytes),
            max_photos: args.photos.or(old.max_photos),
        }))
    } else {
        None
    };
    if let Some(quota) = change {
        settings.quota = quota;
        store
            .set_org_settings(org.id, &settings)
            .with_context(|| format!("cannot store the quota of organisation {:?}", args.org))?;
        let detail = serde_json::to_string(&settings.quota.unwrap_or_default())?;
        store
            .record_audit(org.id, "command line", "operator", "org.quota", &detail)
            .with_context(|| {
                format!("cannot write the audit log of organisation {:?}", args.org)
            })?;
    }
    println!(
        "{}",
        serde_json::to_string(&settings.quota.unwrap_or_default())?
    );
    Ok(0)
}

/// `--photo-gb` in bytes; refuses what is not a positive number.
fn gigabytes(gb: f64) -> anyhow::Result<u64> {
    anyhow::ensure!(
        gb.is_finite() && gb > 0.0,
        "--photo-gb must be a positive number of gigabytes, not {gb}"
    );
    Ok((gb * 1e9) as u64)
}
