//! From per-photo detections on the ground to findings, asset matches, quantities and work orders.
//!
//! The stages, in the order [`build_report`] runs them:
//!
//! 1. **Frame**: every geometry is moved into one metric working CRS ([`WorkFrame`]): the
//!    register's own CRS when it is projected, otherwise the UTM zone of the data.
//! 2. **Merge** ([`merge`]): observations of the same class whose ground outlines come within
//!    the photos' position uncertainty of each other are one physical defect. The best view
//!    (confidence x closeness to the photo centre) gives the finding its outline.
//!    Observations off the registered assets are dropped first ([`onasset`]); after the
//!    merge, each finding's views, support and combined confidence are set and weak
//!    findings dropped ([`evidence`]).
//! 3. **Match** ([`register`]): a road defect goes to the nearest centreline within the road's
//!    half-width plus the uncertainty, with chainage from the first vertex; a roof defect to
//!    the building that contains it, else the nearest one within the tolerance. Unmatched
//!    findings are kept and flagged. Then findings of different classes of one class group
//!    (missing_tile, debris, moss) on one spot of one asset become one ([`classgroup`]).
//! 4. **Measure** ([`quantity`]): crack length and area on the ground, severity from
//!    configurable rules, a condition score per asset, and work orders.
//! 5. **Export** ([`export`]): RFC 7946 GeoJSON, GeoPackage through GDAL, CSV.
//!
//! This crate never runs models and knows nothing about HTTP.

pub mod classgroup;
pub mod evidence;
pub mod export;
pub mod frame;
pub mod gdal_errors;
pub mod merge;
pub mod onasset;
pub mod parts;
pub mod quantity;
pub mod register;
pub mod registermap;

use serde::Serialize;

pub use evidence::{Coverage, EvidenceRules};
pub use frame::WorkFrame;
pub use merge::MergeRules;
pub use parts::{Merger, Parts};
pub use quantity::{ConditionRules, SeverityRules};
pub use register::{Register, RegisterSource};

/// The finding vocabulary lives in `core` (the store and the server use it too); report
/// builds these values and writes them out.
pub use besikta_core::finding::{AssetMatch, Finding, ModelRef, Observation};

/// Errors of the reporting stage; each names the file or the value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot open register {path}: {message}")]
    RegisterOpen { path: String, message: String },
    #[error("register {path} has no layer named '{layer}' (layers: {available})")]
    MissingLayer {
        path: String,
        layer: String,
        available: String,
    },
    #[error("register {path}, layer '{layer}' has no coordinate reference system: assign one (e.g. ogr2ogr -a_srs EPSG:3067) so positions can be matched")]
    NoCrs { path: String, layer: String },
    #[error("register {path}, layer '{layer}': {message}")]
    RegisterContent {
        path: String,
        layer: String,
        message: String,
    },
    #[error("coordinate reference system '{crs}' is not understood: {message}")]
    Crs { crs: String, message: String },
    #[error("invalid rules in {path}: {message}")]
    Rules { path: String, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

/// Everything the report stage decides, ready for export.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub work_orders: Vec<quantity::WorkOrder>,
    pub conditions: Vec<quantity::AssetCondition>,
    /// Observations (off the asset) and findings (weak evidence) left out, by reason.
    pub dropped: std::collections::BTreeMap<String, usize>,
}

/// Options of [`build_report`].
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// Extra distance, metres, added to the photos' own position uncertainty when merging
    /// observations and matching to assets.
    pub extra_tolerance_m: f64,
    /// Maximum distance, metres, from a roof finding to a building that does not contain it.
    pub roof_tolerance_m: f64,
    pub severity: SeverityRules,
    pub condition: ConditionRules,
    pub merge: MergeRules,
    pub evidence: EvidenceRules,
    /// With a register, drop road defects off the road surface and roof defects off the
    /// buildings ([`onasset`]).
    pub assets_only: bool,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            extra_tolerance_m: 0.5,
            roof_tolerance_m: 2.0,
            severity: SeverityRules::default(),
            condition: ConditionRules::default(),
            merge: MergeRules::default(),
            evidence: EvidenceRules::default(),
            assets_only: true,
        }
    }
}

