//! A job as work units (issue 15). The worker that claims a flight's job prepares it
//! (`pipeline::units::prepare`: ingest, georeferencing, alignment, coverage plan), stores
//! the prepared flight and queues batch units of at most `ServerConfig::unit_photos`
//! photos; every worker (threads of `besikta serve`, `besikta worker` processes) takes
//! batch units before new jobs, and the job's worker takes its own too. When every batch
//! is done, the job's worker finishes the flight (`pipeline::units::finish`) and stores
//! it as before. A unit whose worker dies goes to another after its lease; finished
//! units keep their results, also through a new attempt of the job (the prepared flight
//! is kept with them). A flight of at most `unit_photos` photos stays one unit, run in
//! place without queue rows.

use crate::jobs::{process_config, Heartbeat};
use crate::AppState;
use besikta_pipeline::units::{finish, infer_batch, prepare, BatchResult, Prepared};
use besikta_pipeline::{ProcessConfig, ProcessOutcome, Progress};
use besikta_store::{Job, Photo, WorkUnit};
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

/// How often the job's worker looks at its units while others run them.
const POLL_UNITS: Duration = Duration::from_millis(500);

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

/// Runs the job's pipeline as units: in place for a small flight, else through the queue.
/// `on_units(done, total)` reports the units while other workers run them.
pub(crate) fn process_job(
    state: &AppState,
    job: &Job,
    cfg: &ProcessConfig,
    inputs: &[PathBuf],
    lease_lost: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
    on_units: &mut dyn FnMut(usize, usize),
) -> Result<ProcessOutcome, String> {
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
    if n <= per
        && store
            .units(job.id, false)
            .map_err(|e| e.to_string())?
            .is_empty()
    {
        let batch =
            infer_batch(cfg, &prepared, 0..n, &locate, on_progress).map_err(|e| e.to_string())?;
        return finish(cfg, &prepared, vec![batch], on_progress).map_err(|e| e.to_string());
    }
    let text = serde_json::to_string(&prepared)
        .map_err(|e| format!("the prepared flight cannot be written: {e}"))?;
    store
        .put_units(job, &text, &batches(n, per))
        .map_err(|e| e.to_string())?;
    let lease = config.lease_secs.max(1);
    let me = worker_id();
    loop {
        if lease_lost.load(Ordering::SeqCst) {
            return Err("the job was taken over by another worker".into());
        }
        // The job's own units first, like any other worker would.
        if let Some(unit) = store
            .claim_unit(lease, Some(job.id), &me)
            .map_err(|e| e.to_string())?
        {
            let _held = Held::new(&unit);
            run_batch(state, &unit, cfg, &prepared, &locate, on_progress);
            continue;
        }
        let rows = store.units(job.id, false).map_err(|e| e.to_string())?;
        if let Some(failed) = rows.iter().find(|r| r.state == "failed") {
            return Err(format!(
                "photos {}-{} failed: {}",
                failed.first + 1,
                failed.first + failed.count,
                failed.error.as_deref().unwrap_or("no reason given")
            ));
        }
        let done = rows.iter().filter(|r| r.state == "done").count();
        on_units(done, rows.len());
        if done == rows.len() {
            break;
        }
        std::thread::sleep(POLL_UNITS);
    }
    let batches = store
        .units(job.id, true)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| {
            let text = r.result.unwrap_or_default();
            serde_json::from_str::<BatchResult>(&text)
                .map_err(|e| format!("the result of photos from {} cannot be read: {e}", r.first))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let outcome = finish(cfg, &prepared, batches, on_progress).map_err(|e| e.to_string())?;
    if !lease_lost.load(Ordering::SeqCst) {
        if let Err(e) = store.delete_units(job.id) {
            eprintln!("besikta: cannot remove the units of job {}: {e}", job.id);
        }
    }
    Ok(outcome)
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
}

/// Takes one batch unit of any running job and runs it here; false when none was free.
pub(crate) fn run_one(state: &AppState) -> Result<bool, String> {
    let store = state.store();
    let Some(unit) = store
        .claim_unit(state.config().lease_secs.max(1), None, &worker_id())
        .map_err(|e| e.to_string())?
    else {
        return Ok(false);
    };
    let _held = Held::new(&unit);
    let fail = |message: String| {
        let _ = store.complete_unit(&unit, None, Some(&message));
        Ok(true)
    };
    let prepared: Prepared = match store.unit_plan(unit.job_id) {
        Ok(Some(text)) => match serde_json::from_str(&text) {
            Ok(p) => p,
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
    // Progress is the job's worker's to report (units done of total).
    run_batch(state, &unit, &cfg, &prepared, &locate, &mut |_| {});
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
