//! Where blocking work runs: scans of the local tree, parsing large update bodies, formatting
//! full updates and `/find/` listings. The choice between a thread and the calling task is made
//! here, once, for each shape of work: a result ([`Blocking::run`]), a body produced in chunks
//! ([`Blocking::stream_body`]) and chunks consumed as they arrive ([`Blocking::feed`]).

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use crate::body::{Body, BoxError};

/// The daemon runs blocking work on tokio's blocking threads. The simulator runs every host on
/// one thread in simulated time, where a thread pool would finish work at real-time moments and
/// make runs irreproducible; it runs the work inline instead (its trees are small).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Blocking {
    /// On tokio's blocking thread pool, off the async threads.
    #[default]
    Threads,
    /// On the calling task, at once.
    Inline,
}

/// Chunks in flight between a blocking producer or consumer and the async side: enough to keep
/// both busy, few enough that a slow peer holds little memory.
const IN_FLIGHT: usize = 4;

impl Blocking {
    /// Runs `f` according to the policy; an error means the blocking task panicked.
    pub async fn run<T, F>(self, f: F) -> Result<T, String>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Blocking::Threads => tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string()),
            Blocking::Inline => Ok(f()),
        }
    }

    /// A response body that `produce` writes chunk by chunk, handing each to `emit`, which
    /// answers false once the receiver went away (then `produce` should stop). On a thread, the
    /// body streams while it is produced and is never whole in memory; inline, it is produced
    /// whole first.
    pub fn stream_body<P>(self, produce: P) -> Body
    where
        P: FnOnce(&mut dyn FnMut(Vec<u8>) -> bool) + Send + 'static,
    {
        match self {
            Blocking::Inline => {
                let mut chunks = Vec::new();
                produce(&mut |chunk| {
                    chunks.push(Ok::<_, BoxError>(Frame::data(Bytes::from(chunk))));
                    true
                });
                StreamBody::new(futures_util::stream::iter(chunks)).boxed_unsync()
            }
            Blocking::Threads => {
                let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(IN_FLIGHT);
                tokio::task::spawn_blocking(move || {
                    produce(&mut |chunk| tx.blocking_send(Ok(Frame::data(Bytes::from(chunk)))).is_ok());
                });
                let stream =
                    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
                StreamBody::new(stream).boxed_unsync()
            }
        }
    }

    /// Starts `consumer` on chunks that arrive later ([`Feed::push`], then [`Feed::finish`]).
    pub fn feed<C: Consumer>(self, consumer: C) -> Feed<C> {
        match self {
            Blocking::Inline => Feed::Inline(Ok(consumer)),
            Blocking::Threads => {
                let (tx, mut rx) = mpsc::channel::<Bytes>(IN_FLIGHT * 16);
                let task = tokio::task::spawn_blocking(move || {
                    let mut consumer = consumer;
                    while let Some(chunk) = rx.blocking_recv() {
                        consumer.push(&chunk)?;
                    }
                    consumer.finish()
                });
                Feed::Threads(tx, task)
            }
        }
    }
}

/// Work that takes a body chunk by chunk and gives a result at its end (a streaming parser).
pub trait Consumer: Send + 'static {
    type Output: Send + 'static;
    type Error: Send + 'static;
    fn push(&mut self, chunk: &[u8]) -> Result<(), Self::Error>;
    fn finish(self) -> Result<Self::Output, Self::Error>;
}

/// A [`Consumer`] at work, inline or on a blocking thread.
pub enum Feed<C: Consumer> {
    /// The consumer, or the error it stopped at.
    Inline(Result<C, C::Error>),
    Threads(mpsc::Sender<Bytes>, tokio::task::JoinHandle<Result<C::Output, C::Error>>),
}

impl<C: Consumer> Feed<C> {
    /// Hands over the next chunk; false once the consumer has stopped at an error (which
    /// [`Feed::finish`] returns), so the caller need not read the rest.
    pub async fn push(&mut self, chunk: Bytes) -> bool {
        match self {
            Feed::Inline(state) => {
                if let Ok(consumer) = state {
                    if let Err(e) = consumer.push(&chunk) {
                        *state = Err(e);
                    }
                }
                state.is_ok()
            }
            Feed::Threads(tx, _) => tx.send(chunk).await.is_ok(),
        }
    }

    /// Resolves once the consumer has stopped at an error (or its thread panicked), without
    /// waiting for another chunk: a caller reading a body can stop at once.
    pub async fn stopped(&self) {
        match self {
            Feed::Inline(Ok(_)) => std::future::pending().await,
            Feed::Inline(Err(_)) => {}
            // The thread drops its receiver when the consumer fails; while it works, the
            // sender held here keeps the channel open.
            Feed::Threads(tx, _) => tx.closed().await,
        }
    }

    /// The consumer's result; `Err(None)` when its thread panicked.
    pub async fn finish(self) -> Result<C::Output, Option<C::Error>> {
        match self {
            Feed::Inline(state) => state.and_then(Consumer::finish).map_err(Some),
            Feed::Threads(tx, task) => {
                drop(tx);
                match task.await {
                    Ok(result) => result.map_err(Some),
                    Err(_) => Err(None),
                }
            }
        }
    }
}
