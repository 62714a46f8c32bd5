//! A model whose manifest says `run_without_register = false` (the shipped roof-damage
//! model) is not run on a flight without an asset register: its tiles are counted, the
//! flight's warnings say why and what to do, no finding of its classes is made, and the
//! road models still run. With a register it runs as before.

mod common;

use besikta_pipeline::process_with;
use common::{config, model, options};

#[test]
fn without_a_register_the_roof_model_is_not_run_and_the_flight_is_told_why() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = config(out.path());
    cfg.registers.clear();
    let outcome = process_with(&cfg, &options(true), &mut |_| {}).unwrap();
    let s = &outcome.summary;
    let roof = model(&s.models, "roof-damage");
    assert_eq!(
        (
            roof.tiles_inferred,
            roof.tiles_inferred_for_windows,
            roof.detections
        ),
        (0, 0, 0),
        "{roof:?}"
    );
    // Every tile of every photo at the model's scale: 16 photos of 1,600 x 1,067 px at
    // 1.875 cm/px (coarser than the model's 1 cm/px, inside its range: not resampled),
    // 256 px tiles overlapping by at least 32 px: 7 x 5 tiles a photo.
    assert_eq!(roof.tiles_skipped_without_register, 16 * 7 * 5, "{roof:?}");
    let warning = s
        .warnings
        .iter()
        .find(|w| w.starts_with("roof-damage was not run"))
        .unwrap_or_else(|| panic!("a warning about the roof model: {:?}", s.warnings));
    assert!(
        warning.contains("building outlines") && warning.contains("--assets"),
        "{warning}"
    );
    assert!(
        outcome
            .report
            .findings
            .iter()
            .all(|f| !["missing_tile", "moss", "debris"].contains(&f.class.as_str())),
        "no roof finding without the roof model"
    );
    let crack = model(&s.models, "crack-unet");
    assert!(crack.tiles_inferred > 0, "{crack:?}");
    assert_eq!(crack.tiles_skipped_without_register, 0);
    assert!(
        outcome.report.findings.iter().any(|f| f.class == "crack"),
        "the road models still find the planted cracks"
    );

    // The same flight with its register: the roof model runs over the buildings, and no
    // warning about it.
    let out = tempfile::tempdir().unwrap();
    let outcome = process_with(&config(out.path()), &options(true), &mut |_| {}).unwrap();
    let roof = model(&outcome.summary.models, "roof-damage");
    assert!(roof.tiles_inferred > 0, "{roof:?}");
    assert_eq!(roof.tiles_skipped_without_register, 0);
    assert!(outcome
        .summary
        .warnings
        .iter()
        .all(|w| !w.contains("roof-damage")));
}
