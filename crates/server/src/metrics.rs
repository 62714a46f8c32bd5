//! `/healthz`, `/metrics` (Prometheus text format) and the counters behind them.

use crate::auth::{Auth, Right};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of this process's HTTP layer: no organisation's figures, so `/metrics` can
/// show them without a token.
#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub http_errors: AtomicU64,
    /// When the process started, for `besikta_uptime_seconds`.
    pub started: std::sync::OnceLock<std::time::Instant>,
    /// The latest checks of the background refresher ([`start_health_checks`]), which
    /// `/healthz` answers from while they are fresh.
    health: std::sync::Mutex<Option<HealthSnapshot>>,
    /// Whether a background refresher is running (it clears this when it stops): then
    /// `/healthz` never runs the checks itself, however old the latest round.
    health_refresher: std::sync::atomic::AtomicBool,
    /// `/healthz` answers that ran the checks in the request (no refresher, or none of
    /// its rounds finished yet): waits on the blocking threads and the database.
    pub healthz_checks_in_request: AtomicU64,
}

/// The outcome of one round of health checks, and when it was taken.
#[derive(Debug, Clone)]
struct HealthSnapshot {
    at: std::time::Instant,
    database: Result<(), String>,
    storage: Result<(), String>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let m = state.metrics();
    Metrics::add(&m.http_requests, 1);
    if response.status().is_server_error() {
        Metrics::add(&m.http_errors, 1);
    }
    response
}

/// How long each health check may take before the part counts as failed.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The parts the service needs, each checked for real: the database answers a query and
/// the storage of photos and products can be read. Object storage plugs in here
/// ([`check_storage`]).
pub async fn healthz(State(state): State<AppState>) -> Response {
    // With the background refresher running, the answer comes from memory only: no
    // blocking thread, no database lock, so `/healthz` waits for nothing but the async
    // runtime however busy the database and the blocking threads are. A hung part shows
    // when its check times out (CHECK_TIMEOUT); a refresher that finished no round for
    // HEALTH_FRESH (starved, or its runtime stuck) shows as both parts failing. Without a
    // refresher (tests on the router alone), or before its first round, the checks run
    // now, within CHECK_TIMEOUT each.
    let m = state.metrics();
    let latest = m.health.lock().ok().and_then(|h| h.clone());
    let refresher = m.health_refresher.load(Ordering::Acquire);
    let (database, storage) = match latest {
        Some(h) if h.at.elapsed() < HEALTH_FRESH => (h.database, h.storage),
        Some(h) if refresher => {
            let stale = format!(
                "no round of health checks finished for {} s (the service is starved or stuck)",
                h.at.elapsed().as_secs()
            );
            (Err(stale.clone()), Err(stale))
        }
        _ => {
            Metrics::add(&m.healthz_checks_in_request, 1);
            run_checks(&state).await
        }
    };
    let mut failed = false;
    let mut text = String::new();
    for (part, result) in [("database", database), ("storage", storage)] {
        match result {
            Ok(()) => {
                let _ = writeln!(text, "{part}: ok");
            }
            Err(e) => {
                failed = true;
                let _ = writeln!(text, "{part}: {e}");
            }
        }
    }
    // Healthy: a bare `ok` (what load balancers look for); otherwise each part's state.
    if failed {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    } else {
        "ok\n".into_response()
    }
}

/// How often the background refresher checks the parts.
const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// How old a round of checks `/healthz` still answers from. A round takes at most
/// CHECK_TIMEOUT (a hung part then fails it) and the next starts HEALTH_EVERY later, so a
/// round older than this means the refresher itself is not getting to run.
const HEALTH_FRESH: std::time::Duration = std::time::Duration::from_millis(
    CHECK_TIMEOUT.as_millis() as u64 + HEALTH_EVERY.as_millis() as u64 + 2_000,
);

