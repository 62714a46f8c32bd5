//! A flight run as work units (issue 15): prepare -> batches -> finish, with every unit's
//! result passed through JSON as between workers, gives the same findings as `process`
//! for any split of the photos into batches, whether they are handed to `finish` together
//! or one at a time (`finish_streamed`).

mod common;

use besikta_pipeline::process_with;
use besikta_pipeline::second_views::AUTO_MIN_SAVING;
use besikta_pipeline::units::{finish, finish_streamed, prepare, BatchResult, Prepared};
use besikta_pipeline::PipelineError;
use common::{assert_same_findings, batches, config, options, through_json};
use std::path::Path;

#[test]
fn units_in_any_split_give_the_findings_of_process() {
    let whole_dir = tempfile::tempdir().unwrap();
    // Second views by several owners per cell (windows, the default, are split in
    // `tests/windows.rs`).
    let whole = process_with(&config(whole_dir.path()), &options(false), &mut |_| {}).unwrap();
    assert!(
        !whole.report.findings.is_empty(),
        "the simulated flight has findings"
    );
    // `process` kept its observations on disk until the merge (`spill`): nothing of that
    // is left in the output folder.
    let leftovers: Vec<String> = std::fs::read_dir(whole_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // At 65 % overlap one owner per cell saves few tiles: `auto` would keep three owners.
    let sv = whole
        .summary
        .second_views
        .clone()
        .expect("coverage is planned");
    assert_eq!(
        (sv.by.as_str(), sv.chosen_by.as_str()),
        ("owners", "setting")
    );
    assert!(sv.saving() > 0.0 && sv.saving() < AUTO_MIN_SAVING, "{sv:?}");
    // With a register the plan counts exactly the tiles the owner pass then runs.
    let needing_views: usize = whole
        .summary
        .models
        .iter()
        .filter(|m| m.name != "pothole-det")
        .map(|m| m.tiles_inferred)
        .sum();
    assert_eq!(needing_views, sv.planned_tiles_owners, "{sv:?}");

    let split_dir = tempfile::tempdir().unwrap();
    let cfg = config(split_dir.path());
    let prepared: Prepared = through_json(&prepare(&cfg, &options(false), &mut |_| {}).unwrap());
    let n = prepared.photos.len();
    assert!(n >= 6, "{n} photos prepared");
    assert!(
        !prepared.owned.is_empty(),
        "the coverage plan travels with the prepared flight"
    );
    // Uneven batches, run out of order, each through JSON.
    let mut batches: Vec<BatchResult> = batches(&cfg, &prepared, &[0, 1, 4, n - 2, n]);
    assert_eq!(batches.len(), 4);
    let split = finish(&cfg, &prepared, batches.clone(), &mut |_| {}).unwrap();
    assert_same_findings(
        &split.report.findings,
        &whole.report.findings,
        "process and units",
    );
    assert_eq!(
        split.report.work_orders.len(),
        whole.report.work_orders.len()
    );
    let (a, b) = (&split.summary, &whole.summary);
    assert_eq!(
        (a.photos_found, a.photos_processed, a.detections, a.findings),
        (b.photos_found, b.photos_processed, b.detections, b.findings)
    );
    assert_eq!(a.dropped, b.dropped);
    assert_eq!(a.warnings, b.warnings);
    for (x, y) in a.models.iter().zip(&b.models) {
        assert_eq!(
            (
                x.detections,
                x.tiles_total,
                x.tiles_inferred,
                x.tiles_skipped
            ),
            (
                y.detections,
                y.tiles_total,
                y.tiles_inferred,
                y.tiles_skipped
            ),
            "{}",
            x.name
        );
    }
    // The same files, from typed data.
    let read = |d: &Path| std::fs::read_to_string(d.join("findings.geojson")).unwrap();
    assert_eq!(read(split_dir.path()), read(whole_dir.path()));

    // Handed over one at a time in photo order (a worker reading them from its store), the
    // same files.
    let streamed_dir = tempfile::tempdir().unwrap();
    let mut sorted = batches.clone();
    sorted.sort_by_key(|b| b.first);
    let streamed = finish_streamed(
        &config(streamed_dir.path()),
        &prepared,
        &mut sorted.clone().into_iter().map(Ok),
        &|f: &str| f.into(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(streamed.summary.dropped, whole.summary.dropped);
    assert_eq!(read(streamed_dir.path()), read(whole_dir.path()));
    // Out of order, or a result that cannot be read, stops it with the reason.
    let mut swapped = sorted.clone();
    swapped.swap(0, 1);
    let err = finish_streamed(
        &config(streamed_dir.path()),
        &prepared,
        &mut swapped.into_iter().map(Ok),
        &|f: &str| f.into(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("do not cover"), "{err}");
    let mut unreadable = sorted
        .into_iter()
        .map(Ok)
        .take(1)
        .chain(std::iter::once(Err(PipelineError::Units(
            "the result of photos from 1 cannot be read: EOF".into(),
        ))));
    let err = finish_streamed(
        &config(streamed_dir.path()),
        &prepared,
        &mut unreadable,
        &|f: &str| f.into(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("photos from 1 cannot be read"),
        "{err}"
    );

    // Batches that leave a photo out are refused, not finished short.
    batches.retain(|b| b.first != 1);
    let err = finish(&cfg, &prepared, batches, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("do not cover"), "{err}");
}
