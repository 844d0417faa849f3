//! The process's limit on open descriptors. Every connection, every file being sent and every
//! peer connection takes one; a node that runs out cannot accept, open or answer anything. Many
//! systems start processes with a soft limit of 1,024 and a much higher hard limit, so the node
//! raises its soft limit to the hard one at start (as Go programs and nginx's
//! `worker_rlimit_nofile` do), and says when the limit is still small for the connection limits.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors a node needs besides its HTTP connections: files being sent, peers, the
/// watcher, FTP sessions and their data connections.
const HEADROOM: u64 = 256;

/// Raises the soft limit to the hard one; warns when the result does not leave room for two
/// interfaces of `max_connections` connections each.
pub fn raise_limit(max_connections: u32) {
    let limit = getrlimit(Resource::Nofile);
    let soft = match (limit.current, limit.maximum) {
        (Some(cur), Some(max)) if cur < max => {
            match setrlimit(Resource::Nofile, Rlimit { current: Some(max), maximum: Some(max) }) {
                Ok(()) => max,
                Err(e) => {
                    tracing::warn!("cannot raise the open-file limit from {cur} to {max}: {e}");
                    cur
                }
            }
        }
        (Some(cur), None) => match setrlimit(Resource::Nofile, Rlimit { current: None, maximum: None }) {
            Ok(()) => return,
            Err(_) => cur,
        },
        (Some(cur), Some(_)) => cur,
        (None, _) => return, // unlimited
    };
    let needed = 2 * u64::from(max_connections) + HEADROOM;
    if soft < needed {
        tracing::warn!(
            "the open-file limit is {soft}, less than the {needed} that 2 x --max-connections {max_connections} \
             and the node's own files need: lower --max-connections or raise the limit (ulimit -n)"
        );
    } else {
        tracing::debug!("open-file limit: {soft}");
    }
}
