//! How a flight finds second views (issue 14), chosen before inference from the coverage
//! plan: by several owners per cell ([`crate::coverage::owners_for`]) or by one owner per
//! cell plus windows around candidates ([`crate::coverage::windows_for`]).
//!
//! Windows pay where one owner per cell saves many tiles (photos overlapping a lot, as
//! Brighton's 18 photos: one owner per cell plans 29 % fewer crack and roof tiles) and
//! cost where it saves few (the simulated 65 % overlap flights: 7-12 % fewer, and their
//! many false candidates on lane markings then cost more window tiles than that). The
//! automatic rule ([`Setting::Auto`]) counts the tiles both plans give the models whose
//! classes need second views, over each photo's register region of interest, and takes
//! windows when one owner per cell saves at least [`AUTO_MIN_SAVING`] of them.
//!
//! Since windows get tiles placed on them rather than the grid's
//! (`besikta_infer::tiling::TilePlan::covering`), windows are the default everywhere
//! ([`DEFAULT`]): measured on 2026-12-04 over 21 simulated flights (the six issue flights,
//! four held-out, the bundled one and ten with pose noise; README, "Findings people can
//! trust"), windows ran 20,622 + 2,435 window tiles against 22,970 with three owners
//! (+0.4 %) and gave the same or better precision on every set (six flights 0.831 -> 0.860,
//! held-out 0.781 -> 0.867, noisy flights aligned to a reference 0.691 -> 0.740, aligned to
//! the flight 0.373 -> 0.369) with the same or higher recall. `auto` remains a setting.

use crate::coverage::{self, Ownership};
use besikta_infer::manifest::Manifest;
use besikta_report::EvidenceRules;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the way to find second views is set when [`crate::ProcessOptions::windows`] is
/// not: `windows`, `owners` or `auto`.
pub const SECOND_VIEWS_ENV: &str = coverage::SECOND_VIEWS_ENV;

/// The share of the several-owner plan's tiles (models needing second views) that one
/// owner per cell must save for [`Setting::Auto`] to take windows. Measured
/// (benches/results/speed-2026-12-02.md section 6): Brighton's plan saves 29 % and the
/// windows then cost 19.5 % of the three-owner tiles back (net -14 %); the six simulated
/// issue flights' plans save 7-12 % and on the bundled one the windows cost 33 % (net
/// +23 %). Set between the two; flights in between were not measured.
pub const AUTO_MIN_SAVING: f64 = 0.25;

/// The way to find second views asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Windows,
    Owners,
    /// Decided per flight from the plan: windows when one owner per cell saves at least
    /// [`AUTO_MIN_SAVING`] of the planned tiles.
    Auto,
}

/// Used when neither the options nor [`SECOND_VIEWS_ENV`] say (see the module docs).
pub const DEFAULT: Setting = Setting::Windows;

impl Setting {
    /// The setting from [`crate::ProcessOptions::windows`], else [`SECOND_VIEWS_ENV`], else
    /// [`DEFAULT`].
    pub fn resolve(windows: Option<bool>) -> Result<Setting, crate::PipelineError> {
        if let Some(w) = windows {
            return Ok(if w { Setting::Windows } else { Setting::Owners });
        }
        match std::env::var(SECOND_VIEWS_ENV) {
            Err(_) => Ok(DEFAULT),
            Ok(v) => match v.trim() {
                "windows" => Ok(Setting::Windows),
                "owners" => Ok(Setting::Owners),
                "auto" => Ok(Setting::Auto),
                "" => Ok(DEFAULT),
                other => Err(crate::PipelineError::Setting(format!(
                    "{SECOND_VIEWS_ENV}={other} is not a way to find second views: set it to \
                     windows (infer a window around each candidate in the other photos), \
                     owners (several photos infer every cell) or auto (windows when the \
                     coverage plan says they save tiles), or unset it"
                ))),
            },
        }
    }
}

