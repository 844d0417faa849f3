//! dftp's core: a deterministic, sans-IO state machine.
//!
//! The shell feeds [`Event`]s in with the current time ([`Node::handle`]) and carries out the
//! [`Action`]s that come back; readers query a [`Snapshot`]. Nothing in here touches a socket, a
//! file or a clock, so the same inputs always give the same outputs, which is what the property
//! tests and the simulator rely on.

pub mod http1;
pub mod http_file;
pub mod membership;
pub mod node;
pub mod outbox;
pub mod path;
pub mod route;
pub mod snapshot;
pub mod time;
pub mod tree;
pub mod wire;

pub use membership::{Liveness, StreamPos};
pub use node::{Action, Config, Event, Node, Notice, Request, MAX_INCREMENTAL_FILES};
pub use path::{DfsPath, Mount, PathError};
pub use route::{Location, HOPS_PARAM, MAX_HOPS};
pub use snapshot::{file_info, FullUpdateBody, Snapshot, UpdateHeader};
pub use time::{Span, Time};
pub use tree::{Change, Entry, Kind, Meta, NodeId, Owner, Tree};
pub use wire::{
    parse_join_form, Announcement, ClusterInfo, FileInfo, FileMode, Greeting, NodeInfo, PeerAddr, Update, UpdateParser,
    WireError,
};
