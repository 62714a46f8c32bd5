//! `besikta export-training` and `besikta import-corrections`: the service's reviewed
//! findings become training chips (besikta-training), and outlines fixed in an annotation
//! tool come back as `corrected` reviews.

use anyhow::{bail, Context as _};
use besikta_core::{Review, ReviewState};
use besikta_store::{FindingFilter, FindingRow, Org, Store};
use besikta_training::local;
use besikta_training::{ChipFormat, ExportOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Arguments of `besikta export-training`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The service's data folder.
    #[arg(long)]
    pub data: PathBuf,
    /// The service's database URL (postgres://...), when it is not SQLite in --data.
    #[arg(long)]
    pub database: Option<String>,
    /// Only this organisation (default: every organisation).
    #[arg(long)]
    pub org: Option<String>,
    /// Only this flight (its id in the service).
    #[arg(long)]
    pub flight: Option<i64>,
    /// Folder of model manifests: each model's GSD, input size and classes.
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Output folder (new or empty).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Chip image format.
    #[arg(long, value_enum, default_value = "png")]
    pub format: Format,
    /// Background chips per model (default: as many as it has positive chips).
    #[arg(long)]
    pub background: Option<usize>,
    /// Seed of the background sampling.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// At most this many chips per finding in one photo (an outline longer than that many
    /// chips keeps them evenly spread over it).
    #[arg(long, default_value_t = 8)]
    pub max_chips_per_view: usize,
}

/// Chip image format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Png,
    Jpeg,
}

/// Arguments of `besikta import-corrections`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// CVAT for images 1.1 XML or COCO JSON drawn on the chips of a training export.
    pub file: PathBuf,
    /// The training export the chips come from (its folder or its manifest.json).
    #[arg(long)]
    pub export: PathBuf,
    /// The service's data folder.
    #[arg(long)]
    pub data: PathBuf,
    /// The service's database URL (postgres://...), when it is not SQLite in --data.
    #[arg(long)]
    pub database: Option<String>,
    /// The organisation the findings belong to.
    #[arg(long)]
    pub org: String,
    /// The flight the file must be for (refused when it holds another flight's chips).
    #[arg(long)]
    pub flight: Option<i64>,
    /// Who made the corrections (recorded as the reviewer).
    #[arg(long, default_value = "annotation import")]
    pub by: String,
    /// Check and show what would change; store nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Every organisation, by id. The store has no list of organisations; ids are given in
/// order and organisations are never deleted, so they are read until the first gap.
fn organisations(store: &dyn Store) -> anyhow::Result<Vec<Org>> {
    let mut out = Vec::new();
    for id in 1.. {
        match store.org(id)? {
            Some(o) => out.push(o),
            None => break,
        }
    }
    Ok(out)
}

