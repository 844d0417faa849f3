//! What a test needs to sign management requests as a node with the cluster secret does: the
//! time as the core takes it, and a nonce of its own for every request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dftp_core::cluster_auth::Nonce;
use dftp_core::Time;

/// Now, as the signing code takes it.
pub fn now() -> Time {
    Time(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64)
}

/// A nonce of its own for every signed request of the test process.
pub fn nonce() -> Nonce {
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut b = [0; 16];
    b[..8].copy_from_slice(&(N.fetch_add(1, Ordering::Relaxed) as u64).to_be_bytes());
    b[8..].copy_from_slice(&(now().0 ^ u64::from(std::process::id())).to_be_bytes());
    Nonce(b)
}
