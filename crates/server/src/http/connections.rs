//! The accept loop and the life of each connection: a cap on connections
//! served at once, with load shedding past it (`503` problem+json, then
//! close, rather than leaving clients in the kernel's backlog); a back-off
//! when accepting fails for want of file descriptors, logged once in a while
//! rather than in a loop; the watchdog's header and idle deadlines; the body
//! deadline handed to the `limits` middleware; and graceful shutdown.
//! What runs on the accepted socket before HTTP is a [`Handshake`]: nothing
//! for plain HTTP ([`Plain`]), TLS for `tls::Tls`; it runs in the
//! connection's own task, holding its slot, so every limit above applies to
//! HTTPS as it does to HTTP.

use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{header, HeaderValue, Request, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tessera_core::client::PeerCertificate;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{watch, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tower::ServiceExt;

use super::{
    error::ApiError,
    limits::{self, BodyDeadline},
    watchdog::{self, Activity, Deadlines, Tracked},
};

/// How connections are treated; built from the configuration at start-up.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub deadlines: Deadlines,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

/// hyper's own read buffer: larger than our header limits, so those answer
/// with problem+json, but a backstop (bare `431`) against anything bigger.
const HYPER_MAX_BUF: usize = 64 * 1024;
/// How long a shed connection may take to send its request and read `503`.
const SHED_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between accept attempts while descriptors are exhausted.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning per this interval for a repeated condition.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A connection ready for HTTP: the stream, and the verified client
/// certificate that goes into every request's extensions, if any.
pub struct Accepted<S> {
    pub stream: S,
    pub peer: Option<PeerCertificate>,
}

/// What happens on an accepted socket before HTTP is served on it.
pub trait Handshake: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// `None` drops the connection (a failed or timed-out handshake); the
    /// implementation bounds its own time.
    fn handshake(
        &self,
        tcp: TcpStream,
        remote: SocketAddr,
    ) -> impl Future<Output = Option<Accepted<Self::Stream>>> + Send;
}

/// Plain HTTP: the socket as it is.
pub struct Plain;

impl Handshake for Plain {
    type Stream = TcpStream;

    async fn handshake(&self, tcp: TcpStream, _: SocketAddr) -> Option<Accepted<TcpStream>> {
        Some(Accepted {
            stream: tcp,
            peer: None,
        })
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in progress finish (for at most `DRAIN_TIMEOUT`). Each connection first
/// goes through `handshake`.
pub async fn serve<H: Handshake>(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    handshake: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let handshake = Arc::new(handshake);
    let max = limits.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    // Shedding holds a descriptor too, briefly; bounded so a flood cannot
    // turn into unbounded shed tasks.
    let shed_permits = Arc::new(Semaphore::new((max / 10).clamp(8, 256)));
    let builder = Arc::new(builder(&limits));
    let shed_builder = Arc::new(shed_builder());
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::pin!(shutdown);
    let mut backoff = Backoff::default();
    let mut shed_log = Throttled::default();
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => { backoff.reset(); accepted }
                Err(e) if is_peer_error(&e) => continue,
                Err(e) => {
                    let pause = backoff.next();
                    if let Some(suppressed) = backoff.log.ready() {
                        tracing::warn!(error = %e, suppressed, pause_ms = pause.as_millis() as u64,
                            "cannot accept connections (out of file descriptors?); backing off");
                    }
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let conn = Conn {
                    app: app.clone(),
                    limits,
                    builder: builder.clone(),
                    stop: stop_rx.clone(),
                    _permit: permit,
                };
                tokio::spawn(conn.serve(stream, remote, handshake.clone()));
            }
            Err(_) => {
                if let Some(suppressed) = shed_log.ready() {
                    tracing::warn!(
                        max_connections = max,
                        suppressed,
                        "connection limit reached; answering 503 to new connections"
                    );
                }
                // Past the shedding bound too: close at once.
                if let Ok(permit) = shed_permits.clone().try_acquire_owned() {
                    let shed = shed(
                        stream,
                        remote,
                        handshake.clone(),
                        shed_builder.clone(),
                        permit,
                    );
                    tokio::spawn(shed);
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(());
    drain(&permits, max).await;
}

/// Waits for the connections in progress, at most [`DRAIN_TIMEOUT`]. Every
/// connection holds a permit: all of them back means all closed.
async fn drain(permits: &Semaphore, max: usize) {
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}

/// HTTP/1.1 only, as before (the service never enabled HTTP/2).
fn builder(limits: &ConnectionLimits) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        // The watchdog enforces the real deadlines; hyper's timer (which
        // cannot tell a slow header from an idle keep-alive) is a backstop.
        .header_read_timeout(limits.deadlines.header + limits.deadlines.idle)
        .max_buf_size(HYPER_MAX_BUF)
        .max_headers(limits::MAX_HEADERS * 2);
    b
}

fn shed_builder() -> http1::Builder {
    let mut b = http1::Builder::new();
    b.keep_alive(false).max_buf_size(HYPER_MAX_BUF);
    b
}

/// One accepted connection within the cap.
struct Conn {
    app: Router,
    limits: ConnectionLimits,
    builder: Arc<http1::Builder>,
    stop: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    async fn serve<H: Handshake>(mut self, stream: TcpStream, remote: SocketAddr, h: Arc<H>) {
        let _ = stream.set_nodelay(true);
        // Within the slot: a client slow to shake hands holds one, for
        // no longer than the handshake's own timeout (or shutdown).
        let accepted = tokio::select! {
            accepted = h.handshake(stream, remote) => accepted,
            _ = self.stop.changed() => None,
        };
        let Some(Accepted { stream, peer }) = accepted else {
            return;
        };
        let activity = Activity::new();
        let io = TokioIo::new(Tracked::new(stream, activity.clone()));
        let (app, body_timeout, per_conn) = (self.app, self.limits.body_timeout, activity.clone());
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let guard = per_conn.start_request();
            // The headers are in: the body's deadline starts now.
            req.extensions_mut()
                .insert(BodyDeadline(Instant::now() + body_timeout));
            req.extensions_mut().insert(ConnectInfo(remote));
            if let Some(peer) = &peer {
                req.extensions_mut().insert(peer.clone());
            }
            let response = app.clone().oneshot(req.map(Body::new));
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        });
        let conn = self.builder.serve_connection(io, service);
        tokio::pin!(conn);
        let deadlines = self.limits.deadlines;
        tokio::select! {
            res = conn.as_mut() => return log_end(res),
            reason = watchdog::watch(&activity, deadlines) => {
                tracing::debug!(%remote, reason, "closing connection");
                return;
            }
            _ = self.stop.changed() => {}
        }
        // Shutting down: finish the request in progress, if any, then close.
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            res = conn.as_mut() => log_end(res),
            _ = watchdog::watch(&activity, deadlines) => {}
        }
    }
}

fn log_end(res: Result<(), hyper::Error>) {
    if let Err(e) = res {
        // Clients hanging up mid-request are routine, not the server's fault.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Answers the connection's request with `503 overloaded` and closes it
/// (after the handshake: a TLS client needs one to read the answer).
async fn shed<H: Handshake>(
    stream: TcpStream,
    remote: SocketAddr,
    h: Arc<H>,
    builder: Arc<http1::Builder>,
    _permit: OwnedSemaphorePermit,
) {
    let answer = async {
        let Some(accepted) = h.handshake(stream, remote).await else {
            return;
        };
        let service = hyper::service::service_fn(|_: Request<Incoming>| async {
            Ok::<_, Infallible>(overloaded())
        });
        let _ = builder
            .serve_connection(TokioIo::new(accepted.stream), service)
            .await;
    };
    let _ = tokio::time::timeout(SHED_TIMEOUT, answer).await;
}

/// The shed answer. Built outside the router, so it does what the router's
/// middleware would: a request id, in the body too, and the usual headers.
fn overloaded() -> Response {
    let mut error = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "the server is at its connection limit; retry shortly",
    );
    error.retry_after = Some(1);
    let id = tessera_core::ids::new_id();
    let mut problem = error.problem();
    problem.request_id = Some(id.clone());
    let body = serde_json::to_vec(&problem).expect("a problem always serializes");
    let mut res = error.into_response();
    *res.body_mut() = Body::from(body);
    let headers = res.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(super::request_id::X_REQUEST_ID.clone(), v);
    }
    for (name, value) in [
        (header::CONNECTION, "close"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}

/// Errors that concern one connection the peer already gave up, not the
/// listener: accept again at once.
fn is_peer_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Doubling pause between failed accepts, from 10 ms to [`MAX_BACKOFF`].
#[derive(Default)]
struct Backoff {
    current: Option<Duration>,
    log: Throttled,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let next = self
            .current
            .map_or(Duration::from_millis(10), |d| (d * 2).min(MAX_BACKOFF));
        self.current = Some(next);
        next
    }

    fn reset(&mut self) {
        self.current = None;
    }
}

/// Lets a repeated warning through once per [`WARN_EVERY`], counting the
/// ones it held back.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    /// `Some(held back since the last one)` when a warning may be logged.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_second_and_resets() {
        let mut b = Backoff::default();
        let pauses: Vec<u64> = (0..9).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeated_warning_is_logged_once_per_interval() {
        let mut t = Throttled::default();
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        tokio::time::advance(WARN_EVERY).await;
        assert_eq!(t.ready(), Some(2));
    }
}
