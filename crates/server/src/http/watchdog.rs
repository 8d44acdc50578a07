//! Per-connection watchdog: closes a connection whose client is too slow to
//! send its request headers, or that sits idle (no request in progress, no
//! bytes moving). hyper alone cannot tell these apart, and a client that
//! opens sockets and sends nothing must not hold them for ever.
//!
//! The socket is wrapped in [`Tracked`], which notes when bytes move; the
//! service notes when a request starts and ends ([`Activity::start_request`]);
//! [`watch`] resolves when a deadline passes, and the caller then drops the
//! connection. Request bodies have their own deadline (see `limits`), so a
//! request in progress is never cut here.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

/// The deadlines [`watch`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub header: Duration,
    pub idle: Duration,
}

/// "No request head is being read."
const NONE: u64 = u64::MAX;

/// What one connection is doing, in milliseconds since it was accepted.
/// Relaxed atomics: these are heuristics for timeouts, read by one watchdog.
pub struct Activity {
    epoch: Instant,
    /// When the current request head began: the connection's start, or the
    /// first byte after the previous request finished; [`NONE`] otherwise.
    head_since: AtomicU64,
    /// When the last request finished (or the connection started).
    idle_since: AtomicU64,
    /// When bytes were last read or written.
    last_io: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            head_since: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            last_io: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A request's headers arrived; the guard marks its end when dropped.
    pub fn start_request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Relaxed);
        self.head_since.store(NONE, Relaxed);
        RequestGuard(self.clone())
    }

    fn on_read(&self) {
        let now = self.now();
        self.last_io.store(now, Relaxed);
        // The first byte after an idle spell starts the next request head.
        if self.in_flight.load(Relaxed) == 0 {
            let _ = self
                .head_since
                .compare_exchange(NONE, now, Relaxed, Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_io.store(self.now(), Relaxed);
    }

    /// `Err(reason)` when the connection is past a deadline, else the time
    /// (ms since the epoch) of the next check.
    fn check(&self, d: &Deadlines) -> Result<u64, &'static str> {
        let now = self.now();
        let idle_ms = d.idle.as_millis() as u64;
        if self.in_flight.load(Relaxed) > 0 {
            return Ok(now + idle_ms);
        }
        let idle_from = self
            .idle_since
            .load(Relaxed)
            .max(self.last_io.load(Relaxed));
        let idle_deadline = idle_from + idle_ms;
        let mut next = idle_deadline;
        let head = self.head_since.load(Relaxed);
        if head != NONE {
            let header_deadline = head + d.header.as_millis() as u64;
            if now >= header_deadline {
                return Err("the request headers did not arrive in time");
            }
            next = next.min(header_deadline);
        }
        if now >= idle_deadline {
            return Err("idle");
        }
        Ok(next)
    }
}

/// Ends a request's accounting when dropped.
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        // Before the decrement, so a check never sees an idle connection
        // with the previous idle time.
        self.0.idle_since.store(self.0.now(), Relaxed);
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// Resolves, with the reason, once the connection is past a deadline.
pub async fn watch(activity: &Activity, deadlines: Deadlines) -> &'static str {
    loop {
        match activity.check(&deadlines) {
            Err(reason) => return reason,
            Ok(next) => {
                tokio::time::sleep_until(activity.epoch + Duration::from_millis(next)).await;
            }
        }
    }
}

/// A socket that reports to its [`Activity`] when bytes move.
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Tracked<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read();
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_gets_the_header_deadline() {
        let a = Activity::new();
        let started = Instant::now();
        assert_eq!(
            watch(&a, D).await,
            "the request headers did not arrive in time"
        );
        assert_eq!(started.elapsed(), D.header);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_is_never_cut_and_idle_follows_it() {
        let a = Activity::new();
        let guard = a.start_request();
        tokio::select! {
            _ = watch(&a, D) => panic!("cut a request in progress"),
            _ = tokio::time::sleep(Duration::from_secs(300)) => {}
        }
        drop(guard);
        let ended = Instant::now();
        assert_eq!(watch(&a, D).await, "idle");
        assert_eq!(ended.elapsed(), D.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_byte_after_idle_starts_the_header_deadline() {
        let a = Activity::new();
        drop(a.start_request());
        tokio::time::advance(Duration::from_secs(30)).await;
        a.on_read();
        let started = Instant::now();
        assert_eq!(
            watch(&a, D).await,
            "the request headers did not arrive in time"
        );
        assert_eq!(started.elapsed(), D.header);
    }
}
