//! What `GET /find/` keeps: paths whose name (the last segment, as `find -iname` reads it)
//! matches a [`Glob`], and of one kind (`?type=f` or `d`, as `find -type`).

use std::fmt;

use crate::glob::{Glob, GlobError};
use crate::path::DfsPath;
use crate::snapshot::Snapshot;
use crate::tree::Kind;

/// A search; the default keeps every path.
#[derive(Clone, Default, Debug)]
pub struct Search {
    name: Option<Glob>,
    kind: Option<Kind>,
}

/// Why a search is refused (a `400`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SearchError {
    Pattern(GlobError),
    /// `?type=` other than `f` or `d`.
    Kind(String),
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchError::Pattern(e) => write!(f, "bad pattern: {e}"),
            SearchError::Kind(k) => write!(f, "bad type {k:?}: use f (files) or d (directories)"),
        }
    }
}

impl std::error::Error for SearchError {}

impl Search {
    /// From `?q=` and `?type=`. An empty value is no filter, as a search form sends an empty
    /// box or an "any type" choice.
    pub fn parse(pattern: Option<&str>, kind: Option<&str>) -> Result<Search, SearchError> {
        let name = match pattern {
            None | Some("") => None,
            Some(p) => Some(Glob::parse(p).map_err(SearchError::Pattern)?),
        };
        let kind = match kind {
            None | Some("") => None,
            Some("f") => Some(Kind::File),
            Some("d") => Some(Kind::Dir),
            Some(other) => return Err(SearchError::Kind(other.chars().take(20).collect())),
        };
        Ok(Search { name, kind })
    }

    /// Whether the search keeps every path.
    pub fn is_everything(&self) -> bool {
        self.name.is_none() && self.kind.is_none()
    }

    /// Whether `path` of `snapshot` is kept. The root (the empty path) has no name and is never
    /// listed by `/find/`.
    pub fn keeps(&self, snapshot: &Snapshot, path: &DfsPath) -> bool {
        if let Some(glob) = &self.name {
            if !glob.matches(path.name()) {
                return false;
            }
        }
        match self.kind {
            None => true,
            Some(Kind::Dir) => snapshot.is_dir(path),
            Some(Kind::File) => !snapshot.is_dir(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert!(Search::parse(None, None).unwrap().is_everything());
        assert!(Search::parse(Some(""), Some("")).unwrap().is_everything());
        assert!(!Search::parse(Some("*.txt"), None).unwrap().is_everything());
        assert!(!Search::parse(None, Some("d")).unwrap().is_everything());
        assert_eq!(Search::parse(None, Some("l")).unwrap_err(), SearchError::Kind("l".into()));
        let e = Search::parse(Some("[x"), Some("f")).unwrap_err();
        assert!(matches!(e, SearchError::Pattern(GlobError::UnclosedClass { at: 0 })), "{e:?}");
        assert!(e.to_string().starts_with("bad pattern: "), "{e}");
        let long = "x".repeat(1000);
        let e = Search::parse(None, Some(&long)).unwrap_err().to_string();
        assert!(e.len() < 80, "a refusal does not echo a long value whole: {e}");
    }
}
