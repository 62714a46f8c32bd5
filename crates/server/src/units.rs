//! A job as work units (issue 15). The worker that claims a flight's job prepares it
//! (`pipeline::units::prepare`: ingest, georeferencing, alignment, coverage plan), stores
//! the prepared flight, queues batch units of at most `ServerConfig::unit_photos` photos
//! and one finish unit, and leaves the job to the queue. Every worker (threads of
//! `besikta serve`, `besikta worker` processes) takes units before new jobs, by fair
//! share between organisations. The finish unit is free once no batch is queued or
//! running; the worker that claims it takes the job over (a new job attempt) and finishes
//! the flight (`pipeline::units::finish`, exports, crops, the typed result) as the job's
//! worker did before. A unit whose worker dies (a finish too) goes to another after its
//! lease; finished units keep their results; a finisher that lost the job stores nothing.
//! A flight of at most `unit_photos` photos stays one unit, run in place without queue
//! rows.
use crate::jobs::{process_config, Heartbeat};
use crate::AppState;
use besikta_pipeline::units::{
    finish_located, finish_streamed, infer_batch, prepare, BatchResult, Prepared,
};
use besikta_pipeline::{PipelineError, ProcessConfig, ProcessOutcome, Progress, ReleasePoints};
use besikta_store::{Job, Photo, UnitKind, WorkUnit};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Photos per batch unit by default: a flight up to this size stays one unit.
pub const DEFAULT_UNIT_PHOTOS: usize = 32;

/// The batch unit a worker thread runs now, shared with [`crate::jobs::Workers`] so a
/// stopping worker hands it back ([`release_held`]) instead of leaving it to its lease.
pub(crate) type UnitSlot = std::sync::Arc<std::sync::Mutex<Option<WorkUnit>>>;

thread_local! {
    /// This worker thread's [`UnitSlot`], when it is one of [`crate::jobs::Workers`].
    static UNIT_SLOT: std::cell::RefCell<Option<UnitSlot>> = const { std::cell::RefCell::new(None) };
}

/// Makes this thread record the units it runs in `slot`.
pub(crate) fn hold_units_in(slot: UnitSlot) {
    UNIT_SLOT.with(|s| *s.borrow_mut() = Some(slot));
}

/// The unit in this thread's slot while it lives (none again when dropped).
struct Held;

impl Held {
    fn new(unit: &WorkUnit) -> Held {
        set_held(Some(unit));
        Held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        set_held(None);
    }
}

fn set_held(unit: Option<&WorkUnit>) {
    UNIT_SLOT.with(|s| {
        if let Some(slot) = &*s.borrow() {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = unit.cloned();
        }
    });
}

/// Puts each unit still in a stopping worker's hands back in the queue at once, so
/// another worker takes it without waiting for its lease. Returns how many went back.
pub(crate) fn release_held(state: &AppState, slots: &[UnitSlot], deadline: Duration) -> usize {
    let mut released = 0;
    for slot in slots {
        let held = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(unit) = held else { continue };
        match state.store().release_unit(&unit) {
            Ok(true) => {
                released += 1;
                eprintln!(
                    "besikta: work unit {} (photos {}-{} of job {}) not finished within {} s: back in the queue",
                    unit.id,
                    unit.first + 1,
                    unit.first + unit.count,
                    unit.job_id,
                    deadline.as_secs()
                );
            }
            // Finished (or taken over) meanwhile: nothing to give back.
            Ok(false) => {}
            Err(e) => eprintln!(
                "besikta: cannot return work unit {} to the queue ({e}); it goes back when its lease ends",
                unit.id
            ),
        }
    }
    released
}

/// `n` photos in batches of at most `per`, as even as possible: `(first, count)`.
pub(crate) fn batches(n: usize, per: usize) -> Vec<(i64, i64)> {
    let per = per.max(1);
    let k = n.div_ceil(per).max(1);
    let (base, extra) = (n / k, n % k);
    let mut out = Vec::with_capacity(k);
    let mut first = 0;
    for i in 0..k {
        let count = base + usize::from(i < extra);
        if count > 0 {
            out.push((first as i64, count as i64));
        }
        first += count;
    }
    out
}

/// This worker thread's name in the units table: `<host>:<pid>:<thread>`.
fn worker_id() -> String {
    format!(
        "{}:{}:{}",
        crate::ops::hostname(),
        std::process::id(),
        std::thread::current().name().unwrap_or("main")
    )
}

