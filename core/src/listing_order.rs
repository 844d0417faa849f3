//! The order of a directory listing: `?sort=name|size|modified` and `?order=asc|desc`, as
//! nginx's fancyindex and dufs take them.
//!
//! Directories always come first, whatever the key and direction (as the default listing, and
//! fancyindex's "directories first", have them): a reversed listing reverses each group, so a
//! user sorting by size still finds the subdirectories at the top. Ties are broken by name
//! (bytewise), in the same direction, so the order is total and the same on every node.

use std::cmp::Ordering;
use std::fmt;

use crate::tree::Entry;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SortKey {
    #[default]
    Name,
    Size,
    Modified,
}

impl SortKey {
    pub const ALL: [SortKey; 3] = [SortKey::Name, SortKey::Size, SortKey::Modified];

    /// The value of `?sort=`.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Modified => "modified",
        }
    }
}

/// A listing order; the default is the listing's own (directories first, then by name).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ListingOrder {
    pub key: SortKey,
    pub descending: bool,
}

/// Why `?sort=` or `?order=` is refused (a `400`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OrderError {
    Key(String),
    Direction(String),
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::Key(k) => write!(f, "bad sort {k:?}: use name, size or modified"),
            OrderError::Direction(d) => write!(f, "bad order {d:?}: use asc or desc"),
        }
    }
}

impl std::error::Error for OrderError {}

impl ListingOrder {
    /// From `?sort=` and `?order=`; absent or empty values are the defaults (name, ascending).
    pub fn parse(sort: Option<&str>, order: Option<&str>) -> Result<ListingOrder, OrderError> {
        let short = |s: &str| s.chars().take(20).collect::<String>();
        let key = match sort {
            None | Some("") | Some("name") => SortKey::Name,
            Some("size") => SortKey::Size,
            Some("modified") => SortKey::Modified,
            Some(other) => return Err(OrderError::Key(short(other))),
        };
        let descending = match order {
            None | Some("") | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(OrderError::Direction(short(other))),
        };
        Ok(ListingOrder { key, descending })
    }

    /// The order a click on the head of column `key` asks for: that column ascending, or
    /// reversed when the listing is already sorted by it ascending.
    pub fn toggled(self, key: SortKey) -> ListingOrder {
        ListingOrder { key, descending: self.key == key && !self.descending }
    }

    /// The query string that asks for this order.
    pub fn query(self) -> String {
        format!("sort={}&order={}", self.key.as_str(), if self.descending { "desc" } else { "asc" })
    }

    /// Sorts a directory's entries in this order.
    pub fn sort(self, entries: &mut [Entry]) {
        entries.sort_by(|a, b| self.compare(a, b));
    }

    fn compare(self, a: &Entry, b: &Entry) -> Ordering {
        // Directories first, in either direction.
        let group = b.is_dir().cmp(&a.is_dir());
        let by_key = match self.key {
            SortKey::Name => Ordering::Equal,
            SortKey::Size => a.size().cmp(&b.size()),
            // A directory known only from its contents has no time: it sorts as the oldest.
            SortKey::Modified => a.meta.map(|m| m.modified).cmp(&b.meta.map(|m| m.modified)),
        };
        let within = by_key.then_with(|| a.path.name().as_bytes().cmp(b.path.name().as_bytes()));
        group.then(if self.descending { within.reverse() } else { within })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::DfsPath;
    use crate::tree::{Kind, Meta, Owner};
    use crate::wire::FileMode;

    fn entry(name: &str, dir: bool, size: u64, modified: Option<i64>) -> Entry {
        let mode = if dir { FileMode::dir(0o755) } else { FileMode::file(0o644) };
        Entry {
            path: DfsPath::parse(&format!("d/{name}")).unwrap(),
            kind: if dir { Kind::Dir } else { Kind::File },
            owner: Owner::Node("n".into()),
            meta: modified.map(|t| Meta { mode, size, modified: t, info_updated: t }),
        }
    }

    fn sample() -> Vec<Entry> {
        vec![
            entry("b.txt", false, 30, Some(100)),
            entry("zdir", true, 0, Some(50)),
            entry("A.txt", false, 10, Some(300)),
            entry("c.txt", false, 30, Some(200)),
            entry("adir", true, 0, None),
            entry("a.txt", false, 20, Some(100)),
        ]
    }

    fn sorted(sort: &str, order: &str) -> Vec<String> {
        let mut e = sample();
        ListingOrder::parse(Some(sort), Some(order)).unwrap().sort(&mut e);
        e.iter().map(|e| e.path.name().to_string()).collect()
    }

    #[test]
    fn directories_first_in_every_order() {
        assert_eq!(sorted("name", "asc"), ["adir", "zdir", "A.txt", "a.txt", "b.txt", "c.txt"]);
        assert_eq!(sorted("name", "desc"), ["zdir", "adir", "c.txt", "b.txt", "a.txt", "A.txt"]);
        assert_eq!(sorted("size", "asc"), ["adir", "zdir", "A.txt", "a.txt", "b.txt", "c.txt"]);
        assert_eq!(sorted("size", "desc"), ["zdir", "adir", "c.txt", "b.txt", "a.txt", "A.txt"]);
        assert_eq!(sorted("modified", "asc"), ["adir", "zdir", "a.txt", "b.txt", "c.txt", "A.txt"]);
        assert_eq!(sorted("modified", "desc"), ["zdir", "adir", "A.txt", "c.txt", "b.txt", "a.txt"]);
    }

    #[test]
    fn the_default_is_the_trees_own_order() {
        assert_eq!(ListingOrder::parse(None, None), Ok(ListingOrder::default()));
        assert_eq!(ListingOrder::parse(Some(""), Some("")), Ok(ListingOrder::default()));
        assert_eq!(sorted("", ""), sorted("name", "asc"));
    }

    #[test]
    fn bad_values_say_why() {
        let e = ListingOrder::parse(Some("colour"), None).unwrap_err();
        assert_eq!(e.to_string(), "bad sort \"colour\": use name, size or modified");
        let e = ListingOrder::parse(None, Some("up")).unwrap_err();
        assert_eq!(e.to_string(), "bad order \"up\": use asc or desc");
    }

    #[test]
    fn a_click_on_the_sorted_column_reverses_it() {
        let by_size = ListingOrder { key: SortKey::Size, descending: false };
        assert_eq!(by_size.toggled(SortKey::Size), ListingOrder { key: SortKey::Size, descending: true });
        assert_eq!(by_size.toggled(SortKey::Size).toggled(SortKey::Size), by_size);
        assert_eq!(by_size.toggled(SortKey::Name), ListingOrder::default());
        assert_eq!(by_size.toggled(SortKey::Size).query(), "sort=size&order=desc");
    }
}
