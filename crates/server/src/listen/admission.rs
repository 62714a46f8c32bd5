//! Admission control of the HTTP listener: at most [`NetLimits::max_active_requests`]
//! requests are worked on at once, the others wait their turn (first come, first served)
//! parked, not polled. A saturated service then has a short runtime queue, so `/healthz`,
//! which never waits here, answers within milliseconds however many clients hammer the
//! crops or the findings; the waiting requests lose nothing but their place in line.
//! Uploads never wait either: their bodies take as long as the network does and would
//! hold a place all that time.
//!
//! A streamed answer (a body whose size is not known when its head is ready, such as a
//! findings page without `limit`, read from the store a chunk at a time while it is
//! written) goes on working after its head: it gives back its request place and then
//! holds a place of [`NetLimits::max_active_streams`] from before its head is sent until
//! its body is written or dropped. Streams are limited apart from requests, so slow
//! readers of large pages hold stream places only and never keep crops or other quick
//! answers waiting.

use super::{is_upload, NetLimits};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The places of [`NetLimits::max_active_requests`] and of
/// [`NetLimits::max_active_streams`]; `None`: no limit (0).
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    requests: Option<Arc<Semaphore>>,
    streams: Option<Arc<Semaphore>>,
}

impl Admission {
    pub(crate) fn new(limits: &NetLimits) -> Admission {
        let places = |n: usize| {
            let n = n.min(Semaphore::MAX_PERMITS);
            (n > 0).then(|| Arc::new(Semaphore::new(n)))
        };
        Admission {
            requests: places(limits.max_active_requests),
            streams: places(limits.max_active_streams),
        }
    }
}

/// Requests that never wait for a place: the health check (what load balancers and
/// supervisors look at must not queue behind the load) and uploads.
pub(crate) fn exempt(method: &Method, path: &str) -> bool {
    path == "/healthz" || is_upload(method, path)
}

/// Middleware: waits for a place unless the request is [`exempt`]; the place is held
/// until the response's head is ready. A [`streamed`] answer then waits for a stream
/// place (before its head is sent) and holds it until its body is written or dropped.
pub(crate) async fn admit(
    State(admission): State<Admission>,
    request: Request,
    next: Next,
) -> Response {
    if exempt(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let response = {
        // The semaphores are never closed, so acquiring only fails if they were: serve
        // anyway.
        let _place = match admission.requests.as_ref() {
            Some(places) => places.acquire().await.ok(),
            None => None,
        };
        next.run(request).await
    };
    match admission.streams {
        Some(streams) if streamed(&response) => {
            let place = streams.acquire_owned().await.ok();
            response.map(|body| {
                Body::new(HeldBody {
                    inner: body,
                    _place: place,
                })
            })
        }
        _ => response,
    }
}

/// Whether the answer's body is still to be made when its head is ready: its size is not
/// known (a stream), as opposed to bytes already in memory.
pub(crate) fn streamed(response: &Response) -> bool {
    let body = response.body();
    !body.is_end_stream() && body.size_hint().exact().is_none()
}

/// A response body holding a stream place until it is written to its end or dropped
/// (the client went away, the connection was cut).
struct HeldBody {
    inner: Body,
    _place: Option<OwnedSemaphorePermit>,
}

impl HttpBody for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The default number of places: four per core (at least 4), so handlers that wait on
/// I/O or on the crop pool still leave every core busy.
pub(crate) fn default_places() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 4).max(4)
}

/// The default number of stream places: two per core (at least 2). A stream works a
/// chunk at a time on a blocking thread, so a few at once keep the cores busy.
pub(crate) fn default_stream_places() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 2).max(2)
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
        assert!(Admission::new(&none).requests.is_none());
        assert!(
            Admission::new(&none).streams.is_some(),
            "streams: their own limit"
        );
        let two = NetLimits {
            max_active_requests: 2,
            max_active_streams: 0,
            ..NetLimits::default()
        };
        let places = Admission::new(&two).requests.expect("a limit");
        assert_eq!(places.available_permits(), 2);
        assert!(Admission::new(&two).streams.is_none());
        assert!(default_places() >= 4);
        assert!(default_stream_places() >= 2);
    }
}
