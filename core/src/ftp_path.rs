//! FTP paths to cluster paths: the argument of an FTP command, joined onto the session's working
//! directory, is outside bytes (fuzzed in `fuzz/fuzz_targets/ftp_path.rs`).
//!
//! libunftp does not normalise paths: it joins the argument of a command onto the session's
//! working directory as a `PathBuf` (`/a/b` + `../x` = `/a/b/../x`), and MLST passes its argument
//! through unjoined. So every path the backend gets is resolved here, lexically: `.` is dropped,
//! `..` removes the previous segment, and a path that would climb above the root is refused, as
//! is anything [`DfsPath`] refuses (NUL, backslash, overlong). Only then does it reach the
//! snapshot or the disk.

use std::path::{Component, Path};

use crate::DfsPath;

/// Why an FTP path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// `..` past the root.
    Escapes,
    /// Not UTF-8, a Windows prefix, or a segment the tree cannot hold.
    Invalid(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Escapes => write!(f, "the path leads outside the tree"),
            Refused::Invalid(why) => write!(f, "bad path: {why}"),
        }
    }
}

impl std::error::Error for Refused {}

/// The cluster path an FTP path names. Relative paths are taken from the root.
pub fn resolve(path: &Path) -> Result<DfsPath, Refused> {
    let mut segments: Vec<&str> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                segments.pop().ok_or(Refused::Escapes)?;
            }
            Component::Normal(s) => {
                segments.push(s.to_str().ok_or_else(|| Refused::Invalid("not UTF-8".into()))?);
            }
            Component::Prefix(_) => return Err(Refused::Invalid("a drive prefix".into())),
        }
    }
    DfsPath::parse_request(&segments.join("/")).map_err(|e| Refused::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> String {
        resolve(Path::new(p)).unwrap_or_else(|e| panic!("{p:?}: {e}")).as_str().to_string()
    }

    #[test]
    fn joins_the_way_libunftp_hands_them_over() {
        assert_eq!(ok("/"), "");
        assert_eq!(ok(""), "");
        assert_eq!(ok("/a/b"), "a/b");
        assert_eq!(ok("a/b/"), "a/b");
        assert_eq!(ok("/a//b/./c"), "a/b/c");
        assert_eq!(ok("/a/b/../c"), "a/c");
        assert_eq!(ok("/a/.."), "");
        assert_eq!(ok("/space name/<b>.html"), "space name/<b>.html");
        assert_eq!(ok("/a/...."), "a/....");
    }

    #[test]
    fn refuses_escapes_and_bad_segments() {
        for p in ["/..", "..", "/a/../..", "/a/../../etc/passwd", "../../../../etc/passwd", "/a/b/../../../x"] {
            assert_eq!(resolve(Path::new(p)), Err(Refused::Escapes), "{p:?}");
        }
        for p in ["/a\\..\\..\\etc", "/a\0b"] {
            assert!(matches!(resolve(Path::new(p)), Err(Refused::Invalid(_))), "{p:?}");
        }
        assert!(resolve(Path::new(&format!("/{}", "a/".repeat(3000)))).is_err());
    }
}