/// Finds a photo by its file name among this worker's local copies.
fn locator(inputs: &[PathBuf]) -> impl Fn(&str) -> PathBuf + '_ {
    let by_name: HashMap<String, &PathBuf> = inputs
        .iter()
        .map(|p| {
            (
                crate::findings::basename(&p.to_string_lossy()).to_string(),
                p,
            )
        })
        .collect();
    move |file: &str| {
        by_name
            .get(crate::findings::basename(file))
            .map(|p| (*p).clone())
            .unwrap_or_else(|| PathBuf::from(file))
    }
}

/// What [`process_job`] did with a job attempt.
pub(crate) enum JobRun {
    /// The flight was finished here: store its result.
    Done(Box<ProcessOutcome>),
    /// The flight's units are in the queue (some batch is not done yet): the job is theirs
    /// now, and whoever claims its finish unit completes it.
    Queued,
}

/// Runs the job's pipeline as units: in place for a small flight; else queues its units
/// and leaves ([`JobRun::Queued`]), or finishes the flight when every batch is done (the
/// finish unit's worker).
pub(crate) fn process_job(
    state: &AppState,
    job: &Job,
    cfg: &ProcessConfig,
    inputs: &[PathBuf],
    lease_lost: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<JobRun, String> {
    let store = state.store();
    let config = state.config();
    let locate = locator(inputs);
    // The attempt's folder exists from the start, as with `pipeline::process`.
    std::fs::create_dir_all(&cfg.out_dir)
        .map_err(|e| format!("cannot create {}: {e}", cfg.out_dir.display()))?;
    // An earlier attempt's prepared flight (and its finished units) is kept.
    let prepared: Prepared = match store.unit_plan(job.id).map_err(|e| e.to_string())? {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| format!("the stored prepared flight cannot be read: {e}"))?,
        None => {
            // The organisation's reference orthophoto, when it uploaded one (issue 12).
            let reference = crate::orgreference::job_reference(state, job.org_id)?;
            prepare(cfg, &reference.options(), on_progress).map_err(|e| e.to_string())?
        }
    };
    let n = prepared.photos.len();
    let per = config.unit_photos.max(1);
    let rows = store.units(job.id, false).map_err(|e| e.to_string())?;
    if n <= per && rows.is_empty() {
        let batch =
            infer_batch(cfg, &prepared, 0..n, &locate, on_progress).map_err(|e| e.to_string())?;
        return finish_located(cfg, &prepared, vec![batch], &locate, on_progress)
            .map(|o| JobRun::Done(Box::new(o)))
            .map_err(|e| e.to_string());
    }
    let text = serde_json::to_string(&prepared)
        .map_err(|e| format!("the prepared flight cannot be written: {e}"))?;
    // Batches already queued (by an earlier attempt, maybe of a worker with another
    // `--unit-photos`) stay as they are; only a missing finish unit is added.
    let planned: Vec<(i64, i64)> = rows
        .iter()
        .filter(|r| r.kind == UnitKind::Batch)
        .map(|r| (r.first, r.count))
        .collect();
    let planned = if planned.is_empty() {
        batches(n, per)
    } else {
        planned
    };
    if !rows.iter().any(|r| r.kind == UnitKind::Finish) {
        store
            .put_units(job, &text, &planned)
            .map_err(|e| e.to_string())?;
    }
    let rows = store.units(job.id, false).map_err(|e| e.to_string())?;
    let batch_rows = || rows.iter().filter(|r| r.kind == UnitKind::Batch);
    if let Some(failed) = batch_rows().find(|r| r.state == "failed") {
        return Err(format!(
            "photos {}-{} failed: {}",
            failed.first + 1,
            failed.first + failed.count,
            failed.error.as_deref().unwrap_or("no reason given")
        ));
    }
    if batch_rows().any(|r| r.state != "done") {
        return Ok(JobRun::Queued);
    }
    // Each batch's result is read from the store and handed over one at a time, in photo
    // order (`rows` is by first photo): the finish keeps their observations on disk, so
    // this process never holds every batch's result (text or values) at once.
    let mut batches = batch_rows().map(|r| {
        let unreadable = |e: String| {
            PipelineError::Units(format!(
                "the result of photos from {} cannot be read: {e}",
                r.first
            ))
        };
        let text = store
            .unit_result(r.id)
            .map_err(|e| unreadable(e.to_string()))?
            .unwrap_or_default();
        serde_json::from_str::<BatchResult>(&text).map_err(|e| unreadable(e.to_string()))
    });
    // The second-view windows read the flight's photos again (`pipeline::units::finish`).
    let outcome = finish_streamed(cfg, &prepared, &mut batches, &locate, on_progress)
        .map_err(|e| e.to_string())?;
    if lease_lost.load(Ordering::SeqCst) {
        return Err("the job was taken over by another worker".into());
    }
    Ok(JobRun::Done(Box::new(outcome)))
}

