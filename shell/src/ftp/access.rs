//! Who may change what through FTP: the one place that answers "may this session write here?".
//!
//! Today the answer is always no: the FTP interface serves the cluster tree read-only. Every
//! write command is refused through [`may_write`], both by the command gate (before libunftp
//! opens or asks for a data connection, or answers `350` to `RNFR`) and by the storage back-end
//! (should a write ever get past the gate), so that accounts and per-path permissions can later
//! be added here and nowhere else.

use std::fmt;

use dftp_core::DfsPath;
use unftp_core::auth::DefaultUser;

/// The FTP commands that change the tree, each refused unless [`may_write`] allows it.
pub const WRITE_VERBS: [&str; 8] = ["STOR", "APPE", "STOU", "DELE", "MKD", "RMD", "RNFR", "RNTO"];

/// Whether `verb` (upper case) asks to change the tree.
pub fn is_write(verb: &str) -> bool {
    WRITE_VERBS.contains(&verb)
}

/// Why a write is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The FTP interface accepts no changes at all.
    ReadOnly,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::ReadOnly => f.write_str("permission denied: this FTP server is read-only"),
        }
    }
}

impl std::error::Error for Denied {}

/// Whether `user` may change the tree at `path` (`None` for a command that names no path, such
/// as `STOU`, or a path outside the tree). Nobody may yet: there are no accounts with write
/// rights.
pub fn may_write(_user: Option<&DefaultUser>, _path: Option<&DfsPath>) -> Result<(), Denied> {
    Err(Denied::ReadOnly)
}

/// One line for `STAT`: what `user` may do in the working directory `cwd`.
pub fn status_line(user: Option<&DefaultUser>, cwd: Option<&DfsPath>) -> String {
    match may_write(user, cwd) {
        Ok(()) => "Changes are allowed in the working directory".into(),
        Err(Denied::ReadOnly) => {
            "The tree is read-only: uploads, deletions, renames and new directories are refused".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_is_refused_for_everyone_everywhere() {
        let paths = [None, Some(DfsPath::root()), Some(DfsPath::parse_request("a/b.txt").unwrap())];
        for user in [None, Some(&DefaultUser)] {
            for path in &paths {
                assert_eq!(may_write(user, path.as_ref()), Err(Denied::ReadOnly), "{user:?} at {path:?}");
            }
        }
        assert!(Denied::ReadOnly.to_string().contains("read-only"));
        assert!(status_line(Some(&DefaultUser), None).contains("read-only"));
    }

    #[test]
    fn write_verbs_are_the_commands_that_change_the_tree() {
        for verb in ["STOR", "APPE", "STOU", "DELE", "MKD", "RMD", "RNFR", "RNTO"] {
            assert!(is_write(verb), "{verb}");
        }
        for verb in ["RETR", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT", "CWD", "stor", "SITE", ""] {
            assert!(!is_write(verb), "{verb}");
        }
    }
}
