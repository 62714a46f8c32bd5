//! The job workers: a fixed number of OS threads (off the async runtime) that take jobs
//! from the database queue and run the pipeline on them.
//!
//! Crash safety comes from the database, not from memory: a job is leased when taken and
//! the lease is renewed with every progress report; a restarted server queues `running`
//! jobs again; each attempt writes into its own folder, and the findings, the flight's
//! state and the folder it points to change in one transaction at the end. A worker that
//! lost its lease (the job was re-queued meanwhile) stores nothing.

use crate::findings::basename;
use crate::{AppState, ServerConfig};
use besikta_pipeline::{ProcessConfig, Progress, ReleasePoints};
use besikta_report::RegisterSource;
use besikta_store::{
    CompleteOutcome, Job, JobResult, NewFinding, RejectedPhoto, Store, StoreError, WorkUnit,
};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often idle workers look at the queue even without a wake-up.
const POLL: Duration = Duration::from_secs(2);

/// Wakes idle workers when a job is queued.
#[derive(Debug, Default)]
pub struct Signal {
    queued: Mutex<u64>,
    cond: Condvar,
}

impl Signal {
    pub fn notify(&self) {
        *self.queued.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cond.notify_all();
    }

    fn wait(&self, seen: &mut u64) {
        let guard = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, POLL, |n| *n == *seen)
            .unwrap_or_else(|p| p.into_inner());
        *seen = *guard;
    }
}

/// The running worker threads; [`Workers::stop`] lets them finish their current job.
#[derive(Debug)]
pub struct Workers {
    stop: Arc<AtomicBool>,
    state: AppState,
    threads: Vec<JoinHandle<()>>,
    /// The job each thread runs now.
    in_hand: Arc<Vec<Mutex<Option<Job>>>>,
    /// The batch unit each thread runs now (issue 15).
    units_in_hand: Vec<crate::units::UnitSlot>,
    heartbeats: Option<JoinHandle<()>>,
}

impl Workers {
    /// Built-in workers of `besikta serve` (heartbeats of kind `serve`).
    pub fn start(state: &AppState) -> Workers {
        Workers::start_as(state, "serve")
    }

    /// Workers whose heartbeats say `kind` (`serve`, or `worker` for `besikta worker`).
    pub fn start_as(state: &AppState, kind: &str) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        let n = state.config().workers.max(1);
        let in_hand: Arc<Vec<Mutex<Option<Job>>>> =
            Arc::new((0..n).map(|_| Mutex::new(None)).collect());
        let units_in_hand: Vec<crate::units::UnitSlot> =
            (0..n).map(|_| Default::default()).collect();
        let threads = (0..n)
            .map(|i| {
                let state = state.clone();
                let stop = stop.clone();
                let in_hand = in_hand.clone();
                let unit_slot = units_in_hand[i].clone();
                std::thread::Builder::new()
                    .name(format!("besikta-worker-{i}"))
                    .spawn(move || {
                        crate::units::hold_units_in(unit_slot);
                        worker_loop(&state, &stop, &in_hand[i])
                    })
                    .expect("the OS lets us start a worker thread")
            })
            .collect();
        let heartbeats = {
            let (state, stop, in_hand) = (state.clone(), stop.clone(), in_hand.clone());
            let kind = kind.to_string();
            std::thread::Builder::new()
                .name("besikta-heartbeat".into())
                .spawn(move || crate::ops::heartbeats(&state, &kind, &in_hand, &stop))
                .ok()
        };
        Workers {
            stop,
            state: state.clone(),
            threads,
            in_hand,
            units_in_hand,
            heartbeats,
        }
    }

    /// Stops taking jobs and gives the jobs in hand `deadline` to finish; those still
    /// running then go back to the queue (their leases released), and so do the batch
    /// units in hand, and are left to be cut off when the process exits. Returns how many
    /// jobs went back.
    pub fn stop_within(self, deadline: Duration) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.state.inner.jobs.notify();
        let threads = &self.threads;
        let released = crate::ops::drain(
            &self.state,
            &self.in_hand,
            || threads.iter().all(|t| t.is_finished()),
            deadline,
        );
        crate::units::release_held(&self.state, &self.units_in_hand, deadline);
        for t in self.threads {
            if t.is_finished() {
                let _ = t.join();
            }
        }
        if let Some(h) = self.heartbeats {
            let _ = h.join();
        }
        released
    }

    /// Stops taking jobs and returns at once: a job still running is cut off when the
    /// process exits and is queued again by the next start, so shutting down never waits
    /// for a long job.
    pub fn abandon(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.state.inner.jobs.notify();
    }

    /// Stops taking jobs and waits for the current ones to end.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.state.inner.jobs.notify();
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(h) = self.heartbeats {
            let _ = h.join();
        }
    }
}

