//! Writes, as the HTTP and FTP layers carry them out once the core has said where a path goes
//! ([`dftp_core::Snapshot::locate_write`]):
//!
//! - on this node ([`Taker::Local`](dftp_core::Taker)): through [`LocalFs`] off the async
//!   threads, then what changed on disk is reported to the node at once (the watcher's own
//!   rescan of those paths, so that its later report of the same change sends nothing), and the
//!   call returns only once this node's snapshot shows the change: a listing or `/find/` asked
//!   after the answer shows the write. The answer should carry [`UPDATE_HEADER`] with the
//!   returned position;
//! - on another node ([`Forward`]): the request goes to the owner's public interface with its
//!   body streamed, and once the owner has answered 2xx, the call waits (a bounded while) until
//!   this node has applied the owner's update that carries the change, which the owner names
//!   in [`UPDATE_HEADER`]: read your writes through any node.
//!
//! Errors name paths of the cluster's tree ([`WriteError::in_cluster`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dftp_core::{DfsPath, Forward, Mount, StreamPos, HOPS_PARAM};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::{encode_path, Content};
use crate::blocking::Blocking;
use crate::body::{Body, BoxError};
use crate::driver::Handle;
use crate::localfs::{FileWriter, LocalFs, WriteError, WriteOptions};
use crate::peers::PeerClient;
use crate::upstream::{Fetched, Upload};
use crate::watcher;

/// The header in which the node that wrote a file names the position of the update that
/// carries the change (`EPOCH.SEQ`), for a node that passed the write on to wait for.
pub const UPDATE_HEADER: &str = "x-dftp-update";

/// How long a node that passed a write on waits for the owner's update before it answers its
/// client anyway (the owner's update may be held up behind a slow one, or lost: then the change
/// shows within the usual propagation delay).
pub const VISIBLE_WAIT: Duration = Duration::from_secs(10);

/// The request headers a write passed on to its owner carries: credentials (the owner checks
/// them again), preconditions, and what WebDAV methods and resumable uploads need.
const PASSED: [&str; 10] = [
    "authorization",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "content-type",
    "destination",
    "overwrite",
    "depth",
    "x-update-range",
    "content-range",
];

/// [`UPDATE_HEADER`]'s value for `pos`.
pub fn update_header_value(pos: StreamPos) -> HeaderValue {
    // Digits and a dot: always a valid value.
    HeaderValue::try_from(format!("{}.{}", pos.epoch, pos.seq)).unwrap_or(HeaderValue::from_static("0.0"))
}

/// The position in an [`UPDATE_HEADER`] value ([`dftp_core::request::stream_pos`]).
pub fn parse_update_header(v: &HeaderValue) -> Option<StreamPos> {
    dftp_core::request::stream_pos(v.as_bytes())
}

/// The header in which a node that had part of a write carried out by other nodes (a file
/// moved or copied to another node) names their updates, `NODE=EPOCH.SEQ`, one per node: the
/// node that passed the write on to it waits for those as well as for [`UPDATE_HEADER`]'s.
pub const UPDATE_OF_HEADER: &str = "x-dftp-update-of";

/// [`UPDATE_OF_HEADER`]'s value for `node`'s update `pos`.
pub fn update_of_header_value(node: &str, pos: StreamPos) -> Option<HeaderValue> {
    HeaderValue::from_bytes(format!("{node}={}.{}", pos.epoch, pos.seq).as_bytes()).ok()
}

/// The node and the position in an [`UPDATE_OF_HEADER`] value ([`dftp_core::request::update_of`]).
pub fn parse_update_of_header(v: &HeaderValue) -> Option<(String, StreamPos)> {
    dftp_core::request::update_of(v.as_bytes())
}

/// A file written on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Nothing was at the path before: 201, else 204.
    pub created: bool,
    /// The new content's validator, for `ETag`.
    pub etag: Option<String>,
    pub size: u64,
    /// The position of the update that carries the change, for [`UPDATE_HEADER`].
    pub update: StreamPos,
}

/// A removal, a new directory, a move or a copy done on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// For a move or a copy: something was at the destination and was replaced (204, else 201).
    pub replaced: bool,
    /// The position of the update that carries the change, for [`UPDATE_HEADER`].
    pub update: StreamPos,
}

