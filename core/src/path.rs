//! Paths inside the cluster-wide tree.
//!
//! Every path that enters the core (from a peer's update, a URL, an FTP command or the local scan)
//! goes through [`DfsPath::parse`], so the rest of the code can rely on one shape: relative,
//! `/`-separated, no `.`/`..`/empty segments, no NUL, backslash or other control character. That
//! is what keeps a request from climbing out of the served root, whichever interface it came
//! through, and what keeps every line-based output (`/find/`, FTP listings, logs) one path per
//! line.

use std::borrow::Borrow;
use std::fmt;

use smol_str::SmolStr;

/// Longest accepted path, in bytes. Linux's PATH_MAX; nothing longer can exist on a disk anyway.
pub const MAX_PATH_LEN: usize = 4096;

/// A normalised path in the cluster tree. The empty path is the root.
///
/// Ordering is bytewise on the string, which is the order of `/find/`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DfsPath(SmolStr);

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path has an empty segment (a doubled, leading or trailing `/`)")]
    EmptySegment,
    #[error("the path has a `.` segment")]
    Dot,
    #[error("the path has a `..` segment")]
    DotDot,
    #[error("the path contains a NUL byte")]
    Nul,
    #[error("the path contains a backslash")]
    Backslash,
    /// A newline in a name would split one path into two lines of `/find/`; a tab, escape or
    /// other control character only confuses terminals and parsers. No tool expects them.
    #[error("the path contains a control character (such as a newline or a tab)")]
    Control,
    #[error("the path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
}

impl DfsPath {
    /// The root directory.
    pub fn root() -> Self {
        DfsPath(SmolStr::default())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a relative path as found in an update's `FullName`: `a/b/c`, never empty.
    pub fn parse(s: &str) -> Result<Self, PathError> {
        validate(s)?;
        Ok(DfsPath(SmolStr::new(s)))
    }

    /// As [`DfsPath::parse`], keeping the given string: a long one is not copied again, which
    /// matters for the hundreds of thousands of names of a full update.
    pub fn parse_owned(s: SmolStr) -> Result<Self, PathError> {
        validate(&s)?;
        Ok(DfsPath(s))
    }

    /// Parses the path part of a URL or an FTP argument (already percent-decoded): one leading
    /// and one trailing `/` are allowed, and nothing at all means the root.
    pub fn parse_request(s: &str) -> Result<Self, PathError> {
        let s = s.strip_prefix('/').unwrap_or(s);
        let s = s.strip_suffix('/').unwrap_or(s);
        if s.is_empty() {
            Ok(Self::root())
        } else {
            Self::parse(s)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment; empty for the root.
    pub fn name(&self) -> &str {
        match self.0.rfind('/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// The containing directory; `None` for the root.
    pub fn parent(&self) -> Option<DfsPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => DfsPath(SmolStr::new(&self.0[..i])),
            None => DfsPath::root(),
        })
    }

    /// The containing directory as a string slice (empty for top-level entries); `None` for root.
    pub fn parent_str(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => &self.0[..i],
            None => "",
        })
    }

    /// Proper ancestors that are not the root, nearest first: `a/b/c` gives `a/b`, `a`.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        let s = self.as_str();
        s.match_indices('/').rev().map(move |(i, _)| &s[..i])
    }

    /// `dir` joined with `name`, a valid segment (not checked again): how the tree rebuilds a
    /// path it keeps as its directory and its name.
    pub(crate) fn from_parts(dir: &DfsPath, name: &str) -> DfsPath {
        if dir.is_root() {
            return DfsPath(SmolStr::new(name));
        }
        let mut s = smol_str::SmolStrBuilder::new();
        s.push_str(dir.as_str());
        s.push('/');
        s.push_str(name);
        DfsPath(s.finish())
    }

    /// Appends one segment, which must itself be a valid segment.
    pub fn join(&self, name: &str) -> Result<DfsPath, PathError> {
        check_segment(name)?;
        if self.is_root() {
            return DfsPath::parse(name);
        }
        let joined = format!("{}/{}", self.0, name);
        if joined.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        Ok(DfsPath(SmolStr::new(joined)))
    }

    /// Appends a relative path (several segments).
    pub fn join_path(&self, rel: &DfsPath) -> Result<DfsPath, PathError> {
        if rel.is_root() {
            return Ok(self.clone());
        }
        if self.is_root() {
            return Ok(rel.clone());
        }
        let joined = format!("{}/{}", self.0, rel.0);
        if joined.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        Ok(DfsPath(SmolStr::new(joined)))
    }

    /// Whether `self` is `dir` or lies below it, on segment boundaries: `data` contains
    /// `data/x` but not `database/x`.
    pub fn is_within(&self, dir: &DfsPath) -> bool {
        self.strip_dir(dir).is_some()
    }

    /// The part of `self` below `dir` ("" when equal), on segment boundaries.
    pub fn strip_dir(&self, dir: &DfsPath) -> Option<&str> {
        if dir.is_root() {
            return Some(self.as_str());
        }
        let rest = self.0.strip_prefix(dir.as_str())?;
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix('/')
        }
    }
}