fn worker_loop(state: &AppState, stop: &AtomicBool, in_hand: &Mutex<Option<Job>>) {
    let mut seen = 0;
    while !stop.load(Ordering::SeqCst) {
        let store = state.store();
        if let Err(e) = store.requeue_expired() {
            eprintln!("besikta: cannot re-queue expired jobs: {e}");
        }
        // Batch units of running jobs first: they finish flights already started.
        match crate::units::run_one(state) {
            Ok(true) => {
                // What the unit freed goes back to the system before the next one.
                (state.config().release_memory)();
                continue;
            }
            Ok(false) => {}
            Err(e) => eprintln!("besikta: cannot take a work unit from the queue: {e}"),
        }
        match store.claim_job(state.config().lease_secs.max(1)) {
            Ok(Some(job)) => {
                *in_hand.lock().unwrap_or_else(|p| p.into_inner()) = Some(job.clone());
                run_job(state, &job);
                *in_hand.lock().unwrap_or_else(|p| p.into_inner()) = None;
                // An idle server does not keep the heap of its largest flight.
                (state.config().release_memory)();
            }
            Ok(None) => state.inner.jobs.wait(&mut seen),
            Err(e) => {
                eprintln!("besikta: cannot take a job from the queue: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Text an organisation may read: paths in the data folder made relative to it, the
/// server's own folders named by their role, so no absolute server path leaks.
pub(crate) fn scrub_paths(text: &str, config: &ServerConfig) -> String {
    let mut out = text.to_string();
    let mut replace = |path: &Path, with: &str| {
        let p = path.display().to_string();
        if p.len() > 1 {
            out = out
                .replace(&format!("{p}/"), with)
                .replace(&p, with.trim_end_matches('/'));
        }
    };
    replace(&config.data_dir, "");
    replace(&config.models_dir, "the server's models folder/");
    if let Some(dem) = &config.dem {
        replace(dem, "the server's elevation model/");
    }
    out
}

/// A progress report as stored on the flight, its file relative to the data folder.
fn progress_value(p: &Progress, config: &ServerConfig) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Some(file) = p.file.as_deref() {
        v["file"] = Value::String(scrub_paths(file, config));
    }
    v
}

/// Runs one job to the end, storing its results or its failure.
pub fn run_job(state: &AppState, job: &Job) {
    run_job_as(state, job, None)
}

/// [`run_job`]; with `finish`, the job is run by the claim of its finish unit: its results
/// (or its failure) are stored and the unit marked done in one transaction
/// (`Store::complete_finish`, `Store::fail_finish`), refused when another worker took the
/// unit over (this attempt's products are then removed).
pub(crate) fn run_job_as(state: &AppState, job: &Job, finish: Option<&WorkUnit>) {
    let store = state.store();
    let fail = |message: &str| match finish {
        Some(unit) => store.fail_finish(unit, message),
        None => store.fail_job(job, message),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(state, job)))
        .map(|r| r.map_err(|message| scrub_paths(&message, state.config())));
    let outcome = match result {
        // The flight's units are queued: whoever claims its finish unit completes the job.
        Ok(Ok(None)) => return,
        Ok(Ok(Some(result))) => {
            let stored = match finish {
                Some(unit) => store.complete_finish(unit, &result),
                None => store.complete_job(job, &result),
            };
            match stored {
                // Another worker finishes the job: nothing refers to these products.
                Err(e @ StoreError::ClaimLost { .. }) => {
                    eprintln!("besikta: {e}");
                    Ok((CompleteOutcome::LeaseLost, result.output_dir))
                }
                stored => stored.map(|o| (o, result.output_dir)),
            }
        }
        Ok(Err(message)) => {
            if let Err(e) = fail(&message) {
                eprintln!("besikta: cannot record the failure of job {}: {e}", job.id);
            }
            return;
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            let message = scrub_paths(&message, state.config());
            let _ = fail(&format!("processing crashed: {message}"));
            return;
        }
    };
    match outcome {
        Ok((
            CompleteOutcome::Stored {
                previous_output_dir,
            },
            _,
        )) => {
            if let Some(old) = previous_output_dir {
                crate::objects::remove_products(state, &old);
            }
            crate::units::forget(state, job);
        }
        Ok((CompleteOutcome::LeaseLost, dir)) => {
            crate::objects::remove_products(state, &dir);
        }
        Err(e) => eprintln!("besikta: cannot store the results of job {}: {e}", job.id),
    }
}

pub(crate) fn asset_kind(kind: &str) -> Option<besikta_core::AssetKind> {
    match kind {
        "roads" | "road" => Some(besikta_core::AssetKind::Road),
        "roofs" | "roof" | "buildings" => Some(besikta_core::AssetKind::Roof),
        _ => None,
    }
}

/// Runs the pipeline for one job attempt in its own folder; its typed result is stored
/// (the files it wrote stay for download). `None`: the flight's units were queued and the
/// job is theirs (`crate::units`).
fn execute(state: &AppState, job: &Job) -> Result<Option<JobResult>, String> {
    let store = state.store();
    let config = state.config();
    let data = state.data_dir();
    let org = store
        .org(job.org_id)
        .map_err(|e| e.to_string())?
        .ok_or("the organisation was deleted")?;
    let photos = store.photos(job.flight_id).map_err(|e| e.to_string())?;
    if photos.is_empty() {
        return Err("the flight has no photos".into());
    }
    let rel_out = format!("flights/{}/out-{}-{}", job.flight_id, job.id, job.attempt);
    // The photos in place, or fetched from the object store into this worker's scratch.
    let renew_lease = || {
        let _ = store.renew_job(job, config.lease_secs.max(1), &Value::Null);
    };
    let files =
        crate::objects::job_files(state, job.id, job.attempt, &photos, &rel_out, &renew_lease)?;
    let out_dir = files.out_dir.clone();
    // The server's models, or its manifests with the organisation's own versions in place.
    let models = crate::orgmodels::job_models(state, job.org_id, job.id, job.attempt)?;
    // A folder from an earlier crash of this very attempt number is stale, and so are those
    // of earlier attempts (their workers died or lost the lease; they store nothing).
    for attempt in 1..=job.attempt {
        let _ = std::fs::remove_dir_all(data.join(format!(
            "flights/{}/out-{}-{attempt}",
            job.flight_id, job.id
        )));
    }
    let cfg = process_config(state, org.id, &files, models.dir.clone(), out_dir.clone())?;
    let lease = config.lease_secs.max(1);
    let last_renew = std::cell::Cell::new(Instant::now() - Duration::from_secs(60));
    let lease_lost = AtomicBool::new(false);
    let heartbeat = Heartbeat::default();
    let renew = |progress: &Value| match store.renew_job(job, lease, progress) {
        Ok(true) => {}
        Ok(false) => lease_lost.store(true, Ordering::SeqCst),
        Err(e) => eprintln!("besikta: cannot record progress of job {}: {e}", job.id),
    };
    let mut release = ReleasePoints::default();
    let mut on_progress = |p: &Progress| {
        // What a stage or an inferred photo freed goes back to the system, as in `besikta
        // process`, so a long flight's peak does not creep up (ServerConfig::release_memory).
        if release.due(p) {
            (config.release_memory)();
        }
        // Renewing on every report would write the database per tile; once a second is plenty.
        if last_renew.get().elapsed() >= Duration::from_secs(1) || p.done == p.total {
            last_renew.set(Instant::now());
            let progress = progress_value(p, config);
            renew(&progress);
            heartbeat.set_progress(progress);
        }
    };
    let outcome = std::thread::scope(|scope| {
        // The lease also stays renewed through long stretches without a progress report.
        scope.spawn(|| heartbeat.run(Duration::from_secs((lease as u64 / 3).max(1)), &renew));
        let outcome = crate::units::process_job(
            state,
            job,
            &cfg,
            &files.inputs,
            &lease_lost,
            &mut on_progress,
        );
        heartbeat.finish();
        outcome
    })?;
    let outcome = match outcome {
        crate::units::JobRun::Done(outcome) => *outcome,
        crate::units::JobRun::Queued => {
            let _ = std::fs::remove_dir_all(&out_dir);
            return Ok(None);
        }
    };
    if lease_lost.load(Ordering::SeqCst) {
        let _ = std::fs::remove_dir_all(&out_dir);
        return Err("the job was taken over by another worker".into());
    }
    crate::precrops::render(
        state,
        &outcome.report.findings,
        &photos,
        &files.inputs,
        &out_dir,
        &renew_lease,
    );
    crate::mosaic::render(state, &outcome.captures, &files.inputs, &out_dir);
    files.publish(state, &rel_out)?;
    Ok(Some(job_result(outcome, &rel_out, config)))
}

/// Renews a running job's (or unit's) lease every so often with its last progress, until
/// told to stop.
#[derive(Default)]
pub(crate) struct Heartbeat {
    /// The last progress report (`Null` before the first) and whether the job ended.
    state: Mutex<(Value, bool)>,
    cond: Condvar,
}

impl Heartbeat {
    pub(crate) fn set_progress(&self, progress: Value) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0 = progress;
    }

    pub(crate) fn finish(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.cond.notify_all();
    }

    pub(crate) fn run(&self, every: Duration, renew: &(impl Fn(&Value) + Sync)) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let (g, _) = self
                .cond
                .wait_timeout_while(guard, every, |s| !s.1)
                .unwrap_or_else(|p| p.into_inner());
            guard = g;
            if guard.1 {
                return;
            }
            let progress = guard.0.clone();
            drop(guard);
            renew(&progress);
            guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The pipeline's settings for a job or unit of organisation `org_id`: the photos as
/// `files` has them, the organisation's registers (fetched when in an object store), the
/// job's models folder and the server's elevation model.
pub(crate) fn process_config(
    state: &AppState,
    org_id: i64,
    files: &crate::objects::JobFiles,
    models_dir: std::path::PathBuf,
    out_dir: std::path::PathBuf,
) -> Result<ProcessConfig, String> {
    let store = state.store();
    let config = state.config();
    let org = store
        .org(org_id)
        .map_err(|e| e.to_string())?
        .ok_or("the organisation was deleted")?;
    let registers = store
        .registers(org_id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| {
            Ok(RegisterSource {
                kind: asset_kind(&r.kind),
                ..RegisterSource::new(files.register(state, &r.path)?)
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ProcessConfig {
        inputs: files.inputs.clone(),
        registers,
        models_dir,
        dem: config.dem.clone(),
        crs: org.crs,
        out_dir,
        threads: config.threads_per_job.max(1),
        device: config.device,
    })
}

/// What a finished attempt stores: the report's typed findings, their photos named by file
/// name (photo names are unique within a flight; the store keeps no server paths), and the
/// photos the pipeline rejected.
pub fn job_result(
    outcome: besikta_pipeline::ProcessOutcome,
    rel_out: &str,
    config: &ServerConfig,
) -> JobResult {
    let findings = outcome
        .report
        .findings
        .into_iter()
        .map(|mut f| {
            for o in &mut f.observations {
                o.photo = basename(&o.photo).to_string();
            }
            NewFinding::new(f)
        })
        .collect();
    let rejected = outcome
        .summary
        .rejected
        .into_iter()
        .map(|r| RejectedPhoto {
            file: basename(&r.file).to_string(),
            reason: scrub_paths(&r.reason, config),
        })
        .collect();
    JobResult {
        output_dir: rel_out.to_string(),
        findings,
        rejected,
    }
}

/// Deletes job folders no flight points to (left by a crash mid-job).
pub fn remove_orphan_outputs(store: &dyn Store, data_dir: &Path) {
    let Ok(keep) = store.output_dirs() else {
        return;
    };
    let Ok(flights) = std::fs::read_dir(data_dir.join("flights")) else {
        return;
    };
    for flight in flights.flatten() {
        let Ok(entries) = std::fs::read_dir(flight.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !name.starts_with("out-") {
                continue;
            }
            let rel = format!("flights/{}/{name}", flight.file_name().to_string_lossy());
            // `out-<job>-<attempt>`: a job running now (in another process sharing the
            // folder and the database) is still writing there.
            let running = name
                .strip_prefix("out-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|id| id.parse::<i64>().ok())
                .is_some_and(|id| store.job_state(id).ok().flatten().as_deref() == Some("running"));
            if !keep.contains(&rel) && !running {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_and_errors_carry_no_server_paths() {
        let mut config = ServerConfig::new("/srv/besikta", "/opt/models");
        config.dem = Some("/opt/dem.tif".into());
        let p = Progress {
            stage: besikta_pipeline::Stage::Infer,
            done: 1,
            total: 3,
            file: Some("/srv/besikta/flights/7/photos/DJI_0001.JPG".into()),
        };
        let v = progress_value(&p, &config);
        assert_eq!(v["file"], "flights/7/photos/DJI_0001.JPG");
        assert_eq!(v["done"], 1);
        assert_eq!(
            scrub_paths(
                "no models found in /opt/models: put manifests there; cannot read /opt/dem.tif",
                &config
            ),
            "no models found in the server's models folder: put manifests there; cannot read the server's elevation model"
        );
        assert_eq!(
            scrub_paths(
                "cannot read /srv/besikta/orgs/1/registers/roads.gpkg",
                &config
            ),
            "cannot read orgs/1/registers/roads.gpkg"
        );
    }
}