/// Forgets a finished job's prepared flight and batch results (after its result is stored).
pub(crate) fn forget(state: &AppState, job: &Job) {
    if let Err(e) = state.store().delete_units(job.id) {
        eprintln!("besikta: cannot remove the units of job {}: {e}", job.id);
    }
}

/// Runs a claimed finish unit: takes the job over with the attempt its claim started
/// ([`WorkUnit::job_attempt`]) and runs it as the job's worker would (the prepared flight
/// and every batch's result are in the store, so it finishes the flight). The job's
/// results (or its failure) are stored and the unit marked done in one transaction, as
/// long as the claim is this worker's (`Store::complete_finish`). Otherwise: a unit still
/// this claim's whose job has ended some other way is marked done; one whose job is still
/// running (its result could not be stored) goes back to the queue.
fn run_finish(state: &AppState, unit: &WorkUnit) {
    let store = state.store();
    let job = unit.job();
    let lease = state.config().lease_secs.max(1);
    let heartbeat = Heartbeat::default();
    let renew = |_: &serde_json::Value| {
        let _ = store.renew_unit(unit, lease);
    };
    std::thread::scope(|scope| {
        scope.spawn(|| heartbeat.run(Duration::from_secs((lease as u64 / 3).max(1)), &renew));
        crate::jobs::run_job_as(state, &job, Some(unit));
        heartbeat.finish();
    });
    let settled = match store.job_state(job.id) {
        Ok(Some(s)) => s != "running",
        Ok(None) => true,
        Err(e) => {
            eprintln!("besikta: cannot read the state of job {}: {e}", job.id);
            false
        }
    };
    let stored = if settled {
        store.complete_unit(unit, None, None)
    } else {
        store.release_unit(unit)
    };
    if let Err(e) = stored {
        eprintln!("besikta: cannot store work unit {}: {e}", unit.id);
    }
}

/// Runs one batch unit and stores its result or its error, renewing its lease meanwhile.
fn run_batch(
    state: &AppState,
    unit: &WorkUnit,
    cfg: &ProcessConfig,
    prepared: &Prepared,
    locate: &dyn Fn(&str) -> PathBuf,
    on_progress: &mut dyn FnMut(&Progress),
) {
    let store = state.store();
    let lease = state.config().lease_secs.max(1);
    let heartbeat = Heartbeat::default();
    let renew = |_: &serde_json::Value| {
        let _ = store.renew_unit(unit, lease);
    };
    let range = unit.first.max(0) as usize..(unit.first + unit.count).max(0) as usize;
    let result = std::thread::scope(|scope| {
        scope.spawn(|| heartbeat.run(Duration::from_secs((lease as u64 / 3).max(1)), &renew));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            infer_batch(cfg, prepared, range, locate, on_progress)
        }));
        heartbeat.finish();
        r
    });
    let stored = match result {
        Ok(Ok(batch)) => match serde_json::to_string(&batch) {
            Ok(text) => store.complete_unit(unit, Some(&text), None),
            Err(e) => store.complete_unit(unit, None, Some(&e.to_string())),
        },
        Ok(Err(e)) => {
            let message = crate::jobs::scrub_paths(&e.to_string(), state.config());
            store.complete_unit(unit, None, Some(&message))
        }
        Err(_) => store.complete_unit(unit, None, Some("processing crashed")),
    };
    if let Err(e) = stored {
        eprintln!("besikta: cannot store work unit {}: {e}", unit.id);
    }
    report_units(state, unit);
}

