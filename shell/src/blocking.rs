//! Where blocking work runs: scans of the local tree, parsing large update bodies, formatting
//! full updates and `/find/` listings.

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
}
