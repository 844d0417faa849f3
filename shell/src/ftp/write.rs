//! FTP's changes to the tree, carried out: `STOR`, `APPE`, `REST` + `STOR`, `STOU`, `DELE`,
//! `MKD`, `RMD` and `RNFR`/`RNTO`, planned by [`plan`] and made through the write layer
//! ([`crate::content::Writer`]): on this node's disk (a temporary file beside the target,
//! fsynced and renamed into place, so that a reader sees the old content or the new and a
//! broken upload leaves the old file), or passed on to the node that takes the path as the
//! HTTP request that makes the same change, with the session's login (the owner checks it
//! against its own rules). Either way the command is answered once this node's tree shows the
//! change.
//!
//! Every change is checked here again ([`Backend::writable`]), whatever the gate said: a
//! server without accounts is read-only, a name that is no path of the tree or that belongs to
//! an upload under way is refused (`553`), and the rules decide the rest (`550`).

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use dftp_core::{DfsPath, Forward};
use http::{header, HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, ReadBuf};
use unftp_core::storage::ErrorKind;

use super::access::{self, Denied, FtpUser};
use super::backend::Backend;
use super::plan::{self, At, Refusal, Rename, UploadKind};
use super::transfer;
use crate::content::encode_path;
use crate::content::write::body_from_reader;
use crate::localfs::write::has_temp_segment;
use crate::localfs::TEMP_PREFIX;
use crate::upstream::{Fetched, Upload};
use dftp_core::ftp_path::{resolve, Refused};

/// A client that sends nothing on its data connection for this long is given up on (the
/// upload fails with `426` and changes nothing): otherwise it would hold a temporary file and a
/// writing thread for as long as it liked.
pub const CLIENT_STALL: Duration = transfer::WRITE_STALL;

/// How much of an owner's refusal is read for its reason.
const REASON_LEN: usize = 1024;

/// The upload command a session's gate let through last, for its back-end: libunftp hands the
/// back-end only a start position ([`UploadKind`] says why that is not enough).
#[derive(Debug, Default)]
pub struct NextUpload(Mutex<Option<(Option<DfsPath>, UploadKind)>>);

impl NextUpload {
    /// The gate let `kind` through for `path` (`None`: `STOU`, whose name libunftp makes up).
    pub fn set(&self, path: Option<DfsPath>, kind: UploadKind) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((path, kind));
    }

    /// The kind of the upload of `path` now starting: what the gate let through for it, or a
    /// plain `STOR`.
    pub fn take(&self, path: &DfsPath) -> UploadKind {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some((None, kind)) => kind,
            Some((Some(p), kind)) if &p == path => kind,
            _ => UploadKind::Store,
        }
    }
}

/// What became of a client's data connection while its bytes were read.
#[derive(Debug, Default)]
struct Received {
    bytes: AtomicU64,
    failed: Mutex<Option<String>>,
}

impl Received {
    fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A client's data connection as an upload's body: it counts what arrives, remembers how the
/// connection failed (so that a failed pass-on is told apart from a client that went away),
/// and fails once the client has sent nothing for [`CLIENT_STALL`].
struct DataIn<R> {
    inner: R,
    stall: Pin<Box<tokio::time::Sleep>>,
    seen: Arc<Received>,
}

impl<R> DataIn<R> {
    fn new(inner: R, seen: Arc<Received>) -> DataIn<R> {
        DataIn { inner, stall: Box::pin(tokio::time::sleep(CLIENT_STALL)), seen }
    }

