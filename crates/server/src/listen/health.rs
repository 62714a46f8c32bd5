//! A thread of its own for the connections of health checkers: a connection whose first
//! request is `GET /healthz` is served on a one-thread runtime apart from the service's
//! workers, so a probe waits for nothing the crops, findings pages and store calls keep
//! busy (they block the workers' threads at times). `/healthz` is answered there from the
//! background checks' state; any other request on such a connection is handed to the
//! service's runtime and only its bytes pass through this thread. The accept loop runs
//! here too, so a checker that opens a new connection per probe is accepted and told
//! apart without the workers; every other connection is moved to the service's runtime
//! once its first bytes show it is not a probe.

use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit};

/// The health thread's runtime; the thread ends when this is dropped.
pub(crate) struct HealthThread {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl HealthThread {
    /// Starts the thread; `None` (then every connection is served on the workers) when
    /// the system refuses a thread or a runtime.
    pub(crate) fn start() -> Option<HealthThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("besikta-health".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .ok()?;
        Some(HealthThread {
            handle,
            _stop: stop,
        })
    }

    /// Runs `task` on the health thread.
    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }
}

/// Whether the connection's first bytes are `GET /healthz `; `None` when nothing arrived
/// within `wait` (the header timeout: the connection is then closed, as it would be).
pub(crate) async fn is_probe(stream: &TcpStream, wait: Duration) -> Option<bool> {
    const PROBE: &[u8] = b"GET /healthz ";
    let mut first = [0u8; PROBE.len()];
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + wait;
    // A request line split over packets: look again until it is told apart.
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut first))
            .await
            .ok()?
            .ok()?;
        if n == 0 || first[..n] != PROBE[..n] {
            return Some(false);
        }
        if n == PROBE.len() {
            return Some(true);
        }
        if n == seen {
            // No new bytes since the last look: wait a little instead of spinning.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen = n;
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// Serves the connection on the health thread: `/healthz` there, anything else on `main`.
pub(crate) fn serve(
    health: &HealthThread,
    stream: TcpStream,
    builder: hyper::server::conn::http1::Builder,
    app: Router,
    main: Handle,
    closed: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let Ok(stream) = stream.into_std() else {
        return;
    };
    health.handle.spawn(async move {
        // Registered with this thread's reactor.
        let Ok(stream) = TcpStream::from_std(stream) else {
            return;
        };
        let svc = TowerToHyperService::new(app);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let svc = svc.clone();
            let main = main.clone();
            async move {
                if request.uri().path() == "/healthz" {
                    return hyper::service::Service::call(&svc, request).await;
                }
                let answer =
                    main.spawn(async move { hyper::service::Service::call(&svc, request).await });
                match answer.await {
                    Ok(response) => response,
                    Err(_) => Ok((
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "the request's handler stopped; try again\n",
                    )
                        .into_response()),
                }
            }
        });
        super::serve_until_closed(&builder, stream, service, closed).await;
        drop(permit);
    });
}
