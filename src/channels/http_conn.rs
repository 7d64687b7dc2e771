//! The HTTP endpoint's connections, bounded so that nobody can hold the endpoint open (a Tor
//! onion service lets anyone connect, and a half-open connection costs the attacker nothing):
//!
//! - at most `[http] max_connections` at once, taken before `accept`, so further
//!   connections wait in the kernel's listen queue instead of costing a file descriptor each;
//!   the daemon refuses to start when its descriptor limit cannot hold them
//!   ([`check_descriptors`]), so the control and gateway sockets always have descriptors;
//! - the request line and headers within `header_timeout_secs` (hyper's header read timeout,
//!   which also bounds a kept-alive connection's wait for its next request);
//! - the body within `body_timeout_secs` (the `/command` handler, in `http.rs`);
//! - no byte either way for `idle_timeout_secs`, while the agent is not working on one of the
//!   connection's requests, closes it (a client that stops reading its reply);
//! - at shutdown, requests in flight get [`SHUTDOWN_GRACE`] and then every connection is cut.
//!
//! hyper serves each connection (HTTP/1.1); the router is axum's.

use crate::config::HttpConfig;
use crate::shutdown::Shutdown;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Open files kept for everything but HTTP connections: the store, the control and gateway
/// sockets and their clients, provider and IMAP connections, the log.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// How long requests in flight get to finish after SIGTERM before their connections are cut.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Refuses a connection cap that this process's soft limit on open files cannot hold beside
/// [`RESERVED_DESCRIPTORS`]: a full endpoint must never leave the control socket, the
/// gateway or the store without a descriptor.
pub fn check_descriptors(max_connections: usize) -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the owned struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let need = (max_connections as u64).saturating_add(RESERVED_DESCRIPTORS);
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < need {
        return Err(std::io::Error::other(format!(
            "[http] max_connections = {max_connections} needs {need} open files, but this \
             process may open {}: raise LimitNOFILE (the unit sets 4096) or lower \
             max_connections",
            limit.rlim_cur
        )));
    }
    Ok(())
}

/// When a connection last moved a byte, and how many of its requests the agent is working on.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// Returns once the connection has moved nothing for `idle` while no request of it is
    /// being worked on.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let quiet = self.quiet_for();
            if quiet < idle {
                tokio::time::sleep(idle - quiet).await;
            } else if self.busy.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(idle).await;
            } else {
                return;
            }
        }
    }
}

/// Marks a request as being worked on for as long as it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection's socket, noting each byte that moves.
struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        read
    }
}

impl Watched {
    fn noted(&self, written: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        written
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.noted(written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.noted(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` within `config`'s bounds until shutdown; then stops accepting,
/// lets requests in flight finish for [`SHUTDOWN_GRACE`] and cuts what is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &HttpConfig,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout());
    let idle = config.idle_timeout();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            _ = shutdown.recv() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait, retry.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let activity = Activity::new();
        let io = TokioIo::new(Watched {
            io: stream,
            activity: activity.clone(),
        });
        let inner = TowerToHyperService::new(app.clone());
        let watched = activity.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let busy = Busy::enter(&watched);
            let answer = hyper::service::Service::call(&inner, req);
            async move {
                let response = answer.await;
                drop(busy);
                response
            }
        });
        let conn = graceful.watch(http.serve_connection(io, service));
        connections.spawn(async move {
            let _slot = slot;
            tokio::select! {
                ended = conn => if let Err(e) = ended {
                    tracing::debug!(error = %e, "http connection ended");
                },
                _ = activity.idle_for(idle) => tracing::debug!("http connection idle: closed"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            open = connections.len(),
            "http: connections still open after the shutdown grace are cut"
        );
    }
    connections.shutdown().await;
    Ok(())
}