    fn fail(&self, e: io::Error) -> Poll<io::Result<()>> {
        *self.seen.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        Poll::Ready(Err(e))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for DataIn<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.seen.bytes.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
                let deadline = tokio::time::Instant::now() + CLIENT_STALL;
                self.stall.as_mut().reset(deadline);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => self.fail(e),
            Poll::Pending => match self.stall.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let why = format!("the client sent nothing for {CLIENT_STALL:?}");
                    self.fail(io::Error::new(io::ErrorKind::TimedOut, why))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Backend {
    /// The cluster path of a change `user` asks for at `path`: refused on a read-only server
    /// (`550`), for a name that is no path of the tree or that an upload under way uses
    /// (`553`), and where the rules do not let `user` change it (`550`).
    pub(super) fn writable(&self, user: &FtpUser, path: &Path) -> Result<DfsPath, Refusal> {
        if !self.rules().has_accounts() {
            return Err(Denied::ReadOnly.into());
        }
        let p = resolve(path).map_err(|e| match e {
            Refused::Escapes => Refusal::bad_name(format_args!("{}: the path leads outside the tree", path.display())),
            Refused::Invalid(_) => Refusal::bad_name(e),
        })?;
        if has_temp_segment(p.as_str()) {
            return Err(Refusal::bad_name(format_args!(
                "{p}: names starting with {TEMP_PREFIX} are kept for uploads under way"
            )));
        }
        access::may_write(self.rules(), Some(user), Some(&p))?;
        Ok(p)
    }

    /// The gate's question for the write command `verb` on `path` (joined onto `cwd`): the
    /// refusal it would meet now, or `None`, after which the upload it starts (if it is one)
    /// is the kind `verb` says. `RNTO` is only checked for the target: the source is libunftp's
    /// to remember, and [`Backend::rename`] checks both.
    pub fn refuse_write(&self, user: &FtpUser, verb: &str, path: Option<&Path>, cwd: &Path) -> Option<Refusal> {
        let checked = || -> Result<(), Refusal> {
            // STOU makes up a name in the working directory.
            let p = self.writable(user, path.unwrap_or(cwd))?;
            let snap = self.snapshot();
            let kind = match verb {
                "STOR" => UploadKind::Store,
                "APPE" => UploadKind::Append,
                "STOU" => {
                    if !snap.lookup(&p).is_some_and(|e| e.is_dir()) {
                        return Err(Refusal::new(
                            ErrorKind::PermanentFileNotAvailable,
                            format_args!("{p}: not a directory"),
                        ));
                    }
                    self.next_upload().set(None, UploadKind::Unique);
                    return Ok(());
                }
                "DELE" => return plan::delete(&p, snap.locate_write(&p, 0)).map(drop),
                "MKD" => return plan::make_dir(&p, snap.locate_write(&p, 0)).map(drop),
                "RMD" => return plan::remove_dir(&p, snap.locate_write(&p, 0), is_empty(&snap, &p)).map(drop),
                "RNFR" => return plan::rename_source(&p, snap.locate_write(&p, 0)).map(drop),
                _ => return Ok(()),
            };
            plan::store(&p, snap.locate_write(&p, 0), kind, 0)?;
            self.next_upload().set(Some(p), kind);
            Ok(())
        };
        checked().err()
    }

    /// `STOR`, `APPE`, `REST` + `STOR`, `STOU`: the data connection `input`, written to `path`
    /// from `start` (the `REST` offset). Returns the bytes received.
    pub(super) async fn store<R>(&self, user: &FtpUser, input: R, path: &Path, start: u64) -> Result<u64, Refusal>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let p = self.writable(user, path)?;
        let kind = self.next_upload().take(&p);
        let store = plan::store(&p, self.snapshot().locate_write(&p, 0), kind, start)?;
        let seen = Arc::new(Received::default());
        let body = body_from_reader(DataIn::new(input, seen.clone()));
        match store.at {
            At::Here(local) => {
                self.shared().writer.put(&local, body, None, store.opts).await?;
            }
            At::Owner(to) => {
                let (method, headers) = plan::store_request(&store.opts);
                let upload = Upload { body, len: None };
                self.pass_on(user, &to, &p, method, headers, Some(upload), Some(&seen)).await?;
            }
        }
        Ok(seen.bytes.load(Ordering::Relaxed))
    }

    /// `DELE`.
    pub(super) async fn delete(&self, user: &FtpUser, path: &Path) -> Result<(), Refusal> {
        let p = self.writable(user, path)?;
        match plan::delete(&p, self.snapshot().locate_write(&p, 0))? {
            At::Here(local) => self.shared().writer.remove_file(&local).await.map(drop).map_err(Refusal::from),
            At::Owner(to) => self.pass_on(user, &to, &p, Method::DELETE, HeaderMap::new(), None, None).await,
        }
    }

    /// `MKD`.
    pub(super) async fn make_dir(&self, user: &FtpUser, path: &Path) -> Result<(), Refusal> {
        let p = self.writable(user, path)?;
        match plan::make_dir(&p, self.snapshot().locate_write(&p, 0))? {
            At::Here(local) => self.shared().writer.make_dir(&local).await.map(drop).map_err(Refusal::from),
            At::Owner(to) => self.pass_on(user, &to, &p, mkcol(), HeaderMap::new(), None, None).await,
        }
    }

    /// `RMD`: an empty directory, every node's part of it, this node's first (the disk has the
    /// last word on whether it is empty). What another node could not remove is named in the
    /// refusal.
    pub(super) async fn remove_dir(&self, user: &FtpUser, path: &Path) -> Result<(), Refusal> {
        let p = self.writable(user, path)?;
        let snap = self.snapshot();
        let parts = plan::remove_dir(&p, snap.locate_write(&p, 0), is_empty(&snap, &p))?;
        if let Some(local) = &parts.here {
            self.shared().writer.remove_dir(local, false).await?;
        }
        let mut failed = Vec::new();
        for other in &parts.others {
            // The other nodes' parts were empty in the tree a moment ago; DELETE is how a
            // node is asked to remove its part.
            if let Err(r) = self.pass_on(user, other, &p, Method::DELETE, HeaderMap::new(), None, None).await {
                failed.push(r);
            }
        }
        match failed.len() {
            0 => Ok(()),
            1 => Err(failed.remove(0)),
            _ => {
                Err(Refusal::new(failed[0].kind, failed.iter().map(|r| r.why.as_str()).collect::<Vec<_>>().join("; ")))
            }
        }
    }

    /// `RNFR` + `RNTO`.
    pub(super) async fn rename(&self, user: &FtpUser, from: &Path, to: &Path) -> Result<(), Refusal> {
        let (from, to) = (self.writable(user, from)?, self.writable(user, to)?);
        let snap = self.snapshot();
        match plan::rename(&from, snap.locate_write(&from, 0), &to, snap.locate_write(&to, 0))? {
            Rename::Here { from, to, overwrite } => {
                self.shared().writer.rename(&from, &to, overwrite).await.map(drop).map_err(Refusal::from)
            }
            Rename::AtOwner { owner, overwrite } => {
                let mut headers = HeaderMap::new();
                // A full URL, as WebDAV wants it, on the node the request goes to.
                let destination = owner.addr.url(&format!("/fs/{}", encode_path(&to)));
                let destination = HeaderValue::try_from(destination)
                    .map_err(|_| Refusal::bad_name(format_args!("{to} cannot be named in a request")))?;
                headers.insert("destination", destination);
                headers.insert("overwrite", HeaderValue::from_static(if overwrite { "T" } else { "F" }));
                self.pass_on(user, &owner, &from, moved(), headers, None, None).await
            }
            Rename::CopyThenDelete { from: local, len, to: taker, overwrite } => {
                // The file streams from our disk to its new node; only once that node has
                // stored it is it removed here. A copy that fails leaves the source as it was.
                let (reader, mut writer) = tokio::io::duplex(256 << 10);
                let content = self.shared().content.clone();
                let source = local.clone();
                let copy = tokio::spawn(async move { transfer::local(&content, &source, len, 0, &mut writer).await });
                let mut headers = HeaderMap::new();
                if !overwrite {
                    headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
                }
                let upload = Upload { body: body_from_reader(reader), len: Some(len) };
                let sent = self.pass_on(user, &taker, &to, Method::PUT, headers, Some(upload), None).await;
                let copied = copy.await.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| format!("{e:?}")));
                sent?;
                if let Err(why) = copied {
                    // The owner took what arrived (a short body it would have refused): say so.
                    return Err(Refusal::new(ErrorKind::LocalError, format_args!("copying {from} failed: {why}")));
                }
                self.shared().writer.remove_file(&local).await.map(drop).map_err(|e| {
                    let r = Refusal::from(e);
                    Refusal::new(r.kind, format_args!("{to} was written, but {from} could not be removed: {r}"))
                })
            }
        }
    }

