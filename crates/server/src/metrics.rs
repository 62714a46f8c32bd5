//! `/healthz`, `/metrics` (Prometheus text format) and the counters behind them.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since the process started.
#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub http_errors: AtomicU64,
    pub upload_bytes: AtomicU64,
    pub photos_stored: AtomicU64,
    pub photos_duplicate: AtomicU64,
    pub photos_rejected: AtomicU64,
    pub jobs_done: AtomicU64,
    pub jobs_failed: AtomicU64,
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

pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = state.metrics();
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    counter(
        "besikta_http_requests_total",
        "HTTP requests answered.",
        get(&m.http_requests),
    );
    counter(
        "besikta_http_server_errors_total",
        "HTTP answers with a 5xx status.",
        get(&m.http_errors),
    );
    counter(
        "besikta_upload_bytes_total",
        "Photo bytes received.",
        get(&m.upload_bytes),
    );
    counter(
        "besikta_photos_stored_total",
        "Photos stored.",
        get(&m.photos_stored),
    );
    counter(
        "besikta_photos_duplicate_total",
        "Uploads of a photo already stored (no-ops).",
        get(&m.photos_duplicate),
    );
    counter(
        "besikta_photos_rejected_total",
        "Uploads refused (corrupt, too large, disk full).",
        get(&m.photos_rejected),
    );
    counter(
        "besikta_jobs_done_total",
        "Processing jobs finished by this process.",
        get(&m.jobs_done),
    );
    counter(
        "besikta_jobs_failed_total",
        "Processing jobs failed in this process.",
        get(&m.jobs_failed),
    );
    if let Ok(jobs) = state.store().job_counts() {
        let _ = writeln!(
            out,
            "# HELP besikta_jobs Jobs in the queue by state.\n# TYPE besikta_jobs gauge"
        );
        for (s, n) in [
            ("queued", jobs.queued),
            ("running", jobs.running),
            ("done", jobs.done),
            ("failed", jobs.failed),
        ] {
            let _ = writeln!(out, "besikta_jobs{{state=\"{s}\"}} {n}");
        }
    }
    if let Ok(n) = state.store().finding_count() {
        let _ = writeln!(out, "# HELP besikta_findings Findings stored.\n# TYPE besikta_findings gauge\nbesikta_findings {n}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
