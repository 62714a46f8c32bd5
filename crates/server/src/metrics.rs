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

pub async fn healthz(State(state): State<AppState>) -> Response {
    // Healthy means the database answers, not just that the socket is open.
    match state.store().job_counts() {
        Ok(_) => "ok\n".into_response(),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("database: {e}\n"),
        )
            .into_response(),
    }
}

/// Prometheus text. Without a token: this process's HTTP figures only (they say nothing
/// about any organisation). With an admin token: also that organisation's flights, photos,
/// findings and jobs, and never another's.
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Result<Auth, ApiError>,
) -> Result<Response, ApiError> {
    let org = if headers.contains_key(header::AUTHORIZATION) {
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
        for (s, n) in [
            ("queued", stats.jobs.queued),
            ("running", stats.jobs.running),
            ("done", stats.jobs.done),
            ("failed", stats.jobs.failed),
        ] {
            let _ = writeln!(out, "besikta_jobs{{state=\"{s}\"}} {n}");
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