fn validate(s: &str) -> Result<(), PathError> {
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    if s.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if plain_segments(s.as_bytes()) {
        return Ok(());
    }
    s.split('/').try_for_each(check_segment)
}

/// Whether `s` is valid, checked the fast way for the common case of printable ASCII: each of
/// the million paths of a full update is checked here, and the per-segment checks below
/// (several scans of each segment, by `char`) were a fifth of applying one. Eight bytes at a
/// time for the characters, then the segments between the slashes. `false` sends `s` to the
/// per-segment checks, which also say why it is refused.
fn plain_segments(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether a byte of `w` is zero (exactly).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    // Controls (C0 and DEL), the backslash, and anything not ASCII (C1 controls are encoded
    // there).
    let unusual = |w: u64| {
        w & HIGH != 0
            || w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            || has_zero(w ^ (ONES * 0x7f))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
    };
    let mut words = s.chunks_exact(8);
    if words.any(|c| unusual(u64::from_le_bytes(c.try_into().expect("eight bytes")))) {
        return false;
    }
    if words.remainder().iter().any(|&b| !(0x20..0x7f).contains(&b) || b == b'\\') {
        return false;
    }
    let mut start = 0;
    for i in memchr::memchr_iter(b'/', s) {
        if !plain_segment(&s[start..i]) {
            return false;
        }
        start = i + 1;
    }
    plain_segment(&s[start..])
}

fn plain_segment(seg: &[u8]) -> bool {
    !matches!(seg, b"" | b"." | b"..")
}

fn check_segment(seg: &str) -> Result<(), PathError> {
    match seg {
        "" => Err(PathError::EmptySegment),
        "." => Err(PathError::Dot),
        ".." => Err(PathError::DotDot),
        _ if seg.contains('\0') => Err(PathError::Nul),
        _ if seg.contains('\\') => Err(PathError::Backslash),
        _ if seg.chars().any(char::is_control) => Err(PathError::Control),
        _ => Ok(()),
    }
}

impl Borrow<str> for DfsPath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DfsPath {
    /// Shown the way users see paths: with a leading `/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for DfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

/// Where this node's local tree appears in the cluster tree (`--dfsmount`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mount(DfsPath);

impl Mount {
    /// Parses `--dfsmount`; leading and trailing slashes are ignored, empty means the root.
    pub fn parse(s: &str) -> Result<Self, PathError> {
        let trimmed = s.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(Mount(DfsPath::root()));
        }
        DfsPath::parse(trimmed).map(Mount)
    }

    pub fn path(&self) -> &DfsPath {
        &self.0
    }

    /// The cluster path of a local path relative to `--dfsroot`.
    pub fn to_cluster(&self, local: &DfsPath) -> Result<DfsPath, PathError> {
        self.0.join_path(local)
    }

