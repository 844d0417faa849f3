//! Accept loop shared by the public and management interfaces.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioTimer;
use rustls::ServerConfig;
use tokio::sync::{watch, Semaphore};

use crate::body::Body;
use crate::net::{Listener, SharedListener};
use crate::sendfile::SendfileIo;
use crate::tls;

pub type Handler = Arc<dyn Fn(Request<Incoming>, SocketAddr) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// Slow or idle clients are cut off after this long without sending a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// In-flight requests get this long to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How many connections an interface keeps open: a permit is taken before each accept and
/// given back when the connection ends, so that at the limit new clients wait in the kernel's
/// accept queue and hold no descriptor of ours. One per interface (shared by its threads).
#[derive(Clone)]
pub struct Slots {
    permits: Arc<Semaphore>,
    max: u32,
    /// When the last "limit reached" line was logged, for at most one a minute.
    last_warned: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Slots {
    pub fn new(max: u32) -> Slots {
        Slots { permits: Arc::new(Semaphore::new(max as usize)), max, last_warned: Arc::default() }
    }

    /// Whether fewer than an eighth of the slots are free: then each answer closes its
    /// connection (`Connection: close`) instead of keeping it for the client's next request.
    /// An idle kept-alive connection holds a slot as long as the client keeps it (up to
    /// [`HEADER_TIMEOUT`]) while new clients wait in the kernel's queue: what happened when
    /// 200 nodes joined at once and each kept a connection to each peer (their updates timed
    /// out waiting). nginx likewise closes idle keep-alive connections when it runs out.
    fn crowded(&self) -> bool {
        self.permits.available_permits() < (self.max as usize / 8).max(1)
    }

    /// Waits for a free slot; says so in the log (at most once a minute) when there is none.
    async fn take(&self, what: &str) -> tokio::sync::OwnedSemaphorePermit {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return p;
        }
        {
            let mut last = self.last_warned.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                *last = Some(std::time::Instant::now());
                tracing::warn!(
                    "{what}: connection limit reached ({} open, --max-connections); new clients wait until one closes",
                    self.max
                );
            }
        }
        self.permits.clone().acquire_owned().await.expect("the semaphore is never closed")
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown` fires, then drains for a few seconds. With
/// `tls`, every connection is HTTPS: the handshake runs in the connection's own task (the
/// accept loop never waits for a client) and must be over within [`tls::HANDSHAKE_TIMEOUT`],
/// or the connection is closed and its slot given back. A TLS connection is not a kernel
/// socket, so `SendfileIo` queues nothing on it and file bodies go as ordinary copies
/// (`sendfile` and `splice` would bypass the encryption).
pub async fn serve(
    what: &'static str,
    mut listener: Box<dyn Listener>,
    handler: Handler,
    slots: Slots,
    tls: Option<Arc<ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            slot = slots.take(what) => slot,
        };
        tokio::select! {
            biased; // the same choice every run, for the simulator
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((conn, peer)) => {
                    let h = handler.clone();
                    let watcher = graceful.watcher();
                    let tls = tls.clone();
                    let mut shutdown = shutdown.clone();
                    let slots = slots.clone();
                    tokio::spawn(async move {
                        let _slot = slot; // given back when the connection ends
                        let conn = match tls {
                            None => conn,
                            Some(config) => tokio::select! {
                                _ = shutdown.changed() => return,
                                accepted = tls::accept(config, conn) => match accepted {
                                    Ok(c) => c,
                                    Err(e) => return tracing::debug!("{what} connection from {peer}: TLS: {e}"),
                                },
                            },
                        };
                        let (io, send_queue) = SendfileIo::new(conn);
                        let svc = service_fn(move |mut req: Request<Incoming>| {
                            if let Some(q) = &send_queue {
                                req.extensions_mut().insert(q.clone());
                            }
                            let (h, slots) = (h.clone(), slots.clone());
                            async move {
                                let mut resp = h(req, peer).await;
                                if slots.crowded() {
                                    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                                }
                                Ok::<_, Infallible>(resp)
                            }
                        });
                        let conn = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .max_buf_size(64 << 10)
                            // Body buffers go to the IO as they are, never copied: what file
                            // stand-ins need (see `sendfile`), and one copy less for every body.
                            .writev(true)
                            .serve_connection(io, svc);
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!("{what} connection from {peer}: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("{what}: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::info!("{what}: closing connections still open after {DRAIN_TIMEOUT:?}");
    }
}

/// Serves HTTP/1.1 on `listener` from `threads` threads, each with a single-threaded
/// runtime of its own, until `shutdown` fires; returns when they have all stopped.
///
/// Why: under many small requests, tokio's multi-threaded scheduler moves connections between
/// its workers and wakes idle workers, which cost about a fifth of the CPU per request of a
/// 4 KiB file (`bench/http.sh`). A connection accepted by one of these threads stays on it, as
/// in nginx's worker processes; every thread accepts from the same socket, so a busy thread
/// simply takes fewer new connections.
pub async fn serve_on_threads(
    what: &'static str,
    listener: SharedListener,
    threads: usize,
    handler: Handler,
    slots: Slots,
    tls: Option<Arc<ServerConfig>>,
    shutdown: watch::Receiver<bool>,
) {
    tracing::info!("{what}: served by {threads} threads");
    let mut done = Vec::new();
    for i in 0..threads {
        let shared = match listener.try_clone() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{what}: cannot share the socket with another thread: {e}");
                break;
            }
        };
        let (handler, slots, tls, shutdown) = (handler.clone(), slots.clone(), tls.clone(), shutdown.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new().name(format!("dftp-http-{i}")).spawn(move || {
            let _done = tx; // dropped when the thread ends, however it ends
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return tracing::error!("{what}: cannot start a runtime: {e}"),
            };
            runtime.block_on(async move {
                match shared.into_listener() {
                    Ok(l) => serve(what, l, handler, slots, tls, shutdown).await,
                    Err(e) => tracing::error!("{what}: cannot accept on another thread: {e}"),
                }
            });
        });
        match spawned {
            Ok(_) => done.push(rx),
            Err(e) => tracing::error!("{what}: cannot start a thread: {e}"),
        }
    }
    for rx in done {
        let _ = rx.await;
    }
}
