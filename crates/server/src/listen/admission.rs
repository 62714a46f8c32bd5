//! Admission control of the HTTP listener: at most [`NetLimits::max_active_requests`]
//! requests are worked on at once, the others wait their turn (first come, first served)
//! parked, not polled. A saturated service then has a short runtime queue, so `/healthz`,
//! which never waits here, answers within milliseconds however many clients hammer the
//! crops or the findings; the waiting requests lose nothing but their place in line.
//! Uploads never wait either: their bodies take as long as the network does and would
//! hold a place all that time.

use super::{is_upload, NetLimits};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The places of [`NetLimits::max_active_requests`]; `None`: no limit (0).
#[derive(Debug, Clone)]
pub(crate) struct Admission(Option<Arc<Semaphore>>);

impl Admission {
    pub(crate) fn new(limits: &NetLimits) -> Admission {
        let n = limits.max_active_requests.min(Semaphore::MAX_PERMITS);
        Admission((n > 0).then(|| Arc::new(Semaphore::new(n))))
    }
}

/// Requests that never wait for a place: the health check (what load balancers and
/// supervisors look at must not queue behind the load) and uploads.
pub(crate) fn exempt(method: &Method, path: &str) -> bool {
    path == "/healthz" || is_upload(method, path)
}

/// Middleware: waits for a place unless the request is [`exempt`]; the place is held
/// until the response's head is ready (a streamed body goes on without it).
pub(crate) async fn admit(
    State(admission): State<Admission>,
    request: Request,
    next: Next,
) -> Response {
    let Some(places) = admission.0.as_ref() else {
        return next.run(request).await;
    };
    if exempt(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    // The semaphore is never closed, so acquiring only fails if it were: serve anyway.
    let _place = places.acquire().await.ok();
    next.run(request).await
}

/// The default number of places: four per core (at least 4), so handlers that wait on
/// I/O or on the crop pool still leave every core busy.
pub(crate) fn default_places() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 4).max(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_uploads_never_wait_for_a_place() {
        assert!(exempt(&Method::GET, "/healthz"));
        assert!(exempt(&Method::PATCH, "/api/v1/flights/3/uploads/abc"));
        assert!(exempt(&Method::POST, "/api/v1/flights/3/photos"));
        assert!(!exempt(&Method::GET, "/api/v1/findings/7/photo.jpg"));
        assert!(!exempt(&Method::GET, "/api/v1/flights/3/findings.geojson"));
        assert!(!exempt(&Method::GET, "/healthz/x"));
        assert!(!exempt(&Method::GET, "/metrics"));
    }

    #[test]
    fn zero_places_means_no_limit() {
        let none = NetLimits {
            max_active_requests: 0,
            ..NetLimits::default()
        };
        assert!(Admission::new(&none).0.is_none());
        let two = NetLimits {
            max_active_requests: 2,
            ..NetLimits::default()
        };
        let places = Admission::new(&two).0.expect("a limit");
        assert_eq!(places.available_permits(), 2);
        assert!(default_places() >= 4);
    }
}
