//! The HTTP listener: our own accept loop on hyper, so that a hostile or careless client
//! cannot hold the service: a header-read timeout (slow-loris, and idle keep-alive
//! connections), a time limit per request except for upload bodies (which instead must
//! keep moving: an idle timeout per chunk), a connection limit (the connection over it is
//! answered 503 at once and closed), and graceful shutdown with a deadline.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

mod admission;
mod health;

/// Time and connection limits of the HTTP listener.
#[derive(Debug, Clone)]
pub struct NetLimits {
    /// A request's head (line and headers) must arrive within this; an idle keep-alive
    /// connection is closed after it too.
    pub header_timeout: Duration,
    /// Longest time to answer a request (uploads excepted: see `body_idle_timeout`).
    pub request_timeout: Duration,
    /// Longest pause between two pieces of a request body; an upload may take as long as
    /// it needs while its bytes keep coming.
    pub body_idle_timeout: Duration,
    /// Open connections at most; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// On shutdown, how long open requests may take to finish before they are cut.
    pub drain_timeout: Duration,
    /// Requests worked on at once at most; the others wait their turn, so `/healthz`
    /// (never held back, nor are uploads) answers at once under load. 0: no limit.
    /// See [`admission`].
    pub max_active_requests: usize,
    /// Streamed answers (a findings page without `limit`) being written at once at most;
    /// the next waits for a place before its head is sent. Apart from
    /// `max_active_requests`, so slow readers of large pages never hold back other
    /// requests. 0: no limit. See [`admission`].
    pub max_active_streams: usize,
}

impl Default for NetLimits {
    fn default() -> NetLimits {
        NetLimits {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            body_idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            drain_timeout: Duration::from_secs(20),
            max_active_requests: admission::default_places(),
            max_active_streams: admission::default_stream_places(),
        }
    }
}

/// Whether a request carries an upload body, which may take longer than
/// [`NetLimits::request_timeout`]: tus PATCH, multipart photos, register uploads.
fn is_upload(method: &Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(
        (method, parts.as_slice()),
        (&Method::PATCH, ["flights", _, "uploads", _])
            | (&Method::POST, ["flights", _, "photos"])
            | (&Method::PUT, ["registers", _])
    )
}

/// Middleware: each request body must keep moving; requests other than uploads must be
/// answered within the request timeout.
async fn time_limits(
    State(limits): State<Arc<NetLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let upload = is_upload(request.method(), request.uri().path());
    let request =
        request.map(|body| Body::new(IdleTimeoutBody::new(body, limits.body_idle_timeout)));
    if upload {
        return next.run(request).await;
    }
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} s; try again later or ask for less (paging)\n",
                limits.request_timeout.as_secs()
            ),
        )
            .into_response(),
    }
}

