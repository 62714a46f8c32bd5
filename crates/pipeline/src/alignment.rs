//! The alignment stage of the process job: refines the photos' poses from their overlaps
//! (`besikta-align`) before anything is placed on the ground, and records per photo where
//! its pose came from.

use besikta_align::{AlignConfig, AlignSummary, Alignment, PoseSource, RoadOutlines, RoadSurface};
use besikta_core::{AssetKind, Capture};
use besikta_georef::Ground;
use besikta_report::register::AssetGeometry;
use besikta_report::{Register, WorkFrame};
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
    /// Without a reference, fit the aligned flight as a whole onto the registers' roads
    /// (default on; `--no-road-fit`): fixes the absolute position where the roads allow.
    pub fit_roads: bool,
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
            fit_roads: true,
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
    roads: Option<&RoadOutlines>,
) -> (Vec<Capture>, Option<Alignment>) {
    if !opts.align || captures.is_empty() {
        return (captures.to_vec(), None);
    }
    let reference = opts
        .reference
        .as_deref()
        .map(besikta_align::Reference::open);
    let roads = roads.filter(|_| opts.fit_roads);
    let r = reference.as_ref().and_then(|r| r.as_ref().ok());
    let mut a = besikta_align::align_to(captures, ground, &opts.align_config, r, roads);
    if let Some(Err(e)) = reference {
        a.summary.reference = Some(format!("reference not used: {e}"));
    }
    (a.apply(captures), Some(a))
}

/// How far from the flight's photos a register's roads are taken for alignment, metres
/// (beyond the camera positions' envelope: a photo sees up to about its height around).
const ROADS_AROUND_M: f64 = 300.0;

/// The road surfaces of `registers` around the photos of `captures`, in WGS 84, for fitting
/// the flight onto them: each road centreline segment buffered by half the road's width (a
/// quad per segment), and road areas' rings. `None` without a register or a road near.
pub fn road_outlines(
    registers: &[Register],
    frame: &WorkFrame,
    captures: &[Capture],
) -> Option<RoadOutlines> {
    let pts: Vec<[f64; 2]> = captures
        .iter()
        .filter_map(|c| frame.to_work([c.longitude?, c.latitude?]).ok())
        .collect();
    if registers.is_empty() || pts.is_empty() {
        return None;
    }
    let env = besikta_infer::tiling::bounds(&pts);
    let mut polygons = Vec::new();
    for reg in registers {
        for a in reg.assets_in(env, ROADS_AROUND_M) {
            if a.kind != AssetKind::Road {
                continue;
            }
            let carriageway = besikta_report::register::is_carriageway(a);
            let mut rings: Vec<Vec<[f64; 2]>> = Vec::new();
            match &a.geometry {
                AssetGeometry::Line(lines) => {
                    let r = a.width_m / 2.0;
                    for seg in lines.0.iter().flat_map(|l| l.lines()) {
                        let (dx, dy) = (seg.end.x - seg.start.x, seg.end.y - seg.start.y);
                        let len = dx.hypot(dy);
                        if len < 1e-6 || r <= 0.0 {
                            continue;
                        }
                        // Each segment's quad reaches half a width past its ends, so the
                        // quads of a bend overlap instead of leaving a notch.
                        let (ux, uy) = (dx / len * r, dy / len * r);
                        rings.push(vec![
                            [seg.start.x - ux - uy, seg.start.y - uy + ux],
                            [seg.end.x + ux - uy, seg.end.y + uy + ux],
                            [seg.end.x + ux + uy, seg.end.y + uy - ux],
                            [seg.start.x - ux + uy, seg.start.y - uy - ux],
                        ]);
                    }
                }
                AssetGeometry::Area(polys) => {
                    for p in &polys.0 {
                        rings.push(p.exterior().points().map(|q| [q.x(), q.y()]).collect());
                    }
                }
            }
            for ring in rings {
                let ll: Option<Vec<[f64; 2]>> =
                    ring.iter().map(|&q| frame.to_wgs84(q).ok()).collect();
                if let Some(ring) = ll {
                    polygons.push(RoadSurface { ring, carriageway });
                }
            }
        }
    }
    let source = registers
        .iter()
        .map(|r| {
            r.source.file_name().map_or_else(
                || r.source.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(RoadOutlines { polygons, source })
}

/// Horizontal uncertainty of a flight fitted onto a register's roads, relative to the
/// register, metres: the fit's cell (30 cm) and the register's road edges, which are the
/// centreline buffered by a typical width. On the map it is as good as the register.
pub const ROAD_FIT_UNCERTAINTY_M: f64 = 0.5;

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
/// (never more than `metadata_m`). Fitted onto a register's roads: `metadata_m` on the map
/// (see [`ROAD_FIT_UNCERTAINTY_M`]). Kept metadata pose or not aligned: `metadata_m`.
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
        // Fitted onto the register's roads: placed relative to the register to about
        // ROAD_FIT_UNCERTAINTY_M, within the metadata figure (1 m by default) that the
        // on-asset margins keep using; what narrower margins would do is not measured.
        Some((PoseSource::Register, Some(s))) => PhotoUncertainty {
            map_m: metadata_m.max(s.hypot(ROAD_FIT_UNCERTAINTY_M)),
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
    feature: &mut Value,
    a: &Option<Alignment>,
    file: &str,
    metadata_sigma_m: f64,
) {
    let Some(props) = feature.get_mut("properties") else {
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
