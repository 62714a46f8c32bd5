//! Operations of the job workers: heartbeats in the store (so `/metrics` shows how long
//! ago each worker, thread or process, was last seen), and stopping with a deadline: the
//! job in hand either finishes in time or goes back to the queue at once.

use crate::AppState;
use besikta_store::{Job, WorkerBeat};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often each worker records its heartbeat.
pub const BEAT_EVERY: Duration = Duration::from_secs(5);

/// This machine's name (for the heartbeat), or `unknown`.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The jobs in hand, one slot per worker thread.
pub type InHand = [Mutex<Option<Job>>];

fn job_in(slot: &Mutex<Option<Job>>) -> Option<Job> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The heartbeat of worker `i` of this process.
fn beat_of(host: &str, kind: &str, i: usize, job: Option<&Job>) -> WorkerBeat {
    WorkerBeat {
        id: format!("{host}:{}:{i}", std::process::id()),
        host: host.to_string(),
        kind: kind.to_string(),
        job_id: job.map(|j| j.id),
    }
}

/// Records every worker's heartbeat each [`BEAT_EVERY`] until `stop`, then forgets them
/// (a worker that stopped cleanly is not missing).
pub fn heartbeats(state: &AppState, kind: &str, in_hand: &InHand, stop: &AtomicBool) {
    let host = hostname();
    let mut reported = false;
    while !stop.load(Ordering::SeqCst) {
        for (i, slot) in in_hand.iter().enumerate() {
            let beat = beat_of(&host, kind, i, job_in(slot).as_ref());
            if let Err(e) = state.store().beat_worker(&beat) {
                // Once: a database away for a while should not fill the log.
                if !reported {
                    eprintln!("besikta: cannot record the worker heartbeat: {e}");
                    reported = true;
                }
            }
        }
        let next = Instant::now() + BEAT_EVERY;
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for i in 0..in_hand.len() {
        let _ = state
            .store()
            .forget_worker(&beat_of(&host, kind, i, None).id);
    }
}

/// Waits until every thread finished or `deadline` passed; then puts each job still in
/// hand back in the queue (its lease released, so another worker takes it at once).
/// Returns how many were put back.
pub fn drain(
    state: &AppState,
    in_hand: &InHand,
    finished: impl Fn() -> bool,
    deadline: Duration,
) -> usize {
    let until = Instant::now() + deadline;
    while !finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut released = 0;
    for slot in in_hand {
        let Some(job) = job_in(slot) else { continue };
        match state.store().release_job(&job) {
            Ok(true) => {
                released += 1;
                eprintln!(
                    "besikta: job {} not finished within {} s: back in the queue",
                    job.id,
                    deadline.as_secs()
                );
            }
            // Finished (or lost) meanwhile: nothing to give back.
            Ok(false) => {}
            Err(e) => eprintln!(
                "besikta: cannot return job {} to the queue ({e}); it goes back when its lease ends",
                job.id
            ),
        }
    }
    released
}