/// A request body that fails when no piece of it arrives for `idle`.
struct IdleTimeoutBody {
    inner: Body,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeoutBody {
    fn new(inner: Body, idle: Duration) -> IdleTimeoutBody {
        IdleTimeoutBody {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

/// The error of a body that stopped moving.
#[derive(Debug)]
struct BodyIdle(Duration);

impl std::fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no bytes of the request body arrived for {} s; the connection was closed (resume the upload)",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyIdle {}

impl HttpBody for IdleTimeoutBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + this.idle;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyIdle(this.idle))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Answers a connection over the limit with 503 and closes it, without reading it.
async fn refuse(mut stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Retry-After: 1\r\nConnection: close\r\nContent-Length: 51\r\n\r\nthe server has too many open connections; retry\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(BUSY).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// What the accept loop hands each connection.
#[derive(Clone)]
struct Accepting {
    app: Router,
    builder: hyper::server::conn::http1::Builder,
    open: Arc<Semaphore>,
    closed: watch::Receiver<bool>,
    health: Option<Arc<health::HealthThread>>,
    /// The service's runtime: every connection that is not a health checker's is served
    /// there.
    main: tokio::runtime::Handle,
    header_timeout: Duration,
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes; then stops
/// accepting, lets open requests finish for [`NetLimits::drain_timeout`] and returns
/// (connections still open then are dropped).
///
/// The accept loop runs on the health thread when there is one, so a checker that opens
/// a new connection per probe is accepted and told apart even while the service's worker
/// threads are all blocked; other connections are handed to the service's runtime at
/// once (see [`health`]).
pub async fn serve_on(
    listener: TcpListener,
    app: Router,
    limits: NetLimits,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            admission::Admission::new(&limits),
            admission::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limits.clone(),
            time_limits,
        ));
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let open = Arc::new(Semaphore::new(max));
    let (closing, closed) = watch::channel(false);
    let health = health::HealthThread::start().map(Arc::new);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let accepting = Accepting {
        app,
        builder,
        open: open.clone(),
        closed,
        health: health.clone(),
        main: tokio::runtime::Handle::current(),
        header_timeout: limits.header_timeout,
    };
    // On the health thread when there is one (its reactor then owns the listener).
    match health.as_deref() {
        Some(h) => {
            let std_listener = match listener.into_std() {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("besikta: cannot hand the listener to the health thread: {e}");
                    return;
                }
            };
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = h.spawn(async move {
                match TcpListener::from_std(std_listener) {
                    Ok(listener) => {
                        let stopped = async {
                            let _ = stopped.await;
                        };
                        accept_loop(listener, accepting, stopped).await
                    }
                    Err(e) => eprintln!("besikta: cannot listen on the health thread: {e}"),
                }
            });
            shutdown.await;
            let _ = stop.send(());
            let _ = task.await;
        }
        None => accept_loop(listener, accepting, shutdown).await,
    }
    let _ = closing.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain_timeout, open.acquire_many(all))
        .await
        .is_err()
    {
        eprintln!(
            "besikta: requests still open after {} s were cut",
            limits.drain_timeout.as_secs()
        );
    }
}

/// Accepts connections until `shutdown` completes, then drops the listener. Runs on the
/// health thread or, without one, on the service's runtime.
async fn accept_loop(
    listener: TcpListener,
    accepting: Accepting,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    eprintln!("besikta: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = accepting.open.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let a = accepting.clone();
        tokio::spawn(async move {
            // A health checker's connection: served on the health thread.
            if let Some(health) = a.health.as_deref() {
                match health::is_probe(&stream, a.header_timeout).await {
                    Some(true) => {
                        health::serve(health, stream, a.builder, a.app, a.main, a.closed, permit);
                        return;
                    }
                    Some(false) => {}
                    // Nothing arrived within the header timeout: closed, as hyper would.
                    None => return,
                }
            }
            serve_connection(stream, a, permit);
        });
    }
    drop(listener);
}

/// Serves a connection on the service's runtime (moved there from the health thread's
/// reactor when it was accepted on that thread).
fn serve_connection(stream: TcpStream, a: Accepting, permit: tokio::sync::OwnedSemaphorePermit) {
    let Ok(stream) = stream.into_std() else {
        return;
    };
    let main = a.main.clone();
    main.spawn(async move {
        // Registered with the service runtime's reactor.
        let Ok(stream) = TcpStream::from_std(stream) else {
            return;
        };
        let service = TowerToHyperService::new(a.app);
        serve_until_closed(&a.builder, stream, service, a.closed).await;
        drop(permit);
    });
}

/// Serves one connection with `service` until the client is done or the listener closes
/// (then the requests in hand finish and the connection ends).
async fn serve_until_closed<S>(
    builder: &hyper::server::conn::http1::Builder,
    stream: TcpStream,
    service: S,
    mut closed: watch::Receiver<bool>,
) where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        // Only ever set to true (or dropped): either way, time to close.
        _ = closed.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_told_apart_from_other_requests() {
        assert!(is_upload(&Method::PATCH, "/api/v1/flights/3/uploads/abc"));
        assert!(is_upload(&Method::POST, "/api/v1/flights/3/photos"));
        assert!(is_upload(&Method::PUT, "/api/v1/registers/roads"));
        assert!(!is_upload(&Method::GET, "/api/v1/flights/3/uploads/abc"));
        assert!(!is_upload(&Method::POST, "/api/v1/flights/3/process"));
        assert!(!is_upload(&Method::PUT, "/api/v1/registers/roads/data"));
        assert!(!is_upload(&Method::PATCH, "/flights/3/uploads/abc"));
    }
}