/// Writes to this node's disk, and writes passed on to their owners.
#[derive(Clone)]
pub struct Writer {
    fs: Arc<dyn LocalFs>,
    client: PeerClient,
    handle: Handle,
    /// Where this node's served root appears in the tree (`--dfsmount`).
    mount: Mount,
}

impl Writer {
    pub fn new(content: &Content, handle: Handle, mount: Mount) -> Writer {
        Writer { fs: content.fs.clone(), client: content.client.clone(), handle, mount }
    }

    fn blocking(&self) -> Blocking {
        self.handle.blocking()
    }

    /// Runs `op` on the local file system off the async threads.
    async fn run<T, F>(&self, path: &DfsPath, op: F) -> Result<T, WriteError>
    where
        F: FnOnce(&dyn LocalFs) -> Result<T, WriteError> + Send + 'static,
        T: Send + 'static,
    {
        let fs = self.fs.clone();
        match self.blocking().run(move || op(fs.as_ref())).await {
            Ok(result) => result,
            Err(e) => Err(WriteError::Io { path: path.clone(), cause: std::io::Error::other(e) }),
        }
    }

    // ---- on this node ---------------------------------------------------------------------

    /// Writes the file `local` (relative to the served root, as [`dftp_core::Taker::Local`]
    /// gives it) from `body`: PUT, PATCH, STOR, APPE (see [`WriteOptions`]). `expected_len`
    /// is the length the client announced: a body that ends before (or after) it changes
    /// nothing, as does one that fails.
    pub async fn put(
        &self,
        local: &DfsPath,
        mut body: Body,
        expected_len: Option<u64>,
        opts: WriteOptions,
    ) -> Result<Stored, WriteError> {
        let path = local.clone();
        let writer = self.run(local, move |fs| fs.create_file(&path, opts)).await.map_err(|e| self.cluster(e))?;
        let mut spool = Spool::start(writer, self.blocking());
        let mut got = 0u64;
        let ended = loop {
            match body.frame().await {
                None => break None,
                Some(Err(e)) => break Some(format!("the body failed after {got} bytes: {e}")),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    got += data.len() as u64;
                    if expected_len.is_some_and(|n| got > n) {
                        break Some(format!("more than the {} bytes announced", expected_len.unwrap_or(0)));
                    }
                    if !spool.push(data).await {
                        break None; // the writer stopped at an error, which finish() returns
                    }
                }
            }
        };
        let why = ended
            .or_else(|| expected_len.filter(|n| got < *n).map(|n| format!("{got} of the {n} bytes announced arrived")));
        let writer = match (spool.finish(local).await, why) {
            (Err(e), _) => Err(e),
            (Ok(w), Some(why)) => {
                // Dropped off the async threads: it removes its temporary file.
                let _ = self.blocking().run(move || drop(w)).await;
                Err(WriteError::Body { path: local.clone(), why })
            }
            (Ok(w), None) => Ok(w),
        };
        let committed = match writer {
            Ok(w) => self.run(local, move |_| w.commit()).await,
            Err(e) => Err(e),
        };
        // Whatever happened, the directory's record changed (a temporary file came and went).
        let root = committed.as_ref().map_or_else(|_| local.clone(), |c| c.changed_root(local));
        let update = self.report(vec![root]).await;
        let c = committed.map_err(|e| self.cluster(e))?;
        Ok(Stored { created: c.created, etag: c.etag, size: c.size, update })
    }

    /// Removes the file `local`: DELETE of a file, DELE.
    pub async fn remove_file(&self, local: &DfsPath) -> Result<Done, WriteError> {
        let path = local.clone();
        self.run(local, move |fs| fs.remove_file(&path)).await.map_err(|e| self.cluster(e))?;
        Ok(Done { replaced: false, update: self.report(vec![local.clone()]).await })
    }

    /// Removes the directory `local`: with everything in it (DELETE; this node's part of it),
    /// or only when empty (RMD). An incomplete removal is reported as far as it went.
    pub async fn remove_dir(&self, local: &DfsPath, recursive: bool) -> Result<Done, WriteError> {
        let path = local.clone();
        let result = self.run(local, move |fs| fs.remove_dir(&path, recursive)).await;
        let update = self.report(vec![local.clone()]).await;
        result.map_err(|e| self.cluster(e))?;
        Ok(Done { replaced: false, update })
    }

    /// Makes the directory `local`, whose parent must exist: MKCOL, MKD.
    pub async fn make_dir(&self, local: &DfsPath) -> Result<Done, WriteError> {
        let path = local.clone();
        self.run(local, move |fs| fs.make_dir(&path)).await.map_err(|e| self.cluster(e))?;
        Ok(Done { replaced: false, update: self.report(vec![local.clone()]).await })
    }

    /// Moves `from` to `to`, both on this node: MOVE within one owner, RNFR/RNTO.
    pub async fn rename(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<Done, WriteError> {
        let (f, t) = (from.clone(), to.clone());
        let result = self.run(from, move |fs| fs.rename(&f, &t, overwrite)).await;
        let update = self.report(vec![from.clone(), to.clone()]).await;
        let replaced = result.map_err(|e| self.cluster(e))?;
        Ok(Done { replaced, update })
    }

    /// Copies `from` to `to`, both on this node: COPY within one owner.
    pub async fn copy(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<Done, WriteError> {
        let (f, t) = (from.clone(), to.clone());
        let result = self.run(to, move |fs| fs.copy(&f, &t, overwrite)).await;
        let update = self.report(vec![to.clone()]).await;
        let replaced = result.map_err(|e| self.cluster(e))?;
        Ok(Done { replaced, update })
    }

    /// Tells the node what is on disk now at `roots` (local paths), as the watcher would, and
    /// waits until it has applied it. Returns the position of the update that carries it.
    async fn report(&self, roots: Vec<DfsPath>) -> StreamPos {
        let roots = watcher::outermost(roots.into_iter().collect());
        let (fs, mount) = (self.fs.clone(), self.mount.clone());
        let rescanned = self.blocking().run(move || watcher::rescan(fs.as_ref(), &mount, &roots)).await;
        let mut snapshot = None;
        for event in rescanned.unwrap_or_default().into_events() {
            if let Some(answer) = self.handle.ask(event).await {
                snapshot = Some(answer.snapshot);
            }
        }
        snapshot.unwrap_or_else(|| self.handle.snapshot()).stream_pos()
    }

    fn cluster(&self, e: WriteError) -> WriteError {
        e.in_cluster(&self.mount)
    }

    // ---- on another node -------------------------------------------------------------------

    /// Passes a write of `path` (a path of the tree) on to `to`, the node the core chose: the
    /// method, the client's headers that matter ([`PASSED`], `Authorization` among them), and
    /// the body, streamed. Returns the owner's answer, once this node shows the change when it
    /// was 2xx (the updates named in [`UPDATE_HEADER`] and [`UPDATE_OF_HEADER`]), or
    /// [`VISIBLE_WAIT`] has passed. `Err` when the owner could not be asked or did
    /// not answer (502).
    pub async fn forward(
        &self,
        to: &Forward,
        path: &DfsPath,
        method: Method,
        headers: &HeaderMap,
        body: Option<Upload>,
    ) -> Result<Fetched, String> {
        let url = format!("/fs/{}?{HOPS_PARAM}={}", encode_path(path), to.hops);
        let mut passed = HeaderMap::new();
        for name in PASSED {
            let name = HeaderName::from_static(name);
            for v in headers.get_all(&name) {
                passed.append(name.clone(), v.clone());
            }
        }
        let answer = match body {
            Some(upload) => self.client.send(&to.addr, method, &url, &passed, upload).await?,
            None => self.client.send_bodiless(&to.addr, method, &url, &passed).await?,
        };
        if answer.status.is_success() {
            let me = self.handle.snapshot().me().clone();
            let updates = updates_named(&answer.headers, &to.owner, &me);
            futures_util::future::join_all(updates.iter().map(|(node, pos)| self.await_update(node, *pos))).await;
        }
        Ok(answer)
    }

    /// Waits until this node has applied `owner`'s updates up to `pos`, for at most
    /// [`VISIBLE_WAIT`]. Returns whether it has.
    pub async fn await_update(&self, owner: &str, pos: StreamPos) -> bool {
        let mut snapshots = self.handle.snapshots();
        let seen = tokio::time::timeout(VISIBLE_WAIT, snapshots.wait_for(|s| s.has_applied(owner, pos))).await;
        let ok = matches!(seen, Ok(Ok(_)));
        if !ok {
            tracing::debug!("{owner}'s update {pos:?} has not arrived within {VISIBLE_WAIT:?}; answering anyway");
        }
        ok
    }
}

/// The updates a 2xx answer of `owner` says carry its write, node by node: its own in
/// [`UPDATE_HEADER`], other nodes' in [`UPDATE_OF_HEADER`]; not `me`'s, which were applied
/// before this node answered the part it did.
fn updates_named(headers: &HeaderMap, owner: &str, me: &str) -> Vec<(String, StreamPos)> {
    let own = headers.get(UPDATE_HEADER).and_then(parse_update_header).map(|pos| (owner.to_owned(), pos));
    let others = headers.get_all(UPDATE_OF_HEADER).iter().filter_map(parse_update_of_header);
    own.into_iter().chain(others).filter(|(node, _)| node != me).collect()
}

/// A request body as an [`Upload`] for [`Writer::forward`]: its length from `Content-Length`
/// when the client sent one.
pub fn upload(body: Body, headers: &HeaderMap) -> Upload {
    let len = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    Upload { body, len }
}

/// A body read from `reader` (an FTP data connection), in chunks as they arrive.
pub fn body_from_reader<R: AsyncRead + Send + Unpin + 'static>(reader: R) -> Body {
    const CHUNK: usize = 64 << 10;
    let chunks = futures_util::stream::try_unfold(reader, |mut reader| async move {
        let mut buf = bytes::BytesMut::with_capacity(CHUNK);
        match reader.read_buf(&mut buf).await? {
            0 => Ok::<_, std::io::Error>(None),
            _ => Ok(Some((Frame::data(buf.freeze()), reader))),
        }
    });
    StreamBody::new(futures_util::TryStreamExt::map_err(chunks, BoxError::from)).boxed_unsync()
}

