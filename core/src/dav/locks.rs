//! WebDAV write locks (RFC 4918, sections 6 and 7), as data: who holds what, until when, and
//! whether a change may go ahead. The shell keeps one table per node, in memory, makes the
//! tokens (random) and passes the time in; every decision is made here.
//!
//! A lock covers its root, and with depth infinity everything below it. A change needs the
//! token of every lock that covers what it changes: the resource itself; for a new or removed
//! member, the parent collection's locks too (a lock on a collection protects its membership);
//! for a collection removed or moved away, the locks of everything below it. Expired locks are
//! gone: they neither cover nor conflict.

use std::collections::BTreeMap;

use super::request::{Depth, Scope};
use crate::{DfsPath, Span, Time};

/// The most locks a node keeps at once: a bound on the memory that clients allowed to write can
/// make it use.
pub const MAX_LOCKS: usize = 10_000;

/// One lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// The lock token (a URI, `urn:uuid:…`).
    pub token: String,
    pub root: DfsPath,
    /// Depth infinity: it covers everything below its root too.
    pub infinite: bool,
    pub scope: Scope,
    /// The client's `DAV:owner` element, given back as it came.
    pub owner: Option<String>,
    /// The user who took it (`None`: anonymous).
    pub principal: Option<String>,
    pub timeout: Span,
    pub expires: Time,
}

impl Lock {
    /// Whether it covers `path`.
    pub fn covers(&self, path: &DfsPath) -> bool {
        *path == self.root || (self.infinite && path.is_within(&self.root))
    }

    /// Seconds left at `now`, for `DAV:timeout`.
    pub fn seconds_left(&self, now: Time) -> u64 {
        self.expires.since(now).as_millis().div_ceil(1000)
    }
}

/// Why a lock is not granted, or a change not let through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `423`: a lock held by someone else covers this path, and its token was not submitted.
    Locked(DfsPath),
    /// `409`/`412`: the token names no lock of this resource (`UNLOCK`, a refresh).
    NoSuchLock,
    /// `403`: the lock is someone else's.
    NotTheOwner,
    /// `503`: the table is full ([`MAX_LOCKS`]).
    Full,
    /// `412`: a refresh that submitted no token.
    NoToken,
}

/// What a change touches, for [`Locks::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The content or properties of an existing resource.
    Content,
    /// A member added to or removed from its parent (`PUT` of a new file, `MKCOL`, `DELETE`,
    /// either end of `MOVE`, the destination of `COPY`); for a collection removed, all below.
    Membership,
}

/// The locks of one node.
#[derive(Clone, Debug, Default)]
pub struct Locks {
    by_token: BTreeMap<String, Lock>,
}

impl Locks {
    pub fn new() -> Locks {
        Locks::default()
    }

    fn live(&self, now: Time) -> impl Iterator<Item = &Lock> {
        self.by_token.values().filter(move |l| l.expires > now)
    }

    fn prune(&mut self, now: Time) {
        self.by_token.retain(|_, l| l.expires > now);
    }

    /// The live locks that cover `path`.
    pub fn covering(&self, path: &DfsPath, now: Time) -> Vec<&Lock> {
        self.live(now).filter(|l| l.covers(path)).collect()
    }

    /// A new lock on `root` with token `token`, unless a live lock conflicts with it: any lock
    /// that overlaps it, unless both are shared.
    pub fn acquire(&mut self, mut lock: Lock, depth: Depth, now: Time) -> Result<&Lock, Refusal> {
        self.prune(now);
        lock.infinite = depth == Depth::Infinity;
        lock.expires = now + lock.timeout;
        let conflict = self.by_token.values().find(|l| {
            let overlaps = l.covers(&lock.root) || (lock.infinite && l.root.is_within(&lock.root));
            overlaps && (l.scope == Scope::Exclusive || lock.scope == Scope::Exclusive)
        });
        if let Some(l) = conflict {
            return Err(Refusal::Locked(l.root.clone()));
        }
        if self.by_token.len() >= MAX_LOCKS {
            return Err(Refusal::Full);
        }
        let token = lock.token.clone();
        Ok(self.by_token.entry(token).or_insert(lock))
    }

