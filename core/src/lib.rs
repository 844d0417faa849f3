//! dftp's core: a deterministic, sans-IO state machine.
//!
//! The shell feeds [`Event`]s in with the current time ([`Node::handle`]) and carries out the
//! [`Action`]s that come back; readers query a [`Snapshot`]. Nothing in here touches a socket, a
//! file or a clock, so the same inputs always give the same outputs, which is what the property
//! tests and the simulator rely on.
//!
//! # The protocol on one page
//!
//! What the shell does for each action, and the event that reports how it went:
//!
//! | [`Action`] | the shell | answered by |
//! | --- | --- | --- |
//! | `Greet { to, greeting }` | `POST /cluster/` to `to` | [`Event::GreetingAnswered`] with the peer's table, or [`Event::RequestFailed`] with [`Request::Greet`] |
//! | `SendUpdate { to, addr, update }` | `POST /update/` of `update` to `addr` | [`Event::UpdateDelivered`] (`full: false`), or [`Event::RequestFailed`] with [`Request::Update`]; the next update to `to` comes only then ([`outbox`]) |
//! | `SendFullUpdate { to, addr, snapshot, header }` | `POST /update/` streamed from [`Snapshot::full_update_body`] | the same, with `full: true` |
//! | `SendDigest { to, addr, digest }` | `POST /digest/` of `digest` to `addr` (only to a peer whose table's `Me` has our `Digest` scheme: [`anti_entropy`]) | [`Event::DigestAnswered`] with the answer, or [`Event::RequestFailed`] with [`Request::Digest`]; one at a time per peer |
//! | `DigestReply(answer)` | the reply to the `POST /digest/` whose event caused it | — |
//! | `Announce(packet)` | one multicast datagram | nothing: discovery is best effort |
//! | `Refuse(reason)` | the reply to the request whose event caused it is a refusal (`4xx` with the reason) | — |
//! | `Notice(notice)` | a log line | — |
//! | `WakeAt(t)` | a timer | [`Event::Timer`] at `t` (any event also runs the timers) |
//!
//! The events that come from outside:
//!
//! | [`Event`] | from |
//! | --- | --- |
//! | `LocalScan`, `LocalChanges`, `LocalSubtrees` | the scanner and the watcher of `--dfsroot`; and a write of this node's, at once, with what the watcher will see of it (a change already applied changes nothing and sends nothing) |
//! | `GreetingReceived` | `POST /cluster/` on the management interface (also the pings) |
//! | `UpdateReceived` | `POST /update/`, parsed ([`UpdateParser`]); a repair of anti-entropy too (its `Buckets` set) |
//! | `DigestReceived` | `POST /digest/`, parsed ([`anti_entropy::DigestMsg::from_json`]) |
//! | `AnnouncementReceived` | a multicast datagram, parsed ([`Announcement::from_json`]) |
//! | `JoinRequested` | `--join` at start, `POST /join/` |
//!
//! Reads do not go through the node: a reader takes a [`Snapshot`] and asks it where a path is
//! served from ([`Snapshot::locate`]). Whether the client may read or change the path at all is
//! asked of the node's [`Rules`] ([`access`]: `--auth` rules, passwords, and
//! [`Rules::decide`]), by HTTP and FTP alike, and again by the owner of a file that is fetched.
//!
//! A write asks the snapshot which node takes the path
//! ([`Snapshot::locate_write`]); the node that writes reports what changed on its disk with
//! `LocalSubtrees`/`LocalChanges`, which go to every peer at once, and tells a node that passed
//! the request on the position of that update ([`Snapshot::stream_pos`]), which that node waits
//! for ([`Snapshot::has_applied`]) before it answers its client.
//!
//! [`wire`], [`http1`], [`http_file`], [`request`] and [`ftp_path`] are sans-IO too: parsers and
//! writers of other machines' bytes (the original's JSON and forms, HTTP/1 responses of peers,
//! HTTP range and validator headers, the paths, queries and headers of clients' requests, FTP
//! paths), fuzzed in `fuzz/`. So is [`cluster_auth`]: the tags of the cluster secret, which the
//! shell carries in a header of every management request and answer and at the end of every
//! multicast packet, and checks here before any of them becomes an event. With a secret, the
//! node's [`Config::authenticated`] says that every greeting it gets was signed; without one, a
//! greeting does not move a live peer to new addresses.

pub mod access;
pub mod anti_entropy;
pub mod cluster_auth;
pub mod dav;
pub mod ftp_path;
pub mod glob;
pub mod http1;
pub mod http_file;
pub mod listing_order;
pub mod membership;
pub mod node;
pub mod outbox;
pub mod pace;
pub mod path;
pub mod precondition;
pub mod request;
pub mod route;
pub mod search;
pub mod seeds;
pub mod snapshot;
pub mod swim;
pub mod time;
pub mod tree;
pub mod wire;

pub use access::{Access, Credentials, Decision, Need, Password, Rule, RuleError, Rules, Secret, Visibility, Who};
pub use glob::{Glob, GlobError};
pub use listing_order::{ListingOrder, OrderError, SortKey};
pub use membership::{Liveness, StreamPos};
pub use node::{Action, Config, Event, Node, Notice, Request, MAX_INCREMENTAL_FILES};
pub use path::{DfsPath, Mount, PathError};
pub use route::{Forward, Location, Taker, WriteLocation, WriteRefusal, HOPS_PARAM, MAX_HOPS};
pub use search::{Search, SearchError};
pub use snapshot::{Member, Snapshot};
pub use time::{Span, Time};
pub use tree::{Change, Entry, Holdings, Kind, Meta, NodeId, Owner, Tree};
pub use wire::{
    file_info, parse_join_form, Announcement, ClusterInfo, FileInfo, FileMode, FullUpdateBody, Greeting, NodeInfo,
    PeerAddr, Scheme, Update, UpdateHeader, UpdateParser, UpdateSenders, WireError,
};