/// Chunks in flight between the body and the thread that writes them.
const IN_FLIGHT: usize = 16;

/// A [`FileWriter`] fed from the async side: on a blocking thread, which takes the chunks as
/// they come; or inline in the simulator. Unlike [`Blocking::feed`], a body that stops early is
/// never committed: the caller gets the writer back and decides.
enum Spool {
    Inline(Result<Box<dyn FileWriter>, WriteError>),
    Thread(mpsc::Sender<Bytes>, tokio::task::JoinHandle<Result<Box<dyn FileWriter>, WriteError>>),
}

impl Spool {
    fn start(writer: Box<dyn FileWriter>, blocking: Blocking) -> Spool {
        match blocking {
            Blocking::Inline => Spool::Inline(Ok(writer)),
            Blocking::Threads => {
                let (tx, mut rx) = mpsc::channel::<Bytes>(IN_FLIGHT);
                let task = tokio::task::spawn_blocking(move || {
                    let mut writer = writer;
                    while let Some(chunk) = rx.blocking_recv() {
                        writer.write(&chunk)?;
                    }
                    Ok(writer)
                });
                Spool::Thread(tx, task)
            }
        }
    }

    /// Hands over the next chunk; false once the writer has stopped at an error.
    async fn push(&mut self, chunk: Bytes) -> bool {
        match self {
            Spool::Inline(state) => {
                if let Ok(w) = state {
                    if let Err(e) = w.write(&chunk) {
                        *state = Err(e);
                    }
                }
                state.is_ok()
            }
            Spool::Thread(tx, _) => tx.send(chunk).await.is_ok(),
        }
    }