/// Merges observations into findings, matches them to the registers and measures them,
/// without knowing which photos covered what (every finding's views = its support).
pub fn build_report(
    observations: Vec<Observation>,
    registers: &[Register],
    frame: &WorkFrame,
    cfg: &ReportConfig,
) -> Result<Report, ReportError> {
    build_report_with(observations, &[], registers, frame, cfg)
}

/// [`build_report`] with the ground each photo covered, for multi-view evidence.
pub fn build_report_with(
    observations: Vec<Observation>,
    coverage: &[Coverage],
    registers: &[Register],
    frame: &WorkFrame,
    cfg: &ReportConfig,
) -> Result<Report, ReportError> {
    let merged = merge_and_weigh(observations, coverage, registers, frame, cfg)?;
    finish_report(merged, coverage, registers, frame, cfg, &|_| None)
}

/// Findings merged across photos and through the evidence rules, not yet matched to assets:
/// the first half of [`build_report_with`], for a caller that checks them further with what
/// the report does not see ([`finish_report`]'s `check`; the pipeline reads the photos of the
/// findings whose class sets `min_view_consistency`).
pub struct Merged {
    findings: Vec<Finding>,
    dropped: std::collections::BTreeMap<String, usize>,
}

impl Merged {
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Observations and findings left out so far, by reason.
    pub fn dropped(&self) -> &std::collections::BTreeMap<String, usize> {
        &self.dropped
    }
}

/// Keeps the observations on their assets (with `assets_only`), merges them and applies
/// the evidence rules.
pub fn merge_and_weigh(
    observations: Vec<Observation>,
    coverage: &[Coverage],
    registers: &[Register],
    frame: &WorkFrame,
    cfg: &ReportConfig,
) -> Result<Merged, ReportError> {
    let mut merger = Merger::new(coverage, registers, frame, cfg)?;
    merger.add(observations)?;
    Ok(merger.finish())
}

/// The rest of [`build_report_with`] after [`merge_and_weigh`], with one more check of each
/// finding: `check` names why a finding is dropped (counted in `dropped`) or gives `None`
/// to keep it.
pub fn finish_report(
    merged: Merged,
    coverage: &[Coverage],
    registers: &[Register],
    frame: &WorkFrame,
    cfg: &ReportConfig,
    check: &dyn Fn(&Finding) -> Option<&'static str>,
) -> Result<Report, ReportError> {
    let Merged {
        mut findings,
        mut dropped,
    } = merged;
    findings.retain(|f| match check(f) {
        Some(why) => {
            *dropped.entry(why.to_string()).or_default() += 1;
            false
        }
        None => true,
    });
    // Outlines that rounding to the 1 cm of our files would leave degenerate.
    let mut findings = export::drop_slivers(findings, &mut dropped);
    for f in &mut findings {
        let centroid = frame.to_work(f.centroid)?;
        let poly = frame.ring_to_work(&f.polygon)?;
        let tolerance = f.observations[f.best].position_uncertainty_m + cfg.extra_tolerance_m;
        f.asset = registers
            .iter()
            .filter_map(|r| r.match_finding(f.asset_kind, centroid, &poly, tolerance, cfg))
            .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
    }
    // Classes of one kind of damage on one spot of one asset: one finding.
    let mut findings =
        classgroup::merge_groups(findings, &cfg.evidence.groups, coverage, frame, cfg)?;
    for (i, f) in findings.iter_mut().enumerate() {
        f.id = format!("F{:05}", i + 1);
        f.severity = cfg.severity.classify(&f.class, f.length_m, f.area_m2);
    }
    let conditions = quantity::asset_conditions(&findings, registers, &cfg.condition);
    let work_orders = quantity::work_orders(&findings, &conditions);
    Ok(Report {
        findings,
        work_orders,
        conditions,
        dropped,
    })
}
