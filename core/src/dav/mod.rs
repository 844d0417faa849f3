//! WebDAV (RFC 4918) on `/fs/`, the decisions of it that need no socket: the XML of request
//! bodies ([`xml`], [`request`]), the `If` header ([`if_header`]), write locks ([`locks`]) and
//! properties ([`props`]). The shell (`public/dav.rs`) reads the requests, passes the time in
//! and writes the answers; the write methods stay on the shell's own write paths.
//!
//! Why not the `dav-server` crate: its handler owns every method, writes included, through a
//! file-system trait, while our writes are routed to the node that takes each path, with the
//! cluster's conflict rules and accounts, and our reads use sendfile and splice. What is left
//! for WebDAV itself is small: properties from the merged tree, locks, and some XML.

pub mod if_header;
pub mod locks;
pub mod props;
pub mod request;
pub mod xml;