/// Both checks at once: the round takes the slower check's time, not the sum.
async fn run_checks(state: &AppState) -> (Result<(), String>, Result<(), String>) {
    let database = {
        let state = state.clone();
        check(move || {
            state
                .store()
                .job_counts()
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    };
    let storage = {
        let state = state.clone();
        check(move || check_storage(&state))
    };
    tokio::join!(database, storage)
}

/// Checks the parts every [`HEALTH_EVERY`] on the current runtime for as long as the
/// service's state lives, keeping the latest round for `/healthz`.
/// Calling it again while a refresher runs does nothing.
pub fn start_health_checks(state: &AppState) {
    if state
        .metrics()
        .health_refresher
        .swap(true, Ordering::AcqRel)
    {
        return;
    }
    let weak = std::sync::Arc::downgrade(&state.inner);
    tokio::spawn(async move {
        // Clears the flag when the loop ends or the task is dropped with its runtime, so
        // `/healthz` then checks in the request again instead of reporting stale rounds.
        let _running = RefresherRunning(weak.clone());
        loop {
            let Some(inner) = weak.upgrade() else { break };
            let state = AppState { inner };
            let (database, storage) = run_checks(&state).await;
            if let Ok(mut h) = state.metrics().health.lock() {
                *h = Some(HealthSnapshot {
                    at: std::time::Instant::now(),
                    database,
                    storage,
                });
            }
            drop(state);
            tokio::time::sleep(HEALTH_EVERY).await;
        }
    });
}

/// Clears [`Metrics::health_refresher`] when dropped (if the state still lives).
struct RefresherRunning(std::sync::Weak<crate::Inner>);

impl Drop for RefresherRunning {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            let state = AppState { inner };
            state
                .metrics()
                .health_refresher
                .store(false, Ordering::Release);
        }
    }
}

