//! The alignment stage of the process job: refines the photos' poses from their overlaps
//! (`besikta-align`) before anything is placed on the ground, and records per photo where
//! its pose came from.

use besikta_align::{AlignConfig, AlignSummary, Alignment, PoseSource};
use besikta_core::Capture;
use besikta_georef::Ground;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Options of the process job beyond what to process (see [`crate::process_with`]).
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Align the flight's photos to each other before placing detections (default on).
    pub align: bool,
    pub align_config: AlignConfig,
    /// A reference orthophoto (any CRS) the photos are also matched to: fixes the
    /// absolute position. One that cannot be read or does not cover the flight is set
    /// aside with a note in `summary.json`; the flight is still aligned to itself.
    pub reference: Option<std::path::PathBuf>,
    /// Coverage-planned inference (default on): each model infers only the tiles over
    /// ground its photo sees best ([`crate::coverage`]); off = every tile (`--all-views`).
    pub coverage: bool,
    /// Second views by windows around candidates (`Some(true)`) or by several owners per
    /// cell (`Some(false)`); `None`: `BESIKTA_SECOND_VIEWS`, else the default
    /// ([`crate::second_views::Setting::resolve`]).
    pub windows: Option<bool>,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            align: true,
            align_config: AlignConfig::default(),
            reference: None,
            coverage: true,
            windows: None,
        }
    }
}

/// Aligns `captures` when asked: the captures with refined poses, and the alignment.
pub(crate) fn run(
    captures: &[Capture],
    ground: &Ground,
    opts: &ProcessOptions,
) -> (Vec<Capture>, Option<Alignment>) {
    if !opts.align || captures.is_empty() {
        return (captures.to_vec(), None);
    }
    let reference = opts
        .reference
        .as_deref()
        .map(besikta_align::Reference::open);
    let mut a = match &reference {
        Some(Ok(r)) => {
            besikta_align::align_with_reference(captures, ground, &opts.align_config, Some(r))
        }
        _ => besikta_align::align(captures, ground, &opts.align_config),
    };
    if let Some(Err(e)) = reference {
        a.summary.reference = Some(format!("reference not used: {e}"));
    }
    (a.apply(captures), Some(a))
}

/// Horizontal uncertainty assumed for a reference orthophoto's own placement, metres: a
/// municipal orthophoto of 5-25 cm/px is placed to about a pixel or two. Photos aligned to
/// it are no better placed on the map than this.
pub const REFERENCE_UNCERTAINTY_M: f64 = 0.25;

/// How well one photo's position is known, from its pose (see
/// [`besikta_core::finding::Observation`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhotoUncertainty {
    /// On the map, metres: keeping defects on their asset and matching them to the register.
    pub map_m: f64,
    /// Relative to the flight's other photos, metres, when alignment refined the pose:
    /// merging across photos.
    pub relative_m: Option<f64>,
}

/// The uncertainty of `c`'s position after `a` (`metadata_m`: its GPS or RTK figure).
/// Aligned to the flight: the relative sigma is the pose's, but the flight as a whole keeps
/// its mean GPS error, so on the map it stays `metadata_m`. Aligned to a reference: the
/// pose sigma combined with the reference's own [`REFERENCE_UNCERTAINTY_M`] on the map too
/// (never more than `metadata_m`). Kept metadata pose or not aligned: `metadata_m`.
pub fn photo_uncertainty(a: &Option<Alignment>, c: &Capture, metadata_m: f64) -> PhotoUncertainty {
    let pose = a.as_ref().and_then(|a| a.pose_of(&c.file));
    match pose.map(|p| (p.source, p.sigma_m)) {
        Some((PoseSource::Flight, Some(s))) => PhotoUncertainty {
            map_m: metadata_m,
            relative_m: Some(s),
        },
        Some((PoseSource::Reference, Some(s))) => PhotoUncertainty {
            map_m: s.hypot(REFERENCE_UNCERTAINTY_M).min(metadata_m),
            relative_m: Some(s),
        },
        _ => PhotoUncertainty {
            map_m: metadata_m,
            relative_m: None,
        },
    }
}

/// The alignment's figures for `summary.json`.
pub(crate) fn summary(a: &Option<Alignment>) -> Option<AlignSummary> {
    a.as_ref().map(|a| a.summary.clone())
}

/// Adds the pose's provenance to a footprint feature's properties: `pose_source`,
/// `pose_correction_m` `[east, north]`, `yaw_correction_deg`, `pose_sigma_m` (and
/// `pose_note`, why the metadata pose was kept). `camera_latitude`/`camera_longitude`
/// already hold the capture's (refined) position.
pub(crate) fn annotate(
    feature: Option<&mut Value>,
    a: &Option<Alignment>,
    file: &str,
    metadata_sigma_m: f64,
) {
    let Some(props) = feature.and_then(|f| f.get_mut("properties")) else {
        return;
    };
    let pose = a.as_ref().and_then(|a| a.pose_of(file));
    let (source, corr, yaw, sigma, note) = match pose {
        Some(p) if p.source != PoseSource::Metadata => (
            p.source.as_str(),
            p.correction_m,
            p.yaw_correction_deg,
            p.sigma_m.unwrap_or(metadata_sigma_m),
            None,
        ),
        Some(p) => (
            "metadata",
            [0.0, 0.0],
            0.0,
            metadata_sigma_m,
            p.reason.clone(),
        ),
        None => (
            "metadata",
            [0.0, 0.0],
            0.0,
            metadata_sigma_m,
            Some("alignment was not run (--no-align)".to_string()),
        ),
    };
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    props["pose_source"] = json!(source);
    props["pose_correction_m"] = json!([round(corr[0]), round(corr[1])]);
    props["yaw_correction_deg"] = json!(round(yaw));
    props["pose_sigma_m"] = json!(round(sigma));
    if let Some(n) = note {
        props["pose_note"] = json!(n);
    }
}