    /// A refresh of a lock covering `path` whose token is among `submitted`: it lasts
    /// `timeout` from now.
    pub fn refresh<'a>(
        &mut self,
        path: &DfsPath,
        submitted: impl IntoIterator<Item = &'a str>,
        principal: Option<&str>,
        timeout: Span,
        now: Time,
    ) -> Result<&Lock, Refusal> {
        self.prune(now);
        let mut any = false;
        let mut found = None;
        for t in submitted {
            any = true;
            if self.by_token.get(t).is_some_and(|l| l.covers(path)) {
                found = Some(t.to_owned());
                break;
            }
        }
        let token = found.ok_or(if any { Refusal::NoSuchLock } else { Refusal::NoToken })?;
        let lock = self.by_token.get_mut(&token).ok_or(Refusal::NoSuchLock)?;
        if lock.principal.as_deref() != principal {
            return Err(Refusal::NotTheOwner);
        }
        lock.timeout = timeout;
        lock.expires = now + timeout;
        Ok(lock)
    }

    /// `UNLOCK` of `path` with `token`: the lock must cover it, and be this principal's.
    pub fn release(&mut self, path: &DfsPath, token: &str, principal: Option<&str>, now: Time) -> Result<(), Refusal> {
        self.prune(now);
        match self.by_token.get(token) {
            Some(l) if !l.covers(path) => Err(Refusal::NoSuchLock),
            Some(l) if l.principal.as_deref() != principal => Err(Refusal::NotTheOwner),
            Some(_) => {
                self.by_token.remove(token);
                Ok(())
            }
            None => Err(Refusal::NoSuchLock),
        }
    }

    /// Whether a change of `change` kind at `path` may go ahead with the tokens `submitted`
    /// by `principal`: every live lock it touches must be among them, and be the principal's.
    pub fn check(
        &self,
        path: &DfsPath,
        change: Change,
        submitted: &[&str],
        principal: Option<&str>,
        now: Time,
    ) -> Result<(), Refusal> {
        let parent = path.parent();
        for l in self.live(now) {
            let touched = l.covers(path)
                || (change == Change::Membership
                    && (parent.as_ref().is_some_and(|p| l.covers(p)) || l.root.is_within(path)));
            let held = submitted.contains(&l.token.as_str()) && l.principal.as_deref() == principal;
            if touched && !held {
                return Err(Refusal::Locked(l.root.clone()));
            }
        }
        Ok(())
    }

    /// Forgets the locks at and below `path`, which is gone (deleted, or moved away: locks do
    /// not move with what they lock).
    pub fn removed(&mut self, path: &DfsPath) {
        self.by_token.retain(|_, l| !l.root.is_within(path));
    }

    /// How many locks are held (expired ones included until the next change).
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn p(s: &str) -> DfsPath {
        if s.is_empty() {
            DfsPath::root()
        } else {
            DfsPath::parse(s).unwrap()
        }
    }

    fn lock(token: &str, root: &str, scope: Scope, who: Option<&str>, secs: u64) -> Lock {
        Lock {
            token: token.into(),
            root: p(root),
            infinite: false,
            scope,
            owner: None,
            principal: who.map(str::to_owned),
            timeout: Span::from_secs(secs),
            expires: Time(0),
        }
    }

    #[test]
    fn exclusive_locks_exclude_and_expire() {
        let mut t = Locks::new();
        let now = Time::from_secs(100);
        t.acquire(lock("t1", "a/f", Scope::Exclusive, None, 60), Depth::Zero, now).unwrap();
        assert_eq!(
            t.acquire(lock("t2", "a/f", Scope::Shared, None, 60), Depth::Zero, now).unwrap_err(),
            Refusal::Locked(p("a/f"))
        );
        assert_eq!(
            t.acquire(lock("t2", "a", Scope::Exclusive, None, 60), Depth::Infinity, now).unwrap_err(),
            Refusal::Locked(p("a/f")),
            "a depth-infinity lock above conflicts"
        );
        t.acquire(lock("t3", "a", Scope::Exclusive, None, 60), Depth::Zero, now)
            .expect("a depth-0 lock above does not");
        // Changes need the token; expired, the lock is gone.
        assert_eq!(t.check(&p("a/f"), Change::Content, &[], None, now), Err(Refusal::Locked(p("a/f"))));
        assert_eq!(t.check(&p("a/f"), Change::Content, &["t1"], None, now), Ok(()));
        assert_eq!(t.check(&p("a/f"), Change::Content, &["t1"], Some("bob"), now), Err(Refusal::Locked(p("a/f"))));
        let later = now + Span::from_secs(60);
        assert_eq!(t.check(&p("a/f"), Change::Content, &[], None, later), Ok(()));
        t.acquire(lock("t4", "a/f", Scope::Exclusive, None, 60), Depth::Zero, later).unwrap();
    }

    #[test]
    fn membership_of_a_locked_collection() {
        let mut t = Locks::new();
        let now = Time(1);
        t.acquire(lock("c", "dir", Scope::Exclusive, Some("al"), 60), Depth::Zero, now).unwrap();
        // A new member needs the collection's token; a change of an existing member's content
        // does not (a depth-0 lock).
        assert_eq!(t.check(&p("dir/new"), Change::Membership, &[], Some("al"), now), Err(Refusal::Locked(p("dir"))));
        assert_eq!(t.check(&p("dir/new"), Change::Membership, &["c"], Some("al"), now), Ok(()));
        assert_eq!(t.check(&p("dir/old"), Change::Content, &[], Some("al"), now), Ok(()));
        // Removing the parent of a locked resource needs its token.
        t.acquire(lock("f", "top/x/f", Scope::Exclusive, Some("al"), 60), Depth::Zero, now).unwrap();
        assert_eq!(t.check(&p("top"), Change::Membership, &[], Some("al"), now), Err(Refusal::Locked(p("top/x/f"))));
        t.removed(&p("top"));
        assert_eq!(t.check(&p("top"), Change::Membership, &[], Some("al"), now), Ok(()));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn refresh_and_release() {
        let mut t = Locks::new();
        let now = Time::from_secs(10);
        t.acquire(lock("t", "d", Scope::Exclusive, Some("al"), 10), Depth::Infinity, now).unwrap();
        let later = now + Span::from_secs(5);
        let l = t.refresh(&p("d/x"), ["t"], Some("al"), Span::from_secs(100), later).unwrap();
        assert_eq!(l.seconds_left(later), 100);
        assert_eq!(t.refresh(&p("d"), [], Some("al"), Span::from_secs(1), later).unwrap_err(), Refusal::NoToken);
        assert_eq!(t.refresh(&p("d"), ["u"], Some("al"), Span::from_secs(1), later).unwrap_err(), Refusal::NoSuchLock);
        assert_eq!(t.refresh(&p("d"), ["t"], Some("bo"), Span::from_secs(1), later).unwrap_err(), Refusal::NotTheOwner);
        assert_eq!(t.release(&p("e"), "t", Some("al"), later), Err(Refusal::NoSuchLock));
        assert_eq!(t.release(&p("d/x"), "t", None, later), Err(Refusal::NotTheOwner));
        assert_eq!(t.release(&p("d/x"), "t", Some("al"), later), Ok(()));
        assert!(t.is_empty());
    }

    #[test]
    fn shared_locks_share() {
        let mut t = Locks::new();
        let now = Time(1);
        t.acquire(lock("s1", "f", Scope::Shared, None, 60), Depth::Zero, now).unwrap();
        t.acquire(lock("s2", "f", Scope::Shared, None, 60), Depth::Zero, now).unwrap();
        assert!(t.acquire(lock("x", "f", Scope::Exclusive, None, 60), Depth::Zero, now).is_err());
        // Every shared lock's token is needed to change it.
        assert!(t.check(&p("f"), Change::Content, &["s1"], None, now).is_err());
        assert!(t.check(&p("f"), Change::Content, &["s1", "s2"], None, now).is_ok());
    }

    fn any_path() -> impl Strategy<Value = DfsPath> {
        proptest::collection::vec(prop_oneof!["a", "b"], 0..4).prop_map(|s| p(&s.join("/")))
    }

    proptest! {
        /// Whatever locks are asked for, no two live exclusive locks ever overlap, and a change
        /// without tokens is let through exactly where no live lock covers it.
        #[test]
        fn no_overlapping_exclusive_locks(
            asks in proptest::collection::vec((any_path(), any::<bool>(), any::<bool>(), 1u64..100, 0u64..50), 1..30),
            probe in any_path(),
        ) {
            let mut t = Locks::new();
            let mut now = Time(0);
            for (i, (root, infinite, exclusive, secs, wait)) in asks.into_iter().enumerate() {
                now = now + Span::from_secs(wait);
                let scope = if exclusive { Scope::Exclusive } else { Scope::Shared };
                let depth = if infinite { Depth::Infinity } else { Depth::Zero };
                let _ = t.acquire(lock(&format!("t{i}"), root.as_str(), scope, None, secs), depth, now);
                let live: Vec<&Lock> = t.live(now).collect();
                for a in &live {
                    for b in &live {
                        let overlap = a.covers(&b.root) || b.covers(&a.root);
                        if a.token != b.token && overlap {
                            prop_assert!(a.scope == Scope::Shared && b.scope == Scope::Shared, "{a:?} {b:?}");
                        }
                    }
                }
                let free = t.check(&probe, Change::Content, &[], None, now).is_ok();
                prop_assert_eq!(free, t.covering(&probe, now).is_empty());
            }
        }
    }
}
