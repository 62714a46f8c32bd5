//! The merge tolerance's floor and ceiling from the environment (`BESIKTA_MERGE_TOLERANCE`),
//! so other settings can be measured on flights without recompiling.

use crate::PipelineError;
use besikta_report::MergeRules;

/// Environment variable that sets the floor and ceiling, metres, of the merge tolerance
/// between two photos (`FLOOR,CEILING`, e.g. `1.5,2.0`; see
/// [`MergeRules::pair_tolerance_m`]), read by every process and finish step of this
/// process: for measuring other settings on flights without recompiling
/// (`benches/results/operating-points/README.md`). Unset or empty: the defaults.
pub const MERGE_TOLERANCE_ENV: &str = "BESIKTA_MERGE_TOLERANCE";

/// [`MergeRules::default`] with the floor and ceiling of [`MERGE_TOLERANCE_ENV`] when set.
pub(crate) fn rules_from_env() -> Result<MergeRules, PipelineError> {
    rules_from(crate::setting::value(MERGE_TOLERANCE_ENV).as_deref())
}

/// [`MergeRules::default`] with the floor and ceiling of `value` (`FLOOR,CEILING`).
fn rules_from(value: Option<&str>) -> Result<MergeRules, PipelineError> {
    let rules = MergeRules::default();
    let Some(text) = value.filter(|t| !t.trim().is_empty()) else {
        return Ok(rules);
    };
    match crate::setting::two_numbers(text) {
        Some((floor, ceiling)) if floor > 0.0 && floor <= ceiling => Ok(MergeRules {
            min_pose_tolerance_m: floor,
            max_pose_tolerance_m: ceiling,
            ..rules
        }),
        _ => Err(PipelineError::Setting(format!(
            "{MERGE_TOLERANCE_ENV}={text} is not FLOOR,CEILING in metres with 0 < FLOOR <= CEILING \
             (e.g. 1.0,2.0); set it so or unset it for the defaults"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_and_ceiling_come_from_the_setting_or_the_defaults() {
        assert_eq!(rules_from(None).unwrap(), MergeRules::default());
        assert_eq!(rules_from(Some(" ")).unwrap(), MergeRules::default());
        let r = rules_from(Some("1.5, 2.5")).unwrap();
        assert_eq!((r.min_pose_tolerance_m, r.max_pose_tolerance_m), (1.5, 2.5));
        assert_eq!(r.pose_sigmas, MergeRules::default().pose_sigmas);
        for bad in ["2", "2.5,2.0", "0,1", "a,b", "1,2,3", "1,inf"] {
            let e = rules_from(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(MERGE_TOLERANCE_ENV) && e.contains(bad), "{e}");
        }
    }
}
