//! The keys of the tree's map: a path as its parent directory, shared by every entry of that
//! directory, and its last segment, inline when it is short.
//!
//! A whole path per entry cost a heap copy of the string for every path longer than 23 bytes,
//! which most are (`node017/dir0042/sub/file-012345.dat`): 64 to 96 bytes of the ≈ 150 a path
//! took. Here the directory is one shared allocation and a name of up to 23 bytes sits in the
//! key itself, so most entries allocate nothing of their own.
//!
//! The map stays ordered bytewise by the whole path (the order of `/find/` and of full
//! updates): keys compare as the concatenation `dir/name`, without building it. Lookups by a
//! plain `&str` go through [`Parts`], which both a key and a [`Probe`] implement, so that the
//! map can be searched with `Borrow<dyn Parts>`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use smol_str::SmolStr;

use crate::path::DfsPath;

/// A directory as the keys of its entries share it: its path, and its first bytes again, inline.
///
/// Comparing two keys of different directories compares the directories first, and the path's
/// bytes are a second allocation behind the first (a `SmolStr` longer than 23 bytes): on a map
/// of millions of entries both loads miss the cache. Most directories that are compared differ
/// within their first 16 bytes, which sit here beside the rest of the record, so most
/// comparisons take one load, not two (an insertion compares some twenty keys). 24 bytes more
/// per directory, not per path.
#[derive(Clone, Debug, Default)]
pub(super) struct Dir {
    path: DfsPath,
    /// The first [`HEAD`] bytes of the path, big-endian, zero-padded.
    head: u128,
}

/// How many bytes of a directory [`Dir`] keeps inline.
const HEAD: usize = 16;

impl Dir {
    pub(super) fn new(path: DfsPath) -> Dir {
        let mut head = [0u8; HEAD];
        let n = path.as_str().len().min(HEAD);
        head[..n].copy_from_slice(&path.as_str().as_bytes()[..n]);
        Dir { path, head: u128::from_be_bytes(head) }
    }
}

impl std::ops::Deref for Dir {
    type Target = DfsPath;
    fn deref(&self) -> &DfsPath {
        &self.path
    }
}

impl PartialEq for Dir {
    fn eq(&self, other: &Dir) -> bool {
        self.path == other.path
    }
}

impl Eq for Dir {}

/// One path of the map.
#[derive(Clone, Debug)]
pub(super) struct Key {
    /// The parent directory (the root for a top-level entry), shared with its siblings.
    dir: Arc<Dir>,
    /// The last segment.
    name: SmolStr,
}

impl Key {
    /// The key of a path in `dir`, named `name`; `dir` must be the path's parent.
    pub(super) fn new(dir: Arc<Dir>, name: &str) -> Key {
        Key { dir, name: SmolStr::new(name) }
    }

    /// The parent directory ("" for the root).
    pub(super) fn dir(&self) -> &str {
        self.dir.as_str()
    }

    /// The whole path (a copy: allocates when longer than 23 bytes).
    pub(super) fn to_path(&self) -> DfsPath {
        DfsPath::from_parts(&self.dir, &self.name)
    }

    /// Whether the whole path starts with `prefix` (bytewise, as `str::starts_with`).
    pub(super) fn starts_with(&self, prefix: &str) -> bool {
        let mut rest = prefix.as_bytes();
        for chunk in self.chunks() {
            let n = chunk.len().min(rest.len());
            if chunk[..n] != rest[..n] {
                return false;
            }
            rest = &rest[n..];
            if rest.is_empty() {
                return true;
            }
        }
        rest.is_empty()
    }

    fn chunks(&self) -> [&[u8]; 3] {
        let sep: &[u8] = if self.dir.is_root() { b"" } else { b"/" };
        [self.dir.as_str().as_bytes(), sep, self.name.as_bytes()]
    }
}

/// A path in two parts, compared as `dir/name` (just `name` when `dir` is empty).
pub(super) trait Parts {
    fn parts(&self) -> (&str, &str);
}

impl Parts for Key {
    fn parts(&self) -> (&str, &str) {
        (self.dir.as_str(), &self.name)
    }
}

/// A plain string to look up or to start a range at (need not be a valid path: `a/b0`).
pub(super) struct Probe<'a> {
    dir: &'a str,
    name: &'a str,
}

impl<'a> Probe<'a> {
    /// Split as a key is, so that comparisons with keys mostly take the short way.
    pub(super) fn new(s: &'a str) -> Probe<'a> {
        match s.rfind('/') {
            Some(i) if i > 0 => Probe { dir: &s[..i], name: &s[i + 1..] },
            _ => Probe { dir: "", name: s },
        }
    }
}

impl<'a> Probe<'a> {
    /// What comes before the last `/` ("" when none): a path's parent directory.
    pub(super) fn dir(&self) -> &'a str {
        self.dir
    }

    /// What follows the last `/`: a path's name.
    pub(super) fn name(&self) -> &'a str {
        self.name
    }
}

impl Parts for Probe<'_> {
    fn parts(&self) -> (&str, &str) {
        (self.dir, self.name)
    }
}

