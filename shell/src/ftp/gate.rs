//! The command gate: replies that libunftp would get wrong, given before it acts.
//!
//! libunftp (with the gate added in `vendor/libunftp`, see its PATCHES.md) asks the gate about
//! every command after login. The gate answers:
//!
//! - reads (`RETR`, `LIST`, `NLST`, `MLSD`, `MLST`, `CWD`, `SIZE`, `MDTM`, `STAT <path>`) of a
//!   path the session may not read ([`access::may_read`]): `550` with the reason, before
//!   libunftp's `150` and before anything is looked up;
//! - writes (`STOR`, `APPE`, `STOU`, `DELE`, `MKD`, `RMD`, `RNFR`, `RNTO`) that the back-end
//!   would refuse now ([`Backend::refuse_write`]: the rules, a bad name, a path where the
//!   command cannot act): the back-end's reply (`550`, `553`, ...) with the reason, at once.
//!   libunftp alone would answer `350` to `RNFR`, `425` to an upload without a data connection
//!   and `150` to one with, before the back-end could refuse. An upload let through is passed
//!   on to the back-end as what it is (`STOR`, `APPE`, `STOU`: libunftp does not say);
//! - `RETR` of a directory or of nothing: `550` saying which, before libunftp's `150` (or `425`)
//!   and its generic `550 File not found`;
//! - `SIZE` of a directory: `550` (RFC 3659: SIZE is for files); libunftp would give its size;
//! - `STAT` without an argument: the session's status, where libunftp prints its own name and
//!   version and the authenticator's type;
//! - `STAT <path>`: the `LIST` lines (owner column included) over the control connection, with
//!   `213`, the path taken from the working directory as `LIST` takes it. libunftp answers `200`
//!   with its own line format and the path taken from the root.
//!
//! Everything else goes to libunftp.

use std::net::SocketAddr;
use std::path::Path;

use super::access::{self, FtpUser};
use super::backend::{Backend, Target};
use async_trait::async_trait;
use dftp_core::ftp_path::resolve;
use dftp_core::DfsPath;
use libunftp::options::{CommandGate, GateRequest, Reply, ReplyCode};
use unftp_core::storage::ErrorKind;

/// The gate of one session.
#[derive(Debug)]
pub struct Gate {
    backend: Backend,
}

impl Gate {
    pub fn new(backend: Backend) -> Gate {
        Gate { backend }
    }

    /// `RETR` and `SIZE`: a refusal when `path` is not a file that can be sent or sized.
    fn not_a_file(&self, verb: &str, path: &Path) -> Option<Reply> {
        let refusal = match self.backend.target(path) {
            Err(why) => why.to_string(),
            Ok((p, target)) => file_refusal(verb, &p, target)?,
        };
        Some(error(&refusal))
    }

    fn stat_path(&self, user: &FtpUser, path: &Path) -> Reply {
        let p = match self.backend.target(path) {
            Err(why) => return error(&why.to_string()),
            Ok((p, Target::Missing)) => return error(&format!("{p}: not found")),
            Ok((p, _)) => p,
        };
        match self.backend.long_listing(user, path) {
            Ok(lines) => Reply::new_multiline(ReplyCode::FileStatus, stat_path_lines(&p, lines)),
            // Gone in between.
            Err(_) => error(&format!("{p}: not found")),
        }
    }
}

#[async_trait]
impl CommandGate<FtpUser> for Gate {
    fn replied(&self, verb: &'static str, code: u32, took: std::time::Duration) {
        self.backend.metrics().ftp_command(verb, code, took);
    }

    async fn check(&self, req: &GateRequest<'_, FtpUser>) -> Option<Reply> {
        let anonymous = FtpUser::anonymous();
        let user = req.user.unwrap_or(&anonymous);
        // `STAT` alone is the session's status, not a read.
        if access::is_read(req.verb) && !(req.verb == "STAT" && req.path.is_none()) {
            // What the command reads: its argument, or the working directory.
            let path = req.path.as_deref().unwrap_or(req.cwd);
            if let Some(denied) = self.backend.refuse_read(Some(user), path) {
                return Some(error(&denied.to_string()));
            }
        }
        match req.verb {
            verb if access::is_write(verb) => {
                let refused = self.backend.refuse_write(user, verb, req.path.as_deref(), req.cwd)?;
                Some(Reply::new_with_string(reply_code(refused.kind), one_line(&refused.why)))
            }
            "RETR" | "SIZE" => self.not_a_file(req.verb, req.path.as_deref()?),
            "STAT" => Some(match &req.path {
                Some(path) => self.stat_path(user, path),
                None => {
                    let cwd = resolve(req.cwd).ok();
                    let status = Status {
                        client: req.client,
                        server: req.server,
                        username: req.username,
                        node: &self.backend.node_name(),
                        cwd: cwd.as_ref(),
                        access: &access::status_line(self.backend.rules(), Some(user), cwd.as_ref()),
                        data_connection_ready: req.data_connection_ready,
                    };
                    Reply::new_multiline(ReplyCode::SystemStatus, status.lines())
                }
            }),
            _ => None,
        }
    }
}