    /// Passes a change of `p` on to `to` as `method` with `headers` (and the session's login),
    /// and turns its answer into the FTP outcome. `seen` is the client's data connection, for
    /// an upload: when it failed, the client is told the upload broke (`426`).
    #[allow(clippy::too_many_arguments)]
    async fn pass_on(
        &self,
        user: &FtpUser,
        to: &Forward,
        p: &DfsPath,
        method: Method,
        mut headers: HeaderMap,
        upload: Option<Upload>,
        seen: Option<&Received>,
    ) -> Result<(), Refusal> {
        if let Some(auth) = user.authorization() {
            headers.insert(header::AUTHORIZATION, auth);
        }
        let broken = |why: String| {
            Refusal::new(ErrorKind::ConnectionClosed, format_args!("the upload of {p} did not complete: {why}"))
        };
        let answer = match self.shared().writer.forward(to, p, method, &headers, upload).await {
            Ok(answer) => answer,
            Err(e) => {
                if let Some(why) = seen.and_then(Received::failure) {
                    return Err(broken(why));
                }
                tracing::info!("FTP: passing the change of {p} on to node {} failed: {e}", to.owner);
                return Err(Refusal::new(
                    ErrorKind::LocalError,
                    format_args!("passing the change of {p} on to node {} failed: {e}", to.owner),
                ));
            }
        };
        let status = answer.status;
        if crate::content::write::not_taken(status) {
            let why = crate::content::write::not_taken_reason(&to.owner, status);
            return Err(Refusal::new(ErrorKind::PermanentFileNotAvailable, format_args!("{p}: {why}")));
        }
        if status.is_success() {
            return Ok(());
        }
        let reason = reason(answer).await;
        match (seen.and_then(Received::failure), plan::owner_refusal(status, &reason, &to.owner, p)) {
            (Some(why), _) => Err(broken(why)),
            (None, Some(refusal)) => Err(refusal),
            (None, None) => Ok(()),
        }
    }
}