/// Compares two paths given in parts as their concatenations.
fn compare((ad, an): (&str, &str), (bd, bn): (&str, &str)) -> Ordering {
    let (ad, bd) = (ad.as_bytes(), bd.as_bytes());
    // Most comparisons are decided inside the directories, or between siblings by their names.
    if ad.len() == bd.len() {
        return ad.cmp(bd).then_with(|| an.cmp(bn));
    }
    let n = ad.len().min(bd.len());
    match ad[..n].cmp(&bd[..n]) {
        Ordering::Equal => {}
        other => return other,
    }
    // One directory is a proper prefix of the other: compare what follows it.
    let sep = |d: &[u8]| -> &'static [u8] {
        if d.is_empty() {
            b""
        } else {
            b"/"
        }
    };
    let a = [&ad[n..], sep(ad), an.as_bytes()];
    let b = [&bd[n..], sep(bd), bn.as_bytes()];
    let (mut i, mut j) = (0, 0);
    let (mut x, mut y): (&[u8], &[u8]) = (a[0], b[0]);
    loop {
        while x.is_empty() && i < 2 {
            i += 1;
            x = a[i];
        }
        while y.is_empty() && j < 2 {
            j += 1;
            y = b[j];
        }
        match (x.is_empty(), y.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let n = x.len().min(y.len());
        match x[..n].cmp(&y[..n]) {
            Ordering::Equal => (x, y) = (&x[n..], &y[n..]),
            other => return other,
        }
    }
}

impl PartialEq for dyn Parts + '_ {
    fn eq(&self, other: &Self) -> bool {
        compare(self.parts(), other.parts()) == Ordering::Equal
    }
}

impl Eq for dyn Parts + '_ {}

impl PartialOrd for dyn Parts + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn Parts + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(self.parts(), other.parts())
    }
}

impl<'a> Borrow<dyn Parts + 'a> for Key {
    fn borrow(&self) -> &(dyn Parts + 'a) {
        self
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// The same order as `dyn Parts` (the map relies on it), faster between siblings.
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.dir, &other.dir) {
            return self.name.cmp(&other.name);
        }
        // Bytes within both directories decide the whole comparison where they differ: first
        // those kept inline.
        let n = self.dir.path.as_str().len().min(other.dir.path.as_str().len()).min(HEAD);
        if n > 0 {
            let mask = !0u128 << (8 * (HEAD - n));
            let (a, b) = (self.dir.head & mask, other.dir.head & mask);
            if a != b {
                return a.cmp(&b);
            }
        }
        compare(self.parts(), other.parts())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(path: &str) -> Key {
        let p = DfsPath::parse(path).unwrap();
        Key::new(Arc::new(Dir::new(p.parent().unwrap())), p.name())
    }

    #[test]
    fn compares_as_the_whole_path() {
        // `-` < `.` < `/` < `0`: a file next to a directory of a similar name.
        let mut paths = vec!["a/b/c", "a/b.txt", "a/b-x", "a/b", "a/b/c/d", "a/b0", "a", "ab", "a/b/cd", "b"];
        let mut keys: Vec<Key> = paths.iter().map(|p| key(p)).collect();
        paths.sort();
        keys.sort();
        let got: Vec<String> = keys.iter().map(|k| k.to_path().as_str().to_string()).collect();
        assert_eq!(got, paths);
    }

    #[test]
    fn probes_and_prefixes() {
        let k = key("dir/sub/file.txt");
        let probe = |s: &str| -> Ordering { (&k as &dyn Parts).cmp(&Probe::new(s) as &dyn Parts) };
        assert_eq!(probe("dir/sub/file.txt"), Ordering::Equal);
        assert_eq!(probe("dir/sub/"), Ordering::Greater);
        assert_eq!(probe("dir/sub0"), Ordering::Less);
        assert_eq!(probe("dir/sub/file.txt\0"), Ordering::Less);
        assert!(k.starts_with("dir/sub/f") && k.starts_with("") && k.starts_with("dir/sub/file.txt"));
        assert!(!k.starts_with("dir/sub/file.txt2") && !k.starts_with("dir/subx"));
    }

    proptest! {
        /// Keys, and keys against probes, order exactly as their whole strings do.
        #[test]
        fn order_matches_the_strings(a in "[a-c./-]{0,3}(/[a-c.-]{1,3}){0,3}", b in "[a-c./-]{0,3}(/[a-c.-]{1,3}){0,3}") {
            let (Ok(pa), Ok(pb)) = (DfsPath::parse(&a), DfsPath::parse(&b)) else { return Ok(()) };
            let (ka, kb) = (key(pa.as_str()), key(pb.as_str()));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!((&ka as &dyn Parts).cmp(&Probe::new(&b) as &dyn Parts), a.cmp(&b));
            prop_assert_eq!(ka.starts_with(&b), a.starts_with(&b));
            prop_assert_eq!(ka.to_path(), pa);
        }

        /// The same with directories around the [`HEAD`] bytes kept inline, often sharing
        /// long prefixes.
        #[test]
        fn order_matches_the_strings_past_the_inline_head(
            a in "[ab]{1,7}(/[ab.]{1,7}){0,5}", b in "[ab]{1,7}(/[ab.]{1,7}){0,5}",
        ) {
            let (Ok(pa), Ok(pb)) = (DfsPath::parse(&a), DfsPath::parse(&b)) else { return Ok(()) };
            prop_assert_eq!(key(pa.as_str()).cmp(&key(pb.as_str())), a.cmp(&b));
        }
    }
}