    /// The writer once every chunk is written, or the error it stopped at.
    async fn finish(self, path: &DfsPath) -> Result<Box<dyn FileWriter>, WriteError> {
        match self {
            Spool::Inline(state) => state,
            Spool::Thread(tx, task) => {
                drop(tx);
                task.await.unwrap_or_else(|e| {
                    Err(WriteError::Io { path: path.clone(), cause: std::io::Error::other(e.to_string()) })
                })
            }
        }
    }
}

/// Whether another node's answer to a write says it did not do it although it did not refuse
/// it: our nodes answer a write they did with `201` or `204` only, while a node of the
/// original, whose `/fs/` does not look at the method, answers a `PUT` or a `DELETE` of its
/// file with the file (`200`), and of its directory with a listing or a redirect.
pub fn not_taken(status: http::StatusCode) -> bool {
    (status.is_success() || status.is_redirection())
        && !matches!(status, http::StatusCode::CREATED | http::StatusCode::NO_CONTENT)
}

pub fn not_taken_reason(node: &str, status: http::StatusCode) -> String {
    format!("node {node} answered {status} and did not do it: it takes no writes (a node of the original dftp?)")
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::path::Path;
    use std::sync::Mutex;

    use dftp_core::{Config, Event, FileInfo, FileMode, Greeting, Node, PeerAddr, Update};
    use http::{Request, Response, StatusCode};
    use http_body_util::Full;
    use tokio::sync::watch;

    use super::*;
    use crate::driver::{Clock, Driver};
    use crate::localfs::{is_temp_name, Precondition, StdFs, WriteMode};
    use crate::net::TokioNet;

    fn p(s: &str) -> DfsPath {
        DfsPath::parse_request(s).unwrap()
    }

    /// A node "a" serving `root` at `mount`, its driver running, its tree scanned.
    struct Running {
        writer: Writer,
        handle: Handle,
        _stop: watch::Sender<bool>,
    }

    async fn node(root: &Path, mount: &str) -> Running {
        let fs: Arc<dyn LocalFs> = Arc::new(StdFs::new(root).unwrap());
        let client = PeerClient::new(Arc::new(TokioNet));
        let mount = Mount::parse(mount).unwrap();
        // Peers' addresses in these tests refuse connections at once.
        let mut cfg = Config::new(
            "a",
            "dftp",
            PeerAddr::parse("127.0.0.1:1").unwrap(),
            PeerAddr::parse("127.0.0.1:1").unwrap(),
            1,
        );
        cfg.mount = mount.clone();
        cfg.announce_interval = None;
        let clock = Clock::new(1_700_000_000_000);
        let (driver, handle) = Driver::new(Node::new(cfg, clock.now()), clock, client.clone(), None, Blocking::Threads);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(driver.run(stopped));
        let scanned = watcher::to_cluster(&mount, fs.scan_at_start().unwrap().entries);
        handle.ask(Event::LocalScan(scanned)).await.unwrap();
        let writer = Writer::new(&Content::new(fs, client), handle.clone(), mount);
        Running { writer, handle, _stop: stop }
    }

    fn body_of(chunks: Vec<Result<&'static [u8], &'static str>>) -> Body {
        let frames = chunks.into_iter().map(|c| c.map(|b| Frame::data(Bytes::from_static(b))).map_err(BoxError::from));
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    fn temp_files(root: &Path) -> usize {
        walkdir_count(root)
    }

    fn walkdir_count(dir: &Path) -> usize {
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if is_temp_name(e.file_name().as_encoded_bytes()) {
                n += 1;
            }
            if e.file_type().unwrap().is_dir() {
                n += walkdir_count(&e.path());
            }
        }
        n
    }

    #[tokio::test]
    async fn each_write_shows_in_this_nodes_tree_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let n = node(dir.path(), "data").await;
        let before = n.handle.snapshot().stream_pos();
        let stored = n
            .writer
            .put(&p("x/f.txt"), body_of(vec![Ok(b"hel"), Ok(b"lo")]), Some(5), WriteOptions::replace())
            .await
            .unwrap();
        assert!(stored.created);
        assert_eq!(stored.size, 5);
        let snap = n.handle.snapshot();
        let entry = snap.lookup(&p("data/x/f.txt")).expect("in the tree once put returns");
        assert_eq!((entry.owner.as_str(), entry.size()), ("a", 5));
        assert!(snap.lookup(&p("data/x")).is_some_and(|e| e.is_dir()));
        assert!(stored.update > before && stored.update == snap.stream_pos(), "the update that carries it");
        assert_eq!(std::fs::read(dir.path().join("x/f.txt")).unwrap(), b"hello");

        // The watcher, rescanning what the write changed, finds nothing new to send.
        let fs: Arc<dyn LocalFs> = Arc::new(StdFs::new(dir.path()).unwrap());
        for roots in [vec![p("x/f.txt")], vec![p("x")]] {
            for event in watcher::rescan(fs.as_ref(), &Mount::parse("data").unwrap(), &roots).into_events() {
                n.handle.ask(event).await.unwrap();
            }
            assert_eq!(n.handle.snapshot().stream_pos(), stored.update, "no second update");
        }

        let done = n.writer.make_dir(&p("x/d")).await.unwrap();
        assert!(n.handle.snapshot().lookup(&p("data/x/d")).is_some());
        assert_eq!(done.update, n.handle.snapshot().stream_pos());
        let done = n.writer.copy(&p("x/f.txt"), &p("x/d/g.txt"), false).await.unwrap();
        assert!(!done.replaced);
        assert_eq!(n.handle.snapshot().lookup(&p("data/x/d/g.txt")).map(|e| e.size()), Some(5));
        let done = n.writer.rename(&p("x/d"), &p("moved"), false).await.unwrap();
        let snap = n.handle.snapshot();
        assert!(snap.lookup(&p("data/x/d")).is_none() && snap.lookup(&p("data/moved/g.txt")).is_some());
        assert_eq!(done.update, snap.stream_pos());
        n.writer.remove_file(&p("x/f.txt")).await.unwrap();
        assert!(n.handle.snapshot().lookup(&p("data/x/f.txt")).is_none());
        n.writer.remove_dir(&p("moved"), true).await.unwrap();
        assert!(n.handle.snapshot().lookup(&p("data/moved")).is_none());
        n.writer.remove_dir(&p("x"), false).await.unwrap();
        assert!(n.handle.snapshot().lookup(&p("data/x")).is_none());
        assert!(n.handle.snapshot().local_files().next().is_none());
    }

    #[tokio::test]
    async fn a_body_that_fails_or_falls_short_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"old").unwrap();
        let n = node(dir.path(), "").await;
        let before = n.handle.snapshot().lookup(&p("f")).unwrap();
        let bodies = [
            (body_of(vec![Ok(b"new "), Err("the client went away")]), None),
            (body_of(vec![Ok(b"new")]), Some(10)),
            (body_of(vec![Ok(b"much longer")]), Some(3)),
        ];
        for (body, len) in bodies {
            let e = n.writer.put(&p("f"), body, len, WriteOptions::replace()).await.err().unwrap();
            assert!(matches!(e, WriteError::Body { .. }), "{e}");
            assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"old");
            assert_eq!(temp_files(dir.path()), 0);
            assert_eq!(n.handle.snapshot().lookup(&p("f")), Some(before.clone()));
        }
        // The same for a new file in new directories: nothing of it stays.
        let body = body_of(vec![Ok(b"x"), Err("gone")]);
        assert!(n.writer.put(&p("new/dir/f"), body, None, WriteOptions::replace()).await.is_err());
        assert!(!dir.path().join("new").exists());
        assert!(n.handle.snapshot().lookup(&p("new")).is_none());
    }

    #[tokio::test]
    async fn errors_name_paths_of_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let n = node(dir.path(), "data").await;
        let e = n.writer.make_dir(&p("x/y")).await.err().unwrap();
        assert_eq!(e.to_string(), "the directory /data/x does not exist");
        let pre = WriteOptions { precondition: Precondition::Present, ..WriteOptions::replace() };
        let e = n.writer.put(&p("f"), body_of(vec![Ok(b"x")]), None, pre).await.err().unwrap();
        assert!(e.to_string().contains("/data/f"), "{e}");
        let append = WriteOptions { mode: WriteMode::At(9), ..WriteOptions::replace() };
        let e = n.writer.put(&p("f"), body_of(vec![Ok(b"x")]), None, append).await.err().unwrap();
        assert!(matches!(e, WriteError::BadOffset { size: 0, .. }), "{e}");
        assert!(!e.to_string().contains(&dir.path().to_string_lossy().into_owned()), "no disk path: {e}");
    }

    /// One request as a fake owner saw it: method, URL, headers, and its body or why it failed.
    type SeenRequest = (String, String, HeaderMap, Result<Vec<u8>, String>);

    /// What a fake owner saw of its requests (one message per request, once it has read it).
    #[derive(Default)]
    struct Seen {
        requests: Vec<SeenRequest>,
        notify: Option<mpsc::UnboundedSender<()>>,
    }

    /// An owner that answers every request with `status` and `extra` headers, reading the body
    /// first unless it refuses (4xx).
    async fn owner(status: StatusCode, extra: Vec<(&'static str, String)>) -> (PeerAddr, Arc<Mutex<Seen>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (s, extra) = (s.clone(), extra.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (s, extra) = (s.clone(), extra.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let got = if status.is_client_error() {
                                Ok(Vec::new())
                            } else {
                                body.collect().await.map(|b| b.to_bytes().to_vec()).map_err(|e| e.to_string())
                            };
                            let url = parts.uri.to_string();
                            let mut seen = s.lock().unwrap();
                            seen.requests.push((parts.method.to_string(), url, parts.headers, got));
                            if let Some(n) = &seen.notify {
                                let _ = n.send(());
                            }
                            drop(seen);
                            let mut resp = Response::builder().status(status);
                            for (k, v) in &extra {
                                resp = resp.header(*k, v.as_str());
                            }
                            Ok::<_, Infallible>(resp.body(Full::new(Bytes::from_static(b"answer"))).unwrap())
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
                });
            }
        });
        (PeerAddr::new_unchecked("127.0.0.1", port), seen)
    }

    fn forward_to(addr: &PeerAddr) -> Forward {
        Forward { owner: "b".into(), addr: addr.clone(), hops: 1 }
    }

    fn client_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dTpw"));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"abc\""));
        h.insert(header::COOKIE, HeaderValue::from_static("not=passed"));
        h.insert("x-update-range", HeaderValue::from_static("append"));
        h
    }

    #[tokio::test]
    async fn a_forwarded_write_carries_the_method_credentials_and_body() {
        let dir = tempfile::tempdir().unwrap();
        let n = node(dir.path(), "").await;
        let (addr, seen) = owner(StatusCode::CREATED, vec![]).await;
        let path = p("a dir/f#1.txt");
        for len in [Some(11), None] {
            let upload = Upload { body: body_of(vec![Ok(b"hello "), Ok(b"world")]), len };
            let answer = n
                .writer
                .forward(&forward_to(&addr), &path, Method::PUT, &client_headers(), Some(upload))
                .await
                .unwrap();
            assert_eq!(answer.status, StatusCode::CREATED);
            let body = answer.into_body(None).collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"answer");
        }
        let answer =
            n.writer.forward(&forward_to(&addr), &path, Method::DELETE, &client_headers(), None).await.unwrap();
        assert_eq!(answer.status, StatusCode::CREATED);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.requests.len(), 3);
        for (i, (method, url, headers, body)) in seen.requests.iter().enumerate() {
            assert_eq!(url, &format!("/fs/a%20dir/f%231.txt?{HOPS_PARAM}=1"));
            assert_eq!(headers.get(header::AUTHORIZATION).unwrap(), "Basic dTpw", "the owner checks them again");
            assert_eq!(headers.get(header::IF_MATCH).unwrap(), "\"abc\"");
            assert_eq!(headers.get("x-update-range").unwrap(), "append");
            assert!(headers.get(header::COOKIE).is_none());
            if i < 2 {
                assert_eq!(method, "PUT");
                assert_eq!(body.as_deref(), Ok(&b"hello world"[..]));
                assert_eq!(headers.get(header::EXPECT).unwrap(), "100-continue");
                let framed =
                    if i == 0 { headers.get(header::CONTENT_LENGTH) } else { headers.get(header::TRANSFER_ENCODING) };
                assert_eq!(framed.unwrap(), if i == 0 { "11" } else { "chunked" });
            } else {
                assert_eq!(method, "DELETE");
            }
        }
    }

    /// An owner that refuses at once (401, 403, 412) is never sent the body, and its answer
    /// comes back as it is.
    #[tokio::test]
    async fn a_refused_forward_sends_no_body() {
        let dir = tempfile::tempdir().unwrap();
        let n = node(dir.path(), "").await;
        let (addr, seen) =
            owner(StatusCode::UNAUTHORIZED, vec![("www-authenticate", "Basic realm=\"dftp\"".into())]).await;
        let polled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = polled.clone();
        let body = futures_util::stream::once(async move {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"secret upload")))
        });
        let upload = Upload { body: StreamBody::new(body).boxed_unsync(), len: Some(13) };
        let answer =
            n.writer.forward(&forward_to(&addr), &p("f"), Method::PUT, &client_headers(), Some(upload)).await.unwrap();
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.headers.contains_key("www-authenticate"));
        assert!(!polled.load(std::sync::atomic::Ordering::SeqCst), "the body was never read");
        assert_eq!(seen.lock().unwrap().requests.len(), 1);
    }

    #[tokio::test]
    async fn a_client_body_that_fails_fails_the_forward_and_the_owner_sees_it_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let n = node(dir.path(), "").await;
        let (addr, seen) = owner(StatusCode::CREATED, vec![]).await;
        let (tx, mut read) = mpsc::unbounded_channel();
        seen.lock().unwrap().notify = Some(tx);
        for len in [Some(100), None] {
            let upload = Upload { body: body_of(vec![Ok(b"part"), Err("the client went away")]), len };
            let e = n.writer.forward(&forward_to(&addr), &p("f"), Method::PUT, &HeaderMap::new(), Some(upload)).await;
            assert!(e.is_err());
        }
        // The owner sees both bodies fail: it keeps the old file.
        read.recv().await.unwrap();
        read.recv().await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.requests.len(), 2);
        assert!(
            seen.requests.iter().all(|r| r.3.is_err()),
            "{:?}",
            seen.requests.iter().map(|r| &r.3).collect::<Vec<_>>()
        );
    }

    fn update_from_b(seq: u64, full: bool) -> Update {
        let file = FileInfo {
            full_name: format!("b{seq}.txt").into(),
            dir: false,
            last_modified: 1,
            last_info_updated: 1,
            size_in_bytes: 1,
            file_mode: FileMode::file(0o644),
            owner_node: "b".into(),
            deletion: false,
        };
        Update {
            files: vec![file],
            update_time: 1,
            full,
            sender_node_name: "b".into(),
            epoch: Some(7),
            seq: Some(seq),
            buckets: None,
        }
    }

    /// A node that passed a write on answers once it has the owner's update: it waits for it.
    #[tokio::test]
    async fn the_forwarding_node_waits_for_the_owners_update() {
        let dir = tempfile::tempdir().unwrap();
        let n = node(dir.path(), "").await;
        let greeting = Greeting {
            name: "b".into(),
            public_addr: PeerAddr::parse("127.0.0.1:1").unwrap(),
            mgmt_addr: PeerAddr::parse("127.0.0.1:1").unwrap(),
            request_full_update: false,
        };
        n.handle.ask(Event::GreetingReceived { greeting, from_host: None }).await.unwrap();
        n.handle.ask(Event::UpdateReceived(update_from_b(3, true))).await.unwrap();
        let at = |seq| StreamPos { epoch: 7, seq };
        assert!(n.writer.await_update("b", at(3)).await, "already applied: no wait");

        let waiting = n.writer.await_update("b", at(4));
        tokio::pin!(waiting);
        assert!(futures_util::poll!(&mut waiting).is_pending(), "it waits for update 4");
        n.handle.ask(Event::UpdateReceived(update_from_b(4, false))).await.unwrap();
        assert!(waiting.await);
        assert!(n.handle.snapshot().lookup(&p("b4.txt")).is_some(), "the change shows when it returns");

        // And forward does it after a 2xx that names the update.
        let (addr, _) = owner(StatusCode::NO_CONTENT, vec![(UPDATE_HEADER, "7.4".into())]).await;
        let answer =
            n.writer.forward(&forward_to(&addr), &p("f"), Method::DELETE, &HeaderMap::new(), None).await.unwrap();
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        assert_eq!(parse_update_header(&update_header_value(at(4))), Some(at(4)));
        assert_eq!(parse_update_header(&HeaderValue::from_static("7")), None);
    }

    #[test]
    fn the_updates_an_answer_names() {
        let at = |seq| StreamPos { epoch: 7, seq };
        let mut h = HeaderMap::new();
        assert!(updates_named(&h, "b", "a").is_empty());
        h.insert(UPDATE_HEADER, update_header_value(at(4)));
        assert_eq!(updates_named(&h, "b", "a"), vec![("b".to_string(), at(4))]);
        // A move from b to c and to us: b names c's update and ours; we wait for b's and c's.
        h.append(UPDATE_OF_HEADER, update_of_header_value("c", at(2)).unwrap());
        h.append(UPDATE_OF_HEADER, update_of_header_value("a", at(9)).unwrap());
        h.append(UPDATE_OF_HEADER, HeaderValue::from_static("d=x.1"));
        assert_eq!(updates_named(&h, "b", "a"), vec![("b".to_string(), at(4)), ("c".to_string(), at(2))]);
        let odd = update_of_header_value("node=ü", at(3)).unwrap();
        assert_eq!(parse_update_of_header(&odd), Some(("node=ü".to_string(), at(3))));
        assert_eq!(parse_update_of_header(&HeaderValue::from_static("c")), None);
    }

    #[tokio::test]
    async fn a_body_read_from_an_ftp_connection() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let body = body_from_reader(std::io::Cursor::new(data.clone()));
        assert_eq!(body.collect().await.unwrap().to_bytes().to_vec(), data);
    }
}