/// The reply code libunftp gives a storage error of `kind` (so that a refusal reads the same
/// from the gate as from the back-end).
fn reply_code(kind: ErrorKind) -> ReplyCode {
    match kind {
        ErrorKind::TransientFileNotAvailable => ReplyCode::TransientFileError,
        ErrorKind::PermanentFileNotAvailable
        | ErrorKind::PermanentDirectoryNotAvailable
        | ErrorKind::PermanentDirectoryNotEmpty
        | ErrorKind::PermissionDenied => ReplyCode::FileError,
        ErrorKind::ConnectionClosed => ReplyCode::ConnectionClosed,
        ErrorKind::LocalError => ReplyCode::LocalError,
        ErrorKind::PageTypeUnknown => ReplyCode::PageTypeUnknown,
        ErrorKind::InsufficientStorageSpaceError => ReplyCode::OutOfSpace,
        ErrorKind::ExceededStorageAllocationError => ReplyCode::ExceededStorageAllocation,
        ErrorKind::FileNameNotAllowedError => ReplyCode::BadFileName,
        ErrorKind::CommandNotImplemented => ReplyCode::CommandNotImplemented,
    }
}

/// A `550` reply with `text` made safe for one reply line.
fn error(text: &str) -> Reply {
    Reply::new_with_string(ReplyCode::FileError, one_line(text))
}

/// `text` with control characters (a CR or LF would end the reply line early, and let a file
/// name inject a reply of its own) shown as `?`.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Why `verb` (`RETR` or `SIZE`) cannot act on `p`, which is `target`; `None` for a file.
fn file_refusal(verb: &str, p: &DfsPath, target: Target) -> Option<String> {
    match (verb, target) {
        (_, Target::File) => None,
        (_, Target::Missing) => Some(format!("{p}: not found")),
        ("SIZE", Target::Dir) => Some(format!("{p} is not a regular file")),
        (_, Target::Dir) => Some(format!("{p} is a directory")),
    }
}

/// The reply lines of `STAT <path>`: a header, the listing in `LIST`'s format, a trailer.
fn stat_path_lines(p: &DfsPath, listing: Vec<String>) -> Vec<String> {
    let mut lines = Vec::with_capacity(listing.len() + 2);
    lines.push(format!("Status of {}:", one_line(&p.to_string())));
    lines.extend(listing);
    lines.push("End of status".into());
    lines
}

/// What `STAT` without an argument shows: the connection, the user, where they are and what
/// they may do. Nothing about the software behind it.
struct Status<'a> {
    client: SocketAddr,
    server: SocketAddr,
    username: Option<&'a str>,
    node: &'a str,
    cwd: Option<&'a DfsPath>,
    access: &'a str,
    data_connection_ready: bool,
}

impl Status<'_> {
    fn lines(&self) -> Vec<String> {
        let mut lines = vec!["FTP server status:".to_string()];
        lines.push(format!(" Connected to {} from {}", self.server, self.client));
        lines.push(match self.username {
            Some(u) => format!(" Logged in as {}", one_line(u)),
            None => " Not logged in".into(),
        });
        lines.push(format!(" Serving the cluster tree from node {}", one_line(self.node)));
        if let Some(cwd) = self.cwd {
            lines.push(format!(" Working directory: {}", one_line(&cwd.to_string())));
        }
        lines.push(format!(" {}", self.access));
        lines.push(
            if self.data_connection_ready {
                " Data connection: open, waiting for a command"
            } else {
                " No data connection"
            }
            .into(),
        );
        lines.push("End of status".into());
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> DfsPath {
        DfsPath::parse_request(s).unwrap()
    }

    #[test]
    fn retr_and_size_say_what_is_wrong() {
        let p = path("some dir");
        assert_eq!(file_refusal("RETR", &p, Target::Dir).as_deref(), Some("/some dir is a directory"));
        assert_eq!(file_refusal("SIZE", &p, Target::Dir).as_deref(), Some("/some dir is not a regular file"));
        assert_eq!(file_refusal("RETR", &DfsPath::root(), Target::Dir).as_deref(), Some("/ is a directory"));
        for verb in ["RETR", "SIZE"] {
            assert_eq!(file_refusal(verb, &p, Target::Missing).as_deref(), Some("/some dir: not found"));
            assert_eq!(file_refusal(verb, &p, Target::File), None, "{verb} of a file goes to libunftp");
        }
    }

    #[test]
    fn replies_stay_on_one_line() {
        assert_eq!(one_line("/a\r\n550 b\tc"), "/a??550 b?c");
        match error("x\ny") {
            Reply::CodeAndMsg { code, msg } => assert_eq!((code, msg.as_str()), (ReplyCode::FileError, "x?y")),
            other => panic!("{other:?}"),
        }
        let lines = stat_path_lines(&path("a"), vec!["-rw-r--r-- 1 alpha dftp 1 Jan  1  2001 f".into()]);
        assert_eq!(lines, ["Status of /a:", "-rw-r--r-- 1 alpha dftp 1 Jan  1  2001 f", "End of status"]);
    }

    #[test]
    fn status_shows_the_session_and_nothing_of_the_software() {
        let cwd = path("sub dir");
        let access = access::status_line(&dftp_core::Rules::open(), Some(&FtpUser::anonymous()), Some(&cwd));
        let status = Status {
            client: "127.0.0.1:5000".parse().unwrap(),
            server: "127.0.0.1:2121".parse().unwrap(),
            username: Some("anonymous"),
            node: "alpha",
            cwd: Some(&cwd),
            access: &access,
            data_connection_ready: false,
        };
        let lines = status.lines();
        assert_eq!(lines.first().map(String::as_str), Some("FTP server status:"));
        assert_eq!(lines.last().map(String::as_str), Some("End of status"));
        let text = lines.join("\n");
        for want in ["127.0.0.1:2121", "127.0.0.1:5000", "anonymous", "alpha", "/sub dir", "read-only"] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        for leak in ["unftp", "Authenticator", "DefaultUser", "powered by"] {
            assert!(!text.contains(leak), "{leak} shown in:\n{text}");
        }
        let anonymous = Status { username: None, cwd: None, ..status };
        assert!(anonymous.lines().contains(&" Not logged in".to_string()));
    }
}