/// The flight's progress while its batches run: units done of batches.
fn report_units(state: &AppState, unit: &WorkUnit) {
    let store = state.store();
    let Ok(rows) = store.units(unit.job_id, false) else {
        return;
    };
    let batches: Vec<_> = rows.iter().filter(|r| r.kind == UnitKind::Batch).collect();
    let done = batches.iter().filter(|r| r.state == "done").count();
    let total = batches.len();
    let progress = serde_json::json!({
        "stage": "infer", "done": done, "total": total, "file": null,
        "units_done": done, "units_total": total,
    });
    let job = Job {
        id: unit.job_id,
        org_id: unit.org_id,
        flight_id: unit.flight_id,
        attempt: unit.job_attempt,
    };
    // The job's lease means nothing while its units run; this writes the flight's progress.
    let _ = store.renew_job(&job, state.config().lease_secs.max(1), &progress);
}

/// Takes one unit of any running job (a batch, or a finish unit) and runs it here; false
/// when none was free.
pub(crate) fn run_one(state: &AppState) -> Result<bool, String> {
    let store = state.store();
    let Some(unit) = store
        .claim_unit(state.config().lease_secs.max(1), None, &worker_id())
        .map_err(|e| e.to_string())?
    else {
        return Ok(false);
    };
    let _held = Held::new(&unit);
    if unit.kind == UnitKind::Finish {
        run_finish(state, &unit);
        return Ok(true);
    }
    let fail = |message: String| {
        let _ = store.complete_unit(&unit, None, Some(&message));
        Ok(true)
    };
    let prepared: Prepared = match store.unit_plan(unit.job_id) {
        Ok(Some(text)) => match serde_json::from_str::<Prepared>(&text) {
            // The footprints' features are for the finish unit's products only.
            Ok(p) => p.without_footprints(),
            Err(e) => return fail(format!("the stored prepared flight cannot be read: {e}")),
        },
        Ok(None) => return fail("the job's prepared flight is gone".into()),
        Err(e) => return fail(e.to_string()),
    };
    // Only this batch's photos are needed here (fetched from an object store).
    let end = ((unit.first + unit.count).max(0) as usize).min(prepared.photos.len());
    let wanted: std::collections::HashSet<&str> = prepared.photos
        [(unit.first.max(0) as usize).min(end)..end]
        .iter()
        .map(|p| crate::findings::basename(&p.capture.file))
        .collect();
    let photos: Vec<Photo> = match store.photos(unit.flight_id) {
        Ok(p) => p
            .into_iter()
            .filter(|p| wanted.contains(crate::findings::basename(&p.path)))
            .collect(),
        Err(e) => return fail(e.to_string()),
    };
    let lease = state.config().lease_secs.max(1);
    let renew = || {
        let _ = store.renew_unit(&unit, lease);
    };
    // A negative id keeps a unit's scratch folder apart from any job's.
    let files = match crate::objects::job_files(
        state,
        -unit.id,
        unit.attempt,
        &photos,
        &format!("flights/{}/unit-{}", unit.flight_id, unit.id),
        &renew,
    ) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    // The organisation's model versions, as the job's worker has them.
    let models = match crate::orgmodels::job_models(state, unit.org_id, -unit.id, unit.attempt) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let cfg = match process_config(
        state,
        unit.org_id,
        &files,
        models.dir.clone(),
        files.out_dir.clone(),
    ) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let locate = locator(&files.inputs);
    // Progress is the job's worker's to report (units done of total); each inferred photo's
    // freed memory goes back to the system, as in the job's own units.
    let (release, mut points) = (state.config().release_memory, ReleasePoints::default());
    run_batch(state, &unit, &cfg, &prepared, &locate, &mut |p| {
        if points.due(p) {
            release();
        }
    });
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_even_and_cover_every_photo_once() {
        assert_eq!(batches(0, 32), vec![]);
        assert_eq!(batches(10, 32), vec![(0, 10)]);
        assert_eq!(batches(10, 4), vec![(0, 4), (4, 3), (7, 3)]);
        assert_eq!(batches(8, 4), vec![(0, 4), (4, 4)]);
        for n in 1..50 {
            for per in 1..12 {
                let b = batches(n, per);
                assert_eq!(b.iter().map(|x| x.1).sum::<i64>(), n as i64);
                assert!(b.iter().all(|x| x.1 >= 1 && x.1 as usize <= per));
                assert!(b.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
            }
        }
    }
}
