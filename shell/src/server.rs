//! Accept loop shared by the public and management interfaces.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioTimer;
use tokio::sync::watch;

use crate::net::Listener;
use crate::peers::Body;
use crate::sendfile::SendfileIo;

pub type Handler = Arc<dyn Fn(Request<Incoming>, SocketAddr) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// Slow or idle clients are cut off after this long without sending a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// In-flight requests get this long to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves HTTP/1.1 on `listener` until `shutdown` fires, then drains for a few seconds.
pub async fn serve(
    what: &'static str,
    mut listener: Box<dyn Listener>,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            biased; // the same choice every run, for the simulator
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((conn, peer)) => {
                    let h = handler.clone();
                    let (io, send_queue) = SendfileIo::new(conn);
                    let svc = service_fn(move |mut req: Request<Incoming>| {
                        if let Some(q) = &send_queue {
                            req.extensions_mut().insert(q.clone());
                        }
                        let h = h.clone();
                        async move { Ok::<_, Infallible>(h(req, peer).await) }
                    });
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .max_buf_size(64 << 10)
                        // Body buffers go to the IO as they are, never copied: what file
                        // stand-ins need (see `sendfile`), and one copy less for every body.
                        .writev(true)
                        .serve_connection(io, svc);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
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