/// Whether `p` has nothing in it in `snap`'s tree.
fn is_empty(snap: &dftp_core::Snapshot, p: &DfsPath) -> bool {
    snap.list(p).is_none_or(|children| children.is_empty())
}

fn mkcol() -> Method {
    Method::from_bytes(b"MKCOL").expect("a valid method")
}

fn moved() -> Method {
    Method::from_bytes(b"MOVE").expect("a valid method")
}

/// The first line of an owner's refusal (its body, read up to [`REASON_LEN`] bytes).
async fn reason(answer: Fetched) -> String {
    let mut body = answer.into_body(None);
    let mut text = Vec::new();
    while text.len() < REASON_LEN {
        match tokio::time::timeout(transfer::READ_STALL, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    text.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    text.truncate(REASON_LEN);
    let text = String::from_utf8_lossy(&text);
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn the_gate_tells_the_back_end_what_upload_it_let_through() {
        let next = NextUpload::default();
        let (f, g) = (DfsPath::parse("f").unwrap(), DfsPath::parse("g").unwrap());
        assert_eq!(next.take(&f), UploadKind::Store, "nothing let through: a plain STOR");
        next.set(Some(f.clone()), UploadKind::Append);
        assert_eq!(next.take(&g), UploadKind::Store, "another path: not that upload");
        next.set(Some(f.clone()), UploadKind::Append);
        assert_eq!(next.take(&f), UploadKind::Append);
        assert_eq!(next.take(&f), UploadKind::Store, "taken once");
        next.set(None, UploadKind::Unique);
        assert_eq!(next.take(&g), UploadKind::Unique, "STOU's name is made up later");
    }

    #[tokio::test]
    async fn the_data_connection_counts_and_remembers_its_failure() {
        let seen = Arc::new(Received::default());
        let mut ok = DataIn::new(std::io::Cursor::new(vec![7u8; 1000]), seen.clone());
        let mut out = Vec::new();
        ok.read_to_end(&mut out).await.unwrap();
        assert_eq!((out.len(), seen.bytes.load(Ordering::Relaxed), seen.failure()), (1000, 1000, None));

        let seen = Arc::new(Received::default());
        let broken = tokio::io::AsyncReadExt::chain(&b"abc"[..], Failing);
        let mut broken = DataIn::new(broken, seen.clone());
        let mut out = Vec::new();
        assert!(broken.read_to_end(&mut out).await.is_err());
        assert_eq!((seen.bytes.load(Ordering::Relaxed), seen.failure().as_deref()), (3, Some("reset")));
    }

    /// A connection that fails.
    struct Failing;

    impl AsyncRead for Failing {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::Error::other("reset")))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_sending_is_given_up_on() {
        let seen = Arc::new(Received::default());
        let (_client, server) = tokio::io::duplex(64);
        let mut data = DataIn::new(server, seen.clone());
        let mut buf = [0u8; 8];
        let e = data.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(seen.failure().unwrap().contains("sent nothing"));
    }
}
