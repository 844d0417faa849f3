//! `Pace`: a body that keeps the minimum rate is always waited for; one that falls below it is
//! given up on no later than the rate allows, and no wait is longer than the stall limit.

use std::time::Duration;

use dftp_core::pace::Pace;
use proptest::prelude::*;

/// Feeds a body of `pieces` (each: how long it took to come, and its size) to `pace`, as the
/// shell does; returns the index of the piece it gave up waiting for, if any.
fn given_up_at(pace: &Pace, pieces: &[(Duration, u64)]) -> Option<usize> {
    let (mut elapsed, mut received) = (Duration::ZERO, 0u64);
    for (i, (took, len)) in pieces.iter().enumerate() {
        if *took > pace.next_wait(elapsed, received) {
            return Some(i);
        }
        elapsed += *took;
        received += len;
    }
    None
}

#[test]
fn the_grace_then_the_rate() {
    let pace = Pace { min_rate: 1000, grace: Duration::from_secs(10), stall: Duration::from_secs(60) };
    assert_eq!(pace.next_wait(Duration::ZERO, 0), Duration::from_secs(10));
    // 5,000 bytes earn 5 s more.
    assert_eq!(pace.next_wait(Duration::from_secs(12), 5000), Duration::from_secs(3));
    assert_eq!(pace.next_wait(Duration::from_secs(16), 5000), Duration::ZERO);
    // Far ahead of the rate: the stall limit still holds.
    assert_eq!(pace.next_wait(Duration::from_secs(1), 1 << 40), Duration::from_secs(60));
    // No minimum: only the stall limit.
    let off = Pace { min_rate: 0, ..pace };
    assert_eq!(off.next_wait(Duration::from_secs(1000), 0), Duration::from_secs(60));
    assert_eq!(Pace::new(0).next_wait(Duration::ZERO, u64::MAX), Pace::STALL);
}

proptest! {
    /// Pieces that arrive at least as fast as the minimum rate (each within the time its own
    /// bytes earn, after a first piece within the grace) are always waited for.
    #[test]
    fn a_body_at_the_minimum_rate_is_never_given_up(
        rate in 1u64..100_000,
        first_ms in 0u64..10_000,
        sizes in prop::collection::vec(1u64..50_000, 1..50),
    ) {
        let pace = Pace { min_rate: rate, grace: Duration::from_secs(10), stall: Duration::from_secs(600) };
        let mut pieces = vec![(Duration::from_millis(first_ms), sizes[0])];
        for w in sizes.windows(2) {
            // Piece k+1 takes no longer than piece k's bytes earn.
            let earned = Duration::from_nanos((u128::from(w[0]) * 1_000_000_000 / u128::from(rate)) as u64);
            pieces.push((earned.min(Duration::from_secs(600)), w[1]));
        }
        prop_assert_eq!(given_up_at(&pace, &pieces), None);
    }

    /// A body slower than the minimum is given up on by the time its average falls below it,
    /// and no single wait exceeds the stall limit.
    #[test]
    fn a_slow_body_is_given_up_in_time(
        rate in 100u64..100_000,
        piece in 1u64..100,
        gap_ms in 1u64..5_000,
    ) {
        let pace = Pace { min_rate: rate, grace: Duration::from_secs(10), stall: Duration::from_secs(60) };
        let gap = Duration::from_millis(gap_ms);
        // `piece` bytes every `gap`: slower than the rate when piece/gap < rate.
        prop_assume!(u128::from(piece) * 1000 < u128::from(rate) * u128::from(gap_ms));
        let pieces = vec![(gap, piece); 100_000];
        let at = given_up_at(&pace, &pieces);
        prop_assert!(at.is_some(), "never given up");
        let at = at.unwrap();
        // When given up, the time already spent plus the wait is what the bytes had earned.
        let (elapsed, received) = (gap * at as u32, piece * at as u64);
        let earned = Duration::from_nanos((u128::from(received) * 1_000_000_000 / u128::from(rate)) as u64);
        prop_assert!(elapsed <= pace.grace + earned, "waited past the rate: {elapsed:?}");
    }

    #[test]
    fn no_wait_exceeds_the_stall_limit(rate in 0u64..u64::MAX, elapsed_ms in 0u64..u64::MAX / 2, received in 0u64..u64::MAX) {
        let pace = Pace::new(rate);
        prop_assert!(pace.next_wait(Duration::from_millis(elapsed_ms), received) <= Pace::STALL);
    }
}
