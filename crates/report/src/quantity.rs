//! Severity rules, the condition score per asset, and work orders.
//!
//! **Severity** comes from thresholds on one quantity per class (crack: length in metres;
//! pothole and roof damage: area in m²). The defaults are below and can be replaced by a TOML
//! file:
//!
//! ```toml
//! [[rule]]
//! class = "crack"
//! metric = "length_m"   # or "area_m2"
//! medium = 2.0          # at or above: medium
//! high = 8.0            # at or above: high
//! ```
//!
//! **Condition score** (0-100, 100 = no defects), in the spirit of the pavement condition
//! index (ASTM D6433): for each defect class and severity on an asset, the *density* is the
//! defect quantity relative to the asset (crack metres per 10 m² of asset area, or damaged
//! area as a percentage of the asset area; potholes count 1 m² each at least). Each gives a
//! *deduct value* `d = w(severity) * 100 * (1 - exp(-density / k(class)))`, with severity
//! weights low 0.3, medium 0.6, high 1.0 and a class constant `k`. Deducts are sorted and
//! combined with diminishing weight (the largest counts fully, the next half, then a quarter...),
//! standing in for PCI's corrected deduct value. Score = max(0, 100 - combined deduct).

use crate::register::Register;
use crate::{Finding, ReportError};
use besikta_core::{AssetKind, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The quantity a severity rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    LengthM,
    AreaM2,
}

/// Thresholds for one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityRule {
    pub class: String,
    pub metric: Metric,
    pub medium: f64,
    pub high: f64,
}

/// All severity rules; classes without a rule use the area fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityRules {
    #[serde(rename = "rule")]
    pub rules: Vec<SeverityRule>,
}

impl Default for SeverityRules {
    fn default() -> Self {
        let r = |class: &str, metric, medium, high| SeverityRule {
            class: class.into(),
            metric,
            medium,
            high,
        };
        SeverityRules {
            rules: vec![
                r("crack", Metric::LengthM, 2.0, 8.0),
                r("pothole", Metric::AreaM2, 0.1, 0.5),
                r("*", Metric::AreaM2, 0.25, 1.0),
            ],
        }
    }
}