/// Runs a blocking check off the async threads, within [`CHECK_TIMEOUT`].
async fn check(f: impl FnOnce() -> Result<(), String> + Send + 'static) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(format!("the check crashed: {e}")),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}

/// The storage check: the photo and product store answers (the data folder, or the object
/// store of `--storage`), and the data folder's flights/ (the workers' scratch and, without
/// object storage, the photos themselves) can be listed.
fn check_storage(state: &AppState) -> Result<(), String> {
    state
        .storage()
        .health_blocking()
        .map_err(|e| e.to_string())?;
    let flights = state.data_dir().join("flights");
    std::fs::read_dir(&flights)
        .map(|_| ())
        .map_err(|e| format!("cannot read the data folder's flights/ ({e})"))
}

/// Whether the request carries the service's metrics token (compared in constant time).
fn is_operator(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(expected) = state.config().metrics_token.as_deref() else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A Prometheus label value with `\`, `"` and line breaks escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The service-wide figures for the operator: queue depth, jobs per state (in all and per
/// organisation), work units per state and each worker's heartbeat.
fn operator_metrics(state: &AppState, out: &mut String) -> Result<(), ApiError> {
    let store = state.store();
    let all = store.job_counts()?;
    let by_org = store.job_counts_by_org()?;
    let workers = store.workers()?;
    let units = store.unit_counts()?;
    let units_by_org = store.unit_counts_by_org()?;
    let _ = writeln!(
        out,
        "# HELP besikta_queue_depth Jobs waiting for a worker, all organisations.\n# TYPE besikta_queue_depth gauge\nbesikta_queue_depth {}",
        all.queued
    );
    let _ = writeln!(
        out,
        "# HELP besikta_queue_jobs Jobs by state, all organisations.\n# TYPE besikta_queue_jobs gauge"
    );
    for (s, n) in states(&all) {
        let _ = writeln!(out, "besikta_queue_jobs{{state=\"{s}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP besikta_units Work units (batches and finish units) of jobs by state, all organisations.\n# TYPE besikta_units gauge"
    );
    for (s, n) in states(&units) {
        let _ = writeln!(out, "besikta_units{{state=\"{s}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP besikta_org_jobs Jobs by organisation and state.\n# TYPE besikta_org_jobs gauge"
    );
    for org in &by_org {
        for (s, n) in states(&org.jobs) {
            let _ = writeln!(
                out,
                "besikta_org_jobs{{org=\"{}\",state=\"{s}\"}} {n}",
                label(&org.org)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP besikta_org_units Work units by organisation and state.\n# TYPE besikta_org_units gauge"
    );
    for org in &units_by_org {
        for (s, n) in states(&org.jobs) {
            let _ = writeln!(
                out,
                "besikta_org_units{{org=\"{}\",state=\"{s}\"}} {n}",
                label(&org.org)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP besikta_workers Workers with a heartbeat in the database (stopped ones are removed).\n# TYPE besikta_workers gauge\nbesikta_workers {}",
        workers.len()
    );
    let _ = writeln!(
        out,
        "# HELP besikta_worker_heartbeat_age_seconds Seconds since the worker's last heartbeat (every {} s while it lives).\n# TYPE besikta_worker_heartbeat_age_seconds gauge",
        crate::ops::BEAT_EVERY.as_secs()
    );
    for w in &workers {
        let _ = writeln!(
            out,
            "besikta_worker_heartbeat_age_seconds{{worker=\"{}\",host=\"{}\",kind=\"{}\"}} {}",
            label(&w.id),
            label(&w.host),
            label(&w.kind),
            w.seconds_since
        );
    }
    let _ = writeln!(
        out,
        "# HELP besikta_worker_busy 1 while the worker runs a job.\n# TYPE besikta_worker_busy gauge"
    );
    for w in &workers {
        let _ = writeln!(
            out,
            "besikta_worker_busy{{worker=\"{}\"}} {}",
            label(&w.id),
            u8::from(w.job_id.is_some())
        );
    }
    Ok(())
}

fn states(c: &besikta_store::JobCounts) -> [(&'static str, i64); 4] {
    [
        ("queued", c.queued),
        ("running", c.running),
        ("done", c.done),
        ("failed", c.failed),
    ]
}

/// Prometheus text. Without a token: this process's HTTP figures only (they say nothing
/// about any organisation). With an admin token: also that organisation's flights, photos,
/// findings and jobs, and never another's. With the service's metrics token
/// (`--metrics-token-file`): the HTTP figures, the queue of every organisation and the
/// workers' heartbeats.
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Result<Auth, ApiError>,
) -> Result<Response, ApiError> {
    let operator = is_operator(&state, &headers);
    let org = if operator {
        None
    } else if headers.contains_key(header::AUTHORIZATION) {
        let auth = auth?;
        auth.require(Right::Admin)?;
        Some(auth.org_id())
    } else {
        None
    };
    let m = state.metrics();
    let mut out = String::new();
    let mut metric = |kind: &str, name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    metric(
        "counter",
        "besikta_http_requests_total",
        "HTTP requests answered.",
        get(&m.http_requests),
    );
    metric(
        "counter",
        "besikta_http_server_errors_total",
        "HTTP answers with a 5xx status.",
        get(&m.http_errors),
    );
    metric(
        "counter",
        "besikta_healthz_checks_in_request_total",
        "/healthz answers that ran the health checks in the request (no background round yet).",
        get(&m.healthz_checks_in_request),
    );
    let uptime = m
        .started
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
    metric(
        "gauge",
        "besikta_uptime_seconds",
        "Seconds since the process started.",
        uptime,
    );
    // Photo crops of this process (no organisation's figures).
    let crops = state.crops().counters();
    metric(
        "counter",
        "besikta_crop_cache_hits_total",
        "Photo crop requests answered from the in-memory crop cache.",
        crops.hits,
    );
    metric(
        "counter",
        "besikta_crop_cache_misses_total",
        "Photo crop requests not in the crop cache (then served precomputed or decoded).",
        crops.misses,
    );
    metric(
        "counter",
        "besikta_crop_precomputed_served_total",
        "Cache misses answered with the crop made when the flight was processed (no photo decode).",
        crops.precomputed,
    );
    metric(
        "counter",
        "besikta_crop_decodes_total",
        "Photo crops made by decoding the photo in the crop pool.",
        crops.decodes,
    );
    metric(
        "gauge",
        "besikta_crop_cache_bytes",
        "Bytes of finished crops in the crop cache.",
        crops.cached_bytes,
    );
    metric(
        "gauge",
        "besikta_crop_cache_capacity_bytes",
        "Bytes the crop cache may hold (--crop-cache-mb).",
        state.crops().capacity() as u64,
    );
    metric(
        "gauge",
        "besikta_crop_permits",
        "Photo crops made at once (--crop-permits).",
        state.crops().permits() as u64,
    );
    if let Some(org) = org {
        let stats = state.store().org_stats(org)?;
        let n = |v: i64| v.max(0) as u64;
        metric(
            "gauge",
            "besikta_flights",
            "Flights of your organisation.",
            n(stats.flights),
        );
        metric(
            "gauge",
            "besikta_photos",
            "Photos stored for your organisation.",
            n(stats.photos),
        );
        metric(
            "gauge",
            "besikta_photo_bytes",
            "Bytes of your organisation's stored photos.",
            n(stats.photo_bytes),
        );
        metric(
            "gauge",
            "besikta_findings",
            "Findings of your organisation.",
            n(stats.findings),
        );
        let _ = writeln!(
            out,
            "# HELP besikta_jobs Your organisation's jobs by state.\n# TYPE besikta_jobs gauge"
        );
        for (s, n) in states(&stats.jobs) {
            let _ = writeln!(out, "besikta_jobs{{state=\"{s}\"}} {n}");
        }
    }
    if operator {
        operator_metrics(&state, &mut out)?;
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
