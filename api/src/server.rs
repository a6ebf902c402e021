//! The accept loop. poem's `Server` has neither a header-read deadline nor a
//! connection cap, and its idle timeout also cuts requests that are still
//! being handled, so Hyperfleet drives hyper itself:
//!
//! - at most `max_connections` connections are served; one more is closed at
//!   once (it never waits in a queue holding a descriptor);
//! - a request's line and headers must arrive within `header_timeout` of its
//!   first byte (the first request: of the accept, which also bounds a
//!   stalled TLS handshake);
//! - a connection with no request in progress and no bytes moving for
//!   `idle_timeout` is closed (idle keep-alive, idle HTTP/2, slow readers);
//! - HTTP/2 advertises `SETTINGS_MAX_CONCURRENT_STREAMS`.
//!
//! The body deadline is the application's (`request_id`), since only it knows
//! when it reads a body.

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use poem::{
    Endpoint, EndpointExt, IntoEndpoint,
    endpoint::BoxEndpoint,
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{Notify, Semaphore},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Connection limits from `[api]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub http2_max_streams: u32,
}

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, io::Error>;

/// Serves `app` on `acceptor` until `shutdown`; then lets open connections
/// finish their requests for up to `grace`.
pub async fn serve<A: Acceptor>(
    mut acceptor: A,
    app: impl IntoEndpoint<Endpoint: 'static>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    grace: Duration,
) -> io::Result<()> {
    let app: Arc<BoxEndpoint<'static>> = Arc::new(app.into_endpoint().map_to_response().boxed());
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let abort = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = acceptor.accept() => accepted,
        };
        let (io, local, remote, scheme) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: give the system a moment rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(remote = %remote, max = limits.max_connections, "connection closed: at the connection cap");
            continue;
        };
        let peer = Peer { local, remote, scheme };
        let (app, closing, abort) = (app.clone(), closing.clone(), abort.clone());
        connections.spawn(async move {
            connection(io, peer, app, limits, closing, abort).await;
            drop(slot);
        });
    }
    drop(acceptor);
    connections.close();
    closing.cancel();
    if tokio::time::timeout(grace, connections.wait()).await.is_err() {
        tracing::warn!(open = connections.len(), "closing the connections still open after the grace period");
        abort.cancel();
        connections.wait().await;
    }
    Ok(())
}

struct Peer {
    local: LocalAddr,
    remote: RemoteAddr,
    scheme: poem::http::uri::Scheme,
}

async fn connection<Io>(
    io: Io,
    peer: Peer,
    app: Arc<BoxEndpoint<'static>>,
    limits: ConnectionLimits,
    closing: CancellationToken,
    abort: CancellationToken,
) where
    Io: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let activity = Arc::new(Activity::new());
    let remote = peer.remote.clone();
    let service = hyper::service::service_fn({
        let activity = activity.clone();
        move |req: hyper::Request<hyper::body::Incoming>| {
            let busy = activity.begin_request();
            let app = app.clone();
            let req = poem::Request::from((req, peer.local.clone(), peer.remote.clone(), peer.scheme.clone()));
            async move {
                let resp = app.get_response(req).await;
                drop(busy);
                Ok::<_, Infallible>(hyper::Response::<Body>::from(resp))
            }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The watchdog below bounds headers (from their first byte, not from the
    // previous answer, so keep-alive idling is governed by `idle_timeout`).
    builder.http1().header_read_timeout(None);
    builder.http2().max_concurrent_streams(limits.http2_max_streams);
    let io = TokioIo::new(Watched { inner: io, activity: activity.clone() });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(remote = %remote, error = %e, "connection ended with an error");
            }
            return;
        }
        () = activity.expired(&limits) => {
            tracing::debug!(remote = %remote, "closing an idle or stalled connection");
            return;
        }
        () = closing.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn => {}
        () = abort.cancelled() => {}
    }
}

/// What the watchdog knows of a connection.
struct Activity {
    clock: Mutex<Clock>,
    changed: Notify,
}

struct Clock {
    /// Requests being handled (their handler has not answered yet).
    in_flight: usize,
    last_io: Instant,
    /// When the head of the next request started to arrive (or the connection
    /// was accepted), while no request is being handled.
    head_since: Option<Instant>,
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        Self { clock: Mutex::new(Clock { in_flight: 0, last_io: now, head_since: Some(now) }), changed: Notify::new() }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) {
        let now = Instant::now();
        let mut clock = self.clock();
        clock.last_io = now;
        if clock.in_flight == 0 && clock.head_since.is_none() {
            clock.head_since = Some(now);
            drop(clock);
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.clock().last_io = Instant::now();
    }

    fn begin_request(self: &Arc<Self>) -> Busy {
        let mut clock = self.clock();
        clock.in_flight += 1;
        clock.head_since = None;
        drop(clock);
        self.changed.notify_one();
        Busy(self.clone())
    }

    /// When the connection is to be closed, if nothing changes; `None` while a
    /// request is being handled (the request and body deadlines bound that).
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let clock = self.clock();
        if clock.in_flight > 0 {
            return None;
        }
        let idle = clock.last_io + limits.idle_timeout;
        Some(clock.head_since.map_or(idle, |since| idle.min(since + limits.header_timeout)))
    }

    /// Resolves when the connection has been idle or stalled for too long.
    async fn expired(&self, limits: &ConnectionLimits) {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits) {
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// A request being handled; dropping it (answered, or the connection gone) ends it.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut clock = self.0.clock();
        clock.in_flight -= 1;
        clock.last_io = Instant::now();
        drop(clock);
        self.0.changed.notify_one();
    }
}

/// The connection's socket, reporting the bytes that move through it.
struct Watched<Io> {
    inner: Io,
    activity: Arc<Activity>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Watched<Io> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Watched<Io> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
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
