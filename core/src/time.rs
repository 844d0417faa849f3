//! Time as data. The shell reads its clock and passes the reading in; the core never looks.

use std::fmt;
use std::ops::{Add, Sub};

/// Milliseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

/// A span of time in milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Span(pub u64);

impl Time {
    pub fn from_secs(s: u64) -> Time {
        Time(s.saturating_mul(1000))
    }

    /// Whole Unix seconds, as the wire carries times.
    pub fn unix_secs(self) -> i64 {
        (self.0 / 1000) as i64
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Span {
        Span(self.0.saturating_sub(earlier.0))
    }
}

impl Span {
    pub fn from_secs(s: u64) -> Span {
        Span(s.saturating_mul(1000))
    }

    pub fn from_millis(ms: u64) -> Span {
        Span(ms)
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }
}

impl Add<Span> for Time {
    type Output = Time;
    fn add(self, d: Span) -> Time {
        Time(self.0.saturating_add(d.0))
    }
}

impl Sub<Span> for Time {
    type Output = Time;
    fn sub(self, d: Span) -> Time {
        Time(self.0.saturating_sub(d.0))
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}