impl SeverityRules {
    /// Reads rules from a TOML file (see the module docs).
    pub fn load(path: &Path) -> Result<SeverityRules, ReportError> {
        let err = |message: String| ReportError::Rules {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let rules: SeverityRules = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        for r in &rules.rules {
            if !(r.medium >= 0.0 && r.high >= r.medium) {
                return Err(err(format!(
                    "rule for '{}': need 0 <= medium <= high",
                    r.class
                )));
            }
        }
        Ok(rules)
    }

    /// Severity of a defect with these quantities.
    pub fn classify(&self, class: &str, length_m: Option<f64>, area_m2: f64) -> Severity {
        let rule = self
            .rules
            .iter()
            .find(|r| r.class == class)
            .or_else(|| self.rules.iter().find(|r| r.class == "*"));
        let Some(rule) = rule else {
            return Severity::Low;
        };
        let v = match rule.metric {
            Metric::LengthM => length_m.unwrap_or(0.0),
            Metric::AreaM2 => area_m2,
        };
        if v >= rule.high {
            Severity::High
        } else if v >= rule.medium {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// Constants of the condition score (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionRules {
    /// Density scale `k` per class; `*` for the rest.
    pub scale: BTreeMap<String, f64>,
}

impl Default for ConditionRules {
    fn default() -> Self {
        ConditionRules {
            scale: [("crack", 1.0), ("pothole", 1.5), ("*", 3.0)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

fn severity_weight(s: Severity) -> f64 {
    match s {
        Severity::Low => 0.3,
        Severity::Medium => 0.6,
        Severity::High => 1.0,
    }
}

/// Condition of one asset.
#[derive(Debug, Clone, Serialize)]
pub struct AssetCondition {
    pub asset_id: String,
    pub asset_kind: AssetKind,
    pub asset_area_m2: f64,
    pub score: f64,
    pub deducts: Vec<(String, Severity, f64)>,
}

/// Density of one group of findings on an asset (see the module docs).
fn density(class: &str, findings: &[&Finding], asset_area_m2: f64) -> f64 {
    let area = asset_area_m2.max(1.0);
    if findings.iter().any(|f| f.length_m.is_some()) && class == "crack" {
        let metres: f64 = findings.iter().filter_map(|f| f.length_m).sum();
        metres / area * 10.0
    } else {
        let m2: f64 = findings
            .iter()
            .map(|f| {
                if class == "pothole" {
                    f.area_m2.max(1.0)
                } else {
                    f.area_m2
                }
            })
            .sum();
        m2 / area * 100.0
    }
}

/// Combined deduct: largest first, each next one counts half as much.
fn combine(mut deducts: Vec<f64>) -> f64 {
    deducts.sort_by(|a, b| b.total_cmp(a));
    deducts
        .iter()
        .enumerate()
        .map(|(i, d)| d / 2f64.powi(i as i32))
        .sum()
}

/// Condition scores for every asset that has at least one finding, the assets' kind and
/// area read from the registers.
pub fn asset_conditions(
    findings: &[Finding],
    registers: &[Register],
    rules: &ConditionRules,
) -> Vec<AssetCondition> {
    conditions_with(findings, rules, |id, _| {
        let asset = registers.iter().find_map(|r| r.asset(id))?;
        Some((asset.kind, asset.area_m2()))
    })
}

/// [`asset_conditions`] without the registers: each asset's kind and area as its findings'
/// matches recorded them ([`crate::AssetMatch::asset_area_m2`]), for findings read back
/// from storage. An asset whose matches have no area gets no score.
pub fn asset_conditions_from_matches(
    findings: &[Finding],
    rules: &ConditionRules,
) -> Vec<AssetCondition> {
    conditions_with(findings, rules, |_, fs| {
        fs.iter()
            .filter_map(|f| f.asset.as_ref())
            .find_map(|a| Some((a.asset_kind, a.asset_area_m2?)))
    })
}

fn conditions_with(
    findings: &[Finding],
    rules: &ConditionRules,
    asset_of: impl Fn(&str, &[&Finding]) -> Option<(AssetKind, f64)>,
) -> Vec<AssetCondition> {
    let mut by_asset: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        if let Some(a) = &f.asset {
            by_asset.entry(a.asset_id.as_str()).or_default().push(f);
        }
    }
    let mut out = Vec::new();
    for (id, fs) in by_asset {
        let Some((kind, area)) = asset_of(id, &fs) else {
            continue;
        };
        let mut groups: BTreeMap<(String, Severity), Vec<&Finding>> = BTreeMap::new();
        for f in &fs {
            groups
                .entry((f.class.clone(), f.severity))
                .or_default()
                .push(f);
        }
        let mut deducts = Vec::new();
        for ((class, sev), g) in groups {
            let k = rules
                .scale
                .get(&class)
                .or_else(|| rules.scale.get("*"))
                .copied()
                .unwrap_or(3.0);
            let d = severity_weight(sev) * 100.0 * (1.0 - (-density(&class, &g, area) / k).exp());
            deducts.push((class, sev, d));
        }
        let total = combine(deducts.iter().map(|d| d.2).collect());
        out.push(AssetCondition {
            asset_id: id.to_string(),
            asset_kind: kind,
            asset_area_m2: area,
            score: (100.0 - total).clamp(0.0, 100.0),
            deducts,
        });
    }
    out
}

/// One row of the work orders: one asset and one defect type.
#[derive(Debug, Clone, Serialize)]
pub struct WorkOrder {
    /// 1 = urgent, 2 = plan this season, 3 = monitor.
    pub priority: u8,
    pub asset_id: Option<String>,
    pub asset_name: Option<String>,
    pub asset_kind: AssetKind,
    pub class: String,
    pub count: usize,
    pub length_m: f64,
    pub area_m2: f64,
    pub worst_severity: Severity,
    pub condition_score: Option<f64>,
    pub location: String,
    pub photos: Vec<String>,
    pub finding_ids: Vec<String>,
    /// Finding centroids, WGS 84 lon/lat.
    pub points: Vec<[f64; 2]>,
}

/// Groups findings into work orders, most urgent first.
pub fn work_orders(findings: &[Finding], conditions: &[AssetCondition]) -> Vec<WorkOrder> {
    let mut groups: BTreeMap<(Option<String>, String), Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        let key = (
            f.asset.as_ref().map(|a| a.asset_id.clone()),
            f.class.clone(),
        );
        groups.entry(key).or_default().push(f);
    }
    let mut out: Vec<WorkOrder> = groups
        .into_iter()
        .map(|((asset_id, class), fs)| {
            let worst = fs.iter().map(|f| f.severity).max().unwrap_or(Severity::Low);
            let condition = asset_id
                .as_ref()
                .and_then(|id| conditions.iter().find(|c| &c.asset_id == id))
                .map(|c| c.score);
            let mut priority = match worst {
                Severity::High => 1,
                Severity::Medium => 2,
                Severity::Low => 3,
            };
            if condition.is_some_and(|s| s < 40.0) && priority > 1 {
                priority -= 1;
            }
            let first = fs[0].asset.as_ref();
            let asset_name = first.and_then(|a| a.asset_name.clone());
            let location = location_text(&fs, asset_id.as_deref(), asset_name.as_deref());
            let mut photos: Vec<String> = fs.iter().map(|f| f.best_photo().to_string()).collect();
            photos.sort();
            photos.dedup();
            WorkOrder {
                priority,
                asset_id,
                asset_name,
                asset_kind: fs[0].asset_kind,
                class,
                count: fs.len(),
                // fold from +0.0: an empty f64 sum is -0.0, which prints as "-0.0 m".
                length_m: fs.iter().filter_map(|f| f.length_m).fold(0.0, |a, b| a + b),
                area_m2: fs.iter().map(|f| f.area_m2).fold(0.0, |a, b| a + b),
                worst_severity: worst,
                condition_score: condition,
                location,
                photos,
                finding_ids: fs.iter().map(|f| f.id.clone()).collect(),
                points: fs.iter().map(|f| f.centroid).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.worst_severity.cmp(&a.worst_severity))
            .then(b.count.cmp(&a.count))
    });
    out
}

/// "Mannerheimintie, 120-180 m from its start", or the position for unmatched findings.
fn location_text(fs: &[&Finding], asset_id: Option<&str>, name: Option<&str>) -> String {
    let label = match (name, asset_id) {
        (Some(n), _) => n.to_string(),
        (None, Some(id)) => format!("asset {id}"),
        (None, None) => {
            let c = fs[0].centroid;
            let ns = if c[1] >= 0.0 { 'N' } else { 'S' };
            let ew = if c[0] >= 0.0 { 'E' } else { 'W' };
            return format!(
                "not on any registered asset; near {:.6} {ns}, {:.6} {ew}",
                c[1].abs(),
                c[0].abs()
            );
        }
    };
    let ch: Vec<f64> = fs
        .iter()
        .filter_map(|f| f.asset.as_ref().and_then(|a| a.chainage_m))
        .collect();
    if ch.is_empty() {
        return label;
    }
    let lo = ch.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ch.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if (hi - lo) < 1.0 {
        format!("{label}, {lo:.0} m from its start")
    } else {
        format!("{label}, {lo:.0}-{hi:.0} m from its start")
    }
}
