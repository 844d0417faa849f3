//! Addresses to greet until they answer once: the operator's `--join`, and the addresses the
//! node learns from others (`POST /join/`, multicast announcements, the peers named in a peer's
//! cluster table).
//!
//! Anyone who can reach the management port or the multicast group can hand a node addresses
//! (without a cluster secret, or from inside the cluster), and each address costs a connection
//! per greeting. So the set is bounded ([`MAX_SEEDS`]), each address is retried with its own
//! backoff (from half a second, doubling, up to the ping interval), and a learned address that
//! never answered is forgotten after [`LEARNED_FORGET_AFTER`]: 2,500 invented addresses cost a
//! few hundred greetings, then a handful a minute, then none — not 5,000 connections every 10 s
//! for 24 hours. The operator's own `--join` addresses are kept until they answer: a node may
//! well start long before the nodes it was told to join.

use std::collections::BTreeMap;

use crate::time::{Span, Time};
use crate::wire::PeerAddr;

/// At most this many addresses wait for a first answer. The operator's `--join` addresses push
/// learned ones out when the set is full; learned ones are refused then.
pub const MAX_SEEDS: usize = 256;

/// A learned address that has not answered for this long is forgotten (the node that gave it
/// may give it again: a genuine node announces itself every minute).
pub const LEARNED_FORGET_AFTER: Span = Span(10 * 60 * 1000);

/// The least time between two notices about one silent address.
pub const WARN_EVERY: Span = Span(60_000);

/// The first wait after a failed greeting; it doubles with each failure.
pub const RETRY_FIRST: Span = Span(500);

/// Where an address came from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Origin {
    /// Heard of: a multicast announcement, a peer named in a peer's cluster table. Kept for
    /// [`LEARNED_FORGET_AFTER`] without an answer, and its failures are not worth a warning
    /// (every dead address in every table would be).
    Heard,
    /// Asked for over the management API (`POST /join/`): kept for [`LEARNED_FORGET_AFTER`]
    /// without an answer.
    Asked,
    /// The operator's `--join`: kept until it answers.
    Configured,
}

/// Why an address was not taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refused {
    /// [`MAX_SEEDS`] addresses already wait for an answer.
    Full,
}

#[derive(Clone, Copy, Debug)]
struct Seed {
    origin: Origin,
    /// When it was given (again, for a learned address given while forgotten).
    since: Time,
    failures: u32,
    /// When to greet it next; `None` while a greeting is under way or due at once.
    next_at: Option<Time>,
    warned_at: Option<Time>,
}

/// What a failed greeting of a seed means for the logs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Failure {
    pub origin: Origin,
    pub failures: u32,
    /// Report it now: the first failure, then at most every [`WARN_EVERY`].
    pub report: bool,
}

/// The addresses waiting for a first answer, each with its own retry time.
#[derive(Clone, Debug)]
pub struct Seeds {
    map: BTreeMap<PeerAddr, Seed>,
    /// The longest wait between two greetings of one address (the ping interval).
    max_wait: Span,
}

impl Seeds {
    pub fn new(max_wait: Span) -> Seeds {
        Seeds { map: BTreeMap::new(), max_wait }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, addr: &PeerAddr) -> bool {
        self.map.contains_key(addr)
    }

    /// Takes `addr`. Returns whether to greet it now: a new address is greeted at once, one
    /// already waiting keeps its own schedule (an address given again and again is not greeted
    /// more often for it). The operator's word makes a learned address configured.
    pub fn add(&mut self, addr: PeerAddr, origin: Origin, now: Time) -> Result<bool, Refused> {
        if let Some(s) = self.map.get_mut(&addr) {
            s.origin = s.origin.max(origin);
            return Ok(false);
        }
        if self.map.len() >= MAX_SEEDS {
            // The oldest learned address makes room for the operator's; nothing for others.
            let oldest = self
                .map
                .iter()
                .filter(|(_, s)| s.origin != Origin::Configured)
                .min_by_key(|(a, s)| (s.since, (*a).clone()))
                .map(|(a, _)| a.clone());
            match (origin, oldest) {
                (Origin::Configured, Some(old)) => {
                    self.map.remove(&old);
                }
                _ => return Err(Refused::Full),
            }
        }
        self.map.insert(addr, Seed { origin, since: now, failures: 0, next_at: None, warned_at: None });
        Ok(true)
    }

    /// It answered: it is a peer now (or it named itself as this node), not a seed.
    pub fn answered(&mut self, addr: &PeerAddr) {
        self.map.remove(addr);
    }

    /// A greeting of `addr` failed at `now`: it is greeted again after its backoff. `None` when
    /// `addr` is no seed (a peer's ping).
    pub fn failed(&mut self, addr: &PeerAddr, now: Time) -> Option<Failure> {
        let s = self.map.get_mut(addr)?;
        s.failures = s.failures.saturating_add(1);
        let doubled = RETRY_FIRST.as_millis().saturating_mul(1u64 << (s.failures - 1).min(32));
        s.next_at = Some(now + Span::from_millis(doubled.min(self.max_wait.as_millis())));
        let report = s.warned_at.is_none_or(|t| now.since(t) >= WARN_EVERY);
        if report {
            s.warned_at = Some(now);
        }
        Some(Failure { origin: s.origin, failures: s.failures, report })
    }