fn organisation(store: &dyn Store, name: &str) -> anyhow::Result<Org> {
    let all = organisations(store)?;
    let names: Vec<&str> = all.iter().map(|o| o.name.as_str()).collect();
    match all.iter().find(|o| o.name == name) {
        Some(o) => Ok(o.clone()),
        None => bail!(
            "no organisation {name:?} in this data folder (there are: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    }
}

/// Runs `besikta export-training`.
pub fn run_export(args: ExportArgs) -> anyhow::Result<u8> {
    let store = besikta_server::open_store(&args.data, args.database.as_deref())
        .with_context(|| format!("cannot open the service's data in {}", args.data.display()))?;
    let orgs = match &args.org {
        Some(name) => vec![organisation(store.as_ref(), name)?],
        None => organisations(store.as_ref())?,
    };
    let models_dir = args
        .models
        .clone()
        .unwrap_or_else(crate::process::default_models_dir);
    let manifests: Vec<besikta_infer::Manifest> = besikta_pipeline::find_manifests(&models_dir)
        .iter()
        .map(|p| besikta_infer::Manifest::load(p))
        .collect::<Result<_, _>>()?;
    if manifests.is_empty() {
        bail!(
            "no model manifests in {}; give --models with the models whose chips you want",
            models_dir.display()
        );
    }
    // The same gathering as the service's training export (POST /api/v1/training-export).
    let besikta_server::training::Gathered {
        input,
        skipped,
        flights: flights_seen,
    } = besikta_server::training::gather(store.as_ref(), &args.data, &orgs, args.flight)?;
    if let Some(f) = args.flight {
        if flights_seen == 0 {
            bail!(
                "no flight {f} in {}",
                if args.org.is_some() {
                    "that organisation"
                } else {
                    "this data folder"
                }
            );
        }
    }
    let reviewed = input
        .views
        .iter()
        .filter(|v| v.review != ReviewState::Unreviewed)
        .count();
    let opts = ExportOptions {
        format: match args.format {
            Format::Png => ChipFormat::Png,
            Format::Jpeg => ChipFormat::Jpeg,
        },
        background_per_model: args.background,
        seed: args.seed,
        max_pixels: besikta_ingest::ReadOptions::default().max_pixels,
        max_chips_per_view: args.max_chips_per_view,
        ..Default::default()
    };
    let summary = besikta_training::export_training(&input, &manifests, &args.out, &opts)?;
    println!(
        "{} flights, {} finding views ({reviewed} reviewed) -> {}",
        flights_seen,
        input.views.len(),
        args.out.display()
    );
    println!(
        "{:<16} {:>9} {:>14} {:>11} {:>12}",
        "model", "positive", "hard negative", "background", "annotations"
    );
    for (name, c) in &summary.models {
        println!(
            "{name:<16} {:>9} {:>14} {:>11} {:>12}",
            c.positive, c.hard_negative, c.background, c.annotations
        );
    }
    let dropped: usize = summary.models.values().map(|c| c.windows_dropped).sum();
    if dropped > 0 {
        println!(
            "{dropped} chips left out over long outlines (--max-chips-per-view {})",
            args.max_chips_per_view
        );
    }
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    for s in &summary.skipped {
        eprintln!(
            "skipped: flight {} {}{}{}: {}",
            s.flight,
            s.photo,
            s.finding_id
                .as_deref()
                .map(|f| format!(" finding {f}"))
                .unwrap_or_default(),
            s.model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            s.reason
        );
    }
    if reviewed == 0 {
        eprintln!(
            "note: no finding is reviewed yet; review findings first (the chips come from reviews)"
        );
    }
    Ok(0)
}

/// The finding row and observation a correction refers to, checked before anything is stored.
struct Planned {
    row: FindingRow,
    review: Review,
    summary: String,
}

/// Runs `besikta import-corrections`.
pub fn run_import(args: ImportArgs) -> anyhow::Result<u8> {
    let flight = args.flight.map(|f| f.to_string());
    let set = besikta_training::read_corrections(&args.file, &args.export, flight.as_deref())?;
    let store = besikta_server::open_store(&args.data, args.database.as_deref())
        .with_context(|| format!("cannot open the service's data in {}", args.data.display()))?;
    let org = organisation(store.as_ref(), &args.org)?;
    let mut rows_by_flight: BTreeMap<String, Vec<FindingRow>> = BTreeMap::new();
    let mut planned = Vec::new();
    for c in &set.changed {
        if !rows_by_flight.contains_key(&c.flight) {
            let id: i64 = c.flight.parse().with_context(|| {
                format!(
                    "flight {:?} of the export is not a flight id of the service",
                    c.flight
                )
            })?;
            if store.flight(org.id, id)?.is_none() {
                bail!(
                    "{}: flight {id} is not a flight of organisation {:?}; nothing was stored",
                    args.file.display(),
                    org.name
                );
            }
            let rows = store.findings(
                org.id,
                &FindingFilter {
                    flight_id: Some(id),
                    ..Default::default()
                },
            )?;
            rows_by_flight.insert(c.flight.clone(), rows);
        }
        let Some(row) = rows_by_flight[&c.flight]
            .iter()
            .find(|r| r.finding.id == c.finding_id)
        else {
            bail!(
                "{}: finding {} of flight {} is no longer stored (the flight was processed again?); export again and redraw; nothing was stored",
                args.file.display(),
                c.finding_id,
                c.flight
            );
        };
        let mut review = row.review.clone();
        review.state = ReviewState::Corrected;
        review.reason = None;
        review.by = Some(args.by.clone());
        let file_name = args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        review.comment = Some(format!(
            "corrected in an annotation tool ({file_name}, chip {})",
            c.chip
        ));
        let mut what = Vec::new();
        if c.class_changed {
            review.corrected_class = Some(c.class.clone());
            what.push(format!("class {} -> {}", row.finding.class, c.class));
        }
        if c.outline_changed {
            let obs = row
                .finding
                .observations
                .iter()
                .find(|o| o.photo == c.photo)
                .with_context(|| {
                    format!(
                        "finding {} has no view in photo {} any more; export again; nothing was stored",
                        c.finding_id, c.photo
                    )
                })?;
            let fit = local::pixel_to_ground(&obs.pixel_polygon, &obs.ground_polygon)
                .filter(|f| f.rms < 1e-6)
                .with_context(|| {
                    format!(
                        "the outline of finding {} in {} cannot be placed on the ground (its observation's outlines do not pair up); nothing was stored",
                        c.finding_id, c.photo
                    )
                })?;
            let mut ring: Vec<[f64; 2]> = c.outline_px.iter().map(|p| fit.apply(*p)).collect();
            if ring.first() != ring.last() {
                ring.push(ring[0]);
            }
            review.corrected_polygon = Some(ring);
            what.push(format!("outline redrawn in {}", c.photo));
        }
        planned.push(Planned {
            row: row.clone(),
            review,
            summary: format!(
                "flight {} finding {}: {}",
                c.flight,
                c.finding_id,
                what.join(", ")
            ),
        });
    }
    println!(
        "{}: {} images, {} findings changed, {} unchanged",
        args.file.display(),
        set.images,
        planned.len(),
        set.unchanged
    );
    for (chip, class) in &set.unmatched {
        println!("not applied: a {class} outline in {chip} matches no finding (Besikta adds findings from flights, not drawings)");
    }
    for (chip, id) in &set.partial {
        println!("not applied: the outline drawn on {chip} is only a piece of finding {id} (it reaches past the chip); redraw it in the review queue");
    }
    for (flight, id) in &set.removed {
        println!("not applied: finding {id} of flight {flight} lost its outline in the file; reject it in the review queue if it is not a defect");
    }
    for p in &planned {
        println!(
            "{}{}",
            if args.dry_run { "would store: " } else { "" },
            p.summary
        );
    }
    if args.dry_run {
        return Ok(0);
    }
    for p in planned {
        store
            .set_review(org.id, p.row.id, &p.review, "operator")?
            .with_context(|| format!("finding {} vanished while storing", p.row.finding.id))?;
    }
    Ok(0)
}