/// What was chosen and what the plan said (`summary.json` `second_views`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondViews {
    /// `windows` or `owners`.
    pub by: String,
    /// `setting` (options, [`SECOND_VIEWS_ENV`] or [`DEFAULT`]) or `plan` ([`Setting::Auto`]).
    pub chosen_by: String,
    /// Tiles planned for the models whose classes need second views with
    /// [`coverage::owners_for`] owners per cell (within register regions of interest;
    /// vegetation is not known before the photos are decoded).
    pub planned_tiles_owners: usize,
    /// The same with one owner per cell, before any window.
    pub planned_tiles_one_owner: usize,
}

impl SecondViews {
    /// The share of [`Self::planned_tiles_owners`] one owner per cell saves.
    pub fn saving(&self) -> f64 {
        if self.planned_tiles_owners == 0 {
            0.0
        } else {
            1.0 - self.planned_tiles_one_owner as f64 / self.planned_tiles_owners as f64
        }
    }
}

/// Tiles the plans with [`coverage::owners_for`] owners and with one owner give the models
/// whose classes need second views, over the flight's `photos`; `tiles(photo, plan, model)`
/// counts one photo's. `owned` holds both plans (else 0, 0).
pub(crate) fn planned_tiles(
    owned: &BTreeMap<usize, Ownership>,
    rules: &EvidenceRules,
    manifests: &[Manifest],
    photos: usize,
    tiles: &dyn Fn(usize, &Ownership, &Manifest) -> usize,
) -> (usize, usize) {
    let (mut several, mut single) = (0, 0);
    let Some(one) = owned.get(&1) else {
        return (0, 0);
    };
    for m in manifests {
        let classes: Vec<String> = m.classes.iter().map(|k| k.name.clone()).collect();
        let k = coverage::owners_for(rules, &classes);
        let Some(plan) = owned.get(&k).filter(|_| k > 1) else {
            continue;
        };
        for i in 0..photos {
            several += tiles(i, plan, m);
            single += tiles(i, one, m);
        }
    }
    (several, single)
}

/// Windows or owners for a flight: as `setting` says, or for [`Setting::Auto`] windows when
/// one owner per cell saves at least [`AUTO_MIN_SAVING`] of the planned tiles.
pub(crate) fn decide(setting: Setting, several: usize, single: usize) -> (bool, SecondViews) {
    let mut sv = SecondViews {
        by: String::new(),
        chosen_by: if setting == Setting::Auto {
            "plan"
        } else {
            "setting"
        }
        .to_string(),
        planned_tiles_owners: several,
        planned_tiles_one_owner: single,
    };
    let windows = match setting {
        Setting::Windows => true,
        Setting::Owners => false,
        Setting::Auto => several > 0 && sv.saving() >= AUTO_MIN_SAVING,
    };
    sv.by = if windows { "windows" } else { "owners" }.to_string();
    (windows, sv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_windows_only_where_one_owner_saves_enough() {
        // Brighton's plan (crack + roof, no register: 6,150 -> 4,346 tiles) and the
        // bundled simulated flight's (850 -> 763), as `summary.json` gave them.
        let (w, sv) = decide(Setting::Auto, 6150, 4346);
        assert!(w);
        assert_eq!((sv.by.as_str(), sv.chosen_by.as_str()), ("windows", "plan"));
        assert!((sv.saving() - 0.293).abs() < 0.001, "{}", sv.saving());
        let (w, sv) = decide(Setting::Auto, 850, 763);
        assert!(!w);
        assert_eq!(sv.by, "owners");
        // Nothing planned (no model needs second views, or coverage off): owners.
        assert!(!decide(Setting::Auto, 0, 0).0);
        // A setting wins whatever the plan says.
        let (w, sv) = decide(Setting::Windows, 850, 763);
        assert!(w);
        assert_eq!(
            (sv.by.as_str(), sv.chosen_by.as_str()),
            ("windows", "setting")
        );
        assert!(!decide(Setting::Owners, 4024, 2676).0);
    }

    #[test]
    fn options_come_before_the_environment() {
        assert_eq!(Setting::resolve(Some(true)).unwrap(), Setting::Windows);
        assert_eq!(Setting::resolve(Some(false)).unwrap(), Setting::Owners);
    }
}
