//! How slowly a request body may arrive before the node gives up on it.
//!
//! A client that opens a connection and sends its body a byte at a time holds a connection
//! slot (and, for an upload, a temporary file and a lock on the path) for as long as it likes:
//! a stall limit alone does not stop one that sends a byte just before it. So a body must
//! also keep an average rate: after a grace period (a client may start slowly, or pause while
//! it reads a file), the bytes received must keep up with `min_rate` bytes per second since
//! the start, as nginx's `client_body_timeout` and Apache's `mod_reqtimeout` (`MinRate`)
//! require in their ways.
//!
//! Sans-IO: the shell measures the time and the bytes, and waits for the next piece of the
//! body at most [`Pace::next_wait`].

use std::time::Duration;

/// The pace a request body must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Bytes per second, on average since the start of the body; 0: no minimum.
    pub min_rate: u64,
    /// How long a body may take before the average counts.
    pub grace: Duration,
    /// The longest wait for any one piece of the body, however far ahead of the rate it is.
    pub stall: Duration,
}

impl Pace {
    /// The default of `--body-min-rate`: 1 KiB/s, a rate any client that means to send its
    /// body keeps, and at which 256 connections (the default `--max-connections`) cost an
    /// attacker 256 KiB/s.
    pub const DEFAULT_MIN_RATE: u64 = 1024;
    pub const GRACE: Duration = Duration::from_secs(10);
    pub const STALL: Duration = Duration::from_secs(60);

    pub fn new(min_rate: u64) -> Pace {
        Pace { min_rate, grace: Pace::GRACE, stall: Pace::STALL }
    }

    /// How long to wait for the next piece of a body, `elapsed` after it started with
    /// `received` bytes so far: until the moment its average rate would fall below the
    /// minimum (zero when it already has), and never more than the stall limit.
    pub fn next_wait(&self, elapsed: Duration, received: u64) -> Duration {
        if self.min_rate == 0 {
            return self.stall;
        }
        // The time `received` bytes may take at the minimum rate, in nanoseconds (u128: no
        // overflow for any u64 of bytes).
        let earned = u128::from(received) * 1_000_000_000 / u128::from(self.min_rate);
        let allowed = self.grace.saturating_add(Duration::from_nanos(u64::try_from(earned).unwrap_or(u64::MAX)));
        allowed.saturating_sub(elapsed).min(self.stall)
    }
}

impl Default for Pace {
    fn default() -> Pace {
        Pace::new(Pace::DEFAULT_MIN_RATE)
    }
}