    /// The local path (relative to `--dfsroot`, "" for the root itself) of a cluster path, or
    /// `None` when the path lies outside the mount.
    pub fn to_local<'a>(&self, path: &'a DfsPath) -> Option<&'a str> {
        path.strip_dir(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_paths() {
        for p in ["a", "a/b", "<b>.html", "space name.txt", "ünï/cödé", "a/.hidden", "a/...", "x#?&"] {
            assert_eq!(DfsPath::parse(p).unwrap().as_str(), p);
        }
    }

    #[test]
    fn rejects_with_reason() {
        let cases = [
            ("", PathError::Empty),
            ("/a", PathError::EmptySegment),
            ("a/", PathError::EmptySegment),
            ("a//b", PathError::EmptySegment),
            ("a/./b", PathError::Dot),
            (".", PathError::Dot),
            ("..", PathError::DotDot),
            ("a/../../etc/passwd", PathError::DotDot),
            ("a\0b", PathError::Nul),
            ("a\\..\\b", PathError::Backslash),
            ("new\nline.txt", PathError::Control),
            ("dir/tab\there", PathError::Control),
            ("esc\u{1b}[31m", PathError::Control),
            ("del\u{7f}", PathError::Control),
            ("c1\u{85}next-line", PathError::Control),
        ];
        for (p, e) in cases {
            assert_eq!(DfsPath::parse(p), Err(e.clone()), "{p:?}");
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(DfsPath::parse(&"a".repeat(MAX_PATH_LEN + 1)), Err(PathError::TooLong));
    }

    proptest::proptest! {
        /// The one-pass check of plain ASCII paths accepts only what the per-segment checks
        /// accept (and sends the rest to them, for the reason).
        #[test]
        fn the_plain_check_agrees_with_the_segment_checks(
            chars in proptest::collection::vec(
                proptest::prop_oneof![40 => "[a-c]", 6 => "[./]", 1 => "[\\\\\u{0}\n\u{1f}\u{7f}\u{85}é]"],
                0..40,
            )
        ) {
            let s = chars.concat();
            if plain_segments(s.as_bytes()) {
                proptest::prop_assert!(s.split('/').try_for_each(check_segment).is_ok(), "{:?}", s);
            }
            proptest::prop_assert_eq!(
                DfsPath::parse(&s).map(|p| p.as_str().to_string()),
                if s.is_empty() { Err(PathError::Empty) } else { s.split('/').try_for_each(check_segment).map(|()| s.clone()) }
            );
        }
    }

    #[test]
    fn request_paths() {
        assert!(DfsPath::parse_request("/").unwrap().is_root());
        assert!(DfsPath::parse_request("").unwrap().is_root());
        assert_eq!(DfsPath::parse_request("/a/b/").unwrap().as_str(), "a/b");
        assert_eq!(DfsPath::parse_request("//etc/passwd"), Err(PathError::EmptySegment));
        assert_eq!(DfsPath::parse_request("/a/../b"), Err(PathError::DotDot));
    }

    #[test]
    fn names_parents_ancestors() {
        let p = DfsPath::parse("a/b/c.txt").unwrap();
        assert_eq!(p.name(), "c.txt");
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
        assert_eq!(p.parent_str(), Some("a/b"));
        assert_eq!(p.ancestors().collect::<Vec<_>>(), vec!["a/b", "a"]);
        let top = DfsPath::parse("top").unwrap();
        assert!(top.parent().unwrap().is_root());
        assert_eq!(top.ancestors().count(), 0);
        assert_eq!(DfsPath::root().parent(), None);
        assert_eq!(p.to_string(), "/a/b/c.txt");
    }

    #[test]
    fn mount_works_on_segment_boundaries() {
        let m = Mount::parse("/data/").unwrap();
        let inside = DfsPath::parse("data/x").unwrap();
        let other = DfsPath::parse("database/x").unwrap();
        assert_eq!(m.to_local(&inside), Some("x"));
        assert_eq!(m.to_local(&other), None);
        assert_eq!(m.to_local(&DfsPath::parse("data").unwrap()), Some(""));
        assert_eq!(m.to_cluster(&DfsPath::parse("x/y").unwrap()).unwrap().as_str(), "data/x/y");
        let root = Mount::parse("").unwrap();
        assert_eq!(root.to_local(&other), Some("database/x"));
        assert!(Mount::parse("a/../b").is_err());
    }
}
