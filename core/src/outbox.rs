//! What a node has to send to one peer: its updates, in order, one request at a time.
//!
//! The shell sends what an [`crate::Action`] tells it and reports the outcome; the next update
//! to that peer goes out only then. So the rules of delivery live here, where a test can reach
//! them without a socket:
//! - after a failed update the peer is owed a full one, which supersedes every incremental one
//!   queued behind the failure: sending those would trickle old news in, a timeout apart, each
//!   making the peer believe us reachable and up to date;
//! - a full update is taken when it goes out, not when it was asked for: it may have waited
//!   behind a request that timed out, and an old one would bring back what changed since. The
//!   incremental updates queued behind it are then part of it, and are dropped.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::wire::Update;

/// An update waiting for its turn.
#[derive(Clone, Debug)]
pub enum Outgoing {
    Incremental(Arc<Update>),
    /// The node's files as of when it goes out.
    Full,
}

/// One peer's queue, and whether a request to it is under way (and if so, whether full).
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Outgoing>,
    in_flight: Option<bool>,
}

impl Outbox {
    pub fn push_incremental(&mut self, update: Arc<Update>) {
        self.queue.push_back(Outgoing::Incremental(update));
    }

    /// Queues a full update, unless one is already waiting (it will carry the same files).
    pub fn push_full(&mut self) {
        if !self.queue.iter().any(|q| matches!(q, Outgoing::Full)) {
            self.queue.push_back(Outgoing::Full);
        }
    }

    /// The next update to send, when none is under way.
    pub fn take_next(&mut self) -> Option<Outgoing> {
        if self.in_flight.is_some() {
            return None;
        }
        let next = self.queue.pop_front()?;
        if matches!(next, Outgoing::Full) {
            // Taken now, it holds what the incremental updates behind it would bring.
            self.queue.retain(|q| matches!(q, Outgoing::Full));
        }
        self.in_flight = Some(matches!(next, Outgoing::Full));
        Some(next)
    }

    /// The update under way arrived.
    pub fn delivered(&mut self) {
        self.in_flight = None;
    }

    /// The update under way failed: the incremental ones behind it are dropped (the peer is
    /// owed a full update instead); a full one already queued stays.
    pub fn failed(&mut self) {
        self.in_flight = None;
        self.queue.retain(|q| matches!(q, Outgoing::Full));
    }

    /// The peer was lost: nothing more is sent until it is back (and then a full update). An
    /// update under way still reports its outcome.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(seq: u64) -> Arc<Update> {
        let files = Vec::new();
        Arc::new(Update {
            files,
            update_time: 0,
            full: false,
            sender_node_name: "a".into(),
            epoch: Some(1),
            seq: Some(seq),
            buckets: None,
        })
    }

    fn seq(o: Option<Outgoing>) -> Option<u64> {
        match o {
            Some(Outgoing::Incremental(u)) => u.seq,
            Some(Outgoing::Full) => Some(u64::MAX),
            None => None,
        }
    }

    #[test]
    fn one_at_a_time_in_order() {
        let mut o = Outbox::default();
        o.push_incremental(inc(1));
        o.push_incremental(inc(2));
        assert_eq!(seq(o.take_next()), Some(1));
        assert_eq!(seq(o.take_next()), None, "nothing while one is under way");
        o.delivered();
        assert_eq!(seq(o.take_next()), Some(2));
        o.delivered();
        assert_eq!(seq(o.take_next()), None);
    }

    #[test]
    fn a_failure_drops_the_incremental_updates_behind_it() {
        let mut o = Outbox::default();
        for s in 1..=3 {
            o.push_incremental(inc(s));
        }
        assert_eq!(seq(o.take_next()), Some(1));
        o.failed();
        assert_eq!(seq(o.take_next()), None);
        // A full update asked for while one was under way survives the failure.
        o.push_incremental(inc(4));
        assert_eq!(seq(o.take_next()), Some(4));
        o.push_incremental(inc(5));
        o.push_full();
        o.failed();
        assert_eq!(seq(o.take_next()), Some(u64::MAX));
    }

    #[test]
    fn a_full_update_supersedes_what_queued_behind_it() {
        let mut o = Outbox::default();
        o.push_incremental(inc(1));
        assert_eq!(seq(o.take_next()), Some(1));
        o.push_full();
        o.push_incremental(inc(2));
        o.push_full();
        o.push_incremental(inc(3));
        assert_eq!(o.queued(), 3, "one full update queued, not two");
        o.delivered();
        assert_eq!(seq(o.take_next()), Some(u64::MAX));
        o.delivered();
        assert_eq!(seq(o.take_next()), None, "2 and 3 went out inside the full update");
    }
}
