//! `/healthz` does not wait for the busy parts of the service (issue 11): with the store
//! held by a write waiting on the database's lock and every blocking thread taken, it
//! still answers each request from the background checks, says which parts no longer
//! answer once their checks time out, and never runs the checks in the request itself.
//! SQLite, or PostgreSQL with `BESIKTA_TEST_DATABASE=postgres`.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{env, Env};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for one `/healthz` answer: generous (a loaded machine), but an answer
/// that waited for the held database would wait until the end of the test.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

async fn health(e: &Env) -> (StatusCode, String) {
    let r = tokio::time::timeout(
        ANSWER_WITHIN,
        e.send(Method::GET, "/healthz", None, &[], Body::empty()),
    )
    .await
    .expect("/healthz answered while the store was held");
    (r.status, r.text())
}

/// Polls `/healthz` until it is healthy (at most [`ANSWER_WITHIN`]).
async fn until_healthy(e: &Env) {
    let start = Instant::now();
    loop {
        let answer = health(e).await;
        if answer == (StatusCode::OK, "ok\n".to_string()) {
            return;
        }
        assert!(start.elapsed() < ANSWER_WITHIN, "never healthy: {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Takes the database's write lock from a connection of the test's own and keeps it until
/// the returned sender is used (or dropped); returns once the lock is held.
fn hold_database(e: &Env) -> std::sync::mpsc::Sender<()> {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held, is_held) = std::sync::mpsc::channel::<()>();
    let database = e.database.clone();
    let file = e.dir.path().join("besikta.db");
    std::thread::spawn(move || match database {
        Some(url) => {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut tx = c.transaction().unwrap();
            tx.batch_execute("LOCK TABLE orgs, jobs IN ACCESS EXCLUSIVE MODE")
                .unwrap();
            held.send(()).unwrap();
            let _ = released.recv();
            tx.rollback().unwrap();
        }
        None => {
            let c = rusqlite::Connection::open(file).unwrap();
            c.execute_batch("BEGIN IMMEDIATE; UPDATE orgs SET name = name;")
                .unwrap();
            held.send(()).unwrap();
            let _ = released.recv();
            c.execute_batch("ROLLBACK;").unwrap();
        }
    });
    is_held.recv().unwrap();
    release
}

/// Sets the flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn healthz_answers_while_the_store_is_held_and_the_blocking_threads_are_taken() {
    let e = env();
    // One blocking thread: a task that keeps it takes them all.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        besikta_server::start_health_checks(&e.state);
        let in_request = || {
            e.state
                .metrics()
                .healthz_checks_in_request
                .load(Ordering::Relaxed)
        };
        // Healthy from the background: before the refresher's first round, `/healthz` runs
        // the checks in the request, and a test that held the store then would see that
        // request wait and time out, and the first round land healthy after it.
        let start = Instant::now();
        loop {
            until_healthy(&e).await;
            let before = in_request();
            until_healthy(&e).await;
            if in_request() == before {
                break;
            }
            assert!(start.elapsed() < ANSWER_WITHIN, "the refresher never finished a round");
        }
        let before = in_request();

        // The database is locked by another connection, and the one blocking thread is
        // taken by store writes waiting on that lock (with SQLite, inside the store's
        // connection lock) until the test lets go.
        let release = hold_database(&e);
        let stop = Arc::new(AtomicBool::new(false));
        // Lets go on a failed assertion too, so the runtime can shut down.
        let _stop_on_drop = StopOnDrop(stop.clone());
        let writer = {
            let state = e.state.clone();
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || {
                let mut tries = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = state.store().ensure_org("Held", None);
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                tries
            })
        };

        // Every request is answered: healthy until the background checks, queued behind
        // the taken thread, time out; then the parts are reported as not answering (in a
        // round under way when the thread was taken, one check may still have passed).
        let start = Instant::now();
        let mut healthy_answers = 0u32;
        loop {
            let (status, text) = health(&e).await;
            if status == StatusCode::OK {
                assert_eq!(text, "ok\n");
                healthy_answers += 1;
            } else {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
                for line in text.lines() {
                    assert!(
                        line.ends_with(": ok") || line.contains(": no answer within"),
                        "{text}"
                    );
                }
                if text.contains("database: no answer within")
                    && text.contains("storage: no answer within")
                {
                    break;
                }
            }
            assert!(
                start.elapsed() < ANSWER_WITHIN,
                "the background checks never reported the held parts"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A few more answers: still at once, still the background's verdict.
        for _ in 0..20 {
            let (status, text) = health(&e).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
            assert!(text.contains("database: no answer within"), "{text}");
        }
        assert!(
            !writer.is_finished(),
            "the store and the blocking thread were held throughout"
        );
        assert_eq!(
            in_request(),
            before,
            "no /healthz answer ran the checks in the request ({healthy_answers} healthy answers first)"
        );

        // Let go: healthy again.
        stop.store(true, Ordering::Relaxed);
        drop(release);
        let tries = writer.await.unwrap();
        assert!(tries >= 1);
        until_healthy(&e).await;
    });
    runtime.shutdown_timeout(Duration::from_secs(30));
}