    /// The addresses to greet now (their retry time has come), in address order. Each is then
    /// under way until [`Seeds::failed`] or [`Seeds::answered`].
    pub fn due(&mut self, now: Time) -> Vec<PeerAddr> {
        let mut due = Vec::new();
        for (addr, s) in &mut self.map {
            if s.next_at.is_some_and(|t| t <= now) {
                s.next_at = None;
                due.push(addr.clone());
            }
        }
        due
    }

    /// Forgets the learned addresses that have not answered for [`LEARNED_FORGET_AFTER`].
    pub fn forget_stale(&mut self, now: Time) -> Vec<PeerAddr> {
        let stale: Vec<PeerAddr> = self
            .map
            .iter()
            .filter(|(_, s)| s.origin != Origin::Configured && now.since(s.since) >= LEARNED_FORGET_AFTER)
            .map(|(a, _)| a.clone())
            .collect();
        for a in &stale {
            self.map.remove(a);
        }
        stale
    }

    /// The next time something is due: a retry, or a learned address to forget.
    pub fn next_wake(&self) -> Option<Time> {
        self.map
            .values()
            .flat_map(|s| {
                let forget = (s.origin != Origin::Configured).then(|| s.since + LEARNED_FORGET_AFTER);
                s.next_at.into_iter().chain(forget)
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> PeerAddr {
        PeerAddr::parse(&format!("10.0.0.1:{port}")).unwrap()
    }

    #[test]
    fn retries_back_off_to_the_ping_interval() {
        let mut s = Seeds::new(Span::from_secs(10));
        let t0 = Time::from_secs(1000);
        assert_eq!(s.add(addr(1), Origin::Configured, t0), Ok(true));
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..7 {
            s.failed(&addr(1), now);
            let at = s.next_wake().unwrap();
            waits.push(at.since(now).as_millis());
            assert!(s.due(at - Span::from_millis(1)).is_empty());
            assert_eq!(s.due(at), vec![addr(1)]);
            now = at;
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    }

    #[test]
    fn an_address_given_again_keeps_its_schedule() {
        let mut s = Seeds::new(Span::from_secs(10));
        let t0 = Time::from_secs(1000);
        assert_eq!(s.add(addr(1), Origin::Heard, t0), Ok(true));
        s.failed(&addr(1), t0);
        assert_eq!(s.add(addr(1), Origin::Heard, t0), Ok(false), "not greeted again for being named again");
        assert!(s.due(t0).is_empty());
    }

    #[test]
    fn learned_addresses_are_forgotten_and_configured_ones_kept() {
        let mut s = Seeds::new(Span::from_secs(10));
        let t0 = Time::from_secs(1000);
        s.add(addr(1), Origin::Heard, t0).unwrap();
        s.add(addr(2), Origin::Configured, t0).unwrap();
        s.add(addr(3), Origin::Heard, t0).unwrap();
        s.add(addr(3), Origin::Configured, t0).unwrap(); // the operator's word wins
        assert!(s.forget_stale(t0 + Span::from_secs(599)).is_empty());
        assert_eq!(s.next_wake(), Some(t0 + LEARNED_FORGET_AFTER));
        assert_eq!(s.forget_stale(t0 + LEARNED_FORGET_AFTER), vec![addr(1)]);
        assert!(s.contains(&addr(2)) && s.contains(&addr(3)));
        assert_eq!(s.next_wake(), None, "nothing due: the configured ones wait for the pings' failures");
    }

    #[test]
    fn the_set_is_bounded_and_the_operator_pushes_out_learned_addresses() {
        let mut s = Seeds::new(Span::from_secs(10));
        let t0 = Time::from_secs(1000);
        for i in 0..MAX_SEEDS {
            s.add(addr(i as u16 + 1), Origin::Heard, t0 + Span::from_millis(i as u64)).unwrap();
        }
        assert_eq!(s.add(addr(60_000), Origin::Heard, t0), Err(Refused::Full));
        assert_eq!(s.add(addr(60_001), Origin::Configured, t0), Ok(true));
        assert_eq!(s.len(), MAX_SEEDS);
        assert!(!s.contains(&addr(1)), "the oldest learned one made room");
    }

    #[test]
    fn a_silent_address_is_reported_at_once_then_once_a_minute() {
        let mut s = Seeds::new(Span::from_secs(10));
        let t0 = Time::from_secs(1000);
        s.add(addr(1), Origin::Configured, t0).unwrap();
        let reports: Vec<u64> = (0..300)
            .filter_map(|i| {
                let now = t0 + Span::from_secs(i);
                s.failed(&addr(1), now).filter(|f| f.report).map(|_| i)
            })
            .collect();
        assert_eq!(reports, [0, 60, 120, 180, 240]);
        assert_eq!(s.failed(&addr(2), t0), None);
    }
}
